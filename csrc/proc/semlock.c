/* semlock.c -- process-shared locks and semaphores (pyconc._core.SemLock), the base of
 * pyconc.multiprocessing's Lock, RLock, Semaphore, BoundedSemaphore and of its Condition, Event
 * and Barrier.
 *
 * The state lives in its own shared segment (shm.h) and is one futex word plus counters, changed
 * only with atomic operations -- no lock around the lock. Two modes:
 *   mutex mode (RLock, and Lock = a semaphore with maxvalue 1): the word is 0 when free, else the
 *     kernel thread id of the owner; owner_pid names its process. A waiter that has slept for a
 *     slice checks that process: if it is gone (or a zombie) the lock is taken over, so a process
 *     killed while holding a lock never wedges the others.
 *   counting mode (Semaphore, BoundedSemaphore with maxvalue > 1): the word is the count. Units
 *     held by a process that dies are lost, as with POSIX semaphores (nobody knows who held them).
 * Waiting goes through wait.c's pc_shared_wait (GIL released, bounded spin, interruptible).
 */
#include "pyconc.h"
#include "shm.h"

#include <errno.h>
#include <unistd.h>

#define KIND_SEMAPHORE 0
#define KIND_RECURSIVE 1
#define NO_OWNER 0xFFFFFFFEu           /* held, owner unknown (created locked) */
#define PC_SEM_VALUE_MAX 0x7FFFFFFF
#define SLICE_NS (50 * 1000 * 1000)    /* how often a waiter checks on the owner: first after
                                        * 50 ms, then at growing intervals up to SLICE_MAX_NS */
#define SLICE_MAX_NS (400 * 1000 * 1000)

typedef struct {
    pc_shm_header h;
    uint32_t word;
    uint32_t waiters[2];     /* sleepers, spinners (see pc_shared_wait) */
    int32_t kind;
    int32_t maxvalue;
    int32_t owner_pid;       /* mutex mode: the owner's process, 0 if none or not yet known */
    uint32_t count;          /* mutex mode: recursion depth (1 for a held Lock) */
} psem_t;

typedef struct {
    PyObject_HEAD
    pc_shm shm;
    psem_t *s;
    int mutex;               /* mutex mode */
    pc_spin spin;            /* acquire's spin budget in this process */
    PyObject *weakreflist;
} SemLockObject;

static int
semlock_setup(SemLockObject *self)
{
    pc_spin_init(&self->spin);
    self->s = (psem_t *)self->shm.base;
    self->mutex = self->s->kind == KIND_RECURSIVE || self->s->maxvalue == 1;
    return 0;
}

