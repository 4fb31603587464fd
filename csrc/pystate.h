/* pystate.h -- the interpreter state a greenlet switch saves and restores.
 *
 * This file and pystate.c are the only places in pyconc that touch CPython-private thread-state
 * fields. Each CPython version has its own section in pystate.c; an unsupported version is an
 * #error there, never silent misbehaviour.
 *
 * CPython 3.11: the _PyCFrame pointer (the struct lives on the C stack, which stack copying puts
 * back at the same address) and its current frame and tracing flag; the recursion depth; the
 * frame data stack (chunk, top, limit); the exception stack (exc_info pointer and the exc_state
 * item); the contextvars context; the trashcan nesting. Not swapped: the exception being raised
 * (curexc_*), the thread's trace/profile functions.
 */
#ifndef PYCONC_PYSTATE_H
#define PYCONC_PYSTATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000

typedef struct {
    _PyCFrame *cframe;                 /* tstate->cframe while this greenlet runs */
    struct _PyInterpreterFrame *current_frame;
    int use_tracing;
    int recursion_depth;               /* limit - remaining */
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyErr_StackItem *exc_info;        /* NULL: the thread's own exc_state */
    _PyErr_StackItem exc_state;        /* exc_value is a strong reference */
    PyObject *context;                 /* strong reference or NULL */
    PyFrameObject *top_frame;          /* strong: the frame that called switch(); gr_frame */
    int trash_delete_nesting;
} pc_pystate;

#else
#error "pyconc: csrc/pystate has no section for this CPython version yet (3.11 is supported)"
#endif

/* Called on the greenlet that is switched away from: moves the live state into st. Creates the
 * top frame object with the GC disabled, so no finalizer can switch in the middle. */
void pc_pystate_save(pc_pystate *st, PyThreadState *ts);

/* Called on the greenlet switched to: moves st back into the thread state. */
void pc_pystate_restore(pc_pystate *st, PyThreadState *ts);

/* Sets up the thread state for a greenlet that starts now: a fresh cframe (the caller's local,
 * which must outlive the greenlet's run), an empty data stack (a cached root chunk, or CPython
 * allocates one on first use), no exception being handled, and the context preset on the
 * greenlet before it started (moved out of preset), else none. The recursion depth is
 * inherited. */
void pc_pystate_start(PyThreadState *ts, _PyCFrame *fresh, pc_pystate *preset);

/* When a greenlet's run() has returned: frees its data-stack chunks and clears what it held, so
 * that switching away saves nothing of it. */
void pc_pystate_finish(PyThreadState *ts);

/* Drops what a saved state owns, for a greenlet that dies without running again. With unwind, its
 * frames are unwound as if they returned (a frame object still referenced elsewhere keeps a copy
 * of its frame's locals) and its data-stack chunks freed; without (a thread's main greenlet,
 * whose frames and chunks belong to the thread state), only its references are dropped. */
void pc_pystate_clear(pc_pystate *st, int unwind);

/* Lets CPython call tp_finalize on op again when it is next about to be freed. */
void pc_pystate_unmark_finalized(PyObject *op);

/* GC support for a saved state. */
int pc_pystate_traverse(pc_pystate *st, visitproc visit, void *arg);

/* 1 while the interpreter is finalizing (a private API on 3.11, public from 3.13). */
int pc_pystate_is_finalizing(void);

/* Nonzero if a signal arrived that Python's handlers have not run for yet. Needs no GIL. */
int pc_pystate_signal_pending(void);

/* Nonzero in the interpreter's main thread (the one that runs Python signal handlers). */
int pc_pystate_is_main_thread(void);

/* The context of a saved state or of the running thread (borrowed, may be NULL). */
static inline PyObject *pc_pystate_context(pc_pystate *st) { return st->context; }
static inline PyObject *pc_pystate_current_context(PyThreadState *ts) { return ts->context; }
void pc_pystate_set_current_context(PyThreadState *ts, PyObject *ctx);  /* steals ctx */

#endif /* PYCONC_PYSTATE_H */
