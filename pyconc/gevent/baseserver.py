"""pyconc.gevent.baseserver -- BaseServer, the accept machinery under StreamServer and
DatagramServer (the API of gevent.baseserver).

A started server owns one acceptor: a small greenlet parked on the listening descriptor in the
hub's epoll (pyconc._core._fd_wait). Each time the descriptor turns readable the acceptor has a
batch of up to max_accept do_read() calls run *in the hub greenlet* -- where gevent runs its io
watcher callbacks, so spawn=None (handle called right there) sees the same rules: a blocking
call is an error. Every accepted connection goes to spawn(handle, ...) and is closed when handle
returns.

Failures never kill a server that still has its socket: an error from do_read() (EMFILE,
ENFILE...) or from spawn is reported through the hub and accepting pauses for `delay` seconds,
a delay that doubles up to max_delay and falls back to min_delay after a good accept. Only the
errors of fatal_errors (the listening socket itself is unusable) close the server.
"""
import errno
import sys

from _socket import AF_INET, AF_INET6

from .. import _core
from ..greenlet import getcurrent
from .event import Event
from .greenlet import Greenlet
from .hub import get_hub

__all__ = ['BaseServer']


def _serve_one(handle, close, args):
    """One connection's life: its handler, then its release whatever the handler did."""
    try:
        return handle(*args)
    finally:
        close(*args)


class _Acceptor:
    """Calls `batch()` in the hub greenlet whenever descriptor `fd` is readable, until
    cancel().

    pyconc's hub has no watcher objects; a greenlet (the runner) parks on fd, queues `batch` as a
    hub callback when woken and stays suspended until that callback has run, so one readiness
    is served by exactly one batch."""

    __slots__ = ('fd', 'batch', 'runner')

    def __init__(self, fd, batch):
        self.fd = fd
        self.batch = batch
        self.runner = Greenlet(self._watch)
        self.runner.start()

    def _watch(self):
        me = getcurrent()
        hub = get_hub()
        while self.runner is me:
            try:
                _core._fd_wait(self.fd, 1)
            except OSError:
                if self.runner is me:
                    raise
                return          # cancel() woke us: a quiet end
            if self.runner is not me:
                return
            hub.run_callback(self._in_hub, me)
            hub.switch()        # resumed by _in_hub once the batch is over

    def _in_hub(self, runner):
        try:
            if self.runner is runner:
                self.batch()
        finally:
            if not runner.dead:
                runner.switch()

    def cancel(self):
        runner, self.runner = self.runner, None
        if runner is None or runner.dead or runner is getcurrent():
            return
        if runner:
            # parked on fd, or suspended until _in_hub resumes it: either way it will see
            # that it is no longer the runner and return
            _core._fd_cancel(self.fd)
        else:
            runner.kill(block=False)    # scheduled, never ran


