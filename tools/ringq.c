/* ringq: the command-line client of ringqd.
 *
 * Git-style verbs, each with its own getopt_long table. Every verb talks to
 * ringqd through client.c and formats through fmt.c; this file only maps
 * arguments to requests and replies to output and exit codes (SPEC "CLI").
 * Needs inotify for `logs -f` (falls back to a 250 ms poll without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "fmt.h"
#include "ringq/parse.h"

/* Largest --batch line; longer ones fail alone without being read into
 * memory whole. ringqd's default request limit is far below this. */
#define BATCH_LINE_MAX (1u << 20)
/* Lines read but not yet printed; bounds memory while one line waits. */
#define BATCH_RING 1024u
#define BLOCK_SLEEP_MIN_MS 10
#define BLOCK_SLEEP_MAX_MS 5000
#define FOLLOW_POLL_MS 250
/* Replies already reported to the user; the exit code is kept elsewhere. */
#define E_REPORTED ECANCELED

struct verb;
typedef int (*verb_fn)(const struct verb *v, int argc, char **argv);
struct verb {
        const char *name;
        verb_fn fn;
        const char *args;    /* after "ringq NAME" in the usage line */
        const char *summary;
        const char *options; /* verb-specific option lines for --help */
};

/* Parsed arguments; the only mutable globals. */
static const char *arg_socket;
static bool arg_json;
static const char *arg_queue;
static int64_t arg_priority;
static bool arg_priority_set;
static int64_t arg_delay_ms = -1;
static int64_t arg_timeout_ms = -1;
static int64_t arg_attempts;
static int64_t arg_backoff_ms = -1;
static const char *arg_key;
static bool arg_no_env;
static const char *arg_cwd;
static bool arg_wait;
static bool arg_block;
static int64_t arg_block_timeout_ms = 60000;
static const char *arg_batch;
static const char *arg_state;
static int64_t arg_limit;
static int64_t arg_after;
static bool arg_stderr;
static bool arg_follow;
static bool arg_prometheus;
static int64_t arg_interval_ms = 1000;
static int64_t arg_iterations;

/* ---- messages and exit codes ---- */

