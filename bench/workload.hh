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
// What a tap adds (closetap-gen, gen/): every frame can be VLAN-tagged and/or carried in VXLAN
// (outer IPv4/UDP 4789 between two VTEPs, the outer source port from the inner flow); with
// `skew_ns` the responder's direction is seen that much later than the originator's: each
// responder packet waits in a delay line, and no packet of a lifecycle leaves before the
// previous packets of its flow (so a connection's own packets keep their order and the truth
// stays exact; data segments of open flows do cross between directions, as on a skewed tap);
// with `loss` that share of the responder's data segments (never a lifecycle packet) is not
// sent: the close of every flow is unchanged, only per-flow packet and byte counts shrink.
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

// The close patterns of SPEC section 2 the workload produces: every Close before `none` (what
// flows still open at the end get), in Close's order, so a pattern is the Close it must end as.
using Pattern = Close;
inline constexpr size_t pattern_count = static_cast<size_t>(Close::none);
static_assert(pattern_count == 8 && static_cast<size_t>(Close::no_answer) == 7,
              "WorkloadConfig::mix and the scripts' lengths list the patterns in Close's order");

enum class FrameMix : uint8_t { min64, imix, fixed };  // fixed: every data segment `payload`

struct WorkloadConfig {
    uint32_t flows = 1'000'000;  // concurrent open flows (slots)
    double churn = 0.2;          // fraction of steady packets that are lifecycle packets
    uint32_t inflight = 1024;    // lifecycle scripts interleaved at once
    FrameMix frames = FrameMix::min64;
    uint16_t payload = 0;  // data segment payload bytes with FrameMix::fixed
    std::array<double, pattern_count> mix = {25, 35, 3, 5, 5, 15, 7, 5};  // weights
    double resp_closes = 0.5;  // share of FIN/RST closes the responder (server) starts
    double http_share = 0.5;   // share of flows whose first request is HTTP (else no match)
    double ipv6_share = 0;     // share of flows over IPv6 (2001:db8::/32; the rest IPv4)
    uint64_t seed = 1;
    uint8_t worker = 0;  // address space of this worker's flows (client 10+worker.x.y.z)
    uint32_t warmup_ns_per_pkt = 250;   // packet-time step while opening flows
    uint32_t steady_ns_per_pkt = 1000;  // packet-time step in the measured phase (1 us)
    // Tap-side encapsulation and impairments (closetap-gen); the defaults leave frames as above.
    uint16_t vlan = 0;          // 802.1Q VLAN ID on every frame (1-4094; 0 = untagged)
    int32_t vxlan_vni = -1;     // VXLAN VNI (0-16777215) around every frame; -1 = none
    uint64_t skew_ns = 0;       // the responder's direction reaches the tap this much later
    double loss = 0;            // share of the responder's data segments that are not sent
    uint32_t delay_slots = 1u << 16;  // delay-line capacity (packets) when skew_ns > 0
};

// Parses "fin_4way=25,rst=10,..." (weights; patterns not named get 0). Throws
// std::invalid_argument naming the bad item.
std::array<double, pattern_count> parse_mix(const std::string& text);

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
    // 0 when the phase has no more packets (warm-up and drain end; steady never does) or, when
    // waiting() says so, none yet: the skew delay line holds the next ones (call again later).
    // `ts_us` receives its packet time.
    static constexpr unsigned max_frame = 1514;
    unsigned next(uint8_t* frame, uint64_t& ts_us) noexcept;
    bool waiting() const noexcept { return waiting_; }
    // The last packet next() wrote opens or closes a flow (warm-up or script), rather than being
    // a data segment of an open flow: losing it would change the ground truth.
    bool last_lifecycle() const noexcept { return last_lifecycle_; }
    // Packet time: with a zero ns_per_pkt step the caller drives the clock (closetap-gen sets
    // it to the wall clock before every burst).
    void set_time_ns(uint64_t t) noexcept { t_ns_ = t; }
    uint32_t delayed_now() const noexcept { return dq_n_; }

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
    uint64_t lost_packets() const noexcept { return lost_pkts_; }  // `loss`: not sent
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
        uint8_t busy;     // a script owns the slot
        uint8_t pending;  // its packets in the skew delay line
        uint8_t pad_[2];
    };
    static_assert(sizeof(Slot) == 16);

    uint64_t rnd() noexcept;
    uint32_t below(uint32_t n) noexcept { return static_cast<uint32_t>((rnd() >> 32) * n >> 32); }
    double unit() noexcept { return static_cast<double>(rnd() >> 11) * 0x1.0p-53; }
    uint16_t data_payload(bool v6) noexcept;
    uint16_t first_payload() noexcept;
    Pattern draw_pattern() noexcept;

    bool next_desc(Desc& d, bool& lifecycle) noexcept;
    bool script_ready(uint32_t i) const noexcept;  // no earlier packet of its flow delayed
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
    uint32_t next_script_ = 0;  // round-robin cursor over the scripts in flight
    std::array<double, pattern_count> cdf_{};
    Phase phase_ = Phase::warmup;
    uint64_t rng_;
    uint64_t t_ns_ = 1'700'000'000ull * 1'000'000'000ull;  // 2023-11-14, epoch ns
    uint64_t warm_pos_ = 0;
    Expected expected_{};
    uint64_t flows_started_ = 0, scripts_started_ = 0, lifecycle_pkts_ = 0, data_pkts_ = 0;
    uint64_t lost_pkts_ = 0;
    bool waiting_ = false, last_lifecycle_ = false;
    unsigned enc_off_ = 0;  // encapsulation bytes before the inner Ethernet header's end
    uint64_t v6_below_ = 0;  // a flow is IPv6 when its draw is below this (ipv6_share * 2^64)
    bool is_v6(uint32_t slot, uint16_t gen) const noexcept;
    struct Delayed {
        uint64_t release_ns;
        Desc d;
        bool lifecycle;
    };
    std::unique_ptr<Delayed[]> dq_;  // the skew delay line, a ring
    uint32_t dq_cap_ = 0, dq_head_ = 0, dq_n_ = 0;
    struct Templates;
    std::shared_ptr<const Templates> tpl_;
};

}  // namespace closetap::bench
