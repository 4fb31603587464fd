/* socket.c -- pyconc._core.CoopSocket: the C core of pyconc.gevent.socket.socket, a cooperative
 * socket.
 *
 * How it relates to the stdlib's types (the design choice). gevent's socket (gevent._socket3)
 * is NOT a subclass of socket.socket or _socket.socket: it *wraps* one, `self._sock`, a
 * non-blocking _socket.socket (of gevent's `_wrefsocket` subclass, weak-referenceable), and
 * delegates to it; `isinstance(gevent.socket.socket(), socket.socket)` is False until monkey
 * patching replaces socket.socket. pyconc does the same, so that isinstance, makefile (the
 * stdlib's SocketIO over the wrapper), sendfile, dup, detach, `_sock` and the closed-socket proxy
 * behave as gevent's do. The split:
 *   - this C base type holds the state (`_sock`, the cached descriptor, the timeout, `_closed`,
 *     `_io_refs`) and the hot methods: recv, recv_into, send, sendall, accept make their syscall
 *     directly on the cached descriptor from C (no Python frame, no _socket method call, no
 *     exception object on EAGAIN); recvfrom, recvfrom_into, recvmsg, recvmsg_into, sendto call
 *     the wrapped _socket.socket's C method and retry on BlockingIOError; close, detach,
 *     shutdown, fileno, timeout are C as well;
 *   - pyconc/gevent/socket.py subclasses it (`socket`) with what is not hot: connect/connect_ex
 *     (cooperative name resolution), makefile, dup, sendmsg, sendfile, family/type/proto,
 *     settimeout & co, repr, and forwarding methods for every other _socket.socket method
 *     (generated once per class, so attribute lookup stays the generic one and CPython's
 *     method-call fast path applies to sock.recv(...)).
 *
 * Waiting. Every call tries its syscall first; only on EAGAIN does it wait, and how depends on
 * the caller (wait.h's pc_hub_ops->can_yield):
 *   - a greenlet of a thread that has a hub parks on the hub's epoll (pc_hub_wait_io). The
 *     descriptor stays registered with that epoll after the wait, edge-triggered for both
 *     directions (no epoll_ctl per wait); the socket owns that registration (its token) and
 *     ends it (pc_hub_forget_fd) before its descriptor is closed or detached, or when it is
 *     next used from another thread's hub;
 *   - the hub greenlet itself cannot wait: BlockingSwitchOutError, as gevent;
 *   - a thread without a hub blocks in poll(2) with the GIL released, exactly as the stdlib's
 *     blocking socket would (EINTR runs the signal handlers; one that raises ends the call).
 * The socket's timeout (None, 0.0, or seconds) becomes one deadline per call (sendall: for the
 * whole call, as the stdlib's); when it passes, socket.timeout("timed out") (TimeoutError).
 * 0.0 makes EAGAIN a BlockingIOError, as a non-blocking stdlib socket.
 *
 * Close while waiting: close() (and detach(), shutdown()) wakes the greenlets parked on this
 * socket in its hub with gevent's cancel_wait_ex (OSError(EBADF, 'File descriptor was closed in
 * another greenlet')), then closes. Two greenlets reading (or writing) one socket at once: the
 * second gets ConcurrentObjectUseError ("This socket is already used by another greenlet"),
 * from the hub's one-waiter-per-direction slot, as gevent's watcher check.
 *
 * Locking: everything here runs with the GIL held (the poll of the thread side drops it). The
 * syscalls of the hot path are non-blocking and keep the GIL.
 */
#include "pyconc.h"
#include "hub.h"
#include "iowait.h"
#include "greenlet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    int fd;                   /* the wrapped socket's descriptor, cached; -1 closed/detached */
    int family;               /* cached from the wrapped socket at init (accept uses them) */
    int type;
    int proto;
    int closed;               /* `_closed`: close() was called (the fd may live on: _io_refs) */
    int io_refs;              /* `_io_refs`: SocketIO objects (makefile) still open */
    double timeout;           /* -1.0: None (blocking); 0.0: non-blocking; else seconds */
    PyObject *sock;           /* strong: `_sock`, the _socket.socket (or the closed proxy) */
    PyObject *hubobj;         /* strong: the hub whose epoll holds our persistent registration,
                                 or NULL */
    uint64_t token;           /* our registrations' owner token (unique, nonzero) */
    pc_state *st;             /* the module state (outlives its objects' use) */
    PyObject *weakreflist;
} CoopSocket;

static uint64_t token_counter = 0;   /* GIL-protected */

/* -- errors -------------------------------------------------------------------------------------- */

static int
set_timeout_error(void)
{
    PyErr_SetString(PyExc_TimeoutError, "timed out");
    return -1;
}

static void
set_ebadf(void)
{
    errno = EBADF;
    PyErr_SetFromErrno(PyExc_OSError);
}

/* -- registrations ------------------------------------------------------------------------------ */

/* Ends the persistent registration and wakes the socket's parked greenlets with cancel (NULL:
 * no wake). Call before the descriptor is closed or handed away. No exception. */
static void
drop_registration(CoopSocket *s, uint32_t wake_events, PyObject *cancel_cls)
{
    if (s->hubobj == NULL || s->fd < 0) {
        Py_CLEAR(s->hubobj);
        return;
    }
    HubObject *hub = pc_hub_of(s->st, s->hubobj);
    if (hub == NULL) {
        PyErr_Clear();
        Py_CLEAR(s->hubobj);
        return;
    }
    if (wake_events != 0 && cancel_cls != NULL) {
        PyObject *exc = PyObject_CallNoArgs(cancel_cls);
        if (exc == NULL) {
            PyErr_WriteUnraisable(cancel_cls);
        }
        else {
            pc_hub_cancel_fd_events(hub, s->fd, wake_events, exc);
            Py_DECREF(exc);
        }
    }
    if (wake_events == (EPOLLIN | EPOLLOUT) || cancel_cls == NULL) {
        pc_hub_forget_fd(hub, s->fd, s->token);
        Py_CLEAR(s->hubobj);
    }
}

