#include "pipeline/pcap_probe.hh"

#include <pcap/pcap.h>

#include <stdexcept>

namespace closetap {

PcapInfo probe_pcap(const std::string& path) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    if (p == nullptr) throw std::runtime_error("cannot read capture " + path + ": " + err);
    PcapInfo info;
    // pcap_datalink() gives the DLT_ value; LinkType numbers are the LINKTYPE_ values a file
    // stores. They differ for raw IP: LINKTYPE_RAW 101 reads back as DLT_RAW (12; 14 on OpenBSD).
    info.linktype = pcap_datalink(p);
    if (info.linktype == DLT_RAW) info.linktype = 101;
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        uint64_t ts = uint64_t(h->ts.tv_sec) * 1000000u + uint64_t(h->ts.tv_usec);
        if (info.packets == 0) info.first_ts_us = ts;
        info.last_ts_us = ts;
        info.packets++;
    }
    std::string perr = rc == PCAP_ERROR ? pcap_geterr(p) : "";
    pcap_close(p);
    // A truncated last record is common (a capture cut by a full disk or a killed tcpdump):
    // replay what is there, as tcpdump and Zeek do, rather than refuse the file.
    if (rc == PCAP_ERROR && info.packets == 0)
        throw std::runtime_error("cannot read capture " + path + ": " + perr);
    return info;
}

}  // namespace closetap
