/* mpqueue.c -- the process-shared queue (pyconc._core.MPQueue): the core of
 * pyconc.multiprocessing's Queue, JoinableQueue and SimpleQueue, and of the Pool's task and result
 * channels.
 *
 * One shared segment (shm.h): a header with the state below, then a byte ring of frames, each an
 * 8-byte length and a pickle (protocol 5). put() pickles outside the lock, then copies the frame
 * in under the queue's lock; get() copies a frame out under the lock and unpickles outside it.
 * There is no feeder thread: when put() returns the item is in shared memory, so a producer can
 * exit (and be joined) before anyone reads what it put.
 *
 * The header below lives in the segment's fixed part, which never moves; the ring is the
 * segment's extension (shm.h). The ring grows (doubling, remapped by every process at its next
 * operation, under the lock) when a frame does not fit, up to MAX_RING; so a waiter may keep
 * pointers to the header's futex words across a sleep, and nobody keeps a pointer into the ring
 * past the unlock. a single message larger than MAX_FRAME is refused with ValueError
 * before anything is written. So put() only blocks for maxsize, like the stdlib's queue.
 *
 * Crash safety. The lock is a robust mutex (the owner's thread id in a futex word; a waiter that
 * finds the owner's process gone takes it over). Frame bytes are written before anything
 * publishes them, and the publishing (head, used, count, unfinished, cap) goes through a small
 * journal: the new values are written to the journal, marked valid, applied, and the mark
 * cleared. Whoever takes the lock over from a dead owner re-applies a valid journal. So a process
 * killed in the middle of a put leaves the queue as it was before that put (the half-written
 * frame is simply not part of the ring), and one killed in the middle of a get leaves the item
 * in the queue.
 *
 * Waiting: consumers sleep on items_seq (bumped by every put), producers on space_seq (bumped by
 * every get), join() on done_seq, through wait.c's pc_shared_wait. Counters of sleepers let the
 * fast paths skip the wake syscall.
 */
#include "pyconc.h"
#include "shm.h"

#include <sched.h>
#include <string.h>
#include <unistd.h>

#define INITIAL_RING (256u * 1024u)
#define MAX_RING ((uint64_t)1 << 31)            /* 2 GiB of ring at most */
#define MAX_FRAME (((uint64_t)1 << 30) - 8)     /* 1 GiB per message */
#define LOCK_SLICE_NS (20 * 1000 * 1000)

typedef struct {
    uint64_t head, used, cap;
    int64_t count, unfinished;
    uint32_t valid;
} journal_t;

typedef struct {
    pc_shm_header h;
    uint32_t lock;            /* 0 free, else the owner's thread id */
    int32_t lock_pid;
    uint32_t lock_waiters[2];  /* sleepers, spinners (see pc_shared_wait) */
    uint32_t items_seq, getters[2];
    uint32_t space_seq, putters[2];
    uint32_t done_seq, joiners[2];
    int64_t maxsize;          /* <= 0: unbounded */
    uint64_t head, used, cap; /* ring: oldest frame's offset, bytes in use, capacity */
    int64_t count;            /* frames in the ring */
    int64_t unfinished;       /* JoinableQueue: puts not yet matched by task_done */
    journal_t j;
} q_t;

typedef struct {
    PyObject_HEAD
    pc_shm shm;
    PyObject *dumps, *loads;  /* _pickle.dumps / _pickle.loads */
    int closed;               /* close() was called in this process */
    pc_spin spin_lock;        /* spin budgets of this process's waits: the lock, */
    pc_spin spin_get;         /* a get on an empty queue, */
    pc_spin spin_put;         /* a put on a full one (join() does not spin) */
    int busy;                 /* operations of this process's threads under way (they may wait) */
    int release_later;        /* _release() was called while busy: unmap when busy drops to 0 */
    PyObject *weakreflist;
    PyObject *dict;
} MPQueueObject;

#define Q(self) ((q_t *)(self)->shm.base)
#define RING(self) ((self)->shm.ext)

/* -- the robust lock ------------------------------------------------------------------------ */

static void
apply_journal(q_t *q)
{
    if (__atomic_load_n(&q->j.valid, __ATOMIC_ACQUIRE)) {
        q->head = q->j.head;
        q->used = q->j.used;
        q->cap = q->j.cap;
        q->count = q->j.count;
        q->unfinished = q->j.unfinished;
        __atomic_store_n(&q->j.valid, 0, __ATOMIC_RELEASE);
    }
}

