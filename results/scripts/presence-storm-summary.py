#!/usr/bin/env python3
"""Summarises a presence-storm.sh folder: one row per run, medians side by side.
Usage: results/scripts/presence-storm-summary.py OUT_DIR > OUT_DIR/summary.md"""
import glob, json, os, statistics, sys

d = sys.argv[1]
FIELDS = [  # (label, getter, format)
    ("join s", lambda r: r["phases"]["connect_s"], "%.2f"),
    ("presence frames/member", lambda r: (r["messages"]["system"] + r["messages"].get("presence", 0)) / r["bots"]["ready"], "%.1f"),
    ("p50 ms", lambda r: r["latency"]["corrected"]["p50_us"] / 1e3, "%.2f"),
    ("p99 ms", lambda r: r["latency"]["corrected"]["p99_us"] / 1e3, "%.2f"),
    ("p99.9 ms", lambda r: r["latency"]["corrected"]["p99_9_us"] / 1e3, "%.2f"),
    ("deliveries/s", lambda r: r["messages"]["delivered_per_s"], "%.0f"),
    ("server CPU s total", lambda r: r["server"]["cpu_s_total"], "%.2f"),
    ("lost+dup", lambda r: r["deliveries"]["measured"]["lost"] + r["deliveries"]["measured"]["duplicated"], "%d"),
]
runs = {}
for p in sorted(glob.glob(os.path.join(d, "*-*-*.json"))):
    scenario, which, i = os.path.basename(p)[:-5].rsplit("-", 2)
    runs.setdefault(scenario, {}).setdefault(which, []).append((int(i), json.load(open(p))))
for scenario, by in sorted(runs.items()):
    print(f"### {scenario}\n")
    print("| run | " + " | ".join(f[0] for f in FIELDS) + " |")
    print("|---|" + "---|" * len(FIELDS))
    for which in ("before", "after"):
        for i, r in sorted(by.get(which, []), key=lambda x: x[0]):
            print(f"| {which} {i} | " + " | ".join(f[2] % f[1](r) for f in FIELDS) + " |")
    med = {w: [statistics.median(f[1](r) for _, r in by.get(w, [])) for f in FIELDS] for w in ("before", "after") if by.get(w)}
    for w in med:
        print(f"| **median {w}** | " + " | ".join(f[2] % v for f, v in zip(FIELDS, med[w])) + " |")
    if len(med) == 2:
        ratio = [(a / b if b else float("nan")) for a, b in zip(med["after"], med["before"])]
        print("| **after / before** | " + " | ".join("%.2f" % x for x in ratio) + " |")
    print()
