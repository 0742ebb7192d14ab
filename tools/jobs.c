/* ringq verbs about known jobs: status, list, and cancel, retry and wait,
 * which pipeline one request per ID on one connection. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ringq/utf8.h"
#include "fmt.h"

static int64_t arg_timeout_ms = -1; /* wait --timeout */
static const char *arg_state;
static const char *arg_queue;
static int64_t arg_limit; /* 0: RINGQ_LIST_DEFAULT */
static int64_t arg_after;

/* ---- per-id verbs: cancel, retry, wait ---- */

struct idop {
        const char *op;
        const int64_t *ids;
        size_t n, sent, done;
        int64_t timeout_ms; /* wait only; -1 for none */
        int code;           /* of the first id that failed */
};

static int idop_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct idop *o = ud;
        json_t *req;

        if (o->sent == o->n)
                return CLIENT_NEXT_DONE;
        req = json_pack("{s:s,s:I}", "op", o->op, "id", (json_int_t)o->ids[o->sent++]);
        if (req && o->timeout_ms >= 0 && set_new(req, "timeout_ms", json_integer(o->timeout_ms)) < 0) {
                json_decref(req);
                req = NULL;
        }
        *ret_req = req;
        return req ? CLIENT_NEXT_REQ : -ENOMEM;
}

static int idop_reply(void *ud, json_t *reply)
{
        struct idop *o = ud;
        int code;

        o->done++;
        if (strcmp(o->op, "wait") == 0) {
                code = wait_result(reply, NULL);
        } else {
                if (arg_json)
                        emit_json(reply);
                if (client_reply_ok(reply)) {
                        const json_t *job = json_object_get(reply, "job");
                        code = 0;
                        if (!arg_json)
                                printf("%" PRId64 " %s\n", (int64_t)json_integer_value(json_object_get(job, "id")),
                                       json_string_value(json_object_get(job, "state")) ?: "-");
                } else {
                        code = reply_error(reply, NULL);
                }
        }
        if (code && !o->code)
                o->code = code;
        return 0;
}

static int run_idop(const char *op, const int64_t *ids, size_t n, int64_t timeout_ms)
{
        static const client_pipe_ops ops = { idop_next, idop_reply };
        _cleanup_client_ client *c = NULL;
        struct idop o = { .op = op, .ids = ids, .n = n, .timeout_ms = timeout_ms };
        int r;

        r = open_client(&c);
        if (r)
                return r;
        r = client_pipeline(c, CLIENT_WINDOW_MAX, &ops, &o);
        if (r < 0)
                return conn_error(client_path(c), r);
        return o.code;
}

int verb_ids(const struct verb *v, int argc, char **argv)
{
        static const struct option wait_opts[] = {
                COMMON_LONG,
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {}
        };
        static const struct option opts[] = { COMMON_LONG, {} };
        bool is_wait = strcmp(v->name, "wait") == 0;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, is_wait ? wait_opts : opts, NULL)) != -1) {
                if (c == OPT_TIMEOUT) {
                        if ((r = parse_dur(v, "--timeout", optarg, &arg_timeout_ms)))
                                return r;
                } else if ((r = common_opt(v, c, argv)) >= 0) {
                        return r;
                }
        }
        r = parse_ids(v, argc - optind, argv + optind, &ids, &n);
        if (r)
                return r;
        return run_idop(v->name, ids, n, is_wait ? arg_timeout_ms : -1);
}

/* ---- status, list ---- */

int verb_status(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (argc - optind > 1)
                return usage_error(v, "status takes one job ID");
        r = parse_ids(v, argc - optind, argv + optind, &ids, &n);
        if (r)
                return r;
        r = open_client(&cl);
        if (r)
                return r;
        r = call(cl, json_pack("{s:s,s:I}", "op", "status", "id", (json_int_t)ids[0]), &reply);
        if (r)
                return r;
        if (!arg_json && fmt_job(stdout, json_object_get(reply, "job"), fmt_now_ms()) < 0)
                return RINGQ_EXIT_SOFTWARE;
        return 0;
}

