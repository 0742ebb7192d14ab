/* What each request does. Replies that need no I/O are answered at
 * once; submit, cancel and retry go through the store and are answered
 * after their commit; wait (and cancel of a running job) park the
 * request on the job until it ends. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "worker.h"
#include "proto.h"
#include "ringq/protocol.h"

static json_t *storage_err(int r)
{
        return proto_err(RINGQ_ERR_STORAGE, NULL, "the queue database cannot answer now: %s", strerror(-r));
}

static bool may_touch(const struct conn *c, int64_t owner_uid)
{
        return c->uid == 0 || (int64_t)c->uid == owner_uid;
}

/* The job object of a reply: the row, and what dispatch knows of it. */
static json_t *job_json(struct server *s, const struct job_rec *j)
{
        json_t *o = proto_job(j, s->output_dir);

        if (o) {
                dispatch_annotate(s, o, j);
                /* What "null" stands for, so a reader need not know the
                 * config: the default as it is now, which an attempt
                 * reads when it starts. */
                if (j->timeout_ms < 0)
                        json_object_set_new(o, "default_timeout_ms", json_integer((json_int_t)s->cfg.default_timeout_ms));
        }
        return o;
}

/* A cancel or a retry in the journal, with who asked: the owner and root
 * may both, and an operator wants to know which it was. row is the job
 * as the op left it, or NULL to read it as last committed. */
static void log_change(struct server *s, int64_t id, uid_t by, const struct job_rec *row, const char *verb,
                       const char *how)
{
        struct job_rec j;
        char qq[160], qa[256];
        json_t *argv;
        const char *argv0 = NULL;

        if (!row && reader_get(s->reader, id, &j) == 0)
                row = &j;
        if (!row) {
                log_info("job %lld %s by uid %u (%s)", (long long)id, verb, (unsigned)by, how);
                return;
        }
        argv = json_loads(row->argv ? row->argv : "[]", 0, NULL);
        argv0 = json_string_value(json_array_get(argv, 0));
        log_job(LOG_INFO,
                &(struct log_job){ .id = row->id, .owner_uid = row->owner_uid, .queue = row->queue,
                                   .state = row->state >= 0 ? ringq_state_names[row->state] : NULL,
                                   .reason = row->reason },
                "job %lld %s by uid %u (%s): owner=%lld queue=%s argv0=%s attempts=%d/%d", (long long)id, verb,
                (unsigned)by, how, (long long)row->owner_uid, log_quote(qq, sizeof(qq), row->queue ? row->queue : ""),
                log_quote(qa, sizeof(qa), argv0 ? argv0 : ""), row->attempts, row->max_attempts);
        json_decref(argv);
        if (row == &j)
                job_rec_done(&j);
}

/* ok, with the job object; more fields may be added. */
static json_t *job_reply(struct server *s, const struct job_rec *j)
{
        json_t *o = proto_ok();

        json_object_set_new(o, "job", job_json(s, j));
        return o;
}

/* Reply with the job: as the op's own transaction left it when the
 * store copied it (row), else as last committed. */
static void reply_job(struct server *s, struct req *r, int64_t id, const struct job_rec *row)
{
        struct job_rec j;
        int e = 0;

        if (!row) {
                e = reader_get(s->reader, id, &j);
                row = e == 0 ? &j : NULL;
        }
        if (e == -ENOENT)
                ops_answer(r, proto_err(RINGQ_ERR_NOT_FOUND, "id", "job %lld not found", (long long)id));
        else if (e < 0)
                ops_answer(r, storage_err(e));
        else
                ops_answer(r, job_reply(s, row));
        if (row == &j)
                job_rec_done(&j);
}

/* A request of this connection that changes a job is in flight. */
static void begin_write(struct req *r)
{
        r->is_write = true;
        r->conn->writes++;
}

static bool is_read(enum ringq_op op)
{
        return op == RINGQ_OP_STATUS || op == RINGQ_OP_LIST || op == RINGQ_OP_WAIT || op == RINGQ_OP_OUTPUT ||
               op == RINGQ_OP_QUEUES;
}

static void execute(struct server *s, struct req *r, struct request *rq);

/* Run the requests held back behind this connection's writes, in order,
 * as far as the rule allows: a read waits until no write of its own
 * connection is in flight, so a client reads what it wrote; a write goes
 * as soon as everything before it went, so pipelined submits still share
 * one commit. */
static void run_deferred(struct conn *c)
{
        while (!c->closing && c->ndeferred) {
                struct req *r = c->head;
                struct request rq;

                while (r && r->state != REQ_DEFERRED)
                        r = r->next;
                if (!r || (is_read(r->rq.op) && c->writes))
                        return;
                rq = r->rq;
                r->has_rq = false;
                r->state = REQ_STORE;
                c->ndeferred--;
                execute(c->srv, r, &rq);
                request_done(&rq);
        }
}

/* Either a reply to render, or a line already rendered (line, len; NULL
 * when it could not be: the client is told "out of memory"). */
