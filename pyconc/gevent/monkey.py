"""pyconc.gevent.monkey -- gevent.monkey's API: make the standard library cooperative in place.

    from pyconc.gevent import monkey
    monkey.patch_all()

After this, unmodified code that blocks in the standard library (time.sleep, sockets and DNS,
ssl, select/poll/selectors, subprocess, os.fork/os.waitpid, threading and queue) parks only the
calling greenlet on its hub: a threading.Thread is a greenlet, and threading's primitives are
pyconc's cooperative C ones. Patch first thing in the main module, on the main thread: objects
other modules took from the stdlib before the patch keep blocking (for ssl this warns).

How it is organised:
  * each `pyconc.gevent.<name>` face says what it replaces: `__implements__` (names of the
    stdlib module it targets; `__target__` when that module is not called <name>), and
    optionally the hooks `_gevent_will_monkey_patch(module, items, warn)`,
    `_gevent_did_monkey_patch(module, items, warn)` and `_gevent_do_monkey_patch(request)`,
    where request is a _PatchRequest (the hook names and the request's API are gevent's, so
    modules written for gevent.monkey.patch_module work here too);
  * patch_module() swaps the names and records each original in `saved`, announcing the work
    through pyconc.gevent.events (subscribers may veto with DoNotPatch);
  * patch_thread() has extra work (the main thread, threads already running, locks already
    held, logging's locks, interpreter shutdown), in the "threads" section below;
  * patch_all() runs the patch_* functions in gevent's order, at most once per module.

A face that does not exist is skipped by patch_all(); calling its patch_* function raises
ImportError.
"""
import importlib
import importlib.util
import sys
import types

from . import events
from .events import DoNotPatch

__all__ = [
    'patch_all',
    'patch_builtins',
    'patch_dns',
    'patch_os',
    'patch_queue',
    'patch_select',
    'patch_signal',
    'patch_socket',
    'patch_ssl',
    'patch_subprocess',
    'patch_sys',
    'patch_thread',
    'patch_time',
    'get_original',
    'is_module_patched',
    'is_object_patched',
    'patch_module',
    'main',
    'MonkeyPatchWarning',
]

_PY313 = sys.version_info[:2] >= (3, 13)
_PY314 = sys.version_info[:2] >= (3, 14)

# The package of the faces: normally 'pyconc.gevent'; run with -m this module is __main__ and
# its spec still names the package (an alias package, such as a test adapter's, included).
_PKG = __spec__.parent if __spec__ is not None and __spec__.parent else 'pyconc.gevent'


class MonkeyPatchWarning(RuntimeWarning):
    """Category of the warnings monkey patching gives."""


# -- what was replaced ------------------------------------------------------------------------

#: stdlib module name -> {attribute name: the object patching replaced or removed}. Also holds
#: patch_all()'s accumulated settings under _SETTINGS_KEY (gevent keeps them there too).
saved = {}

_SETTINGS_KEY = '_gevent_saved_patch_all_module_settings'
_ABSENT = object()


def is_module_patched(mod_name):
    """True once something of the stdlib module mod_name (e.g. 'socket') has been replaced."""
    return mod_name in saved


def is_object_patched(mod_name, item_name):
    """True once the attribute item_name of the stdlib module mod_name has been replaced."""
    return item_name in saved.get(mod_name, ())


def is_anything_patched():
    return bool(saved)


def _originals(mod_name, item_names):
    record = saved.get(mod_name, {})
    module = None
    found = []
    for item in item_names:
        if item in record:
            found.append(record[item])
            continue
        if module is None:
            module = importlib.import_module(mod_name)
        found.append(getattr(module, item))
    return found


def get_original(mod_name, item_name):
    """The stdlib's own object(s), as they were before patching.

    item_name is a name (one object is returned) or a sequence of names (a list is returned).
    mod_name is a module name or a sequence of them, tried in turn: the first that imports is
    used; ImportError only if none does."""
    candidates = [mod_name] if isinstance(mod_name, str) else list(mod_name)
    one = isinstance(item_name, str)
    wanted = [item_name] if one else item_name
    for position, candidate in enumerate(candidates, 1):
        try:
            found = _originals(candidate, wanted)
        except ImportError:
            if position == len(candidates):
                raise
            continue
        return found[0] if one else found


def _record(module, attr, original):
    # the first original wins: patching twice must not record pyconc's object as the original
    saved.setdefault(module.__name__, {}).setdefault(attr, original)


