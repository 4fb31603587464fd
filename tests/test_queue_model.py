"""A hypothesis state machine: pyconc's four queues against the stdlib's on random single-thread
operation sequences."""
import queue as std_queue

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import pyconc.queue as pc_queue

pytestmark = pytest.mark.timeout(300)


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except (std_queue.Empty, std_queue.Full, ValueError) as exc:
        return ("raise", type(exc), str(exc))


def machine_for(kind):
    class QueueMachine(RuleBasedStateMachine):
        @initialize(maxsize=st.integers(0, 3))
        def setup(self, maxsize):
            self.std = getattr(std_queue, kind)(maxsize)
            self.pc = getattr(pc_queue, kind)(maxsize)

        def both(self, name, *args, **kwargs):
            a = outcome(getattr(self.std, name), *args, **kwargs)
            b = outcome(getattr(self.pc, name), *args, **kwargs)
            assert a == b, (name, args, kwargs, a, b)

        @rule(item=st.integers(-5, 5))
        def put_nowait(self, item):
            self.both("put_nowait", item)

        @rule(item=st.integers(-5, 5), block=st.booleans())
        def put(self, item, block):
            self.both("put", item, block=block, timeout=0 if block else None)

        @rule()
        def get_nowait(self):
            self.both("get_nowait")

        @rule(block=st.booleans())
        def get(self, block):
            self.both("get", block, 0 if block else None)

        @rule()
        def task_done(self):
            self.both("task_done")

        @invariant()
        def sizes(self):
            if hasattr(self, "std"):
                for name in ("qsize", "empty", "full"):
                    self.both(name)
                assert self.std.unfinished_tasks == self.pc.unfinished_tasks
    QueueMachine.__name__ = f"{kind}Machine"
    return QueueMachine


class SimpleQueueMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.std = std_queue.SimpleQueue()
        self.pc = pc_queue.SimpleQueue()

    def both(self, name, *args):
        a = outcome(getattr(self.std, name), *args)
        b = outcome(getattr(self.pc, name), *args)
        assert a == b, (name, args, a, b)

    @rule(item=st.integers())
    def put(self, item):
        self.both("put", item)

    @rule(item=st.integers())
    def put_nowait(self, item):
        self.both("put_nowait", item)

    @rule()
    def get_nowait(self):
        self.both("get_nowait")

    @rule()
    def get_zero_timeout(self):
        self.both("get", True, 0)

    @invariant()
    def sizes(self):
        self.both("qsize")
        self.both("empty")


SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestQueueModel = machine_for("Queue").TestCase
TestQueueModel.settings = SETTINGS
TestLifoQueueModel = machine_for("LifoQueue").TestCase
TestLifoQueueModel.settings = SETTINGS
TestPriorityQueueModel = machine_for("PriorityQueue").TestCase
TestPriorityQueueModel.settings = SETTINGS
TestSimpleQueueModel = SimpleQueueMachine.TestCase
TestSimpleQueueModel.settings = SETTINGS
