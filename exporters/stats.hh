// Per-worker counters. Workers bump them with plain relaxed atomic adds (an ordinary add on
// x86, but no data race for the C++ memory model); the exporters sum all workers at scrape or
// exit time. Nothing here allocates or locks.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "flowtable/conn_types.hh"
#include "flowtable/flow_table.hh"
#include "pipeline/parse.hh"

namespace closetap {

// A counter only its worker writes and anyone may read.
class Counter {
public:
    void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void set(uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
    uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

inline constexpr unsigned max_ports = 8;
inline constexpr unsigned max_apps = 32;  // application label ids (0 = unknown)

// Histogram upper bounds, seconds. Teardown: from sub-millisecond data-center closes to the
// minutes a half-open flow can linger. Lifetime: first to last packet, from a refused attempt to
// day-long sessions.
inline constexpr std::array<double, 14> teardown_buckets_s = {
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
inline constexpr std::array<double, 14> lifetime_buckets_s = {
    0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400};

// A fixed-bucket histogram of microsecond observations; buckets are not cumulative here (the
// exporter accumulates them), the last one is +Inf.
template <const std::array<double, 14>& Bounds> struct Histogram {
    static constexpr const std::array<double, 14>& bounds = Bounds;
    std::array<Counter, Bounds.size() + 1> buckets;
    Counter sum_us;
    void observe_us(uint64_t us) noexcept {
        size_t i = 0;
        while (i < Bounds.size() && static_cast<double>(us) > Bounds[i] * 1e6) i++;
        buckets[i].add();
        sum_us.add(us);
    }
};
using TeardownHistogram = Histogram<teardown_buckets_s>;
using LifetimeHistogram = Histogram<lifetime_buckets_s>;

// Counters of the control thread (conn log and event writers, port link polling).
struct ControlStats {
    Counter log_written;
    Counter log_errors;
    Counter events_written;
    Counter events_suppressed;
    Counter events_errors;
    std::array<Counter, max_ports> link_up;       // 1 while the port reports its link up
    std::array<Counter, max_ports> link_changes;  // up/down transitions seen since start
};

struct alignas(64) WorkerStats {
    // Packet accounting: rx = sum(packet_class); every packet gets exactly one class.
    std::array<Counter, max_ports> rx_packets;
    std::array<Counter, max_ports> rx_bytes;
    std::array<Counter, count_of<PacketClass>> packet_class;
    std::array<Counter, count_of<ParseError>> parse_errors;
    Counter checksum_bad;
    Counter wrong_shard;  // a packet whose flow hashes to another worker's shard (must stay 0)
    Counter flow_alloc_failed;  // a TCP packet that found no entry even after eviction

    // Connection outcomes, counted when the record is concluded.
    std::array<std::array<Counter, count_of<Initiator>>, count_of<Close>> closes;
    std::array<Counter, count_of<ConnState>> conn_state;
    std::array<std::array<Counter, max_apps>, count_of<Reason>> abnormal;
    std::array<Counter, count_of<FinAck>> fin_ack;
    std::array<TeardownHistogram, count_of<Close>> teardown;
    std::array<LifetimeHistogram, count_of<Close>> lifetime;
    std::array<Counter, count_of<EndCause>> ended;

    // Flow table (copied from the table's own counters once per loop).
    Counter flows_active;
    Counter flows_created;
    Counter flow_capacity;
    Counter flow_entries_used;  // entries of active connections: an IPv6 one takes two
    std::array<Counter, count_of<EvictReason>> evictions;
    std::array<Counter, count_of<EvictVictim>> evicted;  // the same evictions by victim class
    Counter waves_pool_empty;  // closes whose teardown waves found the pool empty

    // Records the worker could not hand to the log writer (ring full on a live port).
    Counter records_dropped;

    // Load: loops, loops that received something, TSC cycles spent on received bursts.
    Counter loops;
    Counter busy_loops;
    Counter busy_cycles;
    Counter max_ts_us;  // latest packet time seen (drives the flush at end of input)

    void count_conn(const ConnResult& r, uint16_t app) noexcept;
};

}  // namespace closetap
