#!/usr/bin/env python3
"""Summarises a before-after.sh folder: one row per run and the medians side by side.
Usage: results/scripts/before-after-summary.py OUT_DIR > OUT_DIR/summary.md"""
import glob, json, os, statistics, sys

d = sys.argv[1]
FIELDS = [  # (label, getter, format)
    ("p50 ms", lambda r: r["latency"]["corrected"]["p50_us"] / 1e3, "%.2f"),
    ("p99 ms", lambda r: r["latency"]["corrected"]["p99_us"] / 1e3, "%.2f"),
    ("p99.9 ms", lambda r: r["latency"]["corrected"]["p99_9_us"] / 1e3, "%.2f"),
    ("deliveries/s", lambda r: r["messages"]["delivered_per_s"], "%.0f"),
    ("server CPU µs/delivery", lambda r: r["server"]["cpu_us_per_delivery"], "%.3f"),
    ("server RSS B/conn", lambda r: r["server"]["rss_per_connection_bytes"], "%.0f"),
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
    med = {w: [statistics.median(f[1](r) for _, r in by.get(w, [])) for f in FIELDS] for w in ("before", "after")}
    for w in ("before", "after"):
        print(f"| **median {w}** | " + " | ".join(f[2] % v for f, v in zip(FIELDS, med[w])) + " |")
    ratio = [(a / b if b else float("nan")) for a, b in zip(med["after"], med["before"])]
    print("| **after / before** | " + " | ".join("%.2f" % x for x in ratio) + " |\n")
