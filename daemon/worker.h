/* Worker slots: a fixed number of jobs run at once, each watched through
 * its pidfd (and its cgroup) and its two output pipes on the ring.
 *
 * A slot is in one state (enum slot_state); each says why it exists. A
 * slot is freed only when its child is reaped, both pipes are closed, its
 * cgroup is empty, no ring op references it and its START op is back from
 * the store. Besides its state a slot keeps three facts about its start:
 * released (its launch record holds the pid and the barrier let it exec:
 * it ran, which the end's record needs after the state has moved on),
 * start_pending (the START op is in the store; the end waits for it) and
 * start_failed (the store refused the start: the job is killed, and the
 * database keeps nothing of its run).
 */
#pragma once

#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "server.h"
#include "spawn.h"
#include "timers.h"

/* A job's stdout or stderr: its pipe is read into buf, and buf written
 * to the output file. The file is made only when the job first writes
 * (most short jobs never do), by an openat on the ring: creating a file
 * waits for the filesystem's journal, which an fsync may hold for
 * milliseconds, and the loop must not. */
struct stream {
        int pipe_r, file_fd;
        uint64_t kept;           /* bytes written to the file */
        bool eof, reading, writing, opening, truncated;
        bool file_failed;        /* cannot create or write it: output lost */
        bool open_owed;          /* an earlier attempt's file is there: this
                                  * attempt empties it even if it writes nothing */
        char *buf;
        size_t wlen, woff;       /* pending file write: buf[woff, wlen) */
        char name[32];           /* <id>.out or <id>.err */
};

int workers_init(struct server *s);
int workers_grow(struct server *s, unsigned n);
void workers_done(struct server *s);
/* Is a slot free? */
bool workers_free(struct server *s);
/* Start the job dispatch picked in a free slot: 0, -ESTALE when the pick
 * no longer stands for the job (it changed since its entry was made: the
 * row's queued_seq & tag_mask differs, or it is not queued), or another
 * negative errno when it cannot start now. */
struct qpick;
int workers_start(struct server *s, const struct qpick *p, unsigned tag_mask);
/* Start the job of submit, not yet committed, in a free slot up to the
 * barrier, and push submit to the store (always, also on failure: just
 * before the clone, so that the commit runs while the child is made). It
 * may exec only once workers_submit_done says the commit is back: until
 * then a crash of ringqd ends it unrun (its barrier closes), and it
 * leaves nothing a next ringqd must find. Returns 0, or a negative errno
 * when no slot took it (it is then queued like any other when its submit
 * comes back). env: as for dispatch_submit. */
struct store_op;
int workers_start_submitted(struct server *s, struct store_op *submit, const json_t *env, uint32_t queue);
/* The submit of job id came back: true when a slot held the job and now
 * lets it exec (committed); false when none did, or when it ends unrun
 * (not committed, or ringqd began to stop). */
bool workers_submit_done(struct server *s, int64_t id, bool committed);
void worker_on_pidfd(struct server *s, struct io_uring_cqe *cqe);
void workers_on_sigchld(struct server *s);
/* Kill and reap what ended jobs left behind (subreaper mode); returns
 * how many of them were still alive. */
int workers_sweep_orphans(struct server *s);
void worker_on_cgroup(struct server *s, struct io_uring_cqe *cqe);
void worker_on_pipe_read(struct server *s, struct io_uring_cqe *cqe);
void worker_on_file_write(struct server *s, struct io_uring_cqe *cqe);
void worker_on_file_open(struct server *s, struct io_uring_cqe *cqe);
/* The job's exec (or exit before it) closed its error pipe. */
void worker_on_exec(struct server *s, struct io_uring_cqe *cqe);
/* A START or FINISH op came back. */
void worker_on_store_done(struct server *s, struct store_op *op);
/* Cancel a running job; returns 0, -ENOENT if it is not running here,
 * -EPERM if uid may not. */
int workers_cancel(struct server *s, int64_t id, uid_t uid);
void workers_stop_all(struct server *s, bool hard);

/* Re-exec (reexec.h). settled: no start or end is half done. park: take
 * every job's pipe reads and pidfd and exec polls off the ring; parked:
 * none is left on it. handoff: describe each busy slot into slots (a
 * JSON array) and keep its descriptors open across exec; undo: close
 * them at exec again (the exec failed). rearm/unpark: the watches back
 * on the ring. */
