/* util.c -- the helpers every type file uses: type creation, argument parsing as the stdlib
 * parses (positional/keyword, with its messages), the names of types, pickling support, and the
 * errors of objects used before __init__. No module state lives here; module.c assembles the
 * module and nothing calls back up into it. */
#include "pyconc.h"

#include <string.h>

int
pc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyTypeObject **out)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, spec, base);
    if (tp == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, (PyTypeObject *)tp) < 0) {
        Py_DECREF(tp);
        return -1;
    }
    *out = (PyTypeObject *)tp;  /* the state's strong reference */
    return 0;
}

int
pc_pickle_functions(PyObject **dumps, PyObject **loads)
{
    PyObject *mod = PyImport_ImportModule("_pickle");
    if (mod == NULL) {
        return -1;
    }
    *dumps = PyObject_GetAttrString(mod, "dumps");
    *loads = *dumps ? PyObject_GetAttrString(mod, "loads") : NULL;
    Py_DECREF(mod);
    if (*loads == NULL) {
        Py_CLEAR(*dumps);
        return -1;
    }
    return 0;
}

PyObject *
pc_type_fullname(PyTypeObject *tp)
{
    PyObject *mod = PyObject_GetAttrString((PyObject *)tp, "__module__");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *qual = PyType_GetQualName(tp);
    PyObject *r = qual ? PyUnicode_FromFormat("%S.%S", mod, qual) : NULL;
    Py_DECREF(mod);
    Py_XDECREF(qual);
    return r;
}

PyObject *
pc_no_args_error(PyObject *self, const char *name, Py_ssize_t nargs)
{
    PyObject *tname = PyType_GetName(Py_TYPE(self));
    if (tname != NULL) {
        PyErr_Format(PyExc_TypeError, "%U.%s() takes no arguments (%zd given)", tname, name,
                     nargs);
        Py_DECREF(tname);
    }
    return NULL;
}

int
pc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              const char *const *names, Py_ssize_t n, PyObject **out)
{
    /* Messages follow the stdlib's: a qualified name ("Event.wait") is a method the stdlib
     * writes in Python, a bare name ("acquire") one it writes in C. */
#define pystyle (strchr(fname, '.') != NULL)   /* read on the error paths only */
    if (nargs > n) {
        if (pystyle) {
            PyErr_Format(PyExc_TypeError, "%s() takes from 1 to %zd positional arguments but "
                         "%zd were given", fname, n + 1, nargs + 1);
        }
        else {
            PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", fname,
                         n, n == 1 ? "" : "s", nargs);
        }
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    if (kwnames == NULL) {
        return 0;
    }
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        for (; i < n; i++) {
            if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                break;
            }
        }
        if (i == n) {
            /* PyArg's own wording changed in 3.13 to the one Python functions use */
            if (pystyle || PY_VERSION_HEX >= 0x030D0000) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                             fname, key);
            }
            else {
                PyErr_Format(PyExc_TypeError, "'%U' is an invalid keyword argument for %s()", key,
                             fname);
            }
            return -1;
        }
        if (out[i] != NULL) {
            if (pystyle) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                             names[i]);
            }
            else {
                PyErr_Format(PyExc_TypeError, "argument for %s() given by name ('%s') and "
                             "position (%zd)", fname, names[i], i + 1);
            }
            return -1;
        }
        out[i] = args[nargs + k];
    }
    return 0;
#undef pystyle
}

PyObject *
pc_copy_self(PyObject *self, PyObject *Py_UNUSED(unused))
{
    return Py_NewRef(self);
}

PyObject *
pc_cannot_pickle(const char *what)
{
    PyErr_Format(PyExc_TypeError, "cannot pickle '%s' object", what);
    return NULL;
}

void
pc_probe_message(PyObject *type, char *buf, size_t size)
{
    if (PyErr_Occurred() && PyErr_ExceptionMatches(type)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        PyObject *msg = ev ? PyObject_Str(ev) : NULL;
        const char *text = msg ? PyUnicode_AsUTF8(msg) : NULL;
        if (text != NULL && strlen(text) < size) {
            strcpy(buf, text);
        }
        Py_XDECREF(msg);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
    }
    PyErr_Clear();
}

