"""pyconc.gevent.threadpool -- ThreadPool: run blocking functions in OS threads, the result waited
for by a greenlet without blocking its hub (gevent.threadpool's API).

The path of one task:

    greenlet (hub thread H)                 worker (OS thread)              hub of H
    spawn(): take a slot (Semaphore),
      put (func, args, kwargs, ThreadResult)
      on task_queue (pyconc.queue.Queue) --> get() ... func(*args) -->
    AsyncResult.get(): parks in H's hub       ThreadResult.set(value):
                                                hub.loop.run_callback(...) --> _deliver: give
                                                task_done()                    the slot back,
                                                                               print the error
                                                                               if any, set the
                                                                               AsyncResult

so, as with gevent's async watcher, the AsyncResult is set in the hub's thread, after the slot
is given back and a failing task's traceback is printed (context (worker, func)).

Workers are pyconc.threading.Thread objects, daemon threads: pyconc's own OS threads (C
bootstrap), named and listed by pyconc.threading.enumerate(); daemon because idle workers must
not hold up the interpreter's exit. A worker blocks in task_queue.get() -- a C wait with the
GIL released -- and has threading's profile/trace hooks installed only while it runs a task.

Bookkeeping (which workers exist, how many stop markers are queued) is done in the hub's
thread only: a worker that leaves tells the pool through run_callback, so the pool's fields need
no lock. The pool is used from the thread of its hub (spawn() checks).

Slots: at most maxsize + 1 tasks are outstanding (one more than maxsize may wait in the queue,
as in gevent); a greenlet spawning beyond that parks on the slot Semaphore. Lowering maxsize
below the slots in use is a debt paid back by the next releases, so the C semaphore never goes
negative.

Shrinking: a stop marker (None) queued behind the pending tasks makes the worker that takes it
leave. kill() (size = 0) waits until every marker has been taken: the queued tasks run first.
When the hub's thread ends (its hub is destroyed then), its pools' workers are told to stop
too (a thread-local sentinel; gevent leaves them waiting for tasks forever).
"""
import os
import sys
import weakref
from _thread import _local as _thread_local
from _thread import allocate_lock as _allocate_lock
from _thread import get_ident as _get_ident

from .. import _core
from ..greenlet import getcurrent
from ..queue import Empty, Queue
from ..threading import Thread
from .event import AsyncResult
from .exceptions import InvalidThreadUseError
from .hub import get_hub
from .lock import Semaphore
from .pool import GroupMappingMixin

__all__ = ['ThreadPool', 'ThreadResult']

_get_hub_if_exists = _core._get_hub_if_exists
_current_hub = _core.get_hub          # hub.get_hub without its (ignored) arguments
_CoreEvent = _core.Event


def _hub_text(hub):
    if hub is None:
        return '<missing>'
    return '<%s at 0x%x thread_ident=0x%x>' % (type(hub).__name__, id(hub), hub.thread_ident)


def _nothing(*_args):
    """Stands in for a receiver or ready-callback that must not be called any more."""


def _threading_hooks():
    """threading's profile and trace hooks (threading.setprofile/settrace), or Nones."""
    threading = sys.modules.get('threading')
    if threading is None:
        return None, None
    return getattr(threading, '_profile_hook', None), getattr(threading, '_trace_hook', None)


def _clear_own_hooks():
    # only when set: the setters raise an audit event even for None
    if sys.getprofile() is not None:
        sys.setprofile(None)
    if sys.gettrace() is not None:
        sys.settrace(None)


def _print_worker_failure(task, exc, stream):
    """A worker's own loop failed (not a task: those go to the caller): a short report."""
    print("Failed to run worker thread. Task=%r Exception=%r" % (task, exc), file=stream)
    frame_tb = exc.__traceback__
    while frame_tb is not None:
        code = frame_tb.tb_frame.f_code
        print('  File "%s", line %d, in %s' % (code.co_filename, frame_tb.tb_lineno,
                                                 code.co_name), file=stream)
        frame_tb = frame_tb.tb_next


