"""pyconc.gevent.hub -- the per-thread hub (C: csrc/coro/hub.c) and the functions that yield to it.

The hub of a thread is created by the first call that needs it. It is a greenlet whose run() is
the event loop, and whose parent is the thread's main greenlet, as gevent's. Unlike gevent's,
it is the same loop that every pyconc primitive waits through: a greenlet blocked in a
pyconc.threading Lock, Event, Condition or Semaphore, or a pyconc.queue Queue, parks in its hub
and the others run; a plain thread or another thread's hub can wake it.
"""
import sys

from .. import _core
from ..greenlet import GreenletExit, getcurrent, greenlet
from ._ident import IdentRegistry
from .exceptions import (BlockingSwitchOutError, ConcurrentObjectUseError, HubDestroyed,
                         InvalidSwitchError, LoopExit)

__all__ = ['getcurrent', 'GreenletExit', 'spawn_raw', 'sleep', 'kill', 'signal', 'reinit',
           'get_hub', 'Hub', 'Waiter', 'idle', 'LoopExit', 'get_hub_if_exists',
           'get_hub_class', 'set_default_hub_class']

spawn_raw = _core.spawn_raw
idle = _core.idle
get_hub_if_exists = _core._get_hub_if_exists
_sleep = _core.sleep


def get_hub(*args, **kwargs):
    """Return the hub of the current thread, creating it if necessary."""
    return _core.get_hub()


def sleep(seconds=0, ref=True):
    """Put the current greenlet to sleep for at least *seconds*; sleep(0) (or a negative value)
    yields to every greenlet that was ready before it, once."""
    _sleep(seconds)


def kill(greenlet, exception=GreenletExit):
    """Kill greenlet asynchronously. The current greenlet is not unscheduled."""
    if not greenlet.dead:
        if hasattr(greenlet, 'kill'):
            greenlet.kill(exception=exception, block=False)
        else:
            get_hub().loop.run_callback(greenlet.throw, exception)


def reinit(hub=None):
    """Prepare the hub for use in a forked child: pyconc does this by itself (the child's hub is
    started afresh at its first use), so this is accepted and does nothing more."""


class _readproperty:
    """A non-data descriptor: computed until an instance attribute of the same name is set
    (gevent's readproperty)."""

    def __init__(self, func):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, inst, cls):
        if inst is None:
            return self
        return self.func(inst)