bool workers_settled(struct server *s);
void workers_park(struct server *s);
bool workers_parked(struct server *s);
void workers_unpark(struct server *s);
int workers_handoff(struct server *s, json_t *slots);
void workers_handoff_undo(struct server *s);
struct slot;
void worker_rearm(struct slot *sl);
/* The new process: which of the hand-off's jobs are really the
 * processes it names (ids into *ret_ids, to spare from recovery), then,
 * once the ring is up, take them into slots. */
int workers_verify_handoff(struct server *s, json_t *handoff, int64_t **ret_ids, size_t *ret_n);
int workers_adopt(struct server *s, json_t *handoff);

enum slot_state {
        SLOT_FREE,       /* nothing runs */
        SLOT_STARTING,   /* the child exists, at the barrier: only while it is
                          * launched, or if it could not be released */
        SLOT_RUNNING,    /* barrier released: the job runs (its start may still
                          * be on its way to the database); its timeout is armed */
        SLOT_STOPPING,   /* SIGTERM sent to every process of the job (timeout,
                          * cancel, shutdown); SIGKILL follows after kill_grace */
        SLOT_KILLED,     /* SIGKILL sent */
        SLOT_REAPED,     /* the main process exited and was reaped, the rest was
                          * killed; the pipes drain and the cgroup empties
                          * (bounded by a short deadline: a process may hang in
                          * the kernel, or hold a pipe from elsewhere) */
};

struct slot {
        struct server *srv;
        unsigned idx;
        uint32_t gen;
        enum slot_state state;

        int64_t job_id, owner_uid;
        uint32_t queue_no;       /* its queue's number in dispatch */
        int priority, attempts_before, max_attempts;
        int64_t queued_seq;      /* the row's, when it was picked */
        int64_t backoff_ms, timeout_ms, run_at, submitted_at;
        char *argv0, *queue;     /* for its log lines */

        pid_t pid;
        int pidfd, barrier_w, err_r;
        bool pidfd_armed, exec_armed; /* their polls are on the ring */
        bool start_pending, start_failed, released;
        /* Taken as it was submitted: at the barrier until its submit's
         * commit is back (workers_start_submitted), with its start's op
         * ready. start_pending is set meanwhile: a cancel goes through
         * the store, behind the submit. */
        bool awaiting_submit;
        struct store_op *start_op;
        bool no_retry;           /* canceled after its process exited: no retry */
        /* Without a cgroup: the sweep at its reap found processes alive
         * and killed them; the end waits until they are gone (bounded by
         * the drain deadline), as it waits for a cgroup to empty. */
        bool orphan_wait;
        /* Its cgroup (cgroup.h): the end waits until the last process in
         * it is gone (bounded by the drain deadline), then reads what
         * they used and removes it. */
        bool in_cgroup, cg_wait;
        int cg_events;
        int64_t cpu_ms, max_rss_kb;     /* -1: unknown */
        enum end_reason end;
        int exit_code, signal, spawn_errno;
        int64_t started_wall_ms, started_mono_us;
        /* The steps of one job on its slot (stats.h, enum path_step), in
         * CLOCK_MONOTONIC us; 0 where a step has not happened. */
        int64_t t_pick, t_cloned, t_released, t_exec, t_exit;
        int64_t turnover_from;   /* the exit that freed a slot for this job */
        struct timer timer;      /* timeout, kill grace, drain deadline */
        unsigned ring_ops;
        struct stream st[2];     /* stdout, stderr */

        /* Read by the clone child until it execs; freed with the slot. */
        void *stack;
        struct spawn_args args;
        char **argv, **envp, **paths;
        char *cwd;
        gid_t *groups;
};

/* A test harness replaces what runs; NULL in ringqd. Called by the start
 * of job j once sl->argv, envp, paths and cwd are built, before the child
 * is made: it may free and replace them (they are the slot's, freed with
 * it: NULL-terminated malloc'd vectors of malloc'd strings). A negative
 * errno fails the start like any other. */
struct job_rec;
extern int (*workers_exec_hook)(struct slot *sl, const struct job_rec *j);
