"""pyconc -- the Python concurrency toolbox in C.

Drop-in faces: ``pyconc.threading``, ``pyconc.queue``, ``pyconc.greenlet`` and
``pyconc.multiprocessing`` (imported on demand); ``pyconc.gevent`` follows. Every blocking primitive waits through one C
mechanism that works for OS threads and, with the coroutine hub, for coroutines.
"""
from .threading import (Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Event, Lock,
                        RLock, Semaphore, Thread, Timer, TIMEOUT_MAX, active_count,
                        current_thread, enumerate, get_ident, local, main_thread)
from .queue import Empty, Full, LifoQueue, PriorityQueue, Queue, ShutDown, SimpleQueue
from . import queue, threading

__version__ = "0.1.0"

__all__ = ["queue", "Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "Empty", "Full",
           "ShutDown", "threading", "Thread", "Timer", "Lock", "RLock", "Condition", "Semaphore",
           "BoundedSemaphore", "Event", "Barrier", "BrokenBarrierError", "TIMEOUT_MAX",
           "active_count", "current_thread", "enumerate", "get_ident", "local", "main_thread"]
