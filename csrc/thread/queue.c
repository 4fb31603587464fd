/* queue.c -- Queue, LifoQueue, PriorityQueue and SimpleQueue, in C.
 *
 * Storage (store_t): one growable array of entries {item, seq, key}. FIFO and LIFO use it as a
 * ring (head + count, capacity a power of two); the priority queue uses it as a binary min-heap
 * whose order is (item, seq): items that compare equal leave in insertion order. A heap entry
 * whose item is a small exact int, or an exact tuple that starts with one or two, keeps them in
 * key (the kind in seq's top bits): most comparisons of the usual (priority, data) and
 * (priority, count, data) items are then decided by one integer comparison of the two entries,
 * without following the item pointers; equal keys go on to the tuples' next elements. Heap
 * operations first find where things go, comparing only, and move nothing until every
 * comparison has succeeded, so a comparison that raises leaves the queue exactly as it was. version counts changes, so that a
 * comparison that changed the queue behind the operation's back (an __lt__ calling the base
 * _get()) is detected.
 *
 * Waiting: three wait lists, as the stdlib's three Conditions: not_empty (getters), not_full
 * (putters on a bounded queue) and all_tasks_done (join). Every block goes through wait.h. A put
 * wakes one getter, a get wakes one putter; a woken caller re-checks and, if another thread got
 * there first, waits again at the head of the list. A woken caller that leaves with an exception
 * passes its wake on, so no wake-up is lost.
 *
 * Subclasses: a Python subclass that overrides _qsize, _put or _get has them called (hooks), and
 * one that overrides _init has it called by __init__, exactly where and as often as the stdlib
 * calls them (put/get/shutdown follow Lib/queue.py of 3.13 step by step). The plain types never
 * look at their methods: they use the C storage directly.
 *
 * Shut-down follows Python 3.13: shutdown(immediate=False) makes put() raise ShutDown, and get()
 * raise it once the queue is empty; immediate=True also drops the items and releases join().
 *
 * Locking. Every field is protected by the GIL. The GIL alone makes an operation atomic only as
 * long as it runs no Python code; a Python-level item comparison (__lt__, __eq__), a hook, or
 * the parsing of an unusual timeout object can switch threads in the middle of an operation. So
 * each queue also has a mutex, the counterpart of the stdlib's self.mutex: mutex_owner is the
 * ident of the thread holding it (0 when free), mutex_waiters the threads waiting for it (a wait
 * list of wait.h, taken with pc_wait_acquire, so the wait is FIFO and interruptible).
 *   - An operation that may run Python code takes the mutex for its whole length (q_enter with
 *     need), and releases it only around a block on not_empty/not_full/all_tasks_done, as
 *     Condition.wait() releases the stdlib's mutex. Such operations: any operation of a subclass
 *     with hooks; on a PriorityQueue, a put or get when the item put or any item stored is not
 *     "plain" (is_plain(): exact int, bool, float, str, bytes, None and tuples of those, whose
 *     comparisons run C code only; store.unplain counts the stored others); a put/get whose
 *     timeout is not None, an exact int or an exact float.
 *   - Every other operation runs no Python code from its first look at the queue to its last
 *     change, so it stays lock-free: it only checks that no other thread holds the mutex, and
 *     waits for it (then holds it) if one does. The fast paths of put and get check mutex_owner
 *     == 0 and nothing else.
 *   - The holder calling back into the same queue (an __lt__ that calls q.qsize() or q.put(), a
 *     _get hook that calls self.empty(), a __del__ run by it) gets RuntimeError. (The stdlib's
 *     mutex is a plain Lock: the same calls deadlock there.) The base hooks Queue._put/_get/
 *     _qsize/_init never touch the mutex, so an override may call them, as with the stdlib.
 *   - Identity is the thread ident: a greenlet that switches away inside a hook, to another
 *     greenlet of the same thread that uses the queue, makes that one's call a RuntimeError too.
 *   - Fork: a mutex held by a thread that did not survive the fork is free in the child, and its
 *     waiters are dropped (mutex_fork_check()).
 * SimpleQueue never runs Python code in an operation (no hooks, no comparisons) and never takes
 * the mutex.
 *
 * Life cycle. Queue, LifoQueue and PriorityQueue are Python classes in the stdlib: before __init__
 * has run, their methods raise AttributeError for the attribute they reach first (not_full,
 * not_empty, mutex, ...); `initialized` mirrors that. A second __init__ empties the queue, as the
 * stdlib's does, and wakes every parked caller so that each re-checks the new state (the wait
 * lists belong to the object from tp_new on, so none is dropped). SimpleQueue is C in the stdlib
 * and is complete from tp_new on.
 */
#include "pyconc.h"

#include <pythread.h>

enum { Q_FIFO = 0, Q_LIFO = 1, Q_PRIO = 2, Q_SIMPLE = 3 };
enum { HOOK_QSIZE = 1, HOOK_PUT = 2, HOOK_GET = 4 };
enum { MS_INT = 0, MS_FLOAT = 1, MS_OBJECT = 2 };

typedef struct {
    PyObject *item;           /* strong reference */
    uint64_t seq;             /* heap: insertion number (the tie-breaker) | key kind << SEQ_BITS */
    int64_t key;              /* heap: the item's leading int(s), when the kind is not KEY_NONE */
} entry_t;

/* Key kinds (ints of one digit, |v| < 2**30, see small_long): KEY_INT, the item is the int key;
 * KEY_TUPLE1, an exact tuple whose first element is the int key (and whose second is not such an
 * int); KEY_TUPLE2, an exact tuple that starts with the ints a and b, key = a << 32 | (b + 2**31)
 * -- ordered as the pair (a, b) is. */
enum { KEY_NONE = 0, KEY_INT = 1, KEY_TUPLE1 = 2, KEY_TUPLE2 = 3 };
#define SEQ_BITS 62
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

typedef struct {
    entry_t *buf;             /* cap entries (PyMem, so tracemalloc sees them) */
    Py_ssize_t cap;           /* 0 or a power of two */
    Py_ssize_t head;          /* ring: index of the oldest entry; heap: always 0 */
    Py_ssize_t count;         /* entries stored */
    uint64_t next_seq;        /* seq of the next entry put */
    uint64_t version;         /* bumped by every change */
    Py_ssize_t unplain;       /* heap: entries that are not is_plain() (their comparisons may run
                               * Python code, so operations on the heap take the mutex) */
} store_t;

typedef struct {
    PyObject_HEAD
    store_t store;
    int kind;                 /* Q_FIFO, Q_LIFO, Q_PRIO or Q_SIMPLE */
    int hooks;                /* HOOK_* overridden by a Python subclass */
    int is_shutdown;          /* 1 after shutdown() */
    int initialized;          /* __init__ completed once (always 1 for SimpleQueue) */
    Py_ssize_t maxsize;       /* MS_INT: maxsize_obj; <= 0: unbounded */
    PyObject *maxsize_obj;    /* maxsize as given (strong; NULL before __init__): any object */
    int maxsize_kind;         /* MS_INT, MS_FLOAT (an exact float) or MS_OBJECT */
    Py_ssize_t unfinished_tasks;
    pc_waitlist not_empty;    /* callers blocked in get() */
    pc_waitlist not_full;     /* callers blocked in put() */
    pc_waitlist all_tasks_done; /* callers blocked in join() */
    unsigned long mutex_owner; /* ident of the thread holding the mutex, 0 when free */
    uint64_t mutex_gen;       /* pc_fork_generation when mutex_owner took it */
    int mutex_pending;        /* 1 while a woken mutex waiter has not yet run (pc_wait_acquire) */
    pc_waitlist mutex_waiters; /* threads waiting for the mutex */
    PyObject *dict;
    PyObject *weakreflist;
} QueueObject;

#define MIN_CAP 8

/* -- storage ----------------------------------------------------------------------------------- */

/* Moves the entries into a buffer of newcap slots, oldest first. 0, or -1 with MemoryError. */
static int
store_resize(store_t *s, Py_ssize_t newcap)
{
    entry_t *nb = PyMem_New(entry_t, newcap);
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t mask = s->cap - 1;
    for (Py_ssize_t i = 0; i < s->count; i++) {
        nb[i] = s->buf[(s->head + i) & mask];
    }
    PyMem_Free(s->buf);
    s->buf = nb;
    s->cap = newcap;
    s->head = 0;
    return 0;
}

static inline int
store_reserve_one(store_t *s)
{
    if (s->count < s->cap) {
        return 0;
    }
    return store_resize(s, s->cap ? s->cap * 2 : MIN_CAP);
}

/* A buffer shrinks (by half) once it is less than 1/8 used, down to KEEP_CAP entries: the
 * hysteresis keeps a queue that fills and drains in bursts from reallocating on every burst (at
 * 1/4, a burst of 100 items grew it to 128 and shrank it to 64 each time). */
#define KEEP_CAP 256

static inline void
store_maybe_shrink(store_t *s)
{
    if (s->cap > KEEP_CAP && s->count < s->cap / 8) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        if (store_resize(s, s->cap / 2) < 0) {
            PyErr_Clear();  /* keeping the larger buffer is fine */
        }
        PyErr_Restore(et, ev, etb);
    }
}

/* Appends item (steals the reference). The caller reserved room. */
static inline void
ring_push(store_t *s, PyObject *item)
{
    entry_t *e = &s->buf[(s->head + s->count) & (s->cap - 1)];
    e->item = item;           /* seq and key are the heap's */
    s->count++;
    s->version++;
}

