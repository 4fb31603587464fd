/* selector.c -- pyconc.selectors: EpollSelector (the DefaultSelector), PollSelector,
 * SelectSelector, and pyconc.gevent.selectors.GeventSelector, with the stdlib's selectors API.
 *
 * One object layout for the four types; `kind` says which stdlib class a selector behaves as.
 * The Python faces (pyconc/selectors.py, pyconc/gevent/selectors.py) subclass these types and
 * selectors.BaseSelector, so isinstance() checks and the context manager are the stdlib's.
 *
 * What a selector owns (all of it GIL-protected):
 *   - fd_to_key: the dict the stdlib calls _fd_to_key, descriptor object -> selectors.SelectorKey
 *     (the stdlib's own namedtuple). get_map() is the stdlib's _SelectorMapping over this
 *     object (it reads _fd_to_key and calls _fileobj_lookup), so the mapping is exact.
 *   - epoll and gevent kinds: an epoll instance (epfd). select() collects the ready events and
 *     builds the (key, events) list in C: one dict lookup per ready descriptor. A gevent selector
 *     also keeps the regular files it was given (epoll refuses them; libev reports them always
 *     ready, and so does this).
 *   - poll kind: the registered descriptors in registration order (ents), what the stdlib keeps
 *     in its select.poll object's dict. select kind: the stdlib's own _readers/_writers sets
 *     (rset, wset), and the fd_sets select() builds from them, kept until the sets change. As
 *     in the stdlib, close() forgets the keys but not these, and a failed modify() drops the key
 *     but not the poll registration.
 *
 * Waiting (iowait.h). A thread without a hub blocks in epoll_wait/poll/select with the GIL
 * released, EINTR running the signal handlers and retrying with the time left (PEP 475), as the
 * stdlib. A greenlet that may yield parks on its hub instead: an epoll selector waits for its own
 * epoll fd to become readable (an epoll fd is pollable: readable when one of its descriptors is
 * ready), which costs the hub one watch and no per-descriptor work; poll and select selectors
 * first try their system call without a timeout, then put their descriptors in a private epoll
 * instance for the wait and ask the system call again when it is readable. Every kind tries once
 * without blocking first (the GIL held), so a select() that finds events ready never releases
 * the GIL or switches.
 *
 * Threads. register() in one thread while another is in select() works as with the stdlib (the
 * kernel's epoll set is shared; a poll or select selector sees a change at its next call). Several
 * threads or greenlets may be in select() at once: each collects into its own buffer when the
 * shared one is taken. close() while others are in select() keeps the epoll fd open until the
 * last of them leaves (its number cannot be reused under a waiting greenlet's hub watch); those
 * waiters then find the selector closed and return no events, as a thread whose epoll object was
 * closed under it does.
 */
#include "iowait.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

/* _PyTime_FromMillisecondsObject's overflow message: the running interpreter's (it changed
 * within 3.13.x, so wait.c reads it from the interpreter once) */
#define MSG_PYTIME_OVERFLOW pc_msg_pytime_int_overflow()

#define EV_R 1                /* selectors.EVENT_READ */
#define EV_W 2                /* selectors.EVENT_WRITE */

enum { K_EPOLL = 1, K_POLL, K_SELECT, K_GEVENT };

typedef struct {
    int fd;                   /* the descriptor, or ENT_DEAD */
    short events;             /* the poll events */
} fdent_t;

/* select()'s memory of one descriptor (epoll, gevent and poll kinds): its int for the
 * _fd_to_key lookup, so that no int is made per ready descriptor, and the (key, events) pair it
 * last returned, which serves again (tuples are immutable) while the lookup finds the same key
 * and the events are the same. unregister, close and __init__ forget it, so that it never keeps
 * an unregistered file object alive. */
typedef struct {
    PyObject *fdobj;          /* an int equal to the fd, or NULL */
    PyObject *pair;           /* (key, mask) last returned for the fd, or NULL */
    long mask;                /* pair's mask */
} rcent_t;

#define RC_MAX (1 << 16)      /* fds remembered by rc: 1.5 MiB at most */

typedef struct {
    PyObject_HEAD
    pc_state *st;             /* module state */
    int kind;                 /* K_*: fixed by the type's tp_new */
    int epfd;                 /* epoll and gevent kinds: the instance; -1 closed or not made */
    int zombie_epfd;          /* closed while select() calls were waiting: closed by the last */
    int nwaiting;             /* select() calls in progress that may block or switch */
    PyObject *fd_to_key;      /* dict fd -> SelectorKey; NULL until __init__ */
    PyObject *map;            /* selectors._SelectorMapping(self), or None once closed */
    fdent_t *ents;            /* poll kind: registered descriptors, in order;
                               * unregister leaves a dead entry (fd ENT_DEAD), squeezed out by
                               * ents_compact before select() reads the list */
    Py_ssize_t nents, capents, ndead;
    int *pos;                 /* poll kind: index in ents of each fd in [0, capos)
                               * there, or -1: register, modify and unregister are O(1) as the
                               * stdlib's dicts, not a search of the list (an fd from POS_MAX up,
                               * which register takes without a system call, is searched for) */
    int capos;
    PyObject *rset, *wset;    /* select kind: the stdlib's _readers and _writers sets, with the
                               * same add/discard history, so that select() iterates them in the
                               * stdlib's order (see select_select_impl) */
    uint64_t sets_ver;        /* select kind: bumped by every change of rset and wset */
    uint64_t fdsets_ver;      /* the sets_ver that fdr, fdw and fdmax were built from, or -1 */
    fd_set fdr, fdw;          /* select kind: select()'s input, as of fdsets_ver */
    int fdmax;
    uint64_t ents_ver;        /* poll kind: bumped by every change of ents */
    struct pollfd *pfds;      /* poll kind: poll()'s array as of ents_ver pfds_ver, kept from one
                               * select() to the next (as select.poll keeps its ufds) */
    Py_ssize_t cappfds;
    uint64_t pfds_ver;
    int pfds_busy;            /* pfds in use by a select() (another one copies ents afresh) */
    int *files;               /* gevent kind: registered regular files (always ready) */
    Py_ssize_t nfiles, capfiles;
    struct epoll_event *evbuf;  /* epoll_wait's buffer, for one select() at a time */
    int capev;
    int evbuf_busy;           /* evbuf in use by a select() that released the GIL or switched */
    uint64_t gen;             /* pc_fork_generation that nwaiting and evbuf_busy belong to */
    rcent_t *rc;              /* epoll, gevent and poll kinds: by fd, below caprc (< RC_MAX) */
    int caprc;
} SelectorObject;

#define SEL(o) ((SelectorObject *)(o))

/* -- names as the stdlib's Python code prints them ------------------------------------------ */

static const char *
name_of(SelectorObject *self, const char *method)
{
    /* (kind, method) -> the qualified name of the Python function the stdlib runs */
    int k = self->kind;
    if (strcmp(method, "register") == 0) {
        return k == K_SELECT ? "SelectSelector.register" : k == K_GEVENT
               ? "GeventSelector.register" : "_PollLikeSelector.register";
    }
    if (strcmp(method, "unregister") == 0) {
        return k == K_SELECT ? "SelectSelector.unregister" : k == K_GEVENT
               ? "GeventSelector.unregister" : "_PollLikeSelector.unregister";
    }
    if (strcmp(method, "modify") == 0) {
        return (k == K_SELECT || k == K_GEVENT) ? "_BaseSelectorImpl.modify"
               : "_PollLikeSelector.modify";
    }
    if (strcmp(method, "select") == 0) {
        return k == K_SELECT ? "SelectSelector.select" : k == K_GEVENT ? "GeventSelector.select"
               : k == K_EPOLL ? "EpollSelector.select" : "_PollLikeSelector.select";
    }
    return method;
}

/* AttributeError of a selector whose __init__ did not run. */
#define SEL_CHECK(self, attr, fail)                                    \
    do {                                                               \
        if ((self)->fd_to_key == NULL) {                               \
            pc_uninitialized((PyObject *)(self), attr);                \
            return fail;                                               \
        }                                                              \
    } while (0)

static PyObject *
err_closed_epoll(void)
{
    PyErr_SetString(PyExc_ValueError, "I/O operation on closed epoll object");
    return NULL;
}

/* -- SelectorKey --------------------------------------------------------------------------- */

/* selectors.SelectorKey(fileobj, fd, events, data): the namedtuple's __new__ is
 * tuple.__new__(cls, (fileobj, fd, events, data)); built here without its Python frame. */
