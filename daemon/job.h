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
};

void job_rec_done(struct job_rec *j);

enum store_op_kind {
        SOP_SUBMIT,     /* insert a queued job; acknowledged after commit */
        SOP_START,      /* queued -> running with its pid, before exec */
        SOP_FINISH,     /* running -> final state, or back to queued */
        SOP_CANCEL,     /* queued -> canceled; reports a running job */
        SOP_RETRY,      /* failed/canceled -> queued */
        SOP_PRUNE,      /* delete a small batch of old finished jobs */
        _SOP_MAX,
};

/* Client-driven ops fail fast when the database is unavailable (the
 * client gets storage_error); the state machine's own ops are retried
 * until they commit, since they record what already happened. */
static inline bool store_op_retried(enum store_op_kind k)
{
        return k == SOP_START || k == SOP_FINISH;
}

struct store_op {
        struct store_op *next;
        enum store_op_kind kind;
        int result;             /* 0 or negative errno, set by the store */
        int64_t id;             /* job id (SUBMIT: set by the store) */
        void *owner;            /* the loop's: request or worker slot */
        uint64_t owner_gen;
        int64_t enqueued_us;    /* monotonic, for commit latency */
        /* CANCEL, RETRY, FINISH: the job as this op left it, read in the
         * same transaction, so a reply never shows what a later op in the
         * same group commit did. Owned by the op; NULL if not read. */
        struct job_rec *row;
        union {
                struct {
                        struct job_rec rec;     /* owned by the op */
                        bool duplicate;         /* out */
                } submit;
                struct {
                        int64_t pid, started_at;
                        int attempts_before;
                } start;
                struct {
                        int state;              /* final, or queued to retry */
                        int exit_code, signal;
                        char *reason;           /* owned by the op */
                        int64_t finished_at, run_at;
                        int priority;           /* to requeue it */
                        int64_t owner_uid;      /* whose queue it goes back to */
                        int64_t run_us;         /* for the run-time stats; -1: never ran */
                        int64_t cpu_ms, max_rss_kb;     /* -1: unknown */
                } finish;
                struct {
                        int64_t uid;            /* requester; 0 is root */
                        int64_t owner_uid;      /* out */
                        int prev_state;         /* out */
                        int priority;           /* out (retry) */
                        int64_t now_ms;         /* cancel: finished_at; retry: run_at */
                } change;
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
