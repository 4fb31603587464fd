"""The rawlink protocol shared by the gevent faces of pyconc's C primitives (Event, AsyncResult,
Semaphore): callbacks called with the object once it is ready, one-shot, in the hub of the thread
that linked them, or at once if that thread had no hub. The waits themselves stay in C; only the
callbacks live here.

As gevent's AbstractLinkable: a link stays registered (linkcount(), unlink()) until its notifier
actually calls it. Becoming ready schedules ONE notifier callback per hub that has links (not
one per link); the notifier pops that hub's links in order, so a link that unlinks a later one
stops it from being called, and the same callable linked twice is called once per pass. An Event
calls every link registered when the notifier runs even if it was cleared meanwhile; a Semaphore
calls links only while it is ready (_notify_all = False), so a link that takes the last unit
stops the rest. An error in a link goes to the hub's handle_error with the context (link,
object)."""
import sys

from .. import _core

_get_hub_if_exists = _core._get_hub_if_exists


_NONE = object()


class Linkable:
    """Mixin: rawlink/unlink/linkcount over a per-object list of [callback, hub] entries (hub:
    the hub of the thread that linked it, or None). The class says when its links are due
    (_links_ready) and whether they are all called or only while it stays ready
    (_notify_all)."""
    __slots__ = ()
    _notify_all = True

    def rawlink(self, callback):
        """Call callback(self) once this object is ready (via the hub, after what is already
        scheduled there, even if it is ready now)."""
        if not callable(callback):
            raise TypeError('Expected callable: %r' % (callback, ))
        links = getattr(self, '_links', None)
        if links is None:
            links = self._links = []
        links.append((callback, _get_hub_if_exists()))
        self._check_and_notify()

    def unlink(self, callback):
        """Remove a callback set by rawlink (quietly if it is not there)."""
        links = getattr(self, '_links', None)
        if links:
            for i, (cb, _hub) in enumerate(links):
                if cb == callback:
                    del links[i]
                    return

    def linkcount(self):
        """How many callbacks are linked and not called yet."""
        links = getattr(self, '_links', None)
        return len(links) if links else 0

    def _check_and_notify(self):
        """If this object is ready and has links, schedule a notifier in each hub that has links
        and none queued; links of threads without a hub are called now."""
        links = getattr(self, '_links', None)
        if not links or not self._links_ready():
            return
        d = self.__dict__
        queued = d.get('_notifiers')
        if queued is None:
            queued = d['_notifiers'] = []
        hubs = []
        for _cb, hub in links:
            if hub not in hubs:
                hubs.append(hub)
        for hub in hubs:
            if hub is None or hub in queued:
                continue
            if hub.destroyed:
                # its thread has ended: these links can never run
                links[:] = [e for e in links if e[1] is not hub]
                continue
            queued.append(hub)
            try:
                hub.loop.run_callback(self._notify_links, hub)
            except BaseException:
                queued.remove(hub)
                raise
        if None in hubs and None not in queued:
            # no hub to run them (gevent: "we must be the only thing running"): now
            queued.append(None)
            self._notify_links(None)

    def _notify_links(self, hub):
        """The notifier of one hub (None: the links of hub-less threads, called directly)."""
        d = self.__dict__
        try:
            self._call_links(getattr(self, '_links', None), hub)
        finally:
            # the notifier is over: links added meanwhile need another one
            queued = d.get('_notifiers')
            if queued is not None and hub in queued:
                queued.remove(hub)
        if hub is not None:
            # ready again (or still) with links left: their turn comes in another pass
            self._check_and_notify()

    def _call_links(self, links, hub):
        if not links:
            return
        # as gevent's: the pass ends at the callable linked last when it began (links added by
        # the callbacks, or a second link of that callable, wait for the next pass), and does
        # not call one callable twice
        final = _NONE
        for entry in links:
            if entry[1] is hub:
                final = entry[0]
        only_while_ready = not self._notify_all
        done = {}   # id -> callback (kept alive, so that its id is not reused in this pass)
        while final is not _NONE:
            if only_while_ready and not self._links_ready():
                break
            for i, entry in enumerate(links):
                if entry[1] is hub:
                    del links[i]
                    break
            else:
                break
            callback = entry[0]
            if id(callback) not in done:
                done[id(callback)] = callback
                try:
                    callback(self)
                except:  # noqa: E722 -- we run in the hub: nothing may escape
                    handler = hub if hub is not None else _get_hub_if_exists()
                    if handler is not None:
                        handler.handle_error((callback, self), *sys.exc_info())
                    else:
                        import traceback
                        traceback.print_exc()
            if callback is final:
                break
