/* ringq-bench: a load tool for ringqd, on the CLI's client (client.h).
 *
 *   ringq-bench submit    K connections x depth D of pipelined submits of
 *                         far-delayed jobs (closed loop)
 *   ringq-bench e2e       N jobs submitted in one batch, then waited for
 *   ringq-bench overload  open loop at an offered rate for a duration
 *   ringq-bench one       one job at a time, beside a bare spawn of it
 *   ringq-bench fsync     the disk's floor under durable submits, no server
 *
 * submit and overload can also drive beanstalkd and redis (--target), with
 * the same pipelining and latency definition, for comparisons. Every run is
 * bounded in count and time (and by an alarm as a last resort). The result
 * is one key=value line, or one JSON object with --json; the keys of the
 * line are the JSON's, nested ones joined with '_'.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "ringq/parse.h"

static const char *const mode_names[_MODE_MAX] = {
        [MODE_SUBMIT] = "submit",
        [MODE_E2E] = "e2e",
        [MODE_OVERLOAD] = "overload",
        [MODE_ONE] = "one",
        [MODE_FSYNC] = "fsync",
};

static const struct mode_help {
        const char *summary;
        const char *options;
} mode_help[_MODE_MAX] = {
        [MODE_SUBMIT] = {
                "Closed loop: K connections each keep D submits in flight until N are sent\n"
                "or the duration runs out. Jobs carry a far delay so none starts during the\n"
                "run. Reports accepted/s, rejects, latency from send to reply\n"
                "(p50/p90/p99/p99.9/max) and the daemon's CPU and RSS.",
                "  -c, --connections K   connections (default 4)\n"
                "  -d, --depth D         requests in flight per connection, 1-64 (default 16)\n"
                "  -n, --count N         requests to send (default 10000)\n"
                "  -t, --duration DUR    stop sending after DUR (default 60s)\n"
                "      --delay DUR       the jobs' delay (default 24h)\n"
                "      --cmd CMD         the jobs' command, split on blanks (default \"true\")\n"
                "      --queues N        spread the jobs over N queues, q00000 to q<N-1> (ringq only)\n"
                "      --target T        ringq (default), beanstalkd:HOST:PORT,\n"
                "                        beanstalkd:unix:PATH, redis:HOST:PORT or redis:unix:PATH\n"
                "      --ping            send pings instead of submits (ringq only): the floor\n"
                "                        a request costs, to set other figures against\n",
        },
        [MODE_E2E] = {
                "N jobs of a command submitted as one pipelined batch on one connection,\n"
                "then waited for. Reports the wall time, jobs/s and the jobs' queue-wait and\n"
                "run-time percentiles (from ringqd's timestamps, in whole ms).",
                "  -d, --depth D         requests in flight, 1-64 (default 64)\n"
                "  -n, --count N         jobs (default 1000)\n"
                "  -t, --duration DUR    give up waiting after DUR (default 300s)\n"
                "      --cmd CMD         the command, split on blanks, no shell (default \"true\")\n",
        },
        [MODE_ONE] = {
                "N times: submit one job, wait for its end, and spawn the same command\n"
                "directly (posix_spawnp + waitpid): the floor, in the same run. Reports both\n"
                "latencies, what ringq adds (the difference of the medians), ringqd's CPU\n"
                "per job and its timing of each step of a job (job_path_ms). Run it on an\n"
                "idle ringqd. With --fsync-dir, also the disk's floor under a durable submit,\n"
                "interleaved the same way: the writes of a one-row WAL commit (three frames)\n"
                "and an fdatasync, in an unnamed file in DIR (give ringqd's state directory).",
                "  -n, --count N         jobs (default 200)\n"
                "  -t, --duration DUR    stop after DUR (default 300s)\n"
                "      --cmd CMD         the command, split on blanks, no shell (default \"true\")\n"
                "      --fsync-dir DIR   time the fsync floor in DIR (on the database's filesystem)\n",
        },
        [MODE_FSYNC] = {
                "N times back to back, without ringqd: the writes of a one-row WAL commit\n"
                "(three frames) and an fdatasync, in an unnamed file in DIR. The disk's floor\n"
                "under a stream of durable submits (1x1), to state beside their figures.",
                "      --fsync-dir DIR   where (required; on the database's filesystem)\n"
                "  -n, --count N         fsyncs (default 1000)\n"
                "  -t, --duration DUR    stop after DUR (default 60s)\n",
        },
        [MODE_OVERLOAD] = {
                "Open loop: request i is due at i/R seconds, for T seconds, on K connections\n"
                "of at most D in flight each; a request sent late because every window is\n"
                "full is timed from when it was due. Without --rate, R is twice what a short\n"
                "closed-loop probe achieves. Reports accepted/s, rejected/s, the latency of\n"
                "accepts and of rejects, and the daemon's RSS at start and end.",
                "  -r, --rate R          offered requests per second\n"
                "  -c, --connections K   connections (default 8)\n"
                "  -d, --depth D         requests in flight per connection, 1-64 (default 32)\n"
                "  -t, --duration DUR    offer load for DUR (default 10s)\n"
                "  -n, --count N         send at most N requests (default: no limit but time)\n"
                "      --delay DUR       the jobs' delay (default 24h)\n"
                "      --cmd CMD         the jobs' command, split on blanks (default \"true\")\n"
                "      --target T        as for submit\n"
                "      --ping            as for submit\n",
        },
};

enum {
        OPT_JSON = 0x100,
        OPT_DELAY,
        OPT_QUEUES,
        OPT_CMD,
        OPT_TARGET,
        OPT_PID,
        OPT_PING,
        OPT_FSYNC_DIR,
};

static void usage(FILE *f, int mode)
{
        if (mode < 0) {
                fputs("Usage: ringq-bench MODE [OPTIONS]\n\n"
                      "Modes:\n"
                      "  submit     pipelined submits of far-delayed jobs, closed loop\n"
                      "  e2e        a batch of jobs submitted and waited for\n"
                      "  overload   open loop at an offered rate\n"
                      "  one        one job at a time, beside a bare spawn of it\n"
                      "  fsync      the disk's floor under durable submits (no server)\n\n"
                      "Try 'ringq-bench MODE --help'.\n", f);
                return;
        }
        fprintf(f, "Usage: ringq-bench %s [OPTIONS]\n\n%s\n\nOptions:\n%s", mode_names[mode],
                mode_help[mode].summary, mode_help[mode].options);
        if (mode != MODE_FSYNC)
                fputs("  -s, --socket PATH     ringqd's socket (default: $RINGQ_SOCKET, else " RINGQ_SOCKET_DEFAULT ")\n"
                      "      --pid PID         the daemon's pid for CPU and RSS (default: from the socket)\n", f);
        fputs("      --json            print one JSON object instead of a key=value line\n"
              "  -h, --help            this help\n", f);
}

static int usage_error(int mode, const char *msg, const char *arg)
{
        fprintf(stderr, "ringq-bench: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
        if (mode >= 0)
                fprintf(stderr, "Try 'ringq-bench %s --help'\n", mode_names[mode]);
        else
                fputs("Try 'ringq-bench --help'\n", stderr);
        return RINGQ_EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        const char *end;
        uint64_t v;

        if (ringq_parse_u64(s, &v, &end) < 0 || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "ringq", "KIND:unix:PATH" or "KIND:HOST:PORT". */
