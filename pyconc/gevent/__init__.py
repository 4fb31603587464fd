"""pyconc.gevent -- a drop-in for gevent's coroutine API, on pyconc's C greenlets and a C epoll
hub per thread.

What gevent does not have: the hub waits through the same C mechanism as every pyconc primitive,
so a greenlet blocked in a pyconc.threading Lock/Event/Condition/Semaphore or a pyconc.queue
Queue parks in its hub (the others run), and can be woken by a plain thread or by a greenlet of
another thread's hub.
"""
import sys as _sys

from ..greenlet import GreenletExit, getcurrent
from ._wait import iwait, wait
from .greenlet import Greenlet, joinall, killall
from .hub import get_hub, idle, kill, reinit, signal as signal_handler, sleep, spawn_raw
from .timeout import Timeout, with_timeout

__version__ = '26.9.0'
version_info = (26, 9, 0, 'final', 0)

spawn = Greenlet.spawn
spawn_later = Greenlet.spawn_later
getswitchinterval = _sys.getswitchinterval
setswitchinterval = _sys.setswitchinterval

__all__ = ['Greenlet', 'GreenletExit', 'Timeout', 'get_hub', 'getcurrent', 'getswitchinterval',
           'idle', 'iwait', 'joinall', 'kill', 'killall', 'reinit', 'setswitchinterval',
           'signal_handler', 'sleep', 'spawn', 'spawn_later', 'spawn_raw', 'wait',
           'with_timeout']

if hasattr(_sys.modules['os'], 'fork'):
    __all__.append('fork')


def __getattr__(name):
    # gevent.fork (os.fork, and a fresh hub in the child) is pyconc.gevent.os's, imported on first
    # use: that module (and pyconc.gevent.event under it) is about 1.5 ms of `import pyconc.gevent`
    if name == 'fork' and 'fork' in __all__:
        from .os import fork
        globals()['fork'] = fork
        return fork
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
