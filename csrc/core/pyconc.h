/* pyconc.h -- module state of pyconc._core and the entry points each concept file exports.
 *
 * One extension module, pyconc._core, multi-phase init, heap types only. Every type is created in
 * module.c's exec slot by the concept file's pc_<concept>_init_types(). Types that need module
 * state reach it with pc_state_of_type(), which works for Python subclasses as well.
 *
 * All state here is protected by the GIL.
 */
#ifndef PYCONC_H
#define PYCONC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pythread.h>

#include "wait.h"

typedef struct {
    /* threading primitives */
    PyTypeObject *Lock_Type;
    PyTypeObject *RLock_Type;
    PyTypeObject *Condition_Type;
    PyTypeObject *Semaphore_Type;
    PyTypeObject *BoundedSemaphore_Type;
    PyTypeObject *GeventSemaphore_Type;
    PyTypeObject *Event_Type;
    PyTypeObject *Barrier_Type;
    PyTypeObject *Thread_Type;
    /* queues */
    PyTypeObject *Queue_Type;
    PyTypeObject *LifoQueue_Type;
    PyTypeObject *PriorityQueue_Type;
    PyTypeObject *SimpleQueue_Type;
    PyObject *Empty;                /* queue.Empty */
    PyObject *Full;                 /* queue.Full */
    PyObject *ShutDown;             /* queue.ShutDown (3.13+) or pyconc's own */
    /* greenlets */
    PyTypeObject *Greenlet_Type;
    PyObject *GreenletExit;         /* pyconc.greenlet.GreenletExit (a BaseException) */
    PyObject *GreenletError;        /* pyconc.greenlet.error */
    /* the coroutine hub (hub.c) */
    PyTypeObject *Hub_Type;
    PyTypeObject *HubTimer_Type;
    PyObject *HubClass;             /* the class new hubs are made of (a Hub subclass) or NULL */
    PyObject *LoopExit;
    PyObject *BlockingSwitchOutError;
    PyObject *InvalidSwitchError;
    PyObject *ConcurrentObjectUseError;
    PyTypeObject *GeventGreenlet_Type; /* pyconc._core.Greenlet (glet.c) */
    PyObject *GeventTimeout;        /* pyconc.gevent.Timeout, set by the face */
    PyObject *GeventLoopExit;       /* pyconc.gevent's LoopExit (a subclass), set by the face */
    PyObject *greenlet_throw;       /* the greenlet type's throw method descriptor */
    PyObject *str_start;            /* interned "start" */
    PyObject *glet_start;           /* _core.Greenlet's start method descriptor */
    /* cooperative sockets (csrc/io/socket.c) */
    PyTypeObject *CoopSocket_Type;
    PyObject *sock_class;           /* pyconc.gevent.socket.socket: what accept() makes */
    PyObject *sock_wref;            /* the wrapped class (_socket.socket, or the face's
                                       weak-referenceable _wrefsocket) */
    PyObject *sock_closed;          /* the face's closed-socket proxy class, or NULL */
    PyObject *sock_cancel;          /* the face's cancel_wait_ex class, or NULL */
    PyObject *sock_setblocking;     /* _socket.socket.setblocking */
    PyObject *sock_getdefaulttimeout; /* _socket.getdefaulttimeout */
    PyObject *float_zero;           /* 0.0 */
    /* select, poll and selectors (csrc/io/selector.c, gselect.c) */
    PyTypeObject *EpollSelector_Type;
    PyTypeObject *PollSelector_Type;
    PyTypeObject *SelectSelector_Type;
    PyTypeObject *GeventSelector_Type;
    PyTypeObject *GeventPoll_Type;
    PyObject *SelectorKey;          /* selectors.SelectorKey (looked up on first use) */
    PyObject *SelectorMapping;      /* selectors._SelectorMapping */
    /* process-shared objects */
    PyTypeObject *SemLock_Type;
    PyTypeObject *MPQueue_Type;
    PyTypeObject *Connection_Type;
    PyTypeObject *SharedBlock_Type;
    PyTypeObject *SharedEvent_Type;
    /* the stdlib's own exception objects, so existing except clauses keep working */
    PyObject *BrokenBarrierError;   /* threading.BrokenBarrierError */
    /* threads */
    PyObject *active;               /* dict: ident -> live pyconc Thread (strong refs) */
    unsigned long name_counter;     /* for "Thread-N" default names */
    unsigned long main_ident;       /* ident of the interpreter's main thread */
    /* the coroutine and I/O part (greenlets, hub, cooperative sockets, selectors): created on
     * first use by pc_coro_ensure(), not at import */
    PyObject *module;               /* pyconc._core itself (borrowed: the state lives in it) */
    int coro_ready;
} pc_state;

