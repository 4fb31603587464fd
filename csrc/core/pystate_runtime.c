/* pystate_runtime.c -- the runtime-wide interpreter fields pyconc reads (see pystate.h): whether
 * a signal is waiting for its Python handler, which thread is the main thread, whether the
 * GIL is held, and whether any thread waits for it.
 *
 * A file of its own because it needs Py_BUILD_CORE before Python.h, which the thread-state code
 * in pystate.c does not. Like pystate.c, one section per CPython version where layouts differ.
 *
 * Used by a waiter that spins with the GIL released: a signal that lands during the spin
 * interrupts no system call, so the wait must notice it here or sleep through it. Plain atomic
 * loads; no GIL needed. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "internal/pycore_runtime.h"

#include "pystate.h"

int
pc_pystate_signal_pending(void)
{
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11: the eval breaker's "signals pending" bit. The eval loop clears it when it runs the
     * handlers, PyErr_CheckSignals does not: callers act on it once per wait. */
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.signals_pending);
#elif PY_VERSION_HEX < 0x030D0000
    return _Py_atomic_load_relaxed(&_PyRuntime.signals.is_tripped);
#else
    return __atomic_load_n(&_PyRuntime.signals.is_tripped, __ATOMIC_RELAXED);
#endif
}

int
pc_pystate_is_main_thread(void)
{
    return PyThread_get_thread_ident() == _PyRuntime.main_thread;
}


int
pc_pystate_gil_held(PyThreadState *ts)
{
#if PY_VERSION_HEX < 0x030C0000
    (void)ts;   /* 3.11: one GIL in the runtime */
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) == 1;
#elif PY_VERSION_HEX < 0x030D0000
    return _Py_atomic_load_relaxed(&ts->interp->ceval.gil->locked) == 1;
#else
    return __atomic_load_n(&ts->interp->ceval.gil->locked, __ATOMIC_RELAXED) == 1;
#endif
}

/* How many threads wait on the GIL's condition variable (take_gil), or -1 if that cannot be
 * told. glibc (2.25 on) keeps the number of a pthread_cond_t's waiters in bits 3 and up of
 * __wrefs, counted from before a waiter blocks until after it wakes: a plain load of a field of
 * the public type, no lock. Other C libraries: unknown, and callers then assume a waiter. */
int
pc_pystate_gil_waiters(PyThreadState *ts)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#if PY_VERSION_HEX < 0x030C0000
    (void)ts;
    pthread_cond_t *cond = &_PyRuntime.ceval.gil.cond;
#else
    pthread_cond_t *cond = &ts->interp->ceval.gil->cond;
#endif
    return (int)(__atomic_load_n(&cond->__data.__wrefs, __ATOMIC_RELAXED) >> 3);
#else
    (void)ts;
    return -1;
#endif
}