static PyObject *
key_new(pc_state *st, PyObject *fileobj, PyObject *fd, PyObject *events, PyObject *data)
{
    PyTypeObject *tp = (PyTypeObject *)st->SelectorKey;
    PyObject *k = tp->tp_alloc(tp, 4);
    if (k == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(k, 0, Py_NewRef(fileobj));
    PyTuple_SET_ITEM(k, 1, Py_NewRef(fd));
    PyTuple_SET_ITEM(k, 2, Py_NewRef(events));
    PyTuple_SET_ITEM(k, 3, Py_NewRef(data));
    return k;
}

#define KEY_FILEOBJ(k) PyTuple_GET_ITEM((k), 0)
#define KEY_FD(k) PyTuple_GET_ITEM((k), 1)
#define KEY_EVENTS(k) PyTuple_GET_ITEM((k), 2)
#define KEY_DATA(k) PyTuple_GET_ITEM((k), 3)

/* The stdlib objects a selector needs, looked up on first use (importing selectors at module
 * init would cost every pyconc import). 0 or -1. */
static int
load_stdlib(pc_state *st)
{
    if (st->SelectorKey != NULL) {
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("selectors");
    if (mod == NULL) {
        return -1;
    }
    PyObject *key = PyObject_GetAttrString(mod, "SelectorKey");
    PyObject *mapping = key ? PyObject_GetAttrString(mod, "_SelectorMapping") : NULL;
    Py_DECREF(mod);
    if (mapping == NULL) {
        Py_XDECREF(key);
        return -1;
    }
    if (!PyType_Check(key) || !PyType_IsSubtype((PyTypeObject *)key, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "selectors.SelectorKey is not a tuple subclass");
        Py_DECREF(key);
        Py_DECREF(mapping);
        return -1;
    }
    st->SelectorKey = key;
    st->SelectorMapping = mapping;
    return 0;
}

/* -- Python operations on events, as the stdlib's Python code does them --------------------- */

/* `(not events) or (events & ~(EVENT_READ | EVENT_WRITE))`: 1 invalid, 0 valid, -1 error. */
static int
events_invalid(PyObject *events)
{
    if (PyLong_CheckExact(events)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(events, &overflow);
        if (overflow) {
            return 1;   /* a huge int has bits beyond READ|WRITE */
        }
        return v == 0 || (v & ~(long)(EV_R | EV_W)) != 0;
    }
    int t = PyObject_Not(events);
    if (t != 0) {
        return t;
    }
    PyObject *mask = PyLong_FromLong(~(long)(EV_R | EV_W));
    PyObject *r = mask ? PyNumber_And(events, mask) : NULL;
    Py_XDECREF(mask);
    if (r == NULL) {
        return -1;
    }
    t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* bool(events & bit): 1, 0, or -1 with the operation's error. */
static int
events_has(PyObject *events, long bit)
{
    if (PyLong_CheckExact(events)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(events, &overflow);
        if (!overflow) {
            return (v & bit) != 0;
        }
    }
    PyObject *b = PyLong_FromLong(bit);
    PyObject *r = b ? PyNumber_And(events, b) : NULL;
    Py_XDECREF(b);
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* `a != b` as Python evaluates it (no identity shortcut): 1, 0, -1. */
static int
py_ne(PyObject *a, PyObject *b)
{
    PyObject *r = PyObject_RichCompare(a, b, Py_NE);
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* `"{}".format(obj)`: new reference or NULL. */
static PyObject *
py_format(PyObject *obj)
{
    PyObject *empty = PyUnicode_FromString("");
    PyObject *s = empty ? PyObject_Format(obj, empty) : NULL;
    Py_XDECREF(empty);
    return s;
}

/* KeyError("{!r} is not registered".format(fileobj)) from None. Returns NULL. */
static PyObject *
err_not_registered(PyObject *fileobj)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);   /* the repr must not run with an exception set */
    PyObject *msg = PyUnicode_FromFormat("%R is not registered", fileobj);
    if (msg == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return NULL;
    }
    PyErr_Restore(et, ev, etb);
    pc_io_raise_from_none(PyExc_KeyError, msg);
    Py_DECREF(msg);
    return NULL;
}

/* -- descriptor lookups --------------------------------------------------------------------- */

/* _BaseSelectorImpl._fileobj_lookup: _fileobj_to_fd, or, when that raises ValueError, the fd of
 * a registered key whose fileobj is this very object (a closed file can still be unregistered).
 * New reference or NULL. */
static PyObject *
fileobj_lookup(SelectorObject *self, PyObject *fileobj)
{
    PyObject *fd = pc_io_fileobj_to_fd(fileobj);
    if (fd != NULL || !PyErr_ExceptionMatches(PyExc_ValueError)) {
        return fd;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *key;
    while (PyDict_Next(self->fd_to_key, &pos, &k, &key)) {
        if (PyTuple_Check(key) && PyTuple_GET_SIZE(key) == 4 && KEY_FILEOBJ(key) == fileobj) {
            PyErr_Clear();
            return Py_NewRef(KEY_FD(key));
        }
    }
    return NULL;
}

/* The key registered for fileobj (new reference), or NULL with KeyError("... is not
 * registered") -- or with the lookup's ValueError, which the stdlib lets through. */
static PyObject *
key_of(SelectorObject *self, PyObject *fileobj, PyObject **fd_out)
{
    PyObject *fd = fileobj_lookup(self, fileobj);
    if (fd == NULL) {
        return PyErr_ExceptionMatches(PyExc_KeyError) ? err_not_registered(fileobj) : NULL;
    }
    PyObject *key = PyDict_GetItemWithError(self->fd_to_key, fd);
    if (key == NULL) {
        Py_DECREF(fd);
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_KeyError)) {
            return NULL;
        }
        return err_not_registered(fileobj);
    }
    if (fd_out != NULL) {
        *fd_out = fd;
    }
    else {
        Py_DECREF(fd);
    }
    return Py_NewRef(key);
}

static void rc_forget(SelectorObject *self, PyObject *fd);

/* Deletes fd_to_key[fd] keeping the exception being raised (the stdlib's `super().unregister
 * (fileobj); raise` after a failed poller call). */
static void
drop_key_keep_error(SelectorObject *self, PyObject *fd)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (PyDict_DelItem(self->fd_to_key, fd) < 0) {
        PyErr_Clear();
    }
    rc_forget(self, fd);
    PyErr_Restore(et, ev, etb);
}

/* -- the poll and select kinds' descriptor list ------------------------------------------------ */

#define ENT_DEAD (-2)
#define POS_MAX (1 << 20)     /* fds indexed by pos: 4 MiB at most */

/* The index of descriptor fd (>= 0) in ents, or -1 if it has none. */
static Py_ssize_t
ent_find(SelectorObject *self, int fd)
{
    if (fd < POS_MAX) {
        return fd < self->capos ? self->pos[fd] : -1;
    }
    for (Py_ssize_t i = 0; i < self->nents; i++) {
        if (self->ents[i].fd == fd) {
            return i;
        }
    }
    return -1;
}

static int
ent_append(SelectorObject *self, int fd, short events)
{
    if (self->nents >= INT_MAX) {
        PyErr_NoMemory();
        return -1;
    }
    if (fd < POS_MAX) {
        void *t = self->pos;   /* an int table: bytes of 0xff make -1, "not registered" */
        int rc = pc_fd_table_reserve(&t, &self->capos, fd, sizeof(int), 0xff);
        self->pos = t;
        if (rc < 0) {
            return -1;
        }
    }
    if (self->nents == self->capents) {
        Py_ssize_t cap = self->capents ? self->capents * 2 : 16;
        fdent_t *e = PyMem_Realloc(self->ents, (size_t)cap * sizeof(fdent_t));
        if (e == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->ents = e;
        self->capents = cap;
    }
    self->ents_ver++;
    if (fd < POS_MAX) {
        self->pos[fd] = (int)self->nents;
    }
    fdent_t *e = &self->ents[self->nents++];
    e->fd = fd;
    e->events = events;
    return 0;
}

/* Squeezes the dead entries out of ents, keeping the order of the rest. */
static void
ents_compact(SelectorObject *self)
{
    if (self->ndead == 0) {
        return;
    }
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < self->nents; i++) {
        fdent_t e = self->ents[i];
        if (e.fd == ENT_DEAD) {
            continue;
        }
        if (e.fd < POS_MAX) {
            self->pos[e.fd] = (int)j;
        }
        self->ents[j++] = e;
    }
    self->nents = j;
    self->ndead = 0;
}

/* Unregisters entry i: marked dead in place (O(1)); squeezed out by the next select(), or here
 * once the dead are half the list. */
static void
ent_remove(SelectorObject *self, Py_ssize_t i)
{
    fdent_t *e = &self->ents[i];
    self->ents_ver++;
    if (e->fd < POS_MAX) {
        self->pos[e->fd] = -1;
    }
    e->fd = ENT_DEAD;
    e->events = 0;
    self->ndead++;
    if (self->ndead > 64 && self->ndead * 2 > self->nents) {
        ents_compact(self);
    }
}

/* -- gevent kind: regular files ------------------------------------------------------------------ */

static int
file_add(SelectorObject *self, int fd)
{
    if (self->nfiles == self->capfiles) {
        Py_ssize_t cap = self->capfiles ? self->capfiles * 2 : 8;
        int *f = PyMem_Realloc(self->files, (size_t)cap * sizeof(int));
        if (f == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->files = f;
        self->capfiles = cap;
    }
    self->files[self->nfiles++] = fd;
    return 0;
}

static void
file_remove(SelectorObject *self, int fd)
{
    for (Py_ssize_t i = 0; i < self->nfiles; i++) {
        if (self->files[i] == fd) {
            self->files[i] = self->files[--self->nfiles];
            return;
        }
    }
}

/* -- life cycle ---------------------------------------------------------------------------------- */

/* After fork() the select() calls of the parent's other threads and greenlets are not in the
 * child: nobody will leave them. */
static inline void
fork_check(SelectorObject *self)
{
    if (self->gen != pc_fork_generation) {
        self->gen = pc_fork_generation;
        self->nwaiting = 0;
        self->evbuf_busy = 0;
        self->pfds_busy = 0;
    }
}

static void
close_epfd(SelectorObject *self)
{
    fork_check(self);
    if (self->epfd < 0) {
        return;
    }
    if (self->nwaiting > 0 && self->zombie_epfd < 0) {
        self->zombie_epfd = self->epfd;   /* partner: leave_wait closes it */
    }
    else {
        close(self->epfd);
    }
    self->epfd = -1;
}

/* Empties rc[i]. Its references go last: their release may run code that calls select(), which
 * may move rc. */
static void
rc_drop(SelectorObject *self, long i)
{
    rcent_t *e = &self->rc[i];
    PyObject *a = e->fdobj, *b = e->pair;
    e->fdobj = e->pair = NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
}

/* Forgets what select() remembered of fd (any object; not an int in range: nothing). */
static void
rc_forget(SelectorObject *self, PyObject *fd)
{
    int overflow = 1;
    long v = PyLong_Check(fd) ? PyLong_AsLongAndOverflow(fd, &overflow) : -1;
    if (!overflow && v >= 0 && v < self->caprc) {
        rc_drop(self, v);
    }
}

/* Forgets everything select() remembered. */
static void
rc_clear(SelectorObject *self)
{
    for (int i = 0; i < self->caprc; i++) {
        rc_drop(self, i);
    }
}

static void
clear_ents(SelectorObject *self)
{
    if (self->kind != K_POLL) {
        return;
    }
    self->ents_ver++;
    while (self->nents > 0) {
        fdent_t *e = &self->ents[--self->nents];
        if (e->fd >= 0 && e->fd < POS_MAX) {
            self->pos[e->fd] = -1;
        }
        e->fd = ENT_DEAD;
    }
    self->ndead = 0;
}

static int
sel_traverse(SelectorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fd_to_key);
    Py_VISIT(self->map);
    Py_VISIT(self->rset);
    Py_VISIT(self->wset);
    for (int i = 0; i < self->caprc; i++) {
        Py_VISIT(self->rc[i].pair);
    }
    return 0;
}

static int
sel_clear(SelectorObject *self)
{
    Py_CLEAR(self->fd_to_key);
    Py_CLEAR(self->map);
    Py_CLEAR(self->rset);
    Py_CLEAR(self->wset);
    clear_ents(self);
    rc_clear(self);
    return 0;
}

static void
sel_dealloc(SelectorObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    sel_clear(self);
    if (self->epfd >= 0) {
        close(self->epfd);
    }
    if (self->zombie_epfd >= 0) {
        close(self->zombie_epfd);
    }
    PyMem_Free(self->ents);
    PyMem_Free(self->pos);
    PyMem_Free(self->pfds);
    PyMem_Free(self->files);
    PyMem_Free(self->evbuf);
    PyMem_Free(self->rc);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
sel_new_kind(PyTypeObject *type, int kind)
{
    pc_state *st = pc_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    SelectorObject *self = (SelectorObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->st = st;
    self->kind = kind;
    self->epfd = -1;
    self->zombie_epfd = -1;
    self->fdsets_ver = (uint64_t)-1;
    self->gen = pc_fork_generation;
    return (PyObject *)self;
}

static PyObject *
epoll_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sel_new_kind(type, K_EPOLL);
}

static PyObject *
poll_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sel_new_kind(type, K_POLL);
}

static PyObject *
select_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sel_new_kind(type, K_SELECT);
}

