"""pyconc.gevent.socket -- the cooperative socket module, with gevent.socket's API.

A call that would block parks the calling greenlet on its thread's hub; in a thread without a
hub it blocks the thread, as the stdlib's blocking socket does.

Where things live:
  * `socket` is a subclass of the C type pyconc._core.CoopSocket (csrc/io/socket.c explains why
    it wraps a non-blocking _socket.socket, `self._sock`, instead of inheriting from one, and
    how it waits). The data path is C: recv*, send, sendall, sendto, accept, close, detach,
    shutdown, fileno and the per-call timeout.
  * This file adds the cold parts: connecting (with a cooperative host-name lookup), timeouts
    as settable attributes, files, dup, sendmsg, sendfile, repr, and one forwarding method per
    remaining _socket.socket method (bind, listen, setsockopt, ...). Forwarders are plain
    class attributes, so instances need no __getattr__ and keep the fast attribute lookup.
  * The stdlib's pure-Python socket methods that only need the socket interface (makefile,
    dup, the sendfile fallback, the inheritable flag) are used as they are, not rewritten.
  * Name lookups go to the hub's resolver (pyconc.gevent.resolver_thread: the native calls
    in the hub's threadpool); with no hub in the thread, straight to the native call.
"""
import _socket
import os
import socket as _stdsocket
import time
from errno import (EAGAIN, EALREADY, EBADF, ECONNREFUSED, EHOSTUNREACH,  # noqa: F401
                   EINPROGRESS, EINVAL, EISCONN, EWOULDBLOCK)
from os import strerror
from socket import _GLOBAL_DEFAULT_TIMEOUT

from .. import _core
from .exceptions import ConcurrentObjectUseError
from .hub import get_hub
from .timeout import Timeout

# -- the module's names --------------------------------------------------------------------------
# gevent splits its public names in groups, and monkey-patching reads the groups:
# `__implements__` replaces the stdlib's objects, `__dns__` is the subset that resolves names,
# `__extensions__` is gevent's own API, `__imports__` is the stdlib's objects re-exported.

__dns__ = ['getaddrinfo', 'gethostbyname', 'gethostbyname_ex', 'gethostbyaddr', 'getnameinfo',
           'getfqdn']
__implements__ = ['create_connection', 'socket', 'SocketType', 'fromfd', 'socketpair'] + __dns__
__extensions__ = ['cancel_wait', 'wait_read', 'wait_write', 'wait_readwrite']


def _stdlib_reexports():
    """The stdlib socket module's objects this module hands out unchanged: its helper
    functions and exception classes gevent names, then every int or str constant."""
    named = ('error', 'gaierror', 'herror', 'htonl', 'htons', 'ntohl', 'ntohs', 'inet_aton',
             'inet_ntoa', 'inet_pton', 'inet_ntop', 'timeout', 'gethostname', 'getprotobyname',
             'getservbyname', 'getservbyport', 'getdefaulttimeout', 'setdefaulttimeout',
             'errorTab', 'AddressFamily', 'SocketKind', 'CMSG_LEN', 'CMSG_SPACE', 'dup',
             'if_indextoname', 'if_nameindex', 'if_nametoindex', 'sethostname',
             'has_dualstack_ipv6', 'recv_fds', 'send_fds')
    names = [n for n in named if hasattr(_stdsocket, n)]
    names += [n for n in _stdsocket.__all__
              if isinstance(getattr(_stdsocket, n), (int, str)) and n not in names]
    return names


__imports__ = _stdlib_reexports()
globals().update((_n, getattr(_stdsocket, _n)) for _n in __imports__)
# (the stdlib's module-level close() and some TCP constants are added at the end)

error = _stdsocket.error
timeout = _stdsocket.timeout
SocketIO = _stdsocket.SocketIO
GSENDAGAIN = (EWOULDBLOCK,)          # gevent's public tuple of "try the send again" errnos

