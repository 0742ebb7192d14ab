/* ringq: the command-line client of ringqd.
 *
 * Git-style verbs, each with its own getopt_long table. Every verb talks to
 * ringqd through client.c and formats through fmt.c; the verb files only
 * map arguments to requests and replies to output and exit codes (ringq(1)).
 * This file holds main, the verb table, the options every verb
 * shares and the helpers behind cli.h; the verbs live in submit.c, jobs.c,
 * logs.c, stats.c (with queues, pause and resume) and top.c (with
 * top_view.c and screen.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "ringq/parse.h"

/* Options before the verb or in it; the verbs' own are in their files. */
const char *arg_socket;
bool arg_json;

/* ---- messages and exit codes ---- */

int usage_error(const struct verb *v, const char *fmt, ...)
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
int conn_error(const char *path, int r)
{
        switch (r) {
        case -E_REPORTED:
                return RINGQ_EXIT_SOFTWARE;
        case -E_GONE:
                return RINGQ_EXIT_UNREACHABLE;
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

int open_client(client **ret)
{
        const char *path = ringq_client_socket(arg_socket);
        int r;

        r = client_connect(path, ret);
        if (r < 0) {
                char advice[512] = "";

                fprintf(stderr, "ringq: cannot connect to %s: %s\n", path, strerror(-r));
                if (r == -EACCES)
                        client_access_advice(path, advice, sizeof(advice));
                if (advice[0])
                        fprintf(stderr, "ringq: %s\n", advice);
                return RINGQ_EXIT_UNREACHABLE;
        }
        return 0;
}

void emit_json(const json_t *reply)
{
        /* 15 digits: jansson's default 17 shows 0.4 as 0.40000000000000002. */
        if (json_dumpf(reply, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) == 0)
                fputc('\n', stdout);
}

/* Print an error reply as "ringq: [prefix]code: message"; its exit code.
 * The request field at fault is for programs (--json): the user gave an
 * option or an id, not a field, and the message names it. */
int reply_error(const json_t *reply, const char *prefix)
{
        fprintf(stderr, "ringq: %s%s: %s\n", prefix ? prefix : "", client_reply_error(reply),
                client_reply_message(reply));
        return client_reply_exit(reply);
}

/* One call; prints the reply under --json and errors always. Returns the
 * exit code, with *ret_reply set when the reply was ok. */
int call(client *c, json_t *req, json_t **ret_reply)
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

/* The exit code a finished job stands for (ringq(1), EXIT STATUS). */
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
int wait_result(const json_t *reply, const char *prefix)
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

/* ---- waits that outlive their connection ---- */

/* How long a lost ringqd may take to answer again. A re-exec keeps its
 * socket bound (new connections wait in the backlog), so the connect
 * works at once; after a crash systemd starts ringqd again within
 * RestartSec (1 s) and recovery takes a moment more, and meanwhile the
 * path refuses or is briefly absent. Past this it is not coming back
 * soon, and the user is better told. */
#define RELINK_MS 30000
/* Between connects that fail, and before reconnecting to a socket that
 * just hung up on a fresh connection: not a busy loop against a ringqd
 * that is still going away. */
#define RELINK_PAUSE_MS 100
/* A new connection lost sooner than this, with no reply, was never
 * served (a dead ringqd's socket the kernel is still closing; a ringqd
 * dying again at start); one that lived longer was, and its loss starts
 * a new absence with all the time allowed. */
#define RELINK_SETTLE_MS 1000

bool conn_lost(int r)
{
        return r == -ECONNRESET || r == -EPIPE;
}

static void pause_ms(int ms)
{
        (void)nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 }, NULL);
}

int relink(client **c, struct relink *rl)
{
        const char *path = client_path(*c);
        int64_t now = client_now_ms();
        int r;

        if (rl->lost_ms == 0 || now - rl->linked_ms >= RELINK_SETTLE_MS)
                rl->lost_ms = now;
        else
                pause_ms(RELINK_PAUSE_MS);
        for (;;) {
                client *n;

                r = client_connect(path, &n);
                if (r == 0) {
                        client_free(*c);
                        *c = n;
                        rl->linked_ms = client_now_ms();
                        return 0;
                }
                if (r == -ENOMEM)
                        return r;
                now = client_now_ms();
                if (rl->give_up_ms > 0 && now >= rl->give_up_ms) {
                        fprintf(stderr, "ringq: %s: connection closed by ringqd, and nothing answered there again "
                                        "before the timeout: %s\n", path, strerror(-r));
                        return -E_GONE;
                }
                if (now - rl->lost_ms >= RELINK_MS) {
                        fprintf(stderr, "ringq: %s: connection closed by ringqd, and nothing answered there again "
                                        "within %d s: %s\n", path, RELINK_MS / 1000, strerror(-r));
                        return -E_GONE;
                }
                pause_ms(RELINK_PAUSE_MS);
        }
}

int call_relinking(client **c, const json_t *req, json_t **ret_reply)
{
        struct relink rl = {};
        int r;

        while (conn_lost(r = client_call(*c, req, ret_reply)))
                if ((r = relink(c, &rl)) < 0)
                        return r;
        return r;
}

