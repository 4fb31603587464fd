/* shm.h -- process-shared memory segments.
 *
 * A segment is a memfd (anonymous, never visible in /dev/shm, freed by the kernel when the last
 * process unmaps and closes it) mapped MAP_SHARED. A forked child inherits both the mapping and
 * the descriptor. Any other process attaches by name: the pickled form of a process-shared object
 * carries (pid, fd, token), and the receiver opens /proc/<pid>/fd/<fd> -- the pickling process,
 * which holds the segment open while the object lives there -- and checks the token stored in the
 * segment's header. So a Queue or Lock can be passed to Pool tasks and to processes that are
 * already running, not only inherited.
 *
 * Every segment starts with pc_shm_header; the owning concept puts its state after it.
 *
 * A segment may have a growable part (a queue's ring): it is then mapped twice, as a fixed part
 * [0, fixed) that is mapped once and never moves -- the header and every futex word and counter a
 * waiter may hold a pointer to while it sleeps -- and an extension [fixed, size) that a grow or a
 * sync may remap elsewhere (mremap MAYMOVE). header.size is the truth, and a process whose
 * mapping is smaller remaps the extension (pc_shm_sync) before it touches it. So no pointer into
 * the fixed part is ever invalidated by growth, and pointers into the extension are only valid
 * under the owner's lock, between a sync and the unlock.
 */
#ifndef PYCONC_SHM_H
#define PYCONC_SHM_H

#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#define PC_SHM_MAGIC 0x31786d68736e6370ULL  /* "pcnshmx1" */

enum { PC_SHM_SEMLOCK = 1, PC_SHM_QUEUE = 2, PC_SHM_BLOCK = 3, PC_SHM_EVENT = 4 };

typedef struct {
    uint64_t magic;
    uint64_t token;      /* random identity of the segment */
    uint32_t kind;
    uint32_t fixed;      /* size of the fixed part, a multiple of the page size; 0: no extension */
    uint64_t size;       /* the segment's current size in bytes */
} pc_shm_header;

typedef struct {
    int fd;              /* this process's descriptor, -1 when closed */
    char *base;          /* this process's mapping of the fixed part (never moves) */
    size_t fixed;        /* length of base's mapping */
    char *ext;           /* this process's mapping of the extension, or NULL (may move) */
    size_t size;         /* mapped length in all: fixed + the extension's */
} pc_shm;

/* Creates a segment of size bytes (zero-filled) with a fresh header, mapped as one fixed part.
 * -1 with an exception. */
int pc_shm_create(pc_shm *m, size_t size, uint32_t kind);

/* Creates a segment with a fixed part of at least fixed_min bytes (rounded up to the page size)
 * and a growable extension of ext_size bytes after it. -1 with an exception. */
int pc_shm_create_growable(pc_shm *m, size_t fixed_min, size_t ext_size, uint32_t kind);

/* Attaches to the segment that process pid holds open as fd, checking token and kind.
 * -1 with an exception (FileNotFoundError when that process is gone). */
int pc_shm_attach(pc_shm *m, long pid, int fd, uint64_t token, uint32_t kind);

/* Remaps the extension if the segment grew since this process mapped it. -1 with an
 * exception. */
int pc_shm_sync(pc_shm *m);

/* Grows the extension to ext_size bytes (the caller holds the segment's own lock). -1 with an
 * exception. */
int pc_shm_grow(pc_shm *m, size_t ext_size);

void pc_shm_close(pc_shm *m);

static inline pc_shm_header *
pc_shm_hdr(pc_shm *m)
{
    return (pc_shm_header *)m->base;
}

/* (pid, fd, token) for pickling: this process's name for the segment. */
PyObject *pc_shm_name(pc_shm *m);

/* Parses (pid, fd, token) back. */
int pc_shm_parse_name(PyObject *name, long *pid, int *fd, uint64_t *token);

/* 1 if process pid is gone (no such process, or a zombie), else 0. */
int pc_process_dead(pid_t pid);

/* This process's pid, cached (refreshed after fork). */
int32_t pc_getpid(void);

/* This thread's kernel thread id (system-wide unique), cached per thread and after fork. */
uint32_t pc_gettid(void);

#endif /* PYCONC_SHM_H */
