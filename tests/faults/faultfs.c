/*
 * faultfs.c - an LD_PRELOAD shim that makes writes or syncs fail, for the
 * storage fault tests (tests/integration/storage_fault_test.c).
 *
 * Loaded into a process (LD_PRELOAD=build/lib/faultfs.so), it wraps the
 * libc calls that put data on disk, resolving the real ones with
 * dlsym(RTLD_NEXT). It is configured by the environment, read once at load:
 *
 *   FAULTFS_PATH=PREFIX   only file descriptors whose path (readlink of
 *                         /proc/self/fd/N: absolute, symbolic links resolved)
 *                         starts with PREFIX take part; a plain string
 *                         prefix, so give "DIR/" for a directory. Unset: the
 *                         shim does nothing (every call passes).
 *   FAULTFS_OP=write      the calls counted: write, pwrite, pwrite64, writev,
 *                         pwritev, pwritev64, pwritev2, pwritev64v2;
 *   FAULTFS_OP=fsync      or fsync and fdatasync.
 *   FAULTFS_AT=N          the Nth matching call (counted from 1, over all
 *                         threads) fails, and so does every later one: a full
 *                         or broken disk stays that way until the process is
 *                         restarted. 0 or unset: never fail, only count.
 *   FAULTFS_ONCE=1        fail only the Nth call (a transient error).
 *   FAULTFS_ERRNO=ENOSPC  the errno of a failed call: ENOSPC (default), EIO,
 *                         EDQUOT or EROFS.
 *   FAULTFS_STATE=FILE    optional: a file of at least sizeof(faultfs_state)
 *                         bytes, created by the caller, that the shim maps
 *                         shared and where it keeps its counters (matching
 *                         calls, failed calls, the call index of the first
 *                         failure), so that the test can see from outside
 *                         whether and when the fault fired.
 *
 * A failed call does nothing: no byte is written and nothing is synced, and
 * it returns -1 with errno set, as the kernel would. The shim itself never
 * writes or syncs anything (no output, no log; its counters are plain stores
 * to shared memory): it must not disturb what it counts. Its counters are
 * atomics and its configuration is fixed before main, so any thread may call
 * through it. The path of a descriptor is looked up at every call of the
 * chosen kind rather than cached, so a reused descriptor number is never
 * taken for the file it used to be.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "faultfs.h"

/* A path from /proc/self/fd: PATH_MAX is what the kernel gives at most. */
#define FAULTFS_FD_PATH_BYTES 4096

typedef enum faultfs_op { FAULTFS_OP_NONE = 0, FAULTFS_OP_WRITE, FAULTFS_OP_FSYNC } faultfs_op;

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*pwritev64_fn)(int, const struct iovec *, int, off64_t);
typedef ssize_t (*pwritev2_fn)(int, const struct iovec *, int, off_t, int);
typedef ssize_t (*pwritev64v2_fn)(int, const struct iovec *, int, off64_t, int);
typedef int (*sync_fn)(int);

static struct {
    atomic_bool configured;
    faultfs_op op;
    char prefix[FAULTFS_FD_PATH_BYTES];
    size_t prefix_len;
    uint64_t fail_at; /* 0: never */
    bool once;
    int error;
    faultfs_state *shared; /* NULL: counters stay local */
    faultfs_state local;
} config;

static write_fn real_write;
static pwrite_fn real_pwrite;
static pwrite64_fn real_pwrite64;
static writev_fn real_writev;
static pwritev_fn real_pwritev;
static pwritev64_fn real_pwritev64;
static pwritev2_fn real_pwritev2;
static pwritev64v2_fn real_pwritev64v2;
static sync_fn real_fsync;
static sync_fn real_fdatasync;
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

/* The next definition of name after this library (POSIX's way of turning
 * dlsym's object pointer into a function pointer: through its bytes). Abort
 * when there is none: every caller of the wrapper expects the call to
 * exist. */
