"""pyconc.gevent.greenlet -- gevent's Greenlet, joinall and killall.

The work is done in C (csrc/coro/glet.c): construction, start, the run itself, join/get, kill and
the list of links. This module adds the parts gevent users see from Python: how a greenlet
names and prints itself, the link flavours that give each callback a greenlet of its own, the
with-statement, the spawn callbacks, and the functions that wait for or kill many greenlets.

Ownership: a Greenlet belongs to the hub of the thread that made it; the module-level set of
spawn callbacks is shared by all threads and only changed by add/remove_spawn_callback.
"""
from .. import _core
from ..greenlet import GreenletExit, getcurrent, greenlet
from ._wait import iwait, wait
from .hub import Waiter, _DefaultUntilSet, get_hub, get_hub_if_exists

__all__ = ['Greenlet', 'joinall', 'killall']

# The C implementations, called directly where Python code wraps or bypasses an override.
_c_run_attr = _core.Greenlet.__dict__['_run']
_c_join = _core.Greenlet.join
_c_kill = _core.Greenlet.kill
_c_start = _core.Greenlet.start
_c_start_later = _core.Greenlet.start_later


class _CallbackProxy:
    """Base of the objects that stand for a link callback in a greenlet's link list. They
    compare equal to, hash as, print as and lend their attributes from the callback itself, so
    that unlink(callback) finds the proxy made for it."""
    __slots__ = ('callback',)

    def __init__(self, callback):
        if callable(callback):
            self.callback = callback
        else:
            raise TypeError("Expected callable: %r" % (callback, ))

    def __eq__(self, other):
        unwrapped = getattr(other, 'callback', other)
        return self.callback == unwrapped

    def __hash__(self):
        return hash(self.callback)

    def __str__(self):
        return str(self.callback)

    def __repr__(self):
        return repr(self.callback)

    def __getattr__(self, name):
        if name == 'callback':
            # the slot was never filled: looking it up on the callback would recurse
            raise AssertionError
        return getattr(self.callback, name)


class SpawnedLink(_CallbackProxy):
    """A link that runs its callback in a new raw greenlet (child of the hub) whenever the
    source finishes. The subclasses below narrow down on which outcomes it runs."""
    __slots__ = ()

    def _wanted(self, source):
        return True

    def __call__(self, source):
        if self._wanted(source):
            runner = greenlet(self.callback, get_hub())
            runner.switch(source)


class SuccessSpawnedLink(SpawnedLink):
    """A SpawnedLink that runs only when the source returned normally."""
    __slots__ = ()

    def _wanted(self, source):
        return source.successful()


class FailureSpawnedLink(SpawnedLink):
    """A SpawnedLink that runs only when the source died of an exception."""
    __slots__ = ()

    def _wanted(self, source):
        return not source.successful()


def _describe_call(func, owner, args, kwargs):
    """The 'f(1, b=2)' text of a greenlet's repr. A bound method of the greenlet itself shows as
    '_run'; other callables by name, or by repr when they have no name or are bound methods of
    something else. Each argument's repr is cut at 50 characters."""
    bound_to = getattr(func, '__self__', None)
    if bound_to is owner:
        text = '_run'
    elif bound_to is None:
        text = getattr(func, '__name__', '') or repr(func)
    else:
        text = repr(func)
    shown = [repr(arg)[:50] for arg in args or ()]
    if kwargs:
        shown += ['%s=%s' % (key, repr(val)[:50]) for key, val in kwargs.items()]
    if shown:
        text = '%s(%s)' % (text, ', '.join(shown))
    return text


