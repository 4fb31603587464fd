/* connection.c -- pyconc._core.Connection: one end of a Pipe (a socketpair for duplex pipes, a
 * pipe(2) otherwise), carrying length-prefixed messages: a 4-byte big-endian length, or
 * 0xFFFFFFFF and an 8-byte length for messages of 2 GiB and more. send()/recv() pickle
 * (protocol 5). Every blocking read, write and poll releases the GIL and is interruptible:
 * EINTR runs the signal handlers and gives up if one raised.
 */
#include "pyconc.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    int fd;
    int readable, writable;
    pc_spin spin;             /* the receive spin's budget */
    PyObject *dumps, *loads;
    PyObject *weakreflist;
} ConnObject;

static int
conn_check(ConnObject *self, int want_read, int want_write)
{
    if (self->fd < 0) {
        PyErr_SetString(PyExc_OSError, "handle is closed");
        return -1;
    }
    if (want_read && !self->readable) {
        PyErr_SetString(PyExc_OSError, "connection is write-only");
        return -1;
    }
    if (want_write && !self->writable) {
        PyErr_SetString(PyExc_OSError, "connection is read-only");
        return -1;
    }
    return 0;
}

/* Writes all of iov (GIL released). 0, or -1 with an exception. */
static int
write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w;
        int err = 0;
        PC_ASAN_THREAD_GUARD();
        Py_BEGIN_ALLOW_THREADS
        w = writev(fd, iov, n);
        if (w < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (w < 0) {
            if (pc_syscall_failed(err) < 0) {
                return -1;
            }
            continue;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads exactly n bytes. 1 done, 0 end of file before any byte (only if eof_ok), -1 error. */
static int
read_exact(int fd, char *buf, size_t n, int eof_ok)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r;
        int err = 0;
        PC_ASAN_THREAD_GUARD();
        Py_BEGIN_ALLOW_THREADS
        r = read(fd, buf + got, n - got);
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r < 0) {
            if (pc_syscall_failed(err) < 0) {
                return -1;
            }
            continue;
        }
        if (r == 0) {
            if (got == 0 && eof_ok) {
                PyErr_SetNone(PyExc_EOFError);
                return 0;
            }
            PyErr_SetString(PyExc_OSError, "got end of file during message");
            return -1;
        }
        got += (size_t)r;
    }
    return 1;
}

static int
send_buffer(ConnObject *self, const char *data, uint64_t n)
{
    unsigned char hdr[12];
    struct iovec iov[2];
    if (n < 0x7fffffffu) {
        hdr[0] = (unsigned char)(n >> 24);
        hdr[1] = (unsigned char)(n >> 16);
        hdr[2] = (unsigned char)(n >> 8);
        hdr[3] = (unsigned char)n;
        iov[0].iov_len = 4;
    }
    else {
        memset(hdr, 0xff, 4);
        for (int i = 0; i < 8; i++) {
            hdr[4 + i] = (unsigned char)(n >> (56 - 8 * i));
        }
        iov[0].iov_len = 12;
    }
    iov[0].iov_base = hdr;
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = (size_t)n;
    return write_all(self->fd, iov, n ? 2 : 1);
}

/* Reads a message header from fd (spinning first on sp's budget). 1 with *n set, 0 EOF
 * (EOFError set), -1 error. */
static int
recv_header(int fd, pc_spin *sp, uint64_t *n)
{
    unsigned char hdr[8];
    if (pc_spin_until_readable(fd, sp) < 0) {
        return -1;
    }
    int r = read_exact(fd, (char *)hdr, 4, 1);
    if (r <= 0) {
        return r;
    }
    uint64_t len = ((uint64_t)hdr[0] << 24) | ((uint64_t)hdr[1] << 16) | ((uint64_t)hdr[2] << 8) |
                   hdr[3];
    if (len == 0xffffffffu) {
        if (read_exact(fd, (char *)hdr, 8, 0) < 0) {
            return -1;
        }
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | hdr[i];
        }
    }
    *n = len;
    return 1;
}

