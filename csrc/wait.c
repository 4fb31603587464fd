/* wait.c -- the waiter, wait lists, futex parking, deadlines and timeout parsing.
 * See wait.h for the contract and the locking rules. */
#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const pc_hub_ops *pc_hub = NULL;
uint64_t pc_fork_generation = 1;

static void
after_fork_child(void)
{
    /* Runs in the child right after fork(), before any Python code. Wait lists stamped with an
     * older generation are emptied lazily by pc_waitlist_check(). */
    pc_fork_generation++;
}

int
pc_wait_init(void)
{
    static int done = 0;
    if (done) {
        return 0;
    }
    int err = pthread_atfork(NULL, NULL, after_fork_child);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    done = 1;
    return 0;
}

/* -- time ---------------------------------------------------------------------------------- */

pc_time_t
pc_monotonic_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        abort();  /* CLOCK_MONOTONIC cannot fail on Linux */
    }
    return (pc_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

pc_time_t
pc_deadline_after(pc_time_t rel_ns)
{
    if (rel_ns < 0) {
        return PC_FOREVER;
    }
    pc_time_t now = pc_monotonic_ns();
    if (rel_ns > INT64_MAX - now) {
        return INT64_MAX;
    }
    return now + rel_ns;
}

/* -- the stdlib's argument rules and messages ------------------------------------------------
 *
 * CPython 3.11's, in this one place; where a later version parses or words something differently,
 * the #if below picks its way. (3.13: Lock.acquire's blocking is a bool ('p'), a negative timeout
 * "must be a non-negative number", and _PyTime_t became PyTime_t in the overflow message.) */
#if PY_VERSION_HEX >= 0x030D0000
#define BLOCKING_IS_BOOL 1
#define MSG_TIMEOUT_NEGATIVE "timeout value must be a non-negative number"
#define MSG_PYTIME_OVERFLOW "timestamp too large to convert to C PyTime_t"
#else
#define BLOCKING_IS_BOOL 0
#define MSG_TIMEOUT_NEGATIVE "timeout value must be positive"
#define MSG_PYTIME_OVERFLOW "timestamp too large to convert to C _PyTime_t"
#endif

int
pc_parse_blocking(PyObject *obj, int *blocking)
{
#if BLOCKING_IS_BOOL
    int b = PyObject_IsTrue(obj);
    if (b < 0) {
        return -1;
    }
    *blocking = b;
    return 0;
#else
    /* PyArg_Parse's "i": an integer through __index__ (a float is a TypeError), range-checked. */
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "signed integer is greater than maximum");
        return -1;
    }
    if (v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, "signed integer is less than minimum");
        return -1;
    }
    *blocking = v != 0;
    return 0;
#endif
}

/* Converts a timeout object to a double like the stdlib does: floats as they are, anything else
 * through __index__. Returns 0, or -1 with TypeError set. */
static int
timeout_as_double(PyObject *obj, double *out)
{
    if (PyFloat_Check(obj)) {
        *out = PyFloat_AS_DOUBLE(obj);
        return 0;
    }
    PyObject *idx = PyNumber_Index(obj);
    if (idx == NULL) {
        return -1;
    }
    double d = PyLong_AsDouble(idx);
    Py_DECREF(idx);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *out = d;
    return 0;
}

static int
set_overflow(void)
{
    PyErr_SetString(PyExc_OverflowError, "timestamp out of range for platform time_t");
    return -1;
}

static pc_time_t
seconds_to_ns(double t)
{
    /* Round up, as the stdlib's _PyTime_ROUND_TIMEOUT does: never wake before the timeout. */
    double ns = ceil(t * 1e9);
    if (ns >= 9.2e18) {
        return INT64_MAX;
    }
    return (pc_time_t)ns;
}

/* `obj <op> 0` as Python evaluates it: 1, 0, or -1 with the comparison's exception. */
static int
compare_with_zero(PyObject *obj, int op)
{
    PyObject *zero = PyLong_FromLong(0);
    int r = zero ? PyObject_RichCompareBool(obj, zero, op) : -1;
    Py_XDECREF(zero);
    return r;
}

int
pc_parse_acquire_timeout(int blocking, PyObject *timeout_obj, pc_time_t *rel_ns)
{
    double t = -1.0;
    if (timeout_obj != NULL) {
        if (timeout_as_double(timeout_obj, &t) < 0) {
            return -1;
        }
        if (isnan(t)) {
            PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
            return -1;
        }
    }
    if (!blocking && t != -1.0) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (t < 0 && t != -1.0) {
        PyErr_SetString(PyExc_ValueError, MSG_TIMEOUT_NEGATIVE);
        return -1;
    }
    if (!blocking) {
        *rel_ns = 0;
    }
    else if (t == -1.0) {
        *rel_ns = -1;
    }
    else {
        if (t > PC_TIMEOUT_MAX_SECONDS) {
            return set_overflow();
        }
        *rel_ns = seconds_to_ns(t);
    }
    return 0;
}

