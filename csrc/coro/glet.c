/* glet.c -- pyconc._core.Greenlet: the core of pyconc.gevent's Greenlet, gevent's "light-weight
 * cooperatively-scheduled execution unit", as a C subclass of pyconc's greenlet type.
 *
 * Its data lives after the greenlet's own fields (GLET(obj)). Its parent is the hub of the thread
 * it was made in; start() queues its first switch on that hub (a node the hub skips if the
 * greenlet was killed before it started); its run() calls the function (or the subclass's _run)
 * and records the outcome:
 *     not started -> pending start (queued, or a timer for start_later) -> running -> finished
 *                 \-> cancelled (killed before it started: it never runs; it is dead, and its
 *                     outcome is the kill's exception, GreenletExit counting as success)
 * A finished greenlet notifies its joiners (join() / get() callers, on one wait list, so that a
 * plain thread can join a greenlet of another thread's hub) and its links (rawlink) as gevent
 * does: from ONE callback of its hub (an N_NOTIFY node, gevent's _notify_links), queued when it
 * finishes, that takes them in the order they came -- gevent's join is itself a link, so a joiner
 * that came before a link returns before that link runs, and one that came after, after it. A
 * joiner of the same hub is switched to right there, from the callback (as gevent's link
 * switches to it), and the callback goes on when it switches back; other joiners (a plain thread,
 * another hub's greenlet) are woken. Until that callback has run, the end has reached nobody: a
 * wait that times out first reports a timeout, even if the greenlet is finished by the time the
 * waiter runs again (gevent: the Timeout is thrown in before the callback). With neither joiners
 * nor links nor a wait_greenlets watching, nothing is queued (spawn without join costs nothing).
 * An error that ends it is also reported to the hub's handle_error (printed; KeyboardInterrupt,
 * SystemExit, SystemError raised in the main greenlet).
 *
 * The Python face (pyconc/gevent/_greenlet.py) subclasses this type for what is not on a hot
 * path: repr, name, minimal_ident, link/link_value/link_exception, the context manager.
 *
 * All fields are protected by the GIL.
 */
#include "pyconc.h"
#include "greenlet.h"
#include "hub.h"

#include <string.h>

enum { S_NONE = 0, S_PENDING, S_TIMER, S_RUNNING, S_CANCELLED };

typedef struct {
    int state;                /* S_* above */
    int finished;             /* the outcome is recorded: exc_* set (success: all NULL) */
    int notifier;             /* its N_NOTIFY is queued in the hub, or running */
    int notified;             /* that notification has begun: the end reached the waiters */
    int watchers;             /* wait_greenlets calls waiting for it (they need the notification
                                 even when nobody joins it at the moment) */
    PyObject *func;           /* the run argument, or NULL: self._run (strong) */
    PyObject *args;           /* tuple (strong) */
    PyObject *kwargs;         /* dict (strong) */
    PyObject *value;          /* the result (strong, None until finished) */
    PyObject *exc_type, *exc_value, *exc_tb;   /* the error that ended it (strong or NULL) */
    PyObject *links;          /* list of callables (strong) */
    PyObject *start_timer;    /* start_later's timer while pending (strong) */
    PyObject *hub;            /* the hub it belongs to (strong) */
    uint64_t finish_seq;      /* completion order */
    uint64_t notify_seq;      /* notification order, for wait()'s result order */
    /* gevent keeps joiners and links in one list; here they are two (a joiner is a waiter on
     * the C stack, a link a Python callable), merged by arrival stamps: every rawlink and every
     * joiner takes the next link_serial, a joiner in its waiter's order field, a link in stamps,
     * kept parallel to links (nstamps == len(links) unless someone changed the list behind our
     * back, `_links` being a visible attribute: the links then all count as older) */
    uint32_t link_serial;
    uint32_t *stamps;
    Py_ssize_t nstamps, capstamps;
    pc_waitlist joiners;      /* join() / get() callers */
} glet_t;

static Py_ssize_t glet_offset;   /* the greenlet type's basicsize */
/* The greenlet type's traverse and clear, taken at init: during a collection the type of a dying
 * subclass instance may already be cleared, so the module state cannot be looked up there. */
static traverseproc base_traverse;
static inquiry base_clear;
#define GLET(obj) ((glet_t *)((char *)(obj) + glet_offset))

static uint64_t finish_counter = 0;
static uint64_t notify_counter = 0;

/* a before b, as arrival stamps (wrapping) */
static inline int
stamp_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* -- the state machine ------------------------------------------------------------------------ */

static pc_state *
state_of(PyObject *self)
{
    return pc_state_of_type(Py_TYPE(self));
}

static int
is_dead(PyObject *self)
{
    glet_t *g = GLET(self);
    if (pc_greenlet_current_or_null() == self) {
        return 0;
    }
    return g->state == S_CANCELLED || pc_greenlet_is_dead(self);
}

static int
is_ready(PyObject *self)
{
    return GLET(self)->finished || is_dead(self);
}

/* hub.c's N_START check: the start happens unless the greenlet was killed meanwhile. */
int
pc_glet_start_begins(PyObject *self)
{
    glet_t *g = GLET(self);
    if (g->state != S_PENDING) {
        return 0;
    }
    g->state = S_RUNNING;
    return 1;
}

static int
has_links(glet_t *g)
{
    return g->links != NULL && PyList_GET_SIZE(g->links) > 0;
}

/* Queues the notification (N_NOTIFY) in the greenlet's hub unless it is queued or running. 0;
 * 1 if its hub is destroyed (nothing runs there any more: links are not called, as before any
 * hub ran them); -1 with an exception. */
static int
schedule_notify(PyObject *self)
{
    glet_t *g = GLET(self);
    if (g->notifier) {
        return 0;
    }
    pc_state *st = state_of(self);
    HubObject *hub = st ? pc_hub_of(st, g->hub) : NULL;
    int r = hub ? pc_hub_schedule_notify(hub, self) : -1;
    if (r == 0) {
        g->notifier = 1;
    }
    return r;
}

static void
mark_notified(glet_t *g)
{
    if (!g->notified) {
        g->notified = 1;
        g->notify_seq = ++notify_counter;
    }
}

