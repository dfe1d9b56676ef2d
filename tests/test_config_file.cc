// pipeline/config_file: the YAML configuration file translated into EAL and closetap arguments.
#include "pipeline/config_file.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace closetap;
using Args = std::vector<std::string>;

namespace {

std::string example_path() {
    // The unit tests get CLOSETAP_SIGNATURES = <source>/deploy/signatures.yaml (tests/meson.build).
    if (const char* s = std::getenv("CLOSETAP_SIGNATURES"))
        return (std::filesystem::path(s).parent_path() / "closetap.yaml").string();
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "deploy" / "closetap.yaml").string();
}

// Writes TEXT to a file named closetap.yaml in a private directory; returns its path.
std::string write_config(const std::string& text) {
    static int n = 0;
    auto dir = std::filesystem::temp_directory_path() /
               ("closetap-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(dir);
    auto p = dir / "closetap.yaml";
    std::ofstream(p) << text;
    return p.string();
}

ConfigArgs translate(const std::string& text) { return config_to_args(write_config(text)); }

// The one-line error for TEXT, with the directory stripped ("closetap.yaml:3: key: ...").
std::string error_of(const std::string& text) {
    std::string path = write_config(text);
    try {
        config_to_args(path);
    } catch (const std::runtime_error& e) {
        std::string m = e.what();
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
        std::string dir = std::filesystem::path(path).parent_path().string() + "/";
        EXPECT_EQ(m.compare(0, dir.size(), dir), 0) << m;
        return m.substr(dir.size());
    }
    ADD_FAILURE() << "no error for:\n" << text;
    return "";
}

}  // namespace

TEST(ConfigFile, ExampleTranslatesToTheFlagsItDocuments) {
    ConfigArgs a = config_to_args(example_path());
    EXPECT_EQ(a.eal, (Args{"-a", "0000:3b:00.0", "-a", "0000:3b:00.1", "--lcores", "0@0,1@1,2@2,3@3",
                           "--huge-dir", "/dev/hugepages", "--socket-mem", "2048",
                           "--file-prefix=closetap-tap1"}));
    EXPECT_EQ(a.app, (Args{"--workers", "2", "--flows", "4000000",
                           "--timeout-syn", "5", "--timeout-established", "300",
                           "--timeout-half-closed", "300", "--timeout-closed", "5",
                           "--signatures", "/etc/closetap/signatures.yaml",
                           "--conn-log", "/var/log/closetap/conns.jsonl",
                           "--events", "/var/log/closetap/events.jsonl",
                           "--events-rate", "100", "--events-burst", "1000",
                           "--metrics-file", "/var/log/closetap/final.prom",
                           "--metrics", "0.0.0.0:9490",
                           "--burst", "32", "--rx-desc", "4096", "--mbufs", "16383",
                           "--quiet"}));
}

TEST(ConfigFile, EmptyFileIsValidAndGivesNoArguments) {
    for (const char* text : {"", "\n", "# only a comment\n", "---\n", "~\n"}) {
        ConfigArgs a = translate(text);
        EXPECT_TRUE(a.eal.empty()) << text;
        EXPECT_TRUE(a.app.empty()) << text;
    }
    // Empty sections and null values are the same as leaving the key out.
    ConfigArgs a = translate("timeouts:\nports: []\noutputs: {conn_log: ~}\n");
    EXPECT_TRUE(a.eal.empty());
    EXPECT_TRUE(a.app.empty());
}

TEST(ConfigFile, PortsOfEveryKind) {
    ConfigArgs a = translate(
        "ports:\n"
        "  - af_packet: eth1\n"
        "  - vdev: \"net_memif0,role=client\"\n"
        "  - af_packet: eth2\n"
        "  - pci: \"0000:3b:00.0,rxq_pkt_split=0\"\n"
        "use_ports: [net_af_packet0]\n");
    EXPECT_EQ(a.eal, (Args{"--vdev", "net_af_packet0,iface=eth1", "--vdev", "net_memif0,role=client", "--vdev",
                           "net_af_packet1,iface=eth2", "-a", "0000:3b:00.0,rxq_pkt_split=0"}));
    EXPECT_EQ(a.app, (Args{"--port", "net_af_packet0"}));

    ConfigArgs p = translate("ports: [{pcap: a.pcap}, {pcap: b.pcap}]\n");
    EXPECT_TRUE(p.eal.empty());
    EXPECT_EQ(p.app, (Args{"--pcap", "a.pcap", "--pcap", "b.pcap"}));
}

