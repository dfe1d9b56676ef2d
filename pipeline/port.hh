// Port set-up for any ethdev (net_pcap, af_packet, memif, ring, PCI NICs): one mbuf pool and
// rx queue per port, promiscuous (a tap sees other hosts' traffic), capture timestamps where the
// driver gives them in wall-clock microseconds (net_pcap).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exporters/metrics.hh"

struct rte_mempool;

namespace closetap {

struct Options;

struct PortInfo {
    uint16_t port_id;
    std::string name;    // ethdev name: the `port` label
    std::string driver;
    uint16_t rx_queues = 1;
    bool symmetric_rss = false;  // RSS programmed with the symmetric key (checked in software)
    bool ts_from_mbuf = false;  // packet time from the rx timestamp dynfield (net_pcap)
    std::string kernel_iface;   // net_af_packet: the interface it reads (iface= devarg)
    rte_mempool* pool = nullptr;
};

struct RxTimestamp {
    int offset = -1;      // dynfield offset, -1 when not registered
    uint64_t flag = 0;    // ol_flags bit set on mbufs that carry it
};

// Registers the rx timestamp dynfield; call once before configuring ports.
RxTimestamp register_rx_timestamp();

// Configures and starts the selected ports (all when `opt.ports` is empty). With `rx_queues`
// > 1, every port that can receive on that many queues and spread flows over them symmetrically
// (RSS with the symmetric 0x6D5A key, or the kernel's flow-hash fanout of net_af_packet) gets
// them; if any port cannot, all get one queue and the caller dispatches in software. `notes`
// says what was found. Throws std::runtime_error naming the port and DPDK's reason.
std::vector<PortInfo> setup_ports(const Options& opt, unsigned rx_queues, unsigned mbufs,
                                  std::vector<std::string>& notes);
void stop_ports(const std::vector<PortInfo>& ports) noexcept;

PortDrops read_port_drops(const PortInfo& p) noexcept;

// 1 when the port's link is up, 0 when down, -1 when unknown. From rte_eth_link_get_nowait,
// except for net_af_packet, whose driver reports the link up whatever the interface does (DPDK
// 22.11): there, the kernel interface's IFF_RUNNING (carrier), by ioctl on a socket of the
// namespace closetap runs in. Control thread only; no shell, no allocation.
int port_link_up(const PortInfo& p) noexcept;

}  // namespace closetap