static void answer(struct req *r, json_t *reply, char *line, size_t len)
{
        struct conn *c = r->conn;
        bool write = r->is_write;

        r->is_write = false;
        if (reply)
                req_reply(r, reply);
        else
                req_reply_line(r, line, len);
        /* The connection outlives this turn even if the reply closed it. */
        if (write && c && !c->closing && --c->writes == 0)
                run_deferred(c);
}

void ops_answer(struct req *r, json_t *reply)
{
        answer(r, reply, NULL, 0);
}

/* How long until the queue is likely back under low water, from the
 * recent completion rate; clamped so a client neither spins nor sleeps
 * for minutes on a guess. Jobs leave the queue only by starting: when
 * fewer could start now than must leave, the rest are delayed jobs, and
 * none of those goes before the next one comes due. That is no guess, so
 * it is not clamped; it is rounded up to 100 ms so the rendered reject
 * line (answer_reject) is not made anew at every millisecond. */
static int64_t retry_after_ms(struct server *s, int64_t queued, int64_t low_water)
{
        int64_t now = now_mono_ms(), excess = MAX(queued - low_water, 1), runnable, due;
        double rate = stats_rate(&s->stats, now);
        /* No recent completions: nothing to estimate from, so a short
         * look again rather than a long guess. */
        double ms = rate > 0.001 ? (double)excess / rate * 1000.0 : 1000.0;
        int64_t est = (int64_t)CLAMP(ms, 100.0, 30000.0);

        dispatch_drain_outlook(s, &runnable, &due);
        if (runnable < excess && due != INT64_MAX && due - now > est)
                est = (due - now + 99) / 100 * 100;
        return est;
}

/* The message leaves "queue full" to the error code it comes with: the
 * CLI prints both ("queue_full: 12 jobs queued ..."). */
static json_t *reject_err(enum admit kind, uid_t uid, const struct admit_info *ai, int64_t retry_ms)
{
        const char *q = ai->queue ? ai->queue : "";
        char again[96];
        json_t *e;

        /* dispatch.c's hysteresis takes a submit again once the count is
         * down to low water, that count included. */
        if (ai->low_water > 0)
                snprintf(again, sizeof(again), "accepting again once %lld or fewer are queued",
                         (long long)ai->low_water);
        else
                snprintf(again, sizeof(again), "accepting again once none are queued");
        if (kind == ADMIT_USER_FULL)
                e = proto_err(RINGQ_ERR_QUEUE_FULL, NULL, "uid %u has %lld jobs queued already (max_queued_per_user %lld)",
                              (unsigned)uid, (long long)ai->queued, (long long)ai->high_water);
        else if (kind == ADMIT_ROOT_FULL)
                e = proto_err(RINGQ_ERR_QUEUE_FULL, NULL,
                              "%s%s%s%lld jobs queued, and root's reserve above %shigh water %lld is used up too",
                              *q ? "queue " : "", q, *q ? ": " : "", (long long)ai->queued, *q ? "its " : "",
                              (long long)ai->high_water);
        else
                e = proto_err(RINGQ_ERR_QUEUE_FULL, NULL, "%s%s%s%lld jobs queued (%shigh water %lld); %s",
                              *q ? "queue " : "", q, *q ? ": " : "", (long long)ai->queued, *q ? "its " : "",
                              (long long)ai->high_water, again);
        if (e) {
                if (kind == ADMIT_USER_FULL || ai->queue)
                        json_object_set_new(e, "scope", json_string(kind == ADMIT_USER_FULL ? "user" : "queue"));
                json_object_set_new(e, "retry_after_ms", json_integer(retry_ms));
        }
        return e;
}

/* At the high-water mark rejects are the hot path and should cost about
 * what a ping does: the reply line is rendered again only when what it
 * says changes (a request with a tag, or a queue's own marks, get their
 * own). Root's rejects, past its reserve, are as hot as anyone's. */
static void answer_reject(struct server *s, struct req *r, enum admit kind, uid_t uid, const struct admit_info *ai)
{
        int64_t retry = kind == ADMIT_USER_FULL ? retry_after_ms(s, 1, 0) : retry_after_ms(s, ai->queued, ai->low_water);
        int64_t key[6] = { kind, kind == ADMIT_USER_FULL ? (int64_t)uid : -1, ai->queued, retry, ai->high_water,
                           ai->low_water };
        char *line;

        s->stats.c[kind == ADMIT_USER_FULL ? C_REJECTED_USER : C_REJECTED_FULL]++;
        if (r->tag || ai->queue) {
                ops_answer(r, reject_err(kind, uid, ai, retry));
                return;
        }
        if (!s->full.line || memcmp(s->full.key, key, sizeof(key)) != 0) {
                size_t len = 0;

                line = proto_line(reject_err(kind, uid, ai, retry), NULL, &len);
                if (!line) {
                        req_reply_line(r, NULL, 0);
                        return;
                }
                free(s->full.line);
                s->full.line = line;
                s->full.len = len;
                memcpy(s->full.key, key, sizeof(key));
        }
        line = malloc(s->full.len + 1);
        if (line)
                memcpy(line, s->full.line, s->full.len + 1);
        req_reply_line(r, line, s->full.len);
}

