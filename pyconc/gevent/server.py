"""pyconc.gevent.server -- StreamServer (TCP, optionally TLS) and DatagramServer (UDP), with
gevent.server's API.

    def echo(sock, address):
        sock.sendall(sock.recv(1024))

    StreamServer(('127.0.0.1', 8000), echo).serve_forever()

StreamServer accepts on the listening socket's inner _socket.socket (non-blocking; _accept() is
C and returns a bare descriptor) and hands each connection to handle(sock, address) as a
pyconc.gevent.socket.socket, whose waits park only the handler's greenlet. Given ssl_context=
(or the keyword arguments of ssl.wrap_socket: keyfile, certfile, ...), the connection is wrapped
server-side by pyconc.gevent.ssl first, inside the handler's greenlet so that one slow TLS
handshake holds up nobody else. DatagramServer calls handle(data, address) per datagram; replies
go through its sendto(). Accepting, spawning, pausing after errors and stopping: BaseServer.
"""
import sys

from _socket import AF_INET, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR

from .baseserver import BaseServer
from .lock import Semaphore
from .socket import socket as _CoopSocket

__all__ = ['StreamServer', 'DatagramServer']

DEFAULT_REUSE_ADDR = None if sys.platform == 'win32' else 1


def _innermost(sock):
    # a pyconc.gevent socket wraps a _socket.socket (its _sock); a stdlib one is one already
    while hasattr(sock, '_sock'):
        sock = sock._sock
    return sock


class _BindingServer(BaseServer):
    """What both servers share: making their own socket when given an address."""

    reuse_addr = DEFAULT_REUSE_ADDR     # SO_REUSEADDR for the sockets made here (None: unset)

    @classmethod
    def _new_bound_socket(cls, address, family, kind):
        """A cooperative socket of the given kind bound to address. A failed bind closes it and
        adds the address to the error's message, so that the log says which one was taken."""
        sock = _CoopSocket(family=AF_INET if family is None else family, type=kind)
        try:
            if cls.reuse_addr is not None:
                sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, cls.reuse_addr)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            if exc.strerror is not None:
                exc.strerror = f'{exc.strerror}: {address!r}'
            raise
        return sock


class StreamServer(_BindingServer):
    """A TCP server calling handle(client_socket, address) for each connection, in a greenlet
    of its own (see BaseServer for spawn and pools).

    backlog: the listen() backlog of a socket the server makes itself (an error with a socket
    given as the listener). ssl_context: an SSLContext whose wrap_socket the accepted sockets go
    through; without one, any other keyword arguments are those of ssl.wrap_socket. The client
    socket is closed when handle returns."""

    backlog = 128

    def __init__(self, listener, handle=None, backlog=None, spawn='default', **ssl_args):
        super().__init__(listener, handle, spawn)
        try:
            self._configure_tls(ssl_args)
            if backlog is not None:
                if not self.closed:     # the listener was a socket, listening already
                    raise TypeError('backlog must be None when a socket instance is passed')
                self.backlog = backlog
        except BaseException:
            self.close()
            raise

    def _configure_tls(self, options):
        if not options:
            self.ssl_args = None
            return
        options.setdefault('server_side', True)
        context = options.pop('ssl_context', None)
        if context is not None:
            wrap = context.wrap_socket
        else:
            from .ssl import wrap_socket as wrap
        self.wrap_socket = wrap
        self.ssl_args = options     # what wrap_socket gets besides the socket

    @property
    def ssl_enabled(self):
        return bool(self.ssl_args)     # None when off; holds server_side at least when on

    @classmethod
    def get_listener(cls, address, backlog=None, family=None):
        """A new non-blocking cooperative socket bound to address and listening."""
        sock = cls._new_bound_socket(address, family, SOCK_STREAM)
        try:
            sock.listen(cls.backlog if backlog is None else backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def init_socket(self):
        if self.closed:
            listening = self.get_listener(self.address, self.backlog, self.family)
            self.socket, self.address = listening, listening.getsockname()
        self._handle = self.wrap_socket_and_handle if self.ssl_args else self.handle
        self.socket = _innermost(self.socket)

    def do_read(self):
        listening = self.socket
        try:
            fd, address = listening._accept()
        except BlockingIOError:
            if listening.timeout:
                raise           # a timeout of the caller's own (a blocking socket's SO_RCVTIMEO)
            return None         # the backlog is empty: back to waiting
        client = _CoopSocket(listening.family, listening.type, listening.proto, fileno=fd)
        return client, address

    def do_close(self, sock, *args):
        sock.close()

    def wrap_socket_and_handle(self, client_socket, address):
        """The handler when TLS is on: the handshake, then handle with the TLS socket (closed
        when handle returns)."""
        tls_socket = self.wrap_socket(client_socket, **self.ssl_args)
        with tls_socket:
            return self.handle(tls_socket, address)


class DatagramServer(_BindingServer):
    """A UDP server calling handle(data, address) for each datagram; self.sendto(data, address)
    answers (serialised between the greenlets that answer at once)."""

    def __init__(self, *args, **kwargs):
        self._raw_socket = None    # what do_read receives on: the socket's inner _socket.socket
        super().__init__(*args, **kwargs)
        self._send_lock = Semaphore()

    @classmethod
    def get_listener(cls, address, family=None):
        """A new cooperative UDP socket bound to address."""
        return cls._new_bound_socket(address, family, SOCK_DGRAM)

    def init_socket(self):
        if self.closed:
            bound = self.get_listener(self.address, self.family)
            self.socket, self.address = bound, bound.getsockname()
        self._raw_socket = _innermost(self.socket)

    def do_read(self):
        try:
            return self._raw_socket.recvfrom(8192)
        except BlockingIOError:
            return None         # no datagram waiting

    def sendto(self, *args):
        with self._send_lock:
            self.socket.sendto(*args)