def patch_item(module, attr, newitem):
    """Set module.attr to newitem, recording what it was (if anything) in `saved`."""
    current = getattr(module, attr, _ABSENT)
    if current is not _ABSENT:
        _record(module, attr, current)
    setattr(module, attr, newitem)


def remove_item(module, attr):
    """Delete module.attr (if present), recording it in `saved`."""
    current = getattr(module, attr, _ABSENT)
    if current is _ABSENT:
        return
    _record(module, attr, current)
    delattr(module, attr)


# -- warnings and events ----------------------------------------------------------------------

def _process_warnings(_warnings):
    """Issue the collected messages as MonkeyPatchWarnings (at the caller of patch_*())."""
    import warnings
    for text in _warnings:
        warnings.warn(text, MonkeyPatchWarning, stacklevel=3)


def _warn_or_collect(message, pending):
    """Append message to pending, the list a patch_all() call issues at its end; with no such
    list (a patch_* function called by itself), issue it now."""
    if pending is not None:
        pending.append(message)
    else:
        _process_warnings((message,))


def _announce(event):
    events.notify_and_call_entry_points(event)


def _vetoable(patch_function):
    """A patch_* function returns False when a subscriber vetoes it (DoNotPatch)."""
    import functools

    @functools.wraps(patch_function)
    def run(*args, **kwargs):
        try:
            return patch_function(*args, **kwargs)
        except DoNotPatch:
            return False
    return run


# -- patching one module ----------------------------------------------------------------------

class _PatchRequest(types.SimpleNamespace):
    """Handed to a face's _gevent_do_monkey_patch(request): target_module, source_module,
    items and patch_kwargs of one patch_module() call, with the default action available as a
    method (gevent's protocol)."""

    def __init__(self, target_module, source_module, items, patch_kwargs):
        super().__init__(target_module=target_module, source_module=source_module,
                         items=items, patch_kwargs=patch_kwargs or {})

    @staticmethod
    def get_original(mod_name, item_name):
        return get_original(mod_name, item_name)

    def default_patch_items(self):
        """Copy each listed name from the face onto the stdlib module."""
        for name in self.items:
            patch_item(self.target_module, name, getattr(self.source_module, name))

    def remove_item(self, *args):
        """remove_item(module, *names), or remove_item(*names) for the target module."""
        module = self.target_module
        if args and not isinstance(args[0], str):
            module, args = args[0], args[1:]
        for name in args:
            remove_item(module, name)


def patch_module(target_module, source_module, items=None, _warnings=None, _patch_kwargs=None,
                 _notify_will_subscribers=True, _notify_did_subscribers=True,
                 _call_hooks=True):
    """Replace the attributes of target_module named by items (by default the
    __implements__ list of source_module) with source_module's.

    Returns True when done, False when a subscriber of the will-patch event (or the face's own
    will hook) vetoed it with DoNotPatch."""
    if items is None:
        items = getattr(source_module, '__implements__', None)
        if items is None:
            raise AttributeError('Module %r has a bad or missing value for __implements__'
                                 % (source_module,))

    def warn(message):
        _warn_or_collect(message, _warnings)

    def stage_hook(stage):
        hook = getattr(source_module, '_gevent_%s_monkey_patch' % stage, None)
        if _call_hooks and hook is not None:
            hook(target_module, items, warn)

    try:
        stage_hook('will')
        if _notify_will_subscribers:
            _announce(events.GeventWillPatchModuleEvent(target_module.__name__, source_module,
                                                        target_module, items))
    except DoNotPatch:
        return False

    request = _PatchRequest(target_module, source_module, items, _patch_kwargs)
    custom = getattr(source_module, '_gevent_do_monkey_patch', None)
    if custom is not None:
        custom(request)
    else:
        request.default_patch_items()

    stage_hook('did')
    if _notify_did_subscribers:
        _announce(events.GeventDidPatchModuleEvent(target_module.__name__, source_module,
                                                   target_module))
    return True


def _face_and_target(name):
    """(pyconc.gevent.<name>, the stdlib module it patches); ImportError if either is missing."""
    face = importlib.import_module(_PKG + '.' + name)
    return face, importlib.import_module(getattr(face, '__target__', name))


def _has_face(name):
    try:
        return importlib.util.find_spec(_PKG + '.' + name) is not None
    except ImportError:
        return False


