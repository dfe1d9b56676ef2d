// A per-worker flow table: fixed capacity chosen at start-up, never rehashed, no locks (one
// worker owns it). Bucketized two-choice hashing in the style of rte_hash: each key has two
// candidate buckets of 8 slots holding a 16-bit signature and an entry index, so a lookup reads
// one or two cache lines of signatures and touches the entry only on a signature match.
// Entries are 84 bytes (95.2-95.7 per flow with the buckets and the attempts ring): an IPv4
// key is kept in 12 of them, an IPv6 connection takes a second entry for its addresses, and no
// hash is stored for IPv4.
//
// When an insert finds no room (both buckets full, or the entry pool exhausted) it evicts by a
// stated policy, counted by reason: among the candidates, prefer a connection attempt (SYN sent,
// nothing from the responder: what a SYN flood fills the table with), then an established flow, and
// a flow in the middle of a close (FIN/RST seen) last; within a class, the one idle the longest.
// When the whole table is full, the oldest attempt in the table goes, found through the attempts
// ring (every SYN-started connection, in packet order; random probes when the ring has forgotten
// them): an established flow is given up only when no attempt is found, and a SYN flood replaces
// its own oldest entries rather than the flows it is flooding. Victims are counted by class. Expiry
// walks the buckets with a cursor, a bounded number per call, and reads an entry only when its
// slot's due tick says it may have timed out, so housekeeping work per loop is bounded and small.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "flowtable/conn_types.hh"
#include "flowtable/flow_key.hh"
#include "flowtable/tcp_conn.hh"
#include "flowtable/timeouts.hh"
#include "flowtable/waves.hh"
#include "flowtable/zeroed_array.hh"

