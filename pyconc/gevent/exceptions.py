"""pyconc.gevent.exceptions -- gevent's exception classes (the C core raises them)."""
from .. import _core
from .._core import BlockingSwitchOutError, ConcurrentObjectUseError, InvalidSwitchError
from ..greenlet import GreenletExit


class LoopExit(_core.LoopExit):
    """Raised in the main greenlet when the hub has nothing left that could ever wake it: the
    blocking call would block forever. args: (message, hub, handles)."""

    @property
    def hub(self):
        if len(self.args) == 3:
            return self.args[1]
        return None

    def __repr__(self):
        if len(self.args) == 3:
            import pprint
            return ("%s\n\tHub: %s\n\tHandles:\n%s"
                    % (self.args[0], self.args[1], pprint.pformat(self.args[2])))
        return Exception.__repr__(self)

    def __str__(self):
        return repr(self)


_core._set_gevent_class('LoopExit', LoopExit)


class InvalidThreadUseError(RuntimeError):
    """An object bound to one thread's hub was used from another in a way that cannot work."""


class HubDestroyed(GreenletExit):
    """Raised in the hub greenlet when its hub is destroyed."""

    def __init__(self, destroy_loop=None):
        GreenletExit.__init__(self)
        self.destroy_loop = destroy_loop


__all__ = ['LoopExit', 'BlockingSwitchOutError', 'InvalidSwitchError',
           'ConcurrentObjectUseError', 'InvalidThreadUseError', 'HubDestroyed']
