/* hub.c -- the coroutine hub: one per OS thread, its loop running in a greenlet of its own.
 *
 * What it owns (all GIL-protected; the loop drops the GIL only inside epoll_wait):
 *   - a FIFO *ready queue* of nodes: a parked greenlet to resume (its park record, embedded: no
 *     allocation, so a wake can never fail), or a scheduled switch / throw / call (allocated by
 *     the Python-level API that schedules it, which can report MemoryError);
 *   - the *idle callers* (idle()), queued to run when nothing else is ready, last first (as
 *     libev invokes its pending idle watchers: see idle_feed);
 *   - a *timer min-heap* keyed by (deadline, sequence), O(log n) arm and cancel, the timers
 *     embedded in park records and in Timer objects;
 *   - an *epoll* instance with an *eventfd* in it, written by another thread that makes one of
 *     this hub's greenlets ready while the loop may be asleep in epoll_wait (the "inbox": with
 *     the GIL serialising every access, the ready queue itself is the inbox and the eventfd only
 *     wakes the loop; a free-threaded build will need a lock here);
 *   - file-descriptor watchers (pc_hub_wait_fd) for the cooperative I/O of pyconc.gevent.
 *
 * Parking (wait.h's pc_hub_ops). A primitive's waiter lives on its caller's C stack, but a
 * greenlet's stack is copied away while it is suspended and the addresses reused by the others:
 * nothing may point into it then. So a park copies the caller's waiter into a heap *park record*
 * that takes its place on the primitive's wait list, switches to the hub, and copies the outcome
 * back when resumed. A record's states:
 *     PARKED -> READY (woken, or its deadline passed; queued once) -> RESUMING (the hub switches
 *     to it) -> DONE (the park returned; freed once it is out of the ready queue)
 * A park can also end with an exception thrown into the greenlet (a kill, a Timeout) in any
 * state; it then unlinks itself and reports whether a wake had been consumed (w->woken), so that
 * the primitive passes the wake on, as on the thread side. A wake from another thread queues the
 * record on its hub and writes the eventfd if the loop is (or may be about to be) polling.
 *
 * The loop, per iteration, in libev's order as gevent drives it: resume/run the ready queue
 * until it is empty, as gevent runs its callbacks (a greenlet that yields with sleep(0) goes to
 * the back, behind every node ready before it; the pass ends after 5 ms of continuous running,
 * gevent's bound, so that a ring of yielding greenlets cannot starve timers and I/O); fire the
 * timers that are due and were armed before this phase (what their callbacks queue runs behind
 * the turn's I/O, idle callers and Timeouts, as gevent's callbacks wait for the next pass); poll
 * epoll (timeout 0 if anything is ready, else until the next timer, else forever) with the GIL
 * released, after a short adaptive spin on the epoll descriptor where wait.h's rules allow one;
 * run Python's signal handlers. An exception that escapes into the hub (a raw greenlet's, a
 * callback's) is printed as gevent prints it, and the loop goes on; SystemExit,
 * KeyboardInterrupt and SystemError are raised in the main greenlet instead, as is LoopExit when
 * nothing could ever wake anyone (no ready node, timer or watcher, and no other thread in the
 * interpreter).
 *
 * Blocking in the hub greenlet itself (a Lock.acquire in a callback the hub runs) raises
 * BlockingSwitchOutError: the hub cannot wait for itself.
 *
 * Lifetime. The thread's state dict holds the hub (a capsule, whose destructor runs when the
 * thread ends, with the GIL): the hub then unlinks every park record from its wait list and
 * drops its references; the greenlets of an ended thread can never run again (greenlet.c frees
 * them without running their code). After fork() the child finds the hub stamped with an older
 * fork generation at its next use, and starts it afresh: new epoll fd and eventfd, empty queues
 * and heap; the parent's parked greenlets are not resumed (their records are orphaned, and freed
 * if such a greenlet is ever killed).
 */
#include "hub.h"
#include "greenlet.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* -- nodes of the ready queue ------------------------------------------------------------------ */

enum { N_RESUME = 1, N_SWITCH, N_THROW, N_CALL, N_START, N_TIMER, N_NOTIFY };

/* glet.c's check for a scheduled Greenlet start (N_START): 1 if it still may start (it was not
 * killed meanwhile), and it marks the start as begun. */
int pc_glet_start_begins(PyObject *g);

/* glet.c's N_NOTIFY: a finished Greenlet tells its joiners and links, in the order they came
 * (gevent's _notify_links callback); pc_glet_notify_dropped: the node is dropped unrun (the hub
 * is reset or destroyed), so the joiners are woken directly. */
void pc_glet_notify(PyObject *g);
void pc_glet_notify_dropped(PyObject *g);

typedef struct rnode {
    struct rnode *next;
    int kind;
} rnode_t;

typedef struct {
    rnode_t node;
    PyObject *target;         /* N_SWITCH/N_THROW: the greenlet; N_CALL: the callable; N_TIMER:
                                 the expired Timer object, whose armed self-reference it holds;
                                 N_NOTIFY: the finished Greenlet (strong) */
    PyObject *arg;            /* the args tuple, or the exception (strong, may be NULL) */
    PyObject *kwargs;         /* N_SWITCH / N_CALL: keyword arguments (strong, may be NULL) */
} cbnode_t;

typedef struct {
    rnode_t *head, *tail;
    Py_ssize_t count;
} fifo_t;

static inline void
fifo_push(fifo_t *q, rnode_t *n)
{
    n->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = n;
    }
    else {
        q->head = n;
    }
    q->tail = n;
    q->count++;
}

/* Moves all of src to the end of dst. */
static inline void
fifo_append(fifo_t *dst, fifo_t *src)
{
    if (src->head == NULL) {
        return;
    }
    if (dst->tail != NULL) {
        dst->tail->next = src->head;
    }
    else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    dst->count += src->count;
    src->head = src->tail = NULL;
    src->count = 0;
}

static inline rnode_t *
fifo_pop(fifo_t *q)
{
    rnode_t *n = q->head;
    if (n != NULL) {
        q->head = n->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        q->count--;
        n->next = NULL;
    }
    return n;
}

/* -- timers -------------------------------------------------------------------------------------- */

enum { T_PARK = 1, T_PY };

typedef struct htimer {
    pc_time_t deadline;
    uint64_t seq;             /* arming order: equal deadlines fire first armed, first fired */
    Py_ssize_t index;         /* position in the heap, -1 when not armed */
    int kind;                 /* T_PARK: inside a park record; T_PY: inside a Timer object */
} htimer_t;

/* -- park records -------------------------------------------------------------------------------- */

enum { P_PARKED = 1, P_READY, P_RESUMING, P_DONE };

typedef struct parked {
    pc_waiter w;              /* first: wait.c hands us &w; on the primitive's list in place of
                                 the caller's stack waiter */
    rnode_t node;             /* N_RESUME, in the ready or idle queue while queued */
    htimer_t timer;           /* the deadline, when there is one */
    HubObject *hub;           /* borrowed: a hub releases every record before it goes */
    PyObject *greenlet;       /* strong: the parked greenlet */
    int state;
    int result;               /* PC_WAIT_WOKEN or PC_WAIT_TIMEOUT once READY */
    int queued;               /* 1 while node is in a queue */
    int orphaned;             /* its hub was reset by a fork or destroyed: touch nothing of it */
    Py_ssize_t idle_index;    /* an idle() caller: its place in hub->idles, else -1 */
    int idle_fed;             /* ... queued to run by idle_feed (libev: pending) */
    int low;                  /* its deadline is a wait's timeout (gevent's Timeout, priority -1,
                                 run_timers), not a sleep's (priority 0) */
    int fd;                   /* fd wait: the descriptor, else -1 */
    uint32_t events;          /* fd wait: EPOLLIN or EPOLLOUT */
    PyObject *exc;            /* fd wait cancelled: the exception to raise (strong) */
    struct parked *prev, *next;  /* the hub's list of live records */
} parked_t;

#define PARKED_OF_NODE(n) ((parked_t *)((char *)(n) - offsetof(parked_t, node)))
#define PARKED_OF_TIMER(t) ((parked_t *)((char *)(t) - offsetof(parked_t, timer)))

struct TimerObject;
static PyObject *timer_object_of(htimer_t *t);   /* the Timer object around a T_PY timer */
static int timer_defer_low(HubObject *hub, htimer_t *t);
static int timer_run_pending(HubObject *hub, PyObject *tm);
static void timer_forget_pending(PyObject *tm);

/* -- the hub object ---------------------------------------------------------------------------- */

typedef struct {
    parked_t *rd, *wr;        /* the greenlets waiting to read / write */
    uint32_t registered;      /* events registered with epoll (0: not registered) */
    uint64_t owner;           /* nonzero: a persistent registration (pc_hub_wait_io) for the
                                 cooperative socket with this token: FD_PERSIST_EVENTS, kept
                                 between waits until pc_hub_forget_fd; else level-triggered
                                 for the waiters present, dropped when the last one leaves */
    uint32_t edges;           /* persistent only: the events epoll reported since the owner
                                 last said it drained them (pc_hub_io_drained); EPOLLIN and
                                 EPOLLOUT while unknown */
} fdwatch_t;

/* A persistent registration: both directions, edge-triggered. Its users wait only after a
 * syscall said EAGAIN, in the same hub turn, so an edge can never be missed; an edge that comes
 * while nobody waits is dropped by the loop and costs nothing later (no level-triggered
 * repeats). */
#define FD_PERSIST_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* The hub's data. The Python-level hub (pyconc._core.Hub) is a greenlet -- its run() is the loop,
 * its parent the thread's main greenlet, as gevent's Hub -- and this struct lives in that object
 * after the greenlet's own fields (HUB(obj)); `self` points back. */
struct HubObject {
    PyObject *self;           /* borrowed: the hub greenlet this data lives in */
    pc_state *st;             /* the module state (the module outlives its hubs' use) */
    PyObject *main;           /* strong: the thread's main greenlet */
    unsigned long ident;      /* the thread's ident */
    uint64_t gen;             /* pc_fork_generation when the hub was (re)initialised */
    int epfd, evfd;           /* -1 when closed */
    int polling;              /* 1 from just before the loop drops the GIL to poll until after */
    int poked;                /* the eventfd was written since the loop last read it */
    int dead;                 /* destroyed: its thread ended, or destroy() */
    fifo_t ready;
    parked_t **idles;         /* the idle() callers, in the order of libev's idle-watcher array */
    Py_ssize_t nidles, capidles;
    Py_ssize_t nidle_waiting; /* ... of which not yet queued to run */
    int turn_fired;           /* run_timers fired a timer of priority 0 this loop turn: as
                                 libev's pending watcher, it keeps the idle callers waiting */
    fifo_t low;               /* expired timers of a negative priority (gevent's Timeout), run
                                 after what the same loop turn made ready (hub_run) */
    fifo_t later;             /* what the callbacks of this turn's expired timers of priority 0
                                 queued: gevent's callbacks, run after the turn's pending
                                 watchers -- its I/O, idle callers and Timeouts (poll_once) */
    htimer_t **heap;          /* the timer min-heap */
    Py_ssize_t nheap, capheap;
    uint64_t seq;
    parked_t parks;           /* sentinel of the list of live park records */
    Py_ssize_t nparks;
    fdwatch_t *fds;           /* indexed by descriptor */
    int capfds;
    int nwatch;               /* descriptors with a waiter */
    int npytimers;            /* armed Timer objects */
    int nunref;               /* ... of which created with ref=False: they do not keep the loop
                                 from LoopExit */
    pc_spin spin;             /* the poll's spin budget (wait.h), before it sleeps */
};