timeout_default = object()           # "use the socket's own timeout" (SSLSocket.send's default)
_USE_DEFAULT = object()              # "no timeout_exc given" for the wait_* functions
_READ, _WRITE, _EITHER = 1, 2, 3     # directions, as the C core numbers them


class cancel_wait_ex(error):
    """Raised in a greenlet parked on a socket that another greenlet closes."""

    def __init__(self):
        super().__init__(EBADF, 'File descriptor was closed in another greenlet')


# -- waiting on a descriptor -----------------------------------------------------------------

def _deadline_guard(seconds, timeout_exc):
    """A Timeout for `seconds` (a no-op one for None) that raises `timeout_exc`, by default
    socket.timeout('timed out')."""
    if timeout_exc is _USE_DEFAULT:
        timeout_exc = timeout('timed out')
    return Timeout._start_new_or_dummy(seconds, timeout_exc)


def _park_on_fd(fd, direction, seconds, timeout_exc):
    if seconds is None:
        _core.wait_fd(fd, direction)
        return
    with _deadline_guard(seconds, timeout_exc):
        _core.wait_fd(fd, direction)


def wait_read(fileno, timeout=None, timeout_exc=_USE_DEFAULT):
    """wait_read(fileno, timeout=None, [timeout_exc=None]) -> None

    Parks the current greenlet until *fileno* can be read (or *timeout* seconds pass: then
    *timeout_exc*, socket.timeout by default)."""
    _park_on_fd(fileno, _READ, timeout, timeout_exc)


def wait_write(fileno, timeout=None, timeout_exc=_USE_DEFAULT, event=_USE_DEFAULT):
    """wait_write(fileno, timeout=None, [timeout_exc=None]) -> None

    Parks the current greenlet until *fileno* can be written (`event` is accepted for
    gevent's signature and unused)."""
    _park_on_fd(fileno, _WRITE, timeout, timeout_exc)


def wait_readwrite(fileno, timeout=None, timeout_exc=_USE_DEFAULT, event=_USE_DEFAULT):
    """wait_readwrite(fileno, timeout=None, [timeout_exc=None]) -> None

    Parks the current greenlet until *fileno* can be read or written."""
    _park_on_fd(fileno, _EITHER, timeout, timeout_exc)


class _SocketDirection:
    """A socket's `_read_event` / `_write_event`: gevent exposes its libev watchers under
    those names, and code hands them to wait() and cancel_wait(). pyconc has no watcher
    object per socket, so this names the socket and the direction, and reports the socket's
    `ref` flag."""
    __slots__ = ('_sock', 'fd', 'events')

    callback = None                  # never started: wait() may use it

    def __init__(self, sock, direction):
        self._sock = sock
        self.fd = sock.fileno()
        self.events = direction

    ref = property(lambda self: self._sock.ref,
                   lambda self, value: setattr(self._sock, 'ref', value))

    def __repr__(self):
        return f'<{type(self).__name__} fd={self.fd} events={self.events}>'


def wait(watcher, timeout=None, timeout_exc=_USE_DEFAULT, hub=None):
    """wait(watcher, timeout=None, [timeout_exc=None]) -> None

    Parks the current greenlet until *watcher* fires: a socket's `_read_event` /
    `_write_event`, or any watcher with start(callback, *args) / stop() (the hub's wait)."""
    if isinstance(watcher, _SocketDirection):
        _park_on_fd(watcher.fd, watcher.events, timeout, timeout_exc)
        return
    if getattr(watcher, 'callback', None) is not None:
        raise ConcurrentObjectUseError('This socket is already used by another greenlet: %r'
                                       % (watcher.callback, ))
    hub = get_hub() if hub is None else hub
    with _deadline_guard(timeout, timeout_exc):
        hub.wait(watcher)


def cancel_wait(watcher, error=cancel_wait_ex):
    """Wakes the greenlet parked on *watcher* (a socket's `_read_event` / `_write_event`, or
    anything with `fd` and `events`) with *error*."""
    owner = getattr(watcher, '_sock', None)
    if isinstance(owner, socket):
        owner._cancel_wait(watcher.events, error)
    else:
        _core.cancel_fd(watcher.fd, watcher.events, error)


