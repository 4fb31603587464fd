"""pyconc.gevent.subprocess -- the stdlib's subprocess, cooperative (gevent.subprocess).

Popen is the stdlib's Popen (a subclass: its arguments, errors, child set-up and exit-status
handling are the running Python's own) with every wait made cooperative:

- waiting for the child (wait(timeout), communicate, run, call, ...) parks the greenlet on a
  *pidfd* of the child (pidfd_open, Linux >= 5.3) registered with the hub's epoll: no thread, no
  polling, and no SIGCHLD handler -- the program's own SIGCHLD handling (signal_handler, a
  signal.signal handler) is left alone. Where pidfd_open is unavailable the wait polls with
  cooperative sleeps (1 ms doubling to 50 ms). Chosen over gevent's approach (a libev child
  watcher that reaps every child on SIGCHLD) because nothing reaps children behind the
  program's back: os.waitpid and the stdlib's own Popen objects keep working unchanged.
- stdin/stdout/stderr pipes read and write cooperatively: a call waits for the pipe to be ready
  on the hub (pyconc._core._fd_wait), then makes the system call, which cannot block then (a
  write after POLLOUT is at most PIPE_BUF bytes). The descriptors stay in blocking mode, as the
  stdlib leaves them, so a pipe end passed on to another child is an ordinary pipe there.
- communicate() runs one greenlet per pipe (gevent's scheme), keeps what was read when its
  timeout expires (TimeoutExpired carries the partial output, as the stdlib's) and resumes on
  the next call.
- the child's start-up: the stdlib's parent blocks reading an error pipe until the child has
  called exec(); here the greenlet parks on that pipe instead.

Outside a hub (a plain thread) every wait blocks the thread, as the stdlib's does. gevent's
extensions are here: Popen.result (an AsyncResult of the return code) and Popen.rawlink, so a
Popen can be given to gevent.wait()/iwait().

run, call, check_call and check_output are the stdlib's own functions, bound to this module's
Popen.
"""
import errno
import io
import os
import select as _select
import subprocess as __subprocess__
import sys
import types

from .. import _core
from ..greenlet import getcurrent
from .greenlet import Greenlet, joinall, killall
from .os import _pidfd_open, _poll_exit

__implements__ = ['Popen', 'call', 'check_call', 'check_output', 'run']

__imports__ = [name for name in dir(__subprocess__)
               if not name.startswith('__') and name not in __implements__]
globals().update((name, getattr(__subprocess__, name)) for name in __imports__)

_fd_wait = _core._fd_wait
_PIPE_BUF = getattr(_select, 'PIPE_BUF', 512)
_os_read = os.read
_os_write = os.write
_os_close = os.close


def _in_greenlet():
    hub = _core._get_hub_if_exists()
    return hub is not None and getcurrent() is not hub


class _GreenPipe(io.RawIOBase):
    """One end of a pipe (the FileIO the stdlib opened), cooperative: a read or write first
    waits until the pipe is ready (parking the greenlet on its hub), then makes the system call.
    Closing it wakes a greenlet parked on it with OSError(EBADF)."""

    def __init__(self, raw):
        io.RawIOBase.__init__(self)
        self._raw = raw
        self._fd = raw.fileno()
        self._nonblocking = not os.get_blocking(self._fd)

    # what FileIO has and the buffered objects or users ask for
    name = property(lambda self: self._raw.name)
    mode = property(lambda self: self._raw.mode)
    closefd = property(lambda self: self._raw.closefd)
    _blksize = property(lambda self: self._raw._blksize)

    def __repr__(self):
        return '<%s %r>' % (type(self).__name__, self._raw)

    def fileno(self):
        return self._raw.fileno()

    def isatty(self):
        return self._raw.isatty()

    def readable(self):
        return self._raw.readable()

    def writable(self):
        return self._raw.writable()

    def seekable(self):
        return False

    @property
    def closed(self):
        return self._raw.closed

    def close(self):
        if not self._raw.closed:
            _core._fd_cancel(self._fd)
            self._raw.close()
        io.RawIOBase.close(self)

    def readinto(self, b):
        while True:
            _fd_wait(self._fd, 1)
            n = self._raw.readinto(b)
            if n is not None:
                return n

    def readall(self):
        chunks = []
        while True:
            _fd_wait(self._fd, 1)
            data = self._raw.read(io.DEFAULT_BUFFER_SIZE if chunks else 65536)
            if data is None:
                continue
            if not data:
                break
            chunks.append(data)
        return b''.join(chunks)

    def write(self, b):
        with memoryview(b) as view:
            if not self._nonblocking and len(view) > _PIPE_BUF:
                view = view[:_PIPE_BUF]   # cannot block once the pipe is writable
            while True:
                _fd_wait(self._fd, 2)
                n = self._raw.write(view)
                if n is not None:
                    return n


