"""pyconc.gevent.hub -- the per-thread hub (C: csrc/coro/hub.c) and the functions that yield to it.

The hub of a thread is created by the first call that needs it. It is a greenlet whose run() is
the event loop, and whose parent is the thread's main greenlet, as gevent's. Unlike gevent's,
it is the same loop that every pyconc primitive waits through: a greenlet blocked in a
pyconc.threading Lock, Event, Condition or Semaphore, or a pyconc.queue Queue, parks in its hub
and the others run; a plain thread or another thread's hub can wake it.

What lives here, in Python: the error reporting of the Hub class (the C loop calls
hub.handle_error for anything that escapes into it), a few lazily made per-hub objects (its
thread pool, its ident registry), Hub.join/wait, the Waiter hand-off object, and the signal
watcher.

Ownership: a hub and everything hanging off it belong to the thread that runs it; nothing here
takes a lock.
"""
import sys
import time
from sys import getswitchinterval, setswitchinterval

from .. import _core
from ..greenlet import GreenletExit, getcurrent, greenlet
from .exceptions import (BlockingSwitchOutError, ConcurrentObjectUseError, HubDestroyed,
                         InvalidSwitchError, LoopExit)

__all__ = ['getcurrent', 'GreenletExit', 'spawn_raw', 'sleep', 'kill', 'signal', 'reinit',
           'get_hub', 'Hub', 'Waiter', 'idle', 'LoopExit', 'get_hub_if_exists',
           'get_hub_class', 'set_default_hub_class']

spawn_raw = _core.spawn_raw
idle = _core.idle
get_hub_if_exists = _core._get_hub_if_exists
_c_sleep = _core.sleep
_c_get_hub = _core.get_hub


def get_hub(*args, **kwargs):
    """This thread's hub (made now if the thread has none). Arguments are accepted and ignored,
    as gevent's are."""
    return _c_get_hub()


def sleep(seconds=0, ref=True):
    """Park the calling greenlet for `seconds`. Zero or less just lets every greenlet that was
    already ready run once before this one continues."""
    _c_sleep(seconds)


def kill(greenlet, exception=GreenletExit):
    """Ask `greenlet` to die of `exception` without waiting for it. A Greenlet gets
    kill(block=False); a raw greenlet has the exception thrown in by the hub at its next turn.
    A dead one is left alone."""
    if greenlet.dead:
        return
    try:
        nonblocking_kill = greenlet.kill
    except AttributeError:
        get_hub().loop.run_callback(greenlet.throw, exception)
    else:
        nonblocking_kill(exception=exception, block=False)


def reinit(hub=None):
    """Accepted for gevent's API. After a fork the child's hub is rebuilt by pyconc on first
    use, so there is nothing left to do here."""


class _DefaultUntilSet:
    """Decorator for a computed attribute that an instance may override by plain assignment.

    Being a non-data descriptor, it loses to the instance __dict__: until something is
    assigned, every read calls the function again (nothing is cached); after an assignment the
    assigned value is what reads return, and deleting it brings the computed value back."""

    def __init__(self, compute):
        self._compute = compute
        self.__doc__ = compute.__doc__

    def __get__(self, obj, owner=None):
        return self if obj is None else self._compute(obj)


def _lazy_hub_attr(hub, key, make):
    """hub.__dict__[key], made by make() on first use (and again if it was set to None)."""
    found = hub.__dict__.get(key)
    if found is None:
        found = hub.__dict__[key] = make()
    return found


def _new_ident_registry():
    # imported here: the registry (and heapq under it) is about 1 ms of `import pyconc.gevent`,
    # and only Greenlet.minimal_ident needs it
    from ._ident import IdentRegistry
    return IdentRegistry()


def _utc_stamp():
    # the timestamp that opens gevent's "<context> failed with <Error>" line
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _new_hub_number():
    Hub._hub_counter += 1
    return Hub._hub_counter



def _traceback_module():
    """The traceback module, imported by the first report (2 ms of import that a program which
    never fails should not pay), or None when it cannot be read -- out of file descriptors
    (EMFILE): the report is then the exception's type and message alone."""
    try:
        import traceback
    except Exception:
        return None
    return traceback

