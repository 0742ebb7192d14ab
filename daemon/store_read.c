/* The loop's read connection. WAL lets it read the last committed state
 * while the store thread (or anyone) writes; point lookups and bounded
 * list pages keep each call short enough to run on the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringq/protocol.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

struct reader {
        sqlite3 *db;
        sqlite3_stmt *get, *after;
};

/* Longest a list query may run on the loop, in SQLite VM steps
 * (checked every 1000): a filter that matches rarely cannot make the
 * loop scan a whole table. */
#define LIST_STEP_BUDGET 2000

static char *col_text(sqlite3_stmt *st, int i, bool *oom)
{
        const unsigned char *t = sqlite3_column_text(st, i);
        char *s;

        if (!t)
                return NULL;
        s = strdup((const char *)t);
        if (!s)
                *oom = true;
        return s;
}

static int64_t col_opt(sqlite3_stmt *st, int i)
{
        return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

int job_rec_read_after(sqlite3_stmt *st, struct job_rec *j)
{
        size_t cap = 0, n = 0;
        int rc;

        sqlite3_bind_int64(st, 1, j->id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (grow_array((void **)&j->after, &cap, n + 1, sizeof(*j->after)) < 0) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                j->after[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        j->nafter = (unsigned)n;
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int job_rec_from_row(sqlite3_stmt *st, struct job_rec *j)
{
        bool oom = false;

        *j = (struct job_rec){
                .id = sqlite3_column_int64(st, 0),
                .queue = col_text(st, 1, &oom),
                .state = ringq_state_from_name((const char *)sqlite3_column_text(st, 2)),
                .priority = sqlite3_column_int(st, 3),
                .argv = col_text(st, 4, &oom),
                .env = col_text(st, 5, &oom),
                .cwd = col_text(st, 6, &oom),
                .owner_uid = sqlite3_column_int64(st, 7),
                .owner_gid = sqlite3_column_int64(st, 8),
                .idem_key = col_text(st, 9, &oom),
                .submitted_at = col_opt(st, 10),
                .run_at = col_opt(st, 11),
                .started_at = col_opt(st, 12),
                .finished_at = col_opt(st, 13),
                .attempts = sqlite3_column_int(st, 14),
                .max_attempts = sqlite3_column_int(st, 15),
                .timeout_ms = col_opt(st, 16),
                .backoff_ms = sqlite3_column_int64(st, 17),
                .exit_code = (int)col_opt(st, 18),
                .signal = (int)col_opt(st, 19),
                .reason = col_text(st, 20, &oom),
                .pid = col_opt(st, 21),
                .owner_groups = col_text(st, 22, &oom),
                .umask = (int)col_opt(st, 23),
                .cpu_ms = col_opt(st, 24),
                .max_rss_kb = col_opt(st, 25),
                .queued_seq = sqlite3_column_int64(st, 26),
                .interruptions = sqlite3_column_int(st, 27),
        };
        if (oom) {
                job_rec_done(j);
                return -ENOMEM;
        }
        return 0;
}

static int progress(void *ud)
{
        unsigned *budget = ud;
        return (*budget)-- == 0;
}

int reader_open(const char *path, struct reader **ret)
{
        struct reader *r = calloc(1, sizeof(*r));
        int rc;

        if (!r)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(r->db, "PRAGMA query_only = 1; PRAGMA cache_size = -2048", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(r->db, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1", -1,
                                        SQLITE_PREPARE_PERSISTENT, &r->get, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(r->db, JOB_AFTER_SQL, -1, SQLITE_PREPARE_PERSISTENT, &r->after, NULL);
        if (rc != SQLITE_OK) {
                reader_close(r);
                return sqlite_errno(rc) ?: -EIO;
        }
        /* A WAL reader only waits in rare corner cases (another
         * connection recovering the WAL index); keep even that short. */
        sqlite3_busy_timeout(r->db, 100);
        *ret = r;
        return 0;
}

void reader_close(struct reader *r)
{
        if (!r)
                return;
        sqlite3_finalize(r->get);
        sqlite3_finalize(r->after);
        sqlite3_close_v2(r->db);
        free(r);
}

int reader_get_row(struct reader *r, int64_t id, struct job_rec *ret)
{
        int rc, e;

        sqlite3_bind_int64(r->get, 1, id);
        rc = sqlite3_step(r->get);
        if (rc == SQLITE_ROW)
                e = job_rec_from_row(r->get, ret);
        else
                e = rc == SQLITE_DONE ? -ENOENT : (sqlite_errno(rc) ?: -EIO);
        sqlite3_reset(r->get);
        return e;
}

int reader_get(struct reader *r, int64_t id, struct job_rec *ret)
{
        int e = reader_get_row(r, id, ret);

        if (e == 0) {
                e = job_rec_read_after(r->after, ret);
                if (e < 0)
                        job_rec_done(ret);
        }
        return e;
}

/* The WHERE clause of a list filter. Numbered parameters: ?1 after_id,
 * ?2 state, ?3 queue, ?4 owner, ?5 limit, ?6 before_id; the ones not
 * used are simply left out of the text. */
static void filter_where(char *buf, size_t n, const struct list_filter *f)
{
        snprintf(buf, n, "id > ?1%s%s%s%s", f->before_id > 0 ? " AND id < ?6" : "",
                 f->state >= 0 ? " AND state = ?2" : "", f->queue ? " AND queue = ?3" : "",
                 f->owner_uid >= 0 ? " AND owner_uid = ?4" : "");
}

static void filter_bind(sqlite3_stmt *st, const struct list_filter *f, unsigned limit)
{
        sqlite3_bind_int64(st, 1, f->after_id);
        if (f->state >= 0)
                sqlite3_bind_text(st, 2, ringq_state_names[f->state], -1, SQLITE_STATIC);
        if (f->queue)
                sqlite3_bind_text(st, 3, f->queue, -1, SQLITE_STATIC);
        if (f->owner_uid >= 0)
                sqlite3_bind_int64(st, 4, f->owner_uid);
        sqlite3_bind_int(st, 5, (int)limit);
        if (f->before_id > 0)
                sqlite3_bind_int64(st, 6, f->before_id);
}

int reader_list(struct reader *r, const struct list_filter *f,
                int (*fn)(void *ud, struct job_rec *j), void *ud)
{
        char where[160], sql[512];
        sqlite3_stmt *st = NULL;
        unsigned budget = LIST_STEP_BUDGET;
        int rc, e = 0;

        filter_where(where, sizeof(where), f);
        snprintf(sql, sizeof(sql), "SELECT " JOB_COLUMNS " FROM jobs WHERE %s ORDER BY id%s LIMIT ?5", where,
                 f->desc ? " DESC" : "");
        rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        filter_bind(st, f, f->limit);
        sqlite3_progress_handler(r->db, 1000, progress, &budget);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct job_rec j;
                e = job_rec_from_row(st, &j);
                if (e == 0)
                        e = job_rec_read_after(r->after, &j);
                if (e == 0)
                        e = fn(ud, &j);
                job_rec_done(&j);
                if (e < 0)
                        break;
        }
        sqlite3_progress_handler(r->db, 0, NULL, NULL);
        sqlite3_finalize(st);
        if (e < 0)
                return e;
        if (rc == SQLITE_INTERRUPT)
                return -ETIME;
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int reader_count(struct reader *r, const struct list_filter *f, unsigned cap, int64_t *ret)
{
        char where[160], sql[512];
        sqlite3_stmt *st = NULL;
        /* A count is a courtesy to the reader of a page: it gets a
         * quarter of what the page itself may take. */
        unsigned budget = LIST_STEP_BUDGET / 4;
        int rc;

        filter_where(where, sizeof(where), f);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE %s LIMIT ?5)", where);
        rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        filter_bind(st, f, cap);
        sqlite3_progress_handler(r->db, 1000, progress, &budget);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_progress_handler(r->db, 0, NULL, NULL);
        sqlite3_finalize(st);
        if (rc == SQLITE_INTERRUPT)
                return -ETIME;
        return rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
}
