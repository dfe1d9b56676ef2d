#!/usr/bin/env python3
"""closetap survives what taps do to traffic.

Every case starts from REAL captures (tests/captures/scenarios.pcap: Linux kernel connections,
one per close pattern, with the truth per connection in scenarios.tsv) and edits or interleaves
them the way a tap, a mirror port or a lossy capture point would: skew between two tap ports,
duplicates from two taps, loss at the capture point, mid-stream pickup, retransmissions, reuse
of a closed 4-tuple and injected resets. closetap (the real binary, DPDK net_pcap) replays the
result and the records are checked against the truth, asserting only what is well-defined
(each test says which outcomes can legitimately change and why). docs/close-machine.md, "What
taps do to traffic", states the behaviour pinned down here.

    python3 tests/taps/test_tap_reality.py build/closetap
"""
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcaplib as P  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CAPTURES = os.path.join(ROOT, "tests", "captures")
SIGNATURES = os.path.join(ROOT, "deploy", "signatures.yaml")
CLOSETAP = None  # argv[1]

FIN_CLOSES = {"fin_4way", "fin_3way", "fin_simultaneous"}
TRUTH_REASON = {"fin_4way": None, "fin_3way": None, "fin_simultaneous": None,
                "fin_rst": "rst_after_fin", "rejected": "rejected", "no_answer": "no_answer"}


# ---------------------------------------------------------------------------------------------
# Inputs and running closetap

def load_truth():
    with open(os.path.join(CAPTURES, "scenarios.tsv")) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for r in rows:
        r["client_port"], r["server_port"] = int(r["client_port"]), int(r["server_port"])
        r["half_close"] = r["half_close"] == "true"
    return rows


def norm_ip(ip):
    import ipaddress
    return str(ipaddress.ip_address(ip))


def tuple_key(a, ap, b, bp):
    x, y = (norm_ip(a), int(ap)), (norm_ip(b), int(bp))
    return (x, y) if x <= y else (y, x)


