/* greenlet.c -- greenlets: coroutines with real C-stack switching, by stack copying.
 *
 * Every greenlet of a thread runs on that thread's own C stack. A greenlet owns the stack region
 * [stack_start, stack_stop): stack_start is its stack pointer while suspended, stack_stop the
 * address below which it started (a local of the g_switch() that started it; the main greenlet
 * owns the whole stack). When a greenlet is switched to, the parts of other greenlets' regions
 * that overlap its region are copied to the heap (lazily, only as far as needed: save_hook), the
 * stack pointer moves to its stack_start, and its own saved bytes are copied back (restore_hook).
 * Code always runs on the thread's real stack, and a suspended greenlet costs only the bytes of
 * stack it really used.
 *
 * States (stack_start / stack_stop):
 *   not started   NULL / NULL
 *   running or suspended ("active")   != NULL / != NULL   (the running one has stack_start 1)
 *   dead          NULL / != NULL
 *   main          active from creation, stack_stop = (char *)-1
 *
 * The rule that shapes this file: once pc_stack_switch() has returned, the C locals of the
 * function that called it belong to whichever greenlet resumed. Everything a switch passes (the
 * greenlet switched from and to, the arguments or exception) therefore goes through the
 * thread-local switch state G, never through locals.
 *
 * Interpreter state (frames, data stack, exceptions, context, ...) is saved and restored by
 * pystate.c, the only file that touches CPython-private fields.
 *
 * All greenlet state is per OS thread (G is thread-local); greenlet objects are protected by the
 * GIL. A greenlet can only be switched to from its own thread.
 *
 * Thread identity is the thread's main greenlet object, never the thread ident: the C library
 * hands an ended thread's ident to the next thread it starts. A started greenlet holds its
 * thread's main greenlet (main_greenlet, strong, so that address cannot be reused while the
 * greenlet exists); a greenlet not started yet belongs to the thread of its parent chain, as with
 * greenlet. A main greenlet is marked thread_exited when its thread ends; a greenlet of an ended
 * thread can never run again and is freed without running its code.
 */
#include "pyconc.h"
#include "pystate.h"
#include "switch.h"

#include <pthread.h>
#include <pythread.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define PC_NOINLINE __attribute__((noinline))
#else
#define PC_NOINLINE
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PC_ASAN 1
#endif
#ifdef PC_ASAN
/* Copying stacks reads frames' red zones; the copy must not be instrumented (nor turned into a
 * memcpy call that the sanitizer intercepts). After a greenlet's bytes are put back, the shadow
 * of that range still describes the frames of whichever greenlet ran there last, so it is
 * unpoisoned: no false reports, at the price of not checking red zones of resumed frames. */
#include <sanitizer/asan_interface.h>
#define PC_NO_ASAN __attribute__((no_sanitize_address, noinline))
#define PC_UNPOISON(p, n) __asan_unpoison_memory_region((p), (size_t)(n))
/* The stack below a greenlet's switch point is where its next calls put their frames. Frames of
 * other greenlets that were switched away (never returned) leave their red zones poisoned
 * there, and a new frame's prologue poisons only its own red zones, not its variables: so after
 * a switch that window is unpoisoned, or a buffer on the stack handed to libc (gmtime_r,
 * epoll_wait) is reported as an overflow that is not one. */
#define PC_UNPOISON_BELOW(p) \
    __asan_unpoison_memory_region((char *)(p) - PC_ASAN_WINDOW, PC_ASAN_WINDOW)
#define PC_ASAN_WINDOW ((size_t)128 * 1024)
/* The functions whose frames live across a switch (copied away and back while other greenlets'
 * frames use the same addresses) keep no red zones: their shadow could not be kept right. */
#define PC_SWITCH_FRAME __attribute__((no_sanitize_address))
#else
#define PC_NO_ASAN
#define PC_UNPOISON(p, n) ((void)0)
#define PC_UNPOISON_BELOW(p) ((void)0)
#define PC_SWITCH_FRAME
#endif

typedef struct GreenletObject {
    PyObject_HEAD
    char *stack_start;                 /* see the states above */
    char *stack_stop;
    char *stack_copy;                  /* heap copy of [stack_start, stack_start + stack_saved) */
    Py_ssize_t stack_saved;
    struct GreenletObject *stack_prev; /* the greenlet owning the stack just above ours */
    PyObject *run;                     /* the callable until started, then NULL */
    struct GreenletObject *parent;     /* strong; NULL only for a main greenlet */
    unsigned long thread_ident;        /* creating thread's ident: repr only, never identity */
    struct GreenletObject *main_greenlet; /* strong, once started: the main greenlet of the thread
                                          it runs in; NULL for a main greenlet and before the
                                          start (see lineage_main) */
    int thread_exited;                 /* main only: set (atomically) when its thread ends */
    int is_main;
    int running;                       /* 1 while it is its thread's current greenlet */
    PyObject *call[3];                 /* run, args, kwargs while run() is being called */
    PyObject *deleteme;                /* main only: list of this thread's greenlets released
                                          in other threads, to be killed here (strong) */
    pc_pystate py;                     /* interpreter state while not running */
    PyObject *dict;
    PyObject *weakreflist;
} GreenletObject;

#define STARTED(g) ((g)->stack_stop != NULL)
#define ACTIVE(g) ((g)->stack_start != NULL)

/* Per-thread switch state. */
typedef struct {
    GreenletObject *current;           /* strong: the running greenlet, NULL before first use */
    GreenletObject *main;              /* strong: this thread's main greenlet */
    GreenletObject *origin;            /* during a switch: the greenlet switched away from */
    GreenletObject *target;            /* during a switch: the greenlet switched to */
    PyObject *args, *kwargs;           /* what the switch passes (strong), or ... */
    PyObject *exc;                     /* ... the exception it raises in the target (strong) */
    PyObject *trace;                   /* settrace() callback (strong) or NULL */
} switch_state;

static PC_TLS switch_state G;

/* -- stack copying --------------------------------------------------------------------------- */

static PC_NO_ASAN void
copy_bytes(char *dst, const char *src, Py_ssize_t n)
{
#ifdef PC_ASAN
    volatile char *d = dst;
    for (Py_ssize_t i = 0; i < n; i++) {
        d[i] = src[i];
    }
#else
    memcpy(dst, src, (size_t)n);
#endif
}

