#!/usr/bin/env python3
"""Flow-table exhaustion: a SYN flood from random sources far beyond the table's capacity.

Runs closetap-bench with --syn-flood (half of the measured packets are SYNs, each from a
distinct random source, never answered) on a small table, and checks from its output:
  - the flood is at least 10x the table's capacity;
  - no established flow and no flow in the middle of a close was evicted: every eviction took
    an attempt, and evictions by reason add up to evictions by victim;
  - every close of the workload's own flows is classified exactly as its ground truth says (the
    bench's own check, exit status 0), with 0 workload attempts lost at a realistic RTT;
  - memory: the process's peak RSS grew by no more than the tables' fixed memory (entries,
    buckets, wave pool, all sized at start) plus allocator slack.
"""
import os
import re
import subprocess
import sys


def main():
    bench = os.path.abspath(sys.argv[1])
    # Lifecycle steps ~400 packets (400 us of packet time) apart: a data-center RTT, so the
    # workload's own SYNs are answered long before the flood could push them out.
    args = [bench, "--flows", "10K", "--window", "500K", "--runs", "2", "--syn-flood", "0.5",
            "--inflight", "8", "--churn", "0.02", "--signatures", "none"]
    print(" ".join(args))
    p = subprocess.run(args, capture_output=True, text=True, timeout=240)
    print(p.stdout[-4000:])
    if p.stderr:
        print(p.stderr[-2000:])
    m = re.search(r"^FLOOD (.*)$", p.stdout, re.M)
    failures = []
    checks = 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        print(("PASS " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    check(p.returncode == 0, f"closetap-bench exit 0 (ground truth check), got {p.returncode}")
    check(m is not None, "FLOOD line printed")
    if m:
        f = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
        check(f["syns"] >= 10 * f["capacity"],
              f"flood of {f['syns']} distinct SYNs is >= 10x the capacity {f['capacity']}")
        check(f["evicted_established"] == 0, f"established flows evicted: {f['evicted_established']}")
        check(f["evicted_closing"] == 0, f"closing flows evicted: {f['evicted_closing']}")
        check(f["evicted_attempt"] > 0 and
              f["evicted_attempt"] == f["bucket_full"] + f["table_full"],
              f"every eviction counted, by reason ({f['bucket_full']} + {f['table_full']}) and by "
              f"victim ({f['evicted_attempt']} attempts)")
        check(f["lost_attempts"] == 0, f"workload attempts lost to the flood: {f['lost_attempts']}")
        check(f["closes_ok"] == 1, "workload closes classified as the ground truth says")
        growth = f["hwm_after"] - f["rss_tables0"]
        slack = 8 << 20
        check(growth <= f["bound_bytes"] + slack,
              f"peak RSS grew {growth / 1e6:.1f} MB, tables' fixed memory {f['bound_bytes'] / 1e6:.1f}"
              f" MB (+{slack >> 20} MiB slack)")
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
