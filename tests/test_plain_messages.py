"""Messages through mp.Queue, Pipe and Pool keep pickle's meaning now that plain data is pickled
in C (csrc/core/plain.c): sharing and recursion survive, the bytes on the wire are pickles any
reader takes, and objects C declines travel as before. The stdlib's multiprocessing is the
oracle: each check runs the same body on both."""
import multiprocessing as std_mp
import multiprocessing.connection as std_conn
import os
import pickle

import pytest

import pyconc.multiprocessing as pc_mp

pytestmark = pytest.mark.timeout(60)

MODS = [pytest.param(std_mp, id="stdlib"), pytest.param(pc_mp, id="pyconc")]


def samples():
    shared = [1, 2]
    rec = []
    rec.append(rec)
    return {
        "tuple": (7, 123456, 1.5, "tag", b"raw", None, True),
        "nested": {"k": [1, (2, 3.5)], "n": {"x": -2**63}},
        "shared": [shared, shared],
        "recursive": rec,
        "big int": 2**70,
        "set": {1, 2, 3},
        "surrogate": "a\ud800b",
        "long list": list(range(5000)),
    }


def check(name, sent, got):
    if name == "shared":
        assert got == sent and got[0] is got[1]
    elif name == "recursive":
        assert isinstance(got, list) and got[0] is got
    else:
        assert got == sent and type(got) is type(sent)


def _echo_queue(q_in, q_out):
    for _ in range(len(samples())):
        q_out.put(q_in.get())


@pytest.mark.parametrize("mod", MODS)
def test_queue_between_processes_keeps_pickles_meaning(mod):
    ctx = mod.get_context("fork")
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_echo_queue, args=(q_in, q_out))
    p.start()
    items = samples()
    for obj in items.values():
        q_in.put(obj)
    for name, obj in items.items():
        check(name, obj, q_out.get(timeout=20))
    p.join(20)
    assert p.exitcode == 0


@pytest.mark.parametrize("mod", MODS)
def test_pipe_keeps_pickles_meaning(mod):
    a, b = mod.Pipe()
    for name, obj in samples().items():
        a.send(obj)
        check(name, obj, b.recv())
        # the bytes on the wire are a pickle, whoever reads them
        a.send(obj)
        check(name, obj, pickle.loads(b.recv_bytes()))


def test_a_stdlib_connection_reads_what_pyconc_sends_and_back():
    a, b = pc_mp.Pipe()
    Connection = type(a)
    a.close()
    b.close()
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pc_w = Connection(w, readable=False)
    std_r = std_conn.Connection(r, writable=False)
    std_w = std_conn.Connection(w2, readable=False)
    pc_r = Connection(r2, writable=False)
    try:
        for name, obj in samples().items():
            if name == "long list":
                continue        # beyond a pipe's buffer with both ends in one thread
            pc_w.send(obj)
            check(name, obj, std_r.recv())
            std_w.send(obj)
            check(name, obj, pc_r.recv())
    finally:
        for c in (pc_w, std_r, std_w, pc_r):
            c.close()


def test_queue_get_bytes_is_a_pickle_and_put_bytes_of_pickles_reads_back():
    q = pc_mp.Queue()
    for name, obj in samples().items():
        q.put(obj)
        check(name, obj, pickle.loads(q.get_bytes(timeout=5)))
        q.put_bytes(pickle.dumps(obj, 5))
        check(name, obj, q.get(timeout=5))


def _mutate(arg):
    arg[0].append("x")          # arg is [l, l]: both names see it in the worker too
    return arg


@pytest.mark.parametrize("mod", MODS)
def test_pool_tasks_and_results_keep_pickles_meaning(mod):
    with mod.get_context("fork").Pool(2) as pool:
        items = samples()
        got = pool.map(_identity, list(items.values()), chunksize=1)
        for (name, obj), back in zip(items.items(), got):
            check(name, obj, back)
        shared = []
        out = pool.apply_async(_mutate, ([shared, shared],)).get(20)
        assert out == [["x"], ["x"]] and out[0] is out[1]


def _identity(x):
    return x
