#!/usr/bin/env python3
"""Runs inside the scenarios' server namespace (tools/scenarios/record.sh CTSCEN_OBSERVE).

Starts closetap live on the namespace's veth through DPDK's AF_PACKET driver, with its
Prometheus endpoint on the namespace's loopback, and a real Prometheus server scraping it every
second. Signals readiness, waits for SIGTERM (all scenarios done), lets closetap conclude every
connection, waits for Prometheus to scrape the final state, then records what Prometheus's HTTP
API answers, what `promtool check metrics` says of the exposition, and stops both.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testlib import get, scrape_value, wait_until as _wait_until  # noqa: E402

METRICS = "127.0.0.1:19490"
PROM = "127.0.0.1:19090"
CHILDREN = []


def wait_until(what, fn, seconds):
    return _wait_until(what, fn, seconds, who="live_observer")


def prom_query(q):
    url = f"http://{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    body = json.loads(get(url))
    if body.get("status") != "success":
        raise SystemExit(f"live_observer: query {q!r} failed: {body}")
    return body["data"]["result"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--closetap", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = os.environ["DEV"]
    out = a.out
    os.makedirs(out, exist_ok=True)

    ct_log = open(os.path.join(out, "closetap.log"), "w")
    ct = subprocess.Popen(
        [a.closetap, "--vdev", f"net_af_packet0,iface={dev}", "--",
         "--metrics", METRICS, "--conn-log", os.path.join(out, "live.jsonl"),
         "--metrics-file", os.path.join(out, "live.prom"),
         "--events", os.path.join(out, "events.jsonl"),
         # Short linger so the last connections are concluded soon after the scenarios.
         "--timeout-closed", "1"],
        stdout=ct_log, stderr=subprocess.STDOUT)
    CHILDREN.append(ct)
    wait_until("closetap /metrics", lambda: "closetap_build_info" in get(f"http://{METRICS}/metrics"), 30)

    cfg = os.path.join(out, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: closetap\n"
                f"    static_configs:\n      - targets: ['{METRICS}']\n")
    prom_log = open(os.path.join(out, "prometheus.log"), "w")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(out, 'tsdb')}",
         f"--web.listen-address={PROM}"], stdout=prom_log, stderr=subprocess.STDOUT)
    CHILDREN.append(prom)
    wait_until("prometheus ready", lambda: "Ready" in get(f"http://{PROM}/-/ready"), 60)
    wait_until("first scrape", lambda: prom_query('up{job="closetap"} == 1'), 30)
    # Block SIGTERM only now: children inherit the signal mask, and closetap must see its own.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    open(os.environ["CTSCEN_READY"], "w").close()

    signal.sigwait({signal.SIGTERM})
    # Every connection concluded (closed linger, SYN attempt timer), then one more scrape.
    wait_until("closetap to conclude every connection",
               lambda: scrape_value(get(f"http://{METRICS}/metrics"), "closetap_flows_active") == 0, 60)
    time.sleep(0.5)
    final_total = sum(float(l.rsplit(" ", 1)[1]) for l in get(f"http://{METRICS}/metrics").splitlines()
                      if l.startswith("closetap_tcp_closes_total{"))
    wait_until("prometheus to scrape the final state",
               lambda: any(float(r["value"][1]) == final_total
                           for r in prom_query("sum(closetap_tcp_closes_total)")), 30)
    result = {
        "closes": {f'{r["metric"]["close"]}/{r["metric"]["initiator"]}': float(r["value"][1])
                   for r in prom_query("sum by (close, initiator) (closetap_tcp_closes_total) > 0")},
        "conn_state": {r["metric"]["conn_state"]: float(r["value"][1])
                       for r in prom_query("sum by (conn_state) (closetap_tcp_conn_state_total) > 0")},
        "abnormal": {r["metric"]["reason"]: float(r["value"][1])
                     for r in prom_query("sum by (reason) (closetap_tcp_abnormal_closes_total) > 0")},
        "rx_packets": sum(float(r["value"][1]) for r in prom_query("closetap_rx_packets_total")),
    }
    with open(os.path.join(out, "prom.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)

    text = get(f"http://{METRICS}/metrics")
    with open(os.path.join(out, "scrape.prom"), "w") as f:
        f.write(text)
    pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    with open(os.path.join(out, "promtool.txt"), "w") as f:
        f.write(f"rc={pt.returncode}\n{pt.stdout}{pt.stderr}")

    ct.send_signal(signal.SIGTERM)
    rc = ct.wait(timeout=30)
    prom.send_signal(signal.SIGTERM)
    prom.wait(timeout=30)
    if rc != 0:
        print(f"live_observer: closetap exited {rc}", file=sys.stderr)
        return 1
    return 0


def run():
    # Whatever happens, leave no closetap or Prometheus behind: an orphaned poll-mode closetap
    # would spin on a CPU for the rest of the test run.
    try:
        return main()
    finally:
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(run())
