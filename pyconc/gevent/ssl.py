"""pyconc.gevent.ssl -- TLS on the cooperative socket, with gevent.ssl's API.

The encryption is the stdlib's: OpenSSL through the `_ssl` extension, the very objects the
stdlib's `ssl` module uses. Only the waiting is pyconc's.

Design (the choice, and why):

  * `SSLSocket` subclasses pyconc.gevent.socket.socket. Its descriptor lives in the socket's
    wrapped `_socket.socket` (`self._sock`), which is always non-blocking, and the TLS state
    is one `_ssl._SSLSocket` made by `context._wrap_socket(self._sock, ...)`, kept as
    `self._sslobj` (the name the stdlib uses, which code in the wild reads). OpenSSL reads and
    writes that descriptor itself, so the bytes never pass through Python. The alternative,
    `SSLContext.wrap_bio` with two MemoryBIOs, would copy every record through Python
    buffers and a Python send/recv loop; it buys nothing here, since the C socket already
    knows how to wait.
  * Because the descriptor is non-blocking, an OpenSSL call that cannot go on raises
    SSLWantReadError / SSLWantWriteError instead of blocking. One helper, `_complete()`,
    turns that into a cooperative wait: it parks the greenlet on the hub until the descriptor
    is readable / writable (in a thread without a hub, poll(2) blocks the thread, as the
    stdlib's blocking socket would) and calls the same OpenSSL operation again with the same
    arguments, as OpenSSL requires. The socket's timeout bounds the whole operation; when it
    passes, socket.timeout (TimeoutError) with the text gevent uses for that operation
    ('The handshake operation timed out', 'The read operation timed out', 'The write
    operation timed out', else 'timed out'). On a non-blocking SSLSocket (timeout 0.0) the
    want-error itself reaches the caller, except that send() reports 0 bytes and sendall()
    raises SSLWantWriteError('The operation did not complete (write)'), as gevent does.
  * The waiting is the C socket's (`_wait_io`, csrc/io/socket.c): close() from another
    greenlet wakes a waiter with cancel_wait_ex, and two greenlets reading one socket get
    ConcurrentObjectUseError, exactly as for plain sockets.
  * Every method is written here on top of that: handshake, read, write, recv(_into),
    send(all), unwrap, accept (wraps the accepted socket), connect/connect_ex (wrap first,
    then connect, then hand-shake), the peer-information calls, makefile (the socket's, over
    recv_into/send), context manager and close (inherited). The behaviour that is not about
    waiting follows the stdlib's SSLSocket (its error messages, which methods refuse to work
    on a TLS socket), with gevent's differences: a public constructor with gevent's
    signature (the pre-3.7 stdlib one), read()'s default size, send()'s ignored `timeout`
    argument, get_server_certificate without a timeout.
  * `SSLContext` subclasses the stdlib's and makes SSLSockets. Its settable properties are
    redefined to store through `_ssl._SSLContext` directly: the stdlib's setters look up the
    module global `ssl.SSLContext`, which monkey-patching replaces by this class, and would
    then call themselves until RecursionError.

Module names: what gevent.ssl has. `__implements__` lists what monkey-patching puts into the
stdlib's `ssl`; `__imports__` every other name of the stdlib module, re-exported unchanged.
"""
import _ssl
import errno as _errno
import functools
import os as _os
import ssl as __ssl__
from socket import AF_INET, SOCK_STREAM, SOL_SOCKET, SO_TYPE
from time import monotonic as _monotonic

from .socket import socket, timeout_default
from .socket import timeout as _socket_timeout

# -- names ------------------------------------------------------------------------------------

__implements__ = ['SSLContext', 'SSLSocket', 'get_server_certificate', 'wrap_socket']
__extra__ = []

# The stdlib module's own namespace, minus what is implemented here and minus `socket` (this
# module's `socket` is the cooperative class); its dict order is the stdlib's definition order.
__imports__ = [name for name in vars(__ssl__)
               if not name.startswith('__') and name != 'socket' and name not in __implements__]
globals().update((name, getattr(__ssl__, name)) for name in __imports__)

