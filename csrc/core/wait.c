/* wait.c -- the waiter, wait lists, futex parking, deadlines and timeout parsing.
 * See wait.h for the contract and the locking rules. */
#include "pyconc.h"
#include "wait.h"
#include "pystate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const pc_hub_ops *pc_hub = NULL;
static void probe_pytime(void);
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
    probe_pytime();
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
 * Every timeout, blocking flag and count the faces take is parsed here, the way the running
 * CPython's stdlib does it -- its C conversions (_PyTime's, PyArg's) or, for the classes the stdlib
 * writes in Python, the very Python operations those classes apply (`timeout > 0`,
 * `_time() + timeout`, ...), so that every value gives the same result, exception and message.
 * The messages are CPython 3.11's, in this one place; where a later version parses or words
 * something differently, the #if below picks its way. (3.13: Lock.acquire's and SemLock.acquire's
 * blocking are truth values and a negative timeout "must be a non-negative number". 3.12 takes
 * 3.11's way, as pyenv's 3.12.1 does.)
 *
 * _PyTime_FromSecondsObject's own messages changed within a minor series: 3.13.0 says
 * "timestamp out of range for platform time_t" for a float and "timestamp too large to convert
 * to C PyTime_t" for an int, 3.13.18 and 3.14.10 "timestamp out of range for C PyTime_t" for both,
 * and 3.14.10 rewrites a TypeError of the int conversion as "'T' object cannot be interpreted as
 * an integer or float". A version number cannot say which, so pc_wait_init() reads them from the
 * interpreter itself, once (probe_pytime()); the defaults are 3.11's. */
#if PY_VERSION_HEX >= 0x030D0000
#define BLOCKING_IS_BOOL 1
#define MSG_TIMEOUT_NEGATIVE "timeout value must be a non-negative number"
#else
#define BLOCKING_IS_BOOL 0
#define MSG_TIMEOUT_NEGATIVE "timeout value must be positive"
#endif
#define MSG_NAN "Invalid value NaN (not a number)"
#define MSG_TIMEOUT_TOO_LARGE "timeout value is too large"
#define MSG_NONBLOCKING_TIMEOUT "can't specify a timeout for a non-blocking call"
#define MSG_QUEUE_NEGATIVE "'timeout' must be a non-negative number"
#define MSG_POLL_TOO_LARGE "timeout is too large"
#define MSG_C_INT_OVERFLOW "Python int too large to convert to C int"

/* Set once by probe_pytime(), read-only afterwards (under the GIL either way). */
static char msg_float_overflow[128] = "timestamp out of range for platform time_t";
static char msg_int_overflow[128] = "timestamp too large to convert to C _PyTime_t";
static char msg_not_a_number[128] = "";   /* "" (3.11's TypeError stays) or the text after
                                            * the quoted type name, e.g. " object cannot be
                                            * interpreted as an integer or float" */

/* Calls acquire(timeout=value) on a free _thread lock and copies the message of the exception
 * of type `type` it raises into buf; leaves buf alone if it raises nothing or something else. */
static void
probe_message(PyObject *acquire, PyObject *value, PyObject *type, char *buf, size_t size)
{
    PyObject *kw = Py_BuildValue("{sO}", "timeout", value);
    PyObject *args = PyTuple_New(0);
    PyObject *r = kw && args ? PyObject_Call(acquire, args, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(args);
    if (r != NULL) {      /* it took the lock: give it back */
        PyObject *self = PyObject_GetAttrString(acquire, "__self__");
        PyObject *rr = self ? PyObject_CallMethod(self, "release", NULL) : NULL;
        Py_XDECREF(rr);
        Py_XDECREF(self);
        Py_DECREF(r);
    }
    pc_probe_message(type, buf, size);
}

/* Reads _PyTime_FromSecondsObject's messages from the running interpreter (see above). */
static void
probe_pytime(void)
{
    PyObject *thread = PyImport_ImportModule("_thread");
    PyObject *lock = thread ? PyObject_CallMethod(thread, "allocate_lock", NULL) : NULL;
    PyObject *acquire = lock ? PyObject_GetAttrString(lock, "acquire") : NULL;
    if (acquire != NULL) {
        PyObject *big_float = PyFloat_FromDouble(1e300);
        PyObject *big_int = PyLong_FromUnsignedLongLong(UINT64_MAX);
        PyObject *str = PyUnicode_FromString("x");
        if (big_float != NULL && big_int != NULL && str != NULL) {
            probe_message(acquire, big_float, PyExc_OverflowError, msg_float_overflow,
                          sizeof(msg_float_overflow));
            probe_message(acquire, big_int, PyExc_OverflowError, msg_int_overflow,
                          sizeof(msg_int_overflow));
            char text[128] = "";
            static const char plain[] = "'str' object cannot be interpreted as an integer";
            probe_message(acquire, str, PyExc_TypeError, text, sizeof(text));
            if (strncmp(text, "'str'", 5) == 0 && strcmp(text, plain) != 0) {
                strcpy(msg_not_a_number, text + 5);
            }
        }
        Py_XDECREF(big_float);
        Py_XDECREF(big_int);
        Py_XDECREF(str);
    }
    Py_XDECREF(acquire);
    Py_XDECREF(lock);
    Py_XDECREF(thread);
    PyErr_Clear();
}

const char *
pc_msg_pytime_int_overflow(void)
{
    return msg_int_overflow;
}

/* A TypeError of _PyTime's int conversion of obj, as the running interpreter words it. */
static void
reword_not_a_number(PyObject *obj)
{
    if (msg_not_a_number[0] == '\0' || !PyErr_ExceptionMatches(PyExc_TypeError)) {
        return;
    }
    PyErr_Clear();
#if PY_VERSION_HEX >= 0x030D0000
    PyErr_Format(PyExc_TypeError, "'%T'%s", obj, msg_not_a_number);   /* the qualified name */
#else
    PyErr_Format(PyExc_TypeError, "'%s'%s", Py_TYPE(obj)->tp_name, msg_not_a_number);
#endif
}

#define NS_PER_S 1000000000LL

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

int
pc_parse_int_flag(PyObject *obj, int *flag)
{
#if BLOCKING_IS_BOOL
    /* 3.13's _multiprocessing.SemLock.acquire: `block as blocking: bool` (a truth value) */
    int b = PyObject_IsTrue(obj);
    if (b < 0) {
        return -1;
    }
    *flag = b;
    return 0;
#else
    /* Argument Clinic's bool(accept={int}) of CPython 3.11 (_PyLong_AsInt). */
    int v;
    if (pc_as_c_int(obj, &v) < 0) {
        return -1;
    }
    *flag = v != 0;
    return 0;
#endif
}

int
pc_as_c_int(PyObject *obj, int *out)
{
    /* _PyLong_AsInt: __index__, then the range of a C int */
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, MSG_C_INT_OVERFLOW);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int
pc_as_c_int_arg(PyObject *obj, int *out)
{
    /* PyArg_Parse's "i": a C long first (its overflow message), then the range of a C int */
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, v > INT_MAX ? "signed integer is greater than maximum"
                                                         : "signed integer is less than minimum");
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* _PyTime's double -> nanoseconds (pytime_from_double): round, then range-check. */
static int
ns_from_double(double seconds, int round, pc_time_t *ns)
{
    volatile double d = seconds;   /* volatile as CPython's: no fused or reordered rounding */
    d *= 1e9;
    if (round == PC_ROUND_CEILING) {
        d = ceil(d);
    }
    else {
        d = d >= 0.0 ? ceil(d) : floor(d);   /* _PyTime_ROUND_UP: away from zero */
    }
    if (!((double)INT64_MIN <= d && d <= (double)INT64_MAX)) {
        PyErr_SetString(PyExc_OverflowError, msg_float_overflow);
        return -1;
    }
    /* (double)INT64_MAX is 2**63, which CPython's range check lets through and x86-64's
     * conversion turns into INT64_MIN; do the same without the undefined cast. */
    *ns = d >= 9223372036854775808.0 ? INT64_MIN : (pc_time_t)d;
    return 0;
}

int
pc_time_from_object(PyObject *obj, int round, pc_time_t *ns)
{
    if (PyFloat_Check(obj)) {
        double d = PyFloat_AsDouble(obj);
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, MSG_NAN);
            return -1;
        }
        return ns_from_double(d, round, ns);
    }
    long long sec = PyLong_AsLongLong(obj);   /* __index__: a TypeError for anything else */
    if (sec == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_OverflowError, msg_int_overflow);
        }
        reword_not_a_number(obj);
        return -1;
    }
    if (sec > INT64_MAX / NS_PER_S || sec < INT64_MIN / NS_PER_S) {
        PyErr_SetString(PyExc_OverflowError, msg_int_overflow);
        return -1;
    }
    *ns = (pc_time_t)sec * NS_PER_S;
    return 0;
}

