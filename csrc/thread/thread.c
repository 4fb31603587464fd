/* thread.c -- Thread: OS threads started from C, and the module functions around them.
 *
 * States: INITIAL (constructed) -> STARTED (start() returned; the OS thread exists or is about to
 * run) -> STOPPED (run() returned and joiners were woken). ident is known when start() returns
 * (PyThread_start_new_thread returns it); native_id once the new thread has run its first line,
 * and reading it before then waits for it.
 *
 * The bootstrap owns one strong reference to the Thread from start() until the thread ends. While
 * the thread is alive the module's `active` dict also maps ident -> Thread; enumerate() reads it.
 * pc_current is a C thread-local pointer to the running pyconc Thread (borrowed: the bootstrap's
 * reference keeps it alive), so current_thread() is one TLS read.
 *
 * Threads that pyconc did not start (the main thread, threads of the stdlib or of C libraries)
 * are represented by the stdlib's own objects: current_thread(), main_thread() and enumerate()
 * ask the stdlib for them, so one program sees one consistent set of thread objects.
 *
 * All fields are protected by the GIL. Joiners and native_id readers block through wait.h only.
 */
#include "pyconc.h"

#include <pythread.h>

enum { T_INITIAL = 0, T_STARTED = 1, T_STOPPED = 2 };

typedef struct {
    PyObject_HEAD
    PyObject *target;          /* _target: callable or None; NULL once run() is done */
    PyObject *args;            /* _args; NULL once run() is done */
    PyObject *kwargs;          /* _kwargs; NULL once run() is done */
    PyObject *name;            /* str */
    PyObject *stderr_obj;      /* sys.stderr when constructed: the excepthook's fallback */
    PyObject *context;         /* 3.14: the contextvars.Context run() runs in (given, or set
                                * by start()); NULL before 3.14 */
    PyObject *active;          /* the module's active dict, set by start() (strong) */
    PyInterpreterState *interp;/* interpreter of the thread that called start() */
    unsigned long ident;       /* valid from start() */
    unsigned long native_id;   /* valid once native_known */
    int native_known;
    int daemon;
    int initialized;           /* __init__ ran */
    int state;                 /* T_INITIAL, T_STARTED or T_STOPPED */
    int stop_seen;             /* join() or is_alive() has seen it stopped: the stdlib's
                                * _tstate_lock is None from then on, and join(timeout) no
                                * longer parses its timeout as a lock timeout */
    pc_waitlist start_waiters; /* readers of native_id before the thread ran */
    pc_waitlist join_waiters;  /* callers blocked in join() */
    PyObject *dict;
    PyObject *weakreflist;
} ThreadObject;

static PC_TLS ThreadObject *pc_current = NULL;

/* -- helpers --------------------------------------------------------------------------------- */

/* Calls threading.<name>(*). New reference or NULL. */
static PyObject *
call_stdlib_threading(const char *func)
{
    PyObject *mod = PyImport_ImportModule("threading");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(mod, func, NULL);
    Py_DECREF(mod);
    return r;
}

/* current_thread(): the running pyconc Thread, else the stdlib's object for this thread. */
static PyObject *
current_thread(void)
{
    if (pc_current != NULL) {
        return Py_NewRef((PyObject *)pc_current);
    }
    return call_stdlib_threading("current_thread");
}

/* -- GC -------------------------------------------------------------------------------------- */

static int
thread_traverse(ThreadObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->target);
    Py_VISIT(self->args);
    Py_VISIT(self->kwargs);
    Py_VISIT(self->name);
    Py_VISIT(self->stderr_obj);
    Py_VISIT(self->context);
    Py_VISIT(self->active);
    Py_VISIT(self->dict);
    return 0;
}

static int
thread_clear(ThreadObject *self)
{
    Py_CLEAR(self->target);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs);
    Py_CLEAR(self->name);
    Py_CLEAR(self->stderr_obj);
    Py_CLEAR(self->context);
    Py_CLEAR(self->active);
    Py_CLEAR(self->dict);
    return 0;
}

