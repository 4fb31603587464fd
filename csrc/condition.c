/* condition.c -- Condition.
 *
 * A Condition is a lock plus a FIFO wait list. wait() links a waiter *before* it releases the lock,
 * so a notify() issued by the next holder cannot be missed; notify(n) wakes the n oldest waiters.
 * Waiters live on the waiting callers' stacks: wait() allocates nothing (the stdlib allocates a
 * lock per wait).
 *
 * The lock may be a pyconc Lock or RLock (exact types: driven through their C interface), or any
 * object with acquire()/release() (driven through its methods, using _release_save,
 * _acquire_restore and _is_owned when it has them, as the stdlib does).
 *
 * State is protected by the GIL; notify() and wait() also require the caller to hold the lock.
 */
#include "pyconc.h"

enum { KIND_OTHER = 0, KIND_LOCK = 1, KIND_RLOCK = 2 };

typedef struct {
    PyObject_HEAD
    PyObject *lock;           /* the underlying lock (strong) */
    int kind;                 /* KIND_*: how the lock is driven */
    pc_waitlist waiters;      /* callers blocked in wait() */
    PyObject *dict;           /* instance __dict__: acquire/release are attributes, as in stdlib */
    PyObject *weakreflist;
} ConditionObject;

static int
cond_traverse(ConditionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->lock);
    Py_VISIT(self->dict);
    return 0;
}

static int
cond_clear(ConditionObject *self)
{
    Py_CLEAR(self->lock);
    Py_CLEAR(self->dict);
    return 0;
}

static void
cond_dealloc(ConditionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    cond_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
cond_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ConditionObject *self = (ConditionObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_waitlist_init(&self->waiters);
    return (PyObject *)self;
}

static int
cond_init(ConditionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"lock", NULL};
    PyObject *lock = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Condition", kwlist, &lock)) {
        return -1;
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    if (lock == Py_None) {
        lock = PyObject_CallNoArgs((PyObject *)st->RLock_Type);
        if (lock == NULL) {
            return -1;
        }
    }
    else {
        Py_INCREF(lock);
    }
    Py_XSETREF(self->lock, lock);
    if (Py_IS_TYPE(lock, st->Lock_Type)) {
        self->kind = KIND_LOCK;
    }
    else if (Py_IS_TYPE(lock, st->RLock_Type)) {
        self->kind = KIND_RLOCK;
    }
    else {
        self->kind = KIND_OTHER;
    }
    /* Like the stdlib: cond.acquire and cond.release are the lock's own bound methods. */
    PyObject *dict = PyObject_GenericGetDict((PyObject *)self, NULL);
    if (dict == NULL) {
        return -1;
    }
    int rc = -1;
    PyObject *acq = PyObject_GetAttrString(lock, "acquire");
    PyObject *rel = acq ? PyObject_GetAttrString(lock, "release") : NULL;
    if (rel != NULL && PyDict_SetItemString(dict, "acquire", acq) == 0 &&
            PyDict_SetItemString(dict, "release", rel) == 0) {
        rc = 0;
    }
    Py_XDECREF(acq);
    Py_XDECREF(rel);
    Py_DECREF(dict);
    pc_waitlist_init(&self->waiters);
    return rc;
}

/* -- driving the lock ------------------------------------------------------------------------ */