static void
commit(q_t *q, uint64_t head, uint64_t used, uint64_t cap, int64_t count, int64_t unfinished)
{
    q->j.head = head;
    q->j.used = used;
    q->j.cap = cap;
    q->j.count = count;
    q->j.unfinished = unfinished;
    __atomic_store_n(&q->j.valid, 1, __ATOMIC_RELEASE);
    apply_journal(q);
}

/* Takes the queue's lock (waiting as long as needed: it is only ever held briefly) and maps any
 * growth. 0, or -1 with an exception (a signal handler raised while waiting). */
static int
q_lock(MPQueueObject *self)
{
    q_t *q = Q(self);
    uint32_t me = pc_gettid();
    int unknown = 0;
    unsigned tries = 0;
    for (;;) {
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(&q->lock, &expected, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&q->lock_pid, pc_getpid(), __ATOMIC_RELAXED);
            break;
        }
        /* The lock is held (by another process: this process's threads hold it only with the
         * GIL) for a copy, not for a wait: retry a few times before pc_shared_wait, which gives
         * up the GIL (and often loses it for longer to another thread of this process). With
         * two CPUs or more, a few hundred nanoseconds of pause; on one CPU the holder cannot
         * run while we try, so yield the CPU to it instead. */
        if (++tries < 16) {
            if (pc_usable_cpus() >= 2) {
                for (int i = 0; i < 64; i++) {
                    pc_cpu_relax();
                }
            }
            else {
                sched_yield();
            }
            continue;
        }
        int r = pc_shared_wait(&q->lock, expected, q->lock_waiters, PC_FOREVER, LOCK_SLICE_NS,
                               &self->spin_lock);
        if (r < 0) {
            return -1;
        }
        /* still held by the same owner after a slice: is its process alive? */
        uint32_t cur = __atomic_load_n(&q->lock, __ATOMIC_ACQUIRE);
        if (cur != 0 && cur == expected) {
            int32_t pid = __atomic_load_n(&q->lock_pid, __ATOMIC_ACQUIRE);
            int dead = pid != 0 ? pc_process_dead(pid)
                                : (++unknown >= 2 && pc_process_dead((pid_t)cur));
            if (dead && __atomic_compare_exchange_n(&q->lock, &cur, me, 0, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_RELAXED)) {
                __atomic_store_n(&q->lock_pid, pc_getpid(), __ATOMIC_RELAXED);
                break;  /* taken over from a dead process */
            }
        }
    }
    apply_journal(q);   /* a dead owner's half-done commit, if any */
    if (pc_shm_sync(&self->shm) < 0) {
        q = Q(self);
        __atomic_store_n(&q->lock_pid, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&q->lock, 0, __ATOMIC_RELEASE);
        return -1;
    }
    return 0;
}

static void
q_unlock(MPQueueObject *self)
{
    q_t *q = Q(self);
    __atomic_store_n(&q->lock_pid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&q->lock, 0, __ATOMIC_SEQ_CST);
    pc_shared_wake_one(&q->lock, q->lock_waiters);
}

static void
bump_and_wake(uint32_t *seq, uint32_t *counts, int all)
{
    __atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
    if (all) {
        pc_shared_wake_all(seq, counts);
    }
    else {
        pc_shared_wake_one(seq, counts);
    }
}

/* Consumers: one wake in flight at a time. A put that finds sleeping getters wakes one only if
 * no wake is pending (getters[1]); the woken getter clears the flag as soon as it runs, and a
 * getter that takes an item and sees more left wakes the next sleeper. So a burst of puts
 * against sleeping consumers costs one wake syscall, not one per item, and while items and
 * sleepers remain a wake is always on its way. A getter killed before it clears the flag delays
 * the others by at most one wait slice (GET_SLICE_NS early in a wait, growing to SLICE_MAX_NS in
 * a long one), after which any returning getter clears it. A getter also clears it just before
 * it sleeps (see get_frame): a flag left up by a lost race must not outlast a sleeper's slice. */
#define GET_SLICE_NS (100 * 1000 * 1000)
#define SLICE_MAX_NS (1000 * 1000 * 1000)   /* a long wait's slices grow to this */

