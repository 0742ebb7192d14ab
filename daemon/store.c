/* Opening the database, its schema, and the start-up work that runs
 * before the store thread: recovery of interrupted jobs and the dispatch
 * index rebuild. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "ringq/protocol.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/* The columns of version 1 after id, and what is made on jobs besides
 * jobs_idem: written once, for version 1 and for the table made again
 * at version 5. */
#define JOBS_COLUMNS_V1 \
        " queue TEXT NOT NULL DEFAULT 'default'," \
        " state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','canceled'))," \
        " priority INTEGER NOT NULL DEFAULT 0," \
        " argv TEXT NOT NULL," \
        " env TEXT," \
        " cwd TEXT NOT NULL DEFAULT '/'," \
        " owner_uid INTEGER NOT NULL," \
        " owner_gid INTEGER NOT NULL," \
        " idem_key TEXT," \
        " submitted_at INTEGER NOT NULL," \
        " run_at INTEGER NOT NULL," \
        " started_at INTEGER," \
        " finished_at INTEGER," \
        " attempts INTEGER NOT NULL DEFAULT 0," \
        " max_attempts INTEGER NOT NULL DEFAULT 1," \
        " timeout_ms INTEGER," \
        " backoff_ms INTEGER NOT NULL DEFAULT 0," \
        " exit_code INTEGER," \
        " signal INTEGER," \
        " reason TEXT," \
        " pid INTEGER"

#define JOBS_INDEXES_AND_VIEW \
        /* list by state, recovery of running jobs, and the dispatch \
         * index rebuild: the 'queued' range holds queued rows only, so \
         * finished jobs never slow the rebuild. */ \
        "CREATE INDEX jobs_state ON jobs(state, id);" \
        "CREATE INDEX jobs_queue ON jobs(queue, id);" \
        /* Retention pruning walks finished rows oldest first. */ \
        "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;" \
        "CREATE VIEW queue_summary AS" \
        " SELECT queue, state, count(*) AS jobs FROM jobs GROUP BY queue, state;"

static const char schema_v1[] =
        "CREATE TABLE jobs ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT," JOBS_COLUMNS_V1 ");"
        "CREATE UNIQUE INDEX jobs_idem ON jobs(queue, idem_key) WHERE idem_key IS NOT NULL;"
        JOBS_INDEXES_AND_VIEW
        "PRAGMA user_version = 1;";

/* Each step takes a database of version N-1 to N inside the caller's
 * transaction. A new database is made as version 1 and then taken
 * through every step, so a fresh one and an upgraded one cannot differ. */
