"""pyconc.multiprocessing's shared objects driven from several processes (and threads inside
them) at once, with invariants instead of an oracle: nothing lost, duplicated or corrupted,
mutual exclusion holds, counts consistent, every waiter eventually returns (a process still
running after HANG_S fails the test as a hang and is killed).

Each example forks its processes with pyconc's Process; what they observe comes back through a
Pipe (a second channel, so that a broken queue cannot hide its own loss)."""
import collections
import os
import queue as std_queue
import time

import hypothesis.strategies as st
import pytest
from hypothesis import Phase, given

from pyconc import multiprocessing as mp
from pyconc import threading as pc_threading

from ..support import run_python
from .common import tally
from .profiles import HANG_S, fuzz_settings as _fuzz_settings, steps

pytestmark = pytest.mark.timeout(300)


def fuzz_settings(n):
    # No shrinking: a failing example with processes may take HANG_S per try, and flaky
    # scheduling makes shrinking unreliable anyway. The failing example is printed as drawn.
    return _fuzz_settings(n, phases=[Phase.explicit, Phase.reuse, Phase.generate])


def child(body):
    """Wraps a child's body: what it returns (or the exception it raised) goes to conn."""
    def run(conn, *args):
        try:
            conn.send(("ok", body(*args)))
        except BaseException as exc:
            conn.send(("raise", repr(exc)))
        finally:
            conn.close()
    return run


def start(targets):
    """Starts a process per (function, args); returns them. Forked, whatever the running
    version's default start method (forkserver from 3.14): the children's bodies are closures
    over the drawn example, which cannot be pickled."""
    procs = [mp.get_context("fork").Process(target=fn, args=args, daemon=True)
             for fn, args in targets]
    for p in procs:
        p.start()
    return procs


def collect(conns, procs):
    """The reports of the children (read before they exit: a big report must not fill the pipe
    while the parent waits in join), one per connection, from procs[i] for conns[i]. Fails at
    once if a child dies without a report, or after HANG_S if one neither reports nor dies."""
    out = []
    deadline = time.monotonic() + HANG_S
    for c, p in zip(conns, procs):
        while not c.poll(0.02):
            if p.exitcode is not None and not c.poll(0):
                stop(procs)
                raise AssertionError(f"a child died (exit code {p.exitcode}) without a report")
            if time.monotonic() > deadline:
                stop(procs)
                raise AssertionError(f"hang: a child did not report within {HANG_S} s")
        out.append(c.recv())
        c.close()
    return out


def stop(procs):
    """Joins procs; one still running after HANG_S is killed and fails the test."""
    hung = []
    for p in procs:
        p.join(HANG_S if p.exitcode is None else 0)
        if p.exitcode is None:
            hung.append(p.pid)
            p.kill()
            p.join()
    assert not hung, f"hang: processes {hung} still running after {HANG_S} s"
    return [p.exitcode for p in procs]


def payload(tag, size):
    return bytes([hash(tag) & 0xFF]) * size


# -- queues -------------------------------------------------------------------------------------

sizes = st.one_of(st.integers(0, 200), st.integers(1000, 70000),
                  st.sampled_from([300 * 1024, 1 << 20, 3 << 20]))


@fuzz_settings(25)
@given(joinable=st.booleans(), maxsize=st.integers(0, 4), n_cons=st.integers(1, 3),
       producers=st.lists(st.tuples(st.integers(1, 2),  # threads in the producer process
                                    st.lists(sizes, min_size=1, max_size=steps(25))),
                          min_size=1, max_size=3),
       timeouts=st.booleans())
