/* fdio.c -- waiting on plain file descriptors (pipes, pidfds) and cooperative read/write on them:
 * the C under pyconc.gevent.os (nb_read, nb_write, close), pyconc.gevent.subprocess (its pipes,
 * and a child's exit through a pidfd) and pyconc.gevent.server's pauses.
 *
 * One rule for every wait here, the same as for every pyconc primitive (wait.h): a greenlet of a
 * thread that has a hub parks on the hub's epoll (pc_hub_wait_fd) and the others run; anything
 * else -- a plain thread, a main greenlet with no hub -- blocks the OS thread in poll() with the
 * GIL released, interruptible (EINTR runs the signal handlers; one that raises ends the wait).
 * The hub greenlet itself cannot wait (BlockingSwitchOutError, as gevent's).
 *
 * Functions (module pyconc._core, private: the Python faces give them gevent's names):
 *   _fd_wait(fd, events, timeout=None)  events: 1 read, 2 write (gevent's loop.io flags).
 *                                       True when ready, False when the timeout passed. A
 *                                       descriptor that is ready already returns at once,
 *                                       without a trip through the hub.
 *   nb_read(fd, n) / nb_write(fd, buf)  gevent.os's: the system call first; on EAGAIN (a
 *                                       non-blocking descriptor with nothing to give) wait,
 *                                       then again. os.read / os.write's results and errors.
 *   _fd_cancel(fd)                      wakes the greenlets of this thread's hub waiting on fd
 *                                       with gevent's OSError(EBADF, 'File descriptor was closed
 *                                       in another greenlet') (os.close of a watched fd).
 *
 * State: none of its own; everything is the calling thread's hub's (hub.c) or the kernel's.
 * All functions need the GIL; poll() and read()/write() of the thread side run without it.
 */
#include "pyconc.h"
#include "hub.h"
#include "iowait.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { IO_READ = 1, IO_WRITE = 2 };

/* Is fd ready for events right now (poll with a zero timeout)? 1 yes, 0 no, -1 with OSError
 * (EBADF for a closed descriptor, as os.read would say). POLLHUP / POLLERR count as ready: the
 * read or write that follows reports them. */
static int
ready_now(int fd, int events)
{
    struct pollfd p = {fd, (short)(((events & IO_READ) ? POLLIN : 0) |
                                   ((events & IO_WRITE) ? POLLOUT : 0)), 0};
    int r;
    do {
        r = poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (r > 0 && (p.revents & POLLNVAL)) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return r > 0;
}

/* Blocks the OS thread until fd is ready, the GIL released. rel_ns: -1 forever. 1 ready, 0 timed
 * out, -1 with an exception (a signal handler raised, or poll failed). */
static int
thread_wait(int fd, int events, pc_time_t rel_ns)
{
    pc_time_t deadline = rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
    struct pollfd p = {fd, (short)(((events & IO_READ) ? POLLIN : 0) |
                                   ((events & IO_WRITE) ? POLLOUT : 0)), 0};
    for (;;) {
        int ms = -1;
        if (deadline != PC_FOREVER) {
            pc_time_t left = deadline - pc_monotonic_ns();
            ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
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
            if (p.revents & POLLNVAL) {
                errno = EBADF;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            return 1;
        }
        if (r < 0) {
            if (pc_syscall_failed(err) < 0) {
                return -1;
            }
            continue;
        }
        if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
            return 0;
        }
    }
}

/* Parks the calling greenlet on its hub until fd is ready for events (one direction).
 * 1 ready, 0 timed out, -1 with an exception. */
static int
hub_wait(pc_state *st, int fd, int events, pc_time_t rel_ns)
{
    HubObject *hub = pc_hub_get(st, 0);
    if (hub == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "fd wait: no hub in this thread");
        }
        return -1;
    }
    pc_time_t deadline = rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
    /* gevent's wait_read/wait_write each make a watcher of their own: several greenlets may
     * wait for one fd (and one beside a socket's recv), and all wake */
    return pc_io_hub_wait_shared(st, hub, fd, (events & IO_READ) ? EPOLLIN : EPOLLOUT,
                                 deadline);
}

/* Waits until fd is ready for events: parks the greenlet in a hub, else blocks the thread.
 * check_first: look with poll() first and return at once if it is ready. 1 ready, 0 timed out,
 * -1 with an exception. */
static int
fd_wait(pc_state *st, int fd, int events, pc_time_t rel_ns, int check_first)
{
    if (check_first || rel_ns == 0) {
        int r = ready_now(fd, events);
        if (r != 0 || rel_ns == 0) {
            return r;
        }
    }
    int how = pc_hub != NULL ? pc_hub->can_yield() : 0;
    if (how < 0) {
        return pc_hub->blocking_error();
    }
    if (how > 0) {
        return hub_wait(st, fd, events, rel_ns);
    }
    return thread_wait(fd, events, rel_ns);
}

