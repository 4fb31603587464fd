"""Stress: mutual exclusion, admission limits and wake-ups under real thread contention. Small
switch intervals make the interpreter preempt threads inside the critical sections, so the tests
fail on a broken primitive."""
import sys
import time

import pytest

from pyconc import threading as pth

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def test_lock_16_threads_x_20000_increments():
    lock = pth.Lock()
    box = [0]

    def work():
        for _ in range(20000):
            with lock:
                v = box[0]   # read-modify-write that races without the lock
                box[0] = v + 1
    threads = [pth.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box[0] == 320000


def test_rlock_nested_increments():
    lock = pth.RLock()
    box = [0]

    def work():
        for _ in range(5000):
            with lock:
                with lock:
                    v = box[0]
                    box[0] = v + 1
    threads = [pth.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box[0] == 40000


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_5_never_admits_a_sixth(kind):
    sem = getattr(pth, kind)(5)
    guard = pth.Lock()
    state = {"inside": 0, "max": 0}

    def work():
        for _ in range(200):
            with sem:
                with guard:
                    state["inside"] += 1
                    state["max"] = max(state["max"], state["inside"])
                time.sleep(0.0005)  # hold the unit long enough for the others to pile up
                with guard:
                    state["inside"] -= 1
    threads = [pth.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max"] <= 5
    assert state["max"] == 5  # and the limit was actually reached
    assert sem._value == 5


def test_event_10000_cycles_no_lost_wakeup():
    ping, pong = pth.Event(), pth.Event()
    n = 10000
    failures = []

    def responder():
        for _ in range(n):
            if not ping.wait(10):
                failures.append("ping lost")
                return
            ping.clear()
            pong.set()
    t = pth.Thread(target=responder)
    t.start()
    for _ in range(n):
        ping.set()
        assert pong.wait(10), "pong lost"
        pong.clear()
    t.join()
    assert failures == []


def test_condition_ping_pong_no_lost_notify():
    cond = pth.Condition()
    state = {"turn": 0}
    n = 5000

    def player(me):
        for _ in range(n):
            with cond:
                assert cond.wait_for(lambda: state["turn"] == me, timeout=10)
                state["turn"] = 1 - me
                cond.notify()
    threads = [pth.Thread(target=player, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["turn"] == 0


def test_lock_fifo_waiters_all_served_with_timeouts_mixed():
    # Waiters that time out while others are woken must not strand the rest.
    lock = pth.Lock()
    done = []

    def impatient():
        for _ in range(200):
            if lock.acquire(timeout=0.0005):
                lock.release()

    def patient():
        for _ in range(500):
            with lock:
                pass
        done.append(1)
    threads = [pth.Thread(target=impatient) for _ in range(4)]
    threads += [pth.Thread(target=patient) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 4
    assert not lock.locked()


def test_barrier_many_rounds():
    b = pth.Barrier(4)
    rounds = 500
    counts = [0] * 4

    def work(i):
        for _ in range(rounds):
            b.wait(10)
            counts[i] += 1
    threads = [pth.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [rounds] * 4
