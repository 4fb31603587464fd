"""State machines: pyconc.multiprocessing's Queue, JoinableQueue, SimpleQueue and Pipe against
the stdlib's multiprocessing on random single-process operation sequences, same operation, same
outcome (value, or exception type and message).

The stdlib's Queue hands items to a feeder thread, so an item put is not at once visible to
get(block=False) or empty(): the machine gets with a timeout while it knows an item is there,
and asks empty() only when it knows the queue is empty. Messages stay small enough for a pipe's
buffer (a send with nobody reading must not block in one thread). Deliberate differences, not
generated here: put() of an unpicklable object (pyconc raises in the caller, the stdlib's feeder
thread prints and drops it)."""
import multiprocessing as std_mp
import pickle

import hypothesis.strategies as st
import pytest
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from pyconc import multiprocessing as pc_mp

from .common import PyItem, outcome, tally
from .profiles import fuzz_settings

pytestmark = pytest.mark.timeout(300)

IMPLS = (std_mp, pc_mp)

objects = st.recursive(
    st.one_of(st.integers(), st.text(max_size=5), st.binary(max_size=40), st.none(),
              st.floats(allow_nan=False), st.integers(-3, 3).map(PyItem),
              st.binary(min_size=1000, max_size=6000)),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple),
                            st.dictionaries(st.text(max_size=2), inner, max_size=3)),
    max_leaves=6)


def same(name, results):
    a, b = results
    assert b == a, f"{name}: pyconc {b!r}, stdlib {a!r}"
    return a


class MPQueueMachine(RuleBasedStateMachine):
    joinable = False

    @initialize(maxsize=st.integers(0, 3))
    def setup(self, maxsize):
        tally(examples=1)
        name = "JoinableQueue" if self.joinable else "Queue"
        self.qs = [getattr(m, name)(maxsize) for m in IMPLS]
        self.maxsize = maxsize
        self.count = 0

    def both(self, name, *args):
        tally(operations=1)
        return same(f"{name}{args}", [outcome(getattr(q, name), *args) for q in self.qs])

    def full(self):
        return 0 < self.maxsize <= self.count

    @rule(obj=objects, block=st.booleans(), timeout=st.sampled_from([None, 0, 0.001, -1]))
    def put(self, obj, block, timeout):
        if block and timeout is None and self.full():
            timeout = 0.001
        self.count += self.both("put", obj, block, timeout)[0] == "ok"

    @rule(obj=objects)
    def put_nowait(self, obj):
        self.count += self.both("put_nowait", obj)[0] == "ok"

    @rule(block=st.booleans(), timeout=st.sampled_from([None, 0, 0.001, -1]))
    def get(self, block, timeout):
        if self.count:  # the stdlib's item may still be in its feeder thread: wait for it
            block, timeout = True, 10
        elif block and timeout is None:
            timeout = 0.001
        self.count -= self.both("get", block, timeout)[0] == "ok"

    @precondition(lambda self: self.count == 0)
    @rule()
    def get_nowait(self):
        self.both("get_nowait")

    @precondition(lambda self: self.joinable)
    @rule()
    def task_done(self):
        self.both("task_done")

    @invariant()
    def same_state(self):
        if not hasattr(self, "qs"):
            return
        self.both("qsize")
        self.both("full")
        if self.count == 0:
            self.both("empty")


class MPJoinableQueueMachine(MPQueueMachine):
    joinable = True

    @precondition(lambda self: hasattr(self, "qs") and self.unfinished() == 0)
    @rule()
    def join(self):
        self.both("join")

    def unfinished(self):
        # the stdlib counts unfinished tasks in a semaphore: put() +1, task_done() -1
        return self.qs[0]._unfinished_tasks._semlock._get_value()


class MPSimpleQueueMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        tally(examples=1)
        self.qs = [m.SimpleQueue() for m in IMPLS]
        self.count = 0

    def both(self, name, *args):
        tally(operations=1)
        return same(f"{name}{args}", [outcome(getattr(q, name), *args) for q in self.qs])

    @rule(obj=objects)
    def put(self, obj):
        self.count += self.both("put", obj)[0] == "ok"

    @precondition(lambda self: self.count > 0)
    @rule()
    def get(self):
        self.count -= self.both("get")[0] == "ok"

    @invariant()
    def same_state(self):
        self.both("empty")