static Py_ssize_t hub_data_offset;   /* the greenlet type's basicsize: where HubObject starts */
#define HUB(obj) ((HubObject *)((char *)(obj) + hub_data_offset))

static PC_TLS HubObject *tls_hub = NULL;   /* borrowed; the thread state dict owns it */

/* -- the timer heap ----------------------------------------------------------------------------- */

static inline int
timer_before(const htimer_t *a, const htimer_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
heap_swap(htimer_t **h, Py_ssize_t i, Py_ssize_t j)
{
    htimer_t *t = h[i];
    h[i] = h[j];
    h[j] = t;
    h[i]->index = i;
    h[j]->index = j;
}

static void
heap_up(htimer_t **h, Py_ssize_t i)
{
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (!timer_before(h[i], h[parent])) {
            break;
        }
        heap_swap(h, i, parent);
        i = parent;
    }
}

static void
heap_down(htimer_t **h, Py_ssize_t n, Py_ssize_t i)
{
    for (;;) {
        Py_ssize_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && timer_before(h[l], h[m])) {
            m = l;
        }
        if (r < n && timer_before(h[r], h[m])) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(h, i, m);
        i = m;
    }
}

/* Arms t for deadline. 0, or -1 with MemoryError. */
static int
timer_arm(HubObject *hub, htimer_t *t, pc_time_t deadline)
{
    if (hub->nheap == hub->capheap) {
        Py_ssize_t cap = hub->capheap ? hub->capheap * 2 : 64;
        htimer_t **h = PyMem_Realloc(hub->heap, (size_t)cap * sizeof(*h));
        if (h == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        hub->heap = h;
        hub->capheap = cap;
    }
    t->deadline = deadline;
    t->seq = hub->seq++;
    t->index = hub->nheap;
    hub->heap[hub->nheap++] = t;
    heap_up(hub->heap, t->index);
    return 0;
}

static void
timer_cancel(HubObject *hub, htimer_t *t)
{
    Py_ssize_t i = t->index;
    if (i < 0) {
        return;
    }
    t->index = -1;
    Py_ssize_t last = --hub->nheap;
    if (i != last) {
        hub->heap[i] = hub->heap[last];
        hub->heap[i]->index = i;
        heap_down(hub->heap, hub->nheap, i);
        heap_up(hub->heap, i);
    }
}

/* -- park records ------------------------------------------------------------------------------- */

static parked_t *
parked_new(HubObject *hub, PyObject *greenlet)
{
    parked_t *p = PyMem_Calloc(1, sizeof(parked_t));
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    pc_waiter_init(&p->w);
    p->node.kind = N_RESUME;
    p->timer.index = -1;
    p->timer.kind = T_PARK;
    p->idle_index = -1;
    p->hub = hub;
    p->greenlet = Py_NewRef(greenlet);
    p->fd = -1;
    p->w.coro = greenlet;
    p->w.hub = hub;
    /* the hub's list of live records */
    p->next = hub->parks.next;
    p->prev = &hub->parks;
    hub->parks.next->prev = p;
    hub->parks.next = p;
    hub->nparks++;
    return p;
}

/* Leaves the hub's list (not for orphans, whose hub no longer lists them). */
static void
parked_unlist(parked_t *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
        p->next->prev = p->prev;
        p->prev = p->next = NULL;
        p->hub->nparks--;
    }
}

static void
parked_free(parked_t *p)
{
    Py_CLEAR(p->greenlet);
    Py_CLEAR(p->exc);
    PyMem_Free(p);
}

static void
poke(HubObject *hub)
{
    /* Only a loop that is polling (or about to, having dropped the GIL) needs the eventfd: one
     * that runs Python code looks at the ready queue before it polls again. */
    if (hub->polling && !hub->poked && hub->evfd >= 0) {
        uint64_t one = 1;
        hub->poked = 1;
        ssize_t r = write(hub->evfd, &one, sizeof(one));
        (void)r;   /* EAGAIN: the counter is not read yet, the loop will wake anyway */
    }
}

/* A parked greenlet is ready to run: queue it once (on q), cancel its deadline, wake the
 * loop. */
static void
make_ready_on(parked_t *p, int result, fifo_t *q)
{
    HubObject *hub = p->hub;
    if (p->state != P_PARKED || p->orphaned) {
        return;
    }
    timer_cancel(hub, &p->timer);
    p->state = P_READY;
    p->result = result;
    p->queued = 1;
    fifo_push(q, &p->node);
    poke(hub);
}

static void
make_ready(parked_t *p, int result)
{
    make_ready_on(p, result, &p->hub->ready);
}

/* -- idle() callers ------------------------------------------------------------------------------
 *
 * gevent's idle() is a libev idle watcher, and libev keeps those in an array: a start appends,
 * a stop moves the array's last watcher into the freed place. When nothing else is pending the
 * loop feeds them all as pending and invokes them last first. The order in which idle callers
 * wake is observable (which greenlet runs first when the loop goes idle), so the hub keeps the
 * same array. */

/* Adds an idle() caller (its record ready to run, not yet queued). 0, or -1 with MemoryError. */
static int
idle_add(HubObject *hub, parked_t *p)
{
    if (hub->nidles == hub->capidles) {
        Py_ssize_t cap = hub->capidles ? hub->capidles * 2 : 16;
        parked_t **a = PyMem_Realloc(hub->idles, (size_t)cap * sizeof(*a));
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        hub->idles = a;
        hub->capidles = cap;
    }
    p->idle_index = hub->nidles;
    hub->idles[hub->nidles++] = p;
    hub->nidle_waiting++;
    return 0;
}

/* The caller's idle() ends (it runs, or was thrown into): libev's ev_idle_stop. */
static void
idle_remove(parked_t *p)
{
    HubObject *hub = p->hub;
    Py_ssize_t i = p->idle_index;
    if (i < 0) {
        return;
    }
    if (!p->idle_fed) {
        hub->nidle_waiting--;
    }
    parked_t *last = hub->idles[--hub->nidles];
    hub->idles[i] = last;
    last->idle_index = i;
    p->idle_index = -1;
}

/* Nothing else is ready: the idle callers not yet queued are, last first. */
static void
idle_feed(HubObject *hub)
{
    for (Py_ssize_t i = hub->nidles - 1; i >= 0; i--) {
        parked_t *p = hub->idles[i];
        if (!p->idle_fed) {
            p->idle_fed = 1;
            p->queued = 1;
            fifo_push(&hub->ready, &p->node);
        }
    }
    hub->nidle_waiting = 0;
}

/* -- scheduling from the API -------------------------------------------------------------------- */

/* Queues a node; steals arg and kwargs (also on failure). 0, or -1 with MemoryError. */
static int
schedule(HubObject *hub, int kind, PyObject *target, PyObject *arg, PyObject *kwargs)
{
    cbnode_t *n = PyMem_Malloc(sizeof(cbnode_t));
    if (n == NULL) {
        Py_XDECREF(arg);
        Py_XDECREF(kwargs);
        PyErr_NoMemory();
        return -1;
    }
    n->node.kind = kind;
    n->target = Py_NewRef(target);
    n->arg = arg;
    n->kwargs = kwargs;
    fifo_push(&hub->ready, &n->node);
    poke(hub);
    return 0;
}

int
pc_hub_schedule_switch(HubObject *hub, PyObject *target, PyObject *args, PyObject *kwargs)
{
    return schedule(hub, N_SWITCH, target, args, kwargs);
}

int
pc_hub_schedule_start(HubObject *hub, PyObject *glet)
{
    return schedule(hub, N_START, glet, NULL, NULL);
}

int
pc_hub_schedule_call(HubObject *hub, PyObject *callable, PyObject *args)
{
    return schedule(hub, N_CALL, callable, args, NULL);
}

int
pc_hub_schedule_notify(HubObject *hub, PyObject *glet)
{
    if (hub->dead) {
        return 1;   /* its thread ended: nothing would ever run the node */
    }
    return schedule(hub, N_NOTIFY, glet, NULL, NULL);
}

int
pc_hub_schedule_throw(HubObject *hub, PyObject *target, PyObject *exc)
{
    return schedule(hub, N_THROW, target, Py_NewRef(exc), NULL);
}

PyObject *
pc_hub_greenlet(HubObject *hub)
{
    return hub->self;
}

PyObject *
pc_hub_main(HubObject *hub)
{
    return hub->main;
}

