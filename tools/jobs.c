/* ringq verbs about known jobs: status, list, and cancel, retry and wait,
 * which pipeline one request per ID on one connection. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ringq/utf8.h"
#include "fmt.h"

static int64_t arg_timeout_ms = -1; /* wait --timeout */

/* ---- per-id verbs: cancel, retry, wait ---- */

struct idop {
        const char *op;
        const int64_t *ids;
        size_t n, sent, done; /* replies come in order: ids[done..sent) are unanswered */
        int64_t deadline_ms;  /* wait --timeout, as client_now_ms(); -1 for none */
        int code;             /* of the first id that failed */
};

static int idop_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct idop *o = ud;
        int64_t left;
        json_t *req;

        if (o->sent == o->n)
                return CLIENT_NEXT_DONE;
        req = json_pack("{s:s,s:I}", "op", o->op, "id", (json_int_t)o->ids[o->sent++]);
        /* A wait asked again on a new connection gets what is left of
         * the time, not all of it once more. */
        left = o->deadline_ms - client_now_ms();
        if (req && o->deadline_ms >= 0 && set_new(req, "timeout_ms", json_integer(left > 0 ? left : 0)) < 0) {
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

/* Waits lost with their connection are sent again; the ids answered
 * already are not. */
static void idop_rewind(void *ud)
{
        struct idop *o = ud;

        o->sent = o->done;
}

static int run_idop(const char *op, const int64_t *ids, size_t n, int64_t timeout_ms)
{
        static const client_pipe_ops ops = { idop_next, idop_reply };
        _cleanup_client_ client *c = NULL;
        struct idop o = { .op = op, .ids = ids, .n = n, .deadline_ms = -1 };
        int r;

        if (timeout_ms >= 0)
                o.deadline_ms = client_now_ms() + timeout_ms;
        r = open_client(&c);
        if (r)
                return r;
        /* cancel and retry are not sent twice: a lost reply may have been
         * a change made. */
        if (strcmp(op, "wait") == 0)
                r = pipeline_relinking(&c, &ops, &o, idop_rewind, o.deadline_ms > 0 ? o.deadline_ms : 0);
        else
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

/* When a queued job may start, if not yet: "in 10m". NULL otherwise. */
static const char *due_cell(char *buf, size_t n, const json_t *job, int64_t now_ms)
{
        const json_t *run_at = json_object_get(job, "run_at");
        char d[FMT_BUF];

        if (!json_is_integer(run_at) || json_integer_value(run_at) <= now_ms ||
            strcmp(json_string_value(json_object_get(job, "state")) ?: "", "queued") != 0)
                return NULL;
        snprintf(buf, n, "in %s", fmt_duration(d, sizeof(d), json_integer_value(run_at) - now_ms));
        return buf;
}

static int list_rows(fmt_table *t, const json_t *jobs, int64_t now_ms)
{
        size_t i;
        json_t *job;

        json_array_foreach(jobs, i, job) {
                char id[24], prio[24], tries[48], user[FMT_BUF], due[FMT_BUF];
                _cleanup_free_ char *cmd = fmt_argv(json_object_get(job, "argv"), false);
                const json_t *owner = json_object_get(job, "owner_uid");
                const char *cells[9];

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
                cells[3] = json_is_integer(owner) ? fmt_user(user, sizeof(user), json_integer_value(owner)) : NULL;
                cells[4] = prio;
                cells[5] = tries;
                cells[6] = due_cell(due, sizeof(due), job, now_ms);
                cells[7] = json_string_value(json_object_get(job, "reason"));
                cells[8] = cmd;
                if (fmt_table_add(t, cells) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* What a list asks for (struct list_args) and where it stopped. */
struct list_args {
        const char *state, *queue;
        const char *user;       /* as given, for the hint */
        int64_t owner_uid;      /* -1: any */
        int64_t limit;
        int64_t after, before;  /* 0: none */
        bool desc;
};
struct list_end {
        bool more;              /* jobs past the last one shown */
        int64_t next;           /* the id to go on from */
        int64_t remaining;      /* -1: not known */
        bool exact;             /* remaining is not a lower bound */
};

/* The id the page after reply starts from (next_after_id, or with desc
 * next_before_id), or 0 if reply is the last. ringqd says "more" and where
 * to go on whenever there is a next page (the id may lie past the last
 * job shown, or the page may be empty, when it skipped rows that do not
 * match). An older ringqd (ascending only) says so only for a page cut by
 * size, and cuts otherwise at the limit: a full page may then have a next
 * one, which starts after its last job. Returns -EBADMSG for a next page
 * that would not move on, which would never end. */
static int64_t list_next(const json_t *reply, bool desc, int64_t cursor, int64_t asked)
{
        const json_t *jobs = json_object_get(reply, "jobs");
        const json_t *more = json_object_get(reply, "more");
        const json_t *v = json_object_get(reply, desc ? "next_before_id" : "next_after_id");
        size_t n = json_array_size(jobs);
        int64_t next;

        if (more ? !json_is_true(more) : n == 0 || (int64_t)n < asked)
                return 0;
        if (more && json_is_integer(v))
                next = json_integer_value(v);
        else /* an older ringqd, or one that did not say where */
                next = json_integer_value(json_object_get(json_array_get(jobs, n - 1), "id"));
        if (desc)
                return next > 0 && (cursor == 0 || next < cursor) ? next : -EBADMSG;
        return next > cursor ? next : -EBADMSG;
}

static json_t *list_req(const struct list_args *a, int64_t page, int64_t after, int64_t before)
{
        json_t *req = json_pack("{s:s,s:I}", "op", "list", "limit", (json_int_t)page);

        if (req && ((a->state && set_new(req, "state", json_string(a->state)) < 0) ||
                    (a->queue && set_new(req, "queue", json_string(a->queue)) < 0) ||
                    (a->owner_uid >= 0 && set_new(req, "owner_uid", json_integer(a->owner_uid)) < 0) ||
                    /* Ascending is the default, and all an older ringqd knows. */
                    (a->desc && set_new(req, "order", json_string("desc")) < 0) ||
                    (after > 0 && set_new(req, "after_id", json_integer(after)) < 0) ||
                    (before > 0 && set_new(req, "before_id", json_integer(before)) < 0))) {
                json_decref(req);
                req = NULL;
        }
        return req;
}

/* Pages through list replies until limit jobs or the last page: each asks
 * for what is still wanted (at most RINGQ_LIST_MAX), from where the last
 * one ended. --json prints every reply, one line per page. *end says
 * whether jobs are left past the last one shown. */
static int list_jobs(client *c, const struct list_args *a, fmt_table *t, struct list_end *end)
{
        int64_t left = a->limit, after = a->after, before = a->before, now = fmt_now_ms();

        *end = (struct list_end){ .remaining = -1 };

        while (left > 0) {
                _cleanup_json_ json_t *reply = NULL;
                int64_t page = left > RINGQ_LIST_MAX ? RINGQ_LIST_MAX : left, next;
                const json_t *jobs, *rem;
                int r;

                /* What the last page said, once it is the last. */
                *end = (struct list_end){ .remaining = -1 };

                r = call(c, list_req(a, page, after, before), &reply);
                if (r)
                        return r;
                jobs = json_object_get(reply, "jobs");
                /* A page longer than asked (a daemon that ignored the
                 * limit) still counts whole: the table shows what came. */
                if (t && list_rows(t, jobs, now) < 0)
                        return conn_error("ringq", -ENOMEM);
                left -= (int64_t)json_array_size(jobs);
                next = list_next(reply, a->desc, a->desc ? before : after, page);
                if (next == -EBADMSG)
                        return conn_error(client_path(c), -EBADMSG);
                if (next == 0)
                        return 0;
                if (a->desc)
                        before = next;
                else
                        after = next;
                rem = json_object_get(reply, "remaining");
                *end = (struct list_end){
                        .more = true, .next = next,
                        .remaining = json_is_integer(rem) ? json_integer_value(rem) : -1,
                        .exact = json_is_true(json_object_get(reply, "remaining_exact")),
                };
        }
        return 0;
}

/* Append words to a JSON array of strings; NULL words end the list.
 * 0 or -ENOMEM. */
__attribute__((sentinel)) static int add_words(json_t *a, ...)
{
        va_list ap;
        const char *w;
        int r = 0;

        va_start(ap, a);
        while (r == 0 && (w = va_arg(ap, const char *)))
                r = json_array_append_new(a, json_string(w)) < 0 ? -ENOMEM : 0;
        va_end(ap);
        return r;
}

/* The last line of a list that did not show everything: how many are
 * left and the command that shows them, with the same filters, for
 * copying. Newest first goes on with --before; oldest first (--after
 * implies it) with --after, keeping a --before given. 0 or -ENOMEM. */
static int list_hint(FILE *f, const struct list_args *a, const struct list_end *end, bool limit_given)
{
        _cleanup_json_ json_t *cmd = json_array();
        _cleanup_free_ char *text = NULL;
        char next[24], lim[24], before[24];

        snprintf(next, sizeof(next), "%" PRId64, end->next);
        snprintf(lim, sizeof(lim), "%" PRId64, a->limit);
        snprintf(before, sizeof(before), "%" PRId64, a->before);
        if (!cmd || add_words(cmd, "ringq", NULL) < 0 || (arg_socket && add_words(cmd, "-s", arg_socket, NULL) < 0) ||
            add_words(cmd, "list", NULL) < 0 || (a->state && add_words(cmd, "--state", a->state, NULL) < 0) ||
            (a->queue && add_words(cmd, "-q", a->queue, NULL) < 0) ||
            (a->user && add_words(cmd, "--user", a->user, NULL) < 0) ||
            (limit_given && add_words(cmd, "-n", lim, NULL) < 0) ||
            (!a->desc && a->before > 0 && add_words(cmd, "--before", before, NULL) < 0) ||
            add_words(cmd, a->desc ? "--before" : "--after", next, NULL) < 0)
                return -ENOMEM;
        text = fmt_argv(cmd, true);
        if (!text)
                return -ENOMEM;
        if (end->remaining > 0 && end->exact)
                fprintf(f, "%" PRId64 " more: %s\n", end->remaining, text);
        else if (end->remaining > 0)
                fprintf(f, "over %" PRId64 " more: %s\n", end->remaining, text);
        else
                fprintf(f, "more: %s\n", text);
        return 0;
}

/* --user: a name from the user database, or a number. */
static int parse_user(const char *s, int64_t *ret)
{
        const struct passwd *pw = getpwnam(s);

        if (pw) {
                *ret = pw->pw_uid;
                return 0;
        }
        return parse_i64(s, 0, (int64_t)UINT32_MAX - 1, ret);
}

/* list's own options, past cli.h's shared ones. */
enum { OPT_BEFORE = 0x200, OPT_OLDEST, OPT_USER };

static const char *const list_headers[] = { "ID", "STATE", "QUEUE", "USER", "PRIO", "TRIES", "DUE", "REASON",
                                            "COMMAND" };
static const bool list_right[] = { true, false, false, false, true, true, false, false, false };

int verb_list(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "state", required_argument, NULL, OPT_STATE },
                { "queue", required_argument, NULL, 'q' },
                { "limit", required_argument, NULL, 'n' },
                { "after", required_argument, NULL, OPT_AFTER },
                { "before", required_argument, NULL, OPT_BEFORE },
                { "oldest", no_argument, NULL, OPT_OLDEST },
                { "user", required_argument, NULL, OPT_USER },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        struct list_args a = { .owner_uid = -1 };
        struct list_end end;
        bool oldest = false, limit_given;
        fmt_table *t = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "q:n:", opts, NULL)) != -1) {
                switch (c) {
                case OPT_STATE:
                        if (ringq_state_from_name(optarg) < 0)
                                return usage_error(v, "unknown state '%s' (queued, running, succeeded, failed, canceled)", optarg);
                        a.state = optarg;
                        break;
                case 'q':
                        a.queue = optarg;
                        break;
                case 'n':
                        if (parse_i64(optarg, 1, INT32_MAX, &a.limit) < 0)
                                return usage_error(v, "limit must be a positive integer, not '%s'", optarg);
                        break;
                case OPT_AFTER:
                        if (parse_i64(optarg, 0, INT64_MAX, &a.after) < 0)
                                return usage_error(v, "'%s' is not a job ID", optarg);
                        oldest = true;
                        break;
                case OPT_BEFORE:
                        if (parse_i64(optarg, 1, INT64_MAX, &a.before) < 0)
                                return usage_error(v, "'%s' is not a job ID", optarg);
                        break;
                case OPT_OLDEST:
                        oldest = true;
                        break;
                case OPT_USER:
                        if (parse_user(optarg, &a.owner_uid) < 0)
                                return usage_error(v, "no user '%s'", optarg);
                        a.user = optarg;
                        break;
                default:
                        if ((r = common_opt(v, c, argv)) >= 0)
                                return r;
                }
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        if (a.queue && !ringq_utf8_valid(a.queue))
                return usage_error(v, "queue must be valid UTF-8");
        /* Newest first: what an operator looks for. --after goes on
         * forward from a job, as it always did. */
        a.desc = !oldest;
        r = open_client(&cl);
        if (r)
                return r;
        if (!arg_json) {
                t = fmt_table_new(9, list_headers, list_right);
                if (!t)
                        return conn_error("ringq", -ENOMEM);
        }
        limit_given = a.limit > 0;
        if (!limit_given)
                a.limit = RINGQ_LIST_DEFAULT;
        r = list_jobs(cl, &a, t, &end);
        if (r == 0 && t && fmt_table_print(stdout, t, fmt_terminal_width()) < 0)
                r = RINGQ_EXIT_SOFTWARE;
        if (r == 0 && t && end.more && list_hint(stdout, &a, &end, limit_given) < 0)
                r = conn_error("ringq", -ENOMEM);
        fmt_table_free(t);
        return r;
}