int
pc_parse_wait_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    double t;
    if (!PyFloat_Check(timeout_obj) && !PyLong_Check(timeout_obj)) {
        /* The stdlib's Python-level waits start with `if timeout > 0`: same test, same error
         * for a non-number. */
        int positive = compare_with_zero(timeout_obj, Py_GT);
        if (positive <= 0) {
            *rel_ns = 0;
            return positive;
        }
    }
    if (timeout_as_double(timeout_obj, &t) < 0) {
        return -1;
    }
    if (!(t > 0)) {  /* zero, negative and NaN: do not block, as the stdlib's Condition.wait */
        *rel_ns = 0;
        return 0;
    }
    if (t > PC_TIMEOUT_MAX_SECONDS) {
        return set_overflow();
    }
    *rel_ns = seconds_to_ns(t);
    return 0;
}

int
pc_parse_seconds(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout_obj);
    if (t == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(t > 0)) {           /* also NaN */
        *rel_ns = 0;
    }
    else if (t > 9e9) {
        *rel_ns = -1;
    }
    else {
        *rel_ns = (pc_time_t)(t * 1e9);
        if (*rel_ns == 0) {
            *rel_ns = 1;
        }
    }
    return 0;
}

int
pc_parse_queue_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    double t;
    if (!PyFloat_Check(timeout_obj) && !PyLong_Check(timeout_obj)) {
        /* The stdlib tests `timeout < 0` first: same test, same error for a non-number. */
        int negative = compare_with_zero(timeout_obj, Py_LT);
        if (negative < 0) {
            return -1;
        }
        t = negative ? -1.0 : 0.0;
        if (!negative && timeout_as_double(timeout_obj, &t) < 0) {
            return -1;
        }
    }
    else if (timeout_as_double(timeout_obj, &t) < 0) {
        return -1;
    }
    if (t < 0) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return -1;
    }
    if (t > PC_TIMEOUT_MAX_SECONDS) {
        return set_overflow();
    }
    if (isnan(t)) {
        *rel_ns = -1;  /* the stdlib never times out on NaN (it busy-waits); we just wait */
        return 0;
    }
    *rel_ns = t > 0 ? seconds_to_ns(t) : 0;
    return 0;
}

/* -- wait lists ----------------------------------------------------------------------------- */

void
pc_waitlist_link(pc_waitlist *wl, pc_waiter *w, int front)
{
    assert(w->list == NULL);
    w->list = wl;
    if (front) {
        w->prev = NULL;
        w->next = wl->head;
        if (wl->head) {
            wl->head->prev = w;
        }
        else {
            wl->tail = w;
        }
        wl->head = w;
    }
    else {
        w->next = NULL;
        w->prev = wl->tail;
        if (wl->tail) {
            wl->tail->next = w;
        }
        else {
            wl->head = w;
        }
        wl->tail = w;
    }
    wl->count++;
}