/* _PyTime_AsMicroseconds(ns >= 0, ROUND_UP or CEILING) > PY_TIMEOUT_MAX: OverflowError. */
static int
check_timeout_max(pc_time_t ns)
{
    pc_time_t us = ns / 1000 + (ns % 1000 != 0);
    if (us > PY_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, MSG_TIMEOUT_TOO_LARGE);
        return -1;
    }
    return 0;
}

int
pc_parse_acquire_timeout(int blocking, PyObject *timeout_obj, pc_time_t *rel_ns)
{
    /* _threadmodule.c's lock_acquire_parse_args: -1 second exactly means "no timeout". */
    const pc_time_t unset = -NS_PER_S;
    pc_time_t t = unset;
    if (timeout_obj != NULL && pc_time_from_object(timeout_obj, PC_ROUND_TIMEOUT, &t) < 0) {
        return -1;
    }
    if (!blocking && t != unset) {
        PyErr_SetString(PyExc_ValueError, MSG_NONBLOCKING_TIMEOUT);
        return -1;
    }
    if (t < 0 && t != unset) {
        PyErr_SetString(PyExc_ValueError, MSG_TIMEOUT_NEGATIVE);
        return -1;
    }
    if (!blocking) {
        *rel_ns = 0;
    }
    else if (t == unset) {
        *rel_ns = -1;
    }
    else {
        if (check_timeout_max(t) < 0) {
            return -1;
        }
        *rel_ns = t;
    }
    return 0;
}

/* `obj <op> 0` as Python evaluates it: 1, 0, or -1 with the comparison's exception. Exact
 * floats and ints that fit a long are compared natively. */
static int
compare_with_zero(PyObject *obj, int op)
{
    if (PyFloat_CheckExact(obj)) {
        double d = PyFloat_AS_DOUBLE(obj);
        return op == Py_GT ? d > 0 : op == Py_LT ? d < 0 : op == Py_LE ? d <= 0 : d >= 0;
    }
    PyObject *zero = PyLong_FromLong(0);
    int r = zero ? PyObject_RichCompareBool(obj, zero, op) : -1;
    Py_XDECREF(zero);
    return r;
}

int
pc_parse_wait_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    /* threading.Condition.wait: `if timeout > 0: waiter.acquire(True, timeout)
     * else: waiter.acquire(False)`; 3.14 turned it round, `if timeout <= 0: ... else: ...`, so
     * that a NaN reaches acquire(), which refuses it. */
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
#if PY_VERSION_HEX >= 0x030E0000
    int expired = compare_with_zero(timeout_obj, Py_LE);
    if (expired != 0) {
        *rel_ns = 0;
        return expired < 0 ? -1 : 0;
    }
#else
    int positive = compare_with_zero(timeout_obj, Py_GT);
    if (positive <= 0) {
        *rel_ns = 0;
        return positive;
    }
#endif
    return pc_parse_acquire_timeout(1, timeout_obj, rel_ns);
}

/* The stdlib's `_time() + timeout` (time.monotonic), as a double; 0 or -1 with its error. A
 * result that is not a float (an exotic __radd__) counts as NaN: no deadline. */
static int
endtime_of(PyObject *timeout_obj, double *endtime)
{
    double now = (double)pc_monotonic_ns() / 1e9;
    if (PyFloat_CheckExact(timeout_obj)) {
        *endtime = now + PyFloat_AS_DOUBLE(timeout_obj);
        return 0;
    }
    PyObject *start = PyFloat_FromDouble(now);
    PyObject *end = start ? PyNumber_Add(start, timeout_obj) : NULL;
    Py_XDECREF(start);
    if (end == NULL) {
        return -1;
    }
    *endtime = PyFloat_Check(end) ? PyFloat_AS_DOUBLE(end) : NAN;
    Py_DECREF(end);
    return 0;
}

int
pc_loop_timeout_begin(PyObject *timeout_obj, double *endtime)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *endtime = NAN;
        return 0;
    }
    return endtime_of(timeout_obj, endtime);
}

int
pc_loop_timeout_first(PyObject *timeout_obj, double endtime, pc_time_t *rel_ns)
{
    if (pc_parse_wait_timeout(timeout_obj, rel_ns) < 0) {
        return -1;
    }
    if (*rel_ns == 0 && isnan(endtime)) {
        *rel_ns = -1;
    }
    return 0;
}

