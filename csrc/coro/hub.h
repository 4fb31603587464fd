/* hub.h -- the per-thread coroutine hub (hub.c): its C interface for the rest of the core.
 *
 * A hub is created lazily, once per OS thread, by the first call that needs it (pc_hub_get with
 * create). Its loop runs in a greenlet of its own whose parent is the thread's main greenlet. It
 * owns a FIFO ready queue, a timer min-heap, an epoll instance and an eventfd that other threads
 * write to wake it. Everything here needs the GIL, and works on the calling thread's hub unless a
 * hub is passed.
 */
#ifndef PYCONC_HUB_H
#define PYCONC_HUB_H

#include "pyconc.h"

typedef struct HubObject HubObject;

/* The calling thread's hub (borrowed). create: make one if there is none (NULL with an
 * exception on failure); otherwise NULL without an exception when there is none. */
HubObject *pc_hub_get(pc_state *st, int create);

/* Installs the hub's pc_hub_ops in wait.c (module init). 0 or -1. */
int pc_hub_install(PyObject *module, pc_state *st);

/* Schedules target.switch(*args, **kwargs) (args: a tuple or NULL for none, kwargs: a dict or
 * NULL; both stolen, also on failure) on hub's ready queue, FIFO. 0, or -1 with MemoryError. */
int pc_hub_schedule_switch(HubObject *hub, PyObject *target, PyObject *args, PyObject *kwargs);

/* Schedules the start of a Greenlet (glet.c): it is switched to unless it was killed first. */
int pc_hub_schedule_start(HubObject *hub, PyObject *glet);

/* Schedules callable(*args) (args stolen; NULL: no arguments) to run in the hub greenlet. */
int pc_hub_schedule_call(HubObject *hub, PyObject *callable, PyObject *args);

/* Schedules the notification of a finished Greenlet (glet.c, gevent's _notify_links callback):
 * its joiners and links, in the order they came. 0; 1 (no exception) if the hub is destroyed, so
 * that nothing would run it; -1 with MemoryError. */
int pc_hub_schedule_notify(HubObject *hub, PyObject *glet);

/* For that notification, run by the hub: resumes the greenlet parked on w (a waiter of one of
 * the hub's primitives) at once, as gevent's link switches to a joiner from the callback, and
 * returns when it switches back. 1 if done (an exception it let escape into the hub is handled
 * as the loop handles one); 0 if w is not a greenlet parked in the calling thread's hub or the
 * caller is not that hub's greenlet: then wake it the usual way (pc_waiter_wake). */
int pc_hub_resume_now(pc_waiter *w);

/* Schedules target.throw(exc) (exc borrowed). */
int pc_hub_schedule_throw(HubObject *hub, PyObject *target, PyObject *exc);

/* Parks the calling greenlet until the hub resumes it: seconds <= 0 yields to every greenlet
 * that was ready before it (sleep(0)); else a timer. 0, or -1 with an exception (thrown into it
 * while it slept). */
int pc_hub_sleep(pc_state *st, pc_time_t rel_ns);

/* The calling greenlet waits one turn of its hub, as a wait with timeout 0 does in gevent (a
 * 0-second Timeout, wait.h): a Timeout armed before it fires first. 0, or -1 with an
 * exception (a Timeout, a kill). */
int pc_hub_zero_turn(pc_state *st);

/* gevent's Hub.handle_error for the set exception that escaped from context (may be NULL): see
 * hub.c. Returns 1 with the exception still set when it belongs to the main greenlet (a system
 * error), else 0 with it cleared. */
int pc_hub_handle_error(HubObject *hub, PyObject *context);

/* The hub's greenlet (borrowed). */
PyObject *pc_hub_greenlet(HubObject *hub);

/* The hub data of a hub object (a pyconc._core.Hub), or NULL with TypeError if obj is not one. */
HubObject *pc_hub_of(pc_state *st, PyObject *obj);

/* The hub's thread's main greenlet (borrowed). */
PyObject *pc_hub_main(HubObject *hub);

/* Waits until fd has one of events (EPOLLIN / EPOLLOUT), the deadline passes or the wait is
 * cancelled (another greenlet closes the fd: pc_hub_cancel_fd). Parks the calling greenlet; the
 * caller must be able to yield (not the hub). Returns 1 ready, 0 timed out, -1 with an exception
 * (thrown in, cancelled: OSError(EBADF), or a second waiter for the same fd and direction). */
int pc_hub_wait_fd(HubObject *hub, int fd, uint32_t events, pc_time_t deadline);

/* Wakes every greenlet waiting on fd with exc (borrowed; e.g. OSError(EBADF, "File descriptor
 * was closed in another greenlet")) and forgets fd's registration. */
void pc_hub_cancel_fd(HubObject *hub, int fd, PyObject *exc);

/* As pc_hub_cancel_fd, for the waiters of some directions only (EPOLLIN, EPOLLOUT or both):
 * a socket's shutdown(SHUT_RD) wakes its reader only. The woken records leave fd's watch at
 * once, so the descriptor may be closed and its number waited on again right away. */
void pc_hub_cancel_fd_events(HubObject *hub, int fd, uint32_t events, PyObject *exc);

/* The cooperative sockets' wait (csrc/io/socket.c), for a caller whose syscall on fd just said
 * EAGAIN: as pc_hub_wait_fd, but fd stays registered with epoll after the wait, edge-triggered
 * for both directions, on behalf of owner (a nonzero token unique to one socket object), so
 * that the next wait costs no epoll_ctl. The owner must call pc_hub_forget_fd before it closes
 * or detaches fd. Returns 1 ready, 0 timed out, -1 with an exception. */
int pc_hub_wait_io(HubObject *hub, int fd, uint32_t events, pc_time_t deadline, uint64_t owner);

/* Readiness bookkeeping of a persistent registration, so that a socket can skip a syscall that
 * would only say EAGAIN. pc_hub_io_drained: the owner knows fd has no more of events (EPOLLIN:
 * a stream socket's recv returned less than asked; EOF, errors and hang-ups are never
 * drained). pc_hub_io_idle: 1 if epoll has reported none of events (nor an error or hang-up)
 * for fd since then -- the syscall would fail with EAGAIN, so the caller may wait for the edge
 * at once; 0 if it may be ready, or nothing is known (no registration of owner's). */
void pc_hub_io_drained(HubObject *hub, int fd, uint64_t owner, uint32_t events);
int pc_hub_io_idle(HubObject *hub, int fd, uint64_t owner, uint32_t events);

/* Ends owner's persistent registration of fd (pc_hub_wait_io), if it has one. No exception. */
void pc_hub_forget_fd(HubObject *hub, int fd, uint64_t owner);

/* The hub is usable (not destroyed; its fork generation is current or it can be reset). */
int pc_hub_alive(HubObject *hub);

#endif /* PYCONC_HUB_H */