/* Saves g's stack bytes from stack_start up to stop (extending what is saved already). 0/-1. */
static int
save_stack(GreenletObject *g, char *stop)
{
    Py_ssize_t have = g->stack_saved, need = stop - g->stack_start;
    if (need > have) {
        char *c = PyMem_RawRealloc(g->stack_copy, (size_t)need);
        if (c == NULL) {
            return -1;
        }
        copy_bytes(c + have, g->stack_start + have, need - have);
        g->stack_copy = c;
        g->stack_saved = need;
    }
    return 0;
}

/* Called by pc_stack_switch with the origin's stack pointer: frees the target's region by saving
 * whatever other greenlets have there, and says where the stack pointer goes. */
static PC_SWITCH_FRAME intptr_t
save_hook(char *sp)
{
    GreenletObject *target = G.target, *owner = G.origin;
    char *target_stop = target->stack_stop;
    if (owner->stack_start == NULL) {
        owner = owner->stack_prev;  /* a dying greenlet: nothing of it to keep */
    }
    else {
        owner->stack_start = sp;
    }
    while (owner->stack_stop < target_stop) {
        if (save_stack(owner, owner->stack_stop) < 0) {  /* wholly inside the region */
            return PC_SWITCH_ERROR;
        }
        owner = owner->stack_prev;
    }
    if (owner != target && save_stack(owner, target_stop) < 0) {
        return PC_SWITCH_ERROR;
    }
    if (target->stack_start == NULL) {
        return PC_SWITCH_NEW;
    }
    return (intptr_t)(target->stack_start - sp);
}

/* Called by pc_stack_switch on the target's stack: puts the target's saved bytes back. */
static PC_SWITCH_FRAME void
restore_hook(void)
{
    GreenletObject *g = G.target, *owner = G.origin;
    PC_UNPOISON_BELOW(g->stack_start);
    if (g->stack_saved != 0) {
        PC_UNPOISON(g->stack_start, g->stack_saved);
        copy_bytes(g->stack_start, g->stack_copy, g->stack_saved);
        PyMem_RawFree(g->stack_copy);
        g->stack_copy = NULL;
        g->stack_saved = 0;
    }
    if (owner->stack_start == NULL) {
        owner = owner->stack_prev;
    }
    while (owner != NULL && owner->stack_stop <= g->stack_stop) {
        owner = owner->stack_prev;
    }
    g->stack_prev = owner;
}

/* -- the main greenlet ------------------------------------------------------------------------ */

static GreenletObject *
greenlet_alloc(PyTypeObject *tp)
{
    GreenletObject *g = (GreenletObject *)tp->tp_alloc(tp, 0);
    if (g != NULL) {
        g->thread_ident = PyThread_get_thread_ident();
    }
    return g;
}

/* Thread end. A pthread key destructor runs when a thread that used greenlets ends, without the
 * GIL: it marks the thread's main greenlet (so that switching to a greenlet of an ended thread can
 * say so), detaches the thread's references (G.main, G.current, the trace function) and hands
 * them to a pending call, which drops them with the GIL held. Counts for introspection: live main
 * greenlets (GIL-protected) and cleanups not yet run (atomic). */
static pthread_key_t thread_end_key;
static pthread_once_t thread_end_once = PTHREAD_ONCE_INIT;
static Py_ssize_t total_main_greenlets = 0;
static int pending_cleanups = 0;

/* What ended threads left behind, on a lock-free stack; one pending call at a time drains it
 * all (CPython's pending-call queue is small: one call per thread would overflow it when many
 * threads end at once). A call that could not be queued is retried at the next thread end or
 * greenlet operation. */
typedef struct thread_leftovers {
    PyObject *refs[3];
    struct thread_leftovers *next;
} thread_leftovers;
static thread_leftovers *leftovers = NULL;
static int drain_scheduled = 0;

static int
drop_thread_leftovers(void *Py_UNUSED(arg))
{
    __atomic_store_n(&drain_scheduled, 0, __ATOMIC_SEQ_CST);
    thread_leftovers *lo = __atomic_exchange_n(&leftovers, NULL, __ATOMIC_ACQ_REL);
    while (lo != NULL) {
        thread_leftovers *next = lo->next;
        for (int i = 0; i < 3; i++) {
            Py_XDECREF(lo->refs[i]);
        }
        PyMem_RawFree(lo);
        __atomic_fetch_sub(&pending_cleanups, 1, __ATOMIC_RELAXED);
        lo = next;
    }
    return 0;
}