def _patch_face(name, items=None, **options):
    face, target = _face_and_target(name)
    patch_module(target, face, items=items, **options)
    return face, target


# -- the simple patch_* functions -------------------------------------------------------------

@_vetoable
def patch_sys(stdin=True, stdout=True, stderr=True):
    """Kept for gevent's API; does nothing (as gevent's, which deprecated it)."""


@_vetoable
def patch_builtins():
    """Kept for gevent's API; there is nothing to patch on Python 3."""


@_vetoable
def patch_contextvars():
    """Kept for gevent's API; does nothing: each greenlet has its own context already."""


@_vetoable
def patch_time():
    """time.sleep parks the calling greenlet (pyconc.gevent.sleep)."""
    _patch_face('time')


@_vetoable
def patch_os():
    """os.fork and os.forkpty (the child gets a fresh hub), os.waitpid (waits on the hub) and
    os.close (wakes the greenlets waiting on the descriptor): see pyconc.gevent.os."""
    _patch_face('os')


@_vetoable
def patch_queue():
    """queue's Queue, SimpleQueue, LifoQueue and PriorityQueue become pyconc.gevent.queue's.
    A true GEVENT_MONKEY_DISABLE_QUEUE_QUEUE environment variable leaves queue.Queue alone."""
    import os
    keep_queue = os.environ.get('GEVENT_MONKEY_DISABLE_QUEUE_QUEUE', '').strip().lower() \
        in ('1', 'true', 'on', 'yes')
    names = ['SimpleQueue', 'PriorityQueue', 'LifoQueue']
    if not keep_queue:
        names.append('Queue')
    _patch_face('queue', items=names)


@_vetoable
def patch_socket(dns=True, aggressive=True):
    """socket's socket class and functions become pyconc.gevent.socket's; with dns, the name
    resolution functions too (see patch_dns)."""
    face = importlib.import_module(_PKG + '.socket')
    resolver = () if dns else set(getattr(face, '__dns__', ()))
    _patch_face('socket', items=[name for name in face.__implements__ if name not in resolver])


@_vetoable
def patch_dns():
    """Only socket's name resolution (getaddrinfo, gethostbyname, ...): pyconc.gevent.socket's,
    which run the lookup in the hub's threadpool."""
    face = importlib.import_module(_PKG + '.socket')
    _patch_face('socket', items=face.__dns__)


@_vetoable
def patch_select(aggressive=True):
    """select.select and select.poll park the calling greenlet; with aggressive, the blocking
    pollers (epoll, kqueue, devpoll) are removed from the select module."""
    _patch_face('select', _patch_kwargs={'aggressive': aggressive})


@_vetoable
def patch_selectors(aggressive=True):
    """selectors.DefaultSelector becomes pyconc.gevent.selectors.GeventSelector; with aggressive,
    the blocking selector classes are removed. Nothing happens without that face."""
    try:
        _face_and_target('selectors')
    except ImportError:
        return
    _patch_face('selectors', _patch_kwargs={'aggressive': aggressive})


@_vetoable
def patch_subprocess():
    """subprocess's Popen, call, check_call, check_output and run become
    pyconc.gevent.subprocess's: waiting for a child parks the greenlet."""
    _patch_face('subprocess')


@_vetoable
def patch_signal():
    """signal.signal and signal.getsignal become pyconc.gevent.signal's (a SIGCHLD handler
    runs in its own greenlet)."""
    _patch_face('signal')


# -- ssl --------------------------------------------------------------------------------------

_SSL_LATE = ('Monkey-patching ssl after ssl has already been imported may lead to errors, '
             'including RecursionError on Python 3.6. It may also silently lead to incorrect '
             'behaviour on Python 3.7. Please monkey-patch earlier. '
             'See https://github.com/gevent/gevent/issues/1016. ')


def _holders_of(cls):
    """Who still refers to the unpatched class cls: (name, file) of each module whose globals
    hold it, and the classes derived from it; the stdlib ssl module, pyconc's modules and
    subclasses defined by gevent's or pyconc's packages are not counted."""
    import gc
    modules, subclasses = set(), set()
    for ref in gc.get_referrers(cls):
        if isinstance(ref, type):
            if cls in ref.__bases__ and not ref.__module__.startswith(('gevent.', 'pyconc.')):
                subclasses.add(ref)
        elif isinstance(ref, dict) and isinstance(ref.get('__name__'), str):
            name = ref['__name__']
            if name != 'ssl' and not name.startswith('pyconc.') \
                    and any(value is cls for value in ref.values()):
                modules.add((name, ref.get('__file__', '<unknown>')))
    return modules, subclasses


