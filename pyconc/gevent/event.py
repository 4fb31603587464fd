"""pyconc.gevent.event -- Event and AsyncResult.

Event is pyconc's C Event (the same object as pyconc.threading.Event's type underneath, so a
greenlet, a plain thread or another thread's hub can wait on it) with gevent's additions:
rawlink/unlink (callbacks run in the hub), ready(), isSet(). AsyncResult is an Event that carries
a value or an exception."""
from .. import _core
from ._links import Linkable
from .timeout import Timeout, _timeout_call

__all__ = ['Event', 'AsyncResult']


class Event(Linkable, _core.Event):
    """A flag that greenlets (and threads) can wait for."""

    hub = None   # the hub of the thread that waited on it last (gevent's owner hub)

    def __init__(self):
        _core.Event.__init__(self)

    def _capture_hub(self):
        # as gevent's: a wait creates this thread's hub, so that the wait yields to it (and
        # LoopExit applies when nothing could ever set the flag). Unlike gevent's, an object
        # owned by one thread's hub may be waited on from another: the C wait crosses threads.
        hub = _core.get_hub()
        owner = self.hub
        if owner is None or owner.destroyed:
            self.hub = hub

    def _links_ready(self):
        return self.is_set()

    def __str__(self):
        return '<%s.%s at 0x%x %s _links[%s]>' % (
            type(self).__module__, type(self).__name__, id(self),
            'set' if self.is_set() else 'clear', self.linkcount())

    __repr__ = __str__

    def isSet(self):
        return self.is_set()

    def ready(self):
        return self.is_set()

    def wait(self, timeout=None):
        """Wait until the flag is set or the timeout (a number or a Timeout); return the flag
        (True if a set() woke us)."""
        self._capture_hub()
        if isinstance(timeout, Timeout):
            return _timeout_call(timeout, _core.Event.wait, self)
        return _core.Event.wait(self, timeout)

    def set(self):
        """Set the flag; wake every waiter; schedule the links."""
        _core.Event.set(self)
        if '_links' in self.__dict__:
            self._check_and_notify()

    def _reset_internal_locks(self):
        pass


_NONE = object()


class AsyncResult(Event):
    """A one-time event that stores a value or an exception."""

    def __init__(self):
        Event.__init__(self)
        self._value = _NONE
        self._exc_info = ()

    @property
    def _exception(self):
        return self._exc_info[1] if self._exc_info else _NONE

    @property
    def value(self):
        """The stored value, or None."""
        return self._value if self._value is not _NONE else None

    @property
    def exc_info(self):
        """The (type, value, tb) of a stored exception, else ()."""
        return self._exc_info

    def __str__(self):
        result = '<%s ' % (type(self).__name__, )
        if self.value is not None or self._exception is not _NONE:
            result += 'value=%r ' % self.value
        if self._exception is not None and self._exception is not _NONE:
            result += 'exception=%r ' % self._exception
        if self._exception is _NONE:
            result += 'unset '
        return result + ' _links[%s]>' % self.linkcount()

    __repr__ = __str__

    def ready(self):
        """True once a value or an exception is stored."""
        return bool(self._exc_info) or self._value is not _NONE

    def _links_ready(self):
        return self.ready()

    def successful(self):
        """True if a value (not an exception) is stored."""
        return self._value is not _NONE

    @property
    def exception(self):
        """The stored exception, or None."""
        if self._exc_info:
            return self._exc_info[1]
        return None

    def set(self, value=None):
        """Store the value and wake everyone waiting."""
        self._value = value
        Event.set(self)

    def set_exception(self, exception, exc_info=None):
        """Store the exception (and its exc_info for the traceback) and wake everyone."""
        if exc_info:
            self._exc_info = (exc_info[0], exc_info[1], exc_info[2])
        else:
            self._exc_info = (type(exception), exception, None)
        Event.set(self)

    def _raise_exception(self):
        t, v, tb = self._exc_info
        raise v.with_traceback(tb)

    def get(self, block=True, timeout=None):
        """The value, or the exception raised again; wait for one if block (Timeout after
        timeout)."""
        if self._value is not _NONE:
            return self._value
        if self._exc_info:
            return self._raise_exception()
        if not block:
            raise Timeout()
        self._capture_hub()
        if not _timeout_call(timeout, _core.Event.wait, self) and not self.ready():
            raise Timeout(timeout)   # the timeout that expired, as gevent's
        return self.get(block=False)

    def get_nowait(self):
        return self.get(block=False)

    def wait(self, timeout=None):
        """Wait until ready (or the timeout); return the value (None after an exception)."""
        if not self.ready():
            self._capture_hub()
            _timeout_call(timeout, _core.Event.wait, self)
        return self.value

    def __call__(self, source):
        """As a link target: take the outcome of a finished Greenlet."""
        if source.successful():
            self.set(source.value)
        else:
            self.set_exception(source.exception, getattr(source, 'exc_info', None))

    def result(self, timeout=None):
        return self.get(timeout=timeout)

    set_result = set

    def done(self):
        return self.ready()

    def cancel(self):
        return False

    def cancelled(self):
        return False
