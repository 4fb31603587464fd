/* wait.h -- the one way anything in pyconc blocks.
 *
 * A *waiter* is a small record that lives on the waiting caller's C stack (no allocation). A
 * primitive keeps a FIFO *wait list* of them. To block, a primitive links a waiter on its list and
 * calls pc_waiter_park(); to wake, it calls pc_waiter_wake() on waiters it chooses (the head for
 * a Lock, all of them for an Event, n of them for a Condition), which unlinks them first.
 *
 * Two ways to park, chosen per call by pc_waiter_park():
 *   - coroutine side: when a hub is installed (pc_hub != NULL) and pc_hub->can_yield() says the
 *     caller is a coroutine that may yield, the hub parks the current greenlet and switches away.
 *     The hub module plugs in through pc_hub_ops; the primitives never change for it.
 *   - thread side: otherwise the OS thread parks on the waiter's futex word with the GIL released,
 *     until woken or its monotonic deadline passes. EINTR runs the Python signal handlers
 *     (PyErr_CheckSignals); if one raised (KeyboardInterrupt) the wait is abandoned, otherwise it
 *     waits again for the time left.
 *
 * Spinning before sleeping (the thread side, cross-process waits, Connection receives, and the
 * hub's epoll_wait: one site per hub, spinning on the epoll descriptor). A hand-off
 * between two threads that are both running completes in microseconds, while a futex sleep adds
 * the scheduler's wake-up latency to it; but a spin is pure loss when the waker cannot run: on
 * one CPU the spinner holds the CPU its waker needs, and on a busy machine the spinner burns the
 * time slice that would have let it be woken promptly. The rule, per wait site (pc_spin: one per
 * wait list, and one per process-shared object and direction, kept in process memory):
 *   1. Nobody spins unless the calling thread may use at least two CPUs: its affinity mask
 *      (sched_getaffinity, re-read every 256 parks of the thread and after fork, so an
 *      os.sched_setaffinity is seen promptly) and the cgroup CPU quota (cpu.max in cgroup v2,
 *      cpu.cfs_quota_us / cpu.cfs_period_us in v1, re-read at most once a second), and at most
 *      usable-1 threads of the process spin at once, so the waker always has a CPU.
 *   2. The budget adapts, as glibc's adaptive mutex adapts its spin count and WebKit's and
 *      parking_lot's locks bound theirs: a spin that is woken after t moves the site's budget
 *      towards 4t (an average, so one slow hand-off does not reset it); a spin that runs out
 *      halves it, so a site whose waits are long stops spinning after a few waits. A site at
 *      zero probes with one full spin every 16 parks, so it notices when hand-offs become fast;
 *      each probe that fails doubles that interval (up to 1024 parks), one that succeeds brings
 *      it back to 16 -- on a loaded machine a probe every 16 parks was 2 us of lost CPU per
 *      hand-off, enough to make a Lock hand-off slower than the stdlib's.
 *   3. Like the Linux kernel's optimistic spinning, which spins only while the lock owner is on
 *      a CPU and stops at need_resched(), a spinner that finds it was descheduled (a gap of
 *      more than 50 us between two looks at the clock) stops at once and counts a failure: the
 *      machine is oversubscribed, and sleeping in the kernel, which gives the woken thread the
 *      scheduler's wake-up preference, is the better bet.
 *   4. On one usable CPU, a thread woken from a futex sleep while its waker still holds the GIL
 *      yields once (sched_yield) before it retakes the GIL: the scheduler usually runs the woken
 *      thread at once, which then found the GIL held, slept on the GIL's condition variable and
 *      cost the waker a signal on its release -- two futex calls per hand-off that the yield
 *      saves (Condition ping-pong pinned to one CPU: ~1.0x the stdlib before, 1.05-1.3x after).
 *      Only while the GIL is held and nobody waits for it: a yield with the GIL free handed the
 *      CPU to whatever other thread wanted the GIL, and a CPU-bound thread then kept it for a
 *      whole switch interval, 5 ms per hand-off (Queue ping-pong next to a busy thread, pinned:
 *      ~180 round trips a second, 60x fewer than the stdlib's).
 *   5. A spinner whose site was last woken by another thread from the CPU the spinner now runs
 *      on does not spin (nor count the park towards a probe): its waker shares its CPU and
 *      cannot run while it spins.
 *      On a busy machine the scheduler often keeps two threads that hand off to each other on
 *      one CPU (wake-affine placement), and there every spin, probes included, was lost time
 *      that delayed the waker (Lock hand-off beside a busy loop per CPU: 5% slower than the
 *      stdlib in that placement before, on a par after). The waker records its CPU at every
 *      wake (sched_getcpu: a read of the rseq area, no system call).
 *   6. A spin that was woken (so its waker is running on another CPU) goes on spinning, within
 *      the site's budget, until the GIL is free, and only then retakes it. The waker woke it
 *      while holding the GIL and usually lets go within a microsecond or two (at its own next
 *      wait); taking the GIL at once found it held and slept on the GIL's condition variable,
 *      which cost a futex sleep, the waker a signal, and the CPU's wake-up latency -- the larger
 *      part of a hand-off between two running threads (Queue ping-pong between two threads on an
 *      idle machine: 11-15 us -> 0.5-3 us a round trip). It takes no spinner slot (rule 1):
 *      it waits for a thread that is running, and the slot is what that thread needs next, for
 *      its own spin once it has let go of the GIL -- which ends this one. It stops when
 *      descheduled (rule 3); one that runs out (the waker went on with the GIL) halves the
 *      site's budget as a failed spin does.
 *   7. On one usable CPU, or when the waiter went to sleep on the CPU the waker runs on at a
 *      site whose spin budget is zero or unset (spinning does not pay there), Lock.release and
 *      RLock.release let go of the GIL around the futex wake of the waiter they chose
 *      (pc_waiter_wake_last). The woken thread usually preempts the waker; with the GIL free it
 *      runs on to its own next wait instead of finding the GIL held, so a hand-off is two context
 *      switches, not four to six (Lock hand-off pinned to one CPU: 12.5 us -> 5.3 us, the stdlib
 *      12.2 us). On a loaded machine the scheduler keeps the two threads of a hand-off on one
 *      CPU much of the time (rule 5), which is the same case (Lock hand-off beside a busy loop
 *      per CPU: 0.92-9.8x the stdlib from run to run before, 1.8-5.3x after, 3.11 and 3.14). On
 *      an idle machine spinning pays and this does not apply. Not when a thread waits for the
 *      GIL (it would get it instead of the woken one: pc_pystate_gil_waiters), and backing off
 *      when taking the GIL back took over 200 us (someone else ran with it). The cost: a releaser that goes
 *      on computing lets the waiter run first, where the stdlib's waiter waits for the GIL's
 *      switch interval -- fairer to the waiter, slower for the releaser (a loop that releases
 *      a lock every ~10 us of work next to a waiter that re-blocks at once: 0.75x the work).
 *      Only where the caller returns to Python next: other threads run during the wake.
 *      Queue.put and SimpleQueue.put (and their put_nowait) wake a getter the same way
 *      (pc_waitlist_wake_one_last): a woken getter needs the GIL before it can take the item,
 *      so the putter's GIL is what it finds in its way (Queue ping-pong, best of 5, 3.11:
 *      pinned 1.79x -> 4.59x the stdlib, next to a busy thread 1.45x -> 2.83x, beside a busy
 *      loop per CPU 1.45x -> 3.35x). The cost is the batching a producer got on one CPU by
 *      keeping the GIL while its consumers slept on it: 1 producer / 2 consumers pinned
 *      21x -> 8.6x the stdlib.
   8. Condition.notify over a pyconc Lock or RLock marks the waiters it chooses at once (a
 *      spinner sees its word) but holds the futex wake of a sleeping one back on the lock's wait
 *      list (up to PC_DEFER_MAX; more are woken at once): a notified waiter cannot return before
 *      it has taken the lock, which the notifier holds. The lock's release issues them, and a
 *      notifier that goes on to wait() takes them and issues them from its park once it has let
 *      go of the GIL. Woken at notify() time, the waiter found the GIL held, slept again on the
 *      GIL's condition variable and then on the lock: two more sleeps and wake-ups per
 *      hand-off, each a scheduling delay on a busy or one-CPU machine (Condition ping-pong:
 *      pinned 6.0 -> 2.4 us, beside a busy loop per CPU 7.0 -> 2.5 us, the stdlib's 6.6-7.0 us).
 *      Should the sleeper wake by itself first (its timeout), the wake lands on a stale address:
 *      a spurious wake of a later futex wait there at worst, as in rule 7.
 * PYCONC_SPIN_NS caps the budget (default 30000 ns); 0 turns spinning off.
 *
 * Locking rules. Every wait list and every waiter field is read and written only with the GIL
 * held (CPython 3.11-3.13 default builds). The exceptions are the futex word, which the parked
 * thread reads without the GIL (it is written with an atomic release store), and the waiter's
 * sleeping and cpu, which the parked thread writes without the GIL (atomic stores). A waker holds the GIL
 * from the moment it unlinks a waiter until after the futex wake syscall, and a parked thread must
 * retake the GIL before it returns, so a waiter's stack frame never disappears under a waker --
 * except in pc_waiter_wake_last (rule 7), whose syscall may come after the woken thread returned:
 * a futex wake of a dead stack address is at worst a spurious wake-up of a later wait there, and
 * every wait re-reads its word.
 *
 * Fork. pthread_atfork bumps pc_fork_generation in the child. A wait list stamped with an older
 * generation holds waiters of threads that do not exist in the child; pc_waitlist_check() empties
 * it. Primitives call it before they look at the list.
 */