@_vetoable
def patch_ssl(_warnings=None, _first_time=True):
    """ssl's SSLContext, SSLSocket, wrap_socket and get_server_certificate become
    pyconc.gevent.ssl's. If ssl was imported before, modules that took SSLContext by name and
    its subclasses keep the blocking class: that is reported with a MonkeyPatchWarning."""
    stdlib_ssl = sys.modules.get('ssl')
    before = getattr(stdlib_ssl, 'SSLContext', None) if _first_time else None
    face, _ = _patch_face('ssl', _warnings=_warnings)
    if before is None:
        return
    modules, subclasses = _holders_of(getattr(face, 'orig_SSLContext', before))
    if not (modules or subclasses):
        return
    message = _SSL_LATE
    if modules:
        message += 'Modules that had direct imports (NOT patched): %s. ' % (
            ['%s (%s)' % entry for entry in modules],)
    if subclasses:
        message += 'Subclasses (NOT patched): %s. ' % ([str(c) for c in subclasses],)
    _warn_or_collect(message, _warnings)


# -- threads ----------------------------------------------------------------------------------
#
# After patch_thread(), _thread starts greenlets and its locks are pyconc's cooperative ones
# (pyconc.gevent.thread), and threading's low-level names are replaced (pyconc.gevent.threading).
# What the faces cannot do by themselves is done here, on the live threading module:
#   * the main thread's Thread object is keyed by the main greenlet's ident;
#   * native threads that were already running get a join() that polls, as a greenlet cannot
#     block on their native tstate lock;
#   * locks created before the patch: the ones every thread start/fork path takes are replaced,
#     held RLocks (and import locks) are given to the main greenlet's ident;
#   * logging's module lock and handler locks become cooperative RLocks;
#   * interpreter shutdown: threading._shutdown first lets the greenlets joining the main thread
#     run, then does the stdlib's work (joining non-daemon "threads", i.e. greenlets).

def _renew_logging_locks(std_threading):
    import logging
    patch_item(logging, '_lock', std_threading.RLock())
    for entry in logging._handlerList:
        handler = entry() if callable(entry) else entry    # weak references
        if handler is None:
            continue
        if getattr(handler, 'lock', _ABSENT) is _ABSENT:
            raise TypeError("Unknown/unsupported handler %r" % handler)
        handler.lock = std_threading.RLock()


def _adopt_existing_locks(std_threading):
    """Fix the locks that exist before the patch (only when the process has a single thread:
    otherwise their owners are real threads)."""
    if len(std_threading.enumerate()) != 1:
        return
    # concurrent.futures holds this lock across Thread.start() and takes it in an
    # os.register_at_fork() handler: a lock of the native thread would deadlock a greenlet that
    # forks while another greenlet starts a worker (gevent #1865)
    import concurrent.futures.thread as futures_thread
    if hasattr(futures_thread, '_global_shutdown_lock'):
        futures_thread._global_shutdown_lock = std_threading._allocate_lock()
    std_threading._active_limbo_lock = std_threading._allocate_lock()

    # RLocks and import locks record their owner by thread ident; the patched get_ident() of
    # the same code is now the main greenlet's, so re-own the held ones or they could never be
    # released
    import gc
    me = std_threading.get_ident()
    rlock_class = type(std_threading.RLock())
    import_lock_class = getattr(importlib._bootstrap, '_ModuleLock', None)
    for obj in gc.get_objects():
        if isinstance(obj, rlock_class):
            if getattr(obj, '_owner', None) is not None:
                obj._owner = me
        elif import_lock_class is not None and isinstance(obj, import_lock_class):
            if obj.owner is not None:
                obj.owner = me


def _polling_join(thread, std_threading):
    """join() for a native thread that ran before the patch: wait for it by polling, parking
    the calling greenlet between looks."""
    from time import monotonic
    from .hub import sleep

    def join(timeout=None):
        if std_threading.current_thread() is thread:
            raise RuntimeError("Cannot join current thread")
        deadline = monotonic() + timeout if timeout else None
        while thread.is_alive():
            if deadline is not None and monotonic() > deadline:
                return
            sleep(0.01)
    return join


def _handle_attr(thread):
    # 3.13 names it _handle, later versions _os_thread_handle
    return '_os_thread_handle' if hasattr(thread, '_os_thread_handle') else '_handle'