HubObject *
pc_hub_of(pc_state *st, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, st->Hub_Type)) {
        PyErr_Format(PyExc_TypeError, "Expected a hub, not %s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return HUB(obj);
}

/* -- errors --------------------------------------------------------------------------------------- */

/* gevent's Hub.handle_error for the set exception, which escaped into the hub from `context` (a
 * greenlet, a callable, or NULL for the loop itself): printed -- the traceback, then "<context>
 * failed with <ExceptionName>" -- unless it is GreenletExit or SystemExit (NOT_ERROR);
 * KeyboardInterrupt, SystemExit and SystemError (SYSTEM_ERROR) then belong to the main greenlet:
 * returns 1 with the exception still set, for the caller to raise there. Otherwise the exception
 * is cleared and 0 returned. */
/* The exception class tuple named attr on the hub's class (SYSTEM_ERROR, NOT_ERROR: a
 * subclass may change them), or NULL for the built-in default. New reference. */
static PyObject *
hub_error_classes(HubObject *hub, const char *attr)
{
    PyObject *t = PyObject_GetAttrString((PyObject *)Py_TYPE(hub->self), attr);
    if (t == NULL) {
        PyErr_Clear();
    }
    return t;
}

static int
matches(PyObject *et, PyObject *classes, PyObject *const *defaults, int n)
{
    if (classes != NULL) {
        return PyErr_GivenExceptionMatches(et, classes);
    }
    for (int i = 0; i < n; i++) {
        if (PyErr_GivenExceptionMatches(et, defaults[i])) {
            return 1;
        }
    }
    return 0;
}

/* The default handling (gevent's Hub.handle_error), for the set exception. */
static int
handle_error_default(HubObject *hub, PyObject *context)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    PyObject *sys_cls = hub_error_classes(hub, "SYSTEM_ERROR");
    PyObject *not_cls = hub_error_classes(hub, "NOT_ERROR");
    PyObject *sys_def[] = {PyExc_KeyboardInterrupt, PyExc_SystemExit, PyExc_SystemError};
    PyObject *not_def[] = {hub->st->GreenletExit, PyExc_SystemExit};
    int not_error = matches(et, not_cls, not_def, 2);
    int system = matches(et, sys_cls, sys_def, 3);
    Py_XDECREF(sys_cls);
    Py_XDECREF(not_cls);
    if (!not_error) {
        /* a class that defines print_exception (pyconc.gevent's Hub) prints; else the core */
        PyObject *pe = PyObject_GetAttrString(hub->self, "print_exception");
        if (pe != NULL) {
            PyObject *r = PyObject_CallFunctionObjArgs(pe, context ? context : Py_None, et,
                                                       ev ? ev : Py_None,
                                                       etb ? etb : Py_None, NULL);
            Py_XDECREF(r);
            Py_DECREF(pe);
        }
        else {
            PyErr_Clear();
            PyObject *tbmod = PyImport_ImportModule("traceback");
            PyObject *r = tbmod ? PyObject_CallMethod(tbmod, "print_exception", "OOO", et, ev,
                                                      etb ? etb : Py_None) : NULL;
            Py_XDECREF(r);
            Py_XDECREF(tbmod);
            /* then gevent's line: an ISO-8601 UTC timestamp and "<context> failed with <T>" */
            char stamp[40] = "";
            struct tm tmv;
            time_t now = time(NULL);
            if (gmtime_r(&now, &tmv) != NULL) {
                strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tmv);
            }
            PyObject *ctx = context ? PyObject_Repr(context) : NULL;
            PyObject *err = PySys_GetObject("stderr");   /* borrowed */
            PyObject *msg = NULL;
            if (r != NULL && context == NULL) {
                msg = PyUnicode_FromFormat("%s\n", stamp);
            }
            else if (r != NULL && ctx != NULL) {
                PyObject *tname = PyType_GetName((PyTypeObject *)et);
                msg = tname ? PyUnicode_FromFormat("%s %U failed with %U\n\n", stamp, ctx,
                                                   tname) : NULL;
                Py_XDECREF(tname);
            }
            if (err != NULL && err != Py_None && msg != NULL) {
                PyFile_WriteObject(msg, err, Py_PRINT_RAW);
            }
            Py_XDECREF(msg);
            Py_XDECREF(ctx);
        }
        PyErr_Clear();   /* printing is best effort */
    }
    if (system) {
        PyErr_Restore(et, ev, etb);
        return 1;
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    return 0;
}

static PyObject *hub_handle_error_meth(PyObject *self, PyObject *args);

int
pc_hub_handle_error(HubObject *hub, PyObject *context)
{
    /* A handle_error set on the hub instance, or overridden by its class, takes over (as
     * gevent's hubs allow); it handles system errors itself. */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);    /* no attribute lookup with an exception set */
    PyObject *h = PyObject_GetAttrString(hub->self, "handle_error");
    if (h == NULL) {
        PyErr_Clear();
    }
    else if (PyCFunction_Check(h) &&
             PyCFunction_GET_FUNCTION(h) == (PyCFunction)hub_handle_error_meth) {
        Py_CLEAR(h);
    }
    if (h == NULL) {
        PyErr_Restore(et, ev, etb);
        return handle_error_default(hub, context);
    }
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    PyObject *r = PyObject_CallFunctionObjArgs(h, context ? context : Py_None, et,
                                               ev ? ev : Py_None, etb ? etb : Py_None, NULL);
    Py_DECREF(h);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    if (r == NULL) {
        PyErr_WriteUnraisable(hub->self);
    }
    Py_XDECREF(r);
    return 0;
}

#define hub_handle_error pc_hub_handle_error

/* Raises the set exception in the main greenlet (switching to it), as gevent does for system
 * errors and LoopExit. Returns when main switches back to the hub: 0, or 2 with GreenletExit
 * (the hub is being killed). */
static int
throw_to_main(HubObject *hub)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    Py_XDECREF(et);
    Py_XDECREF(etb);
    PyObject *r = pc_greenlet_throw(hub->main, ev);
    Py_DECREF(ev);
    if (r == NULL) {
        if (PyErr_ExceptionMatches(hub->st->GreenletExit)) {
            return 2;
        }
        if (hub_handle_error(hub, hub->main)) {
            PyErr_Clear();   /* a system error main threw back at the hub: nowhere to go */
        }
    }
    Py_XDECREF(r);
    return 0;
}

/* -- fd watchers -------------------------------------------------------------------------------- */

static int
fds_reserve(HubObject *hub, int fd)
{
    void *t = hub->fds;
    int rc = pc_fd_table_reserve(&t, &hub->capfds, fd, sizeof(fdwatch_t), 0);
    hub->fds = t;
    return rc;
}

/* Makes epoll's interest for fd match its waiters. 0, or -1 with OSError. */
static int
fd_update(HubObject *hub, int fd)
{
    fdwatch_t *fw = &hub->fds[fd];
    if (fw->owner != 0) {
        return 0;   /* persistent: stays as it is until pc_hub_forget_fd */
    }
    uint32_t want = (fw->rd ? EPOLLIN : 0) | (fw->wr ? EPOLLOUT : 0);
    if (want == fw->registered) {
        return 0;
    }
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int op = want == 0 ? EPOLL_CTL_DEL : (fw->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
    if (epoll_ctl(hub->epfd, op, fd, &ev) < 0) {
        if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)) {
            fw->registered = 0;   /* closed meanwhile: the kernel dropped it */
            return 0;
        }
        if (op == EPOLL_CTL_MOD && errno == ENOENT) {
            op = EPOLL_CTL_ADD;   /* closed and reopened under the same number */
            if (epoll_ctl(hub->epfd, op, fd, &ev) == 0) {
                fw->registered = want;
                return 0;
            }
        }
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    fw->registered = want;
    return 0;
}

/* A park record leaves fd's watch (its wait is over, one way or another). */
static void
fd_forget(parked_t *p)
{
    HubObject *hub = p->hub;
    if (p->fd < 0 || p->orphaned || p->fd >= hub->capfds) {
        return;
    }
    fdwatch_t *fw = &hub->fds[p->fd];
    if (fw->rd == p) {
        fw->rd = NULL;
    }
    if (fw->wr == p) {
        fw->wr = NULL;
    }
    if (fw->rd == NULL && fw->wr == NULL) {
        hub->nwatch--;
    }
    if (fw->owner == 0) {   /* (a persistent registration stays: nothing to do) */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);   /* a thrown exception being reported must survive */
        if (fd_update(hub, p->fd) < 0) {
            PyErr_Clear();   /* a stale registration only costs a spurious event, handled later */
        }
        PyErr_Restore(et, ev, etb);
    }
    p->fd = -1;
}

/* -- parking ------------------------------------------------------------------------------------ */

/* Parks the current greenlet (not the hub) on its hub. w: the caller's linked stack waiter
 * (replaced on its list by the record), or NULL for sleep / idle / fd waits. deadline:
 * PC_FOREVER or absolute. how: 0 park until woken or the deadline; 1 ready at once (sleep(0));
 * 2 idle; 3 as 0, for a wait that has nothing to be woken by (a zero timeout's turn). slot: an
 * fd wait's watcher slot, which gets the record (fd, events describe it).
 * Returns PC_WAIT_WOKEN / PC_WAIT_TIMEOUT / PC_WAIT_ERROR, as pc_waiter_park. */
static int
park(HubObject *hub, pc_waiter *w, pc_time_t deadline, int how, parked_t **slot, int fd,
     uint32_t events)
{
    PyObject *cur = pc_greenlet_current_or_null();
    parked_t *p = parked_new(hub, cur);
    if (p == NULL) {
        if (w != NULL) {
            pc_waitlist_unlink(w);
        }
        return PC_WAIT_ERROR;
    }
    /* a wait's timeout is gevent's Timeout (priority -1), a sleep's is a plain timer */
    p->low = w != NULL || slot != NULL || how == 3;
    if (how == 3) {
        how = 0;
    }
    if (deadline != PC_FOREVER && how == 0 && timer_arm(hub, &p->timer, deadline) < 0) {
        if (w != NULL) {
            pc_waitlist_unlink(w);
        }
        parked_unlist(p);
        parked_free(p);
        return PC_WAIT_ERROR;
    }
    if (w != NULL) {
        p->w.woken = w->woken;
        p->w.nospin = w->nospin;
        p->w.order = w->order;
        pc_waitlist_replace(w, &p->w);
    }
    p->state = P_PARKED;
    if (how == 1) {
        make_ready(p, PC_WAIT_WOKEN);
    }
    else if (how == 2) {
        if (idle_add(hub, p) < 0) {
            parked_unlist(p);
            parked_free(p);
            return PC_WAIT_ERROR;
        }
        p->state = P_READY;
        p->result = PC_WAIT_WOKEN;
    }
    if (slot != NULL) {
        p->fd = fd;
        p->events = events;
        *slot = p;
    }

    PyObject *r = pc_greenlet_switch(hub->self, PyTuple_New(0), NULL);

    int result;
    if (r == NULL) {
        result = PC_WAIT_ERROR;       /* thrown into while parked: a kill, a Timeout */
    }
    else {
        Py_DECREF(r);
        if (p->state == P_RESUMING) {
            result = p->result;
            if (p->exc != NULL) {     /* an fd wait that another greenlet cancelled */
                PyErr_SetObject((PyObject *)Py_TYPE(p->exc), p->exc);
                result = PC_WAIT_ERROR;
            }
        }
        else {
            /* switched to by someone other than the hub (a stray g.switch()): gevent's
             * Waiter says so with InvalidSwitchError */
            PyErr_Format(hub->st->InvalidSwitchError, "Invalid switch into %R: got %R (expected "
                         "a resume from its hub)", cur, r);
            result = PC_WAIT_ERROR;
        }
    }
    /* done, whatever happened: nothing may find the record again */
    if (!p->orphaned) {
        timer_cancel(hub, &p->timer);
        fd_forget(p);
        idle_remove(p);
        parked_unlist(p);
    }
    if (p->w.list != NULL) {
        pc_waitlist_unlink(&p->w);
    }
    if (w != NULL) {
        w->woken = p->w.woken;
    }
    p->state = P_DONE;
    if (!p->queued) {
        parked_free(p);
    }
    else {
        /* still in a queue (woken, then thrown into before it ran): the loop frees it */
        Py_CLEAR(p->greenlet);
    }
    return result;
}

/* -- the loop ----------------------------------------------------------------------------------- */

/* Dispatches one ready node. Returns 0; 1 with an exception that belongs to the main greenlet
 * (the caller throws it there); 2 with GreenletExit: the hub itself is being killed. */
