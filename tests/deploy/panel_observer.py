#!/usr/bin/env python3
"""Runs inside the scenarios' server namespace (tools/scenarios/record.sh CTSCEN_OBSERVE).

Starts closetap live on the namespace's veth (DPDK net_af_packet) with /metrics on the namespace's
loopback, and a real Prometheus configured from deploy/prometheus/prometheus.yml: the same
relabeling, recording rules and alert rules, only with 1 s intervals and a target file of its
own (one target with site/tap labels, one without, named by the relabeling). Signals readiness,
waits for SIGTERM (all scenarios done), lets closetap conclude every connection and Prometheus
scrape the final state and evaluate the rules, then runs every query of the Grafana dashboard
through Prometheus's HTTP API (instant queries, template variables substituted) and writes what
it answered to OUT/panels.json.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testlib import get, scrape_value, wait_until as _wait_until  # noqa: E402

METRICS_PORT = 19590
METRICS = f"127.0.0.1:{METRICS_PORT}"
PROM = "127.0.0.1:19591"
SITE, TAP = "test-site", "veth-tap"
# What Grafana would put in for the dashboard's variables; windows that this short run covers.
SUBST = {"$__rate_interval": "1m", "$__interval": "5s", "$__range": "2m",
         "${datasource}": "closetap-prometheus", "$site": ".*", "$tap": ".*"}


def wait_until(what, fn, seconds):
    return _wait_until(what, fn, seconds, who="panel_observer")


def prom_api(path, **params):
    body = urllib.parse.urlencode(params).encode() if params else None
    try:
        return json.loads(get(f"http://{PROM}{path}", data=body))
    except urllib.error.HTTPError as e:  # 400/422: a query that does not parse or evaluate
        return json.loads(e.read().decode())


def query(q):
    return prom_api("/api/v1/query", query=q)


def substitute(expr):
    for k in sorted(SUBST, key=len, reverse=True):
        expr = expr.replace(k, SUBST[k])
    return expr


def grafana_query(expr):
    """Grafana's label_values(metric, label) as the PromQL Grafana sends for it."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", expr)
    if m:
        return f"group by ({m.group(2)}) ({m.group(1)})"
    return expr


