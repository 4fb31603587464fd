/* gselect.c -- pyconc.gevent.select: gevent's select() and poll, cooperative.
 *
 * gevent's semantics, which differ from the stdlib's on purpose:
 *   - select(rlist, wlist, xlist, timeout): a negative timeout is ValueError; the real select()
 *     runs first with a zero timeout (bad descriptors raise its errors); if it found something,
 *     or the timeout is 0, the caller yields one hub turn and gets those results. Otherwise it
 *     waits, xlist ignored, and gets the objects of rlist / wlist that became ready (an error or
 *     hang-up counts as both readable and writable, as libev reports it), in list order.
 *   - poll(): register(fd, eventmask=POLLIN|POLLOUT) keeps {fd: read/write flags} (modify is
 *     register; unregister of an unknown fd is KeyError(fd)); poll(timeout) in milliseconds
 *     (negative or None: forever) reports (fd, POLLIN/POLLOUT/both) for what became ready, and
 *     (fd, POLLNVAL) for a descriptor that is not open -- which does not end the wait.
 *   - a regular file (which epoll refuses) is always ready, as libev says.
 *
 * How it waits (iowait.h): the descriptors go into a private epoll instance for the call
 * (closed before the call returns), and the caller waits for that instance to become readable:
 * a greenlet that may yield parks on its hub, a thread without a hub blocks in poll() with the GIL
 * released. Many greenlets may select on the same descriptors at once: each has its own instance.
 *
 * All state is GIL-protected; a poll object holds only its dict of registrations.
 */
#include "iowait.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sys/epoll.h>
#include <unistd.h>

#define GEV_READ 1            /* gevent's _EV_READ */
#define GEV_WRITE 2           /* gevent's _EV_WRITE */
#define G_POLLIN 1
#define G_POLLOUT 4
#define G_POLLNVAL 32

/* One descriptor of a wait: the object the caller gave, its fd, and what it waits for. */
typedef struct {
    PyObject *obj;            /* select: the list item; poll: the dict key (strong) */
    int fd;
    int flags;                /* GEV_READ | GEV_WRITE */
    int state;                /* 0 watched; 1 always ready (regular file); 2 not open (EBADF) */
    uint32_t fired;           /* epoll events seen for fd at the last check */
} went_t;

typedef struct {
    went_t *e;
    Py_ssize_t n, cap;
    int ep;                   /* the private epoll instance, -1 before it is made */
} wset_t;

static void
wset_free(wset_t *w)
{
    for (Py_ssize_t i = 0; i < w->n; i++) {
        Py_DECREF(w->e[i].obj);
    }
    PyMem_Free(w->e);
    if (w->ep >= 0) {
        close(w->ep);
    }
    w->e = NULL;
    w->n = w->cap = 0;
    w->ep = -1;
}

/* Adds obj (fd, flags) to the wait: epoll interest is the union over the entries of one fd.
 * 0, or -1 with the exception. */
