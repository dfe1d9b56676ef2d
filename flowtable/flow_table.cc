#include "flowtable/flow_table.hh"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace closetap {

FlowTable::FlowTable(uint32_t capacity, const FlowTimeouts& timeouts, uint32_t wave_pool)
    : capacity_(capacity), timeouts_(timeouts) {
    if (capacity < 2 || capacity > (1u << 28))
        throw std::invalid_argument("flow table capacity must be between 2 and 268435456 (an IPv6 connection takes two entries), not " +
                                    std::to_string(capacity));
    nbuckets_ = buckets_for(capacity);
    fast_due_us_ = std::min<uint64_t>(timeouts.of(TimeoutClass::established),
                                      (max_due_ahead - 1) << tick_shift) +
                   (uint64_t{1} << tick_shift) - 1;
    buckets_ = ZeroedArray<Bucket>(nbuckets_);  // sig 0 = empty slot
    entries_ = ZeroedArray<FlowEntry>(capacity);
    // At most one closing record per flow; handles are slot + 1 and wave_none is reserved.
    if (wave_pool == wave_pool_auto) wave_pool = std::min(capacity, wave_pool_default_max);
    waves_ = WavePool(std::min(wave_pool, capacity));
    attempt_mask_ = attempt_slots_for(capacity) - 1;
    attempts_ = ZeroedArray<uint32_t>(attempt_mask_ + 1);
}

uint32_t FlowTable::buckets_for(uint32_t capacity) noexcept {
    // Two candidate buckets of 8 slots, and a cuckoo step (make_room) when both are full: a
    // full table at 6 keys per bucket (4/3 slots per entry, 10.7 B of bucket per flow) then
    // never needs a bucket_full eviction (tests/test_flow_table.cc fills tables to capacity
    // and churns them). Without the cuckoo step two choices alone needed 8/3 slots per entry
    // (21.3 B) to keep those rare.
    return static_cast<uint32_t>(std::max<uint64_t>(2, (uint64_t{capacity} + 5) / 6));
}

void FlowTable::closing_wave(FlowEntry& e, const TcpSegment& seg) noexcept {
    if (e.waves == wave_none) return;  // the pool was empty at this flow's first FIN/RST
    if (e.waves == 0) {
        // The first FIN or RST: the close begins.
        e.waves = waves_.alloc(seg.ts_us);
        if (e.waves == wave_none) {
            counters_.waves_pool_empty++;
            return;
        }
    }
    record_wave(waves_.at(e.waves), seg);
}

bool FlowTable::make_room(uint32_t hash, Bucket*& target, int& slot) noexcept {
    // Both of the key's buckets are full: move one of their keys to its own other bucket, one
    // cuckoo step (rte_hash does the same on a full primary). The entry stays where it is; only
    // its slot (signature, index, due) moves, so nothing that holds the entry's index notices.
    const uint32_t mine[2] = {main_bucket(hash), alt_bucket(hash)};
    for (uint32_t bi : mine) {
        Bucket& b = buckets_[bi];
        for (unsigned s = 0; s < bucket_slots; s++) {
            const uint32_t h = hash_of(entries_[b.idx[s]]);
            const uint32_t other = main_bucket(h) == bi ? alt_bucket(h) : main_bucket(h);
            if (other == bi) continue;
            Bucket& ob = buckets_[other];
            const int os = free_slot(ob);
            if (os < 0) continue;
            ob.sig[os] = b.sig[s];
            ob.idx[os] = b.idx[s];
            ob.due[os] = b.due[s];
            b.sig[s] = 0;
            counters_.displaced++;
            target = &b;
            slot = static_cast<int>(s);
            return true;
        }
    }
    return false;
}

FlowKey FlowTable::key_of(const FlowEntry& e) const noexcept {
    if (!e.v6) return FlowKey4{{e.a[0], e.a[1]}, {e.port[0], e.port[1]}}.expand();
    FlowKey k;
    std::memcpy(k.port, e.port, sizeof(k.port));
    std::memcpy(k.addr, entries_[e.a[0]].v6_addr, sizeof(k.addr));
    return k;
}