static void
thread_dealloc(ThreadObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    thread_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
thread_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ThreadObject *self = (ThreadObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_waitlist_init(&self->start_waiters);
    pc_waitlist_init(&self->join_waiters);
    return (PyObject *)self;
}

/* -- __init__ -------------------------------------------------------------------------------- */

/* The default for daemon: the creating thread's. 0/1, or -1 on error. */
static int
inherited_daemon(pc_state *st)
{
    if (pc_current != NULL) {
        return pc_current->daemon;
    }
    if (PyThread_get_thread_ident() == st->main_ident) {
        return 0;  /* the main thread is never a daemon: no need to ask the stdlib */
    }
    PyObject *cur = call_stdlib_threading("current_thread");
    if (cur == NULL) {
        return -1;
    }
    PyObject *d = PyObject_GetAttrString(cur, "daemon");
    Py_DECREF(cur);
    if (d == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(d);
    Py_DECREF(d);
    return r;
}

static PyObject *
default_name(ThreadObject *self, PyObject *target)
{
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    unsigned long n = ++st->name_counter;
    if (target != Py_None) {
        PyObject *tname = PyObject_GetAttrString(target, "__name__");
        if (tname != NULL) {
            PyObject *r = PyUnicode_FromFormat("Thread-%lu (%S)", n, tname);
            Py_DECREF(tname);
            return r;
        }
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
    }
    return PyUnicode_FromFormat("Thread-%lu", n);
}

/* 3.14 added the keyword-only `context`, the contextvars.Context that run() runs in, and names
 * the OS thread after the Thread (_thread.set_name). */
#if PY_VERSION_HEX >= 0x030E0000
#define THREAD_CONTEXT 1
#define THREAD_INIT_NAMES 7
#else
#define THREAD_CONTEXT 0
#define THREAD_INIT_NAMES 6
#endif

static int
thread_init(ThreadObject *self, PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"group", "target", "name", "args", "kwargs", "daemon",
                                        "context"};
    PyObject *argv[7] = {NULL};
    if (pc_parse_init_args("Thread.__init__", args, kwds, names, THREAD_INIT_NAMES, 5, 0,
                           argv) < 0) {
        return -1;
    }
    PyObject *group = argv[0] ? argv[0] : Py_None, *target = argv[1] ? argv[1] : Py_None;
    PyObject *name = argv[2] ? argv[2] : Py_None, *targs = argv[3];
    PyObject *tkwargs = argv[4] ? argv[4] : Py_None, *daemon = argv[5] ? argv[5] : Py_None;
    if (group != Py_None) {
        PyErr_SetString(PyExc_AssertionError, "group argument must be None for now");
        return -1;
    }
    if (self->state != T_INITIAL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot re-initialize a started thread");
        return -1;
    }
    int named = PyObject_IsTrue(name);
    if (named < 0) {
        return -1;
    }
    PyObject *sname = named ? PyObject_Str(name) : default_name(self, target);
    if (sname == NULL) {
        return -1;
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        Py_DECREF(sname);
        return -1;
    }
    int d = daemon == Py_None ? inherited_daemon(st) : PyObject_IsTrue(daemon);
    if (d < 0) {
        Py_DECREF(sname);
        return -1;
    }
    PyObject *kw = tkwargs == Py_None ? PyDict_New() : Py_NewRef(tkwargs);
    if (kw == NULL) {
        Py_DECREF(sname);
        return -1;
    }
    PyObject *err = PySys_GetObject("stderr");  /* borrowed */
    Py_XSETREF(self->target, Py_NewRef(target));
    Py_XSETREF(self->args, targs ? Py_NewRef(targs) : PyTuple_New(0));
    Py_XSETREF(self->kwargs, kw);
    Py_XSETREF(self->name, sname);
    Py_XSETREF(self->stderr_obj, Py_NewRef(err ? err : Py_None));
#if THREAD_CONTEXT
    Py_XSETREF(self->context, argv[6] == NULL || argv[6] == Py_None ? NULL : Py_NewRef(argv[6]));
#endif
    self->daemon = d;
    self->initialized = 1;
    return self->args == NULL ? -1 : 0;
}

/* -- the new thread -------------------------------------------------------------------------- */

/* Installs threading.settrace()/setprofile() hooks in the new thread, as the stdlib's threads
 * do, so that coverage and profilers see pyconc threads too. */
static void
install_stdlib_hooks(void)
{
    static const char *const pairs[2][2] = {{"_trace_hook", "settrace"},
                                            {"_profile_hook", "setprofile"}};
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *mod = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (mod == NULL) {
        PyErr_Clear();
        return;
    }
    for (int i = 0; i < 2; i++) {
        PyObject *hook = PyObject_GetAttrString(mod, pairs[i][0]);
        if (hook != NULL && hook != Py_None) {
            PyObject *setter = PySys_GetObject(pairs[i][1]);  /* borrowed */
            PyObject *r = setter ? PyObject_CallOneArg(setter, hook) : NULL;
            if (r == NULL && PyErr_Occurred()) {
                PyErr_WriteUnraisable(hook);
            }
            Py_XDECREF(r);
        }
        Py_XDECREF(hook);
        PyErr_Clear();
    }
    Py_DECREF(mod);
}

#if THREAD_CONTEXT
/* 3.14's Thread._set_os_name(): _thread.set_name(name) for a non-empty name, an OSError
 * ignored. Called in the thread itself. 0, or -1 with an exception. */
static int
set_os_name(ThreadObject *self)
{
    int named = self->name ? PyObject_IsTrue(self->name) : 0;
    if (named <= 0) {
        return named;
    }
    PyObject *mod = PyImport_ImportModule("_thread");
    if (mod == NULL) {
        return -1;
    }
    PyObject *set_name = PyObject_GetAttrString(mod, "set_name");
    Py_DECREF(mod);
    if (set_name == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();   /* a platform without it: the stdlib's _set_name is None */
        return 0;
    }
    PyObject *r = PyObject_CallOneArg(set_name, self->name);
    Py_DECREF(set_name);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(r);
    return 0;
}
#endif

static void
invoke_excepthook(ThreadObject *self)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL && ev != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    PyObject *face = PyImport_ImportModule("pyconc.threading");
    PyObject *r = NULL;
    if (face != NULL) {
        r = PyObject_CallMethod(face, "_invoke_excepthook", "OOOO", (PyObject *)self,
                                et ? et : Py_None, ev ? ev : Py_None, etb ? etb : Py_None);
        Py_DECREF(face);
    }
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(r);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
}

