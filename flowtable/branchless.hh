// Selecting a value without a branch, for the hot path's coin tosses: on a tap a packet's
// direction, and whether it carries payload or advances the ACK, are as good as random, and a
// branch on one mispredicts on about half the packets (~15-20 cycles each). GCC 12 turns a plain
// `c ? a : b` into such a branch where it sees fit (callgrind --branch-sim showed it for the
// key's endpoint order and the ACK update), and an AND with an all-ones-or-zero mask costs four
// instructions where a conditional move is one: on x86-64 this is a CMOV.
#pragma once

#include <concepts>
#include <type_traits>

namespace closetap {

template <std::unsigned_integral T> constexpr T select_if(bool c, T a, T b) noexcept {
#if defined(__x86_64__)
    if constexpr (sizeof(T) >= 2) {
        if (!std::is_constant_evaluated()) {
            asm("testb %b1, %b1\n\tcmovnz %2, %0" : "+r"(b) : "r"(c), "rm"(a) : "cc");
            return b;
        }
    }
#endif
    const T mask = static_cast<T>(T{0} - static_cast<T>(c));
    return static_cast<T>(b ^ ((a ^ b) & mask));
}

// a && b as one value, for one branch on a rare conjunction of two coin tosses (a segment that
// neither advances the sequence nor is empty: a retransmission). GCC 12 compiles `a && b`, and
// `a & b` on bools too, into a branch on each, and the first then mispredicts on half the
// packets; the empty asm makes the AND a value it has to compute.
constexpr bool both(bool a, bool b) noexcept {
    unsigned v = static_cast<unsigned>(a) & static_cast<unsigned>(b);
#if defined(__GNUC__)
    if (!std::is_constant_evaluated()) asm("" : "+r"(v));
#endif
    return v != 0;
}

}  // namespace closetap
