/* SHA-256 compression with the ARMv8 SHA2 crypto extensions. */
#include "sha256_backends.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define GS_ARMV8 __attribute__((target("+crypto")))

/* Four rounds on (abcd, efgh) with message words `msg` and K[4*g..]. */
#define RNDS4(g, msg)                                                   \
    do {                                                                \
        uint32x4_t wk = vaddq_u32((msg), vld1q_u32(&gs_sha256_k[4 * (g)])); \
        uint32x4_t abcd_prev = abcd;                                    \
        abcd = vsha256hq_u32(abcd, efgh, wk);                           \
        efgh = vsha256h2q_u32(efgh, abcd_prev, wk);                     \
    } while (0)

#define SCHED(w0, w1, w2, w3) vsha256su1q_u32(vsha256su0q_u32((w0), (w1)), (w2), (w3))

GS_ARMV8 void gs_compress_armv8(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    uint32x4_t abcd = vld1q_u32(&state[0]);
    uint32x4_t efgh = vld1q_u32(&state[4]);
    for (; nblocks; nblocks--, blocks += 64) {
        const uint32x4_t abcd_in = abcd, efgh_in = efgh;
        uint32x4_t m0 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 0)));
        uint32x4_t m1 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 16)));
        uint32x4_t m2 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 32)));
        uint32x4_t m3 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 48)));
        RNDS4(0, m0);
        RNDS4(1, m1);
        RNDS4(2, m2);
        RNDS4(3, m3);
        m0 = SCHED(m0, m1, m2, m3); RNDS4(4, m0);
        m1 = SCHED(m1, m2, m3, m0); RNDS4(5, m1);
        m2 = SCHED(m2, m3, m0, m1); RNDS4(6, m2);
        m3 = SCHED(m3, m0, m1, m2); RNDS4(7, m3);
        m0 = SCHED(m0, m1, m2, m3); RNDS4(8, m0);
        m1 = SCHED(m1, m2, m3, m0); RNDS4(9, m1);
        m2 = SCHED(m2, m3, m0, m1); RNDS4(10, m2);
        m3 = SCHED(m3, m0, m1, m2); RNDS4(11, m3);
        m0 = SCHED(m0, m1, m2, m3); RNDS4(12, m0);
        m1 = SCHED(m1, m2, m3, m0); RNDS4(13, m1);
        m2 = SCHED(m2, m3, m0, m1); RNDS4(14, m2);
        m3 = SCHED(m3, m0, m1, m2); RNDS4(15, m3);
        abcd = vaddq_u32(abcd, abcd_in);
        efgh = vaddq_u32(efgh, efgh_in);
    }
    vst1q_u32(&state[0], abcd);
    vst1q_u32(&state[4], efgh);
}
#endif