static PyObject *
gevent_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return sel_new_kind(type, K_GEVENT);
}

static int
sel_init(SelectorObject *self, PyObject *args, PyObject *kwds)
{
    const char *fname = self->kind == K_SELECT ? "SelectSelector.__init__"
                        : self->kind == K_GEVENT ? "GeventSelector.__init__"
                        : "_PollLikeSelector.__init__";
    if (self->kind == K_GEVENT) {
        /* GeventSelector(hub=None): the face keeps the hub */
        static const char *const names[] = {"hub"};
        PyObject *hub;
        if (pc_parse_init_args(fname, args, kwds, names, 1, 1, 0, &hub) < 0) {
            return -1;
        }
    }
    else if (pc_parse_init_args(fname, args, kwds, NULL, 0, 0, 0, NULL) < 0) {
        return -1;
    }
    if (load_stdlib(self->st) < 0) {
        return -1;
    }
    int epfd = -1;
    if (self->kind == K_EPOLL || self->kind == K_GEVENT) {
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    PyObject *d = PyDict_New();
    PyObject *map = d ? PyObject_CallOneArg(self->st->SelectorMapping, (PyObject *)self) : NULL;
    if (map == NULL) {
        Py_XDECREF(d);
        if (epfd >= 0) {
            close(epfd);
        }
        return -1;
    }
    PyObject *rset = NULL, *wset = NULL;
    if (self->kind == K_SELECT &&
            ((rset = PySet_New(NULL)) == NULL || (wset = PySet_New(NULL)) == NULL)) {
        Py_XDECREF(rset);
        Py_DECREF(d);
        Py_DECREF(map);
        return -1;
    }
    /* a second __init__ starts afresh, as the stdlib's makes a new dict and a new poller */
    Py_XSETREF(self->rset, rset);
    Py_XSETREF(self->wset, wset);
    self->sets_ver++;
    close_epfd(self);
    self->epfd = epfd;
    Py_XSETREF(self->fd_to_key, d);
    Py_XSETREF(self->map, map);
    clear_ents(self);
    rc_clear(self);
    self->nfiles = 0;
    return 0;
}

/* -- register / unregister / modify ---------------------------------------------------------- */

/* The poller's share of register(): 0, or -1 with the error (the caller drops the key). */
static int
poller_register(SelectorObject *self, PyObject *key, PyObject *events)
{
    int rd = events_has(events, EV_R);
    int wr = rd < 0 ? -1 : events_has(events, EV_W);
    if (wr < 0) {
        return -2;   /* outside the stdlib's try: the key stays */
    }
    PyObject *fdobj = KEY_FD(key);
    if (self->kind == K_SELECT) {
        /* _readers.add(fd) / _writers.add(fd): no system call, no conversion yet */
        self->sets_ver++;
        if ((rd && PySet_Add(self->rset, fdobj) < 0) || (wr && PySet_Add(self->wset, fdobj) < 0)) {
            return -2;
        }
        return 0;
    }
    if (self->kind == K_POLL) {
        short pev = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
        int fd = PyObject_AsFileDescriptor(fdobj);
        if (fd < 0) {
            return -1;
        }
        Py_ssize_t i = ent_find(self, fd);
        if (i >= 0) {
            self->ents[i].events = pev;   /* poll.register of a known fd: in place */
            self->ents_ver++;
            return 0;
        }
        return ent_append(self, fd, pev);
    }
    /* epoll and gevent kinds */
    if (self->epfd < 0) {
        err_closed_epoll();
        return -1;
    }
    int fd = PyObject_AsFileDescriptor(fdobj);
    if (fd < 0) {
        return -1;
    }
    struct epoll_event ev = {.events = (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0), .data.fd = fd};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        return 0;
    }
    if (self->kind == K_GEVENT) {
        if (errno == EPERM) {
            return file_add(self, fd);   /* a regular file: libev says always ready */
        }
        /* gevent: `raise ValueError('Invalid file descriptor') from e` */
        PyErr_SetFromErrno(PyExc_OSError);
        PyObject *et, *ev2, *etb;
        PyErr_Fetch(&et, &ev2, &etb);
        PyErr_NormalizeException(&et, &ev2, &etb);
        PyObject *exc = PyObject_CallFunction(PyExc_ValueError, "s", "Invalid file descriptor");
        if (exc != NULL) {
            PyException_SetContext(exc, Py_NewRef(ev2));
            PyException_SetCause(exc, Py_NewRef(ev2));
            PyErr_Restore(Py_NewRef(PyExc_ValueError), exc, NULL);
        }
        Py_XDECREF(et);
        Py_XDECREF(ev2);
        Py_XDECREF(etb);
        return -1;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

static PyObject *
do_register(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data)
{
    int bad = events_invalid(events);
    if (bad != 0) {
        if (bad > 0) {
            PyErr_Format(PyExc_ValueError, "Invalid events: %R", events);
        }
        return NULL;
    }
    PyObject *fd = fileobj_lookup(self, fileobj);
    if (fd == NULL) {
        return NULL;
    }
    PyObject *key = key_new(self->st, fileobj, fd, events, data);
    if (key == NULL) {
        Py_DECREF(fd);
        return NULL;
    }
    int has = PyDict_Contains(self->fd_to_key, fd);
    if (has != 0) {
        if (has > 0) {
            PyObject *s = py_format(fd);
            if (s != NULL) {
                PyErr_Format(PyExc_KeyError, "%R (FD %U) is already registered", fileobj, s);
                Py_DECREF(s);
            }
        }
        goto fail;
    }
    if (PyDict_SetItem(self->fd_to_key, fd, key) < 0) {
        goto fail;
    }
    int r = poller_register(self, key, events);
    if (r == -1) {
        drop_key_keep_error(self, fd);
        goto fail;
    }
    if (r < 0) {
        goto fail;
    }
    Py_DECREF(fd);
    return key;
fail:
    Py_DECREF(fd);
    Py_DECREF(key);
    return NULL;
}

static PyObject *
sel_register(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fileobj", "events", "data"};
    PyObject *a[3];
    if (pc_io_parse_args(name_of(self, "register"), args, nargs, kwnames, names, 3, 2, a) < 0) {
        return NULL;
    }
    SEL_CHECK(self, "_fd_to_key", NULL);
    return do_register(self, a[0], a[1], a[2] ? a[2] : Py_None);
}

static PyObject *
do_unregister(SelectorObject *self, PyObject *fileobj)
{
    PyObject *fd = NULL;
    PyObject *key = key_of(self, fileobj, &fd);
    if (key == NULL) {
        return NULL;
    }
    int rc = PyDict_DelItem(self->fd_to_key, fd);
    Py_DECREF(fd);
    if (rc < 0) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *fdobj = KEY_FD(key);
    rc_forget(self, fdobj);
    if (self->kind == K_SELECT) {
        /* _readers.discard(key.fd); _writers.discard(key.fd) */
        self->sets_ver++;
        if (PySet_Discard(self->rset, fdobj) < 0 || PySet_Discard(self->wset, fdobj) < 0) {
            Py_DECREF(key);
            return NULL;
        }
        return key;
    }
    int cfd;
    if (self->kind == K_POLL) {
        cfd = PyObject_AsFileDescriptor(fdobj);
        if (cfd < 0) {
            Py_DECREF(key);
            return NULL;
        }
        Py_ssize_t i = ent_find(self, cfd);
        if (i < 0) {
            /* select.poll.unregister of an fd it does not have */
            PyObject *k = PyLong_FromLong(cfd);
            if (k != NULL) {
                PyErr_SetObject(PyExc_KeyError, k);
                Py_DECREF(k);
            }
            Py_DECREF(key);
            return NULL;
        }
        ent_remove(self, i);
        return key;
    }
    if (self->epfd < 0) {
        Py_DECREF(key);
        return err_closed_epoll();
    }
    cfd = PyObject_AsFileDescriptor(fdobj);
    if (cfd < 0) {
        if (PyErr_ExceptionMatches(PyExc_OSError)) {
            PyErr_Clear();
            return key;
        }
        Py_DECREF(key);
        return NULL;
    }
    if (self->kind == K_GEVENT) {
        file_remove(self, cfd);
    }
    struct epoll_event ev = {0};
    (void)epoll_ctl(self->epfd, EPOLL_CTL_DEL, cfd, &ev);   /* closed meanwhile: ignored */
    return key;
}

static PyObject *
sel_unregister(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fileobj"};
    PyObject *a[1];
    if (pc_io_parse_args(name_of(self, "unregister"), args, nargs, kwnames, names, 1, 1, a) < 0) {
        return NULL;
    }
    SEL_CHECK(self, "_fd_to_key", NULL);
    return do_unregister(self, a[0]);
}

/* _PollLikeSelector.modify (epoll and poll kinds). */
static PyObject *
polllike_modify(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data)
{
    PyObject *fd = NULL;
    PyObject *key = key_of(self, fileobj, &fd);
    if (key == NULL) {
        return NULL;
    }
    int changed = 0;
    int ne = py_ne(events, KEY_EVENTS(key));
    if (ne < 0) {
        goto fail;
    }
    if (ne) {
        int rd = events_has(events, EV_R);
        int wr = rd < 0 ? -1 : events_has(events, EV_W);
        if (wr < 0) {
            goto fail;
        }
        /* self._selector.modify(key.fd, selector_events) */
        int cfd = -1, ok = 0;
        if (self->kind == K_EPOLL && self->epfd < 0) {
            err_closed_epoll();
        }
        else if ((cfd = PyObject_AsFileDescriptor(KEY_FD(key))) >= 0) {
            if (self->kind == K_EPOLL) {
                struct epoll_event ev = {.events = (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0),
                                         .data.fd = cfd};
                if (epoll_ctl(self->epfd, EPOLL_CTL_MOD, cfd, &ev) == 0) {
                    ok = 1;
                }
                else {
                    PyErr_SetFromErrno(PyExc_OSError);
                }
            }
            else {
                Py_ssize_t i = ent_find(self, cfd);
                if (i >= 0) {
                    self->ents[i].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
                    self->ents_ver++;
                    ok = 1;
                }
                else {
                    errno = ENOENT;
                    PyErr_SetFromErrno(PyExc_OSError);
                }
            }
        }
        if (!ok) {
            drop_key_keep_error(self, KEY_FD(key));
            goto fail;
        }
        changed = 1;
    }
    ne = py_ne(data, KEY_DATA(key));
    if (ne < 0) {
        goto fail;
    }
    if (ne || changed) {
        PyObject *nk = key_new(self->st, KEY_FILEOBJ(key), KEY_FD(key), events, data);
        if (nk == NULL || PyDict_SetItem(self->fd_to_key, KEY_FD(nk), nk) < 0) {
            Py_XDECREF(nk);
            goto fail;
        }
        Py_SETREF(key, nk);
    }
    Py_DECREF(fd);
    return key;
fail:
    Py_DECREF(fd);
    Py_DECREF(key);
    return NULL;
}

/* _BaseSelectorImpl.modify (select and gevent kinds): unregister + register through the
 * instance's own methods when the events change, else a shortcut for the data. */
static PyObject *
base_modify(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data)
{
    PyObject *key = key_of(self, fileobj, NULL);
    if (key == NULL) {
        return NULL;
    }
    int ne = py_ne(events, KEY_EVENTS(key));
    if (ne < 0) {
        Py_DECREF(key);
        return NULL;
    }
    if (ne) {
        Py_DECREF(key);
        PyObject *r = PyObject_CallMethod((PyObject *)self, "unregister", "O", fileobj);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        return PyObject_CallMethod((PyObject *)self, "register", "OOO", fileobj, events, data);
    }
    ne = py_ne(data, KEY_DATA(key));
    if (ne <= 0) {
        if (ne < 0) {
            Py_CLEAR(key);
        }
        return key;
    }
    PyObject *nk = key_new(self->st, KEY_FILEOBJ(key), KEY_FD(key), KEY_EVENTS(key), data);
    Py_DECREF(key);
    if (nk == NULL || PyDict_SetItem(self->fd_to_key, KEY_FD(nk), nk) < 0) {
        Py_XDECREF(nk);
        return NULL;
    }
    return nk;
}

static PyObject *
sel_modify(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fileobj", "events", "data"};
    PyObject *a[3];
    if (pc_io_parse_args(name_of(self, "modify"), args, nargs, kwnames, names, 3, 2, a) < 0) {
        return NULL;
    }
    SEL_CHECK(self, "_fd_to_key", NULL);
    PyObject *data = a[2] ? a[2] : Py_None;
    if (self->kind == K_SELECT || self->kind == K_GEVENT) {
        return base_modify(self, a[0], a[1], data);
    }
    return polllike_modify(self, a[0], a[1], data);
}

/* -- close, get_map, get_key, fileno ------------------------------------------------------------ */

static PyObject *
sel_close(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if ((nargs || kwnames) && pc_io_parse_args(
            self->kind == K_EPOLL ? "EpollSelector.close" : self->kind == K_GEVENT
            ? "GeventSelector.close" : "_BaseSelectorImpl.close", args, nargs, kwnames, NULL, 0,
            0, NULL) < 0) {
        return NULL;
    }
    if (self->kind == K_EPOLL || self->kind == K_GEVENT) {
        SEL_CHECK(self, self->kind == K_EPOLL ? "_selector" : "_active_watchers", NULL);
        close_epfd(self);
        self->nfiles = 0;
    }
    SEL_CHECK(self, "_fd_to_key", NULL);
    PyDict_Clear(self->fd_to_key);
    rc_clear(self);
    Py_XSETREF(self->map, Py_NewRef(Py_None));
    Py_RETURN_NONE;
}

static PyObject *
sel_get_map(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if ((nargs || kwnames) && pc_io_parse_args("_BaseSelectorImpl.get_map", args, nargs,
                                               kwnames, NULL, 0, 0, NULL) < 0) {
        return NULL;
    }
    if (self->map == NULL) {
        pc_uninitialized((PyObject *)self, "_map");
        return NULL;
    }
    return Py_NewRef(self->map);
}

static PyObject *
sel_get_key(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fileobj"};
    PyObject *a[1];
    if (pc_io_parse_args("BaseSelector.get_key", args, nargs, kwnames, names, 1, 1, a) < 0) {
        return NULL;
    }
    if (self->map == NULL) {
        pc_uninitialized((PyObject *)self, "_map");
        return NULL;
    }
    if (self->map == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "Selector is closed");
        return NULL;
    }
    return key_of(self, a[0], NULL);
}

static PyObject *
sel_fileno(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if ((nargs || kwnames) && pc_io_parse_args("EpollSelector.fileno", args, nargs, kwnames,
                                               NULL, 0, 0, NULL) < 0) {
        return NULL;
    }
    SEL_CHECK(self, "_selector", NULL);
    if (self->epfd < 0) {
        return err_closed_epoll();
    }
    return PyLong_FromLong(self->epfd);
}

static PyObject *
sel_fileobj_lookup(SelectorObject *self, PyObject *fileobj)
{
    SEL_CHECK(self, "_fd_to_key", NULL);
    return fileobj_lookup(self, fileobj);
}

static PyObject *
sel_key_from_fd(SelectorObject *self, PyObject *fd)
{
    SEL_CHECK(self, "_fd_to_key", NULL);
    PyObject *key = PyDict_GetItemWithError(self->fd_to_key, fd);
    if (key == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Py_NewRef(key);
}

static PyObject *
sel_get_fd_to_key(SelectorObject *self, void *Py_UNUSED(closure))
{
    SEL_CHECK(self, "_fd_to_key", NULL);
    return Py_NewRef(self->fd_to_key);
}

static PyObject *
sel_get_map_attr(SelectorObject *self, void *Py_UNUSED(closure))
{
    return sel_get_map(self, NULL, 0, NULL);
}

/* -- timeouts, as each stdlib class computes them -------------------------------------------- */

/* `timeout <= 0`: 1, 0, -1. */
static int
le_zero(PyObject *t)
{
    if (PyFloat_CheckExact(t)) {
        return PyFloat_AS_DOUBLE(t) <= 0;
    }
    if (PyLong_CheckExact(t)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(t, &overflow);
        return overflow ? overflow < 0 : v <= 0;
    }
    PyObject *zero = PyLong_FromLong(0);
    int r = zero ? PyObject_RichCompareBool(t, zero, Py_LE) : -1;
    Py_XDECREF(zero);
    return r;
}

/* math.ceil(timeout * 1e3): new reference (an int) or NULL. */
static PyObject *
ceil_ms(PyObject *timeout)
{
    PyObject *thousand = PyFloat_FromDouble(1e3);
    PyObject *x = thousand ? PyNumber_Multiply(timeout, thousand) : NULL;
    Py_XDECREF(thousand);
    if (x == NULL) {
        return NULL;
    }
    PyObject *r = NULL;
    if (PyFloat_CheckExact(x)) {
        double d = PyFloat_AS_DOUBLE(x);
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        }
        else if (isinf(d)) {
            PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        }
        else {
            r = PyLong_FromDouble(ceil(d));
        }
    }
    else {
        PyObject *math = PyImport_ImportModule("math");
        r = math ? PyObject_CallMethod(math, "ceil", "O", x) : NULL;
        Py_XDECREF(math);
    }
    Py_DECREF(x);
    return r;
}

/* _PyTime_AsMilliseconds(ns, _PyTime_ROUND_CEILING) */
static inline pc_time_t
ns_to_ms_ceiling(pc_time_t ns)
{
    return ns >= 0 ? ns / 1000000 + (ns % 1000000 != 0) : -((-ns) / 1000000);
}

/* EpollSelector.select's timeout, then epoll.poll()'s parse: *ms -1 forever, else >= 0. */
static int
epoll_timeout(PyObject *timeout, int *ms)
{
    if (timeout == NULL || timeout == Py_None) {
        *ms = -1;
        return 0;
    }
    int le = le_zero(timeout);
    if (le != 0) {
        *ms = 0;
        return le < 0 ? -1 : 0;
    }
    /* math.ceil(timeout * 1e3) * 1e-3 */
    PyObject *c = ceil_ms(timeout);
    PyObject *milli = c ? PyFloat_FromDouble(1e-3) : NULL;
    PyObject *secs = milli ? PyNumber_Multiply(c, milli) : NULL;
    Py_XDECREF(c);
    Py_XDECREF(milli);
    if (secs == NULL) {
        return -1;
    }
    pc_time_t ns;
    int r = pc_time_from_object(secs, PC_ROUND_TIMEOUT, &ns);
    Py_DECREF(secs);
    if (r < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError, "timeout must be an integer or None");
        }
        return -1;
    }
    pc_time_t m = ns_to_ms_ceiling(ns);
    if (m < INT_MIN || m > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout is too large");
        return -1;
    }
    *ms = m < 0 ? -1 : (int)m;
    return 0;
}

