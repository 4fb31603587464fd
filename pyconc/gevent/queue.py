"""pyconc.gevent.queue -- gevent's queues on pyconc's C queues.

SimpleQueue, Queue (= JoinableQueue), PriorityQueue and LifoQueue are the C queues of
pyconc.queue (csrc/thread/queue.c) -- so one queue can connect greenlets of several threads'
hubs and plain threads -- dressed in gevent's API:

  * maxsize None (or <= 0) means unbounded and reads back as None; Queue(0) warns;
  * peek(), len(), iteration until a StopIteration item, join(timeout) -> bool;
  * called in the hub greenlet itself, get/peek/put never wait: Empty/Full instead.

Channel is a rendezvous with no storage: put() waits for a get() to take the item. Its waiters
are Waiters of the hub that made it, paired by a hub callback.

Ownership: the C queues lock themselves; a Channel belongs to the hub of the thread that made
it and is touched by that thread's greenlets only.
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

# The C queue's operations (the same for every kind: the C object knows its own order).
_CQueue = _core.Queue
_c_init = _CQueue.__init__
_c_put = _CQueue.put
_c_get = _CQueue.get
_c_put_nowait = _CQueue.put_nowait
_c_join = _CQueue.join
_c_maxsize = _CQueue.maxsize


def _negative(timeout):
    return timeout is not None and timeout < 0


def _called_in_hub():
    hub = _get_hub_if_exists()
    return hub is not None and getcurrent() is hub


class _Hidden:
    """A name the C base class has and gevent's class does not: reading it raises
    AttributeError, as on gevent's object."""

    def __init__(self, name):
        self.name = name

    def __get__(self, obj, owner=None):
        cls = owner if owner is not None else type(obj)
        raise AttributeError('%r object has no attribute %r' % (cls.__name__, self.name))


class _ItemsAttribute:
    """`q.queue`: the items, oldest first, as gevent's attribute holds them (a deque; a list for
    LifoQueue and PriorityQueue). The items live in C, so each read makes a fresh copy --
    unless the instance assigned its own `queue` (gevent's is a plain attribute, which a
    subclass's _init may set): then that object is returned."""

    def __init__(self, container):
        self.container = container

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        own = obj.__dict__.get('queue', self)
        if own is not self:
            return own
        return self.container(obj._snapshot())

    def __set__(self, obj, value):
        obj.__dict__['queue'] = value

    def __delete__(self, obj):
        obj.__dict__.pop('queue', None)


class _IteratesUntilStopIteration:
    """for item in q: get() until the item got is StopIteration itself (which ends the loop)."""

    def __iter__(self):
        return self

    def __next__(self):
        got = self.get()
        if got is StopIteration:
            raise got
        return got

    next = __next__