static void
wake_getter(q_t *q)
{
    uint32_t *g = q->getters;
    if (__atomic_load_n(&g[0], __ATOMIC_SEQ_CST) == 0) {
        return;
    }
    uint32_t idle = 0;
    if (__atomic_compare_exchange_n(&g[1], &idle, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        pc_shared_wake(&q->items_seq, 1);
    }
}

/* -- the ring ------------------------------------------------------------------------------- */

static void
ring_write(MPQueueObject *self, uint64_t off, const char *src, uint64_t n)
{
    if (n == 0) {
        return;   /* src may be NULL then (a frame of a header alone): memcpy must not see it */
    }
    uint64_t cap = Q(self)->cap;
    off %= cap;
    uint64_t first = n < cap - off ? n : cap - off;
    memcpy(RING(self) + off, src, first);
    if (n > first) {
        memcpy(RING(self), src + first, n - first);
    }
}

static void
ring_read(MPQueueObject *self, uint64_t off, char *dst, uint64_t n)
{
    if (n == 0) {
        return;
    }
    uint64_t cap = Q(self)->cap;
    off %= cap;
    uint64_t first = n < cap - off ? n : cap - off;
    memcpy(dst, RING(self) + off, first);
    if (n > first) {
        memcpy(dst + first, RING(self), n - first);
    }
}

/* Makes room for need more bytes (lock held). 0, or -1 with an exception. */
static int
ensure_room(MPQueueObject *self, uint64_t need)
{
    q_t *q = Q(self);
    if (q->cap - q->used >= need) {
        return 0;
    }
    uint64_t cap = q->cap, newcap = cap;
    while (newcap - q->used < need) {
        newcap *= 2;
    }
    if (newcap > MAX_RING) {
        PyErr_Format(PyExc_MemoryError, "pyconc queue: %llu bytes waiting to be read, no room "
                     "for %llu more", (unsigned long long)q->used, (unsigned long long)need);
        return -1;
    }
    if (pc_shm_grow(&self->shm, newcap) < 0) {
        return -1;
    }
    q = Q(self);
    /* A wrapped ring [head, cap) + [0, tail) becomes [head, cap) + [cap, cap + tail) in the
     * bigger ring: copy the wrapped part past the old end, then publish the new cap. */
    uint64_t head = q->head, used = q->used;
    if (head + used > cap) {
        uint64_t wrapped = head + used - cap;
        memcpy(RING(self) + cap, RING(self), wrapped);
    }
    commit(q, head, used, newcap, q->count, q->unfinished);
    return 0;
}

/* -- put / get ------------------------------------------------------------------------------ */

/* Parses (block, timeout) as the stdlib's SemLock.acquire(block, timeout) that its Queue.put
 * calls: the timeout is converted even when block is false; None waits forever, a negative one
 * counts as 0. rel: -1 forever, 0 no wait, else ns. */
static int
parse_block_timeout(int block, PyObject *timeout, pc_time_t *rel)
{
    if (pc_parse_seconds(timeout, rel) < 0) {
        return -1;
    }
    if (!block) {
        *rel = 0;
    }
    return 0;
}

/* The stdlib's Queue.get(block, timeout), step by step: `if block and timeout is None` waits
 * forever; otherwise `deadline = time.monotonic() + timeout` (with block), then
 * `self._rlock.acquire(block, timeout)` (block an int, timeout a float), then
 * `self._poll(deadline - time.monotonic())` (with block), whose conversion to milliseconds has
 * its own errors. rel as parse_block_timeout's. */
static int
parse_get_timeout(PyObject *block_obj, PyObject *timeout, pc_time_t *rel)
{
    int block = block_obj == NULL ? 1 : PyObject_IsTrue(block_obj);
    if (block < 0) {
        return -1;
    }
    if (block && timeout == Py_None) {
        *rel = -1;
        return 0;
    }
    double endtime = 0;
    if (block && pc_loop_timeout_begin(timeout, &endtime) < 0) {
        return -1;
    }
    int flag = 1;
    pc_time_t unused;
    if ((block_obj != NULL && pc_parse_int_flag(block_obj, &flag) < 0) ||
            pc_parse_seconds(timeout, &unused) < 0) {
        return -1;
    }
    if (!block) {
        *rel = 0;
        return 0;
    }
    PyObject *remaining = PyFloat_FromDouble(endtime - (double)pc_monotonic_ns() / 1e9);
    if (remaining == NULL) {
        return -1;
    }
    int r = pc_parse_poll_timeout(remaining, rel);
    Py_DECREF(remaining);
    return r;
}

/* Puts one frame made of two parts (head: nh bytes, may be 0; then data: n bytes), so that a
 * caller with a header need not concatenate. 1 done, 0 full (timeout), -1 error. */
static int
put_frame_parts(MPQueueObject *self, const char *head, uint64_t nh, const char *data, uint64_t n,
                pc_time_t rel)
{
    n += nh;
    if (n > MAX_FRAME) {
        PyErr_Format(PyExc_ValueError, "message of %llu bytes is too large for a pyconc queue "
                     "(the limit is %llu bytes)", (unsigned long long)n,
                     (unsigned long long)MAX_FRAME);
        return -1;
    }
    pc_time_t deadline = rel < 0 ? PC_FOREVER : pc_deadline_after(rel);
    for (;;) {
        if (q_lock(self) < 0) {
            return -1;
        }
        q_t *q = Q(self);
        if (q->maxsize <= 0 || q->count < q->maxsize) {
            if (ensure_room(self, n + 8) < 0) {
                q_unlock(self);
                return -1;
            }
            q = Q(self);
            uint64_t tail = q->head + q->used, len = n;
            ring_write(self, tail, (const char *)&len, 8);
            if (nh > 0) {
                ring_write(self, tail + 8, head, nh);
            }
            ring_write(self, tail + 8 + nh, data, n - nh);
            commit(q, q->head, q->used + n + 8, q->cap, q->count + 1, q->unfinished + 1);
            q_unlock(self);
            __atomic_fetch_add(&q->items_seq, 1, __ATOMIC_SEQ_CST);
            wake_getter(q);
            return 1;
        }
        uint32_t seen = __atomic_load_n(&q->space_seq, __ATOMIC_SEQ_CST);
        q_unlock(self);
        int r = rel == 0 ? 0 : pc_shared_wait(&q->space_seq, seen, q->putters, deadline,
                                              PC_FOREVER, &self->spin_put);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            /* one last look, so that a wake racing the deadline is not lost */
            if (q_lock(self) < 0) {
                return -1;
            }
            q = Q(self);
            int room = q->maxsize <= 0 || q->count < q->maxsize;
            q_unlock(self);
            if (!room) {
                return 0;
            }
            deadline = pc_monotonic_ns();  /* go round once more, without waiting */
            rel = 0;
        }
    }
}