int
pc_parse_loop_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    /* The loops of Semaphore.acquire, Condition.wait_for and Barrier.wait:
     *     endtime = _time() + timeout          (once)
     *     cond.wait(timeout)                   (the object itself the first time)
     *     timeout = endtime - _time(); if timeout <= 0: break; cond.wait(timeout) ...
     * A first wait that does not block (timeout <= 0, or NaN) ends the loop at once, except for
     * a NaN endtime, which never compares <= 0: the stdlib spins forever, pyconc waits. */
    double endtime;
    if (pc_loop_timeout_begin(timeout_obj, &endtime) < 0) {
        return -1;
    }
    return pc_loop_timeout_first(timeout_obj, endtime, rel_ns);
}

int
pc_parse_join_timeout(PyObject *timeout_obj, int live, pc_time_t *rel_ns)
{
    /* Thread.join: `self._wait_for_tstate_lock(timeout=max(timeout, 0))`, whose lock.acquire(
     * True, timeout) parses it unless the thread's end was already observed (no lock left);
     * 3.13's ThreadHandle.join parses it always. */
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    PyObject *zero = PyLong_FromLong(0);
    int zero_bigger = zero ? PyObject_RichCompareBool(zero, timeout_obj, Py_GT) : -1;
    if (zero_bigger < 0) {
        Py_XDECREF(zero);
        return -1;
    }
    PyObject *t = zero_bigger ? zero : timeout_obj;
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13: `self._handle.join(timeout)`, which converts it with _PyTime_FromSecondsObject
     * whether the thread has ended or not, and has no TIMEOUT_MAX */
    (void)live;
    int r = pc_time_from_object(t, PC_ROUND_TIMEOUT, rel_ns);
#else
    int r = live ? pc_parse_acquire_timeout(1, t, rel_ns) : (*rel_ns = 0, 0);
#endif
    Py_DECREF(zero);
    return r;
}

int
pc_parse_queue_timeout(PyObject *timeout_obj, pc_endtime *t)
{
    /* queue.Queue.put/get with block=True: `elif timeout < 0: raise ValueError(...)`,
     * `else: endtime = time() + timeout` -- before anything is known about the wait. */
    t->forever = timeout_obj == NULL || timeout_obj == Py_None;
    if (t->forever) {
        return 0;
    }
    int negative = compare_with_zero(timeout_obj, Py_LT);
    if (negative != 0) {
        if (negative > 0) {
            PyErr_SetString(PyExc_ValueError, MSG_QUEUE_NEGATIVE);
        }
        return -1;
    }
    return endtime_of(timeout_obj, &t->endtime);
}

int
pc_queue_wait_deadline(const pc_endtime *t, pc_time_t *deadline)
{
    /* `remaining = endtime - time(); if remaining <= 0.0: raise Empty/Full;
     *  self.not_empty.wait(remaining)`: Condition.wait's parse of a float. */
    if (t->forever) {
        *deadline = PC_FOREVER;
        return 1;
    }
    double remaining = t->endtime - (double)pc_monotonic_ns() / 1e9;
    if (remaining <= 0.0) {
        return 0;
    }
    if (isnan(remaining)) {
#if PY_VERSION_HEX >= 0x030E0000
        PyErr_SetString(PyExc_ValueError, MSG_NAN);   /* 3.14's Condition.wait(nan) */
        return -1;
#else
        *deadline = PC_FOREVER;   /* the stdlib spins forever: wait(nan) does not block */
        return 1;
#endif
    }
    pc_time_t ns;
    if (ns_from_double(remaining, PC_ROUND_TIMEOUT, &ns) < 0 || check_timeout_max(ns) < 0) {
        return -1;
    }
    *deadline = pc_deadline_after(ns);
    return 1;
}

int
pc_parse_ceiling_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    /* _queue.SimpleQueue.get (C): _PyTime_ROUND_CEILING, then the queue's negative check. */
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    pc_time_t t;
    if (pc_time_from_object(timeout_obj, PC_ROUND_CEILING, &t) < 0) {
        return -1;
    }
    if (t < 0) {
        PyErr_SetString(PyExc_ValueError, MSG_QUEUE_NEGATIVE);
        return -1;
    }
    if (check_timeout_max(t) < 0) {
        return -1;
    }
    *rel_ns = t;
    return 0;
}

int
pc_parse_poll_timeout(PyObject *timeout_obj, pc_time_t *rel_ns)
{
    /* multiprocessing.connection.wait(): `deadline = time.monotonic() + timeout`, then
     * selectors.PollSelector.select(timeout): `timeout <= 0` -> 0, else
     * `math.ceil(timeout * 1e3)` milliseconds, which select.poll() range-checks. */
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *rel_ns = -1;
        return 0;
    }
    double endtime;
    if (endtime_of(timeout_obj, &endtime) < 0) {
        return -1;
    }
    int expired = compare_with_zero(timeout_obj, Py_LE);
    if (expired != 0) {
        *rel_ns = 0;
        return expired < 0 ? -1 : 0;
    }
    PyObject *thousand = PyFloat_FromDouble(1e3);
    PyObject *scaled = thousand ? PyNumber_Multiply(timeout_obj, thousand) : NULL;
    Py_XDECREF(thousand);
    if (scaled == NULL) {
        return -1;
    }
    PyObject *ms_obj = NULL;
    if (PyFloat_Check(scaled)) {
        double d = PyFloat_AS_DOUBLE(scaled);
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        }
        else if (isinf(d)) {
            PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        }
        else {
            ms_obj = PyLong_FromDouble(ceil(d));
        }
    }
    else {
        /* math.ceil of another number: its __ceil__ */
        PyObject *math = PyImport_ImportModule("math");
        ms_obj = math ? PyObject_CallMethod(math, "ceil", "O", scaled) : NULL;
        Py_XDECREF(math);
    }
    Py_DECREF(scaled);
    if (ms_obj == NULL) {
        return -1;
    }
    /* select.poll().poll(ms): _PyTime_FromMillisecondsObject, then an int's range */
    long long ms = PyLong_AsLongLong(ms_obj);
    Py_DECREF(ms_obj);
    if (ms == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_OverflowError, msg_int_overflow);
        }
        else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_SetString(PyExc_TypeError, "timeout must be an integer or None");
        }
        return -1;
    }
    if (ms > INT64_MAX / 1000000 || ms < INT64_MIN / 1000000) {
        PyErr_SetString(PyExc_OverflowError, msg_int_overflow);
        return -1;
    }
    if (ms > INT_MAX || ms < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, MSG_POLL_TOO_LARGE);
        return -1;
    }
    *rel_ns = ms < 0 ? 0 : (pc_time_t)ms * 1000000;
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
pc_waitlist_replace(pc_waiter *w, pc_waiter *repl)
{
    pc_waitlist *wl = w->list;
    if (wl == NULL) {
        return;
    }
    repl->list = wl;
    repl->prev = w->prev;
    repl->next = w->next;
    if (w->prev) {
        w->prev->next = repl;
    }
    else {
        wl->head = repl;
    }
    if (w->next) {
        w->next->prev = repl;
    }
    else {
        wl->tail = repl;
    }
    w->prev = w->next = NULL;
    w->list = NULL;
}

