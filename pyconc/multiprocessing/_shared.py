"""Process-shared objects of pyconc.multiprocessing: queues, locks, Event, Condition, Barrier,
Value/Array and Pipe. The state and every wait are in C (csrc/proc/semlock.c, mpqueue.c,
connection.c, block.c); this module gives them the stdlib's names, signatures and reprs, and
pickles them *by name*: a pickled Queue or Lock carries (pid, fd, token) and the receiving
process attaches to the same shared memory, so they can be passed to Pool tasks and to running
processes, not only inherited. (The sending process must still be alive when the receiver
unpickles, as it holds the segment open.)"""
import os
import sys as _sys
import threading as _std_threading
import weakref

from multiprocessing import BufferTooShort
from multiprocessing import context as _mpctx
from multiprocessing import process as _mpp

from .. import _core

# ctypes, socket, multiprocessing.reduction and multiprocessing.sharedctypes are imported where
# they are needed: importing pyconc.multiprocessing stays cheap for a program that only uses
# Process and Queue.

SEM_VALUE_MAX = _core.SEM_VALUE_MAX
_SEMAPHORE, _RECURSIVE = 0, 1

# token -> live object of this process, so that unpickling something this process already has
# (inherited through fork, or received twice) gives the same object and maps nothing new.
_registry = weakref.WeakValueDictionary()


def _pickled_name(name):
    """What goes into the pickle for a segment this process names (pid, fd, token). While a
    child is being spawned (spawn, forkserver), the descriptor itself travels to the child with
    the stdlib's DupFd, so the child can attach even if the object is gone here by then."""
    if _mpctx.get_spawning_popen() is not None:
        from multiprocessing import reduction
        return ("dup", reduction.DupFd(name[1]), name[2])
    return name


def _attach_name(name, attach):
    """Calls attach((pid, fd, token)) for a pickled name, receiving a passed descriptor first."""
    if name[0] == "dup":
        fd = name[1].detach()
        try:
            return attach((os.getpid(), fd, name[2]))
        finally:
            os.close(fd)
    return attach(name)


def _rebuild(cls, name):
    obj = _registry.get(name[2])
    if obj is None or type(obj) is not cls:
        obj = _attach_name(name, cls._attach_to)
        _registry[name[2]] = obj
    return obj


# -- queues ----------------------------------------------------------------------------------

class _Absent:
    """A name the stdlib's class does not have (the C base type does): AttributeError."""

    def __init__(self, name):
        self.name = name

    def __get__(self, obj, owner=None):
        raise AttributeError(f"{(owner or type(obj)).__name__!r} object has no attribute "
                             f"{self.name!r}")


