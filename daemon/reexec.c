/* Re-executing ringqd in place (reexec.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "reexec.h"
#include "server.h"
#include "util.h"
#include "worker.h"

/* The hand-off's format. A new binary that does not know it starts as
 * after a crash: nothing is lost, running jobs are requeued. */
#define HANDOFF_VERSION 1

extern char **environ;

static char *self_exe;
static char **self_argv;

void reexec_save_args(int argc, char **argv)
{
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

        /* Saved at start: after a package upgrade /proc/self/exe names
         * the old, deleted file, and the path is what must run. */
        if (n > 0) {
                buf[n] = 0;
                self_exe = strdup(buf);
        }
        self_argv = calloc((size_t)argc + 1, sizeof(char *));
        for (int i = 0; self_argv && i < argc; i++)
                self_argv[i] = argv[i];
}

int reexec_begin(struct server *s, const char *why)
{
        if (s->draining)
                return -ESHUTDOWN;
        if (s->rx.phase != RX_NONE)
                return -EALREADY;
        if (!self_exe || !self_argv)
                return -ENOEXEC;
        log_notice("re-executing %s (%s): %u running job(s) go on", self_exe, why, s->busy_slots);
        s->rx.phase = RX_QUIESCE;
        /* reexec_timeout: how long starts, ends and commits may take to
         * settle before the re-exec is given up (reexec_failed) and ringqd
         * goes on as it was. Each step it waits for is bounded too: a
         * commit by busy_timeout, an end's drain by 2 s. */
        s->rx.deadline_ms = now_mono_ms() + s->cfg.reexec_timeout_ms;
        /* Clients get half of it to read their replies: one that does not
         * read is not let hold the re-exec (and so an upgrade) back; it
         * is closed at the park like a slow reader. */
        s->rx.clients_ms = now_mono_ms() + s->cfg.reexec_timeout_ms / 2;
        listener_pause(s);
        notify_status_now(s);
        return 0;
}

/* Back to normal service: the exec failed or could not be prepared. */
static void resume(struct server *s)
{
        s->rx.phase = RX_NONE;
        if (!store_running(s->store) && store_resume(s->store) < 0)
                log_error("re-exec: cannot restart the store thread");
        workers_unpark(s);
        conns_unpark(s);
        loop_resume_signals(s);
        listener_arm(s);
        dispatch_run(s);
        prune_poke(s);
        notify_status_now(s);
}

static int keep_fd(json_t *o, const char *key, int fd)
{
        if (fd >= 0 && fcntl(fd, F_SETFD, 0) < 0)
                return -errno;
        return json_object_set_new(o, key, json_integer(fd)) < 0 ? -ENOMEM : 0;
}

static int fill_handoff(struct server *s, json_t *o, json_t *slots, json_t *conns);
static int write_memfd(json_t *o, int *ret_fd);

/* The hand-off as a memfd the new process inherits. */
static int write_handoff(struct server *s, int *ret_fd)
{
        json_t *o = json_object(), *slots = json_array(), *conns = json_array();
        int r = o && slots && conns ? 0 : -ENOMEM;

        if (r == 0)
                r = fill_handoff(s, o, slots, conns);
        if (r == 0)
                r = write_memfd(o, ret_fd);
        json_decref(o);
        json_decref(slots);
        json_decref(conns);
        return r;
}

static int fill_handoff(struct server *s, json_t *o, json_t *slots, json_t *conns)
{
        int r;

        r = json_object_set_new(o, "version", json_integer(HANDOFF_VERSION));
        r = r ?: json_object_set_new(o, "reexecs", json_integer((json_int_t)s->rx.count + 1));
        r = r ?: json_object_set_new(o, "socket_activated", json_boolean(s->lis.activated));
        r = r ?: json_object_set_new(o, "socket_dev", json_integer((json_int_t)s->lis.dev));
        r = r ?: json_object_set_new(o, "socket_ino", json_integer((json_int_t)s->lis.ino));
        r = r ?: json_object_set_new(o, "state_dir", json_string(s->cfg.state_dir));
        r = r ?: json_object_set_new(o, "socket", json_string(s->cfg.socket));
        if (r < 0)
                return -ENOMEM;
        r = keep_fd(o, "socket_fd", s->lis.fd);
        if (r == 0)
                r = keep_fd(o, "state_dirfd", s->state_dirfd);
        if (r == 0)
                r = workers_handoff(s, slots);
        if (r == 0)
                r = conns_handoff(s, conns);
        if (r < 0)
                return r;
        return json_object_set(o, "slots", slots) < 0 || json_object_set(o, "conns", conns) < 0 ? -ENOMEM : 0;
}