#ifndef PYCONC_WAIT_H
#define PYCONC_WAIT_H

#include <Python.h>
#include <errno.h>
#include <stdint.h>

/* pyconc's thread-local variables (the greenlet switch state, the current thread and hub, the
 * spin bookkeeping): initial-exec, so that a read is one %fs-relative load instead of a call to
 * __tls_get_addr (the default for a dlopen'ed module, about one per function that touches them,
 * and a greenlet switch touches them in several). They take under 200 bytes of the static TLS
 * space that glibc keeps for modules loaded later. */
#if defined(__GNUC__) && defined(__GLIBC__)
#define PC_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define PC_TLS _Thread_local
#endif

/* Monotonic time in nanoseconds. PC_FOREVER as a deadline means no deadline. */
typedef int64_t pc_time_t;
#define PC_FOREVER ((pc_time_t)-1)

/* Results of pc_waiter_park(). */
#define PC_WAIT_ERROR   (-1)   /* an exception is set (signal handler raised) */
#define PC_WAIT_TIMEOUT 0      /* the deadline passed; the waiter is unlinked */
#define PC_WAIT_WOKEN   1      /* a waker chose this waiter; the waiter is unlinked */

typedef struct pc_waiter pc_waiter;

struct pc_waiter {
    pc_waiter *prev;          /* wait-list links; both NULL when unlinked */
    pc_waiter *next;
    struct pc_waitlist *list; /* the list this waiter is on, or NULL */
    uint32_t word;            /* futex word: 0 parked, 1 woken. Written atomically by the waker. */
    uint32_t sleeping;        /* 1 once the parked thread may be inside futex_wait (atomic) */
    int woken;                /* 1 once a waker chose this waiter (GIL-protected copy of word) */
    int nospin;               /* 1: sleep at once (long waits such as Thread.join) */
    int cpu;                  /* the CPU it went to sleep on (atomic; read once sleeping is 1) */
    uint32_t order;           /* for a primitive that orders its waiters among other entries
                                 (a Greenlet's joiners among its links): its arrival stamp */
    void *coro;               /* coroutine side: the parked greenlet, NULL for an OS thread */
    void *hub;                /* coroutine side: the hub owning coro */
};

