/* What each request does (ops.c), and the requests parked on a job until
 * it ends (waiters.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct conn;
struct req;
struct store_op;
struct job_rec;

/* Handle one complete request line. A connection reads its own writes: a
 * status, list or wait that follows a submit, cancel or retry of the same
 * connection runs once that write is committed. */
void ops_handle(struct conn *c, const char *line, size_t len);
/* Answer r (consumes reply) and let what waited on it run. */
void ops_answer(struct req *r, json_t *reply);
/* A store op a request made came back (submit, cancel, retry, pause). */
void ops_on_store_done(struct server *s, struct store_op *op);
/* A SOP_SYNCED came back: answer the submits it made durable. */
void ops_on_synced(struct server *s, const struct store_op *op);
/* No submit answer is waiting for an fsync. */
bool ops_none_held(struct server *s);

/* The last queue_full reply line and what it said (queued,
 * retry_after_ms, high and low water): at the high-water mark rejects are
 * the hot path, rendered once per state. */
struct reject_cache {
        char *line;
        size_t len;
        int64_t key[6];
};

/* waiters.c: park r until job id ends (timeout_ms < 0: no timeout). */
void waiters_park(struct server *s, struct req *r, int64_t id, int64_t timeout_ms);
/* A request in REQ_WAIT is being dropped with its connection. */
void waiters_drop(struct req *r);
/* Job id ended: answer its waiters with row (NULL: read it). */
void waiters_job_final(struct server *s, int64_t id, const struct job_rec *row);
/* ringqd stops: every waiter gets shutting_down. */
void waiters_fail_all(struct server *s);