static void
schedule_drain(void)
{
    if (__atomic_load_n(&leftovers, __ATOMIC_ACQUIRE) == NULL ||
            __atomic_exchange_n(&drain_scheduled, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    if (Py_AddPendingCall(drop_thread_leftovers, NULL) < 0) {
        __atomic_store_n(&drain_scheduled, 0, __ATOMIC_SEQ_CST);  /* queue full: retried later */
    }
}

static void
on_thread_end(void *main)
{
    __atomic_store_n(&((GreenletObject *)main)->thread_exited, 1, __ATOMIC_RELEASE);
    if (G.main != main) {
        return;  /* not this thread's state (cannot happen; be safe) */
    }
    thread_leftovers *lo = PyMem_RawMalloc(sizeof(thread_leftovers));
    if (lo == NULL) {
        return;  /* keep them: a leak, not a crash */
    }
    lo->refs[0] = (PyObject *)G.main;
    lo->refs[1] = (PyObject *)G.current;
    lo->refs[2] = G.trace;
    G.main = G.current = NULL;
    G.trace = NULL;
    __atomic_fetch_add(&pending_cleanups, 1, __ATOMIC_RELAXED);
    lo->next = __atomic_load_n(&leftovers, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&leftovers, &lo->next, lo, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
    }
    schedule_drain();
}

/* The thread state's dict is cleared while the ending thread still holds the GIL, before
 * Thread.join() returns; a capsule kept there marks the main greenlet at that moment, so that
 * `dead` is right as soon as the thread is joined. (The references are dropped later, by the
 * pthread key destructor above.) */
static void
on_thread_state_clear(PyObject *capsule)
{
    GreenletObject *main = PyCapsule_GetPointer(capsule, "pyconc.greenlet.main");
    if (main != NULL) {
        __atomic_store_n(&main->thread_exited, 1, __ATOMIC_RELEASE);
    }
    PyErr_Clear();
}

static void
make_thread_end_key(void)
{
    (void)pthread_key_create(&thread_end_key, on_thread_end);
}

/* 1 if g ran in a thread that has ended (a main greenlet, or a started one). */
static int
thread_exited(GreenletObject *g)
{
    GreenletObject *main = g->is_main ? g : g->main_greenlet;
    return main != NULL && __atomic_load_n(&main->thread_exited, __ATOMIC_ACQUIRE);
}

/* The main greenlet of the thread g runs in (borrowed): its own for a main or started greenlet;
 * for one not started yet, that of its parent chain (it will start in the thread it is switched
 * to from, and must end in its parent). NULL if the chain was broken by the garbage collector. */
static GreenletObject *
lineage_main(GreenletObject *g)
{
    for (; g != NULL; g = g->parent) {
        if (g->is_main) {
            return g;
        }
        if (STARTED(g)) {
            return g->main_greenlet;
        }
    }
    return NULL;
}

/* May this thread (whose main greenlet is G.main, which the caller has created) switch to
 * target? 0, or -1 with greenlet's error for each case. */
static int
check_switch_allowed(pc_state *st, GreenletObject *target)
{
    GreenletObject *main = lineage_main(target);
    if (main == G.main) {
        return 0;
    }
    if (main == NULL) {
        PyErr_SetString(st->GreenletError, "cannot switch to a garbage collected greenlet");
    }
    else if (__atomic_load_n(&main->thread_exited, __ATOMIC_ACQUIRE)) {
        PyErr_SetString(st->GreenletError,
                        "cannot switch to a different thread (which happens to have exited)");
    }
    else {
        PyErr_Format(st->GreenletError, "Cannot switch to a different thread\n\tCurrent:  %R\n"
                     "\tExpected: %R", (PyObject *)G.main, (PyObject *)main);
    }
    return -1;
}

/* This thread's running greenlet (borrowed), creating the main greenlet on first use. */
static PyObject *throw_into(pc_state *st, struct GreenletObject *self, PyObject *exc);

/* Kills the greenlets of this thread that were released in other threads meanwhile: their
 * finalizer queued them on this thread's main greenlet (see greenlet_finalize); dropping the
 * queue's references runs the finalizer again, here, where it can kill them. */
static void
kill_queued(void)
{
    GreenletObject *main = G.main;
    while (main->deleteme != NULL) {
        PyObject *list = main->deleteme;
        main->deleteme = NULL;
        Py_DECREF(list);
    }
}

static GreenletObject *
current_greenlet(pc_state *st)
{
    if (G.current != NULL) {
        if (G.main->deleteme != NULL) {
            kill_queued();
        }
        if (__atomic_load_n(&leftovers, __ATOMIC_RELAXED) != NULL &&
                !__atomic_load_n(&drain_scheduled, __ATOMIC_RELAXED)) {
            schedule_drain();
        }
        return G.current;
    }
    GreenletObject *main = greenlet_alloc(st->Greenlet_Type);
    if (main == NULL) {
        return NULL;
    }
    main->stack_start = (char *)1;
    main->stack_stop = (char *)-1;
    main->is_main = 1;
    main->running = 1;
    total_main_greenlets++;
    G.main = main;                    /* the thread's reference, dropped when the thread ends */
    pthread_once(&thread_end_once, make_thread_end_key);
    (void)pthread_setspecific(thread_end_key, main);
    PyObject *tsdict = PyThreadState_GetDict();  /* borrowed */
    PyObject *cap = PyCapsule_New(main, "pyconc.greenlet.main", on_thread_state_clear);
    if (tsdict == NULL || cap == NULL ||
            PyDict_SetItemString(tsdict, "pyconc.greenlet.main", cap) < 0) {
        PyErr_Clear();  /* `dead` then turns true a little later, at the thread's very end */
    }
    Py_XDECREF(cap);
    G.current = (GreenletObject *)Py_NewRef(main);
    return main;
}

/* -- switching -------------------------------------------------------------------------------- */

/* Switches to G.target, which the caller set; G.current is switched away from. Returns 0 once
 * this greenlet is switched back to, 1 when G.target is a new greenlet that starts on this stack
 * now (the caller goes on as that greenlet), -1 on failure (nothing changed). */
static PC_NOINLINE PC_SWITCH_FRAME int
g_switchstack(void)
{
    PyThreadState *ts = PyThreadState_Get();
    G.origin = G.current;
    if (pc_pystate_save(&G.origin->py, ts) < 0) {
        G.origin = NULL;
        return -1;
    }
    int err = pc_stack_switch(save_hook, restore_hook);
    /* From here on, this is the target (0), the new greenlet (1), or unchanged (-1). */
    if (err < 0) {
        pc_pystate_restore(&G.origin->py, ts);
        PyErr_NoMemory();
        return -1;
    }
    if (err == 0) {
        pc_pystate_restore(&G.target->py, ts);
    }
    G.origin->running = 0;
    G.target->running = 1;
    G.current = (GreenletObject *)Py_NewRef(G.target);
    /* G.origin's reference is dropped by the code that reads the payload (g_switch_finish). */
    return err;
}

/* The value a switch() returns, from what was passed: no arguments give (), one gives it, several
 * a tuple, keywords only a dict, both (args, kwargs). Steals both. */
static PyObject *
switch_result(PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) == 0) {
        Py_CLEAR(kwargs);
    }
    if (kwargs == NULL) {
        if (PyTuple_GET_SIZE(args) == 1) {
            PyObject *r = Py_NewRef(PyTuple_GET_ITEM(args, 0));
            Py_DECREF(args);
            return r;
        }
        return args;
    }
    if (PyTuple_GET_SIZE(args) == 0) {
        Py_DECREF(args);
        return kwargs;
    }
    PyObject *r = PyTuple_Pack(2, args, kwargs);
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return r;
}

/* Calls the settrace() callback, if any, as callback(event, (origin, target)). 0 or -1. */
static int
call_trace(const char *event, GreenletObject *origin, GreenletObject *target)
{
    if (G.trace == NULL) {
        return 0;
    }
    PyObject *trace = Py_NewRef(G.trace);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *r = PyObject_CallFunction(trace, "s(OO)", event, origin, target);
    Py_DECREF(trace);
    if (r == NULL) {
        Py_CLEAR(G.trace);  /* like greenlet: a failing trace function is dropped */
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return -1;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return 0;
}

/* In the greenlet that was just switched to: takes the payload, returns what switch() returns
 * (or NULL with the passed exception raised), and drops the reference to the origin. */
static PyObject *
g_switch_finish(void)
{
    GreenletObject *origin = G.origin, *target = G.current;
    PyObject *args = G.args, *kwargs = G.kwargs, *exc = G.exc;
    G.args = G.kwargs = G.exc = NULL;
    G.origin = G.target = NULL;
    if (call_trace(exc ? "throw" : "switch", origin, target) < 0) {
        Py_XDECREF(args);
        Py_XDECREF(kwargs);
        Py_XDECREF(exc);
        Py_DECREF(origin);
        return NULL;
    }
    Py_DECREF(origin);  /* partner: the reference G.current held on it (g_switchstack) */
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        return NULL;
    }
    return switch_result(args, kwargs);
}