def _main_after_fork(new_ident=None):
    # Thread._after_fork of the main thread's object on 3.13+: the stdlib's would reset its
    # handle to a native one; pyconc.gevent.threading's fork hooks set up the child instead
    return new_ident


def _adapt_running_threads(std_threading, main):
    for thread in list(std_threading._active.values()):
        if thread is not main:
            thread.join = _polling_join(thread, std_threading)
        elif _PY313:
            # the main thread's handle belongs to the main greenlet, so greenlets can join it
            from .hub import getcurrent
            from .thread import _ThreadHandle
            main_handle = _ThreadHandle()
            main_handle._set_greenlet(getcurrent())
            setattr(main, _handle_attr(main), main_handle)
            main._ident = main_handle.ident
            main._after_fork = _main_after_fork


def _rekey_main_thread(std_threading, main):
    # the Thread object of the main thread is found by the main greenlet's ident from now on
    std_threading._dangling.discard(main)
    old = main.ident
    main._ident = new = std_threading.get_ident()
    if old != new and old in std_threading._active:
        std_threading._active[new] = std_threading._active.pop(old)


def _finish_shutdown(std_threading, stdlib_shutdown):
    from .exceptions import LoopExit
    try:
        stdlib_shutdown()
    except LoopExit:
        pass    # nothing left to run: every greenlet it would wait for is gone
    patch_item(std_threading, '_shutdown', stdlib_shutdown)


def _let_main_greenlet_joiners_run(main_greenlet):
    from .hub import get_hub, sleep
    try:
        sleep()
    except BaseException:   # killed or thrown into: the interpreter is ending anyway
        get_hub().print_exception(main_greenlet, *sys.exc_info())


def _shutdown_for_main_thread(std_threading, main, stdlib_shutdown):
    """threading._shutdown when the patch was made on the main thread."""
    from .hub import getcurrent
    main_greenlet = getcurrent()

    if not _PY313:
        # While the program runs, the main thread's tstate lock is a held cooperative lock, so
        # that greenlets can join() the main thread; the native one comes back for the stdlib's
        # shutdown, which releases it.
        native_lock = main._tstate_lock
        stand_in = std_threading.Lock()
        stand_in.acquire()
        main._tstate_lock = stand_in

        def _shutdown():
            if main._tstate_lock is None:
                return
            main._tstate_lock.release()
            _let_main_greenlet_joiners_run(main_greenlet)
            main._is_stopped = False
            main._tstate_lock = native_lock
            _finish_shutdown(std_threading, stdlib_shutdown)
    else:
        attr = _handle_attr(main)

        class _SpentHandle:
            # what the main thread's handle looks like to the stdlib's shutdown once pyconc
            # has marked it done
            def is_done(self):
                return False

            def _set_done(self):
                pass

            def join(self):
                pass

        def _shutdown():
            getattr(main, attr)._set_done()
            _let_main_greenlet_joiners_run(main_greenlet)
            setattr(main, attr, _SpentHandle())
            # the part of the stdlib's shutdown that waits: the atexit callbacks of threading,
            # then the non-daemon threads, joined here in short slices so greenlets run
            std_threading._SHUTTING_DOWN = True
            callbacks = std_threading._threading_atexits
            while callbacks:
                callbacks.pop()()
            for thread in std_threading.enumerate():
                if thread.daemon or thread is main:
                    continue
                handle = getattr(thread, attr)
                while thread.is_alive():
                    try:
                        handle.join(0.001)
                    except RuntimeError:
                        handle._set_done()
                        break
            _finish_shutdown(std_threading, stdlib_shutdown)

    patch_item(std_threading, '_shutdown', _shutdown)


def _shutdown_for_other_thread(std_threading, main, stdlib_shutdown, pending):
    """threading._shutdown when the patch was made on another native thread."""
    _warn_or_collect("Monkey-patching not on the main thread; threading.main_thread().join() "
                     "will hang from a greenlet", pending)
    get_ident = std_threading.get_ident

    def _shutdown():
        main._ident = get_ident()
        _finish_shutdown(std_threading, stdlib_shutdown)

    patch_item(std_threading, '_shutdown', _shutdown)