__attribute__((format(printf, 2, 3)))
static int usage_error(const struct verb *v, const char *fmt, ...)
{
        va_list ap;

        fputs("ringq: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (v)
                fprintf(stderr, "\nTry 'ringq %s --help'\n", v->name);
        else
                fputs("\nTry 'ringq --help'\n", stderr);
        return RINGQ_EXIT_USAGE;
}

/* Report a failed client call on the connection to path; the exit code. */
static int conn_error(const char *path, int r)
{
        switch (r) {
        case -E_REPORTED:
                return RINGQ_EXIT_SOFTWARE;
        case -ECONNRESET:
        case -EPIPE:
                fprintf(stderr, "ringq: %s: connection closed by ringqd\n", path);
                return RINGQ_EXIT_UNREACHABLE;
        case -EBADMSG:
                fprintf(stderr, "ringq: %s: malformed reply from ringqd\n", path);
                return RINGQ_EXIT_SOFTWARE;
        case -EMSGSIZE:
                fprintf(stderr, "ringq: %s: reply longer than %u MiB\n", path, CLIENT_MAX_LINE >> 20);
                return RINGQ_EXIT_SOFTWARE;
        default:
                fprintf(stderr, "ringq: %s: %s\n", path, strerror(-r));
                return RINGQ_EXIT_SOFTWARE;
        }
}

static int open_client(client **ret)
{
        const char *path = ringq_client_socket(arg_socket);
        int r;

        r = client_connect(path, ret);
        if (r < 0) {
                fprintf(stderr, "ringq: cannot connect to %s: %s\n", path, strerror(-r));
                return RINGQ_EXIT_UNREACHABLE;
        }
        return 0;
}

static void emit_json(const json_t *reply)
{
        /* 15 digits: jansson's default 17 shows 0.4 as 0.40000000000000002. */
        if (json_dumpf(reply, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) == 0)
                fputc('\n', stdout);
}

/* Print an error reply as "ringq: [prefix]code: message"; its exit code. */
static int reply_error(const json_t *reply, const char *prefix)
{
        const char *field = json_string_value(json_object_get(reply, "field"));

        fprintf(stderr, "ringq: %s%s: %s", prefix ? prefix : "", client_reply_error(reply),
                client_reply_message(reply));
        if (field)
                fprintf(stderr, " (field %s)", field);
        fputc('\n', stderr);
        return client_reply_exit(reply);
}

/* One call; prints the reply under --json and errors always. Returns the
 * exit code, with *ret_reply set when the reply was ok. */
static int call(client *c, json_t *req, json_t **ret_reply)
{
        _cleanup_json_ json_t *reply = NULL;
        int r;

        if (!req)
                return conn_error(client_path(c), -ENOMEM);
        r = client_call(c, req, &reply);
        json_decref(req);
        if (r < 0)
                return conn_error(client_path(c), r);
        if (arg_json)
                emit_json(reply);
        if (!client_reply_ok(reply))
                return reply_error(reply, NULL);
        *ret_reply = TAKE_PTR(reply);
        return 0;
}

/* The exit code a finished job stands for (SPEC "Exit codes"). */
static int job_exit_code(const json_t *job)
{
        const json_t *ec = json_object_get(job, "exit_code");
        const json_t *sig = json_object_get(job, "signal");

        switch (ringq_state_from_name(json_string_value(json_object_get(job, "state")))) {
        case RINGQ_STATE_SUCCEEDED:
                return 0;
        case RINGQ_STATE_FAILED:
                if (json_is_integer(ec) && json_integer_value(ec) > 0 && json_integer_value(ec) < 256)
                        return (int)json_integer_value(ec);
                if (json_is_integer(sig) && json_integer_value(sig) > 0 && json_integer_value(sig) < 128)
                        return 128 + (int)json_integer_value(sig);
                return 1;
        case RINGQ_STATE_CANCELED:
                return 1;
        default:
                return RINGQ_EXIT_SOFTWARE;
        }
}

/* Handle a wait reply: its exit code, with "job N failed: reason" for the
 * jobs that did not succeed. */
static int wait_result(const json_t *reply, const char *prefix)
{
        const json_t *job = json_object_get(reply, "job");
        const char *state, *reason;
        int code;

        if (arg_json)
                emit_json(reply);
        if (!client_reply_ok(reply))
                return reply_error(reply, prefix);
        code = job_exit_code(job);
        if (code == 0)
                return 0;
        state = json_string_value(json_object_get(job, "state"));
        reason = json_string_value(json_object_get(job, "reason"));
        if (!state)
                state = "failed";
        if (reason && strcmp(reason, state) != 0)
                fprintf(stderr, "ringq: job %" PRId64 " %s: %s\n",
                        (int64_t)json_integer_value(json_object_get(job, "id")), state, reason);
        else
                fprintf(stderr, "ringq: job %" PRId64 " %s\n",
                        (int64_t)json_integer_value(json_object_get(job, "id")), state);
        return code;
}

/* ---- argument parsing ---- */

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (!*s || *end || errno || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_ids(const struct verb *v, int argc, char **argv, int64_t **ret, size_t *ret_n)
{
        int64_t *ids;

        if (argc <= 0)
                return usage_error(v, "%s needs a job ID", v->name);
        ids = calloc((size_t)argc, sizeof(*ids));
        if (!ids)
                return conn_error("ringq", -ENOMEM);
        for (int i = 0; i < argc; i++)
                if (parse_i64(argv[i], 1, INT64_MAX, &ids[i]) < 0) {
                        free(ids);
                        return usage_error(v, "'%s' is not a job ID", argv[i]);
                }
        *ret = ids;
        *ret_n = (size_t)argc;
        return 0;
}

static int parse_dur(const struct verb *v, const char *opt, const char *s, int64_t *ret)
{
        if (ringq_parse_duration_ms(s, ret) < 0)
                return usage_error(v, "bad duration for %s: '%s' (use e.g. 250ms, 30s, 5m, 2h, 7d)", opt, s);
        return 0;
}

enum {
        OPT_JSON = 0x100,
        OPT_VERSION,
        OPT_DELAY,
        OPT_TIMEOUT,
        OPT_ATTEMPTS,
        OPT_BACKOFF,
        OPT_KEY,
        OPT_NO_ENV,
        OPT_WAIT,
        OPT_BLOCK,
        OPT_BLOCK_TIMEOUT,
        OPT_BATCH,
        OPT_STATE,
        OPT_QUEUE,
        OPT_LIMIT,
        OPT_AFTER,
        OPT_STDERR,
        OPT_PROMETHEUS,
        OPT_INTERVAL,
};

#define COMMON_SHORT "s:h"
#define COMMON_LONG                                                            \
        { "socket", required_argument, NULL, 's' },                            \
        { "json", no_argument, NULL, OPT_JSON },                               \
        { "help", no_argument, NULL, 'h' }

static const char common_help[] =
        "  -s, --socket PATH     ringqd's socket (default: $RINGQ_SOCKET, else " RINGQ_SOCKET_DEFAULT ")\n"
        "      --json            print ringqd's replies as JSON, one per line\n"
        "  -h, --help            show this help\n";

static void verb_help(const struct verb *v)
{
        printf("Usage: ringq %s %s\n\n%s.\n\nOptions:\n%s%s", v->name, v->args, v->summary,
               v->options, common_help);
}

/* Options every verb shares, and getopt's errors. -1 to go on, else the
 * exit code. */
static int common_opt(const struct verb *v, int c, char **argv)
{
        switch (c) {
        case 's':
                arg_socket = optarg;
                return -1;
        case OPT_JSON:
                arg_json = true;
                return -1;
        case 'h':
                verb_help(v);
                return 0;
        case ':':
                return usage_error(v, "option '%s' needs a value", argv[optind - 1]);
        default:
                if (optopt > 0 && optopt < 0x100)
                        return usage_error(v, "unknown option '-%c'", optopt);
                return usage_error(v, "unknown option '%s'", argv[optind - 1]);
        }
}

/* ---- submit ---- */

static bool utf8_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                unsigned n, cp;

                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0)
                        n = 1, cp = *p & 0x1f;
                else if ((*p & 0xf0) == 0xe0)
                        n = 2, cp = *p & 0x0f;
                else if ((*p & 0xf8) == 0xf0)
                        n = 3, cp = *p & 0x07;
                else
                        return false;
                p++;
                for (unsigned i = 0; i < n; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (*p & 0x3f);
                }
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
        }
        return true;
}