typedef struct {
    PyObject *args, *kwargs, *exc;     /* strong references, NULL once handed over */
} payload_t;

/* Hands the payload to the switch state, right before the stack switch: any Python code that
 * runs earlier (looking up run, for instance) may itself switch, and must not find it there. */
static inline void
hand_over(payload_t *p)
{
    G.args = p->args;
    G.kwargs = p->kwargs;
    G.exc = p->exc;
    p->args = p->kwargs = p->exc = NULL;
}

static inline void
payload_clear(payload_t *p)
{
    Py_CLEAR(p->args);
    Py_CLEAR(p->kwargs);
    Py_CLEAR(p->exc);
}

static int g_initialstub(GreenletObject *self, void *mark, payload_t *payload);

/* Switches to target (or, if it is dead, to its nearest live parent), passing args/kwargs
 * (stolen), or, when args is NULL, raising the current exception there. Returns what this
 * greenlet's switch() returns once it is switched back to. */
static PC_SWITCH_FRAME PyObject *
g_switch(pc_state *st, GreenletObject *target, PyObject *args, PyObject *kwargs)
{
    /* st may be NULL: the module state is looked up (an MRO walk) only when it is needed, on a
     * thread's first greenlet call and on errors, not on every switch. */
    payload_t payload = {args, kwargs, NULL};
    if (args == NULL) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (etb != NULL && ev != NULL) {
            PyException_SetTraceback(ev, etb);
        }
        Py_XDECREF(et);
        Py_XDECREF(etb);
        payload.exc = ev;
        Py_CLEAR(payload.kwargs);
    }
    if (G.current == NULL || lineage_main(target) != G.main) {
        if (st == NULL && (st = pc_state_of_type(Py_TYPE(target))) == NULL) {
            payload_clear(&payload);
            return NULL;
        }
        if (current_greenlet(st) == NULL || check_switch_allowed(st, target) < 0) {
            payload_clear(&payload);
            return NULL;
        }
    }
    else if (current_greenlet(st) == NULL) {
        payload_clear(&payload);
        return NULL;
    }
    for (;;) {
        int err;
        if (target == G.current) {
            /* switching to oneself: just hand the payload back */
            hand_over(&payload);
            G.origin = (GreenletObject *)Py_NewRef(G.current);
            return g_switch_finish();
        }
        if (ACTIVE(target)) {
            hand_over(&payload);
            G.target = target;
            err = g_switchstack();
        }
        else if (!STARTED(target)) {
            void *mark = NULL;
            err = g_initialstub(target, &mark, &payload);
            if (err == 2) {
                continue;  /* it was started while its run attribute was looked up */
            }
        }
        else {
            GreenletObject *dead = target;
            target = target->parent;  /* dead: go to the nearest live parent */
            if (target == NULL) {
                payload_clear(&payload);
                if (st == NULL && (st = pc_state_of_type(Py_TYPE(dead))) == NULL) {
                    return NULL;
                }
                PyErr_SetString(st->GreenletError, "cannot switch to a dead greenlet");
                return NULL;
            }
            continue;
        }
        if (err < 0) {
            /* whatever was handed over comes back; what was not is still ours */
            Py_CLEAR(G.args);
            Py_CLEAR(G.kwargs);
            Py_CLEAR(G.exc);
            G.target = NULL;
            payload_clear(&payload);
            return NULL;
        }
        return g_switch_finish();
    }
}

/* The greenlet a switch to g really goes to: g, or if g is dead its nearest parent that is not
 * (NULL if there is none). */
static GreenletObject *
live_target(GreenletObject *g)
{
    while (g != NULL && STARTED(g) && !ACTIVE(g)) {
        g = g->parent;
    }
    return g;
}

/* The switch arguments that hand the value of a GreenletExit (the instance) on to g: as greenlet
 * does, a switch() that is waiting gets the instance, a run() that has not started yet is called
 * with no arguments at all. New reference or NULL. */
static PyObject *
exit_value_args(GreenletObject *g, PyObject *value)
{
    GreenletObject *to = live_target(g);
    return to != NULL && !STARTED(to) ? PyTuple_New(0) : PyTuple_Pack(1, value);
}

/* What a finished run() passes to the parent: its result, or for GreenletExit the exception
 * instance as a value; any other exception stays raised. */
static PyObject *
g_handle_exit(pc_state *st, PyObject *result)
{
    if (result == NULL && PyErr_ExceptionMatches(st->GreenletExit)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        Py_XDECREF(et);
        Py_XDECREF(etb);
        return ev ? ev : Py_NewRef(Py_None);
    }
    return result;
}

/* Starts self: must not be inlined, since the new greenlet's stack begins at `mark`, in the
 * caller's frame, and continues here. The payload is handed over only after run has been looked
 * up (which may run Python code that switches). Returns 0 once the caller's greenlet is switched
 * back to, -1 on failure, 2 if self got started while run was looked up (payload untouched).
 * Never returns in the new greenlet: when its run() ends it switches to its parent for good. */
