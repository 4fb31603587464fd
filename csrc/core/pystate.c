/* pystate.c -- save and restore of interpreter state across greenlet switches, CPython 3.11 to
 * 3.14. See pystate.h for what is saved on each version.
 *
 * Layout: one section per CPython version (the only place where field names and types differ),
 * each defining the same small set of static helpers; then the code shared by every version,
 * written against those helpers:
 *   save_version / restore_version / start_version   the thread-state fields of that version
 *   frame_on_c_stack(f)       f lives in a C stack frame of the eval loop (3.12+): its owner
 *                             (FRAME_OWNED_BY_CSTACK on 3.12 and 3.13, _INTERPRETER on 3.14)
 *   frame_code(f)             f's code object (borrowed), NULL if it has none
 *   frame_live_slots(f)       how many of f's localsplus slots hold references while f is
 *                             suspended in a call: locals, cells, free variables, and the value
 *                             stack when the version records its depth during calls from C
 *   frame_drop(f, n)          drops f's references as CPython's _PyFrame_Clear does (n slots)
 *   frame_copy(src, dst, n)   copies f into a frame object's storage, taking over its references
 *                             (CPython's _PyFrame_Copy, limited to n slots)
 *   frame_visit(f, n, ...)    visits the references f owns (GC), n slots as for frame_drop
 *   clear_finalized(op)       clears op's "finalizer was called" GC bit
 * Only their definitions are used from CPython's internal headers (struct layouts and inline
 * functions), no internal exported function. All of this runs with the GIL held.
 */
#include "pystate.h"

#include <string.h>
#include <sys/mman.h>

#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif

/* Data-stack root chunks of finished greenlets are kept for the next ones (see pc_pystate_start).
 * CPython's DATA_STACK_CHUNK_SIZE, the same on 3.11 to 3.14: a chunk of another size is never
 * cached, so a different value would only cost the cache. */
#define ROOT_CHUNK_SIZE (16 * 1024)

/* ================================================================================================
 * CPython 3.11
 */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#include "internal/pycore_frame.h"

#define ts_current_frame(ts) ((ts)->cframe->current_frame)

/* Tracing is a property of the thread: a greenlet resumes with the thread's current setting.
 * Computed as CPython does (_PyThreadState_ResumeTracing), never read through ts->cframe, which
 * during a switch may point into stack memory that now belongs to another greenlet. */
static inline uint8_t
thread_use_tracing(PyThreadState *ts)
{
    return (ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL)) ? 255 : 0;
}

static inline void
save_version(pc_pystate *st, PyThreadState *ts)
{
    st->cframe = ts->cframe;
    st->current_frame = ts->cframe->current_frame;
    st->use_tracing = ts->cframe->use_tracing;
    st->py_recursion_depth = ts->recursion_limit - ts->recursion_remaining;
    st->trash_delete_nesting = ts->trash_delete_nesting;
}

static inline void
restore_version(pc_pystate *st, PyThreadState *ts)
{
    ts->cframe = st->cframe;
    ts->cframe->current_frame = st->current_frame;
    ts->cframe->use_tracing = thread_use_tracing(ts);
    ts->recursion_remaining = ts->recursion_limit - st->py_recursion_depth;
    ts->trash_delete_nesting = st->trash_delete_nesting;
}

static inline void
start_version(PyThreadState *ts, pc_pystate_root *root)
{
    root->cframe.use_tracing = thread_use_tracing(ts);
    root->cframe.previous = &ts->root_cframe;
    root->cframe.current_frame = NULL;
    ts->cframe = &root->cframe;
}

/* 3.11 never links C-stack frames into the chain. */
#define frame_on_c_stack(f) ((void)(f), 0)

static inline PyCodeObject *
frame_code(_PyInterpreterFrame *f)
{
    return f->f_code;
}

/* stacktop is -1 while a frame calls C code (3.11 records the value-stack depth only around
 * Python-to-Python calls): then only locals, cells and free variables are known. */
static inline int
frame_live_slots(_PyInterpreterFrame *f)
{
    return f->stacktop >= 0 ? f->stacktop : f->f_code->co_nlocalsplus;
}

