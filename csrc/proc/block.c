/* block.c -- pyconc._core.SharedBlock: a plain block of shared memory exposing the buffer
 * protocol (pyconc.multiprocessing's Value and Array lay ctypes objects over it), pickled by
 * name like every process-shared object (shm.h). */
#include "pyconc.h"
#include "shm.h"

#include <errno.h>

#define BLOCK_OFF 64u   /* data starts after the segment header, 64-byte aligned */

typedef struct {
    PyObject_HEAD
    pc_shm shm;
    Py_ssize_t size;
    Py_ssize_t exports;
    PyObject *weakreflist;
} BlockObject;

static PyObject *
block_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"size", NULL};
    Py_ssize_t size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:SharedBlock", kwlist, &size)) {
        return NULL;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return NULL;
    }
    if ((size_t)size > (size_t)PY_SSIZE_T_MAX - BLOCK_OFF) {
        /* BLOCK_OFF + size would not be a valid file size: the error ftruncate gives for a
         * size it cannot have, as the stdlib's heap arena reports it */
        errno = EFBIG;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    BlockObject *self = (BlockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->shm.fd = -1;
    if (pc_shm_create(&self->shm, BLOCK_OFF + (size_t)size, PC_SHM_BLOCK) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->size = size;
    return (PyObject *)self;
}

static PyObject *
block_attach(PyObject *cls, PyObject *name)
{
    long pid;
    int fd;
    uint64_t token;
    if (pc_shm_parse_name(name, &pid, &fd, &token) < 0) {
        return NULL;
    }
    BlockObject *self = (BlockObject *)((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
    if (self == NULL) {
        return NULL;
    }
    self->shm.fd = -1;
    if (pc_shm_attach(&self->shm, pid, fd, token, PC_SHM_BLOCK) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->size = (Py_ssize_t)(self->shm.size - BLOCK_OFF);
    return (PyObject *)self;
}

static void
block_dealloc(BlockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    pc_shm_close(&self->shm);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->shm.base + BLOCK_OFF, self->size, 0,
                          flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
block_releasebuffer(BlockObject *self, Py_buffer *view)
{
    self->exports--;
}

static PyObject *
block_name(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    return pc_shm_name(&self->shm);
}

static PyObject *
block_len(BlockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->size);
}

static PyObject *
block_token(BlockObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(pc_shm_hdr(&self->shm)->token);
}

static PyMethodDef block_methods[] = {
    {"_name", (PyCFunction)block_name, METH_NOARGS, "(pid, fd, token) for pickling"},
    {"_attach", (PyCFunction)block_attach, METH_O | METH_CLASS, "attach by _name()"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef block_getset[] = {
    {"size", (getter)block_len, NULL, NULL, NULL},
    {"token", (getter)block_token, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef block_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BlockObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot block_slots[] = {
    {Py_tp_dealloc, block_dealloc},
    {Py_tp_new, block_new},
    {Py_tp_methods, block_methods},
    {Py_tp_getset, block_getset},
    {Py_tp_members, block_members},
    {Py_bf_getbuffer, block_getbuffer},
    {Py_bf_releasebuffer, block_releasebuffer},
    {Py_tp_doc, "SharedBlock(size): zero-filled shared memory with the buffer protocol"},
    {0, NULL},
};

static PyType_Spec block_spec = {
    .name = "pyconc._core.SharedBlock",
    .basicsize = sizeof(BlockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = block_slots,
};

int
pc_block_init_types(PyObject *module, pc_state *st)
{
    return pc_add_type(module, &block_spec, NULL, &st->SharedBlock_Type);
}