/* json_object_set_new that reports failure (it frees v either way). */
static int set_new(json_t *o, const char *k, json_t *v)
{
        return v && json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

static int env_object(json_t **ret)
{
        _cleanup_json_ json_t *env = json_object();

        if (!env)
                return -ENOMEM;
        for (char **e = environ; *e; e++) {
                const char *eq = strchr(*e, '=');
                _cleanup_free_ char *key = NULL;

                if (!eq || eq == *e)
                        continue;
                key = strndup(*e, (size_t)(eq - *e));
                if (!key)
                        return -ENOMEM;
                if (!utf8_valid(*e)) {
                        fprintf(stderr, "ringq: not sending environment variable %s: not UTF-8, ignoring\n", key);
                        continue;
                }
                /* getenv() takes the first of duplicates; so does the job. */
                if (json_object_get(env, key))
                        continue;
                if (set_new(env, key, json_string(eq + 1)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static int job_cwd(char **ret)
{
        _cleanup_free_ char *cwd = NULL;

        if (arg_cwd && arg_cwd[0] == '/') {
                cwd = strdup(arg_cwd);
                if (!cwd)
                        return -ENOMEM;
        } else {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
                if (arg_cwd) {
                        char *joined;

                        if (asprintf(&joined, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, arg_cwd) < 0)
                                return -ENOMEM;
                        free(cwd);
                        cwd = joined;
                }
        }
        if (!utf8_valid(cwd))
                return -EILSEQ;
        *ret = TAKE_PTR(cwd);
        return 0;
}

/* Everything of a submit request except argv, shared by every --batch job. */
static int submit_base(json_t **ret)
{
        _cleanup_json_ json_t *req = json_pack("{s:s}", "op", "submit");
        _cleanup_free_ char *cwd = NULL;
        json_t *env;
        int r;

        if (!req)
                return -ENOMEM;
        r = job_cwd(&cwd);
        if (r < 0) {
                if (r == -EILSEQ)
                        fprintf(stderr, "ringq: working directory is not UTF-8; use -C\n");
                else
                        fprintf(stderr, "ringq: cannot get the working directory: %s; use -C\n", strerror(-r));
                return -E_REPORTED;
        }
        if (set_new(req, "cwd", json_string(cwd)) < 0)
                return -ENOMEM;
        if (!arg_no_env) {
                r = env_object(&env);
                if (r < 0)
                        return r;
                if (set_new(req, "env", env) < 0)
                        return -ENOMEM;
        }
        if ((arg_queue && set_new(req, "queue", json_string(arg_queue)) < 0) ||
            (arg_priority_set && set_new(req, "priority", json_integer(arg_priority)) < 0) ||
            (arg_delay_ms >= 0 && set_new(req, "delay_ms", json_integer(arg_delay_ms)) < 0) ||
            (arg_timeout_ms >= 0 && set_new(req, "timeout_ms", json_integer(arg_timeout_ms)) < 0) ||
            (arg_attempts > 0 && set_new(req, "max_attempts", json_integer(arg_attempts)) < 0) ||
            (arg_backoff_ms >= 0 && set_new(req, "backoff_ms", json_integer(arg_backoff_ms)) < 0) ||
            (arg_key && set_new(req, "key", json_string(arg_key)) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}

/* A copy of base with this argv; shares base's values (they are not
 * changed afterwards). */
static json_t *submit_req(const json_t *base, json_t *argv)
{
        json_t *req = json_copy((json_t *)base);

        if (!req || set_new(req, "argv", argv) < 0) {
                json_decref(req);
                return NULL;
        }
        return req;
}

static int block_sleep_ms(const json_t *reply, int64_t deadline)
{
        const json_t *ra = json_object_get(reply, "retry_after_ms");
        int64_t ms = json_is_integer(ra) ? json_integer_value(ra) : 100;
        int64_t left = deadline - client_now_ms();

        if (ms < BLOCK_SLEEP_MIN_MS)
                ms = BLOCK_SLEEP_MIN_MS;
        if (ms > BLOCK_SLEEP_MAX_MS)
                ms = BLOCK_SLEEP_MAX_MS;
        return (int)(ms < left ? ms : left > 0 ? left : 0);
}

static bool is_error(const json_t *reply, enum ringq_err e)
{
        return !client_reply_ok(reply) && ringq_err_from_name(client_reply_error(reply)) == e;
}

static int submit_one(const json_t *base, int argc, char **argv)
{
        _cleanup_client_ client *c = NULL;
        _cleanup_json_ json_t *args = json_array();
        _cleanup_json_ json_t *req = NULL;
        int64_t deadline = client_now_ms() + arg_block_timeout_ms;
        json_t *reply = NULL;
        int64_t id;
        int r;

        if (!args)
                return conn_error("ringq", -ENOMEM);
        for (int i = 0; i < argc; i++) {
                if (!utf8_valid(argv[i])) {
                        fprintf(stderr, "ringq: argument %d is not valid UTF-8\n", i + 1);
                        return RINGQ_EXIT_USAGE;
                }
                if (json_array_append_new(args, json_string(argv[i])) < 0)
                        return conn_error("ringq", -ENOMEM);
        }
        req = submit_req(base, TAKE_PTR(args));
        if (!req)
                return conn_error("ringq", -ENOMEM);

        r = open_client(&c);
        if (r)
                return r;
        for (;;) {
                int ms;

                r = client_call(c, req, &reply);
                if (r < 0)
                        return conn_error(client_path(c), r);
                if (!is_error(reply, RINGQ_ERR_QUEUE_FULL) || !arg_block ||
                    (ms = block_sleep_ms(reply, deadline)) <= 0)
                        break;
                json_decref(reply);
                reply = NULL;
                (void)nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 }, NULL);
        }
        if (arg_json)
                emit_json(reply);
        if (!client_reply_ok(reply)) {
                r = reply_error(reply, NULL);
                json_decref(reply);
                return r;
        }
        id = json_integer_value(json_object_get(reply, "id"));
        json_decref(reply);
        if (!arg_json)
                printf("%" PRId64 "\n", id);
        if (!arg_wait)
                return 0;
        /* The id first, so a script reading it is not held up by the job. */
        fflush(stdout);
        json_decref(req);
        req = json_pack("{s:s,s:I}", "op", "wait", "id", (json_int_t)id);
        r = req ? client_call(c, req, &reply) : -ENOMEM;
        if (r < 0)
                return conn_error(client_path(c), r);
        r = wait_result(reply, NULL);
        json_decref(reply);
        return r;
}

/* --batch: lines go out pipelined and come back in order; ids are printed
 * in input order even when a queue_full line is retried behind later ones. */
enum slot_state { SLOT_SENT, SLOT_RETRY, SLOT_DONE };
struct batch_slot {
        uint64_t line;
        char *cmd;
        json_t *reply; /* the final reply, printed in order */
        int64_t deadline; /* --block: give up after this (0: never blocked yet) */
        int code;
        enum slot_state state;
};
struct batch_wait {
        int64_t id;
        uint64_t line;
};
struct batch {
        FILE *in;
        const json_t *base;
        char *buf; /* BATCH_LINE_MAX + 2 */
        uint64_t line;
        bool eof;
        struct batch_slot slots[BATCH_RING];
        uint64_t head, tail; /* unprinted lines are seq head..tail-1 */
        uint64_t inflight[BATCH_RING], in_head, in_tail; /* seqs, send order */
        uint64_t retry[BATCH_RING], re_head, re_tail;
        int64_t retry_not_before;
        /* Last submit said queue_full: send one retry as a probe and the
         * rest only once one is accepted, not a window of doomed ones. */
        bool blocked;
        uint64_t fail_line;
        int fail_code;
        struct batch_wait *waits;
        size_t n_waits, cap_waits, waits_sent, waits_done;
};

static struct batch_slot *slot_of(struct batch *b, uint64_t seq)
{
        return &b->slots[seq % BATCH_RING];
}

static void batch_fail(struct batch *b, uint64_t line, int code)
{
        if (code && (!b->fail_code || line < b->fail_line)) {
                b->fail_code = code;
                b->fail_line = line;
        }
}

/* Print finished lines from the head, in input order. */
static int batch_flush(struct batch *b)
{
        while (b->head < b->tail && slot_of(b, b->head)->state == SLOT_DONE) {
                struct batch_slot *s = slot_of(b, b->head);

                if (arg_json && s->reply)
                        emit_json(s->reply);
                if (s->code == 0) {
                        int64_t id = json_integer_value(json_object_get(s->reply, "id"));

                        if (!arg_json)
                                printf("%" PRId64 "\n", id);
                        if (arg_wait) {
                                if (b->n_waits == b->cap_waits) {
                                        size_t ncap = b->cap_waits ? b->cap_waits * 2 : 256;
                                        struct batch_wait *p = reallocarray(b->waits, ncap, sizeof(*p));
                                        if (!p)
                                                return -ENOMEM;
                                        b->waits = p;
                                        b->cap_waits = ncap;
                                }
                                b->waits[b->n_waits++] = (struct batch_wait){ id, s->line };
                        }
                }
                batch_fail(b, s->line, s->code);
                free(s->cmd);
                json_decref(s->reply);
                *s = (struct batch_slot){ 0 };
                b->head++;
        }
        return 0;
}

static json_t *batch_req(struct batch *b, const struct batch_slot *s)
{
        json_t *argv = json_pack("[sss]", "/bin/sh", "-c", s->cmd);

        return argv ? submit_req(b->base, argv) : NULL;
}

/* Next non-blank line into a new slot: 1, 0 at end of input, or <0. */
static int batch_read(struct batch *b, struct batch_slot **ret)
{
        /* The buffer holds BATCH_LINE_MAX bytes, a '\n' and a NUL; a line
         * that fills it without its '\n' is too long. (A NUL byte inside a
         * line ends it early: a C string cannot go further.) */
        while (fgets(b->buf, BATCH_LINE_MAX + 2, b->in)) {
                size_t len = strlen(b->buf);
                bool too_long = len > BATCH_LINE_MAX && b->buf[len - 1] != '\n';
                struct batch_slot *s;

                b->line++;
                if (too_long) { /* skip the rest of it */
                        do
                                len = fgets(b->buf, BATCH_LINE_MAX + 2, b->in) ? strlen(b->buf) : 0;
                        while (len > 0 && b->buf[len - 1] != '\n');
                } else if (len > 0 && b->buf[len - 1] == '\n') {
                        b->buf[--len] = '\0';
                }
                if (!too_long && b->buf[strspn(b->buf, " \t\r\v\f")] == '\0')
                        continue;

                s = slot_of(b, b->tail++);
                *s = (struct batch_slot){ .line = b->line };
                if (too_long || !utf8_valid(b->buf)) {
                        fprintf(stderr, "ringq: line %" PRIu64 ": %s\n", b->line,
                                too_long ? "longer than 1 MiB" : "not valid UTF-8");
                        s->state = SLOT_DONE;
                        s->code = RINGQ_EXIT_BAD_REQUEST;
                        *ret = NULL;
                        return 1;
                }
                s->cmd = strdup(b->buf);
                if (!s->cmd)
                        return -ENOMEM;
                *ret = s;
                return 1;
        }
        if (ferror(b->in))
                return -EIO;
        b->eof = true;
        return 0;
}

static int batch_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct batch *b = ud;
        struct batch_slot *s = NULL;
        uint64_t seq;
        int r;

        if (b->re_head < b->re_tail) {
                int64_t now = client_now_ms();

                if (b->blocked && b->in_tail > b->in_head)
                        return CLIENT_NEXT_DONE; /* until the probe's reply */
                if (now < b->retry_not_before) {
                        *ret_wait_ms = (int)(b->retry_not_before - now);
                        return CLIENT_NEXT_LATER;
                }
                seq = b->retry[b->re_head++ % BATCH_RING];
                s = slot_of(b, seq);
        } else {
                /* A slot read but failing on its own (too long) needs no
                 * request; look for the next line then. */
                while (!s) {
                        if (b->eof || b->tail - b->head >= BATCH_RING)
                                return CLIENT_NEXT_DONE;
                        r = batch_read(b, &s);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return CLIENT_NEXT_DONE;
                        r = batch_flush(b);
                        if (r < 0)
                                return r;
                }
                seq = b->tail - 1;
        }
        *ret_req = batch_req(b, s);
        if (!*ret_req)
                return -ENOMEM;
        s->state = SLOT_SENT;
        b->inflight[b->in_tail++ % BATCH_RING] = seq;
        return CLIENT_NEXT_REQ;
}

static int batch_reply(void *ud, json_t *reply)
{
        struct batch *b = ud;
        uint64_t seq = b->inflight[b->in_head++ % BATCH_RING];
        struct batch_slot *s = slot_of(b, seq);
        char prefix[48];

        if (is_error(reply, RINGQ_ERR_QUEUE_FULL) && arg_block) {
                int64_t now = client_now_ms();
                int ms;

                if (!s->deadline)
                        s->deadline = now + arg_block_timeout_ms;
                ms = block_sleep_ms(reply, s->deadline);
                if (ms > 0) {
                        if (now + ms > b->retry_not_before)
                                b->retry_not_before = now + ms;
                        s->state = SLOT_RETRY;
                        b->blocked = true;
                        /* Keep input order: a failed probe goes first again. */
                        if (b->re_head < b->re_tail && seq < b->retry[b->re_head % BATCH_RING])
                                b->retry[--b->re_head % BATCH_RING] = seq;
                        else
                                b->retry[b->re_tail++ % BATCH_RING] = seq;
                        return 0;
                }
        }
        if (client_reply_ok(reply))
                b->blocked = false;
        s->reply = json_incref(reply);
        s->state = SLOT_DONE;
        if (!client_reply_ok(reply)) {
                snprintf(prefix, sizeof(prefix), "line %" PRIu64 ": ", s->line);
                s->code = reply_error(reply, prefix);
                /* A busy daemon closes the connection after this line. */
                if (is_error(reply, RINGQ_ERR_BUSY)) {
                        batch_fail(b, s->line, s->code);
                        return -E_REPORTED;
                }
        }
        return batch_flush(b);
}

static int batch_wait_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct batch *b = ud;

        if (b->waits_sent == b->n_waits)
                return CLIENT_NEXT_DONE;
        *ret_req = json_pack("{s:s,s:I}", "op", "wait", "id", (json_int_t)b->waits[b->waits_sent++].id);
        return *ret_req ? CLIENT_NEXT_REQ : -ENOMEM;
}

static int batch_wait_reply(void *ud, json_t *reply)
{
        struct batch *b = ud;
        const struct batch_wait *w = &b->waits[b->waits_done++];
        char prefix[48];

        snprintf(prefix, sizeof(prefix), "line %" PRIu64 ": ", w->line);
        batch_fail(b, w->line, wait_result(reply, prefix));
        return 0;
}

static int submit_batch(const json_t *base)
{
        static const client_pipe_ops submit_ops = { batch_next, batch_reply };
        static const client_pipe_ops wait_ops = { batch_wait_next, batch_wait_reply };
        _cleanup_client_ client *c = NULL;
        struct batch *b;
        int r, code;

        b = calloc(1, sizeof(*b));
        if (!b)
                return conn_error("ringq", -ENOMEM);
        b->base = base;
        b->buf = malloc(BATCH_LINE_MAX + 2);
        b->in = strcmp(arg_batch, "-") == 0 ? stdin : fopen(arg_batch, "re");
        if (!b->buf || !b->in) {
                r = b->buf ? -errno : -ENOMEM;
                fprintf(stderr, "ringq: cannot read %s: %s\n", arg_batch, strerror(-r));
                code = b->buf ? RINGQ_EXIT_NOT_FOUND : RINGQ_EXIT_SOFTWARE;
                goto out;
        }
        code = open_client(&c);
        if (code)
                goto out;
        r = client_pipeline(c, CLIENT_WINDOW_MAX, &submit_ops, b);
        if (r == 0 && arg_wait) {
                fflush(stdout);
                r = client_pipeline(c, CLIENT_WINDOW_MAX, &wait_ops, b);
        }
        if (r == -EIO)
                fprintf(stderr, "ringq: reading %s: %s\n", arg_batch, strerror(EIO));
        if (r == -E_REPORTED)
                code = b->fail_code;
        else if (r < 0)
                code = r == -EIO ? RINGQ_EXIT_SOFTWARE : conn_error(client_path(c), r);
        else
                code = b->fail_code;
out:
        if (b->in && b->in != stdin)
                fclose(b->in);
        for (uint64_t i = b->head; i < b->tail; i++) {
                free(slot_of(b, i)->cmd);
                json_decref(slot_of(b, i)->reply);
        }
        free(b->waits);
        free(b->buf);
        free(b);
        return code;
}

static int verb_submit(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "queue", required_argument, NULL, 'q' },
                { "priority", required_argument, NULL, 'p' },
                { "delay", required_argument, NULL, OPT_DELAY },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "attempts", required_argument, NULL, OPT_ATTEMPTS },
                { "backoff", required_argument, NULL, OPT_BACKOFF },
                { "key", required_argument, NULL, OPT_KEY },
                { "no-env", no_argument, NULL, OPT_NO_ENV },
                { "cwd", required_argument, NULL, 'C' },
                { "wait", no_argument, NULL, OPT_WAIT },
                { "block", no_argument, NULL, OPT_BLOCK },
                { "block-timeout", required_argument, NULL, OPT_BLOCK_TIMEOUT },
                { "batch", required_argument, NULL, OPT_BATCH },
                {}
        };
        _cleanup_json_ json_t *base = NULL;
        int c, r;

        /* '+': the command's own options are not ours. */
        while ((c = getopt_long(argc, argv, "+:" COMMON_SHORT "q:p:C:", opts, NULL)) != -1) {
                switch (c) {
                case 'q':
                        arg_queue = optarg;
                        break;
                case 'p':
                        if (parse_i64(optarg, RINGQ_PRIO_MIN, RINGQ_PRIO_MAX, &arg_priority) < 0)
                                return usage_error(v, "priority must be an integer from %d to %d, not '%s'",
                                                   RINGQ_PRIO_MIN, RINGQ_PRIO_MAX, optarg);
                        arg_priority_set = true;
                        break;
                case OPT_DELAY:
                        if ((r = parse_dur(v, "--delay", optarg, &arg_delay_ms)))
                                return r;
                        break;
                case OPT_TIMEOUT:
                        if ((r = parse_dur(v, "--timeout", optarg, &arg_timeout_ms)))
                                return r;
                        break;
                case OPT_BACKOFF:
                        if ((r = parse_dur(v, "--backoff", optarg, &arg_backoff_ms)))
                                return r;
                        break;
                case OPT_BLOCK_TIMEOUT:
                        if ((r = parse_dur(v, "--block-timeout", optarg, &arg_block_timeout_ms)))
                                return r;
                        break;
                case OPT_ATTEMPTS:
                        if (parse_i64(optarg, 1, RINGQ_ATTEMPTS_MAX, &arg_attempts) < 0)
                                return usage_error(v, "attempts must be an integer from 1 to %d, not '%s'",
                                                   RINGQ_ATTEMPTS_MAX, optarg);
                        break;
                case OPT_KEY:
                        arg_key = optarg;
                        break;
                case OPT_NO_ENV:
                        arg_no_env = true;
                        break;
                case 'C':
                        arg_cwd = optarg;
                        break;
                case OPT_WAIT:
                        arg_wait = true;
                        break;
                case OPT_BLOCK:
                        arg_block = true;
                        break;
                case OPT_BATCH:
                        arg_batch = optarg;
                        break;
                default:
                        if ((r = common_opt(v, c, argv)) >= 0)
                                return r;
                }
        }
        if (arg_batch && optind < argc)
                return usage_error(v, "--batch takes no command; each line is one");
        if (!arg_batch && optind >= argc)
                return usage_error(v, "submit needs a command");
        if ((arg_queue && !utf8_valid(arg_queue)) || (arg_key && !utf8_valid(arg_key)))
                return usage_error(v, "queue and key must be valid UTF-8");
        if (arg_batch && arg_key)
                return usage_error(v, "--key would make every --batch line the same job");

        r = submit_base(&base);
        if (r < 0)
                return r == -E_REPORTED ? RINGQ_EXIT_SOFTWARE : conn_error("ringq", r);
        if (arg_batch)
                return submit_batch(base);
        return submit_one(base, argc - optind, argv + optind);
}

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