def test_queue_between_processes(joinable, maxsize, n_cons, producers, timeouts):
    q = (mp.JoinableQueue if joinable else mp.Queue)(maxsize)
    total = sum(n_threads * len(items) for n_threads, items in producers)
    tally(1, 2 * total)

    def produce(p, n_threads, items):
        over = []

        def thread(t):
            for i, size in enumerate(items):
                tag = (p, t, i)
                q.put((tag, payload(tag, size)))
                if maxsize and q.qsize() > maxsize:
                    over.append(q.qsize())
        ts = [pc_threading.Thread(target=thread, args=(t,)) for t in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return over

    def consume():
        got, bad = [], []
        while True:
            if timeouts:
                try:
                    item = q.get(timeout=0.01)
                except std_queue.Empty:
                    continue
            else:
                item = q.get()
            if joinable:
                q.task_done()
            if item is None:
                return got, bad
            tag, data = item
            if data != payload(tag, len(data)):
                bad.append(tag)
            got.append(tag)
    pipes = [mp.Pipe() for _ in range(len(producers) + n_cons)]
    targets = [(child(produce), (pipes[p][1], p, n, items))
               for p, (n, items) in enumerate(producers)]
    targets += [(child(consume), (pipes[len(producers) + c][1],)) for c in range(n_cons)]
    procs = start(targets)
    np = len(producers)
    try:
        reports = collect([a for a, _ in pipes[:np]], procs[:np])
    except AssertionError:
        for p in procs[np:]:
            p.kill()
        stop(procs[np:])
        raise
    for _ in range(n_cons):
        q.put(None)
    reports += collect([a for a, _ in pipes[np:]], procs[np:])
    assert stop(procs) == [0] * len(procs)
    assert all(r[0] == "ok" for r in reports), reports
    overs = [x for r in reports[:len(producers)] for x in r[1]]
    assert overs == [], f"qsize() above maxsize {maxsize}: {overs}"
    got = [tag for r in reports[len(producers):] for tag in r[1][0]]
    corrupt = [tag for r in reports[len(producers):] for tag in r[1][1]]
    sent = [(p, t, i) for p, (n, items) in enumerate(producers)
            for t in range(n) for i in range(len(items))]
    assert corrupt == []
    assert sorted(got) == sorted(sent), "items lost or duplicated"
    assert q.qsize() == 0
    if joinable:
        joiner = pc_threading.Thread(target=q.join, daemon=True)
        joiner.start()
        joiner.join(HANG_S)
        assert not joiner.is_alive(), "hang: join() after every task_done()"


# -- locks, semaphores, Condition: mutual exclusion across processes ----------------------------

@fuzz_settings(25)
@given(kind=st.sampled_from(["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition"]),
       permits=st.integers(1, 3),
       programs=st.lists(st.lists(st.tuples(st.sampled_from(["block", "nonblock", 0.0005, 0.005]),
                                            st.integers(1, 3), st.integers(0, 3)),
                                  min_size=1, max_size=steps(40)),
                         min_size=2, max_size=4))
def test_mutual_exclusion_between_processes(kind, permits, programs):
    if kind in ("Semaphore", "BoundedSemaphore"):
        lock, limit = getattr(mp, kind)(permits), permits
    else:
        lock, limit = getattr(mp, kind)(), 1
    reentrant = kind in ("RLock", "Condition")
    counters = mp.RawArray("i", 3)  # inside, most inside at once, violations
    meta = mp.Lock()
    tally(1, sum(map(len, programs)))

    def program(ops):
        taken = 0
        for mode, depth, work in ops:
            depth = depth if reentrant else 1
            held = 0
            for _ in range(depth):
                if mode == "block":
                    ok = lock.acquire()
                elif mode == "nonblock":
                    ok = lock.acquire(False)
                else:
                    ok = lock.acquire(True, mode)
                if not ok:
                    break
                held += 1
            if held:
                taken += 1
                with meta:
                    counters[0] += 1
                    counters[1] = max(counters[1], counters[0])
                    if counters[0] > limit:
                        counters[2] += 1
                for _ in range(work):
                    os.sched_yield()
                with meta:
                    counters[0] -= 1
            for _ in range(held):
                lock.release()
        return taken
    pipes = [mp.Pipe() for _ in programs]
    procs = start([(child(program), (w, ops)) for (_, w), ops in zip(pipes, programs)])
    reports = collect([r for r, _ in pipes], procs)
    assert stop(procs) == [0] * len(procs)
    assert all(r[0] == "ok" for r in reports), reports
    assert counters[2] == 0, f"{counters[1]} processes inside a {kind} that admits {limit}"
    assert counters[0] == 0
    if kind in ("Semaphore", "BoundedSemaphore"):
        assert lock.get_value() == permits
    else:
        assert lock.acquire(False)
        lock.release()


# -- Event: one setter, several waiters -----------------------------------------------------

@fuzz_settings(10)
@given(rounds=st.integers(1, steps(400)), n_waiters=st.integers(1, 3),
       waiter_timeout=st.sampled_from([0, 0.0005, 0.005]))
def test_event_between_processes(rounds, n_waiters, waiter_timeout):
    # Only the setter changes the event, so what it reads right after its own set()/clear()
    # must be what it wrote; waiters only wait and read.
    ev = mp.Event()
    done = mp.Event()
    tally(1, rounds * 6)

    def setter():
        wrong = collections.Counter()
        for _ in range(rounds):
            ev.set()
            wrong["is_set() False after set()"] += not ev.is_set()
            wrong["wait(0) False after set()"] += not ev.wait(0)
            ev.clear()
            wrong["is_set() True after clear()"] += ev.is_set()
            wrong["wait(0) True after clear()"] += ev.wait(0)
        ev.set()
        done.set()
        return {k: v for k, v in wrong.items() if v}

    def waiter():
        n = 0
        while not done.is_set():
            ev.wait(waiter_timeout)
            ev.is_set()
            n += 1
        return ev.wait(HANG_S)  # stays set: True at once
    pipes = [mp.Pipe() for _ in range(n_waiters + 1)]
    procs = start([(child(setter), (pipes[0][1],))] +
                  [(child(waiter), (w,)) for _, w in pipes[1:]])
    reports = collect([r for r, _ in pipes], procs)
    assert stop(procs) == [0] * len(procs)
    assert reports[0][0] == "ok", reports[0]
    # reports[0][1] (what the setter read back wrong) is known not to be empty now and then:
    # issue 9 item 6, test_event_reads_back_what_its_only_setter_wrote below. Check it here,
    # `assert reports[0][1] == {}`, when that test passes.
    assert all(r == ("ok", True) for r in reports[1:]), reports


@pytest.mark.timeout(120)
def test_event_reads_back_what_its_only_setter_wrote():
    ev, done = mp.Event(), mp.Event()

    def waiter():
        while not done.is_set():
            ev.wait(0.005)
            ev.is_set()
    procs = start([(waiter, ())] * 3)
    wrong = collections.Counter()
    try:
        for _ in range(3):  # 100,000 rounds showed 20 to 200 wrong reads (2 CPUs)
            for _ in range(100_000):
                ev.set()
                wrong["is_set() False after set()"] += not ev.is_set()
                wrong["wait(0) False after set()"] += not ev.wait(0)
                ev.clear()
                wrong["is_set() True after clear()"] += ev.is_set()
                wrong["wait(0) True after clear()"] += ev.wait(0)
            if +wrong:
                break
    finally:
        done.set()
        stop(procs)
    assert +wrong == {}


# -- Condition: tokens across processes ------------------------------------------------------

@fuzz_settings(12)
@given(producers=st.lists(st.lists(st.tuples(st.integers(1, 3),
                                             st.sampled_from(["notify", "notify_n", "all"])),
                                   min_size=1, max_size=steps(20)),
                          min_size=1, max_size=2),
       n_consumers=st.integers(1, 3), timeouts=st.booleans())
def test_condition_between_processes(producers, n_consumers, timeouts):
    cond = mp.Condition()
    tokens = mp.RawValue("i", 0)
    total = sum(n for p in producers for n, _ in p)
    share = [total // n_consumers + (c < total % n_consumers) for c in range(n_consumers)]
    finished = mp.Event()
    tally(1, 2 * total)

    def producer(steps_):
        for n, how in steps_:
            with cond:
                tokens.value += n
                if how == "notify":
                    cond.notify()
                elif how == "notify_n":
                    cond.notify(n)
                else:
                    cond.notify_all()

    def consumer(need):
        got = 0
        while got < need:
            with cond:
                if cond.wait_for(lambda: tokens.value > 0, 0.01 if timeouts else None):
                    tokens.value -= 1
                    got += 1
        return got

    def last_call():
        # a wake-up taken by a consumer that barged in: re-notify until everyone is served
        while not finished.wait(0.05):
            with cond:
                cond.notify_all()
    pipes = [mp.Pipe() for _ in range(len(producers) + n_consumers)]
    procs = start([(child(producer), (w, p)) for (_, w), p in zip(pipes, producers)] +
                  [(child(consumer), (w, n)) for (_, w), n in zip(pipes[len(producers):], share)])
    nudger = pc_threading.Thread(target=last_call, daemon=True)
    nudger.start()
    try:
        reports = collect([r for r, _ in pipes], procs)
    finally:
        finished.set()
        nudger.join(HANG_S)
    assert stop(procs) == [0] * len(procs)
    assert all(r[0] == "ok" for r in reports), reports
    assert [r[1] for r in reports[len(producers):]] == share
    assert tokens.value == 0


# -- Barrier, Value, Array --------------------------------------------------------------------

@fuzz_settings(12)
@given(parties=st.integers(1, 4), rounds=st.integers(1, steps(30)),
       increments=st.integers(0, steps(300)))
def test_barrier_and_values_between_processes(parties, rounds, increments):
    b = mp.Barrier(parties)
    counter = mp.Value("i", 0)
    arr = mp.Array("d", parties)
    tally(1, parties * (rounds + increments))

    def party(p):
        indices = []
        for _ in range(rounds):
            indices.append(b.wait(HANG_S))
        for _ in range(increments):
            with counter.get_lock():
                counter.value += 1
            arr[p] += 1.0
        return indices
    pipes = [mp.Pipe() for _ in range(parties)]
    procs = start([(child(party), (w, p)) for p, (_, w) in enumerate(pipes)])
    reports = collect([r for r, _ in pipes], procs)
    assert stop(procs) == [0] * len(procs)
    assert all(r[0] == "ok" for r in reports), reports
    for r in range(rounds):
        assert sorted(rep[1][r] for rep in reports) == list(range(parties)), f"round {r}"
    assert counter.value == parties * increments
    assert list(arr) == [float(increments)] * parties
    assert b.n_waiting == 0 and not b.broken


# -- Pipe: an echo across processes -----------------------------------------------------------

messages = st.lists(st.one_of(
    st.tuples(st.just("obj"), st.recursive(st.one_of(st.integers(), st.text(max_size=4),
                                                     st.binary(max_size=30)),
                                           lambda s: st.lists(s, max_size=3), max_leaves=8)),
    st.tuples(st.just("bytes"), sizes)), min_size=1, max_size=steps(30))


@fuzz_settings(20)
@given(duplex=st.booleans(), msgs=messages)
def test_pipe_between_processes(duplex, msgs):
    tally(1, 2 * len(msgs))
    if duplex:
        here, there = mp.Pipe()
        back_here = here
    else:
        there, here = mp.Pipe(False)        # child reads there, we write here
        back_here, back_there = mp.Pipe(False)

    def echo():
        for kind, _ in msgs:
            if kind == "obj":
                reply.send(there.recv())
            else:
                reply.send_bytes(there.recv_bytes())
    reply = there if duplex else back_there
    procs = start([(echo, ())])
    try:
        for kind, value in msgs:
            if kind == "obj":
                here.send(value)
                assert back_here.poll(HANG_S), "hang: no echo"
                assert back_here.recv() == value
            else:
                data = payload(("b", value), value)
                here.send_bytes(data)
                assert back_here.poll(HANG_S), "hang: no echo"
                assert back_here.recv_bytes() == data
    finally:
        assert stop(procs) == [0]
    here.close()
    if not duplex:
        back_here.close()


@pytest.mark.timeout(60)
def test_ring_growth_under_a_waiting_thread():
    r = run_python("""
        import threading, time
        from pyconc import multiprocessing as mp
        q = mp.Queue()
        got = []
        t = threading.Thread(target=lambda: got.append(len(q.get())))
        t.start()
        time.sleep(0.3)
        q.put(b"x" * (4 << 20))
        t.join(20)
        print(got)
    """, timeout=40)
    assert (r.returncode, r.stdout.strip()) == (0, "[4194304]"), r.stderr[-2000:]
