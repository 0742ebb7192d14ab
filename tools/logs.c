/* ringq logs: print a job's stdout or stderr file, and with -f follow it
 * until the job finishes. Needs inotify for -f (falls back to a 250 ms
 * poll without it). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define FOLLOW_POLL_MS 250

static bool arg_stderr;
static bool arg_follow;

struct follow {
        const char *path;
        int fd;      /* -1 until the file exists */
        uint64_t off;
        dev_t dev;
        ino_t ino;
        int ifd;     /* inotify, -1 without it */
        int wd_file;
};

/* Copy what was appended since the last call; a file that shrank was
 * truncated (a retry starts over), so start again from 0. */
static int follow_copy(struct follow *f)
{
        char buf[65536];
        struct stat st;

        if (f->fd < 0)
                return 0;
        if (fstat(f->fd, &st) < 0)
                return -errno;
        if ((uint64_t)st.st_size < f->off)
                f->off = 0;
        for (;;) {
                ssize_t n = pread(f->fd, buf, sizeof(buf), (off_t)f->off);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                r = write_all(STDOUT_FILENO, buf, (size_t)n);
                if (r < 0)
                        return r;
                f->off += (uint64_t)n;
        }
}

/* Open the file if it exists now, or reopen it if it was replaced. */
static int follow_open(struct follow *f)
{
        struct stat st;
        int fd;

        if (stat(f->path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (f->fd >= 0 && st.st_dev == f->dev && st.st_ino == f->ino)
                return 0;
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return -errno;
        }
        if (f->fd >= 0) {
                close(f->fd);
                if (f->ifd >= 0 && f->wd_file >= 0)
                        (void)inotify_rm_watch(f->ifd, f->wd_file);
        }
        f->fd = fd;
        f->off = 0;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        if (f->ifd >= 0)
                f->wd_file = inotify_add_watch(f->ifd, f->path, IN_MODIFY | IN_CLOSE_WRITE);
        return 0;
}

static int follow_step(struct follow *f)
{
        int r = follow_open(f);

        return r < 0 ? r : follow_copy(f);
}

/* Follow the file until the wait request sent on c is answered: 0, the
 * exit code of an error reply, or a negative errno. */
static int follow(client *c, struct follow *f)
{
        _cleanup_free_ char *dir_copy = strdup(f->path);
        bool watching = false;
        int r;

        if (!dir_copy)
                return -ENOMEM;
        f->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        /* Watch the directory for the file to appear or be replaced; on
         * failure (limits, no permission) fall back to polling. */
        if (f->ifd >= 0)
                watching = inotify_add_watch(f->ifd, dirname(dir_copy),
                                             IN_CREATE | IN_MOVED_TO | IN_DELETE) >= 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = client_fd(c), .events = POLLIN }, { .fd = f->ifd, .events = POLLIN } };
                json_t *reply = NULL;

                r = follow_step(f);
                if (r < 0)
                        goto out;
                if (poll(p, f->ifd >= 0 ? 2 : 1, watching ? -1 : FOLLOW_POLL_MS) < 0 && errno != EINTR) {
                        r = -errno;
                        goto out;
                }
                if (p[1].revents & POLLIN) {
                        char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                        while (read(f->ifd, ev, sizeof(ev)) > 0)
                                ; /* which event does not matter: step looks again */
                }
                if (!p[0].revents)
                        continue;
                r = client_recv(c, 0, &reply);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        goto out;
                if (arg_json)
                        emit_json(reply);
                if (!client_reply_ok(reply)) {
                        r = reply_error(reply, NULL);
                } else {
                        r = follow_step(f);
                }
                json_decref(reply);
                goto out;
        }
out:
        if (f->ifd >= 0)
                close(f->ifd);
        return r;
}

int verb_logs(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "stderr", no_argument, NULL, OPT_STDERR },
                { "follow", no_argument, NULL, 'f' },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        struct follow f = { .fd = -1, .ifd = -1, .wd_file = -1 };
        json_t *reply = NULL;
        const char *key;
        size_t n;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "f", opts, NULL)) != -1) {
                if (c == OPT_STDERR)
                        arg_stderr = true;
                else if (c == 'f')
                        arg_follow = true;
                else if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        }
        if (argc - optind > 1)
                return usage_error(v, "logs takes one job ID");
        arg_json = false; /* accepted like everywhere, but the output is the log itself */
        r = parse_ids(v, argc - optind, argv + optind, &ids, &n);
        if (r)
                return r;
        r = open_client(&cl);
        if (r)
                return r;
        key = arg_stderr ? "stderr_path" : "stdout_path";
        for (;;) {
                const json_t *job;

                r = call(cl, json_pack("{s:s,s:I}", "op", "status", "id", (json_int_t)ids[0]), &reply);
                if (r)
                        return r;
                job = json_object_get(reply, "job");
                f.path = json_string_value(json_object_get(job, key));
                if (f.path || !arg_follow ||
                    ringq_state_is_final(ringq_state_from_name(json_string_value(json_object_get(job, "state")))))
                        break;
                /* No path yet: ask again shortly (the file watch needs one). */
                json_decref(reply);
                reply = NULL;
                (void)nanosleep(&(struct timespec){ 0, FOLLOW_POLL_MS * 1000000L }, NULL);
        }
        if (!f.path) {
                json_decref(reply);
                return 0;
        }
        if (!arg_follow || ringq_state_is_final(ringq_state_from_name(
                                   json_string_value(json_object_get(json_object_get(reply, "job"), "state")))))
                r = follow_step(&f);
        else {
                _cleanup_json_ json_t *req = json_pack("{s:s,s:I}", "op", "wait", "id", (json_int_t)ids[0]);

                r = req ? client_queue(cl, req) : -ENOMEM;
                if (r == 0)
                        r = client_flush(cl, -1);
                if (r == 0)
                        r = follow(cl, &f);
        }
        if (f.fd >= 0)
                close(f.fd);
        if (r == -ECONNRESET || r == -EPIPE || r == -EBADMSG || r == -EMSGSIZE || r == -ENOMEM)
                r = conn_error(client_path(cl), r);
        else if (r < 0) {
                fprintf(stderr, "ringq: %s: %s\n", f.path, strerror(-r));
                r = r == -EACCES || r == -EPERM ? RINGQ_EXIT_FORBIDDEN : RINGQ_EXIT_SOFTWARE;
        }
        json_decref(reply);
        return r;
}