def panel_queries(dashboard):
    """(where, expr, kind) for every target of every panel (rows' nested panels too) and every
    query variable."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f'panel {p.get("id")} "{p.get("title")}" {t.get("refId")}', t["expr"], p.get("type")))
    walk(dashboard.get("panels", []))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query")
            out.append((f'variable ${v["name"]}', q, "variable"))
    return out


def prometheus_config(deploy, out):
    """deploy/prometheus/prometheus.yml for this run: its relabeling and rules as they are."""
    src = os.path.join(deploy, "prometheus")
    cfg = yaml.safe_load(open(os.path.join(src, "prometheus.yml")))
    cfg["global"]["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    cfg["rule_files"] = [os.path.join(src, f) for f in cfg["rule_files"]]
    cfg.pop("alerting", None)
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "closetap")
    job["scrape_interval"] = "1s"
    job["scrape_timeout"] = "1s"
    tdir = os.path.join(out, "targets")
    os.makedirs(tdir, exist_ok=True)
    job["file_sd_configs"] = [{"files": [os.path.join(tdir, "*.yml")], "refresh_interval": "1s"}]
    with open(os.path.join(tdir, "test.yml"), "w") as f:
        yaml.safe_dump([{"targets": [METRICS], "labels": {"site": SITE, "tap": TAP}},
                        # no labels: the relabeling names it after its host (tap=localhost, site=unknown)
                        {"targets": [f"localhost:{METRICS_PORT}"]}], f)
    path = os.path.join(out, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def closetap_command(closetap, dev, out, signatures):
    args = {"conn-log": os.path.join(out, "live.jsonl"), "metrics-file": os.path.join(out, "live.prom"),
            "events": os.path.join(out, "events.jsonl")}
    help_text = subprocess.run([closetap, "--help"], capture_output=True, text=True).stdout
    if "--config" in help_text:
        # Once closetap reads deploy's configuration file, run it the way the systemd unit does.
        cfg = {"ports": [{"af_packet": dev}],
               "timeouts": {"closed": 1},
               "signatures": signatures,
               "outputs": {"conn_log": args["conn-log"], "events": args["events"],
                           "metrics_file": args["metrics-file"]},
               "metrics": {"listen": METRICS}}
        path = os.path.join(out, "closetap.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f)
        return [closetap, "--config", path], "config"
    return ([closetap, "--vdev", f"net_af_packet0,iface={dev}", "--", "--metrics", METRICS,
             "--conn-log", args["conn-log"], "--metrics-file", args["metrics-file"], "--events", args["events"],
             "--signatures", signatures, "--timeout-closed", "1"], "flags")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--closetap", required=True)
    ap.add_argument("--deploy", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = os.environ["DEV"]
    out = a.out
    os.makedirs(out, exist_ok=True)
    dashboard = json.load(open(os.path.join(a.deploy, "grafana", "dashboards", "closetap-overview.json")))

    cmd, how = closetap_command(a.closetap, dev, out, os.path.join(a.deploy, "signatures.yaml"))
    ct_log = open(os.path.join(out, "closetap.log"), "w")
    ct = subprocess.Popen(cmd, stdout=ct_log, stderr=subprocess.STDOUT)
    def closetap_up():
        if ct.poll() is not None:
            raise SystemExit(f"panel_observer: closetap exited {ct.returncode} (see closetap.log)")
        return "closetap_build_info" in get(f"http://{METRICS}/metrics")
    wait_until("closetap /metrics", closetap_up, 30)

    cfg = prometheus_config(a.deploy, out)
    prom_log = open(os.path.join(out, "prometheus.log"), "w")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(out, 'tsdb')}",
         f"--web.listen-address={PROM}"], stdout=prom_log, stderr=subprocess.STDOUT)
    wait_until("prometheus ready", lambda: "Ready" in get(f"http://{PROM}/-/ready"), 60)
    wait_until("both targets scraped",
               lambda: len(query('up{job="closetap"} == 1')["data"]["result"]) == 2, 30)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    open(os.environ["CTSCEN_READY"], "w").close()

    signal.sigwait({signal.SIGTERM})
    wait_until("closetap to conclude every connection",
               lambda: scrape_value(get(f"http://{METRICS}/metrics"), "closetap_flows_active") == 0, 60)
    time.sleep(0.5)
    final_total = sum(float(l.rsplit(" ", 1)[1]) for l in get(f"http://{METRICS}/metrics").splitlines()
                      if l.startswith("closetap_tcp_closes_total{"))
    wait_until("prometheus to scrape the final state",
               lambda: any(float(r["value"][1]) == final_total for r in
                           query(f'sum(closetap_tcp_closes_total{{tap="{TAP}"}})')["data"]["result"]), 30)
    time.sleep(2.5)  # two more evaluations: the recording rules see the final samples

    results = []
    for where, expr, kind in panel_queries(dashboard):
        q = grafana_query(substitute(expr))
        body = query(q)
        res = body.get("data", {}).get("result", []) if body.get("status") == "success" else []
        values = []
        for r in res:
            try:
                values.append(float(r["value"][1]))
            except (KeyError, ValueError, TypeError):
                pass
        results.append({"where": where, "kind": kind, "expr": expr, "query": q, "status": body.get("status"),
                        "error": body.get("error"), "series": len(res),
                        "sum": sum(v for v in values if v == v),  # NaN-free
                        "labels": [r.get("metric", {}) for r in res][:20]})
    rules = prom_api("/api/v1/rules").get("data", {}).get("groups", [])
    rule_health = [{"group": g["name"], "name": r.get("name"), "health": r.get("health"), "error": r.get("lastError")}
                   for g in rules for r in g["rules"]]
    targets = [r["metric"] for r in query('group by (site, tap, instance) (up{job="closetap"})')["data"]["result"]]
    with open(os.path.join(out, "panels.json"), "w") as f:
        json.dump({"closetap_started_with": how, "final_closes": final_total, "queries": results,
                   "rules": rule_health, "targets": targets}, f, indent=1)

    ct.send_signal(signal.SIGTERM)
    rc = ct.wait(timeout=30)
    prom.send_signal(signal.SIGTERM)
    prom.wait(timeout=30)
    if rc != 0:
        print(f"panel_observer: closetap exited {rc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
