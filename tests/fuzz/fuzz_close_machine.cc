// libFuzzer target for the TCP close machine inside the flow table: random segment sequences
// on up to 8 flows sharing one small FlowTable (so eviction, timeouts seen on a packet, the
// expiry sweep, reuse and the final flush all run), driven through exactly the calls the worker
// makes (pipeline/worker.cc: make_flow_key, flow_hash, FlowTable::process with the record sink,
// expire after each burst, flush at end of input). Input format: close_machine_input.hh.
//
// Invariants (trap on violation): every record obeys TcpConn::finish's rules and SPEC's
// vocabulary (fuzz_common.hh); one record per connection the table created; every segment is
// either in exactly one record or counted as flow_alloc_failed; the exporter's series add up.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "flowtable/flow_key.hh"
#include "flowtable/flow_table.hh"
#include "tests/fuzz/close_machine_input.hh"
#include "tests/fuzz/fuzz_common.hh"

namespace {

using namespace closetap;
namespace cm = closetap::fuzz::cm;


struct Endpoint {
    std::array<uint8_t, 16> addr;
    uint16_t port;
};

std::array<uint8_t, 16> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}
std::array<uint8_t, 16> v6(uint8_t last) {
    return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
}

// The flows' endpoints: client first. h3 picks variants that matter to orientation (likely
// server ports on either side, both, neither) and to the key (a self-connection, where both
// directions are the key's dir 0; two flows that are one 4-tuple seen from both ends).
void make_flows(uint8_t h3, std::array<std::array<Endpoint, 2>, cm::max_flows>& f) {
    const uint16_t server_ports[4] = {80, 443, 22, 40001};
    for (unsigned i = 0; i < cm::max_flows; i++) {
        const uint16_t sp = server_ports[(h3 >> (i & 3)) & 3];
        f[i][0] = {v4(10, 0, 0, static_cast<uint8_t>(1 + i)), static_cast<uint16_t>(40000 + i)};
        f[i][1] = {v4(10, 0, 1, 1), sp};
    }
    f[2][0].port = 8080;       // both sides likely server ports
    f[3][0] = {v6(1), 50000};  // IPv6
    f[3][1] = {v6(2), 443};
    f[6][0] = f[0][1];  // flow 0 seen from its server's end
    f[6][1] = f[0][0];
    f[7][0] = {v4(10, 0, 0, 7), 7777};  // a self-connection: one endpoint, both directions
    f[7][1] = f[7][0];
}

uint32_t lcg(uint32_t& s) {
    s = s * 1664525u + 1013904223u;
    return s;
}