extern struct PyModuleDef pc_module_def;

/* Module state for an object of type tp (or of a subclass of one of our types). Returns a
 * borrowed pointer, or NULL with an exception set. */
static inline pc_state *
pc_state_of_type(PyTypeObject *tp)
{
    PyObject *mod = PyType_GetModuleByDef(tp, &pc_module_def);
    if (mod == NULL) {
        return NULL;
    }
    return (pc_state *)PyModule_GetState(mod);
}

/* The calling thread's ident as PyThread_get_thread_ident() gives it (pthread_self()), read
 * without a call where that is the thread pointer: x86-64 glibc, whose pthread_self() returns
 * the thread control block's address, which is the %fs base. module_exec checks that the two
 * agree. The uncontended Lock/RLock paths read it on every call. */
static inline unsigned long
pc_thread_ident(void)
{
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && __GNUC__ >= 11
    return (unsigned long)__builtin_thread_pointer();
#else
    return PyThread_get_thread_ident();
#endif
}

/* Creates a heap type from spec in module, stores it in *out and adds it to the module under its
 * short name. Returns 0, or -1 with an exception set. */
int pc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyTypeObject **out);

/* Parses vectorcall (FASTCALL|KEYWORDS) arguments that are all positional-or-keyword, like
 * `acquire(blocking=True, timeout=-1)`: names has n entries; out[i] receives a borrowed reference
 * or NULL when argument i was not given. Returns 0, or -1 with TypeError set. */
int pc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  const char *const *names, Py_ssize_t n, PyObject **out);

/* A method with no arguments declared METH_FASTCALL rather than METH_NOARGS: CPython 3.12+
 * specializes a call of a bound METH_FASTCALL builtin (CALL_BUILTIN_FAST: a direct C call) but
 * not of a METH_NOARGS one, which goes through the generic vectorcall path with its recursion
 * check. CPython itself rejects keywords ("takes no keyword arguments"); positional arguments get
 * METH_NOARGS's message from pc_no_args_error(): "Type.name() takes no arguments (1 given)". */
#define PC_NO_ARGS(self, nargs, name)                                           \
    do {                                                                        \
        if ((nargs) != 0) {                                                     \
            return pc_no_args_error((PyObject *)(self), (name), (nargs));       \
        }                                                                       \
    } while (0)
PyObject *pc_no_args_error(PyObject *self, const char *name, Py_ssize_t nargs);

/* Parses the (args, kwds) of an __init__ that the stdlib writes in Python, with Python's own
 * messages ("Barrier.__init__() missing 1 required positional argument: 'parties'"). names has n
 * entries: the first npos positional-or-keyword (the first nrequired of them required), the rest
 * keyword-only. out[i] receives a borrowed reference or NULL. Returns 0, or -1 with TypeError. */
/* TypeError "f() missing N required positional argument(s): 'a' and 'b'" when any of the first
 * nrequired of out[] is NULL (Python's wording); 0 when none is. */
int pc_require_args(const char *fname, const char *const *names, Py_ssize_t nrequired,
                    PyObject **out);
int pc_parse_init_args(const char *fname, PyObject *args, PyObject *kwds, const char *const *names,
                       Py_ssize_t n, Py_ssize_t npos, Py_ssize_t nrequired, PyObject **out);

/* For messages that changed within a minor series of CPython, which a PY_VERSION_HEX check
 * cannot tell apart, pyconc reads them from the running interpreter once, at module init, by
 * provoking them: if the error set now is of `type`, copies its message into buf (when it fits).
 * Clears any error. */
void pc_probe_message(PyObject *type, char *buf, size_t size);

/* Raises the AttributeError the stdlib's Python classes give when __init__ did not run (or failed
 * before it set the attribute): "'<type name>' object has no attribute '<attr>'". Returns -1. */
int pc_uninitialized(PyObject *self, const char *attr);

