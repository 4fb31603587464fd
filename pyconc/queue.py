"""pyconc.queue -- a drop-in for the stdlib's ``queue``, every class in C.

Queue, LifoQueue and PriorityQueue block through pyconc's one wait mechanism (csrc/core/wait.c), so a
put or get can be interrupted by Ctrl-C and costs no allocation. ``shutdown(immediate=False)`` and
``ShutDown`` follow Python 3.13 on every supported version. PriorityQueue hands out items that
compare equal in the order they were put. ``Empty`` and ``Full`` are the stdlib's own classes.

Every operation is atomic with respect to other threads, also when it runs Python code (a
comparison of items, a subclass's hook): it then holds the queue's mutex, as the stdlib's do. A
call back into the same queue from inside such code raises RuntimeError (the stdlib deadlocks).

Not provided: the stdlib's implementation attributes ``queue``, ``mutex``, ``not_empty``,
``not_full`` and ``all_tasks_done`` (the items live in C, and the waits are wait lists, not
Conditions). A subclass may still define ``_init``/``_qsize``/``_put``/``_get`` with its own
storage, as with the stdlib.
"""
from ._core import Empty, Full, LifoQueue, PriorityQueue, Queue, ShutDown, SimpleQueue

__all__ = ['Empty', 'Full', 'ShutDown', 'Queue', 'PriorityQueue', 'LifoQueue', 'SimpleQueue']