def rec_key(r):
    return tuple_key(r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"])


def row_key(row):
    return tuple_key(row["client_ip"], row["client_port"], row["server_ip"], row["server_port"])


def parse_metrics(path):
    out = {}
    with open(path) as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            head, value = line.rsplit(" ", 1)
            out[head] = float(value)
    return out


class Run:
    """One closetap replay: records grouped by direction-free 4-tuple, and the metrics."""

    def __init__(self, records, metrics):
        self.records = records
        self.metrics = metrics
        self.by_key = {}
        for r in records:
            self.by_key.setdefault(rec_key(r), []).append(r)

    def one(self, tc, row):
        recs = self.by_key.get(row_key(row), [])
        tc.assertEqual(len(recs), 1, f"{row['scenario']}:{row['client_port']}: want one record, "
                                     f"got {[(r['close'], r['end']) for r in recs]}")
        return recs[0]


def replay(tc, pcap_lists, extra=()):
    """Write each packet list as one capture (one tap port) and replay them together."""
    with tempfile.TemporaryDirectory(prefix="tapreal.") as tmp:
        args = [CLOSETAP]
        for i, pkts in enumerate(pcap_lists):
            path = os.path.join(tmp, f"port{i}.pcap")
            P.write_pcap(path, pkts)
            args += ["--pcap", path]
        log, prom = os.path.join(tmp, "conns.jsonl"), os.path.join(tmp, "final.prom")
        args += ["--conn-log", log, "--metrics-file", prom, "--quiet", *extra]
        if "--signatures" not in extra and not os.environ.get("CLOSETAP_SIGNATURES"):
            args += ["--signatures", SIGNATURES]
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        tc.assertEqual(p.returncode, 0, f"closetap failed: {p.stderr.strip()}")
        with open(log) as fh:
            records = [json.loads(l) for l in fh]
        return Run(records, parse_metrics(prom))


_CACHE = {}


def scenario_packets():
    if "pk" not in _CACHE:
        _, _, pk = P.read_pcap(os.path.join(CAPTURES, "scenarios.pcap"))
        _CACHE["pk"] = pk
    return [p.copy() for p in _CACHE["pk"]]


def is_server_side(p, rows):
    """Packet sent by the scenario's server (the responder)."""
    return any(p.sport == r["server_port"] and norm_ip(p.src) == norm_ip(r["server_ip"])
               for r in rows)


def conn_packets(pkts, row):
    k = row_key(row)
    return [p for p in pkts if p.tcp and p.conn == k]


def fin_end(p):
    return (p.seq + p.payload_len + 1) & 0xFFFFFFFF


def strip_rxmt(history):
    return history.replace("T", "").replace("t", "")


class Base(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.truth = load_truth()

    def baseline(self):
        if "base" not in _CACHE:
            _CACHE["base"] = replay(self, [scenario_packets()])
            # Sanity: the unedited capture gives the truth (the golden test checks the rest).
            for row in self.truth:
                r = _CACHE["base"].one(self, row)
                self.assertEqual((r["close"], r["initiator"], r["half_close"], r["conn_state"]),
                                 (row["close"], row["initiator"], row["half_close"],
                                  row["conn_state"]), row["scenario"])
        return _CACHE["base"]

    def rows(self, scenario):
        return [r for r in self.truth if r["scenario"] == scenario]

    def assert_same_close(self, rec, want, what, keys=("close", "initiator", "conn_state",
                                                        "fin_ack", "half_close", "reason")):
        got = {k: rec[k] for k in keys}
        exp = {k: want[k] for k in keys}
        self.assertEqual(got, exp, what)


# ---------------------------------------------------------------------------------------------
# 1. Two tap ports with skew

class TestPortSkew(Base):
    """The two directions of every connection come from two tap ports; the server->client port
    is late (or early) by d. closetap merges the ports by capture timestamp, so e.g. the ACK of
    a FIN is seen before the FIN, or the peer's FIN before the FIN it acknowledges.

    Decided by seq/ack causality, hence asserted for every d (docs/close-machine.md):
      close pattern (fin_3way vs fin_4way vs fin_simultaneous, rst, fin_rst), initiator of a
      3-way/4-way close, fin_ack (exact stays exact), reason.
    Decided by arrival, hence asserted only when d keeps the deciding packets in order:
      - the handshake: when a responder segment other than its SYN-ACK arrives before the
        originator's SYN, that late SYN is a new ISN on an open connection for Zeek's IsReuse
        (it is, too, for Zeek) and the connection splits into two records; a refused SYN whose
        RST arrives first is a RST-first record plus an unanswered SYN. Such connections are
        skipped (|d| larger than the handshake spacing);
      - the initiator of fin_simultaneous is the side whose FIN arrived first (the FINs
        crossed: there is no causal order);
      - half_close needs the half-closing payload to arrive after the first FIN.
    conn_state and history are Zeek's on the reordered input and are not asserted.
    """

    SHIFTS_US = [200, 2000, 50000, -200, -2000, -50000]

    def skewed(self, d):
        pk = scenario_packets()
        a = [p for p in pk if not is_server_side(p, self.truth)]
        b = [p.copy(p.ts_us + d) for p in pk if is_server_side(p, self.truth)]
        return a, b

    def guards(self, row, pkts):
        """-> (handshake_ok, fin_order_kept, half_close_order_kept, inversions)."""
        cli = [p for p in pkts if not is_server_side(p, [row])]
        srv = [p for p in pkts if is_server_side(p, [row])]
        syn = min((p.ts_us for p in cli if p.has(P.SYN)), default=None)
        hs_ok = syn is None or all(p.ts_us > syn for p in srv
                                   if not (p.has(P.SYN) and p.has(P.ACK)))
        fins = [p for p in pkts if p.has(P.FIN)]
        first_fin_c = min((p for p in fins if p in cli), key=lambda p: p.ts_us, default=None)
        first_fin_s = min((p for p in fins if p in srv), key=lambda p: p.ts_us, default=None)
        # Inversions: an ACK covering a FIN that the tap delivers before that FIN.
        inv = 0
        for f, peers in ((first_fin_c, srv), (first_fin_s, cli)):
            if f is None:
                continue
            e = fin_end(f)
            inv += any(p.has(P.ACK) and p.ack == e and p.ts_us < f.ts_us for p in peers)
        return hs_ok, first_fin_c, first_fin_s, inv

    def test_skew(self):
        base = self.baseline()
        for d in self.SHIFTS_US:
            with self.subTest(shift_us=d):
                a, b = self.skewed(d)
                run = replay(self, [a, b])
                merged = a + b
                checked = inversions = 0
                for row in self.truth:
                    pkts = conn_packets(merged, row)
                    hs_ok, fc, fs, inv = self.guards(row, pkts)
                    if not hs_ok:
                        continue
                    what = f"d={d}us {row['scenario']}:{row['client_port']}"
                    rec = run.one(self, row)
                    want = base.one(self, row)
                    self.assertEqual(rec["close"], row["close"], what)
                    self.assertEqual(rec["fin_ack"], want["fin_ack"], what)
                    self.assertEqual(rec["reason"], want["reason"], what)
                    if row["close"] == "fin_simultaneous":
                        orig_first = fc.ts_us < fs.ts_us
                        if orig_first == (row["initiator"] == "orig"):
                            self.assertEqual(rec["initiator"], row["initiator"], what)
                    else:
                        self.assertEqual(rec["initiator"], row["initiator"], what)
                    if row["half_close"]:
                        first = fc if row["initiator"] == "orig" else fs
                        closer_is_cli = row["initiator"] == "orig"
                        e = fin_end(first)
                        late = [p for p in pkts if p.payload_len > 0 and p.has(P.ACK)
                                and p.ack == e and (is_server_side(p, [row]) == closer_is_cli)]
                        if late and min(p.ts_us for p in late) > first.ts_us:
                            self.assertTrue(rec["half_close"], what)
                    else:
                        self.assertFalse(rec["half_close"], what)
                    checked += 1
                    inversions += inv
                print(f"  skew {d:+d} us: {checked} connections asserted, "
                      f"{inversions} with an ACK of a FIN seen before the FIN")
                self.assertGreaterEqual(checked, 1, f"d={d}: no connection checkable")
                if d > -1000:  # larger early shifts invert the handshake of nearly all
                    self.assertGreaterEqual(checked, 12, f"d={d}: too few checkable")
                    self.assertGreater(inversions, 0, f"d={d}: no FIN/ACK pair inverted")


# ---------------------------------------------------------------------------------------------
# 2. Duplicates

class TestDuplicates(Base):
    """Two taps on one link deliver every packet (or some) twice, at the same timestamp or 1 us
    later. Zeek (and closetap, which follows it): a duplicate with payload is a retransmission
    ('T'/'t' in history, at the 1st, 10th, 100th); duplicate SYN/FIN/RST with the same
    relative seq add no letter; conn_state is unchanged; packet counts include duplicates.
    So: close, initiator, conn_state, fin_ack, half_close and reason equal the original record,
    history equals it once T/t are removed, and orig_pkts/resp_pkts grow by exactly the number
    of duplicates in that direction."""

    def check_dups(self, chooser, delta_us, label):
        base = self.baseline()
        pk = scenario_packets()
        out, dup_count = [], {}
        for i, p in enumerate(pk):
            out.append(p)
            if chooser(i):
                out.append(p.copy(p.ts_us + delta_us))
                k = (p.conn, norm_ip(p.src), p.sport)
                dup_count[k] = dup_count.get(k, 0) + 1
        run = replay(self, [out])
        self.assertEqual(len(run.records), len(base.records), label)
        for row in self.truth:
            what = f"{label} {row['scenario']}:{row['client_port']}"
            rec, want = run.one(self, row), base.one(self, row)
            self.assert_same_close(rec, want, what)
            self.assertEqual(strip_rxmt(rec["history"]), strip_rxmt(want["history"]), what)
            k = row_key(row)
            o = dup_count.get((k, norm_ip(want["orig_h"]), want["orig_p"]), 0)
            r = dup_count.get((k, norm_ip(want["resp_h"]), want["resp_p"]), 0)
            self.assertEqual((rec["orig_pkts"], rec["resp_pkts"]),
                             (want["orig_pkts"] + o, want["resp_pkts"] + r), what)

    def test_every_packet_twice_same_timestamp(self):
        self.check_dups(lambda i: True, 0, "all x2 +0us")

    def test_every_packet_twice_one_microsecond_later(self):
        self.check_dups(lambda i: True, 1, "all x2 +1us")

    def test_random_half_twice(self):
        rnd = random.Random(20240611)
        picks = {i for i in range(1000) if rnd.random() < 0.5}
        self.check_dups(lambda i: i in picks, 1, "half x2 +1us")


# ---------------------------------------------------------------------------------------------
# 3. Loss at the capture point

class TestCaptureLoss(Base):
    """The capture point loses packets the hosts exchanged.

    Defined and asserted: loss never produces an RST-type reason or fin_unacked for a FIN that
    the capture shows acknowledged; a FIN's fin_ack is decided by the FIN's own seq (data lost
    before it does not matter). Inherent and asserted as documented:
      - a lost FIN is not seen: that direction is fin_ack none and the record is fin_one_side
        by the side whose FIN was seen (Zeek: S3/S2); no abnormal reason at end of input;
      - a lost pure ACK of the first FIN (the 2nd wave of a 4-way close) leaves a capture
        identical to a 3-way close: fin_3way, same initiator, both FINs exact; unless the
        peer sent payload acknowledging the FIN before its own FIN (a half-close): that
        payload is a 2nd wave too, and the close stays fin_4way.
    """

    def conn(self, scenario):
        row = self.rows(scenario)[0]
        return row, conn_packets(scenario_packets(), row)

    def test_lost_fin(self):
        for scen in ("client_close_4way", "client_close_3way", "server_close_4way"):
            with self.subTest(scenario=scen):
                row, pk = self.conn(scen)
                closer_srv = row["initiator"] == "resp"
                lost = next(p for p in pk if p.has(P.FIN)
                            and is_server_side(p, [row]) == closer_srv)
                # Its ACK is in the capture (what makes this a capture loss, not a host one).
                self.assertTrue(any(p.has(P.ACK) and p.ack == fin_end(lost) for p in pk))
                rec = replay(self, [[p for p in pk if p is not lost]]).one(self, row)
                other = "orig" if closer_srv else "resp"
                lost_dir = "resp" if closer_srv else "orig"
                self.assertEqual(rec["close"], "fin_one_side", scen)
                self.assertEqual(rec["initiator"], other, scen)
                self.assertEqual(rec["fin_ack"][lost_dir], "none", scen)
                self.assertEqual(rec["fin_ack"][other], "exact", scen)
                self.assertIsNone(rec["reason"], scen)
                self.assertEqual(rec["conn_state"], "S2" if closer_srv else "S3", scen)

    def test_lost_pure_ack_of_first_fin(self):
        for scen in ("client_close_4way", "server_close_4way", "half_close_client"):
            with self.subTest(scenario=scen):
                row, pk = self.conn(scen)
                closer_srv = row["initiator"] == "resp"
                first = next(p for p in pk if p.has(P.FIN)
                             and is_server_side(p, [row]) == closer_srv)
                pure = [p for p in pk if p.has(P.ACK) and not p.has(P.FIN)
                        and p.payload_len == 0 and p.ack == fin_end(first)
                        and is_server_side(p, [row]) != closer_srv and p.ts_us > first.ts_us]
                pure = pure[:1]  # the 2nd wave
                self.assertEqual(len(pure), 1)
                rec = replay(self, [[p for p in pk if p not in pure]]).one(self, row)
                self.assertEqual(rec["close"], "fin_4way" if row["half_close"] else "fin_3way",
                                 scen)
                self.assertEqual(rec["initiator"], row["initiator"], scen)
                self.assertEqual(rec["fin_ack"], {"orig": "exact", "resp": "exact"}, scen)
                self.assertIsNone(rec["reason"], scen)
                self.assertEqual(rec["conn_state"], "SF", scen)

    def test_lost_data_mid_stream(self):
        base = self.baseline()
        for scen in ("simultaneous_close", "half_close_client", "client_close_4way",
                     "fin_then_rst", "rst_unread_server"):
            with self.subTest(scenario=scen):
                row, pk = self.conn(scen)
                data = [p for p in pk if p.payload_len > 0 and not p.has(P.FIN)
                        and not p.has(P.RST)]
                # Drop every other data segment, but keep the one that makes the half-close
                # (payload after the first FIN) so that half_close stays decidable.
                fins = [p for p in pk if p.has(P.FIN)]
                t_fin = min((p.ts_us for p in fins), default=None)
                drop = [p for i, p in enumerate(data)
                        if i % 2 == 0 and not (t_fin is not None and p.ts_us > t_fin
                                               and p is [q for q in data if q.ts_us > t_fin][-1])]
                self.assertTrue(drop)
                rec = replay(self, [[p for p in pk if p not in drop]]).one(self, row)
                self.assert_same_close(rec, base.one(self, row), scen,
                                       keys=("close", "initiator", "fin_ack", "half_close",
                                             "reason"))


# ---------------------------------------------------------------------------------------------
# 4. Mid-stream pickup

class TestMidStreamPickup(Base):
    """The capture starts after the handshake (the first N packets of a connection are cut, so
    no SYN is seen). A record is still produced, with Zeek's orientation (WantConnection): the
    sender of the first seen segment is the originator unless its source port is a likely server
    port and the destination port is not (both likely: the lower port is the server); history
    starts with '^' when flipped. The close pattern is still detected, with the initiator
    expressed in the record's own orientation. The scenario ports (9001-9014) are not likely
    server ports; a second pass rewrites the server port to 80 (a likely one)."""

    CLOSES = ("fin_4way", "fin_3way", "fin_simultaneous", "fin_rst", "rst")

    def run_cut(self, n, server_port=None):
        rows = [r for r in self.truth if r["close"] in self.CLOSES]
        kept = []
        first_sender = {}
        for row in rows:
            pk = conn_packets(scenario_packets(), row)[n:]
            if server_port is not None:
                for p in pk:
                    if is_server_side(p, [row]):
                        p.set_tcp(sport=server_port)
                    else:
                        p.set_tcp(dport=server_port)
            first_sender[row["client_port"]] = "srv" if pk[0].sport in (
                row["server_port"], server_port) else "cli"
            kept += pk
        run = replay(self, [kept])
        for row in rows:
            what = f"cut {n} port {server_port} {row['scenario']}:{row['client_port']}"
            r2 = dict(row)
            if server_port is not None:
                r2["server_port"] = server_port
            rec = run.one(self, r2)
            likely = server_port in (80,)
            # Zeek's rule: flip iff the first sender's source port is likely and dst is not.
            orig_is_cli = first_sender[row["client_port"]] == "cli" or likely
            self.assertEqual(rec["orig_p"] == row["client_port"], orig_is_cli, what)
            self.assertEqual(rec["history"].startswith("^"),
                             first_sender[row["client_port"]] == "srv" and likely, what)
            self.assertEqual(rec["close"], row["close"], what)
            want_init = row["initiator"] if orig_is_cli else \
                {"orig": "resp", "resp": "orig"}[row["initiator"]]
            self.assertEqual(rec["initiator"], want_init, what)
            self.assertNotIn(rec["conn_state"], ("S0", "REJ"), what)

    def test_cut_handshake(self):
        self.run_cut(3)  # SYN, SYN-ACK, ACK gone: the client's request is first

    def test_cut_into_data(self):
        self.run_cut(4)  # ... and the request: the server's ACK is first (orig = server)

    def test_cut_into_data_likely_server_port(self):
        self.run_cut(4, server_port=80)  # the server on port 80: Zeek flips to the client


# ---------------------------------------------------------------------------------------------
# 5. Retransmitted FINs and RSTs

class TestRetransmissions(Base):
    """A FIN retransmitted 200 ms later with the same seq, and every RST sent twice (1 ms and
    200 ms later): the pattern, initiator, fin_ack, conn_state and reason are unchanged and
    there is still exactly one record per connection (the copies fall in the closed linger)."""

    def test_fin_and_rst_retransmitted(self):
        base = self.baseline()
        pk = scenario_packets()
        extra = []
        for p in pk:
            if p.tcp and p.has(P.FIN):
                extra.append(p.copy(p.ts_us + 200_000))
            if p.tcp and p.has(P.RST):
                extra += [p.copy(p.ts_us + 1_000), p.copy(p.ts_us + 200_000)]
        self.assertGreater(len(extra), 20)
        run = replay(self, [pk + extra])
        self.assertEqual(len(run.records), len(base.records))
        for row in self.truth:
            rec, want = run.one(self, row), base.one(self, row)
            what = f"{row['scenario']}:{row['client_port']}"
            self.assert_same_close(rec, want, what)
            self.assertEqual(strip_rxmt(rec["history"]), strip_rxmt(want["history"]), what)


# ---------------------------------------------------------------------------------------------
# 6. TIME_WAIT reuse of a closed 4-tuple

class TestTimeWaitReuse(Base):
    """A closed connection's 4-tuple is reused by a new connection (new ISNs) a few seconds
    later. Within the 5 s closed linger the new SYN finds the old flow: Zeek's IsReuse ends the
    old record with end=reused (counted in closetap_conn_ended_total{cause="reused"}) and starts
    a new one. Beyond the linger the old record has already ended (end=closed) and nothing is
    counted as reuse. Both ways: two records, each with the original close."""

    def incarnation(self, pk, dt_us, dseq_cli, dseq_srv, row):
        out = []
        for p in pk:
            q = p.copy(p.ts_us + dt_us)
            srv = is_server_side(p, [row])
            ds, da = (dseq_srv, dseq_cli) if srv else (dseq_cli, dseq_srv)
            q.set_tcp(seq=p.seq + ds if not (p.has(P.RST) and p.seq == 0) else 0,
                      ack=p.ack + da if p.has(P.ACK) else p.ack)
            out.append(q)
        return out

    def check(self, scenario, dt_us, want_reused):
        row = self.rows(scenario)[0]
        pk = conn_packets(scenario_packets(), row)
        last = max(p.ts_us for p in pk)
        span = last - pk[0].ts_us
        # RFC 6191 / Linux: the new ISN is above the old sequence space.
        second = self.incarnation(pk, span + dt_us, 64000 + 1_000_000, 0x5A5A5A5A, row)
        base = self.baseline().one(self, row)
        run = replay(self, [pk + second])
        recs = sorted(run.by_key.get(row_key(row), []), key=lambda r: r["ts"])
        self.assertEqual(len(recs), 2, scenario)
        for r in recs:
            self.assert_same_close(r, base, scenario,
                                   keys=("close", "initiator", "conn_state", "fin_ack",
                                         "half_close", "reason"))
        self.assertEqual(recs[0]["end"], "reused" if want_reused else "closed", scenario)
        self.assertEqual(run.metrics['closetap_conn_ended_total{cause="reused"}'],
                         1 if want_reused else 0, scenario)

    def test_reuse_within_linger(self):
        for scen in ("client_close_4way", "server_close_3way", "rst_linger_client"):
            with self.subTest(scenario=scen):
                self.check(scen, 2_000_000, True)

    def test_reuse_beyond_linger(self):
        for scen in ("client_close_4way", "server_close_3way", "rst_linger_client"):
            with self.subTest(scenario=scen):
                self.check(scen, 8_000_000, False)


# ---------------------------------------------------------------------------------------------
# 7. Out-of-window RST

class TestInjectedRst(Base):
    """A RST injected into an established connection (between the greeting and the close).
    Its seq far outside the receiver's window (2^31 away, a blind injection) gives reason
    rst_out_of_window; a RST at exactly the receiver's ACK point (what a real stack sends) gives
    rst_orig / rst_resp. Either way the close is rst by the RST's sender, and the rest of the
    real connection after it is absorbed into the same record."""

    def inject(self, scenario, from_server, offset):
        row = self.rows(scenario)[0]
        pk = conn_packets(scenario_packets(), row)
        first_fin = next(i for i, p in enumerate(pk) if p.has(P.FIN))
        # The sender's next seq is the last ACK the receiver sent before the FIN.
        sender = [p for p in pk[:first_fin] if is_server_side(p, [row]) == from_server]
        recv_acks = [p.ack for p in pk[:first_fin]
                     if is_server_side(p, [row]) != from_server and p.has(P.ACK)]
        template = sender[-1]
        rst = template.copy(pk[first_fin].ts_us - 50)
        rst.set_tcp(seq=recv_acks[-1] + offset, ack=template.ack, flags=P.RST | P.ACK,
                    payload=b"")
        rec = replay(self, [pk + [rst]]).one(self, row)
        return row, rec

    def test_out_of_window(self):
        for from_server in (False, True):
            row, rec = self.inject("client_close_4way", from_server, 0x80000000)
            who = "resp" if from_server else "orig"
            self.assertEqual((rec["close"], rec["initiator"], rec["reason"]),
                             ("rst", who, "rst_out_of_window"), f"from_server={from_server}")

    def test_in_window(self):
        for from_server in (False, True):
            row, rec = self.inject("client_close_4way", from_server, 0)
            who = "resp" if from_server else "orig"
            self.assertEqual((rec["close"], rec["initiator"], rec["reason"]),
                             ("rst", who, "rst_" + who), f"from_server={from_server}")


def main():
    global CLOSETAP
    if len(sys.argv) < 2:
        print("usage: test_tap_reality.py CLOSETAP", file=sys.stderr)
        return 2
    CLOSETAP = os.path.abspath(sys.argv[1])
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
