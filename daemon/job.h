/* A job as the database stores it (struct job_rec), and the operations
 * the loop hands to the store thread (struct store_op).
 *
 * NULL columns are -1 in the integer fields (every real value is >= 0)
 * and NULL in the string fields.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct job_rec {
        int64_t id;
        char *queue;
        int state;              /* enum ringq_state */
        int priority;
        char *argv;             /* JSON array text */
        char *env;              /* JSON object text */
        char *cwd;
        int64_t owner_uid, owner_gid;
        char *idem_key;
        int64_t submitted_at, run_at, started_at, finished_at; /* unix ms */
        int attempts, max_attempts;
        int64_t timeout_ms;     /* -1: the daemon's default_timeout */
        int64_t backoff_ms;
        int exit_code, signal;
        char *reason;
        int64_t pid;
        /* Schema 2: the groups the submitter had (JSON array; NULL for a
         * job of schema 1: its owner's groups from the group database),
         * its umask (-1: 0022), and what the job used, once it ended. */
        char *owner_groups;
        int umask;
        int64_t cpu_ms, max_rss_kb;
        /* Schema 3: how many times the job entered the queue (its entry
         * in the dispatch index carries the low bits, so an entry left
         * from an earlier time is told apart), and the jobs it runs after
         * (job_deps; read with the row, owned here). */
        int64_t queued_seq;
        int64_t *after;
        unsigned nafter;
        /* Schema 4: runs cut short by ringqd stopping or crashing (the
         * stop past shutdown_grace, recovery at the next start). */
        int interruptions;
};

/* The most jobs one job may wait for (submit field after). */
#define JOB_AFTER_MAX 64

void job_rec_done(struct job_rec *j);
static inline void job_rec_donep(struct job_rec *j)
{
        job_rec_done(j);
}

/* Why a running job stopped, besides its own exit. */
enum end_reason {
        END_NONE,
        END_TIMEOUT,
        END_CANCELED,
        END_INTERRUPTED,
};

enum store_op_kind {
        SOP_SUBMIT,     /* insert a queued job; acknowledged after commit */
        SOP_START,      /* queued -> running with its pid, before exec */
        SOP_FINISH,     /* running -> final state, or back to queued */
        SOP_CANCEL,     /* queued -> canceled; reports a running job */
        SOP_RETRY,      /* failed/canceled -> queued */
        SOP_PRUNE,      /* delete a small batch of old finished jobs */
        SOP_QUEUE,      /* pause or resume a queue (or all): the queues table */
        SOP_DEP_CANCEL, /* queued -> canceled: a job it ran after failed */
        SOP_SYNCED,     /* the store's own: an early batch's fsync is done */
        _SOP_MAX,
};

/* Client-driven ops fail fast when the database is unavailable (the
 * client gets storage_error); the state machine's own ops are retried
 * until they commit, since they record what already happened. */
static inline bool store_op_retried(enum store_op_kind k)
{
        return k == SOP_START || k == SOP_FINISH || k == SOP_DEP_CANCEL;
}

struct store_op {
        struct store_op *next;
        enum store_op_kind kind;
        int result;             /* 0 or negative errno, set by the store */
        int64_t id;             /* job id (SUBMIT: the loop's new id; on a
                                 * duplicate the store's existing one) */
        void *owner;            /* the loop's: request or worker slot */
        uint64_t owner_gen;
        int64_t enqueued_us;    /* monotonic, for commit latency */
        /* SUBMIT of an early batch (store_thread.c): committed, but not
         * durable until the SOP_SYNCED of this number comes back; 0 for
         * an op that was durable when it came back. */
        uint64_t sync_seq;
        /* CANCEL, RETRY, FINISH: the job as this op left it, read in the
         * same transaction, so a reply never shows what a later op in the
         * same group commit did. Owned by the op; NULL if not read. */
        struct job_rec *row;
        /* SUBMIT, RETRY: the jobs of after that have not ended yet, as
         * the op's transaction saw them (owned by the op). */
        int64_t *unmet;
        unsigned nunmet;
        union {
                struct {
                        struct job_rec rec;     /* owned by the op; rec.after too */
                        /* in: the job could start at once (a slot is free
                         * and it is due): worth its start before its fsync */
                        bool early;
                        /* the loop's alone: a slot took the job as it was
                         * submitted, and waits for this commit to let it
                         * exec (workers_start_submitted) */
                        bool started;
                        bool duplicate;         /* out */
                        /* out: a job of after that ended failed or canceled
                         * (the new job was canceled for it), and its state */
                        int64_t dep_failed;
                        int dep_state;
                } submit;
                struct {
                        int64_t pid, started_at, queued_seq;
                        int attempts_before;
                } start;
                struct {
                        int state;              /* final, or queued to retry */
                        int end;                /* enum end_reason: why it stopped */
                        int exit_code, signal;
                        char *reason;           /* owned by the op */
                        int64_t finished_at, run_at;
                        int priority;           /* to requeue it */
                        int64_t owner_uid;      /* whose queue it goes back to */
                        int64_t run_us;         /* for the run-time stats; -1: never ran */
                        int64_t cpu_ms, max_rss_kb;     /* -1: unknown */
                        /* Cut short by ringqd stopping: one more
                         * interruption on the job, and (refunded) the
                         * attempt given back, within max_interruptions. */
                        bool interrupted, refunded;
                } finish;
                struct {
                        int64_t uid;            /* requester; 0 is root */
                        int64_t owner_uid;      /* out */
                        int prev_state;         /* out */
                        int priority;           /* out (retry) */
                        int64_t now_ms;         /* cancel: finished_at; retry: run_at */
                        int64_t dep_failed;     /* out (retry): a job it runs after that failed */
                        int dep_state;
                        bool again;             /* cancel: asked a second time (cancel_done) */
                } change;
                struct {
                        char *queue;            /* owned; NULL: every queue */
                        bool paused;
                } queue;
                struct {
                        char *reason;           /* owned: "dependency 12 failed" */
                        int64_t now_ms;
                        bool done;              /* out: it was queued and is canceled now */
                } dep;
                struct {
                        uint64_t seq;           /* the early batch's number; result: the fsync's */
                } synced;
                struct {
                        int64_t before_ms;      /* finished before this go */
                        int64_t excess;         /* this many oldest go too */
                        unsigned limit;         /* at most this many rows */
                        unsigned deleted;       /* out */
                        int64_t *ids;           /* out: the deleted ids */
                        bool more;              /* out: a full batch */
                        int64_t next_finished;  /* out: oldest one kept, -1: none */
                } prune;
        };
};

void store_op_free(struct store_op *op);