class _Worker:
    """One worker thread of a ThreadPool: takes tasks from the pool's queue until it takes a stop
    marker (None), or none came for idle_task_timeout seconds (when that is >= 0)."""

    _made = 0    # for the thread names

    def __init__(self, pool):
        self._pool = pool
        self._hub = pool.hub
        self._thread_ident = 0
        self._running = None      # a lock the new thread releases once it runs (see start())
        self._stderr = sys.stderr
        _Worker._made += 1
        self._thread = Thread(target=self._main, name='ThreadPoolWorker-%d' % _Worker._made,
                              daemon=True)

    def start(self):
        # Wait (an OS-level wait, legal in the hub greenlet too) until the thread runs: before
        # that it has no thread state, and a hub that finds no other thread in the interpreter
        # raises LoopExit in a greenlet waiting for this worker's result.
        # (pyconc.threading.Thread.start() returns before the thread exists; the stdlib's
        # waits for it.)
        running = self._running = _allocate_lock()
        running.acquire()
        self._thread.start()
        running.acquire()

    def __repr__(self):
        return '<ThreadPoolWorker at 0x%x thread_ident=0x%x threadpool-hub=%s>' % (
            id(self), self._thread_ident, _hub_text(self._hub))

    def _run_one(self, func, args, kwargs, result):
        profile, trace = _threading_hooks()
        try:
            if profile is not None:
                sys.setprofile(profile)
            if trace is not None:
                sys.settrace(trace)
        except BaseException:
            # the caller gets the error (and its slot back); this worker leaves, its
            # replacement starts without half-installed hooks
            result.handle_error((self, func), sys.exc_info())
            raise
        try:
            value = func(*args, **kwargs)
        except BaseException:
            result.handle_error((self, func), sys.exc_info())
        else:
            result.set(value)
        finally:
            _clear_own_hooks()

    def _main(self):
        self._thread_ident = _get_ident()
        self._running.release()
        # A pyconc thread starts with threading's hooks installed (as the stdlib's do); a worker
        # applies them per task only.
        _clear_own_hooks()
        tasks = self._pool.task_queue
        # a negative idle_task_timeout (the default) means: wait for tasks forever
        idle_limit = self._pool._idle_limit
        if idle_limit is not None and not idle_limit >= 0:
            idle_limit = None
        took_marker = False
        task = None
        try:
            while True:
                try:
                    task = tasks.get(True, idle_limit)
                except Empty:
                    break          # idle for too long
                if task is None:
                    took_marker = True   # its task_done() is the pool's, in the hub thread
                    break
                try:
                    self._run_one(*task)
                finally:
                    tasks.task_done()
                task = None        # (kept for the report below if the task's setup failed)
        except BaseException as exc:
            try:
                _print_worker_failure(task, exc, self._stderr)
            except BaseException:   # stderr unusable (interpreter shutdown): nothing to do
                pass
        finally:
            task = None
            self._leave(took_marker)

    def _leave(self, took_marker):
        pool, self._pool = self._pool, None
        try:
            self._hub.loop.run_callback(pool._worker_left, self, took_marker)
        except Exception:
            # the pool's hub is gone (its thread ended): nobody waits there any more
            pool._worker_left(self, took_marker)


class ThreadResult:
    """A one-shot result handed from a worker thread to the hub's thread: set(value) or
    handle_error(context, exc_info) in the worker; then, in the hub (a callback of its loop),
    call_when_ready(), the error printed by hub.handle_error(context, ...), and receiver(self)
    (an AsyncResult takes the outcome). The value and the traceback are dropped afterwards."""

    __slots__ = ('exc_info', 'value', 'context', 'hub', 'receiver', '_when_ready')

    def __init__(self, receiver, hub, call_when_ready):
        self.receiver = receiver
        self.hub = hub
        self.context = None
        self.value = None
        self.exc_info = ()
        self._when_ready = call_when_ready

    @property
    def exception(self):
        info = self.exc_info
        return info[1] if info else None

    def successful(self):
        return not self.exc_info or self.exc_info[1] is None

    def set(self, value):
        """Any thread: the task returned value."""
        self.value = value
        self._post()

    def handle_error(self, context, exc_info):
        """Any thread: the task raised; context names where (printed by the hub)."""
        self.context = context
        self.exc_info = exc_info
        self._post()

    def _post(self):
        hub = self.hub
        if hub is None:     # destroyed: the result goes nowhere
            return
        loop = hub.loop
        try:
            if hub.thread_ident == _get_ident():
                # gevent delivers through an async watcher, which fires in the loop's poll
                # phase, after the callbacks already queued: one pass later here likewise
                loop.run_callback(loop.run_callback, self._deliver)
            else:
                loop.run_callback(self._deliver)
        except Exception:
            # the hub has been destroyed (its thread ended): hand the outcome over here,
            # without the hub's error printing (an AsyncResult can be set from any thread)
            self._detach()
            self._hand_over()

    def _deliver(self):
        # in the hub's thread
        hub = self.hub
        if hub is None:
            return
        try:
            self._when_ready()
            if self.exc_info:
                hub.handle_error(self.context, *self.exc_info)
            self._detach()
        except BaseException:
            self._drop_outcome()
            raise
        self._hand_over()

    def _detach(self):
        # no more hub, no more ready-callback: whatever happens next, they are not called
        self.hub = None
        self._when_ready = _nothing

    def _hand_over(self):
        try:
            self.context = None
            self.receiver(self)
        finally:
            self._drop_outcome()

    def _drop_outcome(self):
        self.receiver = _nothing
        self.value = None
        info = self.exc_info
        if info:
            self.exc_info = info[:2] + (None,)   # the traceback holds the worker's frames

    def destroy_in_main_thread(self):
        """In the hub's thread: the result will not be delivered."""
        self.context = None
        self._detach()
        self.receiver = _nothing