static PC_NOINLINE PC_SWITCH_FRAME int
g_initialstub(GreenletObject *self, void *mark, payload_t *payload)
{
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    static PyObject *run_name = NULL;   /* interned once: this is every greenlet's start */
    if (run_name == NULL && (run_name = PyUnicode_InternFromString("run")) == NULL) {
        return -1;
    }
    PyObject *run = PyObject_GetAttr((PyObject *)self, run_name);  /* may run Python code */
    if (run == NULL) {
        return -1;
    }
    if (STARTED(self)) {
        Py_DECREF(run);
        return 2;
    }
    /* The lookup may have re-parented it: its parent must live in this thread. */
    if (check_switch_allowed(st, self) < 0) {
        Py_DECREF(run);
        return -1;
    }
    GreenletObject *current = G.current;
    self->stack_start = NULL;
    self->stack_stop = (char *)mark;
    self->stack_prev = current->stack_start == NULL ? current->stack_prev : current;
    Py_XSETREF(self->main_greenlet, (GreenletObject *)Py_NewRef(G.main));  /* NULL before */
    hand_over(payload);
    G.target = self;
    int err = g_switchstack();
    if (err == 0) {
        /* Back in the caller's greenlet. The reference in `run` belongs to the new greenlet,
         * which ran in a copy of this very frame and released it there. */
        return 0;
    }
    if (err < 0) {
        self->stack_stop = NULL;  /* never started after all */
        Py_CLEAR(self->main_greenlet);
        Py_DECREF(run);
        return -1;
    }

    /* -- the new greenlet, on this stack, below `mark` -- */
    PC_UNPOISON_BELOW(mark);
    self->stack_start = (char *)1;
    /* Take the payload before any Python code can run here: that code may switch, and the
     * switch state is then reused. */
    PyObject *args = G.args, *kwargs = G.kwargs, *exc = G.exc;
    GreenletObject *origin = G.origin;
    G.args = G.kwargs = G.exc = NULL;
    G.origin = G.target = NULL;
    PyThreadState *ts = PyThreadState_Get();
    pc_pystate_root root;  /* lives as long as the greenlet runs: this frame is never left */
    pc_pystate_start(ts, &root, &self->py);
    /* A started greenlet has no run attribute. Cleared only now, in the greenlet's own state:
     * dropping it may run a __del__, which may even switch away and back. */
    Py_CLEAR(self->run);
    PyObject *result;
    if (call_trace(exc ? "throw" : "switch", origin, self) < 0) {
        result = NULL;
    }
    else if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);  /* thrown before it ran */
        result = NULL;
    }
    else {
        /* The call's references live in the greenlet, not in this C frame, while it runs: if the
         * greenlet is freed without finishing (its thread has ended), greenlet_clear drops them. */
        self->call[0] = run;
        self->call[1] = args;
        self->call[2] = kwargs;
        run = args = kwargs = NULL;
        Py_CLEAR(origin);
        result = PyObject_Call(self->call[0], self->call[1], self->call[2]);
        for (int i = 0; i < 3; i++) {
            Py_CLEAR(self->call[i]);
        }
    }
    Py_XDECREF(origin);
    Py_XDECREF(exc);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(run);
    /* greenlet hands a GreenletExit to the parent as the bare instance, not a 1-tuple of
     * arguments: a started parent's switch() returns it, an unstarted parent's run() is called
     * with no arguments at all (the parent that takes it: the nearest one that is not dead) */
    int by_exit = result == NULL && PyErr_ExceptionMatches(st->GreenletExit);
    result = g_handle_exit(st, result);

    /* dead: hand the result (or exception) to the nearest parent that takes it */
    self->stack_start = NULL;
    pc_pystate_finish(&self->py, ts);
    for (GreenletObject *p = self->parent; p != NULL; p = p->parent) {
        PyObject *pass = result == NULL ? NULL
                         : by_exit ? exit_value_args(p, result)
                         : PyTuple_Pack(1, result);
        Py_CLEAR(result);
        PyObject *r = g_switch(st, p, pass, NULL);
        /* only reached if the switch failed (the parent is on another thread, ...) */
        Py_XDECREF(r);
        result = NULL;
    }
    PyErr_WriteUnraisable((PyObject *)self);
    Py_FatalError("pyconc.greenlet: a dead greenlet could not switch to any parent");
    return -1;
}

/* -- the type --------------------------------------------------------------------------------- */

/* Is this greenlet, now, an object the cyclic GC may collect? Not while it is suspended
 * (active, not main) in a live thread: collecting it would mean killing it, which means switching
 * stacks in the middle of a collection, whose working lists have their heads in C-stack locals
 * that the switch swaps out. So, as with greenlet, a cycle through a suspended greenlet is kept
 * until the cycle is broken (or the greenlet finishes); a greenlet whose thread has ended can
 * never run again and is collectable.
 *
 * Except in that thread itself: the thread is marked ended as its thread state is cleared
 * (on_thread_state_clear), and the rest of that clearing (thread-locals, the context) may run
 * Python code and a collection in that thread, where G.main is still this greenlet's main
 * greenlet and greenlet_finalize would kill it, switching stacks inside the collection (which
 * crashed the collector). So, as with greenlet, whose thread state lives until then, a
 * suspended greenlet is collectable only in other threads once its thread has ended; in its own
 * thread it can still be killed, by its last reference going away, as in greenlet. */
static int
greenlet_is_gc(GreenletObject *self)
{
    return self->is_main || !ACTIVE(self)
           || (thread_exited(self) && self->main_greenlet != G.main);
}

static int
greenlet_traverse(GreenletObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->run);
    Py_VISIT(self->parent);
    Py_VISIT(self->main_greenlet);
    Py_VISIT(self->deleteme);
    Py_VISIT(self->dict);
    if (self != G.current) {
        for (int i = 0; i < 3; i++) {
            Py_VISIT(self->call[i]);
        }
        return pc_pystate_traverse(&self->py, visit, arg);
    }
    return 0;
}

static int
greenlet_clear(GreenletObject *self)
{
    /* A suspended greenlet is killed by tp_finalize before the collector clears it. */
    Py_CLEAR(self->run);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->main_greenlet);
    Py_CLEAR(self->deleteme);
    Py_CLEAR(self->dict);
    if (self != G.current) {
        pc_pystate_clear(&self->py, !self->is_main);
        for (int i = 0; i < 3; i++) {
            Py_CLEAR(self->call[i]);
        }
    }
    return 0;
}

/* A suspended greenlet that is about to be freed is killed: GreenletExit is raised in it, its
 * finally blocks run, and control comes back here (its parent is set to the caller). A greenlet
 * of another thread cannot be switched to; it is freed without running its code. One that
 * catches GreenletExit and switches away, unreferenced, is reported and kept alive for good, as
 * greenlet does ("GreenletExit did not kill"): it can never be switched to again, and freeing it
 * would free the frames it is suspended in. */
static void
greenlet_finalize(GreenletObject *self)
{
    if (!ACTIVE(self) || self->is_main || self == G.current) {
        return;
    }
    GreenletObject *owner = self->main_greenlet;  /* set: it has started */
    if (owner != G.main || G.main == NULL) {
        /* Released in another thread. While its own thread lives, it is killed there, at that
         * thread's next greenlet operation: the queue resurrects it until then. A greenlet of
         * an ended thread is freed without running its code. */
        if (owner != NULL && !thread_exited(owner)) {
            if (owner->deleteme == NULL) {
                owner->deleteme = PyList_New(0);
            }
            if (owner->deleteme == NULL || PyList_Append(owner->deleteme, (PyObject *)self) < 0) {
                PyErr_Clear();
            }
        }
        return;
    }
    if (G.current == NULL) {
        return;
    }
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    /* The kill comes back here; afterwards the greenlet has its own parent again (it may have
     * caught GreenletExit and lived on). */
    GreenletObject *original_parent = self->parent;
    self->parent = (GreenletObject *)Py_NewRef(G.current);
    PyObject *exit = PyObject_CallNoArgs(st->GreenletExit);
    PyObject *r = exit ? throw_into(st, self, exit) : NULL;
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(r);
    Py_XSETREF(self->parent, original_parent);
    if (Py_REFCNT(self) == 1 && ACTIVE(self)) {
        /* Not resurrected (the one reference is the finalizer's), yet not dead. */
        Py_INCREF(self);  /* leaked on purpose, see above */
        PyObject *f = PySys_GetObject("stderr");  /* borrowed */
        if (f != NULL && f != Py_None) {
            Py_INCREF(f);
            if (PyFile_WriteString("GreenletExit did not kill ", f) < 0 ||
                    PyFile_WriteObject((PyObject *)self, f, 0) < 0 ||
                    PyFile_WriteString("\n", f) < 0) {
                PyErr_Clear();
            }
            Py_DECREF(f);
        }
    }
    PyErr_Restore(et, ev, etb);
}

