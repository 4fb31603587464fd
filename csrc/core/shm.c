/* shm.c -- process-shared memory segments (memfd + MAP_SHARED). See shm.h. */
#define _GNU_SOURCE
#include "shm.h"
#include "wait.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static void
shm_reset(pc_shm *m)
{
    m->fd = -1;
    m->base = NULL;
    m->fixed = 0;
    m->ext = NULL;
    m->size = 0;
}

/* Maps fd's [0, fixed) and, when size > fixed, the extension [fixed, size) separately.
 * fixed == 0: the whole segment as one fixed part. 0, or -1 with OSError (nothing mapped). */
static int
map_fd(pc_shm *m, int fd, size_t fixed, size_t size)
{
    if (fixed == 0) {
        fixed = size;
    }
    void *p = mmap(NULL, fixed, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    void *e = NULL;
    if (size > fixed) {
        e = mmap(NULL, size - fixed, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)fixed);
        if (e == MAP_FAILED) {
            PyErr_SetFromErrno(PyExc_OSError);
            munmap(p, fixed);
            return -1;
        }
    }
    m->fd = fd;
    m->base = p;
    m->fixed = fixed;
    m->ext = e;
    m->size = size;
    return 0;
}

static int
create(pc_shm *m, size_t fixed, size_t size, uint32_t kind)
{
    shm_reset(m);
    int fd = memfd_create("pyconc", MFD_CLOEXEC);
    if (fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0 || map_fd(m, fd, fixed, size) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetFromErrno(PyExc_OSError);
        }
        close(fd);
        return -1;
    }
    pc_shm_header *h = pc_shm_hdr(m);
    uint64_t token = 0;
    if (getrandom(&token, sizeof(token), 0) != (ssize_t)sizeof(token)) {
        token = (uint64_t)pc_monotonic_ns() ^ ((uint64_t)getpid() << 32);
    }
    h->token = token;
    h->kind = kind;
    h->fixed = (uint32_t)fixed;
    h->size = size;
    __atomic_store_n(&h->magic, PC_SHM_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

int
pc_shm_create(pc_shm *m, size_t size, uint32_t kind)
{
    return create(m, 0, size, kind);
}

int
pc_shm_create_growable(pc_shm *m, size_t fixed_min, size_t ext_size, uint32_t kind)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t fixed = (fixed_min + page - 1) / page * page;
    return create(m, fixed, fixed + ext_size, kind);
}

int
pc_shm_attach(pc_shm *m, long pid, int fd, uint64_t token, uint32_t kind)
{
    shm_reset(m);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd/%d", pid, fd);
    int myfd = open(path, O_RDWR | O_CLOEXEC);
    if (myfd < 0) {
        if (errno == ENOENT) {
            PyErr_Format(PyExc_FileNotFoundError,
                         "cannot attach to a pyconc shared object: the process that sent it "
                         "(pid %ld) no longer holds it (it has exited or closed the object)", pid);
        }
        else {
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        }
        return -1;
    }
    pc_shm_header hdr;
    if (pread(myfd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || hdr.magic != PC_SHM_MAGIC ||
            hdr.token != token || hdr.kind != kind) {
        close(myfd);
        PyErr_Format(PyExc_FileNotFoundError,
                     "cannot attach to a pyconc shared object: descriptor %d of process %ld is "
                     "no longer that object", fd, pid);
        return -1;
    }
    /* The size read here may be stale by the time of the mapping (a grow in between): the
     * owner's next sync maps the rest. */
    if (map_fd(m, myfd, (size_t)hdr.fixed, (size_t)hdr.size) < 0) {
        close(myfd);
        return -1;
    }
    return 0;
}

/* Remaps the extension to size bytes in all. 0, or -1 with an exception. */
static int
remap_ext(pc_shm *m, size_t size)
{
    size_t elen = size - m->fixed;
    void *e;
    if (m->ext == NULL) {
        e = mmap(NULL, elen, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, (off_t)m->fixed);
    }
    else {
        e = mremap(m->ext, m->size - m->fixed, elen, MREMAP_MAYMOVE);
    }
    if (e == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    m->ext = e;
    m->size = size;
    return 0;
}

int
pc_shm_sync(pc_shm *m)
{
    size_t size = (size_t)__atomic_load_n(&pc_shm_hdr(m)->size, __ATOMIC_ACQUIRE);
    if (size == m->size) {
        return 0;
    }
    return remap_ext(m, size);
}

int
pc_shm_grow(pc_shm *m, size_t ext_size)
{
    assert(pc_shm_hdr(m)->fixed != 0);
    size_t newsize = m->fixed + ext_size;
    if (ftruncate(m->fd, (off_t)newsize) < 0) {
        PyErr_SetFromErrno(PyExc_MemoryError);
        return -1;
    }
    if (remap_ext(m, newsize) < 0) {
        return -1;
    }
    __atomic_store_n(&pc_shm_hdr(m)->size, (uint64_t)newsize, __ATOMIC_RELEASE);
    return 0;
}

void
pc_shm_close(pc_shm *m)
{
    if (m->ext != NULL) {
        munmap(m->ext, m->size - m->fixed);
    }
    if (m->base != NULL) {
        munmap(m->base, m->fixed);
    }
    if (m->fd >= 0) {
        close(m->fd);
    }
    shm_reset(m);
}

PyObject *
pc_shm_name(pc_shm *m)
{
    return Py_BuildValue("(liK)", (long)getpid(), m->fd,
                         (unsigned long long)pc_shm_hdr(m)->token);
}

int
pc_shm_parse_name(PyObject *name, long *pid, int *fd, uint64_t *token)
{
    unsigned long long t;
    if (!PyArg_ParseTuple(name, "liK", pid, fd, &t)) {
        return -1;
    }
    *token = t;
    return 0;
}

int
pc_process_dead(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH) {
        return 1;
    }
    /* A killed child stays a zombie until its parent reaps it: dead for our purposes. */
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');   /* the state follows the command name, which may hold ')' */
    return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static int32_t cached_pid = 0;
static uint64_t cached_pid_gen = 0;

int32_t
pc_getpid(void)
{
    /* glibc no longer caches getpid(): a syscall per call, on the lock paths of every
     * process-shared object. Refreshed after fork (the generation pthread_atfork bumps). */
    if (cached_pid == 0 || __atomic_load_n(&cached_pid_gen, __ATOMIC_RELAXED) != pc_fork_generation) {
        __atomic_store_n(&cached_pid, (int32_t)getpid(), __ATOMIC_RELAXED);
        __atomic_store_n(&cached_pid_gen, pc_fork_generation, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
}

static PC_TLS uint32_t cached_tid = 0;
static PC_TLS uint64_t cached_gen = 0;

uint32_t
pc_gettid(void)
{
    if (cached_tid == 0 || cached_gen != pc_fork_generation) {
        cached_tid = (uint32_t)syscall(SYS_gettid);
        cached_gen = pc_fork_generation;
    }
    return cached_tid;
}