# -- what a socket wraps ---------------------------------------------------------------------

class _wrefsocket(_socket.socket):
    """The wrapped _socket.socket: weak-referenceable, like the stdlib's socket.socket (the
    ssl module keeps weak references to the sockets it wraps)."""
    __slots__ = ('__weakref__',)


class _closedsocket:
    """Stands in for the wrapped socket once the socket is closed or detached (the C core puts
    it there): it still answers family/type/proto and fileno() (-1); any other use raises
    EBADF, as a call on a closed descriptor would. It is false, so `if sock._sock:` tells
    whether a real socket is wrapped."""
    __slots__ = ('family', 'type', 'proto', '_old_fd', '_how')

    def __init__(self, family, type, proto, fd, how):
        self.family, self.type, self.proto = family, type, proto
        self._old_fd = fd            # the descriptor it had, for repr
        self._how = how              # 'closed' or 'detached'

    def fileno(self):
        return -1

    detach = fileno

    def close(self):
        """Closing twice is allowed."""

    def __bool__(self):
        return False

    def __getattr__(self, name):
        # every other method of a socket: its descriptor is gone
        raise OSError(EBADF, 'Bad file descriptor')

    def __repr__(self):
        return f'<socket object [closed proxy at {id(self):#x} fd={self._old_fd} {self._how}]>'


_IP_FAMILIES = frozenset(f for f in (_stdsocket.AF_INET, getattr(_stdsocket, 'AF_INET6', None))
                         if f is not None)


def _looked_up(family, address):
    """connect()'s address, its host name resolved through this module's getaddrinfo (so in
    the hub's threadpool) unless it is already numeric. Anything that is not an IP (host,
    port, ...) tuple is left for the socket call to accept or reject."""
    if family not in _IP_FAMILIES or not isinstance(address, tuple):
        return address
    try:
        host, port = address[0], address[1]
        _stdsocket.inet_pton(family, host)
    except (TypeError, IndexError):
        return address
    except OSError:
        pass                         # a name: look it up
    else:
        return address               # numeric already
    found = getaddrinfo(host, None, family)[0][4]
    return (found[0], port, *found[2:])


def _enum_or_int(value, enum_class):
    try:
        return enum_class(value)
    except ValueError:
        return value


# -- the socket ------------------------------------------------------------------------------

# The stdlib's class, as imported (monkey-patching later puts `socket` below in its place).
_StdlibSocket = _stdsocket.socket


