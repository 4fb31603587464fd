/* mpevent.c -- pyconc._core.SharedEvent: the process-shared event under
 * pyconc.multiprocessing.Event.
 *
 * One 32-bit futex word in its own shared segment (shm.h), changed only atomically -- no lock:
 *     word = (generation << 1) | flag
 * set() raises the flag and bumps the generation in one compare-and-swap, then wakes every
 * sleeper; clear() lowers the flag; is_set() reads it. So is_set() right after set() is True and
 * right after clear() is False in every process, whatever waiters are doing (a semaphore-based
 * event passes its flag through each waiter, and is briefly wrong while a waiter holds it).
 *
 * wait() returns True if the flag is up, or if a set() happened while it waited even when a
 * clear() followed at once -- the generation tells -- which is threading.Event's rule and the
 * stdlib multiprocessing.Event's. Waiting goes through wait.c's pc_shared_wait (GIL released,
 * bounded spin, interruptible by signals).
 */
#include "pyconc.h"
#include "shm.h"

typedef struct {
    pc_shm_header h;
    uint32_t word;            /* (generation << 1) | flag */
    uint32_t waiters[2];      /* sleepers, reserved (see pc_shared_wait) */
} pevent_t;

typedef struct {
    PyObject_HEAD
    pc_shm shm;
    pc_spin spin;             /* wait()'s spin budget in this process */
    PyObject *weakreflist;
} SharedEventObject;

#define EV(self) ((pevent_t *)(self)->shm.base)

static int
check_mapped(SharedEventObject *self)
{
    if (self->shm.base == NULL) {
        PyErr_SetString(PyExc_ValueError, "the event's shared memory is not mapped");
        return -1;
    }
    return 0;
}

static PyObject *
sev_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if ((args != NULL && PyTuple_GET_SIZE(args) > 0) || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "SharedEvent() takes no arguments");
        return NULL;
    }
    SharedEventObject *self = (SharedEventObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_spin_init(&self->spin);
    if (pc_shm_create(&self->shm, sizeof(pevent_t), PC_SHM_EVENT) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
sev_attach(PyObject *cls, PyObject *name)
{
    long pid;
    int fd;
    uint64_t token;
    if (pc_shm_parse_name(name, &pid, &fd, &token) < 0) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    SharedEventObject *self = (SharedEventObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_spin_init(&self->spin);
    if (pc_shm_attach(&self->shm, pid, fd, token, PC_SHM_EVENT) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
sev_dealloc(SharedEventObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    pc_shm_close(&self->shm);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
sev_is_set(SharedEventObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_mapped(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(__atomic_load_n(&EV(self)->word, __ATOMIC_SEQ_CST) & 1);
}

static PyObject *
sev_set(SharedEventObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_mapped(self) < 0) {
        return NULL;
    }
    pevent_t *e = EV(self);
    uint32_t old = __atomic_load_n(&e->word, __ATOMIC_SEQ_CST);
    do {
        if (old & 1) {
            Py_RETURN_NONE;   /* already set: nobody can be waiting for this set */
        }
    } while (!__atomic_compare_exchange_n(&e->word, &old, (old + 2) | 1, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));
    pc_shared_wake_all(&e->word, e->waiters);
    Py_RETURN_NONE;
}

static PyObject *
sev_clear(SharedEventObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_mapped(self) < 0) {
        return NULL;
    }
    __atomic_fetch_and(&EV(self)->word, ~(uint32_t)1, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *
sev_wait(SharedEventObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist, &timeout)) {
        return NULL;
    }
    pc_time_t rel;
    if (check_mapped(self) < 0 || pc_parse_seconds(timeout, &rel) < 0) {
        return NULL;
    }
    pevent_t *e = EV(self);
    uint32_t seen = __atomic_load_n(&e->word, __ATOMIC_SEQ_CST);
    if ((seen & 1) || rel == 0) {
        return PyBool_FromLong(seen & 1);
    }
    pc_time_t deadline = pc_deadline_after(rel);
    for (;;) {
        int r = pc_shared_wait(&e->word, seen, e->waiters, deadline, PC_FOREVER,
                               &self->spin);
        if (r < 0) {
            return NULL;
        }
        uint32_t now = __atomic_load_n(&e->word, __ATOMIC_SEQ_CST);
        if ((now & 1) || (now >> 1) != (seen >> 1)) {
            Py_RETURN_TRUE;   /* set, or set and cleared again while we waited */
        }
        if (r == 0) {
            Py_RETURN_FALSE;
        }
        seen = now;
    }
}

static PyObject *
sev_name(SharedEventObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_mapped(self) < 0) {
        return NULL;
    }
    return pc_shm_name(&self->shm);
}

static PyObject *
sev_token(SharedEventObject *self, void *Py_UNUSED(c))
{
    if (check_mapped(self) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(pc_shm_hdr(&self->shm)->token);
}

static PyMethodDef sev_methods[] = {
    {"is_set", (PyCFunction)sev_is_set, METH_NOARGS, "is_set() -> bool"},
    {"set", (PyCFunction)sev_set, METH_NOARGS, "set(): raise the flag and wake every waiter"},
    {"clear", (PyCFunction)sev_clear, METH_NOARGS, "clear(): lower the flag"},
    {"wait", (PyCFunction)(void (*)(void))sev_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> bool"},
    {"_name", (PyCFunction)sev_name, METH_NOARGS, "(pid, fd, token) for pickling"},
    {"_attach", (PyCFunction)sev_attach, METH_O | METH_CLASS, "attach by _name()"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sev_getset[] = {
    {"_token", (getter)sev_token, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef sev_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SharedEventObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sev_slots[] = {
    {Py_tp_dealloc, sev_dealloc},
    {Py_tp_new, sev_new},
    {Py_tp_methods, sev_methods},
    {Py_tp_getset, sev_getset},
    {Py_tp_members, sev_members},
    {Py_tp_doc, "SharedEvent(): an event flag in shared memory"},
    {0, NULL},
};

static PyType_Spec sev_spec = {
    .name = "pyconc._core.SharedEvent",
    .basicsize = sizeof(SharedEventObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sev_slots,
};

int
pc_mpevent_init_types(PyObject *module, pc_state *st)
{
    return pc_add_type(module, &sev_spec, NULL, &st->SharedEvent_Type);
}