static int verb_ids(const struct verb *v, int argc, char **argv)
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

static int verb_status(const struct verb *v, int argc, char **argv)
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

static int list_rows(fmt_table *t, const json_t *jobs, int64_t *last_id)
{
        size_t i;
        json_t *job;

        json_array_foreach(jobs, i, job) {
                char id[24], prio[24], tries[48];
                _cleanup_free_ char *cmd = fmt_argv(json_object_get(job, "argv"), false);
                const char *cells[7];

                if (!cmd)
                        return -ENOMEM;
                *last_id = json_integer_value(json_object_get(job, "id"));
                snprintf(id, sizeof(id), "%" PRId64, *last_id);
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

/* Pages through list replies (at most RINGQ_LIST_MAX each) until limit
 * jobs or the end; limit 0 means one page of the daemon's default. */
static int list_jobs(client *c, const char *state, const char *queue, int64_t limit,
                     int64_t after, fmt_table *t)
{
        int64_t left = limit;

        for (;;) {
                _cleanup_json_ json_t *reply = NULL;
                json_t *req = json_pack("{s:s}", "op", "list");
                const json_t *jobs;
                int64_t page = left > RINGQ_LIST_MAX ? RINGQ_LIST_MAX : left;
                int r;

                if (req && ((state && set_new(req, "state", json_string(state)) < 0) ||
                            (queue && set_new(req, "queue", json_string(queue)) < 0) ||
                            (page > 0 && set_new(req, "limit", json_integer(page)) < 0) ||
                            (after > 0 && set_new(req, "after_id", json_integer(after)) < 0))) {
                        json_decref(req);
                        req = NULL;
                }
                r = call(c, req, &reply);
                if (r)
                        return r;
                jobs = json_object_get(reply, "jobs");
                if (t && list_rows(t, jobs, &after) < 0)
                        return conn_error("ringq", -ENOMEM);
                if (!t && json_array_size(jobs) > 0)
                        after = json_integer_value(json_object_get(json_array_get(jobs, json_array_size(jobs) - 1), "id"));
                left -= (int64_t)json_array_size(jobs);
                if (page == 0 || left <= 0 || (int64_t)json_array_size(jobs) < page)
                        return 0;
        }
}

static const char *const list_headers[] = { "ID", "STATE", "QUEUE", "PRIO", "TRIES", "REASON", "COMMAND" };
static const bool list_right[] = { true, false, false, true, true, false, false };

static int verb_list(const struct verb *v, int argc, char **argv)
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
        if (arg_queue && !utf8_valid(arg_queue))
                return usage_error(v, "queue must be valid UTF-8");
        r = open_client(&cl);
        if (r)
                return r;
        if (!arg_json) {
                t = fmt_table_new(7, list_headers, list_right);
                if (!t)
                        return conn_error("ringq", -ENOMEM);
        }
        r = list_jobs(cl, arg_state, arg_queue, arg_limit, arg_after, t);
        if (r == 0 && t && fmt_table_print(stdout, t, fmt_terminal_width()) < 0)
                r = RINGQ_EXIT_SOFTWARE;
        fmt_table_free(t);
        return r;
}

/* ---- logs ---- */

struct follow {
        const char *path;
        int fd;      /* -1 until the file exists */
        uint64_t off;
        dev_t dev;
        ino_t ino;
        int ifd;     /* inotify, -1 without it */
        int wd_file;
};

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Copy what was appended since the last call; a file that shrank was
 * truncated (a retry starts over), so start again from 0. */
static int follow_copy(struct follow *f)
{
        char buf[65536];
        struct stat st;

        if (f->fd < 0)
                return 0;
        if (fstat(f->fd, &st) < 0)
                return -errno;
        if ((uint64_t)st.st_size < f->off)
                f->off = 0;
        for (;;) {
                ssize_t n = pread(f->fd, buf, sizeof(buf), (off_t)f->off);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                r = write_all(STDOUT_FILENO, buf, (size_t)n);
                if (r < 0)
                        return r;
                f->off += (uint64_t)n;
        }
}

/* Open the file if it exists now, or reopen it if it was replaced. */
static int follow_open(struct follow *f)
{
        struct stat st;
        int fd;

        if (stat(f->path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (f->fd >= 0 && st.st_dev == f->dev && st.st_ino == f->ino)
                return 0;
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return -errno;
        }
        if (f->fd >= 0) {
                close(f->fd);
                if (f->ifd >= 0 && f->wd_file >= 0)
                        (void)inotify_rm_watch(f->ifd, f->wd_file);
        }
        f->fd = fd;
        f->off = 0;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        if (f->ifd >= 0)
                f->wd_file = inotify_add_watch(f->ifd, f->path, IN_MODIFY | IN_CLOSE_WRITE);
        return 0;
}

static int follow_step(struct follow *f)
{
        int r = follow_open(f);

        return r < 0 ? r : follow_copy(f);
}

/* Follow the file until the wait request sent on c is answered: 0, the
 * exit code of an error reply, or a negative errno. */
static int follow(client *c, struct follow *f)
{
        _cleanup_free_ char *dir_copy = strdup(f->path);
        bool watching = false;
        int r;

        if (!dir_copy)
                return -ENOMEM;
        f->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        /* Watch the directory for the file to appear or be replaced; on
         * failure (limits, no permission) fall back to polling. */
        if (f->ifd >= 0)
                watching = inotify_add_watch(f->ifd, dirname(dir_copy),
                                             IN_CREATE | IN_MOVED_TO | IN_DELETE) >= 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = client_fd(c), .events = POLLIN }, { .fd = f->ifd, .events = POLLIN } };
                json_t *reply = NULL;

                r = follow_step(f);
                if (r < 0)
                        goto out;
                if (poll(p, f->ifd >= 0 ? 2 : 1, watching ? -1 : FOLLOW_POLL_MS) < 0 && errno != EINTR) {
                        r = -errno;
                        goto out;
                }
                if (p[1].revents & POLLIN) {
                        char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                        while (read(f->ifd, ev, sizeof(ev)) > 0)
                                ; /* which event does not matter: step looks again */
                }
                if (!p[0].revents)
                        continue;
                r = client_recv(c, 0, &reply);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        goto out;
                if (arg_json)
                        emit_json(reply);
                if (!client_reply_ok(reply)) {
                        r = reply_error(reply, NULL);
                } else {
                        r = follow_step(f);
                }
                json_decref(reply);
                goto out;
        }