/* Removes the oldest (fifo) or newest (lifo) entry; returns its reference. count > 0. */
static inline PyObject *
ring_pop(store_t *s, int lifo)
{
    PyObject *item;
    if (lifo) {
        item = s->buf[(s->head + s->count - 1) & (s->cap - 1)].item;
    }
    else {
        item = s->buf[s->head].item;
        s->head = (s->head + 1) & (s->cap - 1);
    }
    s->count--;
    s->version++;
    store_maybe_shrink(s);
    return item;
}

/* a == b and a < b with the same results as the rich comparisons, computed natively for exact
 * ints that fit a long, exact floats and exact strs, and element by element for exact tuples
 * (the (priority, data) items of a priority queue), as list.sort's specialised compares do.
 * Anything else goes through PyObject_RichCompareBool. 1, 0 or -1 with an exception set. */
static int fast_lt(PyObject *a, PyObject *b);
static int tuple_lt(PyObject *a, PyObject *b, Py_ssize_t start);

/* The value of an exact int of at most one digit (most priorities), read from its layout:
 * 1 with *v set, 0 for a bigger one (the caller converts it). */
static inline int
small_long(PyObject *o, long *v)
{
    assert(PyLong_CheckExact(o));
#if PY_VERSION_HEX >= 0x030C0000
    if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
        *v = (long)PyUnstable_Long_CompactValue((PyLongObject *)o);
        return 1;
    }
    return 0;
#else
    Py_ssize_t size = Py_SIZE(o);
    if (size >= -1 && size <= 1) {
        *v = (long)size * (long)((PyLongObject *)o)->ob_digit[0];
        return 1;
    }
    return 0;
#endif
}

static int
fast_eq(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;  /* the identity shortcut of PyObject_RichCompareBool */
    }
    if (Py_TYPE(a) == Py_TYPE(b)) {
        if (PyLong_CheckExact(a)) {
            long x, y;
            if (small_long(a, &x) && small_long(b, &y)) {
                return x == y;
            }
            int oa, ob;
            x = PyLong_AsLongAndOverflow(a, &oa);
            y = PyLong_AsLongAndOverflow(b, &ob);
            if (!oa && !ob) {
                return x == y;
            }
        }
        else if (PyFloat_CheckExact(a)) {
            return PyFloat_AS_DOUBLE(a) == PyFloat_AS_DOUBLE(b);
        }
        else if (PyUnicode_CheckExact(a)) {
            return PyUnicode_Compare(a, b) == 0;
        }
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

static int
fast_lt(PyObject *a, PyObject *b)
{
    if (Py_TYPE(a) == Py_TYPE(b)) {
        if (PyLong_CheckExact(a)) {
            long x, y;
            if (small_long(a, &x) && small_long(b, &y)) {
                return x < y;
            }
            int oa, ob;
            x = PyLong_AsLongAndOverflow(a, &oa);
            y = PyLong_AsLongAndOverflow(b, &ob);
            if (!oa && !ob) {
                return x < y;
            }
        }
        else if (PyFloat_CheckExact(a)) {
            return PyFloat_AS_DOUBLE(a) < PyFloat_AS_DOUBLE(b);
        }
        else if (PyUnicode_CheckExact(a)) {
            return PyUnicode_Compare(a, b) < 0;
        }
        else if (PyTuple_CheckExact(a)) {
            return tuple_lt(a, b, 0);
        }
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* tuple.__lt__ for two exact tuples whose elements before `start` are known to be equal: the
 * first differing position decides, else the shorter one. */
static int
tuple_lt(PyObject *a, PyObject *b, Py_ssize_t start)
{
    Py_ssize_t na = PyTuple_GET_SIZE(a), nb = PyTuple_GET_SIZE(b);
    Py_ssize_t n = na < nb ? na : nb, i = start;
    for (; i < n; i++) {
        int eq = fast_eq(PyTuple_GET_ITEM(a, i), PyTuple_GET_ITEM(b, i));
        if (eq < 0) {
            return -1;
        }
        if (!eq) {
            break;
        }
    }
    if (i >= n) {
        return na < nb;
    }
    return fast_lt(PyTuple_GET_ITEM(a, i), PyTuple_GET_ITEM(b, i));
}

/* Nesting of tuples is_plain() looks into; deeper items count as not plain. */
#define PLAIN_DEPTH 4

/* 1 if comparing o with another plain object runs no Python code (fast_lt and the rich
 * comparisons of these exact types are C code throughout): an exact int, bool, float, str or
 * bytes, None, or an exact tuple of plain objects. 0 otherwise. */
static int
is_plain(PyObject *o, int depth)
{
    PyTypeObject *t = Py_TYPE(o);
    if (t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type || t == &PyBool_Type ||
            t == &PyBytes_Type || o == Py_None) {
        return 1;
    }
    if (t != &PyTuple_Type || depth == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(o); i < n; i++) {
        if (!is_plain(PyTuple_GET_ITEM(o, i), depth - 1)) {
            return 0;
        }
    }
    return 1;
}

/* is_plain for a priority queue's item, with its most common shape, (int, int), first. */
static inline int
is_plain_item(PyObject *o)
{
    if (PyTuple_CheckExact(o) && PyTuple_GET_SIZE(o) == 2 &&
            PyLong_CheckExact(PyTuple_GET_ITEM(o, 0)) && PyLong_CheckExact(PyTuple_GET_ITEM(o, 1))) {
        return 1;
    }
    return is_plain(o, PLAIN_DEPTH);
}

/* The key kind of item, with its key in *key (see entry_t). */
static inline uint64_t
key_of(PyObject *item, int64_t *key)
{
    long a, b;
    if (PyLong_CheckExact(item)) {
        if (!small_long(item, &a)) {
            return KEY_NONE;
        }
        *key = a;
        return KEY_INT;
    }
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) == 0) {
        return KEY_NONE;
    }
    PyObject *first = PyTuple_GET_ITEM(item, 0);
    if (!PyLong_CheckExact(first) || !small_long(first, &a)) {
        return KEY_NONE;
    }
    PyObject *second = PyTuple_GET_SIZE(item) > 1 ? PyTuple_GET_ITEM(item, 1) : NULL;
    if (second != NULL && PyLong_CheckExact(second) && small_long(second, &b)) {
        *key = (int64_t)((uint64_t)(int64_t)a << 32 | (uint64_t)((int64_t)b + (INT64_C(1) << 31)));
        return KEY_TUPLE2;
    }
    *key = a;
    return KEY_TUPLE1;
}

/* The first element of a tuple entry of kind KEY_TUPLE1 or KEY_TUPLE2. */
static inline int64_t
key_first(uint64_t kind, int64_t key)
{
    return kind == KEY_TUPLE2 ? key >> 32 : key;
}

/* a < b, for tuples from position start on when start > 0 (the elements before are equal). */
static inline int
item_lt(PyObject *a, PyObject *b, Py_ssize_t start)
{
    return start ? tuple_lt(a, b, start) : fast_lt(a, b);
}

/* 1 if a goes before b in the heap order (item, seq), 0 if not, -1 on error. Sequence numbers
 * are distinct, so one `<` decides: with seq a < seq b, a goes first unless b < a; otherwise a
 * goes first only if a < b. References are held by the caller. */
static inline int
entry_before(PyObject *a, uint64_t aseq, PyObject *b, uint64_t bseq, Py_ssize_t start)
{
    if ((aseq & SEQ_MASK) < (bseq & SEQ_MASK)) {
        int r = item_lt(b, a, start);
        return r < 0 ? -1 : !r;
    }
    return item_lt(a, b, start);
}

/* entry_before for the entry (a, aseq with its key kind, akey) and the entry at index j,
 * guarding against comparisons that change the queue (they run
 * Python code) unless plain_only says that every object compared is plain. Two entries of the
 * same key kind are ordered by their keys when those differ, without looking at the items (an
 * int compare runs no Python code, whatever the tuples hold further on). */
static int
heap_before_items(store_t *s, PyObject *a, uint64_t aseq, int64_t akey, Py_ssize_t j,
                  uint64_t version, int plain_only)
{
    const entry_t *eb = &s->buf[j];
    uint64_t ka = aseq >> SEQ_BITS, kb = eb->seq >> SEQ_BITS;
    Py_ssize_t start = 0;
    if (ka != KEY_NONE && ka == kb) {
        if (akey != eb->key) {
            return akey < eb->key;
        }
        if (ka == KEY_INT) {
            return (aseq & SEQ_MASK) < (eb->seq & SEQ_MASK);
        }
        start = ka == KEY_TUPLE2 ? 2 : 1;      /* tuples that start with equal ints */
    }
    else if (ka >= KEY_TUPLE1 && kb >= KEY_TUPLE1) {
        int64_t fa = key_first(ka, akey), fb = key_first(kb, eb->key);
        if (fa != fb) {
            return fa < fb;
        }
        start = 1;
    }
    PyObject *b = eb->item;
    uint64_t bseq = eb->seq;
    if (plain_only) {
        /* every entry (and the candidate) is plain: the compare runs no Python code, so
         * nothing can change the queue or drop a reference under it */
        return entry_before(a, aseq, b, bseq, start);
    }
    Py_INCREF(a);
    Py_INCREF(b);
    int r = entry_before(a, aseq, b, bseq, start);
    Py_DECREF(a);
    Py_DECREF(b);
    if (r >= 0 && s->version != version) {
        PyErr_SetString(PyExc_RuntimeError, "PriorityQueue changed during an item comparison");
        return -1;
    }
    return r;
}

/* heap_before_items for two stored entries (i, j), or a candidate (a, aseq, akey) and the entry
 * at index j when i < 0. Its common case is inline, the rest out of line: two entries of the same
 * key kind whose keys differ are ordered by their keys. */
static inline int
heap_before(store_t *s, Py_ssize_t i, PyObject *a, uint64_t aseq, int64_t akey, Py_ssize_t j,
            uint64_t version, int plain_only)
{
    if (i >= 0) {
        a = s->buf[i].item;
        aseq = s->buf[i].seq;
        akey = s->buf[i].key;
    }
    const entry_t *eb = &s->buf[j];
    uint64_t ka = aseq >> SEQ_BITS;
    if (ka != KEY_NONE && ka == eb->seq >> SEQ_BITS && akey != eb->key) {
        return akey < eb->key;
    }
    return heap_before_items(s, a, aseq, akey, j, version, plain_only);
}

/* Pushes item (a new reference is taken only on success); plain is is_plain(item). 0, or -1
 * with the heap unchanged. */
static int
heap_push(store_t *s, PyObject *item, int plain)
{
    if (store_reserve_one(s) < 0) {
        return -1;
    }
    int64_t key = 0;
    uint64_t version = s->version, seq = s->next_seq | key_of(item, &key) << SEQ_BITS;
    int plain_only = plain && s->unplain == 0;
    Py_ssize_t pos = s->count;
    while (pos > 0) {  /* find the place: compare only */
        Py_ssize_t parent = (pos - 1) / 2;
        int r = heap_before(s, -1, item, seq, key, parent, version, plain_only);
        if (r < 0) {
            return -1;
        }
        if (!r) {
            break;
        }
        pos = parent;
    }
    for (Py_ssize_t i = s->count; i > pos;) {  /* commit: move the ancestors down */
        Py_ssize_t parent = (i - 1) / 2;
        s->buf[i] = s->buf[parent];
        i = parent;
    }
    s->buf[pos].item = Py_NewRef(item);
    s->buf[pos].seq = seq;
    s->buf[pos].key = key;
    s->next_seq = (s->next_seq + 1) & SEQ_MASK;
    s->count++;
    s->version++;
    s->unplain += !plain;
    return 0;
}

/* Pops the first entry: a new reference, or NULL with the heap unchanged. count > 0.
 * Bottom-up, as heapq: follow the smaller child from the root to a leaf (one comparison a level),
 * then find from the bottom where the last entry fits on that path (usually near the bottom,
 * since it came from there). Only then move anything. */
static PyObject *
heap_pop(store_t *s)
{
    Py_ssize_t n = s->count - 1;          /* size after the pop */
    PyObject *root = s->buf[0].item;
    if (n > 0) {
        uint64_t version = s->version;
        int plain_only = s->unplain == 0;
        Py_ssize_t path[64];              /* path[1..depth]: the chosen children; path[0] = 0 */
        int depth = 0;
        path[0] = 0;
        for (Py_ssize_t pos = 0;;) {
            Py_ssize_t child = 2 * pos + 1;
            if (child >= n) {
                break;
            }
            if (child + 1 < n) {
                int r = heap_before(s, child + 1, NULL, 0, 0, child, version, plain_only);
                if (r < 0) {
                    return NULL;
                }
                child += r;
            }
            path[++depth] = pos = child;
        }
        entry_t last = s->buf[n];
        int k = depth;                    /* entries path[1..k] move up; last goes to path[k] */
        while (k > 0) {
            int r = heap_before(s, path[k], NULL, 0, 0, n, version, plain_only);
            if (r < 0) {
                return NULL;
            }
            if (r) {
                break;
            }
            k--;
        }
        for (int d = 1; d <= k; d++) {    /* commit */
            s->buf[path[d - 1]] = s->buf[path[d]];
        }
        s->buf[path[k]] = last;
    }
    s->count = n;
    s->version++;
    if (s->unplain > 0 && !is_plain(root, PLAIN_DEPTH)) {
        s->unplain--;
    }
    store_maybe_shrink(s);
    return root;
}

/* Empties s and returns what it held (its buffer and entries), to be dropped with
 * store_release() once the queue's state is consistent: the DECREFs may run code that uses the
 * queue again. */
static store_t
store_detach(store_t *s)
{
    store_t old = *s;
    s->buf = NULL;
    s->cap = s->head = s->count = s->unplain = 0;
    s->version++;
    return old;
}

/* Drops the items of a detached store and frees its buffer. */
static void
store_release(store_t *old)
{
    for (Py_ssize_t i = 0; i < old->count; i++) {
        Py_DECREF(old->buf[(old->head + i) & (old->cap - 1)].item);
    }
    PyMem_Free(old->buf);
}

/* Drops every item. */
static void
store_clear(store_t *s)
{
    store_t old = store_detach(s);
    store_release(&old);
}

/* -- GC -------------------------------------------------------------------------------------- */

static int
queue_traverse(QueueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dict);
    Py_VISIT(self->maxsize_obj);
    store_t *s = &self->store;
    for (Py_ssize_t i = 0; i < s->count; i++) {
        Py_VISIT(s->buf[(s->head + i) & (s->cap - 1)].item);
    }
    return 0;
}

