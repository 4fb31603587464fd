"""pyconc.gevent.timeout -- Timeout and with_timeout, on the hub's C timers.

A Timeout owns one timer of the hub of the thread that made it. start() arms it for the calling
greenlet; when it fires, the hub throws the Timeout (or the exception it was given) into that
greenlet. A Timeout(None) never fires: it holds the _NEVER stand-in instead of a timer.

The C core raises pyconc's Timeout from its own waits (Greenlet.join/get with a timeout), so the
class is registered with it at import (_core._set_gevent_class).
"""
from math import isnan as _isnan

from .. import _core
from ..greenlet import getcurrent

__all__ = ['Timeout', 'with_timeout']


class _NeverExpires:
    """The timer of a Timeout that cannot expire (seconds None), and what
    Timeout._start_new_or_dummy(None) returns: every operation is a harmless no-op, except
    start()."""
    __slots__ = ()

    pending = active = False
    seconds = timer = exception = None

    def start(self, *args, **kwargs):
        raise AssertionError("non-expiring timer cannot be started")

    def stop(self):
        return None

    cancel = close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None


_NEVER = _NeverExpires()
_UNSET = object()   # with_timeout: no timeout_value keyword given


class Timeout(BaseException):
    """Timeout(seconds=None, exception=None, ref=True, priority=-1)

    Raise exception (or this Timeout itself) in the current greenlet after seconds, from the
    time start() is called. Timeout(None) never expires. As a context manager it starts on
    entry and is closed on exit; with exception=False the timeout is raised but the with
    statement swallows it."""

    def __init__(self, seconds=None, exception=None, ref=True, priority=-1, _one_shot=False):
        super().__init__()    # args stays (): the constructor's arguments are not its args
        self.seconds = seconds
        self.exception = exception
        # _one_shot (gevent's keyword): made for one wait, so cancel() also closes it
        self._close_on_cancel = _one_shot
        if seconds is None:
            self.timer = _NEVER
        else:
            loop = _core.get_hub().loop
            self.timer = loop.timer(seconds or 0.0, ref=ref, priority=priority)

    def _to_raise(self):
        # a string or False as `exception` only changes the message: the Timeout is raised
        given = self.exception
        if given is None or given is False or isinstance(given, str):
            return self
        return given

    def start(self):
        """Arm the timeout for the calling greenlet."""
        if self.pending:
            raise AssertionError('%r is already started; to restart it, cancel it first' % self)
        if self.seconds is not None:
            self.timer.start(self._expire, getcurrent(), self._to_raise(), update=True)

    def _expire(self, target, error):
        # run by the hub when the timer fires
        target.throw(error)

    @classmethod
    def start_new(cls, timeout=None, exception=None, ref=True, _one_shot=False):
        """A started Timeout: timeout itself (started if need be) if it is a Timeout, else a new
        one made of (timeout, exception)."""
        if not isinstance(timeout, Timeout):
            made = cls(timeout, exception, ref=ref, _one_shot=_one_shot)
            made.start()
            return made
        if not timeout.pending:
            timeout.start()
        return timeout

    @staticmethod
    def _start_new_or_dummy(timeout, exception=None, ref=True):
        # (gevent's name; the waits of pyconc.gevent's modules use it) A started one-shot
        # Timeout for a number, a stand-in that never fires for None.
        if timeout is None:
            return _NEVER
        return Timeout.start_new(timeout, exception, ref, True)

    @property
    def pending(self):
        """True while the timeout is armed and has not fired."""
        timer = self.timer
        return timer.pending or timer.active

    def cancel(self):
        """Disarm the timeout if it is armed; it may be started again (unless made for one
        wait: then it is closed)."""
        self.timer.stop()
        if self._close_on_cancel:
            self.close()

    def close(self):
        """Disarm the timeout for good: it cannot be started again."""
        timer = self.timer
        timer.stop()
        timer.close()
        self.timer = _NEVER

    def __repr__(self):
        text = '<%s at 0x%x seconds=%s' % (type(self).__name__, id(self), self.seconds)
        if self.exception is not None:
            text += ' exception=%r' % (self.exception,)
        if self.pending:
            text += ' pending'
        return text + '>'

    def __str__(self):
        seconds = self.seconds
        if seconds is None:
            return ''
        text = '%s second%s' % (seconds, '' if seconds == 1 else 's')
        given = self.exception
        if given is False:
            return text + ' (silent)'
        if given is not None:
            text += ': %s' % (given,)
        return text

    def __lt__(self, other):
        try:
            theirs = other.seconds
        except AttributeError:
            # a plain number, or something not comparable at all
            try:
                return self.seconds < other
            except TypeError:
                return NotImplemented
        return self.seconds < theirs

    def __enter__(self):
        if not self.pending:
            self.start()
        return self

    def __exit__(self, typ, value, tb):
        self.close()
        # a silent timeout (exception=False) that fired ends the with block quietly
        return True if value is self and self.exception is False else None


def with_timeout(seconds, function, *args, **kwds):
    """Call function(*args, **kwds); if it takes more than seconds, raise Timeout, or, with a
    timeout_value keyword, return that value instead."""
    fallback = kwds.pop('timeout_value', _UNSET)
    limit = Timeout.start_new(seconds, _one_shot=True)
    try:
        return function(*args, **kwds)
    except Timeout as fired:
        if fired is not limit or fallback is _UNSET:
            raise
        return fallback
    finally:
        limit.cancel()


_core._set_gevent_class('Timeout', Timeout)


def _timeout_call(timeout, func, *args):
    """func(*args, timeout) where timeout is a number or None. gevent's waits also take a
    Timeout object: that one is started (if it is not yet), func waits with no timeout of its
    own, and the Timeout raises whatever it raises when it fires; it is cancelled afterwards."""
    if not isinstance(timeout, Timeout):
        return func(*args, timeout)
    armed = Timeout.start_new(timeout)
    try:
        return func(*args, None)
    finally:
        armed.cancel()


def _wait_call(timeout, func, *args):
    """func(*args, timeout) for the waits of gevent's linkable objects (Event.wait,
    AsyncResult.wait, Semaphore.wait and acquire), which differ from _timeout_call's in two
    ways, as gevent's: a Timeout object given as the timeout ends the wait when it fires and the
    wait answers as one that timed out (False) instead of raising it; and a number of another
    type (a Fraction, a Decimal) is read as a float, anything else being a TypeError ("must be
    real number")."""
    if isinstance(timeout, Timeout):
        armed = Timeout.start_new(timeout)
        try:
            return func(*args, None)
        except Timeout as fired:
            if fired is not armed:
                raise
            return False
        finally:
            armed.cancel()
    if timeout is not None and type(timeout) is not float and type(timeout) is not int:
        _isnan(timeout)
        timeout = float(timeout)
    return func(*args, timeout)