/* Is there room for one more job of uid in queue? Answers r and returns
 * false when not (dispatch.h says who gets what room). */
static bool room_for(struct server *s, struct req *r, uid_t uid, const char *queue)
{
        struct admit_info ai;
        enum admit kind = dispatch_admit(s, uid, queue, &ai);

        if (kind == ADMIT_OK)
                return true;
        answer_reject(s, r, kind, uid, &ai);
        return false;
}

/* At the high-water mark a flood of submits should cost the loop less
 * than it costs the senders: a line the CLI or the bench writes (compact,
 * "op" first) is refused before jansson parses it, when nothing in it
 * could change the answer. A queue with marks of its own or a tag to echo
 * needs the parse, and so does any escape, which could spell either key.
 * Such a line is answered as do_submit would answer it once parsed, if
 * it is well-formed; a malformed one gets queue_full rather than
 * bad_request while the queue is full (docs/protocol.md). Never past a
 * request held back on the connection, whose effect must come first. */
static bool refused_unread(struct server *s, struct conn *c, struct req *r, const char *line, size_t len)
{
        static const char head[] = "{\"op\":\"submit\",";
        struct admit_info ai;
        enum admit kind;

        if (s->draining || c->ndeferred || len < sizeof(head) - 1 || memcmp(line, head, sizeof(head) - 1) != 0 ||
            memchr(line, '\\', len) || memmem(line, len, "\"queue\"", 7) || memmem(line, len, "\"tag\"", 5))
                return false;
        kind = dispatch_admit(s, c->uid, NULL, &ai);
        if (kind == ADMIT_OK)
                return false;
        answer_reject(s, r, kind, c->uid, &ai);
        return true;
}

static void do_submit(struct server *s, struct req *r, struct request *rq)
{
        struct conn *c = r->conn;
        struct store_op *op;
        struct job_rec *j;
        int64_t now = loop_wall_ms(s);

        if (s->draining) {
                s->stats.c[C_REJECTED_OTHER]++;
                ops_answer(r, proto_err(RINGQ_ERR_SHUTTING_DOWN, NULL, "ringqd is shutting down"));
                return;
        }
        if (!room_for(s, r, c->uid, rq->queue))
                return;
        op = calloc(1, sizeof(*op));
        if (!op)
                goto oom;
        op->kind = SOP_SUBMIT;
        op->owner = r;
        j = &op->submit.rec;
        *j = (struct job_rec){
                .queue = strdup(rq->queue),
                .state = RINGQ_STATE_QUEUED,
                .priority = rq->priority,
                .argv = proto_dump_compact(rq->argv),
                .env = rq->env ? proto_dump_compact(rq->env) : NULL,
                .cwd = strdup(rq->cwd),
                .owner_uid = c->uid,
                .owner_gid = c->gid,
                .idem_key = rq->key ? strdup(rq->key) : NULL,
                .submitted_at = now,
                .run_at = rq->run_at >= 0 ? rq->run_at : now + MAX(rq->delay_ms, 0),
                .max_attempts = rq->max_attempts,
                .timeout_ms = rq->timeout_ms,
                .backoff_ms = rq->backoff_ms >= 0 ? rq->backoff_ms : 1000,
                .exit_code = -1, .signal = -1, .pid = -1,
                .started_at = -1, .finished_at = -1,
                .owner_groups = c->groups_json ? strdup(c->groups_json) : NULL,
                .umask = rq->umask,
                .cpu_ms = -1, .max_rss_kb = -1,
        };
        if (rq->nafter) {
                j->after = malloc(rq->nafter * sizeof(*j->after));
                if (j->after) {
                        memcpy(j->after, rq->after, rq->nafter * sizeof(*j->after));
                        j->nafter = rq->nafter;
                }
        }
        if (!j->queue || !j->argv || !j->cwd || (rq->env && !j->env) || (rq->key && !j->idem_key) ||
            (c->groups_json && !j->owner_groups) || (rq->nafter && !j->after)) {
                store_op_free(op);
                goto oom;
        }
        op->id = j->id = ++s->last_job_id;
        op->enqueued_us = loop_mono_us(s);
        r->state = REQ_STORE;
        begin_write(r);
        dispatch_submit(s, op, rq->env);
        return;
oom:
        ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "out of memory"));
}

/* The job a status, wait or output request is about, if the requester
 * may see it: 0 and *j (the caller's to free), or the request is
 * answered (not_found, forbidden, storage_error) and -1 returned. */
static int job_for(struct server *s, struct req *r, int64_t id, struct job_rec *j)
{
        int e = reader_get(s->reader, id, j);

        if (e == -ENOENT)
                ops_answer(r, proto_err(RINGQ_ERR_NOT_FOUND, "id", "job %lld not found", (long long)id));
        else if (e < 0)
                ops_answer(r, storage_err(e));
        else if (!may_touch(r->conn, j->owner_uid)) {
                ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, "id", "job %lld belongs to uid %lld", (long long)id,
                                       (long long)j->owner_uid));
                job_rec_done(j);
        } else
                return 0;
        return -1;
}