class socket(_core.CoopSocket):
    """The stdlib socket's API on a cooperative socket: what would block parks only the calling
    greenlet. Constructor: socket(family=AF_INET, type=SOCK_STREAM, proto=0, fileno=None)
    (the C type's, which has no Python frame: accept() makes sockets the same way)."""

    __slots__ = ('_ref',)

    # The class of the wrapped socket; the C constructor asks for it on each new socket.
    _gevent_sock_class = _wrefsocket

    # the stdlib's own pure-Python methods, which use only the socket interface
    dup = _StdlibSocket.dup
    get_inheritable = _StdlibSocket.get_inheritable
    set_inheritable = _StdlibSocket.set_inheritable
    _check_sendfile_params = _StdlibSocket._check_sendfile_params
    _sendfile_use_send = _StdlibSocket._sendfile_use_send
    __enter__ = _StdlibSocket.__enter__
    __exit__ = _StdlibSocket.__exit__

    # -- attributes --

    @property
    def family(self):
        return _enum_or_int(self._sock.family, _stdsocket.AddressFamily)

    @property
    def type(self):
        # as gevent: the plain int, and SOCK_NONBLOCK shows only on a non-blocking socket
        # (the wrapped socket is always non-blocking underneath)
        kind = self._sock.type
        return kind if self.timeout == 0.0 else kind & ~_socket.SOCK_NONBLOCK

    @property
    def proto(self):
        return self._sock.proto

    @property
    def closed(self):
        return self._closed

    @property
    def hub(self):
        return get_hub()

    @property
    def _read_event(self):
        return _SocketDirection(self, _READ)

    @property
    def _write_event(self):
        return _SocketDirection(self, _WRITE)

    @property
    def ref(self):
        """gevent: whether waiting on this socket keeps the hub's loop alive. pyconc's hub
        counts parked greenlets rather than watchers, so the flag is only kept and shown."""
        return getattr(self, '_ref', True)

    @ref.setter
    def ref(self, value):
        self._ref = bool(value)

    def _accept(self):
        return self._sock._accept()

    def __repr__(self):
        try:
            inner = repr(self._sock)
        except Exception as exc:  # a broken descriptor must not break repr
            inner = f'<socket [{exc!r}]>'
        if not inner.startswith('<socket object'):
            return inner
        cls = type(self)
        state = ' [closed]' if self._closed else ''
        return (f'<{cls.__module__}.{cls.__name__}{state} at {id(self):#x}'
                f'{self._extra_repr()}{inner[len("<socket"):]}')

    def _extra_repr(self):
        """More text for repr, after the address (SSLSocket adds its state)."""
        return ''

    def __getstate__(self):
        raise TypeError("Cannot serialize socket object")

    # -- timeouts: the C `timeout` attribute, with the stdlib's checks --

    def settimeout(self, howlong):
        if howlong is not None:
            if not hasattr(howlong, '__float__'):
                raise TypeError('a float is required', howlong, type(howlong))
            howlong = float(howlong)
            if howlong < 0.0:
                raise ValueError('Timeout value out of range')
        self.timeout = howlong

    def gettimeout(self):
        return self.timeout

    def setblocking(self, flag):
        self.timeout = None if flag else 0.0

    def getblocking(self):
        return self.timeout != 0.0

    # -- connecting --

    def connect(self, address):
        """Connects to *address*; a host name in it is resolved without blocking the hub."""
        self._connect_parked(address)

    def connect_ex(self, address):
        """Like connect(), but a failure is returned as its errno (0: connected); a timeout
        is EAGAIN, a failed name lookup still raises."""
        try:
            self._connect_parked(address)
        except timeout:
            return EAGAIN
        except _stdsocket.gaierror:
            raise
        except error as exc:
            if not exc.errno:
                raise
            return exc.errno
        return 0

    def _connect_parked(self, address):
        if self.timeout == 0.0:
            self._sock.connect(address)   # non-blocking: the stdlib's behaviour, EINPROGRESS
            return
        address = _looked_up(self.family, address)
        until = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            pending = self._sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ERROR)
            if pending:
                raise error(pending, strerror(pending))
            code = self._sock.connect_ex(address)
            if code in (0, EISCONN):
                return
            if code not in (EINPROGRESS, EALREADY, EWOULDBLOCK):
                raise error(code, strerror(code))
            self._wait_io(_WRITE, None if until is None
                          else max(0.0, until - time.monotonic()))

    # -- data calls that are not C --

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        """sendmsg(buffers[, ancdata[, flags[, address]]]) -> count

        The stdlib's call; when the socket buffer is full, waits once until it is writable
        (then a second full buffer sends 0 bytes)."""
        send = self._sock.sendmsg
        try:
            return send(buffers, ancdata, flags, address)
        except BlockingIOError:
            if self.timeout == 0.0 or flags & getattr(_socket, 'MSG_DONTWAIT', 0):
                raise
        self._wait_io(_WRITE)
        try:
            return send(buffers, ancdata, flags, address)
        except BlockingIOError:
            return 0

    def makefile(self, mode="r", buffering=None, *, encoding=None, errors=None, newline=None):
        """A file object (binary or text, buffered or not) over this socket: the stdlib's
        SocketIO, which reads and writes through this socket's cooperative calls. The
        socket's descriptor stays open until the socket and every such file are closed."""
        if not set(mode) <= set('rwb'):
            # gevent's message, which leaves the %r as it is
            raise ValueError("invalid mode %r (only r, w, b allowed)")
        return _StdlibSocket.makefile(self, mode, buffering, encoding=encoding,
                                      errors=errors, newline=newline)

    def sendfile(self, file, offset=0, count=None):
        """sendfile(file[, offset[, count]]) -> sent

        Sends *file* (opened in binary mode) from *offset*, *count* bytes or up to EOF, and
        returns the number of bytes sent; the file position ends after the last byte sent.
        pyconc sends with send(), which parks the greenlet when the socket is full
        (os.sendfile would block the whole thread). SOCK_STREAM sockets only, not
        non-blocking ones."""
        return self._sendfile_use_send(file, offset, count)