/* A wait site's adaptive spin budget (see the header comment). Process-local, GIL-protected or
 * updated with relaxed atomics by a spinner that does not hold the GIL: a lost update only makes
 * the next estimate a little off. */
typedef struct pc_spin {
    int32_t ns;               /* current budget in ns; -1: not yet initialised */
    uint32_t parks;           /* parks at budget zero since the last probe */
    uint32_t probe_every;     /* at budget zero, one park in this many probes (0: the first) */
    int32_t waker_cpu;        /* the CPU the site's last waker ran on (-1: none yet) */
    unsigned long waker;      /* and that waker's thread (pc_thread_ident) */
} pc_spin;

#define PC_SPIN_INIT {-1, 0, 0, -1, 0}

#define PC_DEFER_MAX 4        /* wakes a lock's list holds back; more are issued at once */

typedef struct pc_waitlist {
    pc_waiter *head;          /* oldest waiter: first to be woken */
    pc_waiter *tail;          /* newest waiter */
    Py_ssize_t count;         /* number of linked waiters */
    uint64_t gen;             /* pc_fork_generation when the list was last used */
    pc_spin spin;             /* this site's spin budget */
    int ndeferred;            /* a lock's list: futex wakes held back until its release (rule 8) */
    uint32_t *deferred[PC_DEFER_MAX];
} pc_waitlist;

