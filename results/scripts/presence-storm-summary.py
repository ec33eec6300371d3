#!/usr/bin/env python3
"""Summarises a presence-storm.sh folder: one row per run, medians side by side.
Usage: results/scripts/presence-storm-summary.py OUT_DIR > OUT_DIR/summary.md"""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleave_table import summarise  # noqa: E402

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
summarise(d, FIELDS)
