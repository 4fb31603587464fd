/* barrier.c -- Barrier, with the stdlib's state machine.
 *
 * States (as threading.Barrier): 0 filling, 1 draining, -1 resetting, -2 broken. count is the
 * number of callers inside wait(). An internal pyconc Lock (lock) plays the stdlib's Condition
 * lock: it is held while the state changes and while the action runs, and released while a
 * caller is parked on waiters. Threads may only enter once the previous cycle has drained.
 *
 * Every field is read and written with the GIL and the internal lock held.
 *
 * Life cycle. Before __init__ has run, methods raise the stdlib's AttributeError (for _cond,
 * _timeout, _parties or _state: `initialized`). The internal lock is created by the first __init__
 * and kept for the object's life, so that a second __init__ -- even one called by the action,
 * which runs with the lock held -- cannot pull it from under a caller. A second __init__ starts a
 * new generation: state and count start afresh, and the callers inside wait() (the generation they
 * entered is gone) are woken and get BrokenBarrierError without touching the new generation's
 * count. (The stdlib's version rebinds its Condition instead: its parked callers are never woken,
 * and the action's caller gets RuntimeError from notifying a Condition it does not hold.)
 */
#include "pyconc.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

typedef struct {
    PyObject_HEAD
    PyObject *lock;           /* internal pyconc Lock (strong) */
    PyObject *action;         /* callable or None (strong) */
    PyObject *timeout;        /* default timeout object or None (strong) */
    PyObject *parties_obj;    /* parties as given (strong): the stdlib accepts any object */
    Py_ssize_t parties;       /* parties_obj as a Py_ssize_t when parties_fast */
    int parties_fast;         /* parties_obj is an exact int that fits */
    Py_ssize_t count;         /* callers inside wait() */
    int state;                /* FILLING, DRAINING, RESETTING or BROKEN */
    int initialized;          /* __init__ completed once */
    uint64_t generation;      /* bumped by every __init__ (see the top comment) */
    pc_waitlist waiters;      /* callers parked inside wait() */
    PyObject *weakreflist;
} BarrierObject;

static int
barrier_traverse(BarrierObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->lock);
    Py_VISIT(self->action);
    Py_VISIT(self->timeout);
    Py_VISIT(self->parties_obj);
    return 0;
}

static int
barrier_clear(BarrierObject *self)
{
    Py_CLEAR(self->lock);
    Py_CLEAR(self->action);
    Py_CLEAR(self->timeout);
    Py_CLEAR(self->parties_obj);
    return 0;
}

