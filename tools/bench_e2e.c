/* ringq-bench e2e: N jobs of one command submitted as one pipelined batch
 * on one connection (like `ringq submit --batch`), then waited for, also
 * pipelined. Reports the wall time from the first submit to the last job's
 * end, jobs/s, and the jobs' own queue-wait (started_at - submitted_at) and
 * run time (finished_at - started_at), which ringqd records in unix ms.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct e2e {
        const bench_opts *o;
        json_t *req;
        uint64_t sent, accepted, rejected, errors;
        int64_t *ids;            /* accepted ids, in order */
        uint64_t waits_sent, waits_done;
        uint64_t succeeded, failed, other, timed_out;
        int64_t deadline_ms;     /* CLOCK_MONOTONIC ms */
        int64_t first_submit_ms, last_end_ms; /* unix ms, from the daemon */
        hist *queue_wait, *run;
        char first_error[160];
};

static void note(struct e2e *e, const json_t *reply)
{
        if (!e->first_error[0])
                snprintf(e->first_error, sizeof(e->first_error), "%s: %s", client_reply_error(reply),
                         client_reply_message(reply));
}

static int submit_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct e2e *e = ud;

        if (e->sent >= e->o->count || client_now_ms() >= e->deadline_ms)
                return CLIENT_NEXT_DONE;
        *ret_req = json_incref(e->req);
        e->sent++;
        return CLIENT_NEXT_REQ;
}

static int submit_reply(void *ud, json_t *reply)
{
        struct e2e *e = ud;

        if (client_reply_ok(reply)) {
                e->ids[e->accepted++] = json_integer_value(json_object_get(reply, "id"));
        } else if (ringq_err_from_name(client_reply_error(reply)) == RINGQ_ERR_QUEUE_FULL) {
                e->rejected++;
        } else {
                e->errors++;
                note(e, reply);
        }
        return 0;
}

static int wait_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct e2e *e = ud;
        int64_t left = e->deadline_ms - client_now_ms();

        if (e->waits_sent >= e->accepted)
                return CLIENT_NEXT_DONE;
        *ret_req = json_pack("{s:s, s:I, s:I}", "op", "wait", "id", (json_int_t)e->ids[e->waits_sent],
                             "timeout_ms", (json_int_t)(left > 0 ? left : 0));
        if (!*ret_req)
                return -ENOMEM;
        e->waits_sent++;
        return CLIENT_NEXT_REQ;
}

