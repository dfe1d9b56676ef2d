#!/usr/bin/env python3
"""Faults, live: closetap on a veth (DPDK net_af_packet) in a network namespace, kernel TCP from a
second namespace. One case per run (argv[2]):

  sigterm, sigint  open, reset and still-open connections; the signal stops closetap with exit 0,
                   the conn log holds one record per connection (the open ones flushed with
                   end=end_of_input, close none), the events file the reset, the metrics file is
                   complete (its counts equal the records);
  disk_full        --conn-log on a 64 KiB tmpfs that fills while running, --events on /dev/full:
                   one report per log on stderr, every record counted as written or failed in the
                   metrics, packets still all processed (closetap's rx = the veth's counters);
  scrape_storm     --metrics on loopback (a bare port): it binds 127.0.0.1 only; 16 stalled
                   clients (partial request, never read) and a storm of concurrent scrapes while
                   connections run: packets processed = the veth's counters, no drops, records
                   = connections, and a scrape after the storm succeeds;
  link_flap        `ip link set dev down` then `up` under closetap: it keeps running, logs each
                   change once, counts them (closetap_port_link_changes_total), and connections
                   made after the link came back are tracked and closed correctly.

Namespaces and veths are named ctx-<pid>-*; everything is removed at the end. Skipped (77)
without root or iproute2.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testlib import Checker  # noqa: E402

PEER = os.path.join(HERE, "peer.py")
TAG = f"ctx-{os.getpid()}"
NS_C, NS_S = f"{TAG}-c", f"{TAG}-s"
DEV_C, DEV_S = f"ctx{os.getpid() % 100000}c", f"ctx{os.getpid() % 100000}s"
IP_C, IP_S = "10.231.0.1", "10.231.0.2"
PORT = 8080
METRICS_PORT = 9490
STALLED = 16  # 4 times civetweb's threads (pipeline/main.cc)


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def nsx(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def setup():
    sh("ip", "netns", "add", NS_C)
    sh("ip", "netns", "add", NS_S)
    sh("ip", "link", "add", DEV_C, "netns", NS_C, "type", "veth", "peer", "name", DEV_S, "netns", NS_S)
    for ns, dev, ip in ((NS_C, DEV_C, IP_C), (NS_S, DEV_S, IP_S)):
        # No IPv6 (router solicitations, DAD) on the wire: only the test's traffic and ARP.
        sh(*nsx(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"))
        sh(*nsx(ns, "ip", "addr", "add", f"{ip}/24", "dev", dev))
        sh(*nsx(ns, "ip", "link", "set", dev, "up"))
        sh(*nsx(ns, "ip", "link", "set", "lo", "up"))
        # The veth must not hand TSO super-frames to af_packet: the wire's segment sizes.
        subprocess.run(nsx(ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"),
                       capture_output=True)


def teardown():
    for ns in (NS_C, NS_S):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def veth_packets():
    """Frames the server's veth received plus sent: what af_packet on it sees."""
    out = sh(*nsx(NS_S, "cat", f"/sys/class/net/{DEV_S}/statistics/rx_packets",
                  f"/sys/class/net/{DEV_S}/statistics/tx_packets")).stdout.split()
    return int(out[0]) + int(out[1])


STARTED = []  # every closetap of this run: their stderr is checked for sanitizer reports


