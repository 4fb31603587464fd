"""State machines: pyconc.threading's primitives against the stdlib's on random operation
sequences, same operation, same outcome (value, or exception type and message), step by step.

Single-thread: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition (its non-blocking
parts: acquire/release of its lock, notify, notify_all, wait(0), wait_for(predicate, 0), over a
Lock, an RLock or its default lock) and Thread (the object's life cycle: start, join, names,
daemon, errors). Barrier with threads: each step starts a waiter (its own implementation's
Thread), or aborts or resets, then lets both barriers settle (every thread either returned or
waits) and compares what the threads returned, n_waiting and broken."""
import threading as std_threading
import time

import hypothesis.strategies as st
import pytest
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pyconc import threading as pc_threading

from .common import outcome, tally
from .profiles import HANG_S, fuzz_settings

pytestmark = pytest.mark.timeout(300)

IMPLS = (std_threading, pc_threading)


class Pair(RuleBasedStateMachine):
    """The same call on the stdlib's object (self.std) and pyconc's (self.pc)."""

    def __init__(self):
        super().__init__()
        tally(examples=1)

    def both(self, name, *args, **kwargs):
        tally(operations=1)
        results = []
        for obj in (self.std, self.pc):
            fn = getattr(obj, name) if isinstance(name, str) else (lambda *a, **k: name(obj))
            results.append(outcome(fn, *args, **kwargs))
        a, b = results
        assert b == a, f"{name}{args}{kwargs}: pyconc {b!r}, stdlib {a!r}"
        return a


# (args, kwargs) of acquire() that never block forever in one thread, valid and invalid
ACQUIRE_NONBLOCKING = [((False,), {}), ((), {"blocking": False}), ((True, 0), {}),
                       ((), {"timeout": 0}), ((True, 0.001), {}), ((False, 0), {}),
                       ((False, -1), {}), ((True, -2), {}), ((), {"timeout": -1.5})]


class LockMachine(Pair):
    rlock = False

    def __init__(self):
        super().__init__()
        name = "RLock" if self.rlock else "Lock"
        self.std, self.pc = (getattr(m, name)() for m in IMPLS)
        self.depth = 0

    @rule(call=st.sampled_from(ACQUIRE_NONBLOCKING))
    def acquire(self, call):
        if self.both("acquire", *call[0], **call[1]) == ("ok", ("bool", True)):
            self.depth += 1

    @precondition(lambda self: self.rlock or self.depth == 0)
    @rule()
    def acquire_blocking(self):  # only where it cannot block: a free Lock, or an RLock
        self.depth += self.both("acquire") == ("ok", ("bool", True))

    @rule()
    def release(self):
        if self.both("release")[0] == "ok":
            self.depth -= 1

    @precondition(lambda self: self.rlock or self.depth == 0)
    @rule()
    def enter_exit(self):
        self.both(lambda lock: (lock.__enter__(), lock.__exit__(None, None, None)))

    @invariant()
    def same_state(self):
        if self.rlock:
            self.both("_is_owned")
        else:
            self.both("locked")


class RLockMachine(LockMachine):
    rlock = True


class SemaphoreMachine(Pair):
    bounded = False

    @initialize(value=st.integers(-1, 3))
    def setup(self, value):
        name = "BoundedSemaphore" if self.bounded else "Semaphore"
        made = [outcome(getattr(m, name), value) for m in IMPLS]
        assert made[1][0] == made[0][0] and (made[0][0] == "ok" or made[1] == made[0]), made
        value = max(value, 0)
        self.std, self.pc = (getattr(m, name)(value) for m in IMPLS)

    @rule(call=st.sampled_from(ACQUIRE_NONBLOCKING))
    def acquire(self, call):
        self.both("acquire", *call[0], **call[1])

    @precondition(lambda self: hasattr(self, "std") and self.std._value > 0)
    @rule()
    def acquire_blocking(self):
        self.both("acquire")

    @rule(n=st.integers(0, 3))
    def release(self, n):
        if n == 1 and not self.bounded:
            self.both("release")
        else:
            self.both("release", n)

    @invariant()
    def same_state(self):
        if hasattr(self, "std"):
            assert self.pc._value == self.std._value


