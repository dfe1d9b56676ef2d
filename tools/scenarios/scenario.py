#!/usr/bin/env python3
"""Client/server halves of the closetap close-pattern scenarios.

record.sh runs the server half in one network namespace and the client half
in the other; the Linux kernel on both ends produces the packets, so the
capture shows real TCP behaviour (delayed ACKs, piggybacked FINs, RSTs for
unread data, ...) rather than hand-crafted frames.

It also carries a tiny stdlib pcap reader, used to check that each recorded
connection really shows the intended pattern before record.sh accepts it
(kernel timing can differ from run to run), and to merge the per-scenario
captures into one file.

  scenario.py server NAME BIND_ADDR PORT
  scenario.py client NAME SRC_ADDR DST_ADDR PORT
  scenario.py check  PCAP TSV            # every TSV row vs the wire, both ways
  scenario.py merge  OUT.pcap IN.pcap...

The client prints one "conn<TAB>client_ip<TAB>client_port<TAB>server_ip<TAB>
server_port" line per connection it opens; record.sh turns those into rows.
"""

import errno
import ipaddress
import os
import select
import socket
import struct
import sys
import time

GREETING_C = b"hello from client\n"
GREETING_S = b"hello from server\n"
# Bulk sizes are chosen to span several MSS-sized segments while keeping the
# whole capture small.
SIMUL_BULK = b"s" * 4096
HALF_CLOSE_BULK = b"h" * 8192
# For 4-way closes the side answering the FIN lets its ACK go out on its own
# before it sends its FIN.  200 ms is the Linux delayed-ACK ceiling
# (TCP_DELACK_MAX), so the ACK is out by then even if TCP_QUICKACK did not
# flush it.
FOUR_WAY_GAP = 0.2
# How much earlier the client shuts down than the server in
# simultaneous_close.  Each FIN waits ~35 ms in the tbf qdisc behind its
# side's data, so with a 15 ms lead the server's FIN is still built before
# the client's FIN reaches it (they cross), yet the client's FIN is
# deterministically the first one on the wire: initiator = orig.
SIMUL_CLIENT_LEAD = 0.015
IO_TIMEOUT = 5.0
TCP_STATE_CLOSE = 7  # TCP_CLOSE from include/net/tcp_states.h


class ScenarioError(Exception):
    pass


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


# ---------------------------------------------------------------- helpers


def recv_line(s):
    # Byte-wise so we never swallow data that a scenario wants left unread.
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            raise ScenarioError(f"EOF while reading a line (got {buf!r})")
        buf += chunk
    return buf


def expect_line(s, want):
    got = recv_line(s)
    if got != want:
        raise ScenarioError(f"expected {want!r}, got {got!r}")