@_vetoable
def patch_thread(threading=True, _threading_local=True, Event=True, logging=True,
                 existing_locks=True, _warnings=None):
    """_thread starts greenlets and its locks are cooperative; with threading, a
    threading.Thread runs as a greenlet and threading's primitives are pyconc's (see
    pyconc.gevent.threading). _threading_local: _threading_local.local becomes
    pyconc.gevent.local.local. Event: threading.Event becomes pyconc.gevent.event.Event.
    logging: the locks of an already imported logging module are replaced. existing_locks:
    RLocks held now are handed to the main greenlet. Patch early, from the main thread.

    As in gevent, the stdlib multiprocessing's Queue and ProcessPoolExecutor, which rely on
    real threads, hang once threads are greenlets (pyconc.multiprocessing's do not)."""
    std_threading = importlib.import_module('threading')
    # who is running and what shutdown does, before get_ident() changes meaning
    caller = std_threading.current_thread()
    main = std_threading.main_thread()
    stdlib_shutdown = std_threading._shutdown

    # the did-patch events of both modules are sent at the end, once everything is in place
    deferred = {'_warnings': _warnings, '_notify_did_subscribers': False}
    thread_face, std_thread = _patch_face('thread', **deferred)
    threading_face = None
    if threading:
        threading_face, _ = _patch_face('threading', **deferred)
        if Event:
            from .event import Event as CoopEvent
            patch_item(std_threading, 'Event', CoopEvent)
        if existing_locks:
            _adopt_existing_locks(std_threading)
        if logging and 'logging' in sys.modules:
            _renew_logging_locks(std_threading)
    if _threading_local:
        from .local import local
        patch_item(importlib.import_module('_threading_local'), 'local', local)
    if threading:
        _adapt_running_threads(std_threading, main)

    if not is_object_patched('threading', '_shutdown'):
        if caller is main:
            _shutdown_for_main_thread(std_threading, main, stdlib_shutdown)
            _rekey_main_thread(std_threading, main)
        else:
            _shutdown_for_other_thread(std_threading, main, stdlib_shutdown, _warnings)

    _announce(events.GeventDidPatchModuleEvent('thread', thread_face, std_thread))
    if threading_face is not None:
        _announce(events.GeventDidPatchModuleEvent('threading', threading_face, std_threading))


# -- patch_all --------------------------------------------------------------------------------

def _merge_settings(settings):
    """Fold this call's patch_all() settings into the ones of earlier calls (kept in `saved`):
    a module is patched once, and a setting only ever goes from False to True.

    Returns (pending warnings, whether this is the first call, the settings to act on now)."""
    pending = []
    previous = saved.setdefault(_SETTINGS_KEY, {})
    first_time = not previous
    if not first_time and previous != settings:
        pending.append("Patching more than once will result in the union of all True"
                       " parameters being patched")
    now = {}
    for name, value in settings.items():
        if name not in previous or (value and not previous[name]):
            now[name] = previous[name] = value
    return pending, first_time, now


def _patch_all_modules(settings, extra):
    """patch_all()'s work; returns (its result, the warnings to issue)."""
    pending, first_time, todo = _merge_settings(settings)
    if not todo:
        return None, pending
    try:
        will = events.GeventWillPatchAllEvent(todo, extra)
        _announce(will)
    except DoNotPatch:
        return False, pending
    if will.will_patch_module('signal') and not will.will_patch_module('os'):
        pending.append('Patching signal but not os will result in SIGCHLD handlers installed '
                       'after this not being called and os.waitpid may not function correctly '
                       'if gevent.subprocess is used. This may raise an error in the future.')

    def wanted(name):
        return todo.get(name, False)

    aggressive = settings['aggressive']
    if wanted('os'):
        patch_os()
    if wanted('thread'):
        patch_thread(Event=settings['Event'], _warnings=pending)
    if wanted('time'):
        patch_time()
    if wanted('sys'):
        patch_sys()
    if wanted('socket') and _has_face('socket'):
        patch_socket(dns=settings['dns'], aggressive=aggressive)
    if wanted('select'):
        # 3.14's selectors must be patched before select (gevent's order)
        pair = [('select', patch_select), ('selectors', patch_selectors)]
        for name, patcher in (reversed(pair) if _PY314 else pair):
            if _has_face(name):
                patcher(aggressive=aggressive)
    if wanted('ssl') and _has_face('ssl'):
        patch_ssl(_warnings=pending, _first_time=first_time)
    for name, patcher in (('subprocess', patch_subprocess), ('builtins', patch_builtins),
                          ('signal', patch_signal), ('queue', patch_queue),
                          ('contextvars', patch_contextvars)):
        if wanted(name):
            patcher()

    _announce(events.GeventDidPatchBuiltinModulesEvent(todo, extra))
    _announce(events.GeventDidPatchAllEvent(todo, extra))
    return True, pending