static int parse_target(const char *s, target *ret)
{
        static const char *const kinds[_TARGET_MAX] = { "ringq", "beanstalkd", "redis" };
        const char *colon = strchr(s, ':'), *rest, *last;
        target t = { .spec = s };
        int k;

        for (k = 0; k < _TARGET_MAX; k++) {
                size_t n = strlen(kinds[k]);

                if (strncmp(s, kinds[k], n) == 0 && (s[n] == '\0' || s[n] == ':'))
                        break;
        }
        if (k == _TARGET_MAX)
                return -EINVAL;
        t.kind = (enum target_kind)k;
        if (t.kind == TARGET_RINGQ) {
                if (colon)
                        return -EINVAL; /* ringq's socket is -s */
                *ret = t;
                return 0;
        }
        if (!colon)
                return -EINVAL;
        rest = colon + 1;
        if (strncmp(rest, "unix:", 5) == 0) {
                if (!rest[5])
                        return -EINVAL;
                t.unix_path = strdup(rest + 5);
                if (!t.unix_path)
                        return -ENOMEM;
                *ret = t;
                return 0;
        }
        last = strrchr(rest, ':');
        if (!last || last == rest || !last[1])
                return -EINVAL;
        if (rest[0] == '[' && last[-1] == ']') /* [::1]:6379 */
                t.host = strndup(rest + 1, (size_t)(last - rest - 2));
        else
                t.host = strndup(rest, (size_t)(last - rest));
        t.port = strdup(last + 1);
        if (!t.host || !t.port) {
                free(t.host);
                free(t.port);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

/* ---- output ---- */

static void print_scalar(FILE *f, const json_t *v)
{
        if (json_is_string(v)) {
                const char *s = json_string_value(v);

                if (*s && !strpbrk(s, " \t\"=\\"))
                        fputs(s, f);
                else { /* quoted, so the line still splits on blanks */
                        char *q = json_dumps(v, JSON_ENCODE_ANY);

                        fputs(q ? q : "\"\"", f);
                        free(q);
                }
        } else if (json_is_integer(v)) {
                fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else if (json_is_real(v)) {
                double d = json_real_value(v);

                if (d == floor(d) && fabs(d) < 1e15)
                        fprintf(f, "%.0f", d);
                else
                        fprintf(f, "%.3f", d);
        } else if (json_is_boolean(v)) {
                fputs(json_is_true(v) ? "true" : "false", f);
        } else {
                fputs("-", f);
        }
}

static void print_kv(FILE *f, const json_t *o, const char *prefix, bool *first)
{
        const char *k;
        json_t *v;

        json_object_foreach((json_t *)o, k, v) {
                char key[128];

                snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "_" : "", k);
                if (json_is_object(v)) {
                        print_kv(f, v, key, first);
                        continue;
                }
                fprintf(f, "%s%s=", *first ? "" : " ", key);
                *first = false;
                print_scalar(f, v);
        }
}

static void on_alarm(int sig)
{
        static const char msg[] = "ringq-bench: run did not end in time, giving up\n";

        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(RINGQ_EXIT_SOFTWARE);
}

static void raise_nofile(unsigned need)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need + 32) {
                rl.rlim_cur = rl.rlim_max < need + 32 ? rl.rlim_max : need + 32;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },
                { "connections", required_argument, NULL, 'c' },
                { "depth", required_argument, NULL, 'd' },
                { "count", required_argument, NULL, 'n' },
                { "duration", required_argument, NULL, 't' },
                { "rate", required_argument, NULL, 'r' },
                { "delay", required_argument, NULL, OPT_DELAY },
                { "queues", required_argument, NULL, OPT_QUEUES },
                { "cmd", required_argument, NULL, OPT_CMD },
                { "target", required_argument, NULL, OPT_TARGET },
                { "pid", required_argument, NULL, OPT_PID },
                { "json", no_argument, NULL, OPT_JSON },
                { "ping", no_argument, NULL, OPT_PING },
                { "fsync-dir", required_argument, NULL, OPT_FSYNC_DIR },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        bench_opts o = { .delay_ms = BENCH_FAR_DELAY_MS, .cmd = "true", .tgt = { .spec = "ringq" } };
        bool c_set = false, d_set = false, t_set = false, tgt_set = false, rate_set = false;
        _cleanup_json_ json_t *res = NULL;
        int mode = -1, c, r;
        uint64_t u;

        if (argc < 2)
                return usage_error(-1, "which mode?", NULL);
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(stdout, -1);
                return 0;
        }
        mode = ringq_lookup(mode_names, _MODE_MAX, argv[1]);
        if (mode < 0)
                return usage_error(-1, "unknown mode", argv[1]);
        o.mode = (enum bench_mode)mode;
        argc--;
        argv++;

        while ((c = getopt_long(argc, argv, "s:c:d:n:t:r:h", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        o.socket = optarg;
                        break;
                case 'c':
                        if (parse_u64(optarg, 1, BENCH_MAX_CONNECTIONS, &u) < 0)
                                return usage_error(mode, "--connections must be 1-4096", optarg);
                        o.connections = (unsigned)u;
                        c_set = true;
                        break;
                case 'd':
                        if (parse_u64(optarg, 1, BENCH_MAX_DEPTH, &u) < 0)
                                return usage_error(mode, "--depth must be 1-64", optarg);
                        o.depth = (unsigned)u;
                        d_set = true;
                        break;
                case 'n':
                        if (parse_u64(optarg, 1, BENCH_MAX_COUNT, &o.count) < 0)
                                return usage_error(mode, "--count must be 1-100000000", optarg);
                        o.count_set = true;
                        break;
                case 't':
                        if (ringq_parse_duration_ms(optarg, &o.duration_ms) < 0 || o.duration_ms <= 0 ||
                            o.duration_ms > BENCH_MAX_DURATION_MS)
                                return usage_error(mode, "--duration must be a duration up to 1h", optarg);
                        t_set = true;
                        break;
                case 'r': {
                        char *end;

                        errno = 0;
                        o.rate = strtod(optarg, &end);
                        if (errno || *end || !(o.rate >= 1 && o.rate <= 1e8))
                                return usage_error(mode, "--rate must be 1-1e8 requests/s", optarg);
                        rate_set = true;
                        break;
                }
                case OPT_QUEUES: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v < 1 || v > 100000)
                                return usage_error(mode, "--queues must be 1 to 100000", optarg);
                        o.queues = (unsigned)v;
                        break;
                }
                case OPT_DELAY:
                        if (ringq_parse_duration_ms(optarg, &o.delay_ms) < 0 ||
                            o.delay_ms > RINGQ_DURATION_MAX_MS)
                                return usage_error(mode, "--delay must be a duration", optarg);
                        break;
                case OPT_CMD:
                        if (!optarg[strspn(optarg, " \t")])
                                return usage_error(mode, "--cmd must not be empty", NULL);
                        o.cmd = optarg;
                        break;
                case OPT_TARGET:
                        if (parse_target(optarg, &o.tgt) < 0)
                                return usage_error(mode, "--target must be ringq, beanstalkd:HOST:PORT, "
                                                   "beanstalkd:unix:PATH, redis:HOST:PORT or redis:unix:PATH",
                                                   optarg);
                        tgt_set = true;
                        break;
                case OPT_PID:
                        if (parse_u64(optarg, 1, INT32_MAX, &u) < 0)
                                return usage_error(mode, "--pid must be a process id", optarg);
                        o.pid = (int)u;
                        break;
                case OPT_JSON:
                        o.json = true;
                        break;
                case OPT_PING:
                        o.ping = true;
                        break;
                case OPT_FSYNC_DIR:
                        o.fsync_dir = optarg;
                        break;
                case 'h':
                        usage(stdout, mode);
                        return 0;
                default:
                        return usage_error(mode, "bad option", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return usage_error(mode, "unexpected argument", argv[optind]);
        if (rate_set && o.mode != MODE_OVERLOAD)
                return usage_error(mode, "--rate is for overload", NULL);
        if (o.ping && (o.mode == MODE_E2E || o.mode == MODE_ONE || o.tgt.kind != TARGET_RINGQ))
                return usage_error(mode, "--ping is for submit and overload against ringqd", NULL);
        if (tgt_set && (o.mode == MODE_E2E || o.mode == MODE_ONE))
                return usage_error(mode, "e2e and one run against ringqd only", NULL);
        if (o.fsync_dir && o.mode != MODE_ONE && o.mode != MODE_FSYNC)
                return usage_error(mode, "--fsync-dir is for one and fsync", NULL);
        if (!o.fsync_dir && o.mode == MODE_FSYNC)
                return usage_error(mode, "fsync needs --fsync-dir", NULL);
        if ((c_set || d_set || tgt_set || o.ping) && o.mode == MODE_FSYNC)
                return usage_error(mode, "fsync runs without a server", NULL);
        if ((c_set || d_set) && o.mode == MODE_ONE)
                return usage_error(mode, "one sends one request at a time on one connection", NULL);
        if (c_set && o.mode == MODE_E2E)
                return usage_error(mode, "e2e uses one connection", NULL);

        switch (o.mode) {
        case MODE_SUBMIT:
                o.connections = c_set ? o.connections : 4;
                o.depth = d_set ? o.depth : 16;
                o.count = o.count_set ? o.count : 10000;
                o.duration_ms = t_set ? o.duration_ms : 60000;
                break;
        case MODE_OVERLOAD:
                o.connections = c_set ? o.connections : 8;
                o.depth = d_set ? o.depth : 32;
                o.count = o.count_set ? o.count : BENCH_MAX_COUNT;
                o.duration_ms = t_set ? o.duration_ms : 10000;
                break;
        case MODE_E2E:
                if (o.count > BENCH_E2E_MAX_JOBS)
                        return usage_error(mode, "e2e takes at most 1000000 jobs", NULL);
                o.connections = 1;
                o.depth = d_set ? o.depth : CLIENT_WINDOW_MAX;
                o.count = o.count_set ? o.count : 1000;
                o.duration_ms = t_set ? o.duration_ms : 300000;
                break;
        case MODE_ONE:
                o.connections = o.depth = 1;
                o.count = o.count_set ? o.count : 200;
                o.duration_ms = t_set ? o.duration_ms : 300000;
                break;
        case MODE_FSYNC:
                o.connections = o.depth = 1;
                o.count = o.count_set ? o.count : 1000;
                o.duration_ms = t_set ? o.duration_ms : 60000;
                break;
        default:
                return RINGQ_EXIT_SOFTWARE;
        }
        o.socket = ringq_client_socket(o.socket);

        /* The last resort bound: the run, a probe, the drains and slack. */
        signal(SIGPIPE, SIG_IGN);
        signal(SIGALRM, on_alarm);
        alarm((unsigned)(o.duration_ms / 1000 * 2 + 2 * BENCH_DRAIN_MS / 1000 + 60));
        raise_nofile(o.connections);

        if (o.mode == MODE_E2E)
                r = bench_e2e(&o, &res);
        else if (o.mode == MODE_ONE)
                r = bench_one(&o, &res);
        else if (o.mode == MODE_FSYNC)
                r = bench_fsync(&o, &res);
        else
                r = bench_load(&o, o.rate, &res);
        if (r < 0) {
                if (r != -ECANCELED)
                        fprintf(stderr, "ringq-bench: %s\n", strerror(-r));
                return r == -ECANCELED || r == -ECONNRESET ? RINGQ_EXIT_UNREACHABLE : RINGQ_EXIT_SOFTWARE;
        }
        if (o.json) {
                char *s = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

                if (!s)
                        return RINGQ_EXIT_SOFTWARE;
                puts(s);
                free(s);
        } else {
                bool first = true;

                print_kv(stdout, res, "", &first);
                putchar('\n');
        }
        free(o.tgt.unix_path);
        free(o.tgt.host);
        free(o.tgt.port);
        return fflush(stdout) == 0 ? 0 : RINGQ_EXIT_SOFTWARE;
}
