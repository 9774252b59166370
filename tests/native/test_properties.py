"""Property: the native check equals the hashlib reference on random jobs and submits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pool import native
from pool.native import reference

u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


@st.composite
def jobs_and_submits(draw: st.DrawFn) -> tuple:
    coinb1 = draw(st.binary(min_size=0, max_size=300))
    coinb2 = draw(st.binary(min_size=0, max_size=400))
    branches = draw(st.binary(min_size=0, max_size=14 * 32).map(lambda b: b[: len(b) // 32 * 32]))
    prevhash = draw(st.binary(min_size=32, max_size=32))
    version = draw(u32)
    nbits = draw(st.sampled_from([0x1D00FFFF, 0x17029A8A, 0x207FFFFF, 0x1903A30C, 0x01003456]))
    en1 = draw(st.binary(min_size=0, max_size=8))
    en2 = draw(st.binary(min_size=0, max_size=8))
    target = draw(st.binary(min_size=32, max_size=32))
    return (coinb1, coinb2, branches, prevhash, version, nbits), (en1, en2, draw(u32), draw(u32), draw(u32),
                                                                   draw(u32), target)


@settings(max_examples=300, deadline=None)
@given(jobs_and_submits())
def test_native_equals_reference(case: tuple) -> None:
    job_args, submit = case
    expected = reference.check_share(reference.ReferenceJob(*job_args), *submit)
    previous = native.active_backend()
    try:
        for backend in native.supported_backends():
            native.use_backend(backend)
            assert native.check_share(native.prepare_job(*job_args), *submit) == expected
    finally:
        native.use_backend(previous)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=8), st.binary(min_size=0, max_size=8)), min_size=2,
                max_size=6))
def test_one_job_serves_changing_extranonce_lengths(extranonces: list) -> None:
    """One prepared job re-lays its coinbase buffer when the extranonce length changes between shares."""
    args = (b"\x01" * 70, b"\x02" * 90, b"\x03" * 64, b"\x04" * 32, 0x20000000, 0x207FFFFF)
    job, ref_job = native.prepare_job(*args), reference.ReferenceJob(*args)
    for en1, en2 in extranonces:
        submit = (en1, en2, 1, 2, 0, 0x1FFFE000, b"\xff" * 32)
        assert native.check_share(job, *submit) == reference.check_share(ref_job, *submit)