# gevent leaves `namedtuple` (an import of the stdlib module) out of its __all__.
__all__ = __implements__ + [name for name in __imports__ if name != 'namedtuple'] + __extra__

orig_SSLContext = __ssl__.SSLContext

_Base = _ssl._SSLContext           # where the C-level properties live
_READ = 1                          # directions of the C socket's _wait_io()
_WRITE = 2
_WANT_ERRORS = (__ssl__.SSLWantReadError, __ssl__.SSLWantWriteError)

SSLWantReadError = __ssl__.SSLWantReadError
SSLWantWriteError = __ssl__.SSLWantWriteError
SSLError = __ssl__.SSLError
CERT_NONE = __ssl__.CERT_NONE
PROTOCOL_TLS = __ssl__.PROTOCOL_TLS


# -- the context ------------------------------------------------------------------------------

def _store(name, setter=None):
    """orig_SSLContext's property *name* with its getter kept and a setter that writes
    straight to the C base type (see the module docstring: the stdlib's setters recurse once
    patched); *setter* replaces the plain store where more is to be done."""
    inherited = vars(orig_SSLContext)[name]
    if setter is None:
        c_level = vars(_Base)[name]

        def setter(self, value):
            c_level.__set__(self, value)
    return property(inherited.fget, setter, None, inherited.__doc__)


def _set_minimum_version(self, value):
    if value == __ssl__.TLSVersion.SSLv3:
        # SSLv3 is also off through an option: asking for it as the floor clears that
        self.options &= ~__ssl__.Options.OP_NO_SSLv3
    _Base.minimum_version.__set__(self, value)


def _set_msg_callback(self, callback):
    relay = None
    if callback is not None:
        if not hasattr(callback, '__call__'):
            raise TypeError(f"{callback} is not callable.")
        # the inherited getter hands back the relay's `user_function`
        relay = functools.partial(_relay_tls_message, callback)
        relay.user_function = callback
    _Base._msg_callback.__set__(self, relay)


def _enum_member(enum_type, number):
    try:
        return enum_type(number)
    except ValueError:
        return number


# What a TLS message's type number means depends on its content type.
_MESSAGE_TYPE_ENUMS = {__ssl__._TLSContentType.HEADER: __ssl__._TLSContentType,
                       __ssl__._TLSContentType.ALERT: __ssl__._TLSAlertType}


def _relay_tls_message(user_function, conn, direction, version, content_type, msg_type, data):
    """Called by the C context for each TLS message while a `_msg_callback` is set: passes it
    on to the user's function with the numbers made the stdlib's enum members where known."""
    content_type = _enum_member(__ssl__._TLSContentType, content_type)
    msg_enum = _MESSAGE_TYPE_ENUMS.get(content_type, __ssl__._TLSMessageType)
    return user_function(conn, direction, _enum_member(__ssl__.TLSVersion, version),
                         content_type, _enum_member(msg_enum, msg_type), data)


class SSLContext(orig_SSLContext):
    """The stdlib's SSLContext whose wrap_socket() makes cooperative SSLSockets."""

    __slots__ = ()

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    suppress_ragged_eofs=True, server_hostname=None, session=None):
        """Wrap *sock* (a connected or unconnected stream socket) in an SSLSocket of
        `self.sslsocket_class`; *sock* is detached (its descriptor moves over)."""
        return self.sslsocket_class(sock=sock, server_side=server_side,
                                    do_handshake_on_connect=do_handshake_on_connect,
                                    suppress_ragged_eofs=suppress_ragged_eofs,
                                    server_hostname=server_hostname,
                                    _context=self, _session=session)

    options = _store('options')
    verify_flags = _store('verify_flags')
    verify_mode = _store('verify_mode')
    maximum_version = _store('maximum_version')
    minimum_version = _store('minimum_version', _set_minimum_version)
    _msg_callback = _store('_msg_callback', _set_msg_callback)


# -- the socket -------------------------------------------------------------------------------

