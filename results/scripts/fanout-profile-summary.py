#!/usr/bin/env python3
"""Summarises fanout-profile.sh runs: latency, CPU per delivery and syscall counts per tag and
shard count, with medians per shard count (runs tagged `pinned*` apart: server and probe on their own CPU).
Usage: results/scripts/fanout-profile-summary.py DIR > DIR/summary.md"""
import glob, json, os, re, statistics, sys

d = sys.argv[1]
def stat(path, event):
    m = re.search(r"([\d,.]+)\s+(?:msec\s+)?" + re.escape(event), open(path).read())
    return float(m.group(1).replace(",", "")) if m else float("nan")
rows = {}
for p in sorted(glob.glob(os.path.join(d, "*-shards*.json"))):
    tag, shards = re.match(r"(.*)-shards(\d+)\.json", os.path.basename(p)).groups()
    r = json.load(open(p)); ps = p[:-5] + ".perfstat.txt"; l = r["latency"]["corrected"]
    secs = 8.0
    writev = stat(ps, "syscalls:sys_enter_writev")
    row = {
        "p50 ms": l["p50_us"] / 1e3, "p99 ms": l["p99_us"] / 1e3, "p99.9 ms": l["p99_9_us"] / 1e3,
        "p99/p50": l["p99_us"] / l["p50_us"],
        "send lag p99 ms": r["latency"]["send_lag"]["p99_us"] / 1e3,
        "CPU µs/delivery": r["server"]["cpu_us_per_delivery"],
        "turns/s": stat(ps, "syscalls:sys_enter_epoll_wait") / secs,
        "writev/s": writev / secs,
        "deliveries/writev": r["messages"]["delivered_per_s"] * secs / writev if writev else float("nan"),
        "ctx switches/s": stat(ps, "context-switches") / secs,
        "load avg": r["loadavg_start"] or float("nan"),
    }
    group = ("pinned" if tag.startswith("pinned") else "unpinned", shards)
    rows.setdefault(group, []).append((tag, row))
keys = list(next(iter(rows.values()))[0][1].keys())
print("| run | shards | " + " | ".join(keys) + " |")
print("|---|---|" + "---|" * len(keys))
for (_, shards), rs in sorted(rows.items()):
    for tag, row in rs:
        print(f"| {tag} | {shards} | " + " | ".join("%.2f" % row[k] for k in keys) + " |")
for (pin, shards), rs in sorted(rows.items()):
    print(f"| **median {pin}** | {shards} | " + " | ".join("%.2f" % statistics.median(r[k] for _, r in rs) for k in keys) + " |")
