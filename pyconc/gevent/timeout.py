"""pyconc.gevent.timeout -- Timeout and with_timeout, on the hub's C timers."""
from ..greenlet import getcurrent
from .. import _core

__all__ = ['Timeout', 'with_timeout']


class _FakeTimer:
    __slots__ = ()

    @property
    def pending(self):
        return False

    active = pending

    @property
    def seconds(self):
        "Always returns None"

    timer = exception = seconds

    def start(self, *args, **kwargs):
        raise AssertionError("non-expiring timer cannot be started")

    def stop(self):
        return

    cancel = stop
    stop = close = cancel

    def __enter__(self):
        return self

    def __exit__(self, _t, _v, _tb):
        return


_FakeTimer = _FakeTimer()


class Timeout(BaseException):
    """Timeout(seconds=None, exception=None, ref=True, priority=-1)

    Raise exception (or this Timeout itself) in the current greenlet after seconds, from the
    time start() is called. Timeout(None) never expires. As a context manager it starts on
    entry and is closed on exit; with exception=False the timeout is raised but the with
    statement swallows it."""

    def __init__(self, seconds=None, exception=None, ref=True, priority=-1, _one_shot=False):
        BaseException.__init__(self)
        self.seconds = seconds
        self.exception = exception
        self._one_shot = _one_shot
        if seconds is None:
            self.timer = _FakeTimer
        else:
            self.timer = _core.get_hub().loop.timer(seconds or 0.0, ref=ref, priority=priority)

    def start(self):
        """Schedule the timeout."""
        if self.pending:
            raise AssertionError('%r is already started; to restart it, cancel it first' % self)
        if self.seconds is None:
            return
        if self.exception is None or self.exception is False or isinstance(self.exception, str):
            throws = self
        else:
            throws = self.exception
        self.timer.start(self._on_expiration, getcurrent(), throws, update=True)

    def _on_expiration(self, prev_greenlet, ex):
        prev_greenlet.throw(ex)

    @classmethod
    def start_new(cls, timeout=None, exception=None, ref=True, _one_shot=False):
        """A started Timeout: timeout itself (started if need be) if it is a Timeout, else a new
        one made of (timeout, exception)."""
        if isinstance(timeout, Timeout):
            if not timeout.pending:
                timeout.start()
            return timeout
        timeout = cls(timeout, exception, ref=ref, _one_shot=_one_shot)
        timeout.start()
        return timeout

    @staticmethod
    def _start_new_or_dummy(timeout, exception=None, ref=True):
        if timeout is None:
            return _FakeTimer
        return Timeout.start_new(timeout, exception, ref, _one_shot=True)

    @property
    def pending(self):
        """True if the timeout is scheduled to be raised."""
        return self.timer.pending or self.timer.active

    def cancel(self):
        """If the timeout is pending, cancel it; it may be started again."""
        self.timer.stop()
        if self._one_shot:
            self.close()

    def close(self):
        """Close the timeout: it cannot be started again."""
        self.timer.stop()
        self.timer.close()
        self.timer = _FakeTimer

    def __repr__(self):
        classname = type(self).__name__
        pending = ' pending' if self.pending else ''
        exception = '' if self.exception is None else ' exception=%r' % self.exception
        return '<%s at %s seconds=%s%s%s>' % (classname, hex(id(self)), self.seconds, exception,
                                              pending)

    def __str__(self):
        if self.seconds is None:
            return ''
        suffix = '' if self.seconds == 1 else 's'
        if self.exception is None:
            return '%s second%s' % (self.seconds, suffix)
        if self.exception is False:
            return '%s second%s (silent)' % (self.seconds, suffix)
        return '%s second%s: %s' % (self.seconds, suffix, self.exception)

    def __lt__(self, other):
        try:
            return self.seconds < other.seconds
        except AttributeError:
            try:
                return self.seconds < other
            except TypeError:
                return NotImplemented

    def __enter__(self):
        if not self.pending:
            self.start()
        return self

    def __exit__(self, typ, value, tb):
        self.close()
        if value is self and self.exception is False:
            return True
        return None


def with_timeout(seconds, function, *args, **kwds):
    """Call function(*args, **kwds); if it takes more than seconds, raise Timeout, or, with a
    timeout_value keyword, return that value instead."""
    timeout_value = kwds.pop("timeout_value", _NONE)
    timeout = Timeout.start_new(seconds, _one_shot=True)
    try:
        try:
            return function(*args, **kwds)
        except Timeout as ex:
            if ex is timeout and timeout_value is not _NONE:
                return timeout_value
            raise
    finally:
        timeout.cancel()


_NONE = object()
_core._set_gevent_class('Timeout', Timeout)


def _timeout_call(timeout, func, *args):
    """func(*args, timeout) for a number or None; for a Timeout instance (gevent's waits take
    one), the Timeout is started, func waits with no timeout of its own, and the Timeout raises
    what it raises when it fires; it is cancelled afterwards."""
    if isinstance(timeout, Timeout):
        t = Timeout.start_new(timeout)
        try:
            return func(*args, None)
        finally:
            t.cancel()
    return func(*args, timeout)