static int
put_frame(MPQueueObject *self, const char *data, uint64_t n, pc_time_t rel)
{
    return put_frame_parts(self, NULL, 0, data, n, rel);
}

/* Gets one frame as a new bytes object; NULL with Empty... handled by the caller: *empty = 1. */
static PyObject *
get_frame(MPQueueObject *self, pc_time_t rel, int *empty, Py_buffer *claim)
{
    *empty = 0;
    pc_time_t deadline = rel < 0 ? PC_FOREVER : pc_deadline_after(rel);
    pc_time_t slice = GET_SLICE_NS;
    for (;;) {
        if (q_lock(self) < 0) {
            return NULL;
        }
        q_t *q = Q(self);
        if (q->count > 0) {
            uint64_t len;
            ring_read(self, q->head, (char *)&len, 8);
            PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
            if (b == NULL) {
                q_unlock(self);
                return NULL;
            }
            ring_read(self, q->head + 8, PyBytes_AS_STRING(b), len);
            if (claim != NULL) {
                /* recorded before the take is committed: if this process dies from here on,
                 * whoever watches the claim knows which message it had taken */
                size_t c = (size_t)claim->len < len ? (size_t)claim->len : (size_t)len;
                memcpy(claim->buf, PyBytes_AS_STRING(b), c);
                __atomic_thread_fence(__ATOMIC_RELEASE);
            }
            uint64_t used = q->used - len - 8;
            uint64_t head = used == 0 ? 0 : (q->head + len + 8) % q->cap;
            commit(q, head, used, q->cap, q->count - 1, q->unfinished);
            int more = q->count > 0;
            q_unlock(self);
            if (more) {
                wake_getter(q);   /* pass the wake on: items left, maybe sleepers */
            }
            if (q->maxsize > 0) {
                bump_and_wake(&q->space_seq, q->putters, 0);
            }
            return b;
        }
        if (rel == 0) {
            q_unlock(self);
            *empty = 1;
            return NULL;
        }
        uint32_t seen = __atomic_load_n(&q->items_seq, __ATOMIC_SEQ_CST);
        /* No wake is pending for a getter about to sleep. The flag can be left up by a put
         * that saw a getter still counted as asleep just as it woke, and set it after that
         * getter had cleared it: the wake went to nobody, and with the flag up no later put
         * would wake this sleeper until its slice ended (up to a second). Clearing it here
         * costs at most a second wake when several getters fall asleep at once. */
        __atomic_store_n(&q->getters[1], 0, __ATOMIC_SEQ_CST);
        q_unlock(self);
        int r = pc_shared_wait(&q->items_seq, seen, q->getters, deadline, slice,
                               &self->spin_get);
        slice = pc_slice_grow(slice, SLICE_MAX_NS);
        __atomic_store_n(&q->getters[1], 0, __ATOMIC_SEQ_CST);   /* awake: no wake pending */
        if (r < 0) {
            /* leaving with a signal's exception: a wake meant for us goes to the next getter */
            if (__atomic_load_n(&q->count, __ATOMIC_SEQ_CST) > 0) {
                wake_getter(q);
            }
            return NULL;
        }
        if (r == 0) {
            rel = 0;  /* deadline passed: one last look without waiting */
        }
    }
}