def _gmctime():
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Hub(_core.Hub):
    """The hub of one OS thread: a greenlet whose run() is the event loop (in C). Instances are
    made by get_hub(); there is one per thread."""

    #: raised into the loop, these go on to the main greenlet (the hub's parent)
    SYSTEM_ERROR = (KeyboardInterrupt, SystemExit, SystemError)
    #: raised into the loop, these are not errors: they are not printed
    NOT_ERROR = (GreenletExit, SystemExit)
    threadpool_size = 10
    name = ''
    periodic_monitoring_thread = None
    _hub_counter = 0

    @property
    def minimal_ident(self):
        """A small integer identifying the hub: 1 for the first hub made, and so on (numbered
        when first asked for; gevent numbers them when they are made)."""
        ident = self.__dict__.get('_minimal_ident')
        if ident is None:
            Hub._hub_counter += 1
            ident = self.__dict__['_minimal_ident'] = Hub._hub_counter
        return ident

    @property
    def ident_registry(self):
        reg = self.__dict__.get('_ident_registry')
        if reg is None:
            reg = self.__dict__['_ident_registry'] = IdentRegistry()
        return reg

    @property
    def main_hub(self):
        """Is this the hub of the main thread?"""
        import threading
        return self.thread_ident == threading.main_thread().ident

    @_readproperty
    def exception_stream(self):
        """Where errors are printed: sys.stderr unless assigned (a false value: nowhere)."""
        return sys.stderr if sys else None

    def _get_threadpool(self):
        pool = self.__dict__.get('_threadpool')
        if pool is None:
            from .threadpool import ThreadPool
            pool = self.__dict__['_threadpool'] = ThreadPool(self.threadpool_size, hub=self)
        return pool

    def _set_threadpool(self, value):
        self.__dict__['_threadpool'] = value

    def _del_threadpool(self):
        pool = self.__dict__.pop('_threadpool', None)
        if pool is not None:
            pool.kill()

    threadpool = property(_get_threadpool, _set_threadpool, _del_threadpool)

    def _normalize_exception(self, t, v, tb):
        # as gevent's: all None means the exception being handled; a string value (what C
        # code may raise) becomes an instance of t
        if (t, v, tb) == (None, None, None):
            t, v, tb = sys.exc_info()
        if isinstance(v, str):
            v = t(v)
        return t, v, tb

    def handle_error(self, context, type, value, tb):
        """Report an error that escaped into the loop from context (a greenlet, a callback, ...;
        None: the loop itself). Printed unless NOT_ERROR; a SYSTEM_ERROR, or any error of the
        loop itself, then goes on to the main greenlet (handle_system_error). An instance may
        replace it by assigning its handle_error; it must not raise."""
        type, value, tb = self._normalize_exception(type, value, tb)
        if type is HubDestroyed:
            raise value.with_traceback(tb)
        if not issubclass(type, self.NOT_ERROR):
            self.print_exception(context, type, value, tb)
        if context is None or issubclass(type, self.SYSTEM_ERROR):
            self.handle_system_error(type, value, tb)

    def handle_system_error(self, type, value, tb=None):
        """Raise the error in the main greenlet (the hub's parent). From another greenlet, that
        greenlet is resumed later from the hub if the main greenlet handles it and goes on."""
        current = getcurrent()
        if current is self or current is self.parent or self.destroyed:
            self.parent.throw(type, value, tb)
            return
        pending = [True]

        def resume():
            if pending[0]:
                pending[0] = False
                current.switch()
        try:
            self.loop.run_callback(resume)
        except BaseException:   # as gevent: printed, and the error still goes to main
            import traceback
            traceback.print_exc(file=self.exception_stream)
        try:
            self.parent.throw(type, value, tb)
        finally:
            pending[0] = False

    def print_exception(self, context, t, v, tb):
        """gevent's report: the traceback, a UTC timestamp, then '<context> failed with
        <ExceptionName>' (or just the timestamp when context is None)."""
        errstream = self.exception_stream
        if not errstream:
            return
        import traceback
        t, v, tb = self._normalize_exception(t, v, tb)
        if v is None:
            errstream.write('%s\n' % t.__name__)
        else:
            traceback.print_exception(t, v, tb, file=errstream)
        del tb
        try:
            errstream.write(_gmctime())
            errstream.write(' ' if context is not None else '\n')
        except Exception:   # as gevent: printing must not fail
            pass
        if context is not None:
            if not isinstance(context, str):
                try:
                    import pprint
                    context = pprint.saferepr(context)
                except Exception:
                    traceback.print_exc(file=self.exception_stream)
                    context = repr(context)
            errstream.write('%s failed with %s\n\n' % (context, getattr(t, '__name__', 'exception')))

    def wait(self, watcher):
        """Wait until the watcher (a timer of this hub) fires."""
        waiter = Waiter(self)
        watcher.start(waiter.switch, waiter)
        try:
            result = waiter.get()
            if result is not waiter:
                raise InvalidSwitchError('Invalid switch into %s: got %r (expected %r)'
                                         % (getcurrent(), result, waiter))
        finally:
            watcher.stop()

    def destroy(self, destroy_loop=None):
        """End the hub: its parked greenlets never run again, and the thread's next get_hub()
        makes a new one. destroy_loop is accepted for gevent's signature: the loop is part of
        the hub and always ends with it."""
        _core.Hub.destroy(self)

    def join(self, timeout=None):
        """Wait for the event loop to finish: until no greenlet, timer or watcher is left.
        Returns True when it finished, False if the timeout expired first."""
        if getcurrent() is not self.parent:
            raise AssertionError("only possible from the MAIN greenlet")
        if self.dead:
            return True
        waiter = Waiter(self)
        t = None
        if timeout is not None:
            t = self.loop.timer(timeout, ref=False)
            t.start(waiter.switch, None)
        try:
            try:
                waiter.get()
            except LoopExit:
                return True
        finally:
            if t is not None:
                t.stop()
                t.close()
        return False

    def __repr__(self):
        return '<%s %r at 0x%x %s>' % (type(self).__name__, self.name, id(self),
                                       _core.Hub.__repr__(self).split(' ', 3)[-1].rstrip('>'))


