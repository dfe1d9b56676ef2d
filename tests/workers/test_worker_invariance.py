#!/usr/bin/env python3
"""Results do not depend on the worker count.

The same capture through 1, 2 and 4 workers (a dispatch lcore hashing flows to shards, since a
pcap port has one queue) must give the same records and the same connection totals, and no
packet may reach a worker that does not own its flow. Runs on the project's capture and, where
../shared/corpus is present, on the largest public captures of it.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "zeek", "pcaps")
TOTALS = ("closetap_tcp_closes_total", "closetap_tcp_conn_state_total", "closetap_packets_total",
          "closetap_rx_packets_total", "closetap_tcp_abnormal_closes_total", "closetap_tcp_fin_ack_total")


def run(closetap, pcaps, workers, tmp):
    log, prom = os.path.join(tmp, f"c{workers}.jsonl"), os.path.join(tmp, f"m{workers}.prom")
    args = [closetap, "--workers", str(workers), "--conn-log", log, "--metrics-file", prom, "--quiet"]
    for p in pcaps:
        args += ["--pcap", p]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise SystemExit(f"closetap --workers {workers} failed: {p.stderr}")
    records = sorted(json.dumps(json.loads(l), sort_keys=True) for l in open(log))
    lines = [l for l in open(prom) if not l.startswith("#")]
    totals = sorted(l for l in lines if l.startswith(TOTALS))
    wrong = sum(float(l.split()[-1]) for l in lines if l.startswith("closetap_worker_wrong_shard_packets_total"))
    return records, totals, wrong


def main():
    closetap = sys.argv[1]
    inputs = [[os.path.join(ROOT, "tests", "captures", "scenarios.pcap")]]
    for name in ("ftp__cwd-navigation.pcap", "ssh__ssh.pcap", "tunnels__Teredo.pcap", "socks.pcap"):
        path = os.path.join(CORPUS, name)
        if os.path.exists(path):
            inputs.append([path])
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for pcaps in inputs:
            name = os.path.basename(pcaps[0])
            base = run(closetap, pcaps, 1, tmp)
            for n in (2, 4):
                got = run(closetap, pcaps, n, tmp)
                problems = []
                if got[0] != base[0]:
                    diff = next((a, b) for a, b in zip(base[0] + [""], got[0] + [""]) if a != b)
                    problems.append(f"records differ ({len(base[0])} vs {len(got[0])}): {diff}")
                if got[1] != base[1]:
                    problems.append("totals differ: " + str(sorted(set(base[1]) ^ set(got[1]))[:6]))
                if got[2] != 0:
                    problems.append(f"{got[2]:.0f} packets reached the wrong shard")
                if problems:
                    failed += 1
                    print(f"FAIL {name}: 1 vs {n} workers: " + "; ".join(problems))
                else:
                    passed += 1
                    print(f"PASS {name}: {len(base[0])} records and totals equal with 1 and {n} workers")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
