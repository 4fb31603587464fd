"""pyconc.gevent.pool -- Group and Pool: sets of greenlets that are waited for and killed together;
a Pool also bounds how many of them run at once (gevent.pool's API).

Membership: a greenlet joins a group by add()/start()/spawn() and leaves when it finishes, by a
rawlink the group puts on it (so the leaving happens in the hub greenlet). An Event, set while
the group is empty, is what join() waits on.

Pool's bound is a pyconc Semaphore (C) of `size` units: a unit is taken before a greenlet joins,
parking the caller while the pool is full, and given back when it leaves. Every wait here is a
pyconc C wait; nothing loops or polls.

GroupMappingMixin is the apply/map/imap family, written once over spawn() and three hooks;
Group/Pool run the work in greenlets, pyconc.gevent.threadpool.ThreadPool in OS threads.

Ownership: a Group is used by the greenlets of one thread (its members' links run in that
thread's hub), so its sets are touched without a lock.
"""
from ..greenlet import GreenletExit, getcurrent
from ..queue import Full as _QueueFull
from ._imap import IMap, IMapUnordered
from .event import Event
from .greenlet import Greenlet, _CallbackProxy, _raise_failure_of, joinall
from .hub import kill as _kill_later, sleep as _sleep
from .lock import DummySemaphore, Semaphore
from .timeout import Timeout

__all__ = ['Group', 'Pool', 'PoolFull']


def _call_args(args, kwds):
    """apply()'s optional args/kwds, None standing for none."""
    return (() if args is None else args), ({} if kwds is None else kwds)


def _spawn_helper(func, *args):
    """A plain Greenlet, outside any group, running func(*args): for the waiting that the
    mapping methods must not do in the caller."""
    helper = Greenlet(func, *args)
    helper.start()
    return helper


class GroupMappingMixin:
    """The mapping methods shared by Group, Pool and ThreadPool.

    A class using it provides spawn(func, *args, **kwargs), returning an object with get() and
    rawlink() (a Greenlet, an AsyncResult), and the three hooks below -- gevent's names, kept
    because they are the contract a subclass of this mixin implements."""
    __slots__ = ()

    def spawn(self, func, *args, **kwargs):
        raise NotImplementedError('%s must define spawn()' % type(self).__name__)

    def _apply_immediately(self):
        """Should apply() call the function in the caller? (True when the caller is already one
        of this pool's workers: waiting for a free slot there could wait forever.)"""
        raise NotImplementedError('%s must define the hook' % type(self).__name__)

    def _apply_async_use_greenlet(self):
        """Should apply_async() leave the spawning to a helper greenlet (spawn() would block)?"""
        raise NotImplementedError('%s must define the hook' % type(self).__name__)

    def _apply_async_cb_spawn(self, callback, result):
        """Deliver result to apply_cb()'s callback (now, or in a greenlet of its own)."""
        raise NotImplementedError('%s must define the hook' % type(self).__name__)

    def apply(self, func, args=None, kwds=None):
        """func(*args, **kwds), run through the pool; returns its result or raises its
        exception. From one of the pool's own workers, func is simply called."""
        call_args, call_kwds = _call_args(args, kwds)
        in_worker = self._apply_immediately()
        if in_worker:
            return func(*call_args, **call_kwds)
        task = self.spawn(func, *call_args, **call_kwds)
        return task.get()

    def apply_cb(self, func, args=None, kwds=None, callback=None):
        """apply(), then hand the result to callback (if any, and if func did not raise);
        returns the result."""
        outcome = self.apply(func, args, kwds)
        if callback is not None:
            self._apply_async_cb_spawn(callback, outcome)
        return outcome

    def apply_async(self, func, args=None, kwds=None, callback=None):
        """Start func(*args, **kwds) and return at once with something whose get() gives the
        result; callback(result) is called if it succeeds. When the pool is full, an untracked
        helper greenlet does the waiting for a slot."""
        call_args, call_kwds = _call_args(args, kwds)
        would_block = self._apply_async_use_greenlet()
        if would_block:
            return _spawn_helper(self.apply_cb, func, call_args, call_kwds, callback)
        task = self.spawn(func, *call_args, **call_kwds)
        if callback is not None:
            task.link(pass_value(callback))
        return task

    def _spawn_all_then_collect(self, func, iterable):
        # all started first, so that they run side by side; then read in input order
        tasks = [self.spawn(func, item) for item in iterable]
        return [task.get() for task in tasks]

    def map(self, func, iterable):
        """[func(x) for x in iterable], computed through the pool, results in input order.
        The spawning is done by a helper greenlet (as imap's is)."""
        return _spawn_helper(self._spawn_all_then_collect, func, iterable).get()

    def map_cb(self, func, iterable, callback=None):
        """map(), then callback(results) if a callback is given; returns the results."""
        results = self.map(func, iterable)
        if callback is not None:
            callback(results)
        return results

    def map_async(self, func, iterable, callback=None):
        """map_cb() in a helper greenlet, returned at once."""
        return _spawn_helper(self.map_cb, func, iterable, callback)

    def _start_imap(self, kind, func, iterables, options):
        maxsize = options.pop('maxsize', None)
        if options:
            raise TypeError("Unsupported keyword arguments")
        return kind.spawn(func, zip(*iterables), spawn=self.spawn, maxsize=maxsize,
                          _zipped=True)

    def imap(self, func, *iterables, **kwargs):
        """imap(func, *iterables, maxsize=None) -> iterator of func(*items), in input order.

        Lazy: the input is read as the pool has room. maxsize bounds how many results may wait
        to be read (None or 0: no bound)."""
        return self._start_imap(IMap, func, iterables, kwargs)

    def imap_unordered(self, func, *iterables, **kwargs):
        """As imap(), the results in the order they are ready."""
        return self._start_imap(IMapUnordered, func, iterables, kwargs)


