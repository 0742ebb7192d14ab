/* Launch records (see launches.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launches.h"
#include "util.h"

#define MAGIC "RINGQLR1"

struct header {
        char magic[8];
        char boot_id[48];      /* /proc/sys/kernel/random/boot_id, NUL-padded */
        uint32_t max;
        uint32_t unused;
};

#define FILE_SIZE (sizeof(struct header) + LAUNCHES_MAX * sizeof(struct launch_rec))

static void boot_id(char out[48])
{
        char buf[64];
        ssize_t n = read_small_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", buf, sizeof(buf));

        memset(out, 0, 48);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
                n--;
        if (n > 0)
                memcpy(out, buf, (size_t)MIN(n, 47));
}

/* A record of a job whose child existed: it may have exec'd. */
static bool live(const struct launch_rec *r)
{
        return r->job_id > 0 && r->pid > 0;
}

int launches_open(struct launches *l, int dirfd, struct launch_rec **ret_left, size_t *ret_n)
{
        struct header *h;
        struct stat sb;
        char boot[48];
        size_t n = 0;
        bool ours;

        *l = (struct launches){ .fd = -1, .map = MAP_FAILED };
        *ret_left = NULL;
        *ret_n = 0;
        l->fd = openat(dirfd, LAUNCHES_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l->fd < 0 || fstat(l->fd, &sb) < 0)
                goto fail;
        if (!S_ISREG(sb.st_mode)) {
                errno = EINVAL;
                goto fail;
        }
        ours = (size_t)sb.st_size >= sizeof(struct header);
        /* Every block allocated now: a store into a hole of a shared
         * mapping needs a block, and on a full disk that is SIGBUS. */
        errno = posix_fallocate(l->fd, 0, FILE_SIZE);
        if (errno)
                goto fail;
        l->map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
        if (l->map == MAP_FAILED)
                goto fail;
        h = l->map;
        l->rec = (struct launch_rec *)(h + 1);
        boot_id(boot);
        ours = ours && memcmp(h->magic, MAGIC, sizeof(h->magic)) == 0 && h->max == LAUNCHES_MAX && boot[0] &&
               memcmp(h->boot_id, boot, sizeof(boot)) == 0;
        for (unsigned i = 0; ours && i < LAUNCHES_MAX; i++)
                n += live(&l->rec[i]);
        if (n > 0) {
                struct launch_rec *v = malloc(n * sizeof(*v));
                if (!v) {
                        launches_close(l);
                        return -ENOMEM;
                }
                n = 0;
                for (unsigned i = 0; i < LAUNCHES_MAX; i++)
                        if (live(&l->rec[i]))
                                v[n++] = l->rec[i];
                *ret_left = v;
        }
        *ret_n = n;
        return 0;
fail:;
        int e = -errno;
        launches_close(l);
        return e;
}

void launches_reset(struct launches *l)
{
        struct header *h = l->map;

        memset(l->rec, 0, LAUNCHES_MAX * sizeof(*l->rec));
        memcpy(h->magic, MAGIC, sizeof(h->magic));
        boot_id(h->boot_id);
        h->max = LAUNCHES_MAX;
}

void launches_close(struct launches *l)
{
        if (l->map != MAP_FAILED && l->map)
                munmap(l->map, FILE_SIZE);
        l->map = NULL;
        l->rec = NULL;
        l->fd = safe_close(l->fd);
}

void launches_set(struct launches *l, unsigned i, int64_t job_id, int64_t queued_seq, int64_t started_at, pid_t pid)
{
        struct launch_rec *r = &l->rec[i];

        r->job_id = job_id;
        r->queued_seq = queued_seq;
        r->started_at = started_at;
        /* Last: a record with a pid is whole. (The write that releases
         * the child is a system call, so it cannot pass this store.) */
        __atomic_store_n(&r->pid, (int32_t)pid, __ATOMIC_RELEASE);
}

void launches_clear(struct launches *l, unsigned i)
{
        struct launch_rec *r = &l->rec[i];

        __atomic_store_n(&r->pid, 0, __ATOMIC_RELEASE);
        r->job_id = 0;
}
