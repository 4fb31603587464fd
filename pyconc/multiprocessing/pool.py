"""pyconc.multiprocessing.Pool: worker processes fed through pyconc's shared-memory queues.

Tasks and results travel as pickled frames through two C queues (csrc/proc/mpqueue.c). Each worker
owns a slot in shared memory; taking a task records (job, index) in the slot atomically with the
take (MPQueue.get_bytes(claim=...)), so when a worker dies -- SIGKILL, a segfault, os._exit --
the parent knows exactly which task it was running. That task, and only that one, fails with
WorkerDiedError naming the exit code or signal; the worker is replaced; the pool never hangs.

An exception raised by a task is re-raised by get() with the worker's traceback text attached as
its __cause__ (as the stdlib does). A BaseException in a task (SystemExit, KeyboardInterrupt)
fails that task instead of killing the worker. Functions that pickle cannot send (lambdas,
closures) travel with cloudpickle when it is installed; without it, apply_async/map raise a
PicklingError that says so. imap/imap_unordered read their input lazily, keeping a bounded
number of chunks in flight. Callbacks run in the pool's result-handler thread.
"""
import collections
import functools
import itertools
import os
import pickle
import signal
import struct
import threading as _std_threading
import time
import traceback
import types
import warnings
import weakref

from multiprocessing import ProcessError, TimeoutError, util as _mp_util
from queue import Empty as _Empty
from multiprocessing.pool import ExceptionWithTraceback, MaybeEncodingError

from .. import _core
from ..threading import Event as _Event, Lock as _TLock, Condition as _TCondition
from ._shared import Queue as _Queue

__all__ = ['Pool', 'ThreadPool', 'AsyncResult', 'ApplyResult', 'MapResult', 'IMapIterator',
           'WorkerDiedError']

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"     # the stdlib's values
_HDR = struct.Struct("qq")          # (job, index) at the start of every task and result frame
_SLOT = struct.Struct("qqq")        # per worker: job, index (claimed task), state
_IDLE, _EXITING = -1, -2
# How often the result handler looks at the workers when no result arrives: a worker that dies
# without a word (killed, crashed) is found within this time.
_POLL_S = 0.05
_PARENT_CHECK = 1.0                 # seconds an idle worker waits between checks on its parent
_job_counter = itertools.count()


class WorkerDiedError(ProcessError):
    """The worker process running a task died before finishing it."""


def _describe_exit(pid, code):
    if code is None:
        return f"worker process {pid} died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process {pid} was killed by {name} while running this task"
    return f"worker process {pid} exited with code {code} while running this task"


# -- pickling of tasks ------------------------------------------------------------------------

def _dumps_task(obj):
    try:
        return pickle.dumps(obj, 5)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        try:
            import cloudpickle
        except ImportError:
            # the pickle module's own exception type, as the stdlib's pool raises it, with a hint
            try:
                err = type(exc)(
                    f"cannot send the task to a worker process: {exc}. Lambdas, closures and "
                    f"functions defined inside other functions cannot be pickled; define the "
                    f"function at module level, or install cloudpickle (pip install "
                    f"cloudpickle), which pyconc uses for them automatically")
            except Exception:
                raise exc from None
            raise err from exc
        return cloudpickle.dumps(obj, 5)


# A task frame: (job, index), the length of the pickled function, the pickled function, the
# pickled (args, kwds). A module-level function pickles by reference, always to the same bytes:
# those bytes are cached on both sides (pickling a reference costs a module lookup, about 2 us,
# and unpickling one an import lookup). Anything else -- a bound method, a closure by value --
# is pickled afresh every time.
_FLEN = struct.Struct("I")
_BY_REFERENCE = (types.FunctionType, types.BuiltinFunctionType)
_func_bytes = {}
_pickle_dumps, _pickle_loads = pickle.dumps, pickle.loads


def _dumps_func(func):
    try:
        b = _func_bytes.get(func)   # only functions pickled by reference are kept there
    except Exception:               # an unhashable callable
        b = None
    if b is not None:
        return b
    if type(func) in _BY_REFERENCE and "<locals>" not in getattr(func, "__qualname__", "<"):
        b = _dumps_task(func)
        if len(_func_bytes) >= 256:
            _func_bytes.clear()
        _func_bytes[func] = b
        return b
    return _dumps_task(func)


