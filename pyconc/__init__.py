"""pyconc -- the Python concurrency toolbox in C.

Drop-in faces: ``pyconc.threading``, ``pyconc.queue``, ``pyconc.greenlet``,
``pyconc.multiprocessing`` and ``pyconc.gevent``. Every blocking primitive waits through one C
mechanism that works for OS threads and, with the coroutine hub, for coroutines.

The most used names are re-exported here (``from pyconc import Thread, Queue, spawn``); each face
is imported on first use of one of its names, so ``from pyconc import multiprocessing`` does not
pay for the others.
"""
__version__ = "0.1.0"

_THREADING = ("Thread", "Timer", "Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
              "Event", "Barrier", "BrokenBarrierError", "TIMEOUT_MAX", "active_count",
              "current_thread", "enumerate", "get_ident", "local", "main_thread")
_QUEUE = ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "Empty", "Full", "ShutDown")
_SUBMODULES = ("threading", "queue", "greenlet", "multiprocessing", "gevent", "selectors")

__all__ = ["queue", "threading"] + list(_QUEUE) + list(_THREADING)


def __getattr__(name):
    import importlib
    if name in _THREADING:
        value = getattr(importlib.import_module(".threading", __name__), name)
    elif name in _QUEUE:
        value = getattr(importlib.import_module(".queue", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module("." + name, __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