static int
fd_arg(PyObject *obj, int *fd)
{
    int v = PyObject_AsFileDescriptor(obj);
    if (v < 0) {
        return -1;
    }
    *fd = v;
    return 0;
}

/* _fd_wait(fd, events, timeout=None) -> bool */
static PyObject *
m_fd_wait(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd", "events", "timeout"};
    PyObject *a[3];
    if (pc_parse_args("_fd_wait", args, nargs, kwnames, names, 3, a) < 0) {
        return NULL;
    }
    if (a[0] == NULL || a[1] == NULL) {
        PyErr_SetString(PyExc_TypeError, "_fd_wait() needs fd and events");
        return NULL;
    }
    int fd, events;
    if (fd_arg(a[0], &fd) < 0 || pc_as_c_int(a[1], &events) < 0) {
        return NULL;
    }
    if (events != IO_READ && events != IO_WRITE) {
        PyErr_Format(PyExc_ValueError, "illegal event mask: %d", events);
        return NULL;
    }
    pc_time_t rel = -1;
    if (a[2] != NULL && pc_parse_seconds(a[2], &rel) < 0) {
        return NULL;
    }
    int r = fd_wait((pc_state *)PyModule_GetState(module), fd, events, rel, 1);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* nb_read(fd, n) -> bytes */
static PyObject *
m_nb_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "nb_read() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd;
    if (fd_arg(args[0], &fd) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);   /* os.read's answer */
    }
    PyObject *buf = PyBytes_FromStringAndSize(NULL, n);
    if (buf == NULL) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    for (;;) {
        ssize_t got = read(fd, PyBytes_AS_STRING(buf), (size_t)n);
        if (got >= 0) {
            if (got != n && _PyBytes_Resize(&buf, got) < 0) {
                return NULL;
            }
            return buf;
        }
        int err = errno;
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0) {
                break;
            }
            continue;
        }
        if (err != EAGAIN && err != EWOULDBLOCK) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        if (fd_wait(st, fd, IO_READ, -1, 0) < 0) {
            break;
        }
    }
    Py_DECREF(buf);
    return NULL;
}

/* nb_write(fd, buf) -> int */
static PyObject *
m_nb_write(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "nb_write() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int fd;
    if (fd_arg(args[0], &fd) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    PyObject *result = NULL;
    for (;;) {
        ssize_t put = write(fd, view.buf, (size_t)view.len);
        if (put >= 0) {
            result = PyLong_FromSsize_t(put);
            break;
        }
        int err = errno;
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0) {
                break;
            }
            continue;
        }
        if (err != EAGAIN && err != EWOULDBLOCK) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        if (fd_wait(st, fd, IO_WRITE, -1, 0) < 0) {
            break;
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* _fd_cancel(fd): wake this thread's greenlets waiting on fd with gevent's EBADF error. */
static PyObject *
m_fd_cancel(PyObject *module, PyObject *arg)
{
    int fd;
    if (fd_arg(arg, &fd) < 0) {
        return NULL;
    }
    HubObject *hub = pc_hub_get((pc_state *)PyModule_GetState(module), 0);
    if (hub != NULL) {
        PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", EBADF,
                                              "File descriptor was closed in another greenlet");
        if (exc == NULL) {
            return NULL;
        }
        pc_hub_cancel_fd(hub, fd, exc);
        Py_DECREF(exc);
    }
    Py_RETURN_NONE;
}

static PyMethodDef fdio_methods[] = {
    {"_fd_wait", (PyCFunction)(void (*)(void))m_fd_wait, METH_FASTCALL | METH_KEYWORDS,
     "_fd_wait(fd, events, timeout=None): wait until fd is ready (events 1 read, 2 write); "
     "True, or False when the timeout passed. Parks the greenlet in a hub, else "
     "blocks the thread."},
    {"nb_read", (PyCFunction)(void (*)(void))m_nb_read, METH_FASTCALL,
     "nb_read(fd, n): read up to n bytes, waiting cooperatively while a non-blocking fd has "
     "none"},
    {"nb_write", (PyCFunction)(void (*)(void))m_nb_write, METH_FASTCALL,
     "nb_write(fd, buf): write some of buf, waiting cooperatively while a non-blocking fd is "
     "full; the number of bytes written"},
    {"_fd_cancel", m_fd_cancel, METH_O,
     "_fd_cancel(fd): wake the greenlets of this thread's hub waiting on fd with EBADF"},
    {NULL, NULL, 0, NULL},
};

int
pc_fdio_install(PyObject *module, pc_state *st)
{
    return PyModule_AddFunctions(module, fdio_methods);
}
