/* Small helpers every daemon file uses: ownership macros and clocks.
 *
 * Ownership follows one rule: a pointer marked _cleanup_ is freed when it
 * goes out of scope unless TAKE_PTR/TAKE_FD hands it on. Clocks: wall
 * time (unix ms) is only ever recorded for users; every deadline runs on
 * CLOCK_MONOTONIC so a wall-clock jump can neither fire nor stall it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))

#define container_of(ptr, type, member) \
        ((type *)((char *)(ptr) - offsetof(type, member)))

#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Both ends of a pipe. */
static inline void close_pairp(int (*p)[2])
{
        for (int i = 0; i < 2; i++)
                if ((*p)[i] >= 0)
                        close((*p)[i]);
}
#define _cleanup_pair_ _cleanup_(close_pairp)

/* Close and mark closed; returns -1 so `fd = safe_close(fd)` reads well. */
static inline int safe_close(int fd)
{
        if (fd >= 0)
                close(fd);
        return -1;
}

static inline int64_t clock_ms(clockid_t c)
{
        struct timespec ts;
        clock_gettime(c, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t clock_us(clockid_t c)
{
        struct timespec ts;
        clock_gettime(c, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall time is for records only (submitted_at, run_at, ...): a deadline
 * taken from it would move when the clock is set. The dispatch index
 * turns run_at into a monotonic due time once (qindex.c, tested with
 * jumps both ways in test-qindex); timeouts, kill grace, idle and wait
 * limits are monotonic from the start. */
static inline int64_t now_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
static inline int64_t now_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static inline int64_t now_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }

/* Memory the kernel filled through io_uring (recv, read) is invisible to
 * valgrind, which would then report every byte as uninitialised. Under
 * valgrind this marks it defined; otherwise it costs nothing. */
#ifdef HAVE_VALGRIND_MEMCHECK_H
#include <valgrind/memcheck.h>
#define mem_defined(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define under_valgrind() (RUNNING_ON_VALGRIND != 0)
#else
#define mem_defined(p, n) ((void)(p), (void)(n))
#define under_valgrind() false
#endif

/* Set *ret_err to a malloc'd one-line reason (NULL if even that fails)
 * and return r, so `return set_error(ret_err, -EINVAL, "...")` reads
 * well. */
int set_error(char **ret_err, int r, const char *fmt, ...) _printf_(3, 4);

/* mkdir -p, with `mode` for the directories it creates, whatever the
 * umask (which is set for files, not for these). 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Read a small file (a /proc or cgroup control file) into buf, NUL-
 * terminated, in one read: its length, or -errno. name is relative to
 * dirfd, or absolute with AT_FDCWD. */
ssize_t read_small_at(int dirfd, const char *name, char *buf, size_t size);

/* Grow *array (of *cap elements of size sz) to hold at least need.
 * Returns 0 or -ENOMEM; the array is unchanged on failure. */
int grow_array(void **array, size_t *cap, size_t need, size_t sz);

/* Is id among the n ids of v? (Short lists: the jobs a re-exec spares.) */
static inline bool id_in(const int64_t *v, size_t n, int64_t id)
{
        for (size_t i = 0; i < n; i++)
                if (v[i] == id)
                        return true;
        return false;
}
