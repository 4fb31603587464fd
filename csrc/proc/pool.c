/* pool.c -- the hot paths of pyconc.multiprocessing.Pool, in C: the worker loop, and on the
 * pool's side the building of task frames (_pool_task) and the result loop (_pool_results,
 * _pool_decode).
 *
 * A Pool worker takes task frames from the pool's task queue and puts result frames on its
 * result queue (both MPQueues in shared memory, csrc/proc/mpqueue.c). Frames, as
 * pyconc/multiprocessing/pool.py writes and reads them:
 *   task:   job (int64) | index (int64) | flen (uint32) | pickled function (flen) | pickle of
 *           (args, kwds);  a frame of the 16 header bytes alone is the stop sentinel
 *   result: job (int64) | index (int64) | pickle of (ok, value), or, for a successful task
 *           whose value is a list of at least PACK_MIN exact ints that fit an int64 or of exact
 *           floats (what map() of a numeric function returns), the packed form: a 0 byte, the
 *           kind ('q' or 'd'), 6 zero bytes, then the items as native int64 / double. Pickle
 *           spends ~30 ns per int decoding such a list in the pool's process, which decodes
 *           every result alone while the workers run in parallel; the packed form costs ~8.
 *           A pickle starts with its PROTO opcode (0x80), never with 0. Ints and floats are
 *           never memoised by pickle, so the lists decode to the same values either way.
 * The worker's slot in shared memory (three int64: job, index, state) records the task it has
 * taken -- the take writes the header into the slot atomically with removing the frame -- so
 * that the parent knows which task a dead worker was running.
 *
 * Running the loop in C removes the per-task interpreter work of the loop itself (header
 * unpacking, slicing, the function cache lookup, the result frame's concatenation): only the
 * unpickling, the call and the pickling of the result remain, which are the task's own.
 * A map() or starmap() task (pool.py's _mapstar / _starmapstar with a (func, items) pair) runs
 * its loop here too (run_map): func is called on each item in order -- a map() task's 256 items
 * at a time by a list comprehension in pool.py (_map_block), whose calls are cheaper than calls
 * from C -- and each numeric result is packed as it comes and freed, so the worker keeps no list
 * of a whole chunk's result objects alive (no arena growth: a chunk of 12,500 ints otherwise
 * faulted in ~100 fresh pages every time).
 * Behaviour is the Python loop's, step by step: a task whose function or arguments cannot be
 * unpickled, or that raises anything (BaseException included), fails with
 * ExceptionWithTraceback; a result that cannot be pickled fails with MaybeEncodingError; an idle
 * worker looks at the pool's process every `check` seconds and ends if it is gone: through a
 * pidfd of it when one is given (a forkserver's child has the server as its parent, and the
 * server lives as long as its children do), else by its parent pid changing.
 * Runs with the GIL, which the queue waits release.
 */
#include "pyconc.h"

#include <poll.h>
#include <string.h>
#include <unistd.h>

#define HDR 16
#define SLOT_IDLE (-1)
#define SLOT_EXITING (-2)

typedef struct {
    PyObject *loads, *dumps, *five, *ewt, *mee;
    PyObject *mapstar, *starmapstar;    /* pool.py's _mapstar and _starmapstar */
    PyObject *mapblock;                 /* pool.py's _map_block, or NULL */
    PyObject *block;                    /* MAP_BLOCK as an int */
} worker_ctx;

/* Items a map task gives _map_block at a time: enough to make its call negligible, few enough
 * that the results alive at once stay in memory the worker already has. */
#define MAP_BLOCK 256

static void
slot_store(int64_t *slot, int64_t job, int64_t index, int64_t state)
{
    __atomic_store_n(&slot[0], job, __ATOMIC_RELAXED);
    __atomic_store_n(&slot[1], index, __ATOMIC_RELAXED);
    __atomic_store_n(&slot[2], state, __ATOMIC_RELEASE);
}

/* The exception set, as the task's failed outcome: (False, ExceptionWithTraceback(e, tb)).
 * New reference, or NULL if even that fails. */