def _forwarder(name):
    """A method that calls _socket.socket's `name` on the wrapped socket (or on the closed
    stand-in, which raises EBADF)."""
    def call(self, *args, **kwargs):
        return getattr(self._sock, name)(*args, **kwargs)
    call.__name__ = name
    call.__qualname__ = f'socket.{name}'
    call.__doc__ = getattr(_socket.socket, name).__doc__
    return call


for _n in dir(_socket.socket):
    if (not _n.startswith('_') and _n not in vars(socket)
            and not hasattr(_core.CoopSocket, _n) and callable(getattr(_socket.socket, _n))):
        setattr(socket, _n, _forwarder(_n))

SocketType = socket

# tells the C core which classes to make and wrap, and what close() wakes waiters with
_core._coop_socket_setup(socket, _wrefsocket, _closedsocket, cancel_wait_ex)


# -- making sockets --------------------------------------------------------------------------

def fromfd(fd, family, type, proto=0):
    """fromfd(fd, family, type[, proto]) -> socket object

    A cooperative socket on a duplicate of descriptor *fd* (which stays the caller's)."""
    return socket(family, type, proto, os.dup(fd))


def socketpair(family=None, type=_stdsocket.SOCK_STREAM, proto=0):
    """socketpair([family[, type[, proto]]]) -> (socket object, socket object)

    Two connected cooperative sockets (AF_UNIX unless *family* says otherwise)."""
    if family is None:
        family = _stdsocket.AF_UNIX
    return tuple(socket(family, type, proto, raw.detach())
                 for raw in _socket.socketpair(family, type, proto))


def _open_and_connect(family, kind, proto, sockaddr, timeout, source_address):
    """One create_connection() attempt; the socket is closed if it fails in any way."""
    sock = socket(family, kind, proto)
    try:
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(sockaddr)
    except BaseException:            # socket errors, and Timeout or GreenletExit too
        sock.close()
        raise
    return sock


def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None,
                      *, all_errors=False):
    """create_connection(address, timeout=None, source_address=None, *, all_errors=False)
    -> socket

    Connects to the (host, port) *address*, trying each address its name resolves to in
    turn; returns the first socket that connects. If none does, raises the last error, or all
    of them in an ExceptionGroup when *all_errors* is true. *timeout* and *source_address*
    apply to each attempt."""
    host, port = address
    candidates = list(getaddrinfo(host, port, 0, _stdsocket.SOCK_STREAM))
    if not candidates:
        raise error("getaddrinfo returns an empty list")
    failures = []
    try:
        for family, kind, proto, _canonical, sockaddr in candidates:
            try:
                return _open_and_connect(family, kind, proto, sockaddr, timeout,
                                         source_address)
            except error as exc:
                failures.append(exc)
        if all_errors:
            raise ExceptionGroup("create_connection failed", failures)
        raise failures[-1]
    finally:
        failures = None              # the raised error's traceback must not keep the list


