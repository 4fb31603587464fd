/* lock.c -- Lock and RLock.
 *
 * Lock:  locked (0/1), owner (ident of the last acquirer, consulted only after a fork), gen
 *        (pc_fork_generation at the last acquire), waiters, pending (a wake is in flight).
 * RLock: owner (ident, 0 when free), count (recursion depth, 0 when free), waiters, pending.
 *
 * All fields are protected by the GIL. The uncontended acquire and release touch only the object
 * (no allocation, no OS lock, no syscall); blocking goes through pc_wait_acquire() (wait.c).
 * Release never hands the lock over: it wakes the head waiter, which retakes the lock if it is
 * still free when it runs (a thread that releases and re-acquires in a loop is not forced into a
 * context switch per iteration, which is what the stdlib's locks do too).
 *
 * Fork: a lock held by a thread that does not exist in the child is released there, and the
 * waiters of such threads are dropped (fork_check()).
 */
#include "pyconc.h"

#include <pythread.h>

typedef struct {
    PyObject_HEAD
    char locked;              /* 1 while held */
    int pending;              /* 1 while a woken waiter has not yet run (see pc_wait_acquire) */
    unsigned long owner;      /* ident of the thread that acquired it last; used after fork */
    uint64_t gen;             /* pc_fork_generation at the last acquire */
    pc_waitlist waiters;      /* threads and coroutines blocked in acquire() */
    PyObject *weakreflist;
} LockObject;

typedef struct {
    PyObject_HEAD
    int pending;              /* as in LockObject */
    unsigned long owner;      /* ident of the holder, 0 when free */
    unsigned long count;      /* recursion depth, 0 when free */
    pc_waitlist waiters;
    PyObject *weakreflist;
} RLockObject;

/* -- Lock ----------------------------------------------------------------------------------- */

static void
lock_fork_check(LockObject *self)
{
    if (self->waiters.gen == pc_fork_generation) {
        return;
    }
    pc_waitlist_init(&self->waiters);
    self->pending = 0;
    if (self->locked && self->gen != pc_fork_generation &&
            self->owner != pc_thread_ident()) {
        self->locked = 0;  /* held by a thread that did not survive the fork */
    }
}

static inline void
lock_take(LockObject *self)
{
    self->locked = 1;
    self->owner = pc_thread_ident();
    self->gen = pc_fork_generation;
}

static int
lock_try_take(void *obj)
{
    LockObject *self = (LockObject *)obj;
    if (self->locked) {
        return 0;
    }
    lock_take(self);
    return 1;
}

static int
lock_acquire_timed(LockObject *self, pc_time_t rel_ns)
{
    if (!self->locked) {
        lock_take(self);
        return 1;
    }
    lock_fork_check(self);
    return pc_wait_acquire(&self->waiters, &self->pending, lock_try_take, self, rel_ns);
}

/* last: the caller returns to Python next (the release method), so on one CPU the wake may let
 * go of the GIL (pc_waiter_wake_last); 0 for C callers that go on (Condition.wait, Barrier). */
static inline void
lock_release_unchecked(LockObject *self, int last)
{
    self->locked = 0;
    if (self->waiters.ndeferred > 0) {
        pc_waitlist_flush_deferred(&self->waiters);   /* notified waiters: the lock is free */
    }
    if (self->waiters.head != NULL) {
        lock_fork_check(self);
        if (last) {
            pc_wait_release_one_last(&self->waiters, &self->pending);
        }
        else {
            pc_wait_release_one(&self->waiters, &self->pending);
        }
    }
}