static void
barrier_dealloc(BarrierObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    barrier_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static void
barrier_notify_all(BarrierObject *self)
{
    pc_waitlist_wake_n(&self->waiters, -1);
}

/* 3.13 added a check of parties to the stdlib's Barrier.__init__ ("parties must be > 0" in
 * 3.13.0, "parties must be >= 1" in 3.13.18 and 3.14.10): whether it is there, and its message,
 * are read from the running stdlib's threading.Barrier(0) once. Empty: no check. Written at
 * module init, read-only afterwards. */
static char parties_check[64] = "";

static void
probe_parties_check(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *r = threading ? PyObject_CallMethod(threading, "Barrier", "i", 0) : NULL;
    pc_probe_message(PyExc_ValueError, parties_check, sizeof(parties_check));
    Py_XDECREF(r);
    Py_XDECREF(threading);
}

static int
barrier_init(BarrierObject *self, PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"parties", "action", "timeout"};
    PyObject *argv[3];
    if (pc_parse_init_args("Barrier.__init__", args, kwds, names, 3, 3, 1, argv) < 0) {
        return -1;
    }
    if (parties_check[0] != '\0') {
        /* 3.13's `if parties < 1: raise ValueError(...)`, first, with the object untouched */
        PyObject *one = PyLong_FromLong(1);
        int few = one ? PyObject_RichCompareBool(argv[0], one, Py_LT) : -1;
        Py_XDECREF(one);
        if (few != 0) {
            if (few > 0) {
                PyErr_SetString(PyExc_ValueError, parties_check);
            }
            return -1;
        }
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    if (self->lock == NULL) {
        PyObject *lock = PyObject_CallNoArgs((PyObject *)st->Lock_Type);
        if (lock == NULL) {
            return -1;
        }
        self->lock = lock;
    }
    Py_XSETREF(self->action, Py_NewRef(argv[1] ? argv[1] : Py_None));
    Py_XSETREF(self->timeout, Py_NewRef(argv[2] ? argv[2] : Py_None));
    /* Any object, as the stdlib: it is only ever compared, `index + 1 == self._parties`. */
    Py_XSETREF(self->parties_obj, Py_NewRef(argv[0]));
    int overflow = 0;
    long long parties = PyLong_CheckExact(argv[0])
                        ? PyLong_AsLongLongAndOverflow(argv[0], &overflow) : 0;
    self->parties_fast = PyLong_CheckExact(argv[0]) && !overflow && parties <= PY_SSIZE_T_MAX &&
                         parties >= PY_SSIZE_T_MIN;
    self->parties = self->parties_fast ? (Py_ssize_t)parties : 0;
    self->count = 0;
    self->state = FILLING;
    self->generation++;
    self->initialized = 1;
    pc_waitlist_check(&self->waiters);
    barrier_notify_all(self);   /* callers of the previous generation leave (BrokenBarrierError) */
    return 0;
}

/* The fork check every method and getter starts with. */
static void
barrier_fork_check(BarrierObject *self)
{
    if (self->waiters.gen != pc_fork_generation) {
        /* The callers inside wait() did not survive a fork: start afresh. */
        pc_waitlist_init(&self->waiters);
        self->count = 0;
        self->state = FILLING;
    }
}

/* 0, or -1 with the stdlib's AttributeError for attr if __init__ has not run. */
static int
barrier_ready(BarrierObject *self, const char *attr)
{
    if (!self->initialized || self->lock == NULL) {
        return pc_uninitialized((PyObject *)self, attr);
    }
    barrier_fork_check(self);
    return 0;
}

/* Takes the internal lock. It is never held across a wait, so this is short. 0 or -1. */
static int
barrier_lock(BarrierObject *self)
{
    int r;
    do {
        r = pc_lock_acquire(self->lock, -1);
    } while (r == 0);
    return r < 0 ? -1 : 0;
}

/* Releases the internal lock. 0, or -1 with RuntimeError if it was not held (it is held by
 * every caller of this, and never replaced; checked all the same, so that a broken invariant
 * surfaces as an exception rather than as a result returned with an exception set). */
static int
barrier_unlock(BarrierObject *self)
{
    return pc_lock_release(self->lock);
}

/* barrier_unlock on a path that is already failing: the exception set stays the one raised,
 * with a failure to unlock as its __context__. Returns NULL. */
static PyObject *
barrier_unlock_failing(BarrierObject *self)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (barrier_unlock(self) < 0) {
        PyObject *ut, *uv, *utb;
        PyErr_Fetch(&ut, &uv, &utb);
        PyErr_NormalizeException(&ut, &uv, &utb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (ev != NULL && uv != NULL) {
            PyException_SetContext(ev, uv);  /* steals uv */
            uv = NULL;
        }
        Py_XDECREF(ut);
        Py_XDECREF(uv);
        Py_XDECREF(utb);
    }
    PyErr_Restore(et, ev, etb);
    return NULL;
}

/* The Condition.wait of the stdlib's version, on the internal lock. Returns as pc_waiter_park();
 * the internal lock is held again on return, whatever happened. */
static int
barrier_cond_wait(BarrierObject *self, pc_time_t deadline)
{
    pc_waiter w;
    pc_waiter_init(&w);
    pc_waitlist_link(&self->waiters, &w, 0);
    if (barrier_unlock(self) < 0) {
        pc_waitlist_unlink(&w);
        return PC_WAIT_ERROR;   /* not released, so still "held" for the caller's unlock */
    }
    int r = pc_waiter_park(&w, deadline);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    while (barrier_lock(self) < 0) {
        /* A second signal while taking the lock back: keep the first exception, if any. */
        if (et == NULL) {
            PyErr_Fetch(&et, &ev, &etb);
            r = PC_WAIT_ERROR;
        }
        else {
            PyErr_Clear();
        }
    }
    PyErr_Restore(et, ev, etb);
    return r;
}

static void
barrier_break(BarrierObject *self)
{
    self->state = BROKEN;
    barrier_notify_all(self);
}

static void
barrier_exit(BarrierObject *self)
{
    if (self->count == 0 && (self->state == RESETTING || self->state == DRAINING)) {
        self->state = FILLING;
        barrier_notify_all(self);
    }
}

static PyObject *
raise_broken(BarrierObject *self)
{
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st != NULL) {
        PyErr_SetNone(st->BrokenBarrierError);
    }
    return NULL;
}