def _task_frame(job, i, func, args, kwds):
    fb = _dumps_func(func)
    try:
        return _core._pool_task(job, i, fb, args, kwds, _pickle_dumps)    # one C step
    except (pickle.PicklingError, AttributeError, TypeError):
        pass    # arguments pickle can't take: cloudpickle's turn, or its error
    return _HDR.pack(job, i) + _FLEN.pack(len(fb)) + fb + _dumps_task((args, kwds))


# The mappers of map() and starmap() tasks. The worker's C loop runs a task of either itself
# (run_map in csrc/proc/pool.c: the same calls in the same order, numeric results packed as they
# come); these are what the task frames name, and what runs anywhere else.
def _mapstar(args):
    return list(map(*args))


def _starmapstar(args):
    return list(itertools.starmap(args[0], args[1]))


def _map_block(func, it, n, islice=itertools.islice):
    # the worker's map loop (csrc/proc/pool.c, run_map) calls this for n items at a time of an
    # iterator, or with n None for a whole slice of a range task
    if n is None:
        return [func(x) for x in it]
    return [func(x) for x in islice(it, n)]


# -- the worker --------------------------------------------------------------------------------

def _worker(taskq, resultq, slots, k, initializer, initargs, maxtasks, pool_pid=None):
    # pool_pid: the pool's process, given by that process itself (read here with getppid(), it
    # could already be the reaper's, had the pool's process died while this one started; and a
    # forkserver's child has the server as its parent, which lives as long as its children). The
    # C loop polls a pidfd of it; without pidfd_open, it watches the parent pid change.
    parent = os.getppid()
    pidfd = -1
    if pool_pid is not None:
        try:
            pidfd = os.pidfd_open(pool_pid)
        except ProcessLookupError:
            return                      # the pool's process is already gone
        except (AttributeError, OSError):
            pidfd = -1                  # no pidfd_open (Linux < 5.3): the parent pid it is
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
        if initializer is not None:
            initializer(*initargs)
        # the loop itself is C (csrc/proc/pool.c): take a task, run it, put its result
        _core._pool_worker(taskq, resultq, slots, k, maxtasks, parent, _PARENT_CHECK,
                           ExceptionWithTraceback, MaybeEncodingError, pidfd,
                           _mapstar, _starmapstar, _map_block)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


# -- results ------------------------------------------------------------------------------------

class ApplyResult:
    def __init__(self, pool, callback, error_callback, job=None):
        self._pool = pool
        self._event = _Event()
        self._job = next(_job_counter) if job is None else job
        self._callback = callback
        self._error_callback = error_callback
        self._success = None
        self._value = None
        pool._jobs[self._job] = self

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, i, obj):
        self._success, self._value = obj
        try:
            if self._callback and self._success:
                self._callback(self._value)
            if self._error_callback and not self._success:
                self._error_callback(self._value)
        finally:    # a callback that raises (reported by the result loop) still completes it
            self._event.set()
            self._release()

    def _release(self):
        # as the stdlib's: a result holds its pool until it is complete (a pool whose only
        # reference is a pending result's lives on), and lets go of it then
        pool, self._pool = self._pool, None
        if pool is not None:
            pool._jobs.pop(self._job, None)

    __class_getitem__ = classmethod(lambda cls, item: cls)


AsyncResult = ApplyResult


# What the result loop gives MapResult._set for a chunk it wrote into the result list itself.
_FILLED = (True, None)


class MapResult(ApplyResult):
    def __init__(self, pool, chunksize, length, callback, error_callback):
        super().__init__(pool, callback, error_callback)
        self._success = True
        self._value = [None] * length
        self._got = set()
        self._chunksize = chunksize
        self._fills = pool._fills
        if chunksize <= 0:
            self._number_left = 0
            self._event.set()
            self._release()
        else:
            self._number_left = length // chunksize + bool(length % chunksize)
            # the result loop writes packed chunks straight into _value (_FILLED then comes)
            self._fills[self._job] = (self._value, chunksize)

    def _set(self, i, success_result):
        if i in self._got:
            return
        self._got.add(i)
        self._number_left -= 1
        success, result = success_result
        if success and self._success:
            if success_result is not _FILLED:
                self._value[i * self._chunksize:(i + 1) * self._chunksize] = result
            if self._number_left == 0:
                self._finish(self._callback)
        else:
            if not success and self._success:
                self._success = False     # the first error is the one reported
                self._value = result
                self._fills.pop(self._job, None)
            if self._number_left == 0:
                # as the stdlib: ready (and the error callback called) once every chunk is in
                self._finish(self._error_callback)

    def _finish(self, callback):
        try:
            if callback:
                callback(self._value)
        finally:    # a callback that raises (reported by the result loop) still completes it
            self._fills.pop(self._job, None)
            self._release()
            self._event.set()


