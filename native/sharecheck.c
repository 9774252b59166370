/* The share check: one call per share, no return to Python in between.
 *
 * Per job we keep the SHA-256 midstate of coinb1's whole 64-byte blocks and a padded buffer
 * holding the rest of the coinbase, so a share only writes its extranonce into that buffer
 * and hashes what is left.
 */
#include "sharecheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gs_compress_fn active_compress = gs_compress_portable;
static gs_backend_id active_id = GS_BACKEND_PORTABLE;

int gs_select_backend(gs_backend_id id) {
    gs_compress_fn fn = gs_backend_fn(id);
    if (!fn) return -1;
    active_compress = fn;
    active_id = id;
    return 0;
}

gs_backend_id gs_active_backend(void) { return active_id; }

gs_backend_id gs_best_backend(void) {
    if (gs_backend_supported(GS_BACKEND_SHANI)) return GS_BACKEND_SHANI;
    if (gs_backend_supported(GS_BACKEND_ARMV8)) return GS_BACKEND_ARMV8;
    return GS_BACKEND_PORTABLE;
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void state_to_bytes(const uint32_t st[8], uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, st[i]);
}

/* Append SHA-256 padding for a message of `total_len` bytes whose last `tail` bytes sit at buf[0..tail).
 * Returns the number of 64-byte blocks in buf. */
static size_t pad_tail(uint8_t *buf, size_t tail, uint64_t total_len) {
    size_t nblocks = (tail + 9 + 63) / 64;
    memset(buf + tail, 0, nblocks * 64 - tail);
    buf[tail] = 0x80;
    uint64_t bits = total_len * 8;
    for (int i = 0; i < 8; i++) buf[nblocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    return nblocks;
}

/* Second SHA-256 of a 32-byte digest held in state form. */
static inline void hash_digest(const uint32_t first[8], uint8_t out[32]) {
    uint8_t block[64];
    uint32_t st[8];
    state_to_bytes(first, block);
    memset(block + 32, 0, 32);
    block[32] = 0x80;
    block[62] = 0x01; /* 256 bits */
    memcpy(st, gs_sha256_iv, sizeof st);
    active_compress(st, block, 1);
    state_to_bytes(st, out);
}

void gs_sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
    uint32_t st[8];
    uint8_t tail[128];
    memcpy(st, gs_sha256_iv, sizeof st);
    size_t whole = len / 64;
    if (whole) active_compress(st, data, whole);
    size_t rest = len - whole * 64;
    memcpy(tail, data + whole * 64, rest);
    active_compress(st, tail, pad_tail(tail, rest, len));
    state_to_bytes(st, out);
}

void gs_sha256d(const uint8_t *data, size_t len, uint8_t out[32]) {
    uint8_t first[32];
    gs_sha256(data, len, first);
    gs_sha256(first, 32, out);
}

int gs_target_from_nbits(uint32_t nbits, uint8_t target_le[32]) {
    uint32_t mantissa = nbits & 0x007fffff;
    int exponent = (int)(nbits >> 24);
    memset(target_le, 0, 32);
    if (mantissa == 0) return 0;
    if (nbits & 0x00800000) return -1; /* negative */
    for (int i = 0; i < 3; i++) {
        uint8_t byte = (uint8_t)(mantissa >> (8 * i));
        int pos = exponent - 3 + i;
        if (pos < 0) continue;
        if (pos >= 32) {
            if (byte) return -1; /* overflow */
            continue;
        }
        target_le[pos] = byte;
    }
    return 0;
}

struct gs_job {
    uint32_t coinb1_midstate[8];
    size_t coinb1_folded;       /* bytes of coinb1 inside the midstate */
    size_t coinb1_tail_len;     /* bytes of coinb1 after them, first in `tail` */
    uint8_t *coinb2;
    size_t coinb2_len;
    uint8_t *tail;              /* coinb1 tail | extranonce | coinb2 | padding */
    int tail_layout;            /* extranonce length `tail` is laid out for, or -1 */
    size_t tail_blocks;
    uint8_t branches[GS_MAX_BRANCHES][32];
    size_t n_branches;
    uint8_t header[128];        /* 80-byte header + padding, constant fields filled in */
    uint32_t version;
    uint8_t network_target[32];
};