static inline void
frame_drop(_PyInterpreterFrame *f, int n)
{
    for (int i = 0; i < n; i++) {
        Py_CLEAR(f->localsplus[i]);
    }
    Py_CLEAR(f->f_locals);
    Py_CLEAR(f->f_func);
    Py_CLEAR(f->f_code);
}

static inline void
frame_copy(_PyInterpreterFrame *src, _PyInterpreterFrame *dst, int n)
{
    memcpy(dst, src, (size_t)((char *)&src->localsplus[n] - (char *)src));
    dst->stacktop = n;
}

static inline int
frame_visit(_PyInterpreterFrame *f, int n, visitproc visit, void *arg)
{
    for (int i = 0; i < n; i++) {
        Py_VISIT(f->localsplus[i]);
    }
    Py_VISIT(f->frame_obj);
    Py_VISIT(f->f_locals);
    Py_VISIT(f->f_func);
    Py_VISIT(f->f_code);
    return 0;
}

/* 3.11's GC header (internal/pycore_gc.h, which clashes with the public headers when included)
 * sits right before the object: {uintptr_t _gc_next, _gc_prev}, and bit 0 of _gc_prev is
 * _PyGC_PREV_MASK_FINALIZED. */
static inline void
clear_finalized(PyObject *op)
{
    uintptr_t *gc_prev = (uintptr_t *)op - 1;
    *gc_prev &= ~(uintptr_t)1;
}

#define interpreter_finalizing() _Py_IsFinalizing()

/* ================================================================================================
 * CPython 3.12
 */
#elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
#include "internal/pycore_frame.h"

#define ts_current_frame(ts) ((ts)->cframe->current_frame)

static inline void
save_version(pc_pystate *st, PyThreadState *ts)
{
    st->cframe = ts->cframe;
    st->current_frame = ts->cframe->current_frame;
    st->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    st->c_recursion_remaining = ts->c_recursion_remaining;
    st->trash_delete_nesting = ts->trash.delete_nesting;
}

static inline void
restore_version(pc_pystate *st, PyThreadState *ts)
{
    ts->cframe = st->cframe;
    ts->cframe->current_frame = st->current_frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - st->py_recursion_depth;
    ts->c_recursion_remaining = st->c_recursion_remaining;
    ts->trash.delete_nesting = st->trash_delete_nesting;
}

static inline void
start_version(PyThreadState *ts, pc_pystate_root *root)
{
    root->cframe.previous = &ts->root_cframe;
    root->cframe.current_frame = NULL;
    ts->cframe = &root->cframe;
}

#define frame_on_c_stack(f) ((f)->owner == FRAME_OWNED_BY_CSTACK)

static inline PyCodeObject *
frame_code(_PyInterpreterFrame *f)
{
    return f->f_code;
}

/* stacktop is set only around Python-to-Python calls (-1 after it is read back). */
static inline int
frame_live_slots(_PyInterpreterFrame *f)
{
    return f->stacktop >= 0 ? f->stacktop : f->f_code->co_nlocalsplus;
}

static inline void
frame_drop(_PyInterpreterFrame *f, int n)
{
    for (int i = 0; i < n; i++) {
        Py_CLEAR(f->localsplus[i]);
    }
    Py_CLEAR(f->f_locals);
    Py_CLEAR(f->f_funcobj);
    Py_CLEAR(f->f_code);
}

static inline void
frame_copy(_PyInterpreterFrame *src, _PyInterpreterFrame *dst, int n)
{
    memcpy(dst, src, (size_t)((char *)&src->localsplus[n] - (char *)src));
    dst->stacktop = n;
}

static inline int
frame_visit(_PyInterpreterFrame *f, int n, visitproc visit, void *arg)
{
    for (int i = 0; i < n; i++) {
        Py_VISIT(f->localsplus[i]);
    }
    Py_VISIT(f->frame_obj);
    Py_VISIT(f->f_locals);
    Py_VISIT(f->f_funcobj);
    Py_VISIT(f->f_code);
    return 0;
}

/* As on 3.11 (internal/pycore_gc.h clashes with the public headers here too). */
static inline void
clear_finalized(PyObject *op)
{
    uintptr_t *gc_prev = (uintptr_t *)op - 1;
    *gc_prev &= ~(uintptr_t)1;
}

#define interpreter_finalizing() _Py_IsFinalizing()

