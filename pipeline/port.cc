#include "pipeline/port.hh"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <algorithm>
#include <stdexcept>

#include "pipeline/options.hh"

namespace closetap {
namespace {

[[noreturn]] void fail(const std::string& port, const std::string& what, int err) {
    throw std::runtime_error("port " + port + ": " + what + ": " + rte_strerror(err < 0 ? -err : err));
}

}  // namespace

RxTimestamp register_rx_timestamp() {
    RxTimestamp t;
    int rc = rte_mbuf_dyn_rx_timestamp_register(&t.offset, &t.flag);
    if (rc != 0) t.offset = -1;
    return t;
}

std::vector<PortInfo> setup_ports(const Options& opt) {
    std::vector<PortInfo> ports;
    uint16_t pid;
    RTE_ETH_FOREACH_DEV(pid) {
        char name[RTE_ETH_NAME_MAX_LEN];
        if (rte_eth_dev_get_name_by_port(pid, name) != 0) continue;
        if (!opt.ports.empty() &&
            std::find(opt.ports.begin(), opt.ports.end(), std::string(name)) == opt.ports.end())
            continue;
        PortInfo p;
        p.port_id = pid;
        p.name = name;
        ports.push_back(p);
    }
    for (const auto& want : opt.ports)
        if (std::none_of(ports.begin(), ports.end(), [&](auto& p) { return p.name == want; }))
            throw std::runtime_error("--port " + want + ": no such DPDK port (give its --vdev or -a before --)");
    if (ports.empty())
        throw std::runtime_error(
            "no DPDK ports: give --pcap FILE, or EAL arguments with a device before -- "
            "(for example --vdev net_af_packet0,iface=eth1 --)");
    if (ports.size() > max_ports)
        throw std::runtime_error("at most " + std::to_string(max_ports) + " ports are supported");

    for (auto& p : ports) {
        rte_eth_dev_info info;
        int rc = rte_eth_dev_info_get(p.port_id, &info);
        if (rc != 0) fail(p.name, "cannot read device info", rc);
        p.driver = info.driver_name ? info.driver_name : "?";
        // net_pcap writes the capture time in microseconds since the epoch into the rx
        // timestamp dynfield without advertising the offload (DPDK 22.11). Other drivers' rx
        // timestamps count NIC clock ticks, not wall time: those ports use the TSC instead.
        p.ts_from_mbuf = p.driver == "net_pcap";

        std::string pool_name = "mbufs_" + std::to_string(p.port_id);
        p.pool = rte_pktmbuf_pool_create(pool_name.c_str(), opt.mbufs, 256, 0,
                                         RTE_MBUF_DEFAULT_BUF_SIZE, rte_eth_dev_socket_id(p.port_id));
        if (p.pool == nullptr) fail(p.name, "cannot create the mbuf pool", rte_errno);

        rte_eth_conf conf{};
        // One rx queue; a tx queue only because some drivers refuse a port without one.
        rc = rte_eth_dev_configure(p.port_id, 1, 1, &conf);
        if (rc != 0) fail(p.name, "cannot configure", rc);
        uint16_t nb_rx = static_cast<uint16_t>(opt.rx_desc), nb_tx = 64;
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &nb_rx, &nb_tx);
        if (rc != 0) fail(p.name, "cannot size the rings", rc);
        rc = rte_eth_rx_queue_setup(p.port_id, 0, nb_rx, rte_eth_dev_socket_id(p.port_id), nullptr,
                                    p.pool);
        if (rc != 0) fail(p.name, "cannot set up the rx queue", rc);
        rc = rte_eth_tx_queue_setup(p.port_id, 0, nb_tx, rte_eth_dev_socket_id(p.port_id), nullptr);
        if (rc != 0) fail(p.name, "cannot set up the tx queue", rc);
        rc = rte_eth_dev_start(p.port_id);
        if (rc != 0) fail(p.name, "cannot start", rc);
        // A tap port sees frames addressed to other hosts; drivers without the notion say so.
        rc = rte_eth_promiscuous_enable(p.port_id);
        (void)rc;
    }
    return ports;
}

void stop_ports(const std::vector<PortInfo>& ports) noexcept {
    for (const auto& p : ports) {
        rte_eth_dev_stop(p.port_id);
        rte_eth_dev_close(p.port_id);
    }
}

PortDrops read_port_drops(const PortInfo& p) noexcept {
    PortDrops d;
    rte_eth_stats s{};
    if (rte_eth_stats_get(p.port_id, &s) == 0) {
        d.imissed = s.imissed;
        d.rx_nombuf = s.rx_nombuf;
        d.ierrors = s.ierrors;
    }
    return d;
}

}  // namespace closetap
