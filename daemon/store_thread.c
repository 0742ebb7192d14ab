/* The store thread: sole user of the write connection. It takes every
 * waiting op (up to max_batch), runs them in one transaction, commits
 * once (one fsync with durability=full) and hands them back. While one
 * commit runs, new ops queue up and share the next one: the busier the
 * daemon, the more each fsync is shared. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "ringq/protocol.h"
#include "store.h"
#include "store_int.h"

/* A submit's row: the columns in the order bind_submit numbers them, so
 * that a row is INSERT_PARAMS plain ?s and row k of a many-row INSERT
 * takes parameters k * INSERT_PARAMS + 1 on (attempts: the default, 0). */
#define INSERT_HEAD \
        "INSERT INTO jobs (queue, priority, argv, env, cwd, owner_uid, owner_gid, idem_key, submitted_at," \
        " run_at, max_attempts, timeout_ms, backoff_ms, owner_groups, umask, state, reason, finished_at, id)" \
        " VALUES "
#define INSERT_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define INSERT_PARAMS 19

static const struct {
        size_t off;
        const char *sql;
} stmts[] = {
        { offsetof(struct store, st_insert), INSERT_HEAD INSERT_ROW },
        { offsetof(struct store, st_idem),
          "SELECT id FROM jobs WHERE owner_uid = ?1 AND queue = ?2 AND idem_key = ?3" },
        { offsetof(struct store, st_start),
          /* What the failed attempt before left (a requeue keeps it
           * while the job waits) is not this attempt's: a running job
           * has no outcome yet. */
          STORE_SQL_START },
        { offsetof(struct store, st_finish),
          /* ?10: an interruption, counted; ?11: its attempt given back
           * (attempts were counted at the start). */
          "UPDATE jobs SET state = ?2, exit_code = ?3, signal = ?4, reason = ?5,"
          " finished_at = ?6, run_at = coalesce(?7, run_at), pid = NULL, cpu_ms = ?8, max_rss_kb = ?9,"
          " queued_seq = queued_seq + (?2 = 'queued'), interruptions = interruptions + ?10,"
          " attempts = attempts - ?11"
          " WHERE id = ?1 AND state = 'running'" },
        { offsetof(struct store, st_get_owner),
          "SELECT owner_uid, state, priority FROM jobs WHERE id = ?1" },
        { offsetof(struct store, st_cancel),
          "UPDATE jobs SET state = 'canceled', reason = 'canceled', finished_at = ?2"
          " WHERE id = ?1 AND state = 'queued'" },
        { offsetof(struct store, st_retry),
          "UPDATE jobs SET state = 'queued', run_at = ?2, attempts = 0, started_at = NULL,"
          " finished_at = NULL, exit_code = NULL, signal = NULL, reason = NULL, pid = NULL,"
          " cpu_ms = NULL, max_rss_kb = NULL, queued_seq = queued_seq + 1"
          " WHERE id = ?1 AND state IN ('failed', 'canceled')" },
        { offsetof(struct store, st_prune_scan),
          "SELECT id, finished_at FROM jobs INDEXED BY jobs_finished"
          " WHERE finished_at IS NOT NULL ORDER BY finished_at LIMIT ?1" },
        { offsetof(struct store, st_delete),
          "DELETE FROM jobs WHERE id = ?1 AND finished_at IS NOT NULL" },
        { offsetof(struct store, st_get),
          "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1" },
        { offsetof(struct store, st_dep_check),
          "SELECT owner_uid, state FROM jobs WHERE id = ?1" },
        { offsetof(struct store, st_dep_insert),
          "INSERT OR IGNORE INTO job_deps (job_id, after_id) VALUES (?1, ?2)" },
        /* A job it runs after that can no longer succeed. */
        { offsetof(struct store, st_deps_failed),
          "SELECT a.id, a.state FROM job_deps d JOIN jobs a ON a.id = d.after_id"
          " WHERE d.job_id = ?1 AND a.state IN ('failed', 'canceled') ORDER BY a.id LIMIT 1" },
        /* Those it still waits for. */
        { offsetof(struct store, st_deps_unmet),
          "SELECT a.id FROM job_deps d JOIN jobs a ON a.id = d.after_id"
          " WHERE d.job_id = ?1 AND a.state IN ('queued', 'running') ORDER BY a.id" },
        { offsetof(struct store, st_deps), JOB_AFTER_SQL },
        { offsetof(struct store, st_dep_cancel),
          "UPDATE jobs SET state = 'canceled', reason = ?2, finished_at = ?3 WHERE id = ?1 AND state = 'queued'" },
        { offsetof(struct store, st_queue_set),
          "INSERT INTO queues (name, paused, changed_at) VALUES (?1, ?2, ?3)"
          " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at" },
        { offsetof(struct store, st_queue_resume_all),
          "UPDATE queues SET paused = 0, changed_at = ?1 WHERE paused" },
        { offsetof(struct store, st_deps_delete),
          "DELETE FROM job_deps WHERE job_id = ?1 OR after_id = ?1" },
        /* Every batch runs these: parsed once, not at each commit. (Not
         * PRAGMA synchronous: SQLite applies it when it is prepared, so
         * a prepared one cannot be stepped to switch back and forth.) */
        { offsetof(struct store, st_begin), "BEGIN IMMEDIATE" },
        { offsetof(struct store, st_commit), "COMMIT" },
        { offsetof(struct store, st_rollback), "ROLLBACK" },
};