bool seq_after(uint32_t a, uint32_t b) {
    return static_cast<int32_t>(a - b) > 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    uint8_t h[cm::header_bytes] = {};
    for (size_t i = 0; i < cm::header_bytes && i < size; i++) h[i] = data[i];
    const size_t nrec = size > cm::header_bytes ? (size - cm::header_bytes) / cm::record_bytes : 0;
    const uint8_t* rec = data + cm::header_bytes;

    FlowTimeouts to;
    switch ((h[0] >> 4) & 3) {
        case 0:
            break;
        case 1:
            for (auto& v : to.us) v /= 1000;
            break;
        case 2:
            for (size_t c = 0; c < to.us.size(); c++)
                to.us[c] = 1000ull << (2 * ((h[2] >> (2 * c)) & 3));
            break;
        case 3:
            for (auto& v : to.us) v = 1;
            break;
    }
    // (At least 2: an IPv6 connection takes two entries.)
    FlowTable table(std::max(2u, 1u + (h[0] & 15u)), to, (h[0] & 0x40) ? 0u : FlowTable::wave_pool_auto);

    std::array<std::array<Endpoint, 2>, cm::max_flows> flows;
    make_flows(h[3], flows);
    // ISN and the highest sequence sent so far, per flow and endpoint.
    uint32_t isn[cm::max_flows][2], nxt[cm::max_flows][2];
    uint32_t s = h[1];
    for (unsigned i = 0; i < cm::max_flows; i++)
        for (unsigned d = 0; d < 2; d++) {
            uint32_t v = lcg(s);
            // Some ISNs sit just below the 2^32 wrap or at 0.
            if ((v & 7) == 0) v = 0xffffff00u | (v >> 24);
            if ((v & 7) == 1) v = 0;
            isn[i][d] = nxt[i][d] = v;
        }

    closetap::fuzz::CheckingSink sink;
    for (const auto& f : flows) {
        FlowKey k;
        make_flow_key(f[0].addr, f[0].port, f[1].addr, f[1].port, k);
        sink.keys.push_back(k);
    }
    uint64_t now = (h[0] & 0x80) ? 0 : 1'700'000'000'000'000ull;
    uint64_t accepted = 0, alloc_failed = 0;
    for (size_t k = 0; k < nrec; k++) {
        const uint8_t* r = rec + k * cm::record_bytes;
        const unsigned fi = r[0] & 7u;
        const unsigned d = (r[0] & cm::r0_dir) ? 1 : 0;
        const Endpoint& src = flows[fi][d];
        const Endpoint& dst = flows[fi][1 - d];
        const uint8_t flags = r[1];
        const int8_t sd = static_cast<int8_t>(r[2]);
        const int8_t ad = static_cast<int8_t>(r[3]);
        uint32_t seq = 0;
        switch ((r[0] >> cm::r0_seq_mode_shift) & 3) {
            case 0:
                seq = nxt[fi][d] + static_cast<uint32_t>(sd);
                break;
            case 1:
                seq = isn[fi][d] + static_cast<uint32_t>(sd);
                break;
            case 2:
                seq = nxt[fi][d] + static_cast<uint32_t>(int32_t{sd} * 65536);
                break;
            case 3:
                seq = nxt[fi][d] + (static_cast<uint32_t>(sd) << 24);
                break;
        }
        const uint32_t ack = (r[0] & cm::r0_ack_mode)
                                 ? isn[fi][1 - d] + static_cast<uint32_t>(int32_t{ad} * 256)
                                 : nxt[fi][1 - d] + static_cast<uint32_t>(ad);
        const uint32_t len = cm::payload_len(r[4]);
        const uint64_t step = cm::time_step_us(r[5]);
        uint64_t ts;
        if (r[7] & 1) {
            ts = now >= step ? now - step : 0;  // this packet was delayed: it is older
        } else {
            now += step;
            ts = now;
        }

        // As pipeline/worker.cc process_packets builds it from the parser's output.
        TcpSegment seg{};
        FlowKey key;
        seg.dir = make_flow_key(src.addr, src.port, dst.addr, dst.port, key);
        seg.ts_us = ts;
        seg.seq = seq;
        seg.ack = ack;
        seg.payload_len = len;
        seg.window = static_cast<uint16_t>(r[6] << 8);
        seg.flags = flags;
        seg.src_port = src.port;
        seg.dst_port = dst.port;
        seg.wscale = (flags & tcp_flag::syn) && (r[6] & 15) != 15 ? (r[6] & 15) : 0xff;
        const uint32_t hash = flow_hash(key);
        if (closetap::fuzz::tracing())
            std::fprintf(stderr,
                         "seg %zu: flow %u %s dir %u ts %llu flags %02x seq %u (rel %d) ack %u "
                         "(rel %d) len %u win %u\n",
                         k, fi, d ? "s->c" : "c->s", unsigned(seg.dir),
                         static_cast<unsigned long long>(ts), flags, seq,
                         static_cast<int>(seq - isn[fi][d]), ack,
                         static_cast<int>(ack - isn[fi][1 - d]), len, unsigned(seg.window));
        table.prefetch(hash);
        sink.phase = closetap::fuzz::Phase::process;
        FlowEntry* e = table.process(key, hash, seg, sink);
        if (e == nullptr)
            alloc_failed++;
        else
            accepted++;

        const uint32_t end =
            seq + len + ((flags & tcp_flag::syn) ? 1 : 0) + ((flags & tcp_flag::fin) ? 1 : 0);
        if (seq_after(end, nxt[fi][d])) nxt[fi][d] = end;

        if (r[0] & cm::r0_burst_end) {
            sink.phase = closetap::fuzz::Phase::expire;
            // The worker's paced sweep, then an unpaced one: an input spans far less packet time
            // than a pass, and results must not depend on the sweep's schedule anyway.
            table.sweep(now, sink);
            table.expire(now, FlowTable::expire_budget, sink);
        }
    }
    // The table's own invariants (slots, entries, free list), after eviction, the cuckoo step
    // and the sweep had their way with it.
    FUZZ_CHECK(table.verify().empty());
    sink.phase = closetap::fuzz::Phase::flush;
    table.flush(now, EndCause::end_of_input, sink);
    FUZZ_CHECK(table.verify().empty());

    // A table with room always finds an entry (eviction frees one): nothing is lost.
    FUZZ_CHECK(alloc_failed == 0);
    FUZZ_CHECK(accepted + alloc_failed == nrec);
    sink.check_totals(table, accepted);
    return 0;
}
