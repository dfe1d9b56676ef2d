#include "pipeline/worker.hh"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "exporters/conn_log.hh"
#include "pipeline/segment.hh"

namespace closetap {
// The burst path is a software pipeline over the last five bursts (docs/hot-path.md):
// each call applies the oldest burst and moves each younger one a stage on, so every memory
// access is prefetched a whole burst's work ahead of its use; with this machine's ~300 ns
// DRAM latency a prefetch a few packets ahead arrives too late. The stages of one burst, one
// call apart:
//   0  received: prefetch the mbuf headers (the data address, the rx timestamp);
//   1  prefetch the packet data;
//   2  parse, count by class, key, hash, prefetch the key's main bucket;
//   3  prefetch the entries whose signature matches there; no match (the key is new or in its
//      alternative bucket, a few percent): prefetch the alternative bucket;
//   4  for those, prefetch the entries matching in the alternative bucket;
//   5  apply: packet time, flow table and close machine, classifier, free the mbufs.
// Packets leave in the order they came, so records do not depend on the pipeline; packet time
// (now_us) advances only as packets are applied, so the expiry sweep never runs ahead of them.
// drain_rx() empties the pipeline: the worker drains it whenever a poll finds nothing.
struct Stage {
    unsigned n = 0;
    rte_mbuf* pkts[max_burst];
    uint8_t queue[max_burst];  // index into Worker::queues of the packet's rx queue
    bool tcp[max_burst];
    bool alt[max_burst];       // stage 3 found no signature match in the main bucket
    uint64_t ts[max_burst];    // packet time: the capture's, or the poll's on a live port
    bool v4[max_burst];        // the key is keys4 (the parser's fast path), else keys
    FlowKey4 keys4[max_burst];
    FlowKey keys[max_burst];   // written only when !v4
    uint32_t hashes[max_burst];
    TcpSegment segs[max_burst];
    const uint8_t* payload[max_burst];
    uint16_t payload_caplen[max_burst];
};

struct Burst {
    // Stages 0-4 hold a burst each; stage 5 applies one, and the new burst takes a sixth slot
    // (the one applied in the last call) so that receiving can run interleaved with applying.
    static constexpr unsigned slots = burst_pipeline_depth + 1;
    rte_mbuf* pkts[max_burst];            // receive scratch
    uint8_t queue[max_burst];
    Stage stage[slots];
    unsigned head = 0;      // slot of the youngest burst
    unsigned inflight = 0;  // packets in the stages
};

namespace {


// Label a flow from the first payload of each direction, once per direction, until a
// signature matches (pipeline/app_classifier.hh: only the first bytes are scanned).
inline void classify_app(Worker& w, FlowEntry& e, const TcpSegment& s, const uint8_t* payload,
                         uint16_t caplen) noexcept {
    // The direction's done bit first: after a flow's first payloads it is nearly always set, so
    // the branch predicts. (Testing the label and the payload first mispredicted on a quarter of
    // the packets, callgrind --branch-sim: a flow's label and a packet's payload are coin tosses.)
    const uint8_t bit = static_cast<uint8_t>(1u << s.dir);
    if (e.app_tried & bit) return;
    if (caplen == 0) return;
    e.app_tried |= bit;
    if (w.apps == nullptr) return;
    const bool from_orig = s.dir == e.conn.orig_dir();
    e.app = w.apps->classify(w.app_scratch, from_orig, from_orig ? s.dst_port : s.src_port, payload,
                             caplen);
    if (e.app != 0) e.app_tried = 3;  // labelled: neither direction is scanned again
}

inline uint64_t tsc_now_us(const Worker& w) noexcept {
    return w.wall0_us + (rte_rdtsc() - w.tsc0) * 1000000u / w.tsc_hz;
}

void sync_table_counters(Worker& w) noexcept {
    const FlowTable& t = *w.table;
    w.stats.flows_active.set(t.active());
    w.stats.flow_entries_used.set(t.entries_used());
    w.stats.flows_created.set(t.counters().created);
    for (size_t r = 0; r < count_of<EvictReason>; r++) w.stats.evictions[r].set(t.counters().evictions[r]);
    for (size_t v = 0; v < count_of<EvictVictim>; v++) w.stats.evicted[v].set(t.counters().evicted[v]);
    w.stats.waves_pool_empty.set(t.counters().waves_pool_empty);
}

inline uint64_t mbuf_ts(const Worker& w, const rte_mbuf* m) noexcept {
    return *RTE_MBUF_DYNFIELD(m, w.ts.offset, const rte_mbuf_timestamp_t*);
}

// The stages, one packet each (process_packets runs them over bursts).

// Stage 0: take the packet in, prefetch its mbuf header: the first line holds the data address
// and lengths, the second the rx timestamp dynfield (only read for captures).
inline void receive_one(const Worker& w, Stage& s, unsigned i, rte_mbuf* m, uint8_t queue,
                        uint64_t now_us) noexcept {
    s.pkts[i] = m;
    s.queue[i] = queue;
    s.ts[i] = now_us;
    rte_prefetch0(m);
    if (w.queues[queue].ts_from_mbuf) rte_prefetch0(&m->cacheline1);
}

// Stage 1: the header has arrived; prefetch the frame.
inline void prefetch_data_one(const Stage& s, unsigned i) noexcept {
    rte_prefetch0(rte_pktmbuf_mtod(s.pkts[i], void*));
}

// Stage 2: parse, count, key and hash; prefetch the key's main bucket.
[[gnu::always_inline]] inline void parse_one(Worker& w, Stage& s, unsigned i,
                                             uint64_t* rx_bytes) noexcept {
    WorkerStats& st = w.stats;
    rte_mbuf* m = s.pkts[i];
    const WorkerQueue& q = w.queues[s.queue[i]];
    rx_bytes[q.slot] += rte_pktmbuf_pkt_len(m);
    if (q.ts_from_mbuf && (m->ol_flags & w.ts.flag)) s.ts[i] = packet_time(mbuf_ts(w, m));

    const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
    uint16_t payload_offset = 0;
    s.tcp[i] = false;
    // Ethernet without checksum verification: plain IPv4/TCP frames take the direct path.
    const bool fast = q.parse.link == LinkType::ethernet && !q.parse.verify_checksums;
    if (fast && make_fast_segment(frame, rte_pktmbuf_data_len(m), s.ts[i], s.keys4[i], s.segs[i],
                                  payload_offset, s.payload_caplen[i])) {
        st.packet_class[static_cast<size_t>(PacketClass::tcp)].add();
        s.hashes[i] = flow_hash4(s.keys4[i]);
        s.v4[i] = true;
    } else {
        ParsedPacket pp;
        ParseError err;
        PacketClass c = parse_packet(frame, rte_pktmbuf_data_len(m), q.parse, pp, err);
        if (!count_parsed(st, c, err, pp)) return;
        make_segment(pp, s.ts[i], s.keys[i], s.segs[i]);
        payload_offset = pp.payload_offset;
        s.payload_caplen[i] = pp.payload_caplen;
        s.hashes[i] = flow_hash(s.keys[i]);
        s.v4[i] = false;
    }
    s.payload[i] = frame + payload_offset;
    if (w.nb_shards > 1 && shard_of(s.hashes[i], w.nb_shards) != w.id) st.wrong_shard.add();
    w.table->prefetch(s.hashes[i]);
    s.tcp[i] = true;
}

// Stage 3: the main bucket has arrived; prefetch the entries its signatures point to, or the
// alternative bucket.
inline void prefetch_entries_one(const FlowTable& table, Stage& s, unsigned i) noexcept {
    s.alt[i] = s.tcp[i] && !table.prefetch_entries(s.hashes[i]);
    if (s.alt[i]) table.prefetch_alt(s.hashes[i]);
}

// Stage 4: the alternative bucket has arrived; prefetch its matching entries.
inline void prefetch_alt_one(const FlowTable& table, const Stage& s, unsigned i) noexcept {
    if (s.alt[i]) table.prefetch_alt_entries(s.hashes[i]);
}

// Stage 5: apply the segment (the burst's mbufs are freed together afterwards).
[[gnu::always_inline]] inline void apply_one(Worker& w, Stage& s, unsigned i,
                                             uint64_t& now_us) noexcept {
    if (s.ts[i] > now_us) now_us = s.ts[i];
    if (!s.tcp[i]) return;
    FlowEntry* e = s.v4[i] ? w.table->process(s.keys4[i], s.hashes[i], s.segs[i], RecordSink{w})
                           : w.table->process(s.keys[i], s.hashes[i], s.segs[i], RecordSink{w});
    if (e == nullptr) {
        w.stats.flow_alloc_failed.add();
        return;
    }
    classify_app(w, *e, s.segs[i], s.payload[i], s.payload_caplen[i]);
}

// Frees a burst exactly as rte_pktmbuf_free_bulk would. What a port hands the worker is nearly
// always direct, unshared, single-segment mbufs of one pool, for which rte_pktmbuf_prefree_seg
// changes nothing: those go back with one rte_mempool_put_bulk (as a PMD's fast-free does),
// about 10 instructions a packet instead of 41. Anything else takes rte_pktmbuf_free_bulk.
// The test ORs what must be zero: the pool's difference, refcnt and nb_segs (adjacent 16-bit
// fields, read as one word) against 1 and 1, `next`, and the indirect/external flags.
static_assert(offsetof(rte_mbuf, nb_segs) == offsetof(rte_mbuf, refcnt) + 2);
constexpr uint32_t refcnt1_nbsegs1 = 1u | (1u << 16);  // two 16-bit 1s: the same either endianness
void free_burst(rte_mbuf** pkts, unsigned n) noexcept {
    rte_mempool* const pool = pkts[0]->pool;
    uint64_t odd = 0;
    for (unsigned i = 0; i < n; i++) {
        const rte_mbuf* m = pkts[i];
        uint32_t refcnt_segs;
        std::memcpy(&refcnt_segs, &m->refcnt, sizeof refcnt_segs);
        odd |= (reinterpret_cast<uintptr_t>(m->pool) ^ reinterpret_cast<uintptr_t>(pool)) |
               (refcnt_segs ^ refcnt1_nbsegs1) | reinterpret_cast<uintptr_t>(m->next) |
               (m->ol_flags & (RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL));
    }
    if (odd == 0)
        rte_mempool_put_bulk(pool, reinterpret_cast<void**>(pkts), n);
    else
        rte_pktmbuf_free_bulk(pkts, n);
}

// Moves every burst in the pipeline one stage on and takes `n` new packets (b.pkts, b.queue) in.
// The stages run interleaved, packet by packet, so that their prefetches overlap with the
// parsing and the close machine. With closetap-bench --stages they run one after the other,
// each timed (the order of work per flow is the same either way).
void process_packets(Worker& w, Burst& b, unsigned n, uint64_t& now_ref) noexcept {
    uint64_t now_us = now_ref;  // in a register through the loop; stored back at the end
    constexpr unsigned slots = Burst::slots;
    auto age = [&](unsigned a) -> Stage& { return b.stage[(b.head + slots - a) % slots]; };
    Stage& dat = age(0);  // burst k-1
    Stage& par = age(1);
    Stage& ent = age(2);
    Stage& alt = age(3);
    Stage& app = age(4);  // burst k-5: leaves
    Stage& rcv = age(5);  // free since the last call: burst k
    const FlowTable& table = *w.table;
    uint64_t rx_bytes[max_ports] = {};
    rcv.n = n;
    if (uint64_t* cyc = w.stage_cycles; cyc != nullptr) {
        uint64_t t = rte_rdtsc();
        auto lap = [&](unsigned k) {
            const uint64_t t1 = rte_rdtsc();
            cyc[k] += t1 - t;
            t = t1;
        };
        for (unsigned i = 0; i < app.n; i++) apply_one(w, app, i, now_us);
        lap(5);
        for (unsigned i = 0; i < alt.n; i++) prefetch_alt_one(table, alt, i);
        lap(4);
        for (unsigned i = 0; i < ent.n; i++) prefetch_entries_one(table, ent, i);
        lap(3);
        for (unsigned i = 0; i < par.n; i++) parse_one(w, par, i, rx_bytes);
        lap(2);
        for (unsigned i = 0; i < dat.n; i++) prefetch_data_one(dat, i);
        lap(1);
        for (unsigned i = 0; i < n; i++) receive_one(w, rcv, i, b.pkts[i], b.queue[i], now_us);
        lap(0);
    } else {
        const unsigned m = std::max({app.n, alt.n, ent.n, par.n, dat.n, n});
        // Each stage's packet i, where the stage has one. On a busy port every burst is full and
        // the tests fall away (the common case, compiled apart).
        auto run = [&](auto all_full) {
            constexpr bool full = decltype(all_full)::value;
            for (unsigned i = 0; i < m; i++) {
                if (full || i < app.n) apply_one(w, app, i, now_us);
                if (full || i < alt.n) prefetch_alt_one(table, alt, i);
                if (full || i < ent.n) prefetch_entries_one(table, ent, i);
                if (full || i < par.n) parse_one(w, par, i, rx_bytes);
                if (full || i < dat.n) prefetch_data_one(dat, i);
                if (full || i < n) receive_one(w, rcv, i, b.pkts[i], b.queue[i], now_us);
            }
        };
        if (((app.n ^ m) | (alt.n ^ m) | (ent.n ^ m) | (par.n ^ m) | (dat.n ^ m) | (n ^ m)) == 0)
            run(std::true_type{});
        else
            run(std::false_type{});
    }
    for (unsigned p = 0; p < max_ports; p++)
        if (rx_bytes[p] != 0) w.stats.rx_bytes[p].add(rx_bytes[p]);
    if (app.n != 0) free_burst(app.pkts, app.n);
    b.inflight = b.inflight + n - app.n;
    app.n = 0;
    b.head = (b.head + 1) % slots;
    now_ref = now_us;
}

// Applies everything in the pipeline.
void drain(Worker& w, Burst& b, uint64_t& now_us) noexcept {
    while (b.inflight != 0) process_packets(w, b, 0, now_us);
}

// One queue's burst, in the order the queue delivered it.
void process_burst(Worker& w, unsigned qi, Burst& b, unsigned n, uint64_t& now_us) noexcept {
    w.stats.rx_packets[w.queues[qi].slot].add(n);
    for (unsigned i = 0; i < n; i++) b.queue[i] = static_cast<uint8_t>(qi);
    process_packets(w, b, n, now_us);
}

// Offline replay of several captures (a tap's ports as separate files): packets are taken from
// the queues in capture-time order, so the result is the same whatever the poll order and burst
// sizes. Each queue keeps one received burst pending; a queue that returns nothing has reached
// the end of its file (net_pcap reads synchronously and only stops at the end).
}  // namespace

struct MergeState {
    rte_mbuf* pkts[max_queues_per_worker][max_burst];
    uint16_t n[max_queues_per_worker];
    uint16_t pos[max_queues_per_worker];
    bool eof[max_queues_per_worker];
};

namespace {


// Takes up to `burst` packets from the queues in capture-time order into out/out_q. Counts what
// it takes into rx (per port slot) when given.
unsigned merge_collect(const WorkerQueue* queues, unsigned nq, unsigned burst, const RxTimestamp& ts,
                       MergeState& ms, rte_mbuf** out, uint8_t* out_q, Counter* rx) noexcept {
    for (unsigned qi = 0; qi < nq; qi++) {
        if (ms.eof[qi] || ms.pos[qi] < ms.n[qi]) continue;
        const WorkerQueue& q = queues[qi];
        ms.n[qi] = rte_eth_rx_burst(q.port_id, q.queue, ms.pkts[qi], static_cast<uint16_t>(burst));
        ms.pos[qi] = 0;
        if (ms.n[qi] == 0) ms.eof[qi] = true;
    }
    unsigned n = 0;
    while (n < burst) {
        int best = -1;
        uint64_t best_ts = UINT64_MAX;
        bool starved = false;
        for (unsigned qi = 0; qi < nq; qi++) {
            if (ms.pos[qi] == ms.n[qi]) {
                // Drained but not at its end: refill before going on, or order could break.
                starved |= !ms.eof[qi];
                continue;
            }
            uint64_t t = *RTE_MBUF_DYNFIELD(ms.pkts[qi][ms.pos[qi]], ts.offset, const rte_mbuf_timestamp_t*);
            if (t < best_ts) {
                best_ts = t;
                best = static_cast<int>(qi);
            }
        }
        if (best < 0 || starved) break;
        out[n] = ms.pkts[best][ms.pos[best]++];
        out_q[n] = static_cast<uint8_t>(best);
        // Counted when taken, not when received: an offline run stops once rx reaches the
        // capture's packet count, and packets still pending here would never be processed.
        if (rx != nullptr) rx[queues[best].slot].add();
        n++;
    }
    return n;
}

bool merge_burst(Worker& w, MergeState& ms, Burst& b, uint64_t& now_us) noexcept {
    unsigned n = merge_collect(w.queues.data(), w.nb_queues, w.burst, w.ts, ms, b.pkts, b.queue,
                               w.stats.rx_packets.data());
    if (n == 0) return false;
    process_packets(w, b, n, now_us);
    return true;
}

// Dispatch mode: the dispatcher already received (and ordered) the packets.
bool ring_burst(Worker& w, Burst& b, uint64_t& now_us) noexcept {
    unsigned n = rte_ring_sc_dequeue_burst(w.in_ring, reinterpret_cast<void**>(b.pkts), w.burst, nullptr);
    if (n == 0) return false;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t qi = w.queue_of_port[b.pkts[i]->port & 0xff];
        b.queue[i] = qi;
        w.stats.rx_packets[w.queues[qi].slot].add();
    }
    process_packets(w, b, n, now_us);
    return true;
}

}  // namespace

