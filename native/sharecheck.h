/* One whole Stratum share check in C: coinbase -> merkle root -> header -> SHA-256d -> verdicts. */
#ifndef GEOSTRATUM_SHARECHECK_H
#define GEOSTRATUM_SHARECHECK_H

#include <stddef.h>
#include <stdint.h>

#include "sha256_backends.h"

#define GS_MAX_EXTRANONCE 32     /* extranonce1 + extranonce2 bytes */
#define GS_MAX_BRANCHES 32       /* 2^32 transactions: far beyond any block */
#define GS_MAX_COINBASE 100000   /* consensus caps the whole block; this caps our buffers */

typedef struct gs_job gs_job;

/* Select the back end every later call uses. Returns 0, or -1 if this CPU cannot run it. */
int gs_select_backend(gs_backend_id id);
gs_backend_id gs_active_backend(void);
/* The best back end this CPU supports. */
gs_backend_id gs_best_backend(void);

/* Plain hashes with the active back end (for tests and tooling). */
void gs_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
void gs_sha256d(const uint8_t *data, size_t len, uint8_t out[32]);

/* Decode compact nBits into a 32-byte little-endian target. Returns -1 if negative or overflowing. */
int gs_target_from_nbits(uint32_t nbits, uint8_t target_le[32]);

/* Prepare the job-constant inputs once. `branches` is n * 32 bytes (internal order), `prevhash` the
 * 32 header bytes (internal order). On failure returns NULL and writes a reason into `err`. */
gs_job *gs_job_new(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *coinb2, size_t coinb2_len,
                   const uint8_t *branches, size_t n_branches, const uint8_t prevhash[32], uint32_t version,
                   uint32_t nbits, char *err, size_t err_len);
void gs_job_free(gs_job *job);
/* SHA-256 compressions one share check of this job costs with `extranonce_len` bytes of extranonce. */
int gs_job_compressions(const gs_job *job, size_t extranonce_len);

/* The share check. Header version = (job version & ~mask) | (version_bits & mask).
 * Writes the header hash (internal order) and whether hash <= share_target and hash <= network target
 * (both as little-endian 256-bit integers). Returns 0, or -1 when the extranonce is too long. */
int gs_share_check(gs_job *job, const uint8_t *extranonce1, size_t en1_len, const uint8_t *extranonce2,
                   size_t en2_len, uint32_t ntime, uint32_t nonce, uint32_t version_bits, uint32_t version_mask,
                   const uint8_t share_target_le[32], uint8_t hash_out[32], int *meets_share,
                   int *meets_network);

/* Compress `nblocks` blocks from the IV with the active back end: the raw compression rate. */
void gs_bench_compress(size_t nblocks, uint32_t state_out[8]);

#endif