/* What pipeline_relinking() runs: the caller's pipeline, with each reply
 * noted for relink(). */
struct relink_pipe {
        const client_pipe_ops *ops;
        void *userdata;
        struct relink rl;
};

static int relink_next(void *ud, json_t **ret_req, int *ret_wait_ms)
{
        struct relink_pipe *p = ud;

        return p->ops->next(p->userdata, ret_req, ret_wait_ms);
}

static int relink_pipe_reply(void *ud, json_t *reply)
{
        struct relink_pipe *p = ud;

        relink_reply(&p->rl);
        return p->ops->reply(p->userdata, reply);
}

int pipeline_relinking(client **c, const client_pipe_ops *ops, void *userdata, void (*rewind)(void *userdata),
                       int64_t give_up_ms)
{
        static const client_pipe_ops wrap = { relink_next, relink_pipe_reply };
        struct relink_pipe p = { .ops = ops, .userdata = userdata, .rl.give_up_ms = give_up_ms };
        int r;

        while (conn_lost(r = client_pipeline(*c, CLIENT_WINDOW_MAX, &wrap, &p))) {
                r = relink(c, &p.rl);
                if (r < 0)
                        return r;
                rewind(userdata);
        }
        return r;
}

/* ---- small helpers ---- */

int set_new(json_t *o, const char *k, json_t *v)
{
        return v && json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

int write_all(int fd, const char *p, size_t n)
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

/* ---- argument parsing ---- */

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
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

int parse_ids(const struct verb *v, int argc, char **argv, int64_t **ret, size_t *ret_n)
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

int parse_dur(const struct verb *v, const char *opt, const char *s, int64_t *ret)
{
        if (ringq_parse_duration_ms(s, ret) < 0)
                return usage_error(v, "bad duration for %s: '%s' (use e.g. 250ms, 30s, 5m, 2h, 7d)", opt, s);
        return 0;
}

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
int common_opt(const struct verb *v, int c, char **argv)
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
          "      --no-env          send neither the environment nor the umask (the job\n"
          "                        gets a minimal environment and the default umask)\n"
          "  -C, --cwd DIR         working directory (default: the current one)\n"
          "      --wait            wait for the job(s) and exit with the job's exit code\n"
          "      --block           when the queue is full, wait and retry\n"
          "      --block-timeout DUR\n"
          "                        give up blocking after this long (default 60s)\n"
          "      --batch FILE|-    one job per non-empty line, pipelined on one connection\n"
          "      --after ID[,ID...]\n"
          "                        start once each of these jobs has succeeded; if one\n"
          "                        fails or is canceled, so is this job (repeatable, at\n"
          "                        most 64 IDs; with --batch, for every line)\n" },
        { "status", verb_status, "[OPTIONS] ID", "Show one job", "" },
        { "list", verb_list, "[OPTIONS]", "List jobs, newest first; a last line says how to see more",
          "      --state STATE     queued, running, succeeded, failed or canceled\n"
          "  -q, --queue QUEUE     only this queue\n"
          "      --user USER       only this user's jobs (name or uid; others than\n"
          "                        yourself: root only)\n"
          "  -n, --limit N         at most N jobs (default 100)\n"
          "      --before ID       only jobs with a smaller id (to page back)\n"
          "      --oldest          oldest first\n"
          "      --after ID        only jobs with a larger id, oldest first (to page on)\n" },
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
        { "top", verb_top, "[OPTIONS]", "Show ringqd's state, queue, rates, latencies and running jobs, live",
          "      --interval DUR    refresh period, 100ms to 30s (default 1s)\n"
          "  -n, --iterations N    stop after N refreshes\n"
          "                        On a terminal: q quits, space refreshes now. Otherwise\n"
          "                        plain text frames, separated by a blank line.\n" },
        { "queues", verb_queues, "[OPTIONS]",
          "Show the queues: jobs queued and running, their own limits, whether paused", "" },
        { "pause", verb_queues, "[OPTIONS] [QUEUE]",
          "Start no more jobs from QUEUE, or from any queue, until resume; show the queues (root only)", "" },
        { "resume", verb_queues, "[OPTIONS] [QUEUE]",
          "Start jobs from QUEUE, or from every queue, again; show the queues (root only)", "" },
        { "ping", verb_ping, "[OPTIONS]", "Check that ringqd answers; print its version and the round trip", "" },
        { "admin", verb_admin, "[OPTIONS] reexec",
          "Operate ringqd itself, root only: reexec runs ringqd's binary again in place, its jobs running on",
          "" },
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
               "  -V, --version         show the version\n\n"
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
                { "version", no_argument, NULL, 'V' },
                {}
        };
        const struct verb *v;
        uint32_t seed = 0;
        int c, r;

        /* Left unseeded, jansson opens and reads /dev/urandom at the first
         * object, in every run of a command that a script may run once per
         * job; one getrandom() does. Zero would mean "seed yourself". */
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed) && seed)
                json_object_seed(seed);
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:" COMMON_SHORT "V", opts, NULL)) != -1) {
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
                case 'V':
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