class _GeventQueueAPI(_IteratesUntilStopIteration):
    """gevent's SimpleQueue API over a C queue; each concrete class also derives from the C
    queue type of its kind."""

    def __init__(self, maxsize=None, items=()):
        self._setup(maxsize, items, 3)

    def _setup(self, maxsize, items, stacklevel):
        # stacklevel: where the Queue(0) warning points (the line that made the queue)
        if maxsize is None or maxsize <= 0:
            if maxsize == 0:
                warnings.warn('Queue(0) now equivalent to Queue(None); if you want a channel, '
                              'use Channel', DeprecationWarning, stacklevel=stacklevel)
            maxsize = None
        _c_init(self, maxsize or 0)
        _core.get_hub()   # as gevent's: this thread's waits go through its hub from now on
        for item in items:
            _c_put_nowait(self, item)

    @property
    def maxsize(self):
        bound = _c_maxsize.__get__(self)
        return bound if bound > 0 else None

    @maxsize.setter
    def maxsize(self, value):
        unbounded = value is None or value <= 0
        _c_maxsize.__set__(self, -1 if unbounded else value)

    queue = _ItemsAttribute(collections.deque)

    @property
    def getters(self):
        """One entry per greenlet or thread waiting in get() (gevent keeps its waiters there)."""
        return [None] * self._getters

    @property
    def putters(self):
        """One entry per greenlet or thread waiting in put()."""
        return [None] * self._putters

    def copy(self):
        return type(self)(self.maxsize, self._snapshot())

    def _describe(self):
        # the part of repr()/str() after the class name (and address)
        words = []
        bound = self.maxsize
        if bound is not None:
            words.append('maxsize=%r' % (bound,))
        held = self._snapshot()
        if held:
            words.append('queue=%r' % (collections.deque(held),))
        if self._getters:
            words.append('getters[%s]' % self._getters)
        if self._putters:
            words.append('putters[%s]' % self._putters)
        return ''.join(' ' + word for word in words)

    def __repr__(self):
        return '<%s at 0x%x%s>' % (type(self).__name__, id(self), self._describe())

    def __str__(self):
        return '<%s%s>' % (type(self).__name__, self._describe())

    def __len__(self):
        return self.qsize()

    def __bool__(self):
        return True     # even when empty, unlike len() suggests

    # put(item, block=True, timeout=None) and get(block=True, timeout=None) are C
    # (csrc/thread/queue.c, "gevent's put/get"): put waits for room (Full after the timeout),
    # get for an item (Empty after the timeout); called in the hub greenlet itself, neither
    # waits. A timeout that is neither an int nor a float comes here.
    put = _CQueue._gput
    get = _CQueue._gget

    def _put_slow(self, item, timeout):
        if not isinstance(timeout, Timeout) and _negative(timeout):
            # on a full queue such a timeout has expired already; with room, it is refused
            if self.full():
                raise Full
            raise ValueError("'timeout' must be a non-negative number")
        return _timeout_call(timeout, _c_put, self, item, True)

    def _get_slow(self, block, timeout):
        return self._wait_for_item(self._get_blocking, block, timeout)

    def put_nowait(self, item):
        self.put(item, False)

    def get_nowait(self):
        return self.get(False)

    def peek(self, block=True, timeout=None):
        """The item get() would return, left in the queue."""
        if self.qsize():
            return self._peek(False)
        return self._wait_for_item(self._peek, block, timeout)

    def peek_nowait(self):
        return self.peek(False)

    def _get_blocking(self, block, timeout=None):
        return _c_get(self, block, timeout)

    def _wait_for_item(self, fetch, block, timeout):
        # get()/peek() on an empty queue; fetch(block[, timeout]) is the C operation
        if self.is_shutdown:
            raise ShutDown
        if not isinstance(timeout, Timeout):     # (a Timeout object is waited for as it is)
            if not block:
                raise Empty
            if _negative(timeout):
                raise ValueError("'timeout' must be a non-negative number")
            if _called_in_hub():
                raise Empty
        return _timeout_call(timeout, fetch, True)


class SimpleQueue(_GeventQueueAPI, _CQueue):
    """gevent's SimpleQueue: a FIFO queue with gevent's API, without task tracking."""
    task_done = _Hidden('task_done')
    join = _Hidden('join')
    unfinished_tasks = _Hidden('unfinished_tasks')
    shutdown = _Hidden('shutdown')


class Queue(SimpleQueue):
    """gevent's Queue (and JoinableQueue): FIFO, with task_done()/join() and shutdown()."""
    # the C base's, which SimpleQueue hides
    task_done = _CQueue.task_done
    shutdown = _CQueue.shutdown
    unfinished_tasks = _CQueue.unfinished_tasks

    def __init__(self, maxsize=None, items=(), unfinished_tasks=None):
        self._setup(maxsize, items, 3)
        # a copy() carries the count over; otherwise each item given counts as a task
        self.unfinished_tasks = unfinished_tasks or (len(items) if items else 0)

    def copy(self):
        return type(self)(self.maxsize, self._snapshot(), self.unfinished_tasks)

    def _describe(self):
        text = SimpleQueue._describe(self)
        pending = self.unfinished_tasks
        return text + ' tasks=%s' % pending if pending else text

    def join(self, timeout=None):
        """Wait until every item put has been marked done with task_done(); True if so,
        False if the timeout passed first."""
        if timeout is not None:
            return self._join_timeout(timeout)
        _c_join(self)
        return True


