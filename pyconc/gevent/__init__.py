"""pyconc.gevent -- a drop-in for gevent's coroutine API, on pyconc's C greenlets and a C epoll
hub per thread.

What gevent does not have: the hub waits through the same C mechanism as every pyconc primitive,
so a greenlet blocked in a pyconc.threading Lock/Event/Condition/Semaphore or a pyconc.queue
Queue parks in its hub (the others run), and can be woken by a plain thread or by a greenlet of
another thread's hub.
"""
import sys as _sys

from ..greenlet import GreenletExit, getcurrent
from .hub import get_hub, idle, kill, reinit, signal as signal_handler, sleep, spawn_raw
from .timeout import Timeout, with_timeout

__version__ = '26.9.0'
version_info = (26, 9, 0, 'final', 0)

getswitchinterval = _sys.getswitchinterval
setswitchinterval = _sys.setswitchinterval

__all__ = ['Greenlet', 'GreenletExit', 'Timeout', 'get_hub', 'getcurrent', 'getswitchinterval',
           'idle', 'iwait', 'joinall', 'kill', 'killall', 'reinit', 'setswitchinterval',
           'signal_handler', 'sleep', 'spawn', 'spawn_later', 'spawn_raw', 'wait',
           'with_timeout']

if hasattr(_sys.modules['os'], 'fork'):
    __all__.append('fork')


# Names imported on first use, so that a program that needs only a submodule (say
# pyconc.gevent.socket outside any hub, as the selectors tutorial does) does not pay for them:
# gevent.fork (os.fork, and a fresh hub in the child) is pyconc.gevent.os's, about 1.5 ms with
# pyconc.gevent.event under it; Greenlet and the wait functions about 0.4 ms.
_LAZY = {'Greenlet': 'greenlet', 'joinall': 'greenlet', 'killall': 'greenlet',
         'spawn': 'greenlet', 'spawn_later': 'greenlet', 'iwait': '_wait', 'wait': '_wait',
         'fork': 'os', 'greenlet': 'greenlet', '_wait': '_wait'}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None or (name == 'fork' and 'fork' not in __all__):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    mod = import_module('.' + where, __name__)
    if name == where:
        value = mod   # the submodule itself, bound here by the import as well
    elif name in ('spawn', 'spawn_later'):
        value = getattr(mod.Greenlet, name)
    else:
        value = getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