static const char *const migrations[] = {
        /* 2: one ringqd shared by many users. Idempotency keys belong to
         * their owner (another user's key is invisible); a job keeps the
         * groups and umask its submitter had, and records what it used.
         * ADD COLUMN does not rewrite the table, so this is quick on a
         * large queue. */
        "ALTER TABLE jobs ADD COLUMN owner_groups TEXT;"
        "ALTER TABLE jobs ADD COLUMN umask INTEGER;"
        "ALTER TABLE jobs ADD COLUMN cpu_ms INTEGER;"
        "ALTER TABLE jobs ADD COLUMN max_rss_kb INTEGER;"
        "DROP INDEX jobs_idem;"
        "CREATE UNIQUE INDEX jobs_idem ON jobs(owner_uid, queue, idem_key) WHERE idem_key IS NOT NULL;"
        "PRAGMA user_version = 2;",
        /* 3: queues and dependencies. queued_seq counts a job's entries
         * into the queue (the dispatch index tells a current entry from
         * a stale one by it); queues keeps what an operator set (paused);
         * job_deps says which jobs a job runs after. */
        "ALTER TABLE jobs ADD COLUMN queued_seq INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, changed_at INTEGER)"
        " WITHOUT ROWID;"
        "CREATE TABLE job_deps (job_id INTEGER NOT NULL, after_id INTEGER NOT NULL,"
        " PRIMARY KEY (job_id, after_id)) WITHOUT ROWID;"
        "CREATE INDEX job_deps_after ON job_deps(after_id);"
        "PRAGMA user_version = 3;",
        /* 4: interruptions counts a job's runs cut short by ringqd
         * stopping or crashing, which give their attempt back up to
         * max_interruptions. A job of an older version starts at 0. */
        ("ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;"
         "PRAGMA user_version = 4;"),
        /* 5: jobs without AUTOINCREMENT. ringqd gives ids itself, so
         * keeping sqlite_sequence cost two more b-tree steps per INSERT
         * and one more WAL page per commit, for nothing but one fact: the
         * largest id a deleted row had. jobs_id_floor keeps that, written
         * by a trigger only when the newest row goes (pruning removes the
         * oldest). ALTER TABLE cannot drop AUTOINCREMENT: the table is
         * made again and the rows copied, once. */
        ("CREATE TABLE jobs_v5 ("
         " id INTEGER PRIMARY KEY," JOBS_COLUMNS_V1 ","
         " owner_groups TEXT,"
         " umask INTEGER,"
         " cpu_ms INTEGER,"
         " max_rss_kb INTEGER,"
         " queued_seq INTEGER NOT NULL DEFAULT 0,"
         " interruptions INTEGER NOT NULL DEFAULT 0);"
         "INSERT INTO jobs_v5 SELECT * FROM jobs;"
         "CREATE TABLE jobs_id_floor (id INTEGER NOT NULL);"
         "INSERT INTO jobs_id_floor SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0);"
         "DROP VIEW queue_summary;"
         "DROP TABLE jobs;"
         "ALTER TABLE jobs_v5 RENAME TO jobs;"
         "CREATE UNIQUE INDEX jobs_idem ON jobs(owner_uid, queue, idem_key) WHERE idem_key IS NOT NULL;"
         JOBS_INDEXES_AND_VIEW
         /* After each row: the newest row deleted leaves a smaller
          * max(id) behind; whichever order a DELETE takes its rows in,
          * the floor ends at the largest id it removed above the rest. */
         "CREATE TRIGGER jobs_id_floor_keep AFTER DELETE ON jobs"
         " WHEN OLD.id > coalesce((SELECT max(id) FROM jobs), 0)"
         " AND OLD.id > (SELECT coalesce(max(id), 0) FROM jobs_id_floor)"
         " BEGIN DELETE FROM jobs_id_floor; INSERT INTO jobs_id_floor VALUES (OLD.id); END;"
         "PRAGMA user_version = 5;"),
};
_Static_assert(ELEMENTSOF(migrations) == STORE_SCHEMA_VERSION - 1, "a step in migrations[] for each version after 1");

int sqlite_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}


static int exec1(sqlite3 *db, const char *sql, char **ret_err, const char *path)
{
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

        if (rc != SQLITE_OK) {
                set_error(ret_err, sqlite_errno(rc), "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return sqlite_errno(rc) ?: -EIO;
        }
        return 0;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *ret)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE)
                rc = SQLITE_EMPTY;
        sqlite3_finalize(st);
        return rc;
}

/* An upgrade that copies the jobs table (to 5) takes about as long as
 * reading and writing the whole database: tens of seconds for a large
 * one. Under systemd that must not look like a start that hangs, nor,
 * in a re-exec, like a loop that stopped: SQLite calls this every few
 * thousand of its steps, and every few seconds it extends the start
 * timeout, pings the watchdog (SQLite is making progress: this is
 * called from its steps) and says what ringqd is doing. */
struct upgrade_watch {
        int64_t from, started_ms, told_ms;
};

#define UPGRADE_TELL_MS 5000
#define UPGRADE_EXTEND_USEC 30000000ULL

static int upgrade_progress(void *ud)
{
        struct upgrade_watch *w = ud;
        int64_t now = now_mono_ms();

        if (w->told_ms && now - w->told_ms < UPGRADE_TELL_MS)
                return 0;
        w->told_ms = now;
        (void)sd_notifyf(0,
                         "EXTEND_TIMEOUT_USEC=%llu\nWATCHDOG=1\n"
                         "STATUS=upgrading the database schema from version %lld to %d (%llds)",
                         UPGRADE_EXTEND_USEC, (long long)w->from, STORE_SCHEMA_VERSION,
                         (long long)((now - w->started_ms) / 1000));
        return 0;
}