static int
queue_clear(QueueObject *self)
{
    Py_CLEAR(self->dict);
    Py_CLEAR(self->maxsize_obj);
    store_clear(&self->store);
    return 0;
}

static void
queue_dealloc(QueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    queue_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    QueueObject *self = (QueueObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    pc_state *st = pc_state_of_type(type);
    if (st == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (PyType_IsSubtype(type, st->SimpleQueue_Type)) {
        self->kind = Q_SIMPLE;
        self->initialized = 1;
    }
    else if (PyType_IsSubtype(type, st->PriorityQueue_Type)) {
        self->kind = Q_PRIO;
    }
    else if (PyType_IsSubtype(type, st->LifoQueue_Type)) {
        self->kind = Q_LIFO;
    }
    else {
        self->kind = Q_FIFO;
    }
    pc_waitlist_init(&self->not_empty);
    pc_waitlist_init(&self->not_full);
    pc_waitlist_init(&self->all_tasks_done);
    pc_waitlist_init(&self->mutex_waiters);
    return (PyObject *)self;
}

/* -- the mutex (see the top of the file) ----------------------------------------------------- */

/* After a fork: a mutex held by a thread that does not exist in the child is free, and the
 * waiters of such threads are gone. Cheap when nothing forked. */
static inline void
mutex_fork_check(QueueObject *q)
{
    if (q->mutex_waiters.gen == pc_fork_generation) {
        return;
    }
    pc_waitlist_init(&q->mutex_waiters);
    q->mutex_pending = 0;
    if (q->mutex_owner != 0 && q->mutex_gen != pc_fork_generation &&
            q->mutex_owner != pc_thread_ident()) {
        q->mutex_owner = 0;
    }
}

static int
mutex_try_take(void *obj)
{
    QueueObject *q = (QueueObject *)obj;
    if (q->mutex_owner != 0) {
        return 0;
    }
    q->mutex_owner = pc_thread_ident();
    q->mutex_gen = pc_fork_generation;
    return 1;
}

static void
mutex_unlock(QueueObject *q)
{
    q->mutex_owner = 0;
    mutex_fork_check(q);
    pc_wait_release_one(&q->mutex_waiters, &q->mutex_pending);
}

/* Enters an operation on q. need: the operation may run Python code (see the top of the file),
 * so it takes the mutex. Without need it takes the mutex only to wait for another thread's
 * operation to end; when the mutex is free it touches nothing (the lock-free path).
 * Returns 1 when the caller now holds the mutex (to release with q_leave(q, 1)), 0 when it does
 * not, or -1 with an exception set: RuntimeError when the calling thread already holds it (a
 * re-entrant call), or what a signal handler raised during the wait. */
static int
q_enter(QueueObject *q, int need)
{
    if (q->mutex_owner == 0 && !need) {
        return 0;
    }
    if (q->mutex_owner != 0) {
        mutex_fork_check(q);
        if (q->mutex_owner == pc_thread_ident()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "re-entrant call: this thread is already inside an operation on "
                            "this queue (in an item comparison or a _qsize/_put/_get hook)");
            return -1;
        }
    }
    if (pc_wait_acquire(&q->mutex_waiters, &q->mutex_pending, mutex_try_take, q, -1) < 0) {
        return -1;
    }
    return 1;
}

/* Leaves an operation entered with q_enter(), which returned locked (0 or 1). */
static inline void
q_leave(QueueObject *q, int locked)
{
    if (locked) {
        mutex_unlock(q);
    }
}

/* A timeout that put/get can parse without running Python code. */
static inline int
plain_timeout(PyObject *timeout)
{
    return timeout == NULL || timeout == Py_None || PyFloat_CheckExact(timeout) ||
           PyLong_CheckExact(timeout);
}

/* -- the storage operations, through the hooks when a subclass overrides them ---------------- */

static Py_ssize_t
q_size(QueueObject *q)
{
    if (!(q->hooks & HOOK_QSIZE)) {
        return q->store.count;
    }
    PyObject *r = PyObject_CallMethod((PyObject *)q, "_qsize", NULL);
    if (r == NULL) {
        return -1;
    }
    Py_ssize_t n = PyNumber_AsSsize_t(r, PyExc_OverflowError);
    Py_DECREF(r);
    return n;
}

/* The base _put: 0 or -1. Does not steal item. plain: is_plain(item) (used by the heap). */
static int
q_store_put(QueueObject *q, PyObject *item, int plain)
{
    if (q->kind == Q_PRIO) {
        return heap_push(&q->store, item, plain);
    }
    if (store_reserve_one(&q->store) < 0) {
        return -1;
    }
    ring_push(&q->store, Py_NewRef(item));
    return 0;
}

/* The base _get: a new reference, or NULL (IndexError when empty, as deque.pop). */
static PyObject *
q_store_get(QueueObject *q)
{
    if (q->store.count == 0) {
        /* the messages of the stdlib's storage: deque.popleft, list.pop, heapq.heappop */
        PyErr_SetString(PyExc_IndexError, q->kind == Q_PRIO ? "index out of range"
                        : q->kind == Q_LIFO ? "pop from empty list" : "pop from an empty deque");
        return NULL;
    }
    if (q->kind == Q_PRIO) {
        return heap_pop(&q->store);
    }
    return ring_pop(&q->store, q->kind == Q_LIFO);
}

static int
q_put(QueueObject *q, PyObject *item, int plain)
{
    if (!(q->hooks & HOOK_PUT)) {
        return q_store_put(q, item, plain);
    }
    /* "(O)", not "O": PyObject_CallMethod unpacks a lone tuple argument into arguments */
    PyObject *r = PyObject_CallMethod((PyObject *)q, "_put", "(O)", item);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static PyObject *
q_get(QueueObject *q)
{
    if (!(q->hooks & HOOK_GET)) {
        return q_store_get(q);
    }
    return PyObject_CallMethod((PyObject *)q, "_get", NULL);
}

/* The item q_get() would remove, left in place (strong reference). With a _get hook, the
 * subclass's _peek() (gevent's hook name). */
static PyObject *
q_peek(QueueObject *q)
{
    if (q->hooks & HOOK_GET) {
        return PyObject_CallMethod((PyObject *)q, "_peek", NULL);
    }
    store_t *st = &q->store;
    if (st->count == 0) {
        PyErr_SetString(PyExc_IndexError, "peek from an empty queue");
        return NULL;
    }
    Py_ssize_t i = q->kind == Q_PRIO ? 0
                 : q->kind == Q_LIFO ? ((st->head + st->count - 1) & (st->cap - 1))
                 : st->head;
    return Py_NewRef(st->buf[i].item);
}

static PyObject *
raise_exc(QueueObject *q, int which)
{
    pc_state *st = pc_state_of_type(Py_TYPE(q));
    if (st != NULL && pc_queue_exceptions(st) == 0) {
        PyErr_SetNone(which == 0 ? st->Empty : which == 1 ? st->Full : st->ShutDown);
    }
    return NULL;
}
#define RAISE_EMPTY(q) raise_exc((q), 0)
#define RAISE_FULL(q) raise_exc((q), 1)
#define RAISE_SHUTDOWN(q) raise_exc((q), 2)

/* maxsize is any object, as the stdlib's attribute: put() asks `maxsize > 0`, then
 * `qsize >= maxsize`, and full() `0 < maxsize <= qsize`. Exact ints that fit and exact floats
 * are compared natively; anything else with Python's comparisons (which may raise). */
static void
set_maxsize(QueueObject *q, PyObject *value)
{
    Py_XSETREF(q->maxsize_obj, Py_NewRef(value));
    q->maxsize = 0;
    q->maxsize_kind = MS_OBJECT;
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow && v <= PY_SSIZE_T_MAX && v >= PY_SSIZE_T_MIN) {
            q->maxsize = (Py_ssize_t)v;
            q->maxsize_kind = MS_INT;
        }
    }
    else if (PyFloat_CheckExact(value)) {
        q->maxsize_kind = MS_FLOAT;
    }
}