TEST(ConfigFile, CoresBecomeLcoresInClosetapsOrder) {
    // lcore 0 is main; without dispatch the workers follow; CPUs as written, in any order.
    ConfigArgs a = translate("cores: {main: 8, workers: [3, 2, 10]}\n");
    EXPECT_EQ(a.eal, (Args{"--lcores", "0@8,1@3,2@2,3@10"}));
    EXPECT_EQ(a.app, (Args{"--workers", "3"}));
}

TEST(ConfigFile, MemoryWithoutHugepagesAndOtherForms) {
    EXPECT_EQ(translate("memory: {hugepages: false, size_mb: 256}\n").eal, (Args{"--no-huge", "-m", "256"}));
    EXPECT_EQ(translate("memory: {socket_mem_mb: [1024, 0]}\n").eal, (Args{"--socket-mem", "1024,0"}));
    EXPECT_EQ(translate("memory: {huge_dir: /mnt/huge1G}\n").eal, (Args{"--huge-dir", "/mnt/huge1G"}));
    EXPECT_TRUE(translate("memory: {}\n").eal.empty());
}

TEST(ConfigFile, DurationsBooleansAndSignatureForms) {
    ConfigArgs a = translate(
        "timeouts: {syn_sent: 250ms, established: 1h, half_closed: \"2m\", closed: 0.5}\n"
        "duration: 0\nverify_checksums: yes\nquiet: false\n"
        "signatures: {file: none, scan_bytes: 512}\n");
    EXPECT_EQ(a.app, (Args{"--timeout-syn", "0.25", "--timeout-established", "3600", "--timeout-half-closed",
                           "120", "--timeout-closed", "0.5", "--duration", "0", "--verify-checksums",
                           "--signatures", "none", "--app-scan-bytes", "512"}));
    EXPECT_EQ(translate("signatures: false\n").app, (Args{"--signatures", "none"}));
    EXPECT_EQ(translate("metrics: {listen: 9490}\n").app, (Args{"--metrics", "9490"}));
    EXPECT_EQ(translate("eal: {extra_args: [\"--log-level=pmd:debug\"]}\n").eal, (Args{"--log-level=pmd:debug"}));
}

