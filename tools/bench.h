/* ringq-bench: what its files share (bench.c main and output, bench_load.c
 * the submit/overload engine and its targets, bench_e2e.c the end-to-end
 * mode, bench_stats.c the latency histogram and /proc readers).
 *
 * Functions return 0 (or a count) or a negative errno and do not print,
 * except the mode runners, which report their own failures on stderr.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

/* Hard ceilings on what one run may ask for, so every loop is bounded. */
#define BENCH_MAX_CONNECTIONS 4096u
#define BENCH_MAX_DEPTH CLIENT_WINDOW_MAX
#define BENCH_MAX_COUNT 100000000ull
#define BENCH_MAX_DURATION_MS (3600LL * 1000)
/* e2e keeps every accepted id until its wait is answered. */
#define BENCH_E2E_MAX_JOBS 1000000ull
/* After the run, replies still missing are waited for this long at most. */
#define BENCH_DRAIN_MS 30000
/* Default far delay of submitted jobs: they must not start during a run. */
#define BENCH_FAR_DELAY_MS (24LL * 3600 * 1000)

/* ---- latency histogram (bench_stats.c) ----
 * Log-linear buckets over nanoseconds: exact below 2^HIST_SUB_BITS, then
 * 2^HIST_SUB_BITS buckets per power of two (relative error < 1/128). Fixed
 * size, so any number of samples fits. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 42 /* values up to 2^42 ns (~73 min); larger are clamped */
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS) * HIST_SUB)

typedef struct hist {
        uint64_t count;
        uint64_t max_ns;
        uint64_t sum_ns;
        uint64_t bucket[HIST_BUCKETS];
} hist;

void hist_add(hist *h, uint64_t ns);
/* The value (ns) below which fraction q (0..1) of the samples lie; 0 if empty. */
uint64_t hist_quantile(const hist *h, double q);
/* {"count", "p50", "p90", "p99", "p999", "max", "mean"} in milliseconds. */
json_t *hist_json(const hist *h);
/* Nanoseconds as milliseconds to the microsecond (a difference may be
 * below 0). */
json_t *bench_ms(int64_t ns);

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t now_ns(void);

/* ---- the daemon's process (bench_stats.c) ---- */
typedef struct proc_sample {
        bool ok;
        uint64_t cpu_ticks; /* utime + stime */
        uint64_t rss_kb;    /* VmRSS */
        int64_t at_ns;
} proc_sample;

int proc_read(int pid, proc_sample *ret);
/* {"pid", "cpu_s", "cpu_pct", "rss_start_kb", "rss_end_kb"}; null fields
 * for what could not be read. */
json_t *proc_json(int pid, const proc_sample *a, const proc_sample *b);
/* The pid at the other end of a connected Unix socket, or -errno. */
int peer_pid(int fd);
/* Connect to o->socket and sample the daemon's CPU there: *pid is o's
 * --pid, else the peer's (0: unknown). 0, or -ECANCELED once the failure
 * is printed. */
struct bench_opts;
int bench_connect_sampled(const struct bench_opts *o, client **ret_c, int *pid, proc_sample *ret);

/* ---- options (bench.c) ---- */
enum bench_mode { MODE_SUBMIT, MODE_E2E, MODE_OVERLOAD, MODE_ONE, MODE_FSYNC, _MODE_MAX };

enum target_kind { TARGET_RINGQ, TARGET_BEANSTALKD, TARGET_REDIS, _TARGET_MAX };

typedef struct target {
        enum target_kind kind;
        const char *spec;    /* as given, for the report */
        char *unix_path;     /* Unix socket, or NULL for TCP */
        char *host, *port;   /* TCP */
} target;

typedef struct bench_opts {
        enum bench_mode mode;
        const char *socket;     /* ringqd's, for the ringq target and stats */
        target tgt;
        unsigned connections;
        unsigned depth;
        uint64_t count;         /* requests (submit, overload) or jobs (e2e) */
        bool count_set;
        int64_t duration_ms;
        double rate;            /* overload: offered requests/s; 0: probe */
        const char *cmd;        /* job command, split on blanks */
        int64_t delay_ms;       /* submit/overload jobs' delay_ms */
        unsigned queues;        /* ringq submits: spread over queues q00000..; 0: none given */
        int pid;                /* daemon pid; 0: SO_PEERCRED */
        bool json;
        bool quiet;
        bool ping;              /* submit/overload send {"op":"ping"} */
        const char *fsync_dir;  /* one, fsync: time the disk's floor in a file here; NULL: not */
} bench_opts;

/* ---- the runs (bench_load.c, bench_e2e.c) ---- */

/* The ringq submit request every job of a run uses (argv from o->cmd). */
int bench_submit_request(const bench_opts *o, int64_t delay_ms, json_t **ret);
/* submit (rate 0: closed loop) and overload (open loop at o->rate). On
 * success *ret is the result object for the report. */
int bench_load(const bench_opts *o, double rate, json_t **ret);
int bench_e2e(const bench_opts *o, json_t **ret);
int bench_one(const bench_opts *o, json_t **ret);
/* The disk's floor under a durable submit (bench_fsync.c): an unnamed
 * file in dir (a failure to make it is said on stderr, and -ECANCELED),
 * and one one-row commit's writes and fdatasync into it, timed into h. */
struct bench_floor;
int bench_floor_open(const char *dir, struct bench_floor **ret);
int bench_floor_once(struct bench_floor *f, hist *h);
void bench_floor_close(struct bench_floor *f);
int bench_fsync(const bench_opts *o, json_t **ret);
/* Figures of the daemon that do not depend on the machine's speed of
 * spawning, added to res: its CPU per job (from a and b, /proc/PID/stat,
 * 10 ms ticks) and, from its stats, the p50 and p99 of each step of a
 * job's path and of a slot's idle time between jobs (job_path_ms). */
void bench_add_daemon_figures(client *c, json_t *res, const proc_sample *a, const proc_sample *b, uint64_t jobs);
/* Connect to ringqd at o->socket and return the daemon's pid (for --pid 0). */
int bench_ringq_pid(const bench_opts *o);