class BoundedSemaphoreMachine(SemaphoreMachine):
    bounded = True


class EventMachine(Pair):
    def __init__(self):
        super().__init__()
        self.std, self.pc = (m.Event() for m in IMPLS)

    @rule()
    def set(self):
        self.both("set")

    @rule()
    def clear(self):
        self.both("clear")

    @rule(timeout=st.sampled_from([0, 0.0, 0.001, -1]))
    def wait(self, timeout):
        self.both("wait", timeout)

    @precondition(lambda self: self.std.is_set())
    @rule()
    def wait_forever(self):
        self.both("wait")

    @invariant()
    def same_state(self):
        self.both("is_set")


class ConditionMachine(Pair):
    @initialize(lock=st.sampled_from(["default", "Lock", "RLock"]))
    def setup(self, lock):
        self.std, self.pc = (m.Condition(None if lock == "default" else getattr(m, lock)())
                             for m in IMPLS)
        self.reentrant = lock != "Lock"
        self.depth = 0
        self.flag = False

    @rule(call=st.sampled_from(ACQUIRE_NONBLOCKING[:5]))
    def acquire(self, call):
        self.depth += self.both("acquire", *call[0], **call[1]) == ("ok", ("bool", True))

    @precondition(lambda self: hasattr(self, "std") and (self.reentrant or self.depth == 0))
    @rule()
    def acquire_blocking(self):
        self.depth += self.both("acquire") == ("ok", ("bool", True))

    @rule()
    def release(self):
        self.depth -= self.both("release")[0] == "ok"

    @rule(n=st.integers(0, 3))
    def notify(self, n):
        if n == 1:
            self.both("notify")
        else:
            self.both("notify", n)

    @rule()
    def notify_all(self):
        self.both("notify_all")

    @rule(timeout=st.sampled_from([0, 0.001, -1]))
    def wait(self, timeout):
        self.both("wait", timeout)

    @rule(timeout=st.sampled_from([0, 0.001]))
    def wait_for(self, timeout):
        self.both("wait_for", lambda: self.flag, timeout)

    @rule()
    def toggle_flag(self):
        self.flag = not self.flag

    @precondition(lambda self: hasattr(self, "std") and (self.reentrant or self.depth == 0))
    @rule()
    def with_block(self):
        self.both(lambda c: (c.__enter__(), c.notify(), c.__exit__(None, None, None)))

    @invariant()
    def same_state(self):
        if hasattr(self, "std"):
            self.both("_is_owned")


class ThreadMachine(Pair):
    """A Thread object's life cycle: the same calls on a stdlib Thread and a pyconc Thread."""

    @initialize(daemon=st.sampled_from([None, True, False]), name=st.sampled_from([None, "t"]),
                args=st.sampled_from([(), (1,), (1, 2)]))
    def setup(self, daemon, name, args):
        self.results = ([], [])
        self.gates = (std_threading.Event(), std_threading.Event())
        self.std, self.pc = (
            m.Thread(target=self.body(i), name=name, daemon=daemon, args=args)
            for i, m in enumerate(IMPLS))
        self.started = False

    def body(self, i):
        def run(*args):
            assert self.gates[i].wait(HANG_S)
            self.results[i].append(args)
        return run

    @rule()
    def start(self):
        self.started |= self.both("start")[0] == "ok"

    @rule(timeout=st.sampled_from([0, 0.001]))
    def join_timeout(self, timeout):
        self.both("join", timeout)

    @rule()
    def let_finish_and_join(self):
        for g in self.gates:
            g.set()
        if self.started:
            self.both("join", HANG_S)
            assert not self.pc.is_alive()
        else:
            self.both("join")

    @rule(daemon=st.booleans())
    def set_daemon(self, daemon):
        self.both(lambda t: setattr(t, "daemon", daemon))

    @rule(name=st.sampled_from(["a", "b"]))
    def set_name(self, name):
        self.both(lambda t: setattr(t, "name", name))

    @invariant()
    def same_state(self):
        if not hasattr(self, "std"):
            return
        self.both(lambda t: (t.daemon, t.ident is None, t.native_id is None))
        if self.pc.name.startswith("Thread-"):  # the default names count separately
            assert self.std.name.startswith("Thread-")
        else:
            assert self.pc.name == self.std.name
        assert self.results[1] == self.results[0]

    def teardown(self):
        if hasattr(self, "std"):
            for g in self.gates:
                g.set()
            for t in (self.std, self.pc):
                if t.ident is not None:
                    t.join(HANG_S)
                    assert not t.is_alive(), "hang"