static int check_schema(sqlite3 *db, const char *path, int *ret_from, char **ret_err)
{
        struct upgrade_watch watch = { 0 };
        int64_t version = 0, tables = 0;
        int rc, r;

        rc = query_int(db, "PRAGMA user_version", &version);
        if (rc == SQLITE_OK)
                rc = query_int(db, "SELECT count(*) FROM sqlite_master", &tables);
        if (rc != SQLITE_OK)
                return set_error(ret_err, sqlite_errno(rc) ?: -EIO, "%s: cannot read the database: %s",
                            path, sqlite3_errstr(rc));
        *ret_from = (int)version;
        if (version > STORE_SCHEMA_VERSION)
                return set_error(ret_err, -EPROTO,
                            "%s: schema version %lld is newer than this ringqd understands (%d); refusing to touch it",
                            path, (long long)version, STORE_SCHEMA_VERSION);
        if (version == 0 && tables > 0)
                return set_error(ret_err, -EPROTO,
                            "%s: not a ringq database (it has tables but no schema version); refusing to touch it", path);
        if (version == STORE_SCHEMA_VERSION)
                return 0;
        /* auto_vacuum must be set before the first table exists; it lets
         * the store give freed pages back in small steps. */
        if (version == 0) {
                r = exec1(db, "PRAGMA auto_vacuum = INCREMENTAL", ret_err, path);
                if (r < 0)
                        return r;
        }
        /* Creation and every step in one transaction: a crash or a full
         * disk half-way leaves the database as it was. */
        r = exec1(db, "BEGIN IMMEDIATE", ret_err, path);
        if (r < 0)
                return r;
        if (version > 0) {
                watch.from = version;
                watch.started_ms = now_mono_ms();
                (void)upgrade_progress(&watch);
                sqlite3_progress_handler(db, 10000, upgrade_progress, &watch);
        }
        if (version == 0)
                r = exec1(db, schema_v1, ret_err, path);
        for (int64_t v = MAX(version, 1); r == 0 && v < STORE_SCHEMA_VERSION; v++)
                r = exec1(db, migrations[v - 1], ret_err, path);
        if (r == 0)
                r = exec1(db, "COMMIT", ret_err, path);
        sqlite3_progress_handler(db, 0, NULL, NULL);
        if (r < 0) {
                (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                if (version > 0 && ret_err && *ret_err) {
                        char *why = *ret_err;

                        *ret_err = NULL;
                        set_error(ret_err, r,
                                  "%s; the upgrade of the schema from version %lld to %d was rolled back, the "
                                  "database is as it was%s",
                                  why, (long long)version, STORE_SCHEMA_VERSION,
                                  r == -ENOSPC && version < 5 ? " (the step to version 5 copies the jobs table "
                                                                "and needs about as much free space as the "
                                                                "database takes)"
                                                              : "");
                        free(why);
                }
                return r;
        }
        if (version > 0)
                log_notice("%s: schema upgraded from version %lld to %d", path, (long long)version,
                           STORE_SCHEMA_VERSION);
        return 0;
}

/* Before SQLite opens it: a file that is not an SQLite database, or one
 * shorter than its own header says (cut off by a full disk or a bad
 * copy), is refused with a clear reason rather than served until some
 * query happens on a missing page. */
static int check_file(const char *path, char **ret_err)
{
        unsigned char h[100];
        struct stat st;
        uint64_t page, pages;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : set_error(ret_err, -errno, "%s: %s", path, strerror(errno));
        n = read(fd, h, sizeof(h));
        if (fstat(fd, &st) < 0)
                n = -1;
        close(fd);
        if (n == 0)
                return 0; /* empty: SQLite makes it a database */
        if (n != sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0)
                return set_error(ret_err, -EBADMSG, "%s: not an SQLite database; refusing to touch it", path);
        page = (uint64_t)h[16] << 8 | h[17];
        if (page == 1)
                page = 65536;
        pages = (uint64_t)h[28] << 24 | (uint64_t)h[29] << 16 | (uint64_t)h[30] << 8 | h[31];
        /* The in-header size counts only when it is current (SQLite's
         * rule: change counter == version-valid-for). */
        if (memcmp(h + 24, h + 92, 4) == 0 && pages && (uint64_t)st.st_size < page * pages)
                return set_error(ret_err, -EBADMSG,
                            "%s: truncated: %lld bytes where its header says %llu; refusing to touch it", path,
                            (long long)st.st_size, (unsigned long long)(page * pages));
        return 0;
}

int store_open(const char *path, const struct config *cfg, struct store **ret, char **ret_err)
{
        struct store *s;
        char *mode = NULL;
        int rc, r;

        *ret_err = NULL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        s->durability = cfg->durability;
        s->busy_timeout_ms = cfg->busy_timeout_ms;
        s->max_batch = (unsigned)cfg->max_batch;
        /* Recovery happens once, at open: the bound as ringqd starts. */
        s->max_interruptions = cfg->max_interruptions;
        s->waker.efd = s->waker.ring_fd = -1;
        s->wal_fd = -1;
        s->output_dirfd = -1;
        s->out_tail = &s->out;
        s->todo_tail = &s->todo;
        s->done_tail = &s->done;
        pthread_mutex_init(&s->lock, NULL);
        {
                /* The retry wait must not stretch when the wall clock jumps. */
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&s->cond, &ca);
                pthread_condattr_destroy(&ca);
        }
        if (!s->path) {
                r = -ENOMEM;
                goto fail;
        }

        r = check_file(path, ret_err);
        if (r < 0)
                goto fail;
        /* SQLite counts every allocation under one global mutex unless
         * told not to, before it first initialises (later: a harmless
         * SQLITE_MISUSE). Nothing here reads those counts. */
        (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                r = set_error(ret_err, sqlite_errno(rc) ?: -EIO, "%s: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                goto fail;
        }
        sqlite3_extended_result_codes(s->db, 1);
        /* Start-up may wait a little for a lock a shell holds; the
         * store thread later installs its own bounded handler. */
        sqlite3_busy_timeout(s->db, (int)MAX(cfg->busy_timeout_ms, 1000));

        r = check_schema(s->db, path, &s->schema_from, ret_err);
        if (r < 0)
                goto fail;
        {
                sqlite3_stmt *st;
                rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
                if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
                        const char *m = (const char *)sqlite3_column_text(st, 0);
                        mode = m ? strdup(m) : NULL;
                }
                sqlite3_finalize(st);
        }
        if (!mode || strcmp(mode, "wal") != 0) {
                r = set_error(ret_err, -EIO, "%s: cannot switch to WAL mode (got %s)", path, mode ? mode : "an error");
                free(mode);
                goto fail;
        }
        free(mode);
        r = exec1(s->db, cfg->durability == DURABILITY_FULL ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL",
                  ret_err, path);
        if (r < 0)
                goto fail;
        /* Bounded memory: the page cache is a few MiB whatever the queue
         * holds; the OS page cache does the rest. Bounded WAL: after each
         * checkpoint it is cut back to 64 MiB at most. */
        r = exec1(s->db, "PRAGMA cache_size = -4096; PRAGMA journal_size_limit = 67108864", ret_err, path);
        if (r < 0)
                goto fail;
        /* The schema's CHECK on jobs.state stays for every other writer,
         * but this connection does not evaluate it: SQLite codes that IN
         * list as a temporary b-tree built anew for every row written (an
         * insert, every change of state), which was a third of the
         * instructions ringqd spent on a submit. Every state this
         * connection writes is a literal of its statements or one of
         * ringq_state_names; the tests check each database they leave
         * with PRAGMA integrity_check, which does evaluate it. */
        r = exec1(s->db, "PRAGMA ignore_check_constraints = ON", ret_err, path);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        store_close(s);
        return r;
}