static PyObject *
recv_message(ConnObject *self, Py_ssize_t maxlength)
{
    /* One message comes from one descriptor, even if __init__ or close() runs in another
     * thread while this one reads (the GIL is released between the reads). */
    int fd = self->fd;
    uint64_t n;
    int r = recv_header(fd, &self->spin, &n);
    if (r <= 0) {
        return NULL;
    }
    if (maxlength >= 0 && n > (uint64_t)maxlength) {
        /* The stream is out of step now (the message is not read). As the stdlib: a duplex
         * end stays usable for sending, a read-only end is closed. */
        if (self->writable) {
            self->readable = 0;
        }
        else {
            close(self->fd);
            self->fd = -1;
        }
        PyErr_SetString(PyExc_OSError, "bad message length");
        return NULL;
    }
    if (n > (uint64_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b == NULL) {
        return NULL;
    }
    if (n > 0 && read_exact(fd, PyBytes_AS_STRING(b), (size_t)n, 0) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    return b;
}

/* -- methods ----------------------------------------------------------------------------- */

static int
conn_init(ConnObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"handle", "readable", "writable", NULL};
    int fd, readable = 1, writable = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|pp:Connection", kwlist, &fd, &readable,
                                     &writable)) {
        return -1;
    }
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "invalid handle");
        return -1;
    }
    if (!readable && !writable) {
        PyErr_SetString(PyExc_ValueError, "at least one of `readable` and `writable` must be True");
        return -1;
    }
    if (self->dumps == NULL && pc_pickle_functions(&self->dumps, &self->loads) < 0) {
        return -1;
    }
    self->fd = fd;
    self->readable = readable;
    self->writable = writable;
    return 0;
}

static PyObject *
conn_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ConnObject *self = (ConnObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        pc_spin_init(&self->spin);
    }
    if (self != NULL) {
        self->fd = -1;
    }
    return (PyObject *)self;
}

static void
conn_dealloc(ConnObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    if (self->fd >= 0) {
        close(self->fd);
    }
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->loads);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* `a <op> b` for send_bytes_range: 1 true, 0 false, -1 error. */
static int
cmp(PyObject *a, PyObject *b, int op)
{
    return PyObject_RichCompareBool(a, b, op);
}

/* One index of the slice m[start:stop], as _PyEval_SliceIndex takes it. 0 or -1. */
static int
slice_index(PyObject *v, Py_ssize_t *out)
{
    if (!PyIndex_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "slice indices must be integers or None or have an "
                        "__index__ method");
        return -1;
    }
    *out = PyNumber_AsSsize_t(v, NULL);   /* clamped, as a slice's indices are */
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* The stdlib's send_bytes(buf, offset, size) on n bytes, with Python's own operations on any
 * offset and size objects:
 *     if offset < 0: ValueError("offset is negative")
 *     if n < offset: ValueError("buffer length < offset")
 *     if size is None: size = n - offset
 *     elif size < 0: ValueError("size is negative")
 *     elif offset + size > n: ValueError("buffer length < offset + size")
 *     m[offset:offset + size]
 * Sets *start and *len (exact ints take a native path: compared without overflow). 0 or -1. */