void
pc_waitlist_unlink(pc_waiter *w)
{
    pc_waitlist *wl = w->list;
    if (wl == NULL) {
        return;
    }
    if (w->prev) {
        w->prev->next = w->next;
    }
    else {
        wl->head = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    else {
        wl->tail = w->prev;
    }
    w->prev = w->next = NULL;
    w->list = NULL;
    wl->count--;
}

void
pc_waiter_wake(pc_waiter *w)
{
    pc_waitlist_unlink(w);
    w->woken = 1;
    if (w->coro != NULL) {
        pc_hub->wake(w);
        return;
    }
    /* Dekker pair with pc_waiter_park: store word, then load sleeping (both seq_cst). A waiter
     * still spinning sees the word without a syscall; one that may be asleep gets the wake.
     * Still holding the GIL: the parked thread cannot return (and drop its frame) until we let
     * go, so the address stays valid for the syscall. */
    __atomic_store_n(&w->word, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST)) {
        syscall(SYS_futex, &w->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

int
pc_waitlist_wake_one(pc_waitlist *wl)
{
    pc_waitlist_check(wl);
    if (wl->head == NULL) {
        return 0;
    }
    pc_waiter_wake(wl->head);
    return 1;
}

Py_ssize_t
pc_waitlist_wake_n(pc_waitlist *wl, Py_ssize_t n)
{
    pc_waitlist_check(wl);
    Py_ssize_t woken = 0;
    while (wl->head != NULL && (n < 0 || woken < n)) {
        pc_waiter_wake(wl->head);
        woken++;
    }
    return woken;
}

/* -- parking an OS thread ------------------------------------------------------------------ */

#define cpu_relax pc_cpu_relax

/* How long a parked thread spins before it sleeps (PYCONC_SPIN_NS, default 30 us), and how many
 * threads may spin at once: one less than the CPUs, so that the thread holding the GIL (the one
 * that will wake us) always has a CPU. On a single CPU nobody spins. Read once. */
static pc_time_t spin_ns = -1;
static int max_spinners = 0;
static int spinners = 0;      /* threads spinning now (atomic) */

static void
init_spin(void)
{
    const char *env = getenv("PYCONC_SPIN_NS");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    max_spinners = ncpu > 1 ? (int)(ncpu - 1) : 0;
    spin_ns = 30000;
    if (env != NULL && *env != '\0') {
        spin_ns = strtoll(env, NULL, 10);
        if (spin_ns < 0) {
            spin_ns = 0;
        }
    }
}

/* Spins (GIL released) until w is woken, spin_ns passes or the deadline, when a spinning slot
 * is free. A hand-off between two running threads (a ping-pong) usually comes back within
 * microseconds; sleeping in the kernel would add the scheduler's wake-up latency (tens of
 * microseconds on a VM) to every hand-off. Bounded: at worst a core is busy for spin_ns. */
static void
spin_for_wake(pc_waiter *w, pc_time_t deadline)
{
    if (spin_ns <= 0 || w->nospin) {
        return;
    }
    if (__atomic_fetch_add(&spinners, 1, __ATOMIC_RELAXED) < max_spinners) {
        pc_time_t until = pc_monotonic_ns() + spin_ns;
        if (deadline != PC_FOREVER && deadline < until) {
            until = deadline;
        }
        unsigned n = 0;
        while (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) == 0) {
            cpu_relax();
            if ((++n & 63) == 0 && pc_monotonic_ns() >= until) {
                break;
            }
        }
    }
    __atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
}

int
pc_waiter_park(pc_waiter *w, pc_time_t deadline)
{
    if (spin_ns < 0) {
        init_spin();
    }
    if (pc_hub != NULL && pc_hub->can_yield()) {
        return pc_hub->park(w, deadline);
    }
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (deadline != PC_FOREVER) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    for (;;) {
        int err = 0;
        Py_BEGIN_ALLOW_THREADS
        spin_for_wake(w, deadline);
        __atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&w->word, __ATOMIC_SEQ_CST) == 0) {
            /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a restarted wait
             * needs no recomputation. */
            long r = syscall(SYS_futex, &w->word, FUTEX_WAIT_BITSET_PRIVATE, 0, tsp, NULL,
                             FUTEX_BITSET_MATCH_ANY);
            if (r == 0 || errno == EAGAIN) {
                continue;  /* woken, possibly spuriously: the loop re-reads the word */
            }
            err = errno;
            break;
        }
        Py_END_ALLOW_THREADS
        if (w->woken) {
            return PC_WAIT_WOKEN;  /* a wake wins over a timeout or signal that raced it */
        }
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0) {
                /* A handler raised. It ran Python code, so a waker may have chosen us
                 * meanwhile: w->woken tells the caller whether to pass the wake on. */
                pc_waitlist_unlink(w);
                return PC_WAIT_ERROR;
            }
            continue;  /* handled: wait again until the same deadline */
        }
        pc_waitlist_unlink(w);
        if (err == ETIMEDOUT) {
            return PC_WAIT_TIMEOUT;
        }
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return PC_WAIT_ERROR;
    }
}

/* -- the shared acquire loop ---------------------------------------------------------------- */

int
pc_wait_acquire(pc_waitlist *wl, int *pending, int (*try_take)(void *obj), void *obj,
                pc_time_t rel_ns)
{
    if (try_take(obj)) {
        return 1;
    }
    if (rel_ns == 0) {
        return 0;
    }
    pc_time_t deadline = pc_deadline_after(rel_ns);
    int front = 0;
    for (;;) {
        pc_waiter w;
        int r = pc_wait_on(wl, &w, deadline, front);
        if (w.woken && pending != NULL) {
            *pending = 0;  /* the wake in flight has landed */
        }
        if (r == PC_WAIT_WOKEN) {
            if (try_take(obj)) {
                return 1;
            }
            front = 1;  /* a barging thread got there first: keep our place */
            continue;
        }
        if (r == PC_WAIT_TIMEOUT) {
            return try_take(obj);
        }
        /* PC_WAIT_ERROR: leave with the exception, but do not swallow a wake meant for us. */
        if (pending != NULL) {
            if (w.woken) {
                pc_wait_release_one(wl, pending);
            }
        }
        else {
            pc_waiter_pass_on(&w, wl);
        }
        return -1;
    }
}

