/* semaphore.c -- Semaphore and BoundedSemaphore.
 *
 * The counter has two representations, chosen per value:
 *   fast mode (value_obj == NULL): a Py_ssize_t, 0 <= value. Every exact int the stdlib's
 *     counter can hold in practice; acquire and release are a compare and an add.
 *   object mode (value_obj != NULL, value == 0): the counter is a Python object, changed with the
 *     stdlib's own Python operations (`value == 0`, `value -= 1`, `value += n`). The stdlib's
 *     Semaphore is a Python class whose counter is whatever object was given: an int beyond
 *     Py_ssize_t (Semaphore(1).release(sys.maxsize) twice), a float or a Fraction (Semaphore(1.5)
 *     never blocks: the counter never equals 0). A result that is an exact int in range goes back
 *     to fast mode.
 * bound_obj is BoundedSemaphore's initial value (any object), NULL for Semaphore; bound is the
 * same as a Py_ssize_t when it is an exact int in range, else -1.
 *
 * acquire() takes one unit or parks on the wait list (sem_acquire_timed: in object mode the
 * take runs Python comparisons, which may raise); release(n) adds n units and wakes up to n
 * waiters (each retakes a unit when it runs; one that finds none goes back to the head).
 * All fields are protected by the GIL.
 *
 * Life cycle. The stdlib's Semaphore is a Python class: before __init__ has run (or after it
 * failed) its methods raise AttributeError for _cond or _value; `initialized` mirrors that. The
 * wait list belongs to the object from tp_new on: a second __init__ sets the value (the stdlib's
 * rebinds it) and wakes parked waiters so that they take the new units; none is dropped.
 */
#include "pyconc.h"
#include "../coro/hub.h"

typedef struct {
    PyObject_HEAD
    Py_ssize_t value;         /* fast mode: units available; 0 in object mode */
    PyObject *value_obj;      /* object mode: the counter (strong); NULL in fast mode */
    PyObject *bound_obj;      /* BoundedSemaphore: the initial value (strong); else NULL */
    Py_ssize_t bound;         /* bound_obj as a Py_ssize_t if it is one, else -1 */
    int initialized;          /* __init__ completed once */
    pc_waitlist waiters;
    PyObject *weakreflist;
} SemaphoreObject;

/* -- the counter -------------------------------------------------------------------------------- */

/* Py_ssize_t of an exact int in range; -1 (no exception) for anything else. */
static Py_ssize_t
exact_ssize(PyObject *obj)
{
    if (!PyLong_CheckExact(obj)) {
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || v < 0 || v > PY_SSIZE_T_MAX) {
        return -1;
    }
    return (Py_ssize_t)v;
}

/* Stores v (stolen) as the counter, in fast mode when it can be. */
static void
set_counter(SemaphoreObject *self, PyObject *v)
{
    Py_ssize_t n = exact_ssize(v);
    if (n >= 0) {
        Py_CLEAR(self->value_obj);
        self->value = n;
        Py_DECREF(v);
    }
    else {
        Py_XSETREF(self->value_obj, v);
        self->value = 0;
    }
}

/* The counter as a Python object: a new reference, or NULL with MemoryError. */
static PyObject *
get_counter(SemaphoreObject *self)
{
    if (self->value_obj != NULL) {
        return Py_NewRef(self->value_obj);
    }
    return PyLong_FromSsize_t(self->value);
}

/* The stdlib's `if self._value == 0: wait; else: self._value -= 1`, once. 1 took a unit,
 * 0 none available, -1 with an exception (object mode's comparison or subtraction raised). */
static int
sem_take(SemaphoreObject *self)
{
    if (self->value_obj == NULL) {
        if (self->value > 0) {
            self->value--;
            return 1;
        }
        return 0;
    }
    PyObject *counter = Py_NewRef(self->value_obj);  /* Python code below may replace it */
    PyObject *zero = PyLong_FromLong(0);
    int is_zero = zero ? PyObject_RichCompareBool(counter, zero, Py_EQ) : -1;
    Py_XDECREF(zero);
    if (is_zero != 0) {
        Py_DECREF(counter);
        return is_zero < 0 ? -1 : 0;
    }
    PyObject *one = PyLong_FromLong(1);
    PyObject *less = one ? PyNumber_InPlaceSubtract(counter, one) : NULL;
    Py_XDECREF(one);
    Py_DECREF(counter);
    if (less == NULL) {
        return -1;
    }
    set_counter(self, less);
    return 1;
}

