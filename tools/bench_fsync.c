/* The disk's floor under a durable submit (ringq-bench fsync, and one
 * --fsync-dir): what one commit of one submit asks of the disk, done by
 * hand in a file of its own on the database's filesystem. A ringqd with
 * durability=full answers no submit before such an fsync, so no figure of
 * a durable submit is worth more than the floor stated beside it: the
 * same code answers in 0.3 ms on one disk and in 3 on another, or on the
 * same one an hour later.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* SQLite appends three WAL frames for a one-row commit (the table's leaf
 * and two index leaves), each a 24-byte header and a 4 KiB page written
 * apart, into a WAL that is already as long as it gets between
 * checkpoints, then fdatasyncs it. Not zeros: a virtual disk may turn a
 * write of zeros into something cheaper. */
#define FLOOR_FILE_BYTES (4 << 20)
#define FLOOR_WAL_HEADER 32
#define FLOOR_FRAME_HEADER 24
#define FLOOR_PAGE 4096
#define FLOOR_FRAMES 3

struct bench_floor {
        int fd;
        off_t off;
        unsigned char page[FLOOR_PAGE];
};

void bench_floor_close(struct bench_floor *f)
{
        if (f && f->fd >= 0)
                close(f->fd);
        free(f);
}

/* Says what went wrong itself: -ECANCELED then. */
int bench_floor_open(const char *dir, struct bench_floor **ret)
{
        struct bench_floor *f = calloc(1, sizeof(*f));
        int r = 0;

        if (!f)
                return -ENOMEM;
        memset(f->page, 0x5a, sizeof(f->page));
        /* Unnamed, so nothing is left behind however the run ends. */
        f->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (f->fd < 0) {
                r = -errno;
                free(f);
                goto fail;
        }
        for (off_t off = 0; off < FLOOR_FILE_BYTES && r == 0; off += FLOOR_PAGE)
                if (pwrite(f->fd, f->page, FLOOR_PAGE, off) != FLOOR_PAGE)
                        r = errno ? -errno : -EIO;
        if (r == 0 && fsync(f->fd) < 0)
                r = -errno;
        if (r < 0) {
                bench_floor_close(f);
                goto fail;
        }
        f->off = FLOOR_WAL_HEADER;
        *ret = f;
        return 0;
fail:
        fprintf(stderr, "ringq-bench: --fsync-dir %s: %s\n", dir, strerror(-r));
        return -ECANCELED;
}

int bench_floor_once(struct bench_floor *f, hist *h)
{
        int64_t t0 = now_ns();

        for (int i = 0; i < FLOOR_FRAMES; i++) {
                if (f->off + FLOOR_FRAME_HEADER + FLOOR_PAGE > FLOOR_FILE_BYTES)
                        f->off = FLOOR_WAL_HEADER;
                if (pwrite(f->fd, f->page, FLOOR_FRAME_HEADER, f->off) != FLOOR_FRAME_HEADER ||
                    pwrite(f->fd, f->page, FLOOR_PAGE, f->off + FLOOR_FRAME_HEADER) != FLOOR_PAGE)
                        return errno ? -errno : -EIO;
                f->off += FLOOR_FRAME_HEADER + FLOOR_PAGE;
        }
        if (fdatasync(f->fd) < 0)
                return -errno;
        hist_add(h, (uint64_t)(now_ns() - t0));
        return 0;
}

/* Back to back, as a stream of one-submit commits meets the disk (a 1x1
 * run); after an idle moment the same fsync may cost twice as much, which
 * is what one --fsync-dir measures, in the rounds of its jobs. */
int bench_fsync(const bench_opts *o, json_t **ret)
{
        struct bench_floor *f = NULL;
        hist *h = calloc(1, sizeof(*h));
        int64_t t0, deadline = client_now_ms() + o->duration_ms, elapsed;
        uint64_t done = 0;
        json_t *res;
        int r;

        if (!h)
                return -ENOMEM;
        r = bench_floor_open(o->fsync_dir, &f);
        if (r < 0) {
                free(h);
                return r;
        }
        t0 = now_ns();
        for (; done < o->count && client_now_ms() < deadline; done++)
                if ((r = bench_floor_once(f, h)) < 0)
                        break;
        elapsed = now_ns() - t0;
        bench_floor_close(f);
        if (r < 0) {
                fprintf(stderr, "ringq-bench: fsync: %s\n", strerror(-r));
                free(h);
                return -ECANCELED;
        }
        res = json_pack("{s:s, s:s, s:I, s:o, s:f}", "mode", "fsync", "dir", o->fsync_dir, "fsyncs",
                        (json_int_t)done, "fsync_ms", hist_json(h), "fsyncs_per_s",
                        elapsed > 0 ? round((double)done * 1e10 / (double)elapsed) / 10 : 0.0);
        free(h);
        if (!res)
                return -ENOMEM;
        *ret = res;
        return 0;
}