def create_server(address, *, family=_stdsocket.AF_INET, backlog=None, reuse_port=False,
                  dualstack_ipv6=False):
    """The stdlib's create_server (same arguments, checks and errors), returning a listening
    cooperative socket."""
    if reuse_port and not hasattr(_socket, 'SO_REUSEPORT'):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not _stdsocket.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != _stdsocket.AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = socket(family, _stdsocket.SOCK_STREAM)
    try:
        _set_listener_options(sock, family, reuse_port, dualstack_ipv6)
        try:
            sock.bind(address)
        except error as exc:
            raise error(exc.errno, f'{exc.strerror} (while attempting to bind on address '
                                   f'{address!r})') from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
    except error:
        sock.close()
        raise
    return sock


def _set_listener_options(sock, family, reuse_port, dualstack_ipv6):
    if hasattr(_socket, 'SO_REUSEADDR'):
        try:
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
        except error:
            pass                     # some platforms refuse it on some sockets: not needed
    if reuse_port:
        sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
    if _stdsocket.has_ipv6 and family == _stdsocket.AF_INET6 and hasattr(_socket,
                                                                          'IPV6_V6ONLY'):
        # dual-stack: accept IPv4 too; otherwise IPv6 only, whatever the system default is
        sock.setsockopt(_stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_V6ONLY,
                        0 if dualstack_ipv6 else 1)


# -- name resolution -------------------------------------------------------------------------

def _resolve(call, *args):
    """Runs the lookup `call` (a _socket function name) through the hub's resolver, or
    directly when this thread has no hub (nothing else would run while it waits anyway)."""
    hub = _core._get_hub_if_exists()
    if hub is None:
        return getattr(_socket, call)(*args)
    return getattr(hub.resolver, call)(*args)


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """getaddrinfo(host, port, family=0, type=0, proto=0, flags=0)
    -> list of (family, type, proto, canonname, sockaddr)

    The stdlib's lookup, run by the hub's resolver; family and type come back as the
    stdlib's enums."""
    return [(_enum_or_int(af, _stdsocket.AddressFamily),
             _enum_or_int(kind, _stdsocket.SocketKind), pr, canonical, sockaddr)
            for af, kind, pr, canonical, sockaddr
            in _resolve('getaddrinfo', host, port, family, type, proto, flags)]


def gethostbyname(hostname):
    """gethostbyname(host) -> address

    The IPv4 address of *hostname*, as a dotted string."""
    return _resolve('gethostbyname', hostname)


def gethostbyname_ex(hostname):
    """gethostbyname_ex(host) -> (name, aliaslist, addresslist)

    The canonical name, the aliases and the IPv4 addresses of *hostname*."""
    return _resolve('gethostbyname_ex', hostname)


def gethostbyaddr(ip_address):
    """gethostbyaddr(host) -> (name, aliaslist, addresslist)

    The canonical name, aliases and addresses of the host with address (or name)
    *ip_address*."""
    return _resolve('gethostbyaddr', ip_address)


def getnameinfo(sockaddr, flags):
    """getnameinfo(sockaddr, flags) -> (host, port)

    The host and service names of socket address *sockaddr*."""
    return _resolve('getnameinfo', sockaddr, flags)


def getfqdn(name=''):
    """The fully qualified name of host *name* (empty or a wildcard address: this host): its
    canonical name or first alias that contains a dot, else the canonical name; *name* itself
    when the lookup fails."""
    name = name.strip()
    if name in ('', '0.0.0.0', '::'):
        name = _stdsocket.gethostname()
    try:
        canonical, aliases, _addresses = gethostbyaddr(name)
    except error:
        return name
    return next((n for n in (canonical, *aliases) if '.' in n), canonical)


__all__ = __implements__ + __extensions__ + __imports__ + ['create_server']
# the stdlib's module-level close() and some TCP constants are not in the lists above
for _n in ('close', 'TCP_KEEPALIVE', 'TCP_KEEPCNT'):
    if hasattr(_stdsocket, _n):
        globals()[_n] = getattr(_stdsocket, _n)
        if _n not in __all__:
            __all__.append(_n)
del _n