class Hub(_core.Hub):
    """The hub of one OS thread: a greenlet whose run() is the event loop (in C). Instances are
    made by get_hub(); there is one per thread."""

    # Both tuples are read by the C loop from the class (a subclass or a test may replace them):
    # errors of these classes are passed on to the main greenlet ...
    SYSTEM_ERROR = KeyboardInterrupt, SystemExit, SystemError
    # ... and these are normal ways for a greenlet to end: nothing is printed for them.
    NOT_ERROR = GreenletExit, SystemExit

    threadpool_size = 10
    name = ''
    periodic_monitoring_thread = None   # gevent's monitor thread: pyconc has none
    _hub_counter = 0    # (gevent's class attribute) how many hubs have been numbered
    _threadpool = None  # gevent's slot for the lazily made pool; set in __dict__ once made

    @property
    def minimal_ident(self):
        """A small integer naming this hub: the first hub asked gets 1, the next 2, and so on."""
        return _lazy_hub_attr(self, '_minimal_ident', _new_hub_number)

    @property
    def ident_registry(self):
        """Hands out the small per-hub numbers of Greenlet.minimal_ident."""
        return _lazy_hub_attr(self, '_ident_registry', _new_ident_registry)

    @property
    def main_hub(self):
        """True for the hub of the interpreter's main thread."""
        import threading
        return threading.main_thread().ident == self.thread_ident

    @_DefaultUntilSet
    def exception_stream(self):
        """The stream error reports go to: sys.stderr, looked up at each report, unless an
        instance value is assigned (a false one silences the reports)."""
        return getattr(sys, 'stderr', None)   # (sys may be None late in interpreter shutdown)

    @property
    def threadpool(self):
        """This hub's ThreadPool (threadpool_size threads at most), made on first use."""
        return _lazy_hub_attr(self, '_threadpool', self._make_threadpool)

    @threadpool.setter
    def threadpool(self, pool):
        self.__dict__['_threadpool'] = pool

    @threadpool.deleter
    def threadpool(self):
        pool = self.__dict__.pop('_threadpool', None)
        if pool is not None:
            pool.kill()

    def _make_threadpool(self):
        from .threadpool import ThreadPool
        return ThreadPool(self.threadpool_size, hub=self)

    @property
    def resolver(self):
        """Name resolution for pyconc.gevent.socket, made on first use: lookups run in this
        hub's thread pool (gevent's default "thread" resolver)."""
        return _lazy_hub_attr(self, '_resolver', self._make_resolver)

    @resolver.setter
    def resolver(self, value):
        self.__dict__['_resolver'] = value

    @resolver.deleter
    def resolver(self):
        self.__dict__.pop('_resolver', None)

    def _make_resolver(self):
        from .resolver_thread import Resolver
        return Resolver(hub=self)

    # -- error reporting (the C loop calls handle_error for whatever escapes into it)

    def _normalize_exception(self, t, v, tb):
        # (kept under gevent's name: gevent.testing's QuietHub calls it)
        # Three Nones stand for the exception being handled; a value given as a string (as C
        # code may pass it) is made into an instance of its class.
        if t is None and v is None and tb is None:
            return sys.exc_info()
        if isinstance(v, str):
            v = t(v)
        return t, v, tb

    def handle_error(self, context, type, value, tb):
        """Deal with an error that escaped into the loop from `context` (the greenlet or callback
        it came from; None when it is the loop's own). Anything but a NOT_ERROR is printed.
        A SYSTEM_ERROR, or any error without a context, is then raised in the main greenlet
        (handle_system_error). Instances may assign their own handle_error; it must not raise."""
        etype, evalue, etb = self._normalize_exception(type, value, tb)
        if etype is HubDestroyed:
            raise evalue.with_traceback(etb)
        if not issubclass(etype, self.NOT_ERROR):
            self.print_exception(context, etype, evalue, etb)
        fatal = context is None or issubclass(etype, self.SYSTEM_ERROR)
        if fatal:
            self.handle_system_error(etype, evalue, etb)

    def handle_system_error(self, type, value, tb=None):
        """Raise the error in the main greenlet (the hub's parent). Called from some other
        greenlet, that greenlet is switched back to later, from a hub callback, if the main
        greenlet survives the error and lets the hub run again."""
        caller = getcurrent()
        main = self.parent
        if caller is self or caller is main or self.destroyed:
            main.throw(type, value, tb)
            return
        waiting = True

        def resume_caller():
            nonlocal waiting
            if waiting:
                waiting = False
                caller.switch()

        try:
            self.loop.run_callback(resume_caller)
        except BaseException:
            # reported, and the error still goes to the main greenlet below
            self._print_current_exception()
        try:
            main.throw(type, value, tb)
        finally:
            waiting = False

    def print_exception(self, context, t, v, tb):
        """gevent's error report on exception_stream: the traceback, then a UTC timestamp and,
        when there is a context, '<context> failed with <ErrorName>' and a blank line."""
        out = self.exception_stream
        if not out:
            return
        etype, evalue, etb = self._normalize_exception(t, v, tb)
        tb_module = _traceback_module()
        if evalue is None:
            out.write(etype.__name__ + '\n')
        elif tb_module is None:
            out.write('%s: %s\n' % (etype.__name__, evalue))
        else:
            tb_module.print_exception(etype, evalue, etb, file=out)
        del etb, tb
        try:
            out.write(_utc_stamp() + ('\n' if context is None else ' '))
        except Exception:
            pass    # a report must never fail
        if context is None:
            return
        out.write('%s failed with %s\n\n' % (self._describe_context(context),
                                              getattr(etype, '__name__', 'exception')))

    def _describe_context(self, context):
        if isinstance(context, str):
            return context
        try:
            # imported here: pprint costs 5 ms of import (dataclasses, inspect) that a program
            # which never fails should not pay
            import pprint
        except Exception:
            # out of file descriptors (EMFILE), the module cannot be read: the plain repr,
            # which is what saferepr gives for a greenlet or a callable anyway
            return repr(context)
        try:
            return pprint.saferepr(context)
        except Exception:
            self._print_current_exception()
            return repr(context)

    def _print_current_exception(self):
        # a failure while reporting: its own traceback goes to the same stream
        stream = self.exception_stream
        tb_module = _traceback_module()
        if tb_module is not None:
            tb_module.print_exc(file=stream)
        else:
            etype, evalue = sys.exc_info()[:2]
            stream.write('%s: %s\n' % (getattr(etype, '__name__', etype), evalue))

    # -- waiting

    def wait(self, watcher):
        """Park the calling greenlet until `watcher` (a timer of this hub) fires."""
        parked = Waiter(self)
        watcher.start(parked.switch, parked)
        try:
            woken_by = parked.get()
            if woken_by is not parked:
                raise InvalidSwitchError('Invalid switch into %s: got %r (expected %r)'
                                         % (getcurrent(), woken_by, parked))
        finally:
            watcher.stop()

    def destroy(self, destroy_loop=None):
        """End the hub: its parked greenlets never run again, and the thread's next get_hub()
        makes a new one. destroy_loop is accepted for gevent's signature: the loop is part of
        the hub and always ends with it."""
        _core.Hub.destroy(self)

    def join(self, timeout=None):
        """From the main greenlet: run the loop until it has nothing left (greenlets, timers,
        watchers) -- True -- or until `timeout` seconds passed -- False."""
        if getcurrent() is not self.parent:
            raise AssertionError("only possible from the MAIN greenlet")
        if self.dead:
            return True
        wake = Waiter(self)
        alarm = None
        if timeout is not None:
            alarm = self.loop.timer(timeout, ref=False)   # must not keep the loop going
            alarm.start(wake.switch, None)
        try:
            wake.get()
        except LoopExit:
            return True      # the loop ran out of work while we were parked
        finally:
            if alarm is not None:
                alarm.stop()
                alarm.close()
        return False

    def __repr__(self):
        # the C repr is '<Hub at 0x... <loop details>>': keep the details, add the name
        details = _core.Hub.__repr__(self).rstrip('>').split(' ', 3)[-1]
        return '<%s %r at 0x%x %s>' % (type(self).__name__, self.name, id(self), details)


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


