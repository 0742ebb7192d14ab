/* Worker slots: dispatch, spawn, supervision and the end of a job. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "jobargs.h"
#include "login_limits.h"
#include "log.h"
#include "procs.h"
#include "ringq/protocol.h"
#include "users.h"
#include "worker.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define STACK_SIZE (64 * 1024)
#define PIPE_BUF_SIZE (64 * 1024)
#define DRAIN_MS 2000          /* pipes held open by an escaped process */
#define RETRY_SPAWN_MS 1000    /* after EAGAIN/EMFILE/ENOMEM at spawn */
#define DEFAULT_UMASK 022      /* a job submitted without one: a login's usual */

static void slot_timer(struct timer *t);
static void maybe_finish(struct slot *sl);
static void cg_check(struct slot *sl);
static void note_exec(struct slot *sl, int64_t t);

int (*workers_exec_hook)(struct slot *sl, const struct job_rec *j);

static int slots_init(struct server *s, unsigned from);

int workers_init(struct server *s)
{
        spawn_capture_parent();
        s->nslots = (unsigned)s->cfg.workers;
        s->slots = calloc(s->nslots, sizeof(*s->slots));
        if (!s->slots)
                return -ENOMEM;
        return slots_init(s, 0);
}

/* Before anything points into the table (a timer, a store op): the
 * jobs a re-exec hands over may be more than `workers`. */
int workers_grow(struct server *s, unsigned n)
{
        struct slot *v;
        unsigned old = s->nslots;

        if (n <= old)
                return 0;
        if (n > LAUNCHES_MAX)
                return -E2BIG;
        v = realloc(s->slots, n * sizeof(*v));
        if (!v)
                return -ENOMEM;
        memset(v + old, 0, (n - old) * sizeof(*v));
        s->slots = v;
        s->nslots = n;
        return slots_init(s, old);
}

static int slots_init(struct server *s, unsigned from)
{
        for (unsigned i = from; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                sl->srv = s;
                sl->idx = i;
                sl->pidfd = sl->barrier_w = sl->err_r = sl->cg_events = -1;
                sl->cpu_ms = sl->max_rss_kb = -1;
                timer_init(&sl->timer, slot_timer);
                /* A guard page below each child stack turns an overflow
                 * into a crash of the child, not of ringqd's heap. */
                sl->stack = mmap(NULL, STACK_SIZE + 4096, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (sl->stack == MAP_FAILED) {
                        sl->stack = NULL;
                        return -errno;
                }
                (void)mprotect(sl->stack, 4096, PROT_NONE);
                for (int k = 0; k < 2; k++) {
                        sl->st[k].pipe_r = sl->st[k].file_fd = -1;
                        sl->st[k].buf = malloc(PIPE_BUF_SIZE);
                        if (!sl->st[k].buf)
                                return -ENOMEM;
                }
        }
        return 0;
}

static void slot_release_spawn(struct slot *sl)
{
        strv_free(sl->argv);
        strv_free(sl->envp);
        strv_free(sl->paths);
        free(sl->cwd);
        free(sl->groups);
        free(sl->argv0);
        free(sl->queue);
        sl->argv = sl->envp = sl->paths = NULL;
        sl->cwd = sl->argv0 = sl->queue = NULL;
        sl->groups = NULL;
}

static void slot_reset(struct slot *sl)
{
        struct server *s = sl->srv;

        timers_disarm(&s->timers, &sl->timer);
        sl->pidfd = safe_close(sl->pidfd);
        sl->barrier_w = safe_close(sl->barrier_w);
        sl->err_r = safe_close(sl->err_r);
        for (int k = 0; k < 2; k++) {
                struct stream *st = &sl->st[k];
                st->pipe_r = safe_close(st->pipe_r);
                st->file_fd = safe_close(st->file_fd);
                st->kept = st->wlen = st->woff = 0;
                st->eof = st->reading = st->writing = st->opening = st->truncated = false;
                st->file_failed = st->open_owed = false;
        }
        slot_release_spawn(sl);
        /* Its processes are gone: nothing left for recovery to find. */
        launches_clear(&s->launches, sl->idx);
        sl->cg_events = safe_close(sl->cg_events);
        /* Normally removed once it emptied (cg_check); this is for a
         * start that failed or a process that would not die. */
        if (sl->in_cgroup && cgroup_job_remove(&s->cg, sl->job_id) < 0)
                log_warning("job %" PRId64 ": cgroup %s/job-%" PRId64 " still holds processes; left in place",
                            sl->job_id, s->cg.path, sl->job_id);
        sl->in_cgroup = sl->cg_wait = false;
        sl->cpu_ms = sl->max_rss_kb = -1;
        if (sl->state != SLOT_FREE) {
                s->busy_slots--;
                dispatch_slot_end(s, (uid_t)sl->owner_uid, sl->queue_no);
        }
        sl->state = SLOT_FREE;
        sl->gen = (sl->gen + 1) & 0xffffff;
        sl->start_pending = sl->start_failed = sl->released = sl->no_retry = sl->awaiting_submit = false;
        sl->orphan_wait = false;
        free(sl->start_op);
        sl->start_op = NULL;
        sl->end = END_NONE;
        sl->exit_code = -1;
        sl->signal = sl->spawn_errno = 0;
        sl->ring_ops = 0;
        sl->pidfd_armed = sl->exec_armed = false;
        sl->t_pick = sl->t_cloned = sl->t_released = sl->t_exec = sl->t_exit = sl->turnover_from = 0;
}

void workers_done(struct server *s)
{
        if (!s->slots)
                return;
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                slot_reset(sl);
                if (sl->stack)
                        munmap(sl->stack, STACK_SIZE + 4096);
                for (int k = 0; k < 2; k++)
                        free(sl->st[k].buf);
        }
        free(s->slots);
        s->slots = NULL;
}

bool workers_free(struct server *s)
{
        return s->busy_slots < MIN(s->nslots, (unsigned)s->cfg.workers);
}

/* ---- ring ops on a slot ---- */

/* While a re-exec parks the slots (reexec.h), nothing new is read:
 * what the jobs write waits in their pipes for the next process. */
static bool parked(struct slot *sl)
{
        return sl->srv->rx.phase == RX_PARK;
}

static void arm_pidfd(struct slot *sl)
{
        struct io_uring_sqe *sqe;

        if (parked(sl) || sl->pidfd_armed)
                return;
        sqe = get_sqe(sl->srv);
        io_uring_prep_poll_add(sqe, sl->pidfd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_PIDFD, sl->idx, sl->gen));
        sl->pidfd_armed = true;
        sl->ring_ops++;
}