namespace closetap {

// A prefetch the compiler must keep. GCC treats __builtin_prefetch as free of side effects and
// deletes a loop whose only work is prefetching (prefetch_entries below compiled to a bare
// `ret` until this was found); a volatile asm, as DPDK's rte_prefetch0, cannot be deleted.
inline void prefetch_line(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const volatile char*>(p)));
#elif defined(__aarch64__)
    asm volatile("prfm pldl1keep, %0" : : "Q"(*static_cast<const volatile char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

// Every cache line of a `Bytes`-byte object at `p`, whatever its offset in its first line:
// one prefetch per 64 bytes, and one more for the last byte, for when the object straddles one
// more line than that (unrolled: the hot path prefetches entries this way). The last one is not
// made conditional on the offset: a FlowEntry's offset in its line is as good as random, so
// that test mispredicted on every third packet (callgrind --branch-sim), and a prefetch of a
// line already on its way costs one instruction.
template <size_t Bytes> inline void prefetch_span(const void* p) noexcept {
    static_assert(Bytes > 0);
    const auto* c = static_cast<const char*>(p);
    for (size_t k = 0; k < Bytes; k += 64) prefetch_line(c + k);
    prefetch_line(c + Bytes - 1);
}

enum class EvictReason : uint8_t { bucket_full, table_full, count_ };
inline constexpr std::array<std::string_view, 2> evict_reason_names = {"bucket_full", "table_full"};

// A table entry: 84 bytes; with the buckets 94.7 per IPv4 flow, with the attempts ring 95.2-95.7.
// An IPv4 connection's key fits in the entry's first 12 bytes. An IPv6 connection takes a second
// entry for its addresses (`addrs`, `v6_addr`) and keeps its flow hash beside that entry's index,
// so that a lookup reads the second entry only when the hash and the ports already match. (The full
// 36-byte key and a stored hash in every entry made 112 bytes.) FlowTable::key_of() gives the whole
// key.
struct FlowEntry {
    // IPv4: the key's addresses (the last 4 bytes of each IPv4-mapped address, as in FlowKey).
    // IPv6: a[0] = the entry holding the addresses, a[1] = the flow's hash.
    // Free: a[0] = the next free entry.
    uint32_t a[2];
    uint16_t port[2];    // the key's ports
    uint16_t app;        // application label id (pipeline/app_classifier.hh), 0 = unknown
    uint8_t in_use : 1;     // a connection, or the addresses of one (addrs)
    uint8_t app_tried : 2;  // bit per key direction: its first payload was already scanned, or
                            // (both bits) the flow is labelled: nothing more to scan
    uint8_t v6 : 1;         // an IPv6 connection: its addresses are in entry a[0]
    uint8_t addrs : 1;      // no connection: an IPv6 connection's addresses, in v6_addr
    uint8_t fast;        // conn.fast_mask(), kept by FlowTable::process: the fast path's test
    uint32_t waves;      // handle into the table's WavePool (flowtable/waves.hh); 0 = not closing
    union {
        TcpConn conn;
        std::array<uint8_t, 16> v6_addr[2];  // addrs: the key's addr[0] and addr[1]
    };
};
static_assert(sizeof(FlowEntry) == 84,
              "an entry is 84 bytes: at most 95.7 per flow with the buckets and the attempts ring");

// What kind of flow an eviction ended, in the policy's order of preference.
enum class EvictVictim : uint8_t { attempt, established, closing, count_ };
inline constexpr std::array<std::string_view, 3> evict_victim_names = {"attempt", "established",
                                                                       "closing"};

struct FlowTableCounters {
    uint64_t created = 0;
    uint64_t ended[count_of<EndCause>] = {};
    uint64_t evictions[count_of<EvictReason>] = {};
    uint64_t evicted[count_of<EvictVictim>] = {};  // the same evictions, by the victim's class
    uint64_t waves_pool_empty = 0;  // closes that recorded no waves: the wave pool was empty
    uint64_t displaced = 0;         // inserts that moved another key to its other bucket
};

class FlowTable {
public:
    static constexpr unsigned bucket_slots = 8;
    // Buckets the expiry sweep looks at per call of the worker's loop (and of the bench and the
    // fuzzers, which mirror it): one cache line per packet of a full 32-packet burst, a pass over
    // a 10M-flow table every ~100K loops.
    static constexpr unsigned expire_budget = 32;
    // How far ahead of the sweep its prefetches run, in buckets (expire).
    static constexpr unsigned sweep_lookahead = 16;
    static constexpr uint32_t no_entry = UINT32_MAX;

    // Closing flows' teardown waves: a pool of min(capacity, 65536) by default; 0 disables them.
    static constexpr uint32_t wave_pool_auto = UINT32_MAX;
    static constexpr uint32_t wave_pool_default_max = 65536;

    // Throws std::invalid_argument / std::bad_alloc at start-up only.
    FlowTable(uint32_t capacity, const FlowTimeouts& timeouts, uint32_t wave_pool = wave_pool_auto);

    // Entries: an IPv4 connection takes one, an IPv6 connection two.
    uint32_t capacity() const noexcept { return capacity_; }
    // Memory the table reserved at start-up (it never grows): the parts that scale with the
    // capacity (buckets, entries), and the fixed-size teardown-wave pool.
    uint64_t bytes_per_capacity() const noexcept {
        return uint64_t{nbuckets_} * sizeof(Bucket) + uint64_t{capacity_} * sizeof(FlowEntry) +
               uint64_t{attempt_mask_ + 1} * sizeof(uint32_t);
    }
    uint64_t bytes_fixed() const noexcept { return waves_.bytes(); }
    // The attempts ring's slots for a capacity: a power of two between capacity/8 and capacity/4.
    static uint32_t attempt_slots_for(uint32_t capacity) noexcept {
        return std::bit_floor(std::max(capacity / 4, 1u));
    }
    // Buckets for a capacity: 8 slots each, 4/3 slots per entry (flow_table.cc).
    static uint32_t buckets_for(uint32_t capacity) noexcept;
    uint32_t active() const noexcept { return active_; }  // connections
    uint32_t entries_used() const noexcept { return used_; }  // theirs, IPv6 addresses included
    const FlowTableCounters& counters() const noexcept { return counters_; }
    const FlowTimeouts& timeouts() const noexcept { return timeouts_; }
    const WavePool& wave_pool() const noexcept { return waves_; }

    // Lookups of a burst go in two prefetch stages, as rte_hash's bulk lookup does: first the
    // key's two buckets (prefetch), then, once those have arrived, the entries whose signature
    // matches (prefetch_entries), so that process() finds both in cache.
    // Only the main bucket: inserts fill it first, so it holds nearly every key, and a second
    // line per packet would cost more memory parallelism than the rare miss it saves.
    void prefetch(uint32_t hash) const noexcept { prefetch_line(&buckets_[main_bucket(hash)]); }
    // Stage two: the entries whose signature matches in the main bucket. False when none does:
    // the key is in the alternative bucket or new, and the caller prefetches that bucket
    // (prefetch_alt) and, one stage later, its entries (prefetch_alt_entries).
    bool prefetch_entries(uint32_t hash) const noexcept {
        return prefetch_matches(buckets_[main_bucket(hash)], sig_of(hash));
    }
    void prefetch_alt(uint32_t hash) const noexcept { prefetch_line(&buckets_[alt_bucket(hash)]); }
    void prefetch_alt_entries(uint32_t hash) const noexcept {
        prefetch_matches(buckets_[alt_bucket(hash)], sig_of(hash));
    }

    // Apply one segment; `hash` is flow_hash(key). Ended connections (timeout seen on this
    // packet, reuse, eviction) are handed to sink(const FlowEntry&, const ConnResult&), the
    // result carrying the key, before their entries are reused.
    template <typename Sink>
    FlowEntry* process(const FlowKey& key, uint32_t hash, const TcpSegment& seg, Sink&& sink) noexcept;
    // The same for an IPv4 key in its 12 bytes (the parser's fast path), `hash` being
    // flow_hash4(key): no 36-byte key is built, tested for its family or compared; the FlowKey
    // is made only to insert a new connection.
    template <typename Sink>
    FlowEntry* process(const FlowKey4& key, uint32_t hash, const TcpSegment& seg,
                       Sink&& sink) noexcept;

    // Look at `budget` buckets (up to 8 flows each) and expire their flows whose state's timeout
    // has passed at `now_us`. Returns how many ended.
    template <typename Sink> unsigned expire(uint64_t now_us, unsigned budget, Sink&& sink) noexcept;

    // The worker's housekeeping, once per loop: expire() paced by packet time, so that a pass
    // over all buckets takes about sweep_pass_us of it (never more than expire_budget buckets a
    // call; faster only when it has fallen behind). A flow then ends at most sweep_pass_us plus
    // a tick after its timeout, whatever the packet rate, and a busy table costs a fraction of a
    // bucket line per packet instead of one. (Records do not depend on it: a flow whose timeout
    // passed ends on its own next packet as well, with the same time.)
    static constexpr uint64_t sweep_pass_us = uint64_t{1} << 20;  // 1.05 s
    template <typename Sink> unsigned sweep(uint64_t now_us, Sink&& sink) noexcept {
        if (now_us > paced_us_) {
            // Credit in bucket-microseconds: nbuckets_ per sweep_pass_us, at most one pass.
            const uint64_t dt = std::min(now_us - paced_us_, sweep_pass_us);
            credit_ = std::min(credit_ + dt * nbuckets_, uint64_t{nbuckets_} * sweep_pass_us);
            paced_us_ = now_us;
        }
        const uint64_t n = std::min<uint64_t>(credit_ / sweep_pass_us, expire_budget);
        if (n == 0) return 0;
        credit_ -= n * sweep_pass_us;
        return expire(now_us, static_cast<unsigned>(n), sink);
    }

    // End every connection (end of input or shutdown). Connections whose timeout had passed at
    // `now_us` end as timed out; the rest as `cause`.
    template <typename Sink> void flush(uint64_t now_us, EndCause cause, Sink&& sink) noexcept;

    // For tests and fuzzers: the table's invariants (every used slot names an entry in use whose
    // hash chose that bucket and gives that signature; every entry in use has exactly one slot;
    // active() counts them; the free list holds the rest of the used entries). Empty when they
    // hold, else what is wrong. Reads the whole table.
    std::string verify() const;

    FlowEntry* lookup(const FlowKey& key, uint32_t hash) noexcept {
        Slot at;
        return find(key, hash, at);
    }
    // The whole key of a connection's entry.
    FlowKey key_of(const FlowEntry& e) const noexcept;
    // Both addresses IPv4-mapped: the key fits in an entry.
    static bool ipv4_key(const FlowKey& k) noexcept {
        uint64_t h[2];
        uint32_t m[2];
        std::memcpy(&h[0], k.addr[0].data(), 8);
        std::memcpy(&h[1], k.addr[1].data(), 8);
        std::memcpy(&m[0], k.addr[0].data() + 8, 4);
        std::memcpy(&m[1], k.addr[1].data() + 8, 4);
        return (h[0] | h[1]) == 0 && (m[0] & m[1]) == mapped_word && (m[0] | m[1]) == mapped_word;
    }

private:
    // A bucket: per slot the key's signature (0: empty), its entry, and when the sweep should
    // look at it next (`due`, in ticks of 2^16 us = 65.5 ms of packet time, mod 2^16). The sweep walks the
    // buckets and reads an entry only when it is due, so housekeeping costs a line per 8 slots
    // instead of two per entry; every packet refreshes its slot's due in the bucket line the
    // lookup has just read.
    struct alignas(64) Bucket {
        uint16_t sig[bucket_slots];
        uint32_t idx[bucket_slots];
        uint16_t due[bucket_slots];
    };
    static_assert(sizeof(Bucket) == 64);
    struct Slot {
        Bucket* b = nullptr;
        unsigned s = 0;
    };
    static constexpr unsigned tick_shift = 16;
    // A due tick is at most this far ahead (17.9 min; the default timeouts are 5 s and 300 s): a
    // flow with a longer timeout is looked at then, found not timed out, and given a new due.
    // A slot is "not due" only while its due lies 1..max_due_ahead ticks ahead, so one whose
    // due passed stays due through the 16-bit wrap for another 53 minutes of packet time. A pass
    // of the sweep that took longer than max_due_ahead ticks of packet time (a sparse capture
    // replayed fast, or a gap of hours in one) could have left a slot unvisited for longer than
    // that: the next pass then reads every entry, as if every slot were due.
    static constexpr uint64_t max_due_ahead = 1u << 14;
    static uint16_t tick_of(uint64_t us) noexcept { return static_cast<uint16_t>(us >> tick_shift); }
    // When `e` times out (timed_out() turns true), as a due tick no later than that.
    uint16_t due_tick(const FlowEntry& e, uint64_t now_us) const noexcept {
        const TimeoutClass c = e.conn.timeout_class();
        const uint64_t since = c == TimeoutClass::syn_sent ? e.conn.first_ts_us() : e.conn.last_ts_us();
        const uint64_t at = since + timeouts_.of(c);
        // Rounded up: the sweep comes at most a tick late, never early.
        const uint64_t now_t = now_us >> tick_shift;
        const uint64_t at_t = (at + (uint64_t{1} << tick_shift) - 1) >> tick_shift;
        return static_cast<uint16_t>(at_t > now_t + max_due_ahead ? now_t + max_due_ahead : at_t);
    }
    // Bit s set when slot s is in use and due at `now_tick` (one SSE2 pass over the 8 slots).
    static unsigned due_mask(const Bucket& b, uint16_t now_tick, bool all) noexcept {
#if defined(__SSE2__)
        const __m128i zero = _mm_setzero_si128();
        const __m128i sig = _mm_load_si128(reinterpret_cast<const __m128i*>(b.sig));
        if (all) return lane_mask(_mm_cmpeq_epi16(sig, zero)) ^ 0xffu;
        const __m128i due = _mm_load_si128(reinterpret_cast<const __m128i*>(b.due));
        // ahead - 1 in [0, max_due_ahead): not due yet.
        const __m128i ahead1 = _mm_sub_epi16(
            due, _mm_set1_epi16(static_cast<short>(static_cast<uint16_t>(now_tick + 1))));
        const __m128i wait = _mm_and_si128(
            _mm_cmpgt_epi16(ahead1, _mm_set1_epi16(-1)),
            _mm_cmplt_epi16(ahead1, _mm_set1_epi16(static_cast<short>(max_due_ahead))));
        const __m128i idle = _mm_or_si128(_mm_cmpeq_epi16(sig, zero), wait);
        return lane_mask(idle) ^ 0xffu;
#else
        unsigned m = 0;
        for (unsigned s = 0; s < bucket_slots; s++) {
            const uint16_t ahead = static_cast<uint16_t>(b.due[s] - now_tick);
            m |= unsigned{b.sig[s] != 0 && (all || !(ahead >= 1 && ahead <= max_due_ahead))} << s;
        }
        return m;
#endif
    }
    // An entry is 84 bytes: two or three cache lines, all touched by process() and end().
    void prefetch_entry(uint32_t idx) const noexcept {
        prefetch_span<sizeof(FlowEntry)>(&entries_[idx]);
    }
    bool prefetch_matches(const Bucket& bk, uint16_t sig) const noexcept {
        const unsigned matches = match_mask(bk, sig);
        for (unsigned m = matches; m != 0; m &= m - 1) prefetch_entry(bk.idx[__builtin_ctz(m)]);
        return matches != 0;
    }
    // A closing flow's teardown waves (144 bytes: three or four lines), which end() hands to
    // the sink.
    void prefetch_waves(uint32_t handle) const noexcept {
        if (handle != 0 && handle != wave_none)
            prefetch_span<sizeof(CloseWaves)>(&waves_.at(handle));
    }
    // The bucket `n` positions ahead of the sweep (wrapping around the table).
    const Bucket& sweep_ahead(uint32_t n) const noexcept {
        const uint32_t b = sweep_ + n;
        return buckets_[b < nbuckets_ ? b : b % nbuckets_];
    }
    // A key as an entry's first 12 bytes hold it (IPv4), or what those bytes and the address
    // entry must match (IPv6: the hash in a[1], the ports).
    struct Probe {
        uint32_t a[2];
        uint32_t ports;
        bool v6;
    };
    static Probe probe_of(const FlowKey4& key) noexcept {
        Probe p;
        static_assert(sizeof(FlowKey4) == offsetof(Probe, v6));
        std::memcpy(&p, &key, sizeof key);
        p.v6 = false;
        return p;
    }
    // Bytes 8..11 of ipv4_mapped as one word.
    static constexpr uint32_t mapped_word = std::bit_cast<uint32_t>(
        std::array<uint8_t, 4>{ipv4_mapped[8], ipv4_mapped[9], ipv4_mapped[10], ipv4_mapped[11]});
    static Probe probe_of(const FlowKey& key, uint32_t hash) noexcept {
        Probe p;
        std::memcpy(&p.ports, key.port, 4);
        p.v6 = !ipv4_key(key);
        if (p.v6) {
            p.a[0] = 0;
            p.a[1] = hash;
        } else {
            std::memcpy(&p.a[0], key.addr[0].data() + 12, 4);
            std::memcpy(&p.a[1], key.addr[1].data() + 12, 4);
        }
        return p;
    }
    // `key` is read for IPv6 only (the address entry's compare); `V4`: the probe is IPv4 (a
    // FlowKey4's), and there is no `key`.
    template <bool V4>
    bool matches(const FlowEntry& e, const Probe& p, const FlowKey* key) const noexcept {
        uint32_t ports;
        std::memcpy(&ports, e.port, 4);
        if (V4 || !p.v6)
            return ((e.a[0] ^ p.a[0]) | (e.a[1] ^ p.a[1]) | (ports ^ p.ports)) == 0 && !e.v6;
        if (!e.v6 || e.a[1] != p.a[1] || ports != p.ports) return false;
        const FlowEntry& x = entries_[e.a[0]];
        return std::memcmp(x.v6_addr, key->addr, sizeof(key->addr)) == 0;
    }
    FlowEntry* find(const FlowKey& key, uint32_t hash, Slot& at) noexcept {
        return find<false>(probe_of(key, hash), &key, hash, at);
    }
    FlowEntry* find(const FlowKey4& key, uint32_t hash, Slot& at) noexcept {
        return find<true>(probe_of(key), nullptr, hash, at);
    }
    template <bool V4>
    FlowEntry* find(const Probe& p, const FlowKey* key, uint32_t hash, Slot& at) noexcept {
        const uint16_t sig = sig_of(hash);
        if (FlowEntry* e = find_in<V4>(buckets_[main_bucket(hash)], p, key, sig, at)) return e;
        return find_in<V4>(buckets_[alt_bucket(hash)], p, key, sig, at);
    }
    template <bool V4>
    FlowEntry* find_in(Bucket& bk, const Probe& p, const FlowKey* key, uint16_t sig,
                       Slot& at) noexcept {
        for (unsigned m = match_mask(bk, sig); m != 0; m &= m - 1) {
            const unsigned s = static_cast<unsigned>(__builtin_ctz(m));
            FlowEntry& e = entries_[bk.idx[s]];
            if (matches<V4>(e, p, key)) {
                at = {&bk, s};
                return &e;
            }
        }
        return nullptr;
    }
    // A connection's hash: kept for IPv6, computed again from the 12 bytes for IPv4 (removal
    // and the cuckoo step need it, lookups do not).
    uint32_t hash_of(const FlowEntry& e) const noexcept {
        return e.v6 ? e.a[1] : flow_hash(key_of(e));
    }
    static bool is_conn(const FlowEntry& e) noexcept { return e.in_use && !e.addrs; }

    static uint16_t sig_of(uint32_t hash) noexcept { return static_cast<uint16_t>(hash >> 16) | 1; }
    // Bit s set when slot s of the bucket holds signature `sig` (one SSE2 compare of all 8).
    static unsigned match_mask(const Bucket& b, uint16_t sig) noexcept {
#if defined(__SSE2__)
        const __m128i sigs = _mm_load_si128(reinterpret_cast<const __m128i*>(b.sig));
        return lane_mask(_mm_cmpeq_epi16(sigs, _mm_set1_epi16(static_cast<short>(sig))));
#else
        unsigned m = 0;
        for (unsigned s = 0; s < bucket_slots; s++) m |= unsigned{b.sig[s] == sig} << s;
        return m;
#endif
    }
#if defined(__SSE2__)
    // Bit s set when 16-bit lane s of a compare result is all ones: the lanes packed to bytes
    // (signed saturation keeps 0 and -1), then one movemask.
    static unsigned lane_mask(__m128i cmp) noexcept {
        return static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(cmp, _mm_setzero_si128())));
    }
#endif
    // Bucket counts need not be powers of two: a 32-bit value maps onto [0, nbuckets) by a
    // multiply-shift (Lemire's fastrange) of a scrambled copy, since the signature already uses
    // the hash's top bits and the bucket must not be decided by the same ones.
    uint32_t reduce(uint32_t x) const noexcept {
        return static_cast<uint32_t>((uint64_t{x * 0x9e3779b1u} * nbuckets_) >> 32);
    }
    uint32_t main_bucket(uint32_t hash) const noexcept { return reduce(hash); }
    uint32_t alt_bucket(uint32_t hash) const noexcept {
        // A second, independent choice derived from the signature, as rte_hash does.
        return reduce(hash ^ (static_cast<uint32_t>(sig_of(hash)) * 0x5bd1e995u));
    }
    // Zeek's timers fire at exactly `since + timeout`, before a packet of that instant; packet
    // time earlier than `since` (tap skew between ports) never times out.
    static bool idle_past(uint64_t now_us, uint64_t since, uint64_t timeout) noexcept {
        return now_us >= since && now_us - since >= timeout;
    }
    bool timed_out(const FlowEntry& e, uint64_t now_us) const noexcept {
        TimeoutClass c = e.conn.timeout_class();
        // An attempt's clock starts at its first SYN (Zeek's attempt timer); every other state
        // times out on inactivity, since the last packet.
        uint64_t since = c == TimeoutClass::syn_sent ? e.conn.first_ts_us() : e.conn.last_ts_us();
        return idle_past(now_us, since, timeouts_.of(c));
    }
    EndCause timeout_cause(const FlowEntry& e) const noexcept {
        return e.conn.timeout_class() == TimeoutClass::closed ? EndCause::closed
                                                              : EndCause::idle_timeout;
    }
    template <typename Sink> void end(uint32_t idx, EndCause cause, Sink& sink) noexcept;
    // Both process()es (`Key`: FlowKey or FlowKey4): the lookup and the fast path. Not inlined
    // into the worker's burst loop: inlined there it cost 4.6M instructions more in 2.05M
    // packets (register pressure; callgrind), as process() did before it.
    template <typename Key, typename Sink>
    [[gnu::noinline]] FlowEntry* process_any(const Key& key, uint32_t hash, const TcpSegment& seg,
                                             Sink& sink) noexcept;
    // Everything but the fast path: timeouts seen on the flow's own packet, the full close
    // machine, reuse, insertion and eviction.
    template <typename Key, typename Sink>
    [[gnu::noinline]] FlowEntry* process_slow(const Key& key, uint32_t hash,
                                              const TcpSegment& seg, Sink& sink, FlowEntry* e,
                                              Slot at) noexcept;
    void remove(uint32_t idx) noexcept;               // finds its slot from its hash
    void remove(uint32_t idx, Bucket& bk, unsigned s) noexcept;  // in that slot
    uint32_t insert(const FlowKey& key, uint32_t hash, Slot& at) noexcept;
    // Entries: spare ones, taking one (the free list's head, else a fresh one), giving one back.
    uint32_t spare() const noexcept { return capacity_ - used_; }
    uint32_t take() noexcept {
        used_++;
        if (free_head_ == no_entry) return fresh_++;
        const uint32_t i = free_head_;
        free_head_ = entries_[i].a[0];
        return i;
    }
    void give(uint32_t i) noexcept {
        FlowEntry& e = entries_[i];
        e.in_use = 0;
        e.v6 = 0;
        e.addrs = 0;
        e.a[0] = free_head_;
        free_head_ = i;
        used_--;
    }
    bool make_room(uint32_t hash, Bucket*& target, int& slot) noexcept;
    static int free_slot(const Bucket& b) noexcept {  // the first empty slot, or -1
        for (unsigned s = 0; s < bucket_slots; s++)
            if (b.sig[s] == 0) return static_cast<int>(s);
        return -1;
    }
    template <typename Sink>
    uint32_t insert_or_evict(const FlowKey& key, uint32_t hash, Slot& at, Sink& sink) noexcept;
    // Best eviction candidate among the slots of the key's two buckets; no_entry if they are empty.
    uint32_t pick_victim(uint32_t hash) const noexcept;
    EvictVictim victim_class(const FlowEntry& e) const noexcept {
        if (e.conn.closing()) return EvictVictim::closing;
        return e.conn.attempt() ? EvictVictim::attempt : EvictVictim::established;
    }
    // Table full: the oldest attempt (by first SYN) the attempts ring holds, or failing that,
    // the oldest among `cand` and up to `attempt_probes` random entries (stopping at
    // `attempt_pick` attempts found); `cand` when none is found, when `cand` is an older
    // attempt, or when the key's buckets have no room for it once another entry is released.
    static constexpr unsigned attempt_probes = 32, attempt_pick = 4;
    // Ring entries looked at per eviction: those no longer attempts (answered, ended, reused)
    // are dropped on the way, each once, so the work is bounded and amortized per attempt.
    static constexpr unsigned attempt_ring_pops = 32;
    uint32_t oldest_attempt(uint32_t hash, uint32_t cand) noexcept;
    // Every connection that starts as an attempt (a SYN) enters the attempts ring, in packet
    // order; a full ring forgets its oldest (the random probes can still find those). Each entry
    // also drops up to two at the head that are no longer attempts (most SYNs are answered
    // within a round trip), so the ring's head stays at the oldest attempt still waiting and
    // an eviction finds it at once. Those heads were SYNs of a moment ago: their entries are
    // usually still in cache.
    bool is_attempt(uint32_t i) const noexcept {
        return is_conn(entries_[i]) && victim_class(entries_[i]) == EvictVictim::attempt;
    }
    void note_start(uint32_t idx) noexcept {
        if (victim_class(entries_[idx]) != EvictVictim::attempt) return;
        for (unsigned n = 0; n < 2 && attempt_head_ != attempt_tail_ &&
                             !is_attempt(attempts_[attempt_head_ & attempt_mask_]);
             n++)
            attempt_head_++;
        attempts_[attempt_tail_++ & attempt_mask_] = idx;
        if (attempt_tail_ - attempt_head_ > uint64_t{attempt_mask_} + 1)
            attempt_head_ = attempt_tail_ - (uint64_t{attempt_mask_} + 1);
    }
    // Frees one connection for `key` by the eviction policy; false when there is none.
    template <typename Sink> bool evict_for(uint32_t hash, bool v6, Sink& sink) noexcept;
    // The teardown ladder's hook: established flows (handle 0) pay this one branch on a segment
    // without FIN or RST.
    void note_wave(FlowEntry& e, const TcpSegment& seg) noexcept {
        if (__builtin_expect((e.waves | (seg.flags & (tcp_flag::fin | tcp_flag::rst))) == 0, 1))
            return;
        closing_wave(e, seg);
    }
    void closing_wave(FlowEntry& e, const TcpSegment& seg) noexcept;

    uint32_t capacity_;
    uint32_t nbuckets_;
    uint32_t active_ = 0;  // connections
    uint32_t used_ = 0;    // entries in use: connections and IPv6 address entries
    // Released entries, most recent first, linked through their own a[0] (a free entry has no
    // other use for it): no free-list array.
    uint32_t free_head_ = no_entry;
    uint32_t fresh_ = 0;     // entries [fresh_, capacity_) were never used
    uint32_t cursor_ = 0;    // eviction fallback's position in the entries
    uint32_t sweep_ = 0;     // expiry sweep position in the buckets
    bool sweep_all_ = true;  // this pass reads every entry (see max_due_ahead)
    uint64_t pass_start_us_ = 0;  // packet time when the sweep's pass began
    uint64_t paced_us_ = 0;       // sweep(): packet time of its last call
    uint64_t credit_ = 0;         // sweep(): buckets owed, times sweep_pass_us
    uint64_t probe_rng_ = 0x853c49e6748fea9bull;  // oldest_attempt's probe sequence (LCG)
    // The attempts ring (note_start): entry indices, [head, tail) of a power of two between
    // capacity/8 and capacity/4 (at most a byte per entry of capacity).
    uint32_t attempt_mask_ = 0;
    uint64_t attempt_head_ = 0, attempt_tail_ = 0;
    FlowTimeouts timeouts_;
    // The fast path's due, ahead of the packet: the established timeout rounded up to a tick,
    // at most max_due_ahead - 1 ticks (constructor).
    uint64_t fast_due_us_ = 0;
    FlowTableCounters counters_;
    // Zero-filled by the kernel on first touch (mmap): a table sized for millions of flows costs
    // nothing at start-up, and all-zero is the empty state of every array.
    ZeroedArray<Bucket> buckets_;
    ZeroedArray<FlowEntry> entries_;
    WavePool waves_;
    ZeroedArray<uint32_t> attempts_;
};