uint32_t FlowTable::insert(const FlowKey& key, uint32_t hash, Slot& at) noexcept {
    const bool v6 = !ipv4_key(key);
    if (spare() < 1u + v6) return no_entry;
    // The main bucket while it is not crowded, as rte_hash fills its primary bucket first: a
    // lookup then finds nearly every key in the one bucket the burst path prefetched. A
    // crowded main bucket (main_max or more keys) hands the key to the emptier of the two; when
    // both are full, make_room moves another key to its other bucket.
    auto load = [](const Bucket& b) {
        unsigned n = 0;
        for (unsigned s = 0; s < bucket_slots; s++) n += b.sig[s] != 0;
        return n;
    };
    constexpr unsigned main_max = 6;
    Bucket* target = &buckets_[main_bucket(hash)];
    const unsigned main_load = load(*target);
    if (main_load >= main_max && load(buckets_[alt_bucket(hash)]) < main_load)
        target = &buckets_[alt_bucket(hash)];
    int slot = free_slot(*target);
    if (slot < 0 && !make_room(hash, target, slot)) return no_entry;
    // Reuse released entries first; hand out fresh ones in order, so a small working set stays
    // in few pages and flush() only walks entries that were ever used.
    const uint32_t idx = take();
    FlowEntry& e = entries_[idx];
    std::memcpy(e.port, key.port, sizeof(e.port));
    if (v6) {
        const uint32_t ai = take();
        FlowEntry& x = entries_[ai];
        x.in_use = 1;
        x.addrs = 1;
        std::memcpy(x.v6_addr, key.addr, sizeof(key.addr));
        e.a[0] = ai;
        e.a[1] = hash;
    } else {
        std::memcpy(&e.a[0], key.addr[0].data() + 12, 4);
        std::memcpy(&e.a[1], key.addr[1].data() + 12, 4);
    }
    e.app = 0;
    e.app_tried = 0;
    e.waves = 0;
    e.in_use = 1;
    e.v6 = v6;
    e.addrs = 0;
    e.fast = 0;
    target->sig[slot] = sig_of(hash);
    target->idx[slot] = idx;
    at = {target, static_cast<unsigned>(slot)};  // the caller sets its due once it started
    active_++;
    return idx;
}

void FlowTable::remove(uint32_t idx) noexcept {
    const uint32_t hash = hash_of(entries_[idx]);
    const uint32_t bs[2] = {main_bucket(hash), alt_bucket(hash)};
    for (uint32_t b : bs) {
        Bucket& bk = buckets_[b];
        for (unsigned s = 0; s < bucket_slots; s++) {
            if (bk.idx[s] == idx && bk.sig[s] != 0) {
                remove(idx, bk, s);
                return;
            }
        }
    }
}

void FlowTable::remove(uint32_t idx, Bucket& bk, unsigned s) noexcept {
    bk.sig[s] = 0;
    bk.idx[s] = 0;
    FlowEntry& e = entries_[idx];
    if (e.v6) give(e.a[0]);
    give(idx);
    active_--;
}

uint32_t FlowTable::pick_victim(uint32_t hash) const noexcept {
    const uint32_t bs[2] = {main_bucket(hash), alt_bucket(hash)};
    uint32_t best = no_entry;
    unsigned best_class = count_of<EvictVictim>;
    uint64_t best_ts = UINT64_MAX;
    for (uint32_t b : bs) {
        const Bucket& bk = buckets_[b];
        for (unsigned s = 0; s < bucket_slots; s++) {
            if (bk.sig[s] == 0) continue;
            const FlowEntry& e = entries_[bk.idx[s]];
            // Attempts first: a SYN flood's half-open entries must not push out the established
            // flows. Flows in the middle of a close are the ones closetap exists to see: keep
            // them while any other candidate remains. Within a class, the longest idle.
            const unsigned cls = static_cast<unsigned>(victim_class(e));
            const uint64_t ts = e.conn.last_ts_us();
            if (cls < best_class || (cls == best_class && ts < best_ts)) {
                best = bk.idx[s];
                best_class = cls;
                best_ts = ts;
            }
        }
    }
    return best;
}