/* ================================================================================================
 * CPython 3.13
 */
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#include "internal/pycore_frame.h"
#include "internal/pycore_gc.h"

#define ts_current_frame(ts) ((ts)->current_frame)

static inline void
save_version(pc_pystate *st, PyThreadState *ts)
{
    st->current_frame = ts->current_frame;
    st->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    st->c_recursion_remaining = ts->c_recursion_remaining;
}

static inline void
restore_version(pc_pystate *st, PyThreadState *ts)
{
    ts->current_frame = st->current_frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - st->py_recursion_depth;
    ts->c_recursion_remaining = st->c_recursion_remaining;
}

static inline void
start_version(PyThreadState *ts, pc_pystate_root *root)
{
    (void)root;
    ts->current_frame = NULL;
}

#define frame_on_c_stack(f) ((f)->owner == FRAME_OWNED_BY_CSTACK)

/* f_executable is a code object, or None for frames that run no code. */
static inline PyCodeObject *
frame_code(_PyInterpreterFrame *f)
{
    return PyCode_Check(f->f_executable) ? (PyCodeObject *)f->f_executable : NULL;
}

/* stacktop is set only around Python-to-Python calls (-1 after it is read back). */
static inline int
frame_live_slots(_PyInterpreterFrame *f)
{
    PyCodeObject *co = frame_code(f);
    return f->stacktop >= 0 ? f->stacktop : co != NULL ? co->co_nlocalsplus : 0;
}

static inline void
frame_drop(_PyInterpreterFrame *f, int n)
{
    for (int i = 0; i < n; i++) {
        Py_CLEAR(f->localsplus[i]);
    }
    Py_CLEAR(f->f_locals);
    Py_CLEAR(f->f_funcobj);
    Py_CLEAR(f->f_executable);
}

static inline void
frame_copy(_PyInterpreterFrame *src, _PyInterpreterFrame *dst, int n)
{
    memcpy(dst, src, (size_t)((char *)&src->localsplus[n] - (char *)src));
    dst->stacktop = n;
}

static inline int
frame_visit(_PyInterpreterFrame *f, int n, visitproc visit, void *arg)
{
    for (int i = 0; i < n; i++) {
        Py_VISIT(f->localsplus[i]);
    }
    Py_VISIT(f->frame_obj);
    Py_VISIT(f->f_locals);
    Py_VISIT(f->f_funcobj);
    Py_VISIT(f->f_executable);
    return 0;
}

static inline void
clear_finalized(PyObject *op)
{
    _PyGC_CLEAR_FINALIZED(op);
}

#define interpreter_finalizing() Py_IsFinalizing()

/* ================================================================================================
 * CPython 3.14
 *
 * Frame references are _PyStackRef (internal/pycore_stackref.h): the low bits are a tag, and a
 * tagged one (an immortal object, a borrowed reference, a tagged int, NULL) owns no reference:
 * they are released with PyStackRef_XCLOSE, never Py_XDECREF. The eval loop stores the value-stack
 * pointer in the frame before every call that can escape, so the whole value stack of a frame
 * suspended in a call is known.
 */
#elif PY_VERSION_HEX >= 0x030E0000 && PY_VERSION_HEX < 0x030F0000
#include "internal/pycore_frame.h"          /* struct _frame */
#include "internal/pycore_interpframe.h"     /* _PyInterpreterFrame, _PyStackRef */
#include "internal/pycore_gc.h"

#define ts_current_frame(ts) ((ts)->current_frame)

static inline void
save_version(pc_pystate *st, PyThreadState *ts)
{
    st->current_frame = ts->current_frame;
    st->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    st->current_executor = ts->current_executor;
}

static inline void
restore_version(pc_pystate *st, PyThreadState *ts)
{
    ts->current_frame = st->current_frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - st->py_recursion_depth;
    ts->current_executor = st->current_executor;
}

static inline void
start_version(PyThreadState *ts, pc_pystate_root *root)
{
    (void)root;
    ts->current_frame = NULL;
}

/* The eval loop's entry frame is FRAME_OWNED_BY_INTERPRETER on 3.14 (CSTACK is kept as a value
 * above it); either is skipped, never read through: a heap frame of either kind would only have
 * its references left alone. */