template <typename Sink>
void FlowTable::end(uint32_t idx, EndCause cause, Sink& sink) noexcept {
    FlowEntry& e = entries_[idx];
    ConnResult r;
    e.conn.finish(cause, r);
    r.key = key_of(e);
    counters_.ended[static_cast<size_t>(cause)]++;
    const bool has_waves = e.waves != 0 && e.waves != wave_none;
    ending_waves = {&e, has_waves ? &waves_.at(e.waves) : nullptr};
    sink(static_cast<const FlowEntry&>(e), static_cast<const ConnResult&>(r));
    ending_waves = {};
    if (has_waves) waves_.release(e.waves);
    e.waves = 0;
}

template <typename Sink>
bool FlowTable::evict_for(uint32_t hash, bool v6, Sink& sink) noexcept {
    // No room: either both buckets are full or the entries ran out. Evict the best candidate of
    // the two buckets; if they hold nothing (no entries, buckets empty), take the cursor's next
    // connection so the policy still frees one.
    EvictReason why = spare() < 1u + v6 ? EvictReason::table_full : EvictReason::bucket_full;
    uint32_t victim = pick_victim(hash);
    if (victim == no_entry) {
        for (uint32_t n = 0; n < fresh_ && victim == no_entry; n++) {
            uint32_t i = cursor_++;
            if (cursor_ >= fresh_) cursor_ = 0;
            if (is_conn(entries_[i])) victim = i;
        }
    }
    if (victim == no_entry) return false;  // capacity 0 cannot happen (ctor checks)
    if (why == EvictReason::table_full) victim = oldest_attempt(hash, victim);
    counters_.evictions[static_cast<size_t>(why)]++;
    counters_.evicted[static_cast<size_t>(victim_class(entries_[victim]))]++;
    end(victim, EndCause::evicted, sink);
    remove(victim);
    return true;
}