TEST(ConfigFile, EveryErrorIsOneLineWithFileLineAndKey) {
    struct Case {
        const char* text;
        const char* want;
    };
    const Case cases[] = {
        // unknown keys, at every level
        {"flows: 5\n", "closetap.yaml:1: flows: unknown key (known here: ports, use_ports, cores, memory, eal, "
                       "flow_table, timeouts, signatures, outputs, metrics, rx, verify_checksums, quiet, duration)"},
        {"timeouts:\n  syn_sent: 5\n  syn: 5\n",
         "closetap.yaml:3: timeouts.syn: unknown key (known here: syn_sent, established, half_closed, closed)"},
        {"ports:\n  - pci: \"0000:3b:00.0\"\n  - usb: x\n",
         "closetap.yaml:3: ports[1].usb: unknown key (known here: pci, vdev, af_packet, pcap)"},
        {"ports:\n  - {pci: \"0000:3b:00.0\", af_packet: eth1}\n", "closetap.yaml:2: ports[0]: expected one of "
         "{pci: ADDRESS}, {vdev: DEVARGS}, {af_packet: IFACE}, {pcap: FILE}, got a mapping"},
        {"ports:\n  - pci:\n", "closetap.yaml:2: ports[0]: expected one of {pci: ADDRESS}, {vdev: DEVARGS}, "
         "{af_packet: IFACE}, {pcap: FILE}"},
        {"timeouts:\n  closed: 1\n  closed: 2\n", "closetap.yaml:3: timeouts.closed: given twice"},
        // wrong types
        {"\n\ntimeouts:\n  syn_sent: soon\n",
         "closetap.yaml:4: timeouts.syn_sent: expected a number of seconds (above 0) or a duration like 30s, 5m, 1h, "
         "got 'soon'"},
        {"timeouts: {established: \"300\"}\n",
         "closetap.yaml:1: timeouts.established: expected a number of seconds (above 0) or a duration like 30s, 5m, "
         "1h, got '300'"},
        {"timeouts: 5\n", "closetap.yaml:1: timeouts: expected a mapping of keys (key: value), got '5'"},
        {"flow_table: {capacity_per_worker: lots}\n",
         "closetap.yaml:1: flow_table.capacity_per_worker: expected a number of flows (a whole number >= 1), got 'lots'"},
        {"flow_table: {capacity_per_worker: 1.5}\n",
         "closetap.yaml:1: flow_table.capacity_per_worker: expected a number of flows (a whole number >= 1), got '1.5'"},
        {"outputs: {conn_log: [a, b]}\n",
         "closetap.yaml:1: outputs.conn_log: expected a file path ('-' for stdout), got a list"},
        {"quiet: maybe\n", "closetap.yaml:1: quiet: expected true or false, got 'maybe'"},
        {"cores: {main: 0, workers: 2}\n",
         "closetap.yaml:1: cores.workers: expected a list of CPU numbers, e.g. [2, 3], got '2'"},
        {"ports: eth1\n",
         "closetap.yaml:1: ports: expected a list of ports, e.g. [{pci: \"0000:3b:00.0\"}, {af_packet: eth1}]"},
        {"ports:\n  - pci: eth1\n", "closetap.yaml:2: ports[0].pci: expected a PCI address like 0000:3b:00.0, got 'eth1'"},
        {"- a\n- b\n", "closetap.yaml:1: top level: expected a mapping of keys (key: value), got a list"},
        // out of range, as far as YAML can tell
        {"flow_table:\n  capacity_per_worker: -5\n",
         "closetap.yaml:2: flow_table.capacity_per_worker: expected a number of flows (a whole number >= 1), got '-5'"},
        {"timeouts: {closed: -1}\n",
         "closetap.yaml:1: timeouts.closed: expected a number of seconds (above 0) or a duration like 30s, 5m, 1h, "
         "got '-1'"},
        {"timeouts: {closed: 0}\n",
         "closetap.yaml:1: timeouts.closed: expected a number of seconds (above 0) or a duration like 30s, 5m, 1h, "
         "got '0'"},
        {"outputs: {events_rate: 0}\n",
         "closetap.yaml:1: outputs.events_rate: expected events per second (a number above 0), got '0'"},
        {"cores:\n  main: 0\n  workers: [2, 2]\n", "closetap.yaml:3: cores.workers[1]: CPU 2 is listed twice"},
        {"cores:\n  main: 2\n  workers: [2, 3]\n",
         "closetap.yaml:3: cores.workers: CPU 2 is the main CPU; workers need their own"},
        {"cores: {workers: [2]}\n", "closetap.yaml:1: cores: give main (the control CPU) with workers"},
        {"cores:\n  main: 0\n  dispatch: 2\n  workers: [2, 3]\n",
         "closetap.yaml:3: cores.dispatch: CPU 2 is already main or a worker"},
        // combinations EAL or closetap would refuse later, less clearly
        {"memory:\n  hugepages: false\n  socket_mem_mb: 1024\n",
         "closetap.yaml:3: memory.socket_mem_mb: needs hugepages (hugepages is false)"},
        {"memory: {socket_mem_mb: 1024, size_mb: 512}\n",
         "closetap.yaml:1: memory.size_mb: give either size_mb or socket_mem_mb, not both (EAL refuses -m with "
         "--socket-mem)"},
        {"ports:\n  - pcap: a.pcap\n  - af_packet: eth1\n",
         "closetap.yaml:2: ports: pcap files (an offline replay) cannot be mixed with live ports"},
        {"signatures: true\n",
         "closetap.yaml:1: signatures: expected a file, 'none' or false (true is the default: leave the key out)"},
        // not YAML at all
        {"timeouts: {syn_sent: 5\n", "closetap.yaml:2: not valid YAML: end of map flow not found"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(c.text), c.want) << c.text;
}

TEST(ConfigFile, UnreadableFileNamesIt) {
    try {
        config_to_args("/nonexistent/closetap.yaml");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "/nonexistent/closetap.yaml: cannot read the configuration file: No such file or directory");
    }
}

