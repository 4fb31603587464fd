"""Subprocess side of test_lifecycle.py: calls every method of one type on objects whose __init__
never ran, failed, or ran twice, and prints one JSON line per call.

    python lifecycle_probe.py IMPL TYPE SITUATION

IMPL is "pyconc" or "oracle" (the stdlib's class, or the greenlet package's). Before each call the
probe prints {"start": call} and flushes, so that a crash names the call that crashed. Each call
runs in a daemon thread joined with a deadline: a call that never returns is reported as
["blocks"] instead of hanging the run.
"""
import json
import re
import sys
import threading as _std_threading

DEADLINE = 2.0


def _load(impl):
    """name -> (type or factory, constructor args that succeed, args that make __init__ fail)."""
    if impl == "pyconc":
        from pyconc import queue as Q, threading as T
        from pyconc import _core
        from pyconc.multiprocessing import _shared as MP
        from pyconc.greenlet import greenlet
        lock_type, rlock_type = T.Lock, T.RLock
    else:
        import queue as Q
        import threading as T
        import _thread
        try:
            from greenlet import greenlet
        except ImportError:
            greenlet = None
        rlock_type = _thread.RLock
    types = {
        "Lock": (lock_type if impl == "pyconc" else None, (), (1,)),
        "RLock": (rlock_type, (), (1,)),
        "Condition": (T.Condition, (), (5,)),
        "Semaphore": (T.Semaphore, (2,), (-1,)),
        "BoundedSemaphore": (T.BoundedSemaphore, (2,), (-1,)),
        "Event": (T.Event, (), (1,)),
        "Barrier": (T.Barrier, (1,), ()),
        "Thread": (T.Thread, (), (1,)),
        "Queue": (Q.Queue, (2,), (1, 2)),
        "LifoQueue": (Q.LifoQueue, (2,), (1, 2)),
        "PriorityQueue": (Q.PriorityQueue, (2,), (1, 2)),
        "SimpleQueue": (Q.SimpleQueue, (), (1,)),
        "greenlet": (greenlet, (), (1, 2, 3)),
    }
    if impl == "pyconc":
        types.update({
            "SemLock": (_core.SemLock, (0, 1, 1), (7, 1, 1)),
            "MPQueue": (MP.Queue, (2,), (1, 2, 3)),
            "SharedBlock": (_core.SharedBlock, (16,), (-1,)),
            "Connection": (_core.Connection, lambda: (_fd(),), (-1,)),
        })
    return types


def _fd():
    import os
    r, w = os.pipe()
    return w


# The calls made on each type. Every call gets a fresh object. "o" is the object.
CALLS = {
    "Lock": ["o.acquire(False)", "o.release()", "o.locked()", "o.__enter__()",
             "o.__exit__(None, None, None)", "o._at_fork_reinit()", "bool(repr(o))"],
    "RLock": ["o.acquire(False)", "o.release()", "o.__enter__()", "o.__exit__(None, None, None)",
              "o._is_owned()", "o._release_save()", "o._acquire_restore((1, 1))",
              "o._recursion_count()", "o._at_fork_reinit()", "bool(repr(o))"],
    "Condition": ["o.acquire()", "o.release()", "o.wait(0)", "o.wait()",
                  "o.wait_for(lambda: False, 0)", "o.wait_for(lambda: 7)", "o.notify()",
                  "o.notify(3)", "o.notify_all()", "o.__enter__()", "o.__exit__(None, None, None)",
                  "o._is_owned()", "o._release_save()", "o._acquire_restore((1, 2))",
                  "o._at_fork_reinit()", "repr(o)", "o._lock is not None"],
    "Semaphore": ["o.acquire()", "o.acquire(False)", "o.acquire(timeout=0)",
                  "o.acquire(False, 1)", "o.release()", "o.release(2)", "o.release(0)",
                  "o.__enter__()", "o.__exit__(None, None, None)", "repr(o)", "o._value"],
    "Event": ["o.is_set()", "o.set()", "o.clear()", "o.wait(0)", "o.wait(0.01)",
              "o._at_fork_reinit()", "repr(o)"],
    "Barrier": ["o.wait(0)", "o.wait()", "o.reset()", "o.abort()", "o.parties", "o.n_waiting",
                "o.broken", "repr(o)"],
    "Thread": ["o.start()", "o.run()", "o.join()", "o.join(0)", "o.is_alive()", "o.name",
               "o.daemon", "o.ident", "o.native_id", "repr(o)", "setattr(o, 'name', 'x')",
               "setattr(o, 'daemon', True)", "o._target"],
    "Queue": ["o.put(1)", "o.put(1, timeout=0)", "o.put(1, False)", "o.get(timeout=0)",
              "o.get(False)", "o.put_nowait(1)", "o.get_nowait()", "o.qsize()", "o.empty()",
              "o.full()", "o.task_done()", "o.join()", "o.maxsize", "o.unfinished_tasks",
              "o._qsize()", "o._put(1)", "o._get()", "o.shutdown()"],
    "SimpleQueue": ["o.put(1)", "o.get(timeout=0)", "o.get(False)", "o.put_nowait(1)",
                    "o.get_nowait()", "o.qsize()", "o.empty()"],
    "greenlet": ["o.switch()", "o.throw()", "o.dead", "bool(o)", "o.gr_frame", "o.run",
                 "o.parent is not None"],
    "SemLock": ["o.acquire()", "o.acquire(False)", "o.release()", "o._count()", "o._is_mine()",
                "o._get_value()", "o._is_zero()", "o.__enter__()", "o.__exit__()", "o.kind",
                "o.maxvalue"],
    "MPQueue": ["o.put(1)", "o.get(timeout=0)", "o.get(False)", "o.put_nowait(1)",
                "o.get_nowait()", "o.qsize()", "o.empty()", "o.full()", "o.close()",
                "o.join_thread()", "o.cancel_join_thread()", "bool(repr(o))"],
    "SharedBlock": ["len(memoryview(o))", "bytes(memoryview(o))[:2]"],
    "Connection": ["o.send_bytes(b'x')", "o.send(1)", "o.poll()", "o.fileno() >= 0",
                   "o.closed", "o.readable", "o.writable", "o.close()"],
}
CALLS["BoundedSemaphore"] = CALLS["Semaphore"] + ["o._initial_value"]
CALLS["LifoQueue"] = CALLS["PriorityQueue"] = CALLS["Queue"]


