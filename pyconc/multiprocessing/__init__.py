"""pyconc.multiprocessing -- a drop-in for the stdlib's ``multiprocessing`` with its shared state
and waits in C.

- Queue, JoinableQueue, SimpleQueue: a ring of pickled frames in shared memory with futex waits
  and a robust lock; no feeder thread (a producer can be joined before anyone reads what it put);
  the ring grows for big messages (up to 1 GiB per message, refused with ValueError beyond).
- Lock, RLock, Semaphore, BoundedSemaphore (futex words in shared memory; a Lock or RLock whose
  holder dies is taken over by the next waiter), Event, Condition, Barrier, Value, Array.
- Pipe: Connections over a socketpair or pipe, every wait interruptible by Ctrl-C.
- Pool: shared-memory task/result queues; a worker that dies fails only its own task
  (WorkerDiedError) and is replaced; lambdas travel with cloudpickle when it is installed.
- Process, current_process, parent_process, active_children: the stdlib's process objects,
  started by pyconc's "fork" launcher or the stdlib's "spawn" and "forkserver" ones; the default
  is the running stdlib's ("fork" on Linux up to 3.13, "forkserver" from 3.14).
- Manager: the stdlib's SyncManager (a server process with proxies), started with pyconc's
  Process.

Every shared object pickles by name, so it can be passed to Pool tasks and to processes that
are already running, not only inherited at start.
"""
import functools as _functools
import multiprocessing as _std
from multiprocessing import (AuthenticationError, BufferTooShort, ProcessError, TimeoutError)
from multiprocessing.process import active_children, current_process, parent_process

from ._process import ForkProcess, ForkServerProcess, Process, SpawnProcess

# The shared objects (pyconc.multiprocessing._shared, and pyconc._core under it) load on first
# use, as the stdlib loads multiprocessing.queues and .synchronize: importing them is about 2 ms,
# which a program that only starts processes need not pay.
_s = None


def _load_shared():
    global _s
    if _s is None:
        from . import _shared as s
        _s = s
    return _s

__all__ = ['Array', 'AuthenticationError', 'Barrier', 'BoundedSemaphore', 'BufferTooShort',
           'Condition', 'Event', 'JoinableQueue', 'Lock', 'Manager', 'Pipe', 'Pool', 'Process',
           'ProcessError', 'Queue', 'RLock', 'RawArray', 'RawValue', 'Semaphore', 'SimpleQueue',
           'TimeoutError', 'Value', 'WorkerDiedError', 'active_children', 'cpu_count',
           'current_process', 'freeze_support', 'get_all_start_methods', 'get_context',
           'get_start_method', 'parent_process', 'set_start_method', 'get_logger',
           'log_to_stderr', 'allow_connection_pickling', 'set_executable',
           'set_forkserver_preload']


class BaseContext:
    """The functions of the module, bound to one start method."""
    _name = None
    Process = None
    ProcessError = ProcessError
    BufferTooShort = BufferTooShort
    TimeoutError = TimeoutError
    AuthenticationError = AuthenticationError

    @staticmethod
    def current_process():
        return current_process()

    @staticmethod
    def parent_process():
        return parent_process()

    @staticmethod
    def active_children():
        return active_children()

    @staticmethod
    def cpu_count():
        return _std.cpu_count()

    def Queue(self, maxsize=0):
        return _load_shared().Queue(maxsize)

    def JoinableQueue(self, maxsize=0):
        return _load_shared().JoinableQueue(maxsize)

    def SimpleQueue(self):
        return _load_shared().SimpleQueue()

    def Pipe(self, duplex=True):
        return _load_shared().Pipe(duplex)

    def Lock(self):
        return _load_shared().Lock()

    def RLock(self):
        return _load_shared().RLock()

    def Semaphore(self, value=1):
        return _load_shared().Semaphore(value)

    def BoundedSemaphore(self, value=1):
        return _load_shared().BoundedSemaphore(value)

    def Event(self):
        return _load_shared().Event()

    def Condition(self, lock=None):
        return _load_shared().Condition(lock)

    def Barrier(self, parties, action=None, timeout=None):
        return _load_shared().Barrier(parties, action, timeout)

    def Value(self, typecode_or_type, *args, lock=True):
        return _load_shared().Value(typecode_or_type, *args, lock=lock)

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        return _load_shared().Array(typecode_or_type, size_or_initializer, lock=lock)

    def RawValue(self, typecode_or_type, *args):
        return _load_shared().RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        return _load_shared().RawArray(typecode_or_type, size_or_initializer)

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None):
        from .pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild, context=self)

    def Manager(self):
        """Starts the stdlib's SyncManager server process (with pyconc's Process) and returns
        the manager; use it as a context manager to shut the server down."""
        from multiprocessing.managers import SyncManager
        m = SyncManager(ctx=self)
        m.start()
        return m

    def get_context(self, method=None):
        if method is None:
            return self
        try:
            return _concrete_contexts[method]
        except KeyError:
            raise ValueError('cannot find context for %r' % method) from None

    def get_start_method(self, allow_none=False):
        return self._name

    def set_start_method(self, method, force=False):
        raise ValueError('cannot set start method of concrete context')

    @staticmethod
    def get_all_start_methods():
        return ['fork', 'spawn', 'forkserver']

    @staticmethod
    def freeze_support():
        pass

    @staticmethod
    def get_logger():
        return _std.get_logger()

    @staticmethod
    def log_to_stderr(level=None):
        return _std.log_to_stderr(level)

    @staticmethod
    def allow_connection_pickling():
        pass

    @staticmethod
    def set_executable(executable):
        _std.set_executable(executable)

    @staticmethod
    def set_forkserver_preload(module_names):
        _std.set_forkserver_preload(module_names)

    @property
    def reducer(self):
        return _std.reducer