/* -- waiting ------------------------------------------------------------------------------------ */

static pc_time_t
deadline_of(double timeout)
{
    if (timeout < 0) {
        return PC_FOREVER;
    }
    double ns = timeout * 1e9;
    if (!(ns < 4e18)) {
        return PC_FOREVER;    /* beyond a century (or NaN): as good as forever */
    }
    return pc_deadline_after((pc_time_t)ns);
}

/* A thread without a hub: poll(2) with the GIL released. 0 ready, -1 with an exception. */
static int
thread_wait(int fd, uint32_t events, pc_time_t deadline)
{
    struct pollfd p;
    p.fd = fd;
    p.events = (short)(((events & EPOLLIN) ? POLLIN : 0) | ((events & EPOLLOUT) ? POLLOUT : 0));
    for (;;) {
        int ms = -1;
        if (deadline != PC_FOREVER) {
            pc_time_t left = deadline - pc_monotonic_ns();
            if (left <= 0) {
                return set_timeout_error();
            }
            ms = left > (pc_time_t)INT32_MAX * 1000000 ? INT32_MAX
                                                        : (int)((left + 999999) / 1000000);
        }
        int r, err = 0;
        p.revents = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(&p, 1, ms);
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r > 0) {
            return 0;
        }
        if (r < 0) {
            if (err != EINTR) {
                errno = err;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            if (PyErr_CheckSignals() < 0) {
                return -1;
            }
        }
    }
}

/* Waits until s's descriptor may be ready for events, or the deadline. 0 (try the syscall
 * again), or -1 with an exception (socket.timeout, cancel_wait_ex, a thrown exception). */
static int
coop_wait(CoopSocket *s, uint32_t events, pc_time_t deadline)
{
    if (s->fd < 0) {
        set_ebadf();
        return -1;
    }
    int y = pc_hub != NULL ? pc_hub->can_yield() : 0;
    if (y == 0) {
        return thread_wait(s->fd, events, deadline);
    }
    if (y < 0) {
        return pc_hub->blocking_error();
    }
    HubObject *hub = pc_hub_get(s->st, 0);
    if (hub == NULL) {
        return thread_wait(s->fd, events, deadline);
    }
    PyObject *h = pc_hub_greenlet(hub);
    if (s->hubobj != h) {
        drop_registration(s, 0, NULL);    /* used from another thread's hub before */
        s->hubobj = Py_NewRef(h);
    }
    int r = pc_hub_wait_io(hub, s->fd, events, deadline, s->token);
    if (r < 0) {
        return -1;
    }
    if (r == 0) {
        return set_timeout_error();
    }
    return 0;
}

/* After a syscall failed with errno err: 1 to wait and retry (EAGAIN on a socket with a
 * timeout), 0 to retry at once (EINTR, no signal handler raised), -1 with an exception. */
static int
after_failure(CoopSocket *s, int err, double timeout)
{
    if (err == EINTR) {
        return PyErr_CheckSignals() < 0 ? -1 : 0;
    }
    if ((err == EAGAIN || err == EWOULDBLOCK) && timeout != 0.0) {
        return 1;
    }
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* -- argument helpers --------------------------------------------------------------------------- */

/* PyArg_ParseTuple over a vectorcall's positional arguments (the stdlib's messages). */
static int
parse_positional(PyObject *const *args, Py_ssize_t nargs, const char *format, ...)
{
    PyObject *t = PyTuple_New(nargs);
    if (t == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(t, i, Py_NewRef(args[i]));
    }
    va_list va;
    va_start(va, format);
    int ok = PyArg_VaParse(t, format, va);
    va_end(va);
    Py_DECREF(t);
    return ok;
}

/* gevent's recv(*args) and recv_into(*args) are Python methods of SocketMixin. */
static int
no_kwargs(const char *name, PyObject *kwnames)
{
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_Format(PyExc_TypeError, "SocketMixin.%s() got an unexpected keyword argument '%U'",
                     name, PyTuple_GET_ITEM(kwnames, 0));
        return -1;
    }
    return 0;
}

/* -- recv, recv_into ---------------------------------------------------------------------------- */

/* This thread's hub if the caller is one of its greenlets and s's persistent registration is
 * in it (borrowed), else NULL. */
static HubObject *
registered_hub(CoopSocket *s)
{
    if (s->hubobj == NULL || pc_hub == NULL || pc_hub->can_yield() <= 0) {
        return NULL;
    }
    HubObject *hub = pc_hub_get(s->st, 0);
    return hub != NULL && pc_hub_greenlet(hub) == s->hubobj ? hub : NULL;
}

/* Receives into buf, waiting as needed. Returns the count, or -1 with an exception.
 *
 * A stream socket's recv that returns less than it was asked for has emptied the receive
 * queue: the hub is told (pc_hub_io_drained), and the next recv in a greenlet waits for
 * epoll's next edge at once instead of making a syscall that can only say EAGAIN -- in an echo
 * or request/response loop, one syscall of three. */
static Py_ssize_t
recv_guts(CoopSocket *s, char *buf, Py_ssize_t len, int flags)
{
    pc_time_t deadline = 0;
    int have_deadline = 0;
    if (len == 0) {
        return 0;   /* as the stdlib's sock_recv_guts: nothing asked, no syscall (nor its EINVAL) */
    }
    int stream = s->type == SOCK_STREAM && flags == 0;
    HubObject *hub = stream && s->timeout != 0.0 ? registered_hub(s) : NULL;
    if (hub != NULL && pc_hub_io_idle(hub, s->fd, s->token, EPOLLIN)) {
        deadline = deadline_of(s->timeout);
        have_deadline = 1;
        if (coop_wait(s, EPOLLIN, deadline) < 0) {
            return -1;
        }
    }
    for (;;) {
        ssize_t n = recv(s->fd, buf, (size_t)len, flags);
        if (n >= 0) {
            if (stream && n > 0 && n < len && (hub != NULL || (hub = registered_hub(s)) != NULL)) {
                pc_hub_io_drained(hub, s->fd, s->token, EPOLLIN);
            }
            return n;
        }
        int r = after_failure(s, errno, s->timeout);
        if (r < 0) {
            return -1;
        }
        if (r == 1) {
            if (!have_deadline) {
                deadline = deadline_of(s->timeout);
                have_deadline = 1;
            }
            if (coop_wait(s, EPOLLIN, deadline) < 0) {
                return -1;
            }
        }
    }
}

