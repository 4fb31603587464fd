"""pyconc.multiprocessing.connection -- a drop-in for the stdlib's ``multiprocessing.connection``:
Listener, Client, Pipe, wait, with pyconc's Connection at both ends.

- Listener(address=None, family=None, backlog=1, authkey=None): the stdlib's Listener (this
  class derives from it, so isinstance checks and every behaviour the stdlib's own code gives --
  address, last_accepted, close, the context manager, the authkey handshake of the running
  Python -- stay the stdlib's); only accept() hands back pyconc's Connection, whose send, recv
  and poll are C.
- Client(address, family=None, authkey=None): connects and returns pyconc's Connection; the
  handshake is the stdlib's answer_challenge / deliver_challenge, so either end may be the
  stdlib's.
- wait(object_list, timeout=None): as the stdlib's, over pyconc's C PollSelector (which parks only
  the calling greenlet inside a pyconc.gevent hub).
- Pipe, Connection: pyconc's (the same as pyconc.multiprocessing's).

The wire format is the stdlib's (a 4-byte big-endian length, or -1 and an 8-byte length, then
the bytes; pickles for send/recv), so a pyconc end talks to a stdlib end.
Not here: the Windows named pipes (family 'AF_PIPE' raises the stdlib's ValueError on Linux, as
it does there) and the undocumented XmlListener / XmlClient.
"""
import socket
import time
from multiprocessing import AuthenticationError, BufferTooShort  # noqa: F401
from multiprocessing import connection as _std
from multiprocessing.connection import (BUFSIZE, CONNECTION_TIMEOUT,  # noqa: F401
                                        address_type, answer_challenge, arbitrary_address,
                                        default_family, deliver_challenge, families)

from ._shared import Connection, Pipe

__all__ = ['Client', 'Listener', 'Pipe', 'wait']


class SocketListener(_std.SocketListener):
    """The stdlib's listening socket; accept() returns pyconc's Connection."""

    def accept(self):
        s, self._last_accepted = self._socket.accept()
        s.setblocking(True)
        return Connection(s.detach())


class Listener(_std.Listener):
    __doc__ = _std.Listener.__doc__

    def __init__(self, address=None, family=None, backlog=1, authkey=None):
        family = family or (address and address_type(address)) or default_family
        address = address or arbitrary_address(family)
        _std._validate_family(family)       # 'AF_PIPE' off Windows: the stdlib's ValueError
        self._listener = SocketListener(address, family, backlog)
        if authkey is not None and not isinstance(authkey, bytes):
            raise TypeError('authkey should be a byte string')
        self._authkey = authkey


def SocketClient(address):
    """A Connection to the socket at address (the stdlib's SocketClient, pyconc's Connection)."""
    family = address_type(address)
    with socket.socket(getattr(socket, family)) as s:
        s.setblocking(True)
        s.connect(address)
        return Connection(s.detach())


def Client(address, family=None, authkey=None):
    """Returns a connection to the address of a `Listener`."""
    family = family or address_type(address)
    _std._validate_family(family)
    c = SocketClient(address)
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError('authkey should be a byte string')
    if authkey is not None:
        answer_challenge(c, authkey)
        deliver_challenge(c, authkey)
    return c


def wait(object_list, timeout=None):
    """Waits until an object of object_list is ready to read (a Connection, a socket, a
    Process's sentinel, any object with fileno() or an fd); returns those that are, or [] when
    timeout (seconds, None for no limit) passes first."""
    from pyconc.selectors import EVENT_READ, PollSelector
    with PollSelector() as selector:
        for obj in object_list:
            selector.register(obj, EVENT_READ)
        if timeout is not None:
            deadline = time.monotonic() + timeout
        while True:
            ready = selector.select(timeout)
            if ready:
                return [key.fileobj for (key, events) in ready]
            if timeout is not None:
                timeout = deadline - time.monotonic()
                if timeout < 0:
                    return ready