static void
lock_dealloc(LockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if ((type->tp_init == NULL || type->tp_init == PyBaseObject_Type.tp_init) &&
            (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments (%zd given)", type->tp_name,
                     PyTuple_GET_SIZE(args) + (kwds ? PyDict_GET_SIZE(kwds) : 0));
        return NULL;
    }
    LockObject *self = (LockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->locked = 0;
    self->pending = 0;
    self->owner = 0;
    self->gen = pc_fork_generation;
    pc_waitlist_init(&self->waiters);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static const char *const acquire_names[] = {"blocking", "timeout"};

/* Shared by Lock and RLock: parses (blocking=True, timeout=-1) into rel_ns. 0 or -1. */
static int
parse_acquire(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, pc_time_t *rel_ns)
{
    PyObject *argv[2];
    if (pc_parse_args("acquire", args, nargs, kwnames, acquire_names, 2, argv) < 0) {
        return -1;
    }
    int blocking = 1;
    if (argv[0] != NULL && pc_parse_blocking(argv[0], &blocking) < 0) {
        return -1;
    }
    if (pc_parse_acquire_timeout(blocking, argv[1], rel_ns) < 0) {
        return -1;
    }
    if (blocking && *rel_ns == 0 && pc_zero_timeout_turns()) {
        /* gevent's 0-second timer (wait.h): acquire(timeout=0) in a greenlet yields one turn,
         * as gevent's lock (threading.Lock after monkey patching) does; blocking=False not */
        *rel_ns = PC_ZERO_TURN_NS;
    }
    return 0;
}

static PyObject *
lock_acquire(LockObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && !self->locked) {  /* the fast path */
        lock_take(self);
        Py_RETURN_TRUE;
    }
    pc_time_t rel_ns;
    if (parse_acquire(args, nargs, kwnames, &rel_ns) < 0) {
        return NULL;
    }
    int r = lock_acquire_timed(self, rel_ns);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
lock_enter(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (lock_acquire_timed(self, -1) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
lock_release_noargs(LockObject *self)
{
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    lock_release_unchecked(self, 1);
    Py_RETURN_NONE;
}

static PyObject *
lock_release(LockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PC_NO_ARGS(self, nargs, "release");
    return lock_release_noargs(self);
}

static PyObject *
lock_exit(LockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return lock_release_noargs(self);
}

static PyObject *
lock_locked(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->locked) {
        lock_fork_check(self);  /* a holder lost in a fork does not hold it */
    }
    return PyBool_FromLong(self->locked);
}

static PyObject *
lock_is_owned(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    /* A Lock has no owner: like the stdlib Condition's fallback, "owned" means "locked". */
    return PyBool_FromLong(self->locked);
}

static PyObject *
lock_release_save(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    return lock_release_noargs(self);
}

static PyObject *
lock_acquire_restore(LockObject *self, PyObject *state)
{
    return lock_enter(self, NULL);
}

static PyObject *
lock_at_fork_reinit(LockObject *self, PyObject *Py_UNUSED(ignored))
{
    self->locked = 0;
    self->pending = 0;
    pc_waitlist_init(&self->waiters);
    Py_RETURN_NONE;
}

static PyObject *
lock_repr(LockObject *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", self->locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}

PC_NO_PICKLE(lock, "_thread.lock")

/* threading.Lock refuses subclasses (3.11-3.12: it is a function; 3.13+: the type lacks
 * Py_TPFLAGS_BASETYPE; CPython's test_threading checks it from 3.13). pyconc's own faces subclass
 * this type (pyconc.gevent.thread.LockType), so the flag stays and the refusal is here: a class
 * defined outside pyconc's package is refused with CPython's message. */
static PyObject *
lock_init_subclass(PyObject *cls, PyObject *args, PyObject *kwargs)
{
    PyObject *mod = PyObject_GetAttrString(cls, "__module__");
    if (mod == NULL) {
        return NULL;
    }
    const char *name = PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : "";
    if (name == NULL) {
        Py_DECREF(mod);
        return NULL;
    }
    int ours = strcmp(name, "pyconc") == 0 || strncmp(name, "pyconc.", 7) == 0;
    Py_DECREF(mod);
    if (!ours) {
        return PyErr_Format(PyExc_TypeError, "type '%s' is not an acceptable base type",
                            "pyconc.Lock");
    }
    PyObject *base = PyObject_GetAttrString((PyObject *)&PyBaseObject_Type, "__init_subclass__");
    if (base == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_Call(base, args, kwargs);
    Py_DECREF(base);
    return r;
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire(blocking=True, timeout=-1) -> bool\n\nLock the lock; see threading.Lock.")},
    {"release", (PyCFunction)(void (*)(void))lock_release, METH_FASTCALL,
     PyDoc_STR("Release the lock. RuntimeError if it is not locked.")},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, PyDoc_STR("Whether the lock is held.")},
    /* the undocumented old names _thread's lock still has (its messages say acquire() too) */
    {"acquire_lock", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"release_lock", (PyCFunction)(void (*)(void))lock_release, METH_FASTCALL, NULL},
    {"locked_lock", (PyCFunction)lock_locked, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, NULL},
    {"_is_owned", (PyCFunction)lock_is_owned, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)lock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)lock_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)lock_at_fork_reinit, METH_NOARGS, NULL},
    {"__init_subclass__", (PyCFunction)(void (*)(void))lock_init_subclass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, NULL},
    PC_NO_PICKLE_METHODS(lock),
    {NULL, NULL, 0, NULL},
};

static PyMemberDef lock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(LockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot lock_slots[] = {
    {Py_tp_dealloc, lock_dealloc},
    {Py_tp_new, lock_new},
    {Py_tp_repr, lock_repr},
    {Py_tp_methods, lock_methods},
    {Py_tp_members, lock_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Lock()\n\nA primitive lock, a drop-in for threading.Lock, that also works for "
        "coroutines.")},
    {0, NULL},
};

static PyType_Spec lock_spec = {
    .name = "pyconc.Lock",
    .basicsize = sizeof(LockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = lock_slots,
};

/* -- RLock ---------------------------------------------------------------------------------- */

static void
rlock_fork_check(RLockObject *self)
{
    if (self->waiters.gen == pc_fork_generation) {
        return;
    }
    pc_waitlist_init(&self->waiters);
    self->pending = 0;
    if (self->count > 0 && self->owner != pc_thread_ident()) {
        self->count = 0;  /* its holder did not survive the fork */
        self->owner = 0;
    }
}

static int
rlock_try_take(void *obj)
{
    RLockObject *self = (RLockObject *)obj;
    if (self->count > 0) {
        return 0;
    }
    self->owner = pc_thread_ident();
    self->count = 1;
    return 1;
}

/* Acquires once more (recursively) or for the first time. 1, 0 or -1. */
static int
rlock_acquire_timed(RLockObject *self, pc_time_t rel_ns)
{
    unsigned long me = pc_thread_ident();
    if (self->count > 0 && self->owner == me) {
        if (self->count == ULONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
            return -1;
        }
        self->count++;
        return 1;
    }
    if (self->count == 0) {
        self->owner = me;
        self->count = 1;
        return 1;
    }
    rlock_fork_check(self);
    return pc_wait_acquire(&self->waiters, &self->pending, rlock_try_take, self, rel_ns);
}

/* last: as for lock_release_unchecked */
static void
rlock_release_all(RLockObject *self, int last)
{
    self->count = 0;
    self->owner = 0;
    if (self->waiters.ndeferred > 0) {
        pc_waitlist_flush_deferred(&self->waiters);   /* notified waiters: the lock is free */
    }
    if (self->waiters.head != NULL) {
        rlock_fork_check(self);
        if (last) {
            pc_wait_release_one_last(&self->waiters, &self->pending);
        }
        else {
            pc_wait_release_one(&self->waiters, &self->pending);
        }
    }
}

static PyObject *
rlock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    RLockObject *self = (RLockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->pending = 0;
    self->owner = 0;
    self->count = 0;
    pc_waitlist_init(&self->waiters);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static PyObject *
rlock_acquire(RLockObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    pc_time_t rel_ns = -1;
    if ((nargs != 0 || kwnames != NULL) && parse_acquire(args, nargs, kwnames, &rel_ns) < 0) {
        return NULL;
    }
    int r = rlock_acquire_timed(self, rel_ns);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
rlock_enter(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (rlock_acquire_timed(self, -1) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
rlock_release_noargs(RLockObject *self)
{
    if (self->count == 0 || self->owner != pc_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    if (--self->count == 0) {
        rlock_release_all(self, 1);
    }
    Py_RETURN_NONE;
}

static PyObject *
rlock_release(RLockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PC_NO_ARGS(self, nargs, "release");
    return rlock_release_noargs(self);
}

static PyObject *
rlock_exit(RLockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return rlock_release_noargs(self);
}

static PyObject *
rlock_locked(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->count > 0) {
        rlock_fork_check(self);
    }
    return PyBool_FromLong(self->count > 0);
}

static PyObject *
rlock_is_owned_meth(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->count > 0 && self->owner == pc_thread_ident());
}

static PyObject *
rlock_recursion_count(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long n = self->owner == pc_thread_ident() ? self->count : 0;
    return PyLong_FromUnsignedLong(n);
}

static PyObject *
rlock_release_save(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    unsigned long count = self->count, owner = self->owner;
    rlock_release_all(self, 0);
    return Py_BuildValue("(kk)", count, owner);
}

static int
rlock_restore(RLockObject *self, unsigned long count, unsigned long owner)
{
    /* Blocks until the lock is free again; interruptible, unlike the stdlib's. */
    int r;
    do {
        r = pc_wait_acquire(&self->waiters, &self->pending, rlock_try_take, self, -1);
    } while (r == 0);
    if (r < 0) {
        return -1;
    }
    self->owner = owner;
    self->count = count;
    return 0;
}

static PyObject *
rlock_acquire_restore(RLockObject *self, PyObject *state)
{
    unsigned long count, owner;
    if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner)) {
        return NULL;
    }
    rlock_fork_check(self);
    if (rlock_restore(self, count, owner) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
rlock_at_fork_reinit(RLockObject *self, PyObject *Py_UNUSED(ignored))
{
    self->count = 0;
    self->owner = 0;
    self->pending = 0;
    pc_waitlist_init(&self->waiters);
    Py_RETURN_NONE;
}

static PyObject *
rlock_repr(RLockObject *self)
{
    return PyUnicode_FromFormat("<%s %s object owner=%lu count=%lu at %p>",
                                self->count ? "locked" : "unlocked", Py_TYPE(self)->tp_name,
                                self->owner, self->count, self);
}

PC_NO_PICKLE(rlock, "_thread.RLock")

static PyMethodDef rlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))rlock_acquire, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire(blocking=True, timeout=-1) -> bool\n\nAcquire the lock, recursively "
               "if this thread holds it already.")},
    {"release", (PyCFunction)(void (*)(void))rlock_release, METH_FASTCALL,
     PyDoc_STR("Release once. RuntimeError unless this thread holds the lock.")},
    {"locked", (PyCFunction)rlock_locked, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)rlock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))rlock_exit, METH_FASTCALL, NULL},
    {"_is_owned", (PyCFunction)rlock_is_owned_meth, METH_NOARGS, NULL},
    {"_recursion_count", (PyCFunction)rlock_recursion_count, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)rlock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)rlock_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)rlock_at_fork_reinit, METH_NOARGS, NULL},
    PC_NO_PICKLE_METHODS(rlock),
    {NULL, NULL, 0, NULL},
};