static int64_t ms_field(const json_t *job, const char *k)
{
        const json_t *v = json_object_get(job, k);

        return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int wait_reply(void *ud, json_t *reply)
{
        struct e2e *e = ud;
        const json_t *job = json_object_get(reply, "job");
        int64_t sub, start, end;
        const char *state;

        e->waits_done++;
        if (!client_reply_ok(reply) || !json_is_object(job)) {
                if (ringq_err_from_name(client_reply_error(reply)) == RINGQ_ERR_TIMEOUT)
                        e->timed_out++;
                else
                        e->other++;
                note(e, reply);
                return 0;
        }
        state = json_string_value(json_object_get(job, "state"));
        if (state && strcmp(state, "succeeded") == 0)
                e->succeeded++;
        else if (state && strcmp(state, "failed") == 0)
                e->failed++;
        else
                e->other++;
        sub = ms_field(job, "submitted_at");
        start = ms_field(job, "started_at");
        end = ms_field(job, "finished_at");
        if (sub >= 0 && (e->first_submit_ms < 0 || sub < e->first_submit_ms))
                e->first_submit_ms = sub;
        if (end > e->last_end_ms)
                e->last_end_ms = end;
        if (sub >= 0 && start >= sub)
                hist_add(e->queue_wait, (uint64_t)(start - sub) * 1000000);
        if (start >= 0 && end >= start)
                hist_add(e->run, (uint64_t)(end - start) * 1000000);
        return 0;
}

void bench_add_daemon_figures(client *c, json_t *res, const proc_sample *a, const proc_sample *b, uint64_t jobs)
{
        _cleanup_json_ json_t *req = json_pack("{s:s}", "op", "stats"), *reply = NULL;
        long hz = sysconf(_SC_CLK_TCK);
        json_t *path, *out, *step;
        const char *name;

        if (a->ok && b->ok && hz > 0 && jobs)
                json_object_set_new(res, "daemon_cpu_us_per_job",
                                    json_real(round((double)(b->cpu_ticks - a->cpu_ticks) * 1e6 / (double)hz / (double)jobs)));
        if (!req || client_call(c, req, &reply) < 0 || !client_reply_ok(reply))
                return;
        path = json_object_get(reply, "job_path_ms");
        out = json_object();
        if (!json_is_object(path) || !out) {
                json_decref(out);
                return;
        }
        json_object_foreach(path, name, step)
                json_object_set_new(out, name,
                                    json_pack("{s:O?, s:O?}", "p50", json_object_get(step, "p50"), "p99",
                                              json_object_get(step, "p99")));
        json_object_set_new(res, "job_path_ms", out);
}

int bench_e2e(const bench_opts *o, json_t **ret)
{
        static const client_pipe_ops submit_ops = { submit_next, submit_reply };
        static const client_pipe_ops wait_ops = { wait_next, wait_reply };
        _cleanup_client_ client *c = NULL;
        struct e2e e = { .o = o, .first_submit_ms = -1, .last_end_ms = -1 };
        proc_sample pa = { 0 }, pb = { 0 };
        int64_t t0, t_submitted, t_end;
        json_t *res = NULL;
        int pid, r;

        e.ids = calloc(o->count ? o->count : 1, sizeof(*e.ids));
        e.queue_wait = calloc(1, sizeof(hist));
        e.run = calloc(1, sizeof(hist));
        if (!e.ids || !e.queue_wait || !e.run) {
                r = -ENOMEM;
                goto out;
        }
        r = bench_submit_request(o, 0, &e.req);
        if (r < 0)
                goto out;
        r = bench_connect_sampled(o, &c, &pid, &pa);
        if (r < 0)
                goto out;

        t0 = now_ns();
        e.deadline_ms = client_now_ms() + o->duration_ms;
        r = client_pipeline(c, o->depth, &submit_ops, &e);
        t_submitted = now_ns();
        if (r == 0)
                r = client_pipeline(c, o->depth, &wait_ops, &e);
        t_end = now_ns();
        (void)proc_read(pid, &pb);
        if (r < 0) {
                fprintf(stderr, "ringq-bench: %s: %s\n", o->socket, strerror(-r));
                r = -ECANCELED;
                goto out;
        }

        {
                double wall = (double)(t_end - t0) / 1e9, sub_s = (double)(t_submitted - t0) / 1e9;

                res = json_object();
                if (!res) {
                        r = -ENOMEM;
                        goto out;
                }
                json_object_set_new(res, "mode", json_string("e2e"));
                json_object_set_new(res, "target", json_string("ringq"));
                json_object_set_new(res, "cmd", json_string(o->cmd));
                json_object_set_new(res, "depth", json_integer(o->depth));
                json_object_set_new(res, "jobs", json_integer((json_int_t)e.sent));
                json_object_set_new(res, "accepted", json_integer((json_int_t)e.accepted));
                json_object_set_new(res, "rejected", json_integer((json_int_t)e.rejected));
                json_object_set_new(res, "errors", json_integer((json_int_t)e.errors));
                json_object_set_new(res, "succeeded", json_integer((json_int_t)e.succeeded));
                json_object_set_new(res, "failed", json_integer((json_int_t)e.failed));
                json_object_set_new(res, "unfinished", json_integer((json_int_t)(e.timed_out + e.other)));
                json_object_set_new(res, "submit_s", json_real(round(sub_s * 1000) / 1000));
                json_object_set_new(res, "submit_per_s",
                                    json_real(sub_s > 0 ? round((double)e.accepted / sub_s) : 0));
                json_object_set_new(res, "wall_s", json_real(round(wall * 1000) / 1000));
                json_object_set_new(res, "jobs_per_s",
                                    json_real(wall > 0 ? round((double)e.succeeded / wall * 10) / 10 : 0));
                /* The same span on ringqd's clock: first submit to last end. */
                json_object_set_new(res, "daemon_span_s",
                                    e.first_submit_ms >= 0 && e.last_end_ms >= e.first_submit_ms
                                            ? json_real((double)(e.last_end_ms - e.first_submit_ms) / 1000)
                                            : json_null());
                json_object_set_new(res, "queue_wait_ms", hist_json(e.queue_wait));
                json_object_set_new(res, "run_ms", hist_json(e.run));
                json_object_set_new(res, "daemon", proc_json(pid, &pa, &pb));
                bench_add_daemon_figures(c, res, &pa, &pb, e.succeeded + e.failed);
                if (e.first_error[0])
                        json_object_set_new(res, "first_error", json_string(e.first_error));
        }
        *ret = TAKE_PTR(res);
        r = 0;
out:
        json_decref(e.req);
        free(e.ids);
        free(e.queue_wait);
        free(e.run);
        return r;
}
