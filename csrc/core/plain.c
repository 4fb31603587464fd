/* plain.c: pickles of plain data written and read in C.
 *
 * Most messages that go through a queue, a pipe or a pool task are plain data: None, bools, ints,
 * floats, str, bytes, and tuples, lists and dicts of them. For those, _pickle's general machinery
 * (a Pickler object, its memo table, a 4 KiB output buffer, the per-type dispatch through
 * reduce hooks) costs several times the encoding itself; on some builds (Debian's 3.13) it is
 * most of a queue's put.
 *
 * pc_plain_dumps writes such an object as a protocol 5 pickle, in a subset of its opcodes:
 *
 *     PROTO 5, then the object, then STOP
 *     None: NONE   bools: NEWTRUE / NEWFALSE   floats: BINFLOAT
 *     ints: BININT1 / BININT2 / BININT (signed 32 bits), LONG1 with 8 bytes (signed 64 bits)
 *     str: SHORT_BINUNICODE / BINUNICODE (UTF-8)   bytes: SHORT_BINBYTES / BINBYTES
 *     tuples: EMPTY_TUPLE, or the items and TUPLE1 / TUPLE2 / TUPLE3, or MARK items TUPLE
 *     lists: EMPTY_LIST, then MARK items APPENDS      dicts: EMPTY_DICT, then MARK k v.. SETITEMS
 *
 * The output is an ordinary pickle: pickle.loads (of any Python, any peer that reads our frames
 * as pickles: get_bytes, recv_bytes, a stdlib Connection) reads it as the same object. What it
 * leaves out is the memo, so it takes only objects whose meaning does not depend on it:
 *   - exact types only (a subclass, an IntEnum, a bool subclass... has its own reduce: pickle's);
 *   - ints in 64 bits; strings that encode to UTF-8 (a lone surrogate: pickle's);
 *   - a list or dict met twice in one message is pickle's (the memo keeps the sharing, and a
 *     recursive container needs it); strings and bytes met twice are written twice, and the
 *     output is capped at PLAIN_MAX bytes so that [s] * 1000 of a long s goes to pickle;
 *   - nesting up to PLAIN_DEPTH.
 * Anything else makes pc_plain_dumps decline (NULL, no exception): the caller uses pickle.
 * Encoding runs no Python code (exact builtin types, no hashing: dict items are walked).
 *
 * pc_plain_loads reads the opcodes above and no others, and declines on anything else: a pickle
 * from pickle.dumps (which frames and memoizes), a truncated or malformed message, trailing bytes
 * after STOP, a structure pickle would reject. The caller then gives the bytes to pickle.loads,
 * so every input, good or bad, gets pickle's result or pickle's error. For the inputs it
 * accepts, the object is the one pickle.loads would build (tests/test_plain.py checks that side
 * by side, on generated objects and on mutated messages).
 */
#include "pyconc.h"
#include <string.h>

#define PLAIN_MAX   (16 * 1024)   /* bytes of output; beyond, pickle's */
#define PLAIN_DEPTH 32
#define PLAIN_SEEN  32            /* lists and dicts in one message */

/* the opcodes of pickle's format (Lib/pickle.py) */
enum {
    OP_MARK = '(', OP_STOP = '.', OP_NONE = 'N', OP_BININT = 'J', OP_BININT1 = 'K',
    OP_BININT2 = 'M', OP_BINFLOAT = 'G', OP_BINUNICODE = 'X', OP_BINBYTES = 'B',
    OP_SHORT_BINBYTES = 'C', OP_EMPTY_TUPLE = ')', OP_TUPLE = 't', OP_EMPTY_LIST = ']',
    OP_APPENDS = 'e', OP_EMPTY_DICT = '}', OP_SETITEMS = 'u', OP_PROTO = 0x80,
    OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89,
    OP_LONG1 = 0x8a, OP_SHORT_BINUNICODE = 0x8c,
};

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char small[256];
    PyObject *seen[PLAIN_SEEN];
    int nseen;
} encoder;