static PyMemberDef rlock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(RLockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot rlock_slots[] = {
    {Py_tp_dealloc, lock_dealloc},  /* same layout needs: weakrefs, then free */
    {Py_tp_new, rlock_new},
    {Py_tp_repr, rlock_repr},
    {Py_tp_methods, rlock_methods},
    {Py_tp_members, rlock_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "RLock()\n\nA reentrant lock, a drop-in for threading.RLock.")},
    {0, NULL},
};

static PyType_Spec rlock_spec = {
    .name = "pyconc.RLock",
    .basicsize = sizeof(RLockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = rlock_slots,
};

/* -- the C interface for Condition and Barrier ---------------------------------------------- */

int
pc_lock_acquire(PyObject *lock, pc_time_t rel_ns)
{
    return lock_acquire_timed((LockObject *)lock, rel_ns);
}

pc_waitlist *
pc_lock_waitlist(PyObject *lock)
{
    return &((LockObject *)lock)->waiters;
}

pc_waitlist *
pc_rlock_waitlist(PyObject *rlock)
{
    return &((RLockObject *)rlock)->waiters;
}

int
pc_lock_release(PyObject *lock)
{
    LockObject *self = (LockObject *)lock;
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return -1;
    }
    lock_release_unchecked(self, 0);
    return 0;
}

int
pc_lock_is_locked(PyObject *lock)
{
    return ((LockObject *)lock)->locked;
}

int
pc_rlock_is_owned(PyObject *rlock)
{
    RLockObject *self = (RLockObject *)rlock;
    return self->count > 0 && self->owner == pc_thread_ident();
}

int
pc_rlock_release_save(PyObject *rlock, unsigned long *count, unsigned long *owner)
{
    RLockObject *self = (RLockObject *)rlock;
    if (self->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return -1;
    }
    *count = self->count;
    *owner = self->owner;
    rlock_release_all(self, 0);
    return 0;
}

int
pc_rlock_acquire_restore(PyObject *rlock, unsigned long count, unsigned long owner)
{
    return rlock_restore((RLockObject *)rlock, count, owner);
}

int
pc_lock_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &lock_spec, NULL, &st->Lock_Type) < 0) {
        return -1;
    }
    return pc_add_type(module, &rlock_spec, NULL, &st->RLock_Type);
}
