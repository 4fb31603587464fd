/* pystate.c -- save and restore of interpreter state across greenlet switches, per CPython
 * version. See pystate.h. */
#include "pystate.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000

/* The interpreter frame and frame object layouts (struct _PyInterpreterFrame, struct _frame) and
 * the GC header (see pc_pystate_unmark_finalized) are internal on 3.11; only their definitions are used, no internal function. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "internal/pycore_frame.h"

void
pc_pystate_save(pc_pystate *st, PyThreadState *ts)
{
    /* The frame object first, with the GC off: creating it allocates, and a collection here
     * could run a finalizer that switches greenlets while this switch is half done. */
    int gc_was_enabled = PyGC_Disable();
    st->top_frame = PyThreadState_GetFrame(ts);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    st->cframe = ts->cframe;
    st->current_frame = ts->cframe->current_frame;
    st->use_tracing = ts->cframe->use_tracing;
    st->recursion_depth = ts->recursion_limit - ts->recursion_remaining;
    st->datastack_chunk = ts->datastack_chunk;
    st->datastack_top = ts->datastack_top;
    st->datastack_limit = ts->datastack_limit;
    st->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    st->exc_state = ts->exc_state;          /* moves the reference */
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    st->context = ts->context;              /* moves the reference */
    ts->context = NULL;
    st->trash_delete_nesting = ts->trash_delete_nesting;
}

/* Tracing is a property of the thread: a greenlet resumes with the thread's current setting.
 * Computed as CPython does (_PyThreadState_ResumeTracing), never read through ts->cframe, which
 * during a switch may point into stack memory that now belongs to another greenlet. */
static inline uint8_t
thread_use_tracing(PyThreadState *ts)
{
    return (ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL)) ? 255 : 0;
}

void
pc_pystate_restore(pc_pystate *st, PyThreadState *ts)
{
    ts->cframe = st->cframe;
    ts->cframe->current_frame = st->current_frame;
    ts->cframe->use_tracing = thread_use_tracing(ts);
    ts->recursion_remaining = ts->recursion_limit - st->recursion_depth;
    ts->datastack_chunk = st->datastack_chunk;
    ts->datastack_top = st->datastack_top;
    ts->datastack_limit = st->datastack_limit;
    ts->exc_info = st->exc_info ? st->exc_info : &ts->exc_state;
    Py_XSETREF(ts->exc_state.exc_value, st->exc_state.exc_value);  /* moves it back */
    ts->exc_state.previous_item = st->exc_state.previous_item;
    st->exc_state.exc_value = NULL;
    st->exc_state.previous_item = NULL;
    Py_XSETREF(ts->context, st->context);
    st->context = NULL;
    ts->context_ver++;                      /* invalidates the contextvar caches */
    ts->trash_delete_nesting = st->trash_delete_nesting;
    Py_CLEAR(st->top_frame);
}

/* Data-stack root chunks of finished greenlets, kept for the next ones: CPython gets each chunk
 * from mmap and gives it back with munmap, which would cost a new greenlet microseconds. Per
 * thread, a few of them; only chunks of the standard size are kept. */
#define CHUNK_CACHE 16
#define ROOT_CHUNK_SIZE (16 * 1024)     /* CPython 3.11's DATA_STACK_CHUNK_SIZE */
static _Thread_local _PyStackChunk *chunk_cache[CHUNK_CACHE];
static _Thread_local int chunk_cached = 0;

static void
free_chunk(_PyStackChunk *chunk)
{
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    arena.free(arena.ctx, chunk, chunk->size);
}

void
pc_pystate_start(PyThreadState *ts, _PyCFrame *fresh, pc_pystate *preset)
{
    fresh->use_tracing = thread_use_tracing(ts);
    fresh->previous = &ts->root_cframe;
    fresh->current_frame = NULL;
    ts->cframe = fresh;
    if (chunk_cached > 0) {
        /* Laid out as CPython's push_chunk() lays out a root chunk: the first slot is skipped,
         * so that popping the first frame never pops the root chunk itself. */
        _PyStackChunk *root = chunk_cache[--chunk_cached];
        root->previous = NULL;
        root->top = 0;
        ts->datastack_chunk = root;
        ts->datastack_top = &root->data[1];
        ts->datastack_limit = (PyObject **)((char *)root + root->size);
    }
    else {
        /* CPython allocates a root chunk on the first frame push */
        ts->datastack_chunk = NULL;
        ts->datastack_top = NULL;
        ts->datastack_limit = NULL;
    }
    ts->exc_info = &ts->exc_state;
    Py_CLEAR(ts->exc_state.exc_value);
    ts->exc_state.previous_item = NULL;
    Py_XSETREF(ts->context, preset->context);  /* gr_context set before the start, or none */
    preset->context = NULL;
    ts->context_ver++;
}

