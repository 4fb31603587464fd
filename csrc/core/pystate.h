/* pystate.h -- the interpreter state a greenlet switch saves and restores, CPython 3.11 to 3.14.
 *
 * This file and pystate.c are the only places in pyconc that touch CPython-private thread-state
 * and frame fields. pystate.c has one section per CPython version where the layouts differ; an
 * unsupported version is an #error, never silent misbehaviour. greenlet.c uses only the functions
 * below and the pc_pystate / pc_pystate_root types, whose fields it never reads.
 *
 * Saved and restored on every switch, for every version: the interpreter frame being executed
 * (the top of the greenlet's frame chain), the frame data stack (chunk, top, limit), the Python
 * recursion depth, the exception stack (exc_info pointer and the thread's exc_state item) and the
 * contextvars context. Per version besides:
 *   3.11  the _PyCFrame pointer (a struct on the C stack, which stack copying puts back at the same
 *         address) and its tracing flag; the trashcan nesting.
 *   3.12  the _PyCFrame pointer (no tracing flag: sys.monitoring); the C recursion counter; the
 *         trashcan nesting (ts->trash.delete_nesting).
 *   3.13  no _PyCFrame (ts->current_frame); the C recursion counter.
 *   3.14  the current tier-2 executor. The C recursion check compares the machine stack pointer
 *         with per-thread bounds, which hold for every greenlet: all of them run on the thread's
 *         own stack.
 * Not swapped, being per thread: the exception being raised (the switch passes exceptions itself),
 * trace and profile functions and sys.monitoring state, the trashcan's list of deferred
 * deallocations (3.13+: ts->delete_later; any greenlet of the thread may finish it), the data
 * stack's spare chunk (3.13.x+: datastack_cached_chunk), critical sections (free-threaded builds
 * only; those are refused below).
 *
 * C-stack frames (3.12+). The eval loop links a frame that lives in its own C stack frame into
 * the frame chain at every entry from C. While a greenlet is suspended,
 * those bytes may belong to another greenlet (or sit in its heap copy), so a walk of the chain from
 * one of its frame objects (f_back, tracebacks, unwinding) must not step on them: when a greenlet
 * is switched away from, each of its heap frames whose `previous` is such a frame is relinked past
 * it, and the real links are put back when it is switched to (the list of relinks is kept in the
 * saved state).
 */
#ifndef PYCONC_PYSTATE_H
#define PYCONC_PYSTATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030F0000
#error "pyconc: csrc/core/pystate.has no section for this CPython version (3.11 to 3.14 are supported)"
#endif
#ifdef Py_GIL_DISABLED
#error "pyconc: free-threaded CPython builds are not supported yet (greenlet state is GIL-protected)"
#endif

struct _PyInterpreterFrame;

/* One relinked frame (3.12+): frame->previous is put back to `previous` on restore. */
typedef struct {
    struct _PyInterpreterFrame *frame;
    struct _PyInterpreterFrame *previous;
} pc_pystate_relink;

typedef struct {
    struct _PyInterpreterFrame *current_frame;  /* the thread's current frame, verbatim */
    PyFrameObject *top_frame;          /* strong: first complete frame's object; gr_frame */
    int py_recursion_depth;            /* limit - remaining */
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyStackChunk *own_root;           /* the root chunk pyconc allocated for it (pystate.c) */
    _PyErr_StackItem *exc_info;        /* NULL: the thread's own exc_state */
    _PyErr_StackItem exc_state;        /* exc_value is a strong reference */
    PyObject *context;                 /* strong reference or NULL */
#if PY_VERSION_HEX < 0x030D0000
    _PyCFrame *cframe;                 /* tstate->cframe while this greenlet runs */
#endif
#if PY_VERSION_HEX < 0x030C0000
    int use_tracing;
#endif
#if PY_VERSION_HEX < 0x030D0000
    int trash_delete_nesting;
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
    int c_recursion_remaining;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    PyObject *current_executor;        /* borrowed, as the thread state holds it */
#endif
#if PY_VERSION_HEX >= 0x030C0000
    struct _PyInterpreterFrame *first_frame;  /* first heap frame of the chain (unwinding) */
    pc_pystate_relink *relinks;        /* PyMem_Raw array, kept for the next switch */
    int nrelinks, relinks_cap;
#endif
} pc_pystate;