static void
thread_bootstrap(void *arg)
{
    ThreadObject *self = (ThreadObject *)arg;  /* strong reference from start() */
    /* A thread the OS schedules only once the interpreter has begun to exit (started by a daemon
     * thread or an atexit callback; threads started earlier are waited for until they run, by
     * pyconc.threading's exit hook) must not make a thread state: the interpreter it would join
     * may already be freed and the thread-state TSS key deleted (3.14 aborts in gilstate_tss_set
     * or crashes). The flag stays set after Py_Finalize. Without the GIL nothing can be released:
     * the reference to self is leaked on purpose, as the stdlib's _thread does (gh-108987). */
#if PY_VERSION_HEX >= 0x030D0000
    if (Py_IsFinalizing()) {
#else
    if (_Py_IsFinalizing()) {
#endif
        return;
    }
    PyThreadState *tstate = PyThreadState_New(self->interp);
    if (tstate == NULL) {
        return;  /* out of memory: nothing can be reported without a thread state */
    }
    PC_ASAN_THREAD_GUARD();        /* the GIL may end this thread with pthread_exit() (wait.h) */
    PyEval_AcquireThread(tstate);  /* exits this thread if the interpreter is finalizing */
    pc_current = self;
    self->native_id = PyThread_get_thread_native_id();
    self->native_known = 1;
    pc_waitlist_wake_n(&self->start_waiters, -1);
    install_stdlib_hooks();

#if THREAD_CONTEXT
    /* `self._set_os_name()`, then `self._context.run(self.run)` */
    PyObject *r = NULL;
    if (set_os_name(self) == 0) {
        PyObject *run = PyObject_GetAttrString((PyObject *)self, "run");
        r = run ? PyObject_CallMethod(self->context, "run", "O", run) : NULL;
        Py_XDECREF(run);
    }
#else
    PyObject *r = PyObject_CallMethod((PyObject *)self, "run", NULL);
#endif
    if (r == NULL) {
        invoke_excepthook(self);
    }
    Py_XDECREF(r);

    /* Leave the registry, then let joiners go. */
    if (self->active != NULL) {
        PyObject *key = PyLong_FromUnsignedLong(self->ident);
        if (key != NULL) {
            PyObject *cur = PyDict_GetItemWithError(self->active, key);
            if (cur == (PyObject *)self && PyDict_DelItem(self->active, key) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
            Py_DECREF(key);
        }
        PyErr_Clear();
    }
    self->state = T_STOPPED;
    pc_waitlist_wake_n(&self->join_waiters, -1);
    pc_current = NULL;
    Py_DECREF(self);  /* partner: Py_INCREF in thread_start() */
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
}

/* -- methods --------------------------------------------------------------------------------- */

/* Before __init__ has run, the stdlib's methods raise RuntimeError (start, join, the daemon
 * setter) or fail an assert (is_alive and the properties): same exceptions, same messages. */
static int
check_initialized(ThreadObject *self, const char *msg)
{
    if (!self->initialized) {
        PyErr_SetString(PyExc_RuntimeError, msg);
        return -1;
    }
    return 0;
}

static int
assert_initialized(ThreadObject *self)
{
    if (!self->initialized) {
        PyErr_SetString(PyExc_AssertionError, "Thread.__init__() not called");
        return -1;
    }
    return 0;
}

/* Blocks until the thread has run its first line (native_id is known) or has stopped. */
static int
wait_started(ThreadObject *self)
{
    while (!self->native_known && self->state == T_STARTED) {
        pc_waiter w;
        /* no spin: the OS takes longer to create and schedule a thread than a spin lasts */
        if (pc_wait_on_long(&self->start_waiters, &w, PC_FOREVER) == PC_WAIT_ERROR) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
thread_start(ThreadObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_initialized(self, "thread.__init__() not called") < 0) {
        return NULL;
    }
    if (self->state != T_INITIAL) {
        PyErr_SetString(PyExc_RuntimeError, "threads can only be started once");
        return NULL;
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
#if THREAD_CONTEXT
    if (self->context == NULL) {
        /* no context given: sys.flags.thread_inherit_context says a copy of the caller's,
         * else a new empty one */
        PyObject *flags = PySys_GetObject("flags");  /* borrowed */
        PyObject *inherit = flags ? PyObject_GetAttrString(flags, "thread_inherit_context")
                                  : NULL;
        int yes = inherit ? PyObject_IsTrue(inherit) : -1;
        Py_XDECREF(inherit);
        if (yes < 0) {
            return NULL;
        }
        self->context = yes ? PyContext_CopyCurrent() : PyContext_New();
        if (self->context == NULL) {
            return NULL;
        }
    }
#endif
    Py_XSETREF(self->active, Py_NewRef(st->active));
    self->interp = PyInterpreterState_Get();
    self->state = T_STARTED;
    Py_INCREF(self);  /* partner: Py_DECREF at the end of thread_bootstrap() */
    /* The new thread blocks on the GIL until we return, so ident and the registry entry are in
     * place before it runs. */
    unsigned long ident = PyThread_start_new_thread(thread_bootstrap, self);
    if (ident == PYTHREAD_INVALID_THREAD_ID) {
        self->state = T_INITIAL;
        Py_DECREF(self);
        PyErr_SetString(PyExc_RuntimeError, "can't start new thread");
        return NULL;
    }
    self->ident = ident;
    PyObject *key = PyLong_FromUnsignedLong(ident);
    if (key == NULL || PyDict_SetItem(st->active, key, (PyObject *)self) < 0) {
        Py_XDECREF(key);
        return NULL;
    }
    Py_DECREF(key);
    /* Like the stdlib's start(), an OS thread returns once the new thread runs: a loop that starts
     * many threads otherwise keeps the GIL while they all queue for it, and they take it only by
     * forced switches, which costs them CPU time. A greenlet under a hub (or the hub itself) does
     * not wait: parking it would cost a switch through the hub for nothing. */
    if ((pc_hub == NULL || pc_hub->can_yield() == 0) && wait_started(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
thread_run(ThreadObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->target == NULL) {
        /* not initialised, or run() already ran: the stdlib deleted _target */
        pc_uninitialized((PyObject *)self, "_target");
        return NULL;
    }
    PyObject *r = Py_None;
    Py_INCREF(r);
    if (self->target != NULL && self->target != Py_None) {
        PyObject *args = PySequence_Tuple(self->args ? self->args : Py_None);
        if (args == NULL) {
            r = NULL;
        }
        else {
            PyObject *kw = self->kwargs;
            if (kw != NULL && !PyDict_Check(kw)) {
                kw = PyDict_New();
                if (kw != NULL && PyDict_Update(kw, self->kwargs) < 0) {
                    Py_CLEAR(kw);
                }
            }
            else {
                Py_XINCREF(kw);
            }
            Py_DECREF(r);
            r = (kw != NULL || self->kwargs == NULL) ? PyObject_Call(self->target, args, kw) : NULL;
            Py_XDECREF(kw);
            Py_DECREF(args);
        }
    }
    /* Like the stdlib: drop the references so that cycles through the target can be freed. */
    Py_CLEAR(self->target);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* Alive from start() until run() returns. (In a forked child, pc_thread_after_fork_child()
 * has marked the threads that did not survive the fork as stopped.) */
static int
thread_alive(ThreadObject *self)
{
    return self->state == T_STARTED;
}

static const char *const join_names[] = {"timeout"};

static PyObject *
thread_join(ThreadObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout = NULL;
    if ((nargs != 0 || kwnames != NULL) &&
            pc_parse_args("Thread.join", args, nargs, kwnames, join_names, 1, &timeout) < 0) {
        return NULL;
    }
    if (check_initialized(self, "Thread.__init__() not called") < 0) {
        return NULL;
    }
    if (self->state == T_INITIAL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot join thread before it is started");
        return NULL;
    }
    if (self == pc_current) {
        PyErr_SetString(PyExc_RuntimeError, "cannot join current thread");
        return NULL;
    }
    /* `_wait_for_tstate_lock(timeout=max(timeout, 0))`: the lock's acquire(True, timeout)
     * parses the timeout until the end has been seen (NaN: ValueError, as there). */
    pc_time_t rel_ns;
    if (pc_parse_join_timeout(timeout, !self->stop_seen, &rel_ns) < 0) {
        return NULL;
    }
    if (!thread_alive(self)) {
        self->stop_seen = 1;
        Py_RETURN_NONE;
    }
    if (rel_ns == 0) {
        Py_RETURN_NONE;
    }
    pc_time_t deadline = pc_deadline_after(rel_ns);
    while (thread_alive(self)) {
        pc_waiter w;
        int r = pc_wait_on_long(&self->join_waiters, &w, deadline);
        if (r == PC_WAIT_ERROR) {
            return NULL;
        }
        if (r == PC_WAIT_TIMEOUT) {
            break;
        }
    }
    self->stop_seen = !thread_alive(self);
    Py_RETURN_NONE;
}

static PyObject *
thread_is_alive(ThreadObject *self, PyObject *Py_UNUSED(ignored))
{
    if (assert_initialized(self) < 0) {
        return NULL;
    }
    int alive = thread_alive(self);
    self->stop_seen |= self->state == T_STOPPED;
    return PyBool_FromLong(alive);
}

static PyObject *
thread_get_name(ThreadObject *self, void *Py_UNUSED(closure))
{
    if (assert_initialized(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->name);
}

static int
thread_set_name(ThreadObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (assert_initialized(self) < 0) {
        return -1;
    }
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute 'name'");
        return -1;
    }
    PyObject *s = PyObject_Str(value);
    if (s == NULL) {
        return -1;
    }
    Py_XSETREF(self->name, s);
#if THREAD_CONTEXT
    if (self->state != T_INITIAL && self->ident == PyThread_get_thread_ident()) {
        return set_os_name(self);   /* 3.14: the running thread renames its OS thread */
    }
#endif
    return 0;
}

static PyObject *
thread_get_daemon(ThreadObject *self, void *Py_UNUSED(closure))
{
    if (assert_initialized(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(self->daemon);
}

static int
thread_set_daemon(ThreadObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (check_initialized(self, "Thread.__init__() not called") < 0) {
        return -1;
    }
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute 'daemon'");
        return -1;
    }
    if (self->state != T_INITIAL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot set daemon status of active thread");
        return -1;
    }
    int d = PyObject_IsTrue(value);
    if (d < 0) {
        return -1;
    }
    self->daemon = d;
    return 0;
}

static PyObject *
thread_get_ident(ThreadObject *self, void *Py_UNUSED(closure))
{
    if (assert_initialized(self) < 0) {
        return NULL;
    }
    if (self->state == T_INITIAL) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->ident);
}

static PyObject *
thread_get_native_id(ThreadObject *self, void *Py_UNUSED(closure))
{
    if (assert_initialized(self) < 0) {
        return NULL;
    }
    if (self->state == T_INITIAL) {
        Py_RETURN_NONE;
    }
    if (wait_started(self) < 0) {
        return NULL;
    }
    if (!self->native_known) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->native_id);
}

static PyObject *
thread_isDaemon(ThreadObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pc_deprecated("isDaemon() is deprecated, get the daemon attribute instead") < 0) {
        return NULL;
    }
    return thread_get_daemon(self, NULL);
}

static PyObject *
thread_setDaemon(ThreadObject *self, PyObject *value)
{
    if (pc_deprecated("setDaemon() is deprecated, set the daemon attribute instead") < 0 ||
            thread_set_daemon(self, value, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
thread_getName(ThreadObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pc_deprecated("getName() is deprecated, get the name attribute instead") < 0) {
        return NULL;
    }
    return thread_get_name(self, NULL);
}

static PyObject *
thread_setName(ThreadObject *self, PyObject *value)
{
    if (pc_deprecated("setName() is deprecated, set the name attribute instead") < 0 ||
            thread_set_name(self, value, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
thread_repr(ThreadObject *self)
{
    PyObject *cls = PyType_GetName(Py_TYPE(self));
    if (cls == NULL) {
        return NULL;
    }
    if (!self->initialized) {
        Py_DECREF(cls);
        PyErr_SetString(PyExc_AssertionError, "Thread.__init__() was not called");
        return NULL;
    }
    self->stop_seen |= self->state == T_STOPPED;   /* the stdlib's repr calls is_alive() */
    const char *status = self->state == T_INITIAL ? "initial"
                         : self->state == T_STARTED ? "started" : "stopped";
    PyObject *r;
    if (self->state == T_INITIAL) {
        r = PyUnicode_FromFormat("<%U(%U, %s%s)>", cls, self->name, status,
                                 self->daemon ? " daemon" : "");
    }
    else {
        r = PyUnicode_FromFormat("<%U(%U, %s%s %lu)>", cls, self->name, status,
                                 self->daemon ? " daemon" : "", self->ident);
    }
    Py_DECREF(cls);
    return r;
}

/* The stdlib's Thread pickles its __dict__ until the first attribute that cannot be: the
 * _tstate_lock's Event's lock up to 3.12, the _ThreadHandle from 3.13 on. */
#if PY_VERSION_HEX >= 0x030D0000
PC_NO_PICKLE(thread, "_thread._ThreadHandle")
#else
PC_NO_PICKLE(thread, "_thread.lock")
#endif

static PyMethodDef thread_methods[] = {
    {"start", (PyCFunction)thread_start, METH_NOARGS,
     PyDoc_STR("Start the thread's activity: run() in a new OS thread. Once only.")},
    {"run", (PyCFunction)thread_run, METH_NOARGS,
     PyDoc_STR("The thread's activity: calls target(*args, **kwargs). Override in subclasses.")},
    {"join", (PyCFunction)(void (*)(void))thread_join, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("join(timeout=None)\n\nWait until the thread ends or the timeout passes.")},
    {"is_alive", (PyCFunction)thread_is_alive, METH_NOARGS,
     PyDoc_STR("True from start() until run() returns.")},
    {"isDaemon", (PyCFunction)thread_isDaemon, METH_NOARGS, NULL},
    {"setDaemon", (PyCFunction)thread_setDaemon, METH_O, NULL},
    {"getName", (PyCFunction)thread_getName, METH_NOARGS, NULL},
    {"setName", (PyCFunction)thread_setName, METH_O, NULL},
    PC_COPY_SELF_METHOD,
    PC_NO_PICKLE_METHODS(thread),
    {NULL, NULL, 0, NULL},
};

/* _target, _args, _kwargs: plain attributes of the stdlib's Thread, absent before __init__ and
 * after run() (the stdlib deletes them). Getters rather than T_OBJECT_EX members, whose
 * AttributeError names the type by its qualified name from CPython 3.13.x on, where the
 * stdlib's names it by its __name__. The closure is the field's offset. */
static PyObject *
thread_get_slot(ThreadObject *self, void *closure)
{
    PyObject *v = *(PyObject **)((char *)self + (size_t)closure);
    if (v == NULL) {
        pc_uninitialized((PyObject *)self,
                         (size_t)closure == offsetof(ThreadObject, target) ? "_target" :
                         (size_t)closure == offsetof(ThreadObject, args) ? "_args" : "_kwargs");
        return NULL;
    }
    return Py_NewRef(v);
}

static int
thread_set_slot(ThreadObject *self, PyObject *value, void *closure)
{
    PyObject **slot = (PyObject **)((char *)self + (size_t)closure);
    if (value == NULL && *slot == NULL) {
        PyObject *r = thread_get_slot(self, closure);   /* the AttributeError */
        Py_XDECREF(r);
        return -1;
    }
    Py_XSETREF(*slot, Py_XNewRef(value));
    return 0;
}

static PyGetSetDef thread_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_target", (getter)thread_get_slot, (setter)thread_set_slot, NULL,
     (void *)offsetof(ThreadObject, target)},
    {"_args", (getter)thread_get_slot, (setter)thread_set_slot, NULL,
     (void *)offsetof(ThreadObject, args)},
    {"_kwargs", (getter)thread_get_slot, (setter)thread_set_slot, NULL,
     (void *)offsetof(ThreadObject, kwargs)},
    {"name", (getter)thread_get_name, (setter)thread_set_name, NULL, NULL},
    {"daemon", (getter)thread_get_daemon, (setter)thread_set_daemon, NULL, NULL},
    {"ident", (getter)thread_get_ident, NULL, NULL, NULL},
    {"native_id", (getter)thread_get_native_id, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef thread_members[] = {
    {"_stderr", T_OBJECT, offsetof(ThreadObject, stderr_obj), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(ThreadObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ThreadObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot thread_slots[] = {
    {Py_tp_dealloc, thread_dealloc},
    {Py_tp_traverse, thread_traverse},
    {Py_tp_clear, thread_clear},
    {Py_tp_new, thread_new},
    {Py_tp_init, thread_init},
    {Py_tp_repr, thread_repr},
    {Py_tp_methods, thread_methods},
    {Py_tp_getset, thread_getset},
    {Py_tp_members, thread_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Thread(group=None, target=None, name=None, args=(), kwargs=None, *, daemon=None)\n\n"
        "An OS thread, a drop-in for threading.Thread.")},
    {0, NULL},
};

static PyType_Spec thread_spec = {
    .name = "pyconc.Thread",
    .basicsize = sizeof(ThreadObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = thread_slots,
};

/* -- module functions ------------------------------------------------------------------------ */

PyObject *
pc_thread_current(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return current_thread();
}

/* The live pyconc threads, as a new list. */
PyObject *
pc_thread_enumerate_own(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    return PyDict_Values(st->active);
}

/* After fork, in the child: only the calling thread survives. */
PyObject *
pc_thread_after_fork_child(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    PyObject *values = PyDict_Values(st->active);
    if (values == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        ThreadObject *t = (ThreadObject *)PyList_GET_ITEM(values, i);
        if (t != pc_current) {
            t->state = T_STOPPED;
            pc_waitlist_init(&t->join_waiters);
            pc_waitlist_init(&t->start_waiters);
        }
    }
    Py_DECREF(values);
    PyDict_Clear(st->active);
    if (pc_current != NULL) {
        pc_current->ident = PyThread_get_thread_ident();
        PyObject *key = PyLong_FromUnsignedLong(pc_current->ident);
        if (key == NULL || PyDict_SetItem(st->active, key, (PyObject *)pc_current) < 0) {
            Py_XDECREF(key);
            return NULL;
        }
        Py_DECREF(key);
    }
    Py_RETURN_NONE;
}

int
pc_thread_init_types(PyObject *module, pc_state *st)
{
    /* The main thread's ident, for the daemon default (threading.main_thread() is the thread
     * that ran the interpreter's start, whichever thread imports us). After a fork from another
     * thread this ident no longer exists, and the stdlib is asked instead: still right. */
    PyObject *main = call_stdlib_threading("main_thread");
    PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
    Py_XDECREF(main);
    if (ident == NULL) {
        return -1;
    }
    st->main_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred()) {
        return -1;
    }
    st->active = PyDict_New();
    if (st->active == NULL) {
        return -1;
    }
    return pc_add_type(module, &thread_spec, NULL, &st->Thread_Type);
}
