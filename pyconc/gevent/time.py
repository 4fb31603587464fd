"""pyconc.gevent.time -- the stdlib's time module, with sleep() cooperative (gevent.time):
time.sleep after monkey.patch_time() parks the calling greenlet on its hub's timer heap."""
import time as _time

from .hub import sleep

__implements__ = ['sleep']
__all__ = __implements__

__imports__ = [name for name in dir(_time) if not name.startswith('__') and name != 'sleep']
globals().update((name, getattr(_time, name)) for name in __imports__)
