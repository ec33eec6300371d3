#!/usr/bin/env python3
"""Summarises criterion fan-out runs saved as fanout-<which>-<n>.txt (median per run, ratio of medians).
Usage: results/scripts/fanout-summary.py DIR > DIR/fanout-summary.md"""
import re,sys,glob,os
d=sys.argv[1]
def parse(p):
    res={}; name=None
    for l in open(p):
        if l.startswith('fanout/'): name=l.strip(); continue
        m=re.search(r'time:\s+\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]',l)
        if m and name and '%' not in l:
            v=float(m.group(3)); u=m.group(4)
            v*= {'ns':1,'µs':1000,'ms':1e6}[u]
            res[name]=v; name=None
    return res
runs={}
for p in sorted(glob.glob(d+'/fanout-*.txt')):
    runs[os.path.basename(p)[7:-4]]=parse(p)
names=list(runs[next(iter(runs))].keys())
cols=sorted(runs)
print('| bench | '+' | '.join(cols)+' | after/before (median of runs) |')
print('|---|'+'---|'*len(cols)+'---|')
import statistics
for n in names:
    b=[runs[c][n] for c in cols if c.startswith('baseline') and n in runs[c]]
    a=[runs[c][n] for c in cols if c.startswith('after') and n in runs[c]]
    print('| '+n+' | '+' | '.join(('%.1f'%runs[c][n]) if n in runs[c] else '–' for c in cols)+' | %.3f |'%(statistics.median(a)/statistics.median(b)))