static void arm_read(struct slot *sl, int k)
{
        struct stream *st = &sl->st[k];
        struct io_uring_sqe *sqe;

        if (st->eof || st->reading || st->writing || st->opening || st->pipe_r < 0 || parked(sl))
                return;
        sqe = get_sqe(sl->srv);
        io_uring_prep_read(sqe, st->pipe_r, st->buf, PIPE_BUF_SIZE, (uint64_t)-1);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_PIPE_READ, sl->idx * 2 + (unsigned)k, sl->gen));
        st->reading = true;
        sl->ring_ops++;
}

static void arm_write(struct slot *sl, int k)
{
        struct stream *st = &sl->st[k];
        struct io_uring_sqe *sqe = get_sqe(sl->srv);

        io_uring_prep_write(sqe, st->file_fd, st->buf + st->woff, (unsigned)(st->wlen - st->woff),
                            st->kept - (st->wlen - st->woff));
        io_uring_sqe_set_data64(sqe, ud_pack(UD_FILE_WRITE, sl->idx * 2 + (unsigned)k, sl->gen));
        st->writing = true;
        sl->ring_ops++;
}

/* The output files are ringqd's own (0600, in a directory only ringqd
 * can open): the job writes through a pipe, and its owner reads through a
 * descriptor ringqd passes (op output), so nobody can grow, chmod or
 * replace what is recorded, and a listing shows nothing of anyone. */
static void arm_open(struct slot *sl, int k)
{
        struct stream *st = &sl->st[k];
        struct io_uring_sqe *sqe = get_sqe(sl->srv);

        io_uring_prep_openat(sqe, sl->srv->output_dirfd, st->name,
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_FILE_OPEN, sl->idx * 2 + (unsigned)k, sl->gen));
        st->opening = true;
        st->open_owed = false;
        sl->ring_ops++;
}

static void arm_exec(struct slot *sl)
{
        struct io_uring_sqe *sqe;

        if (parked(sl) || sl->exec_armed || sl->err_r < 0)
                return;
        sqe = get_sqe(sl->srv);
        io_uring_prep_poll_add(sqe, sl->err_r, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_EXEC, sl->idx, sl->gen));
        sl->exec_armed = true;
        sl->ring_ops++;
}

static struct slot *slot_from(struct server *s, uint64_t ud, int *ret_k)
{
        uint32_t i = ud_slot(ud);
        struct slot *sl;

        if (ret_k) {
                *ret_k = (int)(i & 1);
                i /= 2;
        }
        if (i >= s->nslots)
                return NULL;
        sl = &s->slots[i];
        return sl->state != SLOT_FREE && sl->gen == ud_gen(ud) ? sl : NULL;
}

/* ---- launching ---- */

/* On a failed launch, what the slot was given for the child goes. */
static void release_spawnp(struct slot **sl)
{
        if (*sl)
                slot_release_spawn(*sl);
}

/* Let the child exec, once its launch record holds its pid. */
static void release(struct slot *sl)
{
        struct server *s = sl->srv;

        if (write(sl->barrier_w, "g", 1) != 1) {
                /* Closing the barrier ends the child unrun; its end is
                 * recorded as an interruption. */
                log_error_errno(-errno, "job %" PRId64 ": cannot release it", sl->job_id);
                sl->end = END_INTERRUPTED;
        }
        sl->barrier_w = safe_close(sl->barrier_w);
        sl->released = sl->end == END_NONE;
        if (!sl->released)
                return;
        sl->state = SLOT_RUNNING;
        sl->t_released = sl->started_mono_us = now_mono_us();
        arm_exec(sl);
        /* The timers count whole milliseconds: the start rounded up, so
         * that a job is never stopped before its timeout has passed. */
        loop_arm_timer(s, &sl->timer, (sl->started_mono_us + 999) / 1000 + sl->timeout_ms);
}

/* Job j (its id in j->id) into the free slot sl, up to the barrier: the
 * child exists and waits there. fresh: its first time in a slot, so no
 * earlier attempt left output to replace. *push, if set, goes to the
 * store first (and *push is cleared), so that its commit runs while the
 * job's process is prepared and made; j, which it may own, is read until
 * the clone, and the op comes back to the loop no sooner than its next
 * turn. On failure the slot is free as it was (and *push still sent). */
