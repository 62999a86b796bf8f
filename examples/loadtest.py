#!/usr/bin/env python3
"""A small load-test stand-in: serves `requests` in-process "requests" (hashing a payload),
measures each one, and prints the metrics srd parses as one key=value line:

    p50=0.000120 p95=0.000180 p99=0.000250 throughput_rps=8123.4 errors=0 requests_total=2000

Usage: loadtest.py --users N --requests-per-user M --payload-kb K [--error-every E]
Standard library only, so it runs anywhere srd does.
"""

import argparse
import hashlib
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--requests-per-user", type=int, default=50)
    ap.add_argument("--payload-kb", type=int, default=4)
    ap.add_argument("--error-every", type=int, default=0, help="fail every Nth request")
    a = ap.parse_args()
    payload = b"x" * (a.payload_kb * 1024)
    latencies = []
    errors = 0
    t0 = time.perf_counter()
    for i in range(a.users * a.requests_per_user):
        s = time.perf_counter()
        hashlib.sha256(payload + i.to_bytes(4, "big")).digest()
        latencies.append(time.perf_counter() - s)
        if a.error_every and (i + 1) % a.error_every == 0:
            errors += 1
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"served {len(latencies)} requests for {a.users} users")
    print(f"p50={q[49]:.9f} p95={q[94]:.9f} p99={q[98]:.9f} "
          f"throughput_rps={len(latencies) / wall:.3f} errors={errors} "
          f"requests_total={len(latencies)}")


if __name__ == "__main__":
    main()
