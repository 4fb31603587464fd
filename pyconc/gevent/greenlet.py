"""pyconc.gevent.greenlet -- gevent's Greenlet, joinall and killall.

The hot paths (construction, start, run, join, get, kill, links) are C (csrc/coro/glet.c); this class
adds what gevent writes in Python-level terms: the repr, name, minimal_ident, the spawning
links, the context manager.
"""
from .. import _core
from ..greenlet import GreenletExit, getcurrent, greenlet
from .hub import Waiter, get_hub, get_hub_if_exists

__all__ = ['Greenlet', 'joinall', 'killall']


class SpawnedLink:
    """A link that calls its callback in a new raw greenlet of the hub."""
    __slots__ = ['callback']

    def __init__(self, callback):
        if not callable(callback):
            raise TypeError("Expected callable: %r" % (callback, ))
        self.callback = callback

    def __call__(self, source):
        g = greenlet(self.callback, get_hub())
        g.switch(source)

    def __hash__(self):
        return hash(self.callback)

    def __eq__(self, other):
        return self.callback == getattr(other, 'callback', other)

    def __str__(self):
        return str(self.callback)

    def __repr__(self):
        return repr(self.callback)

    def __getattr__(self, item):
        assert item != 'callback'
        return getattr(self.callback, item)


class SuccessSpawnedLink(SpawnedLink):
    """Calls its callback only if the source succeeded."""
    __slots__ = []

    def __call__(self, source):
        if source.successful():
            return SpawnedLink.__call__(self, source)


class FailureSpawnedLink(SpawnedLink):
    """Calls its callback only if the source failed."""
    __slots__ = []

    def __call__(self, source):
        if not source.successful():
            return SpawnedLink.__call__(self, source)


class _readproperty:
    """A non-data descriptor: computed until an instance attribute of the same name is set."""

    def __init__(self, func):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, inst, cls):
        if inst is None:
            return self
        return self.func(inst)