static PyObject *
failure(worker_ctx *c)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    PyObject *wrapped = PyObject_CallFunctionObjArgs(c->ewt, ev, etb ? etb : Py_None, NULL);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    if (wrapped == NULL) {
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, Py_False, wrapped);
    Py_DECREF(wrapped);
    return r;
}

#define PACK_MIN 16
#define PACK_HDR 8

/* Item i of a packed frame's items (p: after the headers), a new reference or NULL. */
static PyObject *
packed_item(char kind, const char *p, Py_ssize_t i)
{
    if (kind == 'q') {
        int64_t v;
        memcpy(&v, p + i * 8, 8);
        return PyLong_FromLongLong((long long)v);
    }
    double d;
    memcpy(&d, p + i * 8, 8);
    return PyFloat_FromDouble(d);
}

/* The results of a map task as they come: packed (kind 'q' or 'd', as long as every result is
 * an exact int that fits an int64, or every one an exact float), else a list. */
typedef struct {
    char kind;                /* 0 until the first result, then 'q', 'd', or 'L' (list) */
    Py_ssize_t n, cap;
    char *buf;                /* PACK_HDR bytes, then n items of 8 bytes */
    PyObject *list;
} mapout;

/* The packed results so far as a list: out->list, kind 'L'. 0, or -1 with an exception. */
static int
mapout_unpack(mapout *out)
{
    if ((out->list = PyList_New(out->n)) == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < out->n; i++) {
        PyObject *o = packed_item(out->kind, out->buf + PACK_HDR, i);
        if (o == NULL) {
            return -1;
        }
        PyList_SET_ITEM(out->list, i, o);
    }
    out->kind = 'L';
    return 0;
}