void process_rx_burst(Worker& w, const WorkerQueue& q, rte_mbuf** pkts, unsigned n,
                      uint64_t& now_us) noexcept {
    if (!w.burst_buf) w.burst_buf.reset(new Burst{});  // first call only
    Burst& burst = *w.burst_buf;
    if (n > max_burst) n = max_burst;
    std::copy_n(pkts, n, burst.pkts);
    // `q` must be one of w.queues: the burst path looks each packet's queue up by index.
    const auto qi = static_cast<unsigned>(&q - w.queues.data());
    process_burst(w, qi, burst, n, now_us);
}

void drain_rx(Worker& w, uint64_t& now_us) noexcept {
    if (w.burst_buf) drain(w, *w.burst_buf, now_us);
}

rte_ring* create_packet_ring(unsigned worker_id, unsigned socket_id, unsigned size) {
    std::string name = "pkts_" + std::to_string(worker_id);
    rte_ring* r = rte_ring_create(name.c_str(), size, static_cast<int>(socket_id),
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r == nullptr)
        throw std::runtime_error("cannot create a dispatch ring: " + std::string(rte_strerror(rte_errno)));
    return r;
}

void RecordSink::operator()(const FlowEntry& e, const ConnResult& r) const noexcept {
    w.stats.count_conn(r, e.app);
    ConnRecord rec = make_record(e, r, static_cast<uint8_t>(w.id));
    while (rte_ring_sp_enqueue_elem(w.records, &rec, sizeof(rec)) != 0) {
        if (!w.lossless) {
            w.stats.records_dropped.add();
            return;
        }
        rte_pause();  // offline: the writer drains; a file read has no packets to lose
    }
}