class Greenlet(_core.Greenlet):
    """A light-weight cooperatively-scheduled execution unit (gevent's Greenlet)."""

    spawning_stack_limit = 10
    spawning_greenlet = None
    spawn_tree_locals = None
    spawning_stack = None

    @property
    def minimal_ident(self):
        """A small, unique non-negative integer that identifies this object in its hub."""
        ident = self.__dict__.get('_ident')
        if ident is None:
            ident = self.__dict__['_ident'] = self.parent.ident_registry.get_ident(self)
        return ident

    @_readproperty
    def name(self):
        """The greenlet's name: 'Greenlet-<minimal_ident>' unless one was assigned."""
        return 'Greenlet-%d' % (self.minimal_ident,)

    def __repr__(self):
        classname = self.__class__.__name__
        if 'name' not in self.__dict__ and self.__dict__.get('_ident') is None:
            name = ' '
        else:
            name = ' "%s" ' % (self.name,)
        result = '<%s%sat %s' % (classname, name, hex(id(self)))
        formatted = self._formatinfo()
        if formatted:
            result += ': ' + formatted
        return result + '>'

    def _formatinfo(self):
        info = self.__dict__.get('_formatted_info')
        if info is not None:
            return info
        func = self._run
        im_self = getattr(func, '__self__', None)
        if im_self is self:
            funcname = '_run'
        elif im_self is not None:
            funcname = repr(func)
        else:
            funcname = getattr(func, '__name__', '') or repr(func)
        result = funcname
        args = []
        if self.args:
            args = [repr(x)[:50] for x in self.args]
        if self.kwargs:
            args.extend(['%s=%s' % (key, repr(value)[:50]) for (key, value) in self.kwargs.items()])
        if args:
            result += '(' + ', '.join(args) + ')'
        # saved: once the greenlet has run, its function and arguments are forgotten
        self.__dict__['_formatted_info'] = result
        return result

    def link(self, callback, SpawnedLink=SpawnedLink):
        """Call callback(self) in its own greenlet once this greenlet is dead."""
        self.rawlink(SpawnedLink(callback))

    def link_value(self, callback, SpawnedLink=SuccessSpawnedLink):
        """Like link(), only if this greenlet completed successfully."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def link_exception(self, callback, SpawnedLink=FailureSpawnedLink):
        """Like link(), only if this greenlet died of an unhandled exception."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def __enter__(self):
        return self

    def __exit__(self, t, v, tb):
        if t is None:
            try:
                self.join()
            finally:
                self.kill()
        else:
            self.kill((t, v, tb))

    @classmethod
    def spawn_later(cls, seconds, *args, **kwargs):
        """spawn_later(seconds, function, *args, **kwargs) -> Greenlet started seconds later"""
        if cls is Greenlet and not args and 'run' not in kwargs:
            raise TypeError("")
        return super(Greenlet, cls).spawn_later(seconds, *args, **kwargs)

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Raise exception in the greenlet (from the hub, at its next turn); with block, wait
        until it has been raised, then self.join(timeout). Killing a greenlet that never
        started makes it dead at once; killing a dead one does nothing."""
        if not block or type(self).join is _base_join:
            return _base_kill(self, exception, block, timeout)   # all of it in C
        # A subclass's join(): gevent calls it once the exception has been thrown in.
        if self._maybe_kill_before_start(exception) or self.ready():
            return
        hub = self.parent
        if hub is get_hub_if_exists() and hub is not None:
            _base_kill(self, exception, False)
            waiter = Waiter(hub)
            hub.loop.run_callback(waiter.switch, None)   # after the throw: the hub is FIFO
            waiter.get()
        else:
            _base_kill(self, exception, True, timeout)   # another thread's hub: wait in C
        self.join(timeout)

    @staticmethod
    def add_spawn_callback(callback):
        """Call callback(greenlet) whenever a Greenlet is started (start, start_later, spawn,
        spawn_later). Adding a callback twice does not make it called twice."""
        _spawn_callbacks.add(callback)
        # The C start() is what spawn() calls unless the class overrides start: while there
        # are callbacks, it does, so that starting costs nothing extra when there are none.
        Greenlet.start = _start_with_callbacks
        Greenlet.start_later = _start_later_with_callbacks

    @staticmethod
    def remove_spawn_callback(callback):
        """Remove a callback added with add_spawn_callback (quietly if it is not there)."""
        _spawn_callbacks.discard(callback)
        if not _spawn_callbacks:
            for name in ('start', 'start_later'):
                if name in Greenlet.__dict__:
                    delattr(Greenlet, name)


_base_join = _core.Greenlet.join
_base_kill = _core.Greenlet.kill
_base_start = _core.Greenlet.start
_base_start_later = _core.Greenlet.start_later
_spawn_callbacks = set()


def _call_spawn_callbacks(glet):
    # only for a greenlet not started yet (nor killed before it started), as gevent's
    if not glet and not glet.dead:
        for callback in list(_spawn_callbacks):
            callback(glet)


def _start_with_callbacks(self):
    """Schedule the greenlet to run in this loop iteration"""
    _call_spawn_callbacks(self)
    return _base_start(self)


def _start_later_with_callbacks(self, seconds):
    """start_later(seconds): schedule the greenlet to run seconds later"""
    _call_spawn_callbacks(self)
    return _base_start_later(self, seconds)


_start_with_callbacks.__name__ = _start_with_callbacks.__qualname__ = 'start'
_start_later_with_callbacks.__name__ = 'start_later'
_start_later_with_callbacks.__qualname__ = 'start_later'


def joinall(greenlets, timeout=None, raise_error=False, count=None):
    """Wait for the greenlets to finish; return the ones that finished, in the order they did.
    raise_error: raise the first exception met. count: stop after that many."""
    from ._wait import iwait, wait
    if not raise_error:
        return wait(greenlets, timeout=timeout, count=count)
    done = []
    for obj in iwait(greenlets, timeout=timeout, count=count):
        if getattr(obj, 'exception', None) is not None:
            if hasattr(obj, '_raise_exception'):
                obj._raise_exception()
            else:
                raise obj.exception
        done.append(obj)
    return done


def _killall3(greenlets, exception, waiter):
    diehards = []
    for g in greenlets:
        if not g.dead:
            try:
                g.throw(exception)
            except BaseException as e:   # reported as gevent does, then carry on
                g.parent.handle_error(g, type(e), e, e.__traceback__)
            if not g.dead:
                diehards.append(g)
    waiter.switch(diehards)


def _killall(greenlets, exception):
    for g in greenlets:
        if not g.dead:
            try:
                g.throw(exception)
            except BaseException as e:
                g.parent.handle_error(g, type(e), e, e.__traceback__)


def killall(greenlets, exception=GreenletExit, block=True, timeout=None):
    """Kill all the greenlets with exception; with block, wait until they are dead (joining
    the ones that survive the first exception), at most timeout seconds (then Timeout)."""
    from .timeout import Timeout
    need_killed = []
    glet = None
    for glet in greenlets:
        try:
            cancel = glet._maybe_kill_before_start
        except AttributeError:
            need_killed.append(glet)
        else:
            if not cancel(exception):
                need_killed.append(glet)
    if not need_killed:
        return
    loop = get_hub().loop
    if block:
        waiter = Waiter()
        loop.run_callback(_killall3, need_killed, exception, waiter)
        t = Timeout._start_new_or_dummy(timeout)
        try:
            alive = waiter.get()
            if alive:
                joinall(alive, raise_error=False)
        finally:
            t.cancel()
    else:
        loop.run_callback(_killall, need_killed, exception)