static PyObject *
semlock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind", "value", "maxvalue", NULL};
    PyObject *kobj, *vobj, *mobj;
    int kind, value, maxvalue;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:SemLock", kwlist, &kobj, &vobj, &mobj)) {
        return NULL;
    }
    /* As the stdlib's _multiprocessing.SemLock: C ints, parsed as Argument Clinic does. */
    if (pc_as_c_int(kobj, &kind) < 0 || pc_as_c_int(vobj, &value) < 0 ||
            pc_as_c_int(mobj, &maxvalue) < 0) {
        return NULL;
    }
    if (kind != KIND_SEMAPHORE && kind != KIND_RECURSIVE) {
        PyErr_SetString(PyExc_ValueError, "unrecognized kind");
        return NULL;
    }
    if (value < 0) {
        /* the stdlib's sem_open() takes the value as unsigned: above SEM_VALUE_MAX, EINVAL */
        errno = EINVAL;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    if (maxvalue < 0 || value > maxvalue) {
        PyErr_SetString(PyExc_ValueError, "invalid value");
        return NULL;
    }
    SemLockObject *self = (SemLockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (pc_shm_create(&self->shm, sizeof(psem_t), PC_SHM_SEMLOCK) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    psem_t *s = (psem_t *)self->shm.base;
    s->kind = kind;
    s->maxvalue = maxvalue;
    semlock_setup(self);
    if (self->mutex) {
        s->word = (kind == KIND_RECURSIVE || value == 1) ? 0 : NO_OWNER;
        s->count = s->word ? 1 : 0;
    }
    else {
        s->word = (uint32_t)value;
    }
    return (PyObject *)self;
}

static PyObject *
semlock_attach(PyTypeObject *type, PyObject *name)
{
    long pid;
    int fd;
    uint64_t token;
    if (pc_shm_parse_name(name, &pid, &fd, &token) < 0) {
        return NULL;
    }
    SemLockObject *self = (SemLockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->shm.fd = -1;
    if (pc_shm_attach(&self->shm, pid, fd, token, PC_SHM_SEMLOCK) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    semlock_setup(self);
    return (PyObject *)self;
}

static void
semlock_dealloc(SemLockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    if (self->shm.base != NULL || self->shm.fd > 0) {
        pc_shm_close(&self->shm);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* -- taking and giving ------------------------------------------------------------------------ */

/* One attempt. 1 taken, 0 not. */
static int
try_take(SemLockObject *self)
{
    psem_t *s = self->s;
    if (self->mutex) {
        uint32_t me = pc_gettid();
        uint32_t cur = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
        if (cur == me && s->kind == KIND_RECURSIVE && s->owner_pid == pc_getpid()) {
            s->count++;
            return 1;
        }
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(&s->word, &expected, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&s->owner_pid, pc_getpid(), __ATOMIC_RELAXED);
            s->count = 1;
            return 1;
        }
        return 0;
    }
    uint32_t v = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    while (v > 0) {
        if (__atomic_compare_exchange_n(&s->word, &v, v - 1, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            return 1;
        }
    }
    return 0;
}

/* Mutex mode: if the owner's process is gone, take the lock away from it (free it). */
static void
check_owner(SemLockObject *self, int *unknown_slices)
{
    psem_t *s = self->s;
    uint32_t cur = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
    if (cur == 0 || cur == NO_OWNER) {
        return;
    }
    int32_t pid = __atomic_load_n(&s->owner_pid, __ATOMIC_ACQUIRE);
    int dead;
    if (pid != 0) {
        dead = pc_process_dead(pid);
    }
    else if (++*unknown_slices >= 2) {
        dead = pc_process_dead((pid_t)cur);  /* died between taking the word and naming itself */
    }
    else {
        return;
    }
    if (dead && __atomic_compare_exchange_n(&s->word, &cur, 0, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
        s->owner_pid = 0;
        s->count = 0;
    }
}

/* rel_ns: -1 forever, 0 once, else relative. 1 taken, 0 not, -1 error. */
static int
semlock_take(SemLockObject *self, pc_time_t rel_ns)
{
    if (try_take(self)) {
        return 1;
    }
    if (rel_ns == 0) {
        return 0;
    }
    pc_time_t deadline = rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
    psem_t *s = self->s;
    int unknown = 0;
    pc_time_t slice = SLICE_NS;
    for (;;) {
        uint32_t seen = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        if (!self->mutex && seen != 0) {
            if (try_take(self)) {
                return 1;
            }
            continue;
        }
        if (self->mutex && seen == 0) {
            if (try_take(self)) {
                return 1;
            }
            continue;
        }
        int r = pc_shared_wait(&s->word, seen, s->waiters, deadline,
                               self->mutex ? slice : PC_FOREVER, &self->spin);
        slice = pc_slice_grow(slice, SLICE_MAX_NS);
        if (r < 0) {
            return -1;
        }
        if (try_take(self)) {
            return 1;
        }
        if (r == 0) {
            return 0;
        }
        if (self->mutex) {
            check_owner(self, &unknown);
        }
    }
}

static void
wake_one(psem_t *s)
{
    pc_shared_wake_one(&s->word, s->waiters);
}

/* 0, or -1 with the stdlib's error. */
static int
semlock_give(SemLockObject *self)
{
    psem_t *s = self->s;
    if (self->mutex) {
        uint32_t cur = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        if (s->kind == KIND_RECURSIVE) {
            if (cur != pc_gettid() || s->owner_pid != pc_getpid() || s->count == 0) {
                PyErr_SetString(PyExc_AssertionError,
                                "attempt to release recursive lock not owned by thread");
                return -1;
            }
            if (--s->count > 0) {
                return 0;
            }
        }
        else if (cur == 0) {
            PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times");
            return -1;
        }
        s->count = 0;
        s->owner_pid = 0;
        __atomic_store_n(&s->word, 0, __ATOMIC_SEQ_CST);
        wake_one(s);
        return 0;
    }
    uint32_t v = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    for (;;) {
        if ((int64_t)v >= (int64_t)s->maxvalue) {
            PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times");
            return -1;
        }
        if (__atomic_compare_exchange_n(&s->word, &v, v + 1, 1, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED)) {
            break;
        }
    }
    wake_one(s);
    return 0;
}

/* -- methods ------------------------------------------------------------------------------- */

/* The stdlib's SemLock.acquire(block=True, timeout=None), argument by argument: block is an
 * int (a float is a TypeError); a recursive lock this thread holds is taken once more before the
 * timeout is looked at; otherwise the timeout is converted as a float even when block is false
 * (None waits forever, a negative one counts as 0). */
static PyObject *
semlock_acquire(SemLockObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    int block = 1;
    PyObject *block_obj = NULL, *timeout = Py_None;
    if (args != NULL && (PyTuple_GET_SIZE(args) > 0 || kwds != NULL)) {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:acquire", kwlist, &block_obj,
                                         &timeout)) {
            return NULL;
        }
        if (block_obj != NULL && pc_parse_int_flag(block_obj, &block) < 0) {
            return NULL;
        }
    }
    psem_t *s = self->s;
    if (s->kind == KIND_RECURSIVE && s->count > 0 &&
            __atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == pc_gettid() &&
            s->owner_pid == pc_getpid()) {
        s->count++;
        Py_RETURN_TRUE;
    }
    pc_time_t rel = 0;
    if (pc_parse_seconds(timeout, &rel) < 0) {
        return NULL;
    }
    if (!block) {
        rel = 0;
    }
    int r = semlock_take(self, rel);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
semlock_release(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    if (semlock_give(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
semlock_enter(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    int r = semlock_take(self, -1);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
semlock_exit(SemLockObject *self, PyObject *Py_UNUSED(args))
{
    return semlock_release(self, NULL);
}

static PyObject *
semlock_count(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    psem_t *s = self->s;
    if (self->mutex) {
        int mine = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == pc_gettid() &&
                   s->owner_pid == pc_getpid();
        return PyLong_FromLong(mine ? (long)s->count : 0);
    }
    return PyLong_FromLong(0);
}

static PyObject *
semlock_is_mine(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    psem_t *s = self->s;
    return PyBool_FromLong(self->mutex &&
                           __atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == pc_gettid() &&
                           s->owner_pid == pc_getpid());
}

static PyObject *
semlock_get_value(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t w = __atomic_load_n(&self->s->word, __ATOMIC_ACQUIRE);
    if (self->mutex) {
        return PyLong_FromLong(w == 0 ? 1 : 0);
    }
    return PyLong_FromUnsignedLong(w);
}

static PyObject *
semlock_is_zero(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t w = __atomic_load_n(&self->s->word, __ATOMIC_ACQUIRE);
    return PyBool_FromLong(self->mutex ? w != 0 : w == 0);
}

/* The owner for reprs: (pid, is_this_thread) or None. */
static PyObject *
semlock_owner(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    psem_t *s = self->s;
    uint32_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
    if (!self->mutex || w == 0) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(iOI)", (int)s->owner_pid,
                         (w == pc_gettid() && s->owner_pid == pc_getpid()) ? Py_True : Py_False,
                         (unsigned)s->count);
}

static PyObject *
semlock_name(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return pc_shm_name(&self->shm);
}

static PyObject *
semlock_token(SemLockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(pc_shm_hdr(&self->shm)->token);
}

static PyObject *
semlock_kind(SemLockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->s->kind);
}

static PyObject *
semlock_maxvalue(SemLockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->s->maxvalue);
}

static PyObject *
semlock_attach_meth(PyObject *cls, PyObject *name)
{
    return semlock_attach((PyTypeObject *)cls, name);
}

static PyObject *
semlock_waiters(SemLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(__atomic_load_n(&self->s->waiters[0], __ATOMIC_ACQUIRE));
}

static PyMethodDef semlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))semlock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(block=True, timeout=None) -> bool"},
    {"release", (PyCFunction)semlock_release, METH_NOARGS, "release()"},
    {"__enter__", (PyCFunction)semlock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)semlock_exit, METH_VARARGS, NULL},
    {"_count", (PyCFunction)semlock_count, METH_NOARGS, "recursion depth held by this thread"},
    {"_is_mine", (PyCFunction)semlock_is_mine, METH_NOARGS, "held by this thread"},
    {"_get_value", (PyCFunction)semlock_get_value, METH_NOARGS, "the semaphore's value"},
    {"_is_zero", (PyCFunction)semlock_is_zero, METH_NOARGS, "value == 0"},
    {"_owner", (PyCFunction)semlock_owner, METH_NOARGS, "(pid, mine, count) or None"},
    {"_name", (PyCFunction)semlock_name, METH_NOARGS, "(pid, fd, token) for pickling"},
    {"_waiters", (PyCFunction)semlock_waiters, METH_NOARGS, "processes waiting now"},
    {"_attach", (PyCFunction)semlock_attach_meth, METH_O | METH_CLASS,
     "attach to a SemLock by its _name()"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef semlock_getset[] = {
    {"kind", (getter)semlock_kind, NULL, NULL, NULL},
    {"maxvalue", (getter)semlock_maxvalue, NULL, NULL, NULL},
    {"token", (getter)semlock_token, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef semlock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SemLockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot semlock_slots[] = {
    {Py_tp_dealloc, semlock_dealloc},
    {Py_tp_new, semlock_new},
    {Py_tp_methods, semlock_methods},
    {Py_tp_getset, semlock_getset},
    {Py_tp_members, semlock_members},
    {Py_tp_doc, "SemLock(kind, value, maxvalue): a lock or semaphore in shared memory"},
    {0, NULL},
};

static PyType_Spec semlock_spec = {
    .name = "pyconc._core.SemLock",
    .basicsize = sizeof(SemLockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = semlock_slots,
};

int
pc_semlock_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &semlock_spec, NULL, &st->SemLock_Type) < 0) {
        return -1;
    }
    return PyModule_AddIntConstant(module, "SEM_VALUE_MAX", PC_SEM_VALUE_MAX);
}