/* -- Python methods ------------------------------------------------------------------------- */

static PyObject *
mpq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    MPQueueObject *self = (MPQueueObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->shm.fd = -1;
    pc_spin_init(&self->spin_lock);
    pc_spin_init(&self->spin_get);
    pc_spin_init(&self->spin_put);
    if (pc_pickle_functions(&self->dumps, &self->loads) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* __init__(maxsize=0) creates the shared queue; _attach(name) (a classmethod) joins one. */
static int
mpq_init(MPQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    PyObject *mobj = NULL;
    int maxsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Queue", kwlist, &mobj)) {
        return -1;
    }
    /* a C int, as the stdlib's Queue's BoundedSemaphore(maxsize) takes it */
    if (mobj != NULL && pc_as_c_int(mobj, &maxsize) < 0) {
        return -1;
    }
    if (self->shm.base != NULL) {
        return 0;   /* attached already */
    }
    if (pc_shm_create_growable(&self->shm, sizeof(q_t), INITIAL_RING, PC_SHM_QUEUE) < 0) {
        return -1;
    }
    q_t *q = Q(self);
    q->maxsize = maxsize;
    q->cap = INITIAL_RING;
    return 0;
}

static PyObject *
mpq_attach(PyObject *cls, PyObject *name)
{
    long pid;
    int fd;
    uint64_t token;
    if (pc_shm_parse_name(name, &pid, &fd, &token) < 0) {
        return NULL;
    }
    MPQueueObject *self = (MPQueueObject *)mpq_new((PyTypeObject *)cls, NULL, NULL);
    if (self == NULL) {
        return NULL;
    }
    if (pc_shm_attach(&self->shm, pid, fd, token, PC_SHM_QUEUE) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
mpq_traverse(MPQueueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dict);
    return 0;
}

static int
mpq_clear(MPQueueObject *self)
{
    Py_CLEAR(self->dict);
    return 0;
}

static void
mpq_dealloc(MPQueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    mpq_clear(self);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->loads);
    pc_shm_close(&self->shm);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
check_open(MPQueueObject *self)
{
    if (self->closed) {
        PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)self);
        return -1;
    }
    if (self->shm.base == NULL || self->release_later) {
        PyErr_SetString(PyExc_ValueError, "the queue's shared memory is released");
        return -1;
    }
    return 0;
}

/* An operation that may wait (give up the GIL) brackets itself with enter/leave, so that a
 * _release() from another thread meanwhile unmaps only when the last one has left. */
static int
enter(MPQueueObject *self)
{
    if (check_open(self) < 0) {
        return -1;
    }
    self->busy++;
    return 0;
}

static void
leave(MPQueueObject *self)
{
    if (--self->busy == 0 && self->release_later) {
        self->release_later = 0;
        pc_shm_close(&self->shm);
    }
}

/* -- for the Pool's C loops (pool.c) ------------------------------------------------------- */

int
pc_mpq_check(pc_state *st, PyObject *q)
{
    if (!PyObject_TypeCheck(q, st->MPQueue_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a pyconc multiprocessing queue, not %s",
                     Py_TYPE(q)->tp_name);
        return -1;
    }
    return 0;
}

PyObject *
pc_mpq_take(PyObject *q, pc_time_t rel, char *claim, Py_ssize_t claim_len, int *empty)
{
    MPQueueObject *self = (MPQueueObject *)q;
    *empty = 0;
    if (enter(self) < 0) {
        return NULL;
    }
    Py_buffer cb;
    cb.buf = claim;
    cb.len = claim_len;
    PyObject *b = get_frame(self, rel, empty, claim != NULL ? &cb : NULL);
    leave(self);
    return b;
}

int
pc_mpq_give(PyObject *q, const char *head, size_t nh, const char *data, size_t n)
{
    MPQueueObject *self = (MPQueueObject *)q;
    if (enter(self) < 0) {
        return -1;
    }
    int r = put_frame_parts(self, head, nh, data, n, -1);
    leave(self);
    return r < 0 ? -1 : 0;
}

