#!/usr/bin/env python3
"""Golden tests: run the real closetap (DPDK, net_pcap, --no-huge) on the project's captures.

For every capture DIR/NAME.pcap:
  - closetap must exit 0 and write one record per connection;
  - if DIR/NAME.tsv exists (the truth the recording scenario wrote, independent of closetap),
    every connection listed there must have that close, initiator, half_close and conn_state;
  - the records must equal tests/golden/NAME.jsonl on the stable keys (--update rewrites it);
  - the metrics file must agree with the records (closes by pattern and initiator, conn_state)
    and account for every packet.
Prints one line per check and exits non-zero on any failure.
"""
import argparse
import collections
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testlib import Checker  # noqa: E402

STABLE_KEYS = ["ts", "orig_h", "orig_p", "resp_h", "resp_p", "close", "initiator", "half_close",
               "conn_state", "history", "fin_ack", "teardown_s", "orig_pkts", "resp_pkts",
               "app", "reason"]
SPEC_KEYS = set(STABLE_KEYS)


def parse_metrics(path):
    """Prometheus text format -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = {}
            for part in rest.rstrip("}").split(","):
                if part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
        else:
            name, labels = head, {}
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def metric_sum(metrics, name, **want):
    return sum(v for (n, labels), v in metrics.items()
               if n == name and all((k, str(x)) in labels for k, x in want.items()))


def key_of(r):
    return (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"], r["ts"])


def run_closetap(closetap, pcap, tmp, extra=()):
    log = os.path.join(tmp, "conns.jsonl")
    prom = os.path.join(tmp, "final.prom")
    p = subprocess.run([closetap, "--pcap", pcap, "--conn-log", log, "--metrics-file", prom,
                        "--quiet", *extra], capture_output=True, text=True, timeout=120)
    records = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
    return p, records, (parse_metrics(prom) if os.path.exists(prom) else {})


def check_truth(c, name, records, truth_path):
    rows = list(csv.DictReader(open(truth_path), delimiter="\t"))
    by_tuple = collections.defaultdict(list)
    for r in records:
        by_tuple[(r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"])].append(r)
    for row in rows:
        t = (row["client_ip"], int(row["client_port"]), row["server_ip"], int(row["server_port"]))
        got = by_tuple.get(t, [])
        what = f"{name}: {row['scenario']} {t[0]}:{t[1]} -> {t[2]}:{t[3]}"
        if len(got) != 1:
            c.check(False, what, f"expected one record, found {len(got)}")
            continue
        r = got[0]
        want = {"close": row["close"], "initiator": row["initiator"],
                "half_close": row["half_close"].lower() == "true", "conn_state": row["conn_state"]}
        have = {k: r[k] for k in want}
        c.check(have == want, what + f" is {want['close']}/{want['initiator']}",
                f"got {have}, scenario did {want}")


def check_golden(c, name, records, golden_path, update):
    order = lambda r: json.dumps(r, sort_keys=True)
    stable = sorted(({k: r[k] for k in STABLE_KEYS} for r in records), key=order)
    if update:
        with open(golden_path, "w") as f:
            for r in stable:
                f.write(json.dumps(r, sort_keys=True) + "\n")
        print(f"UPDATED {golden_path}")
        return
    if not os.path.exists(golden_path):
        c.check(False, f"{name}: golden records", f"{golden_path} missing (run with --update)")
        return
    want = [json.loads(l) for l in open(golden_path)]
    want = sorted(want, key=order)
    if want == stable:
        c.check(True, f"{name}: {len(stable)} records equal the golden file")
        return
    wk = {key_of(r): r for r in want}
    hk = {key_of(r): r for r in stable}
    diffs = []
    for k in sorted(set(wk) | set(hk), key=str):
        a, b = wk.get(k), hk.get(k)
        if a != b:
            if a is None or b is None:
                diffs.append(f"{k}: {'unexpected' if a is None else 'missing'}")
            else:
                diffs.append(f"{k}: " + ", ".join(f"{x}: {a[x]!r} -> {b[x]!r}" for x in a if a[x] != b.get(x)))
    c.check(False, f"{name}: golden records", "; ".join(diffs[:10]))


def check_metrics(c, name, records, metrics):
    closes = collections.Counter((r["close"], r["initiator"]) for r in records)
    ok = all(metric_sum(metrics, "closetap_tcp_closes_total", close=k[0], initiator=k[1]) == v
             for k, v in closes.items())
    ok = ok and metric_sum(metrics, "closetap_tcp_closes_total") == len(records)
    c.check(ok, f"{name}: closetap_tcp_closes_total matches the records")
    states = collections.Counter(r["conn_state"] for r in records)
    ok = all(metric_sum(metrics, "closetap_tcp_conn_state_total", conn_state=k) == v
             for k, v in states.items())
    c.check(ok, f"{name}: closetap_tcp_conn_state_total matches the records")
    rx = metric_sum(metrics, "closetap_rx_packets_total")
    classes = metric_sum(metrics, "closetap_packets_total")
    c.check(rx > 0 and rx == classes, f"{name}: every received packet has a class ({rx:.0f})")
    missing = [k for k in SPEC_KEYS if any(k not in r for r in records)]
    c.check(not missing, f"{name}: records carry every SPEC key", f"missing {missing}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--closetap", required=True)
    ap.add_argument("--captures", required=True)
    ap.add_argument("--golden", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    c = Checker()
    pcaps = sorted(f for f in os.listdir(a.captures) if f.endswith(".pcap"))
    c.check(bool(pcaps), f"captures found in {a.captures}")
    for f in pcaps:
        name = f[:-5]
        with tempfile.TemporaryDirectory() as tmp:
            p, records, metrics = run_closetap(a.closetap, os.path.join(a.captures, f), tmp)
            c.check(p.returncode == 0, f"{name}: closetap exits 0", p.stderr.strip()[-500:])
            if p.returncode != 0:
                continue
            truth = os.path.join(a.captures, name + ".tsv")
            if os.path.exists(truth):
                check_truth(c, name, records, truth)
            check_golden(c, name, records, os.path.join(a.golden, name + ".jsonl"), a.update)
            check_metrics(c, name, records, metrics)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