/* -- GC ---------------------------------------------------------------------------------------- */

static int
sem_traverse(SemaphoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->value_obj);
    Py_VISIT(self->bound_obj);
    return 0;
}

static int
sem_clear(SemaphoreObject *self)
{
    Py_CLEAR(self->value_obj);
    Py_CLEAR(self->bound_obj);
    return 0;
}

static void
sem_dealloc(SemaphoreObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    sem_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
sem_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SemaphoreObject *self = (SemaphoreObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->bound = -1;
    pc_waitlist_init(&self->waiters);
    return (PyObject *)self;
}

static int
sem_init(SemaphoreObject *self, PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"value"};
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    int bounded = PyObject_TypeCheck(self, st->BoundedSemaphore_Type);
    PyObject *vobj;
    if (pc_parse_init_args(bounded ? "BoundedSemaphore.__init__" : "Semaphore.__init__", args,
                           kwds, names, 1, 1, 0, &vobj) < 0) {
        return -1;
    }
    PyObject *value = vobj != NULL ? Py_NewRef(vobj) : PyLong_FromLong(1);
    if (value == NULL) {
        return -1;
    }
    /* `if value < 0`, as the stdlib: any object that compares with 0 is a value. */
    PyObject *zero = PyLong_FromLong(0);
    int negative = zero ? PyObject_RichCompareBool(value, zero, Py_LT) : -1;
    Py_XDECREF(zero);
    if (negative != 0) {
        if (negative > 0) {
            PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
        }
        Py_DECREF(value);
        return -1;
    }
    if (bounded) {
        Py_XSETREF(self->bound_obj, Py_NewRef(value));
        self->bound = exact_ssize(value);
    }
    set_counter(self, value);
    self->initialized = 1;
    /* A second __init__: waiters parked on the old value may take the new units. */
    if (self->waiters.head != NULL) {
        pc_waitlist_wake_n(&self->waiters, self->value_obj != NULL ? -1 : self->value);
    }
    return 0;
}

/* The stdlib's methods start from self._cond: AttributeError before __init__. 0 or -1. */
static inline int
sem_check(SemaphoreObject *self)
{
    return self->initialized ? 0 : pc_uninitialized((PyObject *)self, "_cond");
}

/* -- acquire ----------------------------------------------------------------------------------- */

/* Takes a unit, waiting up to rel_ns (-1 forever, 0 not at all). 1, 0, or -1 with an
 * exception. The loop of pc_wait_acquire, with a take that may raise: a waiter that leaves with
 * an exception passes a wake it consumed on to the next waiter. gevent: 1 for gevent's
 * Semaphore, whose timeout is final in a greenlet (wait.h, pc_timeout_is_final); the stdlib's
 * looks at the count once more after a wait that timed out. */
static int
sem_acquire_timed(SemaphoreObject *self, pc_time_t rel_ns, int gevent)
{
    int r = sem_take(self);
    if (r != 0 || rel_ns == 0) {
        return r;
    }
    pc_time_t deadline = pc_deadline_after(rel_ns);
    int front = 0;
    for (;;) {
        pc_waiter w;
        int pr = pc_wait_on(&self->waiters, &w, deadline, front);
        if (gevent && pc_timeout_is_final(pr)) {
            return 0;   /* gevent's Timeout came first (wait.h) */
        }
        r = pr == PC_WAIT_ERROR ? -1 : sem_take(self);
        if (r < 0) {
            pc_waiter_pass_on(&w, &self->waiters);
            return -1;
        }
        if (r > 0 || pr == PC_WAIT_TIMEOUT) {
            return r;
        }
        front = 1;  /* woken, but a barging thread took the unit: keep our place */
    }
}

static const char *const acquire_names[] = {"blocking", "timeout"};

/* acquire(blocking=True, timeout=None)'s arguments: *blocking their truth, *timeout borrowed
 * or NULL for None / not given. 0 or -1. */
static int
parse_acquire(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              int *blocking, PyObject **timeout)
{
    PyObject *argv[2];
    if (pc_parse_args(fname, args, nargs, kwnames, acquire_names, 2, argv) < 0) {
        return -1;
    }
    *blocking = 1;
    if (argv[0] != NULL && (*blocking = PyObject_IsTrue(argv[0])) < 0) {
        return -1;
    }
    *timeout = argv[1] == Py_None ? NULL : argv[1];
    return 0;
}

