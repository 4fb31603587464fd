"""pyconc.gevent.queue -- gevent's queues on pyconc's C queues.

SimpleQueue, Queue (= JoinableQueue), PriorityQueue and LifoQueue are the same C queues as
pyconc.queue's (so a queue can connect greenlets of several threads' hubs and plain threads),
with gevent's API: maxsize None (or <= 0) means unbounded and reads None, Queue(0) warns, peek,
iteration until a StopIteration item, join(timeout) -> bool, len(), and in the hub greenlet
itself get/peek/put never wait (Empty/Full instead). Channel is a rendezvous: put waits for a
getter.
"""
import collections
import types
import warnings
from queue import Empty, Full

from .. import _core
from ..greenlet import getcurrent
from .exceptions import InvalidSwitchError
from .hub import Waiter, get_hub
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


class _ItemsView:
    """q.queue: the items as gevent's attribute holds them (a deque, oldest first; a list for
    LifoQueue and PriorityQueue), a new copy at each read since the items live in C -- unless
    the instance assigned its own (gevent's `queue` is a plain attribute that a subclass's
    _init may set); then that object."""

    def __init__(self, make):
        self.make = make

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        mine = obj.__dict__.get('queue', self)
        return self.make(obj._snapshot()) if mine is self else mine

    def __set__(self, obj, value):
        obj.__dict__['queue'] = value

    def __delete__(self, obj):
        obj.__dict__.pop('queue', None)


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

    queue = _ItemsView(collections.deque)

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

    queue = _ItemsView(list)


class LifoQueue(Queue, _core.LifoQueue):
    """Last in, first out."""

    queue = _ItemsView(list)


class Channel:
    """A rendezvous between greenlets: put() waits until a get() has taken the item, and get()
    until a put() hands one over. maxsize must be 1. As gevent's Channel, it belongs to the hub
    of the thread that made it, and a hand-over happens in a hub callback that switches to the
    getter first (it runs with the item until it blocks), then to the putter."""

    __class_getitem__ = classmethod(types.GenericAlias)

    def __init__(self, maxsize=1):
        if maxsize != 1:
            raise ValueError("Channels have a maxsize of 1")
        self.getters = collections.deque()   # Waiters of get() callers
        self.putters = collections.deque()   # (item, Waiter) of put() callers
        self.hub = get_hub()
        self._unlocking = False   # an _unlock callback is queued or running

    @property
    def maxsize(self):
        return 1

    @property
    def balance(self):
        return len(self.putters) - len(self.getters)

    def __repr__(self):
        return '<%s at %s %s>' % (type(self).__name__, hex(id(self)), self._format())

    def __str__(self):
        return '<%s %s>' % (type(self).__name__, self._format())

    def _format(self):
        result = ''
        if self.getters:
            result += ' getters[%s]' % len(self.getters)
        if self.putters:
            result += ' putters[%s]' % len(self.putters)
        return result

    def qsize(self):
        return 0

    def empty(self):
        return True

    def full(self):
        return True

    def put(self, item, block=True, timeout=None):
        """Hand item to a get(); wait until one has taken it (Full after the timeout; not
        blocking: a zero timeout, one turn of the hub). In the hub itself: only to a get()
        that is waiting already, else Full."""
        if getcurrent() is self.hub:
            if self.getters:
                self.getters.popleft().switch(item)
                return
            raise Full
        waiter = Waiter()
        entry = (item, waiter)
        self.putters.append(entry)
        timer = None
        try:
            if block:
                timer = Timeout._start_new_or_dummy(timeout, Full)
            if self.getters:
                self._schedule_unlock()
            if not block:
                timer = _OneTurn(self.hub, Full)
            result = waiter.get()
            if result is not waiter:
                raise InvalidSwitchError("Invalid switch into Channel.put: %r" % (result, ))
        except BaseException:
            _remove(self.putters, entry)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        """Take an item from a put(), waiting for one (Empty after the timeout; not blocking:
        a zero timeout, one turn of the hub)."""
        if getcurrent() is self.hub and self.putters:
            item, putter = self.putters.popleft()
            self.hub.loop.run_callback(putter.switch, putter)
            return item
        waiter = Waiter()
        timer = None
        try:
            if block:
                timer = Timeout._start_new_or_dummy(timeout, Empty)
            self.getters.append(waiter)
            if self.putters:
                self._schedule_unlock()
            if not block:
                timer = _OneTurn(self.hub, Empty)
            return waiter.get()
        except BaseException:
            _remove(self.getters, waiter)
            raise
        finally:
            if timer is not None:
                timer.close()

    def get_nowait(self):
        return self.get(False)

    def _unlock(self):
        try:
            while self.putters and self.getters:
                getter = self.getters.popleft()
                item, putter = self.putters.popleft()
                getter.switch(item)
                putter.switch(putter)
        finally:
            self._unlocking = False

    def _schedule_unlock(self):
        if not self._unlocking:
            self._unlocking = True
            self.hub.loop.run_callback(self._unlock)

    def __iter__(self):
        return self

    def __next__(self):
        result = self.get()
        if result is StopIteration:
            raise result
        return result

    next = __next__


class _OneTurn:
    """The timeout of a non-blocking Channel put/get: gevent's is a zero-second Timeout, which
    libev fires only after the callbacks of the loop turn, so a hand-over already scheduled
    comes first. pyconc's hub fires due timers before the callbacks queued during the turn, so
    here `exc` is thrown into the caller by a hub callback queued after the hand-over."""
    __slots__ = ('glet', 'exc')

    def __init__(self, hub, exc):
        self.glet = getcurrent()
        self.exc = exc
        hub.loop.run_callback(self._expire)

    def _expire(self):
        glet, self.glet = self.glet, None
        if glet is not None:
            glet.throw(self.exc)

    def cancel(self):
        self.glet = None

    close = cancel


def _remove(deq, item):
    try:
        deq.remove(item)
    except ValueError:
        pass
