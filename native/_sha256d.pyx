# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython face of the C share check: one Python call per share."""

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize


cdef extern from "sharecheck.h":
    ctypedef enum gs_backend_id:
        GS_BACKEND_PORTABLE
        GS_BACKEND_SHANI
        GS_BACKEND_ARMV8
        GS_BACKEND_COUNT
    ctypedef struct gs_job:
        pass
    int GS_MAX_EXTRANONCE
    int GS_MAX_BRANCHES
    int gs_backend_supported(gs_backend_id id)
    const char *gs_backend_name(gs_backend_id id)
    int gs_select_backend(gs_backend_id id)
    gs_backend_id gs_active_backend()
    gs_backend_id gs_best_backend()
    void gs_sha256(const uint8_t *data, size_t len, uint8_t *out)
    void gs_sha256d(const uint8_t *data, size_t len, uint8_t *out)
    gs_job *gs_job_new(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *coinb2, size_t coinb2_len,
                       const uint8_t *branches, size_t n_branches, const uint8_t *prevhash, uint32_t version,
                       uint32_t nbits, char *err, size_t err_len)
    void gs_job_free(gs_job *job)
    int gs_job_compressions(const gs_job *job, size_t extranonce_len)
    int gs_share_check(gs_job *job, const uint8_t *extranonce1, size_t en1_len, const uint8_t *extranonce2,
                       size_t en2_len, uint32_t ntime, uint32_t nonce, uint32_t version_bits,
                       uint32_t version_mask, const uint8_t *share_target_le, uint8_t *hash_out,
                       int *meets_share, int *meets_network)
    void gs_bench_compress(size_t nblocks, uint32_t *state_out)


def backend_names():
    """Every back end this build knows, whether or not the CPU can run it."""
    return [gs_backend_name(<gs_backend_id>i).decode() for i in range(GS_BACKEND_COUNT)]


def supported_backends():
    """Back ends this CPU can run, best last."""
    return [gs_backend_name(<gs_backend_id>i).decode()
            for i in range(GS_BACKEND_COUNT) if gs_backend_supported(<gs_backend_id>i)]


def best_backend():
    return gs_backend_name(gs_best_backend()).decode()


def active_backend():
    return gs_backend_name(gs_active_backend()).decode()


def use_backend(str name):
    """Switch every later hash to back end `name`; ValueError if unknown or unsupported here."""
    for i in range(GS_BACKEND_COUNT):
        if gs_backend_name(<gs_backend_id>i).decode() == name:
            if gs_select_backend(<gs_backend_id>i) != 0:
                raise ValueError(f"SHA-256 back end {name!r} is not supported by this CPU")
            return
    raise ValueError(f"unknown SHA-256 back end {name!r}; known: {', '.join(backend_names())}")


def sha256(bytes data):
    cdef uint8_t out[32]
    gs_sha256(<const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), out)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def sha256d(bytes data):
    cdef uint8_t out[32]
    gs_sha256d(<const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), out)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def bench_compress(size_t nblocks):
    """Run `nblocks` compressions back to back (the raw rate of the active back end)."""
    cdef uint32_t state[8]
    gs_bench_compress(nblocks, state)
    return state[0]


cdef class PreparedJob:
    """The job-constant half of a share check, built once per job."""

    cdef gs_job *job
    cdef readonly uint32_t version
    cdef readonly uint32_t nbits
    cdef readonly Py_ssize_t n_branches

    def __cinit__(self, bytes coinb1 not None, bytes coinb2 not None, bytes merkle_branches not None,
                  bytes prevhash not None, version, nbits):
        cdef char err[160]
        if PyBytes_GET_SIZE(merkle_branches) % 32:
            raise ValueError(f"merkle branches blob must be a multiple of 32 bytes, got {len(merkle_branches)}")
        if PyBytes_GET_SIZE(prevhash) != 32:
            raise ValueError(f"prevhash must be 32 bytes, got {len(prevhash)}")
        self.version = _u32("version", version)
        self.nbits = _u32("nbits", nbits)
        self.n_branches = PyBytes_GET_SIZE(merkle_branches) // 32
        memset(err, 0, sizeof(err))
        self.job = gs_job_new(<const uint8_t *>PyBytes_AS_STRING(coinb1), PyBytes_GET_SIZE(coinb1),
                              <const uint8_t *>PyBytes_AS_STRING(coinb2), PyBytes_GET_SIZE(coinb2),
                              <const uint8_t *>PyBytes_AS_STRING(merkle_branches), self.n_branches,
                              <const uint8_t *>PyBytes_AS_STRING(prevhash), self.version, self.nbits,
                              err, sizeof(err))
        if self.job is NULL:
            raise ValueError(err.decode())

    def __dealloc__(self):
        gs_job_free(self.job)

    def compressions(self, Py_ssize_t extranonce_len):
        """SHA-256 compressions one check costs with this many extranonce bytes."""
        return gs_job_compressions(self.job, extranonce_len)


cdef uint32_t _u32(str name, value) except? 0:
    if not isinstance(value, int) or value < 0 or value > 0xFFFFFFFF:
        raise ValueError(f"{name} must be an unsigned 32-bit integer, got {value!r}")
    return <uint32_t>value


def check_share(PreparedJob job not None, bytes extranonce1 not None, bytes extranonce2 not None,
                uint32_t ntime, uint32_t nonce, uint32_t version_bits, uint32_t version_mask,
                bytes share_target not None):
    """Check one share. Returns (header_hash, meets_share_target, meets_network_target).

    header_hash is in internal byte order; share_target is a 32-byte little-endian integer.
    """
    cdef uint8_t out[32]
    cdef int meets_share = 0, meets_network = 0
    if PyBytes_GET_SIZE(share_target) != 32:
        raise ValueError(f"share target must be 32 bytes, got {len(share_target)}")
    if gs_share_check(job.job, <const uint8_t *>PyBytes_AS_STRING(extranonce1), PyBytes_GET_SIZE(extranonce1),
                      <const uint8_t *>PyBytes_AS_STRING(extranonce2), PyBytes_GET_SIZE(extranonce2),
                      ntime, nonce, version_bits, version_mask,
                      <const uint8_t *>PyBytes_AS_STRING(share_target), out, &meets_share, &meets_network) != 0:
        raise ValueError(f"extranonce1 + extranonce2 is {len(extranonce1) + len(extranonce2)} bytes; "
                         f"at most {GS_MAX_EXTRANONCE}")
    return PyBytes_FromStringAndSize(<char *>out, 32), meets_share != 0, meets_network != 0