static void do_wait(struct server *s, struct req *r, struct request *rq)
{
        struct job_rec j;

        if (job_for(s, r, rq->id, &j) < 0)
                return;
        if (ringq_state_is_final(j.state))
                ops_answer(r, job_reply(s, &j));
        else
                waiters_park(s, r, rq->id, rq->timeout_ms);
        job_rec_done(&j);
}

static void do_status(struct server *s, struct req *r, struct request *rq)
{
        struct job_rec j;

        if (job_for(s, r, rq->id, &j) < 0)
                return;
        ops_answer(r, job_reply(s, &j));
        job_rec_done(&j);
}

/* A job's output file, opened here and passed to its owner: the files
 * are root's and their directory is closed to everyone else, so no user
 * can read another's output, nor write to, grow or replace their own
 * after the fact; a read-only descriptor is all the owner gets. */
static void do_output(struct server *s, struct req *r, struct request *rq)
{
        struct job_rec j;
        char name[48];
        json_t *o;
        int fd;

        if (job_for(s, r, rq->id, &j) < 0)
                return;
        snprintf(name, sizeof(name), "%lld.%s", (long long)rq->id, rq->stream ? "err" : "out");
        fd = openat(s->output_dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 && errno != ENOENT) {
                int e = errno;
                job_rec_done(&j);
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "cannot open the output of job %lld: %s",
                                       (long long)rq->id, strerror(e)));
                return;
        }
        o = job_reply(s, &j);
        json_object_set_new(o, "fd", json_boolean(fd >= 0));
        job_rec_done(&j);
        r->pass_fd = fd;
        ops_answer(r, o);
}

/* A list reply is bounded in bytes, not only in rows: max_reply_bytes is
 * about a client that does not read, and one page must never look like
 * one. A page that would grow past the budget ends early and says where
 * the next one starts. */
struct list_ctx {
        struct server *s;
        json_t *jobs;
        size_t bytes, budget;
        int64_t last_id;
        bool cut;
};

#define LIST_PAGE_SLACK 1024   /* the reply around the jobs */

static int list_one(void *ud, struct job_rec *j)
{
        struct list_ctx *lc = ud;
        json_t *o = job_json(lc->s, j);
        size_t size;

        if (!o)
                return -ENOMEM;
        size = json_dumpb(o, NULL, 0, JSON_COMPACT) + 1;
        if (json_array_size(lc->jobs) > 0 && lc->bytes + size > lc->budget) {
                json_decref(o);
                lc->cut = true;
                return -ENOSPC;
        }
        if (json_array_append_new(lc->jobs, o) < 0)
                return -ENOMEM;
        lc->bytes += size;
        lc->last_id = j->id;
        return 0;
}

/* "more", where the next page starts, and how many jobs are left past
 * this page (counted up to RINGQ_LIST_MAX: an operator wants to know
 * whether to page on, not a census). A page cut short, or of exactly
 * limit jobs, is followed by a count; one that ended before either is
 * the last. A count that would scan too much says nothing of the rest,
 * and the page says more, as a full page always did. */
static void list_more(struct server *s, json_t *o, const struct list_filter *f, const struct list_ctx *lc)
{
        struct list_filter rest = *f;
        int64_t left = 0;
        int e = 0;

        if (lc->cut || json_array_size(lc->jobs) == f->limit) {
                if (f->desc)
                        rest.before_id = lc->last_id;
                else
                        rest.after_id = lc->last_id;
                e = reader_count(s->reader, &rest, RINGQ_LIST_MAX + 1, &left);
                if (e < 0)
                        left = 1;
        }
        json_object_set_new(o, "more", json_boolean(lc->cut || left > 0));
        if (!lc->cut && left == 0)
                return;
        json_object_set_new(o, f->desc ? "next_before_id" : "next_after_id", json_integer(lc->last_id));
        if (e == 0) {
                json_object_set_new(o, "remaining", json_integer(MIN(left, RINGQ_LIST_MAX)));
                json_object_set_new(o, "remaining_exact", json_boolean(left <= RINGQ_LIST_MAX));
        }
}

