"""pyconc.gevent.selectors -- gevent.selectors: GeventSelector (also DefaultSelector), whose
select() parks only the calling greenlet. The selector is C (csrc/io/selector.c): its own
epoll instance, which the hub watches as one descriptor while a greenlet waits on it.

Every other name is the stdlib selectors module's (EpollSelector and the others are the
blocking stdlib classes, as in gevent; pyconc.selectors has cooperative ones).
"""
import selectors as _stdlib_selectors

from .. import _core
from .hub import get_hub

__implements__ = ['DefaultSelector']
__extra__ = ['GeventSelector']

# the stdlib module's names (it has no __all__ of its own), re-exported unchanged
__imports__ = [name for name in vars(_stdlib_selectors)
               if not name.startswith('__') and name not in __implements__]
globals().update((name, getattr(_stdlib_selectors, name)) for name in __imports__)

__all__ = __implements__ + __extra__

# stdlib selector classes that block the whole thread: patch_selectors(aggressive=True) removes
# them from the stdlib module
_THREAD_BLOCKING = ('EpollSelector', 'KqueueSelector', 'DevpollSelector')


class GeventSelector(_core.GeventSelector, _stdlib_selectors._BaseSelectorImpl):
    """A selectors.BaseSelector for greenlets: select() waits on the hub.

    As with every selector, unregister a file object before closing it (or close the selector
    first): a descriptor number closed while registered may be reused by another file.
    """

    _hub = _NOT_YET = object()

    def __init__(self, hub=None):
        if hub is not None:
            self._hub = hub
        _core.GeventSelector.__init__(self, hub)

    @property
    def hub(self):
        """The hub this selector waits on: the one given, else the calling thread's hub the
        first time it is asked for; None once the selector is closed."""
        if self._hub is self._NOT_YET:
            self._hub = get_hub()
        return self._hub

    @hub.setter
    def hub(self, value):
        self._hub = value

    def close(self):
        _core.GeventSelector.close(self)
        self._hub = None


DefaultSelector = GeventSelector


def _selectselector_select(self, rlist, wlist, xlist, timeout=None):
    # SelectSelector calls self._select(r, w, x, timeout); the stdlib class attribute is the
    # builtin select.select (never bound to self), this replacement is a plain function
    from .select import select
    return select(rlist, wlist, xlist, timeout)


# gevent's test suite (test__monkey_selectors) recognises the patched method by this attribute
_selectselector_select._gevent_monkey = True


def _gevent_do_monkey_patch(request):
    """monkey.patch_selectors(): DefaultSelector becomes GeventSelector; the stdlib's own
    SelectSelector and PollSelector are rebuilt on pyconc.gevent.select; when the patch is
    aggressive, the thread-blocking selector classes are taken out of the stdlib module."""
    stdlib = request.target_module
    request.default_patch_items()

    # The stdlib classes captured select.select / select.poll when selectors was imported:
    # point them at the cooperative ones (not recorded in monkey.saved, as in gevent).
    select_cls = getattr(stdlib, 'SelectSelector', None)
    if select_cls is not None:
        captured = getattr(select_cls, '_select', None)
        from .select import select
        if captured in (request.get_original('select', 'select'), select):
            select_cls._select = _selectselector_select
    poll_cls = getattr(stdlib, 'PollSelector', None)
    if poll_cls is not None and hasattr(poll_cls, '_selector_cls'):
        from .select import poll
        poll_cls._selector_cls = poll

    if request.patch_kwargs['aggressive']:
        request.remove_item(stdlib, *_THREAD_BLOCKING)