/* Records the end and queues the notification, if anyone is to hear of it. Should the hub be
 * gone (its thread ended) or memory short, the joiners are woken here instead (and links are
 * not called, as a hub that is gone runs nothing). */
static void
finish(PyObject *self)
{
    glet_t *g = GLET(self);
    g->finished = 1;
    g->finish_seq = ++finish_counter;
    pc_waitlist_check(&g->joiners);
    if (!has_links(g) && g->joiners.head == NULL && g->watchers == 0) {
        return;
    }
    if (schedule_notify(self) == 0) {
        return;
    }
    PyErr_Clear();
    mark_notified(g);
    pc_waitlist_wake_n(&g->joiners, -1);   /* a plain thread may be joining it */
}

static void
report_result(PyObject *self, PyObject *result)
{
    glet_t *g = GLET(self);
    Py_CLEAR(g->exc_type);
    Py_CLEAR(g->exc_value);
    Py_CLEAR(g->exc_tb);
    Py_XSETREF(g->value, Py_NewRef(result));
    finish(self);
}

/* With the exception that ended self set: GreenletExit is a result, anything else an error,
 * reported to the hub (handle_error), which may send it on to the main greenlet. Clears it. */
static void
report_error(PyObject *self)
{
    glet_t *g = GLET(self);
    pc_state *st = state_of(self);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    if (st != NULL && PyObject_TypeCheck(ev, (PyTypeObject *)st->GreenletExit)) {
        report_result(self, ev);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return;
    }
    Py_XSETREF(g->exc_type, Py_NewRef(et));
    Py_XSETREF(g->exc_value, Py_NewRef(ev));
    Py_XSETREF(g->exc_tb, Py_XNewRef(etb));
    finish(self);
    HubObject *hub = st ? pc_hub_of(st, g->hub) : NULL;
    if (hub == NULL) {
        PyErr_Clear();
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return;
    }
    PyErr_Restore(et, ev, etb);
    if (pc_hub_handle_error(hub, self)) {
        /* A system error goes to the main greenlet now, as gevent's handle_system_error does
         * from a greenlet: thrown into main directly, with a callback queued that switches
         * back here later so that this greenlet can end. */
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        PyObject *main = pc_hub_main(hub);
        PyObject *cur = pc_greenlet_current_or_null();
        if (cur == main || cur == pc_hub_greenlet(hub)) {
            if (pc_hub_schedule_throw(hub, main, ev) < 0) {
                PyErr_WriteUnraisable(self);
            }
        }
        else if (pc_hub_schedule_switch(hub, cur, NULL, NULL) == 0) {
            PyObject *r = pc_greenlet_throw(main, ev);
            if (r == NULL) {
                PyErr_Clear();   /* thrown back at us: nothing to do but end */
            }
            Py_XDECREF(r);
        }
        else {
            PyErr_WriteUnraisable(self);
        }
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
    }
}

/* Forgets what run() needed. */
static void
free_call(glet_t *g)
{
    Py_CLEAR(g->func);
    Py_XSETREF(g->args, PyTuple_New(0));
    if (g->kwargs != NULL) {
        PyDict_Clear(g->kwargs);
    }
}

