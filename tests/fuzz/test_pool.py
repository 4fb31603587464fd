"""pyconc.multiprocessing.Pool against the stdlib's Pool: random sequences of calls (map,
map_async, starmap, imap, imap_unordered, apply, apply_async with callbacks) over random inputs,
chunk sizes and result sizes, some tasks raising; same results, same exceptions (type and
message), callbacks called the same way. One failing task per call at most: with several, which
error a map reports depends on which chunk finishes first, in the stdlib too."""
import multiprocessing as std_mp

import hypothesis.strategies as st
import pytest
from hypothesis import given

from pyconc import multiprocessing as pc_mp

from .common import outcome, tally
from .profiles import HANG_S, fuzz_settings, steps

pytestmark = pytest.mark.timeout(300)


def work(x):
    """A task: x < 0 raises; a large x returns a large result."""
    if x < 0:
        raise ValueError(f"task {x} failed")
    return (x, b"r" * (x * 997 % 300000 if x > 50 else x))


def work2(x, y):
    return work(x + y)


@pytest.fixture(scope="module")
def pools():
    std, pc = std_mp.get_context("fork").Pool(2), pc_mp.Pool(2)
    yield std, pc
    for p in (std, pc):
        p.terminate()
        p.join()


def call(pool, spec):
    method, xs, chunksize = spec
    if method == "map":
        return pool.map(work, xs, chunksize)
    if method == "map_async":
        got = []
        r = pool.map_async(work, xs, chunksize, callback=got.append, error_callback=got.append)
        value = outcome(r.get, HANG_S)
        r.wait(HANG_S)
        return value, r.ready(), r.successful() if r.ready() else None, \
            [repr(g) if isinstance(g, BaseException) else g for g in got]
    if method == "starmap":
        return pool.starmap(work2, [(x, 1) for x in xs], chunksize)
    if method in ("imap", "imap_unordered"):
        # next(it): the stdlib's chunked iterator (a generator) has no next(timeout). Up to the
        # first error only: after it, a chunked iterator differs (issue 9, see
        # test_imap_chunked_ends_after_a_failed_chunk below)
        chunked = (chunksize or 1) > 1
        it = getattr(pool, method)(work, xs, chunksize or 1)
        out = []
        for _ in range(len(xs)):
            out.append(outcome(next, it))
            if out[-1][0] == "raise" and chunked:
                break
        if method == "imap":
            return out
        if chunked and out[-1][0] == "raise":
            # which chunks finished before the failed one depends on timing: the error, and
            # that everything before it is a result of some input
            allowed = [outcome(work, x) for x in xs]
            return out[-1], all(o in allowed for o in out[:-1])
        return sorted(out, key=repr)
    if method == "apply":
        return [pool.apply(work, (x,)) for x in xs]
    rs = [pool.apply_async(work, (x,)) for x in xs]
    return [outcome(r.get, HANG_S) for r in rs]


def inputs():
    """Task inputs, one of them (or none) replaced by a failing one."""
    return st.lists(st.integers(0, 80), max_size=steps(25)).flatmap(
        lambda xs: st.tuples(st.just(xs), st.one_of(st.none(), st.integers(0, max(0, len(xs)))))
    ).map(lambda t: [-1 if t[1] is not None and i == t[1] else x for i, x in enumerate(t[0])])


calls = st.lists(st.tuples(
    st.sampled_from(["map", "map_async", "starmap", "imap", "imap_unordered", "apply",
                     "apply_async"]),
    inputs(), st.one_of(st.none(), st.integers(1, 5))), min_size=1, max_size=4)


@fuzz_settings(150)
@given(specs=calls)
def test_pool_calls(pools, specs):
    tally(1, sum(len(s[1]) for s in specs))
    std, pc = pools
    for spec in specs:
        expected, actual = outcome(call, std, spec), outcome(call, pc, spec)
        assert actual == expected, f"{spec[0]}(chunksize={spec[2]}) over {spec[1]}"


@pytest.mark.timeout(60)
def test_imap_chunked_ends_after_a_failed_chunk(pools):
    def scenario(pool):
        it = pool.imap(work, [-1, 0, 0], 2)
        return [outcome(next, it) for _ in range(3)]
    std, pc = pools
    assert scenario(pc) == scenario(std)