/* room for n more bytes: 0, or -1 (over PLAIN_MAX: decline; no memory: MemoryError set) */
static int
reserve(encoder *e, Py_ssize_t n)
{
    if (e->len + n <= e->cap) {
        return 0;
    }
    if (e->len + n > PLAIN_MAX) {
        return -1;
    }
    Py_ssize_t cap = e->cap * 2;
    while (cap < e->len + n) {
        cap *= 2;
    }
    if (cap > PLAIN_MAX) {
        cap = PLAIN_MAX;
    }
    char *nb = PyMem_Malloc(cap);
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(nb, e->buf, e->len);
    if (e->buf != e->small) {
        PyMem_Free(e->buf);
    }
    e->buf = nb;
    e->cap = cap;
    return 0;
}

static inline void
put_le(char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (char)(v >> (8 * i));
    }
}

/* a string or bytes item: the opcode, its length and the data */
static int
put_sized(encoder *e, int short_op, int long_op, const char *data, Py_ssize_t n)
{
    if (n > PLAIN_MAX || reserve(e, 5 + n) < 0) {
        return -1;
    }
    char *p = e->buf + e->len;
    if (n < 256) {
        *p++ = (char)short_op;
        *p++ = (char)n;
    }
    else {
        *p++ = (char)long_op;
        put_le(p, (uint64_t)n, 4);
        p += 4;
    }
    memcpy(p, data, n);
    e->len = p + n - e->buf;
    return 0;
}

/* 0, or -1 to decline (with MemoryError set only when memory ran out) */
static int
encode(encoder *e, PyObject *o, int depth)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (reserve(e, 10) < 0) {
        return -1;
    }
    char *p = e->buf + e->len;
    if (o == Py_None) {
        *p = OP_NONE;
        e->len++;
        return 0;
    }
    if (o == Py_True || o == Py_False) {
        *p = (char)(o == Py_True ? OP_NEWTRUE : OP_NEWFALSE);
        e->len++;
        return 0;
    }
    if (tp == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            return -1;
        }
        if (v >= 0 && v < 256) {
            p[0] = OP_BININT1;
            p[1] = (char)v;
            e->len += 2;
        }
        else if (v >= 0 && v < 65536) {
            p[0] = OP_BININT2;
            put_le(p + 1, (uint64_t)v, 2);
            e->len += 3;
        }
        else if (v >= INT32_MIN && v <= INT32_MAX) {
            p[0] = OP_BININT;
            put_le(p + 1, (uint64_t)v, 4);
            e->len += 5;
        }
        else {
            p[0] = (char)OP_LONG1;
            p[1] = 8;
            put_le(p + 2, (uint64_t)v, 8);
            e->len += 10;
        }
        return 0;
    }
    if (tp == &PyFloat_Type) {
        p[0] = OP_BINFLOAT;
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(o), p + 1, 0) < 0) {
            PyErr_Clear();
            return -1;
        }
        e->len += 9;
        return 0;
    }
    if (tp == &PyUnicode_Type) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(o) < 0) {
            PyErr_Clear();
            return -1;
        }