static PyObject *
do_put(MPQueueObject *self, PyObject *data, int block, PyObject *timeout)
{
    pc_time_t rel;
    if (parse_block_timeout(block, timeout, &rel) < 0 || enter(self) < 0) {
        return NULL;
    }
    int r = put_frame(self, PyBytes_AS_STRING(data), (uint64_t)PyBytes_GET_SIZE(data), rel);
    leave(self);
    if (r < 0) {
        return NULL;
    }
    if (r == 0) {
        pc_state *st = pc_state_of_type(Py_TYPE(self));
        if (st != NULL && pc_queue_exceptions(st) == 0) {
            PyErr_SetNone(st->Full);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
mpq_put(MPQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"obj", "block", "timeout", NULL};
    PyObject *obj, *block_obj = NULL, *timeout = Py_None;
    int block = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:put", kwlist, &obj, &block_obj,
                                     &timeout)) {
        return NULL;
    }
    /* the stdlib's put is `self._sem.acquire(block, timeout)`: block an int */
    if (block_obj != NULL && pc_parse_int_flag(block_obj, &block) < 0) {
        return NULL;
    }
    PyObject *data = pc_pickle_dumps(self->dumps, obj);
    if (data == NULL) {
        return NULL;   /* nothing was written */
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "pickle.dumps did not return bytes");
        return NULL;
    }
    PyObject *r = do_put(self, data, block, timeout);
    Py_DECREF(data);
    return r;
}

/* put_frames(frames): puts a list of already pickled messages, in order, as one step: one
 * lock, one commit, one wake (the woken getter passes it on while items are left). Pool.map
 * feeds its chunks with it: put one at a time, the first put woke a worker, which the scheduler
 * often ran at once on the feeding thread's CPU (wake-affine), and the feeder, with the other
 * chunks not yet queued, waited up to a millisecond for that CPU while the other worker had
 * nothing to take (seen in a scheduler trace of Pool(2).map). All or nothing when the queue
 * has room for them all (a frame that is not bytes or is too large, or a ring that cannot grow,
 * puts none); otherwise each frame is put in turn, waiting for room as put_bytes does. */
static PyObject *
mpq_put_frames(MPQueueObject *self, PyObject *frames)
{
    PyObject *seq = PySequence_Fast(frames, "put_frames() expects a list of bytes");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "put_frames() expects bytes, not %s",
                         Py_TYPE(items[i])->tp_name);
            goto fail;
        }
        uint64_t len = (uint64_t)PyBytes_GET_SIZE(items[i]);
        if (len > MAX_FRAME) {
            PyErr_Format(PyExc_ValueError, "message of %llu bytes is too large for a pyconc "
                         "queue (the limit is %llu bytes)", (unsigned long long)len,
                         (unsigned long long)MAX_FRAME);
            goto fail;
        }
        total += len + 8;
    }
    if (n == 0) {
        Py_DECREF(seq);
        Py_RETURN_NONE;
    }
    if (enter(self) < 0) {
        goto fail;
    }
    if (q_lock(self) < 0) {
        leave(self);
        goto fail;
    }
    if (Q(self)->maxsize > 0 && Q(self)->count > Q(self)->maxsize - n) {
        /* a bounded queue without room for them all: one at a time, waiting for room */
        q_unlock(self);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (put_frame(self, PyBytes_AS_STRING(items[i]),
                          (uint64_t)PyBytes_GET_SIZE(items[i]), -1) < 0) {
                leave(self);
                goto fail;
            }
        }
        leave(self);
        Py_DECREF(seq);
        Py_RETURN_NONE;
    }
    if (ensure_room(self, total) < 0) {
        q_unlock(self);
        leave(self);
        goto fail;
    }
    q_t *q = Q(self);
    uint64_t tail = q->head + q->used;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t len = (uint64_t)PyBytes_GET_SIZE(items[i]);
        ring_write(self, tail, (const char *)&len, 8);
        ring_write(self, tail + 8, PyBytes_AS_STRING(items[i]), len);
        tail += len + 8;
    }
    commit(q, q->head, q->used + total, q->cap, q->count + n, q->unfinished + n);
    q_unlock(self);
    __atomic_fetch_add(&q->items_seq, 1, __ATOMIC_SEQ_CST);
    wake_getter(q);
    leave(self);
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyObject *
mpq_put_bytes(MPQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "block", "timeout", NULL};
    PyObject *data, *timeout = Py_None;
    int block = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "S|pO:put_bytes", kwlist, &data, &block,
                                     &timeout)) {
        return NULL;
    }
    return do_put(self, data, block, timeout);
}