static int slot_spawn(struct server *s, struct slot *sl, const struct job_rec *j, const json_t *env,
                      uint32_t queue, bool fresh, struct store_op **push)
{
        /* Every fd and buffer below is freed on every way out unless
         * handed to the slot (TAKE_FD, TAKE_PTR) once the child exists. */
        _cleanup_(release_spawnp) struct slot *undo = sl;
        _cleanup_pair_ int out[2] = { -1, -1 }, err[2] = { -1, -1 }, bar[2] = { -1, -1 }, ep[2] = { -1, -1 };
        _cleanup_close_ int cg_procs = -1;
        _cleanup_free_ char *path = NULL;
        const struct user_info *u;
        int64_t id = j->id;
        uid_t run_uid;
        gid_t run_gid;
        int r = 0;

        if (push && *push) {
                /* Handed over first, not at the end of this turn: the
                 * commit is what the child will wait for, and it runs
                 * while the argv, environment and child are made. The
                 * store thread only reads the job's fields, as this
                 * does; what it writes of the op, this never reads. */
                store_push(s->store, *push);
                store_flush(s->store);
                *push = NULL;
        }
        /* Root runs a job with the uid, gid and groups its submitter's
         * connection had; anyone else runs it as itself (it accepted only
         * its own uid and root). */
        run_uid = s->uid == 0 ? (uid_t)j->owner_uid : s->uid;
        run_gid = s->uid == 0 ? (gid_t)j->owner_gid : getgid();
        u = users_lookup(run_uid, run_gid);
        if (!u)
                return -ENOMEM;
        sl->args = (struct spawn_args){
                .set_creds = s->uid == 0 && run_uid != 0,
                .uid = run_uid,
                .gid = run_gid,
                .fd_in = s->devnull_fd,
                .parent = getpid(),
                .cgroup_procs = -1,
                .subreaper = !cgroup_enabled(&s->cg),
                .umask = j->umask >= 0 ? (unsigned)j->umask : DEFAULT_UMASK,
        };
        {
                struct job_limits lim;
                (void)limits_for(run_uid, run_gid, u->name, &lim);
                memcpy(sl->args.rl, lim.rl, sizeof(sl->args.rl));
                sl->args.nice = lim.nice;
                spawn_inherit(&sl->args);
        }
        if (sl->args.set_creds) {
                size_t n = (size_t)u->ngroups;
                /* A job of schema 1 recorded no groups: its owner's. */
                if (j->owner_groups)
                        r = jobargs_groups(j->owner_groups, &sl->groups, &n);
                else if ((sl->groups = malloc(n * sizeof(gid_t))))
                        memcpy(sl->groups, u->groups, n * sizeof(gid_t));
                if (r < 0 || !sl->groups)
                        return r < 0 ? r : -ENOMEM;
                sl->args.groups = sl->groups;
                sl->args.ngroups = n;
        }
        sl->argv = jobargs_argv(j->argv);
        sl->envp = sl->argv ? jobargs_env(j, env, u, j->attempts + 1, &path) : NULL;
        sl->paths = sl->envp ? jobargs_paths(sl->argv[0], path) : NULL;
        sl->cwd = strdup(j->cwd ? j->cwd : "/");
        sl->argv0 = sl->argv ? strdup(sl->argv[0]) : NULL;
        sl->queue = strdup(j->queue ? j->queue : "default");
        if (!sl->paths || !sl->cwd || !sl->argv0 || !sl->queue)
                return -ENOMEM;
        if (workers_exec_hook) {
                r = workers_exec_hook(sl, j);
                if (r < 0)
                        return r;
        }
        sl->args.argv = sl->argv;
        sl->args.envp = sl->envp;
        sl->args.paths = sl->paths;
        sl->args.cwd = sl->cwd;

        for (int k = 0; k < 2; k++) {
                struct stream *st = &sl->st[k];
                struct stat sb;
                snprintf(st->name, sizeof(st->name), "%" PRId64 ".%s", id, k ? "err" : "out");
                /* A cached lookup, no journal: cheap enough for the loop. */
                st->open_owed = !fresh && fstatat(s->output_dirfd, st->name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
        }
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(bar, O_CLOEXEC) < 0 ||
            pipe2(ep, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        sl->args.fd_out = out[1];
        sl->args.fd_err = err[1];
        sl->args.barrier_r = bar[0];
        sl->args.barrier_w = bar[1];
        sl->args.err_w = ep[1];
        if (cgroup_enabled(&s->cg)) {
                r = cgroup_job_create(&s->cg, id, &cg_procs);
                if (r < 0)
                        return log_error_errno(r, "job %" PRId64 ": cannot make its cgroup in %s", id, s->cg.path);
                sl->args.cgroup_procs = cg_procs;
        }
        sl->job_id = id;
        sl->owner_uid = j->owner_uid;
        sl->queue_no = queue;
        sl->priority = j->priority;
        sl->attempts_before = j->attempts;
        sl->queued_seq = j->queued_seq;
        sl->max_attempts = j->max_attempts;
        sl->backoff_ms = j->backoff_ms;
        sl->timeout_ms = j->timeout_ms > 0 ? j->timeout_ms : s->cfg.default_timeout_ms;
        sl->run_at = j->run_at;
        sl->submitted_at = j->submitted_at;
        sl->exit_code = -1;

        r = spawn_clone(&sl->args, (char *)sl->stack + 4096, STACK_SIZE, &sl->pid, &sl->pidfd);
        if (r < 0) {
                if (cg_procs >= 0)
                        (void)cgroup_job_remove(&s->cg, id);
                return r;
        }
        /* The child has its copies; the slot keeps the parent's ends. */
        TAKE_PTR(undo);
        sl->in_cgroup = cg_procs >= 0;
        sl->barrier_w = TAKE_FD(bar[1]);
        sl->err_r = TAKE_FD(ep[0]);
        sl->st[0].pipe_r = TAKE_FD(out[0]);
        sl->st[1].pipe_r = TAKE_FD(err[0]);
        latency_add(&s->stats.path[P_LAUNCH], now_mono_us() - sl->t_pick);
        sl->t_cloned = now_mono_us();
        /* Started at once in the slot a job's end freed: the time from
         * that exit to this exec is what the slot stood idle. */
        sl->turnover_from = s->turnover_exit_us;
        s->turnover_exit_us = 0;

        sl->state = SLOT_STARTING;
        s->busy_slots++;
        dispatch_slot_begin(s, (uid_t)sl->owner_uid, queue);
        return 0;
}

/* A spawned job may exec: its pid where a crash of ringqd cannot lose it
 * (launches.h), then the barrier opens, and its start (op) goes to the
 * store, committed behind the exec. */
static void slot_go(struct server *s, struct slot *sl, struct store_op *op)
{
        op->kind = SOP_START;
        op->id = sl->job_id;
        op->owner = sl;
        op->owner_gen = sl->gen;
        op->start.pid = sl->pid;
        op->start.started_at = now_wall_ms();
        op->start.attempts_before = sl->attempts_before;
        op->start.queued_seq = sl->queued_seq;
        op->enqueued_us = now_mono_us();
        sl->start_pending = true;

        launches_set(&s->launches, sl->idx, sl->job_id, sl->queued_seq, op->start.started_at, sl->pid);
        release(sl);
        store_push(s->store, op);
}

/* Its exit and its output on the ring (without a pidfd, see
 * spawn_clone, SIGCHLD tells of the exit). */
static void slot_watch(struct slot *sl)
{
        if (sl->pidfd >= 0)
                arm_pidfd(sl);
        arm_read(sl, 0);
        arm_read(sl, 1);
}

/* Start job id, picked from the index, in the free slot sl. Returns 0,
 * -ESTALE when the index entry was stale (the job is no longer queued, or
 * has entered the queue again since: its queued_seq moved on), or a
 * negative errno when it could not start now (the caller puts it back). */
static int slot_launch(struct server *s, struct slot *sl, int64_t id, uint32_t queue, unsigned tag,
                       unsigned tag_mask)
{
        _cleanup_(job_rec_donep) struct job_rec j = { 0 };
        _cleanup_free_ struct store_op *op = NULL;
        int r;

        sl->t_pick = now_mono_us();
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        r = reader_get_row(s->reader, id, &j);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (j.state != RINGQ_STATE_QUEUED || ((unsigned)j.queued_seq & tag_mask) != tag)
                return -ESTALE;
        r = slot_spawn(s, sl, &j, NULL, queue, false, NULL);
        if (r < 0)
                return r;
        slot_go(s, sl, TAKE_PTR(op));
        slot_watch(sl);
        return 0;
}

static struct slot *free_slot(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++)
                if (s->slots[i].state == SLOT_FREE)
                        return &s->slots[i];
        return NULL;
}

int workers_start_submitted(struct server *s, struct store_op *submit, const json_t *env, uint32_t queue)
{
        struct store_op *start = NULL;
        struct slot *sl = free_slot(s);
        int r = -EBUSY;

        if (sl) {
                sl->t_pick = now_mono_us();
                /* Its start's op now: nothing may fail once the commit
                 * is back. */
                start = calloc(1, sizeof(*start));
                r = start ? slot_spawn(s, sl, &submit->submit.rec, env, queue, true, &submit) : -ENOMEM;
        }
        if (submit)
                store_push(s->store, submit);
        if (r < 0) {
                free(start);
                return r;
        }
        sl->start_op = start;
        sl->start_pending = true;
        sl->awaiting_submit = true;
        slot_watch(sl);
        return 0;
}

bool workers_submit_done(struct server *s, int64_t id, bool committed)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                struct store_op *op;
                if (sl->state == SLOT_FREE || !sl->awaiting_submit || sl->job_id != id)
                        continue;
                sl->awaiting_submit = sl->start_pending = false;
                op = TAKE_PTR(sl->start_op);
                latency_add(&s->stats.path[P_SUBMIT_COMMIT], now_mono_us() - sl->t_cloned);
                /* Nothing new starts while ringqd drains or re-execs
                 * (dispatch_run), this job no more than one picked. */
                if (committed && sl->end == END_NONE && !s->draining && s->rx.phase == RX_NONE) {
                        slot_go(s, sl, op);
                        return true;
                }
                /* Refused, or ringqd began to stop or re-exec while the
                 * commit was on its way: the child ends at the barrier,
                 * unrun, and nothing of this slot is recorded. A
                 * committed job stays queued (the caller enqueues it). */
                free(op);
                sl->start_failed = true;
                sl->barrier_w = safe_close(sl->barrier_w);
                maybe_finish(sl);
                return false;
        }
        return false;
}