#endif
        if (PyUnicode_IS_ASCII(o)) {
            return put_sized(e, OP_SHORT_BINUNICODE, OP_BINUNICODE, PyUnicode_DATA(o),
                             PyUnicode_GET_LENGTH(o));
        }
        if (PyUnicode_GET_LENGTH(o) > PLAIN_MAX) {
            return -1;
        }
        /* not PyUnicode_AsUTF8AndSize: that keeps a UTF-8 copy in the string */
        PyObject *u = PyUnicode_AsUTF8String(o);
        if (u == NULL) {
            PyErr_Clear();          /* a lone surrogate: pickle writes it with surrogatepass */
            return -1;
        }
        int r = put_sized(e, OP_SHORT_BINUNICODE, OP_BINUNICODE, PyBytes_AS_STRING(u),
                          PyBytes_GET_SIZE(u));
        Py_DECREF(u);
        return r;
    }
    if (tp == &PyBytes_Type) {
        return put_sized(e, OP_SHORT_BINBYTES, OP_BINBYTES, PyBytes_AS_STRING(o),
                         PyBytes_GET_SIZE(o));
    }
    if (depth >= PLAIN_DEPTH) {
        return -1;
    }
    if (tp == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        if (n == 0) {
            *p = OP_EMPTY_TUPLE;
            e->len++;
            return 0;
        }
        if (n > 3) {
            *p = OP_MARK;
            e->len++;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (encode(e, PyTuple_GET_ITEM(o, i), depth + 1) < 0) {
                return -1;
            }
        }
        if (reserve(e, 1) < 0) {
            return -1;
        }
        static const unsigned char close[4] = {0, OP_TUPLE1, OP_TUPLE2, OP_TUPLE3};
        e->buf[e->len++] = (char)(n <= 3 ? close[n] : OP_TUPLE);
        return 0;
    }
    if (tp != &PyList_Type && tp != &PyDict_Type) {
        return -1;
    }
    /* a list or a dict: met once only (pickle's memo keeps sharing and recursion) */
    for (int i = 0; i < e->nseen; i++) {
        if (e->seen[i] == o) {
            return -1;
        }
    }
    if (e->nseen == PLAIN_SEEN) {
        return -1;
    }
    e->seen[e->nseen++] = o;
    int is_list = tp == &PyList_Type;
    Py_ssize_t n = is_list ? PyList_GET_SIZE(o) : PyDict_GET_SIZE(o);
    *p = (char)(is_list ? OP_EMPTY_LIST : OP_EMPTY_DICT);
    e->len++;
    if (n == 0) {
        return 0;
    }
    e->buf[e->len++] = OP_MARK;     /* reserved above: 10 bytes */
    if (is_list) {
        /* no Python code runs while encoding, so the list keeps its size */
        for (Py_ssize_t i = 0; i < n; i++) {
            if (encode(e, PyList_GET_ITEM(o, i), depth + 1) < 0) {
                return -1;
            }
        }
    }
    else {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            if (encode(e, k, depth + 1) < 0 || encode(e, v, depth + 1) < 0) {
                return -1;
            }
        }
    }
    if (reserve(e, 1) < 0) {
        return -1;
    }
    e->buf[e->len++] = (char)(is_list ? OP_APPENDS : OP_SETITEMS);
    return 0;
}

PyObject *
pc_plain_dumps(PyObject *obj)
{
    encoder e;
    e.buf = e.small;
    e.cap = sizeof(e.small);
    e.len = 2;
    e.nseen = 0;
    e.small[0] = (char)OP_PROTO;
    e.small[1] = 5;
    PyObject *r = NULL;
    if (encode(&e, obj, 0) == 0 && reserve(&e, 1) == 0) {
        e.buf[e.len++] = OP_STOP;
        r = PyBytes_FromStringAndSize(e.buf, e.len);
    }
    if (e.buf != e.small) {
        PyMem_Free(e.buf);
    }
    return r;
}

/* -- reading ---------------------------------------------------------------------------------- */

static inline uint64_t
get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The object, or NULL without an exception: declined -- not this subset, malformed, or memory
 * ran out on the way -- and the caller's pickle.loads gives its own result or error. */
