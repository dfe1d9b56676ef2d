// libFuzzer target for the capture input path: the bytes become a file (a memfd, named through
// /proc/self/fd), which closetap's own probe reads (pipeline/pcap_probe.cc: pcap_open_offline,
// every record counted), then every packet libpcap returns goes through the parser and a small
// flow table as the worker would take it (pipeline/worker.cc process_packets).
//
// Invariants: the probe either names the problem (std::runtime_error, main's one line) or
// returns; a capture it accepted opens again and yields exactly the packets it counted (the
// count is how an offline run knows it has seen the whole file); every packet gets exactly one
// class, every error one reason, every TCP packet lands in exactly one record or is counted as
// a checksum drop; the records obey the close machine's rules (fuzz_common.hh).
#include <pcap/pcap.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "flowtable/flow_key.hh"
#include "pipeline/parse.hh"
#include "pipeline/pcap_probe.hh"
#include "pipeline/segment.hh"
#include "tests/fuzz/fuzz_common.hh"

namespace {

using namespace closetap;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const closetap::fuzz::MemFile f("fuzz_pcap", data, size);
    if (!f.ok()) return 0;
    const std::string path = f.path();

    PcapInfo info;
    try {
        info = probe_pcap(path);
    } catch (const std::runtime_error& e) {
        // main prints "closetap: error: <what>" and exits 1: the message must be one line.
        FUZZ_CHECK(std::string(e.what()).find('\n') == std::string::npos);
        return 0;
    }
    if (!is_supported_link(info.linktype)) return 0;  // main refuses it with one line
    if (info.packets == 0) FUZZ_CHECK(info.first_ts_us == 0 && info.last_ts_us == 0);

    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    FUZZ_CHECK(p != nullptr);  // the probe just opened it
    FUZZ_CHECK(pcap_datalink(p) == (info.linktype == 101 ? DLT_RAW : info.linktype));

    // Odd-sized inputs are also parsed with checksum verification (--verify-checksums).
    const ParseOptions opt{.link = static_cast<LinkType>(info.linktype),
                           .verify_checksums = (size & 1) != 0};
    FlowTable table(64, FlowTimeouts{});
    closetap::fuzz::CheckingSink sink;
    WorkerStats& st = sink.stats;
    uint64_t packets = 0, accepted = 0, now_us = 0;
    pcap_pkthdr* h = nullptr;
    const u_char* bytes = nullptr;
    while (pcap_next_ex(p, &h, &bytes) == 1) {
        packets++;
        st.rx_packets[0].add();
        st.rx_bytes[0].add(h->len);
        // As the worker takes it from net_pcap's timestamp (pipeline/worker.cc parse_one).
        const uint64_t ts = packet_time(uint64_t(h->ts.tv_sec) * 1000000u + uint64_t(h->ts.tv_usec));
        if (ts > now_us) now_us = ts;
        ParsedPacket pp;
        ParseError perr = ParseError::count_;
        // net_pcap hands the worker caplen bytes (pcap_ethdev.c); so does libpcap here.
        const PacketClass c = parse_packet(bytes, h->caplen, opt, pp, perr);
        FUZZ_CHECK(c < PacketClass::count_);
        FUZZ_CHECK(c != PacketClass::error || perr < ParseError::count_);
        if (!count_parsed(st, c, perr, pp)) continue;
        FUZZ_CHECK(pp.payload_caplen == 0 ||
                   pp.payload_offset + size_t{pp.payload_caplen} <= h->caplen);
        TcpSegment s{};
        FlowKey key;
        make_segment(pp, ts, key, s);
        const uint32_t hash = flow_hash(key);
        sink.phase = closetap::fuzz::Phase::process;
        if (table.process(key, hash, s, sink) == nullptr) {
            st.flow_alloc_failed.add();
            continue;
        }
        accepted++;
        if (packets % 32 == 0) {  // a burst of the worker's default size ends
            sink.phase = closetap::fuzz::Phase::expire;
            // The worker's paced sweep, then an unpaced one: an input spans far less packet time
            // than a pass, and results must not depend on the sweep's schedule anyway.
            table.sweep(now_us, sink);
            table.expire(now_us, FlowTable::expire_budget, sink);
        }
    }
    pcap_close(p);
    sink.phase = closetap::fuzz::Phase::flush;
    table.flush(now_us, EndCause::end_of_input, sink);

    // The probe's count is what the replay waits for: it must be what a reader gets.
    FUZZ_CHECK(packets == info.packets);
    // The accounting identity: received = sum over classes; errors = sum over reasons; TCP =
    // tracked + checksum drops + no entry.
    uint64_t classes = 0, errors = 0;
    for (auto& v : st.packet_class) classes += v.get();
    for (auto& v : st.parse_errors) errors += v.get();
    FUZZ_CHECK(classes == st.rx_packets[0].get());
    FUZZ_CHECK(errors == st.packet_class[static_cast<size_t>(PacketClass::error)].get());
    FUZZ_CHECK(st.packet_class[static_cast<size_t>(PacketClass::tcp)].get() ==
               accepted + st.checksum_bad.get() + st.flow_alloc_failed.get());
    FUZZ_CHECK(st.flow_alloc_failed.get() == 0);
    sink.check_totals(table, accepted);
    return 0;
}