/* _PollLikeSelector.select's timeout (PollSelector), then poll.poll()'s parse. */
static int
poll_timeout(PyObject *timeout, int *ms)
{
    if (timeout == NULL || timeout == Py_None) {
        *ms = -1;
        return 0;
    }
    int le = le_zero(timeout);
    if (le != 0) {
        *ms = 0;
        return le < 0 ? -1 : 0;
    }
    PyObject *c = ceil_ms(timeout);
    if (c == NULL) {
        return -1;
    }
    /* _PyTime_FromMillisecondsObject(ms, ROUND_TIMEOUT), then the range of an int */
    long long v;
    if (PyFloat_Check(c)) {
        double d = PyFloat_AsDouble(c);
        v = (long long)ceil(d);
    }
    else {
        v = PyLong_AsLongLong(c);
    }
    Py_DECREF(c);
    if (v == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_OverflowError, MSG_PYTIME_OVERFLOW);
        }
        else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError, "timeout must be an integer or None");
        }
        return -1;
    }
    if (v > INT64_MAX / 1000000 || v < INT64_MIN / 1000000) {
        PyErr_SetString(PyExc_OverflowError, MSG_PYTIME_OVERFLOW);
        return -1;
    }
    if (v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, "timeout is too large");
        return -1;
    }
    *ms = v < 0 ? -1 : (int)v;
    return 0;
}

