"""pyconc.gevent.threading -- the names monkey.patch_thread() swaps into the stdlib's threading.

The stdlib module stays in place and keeps its own logic (Thread, current_thread, enumerate,
_shutdown...); patching replaces only the pieces listed in `__implements__`, after which that
logic runs threads as greenlets:

- starting a thread spawns a Greenlet and idents are greenlet idents (pyconc.gevent.thread);
  the main greenlet stands for the main thread;
- Lock is pyconc's C lock, Condition, Semaphore and BoundedSemaphore pyconc's C ones (a waiting
  greenlet parks on its hub); RLock stays the stdlib's Python RLock (`_CRLock = None`), which on
  that lock and ident is owned by a greenlet; local is pyconc.gevent.local.local;
- a greenlet that was not started as a Thread shows as a _DummyThread while it lives;
- in a child forked by a greenlet, that greenlet is the main thread.

Not meant to be used directly: pyconc.gevent.monkey applies it.
"""
import os
import sys
import threading as _std   # the module being patched; read through it, never through copies
import weakref

from .. import _core
from ..greenlet import getcurrent
from .greenlet import Greenlet
from .local import local
from .thread import (LockType, _ThreadHandle, _make_thread_handle, get_ident,
                     start_joinable_thread as _start_joinable_thread,
                     start_new_thread as _start_new_thread)

# 3.13+: threading tracks each Thread through a _ThreadHandle (its `_handle`, 3.14:
# `_os_thread_handle`) instead of a tstate lock
_HANDLE_ATTR = next((name for name in ('_handle', '_os_thread_handle')
                     if hasattr(_std.main_thread(), name)), None)

__implements__ = ['local', '_allocate_lock', 'Lock', 'get_ident', '_DummyThread', 'Condition',
                  'Semaphore', 'BoundedSemaphore', 'Thread', 'Timer']
if _HANDLE_ATTR is None:
    __implements__ += ['_start_new_thread', '_set_sentinel']
else:
    __implements__ += ['_start_joinable_thread', '_ThreadHandle', '_make_thread_handle']
# names threading lacks on this version that are added anyway
__extensions__ = [] if _HANDLE_ATTR is None else ['_set_sentinel']
if hasattr(_std, '_CRLock'):
    __implements__.append('_CRLock')
    _CRLock = None   # threading.RLock() then builds its Python RLock on the names above

_allocate_lock = allocate_lock = Lock = _set_sentinel = LockType
RLock = _std.RLock
Semaphore = _core.Semaphore
BoundedSemaphore = _core.BoundedSemaphore

_StdMainThread = _std._MainThread


class Condition(_core.Condition):
    """threading.Condition on pyconc's C condition variable. Without a lock it makes
    threading.RLock(), the greenlet-owned one once threading is patched."""

    def __init__(self, lock=None):
        _core.Condition.__init__(self, _std.RLock() if lock is None else lock)


def main_native_thread():
    """The Thread object of the process's main OS thread."""
    return _std.main_thread()


def _unregister_when_done(glet, ident, thread):
    """Drop thread from threading._active once glet has finished (a Greenlet: when its links
    run; a raw greenlet: when it is collected)."""
    def unregister(_):
        if _std._active.get(ident) is thread:
            del _std._active[ident]

    if isinstance(glet, Greenlet):
        glet.rawlink(unregister)
    else:
        # the weak reference lives as long as the thread object, which _active keeps
        thread._pyconc_glet_ref = weakref.ref(glet, unregister)


class _DummyThread(_std._DummyThread):
    """What current_thread() returns in a greenlet not started as a Thread: a started daemon
    thread named Dummy-N, in threading._active under the greenlet's ident until it ends."""

    def __init__(self):   # the stdlib's would register it under the OS thread's ident
        _std.Thread.__init__(self, name=_std._newname('Dummy-%d'), daemon=True)
        self._started.set()
        glet = getcurrent()
        self._ident = ident = get_ident(glet)
        if hasattr(self, '_set_native_id'):
            self._set_native_id()
        if _HANDLE_ATTR is not None:
            setattr(self, _HANDLE_ATTR, _make_thread_handle())
        _std._active[ident] = self
        _unregister_when_done(glet, ident, self)

    # Since 3.11.8/3.12.2 the stdlib's after-fork code re-classes the forking thread's dummy as
    # the child's _MainThread; pyconc's fork hook (below) makes a real _MainThread for the
    # forking greenlet instead, and this object stays a dummy. (The flag: whether this version
    # does that; gevent's fork-from-dummy test reads it.)
    _NEEDS_CLASS_FORK_FIXUP = (sys.version_info >= (3, 12, 2)
                               or (3, 11, 8) <= sys.version_info < (3, 12))

    def __setattr__(self, name, value):
        if name == '__class__' and value is _StdMainThread:
            return
        super().__setattr__(name, value)


class Thread(_std.Thread):
    """threading.Thread whose run() executes in a greenlet (the patched start function spawns
    one)."""

    if _HANDLE_ATTR is None:
        # Up to 3.12 the interpreter releases a thread's tstate lock when its OS thread ends,
        # and join()/is_alive() wait on that lock. For a greenlet, pyconc releases it when the
        # greenlet ends, whichever way it ends. (3.13+: the greenlet's _ThreadHandle.)
        def _set_tstate_lock(self):
            super()._set_tstate_lock()
            getcurrent().rawlink(self.__greenlet_ended)

        def __greenlet_ended(self, _glet):
            lock = self._tstate_lock
            if lock is not None:
                lock.release()
                self._stop()


class Timer(Thread, _std.Timer):
    """threading.Timer, run as a greenlet."""


class _ForkHooks:
    """os.register_at_fork handlers installed with the patch: in the child, the forking greenlet
    becomes the main thread, and (3.13+) the other greenlets' handles read as finished, since
    the child does not run them."""

    def __init__(self):
        self._parent_threads = None   # threading._active as the fork started

    def before(self):
        self._parent_threads = dict(_std._active)

    def in_child(self):
        parent_threads, self._parent_threads = self._parent_threads, None
        if parent_threads is None:
            return
        me = get_ident()
        if _HANDLE_ATTR is not None:
            for ident, thread in parent_threads.items():
                handle = getattr(thread, _HANDLE_ATTR, None)
                if (ident != me and isinstance(handle, _ThreadHandle)
                        and handle._had_greenlet):
                    handle._set_done(enter_hub=False)   # no hub runs here yet
        main = _StdMainThread()   # registers itself in _active under get_ident()
        main._ident = me
        _std._active[me] = main
        _std._main_thread = main


_AT_FORK = _ForkHooks()


def _gevent_will_monkey_patch(native_module, items, warn):
    """monkey's hook, just before threading is patched: the main thread's entry in
    threading._active moves to the main greenlet's ident (what the patched get_ident() returns)
    and the fork hooks are registered. From any other thread it only warns."""
    main = main_native_thread()
    if _std.current_thread() is not main:
        warn("Monkey-patching outside the main native thread. Some APIs will not be "
             "available. Expect a KeyError to be printed at shutdown.")
        return
    ident = get_ident()
    if ident not in _std._active:
        _std._active.pop(main.ident, None)
        main._ident = ident
        _std._active[ident] = main
    os.register_at_fork(before=_AT_FORK.before, after_in_child=_AT_FORK.in_child)