_EMPTY = object()      # Waiter._outcome before anything arrived
_VALUE = object()      # Waiter._outcome once a value arrived (it is in .value)


class Waiter:
    """A single hand-off from the hub to one greenlet (gevent's Waiter).

    The greenlet calls get() and parks in the hub; a hub callback later calls switch(value) or
    throw(*exc) to resume it with a result or an exception. Either may come first: a result
    delivered before get() is kept, and get() returns (or raises) it at once."""

    __slots__ = ('hub', 'greenlet', 'value', '_outcome')

    def __init__(self, hub=None):
        if hub is None:
            hub = get_hub()
        self.hub = hub
        self.greenlet = None    # the greenlet parked in get(), if any
        self.value = None
        self._outcome = _EMPTY  # _EMPTY, _VALUE, or the args for throw()

    def clear(self):
        """Forget the result and the parked greenlet: the Waiter can be used again."""
        self.greenlet = None
        self.value = None
        self._outcome = _EMPTY

    def __str__(self):
        outcome = self._outcome
        text = '<%s greenlet=%s' % (type(self).__name__, self.greenlet)
        if outcome is _VALUE:
            text += ' value=%r' % (self.value,)
        elif outcome is not _EMPTY:
            text += ' exc_info=%r' % (outcome,)
        return text + '>'

    def ready(self):
        """True once a result (value or exception) is held."""
        return self._outcome is not _EMPTY

    def successful(self):
        """True once a value (not an exception) is held."""
        return self._outcome is _VALUE

    @property
    def exc_info(self):
        """The throw() arguments held, or None."""
        outcome = self._outcome
        return None if outcome is _EMPTY or outcome is _VALUE else outcome

    def _from_hub_only(self):
        if getcurrent() is not self.hub:
            raise AssertionError("Can only use Waiter.switch method from the Hub greenlet")

    def switch(self, value):
        """Deliver value: resume the parked greenlet with it, or keep it for get()."""
        parked = self.greenlet
        if parked is None:
            self.value = value
            self._outcome = _VALUE
            return
        self._from_hub_only()
        parked.switch(value)

    def switch_args(self, *args):
        return self.switch(args)

    def throw(self, *throw_args):
        """Deliver an exception (greenlet.throw's arguments): thrown into the parked greenlet,
        or kept for get() to raise."""
        parked = self.greenlet
        if parked is None:
            self._outcome = throw_args
            return
        self._from_hub_only()
        parked.throw(*throw_args)

    def get(self):
        """The delivered value (or the delivered exception, raised); parks the calling greenlet
        in the hub until something is delivered. One greenlet at a time."""
        outcome = self._outcome
        if outcome is _VALUE:
            return self.value
        if outcome is not _EMPTY:
            getcurrent().throw(*outcome)
        occupant = self.greenlet
        if occupant is not None:
            raise ConcurrentObjectUseError('This Waiter is already used by %r' % (occupant,))
        self.greenlet = getcurrent()
        try:
            return self.hub.switch()
        finally:
            self.greenlet = None

    def __call__(self, source):
        """As a link: pass on the outcome of a finished Greenlet (or AsyncResult)."""
        failure = source.exception
        if failure is None:
            return self.switch(source.value)
        return self.throw(failure)