class ThreadPool(GroupMappingMixin):
    """ThreadPool(maxsize, hub=None, idle_task_timeout=-1): a pool of at most maxsize OS threads,
    started as tasks come. spawn(func, *args, **kwargs) returns an AsyncResult that a greenlet
    can wait on while the others run. Use it from the thread of its hub (by default the
    current one's); get_hub().threadpool is the hub's own (maxsize Hub.threadpool_size).

    len() is the number of unfinished tasks (so an idle pool is false); size is the number of
    worker threads (settable, up to maxsize); idle_task_timeout >= 0 lets a worker leave after
    that many idle seconds."""

    def __init__(self, maxsize, hub=None, idle_task_timeout=-1):
        self.hub = hub if hub is not None else get_hub()
        self._idle_limit = idle_task_timeout
        self.manager = None       # gevent's attribute; no manager greenlet is needed here
        self._fresh_state()
        self._resize(maxsize)
        _pools.add(self)
        if self.hub.thread_ident == _get_ident():
            _watch_thread_end(self)

    def _fresh_state(self):
        self.pid = os.getpid()
        self.task_queue = Queue()
        self._workers = set()     # the live _Worker objects (hub thread only)
        self._markers = 0         # stop markers queued and not taken yet (hub thread only)
        # set (in the hub thread) whenever a worker has left
        self._someone_left = _CoreEvent()
        self._maxsize = 0
        # spawn() takes a slot, the result's delivery gives it back; it starts at 1, so
        # maxsize + 1 tasks may be outstanding
        self._slots = Semaphore(1, self.hub)
        self._slot_debt = 0       # slots taken away by lowering maxsize, not yet given back

    def _live_workers(self):
        # workers not already told to stop
        return len(self._workers) - self._markers

    def _hub_thread_ended(self):
        # In the ending thread, its hub gone: the workers would wait for tasks forever. Those
        # already queued still run (their results are set from the workers' threads).
        live = self._live_workers()
        if live > 0:
            self._send_markers(live)

    def _after_fork(self):
        # In a forked child only the forking thread exists: the workers are gone, and so is
        # every task the parent had queued (their results never come).
        keep = self._maxsize
        self.manager = None
        self._fresh_state()
        self._resize(keep)

    # -- sizes

    def _resize(self, maxsize):
        if not isinstance(maxsize, int):
            raise TypeError('maxsize must be integer: %r' % (maxsize, ))
        if maxsize < 0:
            raise ValueError('maxsize must not be negative: %r' % (maxsize, ))
        self._change_slots(maxsize - self._maxsize)
        self._maxsize = maxsize
        self.adjust()

    @property
    def maxsize(self):
        """The most worker threads the pool starts; also (plus one) how many tasks may be
        outstanding before spawn() waits."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value):
        self._resize(value)

    def _change_slots(self, difference):
        if difference < 0:
            self._slot_debt -= difference
            while self._slot_debt > 0 and self._slots.acquire(blocking=False):
                self._slot_debt -= 1
            return
        repaid = min(difference, self._slot_debt)
        self._slot_debt -= repaid
        for _ in range(difference - repaid):
            self._slots.release()

    def _give_slot_back(self):
        if self._slot_debt > 0:
            self._slot_debt -= 1
        else:
            self._slots.release()

    @property
    def size(self):
        """The number of worker threads. Setting it starts or stops threads (up to maxsize)
        and waits until the ones told to stop have; the pool still starts threads on demand
        afterwards."""
        return len(self._workers)

    @size.setter
    def size(self, size):
        if size < 0:
            raise ValueError('Size of the pool cannot be negative: %r' % (size, ))
        if size > self._maxsize:
            raise ValueError('Size of the pool cannot be bigger than maxsize: %r > %r'
                             % (size, self._maxsize))
        live = self._live_workers()
        for _ in range(live, size):
            self._add_thread()
        if live > size:
            self._send_markers(live - size)
        if self.hub is getcurrent():
            return        # the hub cannot wait for the workers' news, which it delivers
        someone_left = self._someone_left
        while self._markers > 0:
            someone_left.clear()
            someone_left.wait()

    def adjust(self):
        """Start threads while tasks outnumber them (up to maxsize); ask the extra ones beyond
        maxsize to stop."""
        live = self._live_workers()
        if live > self._maxsize:
            self._send_markers(live - self._maxsize)
            return
        waiting = self.task_queue.unfinished_tasks - self._markers
        wanted = min(self._maxsize, waiting)
        for _ in range(live, wanted):
            self._add_thread()

    def _add_thread(self):
        worker = _Worker(self)
        self._workers.add(worker)
        try:
            worker.start()
        except BaseException:
            self._workers.discard(worker)
            raise

    def _send_markers(self, count):
        for _ in range(count):
            self.task_queue.put(None)
            self._markers += 1

    def _worker_left(self, worker, took_marker):
        """In the hub's thread: worker has left (it took a stop marker, or was idle too long,
        or its loop failed)."""
        if worker not in self._workers:
            return      # a worker of before a fork
        self._workers.discard(worker)
        if took_marker:
            self._markers -= 1
            self.task_queue.task_done()
        self._someone_left.set()
        if not took_marker and self.task_queue.unfinished_tasks > self._markers:
            self.adjust()   # tasks are still waiting: replace it

    # -- tasks

    def spawn(self, func, *args, **kwargs):
        """Run func(*args, **kwargs) in a worker thread; returns an AsyncResult. Waits (parks
        the greenlet) while maxsize + 1 tasks are outstanding; starts a thread if needed.
        Only from the thread of the pool's hub (else InvalidThreadUseError)."""
        if _current_hub() is not self.hub:
            raise InvalidThreadUseError()
        self._slots.acquire()
        outcome = AsyncResult()
        courier = None
        try:
            courier = ThreadResult(outcome, self.hub, self._give_slot_back)
            self.task_queue.put((func, args, kwargs, courier))
            self.adjust()
        except BaseException:
            if courier is not None:
                courier.destroy_in_main_thread()
            self._give_slot_back()
            raise
        return outcome

    def join(self):
        """Wait until every task given so far has finished (the greenlet parks; the workers
        stay)."""
        self.task_queue.join()

    def kill(self):
        """Stop every worker thread, once the queued tasks have run (size = 0)."""
        self.size = 0

    def __len__(self):
        pending = self.task_queue.unfinished_tasks
        return pending

    def __repr__(self):
        return '<%s at 0x%x tasks=%s size=%s maxsize=%s hub=%s>' % (
            type(self).__name__, id(self), len(self), self.size, self.maxsize,
            _hub_text(self.hub))

    # the GroupMappingMixin hooks

    def _apply_immediately(self):
        # called from another thread -- one of the workers, typically, applying recursively --
        # waiting here could never be answered: run it now
        return _get_hub_if_exists() is not self.hub

    def _apply_async_cb_spawn(self, callback, result):
        callback(result)

    def _apply_async_use_greenlet(self):
        return True


_pools = weakref.WeakSet()


class _ThreadEndSentinel:
    """Kept in a thread-local of the hub's thread: released when that thread ends, it stops
    the pool's workers (the pool is only weakly referenced)."""
    __slots__ = ('pools', )

    def __init__(self):
        self.pools = weakref.WeakSet()

    def __del__(self):
        for pool in list(self.pools):
            try:
                pool._hub_thread_ended()
            except Exception:   # the interpreter may be shutting down
                pass


_thread_end = _thread_local()


def _watch_thread_end(pool):
    sentinel = getattr(_thread_end, 'sentinel', None)
    if sentinel is None:
        sentinel = _thread_end.sentinel = _ThreadEndSentinel()
    sentinel.pools.add(pool)


def _after_fork_in_child():
    for pool in list(_pools):
        pool._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
