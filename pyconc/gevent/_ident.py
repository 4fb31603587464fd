"""Small, reusable per-hub integers for greenlets (Greenlet.minimal_ident), as gevent's
IdentRegistry: an object keeps its number while it lives; freed numbers are reused lowest
first."""
from heapq import heappop, heappush
from weakref import WeakKeyDictionary, ref


class _ValuedRef(ref):
    __slots__ = ('value',)


class IdentRegistry:
    def __init__(self):
        self._registry = WeakKeyDictionary()
        self._available = []

    def get_ident(self, obj):
        try:
            return self._registry[obj][0]
        except KeyError:
            pass
        ident = heappop(self._available) if self._available else len(self._registry)
        vref = _ValuedRef(obj, self._return_ident)
        vref.value = ident
        self._registry[obj] = (ident, vref)
        return ident

    def _return_ident(self, vref):
        if heappush is not None:   # None during interpreter shutdown
            heappush(self._available, vref.value)

    def __len__(self):
        return len(self._registry)
