/* The durable queue: one SQLite database in WAL mode.
 *
 * The write connection belongs to the store thread, which runs every
 * change in group commits: all operations that arrive while a commit is
 * in progress share the next transaction and its fsync. The loop never
 * waits for it; it hands over struct store_op and is woken when they are
 * done (struct store_waker). A separate read connection (struct
 * reader, owned by the loop) answers status and list: WAL readers are
 * never blocked by the writer or by a sqlite3 shell holding the write
 * lock, and a lookup by key is a few microseconds.
 *
 * Schema version history (PRAGMA user_version), so a later change knows
 * what to migrate:
 *   1: jobs table, queue_summary view, idem/state/queue/finished
 *      indexes, auto_vacuum=INCREMENTAL.
 *   2: jobs.owner_groups, umask, cpu_ms, max_rss_kb; jobs_idem unique
 *      per (owner_uid, queue, idem_key).
 *   3: jobs.queued_seq; tables queues (name, paused, changed_at) and
 *      job_deps (job_id, after_id).
 *   4: jobs.interruptions.
 *   5: jobs.id without AUTOINCREMENT (the table made again); table
 *      jobs_id_floor (id) and trigger jobs_id_floor_keep keep the
 *      largest id of a deleted newest row, so no id is given twice.
 * To change the schema: bump STORE_SCHEMA_VERSION, append a step to
 * migrations[] in store.c (a new database is version 1 taken through
 * every step), keep every column users query, and test opening a
 * database of the old version (tests/integration/test_users.py from 1,
 * test_interruptions.py from 3).
 */
#pragma once

#include "launches.h"

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "job.h"

#define STORE_SCHEMA_VERSION 5

struct store;
struct sqlite3;

/* Open (creating if absent) <state_dir>/queue.db. Refuses a file that is
 * not a ringq database or has a newer schema; never overwrites one.
 * *ret_err is a malloc'd one-line reason on failure. */
int store_open(const char *path, const struct config *cfg, struct store **ret, char **ret_err);

/* The schema version the database had when it was opened (0: new). */
int store_schema_from(struct store *s);

/* What an interruption (ringqd stopped or crashed while the job ran)
 * does to a job: within max_interruptions the attempt is given back and
 * the job runs again; past it the attempt counts, as a failure's does.
 * attempts counts the interrupted one; interruptions are those before. */
struct interruption {
        bool again;             /* queued to run again; else failed */
        bool refunded;          /* its attempt given back */
        char reason[96];        /* "interrupted (2 of 3)" */
};
void job_interruption(int attempts, int max_attempts, int interruptions, uint64_t max_interruptions,
                      struct interruption *ret);

/* Jobs left running by an earlier ringqd, before the thread starts. */
struct interrupted {
        int64_t id, pid;
        int attempts, max_attempts, interruptions;
        int64_t backoff_ms;
        bool again, refunded;   /* out: what store_mark_interrupted did */
};
int store_list_running(struct store *s, struct interrupted **ret, size_t *ret_n);
/* Commit the starts that launch records (launches.h) kept and the
 * database may not have: each job still queued with the record's
 * queued_seq becomes running with the record's pid, as its START op
 * would have made it. *ret_done: how many were not committed before. */
int store_replay_starts(struct store *s, const struct launch_rec *v, size_t n, size_t *ret_done);
/* Record interrupted jobs as job_interruption says, with the
 * max_interruptions of the config the store was opened with: requeued
 * at run_at, or failed. One transaction for all. */
int store_mark_interrupted(struct store *s, struct interrupted *v, size_t n, const int64_t *run_at, int64_t now_ms);
/* Call fn for every queued job (the dispatch index rebuild). */
struct queued_job {
        int64_t id, owner_uid, run_at, queued_seq;
        const char *queue;       /* valid during the call */
        int priority;
};
int store_load_queued(struct store *s, int (*fn)(void *ud, const struct queued_job *j), void *ud);
/* Call fn for every dependency of a queued job, with the state of the job
 * it waits for (succeeded if that one was pruned: only a success leaves a
 * dependent queued). */
int store_load_deps(struct store *s, int (*fn)(void *ud, int64_t job_id, int64_t after_id, int after_state),
                    void *ud);
/* Call fn for every row of the queues table ("*": every queue). */
int store_load_queues(struct store *s, int (*fn)(void *ud, const char *name, bool paused), void *ud);