/* `maxsize > 0`: 1, 0 or -1. */
static int
q_bounded(QueueObject *q)
{
    if (q->maxsize_kind == MS_INT) {
        return q->maxsize > 0;
    }
    if (q->maxsize_kind == MS_FLOAT) {
        return PyFloat_AS_DOUBLE(q->maxsize_obj) > 0;
    }
    PyObject *m = Py_NewRef(q->maxsize_obj), *zero = PyLong_FromLong(0);
    int r = zero ? PyObject_RichCompareBool(m, zero, Py_GT) : -1;
    Py_DECREF(m);
    Py_XDECREF(zero);
    return r;
}

/* `n <op> maxsize` (op Py_GE: put's "is full"), or `maxsize <op> n`: 1, 0 or -1. */
static int
q_compare_maxsize(QueueObject *q, Py_ssize_t n, int op)
{
    if (q->maxsize_kind == MS_INT) {
        return op == Py_GE ? n >= q->maxsize : q->maxsize <= n;
    }
    if (q->maxsize_kind == MS_FLOAT) {
        double m = PyFloat_AS_DOUBLE(q->maxsize_obj);
        return op == Py_GE ? (double)n >= m : m <= (double)n;
    }
    PyObject *m = Py_NewRef(q->maxsize_obj), *nobj = PyLong_FromSsize_t(n);
    int r = nobj == NULL ? -1
            : op == Py_GE ? PyObject_RichCompareBool(nobj, m, Py_GE)
                          : PyObject_RichCompareBool(m, nobj, Py_LE);
    Py_DECREF(m);
    Py_XDECREF(nobj);
    return r;
}
#define Q_IS_FULL(q, n) q_compare_maxsize((q), (n), Py_GE)

/* 0, or -1 with the stdlib's AttributeError for attr when __init__ has not run. */
static inline int
q_ready(QueueObject *q, const char *attr)
{
    return q->initialized ? 0 : pc_uninitialized((PyObject *)q, attr);
}

/* -- __init__ and the hooks' base versions --------------------------------------------------- */

/* Which of _qsize/_put/_get/_init the instance's type overrides in Python. */
static int
find_hooks(QueueObject *self, int *call_init)
{
    static const char *const names[] = {"_qsize", "_put", "_get", "_init"};
    static const int bits[] = {HOOK_QSIZE, HOOK_PUT, HOOK_GET, 0};
    pc_state *st = pc_state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return -1;
    }
    PyTypeObject *base = self->kind == Q_PRIO ? st->PriorityQueue_Type
                         : self->kind == Q_LIFO ? st->LifoQueue_Type : st->Queue_Type;
    self->hooks = 0;
    *call_init = 0;
    if (Py_IS_TYPE(self, base)) {
        return 0;  /* a plain instance pays nothing */
    }
    for (int i = 0; i < 4; i++) {
        PyObject *mine = PyObject_GetAttrString((PyObject *)Py_TYPE(self), names[i]);
        PyObject *theirs = mine ? PyObject_GetAttrString((PyObject *)base, names[i]) : NULL;
        if (theirs == NULL) {
            Py_XDECREF(mine);
            return -1;
        }
        if (mine != theirs) {
            if (bits[i]) {
                self->hooks |= bits[i];
            }
            else {
                *call_init = 1;
            }
        }
        Py_DECREF(mine);
        Py_DECREF(theirs);
    }
    return 0;
}

static int
queue_init(QueueObject *self, PyObject *args, PyObject *kwds)
{
    static const char *const names[] = {"maxsize"};
    PyObject *mobj;
    if (pc_parse_init_args("Queue.__init__", args, kwds, names, 1, 1, 0, &mobj) < 0) {
        return -1;
    }
    PyObject *maxsize = mobj != NULL ? Py_NewRef(mobj) : PyLong_FromLong(0);
    if (maxsize == NULL) {
        return -1;
    }
    int call_init;
    if (find_hooks(self, &call_init) < 0) {
        Py_DECREF(maxsize);
        return -1;
    }
    set_maxsize(self, maxsize);
    store_clear(&self->store);
    self->unfinished_tasks = 0;
    self->is_shutdown = 0;
    self->initialized = 1;
    /* A second __init__: every parked caller re-checks the new, empty queue. */
    pc_waitlist_wake_n(&self->not_empty, -1);
    pc_waitlist_wake_n(&self->not_full, -1);
    pc_waitlist_wake_n(&self->all_tasks_done, -1);
    int rc = 0;
    if (call_init) {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_init", "O", maxsize);
        rc = r == NULL ? -1 : 0;
        Py_XDECREF(r);
    }
    Py_DECREF(maxsize);
    return rc;
}

static PyObject *
queue_base_init(QueueObject *self, PyObject *maxsize)
{
    store_clear(&self->store);
    Py_RETURN_NONE;
}

static PyObject *
queue_base_qsize(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "queue") < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(self->store.count);
}

static PyObject *
queue_base_put(QueueObject *self, PyObject *item)
{
    if (q_ready(self, "queue") < 0) {
        return NULL;
    }
    int plain = self->kind == Q_PRIO && is_plain(item, PLAIN_DEPTH);
    if (q_store_put(self, item, plain) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
queue_base_get(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "queue") < 0) {
        return NULL;
    }
    return q_store_get(self);
}

/* -- put and get ------------------------------------------------------------------------------ */

static const char *const put_names[] = {"item", "block", "timeout"};
static const char *const get_names[] = {"block", "timeout"};

/* Parses get(block=True, timeout=None): *block and *timeout borrowed or NULL (not given).
 * 0 or -1. */
static int
parse_get_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
               PyObject **block, PyObject **timeout)
{
    PyObject *argv[2];
    if (pc_parse_args(fname, args, nargs, kwnames, get_names, 2, argv) < 0) {
        return -1;
    }
    *block = argv[0];
    *timeout = argv[1];
    return 0;
}