/* The text of an INSERT of rows submits. */
static char *insert_rows_sql(unsigned rows)
{
        char *sql = malloc(sizeof(INSERT_HEAD) + rows * sizeof("," INSERT_ROW)), *o;

        if (!sql)
                return NULL;
        o = stpcpy(sql, INSERT_HEAD);
        for (unsigned k = 0; k < rows; k++)
                o = stpcpy(o, k ? "," INSERT_ROW : INSERT_ROW);
        return sql;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);

        if (rc != SQLITE_OK)
                return log_error("<store> prepare failed: %s", sqlite3_errmsg(s->db)), -EIO;
        return 0;
}

int store_prepare(struct store *s)
{
        int r;

        for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
                r = prepare(s, stmts[i].sql, (sqlite3_stmt **)((char *)s + stmts[i].off));
                if (r < 0)
                        return r;
        }
        for (unsigned k = 0; k < STORE_INSERT_ORDERS; k++) {
                char *sql = insert_rows_sql(2u << k);

                r = sql ? prepare(s, sql, &s->st_insert_rows[k]) : -ENOMEM;
                free(sql);
                if (r < 0)
                        return r;
        }
        return 0;
}

void store_finalize(struct store *s)
{
        for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
                sqlite3_stmt **st = (sqlite3_stmt **)((char *)s + stmts[i].off);
                sqlite3_finalize(*st);
                *st = NULL;
        }
        for (unsigned k = 0; k < STORE_INSERT_ORDERS; k++) {
                sqlite3_finalize(s->st_insert_rows[k]);
                s->st_insert_rows[k] = NULL;
        }
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
        if (v)
                sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
        if (v >= 0)
                sqlite3_bind_int64(st, i, v);
        else
                sqlite3_bind_null(st, i);
}