class IMapIterator:
    def __init__(self, pool, ordered):
        self._pool = pool
        self._cond = _TCondition(_TLock())
        self._job = next(_job_counter)
        self._items = collections.deque()
        self._index = 0
        self._length = None
        self._unsorted = {}
        self._got = set()
        self._ordered = ordered
        pool._jobs[self._job] = self

    def __iter__(self):
        return self

    def next(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._index == self._length:
                    self._release()
                    raise StopIteration from None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError from None
                self._cond.wait(left)
            item = self._items.popleft()
        success, value = item
        if success:
            return value
        raise value

    __next__ = next

    _release = ApplyResult._release

    def _set(self, i, obj):
        with self._cond:
            if i in self._got:
                return
            self._got.add(i)
            if not self._ordered:
                self._items.append(obj)
                self._index += 1
            elif self._index == i:
                self._items.append(obj)
                self._index += 1
                while self._index in self._unsorted:
                    self._items.append(self._unsorted.pop(self._index))
                    self._index += 1
            else:
                self._unsorted[i] = obj
            self._cond.notify()
            if self._index == self._length:
                self._release()

    def _set_length(self, length):
        with self._cond:
            self._length = length
            if self._index == self._length:
                self._cond.notify()
                self._release()


class _IMapFlat(IMapIterator):
    """Results of chunked imap tasks, flattened back to one item per input."""

    def __init__(self, pool, ordered, chunked):
        super().__init__(pool, ordered)
        self._flat = collections.deque()
        self._chunked = chunked
        self._ended = False

    def next(self, timeout=None):
        # The stdlib returns a generator over the chunks: once a chunk's error has been raised
        # from it, it is finished, and the later chunks' results are never yielded.
        while not self._flat:
            if self._ended:
                raise StopIteration
            try:
                self._flat.extend(IMapIterator.next(self, timeout))
            except TimeoutError:
                raise
            except BaseException:
                self._ended = self._chunked   # chunksize 1: the stdlib's iterator goes on
                raise
        return self._flat.popleft()

    __next__ = next


# -- the pool -----------------------------------------------------------------------------------

class Pool:
    """Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None)"""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None):
        if processes is None:
            processes = os.cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError('initializer must be a callable')
        from . import get_context
        self._ctx = context or get_context()
        self._processes = processes
        self._initializer = initializer
        self._initargs = initargs
        self._maxtasksperchild = maxtasksperchild
        self._taskq = _Queue()
        self._resultq = _Queue()
        self._slots = _core.SharedBlock(_SLOT.size * processes)
        self._slot_view = memoryview(self._slots).cast('B')
        self._jobs = {}
        self._fills = {}        # MapResult's job: (its result list, chunksize), while it collects
        self._exiting = []
        self._state = RUN
        self._sentinels_sent = 0
        self._pool = [None] * processes
        self._change = _std_threading.Lock()
        for k in range(processes):
            self._start_worker(k)
        # Neither the result handler nor the finalizer holds the pool: as the stdlib's, a pool
        # that its user drops (with no result pending) is collected, and the finalizer then
        # ends its workers. It runs at exit too, before multiprocessing's exit hook terminates
        # the daemonic children and joins them all: a pool still running then would see its
        # workers die and start new ones, and the join would wait for those forever (the
        # stdlib's Pool has the same finalizer, exitpriority 15).
        ref = weakref.ref(self)
        self._handler = _std_threading.Thread(
            target=_handle_results, daemon=True, name="pyconc-pool-results",
            args=(ref, self._resultq, functools.partial(_complete, self._jobs), self._fills))
        self._handler.start()
        self._terminator = _mp_util.Finalize(
            self, _terminate_pool, exitpriority=15,
            args=(ref, self._change, self._resultq, self._pool, self._jobs, self._handler))

    def _start_worker(self, k):
        _SLOT.pack_into(self._slot_view, k * _SLOT.size, _IDLE, 0, 0)
        w = self._ctx.Process(target=_worker, name=f"PoolWorker-{k + 1}",
                              args=(self._taskq, self._resultq, self._slots, k,
                                    self._initializer, self._initargs,
                                    self._maxtasksperchild, os.getpid()))
        w.daemon = True
        w.start()
        self._pool[k] = w

    # -- the result handler thread --

    def _control(self, job, i):
        if job == -1:                                # worker i is exiting after a sentinel
            self._exiting.append(i)
        # job -2: terminate() wakes us up

    def _deliver(self, data):
        job, i = _HDR.unpack_from(data)
        if job < 0:
            self._control(job, i)
            return
        _complete(self._jobs, job, i, _core._pool_decode(data, _pickle_loads))

    def _check_workers(self):
        exiting, self._exiting = self._exiting, []
        for k in exiting:                  # stopped by a sentinel: reap it without polling
            w = self._pool[k]
            if w is not None:
                w.join(5)
        for k, w in enumerate(self._pool):
            if w is None or w.exitcode is None:
                continue
            job, i, state = _SLOT.unpack_from(self._slot_view, k * _SLOT.size)
            # results it put before dying are delivered first
            while True:
                try:
                    self._deliver(self._resultq.get_bytes(False))
                except Exception:
                    break
            if job != _IDLE:
                err = WorkerDiedError(_describe_exit(w.pid, w.exitcode))
                _complete(self._jobs, job, i, (False, err))
            w.join()    # not close(): multiprocessing's atexit hook may hold it to join it;
            # its pidfd closes when the Process object goes (its Popen's Finalize)
            stopped = state == _EXITING
            self._pool[k] = None
            if self._state == TERMINATE:
                continue
            if stopped:
                continue
            if self._state == RUN or self._jobs:
                self._start_worker(k)

    def _after_results(self, control):
        # the result handler's turn after each wait: False when it is to end
        if control is not None:
            self._control(*control)
        with self._change:
            if self._state == TERMINATE:
                return False
            self._check_workers()
            if self._state == CLOSE and all(w is None for w in self._pool):
                while True:     # anything left over
                    try:
                        self._deliver(self._resultq.get_bytes(False))
                    except Exception:
                        break
                return False
        return True

    # -- submitting --

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def _frame_or_failure(self, job, i, func, args, kwds, failed):
        # A task that cannot be pickled fails through its result, as the stdlib's task thread
        # does it: its error_callback is called, get() raises the pickling error, the rest of
        # a map still runs. The failure goes through the result thread (where the stdlib calls
        # callbacks), after what was queued with it.
        try:
            return _task_frame(job, i, func, args, kwds)
        except Exception as exc:
            failed.append((job, i, exc))
            return None

    def _fail_unsent(self, failed):
        for job, i, exc in failed:
            try:
                self._resultq.put_bytes(_HDR.pack(job, i) + _pickle_dumps((False, exc)))
            except Exception:           # an exception that does not pickle: here and now
                _complete(self._jobs, job, i, (False, exc))

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check_running()
        job, failed = next(_job_counter), []
        frame = self._frame_or_failure(job, 0, func, args, kwds, failed)
        result = ApplyResult(self, callback, error_callback, job)
        if frame is None:
            self._fail_unsent(failed)
        else:
            try:
                self._taskq.put_bytes(frame)
            except BaseException:
                result._release()       # nothing was queued: the pool does not wait for it
                raise
        return result

    def _map_async(self, func, iterable, mapper, chunksize, callback, error_callback):
        self._check_running()
        if not hasattr(iterable, '__len__'):
            iterable = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(iterable), len(self._pool) * 4)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        result = MapResult(self, chunksize, len(iterable), callback, error_callback)
        if chunksize > 0:   # as the stdlib, a chunksize <= 0 queues nothing (all None)
            job = result._job
            if isinstance(iterable, range):
                # a slice of a range is a range: three numbers to pickle, not a tuple of items
                chunks = (iterable[k:k + chunksize] for k in range(0, len(iterable), chunksize))
            else:
                it = iter(iterable)
                chunks = iter(lambda: tuple(itertools.islice(it, chunksize)), ())
            # all queued in one step, with one wake-up (MPQueue.put_frames): put one by one,
            # the first woke a worker that the scheduler often ran on this thread's CPU at
            # once, and the other worker then waited for the rest of the chunks
            failed = []
            frames = [self._frame_or_failure(job, i, mapper, ((func, chunk),), {}, failed)
                      for i, chunk in enumerate(chunks)]
            if failed:
                frames = [f for f in frames if f is not None]
            try:
                self._taskq.put_frames(frames)
            except BaseException:
                self._fills.pop(job, None)   # nothing was queued: the pool does not wait for it
                result._release()
                raise
            self._fail_unsent(failed)
        return result

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, _mapstar, chunksize, None, None).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, _mapstar, chunksize, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, _starmapstar, chunksize, None, None).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, _starmapstar, chunksize, callback,
                               error_callback)

    def _imap(self, func, iterable, chunksize, ordered):
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        result = _IMapFlat(self, ordered, chunksize != 1)
        window = _std_threading.BoundedSemaphore(self._processes * 4)
        inner_set = result._set

        def _set(i, obj):
            inner_set(i, obj)
            window.release()
        result._set = _set

        def feed():
            n = 0
            try:
                it = iter(iterable)
                while True:
                    chunk = tuple(itertools.islice(it, chunksize))
                    if not chunk:
                        break
                    window.acquire()        # at most processes * 4 chunks in flight
                    if self._state != RUN:
                        break
                    try:
                        frame = _task_frame(result._job, n, _mapstar, ((func, chunk),), {})
                    except Exception as e:
                        # as the stdlib's task thread: a chunk that cannot be sent fails alone
                        # and the feed goes on (the iterable's own error, above, ends it)
                        _set(n, (False, e))
                        n += 1
                        continue
                    self._taskq.put_bytes(frame)
                    n += 1
            except BaseException as e:
                result._set_length(n + 1)
                inner_set(n, (False, e))
                return
            result._set_length(n)
        _std_threading.Thread(target=feed, daemon=True, name="pyconc-pool-imap").start()
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, True)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, False)

    # -- shutting down --

    def close(self):
        with self._change:
            if self._state == RUN:
                self._state = CLOSE
                for _ in range(sum(w is not None for w in self._pool)):
                    self._taskq.put_bytes(_HDR.pack(-1, -1))

    def terminate(self):
        with self._change:
            if self._state == TERMINATE:
                return
            self._state = TERMINATE
        self._terminator()

    def join(self):
        if self._state == RUN:
            raise ValueError("Pool is still running")
        if self._state == CLOSE:
            self._handler.join()
        for w in self._pool:
            if w is not None:
                w.join()

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.terminate()

    def __repr__(self):
        state = self._state
        return f"<{type(self).__module__}.{type(self).__qualname__} state={state} " \
               f"pool_size={len(self._pool)}>"

    def __reduce__(self):
        raise NotImplementedError('pool objects cannot be passed between processes or pickled')

    def __del__(self, _warn=warnings.warn, RUN=RUN):
        if getattr(self, "_state", None) == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning,
                  source=self)


