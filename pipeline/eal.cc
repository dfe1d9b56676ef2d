#include "pipeline/eal.hh"

#include <rte_eal.h>
#include <rte_errno.h>

#include <filesystem>
#include <stdexcept>

namespace closetap {

void start_eal(const std::vector<std::string>& args) {
    // rte_eal_init permutes and keeps pointers into argv: give it storage that outlives it.
    static std::vector<std::string> storage;
    static std::vector<char*> argv;
    storage = args;
    argv.clear();
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(storage.size()), argv.data()) < 0)
        throw std::runtime_error(std::string("cannot start DPDK's EAL: ") + rte_strerror(rte_errno));
}

void stop_eal() noexcept {
    // Without shared config EAL still makes a private runtime directory (telemetry socket);
    // it is this process's alone, so leave nothing behind in /var/run/dpdk.
    std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    if (dir.find("/closetap-") != std::string::npos) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
}

}  // namespace closetap
