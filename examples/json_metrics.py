#!/usr/bin/env python3
"""Prints metrics as one pretty-printed JSON document (nested keys become latency_p95 etc.):

    {"latency": {"p50": ..., "p95": ..., "p99": ...}, "throughput_rps": ..., "errors": 0,
     "ext_tool_version": "json-demo-1.0", "items": N}

Usage: json_metrics.py --items N
"""

import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    a = ap.parse_args()
    lat = []
    t0 = time.perf_counter()
    for i in range(a.items):
        s = time.perf_counter()
        sorted(range(i % 200, 0, -1))
        lat.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100, method="inclusive")
    print(json.dumps({
        "latency": {"p50": q[49], "p95": q[94], "p99": q[98]},
        "throughput_rps": a.items / wall,
        "errors": 0,
        "items": a.items,
        "ext_tool_version": "json-demo-1.0",
    }, indent=2))


if __name__ == "__main__":
    main()