def recv_until_eof(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def expect_eof(s):
    data = recv_until_eof(s)
    if data:
        raise ScenarioError(f"expected EOF, got {len(data)} more bytes")


def flush_ack(s):
    # The kernel enters delayed-ACK ("pingpong") mode on receiving a FIN;
    # TCP_QUICKACK sends the pending ACK of that FIN right now, so it cannot
    # be piggybacked on anything we send later.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def abortive_close(s):
    # SO_LINGER {on, 0}: close() discards the connection and sends RST.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def expect_reset(s):
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        return
    raise ScenarioError(f"expected a reset, recv returned {data!r}")


def wait_reset_after_eof(s, timeout=IO_TIMEOUT):
    # After EOF, recv() returns b"" at once instead of reporting a later RST,
    # so watch the kernel's TCP state until the peer's RST moves it to CLOSE.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_STATE_CLOSE:
            return
        time.sleep(0.01)
    raise ScenarioError("peer never reset the connection")


def sleep_until(t):
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def connect(src, dst, port, timeout=IO_TIMEOUT):
    """Connect from src to dst:port and report the 4-tuple on stdout.

    Non-blocking so the ephemeral port can be read right after the SYN is
    sent: for refused/unanswered connections the kernel may already have
    torn the socket down by the time a blocking connect() returns.
    Returns (socket, errno) with errno 0 on success.
    """
    s = socket.socket(family(dst), socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    err = s.connect_ex((dst, port))
    cip, cport = s.getsockname()[:2]
    print(f"conn\t{cip}\t{cport}\t{dst}\t{port}", flush=True)
    if err == errno.EINPROGRESS:
        _, writable, _ = select.select([], [s], [], timeout)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else errno.ETIMEDOUT
    s.setblocking(True)
    s.settimeout(IO_TIMEOUT)
    return s, err


def open_session(src, dst, port, greeting=GREETING_C):
    """Connect and do the greeting exchange, so both sides sent payload."""
    s, err = connect(src, dst, port)
    if err:
        raise ScenarioError(f"connect failed: {os.strerror(err)}")
    s.sendall(greeting)
    expect_line(s, GREETING_S)
    return s


def serve(addr, port, count):
    """Accept `count` connections one after the other, each after the
    greeting exchange; yields (socket, client greeting)."""
    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    ls.settimeout(IO_TIMEOUT * 2)
    print("listening", flush=True)  # record.sh waits for this line
    for _ in range(count):
        c, _ = ls.accept()
        c.settimeout(IO_TIMEOUT)
        greeting = recv_line(c)
        c.sendall(GREETING_S)
        yield c, greeting
    ls.close()


# -------------------------------------------------------------- scenarios
# Each entry: (connections the server accepts, server(sock, greeting),
# client(src, dst, port)).  count 0 means no server is started.


def srv_close_on_eof(c, _):
    # Close the instant EOF arrives: the kernel still holds the delayed ACK
    # of the peer's FIN and piggybacks it on our FIN (3-way close).
    expect_eof(c)
    c.close()


def srv_close_after_gap(c, _):
    expect_eof(c)
    flush_ack(c)
    time.sleep(FOUR_WAY_GAP)
    c.close()


def cli_close(src, dst, port):
    open_session(src, dst, port).close()


def srv_close(c, _):
    c.close()


def cli_close_on_eof(src, dst, port):
    s = open_session(src, dst, port)
    expect_eof(s)
    s.close()


def cli_close_after_gap(src, dst, port):
    s = open_session(src, dst, port)
    expect_eof(s)
    flush_ack(s)
    time.sleep(FOUR_WAY_GAP)
    s.close()


def cli_simultaneous(src, dst, port):
    # Both sides queue some KB behind a slow tbf qdisc and then shut down at
    # an agreed wall-clock instant (the namespaces share the clock), so each
    # FIN is built before the other side's FIN has arrived: the FINs cross.
    deadline = time.time() + 0.5
    s = open_session(src, dst, port, f"deadline {deadline:.6f}\n".encode())
    s.settimeout(IO_TIMEOUT * 2)
    sleep_until(deadline)
    s.sendall(SIMUL_BULK)
    s.shutdown(socket.SHUT_WR)
    if recv_until_eof(s) != SIMUL_BULK:
        raise ScenarioError("short bulk data from server")
    s.close()


def srv_simultaneous(c, greeting):
    deadline = float(greeting.split()[1])
    c.settimeout(IO_TIMEOUT * 2)
    sleep_until(deadline + SIMUL_CLIENT_LEAD)
    c.sendall(SIMUL_BULK)
    c.shutdown(socket.SHUT_WR)
    if recv_until_eof(c) != SIMUL_BULK:
        raise ScenarioError("short bulk data from client")
    c.close()


def cli_half_close(src, dst, port):
    s = open_session(src, dst, port)
    s.sendall(b"send me the data\n")
    s.shutdown(socket.SHUT_WR)
    if recv_until_eof(s) != HALF_CLOSE_BULK:
        raise ScenarioError("short bulk data from server")
    s.close()


def srv_half_close(c, _):
    expect_line(c, b"send me the data\n")
    expect_eof(c)
    # ACK the client's FIN on its own first, so the payload that follows is
    # unambiguously sent after the FIN was received and acknowledged.
    flush_ack(c)
    time.sleep(0.05)
    c.sendall(HALF_CLOSE_BULK)
    c.close()


def cli_abort(src, dst, port):
    s = open_session(src, dst, port)
    time.sleep(0.1)  # let the greeting ACKs settle: a clean mid-connection abort
    abortive_close(s)


def srv_expect_reset(c, _):
    expect_reset(c)
    c.close()


def srv_abort(c, _):
    time.sleep(0.1)
    abortive_close(c)


def cli_expect_reset(src, dst, port):
    s = open_session(src, dst, port)
    expect_reset(s)
    s.close()


def cli_send_unread(src, dst, port):
    s = open_session(src, dst, port)
    s.sendall(b"data the server never reads\n")
    expect_reset(s)
    s.close()


def srv_close_unread(c, _):
    # Wait until the data is in our receive buffer, then close without
    # reading it: Linux answers close() with unread data by sending RST.
    readable, _, _ = select.select([c], [], [], IO_TIMEOUT)
    if not readable:
        raise ScenarioError("client data never arrived")
    time.sleep(0.05)
    c.close()


def srv_write_after_fin(c, _):
    expect_eof(c)
    flush_ack(c)
    time.sleep(0.05)
    # The client has fully close()d, so its kernel cannot deliver this and
    # answers with RST.  Wait for that RST before closing, otherwise our own
    # FIN could race it onto the wire.
    c.sendall(b"late data nobody will read\n")
    wait_reset_after_eof(c)
    c.close()


def cli_refused(src, dst, port):
    s, err = connect(src, dst, port)
    s.close()
    if err != errno.ECONNREFUSED:
        raise ScenarioError(f"expected ECONNREFUSED, got {os.strerror(err)}")


def cli_unanswered(src, dst, port):
    # Recent kernels retransmit SYNs at 1 s intervals at first
    # (tcp_syn_linear_timeouts), older ones after 1 s and 3 s: 2.5 s gives
    # three or two SYNs and never races a retransmission.  close() in
    # SYN_SENT sends nothing.
    s, err = connect(src, dst, port, timeout=2.5)
    s.close()
    if err != errno.ETIMEDOUT:
        raise ScenarioError(f"expected a timeout, got {os.strerror(err)}")


def cli_several(src, dst, port):
    for _ in range(3):
        open_session(src, dst, port).close()
        time.sleep(0.1)  # keep the connections strictly sequential on the wire


SCENARIOS = {
    "client_close_4way": (1, srv_close_after_gap, cli_close),
    "client_close_3way": (1, srv_close_on_eof, cli_close),
    "server_close_4way": (1, srv_close, cli_close_after_gap),
    "server_close_3way": (1, srv_close, cli_close_on_eof),
    "simultaneous_close": (1, srv_simultaneous, cli_simultaneous),
    "half_close_client": (1, srv_half_close, cli_half_close),
    "rst_linger_client": (1, srv_expect_reset, cli_abort),
    "rst_linger_server": (1, srv_abort, cli_expect_reset),
    "rst_unread_server": (1, srv_close_unread, cli_send_unread),
    "fin_then_rst": (1, srv_write_after_fin, cli_close),
    "refused": (0, None, cli_refused),
    "unanswered": (0, None, cli_unanswered),
    "ipv6_client_close": (1, srv_close_on_eof, cli_close),
    "several_conns": (3, srv_close_on_eof, cli_several),
}


# ------------------------------------------------------------ pcap reader

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
LINKTYPE_ETHERNET = 1
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def read_pcap(path):
    """Return (header fields, [(ts_sec, ts_frac, orig_len, frame bytes)])."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:4] not in PCAP_MAGICS:
        raise ScenarioError(f"{path}: not a classic pcap file")
    endian, frac = PCAP_MAGICS[data[:4]]
    _, _, _, _, _, snaplen, linktype = struct.unpack(endian + "IHHiIII", data[:24])
    recs, off = [], 24
    while off + 16 <= len(data):
        sec, sub, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        recs.append((sec, sub, orig, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return {"magic": data[:4], "endian": endian, "frac": frac,
            "snaplen": snaplen, "linktype": linktype, "raw_header": data[:24]}, recs


class Seg:
    __slots__ = ("ts", "src", "sport", "dst", "dport", "seq", "ack", "flags", "plen")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def has(self, flag):
        return bool(self.flags & flag)


def parse_tcp(frame):
    """Ethernet frame -> (src, sport, dst, dport, seq, ack, flags, payload len)
    or None for anything that is not TCP."""
    etype, off = struct.unpack("!H", frame[12:14])[0], 14
    while etype in (0x8100, 0x88A8):  # VLAN tags
        etype, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
    if etype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        total, proto = struct.unpack("!H", frame[off + 2:off + 4])[0], frame[off + 9]
        src = socket.inet_ntop(socket.AF_INET, frame[off + 12:off + 16])
        dst = socket.inet_ntop(socket.AF_INET, frame[off + 16:off + 20])
        l4, l4_len = off + ihl, total - ihl
    elif etype == 0x86DD:
        plen, proto = struct.unpack("!HB", frame[off + 4:off + 7])
        src = socket.inet_ntop(socket.AF_INET6, frame[off + 8:off + 24])
        dst = socket.inet_ntop(socket.AF_INET6, frame[off + 24:off + 40])
        l4, l4_len = off + 40, plen
        while proto in (0, 43, 60):  # hop-by-hop, routing, destination options
            hlen = (frame[l4 + 1] + 1) * 8
            proto, l4, l4_len = frame[l4], l4 + hlen, l4_len - hlen
    else:
        return None
    if proto != 6:
        return None
    sport, dport, seq, ack, doff, flags = struct.unpack("!HHIIBB", frame[l4:l4 + 14])
    return src, sport, dst, dport, seq, ack, flags, l4_len - (doff >> 4) * 4


def read_segments(path):
    hdr, recs = read_pcap(path)
    if hdr["linktype"] != LINKTYPE_ETHERNET:
        raise ScenarioError(f"{path}: expected Ethernet link type")
    segs = []
    for sec, sub, _, frame in recs:
        t = parse_tcp(frame)
        if t:
            src, sport, dst, dport, seq, ack, flags, plen = t
            segs.append(Seg(ts=sec + sub / hdr["frac"], src=src, sport=sport, dst=dst,
                            dport=dport, seq=seq, ack=ack, flags=flags, plen=plen))
    return segs


# ---------------------------------------------------------------- checker


def seq_after(a, b):
    """a is strictly later than b in 32-bit sequence space."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def fin_seq(seg):
    return (seg.seq + seg.plen) & 0xFFFFFFFF  # a FIN occupies the byte after the payload


def check_conn(segs, row):
    """Check one connection's segments against its expected row.
    Returns a list of problems (empty when the wire matches)."""
    orig = (row["client_ip"], int(row["client_port"]))
    close, init, half = row["close"], row["initiator"], row["half_close"] == "true"
    side = {id(s): ("orig" if (s.src, s.sport) == orig else "resp") for s in segs}
    who = lambda s: side[id(s)]
    flags_str = " ".join(f"{who(s)}:{fmt_flags(s)}" for s in segs)
    bad = []

    def fail(msg):
        bad.append(f"{msg} [{flags_str}]")
        return bad

    if not segs:
        return fail("connection not in capture")
    syn = segs[0]
    if not (who(syn) == "orig" and syn.flags & (SYN | ACK) == SYN):
        return fail("does not start with the client's SYN")

    if close == "no_answer":
        if init != "none" or row["conn_state"] != "S0" or half:
            return fail("row is inconsistent for no_answer")
        if len(segs) < 2 or any(who(s) != "orig" or s.flags != SYN or s.seq != syn.seq for s in segs):
            return fail("expected only (re)transmissions of the client SYN, at least 2")
        return bad

    if close == "rejected":
        if init != "resp" or row["conn_state"] != "REJ" or half:
            return fail("row is inconsistent for rejected")
        if len(segs) != 2 or who(segs[1]) != "resp" or segs[1].flags & (RST | ACK) != RST | ACK \
                or segs[1].ack != (syn.seq + 1) & 0xFFFFFFFF:
            return fail("expected exactly SYN then RST,ACK acknowledging it")
        return bad

    # Everything else must be an established connection with payload both ways.
    if len(segs) < 3 or who(segs[1]) != "resp" or segs[1].flags & (SYN | ACK) != SYN | ACK \
            or who(segs[2]) != "orig" or segs[2].flags & (SYN | ACK | RST | FIN) != ACK:
        return fail("no clean three-way handshake")
    if sum(1 for s in segs if s.has(SYN)) != 2:
        return fail("extra SYNs")
    ends = [i for i, s in enumerate(segs) if s.has(FIN) or s.has(RST)]
    if close == "none":
        return fail("connection was closed") if ends else bad
    if not ends:
        return fail("connection never closed")
    first = ends[0]
    if who(segs[first]) != init:
        return fail(f"first FIN/RST came from {who(segs[first])}, expected {init}")
    for s_ in ("orig", "resp"):
        if not any(who(s) == s_ and s.plen > 0 for s in segs[:first]):
            return fail(f"{s_} sent no payload before the close")

    other = "resp" if init == "orig" else "orig"
    fins = {s_: [s for s in segs if s.has(FIN) and who(s) == s_] for s_ in ("orig", "resp")}
    rsts = [s for s in segs if s.has(RST)]
    xfin = fins[init][0] if fins[init] else None
    # Payload the non-closer sent after it had seen the first FIN: its
    # segment acknowledges that FIN.  Judged by sequence numbers, not by
    # capture order, so it does not depend on where the capture point is.
    late_data = xfin is not None and any(
        who(s) == other and s.plen > 0 and not seq_after(fin_seq(xfin) + 1, s.ack)
        for s in segs)
    if late_data != half:
        return fail(f"half_close on the wire is {str(late_data).lower()}")

    expected_state = {"fin_4way": "SF", "fin_3way": "SF", "fin_simultaneous": "SF"}.get(close)
    if close in ("rst", "fin_rst") and rsts:
        expected_state = "RSTO" if who(rsts[0]) == "orig" else "RSTR"
    if row["conn_state"] != expected_state:
        return fail(f"conn_state {row['conn_state']} does not match the wire ({expected_state})")

    if close in ("fin_4way", "fin_3way", "fin_simultaneous"):
        if rsts:
            return fail("unexpected RST")
        if len(fins["orig"]) != 1 or len(fins["resp"]) != 1:
            return fail("expected exactly one FIN per side")
        yfin = fins[other][0]
        fx1, fy1 = (fin_seq(xfin) + 1) & 0xFFFFFFFF, (fin_seq(yfin) + 1) & 0xFFFFFFFF
        tail = segs[first + 1:]
        if close == "fin_3way":
            # FIN, FIN+ACK of that FIN, ACK: nothing else after the first FIN.
            if not (len(tail) == 2 and tail[0] is yfin and yfin.ack == fx1 and yfin.plen == 0
                    and who(tail[1]) == init and tail[1].flags & (FIN | RST | ACK) == ACK
                    and tail[1].ack == fy1 and tail[1].plen == 0):
                return fail("not FIN / FIN,ACK(ack=FIN+1) / ACK")
        elif close == "fin_4way":
            ys = [s for s in tail if who(s) == other]
            if not (ys and not ys[0].has(FIN) and ys[0].ack == fx1 and ys[0].plen == 0
                    and yfin.ack == fx1):
                return fail("peer did not ACK the first FIN on its own before its FIN")
            last = tail[-1]
            if not (who(last) == init and last.flags & (FIN | RST | ACK) == ACK and last.ack == fy1):
                return fail("last segment is not the ACK of the second FIN")
            if not half and len(tail) != 3:
                return fail("not exactly FIN / ACK / FIN / ACK")
        else:
            # Crossed: neither FIN acknowledges the other one.
            if not seq_after(fx1, yfin.ack) or not seq_after(fy1, xfin.ack):
                return fail("FINs did not cross (one acknowledges the other)")
            if not any(who(s) == init and s.ack == fy1 for s in segs[segs.index(yfin):]) \
                    or not any(who(s) == other and s.ack == fx1 for s in tail):
                return fail("the FINs were not both acknowledged")
        return bad

    if close == "rst":
        if fins["orig"] or fins["resp"]:
            return fail("unexpected FIN")
        if len(rsts) != 1 or rsts[0] is not segs[-1]:
            return fail("expected exactly one RST, as the last segment")
        return bad

    if close == "fin_rst":
        if xfin is None or len(fins[init]) != 1 or fins[other]:
            return fail("expected one FIN from the closer and none from the peer")
        if len(rsts) != 1 or rsts[0] is not segs[-1] or segs.index(rsts[0]) < first:
            return fail("expected exactly one RST after the FIN, as the last segment")
        return bad

    return fail(f"unknown close type {close}")


def fmt_flags(s):
    out = "".join(c for c, f in (("S", SYN), ("F", FIN), ("R", RST)) if s.has(f))
    out += "." if s.has(ACK) else ""
    return out + (f"+{s.plen}" if s.plen else "")


def norm_ip(ip):
    return str(ipaddress.ip_address(ip))


def conn_key(a, ap, b, bp):
    return frozenset([(norm_ip(a), int(ap)), (norm_ip(b), int(bp))])


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    header, rows = lines[0], [dict(zip(lines[0], l)) for l in lines[1:]]
    for r in rows:
        r["client_ip"], r["server_ip"] = norm_ip(r["client_ip"]), norm_ip(r["server_ip"])
    return header, rows


def cmd_check(pcap, tsv):
    segs = read_segments(pcap)
    _, rows = read_tsv(tsv)
    by_conn = {}
    for s in segs:
        by_conn.setdefault(conn_key(s.src, s.sport, s.dst, s.dport), []).append(s)
    problems = []
    keys = set()
    for r in rows:
        k = conn_key(r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])
        if k in keys:
            problems.append(f"{r['scenario']}: duplicate row")
        keys.add(k)
        for p in check_conn(by_conn.get(k, []), r):
            problems.append(f"{r['scenario']} {r['client_ip']}:{r['client_port']}: {p}")
    for k, ss in by_conn.items():
        if k not in keys:
            problems.append(f"connection {ss[0].src}:{ss[0].sport} -> {ss[0].dst}:{ss[0].dport}"
                            " is in the capture but not in the TSV")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def cmd_merge(out, inputs):
    """Concatenate captures taken one after the other on the same interface."""
    first = None
    chunks, last_ts = [], -1.0
    for path in inputs:
        hdr, recs = read_pcap(path)
        if first is None:
            first = hdr
        elif (hdr["magic"], hdr["linktype"]) != (first["magic"], first["linktype"]):
            raise ScenarioError(f"{path}: format differs from {inputs[0]}")
        for sec, sub, orig, frame in recs:
            ts = sec + sub / hdr["frac"]
            if ts < last_ts:
                raise ScenarioError(f"{path}: timestamps go backwards")
            last_ts = ts
            chunks.append(struct.pack(hdr["endian"] + "IIII", sec, sub, len(frame), orig) + frame)
    with open(out, "wb") as f:
        f.write(first["raw_header"])
        f.write(b"".join(chunks))
    return 0


def main(argv):
    try:
        if len(argv) == 4 and argv[0] == "server":
            count, server, _ = SCENARIOS[argv[1]]
            for c, greeting in serve(argv[2], int(argv[3]), count):
                server(c, greeting)
            return 0
        if len(argv) == 5 and argv[0] == "client":
            SCENARIOS[argv[1]][2](argv[2], argv[3], int(argv[4]))
            return 0
        if len(argv) == 3 and argv[0] == "check":
            return cmd_check(argv[1], argv[2])
        if len(argv) >= 3 and argv[0] == "merge":
            return cmd_merge(argv[1], argv[2:])
    except (ScenarioError, OSError) as e:
        print(f"{argv[0]} {argv[1]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