class BaseServer:
    """The common part of gevent's servers; subclasses supply init_socket, do_read and
    do_close.

    listener: an address -- (host, port), 'host:port', '[ipv6]:port', ':port', a port number --
    or a socket already bound (and listening, for a stream server). handle: called with what
    do_read returned for each connection; a subclass may define a handle method instead.
    spawn: 'default' (a Greenlet per connection), a Pool or a pool size (accepting waits while
    the pool is full), None (handle runs in the hub and must not block) or any callable
    spawn(func, *args). Used as a context manager, the server is stopped on exit."""

    min_delay = 0.01    # first pause after a failed accept or spawn (seconds)
    max_delay = 1       # the pause doubles after each failure up to this
    max_accept = 100    # connections accepted per readiness of the listening socket
    stop_timeout = 1    # stop() waits this long for a pool's handlers, then kills them
    fatal_errors = (errno.EBADF, errno.EINVAL, errno.ENOTSOCK)
    _spawn = Greenlet.spawn

    def __init__(self, listener, handle=None, spawn='default'):
        self._stopped = Event()
        self._stopped.set()
        self._acceptor = None
        self._pause_timer = None
        self._handle = None
        self.pool = None
        try:
            self.set_listener(listener)
            self.set_spawn(spawn)
            self.set_handle(handle)
            self.delay = self.min_delay
            self.loop = get_hub()       # pyconc's hub is its own loop (timer, handle_error)
            if self.max_accept < 1:
                raise ValueError('max_accept must be positive int: %r' % (self.max_accept, ))
        except BaseException:
            self.close()        # a listener we were given is ours now: do not leak it
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # -- configuration ---------------------------------------------------------------------

    def set_listener(self, listener):
        if not hasattr(listener, 'accept'):
            self.family, self.address = parse_address(listener)
            return
        if callable(getattr(listener, 'do_handshake', None)):   # TLS is done per connection
            raise TypeError('Expected a regular socket, not SSLSocket: %r' % (listener, ))
        self.socket = listener
        self.family, self.address = listener.family, listener.getsockname()

    def set_spawn(self, spawn):
        pool = None
        if spawn == 'default':
            vars(self).pop('_spawn', None)      # back to the class's Greenlet.spawn
        else:
            if isinstance(spawn, int):
                from .pool import Pool
                spawn = Pool(spawn)
            if hasattr(spawn, 'spawn'):
                pool = spawn
                self._spawn = pool.spawn
            else:
                self._spawn = spawn             # None or a plain callable
        self.pool = pool
        if hasattr(pool, 'full'):
            self.full = pool.full
        else:
            vars(self).pop('full', None)
        self._wait_for_room()

    def set_handle(self, handle):
        if handle is not None:
            self.handle = handle
        handle = getattr(self, 'handle', None)      # given now, earlier, or a method
        if handle is None:
            raise TypeError("'handle' must be provided")
        self._handle = handle

    # -- the accept loop -------------------------------------------------------------------

    def start_accepting(self):
        if self._acceptor is None:
            self._acceptor = _Acceptor(self.socket.fileno(), self._accept_batch)

    def stop_accepting(self):
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.cancel()
        timer, self._pause_timer = self._pause_timer, None
        if timer is not None:
            timer.stop()
            timer.close()

    def _resume(self, _source=None):
        # pause timer or pool link fired: accept again unless the server was stopped meanwhile
        if self.started:
            self.start_accepting()

    def _wait_for_room(self):
        # with a pool: a one-shot link, called once its semaphore has a free slot
        pool = self.pool
        if pool is not None:
            pool._semaphore.rawlink(self._resume)

    def _accept_batch(self):
        for _ in range(self.max_accept):
            if self.full():
                self.stop_accepting()
                self._wait_for_room()
                return
            try:
                args = self.do_read()
            except BaseException:
                self._accept_failed()
                return
            self.delay = self.min_delay
            if not args:
                return          # nothing more to accept right now
            try:
                self.do_handle(*args)
            except BaseException:
                self._report((args[1:], self), *sys.exc_info())
                self._back_off()
                return

    def _accept_failed(self):
        t, v, tb = sys.exc_info()
        self._report(self, t, v, tb)
        if not self.is_fatal_error(v):
            self._back_off()
            return
        self.close()
        sys.stderr.write(f'ERROR: {self} failed with {str(v) or repr(v)}\n')

    def _back_off(self):
        if self.delay < 0:
            return              # a negative delay disables pausing
        self.stop_accepting()
        timer = self._pause_timer = self.loop.timer(self.delay)
        timer.start(self._resume)
        self.delay = min(self.max_delay, 2 * self.delay)

    def _report(self, context, t, v, tb):
        try:
            self.loop.handle_error(context, t, v, tb)
        except Exception:
            # reporting may fail when the process is out of descriptors (the traceback module
            # opens source files): settle for one line, the server carries on
            try:
                sys.stderr.write(f'{context} failed with {t.__name__}: {v}\n')
            except Exception:
                pass

    def do_handle(self, *args):
        spawn, handle, close = self._spawn, self._handle, self.do_close
        try:
            if spawn is None:
                _serve_one(handle, close, args)
            else:
                spawn(_serve_one, handle, close, args)
        except BaseException:
            close(*args)
            raise

    def do_read(self):
        """Accept one connection: the arguments for handle, or None when none is pending."""
        raise NotImplementedError()

    def do_close(self, *args):
        """Release what do_read returned once handle is done with it."""

    def full(self):
        """True while no connection may be accepted (the pool's full() when there is one)."""
        return False

    def is_fatal_error(self, ex):
        return isinstance(ex, OSError) and bool(ex.args) and ex.args[0] in self.fatal_errors

    # -- state -----------------------------------------------------------------------------

    def init_socket(self):
        """Make the listening socket when the server was given an address (start() calls
        it)."""

    @property
    def started(self):
        return not self._stopped.is_set()

    @property
    def closed(self):
        return 'socket' not in vars(self)

    def _host_and_port(self):
        address = self.address
        return address[:2] if isinstance(address, tuple) else (None, None)

    server_host = property(lambda self: self._host_and_port()[0],
                           doc="The host the server is bound to (None for a Unix address).")
    server_port = property(lambda self: self._host_and_port()[1],
                           doc="The port the server is bound to (None for a Unix address).")

    def start(self):
        """Make the listening socket if needed and start accepting."""
        self.init_socket()
        self._stopped.clear()
        try:
            self.start_accepting()
        except BaseException:
            self.close()
            raise

    def close(self):
        """Stop accepting and close the listening socket (handlers keep running)."""
        self._stopped.set()
        try:
            self.stop_accepting()
        finally:
            state = vars(self)
            sock = state.pop('socket', None)
            try:
                if sock is not None:
                    sock.close()
            except Exception:
                pass
            finally:
                for name in ('handle', '_handle', '_spawn', 'full'):
                    state.pop(name, None)
                pool = self.pool
                if pool is not None:
                    pool._semaphore.unlink(self._resume)

    def stop(self, timeout=None):
        """close(); then, with a pool, give its handlers `timeout` seconds (stop_timeout by
        default) to finish and kill the rest."""
        self.close()
        pool = self.pool
        if pool:
            pool.join(timeout=self.stop_timeout if timeout is None else timeout)
            pool.kill(block=True, timeout=1)

    def serve_forever(self, stop_timeout=None):
        """Start if needed, then wait until the server is stopped. Whatever ends the wait (stop()
        from elsewhere, KeyboardInterrupt, a kill) the server is stopped before returning."""
        if not self.started:
            self.start()
        try:
            self._stopped.wait()
        finally:
            # in a fresh greenlet: the waiting one may be on its way out (killed)
            stopper = Greenlet(self.stop, stop_timeout)
            stopper.start()
            stopper.join()

    # -- repr ------------------------------------------------------------------------------

    def __repr__(self):
        return f'<{type(self).__name__} at {hex(id(self))} {self._formatinfo()}>'

    def __str__(self):
        return f'<{type(self).__name__} {self._formatinfo()}>'

    def _formatinfo(self):
        parts = []
        if 'socket' in vars(self):
            try:
                parts.append(f'fileno={self.socket.fileno()}')
            except Exception as exc:
                parts.append(f'fileno={exc}')
        try:
            address = self.address
            if isinstance(address, tuple) and len(address) == 2:
                parts.append('address=%s:%s' % address)
            else:
                parts.append(f'address={address}')
        except Exception as exc:
            parts.append(str(exc) or '<error>')
        handle = vars(self).get('handle')
        if handle is not None:
            try:
                if getattr(handle, '__self__', None) is self:
                    parts.append(f'handle=<bound method {type(self).__name__}.'
                                 f'{handle.__name__} of self>')
                else:
                    parts.append(f'handle={handle!r}')
            except Exception as exc:
                parts.append(str(exc) or '<error>')
        return ' '.join(parts)


def _split_address(address):
    match address:
        case tuple():
            host = address[0]
            return (AF_INET6 if not host or ':' in host else AF_INET), address
        case int() | str() if ':' not in str(address):
            return AF_INET6, ('', int(address))     # a bare port: any address, v6 and v4
        case str():
            host, _, port = address.rpartition(':')
        case _:
            raise TypeError('Expected tuple or string, got %s' % type(address))
    family = AF_INET
    if host[:1] == '[' and host[-1:] == ']':
        family, host = AF_INET6, host[1:-1]
    return family, ('' if host == '*' else host, int(port))


def parse_address(address):
    """(family, address) for the listener forms BaseServer accepts."""
    try:
        return _split_address(address)
    except ValueError as exc:
        raise ValueError('Failed to parse address %r: %s' % (address, exc))