class BarrierMachine(RuleBasedStateMachine):
    """Each barrier with waiter threads of its own implementation; after every step both settle
    and must agree."""

    @initialize(parties=st.integers(1, 3), action=st.sampled_from([None, "log", "raise"]))
    def setup(self, parties, action):
        tally(examples=1)
        self.logs = ([], [])
        self.results = ([], [])
        self.threads = ([], [])

        def make_action(i):
            def log():
                self.logs[i].append("action")

            def boom():
                self.logs[i].append("action")
                raise ValueError("action failed")
            return {None: None, "log": log, "raise": boom}[action]
        self.barriers = tuple(m.Barrier(parties, make_action(i)) for i, m in enumerate(IMPLS))

    def settle(self):
        """Waits until, for each barrier, every thread started has returned or is waiting."""
        deadline = time.monotonic() + HANG_S
        for b, threads in zip(self.barriers, self.threads):
            while True:
                live = sum(t.is_alive() for t in threads)
                if live == b.n_waiting:  # every live thread is inside wait()
                    break
                assert time.monotonic() < deadline, "hang: barrier waiters do not settle"
                time.sleep(0.001)
        for i in (0, 1):
            self.threads[i][:] = [t for t in self.threads[i] if t.is_alive()]

    def check(self, what):
        tally(operations=1)
        self.settle()
        std_b, pc_b = self.barriers
        assert sorted(self.results[1], key=repr) == sorted(self.results[0], key=repr), what
        assert (pc_b.n_waiting, pc_b.broken, pc_b.parties) == \
            (std_b.n_waiting, std_b.broken, std_b.parties), what
        assert self.logs[1] == self.logs[0], what

    @rule(timeout=st.sampled_from([None, None, 0.005]))
    def wait(self, timeout):
        for i, m in enumerate(IMPLS):
            b, out = self.barriers[i], self.results[i]

            def run(b=b, out=out):
                try:
                    out.append(b.wait(timeout))
                except Exception as exc:
                    out.append((type(exc).__name__, str(exc)))
            t = m.Thread(target=run, daemon=True)
            t.start()
            self.threads[i].append(t)
        if timeout is not None:  # both time out (or complete) before the next step
            for ts in self.threads:
                for t in ts:
                    t.join(HANG_S)
        self.check(f"wait({timeout})")

    @rule()
    def abort(self):
        for b in self.barriers:
            b.abort()
        self.check("abort()")

    @rule()
    def reset(self):
        for b in self.barriers:
            b.reset()
        self.check("reset()")

    def teardown(self):
        if hasattr(self, "barriers"):
            for b in self.barriers:
                b.abort()
            for ts in self.threads:
                for t in ts:
                    t.join(HANG_S)
                    assert not t.is_alive(), "hang: a barrier waiter did not return on abort"


def _case(machine, n_examples, n_steps):
    case = machine.TestCase
    case.settings = fuzz_settings(n_examples, n_steps)
    return case


TestLock = _case(LockMachine, 100, 40)
TestRLock = _case(RLockMachine, 100, 40)
TestSemaphore = _case(SemaphoreMachine, 100, 40)
TestBoundedSemaphore = _case(BoundedSemaphoreMachine, 100, 40)
TestEvent = _case(EventMachine, 60, 30)
TestCondition = _case(ConditionMachine, 100, 40)
TestThread = _case(ThreadMachine, 40, 10)
TestBarrier = _case(BarrierMachine, 40, 20)