#define frame_on_c_stack(f) ((f)->owner >= FRAME_OWNED_BY_INTERPRETER)

static inline PyCodeObject *
frame_code(_PyInterpreterFrame *f)
{
    if (PyStackRef_IsNull(f->f_executable)) {
        return NULL;
    }
    PyObject *ex = PyStackRef_AsPyObjectBorrow(f->f_executable);
    return PyCode_Check(ex) ? (PyCodeObject *)ex : NULL;
}

static inline int
frame_live_slots(_PyInterpreterFrame *f)
{
    if (f->stackpointer != NULL) {
        return (int)(f->stackpointer - f->localsplus);
    }
    PyCodeObject *co = frame_code(f);
    return co != NULL ? co->co_nlocalsplus : 0;
}

static inline void
frame_drop(_PyInterpreterFrame *f, int n)
{
    for (int i = 0; i < n; i++) {
        PyStackRef_CLEAR(f->localsplus[i]);
    }
    f->stackpointer = f->localsplus;
    Py_CLEAR(f->f_locals);
    PyStackRef_CLEAR(f->f_funcobj);
    PyStackRef_CLEAR(f->f_executable);
}

/* As _PyFrame_Copy: a reference the frame only borrowed (tagged) becomes an owned one, since the
 * copy outlives whatever kept it alive. */
static inline void
frame_copy(_PyInterpreterFrame *src, _PyInterpreterFrame *dst, int n)
{
    memcpy(dst, src, offsetof(_PyInterpreterFrame, localsplus));
    dst->f_executable = PyStackRef_MakeHeapSafe(src->f_executable);
    dst->f_funcobj = PyStackRef_MakeHeapSafe(src->f_funcobj);
    for (int i = 0; i < n; i++) {
        dst->localsplus[i] = PyStackRef_MakeHeapSafe(src->localsplus[i]);
    }
    dst->stackpointer = dst->localsplus + n;
    dst->visited = 0;
}

/* Only references the frame owns: a tagged one is counted nowhere, and visiting it would make
 * the collector believe its object is referenced once less from outside than it is. */
#define VISIT_OWNED(ref)                                                                         \
    do {                                                                                         \
        if (PyStackRef_RefcountOnObject(ref)) {                                                  \
            Py_VISIT(PyStackRef_AsPyObjectBorrow(ref));                                          \
        }                                                                                        \
    } while (0)

static inline int
frame_visit(_PyInterpreterFrame *f, int n, visitproc visit, void *arg)
{
    for (int i = 0; i < n; i++) {
        VISIT_OWNED(f->localsplus[i]);
    }
    Py_VISIT(f->frame_obj);
    Py_VISIT(f->f_locals);
    VISIT_OWNED(f->f_funcobj);
    VISIT_OWNED(f->f_executable);
    return 0;
}

static inline void
clear_finalized(PyObject *op)
{
    _PyGC_CLEAR_FINALIZED(op);
}

#define interpreter_finalizing() Py_IsFinalizing()

#else
#error "pyconc: csrc/core/pystate.c has no section for this CPython version"
#endif

/* ================================================================================================
 * Shared by every version
 */

/* C-stack frames (3.12+; see pystate.h): relinks every heap frame of the chain starting at top
 * whose previous frame is on the C stack past it, recording the real link in st. Called while the
 * greenlet's stack is live. 0, or -1 (out of memory) with every link put back. */
static int
relink_past_c_stack(pc_pystate *st, _PyInterpreterFrame *top)
{
#if PY_VERSION_HEX >= 0x030C0000
    st->nrelinks = 0;
    _PyInterpreterFrame *f = top;
    while (f != NULL && frame_on_c_stack(f)) {
        f = f->previous;
    }
    st->first_frame = f;
    while (f != NULL) {
        _PyInterpreterFrame *prev = f->previous, *next = prev;
        while (next != NULL && frame_on_c_stack(next)) {
            next = next->previous;
        }
        if (next != prev) {
            if (st->nrelinks == st->relinks_cap) {
                int cap = st->relinks_cap ? 2 * st->relinks_cap : 4;
                pc_pystate_relink *r = PyMem_RawRealloc(st->relinks,
                                                        (size_t)cap * sizeof(*r));
                if (r == NULL) {
                    while (st->nrelinks > 0) {
                        pc_pystate_relink *undo = &st->relinks[--st->nrelinks];
                        undo->frame->previous = undo->previous;
                    }
                    return -1;
                }
                st->relinks = r;
                st->relinks_cap = cap;
            }
            st->relinks[st->nrelinks].frame = f;
            st->relinks[st->nrelinks].previous = prev;
            st->nrelinks++;
            f->previous = next;
        }
        f = next;
    }
#else
    (void)st;
    (void)top;
#endif
    return 0;
}