void ScratchDeleter::operator()(Burst* p) const noexcept { delete p; }
void ScratchDeleter::operator()(MergeState* p) const noexcept { delete p; }

unsigned Dispatcher::queue_slot(const rte_mbuf* m) const noexcept { return queue_of_port[m->port & 0xff]; }

int dispatcher_main(void* arg) {
    Dispatcher& d = *static_cast<Dispatcher*>(arg);
    d.merge_buf.reset(new MergeState{});
    MergeState& ms = *d.merge_buf;
    rte_mbuf* pkts[max_burst];
    uint8_t qidx[max_burst];
    rte_mbuf* per[max_workers][max_burst];
    unsigned cnt[max_workers];
    bool merge = d.lossless;
    for (unsigned qi = 0; qi < d.nb_queues; qi++) merge &= d.queues[qi].ts_from_mbuf;

    while (!d.stop.load(std::memory_order_acquire)) {
        d.loops.add();
        uint64_t t0 = rte_rdtsc();
        unsigned n = 0;
        if (merge) {
            n = merge_collect(d.queues.data(), d.nb_queues, d.burst, d.ts, ms, pkts, qidx, nullptr);
        } else {
            for (unsigned qi = 0; qi < d.nb_queues && n == 0; qi++) {
                const WorkerQueue& q = d.queues[qi];
                n = rte_eth_rx_burst(q.port_id, q.queue, pkts, static_cast<uint16_t>(d.burst));
                for (unsigned i = 0; i < n; i++) qidx[i] = static_cast<uint8_t>(qi);
            }
        }
        if (n == 0) continue;
        for (unsigned k = 0; k < d.nb_workers; k++) cnt[k] = 0;
        for (unsigned i = 0; i < n; i++) {
            // The worker parses again; the dispatcher needs only the key. Packets without a flow
            // (not TCP, errors) go to worker 0, which counts them by class.
            ParsedPacket pp;
            ParseError err;
            unsigned k = 0;
            const WorkerQueue& q = d.queues[qidx[i]];
            if (parse_packet(rte_pktmbuf_mtod(pkts[i], const uint8_t*), rte_pktmbuf_data_len(pkts[i]),
                             q.parse, pp, err) == PacketClass::tcp) {
                FlowKey key;
                make_flow_key(pp.src, pp.sport, pp.dst, pp.dport, key);
                k = shard_of(flow_hash(key), d.nb_workers);
            }
            per[k][cnt[k]++] = pkts[i];
        }
        for (unsigned k = 0; k < d.nb_workers; k++) {
            unsigned sent = 0;
            while (sent < cnt[k]) {
                sent += rte_ring_sp_enqueue_burst(d.rings[k], reinterpret_cast<void**>(per[k] + sent),
                                                  cnt[k] - sent, nullptr);
                if (sent < cnt[k]) {
                    if (d.lossless) {
                        rte_pause();  // offline: a file has no packets to lose; wait
                        continue;
                    }
                    for (unsigned j = sent; j < cnt[k]; j++) {
                        d.ring_full[d.queues[d.queue_slot(per[k][j])].slot].add();
                        rte_pktmbuf_free(per[k][j]);
                    }
                    break;
                }
            }
        }
        d.busy_cycles.add(rte_rdtsc() - t0);
    }
    d.stopped.store(true, std::memory_order_release);
    return 0;
}

