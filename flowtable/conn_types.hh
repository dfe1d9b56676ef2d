// Vocabulary of the close machine: the values users, dashboards and tests depend on
// (../shared/SPEC.md section 2). Pure C++, no DPDK: the tests and the exporters use it as is.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "flowtable/flow_key.hh"

namespace closetap {

// How a connection ended (SPEC 2, `close`).
enum class Close : uint8_t {
    fin_4way,
    fin_3way,
    fin_simultaneous,
    fin_one_side,
    fin_rst,
    rst,
    rejected,
    no_answer,
    none,
    count_
};

// The side that sent the first FIN or RST (`resp` for rejected, `none` when nobody closed).
enum class Initiator : uint8_t { orig, resp, none, count_ };

// What became of a FIN, per direction (SPEC 2, `fin_ack`).
enum class FinAck : uint8_t { exact, cumulative, missing, beyond, none, count_ };

// Zeek's conn_state values, with Zeek's exact rules (scripts/base/protocols/conn/main.zeek).
enum class ConnState : uint8_t { S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH, count_ };

// Why a close is abnormal; `none` means a normal close (the conn log writes null).
enum class Reason : uint8_t {
    none,
    rst_orig,
    rst_resp,
    rst_after_fin,
    rejected,
    no_answer,
    half_open_timeout,
    fin_unacked,
    rst_out_of_window,
    count_
};

// Why the record was emitted (not part of SPEC's vocabulary; it drives timeouts and flushes).
enum class EndCause : uint8_t {
    closed,        // both sides done (FINs or RST) and the linger time after it passed
    idle_timeout,  // no packet for the state's timeout
    evicted,       // the flow table needed the slot
    end_of_input,  // still open when the capture ended (or at shutdown)
    reused,        // a new SYN started a new connection on the same 4-tuple
    count_
};

// Which timeout applies to a connection now (flowtable/timeouts.hh holds the values).
enum class TimeoutClass : uint8_t {
    syn_sent,     // SYN(s) without an answer yet
    established,  // handshake done or mid-stream pickup, no FIN/RST yet
    half_closed,  // one side sent FIN
    closed,       // both FINs, or a RST: linger to absorb retransmissions and the last ACK
    count_
};

template <typename E> constexpr size_t count_of = static_cast<size_t>(E::count_);

// Names exactly as they appear in the conn log and in metric labels.
inline constexpr std::array<std::string_view, count_of<Close>> close_names = {
    "fin_4way", "fin_3way", "fin_simultaneous", "fin_one_side", "fin_rst",
    "rst",      "rejected", "no_answer",        "none"};
inline constexpr std::array<std::string_view, count_of<Initiator>> initiator_names = {"orig", "resp",
                                                                                      "none"};
inline constexpr std::array<std::string_view, count_of<FinAck>> fin_ack_names = {
    "exact", "cumulative", "missing", "beyond", "none"};
inline constexpr std::array<std::string_view, count_of<ConnState>> conn_state_names = {
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"};
inline constexpr std::array<std::string_view, count_of<Reason>> reason_names = {
    "none",      "rst_orig",          "rst_resp",    "rst_after_fin",    "rejected",
    "no_answer", "half_open_timeout", "fin_unacked", "rst_out_of_window"};
inline constexpr std::array<std::string_view, count_of<EndCause>> end_cause_names = {
    "closed", "idle_timeout", "evicted", "end_of_input", "reused"};
inline constexpr std::array<std::string_view, count_of<TimeoutClass>> timeout_class_names = {
    "syn_sent", "established", "half_closed", "closed"};

template <typename E, size_t N>
constexpr std::string_view name_of(const std::array<std::string_view, N>& names, E e) {
    return names[static_cast<size_t>(e)];
}
inline constexpr std::string_view to_string(Close v) { return name_of(close_names, v); }
inline constexpr std::string_view to_string(Initiator v) { return name_of(initiator_names, v); }
inline constexpr std::string_view to_string(FinAck v) { return name_of(fin_ack_names, v); }
inline constexpr std::string_view to_string(ConnState v) { return name_of(conn_state_names, v); }
inline constexpr std::string_view to_string(Reason v) { return name_of(reason_names, v); }
inline constexpr std::string_view to_string(EndCause v) { return name_of(end_cause_names, v); }
inline constexpr std::string_view to_string(TimeoutClass v) { return name_of(timeout_class_names, v); }

// TCP flag bits as on the wire (RFC 9293 section 3.1).
namespace tcp_flag {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
inline constexpr uint8_t urg = 0x20;
inline constexpr uint8_t ece = 0x40;
inline constexpr uint8_t cwr = 0x80;
}  // namespace tcp_flag

// Packet time, microseconds since the epoch, as the flow table keeps it: 52 bits (TcpConn's
// last_ts_), which reaches the year 2112. A capture can claim any time at all (pcapng stores
// 64-bit timestamps in units of its own choosing; net_pcap multiplies the seconds by 10^6 in 64
// bits): its times are clamped to this range where they enter (pipeline/worker.cc), so a
// nonsense timestamp is one far in the future rather than one that wraps and runs backwards.
inline constexpr uint64_t max_packet_ts_us = (uint64_t{1} << 52) - 1;
constexpr uint64_t packet_time(uint64_t ts_us) noexcept {
    return ts_us < max_packet_ts_us ? ts_us : max_packet_ts_us;
}

// One TCP segment as the close machine sees it: already parsed, direction resolved against the
// flow key. `dir` 0 is the key's first endpoint sending, 1 the second (flowtable/flow_key.hh).
struct TcpSegment {
    uint64_t ts_us;        // capture time, microseconds since the epoch (<= max_packet_ts_us)
    uint32_t seq;
    uint32_t ack;
    uint32_t payload_len;  // TCP payload bytes in this segment (as on the wire, not captured)
    uint16_t window;       // raw window field (scaling is not known without the SYN options)
    uint8_t flags;         // tcp_flag bits
    uint8_t dir;           // 0 or 1, see above
    uint16_t src_port;     // sender's port (for Zeek's likely-server-port orientation rule)
    uint16_t dst_port;
    uint8_t wscale;        // window scale option on a SYN (0xff when absent)
    uint8_t pad_[3];
};

// Everything the close machine concludes about one ended connection, in orig/resp terms.
struct ConnResult {
    uint64_t ts_first_us;
    uint64_t ts_last_us;
    int64_t teardown_us;  // first FIN or RST to the last packet of the close; -1 if none
    uint64_t orig_bytes;  // payload bytes, as Zeek's orig_bytes (sequence space when known)
    uint64_t resp_bytes;
    uint32_t orig_pkts;
    uint32_t resp_pkts;
    Close close;
    Initiator initiator;
    FinAck fin_ack_orig;
    FinAck fin_ack_resp;
    ConnState conn_state;
    Reason reason;
    EndCause end_cause;
    bool half_close;
    uint8_t orig_dir;     // which key endpoint (0/1) is the originator
    char history[23];     // Zeek's history letters, NUL terminated
    FlowKey key;          // the endpoints, in key order (the flow table sets it: a table entry
                          // keeps an IPv4 key in 12 bytes and an IPv6 one in a second entry)
};

}  // namespace closetap