/* Puts back the links relink_past_c_stack changed (the greenlet's stack is live again). */
static inline void
unrelink(pc_pystate *st)
{
#if PY_VERSION_HEX >= 0x030C0000
    for (int i = st->nrelinks - 1; i >= 0; i--) {
        st->relinks[i].frame->previous = st->relinks[i].previous;
    }
    st->nrelinks = 0;
#else
    (void)st;
#endif
}

/* The first heap frame of a saved chain, where unwinding starts. */
static inline _PyInterpreterFrame *
first_frame(pc_pystate *st)
{
#if PY_VERSION_HEX >= 0x030C0000
    return st->first_frame;
#else
    return st->current_frame;
#endif
}

static void
forget_relinks(pc_pystate *st)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyMem_RawFree(st->relinks);
    st->relinks = NULL;
    st->nrelinks = st->relinks_cap = 0;
    st->first_frame = NULL;
#else
    (void)st;
#endif
}

int
pc_pystate_save(pc_pystate *st, PyThreadState *ts)
{
    /* The frame object first, with the GC off: creating it allocates, and a collection here
     * could run a finalizer that switches greenlets while this switch is half done. */
    int gc_was_enabled = PyGC_Disable();
    st->top_frame = PyThreadState_GetFrame(ts);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    if (st->top_frame == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (relink_past_c_stack(st, ts_current_frame(ts)) < 0) {
        Py_CLEAR(st->top_frame);
        PyErr_NoMemory();
        return -1;
    }
    save_version(st, ts);
    st->datastack_chunk = ts->datastack_chunk;
    st->datastack_top = ts->datastack_top;
    st->datastack_limit = ts->datastack_limit;
    st->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    st->exc_state = ts->exc_state;          /* moves the reference */
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    st->context = ts->context;              /* moves the reference */
    ts->context = NULL;
    return 0;
}

void
pc_pystate_restore(pc_pystate *st, PyThreadState *ts)
{
    unrelink(st);
    restore_version(st, ts);
    st->current_frame = NULL;               /* running: its frames are the thread's again */
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
    Py_CLEAR(st->top_frame);
}

/* Data-stack root chunks. CPython takes every chunk from mmap (_PyObject_VirtualAlloc) and gives
 * it back with munmap; a greenlet that did the same for its root chunk would pay a VMA change, a
 * page fault and a TLB flush per start and finish, microseconds each (Event.set -> 100 parked
 * waiters spent most of its time in the kernel). malloc is no better for this size: freed 16 KiB
 * blocks between small objects are neither reused in order nor given back, so 10,000 finished
 * greenlets left 20 MiB resident.
 *
 * So a greenlet's root chunk is pyconc's, from slabs: SLAB_SLOTS slots of SLOT_SIZE bytes in one
 * mmap. A slot starts with a pointer to its slab's descriptor; the chunk follows, so a chunk finds
 * its slab in O(1). Slabs with a free slot are on a list (the most recently used first, so that a
 * chunk reused is one whose pages are still resident); a slab that becomes empty is kept while
 * fewer than SPARE_SLABS empty ones are, else unmapped -- memory goes back once a burst of
 * greenlets is over, and a steady churn costs no system call. The chunk goes back through the
 * greenlet's state (own_root). CPython never frees a root chunk (its first slot is skipped, so
 * popping the first frame never empties it); chunks CPython pushes on top of ours are its own,
 * freed by it or by free_chunk(). Global, protected by the GIL (a chunk may be freed by another
 * thread than the one that took it). */
#define SLOT_SIZE ROOT_CHUNK_SIZE
#define SLOT_HEADER 64                /* the slab pointer, padded to a cache line */
#define SLAB_SLOTS 16
#define SLAB_SIZE (SLOT_SIZE * SLAB_SLOTS)
#define SPARE_SLABS 8
#define ALL_FREE ((1u << SLAB_SLOTS) - 1)

typedef struct slab {
    char *mem;
    struct slab *prev, *next;  /* on the list of slabs with a free slot */
    unsigned int free;         /* bit i: slot i is free */
} slab_t;

static slab_t *partial;        /* slabs with at least one free slot */
static int spare;              /* how many of them are entirely free */

static void
free_chunk(_PyStackChunk *chunk)
{
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    arena.free(arena.ctx, chunk, chunk->size);
}

static void
slab_unlink(slab_t *sl)
{
    if (sl->prev != NULL) {
        sl->prev->next = sl->next;
    }
    else {
        partial = sl->next;
    }
    if (sl->next != NULL) {
        sl->next->prev = sl->prev;
    }
    sl->prev = sl->next = NULL;
}

static void
slab_push(slab_t *sl)
{
    sl->prev = NULL;
    sl->next = partial;
    if (partial != NULL) {
        partial->prev = sl;
    }
    partial = sl;
}

static _PyStackChunk *
take_root_chunk(void)
{
    slab_t *sl = partial;
    if (sl == NULL) {
        sl = PyMem_RawMalloc(sizeof(slab_t));
        if (sl == NULL) {
            return NULL;
        }
        void *mem = mmap(NULL, SLAB_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) {
            PyMem_RawFree(sl);
            return NULL;
        }
        sl->mem = mem;
        sl->free = ALL_FREE;
        slab_push(sl);
        spare++;
    }
    if (sl->free == ALL_FREE) {
        spare--;
    }
    int i = __builtin_ctz(sl->free);
    sl->free &= ~(1u << i);
    if (sl->free == 0) {
        slab_unlink(sl);
    }
    char *slot = sl->mem + (size_t)i * SLOT_SIZE;
    *(slab_t **)slot = sl;
    _PyStackChunk *chunk = (_PyStackChunk *)(slot + SLOT_HEADER);
    chunk->size = SLOT_SIZE - SLOT_HEADER;
    return chunk;
}

static void
give_root_chunk(_PyStackChunk *chunk)
{
    char *slot = (char *)chunk - SLOT_HEADER;
    slab_t *sl = *(slab_t **)slot;
    int i = (int)((slot - sl->mem) / SLOT_SIZE);
    if (sl->free == 0) {
        slab_push(sl);
    }
    else if (sl != partial) {
        slab_unlink(sl);   /* most recently used first */
        slab_push(sl);
    }
    sl->free |= 1u << i;
    if (sl->free == ALL_FREE) {
        if (spare >= SPARE_SLABS) {
            slab_unlink(sl);
            munmap(sl->mem, SLAB_SIZE);
            PyMem_RawFree(sl);
            return;
        }
        spare++;
    }
}

/* Frees a chain of chunks, top first: own_root (if it is in the chain) is pyconc's, the rest
 * CPython's. */
static void
free_chunks(_PyStackChunk *chunk, _PyStackChunk *own_root)
{
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        if (chunk == own_root) {
            give_root_chunk(chunk);
        }
        else {
            free_chunk(chunk);
        }
        chunk = prev;
    }
}

