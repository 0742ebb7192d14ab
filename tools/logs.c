/* ringq logs: print a job's stdout or stderr, and with -f follow it until
 * the job finishes. The output files are readable by root only, so ringqd
 * opens the file and passes the descriptor (the output op); -f polls that
 * descriptor, since inotify needs read permission on the file itself. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define FOLLOW_POLL_MS 250

static bool arg_stderr;
static bool arg_follow;

struct follow {
        int fd;       /* passed by ringqd, read-only */
        uint64_t off; /* bytes copied so far */
};

/* Copy what was appended since the last call; a file that shrank was
 * truncated (a retry starts over), so start again from 0. */
static int follow_copy(struct follow *f)
{
        char buf[65536];
        struct stat st;

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

static int ask_wait(client *c, int64_t id)
{
        _cleanup_json_ json_t *req = json_pack("{s:s,s:I}", "op", "wait", "id", (json_int_t)id);

        return req ? client_queue(c, req) : -ENOMEM;
}

/* Follow the file until job id ends: 0, the exit code of an error reply,
 * or a negative errno. Polled, not watched: only the descriptor grants
 * reading, and inotify wants the path. A connection that ends under the
 * wait is replaced and the wait asked again; the descriptor is the
 * file's, and goes on from where it was. */
static int follow(client **c, struct follow *f, int64_t id)
{
        struct relink rl = {};
        int r;

        r = ask_wait(*c, id);
        if (r < 0)
                return r;
        for (;;) {
                struct pollfd p = { .fd = client_fd(*c), .events = POLLIN };
                json_t *reply = NULL;

                r = follow_copy(f);
                if (r < 0)
                        return r;
                /* The reply may sit in the client's buffer already, where
                 * poll() would not see it: ask the client first. */
                r = client_recv(*c, 0, &reply);
                if (r == -ETIMEDOUT) {
                        if (poll(&p, 1, FOLLOW_POLL_MS) < 0 && errno != EINTR)
                                return -errno;
                        continue;
                }
                if (conn_lost(r)) {
                        r = relink(c, &rl);
                        if (r == 0)
                                r = ask_wait(*c, id);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                if (arg_json)
                        emit_json(reply);
                if (!client_reply_ok(reply))
                        r = reply_error(reply, NULL);
                else
                        r = follow_copy(f); /* what the job wrote last */
                json_decref(reply);
                return r;
        }
}

static bool job_final(const json_t *reply)
{
        const json_t *job = json_object_get(reply, "job");

        return ringq_state_is_final(ringq_state_from_name(json_string_value(json_object_get(job, "state"))));
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
        _cleanup_json_ json_t *req = NULL;
        struct follow f = { .fd = -1 };
        json_t *reply = NULL;
        const char *stream, *path;
        char what[64];
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
        stream = arg_stderr ? "stderr" : "stdout";
        req = json_pack("{s:s,s:I,s:s}", "op", "output", "id", (json_int_t)ids[0], "stream", stream);
        if (!req)
                return conn_error("ringq", -ENOMEM);
        for (;;) {
                /* A read, sent again if the connection ends, as with -f
                 * the wait is. */
                r = call_relinking(&cl, req, &reply);
                if (r < 0)
                        return conn_error(client_path(cl), r);
                if (!client_reply_ok(reply)) {
                        r = reply_error(reply, NULL);
                        json_decref(reply);
                        return r;
                }
                if (json_is_true(json_object_get(reply, "fd"))) {
                        f.fd = client_take_fd(cl);
                        if (f.fd < 0) {
                                /* The reply says one came, but none did: the
                                 * socket is not ringqd's own but a relay (an
                                 * SSH forward) that carries bytes only. */
                                json_decref(reply);
                                fprintf(stderr,
                                        "ringq: %s passed no file descriptor: it is not ringqd's own socket but a relay "
                                        "(an SSH forward carries bytes only); run 'ringq logs' on ringqd's host\n",
                                        client_path(cl));
                                return RINGQ_EXIT_UNREACHABLE;
                        }
                        break;
                }
                if (!arg_follow || job_final(reply))
                        break;
                /* Not started yet: ask again shortly. */
                json_decref(reply);
                reply = NULL;
                (void)nanosleep(&(struct timespec){ 0, FOLLOW_POLL_MS * 1000000L }, NULL);
        }
        if (f.fd < 0) { /* no output file: nothing to print */
                json_decref(reply);
                return 0;
        }
        if (!arg_follow || job_final(reply))
                r = follow_copy(&f);
        else
                r = follow(&cl, &f, ids[0]);
        close(f.fd);
        if (r == -ECONNRESET || r == -EPIPE || r == -EBADMSG || r == -EMSGSIZE || r == -ENOMEM || r == -E_GONE)
                r = conn_error(client_path(cl), r);
        else if (r < 0) {
                /* Name the file as ringqd does, though only the descriptor
                 * reads it. */
                path = json_string_value(json_object_get(json_object_get(reply, "job"),
                                                         arg_stderr ? "stderr_path" : "stdout_path"));
                if (!path) {
                        snprintf(what, sizeof(what), "job %" PRId64 " %s", ids[0], stream);
                        path = what;
                }
                fprintf(stderr, "ringq: %s: %s\n", path, strerror(-r));
                r = r == -EACCES || r == -EPERM ? RINGQ_EXIT_FORBIDDEN : RINGQ_EXIT_SOFTWARE;
        }
        json_decref(reply);
        return r;
}
