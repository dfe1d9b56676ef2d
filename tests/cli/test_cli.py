#!/usr/bin/env python3
"""Bad configuration and bad input, through the real binary.

Bad arguments and unreadable inputs end with exactly one line on stderr naming the problem and a
non-zero exit, before EAL starts. Malformed packets are counted by reason and never crash.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

CLOSETAP = None


def run(*args, timeout=60):
    return subprocess.run([CLOSETAP, *args], capture_output=True, text=True, timeout=timeout)


def write_pcap(path, frames, linktype=1):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)))
            f.write(fr)


def eth_ipv4_tcp(ihl=5, doff=5, total_len=None, flags=0x02, proto=6, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, doff << 4, flags, 65535, 0, 0) + payload
    ip_len = total_len if total_len is not None else 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ip_len, 1, 0, 64, proto, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp


def metrics_of(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


class BadArguments(unittest.TestCase):
    def assert_one_line_error(self, p, code, *words):
        self.assertEqual(p.returncode, code, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("closetap: error: "), lines[0])
        for w in words:
            self.assertIn(w, lines[0])

    def test_no_input(self):
        self.assert_one_line_error(run(), 2, "no input")

    def test_unknown_option(self):
        self.assert_one_line_error(run("--pcap-file", "x"), 2, "--pcap-file")

    def test_missing_file(self):
        self.assert_one_line_error(run("--pcap", "/nonexistent/capture.pcap"), 2,
                                   "/nonexistent/capture.pcap")

    def test_not_a_capture(self):
        with tempfile.NamedTemporaryFile("w", suffix=".pcap") as f:
            f.write("this is not a capture\n" * 10)
            f.flush()
            self.assert_one_line_error(run("--pcap", f.name), 1, f.name)

    def test_unsupported_linktype(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "wifi.pcap")
            write_pcap(path, [b"\x00" * 40], linktype=105)
            self.assert_one_line_error(run("--pcap", path), 1, "link type 105")

    def test_bad_values(self):
        self.assert_one_line_error(run("--pcap", __file__, "--flows", "0"), 2, "--flows")
        self.assert_one_line_error(run("--pcap", __file__, "--metrics", "localhost"), 2, "--metrics")
        self.assert_one_line_error(run("--pcap", __file__, "--timeout-syn", "-1"), 2, "--timeout-syn")

    def test_unwritable_outputs(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ok.pcap")
            write_pcap(path, [eth_ipv4_tcp()])
            self.assert_one_line_error(run("--pcap", path, "--conn-log", "/nonexistent/dir/c.jsonl"),
                                       1, "/nonexistent/dir/c.jsonl")
            self.assert_one_line_error(
                run("--pcap", path, "--metrics-file", "/nonexistent/dir/m.prom"), 1,
                "/nonexistent/dir/m.prom")

    def test_help(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--pcap", p.stdout)


class BadPackets(unittest.TestCase):
    def test_malformed_frames_are_counted(self):
        good = eth_ipv4_tcp()
        frames = [
            good,
            good[:10],                          # truncated Ethernet
            good[:20],                          # truncated IPv4
            eth_ipv4_tcp(ihl=3),                # IHL below 5
            eth_ipv4_tcp(doff=2),               # TCP data offset below 5
            eth_ipv4_tcp(doff=15),              # TCP header longer than the segment
            eth_ipv4_tcp(total_len=10),         # IP total length below its header
            good[:40],                          # truncated TCP
            eth_ipv4_tcp(proto=17),             # UDP: not TCP, not an error
            b"\xff" * 60,                       # garbage
        ]
        with tempfile.TemporaryDirectory() as d:
            path, prom, log = (os.path.join(d, n) for n in ("bad.pcap", "m.prom", "c.jsonl"))
            write_pcap(path, frames)
            p = run("--pcap", path, "--metrics-file", prom, "--conn-log", log, "--quiet")
            self.assertEqual(p.returncode, 0, p.stderr)
            m = metrics_of(prom)
            errors = sum(v for k, v in m.items() if k.startswith("closetap_parse_errors_total{"))
            classes = sum(v for k, v in m.items() if k.startswith("closetap_packets_total{"))
            self.assertEqual(m['closetap_rx_packets_total{port="net_pcap0"}'], len(frames))
            self.assertEqual(classes, len(frames))
            self.assertGreaterEqual(errors, 7)
            self.assertEqual(m['closetap_packets_total{class="tcp"}'], 1)
            records = open(log).read().splitlines()
            self.assertEqual(len(records), 1)

    def test_empty_capture(self):
        with tempfile.TemporaryDirectory() as d:
            path, log = os.path.join(d, "empty.pcap"), os.path.join(d, "c.jsonl")
            write_pcap(path, [])
            p = run("--pcap", path, "--conn-log", log, "--quiet")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(open(log).read(), "")

    def test_timestamps_beyond_the_table_range(self):
        # A pcapng (64-bit timestamps) with packets dated 2^56 us and 2^63 us among ones of 2024:
        # packet times are clamped to the table's 52 bits (flowtable/conn_types.hh packet_time),
        # so no record's end comes before its start and every packet is in one record.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz",
                            "regressions", "fuzz_pcap", "timestamps_beyond_52_bits")
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "c.jsonl")
            p = run("--pcap", path, "--conn-log", log, "--quiet")
            self.assertEqual(p.returncode, 0, p.stderr)
            records = [json.loads(l) for l in open(log)]
            self.assertEqual(sum(r["orig_pkts"] + r["resp_pkts"] for r in records), 8)
            for r in records:
                self.assertGreaterEqual(r["duration"], 0, r)
                self.assertLessEqual(r["ts"] + r["duration"], (2**52 - 1) / 1e6 + 1e-6, r)
                if r["teardown_s"] is not None:
                    self.assertLessEqual(r["teardown_s"], r["duration"], r)


if __name__ == "__main__":
    CLOSETAP = sys.argv.pop(1)
    unittest.main(verbosity=2)