class Closetap:
    def __init__(self, closetap, tmp, extra, duration=90):
        STARTED.append(self)
        self.log = os.path.join(tmp, "closetap.stderr")
        self.conn_log = os.path.join(tmp, "conns.jsonl")
        self.events = os.path.join(tmp, "events.jsonl")
        self.prom = os.path.join(tmp, "final.prom")
        args = ["--conn-log", self.conn_log, "--events", self.events, "--metrics-file", self.prom,
                "--metrics", str(METRICS_PORT), "--flows", "8192", "--signatures", "none",
                "--timeout-closed", "1", "--duration", str(duration), "--quiet"]
        args = self._override(args, extra)
        # -l 0,1 on this 2-CPU machine; --duration is the safety net against a stray.
        self.p = subprocess.Popen(nsx(NS_S, closetap, "-l", "0,1", "--vdev",
                                      f"net_af_packet0,iface={DEV_S}", "--", *args),
                                  stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.wait_ready()

    @staticmethod
    def _override(args, extra):
        for k, v in extra.items():
            if k in args:
                args[args.index(k) + 1] = v
            else:
                args += [k, v]
        return args

    def scrape(self, timeout=5):
        r = subprocess.run(nsx(NS_S, sys.executable, "-c",
                               "import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
                               f"'http://127.0.0.1:{METRICS_PORT}/metrics',timeout={timeout}).read().decode())"),
                           capture_output=True, text=True, timeout=timeout + 10)
        return r.stdout if r.returncode == 0 else None

    def wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise SystemExit(f"closetap exited {self.p.returncode}: {self.stderr()}")
            t = self.scrape(timeout=2)
            if t and "closetap_build_info" in t:
                return
            time.sleep(0.3)
        raise SystemExit("closetap /metrics did not come up")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def stderr(self):
        return open(self.log).read()

    def records(self):
        return [json.loads(l) for l in open(self.conn_log) if l.strip()]


def metrics(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def total(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def wait_for(fn, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def start_server():
    p = subprocess.Popen(nsx(NS_S, sys.executable, PEER, "server", IP_S, str(PORT)),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def run_client(closed, open_=0, rst=0, hold=0.0, wait=True):
    p = subprocess.Popen(nsx(NS_C, sys.executable, PEER, "client", IP_S, str(PORT), str(closed),
                             str(open_), str(rst), str(hold)), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"client failed (exit {p.wait()})")
    if wait:
        p.wait(60)
    return p


def our_records(recs):
    return [r for r in recs if r["resp_p"] == PORT]


def case_signal(c, ct_bin, tmp, sig):
    ct = Closetap(ct_bin, tmp, {})
    srv = start_server()
    client = run_client(closed=5, open_=3, rst=1, hold=60, wait=False)
    try:
        # The finished ones reach the log within a quarter second of being concluded.
        wait_for(lambda: len(our_records(ct.records())) >= 6, 20, "the closed connections' records")
        live = ct.scrape()
        rc = ct.stop(sig)
        c.check(rc == 0, f"{sig.name}: closetap exits 0", f"exit {rc}: {ct.stderr()[-500:]}")
    finally:
        client.kill()
        srv.kill()
    recs = our_records(ct.records())
    c.check(len(recs) == 9, f"{sig.name}: one record per connection (9)", f"{len(recs)} records")
    by_close = {}
    for r in recs:
        by_close[r["close"]] = by_close.get(r["close"], 0) + 1
    c.check(by_close.get("none", 0) == 3 and all(r["end"] == "end_of_input" for r in recs if r["close"] == "none"),
            f"{sig.name}: the 3 open connections flushed as close=none, end=end_of_input", str(by_close))
    c.check(by_close.get("rst", 0) == 1, f"{sig.name}: the reset recorded", str(by_close))
    c.check(by_close.get("fin_3way", 0) + by_close.get("fin_4way", 0) == 5,
            f"{sig.name}: the 5 FIN closes recorded", str(by_close))
    ev = [json.loads(l) for l in open(ct.events)]
    c.check(len(ev) == 1 and ev[0]["close"] == "rst", f"{sig.name}: events file flushed (the reset)", str(ev))
    text = open(ct.prom).read()
    m = metrics(text)
    # The live endpoint adds prometheus-cpp's own exposer_* families; the rest must be there.
    fams = lambda t: {l.split()[2] for l in t.splitlines()  # noqa: E731
                      if l.startswith("# TYPE ") and not l.split()[2].startswith("exposer_")}
    c.check(text.endswith("\n") and fams(text) == fams(live) and len(fams(text)) > 20,
            f"{sig.name}: metrics file written and complete ({len(fams(text))} families, as a scrape)",
            str(fams(text) ^ fams(live or "")))
    c.check(total(m, "closetap_tcp_closes_total") == total(m, "closetap_conn_ended_total") ==
            m.get("closetap_conn_log_records_total") and m.get("closetap_conn_log_records_total") == len(ct.records()),
            f"{sig.name}: metrics file counts = the conn log's {len(ct.records())} records")


def case_disk_full(c, ct_bin, tmp):
    mnt = os.path.join(tmp, "tiny")
    os.mkdir(mnt)
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "ctx-tiny", mnt)
    try:
        ct = Closetap(ct_bin, tmp, {"--conn-log": os.path.join(mnt, "conns.jsonl"), "--events": "/dev/full"})
        srv = start_server()
        try:
            m0 = metrics(ct.scrape())
            a0 = veth_packets()
            n = 300
            run_client(closed=n - 20, rst=20)
            # Every connection concluded (closed flows linger --timeout-closed 1 s).
            wait_for(lambda: total(metrics(ct.scrape() or ""), "closetap_conn_ended_total") >= n, 30,
                     "every connection's record")
            time.sleep(0.6)
            m1 = metrics(ct.scrape())
            a1 = veth_packets()
            rc = ct.stop()
        finally:
            srv.kill()
        err = ct.stderr()
        lines = [l for l in err.splitlines() if "No space left on device" in l]
        c.check(len(lines) == 2 and any("conn log" in l for l in lines) and any("event log" in l for l in lines),
                "disk full: reported once per log on stderr", err[-1500:])
        rx = total(m1, "closetap_rx_packets_total") - total(m0, "closetap_rx_packets_total")
        c.check(rx == a1 - a0, f"disk full: closetap received every frame of the veth ({rx} of {a1 - a0})")
        c.check(total(m1, "closetap_packets_total") == total(m1, "closetap_rx_packets_total"),
                "disk full: every received packet processed (packets_total = rx)")
        c.check(total(m1, "closetap_rx_dropped_packets_total") == 0 and
                m1.get("closetap_conn_records_dropped_total") == 0, "disk full: nothing dropped")
        m = metrics(open(ct.prom).read())
        ended = total(m, "closetap_conn_ended_total")
        w, e = m["closetap_conn_log_records_total"], m["closetap_conn_log_write_errors_total"]
        on_disk = sum(1 for l in open(os.path.join(mnt, "conns.jsonl"), errors="replace") if l.endswith("\n"))
        c.check(e > 0 and w + e == ended, f"disk full: records written {w:.0f} + failed {e:.0f} = concluded {ended:.0f}")
        c.check(on_disk == w, f"disk full: the file holds the {w:.0f} records counted as written ({on_disk})")
        c.check(m['closetap_events_total{result="error"}'] >= 20 and m['closetap_events_total{result="written"}'] == 0,
                "disk full: events on /dev/full counted as errors")
        c.check(rc == 1, f"disk full: exit 1 at the end (records were lost), got {rc}")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


def case_scrape_storm(c, ct_bin, tmp):
    ct = Closetap(ct_bin, tmp, {})
    srv = start_server()
    storm = subprocess.Popen(nsx(NS_S, sys.executable, os.path.join(HERE, "scrape_storm.py"),
                                 f"127.0.0.1:{METRICS_PORT}", str(STALLED), "8", "12"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ss = [l.split()[3] for l in sh(*nsx(NS_S, "ss", "-Hltn", f"sport = :{METRICS_PORT}")).stdout.splitlines()]
        c.check(ss == [f"127.0.0.1:{METRICS_PORT}"], f"a bare --metrics port listens on 127.0.0.1 only: {ss}")
        r = subprocess.run(nsx(NS_C, sys.executable, "-c",
                               f"import socket;socket.create_connection(('{IP_S}',{METRICS_PORT}),timeout=2)"),
                           capture_output=True)
        c.check(r.returncode != 0, "the metrics port is not reachable from the network")
        m0 = metrics(ct.scrape(timeout=30))
        a0 = veth_packets()
        line = storm.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"scrape_storm.py: {line} {storm.communicate()[0]}")
        n = 200
        run_client(closed=n)
        out = storm.communicate(timeout=60)[0]
        print(out.strip())
        wait_for(lambda: total(metrics(ct.scrape(timeout=30) or ""), "closetap_conn_ended_total") -
                 total(m0, "closetap_conn_ended_total") >= n, 40, "every connection's record")
        t0 = time.time()
        m1 = metrics(ct.scrape(timeout=30))
        a1 = veth_packets()
        c.check(bool(m1), f"a scrape after the storm succeeds ({time.time() - t0:.2f} s)")
        rx = total(m1, "closetap_rx_packets_total") - total(m0, "closetap_rx_packets_total")
        c.check(rx == a1 - a0, f"storm: closetap received every frame of the veth ({rx} of {a1 - a0})")
        c.check(total(m1, "closetap_packets_total") == total(m1, "closetap_rx_packets_total"),
                "storm: every received packet processed")
        c.check(total(m1, "closetap_rx_dropped_packets_total") == 0 and
                m1.get("closetap_conn_records_dropped_total") == 0, "storm: no drops")
        stats = dict(kv.split("=") for kv in out.split() if "=" in kv)
        # civetweb gives each connection a thread; a stalled one holds it until request_timeout_ms
        # (2 s), then is dropped: the storm's scrapes wait for threads, then are served.
        c.check(int(stats.get("ok", 0)) > 0 and int(stats.get("stalled_dropped", 0)) == STALLED,
                f"storm: stalled clients dropped by the request timeout, scrapes served ({out.strip()})")
        rc = ct.stop()
        c.check(rc == 0, f"storm: closetap exits 0, got {rc}")
        recs = our_records(ct.records())
        c.check(len(recs) == n and all(r["close"] in ("fin_3way", "fin_4way") for r in recs),
                f"storm: one FIN-closed record per connection ({len(recs)} of {n})")
    finally:
        if storm.poll() is None:
            storm.kill()
        srv.kill()


def case_link_flap(c, ct_bin, tmp):
    ct = Closetap(ct_bin, tmp, {})
    srv = start_server()
    try:
        run_client(closed=5)
        ch_name = 'closetap_port_link_changes_total{port="net_af_packet0"}'
        # A fresh veth may report its carrier a moment after closetap's first look: start from up.
        before = wait_for(lambda: (lambda m: m if m.get(ch_name.replace("changes_total", "up")) == 1 else None)(
            metrics(ct.scrape() or "")), 10, "the link to be reported up")
        err0 = len(ct.stderr())
        sh(*nsx(NS_S, "ip", "link", "set", DEV_S, "down"))
        time.sleep(2)
        down = metrics(ct.scrape())
        sh(*nsx(NS_S, "ip", "link", "set", DEV_S, "up"))
        # The veth needs a moment before the kernel passes traffic again (carrier, ARP).
        wait_for(lambda: "state UP" in sh(*nsx(NS_S, "ip", "link", "show", DEV_S)).stdout,
                 20, "the link to come back")
        time.sleep(1.0)
        up = metrics(ct.scrape())
        c.check(ct.p.poll() is None, "link flap: closetap keeps running")
        name = 'closetap_port_link_up{port="net_af_packet0"}'
        c.check(down.get(name) == 0 and up.get(name) == 1, f"link flap: {name} 0 while down, 1 after",
                f"{down.get(name)} {up.get(name)}")
        ch = up.get(ch_name, 0) - before.get(ch_name, 0)
        c.check(ch == 2, f"link flap: two link changes counted, got {ch}")
        run_client(closed=5, rst=2)
        wait_for(lambda: len(our_records(ct.records())) >= 12 or None, 20, "the new connections' records")
        rc = ct.stop()
        c.check(rc == 0, f"link flap: closetap exits 0, got {rc}")
    finally:
        srv.kill()
    err = ct.stderr()[err0:]
    c.check(err.count("link down") == 1 and err.count("link up") == 1,
            "link flap: each change logged once", ct.stderr()[-800:] + f" (from {err0})")
    recs = our_records(ct.records())
    fins = [r for r in recs if r["close"] in ("fin_3way", "fin_4way") and r["conn_state"] == "SF"]
    rsts = [r for r in recs if r["close"] == "rst"]
    c.check(len(recs) == 12 and len(fins) == 10 and len(rsts) == 2,
            f"link flap: connections before and after are tracked and closed ({len(fins)} SF FIN closes, "
            f"{len(rsts)} resets, {len(recs)} records)")


def main():
    ct_bin = os.path.abspath(sys.argv[1])
    case = sys.argv[2]
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("SKIP: needs root and iproute2")
        return 77
    c = Checker()
    with tempfile.TemporaryDirectory(prefix=f"{TAG}-") as tmp:
        try:
            setup()
            if case in ("sigterm", "sigint"):
                case_signal(c, ct_bin, tmp, signal.SIGTERM if case == "sigterm" else signal.SIGINT)
            elif case == "disk_full":
                case_disk_full(c, ct_bin, tmp)
            elif case == "scrape_storm":
                case_scrape_storm(c, ct_bin, tmp)
            elif case == "link_flap":
                case_link_flap(c, ct_bin, tmp)
            else:
                raise SystemExit(f"unknown case {case}")
            for ct in STARTED:
                err = ct.stderr()
                c.check("Sanitizer" not in err and "runtime error:" not in err,
                        "no sanitizer report on closetap's stderr", err[-2000:])
        finally:
            for p in subprocess.run(["pgrep", "-f", f"iface={DEV_S}"], capture_output=True,
                                    text=True).stdout.split():
                os.kill(int(p), signal.SIGKILL)  # only a closetap this test started
            teardown()
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
