"""pyconc.gevent.pool -- Group and Pool: sets of greenlets that are waited for and killed together;
a Pool also bounds how many of them run at once (gevent.pool's API).

A member leaves its group by a rawlink (run in the hub greenlet) when it finishes. A Pool's bound
is a pyconc Semaphore (C): add()/start()/spawn() take a unit, parking the calling greenlet while
the pool is full; a member's leaving gives it back. The waits are pyconc's C waits, so nothing here
loops or polls.

GroupMappingMixin holds apply/apply_async/apply_cb/map/map_async/map_cb/imap/imap_unordered on top
of three hooks and spawn(); Group/Pool use greenlets, pyconc.gevent.threadpool.ThreadPool uses OS
threads.

Ownership: a Group is used by the greenlets of one thread (its members' links run in that
thread's hub); the set and the `dying` set are touched only there, without a lock.
"""
from ..greenlet import GreenletExit, getcurrent
from ..queue import Full as _QueueFull
from ._imap import IMap, IMapUnordered
from .event import Event
from .greenlet import Greenlet, joinall
from .hub import kill as _kill, sleep as _sleep
from .lock import DummySemaphore, Semaphore
from .timeout import Timeout

__all__ = ['Group', 'Pool', 'PoolFull']


class GroupMappingMixin:
    """The mapping methods shared by Group, Pool and ThreadPool. A class using it defines
    spawn(func, *args, **kwargs) (returns something with get() and rawlink()) and the three
    hooks below."""
    __slots__ = ()

    def spawn(self, func, *args, **kwargs):
        raise NotImplementedError()

    def _apply_immediately(self):
        """True if apply() should call the function right here (the caller is already one of
        this pool's workers: waiting for a free slot could deadlock)."""
        raise NotImplementedError()

    def _apply_async_use_greenlet(self):
        """True if apply_async() must go through a helper greenlet (spawn() would block)."""
        raise NotImplementedError()

    def _apply_async_cb_spawn(self, callback, result):
        """Run callback(result), now or in a greenlet of its own."""
        raise NotImplementedError()

    def apply_cb(self, func, args=None, kwds=None, callback=None):
        """apply(func, args, kwds), then callback(result) if a callback is given and func did
        not raise (Group/Pool: in a new greenlet; ThreadPool: right here). Returns the result."""
        result = self.apply(func, args, kwds)
        if callback is not None:
            self._apply_async_cb_spawn(callback, result)
        return result

    def apply_async(self, func, args=None, kwds=None, callback=None):
        """Run func(*args, **kwds) without waiting for it; returns a Greenlet whose get() gives
        the result. callback(result) is called when it succeeds. Never blocks: when spawn()
        would, an untracked helper greenlet waits for the slot instead."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self._apply_async_use_greenlet():
            return Greenlet.spawn(self.apply_cb, func, args, kwds, callback)
        greenlet = self.spawn(func, *args, **kwds)
        if callback is not None:
            greenlet.link(pass_value(callback))
        return greenlet

    def apply(self, func, args=None, kwds=None):
        """Call func(*args, **kwds) through the pool and wait for its result (its exception is
        raised here). Called from one of the pool's own workers, func runs right away."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self._apply_immediately():
            return func(*args, **kwds)
        return self.spawn(func, *args, **kwds).get()

    def _map_all(self, func, iterable):
        tasks = [self.spawn(func, item) for item in iterable]
        return [task.get() for task in tasks]

    def map(self, func, iterable):
        """[func(x) for x in iterable], computed through the pool; results in input order. The
        spawning runs in a greenlet of its own (as imap's does)."""
        return Greenlet.spawn(self._map_all, func, iterable).get()

    def map_cb(self, func, iterable, callback=None):
        result = self.map(func, iterable)
        if callback is not None:
            callback(result)
        return result

    def map_async(self, func, iterable, callback=None):
        """map() in a new Greenlet, returned; callback(list) when it is done."""
        return Greenlet.spawn(self.map_cb, func, iterable, callback)

    def _imap(self, cls, func, iterables, kwargs):
        maxsize = kwargs.pop('maxsize', None)
        if kwargs:
            raise TypeError("Unsupported keyword arguments")
        return cls.spawn(func, zip(*iterables), spawn=self.spawn, _zipped=True, maxsize=maxsize)

    def imap(self, func, *iterables, **kwargs):
        """imap(func, *iterables, maxsize=None) -> iterator of func(*items), in input order.

        Lazy: the input is read as the pool has room. maxsize bounds the results waiting to be
        read (None or 0: unbounded)."""
        return self._imap(IMap, func, iterables, kwargs)

    def imap_unordered(self, func, *iterables, **kwargs):
        """As imap(), results in the order they finish."""
        return self._imap(IMapUnordered, func, iterables, kwargs)


