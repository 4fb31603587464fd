"""Differential fuzz of pyconc.selectors against the stdlib's selectors: random sequences of
register, unregister and modify (one descriptor or a run of them, by socket object or by fd),
interleaved with select(0), on the same sockets through both implementations of each kind.

After every step both give the same outcome (the same exception type, or the same key), the same
get_map() in the same order, and select(0) the same (fd, events, data) in the same order for the
poll and select kinds (the order of poll()'s array and of the select sets' union) and as a set
for epoll. The runs of registrations and removals are long enough to exercise the poll and
select kinds' fd index and their dead-entry compaction (csrc/io/selector.c ents_compact).
"""
import selectors as std
import socket

import pytest
from hypothesis import given, strategies as st

import pyconc.selectors as pc

from .profiles import examples, fuzz_settings, steps

pytestmark = pytest.mark.timeout(900)   # the long profile's size

NPAIRS = 160
KINDS = ["PollSelector", "SelectSelector", "EpollSelector"]
EVENTS = st.sampled_from([std.EVENT_READ, std.EVENT_WRITE, std.EVENT_READ | std.EVENT_WRITE,
                          0, 4])


@pytest.fixture(scope="module")
def pairs():
    ps = [socket.socketpair() for _ in range(NPAIRS)]
    for k, (a, b) in enumerate(ps):
        if k % 3 == 0:
            b.send(b"x")       # a is readable; every a is writable
    yield ps
    for a, b in ps:
        a.close()
        b.close()


index = st.integers(0, NPAIRS - 1)
ops = st.one_of(
    st.tuples(st.just("register"), index, EVENTS, st.booleans()),
    st.tuples(st.just("unregister"), index, st.booleans()),
    st.tuples(st.just("modify"), index, EVENTS),
    st.tuples(st.just("register_run"), index, st.integers(1, NPAIRS), EVENTS),
    st.tuples(st.just("unregister_run"), index, st.integers(1, NPAIRS), st.booleans()),
    st.just(("select",)),
)


def apply(sel, pairs, op):
    """One op on sel; a comparable record of its outcome."""
    name = op[0]

    def target(i, by_fd):
        return pairs[i][0].fileno() if by_fd else pairs[i][0]

    try:
        if name == "register":
            _, i, ev, by_fd = op
            k = sel.register(target(i, by_fd), ev, i)
            return ("key", k.fd, k.events, k.data)
        if name == "unregister":
            _, i, by_fd = op
            k = sel.unregister(target(i, by_fd))
            return ("key", k.fd, k.events, k.data)
        if name == "modify":
            _, i, ev = op
            k = sel.modify(pairs[i][0], ev, -i)
            return ("key", k.fd, k.events, k.data)
        if name == "register_run":
            _, lo, n, ev = op
            got = []
            for i in range(lo, min(NPAIRS, lo + n)):
                try:
                    sel.register(pairs[i][0], ev, i)
                    got.append(i)
                except (KeyError, ValueError) as e:
                    got.append(type(e).__name__)
            return ("run", got)
        if name == "unregister_run":
            _, lo, n, by_fd = op
            got = []
            for i in range(lo, min(NPAIRS, lo + n)):
                try:
                    got.append(sel.unregister(target(i, by_fd)).data)
                except KeyError:
                    got.append("KeyError")
            return ("run", got)
        ready = [(k.fd, ev, k.data) for k, ev in sel.select(0)]
        return ("select", ready if not isinstance(sel, (std.EpollSelector, pc.EpollSelector))
                else sorted(ready))
    except Exception as e:   # noqa: BLE001 -- compared with the stdlib's
        return ("error", type(e).__name__)


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(examples(60))
@given(seq=st.lists(ops, min_size=1, max_size=steps(60)))
def test_selector_ops_match_the_stdlib(kind, pairs, seq):
    mine, theirs = getattr(pc, kind)(), getattr(std, kind)()
    try:
        for step, op in enumerate(seq):
            a, b = apply(mine, pairs, op), apply(theirs, pairs, op)
            assert a == b, (step, op)
            assert ([(k.fd, k.events, k.data) for k in mine.get_map().values()]
                    == [(k.fd, k.events, k.data) for k in theirs.get_map().values()]), (step, op)
        final = [(k.fd, ev, k.data) for k, ev in mine.select(0)]
        expect = [(k.fd, ev, k.data) for k, ev in theirs.select(0)]
        assert sorted(final) == sorted(expect)
    finally:
        mine.close()
        theirs.close()
