/* A disk that keeps only what was fsynced, for the power-cut test.
 *
 * LD_PRELOADed into ringqd. At every fsync or fdatasync of a file below
 * $RINGQ_POWERCUT_ROOT it copies the file's whole content to the same
 * relative path below $RINGQ_POWERCUT_SHADOW: that copy is what the file
 * would hold after a power cut, since the kernel promises nothing about
 * data written but not synced. Unlinking a file forgets its copy. The
 * test kills ringqd with SIGKILL, replaces the files with their copies
 * (a file never synced is gone), and starts ringqd again.
 *
 * Each sync kept is also noted, as one line with the file's relative
 * path, in $RINGQ_POWERCUT_LOG if that is set: which commits pay for an
 * fsync is part of what the tests check.
 *
 * While the file named by $RINGQ_POWERCUT_FAIL exists, every such sync
 * fails with EIO and copies nothing, as a failing disk would: nothing
 * written since the last good sync may then count as stored.
 *
 * While the file named by $RINGQ_POWERCUT_SLOW exists, every such sync
 * first sleeps for the milliseconds written in it, as a slow disk would:
 * what ringqd does while an fsync runs can then be watched.
 *
 * A model, not a kernel: directory syncs are not modelled (a file is
 * kept if its content was synced), and the copy is taken at the call,
 * under a lock, so two syncs of one file never interleave.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

__attribute__((constructor)) static void init(void)
{
        real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
        real_unlink = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
        real_unlinkat = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
}

/* The path below the root, or NULL when the file is elsewhere. */
static const char *below_root(const char *path)
{
        const char *root = getenv("RINGQ_POWERCUT_ROOT");
        size_t n = root ? strlen(root) : 0;

        if (!n || strncmp(path, root, n) != 0 || path[n] != '/')
                return NULL;
        return path + n + 1;
}

static int fd_path(int fd, char *buf, size_t size)
{
        char link[64];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, buf, size - 1);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        return 0;
}

static void shadow_path(char *buf, size_t size, const char *rel)
{
        snprintf(buf, size, "%s/%s", getenv("RINGQ_POWERCUT_SHADOW"), rel);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void)mkdir(buf, 0700);
                        *p = '/';
                }
}

/* Copy the synced file as it is now: write a temporary, rename over. */
static void keep(const char *path, const char *rel)
{
        char dst[PATH_MAX], tmp[PATH_MAX + 8], buf[65536];
        int in, out;
        ssize_t n;

        shadow_path(dst, sizeof(dst), rel);
        snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
        in = open(path, O_RDONLY | O_CLOEXEC);
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (in < 0 || out < 0)
                abort(); /* the test cannot trust its model any more */
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)n) != n)
                        abort();
        if (n < 0)
                abort();
        close(in);
        close(out);
        if (rename(tmp, dst) < 0)
                abort();
}

/* The slow disk's delay, if it is slow now. */
static void slow_down(void)
{
        const char *slow = getenv("RINGQ_POWERCUT_SLOW");
        FILE *f = slow ? fopen(slow, "re") : NULL;
        long ms = 0;

        if (!f)
                return;
        if (fscanf(f, "%ld", &ms) == 1 && ms > 0) {
                struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        fclose(f);
}

static int sync_one(int fd, int (*real)(int))
{
        char path[PATH_MAX];
        const char *rel, *fail = getenv("RINGQ_POWERCUT_FAIL");
        int r;

        if (fd_path(fd, path, sizeof(path)) < 0 || !(rel = below_root(path)))
                return real(fd);
        slow_down();
        pthread_mutex_lock(&lock);
        if (fail && access(fail, F_OK) == 0) {
                pthread_mutex_unlock(&lock);
                errno = EIO;
                return -1;
        }
        r = real(fd);
        if (r == 0) {
                struct stat st;
                const char *log = getenv("RINGQ_POWERCUT_LOG");
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                        keep(path, rel);
                        if (log) {
                                int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                                if (lfd < 0 || dprintf(lfd, "%s\n", rel) < 0)
                                        abort();
                                close(lfd);
                        }
                }
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int fsync(int fd)
{
        return sync_one(fd, real_fsync);
}

int fdatasync(int fd)
{
        return sync_one(fd, real_fdatasync);
}

static void forget(const char *path)
{
        char abs[PATH_MAX], dst[PATH_MAX];
        const char *rel;

        if (path[0] != '/') {
                if (!getcwd(abs, sizeof(abs)) || strlen(abs) + strlen(path) + 2 > sizeof(abs))
                        return;
                strcat(abs, "/");
                strcat(abs, path);
                path = abs;
        }
        if (!(rel = below_root(path)))
                return;
        shadow_path(dst, sizeof(dst), rel);
        (void)real_unlink(dst);
}

int unlink(const char *path)
{
        int r = real_unlink(path);

        if (r == 0) {
                pthread_mutex_lock(&lock);
                forget(path);
                pthread_mutex_unlock(&lock);
        }
        return r;
}

int unlinkat(int dirfd, const char *path, int flags)
{
        char dir[PATH_MAX], full[PATH_MAX * 2];
        int r = real_unlinkat(dirfd, path, flags);

        if (r == 0 && !(flags & AT_REMOVEDIR)) {
                pthread_mutex_lock(&lock);
                if (path[0] == '/')
                        forget(path);
                else if (dirfd != AT_FDCWD && fd_path(dirfd, dir, sizeof(dir)) == 0) {
                        snprintf(full, sizeof(full), "%s/%s", dir, path);
                        forget(full);
                } else
                        forget(path);
                pthread_mutex_unlock(&lock);
        }
        return r;
}