/* `not block` of the stdlib's put/get: 1 blocking (block NULL: not given), 0, or -1. */
static inline int
q_truth(PyObject *block)
{
    return block == NULL ? 1 : PyObject_IsTrue(block);
}

/* A block argument whose truth runs no Python code. */
static inline int
plain_block(PyObject *block)
{
    return block == NULL || block == Py_None || PyBool_Check(block) || PyLong_CheckExact(block);
}

/* `maxsize > 0` when it can be answered without Python code: 1 or 0; -1 when maxsize is an
 * arbitrary object (its comparison runs Python code, so it needs the mutex). */
static inline int
q_bounded_plain(QueueObject *q)
{
    if (q->maxsize_kind == MS_OBJECT) {
        return -1;
    }
    return q_bounded(q);
}

/* put(item, block, timeout), step by step as the stdlib's Queue.put (3.13): block and timeout
 * are looked at only for a bounded queue (`if self.maxsize > 0:`); the timeout's errors come
 * before any wait. gevent: 1 for the gevent face's put, whose timeout is final in a greenlet
 * (wait.h, pc_timeout_is_final); the stdlib face's loop looks at the queue once more after a
 * wait that timed out, as the stdlib's Python loop does (also under gevent's monkey patching). */
static PyObject *
queue_put_impl(QueueObject *self, PyObject *item, PyObject *block_obj, PyObject *timeout,
               int gevent)
{
    if (q_ready(self, "not_full") < 0) {
        return NULL;
    }
    int plain = self->kind == Q_PRIO && is_plain(item, PLAIN_DEPTH);
    int bounded_plain = q_bounded_plain(self);
    int need = self->hooks || (self->kind == Q_PRIO && (!plain || self->store.unplain > 0)) ||
               bounded_plain < 0 ||
               (bounded_plain > 0 && (!plain_block(block_obj) || !plain_timeout(timeout)));
    int locked = q_enter(self, need);
    if (locked < 0) {
        return NULL;
    }
    pc_waiter w;
    pc_waiter_init(&w);
    if (self->is_shutdown) {
        RAISE_SHUTDOWN(self);
        goto done;
    }
    int bounded = q_bounded(self);
    if (bounded < 0) {
        goto done;
    }
    if (bounded) {
        int block = q_truth(block_obj);
        if (block < 0) {
            goto done;
        }
        Py_ssize_t n;
        if (!block) {
            n = q_size(self);
            if (n < 0 && PyErr_Occurred()) {
                goto done;
            }
            int full = Q_IS_FULL(self, n);
            if (full != 0) {
                if (full > 0) {
                    RAISE_FULL(self);
                }
                goto done;
            }
        }
        else {
            pc_endtime t;
            if (pc_parse_queue_timeout(timeout, &t) < 0) {
                goto done;
            }
            n = q_size(self);
            if (n < 0 && PyErr_Occurred()) {
                goto done;
            }
            int front = 0, full;
            int turn = 1;   /* gevent face: its 0-second timer (wait.h), first round only */
            while ((full = Q_IS_FULL(self, n)) != 0) {
                if (full < 0) {
                    goto fail;
                }
                pc_time_t deadline;
                int go = pc_queue_wait_deadline(&t, &deadline);
                if (go == 0 && turn && gevent && pc_zero_timeout_turns()) {
                    deadline = pc_deadline_after(PC_ZERO_TURN_NS);
                    go = 1;
                }
                turn = 0;
                if (go <= 0) {
                    if (go == 0) {
                        RAISE_FULL(self);
                    }
                    goto fail;
                }
                q_leave(self, locked);  /* as Condition.wait releases the stdlib's mutex */
                locked = 0;
                int r = pc_wait_on(&self->not_full, &w, deadline, front);
                if (r == PC_WAIT_ERROR) {
                    goto fail;
                }
                if (gevent && pc_timeout_is_final(r)) {
                    RAISE_FULL(self);   /* gevent's Timeout came first (wait.h) */
                    goto fail;
                }
                front = r == PC_WAIT_WOKEN;
                need = self->hooks ||
                       (self->kind == Q_PRIO && (!plain || self->store.unplain > 0)) ||
                       self->maxsize_kind == MS_OBJECT;
                if ((locked = q_enter(self, need)) < 0) {
                    locked = 0;
                    goto fail;
                }
                if (self->is_shutdown) {
                    RAISE_SHUTDOWN(self);
                    goto fail;
                }
                n = q_size(self);
                if (n < 0 && PyErr_Occurred()) {
                    goto fail;
                }
            }
        }
    }
    if (q_put(self, item, plain) < 0) {
        goto fail;
    }
    self->unfinished_tasks++;
    q_leave(self, locked);
    if (self->not_empty.head != NULL) {
        pc_waitlist_wake_one_last(&self->not_empty);
    }
    Py_RETURN_NONE;
fail:
    /* a woken putter that leaves without putting hands its wake to the next one */
    pc_waiter_pass_on(&w, &self->not_full);
done:
    q_leave(self, locked);
    return NULL;
}

static PyObject *
queue_put(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 1 && kwnames == NULL && self->mutex_owner == 0 && !self->hooks &&
            !self->is_shutdown && self->kind != Q_PRIO && self->initialized &&
            self->maxsize_kind == MS_INT &&
            (self->maxsize <= 0 || self->store.count < self->maxsize) &&
            self->store.count < self->store.cap) {  /* the fast path: no parsing, no growth */
        ring_push(&self->store, Py_NewRef(args[0]));
        self->unfinished_tasks++;
        if (self->not_empty.head != NULL) {
            pc_waitlist_wake_one_last(&self->not_empty);
        }
        Py_RETURN_NONE;
    }
    if (nargs == 1 && kwnames == NULL && self->kind == Q_PRIO && self->mutex_owner == 0 &&
            !self->hooks && !self->is_shutdown && self->initialized &&
            self->maxsize_kind == MS_INT &&
            (self->maxsize <= 0 || self->store.count < self->maxsize) &&
            self->store.unplain == 0 && is_plain_item(args[0])) {
        /* the priority queue's fast path: every compare is C code that runs no Python, so no
         * mutex is needed (as queue_put_impl decides for the same case) */
        if (heap_push(&self->store, args[0], 1) < 0) {
            return NULL;
        }
        self->unfinished_tasks++;
        if (self->not_empty.head != NULL) {
            pc_waitlist_wake_one_last(&self->not_empty);
        }
        Py_RETURN_NONE;
    }
    PyObject *argv[3];
    if (pc_parse_args("Queue.put", args, nargs, kwnames, put_names, 3, argv) < 0) {
        return NULL;
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "Queue.put() missing 1 required positional argument: 'item'");
        return NULL;
    }
    return queue_put_impl(self, argv[0], argv[1], argv[2], 0);
}

static PyObject *
queue_put_nowait(QueueObject *self, PyObject *item)
{
    return queue_put_impl(self, item, Py_False, NULL, 0);
}

/* get(block, timeout), step by step as the stdlib's Queue.get (3.13): with block, the
 * timeout's errors come first, whether or not an item is there. peek: the item stays (the
 * private _peek). gevent: as for queue_put_impl. */
static PyObject *
queue_take(QueueObject *self, PyObject *block_obj, PyObject *timeout, int peek, int gevent)
{
    if (q_ready(self, "not_empty") < 0) {
        return NULL;
    }
    int need = self->hooks || (self->kind == Q_PRIO && self->store.unplain > 0) ||
               !plain_block(block_obj) || !plain_timeout(timeout);
    int locked = q_enter(self, need);
    if (locked < 0) {
        return NULL;
    }
    PyObject *item = NULL;
    pc_waiter w;
    pc_waiter_init(&w);
    Py_ssize_t n;
    if (self->is_shutdown) {
        n = q_size(self);
        if (n < 0 && PyErr_Occurred()) {
            goto done;
        }
        if (n == 0) {
            RAISE_SHUTDOWN(self);
            goto done;
        }
    }
    int block = q_truth(block_obj);
    if (block < 0) {
        goto done;
    }
    if (!block) {
        n = q_size(self);
        if (n < 0 && PyErr_Occurred()) {
            goto done;
        }
        if (n == 0) {
            RAISE_EMPTY(self);
            goto done;
        }
    }
    else {
        pc_endtime t;
        if (pc_parse_queue_timeout(timeout, &t) < 0) {
            goto done;
        }
        int front = 0;
        int turn = 1;   /* gevent face: its 0-second timer (wait.h), first round only */
        for (;;) {
            n = q_size(self);
            if (n < 0 && PyErr_Occurred()) {
                goto fail;
            }
            if (n != 0) {
                break;
            }
            pc_time_t deadline;
            int go = pc_queue_wait_deadline(&t, &deadline);
            if (go == 0 && turn && gevent && pc_zero_timeout_turns()) {
                deadline = pc_deadline_after(PC_ZERO_TURN_NS);
                go = 1;
            }
            turn = 0;
            if (go <= 0) {
                if (go == 0) {
                    RAISE_EMPTY(self);
                }
                goto fail;
            }
            q_leave(self, locked);  /* as Condition.wait releases the stdlib's mutex */
            locked = 0;
            int r = pc_wait_on(&self->not_empty, &w, deadline, front);
            if (r == PC_WAIT_ERROR) {
                goto fail;
            }
            if (gevent && pc_timeout_is_final(r)) {
                RAISE_EMPTY(self);   /* gevent's Timeout came first (wait.h) */
                goto fail;
            }
            front = r == PC_WAIT_WOKEN;
            need = self->hooks || (self->kind == Q_PRIO && self->store.unplain > 0);
            if ((locked = q_enter(self, need)) < 0) {
                locked = 0;
                goto fail;
            }
            if (self->is_shutdown) {
                n = q_size(self);
                if (n < 0 && PyErr_Occurred()) {
                    goto fail;
                }
                if (n == 0) {
                    RAISE_SHUTDOWN(self);
                    goto fail;
                }
            }
        }
    }
    item = peek ? q_peek(self) : q_get(self);
    if (item == NULL) {
        goto fail;
    }
    q_leave(self, locked);
    if (peek) {
        /* the item stays: a wake this peeker used is the next getter's */
        pc_waiter_pass_on(&w, &self->not_empty);
    }
    else if (self->not_full.head != NULL) {
        pc_waitlist_wake_one(&self->not_full);
    }
    return item;
fail:
    /* a woken getter that leaves without an item hands its wake to the next one */
    pc_waiter_pass_on(&w, &self->not_empty);
done:
    q_leave(self, locked);
    return NULL;
}