static const char *const wait_names[] = {"timeout"};

/* `index + 1 == self._parties`: 1, 0, or -1 with the comparison's exception. */
static int
barrier_is_last(BarrierObject *self, Py_ssize_t index)
{
    if (self->parties_fast) {
        return index + 1 == self->parties;
    }
    PyObject *n = PyLong_FromSsize_t(index + 1);
    PyObject *parties = Py_NewRef(self->parties_obj);
    int r = n ? PyObject_RichCompareBool(n, parties, Py_EQ) : -1;
    Py_XDECREF(n);
    Py_DECREF(parties);
    return r;
}

static PyObject *barrier_wait_impl(BarrierObject *self, PyObject *timeout);

static PyObject *
barrier_wait(BarrierObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout;
    if (pc_parse_args("Barrier.wait", args, nargs, kwnames, wait_names, 1, &timeout) < 0) {
        return NULL;
    }
    int default_timeout = timeout == NULL || timeout == Py_None;
    if (barrier_ready(self, default_timeout ? "_timeout" : "_cond") < 0) {
        return NULL;
    }
    /* a second __init__ may replace self->timeout: hold the one this call uses */
    timeout = Py_NewRef(default_timeout ? self->timeout : timeout);
    PyObject *ret = barrier_wait_impl(self, timeout);
    Py_DECREF(timeout);
    return ret;
}