out:
        if (f->ifd >= 0)
                close(f->ifd);
        return r;
}

static int verb_logs(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "stderr", no_argument, NULL, OPT_STDERR },
                { "follow", no_argument, NULL, 'f' },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        struct follow f = { .fd = -1, .ifd = -1, .wd_file = -1 };
        json_t *reply = NULL;
        const char *key;
        size_t n;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "f", opts, NULL)) != -1) {
                if (c == OPT_STDERR)
                        arg_stderr = true;
                else if (c == 'f')
                        arg_follow = true;
                else if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        }
        if (argc - optind > 1)
                return usage_error(v, "logs takes one job ID");
        arg_json = false; /* accepted like everywhere, but the output is the log itself */
        r = parse_ids(v, argc - optind, argv + optind, &ids, &n);
        if (r)
                return r;
        r = open_client(&cl);
        if (r)
                return r;
        key = arg_stderr ? "stderr_path" : "stdout_path";
        for (;;) {
                const json_t *job;

                r = call(cl, json_pack("{s:s,s:I}", "op", "status", "id", (json_int_t)ids[0]), &reply);
                if (r)
                        return r;
                job = json_object_get(reply, "job");
                f.path = json_string_value(json_object_get(job, key));
                if (f.path || !arg_follow ||
                    ringq_state_is_final(ringq_state_from_name(json_string_value(json_object_get(job, "state")))))
                        break;
                /* No path yet: ask again shortly (the file watch needs one). */
                json_decref(reply);
                reply = NULL;
                (void)nanosleep(&(struct timespec){ 0, FOLLOW_POLL_MS * 1000000L }, NULL);
        }
        if (!f.path) {
                json_decref(reply);
                return 0;
        }
        if (!arg_follow || ringq_state_is_final(ringq_state_from_name(
                                   json_string_value(json_object_get(json_object_get(reply, "job"), "state")))))
                r = follow_step(&f);
        else {
                _cleanup_json_ json_t *req = json_pack("{s:s,s:I}", "op", "wait", "id", (json_int_t)ids[0]);

                r = req ? client_queue(cl, req) : -ENOMEM;
                if (r == 0)
                        r = client_flush(cl, -1);
                if (r == 0)
                        r = follow(cl, &f);
        }
        if (f.fd >= 0)
                close(f.fd);
        if (r == -ECONNRESET || r == -EPIPE || r == -EBADMSG || r == -EMSGSIZE || r == -ENOMEM)
                r = conn_error(client_path(cl), r);
        else if (r < 0) {
                fprintf(stderr, "ringq: %s: %s\n", f.path, strerror(-r));
                r = r == -EACCES || r == -EPERM ? RINGQ_EXIT_FORBIDDEN : RINGQ_EXIT_SOFTWARE;
        }
        json_decref(reply);
        return r;
}