/* Stops a pending start for good (kill or throw before it ran). */
static void
cancel_start(PyObject *self)
{
    glet_t *g = GLET(self);
    if (g->state == S_NONE || g->state == S_PENDING || g->state == S_TIMER) {
        g->state = S_CANCELLED;
    }
    if (g->start_timer != NULL) {
        PyObject *r = PyObject_CallMethod(g->start_timer, "stop", NULL);
        if (r == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(r);
        Py_CLEAR(g->start_timer);
    }
}

/* An exception instance from gevent's kill/throw argument forms: a class (instantiated), an
 * instance, or a (type, value, tb) triple. New reference, or NULL with an exception. */
static PyObject *
exception_from(PyObject *spec)
{
    if (PyTuple_Check(spec) && PyTuple_GET_SIZE(spec) == 3) {
        PyObject *t = PyTuple_GET_ITEM(spec, 0), *v = PyTuple_GET_ITEM(spec, 1);
        PyObject *tb = PyTuple_GET_ITEM(spec, 2);
        PyObject *inst;
        if (PyExceptionInstance_Check(v)) {
            inst = Py_NewRef(v);
        }
        else {
            inst = v == Py_None ? PyObject_CallNoArgs(t) : PyObject_CallOneArg(t, v);
        }
        if (inst != NULL && tb != Py_None && PyTraceBack_Check(tb)) {
            PyException_SetTraceback(inst, tb);
        }
        return inst;
    }
    if (PyExceptionClass_Check(spec)) {
        return PyObject_CallNoArgs(spec);
    }
    if (PyExceptionInstance_Check(spec)) {
        return Py_NewRef(spec);
    }
    /* gevent wraps anything else in a BaseException */
    return PyObject_CallFunctionObjArgs(PyExc_BaseException, spec, NULL);
}

/* gevent's __handle_death_before_start: a greenlet that will never run gets the exception as
 * its outcome (links notified as if it had raised). spec as exception_from(). 0 or -1. */
static int
death_before_start(PyObject *self, PyObject *spec)
{
    glet_t *g = GLET(self);
    if (g->finished || !is_dead(self)) {
        return 0;
    }
    PyObject *exc = exception_from(spec);
    if (exc == NULL) {
        return -1;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    report_error(self);
    return PyErr_Occurred() ? -1 : 0;
}

/* -- the type --------------------------------------------------------------------------------- */

static int
glet_traverse(PyObject *self, visitproc visit, void *arg)
{
    glet_t *g = GLET(self);
    Py_VISIT(g->func);
    Py_VISIT(g->args);
    Py_VISIT(g->kwargs);
    Py_VISIT(g->value);
    Py_VISIT(g->exc_type);
    Py_VISIT(g->exc_value);
    Py_VISIT(g->exc_tb);
    Py_VISIT(g->links);
    Py_VISIT(g->start_timer);
    Py_VISIT(g->hub);
    return base_traverse(self, visit, arg);
}

static void
clear_data(glet_t *g)
{
    Py_CLEAR(g->func);
    Py_CLEAR(g->args);
    Py_CLEAR(g->kwargs);
    Py_CLEAR(g->value);
    Py_CLEAR(g->exc_type);
    Py_CLEAR(g->exc_value);
    Py_CLEAR(g->exc_tb);
    Py_CLEAR(g->links);
    Py_CLEAR(g->start_timer);
    PyMem_Free(g->stamps);
    g->stamps = NULL;
    g->nstamps = g->capstamps = 0;
}

static int
glet_clear(PyObject *self)
{
    clear_data(GLET(self));
    Py_CLEAR(GLET(self)->hub);
    return base_clear(self);
}

static int
glet_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    pc_state *st = state_of(self);
    if (st == NULL) {
        return -1;
    }
    glet_t *g = GLET(self);
    if (g->hub != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Greenlet.__init__ called twice");
        return -1;
    }
    HubObject *hub = pc_hub_get(st, 1);
    if (hub == NULL) {
        return -1;
    }
    if (pc_greenlet_is_started(self)) {
        PyErr_SetString(PyExc_ValueError, "cannot reinitialise a started greenlet");
        return -1;
    }
    pc_greenlet_set_new_parent(self, pc_hub_greenlet(hub));
    g->hub = Py_NewRef(pc_hub_greenlet(hub));
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *run = NULL;
    if (kwargs != NULL && (run = PyDict_GetItemString(kwargs, "run")) != NULL) {
        if (n > 0) {
            PyErr_SetString(PyExc_TypeError, "__init__() got multiple values for argument 'run'");
            return -1;
        }
        Py_INCREF(run);
        if (PyDict_DelItemString(kwargs, "run") < 0) {
            Py_DECREF(run);
            return -1;
        }
        g->args = PyTuple_New(0);
    }
    else if (n > 0) {
        run = Py_NewRef(PyTuple_GET_ITEM(args, 0));
        g->args = PyTuple_GetSlice(args, 1, n);
    }
    else {
        g->args = PyTuple_New(0);
    }
    if (run == Py_None) {
        Py_CLEAR(run);
    }
    g->func = run;
    /* kwargs and links are made when first needed (most greenlets have neither) */
    g->kwargs = (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) ? PyDict_Copy(kwargs) : NULL;
    g->value = Py_NewRef(Py_None);
    pc_waitlist_init(&g->joiners);
    if (g->args == NULL || (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0 && g->kwargs == NULL)) {
        return -1;
    }
    /* "If they didn't pass a callable at all, then they must already have one." */
    PyObject *check = g->func ? Py_NewRef(g->func) : PyObject_GetAttrString(self, "_run");
    if (check == NULL) {
        return -1;
    }
    int ok = PyCallable_Check(check);
    Py_DECREF(check);
    if (!ok) {
        PyErr_SetString(PyExc_TypeError, "The run argument or self._run must be callable");
        return -1;
    }
    return 0;
}

static int
check_init(PyObject *self)
{
    if (GLET(self)->hub == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%s' object has no attribute 'args' (Greenlet."
                     "__init__ was not called)", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

/* The greenlet's run(): called once, when it is first switched to. */
static PyObject *
glet_run(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    g->state = S_RUNNING;
    Py_CLEAR(g->start_timer);
    PyObject *func = g->func ? Py_NewRef(g->func) : PyObject_GetAttrString(self, "_run");
    PyObject *args = Py_NewRef(g->args), *kwargs = Py_XNewRef(g->kwargs);
    PyObject *r = NULL;
    if (func != NULL) {
        r = PyObject_Call(func, args, (kwargs && PyDict_GET_SIZE(kwargs)) ? kwargs : NULL);
        Py_DECREF(func);
    }
    Py_XDECREF(kwargs);
    Py_DECREF(args);
    if (r == NULL) {
        report_error(self);
    }
    else {
        report_result(self, r);
        Py_DECREF(r);
    }
    free_call(g);
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
glet_default_run(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE;   /* gevent's Greenlet._run: subclasses override it */
}

static PyObject *
glet_start(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->state != S_NONE) {
        Py_RETURN_NONE;
    }
    pc_state *st = state_of(self);
    HubObject *hub = st ? pc_hub_of(st, g->hub) : NULL;
    if (hub == NULL || pc_hub_schedule_start(hub, self) < 0) {
        return NULL;
    }
    g->state = S_PENDING;
    Py_RETURN_NONE;
}

static PyObject *
glet_start_later(PyObject *self, PyObject *seconds)
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->state != S_NONE) {
        Py_RETURN_NONE;
    }
    PyObject *timer = PyObject_CallMethod(g->hub, "timer", "O", seconds);
    if (timer == NULL) {
        return NULL;
    }
    PyObject *sw = PyObject_GetAttrString(self, "switch");
    PyObject *r = sw ? PyObject_CallMethod(timer, "start", "O", sw) : NULL;
    Py_XDECREF(sw);
    if (r == NULL) {
        Py_DECREF(timer);
        return NULL;
    }
    Py_DECREF(r);
    g->start_timer = timer;
    g->state = S_TIMER;
    Py_RETURN_NONE;
}

static PyObject *glet_start(PyObject *self, PyObject *Py_UNUSED(ignored));

static PyObject *
glet_spawn(PyObject *cls, PyObject *args, PyObject *kwargs)
{
    PyObject *self = PyObject_Call(cls, args, kwargs);
    if (self == NULL) {
        return NULL;
    }
    pc_state *st = state_of(self);
    if (st == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    /* start() in C unless a subclass overrides it */
    PyObject *start = PyObject_GetAttr((PyObject *)Py_TYPE(self), st->str_start);
    int ours = start == st->glet_start;
    Py_XDECREF(start);
    PyObject *r = ours ? glet_start(self, NULL) : PyObject_CallMethodNoArgs(self, st->str_start);
    if (r == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(r);
    return self;
}

static PyObject *
glet_spawn_later(PyObject *cls, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "spawn_later() missing 1 required positional argument: "
                        "'seconds'");
        return NULL;
    }
    pc_state *st = pc_state_of_type((PyTypeObject *)cls);
    if (st == NULL) {
        return NULL;
    }
    if ((PyTypeObject *)cls == st->GeventGreenlet_Type && n == 1 &&
            (kwargs == NULL || PyDict_GetItemString(kwargs, "run") == NULL)) {
        PyErr_SetString(PyExc_TypeError, "");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, n);
    PyObject *self = rest ? PyObject_Call(cls, rest, kwargs) : NULL;
    Py_XDECREF(rest);
    if (self == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(self, "start_later", "O", PyTuple_GET_ITEM(args, 0));
    if (r == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(r);
    return self;
}

static PyObject *
glet_ready(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_ready(self));
}

static PyObject *
glet_successful(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    glet_t *g = GLET(self);
    return PyBool_FromLong(g->finished && g->exc_value == NULL);
}

static int
glet_bool(PyObject *self)
{
    glet_t *g = GLET(self);
    return g->state != S_NONE && !g->finished;
}

/* Parks the caller as a joiner of self, with arrival stamp `order`, until the notification
 * wakes it or the deadline passes. PC_WAIT_*. */
static int
park_joiner(glet_t *g, uint32_t order, pc_time_t deadline)
{
    pc_waiter w;
    pc_waiter_init(&w);
    w.order = order;
    pc_waitlist_check(&g->joiners);
    pc_waitlist_link(&g->joiners, &w, 0);
    return pc_waiter_park(&w, deadline);
}

/* Waits until self is ready or the deadline passes. 1 ready, 0 timed out, -1 error. A wait
 * that times out reports so even if self finished meanwhile: its end had not reached the
 * waiter (module comment). */
static int
wait_ready(PyObject *self, pc_time_t rel_ns)
{
    glet_t *g = GLET(self);
    if (rel_ns == 0 && !is_ready(self) && pc_zero_timeout_turns()) {
        rel_ns = PC_ZERO_TURN_NS;   /* gevent's 0-second timer (wait.h) */
    }
    pc_time_t deadline = rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
    while (!is_ready(self)) {
        if (rel_ns == 0) {
            return 0;
        }
        int r = park_joiner(g, ++g->link_serial, deadline);
        if (r == PC_WAIT_ERROR) {
            return -1;
        }
        if (r == PC_WAIT_TIMEOUT) {
            return 0;
        }
    }
    return 1;
}

/* gevent's timeouts: None waits forever; a number is seconds (negative: do not wait). */
static int
parse_timeout(PyObject *timeout, pc_time_t *rel_ns)
{
    if (timeout == NULL || timeout == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(t > 0)) {
        *rel_ns = 0;
    }
    else if (t > 9e9) {
        *rel_ns = -1;
    }
    else {
        *rel_ns = (pc_time_t)(t * 1e9);
        if (*rel_ns == 0) {
            *rel_ns = 1;
        }
    }
    return 0;
}

/* gevent's waits take a Timeout instance as their timeout too: it is started (unless already
 * pending), the wait has no deadline of its own, and the Timeout raises whatever it raises when
 * it fires. *timer receives the Timeout to cancel afterwards (new reference), or NULL when the
 * timeout was a number or None. 0 or -1. */
static int
timeout_begin(PyObject *self, PyObject *timeout, pc_time_t *rel, PyObject **timer)
{
    *timer = NULL;
    pc_state *st = state_of(self);
    if (st == NULL) {
        return -1;
    }
    if (timeout != NULL && st->GeventTimeout != NULL &&
            PyObject_TypeCheck(timeout, (PyTypeObject *)st->GeventTimeout)) {
        PyObject *r = PyObject_CallMethod(st->GeventTimeout, "start_new", "O", timeout);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        *timer = Py_NewRef(timeout);
        *rel = -1;
        return 0;
    }
    return parse_timeout(timeout, rel);
}

/* Cancels a Timeout that timeout_begin started, keeping any exception set. */
static void
timeout_end(PyObject *timer)
{
    if (timer == NULL) {
        return;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *r = PyObject_CallMethod(timer, "cancel", NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(timer);
    }
    Py_XDECREF(r);
    Py_DECREF(timer);
    PyErr_Restore(et, ev, etb);
}

static PyObject *
glet_join(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *a[1], *timer;
    pc_time_t rel;
    if (pc_parse_args("join", args, nargs, kwnames, names, 1, a) < 0 ||
            check_init(self) < 0) {
        return NULL;
    }
    if (is_ready(self)) {
        Py_RETURN_NONE;
    }
    if (timeout_begin(self, a[0], &rel, &timer) < 0) {
        return NULL;
    }
    int r = wait_ready(self, rel);
    timeout_end(timer);
    if (r < 0) {
        /* the join's own Timeout instance firing is not an error: join returns quietly */
        pc_state *st = state_of(self);
        if (timer != NULL && st != NULL && PyErr_Occurred()) {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            if (ev == a[0]) {
                Py_XDECREF(et);
                Py_XDECREF(ev);
                Py_XDECREF(etb);
                Py_RETURN_NONE;
            }
            PyErr_Restore(et, ev, etb);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
raise_outcome(PyObject *self)
{
    glet_t *g = GLET(self);
    if (g->exc_value == NULL) {
        return Py_NewRef(g->value);
    }
    PyErr_Restore(Py_NewRef(g->exc_type), Py_NewRef(g->exc_value), Py_XNewRef(g->exc_tb));
    return NULL;
}

static PyObject *
raise_timeout(PyObject *self, PyObject *seconds)
{
    pc_state *st = state_of(self);
    if (st == NULL) {
        return NULL;
    }
    if (st->GeventTimeout == NULL) {
        PyErr_SetString(PyExc_TimeoutError, "");
        return NULL;
    }
    PyObject *exc = seconds ? PyObject_CallOneArg(st->GeventTimeout, seconds)
                            : PyObject_CallNoArgs(st->GeventTimeout);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
glet_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"block", "timeout"};
    PyObject *a[2];
    if (pc_parse_args("get", args, nargs, kwnames, names, 2, a) < 0 || check_init(self) < 0) {
        return NULL;
    }
    if (is_ready(self)) {
        return raise_outcome(self);
    }
    int block = 1;
    if (a[0] != NULL && (block = PyObject_IsTrue(a[0])) < 0) {
        return NULL;
    }
    if (!block) {
        return raise_timeout(self, NULL);
    }
    pc_time_t rel;
    PyObject *timer;
    if (timeout_begin(self, a[1], &rel, &timer) < 0) {
        return NULL;
    }
    int r = wait_ready(self, rel);
    timeout_end(timer);
    if (r < 0) {
        return NULL;
    }
    if (r == 0) {
        return raise_timeout(self, a[1]);
    }
    return raise_outcome(self);
}

static PyObject *
glet_maybe_kill_before_start(PyObject *self, PyObject *exception)
{
    if (check_init(self) < 0) {
        return NULL;
    }
    cancel_start(self);
    free_call(GLET(self));
    int dead = is_dead(self);
    if (dead && death_before_start(self, exception) < 0) {
        return NULL;
    }
    return PyBool_FromLong(dead);
}

static PyObject *
glet_kill(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"exception", "block", "timeout"};
    PyObject *a[3];
    if (pc_parse_args("kill", args, nargs, kwnames, names, 3, a) < 0 || check_init(self) < 0) {
        return NULL;
    }
    pc_state *st = state_of(self);
    if (st == NULL) {
        return NULL;
    }
    PyObject *spec = a[0] ? a[0] : st->GreenletExit;
    PyObject *dead = glet_maybe_kill_before_start(self, spec);
    if (dead == NULL) {
        return NULL;
    }
    int was_dead = dead == Py_True;
    Py_DECREF(dead);
    if (was_dead || is_ready(self)) {
        Py_RETURN_NONE;
    }
    int block = 1;
    if (a[1] != NULL && (block = PyObject_IsTrue(a[1])) < 0) {
        return NULL;
    }
    pc_time_t rel;
    if (parse_timeout(a[2], &rel) < 0) {
        return NULL;
    }
    PyObject *exc = exception_from(spec);
    HubObject *hub = exc ? pc_hub_of(st, GLET(self)->hub) : NULL;
    int r = hub ? pc_hub_schedule_throw(hub, self, exc) : -1;
    Py_XDECREF(exc);
    if (r < 0) {
        return NULL;
    }
    if (!block) {
        Py_RETURN_NONE;
    }
    if (hub == pc_hub_get(st, 0) && pc_zero_timeout_turns()) {
        /* gevent's kill waits for its throw callback, which switches back at once, and only
         * then joins: queued right behind the throw, the caller runs again before what the
         * throw made ready -- the notification of the end among it (a greenlet of the same
         * hub; another thread or hub just waits for the end) */
        if (pc_hub_sleep(st, 0) < 0) {
            return NULL;
        }
        if (is_ready(self)) {
            Py_RETURN_NONE;
        }
    }
    if (wait_ready(self, rel) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
glet_throw(PyObject *self, PyObject *args)
{
    if (check_init(self) < 0) {
        return NULL;
    }
    pc_state *st = state_of(self);
    if (st == NULL) {
        return NULL;
    }
    cancel_start(self);
    PyObject *r = Py_NewRef(Py_None);
    if (!is_dead(self)) {
        /* greenlet.throw(self, *args): the base method, self first */
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        PyObject *full = PyTuple_New(n + 1);
        if (full == NULL) {
            Py_DECREF(r);
            return NULL;
        }
        PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
        for (Py_ssize_t i = 0; i < n; i++) {
            PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
        }
        Py_DECREF(r);
        r = PyObject_Call(st->greenlet_throw, full, NULL);
        Py_DECREF(full);
    }
    /* finally: a greenlet that never ran gets the exception as its outcome */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *spec = n == 0 ? Py_NewRef(st->GreenletExit)
                   : n == 1 ? Py_NewRef(PyTuple_GET_ITEM(args, 0))
                   : PyTuple_Pack(3, PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1),
                                  n > 2 ? PyTuple_GET_ITEM(args, 2) : Py_None);
    if (spec == NULL || death_before_start(self, spec) < 0) {
        PyErr_WriteUnraisable(self);
    }
    Py_XDECREF(spec);
    if (et != NULL) {
        Py_XDECREF(r);
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    return r;
}

static PyObject *
glet_rawlink(PyObject *self, PyObject *callback)
{
    if (check_init(self) < 0) {
        return NULL;
    }
    if (!PyCallable_Check(callback)) {
        PyErr_Format(PyExc_TypeError, "Expected callable: %R", callback);
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->links == NULL && (g->links = PyList_New(0)) == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(g->links);
    if (n == 0) {
        g->nstamps = 0;   /* back in step, should the list have been changed behind our back */
    }
    if (g->nstamps == n && n == g->capstamps) {
        Py_ssize_t cap = n < 4 ? 4 : n * 2;
        uint32_t *a = PyMem_Realloc(g->stamps, (size_t)cap * sizeof(*a));
        if (a == NULL) {
            return PyErr_NoMemory();
        }
        g->stamps = a;
        g->capstamps = cap;
    }
    if (PyList_Append(g->links, callback) < 0) {
        return NULL;
    }
    uint32_t stamp = ++g->link_serial;
    if (g->nstamps == n) {
        g->stamps[g->nstamps++] = stamp;
    }
    if (is_ready(self) && schedule_notify(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
glet_unlink(PyObject *self, PyObject *callback)
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->links == NULL) {
        Py_RETURN_NONE;
    }
    /* list.remove's search (the first equal one), keeping its stamp in step */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(g->links); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(g->links, i));
        int eq = PyObject_RichCompareBool(item, callback, Py_EQ);
        Py_DECREF(item);
        if (eq < 0) {
            return NULL;
        }
        if (eq) {
            Py_ssize_t n = PyList_GET_SIZE(g->links);
            if (PyList_SetSlice(g->links, i, i + 1, NULL) < 0) {
                return NULL;
            }
            if (g->nstamps == n) {
                memmove(g->stamps + i, g->stamps + i + 1,
                        (size_t)(n - i - 1) * sizeof(*g->stamps));
                g->nstamps--;
            }
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
glet_unlink_all(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    if (GLET(self)->links != NULL &&
            PyList_SetSlice(GLET(self)->links, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        return NULL;
    }
    GLET(self)->nstamps = 0;
    Py_RETURN_NONE;
}

static PyObject *
glet_has_links(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    PyObject *links = GLET(self)->links;
    return PyBool_FromLong(links != NULL && PyList_GET_SIZE(links) > 0);   /* gevent's: a bool */
}

/* Calls the first link (popped with its stamp) with self; what it raises is reported by the hub
 * with the context (link, self), a system error then going to the main greenlet. -1 if it could
 * not be popped (reported as unraisable). */
static int
call_first_link(PyObject *self, HubObject *hub)
{
    glet_t *g = GLET(self);
    Py_ssize_t n = PyList_GET_SIZE(g->links);
    PyObject *link = Py_NewRef(PyList_GET_ITEM(g->links, 0));
    if (PyList_SetSlice(g->links, 0, 1, NULL) < 0) {
        PyErr_WriteUnraisable(self);
        Py_DECREF(link);
        return -1;
    }
    if (g->nstamps == n) {
        memmove(g->stamps, g->stamps + 1, (size_t)(n - 1) * sizeof(*g->stamps));
        g->nstamps--;
    }
    PyObject *r = PyObject_CallOneArg(link, self);
    if (r == NULL) {
        PyObject *ctx = PyTuple_Pack(2, link, self);
        if (ctx != NULL && hub != NULL && pc_hub_handle_error(hub, ctx)) {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            PyErr_NormalizeException(&et, &ev, &etb);
            if (pc_hub_schedule_throw(hub, pc_hub_main(hub), ev) < 0) {
                PyErr_Clear();
            }
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
        }
        PyErr_Clear();
        Py_XDECREF(ctx);
    }
    Py_XDECREF(r);
    Py_DECREF(link);
    return 0;
}

/* The notification (hub.c's N_NOTIFY, gevent's _notify_links): the joiners and links, one at a
 * time in arrival order -- each may add or remove later ones. A joiner of this hub is resumed
 * from here (pc_hub_resume_now), any other woken. */
void
pc_glet_notify(PyObject *self)
{
    glet_t *g = GLET(self);
    pc_state *st = state_of(self);
    HubObject *hub = st ? pc_hub_of(st, g->hub) : NULL;
    if (hub == NULL) {
        PyErr_Clear();
    }
    if (g->finished) {
        mark_notified(g);
    }
    for (;;) {
        pc_waitlist_check(&g->joiners);
        /* joiners wait for the end: none is woken by a call before it (_notify_links) */
        pc_waiter *j = g->finished ? g->joiners.head : NULL;
        Py_ssize_t n = g->links != NULL ? PyList_GET_SIZE(g->links) : 0;
        if (j == NULL && n == 0) {
            break;
        }
        if (j != NULL && (n == 0 || (g->nstamps == n && stamp_before(j->order, g->stamps[0])))) {
            if (!pc_hub_resume_now(j)) {
                pc_waiter_wake(j);
            }
        }
        else if (call_first_link(self, hub) < 0) {
            break;
        }
    }
    g->notifier = 0;
}

void
pc_glet_notify_dropped(PyObject *self)
{
    glet_t *g = GLET(self);
    g->notifier = 0;
    if (g->finished) {
        mark_notified(g);
        pc_waitlist_wake_n(&g->joiners, -1);
    }
}

static PyObject *
glet_notify_links(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    pc_glet_notify(self);
    Py_RETURN_NONE;
}

static PyObject *
glet_raise_exception(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    glet_t *g = GLET(self);
    if (g->exc_value == NULL) {
        Py_RETURN_NONE;
    }
    return raise_outcome(self);
}

/* -- attributes -- */

#define OBJ_GETSET(name)                                                                      \
    static PyObject *glet_get_##name(PyObject *self, void *Py_UNUSED(c))                      \
    {                                                                                         \
        if (check_init(self) < 0) {                                                           \
            return NULL;                                                                      \
        }                                                                                     \
        return Py_NewRef(GLET(self)->name ? GLET(self)->name : Py_None);                      \
    }                                                                                         \
    static int glet_set_##name(PyObject *self, PyObject *v, void *Py_UNUSED(c))               \
    {                                                                                         \
        if (check_init(self) < 0) {                                                           \
            return -1;                                                                        \
        }                                                                                     \
        if (v == NULL) {                                                                      \
            PyErr_SetString(PyExc_AttributeError, "cannot delete attribute " #name);           \
            return -1;                                                                        \
        }                                                                                     \
        Py_XSETREF(GLET(self)->name, Py_NewRef(v));                                           \
        return 0;                                                                             \
    }

OBJ_GETSET(args)
OBJ_GETSET(value)

static PyObject *
glet_get_kwargs(PyObject *self, void *Py_UNUSED(c))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->kwargs == NULL && (g->kwargs = PyDict_New()) == NULL) {
        return NULL;
    }
    return Py_NewRef(g->kwargs);
}

static int
glet_set_kwargs(PyObject *self, PyObject *v, void *Py_UNUSED(c))
{
    if (check_init(self) < 0) {
        return -1;
    }
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute kwargs");
        return -1;
    }
    Py_XSETREF(GLET(self)->kwargs, Py_NewRef(v));
    return 0;
}

static PyObject *
glet_get_exception(PyObject *self, void *Py_UNUSED(c))
{
    glet_t *g = GLET(self);
    return Py_NewRef(g->exc_value ? g->exc_value : Py_None);
}

static PyObject *
glet_get_exc_info(PyObject *self, void *Py_UNUSED(c))
{
    glet_t *g = GLET(self);
    if (g->exc_value == NULL) {
        Py_RETURN_NONE;
    }
    return PyTuple_Pack(3, g->exc_type, g->exc_value, g->exc_tb ? g->exc_tb : Py_None);
}

static PyObject *
glet_get_raw_exc_info(PyObject *self, void *Py_UNUSED(c))
{
    glet_t *g = GLET(self);
    if (!g->finished) {
        Py_RETURN_NONE;
    }
    if (g->exc_value == NULL) {
        return PyTuple_Pack(3, Py_None, Py_None, Py_None);
    }
    return PyTuple_Pack(3, g->exc_type, g->exc_value, g->exc_tb ? g->exc_tb : Py_None);
}

static PyObject *
glet_get_dead(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(is_dead(self));
}

static PyObject *
glet_get_started(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(glet_bool(self));
}

static PyObject *
glet_get_links(PyObject *self, void *Py_UNUSED(c))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    glet_t *g = GLET(self);
    if (g->links == NULL && (g->links = PyList_New(0)) == NULL) {
        return NULL;
    }
    return Py_NewRef(g->links);
}

static PyObject *
glet_get_loop(PyObject *self, void *Py_UNUSED(c))
{
    if (check_init(self) < 0) {
        return NULL;
    }
    return Py_NewRef(GLET(self)->hub);
}

static PyObject *
glet_get_run_attr(PyObject *self, void *Py_UNUSED(c))
{
    glet_t *g = GLET(self);
    if (g->func != NULL) {
        return Py_NewRef(g->func);
    }
    /* no run argument: the class's _run (the default one returns None) */
    PyObject *meth = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_default_run");
    if (meth == NULL) {
        return NULL;
    }
    PyObject *bound = PyMethod_New(meth, self);
    Py_DECREF(meth);
    return bound;
}

static int
glet_set_run_attr(PyObject *self, PyObject *v, void *Py_UNUSED(c))
{
    Py_XSETREF(GLET(self)->func, Py_XNewRef(v));
    return 0;
}

static PyObject *
glet_get_finish_seq(PyObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(GLET(self)->finish_seq);
}

static PyObject *
glet_get_pending_start(PyObject *self, void *Py_UNUSED(c))
{
    int s = GLET(self)->state;
    return PyBool_FromLong(s == S_PENDING || s == S_TIMER);
}

static PyMethodDef glet_methods[] = {
    {"run", (PyCFunction)glet_run, METH_NOARGS, NULL},
    {"_default_run", (PyCFunction)glet_default_run, METH_NOARGS, NULL},
    {"start", (PyCFunction)glet_start, METH_NOARGS,
     "Schedule the greenlet to run in this loop iteration"},
    {"start_later", (PyCFunction)glet_start_later, METH_O,
     "start_later(seconds): schedule the greenlet to run seconds later"},
    {"spawn", (PyCFunction)(void (*)(void))glet_spawn, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "spawn(function, *args, **kwargs) -> Greenlet"},
    {"spawn_later", (PyCFunction)(void (*)(void))glet_spawn_later,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "spawn_later(seconds, function, *args, **kwargs) -> Greenlet"},
    {"ready", (PyCFunction)glet_ready, METH_NOARGS, NULL},
    {"successful", (PyCFunction)glet_successful, METH_NOARGS, NULL},
    {"join", (PyCFunction)(void (*)(void))glet_join, METH_FASTCALL | METH_KEYWORDS,
     "join(timeout=None): wait until the greenlet finishes or the timeout expires"},
    {"get", (PyCFunction)(void (*)(void))glet_get, METH_FASTCALL | METH_KEYWORDS,
     "get(block=True, timeout=None): the result, or the exception raised again"},
    {"kill", (PyCFunction)(void (*)(void))glet_kill, METH_FASTCALL | METH_KEYWORDS,
     "kill(exception=GreenletExit, block=True, timeout=None)"},
    {"throw", (PyCFunction)glet_throw, METH_VARARGS, NULL},
    {"_maybe_kill_before_start", (PyCFunction)glet_maybe_kill_before_start, METH_O, NULL},
    {"rawlink", (PyCFunction)glet_rawlink, METH_O, NULL},
    {"unlink", (PyCFunction)glet_unlink, METH_O, NULL},
    {"unlink_all", (PyCFunction)glet_unlink_all, METH_NOARGS, NULL},
    {"has_links", (PyCFunction)glet_has_links, METH_NOARGS, NULL},
    {"_notify_links", (PyCFunction)glet_notify_links, METH_NOARGS, NULL},
    {"_raise_exception", (PyCFunction)glet_raise_exception, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef glet_getset[] = {
    {"args", glet_get_args, glet_set_args, NULL, NULL},
    {"kwargs", glet_get_kwargs, glet_set_kwargs, NULL, NULL},
    {"value", glet_get_value, glet_set_value, NULL, NULL},
    {"exception", glet_get_exception, NULL, NULL, NULL},
    {"exc_info", glet_get_exc_info, NULL, NULL, NULL},
    {"_exc_info", glet_get_raw_exc_info, NULL, NULL, NULL},
    {"dead", glet_get_dead, NULL, NULL, NULL},
    {"started", glet_get_started, NULL, NULL, NULL},
    {"_links", glet_get_links, NULL, NULL, NULL},
    {"loop", glet_get_loop, NULL, NULL, NULL},
    {"_run", glet_get_run_attr, glet_set_run_attr, NULL, NULL},
    {"_finish_seq", glet_get_finish_seq, NULL, NULL, NULL},
    {"_start_pending", glet_get_pending_start, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot glet_slots[] = {
    {Py_tp_init, glet_init},
    {Py_tp_traverse, glet_traverse},
    {Py_tp_clear, glet_clear},
    {Py_nb_bool, glet_bool},
    {Py_tp_methods, glet_methods},
    {Py_tp_getset, glet_getset},
    {Py_tp_doc, "Greenlet(run=None, *args, **kwargs): gevent's Greenlet"},
    {0, NULL},
};

static PyType_Spec glet_spec = {
    .name = "pyconc._core.Greenlet",
    .basicsize = 0,   /* set at init: the greenlet type's size + sizeof(glet_t) */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = glet_slots,
};

/* _core._set_gevent_class(name, cls): pyconc.gevent's classes the core raises -- "Timeout"
 * (Greenlet.get) and "LoopExit" (a subclass of _core.LoopExit with gevent's repr). */
static PyObject *
m_set_gevent_class(PyObject *module, PyObject *args)
{
    const char *name;
    PyObject *cls;
    if (!PyArg_ParseTuple(args, "sO:_set_gevent_class", &name, &cls)) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (strcmp(name, "Timeout") == 0) {
        Py_XSETREF(st->GeventTimeout, Py_NewRef(cls));
    }
    else if (strcmp(name, "LoopExit") == 0) {
        Py_XSETREF(st->GeventLoopExit, Py_NewRef(cls));
    }
    else {
        PyErr_Format(PyExc_ValueError, "unknown class name %s", name);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* wait_greenlets(greenlets, timeout=None): gevent's wait/joinall without a count (the face
 * handles counts and other objects). gevent links the wait to every greenlet at its start and
 * hears of each through its notification; so here every one not finished yet is watched from the
 * start (its notification queued even if nobody else joins it, and the wait's arrival stamp
 * taken then), and the wait returns once each one's notification has run, or the timeout passed
 * -- a greenlet that finished but was not notified by then is not reported. Returns the ones
 * finished before the wait began (input order), then the others in the order they were
 * notified. */
typedef struct {
    uint64_t key;
    Py_ssize_t pos;
    PyObject *obj;
} wait_entry;

static int
wait_entry_cmp(const void *pa, const void *pb)
{
    const wait_entry *a = pa, *b = pb;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

typedef struct {
    int watched;              /* not finished at the start: waited for */
    uint32_t stamp;           /* its arrival stamp among the greenlet's links */
} wait_slot;

static PyObject *
m_wait_greenlets(PyObject *module, PyObject *args)
{
    PyObject *seq, *timeout = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:wait_greenlets", &seq, &timeout)) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    PyObject *list = PySequence_List(seq);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    pc_time_t rel;
    if (parse_timeout(timeout, &rel) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyObject_TypeCheck(PyList_GET_ITEM(list, i), st->GeventGreenlet_Type)) {
            PyErr_SetString(PyExc_TypeError, "wait_greenlets() takes Greenlets only");
            Py_DECREF(list);
            return NULL;
        }
    }
    if (n > 0 && pc_hub != NULL && pc_hub->can_yield() > 0) {
        /* gevent's wait() hears of every object through its hub, even of one that is ready
         * already: from the notification queued for it (a link's, or an end's not run yet),
         * else from one its link queues now, last -- so what was queued before runs first */
        int all_ready = 1, fresh = 0;
        for (Py_ssize_t i = 0; i < n && all_ready; i++) {
            PyObject *o = PyList_GET_ITEM(list, i);
            all_ready = is_ready(o);
            fresh |= !GLET(o)->notifier;
        }
        if (all_ready && fresh && pc_hub_sleep(st, 0) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n && all_ready && !fresh; i++) {
            /* each one's queued notification resumes us in our place among its links (once:
             * a notification that is running resumes us at once) */
            glet_t *g = GLET(PyList_GET_ITEM(list, i));
            if (g->notifier && g->finished &&
                    park_joiner(g, ++g->link_serial, PC_FOREVER) == PC_WAIT_ERROR) {
                Py_DECREF(list);
                return NULL;
            }
        }
    }
    wait_slot *slots = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(wait_slot));
    if (slots == NULL) {
        Py_DECREF(list);
        return PyErr_NoMemory();
    }
    int waits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyList_GET_ITEM(list, i);
        glet_t *g = GLET(o);
        if (!is_ready(o)) {
            slots[i].watched = 1;
            slots[i].stamp = ++g->link_serial;
            g->watchers++;
            waits = 1;
        }
    }
    /* a timeout of 0: one turn of the hub for a greenlet (wait.h), no wait for a thread */
    pc_time_t deadline = rel < 0 ? PC_FOREVER : pc_deadline_after(rel);
    if (rel == 0) {
        if (pc_zero_timeout_turns()) {
            deadline = pc_deadline_after(PC_ZERO_TURN_NS);
        }
        else {
            waits = 0;
        }
    }
    int err = 0;
    for (Py_ssize_t i = 0; i < n && waits; i++) {
        glet_t *g = GLET(PyList_GET_ITEM(list, i));
        while (slots[i].watched && !g->notified) {
            int r = park_joiner(g, slots[i].stamp, deadline);
            if (r == PC_WAIT_ERROR) {
                err = 1;
            }
            if (r != PC_WAIT_WOKEN) {
                waits = 0;
                break;
            }
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (slots[i].watched) {
            GLET(PyList_GET_ITEM(list, i))->watchers--;
        }
    }
    /* the ones done before the wait in input order, then in the order they were notified: a
     * sort by (key, position), O(m log m) -- 10,000 greenlets that finish in random order are
     * common */
    wait_entry *ents = err ? NULL : PyMem_Malloc((n > 0 ? (size_t)n : 1) * sizeof(wait_entry));
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n && ents != NULL; i++) {
        PyObject *o = PyList_GET_ITEM(list, i);
        glet_t *g = GLET(o);
        if (!slots[i].watched || g->notified) {
            ents[m].key = slots[i].watched ? g->notify_seq : 0;
            ents[m].pos = i;
            ents[m].obj = o;
            m++;
        }
    }
    PyMem_Free(slots);
    if (ents == NULL) {
        Py_DECREF(list);
        return err ? NULL : PyErr_NoMemory();
    }
    qsort(ents, (size_t)m, sizeof(wait_entry), wait_entry_cmp);
    PyObject *out = PyList_New(m);
    for (Py_ssize_t i = 0; i < m && out != NULL; i++) {
        PyList_SET_ITEM(out, i, Py_NewRef(ents[i].obj));
    }
    PyMem_Free(ents);
    Py_DECREF(list);
    return out;
}

static PyMethodDef glet_module_methods[] = {
    {"_set_gevent_class", m_set_gevent_class, METH_VARARGS, NULL},
    {"wait_greenlets", m_wait_greenlets, METH_VARARGS,
     "wait_greenlets(greenlets, timeout=None): the finished ones, in finish order"},
    {NULL, NULL, 0, NULL},
};

int
pc_glet_init_types(PyObject *module, pc_state *st)
{
    glet_offset = st->Greenlet_Type->tp_basicsize;
    base_traverse = st->Greenlet_Type->tp_traverse;
    base_clear = st->Greenlet_Type->tp_clear;
    glet_spec.basicsize = (int)(glet_offset + sizeof(glet_t));
    if (pc_add_type(module, &glet_spec, (PyObject *)st->Greenlet_Type,
                    &st->GeventGreenlet_Type) < 0) {
        return -1;
    }
    st->greenlet_throw = PyObject_GetAttrString((PyObject *)st->Greenlet_Type, "throw");
    st->str_start = PyUnicode_InternFromString("start");
    st->glet_start = st->str_start ? PyObject_GetAttr((PyObject *)st->GeventGreenlet_Type,
                                                      st->str_start) : NULL;
    if (st->greenlet_throw == NULL || st->glet_start == NULL) {
        return -1;
    }
    return PyModule_AddFunctions(module, glet_module_methods);
}