static PyObject *
sem_acquire(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && self->value > 0) {  /* the fast path */
        self->value--;
        Py_RETURN_TRUE;
    }
    int blocking;
    PyObject *timeout;
    if (parse_acquire("Semaphore.acquire", args, nargs, kwnames, &blocking, &timeout) < 0) {
        return NULL;
    }
    if (!blocking && timeout != NULL) {
        PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    if (sem_check(self) < 0) {
        return NULL;
    }
    int r = sem_take(self);
    if (r != 0) {
        return r < 0 ? NULL : Py_NewRef(Py_True);
    }
    /* No unit: the stdlib's wait loop, whose timeout rules (endtime = _time() + timeout,
     * then Condition.wait's) apply only now that a wait is needed. */
    pc_time_t rel_ns = 0;
    if (blocking && pc_parse_loop_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    r = sem_acquire_timed(self, rel_ns, 0);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
sem_enter(SemaphoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sem_check(self) < 0 || sem_acquire_timed(self, -1, 0) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* -- release ----------------------------------------------------------------------------------- */

/* release(n), as the stdlib's: `n < 1` is a ValueError; BoundedSemaphore refuses
 * `value + n > initial value`; then value += n and up to n waiters are woken (3.11's
 * `for i in range(n): notify()`, so an n that is not an integer raises TypeError -- after the
 * counter has grown, as there; 3.13's `notify(n)` takes any number). nobj NULL means 1.
 * 0 or -1. */
static int
sem_release_n(SemaphoreObject *self, PyObject *nobj)
{
    Py_ssize_t n = nobj == NULL ? 1 : exact_ssize(nobj);
    if (n < 0 || self->value_obj != NULL || (self->bound_obj != NULL && self->bound < 0)) {
        return -2;  /* object mode: see sem_release_obj */
    }
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return -1;
    }
    if (sem_check(self) < 0) {
        return -1;
    }
    if (self->bound_obj != NULL && n > self->bound - self->value) {  /* no overflow: value <= bound */
        PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
        return -1;
    }
    if (n > PY_SSIZE_T_MAX - self->value) {
        return -2;  /* the sum needs a Python int */
    }
    self->value += n;
    if (self->waiters.head != NULL) {
        pc_waitlist_wake_n(&self->waiters, n);
    }
    return 0;
}

/* sem_release_n for the cases beyond Py_ssize_t: the same steps with Python operations. */
static int
sem_release_obj(SemaphoreObject *self, PyObject *nobj)
{
    PyObject *n = nobj != NULL ? Py_NewRef(nobj) : PyLong_FromLong(1);
    PyObject *one = PyLong_FromLong(1);
    PyObject *counter = NULL, *sum = NULL, *index = NULL;
    int rc = -1;
    if (n == NULL || one == NULL) {
        goto done;
    }
    int small = PyObject_RichCompareBool(n, one, Py_LT);
    if (small != 0) {
        if (small > 0) {
            PyErr_SetString(PyExc_ValueError, "n must be one or more");
        }
        goto done;
    }
    if (sem_check(self) < 0 || (counter = get_counter(self)) == NULL) {
        goto done;
    }
    if (self->bound_obj != NULL) {
        /* `if self._value + n > self._initial_value` */
        PyObject *bound = Py_NewRef(self->bound_obj);
        PyObject *total = PyNumber_Add(counter, n);
        int over = total ? PyObject_RichCompareBool(total, bound, Py_GT) : -1;
        Py_XDECREF(total);
        Py_DECREF(bound);
        if (over != 0) {
            if (over > 0) {
                PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
            }
            goto done;
        }
    }
    sum = PyNumber_InPlaceAdd(counter, n);  /* `self._value += n` */
    if (sum == NULL) {
        goto done;
    }
    set_counter(self, sum);
    sum = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13's `self._cond.notify(n)`: `while waiters and n > 0: <wake one>; n -= 1`, so any
     * number works (release(1.5) wakes two) and n is only looked at while someone waits */
    if (self->waiters.head != NULL) {
        Py_ssize_t k = 0;
        index = Py_NewRef(n);
        while (k < self->waiters.count) {
            PyObject *zero = PyLong_FromLong(0);
            int more = zero ? PyObject_RichCompareBool(index, zero, Py_GT) : -1;
            Py_XDECREF(zero);
            if (more <= 0) {
                if (more < 0) {
                    goto done;
                }
                break;
            }
            Py_SETREF(index, PyNumber_InPlaceSubtract(index, one));
            if (index == NULL) {
                goto done;
            }
            k++;
        }
        pc_waitlist_wake_n(&self->waiters, k);
    }
#else
    /* range(n): n must be an integer; the counter has grown already, as in the stdlib */
    index = PyNumber_Index(n);
    if (index == NULL) {
        goto done;
    }
    if (self->waiters.head != NULL) {
        Py_ssize_t k = PyNumber_AsSsize_t(index, NULL);  /* clamped: more than waiters is all */
        pc_waitlist_wake_n(&self->waiters, k);
    }
#endif
    rc = 0;
done:
    Py_XDECREF(n);
    Py_XDECREF(one);
    Py_XDECREF(counter);
    Py_XDECREF(sum);
    Py_XDECREF(index);
    return rc;
}

static int
sem_release_any(SemaphoreObject *self, PyObject *nobj)
{
    int r = sem_release_n(self, nobj);
    return r == -2 ? sem_release_obj(self, nobj) : r;
}

static const char *const release_names[] = {"n"};

static PyObject *
sem_release(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *nobj = NULL;
    if ((nargs != 0 || kwnames != NULL) &&
            pc_parse_args("Semaphore.release", args, nargs, kwnames, release_names, 1, &nobj) < 0) {
        return NULL;
    }
    if (sem_release_any(self, nobj) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sem_exit(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (sem_release_any(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* -- attributes -------------------------------------------------------------------------------- */

static PyObject *
sem_repr(SemaphoreObject *self)
{
    if (!self->initialized) {
        pc_uninitialized((PyObject *)self, "_value");
        return NULL;
    }
    PyObject *mod = pc_type_fullname(Py_TYPE(self));
    PyObject *value = mod ? get_counter(self) : NULL;
    PyObject *r = NULL;
    if (value != NULL) {
        /* f"...value={self._value}" formats with format(value, ""), as here */
        if (self->bound_obj != NULL) {
            PyObject *bound = Py_NewRef(self->bound_obj);
            r = PyUnicode_FromFormat("<%U at %p: value=%S/%S>", mod, self, value, bound);
            Py_DECREF(bound);
        }
        else {
            r = PyUnicode_FromFormat("<%U at %p: value=%S>", mod, self, value);
        }
    }
    Py_XDECREF(mod);
    Py_XDECREF(value);
    return r;
}

static PyObject *
sem_get_value(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    if (!self->initialized) {
        pc_uninitialized((PyObject *)self, "_value");
        return NULL;
    }
    return get_counter(self);
}

static PyObject *
sem_get_initial_value(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    if (!self->initialized || self->bound_obj == NULL) {
        pc_uninitialized((PyObject *)self, "_initial_value");
        return NULL;
    }
    return Py_NewRef(self->bound_obj);
}

static PyGetSetDef sem_getset[] = {
    {"_value", (getter)sem_get_value, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef bsem_getset[] = {
    {"_initial_value", (getter)sem_get_initial_value, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PC_NO_PICKLE(sem, "_thread.lock")

static PyMethodDef sem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire(blocking=True, timeout=None) -> bool\n\nTake one unit.")},
    {"release", (PyCFunction)(void (*)(void))sem_release, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("release(n=1)\n\nGive back n units, waking up to n waiters.")},
    {"__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))sem_exit, METH_FASTCALL, NULL},
    PC_COPY_SELF_METHOD,
    PC_NO_PICKLE_METHODS(sem),
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sem_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SemaphoreObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sem_slots[] = {
    {Py_tp_dealloc, sem_dealloc},
    {Py_tp_traverse, sem_traverse},
    {Py_tp_clear, sem_clear},
    {Py_tp_new, sem_new},
    {Py_tp_init, sem_init},
    {Py_tp_repr, sem_repr},
    {Py_tp_methods, sem_methods},
    {Py_tp_members, sem_members},
    {Py_tp_getset, sem_getset},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Semaphore(value=1)\n\nA counting semaphore, a drop-in for threading.Semaphore.")},
    {0, NULL},
};

static PyType_Spec sem_spec = {
    .name = "pyconc.Semaphore",
    .basicsize = sizeof(SemaphoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sem_slots,
};

static PyType_Slot bsem_slots[] = {
    {Py_tp_traverse, sem_traverse},
    {Py_tp_clear, sem_clear},
    {Py_tp_getset, bsem_getset},
    {Py_tp_doc, (void *)PyDoc_STR(
        "BoundedSemaphore(value=1)\n\nA semaphore that refuses to be released above its "
        "initial value (ValueError), a drop-in for threading.BoundedSemaphore.")},
    {0, NULL},
};

static PyType_Spec bsem_spec = {
    .name = "pyconc.BoundedSemaphore",
    .basicsize = sizeof(SemaphoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = bsem_slots,
};

/* -- gevent's Semaphore (pyconc.gevent.lock) -----------------------------------------------------
 *
 * The same counter and wait list with gevent's API on the hot path, so that a greenlet's
 * `acquire(); release()` or `with sem:` runs no Python frame: acquire() answers True/False (a
 * timeout that passes answers False), release() answers the counter, and both keep gevent's
 * bookkeeping -- the owner hub (`hub`: recorded when a thread that has a hub uses the semaphore,
 * made before a wait unless several OS threads share the semaphore, in which case a plain thread
 * stays a plain thread and blocks) and the rawlink callbacks (`_links`, kept by the Python mixin
 * pyconc.gevent._links; release() calls `_check_and_notify()` only when there are some). What is
 * rare stays in Python: a timeout that is not an int or a float (a gevent Timeout object, or any
 * other number) goes to the face's `_acquire_slow(timeout)`. */

typedef struct {
    SemaphoreObject base;
    PyObject *hub;            /* gevent's owner hub; NULL or None: none */
    PyObject *links;          /* `_links`: the rawlink entries (a list), or NULL */
    unsigned long ident;      /* the only OS thread that used it so far (0: none) */
    int shared;               /* more than one OS thread has used it */
} GSemObject;

static int
gsem_traverse(GSemObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->hub);
    Py_VISIT(self->links);
    return sem_traverse(&self->base, visit, arg);
}

static int
gsem_clear(GSemObject *self)
{
    Py_CLEAR(self->hub);
    Py_CLEAR(self->links);
    return sem_clear(&self->base);
}

static void
gsem_dealloc(GSemObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->base.weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    gsem_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static inline void
gsem_note_thread(GSemObject *self)
{
    unsigned long ident = pc_thread_ident();
    if (self->ident == 0) {
        self->ident = ident;
    }
    else if (self->ident != ident) {
        self->shared = 1;
    }
}

/* Records this thread's hub as the owner when there is none or the owner was destroyed; with
 * create, makes this thread's hub if it has none. 0, or -1 with an exception. */
static int
gsem_capture_hub(GSemObject *self, int create)
{
    pc_state *st = NULL;
    if (create && (st = pc_state_of_type(Py_TYPE(self))) == NULL) {
        return -1;
    }
    HubObject *mine = pc_hub_get(st, create);
    if (mine == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (self->hub != NULL && self->hub != Py_None) {
        if (st == NULL && (st = pc_state_of_type(Py_TYPE(self))) == NULL) {
            return -1;
        }
        /* an owner that is not a hub (set by hand) is left alone, as a live one */
        if (!PyObject_TypeCheck(self->hub, st->Hub_Type) || pc_hub_alive(pc_hub_of(st, self->hub))) {
            return 0;
        }
    }
    Py_XSETREF(self->hub, mine != NULL ? Py_NewRef(pc_hub_greenlet(mine)) : NULL);
    return 0;
}

static PyObject *
gsem_acquire(GSemObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    gsem_note_thread(self);
    if ((self->hub == NULL || self->hub == Py_None) && pc_hub_get(NULL, 0) != NULL &&
            gsem_capture_hub(self, 0) < 0) {
        return NULL;
    }
    if (nargs == 0 && kwnames == NULL && self->base.value > 0) {  /* the fast path */
        self->base.value--;
        Py_RETURN_TRUE;
    }
    int blocking;
    PyObject *timeout;
    if (parse_acquire("acquire", args, nargs, kwnames, &blocking, &timeout) < 0) {
        return NULL;
    }
    if (sem_check(&self->base) < 0) {
        return NULL;
    }
    int r = sem_take(&self->base);
    if (r != 0) {
        return r < 0 ? NULL : Py_NewRef(Py_True);
    }
    if (!blocking) {
        Py_RETURN_FALSE;
    }
    pc_time_t rel_ns = -1;
    if (timeout != NULL) {
        if (!PyFloat_Check(timeout) && !PyLong_Check(timeout)) {
            /* a Timeout object, or a number of another type: the face's Python path */
            return PyObject_CallMethod((PyObject *)self, "_acquire_slow", "O", timeout);
        }
        double secs = PyFloat_Check(timeout) ? PyFloat_AS_DOUBLE(timeout)
                                             : PyLong_AsDouble(timeout);
        if (secs == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();  /* an int too big for a double is a long wait, not 0 */
            secs = 1e300;
        }
        if (secs <= 0) {
            /* gevent's 0-second timer (wait.h): a greenlet yields one turn, a thread does not */
            if (!pc_zero_timeout_turns()) {
                Py_RETURN_FALSE;
            }
            rel_ns = PC_ZERO_TURN_NS;
        }
        else if (pc_parse_loop_timeout(timeout, &rel_ns) < 0) {
            return NULL;
        }
    }
    /* A semaphore only one OS thread uses makes that thread's hub before waiting, so that the
     * wait yields to it (and LoopExit applies), as gevent's; one shared between threads makes
     * none. */
    if (gsem_capture_hub(self, !self->shared) < 0) {
        return NULL;
    }
    r = sem_acquire_timed(&self->base, rel_ns, 1);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* release(): one unit back, then the links; the counter, or NULL with an exception. */
static PyObject *
gsem_release_impl(GSemObject *self)
{
    if (sem_release_any(&self->base, NULL) < 0) {
        return NULL;
    }
    if (self->base.bound_obj != NULL && self->base.value_obj == NULL &&
            self->base.value == self->base.bound) {
        Py_CLEAR(self->hub);  /* nobody holds a unit: it belongs to no hub any more */
    }
    if (self->links != NULL) {
        int any = PyObject_IsTrue(self->links);
        if (any < 0) {
            return NULL;
        }
        if (any) {
            PyObject *r = PyObject_CallMethod((PyObject *)self, "_check_and_notify", NULL);
            if (r == NULL) {
                return NULL;
            }
            Py_DECREF(r);
        }
    }
    return get_counter(&self->base);
}

static PyObject *
gsem_release(GSemObject *self, PyObject *Py_UNUSED(ignored))
{
    return gsem_release_impl(self);
}

static PyObject *
gsem_enter(GSemObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *r = gsem_acquire(self, NULL, 0, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *
gsem_exit(GSemObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    PyObject *r = gsem_release_impl(self);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *
gsem_capture_hub_m(GSemObject *self, PyObject *create)
{
    int c = PyObject_IsTrue(create);
    if (c < 0 || gsem_capture_hub(self, c) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef gsem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))gsem_acquire, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire(blocking=True, timeout=None) -> bool\n\nTake a unit: True once taken, "
               "False if not (blocking=False, or the timeout passed).")},
    {"release", (PyCFunction)gsem_release, METH_NOARGS,
     PyDoc_STR("release() -> int\n\nGive a unit back; return the counter.")},
    {"__enter__", (PyCFunction)gsem_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))gsem_exit, METH_FASTCALL, NULL},
    {"_capture_hub", (PyCFunction)gsem_capture_hub_m, METH_O, NULL},
    /* the threading semantics (blocking, timeout), for the face's slow paths */
    {"_thread_acquire", (PyCFunction)(void (*)(void))sem_acquire,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef gsem_members[] = {
    {"hub", T_OBJECT, offsetof(GSemObject, hub), 0, NULL},
    {"_links", T_OBJECT, offsetof(GSemObject, links), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *
gsem_get_multithreaded(GSemObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->shared);
}

static PyGetSetDef gsem_getset[] = {
    {"_multithreaded", (getter)gsem_get_multithreaded, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot gsem_slots[] = {
    {Py_tp_dealloc, gsem_dealloc},
    {Py_tp_traverse, gsem_traverse},
    {Py_tp_clear, gsem_clear},
    {Py_tp_methods, gsem_methods},
    {Py_tp_members, gsem_members},
    {Py_tp_getset, gsem_getset},
    {Py_tp_doc, (void *)PyDoc_STR(
        "The C part of pyconc.gevent.lock.Semaphore: gevent's acquire/release on pyconc's "
        "semaphore.")},
    {0, NULL},
};

static PyType_Spec gsem_spec = {
    .name = "pyconc.GeventSemaphore",
    .basicsize = sizeof(GSemObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = gsem_slots,
};

int
pc_semaphore_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &sem_spec, NULL, &st->Semaphore_Type) < 0) {
        return -1;
    }
    if (pc_add_type(module, &bsem_spec, (PyObject *)st->Semaphore_Type,
                    &st->BoundedSemaphore_Type) < 0) {
        return -1;
    }
    return pc_add_type(module, &gsem_spec, (PyObject *)st->Semaphore_Type,
                       &st->GeventSemaphore_Type);
}
