"""The CPU count behind the spin rule (issue 10): a waiter spins only when its thread may use two
CPUs or more, counting the affinity mask and the cgroup CPU quota, not the machine's CPUs. Not
timed: these check what the rule sees (pyconc._core._spin_info), each in a fresh subprocess."""
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.support import run_python

pytestmark = pytest.mark.timeout(60)


def info(code="", env=None, **kw):
    r = run_python(textwrap.dedent(code) + "\nfrom pyconc import _core\nprint(_core._spin_info())\n",
                   env=env, **kw)
    assert r.returncode == 0, r.stderr
    return eval(r.stdout.strip().splitlines()[-1])


def test_unpinned_counts_the_affinity_mask():
    got = info()
    assert got["affinity_cpus"] == len(os.sched_getaffinity(0))
    assert got["usable_cpus"] <= got["affinity_cpus"]
    assert got["spin_max_ns"] == 30000


def test_pinned_to_one_cpu_nobody_spins():
    cpu = min(os.sched_getaffinity(0))
    got = info(f"import os; os.sched_setaffinity(0, {{{cpu}}})")
    assert got["usable_cpus"] == 1 and got["max_spinners"] == 0


def test_pinning_after_start_is_seen_and_threads_inherit():
    """The mask is re-read (every few hundred parks, and when asked): a process that pins itself
    after pyconc was imported and used, and the threads it starts afterwards, see one CPU."""
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        from pyconc import _core, threading
        before = _core._spin_info()["usable_cpus"]
        os.sched_setaffinity(0, {{{cpu}}})
        out = []
        t = threading.Thread(target=lambda: out.append(_core._spin_info()))
        t.start(); t.join()
        print(before, _core._spin_info()["max_spinners"], out[0]["max_spinners"])
    """)
    assert r.returncode == 0, r.stderr
    before, main_may, thread_may = r.stdout.split()
    assert int(before) == min(len(os.sched_getaffinity(0)), int(before))
    assert main_may == "0" and thread_may == "0"


def test_a_forked_child_reads_its_own_mask():
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        from pyconc import _core
        _core._spin_info()
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {{{cpu}}})
            os._exit(0 if _core._spin_info()["max_spinners"] == 0 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_spin_ns_zero_turns_spinning_off():
    got = info(env=dict(os.environ, PYCONC_SPIN_NS="0"))
    assert got["spin_max_ns"] == 0 and got["max_spinners"] == 0


def _cgroup_dirs():
    """A writable cgroup directory in which a CPU quota can be set: (v1 cpu dir) or (v2 dir)."""
    for base, kind in (("/sys/fs/cgroup/cpu", "v1"), ("/sys/fs/cgroup/cpu,cpuacct", "v1"),
                       ("/sys/fs/cgroup", "v2")):
        if kind == "v1" and os.path.exists(os.path.join(base, "cpu.cfs_quota_us")):
            return base, kind
        if kind == "v2" and os.path.exists(os.path.join(base, "cgroup.subtree_control")):
            try:
                with open(os.path.join(base, "cgroup.subtree_control")) as f:
                    if "cpu" in f.read().split():
                        return base, kind
            except OSError:
                pass
    return None, None


def test_cgroup_quota_of_half_a_cpu_means_nobody_spins():
    base, kind = _cgroup_dirs()
    if base is None:
        pytest.skip("no cgroup CPU controller (v1 cpu or v2 cpu.max) is mounted here")
    path = os.path.join(base, "pyconc-test-" + uuid.uuid4().hex[:8])
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot create a cgroup here ({e}): setting a CPU quota needs a writable "
                    "cgroup hierarchy")
    try:
        if kind == "v1":
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write("50000")
        else:
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write("50000 100000")
        code = ("from pyconc import _core; print(_core._spin_info())")
        # the child moves itself into the cgroup before it imports pyconc
        script = (f"import os\nopen({os.path.join(path, 'cgroup.procs')!r}, 'w')"
                  f".write(str(os.getpid()))\n" + code)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        got = eval(r.stdout.strip())
        assert got["cgroup_cpus"] == 1
        assert got["usable_cpus"] == 1 and got["max_spinners"] == 0
    finally:
        os.rmdir(path)


def test_gil_waiters_counts_threads_that_want_the_gil():
    """The one-CPU wake (wait.h, rules 4 and 7) keeps the GIL when a thread waits for it; the
    count it reads: threads spinning in Python wait for the GIL most of the time, and once they
    have ended nobody does."""
    r = run_python("""
        import threading, time
        from pyconc import _core
        stop = []
        def spin():
            while not stop:
                pass
        ts = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
        for t in ts:
            t.start()
        seen, end = 0, time.monotonic() + 20
        while seen == 0 and time.monotonic() < end:
            x = 0
            for _ in range(100000):
                x += 1
            seen = _core._spin_info()["gil_waiters"]
        stop.append(1)
        for t in ts:
            t.join()
        print(seen, _core._spin_info()["gil_waiters"])
    """)
    assert r.returncode == 0, r.stderr
    seen, after = map(int, r.stdout.split())
    assert seen >= 1 and after == 0, (seen, after)
    assert info()["gil_waiters"] == 0


@pytest.mark.parametrize("busy", [False, True], ids=["alone", "next_to_a_busy_thread"])
def test_one_cpu_handoffs_keep_lock_semantics(busy):
    """Pinned to one CPU, Lock.release and RLock.release let go of the GIL around the wake (rule
    7): another thread runs inside release(). Every hand-off still happens exactly once, an RLock
    stays owned by one thread at a time, and a busy thread that wants the GIL neither starves
    the pair nor is starved."""
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        os.sched_setaffinity(0, {{{cpu}}})
        from pyconc import threading
        N = 3000
        stop, spins = [], [0]
        def spin():
            while not stop:
                spins[0] += 1
        busy = threading.Thread(target=spin, daemon=True) if {busy} else None
        if busy:
            busy.start()
        a, b = threading.Lock(), threading.Lock()
        a.acquire(); b.acquire()
        count = [0]
        def other():
            for _ in range(N):
                a.acquire(); count[0] += 1; b.release()
        t = threading.Thread(target=other); t.start()
        for i in range(N):
            a.release(); b.acquire()
            assert count[0] == i + 1, (i, count[0])
        t.join()
        r = threading.RLock()
        inside, most, total = [0], [0], [0]
        def user():
            for _ in range(N // 3):
                with r:
                    with r:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                        total[0] += 1
                        inside[0] -= 1
        us = [threading.Thread(target=user) for _ in range(3)]
        for u in us:
            u.start()
        for u in us:
            u.join()
        stop.append(1)
        if busy:
            busy.join()
        print(count[0], most[0], total[0], spins[0] > 0 if busy else True)
    """, timeout=50)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3000", "1", "3000", "True"]


