/* Running jobs across a re-exec (reexec.h): what a slot hands over, and
 * how the new process checks and adopts it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "procs.h"
#include "worker.h"

/* The pid a pidfd refers to (-1 once the process is reaped). */
static pid_t pidfd_pid(int pidfd)
{
        char path[64], buf[2048], *p;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        if (read_small_at(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
                return -1;
        p = strstr(buf, "\nPid:");
        return p ? (pid_t)strtol(p + 5, NULL, 10) : -1;
}

/* Does the environment pid started with name another job? It may have
 * exec'd with a clean environment, so a missing variable proves
 * nothing; a different id does. */
static bool environ_names_other_job(pid_t pid, int64_t id)
{
        int64_t v;

        return procs_job_id(pid, &v) == 0 && v != id;
}

static int proc_starttime(pid_t pid, uint64_t *ret)
{
        struct pstat ps;
        int r = procs_read_stat(pid, &ps);

        if (r == 0)
                *ret = ps.starttime;
        return r;
}

/* ---- the old process ---- */

static int fd_keep(int fd)
{
        return fd < 0 || fcntl(fd, F_SETFD, 0) == 0 ? 0 : -errno;
}

static json_t *stream_json(const struct stream *st)
{
        return json_pack("{s:i, s:i, s:I, s:b, s:b, s:b, s:b}", "pipe", st->pipe_r, "file", st->file_fd, "kept",
                         (json_int_t)st->kept, "eof", st->eof, "truncated", st->truncated, "file_failed",
                         st->file_failed, "open_owed", st->open_owed);
}

int workers_handoff(struct server *s, json_t *slots)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                uint64_t start = 0;
                json_t *o;
                int r;

                if (sl->state == SLOT_FREE)
                        continue;
                r = proc_starttime(sl->pid, &start);
                if (r < 0)
                        return log_error_errno(r, "re-exec: job %" PRId64 ": pid %d", sl->job_id, (int)sl->pid);
                o = json_pack("{s:I, s:i, s:I, s:i, s:i, s:i, s:i, s:b, s:I, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I,"
                              " s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:o}",
                              "job", (json_int_t)sl->job_id, "pid", (int)sl->pid, "starttime", (json_int_t)start,
                              "pidfd", sl->pidfd, "err", sl->err_r, "state", (int)sl->state, "end", (int)sl->end,
                              "no_retry", sl->no_retry, "owner_uid", (json_int_t)sl->owner_uid, "queue", sl->queue,
                              "argv0", sl->argv0 ? sl->argv0 : "", "priority", sl->priority, "attempts_before",
                              sl->attempts_before, "max_attempts", sl->max_attempts, "queued_seq",
                              (json_int_t)sl->queued_seq, "backoff_ms", (json_int_t)sl->backoff_ms, "timeout_ms",
                              (json_int_t)sl->timeout_ms, "run_at", (json_int_t)sl->run_at, "submitted_at",
                              (json_int_t)sl->submitted_at, "in_cgroup", sl->in_cgroup, "started_wall_ms",
                              (json_int_t)sl->started_wall_ms, "started_mono_us", (json_int_t)sl->started_mono_us,
                              "t_released", (json_int_t)sl->t_released, "t_exec", (json_int_t)sl->t_exec, "due_ms",
                              (json_int_t)(timer_armed(&sl->timer) ? sl->timer.due_ms : 0), "streams",
                              json_pack("[o, o]", stream_json(&sl->st[0]), stream_json(&sl->st[1])));
                if (!o || json_array_append_new(slots, o) < 0)
                        return -ENOMEM;
                r = fd_keep(sl->pidfd);
                r = r ?: fd_keep(sl->err_r);
                for (int k = 0; k < 2 && r == 0; k++) {
                        r = fd_keep(sl->st[k].pipe_r);
                        r = r ?: fd_keep(sl->st[k].file_fd);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static void fd_cloexec(int fd)
{
        if (fd >= 0)
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void workers_handoff_undo(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->state == SLOT_FREE)
                        continue;
                fd_cloexec(sl->pidfd);
                fd_cloexec(sl->err_r);
                for (int k = 0; k < 2; k++) {
                        fd_cloexec(sl->st[k].pipe_r);
                        fd_cloexec(sl->st[k].file_fd);
                }
        }
}

/* ---- the new process ---- */

static int jint(json_t *o, const char *key)
{
        return (int)json_integer_value(json_object_get(o, key));
}

static int64_t jlong(json_t *o, const char *key)
{
        return (int64_t)json_integer_value(json_object_get(o, key));
}

/* Every descriptor the entry names, taken back from exec's reach (or
 * closed, for an entry that is not adopted). */
static void entry_fds(json_t *e, bool close_them)
{
        json_t *streams = json_object_get(e, "streams");
        int fds[6] = { jint(e, "pidfd"), jint(e, "err"), -1, -1, -1, -1 };

        for (int k = 0; k < 2; k++) {
                json_t *st = json_array_get(streams, (size_t)k);
                if (st) {
                        fds[2 + 2 * k] = jint(st, "pipe");
                        fds[3 + 2 * k] = jint(st, "file");
                }
        }
        for (int i = 0; i < 6; i++) {
                if (fds[i] < 3)
                        continue;
                if (close_them)
                        close(fds[i]);
                else
                        fd_cloexec(fds[i]);
        }
}

int workers_verify_handoff(struct server *s, json_t *handoff, int64_t **ret_ids, size_t *ret_n)
{
        json_t *slots = json_object_get(handoff, "slots"), *e;
        size_t i, n = 0;
        int64_t *ids = calloc(json_array_size(slots) + 1, sizeof(*ids));

        (void)s;
        if (!ids)
                return -ENOMEM;
        json_array_foreach(slots, i, e) {
                int64_t id = jlong(e, "job");
                pid_t pid = (pid_t)jint(e, "pid");
                uint64_t start = 0;
                const char *why = NULL;

                /* (No pidfd under valgrind: the start time then says it.) */
                if (jint(e, "pidfd") >= 0 && pidfd_pid(jint(e, "pidfd")) != pid)
                        why = "its pidfd names another process";
                else if (proc_starttime(pid, &start) < 0 || start != (uint64_t)jlong(e, "starttime"))
                        why = "its pid now names a process started at another time";
                else if (environ_names_other_job(pid, id))
                        why = "its process names another job in RINGQ_JOB_ID";
                if (why) {
                        log_error("re-exec: job %" PRId64 " (pid %d) not adopted: %s; it is recovered as interrupted",
                                  id, (int)pid, why);
                        entry_fds(e, true);
                        json_object_set_new(e, "rejected", json_true());
                        continue;
                }
                entry_fds(e, false);
                ids[n++] = id;
        }
        *ret_ids = ids;
        *ret_n = n;
        return 0;
}

static struct slot *free_slot(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++)
                if (s->slots[i].state == SLOT_FREE)
                        return &s->slots[i];
        return NULL;
}

int workers_adopt(struct server *s, json_t *handoff)
{
        json_t *slots = json_object_get(handoff, "slots"), *e;
        unsigned n = 0;
        size_t i;
        int r;

        /* Slots for all of them at once (nothing points into the slot
         * table yet): a smaller `workers` than the old process had only
         * holds new starts back until the count is below it. */
        json_array_foreach(slots, i, e)
                n += !json_is_true(json_object_get(e, "rejected"));
        r = workers_grow(s, n);
        if (r < 0)
                return r;
        json_array_foreach(slots, i, e) {
                json_t *streams = json_object_get(e, "streams");
                const char *queue = json_string_value(json_object_get(e, "queue"));
                struct slot *sl;
                uint32_t q;
                int64_t due;

                if (json_is_true(json_object_get(e, "rejected")))
                        continue;
                sl = free_slot(s);
                r = dispatch_queue_number(s, queue ? queue : "default", &q);
                if (r < 0)
                        return r;
                sl->job_id = jlong(e, "job");
                sl->pid = (pid_t)jint(e, "pid");
                sl->pidfd = jint(e, "pidfd");
                sl->err_r = jint(e, "err");
                sl->state = (enum slot_state)jint(e, "state");
                sl->end = (enum end_reason)jint(e, "end");
                sl->no_retry = json_is_true(json_object_get(e, "no_retry"));
                sl->owner_uid = jlong(e, "owner_uid");
                sl->queue = strdup(queue ? queue : "default");
                sl->argv0 = strdup(json_string_value(json_object_get(e, "argv0")) ?: "");
                if (!sl->queue || !sl->argv0)
                        return -ENOMEM;
                sl->queue_no = q;
                sl->priority = jint(e, "priority");
                sl->attempts_before = jint(e, "attempts_before");
                sl->max_attempts = jint(e, "max_attempts");
                sl->queued_seq = jlong(e, "queued_seq");
                sl->backoff_ms = jlong(e, "backoff_ms");
                sl->timeout_ms = jlong(e, "timeout_ms");
                sl->run_at = jlong(e, "run_at");
                sl->submitted_at = jlong(e, "submitted_at");
                sl->in_cgroup = json_is_true(json_object_get(e, "in_cgroup"));
                sl->started_wall_ms = jlong(e, "started_wall_ms");
                sl->started_mono_us = jlong(e, "started_mono_us");
                sl->t_released = jlong(e, "t_released");
                sl->t_exec = jlong(e, "t_exec");
                sl->released = true;
                for (int k = 0; k < 2; k++) {
                        json_t *j = json_array_get(streams, (size_t)k);
                        struct stream *st = &sl->st[k];
                        st->pipe_r = jint(j, "pipe");
                        st->file_fd = jint(j, "file");
                        st->kept = (uint64_t)jlong(j, "kept");
                        st->eof = json_is_true(json_object_get(j, "eof"));
                        st->truncated = json_is_true(json_object_get(j, "truncated"));
                        st->file_failed = json_is_true(json_object_get(j, "file_failed"));
                        st->open_owed = json_is_true(json_object_get(j, "open_owed"));
                        snprintf(st->name, sizeof(st->name), "%" PRId64 ".%s", sl->job_id, k ? "err" : "out");
                }
                s->busy_slots++;
                dispatch_slot_begin(s, (uid_t)sl->owner_uid, q);
                dispatch_start_committed(s, (uid_t)sl->owner_uid, q);
                due = jlong(e, "due_ms");
                if (due > 0)
                        loop_arm_timer(s, &sl->timer, due);
                worker_rearm(sl);
                s->stats.c[C_ADOPTED]++;
                log_job(LOG_INFO, &(struct log_job){ sl->job_id, sl->owner_uid, sl->queue, "running", NULL },
                        "job %" PRId64 " adopted across a re-exec: pid=%d owner=%" PRId64 " attempt=%d",
                        sl->job_id, (int)sl->pid, sl->owner_uid, sl->attempts_before + 1);
        }
        return 0;
}