/* SelectSelector.select's `max(timeout, 0)`, then select.select()'s parse: *rel_ns -1 forever,
 * else >= 0 nanoseconds. */
static int
select_timeout(PyObject *timeout, pc_time_t *rel_ns)
{
    if (timeout == NULL || timeout == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return -1;
    }
    int gt = PyObject_RichCompareBool(zero, timeout, Py_GT);
    if (gt < 0) {
        Py_DECREF(zero);
        return -1;
    }
    PyObject *t = gt ? zero : timeout;
    pc_time_t ns;
    int r = pc_time_from_object(t, PC_ROUND_TIMEOUT, &ns);
    Py_DECREF(zero);
    if (r < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError, "timeout must be a float or None");
        }
        return -1;
    }
    if (ns < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout must be non-negative");
        return -1;
    }
    *rel_ns = ns;
    return 0;
}

/* GeventSelector.select: `if timeout is not None and timeout < 0: timeout = 0`, then
 * Event.wait(timeout) (seconds as a float). */
static int
gevent_timeout(PyObject *timeout, pc_time_t *rel_ns)
{
    if (timeout == NULL || timeout == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    PyObject *zero = PyLong_FromLong(0);
    int lt = zero ? PyObject_RichCompareBool(timeout, zero, Py_LT) : -1;
    Py_XDECREF(zero);
    if (lt != 0) {
        *rel_ns = 0;
        return lt < 0 ? -1 : 0;
    }
    double d = PyFloat_AsDouble(timeout);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(d) || d <= 0) {
        *rel_ns = 0;
    }
    else if (d >= 9e9) {
        *rel_ns = -1;   /* centuries: forever */
    }
    else {
        *rel_ns = (pc_time_t)ceil(d * 1e9);
    }
    return 0;
}

/* -- collecting results -------------------------------------------------------------------------- */

/* (key, events & key.events) for descriptor fd, if it has a key (`_key_from_fd`): a new
 * reference; NULL with no error when fd has no key; NULL with the error.
 * fdobj: the descriptor as an object (select kind), or NULL to look fd up through rc.
 * events: EV_R | EV_W. */
static PyObject *
ready_pair(SelectorObject *self, PyObject *fdobj, int fd, long events)
{
    PyObject *owned = NULL;
    int cached = 0;
    if (fdobj == NULL) {
        if (fd >= 0 && fd < RC_MAX) {
            if (pc_fd_table_reserve((void **)&self->rc, &self->caprc, fd, sizeof(rcent_t),
                                    0) < 0) {
                return NULL;
            }
            cached = 1;
            fdobj = self->rc[fd].fdobj;
        }
        if (fdobj == NULL) {
            fdobj = owned = PyLong_FromLong(fd);
            if (owned == NULL) {
                return NULL;
            }
        }
    }
    /* the lookup runs every time: _fd_to_key stays the only truth. It may run code (an int
     * subclass's __eq__) that changes rc: rc is indexed afresh below, never held across it. */
    Py_XINCREF(fdobj);
    PyObject *key = PyDict_GetItemWithError(self->fd_to_key, fdobj);
    Py_XDECREF(fdobj);
    if (key == NULL) {
        Py_XDECREF(owned);
        return NULL;
    }
    Py_INCREF(key);   /* the dict may change under a comparison below */
    if (cached && fd < self->caprc && self->rc[fd].fdobj == NULL) {
        /* remember the dict's own int for fd when it is a plain one (an identity hit next time),
         * else the one made here */
        PyObject *kfd = KEY_FD(key);
        int overflow = 1;
        long v = PyLong_CheckExact(kfd) ? PyLong_AsLongAndOverflow(kfd, &overflow) : -1;
        self->rc[fd].fdobj = Py_NewRef(!overflow && v == fd ? kfd : owned);
    }
    Py_XDECREF(owned);
    PyObject *kev = KEY_EVENTS(key), *mask;
    int overflow = 1;
    long kv = PyLong_CheckExact(kev) ? PyLong_AsLongAndOverflow(kev, &overflow) : 0;
    if (!overflow) {
        long m = events & kv;
        if (cached && fd < self->caprc) {
            PyObject *pair = self->rc[fd].pair;
            if (pair != NULL && PyTuple_GET_ITEM(pair, 0) == key && self->rc[fd].mask == m) {
                Py_DECREF(key);
                return Py_NewRef(pair);   /* a tuple: the same one serves again */
            }
        }
        mask = PyLong_FromLong(m);
    }
    else {
        PyObject *e = PyLong_FromLong(events);
        mask = e ? PyNumber_And(e, kev) : NULL;
        Py_XDECREF(e);
    }
    if (mask == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(key);
        Py_DECREF(mask);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, key);
    PyTuple_SET_ITEM(pair, 1, mask);
    if (cached && !overflow && fd < self->caprc) {
        self->rc[fd].mask = events & kv;
        Py_XSETREF(self->rc[fd].pair, Py_NewRef(pair));
    }
    return pair;
}