_core._set_hub_class(Hub)
_hub_class = Hub


def get_hub_class():
    """The class the next hub will be made of."""
    return _hub_class


def set_default_hub_class(hubtype):
    """Make the hubs created from now on instances of hubtype (a subclass of Hub)."""
    global _hub_class
    if not (isinstance(hubtype, type) and issubclass(hubtype, _core.Hub)):
        raise TypeError("A hub class must be a subclass of pyconc.gevent.hub.Hub: %r"
                        % (hubtype,))
    _core._set_hub_class(hubtype)
    _hub_class = hubtype


def _hub_ident_registry(hub):
    return hub.ident_registry


class Waiter:
    """gevent's Waiter: a one-shot hand-off from the hub to one greenlet. switch(value) and
    throw(*exc) may be called before get(); the value is kept for it."""

    __slots__ = ('hub', 'greenlet', 'value', '_exception')

    def __init__(self, hub=None):
        self.hub = get_hub() if hub is None else hub
        self.greenlet = None
        self.value = None
        self._exception = _NONE

    def clear(self):
        self.greenlet = None
        self.value = None
        self._exception = _NONE

    def __str__(self):
        name = type(self).__name__
        state = self._exception
        if state is _NONE:
            return '<%s greenlet=%s>' % (name, self.greenlet)
        if state is None:
            return '<%s greenlet=%s value=%r>' % (name, self.greenlet, self.value)
        return '<%s greenlet=%s exc_info=%r>' % (name, self.greenlet, state)

    def ready(self):
        return self._exception is not _NONE

    def successful(self):
        return self._exception is None

    @property
    def exc_info(self):
        if self._exception is not _NONE:
            return self._exception
        return None

    def switch(self, value):
        g = self.greenlet
        if g is None:
            self.value = value
            self._exception = None
        else:
            if getcurrent() is not self.hub:
                raise AssertionError("Can only use Waiter.switch method from the Hub greenlet")
            g.switch(value)

    def switch_args(self, *args):
        return self.switch(args)

    def throw(self, *throw_args):
        g = self.greenlet
        if g is None:
            self._exception = throw_args
        else:
            if getcurrent() is not self.hub:
                raise AssertionError("Can only use Waiter.switch method from the Hub greenlet")
            g.throw(*throw_args)

    def get(self):
        if self._exception is not _NONE:
            if self._exception is None:
                return self.value
            getcurrent().throw(*self._exception)
        if self.greenlet is not None:
            raise ConcurrentObjectUseError('This Waiter is already used by %r' % (self.greenlet,))
        self.greenlet = getcurrent()
        try:
            return self.hub.switch()
        finally:
            self.greenlet = None

    def __call__(self, source):
        if source.exception is None:
            self.switch(source.value)
        else:
            self.throw(source.exception)


_NONE = object()


class signal:
    """signal(signalnum, handler, *args, **kwargs): call handler(*args, **kwargs) in a new
    greenlet of the hub whenever the signal arrives (Python's signal machinery delivers it to the
    main thread; the handler runs in that thread's hub)."""

    greenlet_class = None

    def __init__(self, signalnum, handler, *args, **kwargs):
        import signal as _signal
        self.signalnum = signalnum
        self.handler = handler
        self.args = args
        self.kwargs = kwargs
        self.hub = get_hub()
        self._old = _signal.signal(signalnum, self._on_signal)

    def _on_signal(self, signum, frame):
        self.hub.loop.run_callback(self.handle)

    def cancel(self):
        import signal as _signal
        if self._old is not None:
            _signal.signal(self.signalnum, self._old)
            self._old = None

    def handle(self):
        from .greenlet import Greenlet
        cls = self.greenlet_class or Greenlet
        cls.spawn(self.handler, *self.args, **self.kwargs)


getswitchinterval = sys.getswitchinterval
setswitchinterval = sys.setswitchinterval
