"""pyconc.gevent.lock -- Semaphore, BoundedSemaphore, DummySemaphore, RLock.

Semaphore and BoundedSemaphore are pyconc's C semaphores (FIFO wake-ups, waits for greenlets,
threads and other threads' hubs alike) with gevent's API on top: acquire returns True/False,
release returns the new counter, wait() waits without acquiring, rawlink callbacks run while the
semaphore is available. RLock is owned by a greenlet, not a thread, as gevent's."""
from .. import _core
from ..greenlet import getcurrent
from ._links import Linkable
from .timeout import Timeout, _timeout_call
from _thread import get_ident as _get_ident

_get_hub_if_exists = _core._get_hub_if_exists

__all__ = ['Semaphore', 'BoundedSemaphore', 'DummySemaphore', 'RLock']


_MULTI = object()   # Semaphore._multithreaded: used from more than one thread


class Semaphore(Linkable, _core.Semaphore):
    """Semaphore(value=1): acquire() takes a unit, waiting if there is none; release() gives
    one back (it may be released more times than acquired)."""

    _notify_all = False   # links are called only while a unit is available
    _multithreaded = None   # the ident of the one thread that used it, or _MULTI

    def __init__(self, value=1, hub=None):
        if value is not None and value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        _core.Semaphore.__init__(self, 1 if value is None else value)
        # as gevent's: no hub is taken here (a module-level semaphore must not make one); the
        # owner hub is captured when a thread that has one uses it
        self.hub = hub

    @property
    def counter(self):
        return self._value

    def __str__(self):
        return '<%s at 0x%x counter=%s _links[%s]>' % (
            type(self).__name__, id(self), self.counter, self.linkcount())

    __repr__ = __str__

    def locked(self):
        """True if acquire() would have to wait."""
        return self._value <= 0

    def ready(self):
        """True if acquire() would not wait."""
        return self._value > 0

    _links_ready = ready

    def _capture_hub(self, create):
        """gevent's: the semaphore belongs to the hub of the thread that uses it (a destroyed
        one is dropped); with create, that hub is made if the thread has none. The C wait does
        not depend on it: a semaphore may be shared by the hubs and plain threads of several
        OS threads."""
        hub = self.hub
        if hub is None or hub.destroyed:
            self.hub = _core.get_hub() if create else _get_hub_if_exists()
        elif create:
            _core.get_hub()

    def _blocking_hub(self):
        # Before a wait: as gevent's, a semaphore used by one thread only makes that thread's
        # hub (the wait then yields to it, and LoopExit applies); one used by several threads
        # makes none (a plain thread stays a plain thread).
        self._capture_hub(self._multithreaded is not _MULTI)

    def acquire(self, blocking=True, timeout=None):
        """Take a unit; True if taken, False if not (non-blocking, or the timeout passed)."""
        ident = _get_ident()
        mt = self._multithreaded
        if mt != ident and mt is not _MULTI:
            self._multithreaded = ident if mt is None else _MULTI
        if self.hub is None:
            self._capture_hub(False)
        if isinstance(timeout, Timeout):
            if _core.Semaphore.acquire(self, False):
                return True
            self._blocking_hub()
            return _timeout_call(timeout, _core.Semaphore.acquire, self, True)
        if not blocking or (timeout is not None and timeout <= 0):
            return _core.Semaphore.acquire(self, False)   # gevent ignores the timeout then
        if _core.Semaphore.acquire(self, False):
            return True
        self._blocking_hub()
        return _core.Semaphore.acquire(self, True, timeout)

    def release(self):
        """Give a unit back; return the new counter."""
        _core.Semaphore.release(self)
        if '_links' in self.__dict__:
            self._check_and_notify()
        return self._value

    def wait(self, timeout=None):
        """Wait until a unit is available (not taking it), or the timeout; return the counter."""
        if self._value > 0:
            return self._value
        self._capture_hub(True)
        if _timeout_call(timeout, _core.Semaphore.acquire, self, True):
            _core.Semaphore.release(self)   # hand it on: wait() does not take it
        return self._value

    def __enter__(self):
        self.acquire()

    def __exit__(self, t, v, tb):
        self.release()

    def _at_fork_reinit(self):
        self.hub = None


class BoundedSemaphore(Semaphore, _core.BoundedSemaphore):
    """A Semaphore that may not be released more times than it was acquired
    (ValueError('Semaphore released too many times'))."""

    _OVER_RELEASE_ERROR = ValueError

    def __init__(self, value=1, hub=None):
        if value is not None and value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        _core.BoundedSemaphore.__init__(self, 1 if value is None else value)
        self.hub = hub

    def release(self):
        _core.BoundedSemaphore.release(self)
        if '_links' in self.__dict__:
            self._check_and_notify()
        counter = self._value
        if counter == self._initial_value:
            # as gevent's: nobody holds it, it floats free of any hub again
            self.hub = None
        return counter


class DummySemaphore:
    """A Semaphore that is never locked: for APIs that take a semaphore when none is needed."""

    def __init__(self, value=None):
        pass

    def __str__(self):
        return '<%s>' % self.__class__.__name__

    def locked(self):
        return False

    def ready(self):
        return True

    def release(self):
        pass

    def rawlink(self, callback):
        pass

    def unlink(self, callback):
        pass

    def wait(self, timeout=None):
        return 1

    def acquire(self, blocking=True, timeout=None):
        return True

    def __enter__(self):
        pass

    def __exit__(self, typ, val, tb):
        pass


class RLock:
    """A mutex that the greenlet holding it may acquire again (owned by a greenlet, not a
    thread)."""
    __slots__ = ('_block', '_owner', '_count', '__weakref__')

    def __init__(self, hub=None):
        self._block = Semaphore(1, hub)
        self._owner = None
        self._count = 0

    def __repr__(self):
        return "<%s at 0x%x _block=%s _count=%r _owner=%r)>" % (
            self.__class__.__name__, id(self), self._block, self._count, self._owner)

    def acquire(self, blocking=True, timeout=None):
        me = getcurrent()
        if self._owner is me:
            self._count += 1
            return 1
        rc = self._block.acquire(blocking, timeout)
        if rc:
            self._owner = me
            self._count = 1
        return rc

    def __enter__(self):
        return self.acquire()

    def release(self):
        if self._owner is not getcurrent():
            raise RuntimeError("cannot release un-acquired lock. Owner: %r Current: %r" % (
                self._owner, getcurrent()))
        self._count = count = self._count - 1
        if not count:
            self._owner = None
            self._block.release()

    def __exit__(self, typ, value, tb):
        self.release()

    def locked(self):
        return self._count > 0

    def _acquire_restore(self, count_owner):
        count, owner = count_owner
        self._block.acquire()
        self._count = count
        self._owner = owner

    def _release_save(self):
        count = self._count
        self._count = 0
        owner = self._owner
        self._owner = None
        self._block.release()
        return (count, owner)

    def _is_owned(self):
        return self._owner is getcurrent()