static int
dispatch(HubObject *hub, rnode_t *n)
{
    PyObject *r = NULL, *context = NULL;
    if (n->kind == N_RESUME) {
        parked_t *p = PARKED_OF_NODE(n);
        p->queued = 0;
        if (p->state != P_READY || p->orphaned) {
            if (p->state == P_DONE || p->orphaned) {
                parked_free(p);       /* its park ended while it waited in the queue */
            }
            return 0;
        }
        p->state = P_RESUMING;
        PyObject *g = Py_NewRef(p->greenlet);
        r = pc_greenlet_switch(g, PyTuple_New(0), NULL);
        context = g;
        if (r == NULL) {
            int sys = PyErr_ExceptionMatches(hub->st->GreenletExit) ? 2 : hub_handle_error(hub, g);
            Py_DECREF(g);
            return sys;
        }
        Py_DECREF(g);
        Py_DECREF(r);
        return 0;
    }
    cbnode_t *c = (cbnode_t *)n;
    PyObject *target = c->target, *arg = c->arg, *kwargs = c->kwargs;
    int kind = n->kind;
    PyMem_Free(c);
    if (kind == N_TIMER) {
        return timer_run_pending(hub, target);   /* takes the node's reference */
    }
    if (kind == N_NOTIFY) {
        pc_glet_notify(target);   /* reports what its links let out itself */
        Py_DECREF(target);
        return 0;
    }
    context = target;
    if (kind == N_START && !pc_glet_start_begins(target)) {
        r = Py_NewRef(Py_None);   /* killed before it started: it never runs */
    }
    else if (kind == N_SWITCH || kind == N_START) {
        r = pc_greenlet_switch(target, arg != NULL ? arg : PyTuple_New(0), kwargs);
        arg = kwargs = NULL;   /* stolen */
    }
    else if (kind == N_THROW) {
        /* gevent's Greenlet.throw: nothing for a greenlet that has died meanwhile (killed
         * twice before the first kill ran) */
        r = pc_greenlet_is_dead(target) ? Py_NewRef(Py_None) : pc_greenlet_throw(target, arg);
    }
    else {
        r = arg != NULL ? PyObject_Call(target, arg, kwargs) : PyObject_CallNoArgs(target);
    }
    int sys = 0;
    if (r == NULL) {
        /* GreenletExit out of a switch or throw was thrown into the hub itself: it is being
         * killed (a callback's GreenletExit is just not an error) */
        sys = (kind != N_CALL && PyErr_ExceptionMatches(hub->st->GreenletExit))
              ? 2 : hub_handle_error(hub, context);
    }
    Py_XDECREF(r);
    Py_XDECREF(arg);
    Py_XDECREF(kwargs);
    Py_DECREF(target);
    return sys;
}

static void reset_after_fork(HubObject *hub);
static void hub_destroy(HubObject *hub);

/* Runs the ready queue until it is empty, as gevent's loop runs its callbacks: what a node makes
 * ready (a callback it schedules, a greenlet it wakes, a sleep(0)) runs in the same pass, behind
 * what was queued before it -- so sleep(0) still yields to every greenlet ready before it, once.
 * Bounded as gevent bounds it: every READY_CHECK nodes the time is looked at, and after
 * READY_BUDGET_NS the pass ends, so that timers and I/O get their turn even while greenlets keep
 * yielding to each other. Returns as dispatch(). */
#define READY_CHECK 50
#define READY_BUDGET_NS 5000000   /* sys.getswitchinterval()'s default, gevent's bound */
static int
run_ready(HubObject *hub)
{
    int count = READY_CHECK;
    pc_time_t until = 0;
    while (hub->ready.count > 0 && !hub->dead) {
        rnode_t *node = fifo_pop(&hub->ready);
        if (node == NULL) {
            break;
        }
        int r = dispatch(hub, node);
        if (r) {
            return r;
        }
        if (hub->gen != pc_fork_generation) {
            reset_after_fork(hub);   /* a greenlet forked: this is the child now */
            return 0;
        }
        if (--count == 0 && hub->ready.count > 0) {
            count = READY_CHECK;
            pc_time_t now = pc_monotonic_ns();
            if (until == 0) {
                until = now + READY_BUDGET_NS;
            }
            else if (now >= until) {
                break;
            }
        }
    }
    return 0;
}

/* Fires the timers that are due. Returns 1 with a main-greenlet exception set, else 0. */
static int timer_fire_py(HubObject *hub, htimer_t *t);

static int
run_timers(HubObject *hub)
{
    hub->turn_fired = 0;
    if (hub->nheap == 0) {
        return 0;
    }
    /* Only the timers armed before this phase began, as libev collects the expired timers
     * once: one armed (or re-armed) by a timer's callback, or by a greenlet resumed from it,
     * waits for the next iteration, behind the callbacks queued meanwhile. */
    pc_time_t now = pc_monotonic_ns();
    uint64_t armed_before = hub->seq;
    while (hub->nheap > 0 && hub->heap[0]->deadline <= now && hub->heap[0]->seq < armed_before &&
           !hub->dead) {
        htimer_t *t = hub->heap[0];
        timer_cancel(hub, t);
        if (t->kind == T_PARK) {
            parked_t *p = PARKED_OF_TIMER(t);
            if (p->state == P_PARKED) {
                if (p->w.list != NULL) {
                    pc_waitlist_unlink(&p->w);   /* nobody may wake it now */
                }
                /* a wait's timeout runs after this turn's I/O, as a Timeout (poll_once) */
                make_ready_on(p, PC_WAIT_TIMEOUT, p->low ? &hub->low : &hub->ready);
                hub->turn_fired |= !p->low;
            }
        }
        else if (!timer_defer_low(hub, t)) {
            hub->turn_fired = 1;
            /* the timer's callback runs now, as libev's pending timer watcher; what it queues
             * (a greenlet it starts that ends at once queues its notification; a sleep(0))
             * waits for the callback pass, behind this turn's other pending watchers */
            fifo_t outer = hub->ready;
            hub->ready = (fifo_t){NULL, NULL, 0};
            int sys = timer_fire_py(hub, t);
            fifo_append(&hub->later, &hub->ready);
            hub->ready = outer;
            if (sys) {
                return 1;
            }
        }
    }
    return 0;
}

/* 1 if no thread but this one exists: nobody else could wake the hub. Both the interpreter's
 * thread states and the process's OS threads are counted -- a thread that was just started
 * has no thread state yet, but will. (Read only when the hub is about to declare LoopExit.) */
static int
only_thread(void)
{
    PyThreadState *ts = PyThreadState_Get();
    PyThreadState *t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(ts));
    int n = 0;
    for (; t != NULL; t = PyThreadState_Next(t)) {
        if (++n > 1) {
            return 0;
        }
    }
    FILE *f = fopen("/proc/self/status", "re");
    if (f != NULL) {
        char line[128];
        long threads = 1;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "Threads:", 8) == 0) {
                threads = strtol(line + 8, NULL, 10);
                break;
            }
        }
        fclose(f);
        if (threads > 1) {
            return 0;
        }
    }
    return 1;
}

/* Polls epoll. Returns 0, or 1 with a main-greenlet exception set (a signal handler raised, or
 * LoopExit). */
static int
poll_once(HubObject *hub)
{
    int timeout_ms = -1;
    if (hub->ready.count > 0 || hub->nidle_waiting > 0 || hub->low.count > 0 ||
            hub->later.count > 0) {
        timeout_ms = 0;
    }
    else if (hub->nheap > hub->nunref || (hub->nheap > 0 && (hub->nwatch > 0 ||
                                                            (hub->nparks > 0 &&
                                                             !only_thread())))) {
        pc_time_t left = hub->heap[0]->deadline - pc_monotonic_ns();
        timeout_ms = left <= 0 ? 0 : (left > (pc_time_t)INT32_MAX * 1000000
                                          ? INT32_MAX : (int)((left + 999999) / 1000000));
    }
    else if (hub->nheap == hub->nunref && hub->nwatch == 0 &&
             (hub->nparks == 0 || only_thread())) {
        /* Nothing can happen any more: nothing ready, no timer that counts, no descriptor
         * watched, and nobody parked that another thread could wake. */
        /* gevent's form: args (message, hub, handles); its str() is its repr() */
        PyObject *cls = hub->st->GeventLoopExit ? hub->st->GeventLoopExit : hub->st->LoopExit;
        PyObject *exc = PyObject_CallFunction(cls, "sO[]",
                                              "This operation would block forever", hub->self);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return 1;
    }
    struct epoll_event events[64];
    int n, err = 0;
    hub->polling = 1;
    if (timeout_ms == 0) {
        n = epoll_wait(hub->epfd, events, 64, 0);   /* no sleep: keep the GIL */
        err = n < 0 ? errno : 0;
    }
    else {
        PC_ASAN_THREAD_GUARD();
        Py_BEGIN_ALLOW_THREADS
        /* Spin first (wait.h's rules: two usable CPUs, an adaptive budget): a server whose
         * peer answers within microseconds then finds its next event without sleeping, and the
         * peer's send is spared the wake-up of a sleeping process (echo, 50 connections, idle
         * 2-CPU machine: 13-18k sleeps per 200k round trips -> 3.5-4.4k, as uvloop's). A spin
         * that stopped for a pending signal polls without sleeping, so the handlers run. */
        pc_time_t until = timeout_ms < 0 ? PC_FOREVER
                          : pc_monotonic_ns() + (pc_time_t)timeout_ms * 1000000;
        if (pc_spin_fd_nogil(hub->epfd, &hub->spin, until) != 0) {
            timeout_ms = 0;
        }
        else if (timeout_ms > 0) {   /* what the spin took off the next timer */
            pc_time_t left = until - pc_monotonic_ns();
            timeout_ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        n = epoll_wait(hub->epfd, events, 64, timeout_ms);
        err = n < 0 ? errno : 0;
        Py_END_ALLOW_THREADS
    }
    hub->polling = 0;
    if (n < 0) {
        if (err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return hub_handle_error(hub, hub->self);
        }
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == hub->evfd) {
            uint64_t v;
            ssize_t r = read(hub->evfd, &v, sizeof(v));
            (void)r;
            hub->poked = 0;
            continue;
        }
        if (fd < 0 || fd >= hub->capfds) {
            continue;
        }
        fdwatch_t *fw = &hub->fds[fd];
        uint32_t e = events[i].events;
        uint32_t err_hup = e & (EPOLLERR | EPOLLHUP);
        fw->edges |= e;
        if (fw->rd != NULL && (e & (EPOLLIN | EPOLLRDHUP) || err_hup)) {
            make_ready(fw->rd, PC_WAIT_WOKEN);
        }
        if (fw->wr != NULL && (e & EPOLLOUT || err_hup)) {
            make_ready(fw->wr, PC_WAIT_WOKEN);
        }
        if (fw->rd == NULL && fw->wr == NULL && fw->registered) {
            if (fd_update(hub, fd) < 0) {
                PyErr_Clear();
            }
        }
    }
    /* Python's signal handlers (the main thread's hub): a handler that raises goes to main,
     * reported first as gevent reports a system error with no context. */
    if (PyErr_CheckSignals() < 0) {
        return pc_hub_handle_error(hub, NULL);
    }
    /* nothing else to do: the idle callers run */
    if (hub->ready.count == 0 && hub->nidle_waiting > 0 && !hub->turn_fired) {
        idle_feed(hub);
    }
    /* then the expired timers of a negative priority: libev invokes a turn's pending watchers by
     * priority, so a Timeout (-1) fires after the greenlets this turn's I/O woke (a connect,
     * a recv whose data came), after the timers of priority 0 and after the idle callers: one
     * of them that stops it first (leaving its `with Timeout`) keeps it from firing */
    fifo_append(&hub->ready, &hub->low);
    fifo_append(&hub->ready, &hub->later);
    return 0;
}

