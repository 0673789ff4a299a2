#ifndef RAGD_CCPU_SHIM_H
#define RAGD_CCPU_SHIM_H
// CPU features from CPUID and XGETBV, which Swift cannot read itself (/proc/cpuinfo is not an option: the
// systemd unit's ProcSubset=pid hides it), and a prefetch hint, which it cannot express.
#if defined(__x86_64__)
#include <cpuid.h>
#endif

/// 1 when the CPU has every AVX-512 extension a `-target-cpu znver4` build may use (F, DQ, CD, BW, VL, IFMA, VBMI,
/// VBMI2, VNNI, BITALG, VPOPCNTDQ, BF16, GFNI, VAES, VPCLMULQDQ) and the OS saves the ZMM and opmask state.
static inline int ragd_cpu_has_zen4_extensions(void) {
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return 0;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned int ebx = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 28) | (1u << 30) | (1u << 31);
    const unsigned int ecx = (1u << 1) | (1u << 6) | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 14);
    if ((b & ebx) != ebx || (c & ecx) != ecx) return 0;
    if (a < 1) return 0;  // no subleaf 1
    __cpuid_count(7, 1, a, b, c, d);
    return (a & (1u << 5)) ? 1 : 0;  // AVX512_BF16
#else
    return 0;
#endif
}

/// Asks for the cache line holding `address` ahead of a load (changes no result; never faults).
static inline void ragd_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}
#endif