#define RECV_SMALL 1024              /* up to this, recv allocates the bytes it returns */
#define RECV_SCRATCH (256 * 1024)    /* beyond, too */
static char *recv_scratch;           /* GIL-protected; allocated once */

static PyObject *
sock_recv(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t len;
    int flags = 0;
    if (no_kwargs("recv", kwnames) < 0) {
        return NULL;
    }
    if (nargs == 1 && PyLong_CheckExact(args[0])) {
        len = PyLong_AsSsize_t(args[0]);
        if (len == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else if (!parse_positional(args, nargs, "n|i:recv", &len, &flags)) {
        return NULL;
    }
    if (len < 0) {
        PyErr_SetString(PyExc_ValueError, "negative buffersize in recv");
        return NULL;
    }
    if (len > RECV_SMALL && len <= RECV_SCRATCH) {
        /* recv(65536) that brings a few bytes: read into the scratch buffer and copy what came,
         * instead of allocating len bytes and shrinking them (uvloop reads the same way). The
         * buffer is used only between the syscall and the copy, with the GIL held, so one for
         * the process is enough. */
        if (recv_scratch == NULL && (recv_scratch = PyMem_RawMalloc(RECV_SCRATCH)) == NULL) {
            return PyErr_NoMemory();
        }
        Py_ssize_t n = recv_guts(s, recv_scratch, len, flags);
        return n < 0 ? NULL : PyBytes_FromStringAndSize(recv_scratch, n);
    }
    PyObject *buf = PyBytes_FromStringAndSize(NULL, len);
    if (buf == NULL) {
        return NULL;
    }
    Py_ssize_t n = recv_guts(s, PyBytes_AS_STRING(buf), len, flags);
    if (n < 0) {
        Py_DECREF(buf);
        return NULL;
    }
    if (n != len) {
        _PyBytes_Resize(&buf, n);
    }
    return buf;
}

static PyObject *
sock_recv_into(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_buffer view;
    Py_ssize_t len = 0;
    int flags = 0;
    if (no_kwargs("recv_into", kwnames) < 0) {
        return NULL;
    }
    if (nargs == 1) {
        if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) {
            PyErr_Clear();
            if (!parse_positional(args, nargs, "w*|ni:recv_into", &view, &len, &flags)) {
                return NULL;
            }
        }
    }
    else if (!parse_positional(args, nargs, "w*|ni:recv_into", &view, &len, &flags)) {
        return NULL;
    }
    if (len < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "negative buffersize in recv_into");
        return NULL;
    }
    if (len == 0) {
        len = view.len;
    }
    if (view.len < len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
        return NULL;
    }
    Py_ssize_t n = recv_guts(s, view.buf, len, flags);
    PyBuffer_Release(&view);
    if (n < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

/* -- send, sendall ------------------------------------------------------------------------------ */

static int
get_data(PyObject *data, Py_buffer *view)
{
    return PyObject_GetBuffer(data, view, PyBUF_SIMPLE);
}

static int
get_flags(PyObject *obj, int *flags)
{
    if (obj == NULL) {
        *flags = 0;
        return 0;
    }
    return pc_as_c_int_arg(obj, flags);   /* the stdlib's send: "y*|i" */
}

/* send(data, flags=0, timeout=<the socket's>): gevent's -- one try, one wait (the socket's
 * timeout) on EAGAIN, one more try, 0 if that would block too. */
static PyObject *
sock_send(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "flags", "timeout"};
    PyObject *a[3];
    if (pc_parse_args("SocketMixin.send", args, nargs, kwnames, names, 3, a) < 0) {
        return NULL;
    }
    if (a[0] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "SocketMixin.send() missing 1 required positional argument: 'data'");
        return NULL;
    }
    int flags;
    Py_buffer view;
    if (get_data(a[0], &view) < 0) {
        return NULL;
    }
    if (get_flags(a[1], &flags) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int nonblocking = s->timeout == 0.0;
    if (a[2] != NULL) {   /* gevent: `timeout == 0.0` decides whether EAGAIN raises */
        int eq = PyObject_RichCompareBool(a[2], s->st->float_zero, Py_EQ);
        if (eq < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        nonblocking = eq;
    }
    int waited = 0;
    for (;;) {
        ssize_t n = send(s->fd, view.buf, (size_t)view.len, flags | MSG_NOSIGNAL);
        if (n >= 0) {
            PyBuffer_Release(&view);
            return PyLong_FromSsize_t(n);
        }
        int err = errno;
        if (waited && (err == EAGAIN || err == EWOULDBLOCK)) {
            PyBuffer_Release(&view);
            return PyLong_FromLong(0);
        }
        int r = after_failure(s, err, nonblocking ? 0.0 : 1.0);
        if (r < 0) {
            break;
        }
        if (r == 1) {
            if (coop_wait(s, EPOLLOUT, deadline_of(s->timeout)) < 0) {
                break;
            }
            waited = 1;
        }
    }
    PyBuffer_Release(&view);
    return NULL;
}

/* sendall(data, flags=0): sends everything, waiting as needed; the socket's timeout bounds the
 * whole call. A non-blocking socket (timeout 0.0) raises BlockingIOError when nothing could be
 * sent, socket.timeout when only part was (gevent). Returns None (gevent: 0 for empty data). */
static PyObject *
sock_sendall(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "flags"};
    PyObject *a[2];
    if (pc_parse_args("SocketMixin.sendall", args, nargs, kwnames, names, 2, a) < 0) {
        return NULL;
    }
    if (a[0] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "SocketMixin.sendall() missing 1 required positional argument: 'data'");
        return NULL;
    }
    int flags;
    Py_buffer view;
    if (get_data(a[0], &view) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {   /* gevent takes memoryview(data) */
            PyErr_Format(PyExc_TypeError, "memoryview: a bytes-like object is required, "
                         "not '%.200s'", Py_TYPE(a[0])->tp_name);
        }
        return NULL;
    }
    if (view.len == 0) {   /* gevent returns before it looks at flags */
        PyBuffer_Release(&view);
        return PyLong_FromLong(0);
    }
    if (get_flags(a[1], &flags) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const char *p = view.buf;
    Py_ssize_t left = view.len;
    pc_time_t deadline = 0;
    int have_deadline = 0;
    int sent_some = 0;
    while (left > 0) {
        if (sent_some && s->timeout == 0.0) {
            set_timeout_error();
            goto fail;
        }
        ssize_t n = send(s->fd, p, (size_t)left, flags | MSG_NOSIGNAL);
        if (n >= 0) {
            p += n;
            left -= n;
            sent_some = 1;
            continue;
        }
        int r = after_failure(s, errno, s->timeout);
        if (r < 0) {
            goto fail;
        }
        if (r == 1) {
            if (!have_deadline) {
                deadline = deadline_of(s->timeout);
                have_deadline = 1;
            }
            if (coop_wait(s, EPOLLOUT, deadline) < 0) {
                goto fail;
            }
        }
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&view);
    return NULL;
}

/* -- methods of the wrapped socket, retried --------------------------------------------------- */

/* Calls self._sock.<name>(*args) until it does not raise BlockingIOError, waiting for events in
 * between (the socket's timeout for the whole call). once: gevent's sendto -- one wait, one more
 * try, and 0 if that would block too. */
static PyObject *
call_retry(CoopSocket *s, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, uint32_t events, int once)
{
    PyObject *small[8];
    PyObject **stack = small;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw + 1 > 8) {
        stack = PyMem_Malloc((size_t)(nargs + nkw + 1) * sizeof(PyObject *));
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    PyObject *sock = Py_NewRef(s->sock);
    stack[0] = sock;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        stack[i + 1] = args[i];
    }
    pc_time_t deadline = 0;
    int have_deadline = 0, waited = 0;
    PyObject *res;
    for (;;) {
        res = PyObject_VectorcallMethod(name, stack,
                                        (size_t)(nargs + 1),
                                        kwnames);
        if (res != NULL || s->timeout == 0.0 || !PyErr_ExceptionMatches(PyExc_BlockingIOError)) {
            break;
        }
        if (waited && once) {
            PyErr_Clear();
            res = PyLong_FromLong(0);
            break;
        }
        PyErr_Clear();
        if (!have_deadline) {
            deadline = deadline_of(s->timeout);
            have_deadline = 1;
        }
        if (coop_wait(s, events, deadline) < 0) {
            break;
        }
        waited = 1;
    }
    Py_DECREF(sock);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return res;
}