/* ---- stats, ping, top ---- */

static int verb_stats(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "prometheus", no_argument, NULL, OPT_PROMETHEUS },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1) {
                if (c == OPT_PROMETHEUS)
                        arg_prometheus = true;
                else if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        r = open_client(&cl);
        if (r)
                return r;
        r = call(cl, json_pack("{s:s}", "op", "stats"), &reply);
        if (r || arg_json)
                return r;
        r = arg_prometheus ? fmt_prometheus(stdout, reply) : fmt_stats(stdout, reply);
        return r < 0 ? RINGQ_EXIT_SOFTWARE : 0;
}

static int verb_ping(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        struct timespec t0, t1;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        r = open_client(&cl);
        if (r)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = call(cl, json_pack("{s:s}", "op", "ping"), &reply);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r || arg_json)
                return r;
        printf("ringqd %s protocol %" PRId64 ", round trip %.3f ms\n",
               json_string_value(json_object_get(reply, "version")) ?: "?",
               (int64_t)json_integer_value(json_object_get(reply, "protocol")),
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        return 0;
}

static int verb_top(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "iterations", required_argument, NULL, 'n' },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        bool tty = isatty(STDOUT_FILENO);
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "n:", opts, NULL)) != -1) {
                if (c == OPT_INTERVAL) {
                        if ((r = parse_dur(v, "--interval", optarg, &arg_interval_ms)))
                                return r;
                        if (arg_interval_ms < 100)
                                arg_interval_ms = 100;
                } else if (c == 'n') {
                        if (parse_i64(optarg, 1, INT32_MAX, &arg_iterations) < 0)
                                return usage_error(v, "iterations must be a positive integer, not '%s'", optarg);
                } else if ((r = common_opt(v, c, argv)) >= 0) {
                        return r;
                }
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        r = open_client(&cl);
        if (r)
                return r;
        for (int64_t i = 0; arg_iterations == 0 || i < arg_iterations; i++) {
                _cleanup_json_ json_t *stats = NULL;
                fmt_table *t = NULL;

                if (i > 0)
                        (void)nanosleep(&(struct timespec){ arg_interval_ms / 1000,
                                                            (long)(arg_interval_ms % 1000) * 1000000 }, NULL);
                r = call(cl, json_pack("{s:s}", "op", "stats"), &stats);
                if (r)
                        return r;
                if (!arg_json) {
                        t = fmt_table_new(7, list_headers, list_right);
                        if (!t)
                                return conn_error("ringq", -ENOMEM);
                }
                r = list_jobs(cl, "running", NULL, 100, 0, t);
                if (r == 0 && t) {
                        if (tty)
                                fputs("\033[H\033[2J", stdout);
                        if (fmt_stats(stdout, stats) < 0 || fputc('\n', stdout) == EOF ||
                            fmt_table_print(stdout, t, fmt_terminal_width()) < 0)
                                r = RINGQ_EXIT_SOFTWARE;
                }
                fmt_table_free(t);
                fflush(stdout);
                if (r)
                        return r;
        }
        return 0;
}

