"""CPython's own Lib/test/lock_tests.py, bound to pyconc's types the way test_threading.py binds
threading's. The installed interpreter ships the module in its `test` package."""
import unittest

from test import lock_tests

from pyconc import threading as pthreading


class LockTests(lock_tests.LockTests):
    locktype = staticmethod(pthreading.Lock)


class RLockTests(lock_tests.RLockTests):
    locktype = staticmethod(pthreading.RLock)


class EventTests(lock_tests.EventTests):
    eventtype = staticmethod(pthreading.Event)

    def test_at_fork_reinit(self):
        # The stdlib's test reaches into Event._cond, the Condition the pure-Python Event is built
        # on. pyconc's Event has no inner Condition (it parks on its own wait list), so the test
        # has nothing to inspect; the behaviour it guards (an Event usable after fork) is tested in
        # tests/test_fork.py::test_primitives_usable_in_child.
        evt = self.eventtype()
        evt._at_fork_reinit()
        evt.set()
        self.assertTrue(evt.wait(0))


class ConditionAsRLockTests(lock_tests.RLockTests):
    # Condition uses an RLock by default and exports its API.
    locktype = staticmethod(pthreading.Condition)

    def test_recursion_count(self):
        self.skipTest("Condition does not expose _recursion_count() (skipped by CPython too)")


class ConditionTests(lock_tests.ConditionTests):
    condtype = staticmethod(pthreading.Condition)

    if hasattr(lock_tests.ConditionTests, "test_nan_timeout"):   # 3.14
        def test_nan_timeout(self):
            # The stdlib's test ends with len(cond._waiters) == 0: pyconc's Condition has no
            # _waiters deque (its waiters are a wait list in C); the repr shows their number,
            # as the stdlib's repr shows len(_waiters).
            cond = self.condtype()
            nan = float('nan')
            with cond:
                self.assertRaises(ValueError, cond.wait, nan)
                self.assertRaises(ValueError, cond.wait_for, lambda: False, nan)
                self.assertTrue(repr(cond).endswith(", 0)>"), repr(cond))


class SemaphoreTests(lock_tests.SemaphoreTests):
    semtype = staticmethod(pthreading.Semaphore)


class BoundedSemaphoreTests(lock_tests.BoundedSemaphoreTests):
    semtype = staticmethod(pthreading.BoundedSemaphore)


class BarrierTests(lock_tests.BarrierTests):
    barriertype = staticmethod(pthreading.Barrier)


if __name__ == "__main__":
    unittest.main()
