/* fuzz-proto: one request line -> proto_parse() -> the reply the daemon
 * would build for it.
 *
 * On success the reply carries a job object built from the request's
 * fields the way ops.c does for a submit (proto_job on a job_rec), and
 * the tag is echoed (proto_line). On failure the error reply comes from
 * proto_err_from(). Besides the sanitizers, it checks the invariants a
 * client relies on: a reply is exactly one line of JSON, an object with
 * a boolean "ok", that echoes the request's tag unchanged; an error has a
 * known code and a non-empty message, and can always be sent (its text
 * is valid UTF-8 whatever bytes it quotes); a checked submit can always
 * be shown as a job. Leaks are caught by LeakSanitizer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "proto.h"
#include "ringq/protocol.h"

#define CHECK(x)                                                                            \
        do {                                                                                \
                if (!(x)) {                                                                 \
                        fprintf(stderr, "fuzz-proto: check failed at %s:%d: %s\n", __FILE__, \
                                __LINE__, #x);                                              \
                        abort();                                                            \
                }                                                                           \
        } while (0)

/* One line, '\n' at the end and nowhere else, a JSON object with a
 * boolean "ok" and the tag given (or none). */
static void check_line(const char *line, size_t len, json_t *tag, int want_ok)
{
        json_t *o, *ok;

        CHECK(line && len > 0);
        CHECK(line[len - 1] == '\n');
        CHECK(memchr(line, '\n', len - 1) == NULL);
        CHECK(strlen(line) == len);
        o = json_loadb(line, len - 1, JSON_REJECT_DUPLICATES, NULL);
        CHECK(o && json_is_object(o));
        ok = json_object_get(o, "ok");
        CHECK(json_is_boolean(ok));
        CHECK(json_is_true(ok) == want_ok);
        if (tag)
                CHECK(json_equal(json_object_get(o, "tag"), tag));
        else
                CHECK(json_object_get(o, "tag") == NULL);
        if (!want_ok) {
                json_t *e = json_object_get(o, "error");
                CHECK(json_is_string(e) && ringq_err_from_name(json_string_value(e)) >= 0);
                CHECK(json_is_string(json_object_get(o, "message")));
        }
        json_decref(o);
}

/* The job record a submit would be stored as (ops.c: do_submit), or,
 * for the other ops, a record with just the id they name. */
static void job_from_request(const struct request *rq, struct job_rec *j)
{
        *j = (struct job_rec){
                .id = rq->id > 0 ? rq->id : 1,
                .state = RINGQ_STATE_QUEUED,
                .owner_uid = 1000, .owner_gid = 1000,
                .submitted_at = 1700000000000LL,
                .run_at = rq->run_at >= 0 ? rq->run_at : 1700000000000LL + (rq->delay_ms > 0 ? rq->delay_ms : 0),
                .started_at = -1, .finished_at = -1,
                .max_attempts = rq->max_attempts > 0 ? rq->max_attempts : 1,
                .timeout_ms = rq->timeout_ms,
                .backoff_ms = rq->backoff_ms >= 0 ? rq->backoff_ms : 1000,
                .exit_code = -1, .signal = -1, .pid = -1,
        };
        if (rq->op != RINGQ_OP_SUBMIT) {
                j->max_attempts = 1;
                j->timeout_ms = -1;
                j->run_at = j->submitted_at;
                if (rq->op == RINGQ_OP_LIST && rq->state >= 0)
                        j->state = rq->state;
                return;
        }
        j->queue = strdup(rq->queue);
        j->priority = rq->priority;
        j->argv = proto_dump_compact(rq->argv);
        j->env = rq->env ? proto_dump_compact(rq->env) : NULL;
        j->cwd = strdup(rq->cwd);
        j->idem_key = rq->key ? strdup(rq->key) : NULL;
}

/* The job reply for rq renders and frames; for a submit its argv is the
 * request's. */
static void check_job_reply(const struct request *rq)
{
        struct job_rec j;
        json_t *job, *reply;
        char *line;
        size_t len = 0;

        job_from_request(rq, &j);
        if (rq->op == RINGQ_OP_SUBMIT)
                CHECK(j.queue && j.argv && j.cwd);
        job = proto_job(&j, "/var/lib/ringq/output");
        /* A job that was accepted can always be shown. */
        CHECK(job);
        if (rq->op == RINGQ_OP_SUBMIT)
                CHECK(json_equal(json_object_get(job, "argv"), rq->argv));
        reply = proto_ok();
        CHECK(reply);
        json_object_set_new(reply, "job", job);
        line = proto_line(reply, rq->tag, &len);
        check_line(line, len, rq->tag, 1);
        free(line);
        job_rec_done(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct request rq;
        struct proto_error err;
        json_t *reply;
        char *line;
        size_t len = 0;
        int r;

        memset(&err, 0, sizeof(err));
        r = proto_parse((const char *)data, size, &rq, &err);
        if (r < 0) {
                CHECK(err.code >= 0 && err.code < _RINGQ_ERR_MAX);
                CHECK(err.message[0] != '\0');
                /* Its message is valid UTF-8 even when it quotes the
                 * client's bytes cut anywhere (dc2610c), so it can be sent. */
                reply = proto_err_from(&err);
                CHECK(reply);
                line = proto_line(reply, rq.tag, &len);
                check_line(line, len, rq.tag, 0);
                free(line);
                request_done(&rq);
                return 0;
        }

        CHECK(rq.op >= 0 && rq.op < _RINGQ_OP_MAX);
        CHECK(rq.root && json_is_object(rq.root));
        if (rq.op == RINGQ_OP_SUBMIT) {
                CHECK(json_is_array(rq.argv) && json_array_size(rq.argv) > 0);
                CHECK(rq.cwd && rq.cwd[0] == '/');
                CHECK(rq.queue && rq.queue[0]);
                CHECK(rq.priority >= RINGQ_PRIO_MIN && rq.priority <= RINGQ_PRIO_MAX);
                CHECK(rq.max_attempts >= 1 && rq.max_attempts <= RINGQ_ATTEMPTS_MAX);
                CHECK(!(rq.delay_ms >= 0 && rq.run_at >= 0));
        } else {
                if (rq.op == RINGQ_OP_STATUS || rq.op == RINGQ_OP_CANCEL || rq.op == RINGQ_OP_RETRY ||
                    rq.op == RINGQ_OP_WAIT)
                        CHECK(rq.id >= 1);
                if (rq.op == RINGQ_OP_LIST)
                        CHECK(rq.limit >= 1 && rq.limit <= RINGQ_LIST_MAX);
        }
        check_job_reply(&rq);

        /* An error reply for a request that parsed (storage_error, say)
         * echoes the tag the same way. */
        reply = proto_err(RINGQ_ERR_STORAGE, NULL, "the queue database cannot answer now: %s", "fuzz");
        line = proto_line(reply, rq.tag, &len);
        check_line(line, len, rq.tag, 0);
        free(line);
        request_done(&rq);
        return 0;
}