class Greenlet(_core.Greenlet):
    """A light-weight cooperatively-scheduled execution unit (gevent's Greenlet)."""

    # gevent's spawn-tree attributes: pyconc does not track spawning, so they stay at these
    spawning_stack_limit = 10
    spawning_greenlet = None
    spawn_tree_locals = None
    spawning_stack = None

    @property
    def minimal_ident(self):
        """A small non-negative integer naming this greenlet within its hub (freed numbers are
        reused). Stored in __dict__['_ident'] once drawn: the repr shows the name from then on."""
        slot = self.__dict__
        number = slot.get('_ident')
        if number is None:
            number = slot['_ident'] = self.parent.ident_registry.get_ident(self)
        return number

    @_DefaultUntilSet
    def name(self):
        """The greenlet's name: 'Greenlet-<minimal_ident>' unless one was assigned."""
        return 'Greenlet-%d' % self.minimal_ident

    def __repr__(self):
        slot = self.__dict__
        head = [type(self).__name__]
        if 'name' in slot or slot.get('_ident') is not None:
            head.append('"%s"' % (self.name,))
        head.append('at ' + hex(id(self)))
        info = self._formatinfo()
        return '<%s%s>' % (' '.join(head), ': ' + info if info else '')

    def _formatinfo(self):
        # (gevent's name: __repr__ calls it, and a subclass may override it to change the part
        # after the colon.) Worked out once and kept, since a finished greenlet no longer has
        # its function and arguments.
        slot = self.__dict__
        info = slot.get('_formatted_info')
        if info is None:
            # the C attribute, not a subclass's _run method: the run= callable when one was given
            func = _c_run_attr.__get__(self, type(self))
            info = slot['_formatted_info'] = _describe_call(func, self, self.args, self.kwargs)
        return info

    def link(self, callback, SpawnedLink=SpawnedLink):
        """Once this greenlet is dead, call callback(self) in a greenlet of its own."""
        proxy = SpawnedLink(callback)
        self.rawlink(proxy)

    def link_value(self, callback, SpawnedLink=SuccessSpawnedLink):
        """As link(), but only if this greenlet returned normally."""
        self.link(callback, SpawnedLink)

    def link_exception(self, callback, SpawnedLink=FailureSpawnedLink):
        """As link(), but only if this greenlet died of an exception."""
        self.link(callback, SpawnedLink)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # the with-block failed: the greenlet dies of the same exception
            self.kill((exc_type, exc, tb))
            return
        try:
            self.join()
        finally:
            self.kill()

    @classmethod
    def spawn_later(cls, seconds, *args, **kwargs):
        """spawn_later(seconds, function, *args, **kwargs) -> Greenlet started seconds later"""
        if cls is Greenlet and not (args or 'run' in kwargs):
            raise TypeError("")     # (gevent's: a plain Greenlet needs a function)
        return super().spawn_later(seconds, *args, **kwargs)

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Raise exception in the greenlet (from the hub, at its next turn); with block, wait
        until it has been raised, then self.join(timeout). Killing a greenlet that never
        started makes it dead at once; killing a dead one does nothing."""
        if block and type(self).join is not _c_join:
            self._kill_then_join(exception, timeout)
            return None
        return _c_kill(self, exception, block, timeout)   # the common case: all in C

    def _kill_then_join(self, exception, timeout):
        # kill(block=True) when a subclass overrides join(): gevent calls that join() after the
        # exception has been thrown in, so the throw is waited for here rather than in C.
        if self._maybe_kill_before_start(exception) or self.ready():
            return
        hub = self.parent
        if hub is None or hub is not get_hub_if_exists():
            # a hub of another thread: the C kill knows how to wait for it
            _c_kill(self, exception, True, timeout)
        else:
            _c_kill(self, exception, False)
            # the hub runs its callbacks in order: this one comes after the throw
            after_throw = Waiter(hub)
            hub.loop.run_callback(after_throw.switch, None)
            after_throw.get()
        self.join(timeout)

    @staticmethod
    def add_spawn_callback(callback):
        """Call callback(greenlet) whenever a Greenlet is started (start, start_later, spawn,
        spawn_later). Adding a callback twice does not make it called twice."""
        _spawn_hooks.add(callback)
        # Starting stays in C while no callback is registered; with some, the class gets the
        # Python start()/start_later() below, which the C spawn() calls when they are there.
        Greenlet.start = _hooked_start
        Greenlet.start_later = _hooked_start_later

    @staticmethod
    def remove_spawn_callback(callback):
        """Remove a callback added with add_spawn_callback (quietly if it is not there)."""
        _spawn_hooks.discard(callback)
        if _spawn_hooks:
            return
        for attr in ('start', 'start_later'):
            if attr in Greenlet.__dict__:
                delattr(Greenlet, attr)


_spawn_hooks = set()    # the callables given to add_spawn_callback


def _run_spawn_hooks(glet):
    # as gevent: only for a greenlet not started yet and not killed before it started
    if glet or glet.dead:
        return
    for hook in list(_spawn_hooks):
        hook(glet)


def _hooked_start(self):
    _run_spawn_hooks(self)
    return _c_start(self)


def _hooked_start_later(self, seconds):
    _run_spawn_hooks(self)
    return _c_start_later(self, seconds)


for _func, _name in ((_hooked_start, 'start'), (_hooked_start_later, 'start_later')):
    _func.__name__ = _func.__qualname__ = _name
    _func.__doc__ = getattr(_core.Greenlet, _name).__doc__
del _func, _name


def _raise_failure_of(glet):
    """Raise again the exception glet died of, with its own traceback when it kept one."""
    reraise = getattr(glet, '_raise_exception', None)   # (C Greenlet and AsyncResult have it)
    if reraise is not None:
        reraise()
    raise glet.exception


def joinall(greenlets, timeout=None, raise_error=False, count=None):
    """Wait for the greenlets to finish; return the ones that finished, in the order they did.
    raise_error: raise the first exception met. count: stop after that many."""
    if not raise_error:
        return wait(greenlets, timeout, count)
    finished = []
    for glet in iwait(greenlets, timeout=timeout, count=count):
        if getattr(glet, 'exception', None) is not None:
            _raise_failure_of(glet)
        finished.append(glet)
    return finished


def _throw_into_each(targets, exception):
    """In the hub: throw exception into every target still alive. A target that lets some
    other error out is reported by its hub, and the others are still killed. Returns the
    targets that are alive afterwards (they caught it, or are winding down)."""
    survivors = []
    for glet in targets:
        if glet.dead:
            continue
        try:
            glet.throw(exception)
        except BaseException as err:
            glet.parent.handle_error(glet, type(err), err, err.__traceback__)
        if not glet.dead:
            survivors.append(glet)
    return survivors


def _throw_and_report(targets, exception, waiter):
    waiter.switch(_throw_into_each(targets, exception))


def _cancelled_before_start(glet, exception):
    """True if glet had not started and is now dead for good (raw greenlets cannot be)."""
    cancel = getattr(glet, '_maybe_kill_before_start', None)
    return cancel is not None and cancel(exception)


def killall(greenlets, exception=GreenletExit, block=True, timeout=None):
    """Kill all the greenlets with exception; with block, wait until they are dead (joining
    the ones that survive the first exception), at most timeout seconds (then Timeout)."""
    from .timeout import Timeout
    targets = [glet for glet in greenlets if not _cancelled_before_start(glet, exception)]
    if not targets:
        return
    loop = get_hub().loop
    if not block:
        loop.run_callback(_throw_into_each, targets, exception)
        return
    report = Waiter()
    loop.run_callback(_throw_and_report, targets, exception, report)
    deadline = Timeout._start_new_or_dummy(timeout)
    try:
        survivors = report.get()
        if survivors:
            joinall(survivors, raise_error=False)
    finally:
        deadline.cancel()
