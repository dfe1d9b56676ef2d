#include "pipeline/port.hh"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_thash.h>
#include <rte_dev.h>
#include <rte_devargs.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <array>

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

namespace {

// The symmetric Toeplitz key (Woo and Park, "Scalable TCP Session Monitoring with Symmetric
// Receive-side Scaling", 2012): the 16-bit pattern 0x6D5A repeated gives hash(a,b) = hash(b,a),
// so both directions of a connection reach one queue (as Suricata's util-dpdk-rss.c).
std::array<uint8_t, 52> symmetric_rss_key() {
    std::array<uint8_t, 52> k{};
    for (size_t i = 0; i < k.size(); i += 2) {
        k[i] = 0x6d;
        k[i + 1] = 0x5a;
    }
    return k;
}

// Proves the key symmetric on sample tuples with DPDK's software Toeplitz.
bool key_is_symmetric(const uint8_t* key) {
    const uint32_t samples[][3] = {{0x0a000001, 0x0a000002, (40000u << 16) | 80},
                                   {0xc0a80101, 0x08080808, (51234u << 16) | 443}};
    for (const auto& t : samples) {
        uint32_t fwd[3] = {t[0], t[1], t[2]};
        uint32_t rev[3] = {t[1], t[0], (t[2] << 16) | (t[2] >> 16)};
        if (rte_softrss(fwd, 3, key) != rte_softrss(rev, 3, key)) return false;
    }
    return true;
}

bool can_spread(const rte_eth_dev_info& info, const std::string& driver, unsigned nq) {
    if (nq <= 1 || info.max_rx_queues < nq) return false;
    // af_packet's queues are a PACKET_FANOUT_HASH group: the kernel's flow hash is symmetric.
    if (driver == "net_af_packet") return true;
    return (info.flow_type_rss_offloads & (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP)) != 0 &&
           (info.hash_key_size == 40 || info.hash_key_size == 52);
}

}  // namespace

std::vector<PortInfo> setup_ports(const Options& opt, unsigned rx_queues, unsigned mbufs,
                                  std::vector<std::string>& notes) {
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

    std::vector<rte_eth_dev_info> infos(ports.size());
    bool spread = rx_queues > 1;
    for (size_t i = 0; i < ports.size(); i++) {
        int rc = rte_eth_dev_info_get(ports[i].port_id, &infos[i]);
        if (rc != 0) fail(ports[i].name, "cannot read device info", rc);
        ports[i].driver = infos[i].driver_name ? infos[i].driver_name : "?";
        if (ports[i].driver == "net_af_packet" && infos[i].device != nullptr) {
            const rte_devargs* da = rte_dev_devargs(infos[i].device);
            const std::string args = da != nullptr && da->args != nullptr ? da->args : "";
            const auto at = args.find("iface=");
            if (at != std::string::npos) {
                const auto from = at + 6;
                ports[i].kernel_iface = args.substr(from, args.find(',', from) - from);
            }
        }
        if (rx_queues > 1 && !can_spread(infos[i], ports[i].driver, rx_queues)) {
            spread = false;
            notes.push_back("port " + ports[i].name + " (" + ports[i].driver + ") cannot spread flows "
                            "symmetrically over " + std::to_string(rx_queues) +
                            " queues: a dispatch lcore hashes and hands packets to the workers");
        }
    }
    const auto key = symmetric_rss_key();
    for (size_t pi = 0; pi < ports.size(); pi++) {
        PortInfo& p = ports[pi];
        const rte_eth_dev_info& info = infos[pi];
        int rc;
        p.rx_queues = static_cast<uint16_t>(spread ? rx_queues : 1);
        // net_pcap writes the capture time in microseconds since the epoch into the rx
        // timestamp dynfield without advertising the offload (DPDK 22.11). Other drivers' rx
        // timestamps count NIC clock ticks, not wall time: those ports use the TSC instead.
        p.ts_from_mbuf = p.driver == "net_pcap";

        std::string pool_name = "mbufs_" + std::to_string(p.port_id);
        p.pool = rte_pktmbuf_pool_create(pool_name.c_str(), mbufs, 256, 0,
                                         RTE_MBUF_DEFAULT_BUF_SIZE, rte_eth_dev_socket_id(p.port_id));
        if (p.pool == nullptr) fail(p.name, "cannot create the mbuf pool", rte_errno);

        rte_eth_conf conf{};
        if (p.rx_queues > 1 && p.driver != "net_af_packet") {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(key.data());
            conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
            conf.rx_adv_conf.rss_conf.rss_hf =
                info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);
            if (!key_is_symmetric(key.data()))
                throw std::runtime_error("port " + p.name + ": the RSS key is not symmetric");
            p.symmetric_rss = true;
            notes.push_back("port " + p.name + ": symmetric RSS (0x6D5A key, checked with rte_softrss) "
                            "over " + std::to_string(p.rx_queues) + " queues");
        } else if (p.rx_queues > 1) {
            notes.push_back("port " + p.name + ": " + std::to_string(p.rx_queues) +
                            " queues through the kernel's symmetric flow-hash fanout");
        }
        // A tx queue only because some drivers refuse a port without one.
        rc = rte_eth_dev_configure(p.port_id, p.rx_queues, 1, &conf);
        if (rc != 0) fail(p.name, "cannot configure", rc);
        uint16_t nb_rx = static_cast<uint16_t>(opt.rx_desc), nb_tx = 64;
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &nb_rx, &nb_tx);
        if (rc != 0) fail(p.name, "cannot size the rings", rc);
        for (uint16_t q = 0; q < p.rx_queues; q++) {
            rc = rte_eth_rx_queue_setup(p.port_id, q, nb_rx, rte_eth_dev_socket_id(p.port_id), nullptr,
                                        p.pool);
            if (rc != 0) fail(p.name, "cannot set up rx queue " + std::to_string(q), rc);
        }
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

int port_link_up(const PortInfo& p) noexcept {
    if (!p.kernel_iface.empty()) {
        const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, p.kernel_iface.c_str(), IFNAMSIZ - 1);
        const int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
        close(fd);
        if (rc != 0) return -1;
        return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING) ? 1 : 0;
    }
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(p.port_id, &link) != 0) return -1;
    return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

}  // namespace closetap