/* The coroutine side's hooks, installed by the hub (hub.c) at module init. */
typedef struct pc_hub_ops {
    /* 1 if the caller is a greenlet of a thread that has a hub, other than the hub itself: it
     * parks by yielding to the hub; -1 if the caller is the hub greenlet (it cannot wait for
     * itself); 0 otherwise (the OS thread parks). */
    int (*can_yield)(void);
    /* Park the current greenlet on w (already linked, on the caller's stack) until woken or the
     * deadline. Same contract and results as pc_waiter_park(). The hub puts a heap copy of w in
     * its place on the list (a suspended greenlet's stack is reused by others); that copy has
     * coro and hub set, and w->woken is brought back before the return. */
    int (*park)(pc_waiter *w, pc_time_t deadline);
    /* Make the greenlet parked on w (the heap copy) runnable. With the GIL, from any thread. */
    void (*wake)(pc_waiter *w);
    /* Sets the error for a blocking call made in the hub greenlet. Returns -1. */
    int (*blocking_error)(void);
} pc_hub_ops;

extern const pc_hub_ops *pc_hub;

/* gevent's zero timeout. A greenlet under a hub that waits with a timeout of 0 (or less) still
 * yields for one turn of the loop, as gevent arms a 0-second timer and switches to its hub:
 * the greenlets already ready run first (and may make the object ready), a Timeout due by then
 * fires in the order it was armed, and a loop that polls with timeout 0 does not starve the
 * others. pc_zero_timeout_turns() is 1 when the caller should wait so -- the call sites then wait
 * PC_ZERO_TURN_NS, a deadline the hub finds due at its next timer pass -- and 0 for an OS thread
 * (the stdlib's: no wait) and for the hub greenlet. blocking=False never waits, as in gevent. */
#define PC_ZERO_TURN_NS 1
static inline int
pc_zero_timeout_turns(void)
{
    return pc_hub != NULL && pc_hub->can_yield() > 0;
}
/* gevent's timeout is final. A greenlet whose wait timed out under its hub reports the timeout
 * even when the object became ready between its timer's firing and its resumption (a put or a
 * release by a greenlet the same timer pass resumed first): gevent throws its Timeout into the
 * waiter from the timer's callback, so in gevent nothing runs in between, and the waiter never
 * takes what came after its timeout. 1 when the caller should answer so (0 for an OS thread).
 * Asked by the gevent faces' waits, and by the ones whose stdlib counterpart is final too (the
 * C Lock, RLock and SimpleQueue); the stdlib faces written after the stdlib's Python loops
 * (Queue, Semaphore) do not ask: they look once more, as that code does under gevent too. */
static inline int
pc_timeout_is_final(int r)
{
    return r == PC_WAIT_TIMEOUT && pc_zero_timeout_turns();
}
extern uint64_t pc_fork_generation;

/* Installs the fork handler. Returns 0, or -1 with an exception set. Idempotent. */
int pc_wait_init(void);

/* -- time ---------------------------------------------------------------------------------- */

pc_time_t pc_monotonic_ns(void);

/* Deadline for a relative timeout in nanoseconds: PC_FOREVER if rel < 0, saturating. */
pc_time_t pc_deadline_after(pc_time_t rel_ns);

/* Largest timeout accepted, in seconds: threading.TIMEOUT_MAX. */
#define PC_TIMEOUT_MAX_SECONDS ((double)(PY_TIMEOUT_MAX / 1000000))

/* -- parsing the faces' arguments (wait.c) -------------------------------------------------
 *
 * Each parser gives the running CPython's results, exceptions and messages for every value: the
 * stdlib's C conversions, or the Python operations of the stdlib classes written in Python. A
 * relative timeout comes back in *rel_ns as -1 (wait forever), 0 (do not block) or nanoseconds.
 * All return 0, or -1 with an exception set, unless said otherwise. */

/* _PyTime's rounding modes for pc_time_from_object. */
#define PC_ROUND_TIMEOUT 0    /* away from zero (_PyTime_ROUND_TIMEOUT) */
#define PC_ROUND_CEILING 1

/* _PyTime_FromSecondsObject: a float (NaN: ValueError), or an int through __index__, to
 * nanoseconds; out of range: OverflowError with CPython's messages. */
