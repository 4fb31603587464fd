"""wait() and iwait(): wait for objects with the wait protocol (rawlink/unlink) -- Greenlets,
Events, AsyncResults, Semaphores -- or, with no objects, for the hub to have nothing left to do.
Results come in the order the objects became ready. Waiting for every one of a list of
Greenlets (no count) is done in C (wait_greenlets)."""
from .. import _core
from .hub import Waiter, get_hub

__all__ = ['wait', 'iwait']

_Greenlet = _core.Greenlet


class _MultipleWaiter(Waiter):
    """A Waiter that every object switching to it adds a value to (gevent's)."""
    __slots__ = ['_values']

    def __init__(self, hub=None):
        Waiter.__init__(self, hub)
        self._values = []

    def switch(self, value):
        self._values.append(value)
        Waiter.switch(self, True)

    def get(self):
        if not self._values:
            Waiter.get(self)
            Waiter.clear(self)
        return self._values.pop(0)


class _WaitIterator:
    def __init__(self, objects, hub, timeout, count):
        self._hub = hub
        self._waiter = _MultipleWaiter(hub)
        self._switch = self._waiter.switch
        self._timeout = timeout
        self._objects = objects
        self._timer = None
        self._begun = False
        self._count = len(objects) if count is None else min(count, len(objects))

    def _begin(self):
        if self._begun:
            return
        self._begun = True
        for obj in self._objects:
            obj.rawlink(self._switch)
        if self._timeout is not None:
            self._timer = self._hub.loop.timer(self._timeout, priority=-1)
            self._timer.start(self._switch, self)

    def __iter__(self):
        return self

    def __next__(self):
        self._begin()
        if self._count == 0:
            self._cleanup()
            raise StopIteration()
        self._count -= 1
        try:
            item = self._waiter.get()
            self._waiter.clear()
            if item is self:
                self._cleanup()
                raise StopIteration()
            return item
        except BaseException:
            self._cleanup()
            raise

    next = __next__

    def _cleanup(self):
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        objs = self._objects
        self._objects = ()
        for aobj in objs:
            unlink = getattr(aobj, 'unlink', None)
            if unlink is not None:
                try:
                    unlink(self._switch)
                except Exception:
                    import traceback
                    traceback.print_exc()

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        self._cleanup()


def iwait(objects, timeout=None, count=None):
    """Yield objects as they become ready, until all (or count) are ready or the timeout."""
    hub = get_hub()
    if objects is None:
        return [hub.join(timeout=timeout)]
    return _WaitIterator(objects, hub, timeout, count)


def wait(objects=None, timeout=None, count=None):
    """Wait for objects to become ready (or, with none, for the hub to have nothing to do);
    return the ready ones in the order they became ready."""
    if objects is None:
        return get_hub().join(timeout=timeout)
    if count is None and type(objects) in (list, tuple) and \
            all(isinstance(o, _Greenlet) for o in objects):
        return _core.wait_greenlets(objects, timeout)
    return list(iwait(objects, timeout, count))
