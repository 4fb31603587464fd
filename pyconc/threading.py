"""pyconc.threading -- a drop-in for the stdlib's ``threading``, with its core in C.

Every blocking call here goes through pyconc's one wait mechanism (csrc/core/wait.c): FIFO wait lists,
futex parking with the GIL released, Ctrl-C interrupts any wait. Names, signatures, defaults,
exception types and messages follow CPython 3.11's ``threading``.

Threads that pyconc did not start (the main thread, threads started by the stdlib) are represented
by the stdlib's own objects, so ``current_thread()``, ``main_thread()`` and ``enumerate()`` give one
consistent view of every thread in the process.
"""
import os as _os
import sys as _sys
import threading as _std
import _thread

from . import _core
from ._core import (Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Thread,
                    TIMEOUT_MAX, current_thread)

__all__ = ['get_ident', 'active_count', 'Condition', 'current_thread', 'enumerate', 'main_thread',
           'TIMEOUT_MAX', 'Event', 'Lock', 'RLock', 'Semaphore', 'BoundedSemaphore', 'Thread',
           'Barrier', 'BrokenBarrierError', 'Timer', 'ThreadError', 'ExceptHookArgs',
           'setprofile', 'settrace', 'local', 'stack_size', 'excepthook', 'get_native_id',
           'getprofile', 'gettrace']

# The stdlib's own objects: existing `except` clauses and isinstance checks keep working.
BrokenBarrierError = _std.BrokenBarrierError
ThreadError = _std.ThreadError
ExceptHookArgs = _std.ExceptHookArgs
excepthook = _std.excepthook
__excepthook__ = _std.__excepthook__
_default_excepthook = excepthook   # while pyconc's is this one, the stdlib's current hook rules
# Thread-local data: the stdlib's C implementation, keyed by the OS thread's interpreter state,
# which pyconc threads have like any other thread.
local = _thread._local
get_ident = _thread.get_ident
get_native_id = _thread.get_native_id
stack_size = _thread.stack_size
# pyconc threads honour the stdlib's trace and profile hooks, so these are the stdlib's.
settrace = _std.settrace
setprofile = _std.setprofile
if hasattr(_std, "settrace_all_threads"):   # 3.12
    settrace_all_threads = _std.settrace_all_threads
    setprofile_all_threads = _std.setprofile_all_threads
    __all__ += ['setprofile_all_threads', 'settrace_all_threads']
gettrace = getattr(_std, "gettrace", None)
getprofile = getattr(_std, "getprofile", None)
if gettrace is None:  # Python < 3.10 has neither
    del gettrace, getprofile
    __all__.remove('gettrace')
    __all__.remove('getprofile')


def main_thread():
    """Return the main Thread object (the stdlib's: pyconc does not start the main thread)."""
    return _std.main_thread()


def enumerate():
    """Return a list of all live threads: the stdlib's and the ones pyconc started."""
    return _std.enumerate() + _core._own_threads()


def active_count():
    """Return the number of live threads, len(enumerate())."""
    return _std.active_count() + len(_core._own_threads())


def currentThread():
    """Deprecated alias of current_thread()."""
    import warnings
    warnings.warn('currentThread() is deprecated, use current_thread() instead',
                  DeprecationWarning, stacklevel=2)
    return current_thread()


def activeCount():
    """Deprecated alias of active_count()."""
    import warnings
    warnings.warn('activeCount() is deprecated, use active_count() instead',
                  DeprecationWarning, stacklevel=2)
    return active_count()


class Timer(Thread):
    """Timer(interval, function, args=None, kwargs=None): a thread that calls
    function(*args, **kwargs) once `interval` seconds after start(), unless cancel() came first.
    `finished` is the Event it waits on."""

    def __init__(self, interval, function, args=None, kwargs=None):
        Thread.__init__(self)
        self.interval = interval
        self.function = function
        self.args = [] if args is None else args
        self.kwargs = {} if kwargs is None else kwargs
        self.finished = Event()

    def cancel(self):
        """Keep the function from being called, if it has not been yet."""
        self.finished.set()

    def run(self):
        cancelled = self.finished.wait(self.interval)
        if not cancelled:
            self.function(*self.args, **self.kwargs)
        self.finished.set()


def _invoke_excepthook(thread, exc_type, exc_value, exc_tb):
    """Called by the C bootstrap when run() raised: the stdlib's invoke_excepthook logic."""
    try:
        hook = excepthook
        if hook is _default_excepthook:
            # A hook set on the stdlib's threading.excepthook (pytest, sentry-sdk) applies to
            # pyconc's threads too, unless pyconc.threading.excepthook was set itself.
            hook = _std.excepthook
        if hook is None:
            hook = __excepthook__
        hook(ExceptHookArgs([exc_type, exc_value, exc_tb, thread]))
    except Exception as exc:
        exc.__suppress_context__ = True
        del exc
        stderr = _sys.stderr if _sys.stderr is not None else thread._stderr
        print("Exception in threading.excepthook:", file=stderr, flush=True)
        _sys.excepthook(*_sys.exc_info())
    finally:
        exc_type = exc_value = exc_tb = None


def _join_non_daemon_threads():
    """Run by threading._shutdown at interpreter exit: wait for every non-daemon pyconc thread,
    including ones started while we wait."""
    me = current_thread()
    while True:
        own = [t for t in _core._own_threads() if t is not me]
        # Every started thread, daemon or not, first gets to run its first line (reading native_id
        # waits for that): a thread that the OS had not scheduled yet would otherwise make its
        # thread state while the interpreter is being freed (a crash at exit on 3.14).
        for t in own:
            t.native_id
        pending = [t for t in own if not t.daemon]
        if not pending:
            return
        for t in pending:
            t.join()


# At exit the interpreter waits for non-daemon pyconc threads, like for the stdlib's: the stdlib
# calls these hooks from threading._shutdown(), before it joins its own threads.
try:
    _std._register_atexit(_join_non_daemon_threads)
except RuntimeError:  # imported while the interpreter is already shutting down
    import atexit as _atexit
    _atexit.register(_join_non_daemon_threads)
def _wait_for_starting_threads():
    """os.fork() hook: Thread.start() returns before the new OS thread has run, unlike the
    stdlib's; a thread forked away while it made its thread state (an allocation, without the
    GIL) could leave the child an allocator lock that nobody holds there (ASan's allocator has no
    fork handlers). So a fork first lets every started thread run its first line, which the
    stdlib's start() waits for anyway."""
    for t in _core._own_threads():
        t.native_id


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(before=_wait_for_starting_threads,
                         after_in_child=_core._after_fork_child)