static void
greenlet_dealloc(GreenletObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        /* Resurrected: it caught GreenletExit and switched away, or it waits in its thread's
         * queue. When its last reference goes again, it must be finalized (killed) again;
         * CPython finalizes an object once unless told otherwise. */
        if (ACTIVE(self)) {
            pc_pystate_unmark_finalized((PyObject *)self);
        }
        return;
    }
    if (ACTIVE(self) && !self->is_main && self != G.current) {
        /* A subclass instance that survived its first kill: the subclass's deallocator saw it
         * as finalized already and skipped tp_finalize. Kill it here (its __dict__ is gone). */
        Py_SET_REFCNT(self, 1);
        greenlet_finalize(self);
        Py_SET_REFCNT(self, Py_REFCNT(self) - 1);
        if (Py_REFCNT(self) > 0) {
            /* It lives on (queued for its thread, or reported as not killed). The subclass's
             * deallocator untracked it; its type reference stays (this type is a heap type, so
             * that deallocator leaves the type's reference to this function). */
            if (!PyObject_GC_IsTracked((PyObject *)self)) {
                PyObject_GC_Track(self);
            }
            return;
        }
    }
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    /* The type's clear, not ours alone: C subtypes (the hub, gevent's Greenlet) keep data after
     * ours and drop it in theirs, which chain to greenlet_clear. (A Python subclass's tp_free is
     * always PyObject_GC_Del, so a subtype cannot count on its tp_free being called.) */
    if (tp->tp_clear != NULL) {
        tp->tp_clear((PyObject *)self);
    }
    else {
        greenlet_clear(self);
    }
    if (self->is_main) {
        total_main_greenlets--;
    }
    PyMem_RawFree(self->stack_copy);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
greenlet_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (type->tp_flags & Py_TPFLAGS_IS_ABSTRACT) {
        /* object.__new__ raises the standard "Can't instantiate abstract class" TypeError */
        PyObject *empty = PyTuple_New(0);
        PyObject *r = empty ? PyBaseObject_Type.tp_new(type, empty, NULL) : NULL;
        Py_XDECREF(empty);
        Py_XDECREF(r);
        if (r != NULL) {
            PyErr_SetString(PyExc_TypeError, "cannot instantiate an abstract greenlet class");
        }
        return NULL;
    }
    pc_state *st = pc_state_of_type(type);
    if (st == NULL || current_greenlet(st) == NULL) {
        return NULL;
    }
    GreenletObject *self = greenlet_alloc(type);
    if (self != NULL) {
        self->parent = (GreenletObject *)Py_NewRef(G.current);
    }
    return (PyObject *)self;
}

static int set_parent(GreenletObject *self, PyObject *value);

static int
greenlet_init(GreenletObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:green", kwlist, &run, &parent)) {
        return -1;
    }
    if (parent != NULL && parent != Py_None && set_parent(self, parent) < 0) {
        return -1;
    }
    if (run != NULL) {  /* run=None is stored as None, as greenlet does */
        if (STARTED(self)) {
            PyErr_SetString(PyExc_AttributeError,
                            "run cannot be set after the start of the greenlet");
            return -1;
        }
        Py_XSETREF(self->run, Py_NewRef(run));
    }
    return 0;
}

/* -- methods ----------------------------------------------------------------------------------- */

static PyObject *
greenlet_switch(GreenletObject *self, PyObject *args, PyObject *kwargs)
{
    return g_switch(NULL, self, Py_NewRef(args), Py_XNewRef(kwargs));
}

/* Raises exc (an instance, stolen) in self at its switch point and switches to it. A greenlet
 * that is not started yet dies at once: the exception goes to its parent (GreenletExit as a
 * value). A dead greenlet passes it on to its nearest live parent. */
static PyObject *
throw_into(pc_state *st, GreenletObject *self, PyObject *exc)
{
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    if (STARTED(self) && !ACTIVE(self)) {
        /* dead: like greenlet, GreenletExit into a dead greenlet comes back as a value; the
         * nearest live parent gets it, and one not started yet has its run() called with no
         * arguments, as when a greenlet dies of GreenletExit (g_initialstub) */
        PyObject *r = g_handle_exit(st, NULL);
        if (r != NULL) {
            PyObject *pass = exit_value_args(self, r);
            Py_DECREF(r);
            return pass ? g_switch(st, self, pass, NULL) : NULL;
        }
    }
    return g_switch(st, self, NULL, NULL);
}

static PyObject *
greenlet_throw(GreenletObject *self, PyObject *args)
{
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    PyObject *typ = st->GreenletExit, *val = NULL, *tb = NULL;
    if (!PyArg_ParseTuple(args, "|OOO:throw", &typ, &val, &tb)) {
        return NULL;
    }
    if (tb == Py_None) {
        tb = NULL;
    }
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    PyObject *exc;
    if (PyExceptionClass_Check(typ)) {
        if (val != NULL && val != Py_None && PyObject_TypeCheck(val, (PyTypeObject *)typ)) {
            exc = Py_NewRef(val);
        }
        else if (val == NULL || val == Py_None) {
            exc = PyObject_CallNoArgs(typ);
        }
        else if (PyTuple_Check(val)) {
            exc = PyObject_Call(typ, val, NULL);
        }
        else {
            exc = PyObject_CallOneArg(typ, val);
        }
        if (exc == NULL) {
            return NULL;
        }
        if (!PyExceptionInstance_Check(exc)) {
            PyErr_Format(PyExc_TypeError, "calling %R should have returned an instance of "
                         "BaseException, not %s", typ, Py_TYPE(exc)->tp_name);
            Py_DECREF(exc);
            return NULL;
        }
    }
    else if (PyExceptionInstance_Check(typ)) {
        if (val != NULL && val != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate value");
            return NULL;
        }
        exc = Py_NewRef(typ);
    }
    else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                     Py_TYPE(typ)->tp_name);
        return NULL;
    }
    if (tb != NULL && PyException_SetTraceback(exc, tb) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return throw_into(st, self, exc);
}

