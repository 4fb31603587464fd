"""pyconc.gevent.os -- gevent.os: cooperative descriptor I/O, fork and waitpid.

- nb_read(fd, n) / nb_write(fd, data), for descriptors in non-blocking mode (make_nonblocking):
  C (csrc/io/fdio.c) tries the system call and, on EAGAIN, parks the greenlet on its hub's
  epoll until the descriptor is ready; a thread without a hub blocks in poll() instead.
- tp_read / tp_write: plain os.read / os.write run in the hub's threadpool (any descriptor).
- close(fd): greenlets of this thread parked on fd are woken with gevent's EBADF error
  ('File descriptor was closed in another greenlet'), then fd is closed.
- fork() / forkpty(): the child goes on with a fresh hub (pyconc's hub also notices a fork by
  itself; the parent's parked greenlets never run in the child, see DESIGN.md "The hub").
- waitpid(pid, options): a greenlet waiting for a child lets the others run. pyconc waits for
  a given child through a pidfd (pidfd_open) on the hub's epoll and reaps nothing by itself:
  SIGCHLD keeps its ordinary meaning and a child is reaped by whoever waits for it, as with the
  plain stdlib. (gevent reaps all its children from a libev child watcher instead.) Only
  fork_and_watch(callback) has a child reaped behind the program's back -- that is what the
  callback asks for -- and keeps its status for a later waitpid().
"""
import errno
import os
import time
import warnings

from .. import _core
from .event import Event
from .hub import get_hub, reinit
from .hub import spawn_raw as _spawn_raw

__implements__ = ['fork', 'close']
__extensions__ = ['tp_read', 'tp_write']

_os_read = os.read
_os_write = os.write
_os_close = os.close
_fd_wait = _core._fd_wait

# _pause(seconds): the sleep of code that may run anywhere -- it parks a greenlet on its hub and
# blocks a plain thread (a C Event nobody sets; time.sleep may or may not be patched).
_pause = _core.Event().wait


def close(fd):
    """os.close(fd), once the greenlets of this thread parked on fd have been woken with
    OSError(EBADF, 'File descriptor was closed in another greenlet')."""
    _core._fd_cancel(fd)
    return _os_close(fd)


if hasattr(_core, 'nb_read'):
    __extensions__ += ['make_nonblocking', 'nb_read', 'nb_write']

    def make_nonblocking(fd):
        """Switch fd to non-blocking mode: True when that changed something, None when it was
        non-blocking already."""
        if not os.get_blocking(fd):
            return None
        os.set_blocking(fd, False)
        return True

    nb_read = _core.nb_read
    nb_write = _core.nb_write


def _in_threadpool(func, *args):
    return get_hub().threadpool.apply(func, args)


def tp_read(fd, n):
    """os.read(fd, n), run by a worker thread of the hub's threadpool."""
    return _in_threadpool(_os_read, fd, n)


def tp_write(fd, buf):
    """os.write(fd, buf), run by a worker thread of the hub's threadpool."""
    return _in_threadpool(_os_write, fd, buf)


def _in_greenlet():
    """Whether a wait here may park a greenlet: the thread has a hub, and we are not it.
    Anywhere else a wait must block the thread, as the stdlib's does."""
    hub = _core._get_hub_if_exists()
    return hub is not None and _core.getcurrent() is not hub


def _growing_delays(first, cap):
    """first, 2*first, 4*first ... never above cap: the pauses of a polling loop."""
    delay = first
    while True:
        yield delay
        delay = min(cap, 2 * delay)