int workers_start(struct server *s, const struct qpick *p, unsigned tag_mask)
{
        struct slot *sl = free_slot(s);

        return sl ? slot_launch(s, sl, p->id, p->queue, p->tag, tag_mask) : -EBUSY;
}

/* ---- signals to a job ---- */

static void signal_job(struct slot *sl, int sig)
{
        if (!sl->released) {
                /* Still at the barrier: closing it ends the child before
                 * it runs anything. */
                sl->barrier_w = safe_close(sl->barrier_w);
                return;
        }
        if (sl->state == SLOT_REAPED)
                return;
        /* The group's id is the main pid; it cannot be reused while the
         * main process is not reaped, so this never hits a stranger. */
        if (kill(-sl->pid, sig) < 0 && errno == ESRCH)
                (void)kill(sl->pid, sig);
        /* And whatever left the group or the session: all of the cgroup,
         * or all below the main process, which is their subreaper. */
        if (sl->in_cgroup)
                (void)cgroup_job_signal(&sl->srv->cg, sl->job_id, sig);
        else
                (void)procs_signal_tree(sl->pid, sig);
}

static void begin_stop(struct slot *sl, enum end_reason why)
{
        struct server *s = sl->srv;

        if (sl->state == SLOT_REAPED) {
                /* Its process has exited: a success or a last failure
                 * stands, but a cancel still means no attempt after it. */
                if (why == END_CANCELED)
                        sl->no_retry = true;
                return;
        }
        /* A cancel is the last word: a job canceled while it is being
         * stopped for its timeout (or a shutdown) ends canceled and is
         * not tried again. */
        if (sl->end == END_NONE || why == END_CANCELED)
                sl->end = why;
        if (!sl->released)
                return; /* at the barrier still: it ends there, unrun */
        if (sl->state == SLOT_RUNNING) {
                signal_job(sl, SIGTERM);
                sl->state = SLOT_STOPPING;
                loop_arm_timer(s, &sl->timer, now_mono_ms() + s->cfg.kill_grace_ms);
        }
}

static void slot_timer(struct timer *t)
{
        struct slot *sl = container_of(t, struct slot, timer);
        struct server *s = sl->srv;

        if (sl->state == SLOT_REAPED) {
                /* Drain deadline: something outside the process group
                 * still holds the pipes; stop reading them. */
                for (int k = 0; k < 2; k++) {
                        struct stream *st = &sl->st[k];
                        if (st->reading) {
                                struct io_uring_sqe *sqe = get_sqe(s);
                                io_uring_prep_cancel64(sqe, ud_pack(UD_PIPE_READ, sl->idx * 2 + (unsigned)k, sl->gen), 0);
                                io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
                        } else
                                st->eof = true;
                }
                if (sl->cg_wait) {
                        /* A process stuck in the kernel: record the end
                         * with what is known; its cgroup stays, and a
                         * later attempt or start-up removes it. */
                        struct io_uring_sqe *sqe = get_sqe(s);
                        io_uring_prep_cancel64(sqe, ud_pack(UD_CGROUP, sl->idx, sl->gen), 0);
                        io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
                        log_warning("job %" PRId64 ": processes in its cgroup still alive %dms after SIGKILL",
                                    sl->job_id, DRAIN_MS);
                        sl->cg_wait = false;
                }
                if (sl->orphan_wait) {
                        log_warning("job %" PRId64 ": processes it left still alive %dms after SIGKILL", sl->job_id,
                                    DRAIN_MS);
                        sl->orphan_wait = false;
                }
                maybe_finish(sl);
                return;
        }
        switch (sl->state) {
        case SLOT_RUNNING:
                log_notice("job %" PRId64 ": timed out after %" PRId64 "ms, stopping it", sl->job_id, sl->timeout_ms);
                begin_stop(sl, END_TIMEOUT);
                break;
        case SLOT_STOPPING:
                log_warning("job %" PRId64 ": still running %" PRId64 "ms after SIGTERM, sending SIGKILL", sl->job_id,
                         s->cfg.kill_grace_ms);
                signal_job(sl, SIGKILL);
                s->stats.c[C_KILLED]++;
                sl->state = SLOT_KILLED;
                break;
        default:
                break;
        }
}

int workers_cancel(struct server *s, int64_t id, uid_t uid)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                /* A start not yet committed may yet be refused (the job
                 * was canceled or retried by an op ahead of it): such a
                 * cancel goes through the store, in order after the
                 * start, and finds the job as that left it. */
                if (sl->state == SLOT_FREE || sl->job_id != id || sl->start_failed || sl->start_pending)
                        continue;
                if (uid != 0 && (int64_t)uid != sl->owner_uid)
                        return -EPERM;
                begin_stop(sl, END_CANCELED);
                return 0;
        }
        return -ENOENT;
}