static PyObject *
queue_get_impl(QueueObject *self, PyObject *block, PyObject *timeout)
{
    return queue_take(self, block, timeout, 0, 0);
}

/* _peek(block=True, timeout=None): the item get() would return, left in the queue (gevent's
 * Queue.peek; the stdlib's queues have no such method, so it is private here). */
static PyObject *
queue_peek(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *block, *timeout;
    if (parse_get_args("Queue.peek", args, nargs, kwnames, &block, &timeout) < 0) {
        return NULL;
    }
    return queue_take(self, block, timeout, 1, 1);   /* gevent's only */
}

static PyObject *
queue_get(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && self->mutex_owner == 0 && !self->hooks &&
            self->store.count > 0 && self->kind != Q_PRIO &&
            self->initialized) {  /* the fast path */
        PyObject *item = ring_pop(&self->store, self->kind == Q_LIFO);
        if (self->not_full.head != NULL) {
            pc_waitlist_wake_one(&self->not_full);
        }
        return item;
    }
    if (nargs == 0 && kwnames == NULL && self->kind == Q_PRIO && self->mutex_owner == 0 &&
            !self->hooks && self->store.count > 0 && self->store.unplain == 0 &&
            self->initialized) {  /* the priority queue's: plain items only, as for put */
        PyObject *item = heap_pop(&self->store);
        if (item != NULL && self->not_full.head != NULL) {
            pc_waitlist_wake_one(&self->not_full);
        }
        return item;
    }
    PyObject *block, *timeout;
    if (parse_get_args("Queue.get", args, nargs, kwnames, &block, &timeout) < 0) {
        return NULL;
    }
    return queue_get_impl(self, block, timeout);
}

static PyObject *
queue_get_nowait(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    return queue_get_impl(self, Py_False, NULL);
}

/* -- gevent's put/get (pyconc.gevent.queue) -----------------------------------------------------
 *
 * The same queue with gevent's rules on the hot path, so that a greenlet's put/get runs no Python
 * frame: in the hub greenlet itself nothing waits (Full/Empty instead); get() on a queue that has
 * an item never waits, whatever block/timeout say; a negative timeout is a ValueError (put: Full
 * if the queue is full). A timeout that is neither an int nor a float (a gevent Timeout object,
 * or another kind of number) goes to the face's Python `_put_slow(item, block, timeout)` /
 * `_get_slow(block, timeout)`. */

static int queue_size_locked(QueueObject *self, Py_ssize_t *n);

static int
g_in_hub(void)
{
    return pc_hub != NULL && pc_hub->can_yield() < 0;
}

/* 1 if timeout (not NULL, not None) is a number we read here, with *negative set; 0 if it is
 * for the Python path; -1 with an exception. */
static int
g_timeout_sign(PyObject *timeout, int *negative)
{
    double secs;
    if (PyFloat_Check(timeout)) {
        secs = PyFloat_AS_DOUBLE(timeout);
    }
    else if (PyLong_Check(timeout)) {
        PyObject *zero = PyLong_FromLong(0);
        int neg = zero ? PyObject_RichCompareBool(timeout, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (neg < 0) {
            return -1;
        }
        *negative = neg;
        return 1;
    }
    else {
        return 0;
    }
    *negative = secs < 0;
    return 1;
}

static PyObject *
queue_gput(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 1 && kwnames == NULL && !g_in_hub()) {
        return queue_put(self, args, nargs, kwnames);
    }
    PyObject *argv[3];
    if (pc_parse_args("put", args, nargs, kwnames, put_names, 3, argv) < 0) {
        return NULL;
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "put() missing 1 required positional argument: 'item'");
        return NULL;
    }
    PyObject *timeout = argv[2] == Py_None ? NULL : argv[2];
    int block = q_truth(argv[1]);
    if (block < 0) {
        return NULL;
    }
    if (!block || g_in_hub()) {
        return queue_put_impl(self, argv[0], Py_False, NULL, 1);
    }
    if (timeout != NULL) {
        int negative = 0;
        int r = g_timeout_sign(timeout, &negative);
        if (r <= 0) {
            return r < 0 ? NULL
                         : PyObject_CallMethod((PyObject *)self, "_put_slow", "OO", argv[0],
                                               timeout);
        }
        if (negative) {
            /* on a full queue such a timeout has expired already; with room it is refused */
            PyObject *full = PyObject_CallMethod((PyObject *)self, "full", NULL);
            int f = full ? PyObject_IsTrue(full) : -1;
            Py_XDECREF(full);
            if (f > 0) {
                RAISE_FULL(self);
            }
            else if (f == 0) {
                PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
            }
            return NULL;
        }
    }
    return queue_put_impl(self, argv[0], Py_True, timeout, 1);
}

static PyObject *
queue_gget(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && self->store.count > 0 && !self->hooks) {
        return queue_get(self, args, nargs, kwnames);  /* an item is there: no waiting */
    }
    PyObject *block_obj, *timeout;
    if (parse_get_args("get", args, nargs, kwnames, &block_obj, &timeout) < 0) {
        return NULL;
    }
    if (timeout == Py_None) {
        timeout = NULL;
    }
    Py_ssize_t n;
    if (q_ready(self, "not_empty") < 0 || queue_size_locked(self, &n) < 0) {
        return NULL;
    }
    if (n > 0) {
        return queue_get_impl(self, Py_False, NULL);  /* there is one, whatever was asked */
    }
    if (self->is_shutdown) {
        return RAISE_SHUTDOWN(self);
    }
    int negative = 0;
    if (timeout != NULL) {
        int r = g_timeout_sign(timeout, &negative);
        if (r <= 0) {
            return r < 0 ? NULL
                         : PyObject_CallMethod((PyObject *)self, "_get_slow", "OO",
                                               block_obj ? block_obj : Py_True, timeout);
        }
    }
    int block = q_truth(block_obj);
    if (block < 0) {
        return NULL;
    }
    if (!block) {
        return RAISE_EMPTY(self);
    }
    if (negative) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return NULL;
    }
    if (g_in_hub()) {
        return RAISE_EMPTY(self);
    }
    return queue_take(self, Py_True, timeout, 0, 1);
}

/* -- sizes, tasks, shutdown ---------------------------------------------------------------------- */

/* qsize() and empty(): q_size() under the mutex when it calls a hook. n receives the
 * size. 0, or -1 with an exception set. */
static int
queue_size_locked(QueueObject *self, Py_ssize_t *n)
{
    int locked = q_enter(self, self->hooks & HOOK_QSIZE);
    if (locked < 0) {
        return -1;
    }
    *n = q_size(self);
    q_leave(self, locked);
    return *n < 0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *
queue_qsize(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "mutex") < 0) {
        return NULL;
    }
    Py_ssize_t n;
    if (queue_size_locked(self, &n) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

static PyObject *
queue_empty(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "mutex") < 0) {
        return NULL;
    }
    Py_ssize_t n;
    if (queue_size_locked(self, &n) < 0) {
        return NULL;
    }
    return PyBool_FromLong(n == 0);
}

static PyObject *
queue_full(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "mutex") < 0) {
        return NULL;
    }
    int locked = q_enter(self, (self->hooks & HOOK_QSIZE) || self->maxsize_kind == MS_OBJECT);
    if (locked < 0) {
        return NULL;
    }
    /* `0 < self.maxsize <= self._qsize()`: no _qsize() call when unbounded */
    int full;
    if (self->maxsize_kind != MS_OBJECT) {
        full = q_bounded(self);
    }
    else {
        PyObject *m = Py_NewRef(self->maxsize_obj), *zero = PyLong_FromLong(0);
        full = zero ? PyObject_RichCompareBool(zero, m, Py_LT) : -1;
        Py_DECREF(m);
        Py_XDECREF(zero);
    }
    if (full > 0) {
        Py_ssize_t n = q_size(self);
        full = (n < 0 && PyErr_Occurred()) ? -1 : q_compare_maxsize(self, n, Py_LE);
    }
    q_leave(self, locked);
    return full < 0 ? NULL : PyBool_FromLong(full);
}

static PyObject *
queue_task_done(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "all_tasks_done") < 0) {
        return NULL;
    }
    int locked = q_enter(self, 0);
    if (locked < 0) {
        return NULL;
    }
    Py_ssize_t unfinished = self->unfinished_tasks - 1;
    if (unfinished <= 0) {
        if (unfinished < 0) {
            q_leave(self, locked);
            PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
            return NULL;
        }
        pc_waitlist_wake_n(&self->all_tasks_done, -1);
    }
    self->unfinished_tasks = unfinished;
    q_leave(self, locked);
    Py_RETURN_NONE;
}