int store_schema_from(struct store *s)
{
        return s->schema_from;
}

int store_list_running(struct store *s, struct interrupted **ret, size_t *ret_n)
{
        sqlite3_stmt *st = NULL;
        struct interrupted *v = NULL;
        size_t n = 0, cap = 0;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, coalesce(pid, 0), attempts, max_attempts, backoff_ms, interruptions"
                                " FROM jobs WHERE state = 'running' ORDER BY id",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (grow_array((void **)&v, &cap, n + 1, sizeof(*v)) < 0) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                v[n++] = (struct interrupted){
                        .id = sqlite3_column_int64(st, 0),
                        .pid = sqlite3_column_int64(st, 1),
                        .attempts = sqlite3_column_int(st, 2),
                        .max_attempts = sqlite3_column_int(st, 3),
                        .backoff_ms = sqlite3_column_int64(st, 4),
                        .interruptions = sqlite3_column_int(st, 5),
                };
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                free(v);
                return sqlite_errno(rc) ?: -EIO;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

void job_interruption(int attempts, int max_attempts, int interruptions, uint64_t max_interruptions,
                      struct interruption *ret)
{
        int n = interruptions + 1;

        *ret = (struct interruption){ .refunded = max_interruptions > 0 && (uint64_t)n <= max_interruptions };
        ret->again = ret->refunded || attempts < max_attempts;
        if (ret->refunded)
                snprintf(ret->reason, sizeof(ret->reason), "interrupted (%d of %llu)", n,
                         (unsigned long long)max_interruptions);
        else if (max_interruptions > 0)
                snprintf(ret->reason, sizeof(ret->reason), "interrupted (%d, over max_interruptions %llu)", n,
                         (unsigned long long)max_interruptions);
        else
                snprintf(ret->reason, sizeof(ret->reason), "interrupted");
}

/* Run sql once per item, i = 0..n-1, in one IMMEDIATE transaction;
 * bind(st, i, ud) binds item i. *ret_changed: how many runs changed a
 * row. All or nothing. */
static int each_in_transaction(struct store *s, const char *sql, size_t n,
                               void (*bind)(sqlite3_stmt *st, size_t i, void *ud), void *ud, size_t *ret_changed)
{
        sqlite3_stmt *st = NULL;
        size_t changed = 0;
        int rc;

        if (ret_changed)
                *ret_changed = 0;
        if (n == 0)
                return 0;
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
                bind(st, i, ud);
                rc = sqlite3_step(st);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
                changed += rc == SQLITE_OK && sqlite3_changes(s->db) == 1;
                sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return sqlite_errno(rc) ?: -EIO;
        }
        if (ret_changed)
                *ret_changed = changed;
        return 0;
}