static int
send_bytes_range(Py_ssize_t n, PyObject *offset, PyObject *size, Py_ssize_t *start,
                 Py_ssize_t *len)
{
    if (PyLong_CheckExact(offset) && (size == Py_None || PyLong_CheckExact(size))) {
        int o1 = 0, o2 = 0;
        long long off = PyLong_AsLongLongAndOverflow(offset, &o1);
        long long sz = size == Py_None ? 0 : PyLong_AsLongLongAndOverflow(size, &o2);
        if (!o1 && !o2) {
            if (off < 0) {
                PyErr_SetString(PyExc_ValueError, "offset is negative");
                return -1;
            }
            if (n < off) {
                PyErr_SetString(PyExc_ValueError, "buffer length < offset");
                return -1;
            }
            if (size == Py_None) {
                sz = n - off;
            }
            else if (sz < 0) {
                PyErr_SetString(PyExc_ValueError, "size is negative");
                return -1;
            }
            else if (sz > n - off) {   /* offset + size > n, without overflowing */
                PyErr_SetString(PyExc_ValueError, "buffer length < offset + size");
                return -1;
            }
            *start = (Py_ssize_t)off;
            *len = (Py_ssize_t)sz;
            return 0;
        }
    }
    PyObject *zero = PyLong_FromLong(0), *nobj = PyLong_FromSsize_t(n);
    PyObject *total = NULL, *end = NULL;
    int rc = -1, r;
    if (zero == NULL || nobj == NULL) {
        goto done;
    }
    if ((r = cmp(offset, zero, Py_LT)) != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "offset is negative");
        }
        goto done;
    }
    if ((r = cmp(nobj, offset, Py_LT)) != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "buffer length < offset");
        }
        goto done;
    }
    if (size == Py_None) {
        size = total = PyNumber_Subtract(nobj, offset);
        if (size == NULL) {
            goto done;
        }
    }
    else {
        if ((r = cmp(size, zero, Py_LT)) != 0) {
            if (r > 0) {
                PyErr_SetString(PyExc_ValueError, "size is negative");
            }
            goto done;
        }
        PyObject *sum = PyNumber_Add(offset, size);
        r = sum ? cmp(sum, nobj, Py_GT) : -1;
        Py_XDECREF(sum);
        if (r != 0) {
            if (r > 0) {
                PyErr_SetString(PyExc_ValueError, "buffer length < offset + size");
            }
            goto done;
        }
    }
    end = PyNumber_Add(offset, size);
    Py_ssize_t lo, hi;
    if (end == NULL || slice_index(offset, &lo) < 0 || slice_index(end, &hi) < 0) {
        goto done;
    }
    PySlice_AdjustIndices(n, &lo, &hi, 1);
    *start = lo;
    *len = hi - lo;
    rc = 0;
done:
    Py_XDECREF(zero);
    Py_XDECREF(nobj);
    Py_XDECREF(total);
    Py_XDECREF(end);
    return rc;
}

static PyObject *
conn_send_bytes(ConnObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buf", "offset", "size", NULL};
    Py_buffer view;
    PyObject *offset = NULL, *size_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|OO:send_bytes", kwlist, &view, &offset,
                                     &size_obj)) {
        return NULL;
    }
    PyObject *ret = NULL;
    PyObject *zero = offset == NULL ? PyLong_FromLong(0) : NULL;
    Py_ssize_t start, len;
    if (conn_check(self, 0, 1) == 0 && (offset != NULL || zero != NULL) &&
            send_bytes_range(view.len, offset ? offset : zero, size_obj, &start, &len) == 0 &&
            send_buffer(self, (const char *)view.buf + start, (uint64_t)len) == 0) {
        ret = Py_NewRef(Py_None);
    }
    Py_XDECREF(zero);
    PyBuffer_Release(&view);
    return ret;
}