class Group(GroupMappingMixin):
    """The greenlets added to it that are still running: len(), `in`, iteration, join() (wait
    until it is empty), kill(). A member leaves when it finishes. No bound on the number."""

    greenlet_class = Greenlet

    def __init__(self, *args):
        assert len(args) < 2, args
        initial = list(args[0]) if args else []
        self.greenlets = set(initial)   # the members
        self.dying = set()              # members already sent a kill: not sent another
        self._emptied = Event()         # set while there are no members
        if not initial:
            self._emptied.set()
        for member in initial:
            member.rawlink(self._on_member_exit)
        # (gevent leaves the event set when members are given here, so its join() returns at
        # once; pyconc's waits for them, as join() is documented to)

    def __repr__(self):
        return '<%s at 0x%x %s>' % (type(self).__name__, id(self), self.greenlets)

    def __len__(self):
        """The number of members (an empty group is false)."""
        return len(self.greenlets)

    def __contains__(self, item):
        members = self.greenlets
        return item in members

    def __iter__(self):
        """The members, in no particular order."""
        return iter(self.greenlets)

    def add(self, greenlet):
        """Start tracking greenlet (best not started yet: a Pool may block here)."""
        try:
            watch = greenlet.rawlink
        except AttributeError:
            pass    # a raw greenlet (the main one, say): it cannot tell us when it ends
        else:
            watch(self._on_member_exit)
        self._enroll(greenlet)

    def _enroll(self, glet):
        self.greenlets.add(glet)
        self._emptied.clear()

    def _on_member_exit(self, glet):
        # The rawlink every member gets (run by the hub when it finishes), and discard()'s
        # work: forget glet, and note when the group has become empty. Pool extends it.
        members = self.greenlets
        members.discard(glet)
        self.dying.discard(glet)
        if not members:
            self._emptied.set()

    def discard(self, greenlet):
        """Stop tracking greenlet."""
        self._on_member_exit(greenlet)
        try:
            unwatch = greenlet.unlink
        except AttributeError:
            return
        unwatch(self._on_member_exit)

    def start(self, greenlet):
        """Add the unstarted greenlet, then start it."""
        self.add(greenlet)
        greenlet.start()

    def spawn(self, *args, **kwargs):
        """greenlet_class(*args, **kwargs), added and started; returns it."""
        member = self.greenlet_class(*args, **kwargs)
        self.start(member)
        return member

    def join(self, timeout=None, raise_error=False):
        """Wait (at most timeout seconds) until the group has been empty; True if it was, False
        on timeout. raise_error: then raise the exception of a member present at the call that
        failed, if there is one."""
        watched = tuple(self.greenlets) if raise_error else ()
        emptied = self._emptied.wait(timeout=timeout)
        for member in watched:
            if member.exception is not None:
                _raise_failure_of(member)
        return emptied

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Kill every member (each once, however often kill() is called). block: wait until
        they are all dead -- new members included -- at most timeout seconds (then return
        quietly)."""
        deadline = Timeout._start_new_or_dummy(timeout)
        try:
            while self.greenlets:
                self._send_kills(exception)
                if not block:
                    break
                self._await_members()
        except Timeout as expired:
            if expired is not deadline:
                raise
        finally:
            deadline.cancel()

    def _send_kills(self, exception):
        # a non-blocking kill to each member not sent one yet
        for member in list(self.greenlets):
            if member in self.dying:
                continue
            try:
                kill_method = member.kill
            except AttributeError:
                _kill_later(member, exception)
            else:
                kill_method(exception, block=False)
            self.dying.add(member)

    def _await_members(self):
        # Wait for the members of now to die. When they all have, but some of their leaving
        # links have not run yet, give the hub a turn (else kill() would spin).
        current = list(self.greenlets)
        joinall(current)
        lingering = [member for member in current if member in self.greenlets]
        if self.greenlets and all(member.dead for member in lingering):
            _sleep(0)

    def killone(self, greenlet, exception=GreenletExit, block=True, timeout=None):
        """Kill greenlet if it is a member not already being killed; block: join it, at most
        timeout seconds."""
        if greenlet in self.dying or greenlet not in self.greenlets:
            return
        greenlet.kill(exception, False)
        self.dying.add(greenlet)
        if block:
            greenlet.join(timeout)

    def full(self):
        """A Group is never full."""
        return False

    def wait_available(self, timeout=None):
        """A Group always has room: returns at once (None)."""

    # the GroupMappingMixin hooks

    def _apply_immediately(self):
        # the caller is a member: waiting for a slot it holds itself could deadlock
        return getcurrent() in self.greenlets

    def _apply_async_cb_spawn(self, callback, result):
        _spawn_helper(callback, result)

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
        if size is None:
            slots = DummySemaphore()
        elif size < 0:
            raise ValueError('size must not be negative: %r' % (size, ))
        else:
            slots = Semaphore(size)
        Group.__init__(self)
        self.size = size
        # one unit per free slot (the name is gevent's: its test-suite reads _semaphore.counter)
        self._semaphore = slots
        if greenlet_class is None:
            return
        self.greenlet_class = greenlet_class

    def wait_available(self, timeout=None):
        """Wait until a greenlet can be added without blocking, at most timeout seconds;
        returns how many can (0 on timeout)."""
        return self._semaphore.wait(timeout)

    def full(self):
        """True if add() would block."""
        return self.free_count() < 1

    def free_count(self):
        """About how many more members can be added now."""
        if self.size is None:
            return 1
        room = self.size - len(self)
        return room if room > 0 else 0

    def start(self, greenlet, *args, **kwargs):
        """start(greenlet, blocking=True, timeout=None): add() the unstarted greenlet, then
        start it."""
        self.add(greenlet, *args, **kwargs)
        greenlet.start()

    def add(self, greenlet, blocking=True, timeout=None):
        """Track greenlet once a slot is free. blocking=False: PoolFull at once if none is;
        timeout: PoolFull after that many seconds (ignored when not blocking)."""
        slots = self._semaphore
        got = slots.acquire(blocking, timeout if blocking else None)
        if not got:
            raise PoolFull()
        try:
            super().add(greenlet)
        except BaseException:
            slots.release()    # not added after all: the slot is free again
            raise

    def _on_member_exit(self, glet):
        super()._on_member_exit(glet)
        slots = self._semaphore    # its slot is free again
        slots.release()


class pass_value(_CallbackProxy):
    """A link that calls callback(source.value), only if the source succeeded."""
    __slots__ = ()

    def __call__(self, source):
        if source.successful():
            deliver = self.callback
            deliver(source.value)