static int
wset_add(wset_t *w, PyObject *obj, int fd, int flags)
{
    if (w->ep < 0) {
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    if (w->n == w->cap) {
        Py_ssize_t cap = w->cap ? w->cap * 2 : 8;
        went_t *e = PyMem_Realloc(w->e, (size_t)cap * sizeof(went_t));
        if (e == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->e = e;
        w->cap = cap;
    }
    went_t *e = &w->e[w->n++];
    e->obj = Py_NewRef(obj);
    e->fd = fd;
    e->flags = flags;
    e->state = 0;
    e->fired = 0;
    if ((flags & (GEV_READ | GEV_WRITE)) == 0) {
        /* a watcher for no events never fires; gevent still checks that fd is open */
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            e->state = 2;
        }
        return 0;
    }
    uint32_t want = 0;
    int seen = 0;
    for (Py_ssize_t i = 0; i < w->n; i++) {
        if (w->e[i].fd == fd && w->e[i].state == 0) {
            want |= ((w->e[i].flags & GEV_READ) ? EPOLLIN : 0) |
                    ((w->e[i].flags & GEV_WRITE) ? EPOLLOUT : 0);
            seen += i < w->n - 1;
        }
    }
    struct epoll_event ev = {.events = want, .data.fd = fd};
    if (epoll_ctl(w->ep, seen ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) {
        return 0;
    }
    if (errno == EPERM) {
        e->state = 1;   /* a regular file */
        return 0;
    }
    if (errno == EBADF || errno == ENOENT || (errno == EINVAL && fd == w->ep)) {
        /* not open (ENOENT: closed since an earlier entry added it; EINVAL: its number was
         * free, and is now this very epoll instance's) */
        e->state = 2;
        return 0;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Reads what is ready now into the entries' `fired`. Returns how many entries count as ready
 * (readable: in, error, hang-up; writable: out, error, hang-up; always-ready files), not counting
 * the ones that are not open. -1 with OSError. */
static Py_ssize_t
wset_check(wset_t *w)
{
    for (Py_ssize_t i = 0; i < w->n; i++) {
        w->e[i].fired = 0;
    }
    Py_ssize_t ready = 0;
    if (w->ep >= 0 && w->n > 0) {
        struct epoll_event stackev[64], *evs = stackev;
        int cap = w->n > 64 ? (w->n > INT_MAX / 2 ? INT_MAX / 2 : (int)w->n) : 64;
        if (cap > 64 && (evs = PyMem_Malloc((size_t)cap * sizeof(*evs))) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        int n;
        while ((n = epoll_wait(w->ep, evs, cap, 0)) < 0) {
            if (errno != EINTR) {
                PyErr_SetFromErrno(PyExc_OSError);
                break;
            }
            if (PyErr_CheckSignals() < 0) {
                break;
            }
        }
        for (int k = 0; k < n; k++) {
            for (Py_ssize_t i = 0; i < w->n; i++) {
                if (w->e[i].fd == evs[k].data.fd && w->e[i].state == 0) {
                    w->e[i].fired |= evs[k].events;
                }
            }
        }
        if (evs != stackev) {
            PyMem_Free(evs);
        }
        if (n < 0) {
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < w->n; i++) {
        went_t *e = &w->e[i];
        uint32_t f = e->fired;
        int r = (e->flags & GEV_READ) && (f & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
        int wr = (e->flags & GEV_WRITE) && (f & (EPOLLOUT | EPOLLERR | EPOLLHUP));
        if (e->state == 1) {
            r = (e->flags & GEV_READ) != 0;
            wr = (e->flags & GEV_WRITE) != 0;
        }
        e->fired = (uint32_t)((r ? GEV_READ : 0) | (wr ? GEV_WRITE : 0));
        ready += e->fired != 0;
    }
    return ready;
}

/* Waits until an entry is ready or the deadline passes (PC_FOREVER: no deadline), then leaves
 * the readiness in the entries. zero_turn: with nothing ready, a hub caller still yields one
 * turn (gevent's Event.wait(0)). Returns 0, or -1 with the exception. */
static int
wset_wait(pc_state *st, wset_t *w, pc_time_t deadline)
{
    Py_ssize_t ready = wset_check(w);
    if (ready < 0) {
        return -1;
    }
    pc_io_caller c;
    pc_io_caller_get(st, &c);
    if (ready > 0 || (deadline != PC_FOREVER && deadline <= pc_monotonic_ns())) {
        /* gevent reports even what is ready now from its loop: one hub turn for the others */
        if (c.hub != NULL) {
            /* gevent's poll waits for its result event, with a 0-second timeout when nothing
             * is ready (wait.h): a Timeout armed before it fires first, ready or not */
            if (pc_hub_zero_turn(st) < 0) {
                return -1;
            }
            return wset_check(w) < 0 ? -1 : 0;
        }
        return pc_io_may_block(&c);
    }
    if (pc_io_may_block(&c) < 0) {
        return -1;
    }
    if (w->ep < 0) {
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    for (;;) {
        int r = pc_io_wait_readable(st, &c, w->ep, deadline);
        if (r < 0) {
            return -1;
        }
        ready = wset_check(w);
        if (ready < 0) {
            return -1;
        }
        if (ready > 0 || r == 0) {
            return 0;
        }
    }
}

/* gevent's Event.wait(timeout) deadline: None forever, else seconds. */
static int
event_deadline(PyObject *timeout, pc_time_t *deadline)
{
    if (timeout == NULL || timeout == Py_None) {
        *deadline = PC_FOREVER;
        return 0;
    }
    double d = PyFloat_AsDouble(timeout);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(d) || d >= 9e9) {
        *deadline = PC_FOREVER;
    }
    else {
        *deadline = pc_deadline_after(d <= 0 ? 0 : (pc_time_t)ceil(d * 1e9));
    }
    return 0;
}

/* The C int of a descriptor object that get_fileno accepted. */
static int
c_fd(PyObject *fdobj, int *fd)
{
    return pc_as_c_int(fdobj, fd);
}

/* -- select ------------------------------------------------------------------------------------ */

static int
add_list(wset_t *w, PyObject *seq, int flags)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *fdobj = pc_io_fileobj_to_fd(obj);
        if (fdobj == NULL) {
            return -1;
        }
        int fd;
        int r = c_fd(fdobj, &fd);
        Py_DECREF(fdobj);
        if (r < 0 || wset_add(w, obj, fd, flags) < 0) {
            return -1;
        }
    }
    return 0;
}

/* SelectResult.select(rlist, wlist, timeout): (read, write, []) of what became ready. */
static PyObject *
select_wait(pc_state *st, PyObject *rlist, PyObject *wlist, PyObject *timeout)
{
    wset_t w = {NULL, 0, 0, -1};
    PyObject *rd = NULL, *wr = NULL, *rs = NULL, *ws = NULL;
    pc_time_t deadline;
    rs = PySequence_Fast(rlist, "rlist");
    ws = rs ? PySequence_Fast(wlist, "wlist") : NULL;
    if (ws == NULL || add_list(&w, rs, GEV_READ) < 0 || add_list(&w, ws, GEV_WRITE) < 0 ||
            event_deadline(timeout, &deadline) < 0) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < w.n; i++) {
        if (w.e[i].state == 2) {
            w.e[i].state = 1;   /* libev kills a bad fd's watchers with both events */
        }
    }
    if (wset_wait(st, &w, deadline) < 0) {
        goto fail;
    }
    rd = PyList_New(0);
    wr = PyList_New(0);
    if (rd == NULL || wr == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < w.n; i++) {
        went_t *e = &w.e[i];
        if ((e->fired & e->flags) == 0) {
            continue;
        }
        if (PyList_Append((e->flags & GEV_READ) ? rd : wr, e->obj) < 0) {
            goto fail;
        }
    }
    wset_free(&w);
    Py_DECREF(rs);
    Py_DECREF(ws);
    PyObject *x = PyList_New(0);
    PyObject *r = x ? PyTuple_Pack(3, rd, wr, x) : NULL;
    Py_XDECREF(x);
    Py_DECREF(rd);
    Py_DECREF(wr);
    return r;
fail:
    wset_free(&w);
    Py_XDECREF(rs);
    Py_XDECREF(ws);
    Py_XDECREF(rd);
    Py_XDECREF(wr);
    return NULL;
}

/* select(rlist, wlist, xlist, timeout, original_select): gevent.select.select; the face passes
 * its module's _original_select (which tests patch). */
static PyObject *
m_gevent_select(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "_gevent_select() takes 5 arguments");
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    PyObject *rlist = args[0], *wlist = args[1], *xlist = args[2], *timeout = args[3];
    PyObject *orig = args[4];
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    if (timeout != Py_None) {
        int neg = PyObject_RichCompareBool(timeout, zero, Py_LT);
        if (neg != 0) {
            if (neg > 0) {
                PyErr_SetString(PyExc_ValueError, "timeout must be non-negative");
            }
            Py_DECREF(zero);
            return NULL;
        }
    }
    PyObject *r = (PyList_Check(rlist) || PyTuple_Check(rlist)) ? Py_NewRef(rlist)
                  : PySequence_List(rlist);
    PyObject *w = r == NULL ? NULL : (PyList_Check(wlist) || PyTuple_Check(wlist))
                  ? Py_NewRef(wlist) : PySequence_List(wlist);
    PyObject *res = NULL, *sel = NULL;
    if (w == NULL) {
        goto done;
    }
    sel = PyObject_CallFunctionObjArgs(orig, r, w, xlist, zero, NULL);
    if (sel == NULL) {
        goto done;
    }
    int any = 0;
    for (Py_ssize_t i = 0; i < 3 && !any; i++) {
        PyObject *item = PySequence_GetItem(sel, i);
        if (item == NULL) {
            goto done;
        }
        any = PyObject_IsTrue(item);
        Py_DECREF(item);
        if (any < 0) {
            goto done;
        }
    }
    if (!any && timeout != Py_None) {
        PyObject *eq = PyObject_RichCompare(timeout, zero, Py_EQ);
        any = eq ? PyObject_IsTrue(eq) : -1;
        Py_XDECREF(eq);
        if (any < 0) {
            goto done;
        }
    }
    if (any) {
        /* gevent's _g_sleep(): the others run once, and the caller gets the real results */
        if (pc_hub_sleep(st, 0) < 0) {
            goto done;
        }
        res = Py_NewRef(sel);
        goto done;
    }
    res = select_wait(st, r, w, timeout);
done:
    Py_XDECREF(sel);
    Py_XDECREF(r);
    Py_XDECREF(w);
    Py_DECREF(zero);
    return res;
}

static PyObject *
m_gevent_get_fileno(PyObject *module, PyObject *fileobj)
{
    return pc_io_fileobj_to_fd(fileobj);
}

/* -- poll ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *fds;            /* dict: fd -> flags (GEV_READ | GEV_WRITE), gevent's poll.fds */
} PollObject;

static int
poll_traverse(PollObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fds);
    return 0;
}

static int
poll_clear(PollObject *self)
{
    Py_CLEAR(self->fds);
    return 0;
}

static void
poll_dealloc(PollObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    poll_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
poll_init(PollObject *self, PyObject *args, PyObject *kwds)
{
    if (pc_parse_init_args("poll.__init__", args, kwds, NULL, 0, 0, 0, NULL) < 0) {
        return -1;
    }
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return -1;
    }
    Py_XSETREF(self->fds, d);
    return 0;
}

#define POLL_CHECK(self, fail)                                         \
    do {                                                               \
        if ((self)->fds == NULL) {                                     \
            pc_uninitialized((PyObject *)(self), "fds");               \
            return fail;                                               \
        }                                                              \
    } while (0)

/* bool(mask & bit) */
static int
mask_has(PyObject *mask, long bit)
{
    PyObject *b = PyLong_FromLong(bit);
    PyObject *r = b ? PyNumber_And(mask, b) : NULL;
    Py_XDECREF(b);
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

static PyObject *
poll_register(PollObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd", "eventmask"};
    PyObject *a[2];
    if (pc_io_parse_args("poll.register", args, nargs, kwnames, names, 2, 1, a) < 0) {
        return NULL;
    }
    POLL_CHECK(self, NULL);
    long flags = GEV_READ | GEV_WRITE;
    if (a[1] != NULL) {
        int in = mask_has(a[1], G_POLLIN);
        int out = in < 0 ? -1 : mask_has(a[1], G_POLLOUT);
        if (out < 0) {
            return NULL;
        }
        flags = (in ? GEV_READ : 0) | (out ? GEV_WRITE : 0);
    }
    PyObject *fd = pc_io_fileobj_to_fd(a[0]);
    if (fd == NULL) {
        return NULL;
    }
    PyObject *f = PyLong_FromLong(flags);
    int r = f ? PyDict_SetItem(self->fds, fd, f) : -1;
    Py_XDECREF(f);
    Py_DECREF(fd);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
poll_modify(PollObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd", "eventmask"};
    PyObject *a[2];
    if (pc_io_parse_args("poll.modify", args, nargs, kwnames, names, 2, 2, a) < 0) {
        return NULL;
    }
    return PyObject_CallMethod((PyObject *)self, "register", "OO", a[0], a[1]);
}

static PyObject *
poll_unregister(PollObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd"};
    PyObject *a[1];
    if (pc_io_parse_args("poll.unregister", args, nargs, kwnames, names, 1, 1, a) < 0) {
        return NULL;
    }
    POLL_CHECK(self, NULL);
    PyObject *fd = pc_io_fileobj_to_fd(a[0]);
    if (fd == NULL) {
        return NULL;
    }
    int r = PyDict_DelItem(self->fds, fd);   /* KeyError(fd) when it is not there */
    Py_DECREF(fd);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
poll_poll(PollObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *a[1];
    if (pc_io_parse_args("poll.poll", args, nargs, kwnames, names, 1, 0, a) < 0) {
        return NULL;
    }
    POLL_CHECK(self, NULL);
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    wset_t w = {NULL, 0, 0, -1};
    PyObject *timeout = a[0] ? Py_NewRef(a[0]) : Py_NewRef(Py_None), *result = NULL;
    /* the watchers first (a snapshot of the registrations), as gevent makes them */
    PyObject *items = PyDict_Items(self->fds);
    if (items == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);
        int fd;
        long flags = PyLong_AsLong(PyTuple_GET_ITEM(kv, 1));
        if ((flags == -1 && PyErr_Occurred()) || c_fd(PyTuple_GET_ITEM(kv, 0), &fd) < 0 ||
                wset_add(&w, PyTuple_GET_ITEM(kv, 0), fd, (int)flags) < 0) {
            Py_DECREF(items);
            goto done;
        }
    }
    Py_DECREF(items);
    /* `if timeout < 0: timeout = None` / `elif timeout: timeout /= 1000.0` */
    if (timeout != Py_None) {
        PyObject *zero = PyLong_FromLong(0);
        int neg = zero ? PyObject_RichCompareBool(timeout, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (neg < 0) {
            goto done;
        }
        if (neg) {
            Py_SETREF(timeout, Py_NewRef(Py_None));
        }
        else {
            int t = PyObject_IsTrue(timeout);
            if (t < 0) {
                goto done;
            }
            if (t) {
                PyObject *k = PyFloat_FromDouble(1000.0);
                PyObject *s = k ? PyNumber_InPlaceTrueDivide(timeout, k) : NULL;
                Py_XDECREF(k);
                if (s == NULL) {
                    goto done;
                }
                Py_SETREF(timeout, s);
            }
        }
    }
    pc_time_t deadline;
    if (event_deadline(timeout, &deadline) < 0 || wset_wait(st, &w, deadline) < 0) {
        goto done;
    }
    /* a descriptor closed while we waited left the epoll set without a word: it is reported
     * as not open, as gevent's loop reports a watcher whose descriptor went away */
    for (Py_ssize_t i = 0; i < w.n; i++) {
        if (w.e[i].state == 0 && w.e[i].fired == 0 && fcntl(w.e[i].fd, F_GETFD) < 0 &&
                errno == EBADF) {
            w.e[i].state = 2;
        }
    }
    result = PyList_New(0);
    for (Py_ssize_t i = 0; result != NULL && i < w.n; i++) {
        went_t *e = &w.e[i];
        long ev = e->state == 2 ? G_POLLNVAL
                  : ((e->fired & GEV_READ) ? G_POLLIN : 0) | ((e->fired & GEV_WRITE) ? G_POLLOUT : 0);
        if (ev == 0) {
            continue;
        }
        PyObject *pair = Py_BuildValue("(Ol)", e->obj, ev);
        if (pair == NULL || PyList_Append(result, pair) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(pair);
    }
done:
    wset_free(&w);
    Py_DECREF(timeout);
    return result;
}

static PyObject *
poll_get_fds(PollObject *self, void *Py_UNUSED(closure))
{
    POLL_CHECK(self, NULL);
    return Py_NewRef(self->fds);
}

static PyMethodDef poll_methods[] = {
    {"register", (PyCFunction)(void (*)(void))poll_register, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("register(fd, eventmask=POLLIN|POLLOUT)\n\nWatch fd (an int or an object with "
               "fileno()) for the events of eventmask (POLLIN, POLLOUT).")},
    {"modify", (PyCFunction)(void (*)(void))poll_modify, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("modify(fd, eventmask)\n\nChange the events watched on fd (register again).")},
    {"unregister", (PyCFunction)(void (*)(void))poll_unregister, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("unregister(fd)\n\nStop watching fd; KeyError if it was not registered.")},
    {"poll", (PyCFunction)(void (*)(void))poll_poll, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("poll(timeout=None)\n\nWait (blocking only the calling greenlet) until a "
               "registered fd is ready or timeout milliseconds pass; returns [(fd, events)].")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef poll_getset[] = {
    {"fds", (getter)poll_get_fds, NULL, "{fd: flags} of the registered descriptors", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot poll_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, poll_init},
    {Py_tp_dealloc, poll_dealloc},
    {Py_tp_traverse, poll_traverse},
    {Py_tp_clear, poll_clear},
    {Py_tp_methods, poll_methods},
    {Py_tp_getset, poll_getset},
    {0, NULL},
};

static PyType_Spec poll_spec = {
    "pyconc._core.GeventPoll", sizeof(PollObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, poll_slots,
};

static PyMethodDef gselect_methods[] = {
    {"_gevent_select", (PyCFunction)(void (*)(void))m_gevent_select, METH_FASTCALL,
     PyDoc_STR("_gevent_select(rlist, wlist, xlist, timeout, original_select): gevent.select."
               "select, cooperative")},
    {"_fileobj_to_fd", (PyCFunction)m_gevent_get_fileno, METH_O,
     PyDoc_STR("_fileobj_to_fd(fileobj): selectors._fileobj_to_fd / gevent.select.get_fileno")},
    {NULL, NULL, 0, NULL},
};

int
pc_gselect_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &poll_spec, NULL, &st->GeventPoll_Type) < 0 ||
            PyModule_AddFunctions(module, gselect_methods) < 0) {
        return -1;
    }
    return 0;
}
