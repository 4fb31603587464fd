"""pyconc.greenlet -- coroutines with real C-stack switching, a drop-in for ``greenlet``.

Work in progress (issue 4): switching, parents, throw, return values, GreenletExit, killing of
unreferenced suspended greenlets, gr_frame, gr_context and settrace are in place for CPython 3.11
to 3.14 on x86-64 and aarch64. See the issue notes for what is not finished yet.
"""
from ._core import GreenletError as error
from ._core import GreenletExit, getcurrent, gettrace, settrace
from ._core import greenlet

# Feature flags greenlet publishes: all of these are supported.
GREENLET_USE_GC = 1
GREENLET_USE_TRACING = 1
GREENLET_USE_CONTEXT_VARS = 1

__all__ = ["greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace",
           "GREENLET_USE_GC", "GREENLET_USE_TRACING", "GREENLET_USE_CONTEXT_VARS"]