void workers_stop_all(struct server *s, bool hard)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->state == SLOT_FREE || sl->state == SLOT_REAPED)
                        continue;
                begin_stop(sl, END_INTERRUPTED);
                if (hard && sl->state == SLOT_STOPPING && sl->released) {
                        signal_job(sl, SIGKILL);
                        sl->state = SLOT_KILLED;
                }
        }
}

/* ---- completions ---- */

/* Reap the job's main process if it has exited; false if it still runs.
 * Its pid, and so its process group id, stay ours until the reap: what is
 * left of the group is killed first, so that id cannot have been reused. */
static bool slot_try_reap(struct slot *sl)
{
        struct server *s = sl->srv;
        idtype_t type = sl->pidfd >= 0 ? (idtype_t)P_PIDFD : P_PID;
        id_t id = sl->pidfd >= 0 ? (id_t)sl->pidfd : (id_t)sl->pid;
        siginfo_t si = { 0 };
        struct rusage ru = { 0 };
        int e = 0;

        if (syscall(SYS_waitid, type, id, &si, WEXITED | WNOHANG | WNOWAIT, NULL) == 0 && si.si_pid == 0)
                return false;
        /* A job owns its processes: none outlives its main one. */
        if (sl->released)
                (void)kill(-sl->pid, SIGKILL);
        if (sl->in_cgroup)
                (void)cgroup_job_signal(&s->cg, sl->job_id, SIGKILL);
        memset(&si, 0, sizeof(si));
        if (syscall(SYS_waitid, type, id, &si, WEXITED | WNOHANG, &ru) < 0)
                log_warning_errno(-errno, "job %" PRId64 ": waitid", sl->job_id);
        sl->state = SLOT_REAPED;
        sl->t_exit = now_mono_us();
        if (read(sl->err_r, &e, sizeof(e)) == sizeof(e) && e > 0)
                sl->spawn_errno = e;
        /* The exit may be seen before the exec's own completion (both in
         * one turn, or SIGCHLD first where there is no pidfd): a released
         * job that did not fail to spawn exec'd no later than now. */
        if (sl->released && !sl->spawn_errno && !sl->t_exec)
                note_exec(sl, sl->t_exit);
        if (sl->t_exec)
                latency_add(&s->stats.path[P_RUN], sl->t_exit - sl->t_exec);
        /* The main process's own use and that of every descendant it
         * waited for; a cgroup's count (cg_check) includes the rest. */
        sl->cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                     (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
        sl->max_rss_kb = ru.ru_maxrss;
        if (!sl->in_cgroup)
                sl->orphan_wait = workers_sweep_orphans(s) > 0;
        sl->pidfd = safe_close(sl->pidfd);
        sl->barrier_w = safe_close(sl->barrier_w);
        if (si.si_code == CLD_EXITED)
                sl->exit_code = si.si_status;
        else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
                sl->signal = si.si_status;
        sl->err_r = safe_close(sl->err_r);
        loop_arm_timer(sl->srv, &sl->timer, now_mono_ms() + DRAIN_MS);
        if (sl->in_cgroup) {
                sl->cg_wait = true;
                cg_check(sl);
        }
        maybe_finish(sl);
        return true;
}

void worker_on_pidfd(struct server *s, struct io_uring_cqe *cqe)
{
        struct slot *sl = slot_from(s, cqe->user_data, NULL);

        if (!sl)
                return;
        sl->ring_ops--;
        sl->pidfd_armed = false;
        /* Parked: the next process reaps it, with its real status. */
        if (parked(sl))
                return;
        if (!slot_try_reap(sl))
                arm_pidfd(sl); /* woken before the exit was complete */
}

static bool keep_child(void *ud, pid_t pid);

/* Is there a zombie to reap that is not a job's main process (whose
 * pidfd tells of it) nor the limits helper? One waitid, where a sweep
 * reads /proc: every job's end makes a SIGCHLD, and almost never an
 * orphan. A stray hidden behind a job's zombie is swept at that job's
 * reap. */
static bool stray_zombie(struct server *s)
{
        siginfo_t si = { 0 };

        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                return false;
        return !keep_child(s, si.si_pid);
}

/* An end that waits for the processes its job left: released once none
 * of them is alive (each one's death brings a SIGCHLD here). */
static void orphans_gone(struct server *s)
{
        bool waiting = false;

        for (unsigned i = 0; i < s->nslots; i++)
                waiting = waiting || s->slots[i].orphan_wait;
        /* Killed once already: only reaped and counted here. */
        if (!waiting || procs_sweep(keep_child, s, false) > 0)
                return;
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->orphan_wait) {
                        sl->orphan_wait = false;
                        maybe_finish(sl);
                }
        }
}

void workers_on_sigchld(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->state != SLOT_FREE && sl->state != SLOT_REAPED && sl->pidfd < 0)
                        (void)slot_try_reap(sl);
        }
        if (!cgroup_enabled(&s->cg) && stray_zombie(s))
                workers_sweep_orphans(s);
        orphans_gone(s);
}

/* ringqd's children that procs_sweep must leave alone: the main process
 * of every job not yet reaped, and the limits helper. */
static bool keep_child(void *ud, pid_t pid)
{
        struct server *s = ud;

        if (pid == limits_helper_pid())
                return true;
        for (unsigned i = 0; i < s->nslots; i++)
                if (s->slots[i].state != SLOT_FREE && s->slots[i].state != SLOT_REAPED && s->slots[i].pid == pid)
                        return true;
        return false;
}

int workers_sweep_orphans(struct server *s)
{
        int n = procs_sweep(keep_child, s, true);

        if (n > 0) {
                s->stats.c[C_ORPHANS_KILLED] += (uint64_t)n;
                log_info("killed %d process(es) left behind by ended jobs", n);
        }
        return n;
}

/* Has the last process left the job's cgroup? Then record what they
 * used and remove it; else wait for cgroup.events to say so. The events
 * file is read through the fd that is polled, so a change between the
 * read and the poll still wakes it. */