template <typename Sink>
uint32_t FlowTable::insert_or_evict(const FlowKey& key, uint32_t hash, Slot& at,
                                    Sink& sink) noexcept {
    uint32_t idx = insert(key, hash, at);
    if (idx != no_entry) return idx;
    // One eviction frees a slot and one or two entries; an IPv6 connection needs two entries,
    // so when the victim was an IPv4 one on a full table it takes a second.
    const bool v6 = !ipv4_key(key);
    for (unsigned n = 0; n < 2 && idx == no_entry; n++) {
        if (!evict_for(hash, v6, sink)) return no_entry;
        idx = insert(key, hash, at);
    }
    return idx;
}

template <typename Sink>
inline FlowEntry* FlowTable::process(const FlowKey& key, uint32_t hash, const TcpSegment& seg,
                                     Sink&& sink) noexcept {
    return process_any(key, hash, seg, sink);
}

template <typename Sink>
inline FlowEntry* FlowTable::process(const FlowKey4& key, uint32_t hash, const TcpSegment& seg,
                                     Sink&& sink) noexcept {
    return process_any(key, hash, seg, sink);
}

template <typename Key, typename Sink>
FlowEntry* FlowTable::process_any(const Key& key, uint32_t hash, const TcpSegment& seg,
                                  Sink& sink) noexcept {
    Slot at;
    FlowEntry* e = find(key, hash, at);
    // Most packets: an ACK or data of a connection established on both sides (e->fast, kept
    // equal to conn.fast_mask()), whose inactivity timeout has not passed. That is everything
    // the rest of process() would check, in a byte and a compare.
    if (__builtin_expect(e != nullptr, 1) && TcpConn::fast_eligible(seg, e->fast) &&
        !idle_past(seg.ts_us, e->conn.last_ts_us(), timeouts_.of(TimeoutClass::established))) {
        e->conn.fast_apply(seg);
        note_wave(*e, seg);
        // Still established, and last_ts >= seg.ts_us, so the timeout is no earlier than
        // seg.ts_us + the established timeout. A due computed from that never comes late, and
        // costs no look at the connection.
        at.b->due[at.s] = static_cast<uint16_t>((seg.ts_us + fast_due_us_) >> tick_shift);
        return e;
    }
    return process_slow(key, hash, seg, sink, e, at);
}