void
pc_pystate_finish(PyThreadState *ts)
{
    /* The chunks came from the object arena allocator (CPython's _PyObject_VirtualAlloc, which
     * is not exported); give them back the same way, except a root chunk the cache takes. */
    _PyStackChunk *chunk = ts->datastack_chunk;
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        if (prev == NULL && chunk->size == ROOT_CHUNK_SIZE && chunk_cached < CHUNK_CACHE) {
            chunk_cache[chunk_cached++] = chunk;
        }
        else {
            free_chunk(chunk);
        }
        chunk = prev;
    }
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    Py_CLEAR(ts->exc_state.exc_value);
    /* The context stays: a dead greenlet's gr_context is the one it ran in. */
}

/* A frame object that outlives its interpreter frame gets a copy of it, as CPython does when a
 * frame returns while its frame object is still referenced (frameobject.c, take_ownership). Only
 * the first n slots (locals, cells, free variables and what is known of the value stack) are
 * copied; the frame is unlinked from the frames below it. */
static void
hand_frame_to_object(PyFrameObject *f, _PyInterpreterFrame *frame, int n)
{
    size_t size = (size_t)((char *)&frame->localsplus[n] - (char *)frame);
    _PyInterpreterFrame *copy = (_PyInterpreterFrame *)f->_f_frame_data;
    memcpy(copy, frame, size);
    copy->stacktop = n;
    copy->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    copy->previous = NULL;
    f->f_frame = copy;
    if (!PyObject_GC_IsTracked((PyObject *)f)) {
        PyObject_GC_Track((PyObject *)f);
    }
}

/* Drops what one suspended interpreter frame holds, as CPython's _PyFrame_Clear does when a
 * frame returns. While a frame is calling C code its stacktop is -1 (CPython 3.11 records the
 * value-stack depth only around Python-to-Python calls), so for such a frame the value stack
 * (the callable and arguments of that call) cannot be known and is left alone: a few references
 * leak, never a wrong decref. Locals, cells and free variables are always known. */
static void
clear_suspended_frame(_PyInterpreterFrame *frame)
{
    int n = frame->stacktop >= 0 ? frame->stacktop : frame->f_code->co_nlocalsplus;
    if (frame->frame_obj != NULL) {
        PyFrameObject *f = frame->frame_obj;
        frame->frame_obj = NULL;
        if (Py_REFCNT(f) > 1) {
            hand_frame_to_object(f, frame, n);
            Py_DECREF(f);
            return;
        }
        Py_DECREF(f);
    }
    for (int i = 0; i < n; i++) {
        Py_XDECREF(frame->localsplus[i]);
    }
    Py_XDECREF(frame->f_locals);
    Py_DECREF(frame->f_func);
    Py_DECREF(frame->f_code);
}

void
pc_pystate_clear(pc_pystate *st, int unwind)
{
    if (!unwind) {
        st->current_frame = NULL;
        st->datastack_chunk = NULL;
    }
    /* Detached first: the decrefs below can run arbitrary code, including the collector, which
     * must find an empty state here. */
    _PyInterpreterFrame *frame = st->current_frame;
    _PyStackChunk *chunk = st->datastack_chunk;
    st->current_frame = NULL;
    st->datastack_chunk = NULL;
    st->datastack_top = NULL;
    st->datastack_limit = NULL;
    Py_CLEAR(st->top_frame);
    /* A greenlet that dies without running again (its thread has ended, or the interpreter is
     * going away): its frames are unwound from the top, as if each returned. */
    while (frame != NULL) {
        _PyInterpreterFrame *prev = frame->previous;
        if (frame->owner == FRAME_OWNED_BY_THREAD) {
            clear_suspended_frame(frame);
        }
        else {
            frame->previous = NULL;  /* a generator's frame: the generator owns it */
        }
        frame = prev;
    }
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        free_chunk(chunk);
        chunk = prev;
    }
    Py_CLEAR(st->exc_state.exc_value);
    Py_CLEAR(st->context);
}

void
pc_pystate_unmark_finalized(PyObject *op)
{
    /* CPython runs tp_finalize once per object (the FINALIZED bit of its GC header); a greenlet
     * that survived being killed must be killed again when its last reference goes. */
    /* 3.11's GC header (internal/pycore_gc.h, which clashes with the public headers when
     * included) sits right before the object: {uintptr_t _gc_next, _gc_prev}, and bit 0 of
     * _gc_prev is _PyGC_PREV_MASK_FINALIZED. */
    if (PyObject_IS_GC(op)) {
        uintptr_t *gc_prev = (uintptr_t *)op - 1;
        *gc_prev &= ~(uintptr_t)1;
    }
}

int
pc_pystate_traverse(pc_pystate *st, visitproc visit, void *arg)
{
    Py_VISIT(st->top_frame);
    Py_VISIT(st->exc_state.exc_value);
    Py_VISIT(st->context);
    return 0;
}

int
pc_pystate_is_finalizing(void)
{
    return _Py_IsFinalizing();
}

void
pc_pystate_set_current_context(PyThreadState *ts, PyObject *ctx)
{
    Py_XSETREF(ts->context, ctx);
    ts->context_ver++;
}

#endif