def normalize(text):
    """Addresses vary from run to run."""
    return re.sub(r"0x[0-9a-f]+", "0x?", text)


def guarded(expr, build):
    """Builds the object (build() -> (o, init outcome)) and evaluates expr on it, both in a daemon
    thread (a greenlet must be used in the thread that made it): returns (init, outcome), where
    outcome is ["ret", repr] / ["exc", type, message] / ["blocks"]."""
    out, init = [], []

    def run():
        o, made = build()
        init.append(made)
        try:
            value = eval(expr, {"o": o})
        except BaseException as exc:  # every exception is an outcome to compare
            out.append(["exc", type(exc).__name__, normalize(str(exc))])
        else:
            out.append(["ret", normalize(repr(value))])

    t = _std_threading.Thread(target=run, daemon=True)
    t.start()
    t.join(DEADLINE)
    return (init[0] if init else None), (out[0] if out else ["blocks"])


def make(tp, situation, good, bad):
    """The object for one call, and what building it did (None, or an outcome)."""
    if tp is None:
        # the stdlib's lock cannot be made these ways; it has no __init__ state at all, so the
        # oracle for every situation is a lock made the normal way
        import _thread
        return _thread.allocate_lock(), None
    if situation == "new":
        return tp.__new__(tp), None
    if situation == "subclass":
        # pyconc.Lock, as threading.Lock, refuses subclasses but pyconc's own (its gevent face's
        # LockType): the probe's subclass says it is one of those
        ns = {"__module__": "pyconc._lifecycle_probe"} if tp.__module__ == "pyconc" and \
            tp.__name__ == "Lock" else {}

        def __init__(self):
            pass
        Sub = type("Sub", (tp,), {"__init__": __init__, **ns})
        return Sub(), None
    if situation == "failed_init":
        o = tp.__new__(tp)
    elif situation in ("failed_reinit", "reinit"):
        o = tp(*(good() if callable(good) else good))
    else:
        raise ValueError(situation)
    args = good if situation == "reinit" else bad
    args = args() if callable(args) else args
    try:
        o.__init__(*args)
    except Exception as exc:
        return o, ["exc", type(exc).__name__, normalize(str(exc))]
    return o, None


def main():
    impl, name, situation = sys.argv[1:4]
    tp, good, bad = _load(impl)[name]
    for call in CALLS[name]:
        print(json.dumps({"start": call}), flush=True)
        try:
            make(tp, situation, good, bad)
        except Exception as exc:
            # the object cannot even be made this way (e.g. __new__ needs arguments)
            print(json.dumps({"call": call, "make": ["exc", type(exc).__name__,
                                                     normalize(str(exc))]}), flush=True)
            continue
        init, outcome = guarded(call, lambda: make(tp, situation, good, bad))
        print(json.dumps({"call": call, "init": init, "outcome": outcome}), flush=True)


if __name__ == "__main__":
    main()