def patch_all(socket=True, dns=True, time=True, select=True, thread=True, os=True,
              ssl=True, subprocess=True, sys=False, aggressive=True, Event=True, builtins=True,
              signal=True, queue=True, contextvars=True, **kwargs):
    """Patch every module gevent.monkey.patch_all() patches (each argument turns one off or on;
    dns, aggressive and Event are passed on to patch_socket/patch_select/patch_thread).

    Returns True when it patched, None when an earlier call already did everything asked, and
    False when a subscriber vetoed the whole patch (DoNotPatch on GeventWillPatchAllEvent).
    Calling it again patches only what earlier calls left out, warning if the arguments
    differ. Extra keyword arguments are handed to subscribers and plugins
    (GeventWillPatchAllEvent.patch_all_kwargs)."""
    settings = dict(locals())
    del settings['kwargs']
    result, pending = _patch_all_modules(settings, kwargs)
    if result is not False:
        _process_warnings(pending)
    return result


# -- python -m pyconc.gevent.monkey -----------------------------------------------------------

def _patchable_modules():
    """patch_all()'s argument names, and those of them that name a module (have a patch_*)."""
    import inspect
    arguments = [p.name for p in inspect.signature(patch_all).parameters.values()
                 if p.kind is p.POSITIONAL_OR_KEYWORD]
    return arguments, [a for a in arguments if 'patch_' + a in globals()]


def _usage(modules):
    return ("Usage: python -m %s.monkey [options] [--module] (script | module) [arguments]\n"
            "\n"
            "Runs the script (or, with --module, the module) as __main__ with the standard\n"
            "library patched by patch_all(). Options:\n"
            "  --no-<name>   leave <name> out of patch_all()\n"
            "  --<name>      patch only the modules named this way\n"
            "  --verbose     print the patch_all() call and the interpreter's state first\n"
            "Names: %s" % (_PKG, ', '.join(modules)))


def _print_state(settings):
    import os
    from pprint import pformat
    print('%s.monkey.patch_all(%s)' % (_PKG, ', '.join('%s=%s' % kv for kv in settings.items())))
    for label, value in (('sys.version', ' '.join(sys.version.split())),
                         ('sys.path', pformat(sys.path)),
                         ('sys.modules', pformat(sorted(sys.modules))),
                         ('cwd', os.getcwd())):
        print('%s=%s' % (label, value))


def _become_the_monkey_module():
    # Run as `python -m`, this module is __main__: make it the package's `monkey` as well,
    # under every name it can be imported by, so the program sees this module's `saved`.
    this = sys.modules[__name__]
    names = {_PKG + '.monkey', 'pyconc.gevent.monkey'}
    if __spec__ is not None:
        names.add(__spec__.name)
    for name in names:
        sys.modules[name] = this
        package, _, leaf = name.rpartition('.')
        if package in sys.modules:
            setattr(sys.modules[package], leaf, this)


def main():
    """`python -m pyconc.gevent.monkey [options] script-or-module [args]`: patch_all(), then
    run the program as __main__ (see _usage)."""
    import itertools
    arguments, modules = _patchable_modules()
    settings = {}
    verbose = False
    run_as_module = False
    options = list(itertools.takewhile(lambda arg: arg.startswith('--'), sys.argv[1:]))
    argv = sys.argv[1 + len(options):]
    for option in (opt[2:] for opt in options):
        if option == 'verbose':
            verbose = True
        elif option == 'module':
            run_as_module = True
        elif option.startswith('no-') and option[3:] in arguments:
            settings[option[3:]] = False
        elif option in arguments:
            settings[option] = True
            if option in modules:
                # naming one module to patch means: only the named ones
                for name in modules:
                    settings.setdefault(name, False)
        else:
            sys.exit(_usage(modules) + '\n\n' + 'Cannot patch %r' % option)
    if verbose:
        _print_state(settings)
    if not argv:
        print(_usage(modules))
        return
    sys.argv[:] = argv
    _become_the_monkey_module()
    patch_all(**settings)
    import runpy
    if run_as_module:
        return runpy.run_module(argv[0], run_name='__main__')
    return runpy.run_path(argv[0], run_name='__main__')


if __name__ == '__main__':
    main()