int
pc_uninitialized(PyObject *self, const char *attr)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name != NULL) {
        PyErr_Format(PyExc_AttributeError, "'%U' object has no attribute '%s'", name, attr);
        Py_DECREF(name);
    }
    return -1;
}

/* "'a'", "'a' and 'b'", "'a', 'b' and 'c'": the list in Python's missing-argument message. */
static PyObject *
quoted_names(const char *const *names, const Py_ssize_t *which, Py_ssize_t k)
{
    PyObject *r = PyUnicode_FromString("");
    for (Py_ssize_t i = 0; r != NULL && i < k; i++) {
        const char *sep = i == 0 ? "" : (i == k - 1 ? (k > 2 ? ", and " : " and ") : ", ");
        PyObject *part = PyUnicode_FromFormat("%s'%s'", sep, names[which[i]]);
        PyObject *joined = part ? PyUnicode_Concat(r, part) : NULL;
        Py_XDECREF(part);
        Py_SETREF(r, joined);
    }
    return r;
}

int
pc_require_args(const char *fname, const char *const *names, Py_ssize_t nrequired,
                PyObject **out)
{
    Py_ssize_t missing[8], k = 0;
    for (Py_ssize_t i = 0; i < nrequired && k < 8; i++) {
        if (out[i] == NULL) {
            missing[k++] = i;
        }
    }
    if (k == 0) {
        return 0;
    }
    PyObject *list = quoted_names(names, missing, k);
    if (list != NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing %zd required positional argument%s: %U",
                     fname, k, k == 1 ? "" : "s", list);
        Py_DECREF(list);
    }
    return -1;
}

int
pc_parse_init_args(const char *fname, PyObject *args, PyObject *kwds, const char *const *names,
                   Py_ssize_t n, Py_ssize_t npos, Py_ssize_t nrequired, PyObject **out)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = i < nargs && i < npos ? PyTuple_GET_ITEM(args, i) : NULL;
    }
    Py_ssize_t kwonly_given = 0;
    if (kwds != NULL) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(kwds, &pos, &key, &value)) {
            Py_ssize_t i = 0;
            for (; i < n; i++) {
                if (PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                    break;
                }
            }
            if (i == n) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'",
                             fname, key);
                return -1;
            }
            if (out[i] != NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                             fname, names[i]);
                return -1;
            }
            out[i] = value;
            kwonly_given += i >= npos;
        }
    }
    if (nargs > npos) {  /* counts include self, as Python's messages do */
        PyObject *takes = nrequired == npos
            ? PyUnicode_FromFormat("%zd positional argument%s", npos + 1, npos ? "s" : "")
            : PyUnicode_FromFormat("from %zd to %zd positional arguments", nrequired + 1,
                                   npos + 1);
        if (takes == NULL) {
            return -1;
        }
        if (kwonly_given) {
            PyErr_Format(PyExc_TypeError, "%s() takes %U but %zd positional argument%s (and %zd "
                         "keyword-only argument%s) were given", fname, takes, nargs + 1,
                         nargs + 1 == 1 ? "" : "s", kwonly_given, kwonly_given == 1 ? "" : "s");
        }
        else {
            PyErr_Format(PyExc_TypeError, "%s() takes %U but %zd %s given", fname, takes,
                         nargs + 1, nargs + 1 == 1 ? "was" : "were");
        }
        Py_DECREF(takes);
        return -1;
    }
    return pc_require_args(fname, names, nrequired, out);
}

int
pc_fd_table_reserve(void **table, int *cap, int fd, size_t elsize, int fill)
{
    if (fd < *cap) {
        return 0;
    }
    if (fd >= (1 << 30)) {
        PyErr_NoMemory();
        return -1;
    }
    int ncap = *cap ? *cap : 64;
    while (ncap <= fd) {
        ncap *= 2;
    }
    char *t = PyMem_Realloc(*table, (size_t)ncap * elsize);
    if (t == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(t + (size_t)*cap * elsize, fill, (size_t)(ncap - *cap) * elsize);
    *table = t;
    *cap = ncap;
    return 0;
}
