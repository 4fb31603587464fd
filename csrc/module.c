/* module.c -- pyconc._core: module definition, state, and small helpers shared by every type.
 *
 * Multi-phase init: the exec slot creates the heap types of threads, queues and processes (each
 * concept file's pc_<concept>_init_types) and stores them in the module state. The coroutine and
 * I/O types (greenlets, the hub, cooperative sockets, selectors) are made on first use by
 * pc_coro_ensure(): the module's __getattr__ for their names, pc_hub_get() for C callers. They
 * are about half of the module's init time, which `from pyconc import threading` need not pay.
 * The state also keeps the stdlib exception objects pyconc re-uses, so that
 * `except threading.BrokenBarrierError` catches ours.
 */
#include "pyconc.h"
#include "hub.h"

#include <string.h>

/* -- module ---------------------------------------------------------------------------------- */

static PyMethodDef coro_module_methods[] = {
    {"getcurrent", pc_greenlet_getcurrent, METH_NOARGS,
     PyDoc_STR("getcurrent()\n\nThe greenlet running in this thread (its main greenlet if none "
               "was switched to).")},
    {"settrace", pc_greenlet_settrace, METH_O,
     PyDoc_STR("settrace(callback)\n\nSet this thread's greenlet switch trace function, "
               "callback(event, (origin, target)); returns the previous one.")},
    {"_greenlet_total_main_greenlets", pc_greenlet_total_main_greenlets, METH_NOARGS,
     PyDoc_STR("Number of live main greenlets (one per thread that used greenlets).")},
    {"_greenlet_pending_cleanups", pc_greenlet_pending_cleanups, METH_NOARGS,
     PyDoc_STR("Ended threads whose greenlet references are not dropped yet.")},
    {"gettrace", pc_greenlet_gettrace, METH_NOARGS,
     PyDoc_STR("gettrace()\n\nThis thread's greenlet switch trace function, or None.")},
    {NULL, NULL, 0, NULL},
};

/* Makes the coroutine and I/O part of the module (see the top): its functions, types and
 * exceptions, in the order they depend on each other. 0, or -1 with an exception. */
int
pc_coro_ensure(pc_state *st)
{
    if (st->coro_ready) {
        return 0;
    }
    PyObject *module = st->module;
    if (PyModule_AddFunctions(module, coro_module_methods) < 0 ||
            pc_greenlet_init_types(module, st) < 0 ||
            pc_hub_install(module, st) < 0 ||
            pc_glet_init_types(module, st) < 0 ||
            pc_socket_init_types(module, st) < 0 ||
            pc_fdio_install(module, st) < 0 ||
            pc_selector_init_types(module, st) < 0 ||
            pc_gselect_init_types(module, st) < 0) {
        return -1;
    }
    st->coro_ready = 1;
    return 0;
}

/* Module __getattr__ (PEP 562): the queue exceptions, loaded on first access (see
 * pc_queue_exceptions), and the coroutine and I/O names (made by pc_coro_ensure on the first
 * access to any other name the module does not have yet). */