static PyObject *
queue_join(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    if (q_ready(self, "all_tasks_done") < 0) {
        return NULL;
    }
    int locked = q_enter(self, 0);
    if (locked < 0) {
        return NULL;
    }
    while (self->unfinished_tasks) {
        q_leave(self, locked);
        pc_waiter w;
        if (pc_wait_on(&self->all_tasks_done, &w, PC_FOREVER, 0) == PC_WAIT_ERROR) {
            return NULL;  /* join() wakes every waiter: there is no wake to pass on */
        }
        if ((locked = q_enter(self, 0)) < 0) {
            return NULL;
        }
    }
    q_leave(self, locked);
    Py_RETURN_NONE;
}

static const char *const shutdown_names[] = {"immediate"};

static PyObject *
queue_shutdown(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *imm;
    if (pc_parse_args("Queue.shutdown", args, nargs, kwnames, shutdown_names, 1, &imm) < 0) {
        return NULL;
    }
    int immediate = 0;
    if (imm != NULL && (immediate = PyObject_IsTrue(imm)) < 0) {
        return NULL;
    }
    if (q_ready(self, "mutex") < 0) {
        return NULL;
    }
    int hooked = immediate && (self->hooks & (HOOK_QSIZE | HOOK_GET));
    int locked = q_enter(self, hooked);
    if (locked < 0) {
        return NULL;
    }
    /* The items dropped by immediate=True are released last, after the mutex: their __del__
     * may use the queue. */
    store_t dropped = {0};
    PyObject *got = NULL;  /* the items the _get hook returned */
    int failed = 0;
    self->is_shutdown = 1;
    if (immediate) {
        if (!hooked) {
            Py_ssize_t n = self->store.count;
            dropped = store_detach(&self->store);
            self->unfinished_tasks = self->unfinished_tasks > n ? self->unfinished_tasks - n
                                     : self->unfinished_tasks > 0 ? 0 : self->unfinished_tasks;
        }
        else if ((got = PyList_New(0)) == NULL) {
            failed = 1;
        }
        else {
            for (;;) {  /* as the stdlib: while self._qsize(): self._get() */
                Py_ssize_t n = q_size(self);
                if (n < 0 && PyErr_Occurred()) {
                    failed = 1;
                    break;
                }
                if (n == 0) {
                    break;
                }
                PyObject *item = q_get(self);
                if (item == NULL || PyList_Append(got, item) < 0) {
                    Py_XDECREF(item);
                    failed = 1;
                    break;
                }
                Py_DECREF(item);
                if (self->unfinished_tasks > 0) {
                    self->unfinished_tasks--;
                }
            }
        }
        if (!failed) {
            pc_waitlist_wake_n(&self->all_tasks_done, -1);
        }
    }
    if (!failed) {
        pc_waitlist_wake_n(&self->not_empty, -1);
        pc_waitlist_wake_n(&self->not_full, -1);
    }
    q_leave(self, locked);
    if (dropped.buf != NULL) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        store_release(&dropped);
        PyErr_Restore(et, ev, etb);
    }
    if (got != NULL) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        Py_DECREF(got);
        PyErr_Restore(et, ev, etb);
    }
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Pickling and copy.copy as the stdlib's (see pyconc.h): a Queue's copy is the queue itself. */
PC_NO_PICKLE(queue, "_thread.lock")
PC_NO_PICKLE(simple, "_queue.SimpleQueue")

/* The stdlib's plain attributes maxsize, unfinished_tasks and is_shutdown (3.13). */
static PyObject *
queue_get_maxsize(QueueObject *self, void *Py_UNUSED(closure))
{
    if (q_ready(self, "maxsize") < 0) {
        return NULL;
    }
    return Py_NewRef(self->maxsize_obj);
}

static int
queue_set_maxsize(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'maxsize'");
        return -1;
    }
    set_maxsize(self, value);
    if (self->not_full.head != NULL) {
        pc_waitlist_wake_n(&self->not_full, -1);   /* each re-checks against the new bound */
    }
    return 0;
}

static PyObject *
queue_get_unfinished(QueueObject *self, void *Py_UNUSED(closure))
{
    if (q_ready(self, "unfinished_tasks") < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(self->unfinished_tasks);
}

static int
queue_set_unfinished(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'unfinished_tasks'");
        return -1;
    }
    Py_ssize_t n = PyNumber_AsSsize_t(value, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    self->unfinished_tasks = n;
    return 0;
}

static PyObject *
queue_get_is_shutdown(QueueObject *self, void *Py_UNUSED(closure))
{
    if (q_ready(self, "is_shutdown") < 0) {
        return NULL;
    }
    return PyBool_FromLong(self->is_shutdown);
}

static PyObject *
queue_snapshot(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    store_t *st = &self->store;
    PyObject *list = PyList_New(st->count);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < st->count; i++) {
        Py_ssize_t j = self->kind == Q_PRIO ? i : ((st->head + i) & (st->cap - 1));
        PyList_SET_ITEM(list, i, Py_NewRef(st->buf[j].item));
    }
    return list;
}

/* _join_timeout(timeout): join() bounded by a timeout; True if all tasks are done. */
static PyObject *
queue_join_timeout(QueueObject *self, PyObject *timeout)
{
    if (q_ready(self, "all_tasks_done") < 0) {
        return NULL;
    }
    pc_time_t rel_ns;
    if (pc_parse_wait_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    /* gevent's 0-second timer (wait.h): a greenlet waits one turn of its hub first */
    int turn = rel_ns == 0 && self->unfinished_tasks && pc_zero_timeout_turns();
    pc_time_t deadline = pc_deadline_after(turn ? PC_ZERO_TURN_NS : rel_ns);
    while (self->unfinished_tasks) {
        if (!turn && (rel_ns == 0 || (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline))) {
            Py_RETURN_FALSE;
        }
        turn = 0;
        pc_waiter w;
        int r = pc_wait_on(&self->all_tasks_done, &w, deadline, 0);
        if (r == PC_WAIT_ERROR) {
            return NULL;
        }
        if (pc_timeout_is_final(r)) {
            Py_RETURN_FALSE;   /* gevent's Timeout came first (wait.h) */
        }
    }
    Py_RETURN_TRUE;
}

static PyMethodDef queue_methods[] = {
    {"put", (PyCFunction)(void (*)(void))queue_put, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("put(item, block=True, timeout=None)\n\nPut an item into the queue; block while "
               "it is full. Full after the timeout; ShutDown once shut down.")},
    {"put_nowait", (PyCFunction)queue_put_nowait, METH_O,
     PyDoc_STR("put_nowait(item): put(item, block=False).")},
    {"get", (PyCFunction)(void (*)(void))queue_get, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("get(block=True, timeout=None)\n\nRemove and return an item; block while the "
               "queue is empty. Empty after the timeout; ShutDown once shut down and empty.")},
    {"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS,
     PyDoc_STR("get_nowait(): get(block=False).")},
    {"_gput", (PyCFunction)(void (*)(void))queue_gput, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("_gput(item, block=True, timeout=None): put with gevent's rules.")},
    {"_gget", (PyCFunction)(void (*)(void))queue_gget, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("_gget(block=True, timeout=None): get with gevent's rules.")},
    {"_peek", (PyCFunction)(void (*)(void))queue_peek, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("_peek(block=True, timeout=None): the next item, left in the queue.")},
    {"_snapshot", (PyCFunction)queue_snapshot, METH_NOARGS,
     PyDoc_STR("_snapshot(): the items in storage order, as a list.")},
    {"_join_timeout", (PyCFunction)queue_join_timeout, METH_O,
     PyDoc_STR("_join_timeout(timeout): join() for at most timeout seconds; True if done.")},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS, PyDoc_STR("Number of items queued.")},
    {"empty", (PyCFunction)queue_empty, METH_NOARGS, PyDoc_STR("True if no item is queued.")},
    {"full", (PyCFunction)queue_full, METH_NOARGS, PyDoc_STR("True if maxsize items are queued.")},
    {"task_done", (PyCFunction)queue_task_done, METH_NOARGS,
     PyDoc_STR("Mark one fetched item as processed; ValueError if called too many times.")},
    {"join", (PyCFunction)queue_join, METH_NOARGS,
     PyDoc_STR("Block until every item put has been marked with task_done().")},
    {"shutdown", (PyCFunction)(void (*)(void))queue_shutdown, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("shutdown(immediate=False)\n\nShut the queue down (Python 3.13 semantics).")},
    {"_init", (PyCFunction)queue_base_init, METH_O, NULL},
    {"_qsize", (PyCFunction)queue_base_qsize, METH_NOARGS, NULL},
    {"_put", (PyCFunction)queue_base_put, METH_O, NULL},
    {"_get", (PyCFunction)queue_base_get, METH_NOARGS, NULL},
    PC_NO_PICKLE_METHODS(queue),
    PC_COPY_SELF_METHOD,
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     PyDoc_STR("See PEP 585")},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef queue_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(QueueObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(QueueObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* For pyconc.gevent.queue's repr and its `queue` attribute: how many callers wait, and a
 * snapshot of the items in storage order (ring: oldest first; heap: array order). */
static PyObject *
queue_get_getters(QueueObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->not_empty.count);
}

static PyObject *
queue_get_putters(QueueObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->not_full.count);
}