static void cg_check(struct slot *sl)
{
        struct server *s = sl->srv;
        struct io_uring_sqe *sqe;
        uint64_t usec;
        int r;

        if (!sl->cg_wait)
                return;
        if (sl->cg_events < 0)
                sl->cg_events = cgroup_job_events_fd(&s->cg, sl->job_id);
        r = sl->cg_events >= 0 ? cgroup_events_populated(sl->cg_events) : sl->cg_events;
        if (r == 1) {
                sqe = get_sqe(s);
                io_uring_prep_poll_add(sqe, sl->cg_events, POLLPRI);
                io_uring_sqe_set_data64(sqe, ud_pack(UD_CGROUP, sl->idx, sl->gen));
                sl->ring_ops++;
                return;
        }
        if (r < 0)
                log_warning_errno(r, "job %" PRId64 ": cgroup %s/job-%" PRId64, sl->job_id, s->cg.path, sl->job_id);
        if (cgroup_job_cpu_usec(&s->cg, sl->job_id, &usec) == 0)
                sl->cpu_ms = (int64_t)(usec / 1000);
        sl->cg_events = safe_close(sl->cg_events);
        if (cgroup_job_remove(&s->cg, sl->job_id) == 0)
                sl->in_cgroup = false;
        sl->cg_wait = false;
}

void worker_on_cgroup(struct server *s, struct io_uring_cqe *cqe)
{
        struct slot *sl = slot_from(s, cqe->user_data, NULL);

        if (!sl)
                return;
        sl->ring_ops--;
        cg_check(sl);
        maybe_finish(sl);
}

void worker_on_pipe_read(struct server *s, struct io_uring_cqe *cqe)
{
        int k;
        struct slot *sl = slot_from(s, cqe->user_data, &k);
        struct stream *st;
        uint64_t room;
        size_t n;

        if (!sl)
                return;
        st = &sl->st[k];
        sl->ring_ops--;
        st->reading = false;
        /* Taken off the ring for a re-exec: not an end of the stream. */
        if (cqe->res == -ECANCELED && parked(sl))
                return;
        if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
                arm_read(sl, k);
                return;
        }
        if (cqe->res <= 0) {
                st->eof = true;
                st->pipe_r = safe_close(st->pipe_r);
                maybe_finish(sl);
                return;
        }
        n = (size_t)cqe->res;
        mem_defined(st->buf, n);
        room = s->cfg.max_output_bytes > st->kept ? s->cfg.max_output_bytes - st->kept : 0;
        if (n > room) {
                /* Keep draining so the job never blocks on a full pipe,
                 * but keep no more than max_output_bytes. */
                if (!st->truncated)
                        s->stats.c[C_OUTPUT_TRUNCATED]++;
                st->truncated = true;
                n = (size_t)room;
        }
        /* A job whose start was refused keeps no more output. */
        if (n && !st->file_failed && !sl->start_failed) {
                st->kept += n;
                st->woff = 0;
                st->wlen = n;
                if (st->file_fd >= 0)
                        arm_write(sl, k);
                else if (!st->opening)
                        arm_open(sl, k);
                return;
        }
        arm_read(sl, k);
}

void worker_on_file_open(struct server *s, struct io_uring_cqe *cqe)
{
        int k;
        struct slot *sl = slot_from(s, cqe->user_data, &k);
        struct stream *st;

        if (!sl) {
                if (cqe->res >= 0)
                        close(cqe->res); /* cannot happen: a slot waits for its ops */
                return;
        }
        st = &sl->st[k];
        sl->ring_ops--;
        st->opening = false;
        if (cqe->res < 0) {
                /* Disk full, or similar: the job runs on, its output on
                 * this stream is lost, and the log says so. */
                log_warning_errno(cqe->res, "job %" PRId64 ": cannot create %s/%s", sl->job_id, s->output_dir, st->name);
                st->file_failed = st->truncated = true;
                st->kept -= st->wlen - st->woff;
                st->wlen = st->woff = 0;
        } else {
                st->file_fd = cqe->res;
                if (st->woff < st->wlen) {
                        arm_write(sl, k);
                        return;
                }
        }
        arm_read(sl, k);
        maybe_finish(sl);
}

/* The job exec'd (its error pipe closed): the exec and slot-idle steps,
 * once per job. */
static void note_exec(struct slot *sl, int64_t t)
{
        struct server *s = sl->srv;

        sl->t_exec = t;
        latency_add(&s->stats.path[P_EXEC], sl->t_exec - sl->t_released);
        if (sl->turnover_from)
                latency_add(&s->stats.path[P_SLOT_IDLE], sl->t_exec - sl->turnover_from);
}

void worker_on_exec(struct server *s, struct io_uring_cqe *cqe)
{
        struct slot *sl = slot_from(s, cqe->user_data, NULL);

        if (!sl)
                return;
        sl->ring_ops--;
        sl->exec_armed = false;
        if (cqe->res == -ECANCELED)
                return; /* parked for a re-exec; the next process asks again */
        if (!sl->t_exec)
                note_exec(sl, now_mono_us());
        maybe_finish(sl);
}

void worker_on_file_write(struct server *s, struct io_uring_cqe *cqe)
{
        int k;
        struct slot *sl = slot_from(s, cqe->user_data, &k);
        struct stream *st;

        if (!sl)
                return;
        st = &sl->st[k];
        sl->ring_ops--;
        st->writing = false;
        if (cqe->res < 0) {
                /* Disk full or similar: the job keeps running, its output
                 * is lost from here on, and the log says so. */
                log_warning_errno(cqe->res, "job %" PRId64 ": writing its %s", sl->job_id, k ? "stderr" : "stdout");
                st->file_fd = safe_close(st->file_fd);
                st->truncated = st->file_failed = true;
        } else {
                st->woff += (size_t)cqe->res;
                if (st->woff < st->wlen && cqe->res > 0) {
                        arm_write(sl, k);
                        return;
                }
        }
        arm_read(sl, k);
        maybe_finish(sl);
}

static int64_t backoff_ms(struct slot *sl, int attempt)
{
        static uint64_t rnd;
        double ms = (double)sl->backoff_ms;
        uint64_t x;

        for (int i = 1; i < attempt && ms < RINGQ_BACKOFF_CAP_MS; i++)
                ms *= 2;
        ms = MIN(ms, (double)RINGQ_BACKOFF_CAP_MS);
        /* +-20% jitter, so jobs that failed together do not retry in
         * lockstep. xorshift is plenty for that. */
        if (!rnd)
                rnd = (uint64_t)now_mono_us() | 1;
        x = rnd;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rnd = x;
        /* The cap holds after the jitter: "at most 1 h" means that. */
        ms *= 0.8 + 0.4 * (double)(x % 10001) / 10000.0;
        return (int64_t)MIN(ms, (double)RINGQ_BACKOFF_CAP_MS);
}