class Queue(_core.MPQueue):
    """multiprocessing.Queue in shared memory, without a feeder thread: put() has stored the
    item when it returns, so the putting process can exit (and be joined) at once."""

    def __init__(self, maxsize=0, *, ctx=None):
        if maxsize <= 0:
            maxsize = SEM_VALUE_MAX
        super().__init__(maxsize)
        _registry[self._token] = self

    @classmethod
    def _attach_to(cls, name):
        return cls._attach(name)

    def __reduce__(self):
        return _rebuild, (type(self), _pickled_name(self._name()))

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {id(self):#x}>"

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def join_thread(self):
        """Accepted for compatibility: there is no feeder thread to join."""
        if not self._closed:
            raise AssertionError(f"Queue {self!r} not closed")

    def cancel_join_thread(self):
        """Accepted for compatibility: there is no feeder thread, nothing is left unflushed."""


Queue.task_done = _Absent("task_done")
Queue.join = _Absent("join")


class JoinableQueue(Queue):
    """Queue with task_done() and join(), counted in shared memory."""
    task_done = _core.MPQueue.task_done
    join = _core.MPQueue.join


class SimpleQueue(_core.MPQueue):
    """multiprocessing.SimpleQueue: get, put, empty, close."""

    def __init__(self, *, ctx=None):
        super().__init__(0)
        _registry[self._token] = self

    _attach_to = Queue._attach_to
    __reduce__ = Queue.__reduce__

    def get(self):
        return _core.MPQueue.get(self)

    def put(self, obj):
        return _core.MPQueue.put(self, obj)


for _name in ("task_done", "join", "qsize", "full"):
    setattr(SimpleQueue, _name, _Absent(_name))
del _name



# -- locks -------------------------------------------------------------------------------------

class _SemLockBase:
    """Common face of the SemLock-based primitives (the stdlib's synchronize.SemLock)."""
    _kind = _SEMAPHORE

    def _make(self, kind, value, maxvalue):
        self._semlock = _core.SemLock(kind, value, maxvalue)
        self._setup()
        _registry[self._semlock.token] = self

    def _setup(self):
        sl = self._semlock
        self.acquire = sl.acquire
        self.release = sl.release

    if _sys.version_info >= (3, 14):
        def locked(self):
            """Whether the value is zero (a Lock or RLock: held), as 3.14's SemLock.locked()."""
            return self._semlock._is_zero()

    def __enter__(self):
        return self._semlock.__enter__()

    def __exit__(self, *args):
        return self._semlock.__exit__(*args)

    def __reduce__(self):
        return _rebuild, (type(self), _pickled_name(self._semlock._name()))

    @classmethod
    def _attach_to(cls, name):
        obj = cls.__new__(cls)
        obj._semlock = _core.SemLock._attach(name)
        obj._setup()
        return obj

    def _owner_name(self):
        owner = self._semlock._owner()
        if owner is None:
            return "None"
        pid, mine, _count = owner
        if mine:
            name = _mpp.current_process().name
            if _std_threading.current_thread().name != 'MainThread':
                name += '|' + _std_threading.current_thread().name
            return name
        return "SomeOtherThread" if pid == os.getpid() else "SomeOtherProcess"


class Semaphore(_SemLockBase):
    def __init__(self, value=1, *, ctx=None):
        # value is checked by SemLock as the stdlib's is: a C int, negative is OSError(EINVAL)
        self._make(_SEMAPHORE, value, SEM_VALUE_MAX)

    def get_value(self):
        return self._semlock._get_value()

    def __repr__(self):
        return f"<{type(self).__name__}(value={self.get_value()})>"


class BoundedSemaphore(Semaphore):
    def __init__(self, value=1, *, ctx=None):
        self._make(_SEMAPHORE, value, value)

    def __repr__(self):
        return (f"<{type(self).__name__}(value={self.get_value()}, "
                f"maxvalue={self._semlock.maxvalue})>")


class Lock(_SemLockBase):
    """A process-shared lock. If the process holding it dies, the next waiter takes it over
    within about 50 ms instead of waiting forever."""

    def __init__(self, *, ctx=None):
        self._make(_SEMAPHORE, 1, 1)

    def __repr__(self):
        return f"<{type(self).__name__}(owner={self._owner_name()})>"


class RLock(_SemLockBase):
    def __init__(self, *, ctx=None):
        self._make(_RECURSIVE, 1, 1)

    def __repr__(self):
        owner = self._semlock._owner()
        if owner is None:
            return f"<{type(self).__name__}(None, 0)>"
        # the stdlib knows the count of its own holds only: another owner's is "nonzero"
        count = owner[2] if owner[1] else "nonzero"
        return f"<{type(self).__name__}({self._owner_name()}, {count})>"


class Condition:
    """A process-shared condition variable over a pyconc Lock or RLock (RLock by default),
    built from process-shared semaphores: waiters count themselves in, notify() hands out
    exactly n wake-ups and waits until those waiters have taken them."""

    def __init__(self, lock=None, *, ctx=None):
        self._lock = lock if lock is not None else RLock()
        self._sleeping_count = Semaphore(0)
        self._woken_count = Semaphore(0)
        self._wait_semaphore = Semaphore(0)
        self._setup()

    def _setup(self):
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __getstate__(self):
        return (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore)

    def __setstate__(self, state):
        (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore) = state
        self._setup()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def __repr__(self):
        try:
            num_waiters = (self._sleeping_count._semlock._get_value() -
                           self._woken_count._semlock._get_value())
        except Exception:
            num_waiters = 'unknown'
        return f"<{type(self).__name__}({self._lock}, {num_waiters})>"

    def _held_depth(self):
        sl = self._lock._semlock
        if not sl._is_mine():
            raise AssertionError('must acquire() condition before using wait()')
        return sl._count() if sl.kind == _RECURSIVE else 1

    def wait(self, timeout=None):
        depth = self._held_depth()
        self._sleeping_count.release()          # count ourselves in as a sleeper
        for _ in range(depth):
            self._lock.release()
        try:
            return self._wait_semaphore.acquire(True, timeout)
        finally:
            self._woken_count.release()         # tell notify() we have woken (or timed out)
            for _ in range(depth):
                self._lock.acquire()

    def notify(self, n=1):
        sl = self._lock._semlock
        if not sl._is_mine():
            raise AssertionError('lock is not owned')
        if self._wait_semaphore.acquire(False):
            raise AssertionError('notify: wake-ups left over from an earlier notify')
        # Sleepers that timed out since the last notify are no longer sleeping: settle them.
        while self._woken_count.acquire(False):
            self._sleeping_count.acquire(False)
        woken = 0
        while woken < n and self._sleeping_count.acquire(False):
            self._wait_semaphore.release()
            woken += 1
        if woken:
            for _ in range(woken):
                self._woken_count.acquire()     # each of them has taken its wake-up
            while self._wait_semaphore.acquire(False):
                pass                            # wake-ups no one took (a timeout raced)

    def notify_all(self):
        self.notify(n=SEM_VALUE_MAX)

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        if timeout is not None:
            endtime = _monotonic() + timeout
        else:
            endtime = None
            waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - _monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result


def _monotonic():
    import time
    return time.monotonic()


class Event:
    """A process-shared event: one flag word in shared memory, set and cleared atomically
    (_core.SharedEvent), so is_set() is exact in every process whatever the waiters do."""

    def __init__(self, *, ctx=None):
        self._event = _core.SharedEvent()
        _registry[self._event._token] = self._event

    def __getstate__(self):
        return self._event

    def __setstate__(self, event):
        self._event = event

    def is_set(self):
        return self._event.is_set()

    def set(self):
        self._event.set()

    def clear(self):
        self._event.clear()

    def wait(self, timeout=None):
        return self._event.wait(timeout)

    def __repr__(self):
        set_ = 'set' if self.is_set() else 'unset'
        return f"<{type(self).__qualname__} at {id(self):#x} {set_}>"


class Barrier(_std_threading.Barrier):
    """threading.Barrier's state machine with its state and count in shared memory and a
    process-shared Condition."""

    def __init__(self, parties, action=None, timeout=None, *, ctx=None):
        import ctypes
        block = _core.SharedBlock(16)
        view = (ctypes.c_int64 * 2).from_buffer(block)
        self.__setstate__((parties, action, timeout, Condition(Lock()), block))
        view[0] = view[1] = 0

    def __setstate__(self, state):
        import ctypes
        (self._parties, self._action, self._timeout, self._cond, self._block) = state
        self._shared = (ctypes.c_int64 * 2).from_buffer(self._block)

    def __getstate__(self):
        return (self._parties, self._action, self._timeout, self._cond, self._block)

    @property
    def _state(self):
        return self._shared[0]

    @_state.setter
    def _state(self, value):
        self._shared[0] = value

    @property
    def _count(self):
        return self._shared[1]

    @_count.setter
    def _count(self, value):
        self._shared[1] = value


def _rebuild_segment(core_type, name):
    """A bare _core object (SharedBlock, SharedEvent) from its pickled name."""
    obj = _registry.get(name[2])
    if obj is None or type(obj) is not core_type:
        obj = _attach_name(name, core_type._attach)
        _registry[name[2]] = obj
    return obj


def _reduce_segment(obj):
    return _rebuild_segment, (type(obj), _pickled_name(obj._name()))


import copyreg as _copyreg  # noqa: E402
_copyreg.pickle(_core.SharedBlock, _reduce_segment)
_copyreg.pickle(_core.SharedEvent, _reduce_segment)


# -- Value and Array ---------------------------------------------------------------------------

def _ctype(typecode_or_type):
    from multiprocessing.sharedctypes import typecode_to_type
    return typecode_to_type.get(typecode_or_type, typecode_or_type)


def _new_value(type_):
    import ctypes
    from multiprocessing.reduction import ForkingPickler
    block = _core.SharedBlock(ctypes.sizeof(type_))
    _registry[block.token] = block
    # A raw object handed to a spawn or forkserver child (3.14's default) travels as its block,
    # as the stdlib's sharedctypes registers its types: ctypes' own pickling copies the bytes.
    ForkingPickler.register(type_, _reduce_raw)
    return type_.from_buffer(block)


def _reduce_raw(obj):
    import ctypes
    from multiprocessing.context import assert_spawning
    assert_spawning(obj)
    if isinstance(obj, ctypes.Array):   # made on the fly: its element type and length
        return _rebuild_raw, (obj._type_, _block_of(obj), obj._length_)
    return _rebuild_raw, (type(obj), _block_of(obj), None)


def _rebuild_raw(type_, block, length):
    from multiprocessing.reduction import ForkingPickler
    if length is not None:
        type_ = type_ * length
    ForkingPickler.register(type_, _reduce_raw)
    return type_.from_buffer(block)


def RawValue(typecode_or_type, *args):
    """A ctypes object in shared memory (no lock)."""
    obj = _new_value(_ctype(typecode_or_type))
    if args:
        obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    type_ = _ctype(typecode_or_type)
    if isinstance(size_or_initializer, int):
        return _new_value(type_ * size_or_initializer)
    obj = _new_value(type_ * len(size_or_initializer))
    obj.__init__(*size_or_initializer)
    return obj


def _rebuild_sync(kind, type_, block, lock, length=None):
    if length is not None:     # an array type: made again from its element type and length
        type_ = type_ * length
    return _sync_classes()[kind](type_.from_buffer(block), lock)


def _block_of(obj):
    # from_buffer() keeps the memoryview over the block in obj._objects
    objs = obj._objects
    values = objs.values() if isinstance(objs, dict) else (objs,)
    for v in values:
        if isinstance(v, memoryview):
            return v.obj
    raise TypeError("not a pyconc shared ctypes object")


_SYNC = None


def _sync_classes():
    """The stdlib's synchronized wrappers, pickled by name (built on first use)."""
    global _SYNC
    if _SYNC is None:
        import ctypes
        from multiprocessing import sharedctypes as sc

        def make(base, kind):
            def __init__(self, obj, lock=None, ctx=None):
                base.__init__(self, obj, lock if lock is not None else RLock())

            def __reduce__(self):
                # An array type (c_double * 2) is made on the fly and cannot be pickled by
                # name: it travels as its element type and length, as in the stdlib's
                # sharedctypes.reduce_ctype (a spawn or forkserver child unpickles it).
                obj = self._obj
                if isinstance(obj, ctypes.Array):
                    return _rebuild_sync, (kind, obj._type_, _block_of(obj), self._lock,
                                           obj._length_)
                return _rebuild_sync, (kind, type(obj), _block_of(obj), self._lock)
            return type(base.__name__, (base,), {"__init__": __init__, "__reduce__": __reduce__,
                                                 "__module__": __name__})
        _SYNC = {"value": make(sc.Synchronized, "value"),
                 "array": make(sc.SynchronizedArray, "array"),
                 "string": make(sc.SynchronizedString, "string")}
    return _SYNC


def _wrap(obj, lock):
    import ctypes
    if lock is False:
        return obj
    if lock in (True, None):
        lock = RLock()
    if not hasattr(lock, 'acquire'):
        raise AttributeError("%r has no method 'acquire'" % lock)
    classes = _sync_classes()
    if isinstance(obj, ctypes.Array):
        return classes["string" if obj._type_ is ctypes.c_char else "array"](obj, lock)
    return classes["value"](obj, lock)


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A ctypes object in shared memory with a process-shared RLock (lock=False: none)."""
    return _wrap(RawValue(typecode_or_type, *args), lock)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    return _wrap(RawArray(typecode_or_type, size_or_initializer), lock)


# -- Pipe ----------------------------------------------------------------------------------------

class Connection(_core.Connection):
    """One end of a Pipe: send/recv (pickle), send_bytes/recv_bytes/recv_bytes_into, poll,
    close, fileno, context manager; EOFError when the other end is closed."""

    def recv_bytes_into(self, buf, offset=0):
        return self._recv_bytes_into(buf, offset, BufferTooShort)

    def __repr__(self):
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"handle={self.fileno() if not self.closed else None}>")

    def __reduce__(self):
        if _mpctx.get_spawning_popen() is not None:
            from multiprocessing import reduction
            return _rebuild_connection, ("dup", reduction.DupFd(self.fileno()), self.readable,
                                         self.writable)
        return _rebuild_connection, (os.getpid(), self.fileno(), self.readable, self.writable)


def _rebuild_connection(pid, fd, readable, writable):
    if pid == "dup":
        return Connection(fd.detach(), readable, writable)
    if pid == os.getpid():
        return Connection(os.dup(fd), readable, writable)
    pidfd = os.pidfd_open(pid)
    try:
        newfd = _pidfd_getfd(pidfd, fd)
    finally:
        os.close(pidfd)
    return Connection(newfd, readable, writable)


def _pidfd_getfd(pidfd, fd):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_getfd = 438
    r = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, "cannot receive a Connection from process: " + os.strerror(err))
    os.set_inheritable(r, False)
    return r


def Pipe(duplex=True):
    """Returns (conn1, conn2). duplex: both ends read and write (a socketpair); otherwise conn1
    only receives and conn2 only sends (a pipe)."""
    if duplex:
        import socket
        s1, s2 = socket.socketpair()
        s1.setblocking(True)
        s2.setblocking(True)
        return Connection(s1.detach()), Connection(s2.detach())
    r, w = os.pipe()
    return Connection(r, True, False), Connection(w, False, True)
