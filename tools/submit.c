/* ringq submit: one job, or --batch (one job per line, pipelined on one
 * connection), with --wait and --block. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fmt.h"
#include "ringq/utf8.h"

/* Largest --batch line; longer ones fail alone without being read into
 * memory whole. ringqd's default request limit is far below this. */
#define BATCH_LINE_MAX (1u << 20)
/* Lines read but not yet printed; bounds memory while one line waits. */
#define BATCH_RING 1024u
#define BLOCK_SLEEP_MIN_MS 10
#define BLOCK_SLEEP_MAX_MS 5000
/* Jobs one submit may wait for (ringqd's bound, checked here first). */
#define AFTER_MAX 64

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
static int64_t arg_after[AFTER_MAX];
static size_t arg_n_after;

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
                if (!ringq_utf8_valid(*e)) {
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

/* The umask. Read by setting it and setting it back: this process has one
 * thread and creates no file between the two calls, and it is two system
 * calls where /proc/self/status has the kernel render a page of text. */
static mode_t current_umask(void)
{
        mode_t m = umask(0077);

        umask(m);
        return m;
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
        if (!ringq_utf8_valid(cwd))
                return -EILSEQ;
        *ret = TAKE_PTR(cwd);
        return 0;
}

/* --after ID[,ID...]: added to what earlier ones gave. A repeated ID is
 * dropped (waiting twice for one job adds nothing) and does not count
 * towards the bound. An exit code. */
static int parse_after(const struct verb *v, const char *s)
{
        _cleanup_free_ char *copy = strdup(s);
        char *p = copy, *tok;

        if (!copy)
                return conn_error("ringq", -ENOMEM);
        /* strsep, not strtok: "1,,2" and a trailing comma are mistakes. */
        while ((tok = strsep(&p, ","))) {
                bool seen = false;
                int64_t id;

                if (parse_i64(tok, 1, INT64_MAX, &id) < 0)
                        return usage_error(v, "--after takes job IDs separated by commas; '%s' is not one", tok);
                for (size_t i = 0; i < arg_n_after && !seen; i++)
                        seen = arg_after[i] == id;
                if (seen)
                        continue;
                if (arg_n_after == AFTER_MAX)
                        return usage_error(v, "--after takes at most %d job IDs", AFTER_MAX);
                arg_after[arg_n_after++] = id;
        }
        return 0;
}

static json_t *after_array(void)
{
        json_t *a = json_array();

        for (size_t i = 0; a && i < arg_n_after; i++)
                if (json_array_append_new(a, json_integer(arg_after[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
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
                /* Files the job creates get the modes they would get had
                 * the submitter run it. */
                if (set_new(req, "umask", json_integer(current_umask())) < 0)
                        return -ENOMEM;
        }
        if ((arg_queue && set_new(req, "queue", json_string(arg_queue)) < 0) ||
            (arg_priority_set && set_new(req, "priority", json_integer(arg_priority)) < 0) ||
            (arg_delay_ms >= 0 && set_new(req, "delay_ms", json_integer(arg_delay_ms)) < 0) ||
            (arg_timeout_ms >= 0 && set_new(req, "timeout_ms", json_integer(arg_timeout_ms)) < 0) ||
            (arg_attempts > 0 && set_new(req, "max_attempts", json_integer(arg_attempts)) < 0) ||
            (arg_backoff_ms >= 0 && set_new(req, "backoff_ms", json_integer(arg_backoff_ms)) < 0) ||
            (arg_key && set_new(req, "key", json_string(arg_key)) < 0) ||
            (arg_n_after > 0 && set_new(req, "after", after_array()) < 0))
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

/* A refused submit: the error, and for a full queue when ringqd expects
 * room, which says whether waiting is worth it (a queue of jobs delayed
 * for an hour has none sooner, however often one asks). */
static int submit_error(const json_t *reply)
{
        const json_t *ra = json_object_get(reply, "retry_after_ms");
        int code = reply_error(reply, NULL);
        char d[FMT_BUF];

        if (is_error(reply, RINGQ_ERR_QUEUE_FULL) && json_is_integer(ra))
                fprintf(stderr, "ringq: ringqd expects room in about %s%s\n",
                        fmt_duration(d, sizeof(d), json_integer_value(ra)),
                        arg_block ? "" : " (--block waits and tries again)");
        return code;
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
                if (!ringq_utf8_valid(argv[i])) {
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
                r = submit_error(reply);
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
        r = req ? call_relinking(&c, req, &reply) : -ENOMEM;
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
                if (too_long || !ringq_utf8_valid(b->buf)) {
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

/* Waits lost with their connection are sent again from the first one
 * not answered. */
static void batch_wait_rewind(void *ud)
{
        struct batch *b = ud;

        b->waits_sent = b->waits_done;
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
                r = pipeline_relinking(&c, &wait_ops, b, batch_wait_rewind, 0);
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

int verb_submit(const struct verb *v, int argc, char **argv)
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
                { "after", required_argument, NULL, OPT_AFTER },
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
                case OPT_AFTER:
                        if ((r = parse_after(v, optarg)))
                                return r;
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
        if ((arg_queue && !ringq_utf8_valid(arg_queue)) || (arg_key && !ringq_utf8_valid(arg_key)))
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