static PyGetSetDef queue_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_getters", (getter)queue_get_getters, NULL, NULL, NULL},
    {"_putters", (getter)queue_get_putters, NULL, NULL, NULL},
    {"maxsize", (getter)queue_get_maxsize, (setter)queue_set_maxsize, NULL, NULL},
    {"unfinished_tasks", (getter)queue_get_unfinished, (setter)queue_set_unfinished, NULL, NULL},
    {"is_shutdown", (getter)queue_get_is_shutdown, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_getset, queue_getset},
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_new, queue_new},
    {Py_tp_init, queue_init},
    {Py_tp_methods, queue_methods},
    {Py_tp_members, queue_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "Queue(maxsize=0)\n\nA FIFO queue, a drop-in for queue.Queue. maxsize <= 0 is "
        "unbounded.")},
    {0, NULL},
};

#define QUEUE_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | \
                     Py_TPFLAGS_IMMUTABLETYPE)

static PyType_Spec queue_spec = {
    .name = "pyconc.Queue",
    .basicsize = sizeof(QueueObject),
    .flags = QUEUE_FLAGS,
    .slots = queue_slots,
};

static PyType_Slot lifo_slots[] = {
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_doc, (void *)PyDoc_STR(
        "LifoQueue(maxsize=0)\n\nA LIFO queue (a stack), a drop-in for queue.LifoQueue.")},
    {0, NULL},
};

static PyType_Spec lifo_spec = {
    .name = "pyconc.LifoQueue",
    .basicsize = sizeof(QueueObject),
    .flags = QUEUE_FLAGS,
    .slots = lifo_slots,
};

static PyType_Slot prio_slots[] = {
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_doc, (void *)PyDoc_STR(
        "PriorityQueue(maxsize=0)\n\nA priority queue, a drop-in for queue.PriorityQueue: the "
        "lowest item leaves first, and items that compare equal leave in the order they came.")},
    {0, NULL},
};

static PyType_Spec prio_spec = {
    .name = "pyconc.PriorityQueue",
    .basicsize = sizeof(QueueObject),
    .flags = QUEUE_FLAGS,
    .slots = prio_slots,
};

/* -- SimpleQueue ------------------------------------------------------------------------------ */

/* The stdlib's SimpleQueue is complete after __new__, which takes no arguments; it has no
 * __init__ of its own (so a second __init__ is object.__init__: nothing). */
static PyObject *
simple_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* As the stdlib's: the arguments are refused unless a subclass's __init__ takes them. */
    int own_init = type->tp_init != PyBaseObject_Type.tp_init;
    if (own_init) {
        return queue_new(type, args, kwds);
    }
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "SimpleQueue() takes no positional arguments");
        return NULL;
    }
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError, "SimpleQueue() takes no keyword arguments");
        return NULL;
    }
    return queue_new(type, args, kwds);
}

static PyObject *
simple_put_item(QueueObject *self, PyObject *item)
{
    if (store_reserve_one(&self->store) < 0) {
        return NULL;
    }
    ring_push(&self->store, Py_NewRef(item));
    if (self->not_empty.head != NULL) {
        pc_waitlist_wake_one_last(&self->not_empty);
    }
    Py_RETURN_NONE;
}

static PyObject *
simple_put(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 1 && kwnames == NULL) {
        return simple_put_item(self, args[0]);
    }
    PyObject *argv[3];
    if (pc_parse_args("put", args, nargs, kwnames, put_names, 3, argv) < 0) {
        return NULL;
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "put() missing required argument 'item' (pos 1)");
        return NULL;
    }
    /* block is a truth value (the C SimpleQueue's argument converter takes it so), never
     * needed; timeout is never looked at */
    if (argv[1] != NULL && PyObject_IsTrue(argv[1]) < 0) {
        return NULL;
    }
    return simple_put_item(self, argv[0]);
}

/* SimpleQueue.get as the stdlib's C one: block is a truth value, and with block the timeout is
 * parsed first (_PyTime_ROUND_CEILING; negative: ValueError), whether or not an item is there.
 * No hooks, bounds or shut-down apply to a SimpleQueue. */
static PyObject *
simple_get_impl(QueueObject *self, PyObject *block_obj, PyObject *timeout)
{
    int block = q_truth(block_obj);
    if (block < 0) {
        return NULL;
    }
    pc_time_t rel_ns = 0;
    if (block && pc_parse_ceiling_timeout(timeout, &rel_ns) < 0) {
        return NULL;
    }
    pc_time_t deadline = pc_deadline_after(rel_ns);
    pc_waiter w;
    pc_waiter_init(&w);
    int front = 0;
    while (self->store.count == 0) {
        if (rel_ns == 0 || (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline)) {
            pc_waiter_pass_on(&w, &self->not_empty);
            return RAISE_EMPTY(self);
        }
        int r = pc_wait_on(&self->not_empty, &w, deadline, front);
        if (r == PC_WAIT_ERROR) {
            pc_waiter_pass_on(&w, &self->not_empty);
            return NULL;
        }
        if (pc_timeout_is_final(r)) {
            return RAISE_EMPTY(self);   /* gevent's Timeout came first (wait.h) */
        }
        front = r == PC_WAIT_WOKEN;
    }
    return ring_pop(&self->store, 0);
}

static PyObject *
simple_get(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && self->store.count > 0 && !self->hooks) {
        return ring_pop(&self->store, 0);
    }
    PyObject *block, *timeout;
    if (parse_get_args("get", args, nargs, kwnames, &block, &timeout) < 0) {
        return NULL;
    }
    return simple_get_impl(self, block, timeout);
}

static PyObject *
simple_get_nowait(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    return simple_get_impl(self, Py_False, NULL);
}

static PyObject *
simple_empty(QueueObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->store.count == 0);
}

static PyMethodDef simple_methods[] = {
    {"put", (PyCFunction)(void (*)(void))simple_put, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("put(item, block=True, timeout=None)\n\nPut an item; never blocks.")},
    {"put_nowait", (PyCFunction)simple_put_item, METH_O,
     PyDoc_STR("put_nowait(item): put(item, block=False).")},
    {"get", (PyCFunction)(void (*)(void))simple_get, METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("get(block=True, timeout=None)\n\nRemove and return an item.")},
    {"get_nowait", (PyCFunction)simple_get_nowait, METH_NOARGS,
     PyDoc_STR("get_nowait(): get(block=False).")},
    {"qsize", (PyCFunction)queue_base_qsize, METH_NOARGS, PyDoc_STR("Number of items queued.")},
    {"empty", (PyCFunction)simple_empty, METH_NOARGS, PyDoc_STR("True if no item is queued.")},
    PC_NO_PICKLE_METHODS(simple),
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, PyDoc_STR("See PEP 585")},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef simple_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(QueueObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot simple_slots[] = {
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_new, simple_new},
    {Py_tp_methods, simple_methods},
    {Py_tp_members, simple_members},
    {Py_tp_doc, (void *)PyDoc_STR(
        "SimpleQueue()\n\nAn unbounded FIFO queue, a drop-in for queue.SimpleQueue.")},
    {0, NULL},
};

static PyType_Spec simple_spec = {
    .name = "pyconc.SimpleQueue",
    .basicsize = sizeof(QueueObject),
    .flags = QUEUE_FLAGS,
    .slots = simple_slots,
};

/* The stdlib's queue exceptions -- queue.Empty, queue.Full, and queue.ShutDown from Python 3.13
 * (pyconc defines its own before) -- so that `except queue.Empty` catches pyconc's. Loaded on
 * first use, not at module init: importing the stdlib's queue module costs about 0.7 ms, which
 * `from pyconc import threading` or `multiprocessing` need not pay. 0, or -1 with an exception. */
int
pc_queue_exceptions(pc_state *st)
{
    if (st->ShutDown != NULL) {
        return 0;
    }
    PyObject *queue = PyImport_ImportModule("queue");
    if (queue == NULL) {
        return -1;
    }
    PyObject *empty = PyObject_GetAttrString(queue, "Empty");
    PyObject *full = empty ? PyObject_GetAttrString(queue, "Full") : NULL;
    PyObject *shutdown = NULL;
    if (full != NULL) {
        shutdown = PyObject_GetAttrString(queue, "ShutDown");
        if (shutdown == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            shutdown = PyErr_NewExceptionWithDoc(
                "pyconc.queue.ShutDown", "Raised when put/get with shut-down queue.",
                PyExc_Exception, NULL);
        }
    }
    Py_DECREF(queue);
    if (shutdown == NULL) {
        Py_XDECREF(empty);
        Py_XDECREF(full);
        return -1;
    }
    if (st->ShutDown == NULL) {   /* the import may have run code that loaded them already */
        Py_XSETREF(st->Empty, empty);
        Py_XSETREF(st->Full, full);
        st->ShutDown = shutdown;
    }
    else {
        Py_DECREF(empty);
        Py_DECREF(full);
        Py_DECREF(shutdown);
    }
    return 0;
}

int
pc_queue_init_types(PyObject *module, pc_state *st)
{
    if (pc_add_type(module, &queue_spec, NULL, &st->Queue_Type) < 0 ||
            pc_add_type(module, &lifo_spec, (PyObject *)st->Queue_Type, &st->LifoQueue_Type) < 0 ||
            pc_add_type(module, &prio_spec, (PyObject *)st->Queue_Type,
                        &st->PriorityQueue_Type) < 0 ||
            pc_add_type(module, &simple_spec, NULL, &st->SimpleQueue_Type) < 0) {
        return -1;
    }
    return 0;
}
