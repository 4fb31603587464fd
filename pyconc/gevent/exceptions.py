"""pyconc.gevent.exceptions -- gevent's exception classes (the C core raises them)."""
from .._core import (BlockingSwitchOutError, ConcurrentObjectUseError, InvalidSwitchError,
                     LoopExit)
from ..greenlet import GreenletExit


class InvalidThreadUseError(RuntimeError):
    """An object bound to one thread's hub was used from another in a way that cannot work."""


class HubDestroyed(GreenletExit):
    """Raised in the hub greenlet when its hub is destroyed."""

    def __init__(self, destroy_loop=None):
        GreenletExit.__init__(self)
        self.destroy_loop = destroy_loop


__all__ = ['LoopExit', 'BlockingSwitchOutError', 'InvalidSwitchError',
           'ConcurrentObjectUseError', 'InvalidThreadUseError', 'HubDestroyed']