TEST(ConfigFile, ExplainPointsAtTheLineOfTheValueCli11Refused) {
    std::string path = write_config("rx:\n  burst: 32\n\nflow_table:\n  capacity_per_worker: 999999999\n");
    ConfigArgs a = config_to_args(path);
    std::string m = a.explain("--flows: Value 999999999 not in range 2 to 268435456");
    EXPECT_EQ(m, path + ":5: flow_table.capacity_per_worker: --flows: Value 999999999 not in range 2 to 268435456");
    EXPECT_EQ(a.explain("something else"), path + ": something else");

    ConfigArgs p = translate("ports:\n  - pcap: one.pcap\n  - pcap: two.pcap\n");
    std::string e = p.explain("--pcap: File does not exist: two.pcap");
    EXPECT_NE(e.find(".yaml:3: ports[1].pcap: --pcap: File does not exist"), std::string::npos) << e;
}

TEST(ConfigFile, TakeConfigPath) {
    Args a{"--flows", "5", "--config", "/etc/closetap/closetap.yaml", "-q"};
    EXPECT_EQ(take_config_path(a), "/etc/closetap/closetap.yaml");
    EXPECT_EQ(a, (Args{"--flows", "5", "-q"}));
    Args b{"--config=x.yaml"};
    EXPECT_EQ(take_config_path(b), "x.yaml");
    EXPECT_TRUE(b.empty());
    Args c{"--flows", "5"};
    EXPECT_EQ(take_config_path(c), "");
    Args d{"--config"};
    EXPECT_THROW(take_config_path(d), std::runtime_error);
    Args e{"--config", "a", "--config=b"};
    EXPECT_THROW(take_config_path(e), std::runtime_error);
}

TEST(ConfigFile, CommandLineOverridesTheFile) {
    Args cfg{"--flows", "4000000", "--pcap", "a.pcap", "--pcap", "b.pcap", "--quiet", "--metrics", "0.0.0.0:9490",
             "--conn-log", "-"};
    // A scalar given on the command line replaces the file's (CLI11 refuses a scalar twice); a
    // repeatable option's list is replaced as a whole; -q is --quiet; --opt=value counts.
    EXPECT_EQ(merge_app_args(cfg, {"--flows=10", "--pcap", "c.pcap", "-q", "--metrics", "9491"}),
              (Args{"--conn-log", "-", "--flows=10", "--pcap", "c.pcap", "-q", "--metrics", "9491"}));
    EXPECT_EQ(merge_app_args(cfg, {}), cfg);
    // A value that looks like an option name is not one ("-" for stdout).
    EXPECT_EQ(merge_app_args({"--conn-log", "-"}, {"--events", "-"}), (Args{"--conn-log", "-", "--events", "-"}));

    Args eal{"-a", "0000:3b:00.0", "-l", "0,2,3", "--main-lcore", "0", "--huge-dir", "/dev/hugepages",
             "--socket-mem", "2048", "--file-prefix=tap1", "--log-level=pmd:debug"};
    EXPECT_EQ(merge_eal_args(eal, {}), eal);
    // -l0-1 replaces the lcores group, --vdev the devices group, --no-huge the memory group.
    EXPECT_EQ(merge_eal_args(eal, {"-l0-1", "--vdev", "net_af_packet0,iface=veth0", "--no-huge"}),
              (Args{"--file-prefix=tap1", "--log-level=pmd:debug", "-l0-1", "--vdev", "net_af_packet0,iface=veth0",
                    "--no-huge"}));
    EXPECT_EQ(merge_eal_args(eal, {"--in-memory"}),
              (Args{"-a", "0000:3b:00.0", "-l", "0,2,3", "--main-lcore", "0", "--huge-dir", "/dev/hugepages",
                    "--socket-mem", "2048", "--log-level=pmd:debug", "--in-memory"}));
}