/* Interned method names of the wrapped socket (strong, kept for the process's life). */
static PyObject *str_recvfrom, *str_recvfrom_into, *str_recvmsg, *str_recvmsg_into, *str_sendto,
                *str__accept, *str_close, *str_detach, *str_shutdown, *str_fileno,
                *str_family, *str_type, *str_proto, *str_gevent_sock_class,
                *str__real_close;

#define RETRY_METHOD(cname, strname, events, once)                                             \
    static PyObject *                                                                          \
    cname(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)           \
    {                                                                                          \
        return call_retry(s, strname, args, nargs, kwnames, events, once);                     \
    }

RETRY_METHOD(sock_recvfrom, str_recvfrom, EPOLLIN, 0)
RETRY_METHOD(sock_recvfrom_into, str_recvfrom_into, EPOLLIN, 0)
RETRY_METHOD(sock_recvmsg, str_recvmsg, EPOLLIN, 0)
RETRY_METHOD(sock_recvmsg_into, str_recvmsg_into, EPOLLIN, 0)
RETRY_METHOD(sock_sendto, str_sendto, EPOLLOUT, 1)

/* -- construction ------------------------------------------------------------------------------- */

static int
int_attr(PyObject *obj, PyObject *name, int *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    long l = PyLong_AsLong(v);
    Py_DECREF(v);
    if (l == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int)l;
    return 0;
}

/* What sockets need of the stdlib's _socket, looked up at the first socket made rather than at
 * import (importing _socket is over half a millisecond of `from pyconc import threading`, which
 * makes no socket): socket.setblocking, getdefaulttimeout, and _socket.socket as the wrapped
 * class until the face sets its own. 0, or -1 with an exception. */
static int
need_std_socket(pc_state *st)
{
    if (st->sock_setblocking != NULL) {
        return 0;
    }
    PyObject *smod = PyImport_ImportModule("_socket");
    if (smod == NULL) {
        return -1;
    }
    PyObject *stype = PyObject_GetAttrString(smod, "socket");
    PyObject *dt = PyObject_GetAttrString(smod, "getdefaulttimeout");
    Py_DECREF(smod);
    PyObject *sb = stype != NULL ? PyObject_GetAttrString(stype, "setblocking") : NULL;
    if (sb == NULL || dt == NULL) {
        Py_XDECREF(stype);
        Py_XDECREF(dt);
        Py_XDECREF(sb);
        return -1;
    }
    if (st->sock_wref == NULL) {
        st->sock_wref = Py_NewRef(stype);
    }
    Py_DECREF(stype);
    st->sock_getdefaulttimeout = dt;
    st->sock_setblocking = sb;
    return 0;
}

/* Makes s wrap sock (a _socket.socket; reference stolen): non-blocking, the default timeout.
 * 0, or -1 with an exception (sock is then still owned by s and released with it). */