@pytest.mark.parametrize("busy", [False, True], ids=["alone", "next_to_a_busy_thread"])
def test_one_cpu_queue_handoffs_keep_queue_semantics(busy):
    """Pinned to one CPU, Queue.put and SimpleQueue.put let go of the GIL around the wake of a
    getter (rule 7): the getter, and any other thread, may run inside put(). Every item still
    arrives once and in order, through put/put_nowait, a bounded queue, a greenlet that puts to
    a thread, and several getters on one queue."""
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        os.sched_setaffinity(0, {{{cpu}}})
        from pyconc import threading, queue
        import pyconc.gevent as gevent
        N = 2000
        stop, spins = [], [0]
        def spin():
            while not stop:
                spins[0] += 1
        busy = threading.Thread(target=spin, daemon=True) if {busy} else None
        if busy:
            busy.start()
        out = []
        for make in (queue.Queue, queue.SimpleQueue, lambda: queue.Queue(1), queue.LifoQueue):
            a, b = make(), make()
            def echo():
                for _ in range(N):
                    b.put(a.get(timeout=20))
            t = threading.Thread(target=echo); t.start()
            got = []
            for i in range(N):
                (a.put if i % 2 else a.put_nowait)(i)
                got.append(b.get(timeout=20))
            t.join(20)
            out.append(got == list(range(N)))
        q, seen = queue.Queue(), []
        def getter():
            while (x := q.get(timeout=20)) is not None:
                seen.append(x)
        gs = [threading.Thread(target=getter) for _ in range(3)]
        for g in gs:
            g.start()
        def producer():                  # a greenlet putting to sleeping threads
            for i in range(N):
                q.put(i)
                if i % 50 == 0:
                    gevent.sleep(0)
            for _ in gs:
                q.put(None)
        gevent.spawn(producer).join()
        for g in gs:
            g.join(20)
        out.append(sorted(seen) == list(range(N)))
        stop.append(1)
        if busy:
            busy.join()
        print(out, spins[0] > 0 if busy else True)
    """, timeout=50)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[True,", "True,", "True,", "True,", "True]", "True"]


HUB_PINGPONG = """
import os, socket, threading
{pin}
from pyconc import _core
import pyconc.gevent as gevent
from pyconc.gevent import socket as gsocket
a, b = socket.socketpair()
ga = gsocket.socket(fileno=a.detach())

def echo():                      # an OS thread with the stdlib's blocking socket: never spins
    while True:
        d = b.recv(64)
        if not d:
            break
        b.sendall(d)

t = threading.Thread(target=echo)
t.start()
before = _core._spin_info()["spins_woken_ranout_descheduled"]

def pingpong():                  # a greenlet: its waits park it on the hub
    for i in range({n}):
        ga.sendall(b"x")
        assert ga.recv(64) == b"x"
    ga.close()

gevent.spawn(pingpong).join()
t.join()
after = _core._spin_info()["spins_woken_ranout_descheduled"]
print([y - x for x, y in zip(before, after)])
"""


def hub_spins(pin, n):
    code = HUB_PINGPONG.format(pin=pin, n=n)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    return eval(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_the_hub_spins_before_it_sleeps_on_two_cpus():
    """A hub whose descriptors become ready within microseconds polls a little before it sleeps
    in epoll_wait (issue 12: a sleeping server costs its peer a wake-up per message); the first
    park at a new site always spins."""
    spins, woken, ranout, desched = hub_spins("", 200)
    assert spins > 0 and spins == woken + ranout + desched


def test_the_hub_does_not_spin_on_one_cpu():
    cpu = min(os.sched_getaffinity(0))
    assert hub_spins(f"os.sched_setaffinity(0, {{{cpu}}})", 200) == [0, 0, 0, 0]


def test_a_hub_whose_waits_are_long_stops_spinning():
    """Timer waits that no I/O cuts short: the budget halves at each spin that runs out, then
    probes back off, so 500 sleeps of 1 ms spin a few times, not 500 times."""
    r = run_python("""
        from pyconc import _core
        import pyconc.gevent as gevent
        before = _core._spin_info()["spins_woken_ranout_descheduled"][0]
        for _ in range(500):
            gevent.sleep(0.001)
        print(_core._spin_info()["spins_woken_ranout_descheduled"][0] - before)
    """)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) <= 25