#define RESOLVE(name)                                                                              \
    do {                                                                                           \
        void *symbol = dlsym(RTLD_NEXT, #name);                                                    \
        if (symbol == NULL)                                                                        \
            abort();                                                                               \
        memcpy(&real_##name, &symbol, sizeof symbol);                                              \
    } while (0)

static void resolve_all(void)
{
    RESOLVE(write);
    RESOLVE(pwrite);
    RESOLVE(pwrite64);
    RESOLVE(writev);
    RESOLVE(pwritev);
    RESOLVE(pwritev64);
    RESOLVE(pwritev2);
    RESOLVE(pwritev64v2);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
}

/* The real function; resolved once, by whichever thread comes first (the
 * constructor, normally). */
#define REAL(name) (pthread_once(&resolved, resolve_all), real_##name)

static int parse_errno(const char *name)
{
    if (name == NULL || strcmp(name, "ENOSPC") == 0)
        return ENOSPC;
    if (strcmp(name, "EIO") == 0)
        return EIO;
    if (strcmp(name, "EDQUOT") == 0)
        return EDQUOT;
    if (strcmp(name, "EROFS") == 0)
        return EROFS;
    return ENOSPC;
}

/* Map FAULTFS_STATE shared; a missing or short file leaves the counters
 * local (the fault still fires, only the test cannot see it). */
static void map_state(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat info;
    if (fstat(fd, &info) == 0 && (size_t)info.st_size >= sizeof(faultfs_state)) {
        void *map = mmap(NULL, sizeof(faultfs_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED)
            config.shared = map;
    }
    close(fd);
}

/* Before main (and before any thread): read the environment once. */
__attribute__((constructor)) static void faultfs_configure(void)
{
    const char *prefix = getenv("FAULTFS_PATH");
    const char *op = getenv("FAULTFS_OP");
    const char *at = getenv("FAULTFS_AT");
    const char *once = getenv("FAULTFS_ONCE");
    config.op = FAULTFS_OP_NONE;
    if (prefix != NULL && prefix[0] != '\0' && strlen(prefix) < sizeof config.prefix) {
        config.prefix_len = strlen(prefix);
        memcpy(config.prefix, prefix, config.prefix_len + 1);
        if (op != NULL && strcmp(op, "write") == 0)
            config.op = FAULTFS_OP_WRITE;
        else if (op != NULL && strcmp(op, "fsync") == 0)
            config.op = FAULTFS_OP_FSYNC;
    }
    config.fail_at = at != NULL ? strtoull(at, NULL, 10) : 0;
    config.once = once != NULL && strcmp(once, "1") == 0;
    config.error = parse_errno(getenv("FAULTFS_ERRNO"));
    map_state(getenv("FAULTFS_STATE"));
    pthread_once(&resolved, resolve_all);
    atomic_store(&config.configured, true);
}

static faultfs_state *counters(void)
{
    return config.shared != NULL ? config.shared : &config.local;
}

/* Does fd name a file under the prefix? */
static bool fd_matches(int fd)
{
    char link[64];
    char path[FAULTFS_FD_PATH_BYTES];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len < 0 || (size_t)len < config.prefix_len)
        return false;
    return memcmp(path, config.prefix, config.prefix_len) == 0;
}

/* Count a call of kind op on fd; true when it must fail (errno is then
 * set). */
static bool fault_due(faultfs_op op, int fd)
{
    if (!atomic_load(&config.configured) || config.op != op || !fd_matches(fd))
        return false;
    faultfs_state *state = counters();
    uint64_t index = atomic_fetch_add(&state->calls, 1) + 1;
    if (config.fail_at == 0 || index < config.fail_at || (config.once && index > config.fail_at))
        return false;
    uint64_t none = 0;
    atomic_compare_exchange_strong(&state->first_fault_call, &none, index);
    atomic_fetch_add(&state->faults, 1);
    errno = config.error;
    return true;
}

ssize_t write(int fd, const void *buffer, size_t count)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(write)(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwrite)(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwrite64)(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vector, int count)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(writev)(fd, vector, count);
}

ssize_t pwritev(int fd, const struct iovec *vector, int count, off_t offset)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwritev)(fd, vector, count, offset);
}

ssize_t pwritev64(int fd, const struct iovec *vector, int count, off64_t offset)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwritev64)(fd, vector, count, offset);
}

ssize_t pwritev2(int fd, const struct iovec *vector, int count, off_t offset, int flags)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwritev2)(fd, vector, count, offset, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec *vector, int count, off64_t offset, int flags)
{
    if (fault_due(FAULTFS_OP_WRITE, fd))
        return -1;
    return REAL(pwritev64v2)(fd, vector, count, offset, flags);
}

int fsync(int fd)
{
    if (fault_due(FAULTFS_OP_FSYNC, fd))
        return -1;
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (fault_due(FAULTFS_OP_FSYNC, fd))
        return -1;
    return REAL(fdatasync)(fd);
}