static PyObject *
conn_send(ConnObject *self, PyObject *obj)
{
    if (conn_check(self, 0, 1) < 0) {
        return NULL;
    }
    PyObject *data = pc_pickle_dumps(self->dumps, obj);
    if (data == NULL) {
        return NULL;
    }
    int r = send_buffer(self, PyBytes_AS_STRING(data), (uint64_t)PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
conn_recv_bytes(ConnObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxlength", NULL};
    PyObject *maxobj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:recv_bytes", kwlist, &maxobj)) {
        return NULL;
    }
    if (conn_check(self, 1, 0) < 0) {
        return NULL;
    }
    /* `if maxlength is not None and maxlength < 0`, then a message longer than maxlength is
     * `size > maxlength`: any number works (2.5 allows 2 bytes; NaN and inf, any length). */
    Py_ssize_t maxlength = -1;
    if (maxobj != Py_None) {
        PyObject *zero = PyLong_FromLong(0);
        int negative = zero ? PyObject_RichCompareBool(maxobj, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (negative != 0) {
            if (negative > 0) {
                PyErr_SetString(PyExc_ValueError, "negative maxlength");
            }
            return NULL;
        }
        if (PyIndex_Check(maxobj)) {
            maxlength = PyNumber_AsSsize_t(maxobj, NULL);   /* beyond: no message is longer */
            if (maxlength == PY_SSIZE_T_MAX) {
                maxlength = -1;
            }
        }
        else {
            double d = PyFloat_AsDouble(maxobj);
            maxlength = !(d < 9e18) ? -1 : (Py_ssize_t)floor(d);   /* NaN and huge: no limit */
        }
        if (maxlength == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    return recv_message(self, maxlength);
}

static PyObject *
conn_recv(ConnObject *self, PyObject *Py_UNUSED(ignored))
{
    if (conn_check(self, 1, 0) < 0) {
        return NULL;
    }
    PyObject *b = recv_message(self, -1);
    if (b == NULL) {
        return NULL;
    }
    PyObject *obj = pc_pickle_loads(self->loads, b);
    Py_DECREF(b);
    return obj;
}

/* recv_bytes_into(buf, offset=0): returns the size; a message that does not fit raises the
 * exception class passed as too_short (multiprocessing.BufferTooShort) with the whole message. */
static PyObject *
conn_recv_bytes_into(ConnObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buf", "offset", "too_short", NULL};
    Py_buffer view;
    PyObject *offset = NULL;
    PyObject *too_short = PyExc_ValueError;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "w*|OO:recv_bytes_into", kwlist, &view,
                                     &offset, &too_short)) {
        return NULL;
    }
    /* The stdlib's steps, with Python's operations on any offset object:
     *     if offset < 0: ValueError("negative offset")
     *     elif offset > bytesize: ValueError("offset too large")
     *     <read the message: size bytes>
     *     if bytesize < offset + size: raise too_short(message)
     *     m[offset // itemsize : (offset + size) // itemsize] <- message */
    Py_ssize_t itemsize = view.itemsize > 0 ? view.itemsize : 1;
    PyObject *ret = NULL, *zero = PyLong_FromLong(0), *bytesize = PyLong_FromSsize_t(view.len);
    PyObject *b = NULL, *total = NULL, *isz = NULL, *lo_obj = NULL, *hi_obj = NULL;
    if (offset == NULL) {
        offset = zero;
    }
    int r;
    if (zero == NULL || bytesize == NULL || conn_check(self, 1, 0) < 0) {
        goto done;
    }
    if ((r = PyObject_RichCompareBool(offset, zero, Py_LT)) != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "negative offset");
        }
        goto done;
    }
    if ((r = PyObject_RichCompareBool(offset, bytesize, Py_GT)) != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "offset too large");
        }
        goto done;
    }
    b = recv_message(self, -1);
    if (b == NULL) {
        goto done;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    PyObject *size = PyLong_FromSsize_t(n);
    total = size ? PyNumber_Add(offset, size) : NULL;
    Py_XDECREF(size);
    if (total == NULL || (r = PyObject_RichCompareBool(bytesize, total, Py_LT)) < 0) {
        goto done;
    }
    if (r > 0) {
        PyErr_SetObject(too_short, b);
        goto done;
    }
    Py_ssize_t lo, hi;
    isz = PyLong_FromSsize_t(itemsize);
    lo_obj = isz ? PyNumber_FloorDivide(offset, isz) : NULL;
    hi_obj = lo_obj ? PyNumber_FloorDivide(total, isz) : NULL;
    if (hi_obj == NULL || slice_index(lo_obj, &lo) < 0 || slice_index(hi_obj, &hi) < 0) {
        goto done;
    }
    Py_ssize_t items = view.len / itemsize;
    PySlice_AdjustIndices(items, &lo, &hi, 1);
    Py_ssize_t room = (hi - lo) * itemsize;   /* BytesIO.readinto fills at most the slice */
    memcpy((char *)view.buf + lo * itemsize, PyBytes_AS_STRING(b), (size_t)(n < room ? n : room));
    ret = PyLong_FromSsize_t(n);
done:
    Py_XDECREF(zero);
    Py_XDECREF(bytesize);
    Py_XDECREF(b);
    Py_XDECREF(total);
    Py_XDECREF(isz);
    Py_XDECREF(lo_obj);
    Py_XDECREF(hi_obj);
    PyBuffer_Release(&view);
    return ret;
}

static PyObject *
conn_poll(ConnObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:poll", kwlist, &timeout)) {
        return NULL;
    }
    if (conn_check(self, 1, 0) < 0) {
        return NULL;
    }
    pc_time_t rel = 0;     /* poll() with no argument does not block */
    if (timeout != NULL && pc_parse_poll_timeout(timeout, &rel) < 0) {
        return NULL;
    }
    int r = pc_wait_fd(self->fd, rel);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
