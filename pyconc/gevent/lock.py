"""pyconc.gevent.lock -- Semaphore, BoundedSemaphore, DummySemaphore, RLock.

Semaphore and BoundedSemaphore are pyconc's C semaphores (FIFO wake-ups; greenlets, plain threads
and other threads' hubs wait on the same object) with gevent's API on top: acquire() answers
True/False, release() answers the new counter, wait() waits for a unit without taking it, and
rawlink callbacks run while a unit is free. RLock is owned by a greenlet, not by a thread."""
from math import isnan as _isnan

from .. import _core
from ..greenlet import getcurrent
from ._links import Linkable
from .timeout import Timeout, _wait_call

__all__ = ['Semaphore', 'BoundedSemaphore', 'DummySemaphore', 'RLock']



def _check_initial(value):
    if value is None:
        return 1
    if value < 0:
        raise ValueError("semaphore initial value must be >= 0")
    return value


class Semaphore(Linkable, _core.GeventSemaphore):
    """Semaphore(value=1): acquire() takes a unit, waiting while there is none; release() gives
    one back (more releases than acquires are allowed).

    acquire(blocking=True, timeout=None), release(), `with` and the owner-hub bookkeeping
    (`hub`) are C (pyconc._core.GeventSemaphore); what is rare stays here."""

    _notify_all = False      # a link is called only while a unit is free

    def __init__(self, value=1, hub=None):
        super().__init__(_check_initial(value))
        # gevent's owner hub. Nothing makes one here (a module-level semaphore must not create
        # a hub); it is recorded when a thread that has one uses the semaphore.
        self.hub = hub

    @property
    def counter(self):
        return self._value

    def __repr__(self):
        return (f'<{type(self).__name__} at {id(self):#x} counter={self._value} '
                f'_links[{self.linkcount()}]>')

    __str__ = __repr__

    def locked(self):
        """True if acquire() would have to wait."""
        return self._value <= 0

    def ready(self):
        """True if acquire() would not wait."""
        return self._value > 0

    _links_ready = ready

    def _acquire_slow(self, timeout):
        # acquire() with no unit free and a timeout that is neither an int nor a float
        if isinstance(timeout, Timeout):
            # as gevent's: the wait ends when that Timeout fires, and answers False
            self._capture_hub(not self._multithreaded)
            return _wait_call(timeout, self._thread_acquire, True)
        # another kind of number (a Fraction, a Decimal) is read as a float, as gevent's
        # compiled acquire does; anything else is its TypeError ("must be real number")
        _isnan(timeout)
        return self.acquire(True, float(timeout))

    def wait(self, timeout=None):
        """Wait until a unit is free (without taking it) or the timeout passes; return the
        counter."""
        if self._value <= 0:
            self._capture_hub(True)
            if _wait_call(timeout, self._wait_acquire, True):
                _core.Semaphore.release(self)   # only looked: hand the unit on
        return self._value

    def _wait_acquire(self, blocking, timeout):
        # wait()'s acquire: a timeout of 0 (or less) is gevent's 0-second Timeout, which a
        # greenlet waits for one loop turn (the C acquire's rule, wait.h); the thread acquire
        # would answer at once
        if timeout is not None and timeout <= 0:
            return _core.GeventSemaphore.acquire(self, blocking, timeout)
        return self._thread_acquire(blocking, timeout)

    def _at_fork_reinit(self):
        self.hub = None


class BoundedSemaphore(Semaphore, _core.BoundedSemaphore):
    """A Semaphore that refuses to be released more times than it was acquired
    (ValueError('Semaphore released too many times'))."""


class DummySemaphore:
    """Looks like a Semaphore and never makes anyone wait: for APIs that want a semaphore
    where no limit applies."""

    def __init__(self, value=None):
        pass

    def __str__(self):
        return f'<{type(self).__name__}>'

    def locked(self):
        return False

    def ready(self):
        return True

    def acquire(self, blocking=True, timeout=None):
        return True

    def release(self):
        pass

    def wait(self, timeout=None):
        return 1

    def rawlink(self, callback):
        pass

    def unlink(self, callback):
        pass

    def __enter__(self):
        pass

    def __exit__(self, typ, val, tb):
        pass


class RLock:
    """A lock the greenlet holding it may take again (and must release as many times): owned
    by a greenlet, not a thread. Built on a one-unit Semaphore (_block)."""
    __slots__ = ('_block', '_owner', '_count', '__weakref__')

    def __init__(self, hub=None):
        self._block = Semaphore(1, hub)
        self._owner = None   # the greenlet holding it
        self._count = 0      # how many times it holds it

    def __repr__(self):
        return (f'<{type(self).__name__} at {id(self):#x} _block={self._block} '
                f'_count={self._count!r} _owner={self._owner!r})>')

    def acquire(self, blocking=True, timeout=None):
        current = getcurrent()
        if current is self._owner:
            self._count += 1
            return 1
        taken = self._block.acquire(blocking, timeout)
        if taken:
            self._owner, self._count = current, 1
        return taken

    def release(self):
        current = getcurrent()
        if current is not self._owner:
            raise RuntimeError(f'cannot release un-acquired lock. Owner: {self._owner!r} '
                               f'Current: {current!r}')
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._block.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, typ, val, tb):
        self.release()

    def locked(self):
        return self._count > 0

    def _is_owned(self):
        return getcurrent() is self._owner

    # Condition.wait() releases the lock completely and takes it back with the same depth

    def _release_save(self):
        state = (self._count, self._owner)
        self._count, self._owner = 0, None
        self._block.release()
        return state

    def _acquire_restore(self, state):
        self._block.acquire()
        self._count, self._owner = state
