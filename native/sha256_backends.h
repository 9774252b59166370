/* SHA-256 compression back ends: portable C, x86-64 SHA-NI, ARMv8 SHA2.
 *
 * Every back end has the same contract: fold `nblocks` consecutive 64-byte
 * blocks into `state` (eight host-order words, FIPS 180-4 layout).
 */
#ifndef GEOSTRATUM_SHA256_BACKENDS_H
#define GEOSTRATUM_SHA256_BACKENDS_H

#include <stddef.h>
#include <stdint.h>

typedef void (*gs_compress_fn)(uint32_t state[8], const uint8_t *blocks, size_t nblocks);

typedef enum {
    GS_BACKEND_PORTABLE = 0,
    GS_BACKEND_SHANI = 1,
    GS_BACKEND_ARMV8 = 2,
    GS_BACKEND_COUNT = 3
} gs_backend_id;

extern const uint32_t gs_sha256_k[64];
extern const uint32_t gs_sha256_iv[8];

void gs_compress_portable(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
#if defined(__x86_64__)
void gs_compress_shani(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
#endif
#if defined(__aarch64__)
void gs_compress_armv8(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
#endif

/* 1 when this CPU can run the back end, else 0. */
int gs_backend_supported(gs_backend_id id);
/* Name used by the environment variable and the Python API. */
const char *gs_backend_name(gs_backend_id id);
gs_compress_fn gs_backend_fn(gs_backend_id id);

#endif