/* Step a statement that returns no rows, then reset it. */
static int step_done(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

/* The ids a query of one job's dependencies returns, into op->unmet. */
static int collect_ids(sqlite3_stmt *st, int64_t id, int64_t **ret, unsigned *ret_n)
{
        int64_t *v = NULL;
        size_t n = 0, cap = 0;
        int rc;

        sqlite3_bind_int64(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (grow_array((void **)&v, &cap, n + 1, sizeof(*v)) < 0) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                v[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
                free(v);
                return sqlite_errno(rc) ?: -EIO;
        }
        free(*ret);
        *ret = v;
        *ret_n = (unsigned)n;
        return 0;
}

/* The first job of j's after that ended failed or canceled: 1 and its id
 * and state, or 0. */
static int deps_failed(struct store *s, int64_t id, int64_t *ret_id, int *ret_state)
{
        sqlite3_stmt *st = s->st_deps_failed;
        int rc;

        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret_id = sqlite3_column_int64(st, 0);
                *ret_state = ringq_state_from_name((const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_reset(st);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

/* Every job of after must exist and be the submitter's (root may name
 * anyone's): -ENOENT or -EPERM with op->id the one that is not. The
 * first that can no longer succeed is noted: the new job starts out
 * canceled for it. */
static int check_after(struct store *s, struct store_op *op)
{
        struct job_rec *j = &op->submit.rec;
        sqlite3_stmt *st = s->st_dep_check;

        for (unsigned i = 0; i < j->nafter; i++) {
                int rc, r = 0;
                sqlite3_bind_int64(st, 1, j->after[i]);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        int state = ringq_state_from_name((const char *)sqlite3_column_text(st, 1));
                        if (j->owner_uid != 0 && sqlite3_column_int64(st, 0) != j->owner_uid)
                                r = -EPERM;
                        else if ((state == RINGQ_STATE_FAILED || state == RINGQ_STATE_CANCELED) &&
                                 !op->submit.dep_failed) {
                                op->submit.dep_failed = j->after[i];
                                op->submit.dep_state = state;
                        }
                } else
                        r = rc == SQLITE_DONE ? -ENOENT : (sqlite_errno(rc) ?: -EIO);
                sqlite3_reset(st);
                if (r < 0) {
                        op->submit.dep_failed = j->after[i];
                        return r;
                }
        }
        return 0;
}

/* A submit's row into st from parameter base + 1 on; canceled (with
 * reason) when what it was to run after failed. */
static void bind_submit(sqlite3_stmt *st, int base, const struct store_op *op, const char *reason)
{
        const struct job_rec *j = &op->submit.rec;

        bind_text(st, base + 1, j->queue);
        sqlite3_bind_int(st, base + 2, j->priority);
        bind_text(st, base + 3, j->argv);
        bind_text(st, base + 4, j->env);
        bind_text(st, base + 5, j->cwd);
        sqlite3_bind_int64(st, base + 6, j->owner_uid);
        sqlite3_bind_int64(st, base + 7, j->owner_gid);
        bind_text(st, base + 8, j->idem_key);
        sqlite3_bind_int64(st, base + 9, j->submitted_at);
        sqlite3_bind_int64(st, base + 10, j->run_at);
        sqlite3_bind_int(st, base + 11, j->max_attempts);
        bind_opt(st, base + 12, j->timeout_ms);
        sqlite3_bind_int64(st, base + 13, j->backoff_ms);
        bind_text(st, base + 14, j->owner_groups);
        bind_opt(st, base + 15, j->umask);
        bind_text(st, base + 16, reason ? "canceled" : "queued");
        bind_text(st, base + 17, reason);
        bind_opt(st, base + 18, reason ? j->submitted_at : -1);
        /* The id the loop gave it (ops.c), so a job can be made ready to
         * start while this commit is on its way. */
        sqlite3_bind_int64(st, base + 19, j->id);
}

/* A submit that is only its row: no key to look up, nothing to run
 * after. A run of them shares INSERTs (insert_rows). */
static bool plain_submit(const struct store_op *op)
{
        return op && op->kind == SOP_SUBMIT && !op->submit.rec.idem_key && op->submit.rec.nafter == 0;
}

/* The run of plain submits from *opp on, 2 or more, by INSERTs of
 * st_insert_rows (the largest that fits each time; a single one left
 * over goes by op_submit). Every op of an INSERT gets its result; *opp
 * moves past those done. Returns the error that ended the transaction
 * (the INSERT's, or one of its rows' when they went alone), else 0. SQLite's per-statement work (opening the table
 * and its indexes, the statement's own journal) is paid once per
 * INSERT instead of once per row: a third of a submit's cost in the
 * store at 64x16. A row the database refuses while the transaction
 * stays open fails its INSERT whole; then each row goes alone, so one
 * submit's failure is its own, as it was before rows were shared. */
static int op_submit(struct store *s, struct store_op *op);

static int insert_rows(struct store *s, struct store_op **opp)
{
        struct store_op *first = *opp, *op;
        unsigned n = 0, k;
        int r, ended = 0;

        for (op = first; plain_submit(op) && n < 2u << (STORE_INSERT_ORDERS - 1); op = op->next)
                n++;
        for (k = STORE_INSERT_ORDERS; k-- > 0 && (2u << k) > n;)
                ;
        n = 2u << k;
        op = first;
        for (unsigned i = 0; i < n; i++, op = op->next)
                bind_submit(s->st_insert_rows[k], (int)i * INSERT_PARAMS, op, NULL);
        r = step_done(s->st_insert_rows[k]);
        for (op = first; n-- > 0; op = op->next) {
                op->result = r < 0 && !sqlite3_get_autocommit(s->db) ? op_submit(s, op) : r;
                if (op->result < 0 && !ended && sqlite3_get_autocommit(s->db))
                        ended = op->result;
        }
        *opp = op;
        return ended;
}

static int op_submit(struct store *s, struct store_op *op)
{
        struct job_rec *j = &op->submit.rec;
        char reason[64];
        sqlite3_stmt *st;
        int rc, r;

        if (j->idem_key) {
                st = s->st_idem;
                sqlite3_bind_int64(st, 1, j->owner_uid);
                bind_text(st, 2, j->queue);
                bind_text(st, 3, j->idem_key);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        op->id = sqlite3_column_int64(st, 0);
                        op->submit.duplicate = true;
                }
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
                if (rc == SQLITE_ROW)
                        return 0;
                if (rc != SQLITE_DONE)
                        return sqlite_errno(rc) ?: -EIO;
        }
        r = check_after(s, op);
        if (r < 0)
                return r;
        if (op->submit.dep_failed)
                snprintf(reason, sizeof(reason), "dependency %lld %s", (long long)op->submit.dep_failed,
                         ringq_state_names[op->submit.dep_state]);
        st = s->st_insert;
        bind_submit(st, 0, op, op->submit.dep_failed ? reason : NULL);
        r = step_done(st);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < j->nafter && r == 0; i++) {
                sqlite3_bind_int64(s->st_dep_insert, 1, j->id);
                sqlite3_bind_int64(s->st_dep_insert, 2, j->after[i]);
                r = step_done(s->st_dep_insert);
        }
        /* What it waits for now, in this transaction: a job of after that
         * ends in a later commit is reported to the loop after this one. */
        if (r == 0 && j->nafter && !op->submit.dep_failed)
                r = collect_ids(s->st_deps_unmet, j->id, &op->unmet, &op->nunmet);
        return r;
}

static int op_start(struct store *s, struct store_op *op)
{
        sqlite3_stmt *st = s->st_start;
        int r;

        sqlite3_bind_int64(st, 1, op->id);
        sqlite3_bind_int64(st, 2, op->start.pid);
        sqlite3_bind_int64(st, 3, op->start.started_at);
        sqlite3_bind_int64(st, 4, op->start.queued_seq);
        r = step_done(st);
        if (r < 0)
                return r;
        /* Canceled (or retried) between the pick and the start. */
        return sqlite3_changes(s->db) == 1 ? 0 : -ESTALE;
}

static int op_finish(struct store *s, struct store_op *op)
{
        sqlite3_stmt *st = s->st_finish;
        int r;

        sqlite3_bind_int64(st, 1, op->id);
        bind_text(st, 2, ringq_state_names[op->finish.state]);
        bind_opt(st, 3, op->finish.exit_code);
        if (op->finish.signal > 0)
                sqlite3_bind_int(st, 4, op->finish.signal);
        bind_text(st, 5, op->finish.reason);
        bind_opt(st, 6, op->finish.finished_at);
        bind_opt(st, 7, op->finish.run_at);
        bind_opt(st, 8, op->finish.cpu_ms);
        bind_opt(st, 9, op->finish.max_rss_kb);
        sqlite3_bind_int(st, 10, op->finish.interrupted);
        sqlite3_bind_int(st, 11, op->finish.interrupted && op->finish.refunded);
        r = step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 1 ? 0 : -ESTALE;
}

/* Read owner and state for cancel/retry; checks the requester. */
static int load_owner(struct store *s, struct store_op *op)
{
        sqlite3_stmt *st = s->st_get_owner;
        int rc, r = 0;

        sqlite3_bind_int64(st, 1, op->id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int64_t owner = sqlite3_column_int64(st, 0);
                op->change.owner_uid = owner;
                op->change.prev_state = ringq_state_from_name((const char *)sqlite3_column_text(st, 1));
                op->change.priority = sqlite3_column_int(st, 2);
                if (op->change.uid != 0 && op->change.uid != owner)
                        r = -EPERM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : (sqlite_errno(rc) ?: -EIO);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

static int op_cancel(struct store *s, struct store_op *op)
{
        int r = load_owner(s, op);

        if (r < 0)
                return r;
        switch (op->change.prev_state) {
        case RINGQ_STATE_QUEUED:
                sqlite3_bind_int64(s->st_cancel, 1, op->id);
                sqlite3_bind_int64(s->st_cancel, 2, op->change.now_ms);
                return step_done(s->st_cancel);
        case RINGQ_STATE_RUNNING:
        case RINGQ_STATE_CANCELED:
                return 0; /* the loop stops a running job; canceled stays so */
        default:
                return -EALREADY;
        }
}

static int op_retry(struct store *s, struct store_op *op)
{
        int r = load_owner(s, op);

        if (r < 0)
                return r;
        if (op->change.prev_state != RINGQ_STATE_FAILED &&
            op->change.prev_state != RINGQ_STATE_CANCELED)
                return -EALREADY;
        /* It would only be canceled again: the job it runs after has to
         * be retried first. */
        r = deps_failed(s, op->id, &op->change.dep_failed, &op->change.dep_state);
        if (r != 0)
                return r < 0 ? r : -EDEADLK;
        sqlite3_bind_int64(s->st_retry, 1, op->id);
        sqlite3_bind_int64(s->st_retry, 2, op->change.now_ms);
        r = step_done(s->st_retry);
        if (r == 0)
                r = collect_ids(s->st_deps_unmet, op->id, &op->unmet, &op->nunmet);
        return r;
}

static int op_dep_cancel(struct store *s, struct store_op *op)
{
        sqlite3_stmt *st = s->st_dep_cancel;
        int r;

        sqlite3_bind_int64(st, 1, op->id);
        bind_text(st, 2, op->dep.reason);
        sqlite3_bind_int64(st, 3, op->dep.now_ms);
        r = step_done(st);
        op->dep.done = r == 0 && sqlite3_changes(s->db) == 1;
        return r;
}

/* Paused state outlives ringqd: it is in the queues table. "*" stands
 * for every queue; resuming every queue clears each one's pause too. */
static int op_queue(struct store *s, struct store_op *op)
{
        int64_t now = now_wall_ms();

        if (!op->queue.queue && !op->queue.paused) {
                sqlite3_bind_int64(s->st_queue_resume_all, 1, now);
                return step_done(s->st_queue_resume_all);
        }
        bind_text(s->st_queue_set, 1, op->queue.queue ? op->queue.queue : "*");
        sqlite3_bind_int(s->st_queue_set, 2, op->queue.paused);
        sqlite3_bind_int64(s->st_queue_set, 3, now);
        return step_done(s->st_queue_set);
}

/* Delete the oldest finished jobs that are past retention or beyond
 * max_finished, at most `limit` of them, and give a few freed pages back
 * to the file system. Small batches keep each transaction short, so
 * submits never wait long behind a prune. Their output files go after
 * the commit (unlink_pruned): a crash in between leaves orphan files,
 * never rows without their files. */
static int op_prune(struct store *s, struct store_op *op)
{
        sqlite3_stmt *scan = s->st_prune_scan;
        unsigned n = 0, limit = MIN(op->prune.limit, 4096u);
        int rc, r = 0;

        op->prune.ids = calloc(limit ? limit : 1, sizeof(int64_t));
        if (!op->prune.ids)
                return -ENOMEM;
        /* One row more than the batch, to learn when the next one is due. */
        sqlite3_bind_int(scan, 1, (int)limit + 1);
        op->prune.next_finished = -1;
        while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
                int64_t fin = sqlite3_column_int64(scan, 1);
                if (n == limit || (fin >= op->prune.before_ms && (int64_t)n >= op->prune.excess)) {
                        op->prune.next_finished = fin;
                        break;
                }
                op->prune.ids[n++] = sqlite3_column_int64(scan, 0);
        }
        sqlite3_reset(scan);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return sqlite_errno(rc) ?: -EIO;
        for (unsigned i = 0; i < n && r == 0; i++) {
                sqlite3_bind_int64(s->st_delete, 1, op->prune.ids[i]);
                r = step_done(s->st_delete);
                if (r == 0) {
                        sqlite3_bind_int64(s->st_deps_delete, 1, op->prune.ids[i]);
                        r = step_done(s->st_deps_delete);
                }
        }
        if (r < 0)
                return r;
        op->prune.deleted = n;
        op->prune.more = n == limit;
        (void)sqlite3_exec(s->db, "PRAGMA incremental_vacuum(256)", NULL, NULL, NULL);
        return 0;
}

static void unlink_pruned(struct store *s, struct store_op *op)
{
        for (unsigned i = 0; i < op->prune.deleted && s->output_dirfd >= 0; i++) {
                char name[48];
                snprintf(name, sizeof(name), "%lld.out", (long long)op->prune.ids[i]);
                (void)unlinkat(s->output_dirfd, name, 0);
                snprintf(name, sizeof(name), "%lld.err", (long long)op->prune.ids[i]);
                (void)unlinkat(s->output_dirfd, name, 0);
        }
}

/* Copy the job as op left it (see struct store_op.row). */
static int read_row(struct store *s, struct store_op *op)
{
        sqlite3_stmt *st = s->st_get;
        int rc, r = 0;

        sqlite3_bind_int64(st, 1, op->id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                op->row = calloc(1, sizeof(*op->row));
                r = op->row ? job_rec_from_row(st, op->row) : -ENOMEM;
                sqlite3_reset(st);
                if (r == 0)
                        r = job_rec_read_after(s->st_deps, op->row);
                if (r < 0 && op->row) {
                        job_rec_done(op->row);
                        free(op->row);
                        op->row = NULL;
                }
                return r;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : (sqlite_errno(rc) ?: -EIO);
        sqlite3_reset(st);
        return r;
}

static int run_op(struct store *s, struct store_op *op)
{
        int r;

        switch (op->kind) {
        case SOP_SUBMIT:
                return op_submit(s, op);
        case SOP_START:
                return op_start(s, op);
        case SOP_FINISH:
                r = op_finish(s, op);
                break;
        case SOP_CANCEL:
                r = op_cancel(s, op);
                break;
        case SOP_RETRY:
                r = op_retry(s, op);
                break;
        case SOP_PRUNE:
                return op_prune(s, op);
        case SOP_QUEUE:
                return op_queue(s, op);
        case SOP_DEP_CANCEL:
                r = op_dep_cancel(s, op);
                if (r < 0 || !op->dep.done)
                        return r;
                break;
        default:
                return -EINVAL;
        }
        /* Always, even when nobody waits yet: a wait that parks while
         * this op is in flight is answered with this copy, and a read
         * after the commit could already show what a later op of the
         * same or a later group did (a retry: "queued"). Without the
         * copy (out of memory) the reply falls back to that read; not
         * worth failing the op for. */
        if (r == 0)
                (void)read_row(s, op);
        return r;
}

/* Run one batch in one transaction. On a failure that undoes the
 * transaction, client ops get the error and state-machine ops are moved
 * to be retried by the caller. Returns 0 if the batch committed. */
/* Ops whose commit need not wait for an fsync: what ringqd records of
 * a job's life by itself, never the answer to a client's request.
 *  - A start (with its pid) must survive a crash of ringqd, which kills
 *    no process but ringqd's threads: a written WAL frame does. After a
 *    crash of the host the job's processes are gone too, and it is
 *    recovered from its last durable state, queued, to run again:
 *    so a start asks for no fsync at all, and is made durable by
 *    whichever comes next (its end's, a submit's).
 *  - An end is committed before it is reported, and durable one
 *    trailing fsync later (store_take_unsynced). A power cut in between
 *    takes the job back to queued or running, and it runs again: what
 *    at-least-once already allows; it is never lost.
 *  - A dependency's cancel cascade follows an end, and is redone from
 *    the end's durable state at the next start if it is lost. */
static bool relaxed_kind(enum store_op_kind k)
{
        return k == SOP_START || k == SOP_FINISH || k == SOP_DEP_CANCEL;
}

/* An early batch (durability=full): submits, at least one of a job that
 * could start at once, and nothing but the relaxed kinds beside them. It
 * commits without an fsync and goes back to the loop at once, so the job
 * starts while the store thread fsyncs the WAL; the submits are answered
 * only when the SOP_SYNCED that follows says the fsync is done (ops.c).
 * Nothing acknowledged is less durable than with a synced commit: the
 * fsync of the WAL is what synchronous = FULL would have done at the
 * commit. What changes is only that a job may start, or even end, before
 * its submit is durable; a power cut in between loses the job and its
 * run, and its submitter never had an answer. Its SOP_SYNCED is
 * allocated before the commit, so nothing can fail after it. */
static bool early_batch(struct store *s, const struct store_op *batch)
{
        bool any = false;

        if (s->durability != DURABILITY_FULL || s->wal_fd < 0)
                return false;
        for (const struct store_op *op = batch; op; op = op->next) {
                if (op->kind == SOP_SUBMIT)
                        any = any || op->submit.early;
                else if (!relaxed_kind(op->kind))
                        return false;
        }
        if (any && !s->synced_spare)
                s->synced_spare = calloc(1, sizeof(*s->synced_spare));
        return any && s->synced_spare;
}

/* A relaxed batch asks for the trailing fsync unless it only started
 * jobs. */
static int run_batch(struct store *s, struct store_op *batch, int64_t busy_ms, bool *ret_relaxed,
                     bool *ret_wants_sync, bool *ret_early)
{
        struct store_op *op;
        bool relaxed = s->durability == DURABILITY_FULL && s->wal_fd >= 0, wants_sync = false;
        bool early = early_batch(s, batch), normal;
        int r = 0;

        for (op = batch; relaxed && op; op = op->next) {
                relaxed = relaxed_kind(op->kind);
                wants_sync = wants_sync || op->kind != SOP_START;
        }
        *ret_relaxed = relaxed;
        *ret_wants_sync = relaxed && wants_sync;
        *ret_early = early && !relaxed;
        normal = relaxed || *ret_early;
        /* Switched only when the kind of batch changes: a stream of job
         * starts and ends parses no pragma. */
        if (normal != s->sync_relaxed &&
            sqlite3_exec(s->db, normal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", NULL, NULL,
                         NULL) == SQLITE_OK)
                s->sync_relaxed = normal;
        /* Never commit a client's batch relaxed: if FULL could not be set
         * back, the batch fails and is answered so. */
        if (!normal && s->sync_relaxed)
                r = -EIO;
        sqlite3_busy_timeout(s->db, (int)busy_ms);
        if (r == 0)
                r = step_done(s->st_begin);
        for (op = batch; r == 0 && op;) {
                if (plain_submit(op) && plain_submit(op->next)) {
                        r = insert_rows(s, &op);
                        continue;
                }
                op->result = run_op(s, op);
                /* Errors like SQLITE_FULL or IOERR roll the whole
                 * transaction back; per-op errors leave it open. */
                if (op->result < 0 && sqlite3_get_autocommit(s->db))
                        r = op->result;
                op = op->next;
        }
        if (r == 0)
                r = step_done(s->st_commit);
        if (r == 0)
                return 0;
        if (!sqlite3_get_autocommit(s->db))
                (void)step_done(s->st_rollback);
        log_debug("<store> batch failed: %s", strerror(-r));
        for (op = batch; op; op = op->next) {
                op->result = r;
                op->id = op->kind == SOP_SUBMIT ? 0 : op->id;
                if (op->kind == SOP_SUBMIT)
                        op->submit.duplicate = false;
                if (op->kind == SOP_PRUNE)
                        op->prune.deleted = 0;
                if (op->kind == SOP_DEP_CANCEL)
                        op->dep.done = false;
                free(op->unmet);
                op->unmet = NULL;
                op->nunmet = 0;
                if (op->row) {
                        job_rec_done(op->row);
                        free(op->row);
                        op->row = NULL;
                }
        }
        return r;
}

/* A completion posted into the loop's ring. A kernel that refuses it
 * for that ring gets the eventfd from then on; a full completion queue
 * only this once. */
static int ring_wake(struct store *s)
{
        struct io_uring_sqe *sqe = io_uring_get_sqe(&s->wake_ring);
        struct io_uring_cqe *cqe;
        int r;

        if (!sqe)
                return -EBUSY; /* never: each wake-up reaps its completion */
        io_uring_prep_msg_ring(sqe, s->waker.ring_fd, 0, s->waker.ring_data, 0);
        r = io_uring_submit_and_wait(&s->wake_ring, 1);
        if (r >= 0)
                r = io_uring_peek_cqe(&s->wake_ring, &cqe);
        if (r >= 0) {
                r = cqe->res;
                io_uring_cqe_seen(&s->wake_ring, cqe);
        }
        if (r < 0 && r != -EOVERFLOW && r != -EINTR) {
                s->wake_by_ring = false;
                log_info("<store> cannot post to the loop's ring (%s): waking it through an eventfd", strerror(-r));
        }
        return r < 0 ? r : 0;
}

/* Called and returns with the lock held. */
static void wake_loop(struct store *s)
{
        uint64_t one = 1;

        /* The loop has not taken what came before yet: it will take
         * this with it. */
        if (s->loop_woken)
                return;
        s->loop_woken = true;
        pthread_mutex_unlock(&s->lock);
        if (!s->wake_by_ring || ring_wake(s) < 0)
                (void)!write(s->waker.efd, &one, sizeof(one));
        pthread_mutex_lock(&s->lock);
}

/* The fsync an early batch's commit left out, then its SOP_SYNCED, whose
 * result is the fsync's. After a failed one the frames may be on disk or
 * not: the submits are answered with the error, and the WAL is owed a
 * good fsync (walsync.h) for what else it holds. Called with the lock
 * held. */
static void sync_early_batch(struct store *s)
{
        struct store_op *op = TAKE_PTR(s->synced_spare);
        int r;

        pthread_mutex_unlock(&s->lock);
        r = fdatasync(s->wal_fd) < 0 ? -errno : 0;
        op->kind = SOP_SYNCED;
        op->result = r;
        op->synced.seq = s->early_seq;
        pthread_mutex_lock(&s->lock);
        /* Every frame written before it is durable now, the relaxed
         * commits' too. */
        s->unsynced = r < 0;
        *s->done_tail = op;
        s->done_tail = &op->next;
        wake_loop(s);
}

void *store_thread_main(void *arg)
{
        struct store *s = arg;
        int64_t retry_delay_ms = 0;
        unsigned failures_at_stop = 0;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct store_op *batch, **tail, *retry = NULL, **retry_tail = &retry;
                struct store_op *ok = NULL, **ok_tail = &ok;
                int64_t busy_ms;
                unsigned n = 0;
                bool relaxed, wants_sync, early;
                int r;

                while (!s->todo && !s->stop) {
                        __atomic_store_n(&s->idle, true, __ATOMIC_RELAXED);
                        pthread_cond_wait(&s->cond, &s->lock);
                }
                __atomic_store_n(&s->idle, false, __ATOMIC_RELAXED);
                if (!s->todo)
                        break;
                if (retry_delay_ms && !s->stop) {
                        /* The last batch failed: wait before retrying, but
                         * wake for new work so clients get a fast answer. */
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_nsec += (retry_delay_ms % 1000) * 1000000;
                        ts.tv_sec += retry_delay_ms / 1000 + ts.tv_nsec / 1000000000;
                        ts.tv_nsec %= 1000000000;
                        (void)pthread_cond_timedwait(&s->cond, &s->lock, &ts);
                }
                batch = s->todo;
                for (tail = &s->todo; *tail && n < s->max_batch; tail = &(*tail)->next)
                        n++;
                s->todo = *tail;
                if (!s->todo)
                        s->todo_tail = &s->todo;
                *tail = NULL;
                busy_ms = s->busy_timeout_ms;
                pthread_mutex_unlock(&s->lock);

                r = run_batch(s, batch, busy_ms, &relaxed, &wants_sync, &early);
                early = early && r == 0;
                /* Split: finished ops go back to the loop; state-machine
                 * ops of a failed batch are tried again. */
                while (batch) {
                        struct store_op *op = batch;
                        batch = op->next;
                        op->next = NULL;
                        if (r < 0 && store_op_retried(op->kind) && failures_at_stop < 3) {
                                *retry_tail = op;
                                retry_tail = &op->next;
                        } else {
                                *ok_tail = op;
                                ok_tail = &op->next;
                        }
                }
                if (r == 0) {
                        for (struct store_op *op = ok; op; op = op->next)
                                if (op->kind == SOP_PRUNE && op->result == 0)
                                        unlink_pruned(s, op);
                }
                if (early) {
                        s->early_seq++;
                        for (struct store_op *op = ok; op; op = op->next)
                                if (op->kind == SOP_SUBMIT)
                                        op->sync_seq = s->early_seq;
                }
                retry_delay_ms = r < 0 ? CLAMP(retry_delay_ms * 2, 50, 2000) : 0;

                pthread_mutex_lock(&s->lock);
                if (r < 0 && s->stop)
                        failures_at_stop++;
                /* An fsync'd commit makes every frame before it durable. */
                if (r == 0 && s->durability == DURABILITY_FULL)
                        s->unsynced = relaxed && (s->unsynced || wants_sync);
                if (retry) {
                        *retry_tail = s->todo;
                        if (!s->todo)
                                s->todo_tail = retry_tail;
                        s->todo = retry;
                }
                if (ok) {
                        *s->done_tail = ok;
                        s->done_tail = ok_tail;
                }
                if (r == 0)
                        s->info.commits++;
                /* The SOP_SYNCED to come is in flight from now: the loop
                 * is not idle (a shutdown or re-exec waits) until it has
                 * answered the submits it releases. */
                if (early)
                        s->inflight++;
                /* Woken after the unlock: the loop takes the lock
                 * first thing (store_take_done), and would sleep on it
                 * if the write came before. */
                if (ok)
                        wake_loop(s);
                if (early)
                        sync_early_batch(s);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* MSG_RING (Linux 5.18) on this kernel, and a ring of the store's own to
 * send it from. */
static void make_wake_ring(struct store *s)
{
        struct io_uring_probe *p;

        if (io_uring_queue_init(2, &s->wake_ring, 0) < 0)
                return;
        s->wake_ring_made = true;
        p = io_uring_get_probe_ring(&s->wake_ring);
        s->wake_by_ring = p && io_uring_opcode_supported(p, IORING_OP_MSG_RING);
        io_uring_free_probe(p);
}

int store_start(struct store *s, const struct store_waker *w, int output_dirfd)
{
        int r = store_prepare(s);

        if (r < 0)
                return r;
        s->waker = *w;
        if (s->waker.ring_fd >= 0 && !s->wake_ring_made)
                make_wake_ring(s);
        log_debug("<store> wakes the loop through %s", s->wake_by_ring ? "its ring" : "an eventfd");
        s->output_dirfd = output_dirfd;
        if (s->durability == DURABILITY_FULL) {
                /* Recovery and the schema checks have used the database
                 * in WAL mode by now, so the file exists; never create
                 * it here. Without it every commit is fsynced. */
                _cleanup_free_ char *wal = NULL;
                if (asprintf(&wal, "%s-wal", s->path) < 0)
                        return -ENOMEM;
                s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (s->wal_fd < 0)
                        log_warning_errno(-errno, "%s: cannot open it for trailing fsyncs; every commit is fsynced", wal);
        }
        r = -pthread_create(&s->thread, NULL, store_thread_main, s);
        if (r < 0)
                return r;
        s->started = true;
        return 0;
}

void store_push(struct store *s, struct store_op *op)
{
        op->next = NULL;
        *s->out_tail = op;
        s->out_tail = &op->next;
        s->out_n++;
}

void store_flush(struct store *s)
{
        if (!s->out)
                return;
        pthread_mutex_lock(&s->lock);
        *s->todo_tail = s->out;
        s->todo_tail = s->out_tail;
        s->inflight += s->out_n;
        pthread_mutex_unlock(&s->lock);
        /* After the unlock, or the woken thread's first act is to sleep
         * on the lock this thread still holds. It cannot miss the
         * signal: it checks todo under the lock before it waits. */
        pthread_cond_signal(&s->cond);
        s->out = NULL;
        s->out_tail = &s->out;
        s->out_n = 0;
}

void store_flush_if_idle(struct store *s)
{
        if (s->out && __atomic_load_n(&s->idle, __ATOMIC_RELAXED))
                store_flush(s);
}

struct store_op *store_take_done(struct store *s)
{
        struct store_op *list, *op;

        pthread_mutex_lock(&s->lock);
        list = s->done;
        s->done = NULL;
        s->done_tail = &s->done;
        s->loop_woken = false;
        for (op = list; op; op = op->next)
                s->inflight--;
        pthread_mutex_unlock(&s->lock);
        return list;
}

bool store_take_unsynced(struct store *s)
{
        bool u;

        pthread_mutex_lock(&s->lock);
        u = s->unsynced;
        s->unsynced = false;
        pthread_mutex_unlock(&s->lock);
        return u;
}

int store_wal_fd(struct store *s)
{
        return s->wal_fd;
}

unsigned store_inflight(struct store *s)
{
        unsigned n;

        pthread_mutex_lock(&s->lock);
        n = s->inflight;
        pthread_mutex_unlock(&s->lock);
        return n + s->out_n;
}

bool store_running(struct store *s)
{
        return s->started;
}

/* A re-exec (reexec.h): the thread finishes what it holds and ends;
 * the connection stays open (the exec closes it, or the thread comes
 * back on it if the exec fails). */
void store_pause(struct store *s)
{
        if (!s->started)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        s->started = false;
        s->stop = false;
}

int store_resume(struct store *s)
{
        int r = -pthread_create(&s->thread, NULL, store_thread_main, s);

        if (r == 0)
                s->started = true;
        return r;
}
