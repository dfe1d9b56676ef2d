#!/usr/bin/env python3
"""The accounting identity on every capture the project has.

For each input, closetap --pcap with --metrics-file and --conn-log, with one worker and with
--workers 2 (a dispatch lcore hashing flows to the workers: a pcap port has one queue), and:

  per port    libpcap's count of the file = closetap_rx_packets_total{port}
                                            + sum of closetap_rx_dropped_packets_total{port,*}
              (offline the port drops nothing and the dispatcher waits for room, so the drops
              are 0 and rx is the whole file)
  per worker  sum over ports of closetap_worker_rx_packets_total{worker,port}
                = closetap_worker_packets_total{worker}   (processed: one class each)
              and over workers, per port, = closetap_rx_packets_total{port}
  processed   sum of closetap_packets_total{class} = sum of rx over ports;
              closetap_packets_total{class="error"} = sum of closetap_parse_errors_total{reason};
              closetap_packets_total{class="tcp"} = packets in the conn log's records
              (orig_pkts + resp_pkts) + closetap_tcp_checksum_errors_total
              + closetap_flow_alloc_failed_total
  records     closetap_flows_created_total = conn log lines = sum of closetap_conn_ended_total;
              closetap_worker_wrong_shard_packets_total = 0

Inputs: tests/captures/*.pcap; every capture under ../shared/corpus/zeek and
../shared/corpus/suricata-verify (a SKIP line where absent); the committed fuzz seeds and
regressions of fuzz_pcap that closetap accepts; and captures made here with malformed frames
(empty, 1 byte, cut headers, jumbo frames, snap-length cuts, bad checksums with
--verify-checksums, non-IP, fragments, VLAN floods, time going backwards, a cut last record,
two ports replayed together, every link type). Files closetap refuses must be refused with one
line and exit 1.

    test_accounting.py --closetap BIN --pcap-count BIN [--sample N] [--jobs N]

--sample N keeps every Nth corpus capture (the ASan build uses it; the count is printed).
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from testlib import Checker  # noqa: E402

CORPORA = ("zeek", "suricata-verify")
SAMPLE_RE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{name: [(labels dict, value)]} from Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            continue
        labels = dict(LABEL_RE.findall(m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def total(metrics, name, **want):
    return sum(v for labels, v in metrics.get(name, []) if all(labels.get(k) == x for k, x in want.items()))


# --- captures made here -------------------------------------------------------------------------

def pcap_bytes(frames, linktype=1, snaplen=262144, ts0=1_700_000_000_000_000, cut_last=False):
    """Classic pcap; frames are bytes or (bytes, orig_len, ts_us)."""
    b = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
    for i, f in enumerate(frames):
        data, orig, ts = (f, len(f), ts0 + i * 1000) if isinstance(f, (bytes, bytearray)) else f
        b += struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data), orig) + data
    if cut_last:
        b = b[:-5]
    return bytes(b)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", bad_csum=False, frag=0x4000,
             doff=5, ip_proto=6):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 65535, 0, 0) + payload
    total_len = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total_len, 1, frag, 64, ip_proto, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    pseudo = struct.pack("!4s4sBBH", bytes(src), bytes(dst), 0, 6, len(tcp))
    c = csum(pseudo + tcp) ^ (0x5555 if bad_csum else 0)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    return ip + tcp


def eth(payload, etype=0x0800, vlans=()):
    h = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    for v in vlans:
        h += struct.pack("!HH", 0x8100, v)
    return h + struct.pack("!H", etype) + payload


def conversation(a=(10, 0, 0, 1), b=(10, 0, 0, 2), sport=40000, dport=80, payload=b"x" * 10, **kw):
    """A complete connection: handshake, data, 4-way close."""
    S, A, F, P = 0x02, 0x10, 0x01, 0x08
    pk = [(a, b, sport, dport, 100, 0, S, b""), (b, a, dport, sport, 500, 101, S | A, b""),
          (a, b, sport, dport, 101, 501, A, b""), (a, b, sport, dport, 101, 501, P | A, payload),
          (b, a, dport, sport, 501, 101 + len(payload), A, b""),
          (a, b, sport, dport, 101 + len(payload), 501, F | A, b""),
          (b, a, dport, sport, 501, 102 + len(payload), A, b""),
          (b, a, dport, sport, 501, 102 + len(payload), F | A, b""),
          (a, b, sport, dport, 102 + len(payload), 502, A, b"")]
    return [eth(ipv4_tcp(s, d, sp, dp, sq, ak, fl, pl, **kw)) for s, d, sp, dp, sq, ak, fl, pl in pk]


def generated(tmp):
    """(name, [files], extra args) of captures with malformed and odd frames."""
    out = []

    def write(name, data):
        path = os.path.join(tmp, name + ".pcap")
        with open(path, "wb") as f:
            f.write(data)
        return path

    good = conversation()
    malformed = [b"", b"\x02", eth(b"")[:13], eth(b"\x45\0\0"), eth(b"\x60" + b"\0" * 10, 0x86DD),
                 eth(b"\0" * 28, 0x0806),                                   # ARP: non_ip
                 eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 1, 2, 0, 0, 0x02, ip_proto=17)),  # non_tcp
                 eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 1, 2, 0, 0, 0x02, frag=0x2001)),   # fragment
                 eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 1, 2, 0, 0, 0x02, doff=2)),        # bad offset
                 eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 1, 2, 0, 0, 0x02), vlans=range(1, 12)),
                 eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 1, 2, 0, 0, 0x02))[:40]]
    out.append(("malformed", [write("malformed", pcap_bytes(good[:4] + malformed + good[4:]))], []))
    # Frames larger than an mbuf (jumbo, 9000 bytes) and the maximum snap length.
    jumbo = conversation(payload=b"j" * 8900)
    huge = eth(ipv4_tcp((10, 0, 0, 1), (10, 0, 0, 2), 5, 6, 0, 0, 0x10, b"h" * 65000))
    out.append(("jumbo", [write("jumbo", pcap_bytes(jumbo + [huge]))], []))
    # Snap length 64: every frame cut, the original length kept.
    cut = [(f[:64], len(f), 1_700_000_000_000_000 + i) for i, f in enumerate(conversation(payload=b"c" * 500))]
    out.append(("snaplen64", [write("snaplen64", pcap_bytes(cut, snaplen=64))], []))
    # Bad TCP checksums, replayed with --verify-checksums: counted, not tracked.
    bad = conversation(bad_csum=True)
    out.append(("bad_checksums", [write("bad_checksums", pcap_bytes(good + bad))], ["--verify-checksums"]))
    # Time going backwards, duplicates, a cut last record.
    frames = [(f, len(f), 1_700_000_000_000_000 + (9 - i) * 1000) for i, f in enumerate(good)]
    out.append(("backwards_dup_cut", [write("backwards", pcap_bytes(frames + frames, cut_last=True))], []))
    # A record in the middle with an impossible capture length: libpcap stops there.
    mid = bytearray(pcap_bytes(good))
    off = 24
    for _ in range(3):
        off += 16 + struct.unpack_from("<I", mid, off + 8)[0]
    struct.pack_into("<I", mid, off + 8, 0x00FFFF00)
    out.append(("corrupt_mid_record", [write("corrupt_mid", bytes(mid))], []))
    # Only the global header; only one cut record.
    out.append(("header_only", [write("header_only", pcap_bytes([]))], []))
    out.append(("one_cut_record", [write("one_cut", pcap_bytes(good[:1], cut_last=True))], []))
    # Many connections (more than --flows): eviction on a tiny table.
    many = []
    for i in range(200):
        many += conversation(a=(10, 1, i // 250, i % 250 + 1), sport=20000 + i)[:3]
    out.append(("evictions", [write("many", pcap_bytes(many))], ["--flows", "16"]))
    # A tap's two directions on two ports, merged by time.
    a_side = [f for i, f in enumerate(good) if i in (0, 2, 3, 5, 8)]
    b_side = [f for i, f in enumerate(good) if i not in (0, 2, 3, 5, 8)]
    pa = write("port_a", pcap_bytes(a_side + malformed[:3]))
    pb = write("port_b", pcap_bytes(b_side, ts0=1_700_000_000_000_500))
    out.append(("two_ports", [pa, pb], []))
    # Other link types: raw IP, BSD loopback, Linux SLL.
    raw = [f[14:] for f in good]
    out.append(("raw_ip", [write("raw", pcap_bytes(raw + [b"\x45"], linktype=101))], []))
    out.append(("null_bsd", [write("null", pcap_bytes([struct.pack("<I", 2) + f for f in raw] + [b"\x02"], linktype=0))], []))
    sll = [struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + f for f in raw]
    out.append(("linux_sll", [write("sll", pcap_bytes(sll + [b"\0" * 15], linktype=113))], []))
    return out


# --- one run -----------------------------------------------------------------------------------

def pcap_count(tool, path):
    """(packets, read_error) as libpcap sees the file; None when libpcap cannot open it."""
    p = subprocess.run([tool, path], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return None
    n, end = p.stdout.split()[:2]
    return int(n), end == "error"


def run_closetap(closetap, files, workers, extra, tmp, tag):
    prom = os.path.join(tmp, tag + ".prom")
    log = os.path.join(tmp, tag + ".jsonl")
    args = [closetap, "--quiet", "--signatures", "none", "--workers", str(workers),
            "--metrics-file", prom, "--conn-log", log] + extra
    for f in files:
        args += ["--pcap", f]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return p, prom, log


def check_run(name, files, counts, workers, p, prom, log):
    """Returns a list of problems (empty: the identity holds)."""
    if p.returncode != 0:
        return [f"exit {p.returncode}: {p.stderr.strip()[:300]}"]
    m = parse_metrics(open(prom).read())
    problems = []

    def eq(what, a, b):
        if a != b:
            problems.append(f"{what}: {a:.0f} != {b:.0f}")

    ports = [labels["port"] for labels, _ in m.get("closetap_rx_packets_total", [])]
    if len(ports) != len(files):
        return [f"{len(ports)} ports in the metrics for {len(files)} captures"]
    rx_all = 0
    for i, port in enumerate(ports):
        rx = total(m, "closetap_rx_packets_total", port=port)
        drops = total(m, "closetap_rx_dropped_packets_total", port=port)
        ierrors = total(m, "closetap_rx_dropped_packets_total", port=port, reason="ierrors")
        n, read_error = counts[i]
        # Every packet libpcap reads is received; where libpcap's reading ends in an error (a cut
        # or corrupt record) net_pcap counts read errors, ierrors: once per poll that hits it,
        # so their number depends on timing (how often the port is polled before the replay
        # stops). Nothing else is dropped offline.
        eq(f"{port}: libpcap's {n} packets = rx", float(n), rx)
        eq(f"{port}: offline drops other than ierrors", drops - ierrors, 0.0)
        if ierrors and not read_error:
            problems.append(f"{port}: ierrors {ierrors:.0f} on a file libpcap reads to its end")
        eq(f"{port}: rx = the workers' rx", rx, total(m, "closetap_worker_rx_packets_total", port=port))
        rx_all += rx
    worker_ids = sorted({labels["worker"] for labels, _ in m.get("closetap_worker_packets_total", [])})
    if len(worker_ids) != workers:
        problems.append(f"{len(worker_ids)} workers in the metrics, asked for {workers}")
    for w in worker_ids:
        eq(f"worker {w}: received = processed", total(m, "closetap_worker_rx_packets_total", worker=w),
           total(m, "closetap_worker_packets_total", worker=w))
    eq("sum over classes = rx", total(m, "closetap_packets_total"), rx_all)
    eq("class error = sum over parse error reasons", total(m, "closetap_packets_total", **{"class": "error"}),
       total(m, "closetap_parse_errors_total"))
    records = [json.loads(line) for line in open(log)]
    in_records = sum(r["orig_pkts"] + r["resp_pkts"] for r in records)
    eq("tcp = packets in records + checksum drops + no entry", total(m, "closetap_packets_total", **{"class": "tcp"}),
       in_records + total(m, "closetap_tcp_checksum_errors_total") + total(m, "closetap_flow_alloc_failed_total"))
    eq("flows created = records", total(m, "closetap_flows_created_total"), float(len(records)))
    eq("records ended = records", total(m, "closetap_conn_ended_total"), float(len(records)))
    eq("conn log lines written = records", total(m, "closetap_conn_log_records_total"), float(len(records)))
    eq("wrong shard", total(m, "closetap_worker_wrong_shard_packets_total"), 0.0)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--closetap", required=True)
    ap.add_argument("--pcap-count", required=True)
    ap.add_argument("--sample", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=4)  # closetap mostly waits: start-up, polling
    args = ap.parse_args()
    c = Checker()

    with tempfile.TemporaryDirectory(prefix="ctf-accounting-") as tmp:
        inputs = [(os.path.basename(f), [f], []) for f in sorted(glob.glob(os.path.join(ROOT, "tests", "captures", "*.pcap")))]
        for corpus in CORPORA:
            d = os.path.join(ROOT, "..", "shared", "corpus", corpus)
            files = sorted(f for pat in ("*.pcap", "*.pcapng", "*.cap")
                           for f in glob.glob(os.path.join(d, "**", pat), recursive=True))
            if not files:
                c.skip(f"../shared/corpus/{corpus}: absent")
                continue
            kept = files[::args.sample]
            print(f"corpus {corpus}: {len(kept)} of {len(files)} captures" +
                  (f" (1 in {args.sample})" if args.sample > 1 else ""))
            inputs += [(f"{corpus}/{os.path.relpath(f, d)}", [f], []) for f in kept]
        for sub in ("seeds", "regressions"):
            for f in sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", sub, "fuzz_pcap", "*"))):
                if os.path.isfile(f) and not os.path.basename(f).startswith((".", "README")):
                    inputs.append((f"fuzz {sub}/{os.path.basename(f)}", [f], []))
        inputs += [(f"generated/{n}", fs, extra) for n, fs, extra in generated(tmp)]

        def one(job):
            name, files, counts, workers, extra, tag = job
            p, prom, log = run_closetap(args.closetap, files, workers, extra, tmp, tag)
            if None in counts or any(n == 0 and err for n, err in counts):
                # libpcap cannot open it, or reads nothing but an error (pcap_probe.cc): closetap
                # must refuse it with one line, exit 1.
                line = p.stderr.strip()
                ok = p.returncode == 1 and line.startswith("closetap: error:") and "\n" not in line
                return job, ok, "refused with one line" if ok else f"exit {p.returncode}: {line[:300]}"
            problems = check_run(name, files, counts, workers, p, prom, log)
            for f in (prom, log):
                if os.path.exists(f):
                    os.unlink(f)
            return job, not problems, "; ".join(problems)

        def run_all(jobs):
            accepted = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
                for job, ok, detail in ex.map(one, jobs):
                    name, files, counts, workers, _, _ = job
                    refused = detail == "refused with one line"
                    what = f"{name} --workers {workers}: " + (
                        detail if refused else
                        f"{'+'.join(str(n[0]) for n in counts)} packets add up per port and worker")
                    c.check(ok, what, detail)
                    if ok and not refused:
                        accepted.append(job)
            return accepted

        # Every input alone with one worker; the project's own and generated captures also with
        # two (dispatch mode). The corpus captures closetap accepted then go through dispatch
        # mode 4 at a time, as the 4 ports of one replay (merged by time): per port, rx must still
        # be exactly that file's count. That keeps the test near a minute on 2 CPUs.
        jobs = []
        for i, (name, files, extra) in enumerate(inputs):
            counts = [pcap_count(args.pcap_count, f) for f in files]
            jobs.append((name, files, counts, 1, extra, f"r{i}w1"))
            if not name.startswith(CORPORA):
                jobs.append((name, files, counts, 2, extra, f"r{i}w2"))
        accepted = run_all(jobs)
        singles = [j for j in accepted if j[0].startswith(CORPORA) and len(j[1]) == 1 and not j[4]]
        groups = []
        for k in range(0, len(singles), 4):
            part = singles[k:k + 4]
            groups.append((f"corpus group {k // 4} ({len(part)} ports)", [j[1][0] for j in part],
                           [j[2][0] for j in part], 2, [], f"g{k}w2"))
        run_all(groups)
        jobs += groups

    print(f"accounting: {c.passed} passed, {c.failed} failed, {c.skipped} skipped "
          f"({len(jobs)} runs on {len(inputs)} inputs)")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
