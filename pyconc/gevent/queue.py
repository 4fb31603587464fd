"""pyconc.gevent.queue -- gevent's queues on pyconc's C queues.

SimpleQueue, Queue (= JoinableQueue), PriorityQueue and LifoQueue are the same C queues as
pyconc.queue's (so a queue can connect greenlets of several threads' hubs and plain threads),
with gevent's API: maxsize None (or <= 0) means unbounded and reads None, Queue(0) warns, peek,
iteration until a StopIteration item, join(timeout) -> bool, len(), and in the hub greenlet
itself get/peek/put never wait (Empty/Full instead). Channel is a rendezvous: put waits for a
getter.
"""
import collections
import warnings
from queue import Empty, Full

from .. import _core
from ..greenlet import getcurrent
from .. import threading as _threading
from .timeout import Timeout, _timeout_call

__all__ = ['SimpleQueue', 'Queue', 'PriorityQueue', 'LifoQueue', 'JoinableQueue', 'Channel',
           'Empty', 'Full', 'ShutDown']

ShutDown = _core.ShutDown
_get_hub_if_exists = _core._get_hub_if_exists


class _Absent:
    """A name gevent's class does not have (the C base type does): AttributeError."""

    def __init__(self, name):
        self.name = name

    def __get__(self, obj, owner=None):
        raise AttributeError(f"{(owner or type(obj)).__name__!r} object has no attribute "
                             f"{self.name!r}")


def _in_hub():
    hub = _get_hub_if_exists()
    return hub is not None and getcurrent() is hub


def _check_timeout(block, timeout):
    if block and timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class _GeventQueueMixin:
    """gevent's SimpleQueue API over a C queue (the concrete classes add the C base)."""

    _base = None   # the C queue class (set by each concrete class)

    def __init__(self, maxsize=None, items=(), _warn_depth=2):
        if maxsize is not None and maxsize <= 0:
            if maxsize == 0:
                warnings.warn('Queue(0) now equivalent to Queue(None); if you want a channel, '
                              'use Channel', DeprecationWarning, stacklevel=_warn_depth)
            maxsize = None
        self._base.__init__(self, maxsize or 0)
        _core.get_hub()   # as gevent's: this thread's waits go through its hub from now on
        for item in items:
            self._base.put_nowait(self, item)

    @property
    def maxsize(self):
        n = self._base.maxsize.__get__(self)
        return n if n > 0 else None

    @maxsize.setter
    def maxsize(self, nv):
        self._base.maxsize.__set__(self, -1 if nv is None or nv <= 0 else nv)

    @property
    def queue(self):
        """The items, oldest first, as gevent's deque (a snapshot: the items live in C)."""
        return collections.deque(self._snapshot())

    @property
    def getters(self):
        return [None] * self._getters

    @property
    def putters(self):
        return [None] * self._putters

    def copy(self):
        return type(self)(self.maxsize, self._snapshot())

    def __repr__(self):
        return '<%s at %s%s>' % (type(self).__name__, hex(id(self)), self._format())

    def __str__(self):
        return '<%s%s>' % (type(self).__name__, self._format())

    def _format(self):
        result = []
        if self.maxsize is not None:
            result.append('maxsize=%r' % (self.maxsize, ))
        items = self._snapshot()
        if items:
            result.append('queue=%r' % (collections.deque(items), ))
        if self._getters:
            result.append('getters[%s]' % self._getters)
        if self._putters:
            result.append('putters[%s]' % self._putters)
        return ' ' + ' '.join(result) if result else ''

    def __len__(self):
        return self.qsize()

    def __bool__(self):
        return True

    def put(self, item, block=True, timeout=None):
        """Put item in; with block, wait for room (Full after timeout); in the hub greenlet
        itself, never wait."""
        if not block or _in_hub():
            return self._base.put(self, item, False)
        if isinstance(timeout, Timeout):
            return _timeout_call(timeout, self._base.put, self, item, True)
        if timeout is not None and timeout < 0 and self.full():
            raise Full
        return self._base.put(self, item, True, timeout)

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        """Remove and return an item; with block, wait for one (Empty after timeout); in the hub
        greenlet itself, never wait."""
        if self.qsize():
            return self._base.get(self, False)
        if self.is_shutdown:
            raise ShutDown
        if isinstance(timeout, Timeout):
            return _timeout_call(timeout, self._base.get, self, True)
        _check_timeout(block, timeout)
        if not block or _in_hub():
            raise Empty
        return self._base.get(self, True, timeout)

    def get_nowait(self):
        return self.get(False)

    def peek(self, block=True, timeout=None):
        """The item get() would return, left in the queue."""
        if self.qsize():
            return self._peek(False)
        if self.is_shutdown:
            raise ShutDown
        if isinstance(timeout, Timeout):
            return _timeout_call(timeout, self._peek, True)
        _check_timeout(block, timeout)
        if not block or _in_hub():
            raise Empty
        return self._peek(True, timeout)

    def peek_nowait(self):
        return self.peek(False)

    def __iter__(self):
        return self

    def __next__(self):
        result = self.get()
        if result is StopIteration:
            raise result
        return result

    next = __next__