static void maybe_finish(struct slot *sl)
{
        struct server *s = sl->srv;
        struct store_op *op;
        int attempt = sl->attempts_before + 1;
        struct interruption how;
        bool interrupted = false, refund = false;
        char reason[128];
        int state;

        if (sl->state != SLOT_REAPED || sl->start_pending || sl->cg_wait || sl->orphan_wait || !sl->st[0].eof ||
            !sl->st[1].eof)
                return;
        /* An attempt that wrote nothing still replaces what an earlier
         * one left: its output is empty, not the last one's. */
        for (int k = 0; k < 2 && sl->released && !sl->start_failed; k++)
                if (sl->st[k].open_owed && !sl->st[k].opening && !sl->st[k].file_failed && sl->st[k].file_fd < 0)
                        arm_open(sl, k);
        if (sl->ring_ops)
                return;
        if (sl->start_failed) {
                slot_reset(sl);
                dispatch_run(s);
                return;
        }
        if (sl->end == END_CANCELED) {
                state = RINGQ_STATE_CANCELED;
                snprintf(reason, sizeof(reason), "canceled");
        } else if (sl->spawn_errno) {
                state = RINGQ_STATE_FAILED;
                snprintf(reason, sizeof(reason), "spawn: %s", strerror(sl->spawn_errno));
                sl->exit_code = -1;
        } else if (sl->end == END_INTERRUPTED) {
                /* ringqd's doing, not the job's: within max_interruptions
                 * the attempt is given back. The count so far is the
                 * row's as committed; nothing but this run changes it. */
                struct job_rec j;
                int e = reader_get_row(s->reader, sl->job_id, &j);
                state = RINGQ_STATE_FAILED;
                interrupted = true;
                if (e == 0) {
                        job_interruption(attempt, sl->max_attempts, j.interruptions, s->cfg.max_interruptions, &how);
                        job_rec_done(&j);
                } else {
                        log_warning_errno(e, "job %" PRId64 ": cannot read how often it was interrupted; "
                                          "this interruption spends its attempt", sl->job_id);
                        job_interruption(attempt, sl->max_attempts, 0, 0, &how);
                }
                refund = how.refunded;
                snprintf(reason, sizeof(reason), "%s", how.reason);
        } else if (sl->end == END_TIMEOUT) {
                state = RINGQ_STATE_FAILED;
                snprintf(reason, sizeof(reason), "timeout");
        } else if (sl->exit_code >= 0) {
                state = sl->exit_code == 0 ? RINGQ_STATE_SUCCEEDED : RINGQ_STATE_FAILED;
                snprintf(reason, sizeof(reason), "exit %d", sl->exit_code);
        } else {
                state = RINGQ_STATE_FAILED;
                snprintf(reason, sizeof(reason), "signal %d", sl->signal);
        }
        /* Canceled after its process exited: the retry this attempt would
         * get is what the cancel stops, so the job ends canceled. */
        if (sl->no_retry && state == RINGQ_STATE_FAILED && (attempt < sl->max_attempts || refund)) {
                state = RINGQ_STATE_CANCELED;
                refund = false;
                snprintf(reason, sizeof(reason), "canceled");
        }
        /* Output truncation is part of why the record looks as it does. */
        if (sl->st[0].truncated || sl->st[1].truncated)
                snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason), "; %s%s%s truncated",
                         sl->st[0].truncated ? "stdout" : "", sl->st[0].truncated && sl->st[1].truncated ? " and " : "",
                         sl->st[1].truncated ? "stderr" : "");

        op = calloc(1, sizeof(*op));
        if (op)
                op->finish.reason = strdup(reason);
        if (!op || !op->finish.reason) {
                /* The row stays 'running' and the next start recovers it
                 * as interrupted: nothing is lost, only delayed. */
                log_error("job %" PRId64 ": out of memory recording its end", sl->job_id);
                if (op)
                        free(op);
                slot_reset(sl);
                return;
        }
        op->kind = SOP_FINISH;
        op->id = sl->job_id;
        op->finish.state = state;
        op->finish.end = sl->spawn_errno ? END_NONE : sl->end;
        op->finish.exit_code = sl->spawn_errno ? -1 : sl->exit_code;
        op->finish.signal = sl->signal;
        op->finish.finished_at = now_wall_ms();
        op->finish.run_at = -1;
        op->finish.priority = sl->priority;
        op->finish.owner_uid = sl->owner_uid;
        op->finish.run_us = sl->released ? now_mono_us() - sl->started_mono_us : -1;
        op->finish.cpu_ms = sl->released ? sl->cpu_ms : -1;
        op->finish.max_rss_kb = sl->released ? sl->max_rss_kb : -1;
        op->finish.interrupted = interrupted;
        op->finish.refunded = refund;
        if (interrupted)
                s->stats.c[C_INTERRUPTED]++;
        if (refund) {
                /* The same attempt again, as soon as a slot is free: it
                 * did not fail, so no backoff. */
                op->finish.state = RINGQ_STATE_QUEUED;
                op->finish.run_at = op->finish.finished_at;
                op->finish.finished_at = -1;
        } else if (state == RINGQ_STATE_FAILED && attempt < sl->max_attempts) {
                op->finish.state = RINGQ_STATE_QUEUED;
                op->finish.run_at = op->finish.finished_at + backoff_ms(sl, attempt);
                op->finish.finished_at = -1;
        }
        op->enqueued_us = now_mono_us();
        {
                /* A failure is news (notice), a timeout or an
                 * interruption more so (warning); a success is not. */
                int prio = sl->end == END_TIMEOUT || sl->end == END_INTERRUPTED ? LOG_WARNING
                           : state == RINGQ_STATE_SUCCEEDED || state == RINGQ_STATE_CANCELED ? LOG_INFO
                                                                                             : LOG_NOTICE;
                char qa[256], qq[160], qr[160];
                const char *st = refund                                  ? "requeued with its attempt given back"
                                 : op->finish.state == RINGQ_STATE_QUEUED ? "retry scheduled"
                                                                          : ringq_state_names[op->finish.state];
                log_job_attempt(prio,
                                &(struct log_job){ sl->job_id, sl->owner_uid, sl->queue,
                                                   ringq_state_names[op->finish.state], reason },
                                attempt,
                                "job %" PRId64 " ended: %s, reason=%s owner=%" PRId64 " queue=%s argv0=%s"
                                " attempt=%d/%d duration=%" PRId64 "ms cpu=%" PRId64 "ms",
                                sl->job_id, st, log_quote(qr, sizeof(qr), reason), sl->owner_uid,
                                log_quote(qq, sizeof(qq), sl->queue), log_quote(qa, sizeof(qa), sl->argv0), attempt,
                                sl->max_attempts, sl->released ? op->finish.run_us / 1000 : 0, op->finish.cpu_ms);
        }
        if (sl->t_exit)
                latency_add(&s->stats.path[P_DRAIN], op->enqueued_us - sl->t_exit);
        store_push(s->store, op);
        s->turnover_exit_us = sl->t_exit;
        slot_reset(sl);
        dispatch_run(s);
        s->turnover_exit_us = 0;
}

