"""pyconc.gevent.signal -- gevent.signal: signal() and getsignal(), cooperative for SIGCHLD.

A SIGCHLD handler installed through signal() runs in a new greenlet of the main thread's hub
(as gevent's does), not at whatever bytecode the main thread was running when the signal came:
it may block cooperatively, and its exceptions are printed by the hub instead of surfacing in the
interrupted code. getsignal(SIGCHLD) reports the handler given, not pyconc's trampoline. Any other
signal is the stdlib's business.

Unlike gevent, pyconc never takes SIGCHLD over to reap children (it waits for them through
pidfds, see pyconc.gevent.os): the handler runs once per signal the kernel delivers, and
set_wakeup_fd keeps working untouched, since CPython writes to the wakeup fd for SIGCHLD as for
any other signal.
"""
import signal as _stdsignal

__implements__ = []
__extensions__ = []

# The stdlib's functions as they are now: monkey patching may later put ours in their place.
_std_signal = _stdsignal.signal
_std_getsignal = _stdsignal.getsignal
_SIGCHLD = getattr(_stdsignal, 'SIGCHLD', None)
_DISPOSITIONS = (_stdsignal.SIG_DFL, _stdsignal.SIG_IGN)

_NOT_READ = object()
_sigchld_handler = _NOT_READ     # what getsignal(SIGCHLD) reports; read from the stdlib once


def _sigchld_trampoline(signum, frame):
    # CPython calls this in the main thread between two bytecodes of whatever runs there (the
    # hub's loop, more often than not): start the handler in a greenlet and return at once.
    handler = _sigchld_handler
    if callable(handler):
        from .greenlet import Greenlet
        Greenlet.spawn(handler, _SIGCHLD, None)


def getsignal(signalnum):
    """signal.getsignal(); for SIGCHLD, the handler last given to signal()."""
    global _sigchld_handler
    if signalnum == _SIGCHLD:
        if _sigchld_handler is _NOT_READ:
            _sigchld_handler = _std_getsignal(signalnum)
        return _sigchld_handler
    return _std_getsignal(signalnum)


def signal(signalnum, handler):
    """signal.signal(); a callable SIGCHLD handler runs in a greenlet of its own each time the
    signal arrives. Returns the previous handler."""
    global _sigchld_handler
    if signalnum != _SIGCHLD:
        return _std_signal(signalnum, handler)
    plain = handler in _DISPOSITIONS
    if not (plain or callable(handler)):
        raise TypeError("signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable "
                        "object")
    previous = getsignal(signalnum)
    _std_signal(signalnum, handler if plain else _sigchld_trampoline)
    _sigchld_handler = handler
    return previous


if _SIGCHLD is not None:
    __implements__ += ['signal', 'getsignal']
else:   # pragma: no cover (no SIGCHLD: nothing to cooperate on)
    __extensions__ += ['signal', 'getsignal']

# Everything else of the stdlib's signal module, as it is.
__imports__ = [name for name in dir(_stdsignal)
               if not name.startswith('__') and name not in globals()]
globals().update((name, getattr(_stdsignal, name)) for name in __imports__)

__all__ = __implements__ + __extensions__