PyObject *
pc_plain_loads(const char *data, Py_ssize_t size)
{
    const unsigned char *p = (const unsigned char *)data, *end = p + size;
    if (size < 4 || size > PLAIN_MAX || p[0] != OP_PROTO || p[1] != 5 || end[-1] != OP_STOP) {
        return NULL;
    }
    p += 2;
    end -= 1;                           /* the STOP: it must be the last byte and come last */
    /* every pushed object and every mark takes at least one byte of input */
    PyObject *stack_small[64];
    Py_ssize_t marks_small[32];
    PyObject **stack = stack_small;
    Py_ssize_t *marks = marks_small;
    Py_ssize_t room = end - p;
    if (room > 64) {
        stack = PyMem_Malloc(room * sizeof(PyObject *));
    }
    if (room > 32) {
        marks = PyMem_Malloc(room * sizeof(Py_ssize_t));
    }
    Py_ssize_t sp = 0, mp = 0;
    PyObject *result = NULL;
    if (stack == NULL || marks == NULL) {
        goto done;
    }
    while (p < end) {
        int op = *p++;
        PyObject *o = NULL;
        Py_ssize_t n;
        switch (op) {
        case OP_NONE:
            o = Py_NewRef(Py_None);
            break;
        case OP_NEWTRUE:
            o = Py_NewRef(Py_True);
            break;
        case OP_NEWFALSE:
            o = Py_NewRef(Py_False);
            break;
        case OP_BININT1:
            if (end - p < 1) {
                goto done;
            }
            o = PyLong_FromLong(p[0]);
            p += 1;
            break;
        case OP_BININT2:
            if (end - p < 2) {
                goto done;
            }
            o = PyLong_FromLong((long)get_le(p, 2));
            p += 2;
            break;
        case OP_BININT:
            if (end - p < 4) {
                goto done;
            }
            o = PyLong_FromLong((long)(int32_t)(uint32_t)get_le(p, 4));
            p += 4;
            break;
        case OP_LONG1:
            if (end - p < 9 || p[0] != 8) {
                goto done;
            }
            o = PyLong_FromLongLong((long long)get_le(p + 1, 8));
            p += 9;
            break;
        case OP_BINFLOAT: {
            if (end - p < 8) {
                goto done;
            }
            double d = PyFloat_Unpack8((const char *)p, 0);
            if (d == -1.0 && PyErr_Occurred()) {
                goto done;
            }
            o = PyFloat_FromDouble(d);
            p += 8;
            break;
        }
        case OP_SHORT_BINUNICODE:
        case OP_SHORT_BINBYTES:
        case OP_BINUNICODE:
        case OP_BINBYTES: {
            int short_op = op == OP_SHORT_BINUNICODE || op == OP_SHORT_BINBYTES;
            int hl = short_op ? 1 : 4;
            if (end - p < hl) {
                goto done;
            }
            n = (Py_ssize_t)get_le(p, hl);
            p += hl;
            if (end - p < n) {
                goto done;
            }
            o = op == OP_SHORT_BINUNICODE || op == OP_BINUNICODE
                ? PyUnicode_DecodeUTF8((const char *)p, n, "surrogatepass")
                : PyBytes_FromStringAndSize((const char *)p, n);
            p += n;
            break;
        }
        case OP_EMPTY_TUPLE:
            o = PyTuple_New(0);
            break;
        case OP_EMPTY_LIST:
            o = PyList_New(0);
            break;
        case OP_EMPTY_DICT:
            o = PyDict_New();
            break;
        case OP_TUPLE1:
        case OP_TUPLE2:
        case OP_TUPLE3:
        case OP_TUPLE: {
            Py_ssize_t base;
            if (op == OP_TUPLE) {
                if (mp == 0) {
                    goto done;
                }
                base = marks[--mp];
            }
            else {
                base = sp - (op - OP_TUPLE1 + 1);
                if (base < (mp ? marks[mp - 1] : 0)) {
                    goto done;          /* pickle takes items across a mark: declined */
                }
            }
            n = sp - base;
            o = PyTuple_New(n);
            if (o == NULL) {
                goto done;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                PyTuple_SET_ITEM(o, i, stack[base + i]);
            }
            sp = base;
            break;
        }
        case OP_MARK:
            marks[mp++] = sp;
            continue;
        case OP_APPENDS:
        case OP_SETITEMS: {
            if (mp == 0) {
                goto done;
            }
            /* the target sits just below the mark, above any enclosing one (pickle's fence:
             * one below it is pickle's "unexpected MARK found") */
            Py_ssize_t base = marks[--mp];
            if (base <= (mp ? marks[mp - 1] : 0)) {
                goto done;
            }
            PyObject *target = stack[base - 1];
            n = sp - base;
            int r = 0;
            if (op == OP_APPENDS) {
                if (!PyList_CheckExact(target)) {
                    goto done;
                }
                for (Py_ssize_t i = 0; i < n && r == 0; i++) {
                    r = PyList_Append(target, stack[base + i]);
                }
            }
            else {
                if (!PyDict_CheckExact(target) || n % 2) {
                    goto done;
                }
                for (Py_ssize_t i = 0; i < n && r == 0; i += 2) {
                    /* an unhashable key raises here, and pickle raises the same */
                    r = PyDict_SetItem(target, stack[base + i], stack[base + i + 1]);
                }
            }
            if (r < 0) {
                goto done;
            }
            while (sp > base) {
                Py_DECREF(stack[--sp]);
            }
            continue;
        }
        default:
            goto done;
        }
        if (o == NULL) {
            goto done;
        }
        stack[sp++] = o;
    }
    if (sp == 1 && mp == 0) {
        result = stack[0];
        sp = 0;
    }
done:
    if (result == NULL) {
        PyErr_Clear();                  /* declined: pickle.loads says what is wrong */
    }
    while (sp > 0) {
        Py_DECREF(stack[--sp]);
    }
    if (stack != stack_small) {
        PyMem_Free(stack);
    }
    if (marks != marks_small) {
        PyMem_Free(marks);
    }
    return result;
}