static PyObject *
do_get(MPQueueObject *self, pc_time_t rel, int raw, Py_buffer *claim)
{
    if (enter(self) < 0) {
        return NULL;
    }
    int empty;
    PyObject *b = get_frame(self, rel, &empty, claim);
    leave(self);
    if (b == NULL) {
        if (empty) {
            pc_state *st = pc_state_of_type(Py_TYPE(self));
            if (st != NULL && pc_queue_exceptions(st) == 0) {
                PyErr_SetNone(st->Empty);
            }
        }
        return NULL;
    }
    if (raw) {
        return b;
    }
    PyObject *obj = pc_pickle_loads(self->loads, b);
    Py_DECREF(b);
    return obj;
}

static PyObject *
mpq_get(MPQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    PyObject *block = NULL, *timeout = Py_None;
    pc_time_t rel = -1;
    if (PyTuple_GET_SIZE(args) > 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) > 0)) {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:get", kwlist, &block, &timeout)) {
            return NULL;
        }
        if (check_open(self) < 0 || parse_get_timeout(block, timeout, &rel) < 0) {
            return NULL;
        }
    }
    return do_get(self, rel, 0, NULL);
}

static PyObject *
mpq_get_bytes(MPQueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"block", "timeout", "claim", NULL};
    PyObject *timeout = Py_None, *claim_obj = Py_None;
    int block = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pOO:get_bytes", kwlist, &block, &timeout,
                                     &claim_obj)) {
        return NULL;
    }
    pc_time_t rel;
    if (parse_block_timeout(block, timeout, &rel) < 0) {
        return NULL;
    }
    if (claim_obj == Py_None) {
        return do_get(self, rel, 1, NULL);
    }
    Py_buffer claim;
    if (PyObject_GetBuffer(claim_obj, &claim, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    PyObject *r = do_get(self, rel, 1, &claim);
    PyBuffer_Release(&claim);
    return r;
}

static PyObject *
mpq_qsize(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(__atomic_load_n(&Q(self)->count, __ATOMIC_ACQUIRE));
}

static PyObject *
mpq_empty(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(__atomic_load_n(&Q(self)->count, __ATOMIC_ACQUIRE) == 0);
}

static PyObject *
mpq_full(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    q_t *q = Q(self);
    return PyBool_FromLong(q->maxsize > 0 &&
                           __atomic_load_n(&q->count, __ATOMIC_ACQUIRE) >= q->maxsize);
}

static PyObject *
mpq_task_done(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (enter(self) < 0) {
        return NULL;
    }
    if (q_lock(self) < 0) {
        leave(self);
        return NULL;
    }
    q_t *q = Q(self);
    if (q->unfinished <= 0) {
        q_unlock(self);
        leave(self);
        PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
        return NULL;
    }
    commit(q, q->head, q->used, q->cap, q->count, q->unfinished - 1);
    int done = q->unfinished == 0;
    q_unlock(self);
    if (done) {
        bump_and_wake(&q->done_seq, q->joiners, 1);
    }
    leave(self);
    Py_RETURN_NONE;
}

static PyObject *
mpq_join(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (enter(self) < 0) {
        return NULL;
    }
    q_t *q = Q(self);
    int r = 1;
    pc_time_t slice = GET_SLICE_NS;
    for (;;) {
        uint32_t seen = __atomic_load_n(&q->done_seq, __ATOMIC_SEQ_CST);
        int64_t unfinished = __atomic_load_n(&q->unfinished, __ATOMIC_SEQ_CST);
        if (unfinished <= 0) {
            break;
        }
        r = pc_shared_wait(&q->done_seq, seen, q->joiners, PC_FOREVER, slice, NULL);
        slice = pc_slice_grow(slice, SLICE_MAX_NS);
        if (r < 0) {
            break;
        }
    }
    leave(self);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
mpq_name(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->shm.base == NULL) {
        PyErr_SetString(PyExc_ValueError, "the queue's shared memory is released");
        return NULL;
    }
    return pc_shm_name(&self->shm);
}

static PyObject *
mpq_close(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyObject *
mpq_get_closed(MPQueueObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
mpq_release(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy > 0) {
        self->release_later = 1;   /* the last operation to leave unmaps (leave()) */
    }
    else {
        pc_shm_close(&self->shm);
    }
    Py_RETURN_NONE;
}

static PyObject *
mpq_get_maxsize(MPQueueObject *self, void *Py_UNUSED(c))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(Q(self)->maxsize);
}

static PyObject *
mpq_get_token(MPQueueObject *self, void *Py_UNUSED(c))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(pc_shm_hdr(&self->shm)->token);
}