uint32_t FlowTable::oldest_attempt(uint32_t hash, uint32_t cand) noexcept {
    // A victim outside the key's buckets frees an entry but no slot: one bucket needs room.
    const uint32_t bs[2] = {main_bucket(hash), alt_bucket(hash)};
    bool room = false;
    for (uint32_t b : bs)
        for (unsigned s = 0; s < bucket_slots; s++) room |= buckets_[b].sig[s] == 0;
    if (!room) {
        // Both full: the cuckoo step insert() would take, taken now, makes room for the key
        // (a slot stays free), so the victim can be an attempt anywhere.
        Bucket* target = nullptr;
        int slot = -1;
        room = make_room(hash, target, slot);
    }
    if (!room) return cand;
    uint32_t best = no_entry;
    uint64_t best_ts = UINT64_MAX;
    if (victim_class(entries_[cand]) == EvictVictim::attempt) {
        best = cand;
        best_ts = entries_[cand].conn.first_ts_us();
    }
    // The ring's oldest attempt still in the table, unless `cand` is older (then the ring keeps
    // it for the next eviction).
    for (unsigned n = 0; n < attempt_ring_pops && attempt_head_ != attempt_tail_; n++) {
        const uint32_t i = attempts_[attempt_head_ & attempt_mask_];
        if (is_attempt(i)) {
            if (entries_[i].conn.first_ts_us() >= best_ts) return best;
            attempt_head_++;
            return i;
        }
        attempt_head_++;
    }
    unsigned found = 0;
    for (unsigned n = 0; n < attempt_probes && found < attempt_pick; n++) {
        probe_rng_ = probe_rng_ * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t i = static_cast<uint32_t>(((probe_rng_ >> 32) * fresh_) >> 32);
        const FlowEntry& e = entries_[i];
        if (!is_conn(e) || victim_class(e) != EvictVictim::attempt) continue;
        found++;
        if (e.conn.first_ts_us() < best_ts) {
            best = i;
            best_ts = e.conn.first_ts_us();
        }
    }
    return best != no_entry ? best : cand;
}

std::string FlowTable::verify() const {
    std::vector<uint8_t> refs(fresh_, 0);  // slots naming a connection; connections naming addresses
    uint32_t used = 0;
    for (uint32_t b = 0; b < nbuckets_; b++) {
        const Bucket& bk = buckets_[b];
        for (unsigned s = 0; s < bucket_slots; s++) {
            if (bk.sig[s] == 0) continue;
            const uint32_t i = bk.idx[s];
            const std::string at = "bucket " + std::to_string(b) + " slot " + std::to_string(s);
            if (i >= fresh_) return at + ": entry " + std::to_string(i) + " was never handed out";
            const FlowEntry& e = entries_[i];
            if (!is_conn(e)) return at + ": entry " + std::to_string(i) + " is not a connection";
            if (e.v6) {
                const uint32_t ai = e.a[0];
                if (ai >= fresh_ || !entries_[ai].in_use || !entries_[ai].addrs)
                    return at + ": IPv6 connection without its address entry";
                if (++refs[ai] > 1) return "address entry " + std::to_string(ai) + " named twice";
            }
            const FlowKey k = key_of(e);
            if (e.v6 == ipv4_key(k)) return at + ": the key's family is not the entry's";
            const uint32_t h = flow_hash(k);
            if (hash_of(e) != h) return at + ": the entry's hash is not its key's";
            if (main_bucket(h) != b && alt_bucket(h) != b)
                return at + ": neither of the entry's buckets";
            if (bk.sig[s] != sig_of(h)) return at + ": signature is not the entry's";
            if (++refs[i] > 1) return "entry " + std::to_string(i) + " has two slots";
            used++;
        }
    }
    if (used != active_)
        return std::to_string(used) + " slots in use, active() says " + std::to_string(active_);
    uint32_t in_use = 0;
    for (uint32_t i = 0; i < fresh_; i++) {
        const FlowEntry& e = entries_[i];
        in_use += e.in_use;
        if (e.in_use != (refs[i] != 0))
            return "entry " + std::to_string(i) + ": in use but not named, or the reverse";
    }
    if (in_use != used_)
        return std::to_string(in_use) + " entries in use, entries_used() says " +
               std::to_string(used_);
    uint32_t free_n = 0;
    for (uint32_t i = free_head_; i != no_entry; i = entries_[i].a[0]) {
        if (i >= fresh_ || entries_[i].in_use)
            return "free list: entry " + std::to_string(i) + " is in use or out of range";
        if (++free_n > fresh_) return "free list: a cycle";
    }
    if (in_use + free_n != fresh_)
        return std::to_string(in_use) + " in use + " + std::to_string(free_n) + " free != " +
               std::to_string(fresh_) + " handed out";
    return {};
}

}  // namespace closetap