/* The hub greenlet's run(): loops until the hub is destroyed, or killed (GreenletExit thrown into
 * it, which then ends it like any greenlet). */
static PyObject *
hub_run(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    HubObject *hub = HUB(self);
    while (!hub->dead) {
        if (hub->gen != pc_fork_generation) {
            reset_after_fork(hub);
        }
        int r = run_ready(hub);
        if (r == 0) {
            r = run_timers(hub);
        }
        if (r == 0) {
            r = poll_once(hub);
        }
        if (r == 1) {
            r = throw_to_main(hub);
        }
        if (r == 2) {
            hub_destroy(hub);
            return NULL;   /* GreenletExit: the greenlet's parent gets it as a value */
        }
    }
    Py_RETURN_NONE;
}

/* -- lifetime ----------------------------------------------------------------------------------- */

static int
open_fds(HubObject *hub)
{
    hub->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (hub->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    hub->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (hub->evfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(hub->epfd);
        hub->epfd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = hub->evfd};
    if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, hub->evfd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(hub->epfd);
        close(hub->evfd);
        hub->epfd = hub->evfd = -1;
        return -1;
    }
    return 0;
}

static void
close_fds(HubObject *hub)
{
    if (hub->epfd >= 0) {
        close(hub->epfd);
    }
    if (hub->evfd >= 0) {
        close(hub->evfd);
    }
    hub->epfd = hub->evfd = -1;
}

/* Drops the queues, timers and records. unlink: take records off their wait lists (valid in this
 * process); after a fork the lists are stale and are reset by their own generation check. */
static void
drop_state(HubObject *hub, int unlink)
{
    rnode_t *n;
    for (Py_ssize_t i = 0; i < hub->nidles; i++) {
        hub->idles[i]->idle_index = -1;   /* orphaned below, with every live record */
    }
    hub->nidles = hub->nidle_waiting = 0;
    /* (a dropped notification wakes joiners, which queues those of this hub on ready again:
     * round the queues until all three are empty) */
    fifo_t *queues[3] = {&hub->ready, &hub->low, &hub->later};
    for (int q = 0; q < 3; q = hub->ready.count > 0 ? 0 : q + 1) {
        while ((n = fifo_pop(queues[q])) != NULL) {
            if (n->kind == N_RESUME) {
                parked_t *p = PARKED_OF_NODE(n);
                p->queued = 0;
                if (p->state == P_DONE) {
                    parked_free(p);
                }
            }
            else {
                cbnode_t *c = (cbnode_t *)n;
                if (n->kind == N_TIMER) {
                    timer_forget_pending(c->target);
                }
                else if (n->kind == N_NOTIFY) {
                    /* a plain thread may be joining it: wake the joiners (a greenlet of this
                     * hub among them is queued here, and orphaned below) */
                    pc_glet_notify_dropped(c->target);
                }
                Py_XDECREF(c->arg);
                Py_XDECREF(c->kwargs);
                Py_DECREF(c->target);
                PyMem_Free(c);
            }
        }
    }
    /* Every live record is orphaned: its greenlet never resumes through this hub. The record
     * stays allocated for its park, which frees it if the greenlet is ever thrown into. */
    while (hub->parks.next != &hub->parks) {
        parked_t *p = hub->parks.next;
        parked_unlist(p);
        if (unlink && p->w.list != NULL) {
            pc_waitlist_unlink(&p->w);
        }
        p->w.list = NULL;
        p->orphaned = 1;
        p->timer.index = -1;
    }
    /* Armed Timer objects hold a reference to themselves (timer_start): dropped once the heap
     * is consistent again, since a Timer going away may take the hub with it. */
    PyObject *armed = PyList_New(0);
    for (Py_ssize_t i = 0; i < hub->nheap; i++) {
        htimer_t *t = hub->heap[i];
        t->index = -1;
        if (t->kind == T_PY) {
            PyObject *tm = timer_object_of(t);
            if (armed == NULL || PyList_Append(armed, tm) < 0) {
                PyErr_Clear();   /* leaks the one timer rather than freeing it too early */
            }
            else {
                Py_DECREF(tm);   /* the list holds it now */
            }
        }
    }
    hub->nheap = 0;
    PyMem_Free(hub->fds);
    hub->fds = NULL;
    hub->capfds = 0;
    hub->nwatch = 0;
    hub->npytimers = 0;
    hub->nunref = 0;
    Py_XDECREF(armed);
}

static void
reset_after_fork(HubObject *hub)
{
    drop_state(hub, 0);
    close_fds(hub);
    hub->polling = hub->poked = 0;
    hub->gen = pc_fork_generation;
    if (open_fds(hub) < 0) {
        PyErr_WriteUnraisable(hub->self);
        hub->dead = 1;
    }
}

/* Ends the hub: its thread is ending, or destroy() was called. */
static void
hub_destroy(HubObject *hub)
{
    if (hub->dead) {
        return;
    }
    hub->dead = 1;
    drop_state(hub, hub->gen == pc_fork_generation);
    close_fds(hub);
    if (tls_hub == hub) {
        tls_hub = NULL;
    }
}

static void
capsule_destructor(PyObject *capsule)
{
    HubObject *hub = PyCapsule_GetPointer(capsule, "pyconc.hub");
    if (hub != NULL) {
        hub_destroy(hub);
        Py_DECREF(hub->self);   /* partner: pc_hub_get */
    }
    PyErr_Clear();
}

HubObject *
pc_hub_get(pc_state *st, int create)
{
    HubObject *hub = tls_hub;
    if (hub != NULL) {
        if (hub->gen != pc_fork_generation && !hub->dead) {
            reset_after_fork(hub);
        }
        return hub;
    }
    if (!create || pc_coro_ensure(st) < 0) {
        return NULL;
    }
    PyObject *main = pc_greenlet_current(st);
    if (main == NULL) {
        return NULL;
    }
    main = pc_greenlet_main();
    PyObject *obj = pc_greenlet_new(st, st->HubClass ? (PyTypeObject *)st->HubClass
                                                     : st->Hub_Type, NULL, main);
    if (obj == NULL) {
        return NULL;
    }
    hub = HUB(obj);
    hub->self = obj;
    hub->st = st;
    hub->main = Py_NewRef(main);
    hub->ident = PyThread_get_thread_ident();
    hub->gen = pc_fork_generation;
    hub->epfd = hub->evfd = -1;
    hub->parks.next = hub->parks.prev = &hub->parks;
    hub->spin = (pc_spin)PC_SPIN_INIT;
    /* the rest is zero (tp_alloc) */
    if (open_fds(hub) < 0) {
        hub->dead = 1;
        Py_DECREF(obj);
        return NULL;
    }
    PyObject *tsdict = PyThreadState_GetDict();   /* borrowed */
    /* the capsule owns the reference to obj; partner: capsule_destructor */
    PyObject *cap = tsdict ? PyCapsule_New(hub, "pyconc.hub", capsule_destructor) : NULL;
    if (cap == NULL || PyDict_SetItemString(tsdict, "pyconc.hub", cap) < 0) {
        if (cap != NULL) {
            PyCapsule_SetDestructor(cap, NULL);
            Py_DECREF(cap);
        }
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "cannot create a hub: no thread state dict");
        }
        hub_destroy(hub);
        Py_DECREF(obj);
        return NULL;
    }
    Py_DECREF(cap);   /* the dict's reference owns it; the capsule owns the hub reference */
    tls_hub = hub;
    return hub;
}

/* -- pc_hub_ops ---------------------------------------------------------------------------------- */

static int
ops_can_yield(void)
{
    HubObject *hub = tls_hub;
    if (hub == NULL || hub->dead) {
        return 0;
    }
    PyObject *cur = pc_greenlet_current_or_null();
    if (cur == NULL) {
        return 0;
    }
    return cur == hub->self ? -1 : 1;
}

static int
ops_park(pc_waiter *w, pc_time_t deadline)
{
    HubObject *hub = tls_hub;
    if (hub->gen != pc_fork_generation) {
        reset_after_fork(hub);
    }
    return park(hub, w, deadline, 0, NULL, -1, 0);
}

static void
ops_wake(pc_waiter *w)
{
    make_ready((parked_t *)w, PC_WAIT_WOKEN);
}

int
pc_hub_resume_now(pc_waiter *w)
{
    HubObject *hub = tls_hub;
    if (hub == NULL || hub->dead || w->coro == NULL || w->hub != (void *)hub ||
            pc_greenlet_current_or_null() != hub->self) {
        return 0;
    }
    parked_t *p = (parked_t *)w;
    if (p->state != P_PARKED || p->orphaned) {
        return 0;
    }
    /* what a wake and the loop's dispatch of the record do, without the trip through the
     * ready queue */
    pc_waitlist_unlink(w);
    w->woken = 1;
    timer_cancel(hub, &p->timer);
    p->state = P_RESUMING;
    p->result = PC_WAIT_WOKEN;
    PyObject *g = Py_NewRef(p->greenlet);   /* p may be freed once the park returns */
    PyObject *r = pc_greenlet_switch(g, PyTuple_New(0), NULL);
    if (r == NULL && hub_handle_error(hub, g)) {
        /* a system error escaped: the main greenlet gets it, after this callback */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (ev == NULL || pc_hub_schedule_throw(hub, hub->main, ev) < 0) {
            PyErr_Clear();
        }
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
    }
    Py_XDECREF(r);
    Py_DECREF(g);
    return 1;
}

static int
ops_blocking_error(void)
{
    HubObject *hub = tls_hub;
    PyErr_Format(hub->st->BlockingSwitchOutError,
                 "Impossible to call blocking function in the event loop callback");
    return -1;
}

static const pc_hub_ops hub_ops = {
    .can_yield = ops_can_yield,
    .park = ops_park,
    .wake = ops_wake,
    .blocking_error = ops_blocking_error,
};

/* -- sleep, idle, fd waits ------------------------------------------------------------------------ */

static int park_fd(HubObject *hub, int fd, uint32_t events, pc_time_t deadline);