/* The part of a greenlet's interpreter state that lives on its C stack, in the frame of the
 * function that starts it (which is never left while the greenlet runs): the root _PyCFrame before
 * 3.13, nothing after. */
typedef struct {
#if PY_VERSION_HEX < 0x030D0000
    _PyCFrame cframe;
#else
    char unused;
#endif
} pc_pystate_root;

/* Called on the greenlet that is switched away from: moves the live state into st. Creates the
 * top frame object with the GC disabled, so no finalizer can switch in the middle. Returns 0, or
 * -1 with MemoryError set and nothing changed. */
int pc_pystate_save(pc_pystate *st, PyThreadState *ts);

/* Called on the greenlet switched to: moves st back into the thread state. */
void pc_pystate_restore(pc_pystate *st, PyThreadState *ts);

/* Sets up the thread state for a greenlet that starts now: a fresh root (the caller's local, which
 * must outlive the greenlet's run), no current frame, an empty data stack (a cached root chunk, or
 * CPython allocates one on first use), no exception being handled, and the context preset on the
 * greenlet before it started (moved out of preset), else none. The recursion depths are
 * inherited: the new greenlet's C stack continues the current one. */
void pc_pystate_start(PyThreadState *ts, pc_pystate_root *root, pc_pystate *preset);

/* When a greenlet's run() has returned: frees its data-stack chunks and clears what it held (in
 * the thread state and in st, its saved state), so that switching away saves nothing of it. */
void pc_pystate_finish(pc_pystate *st, PyThreadState *ts);

/* Drops what a saved state owns, for a greenlet that dies without running again. With unwind, its
 * frames are unwound as if they returned (a frame object still referenced elsewhere keeps a copy
 * of its frame's locals) and its data-stack chunks freed; without (a thread's main greenlet,
 * whose frames and chunks belong to the thread state), only its references are dropped. */
void pc_pystate_clear(pc_pystate *st, int unwind);

/* Lets CPython call tp_finalize on op again when it is next about to be freed. */
void pc_pystate_unmark_finalized(PyObject *op);

/* GC support for a saved state. */
int pc_pystate_traverse(pc_pystate *st, visitproc visit, void *arg);

/* 1 while the interpreter is finalizing (a private API before 3.13, public from 3.13). */
int pc_pystate_is_finalizing(void);

/* Nonzero if a signal arrived that Python's handlers have not run for yet. Needs no GIL. */
int pc_pystate_signal_pending(void);

/* Nonzero in the interpreter's main thread (the one that runs Python signal handlers). */
int pc_pystate_is_main_thread(void);

/* 1 while some thread holds the GIL of ts's interpreter (ts: a thread state of it that does not
 * hold the GIL now). A relaxed load, for spinning; no GIL needed. */
int pc_pystate_gil_held(PyThreadState *ts);
/* Threads waiting to take the GIL (on its condition variable), -1 when it cannot be told. */
int pc_pystate_gil_waiters(PyThreadState *ts);

/* The frame object of a suspended greenlet's innermost complete frame (borrowed, may be NULL). */
static inline PyFrameObject *pc_pystate_top_frame(pc_pystate *st) { return st->top_frame; }

/* The context of a saved state or of the running thread (borrowed, may be NULL), and setters that
 * steal ctx (NULL: none). */
static inline PyObject *pc_pystate_context(pc_pystate *st) { return st->context; }
static inline PyObject *pc_pystate_current_context(PyThreadState *ts) { return ts->context; }
static inline void pc_pystate_set_context(pc_pystate *st, PyObject *ctx)
{
    Py_XSETREF(st->context, ctx);
}
void pc_pystate_set_current_context(PyThreadState *ts, PyObject *ctx);

#endif /* PYCONC_PYSTATE_H */