static int list_rows(fmt_table *t, const json_t *jobs)
{
        size_t i;
        json_t *job;

        json_array_foreach(jobs, i, job) {
                char id[24], prio[24], tries[48];
                _cleanup_free_ char *cmd = fmt_argv(json_object_get(job, "argv"), false);
                const char *cells[7];

                if (!cmd)
                        return -ENOMEM;
                snprintf(id, sizeof(id), "%" PRId64, (int64_t)json_integer_value(json_object_get(job, "id")));
                snprintf(prio, sizeof(prio), "%" PRId64, (int64_t)json_integer_value(json_object_get(job, "priority")));
                snprintf(tries, sizeof(tries), "%" PRId64 "/%" PRId64,
                         (int64_t)json_integer_value(json_object_get(job, "attempts")),
                         (int64_t)json_integer_value(json_object_get(job, "max_attempts")));
                cells[0] = id;
                cells[1] = json_string_value(json_object_get(job, "state"));
                cells[2] = json_string_value(json_object_get(job, "queue"));
                cells[3] = prio;
                cells[4] = tries;
                cells[5] = json_string_value(json_object_get(job, "reason"));
                cells[6] = cmd;
                if (fmt_table_add(t, cells) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The after_id of the page after reply, or 0 if reply is the last.
 * ringqd cuts a reply by size and then says where to go on ("more",
 * "next_after_id"; the id may lie past the last job shown, or the page
 * may be empty, when it skipped rows that do not match). An older ringqd
 * says nothing and cuts only at the limit: a full page may then have a
 * next one, which starts after its last job. Returns -EBADMSG for a next
 * page that would not move forward, which would never end. */
static int64_t list_next(const json_t *reply, int64_t after, int64_t asked)
{
        const json_t *jobs = json_object_get(reply, "jobs");
        const json_t *more = json_object_get(reply, "more");
        const json_t *v = json_object_get(reply, "next_after_id");
        size_t n = json_array_size(jobs);
        int64_t next;

        if (more ? !json_is_true(more) : n == 0 || (int64_t)n < asked)
                return 0;
        if (more && json_is_integer(v))
                next = json_integer_value(v);
        else /* an older ringqd, or one that did not say where */
                next = json_integer_value(json_object_get(json_array_get(jobs, n - 1), "id"));
        return next > after ? next : -EBADMSG;
}

/* Pages through list replies until limit jobs or the last page: each asks
 * for what is still wanted (at most RINGQ_LIST_MAX), from where the last
 * one ended. --json prints every reply, one line per page. */
static int list_jobs(client *c, const char *state, const char *queue, int64_t limit,
                     int64_t after, fmt_table *t)
{
        int64_t left = limit;

        while (left > 0) {
                _cleanup_json_ json_t *reply = NULL;
                json_t *req = json_pack("{s:s}", "op", "list");
                const json_t *jobs;
                int64_t page = left > RINGQ_LIST_MAX ? RINGQ_LIST_MAX : left;
                int r;

                if (req && ((state && set_new(req, "state", json_string(state)) < 0) ||
                            (queue && set_new(req, "queue", json_string(queue)) < 0) ||
                            set_new(req, "limit", json_integer(page)) < 0 ||
                            (after > 0 && set_new(req, "after_id", json_integer(after)) < 0))) {
                        json_decref(req);
                        req = NULL;
                }
                r = call(c, req, &reply);
                if (r)
                        return r;
                jobs = json_object_get(reply, "jobs");
                /* A page longer than asked (a daemon that ignored the
                 * limit) still counts whole: the table shows what came. */
                if (t && list_rows(t, jobs) < 0)
                        return conn_error("ringq", -ENOMEM);
                left -= (int64_t)json_array_size(jobs);
                after = list_next(reply, after, page);
                if (after == -EBADMSG)
                        return conn_error(client_path(c), -EBADMSG);
                if (after == 0)
                        return 0;
        }
        return 0;
}

static const char *const list_headers[] = { "ID", "STATE", "QUEUE", "PRIO", "TRIES", "REASON", "COMMAND" };
static const bool list_right[] = { true, false, false, true, true, false, false };

int verb_list(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "state", required_argument, NULL, OPT_STATE },
                { "queue", required_argument, NULL, 'q' },
                { "limit", required_argument, NULL, 'n' },
                { "after", required_argument, NULL, OPT_AFTER },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        fmt_table *t = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "q:n:", opts, NULL)) != -1) {
                switch (c) {
                case OPT_STATE:
                        if (ringq_state_from_name(optarg) < 0)
                                return usage_error(v, "unknown state '%s' (queued, running, succeeded, failed, canceled)", optarg);
                        arg_state = optarg;
                        break;
                case 'q':
                        arg_queue = optarg;
                        break;
                case 'n':
                        if (parse_i64(optarg, 1, INT32_MAX, &arg_limit) < 0)
                                return usage_error(v, "limit must be a positive integer, not '%s'", optarg);
                        break;
                case OPT_AFTER:
                        if (parse_i64(optarg, 0, INT64_MAX, &arg_after) < 0)
                                return usage_error(v, "'%s' is not a job ID", optarg);
                        break;
                default:
                        if ((r = common_opt(v, c, argv)) >= 0)
                                return r;
                }
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        if (arg_queue && !ringq_utf8_valid(arg_queue))
                return usage_error(v, "queue must be valid UTF-8");
        r = open_client(&cl);
        if (r)
                return r;
        if (!arg_json) {
                t = fmt_table_new(7, list_headers, list_right);
                if (!t)
                        return conn_error("ringq", -ENOMEM);
        }
        r = list_jobs(cl, arg_state, arg_queue, arg_limit ? arg_limit : RINGQ_LIST_DEFAULT, arg_after, t);
        if (r == 0 && t && fmt_table_print(stdout, t, fmt_terminal_width()) < 0)
                r = RINGQ_EXIT_SOFTWARE;
        fmt_table_free(t);
        return r;
}

