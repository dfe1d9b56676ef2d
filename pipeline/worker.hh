// A poll-mode worker: owns its flow-table shard and counters, receives bursts from its queues,
// parses, tracks, and hands ended connections to the control thread over a ring. Everything the
// hot path touches sits in this one cache-aligned struct.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "exporters/stats.hh"
#include "flowtable/flow_table.hh"
#include "pipeline/app_classifier.hh"
#include "pipeline/parse.hh"
#include "pipeline/port.hh"

struct rte_ring;
struct rte_mbuf;

namespace closetap {

inline constexpr unsigned max_burst = 512;
inline constexpr unsigned max_queues_per_worker = max_ports;
inline constexpr unsigned max_workers = 16;
inline constexpr unsigned burst_pipeline_depth = 5;  // bursts a worker holds in flight (worker.cc)

// The shard of a flow among n workers: both directions hash alike (flowtable/flow_key.hh), so
// both land in one shard. Multiply-shift rather than modulo: uniform and cheap.
inline unsigned shard_of(uint32_t hash, unsigned n) noexcept {
    return static_cast<unsigned>((uint64_t{hash} * n) >> 32);
}

// Per-lcore scratch of the burst loop (worker.cc). Held through the Worker / Dispatcher, in
// heap memory allocated once when the lcore starts: as thread_local it would enlarge every
// thread's static TLS, and 160 KB of it made pthread_create fail for civetweb's small stacks.
struct Burst;
struct MergeState;
struct ScratchDeleter {
    void operator()(Burst* p) const noexcept;
    void operator()(MergeState* p) const noexcept;
};

struct WorkerQueue {
    uint16_t port_id;
    uint16_t queue;
    uint8_t slot;          // port index in WorkerStats
    bool ts_from_mbuf;
    ParseOptions parse;    // link type differs per port (a capture's DLT)
};

struct alignas(64) Worker {
    // Set up by the control thread before launch, read-only afterwards.
    unsigned id = 0;
    unsigned lcore = 0;
    unsigned nb_queues = 0;
    std::array<WorkerQueue, max_queues_per_worker> queues{};
    unsigned burst = 32;
    bool lossless = false;  // offline replay: wait for the log writer rather than drop records
    RxTimestamp ts;
    uint64_t tsc_hz = 0, tsc0 = 0, wall0_us = 0;  // live ports: packet time from the TSC
    std::unique_ptr<FlowTable> table;
    rte_ring* records = nullptr;
    // Dispatch mode (ports without symmetric multi-queue receive): packets come from the
    // dispatcher over this ring instead of from the queues, which then only describe the ports.
    rte_ring* in_ring = nullptr;
    unsigned nb_shards = 1;
    std::array<uint8_t, 256> queue_of_port{};  // port id -> index in queues (dispatch mode)
    const AppClassifier* apps = nullptr;  // null: no application labels
    AppScratch app_scratch;               // this worker's Hyperscan scratch
    std::unique_ptr<Burst, ScratchDeleter> burst_buf;
    std::unique_ptr<MergeState, ScratchDeleter> merge_buf;

    WorkerStats stats;
    // closetap-bench --stages: TSC cycles spent in each of the burst pipeline's six stages
    // (worker.cc). Null on a port: the hot path then pays one test per stage.
    uint64_t* stage_cycles = nullptr;

    // Control, written by the control thread (stop_rx, flush_ts/flush_go) or the worker.
    alignas(64) std::atomic<bool> stop_rx{false};
    std::atomic<bool> rx_stopped{false};
    std::atomic<bool> flush_go{false};
    std::atomic<uint64_t> flush_ts_us{0};
    std::atomic<bool> done{false};
};

// Hands an ended connection to the control thread: counts it, and enqueues its record on the
// worker's ring (offline: waits for room; live: counts a drop). The flow table's sink.
struct RecordSink {
    Worker& w;
    void operator()(const FlowEntry& e, const ConnResult& r) const noexcept;
};

// The lcore entry point (rte_eal_remote_launch); `arg` is the Worker.
int worker_main(void* arg);

// The dispatch stage, for ports that cannot spread a tap's traffic over queues symmetrically
// (pcap, af_packet or memif with one queue): it receives, hashes each packet's symmetric flow
// key and hands the packet to that flow's worker over an rte_ring. Offline it merges its ports by
// capture time, so every worker sees its flows' packets in time order and the records are the
// same with any number of workers.
struct alignas(64) Dispatcher {
    unsigned lcore = 0;
    unsigned nb_queues = 0;
    std::array<WorkerQueue, max_queues_per_worker> queues{};
    unsigned burst = 32;
    bool lossless = false;  // offline: wait for a full worker ring rather than drop
    RxTimestamp ts;
    unsigned nb_workers = 0;
    std::array<rte_ring*, max_workers> rings{};

    std::array<uint8_t, 256> queue_of_port{};  // port id -> index in queues
    unsigned queue_slot(const rte_mbuf* m) const noexcept;

    std::array<Counter, max_ports> ring_full;  // packets dropped: the worker's ring was full
    Counter loops, busy_cycles;
    std::unique_ptr<MergeState, ScratchDeleter> merge_buf;

    alignas(64) std::atomic<bool> stop{false};
    std::atomic<bool> stopped{false};
};
int dispatcher_main(void* arg);
rte_ring* create_packet_ring(unsigned worker_id, unsigned socket_id, unsigned size);

// The hot path of worker_main without the rx call: parses, tracks and frees (rte_pktmbuf_free_bulk)
// `n` <= max_burst mbufs received on `q`, which must be one of w.queues. For bench/closetap-bench,
// which replays an in-memory workload through exactly the code that runs on a port. One thread
// per Worker.
// The path is pipelined over bursts (worker.cc): a call applies the packets of the burst five
// calls back; drain_rx() applies everything still in flight.
void process_rx_burst(Worker& w, const WorkerQueue& q, rte_mbuf** pkts, unsigned n,
                      uint64_t& now_us) noexcept;
void drain_rx(Worker& w, uint64_t& now_us) noexcept;

// Records ring of a worker: element-sized ring of ConnRecord, single producer and consumer.
rte_ring* create_record_ring(unsigned worker_id, unsigned socket_id);

}  // namespace closetap