static PyObject *
module_getattr(PyObject *module, PyObject *name)
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (st != NULL && PyUnicode_Check(name)) {
        PyObject **slot = PyUnicode_CompareWithASCIIString(name, "Empty") == 0 ? &st->Empty
                          : PyUnicode_CompareWithASCIIString(name, "Full") == 0 ? &st->Full
                          : PyUnicode_CompareWithASCIIString(name, "ShutDown") == 0
                            ? &st->ShutDown : NULL;
        if (slot != NULL) {
            return pc_queue_exceptions(st) < 0 ? NULL : Py_NewRef(*slot);
        }
        /* Not for dunder names: the import system asks for __path__ on every
         * `from pyconc._core import X` (and other code for __file__, __wrapped__...), which
         * must not make the coroutine part. */
        Py_ssize_t n = PyUnicode_GET_LENGTH(name);
        int dunder = n > 4 && PyUnicode_READ_CHAR(name, 0) == '_' &&
                     PyUnicode_READ_CHAR(name, 1) == '_' &&
                     PyUnicode_READ_CHAR(name, n - 1) == '_' &&
                     PyUnicode_READ_CHAR(name, n - 2) == '_';
        if (!st->coro_ready && !dunder) {
            if (pc_coro_ensure(st) < 0) {
                return NULL;
            }
            PyObject *v = PyDict_GetItemWithError(PyModule_GetDict(module), name);  /* borrowed */
            if (v != NULL || PyErr_Occurred()) {
                return Py_XNewRef(v);
            }
        }
    }
    PyErr_Format(PyExc_AttributeError, "module 'pyconc._core' has no attribute '%S'", name);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"__getattr__", module_getattr, METH_O, NULL},
    {"current_thread", pc_thread_current, METH_NOARGS,
     PyDoc_STR("current_thread()\n\nThe Thread object of the caller: a pyconc Thread, or the "
               "stdlib's object for threads pyconc did not start.")},
    {"_own_threads", pc_thread_enumerate_own, METH_NOARGS,
     PyDoc_STR("The live threads started by pyconc, as a list.")},
    {"_after_fork_child", pc_thread_after_fork_child, METH_NOARGS,
     PyDoc_STR("Called in a forked child: forget the threads that did not survive the fork.")},
    {"_plain_dumps", pc_plain_dumps_py, METH_O,
     "_plain_dumps(obj): obj as a plain pickle written in C, or None when pickle writes it"},
    {"_plain_loads", pc_plain_loads_py, METH_O,
     "_plain_loads(data): (True, obj) when C reads the pickle, (False, None) when pickle must"},
    {"_spin_info", pc_spin_info, METH_NOARGS,
     PyDoc_STR("What the spin rule sees for the calling thread: usable_cpus, affinity_cpus, "
               "cgroup_cpus (0: no quota), max_spinners, spin_max_ns, gil_waiters (threads waiting "
               "for the GIL, -1: unknown), spins_woken_ranout_descheduled.")},
    {"_pool_worker", pc_pool_worker, METH_VARARGS,
     PyDoc_STR("The Pool worker's loop (see csrc/proc/pool.c).")},
    {"_pool_decode", (PyCFunction)(void (*)(void))pc_pool_decode, METH_FASTCALL,
     PyDoc_STR("The (ok, value) of a Pool result frame (csrc/proc/pool.c).")},
    {"_pool_task", (PyCFunction)(void (*)(void))pc_pool_task, METH_FASTCALL,
     PyDoc_STR("A Pool task frame as one bytes object (csrc/proc/pool.c).")},
    {"_pool_results", (PyCFunction)(void (*)(void))pc_pool_results, METH_FASTCALL,
     PyDoc_STR("The Pool's result loop for one poll period (csrc/proc/pool.c).")},
    {NULL, NULL, 0, NULL},
};