/* How the store thread wakes the loop when it has handed ops back: a
 * completion posted straight into the loop's ring (IORING_OP_MSG_RING),
 * so the loop has no read of its own to complete and arm again for it;
 * where the kernel refuses that, a write to efd, on which the loop keeps
 * a read armed. One wake-up per store_take_done: what is handed back
 * before the loop takes it needs none of its own. */
struct store_waker {
        int ring_fd;        /* the loop's ring */
        uint64_t ring_data; /* the user_data of the completion posted there */
        int efd;
};

/* Start the store thread, waking the loop as w says. Pruned jobs'
 * output files are removed from output_dirfd (kept open). */
int store_start(struct store *s, const struct store_waker *w, int output_dirfd);
/* Re-exec (reexec.h): end the store thread once it is idle, keeping the
 * connection; start it again if the exec failed. */
bool store_running(struct store *s);
void store_pause(struct store *s);
int store_resume(struct store *s);
/* The highest job id ever committed, even if its row is gone (the
 * larger of max(id) and jobs_id_floor): ids above it are given next. */
int store_last_id(struct store *s, int64_t *ret);
/* Finished jobs in the database now (one index count, at start-up). */
int store_count_finished(struct store *s, int64_t *ret);
/* Hand an op to the store (ownership moves with it); see store_flush. */
void store_push(struct store *s, struct store_op *op);
/* Take the finished ops (ownership back to the caller), oldest first. */
struct store_op *store_take_done(struct store *s);
/* With durability=full, job starts and ends are committed without an
 * fsync of their own (see run_batch) and made durable right after by a
 * trailing fsync of the WAL, which the loop issues through the ring on
 * store_wal_fd(). True once, after such a commit, until taken. The fd is
 * the store's; -1 when there is no WAL file to sync, and then every
 * commit is fsynced as it is made. */
bool store_take_unsynced(struct store *s);
int store_wal_fd(struct store *s);
/* Ops pushed in one turn of the loop wait in the loop's list until
 * store_flush hands them over together: one lock and one wake-up of the
 * store thread per turn, and ops made together share a commit (a job's
 * end and the next job's start). The loop flushes before it sleeps. */
void store_flush(struct store *s);
/* The same between two completions of one turn, but only while the
 * store thread sleeps: a turn can bring a thousand requests, and a store
 * that waits for all of them to be parsed works in turn with the loop
 * instead of beside it. While it is busy, what comes meanwhile gathers
 * for its next commit as before. A hint read without the lock: a stale
 * answer only moves the hand-over to the end of the turn. */
void store_flush_if_idle(struct store *s);
/* Ops handed over and not yet taken back. */
unsigned store_inflight(struct store *s);
/* Apply runtime-changeable settings (busy timeout). */
void store_set_busy_timeout(struct store *s, int64_t ms);
/* What the store thread reports about itself. */
struct store_info {
        int64_t db_bytes, wal_bytes;  /* now */
        uint64_t commits;             /* group commits done */
};
void store_get_info(struct store *s, struct store_info *ret);
/* Finish in-flight work, stop the thread, close the database. */
void store_close(struct store *s);

/* The loop's read connection. */
struct reader;
int reader_open(const char *path, struct reader **ret);
void reader_close(struct reader *r);
/* 0, -ENOENT, or -EIO/-EBUSY when the database cannot answer. */
int reader_get(struct reader *r, int64_t id, struct job_rec *ret);
/* The row alone, without ret->after: what a start needs, in one read
 * transaction instead of two. */
int reader_get_row(struct reader *r, int64_t id, struct job_rec *ret);
struct list_filter {
        int state;              /* -1: any */
        const char *queue;      /* NULL: any */
        int64_t after_id;       /* ids above this */
        int64_t before_id;      /* and below this; 0: no bound */
        bool desc;              /* newest first */
        unsigned limit;
        int64_t owner_uid;      /* -1: any */
};
/* Calls fn for each matching job in id order (descending with desc); fn
 * may keep the record's strings by taking them (setting the fields to
 * NULL). -ETIME when the filter matched too rarely to scan for. */
int reader_list(struct reader *r, const struct list_filter *f,
                int (*fn)(void *ud, struct job_rec *j), void *ud);
/* How many jobs match f (its limit ignored), counted up to cap: what is
 * left past a list page. -ETIME when counting would scan too much. */
int reader_count(struct reader *r, const struct list_filter *f, unsigned cap, int64_t *ret);
