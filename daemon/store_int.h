/* Private to the store's files. */
#pragma once

#include <liburing.h>
#include <pthread.h>
#include <sqlite3.h>

#include "job.h"

/* Consecutive plain submits of a batch go into the table by up to
 * 2 << (STORE_INSERT_ORDERS - 1) rows per INSERT. */
#define STORE_INSERT_ORDERS 5

#define JOB_COLUMNS                                                          \
        "id, queue, state, priority, argv, env, cwd, owner_uid, owner_gid, " \
        "idem_key, submitted_at, run_at, started_at, finished_at, attempts, " \
        "max_attempts, timeout_ms, backoff_ms, exit_code, signal, reason, pid, " \
        "owner_groups, umask, cpu_ms, max_rss_kb, queued_seq, interruptions"

/* Fill *j from a row selected with JOB_COLUMNS. Returns 0 or -ENOMEM. */
int job_rec_from_row(sqlite3_stmt *st, struct job_rec *j);
/* Fill j->after from st ("SELECT after_id FROM job_deps WHERE job_id =
 * ?1 ORDER BY after_id", reset here). 0, -ENOMEM or -EIO. */
int job_rec_read_after(sqlite3_stmt *st, struct job_rec *j);
/* The statement job_rec_read_after takes. */
#define JOB_AFTER_SQL "SELECT after_id FROM job_deps WHERE job_id = ?1 ORDER BY after_id"

/* A job's start: ?1 id, ?2 pid, ?3 started_at, ?4 the queued_seq it was
 * picked with. */
#define STORE_SQL_START                                                                                         \
        "UPDATE jobs SET state = 'running', pid = ?2, started_at = ?3, attempts = attempts + 1,"               \
        " finished_at = NULL, reason = NULL, exit_code = NULL, signal = NULL, cpu_ms = NULL, max_rss_kb = NULL" \
        " WHERE id = ?1 AND state = 'queued' AND queued_seq = ?4"

/* SQLite result code to a negative errno the rest of the daemon speaks. */
int sqlite_errno(int rc);

struct store {
        sqlite3 *db;
        char *path;
        int durability;
        int schema_from;                      /* user_version found at open */
        int64_t busy_timeout_ms;
        unsigned max_batch;
        uint64_t max_interruptions;           /* config at open, for recovery */

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct store_op *out, **out_tail;     /* the loop's, until store_flush */
        unsigned out_n;
        struct store_op *todo, **todo_tail;   /* guarded by lock */
        struct store_op *done, **done_tail;   /* guarded by lock */
        unsigned inflight;                    /* guarded by lock */
        bool stop;                            /* guarded by lock */
        bool idle;                            /* written under lock, read by the loop without: see store_flush_if_idle */
        bool unsynced;                        /* guarded by lock: see store_take_unsynced */
        int wal_fd;                           /* the WAL, read-only, for trailing fsyncs */
        bool sync_relaxed;                    /* store thread: synchronous is NORMAL for now */
        uint64_t early_seq;                   /* store thread: early batches so far */
        struct store_op *synced_spare;        /* store thread: the next early batch's SOP_SYNCED */
        struct store_waker waker;
        bool loop_woken;                      /* guarded by lock: a wake-up is on its way */
        struct io_uring wake_ring;            /* the store thread's, for MSG_RING */
        bool wake_ring_made;                  /* store_close frees it */
        bool wake_by_ring;                    /* store thread: MSG_RING works here */
        struct store_info info;               /* guarded by lock */

        /* Owned by the store thread once it runs. st_insert_rows[k]
         * inserts 2 << k submits in one statement (store_thread.c). */
        sqlite3_stmt *st_insert_rows[STORE_INSERT_ORDERS];
        sqlite3_stmt *st_insert, *st_idem, *st_start, *st_finish,
                *st_get_owner, *st_cancel, *st_retry,
                *st_prune_scan, *st_delete, *st_get,
                *st_dep_check, *st_dep_insert, *st_deps_failed, *st_deps_unmet, *st_deps,
                *st_dep_cancel, *st_queue_set, *st_queue_resume_all, *st_deps_delete,
                *st_begin, *st_commit, *st_rollback;
        int output_dirfd;                     /* for pruning output files */
};

void *store_thread_main(void *arg);
int store_prepare(struct store *s);
void store_finalize(struct store *s);