static int
module_exec(PyObject *module)
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    if (pc_thread_ident() != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_ImportError, "pyconc: this platform's thread ident is not the "
                        "thread pointer; rebuild with pc_thread_ident() calling "
                        "PyThread_get_thread_ident()");
        return -1;
    }
    st->module = module;
    if (pc_wait_init() < 0) {
        return -1;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    st->BrokenBarrierError = PyObject_GetAttrString(threading, "BrokenBarrierError");
    Py_DECREF(threading);
    if (st->BrokenBarrierError == NULL) {
        return -1;
    }
    if (pc_lock_init_types(module, st) < 0 ||
            pc_condition_init_types(module, st) < 0 ||
            pc_semaphore_init_types(module, st) < 0 ||
            pc_event_init_types(module, st) < 0 ||
            pc_barrier_init_types(module, st) < 0 ||
            pc_thread_init_types(module, st) < 0 ||
            pc_queue_init_types(module, st) < 0 ||
            pc_semlock_init_types(module, st) < 0 ||
            pc_mpqueue_init_types(module, st) < 0 ||
            pc_connection_init_types(module, st) < 0 ||
            pc_block_init_types(module, st) < 0 ||
            pc_mpevent_init_types(module, st) < 0) {
        return -1;
    }
    if (PyModule_AddObject(module, "TIMEOUT_MAX",
                           PyFloat_FromDouble(PC_TIMEOUT_MAX_SECONDS)) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    Py_VISIT(st->Lock_Type);
    Py_VISIT(st->RLock_Type);
    Py_VISIT(st->Condition_Type);
    Py_VISIT(st->Semaphore_Type);
    Py_VISIT(st->BoundedSemaphore_Type);
    Py_VISIT(st->GeventSemaphore_Type);
    Py_VISIT(st->Event_Type);
    Py_VISIT(st->Barrier_Type);
    Py_VISIT(st->Thread_Type);
    Py_VISIT(st->BrokenBarrierError);
    Py_VISIT(st->active);
    Py_VISIT(st->Queue_Type);
    Py_VISIT(st->LifoQueue_Type);
    Py_VISIT(st->PriorityQueue_Type);
    Py_VISIT(st->SimpleQueue_Type);
    Py_VISIT(st->Empty);
    Py_VISIT(st->Full);
    Py_VISIT(st->ShutDown);
    Py_VISIT(st->Greenlet_Type);
    Py_VISIT(st->SemLock_Type);
    Py_VISIT(st->SharedEvent_Type);
    Py_VISIT(st->Hub_Type);
    Py_VISIT(st->HubTimer_Type);
    Py_VISIT(st->HubClass);
    Py_VISIT(st->LoopExit);
    Py_VISIT(st->BlockingSwitchOutError);
    Py_VISIT(st->InvalidSwitchError);
    Py_VISIT(st->ConcurrentObjectUseError);
    Py_VISIT(st->GeventGreenlet_Type);
    Py_VISIT(st->GeventTimeout);
    Py_VISIT(st->GeventLoopExit);
    Py_VISIT(st->greenlet_throw);
    Py_VISIT(st->glet_start);
    Py_VISIT(st->MPQueue_Type);
    Py_VISIT(st->Connection_Type);
    Py_VISIT(st->SharedBlock_Type);
    Py_VISIT(st->GreenletExit);
    Py_VISIT(st->GreenletError);
    Py_VISIT(st->CoopSocket_Type);
    Py_VISIT(st->sock_class);
    Py_VISIT(st->sock_wref);
    Py_VISIT(st->sock_closed);
    Py_VISIT(st->sock_cancel);
    Py_VISIT(st->sock_setblocking);
    Py_VISIT(st->sock_getdefaulttimeout);
    Py_VISIT(st->float_zero);
    Py_VISIT(st->EpollSelector_Type);
    Py_VISIT(st->PollSelector_Type);
    Py_VISIT(st->SelectSelector_Type);
    Py_VISIT(st->GeventSelector_Type);
    Py_VISIT(st->GeventPoll_Type);
    Py_VISIT(st->SelectorKey);
    Py_VISIT(st->SelectorMapping);
    return 0;
}

static int
module_clear(PyObject *module)
{
    pc_state *st = (pc_state *)PyModule_GetState(module);
    Py_CLEAR(st->Lock_Type);
    Py_CLEAR(st->RLock_Type);
    Py_CLEAR(st->Condition_Type);
    Py_CLEAR(st->Semaphore_Type);
    Py_CLEAR(st->BoundedSemaphore_Type);
    Py_CLEAR(st->GeventSemaphore_Type);
    Py_CLEAR(st->Event_Type);
    Py_CLEAR(st->Barrier_Type);
    Py_CLEAR(st->Thread_Type);
    Py_CLEAR(st->BrokenBarrierError);
    Py_CLEAR(st->active);
    Py_CLEAR(st->Queue_Type);
    Py_CLEAR(st->LifoQueue_Type);
    Py_CLEAR(st->PriorityQueue_Type);
    Py_CLEAR(st->SimpleQueue_Type);
    Py_CLEAR(st->Empty);
    Py_CLEAR(st->Full);
    Py_CLEAR(st->ShutDown);
    Py_CLEAR(st->Greenlet_Type);
    Py_CLEAR(st->SemLock_Type);
    Py_CLEAR(st->SharedEvent_Type);
    Py_CLEAR(st->Hub_Type);
    Py_CLEAR(st->HubTimer_Type);
    Py_CLEAR(st->HubClass);
    Py_CLEAR(st->LoopExit);
    Py_CLEAR(st->BlockingSwitchOutError);
    Py_CLEAR(st->InvalidSwitchError);
    Py_CLEAR(st->ConcurrentObjectUseError);
    Py_CLEAR(st->GeventGreenlet_Type);
    Py_CLEAR(st->GeventTimeout);
    Py_CLEAR(st->GeventLoopExit);
    Py_CLEAR(st->greenlet_throw);
    Py_CLEAR(st->str_start);
    Py_CLEAR(st->glet_start);
    Py_CLEAR(st->MPQueue_Type);
    Py_CLEAR(st->Connection_Type);
    Py_CLEAR(st->SharedBlock_Type);
    Py_CLEAR(st->GreenletExit);
    Py_CLEAR(st->GreenletError);
    Py_CLEAR(st->CoopSocket_Type);
    Py_CLEAR(st->sock_class);
    Py_CLEAR(st->sock_wref);
    Py_CLEAR(st->sock_closed);
    Py_CLEAR(st->sock_cancel);
    Py_CLEAR(st->sock_setblocking);
    Py_CLEAR(st->sock_getdefaulttimeout);
    Py_CLEAR(st->float_zero);
    Py_CLEAR(st->EpollSelector_Type);
    Py_CLEAR(st->PollSelector_Type);
    Py_CLEAR(st->SelectSelector_Type);
    Py_CLEAR(st->GeventSelector_Type);
    Py_CLEAR(st->GeventPoll_Type);
    Py_CLEAR(st->SelectorKey);
    Py_CLEAR(st->SelectorMapping);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

struct PyModuleDef pc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyconc._core",
    .m_doc = "pyconc's C core: the one wait mechanism and the primitives built on it.",
    .m_size = sizeof(pc_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&pc_module_def);
}