class SimpleQueue(_GeventQueueMixin, _core.Queue):
    """gevent's SimpleQueue: a FIFO queue with gevent's API, without task tracking."""
    _base = _core.Queue
    task_done = _Absent('task_done')
    join = _Absent('join')
    unfinished_tasks = _Absent('unfinished_tasks')
    shutdown = _Absent('shutdown')


class _Tasks:
    """Task tracking and shutdown (gevent's Queue over SimpleQueue)."""

    def __init__(self, maxsize=None, items=(), unfinished_tasks=None):
        _GeventQueueMixin.__init__(self, maxsize, items, _warn_depth=3)
        if unfinished_tasks:
            self.unfinished_tasks = unfinished_tasks
        elif items:
            self.unfinished_tasks = len(items)
        else:
            self.unfinished_tasks = 0

    def copy(self):
        return type(self)(self.maxsize, self._snapshot(), self.unfinished_tasks)

    def _format(self):
        result = _GeventQueueMixin._format(self)
        if self.unfinished_tasks:
            result += ' tasks=%s' % self.unfinished_tasks
        return result

    def join(self, timeout=None):
        """Wait until every item put has been marked done with task_done(); True if so,
        False if the timeout passed first."""
        if timeout is None:
            self._base.join(self)
            return True
        return self._join_timeout(timeout)


class Queue(_Tasks, SimpleQueue):
    """gevent's Queue (and JoinableQueue): FIFO, with task_done()/join() and shutdown()."""
    _base = _core.Queue
    task_done = _core.Queue.task_done
    shutdown = _core.Queue.shutdown
    unfinished_tasks = _core.Queue.unfinished_tasks


JoinableQueue = Queue


class PriorityQueue(Queue, _core.PriorityQueue):
    """Lowest first (items are compared; equal ones leave in the order they came)."""

    @property
    def queue(self):
        return self._snapshot()


class LifoQueue(Queue, _core.LifoQueue):
    """Last in, first out."""

    @property
    def queue(self):
        return self._snapshot()


class Channel:
    """A rendezvous: put() waits until a get() takes the item, and get() until a put() hands
    one over. maxsize must be 1."""

    def __init__(self, maxsize=1):
        if maxsize != 1:
            raise ValueError("Channels have a maxsize of 1")
        self._cond = _threading.Condition(_threading.Lock())
        _core.get_hub()
        self._putters = collections.deque()   # [item, taken] records, oldest first
        self._getters = 0
        self.is_shutdown = False

    @property
    def maxsize(self):
        return 1

    @property
    def balance(self):
        return len(self._putters) - self._getters

    def __repr__(self):
        return '<%s at %s %s>' % (type(self).__name__, hex(id(self)), self._format())

    def __str__(self):
        return '<%s %s>' % (type(self).__name__, self._format())

    def _format(self):
        result = ''
        if self._getters:
            result += ' getters[%s]' % self._getters
        if self._putters:
            result += ' putters[%s]' % len(self._putters)
        return result

    def qsize(self):
        return 0

    def empty(self):
        return True

    def full(self):
        return True

    def put(self, item, block=True, timeout=None):
        """Hand item to a get(): at once if a get() waits unmatched, else wait for one (Full
        after the timeout, or at once when not blocking)."""
        with self._cond:
            if self._getters > len(self._putters):
                self._putters.append([item, True])   # a waiting get() takes it
                self._cond.notify_all()
                return
            if not block or _in_hub():
                raise Full
            record = [item, False]
            self._putters.append(record)
            self._cond.notify_all()
            try:
                ok = _timeout_call(timeout, self._cond.wait_for, lambda: record[1])
            except BaseException:
                if not record[1]:
                    self._putters.remove(record)
                raise
            if not ok:
                self._putters.remove(record)
                raise Full

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        """Take an item from a put(): at once if one waits, else wait for one (Empty after the
        timeout, or at once when not blocking)."""
        with self._cond:
            if not self._putters:
                if not block or _in_hub():
                    raise Empty
                self._getters += 1
                try:
                    if not _timeout_call(timeout, self._cond.wait_for, lambda: self._putters):
                        raise Empty
                finally:
                    self._getters -= 1
            record = self._putters.popleft()
            record[1] = True
            self._cond.notify_all()
            return record[0]

    def get_nowait(self):
        return self.get(False)

    def __iter__(self):
        return self

    def __next__(self):
        result = self.get()
        if result is StopIteration:
            raise result
        return result

    next = __next__
