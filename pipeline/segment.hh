// From a parsed TCP packet to what the flow table takes: the symmetric key and the segment.
// One place for the worker, the fuzzers and the tools, so they feed the table the same way.
#pragma once

#include <cstdint>

#include "flowtable/conn_types.hh"
#include "flowtable/flow_key.hh"
#include "pipeline/parse.hh"

namespace closetap {

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

}  // namespace closetap
