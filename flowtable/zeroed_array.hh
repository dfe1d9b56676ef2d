// A fixed-size array of implicit-lifetime objects in anonymous memory: the kernel maps zero
// pages lazily, so allocation is O(1) whatever the size, and pages are only paid for when a flow
// first lands on them. Start-up only; never resized.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace closetap {

template <typename T> class ZeroedArray {
    static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>,
                  "all-zero memory must be a valid, empty T");

public:
    ZeroedArray() = default;
    explicit ZeroedArray(size_t n) : n_(n) {
        if (n == 0) return;
        void* p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        p_ = static_cast<T*>(p);
        // A flow table is touched at random: with 4 KiB pages nearly every lookup also misses
        // the TLB. Ask for transparent huge pages where the kernel offers them (THP "madvise"
        // mode, Debian's default); harmless where it does not.
        if (n * sizeof(T) >= (2u << 20)) ::madvise(p, n * sizeof(T), MADV_HUGEPAGE);
    }
    ZeroedArray(ZeroedArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    ZeroedArray& operator=(ZeroedArray&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~ZeroedArray() { release(); }

    T& operator[](size_t i) noexcept { return p_[i]; }
    const T& operator[](size_t i) const noexcept { return p_[i]; }
    T* get() noexcept { return p_; }
    const T* get() const noexcept { return p_; }
    size_t size() const noexcept { return n_; }

private:
    void release() noexcept {
        if (p_ != nullptr) ::munmap(p_, n_ * sizeof(T));
        p_ = nullptr;
        n_ = 0;
    }
    T* p_ = nullptr;
    size_t n_ = 0;
};

}  // namespace closetap