gs_job *gs_job_new(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *coinb2, size_t coinb2_len,
                   const uint8_t *branches, size_t n_branches, const uint8_t prevhash[32], uint32_t version,
                   uint32_t nbits, char *err, size_t err_len) {
    if (n_branches > GS_MAX_BRANCHES) {
        snprintf(err, err_len, "too many merkle branches: %zu (at most %d)", n_branches, GS_MAX_BRANCHES);
        return NULL;
    }
    if (coinb1_len + coinb2_len + GS_MAX_EXTRANONCE > GS_MAX_COINBASE) {
        snprintf(err, err_len, "coinbase too large: %zu bytes (at most %d)", coinb1_len + coinb2_len,
                 GS_MAX_COINBASE - GS_MAX_EXTRANONCE);
        return NULL;
    }
    gs_job *job = calloc(1, sizeof *job);
    if (!job) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (gs_target_from_nbits(nbits, job->network_target) != 0) {
        snprintf(err, err_len, "nbits %08x is not a valid compact target", nbits);
        free(job);
        return NULL;
    }
    size_t tail_cap = (coinb1_len % 64) + GS_MAX_EXTRANONCE + coinb2_len + 128;
    job->tail = malloc(tail_cap);
    job->coinb2 = malloc(coinb2_len ? coinb2_len : 1);
    if (!job->tail || !job->coinb2) {
        gs_job_free(job);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    memcpy(job->coinb1_midstate, gs_sha256_iv, sizeof job->coinb1_midstate);
    job->coinb1_folded = coinb1_len - coinb1_len % 64;
    if (job->coinb1_folded) active_compress(job->coinb1_midstate, coinb1, job->coinb1_folded / 64);
    job->coinb1_tail_len = coinb1_len - job->coinb1_folded;
    memcpy(job->tail, coinb1 + job->coinb1_folded, job->coinb1_tail_len);
    memcpy(job->coinb2, coinb2, coinb2_len);
    job->coinb2_len = coinb2_len;
    job->tail_layout = -1;
    if (n_branches) memcpy(job->branches, branches, n_branches * 32);
    job->n_branches = n_branches;
    job->version = version;
    memcpy(job->header + 4, prevhash, 32);
    store_le32(job->header + 72, nbits);
    pad_tail(job->header, 80, 80);
    return job;
}

void gs_job_free(gs_job *job) {
    if (!job) return;
    free(job->tail);
    free(job->coinb2);
    free(job);
}

static void layout_tail(gs_job *job, size_t extranonce_len) {
    size_t at = job->coinb1_tail_len + extranonce_len;
    memcpy(job->tail + at, job->coinb2, job->coinb2_len);
    at += job->coinb2_len;
    job->tail_blocks = pad_tail(job->tail, at, job->coinb1_folded + at);
    job->tail_layout = (int)extranonce_len;
}

int gs_job_compressions(const gs_job *job, size_t extranonce_len) {
    size_t tail = job->coinb1_tail_len + extranonce_len + job->coinb2_len;
    return (int)((tail + 9 + 63) / 64 + 1 + 3 * job->n_branches + 3);
}

/* Little-endian 256-bit compare: a <= b. */
static inline int le256_le(const uint8_t a[32], const uint8_t b[32]) {
    for (int i = 31; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] < b[i];
    }
    return 1;
}

int gs_share_check(gs_job *job, const uint8_t *extranonce1, size_t en1_len, const uint8_t *extranonce2,
                   size_t en2_len, uint32_t ntime, uint32_t nonce, uint32_t version_bits, uint32_t version_mask,
                   const uint8_t share_target_le[32], uint8_t hash_out[32], int *meets_share,
                   int *meets_network) {
    size_t en_len = en1_len + en2_len;
    if (en_len > GS_MAX_EXTRANONCE) return -1;
    if ((size_t)job->tail_layout != en_len) layout_tail(job, en_len);
    memcpy(job->tail + job->coinb1_tail_len, extranonce1, en1_len);
    memcpy(job->tail + job->coinb1_tail_len + en1_len, extranonce2, en2_len);

    /* coinbase txid */
    uint32_t st[8];
    memcpy(st, job->coinb1_midstate, sizeof st);
    active_compress(st, job->tail, job->tail_blocks);

    /* merkle fold: node = sha256d(node || branch) */
    uint8_t pair[128];
    pad_tail(pair, 64, 64);
    hash_digest(st, pair);
    for (size_t i = 0; i < job->n_branches; i++) {
        memcpy(pair + 32, job->branches[i], 32);
        memcpy(st, gs_sha256_iv, sizeof st);
        active_compress(st, pair, 2);
        hash_digest(st, pair);
    }

    /* header */
    uint8_t *h = job->header;
    store_le32(h, (job->version & ~version_mask) | (version_bits & version_mask));
    memcpy(h + 36, pair, 32);
    store_le32(h + 68, ntime);
    store_le32(h + 76, nonce);
    memcpy(st, gs_sha256_iv, sizeof st);
    active_compress(st, h, 2);
    hash_digest(st, hash_out);

    *meets_share = le256_le(hash_out, share_target_le);
    *meets_network = le256_le(hash_out, job->network_target);
    return 0;
}

void gs_bench_compress(size_t nblocks, uint32_t state_out[8]) {
    uint8_t block[64];
    memset(block, 0x5a, sizeof block);
    memcpy(state_out, gs_sha256_iv, 32);
    for (size_t i = 0; i < nblocks; i++) {
        active_compress(state_out, block, 1);
        block[i & 63] ^= (uint8_t)state_out[0]; /* keep the work data dependent */
    }
}
