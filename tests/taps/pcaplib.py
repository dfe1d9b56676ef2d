"""A small stdlib pcap reader/writer and TCP segment editor for the tap-reality tests.

Reads classic pcap (either byte order, micro- or nanosecond timestamps) with Ethernet frames
(optionally VLAN-tagged) carrying IPv4 or IPv6 and TCP. Every packet keeps its original bytes;
the TCP fields can be edited (seq, ack, flags, ports) and the IP/TCP checksums are recomputed,
so an edited capture still looks like what a NIC would deliver. Timestamps are integer
microseconds (`Packet.ts_us`), which is what closetap decides by.
"""
import ipaddress
import struct

LINKTYPE_ETHERNET = 1

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Packet:
    """One captured frame. `tcp` is None for anything that is not Ethernet/IP/TCP."""

    def __init__(self, ts_us, frame):
        self.ts_us = ts_us
        self.frame = bytearray(frame)
        self._parse()

    def copy(self, ts_us=None):
        return Packet(self.ts_us if ts_us is None else ts_us, bytes(self.frame))

    # -- parsing ----------------------------------------------------------------------------
    def _parse(self):
        f = self.frame
        self.tcp = None
        if len(f) < 14:
            return
        etype, off = struct.unpack("!H", f[12:14])[0], 14
        while etype in (0x8100, 0x88A8) and len(f) >= off + 4:
            etype, off = struct.unpack("!H", f[off + 2:off + 4])[0], off + 4
        self.l3 = off
        if etype == 0x0800:
            ihl = (f[off] & 0x0F) * 4
            total = struct.unpack("!H", f[off + 2:off + 4])[0]
            if f[off + 9] != 6:
                return
            self.ipv = 4
            self.src = str(ipaddress.IPv4Address(bytes(f[off + 12:off + 16])))
            self.dst = str(ipaddress.IPv4Address(bytes(f[off + 16:off + 20])))
            self.l4 = off + ihl
            self.l3_end = off + total
        elif etype == 0x86DD:
            plen, nxt = struct.unpack("!HB", f[off + 4:off + 7])
            if nxt != 6:  # the scenario captures carry no extension headers
                return
            self.ipv = 6
            self.src = str(ipaddress.IPv6Address(bytes(f[off + 8:off + 24])))
            self.dst = str(ipaddress.IPv6Address(bytes(f[off + 24:off + 40])))
            self.l4 = off + 40
            self.l3_end = self.l4 + plen
        else:
            return
        l4 = self.l4
        self.sport, self.dport, self.seq, self.ack, doff, self.flags, self.window = \
            struct.unpack("!HHIIBBH", f[l4:l4 + 16])
        self.thl = (doff >> 4) * 4
        self.payload_len = self.l3_end - l4 - self.thl
        self.tcp = True

    # -- helpers ----------------------------------------------------------------------------
    def has(self, flag):
        return bool(self.flags & flag)

    @property
    def seg_len(self):
        """Sequence space the segment occupies (payload + SYN + FIN)."""
        return self.payload_len + (1 if self.has(SYN) else 0) + (1 if self.has(FIN) else 0)

    @property
    def conn(self):
        """Direction-free 4-tuple key."""
        a, b = (self.src, self.sport), (self.dst, self.dport)
        return (a, b) if a <= b else (b, a)

    def describe(self):
        names = "".join(n for bit, n in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"),
                                         (ACK, ".")) if self.flags & bit)
        return (f"{self.ts_us} {self.src}:{self.sport}>{self.dst}:{self.dport} [{names}] "
                f"seq={self.seq} ack={self.ack} len={self.payload_len}")

    # -- editing ----------------------------------------------------------------------------
    def set_tcp(self, seq=None, ack=None, flags=None, sport=None, dport=None, window=None,
                payload=None):
        """Rewrite TCP fields (and optionally the payload), then fix lengths and checksums."""
        f, l4 = self.frame, self.l4
        if payload is not None:
            head = bytes(f[:l4 + self.thl])
            trailer = bytes(f[self.l3_end:])  # Ethernet padding, if any
            f = self.frame = bytearray(head + payload + trailer)
            new_l3_len = l4 + self.thl + len(payload) - self.l3
            if self.ipv == 4:
                struct.pack_into("!H", f, self.l3 + 2, new_l3_len)
            else:
                struct.pack_into("!H", f, self.l3 + 4, new_l3_len - 40)
        if sport is not None:
            struct.pack_into("!H", f, l4, sport)
        if dport is not None:
            struct.pack_into("!H", f, l4 + 2, dport)
        if seq is not None:
            struct.pack_into("!I", f, l4 + 4, seq & 0xFFFFFFFF)
        if ack is not None:
            struct.pack_into("!I", f, l4 + 8, ack & 0xFFFFFFFF)
        if flags is not None:
            f[l4 + 13] = flags
        if window is not None:
            struct.pack_into("!H", f, l4 + 14, window)
        self._parse()
        self._fix_checksums()
        return self

    def _fix_checksums(self):
        f, l3, l4 = self.frame, self.l3, self.l4
        if self.ipv == 4:
            ihl = l4 - l3
            struct.pack_into("!H", f, l3 + 10, 0)
            struct.pack_into("!H", f, l3 + 10, _csum(bytes(f[l3:l3 + ihl])))
            pseudo = bytes(f[l3 + 12:l3 + 20]) + struct.pack("!BBH", 0, 6, self.l3_end - l4)
        else:
            pseudo = bytes(f[l3 + 8:l3 + 40]) + struct.pack("!IxxxB", self.l3_end - l4, 6)
        struct.pack_into("!H", f, l4 + 16, 0)
        struct.pack_into("!H", f, l4 + 16, _csum(pseudo + bytes(f[l4:self.l3_end])))


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def read_pcap(path):
    """-> (linktype, snaplen, [Packet]) in file order."""
    with open(path, "rb") as fh:
        data = fh.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _, _, _, _, _, snaplen, linktype = struct.unpack(endian + "IHHiIII", data[:24])
    pkts, off = [], 24
    while off + 16 <= len(data):
        sec, sub, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        us = sub // 1000 if nano else sub
        pkts.append(Packet(sec * 1_000_000 + us, frame))
    return linktype, snaplen, pkts


def write_pcap(path, pkts, linktype=LINKTYPE_ETHERNET, snaplen=262144, sort=True):
    """Write microsecond pcap. With sort, packets go out in timestamp order (stable), as a
    capture file would hold them."""
    if sort:
        pkts = sorted(pkts, key=lambda p: p.ts_us)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for p in pkts:
        if p.ts_us < 0:
            raise ValueError("negative timestamp")
        sec, us = divmod(p.ts_us, 1_000_000)
        out.append(struct.pack("<IIII", sec, us, len(p.frame), len(p.frame)))
        out.append(bytes(p.frame))
    with open(path, "wb") as fh:
        fh.write(b"".join(out))


def group_by_conn(pkts):
    """{direction-free 4-tuple: [Packet in capture order]} for the TCP packets."""
    conns = {}
    for p in pkts:
        if p.tcp:
            conns.setdefault(p.conn, []).append(p)
    return conns