def _context_for(ssl_version, cert_reqs, ca_certs, certfile, keyfile, npn_protocols, ciphers):
    """The context a bare SSLSocket(...) call describes (gevent's constructor without
    _context)."""
    context = SSLContext(ssl_version)
    context.verify_mode = cert_reqs
    if ca_certs:
        context.load_verify_locations(ca_certs)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    if npn_protocols:
        context.set_npn_protocols(npn_protocols)
    if ciphers:
        context.set_ciphers(ciphers)
    return context


class SSLSocket(socket):
    """A TLS connection over a cooperative socket (gevent.ssl.SSLSocket); see the module
    docstring. Made by SSLContext.wrap_socket(), or directly with gevent's signature."""

    def __init__(self, sock=None, keyfile=None, certfile=None, server_side=False,
                 cert_reqs=CERT_NONE, ssl_version=PROTOCOL_TLS, ca_certs=None,
                 do_handshake_on_connect=True, family=AF_INET, type=SOCK_STREAM, proto=0,
                 fileno=None, suppress_ragged_eofs=True, npn_protocols=None, ciphers=None,
                 server_hostname=None, _session=None, _context=None):
        # (family, type, proto and fileno are gevent's signature only: the socket always
        # comes from *sock*.)
        if _context is None:
            if server_side and not certfile:
                raise ValueError("certfile must be specified for server-side operations")
            if keyfile and not certfile:
                raise ValueError("certfile must be specified")
            keyfile = keyfile or certfile
            _context = _context_for(ssl_version, cert_reqs, ca_certs, certfile, keyfile,
                                    npn_protocols, ciphers)
            # the pre-3.7 constructor's arguments, kept as attributes as that API did
            vars(self).update(keyfile=keyfile, certfile=certfile, cert_reqs=cert_reqs,
                              ssl_version=ssl_version, ca_certs=ca_certs, ciphers=ciphers)
        self._context = _context

        # Refusals come before *sock* is touched: it stays usable when they raise.
        if sock.getsockopt(SOL_SOCKET, SO_TYPE) != SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if server_side and _session is not None:
            raise ValueError("session can only be specified in client mode")
        if _context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")

        # the stdlib SSLSocket's state, under its names (code in the wild reads them)
        vars(self).update(_session=_session, server_side=server_side,
                          server_hostname=server_hostname, _sslobj=None, _connected=False,
                          do_handshake_on_connect=do_handshake_on_connect,
                          suppress_ragged_eofs=suppress_ragged_eofs)

        # The descriptor moves from sock to this object, with the timeout.
        timeout, shape = sock.gettimeout(), (sock.family, sock.type, sock.proto)
        fd = sock.detach()
        try:
            super().__init__(*shape, fd)
        except BaseException:
            _close_fd(fd)
            raise
        self.timeout = timeout

        try:
            self.getpeername()
        except OSError as exc:
            if exc.errno != _errno.ENOTCONN:
                self.close()
                raise
            self._refuse_unencrypted_leftovers()
        else:
            self._connected = True
        if self._connected:
            try:
                self._sslobj = self._new_sslobj()
                if do_handshake_on_connect:
                    if self.timeout == 0.0:
                        raise ValueError("do_handshake_on_connect should not be specified "
                                         "for non-blocking sockets")
                    self.do_handshake()
            except (OSError, ValueError):
                self.close()
                raise

    def _refuse_unencrypted_leftovers(self):
        # Not connected (any more): if the peer sent bytes and went away before a handshake,
        # they must not be read later as if they had come through TLS (the stdlib's check,
        # CVE-2023-40217).
        try:
            data = self._sock.recv(1)      # the wrapped socket: never waits
        except OSError as exc:
            if exc.errno in (_errno.ENOTCONN, _errno.EINVAL, _errno.EAGAIN):
                return
            self.close()
            raise
        if data:
            reason = "Closed before TLS handshake with data in recv buffer."
            err = SSLError(_errno.ENOTCONN, reason)
            err.reason = reason
            err.library = None
            self.close()
            raise err

    def _new_sslobj(self):
        return self._context._wrap_socket(self._sock, self.server_side, self.server_hostname,
                                          owner=self, session=self._session)

    # -- the wait ---------------------------------------------------------------------------

    def _complete(self, operation, args, timeout_text='timed out'):
        """Runs operation(*args), a method of self._sslobj, until OpenSSL stops asking for the
        descriptor, waiting for it in between; see the module docstring."""
        end = None
        while True:
            try:
                return operation(*args)
            except _WANT_ERRORS as want:
                if self.timeout == 0.0:
                    raise
                end = self._wait_for_openssl(want, end, timeout_text)

    def _wait_for_openssl(self, want, end, timeout_text):
        """Parks until the descriptor is ready for what OpenSSL asked for (`want`, a
        want-read or want-write error). `end` is the operation's deadline, None before its
        first wait (it is set then, from the socket's timeout); returns it."""
        direction = _READ if isinstance(want, SSLWantReadError) else _WRITE
        if self.timeout is None:
            self._wait_io(direction, None)
            return None
        now = _monotonic()
        if end is None:
            end = now + self.timeout
        try:
            if now >= end:
                raise _socket_timeout(timeout_text)
            self._wait_io(direction, end - now)
        except _socket_timeout:
            raise _socket_timeout(timeout_text) from None
        return end

    # -- TLS operations ---------------------------------------------------------------------

    def do_handshake(self):
        """Perform the TLS handshake (cooperatively; the socket's timeout applies)."""
        self._check_connected()
        self._complete(self._sslobj.do_handshake, (), 'The handshake operation timed out')

    def read(self, nbytes=2014, buffer=None):
        """Read up to *nbytes* decrypted bytes (into *buffer* if given: the count is
        returned). b'' / 0 at the end of the stream."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        if buffer is None:
            args, at_eof = (nbytes,), b''
        elif nbytes == 0:
            return 0     # gevent reads nothing here (OpenSSL would take 0 as "the buffer's size")
        else:
            args, at_eof = (nbytes, buffer), 0
        try:
            return self._complete(sslobj.read, args, 'The read operation timed out')
        except SSLError as exc:
            ragged = exc.args and exc.args[0] == __ssl__.SSL_ERROR_EOF
            if not (ragged and self.suppress_ragged_eofs):
                raise
        # the peer closed the connection without a TLS close_notify: the end of the stream
        return at_eof

    def write(self, data):
        """Encrypt and send *data*; returns its length."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        return self._complete(sslobj.write, (data,), 'The write operation timed out')

    def unwrap(self):
        """End TLS (close_notify both ways) and return this socket, now plain."""
        sslobj = self._sslobj
        if not sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        self._complete(sslobj.shutdown, ())
        self._sslobj = None
        return self

    def verify_client_post_handshake(self):
        if not self._sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        return self._sslobj.verify_client_post_handshake()

    # -- the socket API over TLS ------------------------------------------------------------

    def _no_flags(self, flags, call):
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to %s() on %s"
                             % (call, self.__class__))

    def _not_on_tls(self, call):
        return ValueError("%s not allowed on instances of %s" % (call, self.__class__))

    def recv(self, buflen=1024, flags=0):
        if self._sslobj is None:
            return super().recv(buflen, flags)
        self._no_flags(flags, 'recv')
        return self.read(buflen)

    def recv_into(self, buffer, nbytes=None, flags=0):
        if nbytes is None:
            nbytes = 1024
            if buffer is not None:
                with memoryview(buffer) as view:
                    nbytes = view.nbytes or 1024
        if self._sslobj is None:
            return super().recv_into(buffer, nbytes, flags)
        self._no_flags(flags, 'recv_into')
        return self.read(nbytes, buffer)

    def send(self, data, flags=0, timeout=timeout_default):
        # *timeout* is accepted and, as by gevent on TLS sockets, not used: the socket's
        # timeout applies.
        sslobj = self._sslobj
        if sslobj is None:
            plain_timeout = () if timeout is timeout_default else (timeout,)
            return super().send(data, flags, *plain_timeout)
        self._no_flags(flags, 'send')
        if self.timeout == 0.0:
            try:
                return sslobj.write(data)
            except (SSLWantReadError, SSLWantWriteError):
                return 0
        return self._complete(sslobj.write, (data,))

    def sendall(self, data, flags=0):
        sslobj = self._sslobj
        if sslobj is None:
            return super().sendall(data, flags)
        self._no_flags(flags, 'sendall')
        with memoryview(data) as view, view.cast('B') as octets:
            total = len(octets)
            if not total:
                return 0                 # (gevent's answer for nothing to send)
            if self.timeout == 0.0:
                self._sendall_now(octets, total)
            else:
                self._sendall_waiting(sslobj, octets, total)
        return None

    # sendall() hands OpenSSL at most this much per write: a write that cannot finish leaves
    # OpenSSL holding its progress, and the next write must offer at least that many bytes
    # again (else SSL: BAD_LENGTH); bounded pieces keep that debt small when a sendall is
    # abandoned (timeout, non-blocking), and keep each length within OpenSSL's int.
    _SENDALL_PIECE = 1 << 20

    def _sendall_now(self, octets, total):
        # non-blocking: as much as goes without waiting, then the want error
        piece = self._SENDALL_PIECE
        done = 0
        while done < total:
            n = self.send(octets[done:done + piece])
            if not n:
                raise SSLWantWriteError('The operation did not complete (write)')
            done += n

    def _sendall_waiting(self, sslobj, octets, total):
        # One deadline for the whole call, as the C sendall of plain sockets. After a want
        # error OpenSSL must be offered the same bytes again: `done` is unchanged on retry.
        piece = self._SENDALL_PIECE
        end = None if self.timeout is None else _monotonic() + self.timeout
        done = 0
        while done < total:
            try:
                done += sslobj.write(octets[done:done + piece])
            except _WANT_ERRORS as want:
                end = self._wait_for_openssl(want, end, 'timed out')

    def sendto(self, data, flags_or_addr, addr=None):
        if self._sslobj is not None:
            raise self._not_on_tls('sendto')
        rest = (flags_or_addr,) if addr is None else (flags_or_addr, addr)
        return super().sendto(data, *rest)

    def recvfrom(self, buflen=1024, flags=0):
        if self._sslobj is not None:
            raise self._not_on_tls('recvfrom')
        return super().recvfrom(buflen, flags)

    def recvfrom_into(self, buffer, nbytes=None, flags=0):
        if self._sslobj is not None:
            raise self._not_on_tls('recvfrom_into')
        return super().recvfrom_into(buffer, nbytes, flags)

    # Ancillary data would travel unencrypted: refused outright, TLS or not (as the stdlib).
    def recvmsg(self, *args, **kwargs):
        raise NotImplementedError("recvmsg not allowed on instances of %s" % self.__class__)

    def recvmsg_into(self, *args, **kwargs):
        raise NotImplementedError("recvmsg_into not allowed on instances of %s"
                                  % self.__class__)

    def sendmsg(self, *args, **kwargs):
        raise NotImplementedError("sendmsg not allowed on instances of %s" % self.__class__)

    def pending(self):
        """Decrypted bytes already buffered (readable without waiting)."""
        return 0 if self._sslobj is None else self._sslobj.pending()

    def shutdown(self, how):
        self._sslobj = None
        super().shutdown(how)

    def _real_close(self):
        self._sslobj = None
        super()._real_close()

    def dup(self):
        raise NotImplementedError("Can't dup() %s instances" % self.__class__.__name__)

    # -- connection ---------------------------------------------------------------------------

    def _checkClosed(self, msg=None):
        """(The stdlib's hook for a closed-socket check; nothing to check here.)"""

    def _check_connected(self):
        if not self._connected:
            # connect() may have finished without our knowing (connect_ex's EINPROGRESS):
            # getpeername() raises ENOTCONN if it has not
            self.getpeername()

    def _real_connect(self, addr, connect_ex):
        if self.server_side:
            raise ValueError("can't connect in server-side mode")
        if self._connected or self._sslobj is not None:
            raise ValueError("attempt to connect already-connected SSLSocket!")
        self._sslobj = self._new_sslobj()
        try:
            # connect() returns None; connect_ex() the errno, 0 when connected
            failed = super().connect_ex(addr) if connect_ex else super().connect(addr)
            if not failed:
                self._connected = True
                if self.do_handshake_on_connect:
                    self.do_handshake()
            return failed
        except (OSError, ValueError):
            self._sslobj = None
            raise

    def connect(self, addr):
        """Connect to *addr*, then (do_handshake_on_connect) hand-shake."""
        self._real_connect(addr, False)

    def connect_ex(self, addr):
        """connect() that returns an errno instead of raising it."""
        return self._real_connect(addr, True)

    def accept(self):
        """Accept a connection; returns (server-side SSLSocket, address)."""
        conn, address = super().accept()
        conn = self.context.wrap_socket(conn, server_side=True,
                                        do_handshake_on_connect=self.do_handshake_on_connect,
                                        suppress_ragged_eofs=self.suppress_ragged_eofs)
        return conn, address

    # -- information --------------------------------------------------------------------------

    @property
    def context(self):
        return self._context

    @context.setter
    def context(self, ctx):
        self._context = ctx
        self._sslobj.context = ctx

    @property
    def session(self):
        if self._sslobj is not None:
            return self._sslobj.session
        return None

    @session.setter
    def session(self, session):
        self._session = session
        if self._sslobj is not None:
            self._sslobj.session = session

    @property
    def session_reused(self):
        if self._sslobj is not None:
            return self._sslobj.session_reused
        return None

    def getpeercert(self, binary_form=False):
        self._check_connected()
        return self._sslobj.getpeercert(binary_form)

    def _ask(self, what):
        # what the TLS object says, or None without one (not connected, closed, unwrapped)
        sslobj = self._sslobj
        return None if sslobj is None else getattr(sslobj, what)()

    def cipher(self):
        return self._ask('cipher')

    def shared_ciphers(self):
        return self._ask('shared_ciphers')

    def compression(self):
        return self._ask('compression')

    def version(self):
        return self._ask('version')

    def selected_alpn_protocol(self):
        if not _ssl.HAS_ALPN:
            return None
        return self._ask('selected_alpn_protocol')

    def selected_npn_protocol(self):
        # NPN is gone from the OpenSSL that CPython links; gevent answers None, unwarned
        return None

    def get_channel_binding(self, cb_type="tls-unique"):
        if self._sslobj is not None:
            return self._sslobj.get_channel_binding(cb_type)
        if cb_type not in __ssl__.CHANNEL_BINDING_TYPES:
            raise ValueError("Unsupported channel binding type")
        return None

    def _extra_repr(self):
        sslobj = getattr(self, '_sslobj', None)
        return ' server=%s, cipher=%r' % (getattr(self, 'server_side', None),
                                         '' if sslobj is None else sslobj.cipher())