/* Grows a table indexed by descriptor (*table, *cap entries of elsize bytes) so that index fd
 * fits: the capacity doubles from 64 until it passes fd, and the new entries are filled with
 * the byte `fill` (0, or 0xff for int tables of -1). 0, or -1 with MemoryError. fd must be a
 * descriptor number (below 2^30, the kernel's limit) or a bound the caller checked. */
int pc_fd_table_reserve(void **table, int *cap, int fd, size_t elsize, int fill);

/* copy.copy and pickling, as the stdlib's classes behave.
 *
 * A stdlib primitive written in Python (Condition, Semaphore, Event, Barrier, Thread, Queue, ...)
 * is copied by copy.copy into a new object that shares its locks, conditions and storage (a
 * Queue's items, a Condition's waiters) -- but not its plain counters and flags (a Semaphore's
 * value, an Event's flag, a Barrier's count), which the copy has its own copies of. pyconc keeps
 * all of that state in C, inside the object, so its __copy__ returns the object itself: the same
 * primitive, counters included.
 *
 * Pickling (and copy.deepcopy) fails in the stdlib on the first C lock or queue the object holds:
 * TypeError "cannot pickle '_thread.lock' object" (or '_thread.RLock', '_queue.SimpleQueue').
 * PC_NO_PICKLE(prefix, what) defines prefix_reduce and prefix_reduce_ex raising that, and
 * PC_NO_PICKLE_METHODS(prefix) their method-table entries. */
PyObject *pc_copy_self(PyObject *self, PyObject *unused);
PyObject *pc_cannot_pickle(const char *what);

#define PC_NO_PICKLE(prefix, what)                                              \
    static PyObject *prefix##_reduce(PyObject *self, PyObject *unused)          \
    {                                                                           \
        return pc_cannot_pickle(what);                                          \
    }                                                                           \
    static PyObject *prefix##_reduce_ex(PyObject *self, PyObject *protocol)     \
    {                                                                           \
        return pc_cannot_pickle(what);                                          \
    }

