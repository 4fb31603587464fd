"""pyconc.gevent.select -- gevent.select: select() and poll objects that park only the calling
greenlet (the work is C: csrc/io/gselect.c).

Where gevent's select differs from the stdlib's, this follows gevent: a negative timeout is a
ValueError; the real select() first runs with a zero timeout (so bad descriptors raise its
errors); if that finds something, or the timeout is 0, the caller yields one turn to the other
greenlets and gets that answer; otherwise it waits on the hub for rlist/wlist (xlist is only
part of the first check). A poll object registers POLLIN|POLLOUT by default, modify() is
register(), poll() takes milliseconds (None or negative: no limit) and reports a descriptor that
is not open as POLLNVAL.

Every other name is the stdlib module's, re-exported unchanged (select.epoll stays the blocking
one, as in gevent).
"""
import select as _stdlib_select

from .. import _core

__implements__ = ['select', 'poll']
__all__ = ['error'] + __implements__

error = _stdlib_select.error

# the rest of the stdlib module: POLL*/EPOLL* constants, epoll, PIPE_BUF, ...
__imports__ = [name for name in vars(_stdlib_select)
               if not name.startswith('__') and name not in __all__]
globals().update((name, getattr(_stdlib_select, name)) for name in __imports__)

# What select() runs for its first, non-blocking look. A module global read on every call, so
# that tests may swap it.
_original_select = _stdlib_select.select

#: object with fileno() or int -> descriptor, with the stdlib's ValueErrors
get_fileno = _core._fileobj_to_fd
_gselect = _core._gevent_select

# stdlib pollers that would block the whole thread: patch_select(aggressive=True) removes them
# from the stdlib module, so libraries that probe for them fall back to select/poll
_THREAD_BLOCKING = ('epoll', 'kqueue', 'kevent', 'devpoll')


def select(rlist, wlist, xlist, timeout=None):
    """select.select() for greenlets: waiting parks the caller on its hub, the other greenlets
    keep running. See the module docstring for how it differs from the stdlib's."""
    return _gselect(rlist, wlist, xlist, timeout, _original_select)


class poll(_core.GeventPoll):
    """select.poll() for greenlets: poll(timeout) parks only the caller. POLLPRI is not
    watched for."""


def _gevent_do_monkey_patch(request):
    """monkey.patch_select(): put select and poll into the stdlib module and, when the patch is
    aggressive, take its thread-blocking pollers out."""
    request.default_patch_items()
    if request.patch_kwargs['aggressive']:
        request.remove_item(*_THREAD_BLOCKING)
