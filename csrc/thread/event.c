/* event.c -- Event.
 *
 * flag: 0/1. set() raises the flag and wakes every waiter; clear() lowers it; wait() returns at
 * once if the flag is up, otherwise parks until a set() (True) or the timeout (the flag).
 * All fields are protected by the GIL. set() on an Event nobody waits on is two stores.
 *
 * Life cycle. As the stdlib's Python class: before __init__ has run, methods raise AttributeError
 * for _flag or _cond (`initialized`); __init__ clears the flag. The wait list belongs to the object
 * from tp_new on: callers parked in wait() when __init__ runs again stay parked until a set().
 */
#include "pyconc.h"

typedef struct {
    PyObject_HEAD
    char flag;                /* 1 when set */
    char initialized;         /* __init__ ran */
    pc_waitlist waiters;      /* callers blocked in wait() */
    PyObject *weakreflist;
} EventObject;

static void
event_dealloc(EventObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
event_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    EventObject *self = (EventObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_waitlist_init(&self->waiters);
    return (PyObject *)self;
}

static int
event_init(EventObject *self, PyObject *args, PyObject *kwds)
{
    if (pc_parse_init_args("Event.__init__", args, kwds, NULL, 0, 0, 0, NULL) < 0) {
        return -1;
    }
    self->flag = 0;
    self->initialized = 1;
    return 0;
}

/* AttributeError for the stdlib attribute a method of an uninitialised Event reaches first. */
#define EVENT_CHECK(self, attr, fail)                                   \
    do {                                                                \
        if (!(self)->initialized) {                                     \
            pc_uninitialized((PyObject *)(self), attr);                 \
            return fail;                                                \
        }                                                               \
    } while (0)

static PyObject *
event_is_set(EventObject *self, PyObject *Py_UNUSED(ignored))
{
    EVENT_CHECK(self, "_flag", NULL);
    return PyBool_FromLong(self->flag);
}

static PyObject *
event_isSet(EventObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pc_deprecated("isSet() is deprecated, use is_set() instead") < 0) {
        return NULL;
    }
    return event_is_set(self, NULL);
}

static PyObject *
event_set(EventObject *self, PyObject *Py_UNUSED(ignored))
{
    EVENT_CHECK(self, "_cond", NULL);
    self->flag = 1;
    if (self->waiters.head != NULL) {
        pc_waitlist_wake_n(&self->waiters, -1);
    }
    Py_RETURN_NONE;
}

static PyObject *
event_clear(EventObject *self, PyObject *Py_UNUSED(ignored))
{
    EVENT_CHECK(self, "_cond", NULL);
    self->flag = 0;
    Py_RETURN_NONE;
}

static const char *const wait_names[] = {"timeout"};

static PyObject *
event_wait(EventObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (self->flag && nargs == 0 && kwnames == NULL) {
        Py_RETURN_TRUE;
    }
    PyObject *timeout = NULL;
    if ((nargs != 0 || kwnames != NULL) &&
            pc_parse_args("Event.wait", args, nargs, kwnames, wait_names, 1, &timeout) < 0) {
        return NULL;
    }
    EVENT_CHECK(self, "_cond", NULL);
    if (self->flag) {
        Py_RETURN_TRUE;   /* as the stdlib: the timeout is only looked at when a wait is needed */
    }
    pc_time_t rel_ns;
    if (pc_parse_wait_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    if (rel_ns == 0) {
        if (!pc_zero_timeout_turns()) {
            Py_RETURN_FALSE;
        }
        rel_ns = PC_ZERO_TURN_NS;   /* gevent's 0-second timer (wait.h) */
    }
    pc_waiter w;
    int r = pc_wait_on(&self->waiters, &w, pc_deadline_after(rel_ns), 0);
    if (r == PC_WAIT_ERROR) {
        return NULL;
    }
    /* Woken by set(): True even if someone cleared the flag since, like the stdlib. A greenlet
     * whose timeout fired answers False, as gevent's Event: its Timeout can fire in the same
     * loop turn as a set() that came after it, whose wake it no longer takes. */
    if (r == PC_WAIT_TIMEOUT && pc_zero_timeout_turns()) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(r == PC_WAIT_WOKEN || self->flag);
}

static PyObject *
event_at_fork_reinit(EventObject *self, PyObject *Py_UNUSED(ignored))
{
    EVENT_CHECK(self, "_cond", NULL);
    pc_waitlist_init(&self->waiters);
    Py_RETURN_NONE;
}

static PyObject *
event_repr(EventObject *self)
{
    EVENT_CHECK(self, "_flag", NULL);
    PyObject *mod = pc_type_fullname(Py_TYPE(self));
    if (mod == NULL) {
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat("<%U at %p: %s>", mod,
                                       self, self->flag ? "set" : "unset");
    Py_DECREF(mod);
    return r;
}

PC_NO_PICKLE(event, "_thread.lock")

static PyMethodDef event_methods[] = {
    {"is_set", (PyCFunction)event_is_set, METH_NOARGS, PyDoc_STR("True if the flag is set.")},
    {"isSet", (PyCFunction)event_isSet, METH_NOARGS, NULL},
    {"set", (PyCFunction)event_set, METH_NOARGS, PyDoc_STR("Set the flag, wake every waiter.")},
    {"clear", (PyCFunction)event_clear, METH_NOARGS, PyDoc_STR("Reset the flag.")},
    {"wait", (PyCFunction)(void (*)(void))event_wait, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait(timeout=None) -> bool\n\nBlock until the flag is set or timed out.")},
    {"_at_fork_reinit", (PyCFunction)event_at_fork_reinit, METH_NOARGS, NULL},
    PC_COPY_SELF_METHOD,
    PC_NO_PICKLE_METHODS(event),
    {NULL, NULL, 0, NULL},
};

static PyMemberDef event_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(EventObject, weakreflist), READONLY, NULL},
    /* how many callers wait(): pyconc.gevent's Event.set asks whether set() woke anyone */
    {"_nwaiters", T_PYSSIZET, offsetof(EventObject, waiters) + offsetof(pc_waitlist, count),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot event_slots[] = {
    {Py_tp_dealloc, event_dealloc},
    {Py_tp_new, event_new},
    {Py_tp_init, event_init},
    {Py_tp_repr, event_repr},
    {Py_tp_methods, event_methods},
    {Py_tp_members, event_members},
    {Py_tp_doc, (void *)PyDoc_STR("Event()\n\nA flag to wait on, a drop-in for threading.Event.")},
    {0, NULL},
};

static PyType_Spec event_spec = {
    .name = "pyconc.Event",
    .basicsize = sizeof(EventObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = event_slots,
};

int
pc_event_init_types(PyObject *module, pc_state *st)
{
    return pc_add_type(module, &event_spec, NULL, &st->Event_Type);
}
