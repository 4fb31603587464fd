"""pyconc.gevent.event -- Event and AsyncResult.

Event is pyconc's C Event (the type under pyconc.threading.Event too), so a greenlet, a plain
thread or another thread's hub can wait on the same object; this face adds gevent's API around
it: rawlink/unlink (callbacks run in the linking thread's hub, see _links), ready(), isSet(), and
waits that accept a Timeout object. AsyncResult is an Event that also carries the outcome, a value
or an exception, for get() to return or raise.

A set() that wakes waiters is, in gevent, one notifier callback that switches to them in turn,
and a wait() that finds the object ready while that notifier is still queued or running waits
to be notified too (after the woken ones), instead of returning at once. The C set() queues the
woken greenlets themselves; the face queues a callback behind them (_end_notification) and,
until it has run, a greenlet's wait() on the set object parks on a Waiter that the callback
switches to -- the same order."""
import sys

from .. import _core
from ..greenlet import getcurrent
from ._links import Linkable
from .hub import Waiter
from .timeout import Timeout, _timeout_call, _wait_call

__all__ = ['Event', 'AsyncResult']

_event_wait = _core.Event.wait
_event_set = _core.Event.set
_get_hub_if_exists = _core._get_hub_if_exists
_getcurrent = getcurrent


class Event(Linkable, _core.Event):
    """A flag that greenlets (and threads) can wait for."""

    hub = None   # the hub of the last thread that waited (gevent's owner hub)

    def __init__(self):
        _core.Event.__init__(self)

    def _capture_hub(self):
        # A wait makes this thread's hub, if it has none, so that the wait yields to it (and
        # LoopExit is raised when nothing is left that could set the flag). The owner is only
        # recorded: the C wait works across threads whichever hub owns the object.
        hub = _core.get_hub()
        if self.hub is None or self.hub.destroyed:
            self.hub = hub

    def __repr__(self):
        cls = type(self)
        state = 'set' if self.is_set() else 'clear'
        return (f'<{cls.__module__}.{cls.__name__} at {id(self):#x} {state} '
                f'_links[{self.linkcount()}]>')

    __str__ = __repr__

    def ready(self):
        """True once the flag is set."""
        return self.is_set()

    def _links_ready(self):
        return self.is_set()

    def isSet(self):
        return self.is_set()

    def wait(self, timeout=None):
        """Block until the flag is set or the timeout (seconds, or a Timeout object) passes;
        return the flag as it is then."""
        self._capture_hub()
        if self.is_set() and ('_late' in self.__dict__ or '_notifiers' in self.__dict__):
            self._wait_for_notification()
            return True
        return _wait_call(timeout, _event_wait, self)

    def set(self):
        """Set the flag: every waiter wakes, the links are scheduled."""
        woke = self._nwaiters
        _event_set(self)
        d = self.__dict__
        if woke and '_late' not in d:
            hub = _get_hub_if_exists()
            if hub is not None:
                d['_late'] = (hub, [])
                hub.loop.run_callback(self._end_notification)
        if '_links' in d:
            self._check_and_notify()

    def _end_notification(self):
        # behind the greenlets the set() woke: the ones that waited meanwhile go on, in order
        hub, late = self.__dict__.pop('_late', (None, ()))
        self._resume_late(hub, late)

    def _resume_late(self, hub, late):
        for waiter in late:
            try:
                waiter.switch(None)
            except BaseException:   # (a raw greenlet that died of it) the others still go on
                hub.handle_error((self._resume_late, self), *sys.exc_info())

    def _notify_links(self, hub):
        # gevent's notifier also resumes the waits that came while it was queued, after the
        # links (see _wait_for_notification)
        try:
            Linkable._notify_links(self, hub)
        finally:
            late = self.__dict__.pop('_late_links', None)
            if late:
                self._resume_late(hub, late)

    def _wait_for_notification(self):
        """A wait on the set object while its notification is under way (module docstring):
        parks until the notification's end, if the caller is a greenlet that may yield."""
        hub = _get_hub_if_exists()
        if hub is None or _getcurrent() is hub:
            return
        d = self.__dict__
        if hub in d.get('_notifiers', ()):
            # the links' notifier of this hub is queued (it runs last): at its end
            late = d.setdefault('_late_links', [])
        else:
            hub_late = d.get('_late')
            if hub_late is None or hub_late[0] is not hub:
                return   # (a set() in another thread's hub notifies there: nothing to wait for)
            late = hub_late[1]
        waiter = Waiter(hub)
        late.append(waiter)
        try:
            waiter.get()
        except BaseException:
            if waiter in late:
                late.remove(waiter)
            raise

    def _reset_internal_locks(self):
        # threading's after-fork code of older versions calls this on a Thread's _started;
        # the C Event needs nothing
        return None