/* Appends fd's ready_pair to list, if fd has a key. 0, or -1 with the error. */
static int
append_ready(SelectorObject *self, PyObject *list, PyObject *fdobj, int fd, long events)
{
    PyObject *pair = ready_pair(self, fdobj, fd, events);
    if (pair == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int r = PyList_Append(list, pair);
    Py_DECREF(pair);
    return r;
}

/* The epoll kinds' results: as EpollSelector.select maps events (anything but EPOLLIN counts as
 * writable, anything but EPOLLOUT as readable: an error or hang-up is both). */
static PyObject *
collect_epoll(SelectorObject *self, struct epoll_event *evs, int n)
{
    Py_ssize_t size = n + (self->kind == K_GEVENT ? self->nfiles : 0), len = 0;
    PyObject *list = PyList_New(size);   /* filled in place; cut to len at the end */
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        int fd;
        long events;
        if (i < n) {
            uint32_t e = evs[i].events;
            fd = evs[i].data.fd;
            events = ((e & ~(uint32_t)EPOLLIN) ? EV_W : 0) | ((e & ~(uint32_t)EPOLLOUT) ? EV_R : 0);
        }
        else if (i - n < self->nfiles) {   /* gevent kind: files are always ready */
            fd = self->files[i - n];
            events = EV_R | EV_W;
        }
        else {
            break;   /* the files changed under a lookup */
        }
        PyObject *pair = ready_pair(self, NULL, fd, events);
        if (pair != NULL) {
            PyList_SET_ITEM(list, len++, pair);
        }
        else if (PyErr_Occurred()) {
            Py_DECREF(list);
            return NULL;
        }
    }
    if (len < size && PyList_SetSlice(list, len, size, NULL) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

/* -- select() of the epoll kinds --------------------------------------------------------------- */

/* Marks the start and end of a select() that may release the GIL or switch: close() keeps the
 * epoll fd open for it. */
static inline void
enter_wait(SelectorObject *self)
{
    self->nwaiting++;
}

static inline void
leave_wait(SelectorObject *self)
{
    if (--self->nwaiting == 0 && self->zombie_epfd >= 0) {
        close(self->zombie_epfd);   /* partner: close_epfd */
        self->zombie_epfd = -1;
    }
}

/* One epoll_wait that does not block (GIL held). Returns n >= 0, or -1 with OSError. */
static int
epoll_now(int epfd, struct epoll_event *evs, int maxev)
{
    for (;;) {
        int n = epoll_wait(epfd, evs, maxev, 0);
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

static PyObject *
epoll_select_impl(SelectorObject *self, int ms, int gevent_yield)
{
    Py_ssize_t nkeys = PyDict_GET_SIZE(self->fd_to_key);
    int maxev = nkeys < 1 ? 1 : (nkeys > INT_MAX / (int)sizeof(struct epoll_event)
                                 ? INT_MAX / (int)sizeof(struct epoll_event) : (int)nkeys);
    if (self->epfd < 0) {
        return err_closed_epoll();
    }
    /* the shared buffer, unless another select() of this selector holds it */
    struct epoll_event stackbuf[16], *evs;
    int own = 0;
    if (maxev <= 16) {
        evs = stackbuf;
    }
    else if (!self->evbuf_busy) {
        if (self->capev < maxev) {
            struct epoll_event *b = PyMem_Realloc(self->evbuf,
                                                  (size_t)maxev * sizeof(struct epoll_event));
            if (b == NULL) {
                return PyErr_NoMemory();
            }
            self->evbuf = b;
            self->capev = maxev;
        }
        evs = self->evbuf;
        self->evbuf_busy = 1;
    }
    else {
        evs = PyMem_Malloc((size_t)maxev * sizeof(struct epoll_event));
        if (evs == NULL) {
            return PyErr_NoMemory();
        }
        own = 1;
    }
    PyObject *result = NULL;
    int epfd = self->epfd;
    int n = epoll_now(epfd, evs, maxev);
    if (n < 0) {
        goto done;
    }
    int ready = n > 0 || (self->kind == K_GEVENT && self->nfiles > 0);
    if (ready || ms == 0) {
        if (gevent_yield) {
            /* gevent's selector always goes through its hub: one turn for the others */
            pc_io_caller c;
            pc_io_caller_get(self->st, &c);
            if (c.hub != NULL) {
                enter_wait(self);
                /* gevent's selector waits for its watchers' event, ready or not: one turn, in
                 * which a Timeout armed before fires first (wait.h) */
                int r = pc_hub_zero_turn(self->st);
                leave_wait(self);
                if (r < 0) {
                    goto done;
                }
                if (self->epfd < 0) {
                    result = PyList_New(0);   /* closed while we were away */
                    goto done;
                }
                n = epoll_now(epfd, evs, maxev);
                if (n < 0) {
                    goto done;
                }
            }
            else if (c.in_hub && pc_io_may_block(&c) < 0) {
                goto done;
            }
        }
        result = collect_epoll(self, evs, n);
        goto done;
    }
    pc_io_caller c;
    pc_io_caller_get(self->st, &c);
    if (pc_io_may_block(&c) < 0) {
        goto done;
    }
    pc_time_t deadline = ms < 0 ? PC_FOREVER : pc_deadline_after((pc_time_t)ms * 1000000);
    enter_wait(self);
    for (;;) {
        if (c.hub != NULL) {
            int r = pc_io_wait_readable(self->st, &c, epfd, deadline);
            if (r < 0) {
                break;
            }
            if (self->epfd < 0) {
                result = PyList_New(0);   /* closed while we waited */
                break;
            }
            n = epoll_now(epfd, evs, maxev);
            if (n < 0) {
                break;
            }
            if (n > 0 || r == 0 || (self->kind == K_GEVENT && self->nfiles > 0)) {
                result = collect_epoll(self, evs, n);
                break;
            }
            continue;   /* someone else took the events: wait for the time left */
        }
        int left = pc_io_ms_until(deadline);
        int err = 0;
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(epfd, evs, maxev, left);
        if (n < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (n >= 0) {
            if (n == 0 && deadline != PC_FOREVER && left == INT_MAX &&
                    pc_monotonic_ns() < deadline) {
                continue;   /* a wait longer than epoll_wait's int of milliseconds */
            }
            result = self->epfd < 0 ? PyList_New(0) : collect_epoll(self, evs, n);
            break;
        }
        if (err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            break;
        }
        if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
            result = PyList_New(0);
            break;
        }
    }
    leave_wait(self);
done:
    if (own) {
        PyMem_Free(evs);
    }
    else if (evs == self->evbuf) {
        self->evbuf_busy = 0;
    }
    return result;
}

/* -- select() of the poll kind ------------------------------------------------------------------ */

/* A private epoll instance with the descriptors of a poll/select selector, for a hub wait. */
static int
make_wait_set(SelectorObject *self, struct pollfd *pfds, Py_ssize_t n)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (pfds[i].fd < 0) {
            continue;
        }
        struct epoll_event ev = {.events = ((pfds[i].events & POLLIN) ? EPOLLIN : 0) |
                                           ((pfds[i].events & POLLOUT) ? EPOLLOUT : 0) |
                                           ((pfds[i].events & POLLPRI) ? EPOLLPRI : 0),
                                 .data.fd = pfds[i].fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pfds[i].fd, &ev) < 0 && errno != EEXIST &&
                errno != EPERM && errno != EBADF && !(errno == EINVAL && pfds[i].fd == ep)) {
            /* EPERM (regular file) and EBADF (closed: its number may even be this instance's
             * now) are reported by the next poll(0) */
            PyErr_SetFromErrno(PyExc_OSError);
            close(ep);
            return -1;
        }
    }
    return ep;
}

/* poll(pfds, n, 0) with the GIL: count ready, or -1 with OSError. */
static int
poll_now(struct pollfd *pfds, Py_ssize_t n)
{
    for (;;) {
        int r = poll(pfds, (nfds_t)n, 0);
        if (r >= 0) {
            return r;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

/* Removes from the wait set the descriptors that woke it but count as nothing (a hang-up on a
 * descriptor select() watches for writing only): they would wake it again at once. */
static void
drop_spurious(int ep)
{
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {0};
        (void)epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, &ev);
    }
}

/* Waits until poll() reports something on pfds or the deadline. Returns the count (>= 0) or
 * -1. The first poll does not release the GIL. */
static int
poll_wait(SelectorObject *self, struct pollfd *pfds, Py_ssize_t n, int ms)
{
    int r = poll_now(pfds, n);
    if (r != 0 || ms == 0) {
        return r;
    }
    pc_io_caller c;
    pc_io_caller_get(self->st, &c);
    if (pc_io_may_block(&c) < 0) {
        return -1;
    }
    pc_time_t deadline = ms < 0 ? PC_FOREVER : pc_deadline_after((pc_time_t)ms * 1000000);
    if (c.hub != NULL) {
        int ep = make_wait_set(self, pfds, n);
        if (ep < 0) {
            return -1;
        }
        for (;;) {
            int w = pc_io_wait_readable(self->st, &c, ep, deadline);
            if (w < 0) {
                r = -1;
                break;
            }
            r = poll_now(pfds, n);
            if (r != 0 || w == 0) {
                break;
            }
            drop_spurious(ep);
        }
        close(ep);
        return r;
    }
    for (;;) {
        int left = pc_io_ms_until(deadline);
        int err = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(pfds, (nfds_t)n, left);
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r > 0) {
            return r;
        }
        if (r == 0) {
            if (deadline != PC_FOREVER && left == INT_MAX && pc_monotonic_ns() < deadline) {
                continue;
            }
            return 0;
        }
        if (err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
            return 0;
        }
    }
}

/* The pollfd array for one select(): the kept one when no other select() uses it (rebuilt only
 * after ents changed), else a copy (*own: to free). NULL with MemoryError. */
static struct pollfd *
poll_array(SelectorObject *self, struct pollfd **own)
{
    ents_compact(self);
    Py_ssize_t n = self->nents;
    *own = NULL;
    fork_check(self);
    if (self->pfds_busy) {
        struct pollfd *p = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(struct pollfd));
        if (p == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            p[i] = (struct pollfd){.fd = self->ents[i].fd, .events = self->ents[i].events};
        }
        return *own = p;
    }
    if (self->pfds_ver != self->ents_ver || self->pfds == NULL) {
        if (self->cappfds < n || self->pfds == NULL) {
            Py_ssize_t cap = Py_MAX(n, 16);
            struct pollfd *p = PyMem_Realloc(self->pfds, (size_t)cap * sizeof(struct pollfd));
            if (p == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            self->pfds = p;
            self->cappfds = cap;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            self->pfds[i] = (struct pollfd){.fd = self->ents[i].fd,
                                            .events = self->ents[i].events};
        }
        self->pfds_ver = self->ents_ver;
    }
    self->pfds_busy = 1;
    return self->pfds;
}

static PyObject *
poll_select_impl(SelectorObject *self, int ms)
{
    struct pollfd *own, *pfds = poll_array(self, &own);
    if (pfds == NULL) {
        return NULL;
    }
    Py_ssize_t n = self->nents;   /* after poll_array's compaction: pfds's length */
    PyObject *result = NULL;
    enter_wait(self);
    int r = poll_wait(self, pfds, n, ms);
    leave_wait(self);
    if (r >= 0 && (result = PyList_New(0)) != NULL) {
        for (Py_ssize_t i = 0; i < n && r > 0; i++) {
            short e = pfds[i].revents;
            if (e == 0) {
                continue;
            }
            long events = ((e & ~POLLIN) ? EV_W : 0) | ((e & ~POLLOUT) ? EV_R : 0);
            if (append_ready(self, result, NULL, pfds[i].fd, events) < 0) {
                Py_CLEAR(result);
                break;
            }
        }
    }
    if (own != NULL) {
        PyMem_Free(own);
    }
    else if (self->gen == pc_fork_generation) {
        self->pfds_busy = 0;
    }
    return result;
}

/* -- select() of the select kind ------------------------------------------------------------- */

/* Adds the descriptors of s to fds as select.select converts its arguments: a snapshot list
 * first (PySequence_Fast of a set), then each in turn. 0, or -1 with select.select's error. */
static int
fdset_from(PyObject *s, fd_set *fds, int *maxfd)
{
    PyObject *list = PySequence_List(s);
    if (list == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        int fd = PyObject_AsFileDescriptor(PyList_GET_ITEM(list, i));
        if (fd < 0) {
            rc = -1;
            break;
        }
        if (fd >= FD_SETSIZE) {
            PyErr_SetString(PyExc_ValueError, "filedescriptor out of range in select()");
            rc = -1;
            break;
        }
        FD_SET(fd, fds);
        if (fd > *maxfd) {
            *maxfd = fd;
        }
    }
    Py_DECREF(list);
    return rc;
}

/* select()'s input sets: _readers and _writers as fd_sets, rebuilt when either set changed since
 * the last call (a failed build is not kept: every select() raises its error again). 0, or -1
 * with the error. */
static int
build_fdsets(SelectorObject *self, fd_set *r, fd_set *w, int *maxfd)
{
    if (self->fdsets_ver == self->sets_ver) {
        *r = self->fdr;
        *w = self->fdw;
        *maxfd = self->fdmax;
        return 0;
    }
    /* built on the stack: a fileno() may run code that changes the sets, or another thread's
     * select() that builds too */
    uint64_t ver = self->sets_ver;
    FD_ZERO(r);
    FD_ZERO(w);
    *maxfd = -1;
    if (fdset_from(self->rset, r, maxfd) < 0 || fdset_from(self->wset, w, maxfd) < 0) {
        return -1;
    }
    if (ver == self->sets_ver) {
        self->fdr = *r;
        self->fdw = *w;
        self->fdmax = *maxfd;
        self->fdsets_ver = ver;
    }
    return 0;
}

/* select() that does not block (GIL held) on copies of r and w: count, or -1 with OSError. */
static int
select_now(const fd_set *r0, const fd_set *w0, int maxfd, fd_set *r, fd_set *w)
{
    for (;;) {
        *r = *r0;
        *w = *w0;
        struct timeval tv = {0, 0};
        int n = select(maxfd + 1, r, w, NULL, &tv);
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

/* set(r) of the stdlib's select(): select.select lists the ready objects of its input set s
 * (_readers or _writers) in s's order of iteration, which depends on s's history of adds and
 * discards, and the stdlib makes a set of that list. fds: select()'s output set. New reference,
 * or NULL with an exception. */
static PyObject *
ready_subset(PyObject *s, const fd_set *fds)
{
    PyObject *list = PyList_New(0), *it = list ? PyObject_GetIter(s) : NULL, *o;
    if (it == NULL) {
        Py_XDECREF(list);
        return NULL;
    }
    while ((o = PyIter_Next(it)) != NULL) {
        int fd = PyObject_AsFileDescriptor(o);   /* an int: the key's fd */
        int rc = 0;
        if (fd < 0) {
            PyErr_Clear();   /* not in the select() call (build_fdsets raised for those) */
        }
        else if (fd < FD_SETSIZE && FD_ISSET(fd, fds)) {
            rc = PyList_Append(list, o);
        }
        Py_DECREF(o);
        if (rc < 0) {
            break;
        }
    }
    Py_DECREF(it);
    PyObject *r = PyErr_Occurred() ? NULL : PySet_New(list);
    Py_DECREF(list);
    return r;
}

static PyObject *
select_select_impl(SelectorObject *self, pc_time_t rel_ns)
{
    fd_set r0, w0, r, w;
    int maxfd;
    if (build_fdsets(self, &r0, &w0, &maxfd) < 0) {
        return NULL;
    }
    int n = select_now(&r0, &w0, maxfd, &r, &w);
    if (n < 0) {
        return NULL;
    }
    if (n == 0 && rel_ns != 0) {
        pc_io_caller c;
        pc_io_caller_get(self->st, &c);
        if (pc_io_may_block(&c) < 0) {
            return NULL;
        }
        pc_time_t deadline = pc_io_deadline(rel_ns);
        enter_wait(self);
        if (c.hub != NULL) {
            struct pollfd stackp[32], *pfds = stackp;
            Py_ssize_t cnt = 0;
            if (maxfd >= 32) {
                pfds = PyMem_Malloc((size_t)(maxfd + 1) * sizeof(struct pollfd));
            }
            if (pfds == NULL) {
                PyErr_NoMemory();
                n = -1;
            }
            else {
                for (int fd = 0; fd <= maxfd; fd++) {
                    short ev = (short)((FD_ISSET(fd, &r0) ? POLLIN : 0) |
                                       (FD_ISSET(fd, &w0) ? POLLOUT : 0));
                    if (ev) {
                        pfds[cnt].fd = fd;
                        pfds[cnt].events = ev;
                        pfds[cnt++].revents = 0;
                    }
                }
                int ep = make_wait_set(self, pfds, cnt);
                if (pfds != stackp) {
                    PyMem_Free(pfds);
                }
                if (ep < 0) {
                    n = -1;
                }
                else {
                    for (;;) {
                        int wr = pc_io_wait_readable(self->st, &c, ep, deadline);
                        if (wr < 0) {
                            n = -1;
                            break;
                        }
                        n = select_now(&r0, &w0, maxfd, &r, &w);
                        if (n != 0 || wr == 0) {
                            break;
                        }
                        drop_spurious(ep);
                    }
                    close(ep);
                }
            }
        }
        else {
            for (;;) {
                r = r0;
                w = w0;
                struct timeval tv, *tvp = NULL;
                if (deadline != PC_FOREVER) {
                    pc_time_t left = deadline - pc_monotonic_ns();
                    if (left < 0) {
                        left = 0;
                    }
                    /* _PyTime_AsTimeval(ROUND_TIMEOUT): microseconds rounded up */
                    pc_time_t us = left / 1000 + (left % 1000 != 0);
                    tv.tv_sec = (time_t)(us / 1000000);
                    tv.tv_usec = (suseconds_t)(us % 1000000);
                    tvp = &tv;
                }
                int err = 0;
                Py_BEGIN_ALLOW_THREADS
                n = select(maxfd + 1, &r, &w, NULL, tvp);
                if (n < 0) {
                    err = errno;
                }
                Py_END_ALLOW_THREADS
                if (n >= 0) {
                    break;
                }
                if (err != EINTR) {
                    errno = err;
                    PyErr_SetFromErrno(PyExc_OSError);
                    break;
                }
                if (PyErr_CheckSignals() < 0) {
                    break;
                }
                if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
                    n = 0;
                    break;
                }
            }
        }
        leave_wait(self);
        if (n < 0) {
            return NULL;
        }
    }
    PyObject *result = PyList_New(0);
    if (result == NULL || n == 0) {
        return result;
    }
    /* `r = set(r); w = set(w); for fd in r | w:` -- the stdlib's order is that of the union
     * set, so build the same sets the same way */
    PyObject *rs = ready_subset(self->rset, &r), *ws = rs ? ready_subset(self->wset, &w) : NULL;
    PyObject *u = NULL, *it = NULL, *fdobj;
    if (rs == NULL || ws == NULL) {
        goto fail;
    }
    u = PyNumber_Or(rs, ws);
    it = u ? PyObject_GetIter(u) : NULL;
    if (it == NULL) {
        goto fail;
    }
    while ((fdobj = PyIter_Next(it)) != NULL) {
        int inr = PySet_Contains(rs, fdobj), inw = PySet_Contains(ws, fdobj);
        int rc = (inr < 0 || inw < 0) ? -1
                 : append_ready(self, result, fdobj, -1, (inr ? EV_R : 0) | (inw ? EV_W : 0));
        Py_DECREF(fdobj);
        if (rc < 0) {
            goto fail;
        }
    }
    if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(it);
    Py_DECREF(u);
    Py_DECREF(rs);
    Py_DECREF(ws);
    return result;
fail:
    Py_XDECREF(it);
    Py_XDECREF(u);
    Py_XDECREF(rs);
    Py_XDECREF(ws);
    Py_DECREF(result);
    return NULL;
}

/* -- select() ------------------------------------------------------------------------------- */

static PyObject *
sel_select(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *a[1];
    if (nargs > 1 || kwnames != NULL || self->fd_to_key == NULL) {
        if (pc_io_parse_args(name_of(self, "select"), args, nargs, kwnames, names, 1, 0, a) < 0) {
            return NULL;
        }
    }
    else {
        a[0] = nargs ? args[0] : NULL;
    }
    PyObject *timeout = a[0];
    fork_check(self);
    switch (self->kind) {
    case K_EPOLL: {
        int ms;
        if (epoll_timeout(timeout, &ms) < 0) {
            return NULL;
        }
        SEL_CHECK(self, "_fd_to_key", NULL);
        return epoll_select_impl(self, ms, 0);
    }
    case K_GEVENT: {
        pc_time_t rel;
        if (gevent_timeout(timeout, &rel) < 0) {
            return NULL;
        }
        SEL_CHECK(self, "_fd_to_key", NULL);
        int ms = rel < 0 ? -1 : (int)(ns_to_ms_ceiling(rel) > INT_MAX ? INT_MAX
                                      : ns_to_ms_ceiling(rel));
        return epoll_select_impl(self, ms, 1);
    }
    case K_POLL: {
        int ms;
        if (poll_timeout(timeout, &ms) < 0) {
            return NULL;
        }
        SEL_CHECK(self, "_selector", NULL);
        return poll_select_impl(self, ms);
    }
    default: {
        pc_time_t rel;
        if (select_timeout(timeout, &rel) < 0) {
            return NULL;
        }
        SEL_CHECK(self, "_readers", NULL);
        return select_select_impl(self, rel);
    }
    }
}

/* -- types --------------------------------------------------------------------------------------- */

#define COMMON_METHODS                                                                          \
    {"register", (PyCFunction)(void (*)(void))sel_register, METH_FASTCALL | METH_KEYWORDS,      \
     PyDoc_STR("register(fileobj, events, data=None)\n\nRegister a file object for selection, " \
               "monitoring it for I/O events; returns its SelectorKey.")},                      \
    {"unregister", (PyCFunction)(void (*)(void))sel_unregister, METH_FASTCALL | METH_KEYWORDS,  \
     PyDoc_STR("unregister(fileobj)\n\nUnregister a file object; returns its SelectorKey.")},   \
    {"modify", (PyCFunction)(void (*)(void))sel_modify, METH_FASTCALL | METH_KEYWORDS,          \
     PyDoc_STR("modify(fileobj, events, data=None)\n\nChange a registered file object's "       \
               "monitored events or attached data; returns its SelectorKey.")},                 \
    {"select", (PyCFunction)(void (*)(void))sel_select, METH_FASTCALL | METH_KEYWORDS,          \
     PyDoc_STR("select(timeout=None)\n\nWait until some registered file objects are ready or "  \
               "the timeout passes; returns a list of (key, events).")},                        \
    {"close", (PyCFunction)(void (*)(void))sel_close, METH_FASTCALL | METH_KEYWORDS,            \
     PyDoc_STR("close()\n\nClose the selector.")},                                              \
    {"get_map", (PyCFunction)(void (*)(void))sel_get_map, METH_FASTCALL | METH_KEYWORDS,        \
     PyDoc_STR("get_map()\n\nReturn a mapping of file objects to selector keys.")},             \
    {"get_key", (PyCFunction)(void (*)(void))sel_get_key, METH_FASTCALL | METH_KEYWORDS,        \
     PyDoc_STR("get_key(fileobj)\n\nReturn the key associated to a registered file object.")},  \
    {"_fileobj_lookup", (PyCFunction)sel_fileobj_lookup, METH_O, NULL},                         \
    {"_key_from_fd", (PyCFunction)sel_key_from_fd, METH_O, NULL}

static PyMethodDef epoll_methods[] = {
    COMMON_METHODS,
    {"fileno", (PyCFunction)(void (*)(void))sel_fileno, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("fileno()\n\nThe epoll instance's file descriptor.")},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef plain_methods[] = {
    COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sel_getset[] = {
    {"_fd_to_key", (getter)sel_get_fd_to_key, NULL, NULL, NULL},
    {"_map", (getter)sel_get_map_attr, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define SEL_SLOTS(newfunc, methods)                                             \
    {Py_tp_new, newfunc},                                                       \
    {Py_tp_init, sel_init},                                                     \
    {Py_tp_dealloc, sel_dealloc},                                               \
    {Py_tp_traverse, sel_traverse},                                             \
    {Py_tp_clear, sel_clear},                                                   \
    {Py_tp_methods, methods},                                                   \
    {Py_tp_getset, sel_getset},                                                 \
    {0, NULL}

static PyType_Slot epoll_slots[] = {SEL_SLOTS(epoll_new, epoll_methods)};
static PyType_Slot poll_slots[] = {SEL_SLOTS(poll_new, plain_methods)};
static PyType_Slot select_slots[] = {SEL_SLOTS(select_new, plain_methods)};
static PyType_Slot gevent_slots[] = {SEL_SLOTS(gevent_new, plain_methods)};

#define SEL_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

static PyType_Spec epoll_spec = {"pyconc._core.EpollSelector", sizeof(SelectorObject), 0,
                                 SEL_FLAGS, epoll_slots};
static PyType_Spec poll_spec = {"pyconc._core.PollSelector", sizeof(SelectorObject), 0,
                                SEL_FLAGS, poll_slots};
static PyType_Spec select_spec = {"pyconc._core.SelectSelector", sizeof(SelectorObject), 0,
                                  SEL_FLAGS, select_slots};
static PyType_Spec gevent_spec = {"pyconc._core.GeventSelector", sizeof(SelectorObject), 0,
                                  SEL_FLAGS, gevent_slots};

int
pc_selector_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &epoll_spec, NULL, &st->EpollSelector_Type) < 0 ||
            pc_add_type(module, &poll_spec, NULL, &st->PollSelector_Type) < 0 ||
            pc_add_type(module, &select_spec, NULL, &st->SelectSelector_Type) < 0 ||
            pc_add_type(module, &gevent_spec, NULL, &st->GeventSelector_Type) < 0) {
        return -1;
    }
    return 0;
}