/* -- waits across processes ------------------------------------------------------------------ */

int
pc_shared_wait(uint32_t *word, uint32_t expected, uint32_t *counts, pc_time_t deadline,
               pc_time_t slice_ns)
{
    if (spin_ns < 0) {
        init_spin();
    }
    for (;;) {
        pc_time_t now = pc_monotonic_ns();
        if (deadline != PC_FOREVER && now >= deadline) {
            return 0;
        }
        pc_time_t until = deadline;
        if (slice_ns != PC_FOREVER && (until == PC_FOREVER || now + slice_ns < until)) {
            until = now + slice_ns;
        }
        struct timespec ts, *tsp = NULL;
        if (until != PC_FOREVER) {
            ts.tv_sec = (time_t)(until / 1000000000);
            ts.tv_nsec = (long)(until % 1000000000);
            tsp = &ts;
        }
        int err = 0, changed = 0;
        Py_BEGIN_ALLOW_THREADS
        /* Spin first, as for thread waits: a hand-off between two running processes usually
         * completes within microseconds, a futex sleep costs a scheduler wake-up. */
        if (spin_ns > 0) {
            if (__atomic_fetch_add(&spinners, 1, __ATOMIC_RELAXED) < max_spinners) {
                pc_time_t stop = now + spin_ns;
                unsigned n = 0;
                while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == expected) {
                    cpu_relax();
                    if ((++n & 63) == 0 && pc_monotonic_ns() >= stop) {
                        break;
                    }
                }
            }
            __atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
        }
        if (counts != NULL) {
            __atomic_fetch_add(&counts[0], 1, __ATOMIC_SEQ_CST);
        }
        if (__atomic_load_n(word, __ATOMIC_SEQ_CST) == expected) {
            long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                             FUTEX_BITSET_MATCH_ANY);
            if (r != 0 && errno != EAGAIN) {
                err = errno;
            }
        }
        else {
            changed = 1;
        }
        if (counts != NULL) {
            __atomic_fetch_sub(&counts[0], 1, __ATOMIC_SEQ_CST);
        }
        Py_END_ALLOW_THREADS
        if (changed) {
            return 1;
        }
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0) {
                return -1;
            }
            continue;
        }
        if (err == ETIMEDOUT) {
            if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
                return 0;
            }
            return 1;  /* the slice ended */
        }
        if (err != 0) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return 1;
    }
}

void
pc_shared_wake(uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE, n < 0 ? INT_MAX : n, NULL, NULL, 0);
}

void
pc_spin_until_readable(int fd)
{
    if (spin_ns < 0) {
        init_spin();
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) != 0 || spin_ns <= 0) {
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    if (__atomic_fetch_add(&spinners, 1, __ATOMIC_RELAXED) < max_spinners) {
        pc_time_t stop = pc_monotonic_ns() + spin_ns;
        do {
            pfd.revents = 0;
            if (poll(&pfd, 1, 0) != 0) {
                break;
            }
        } while (pc_monotonic_ns() < stop);
    }
    __atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
    Py_END_ALLOW_THREADS
}

int
pc_wait_fds(const int *fds, int n, pc_time_t rel_ns)
{
    struct pollfd pfd[16];
    if (n > 16) {
        PyErr_SetString(PyExc_ValueError, "too many file descriptors to wait on");
        return -1;
    }
    pc_time_t deadline = rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
    for (;;) {
        for (int i = 0; i < n; i++) {
            pfd[i].fd = fds[i];
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        int ms = -1;
        if (deadline != PC_FOREVER) {
            pc_time_t left = deadline - pc_monotonic_ns();
            ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        int r, err = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(pfd, (nfds_t)n, ms);
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r > 0) {
            for (int i = 0; i < n; i++) {
                if (pfd[i].revents != 0) {
                    return i;
                }
            }
        }
        if (r < 0) {
            if (pc_syscall_failed(err) < 0) {
                return -1;
            }
            continue;
        }
        if (deadline != PC_FOREVER && pc_monotonic_ns() >= deadline) {
            return -2;
        }
    }
}

int
pc_wait_fd(int fd, pc_time_t rel_ns)
{
    int r = pc_wait_fds(&fd, 1, rel_ns);
    return r == -1 ? -1 : (r == 0 ? 1 : 0);
}
