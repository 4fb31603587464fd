"""wait() and iwait(): wait for objects with the wait protocol (rawlink/unlink) -- Greenlets,
Events, AsyncResults, Semaphores -- or, with no objects, for the hub to have nothing left to do.
Results come in the order the objects became ready. Waiting for every one of a list of
Greenlets (no count) is done in C (wait_greenlets).

iwait's iterator links one callback to every object when it is first advanced. The callback
(run by the hub) appends the object to an arrival list and wakes the reader if it is parked; an
optional timer appends the iterator itself, which ends the iteration. Whatever way the
iteration ends, the links and the timer are taken off again.

Ownership: an iterator is used by one greenlet, its callbacks run in that greenlet's hub.
"""
import collections

from .. import _core
from .hub import Waiter, get_hub

__all__ = ['wait', 'iwait']

_CGreenlet = _core.Greenlet


class _ArrivalWaiter(Waiter):
    """A Waiter that queues up everything switched into it instead of keeping one value: the
    reader takes the arrivals oldest first, parking only when there is none."""
    __slots__ = ('_arrivals',)

    def __init__(self, hub):
        super().__init__(hub)
        self._arrivals = collections.deque()

    def switch(self, value):
        self._arrivals.append(value)
        Waiter.switch(self, True)    # wakes the reader if it is parked

    def get(self):
        if not self._arrivals:
            Waiter.get(self)
        Waiter.clear(self)           # the wake-up itself carries nothing
        return self._arrivals.popleft()


class _ReadyIterator:
    """The iterator iwait() returns: each object as it becomes ready, until `count` of them
    (all by default) have come or the timeout passed. Usable as a context manager, which
    removes the links on exit even if the iteration was abandoned."""

    def __init__(self, objects, hub, timeout, count):
        self._objects = objects
        self._hub = hub
        self._timeout = timeout
        self._inbox = _ArrivalWaiter(hub)
        self._notify = self._inbox.switch    # the callback linked to every object
        self._timer = None
        self._linked = False
        self._remaining = len(objects) if count is None else min(count, len(objects))

    def _link_all(self):
        self._linked = True
        for target in self._objects:
            target.rawlink(self._notify)
        seconds = self._timeout
        if seconds is not None:
            timer = self._timer = self._hub.loop.timer(seconds, priority=-1)
            timer.start(self._notify, self)    # the iterator itself: "time is up"

    def _unlink_all(self):
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.close()
        linked, self._objects = self._objects, ()
        for obj in linked:
            unlink = getattr(obj, 'unlink', None)
            if unlink is None:
                continue
            try:
                unlink(self._notify)
            except Exception:    # one object failing must not keep the others linked
                import traceback
                traceback.print_exc()

    def __iter__(self):
        return self

    def __next__(self):
        if not self._linked:
            self._link_all()
        if not self._remaining:
            self._unlink_all()
            raise StopIteration()
        self._remaining -= 1
        try:
            ready = self._inbox.get()
        except BaseException:
            self._unlink_all()
            raise
        if ready is self:
            self._unlink_all()
            raise StopIteration()
        return ready

    next = __next__

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        self._unlink_all()


def iwait(objects, timeout=None, count=None):
    """Yield objects as they become ready, until all (or count) are ready or the timeout."""
    hub = get_hub()
    if objects is not None:
        return _ReadyIterator(objects, hub, timeout, count)
    return [hub.join(timeout)]


def wait(objects=None, timeout=None, count=None):
    """Wait for objects to become ready (or, with none, for the hub to have nothing to do);
    return the ready ones in the order they became ready."""
    if objects is None:
        return get_hub().join(timeout)
    all_greenlets = (count is None and type(objects) in (list, tuple)
                     and all(isinstance(obj, _CGreenlet) for obj in objects))
    if all_greenlets:
        return _core.wait_greenlets(objects, timeout)
    return list(iwait(objects, timeout, count))
