// Reads a capture once with libpcap before DPDK replays it: proves it is a capture (a clear
// error otherwise), and learns its link type and packet count. The count is how an offline run
// knows it has seen the whole file: net_pcap just stops returning packets at the end.
#pragma once

#include <cstdint>
#include <string>

namespace closetap {

struct PcapInfo {
    int linktype = 1;
    uint64_t packets = 0;
    uint64_t first_ts_us = 0;
    uint64_t last_ts_us = 0;
};

// Throws std::runtime_error naming the file and the problem.
PcapInfo probe_pcap(const std::string& path);

}  // namespace closetap