/* Barrier.wait after its argument handling; timeout is the object to use (None: forever). */
static PyObject *
barrier_wait_impl(BarrierObject *self, PyObject *timeout)
{
    if (barrier_lock(self) < 0) {
        return NULL;
    }
    /* _enter: block while the previous cycle drains or resets */
    while (self->state == RESETTING || self->state == DRAINING) {
        if (barrier_cond_wait(self, PC_FOREVER) == PC_WAIT_ERROR) {
            goto fail_locked;
        }
    }
    if (self->state < 0) {
        raise_broken(self);
        goto fail_locked;
    }
    /* From here on this caller belongs to the current generation: it counts itself in, and
     * counts itself out only if no __init__ started a new generation meanwhile. */
    uint64_t gen = self->generation;
    Py_ssize_t index = self->count++;
    int last = barrier_is_last(self, index);
    if (last < 0) {
        goto fail_counted;
    }
    if (last) {
        /* _release: the last one in runs the action (`if self._action:`) and lets everybody go */
        int has_action = PyObject_IsTrue(self->action);
        if (has_action < 0) {
            if (self->generation == gen) {
                barrier_break(self);
            }
            goto fail_counted;
        }
        if (has_action) {
            PyObject *action = Py_NewRef(self->action);
            PyObject *r = PyObject_CallNoArgs(action);
            Py_DECREF(action);
            if (r == NULL) {
                if (self->generation == gen) {
                    barrier_break(self);
                }
                goto fail_counted;
            }
            Py_DECREF(r);
            if (self->generation != gen) {
                raise_broken(self);  /* the action re-initialised the barrier */
                goto fail_counted;
            }
        }
        self->state = DRAINING;
        barrier_notify_all(self);
    }
    else {
        /* _wait: until released, reset or broken, or the timeout breaks the barrier. The
         * timeout is parsed only here, as the stdlib's wait_for does (an invalid one raises
         * without breaking the barrier). */
        pc_time_t rel_ns;
        if (pc_parse_loop_timeout(timeout, &rel_ns) < 0) {
            goto fail_counted;
        }
        pc_time_t deadline = pc_deadline_after(rel_ns);
        int timed_out = 0;
        while (self->state == FILLING && self->generation == gen && !timed_out) {
            int r = barrier_cond_wait(self, deadline);
            if (r == PC_WAIT_ERROR) {
                goto fail_counted;
            }
            timed_out = r == PC_WAIT_TIMEOUT;
        }
        if (self->generation != gen) {
            raise_broken(self);
            goto fail_counted;
        }
        if (self->state == FILLING) {
            barrier_break(self);
            raise_broken(self);
            goto fail_counted;
        }
        if (self->state < 0) {
            raise_broken(self);
            goto fail_counted;
        }
    }
    self->count--;
    barrier_exit(self);
    if (barrier_unlock(self) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(index);

fail_counted:
    if (self->generation == gen) {
        self->count--;
        barrier_exit(self);
    }
fail_locked:
    return barrier_unlock_failing(self);
}

static PyObject *
barrier_reset(BarrierObject *self, PyObject *Py_UNUSED(ignored))
{
    if (barrier_ready(self, "_cond") < 0 || barrier_lock(self) < 0) {
        return NULL;
    }
    if (self->count > 0) {
        if (self->state == FILLING || self->state == BROKEN) {
            self->state = RESETTING;
        }
    }
    else {
        self->state = FILLING;
    }
    barrier_notify_all(self);
    if (barrier_unlock(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
barrier_abort(BarrierObject *self, PyObject *Py_UNUSED(ignored))
{
    if (barrier_ready(self, "_cond") < 0 || barrier_lock(self) < 0) {
        return NULL;
    }
    barrier_break(self);
    if (barrier_unlock(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
barrier_get_parties(BarrierObject *self, void *Py_UNUSED(closure))
{
    if (barrier_ready(self, "_parties") < 0) {
        return NULL;
    }
    return Py_NewRef(self->parties_obj);
}

static PyObject *
barrier_get_n_waiting(BarrierObject *self, void *Py_UNUSED(closure))
{
    if (barrier_ready(self, "_state") < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(self->state == FILLING ? self->count : 0);
}

static PyObject *
barrier_get_broken(BarrierObject *self, void *Py_UNUSED(closure))
{
    if (barrier_ready(self, "_state") < 0) {
        return NULL;
    }
    return PyBool_FromLong(self->state == BROKEN);
}

static PyObject *
barrier_repr(BarrierObject *self)
{
    if (barrier_ready(self, "_state") < 0) {
        return NULL;
    }
    PyObject *name = pc_type_fullname(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *r;
    if (self->state == BROKEN) {
        r = PyUnicode_FromFormat("<%U at %p: broken>", name, self);
    }
    else {
        r = PyUnicode_FromFormat("<%U at %p: waiters=%zd/%S>", name, self,
                                 self->state == FILLING ? self->count : 0, self->parties_obj);
    }
    Py_DECREF(name);
    return r;
}

PC_NO_PICKLE(barrier, "_thread.lock")

static PyMethodDef barrier_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))barrier_wait, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait(timeout=None) -> int\n\nWait until `parties` callers are waiting; "
               "return this caller's index.")},
    {"reset", (PyCFunction)barrier_reset, METH_NOARGS,
     PyDoc_STR("Reset to the initial state; current waiters get BrokenBarrierError.")},
    {"abort", (PyCFunction)barrier_abort, METH_NOARGS,
     PyDoc_STR("Break the barrier: every waiter, now and later, gets BrokenBarrierError.")},
    PC_COPY_SELF_METHOD,
    PC_NO_PICKLE_METHODS(barrier),
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef barrier_getset[] = {
    {"parties", (getter)barrier_get_parties, NULL, NULL, NULL},
    {"n_waiting", (getter)barrier_get_n_waiting, NULL, NULL, NULL},
    {"broken", (getter)barrier_get_broken, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef barrier_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BarrierObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot barrier_slots[] = {
    {Py_tp_dealloc, barrier_dealloc},
    {Py_tp_traverse, barrier_traverse},
    {Py_tp_clear, barrier_clear},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, barrier_init},
    {Py_tp_repr, barrier_repr},
    {Py_tp_methods, barrier_methods},
    {Py_tp_getset, barrier_getset},
    {Py_tp_members, barrier_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Barrier(parties, action=None, timeout=None)\n\nA drop-in for threading.Barrier.")},
    {0, NULL},
};

static PyType_Spec barrier_spec = {
    .name = "pyconc.Barrier",
    .basicsize = sizeof(BarrierObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = barrier_slots,
};

int
pc_barrier_init_types(PyObject *module, pc_state *st)
{
    probe_parties_check();
    return pc_add_type(module, &barrier_spec, NULL, &st->Barrier_Type);
}