int pc_time_from_object(PyObject *obj, int round, pc_time_t *ns);

/* _PyTime's OverflowError message for an int out of range, as the running interpreter words it
 * (read once by pc_wait_init; it changed within 3.13.x). For C code that mirrors another _PyTime
 * conversion, e.g. select.poll's milliseconds. */
const char *pc_msg_pytime_int_overflow(void);

/* Lock.acquire's blocking argument as the running CPython's C lock parses it (3.11: an int,
 * through __index__, so acquire(0.5) is a TypeError; 3.13: any object's truth). */
int pc_parse_blocking(PyObject *obj, int *blocking);

/* Argument Clinic's bool(accept={int}) of 3.11 (multiprocessing's SemLock.acquire block):
 * an int through __index__, OverflowError beyond a C int. */
int pc_parse_int_flag(PyObject *obj, int *flag);

/* Argument Clinic's `int` (_PyLong_AsInt): __index__, OverflowError beyond a C int. */
int pc_as_c_int(PyObject *obj, int *out);
/* The same, with PyArg_Parse's "i" messages (a C long's overflow first): for arguments the
 * stdlib parses with "i", as socket flags. */
int pc_as_c_int_arg(PyObject *obj, int *out);

/* Lock.acquire's (blocking, timeout): timeout_obj may be NULL (not given, i.e. -1). */
int pc_parse_acquire_timeout(int blocking, PyObject *timeout_obj, pc_time_t *rel_ns);

/* Condition.wait's timeout (and Event.wait's): NULL or None waits forever; `timeout > 0` false
 * (zero, negative, NaN) does not block; otherwise Lock.acquire(True, timeout)'s parse. */
int pc_parse_wait_timeout(PyObject *timeout_obj, pc_time_t *rel_ns);

/* The timeout of the stdlib's Python wait loops (Semaphore.acquire, Condition.wait_for,
 * Barrier.wait): `endtime = _time() + timeout`, then Condition.wait's parse of the timeout. Call
 * it only where the stdlib reaches the loop (a wait is needed). */
int pc_parse_loop_timeout(PyObject *timeout_obj, pc_time_t *rel_ns);
/* Its two steps, for a caller with checks between them (Condition.wait_for checks ownership
 * after computing endtime and before waiting). */
int pc_loop_timeout_begin(PyObject *timeout_obj, double *endtime);
int pc_loop_timeout_first(PyObject *timeout_obj, double endtime, pc_time_t *rel_ns);

/* Thread.join's timeout: max(timeout, 0) always; Lock.acquire's parse of it while the thread's
 * end has not been observed yet (live); from 3.13 on, _PyTime's parse of it, live or not. */
int pc_parse_join_timeout(PyObject *timeout_obj, int live, pc_time_t *rel_ns);

/* queue.Queue.put/get with block=True: the timeout becomes an end time (or forever) when the
 * call starts -- `timeout < 0` is ValueError("'timeout' must be a non-negative number"), then
 * `endtime = time() + timeout` -- and each wait it needs gets its deadline from
 * pc_queue_wait_deadline: 1 wait until *deadline, 0 the time is up (Empty/Full), -1 error
 * (a remaining time beyond TIMEOUT_MAX is an OverflowError, as in the stdlib's wait). */
typedef struct {
    int forever;              /* timeout None */
    double endtime;           /* monotonic seconds (may be inf or NaN) */
} pc_endtime;
int pc_parse_queue_timeout(PyObject *timeout_obj, pc_endtime *t);
int pc_queue_wait_deadline(const pc_endtime *t, pc_time_t *deadline);

/* SimpleQueue.get's timeout (C in the stdlib): _PyTime_ROUND_CEILING, a negative one is
 * ValueError, beyond TIMEOUT_MAX OverflowError -- whether or not an item is there. */
int pc_parse_ceiling_timeout(PyObject *timeout_obj, pc_time_t *rel_ns);

/* multiprocessing Connection.poll's timeout: `time.monotonic() + timeout`, then
 * selectors.PollSelector's `timeout <= 0` / `math.ceil(timeout * 1e3)` and poll()'s range. */
int pc_parse_poll_timeout(PyObject *timeout_obj, pc_time_t *rel_ns);

/* Parses a multiprocessing-style timeout in seconds: None (or NULL) waits forever (-1), a value
 * <= 0 does not block (0), anything else is relative nanoseconds (at least 1; beyond ~285 years:
 * forever). As the stdlib's multiprocessing, a negative timeout is not an error. 0 or -1. */
