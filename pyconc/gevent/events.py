"""pyconc.gevent.events -- what monkey patching announces while it works (gevent.events' API).

Every event goes first to the callables of `subscribers` (a plain list: zope.event's protocol),
then to the plugins installed under the event's setuptools entry-point group
(`ENTRY_POINT_NAME`, gevent's `gevent.plugins.monkey.*` groups, so gevent plugins keep working).
A subscriber of a "will" event cancels that piece of patching by raising DoNotPatch.

Class names, constructor arguments and attributes are gevent's; its zope.interface declarations
are left out (pyconc depends on nothing).
"""

__all__ = ['subscribers', 'notify', 'notify_and_call_entry_points', 'DoNotPatch',
           'GeventPatchEvent', 'GeventWillPatchEvent', 'GeventDidPatchEvent',
           'GeventWillPatchModuleEvent', 'GeventDidPatchModuleEvent',
           'GeventWillPatchAllEvent', 'GeventDidPatchBuiltinModulesEvent',
           'GeventDidPatchAllEvent']

#: Called in order with each event; the first exception stops the round and propagates.
subscribers = []


def notify(event):
    """Hand event to each subscriber in turn."""
    for fn in subscribers:
        fn(event)


# entry-point group -> its installed plugins (EntryPoint objects, loaded when called), looked
# up once per group
_plugins_by_group = {}
_GROUP_PREFIX = 'gevent.plugins.'


def _gevents_own(ep):
    # gevent's wheel registers one plugin for itself (gevent.monkey's check that signal is not
    # patched without os). pyconc.gevent.monkey makes that check itself, and loading gevent's
    # would import gevent into a pyconc program: plugins of the gevent distribution are skipped.
    dist = getattr(ep, 'dist', None)
    return dist is not None and (dist.name or '').lower() == 'gevent'


def _installed_plugins(group):
    try:
        return _plugins_by_group[group]
    except KeyError:
        pass
    try:
        from importlib import metadata
        found = [ep for ep in metadata.entry_points(group=group) if not _gevents_own(ep)]
    except Exception:   # one unreadable distribution must not make patching fail
        found = []
    _plugins_by_group[group] = found
    return found


def notify_and_call_entry_points(event):
    """notify(event), then call each plugin of the event's entry-point group with it."""
    notify(event)
    group = getattr(event, 'ENTRY_POINT_NAME', None)
    if group is not None:
        for ep in _installed_plugins(group):
            ep.load()(event)


class DoNotPatch(BaseException):
    """A subscriber raises this from a "will" event to veto what the event announces."""


class GeventPatchEvent:
    """Base of every event: source is pyconc's replacement module, target the patched one
    (None for the events of patch_all() as a whole)."""

    def __init_subclass__(cls, plugin_group=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if plugin_group is not None:
            # ENTRY_POINT_NAME: the plugin group the concrete event is offered to
            cls.ENTRY_POINT_NAME = _GROUP_PREFIX + 'monkey.' + plugin_group

    def __init__(self, source, target):
        self.source, self.target = source, target

    def __repr__(self):
        return '<%s source=%r target=%r at %x>' % (type(self).__name__, self.source,
                                                   self.target, id(self))


class GeventWillPatchEvent(GeventPatchEvent):
    """Sent before something is patched; DoNotPatch vetoes it."""


class GeventDidPatchEvent(GeventPatchEvent):
    """Sent once something has been patched."""


class GeventWillPatchModuleEvent(GeventWillPatchEvent, plugin_group='will_patch_module'):
    """A module is about to be patched. target_item_names is the list of names that will be
    replaced; a subscriber may edit it in place."""

    def __init__(self, module_name, source, target, items):
        super().__init__(source, target)
        self.module_name, self.target_item_names = module_name, items


class GeventDidPatchModuleEvent(GeventDidPatchEvent, plugin_group='did_patch_module'):
    """A module has been patched."""

    def __init__(self, module_name, source, target):
        super().__init__(source, target)
        self.module_name = module_name


class _WholePatchEvent:
    """Shared by the patch_all() events: the patch_all() arguments in force (module name ->
    flag) and the extra keyword arguments, each read as a fresh copy."""

    def __init__(self, patch_all_arguments, patch_all_kwargs):
        super().__init__(None, None)
        self._flags = patch_all_arguments
        self._extra = patch_all_kwargs

    @property
    def patch_all_arguments(self):
        return dict(self._flags)

    @property
    def patch_all_kwargs(self):
        return dict(self._extra)

    def __repr__(self):
        return '<%s %r at %x>' % (type(self).__name__, self._flags, id(self))


class GeventWillPatchAllEvent(_WholePatchEvent, GeventWillPatchEvent,
                              plugin_group='will_patch_all'):
    """patch_all() is about to start; DoNotPatch vetoes all of it."""

    def will_patch_module(self, module_name):
        """The flag patch_all() has for module_name (None if it has none)."""
        return self._flags.get(module_name)


class GeventDidPatchBuiltinModulesEvent(_WholePatchEvent, GeventDidPatchEvent,
                                        plugin_group='did_patch_builtins'):
    """The standard library is patched; the moment for plugins to patch other libraries."""


class GeventDidPatchAllEvent(_WholePatchEvent, GeventDidPatchEvent,
                             plugin_group='did_patch_all'):
    """patch_all() has finished."""