def _complete(jobs, job, i, obj):
    j = jobs.get(job)
    if j is None:
        return          # finished already (a result, then its worker's death)
    try:
        j._set(i, obj)
    except Exception:
        traceback.print_exc()


def _handle_results(ref, resultq, complete, fills):
    """The result handler thread: results go to complete() from C for _POLL_S at a time (a
    control frame comes back here); between two waits, the pool's turn (_after_results). It
    holds the pool only for that turn, so that a dropped pool is collected; then it ends."""
    exiting = False
    while True:
        try:
            # A worker's exit message may already have been read (by _check_workers draining
            # the results of an exited worker): then take what is there and reap it now,
            # without waiting for a poll.
            control = _core._pool_results(resultq, complete, _pickle_loads,
                                          0.0 if exiting else _POLL_S, fills, _FILLED)
        except Exception:
            control = None
        pool = ref()
        if pool is None:
            return
        try:
            if not pool._after_results(control):
                return
            exiting = bool(pool._exiting)
        finally:
            pool = None     # the last reference, if the user dropped theirs: collected here


def _terminate_pool(ref, change, resultq, workers, jobs, handler):
    """terminate(), or the finalizer of a pool that was collected or is still running at exit:
    stops the result handler, ends the workers and fails the tasks left."""
    pool = ref()
    if pool is not None:
        with change:
            pool._state = TERMINATE
        pool = None
    resultq.put_bytes(_HDR.pack(-2, 0))
    if handler is not _std_threading.current_thread():
        handler.join()
    for w in workers:
        if w is not None and w.exitcode is None:
            w.terminate()
    for w in workers:
        if w is not None:
            w.join(1.0)
            if w.exitcode is None:
                w.kill()
                w.join()
    err = ValueError("the pool was terminated before this task finished")
    for job in list(jobs.values()):
        try:
            job._set(0, (False, err))
        except Exception:
            pass
    jobs.clear()


def ThreadPool(processes=None, initializer=None, initargs=()):
    """The stdlib's thread pool (it has nothing process-specific to speed up)."""
    from multiprocessing.pool import ThreadPool as _TP
    return _TP(processes, initializer, initargs)
