#!/usr/bin/env python3
"""End to end, live: kernel TCP in network namespaces, closetap on the veth, real Prometheus.

tools/scenarios/record.sh makes two namespaces and lets the Linux TCP stack open and close a
connection per close pattern; tests/e2e/live_observer.py runs closetap on the server's veth
(DPDK net_af_packet) with Prometheus scraping it. The scenario truth (what record.sh's table
says each connection did, checked against tcpdump's capture of the same wire) must equal:
  - closetap's conn log, connection by connection (close, initiator, half_close, conn_state);
  - what Prometheus's HTTP API reports per close pattern and initiator, conn_state and reason;
and `promtool check metrics` must accept the exposition.
Skipped (77) without root, iproute2, tcpdump, tc, or prometheus/promtool.
"""
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECORD = os.path.join(ROOT, "tools", "scenarios", "record.sh")
REASON = {("rst", "orig"): "rst_orig", ("rst", "resp"): "rst_resp", ("fin_rst", "orig"): "rst_after_fin",
          ("fin_rst", "resp"): "rst_after_fin", ("rejected", "resp"): "rejected",
          ("no_answer", "none"): "no_answer"}


def main():
    closetap = os.path.abspath(sys.argv[1])
    missing = [t for t in ("ip", "tc", "tcpdump", "prometheus", "promtool") if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        print(f"SKIP: needs root and {missing or 'nothing'}")
        return 77
    failures = []
    with tempfile.TemporaryDirectory(prefix="closetap-live-") as tmp:
        for attempt in (1, 2):
            out = os.path.join(tmp, f"run{attempt}")
            env = dict(os.environ, CTSCEN_OBSERVE=f"{sys.executable} {HERE}/live_observer.py "
                                                  f"--closetap {closetap} --out {out}")
            p = subprocess.run(["bash", RECORD, out], env=env, capture_output=True, text=True, timeout=600)
            if p.returncode == 3 and attempt == 1:
                print("the kernel did not produce a pattern under observation; once more")
                continue
            if p.returncode != 0:
                print(p.stderr[-3000:])
                for log in ("closetap.log", "prometheus.log"):
                    if os.path.exists(os.path.join(out, log)):
                        print(f"--- {log}\n" + open(os.path.join(out, log)).read()[-2000:])
                print("0 passed, 1 failed")
                return 1
            break

        rows = list(csv.DictReader(open(os.path.join(out, "scenarios.tsv")), delimiter="\t"))
        records = [json.loads(l) for l in open(os.path.join(out, "live.jsonl"))]
        by_tuple = collections.defaultdict(list)
        for r in records:
            by_tuple[(r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"])].append(r)
        checks = 0
        for row in rows:
            t = (row["client_ip"], int(row["client_port"]), row["server_ip"], int(row["server_port"]))
            want = {"close": row["close"], "initiator": row["initiator"],
                    "half_close": row["half_close"] == "true", "conn_state": row["conn_state"]}
            got = by_tuple.get(t, [])
            checks += 1
            if len(got) != 1 or {k: got[0][k] for k in want} != want:
                failures.append(f"{row['scenario']} {t}: scenario did {want}, closetap says "
                                f"{[{k: g[k] for k in want} for g in got]}")
        tcp_records = [r for r in records if r["resp_p"] in {int(x['server_port']) for x in rows}]
        checks += 1
        if len(tcp_records) != len(rows):
            failures.append(f"{len(tcp_records)} records for scenario ports, scenarios made {len(rows)}")

        prom = json.load(open(os.path.join(out, "prom.json")))
        want_closes = collections.Counter(f"{r['close']}/{r['initiator']}" for r in rows)
        want_states = collections.Counter(r["conn_state"] for r in rows)
        want_reasons = collections.Counter(REASON[(r["close"], r["initiator"])] for r in rows
                                           if (r["close"], r["initiator"]) in REASON)
        for what, want, got in (("closes by pattern/initiator", want_closes, prom["closes"]),
                                ("conn_state", want_states, prom["conn_state"]),
                                ("abnormal by reason", want_reasons, prom["abnormal"])):
            checks += 1
            got = {k: int(v) for k, v in got.items()}
            if dict(want) != got:
                failures.append(f"Prometheus {what}: scenarios {dict(want)}, Prometheus {got}")
            else:
                print(f"PASS Prometheus {what}: {got}")
        checks += 1
        events = [json.loads(l) for l in open(os.path.join(out, "events.jsonl"))]
        got_ev = collections.Counter(e["reason"] for e in events)
        if dict(want_reasons) != dict(got_ev):
            failures.append(f"--events: scenarios {dict(want_reasons)}, events {dict(got_ev)}")
        else:
            print(f"PASS --events: one event per abnormal close {dict(got_ev)}")
        checks += 1
        promtool = open(os.path.join(out, "promtool.txt")).read()
        if not promtool.startswith("rc=0") or len(promtool.strip().splitlines()) > 1:
            failures.append(f"promtool check metrics: {promtool.strip()}")
        else:
            print("PASS promtool check metrics: clean")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
