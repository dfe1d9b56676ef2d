// The synthetic tap workload of closetap-bench: both directions of N concurrent TCP flows as a
// tap sees them, generated packet by packet from compact per-flow state (16 bytes a flow), so a
// run of any length at 16M flows needs no stored packets.
//
// Phases, each a stream of packets in packet-time order:
//   warm-up  opens every flow: SYN, SYN-ACK, ACK, the client's first payload, the server's.
//            Flows are opened in groups of 64 interleaved step by step, as many clients at once.
//   steady   the measured phase. A packet is, with probability `churn`, the next packet of one of
//            up to `inflight` lifecycle scripts (a close drawn from the mix, then a fresh flow on
//            a new client port: SYN..first payloads; or a failed attempt on a new port), else a
//            data segment (payload 0-6 bytes, or IMIX) of a uniformly random open flow, so
//            accesses spread over the whole table. Scripts interleave, so a close's packets are
//            ~inflight/churn packets apart (milliseconds of packet time, far below timeouts).
//   drain    the remaining packets of every unfinished script, so each flow ends as designed.
// Every flow's intended outcome is counted (ground truth); after the drain and an end-of-input
// flush the close machine must have concluded exactly these counts.
//
// Frames are written by patching templates built once by the project's one PacketBuilder
// (tests/packet_builder.hh); self_check() compares patched frames with PacketBuilder's own.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowtable/conn_types.hh"

namespace closetap::bench {

// Close patterns of SPEC section 2 the workload can produce (`none` is what flows still open at
// the end get).
enum class Pattern : uint8_t {
    fin_4way,
    fin_3way,
    fin_simultaneous,
    fin_one_side,
    fin_rst,
    rst,
    rejected,
    no_answer,
    count_
};
inline constexpr std::array<const char*, count_of<Pattern>> pattern_names = {
    "fin_4way", "fin_3way", "fin_simultaneous", "fin_one_side",
    "fin_rst",  "rst",      "rejected",         "no_answer"};

enum class FrameMix : uint8_t { min64, imix };

struct WorkloadConfig {
    uint32_t flows = 1'000'000;  // concurrent open flows (slots)
    double churn = 0.2;          // fraction of steady packets that are lifecycle packets
    uint32_t inflight = 1024;    // lifecycle scripts interleaved at once
    FrameMix frames = FrameMix::min64;
    std::array<double, count_of<Pattern>> mix = {25, 35, 3, 5, 5, 15, 7, 5};  // weights
    double resp_closes = 0.5;  // share of FIN/RST closes the responder (server) starts
    double http_share = 0.5;   // share of flows whose first request is HTTP (else no match)
    uint64_t seed = 1;
    uint8_t worker = 0;  // address space of this worker's flows (client 10+worker.x.y.z)
    uint32_t warmup_ns_per_pkt = 250;   // packet-time step while opening flows
    uint32_t steady_ns_per_pkt = 1000;  // packet-time step in the measured phase (1 us)
};

// Parses "fin_4way=25,rst=10,..." (weights; patterns not named get 0). Throws
// std::invalid_argument naming the bad item.
std::array<double, count_of<Pattern>> parse_mix(const std::string& text);

class Workload {
public:
    explicit Workload(const WorkloadConfig& cfg);
    ~Workload();
    Workload(const Workload&) = delete;
    Workload& operator=(const Workload&) = delete;

    enum class Phase : uint8_t { warmup, steady, drain, done };
    Phase phase() const noexcept { return phase_; }
    void begin_steady() noexcept;  // after the warm-up has returned all its packets
    void begin_drain() noexcept;

    // Writes the next packet into `frame` (room for max_frame bytes) and returns its length, or
    // 0 when the phase has no more packets (warm-up and drain end; steady never does).
    // `ts_us` receives its packet time.
    static constexpr unsigned max_frame = 1514;
    unsigned next(uint8_t* frame, uint64_t& ts_us) noexcept;