static void bind_start(sqlite3_stmt *st, size_t i, void *ud)
{
        const struct launch_rec *r = (const struct launch_rec *)ud + i;

        sqlite3_bind_int64(st, 1, r->job_id);
        sqlite3_bind_int64(st, 2, r->pid);
        sqlite3_bind_int64(st, 3, r->started_at);
        sqlite3_bind_int64(st, 4, r->queued_seq);
}

int store_replay_starts(struct store *s, const struct launch_rec *v, size_t n, size_t *ret_done)
{
        /* A row left unchanged had its start committed after all (or
         * moved on since): the database knows it already. */
        return each_in_transaction(s, STORE_SQL_START, n, bind_start, (void *)v, ret_done);
}

struct mark {
        struct store *s;
        struct interrupted *v;
        const int64_t *run_at;
        int64_t now_ms;
};

static void bind_interrupted(sqlite3_stmt *st, size_t i, void *ud)
{
        struct mark *m = ud;
        struct interrupted *j = &m->v[i];
        struct interruption how;

        job_interruption(j->attempts, j->max_attempts, j->interruptions, m->s->max_interruptions, &how);
        j->again = how.again;
        j->refunded = how.refunded;
        sqlite3_bind_int64(st, 1, j->id);
        sqlite3_bind_text(st, 2, how.again ? "queued" : "failed", -1, SQLITE_STATIC);
        if (how.again) {
                sqlite3_bind_int64(st, 3, m->run_at[i]);
                sqlite3_bind_null(st, 4);
        } else {
                sqlite3_bind_null(st, 3);
                sqlite3_bind_int64(st, 4, m->now_ms);
        }
        sqlite3_bind_text(st, 5, how.reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 6, how.refunded);
}

int store_mark_interrupted(struct store *s, struct interrupted *v, size_t n, const int64_t *run_at, int64_t now_ms)
{
        struct mark m = { s, v, run_at, now_ms };

        return each_in_transaction(s,
                                   "UPDATE jobs SET state = ?2, run_at = coalesce(?3, run_at),"
                                   " finished_at = ?4, reason = ?5, pid = NULL,"
                                   " exit_code = NULL, signal = NULL, queued_seq = queued_seq + (?2 = 'queued'),"
                                   " interruptions = interruptions + 1, attempts = attempts - ?6"
                                   " WHERE id = ?1 AND state = 'running'",
                                   n, bind_interrupted, &m, NULL);
}