if hasattr(os, 'fork'):
    _os_fork = os.fork
    _os_forkpty = getattr(os, 'forkpty', None)
    _os_waitpid = os.waitpid
    _pidfd_open = getattr(os, 'pidfd_open', None)
    # waitpid options under which the status may be a stop/continue, not an exit
    _STATE_CHANGES = getattr(os, 'WUNTRACED', 0) | getattr(os, 'WCONTINUED', 0)
    # errors of pidfd_open that mean "no pidfd here", not "no such child"
    _NO_PIDFD = {errno.ENOSYS, errno.EPERM, errno.EMFILE, errno.ENFILE, errno.ENOMEM}

    def _forked(do_fork):
        # Python 3.12+ warns about forking a process that has threads; the hub's threadpool
        # workers are pyconc's, not the program's, and the child gets a fresh hub anyway.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            result = do_fork()
        pid = result[0] if isinstance(result, tuple) else result
        if pid == 0:
            reinit()
        return result

    def fork_gevent():
        """os.fork(); the child goes on with a fresh hub."""
        return _forked(_os_fork)

    # -- waiting for a child to end ----------------------------------------------------------

    def _poll_exit(pid, timeout=None):
        """Wait until child pid has ended (without reaping it) by asking waitid(WNOWAIT) between
        growing pauses. True once it has ended (or is not our child), False after timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for delay in _growing_delays(0.0005, 0.05):
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:
                return True
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                delay = min(delay, left)
            _pause(delay)

    def _wait_exit(pid, timeout=None):
        """Wait until child pid has ended, without reaping it: on its pidfd in the hub's epoll,
        or by _poll_exit where the kernel has no pidfd_open (< 5.3) or refuses one. True when it
        has ended, False after timeout."""
        if _pidfd_open is not None:
            try:
                pidfd = _pidfd_open(pid)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    return True     # reaped already: the caller's waitpid will tell
                if exc.errno not in _NO_PIDFD:
                    raise
            else:
                try:
                    return _fd_wait(pidfd, 1, timeout)
                finally:
                    _os_close(pidfd)
        return _poll_exit(pid, timeout)

    # -- children reaped for fork_and_watch(callback) ----------------------------------------

    class _WatchedChild:
        """A child reaped by a greenlet of ours. Its callback gets this object: pid, rpid and
        rstatus, as the child watcher gevent passes; waitpid() reports the status later."""

        __slots__ = ('pid', 'rpid', 'rstatus', 'ended_at', 'reaped')

        def __init__(self, pid):
            self.pid = pid
            self.rpid = 0
            self.rstatus = 0
            self.ended_at = None        # time.monotonic() once reaped
            self.reaped = Event()

    # pid -> _WatchedChild, from the fork until waitpid() reports it (or _reap_children drops
    # it, 60 s after it ended by default, as gevent keeps an unclaimed status)
    _watched = {}

    def _reap_children(timeout=60):
        """Forget the watched children that ended more than timeout seconds ago."""
        oldest = time.monotonic() - timeout
        for pid in [pid for pid, child in _watched.items()
                    if child.ended_at is not None and child.ended_at <= oldest]:
            del _watched[pid]

    def _reap_watched(child, callback):
        try:
            while True:
                rpid, status = _os_waitpid(child.pid, os.WNOHANG)
                if rpid:
                    break
                _wait_exit(child.pid)
        except ChildProcessError:
            rpid, status = child.pid, 0     # someone else reaped it first
        child.rpid, child.rstatus, child.ended_at = rpid, status, time.monotonic()
        child.reaped.set()
        try:
            callback(child)
        finally:
            _reap_children()

    def _start_watching(pid, callback):
        if pid and callback is not None:
            child = _watched[pid] = _WatchedChild(pid)
            _spawn_raw(_reap_watched, child, callback)

    def _claim_watched(pid, options):
        """What waitpid(pid, options) returns for a child of _watched, or None if pid does not
        name one."""
        if pid == -1:
            ended = [child for child in _watched.values() if child.ended_at is not None]
            if not ended:
                return None
            child = min(ended, key=lambda c: c.ended_at)
        else:
            child = _watched.get(pid)
            if child is None:
                return None
            if child.ended_at is None:
                if options & os.WNOHANG:
                    return (0, 0)
                child.reaped.wait()
        _watched.pop(child.pid, None)
        return (child.rpid, child.rstatus)

    def waitpid(pid, options):
        """os.waitpid(pid, options); in a greenlet, the wait parks only that greenlet. A given
        pid is waited for on its pidfd; any-child forms (-1, 0, -pgid) and WUNTRACED /
        WCONTINUED poll with WNOHANG between pauses growing from 1 to 50 ms. WNOHANG, or a
        thread without a hub, is the stdlib's call as it is."""
        if pid > 0 or pid == -1:
            claimed = _claim_watched(pid, options)
            if claimed is not None:
                return claimed
        if options & os.WNOHANG or not _in_greenlet():
            return _os_waitpid(pid, options)
        options |= os.WNOHANG
        if pid > 0 and not options & _STATE_CHANGES:
            while True:
                result = _os_waitpid(pid, options)
                if result[0]:
                    return result
                _wait_exit(pid)
        for delay in _growing_delays(0.001, 0.05):
            result = _os_waitpid(pid, options)
            if result[0]:
                return result
            _pause(delay)

    def fork_and_watch(callback=None, loop=None, ref=False, fork=fork_gevent):
        """Fork; the child goes on with a fresh hub. Given a callback, a greenlet of the parent
        waits for the child to end, reaps it, keeps its status for waitpid() and calls
        callback(watcher) (watcher.pid, .rpid, .rstatus). Without one nothing watches the
        child: waitpid() waits for it cooperatively by itself."""
        pid = fork()
        _start_watching(pid, callback)
        return pid

    def fork(*args, **kwargs):
        """os.fork(); the child goes on with a fresh hub (see fork_and_watch)."""
        return fork_and_watch(*args, **kwargs)

    __extensions__ += ['fork_and_watch', 'fork_gevent']
    __implements__.append('waitpid')

    if _os_forkpty is not None:
        def forkpty_gevent():
            """os.forkpty(): (pid, master_fd); the child goes on with a fresh hub."""
            return _forked(_os_forkpty)

        def forkpty_and_watch(callback=None, loop=None, ref=False, forkpty=forkpty_gevent):
            """forkpty's fork_and_watch: (pid, master_fd)."""
            pid, master_fd = forkpty()
            _start_watching(pid, callback)
            return pid, master_fd

        def forkpty(*args, **kwargs):
            """os.forkpty(): (pid, master_fd); the child goes on with a fresh hub."""
            return forkpty_and_watch(*args, **kwargs)

        __implements__.append('forkpty')
        __extensions__ += ['forkpty_gevent', 'forkpty_and_watch']
else:   # pragma: no cover (no fork on this platform)
    __implements__.remove('fork')


# Everything else of os, as it is (monkey patching replaces only __implements__).
__imports__ = [name for name in dir(os) if not name.startswith('__') and name not in globals()]
globals().update((name, getattr(os, name)) for name in __imports__)

__all__ = sorted(set(__implements__ + __extensions__))
