/* Stand-alone self-test of the C core: NIST SHA-256 vectors, real block headers and a real share
 * check, for every back end this CPU can run (or the one named on the command line).
 * Used by CI under qemu-aarch64 (ARMv8 + portable) and under valgrind / AddressSanitizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharecheck.h"

static int failures = 0;

static void unhex(const char *hex, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned int byte;
        sscanf(hex + 2 * i, "%2x", &byte);
        out[i] = (uint8_t)byte;
    }
}

static void expect(const char *what, const uint8_t *got, const char *want_hex, int reversed) {
    uint8_t want[32];
    unhex(want_hex, want, 32);
    uint8_t cmp[32];
    for (int i = 0; i < 32; i++) cmp[i] = reversed ? got[31 - i] : got[i];
    if (memcmp(cmp, want, 32) != 0) {
        printf("  FAIL %s\n", what);
        failures++;
    } else {
        printf("  ok   %s\n", what);
    }
}

/* FIPS 180-2 examples and the NIST long message. */
static void nist_vectors(void) {
    uint8_t out[32];
    gs_sha256((const uint8_t *)"", 0, out);
    expect("sha256('')", out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0);
    gs_sha256((const uint8_t *)"abc", 3, out);
    expect("sha256('abc')", out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 0);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    gs_sha256((const uint8_t *)m448, strlen(m448), out);
    expect("sha256(448-bit)", out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", 0);
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    gs_sha256((const uint8_t *)m896, strlen(m896), out);
    expect("sha256(896-bit)", out, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1", 0);
    size_t n = 1000000;
    uint8_t *million = malloc(n);
    memset(million, 'a', n);
    gs_sha256(million, n, out);
    free(million);
    expect("sha256(10^6 x 'a')", out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", 0);
}

/* Real mainnet headers: genesis and block 413567. */
static void real_headers(void) {
    uint8_t header[80], out[32];
    unhex("0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617f"
          "c81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c", header, 80);
    gs_sha256d(header, 80, out);
    expect("block 0 header", out, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", 1);
    unhex("0400000011cec5c65e00d35b08860e4e47c6f63f522bb1294db54205000000000000000005ce7daa2ab7853686a216e6e40415cf"
          "ca390c23daff2eaaba16c89f640ca564b38d47573684051803b95f7e", header, 80);
    gs_sha256d(header, 80, out);
    expect("block 413567 header", out, "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069", 1);
}

/* The genesis block as a Stratum job (coinbase only) through the whole share check. */
static void genesis_share(void) {
    static const char *coinb1 = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d010445";
    static const char *coinb2 =
        "732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f72"
        "2062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb6"
        "49f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";
    size_t l1 = strlen(coinb1) / 2, l2 = strlen(coinb2) / 2;
    uint8_t *c1 = malloc(l1), *c2 = malloc(l2);
    unhex(coinb1, c1, l1);
    unhex(coinb2, c2, l2);
    uint8_t prev[32] = {0}, en1[4], en2[4], target[32], out[32];
    unhex("54686520", en1, 4);
    unhex("54696d65", en2, 4);
    memset(target, 0xff, sizeof target);
    char err[128];
    gs_job *job = gs_job_new(c1, l1, c2, l2, NULL, 0, prev, 1, 0x1d00ffff, err, sizeof err);
    if (!job) {
        printf("  FAIL genesis job: %s\n", err);
        failures++;
        return;
    }
    int share = 0, block = 0;
    gs_share_check(job, en1, 4, en2, 4, 0x495fab29, 0x7c2bac1d, 0, 0, target, out, &share, &block);
    expect("genesis share check", out, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", 1);
    if (!share || !block) {
        printf("  FAIL genesis verdicts share=%d block=%d\n", share, block);
        failures++;
    }
    gs_share_check(job, en1, 4, en2, 4, 0x495fab29, 0x7c2bac1e, 0, 0, target, out, &share, &block);
    if (block) {
        printf("  FAIL genesis nonce+1 must not meet the network target\n");
        failures++;
    }
    gs_job_free(job);
    free(c1);
    free(c2);
}

int main(int argc, char **argv) {
    int ran = 0;
    for (int id = 0; id < GS_BACKEND_COUNT; id++) {
        const char *name = gs_backend_name((gs_backend_id)id);
        if (argc > 1 && strcmp(argv[1], name) != 0) continue;
        if (gs_select_backend((gs_backend_id)id) != 0) {
            printf("%s: not supported on this CPU\n", name);
            if (argc > 1) failures++;
            continue;
        }
        printf("%s:\n", name);
        nist_vectors();
        real_headers();
        genesis_share();
        ran++;
    }
    printf("%d back end(s) tested, %d failure(s)\n", ran, failures);
    return failures || !ran ? 1 : 0;
}
