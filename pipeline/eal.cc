// rte_intr_instance_alloc and the handle accessors are still experimental in DPDK 22.11 (since
// 21.11 the only way to make an interrupt handle); park_interrupt_thread needs them.
#define ALLOW_EXPERIMENTAL_API 1

#include "pipeline/eal.hh"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_interrupts.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

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

namespace {

// The parking callback's handle, kept while the thread is parked (and reachable from here, so
// that LeakSanitizer does not count it as a leak at exit).
rte_intr_handle* parked_handle = nullptr;

// Parks EAL's interrupt thread in an interrupt callback of ours for the rest of the process, so
// that it does nothing while rte_eal_cleanup() tears EAL down. DPDK 22.11's rte_eal_cleanup()
// unregisters its alarm source (which wakes the interrupt thread to rebuild its list of
// sources from their handles) and then unmaps EAL memory, where some of those handles live,
// without waiting for the thread: a SEGV in rte_intr_fd_get at exit, seen under load in both
// closetap and closetap-gen with memif ports (docs/capacity.md). The callback is on an eventfd of our own
// (a source other than the alarm's, whose unregistration in rte_eal_cleanup() waits only for
// its own callback); while the thread waits in it, it reads nothing. Only rte_eal_cleanup() and
// the process's exit follow. Gives up (and goes on without parking) after 2 s.
void park_interrupt_thread() noexcept {
    static std::atomic<bool> parked{false};
    auto park = [](void*) {
        parked.store(true);
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    };
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return;
    rte_intr_handle* h = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
    if (h == nullptr || rte_intr_fd_set(h, fd) != 0 ||
        rte_intr_type_set(h, RTE_INTR_HANDLE_EXT) != 0 ||
        rte_intr_callback_register(h, park, nullptr) != 0) {
        rte_intr_instance_free(h);
        close(fd);
        return;
    }
    parked_handle = h;
    const uint64_t one = 1;
    if (write(fd, &one, sizeof one) == static_cast<ssize_t>(sizeof one))
        for (int i = 0; i < 2000 && !parked.load(); i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Not parked: leave the thread alone (an unregistration that meets the callback running
    // means it is parked after all; the handle and fd then stay, as they must).
    if (!parked.load() && rte_intr_callback_unregister(h, park, nullptr) >= 0) {
        rte_intr_instance_free(h);
        close(fd);
        parked_handle = nullptr;
    }
}

}  // namespace

void stop_eal() noexcept {
    // Without shared config EAL still makes a private runtime directory (telemetry socket);
    // it is this process's alone, so leave nothing behind in /var/run/dpdk.
    std::string dir = rte_eal_get_runtime_dir();
    park_interrupt_thread();
    rte_eal_cleanup();
    if (dir.find("/closetap-") != std::string::npos) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
}

}  // namespace closetap