conn_close(ConnObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
    Py_RETURN_NONE;
}

static PyObject *
conn_fileno(ConnObject *self, PyObject *Py_UNUSED(ignored))
{
    if (conn_check(self, 0, 0) < 0) {
        return NULL;
    }
    return PyLong_FromLong(self->fd);
}

static PyObject *
conn_detach(ConnObject *self, PyObject *Py_UNUSED(ignored))
{
    int fd = self->fd;
    self->fd = -1;
    return PyLong_FromLong(fd);
}

static PyObject *
conn_enter(ConnObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *
conn_exit(ConnObject *self, PyObject *Py_UNUSED(args))
{
    return conn_close(self, NULL);
}

static PyObject *
conn_get_closed(ConnObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->fd < 0);
}

static PyObject *
conn_get_readable(ConnObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->readable);
}

static PyObject *
conn_get_writable(ConnObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->writable);
}

static PyMethodDef conn_methods[] = {
    {"send", (PyCFunction)conn_send, METH_O, "send(obj): send a picklable object"},
    {"recv", (PyCFunction)conn_recv, METH_NOARGS, "recv(): receive an object"},
    {"send_bytes", (PyCFunction)(void (*)(void))conn_send_bytes, METH_VARARGS | METH_KEYWORDS,
     "send_bytes(buf, offset=0, size=None)"},
    {"recv_bytes", (PyCFunction)(void (*)(void))conn_recv_bytes, METH_VARARGS | METH_KEYWORDS,
     "recv_bytes(maxlength=None)"},
    {"_recv_bytes_into", (PyCFunction)(void (*)(void))conn_recv_bytes_into,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"poll", (PyCFunction)(void (*)(void))conn_poll, METH_VARARGS | METH_KEYWORDS,
     "poll(timeout=0.0)"},
    {"close", (PyCFunction)conn_close, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)conn_fileno, METH_NOARGS, NULL},
    {"_detach", (PyCFunction)conn_detach, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)conn_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)conn_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef conn_getset[] = {
    {"closed", (getter)conn_get_closed, NULL, "True if the connection is closed", NULL},
    {"readable", (getter)conn_get_readable, NULL, NULL, NULL},
    {"writable", (getter)conn_get_writable, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef conn_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ConnObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot conn_slots[] = {
    {Py_tp_dealloc, conn_dealloc},
    {Py_tp_new, conn_new},
    {Py_tp_init, conn_init},
    {Py_tp_methods, conn_methods},
    {Py_tp_getset, conn_getset},
    {Py_tp_members, conn_members},
    {Py_tp_doc, "Connection(handle, readable=True, writable=True): one end of a pipe"},
    {0, NULL},
};

static PyType_Spec conn_spec = {
    .name = "pyconc._core.Connection",
    .basicsize = sizeof(ConnObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = conn_slots,
};

static PyObject *
pc_wait_fds_py(PyObject *module, PyObject *args)
{
    PyObject *seq, *timeout = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:wait_fds", &seq, &timeout)) {
        return NULL;
    }
    int fds[16];
    PyObject *fast = PySequence_Fast(seq, "wait_fds needs a sequence of file descriptors");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > 16) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "at most 16 file descriptors");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        fds[i] = PyObject_AsFileDescriptor(PySequence_Fast_GET_ITEM(fast, i));
        if (fds[i] < 0) {
            Py_DECREF(fast);
            return NULL;
        }
    }
    Py_DECREF(fast);
    pc_time_t rel;
    if (pc_parse_seconds(timeout, &rel) < 0) {
        return NULL;
    }
    int r = pc_wait_fds(fds, (int)n, rel);
    if (r == -1) {
        return NULL;
    }
    if (r == -2) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(r);
}

static PyMethodDef conn_module_methods[] = {
    {"wait_fds", pc_wait_fds_py, METH_VARARGS,
     "wait_fds(fds, timeout=None): index of the first readable fd, or None on timeout"},
    {NULL, NULL, 0, NULL},
};

int
pc_connection_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &conn_spec, NULL, &st->Connection_Type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, conn_module_methods);
}