/* pickle.dumps(obj, 5), plain data written here */
PyObject *
pc_pickle_dumps(PyObject *dumps, PyObject *obj)
{
    PyObject *r = pc_plain_dumps(obj);
    if (r != NULL || PyErr_Occurred()) {
        return r;
    }
    static PyObject *protocol = NULL;   /* the int 5: immortal in practice (small int cache) */
    if (protocol == NULL) {
        protocol = PyLong_FromLong(5);
    }
    PyObject *args[2] = {obj, protocol};
    return PyObject_Vectorcall(dumps, args, 2, NULL);
}

/* loads(data) of a bytes object, plain data read here */
PyObject *
pc_pickle_loads(PyObject *loads, PyObject *data)
{
    PyObject *r = PyBytes_CheckExact(data)
                  ? pc_plain_loads(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) : NULL;
    return r != NULL ? r : PyObject_CallOneArg(loads, data);
}

/* loads() of the size bytes at data (a memoryview of them for pickle), plain data read here */
PyObject *
pc_pickle_loads_at(PyObject *loads, const char *data, Py_ssize_t size)
{
    PyObject *r = pc_plain_loads(data, size);
    if (r == NULL) {
        PyObject *view = PyMemoryView_FromMemory((char *)data, size, PyBUF_READ);
        r = view ? PyObject_CallOneArg(loads, view) : NULL;
        Py_XDECREF(view);
    }
    return r;
}

/* _core._plain_dumps(obj): the plain pickle of obj, or None when pickle must write it */
PyObject *
pc_plain_dumps_py(PyObject *Py_UNUSED(module), PyObject *obj)
{
    PyObject *r = pc_plain_dumps(obj);
    if (r == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return r;
}

/* _core._plain_loads(data): (True, obj) when read here, (False, None) when declined */
PyObject *
pc_plain_loads_py(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *r = pc_plain_loads(view.buf, view.len);
    PyBuffer_Release(&view);
    if (r == NULL) {
        return Py_BuildValue("(OO)", Py_False, Py_None);
    }
    return Py_BuildValue("(ON)", Py_True, r);
}
