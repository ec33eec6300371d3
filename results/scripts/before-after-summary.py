#!/usr/bin/env python3
"""Summarises a before-after.sh folder: one row per run and the medians side by side.
Usage: results/scripts/before-after-summary.py OUT_DIR > OUT_DIR/summary.md"""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleave_table import summarise  # noqa: E402

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
summarise(d, FIELDS)