rte_ring* create_record_ring(unsigned worker_id, unsigned socket_id) {
    std::string name = "records_" + std::to_string(worker_id);
    rte_ring* r = rte_ring_create_elem(name.c_str(), sizeof(ConnRecord), 8192, static_cast<int>(socket_id),
                                       RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r == nullptr)
        throw std::runtime_error("cannot create the record ring: " + std::string(rte_strerror(rte_errno)));
    return r;
}

int worker_main(void* arg) {
    Worker& w = *static_cast<Worker*>(arg);
    w.burst_buf.reset(new Burst{});
    w.merge_buf.reset(new MergeState{});
    Burst& b = *w.burst_buf;
    uint64_t now_us = 0;  // packet time: capture time offline, TSC-derived wall time live
    bool any_live = false;
    for (unsigned qi = 0; qi < w.nb_queues; qi++) any_live |= !w.queues[qi].ts_from_mbuf;
    RecordSink sink{w};
    // Several capture files: merge them by capture time (every queue must carry timestamps).
    bool merge = w.lossless && w.nb_queues > 1 && w.in_ring == nullptr;
    for (unsigned qi = 0; qi < w.nb_queues; qi++) merge &= w.queues[qi].ts_from_mbuf;
    MergeState& ms = *w.merge_buf;

    // With a dispatcher, stop only once its ring is empty: it stopped before the workers did.
    while (!w.stop_rx.load(std::memory_order_acquire) ||
           (w.in_ring != nullptr && !rte_ring_empty(w.in_ring))) {
        w.stats.loops.add();
        if (any_live) {
            uint64_t t = tsc_now_us(w);
            if (t > now_us) now_us = t;
        }
        bool busy = false;
        uint64_t t0 = rte_rdtsc();
        if (w.in_ring != nullptr) {
            busy = ring_burst(w, b, now_us);
        } else if (merge) {
            busy = merge_burst(w, ms, b, now_us);
        } else {
            for (unsigned qi = 0; qi < w.nb_queues; qi++) {
                const WorkerQueue& q = w.queues[qi];
                uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, b.pkts, static_cast<uint16_t>(w.burst));
                if (n == 0) continue;
                busy = true;
                process_burst(w, qi, b, n, now_us);
            }
        }
        // Nothing arrived: apply what the pipeline holds, so that an idle or slow port's
        // packets are not held back (and the counters add up whenever the port is quiet).
        if (!busy) drain(w, b, now_us);
        w.table->sweep(now_us, sink);
        if (busy) {
            w.stats.busy_loops.add();
            w.stats.busy_cycles.add(rte_rdtsc() - t0);
            sync_table_counters(w);
            if (now_us > w.stats.max_ts_us.get()) w.stats.max_ts_us.set(now_us);
        }
    }
    // Merged replay stopped early (a signal): packets the merge buffers already took from the
    // ports are processed (and counted, merge_collect counts on the way out), not dropped.
    if (merge)
        while (merge_burst(w, ms, b, now_us)) {
        }
    drain(w, b, now_us);
    if (now_us > w.stats.max_ts_us.get()) w.stats.max_ts_us.set(now_us);
    sync_table_counters(w);
    w.rx_stopped.store(true, std::memory_order_release);

    // End of input: the control thread tells every worker the same flush time (the latest packet
    // time of all workers), so which connections count as timed out does not depend on how the
    // packets were spread over workers.
    while (!w.flush_go.load(std::memory_order_acquire)) rte_pause();
    w.lossless = true;  // the control thread is draining: every flushed record reaches the log
    w.table->flush(w.flush_ts_us.load(std::memory_order_relaxed), EndCause::end_of_input, sink);
    sync_table_counters(w);
    w.done.store(true, std::memory_order_release);
    return 0;
}

}  // namespace closetap