/* 1 if the calling thread owns the lock, 0 if not, -1 on error. */
static int
cond_is_owned(ConditionObject *self)
{
    switch (self->kind) {
    case KIND_LOCK:
        return pc_lock_is_locked(self->lock);
    case KIND_RLOCK:
        return pc_rlock_is_owned(self->lock);
    }
    PyObject *meth = PyObject_GetAttrString(self->lock, "_is_owned");
    if (meth != NULL) {
        PyObject *r = PyObject_CallNoArgs(meth);
        Py_DECREF(meth);
        if (r == NULL) {
            return -1;
        }
        int t = PyObject_IsTrue(r);
        Py_DECREF(r);
        return t;
    }
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return -1;
    }
    PyErr_Clear();
    /* The stdlib's fallback: if we can take it, nobody (so not we) held it. */
    PyObject *r = PyObject_CallMethod(self->lock, "acquire", "O", Py_False);
    if (r == NULL) {
        return -1;
    }
    int got = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (got < 0) {
        return -1;
    }
    if (got) {
        r = PyObject_CallMethod(self->lock, "release", NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    return 1;
}

/* Releases the lock completely. Stores what restore needs in *saved (a new reference, or NULL
 * for the C kinds, which use *count and *owner). 0 or -1. */
static int
cond_release_save(ConditionObject *self, PyObject **saved, unsigned long *count,
                  unsigned long *owner)
{
    *saved = NULL;
    switch (self->kind) {
    case KIND_LOCK:
        return pc_lock_release(self->lock);
    case KIND_RLOCK:
        return pc_rlock_release_save(self->lock, count, owner);
    }
    PyObject *meth = PyObject_GetAttrString(self->lock, "_release_save");
    if (meth == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
        meth = PyObject_GetAttrString(self->lock, "release");
        if (meth == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallNoArgs(meth);
        Py_DECREF(meth);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    *saved = PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    return *saved == NULL ? -1 : 0;
}

/* Takes the lock back after a wait; consumes saved. 0 or -1. */
static int
cond_acquire_restore(ConditionObject *self, PyObject *saved, unsigned long count,
                     unsigned long owner)
{
    switch (self->kind) {
    case KIND_LOCK: {
        int r;
        do {
            r = pc_lock_acquire(self->lock, -1);
        } while (r == 0);
        return r < 0 ? -1 : 0;
    }
    case KIND_RLOCK:
        return pc_rlock_acquire_restore(self->lock, count, owner);
    }
    PyObject *r;
    PyObject *meth = PyObject_GetAttrString(self->lock, "_acquire_restore");
    if (meth != NULL) {
        r = PyObject_CallOneArg(meth, saved ? saved : Py_None);
        Py_DECREF(meth);
    }
    else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        r = PyObject_CallMethod(self->lock, "acquire", NULL);
    }
    else {
        r = NULL;
    }
    Py_XDECREF(saved);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* The wait itself: the caller has checked ownership. Returns 1 notified, 0 timed out, -1 error.
 * The lock is held again on every return, except when taking it back failed. */
static int
cond_wait_impl(ConditionObject *self, pc_time_t rel_ns)
{
    pc_waiter w;
    pc_waiter_init(&w);
    pc_waitlist_check(&self->waiters);
    pc_waitlist_link(&self->waiters, &w, 0);  /* before the release: no notify can be missed */
    PyObject *saved;
    unsigned long count = 0, owner = 0;
    if (cond_release_save(self, &saved, &count, &owner) < 0) {
        pc_waitlist_unlink(&w);
        return -1;
    }
    int r;
    if (w.woken) {
        r = PC_WAIT_WOKEN;  /* notified while a Python-level release ran */
    }
    else if (rel_ns == 0) {
        pc_waitlist_unlink(&w);
        r = PC_WAIT_TIMEOUT;
    }
    else {
        r = pc_waiter_park(&w, pc_deadline_after(rel_ns));
    }
    /* Take the lock back whatever happened, keeping an exception from the wait. */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (cond_acquire_restore(self, saved, count, owner) < 0) {
        if (et != NULL) {
            /* chain: the restore failure happened while handling the wait's exception */
            PyObject *nt, *nv, *ntb;
            PyErr_Fetch(&nt, &nv, &ntb);
            PyErr_NormalizeException(&et, &ev, &etb);
            PyErr_NormalizeException(&nt, &nv, &ntb);
            if (etb) {
                PyException_SetTraceback(ev, etb);
            }
            PyException_SetContext(nv, ev);  /* steals ev */
            Py_XDECREF(et);
            Py_XDECREF(etb);
            PyErr_Restore(nt, nv, ntb);
        }
        return -1;
    }
    PyErr_Restore(et, ev, etb);
    if (r == PC_WAIT_ERROR) {
        return -1;
    }
    return r == PC_WAIT_WOKEN;
}

/* -- methods --------------------------------------------------------------------------------- */

static const char *const wait_names[] = {"timeout"};

static PyObject *
cond_wait(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout;
    if (pc_parse_args("Condition.wait", args, nargs, kwnames, wait_names, 1, &timeout) < 0) {
        return NULL;
    }
    int owned = cond_is_owned(self);
    if (owned < 0) {
        return NULL;
    }
    if (!owned) {
        PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
        return NULL;
    }
    pc_time_t rel_ns;
    if (pc_parse_wait_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    int r = cond_wait_impl(self, rel_ns);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static const char *const wait_for_names[] = {"predicate", "timeout"};

static PyObject *
cond_wait_for(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *argv[2];
    if (pc_parse_args("Condition.wait_for", args, nargs, kwnames, wait_for_names, 2, argv) < 0) {
        return NULL;
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "Condition.wait_for() missing 1 required positional argument: 'predicate'");
        return NULL;
    }
    PyObject *predicate = argv[0];
    pc_time_t rel_ns = -1, deadline = PC_FOREVER;
    int timed = argv[1] != NULL && argv[1] != Py_None;
    int first = 1;
    PyObject *result = PyObject_CallNoArgs(predicate);
    for (;;) {
        if (result == NULL) {
            return NULL;
        }
        int t = PyObject_IsTrue(result);
        if (t != 0) {
            return t < 0 ? (Py_DECREF(result), NULL) : result;
        }
        if (timed) {
            if (first) {
                if (pc_parse_wait_timeout(argv[1], &rel_ns) < 0) {
                    Py_DECREF(result);
                    return NULL;
                }
                deadline = pc_deadline_after(rel_ns);
            }
            else {
                rel_ns = deadline - pc_monotonic_ns();
                if (rel_ns <= 0) {
                    return result;
                }
            }
        }
        first = 0;
        int owned = cond_is_owned(self);
        if (owned <= 0) {
            if (owned == 0) {
                PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
            }
            Py_DECREF(result);
            return NULL;
        }
        if (cond_wait_impl(self, rel_ns) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(result);
        result = PyObject_CallNoArgs(predicate);
    }
}

static int
cond_check_notify(ConditionObject *self)
{
    int owned = cond_is_owned(self);
    if (owned == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot notify on un-acquired lock");
    }
    return owned > 0 ? 0 : -1;
}

static const char *const notify_names[] = {"n"};

static PyObject *
cond_notify(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *nobj;
    if (pc_parse_args("Condition.notify", args, nargs, kwnames, notify_names, 1, &nobj) < 0) {
        return NULL;
    }
    Py_ssize_t n = 1;
    if (nobj != NULL) {
        n = PyNumber_AsSsize_t(nobj, PyExc_OverflowError);
        if (n == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (cond_check_notify(self) < 0) {
        return NULL;
    }
    if (n > 0) {
        pc_waitlist_wake_n(&self->waiters, n);
    }
    Py_RETURN_NONE;
}

static PyObject *
cond_notify_all(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    if (cond_check_notify(self) < 0) {
        return NULL;
    }
    pc_waitlist_wake_n(&self->waiters, -1);
    Py_RETURN_NONE;
}

static PyObject *
cond_notifyAll(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pc_deprecated("notifyAll() is deprecated, use notify_all() instead") < 0) {
        return NULL;
    }
    return cond_notify_all(self, NULL);
}

static PyObject *
cond_enter(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_CallMethod(self->lock, "__enter__", NULL);
}

static PyObject *
cond_exit(ConditionObject *self, PyObject *args)
{
    PyObject *meth = PyObject_GetAttrString(self->lock, "__exit__");
    if (meth == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_Call(meth, args, NULL);
    Py_DECREF(meth);
    return r;
}

static PyObject *
cond_is_owned_meth(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    int r = cond_is_owned(self);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
cond_release_save_meth(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *saved;
    unsigned long count = 0, owner = 0;
    if (cond_release_save(self, &saved, &count, &owner) < 0) {
        return NULL;
    }
    if (saved != NULL) {
        return saved;
    }
    if (self->kind == KIND_RLOCK) {
        return Py_BuildValue("(kk)", count, owner);
    }
    Py_RETURN_NONE;
}

static PyObject *
cond_acquire_restore_meth(ConditionObject *self, PyObject *state)
{
    unsigned long count = 0, owner = 0;
    PyObject *saved = NULL;
    if (self->kind == KIND_RLOCK) {
        if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner)) {
            return NULL;
        }
    }
    else if (self->kind == KIND_OTHER) {
        saved = Py_NewRef(state);
    }
    if (cond_acquire_restore(self, saved, count, owner) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
cond_at_fork_reinit(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    pc_waitlist_init(&self->waiters);
    return PyObject_CallMethod(self->lock, "_at_fork_reinit", NULL);
}

static PyObject *
cond_repr(ConditionObject *self)
{
    if (self->lock == NULL) {
        return PyUnicode_FromFormat("<Condition(uninitialized)>");
    }
    pc_waitlist_check(&self->waiters);
    return PyUnicode_FromFormat("<Condition(%R, %zd)>", self->lock, self->waiters.count);
}

static PyObject *
cond_get_lock(ConditionObject *self, void *Py_UNUSED(closure))
{
    if (self->lock == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_lock");
        return NULL;
    }
    return Py_NewRef(self->lock);
}

static PyMethodDef cond_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))cond_wait, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait(timeout=None) -> bool\n\nRelease the lock, block until notified or "
               "timed out, take the lock back.")},
    {"wait_for", (PyCFunction)(void (*)(void))cond_wait_for, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait_for(predicate, timeout=None)\n\nWait until predicate() is true.")},
    {"notify", (PyCFunction)(void (*)(void))cond_notify, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("notify(n=1)\n\nWake up to n waiting callers.")},
    {"notify_all", (PyCFunction)cond_notify_all, METH_NOARGS, PyDoc_STR("Wake every waiter.")},
    {"notifyAll", (PyCFunction)cond_notifyAll, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)cond_exit, METH_VARARGS, NULL},
    {"_is_owned", (PyCFunction)cond_is_owned_meth, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)cond_release_save_meth, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)cond_acquire_restore_meth, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)cond_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cond_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_lock", (getter)cond_get_lock, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef cond_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(ConditionObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ConditionObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot cond_slots[] = {
    {Py_tp_dealloc, cond_dealloc},
    {Py_tp_traverse, cond_traverse},
    {Py_tp_clear, cond_clear},
    {Py_tp_new, cond_new},
    {Py_tp_init, cond_init},
    {Py_tp_repr, cond_repr},
    {Py_tp_methods, cond_methods},
    {Py_tp_members, cond_members},
    {Py_tp_getset, cond_getset},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Condition(lock=None)\n\nA condition variable, a drop-in for threading.Condition.")},
    {0, NULL},
};

static PyType_Spec cond_spec = {
    .name = "pyconc.Condition",
    .basicsize = sizeof(ConditionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = cond_slots,
};

int
pc_condition_init_types(PyObject *module, pc_state *st)
{
    return pc_add_type(module, &cond_spec, NULL, &st->Condition_Type);
}