    uint64_t warmup_packets() const noexcept { return uint64_t{cfg_.flows} * 5; }
    uint64_t now_us() const noexcept { return t_ns_ / 1000; }

    // Ground truth: records the close machine must conclude once everything was flushed,
    // [close][initiator]; flows still open count as none/none (added by expect_open_flows()).
    using Expected = std::array<std::array<uint64_t, count_of<Initiator>>, count_of<Close>>;
    const Expected& expected() const noexcept { return expected_; }
    void expect_open_flows() noexcept;  // call once, at the end (after the drain)
    uint64_t flows_started() const noexcept { return flows_started_; }
    uint64_t scripts_started() const noexcept { return scripts_started_; }
    uint64_t lifecycle_packets() const noexcept { return lifecycle_pkts_; }
    uint64_t data_packets() const noexcept { return data_pkts_; }
    uint32_t inflight_now() const noexcept { return nscripts_; }

    // Runs a small workload of `cfg` (its flow count capped) through every phase and checks each
    // frame: the parser (checksums verified) must read back what was meant, and the bytes must
    // equal PacketBuilder's frame for the same packet. Returns "" or the first difference.
    static std::string self_check(WorkloadConfig cfg);

    // Mean lifecycle packets per script for the mix (used to size churn and the table).
    double mean_script_packets() const noexcept;
    // Scripts that leave an entry waiting for a timeout (closed linger, unanswered SYN) per
    // steady packet.
    double lingering_scripts_per_packet() const noexcept;

    struct Desc {  // one packet to write
        uint32_t slot;
        uint16_t gen;
        uint8_t from_client;
        uint8_t flags;
        uint32_t seq;
        uint32_t ack;
        uint16_t payload;
        uint8_t content;  // 0: counting pattern (PacketBuilder's), 1: HTTP request, 2: response
        uint8_t syn_opts;
    };
    struct Script;  // one lifecycle in flight

private:
    struct Slot {
        uint32_t c_off;  // client's next sequence number, relative to its ISN + 1
        uint32_t s_off;  // server's
        uint16_t gen;    // generation of the open flow (its client port)
        uint16_t next_gen;
        uint8_t busy;  // a script owns the slot
        uint8_t pad_[3];
    };
    static_assert(sizeof(Slot) == 16);

    uint64_t rnd() noexcept;
    uint32_t below(uint32_t n) noexcept { return static_cast<uint32_t>((rnd() >> 32) * n >> 32); }
    double unit() noexcept { return static_cast<double>(rnd() >> 11) * 0x1.0p-53; }
    uint16_t data_payload() noexcept;
    uint16_t first_payload() noexcept;
    Pattern draw_pattern() noexcept;

    bool next_desc(Desc& d) noexcept;
    void open_descs(uint32_t slot, uint16_t gen, Desc* out, unsigned& n, uint32_t& c_off,
                    uint32_t& s_off) const noexcept;
    bool start_script(Script& s) noexcept;
    void emit_script(uint32_t i, Desc& d) noexcept;
    unsigned write(const Desc& d, uint8_t* frame) const noexcept;
    std::vector<uint8_t> reference(const Desc& d) const;  // PacketBuilder's frame

    WorkloadConfig cfg_;
    std::unique_ptr<Slot[]> slots_;
    std::unique_ptr<Script[]> scripts_;
    uint32_t nscripts_ = 0;
    std::array<double, count_of<Pattern>> cdf_{};
    Phase phase_ = Phase::warmup;
    uint64_t rng_;
    uint64_t t_ns_ = 1'700'000'000ull * 1'000'000'000ull;  // 2023-11-14, epoch ns
    uint64_t warm_pos_ = 0;
    Expected expected_{};
    uint64_t flows_started_ = 0, scripts_started_ = 0, lifecycle_pkts_ = 0, data_pkts_ = 0;
    struct Templates;
    std::shared_ptr<const Templates> tpl_;
};

}  // namespace closetap::bench
