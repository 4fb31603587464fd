/* semaphore.c -- Semaphore and BoundedSemaphore.
 *
 * value: the counter; bound: the initial value for BoundedSemaphore, -1 for Semaphore.
 * acquire() takes one unit or parks through pc_wait_acquire(); release(n) adds n units and wakes
 * up to n waiters (each retakes a unit when it runs; one that finds none goes back to the head).
 * All fields are protected by the GIL.
 *
 * Life cycle. The stdlib's Semaphore is a Python class: before __init__ has run (or after it
 * failed) its methods raise AttributeError for _cond or _value; `initialized` mirrors that. The
 * wait list belongs to the object from tp_new on: a second __init__ sets the value (the stdlib's
 * rebinds it) and wakes parked waiters so that they take the new units; none is dropped.
 */
#include "pyconc.h"

typedef struct {
    PyObject_HEAD
    Py_ssize_t value;         /* units available */
    Py_ssize_t bound;         /* BoundedSemaphore: the initial value; Semaphore: -1 */
    int initialized;          /* __init__ completed once */
    pc_waitlist waiters;
    PyObject *weakreflist;
} SemaphoreObject;

static int
sem_try_take(void *obj)
{
    SemaphoreObject *self = (SemaphoreObject *)obj;
    if (self->value > 0) {
        self->value--;
        return 1;
    }
    return 0;
}

static void
sem_dealloc(SemaphoreObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
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
    Py_ssize_t value = 1;
    if (vobj != NULL) {
        value = PyNumber_AsSsize_t(vobj, PyExc_OverflowError);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
        return -1;
    }
    self->value = value;
    self->bound = bounded ? value : -1;
    self->initialized = 1;
    /* A second __init__: waiters parked on the old value may take the new units. */
    if (self->waiters.head != NULL && value > 0) {
        pc_waitlist_wake_n(&self->waiters, value);
    }
    return 0;
}

/* The stdlib's methods start from self._cond: AttributeError before __init__. 0 or -1. */
static inline int
sem_check(SemaphoreObject *self)
{
    return self->initialized ? 0 : pc_uninitialized((PyObject *)self, "_cond");
}

static const char *const acquire_names[] = {"blocking", "timeout"};

static PyObject *
sem_acquire(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && self->value > 0) {  /* the fast path */
        self->value--;
        Py_RETURN_TRUE;
    }
    PyObject *argv[2];
    if (pc_parse_args("Semaphore.acquire", args, nargs, kwnames, acquire_names, 2, argv) < 0) {
        return NULL;
    }
    int blocking = 1;
    if (argv[0] != NULL && (blocking = PyObject_IsTrue(argv[0])) < 0) {
        return NULL;
    }
    PyObject *timeout = argv[1] == Py_None ? NULL : argv[1];
    if (!blocking && timeout != NULL) {
        PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    if (sem_check(self) < 0) {
        return NULL;
    }
    if (sem_try_take(self)) {
        Py_RETURN_TRUE;
    }
    pc_time_t rel_ns = 0;
    if (blocking && pc_parse_wait_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    int r = pc_wait_acquire(&self->waiters, NULL, sem_try_take, self, rel_ns);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
sem_enter(SemaphoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sem_check(self) < 0) {
        return NULL;
    }
    if (pc_wait_acquire(&self->waiters, NULL, sem_try_take, self, -1) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static int
sem_release_n(SemaphoreObject *self, Py_ssize_t n)
{
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return -1;
    }
    if (sem_check(self) < 0) {
        return -1;
    }
    if (self->bound >= 0 && self->value + n > self->bound) {
        PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
        return -1;
    }
    self->value += n;
    if (self->waiters.head != NULL) {
        pc_waitlist_wake_n(&self->waiters, n);
    }
    return 0;
}

static const char *const release_names[] = {"n"};

static PyObject *
sem_release(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t n = 1;
    if (nargs != 0 || kwnames != NULL) {
        PyObject *nobj;
        if (pc_parse_args("Semaphore.release", args, nargs, kwnames, release_names, 1, &nobj) < 0) {
            return NULL;
        }
        if (nobj != NULL) {
            n = PyNumber_AsSsize_t(nobj, PyExc_OverflowError);
            if (n == -1 && PyErr_Occurred()) {
                return NULL;
            }
        }
    }
    if (sem_release_n(self, n) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sem_exit(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (sem_release_n(self, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sem_repr(SemaphoreObject *self)
{
    if (!self->initialized) {
        pc_uninitialized((PyObject *)self, "_value");
        return NULL;
    }
    PyObject *mod = pc_type_fullname(Py_TYPE(self));
    if (mod == NULL) {
        return NULL;
    }
    PyObject *r;
    if (self->bound >= 0) {
        r = PyUnicode_FromFormat("<%U at %p: value=%zd/%zd>", mod,
                                 self, self->value, self->bound);
    }
    else {
        r = PyUnicode_FromFormat("<%U at %p: value=%zd>", mod,
                                 self, self->value);
    }
    Py_DECREF(mod);
    return r;
}

static PyObject *
sem_get_value(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    if (!self->initialized) {
        pc_uninitialized((PyObject *)self, "_value");
        return NULL;
    }
    return PyLong_FromSsize_t(self->value);
}

static PyObject *
sem_get_initial_value(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    if (!self->initialized) {
        pc_uninitialized((PyObject *)self, "_initial_value");
        return NULL;
    }
    return PyLong_FromSsize_t(self->bound);
}

static PyGetSetDef sem_getset[] = {
    {"_value", (getter)sem_get_value, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef bsem_getset[] = {
    {"_initial_value", (getter)sem_get_initial_value, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef sem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire(blocking=True, timeout=None) -> bool\n\nTake one unit.")},
    {"release", (PyCFunction)(void (*)(void))sem_release, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("release(n=1)\n\nGive back n units, waking up to n waiters.")},
    {"__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))sem_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sem_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SemaphoreObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sem_slots[] = {
    {Py_tp_dealloc, sem_dealloc},
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
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sem_slots,
};

static PyType_Slot bsem_slots[] = {
    {Py_tp_getset, bsem_getset},
    {Py_tp_doc, (void *)PyDoc_STR(
        "BoundedSemaphore(value=1)\n\nA semaphore that refuses to be released above its "
        "initial value (ValueError), a drop-in for threading.BoundedSemaphore.")},
    {0, NULL},
};

static PyType_Spec bsem_spec = {
    .name = "pyconc.BoundedSemaphore",
    .basicsize = sizeof(SemaphoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = bsem_slots,
};

int
pc_semaphore_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &sem_spec, NULL, &st->Semaphore_Type) < 0) {
        return -1;
    }
    return pc_add_type(module, &bsem_spec, (PyObject *)st->Semaphore_Type,
                       &st->BoundedSemaphore_Type);
}