static int
attach(CoopSocket *s, PyObject *sock)
{
    pc_state *st = s->st;
    if (s->sock != NULL) {
        drop_registration(s, 0, NULL);
    }
    Py_XSETREF(s->sock, sock);
    s->fd = -1;
    if (need_std_socket(st) < 0) {
        return -1;
    }
    s->closed = 0;
    s->io_refs = 0;
    s->timeout = -1.0;
    if (s->token == 0) {
        s->token = ++token_counter;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(st->sock_setblocking, sock, Py_False, NULL);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    PyObject *f = PyObject_CallMethodNoArgs(sock, str_fileno);
    if (f == NULL) {
        return -1;
    }
    s->fd = (int)PyLong_AsLong(f);
    Py_DECREF(f);
    if (s->fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (int_attr(sock, str_family, &s->family) < 0 || int_attr(sock, str_type, &s->type) < 0 ||
            int_attr(sock, str_proto, &s->proto) < 0) {
        return -1;
    }
    PyObject *dt = PyObject_CallNoArgs(st->sock_getdefaulttimeout);
    if (dt == NULL) {
        return -1;
    }
    if (dt != Py_None) {
        s->timeout = PyFloat_AsDouble(dt);
    }
    Py_DECREF(dt);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *
wrapped_class(CoopSocket *s)
{
    /* looked up on the instance: gevent's SSLSocket makes it a method */
    PyObject *cls = PyObject_GetAttr((PyObject *)s, str_gevent_sock_class);
    if (cls == NULL) {
        PyErr_Clear();
        if (need_std_socket(s->st) < 0) {
            return NULL;
        }
        cls = Py_NewRef(s->st->sock_wref);
    }
    return cls;
}

/* socket(family=-1, type=-1, proto=-1, fileno=None), gevent's __init__. */
static int
coop_init(CoopSocket *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"family", "type", "proto", "fileno", NULL};
    PyObject *family = NULL, *type = NULL, *proto = NULL, *fileno = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOO:socket", kwlist, &family, &type, &proto,
                                     &fileno)) {
        return -1;
    }
    PyObject *minus1 = PyLong_FromLong(-1);
    if (minus1 == NULL) {
        return -1;
    }
    PyObject *a[4] = {family ? family : minus1, type ? type : minus1, proto ? proto : minus1,
                      fileno};
    PyObject *defaults[3] = {NULL, NULL, NULL};
    if (fileno == Py_None) {
        /* gevent: family -1 -> AF_INET, type -1 -> SOCK_STREAM, proto -1 -> 0 */
        static const int dflt[3] = {AF_INET, SOCK_STREAM, 0};
        for (int i = 0; i < 3; i++) {
            int eq = PyObject_RichCompareBool(a[i], minus1, Py_EQ);
            if (eq < 0) {
                goto fail;
            }
            if (eq) {
                defaults[i] = PyLong_FromLong(dflt[i]);
                if (defaults[i] == NULL) {
                    goto fail;
                }
                a[i] = defaults[i];
            }
        }
    }
    PyObject *cls = wrapped_class(s);
    PyObject *sock = cls != NULL ? PyObject_Vectorcall(cls, a, 4, NULL) : NULL;
    Py_XDECREF(cls);
    if (sock == NULL) {
        goto fail;
    }
    Py_DECREF(minus1);
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(defaults[i]);
    }
    return attach(s, sock);
fail:
    Py_DECREF(minus1);
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(defaults[i]);
    }
    return -1;
}

static PyObject *
coop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    pc_state *st = pc_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    CoopSocket *s = (CoopSocket *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    s->fd = -1;
    s->timeout = -1.0;
    s->st = st;
    s->token = ++token_counter;
    return (PyObject *)s;
}

/* A new socket of the face's class (pyconc.gevent.socket.socket) around descriptor fd, which it
 * takes over (closed on failure). */
static PyObject *
new_from_fd(CoopSocket *parent, int fd)
{
    pc_state *st = parent->st;
    PyTypeObject *cls = (PyTypeObject *)(st->sock_class ? st->sock_class
                                                         : (PyObject *)st->CoopSocket_Type);
    if (cls->tp_init != st->CoopSocket_Type->tp_init) {
        PyObject *r = PyObject_CallFunction((PyObject *)cls, "iiii", parent->family,
                                            parent->type, parent->proto, fd);
        if (r == NULL) {
            close(fd);   /* (a failing class that took the fd would have closed it: EBADF) */
        }
        return r;
    }
    PyObject *sock = PyObject_CallFunction(st->sock_wref, "iiii", parent->family, parent->type,
                                           parent->proto, fd);
    if (sock == NULL) {
        close(fd);
        return NULL;
    }
    CoopSocket *s = (CoopSocket *)coop_new(cls, NULL, NULL);
    if (s == NULL) {
        Py_DECREF(sock);
        return NULL;
    }
    if (attach(s, sock) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* -- accept ------------------------------------------------------------------------------------- */

static PyObject *
inet_address(struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf)) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(si)", buf, (int)ntohs(a->sin_port));
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    if (inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf)) == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("(siII)", buf, (int)ntohs(a->sin6_port),
                         (unsigned int)ntohl(a->sin6_flowinfo), (unsigned int)a->sin6_scope_id);
}

/* accept() -> (socket object, address info) */
static PyObject *
sock_accept(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *addr = NULL;
    int fd;
    if (s->family == AF_INET || s->family == AF_INET6) {
        pc_time_t deadline = 0;
        int have_deadline = 0;
        struct sockaddr_storage ss;
        for (;;) {
            socklen_t len = sizeof(ss);
            memset(&ss, 0, sizeof(ss));
            fd = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                break;
            }
            int r = after_failure(s, errno, s->timeout);
            if (r < 0) {
                return NULL;
            }
            if (r == 1) {
                if (!have_deadline) {
                    deadline = deadline_of(s->timeout);
                    have_deadline = 1;
                }
                if (coop_wait(s, EPOLLIN, deadline) < 0) {
                    return NULL;
                }
            }
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            addr = inet_address(&ss);
        }
        else {
            addr = Py_NewRef(Py_None);
        }
        if (addr == NULL) {
            close(fd);
            return NULL;
        }
    }
    else {
        /* other families: the wrapped socket's _accept() builds the address */
        PyObject *pair = call_retry(s, str__accept, NULL, 0, NULL, EPOLLIN, 0);
        if (pair == NULL) {
            return NULL;
        }
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "_accept() did not return (fd, address)");
            return NULL;
        }
        fd = (int)PyLong_AsLong(PyTuple_GET_ITEM(pair, 0));
        if (fd == -1 && PyErr_Occurred()) {
            Py_DECREF(pair);
            return NULL;
        }
        addr = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(pair);
    }
    PyObject *conn = new_from_fd(s, fd);
    if (conn == NULL) {
        Py_DECREF(addr);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, conn, addr);
    Py_DECREF(conn);
    Py_DECREF(addr);
    return res;
}