#define PC_NO_PICKLE_METHODS(prefix)                                            \
    {"__reduce__", (PyCFunction)prefix##_reduce, METH_NOARGS, NULL},            \
    {"__reduce_ex__", (PyCFunction)prefix##_reduce_ex, METH_O, NULL}

#define PC_COPY_SELF_METHOD                                                     \
    {"__copy__", (PyCFunction)pc_copy_self, METH_NOARGS, NULL}

/* "module.qualname" of a type, as the stdlib's reprs print it. New reference or NULL. */
PyObject *pc_type_fullname(PyTypeObject *tp);

/* Each concept file's type creation (0 or -1) and its share of m_traverse / m_clear. */
int pc_lock_init_types(PyObject *module, pc_state *st);
int pc_condition_init_types(PyObject *module, pc_state *st);
int pc_semaphore_init_types(PyObject *module, pc_state *st);
int pc_event_init_types(PyObject *module, pc_state *st);
int pc_barrier_init_types(PyObject *module, pc_state *st);
int pc_thread_init_types(PyObject *module, pc_state *st);
int pc_queue_init_types(PyObject *module, pc_state *st);
/* Loads st->Empty/Full/ShutDown (the stdlib queue module's) on first use: 0 or -1. */
int pc_queue_exceptions(pc_state *st);
int pc_greenlet_init_types(PyObject *module, pc_state *st);
int pc_semlock_init_types(PyObject *module, pc_state *st);
int pc_mpqueue_init_types(PyObject *module, pc_state *st);
/* For the Pool's C loops: q must be a pyconc MPQueue (pc_mpq_check: 0, or -1 TypeError).
 * pc_mpq_take: one frame as bytes, waiting up to rel ns (-1 forever); claim (claim_len bytes,
 * may be NULL) receives the frame's first bytes atomically with the take; NULL with *empty = 1
 * when none came, else NULL with an exception. pc_mpq_give: puts head + data as one frame,
 * waiting for room; 0 or -1. */
int pc_mpq_check(pc_state *st, PyObject *q);
PyObject *pc_mpq_take(PyObject *q, pc_time_t rel, char *claim, Py_ssize_t claim_len, int *empty);
int pc_mpq_give(PyObject *q, const char *head, size_t nh, const char *data, size_t n);
PyObject *pc_pool_worker(PyObject *module, PyObject *args);
PyObject *pc_pool_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pc_pool_task(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *pc_pool_results(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
int pc_connection_init_types(PyObject *module, pc_state *st);
int pc_block_init_types(PyObject *module, pc_state *st);
int pc_mpevent_init_types(PyObject *module, pc_state *st);
int pc_glet_init_types(PyObject *module, pc_state *st);
int pc_socket_init_types(PyObject *module, pc_state *st);
int pc_fdio_install(PyObject *module, pc_state *st);   /* csrc/io/fdio.c: module functions */
int pc_selector_init_types(PyObject *module, pc_state *st);
int pc_gselect_init_types(PyObject *module, pc_state *st);

/* _pickle.dumps and _pickle.loads (new references in *dumps, *loads), for the process-shared
 * types that carry pickled messages (mpqueue.c, connection.c). 0, or -1 with an exception. */
int pc_pickle_functions(PyObject **dumps, PyObject **loads);

/* plain.c: pickles of plain data (None, bool, int, float, str, bytes, tuple, list, dict) written
 * and read in C, as ordinary protocol 5 pickles; everything else goes through _pickle. */
PyObject *pc_plain_dumps(PyObject *obj);     /* NULL without an exception: not plain */
PyObject *pc_plain_loads(const char *data, Py_ssize_t size);   /* NULL, no exception: declined */
/* dumps(obj, 5): plain data written in C, anything else by dumps (the put/send hot path) */
PyObject *pc_pickle_dumps(PyObject *dumps, PyObject *obj);
/* loads(data) of a bytes object, or of size bytes at data: plain pickles read in C, anything
 * else by loads */
PyObject *pc_pickle_loads(PyObject *loads, PyObject *data);
PyObject *pc_pickle_loads_at(PyObject *loads, const char *data, Py_ssize_t size);
PyObject *pc_plain_dumps_py(PyObject *module, PyObject *obj);
PyObject *pc_plain_loads_py(PyObject *module, PyObject *data);

/* Module-level functions implemented in thread.c. */
PyObject *pc_thread_current(PyObject *module, PyObject *unused);
PyObject *pc_thread_enumerate_own(PyObject *module, PyObject *unused);
PyObject *pc_thread_after_fork_child(PyObject *module, PyObject *unused);
int pc_coro_ensure(pc_state *st);
PyObject *pc_greenlet_getcurrent(PyObject *module, PyObject *unused);
PyObject *pc_greenlet_settrace(PyObject *module, PyObject *callback);
PyObject *pc_greenlet_gettrace(PyObject *module, PyObject *unused);
PyObject *pc_greenlet_total_main_greenlets(PyObject *module, PyObject *unused);
PyObject *pc_greenlet_pending_cleanups(PyObject *module, PyObject *unused);

/* -- Lock internals shared with Condition and Barrier (lock.c) ----------------------------- */

/* Acquires a pyconc Lock or RLock object (exact or subclass instance) through the C path.
 * rel_ns: -1 forever, 0 try once, else relative timeout. Returns 1 acquired, 0 not acquired,
 * -1 with an exception set. */
int pc_lock_acquire(PyObject *lock, pc_time_t rel_ns);
/* Releases a pyconc Lock (any owner). Returns 0, or -1 with RuntimeError if it was unlocked. */
int pc_lock_release(PyObject *lock);
/* The lock's wait list, for Condition's held-back wakes (wait.h, rule 8). */
pc_waitlist *pc_lock_waitlist(PyObject *lock);
pc_waitlist *pc_rlock_waitlist(PyObject *rlock);
int pc_lock_is_locked(PyObject *lock);

/* RLock save/restore for Condition.wait: release completely, remembering (count, owner). */
int pc_rlock_is_owned(PyObject *rlock);
int pc_rlock_release_save(PyObject *rlock, unsigned long *count, unsigned long *owner);
int pc_rlock_acquire_restore(PyObject *rlock, unsigned long count, unsigned long owner);

/* Helper for DeprecationWarning-emitting aliases (isSet, notifyAll, ...). 0 or -1. */
static inline int
pc_deprecated(const char *msg)
{
    return PyErr_WarnEx(PyExc_DeprecationWarning, msg, 1);
}

#endif /* PYCONC_H */
