#!/usr/bin/env python3
"""deploy/: the Prometheus configuration, rules and alerts, and the Grafana dashboard, checked.

  (a) promtool check config / check rules, and promtool test rules on
      deploy/prometheus/tests/*.yml (each alert firing and not firing on synthetic series);
      the dashboard JSON is well formed and names only metrics that exist (docs/metrics.md) or
      recording rules; systemd-analyze verify on deploy/closetap.service where it exists.
  (b) live: tools/scenarios/record.sh plays every close pattern with real kernel TCP in network
      namespaces while tests/deploy/panel_observer.py runs closetap on the veth and a real
      Prometheus configured from deploy/prometheus/ (relabeling, recording and alert rules).
      Every dashboard query (template variables substituted) must parse and return data; the
      closes and abnormal-close panels must count something; every rule must evaluate cleanly;
      the relabeling must name both targets.

    test_deploy.py CLOSETAP

Skipped (77) without promtool; (b) is skipped (77, after (a) passed) without root, ip, tc,
tcpdump, prometheus or PyYAML.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "deploy")
PROMDIR = os.path.join(DEPLOY, "prometheus")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "closetap-overview.json")
RECORD = os.path.join(ROOT, "tools", "scenarios", "record.sh")

passed = 0
failures = []


def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failures.append(f"{name}: {detail}".rstrip(": "))
        print(f"FAIL {name}: {detail}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def static_checks(closetap):
    p = run(["promtool", "check", "config", "prometheus.yml"], cwd=PROMDIR)
    # The target files live on the Prometheus host: a warning for their absence is expected.
    check("promtool check config deploy/prometheus/prometheus.yml", p.returncode == 0, p.stdout + p.stderr)
    p = run(["promtool", "check", "rules", "recording_rules.yml", "alert_rules.yml"], cwd=PROMDIR)
    check("promtool check rules recording_rules.yml alert_rules.yml", p.returncode == 0, p.stdout + p.stderr)
    tests = sorted(glob.glob(os.path.join(PROMDIR, "tests", "*.yml")))
    p = run(["promtool", "test", "rules"] + tests, cwd=os.path.join(PROMDIR, "tests"))
    check(f"promtool test rules ({len(tests)} files)", bool(tests) and p.returncode == 0, p.stdout + p.stderr)

    # Every alert of alert_rules.yml has a unit test.
    alerts = set(re.findall(r"^\s*- alert:\s*(\S+)", open(os.path.join(PROMDIR, "alert_rules.yml")).read(), re.M))
    tested = set()
    for t in tests:
        tested |= set(re.findall(r"alertname:\s*(\S+)", open(t).read()))
    check("every alert has a promtool unit test", alerts <= tested, f"untested: {sorted(alerts - tested)}")

    # Dashboard: valid JSON, and every closetap_* name is a documented metric or a recorded one.
    dash = json.load(open(DASHBOARD))
    exprs = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            exprs.extend(t.get("expr", "") for t in p.get("targets", []))
    walk(dash["panels"])
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v.get("type") == "query"]
    doc = open(os.path.join(ROOT, "docs", "metrics.md")).read()
    documented = set(re.findall(r"`(closetap_[a-z_]+)`", doc))
    # histogram series
    documented |= {f"{m}{s}" for m in list(documented) for s in ("_bucket", "_sum", "_count")}
    recorded = set(re.findall(r"record:\s*(\S+)", open(os.path.join(PROMDIR, "recording_rules.yml")).read()))
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\bclosetap(?:_[a-z_]+|:[a-z0-9_:]+)", e))
    unknown = sorted(n for n in used if n not in documented and n not in recorded)
    check(f"dashboard: {len(exprs)} queries name only documented metrics and recording rules", not unknown,
          f"unknown: {unknown}")
    ids = [p["id"] for p in dash["panels"]]
    check("dashboard: panel ids unique, uid set, tap/site variables", len(ids) == len(set(ids)) and dash.get("uid") and
          {"tap", "site"} <= {v["name"] for v in dash["templating"]["list"]})

    # systemd unit, with the binary path pointed at this build.
    if shutil.which("systemd-analyze"):
        with tempfile.TemporaryDirectory() as tmp:
            unit = open(os.path.join(DEPLOY, "closetap.service")).read().replace("/usr/bin/closetap", closetap)
            path = os.path.join(tmp, "closetap.service")
            open(path, "w").write(unit)
            p = run(["systemd-analyze", "verify", path])
            check("systemd-analyze verify deploy/closetap.service", p.returncode == 0 and not p.stderr.strip(),
                  p.stdout + p.stderr)
    else:
        print("SKIP systemd-analyze verify: no systemd-analyze")


# Panels that must count something: the scenarios make every close pattern and several
# abnormal reasons.
MUST_COUNT = ("Closes by pattern and initiator", "Abnormal closes by reason", "Abnormal closes by app",
              "Abnormal closes by reason and app", "Closes per second by tap", "Abnormal-close ratio by tap",
              "Zeek conn_state", "FIN-ACK outcomes", "Rx packets by port", "Packets by class",
              "Connections ended by cause")


def live_checks(closetap):
    with tempfile.TemporaryDirectory(prefix="closetap-deploy-") as tmp:
        for attempt in (1, 2):
            out = os.path.join(tmp, f"run{attempt}")
            env = dict(os.environ, CTSCEN_OBSERVE=f"{sys.executable} {HERE}/panel_observer.py "
                                                  f"--closetap {closetap} --deploy {DEPLOY} --out {out}")
            p = subprocess.run(["bash", RECORD, out], env=env, capture_output=True, text=True, timeout=240)
            if p.returncode == 3 and attempt == 1:
                print("the kernel did not produce a pattern under observation; once more")
                continue
            break
        if p.returncode != 0 or not os.path.exists(os.path.join(out, "panels.json")):
            print(p.stderr[-3000:])
            for log in ("closetap.log", "prometheus.log"):
                if os.path.exists(os.path.join(out, log)):
                    print(f"--- {log}\n" + open(os.path.join(out, log)).read()[-2000:])
            check("live run (record.sh + panel_observer.py)", False, f"exit {p.returncode}")
            return
        res = json.load(open(os.path.join(out, "panels.json")))
        print(f"closetap started with {res['closetap_started_with']}; {res['final_closes']:.0f} closes")
        for q in res["queries"]:
            name = f"{q['where']}: {q['query']}"
            if q["status"] != "success":
                check(name, False, f"does not evaluate: {q['error']}")
            elif q["series"] == 0:
                check(name, False, "no data")
            elif any(m in q["where"] for m in MUST_COUNT) and not q["sum"] > 0:
                check(name, False, f"{q['series']} series, all 0")
            else:
                check(f"{q['where']} ({q['series']} series)", True)
        bad = [r for r in res["rules"] if r["health"] != "ok"]
        check(f"all {len(res['rules'])} recording and alert rules evaluate on live data", res["rules"] and not bad,
              json.dumps(bad))
        want = [{"site": "test-site", "tap": "veth-tap"}, {"site": "unknown", "tap": "localhost"}]
        got = sorted(({"site": t.get("site"), "tap": t.get("tap")} for t in res["targets"]), key=lambda d: d["tap"])
        check("relabeling: target labels site/tap (given, and named after the host)",
              sorted(want, key=lambda d: d["tap"]) == got, f"targets {res['targets']}")


def main():
    closetap = os.path.abspath(sys.argv[1])
    if not shutil.which("promtool"):
        print("SKIP: needs promtool (apt-get install prometheus)")
        return 77
    static_checks(closetap)
    missing = [t for t in ("ip", "tc", "tcpdump", "prometheus") if not shutil.which(t)]
    try:
        import yaml  # noqa: F401  (panel_observer.py reads and writes Prometheus's YAML)
    except ImportError:
        missing.append("python3-yaml")
    if os.geteuid() != 0 or missing:
        print(f"{passed} passed, {len(failures)} failed")
        if failures:
            return 1
        print(f"SKIP live panel queries: needs root and {missing or 'nothing'}")
        return 77
    live_checks(closetap)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
