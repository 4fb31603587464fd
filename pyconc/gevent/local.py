"""pyconc.gevent.local -- greenlet-local objects (gevent.local.local).

Every greenlet sees its own set of attributes. A subclass's __init__ runs again, with the
constructor's arguments, the first time each greenlet touches the object. A greenlet's attributes
are dropped when it dies (Greenlets: through rawlink; raw greenlets: through a weak reference).
Descriptors defined on a subclass (properties, methods, slots) behave as on any object: data
descriptors take precedence over the per-greenlet attributes, which take precedence over plain
class attributes and methods.
"""
from copy import copy
from weakref import ref

from ..greenlet import getcurrent

__all__ = ['local']


class _Impl:
    """The per-greenlet dicts of one local object."""
    __slots__ = ('dicts', 'args', 'kwargs', '__weakref__')

    def __init__(self, args, kwargs):
        self.dicts = {}            # id(greenlet) -> (weakref to greenlet, dict, its link)
        self.args = args
        self.kwargs = kwargs

    def create(self, greenlet):
        d = {}
        key = id(greenlet)
        wimpl = ref(self)

        def forget(_unused, key=key, wimpl=wimpl):
            impl = wimpl()
            if impl is not None:
                impl.dicts.pop(key, None)

        rawlink = getattr(greenlet, 'rawlink', None)
        if rawlink is not None:
            rawlink(forget)
            wg = ref(greenlet)
        else:
            wg = ref(greenlet, forget)
            forget = None
        self.dicts[key] = (wg, d, forget)
        return d

    def __del__(self):
        # The local object is gone: take its links off the greenlets that are still alive, or a
        # long-running greenlet would collect one link per local it ever touched (gevent #981).
        for wg, _, forget in self.dicts.values():
            if forget is not None:
                g = wg()
                if g is not None:
                    try:
                        g.unlink(forget)
                    except Exception:   # a greenlet type without unlink: nothing to undo
                        pass


def _type_attr(cls, name):
    for base in cls.__mro__:
        bd = base.__dict__
        if name in bd:
            return bd[name], True
    return None, False


def _get_dict(self):
    impl = object.__getattribute__(self, '_local__impl')
    g = getcurrent()
    entry = impl.dicts.get(id(g))
    if entry is not None and entry[0]() is g:
        return entry[1]
    d = impl.create(g)
    init = type(self).__init__
    if init is not object.__init__:
        init(self, *impl.args, **impl.kwargs)
    return d


def _is_data_descriptor(attr):
    t = type(attr)
    return hasattr(t, '__set__') or hasattr(t, '__delete__')


class local:
    """An object whose attributes are greenlet-local."""
    __slots__ = ('_local__impl', '__weakref__')

    def __new__(cls, *args, **kwargs):
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported", args, kwargs)
        self = object.__new__(cls)
        impl = _Impl(args, kwargs)
        object.__setattr__(self, '_local__impl', impl)
        impl.create(getcurrent())   # the constructor call runs __init__ for this greenlet
        return self

    def __getattribute__(self, name):
        if name in ('_local__impl', '__class__'):
            return object.__getattribute__(self, name)
        d = _get_dict(self)
        if name == '__dict__':
            return d
        cls = type(self)
        attr, found = _type_attr(cls, name)
        if found and _is_data_descriptor(attr):
            return type(attr).__get__(attr, self, cls)
        if name in d:
            return d[name]
        if found:
            get = getattr(type(attr), '__get__', None)
            return get(attr, self, cls) if get is not None else attr
        getattr_hook, has_hook = _type_attr(cls, '__getattr__')
        if has_hook:
            return getattr_hook(self, name)
        raise AttributeError("%r object has no attribute '%s'" % (cls.__name__, name))

    def __setattr__(self, name, value):
        if name == '__dict__':
            raise AttributeError("%r object attribute '__dict__' is read-only" % type(self))
        if name == '_local__impl':
            object.__setattr__(self, name, value)
            return
        d = _get_dict(self)
        attr, found = _type_attr(type(self), name)
        if found and hasattr(type(attr), '__set__'):
            type(attr).__set__(attr, self, value)
            return
        d[name] = value

    def __delattr__(self, name):
        if name == '__dict__':
            raise AttributeError("%r object attribute '__dict__' is read-only"
                                 % type(self).__name__)
        d = _get_dict(self)
        attr, found = _type_attr(type(self), name)
        if found and hasattr(type(attr), '__delete__'):
            type(attr).__delete__(attr, self)
            return
        try:
            del d[name]
        except KeyError:
            raise AttributeError(name) from None

    def __copy__(self):
        d = copy(_get_dict(self))
        impl = object.__getattribute__(self, '_local__impl')
        dup = type(self)(*impl.args, **impl.kwargs)
        _get_dict(dup).clear()
        _get_dict(dup).update(d)
        return dup