class PipeMachine(RuleBasedStateMachine):
    """Both ends of a Pipe in each implementation. pending[i]: what end i has to receive, as
    ("obj", value) or ("bytes", value), so that nothing blocks forever in one thread."""

    @initialize(duplex=st.booleans())
    def setup(self, duplex):
        tally(examples=1)
        self.pipes = [m.Pipe(duplex) for m in IMPLS]
        self.duplex = duplex
        self.pending = [[], []]
        self.closed = [False, False]

    def both(self, name, end, *args, post=None):
        tally(operations=1)
        results = []
        for pipe in self.pipes:
            conn = pipe[end]
            fn = getattr(conn, name)
            results.append(outcome(lambda: post(fn(*args)) if post else fn(*args)))
        return same(f"conn{end}.{name}{args}", results)

    def can_send(self, end, size):
        # within a pipe buffer; 8 KiB of margin for framing
        if not (self.duplex or end == 1):
            return True  # a read-only end: the error does not depend on the buffer
        pend = self.pending[1 - end]
        return sum(len(pickle.dumps(v)) if k == "obj" else len(v) for k, v in pend) + size \
            < 48 * 1024

    @rule(end=st.integers(0, 1), obj=objects)
    def send(self, end, obj):
        if not self.can_send(end, len(pickle.dumps(obj))):
            return
        if self.both("send", end, obj)[0] == "ok":
            self.pending[1 - end].append(("obj", obj))

    @rule(end=st.integers(0, 1), data=st.binary(max_size=3000), cut=st.data())
    def send_bytes(self, end, data, cut):
        if not self.can_send(end, len(data)):
            return
        kind = cut.draw(st.sampled_from(["all", "offset", "offset_size", "bad"]), label="args")
        n = len(data)
        if kind == "all":
            args, sent = (data,), data
        elif kind == "offset":
            off = cut.draw(st.integers(0, n), label="offset")
            args, sent = (data, off), data[off:]
        elif kind == "offset_size":
            off = cut.draw(st.integers(0, n), label="offset")
            size = cut.draw(st.integers(0, n - off), label="size")
            args, sent = (data, off, size), data[off:off + size]
        else:
            args = cut.draw(st.sampled_from([(data, -1), (data, n + 1), (data, 0, -1),
                                             (data, 0, n + 1), (data, n, 1)]), label="bad")
            sent = None
        if self.both("send_bytes", end, *args)[0] == "ok" and sent is not None:
            self.pending[1 - end].append(("bytes", sent))

    def next_is(self, end, kind):
        pend = self.pending[end]
        if pend:
            return pend[0][0] == kind
        # nothing to receive: only where that cannot block (an end whose peer is closed, or
        # that cannot receive at all)
        return self.closed[1 - end] or self.closed[end] or (not self.duplex and end == 1)

    @rule(end=st.integers(0, 1))
    def recv(self, end):
        if not self.next_is(end, "obj"):
            return
        if self.both("recv", end)[0] == "ok":
            self.pending[end].pop(0)

    @rule(end=st.integers(0, 1), maxlength=st.sampled_from([None, "exact", "more"]))
    def recv_bytes(self, end, maxlength):
        if not self.next_is(end, "bytes"):
            return
        # a maxlength below the message's length: known difference, see
        # test_recv_bytes_maxlength_keeps_the_connection below
        args = ()
        if maxlength is not None and self.pending[end]:
            n = len(self.pending[end][0][1])
            args = (n if maxlength == "exact" else n + 10,)
        if self.both("recv_bytes", end, *args)[0] == "ok":
            self.pending[end].pop(0)

    @rule(end=st.integers(0, 1), extra=st.integers(-3, 3), offset=st.integers(0, 3))
    def recv_bytes_into(self, end, extra, offset):
        if not self.next_is(end, "bytes"):
            return
        n = len(self.pending[end][0][1]) if self.pending[end] else 0
        size = max(0, n + offset + extra)  # too small, exact or larger; offset may be too large
        tally(operations=1)
        results = []
        for pipe in self.pipes:
            buf = bytearray(size)
            results.append((outcome(pipe[end].recv_bytes_into, buf, offset), bytes(buf)))
        out, _ = same(f"conn{end}.recv_bytes_into(bytearray({size}), {offset})", results)
        if (out[0] == "ok" or out[1] == "BufferTooShort") and self.pending[end]:
            self.pending[end].pop(0)

    @rule(end=st.integers(0, 1))
    def poll(self, end):
        self.both("poll", end, 0)

    @rule(end=st.integers(0, 1))
    def close(self, end):
        self.both("close", end)
        self.closed[end] = True
        self.pending[end] = []

    @invariant()
    def same_state(self):
        if not hasattr(self, "pipes"):
            return
        for end in (0, 1):
            self.both("fileno", end, post=lambda fd: fd >= 0)
            state = [(p[end].closed, p[end].readable, p[end].writable) for p in self.pipes]
            assert state[1] == state[0], f"conn{end} (closed, readable, writable)"

    def teardown(self):
        for pipe in getattr(self, "pipes", []):
            for conn in pipe:
                conn.close()


def _case(machine, n_examples, n_steps):
    case = machine.TestCase
    case.settings = fuzz_settings(n_examples, n_steps)
    return case


TestMPQueue = _case(MPQueueMachine, 30, 25)
TestMPJoinableQueue = _case(MPJoinableQueueMachine, 30, 25)
TestMPSimpleQueue = _case(MPSimpleQueueMachine, 30, 25)
TestPipe = _case(PipeMachine, 60, 30)



@pytest.mark.timeout(60)
def test_recv_bytes_maxlength_keeps_the_connection():
    def scenario(m):
        a, b = m.Pipe()
        a.send_bytes(b"x" * 100)
        out = [outcome(b.recv_bytes, 10), (b.closed, b.readable, b.writable)]
        out.append(outcome(b.send_bytes, b"back"))
        out.append(outcome(a.recv_bytes))
        a.close()
        b.close()
        return out
    assert scenario(pc_mp) == scenario(std_mp)