/* The hub of a caller that is about to yield: created if needed; an error for the hub itself. */
static HubObject *
yielding_hub(pc_state *st)
{
    HubObject *hub = pc_hub_get(st, 1);
    if (hub == NULL) {
        return NULL;
    }
    if (pc_greenlet_current(st) == hub->self) {
        PyErr_Format(st->BlockingSwitchOutError,
                     "Impossible to call blocking function in the event loop callback");
        return NULL;
    }
    return hub;
}

int
pc_hub_sleep(pc_state *st, pc_time_t rel_ns)
{
    HubObject *hub = yielding_hub(st);
    if (hub == NULL) {
        return -1;
    }
    int r = rel_ns <= 0 ? park(hub, NULL, PC_FOREVER, 1, NULL, -1, 0)
                        : park(hub, NULL, pc_deadline_after(rel_ns), 0, NULL, -1, 0);
    return r == PC_WAIT_ERROR ? -1 : 0;
}

int
pc_hub_zero_turn(pc_state *st)
{
    HubObject *hub = yielding_hub(st);
    if (hub == NULL) {
        return -1;
    }
    return park(hub, NULL, pc_deadline_after(PC_ZERO_TURN_NS), 3, NULL, -1, 0) == PC_WAIT_ERROR
           ? -1 : 0;
}

int
pc_hub_wait_fd(HubObject *hub, int fd, uint32_t events, pc_time_t deadline)
{
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "file descriptor cannot be a negative integer");
        return -1;
    }
    if (fds_reserve(hub, fd) < 0) {
        return -1;
    }
    fdwatch_t *fw = &hub->fds[fd];
    parked_t **slot = (events & EPOLLIN) ? &fw->rd : &fw->wr;
    if (*slot != NULL) {
        PyErr_Format(hub->st->ConcurrentObjectUseError,
                     "This socket is already used by another greenlet: %R", (*slot)->greenlet);
        return -1;
    }
    if (fw->owner != 0) {
        /* A persistent (edge-triggered) registration: this caller did not necessarily see
         * EAGAIN first, so re-arm it: EPOLL_CTL_MOD reports a readiness that already holds. */
        struct epoll_event ev = {.events = fw->registered, .data.fd = fd};
        if (epoll_ctl(hub->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            fw->owner = 0;    /* closed (and maybe reused) behind our back: register anew */
            fw->registered = 0;
        }
    }
    /* register first: an error (a bad fd) is reported before anything is parked */
    uint32_t want = fw->registered | ((events & EPOLLIN) ? EPOLLIN : EPOLLOUT);
    if (fw->owner == 0 && want != fw->registered) {
        struct epoll_event ev = {.events = want, .data.fd = fd};
        int op = fw->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(hub->epfd, op, fd, &ev) < 0 &&
                !(op == EPOLL_CTL_MOD && errno == ENOENT &&
                  epoll_ctl(hub->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)) {
            if (errno == EPERM) {
                return 1;   /* a regular file: always ready, as poll() says */
            }
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        fw->registered = want;
    }
    return park_fd(hub, fd, events, deadline);
}

/* Parks the caller as fd's waiter for events (fd reserved, its slot free, registered). */
static int
park_fd(HubObject *hub, int fd, uint32_t events, pc_time_t deadline)
{
    fdwatch_t *fw = &hub->fds[fd];
    if (fw->rd == NULL && fw->wr == NULL) {
        hub->nwatch++;   /* partner: fd_forget when the last waiter of fd leaves */
    }
    parked_t **slot = (events & EPOLLIN) ? &fw->rd : &fw->wr;
    int r = park(hub, NULL, deadline, 0, slot, fd, events);
    /* (the fds array may have moved while we were parked: no pointer into it survives) */
    if (r == PC_WAIT_ERROR && !PyErr_Occurred() && hub->fds != NULL && fd < hub->capfds &&
            hub->fds[fd].rd == NULL && hub->fds[fd].wr == NULL && hub->nwatch > 0) {
        hub->nwatch--;   /* park failed before the record took the slot */
    }
    return r == PC_WAIT_ERROR ? -1 : (r == PC_WAIT_WOKEN);
}

int
pc_hub_wait_io(HubObject *hub, int fd, uint32_t events, pc_time_t deadline, uint64_t owner)
{
    if (hub->gen != pc_fork_generation) {
        reset_after_fork(hub);
    }
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "file descriptor cannot be a negative integer");
        return -1;
    }
    if (fd >= hub->capfds && fds_reserve(hub, fd) < 0) {
        return -1;
    }
    fdwatch_t *fw = &hub->fds[fd];
    parked_t *other = (events & EPOLLIN) ? fw->rd : fw->wr;
    if (other != NULL) {
        PyErr_Format(hub->st->ConcurrentObjectUseError,
                     "This socket is already used by another greenlet: %R", other->greenlet);
        return -1;
    }
    if (fw->owner != owner) {
        struct epoll_event ev = {.events = FD_PERSIST_EVENTS, .data.fd = fd};
        int op = fw->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(hub->epfd, op, fd, &ev) < 0) {
            int alt = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
            if (!((errno == ENOENT || errno == EEXIST) && epoll_ctl(hub->epfd, alt, fd, &ev) == 0)) {
                if (errno == EPERM) {
                    return 1;   /* a regular file: always ready, as poll() says */
                }
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
        }
        fw->registered = FD_PERSIST_EVENTS;
        fw->owner = owner;
        fw->edges = EPOLLIN | EPOLLOUT;   /* unknown: may be ready either way */
    }
    return park_fd(hub, fd, events, deadline);
}

/* The events a reader or writer of fd cares about: readiness, and what ends the wait anyway. */
static uint32_t
edge_mask(uint32_t events)
{
    return ((events & EPOLLIN) ? (EPOLLIN | EPOLLRDHUP) : 0) | ((events & EPOLLOUT) ? EPOLLOUT : 0) |
           EPOLLERR | EPOLLHUP;
}

int
pc_hub_io_idle(HubObject *hub, int fd, uint64_t owner, uint32_t events)
{
    if (owner == 0 || hub->gen != pc_fork_generation || hub->dead || fd < 0 ||
            fd >= hub->capfds) {
        return 0;
    }
    fdwatch_t *fw = &hub->fds[fd];
    return fw->owner == owner && (fw->edges & edge_mask(events)) == 0;
}

void
pc_hub_io_drained(HubObject *hub, int fd, uint64_t owner, uint32_t events)
{
    if (owner == 0 || hub->gen != pc_fork_generation || hub->dead || fd < 0 ||
            fd >= hub->capfds) {
        return;
    }
    fdwatch_t *fw = &hub->fds[fd];
    if (fw->owner == owner) {
        fw->edges &= ~(events & (EPOLLIN | EPOLLOUT));   /* a hang-up or an error stays */
    }
}

void
pc_hub_forget_fd(HubObject *hub, int fd, uint64_t owner)
{
    if (hub->dead || hub->gen != pc_fork_generation || fd < 0 || fd >= hub->capfds) {
        return;
    }
    fdwatch_t *fw = &hub->fds[fd];
    if (fw->owner != owner || owner == 0) {
        return;
    }
    fw->owner = 0;
    /* back to the level-triggered registration of the waiters left (none: deleted) */
    uint32_t want = (fw->rd ? EPOLLIN : 0) | (fw->wr ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = want, .data.fd = fd};
    if (epoll_ctl(hub->epfd, want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL, fd, &ev) < 0 || want == 0) {
        fw->registered = 0;   /* already gone (closed), or deleted */
    }
    else {
        fw->registered = want;
    }
}

void
pc_hub_cancel_fd(HubObject *hub, int fd, PyObject *exc)
{
    if (fd < 0 || fd >= hub->capfds) {
        return;
    }
    pc_hub_cancel_fd_events(hub, fd, EPOLLIN | EPOLLOUT, exc);
}

void
pc_hub_cancel_fd_events(HubObject *hub, int fd, uint32_t events, PyObject *exc)
{
    if (fd < 0 || fd >= hub->capfds || hub->dead) {
        return;
    }
    fdwatch_t *fw = &hub->fds[fd];
    parked_t *ps[2] = {(events & EPOLLIN) ? fw->rd : NULL, (events & EPOLLOUT) ? fw->wr : NULL};
    for (int i = 0; i < 2; i++) {
        parked_t *p = ps[i];
        if (p != NULL && p->state == P_PARKED) {
            Py_XSETREF(p->exc, Py_NewRef(exc));
            make_ready(p, PC_WAIT_WOKEN);
            /* it leaves fd's watch now, not when it runs: the descriptor is about to be closed,
             * and its number may be waited on again before the woken greenlet runs */
            fd_forget(p);
        }
    }
}

/* -- Timer objects (hub.loop.timer) --------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    htimer_t t;
    HubObject *hub;           /* the hub's data, inside hubobj */
    PyObject *hubobj;         /* strong: the hub */
    int ref;                  /* 0: does not keep the loop alive (ref=False) */
    pc_time_t after, repeat;  /* ns */
    PyObject *callback;       /* strong while armed */
    PyObject *args;           /* strong while armed */
    int closed;
    int low;                  /* created with a negative priority: fires after the turn's I/O */
    int fire_pending;         /* expired, its N_TIMER node queued: stop() still cancels it */
    PyObject *weakreflist;
} TimerObject;

#define TIMER_OF(t) ((TimerObject *)((char *)(t) - offsetof(TimerObject, t)))

static PyObject *
timer_object_of(htimer_t *t)
{
    TimerObject *tm = TIMER_OF(t);
    Py_CLEAR(tm->callback);
    Py_CLEAR(tm->args);
    return (PyObject *)tm;
}

static int
timer_fire_py(HubObject *hub, htimer_t *t)
{
    TimerObject *tm = TIMER_OF(t);   /* the armed timer's self-reference is ours now */
    hub->npytimers--;
    hub->nunref -= !tm->ref;
    PyObject *cb = tm->callback, *args = tm->args;
    tm->callback = tm->args = NULL;
    if (tm->repeat > 0 && !tm->closed && cb != NULL) {
        /* re-armed before the call, as libev does: the callback may stop it */
        tm->callback = Py_NewRef(cb);
        tm->args = Py_XNewRef(args);
        if (timer_arm(hub, &tm->t, t->deadline + tm->repeat) == 0) {
            hub->npytimers++;
            hub->nunref += !tm->ref;
            Py_INCREF(tm);   /* armed again; partner: the next firing or timer_stop_impl */
        }
        else {
            PyErr_Clear();
            Py_CLEAR(tm->callback);
            Py_CLEAR(tm->args);
        }
    }
    int sys = 0;
    if (cb != NULL) {
        PyObject *r = args ? PyObject_Call(cb, args, NULL) : PyObject_CallNoArgs(cb);
        if (r == NULL) {
            sys = hub_handle_error(hub, cb);
        }
        Py_XDECREF(r);
    }
    Py_XDECREF(cb);
    Py_XDECREF(args);
    Py_DECREF(tm);
    return sys;
}