class ForkContext(BaseContext):
    _name = 'fork'
    Process = ForkProcess


class SpawnContext(BaseContext):
    _name = 'spawn'
    Process = SpawnProcess


class ForkServerContext(BaseContext):
    _name = 'forkserver'
    Process = ForkServerProcess


_concrete_contexts = {'fork': ForkContext(), 'spawn': SpawnContext(),
                      'forkserver': ForkServerContext()}


class DefaultContext(BaseContext):
    """The module-level API: the start method set with set_start_method(), else the platform
    default of the running stdlib -- "fork" on Linux up to 3.13; from 3.14 "forkserver" where
    it can work (descriptor passing, a writable temporary directory), else "spawn"."""
    Process = Process

    def __init__(self, context=None):
        if context is not None:
            self._default_context = context
        self._actual_context = None

    @_functools.cached_property
    def _default_context(self):
        # Determined on first use, as the stdlib's: finding 3.14's default costs imports. The
        # stdlib's own DefaultContext knows it (an attribute up to 3.13, a cached_property
        # since) and reading it does not fix the stdlib's start method.
        from multiprocessing import context
        return _concrete_contexts[context._default_context._default_context._name]

    def get_context(self, method=None):
        if method is None:
            if self._actual_context is None:
                self._actual_context = self._default_context
            return self._actual_context
        return super().get_context(method)

    def set_start_method(self, method, force=False):
        if self._actual_context is not None and not force:
            raise RuntimeError('context has already been set')
        if method is None and force:
            self._actual_context = None
            return
        self._actual_context = self.get_context(method)

    def get_start_method(self, allow_none=False):
        if self._actual_context is None:
            if allow_none:
                return None
            self._actual_context = self._default_context
        return self._actual_context._name

    def get_all_start_methods(self):
        """The supported start methods, the default first."""
        default = self._default_context.get_start_method()
        return [default] + [name for name in _concrete_contexts if name != default]


_default_context = DefaultContext()


_FROM_SHARED = ("Array", "Value", "RawArray", "RawValue", "Connection")


def __getattr__(name):
    # the Pool module and the shared objects (and what they import) load on first use
    if name == "WorkerDiedError":
        from .pool import WorkerDiedError
        return WorkerDiedError
    if name in _FROM_SHARED:
        value = globals()[name] = getattr(_load_shared(), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_FROM_SHARED))

# The module-level API is the default context's, as in the stdlib.
for _name in ('Queue', 'JoinableQueue', 'SimpleQueue', 'Pipe', 'Lock', 'RLock', 'Semaphore',
              'BoundedSemaphore', 'Event', 'Condition', 'Barrier', 'Pool', 'Manager',
              'get_context', 'get_start_method', 'set_start_method', 'get_all_start_methods',
              'cpu_count', 'freeze_support', 'get_logger', 'log_to_stderr',
              'allow_connection_pickling', 'set_executable', 'set_forkserver_preload'):
    globals()[_name] = getattr(_default_context, _name)
del _name