SSLContext.sslsocket_class = SSLSocket


def _close_fd(fd):
    try:
        _os.close(fd)
    except OSError:
        pass


def wrap_socket(sock, keyfile=None, certfile=None, server_side=False, cert_reqs=CERT_NONE,
                ssl_version=PROTOCOL_TLS, ca_certs=None, do_handshake_on_connect=True,
                suppress_ragged_eofs=True, ciphers=None):
    """Wrap *sock* in an SSLSocket with a context built from these arguments (the old
    module-level API that gevent keeps)."""
    return SSLSocket(sock=sock, keyfile=keyfile, certfile=certfile, server_side=server_side,
                     cert_reqs=cert_reqs, ssl_version=ssl_version, ca_certs=ca_certs,
                     do_handshake_on_connect=do_handshake_on_connect,
                     suppress_ragged_eofs=suppress_ragged_eofs, ciphers=ciphers)


def get_server_certificate(addr, ssl_version=PROTOCOL_TLS, ca_certs=None):
    """The PEM certificate of the TLS server at *addr* (host, port); verified against
    *ca_certs* when it is given. Connects cooperatively."""
    from .socket import create_connection
    context = SSLContext(ssl_version)
    context.check_hostname = False
    if ca_certs is None:
        context.verify_mode = CERT_NONE
    else:
        context.verify_mode = __ssl__.CERT_REQUIRED
        context.load_verify_locations(ca_certs)
    with create_connection(addr) as plain:
        with context.wrap_socket(plain, server_hostname=addr[0]) as tls:
            der = tls.getpeercert(True)
    return __ssl__.DER_cert_to_PEM_cert(der)