static PyObject *
mpq_get_stats(MPQueueObject *self, void *Py_UNUSED(c))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    q_t *q = Q(self);
    return Py_BuildValue("{sKsKsKsLsLsIsI}", "capacity", (unsigned long long)q->cap,
                         "used", (unsigned long long)q->used,
                         "head", (unsigned long long)q->head,
                         "count", (long long)q->count, "unfinished", (long long)q->unfinished,
                         "sleeping_getters", __atomic_load_n(&q->getters[0], __ATOMIC_SEQ_CST),
                         "wake_pending", __atomic_load_n(&q->getters[1], __ATOMIC_SEQ_CST));
}

/* For the tests: raises the getters' wake-pending flag, as the race that get_frame's comment
 * describes leaves it. */
static PyObject *
mpq_test_raise_wake_flag(MPQueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0) {
        return NULL;
    }
    __atomic_store_n(&Q(self)->getters[1], 1, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyMethodDef mpq_methods[] = {
    {"put", (PyCFunction)(void (*)(void))mpq_put, METH_VARARGS | METH_KEYWORDS,
     "put(obj, block=True, timeout=None)"},
    {"get", (PyCFunction)(void (*)(void))mpq_get, METH_VARARGS | METH_KEYWORDS,
     "get(block=True, timeout=None)"},
    {"put_bytes", (PyCFunction)(void (*)(void))mpq_put_bytes, METH_VARARGS | METH_KEYWORDS,
     "put_bytes(data, block=True, timeout=None): put an already pickled message"},
    {"put_frames", (PyCFunction)mpq_put_frames, METH_O,
     "put_frames(frames): put a list of already pickled messages at once, with one wake-up"},
    {"get_bytes", (PyCFunction)(void (*)(void))mpq_get_bytes, METH_VARARGS | METH_KEYWORDS,
     "get_bytes(block=True, timeout=None, claim=None): the next message, still pickled; its "
     "first bytes are copied into the writable buffer claim before the take is committed"},
    {"qsize", (PyCFunction)mpq_qsize, METH_NOARGS, NULL},
    {"empty", (PyCFunction)mpq_empty, METH_NOARGS, NULL},
    {"full", (PyCFunction)mpq_full, METH_NOARGS, NULL},
    {"task_done", (PyCFunction)mpq_task_done, METH_NOARGS, NULL},
    {"join", (PyCFunction)mpq_join, METH_NOARGS, NULL},
    {"_name", (PyCFunction)mpq_name, METH_NOARGS, "(pid, fd, token) for pickling"},
    {"_release", (PyCFunction)mpq_release, METH_NOARGS, "unmap this process's view"},
    {"_test_raise_wake_flag", (PyCFunction)mpq_test_raise_wake_flag, METH_NOARGS,
     "for the tests: leave the wake-pending flag up, as a lost race does"},
    {"close", (PyCFunction)mpq_close, METH_NOARGS, "no more put/get from this process"},
    {"_attach", (PyCFunction)mpq_attach, METH_O | METH_CLASS, "attach by _name()"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef mpq_getset[] = {
    {"maxsize", (getter)mpq_get_maxsize, NULL, NULL, NULL},
    {"_token", (getter)mpq_get_token, NULL, NULL, NULL},
    {"_stats", (getter)mpq_get_stats, NULL, NULL, NULL},
    {"_closed", (getter)mpq_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef mpq_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(MPQueueObject, weakreflist), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(MPQueueObject, dict), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot mpq_slots[] = {
    {Py_tp_dealloc, mpq_dealloc},
    {Py_tp_traverse, mpq_traverse},
    {Py_tp_clear, mpq_clear},
    {Py_tp_new, mpq_new},
    {Py_tp_init, mpq_init},
    {Py_tp_methods, mpq_methods},
    {Py_tp_getset, mpq_getset},
    {Py_tp_members, mpq_members},
    {Py_tp_doc, "MPQueue(maxsize=0): a queue of pickled objects in shared memory"},
    {0, NULL},
};

static PyType_Spec mpq_spec = {
    .name = "pyconc._core.MPQueue",
    .basicsize = sizeof(MPQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = mpq_slots,
};

int
pc_mpqueue_init_types(PyObject *module, pc_state *st)
{
    return pc_add_type(module, &mpq_spec, NULL, &st->MPQueue_Type);
}
