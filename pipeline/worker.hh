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
    const AppClassifier* apps = nullptr;  // null: no application labels
    AppScratch app_scratch;               // this worker's Hyperscan scratch

    WorkerStats stats;

    // Control, written by the control thread (stop_rx, flush_ts/flush_go) or the worker.
    alignas(64) std::atomic<bool> stop_rx{false};
    std::atomic<bool> rx_stopped{false};
    std::atomic<bool> flush_go{false};
    std::atomic<uint64_t> flush_ts_us{0};
    std::atomic<bool> done{false};
};

// The lcore entry point (rte_eal_remote_launch); `arg` is the Worker.
int worker_main(void* arg);

// The hot path of worker_main without the rx call: parses, tracks and frees (rte_pktmbuf_free_bulk)
// `n` <= max_burst mbufs received on `q`, which must be one of w.queues. For bench/closetap-bench,
// which replays an in-memory workload through exactly the code that runs on a port. One thread
// per Worker.
void process_rx_burst(Worker& w, const WorkerQueue& q, rte_mbuf** pkts, unsigned n,
                      uint64_t& now_us) noexcept;

// Records ring of a worker: element-sized ring of ConnRecord, single producer and consumer.
rte_ring* create_record_ring(unsigned worker_id, unsigned socket_id);

}  // namespace closetap