/* -- close, detach, shutdown ------------------------------------------------------------------- */

static PyObject *
cancel_class(CoopSocket *s)
{
    return s->st->sock_cancel;
}

/* Replaces the wrapped socket by the closed proxy (gevent's _closedsocket). 0 or -1. */
static int
put_proxy(CoopSocket *s, int fileno, const char *reason)
{
    s->fd = -1;
    if (s->st->sock_closed == NULL) {
        return 0;
    }
    PyObject *proxy = PyObject_CallFunction(s->st->sock_closed, "iiiis", s->family, s->type,
                                            s->proto, fileno, reason);
    if (proxy == NULL) {
        return -1;
    }
    Py_XSETREF(s->sock, proxy);
    return 0;
}

static int
is_open(CoopSocket *s)
{
    return s->sock != NULL && (s->st->sock_closed == NULL ||
                               !PyObject_TypeCheck(s->sock, (PyTypeObject *)s->st->sock_closed));
}

static PyObject *
real_close(CoopSocket *s)
{
    if (!is_open(s)) {
        Py_RETURN_NONE;
    }
    int fileno = s->fd;
    drop_registration(s, EPOLLIN | EPOLLOUT, cancel_class(s));
    PyObject *sock = Py_NewRef(s->sock);
    PyObject *r = PyObject_CallMethodNoArgs(sock, str_close);
    Py_DECREF(sock);
    if (r == NULL) {
        /* close(2) failed (EBADF: the descriptor was closed behind the socket's back). The
         * wrapped socket has already given up its descriptor, so the cached one goes too; the
         * wrapped socket stays in place (no proxy: building one would run Python code with
         * this error set), and the next close() finds it descriptor-less and swaps it then. */
        s->fd = -1;
        return NULL;
    }
    Py_DECREF(r);
    if (put_proxy(s, fileno, "closed") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sock_close(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    s->closed = 1;
    if (s->io_refs <= 0) {
        /* through the method: a subclass (SSLSocket) extends _real_close */
        return PyObject_CallMethodNoArgs((PyObject *)s, str__real_close);
    }
    Py_RETURN_NONE;
}

static PyObject *
sock_real_close(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    return real_close(s);
}

static PyObject *
sock_decref_socketios(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    if (s->io_refs > 0) {
        s->io_refs--;
    }
    if (s->closed) {
        return sock_close(s, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
sock_detach(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    s->closed = 1;
    PyObject *sock = Py_NewRef(s->sock ? s->sock : Py_None);
    int fileno = s->fd;
    int open = is_open(s);
    if (open) {
        drop_registration(s, EPOLLIN | EPOLLOUT, cancel_class(s));
    }
    PyObject *r = PyObject_CallMethodNoArgs(sock, str_detach);
    Py_DECREF(sock);
    if (r == NULL) {
        return NULL;   /* (as real_close: no proxy while an error is set) */
    }
    if (open && put_proxy(s, fileno, "detached") < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *
sock_shutdown(CoopSocket *s, PyObject *how)
{
    int h;
    if (pc_as_c_int(how, &h) < 0) {
        return NULL;
    }
    uint32_t ev = h == SHUT_RD ? EPOLLIN : (h == SHUT_WR ? EPOLLOUT : (EPOLLIN | EPOLLOUT));
    if (is_open(s)) {
        drop_registration(s, ev, cancel_class(s));
    }
    PyObject *sock = Py_NewRef(s->sock ? s->sock : Py_None);
    PyObject *r = PyObject_CallMethodOneArg(sock, str_shutdown, how);
    Py_DECREF(sock);
    return r;
}

/* _cancel_wait(events, error): gevent's cancel_wait for this socket's read (1) / write (2)
 * waiter: it gets error (an exception class is instantiated). */
static PyObject *
sock_cancel_wait(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs)
{
    int events;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_cancel_wait(events, error)");
        return NULL;
    }
    if (pc_as_c_int(args[0], &events) < 0) {
        return NULL;
    }
    if (s->hubobj == NULL || s->fd < 0) {
        Py_RETURN_NONE;
    }
    HubObject *hub = pc_hub_of(s->st, s->hubobj);
    if (hub == NULL) {
        return NULL;
    }
    PyObject *exc = PyExceptionClass_Check(args[1]) ? PyObject_CallNoArgs(args[1])
                                                     : Py_NewRef(args[1]);
    if (exc == NULL) {
        return NULL;
    }
    pc_hub_cancel_fd_events(hub, s->fd, ((events & 1) ? EPOLLIN : 0) |
                                         ((events & 2) ? EPOLLOUT : 0), exc);
    Py_DECREF(exc);
    Py_RETURN_NONE;
}

static PyObject *
sock_fileno(CoopSocket *s, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(s->fd);
}

/* _wait_io(events, timeout=<the socket's>): waits once until the descriptor may be ready for
 * read (1), write (2) or both (3); socket.timeout when the timeout passes. For the face's
 * Python-level loops (connect, sendmsg, ssl). */
static PyObject *
sock_wait_io(CoopSocket *s, PyObject *const *args, Py_ssize_t nargs)
{
    int events;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_wait_io(events, timeout=None)");
        return NULL;
    }
    if (pc_as_c_int(args[0], &events) < 0) {
        return NULL;
    }
    double timeout = s->timeout;
    if (nargs == 2) {
        if (args[1] == Py_None) {
            timeout = -1.0;
        }
        else {
            timeout = PyFloat_AsDouble(args[1]);
            if (timeout == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            if (timeout < 0) {
                return set_timeout_error(), NULL;
            }
        }
    }
    if (s->fd < 0) {
        set_ebadf();
        return NULL;
    }
    uint32_t ev = ((events & 1) ? EPOLLIN : 0) | ((events & 2) ? EPOLLOUT : 0);
    if (ev == (EPOLLIN | EPOLLOUT)) {
        /* both: ready now? else wait for input (a socket that cannot be written is waiting
         * for its peer, which also makes it readable or closes it) */
        struct pollfd p = {.fd = s->fd, .events = POLLIN | POLLOUT};
        if (poll(&p, 1, 0) > 0) {
            Py_RETURN_NONE;
        }
        ev = EPOLLIN;
    }
    if (coop_wait(s, ev, deadline_of(timeout)) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* -- attributes --------------------------------------------------------------------------------- */

static PyObject *
get_sock(CoopSocket *s, void *Py_UNUSED(c))
{
    if (s->sock == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(s->sock);
}

static PyObject *
get_timeout(CoopSocket *s, void *Py_UNUSED(c))
{
    if (s->timeout < 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(s->timeout);
}

static int
set_timeout(CoopSocket *s, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL || v == Py_None) {
        s->timeout = -1.0;
        return 0;
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    s->timeout = d < 0 ? -1.0 : d;
    return 0;
}

static PyObject *
get_closed(CoopSocket *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->closed);
}

static int
set_closed(CoopSocket *s, PyObject *v, void *Py_UNUSED(c))
{
    int t = v == NULL ? 0 : PyObject_IsTrue(v);
    if (t < 0) {
        return -1;
    }
    s->closed = t;
    return 0;
}

static PyObject *
get_io_refs(CoopSocket *s, void *Py_UNUSED(c))
{
    return PyLong_FromLong(s->io_refs);
}

static int
set_io_refs(CoopSocket *s, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL) {
        s->io_refs = 0;
        return 0;
    }
    long l = PyLong_AsLong(v);
    if (l == -1 && PyErr_Occurred()) {
        return -1;
    }
    s->io_refs = (int)l;
    return 0;
}

static PyGetSetDef coop_getset[] = {
    {"_sock", (getter)get_sock, NULL, "the wrapped _socket.socket (or the closed proxy)", NULL},
    {"timeout", (getter)get_timeout, (setter)set_timeout, "None, 0.0 or seconds", NULL},
    {"_closed", (getter)get_closed, (setter)set_closed, NULL, NULL},
    {"_io_refs", (getter)get_io_refs, (setter)set_io_refs, NULL, NULL},
    {NULL},
};

static PyMemberDef coop_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(CoopSocket, weakreflist), READONLY},
    {NULL},
};

/* -- life cycle --------------------------------------------------------------------------------- */

static int
coop_traverse(CoopSocket *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->sock);
    Py_VISIT(s->hubobj);
    return 0;
}

static int
coop_clear(CoopSocket *s)
{
    if (s->hubobj != NULL && s->fd >= 0) {
        drop_registration(s, 0, NULL);
    }
    Py_CLEAR(s->hubobj);
    Py_CLEAR(s->sock);
    return 0;
}

static void
coop_dealloc(CoopSocket *s)
{
    PyTypeObject *tp = Py_TYPE(s);
    PyObject_GC_UnTrack(s);
    if (s->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)s);
    }
    coop_clear(s);   /* the wrapped socket closes its descriptor (with its ResourceWarning) */
    tp->tp_free(s);
    Py_DECREF(tp);
}

static PyMethodDef coop_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))sock_recv, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recv(buffersize[, flags]) -> data")},
    {"recv_into", (PyCFunction)(void (*)(void))sock_recv_into, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recv_into(buffer, [nbytes[, flags]]) -> nbytes_read")},
    {"recvfrom", (PyCFunction)(void (*)(void))sock_recvfrom, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recvfrom(buffersize[, flags]) -> (data, address info)")},
    {"recvfrom_into", (PyCFunction)(void (*)(void))sock_recvfrom_into,
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recvfrom_into(buffer[, nbytes[, flags]]) -> (nbytes, address info)")},
    {"recvmsg", (PyCFunction)(void (*)(void))sock_recvmsg, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata, msg_flags, address)")},
    {"recvmsg_into", (PyCFunction)(void (*)(void))sock_recvmsg_into,
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("recvmsg_into(buffers[, ancbufsize[, flags]]) -> (nbytes, ancdata, msg_flags, "
               "address)")},
    {"send", (PyCFunction)(void (*)(void))sock_send, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("send(data[, flags]) -> count")},
    {"sendall", (PyCFunction)(void (*)(void))sock_sendall, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("sendall(data[, flags])")},
    {"sendto", (PyCFunction)(void (*)(void))sock_sendto, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("sendto(data[, flags], address) -> count")},
    {"accept", (PyCFunction)sock_accept, METH_NOARGS,
     PyDoc_STR("accept() -> (socket object, address info)")},
    {"close", (PyCFunction)sock_close, METH_NOARGS, PyDoc_STR("close()")},
    {"_real_close", (PyCFunction)sock_real_close, METH_NOARGS, NULL},
    {"_decref_socketios", (PyCFunction)sock_decref_socketios, METH_NOARGS, NULL},
    {"detach", (PyCFunction)sock_detach, METH_NOARGS,
     PyDoc_STR("detach() -> file descriptor")},
    {"shutdown", (PyCFunction)sock_shutdown, METH_O, PyDoc_STR("shutdown(flag)")},
    {"fileno", (PyCFunction)sock_fileno, METH_NOARGS, PyDoc_STR("fileno() -> integer")},
    {"_cancel_wait", (PyCFunction)(void (*)(void))sock_cancel_wait, METH_FASTCALL, NULL},
    {"_wait_io", (PyCFunction)(void (*)(void))sock_wait_io, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot coop_slots[] = {
    {Py_tp_new, coop_new},
    {Py_tp_init, coop_init},
    {Py_tp_dealloc, coop_dealloc},
    {Py_tp_traverse, coop_traverse},
    {Py_tp_clear, coop_clear},
    {Py_tp_methods, coop_methods},
    {Py_tp_getset, coop_getset},
    {Py_tp_members, coop_members},
    {Py_tp_doc, (void *)PyDoc_STR("The C core of pyconc.gevent.socket.socket (see socket.c).")},
    {0, NULL},
};

static PyType_Spec coop_spec = {
    .name = "pyconc._core.CoopSocket",
    .basicsize = sizeof(CoopSocket),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = coop_slots,
};

/* -- module functions --------------------------------------------------------------------------- */

/* _coop_socket_setup(socket_class, wrapped_class, closed_class, cancel_wait_ex): the face's
 * classes -- what accept() makes, what it wraps, the closed proxy, close()'s wake-up error. */
static PyObject *
coop_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_coop_socket_setup() takes 4 arguments");
        return NULL;
    }
    pc_state *st = PyModule_GetState(module);
    if (!PyType_Check(args[0]) || !PyType_IsSubtype((PyTypeObject *)args[0],
                                                    st->CoopSocket_Type)) {
        PyErr_SetString(PyExc_TypeError, "socket_class must subclass CoopSocket");
        return NULL;
    }
    Py_XSETREF(st->sock_class, Py_NewRef(args[0]));
    Py_XSETREF(st->sock_wref, Py_NewRef(args[1]));
    Py_XSETREF(st->sock_closed, Py_NewRef(args[2]));
    Py_XSETREF(st->sock_cancel, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

/* wait_fd(fd, events): parks until fd may be ready for read (1) / write (2) / either (3), with
 * no timeout (the face wraps it in a Timeout, as gevent); a thread without a hub polls. */
static PyObject *
coop_wait_fd(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, events;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "wait_fd(fd, events)");
        return NULL;
    }
    if (pc_as_c_int(args[0], &fd) < 0 || pc_as_c_int(args[1], &events) < 0) {
        return NULL;
    }
    pc_state *st = PyModule_GetState(module);
    uint32_t ev = ((events & 1) ? EPOLLIN : 0) | ((events & 2) ? EPOLLOUT : 0);
    int y = pc_hub != NULL ? pc_hub->can_yield() : 0;
    HubObject *hub = y > 0 ? pc_hub_get(st, 0) : NULL;
    if (y < 0) {
        pc_hub->blocking_error();
        return NULL;
    }
    if (hub == NULL) {
        if (thread_wait(fd, ev, PC_FOREVER) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* gevent's wait_read/wait_write/wait_readwrite each make a watcher of their own: several
     * greenlets may wait for one fd, one may wait beside a recv, and all wake. Either
     * direction: the hub has one waiter per direction, so a private epoll instance holds fd
     * for both (a rarely used call). */
    int r = ev == (EPOLLIN | EPOLLOUT) ? pc_io_hub_wait_private(hub, fd, ev, PC_FOREVER)
                                       : pc_io_hub_wait_shared(st, hub, fd, ev, PC_FOREVER);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* cancel_fd(fd, events, error): wakes this thread's greenlets waiting (wait_fd) on fd. */
static PyObject *
coop_cancel_fd(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, events;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "cancel_fd(fd, events, error)");
        return NULL;
    }
    if (pc_as_c_int(args[0], &fd) < 0 || pc_as_c_int(args[1], &events) < 0) {
        return NULL;
    }
    HubObject *hub = pc_hub_get(PyModule_GetState(module), 0);
    if (hub == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyExceptionClass_Check(args[2]) ? PyObject_CallNoArgs(args[2])
                                                     : Py_NewRef(args[2]);
    if (exc == NULL) {
        return NULL;
    }
    pc_hub_cancel_fd_events(hub, fd, ((events & 1) ? EPOLLIN : 0) | ((events & 2) ? EPOLLOUT : 0),
                            exc);
    Py_DECREF(exc);
    Py_RETURN_NONE;
}

static PyMethodDef coop_module_methods[] = {
    {"_coop_socket_setup", (PyCFunction)(void (*)(void))coop_setup, METH_FASTCALL, NULL},
    {"wait_fd", (PyCFunction)(void (*)(void))coop_wait_fd, METH_FASTCALL,
     PyDoc_STR("wait_fd(fd, events): wait until fd may be readable (1), writable (2), either (3)")},
    {"cancel_fd", (PyCFunction)(void (*)(void))coop_cancel_fd, METH_FASTCALL,
     PyDoc_STR("cancel_fd(fd, events, error): wake this thread's wait_fd waiters of fd")},
    {NULL, NULL, 0, NULL},
};

static int
intern(PyObject **slot, const char *s)
{
    if (*slot == NULL) {
        *slot = PyUnicode_InternFromString(s);
    }
    return *slot == NULL ? -1 : 0;
}

int
pc_socket_init_types(PyObject *module, pc_state *st)
{
    if (intern(&str_recvfrom, "recvfrom") < 0 || intern(&str_recvfrom_into, "recvfrom_into") < 0 ||
            intern(&str_recvmsg, "recvmsg") < 0 || intern(&str_recvmsg_into, "recvmsg_into") < 0 ||
            intern(&str_sendto, "sendto") < 0 || intern(&str__accept, "_accept") < 0 ||
            intern(&str_close, "close") < 0 || intern(&str_detach, "detach") < 0 ||
            intern(&str_shutdown, "shutdown") < 0 || intern(&str_fileno, "fileno") < 0 ||
            intern(&str_family, "family") < 0 || intern(&str_type, "type") < 0 ||
            intern(&str_proto, "proto") < 0 ||
            intern(&str_gevent_sock_class, "_gevent_sock_class") < 0 ||
            intern(&str__real_close, "_real_close") < 0) {
        return -1;
    }
    st->float_zero = PyFloat_FromDouble(0.0);
    if (st->float_zero == NULL) {
        return -1;
    }
    if (pc_add_type(module, &coop_spec, NULL, &st->CoopSocket_Type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, coop_module_methods);
}