JoinableQueue = Queue


class PriorityQueue(Queue, _core.PriorityQueue):
    """Lowest first (items are compared; equal ones leave in the order they came)."""

    queue = _ItemsAttribute(list)


class LifoQueue(Queue, _core.LifoQueue):
    """Last in, first out."""

    queue = _ItemsAttribute(list)


def _forget(line, entry):
    # take entry off a Channel's waiting line, if it is still there
    try:
        line.remove(entry)
    except ValueError:
        pass


class Channel(_IteratesUntilStopIteration):
    """A rendezvous between greenlets: put() waits until a get() has taken the item, and get()
    until a put() hands one over. maxsize must be 1.

    As gevent's, a Channel belongs to the hub of the thread that made it. The hand-over is done
    by a hub callback (_pair_up) that switches to the getter first -- it runs with the item
    until it blocks -- and then to the putter."""

    @classmethod
    def __class_getitem__(cls, item):
        return types.GenericAlias(cls, item)

    def __init__(self, maxsize=1):
        if maxsize != 1:
            raise ValueError("Channels have a maxsize of 1")
        self.getters = collections.deque()   # the Waiters of get() callers
        self.putters = collections.deque()   # (item, Waiter) of put() callers
        self.hub = get_hub()
        self._pairing = False   # a _pair_up callback is queued or running

    @property
    def maxsize(self):
        return 1

    @property
    def balance(self):
        """Waiting putters minus waiting getters."""
        return len(self.putters) - len(self.getters)

    def _describe(self):
        text = ''
        for label, line in (('getters', self.getters), ('putters', self.putters)):
            if line:
                text += ' %s[%s]' % (label, len(line))
        return text

    def __repr__(self):
        return '<%s at 0x%x %s>' % (type(self).__name__, id(self), self._describe())

    def __str__(self):
        return '<%s %s>' % (type(self).__name__, self._describe())

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
        if self._in_own_hub():
            if not self.getters:
                raise Full
            self.getters.popleft().switch(item)
            return
        waiter = Waiter()
        self._wait_in_line(self.putters, (item, waiter), waiter, block, timeout, Full)

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        """Take an item from a put(), waiting for one (Empty after the timeout; not blocking:
        a zero timeout, one turn of the hub)."""
        if self.putters and self._in_own_hub():
            item, sender = self.putters.popleft()
            self.hub.loop.run_callback(sender.switch, sender)   # the putter resumes later
            return item
        waiter = Waiter()
        return self._wait_in_line(self.getters, waiter, waiter, block, timeout, Empty)

    def get_nowait(self):
        return self.get(False)

    def _in_own_hub(self):
        return getcurrent() is self.hub

    def _wait_in_line(self, line, entry, waiter, block, timeout, failure):
        """Queue entry on line (getters or putters), get a pairing scheduled if the other line
        has someone, and park on waiter. `timeout` raises failure; not blocking is a zero
        timeout, as gevent's: a Timeout (priority -1) fires after the callbacks of the hub's
        turn, so a hand-over already scheduled wins. A putter is resumed with its own
        waiter."""
        line.append(entry)
        expiry = None
        try:
            expiry = Timeout._start_new_or_dummy(timeout if block else 0, failure)
            if self.getters and self.putters:
                self._schedule_pairing()
            answer = waiter.get()
            if line is self.putters and answer is not waiter:
                raise InvalidSwitchError("Invalid switch into Channel.put: %r" % (answer, ))
            return answer
        except BaseException:
            _forget(line, entry)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    def _pair_up(self):
        # the hub callback: one getter meets one putter, for as long as both lines have one
        try:
            getters, putters = self.getters, self.putters
            while getters and putters:
                getter = getters.popleft()
                item, putter = putters.popleft()
                getter.switch(item)
                putter.switch(putter)
        finally:
            self._pairing = False

    def _schedule_pairing(self):
        if self._pairing:
            return
        self._pairing = True
        self.hub.loop.run_callback(self._pair_up)
