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
 *
 * Life cycle. The stdlib's Condition is a Python class whose __init__ sets _lock, then acquire and
 * release (and, from 3.14, locked), then _waiters; a method of an object whose __init__ did not run (or failed part way)
 * raises AttributeError naming the first attribute it misses. init_state mirrors that: NONE (no
 * _lock), LOCK (_lock set, __init__ failed before _waiters) and DONE. The wait list belongs to
 * the object from tp_new on and is never re-initialised: a second __init__ (which rebinds the
 * lock, as the stdlib's does) leaves parked waiters on it, still notifiable. A method that drives
 * the lock takes its own reference to the lock (and its kind) first, so that a Python callback
 * (a lock's release(), a predicate) re-initialising the Condition cannot free it under the call,
 * and a waiter always takes back the very lock it released.
 */
#include "pyconc.h"

enum { KIND_OTHER = 0, KIND_LOCK = 1, KIND_RLOCK = 2 };
enum { INIT_NONE = 0, INIT_LOCK = 1, INIT_DONE = 2 };

typedef struct {
    PyObject_HEAD
    PyObject *lock;           /* the underlying lock (strong) */
    int kind;                 /* KIND_*: how the lock is driven */
    int init_state;           /* INIT_*: how far __init__ got */
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
    static const char *const names[] = {"lock"};
    PyObject *lock;
    if (pc_parse_init_args("Condition.__init__", args, kwds, names, 1, 1, 0, &lock) < 0) {
        return -1;
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    if (lock == NULL || lock == Py_None) {
        lock = PyObject_CallNoArgs((PyObject *)st->RLock_Type);
        if (lock == NULL) {
            return -1;
        }
    }
    else {
        Py_INCREF(lock);
    }
    int kind = Py_IS_TYPE(lock, st->Lock_Type) ? KIND_LOCK
               : Py_IS_TYPE(lock, st->RLock_Type) ? KIND_RLOCK : KIND_OTHER;
    /* Like the stdlib: cond.acquire and cond.release are the lock's own bound methods. */
    PyObject *acq = PyObject_GetAttrString(lock, "acquire");
    PyObject *rel = acq ? PyObject_GetAttrString(lock, "release") : NULL;
    PyObject *dict = rel ? PyObject_GenericGetDict((PyObject *)self, NULL) : NULL;
    int rc = -1;
    if (dict != NULL) {
        rc = PyDict_SetItemString(dict, "acquire", acq) < 0 ||
             PyDict_SetItemString(dict, "release", rel) < 0 ? -1 : 0;
#if PY_VERSION_HEX >= 0x030E0000
        if (rc == 0) {   /* 3.14 exports the lock's locked() too, right after release */
            PyObject *locked = PyObject_GetAttrString(lock, "locked");
            rc = locked == NULL || PyDict_SetItemString(dict, "locked", locked) < 0 ? -1 : 0;
            Py_XDECREF(locked);
        }
#endif
    }
    if (rc == 0 || self->init_state == INIT_NONE) {
        /* The first __init__ keeps _lock even if it fails after setting it, as the stdlib's
         * does; a second one that fails leaves the Condition as it was. */
        Py_XSETREF(self->lock, Py_NewRef(lock));
        self->kind = kind;
        self->init_state = rc == 0 ? INIT_DONE : INIT_LOCK;
    }
    Py_DECREF(lock);
    Py_XDECREF(acq);
    Py_XDECREF(rel);
    Py_XDECREF(dict);
    return rc;
}

/* The lock and its kind, taken for the duration of one method call (see the top comment).
 * Returns a new reference, or NULL with the stdlib's AttributeError when _lock does not exist. */
static PyObject *
cond_lock(ConditionObject *self, int *kind)
{
    if (self->init_state == INIT_NONE || self->lock == NULL) {
        pc_uninitialized((PyObject *)self, "_lock");
        return NULL;
    }
    *kind = self->kind;
    return Py_NewRef(self->lock);
}

/* The stdlib reaches self._waiters after the ownership check (wait, notify) or first
 * (notify_all): AttributeError if __init__ stopped before it set it. 0 or -1. */
static int
cond_check_waiters(ConditionObject *self)
{
    if (self->init_state != INIT_DONE) {
        return pc_uninitialized((PyObject *)self, "_waiters");
    }
    return 0;
}

/* -- driving the lock ------------------------------------------------------------------------ */

/* 1 if the calling thread owns the lock, 0 if not, -1 on error. */
static int
cond_is_owned(PyObject *lock, int kind)
{
    switch (kind) {
    case KIND_LOCK:
        return pc_lock_is_locked(lock);
    case KIND_RLOCK:
        return pc_rlock_is_owned(lock);
    }
    PyObject *meth = PyObject_GetAttrString(lock, "_is_owned");
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
    PyObject *r = PyObject_CallMethod(lock, "acquire", "O", Py_False);
    if (r == NULL) {
        return -1;
    }
    int got = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (got < 0) {
        return -1;
    }
    if (got) {
        r = PyObject_CallMethod(lock, "release", NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    return 1;
}

/* The wait list of a pyconc Lock or RLock (kind not KIND_OTHER). */
static pc_waitlist *
cond_lock_waitlist(PyObject *lock, int kind)
{
    return kind == KIND_LOCK ? pc_lock_waitlist(lock) : pc_rlock_waitlist(lock);
}

/* Releases the lock completely. Stores what restore needs in *saved (a new reference, or NULL
 * for the C kinds, which use *count and *owner). 0 or -1. */
static int
cond_release_save(PyObject *lock, int kind, PyObject **saved, unsigned long *count,
                  unsigned long *owner)
{
    *saved = NULL;
    switch (kind) {
    case KIND_LOCK:
        return pc_lock_release(lock);
    case KIND_RLOCK:
        return pc_rlock_release_save(lock, count, owner);
    }
    PyObject *meth = PyObject_GetAttrString(lock, "_release_save");
    if (meth == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
        meth = PyObject_GetAttrString(lock, "release");
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
cond_acquire_restore(PyObject *lock, int kind, PyObject *saved, unsigned long count,
                     unsigned long owner)
{
    switch (kind) {
    case KIND_LOCK: {
        Py_XDECREF(saved);
        int r;
        do {
            r = pc_lock_acquire(lock, -1);
        } while (r == 0);
        return r < 0 ? -1 : 0;
    }
    case KIND_RLOCK:
        Py_XDECREF(saved);
        return pc_rlock_acquire_restore(lock, count, owner);
    }
    PyObject *r;
    PyObject *meth = PyObject_GetAttrString(lock, "_acquire_restore");
    if (meth != NULL) {
        r = PyObject_CallOneArg(meth, saved ? saved : Py_None);
        Py_DECREF(meth);
    }
    else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        r = PyObject_CallMethod(lock, "acquire", NULL);
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
cond_wait_impl(ConditionObject *self, PyObject *lock, int kind, pc_time_t rel_ns)
{
    pc_waiter w;
    pc_waiter_init(&w);
    pc_waitlist_check(&self->waiters);
    pc_waitlist_link(&self->waiters, &w, 0);  /* before the release: no notify can be missed */
    PyObject *saved;
    unsigned long count = 0, owner = 0;
    /* rule 8 (wait.h): the wakes our notify() calls held back on the lock are issued by the park,
     * once the GIL is free, rather than by the release below with the GIL still held */
    uint32_t *wakes[PC_DEFER_MAX];
    int nwakes = kind == KIND_OTHER ? 0 : pc_waitlist_take_deferred(cond_lock_waitlist(lock, kind),
                                                                     wakes);
    if (cond_release_save(lock, kind, &saved, &count, &owner) < 0) {
        pc_futex_wake_all(wakes, nwakes);
        pc_waitlist_unlink(&w);
        return -1;
    }
    int r;
    if (w.woken) {
        pc_futex_wake_all(wakes, nwakes);
        r = PC_WAIT_WOKEN;  /* notified while a Python-level release ran */
    }
    else if (rel_ns == 0) {
        pc_futex_wake_all(wakes, nwakes);
        pc_waitlist_unlink(&w);
        r = PC_WAIT_TIMEOUT;
    }
    else {
        r = pc_waiter_park_wakes(&w, pc_deadline_after(rel_ns), wakes, nwakes);
    }
    /* Take the lock back whatever happened, keeping an exception from the wait. */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (cond_acquire_restore(lock, kind, saved, count, owner) < 0) {
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

/* The ownership check of wait()/notify(): 0 if the caller owns lock, else -1 with the stdlib's
 * RuntimeError (or the error the lock's methods raised). */
static int
cond_check_owned(PyObject *lock, int kind, const char *msg)
{
    int owned = cond_is_owned(lock, kind);
    if (owned == 0) {
        PyErr_SetString(PyExc_RuntimeError, msg);
    }
    return owned > 0 ? 0 : -1;
}

static const char *const wait_names[] = {"timeout"};

static PyObject *
cond_wait(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout;
    if (pc_parse_args("Condition.wait", args, nargs, kwnames, wait_names, 1, &timeout) < 0) {
        return NULL;
    }
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *ret = NULL;
    pc_time_t rel_ns;
    if (cond_check_owned(lock, kind, "cannot wait on un-acquired lock") == 0 &&
            cond_check_waiters(self) == 0 && pc_parse_wait_timeout(timeout, &rel_ns) == 0) {
        int r = cond_wait_impl(self, lock, kind, rel_ns);
        ret = r < 0 ? NULL : PyBool_FromLong(r);
    }
    Py_DECREF(lock);
    return ret;
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
    /* The stdlib's loop: endtime = _time() + timeout once, self.wait(timeout) with the object
     * itself the first time, then with what is left (pc_parse_loop_timeout), until the
     * predicate holds or no time is left. */
    PyObject *predicate = argv[0], *timeout = argv[1];
    int timed = timeout != NULL && timeout != Py_None;
    int first = 1;
    double endtime = NAN;
    pc_time_t deadline = PC_FOREVER;
    PyObject *result = PyObject_CallNoArgs(predicate);
    for (;;) {
        if (result == NULL) {
            return NULL;
        }
        int t = PyObject_IsTrue(result);
        if (t != 0) {
            return t < 0 ? (Py_DECREF(result), NULL) : result;
        }
        pc_time_t rel_ns = -1;
        if (timed && first) {
            if (pc_loop_timeout_begin(timeout, &endtime) < 0) {
                Py_DECREF(result);
                return NULL;
            }
        }
        else if (timed && deadline != PC_FOREVER) {
            rel_ns = deadline - pc_monotonic_ns();
            if (rel_ns <= 0) {
                return result;
            }
        }
        /* self.wait(): the lock is looked up again for every wait, as the stdlib does */
        int kind, r = -1;
        PyObject *lock = cond_lock(self, &kind);
        if (lock != NULL) {
            if (cond_check_owned(lock, kind, "cannot wait on un-acquired lock") == 0 &&
                    cond_check_waiters(self) == 0 &&
                    (!timed || !first ||
                     pc_loop_timeout_first(timeout, endtime, &rel_ns) == 0)) {
                if (timed && first) {
                    deadline = pc_deadline_after(rel_ns);
                }
                r = cond_wait_impl(self, lock, kind, rel_ns);
            }
            Py_DECREF(lock);
        }
        first = 0;
        Py_DECREF(result);
        if (r < 0) {
            return NULL;
        }
        result = PyObject_CallNoArgs(predicate);
    }
}

/* notify(n) and notify_all() after their argument handling: the ownership check, then _waiters,
 * as the stdlib. n < 0 wakes every waiter. */
static PyObject *
cond_notify_n(ConditionObject *self, Py_ssize_t n)
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    int r = cond_check_owned(lock, kind, "cannot notify on un-acquired lock");
    if (r < 0 || cond_check_waiters(self) < 0) {
        Py_DECREF(lock);
        return NULL;
    }
    if (n != 0 && kind != KIND_OTHER) {
        /* rule 8 (wait.h): a notified waiter must take the lock before it returns, so its futex
         * wake waits on the lock's list for the release */
        pc_waitlist *lw = cond_lock_waitlist(lock, kind);
        pc_waitlist_check(&self->waiters);
        for (Py_ssize_t woken = 0; self->waiters.head != NULL && (n < 0 || woken < n); woken++) {
            pc_waiter_wake_deferred(self->waiters.head, lw);
        }
    }
    else if (n != 0) {
        pc_waitlist_wake_n(&self->waiters, n);
    }
    Py_DECREF(lock);
    Py_RETURN_NONE;
}

/* notify(n) for an n that is not an exact int: the stdlib's `while waiters and n > 0:
 * <wake one>; n -= 1`, so that n is only compared while there are waiters. 0 or -1. */
static int
cond_notify_object(ConditionObject *self, PyObject *nobj)
{
    PyObject *n = Py_NewRef(nobj), *zero = PyLong_FromLong(0), *one = PyLong_FromLong(1);
    int rc = zero && one ? 0 : -1;
    pc_waitlist_check(&self->waiters);
    while (rc == 0 && self->waiters.head != NULL) {
        int positive = PyObject_RichCompareBool(n, zero, Py_GT);
        if (positive <= 0) {
            rc = positive;
            break;
        }
        if (self->waiters.head != NULL) {   /* the comparison ran Python code */
            pc_waiter_wake(self->waiters.head);
        }
        Py_SETREF(n, PyNumber_InPlaceSubtract(n, one));
        if (n == NULL) {
            rc = -1;
        }
    }
    Py_XDECREF(n);
    Py_XDECREF(zero);
    Py_XDECREF(one);
    return rc;
}

static const char *const notify_names[] = {"n"};

static PyObject *
cond_notify(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *nobj;
    if (pc_parse_args("Condition.notify", args, nargs, kwnames, notify_names, 1, &nobj) < 0) {
        return NULL;
    }
    if (nobj == NULL || PyLong_CheckExact(nobj)) {
        Py_ssize_t n = 1;
        if (nobj != NULL) {
            int overflow;
            long long v = PyLong_AsLongLongAndOverflow(nobj, &overflow);
            n = overflow > 0 || v > PY_SSIZE_T_MAX ? -1      /* more than any number of waiters */
                : overflow < 0 || v <= 0 ? 0 : (Py_ssize_t)v;
        }
        return cond_notify_n(self, n);
    }
    /* any other n: checks first, then the stdlib's loop */
    PyObject *r = cond_notify_n(self, 0);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    if (cond_notify_object(self, nobj) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
cond_notify_all(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    /* The stdlib's notify_all() is notify(len(self._waiters)): _waiters is looked up first. */
    if (cond_check_waiters(self) < 0) {
        return NULL;
    }
    return cond_notify_n(self, -1);
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
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(lock, "__enter__", NULL);
    Py_DECREF(lock);
    return r;
}

static PyObject *
cond_exit(ConditionObject *self, PyObject *args)
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *meth = PyObject_GetAttrString(lock, "__exit__");
    Py_DECREF(lock);
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
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    int r = cond_is_owned(lock, kind);
    Py_DECREF(lock);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
cond_release_save_meth(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *saved, *ret;
    unsigned long count = 0, owner = 0;
    if (cond_release_save(lock, kind, &saved, &count, &owner) < 0) {
        ret = NULL;
    }
    else if (saved != NULL) {
        ret = saved;
    }
    else if (kind == KIND_RLOCK) {
        ret = Py_BuildValue("(kk)", count, owner);
    }
    else {
        ret = Py_NewRef(Py_None);
    }
    Py_DECREF(lock);
    return ret;
}

static PyObject *
cond_acquire_restore_meth(ConditionObject *self, PyObject *state)
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    unsigned long count = 0, owner = 0;
    PyObject *saved = NULL;
    int r = 0;
    if (kind == KIND_RLOCK) {
        if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner)) {
            r = -1;
        }
    }
    else if (kind == KIND_OTHER) {
        saved = Py_NewRef(state);
    }
    if (r == 0) {
        r = cond_acquire_restore(lock, kind, saved, count, owner);
    }
    Py_DECREF(lock);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
cond_at_fork_reinit(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(lock, "_at_fork_reinit", NULL);
    Py_DECREF(lock);
    if (r == NULL || cond_check_waiters(self) < 0) {
        Py_XDECREF(r);
        return NULL;
    }
    pc_waitlist_init(&self->waiters);
    return r;
}

static PyObject *
cond_repr(ConditionObject *self)
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = NULL;
    if (cond_check_waiters(self) == 0) {
        pc_waitlist_check(&self->waiters);
        r = PyUnicode_FromFormat("<Condition(%R, %zd)>", lock, self->waiters.count);
    }
    Py_DECREF(lock);
    return r;
}

static PyObject *
cond_get_lock(ConditionObject *self, void *Py_UNUSED(closure))
{
    int kind;
    return cond_lock(self, &kind);
}

/* Pickling fails, as the stdlib's, on the Condition's lock. */
static PyObject *
cond_reduce_ex(ConditionObject *self, PyObject *protocol)
{
    int kind;
    PyObject *lock = cond_lock(self, &kind);
    if (lock == NULL) {
        return NULL;
    }
    PyObject *r = NULL;
    if (kind == KIND_LOCK) {
        pc_cannot_pickle("_thread.lock");
    }
    else if (kind == KIND_RLOCK) {
        pc_cannot_pickle("_thread.RLock");
    }
    else {
        /* the stdlib would pickle the lock first: its error, if it has one */
        r = PyObject_CallMethod(lock, "__reduce_ex__", "O", protocol);
        if (r != NULL) {
            Py_CLEAR(r);
            PyErr_Format(PyExc_TypeError, "cannot pickle '%s' object", Py_TYPE(self)->tp_name);
        }
    }
    Py_DECREF(lock);
    return r;
}

static PyObject *
cond_reduce(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *protocol = PyLong_FromLong(0);
    PyObject *r = protocol ? cond_reduce_ex(self, protocol) : NULL;
    Py_XDECREF(protocol);
    return r;
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
    {"__reduce__", (PyCFunction)cond_reduce, METH_NOARGS, NULL},
    {"__reduce_ex__", (PyCFunction)cond_reduce_ex, METH_O, NULL},
    PC_COPY_SELF_METHOD,
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
