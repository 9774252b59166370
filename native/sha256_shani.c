/* SHA-256 compression with the x86-64 SHA extensions (SHA-NI).
 *
 * The SHA instructions keep the state as two registers, ABEF and CDGH; the
 * state is converted once per call so multi-block calls pay it only once.
 */
#include "sha256_backends.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define GS_SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* Four rounds with message words `msg` and round constants K[4*g..4*g+3]. */
#define RNDS4(g, msg)                                                             \
    do {                                                                          \
        __m128i wk = _mm_add_epi32((msg), _mm_loadu_si128((const __m128i *)&gs_sha256_k[4 * (g)])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);                             \
        wk = _mm_shuffle_epi32(wk, 0x0E);                                         \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);                             \
    } while (0)

/* Next four schedule words from the previous sixteen (w0 oldest). */
#define SCHED(w0, w1, w2, w3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((w0), (w1)), _mm_alignr_epi8((w3), (w2), 4)), (w3))

GS_SHANI void gs_compress_shani(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);

    for (; nblocks; nblocks--, blocks += 64) {
        const __m128i abef_in = abef, cdgh_in = cdgh;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 48)), bswap);
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
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }

    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}
#endif