class signal:
    """signal(signalnum, handler, *args, **kwargs): each time the process receives the signal,
    handler(*args, **kwargs) runs in a new greenlet of this thread's hub (gevent's
    signal_handler). Any number of watchers may share a signal; cancel() removes this one. What
    the handler raises goes to the hub's handle_error without a context: printed, then raised in
    the main greenlet.

    Python runs signal handlers in the main thread, so one Python-level handler per signal number
    (installed with its first watcher; the handler it replaced is put back when the last watcher
    cancels) queues every watcher's start on its own hub. `ref` is only recorded: a signal
    watcher never keeps the loop from LoopExit. SIGCHLD is free for programs to watch: pyconc's
    subprocess and os.waitpid wait on pidfds."""

    greenlet_class = None

    def __init__(self, signalnum, handler, *args, **kwargs):
        if not callable(handler):
            raise TypeError("signal handler must be callable.")
        self.hub = get_hub()
        self.signalnum = signalnum
        self.handler = handler
        self.args = args
        self.kwargs = kwargs
        self._ref = False
        if self.greenlet_class is None:
            from .greenlet import Greenlet
            type(self).greenlet_class = self.greenlet_class = Greenlet
        _SignalRoute.add(signalnum, self)

    @property
    def ref(self):
        return self._ref

    @ref.setter
    def ref(self, value):
        self._ref = bool(value)

    def cancel(self):
        if self.hub is not None:
            _SignalRoute.discard(self.signalnum, self)
        self.hub = self.handler = self.args = self.kwargs = self.greenlet_class = None

    def _start(self):
        # runs as a hub callback; the handler gets a greenlet of its own
        try:
            self.greenlet_class(self.handle).switch()
        except:   # noqa: E722 -- anything at all is the hub's to report
            self.hub.handle_error(None, *sys.exc_info())

    def handle(self):
        try:
            self.handler(*self.args, **self.kwargs)
        except:   # noqa: E722
            self.hub.handle_error(None, *sys.exc_info())


class _SignalRoute:
    """The one Python-level handler of a watched signal number and its watchers."""

    routes = {}     # signal number -> _SignalRoute

    def __init__(self, signum):
        import _signal     # the C module: the `signal` module may be monkey-patched
        self.signum = signum
        self.watchers = []
        self.replaced = _signal.signal(signum, self.deliver)

    def deliver(self, signum, frame):
        for w in list(self.watchers):
            hub = w.hub
            if hub is not None and not hub.dead:
                hub.loop.run_callback(w._start)

    @classmethod
    def add(cls, signum, watcher):
        route = cls.routes.get(signum)
        if route is None:
            route = cls.routes[signum] = cls(signum)
        route.watchers.append(watcher)

    @classmethod
    def discard(cls, signum, watcher):
        import _signal
        route = cls.routes.get(signum)
        if route is None or watcher not in route.watchers:
            return
        route.watchers.remove(watcher)
        if route.watchers:
            return
        del cls.routes[signum]
        if _signal.getsignal(signum) == route.deliver:
            _signal.signal(signum, _signal.SIG_DFL if route.replaced is None else route.replaced)
