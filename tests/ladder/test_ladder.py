#!/usr/bin/env python3
"""Golden teardown ladders: `closetap explain` on the project's namespace captures.

usage: test_ladder.py CLOSETAP [--captures DIR] [--update]

  - for every scenario of DIR/scenarios.tsv (real kernel connections, one per close pattern),
    `closetap explain --conn ... --color never` must print exactly tests/ladder/SCENARIO.txt
    (--update rewrites the files: review the diff against `tcpdump -nn -S -r` before committing);
  - colour: --color always paints, --color auto on a pipe does not;
  - tshark: every wave of every record of the conn log must be a packet of the capture with the
    same direction, flags and length, and its seq/ack must equal tshark's tcp.seq / tcp.ack
    (Wireshark's relative numbers) for the sides whose SYN was seen, tcp.seq_raw / tcp.ack_raw
    for the others (waves_relative). Without tshark on PATH that part is SKIPPED, not passed.
Prints one line per check; exits non-zero on any failure.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testlib import Checker  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def endpoint(h, p):
    return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"


def explain(closetap, pcap, *args):
    r = subprocess.run([closetap, "explain", "--pcap", pcap, *args], capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def golden(c, closetap, captures, update):
    pcap = os.path.join(captures, "scenarios.pcap")
    scenarios = {}
    with open(os.path.join(captures, "scenarios.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            scenarios.setdefault(row["scenario"], []).append(row)
    for name, rows in scenarios.items():
        parts = []
        ok = True
        for row in rows:
            conn = (endpoint(row["client_ip"], row["client_port"]) + "-" +
                    endpoint(row["server_ip"], row["server_port"]))
            rc, out, err = explain(closetap, pcap, "--conn", conn, "--color", "never")
            if rc != 0:
                c.check(False, f"ladder {name} {conn}", f"exit {rc}: {err.strip()}")
                ok = False
                break
            parts.append(out)
        if not ok:
            continue
        text = "\n".join(parts)
        path = os.path.join(HERE, name + ".txt")
        if update:
            with open(path, "w") as f:
                f.write(text)
            print(f"WROTE {path}")
            continue
        want = open(path).read() if os.path.exists(path) else None
        detail = "no golden file (run with --update)" if want is None else "differs:\n" + text
        c.check(text == want, f"ladder {name}", detail)


def colour(c, closetap, captures):
    pcap = os.path.join(captures, "scenarios.pcap")
    rc, out, _ = explain(closetap, pcap, "--color", "always")
    c.check(rc == 0 and "\x1b[" in out, "--color always paints")
    rc, out, _ = explain(closetap, pcap)
    c.check(rc == 0 and "\x1b[" not in out and "close=" in out, "--color auto on a pipe is plain")
    rc, _, err = explain(closetap, pcap, "--conn", "10.0.0.1-10.0.0.2:80")
    c.check(rc == 2 and "error" in err, "--conn without a port is a usage error", err.strip())
    rc, _, err = explain(closetap, pcap, "--conn", "10.9.9.9:1-10.9.9.9:2")
    c.check(rc == 1 and "no connection" in err, "--conn matching nothing exits 1", err.strip())
    rc, out, _ = explain(closetap, pcap, "--abnormal", "--color", "never")
    reasons = [l for l in out.splitlines() if l.startswith("close=")]
    c.check(rc == 0 and reasons and all("reason=" in l for l in reasons),
            "--abnormal shows only abnormal closes", f"{len(reasons)} ladders")


def tshark_packets(pcap):
    fields = ["frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
              "tcp.dstport", "tcp.flags", "tcp.seq", "tcp.ack", "tcp.seq_raw", "tcp.ack_raw",
              "tcp.len"]
    cmd = ["tshark", "-r", pcap, "-o", "tcp.relative_sequence_numbers:TRUE", "-T", "fields",
           "-E", "separator=\t", "-Y", "tcp"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    pkts = []
    for line in r.stdout.splitlines():
        v = line.split("\t")
        if len(v) < len(fields):
            v += [""] * (len(fields) - len(v))
        d = dict(zip(fields, v))
        src = d["ip.src"] or d["ipv6.src"]
        dst = d["ip.dst"] or d["ipv6.dst"]
        pkts.append({
            "us": round(float(d["frame.time_epoch"]) * 1e6),
            "src": (src, int(d["tcp.srcport"])), "dst": (dst, int(d["tcp.dstport"])),
            "flags": int(d["tcp.flags"], 16) & 0xff,
            "seq": int(d["tcp.seq"]) if d["tcp.seq"] else None,
            "ack": int(d["tcp.ack"]) if d["tcp.ack"] else None,
            "seq_raw": int(d["tcp.seq_raw"]) if d["tcp.seq_raw"] else None,
            "ack_raw": int(d["tcp.ack_raw"]) if d["tcp.ack_raw"] else None,
            "len": int(d["tcp.len"] or 0),
        })
    return pkts


FLAG_NAMES = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"]


def flag_bits(text):
    return sum(1 << FLAG_NAMES.index(n) for n in text.split(",") if n in FLAG_NAMES)


def tshark_compare(c, closetap, captures):
    if shutil.which("tshark") is None:
        c.skip("tshark comparison: tshark is not on PATH (not passed)")
        return
    pcap = os.path.join(captures, "scenarios.pcap")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "conns.jsonl")
        r = subprocess.run([closetap, "--pcap", pcap, "--conn-log", log, "--quiet",
                            "--signatures", "none"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            c.check(False, "replay for the tshark comparison", r.stderr.strip())
            return
        recs = [json.loads(l) for l in open(log) if l.strip()]
    pkts = tshark_packets(pcap)
    checked = 0
    for rec in recs:
        o = (rec["orig_h"], rec["orig_p"])
        p = (rec["resp_h"], rec["resp_p"])
        waves = rec.get("waves", [])
        name = f"{endpoint(*o)}-{endpoint(*p)} {rec['close']}"
        if not waves:
            c.check(rec["close"] in ("none", "no_answer"), f"tshark {name}: no waves",
                    "a closing connection without waves")
            continue
        mine = [x for x in pkts if {x["src"], x["dst"]} == {o, p}
                and rec["ts"] * 1e6 - 1 <= x["us"]]
        first = next((x for x in mine if x["flags"] & 0x05), None)
        if first is None:
            c.check(False, f"tshark {name}", "no FIN or RST in the capture")
            continue
        rel = rec["waves_relative"]
        problems = []
        used = set()
        for i, w in enumerate(waves):
            t_us = first["us"] + round(w["t"] * 1e6)
            src = o if w["dir"] == "orig" else p
            cands = [k for k, x in enumerate(mine) if k not in used and x["src"] == src
                     and abs(x["us"] - t_us) <= 1 and x["flags"] == flag_bits(w["flags"])
                     and x["len"] == w["len"]]
            if not cands:
                problems.append(f"wave {i + 1}: no packet {w}")
                continue
            x = mine[cands[0]]
            used.add(cands[0])
            sender_rel = rel[w["dir"]]
            receiver_rel = rel["resp" if w["dir"] == "orig" else "orig"]
            want_seq = x["seq"] if sender_rel else x["seq_raw"]
            if w["seq"] != want_seq:
                problems.append(f"wave {i + 1}: seq {w['seq']} != tshark "
                                f"{'tcp.seq' if sender_rel else 'tcp.seq_raw'} {want_seq}")
            if x["flags"] & 0x10:
                want_ack = x["ack"] if receiver_rel else x["ack_raw"]
                if w["ack"] != want_ack:
                    problems.append(f"wave {i + 1}: ack {w['ack']} != tshark "
                                    f"{'tcp.ack' if receiver_rel else 'tcp.ack_raw'} {want_ack}")
            elif w["ack"] is not None:
                problems.append(f"wave {i + 1}: ack without the ACK flag")
            checked += 1
        c.check(not problems, f"tshark {name}: {len(waves)} waves", "; ".join(problems))
    print(f"# tshark: {checked} waves compared")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("closetap")
    ap.add_argument("--captures", default=os.path.join(HERE, "..", "captures"))
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    c = Checker()
    golden(c, a.closetap, a.captures, a.update)
    if a.update:
        return 0
    colour(c, a.closetap, a.captures)
    tshark_compare(c, a.closetap, a.captures)
    print(f"{c.passed} passed, {c.failed} failed, {c.skipped} skipped")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