int pc_parse_seconds(PyObject *timeout_obj, pc_time_t *rel_ns);

/* -- wait lists ----------------------------------------------------------------------------- */

static inline void
pc_spin_init(pc_spin *sp)
{
    sp->ns = -1;
    sp->parks = 0;
    sp->probe_every = 0;
    sp->waker_cpu = -1;
    sp->waker = 0;
}

static inline void
pc_waitlist_init(pc_waitlist *wl)
{
    wl->head = wl->tail = NULL;
    wl->count = 0;
    wl->gen = pc_fork_generation;
    wl->ndeferred = 0;
    pc_spin_init(&wl->spin);
}

/* Empties a list whose waiters belong to threads lost in a fork. Cheap when nothing forked. */
static inline void
pc_waitlist_check(pc_waitlist *wl)
{
    if (wl->gen != pc_fork_generation) {
        pc_waitlist_init(wl);
    }
}

static inline void
pc_waiter_init(pc_waiter *w)
{
    w->prev = w->next = NULL;
    w->list = NULL;
    w->word = 0;
    w->sleeping = 0;
    w->woken = 0;
    w->nospin = 0;
    w->order = 0;
    w->coro = NULL;
    w->hub = NULL;
}

/* Links w at the tail (FIFO), or at the head when front is nonzero (a waiter that was woken but
 * lost the race keeps its place). */
void pc_waitlist_link(pc_waitlist *wl, pc_waiter *w, int front);

/* Unlinks w if it is linked. */
void pc_waitlist_unlink(pc_waiter *w);

/* Puts repl in w's place on w's list (w must be linked); w is left unlinked. */
void pc_waitlist_replace(pc_waiter *w, pc_waiter *repl);

/* Unlinks w and wakes it: the thread side stores 1 in its futex word and wakes the futex, the
 * coroutine side asks the hub to resume the coroutine. Call with the GIL held. */
void pc_waiter_wake(pc_waiter *w);

/* pc_waiter_wake() for a caller that returns to Python right after, with nothing left to do
 * under the GIL (Lock.release, RLock.release): on one usable CPU, or the waiter's, it lets go of
 * the GIL around the futex wake (rule 7 of the header comment). Never from C code that goes on using the state the
 * GIL protects: another thread may run before it returns. */
void pc_waiter_wake_last(pc_waiter *w);

/* Wakes the head waiter, through pc_waiter_wake_last (rule 7) if `last` (for a caller that
 * returns to Python next and touches nothing after it), else pc_waiter_wake. Returns 1 if
 * there was one, else 0. */
int pc_waitlist_wake_head(pc_waitlist *wl, int last);
static inline int pc_waitlist_wake_one(pc_waitlist *wl) { return pc_waitlist_wake_head(wl, 0); }
static inline int pc_waitlist_wake_one_last(pc_waitlist *wl) { return pc_waitlist_wake_head(wl, 1); }

/* Rule 8: wakes w (chosen and marked at once, as pc_waiter_wake does) but, if it is asleep,
 * holds its futex wake back on lock_wl, the wait list of a pyconc Lock or RLock that the caller
 * holds and w must take before it can return (Condition.notify). The lock's release issues it
 * (pc_waitlist_flush_deferred), or a Condition.wait that releases the lock hands it to
 * pc_waiter_park_wakes. */
void pc_waiter_wake_deferred(pc_waiter *w, pc_waitlist *lock_wl);

/* Issues the futex wakes held back on wl (the GIL held). */
void pc_waitlist_flush_deferred(pc_waitlist *wl);

/* Moves the wakes held back on wl to out (PC_DEFER_MAX entries); returns how many. */
int pc_waitlist_take_deferred(pc_waitlist *wl, uint32_t **out);

/* Issues n futex wakes taken by pc_waitlist_take_deferred. */
void pc_futex_wake_all(uint32_t *const *words, int n);

/* Wakes up to n waiters from the head (n < 0: all). Returns how many were woken. */
Py_ssize_t pc_waitlist_wake_n(pc_waitlist *wl, Py_ssize_t n);

/* Parks the caller on w, which the caller has linked on a wait list, until a waker chooses it or
 * the monotonic deadline passes (PC_FOREVER: no deadline). Releases the GIL while parked.
 * Returns PC_WAIT_WOKEN, PC_WAIT_TIMEOUT or PC_WAIT_ERROR (exception set). On TIMEOUT and ERROR
 * the waiter is unlinked; after ERROR, w->woken tells whether a wake was consumed anyway, so that
 * the primitive can pass it on. */