int store_load_queued(struct store *s, int (*fn)(void *ud, const struct queued_job *j), void *ud)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        /* The 'queued' range of jobs_state, in id order: the table
         * reads that follow are sequential (a million rows in ~0.3 s). */
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, owner_uid, queue, priority, run_at, queued_seq"
                                " FROM jobs INDEXED BY jobs_state WHERE state = 'queued'",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct queued_job j = {
                        .id = sqlite3_column_int64(st, 0),
                        .owner_uid = sqlite3_column_int64(st, 1),
                        .queue = (const char *)sqlite3_column_text(st, 2),
                        .priority = sqlite3_column_int(st, 3),
                        .run_at = sqlite3_column_int64(st, 4),
                        .queued_seq = sqlite3_column_int64(st, 5),
                };
                r = fn(ud, &j);
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int store_load_deps(struct store *s, int (*fn)(void *ud, int64_t job_id, int64_t after_id, int after_state),
                    void *ud)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT d.job_id, d.after_id, coalesce(a.state, 'succeeded')"
                                " FROM job_deps d JOIN jobs j ON j.id = d.job_id AND j.state = 'queued'"
                                " LEFT JOIN jobs a ON a.id = d.after_id",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = fn(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                       ringq_state_from_name((const char *)sqlite3_column_text(st, 2)));
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int store_load_queues(struct store *s, int (*fn)(void *ud, const char *name, bool paused), void *ud)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT name, paused FROM queues", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc) ?: -EIO;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1) != 0);
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int store_count_finished(struct store *s, int64_t *ret)
{
        int rc = query_int(s->db, "SELECT count(*) FROM jobs INDEXED BY jobs_finished WHERE finished_at IS NOT NULL",
                           ret);
        return rc == SQLITE_OK ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int store_last_id(struct store *s, int64_t *ret)
{
        int rc;

        *ret = 0;
        rc = query_int(s->db,
                       "SELECT max((SELECT coalesce(max(id), 0) FROM jobs),"
                       " (SELECT coalesce(max(id), 0) FROM jobs_id_floor))",
                       ret);
        return rc == SQLITE_OK ? 0 : (sqlite_errno(rc) ?: -EIO);
}

void store_set_busy_timeout(struct store *s, int64_t ms)
{
        pthread_mutex_lock(&s->lock);
        s->busy_timeout_ms = ms;
        pthread_mutex_unlock(&s->lock);
}

void store_get_info(struct store *s, struct store_info *ret)
{
        char wal[4096];
        struct stat st;

        pthread_mutex_lock(&s->lock);
        *ret = s->info;
        pthread_mutex_unlock(&s->lock);
        /* Sizes on demand (two stat calls for a stats request), not after
         * every commit. */
        ret->db_bytes = stat(s->path, &st) == 0 ? st.st_size : 0;
        snprintf(wal, sizeof(wal), "%s-wal", s->path);
        ret->wal_bytes = stat(wal, &st) == 0 ? st.st_size : 0;
}

void store_close(struct store *s)
{
        if (!s)
                return;
        store_pause(s);
        store_finalize(s);
        if (s->db) {
                /* A clean close checkpoints the WAL into the database. */
                (void)sqlite3_close_v2(s->db);
        }
        while (s->todo) {
                struct store_op *op = s->todo;
                s->todo = op->next;
                store_op_free(op);
        }
        while (s->out) {
                struct store_op *op = s->out;
                s->out = op->next;
                store_op_free(op);
        }
        while (s->done) {
                struct store_op *op = s->done;
                s->done = op->next;
                store_op_free(op);
        }
        free(s->synced_spare);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        if (s->wake_ring_made)
                io_uring_queue_exit(&s->wake_ring);
        safe_close(s->wal_fd);
        free(s->path);
        free(s);
}

void job_rec_done(struct job_rec *j)
{
        free(j->queue);
        free(j->argv);
        free(j->env);
        free(j->cwd);
        free(j->idem_key);
        free(j->reason);
        free(j->owner_groups);
        free(j->after);
        j->queue = j->argv = j->env = j->cwd = j->idem_key = j->reason = j->owner_groups = NULL;
        j->after = NULL;
        j->nafter = 0;
}

void store_op_free(struct store_op *op)
{
        if (!op)
                return;
        if (op->row) {
                job_rec_done(op->row);
                free(op->row);
        }
        free(op->unmet);
        switch (op->kind) {
        case SOP_SUBMIT:
                job_rec_done(&op->submit.rec);
                break;
        case SOP_FINISH:
                free(op->finish.reason);
                break;
        case SOP_PRUNE:
                free(op->prune.ids);
                break;
        case SOP_QUEUE:
                free(op->queue.queue);
                break;
        case SOP_DEP_CANCEL:
                free(op->dep.reason);
                break;
        default:
                break;
        }
        free(op);
}
