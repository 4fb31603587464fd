"""pyconc.gevent._imap -- the iterators behind Group/Pool/ThreadPool.imap and imap_unordered.

An iterator here is itself a Greenlet (gevent's design, so that it is lazy in the same way): once
the hub runs it, it reads the input and hands each item to the pool's spawn(), which blocks while
the pool is full, so the input is consumed only as fast as slots free up. Each task is rawlinked;
its link, run in the hub greenlet, puts the outcome on a result queue that the reader's
__next__ takes from.

The result queue is pyconc.queue.SimpleQueue (C): put() from the hub never blocks, get() from the
reading greenlet parks it in the hub like any pyconc wait. With maxsize, a Semaphore bounds the
results spawned but not yet read: the feeding greenlet takes a unit before each spawn, every
__next__ gives one back.

Ownership: everything here is touched only by greenlets of the thread that created the iterator
(the feeding greenlet, the reader, the hub's link callbacks); no lock is needed.
"""
from ..queue import SimpleQueue
from .greenlet import Greenlet
from .lock import Semaphore

__all__ = ['IMapUnordered', 'IMap']


class _Failure:
    """A queued outcome that raises instead of being returned: a task's exception, the input's
    exception, or StopIteration (the end)."""
    __slots__ = ('exc', 'raiser')

    def __init__(self, exc, raiser=None):
        self.exc = exc
        self.raiser = raiser

    def throw(self):
        if self.raiser is not None:
            self.raiser()    # re-raises with the task's own traceback
        raise self.exc


class _ResultQueue(SimpleQueue):
    """The results waiting to be read; len() is how many (gevent's UnboundQueue has len())."""
    __slots__ = ()

    def __len__(self):
        return self.qsize()


class IMapUnordered(Greenlet):
    """An iterator over func applied to every item of iterable, through spawn(); results come in
    the order the tasks finish. Created started (cls.spawn(...)) by the pools."""

    def __init__(self, func, iterable, spawn, maxsize=None, _zipped=False):
        Greenlet.__init__(self)
        self.spawn = spawn
        self.func = func
        self.iterable = iterable
        self._zipped = _zipped
        self.queue = _ResultQueue()
        # bounds the results spawned and not yet read (see the module docstring)
        self._window = Semaphore(maxsize) if maxsize else None
        self._running = 0               # spawned, outcome not queued yet
        self._max_index = -1            # index of the last item spawned
        self._input_done = False        # the input is exhausted (normally)
        self.finished = False           # the final marker is queued
        self._exhausted = False         # the reader has seen the end

    def __iter__(self):
        return self

    def __next__(self):
        if self._exhausted:
            raise StopIteration
        window = self._window
        if window is not None:
            window.release()   # one more result may be spawned ahead of the reader
        value = self._inext()
        if type(value) is _Failure:
            if type(value.exc) is StopIteration:
                self._exhausted = True
            value.throw()
        return value

    next = __next__

    def _inext(self):
        return self.queue.get()

    # -- the feeding greenlet

    def _run(self):
        try:
            func = self.func
            spawn = self.spawn
            window = self._window
            zipped = self._zipped
            link = self._on_result
            for index, item in enumerate(self.iterable):
                if window is not None:
                    window.acquire()
                task = spawn(func, *item) if zipped else spawn(func, item)
                self._running += 1
                task._imap_task_index = index
                task.rawlink(link)
                # counted once spawned: if spawn() raised, the failure takes this index
                self._max_index = index
            self._on_finish(None)
        except BaseException as exc:
            self._on_finish(exc)
            raise
        finally:
            # drop what the input and the tasks hold on to; the reader keeps only the queue
            self.spawn = self.func = self.iterable = None

    def _on_finish(self, exc):
        """The input is done (exc None) or raised exc: queue the end now, or let the last
        task's link do it."""
        if self.finished:
            return
        if exc is not None:
            self.finished = True
            self.queue.put(self._outcome_of_input_failure(exc))
            return
        self._input_done = True
        if not self._running:
            self.finished = True
            self.queue.put(self._outcome_of_end())

    # -- the tasks' links (in the hub greenlet)

    def _on_result(self, task):
        self._running -= 1
        last = self._input_done and not self._running and not self.finished
        if last:
            self.finished = True
        if task.successful():
            self.queue.put(self._outcome_of_success(task))
        else:
            self.queue.put(self._outcome_of_failure(task))
        if last:
            self.queue.put(self._outcome_of_end())

    # -- what goes on the queue (IMap adds the index)

    def _outcome_of_success(self, task):
        return task.value

    def _outcome_of_failure(self, task):
        return _Failure(task.exception, getattr(task, '_raise_exception', None))

    def _outcome_of_end(self):
        return _Failure(StopIteration())

    def _outcome_of_input_failure(self, exc):
        return _Failure(exc)


class IMap(IMapUnordered):
    """As IMapUnordered, but results come in the order of the input: a result that finishes
    early waits in a dict until the ones before it have been read."""

    def __init__(self, *args, **kwargs):
        self._results = {}   # index -> outcome, finished ahead of their turn
        self.index = 0       # the index the reader wants next
        super().__init__(*args, **kwargs)

    def _inext(self):
        want = self.index
        results = self._results
        if want in results:
            value = results.pop(want)
        else:
            get = self.queue.get
            while True:
                index, value = get()
                if index == want:
                    break
                results[index] = value
        self.index = want + 1
        return value

    def _outcome_of_success(self, task):
        return (task._imap_task_index, task.value)

    def _outcome_of_failure(self, task):
        return (task._imap_task_index, IMapUnordered._outcome_of_failure(self, task))

    def _outcome_of_end(self):
        return (self._max_index + 1, IMapUnordered._outcome_of_end(self))

    def _outcome_of_input_failure(self, exc):
        return (self._max_index + 1, IMapUnordered._outcome_of_input_failure(self, exc))