int pc_waiter_park(pc_waiter *w, pc_time_t deadline);

/* pc_waiter_park that first issues n futex wakes (pc_waitlist_take_deferred's): once it has let go
 * of the GIL, so that the woken threads find it free; with the GIL when it parks no OS thread. */
int pc_waiter_park_wakes(pc_waiter *w, pc_time_t deadline, uint32_t *const *wakes, int n);

/* Link w on wl, park, and return as pc_waiter_park(). The common case. */
static inline int
pc_wait_on(pc_waitlist *wl, pc_waiter *w, pc_time_t deadline, int front)
{
    pc_waiter_init(w);
    pc_waitlist_check(wl);
    pc_waitlist_link(wl, w, front);
    return pc_waiter_park(w, deadline);
}

/* pc_wait_on for a wait expected to be long: no spinning before the sleep. */
static inline int
pc_wait_on_long(pc_waitlist *wl, pc_waiter *w, pc_time_t deadline)
{
    pc_waiter_init(w);
    w->nospin = 1;
    pc_waitlist_check(wl);
    pc_waitlist_link(wl, w, 0);
    return pc_waiter_park(w, deadline);
}

/* The acquire loop shared by every counting primitive (Lock, RLock, Semaphore, ...):
 *   try_take(obj) under the GIL; if that fails and rel_ns != 0, park on wl until woken or the
 *   deadline, then try again. A waiter that was woken but lost the race to a barging thread goes
 *   back to the head of the list. rel_ns: -1 forever, 0 try once, else relative nanoseconds.
 * pending, if not NULL, is the primitive's "one wake in flight" flag: the releaser sets it when it
 * wakes the head and skips further wakes while it is set; the woken waiter clears it here. A
 * woken waiter that leaves with an exception passes its wake on to the next waiter.
 * Returns 1 taken, 0 not taken (timeout or would block), -1 with an exception set. */
int pc_wait_acquire(pc_waitlist *wl, int *pending, int (*try_take)(void *obj), void *obj,
                    pc_time_t rel_ns);

/* A waiter that was woken on wl but leaves without using the wake (an exception, a failed take)
 * hands it to the next waiter, so that no wake-up is lost. */
static inline void
pc_waiter_pass_on(pc_waiter *w, pc_waitlist *wl)
{
    if (w->woken) {
        pc_waitlist_wake_one(wl);
    }
}

/* The releaser's half of the pending protocol: wake the head unless a wake is in flight. */
static inline void
pc_wait_release_one(pc_waitlist *wl, int *pending)
{
    if (!*pending && wl->head != NULL) {
        *pending = 1;
        pc_waiter_wake(wl->head);
    }
}

/* The same with pc_waiter_wake_last(): only where the caller returns to Python next. */
static inline void
pc_wait_release_one_last(pc_waitlist *wl, int *pending)
{
    if (!*pending && wl->head != NULL) {
        *pending = 1;
        pc_waiter_wake_last(wl->head);
    }
}

/* One step of a busy-wait loop: tells the CPU we are spinning. */
static inline void
pc_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* -- waits across processes ----------------------------------------------------------------
 *
 * Process-shared primitives (semlock.c, mpqueue.c) keep a 32-bit futex word in shared memory and
 * cannot use stack waiters: the waker is in another process. They wait here instead, on the
 * word itself, with the same rules: the GIL released, a short bounded spin first, an absolute
 * monotonic deadline, EINTR running the signal handlers.
 *
 * pc_shared_wait() returns when *word != expected (possibly spuriously, so callers re-check
 * their condition), when the deadline passes, or after slice_ns (PC_FOREVER: no slice), which
 * lets a caller check whether the process it waits for is still alive. Returns 1 to re-check,
 * 0 if the deadline passed, -1 with an exception set (a signal handler raised). sp is the
 * caller's spin budget for this wait site (process-local); NULL: do not spin.
 *
 * counts (shared, next to the word; may be NULL): counts[0] is the number of processes that
 * may be asleep in the kernel on word. A waiter counts itself only after its spin, and looks at
 * the word once more before it sleeps; a waker changes the word first, then wakes only if the
 * count is not zero (every access seq_cst: no wake-up is lost). So a hand-off to a spinning
 * waiter costs no system call on either side. (counts[1] is reserved. Skipping the wake when a
 * spinner will see the change anyway is wrong: that spinner may consume an earlier change and
 * leave, and the sleepers would never hear of the later one.) */