void
pc_pystate_start(PyThreadState *ts, pc_pystate_root *root, pc_pystate *preset)
{
    start_version(ts, root);
    _PyStackChunk *chunk = take_root_chunk();
    preset->own_root = chunk;
    if (chunk != NULL) {
        /* Laid out as CPython's push_chunk() lays out a root chunk: the first slot is skipped,
         * so that popping the first frame never pops the root chunk itself. */
        chunk->previous = NULL;
        chunk->top = 0;
        ts->datastack_chunk = chunk;
        ts->datastack_top = &chunk->data[1];
        ts->datastack_limit = (PyObject **)((char *)chunk + chunk->size);
    }
    else {
        /* out of memory: CPython allocates a root chunk on the first frame push (or fails) */
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
pc_pystate_finish(pc_pystate *st, PyThreadState *ts)
{
    free_chunks(ts->datastack_chunk, st->own_root);
    st->own_root = NULL;
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    Py_CLEAR(ts->exc_state.exc_value);
    forget_relinks(st);
    /* The context stays: a dead greenlet's gr_context is the one it ran in. */
}

/* A frame object that outlives its interpreter frame gets a copy of it, as CPython does when a
 * frame returns while its frame object is still referenced (frameobject.c, take_ownership). Only
 * the first n slots are copied; the frame is unlinked from the frames below it. */
static void
hand_frame_to_object(PyFrameObject *f, _PyInterpreterFrame *frame, int n)
{
    _PyInterpreterFrame *copy = (_PyInterpreterFrame *)f->_f_frame_data;
    frame_copy(frame, copy, n);
    copy->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    copy->previous = NULL;
    f->f_frame = copy;
    if (!PyObject_GC_IsTracked((PyObject *)f)) {
        PyObject_GC_Track((PyObject *)f);
    }
}

/* Drops what one suspended interpreter frame holds, as CPython's _PyFrame_Clear does when a
 * frame returns. Where the version does not record the value-stack depth of a frame that is
 * calling C code, that value stack (the callable and arguments of the call) is left alone: a few
 * references leak, never a wrong decref. Locals, cells and free variables are always known. */
static void
clear_suspended_frame(_PyInterpreterFrame *frame)
{
    int n = frame_live_slots(frame);
    if (frame->frame_obj != NULL) {
        PyFrameObject *f = frame->frame_obj;
        frame->frame_obj = NULL;
        if (Py_REFCNT(f) > 1) {
            hand_frame_to_object(f, frame, n);  /* takes over the frame's references */
            Py_DECREF(f);
            return;
        }
        Py_DECREF(f);
    }
    frame_drop(frame, n);
}

void
pc_pystate_clear(pc_pystate *st, int unwind)
{
    /* Detached first: the decrefs below can run arbitrary code, including the collector, which
     * must find an empty state here. */
    _PyInterpreterFrame *frame = unwind && st->current_frame ? first_frame(st) : NULL;
    _PyStackChunk *chunk = unwind ? st->datastack_chunk : NULL;
    st->current_frame = NULL;
    st->datastack_chunk = NULL;
    st->datastack_top = NULL;
    st->datastack_limit = NULL;
    forget_relinks(st);                     /* the chain was relinked past C-stack frames */
    Py_CLEAR(st->top_frame);
    /* A greenlet that dies without running again (its thread has ended, or the interpreter is
     * going away): its frames are unwound from the top, as if each returned. */
    while (frame != NULL) {
        _PyInterpreterFrame *prev = frame->previous;
        if (frame->owner == FRAME_OWNED_BY_GENERATOR) {
            frame->previous = NULL;  /* the generator owns it */
        }
        else {
            clear_suspended_frame(frame);
        }
        frame = prev;
    }
    free_chunks(chunk, st->own_root);
    st->own_root = NULL;
    Py_CLEAR(st->exc_state.exc_value);
    Py_CLEAR(st->context);
}

void
pc_pystate_unmark_finalized(PyObject *op)
{
    /* CPython runs tp_finalize once per object (the FINALIZED bit of its GC header); a greenlet
     * that survived being killed must be killed again when its last reference goes. */
    if (PyObject_IS_GC(op)) {
        clear_finalized(op);
    }
}

/* The references held by the frames of a suspended greenlet are its own (no thread state lists
 * them), so they are visited here: a reference cycle through a suspended greenlet's locals can
 * then be found, and broken by unwinding when the greenlet may be collected (its thread has
 * ended; see greenlet.c, greenlet_is_gc). Frames of a generator are its generator's to visit. */
int
pc_pystate_traverse(pc_pystate *st, visitproc visit, void *arg)
{
    Py_VISIT(st->top_frame);
    Py_VISIT(st->exc_state.exc_value);
    Py_VISIT(st->context);
    for (_PyInterpreterFrame *f = st->current_frame ? first_frame(st) : NULL; f != NULL;
            f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_GENERATOR) {
            int err = frame_visit(f, frame_live_slots(f), visit, arg);
            if (err != 0) {
                return err;
            }
        }
    }
    return 0;
}

int
pc_pystate_is_finalizing(void)
{
    return interpreter_finalizing();
}

void
pc_pystate_set_current_context(PyThreadState *ts, PyObject *ctx)
{
    Py_XSETREF(ts->context, ctx);
    ts->context_ver++;
}
