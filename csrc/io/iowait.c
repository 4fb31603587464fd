/* iowait.c -- waiting for file descriptors for select, poll and the selectors (see iowait.h),
 * and the argument and descriptor conversions those faces share with the stdlib's Python code.
 *
 * Ownership: nothing here keeps state between calls. A private epoll instance made for a wait
 * (pc_io_wait_readable's fallback) is closed before the call returns, on every path.
 * Locking: the GIL, held everywhere but around the blocking poll() of the thread side.
 */
#include "iowait.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

void
pc_io_caller_get(pc_state *st, pc_io_caller *c)
{
    c->hub = NULL;
    c->in_hub = 0;
    if (pc_hub == NULL) {
        return;
    }
    int y = pc_hub->can_yield();
    if (y > 0) {
        c->hub = pc_hub_get(st, 0);   /* it exists: can_yield found it */
        if (c->hub == NULL) {
            PyErr_Clear();
        }
    }
    else if (y < 0) {
        c->in_hub = 1;
    }
}

int
pc_io_may_block(const pc_io_caller *c)
{
    if (c->in_hub) {
        return pc_hub->blocking_error();
    }
    return 0;
}

int
pc_io_ms_until(pc_time_t deadline)
{
    if (deadline == PC_FOREVER) {
        return -1;
    }
    pc_time_t left = deadline - pc_monotonic_ns();
    if (left <= 0) {
        return 0;
    }
    pc_time_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The thread side: poll() for fd with the GIL released, until readable or the deadline. */
static int
thread_wait_readable(int fd, pc_time_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        int ms = pc_io_ms_until(deadline);
        int r, err = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(&p, 1, ms);
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r > 0) {
            return 1;
        }
        if (r < 0 && err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (r < 0 && PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
            return 0;
        }
    }
}

int
pc_io_wait_readable(pc_state *st, const pc_io_caller *c, int fd, pc_time_t deadline)
{
    if (c->hub == NULL) {
        if (pc_io_may_block(c) < 0) {
            return -1;
        }
        return thread_wait_readable(fd, deadline);
    }
    return pc_io_hub_wait_shared(st, c->hub, fd, EPOLLIN, deadline);
}

int
pc_io_hub_wait_shared(pc_state *st, HubObject *hub, int fd, uint32_t events, pc_time_t deadline)
{
    int r = pc_hub_wait_fd(hub, fd, events, deadline);
    if (r >= 0 || !PyErr_ExceptionMatches(st->ConcurrentObjectUseError)) {
        return r;
    }
    /* Another greenlet of this hub already waits for fd in that direction (two greenlets
     * selecting on one selector, a wait_read beside a recv): the hub watches one waiter per
     * descriptor and direction, so this one waits on a private epoll instance. */
    PyErr_Clear();
    return pc_io_hub_wait_private(hub, fd, events, deadline);
}

int
pc_io_hub_wait_private(HubObject *hub, int fd, uint32_t events, pc_time_t deadline)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(ep);
        return -1;
    }
    int r = pc_hub_wait_fd(hub, ep, EPOLLIN, deadline);
    close(ep);   /* the hub forgot it when the wait ended */
    return r;
}

int
pc_io_raise_from_none(PyObject *type, PyObject *msg)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (et != NULL) {
        PyErr_NormalizeException(&et, &ev, &etb);
        if (etb != NULL) {
            PyException_SetTraceback(ev, etb);
        }
    }
    PyObject *exc = PyObject_CallOneArg(type, msg);
    if (exc != NULL) {
        if (ev != NULL) {
            PyException_SetContext(exc, Py_NewRef(ev));   /* steals */
        }
        PyException_SetCause(exc, NULL);   /* `from None`: __suppress_context__ = True */
        PyErr_Restore(Py_NewRef(type), exc, NULL);
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    return -1;
}

PyObject *
pc_io_fileobj_to_fd(PyObject *fileobj)
{
    PyObject *fd;
    if (PyLong_Check(fileobj)) {
        fd = Py_NewRef(fileobj);
    }
    else {
        PyObject *r = PyObject_CallMethod(fileobj, "fileno", NULL);
        fd = r != NULL ? PyNumber_Long(r) : NULL;
        Py_XDECREF(r);
        if (fd == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError) ||
                    PyErr_ExceptionMatches(PyExc_TypeError) ||
                    PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyObject *et, *ev, *etb;
                PyErr_Fetch(&et, &ev, &etb);
                PyObject *msg = PyUnicode_FromFormat("Invalid file object: %R", fileobj);
                if (msg == NULL) {
                    Py_XDECREF(et);
                    Py_XDECREF(ev);
                    Py_XDECREF(etb);
                    return NULL;
                }
                PyErr_Restore(et, ev, etb);
                pc_io_raise_from_none(PyExc_ValueError, msg);
                Py_DECREF(msg);
            }
            return NULL;
        }
    }
    int neg;
    if (PyLong_CheckExact(fd)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(fd, &overflow);
        neg = overflow ? overflow < 0 : v < 0;
    }
    else {
        PyObject *zero = PyLong_FromLong(0);
        neg = zero != NULL ? PyObject_RichCompareBool(fd, zero, Py_LT) : -1;
        Py_XDECREF(zero);
    }
    if (neg != 0) {
        if (neg > 0) {
            PyObject *empty = PyUnicode_FromString("");
            PyObject *s = empty != NULL ? PyObject_Format(fd, empty) : NULL;
            Py_XDECREF(empty);
            if (s != NULL) {
                PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %U", s);
                Py_DECREF(s);
            }
        }
        Py_DECREF(fd);
        return NULL;
    }
    return fd;
}

int
pc_io_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 const char *const *names, Py_ssize_t n, Py_ssize_t nreq, PyObject **out)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        for (; i < n; i++) {
            if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                break;
            }
        }
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    if (nargs > n) {   /* Python counts self */
        if (nreq == n) {
            PyErr_Format(PyExc_TypeError, "%s() takes %zd positional argument%s but %zd %s given",
                         fname, n + 1, n == 0 ? "" : "s", nargs + 1,
                         nargs + 1 == 1 ? "was" : "were");
        }
        else {
            PyErr_Format(PyExc_TypeError, "%s() takes from %zd to %zd positional arguments but "
                         "%zd were given", fname, nreq + 1, n + 1, nargs + 1);
        }
        return -1;
    }
    return pc_require_args(fname, names, nreq, out);
}
