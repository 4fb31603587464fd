"""pyconc.gevent.resolver_thread -- the "thread" resolver (gevent's default one).

Each lookup is the native one (_socket's, the C library's resolver, /etc/hosts and all), run
in a thread of the hub's threadpool: the calling greenlet waits for the result while the
others go on. The results and the errors are exactly the stdlib's.
"""
import _socket

__all__ = ['Resolver']

# A failed lookup is an answer for the caller, not a fault for the hub to report.
_ANSWERS_NOT_FAULTS = (_socket.gaierror, _socket.herror)


def _in_threadpool(native):
    """A Resolver method that runs the native lookup `native` in the hub's threadpool."""
    def lookup(self, *args, **kwargs):
        return self.pool.apply(native, args, kwargs)
    lookup.__name__ = native.__name__
    lookup.__qualname__ = f'Resolver.{native.__name__}'
    lookup.__doc__ = native.__doc__
    return lookup


class Resolver:
    """Runs the stdlib's name lookups in a hub's threadpool (gevent.resolver.thread's API:
    Resolver(hub=None), the five lookup methods, `pool`, close())."""

    def __init__(self, hub=None):
        if hub is None:
            from .hub import get_hub
            hub = get_hub()
        self.pool = hub.threadpool
        quiet = tuple(exc for exc in _ANSWERS_NOT_FAULTS if exc not in hub.NOT_ERROR)
        if quiet:
            hub.NOT_ERROR += quiet

    def __repr__(self):
        cls = type(self)
        return f'<{cls.__module__}.{cls.__name__} at {id(self):#x} pool={self.pool!r}>'

    def close(self):
        """Nothing of its own to release: the threadpool belongs to the hub."""

    gethostbyname = _in_threadpool(_socket.gethostbyname)
    gethostbyname_ex = _in_threadpool(_socket.gethostbyname_ex)
    gethostbyaddr = _in_threadpool(_socket.gethostbyaddr)
    getaddrinfo = _in_threadpool(_socket.getaddrinfo)
    getnameinfo = _in_threadpool(_socket.getnameinfo)