/* ---- main ---- */

static int verb_help_cmd(const struct verb *v, int argc, char **argv);

static const struct verb verbs[] = {
        { "submit", verb_submit, "[OPTIONS] -- CMD [ARG...]\n       ringq submit [OPTIONS] --batch FILE|-",
          "Submit a job and print its id (--batch: one job per line, run by /bin/sh -c)",
          "  -q, --queue QUEUE     queue (default: default)\n"
          "  -p, --priority PRIO   -1000..1000, higher runs first (default 0)\n"
          "      --delay DUR       earliest start, from now (250ms, 30s, 5m, 2h, 7d; bare = seconds)\n"
          "      --timeout DUR     kill the job after this long\n"
          "      --attempts N      run at most N times (default 1)\n"
          "      --backoff DUR     base delay before a retry, doubled each attempt\n"
          "      --key KEY         idempotency key: resubmitting prints the first job's id\n"
          "      --no-env          do not send the environment (the job gets a minimal one)\n"
          "  -C, --cwd DIR         working directory (default: the current one)\n"
          "      --wait            wait for the job(s) and exit with the job's exit code\n"
          "      --block           when the queue is full, wait and retry\n"
          "      --block-timeout DUR\n"
          "                        give up blocking after this long (default 60s)\n"
          "      --batch FILE|-    one job per non-empty line, pipelined on one connection\n" },
        { "status", verb_status, "[OPTIONS] ID", "Show one job", "" },
        { "list", verb_list, "[OPTIONS]", "List jobs by ascending id",
          "      --state STATE     queued, running, succeeded, failed or canceled\n"
          "  -q, --queue QUEUE     only this queue\n"
          "  -n, --limit N         at most N jobs (default: ringqd's, 100)\n"
          "      --after ID        only jobs with a larger id (to page)\n" },
        { "cancel", verb_ids, "[OPTIONS] ID...", "Cancel jobs; prints 'ID state' for each", "" },
        { "retry", verb_ids, "[OPTIONS] ID...", "Queue failed or canceled jobs again; prints 'ID state' for each", "" },
        { "wait", verb_ids, "[OPTIONS] ID...",
          "Wait for jobs to finish; exit with the job's exit code (with several, the first that did not succeed)",
          "      --timeout DUR     give up after this long (exit 124)\n" },
        { "logs", verb_logs, "[OPTIONS] ID", "Print a job's output",
          "      --stderr          the job's stderr instead of its stdout\n"
          "  -f, --follow          keep printing until the job finishes\n"
          "                        (--json is accepted; the output stays the raw log)\n" },
        { "stats", verb_stats, "[OPTIONS]", "Show ringqd's counters and latencies",
          "      --prometheus      Prometheus text exposition format\n" },
        { "top", verb_top, "[OPTIONS]", "Show stats and running jobs, refreshed",
          "      --interval DUR    refresh period (default 1s)\n"
          "  -n, --iterations N    stop after N refreshes\n" },
        { "ping", verb_ping, "[OPTIONS]", "Check that ringqd answers; print its version and the round trip", "" },
        { "help", verb_help_cmd, "[VERB]", "Show help for ringq or a verb", "" },
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const struct verb *find_verb(const char *name)
{
        for (size_t i = 0; i < N_VERBS; i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void main_help(void)
{
        printf("Usage: ringq [-s SOCKET] VERB [OPTIONS] [ARGS]\n\n"
               "Client for the ringqd job daemon.\n\nVerbs:\n");
        for (size_t i = 0; i < N_VERBS; i++)
                printf("  %-8s %s\n", verbs[i].name, verbs[i].summary);
        printf("\nOptions:\n%s"
               "      --version         show the version\n\n"
               "Run 'ringq VERB --help' for a verb's options.\n\n"
               "Exit status: 0 ok; the job's code for wait and submit --wait (128+N for\n"
               "signal N, 124 wait timeout); 64 usage; 65 bad request; 66 not found;\n"
               "69 ringqd unreachable; 70 other errors; 75 queue full, busy or shutting\n"
               "down; 77 forbidden.\n", common_help);
}

static int verb_help_cmd(const struct verb *v, int argc, char **argv)
{
        const struct verb *w;

        if (argc < 2 || argv[1][0] == '-') {
                main_help();
                return 0;
        }
        w = find_verb(argv[1]);
        if (!w)
                return usage_error(NULL, "unknown verb '%s'", argv[1]);
        verb_help(w);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "version", no_argument, NULL, OPT_VERSION },
                {}
        };
        const struct verb *v;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:" COMMON_SHORT, opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        arg_socket = optarg;
                        break;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case 'h':
                        main_help();
                        return 0;
                case OPT_VERSION:
                        printf("ringq %s (protocol %d)\n", RINGQ_VERSION, RINGQ_PROTOCOL);
                        return 0;
                default:
                        if ((r = common_opt(NULL, c, argv)) >= 0)
                                return r;
                }
        }
        if (optind >= argc)
                return usage_error(NULL, "no verb given");
        v = find_verb(argv[optind]);
        if (!v)
                return usage_error(NULL, "unknown verb '%s'", argv[optind]);
        argc -= optind;
        argv += optind;
        optind = 0; /* glibc: start over on the verb's own argv */
        r = v->fn(v, argc, argv);
        if (fflush(stdout) != 0 && r == 0) {
                fprintf(stderr, "ringq: writing output: %s\n", strerror(errno));
                r = RINGQ_EXIT_SOFTWARE;
        }
        return r;
}