template <typename Key, typename Sink>
FlowEntry* FlowTable::process_slow(const Key& key, uint32_t hash, const TcpSegment& seg,
                                   Sink& sink, FlowEntry* e, Slot at) noexcept {
    if (e != nullptr) {
        uint32_t idx = static_cast<uint32_t>(e - entries_.get());
        if (timed_out(*e, seg.ts_us)) {
            // The flow's own next packet came after its timeout: the old connection ended
            // then, whether or not the sweep had reached it yet (so results do not depend on
            // how fast the sweep runs).
            end(idx, timeout_cause(*e), sink);
            counters_.created++;
            e->app = 0;
            e->app_tried = 0;
            e->conn.start(seg);
            note_start(idx);
        } else if (e->conn.update_slow(seg) == TcpConn::Verdict::reuse) {
            // (update() would have tried fast_update first: e->fast said it cannot apply.)
            end(idx, EndCause::reused, sink);
            counters_.created++;
            e->app = 0;
            e->app_tried = 0;
            e->conn.start(seg);
            note_start(idx);
        }
    } else {
        uint32_t idx;
        if constexpr (std::is_same_v<Key, FlowKey4>)
            idx = insert_or_evict(key.expand(), hash, at, sink);
        else
            idx = insert_or_evict(key, hash, at, sink);
        if (idx == no_entry) return nullptr;
        e = &entries_[idx];
        counters_.created++;
        e->conn.start(seg);
        note_start(idx);
    }
    e->fast = e->conn.fast_mask();
    note_wave(*e, seg);
    at.b->due[at.s] = due_tick(*e, seg.ts_us);
    return e;
}

