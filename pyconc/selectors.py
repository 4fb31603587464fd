"""pyconc.selectors -- a drop-in for the stdlib's selectors module, in C (csrc/io/selector.c).

DefaultSelector is EpollSelector: epoll, with the (key, events) list of select() built in C.
PollSelector and SelectSelector behave as the stdlib's poll() and select() based classes. The
names, signatures, keys (the stdlib's own SelectorKey), mapping, errors and timeouts are the
running CPython's (3.11).

Cooperative: select() called by a greenlet of a thread that runs a pyconc hub (pyconc.gevent)
parks only that greenlet until a registered file object is ready or the timeout passes; the
other greenlets run. From a plain thread it blocks the thread, as the stdlib's does, and one
thread may register while another selects.
"""
from selectors import EVENT_READ, EVENT_WRITE, BaseSelector, SelectorKey

from . import _core

__all__ = ['BaseSelector', 'DefaultSelector', 'EVENT_READ', 'EVENT_WRITE', 'EpollSelector',
           'PollSelector', 'SelectSelector', 'SelectorKey']


class SelectSelector(_core.SelectSelector, BaseSelector):
    """Select-based selector."""


class PollSelector(_core.PollSelector, BaseSelector):
    """Poll-based selector."""


class EpollSelector(_core.EpollSelector, BaseSelector):
    """Epoll-based selector."""


DefaultSelector = EpollSelector
