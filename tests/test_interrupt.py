"""Ctrl-C interrupts every wait: SIGINT to a process whose main thread is blocked, without a
timeout (and with a long one), raises KeyboardInterrupt there within 0.5 s. Each case runs in its
own subprocess."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.timeout(60)

TEMPLATE = """
import sys, time
from pyconc import threading
{setup}
print("ready", flush=True)
try:
    {block}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
print("returned", flush=True)
sys.exit(3)
"""

# name -> (setup, blocking statement)
CASES = {
    "Lock.acquire": ("l = threading.Lock(); l.acquire()", "l.acquire()"),
    "Lock.acquire(timeout)": ("l = threading.Lock(); l.acquire()", "l.acquire(timeout=1000)"),
    "Lock.__enter__": ("l = threading.Lock(); l.acquire()", "l.__enter__()"),
    "RLock.acquire": ("r = threading.RLock()\n"
                      "t = threading.Thread(target=r.acquire, daemon=True); t.start(); t.join()",
                      "r.acquire()"),
    "Event.wait": ("e = threading.Event()", "e.wait()"),
    "Event.wait(timeout)": ("e = threading.Event()", "e.wait(1000)"),
    "Condition.wait": ("c = threading.Condition(); c.acquire()", "c.wait()"),
    "Condition.wait(Lock)": ("c = threading.Condition(threading.Lock()); c.acquire()", "c.wait()"),
    "Condition.wait_for": ("c = threading.Condition(); c.acquire()",
                           "c.wait_for(lambda: False)"),
    "Semaphore.acquire": ("s = threading.Semaphore(0)", "s.acquire()"),
    "BoundedSemaphore.acquire": ("s = threading.BoundedSemaphore(1); s.acquire()",
                                 "s.acquire()"),
    "Barrier.wait": ("b = threading.Barrier(2)", "b.wait()"),
    "Thread.join": ("ev = threading.Event()\n"
                    "t = threading.Thread(target=ev.wait, daemon=True); t.start()", "t.join()"),
    "Queue.get": ("from pyconc import queue; q = queue.Queue()", "q.get()"),
    "Queue.get(timeout)": ("from pyconc import queue; q = queue.Queue()", "q.get(timeout=1000)"),
    "Queue.put(full)": ("from pyconc import queue; q = queue.Queue(1); q.put(0)", "q.put(1)"),
    "PriorityQueue.get": ("from pyconc import queue; q = queue.PriorityQueue()", "q.get()"),
    "LifoQueue.put(full)": ("from pyconc import queue; q = queue.LifoQueue(1); q.put(0)",
                            "q.put(1)"),
    "Queue.join": ("from pyconc import queue; q = queue.Queue(); q.put(0)", "q.join()"),
    "SimpleQueue.get": ("from pyconc import queue; q = queue.SimpleQueue()", "q.get()"),
    "Thread.join(timeout)": ("ev = threading.Event()\n"
                             "t = threading.Thread(target=ev.wait, daemon=True); t.start()",
                             "t.join(1000)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sigint_interrupts_wait(case):
    setup, block = CASES[case]
    code = TEMPLATE.format(setup=setup, block=block)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it park
        assert proc.poll() is None, "the wait returned before the signal"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "interrupted" in out, (out, err)
    assert proc.returncode == 0, err
    assert elapsed < 0.5, f"KeyboardInterrupt took {elapsed:.3f} s"


def test_signal_handler_that_returns_keeps_waiting():
    # A handler that does not raise must not end the wait early: the wait resumes for the time
    # that is left (here: until the event is set from another thread).
    code = textwrap.dedent("""
        import signal, sys, time
        from pyconc import threading
        hits = []
        signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
        e = threading.Event()
        def setter():
            time.sleep(0.6)
            e.set()
        threading.Thread(target=setter).start()
        print("ready", flush=True)
        t0 = time.monotonic()
        r = e.wait(10)
        print(r, len(hits), round(time.monotonic() - t0, 1), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGUSR1)
    out, _ = proc.communicate(timeout=10)
    result, hits, waited = out.split()
    assert result == "True" and hits == "1" and float(waited) >= 0.5


def test_timed_wait_with_handler_keeps_deadline():
    code = textwrap.dedent("""
        import signal, time
        from pyconc import threading
        signal.signal(signal.SIGUSR1, lambda *a: None)
        l = threading.Lock(); l.acquire()
        print("ready", flush=True)
        t0 = time.monotonic()
        r = l.acquire(timeout=0.8)
        print(r, round(time.monotonic() - t0, 2), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for _ in range(3):
        time.sleep(0.1)
        os.kill(proc.pid, signal.SIGUSR1)
    out, _ = proc.communicate(timeout=10)
    result, waited = out.split()
    assert result == "False"
    assert 0.75 <= float(waited) < 2.0


@pytest.mark.parametrize("case", ["Lock.acquire", "Event.wait", "Condition.wait", "Queue.get",
                                  "SimpleQueue.get", "Semaphore.acquire", "Barrier.wait"])
def test_signal_during_the_spin_is_not_slept_through(case):
    """Issue 9, item 4 (thread side): a signal that lands while the waiter spins (GIL released,
    no system call to interrupt) must still be handled at once, not after the wait ends. A spin
    of 5 s (PYCONC_SPIN_NS) makes every signal land in it; the wait used to spin it out, then
    sleep forever."""
    setup, block = CASES[case]
    code = TEMPLATE.format(setup=setup, block=block)
    env = dict(os.environ, PYCONC_SPIN_NS="5000000000")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        assert proc.poll() is None, "the wait returned before the signal"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "interrupted" in out, (out, err)
    assert elapsed < 0.5, f"KeyboardInterrupt took {elapsed:.3f} s"