/* A started greenlet whose thread has ended can never run again. When that is noticed (dead,
 * repr), it is made dead, as greenlet does: its frames are unwound without running any code and
 * its saved stack is dropped. */
static void
forget_if_thread_exited(GreenletObject *self)
{
    if (self->is_main || !ACTIVE(self) || !thread_exited(self)) {
        return;
    }
    self->stack_start = NULL;  /* dead from here on, before any decref can run code */
    PyMem_RawFree(self->stack_copy);
    self->stack_copy = NULL;
    self->stack_saved = 0;
    pc_pystate_clear(&self->py, 1);
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(self->call[i]);
    }
}

static int
greenlet_bool(GreenletObject *self)
{
    return ACTIVE(self);
}

static PyObject *
greenlet_get_dead(GreenletObject *self, void *Py_UNUSED(c))
{
    if (self->is_main) {
        return PyBool_FromLong(thread_exited(self));  /* a main greenlet dies with its thread */
    }
    forget_if_thread_exited(self);
    return PyBool_FromLong(STARTED(self) && !ACTIVE(self));
}

static PyObject *
greenlet_get_run(GreenletObject *self, void *Py_UNUSED(c))
{
    if (self->is_main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return NULL;
    }
    if (self->run == NULL) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    return Py_NewRef(self->run);
}

static int
greenlet_set_run(GreenletObject *self, PyObject *value, void *Py_UNUSED(c))
{
    if (self->is_main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return -1;
    }
    if (STARTED(self)) {
        PyErr_SetString(PyExc_AttributeError,
                        "run cannot be set after the start of the greenlet");
        return -1;
    }
    Py_XSETREF(self->run, Py_XNewRef(value));
    return 0;
}

static PyObject *
greenlet_get_parent(GreenletObject *self, void *Py_UNUSED(c))
{
    if (self->parent == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef((PyObject *)self->parent);
}

static int
set_parent(GreenletObject *self, PyObject *value)
{
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (self->is_main) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main greenlet");
        return -1;
    }
    if (!PyObject_TypeCheck(value, st->Greenlet_Type)) {
        PyErr_Format(PyExc_TypeError, "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    /* As greenlet: the thread of the new parent chain is that of its root's main greenlet. */
    GreenletObject *chain_main = NULL;
    for (GreenletObject *p = (GreenletObject *)value; p != NULL; p = p->parent) {
        if (p == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
        chain_main = p->is_main ? p : p->main_greenlet;
    }
    if (chain_main == NULL) {
        PyErr_SetString(PyExc_ValueError, "parent must not be garbage collected");
        return -1;
    }
    if (STARTED(self) && chain_main != self->main_greenlet) {
        PyErr_SetString(PyExc_ValueError, "parent cannot be on a different thread");
        return -1;
    }
    Py_XSETREF(self->parent, (GreenletObject *)Py_NewRef(value));
    return 0;
}

static int
greenlet_set_parent(GreenletObject *self, PyObject *value, void *Py_UNUSED(c))
{
    return set_parent(self, value);
}

static PyObject *
greenlet_get_frame(GreenletObject *self, void *Py_UNUSED(c))
{
    PyFrameObject *top = pc_pystate_top_frame(&self->py);
    if (ACTIVE(self) && self != G.current && top != NULL) {
        return Py_NewRef((PyObject *)top);
    }
    Py_RETURN_NONE;
}

static PyObject *
greenlet_get_context(GreenletObject *self, void *Py_UNUSED(c))
{
    PyObject *ctx;
    if (self == G.current) {
        ctx = pc_pystate_current_context(PyThreadState_Get());
    }
    else if (self->running) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot get context of a greenlet that is running in a different "
                        "thread");
        return NULL;
    }
    else {
        ctx = pc_pystate_context(&self->py);  /* suspended, not started or dead */
    }
    return Py_NewRef(ctx ? ctx : Py_None);
}

static int
greenlet_set_context(GreenletObject *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "can't delete context attribute");
        return -1;
    }
    if (value == Py_None) {
        value = NULL;
    }
    else if (!PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet context must be a contextvars.Context or None");
        return -1;
    }
    if (self == G.current) {
        pc_pystate_set_current_context(PyThreadState_Get(), Py_XNewRef(value));
        return 0;
    }
    if (self->running) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot set context of a greenlet that is running in a different "
                        "thread");
        return -1;
    }
    pc_pystate_set_context(&self->py, Py_XNewRef(value));
    return 0;
}

static PyObject *
greenlet_repr(GreenletObject *self)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *mod = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__module__");
    if (mod == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    forget_if_thread_exited(self);
    int exited = thread_exited(self);
    const char *state = exited ? " (thread exited) dead"
                        : self == G.current ? " current active started"
                        : ACTIVE(self) ? " suspended active started"
                        : STARTED(self) ? " dead" : " pending";
    char otid[32];
    snprintf(otid, sizeof(otid), "0x%lx", self->thread_ident);  /* FromFormat has no %lx */
    PyObject *r = PyUnicode_FromFormat("<%U.%U object at %p (otid=%s)%s%s>", mod, name, self,
                                       otid, state, self->is_main && !exited ? " main" : "");
    Py_DECREF(name);
    Py_DECREF(mod);
    return r;
}

static PyMethodDef greenlet_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))greenlet_switch, METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("switch(*args, **kwargs)\n\nSwitch execution to this greenlet, passing the "
               "arguments (to run() if it has not started, else as the result of the switch() "
               "it is suspended in).")},
    {"throw", (PyCFunction)greenlet_throw, METH_VARARGS,
     PyDoc_STR("throw(typ=GreenletExit, val=None, tb=None)\n\nSwitch to this greenlet and "
               "raise the exception there.")},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyObject *
greenlet_get_stack_saved(GreenletObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->stack_saved);
}