static void do_list(struct server *s, struct req *r, struct request *rq)
{
        uid_t uid = r->conn->uid;
        struct list_filter f = {
                .state = rq->state, .queue = rq->queue, .after_id = rq->after_id, .before_id = rq->before_id,
                .desc = rq->desc, .limit = rq->limit,
                /* Root may ask for anyone's jobs; everyone else sees their own. */
                .owner_uid = uid == 0 ? rq->owner_uid : (int64_t)uid,
        };
        struct list_ctx lc = {
                .s = s, .jobs = json_array(),
                .budget = s->cfg.max_reply_bytes > 2 * LIST_PAGE_SLACK ? s->cfg.max_reply_bytes - LIST_PAGE_SLACK
                                                                       : LIST_PAGE_SLACK,
        };
        int e;

        if (uid != 0 && rq->owner_uid >= 0 && rq->owner_uid != (int64_t)uid) {
                ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, "owner_uid",
                                        "only root may list the jobs of another user (uid %lld)",
                                        (long long)rq->owner_uid));
                json_decref(lc.jobs);
                return;
        }
        if (!lc.jobs) {
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "out of memory"));
                return;
        }
        e = reader_list(s->reader, &f, list_one, &lc);
        if (e == -ETIME)
                ops_answer(r, proto_err(RINGQ_ERR_TIMEOUT, NULL,
                                       "the list filter matched too few jobs to scan for; narrow it with state, "
                                       "after_id or before_id"));
        else if (e < 0 && !lc.cut)
                ops_answer(r, storage_err(e));
        else {
                json_t *o = proto_ok();
                json_object_set(o, "jobs", lc.jobs);
                list_more(s, o, &f, &lc);
                ops_answer(r, o);
        }
        json_decref(lc.jobs);
}

static void do_change(struct server *s, struct req *r, struct request *rq, enum store_op_kind kind)
{
        struct store_op *op;

        if (kind == SOP_CANCEL) {
                int e = workers_cancel(s, rq->id, r->conn->uid);
                if (e == 0) {
                        log_change(s, rq->id, r->conn->uid, NULL, "canceled", "running: stopping it");
                        begin_write(r);
                        waiters_park(s, r, rq->id, -1);
                        return;
                }
                if (e == -EPERM) {
                        ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, "id", "job %lld belongs to another user",
                                               (long long)rq->id));
                        return;
                }
        }
        if (kind == SOP_RETRY) {
                /* A job retried by hand is a new job as far as room goes:
                 * it obeys the marks (automatic requeues of a job already
                 * accepted do not). Its queue is read as last committed;
                 * a job this connection's own writes still have in flight
                 * is left to the store to judge, in order. */
                struct job_rec j;
                bool room = true;
                if (reader_get(s->reader, rq->id, &j) == 0) {
                        if (ringq_state_is_final(j.state) && may_touch(r->conn, j.owner_uid))
                                room = room_for(s, r, r->conn->uid, j.queue);
                        job_rec_done(&j);
                }
                if (!room)
                        return;
        }
        op = calloc(1, sizeof(*op));
        if (!op) {
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "out of memory"));
                return;
        }
        op->kind = kind;
        op->id = rq->id;
        op->owner = r;
        op->change.uid = r->conn->uid;
        op->change.now_ms = now_wall_ms();
        op->enqueued_us = now_mono_us();
        r->state = REQ_STORE;
        begin_write(r);
        store_push(s->store, op);
}

static json_t *queues_reply(struct server *s)
{
        json_t *o = proto_ok();

        json_object_set_new(o, "queues", dispatch_queues_json(s));
        json_object_set_new(o, "all_paused", json_boolean(s->dp.all_paused));
        return o;
}

/* Pausing is an operator's act, and it is recorded: root only, answered
 * once the queues table has it. */
static void do_pause(struct server *s, struct req *r, struct request *rq, bool paused)
{
        struct store_op *op;

        if (r->conn->uid != 0) {
                ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, NULL, "only root may %s queues",
                                       paused ? "pause" : "resume"));
                return;
        }
        op = calloc(1, sizeof(*op));
        if (op && rq->queue)
                op->queue.queue = strdup(rq->queue);
        if (!op || (rq->queue && !op->queue.queue)) {
                free(op);
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "out of memory"));
                return;
        }
        op->kind = SOP_QUEUE;
        op->owner = r;
        op->queue.paused = paused;
        op->enqueued_us = now_mono_us();
        r->state = REQ_STORE;
        begin_write(r);
        store_push(s->store, op);
}

/* Replacing the daemon is an operator's act: root only. The answer
 * comes at once; the connection then closes with every other one when
 * the jobs are handed over (the client asks the new process how it
 * went: stats "reexecs", "adopted", "reexec_failed"). */
static void do_reexec(struct server *s, struct req *r)
{
        int e;

        if (r->conn->uid != 0) {
                ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, NULL, "only root may re-execute ringqd"));
                return;
        }
        e = reexec_begin(s, "asked by a client");
        if (e == -ESHUTDOWN)
                ops_answer(r, proto_err(RINGQ_ERR_SHUTTING_DOWN, NULL, "ringqd is shutting down"));
        else if (e < 0 && e != -EALREADY)
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "cannot re-execute: %s", strerror(-e)));
        else {
                json_t *o = proto_ok();
                json_object_set_new(o, "running", json_integer(s->busy_slots));
                json_object_set_new(o, "reexecs", json_integer((json_int_t)s->rx.count));
                json_object_set_new(o, "already", json_boolean(e == -EALREADY));
                ops_answer(r, o);
        }
}

static json_t *latency_json(const struct latency *l)
{
        struct latency_summary ls;

        latency_summarize(l, &ls);
        return json_pack("{s:f, s:f, s:f, s:I, s:I, s:I}", "p50", ls.p50_ms, "p99", ls.p99_ms, "max", ls.max_ms,
                         "samples", (json_int_t)ls.samples, "count", (json_int_t)ls.count, "sum_us",
                         (json_int_t)ls.sum_us);
}