static int write_memfd(json_t *o, int *ret_fd)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;
        size_t len, off = 0;

        text = json_dumps(o, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        fd = memfd_create("ringqd-handoff", 0);
        if (fd < 0)
                return -errno;
        len = strlen(text);
        while (off < len) {
                ssize_t n = write(fd, text + off, len - off);
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void exec_now(struct server *s)
{
        char env[32];
        int fd = -1, r;

        /* The store thread is idle (quiesced); an execve would kill it
         * wherever it stands, so it is joined first. */
        store_pause(s->store);
        r = write_handoff(s, &fd);
        if (r < 0) {
                log_error_errno(r, "re-exec: cannot write the hand-off; going on as before");
                goto fail;
        }
        snprintf(env, sizeof(env), "%d", fd);
        if (setenv("RINGQ_REEXEC_FD", env, 1) < 0) {
                r = -errno;
                goto fail;
        }
        log_notice("re-exec: handing %u running job(s) over to %s", s->busy_slots, self_exe);
        execve(self_exe, self_argv, environ);
        r = -errno;
        log_error_errno(r, "re-exec: cannot execute %s; going on as before", self_exe);
        unsetenv("RINGQ_REEXEC_FD");
fail:
        safe_close(fd);
        /* Only what execve would have closed is ours to close again. */
        (void)fcntl(s->lis.fd, F_SETFD, FD_CLOEXEC);
        (void)fcntl(s->state_dirfd, F_SETFD, FD_CLOEXEC);
        workers_handoff_undo(s);
        conns_handoff_undo(s);
        s->stats.c[C_REEXEC_FAILED]++;
        resume(s);
}

void reexec_poll(struct server *s)
{
        if (s->rx.phase == RX_NONE)
                return;
        if (s->draining) {
                /* A stop came first: a stop means stop. */
                log_notice("re-exec given up: ringqd is stopping");
                resume(s);
                return;
        }
        if (s->rx.phase == RX_QUIESCE) {
                if (store_inflight(s->store) || !walsync_idle(s) || !ops_none_held(s) || !workers_settled(s) ||
                    (!conns_settled(s) && now_mono_ms() < s->rx.clients_ms) ||
                    s->prune.inflight) {
                        if (now_mono_ms() >= s->rx.deadline_ms) {
                                log_error("re-exec given up: running starts and ends did not settle within "
                                          "reexec_timeout (%lldms)", (long long)s->cfg.reexec_timeout_ms);
                                s->stats.c[C_REEXEC_FAILED]++;
                                resume(s);
                        }
                        return;
                }
                /* Clients go over with their waits; new ones wait in
                 * the listening socket's backlog. */
                conns_park(s);
                workers_park(s);
                loop_park_signals(s);
                s->rx.phase = RX_PARK;
                return;
        }
        if (!workers_parked(s) || !loop_signals_parked(s) || !conns_parked(s))
                return;
        exec_now(s);
}

json_t *reexec_take_handoff(void)
{
        const char *e = getenv("RINGQ_REEXEC_FD");
        json_error_t err;
        char v[32];
        json_t *o;
        char *end;
        long fd;
        FILE *f;

        if (!e)
                return NULL;
        /* Copied: unsetenv may free what getenv returned. The variable
         * goes at once, so no job ever inherits it. */
        snprintf(v, sizeof(v), "%s", e);
        unsetenv("RINGQ_REEXEC_FD");
        fd = strtol(v, &end, 10);
        if (!*v || *end || fd < 3 || fd > INT32_MAX) {
                log_error("re-exec: RINGQ_REEXEC_FD=%s is not a descriptor; starting as after a crash", v);
                return NULL;
        }
        f = fdopen((int)fd, "r");
        if (!f) {
                log_error_errno(-errno, "re-exec: hand-off descriptor %ld; starting as after a crash", fd);
                close((int)fd);
                return NULL;
        }
        o = json_loadf(f, 0, &err);
        fclose(f);
        if (!o || !json_is_object(o) ||
            json_integer_value(json_object_get(o, "version")) != HANDOFF_VERSION) {
                log_error("re-exec: the hand-off is %s; starting as after a crash",
                          o ? "of a version this ringqd does not know" : err.text);
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The state directory and the socket are where the running jobs and the
 * waiting clients are: a re-exec keeps them, whatever the file says now
 * (a changed one takes effect at the next restart, and the log says
 * so). Every other key is read afresh. */
int reexec_keep_paths(struct server *s)
{
        struct {
                const char *key;
                char **value;
        } keep[] = { { "state_dir", &s->cfg.state_dir }, { "socket", &s->cfg.socket } };

        for (size_t i = 0; s->handoff && i < ELEMENTSOF(keep); i++) {
                const char *was = json_string_value(json_object_get(s->handoff, keep[i].key));
                char *copy;

                if (!was || (*keep[i].value && strcmp(was, *keep[i].value) == 0))
                        continue;
                copy = strdup(was);
                if (!copy)
                        return -ENOMEM;
                log_warning("re-exec: %s is %s in the configuration, but the running jobs and clients are at %s: "
                            "kept; the new one takes effect after a restart",
                            keep[i].key, *keep[i].value ? *keep[i].value : "(unset)", was);
                free(*keep[i].value);
                *keep[i].value = copy;
        }
        return 0;
}