_UNSET = object()   # no value stored (None is a value)


class AsyncResult(Event):
    """A result that arrives later, once: set() stores a value, set_exception() an exception;
    get() returns the one or raises the other, waiting until there is one. Also usable as a
    Greenlet link and, through result()/done()/..., where a future is expected."""

    def __init__(self):
        Event.__init__(self)
        self._value = _UNSET
        self._exc_info = ()

    # -- the outcome

    def ready(self):
        """True once a value or an exception is stored."""
        return self._value is not _UNSET or bool(self._exc_info)

    def _links_ready(self):
        return self.ready()

    def successful(self):
        """True if a value was stored."""
        return self._value is not _UNSET

    @property
    def value(self):
        """The value stored, else None."""
        value = self._value
        return None if value is _UNSET else value

    @property
    def exc_info(self):
        """(type, exception, traceback) of the exception stored, else ()."""
        return self._exc_info

    @property
    def exception(self):
        """The exception stored, else None."""
        return self._exc_info[1] if self._exc_info else None

    def __repr__(self):
        # gevent's layout: "unset" is shown whenever no exception is stored (even next to a
        # value), and the value whenever it is not None or an exception is stored
        words = [type(self).__name__]
        value = self.value
        if self._exc_info:
            words.append(f'value={value!r}')
            if self._exc_info[1] is not None:
                words.append(f'exception={self._exc_info[1]!r}')
        else:
            if value is not None:
                words.append(f'value={value!r}')
            words.append('unset')
        return f"<{' '.join(words)}  _links[{self.linkcount()}]>"

    __str__ = __repr__

    # -- storing it

    def set(self, value=None):
        """Store value and wake everyone waiting."""
        self._value = value
        Event.set(self)

    def set_exception(self, exception, exc_info=None):
        """Store exception (with exc_info, the traceback get() re-raises it with) and wake
        everyone waiting."""
        self._exc_info = (tuple(exc_info[:3]) if exc_info
                          else (type(exception), exception, None))
        Event.set(self)

    def __call__(self, source):
        """As a link (glet.link(result)): store the outcome of the finished source."""
        if source.successful():
            self.set(source.value)
        else:
            self.set_exception(source.exception, getattr(source, 'exc_info', None))

    # -- reading it

    def _raise_exception(self):
        exc, tb = self._exc_info[1:]
        raise exc.with_traceback(tb)

    def _outcome(self):
        if self._value is _UNSET:
            self._raise_exception()
        return self._value

    def get(self, block=True, timeout=None):
        """Return the value or raise the exception; if there is none yet, wait for one
        (block=False, or the timeout passing: Timeout)."""
        if not self.ready():
            if not block:
                raise Timeout()
            self._capture_hub()
            # a wait that timed out raises even if the outcome came since (in a greenlet the C
            # wait says False then, as gevent's Timeout is final; a thread's looks once more)
            if not _timeout_call(timeout, _event_wait, self):
                raise Timeout(timeout)   # gevent raises a Timeout of the time that passed
        return self._outcome()

    def get_nowait(self):
        return self.get(block=False)

    def wait(self, timeout=None):
        """Block until the outcome is stored or the timeout passes; return the value (None
        when it is an exception or nothing came)."""
        if not self.ready():
            self._capture_hub()
            _wait_call(timeout, _event_wait, self)
        elif '_late' in self.__dict__ or '_notifiers' in self.__dict__:
            value = self.value
            self._wait_for_notification()
            return value
        return self.value

    # -- concurrent.futures-like names

    def result(self, timeout=None):
        return self.get(timeout=timeout)

    set_result = set

    def done(self):
        return self.ready()

    def cancel(self):
        return False

    def cancelled(self):
        return False
