"""The rawlink protocol shared by the gevent faces of pyconc's C primitives (Event, AsyncResult,
Semaphore): callbacks called with the object when it becomes ready, one-shot, in the hub of the
thread that linked them (after what is already scheduled there), or at once if that thread has
no hub. The waits themselves stay in C; only the callbacks live here."""
from .. import _core

_get_hub_if_exists = _core._get_hub_if_exists


class Linkable:
    """Mixin: rawlink/unlink/linkcount over a per-object list of (callback, hub) pairs. The
    class says when its links are due (_links_ready) and whether a link is still due when the
    hub gets to it (_recheck: a Semaphore may have been taken again meanwhile; an Event's links
    all run even if it was cleared)."""
    __slots__ = ()
    _recheck = False

    def rawlink(self, callback):
        """Call callback(self) once this object is ready (at once, via the hub, if it is)."""
        if not callable(callback):
            raise TypeError('Expected callable: %r' % (callback, ))
        links = self.__dict__.setdefault('_links', [])
        links.append((callback, _get_hub_if_exists()))
        if self._links_ready():
            self._notify_links()

    def unlink(self, callback):
        """Remove a callback set by rawlink (quietly if it is not there)."""
        links = self.__dict__.get('_links')
        if links:
            for i, (cb, _hub) in enumerate(links):
                if cb == callback:
                    del links[i]
                    return

    def linkcount(self):
        links = self.__dict__.get('_links')
        return len(links) if links else 0

    def _notify_links(self, notify_all=True):
        links = self.__dict__.get('_links')
        if not links:
            return
        if notify_all:
            pending, links[:] = links[:], []
        else:
            pending = [links.pop(0)]
        for callback, hub in pending:
            if hub is None:
                callback(self)
            else:
                hub.loop.run_callback(self._call_link, callback)

    def _call_link(self, callback):
        if self._recheck and not self._links_ready():
            # the object stopped being ready before the hub got here (a Semaphore taken
            # again): the link waits for the next time
            self.__dict__.setdefault('_links', []).insert(0, (callback, _get_hub_if_exists()))
            return
        callback(self)
