"""pyconc.gevent.thread -- the `_thread` module on greenlets, for monkey patching.

monkey.patch_thread() copies the names of `__implements__` into `_thread`: a "thread" started
there is a Greenlet, its ident is the greenlet's, and its lock is pyconc's C Lock (a waiting
greenlet parks on its hub; a plain OS thread blocks as on the stdlib's lock). Every other name
of `_thread` (`__imports__`) is re-exported unchanged. The stdlib's threading module, running on
these, then treats greenlets as its threads.

On 3.13+ threading keeps a `_ThreadHandle` per Thread; ours follows a greenlet through a weak
reference (a finished greenlet is a finished thread).
"""
import sys
import _thread as _native
import weakref
from time import monotonic

from .. import _core
from ..greenlet import getcurrent, GreenletExit
from .hub import sleep
from .greenlet import Greenlet
from .local import local as _local

__implements__ = ['allocate_lock', 'get_ident', 'exit', 'LockType', 'stack_size',
                  'start_new_thread', '_local']
if sys.version_info >= (3, 13):
    __implements__ += ['start_joinable_thread', 'lock', '_ThreadHandle', '_make_thread_handle']

__target__ = '_thread'

__imports__ = [name for name in ('error', 'TIMEOUT_MAX', 'allocate', 'exit_thread',
                                 'interrupt_main', 'start_new', 'get_native_id',
                                 'daemon_threads_allowed', 'RLock', 'set_name')
               if hasattr(_native, name)]
globals().update({name: getattr(_native, name) for name in __imports__})

__all__ = [name for name in __implements__ + __imports__ if name != '_local']

# captured before patching: once patched, _thread.stack_size is ours
_native_stack_size = _native.stack_size
_hub_of_this_thread = _core._get_hub_if_exists


def get_ident(gr=None):
    """The ident of greenlet gr (default: the running one): its id(), unique among the live
    greenlets."""
    if gr is None:
        try:
            gr = getcurrent()
        except RuntimeError:
            # interpreter shutdown: a __del__ taking a lock may run after greenlets are gone
            return id(None)
    return id(gr)


def _spawn(function, args, kwargs):
    return Greenlet.spawn(function, *args, **(kwargs or {}))


def start_new_thread(function, args=(), kwargs=None):
    """Run function(*args, **kwargs) in a new greenlet; return that greenlet's ident."""
    return get_ident(_spawn(function, args, kwargs))


class _ThreadHandle:
    """The 3.13+ thread handle of a greenlet: done once the greenlet is dead (or forgotten by
    _set_done), joinable from other greenlets."""

    _had_greenlet = False   # bound to a greenlet once (monkey and the fork hooks read it)
    _target = None          # weakref to that greenlet; None once released

    def __init__(self, *_args, **_kwargs):
        pass

    def _set_greenlet(self, glet):
        self._target, self._had_greenlet = weakref.ref(glet), True

    @classmethod
    def _usable(cls, handle):
        """handle (or a new one) after checking it may be bound to a new greenlet."""
        if handle is None:
            return cls()
        if not isinstance(handle, cls):
            raise AssertionError('Must be a gevent thread handle')
        if handle._had_greenlet:
            raise RuntimeError('thread already started')
        return handle

    def _running(self):
        """The greenlet, while it may still run; else None."""
        target = self._target
        return None if target is None else target()

    def _require_started(self):
        if self._had_greenlet:
            return
        raise RuntimeError('thread not started')

    @property
    def ident(self):
        glet = self._running()
        return None if glet is None else get_ident(glet)

    def is_done(self):
        glet = self._running()
        return glet is None or glet.dead

    def join(self, timeout=None):
        self._require_started()
        glet = self._running()
        if glet is None:
            return
        if glet is getcurrent():
            raise RuntimeError('Cannot join current thread')
        if timeout is not None and timeout < 0:
            timeout = None    # -1: the stdlib's "no timeout"
        if isinstance(glet, Greenlet):
            glet.join(timeout)
            return
        # A raw greenlet (the main one) has no join(): look again every millisecond. Done is
        # also _set_done() (threading's shutdown marks the main thread so while it still runs).
        del glet
        deadline = None if timeout is None else monotonic() + timeout
        while not self.is_done() and (deadline is None or monotonic() < deadline):
            sleep(0.001)

    def _set_done(self, enter_hub=True):
        self._require_started()
        self._target = None
        if enter_hub:
            sleep(0.001)   # let the greenlets that joined it see it done

    def __repr__(self):
        cls = type(self)
        return f'<{cls.__module__}.{cls.__name__} at {id(self):#x} greenlet={self._running()!r}>'


def start_joinable_thread(function, handle=None, daemon=True):
    """3.13+: run function() in a new greenlet; return its handle (the one given, or a new
    one)."""
    handle = _ThreadHandle._usable(handle)
    handle._set_greenlet(_spawn(function, (), None))
    return handle


def _make_thread_handle(*_args):
    """3.13+: a handle for the running greenlet (threading's main and dummy threads)."""
    handle = _ThreadHandle()
    handle._set_greenlet(getcurrent())
    return handle


class LockType(_core.Lock):
    """_thread.lock on greenlets: pyconc's C Lock. A failed non-blocking acquire in a greenlet
    (not the hub) lets the others run once, so that a loop polling a lock -- Thread.is_alive()
    does -- cannot keep the greenlet that holds it from ever releasing it."""

    def acquire(self, blocking=True, timeout=-1):
        got = _core.Lock.acquire(self, blocking, timeout)
        if not (got or blocking):
            hub = _hub_of_this_thread()
            if hub is not None and hub is not getcurrent():
                sleep()
        return got

    def __init_subclass__(cls, **kwargs):
        raise TypeError("type 'LockType' is not an acceptable base type")

    acquire_lock = acquire

    def release_lock(self):
        return self.release()

    def locked_lock(self):
        return self.locked()


allocate_lock = LockType
lock = LockType   # 3.13's name


def exit():
    """End the running greenlet (raises GreenletExit)."""
    raise GreenletExit


def stack_size(size=None):
    """_thread.stack_size: greenlets have no stacks of their own to size, so only a request
    above the native setting reaches it; a smaller valid one is accepted and ignored (0 is
    reported back as 0), and one under 32 KiB is a ValueError."""
    native = _native_stack_size()
    if size is None:
        return native
    if size > native:
        return _native_stack_size(size)
    if size == 0:
        return 0
    if size < 32768:
        raise ValueError(size)
    return None