template <typename Sink>
unsigned FlowTable::expire(uint64_t now_us, unsigned budget, Sink&& sink) noexcept {
    unsigned expired = 0;
    const uint16_t now_tick = tick_of(now_us);
    for (unsigned n = 0; n < budget && active_ > 0; n++) {
        Bucket& bk = buckets_[sweep_];
        const bool all = sweep_all_;
        if (++sweep_ >= nbuckets_) {
            sweep_ = 0;
            sweep_all_ = now_us - pass_start_us_ >= (max_due_ahead << tick_shift);
            pass_start_us_ = now_us;
        }
        // Pipelined as the packet path is (a bucket is a few calls of the worker's loop apart
        // from the next), so that an expiring entry is no DRAM miss on the worker's path:
        // prefetch the bucket 2 * sweep_lookahead on; the one sweep_lookahead on has arrived
        // since, so prefetch the entries that look due there (the tick may move on before the
        // sweep reaches them: a prefetch more or less, nothing else); halfway, those entries
        // have arrived: prefetch the teardown waves of the ones that have any.
        prefetch_line(&sweep_ahead(2 * sweep_lookahead));
        const Bucket& soon = sweep_ahead(sweep_lookahead);
        for (unsigned m = due_mask(soon, now_tick, all); m != 0; m &= m - 1)
            prefetch_entry(soon.idx[__builtin_ctz(m)]);
        const Bucket& sooner = sweep_ahead(sweep_lookahead / 2);
        for (unsigned m = due_mask(sooner, now_tick, all); m != 0; m &= m - 1)
            prefetch_waves(entries_[sooner.idx[__builtin_ctz(m)]].waves);
        for (unsigned m = due_mask(bk, now_tick, all); m != 0; m &= m - 1) {
            const unsigned s = static_cast<unsigned>(__builtin_ctz(m));
            const uint32_t i = bk.idx[s];
            FlowEntry& e = entries_[i];
            if (timed_out(e, now_us)) {
                end(i, timeout_cause(e), sink);
                remove(i, bk, s);
                expired++;
            } else {
                bk.due[s] = due_tick(e, now_us);  // clamped (a long timeout): look again later
            }
        }
    }
    return expired;
}

template <typename Sink>
void FlowTable::flush(uint64_t now_us, EndCause cause, Sink&& sink) noexcept {
    for (uint32_t i = 0; i < fresh_ && active_ > 0; i++) {
        FlowEntry& e = entries_[i];
        if (!is_conn(e)) continue;
        end(i, timed_out(e, now_us) ? timeout_cause(e) : cause, sink);
        remove(i);
    }
}

}  // namespace closetap
