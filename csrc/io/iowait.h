/* iowait.h -- waiting for file descriptors in csrc/io (select, poll, selectors): who waits, and
 * the two ways to wait (iowait.c).
 *
 * A caller either parks its greenlet on its thread's hub (a greenlet that may yield: the hub's
 * can_yield() says 1) or blocks its OS thread in a system call with the GIL released. The hub
 * watches one descriptor per parked greenlet (pc_hub_wait_fd), so a wait for many descriptors
 * goes through an epoll instance that holds them: a selector's own one (EpollSelector), or a
 * private one made for the call (PollSelector, SelectSelector, gevent's select and poll). An
 * epoll instance is readable when one of its descriptors is ready, and the hub waits for that.
 *
 * Everything here needs the GIL (the thread side drops it around the system call only).
 */
#ifndef PYCONC_IOWAIT_H
#define PYCONC_IOWAIT_H

#include "pyconc.h"
#include "hub.h"

/* How the caller waits: hub != NULL parks its greenlet there; in_hub: the caller is the hub
 * greenlet itself, which may poll but never block. */
typedef struct {
    HubObject *hub;           /* borrowed */
    int in_hub;
} pc_io_caller;

/* Fills c for the calling greenlet / thread. Never fails. */
void pc_io_caller_get(pc_state *st, pc_io_caller *c);

/* A caller that must block: an error for the hub greenlet itself (BlockingSwitchOutError).
 * Returns 0, or -1 with the exception set. */
int pc_io_may_block(const pc_io_caller *c);

/* The timeout of a poll()/epoll_wait() call that ends at deadline (PC_FOREVER: -1): milliseconds
 * rounded up, at most INT_MAX; 0 once the deadline has passed. */
int pc_io_ms_until(pc_time_t deadline);

/* Deadline of a relative timeout: rel_ns < 0 forever. */
static inline pc_time_t
pc_io_deadline(pc_time_t rel_ns)
{
    return rel_ns < 0 ? PC_FOREVER : pc_deadline_after(rel_ns);
}

/* Waits until fd is readable (an epoll fd: one of its descriptors is ready) or the deadline
 * passes. The hub side parks the greenlet (when another greenlet of the same hub already waits
 * for fd, through a private epoll instance holding fd); the thread side polls with the GIL
 * released, and on EINTR runs the signal handlers, stops if one raised and otherwise waits for
 * the time left. Returns 1 readable, 0 deadline passed, -1 with an exception set. */
int pc_io_wait_readable(pc_state *st, const pc_io_caller *c, int fd, pc_time_t deadline);

/* The hub side of that, for either direction (EPOLLIN or EPOLLOUT): parks the calling greenlet
 * of hub until fd is ready, as gevent's watchers do, beside any other greenlet that waits for
 * the same fd (then through a private epoll instance). 1 ready, 0 deadline passed, -1 with an
 * exception set. */
int pc_io_hub_wait_shared(pc_state *st, HubObject *hub, int fd, uint32_t events,
                          pc_time_t deadline);

/* The same through a private epoll instance that holds fd for events (which may be both
 * directions), readable when fd is ready: the hub's own watch of fd is not touched. */
int pc_io_hub_wait_private(HubObject *hub, int fd, uint32_t events, pc_time_t deadline);

/* "Invalid file object: %R" as the stdlib's selectors._fileobj_to_fd raises it: a ValueError
 * whose context is the exception being replaced (fetched here), suppressed (`from None`).
 * Returns -1. */
int pc_io_raise_from_none(PyObject *type, PyObject *msg);

/* selectors._fileobj_to_fd (and gevent.select.get_fileno): fileobj itself if it is an int, else
 * int(fileobj.fileno()) (AttributeError, TypeError, ValueError become ValueError("Invalid file
 * object: ...")); a negative one is ValueError("Invalid file descriptor: ..."). Returns a new
 * reference to the descriptor object, or NULL with the exception. */
PyObject *pc_io_fileobj_to_fd(PyObject *fileobj);

/* Arguments of a method the stdlib writes in Python (`def register(self, fileobj, events,
 * data=None)`), with Python's messages: names has n entries, the first nreq required; out[i]
 * gets a borrowed reference or NULL. fname is the function's qualified name as Python prints it
 * ("_PollLikeSelector.register"). Returns 0, or -1 with TypeError. */
int pc_io_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                     const char *const *names, Py_ssize_t n, Py_ssize_t nreq, PyObject **out);

#endif /* PYCONC_IOWAIT_H */