void worker_on_store_done(struct server *s, struct store_op *op)
{
        struct slot *sl = op->owner;

        if (op->kind == SOP_START) {
                if (sl->gen != op->owner_gen || sl->state == SLOT_FREE)
                        return;
                sl->start_pending = false;
                if (op->result < 0) {
                        /* Refused (the job changed between its pick and
                         * its start: never with a cancel in flight, which
                         * dispatch waits for) or ringqd is stopping with
                         * the disk failing. It may not run unrecorded:
                         * it is killed, and its launch record stays until
                         * it is gone. */
                        log_error_errno(op->result, "job %" PRId64 ": cannot record its start; stopping it",
                                        sl->job_id);
                        sl->start_failed = true;
                        if (sl->released && sl->state != SLOT_REAPED) {
                                signal_job(sl, SIGKILL);
                                sl->state = SLOT_KILLED;
                        }
                        maybe_finish(sl);
                        return;
                }
                /* The database holds the pid now. */
                launches_clear(&s->launches, sl->idx);
                latency_add(&s->stats.path[P_START_COMMIT], now_mono_us() - op->enqueued_us);
                dispatch_start_committed(s, (uid_t)sl->owner_uid, sl->queue_no);
                s->stats.c[C_STARTED]++;
                sl->started_wall_ms = op->start.started_at;
                latency_add(&s->stats.queue_wait,
                            (op->start.started_at - MAX(sl->run_at, sl->submitted_at)) * 1000);
                dispatch_update_accepting(s);
                {
                        char qa[256], qq[160];
                        log_job_attempt(LOG_INFO,
                                        &(struct log_job){ sl->job_id, sl->owner_uid, sl->queue, "running", NULL },
                                        sl->attempts_before + 1,
                                        "job %" PRId64 " started: pid=%d owner=%" PRId64 " queue=%s argv0=%s attempt=%d",
                                        sl->job_id, (int)sl->pid, sl->owner_uid, log_quote(qq, sizeof(qq), sl->queue),
                                        log_quote(qa, sizeof(qa), sl->argv0), sl->attempts_before + 1);
                }
                /* Its end may have come while this commit was on its way. */
                maybe_finish(sl);
                return;
        }

        /* SOP_FINISH: the slot is long free; the op carries the facts. */
        if (op->result < 0) {
                log_error_errno(op->result, "job %" PRId64 ": cannot record its end; it is recovered at the next start",
                                op->id);
                return;
        }
        latency_add(&s->stats.path[P_END_COMMIT], now_mono_us() - op->enqueued_us);
        stats_finished(&s->stats, now_mono_ms());
        if (op->finish.run_us >= 0)
                latency_add(&s->stats.run, op->finish.run_us);
        /* Counted by why it stopped, whether or not it runs again: a
         * timeout that leads to a retry is still a timeout. */
        if (op->finish.end == END_TIMEOUT)
                s->stats.c[C_TIMED_OUT]++;
        switch (op->finish.state) {
        case RINGQ_STATE_QUEUED:
                s->stats.c[C_RETRIED]++;
                dispatch_requeued(s, op);
                dispatch_update_accepting(s);
                break;
        case RINGQ_STATE_SUCCEEDED:
                s->stats.c[C_SUCCEEDED]++;
                break;
        case RINGQ_STATE_CANCELED:
                s->stats.c[C_CANCELED]++;
                break;
        default:
                s->stats.c[C_FAILED]++;
                break;
        }
        if (op->finish.state != RINGQ_STATE_QUEUED) {
                prune_note_finished(s, 1);
                dispatch_ended(s, op->id, op->finish.state);
                waiters_job_final(s, op->id, op->row);
        }
        notify_status(s);
}

/* ---- re-exec (reexec.h) ---- */

/* No start or end half done: every busy slot runs a released job whose
 * start is committed, so the database says "running" with its pid, and
 * what the slot holds is all the next process needs. */
bool workers_settled(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->state == SLOT_FREE)
                        continue;
                if (sl->start_pending || sl->start_failed || !sl->released || sl->state == SLOT_STARTING ||
                    sl->state == SLOT_REAPED)
                        return false;
        }
        return true;
}

static void cancel_op(struct server *s, uint64_t ud)
{
        struct io_uring_sqe *sqe = get_sqe(s);

        io_uring_prep_cancel64(sqe, ud, 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
}

void workers_park(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (sl->state == SLOT_FREE)
                        continue;
                if (sl->pidfd_armed)
                        cancel_op(s, ud_pack(UD_PIDFD, sl->idx, sl->gen));
                if (sl->exec_armed)
                        cancel_op(s, ud_pack(UD_EXEC, sl->idx, sl->gen));
                for (unsigned k = 0; k < 2; k++)
                        if (sl->st[k].reading)
                                cancel_op(s, ud_pack(UD_PIPE_READ, sl->idx * 2 + k, sl->gen));
        }
}

bool workers_parked(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++)
                if (s->slots[i].state != SLOT_FREE && s->slots[i].ring_ops)
                        return false;
        return true;
}

/* Put a busy slot's watches on the ring: after a failed re-exec, or for
 * a job the new process adopted. Each is armed at most once. */
void worker_rearm(struct slot *sl)
{
        if (sl->pidfd >= 0)
                arm_pidfd(sl);
        if (sl->released && !sl->t_exec)
                arm_exec(sl);
        for (int k = 0; k < 2; k++) {
                struct stream *st = &sl->st[k];
                if (st->woff < st->wlen && st->file_fd >= 0 && !st->writing)
                        arm_write(sl, k);
                else
                        arm_read(sl, k);
        }
}

void workers_unpark(struct server *s)
{
        for (unsigned i = 0; i < s->nslots; i++)
                if (s->slots[i].state != SLOT_FREE)
                        worker_rearm(&s->slots[i]);
}
