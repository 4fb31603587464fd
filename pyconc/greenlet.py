"""pyconc.greenlet -- coroutines with real C-stack switching, a drop-in for ``greenlet``.

Switching, parents, throw, return values, GreenletExit, killing of unreferenced suspended
greenlets, gr_frame, gr_context and settrace, for CPython 3.11 to 3.14 on x86-64 and aarch64;
greenlet's own test suite runs against it (tests/conformance/test_greenlet_suite.py).
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