static int usable_cpus(void);

/* The waker's half of a wake, up to the system call: records the waker, unlinks w, stores the
 * futex word. Returns 1 if the waiter may be asleep and needs the futex wake, 0 if not (a spinner
 * sees the word; a coroutine was resumed through the hub). */
static inline int
wake_mark(pc_waiter *w)
{
    if (w->list != NULL) {
        __atomic_store_n(&w->list->spin.waker_cpu, sched_getcpu(), __ATOMIC_RELAXED);
        __atomic_store_n(&w->list->spin.waker, pc_thread_ident(), __ATOMIC_RELAXED);
    }
    pc_waitlist_unlink(w);
    w->woken = 1;
    if (w->coro != NULL) {
        pc_hub->wake(w);
        return 0;
    }
    /* Dekker pair with pc_waiter_park: store word, then load sleeping (both seq_cst). A waiter
     * still spinning sees the word without a syscall; one that may be asleep gets the wake. */
    __atomic_store_n(&w->word, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST) != 0;
}

void
pc_waiter_wake(pc_waiter *w)
{
    /* Still holding the GIL: the parked thread cannot return (and drop its frame) until we let
     * go, so the address stays valid for the syscall. */
    if (wake_mark(w)) {
        syscall(SYS_futex, &w->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

/* Rule 7 (wait.h): on one CPU (or the waiter's CPU), a wake whose caller returns to Python next
 * lets go of the GIL around the futex wake. Process-wide back-off, GIL-protected: after a wake that took the GIL
 * back late (someone else ran with it), the next handoff_skip wakes keep the GIL; each late one
 * doubles the interval (16 up to HANDOFF_SKIP_MAX), a prompt one resets it. */
#define HANDOFF_LATE_NS 200000      /* taking the GIL back took longer: a third thread had it */
#define HANDOFF_SKIP_MAX 4096
static int handoff_skip = 0;
static int handoff_backoff = 0;

void
pc_waiter_wake_last(pc_waiter *w)
{
    /* one usable CPU, or a waiter asleep on the CPU we run on at a site where spinning does not
     * pay (a loaded machine keeps the two threads of a hand-off together: the one-CPU case) */
    int shared = usable_cpus() == 1 ||
        (w->list != NULL && __atomic_load_n(&w->list->spin.ns, __ATOMIC_RELAXED) <= 0 &&
         __atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST) &&
         __atomic_load_n(&w->cpu, __ATOMIC_RELAXED) == sched_getcpu());
    if (w->coro != NULL || handoff_skip > 0 || !shared ||
            pc_pystate_gil_waiters(PyThreadState_Get()) != 0) {
        if (handoff_skip > 0 && w->coro == NULL) {
            handoff_skip--;
        }
        pc_waiter_wake(w);
        return;
    }
    if (!wake_mark(w)) {
        return;
    }
    pc_time_t start = pc_monotonic_ns();
    PC_ASAN_THREAD_GUARD();
    Py_BEGIN_ALLOW_THREADS
    /* The woken thread may run, return and reuse its stack before this call: a wake at a stale
     * address is at worst a spurious wake of a later futex wait there, which re-reads its word. */
    syscall(SYS_futex, &w->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    Py_END_ALLOW_THREADS
    if (pc_monotonic_ns() - start > HANDOFF_LATE_NS) {
        handoff_backoff = handoff_backoff == 0 ? 16 :
            (handoff_backoff >= HANDOFF_SKIP_MAX / 2 ? HANDOFF_SKIP_MAX : handoff_backoff * 2);
        handoff_skip = handoff_backoff;
    }
    else {
        handoff_backoff = 0;
    }
}

static inline void
futex_wake_one(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void
pc_waiter_wake_deferred(pc_waiter *w, pc_waitlist *lock_wl)
{
    if (lock_wl->gen != pc_fork_generation) {
        pc_waiter_wake(w);   /* a list from before a fork: the lock's own check resets it */
        return;
    }
    if (!wake_mark(w)) {
        return;
    }
    if (lock_wl->ndeferred < PC_DEFER_MAX) {
        /* The sleeper's frame stays while it sleeps. Should it wake by itself first (a timeout,
         * a signal slice), the later wake hits a stale address: at worst a spurious wake of a
         * later futex wait there, which re-reads its word (as in pc_waiter_wake_last). */
        lock_wl->deferred[lock_wl->ndeferred++] = &w->word;
    }
    else {
        futex_wake_one(&w->word);
    }
}

void
pc_futex_wake_all(uint32_t *const *words, int n)
{
    for (int i = 0; i < n; i++) {
        futex_wake_one(words[i]);
    }
}

void
pc_waitlist_flush_deferred(pc_waitlist *wl)
{
    int n = wl->gen == pc_fork_generation ? wl->ndeferred : 0;
    wl->ndeferred = 0;
    pc_futex_wake_all(wl->deferred, n);
}

int
pc_waitlist_take_deferred(pc_waitlist *wl, uint32_t **out)
{
    int n = wl->gen == pc_fork_generation ? wl->ndeferred : 0;
    wl->ndeferred = 0;
    memcpy(out, wl->deferred, (size_t)n * sizeof(*out));
    return n;
}

int
pc_waitlist_wake_head(pc_waitlist *wl, int last)
{
    pc_waitlist_check(wl);
    if (wl->head == NULL) {
        return 0;
    }
    if (last) {
        pc_waiter_wake_last(wl->head);
    }
    else {
        pc_waiter_wake(wl->head);
    }
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

/* Signals. Python runs signal handlers in the main thread only, with the GIL. A signal that
 * arrives while that thread blocks in a system call interrupts it (EINTR) and the wait runs the
 * handlers; one that arrives while it spins, or just as a sleep times out, interrupts nothing.
 * So the main thread watches the interpreter's "signal pending" flag while it spins and, if it
 * is up, takes the GIL back to run the handlers instead of going to sleep; and every wait runs
 * PyErr_CheckSignals (a flag test when nothing is pending) whenever it has the GIL back. */
/* The main thread also sleeps in slices and runs PyErr_CheckSignals between them: a signal that
 * lands in the few instructions between the last look at the flag and the sleep, or that the
 * kernel delivers to another thread of the process (which sets the flag but interrupts nobody),
 * then still runs its handler within a slice instead of never. A wait's first slice is
 * SIGNAL_SLICE_NS; each one that ends with nothing to do is twice as long as the one before, up
 * to SIGNAL_SLICE_MAX_NS. Such a signal is rare (a Ctrl-C or a timer signal reaches the main
 * thread itself and interrupts its sleep at once), while every slice costs a long wait a timer
 * wake-up: with fixed 50 ms slices a 3 s queue get woke 60 times and used 3.6-4.4 ms of CPU
 * (the stdlib's: one wake-up); growing ones wake it 7 times, for 0.5-0.7 ms. A lost signal is
 * still handled within 50 ms early in a wait, and within a second at worst. */
#define SIGNAL_SLICE_NS 50000000LL
#define SIGNAL_SLICE_MAX_NS 1000000000LL

/* An absolute CLOCK_MONOTONIC time as FUTEX_WAIT_BITSET takes it. */
static inline void
abs_timespec(pc_time_t t, struct timespec *ts)
{
    ts->tv_sec = (time_t)(t / 1000000000);
    ts->tv_nsec = (long)(t % 1000000000);
}

/* The main thread's sleep slice of len ns: 1 with its end in *ts if it ends before `until`
 * (PC_FOREVER: never), 0 if `until` comes first. */
static int
signal_slice(pc_time_t until, pc_time_t len, struct timespec *ts)
{
    pc_time_t end = pc_monotonic_ns() + len;
    if (until != PC_FOREVER && end >= until) {
        return 0;
    }
    abs_timespec(end, ts);
    return 1;
}

static PC_TLS int tls_main = -1;
static PC_TLS uint64_t tls_main_gen = 0;

static inline int
handles_signals(void)
{
    if (tls_main < 0 || tls_main_gen != pc_fork_generation) {
        tls_main = pc_pystate_is_main_thread();   /* the forking thread is main in a child */
        tls_main_gen = pc_fork_generation;
    }
    return tls_main;
}

/* -- the spin rule (see wait.h's header comment) -------------------------------------------- */

#define SPIN_DEFAULT_NS 30000         /* the cap unless PYCONC_SPIN_NS says otherwise */
#define SPIN_PROBE_EVERY 16           /* a site at budget zero spins once per this many parks, */
#define SPIN_PROBE_MAX 1024           /* or up to this many after probes that failed */
#define SPIN_PREEMPTED_NS 50000       /* a gap this long between two looks: we were descheduled */
#define AFFINITY_EVERY 256            /* parks of a thread between two sched_getaffinity calls */
#define CGROUP_EVERY_NS 1000000000LL  /* the cgroup quota is re-read at most this often */

static pc_time_t spin_max = -1;       /* the cap (PYCONC_SPIN_NS); -1 until read */
static int spinners = 0;              /* threads of this process spinning now (atomic) */
static int cgroup_cpus = 0;           /* CPUs the cgroup quota allows, rounded up; 0: no quota */
static pc_time_t cgroup_read_at = 0;  /* when it was read (0: never, or stale after a fork) */
static uint64_t cgroup_gen = 0;

static uint64_t spin_stats[4];        /* spins, woken, ran out, descheduled (relaxed atomics) */

static PC_TLS int tls_cpus = 0;       /* CPUs this thread may use (affinity) */
static PC_TLS uint32_t tls_parks = 0;  /* parks since the affinity was read */
static PC_TLS uint64_t tls_cpus_gen = 0;

/* Reads a small file into buf (NUL-terminated; at most size - 1 bytes) with open/read/close and
 * no stdio: the spin decision runs without the GIL on threads that may be inside a park when
 * another thread forks, so it must not allocate (a child would inherit an allocator lock held by
 * a thread it does not have: glibc's malloc guards against that, but ASan's and other
 * replacement allocators may not). Returns the bytes read, or -1. */
static ssize_t
read_small_file(const char *path, char *buf, size_t size)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return -1;
    }
    size_t got = 0;
    while (got < size - 1) {
        ssize_t r = read(fd, buf + got, size - 1 - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Reads an integer pair "quota period" (cgroup v2 cpu.max: "max 100000" or "50000 100000") or a
 * single integer (v1 files). Returns the number of values read (0 on failure). */
static int
read_numbers(const char *path, long long *a, long long *b)
{
    char buf[128];
    int saved = errno;
    ssize_t len = read_small_file(path, buf, sizeof(buf));
    errno = saved;
    if (len <= 0) {
        return 0;
    }
    char *end;
    int n;
    if (strncmp(buf, "max", 3) == 0) {
        *a = -1;
        end = buf + 3;
        n = 1;
    }
    else {
        *a = strtoll(buf, &end, 10);
        n = end != buf;
    }
    if (n == 1) {
        char *end2;
        *b = strtoll(end, &end2, 10);
        n += end2 != end;
    }
    return n;
}

/* ceil(quota / period) if quota > 0, else 0 (no limit). */
static int
quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0) {
        return 0;
    }
    long long c = (quota + period - 1) / period;
    return c > INT_MAX ? INT_MAX : (int)c;
}

/* Keeps the smaller nonzero limit. */
static void
limit_min(int *lim, int c)
{
    if (c > 0 && (*lim == 0 || c < *lim)) {
        *lim = c;
    }
}

/* The CPU quota of this process's cgroup and its ancestors (v2 and v1), 0 if there is none.
 * In a container the cgroup path in /proc/self/cgroup may not exist under the mount (the mount
 * is the container's own cgroup): the mount's root files are tried too. */
static int
read_cgroup_cpus(void)
{
    char text[8192], path[4200];
    int saved = errno;
    ssize_t len = read_small_file("/proc/self/cgroup", text, sizeof(text));
    errno = saved;
    if (len <= 0) {
        return 0;
    }
    int lim = 0;
    char *next = text;
    while (*next != '\0') {
        char *line = next;
        char *nl = strchr(line, '\n');
        if (nl == NULL) {
            if (len == (ssize_t)sizeof(text) - 1) {
                break;      /* a longer file than we read: its last line is cut off */
            }
            next = line + strlen(line);
        }
        else {
            *nl = '\0';
            next = nl + 1;
        }
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL) {
            continue;
        }
        *c2 = '\0';
        char *cg = c2 + 1;
        cg[strcspn(cg, "\n")] = '\0';
        const char *ctrls = c1 + 1;
        int v2 = line[0] == '0' && c1 == line + 1 && *ctrls == '\0';
        int v1cpu = 0;
        if (!v2) {
            /* a v1 hierarchy whose controllers include "cpu" (e.g. "cpu,cpuacct") */
            char tmp[256];
            snprintf(tmp, sizeof(tmp), ",%s,", ctrls);
            v1cpu = strstr(tmp, ",cpu,") != NULL;
        }
        if (!v2 && !v1cpu) {
            continue;
        }
        /* walk from the process's cgroup up to the mount's root: every level's limit applies */
        char rel[4096];
        snprintf(rel, sizeof(rel), "%s", cg);
        for (;;) {
            long long q = 0, per = 0;
            if (v2) {
                const char *mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
                for (int m = 0; m < 2; m++) {
                    snprintf(path, sizeof(path), "%s%s/cpu.max", mounts[m], rel);
                    if (read_numbers(path, &q, &per) == 2) {
                        limit_min(&lim, quota_cpus(q, per));
                    }
                }
            }
            else {
                const char *mounts[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu",
                                        "/sys/fs/cgroup/cpuacct,cpu"};
                for (int m = 0; m < 3; m++) {
                    long long dummy;
                    snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", mounts[m], rel);
                    if (read_numbers(path, &q, &dummy) < 1) {
                        continue;
                    }
                    snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", mounts[m], rel);
                    if (read_numbers(path, &per, &dummy) >= 1) {
                        limit_min(&lim, quota_cpus(q, per));
                    }
                }
            }
            char *slash = strrchr(rel, '/');
            if (slash == NULL || rel[0] == '\0') {
                break;
            }
            *slash = '\0';    /* the parent; "" is the mount's root, tried last */
        }
    }
    return lim;
}

static void
read_spin_max(void)
{
    const char *env = getenv("PYCONC_SPIN_NS");
    pc_time_t v = SPIN_DEFAULT_NS;
    if (env != NULL && *env != '\0') {
        v = strtoll(env, NULL, 10);
        if (v < 0) {
            v = 0;
        }
        if (v > INT32_MAX) {
            v = INT32_MAX;   /* a budget is an int32 of ns: about 2 s at most */
        }
    }
    spin_max = v;
}

/* CPUs the calling thread may use now: its affinity mask and the cgroup quota. Cheap: the mask
 * is re-read every AFFINITY_EVERY parks of the thread and after a fork, the quota at most once a
 * second (both read only by a thread that is about to spin). */
static int
usable_cpus(void)
{
    if (tls_cpus == 0 || ++tls_parks >= AFFINITY_EVERY || tls_cpus_gen != pc_fork_generation) {
        tls_parks = 0;
        tls_cpus_gen = pc_fork_generation;
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof(set), &set) == 0) {
            tls_cpus = CPU_COUNT(&set);
        }
        else {
            long n = sysconf(_SC_NPROCESSORS_ONLN);   /* more CPUs than a cpu_set_t holds */
            tls_cpus = n > 0 ? (int)n : 1;
        }
        pc_time_t now = pc_monotonic_ns();
        pc_time_t at = __atomic_load_n(&cgroup_read_at, __ATOMIC_RELAXED);
        if (at == 0 || now - at > CGROUP_EVERY_NS ||
                __atomic_load_n(&cgroup_gen, __ATOMIC_RELAXED) != pc_fork_generation) {
            __atomic_store_n(&cgroup_cpus, read_cgroup_cpus(), __ATOMIC_RELAXED);
            __atomic_store_n(&cgroup_read_at, now, __ATOMIC_RELAXED);
            __atomic_store_n(&cgroup_gen, pc_fork_generation, __ATOMIC_RELAXED);
        }
    }
    int c = tls_cpus;
    int q = __atomic_load_n(&cgroup_cpus, __ATOMIC_RELAXED);
    return (q > 0 && q < c) ? q : c;
}

int
pc_usable_cpus(void)
{
    return usable_cpus();
}

/* Decides whether to spin at this park and for how long (0: do not). A nonzero result has
 * taken a spinner slot: give it back with spin_end(). Called without the GIL. */
static pc_time_t
spin_begin(pc_spin *sp)
{
    if (spin_max < 0) {
        read_spin_max();
    }
    if (spin_max == 0 || sp == NULL) {
        return 0;
    }
    if (__atomic_load_n(&sp->waker_cpu, __ATOMIC_RELAXED) == sched_getcpu() &&
            __atomic_load_n(&sp->waker, __ATOMIC_RELAXED) != pc_thread_ident()) {
        return 0;   /* rule 5: the waker shares our CPU */
    }
    int32_t ns = __atomic_load_n(&sp->ns, __ATOMIC_RELAXED);
    if (ns < 0) {
        ns = (int32_t)(spin_max / 2);          /* a new site: give spinning a chance */
        __atomic_store_n(&sp->ns, ns, __ATOMIC_RELAXED);
    }
    if (ns == 0) {
        uint32_t every = __atomic_load_n(&sp->probe_every, __ATOMIC_RELAXED);
        uint32_t p = __atomic_add_fetch(&sp->parks, 1, __ATOMIC_RELAXED);
        if (p < (every ? every : SPIN_PROBE_EVERY)) {
            return 0;
        }
        __atomic_store_n(&sp->parks, 0, __ATOMIC_RELAXED);
        ns = (int32_t)spin_max;                 /* the probe: one full spin */
    }
    int cpus = usable_cpus();
    if (cpus < 2) {
        return 0;
    }
    if (__atomic_fetch_add(&spinners, 1, __ATOMIC_RELAXED) >= cpus - 1) {
        __atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return ns;
}

/* Records how the spin went: woken after `took` ns, or not (ran out, or was descheduled). */
static void
spin_end(pc_spin *sp, int woken, pc_time_t took, int preempted)
{
    __atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
    int32_t ns = __atomic_load_n(&sp->ns, __ATOMIC_RELAXED);
    if (ns == 0) {
        /* a probe: back off from probing while they fail */
        uint32_t every = __atomic_load_n(&sp->probe_every, __ATOMIC_RELAXED);
        if (woken && !preempted) {
            every = SPIN_PROBE_EVERY;
        }
        else {
            every = every ? every * 2 : 2 * SPIN_PROBE_EVERY;
            if (every > SPIN_PROBE_MAX) {
                every = SPIN_PROBE_MAX;
            }
        }
        __atomic_store_n(&sp->probe_every, every, __ATOMIC_RELAXED);
    }
    if (woken && !preempted) {
        pc_time_t target = 4 * took + 1000;
        if (target > spin_max) {
            target = spin_max;
        }
        ns = (int32_t)((3 * (pc_time_t)ns + target) / 4);
        if (ns == 0) {
            ns = 1000;
        }
    }
    else if (preempted) {
        ns = 0;
    }
    else {
        ns /= 2;
        if (ns < 500) {
            ns = 0;
        }
    }
    __atomic_store_n(&sp->ns, ns, __ATOMIC_RELAXED);
}

/* The spin loop shared by every spinning wait (GIL released): until *word != expected, or, when
 * fd >= 0, until fd is readable; at most budget ns or until the deadline; the main thread also
 * stops for a pending signal (*signalled = 1). Returns 1 if the condition came true. */
static int
spin_loop(pc_spin *sp, pc_time_t budget, const uint32_t *word, uint32_t expected, int fd,
          pc_time_t deadline, int sig, int *signalled)
{
    pc_time_t start = pc_monotonic_ns(), last = start;
    pc_time_t until = start + budget;
    if (deadline != PC_FOREVER && deadline < until) {
        until = deadline;
    }
    int ready = 0, preempted = 0;
    for (unsigned n = 1;; n++) {
        if (fd >= 0) {
            struct pollfd pfd = {fd, POLLIN, 0};
            ready = poll(&pfd, 1, 0) != 0;
        }
        else {
            ready = __atomic_load_n(word, __ATOMIC_ACQUIRE) != expected;
        }
        if (ready) {
            break;
        }
        if (fd < 0) {
            pc_cpu_relax();
            if ((n & 63) != 0) {
                continue;
            }
        }
        pc_time_t now = pc_monotonic_ns();
        if (now - last > SPIN_PREEMPTED_NS) {
            preempted = 1;     /* descheduled while spinning: the machine is oversubscribed */
            break;
        }
        last = now;
        if (now >= until) {
            break;
        }
        if (sig && pc_pystate_signal_pending()) {
            *signalled = 1;
            break;
        }
    }
    spin_end(sp, ready, pc_monotonic_ns() - start, preempted);
    __atomic_fetch_add(&spin_stats[0], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&spin_stats[ready ? 1 : (preempted ? 3 : 2)], 1, __ATOMIC_RELAXED);
    return ready;
}

/* Rule 6: after a woken spin, wait for the GIL to come free before retaking it, at most the
 * site's budget. Called without the GIL; ts is the caller's (released) thread state. */
static void
spin_for_gil(pc_spin *sp, PyThreadState *ts)
{
    pc_time_t budget = __atomic_load_n(&sp->ns, __ATOMIC_RELAXED);
    if (budget <= 0 || !pc_pystate_gil_held(ts)) {
        return;
    }
    pc_time_t start = pc_monotonic_ns(), last = start;
    for (unsigned n = 1; pc_pystate_gil_held(ts); n++) {
        pc_cpu_relax();
        if ((n & 63) == 0) {
            pc_time_t now = pc_monotonic_ns();
            if (now - last > SPIN_PREEMPTED_NS || now - start > budget) {
                /* the waker kept the GIL (or we lost the CPU): a failed spin for the site */
                __atomic_store_n(&sp->ns, (int32_t)(budget / 2 < 500 ? 0 : budget / 2),
                                 __ATOMIC_RELAXED);
                return;
            }
            last = now;
        }
    }
}

int
pc_waiter_park(pc_waiter *w, pc_time_t deadline)
{
    return pc_waiter_park_wakes(w, deadline, NULL, 0);
}

int
pc_waiter_park_wakes(pc_waiter *w, pc_time_t deadline, uint32_t *const *wakes, int nwakes)
{
    if (pc_hub != NULL) {
        int y = pc_hub->can_yield();
        if (y != 0) {
            pc_futex_wake_all(wakes, nwakes);   /* no OS thread parks: issue them now */
        }
        if (y > 0) {
            return pc_hub->park(w, deadline);
        }
        if (y < 0) {
            pc_waitlist_unlink(w);
            return pc_hub->blocking_error();
        }
    }
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (deadline != PC_FOREVER) {
        abs_timespec(deadline, &ts);
        tsp = &ts;
    }
    int sig = handles_signals();
    /* the site's budget; the list outlives the wait (its owner is referenced by our caller) */
    pc_spin *sp = (w->list != NULL && !w->nospin) ? &w->list->spin : NULL;
    int spin = 1;   /* spin (and watch for signals) on the first round only */
    pc_time_t slice_ns = SIGNAL_SLICE_NS;
    for (;;) {
        int err = 0;
        PC_ASAN_THREAD_GUARD();
        PC_ASAN_THREAD_GUARD();
    Py_BEGIN_ALLOW_THREADS
        /* rule 8: the wakes held back for us, now that the GIL is free for the woken */
        pc_futex_wake_all(wakes, nwakes);
        nwakes = 0;
        pc_time_t budget = spin ? spin_begin(sp) : 0;
        if (budget > 0) {
            int signalled = 0;
            if (spin_loop(sp, budget, &w->word, 0, -1, deadline, sig, &signalled)) {
                spin_for_gil(sp, _save);
            }
            else if (signalled) {
                err = EINTR;   /* a signal landed while we spun: run its handler first */
            }
        }
        if (err == 0 && sig && spin && pc_pystate_signal_pending()) {
            err = EINTR;   /* landed before the spin, or there was none: handle it, then sleep */
        }
        if (err == 0) {
            __atomic_store_n(&w->cpu, sched_getcpu(), __ATOMIC_RELAXED);   /* rule 7 */
            __atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
        }
        struct timespec slice;
        int slept = 0, sliced = sig && err == 0 && signal_slice(deadline, slice_ns, &slice);
        struct timespec *wait_tsp = sliced ? &slice : tsp;
        while (err == 0 && __atomic_load_n(&w->word, __ATOMIC_SEQ_CST) == 0) {
            /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a restarted wait
             * needs no recomputation. */
            long r = syscall(SYS_futex, &w->word, FUTEX_WAIT_BITSET_PRIVATE, 0, wait_tsp, NULL,
                             FUTEX_BITSET_MATCH_ANY);
            if (r == 0 || errno == EAGAIN) {
                slept |= r == 0;
                continue;  /* woken, possibly spuriously: the loop re-reads the word */
            }
            err = errno;
            break;
        }
        if (err == ETIMEDOUT && sliced) {
            err = EINTR;   /* the main thread's slice, not the deadline: look at the signals */
            slice_ns = pc_slice_grow(slice_ns, SIGNAL_SLICE_MAX_NS);
        }
        if (slept && err == 0 && usable_cpus() == 1 && pc_pystate_gil_held(_save) &&
                pc_pystate_gil_waiters(_save) == 0) {
            /* Rule 4: woken from a sleep, on one CPU, by a waker that still holds the GIL (the
             * scheduler usually runs the woken thread at once). Taking the GIL now would find
             * it held, sleep on the GIL's condition variable, and cost the waker a signal when
             * it lets go; a yield lets the waker run on to its own release of the GIL
             * (typically its next wait). Not when the GIL is free: a yield then hands the CPU
             * to any other thread that wants the GIL, which takes it for a whole switch
             * interval (5 ms a hand-off next to a CPU-bound thread). */
            sched_yield();
        }
        Py_END_ALLOW_THREADS
        if (w->woken) {
            return PC_WAIT_WOKEN;  /* a wake wins over a timeout or signal that raced it */
        }
        if (err == EINTR) {
            /* 3.11's pending flag stays up until the eval loop runs: no second look this wait */
            spin = 0;
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
            return pc_timeout_is_final(r) ? 0 : try_take(obj);
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
               pc_time_t slice_ns, pc_spin *sp)
{
    int sig = handles_signals();
    int spin = 1;
    /* A caller's own slice also ends in a look at the signals (the next call's first one): no
     * signal slice shorter than it, so a long wait does not wake twice per caller slice. */
    pc_time_t sig_slice_ns = SIGNAL_SLICE_NS;
    if (slice_ns != PC_FOREVER && slice_ns > sig_slice_ns) {
        sig_slice_ns = slice_ns < SIGNAL_SLICE_MAX_NS ? slice_ns : SIGNAL_SLICE_MAX_NS;
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
            abs_timespec(until, &ts);
            tsp = &ts;
        }
        int err = 0, changed = 0;
        PC_ASAN_THREAD_GUARD();
        PC_ASAN_THREAD_GUARD();
    Py_BEGIN_ALLOW_THREADS
        /* Spin first, as for thread waits: a hand-off between two running processes usually
         * completes within microseconds, a futex sleep costs a scheduler wake-up. */
        int signalled = 0;
        pc_time_t budget = spin ? spin_begin(sp) : 0;
        if (budget > 0) {
            spin_loop(sp, budget, word, expected, -1, until, sig, &signalled);
        }
        if (!signalled && sig && spin && pc_pystate_signal_pending()) {
            signalled = 1;   /* landed before the spin, or there was none */
        }
        if (signalled) {
            err = EINTR;   /* a signal landed while we spun: run its handler, then sleep */
        }
        else {
            int sliced = sig && signal_slice(until, sig_slice_ns, &ts);
            if (sliced) {
                tsp = &ts;
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
                if (err == ETIMEDOUT && sliced) {
                    err = EINTR;   /* the main thread's slice: look at the signals, sleep on */
                    sig_slice_ns = pc_slice_grow(sig_slice_ns, SIGNAL_SLICE_MAX_NS);
                }
            }
            else {
                changed = 1;
            }
            if (counts != NULL) {
                __atomic_fetch_sub(&counts[0], 1, __ATOMIC_SEQ_CST);
            }
        }
        Py_END_ALLOW_THREADS
        /* Whatever woke us, a handler that is due runs now: a signal can land just as the
         * sleep times out (no EINTR), and the caller may only come back after a long slice. */
        if (err == EINTR) {
            spin = 0;   /* 3.11's pending flag stays up until the eval loop runs */
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (changed) {
            return 1;
        }
        if (err == EINTR) {
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

int
pc_spin_fd_nogil(int fd, pc_spin *sp, pc_time_t deadline)
{
    pc_time_t budget = spin_begin(sp);
    if (budget <= 0) {
        return 0;
    }
    int signalled = 0;
    int ready = spin_loop(sp, budget, NULL, 0, fd, deadline, handles_signals(), &signalled);
    return ready ? 1 : (signalled ? 2 : 0);
}

int
pc_spin_until_readable(int fd, pc_spin *sp)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) != 0) {
        return 0;
    }
    int sig = handles_signals();
    PC_ASAN_THREAD_GUARD();
    Py_BEGIN_ALLOW_THREADS
    pc_spin_fd_nogil(fd, sp, PC_FOREVER);
    Py_END_ALLOW_THREADS
    if (!sig) {
        return 0;
    }
    /* The main thread: the blocking read that follows would sleep through a signal that landed
     * during the spin or while the GIL was taken back, or that went to another thread. So it
     * waits for the descriptor in slices (growing from SIGNAL_SLICE_NS), running the handlers
     * between them, and reads only once there is something to read (or an error or hang-up to
     * see). */
    pc_time_t slice_ns = SIGNAL_SLICE_NS;
    for (;;) {
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        int r, err = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(&pfd, 1, (int)(slice_ns / 1000000));
        if (r < 0) {
            err = errno;
        }
        Py_END_ALLOW_THREADS
        if (r != 0 && err != EINTR) {
            return 0;   /* readable, or an error the read will report */
        }
        if (r == 0) {
            slice_ns = pc_slice_grow(slice_ns, SIGNAL_SLICE_MAX_NS);
        }
    }
}

PyObject *
pc_spin_info(PyObject *module, PyObject *unused)
{
    if (spin_max < 0) {
        read_spin_max();
    }
    tls_cpus = 0;   /* read afresh */
    int usable = usable_cpus();
    int q = __atomic_load_n(&cgroup_cpus, __ATOMIC_RELAXED);
    int may = spin_max > 0 && usable >= 2 ? usable - 1 : 0;
    return Py_BuildValue("{sisisisisisLs(KKKK)}", "gil_waiters",
                         pc_pystate_gil_waiters(PyThreadState_Get()), "usable_cpus", usable,
                         "affinity_cpus", tls_cpus, "cgroup_cpus", q, "max_spinners", may,
                         "spin_max_ns", (long long)spin_max,
                         "spins_woken_ranout_descheduled",
                         (unsigned long long)spin_stats[0], (unsigned long long)spin_stats[1],
                         (unsigned long long)spin_stats[2], (unsigned long long)spin_stats[3]);
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
    int sig = handles_signals();
    pc_time_t slice_ns = SIGNAL_SLICE_NS;
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
        if (sig && (ms < 0 || ms > slice_ns / 1000000)) {
            ms = (int)(slice_ns / 1000000);   /* the main thread's slice */
            slice_ns = pc_slice_grow(slice_ns, SIGNAL_SLICE_MAX_NS);
        }
        int r, err = 0;
        PC_ASAN_THREAD_GUARD();
        PC_ASAN_THREAD_GUARD();
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
        if (sig && PyErr_CheckSignals() < 0) {
            return -1;
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

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>

static pthread_key_t asan_key;
static pthread_once_t asan_once = PTHREAD_ONCE_INIT;

static void
asan_unpoison_stack(void *Py_UNUSED(arg))
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            __asan_unpoison_memory_region(addr, size);
        }
        pthread_attr_destroy(&attr);
    }
}

static void
asan_key_init(void)
{
    (void)pthread_key_create(&asan_key, asan_unpoison_stack);
}

void
pc_asan_thread_guard(void)
{
    static PC_TLS int registered = 0;
    if (!registered) {
        registered = 1;
        (void)pthread_once(&asan_once, asan_key_init);
        (void)pthread_setspecific(asan_key, (void *)1);
    }
}
#endif