/* run_timers' choice for an expired Timer object: one of a negative priority is not run now
 * but queued on hub->low (poll_once moves it to the ready queue after the turn's I/O), still
 * pending: stop() before its turn cancels it. 1 if queued so, 0 if it is to fire now. */
static int
timer_defer_low(HubObject *hub, htimer_t *t)
{
    TimerObject *tm = TIMER_OF(t);
    if (!tm->low) {
        return 0;
    }
    cbnode_t *n = PyMem_Malloc(sizeof(cbnode_t));
    if (n == NULL) {
        return 0;   /* fire it now rather than lose it */
    }
    n->node.kind = N_TIMER;
    n->target = (PyObject *)tm;   /* the armed timer's self-reference moves to the node */
    n->arg = n->kwargs = NULL;
    tm->fire_pending = 1;
    fifo_push(&hub->low, &n->node);
    return 1;
}

/* dispatch's N_TIMER: fires the timer unless it was stopped since it expired. Takes the
 * node's reference. Returns as timer_fire_py. */
static int
timer_run_pending(HubObject *hub, PyObject *obj)
{
    TimerObject *tm = (TimerObject *)obj;
    if (!tm->fire_pending) {
        Py_DECREF(obj);   /* stopped meanwhile (timer_stop_impl left the reference to us) */
        return 0;
    }
    tm->fire_pending = 0;
    return timer_fire_py(hub, &tm->t);   /* takes the reference as the armed one */
}

/* drop_state's: a queued N_TIMER node is freed with its hub; the timer is no longer pending. */
static void
timer_forget_pending(PyObject *obj)
{
    ((TimerObject *)obj)->fire_pending = 0;
}

static int
timer_traverse(TimerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->hubobj);
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    return 0;
}

static void
timer_stop_impl(TimerObject *self)
{
    if (self->fire_pending) {
        /* expired but not yet run (libev's pending watcher): stopping it cancels the call; the
         * queued node holds the self-reference and drops it when the loop reaches it */
        self->fire_pending = 0;
        if (self->hub != NULL) {
            self->hub->npytimers--;
            self->hub->nunref -= !self->ref;
        }
    }
    else if (self->t.index >= 0 && self->hub != NULL) {
        timer_cancel(self->hub, &self->t);
        self->hub->npytimers--;
        self->hub->nunref -= !self->ref;
        Py_DECREF(self);   /* partner: the armed timer's self-reference (timer_start) */
    }
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
}

static int
timer_clear(TimerObject *self)
{
    timer_stop_impl(self);
    self->hub = NULL;
    Py_CLEAR(self->hubobj);
    return 0;
}

static void
timer_dealloc(TimerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    self->hub = NULL;
    Py_CLEAR(self->hubobj);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
timer_start(TimerObject *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "start() needs a callback");
        return NULL;
    }
    if (self->closed || self->hub == NULL || self->hub->dead) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        /* update= (libev's "update the loop's clock first") is accepted: ours is always read */
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kwds, &pos, &key, &value)) {
            if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "update") != 0) {
                PyErr_Format(PyExc_TypeError, "start() got an unexpected keyword argument '%S'",
                             key);
                return NULL;
            }
        }
    }
    PyObject *cb = PyTuple_GET_ITEM(args, 0);
    PyObject *cargs = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (cargs == NULL) {
        return NULL;
    }
    timer_stop_impl(self);
    self->callback = Py_NewRef(cb);
    self->args = cargs;
    if (timer_arm(self->hub, &self->t, pc_deadline_after(self->after)) < 0) {
        Py_CLEAR(self->callback);
        Py_CLEAR(self->args);
        return NULL;
    }
    self->hub->npytimers++;
    self->hub->nunref += !self->ref;
    Py_INCREF(self);   /* an armed timer stays alive; partner: timer_stop_impl / firing */
    Py_RETURN_NONE;
}

static PyObject *
timer_stop(TimerObject *self, PyObject *Py_UNUSED(ignored))
{
    timer_stop_impl(self);
    Py_RETURN_NONE;
}

static PyObject *
timer_close(TimerObject *self, PyObject *Py_UNUSED(ignored))
{
    timer_stop_impl(self);
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyObject *
timer_get_active(TimerObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->t.index >= 0);
}

static PyObject *
timer_get_pending(TimerObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->t.index >= 0 || self->fire_pending);
}

static PyObject *
timer_get_closed(TimerObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
timer_get_after(TimerObject *self, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble((double)self->after / 1e9);
}

static PyObject *
timer_get_repeat(TimerObject *self, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble((double)self->repeat / 1e9);
}

/* timer fired via a fired-by-the-loop callback: a timer whose callback is running is inactive
 * unless it repeats. The Python reference for an armed timer is dropped after firing. */

static PyObject *
timer_enter(TimerObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *
timer_exit(TimerObject *self, PyObject *args)
{
    timer_stop_impl(self);
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyMethodDef timer_methods[] = {
    {"__enter__", (PyCFunction)timer_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)timer_exit, METH_VARARGS, NULL},
    {"start", (PyCFunction)(void (*)(void))timer_start, METH_VARARGS | METH_KEYWORDS,
     "start(callback, *args): call callback(*args) in the hub when the timer expires"},
    {"stop", (PyCFunction)timer_stop, METH_NOARGS, "stop(): disarm"},
    {"close", (PyCFunction)timer_close, METH_NOARGS, "close(): disarm for good"},
    {NULL, NULL, 0, NULL},
};

/* ref: whether the armed timer keeps the loop alive (libev's watcher attribute, settable at any
 * time, as gevent's watchers allow). */
static PyObject *
timer_get_ref(TimerObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->ref);
}

static int
timer_set_ref(TimerObject *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute 'ref'");
        return -1;
    }
    int ref = PyObject_IsTrue(value);
    if (ref < 0) {
        return -1;
    }
    if ((self->t.index >= 0 || self->fire_pending) && self->hub != NULL) {
        self->hub->nunref += !ref - !self->ref;   /* armed: the loop's count follows */
    }
    self->ref = ref;
    return 0;
}

static PyGetSetDef timer_getset[] = {
    {"ref", (getter)timer_get_ref, (setter)timer_set_ref, NULL, NULL},
    {"active", (getter)timer_get_active, NULL, NULL, NULL},
    {"pending", (getter)timer_get_pending, NULL, NULL, NULL},
    {"closed", (getter)timer_get_closed, NULL, NULL, NULL},
    {"after", (getter)timer_get_after, NULL, NULL, NULL},
    {"repeat", (getter)timer_get_repeat, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef timer_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TimerObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot timer_slots[] = {
    {Py_tp_dealloc, timer_dealloc},
    {Py_tp_traverse, timer_traverse},
    {Py_tp_clear, timer_clear},
    {Py_tp_methods, timer_methods},
    {Py_tp_getset, timer_getset},
    {Py_tp_members, timer_members},
    {Py_tp_doc, "A hub timer (hub.loop.timer(after, repeat=0.0))"},
    {0, NULL},
};

static PyType_Spec timer_spec = {
    .name = "pyconc._core.HubTimer",
    .basicsize = sizeof(TimerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = timer_slots,
};

/* Seconds (a real number) to ns, for the hub's own API: negative counts as 0. */
static int
seconds_arg(PyObject *obj, pc_time_t *ns)
{
    double s = PyFloat_AsDouble(obj);
    if (s == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(s > 0)) {
        *ns = 0;
    }
    else if (s > 9e9) {
        *ns = (pc_time_t)9e18;
    }
    else {
        *ns = (pc_time_t)(s * 1e9);
    }
    return 0;
}

/* -- the Hub type ---------------------------------------------------------------------------------- */

static int
hub_traverse(PyObject *self, visitproc visit, void *arg)
{
    HubObject *hub = HUB(self);
    Py_VISIT(hub->main);
    return hub->st->Greenlet_Type->tp_traverse(self, visit, arg);
}

static int
hub_clear(PyObject *self)
{
    HubObject *hub = HUB(self);
    if (!hub->dead) {
        hub_destroy(hub);
    }
    Py_CLEAR(hub->main);
    PyMem_Free(hub->heap);
    hub->heap = NULL;
    hub->nheap = hub->capheap = 0;
    PyMem_Free(hub->idles);
    hub->idles = NULL;
    hub->capidles = 0;
    return hub->st->Greenlet_Type->tp_clear(self);
}

static PyObject *
hub_repr(PyObject *self)
{
    HubObject *hub = HUB(self);
    char buf[200];
    snprintf(buf, sizeof(buf), "epoll%s ready=%zd timers=%zd watchers=%d thread_ident=%#lx",
             hub->dead ? " destroyed" : "", hub->ready.count, hub->nheap, hub->nwatch,
             hub->ident);
    return PyUnicode_FromFormat("<Hub at %p %s>", self, buf);
}

static PyObject *
hub_switch(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    HubObject *hub = HUB(self);
    if (hub->dead) {
        PyErr_SetString(PyExc_ValueError, "the hub is destroyed");
        return NULL;
    }
    PyObject *cur = pc_greenlet_current(hub->st);
    if (cur == NULL) {
        return NULL;
    }
    if (cur == self) {
        PyErr_Format(hub->st->BlockingSwitchOutError,
                     "Impossible to call blocking function in the event loop callback");
        return NULL;
    }
    return pc_greenlet_switch(self, PyTuple_New(0), NULL);
}

static PyObject *
hub_run_callback(PyObject *self, PyObject *args)
{
    HubObject *hub = HUB(self);
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "run_callback() needs a callable");
        return NULL;
    }
    if (hub->dead) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return NULL;
    }
    PyObject *cargs = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (cargs == NULL ||
            pc_hub_schedule_call(hub, PyTuple_GET_ITEM(args, 0), cargs) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
hub_timer(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"after", "repeat", "ref", "priority", NULL};
    PyObject *after, *repeat = NULL, *ref = NULL, *priority = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:timer", kwlist, &after, &repeat, &ref,
                                     &priority)) {
        return NULL;
    }
    HubObject *hub = HUB(self);
    TimerObject *t = PyObject_GC_New(TimerObject, hub->st->HubTimer_Type);
    if (t == NULL) {
        return NULL;
    }
    t->t.index = -1;
    t->t.kind = T_PY;
    t->hub = hub;
    t->hubobj = Py_NewRef(self);
    t->callback = t->args = NULL;
    t->closed = 0;
    t->low = 0;
    t->fire_pending = 0;
    t->weakreflist = NULL;
    t->after = t->repeat = 0;
    t->ref = ref == NULL || PyObject_IsTrue(ref);
    PyObject_GC_Track(t);
    if (priority != NULL && priority != Py_None) {
        /* libev's priorities, as gevent uses them: only the order within a loop turn differs
         * (a Timeout, priority -1, fires after the turn's I/O and timers of priority 0) */
        long pri = PyLong_AsLong(priority);
        if (pri == -1 && PyErr_Occurred()) {
            Py_DECREF(t);
            return NULL;
        }
        t->low = pri < 0;
    }
    if (seconds_arg(after, &t->after) < 0 ||
            (repeat != NULL && seconds_arg(repeat, &t->repeat) < 0)) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyObject *
hub_now(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble((double)pc_monotonic_ns() / 1e9);
}

static PyObject *
hub_destroy_meth(PyObject *self, PyObject *args)
{
    hub_destroy(HUB(self));
    Py_RETURN_NONE;
}

static PyObject *
hub_handle_error_meth(PyObject *self, PyObject *args)
{
    PyObject *context, *type, *value, *tb;
    if (!PyArg_ParseTuple(args, "OOOO:handle_error", &context, &type, &value, &tb)) {
        return NULL;
    }
    HubObject *hub = HUB(self);
    if (value == Py_None || !PyExceptionInstance_Check(value)) {
        PyErr_SetObject(type, value);
    }
    else {
        PyErr_Restore(Py_NewRef(type), Py_NewRef(value), tb == Py_None ? NULL : Py_NewRef(tb));
    }
    if (handle_error_default(hub, context == Py_None ? NULL : context)) {
        /* a system error: raise it in main, now if we are the hub, else from the hub */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        PyObject *cur = pc_greenlet_current_or_null();
        int r;
        if (cur == self || cur == hub->main) {
            PyErr_Restore(et, ev, etb);
            r = throw_to_main(hub);
            if (r == 2) {
                return NULL;
            }
        }
        else {
            Py_XDECREF(et);
            Py_XDECREF(etb);
            r = pc_hub_schedule_throw(hub, hub->main, ev);
            Py_DECREF(ev);
            if (r < 0) {
                return NULL;
            }
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
hub_get_loop(PyObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self);   /* the hub is its own loop object */
}

static PyObject *
hub_get_thread_ident(PyObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(HUB(self)->ident);
}

static PyObject *
hub_get_destroyed(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(HUB(self)->dead);
}

static PyObject *
hub_get_stats(PyObject *self, void *Py_UNUSED(c))
{
    HubObject *hub = HUB(self);
    return Py_BuildValue("{snsnsnsisisn}", "ready", hub->ready.count, "idle", hub->nidles,
                         "timers", hub->nheap, "watchers", hub->nwatch,
                         "py_timers", hub->npytimers, "parked", hub->nparks);
}

static PyMethodDef hub_methods[] = {
    {"run", (PyCFunction)hub_run, METH_NOARGS, "the loop: the hub greenlet's run()"},
    {"switch", (PyCFunction)hub_switch, METH_NOARGS,
     "switch(): switch to the hub; returns when something switches back"},
    {"run_callback", (PyCFunction)hub_run_callback, METH_VARARGS,
     "run_callback(func, *args): call func(*args) in the hub, after what is ready now"},
    {"timer", (PyCFunction)(void (*)(void))hub_timer, METH_VARARGS | METH_KEYWORDS,
     "timer(after, repeat=0.0): a Timer; start(callback, *args) arms it"},
    {"now", (PyCFunction)hub_now, METH_NOARGS, "the loop's clock (monotonic seconds)"},
    {"update_now", (PyCFunction)hub_now, METH_NOARGS, "as now(): the clock is always read"},
    {"destroy", (PyCFunction)hub_destroy_meth, METH_VARARGS, "destroy(): end the hub"},
    {"handle_error", (PyCFunction)hub_handle_error_meth, METH_VARARGS,
     "handle_error(context, type, value, tb): print it (unless GreenletExit or SystemExit); "
     "KeyboardInterrupt, SystemExit and SystemError go on to the main greenlet"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef hub_getset[] = {
    {"loop", (getter)hub_get_loop, NULL, NULL, NULL},
    {"thread_ident", (getter)hub_get_thread_ident, NULL, NULL, NULL},
    {"destroyed", (getter)hub_get_destroyed, NULL, NULL, NULL},
    {"_stats", (getter)hub_get_stats, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot hub_slots[] = {
    {Py_tp_traverse, hub_traverse},
    {Py_tp_clear, hub_clear},
    {Py_tp_repr, hub_repr},
    {Py_tp_methods, hub_methods},
    {Py_tp_getset, hub_getset},
    {Py_tp_doc, "The coroutine hub of one OS thread (get_hub()): a greenlet whose run() is the "
                "event loop."},
    {0, NULL},
};

static PyType_Spec hub_spec = {
    .name = "pyconc._core.Hub",
    .basicsize = 0,   /* set at install: the greenlet type's size + sizeof(HubObject) */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_BASETYPE,
    .slots = hub_slots,
};

/* -- module functions ------------------------------------------------------------------------------ */

static PyObject *
m_get_hub(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    HubObject *hub = pc_hub_get(st, 1);
    return hub ? Py_NewRef(hub->self) : NULL;
}

static PyObject *
m_get_hub_if_exists(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    HubObject *hub = pc_hub_get((pc_state *)PyModule_GetState(module), 0);
    return Py_NewRef(hub ? hub->self : Py_None);
}

static PyObject *
m_sleep(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"seconds", "ref"};
    PyObject *a[2];
    if (pc_parse_args("sleep", args, nargs, kwnames, names, 2, a) < 0) {
        return NULL;
    }
    pc_time_t ns = 0;
    if (a[0] != NULL && seconds_arg(a[0], &ns) < 0) {
        return NULL;
    }
    if (pc_hub_sleep((pc_state *)PyModule_GetState(module), ns) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
m_idle(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"priority"};
    PyObject *a[1];
    if (pc_parse_args("idle", args, nargs, kwnames, names, 1, a) < 0) {
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    HubObject *hub = yielding_hub(st);
    if (hub == NULL) {
        return NULL;
    }
    if (park(hub, NULL, PC_FOREVER, 2, NULL, -1, 0) == PC_WAIT_ERROR) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
m_spawn_raw(PyObject *module, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "spawn_raw() missing 1 required positional argument: "
                        "'function'");
        return NULL;
    }
    PyObject *func = PyTuple_GET_ITEM(args, 0);
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "function must be callable");
        return NULL;
    }
    pc_state *st = (pc_state *)PyModule_GetState(module);
    HubObject *hub = pc_hub_get(st, 1);
    if (hub == NULL) {
        return NULL;
    }
    PyObject *g = pc_greenlet_new(st, NULL, func, hub->self);
    if (g == NULL) {
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL) {
        Py_DECREF(g);
        return NULL;
    }
    PyObject *kw = NULL;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0 && (kw = PyDict_Copy(kwargs)) == NULL) {
        Py_DECREF(rest);
        Py_DECREF(g);
        return NULL;
    }
    int r = pc_hub_schedule_switch(hub, g, rest, kw);
    if (r < 0) {
        Py_DECREF(g);
        return NULL;
    }
    return g;
}

/* _set_hub_class(cls): the class new hubs are made of (pyconc.gevent's Hub, a subclass adding
 * the Python-level API). */
static PyObject *
m_set_hub_class(PyObject *module, PyObject *cls)
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, st->Hub_Type)) {
        PyErr_SetString(PyExc_TypeError, "_set_hub_class() needs a subclass of Hub");
        return NULL;
    }
    Py_XSETREF(st->HubClass, Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyMethodDef hub_module_methods[] = {
    {"_set_hub_class", m_set_hub_class, METH_O, NULL},
    {"get_hub", m_get_hub, METH_NOARGS, "get_hub(): this thread's hub, created on first use"},
    {"_get_hub_if_exists", m_get_hub_if_exists, METH_NOARGS, "this thread's hub, or None"},
    {"sleep", (PyCFunction)(void (*)(void))m_sleep, METH_FASTCALL | METH_KEYWORDS,
     "sleep(seconds=0, ref=True): park this greenlet; sleep(0) yields to every ready greenlet "
     "once"},
    {"idle", (PyCFunction)(void (*)(void))m_idle, METH_FASTCALL | METH_KEYWORDS,
     "idle(priority=0): park until nothing else is ready"},
    {"spawn_raw", (PyCFunction)(void (*)(void))m_spawn_raw, METH_VARARGS | METH_KEYWORDS,
     "spawn_raw(function, *args, **kwargs): a greenlet whose parent is the hub, started at the "
     "hub's next turn"},
    {NULL, NULL, 0, NULL},
};

int
pc_hub_install(PyObject *module, pc_state *st)
{
    st->LoopExit = PyErr_NewExceptionWithDoc(
        "pyconc.gevent.exceptions.LoopExit", "Nothing could ever wake the blocked greenlet: "
        "the hub has nothing ready, no timer, no watcher, and no other thread exists.",
        PyExc_Exception, NULL);
    st->BlockingSwitchOutError = st->LoopExit ? PyErr_NewExceptionWithDoc(
        "pyconc.gevent.exceptions.BlockingSwitchOutError", "A blocking call in the hub "
        "greenlet itself.", PyExc_AssertionError, NULL) : NULL;
    st->InvalidSwitchError = st->BlockingSwitchOutError ? PyErr_NewExceptionWithDoc(
        "pyconc.gevent.exceptions.InvalidSwitchError", "A parked greenlet was switched to by "
        "something other than its hub.", PyExc_AssertionError, NULL) : NULL;
    st->ConcurrentObjectUseError = st->InvalidSwitchError ? PyErr_NewExceptionWithDoc(
        "pyconc.gevent.exceptions.ConcurrentObjectUseError", "Two greenlets waited on the same "
        "object at once where only one may.", PyExc_AssertionError, NULL) : NULL;
    if (st->ConcurrentObjectUseError == NULL ||
            PyModule_AddObjectRef(module, "LoopExit", st->LoopExit) < 0 ||
            PyModule_AddObjectRef(module, "BlockingSwitchOutError",
                                  st->BlockingSwitchOutError) < 0 ||
            PyModule_AddObjectRef(module, "InvalidSwitchError", st->InvalidSwitchError) < 0 ||
            PyModule_AddObjectRef(module, "ConcurrentObjectUseError",
                                  st->ConcurrentObjectUseError) < 0) {
        return -1;
    }
    hub_data_offset = st->Greenlet_Type->tp_basicsize;
    hub_spec.basicsize = (int)(hub_data_offset + sizeof(HubObject));
    if (pc_add_type(module, &hub_spec, (PyObject *)st->Greenlet_Type, &st->Hub_Type) < 0 ||
            pc_add_type(module, &timer_spec, NULL, &st->HubTimer_Type) < 0 ||
            PyModule_AddFunctions(module, hub_module_methods) < 0) {
        return -1;
    }
    pc_hub = &hub_ops;
    return 0;
}

int
pc_hub_alive(HubObject *hub)
{
    return !hub->dead;
}