static PyGetSetDef greenlet_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_stack_saved", (getter)greenlet_get_stack_saved, NULL,
     PyDoc_STR("Bytes of this greenlet's stack currently saved on the heap."), NULL},
    {"run", (getter)greenlet_get_run, (setter)greenlet_set_run, NULL, NULL},
    {"parent", (getter)greenlet_get_parent, (setter)greenlet_set_parent, NULL, NULL},
    {"dead", (getter)greenlet_get_dead, NULL, NULL, NULL},
    {"gr_frame", (getter)greenlet_get_frame, NULL, NULL, NULL},
    {"gr_context", (getter)greenlet_get_context, (setter)greenlet_set_context, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef greenlet_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(GreenletObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(GreenletObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot greenlet_slots[] = {
    {Py_tp_dealloc, greenlet_dealloc},
    {Py_tp_finalize, greenlet_finalize},
    {Py_tp_traverse, greenlet_traverse},
    {Py_tp_clear, greenlet_clear},
    {Py_tp_is_gc, greenlet_is_gc},
    {Py_tp_new, greenlet_new},
    {Py_tp_init, greenlet_init},
    {Py_tp_repr, greenlet_repr},
    {Py_nb_bool, greenlet_bool},
    {Py_tp_methods, greenlet_methods},
    {Py_tp_getset, greenlet_getset},
    {Py_tp_members, greenlet_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "greenlet(run=None, parent=None)\n\nA coroutine with its own C stack, a drop-in for "
        "greenlet.greenlet.")},
    {0, NULL},
};

static PyType_Spec greenlet_spec = {
    .name = "pyconc.greenlet.greenlet",
    .basicsize = sizeof(GreenletObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = greenlet_slots,
};

/* -- module functions --------------------------------------------------------------------------- */

PyObject *
pc_greenlet_getcurrent(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    if (pc_pystate_is_finalizing()) {
        /* as greenlet: finalizers that run during interpreter shutdown get an error, not a
         * greenlet whose thread state may already be half torn down */
        PyErr_SetString(PyExc_RuntimeError,
                        "greenlet.getcurrent() is not available while the interpreter is "
                        "finalizing");
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    GreenletObject *g = current_greenlet(st);
    return g ? Py_NewRef((PyObject *)g) : NULL;
}

PyObject *
pc_greenlet_settrace(PyObject *module, PyObject *callback)
{
    PyObject *old = G.trace ? G.trace : Py_NewRef(Py_None);
    G.trace = callback == Py_None ? NULL : Py_NewRef(callback);
    return old;
}

PyObject *
pc_greenlet_gettrace(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(G.trace ? G.trace : Py_None);
}

PyObject *
pc_greenlet_total_main_greenlets(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(total_main_greenlets);
}

PyObject *
pc_greenlet_pending_cleanups(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(__atomic_load_n(&pending_cleanups, __ATOMIC_RELAXED));
}

int
pc_greenlet_init_types(PyObject *module, pc_state *st)
{
    st->GreenletExit = PyErr_NewExceptionWithDoc(
        "pyconc.greenlet.GreenletExit", "This special exception does not propagate to the "
        "parent greenlet; it can be used to kill a single greenlet.", PyExc_BaseException, NULL);
    st->GreenletError = st->GreenletExit ? PyErr_NewExceptionWithDoc(
        "pyconc.greenlet.error", "A greenlet operation failed.", PyExc_Exception, NULL) : NULL;
    if (st->GreenletError == NULL ||
            PyModule_AddObjectRef(module, "GreenletExit", st->GreenletExit) < 0 ||
            PyModule_AddObjectRef(module, "GreenletError", st->GreenletError) < 0) {
        return -1;
    }
    if (pc_add_type(module, &greenlet_spec, NULL, &st->Greenlet_Type) < 0) {
        return -1;
    }
    /* Like greenlet's type: the module's names are class attributes too (greenlet.getcurrent is
     * used as such, e.g. by greenlet's own tests). Set before anyone can see the type. */
    static const char *const names[] = {"getcurrent", "settrace", "gettrace"};
    PyObject *dict = st->Greenlet_Type->tp_dict;
    for (int i = 0; i < 3; i++) {
        PyObject *f = PyObject_GetAttrString(module, names[i]);
        if (f == NULL || PyDict_SetItemString(dict, names[i], f) < 0) {
            Py_XDECREF(f);
            return -1;
        }
        Py_DECREF(f);
    }
    if (PyDict_SetItemString(dict, "GreenletExit", st->GreenletExit) < 0 ||
            PyDict_SetItemString(dict, "error", st->GreenletError) < 0) {
        return -1;
    }
    PyType_Modified(st->Greenlet_Type);
    return 0;
}

/* -- the C interface (greenlet.h) ------------------------------------------------------------ */

PyObject *
pc_greenlet_current_or_null(void)
{
    return (PyObject *)G.current;
}

PyObject *
pc_greenlet_current(pc_state *st)
{
    return (PyObject *)current_greenlet(st);
}

PyObject *
pc_greenlet_main(void)
{
    return (PyObject *)G.main;
}

PyObject *
pc_greenlet_new(pc_state *st, PyTypeObject *type, PyObject *run, PyObject *parent)
{
    if (current_greenlet(st) == NULL) {
        return NULL;
    }
    GreenletObject *g = greenlet_alloc(type != NULL ? type : st->Greenlet_Type);
    if (g == NULL) {
        return NULL;
    }
    g->parent = (GreenletObject *)Py_NewRef(parent != NULL ? parent : (PyObject *)G.current);
    g->run = Py_XNewRef(run);
    return (PyObject *)g;
}

PyObject *
pc_greenlet_switch(PyObject *target, PyObject *args, PyObject *kwargs)
{
    return g_switch(NULL, (GreenletObject *)target, args, kwargs);
}

PyObject *
pc_greenlet_throw(PyObject *target, PyObject *exc)
{
    pc_state *st = pc_state_of_type(Py_TYPE(target));
    if (st == NULL) {
        return NULL;
    }
    return throw_into(st, (GreenletObject *)target, Py_NewRef(exc));
}

int
pc_greenlet_is_active(PyObject *g)
{
    return ACTIVE((GreenletObject *)g);
}

int
pc_greenlet_is_dead(PyObject *g)
{
    GreenletObject *self = (GreenletObject *)g;
    return STARTED(self) && !ACTIVE(self);
}

int
pc_greenlet_is_started(PyObject *g)
{
    return STARTED((GreenletObject *)g);
}

PyObject *
pc_greenlet_parent(PyObject *g)
{
    return (PyObject *)((GreenletObject *)g)->parent;
}

void
pc_greenlet_set_new_parent(PyObject *g, PyObject *parent)
{
    GreenletObject *self = (GreenletObject *)g;
    assert(!STARTED(self));
    Py_XSETREF(self->parent, (GreenletObject *)Py_NewRef(parent));
}

Py_ssize_t
pc_greenlet_basicsize(pc_state *st)
{
    return st->Greenlet_Type->tp_basicsize;
}