int pc_shared_wait(uint32_t *word, uint32_t expected, uint32_t *counts, pc_time_t deadline,
                   pc_time_t slice_ns, pc_spin *sp);

/* A caller's next liveness slice: each slice that passes doubles it, up to cap. A long wait
 * then costs a timer wake-up every `cap` ns instead of every first slice, while a dead partner
 * early in a wait is still seen after the first slice. */
static inline pc_time_t
pc_slice_grow(pc_time_t slice_ns, pc_time_t cap)
{
    return slice_ns >= cap / 2 ? cap : slice_ns * 2;
}

/* Wakes up to n processes waiting on word (n < 0: all). Needs no GIL. */
void pc_shared_wake(uint32_t *word, int n);

static inline void
pc_shared_wake_one(uint32_t *word, uint32_t *counts)
{
    if (__atomic_load_n(&counts[0], __ATOMIC_SEQ_CST) != 0) {
        pc_shared_wake(word, 1);
    }
}

static inline void
pc_shared_wake_all(uint32_t *word, uint32_t *counts)
{
    if (__atomic_load_n(&counts[0], __ATOMIC_SEQ_CST) != 0) {
        pc_shared_wake(word, -1);
    }
}

/* After a blocking system call (made with the GIL released) failed with errno err, with the GIL
 * back: EINTR runs the signal handlers and returns 1 (retry) unless one raised; any other error
 * sets OSError. Returns 1 to retry, -1 with an exception set. */
static inline int
pc_syscall_failed(int err)
{
    if (err == EINTR) {
        return PyErr_CheckSignals() < 0 ? -1 : 1;
    }
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Waits until fd is readable (or has hung up), the GIL released, interruptible like every wait.
 * rel_ns: -1 forever, 0 poll. Returns 1 ready, 0 timed out, -1 with an exception set. */
int pc_wait_fd(int fd, pc_time_t rel_ns);

/* Spins briefly (GIL released, bounded like every spin) until fd is readable: a reply from a
 * running process usually arrives within microseconds, and a blocking read that sleeps first
 * pays a scheduler wake-up. Returns at once if fd is readable or nobody may spin. Returns 0, or
 * -1 with an exception set when a signal handler that ran (a signal landed during the spin)
 * raised. */
int pc_spin_until_readable(int fd, pc_spin *sp);

/* Spins (the caller released the GIL) until fd is readable, within sp's adaptive budget and the
 * deadline. Returns 1 readable, 2 a signal is pending (the main thread), 0 neither (nobody may
 * spin, or the spin ran out). */
int pc_spin_fd_nogil(int fd, pc_spin *sp, pc_time_t deadline);

/* CPUs the calling thread may use (affinity mask and cgroup quota), as the spin rule counts them.
 * Cheap (cached per thread). Needs no GIL. */
int pc_usable_cpus(void);

/* What the spin rule sees for the calling thread (for tests and benchmarks): a dict with
 * usable_cpus, affinity_cpus, cgroup_cpus (0: no quota), max_spinners, spin_max_ns. */
PyObject *pc_spin_info(PyObject *module, PyObject *unused);

/* Waits until any of fds[0..n) is readable; returns its index, -2 on timeout, -1 on error. */
int pc_wait_fds(const int *fds, int n, pc_time_t rel_ns);

/* Under ASan only (a no-op otherwise): called before a thread blocks with the GIL released. A
 * daemon thread blocked there when the interpreter finalizes is ended by CPython with
 * pthread_exit() as it retakes the GIL; the forced unwinding skips the epilogues of pyconc's
 * (instrumented) frames, so their stack red zones stay poisoned, and ASan's own thread-exit code,
 * which then runs on that stack, reports a stack-buffer-overflow. The first call in a thread
 * registers a thread-specific destructor that unpoisons the thread's whole stack; it runs before
 * ASan's, which ASan defers to the last destructor round. */
#if defined(__SANITIZE_ADDRESS__)
void pc_asan_thread_guard(void);
#define PC_ASAN_THREAD_GUARD() pc_asan_thread_guard()
#else
#define PC_ASAN_THREAD_GUARD() ((void)0)
#endif

#endif /* PYCONC_WAIT_H */