class Group(GroupMappingMixin):
    """The greenlets added to it that are still running: len(), `in`, iteration, join() (wait
    until it is empty), kill(). A member leaves when it finishes. No bound on the number."""

    greenlet_class = Greenlet

    def __init__(self, *args):
        assert len(args) <= 1, args
        members = list(args[0]) if args else ()
        self.greenlets = set(members)
        # members being killed: a second kill() does not kill them again
        self.dying = set()
        self._empty_event = Event()
        self._empty_event.set()
        for greenlet in members:
            greenlet.rawlink(self._discard)
        if self.greenlets:
            # (gevent leaves the event set here, so its join() returns at once on a group made
            # with members; pyconc's waits for them, as join() is documented to)
            self._empty_event.clear()

    def __repr__(self):
        return '<%s at 0x%x %s>' % (type(self).__name__, id(self), self.greenlets)

    def __len__(self):
        """The number of members (an empty group is false)."""
        return len(self.greenlets)

    def __contains__(self, item):
        return item in self.greenlets

    def __iter__(self):
        """The members, in no particular order."""
        return iter(self.greenlets)

    def add(self, greenlet):
        """Start tracking greenlet (best not started yet: a Pool may block here)."""
        try:
            rawlink = greenlet.rawlink
        except AttributeError:
            pass          # a raw greenlet (the main one, say): it cannot tell us it finished
        else:
            rawlink(self._discard)
        self.greenlets.add(greenlet)
        self._empty_event.clear()

    def _discard(self, greenlet):
        self.greenlets.discard(greenlet)
        self.dying.discard(greenlet)
        if not self.greenlets:
            self._empty_event.set()

    def discard(self, greenlet):
        """Stop tracking greenlet."""
        self._discard(greenlet)
        try:
            unlink = greenlet.unlink
        except AttributeError:
            pass
        else:
            unlink(self._discard)

    def start(self, greenlet):
        """Add the unstarted greenlet, then start it."""
        self.add(greenlet)
        greenlet.start()

    def spawn(self, *args, **kwargs):
        """greenlet_class(*args, **kwargs), added and started; returns it."""
        greenlet = self.greenlet_class(*args, **kwargs)
        self.start(greenlet)
        return greenlet

    def join(self, timeout=None, raise_error=False):
        """Wait until the group is empty (at least once), at most timeout seconds. Returns True
        if it became empty, False on timeout. raise_error: then raise the exception of one of
        the members present at the call that failed."""
        greenlets = list(self.greenlets) if raise_error else ()
        result = self._empty_event.wait(timeout=timeout)
        for greenlet in greenlets:
            if greenlet.exception is not None:
                raiser = getattr(greenlet, '_raise_exception', None)
                if raiser is not None:
                    raiser()
                raise greenlet.exception
        return result

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Kill every member (each once, however often kill() is called). block: wait until
        they are all dead -- new members included -- at most timeout seconds (then return
        quietly)."""
        timer = Timeout._start_new_or_dummy(timeout)
        try:
            while self.greenlets:
                for greenlet in list(self.greenlets):
                    if greenlet in self.dying:
                        continue
                    try:
                        kill = greenlet.kill
                    except AttributeError:
                        _kill(greenlet, exception)
                    else:
                        kill(exception, block=False)
                    self.dying.add(greenlet)
                if not block:
                    break
                members = list(self.greenlets)
                joinall(members)
                if self.greenlets and all(g.dead for g in members if g in self.greenlets):
                    # dead, their links (which remove them) not run yet: let the hub run them
                    _sleep(0)
        except Timeout as ex:
            if ex is not timer:
                raise
        finally:
            timer.cancel()

    def killone(self, greenlet, exception=GreenletExit, block=True, timeout=None):
        """Kill greenlet if it is a member not already being killed; block: join it, at most
        timeout seconds."""
        if greenlet not in self.dying and greenlet in self.greenlets:
            greenlet.kill(exception, block=False)
            self.dying.add(greenlet)
            if block:
                greenlet.join(timeout)

    def full(self):
        """A Group is never full."""
        return False

    def wait_available(self, timeout=None):
        """A Group always has room: returns at once (None)."""

    # GroupMappingMixin hooks

    def _apply_immediately(self):
        return getcurrent() in self

    def _apply_async_cb_spawn(self, callback, result):
        Greenlet.spawn(callback, result)

    def _apply_async_use_greenlet(self):
        return self.full()


class PoolFull(_QueueFull):
    """Raised by Pool.add/start when the pool is full and blocking=False, or the timeout
    passed."""


class Pool(Group):
    """A Group of at most size members. spawn()/start()/add() wait for a free slot.

    size None: no bound (free_count() is always 1); 0: always full (only useful with
    wait_available(timeout)); a negative size is a ValueError."""

    def __init__(self, size=None, greenlet_class=None):
        if size is not None and size < 0:
            raise ValueError('size must not be negative: %r' % (size, ))
        Group.__init__(self)
        self.size = size
        if greenlet_class is not None:
            self.greenlet_class = greenlet_class
        self._semaphore = DummySemaphore(size) if size is None else Semaphore(size)

    def wait_available(self, timeout=None):
        """Wait until a greenlet can be added without blocking, at most timeout seconds;
        returns how many can (0 on timeout)."""
        return self._semaphore.wait(timeout=timeout)

    def full(self):
        """True if add() would block."""
        return self.free_count() <= 0

    def free_count(self):
        """About how many more members can be added now."""
        if self.size is None:
            return 1
        return max(0, self.size - len(self))

    def start(self, greenlet, *args, **kwargs):
        """start(greenlet, blocking=True, timeout=None): add() the unstarted greenlet, then
        start it."""
        self.add(greenlet, *args, **kwargs)
        greenlet.start()

    def add(self, greenlet, blocking=True, timeout=None):
        """Track greenlet once a slot is free. blocking=False: PoolFull at once if none is;
        timeout: PoolFull after that many seconds (ignored when not blocking)."""
        if not blocking:
            timeout = None
        if not self._semaphore.acquire(blocking=blocking, timeout=timeout):
            raise PoolFull()
        try:
            Group.add(self, greenlet)
        except BaseException:
            self._semaphore.release()
            raise

    def _discard(self, greenlet):
        Group._discard(self, greenlet)
        self._semaphore.release()


class pass_value:
    """A link that calls callback(source.value), only if the source succeeded."""
    __slots__ = ['callback']

    def __init__(self, callback):
        self.callback = callback

    def __call__(self, source):
        if source.successful():
            self.callback(source.value)

    def __hash__(self):
        return hash(self.callback)

    def __eq__(self, other):
        return self.callback == getattr(other, 'callback', other)

    def __str__(self):
        return str(self.callback)

    def __repr__(self):
        return repr(self.callback)

    def __getattr__(self, item):
        assert item != 'callback'
        return getattr(self.callback, item)