static json_t *stats_reply(struct server *s)
{
        json_t *o = proto_ok(), *counters = json_object(), *path = json_object();
        struct store_info si;

        if (!o || !counters || !path) {
                json_decref(o);
                json_decref(counters);
                json_decref(path);
                return NULL;
        }
        store_get_info(s->store, &si);
        s->stats.c[C_COMMITS] = si.commits;
        for (int i = 0; i < _C_MAX; i++)
                json_object_set_new(counters, counter_names[i], json_integer((json_int_t)s->stats.c[i]));
        json_object_set_new(o, "state", json_string(server_state_word(s)));
        json_object_set_new(o, "queued", json_integer(qindex_queued(&s->dp.qi)));
        json_object_set_new(o, "waiting", json_integer((json_int_t)s->dp.nwaiting));
        json_object_set_new(o, "running", json_integer(s->busy_slots));
        json_object_set_new(o, "workers", json_integer((json_int_t)s->nslots));
        json_object_set_new(o, "high_water", json_integer((json_int_t)s->cfg.high_water));
        json_object_set_new(o, "low_water", json_integer((json_int_t)s->cfg.low_water));
        json_object_set_new(o, "accepting", json_boolean(s->dp.accepting && !s->draining));
        json_object_set_new(o, "queues", dispatch_queues_json(s));
        json_object_set_new(o, "all_paused", json_boolean(s->dp.all_paused));
        json_object_set_new(o, "connections", json_integer(s->nconns));
        json_object_set_new(o, "max_clients", json_integer((json_int_t)s->cfg.max_clients));
        json_object_set_new(o, "uptime_ms", json_integer(now_mono_ms() - s->start_mono_ms));
        json_object_set_new(o, "counters", counters);
        json_object_set_new(o, "latency_ms",
                            json_pack("{s:o, s:o, s:o}", "commit", latency_json(&s->stats.commit),
                                      "queue_wait", latency_json(&s->stats.queue_wait), "run",
                                      latency_json(&s->stats.run)));
        for (int i = 0; i < _P_MAX; i++)
                json_object_set_new(path, path_step_names[i], latency_json(&s->stats.path[i]));
        json_object_set_new(o, "job_path_ms", path);
        json_object_set_new(o, "db_bytes", json_integer(si.db_bytes));
        json_object_set_new(o, "wal_bytes", json_integer(si.wal_bytes));
        json_object_set_new(o, "version", json_string(RINGQ_VERSION));
        json_object_set_new(o, "pid", json_integer(getpid()));
        json_object_set_new(o, "reexecs", json_integer((json_int_t)s->rx.count));
        return o;
}

static void execute(struct server *s, struct req *r, struct request *rq)
{
        switch (rq->op) {
        case RINGQ_OP_PING: {
                json_t *o = proto_ok();
                json_object_set_new(o, "version", json_string(RINGQ_VERSION));
                json_object_set_new(o, "protocol", json_integer(RINGQ_PROTOCOL));
                ops_answer(r, o);
                break;
        }
        case RINGQ_OP_SUBMIT:
                do_submit(s, r, rq);
                break;
        case RINGQ_OP_STATUS:
                do_status(s, r, rq);
                break;
        case RINGQ_OP_LIST:
                do_list(s, r, rq);
                break;
        case RINGQ_OP_CANCEL:
                do_change(s, r, rq, SOP_CANCEL);
                break;
        case RINGQ_OP_RETRY:
                do_change(s, r, rq, SOP_RETRY);
                break;
        case RINGQ_OP_WAIT:
                do_wait(s, r, rq);
                break;
        case RINGQ_OP_STATS:
                ops_answer(r, stats_reply(s));
                break;
        case RINGQ_OP_OUTPUT:
                do_output(s, r, rq);
                break;
        case RINGQ_OP_PAUSE:
        case RINGQ_OP_RESUME:
                do_pause(s, r, rq, rq->op == RINGQ_OP_PAUSE);
                break;
        case RINGQ_OP_QUEUES:
                ops_answer(r, queues_reply(s));
                break;
        case RINGQ_OP_REEXEC:
                do_reexec(s, r);
                break;
        default:
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "unhandled op"));
                break;
        }
}

void ops_handle(struct conn *c, const char *line, size_t len)
{
        struct server *s = c->srv;
        struct request rq;
        struct proto_error perr;
        struct req *r = req_new(c);
        int e;

        if (!r) {
                conn_close(c);
                return;
        }
        if (refused_unread(s, c, r, line, len))
                return;

        e = proto_parse(line, len, &rq, &perr);
        if (rq.tag)
                r->tag = json_incref(rq.tag);
        if (e < 0) {
                if (rq.op == RINGQ_OP_SUBMIT)
                        s->stats.c[C_REJECTED_OTHER]++;
                ops_answer(r, proto_err_from(&perr));
                request_done(&rq);
                return;
        }
        if (c->ndeferred || (is_read(rq.op) && c->writes)) {
                /* Held back to keep this connection's order (run_deferred);
                 * it keeps its parsed request until then. */
                r->rq = rq;
                r->has_rq = true;
                r->state = REQ_DEFERRED;
                c->ndeferred++;
                return;
        }
        execute(s, r, &rq);
        request_done(&rq);
}