def _green(fobj, bufsize):
    """The cooperative equivalent of a pipe file object the stdlib Popen opened (FileIO,
    Buffered*, or a TextIOWrapper over one), taking over its descriptor."""
    if fobj is None:
        return None
    text = None
    if isinstance(fobj, io.TextIOWrapper):
        text = (fobj.encoding, fobj.errors, fobj.line_buffering, fobj.write_through)
        fobj = fobj.detach()
    buffered = not isinstance(fobj, io.FileIO)
    raw = fobj.detach() if buffered else fobj
    green = _GreenPipe(raw)
    if buffered:
        size = bufsize if bufsize is not None and bufsize > 1 else (
            raw._blksize if raw._blksize > 1 else io.DEFAULT_BUFFER_SIZE)
        green = (io.BufferedWriter if raw.writable() else io.BufferedReader)(green, size)
    if text is not None:
        encoding, errors, line_buffering, write_through = text
        green = io.TextIOWrapper(green, encoding=encoding, errors=errors,
                                 line_buffering=line_buffering, write_through=write_through)
    return green


_std_execute_child_code = getattr(__subprocess__.Popen._execute_child, '__code__', None)


class Popen(__subprocess__.Popen):
    """subprocess.Popen whose waits park the calling greenlet (see the module docstring)."""

    _pidfd = -1
    _communicating_greenlets = None
    _result = None

    def __init__(self, *args, **kwargs):
        self._pidfd = -1
        super().__init__(*args, **kwargs)
        if len(args) > 1:
            bufsize = args[1]
        else:
            bufsize = kwargs.get('bufsize', -1)
        self.stdin = _green(self.stdin, bufsize)
        self.stdout = _green(self.stdout, bufsize)
        self.stderr = _green(self.stderr, bufsize)

    __init__.__wrapped__ = __subprocess__.Popen.__init__
    __init__.__doc__ = __subprocess__.Popen.__init__.__doc__

    def __repr__(self):
        return '<%s at 0x%x pid=%r returncode=%r>' % (type(self).__name__, id(self), self.pid,
                                                      self.returncode)

    # -- starting ---------------------------------------------------------------------------

    def _close_pipe_fds(self, *fds):
        super()._close_pipe_fds(*fds)
        if self.pid is not None and self._pidfd < 0 and _pidfd_open is not None:
            # The child was just forked and nothing can have reaped it: its pidfd names it.
            try:
                self._pidfd = _pidfd_open(self.pid)
            except OSError:
                self._pidfd = -1
        # The stdlib's _execute_child now blocks reading its error pipe until the child has
        # called exec() (or failed to). Wait for that pipe cooperatively first; the read that
        # follows then returns at once. Found in the caller's frame, checked by code object:
        # on another implementation this is skipped and the read blocks, as the stdlib's.
        caller = sys._getframe(1)
        if caller.f_code is _std_execute_child_code:
            errpipe_read = caller.f_locals.get('errpipe_read')
            del caller
            if isinstance(errpipe_read, int) and _in_greenlet():
                _fd_wait(errpipe_read, 1)

    # -- waiting for the child --------------------------------------------------------------

    def _wait_exit(self, timeout):
        """Until the child has exited (not reaping it), or timeout (None: forever). True when
        it has."""
        if self._pidfd >= 0:
            return _fd_wait(self._pidfd, 1, timeout)
        if _pidfd_open is not None:
            try:
                self._pidfd = _pidfd_open(self.pid)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    return True
            else:
                return _fd_wait(self._pidfd, 1, timeout)
        return _poll_exit(self.pid, timeout)

    def _wait(self, timeout):
        """wait()'s work: cooperative, and without holding _waitpid_lock while waiting."""
        if self.returncode is not None:
            return self.returncode
        endtime = None if timeout is None else __subprocess__._time() + timeout
        while True:
            if self._waitpid_lock.acquire(False):
                try:
                    if self.returncode is not None:
                        break
                    (pid, sts) = self._try_wait(os.WNOHANG)
                    if pid == self.pid:
                        self._handle_exitstatus(sts)
                        break
                finally:
                    self._waitpid_lock.release()
                slice_ = None
            else:
                slice_ = 0.001   # another caller is reaping right now: look again shortly
            if endtime is not None:
                remaining = self._remaining_time(endtime)
                if remaining <= 0:
                    raise TimeoutExpired(self.args, timeout)
                slice_ = remaining if slice_ is None else min(slice_, remaining)
            if slice_ == 0.001:
                from .os import _pause
                _pause(slice_)
            else:
                self._wait_exit(slice_)
        return self.returncode

    def _handle_exitstatus(self, *args, _close=os.close, **kwargs):
        super()._handle_exitstatus(*args, **kwargs)
        self._close_pidfd(_close)
        result = self._result
        if result is not None and not result.ready():
            result.set(self.returncode)

    def _close_pidfd(self, _close=os.close):
        fd = self._pidfd
        if fd >= 0:
            self._pidfd = -1
            try:
                _close(fd)
            except OSError:
                pass

    def __del__(self, *args, **kwargs):
        self._close_pidfd()
        super().__del__(*args, **kwargs)

    # -- gevent's link protocol --------------------------------------------------------------

    @property
    def result(self):
        """An AsyncResult set to the return code when the child exits (gevent's). Asking for
        it the first time starts a greenlet that waits for the child."""
        result = self._result
        if result is None:
            from .event import AsyncResult
            result = self._result = AsyncResult()
            if self.returncode is not None:
                result.set(self.returncode)
            else:
                Greenlet.spawn(self._reap_for_result)
        return result

    def _reap_for_result(self):
        self.wait()

    def rawlink(self, callback):
        """Call callback(self) when the child has exited (gevent.wait()/iwait() use this)."""
        self.result.rawlink(_LinkProxy(callback, self))

    def unlink(self, callback):
        result = self._result
        if result is not None:
            for link in list(getattr(result, '_links', None) or ()):
                link = link[0]   # (callback, hub)
                if isinstance(link, _LinkProxy) and link.callback == callback:
                    result.unlink(link)
                    return

    # -- communicate -------------------------------------------------------------------------

    def _communicate(self, input, endtime, orig_timeout):
        """communicate()'s work when more than one pipe is involved (or a timeout): a greenlet
        per pipe, kept across a TimeoutExpired so that a new call resumes them."""
        if self.stdin and not self._communication_started:
            try:
                self.stdin.flush()
            except BrokenPipeError:
                pass
            if not input:
                try:
                    self.stdin.close()
                except BrokenPipeError:
                    pass
        glets = self._communicating_greenlets
        if glets is None:
            if not self._communication_started:
                self._fileobj2output = {}
                if self.stdout:
                    self._fileobj2output[self.stdout] = []
                if self.stderr:
                    self._fileobj2output[self.stderr] = []
            self._save_input(input)
            glets = []
            if self.stdin and self._input and not self.stdin.closed:
                glets.append(Greenlet.spawn(self._feed_stdin))
            for fobj in (self.stdout, self.stderr):
                if fobj and not fobj.closed:
                    glets.append(Greenlet.spawn(self._drain, fobj, self._fileobj2output[fobj]))
            self._communicating_greenlets = glets = tuple(glets)
        stdout = self._fileobj2output[self.stdout] if self.stdout else None
        stderr = self._fileobj2output[self.stderr] if self.stderr else None
        if glets:
            remaining = None if endtime is None else max(self._remaining_time(endtime), 0)
            done = joinall(glets, timeout=remaining)
            for g in done:
                g.get()   # a failure of a pipe greenlet is raised here
            if len(done) != len(glets):
                self._check_timeout(endtime, orig_timeout, stdout, stderr,
                                    skip_check_and_raise=True)
        self.wait(timeout=self._remaining_time(endtime))
        if stdout is not None:
            stdout = b''.join(stdout)
        if stderr is not None:
            stderr = b''.join(stderr)
        if self.text_mode:
            if stdout is not None:
                stdout = self._translate_newlines(stdout, self.stdout.encoding,
                                                  self.stdout.errors)
            if stderr is not None:
                stderr = self._translate_newlines(stderr, self.stderr.encoding,
                                                  self.stderr.errors)
        return (stdout, stderr)

    def _feed_stdin(self):
        fd = self.stdin.fileno()
        with memoryview(self._input) as view:
            try:
                while self._input_offset < len(view):
                    _fd_wait(fd, 2)
                    self._input_offset += _os_write(
                        fd, view[self._input_offset:self._input_offset + _PIPE_BUF])
            except BrokenPipeError:
                pass
        try:
            self.stdin.close()
        except BrokenPipeError:
            pass

    @staticmethod
    def _drain(fobj, chunks):
        fd = fobj.fileno()
        while True:
            _fd_wait(fd, 1)
            data = _os_read(fd, 32768)
            if not data:
                break
            chunks.append(data)
        fobj.close()

    def __exit__(self, exc_type, value, traceback):
        # As gevent's: greenlets communicate() left parked in the pipes are stopped first; a
        # foreign greenlet parked in a pipe (holding its buffered object) makes close() raise
        # RuntimeError('reentrant call'): the pipe itself is then closed under it (it wakes
        # with EBADF) and the child is still reaped.
        if self._communicating_greenlets is not None:
            still_running = [g for g in self._communicating_greenlets if not g.dead]
            if still_running:
                killall(still_running)
        for pipe in (self.stdout, self.stderr):
            if pipe:
                try:
                    pipe.close()
                except RuntimeError:
                    raw = pipe
                    while hasattr(raw, 'buffer') or hasattr(raw, 'raw'):
                        raw = getattr(raw, 'buffer', None) or raw.raw
                    raw.close()
        try:
            if self.stdin:
                self.stdin.close()
        except BaseException:
            self._exit_wait(exc_type)
            # Up to 3.13 the stdlib's __exit__ returned from its finally block when leaving on
            # KeyboardInterrupt, which dropped an error of this close; 3.14's lets it through
            # (and a return there is a SyntaxWarning).
            if exc_type != KeyboardInterrupt or sys.version_info >= (3, 14):
                raise
        else:
            self._exit_wait(exc_type)

    def _exit_wait(self, exc_type):
        if exc_type == KeyboardInterrupt:
            if self._sigint_wait_secs > 0:
                try:
                    self._wait(timeout=self._sigint_wait_secs)
                except TimeoutExpired:
                    pass
            self._sigint_wait_secs = 0
        else:
            self.wait()


class _LinkProxy:
    __slots__ = ('callback', 'obj')

    def __init__(self, callback, obj):
        self.callback = callback
        self.obj = obj

    def __call__(self, *args):
        callback, obj = self.callback, self.obj
        self.callback = self.obj = None
        if callback is not None:
            callback(obj)


def _rebind(func):
    """The stdlib's function func, its globals this module's (so its Popen is ours)."""
    new = types.FunctionType(func.__code__, globals(), func.__name__, func.__defaults__,
                             func.__closure__)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__doc__ = func.__doc__
    new.__qualname__ = func.__qualname__
    new.__module__ = __name__
    return new


call = _rebind(__subprocess__.call)
check_call = _rebind(__subprocess__.check_call)
check_output = _rebind(__subprocess__.check_output)
run = _rebind(__subprocess__.run)
getoutput = _rebind(__subprocess__.getoutput)
getstatusoutput = _rebind(__subprocess__.getstatusoutput)

__all__ = [name for name in __subprocess__.__all__]
