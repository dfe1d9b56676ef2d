// From a parsed TCP packet to what the flow table takes: the symmetric key and the segment.
// One place for the worker, the fuzzers and the tools, so they feed the table the same way.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "exporters/stats.hh"
#include "flowtable/branchless.hh"
#include "flowtable/conn_types.hh"
#include "flowtable/flow_key.hh"
#include "pipeline/parse.hh"

namespace closetap {

// Counts what parse_packet concluded the way the worker does (class; error reason; checksum);
// true when the packet goes on to the flow table.
inline bool count_parsed(WorkerStats& st, PacketClass c, ParseError err,
                         const ParsedPacket& pp) noexcept {
    st.packet_class[static_cast<size_t>(c)].add();
    if (c == PacketClass::error) {
        st.parse_errors[static_cast<size_t>(err)].add();
        return false;
    }
    if (c != PacketClass::tcp) return false;
    if (pp.checksum_bad) {
        st.checksum_bad.add();
        return false;
    }
    return true;
}

inline void make_segment(const ParsedPacket& pp, uint64_t ts_us, FlowKey& key,
                         TcpSegment& s) noexcept {
    s.dir = make_flow_key(pp.src, pp.sport, pp.dst, pp.dport, key);
    s.ts_us = ts_us;
    s.seq = pp.seq;
    s.ack = pp.ack;
    s.payload_len = pp.payload_len;
    s.window = pp.window;
    s.flags = pp.flags;
    s.src_port = pp.sport;
    s.dst_port = pp.dport;
    s.wscale = pp.wscale;
}

// The worker's path for plain_ipv4_tcp frames (parse.hh), without a ParsedPacket in between:
// the key (in its 12 IPv4 bytes: key.expand() is the FlowKey), segment and payload position
// that parse_packet + make_segment give for them (tests/test_parse.cc compares the two on
// mutated frames). For IPv4-mapped addresses the key's endpoint order is the order of the IPv4
// addresses, then of the ports. False, having written nothing, for any other frame.
inline bool make_fast_segment(const uint8_t* d, uint32_t caplen, uint64_t ts_us, FlowKey4& key,
                              TcpSegment& s, uint16_t& payload_offset,
                              uint16_t& payload_caplen) noexcept {
    PlainTcp4 v;
    if (!plain_ipv4_tcp(d, caplen, v)) return false;
    const uint8_t* t = v.tcp;
    const uint32_t sa = be32(v.ip + 12), da = be32(v.ip + 16);
    const uint16_t sp = be16(t), dp = be16(t + 2);
    // The endpoint order by selecting values, not by branching: on a tap the direction is a
    // coin toss, and a branch on it mispredicted on half the packets (callgrind --branch-sim).
    const bool swap = (sa > da) | ((sa == da) & (sp > dp));
    uint32_t a0, a1;  // as the frame holds them (network order)
    std::memcpy(&a0, v.ip + 12, 4);
    std::memcpy(&a1, v.ip + 16, 4);
    key.a[0] = select_if(swap, a1, a0);
    key.a[1] = select_if(swap, a0, a1);
    key.port[0] = select_if(swap, dp, sp);
    key.port[1] = select_if(swap, sp, dp);
    s.dir = swap;
    s.ts_us = ts_us;
    s.seq = be32(t + 4);
    s.ack = be32(t + 8);
    s.payload_len = v.payload_len;
    s.window = be16(t + 14);
    s.flags = t[13];
    s.src_port = sp;
    s.dst_port = dp;
    s.wscale = (t[13] & tcp_flag::syn) ? tcp_window_scale(t, v.tcp_hdr_len) : 0xff;
    payload_offset = static_cast<uint16_t>(v.payload_offset);
    payload_caplen = static_cast<uint16_t>(v.payload_len);
    return true;
}

}  // namespace closetap