/* The failures cancel and retry share. */
static void answer_change_error(struct req *r, const struct store_op *op)
{
        if (op->result == -ENOENT)
                ops_answer(r, proto_err(RINGQ_ERR_NOT_FOUND, "id", "job %lld not found", (long long)op->id));
        else if (op->result == -EPERM)
                ops_answer(r, proto_err(RINGQ_ERR_FORBIDDEN, "id", "job %lld belongs to another user",
                                        (long long)op->id));
        else
                ops_answer(r, storage_err(op->result));
}

/* The queue a canceled job was in: from the row the op copied, else as
 * last committed. */
static void canceled_queued(struct server *s, const struct store_op *op)
{
        struct job_rec j;
        const char *queue = op->row ? op->row->queue : NULL;
        bool read = false;

        if (!queue && reader_get(s->reader, op->id, &j) == 0) {
                queue = j.queue;
                read = true;
        }
        dispatch_canceled(s, op->id, (uid_t)op->change.owner_uid, queue);
        if (read)
                job_rec_done(&j);
}

/* Submits are many: a line each only at debug, and nothing computed for
 * it otherwise. */
static void log_submit(const struct store_op *op)
{
        const struct job_rec *j = &op->submit.rec;
        json_t *argv;
        const char *argv0;
        char qq[160], qa[256];

        if (log_max_level < LOG_DEBUG)
                return;
        if (op->submit.duplicate) {
                log_debug("submit by uid %lld: job %lld already has that key", (long long)j->owner_uid,
                          (long long)op->id);
                return;
        }
        argv = json_loads(j->argv ? j->argv : "[]", 0, NULL);
        argv0 = json_string_value(json_array_get(argv, 0));
        log_job(LOG_DEBUG,
                &(struct log_job){ .id = op->id, .owner_uid = j->owner_uid, .queue = j->queue,
                                   .state = op->submit.dep_failed ? "canceled" : "queued" },
                "job %lld submitted by uid %lld: queue=%s argv0=%s priority=%d attempts=%d run_at=%lld after=%u",
                (long long)op->id, (long long)j->owner_uid, log_quote(qq, sizeof(qq), j->queue ? j->queue : ""),
                log_quote(qa, sizeof(qa), argv0 ? argv0 : ""), j->priority, j->max_attempts, (long long)j->run_at,
                j->nafter);
        json_decref(argv);
}

/* {"ok":true,"id":N}: r->job_id, r->duplicate. */
static void answer_submitted(struct req *r)
{
        size_t len = 0;
        char *line = proto_submitted_line(r->job_id, r->duplicate, r->tag, &len);

        answer(r, NULL, line, line ? len : 0);
}

static void submit_done(struct server *s, struct req *r, struct store_op *op)
{
        /* Out of its reserved place: into the queue, or its slot's
         * barrier opens, or (refused) out. */
        dispatch_submitted(s, op);
        if (op->result == -ENOENT || op->result == -EPERM) {
                s->stats.c[C_REJECTED_OTHER]++;
                ops_answer(r, op->result == -ENOENT
                                      ? proto_err(RINGQ_ERR_NOT_FOUND, "after", "job %lld (in after) not found",
                                                  (long long)op->submit.dep_failed)
                                      : proto_err(RINGQ_ERR_FORBIDDEN, "after",
                                                  "job %lld (in after) belongs to another user",
                                                  (long long)op->submit.dep_failed));
                dispatch_update_accepting(s);
                return;
        }
        if (op->result < 0) {
                s->stats.c[C_REJECTED_OTHER]++;
                ops_answer(r, storage_err(op->result));
                dispatch_update_accepting(s);
                return;
        }
        if (!op->submit.duplicate) {
                s->stats.c[C_ACCEPTED]++;
                if (op->submit.dep_failed) {
                        /* Made canceled: what it was to run after failed. */
                        s->stats.c[C_CANCELED]++;
                        prune_note_finished(s, 1);
                }
        }
        log_submit(op);
        dispatch_update_accepting(s);
        r->job_id = op->id;
        r->duplicate = op->submit.duplicate;
        if (!op->sync_seq) {
                answer_submitted(r);
                return;
        }
        /* Its job may start now; its answer waits for the fsync. Held
         * answers are submits in flight, so max_pipeline per connection
         * and max_clients bound them. */
        s->stats.c[C_EARLY_SUBMITS]++;
        r->sync_seq = op->sync_seq;
        r->pnext = NULL;
        *s->held.tail = r;
        s->held.tail = &r->pnext;
}