/* Appends r (borrowed) to out. 0, or -1 with an exception. */
static int
mapout_add(mapout *out, PyObject *r)
{
    if (out->kind == 0) {
        out->kind = PyLong_CheckExact(r) ? 'q' : PyFloat_CheckExact(r) ? 'd' : 'L';
        if (out->kind == 'L' && (out->list = PyList_New(0)) == NULL) {
            return -1;
        }
    }
    if (out->kind != 'L') {
        char item[8];
        int fits = 0;
        if (out->kind == 'q' && PyLong_CheckExact(r)) {
            int overflow = 0;
            int64_t v = (int64_t)PyLong_AsLongLongAndOverflow(r, &overflow);
            memcpy(item, &v, 8);
            fits = !overflow;
        }
        else if (out->kind == 'd' && PyFloat_CheckExact(r)) {
            double d = PyFloat_AS_DOUBLE(r);
            memcpy(item, &d, 8);
            fits = 1;
        }
        if (fits) {
            if (out->n == out->cap) {
                Py_ssize_t cap = out->cap ? out->cap * 2 : 1024;
                char *b = cap > (PY_SSIZE_T_MAX - PACK_HDR) / 8 ? NULL :
                          PyMem_Realloc(out->buf, PACK_HDR + (size_t)cap * 8);
                if (b == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                out->buf = b;
                out->cap = cap;
            }
            memcpy(out->buf + PACK_HDR + out->n * 8, item, 8);
            out->n++;
            return 0;
        }
        if (mapout_unpack(out) < 0) {   /* another shape: a list from here on */
            return -1;
        }
    }
    return PyList_Append(out->list, r);
}

/* One call of pool.py's _map_block(f, src, n), a list comprehension whose calls of f are the
 * interpreter's own (a call from bytecode skips the entry into a new evaluation loop that a call
 * from C makes: ~8% of a trivial task's worker CPU on 3.11): the next n items of the iterator
 * src, or with n None the whole of src. Its results go to out; how many, or -1 with an
 * exception. */
static Py_ssize_t
map_block(worker_ctx *c, mapout *out, PyObject *f, PyObject *src, PyObject *n)
{
    PyObject *cargs[3] = {f, src, n};
    PyObject *got = PyObject_Vectorcall(c->mapblock, cargs, 3, NULL);
    if (got == NULL) {
        return -1;
    }
    if (!PyList_CheckExact(got)) {
        Py_DECREF(got);
        PyErr_SetString(PyExc_TypeError, "_map_block must return a list");
        return -1;
    }
    Py_ssize_t k = PyList_GET_SIZE(got);
    for (Py_ssize_t i = 0; i < k; i++) {
        if (mapout_add(out, PyList_GET_ITEM(got, i)) < 0) {
            Py_DECREF(got);
            return -1;
        }
    }
    Py_DECREF(got);
    return k;
}

/* _mapstar's and _starmapstar's work -- list(map(f, items)), list(starmap(f, items)) -- in C,
 * each result packed as it comes, so that a numeric map keeps no list of result objects alive
 * (they are freed as soon as they are packed, and their memory is reused by the next). *packed
 * gets the packed form when there is one (PACK_MIN results or more), else the list is
 * returned. New reference, or NULL with the exception of the call, as the Python mappers
 * raise it. */
static PyObject *
run_map(worker_ctx *c, PyObject *f, PyObject *items, int star, PyObject **packed)
{
    mapout out = {0, 0, 0, NULL, NULL};
    PyObject *result = NULL;
    PyObject *it = PyObject_GetIter(items);
    if (it == NULL) {
        return NULL;
    }
    Py_ssize_t len = !star && c->mapblock != NULL && PyRange_Check(items)
                     ? PyObject_Size(items) : -1;
    if (len < 0) {
        PyErr_Clear();      /* not a range, or one longer than a Py_ssize_t: the iterator's */
    }
    else {
        /* a range task (pool.py sends a range's chunks as ranges): each block is a slice of
         * it, itself a range, mapped whole -- no islice between the comprehension and items */
        for (Py_ssize_t lo = 0; lo < len; lo += MAP_BLOCK) {
            PyObject *sub = PySequence_GetSlice(items, lo, lo + MAP_BLOCK);
            Py_ssize_t k = sub ? map_block(c, &out, f, sub, Py_None) : -1;
            Py_XDECREF(sub);
            if (k < 0) {
                goto done;
            }
        }
        goto finish;
    }
    while (!star && c->mapblock != NULL) {
        Py_ssize_t k = map_block(c, &out, f, it, c->block);
        if (k < 0) {
            goto done;
        }
        if (k < MAP_BLOCK) {
            goto finish;
        }
    }
    for (;;) {
        PyObject *x = PyIter_Next(it);
        if (x == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            break;
        }
        PyObject *r;
        if (!star) {
            PyObject *stack[2] = {NULL, x};
            r = PyObject_Vectorcall(f, stack + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
        else {
            PyObject *t = PyTuple_CheckExact(x) ? Py_NewRef(x) : PySequence_Tuple(x);
            r = t ? PyObject_Call(f, t, NULL) : NULL;
            Py_XDECREF(t);
        }
        Py_DECREF(x);
        if (r == NULL) {
            goto done;
        }
        int rc = mapout_add(&out, r);
        Py_DECREF(r);
        if (rc < 0) {
            goto done;
        }
    }
finish:
    if (out.kind == 'L') {
        result = Py_NewRef(out.list);
    }
    else if (out.n >= PACK_MIN) {
        memset(out.buf, 0, PACK_HDR);
        out.buf[1] = out.kind;
        *packed = PyBytes_FromStringAndSize(out.buf, PACK_HDR + out.n * 8);
        result = *packed ? Py_NewRef(Py_None) : NULL;
    }
    else if (out.kind == 0) {
        result = PyList_New(0);
    }
    else if (mapout_unpack(&out) == 0) {   /* a short list: pickled (see encode_packed) */
        result = Py_NewRef(out.list);
    }
done:
    Py_DECREF(it);
    Py_XDECREF(out.list);
    PyMem_Free(out.buf);
    return result;
}

/* Runs one task frame: (ok, value), new reference; for a map task whose results are packed,
 * (True, None) with the packed form in *packed. funcs caches unpickled functions by their
 * pickled bytes. NULL only if building the failure itself failed. */
static PyObject *
run_task(worker_ctx *c, PyObject *funcs, const char *p, Py_ssize_t n, PyObject **packed)
{
    PyObject *func = NULL, *call = NULL, *args = NULL, *kwds = NULL, *value = NULL;
    uint32_t flen;
    if (n < HDR + 4) {
        PyErr_SetString(PyExc_ValueError, "truncated task frame");
        return failure(c);
    }
    memcpy(&flen, p + HDR, 4);
    Py_ssize_t start = HDR + 4;
    if ((Py_ssize_t)flen > n - start) {
        PyErr_SetString(PyExc_ValueError, "truncated task frame");
        return failure(c);
    }
    PyObject *key = PyBytes_FromStringAndSize(p + start, flen);
    if (key == NULL) {
        return failure(c);
    }
    func = PyDict_GetItemWithError(funcs, key);   /* borrowed */
    if (func != NULL) {
        Py_INCREF(func);
    }
    else if (!PyErr_Occurred()) {
        func = PyObject_CallOneArg(c->loads, key);
        if (func != NULL && (PyDict_GET_SIZE(funcs) >= 256 ? (PyDict_Clear(funcs), 0) : 0,
                             PyDict_SetItem(funcs, key, func) < 0)) {
            Py_CLEAR(func);
        }
    }
    Py_DECREF(key);
    if (func == NULL) {
        return failure(c);
    }
    call = pc_pickle_loads_at(c->loads, p + start + flen, n - start - flen);
    if (call == NULL) {
        goto fail;
    }
    /* func(*args, **kwds), with whatever iterable and mapping the task carried */
    if (!PyTuple_Check(call) || PyTuple_GET_SIZE(call) != 2) {
        PyErr_SetString(PyExc_ValueError, "malformed task arguments");
        goto fail;
    }
    args = PySequence_Tuple(PyTuple_GET_ITEM(call, 0));
    if (args == NULL) {
        goto fail;
    }
    PyObject *k = PyTuple_GET_ITEM(call, 1);
    if (PyDict_CheckExact(k)) {
        kwds = Py_NewRef(k);
    }
    else if ((kwds = PyDict_New()) == NULL || PyDict_Merge(kwds, k, 1) < 0) {
        goto fail;
    }
    int star = func == c->starmapstar;
    PyObject *a = PyTuple_GET_SIZE(args) == 1 ? PyTuple_GET_ITEM(args, 0) : NULL;
    if ((star || func == c->mapstar) && a != NULL && PyTuple_CheckExact(a) &&
            PyTuple_GET_SIZE(a) == 2 && PyDict_GET_SIZE(kwds) == 0) {
        value = run_map(c, PyTuple_GET_ITEM(a, 0), PyTuple_GET_ITEM(a, 1), star, packed);
    }
    else {
        value = PyObject_Call(func, args, PyDict_GET_SIZE(kwds) ? kwds : NULL);
    }
    if (value == NULL) {
        goto fail;
    }
    Py_DECREF(func);
    Py_DECREF(call);
    Py_DECREF(args);
    Py_DECREF(kwds);
    PyObject *r = PyTuple_Pack(2, Py_True, value);
    Py_DECREF(value);
    return r;
fail:
    Py_XDECREF(func);
    Py_XDECREF(call);
    Py_XDECREF(args);
    Py_XDECREF(kwds);
    return failure(c);
}

/* The packed form of value (see the header comment), or NULL without an exception when value
 * has another shape. Runs no Python code. */
static PyObject *
encode_packed(PyObject *value)
{
    if (!PyList_CheckExact(value) || PyList_GET_SIZE(value) < PACK_MIN) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(value);
    PyObject *first = PyList_GET_ITEM(value, 0);
    char kind = PyLong_CheckExact(first) ? 'q' : PyFloat_CheckExact(first) ? 'd' : 0;
    if (kind == 0 || n > (PY_SSIZE_T_MAX - PACK_HDR) / 8) {
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, PACK_HDR + n * 8);
    if (bytes == NULL) {
        PyErr_Clear();   /* the pickle path will say it */
        return NULL;
    }
    char *out = PyBytes_AS_STRING(bytes);
    memset(out, 0, PACK_HDR);
    out[1] = kind;
    out += PACK_HDR;
    for (Py_ssize_t i = 0; i < n; i++, out += 8) {
        PyObject *item = PyList_GET_ITEM(value, i);
        if (kind == 'q') {
            int overflow = 0;
            long long v = PyLong_CheckExact(item) ? PyLong_AsLongLongAndOverflow(item, &overflow)
                                                  : (overflow = 1, 0);
            if (overflow) {
                Py_DECREF(bytes);
                return NULL;
            }
            int64_t w = (int64_t)v;
            memcpy(out, &w, 8);
        }
        else {
            if (!PyFloat_CheckExact(item)) {
                Py_DECREF(bytes);
                return NULL;
            }
            double d = PyFloat_AS_DOUBLE(item);
            memcpy(out, &d, 8);
        }
    }
    return bytes;
}

/* The kind of a packed result frame (header included) and its item count, or 0 if the frame
 * holds a pickle. */
static char
packed_kind(const char *p, Py_ssize_t len, Py_ssize_t *n)
{
    if (len < HDR + PACK_HDR || p[HDR] != 0 || (len - HDR - PACK_HDR) % 8 != 0 ||
            (p[HDR + 1] != 'q' && p[HDR + 1] != 'd')) {
        return 0;
    }
    *n = (len - HDR - PACK_HDR) / 8;
    return p[HDR + 1];
}

/* The (True, list) of a packed result frame (header included), or None if the frame holds a
 * pickle. */
static PyObject *
unpack_packed(PyObject *frame)
{
    Py_buffer b;
    if (PyObject_GetBuffer(frame, &b, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n;
    char kind = packed_kind((const char *)b.buf, b.len, &n);
    if (kind == 0) {
        PyBuffer_Release(&b);
        Py_RETURN_NONE;
    }
    const char *p = (const char *)b.buf + HDR + PACK_HDR;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *item = packed_item(kind, p, i);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyBuffer_Release(&b);
    if (list == NULL) {
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, Py_True, list);
    Py_DECREF(list);
    return r;
}

/* -- the pool's process: submitting and receiving ------------------------------------------- */

static int
int64_arg(PyObject *o, int64_t *out)
{
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* _pool_task(job, index, func_bytes, args, kwds, dumps): a task frame as one bytes object --
 * the header, the pickled function, then dumps((args, kwds), 5) -- which the Python submit path
 * built in four concatenations. An error of pickling propagates: the caller retries with
 * cloudpickle. */
PyObject *
pc_pool_task(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int64_t hdr[2];
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_pool_task() takes 6 arguments");
        return NULL;
    }
    if (int64_arg(args[0], &hdr[0]) < 0 || int64_arg(args[1], &hdr[1]) < 0) {
        return NULL;
    }
    PyObject *fb = args[2];
    if (!PyBytes_Check(fb) || PyBytes_GET_SIZE(fb) > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_TypeError, "_pool_task(): the pickled function must be bytes");
        return NULL;
    }
    PyObject *call = PyTuple_Pack(2, args[3], args[4]);
    PyObject *payload = call ? pc_pickle_dumps(args[5], call) : NULL;
    Py_XDECREF(call);
    if (payload == NULL) {
        return NULL;
    }
    if (!PyBytes_Check(payload)) {
        Py_DECREF(payload);
        PyErr_SetString(PyExc_TypeError, "_pool_task(): dumps did not return bytes");
        return NULL;
    }
    uint32_t flen = (uint32_t)PyBytes_GET_SIZE(fb);
    Py_ssize_t plen = PyBytes_GET_SIZE(payload);
    PyObject *frame = PyBytes_FromStringAndSize(NULL, HDR + 4 + (Py_ssize_t)flen + plen);
    if (frame != NULL) {
        char *p = PyBytes_AS_STRING(frame);
        memcpy(p, hdr, HDR);
        memcpy(p + HDR, &flen, 4);
        memcpy(p + HDR + 4, PyBytes_AS_STRING(fb), flen);
        memcpy(p + HDR + 4 + flen, PyBytes_AS_STRING(payload), (size_t)plen);
    }
    Py_DECREF(payload);
    return frame;
}

/* The (ok, value) a result frame carries: the packed form, else loads() of the pickle; a frame
 * that cannot be decoded gives (False, the exception). New reference, NULL only on a failure to
 * build even that. */
static PyObject *
decode_result(PyObject *loads, PyObject *data)
{
    PyObject *obj = unpack_packed(data);
    if (obj == Py_None) {
        Py_DECREF(obj);
        obj = pc_pickle_loads_at(loads, PyBytes_AS_STRING(data) + HDR,
                                 PyBytes_GET_SIZE(data) - HDR);
    }
    if (obj != NULL) {
        return obj;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    obj = ev ? PyTuple_Pack(2, Py_False, ev) : NULL;
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    return obj;
}

/* _pool_decode(frame, loads): the (ok, value) of one result frame, as _pool_results decodes
 * it; for the frames the pool's Python side takes itself (the drains after a worker exits and at
 * close). */
PyObject *
pc_pool_decode(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_pool_decode() takes 2 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) < HDR) {
        PyErr_SetString(PyExc_ValueError, "not a result frame");
        return NULL;
    }
    return decode_result(args[1], args[0]);
}

/* A packed map result (job, index) written straight into its map's result list: fills maps a
 * job to (list, chunksize) (pool.py's MapResult registers itself there while it collects), and
 * the chunk's items take slots index * chunksize onwards, where MapResult._set would otherwise
 * copy them from a list made for the purpose (one list, its slice assignment and its
 * deallocation less per chunk, in the one thread that receives every result). 1 if filled, 0
 * if not (not such a frame, no such job, a chunk that does not fit: the general path then
 * decides). Runs no Python code; a failure to allocate is left to the general path too. */
static int
fill_in_place(PyObject *fills, const int64_t *hdr, PyObject *data)
{
    Py_ssize_t n;
    char kind = packed_kind(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), &n);
    if (kind == 0 || !PyDict_CheckExact(fills) || PyDict_GET_SIZE(fills) == 0) {
        return 0;
    }
    PyObject *key = PyLong_FromLongLong((long long)hdr[0]);
    PyObject *t = key ? PyDict_GetItemWithError(fills, key) : NULL;   /* borrowed */
    Py_XDECREF(key);
    if (t == NULL || !PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2 ||
            !PyList_CheckExact(PyTuple_GET_ITEM(t, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(t, 1))) {
        PyErr_Clear();
        return 0;
    }
    PyObject *list = PyTuple_GET_ITEM(t, 0);
    Py_ssize_t chunk = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
    Py_ssize_t len = PyList_GET_SIZE(list);
    if (chunk <= 0 || hdr[1] < 0 || hdr[1] > len / chunk) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t start = (Py_ssize_t)hdr[1] * chunk;
    if (n != Py_MIN(chunk, len - start)) {
        return 0;
    }
    const char *p = PyBytes_AS_STRING(data) + HDR + PACK_HDR;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = packed_item(kind, p, i);
        if (item == NULL) {
            PyErr_Clear();
            return 0;
        }
        PyObject *old = PyList_GET_ITEM(list, start + i);   /* None (or an equal number) */
        PyList_SET_ITEM(list, start + i, item);
        Py_DECREF(old);
    }
    return 1;
}

/* _pool_results(resultq, complete, loads, poll[, fills, filled]): the pool's result loop, in C.
 * Takes result frames, waiting (GIL released) until `poll` seconds from the call have passed, and
 * calls
 * complete(job, index, (ok, value)) for each; returns the (job, index) of a control frame
 * (negative job: a worker exiting, or terminate()'s wake-up) as soon as one comes, or None when
 * the time is up and the queue is empty -- then the caller looks after its workers and calls
 * again. Under a stream of results it returns after `poll` seconds all the same. What it
 * replaces is the per-result Python loop: a get_bytes call, the header's unpacking, the decode,
 * the clock. An exception of complete() propagates. A packed chunk of a map registered in
 * fills is written into its list (fill_in_place), and complete gets `filled` instead of
 * (ok, value). */
PyObject *
pc_pool_results(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_pool_results() takes 4 or 6 arguments");
        return NULL;
    }
    PyObject *q = args[0], *complete = args[1], *loads = args[2];
    PyObject *fills = nargs == 6 ? args[4] : NULL, *filled = nargs == 6 ? args[5] : NULL;
    double poll = PyFloat_AsDouble(args[3]);
    if (poll == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (pc_mpq_check(st, q) < 0) {
        return NULL;
    }
    pc_time_t deadline = pc_monotonic_ns() + (pc_time_t)(poll > 0 ? poll * 1e9 : 0);
    for (;;) {
        pc_time_t rel = deadline - pc_monotonic_ns();
        int empty;
        PyObject *data = pc_mpq_take(q, rel > 0 ? rel : 0, NULL, 0, &empty);
        if (data == NULL) {
            if (empty) {
                Py_RETURN_NONE;
            }
            return NULL;
        }
        if (PyBytes_GET_SIZE(data) < HDR) {
            Py_DECREF(data);
            PyErr_SetString(PyExc_ValueError, "truncated result frame");
            return NULL;
        }
        int64_t hdr[2];
        memcpy(hdr, PyBytes_AS_STRING(data), HDR);
        if (hdr[0] < 0) {
            Py_DECREF(data);
            return Py_BuildValue("(LL)", (long long)hdr[0], (long long)hdr[1]);
        }
        PyObject *obj = fills != NULL && fill_in_place(fills, hdr, data)
                        ? Py_NewRef(filled) : decode_result(loads, data);
        Py_DECREF(data);
        PyObject *job = obj ? PyLong_FromLongLong((long long)hdr[0]) : NULL;
        PyObject *index = job ? PyLong_FromLongLong((long long)hdr[1]) : NULL;
        PyObject *r = NULL;
        if (index != NULL) {
            PyObject *cargs[3] = {job, index, obj};
            r = PyObject_Vectorcall(complete, cargs, 3, NULL);
        }
        Py_XDECREF(obj);
        Py_XDECREF(job);
        Py_XDECREF(index);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
}

/* pickle.dumps(result, 5); a result that cannot be pickled becomes
 * (False, ExceptionWithTraceback(MaybeEncodingError(e, value), None)). New reference or NULL. */
static PyObject *
encode(worker_ctx *c, PyObject *result)
{
    if (PyTuple_GET_ITEM(result, 0) == Py_True) {
        PyObject *packed = encode_packed(PyTuple_GET_ITEM(result, 1));
        if (packed != NULL) {
            return packed;
        }
    }
    PyObject *payload = pc_plain_dumps(result);
    if (payload == NULL && !PyErr_Occurred()) {
        payload = PyObject_CallFunctionObjArgs(c->dumps, result, c->five, NULL);
    }
    if (payload != NULL || !PyErr_ExceptionMatches(PyExc_Exception)) {
        return payload;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    PyObject *mee = PyObject_CallFunctionObjArgs(c->mee, ev, PyTuple_GET_ITEM(result, 1), NULL);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    PyObject *wrapped = mee ? PyObject_CallFunctionObjArgs(c->ewt, mee, Py_None, NULL) : NULL;
    Py_XDECREF(mee);
    PyObject *failed = wrapped ? PyTuple_Pack(2, Py_False, wrapped) : NULL;
    Py_XDECREF(wrapped);
    payload = failed ? PyObject_CallFunctionObjArgs(c->dumps, failed, c->five, NULL) : NULL;
    Py_XDECREF(failed);
    return payload;
}

/* Whether the pool's process has ended (see the header comment). */
static int
pool_gone(int pidfd, long parent)
{
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN, .revents = 0};
        return poll(&p, 1, 0) > 0;    /* a pidfd is readable once its process has exited */
    }
    return getppid() != parent;
}

/* _pool_worker(taskq, resultq, slots, k, maxtasks, parent_pid, check_seconds,
 *              ExceptionWithTraceback, MaybeEncodingError[, pool_pidfd[, mapstar, starmapstar
 *              [, map_block]]])
 * pool_pidfd: a pidfd of the pool's process (owned by the caller), or -1: compare getppid()
 * with parent_pid. mapstar, starmapstar: pool.py's mappers, whose tasks run_map runs in C;
 * map_block(f, iterator, n): the list of f(x) for the next n items at most (see run_map). */
PyObject *
pc_pool_worker(PyObject *module, PyObject *args)
{
    PyObject *taskq, *resultq, *slots, *maxtasks_obj;
    Py_ssize_t k;
    long parent;
    double check;
    int pool_pidfd = -1;
    worker_ctx c = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (!PyArg_ParseTuple(args, "OOOnOldOO|iOOO:_pool_worker", &taskq, &resultq, &slots, &k,
                          &maxtasks_obj, &parent, &check, &c.ewt, &c.mee, &pool_pidfd,
                          &c.mapstar, &c.starmapstar, &c.mapblock)) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (pc_mpq_check(st, taskq) < 0 || pc_mpq_check(st, resultq) < 0) {
        return NULL;
    }
    Py_ssize_t maxtasks = -1;
    if (maxtasks_obj != Py_None && (maxtasks = PyLong_AsSsize_t(maxtasks_obj)) == -1 &&
            PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(slots, &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL, *funcs = NULL, *pickle = NULL;
    if (k < 0 || view.len < (k + 1) * 24) {
        PyErr_SetString(PyExc_ValueError, "worker slot out of range");
        goto done;
    }
    int64_t *slot = (int64_t *)((char *)view.buf + k * 24);
    pickle = PyImport_ImportModule("pickle");
    c.loads = pickle ? PyObject_GetAttrString(pickle, "loads") : NULL;
    c.dumps = c.loads ? PyObject_GetAttrString(pickle, "dumps") : NULL;
    c.five = PyLong_FromLong(5);
    c.block = PyLong_FromLong(MAP_BLOCK);
    funcs = PyDict_New();
    if (c.dumps == NULL || c.five == NULL || c.block == NULL || funcs == NULL) {
        goto done;
    }
    pc_time_t rel = check > 0 ? (pc_time_t)(check * 1e9) : -1;
    for (Py_ssize_t done_tasks = 0; maxtasks < 0 || done_tasks < maxtasks; done_tasks++) {
        int empty;
        PyObject *data = pc_mpq_take(taskq, rel, (char *)slot, HDR, &empty);
        if (data == NULL) {
            if (!empty) {
                goto done;
            }
            if (pool_gone(pool_pidfd, parent)) {
                result = Py_NewRef(Py_None);  /* the pool's process is gone: nobody will stop us */
                goto done;
            }
            done_tasks--;
            continue;
        }
        const char *p = PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        if (n == HDR) {                        /* the stop sentinel: tell the parent at once */
            Py_DECREF(data);
            slot_store(slot, SLOT_IDLE, 0, SLOT_EXITING);
            int64_t hdr[2] = {-1, (int64_t)k};
            if (pc_mpq_give(resultq, (const char *)hdr, HDR, NULL, 0) == 0) {
                result = Py_NewRef(Py_None);
            }
            goto done;
        }
        int64_t hdr[2];
        memcpy(hdr, p, HDR);
        PyObject *packed = NULL;
        PyObject *outcome = run_task(&c, funcs, p, n, &packed);
        Py_DECREF(data);
        PyObject *payload = packed != NULL ? packed : outcome ? encode(&c, outcome) : NULL;
        Py_XDECREF(outcome);
        if (payload == NULL ||
                pc_mpq_give(resultq, (const char *)hdr, HDR, PyBytes_AS_STRING(payload),
                            (size_t)PyBytes_GET_SIZE(payload)) < 0) {
            Py_XDECREF(payload);
            goto done;
        }
        Py_DECREF(payload);
        slot_store(slot, SLOT_IDLE, 0, 0);
    }
    slot_store(slot, SLOT_IDLE, 0, 0);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    Py_XDECREF(funcs);
    Py_XDECREF(c.loads);
    Py_XDECREF(c.dumps);
    Py_XDECREF(c.five);
    Py_XDECREF(c.block);
    Py_XDECREF(pickle);
    return result;
}
