/* Portable SHA-256 compression (FIPS 180-4) and run-time back-end detection. */
#include "sha256_backends.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)
#endif
#endif

const uint32_t gs_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

const uint32_t gs_sha256_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void gs_compress_portable(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    uint32_t w[64];
    for (; nblocks; nblocks--, blocks += 64) {
        for (int i = 0; i < 16; i++) w[i] = load_be32(blocks + 4 * i);
        for (int i = 16; i < 64; i++) w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) + w[i - 16];
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + BSIG1(e) + CH(e, f, g) + gs_sha256_k[i] + w[i];
            uint32_t t2 = BSIG0(a) + MAJ(a, b, c);
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

int gs_backend_supported(gs_backend_id id) {
    switch (id) {
    case GS_BACKEND_PORTABLE:
        return 1;
    case GS_BACKEND_SHANI:
#if defined(__x86_64__)
    {
        unsigned int eax, ebx, ecx, edx;
        if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
        int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
        if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
        return ssse3 && sse41 && ((ebx >> 29) & 1);
    }
#else
        return 0;
#endif
    case GS_BACKEND_ARMV8:
#if defined(__aarch64__) && defined(__linux__)
        return (getauxval(AT_HWCAP) & HWCAP_SHA2) ? 1 : 0;
#else
        return 0;
#endif
    default:
        return 0;
    }
}

const char *gs_backend_name(gs_backend_id id) {
    switch (id) {
    case GS_BACKEND_PORTABLE: return "portable";
    case GS_BACKEND_SHANI: return "sha-ni";
    case GS_BACKEND_ARMV8: return "armv8";
    default: return "unknown";
    }
}

gs_compress_fn gs_backend_fn(gs_backend_id id) {
    if (!gs_backend_supported(id)) return 0;
    switch (id) {
    case GS_BACKEND_PORTABLE: return gs_compress_portable;
#if defined(__x86_64__)
    case GS_BACKEND_SHANI: return gs_compress_shani;
#endif
#if defined(__aarch64__)
    case GS_BACKEND_ARMV8: return gs_compress_armv8;
#endif
    default: return 0;
    }
}