void ops_on_synced(struct server *s, const struct store_op *op)
{
        while (s->held.head && s->held.head->sync_seq <= op->synced.seq) {
                struct req *r = s->held.head;

                s->held.head = r->pnext;
                if (!s->held.head)
                        s->held.tail = &s->held.head;
                r->pnext = NULL;
                if (op->result >= 0)
                        answer_submitted(r);
                else
                        /* Committed and maybe running, but not known to be
                         * on disk: not acknowledged, and said as it is. */
                        ops_answer(r, proto_err(RINGQ_ERR_STORAGE, NULL,
                                                "job %lld is queued but could not be made durable (%s): it may "
                                                "run, and a power cut may lose it",
                                                (long long)r->job_id, strerror(-op->result)));
        }
}

bool ops_none_held(struct server *s)
{
        return !s->held.head;
}

/* The store saw the job running, but its process has ended since: its
 * end is committed or on its way to the store, ahead of anything pushed
 * now. Ask the store again, once, after it: the job is then ended (the
 * cancel says so) or queued for another attempt (and is canceled). */
static int cancel_again(struct server *s, struct req *r, const struct store_op *prev)
{
        struct store_op *op = calloc(1, sizeof(*op));

        if (!op)
                return -ENOMEM;
        op->kind = SOP_CANCEL;
        op->id = prev->id;
        op->owner = r;
        op->change.uid = prev->change.uid;
        op->change.now_ms = now_wall_ms();
        op->change.again = true;
        op->enqueued_us = now_mono_us();
        store_push(s->store, op);
        return 0;
}

static void cancel_done(struct server *s, struct req *r, struct store_op *op)
{
        if (op->result == 0 && op->change.prev_state == RINGQ_STATE_QUEUED) {
                log_change(s, op->id, (uid_t)op->change.uid, op->row, "canceled", "was queued");
                canceled_queued(s, op);
                s->stats.c[C_CANCELED]++;
                prune_note_finished(s, 1);
                dispatch_update_accepting(s);
                reply_job(s, r, op->id, op->row);
                waiters_job_final(s, op->id, op->row);
        } else if (op->result == 0 && op->change.prev_state == RINGQ_STATE_RUNNING) {
                /* It started between our look and the store's. */
                int e = r->conn ? workers_cancel(s, op->id, r->conn->uid) : -ENOENT;
                if (e == 0) {
                        log_change(s, op->id, (uid_t)op->change.uid, NULL, "canceled", "running: stopping it");
                        waiters_park(s, r, op->id, -1); /* still a write in flight */
                } else if (e == -ENOENT && r->conn && !op->change.again && cancel_again(s, r, op) == 0) {
                        ; /* answered after the second look */
                } else {
                        reply_job(s, r, op->id, NULL);
                }
        } else if (op->result == 0)
                reply_job(s, r, op->id, op->row);
        else if (op->result == -EALREADY)
                ops_answer(r, proto_err(RINGQ_ERR_INVALID_STATE, "id", "job %lld already %s", (long long)op->id,
                                        ringq_state_names[op->change.prev_state]));
        else
                answer_change_error(r, op);
}

static void retry_done(struct server *s, struct req *r, struct store_op *op)
{
        if (op->result == 0) {
                char what[48];

                snprintf(what, sizeof(what), "was %s", ringq_state_names[op->change.prev_state]);
                log_change(s, op->id, (uid_t)op->change.uid, op->row, "retried", what);
                prune_note_finished(s, -1);
                s->stats.c[C_RETRIED]++;
                dispatch_retried(s, op);
                dispatch_update_accepting(s);
                reply_job(s, r, op->id, op->row);
        } else if (op->result == -EALREADY)
                ops_answer(r, proto_err(RINGQ_ERR_INVALID_STATE, "id",
                                        "job %lld is %s; only failed or canceled jobs can be retried",
                                        (long long)op->id, ringq_state_names[op->change.prev_state]));
        else if (op->result == -EDEADLK)
                ops_answer(r, proto_err(RINGQ_ERR_INVALID_STATE, "id",
                                        "job %lld runs after job %lld, which %s; retry that one first",
                                        (long long)op->id, (long long)op->change.dep_failed,
                                        op->change.dep_state == RINGQ_STATE_FAILED ? "failed" : "was canceled"));
        else
                answer_change_error(r, op);
}

void ops_on_store_done(struct server *s, struct store_op *op)
{
        struct req *r = op->owner;

        switch (op->kind) {
        case SOP_SUBMIT:
                submit_done(s, r, op);
                break;
        case SOP_CANCEL:
                cancel_done(s, r, op);
                break;
        case SOP_RETRY:
                retry_done(s, r, op);
                break;
        case SOP_QUEUE:
                if (op->result < 0) {
                        ops_answer(r, storage_err(op->result));
                        break;
                }
                dispatch_set_paused(s, op->queue.queue, op->queue.paused);
                log_notice("%s%s %s by root", op->queue.queue ? "queue " : "every queue",
                           op->queue.queue ? op->queue.queue : "", op->queue.paused ? "paused" : "resumed");
                ops_answer(r, queues_reply(s));
                break;
        default:
                break;
        }
}
