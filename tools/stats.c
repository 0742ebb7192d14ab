/* ringq stats (human or Prometheus text), ping, the queue verbs (queues,
 * pause and resume) and admin. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fmt.h"
#include "ringq/utf8.h"

static bool arg_prometheus;

/* ---- Prometheus text exposition ----
 *
 * Each field of the stats reply that ringq knows has a metric named for
 * what it measures, in base units (seconds, bytes); the names and their
 * meaning are listed in the README. A field this ringq does not know (a
 * newer ringqd) is still printed, under a name made from its key, so
 * nothing is hidden. Families are written whole, one after another: the
 * tables below keep the entries of one family together. */

#define UNKNOWN_HELP "(a field of ringqd's stats this ringq has no description for)"

struct prom {
        FILE *f;
        const char *family; /* whose HELP and TYPE were written last */
};

/* HELP and TYPE once, before a family's first sample. */
static void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
        if (p->family && strcmp(p->family, name) == 0)
                return;
        fprintf(p->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        p->family = name;
}

/* "ringq_" key suffix, with what a metric name may not hold made '_'. */
static void metric_name(char *buf, size_t n, const char *key, const char *suffix)
{
        snprintf(buf, n, "ringq_%s%s", key, suffix);
        for (char *c = buf; *c; c++)
                if ((unsigned char)*c >= 0x80 || (!isalnum((unsigned char)*c) && *c != '_'))
                        *c = '_';
}

/* A label value: UTF-8 with backslash, double quote and line feed
 * escaped (the format's rules); bytes that are not UTF-8 become U+FFFD
 * so the exposition stays parseable. */
static void prom_label_value(FILE *f, const char *s)
{
        while (*s) {
                int32_t cp;
                size_t n = fmt_utf8_next(s, &cp);

                if (cp == '\\')
                        fputs("\\\\", f);
                else if (cp == '"')
                        fputs("\\\"", f);
                else if (cp == '\n')
                        fputs("\\n", f);
                else if (cp < 0)
                        fputs("\xef\xbf\xbd", f);
                else
                        fwrite(s, 1, n, f);
                s += n;
        }
}

/* The start of a sample line: name, then {label="value",quantile="q"}
 * with whichever of the two is not NULL. */
static void prom_series(struct prom *p, const char *name, const char *label, const char *value,
                        const char *quantile)
{
        fputs(name, p->f);
        if (label) {
                fprintf(p->f, "{%s=\"", label);
                prom_label_value(p->f, value);
                fputc('"', p->f);
        }
        if (quantile)
                fprintf(p->f, "%cquantile=\"%s\"", label ? ',' : '{', quantile);
        fputs(label || quantile ? "} " : " ", p->f);
}

/* Microseconds as seconds, exactly: no binary fraction in between. */
static void prom_us(FILE *f, uint64_t us)
{
        char frac[8];
        int n;

        if (us % 1000000 == 0) {
                fprintf(f, "%" PRIu64 "\n", us / 1000000);
                return;
        }
        n = snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000);
        while (n > 0 && frac[n - 1] == '0')
                frac[--n] = '\0';
        fprintf(f, "%" PRIu64 ".%s\n", us / 1000000, frac);
}

/* A JSON number or boolean as a sample value and the line's end;
 * scale_ms turns milliseconds (ringqd's are whole microseconds) into
 * seconds. */
static void prom_value(FILE *f, const json_t *v, bool scale_ms)
{
        double x = json_number_value(v);

        if (json_is_boolean(v))
                fputs(json_is_true(v) ? "1\n" : "0\n", f);
        else if (scale_ms && x >= 0 && x < 9e12)
                prom_us(f, (uint64_t)(x * 1000 + 0.5)); /* rounded */
        else if (scale_ms)
                fprintf(f, "%.9g\n", x / 1000);
        else if (json_is_integer(v))
                fprintf(f, "%" PRId64 "\n", (int64_t)json_integer_value(v));
        else
                fprintf(f, "%.9g\n", x);
}

static const struct prom_gauge {
        const char *key, *name, *help;
        bool ms;
} prom_gauges[] = {
        { "accepting", "ringq_accepting",
          "1 while ringqd accepts submits, 0 while it rejects them (past the high-water mark, or stopping).", false },
        { "queued", "ringq_queued",
          "Jobs in state queued, delayed ones and those waiting for a retry or for other jobs included.", false },
        { "waiting", "ringq_waiting", "Queued jobs waiting for the jobs they run after.", false },
        { "running", "ringq_running", "Worker slots running a job now.", false },
        { "workers", "ringq_workers", "Worker slots: jobs that may run at once.", false },
        { "high_water", "ringq_high_water", "Queued jobs at which submits are rejected (the global high-water mark).",
          false },
        { "low_water", "ringq_low_water",
          "Queued jobs at which submits are accepted again after rejecting (the global low-water mark).", false },
        { "all_paused", "ringq_all_paused", "1 while every queue is paused (a pause without a queue), else 0.", false },
        { "connections", "ringq_connections", "Open client connections.", false },
        { "max_clients", "ringq_max_clients",
          "Client connections ringqd serves before refusing more (max_clients; root has a reserve above it).", false },
        { "db_bytes", "ringq_db_bytes", "Size of the queue database file in bytes.", false },
        { "wal_bytes", "ringq_wal_bytes", "Size of the queue database's write-ahead log in bytes.", false },
        { "uptime_ms", "ringq_uptime_seconds", "Seconds since ringqd started, or last re-executed.", true },
        { "pid", "ringq_pid", "Process id of ringqd: a re-exec keeps it, a restart changes it.", false },
        { "reexecs", "ringq_reexecs",
          "Re-execs in place this ringqd process (its pid) has been through; unlike the counters, which "
          "start again from 0 with each, a re-exec does not reset it.", false },
};

/* Counters, by what they count; a label tells the entries of one
 * family apart. */
static const struct prom_counter {
        const char *key, *name, *label, *value, *help;
} prom_counters[] = {
        { "accepted", "ringq_jobs_accepted_total", NULL, NULL,
          "Submits that made a job (a resubmit of a known key is not counted)." },
        { "rejected_full", "ringq_jobs_rejected_total", "reason", "full",
          "Submits and retries refused: full (a global or a queue's high-water mark, or root's reserve), "
          "user (max_queued_per_user), other (a bad request, stopping, a job in after not found or "
          "another user's, a storage error; submits only)." },
        { "rejected_user", "ringq_jobs_rejected_total", "reason", "user", NULL },
        { "rejected_other", "ringq_jobs_rejected_total", "reason", "other", NULL },
        { "started", "ringq_jobs_started_total", NULL, NULL, "Job attempts started (a retry is a new attempt)." },
        { "succeeded", "ringq_jobs_finished_total", "state", "succeeded",
          "Jobs that reached a final state, by that state (canceled: by request or by a dependency, "
          "queued or running)." },
        { "failed", "ringq_jobs_finished_total", "state", "failed", NULL },
        { "canceled", "ringq_jobs_finished_total", "state", "canceled", NULL },
        { "timed_out", "ringq_jobs_timed_out_total", NULL, NULL,
          "Job attempts stopped at their timeout, retried or not." },
        { "retried", "ringq_jobs_retried_total", NULL, NULL,
          "Jobs queued again: failed attempts with attempts left, attempts cut short by a stop of ringqd, "
          "and retry requests." },
        { "interrupted", "ringq_jobs_interrupted_total", NULL, NULL,
          "Job runs cut short by ringqd: stopped past shutdown_grace, or found running at start after a "
          "crash." },
        { "adopted", "ringq_jobs_adopted_total", NULL, NULL,
          "Running jobs this ringqd took over, alive, from the process it replaced at its last re-exec." },
        { "reexec_failed", "ringq_reexec_failures_total", NULL, NULL,
          "Re-execs given up (running starts and ends did not settle in time, or the exec failed); "
          "ringqd went on as before." },
        { "killed", "ringq_jobs_killed_total", NULL, NULL,
          "Jobs sent SIGKILL after they outlived kill_grace past SIGTERM." },
        { "orphans_killed", "ringq_orphan_processes_killed_total", NULL, NULL,
          "Processes an ended job left behind, killed (without cgroups)." },
        { "output_truncated", "ringq_output_truncated_total", NULL, NULL,
          "Output streams of a job attempt cut at max_output_bytes." },
        { "pruned", "ringq_jobs_pruned_total", NULL, NULL,
          "Finished jobs deleted with their output (retention, max_finished)." },
        { "clients_refused", "ringq_connections_refused_total", "reason", "max_clients",
          "Connections refused with busy, by the bound: max_clients (with root's reserve), per_user "
          "(max_clients_per_user)." },
        { "clients_refused_user", "ringq_connections_refused_total", "reason", "per_user", NULL },
        { "idle_closed", "ringq_connections_closed_total", "reason", "idle",
          "Connections ringqd closed, by why: idle (no request and no wait for idle_timeout), slow_reader "
          "(unread replies past max_reply_bytes), too_large (a request line past max_request_bytes)." },
        { "slow_readers_closed", "ringq_connections_closed_total", "reason", "slow_reader", NULL },
        { "too_large", "ringq_connections_closed_total", "reason", "too_large", NULL },
        { "clients_gone", "ringq_connections_abandoned_total", NULL, NULL,
          "Connections their client closed with requests still pending." },
        { "pipeline_stalls", "ringq_pipeline_stalls_total", NULL, NULL,
          "Times ringqd stopped reading a connection that had max_pipeline requests unanswered." },
        { "commits", "ringq_store_commits_total", NULL, NULL, "Group commits of the database thread." },
        { "store_busy", "ringq_store_busy_total", NULL, NULL,
          "Database operations that ran out of busy_timeout waiting for a lock (each also a store "
          "error)." },
        { "store_errors", "ringq_store_errors_total", NULL, NULL,
          "Database operations and write-ahead log fsyncs that failed." },
        { "wal_syncs", "ringq_wal_syncs_total", NULL, NULL,
          "Fsyncs of the write-ahead log after commits of job starts and ends." },
        { "early_submits", "ringq_early_submits_total", NULL, NULL,
          "Submits committed before their fsync, so that their job could start during it; each was "
          "answered after the fsync." },
};

/* The latencies of latency_ms, each a summary of its own; job_path_ms is
 * one summary with a label per step (prom_latencies_write). */
static const struct prom_latency {
        const char *key, *name, *help;
} prom_latencies[] = {
        { "commit", "ringq_store_commit_seconds",
          "Seconds from an operation handed to the database thread to its commit." },
        { "queue_wait", "ringq_job_queue_wait_seconds",
          "Seconds from a job attempt's run_at (or its submission, if later) to its start, in whole "
          "milliseconds." },
        { "run", "ringq_job_run_seconds", "Seconds each job attempt ran, from its start's commit to its end." },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A field of the reply this ringq has no name for, as a family of its own. */
static void prom_unknown(struct prom *p, const char *key, const char *suffix, const char *type, const json_t *v)
{
        char name[160];

        metric_name(name, sizeof(name), key, suffix);
        /* The name, not the key, in the help: a key may hold what HELP
         * would need escaped. */
        fprintf(p->f, "# HELP %s %s.\n# TYPE %s %s\n", name, UNKNOWN_HELP, name, type);
        p->family = NULL; /* name does not outlive this call */
        prom_series(p, name, NULL, NULL, NULL);
        prom_value(p->f, v, false);
}

static void prom_gauges_write(struct prom *p, const json_t *st)
{
        const char *key;
        json_t *v;

        for (size_t i = 0; i < N(prom_gauges); i++) {
                v = json_object_get(st, prom_gauges[i].key);
                if (!json_is_number(v) && !json_is_boolean(v))
                        continue;
                prom_family(p, prom_gauges[i].name, "gauge", prom_gauges[i].help);
                prom_series(p, prom_gauges[i].name, NULL, NULL, NULL);
                prom_value(p->f, v, prom_gauges[i].ms);
        }
        json_object_foreach((json_t *)st, key, v) {
                size_t i;

                for (i = 0; i < N(prom_gauges) && strcmp(prom_gauges[i].key, key) != 0; i++)
                        ;
                /* "ok" is the reply's, not a fact about ringqd. */
                if (i == N(prom_gauges) && strcmp(key, "ok") != 0 && (json_is_number(v) || json_is_boolean(v)))
                        prom_unknown(p, key, "", "gauge", v);
        }
        v = json_object_get(st, "version");
        if (json_is_string(v)) {
                prom_family(p, "ringq_build_info", "gauge", "Always 1; its label version is ringqd's version.");
                prom_series(p, "ringq_build_info", "version", json_string_value(v), NULL);
                fputs("1\n", p->f);
        }
}

static void prom_counters_write(struct prom *p, const json_t *counters)
{
        const char *key, *help = NULL;
        json_t *v;

        for (size_t i = 0; i < N(prom_counters); i++) {
                const struct prom_counter *c = &prom_counters[i];

                /* The first entry of a family carries its help. */
                help = c->help ?: help;
                v = json_object_get(counters, c->key);
                if (!json_is_integer(v))
                        continue;
                prom_family(p, c->name, "counter", help);
                prom_series(p, c->name, c->label, c->value, NULL);
                prom_value(p->f, v, false);
        }
        json_object_foreach((json_t *)counters, key, v) {
                size_t i;

                for (i = 0; i < N(prom_counters) && strcmp(prom_counters[i].key, key) != 0; i++)
                        ;
                if (i == N(prom_counters) && json_is_integer(v))
                        prom_unknown(p, key, "_total", "counter", v);
        }
}

/* One summary's samples from a latency object of the reply: quantiles
 * 0.5, 0.99 and 1 (the maximum) over the last samples ringqd keeps,
 * NaN while it has none; _sum and _count over every sample since ringqd
 * started. A reply without count and sum_us (an older ringqd) gives no
 * summary. */
static void prom_summary(struct prom *p, const char *name, const char *help, const char *label,
                         const char *value, const json_t *lat)
{
        static const char *const qkeys[] = { "p50", "p99", "max" }, *const qs[] = { "0.5", "0.99", "1" };
        const json_t *count = json_object_get(lat, "count"), *sum = json_object_get(lat, "sum_us");
        bool empty = json_integer_value(json_object_get(lat, "samples")) <= 0;
        char full[768], sname[192];

        if (!json_is_integer(count) || !json_is_integer(sum) || json_integer_value(sum) < 0)
                return;
        snprintf(full, sizeof(full), "%s Quantiles over the last 1024 samples (NaN before the first); sum "
                                     "and count over every sample since ringqd started.", help);
        prom_family(p, name, "summary", full);
        for (size_t i = 0; i < N(qkeys); i++) {
                const json_t *v = json_object_get(lat, qkeys[i]);

                if (!json_is_number(v))
                        continue;
                prom_series(p, name, label, value, qs[i]);
                if (empty)
                        fputs("NaN\n", p->f);
                else
                        prom_value(p->f, v, true);
        }
        snprintf(sname, sizeof(sname), "%s_sum", name);
        prom_series(p, sname, label, value, NULL);
        prom_us(p->f, (uint64_t)json_integer_value(sum));
        snprintf(sname, sizeof(sname), "%s_count", name);
        prom_series(p, sname, label, value, NULL);
        prom_value(p->f, count, false);
}

static void prom_latencies_write(struct prom *p, const json_t *st)
{
        const json_t *lat = json_object_get(st, "latency_ms"), *path = json_object_get(st, "job_path_ms");
        const char *key;
        json_t *v;

        for (size_t i = 0; i < N(prom_latencies); i++)
                prom_summary(p, prom_latencies[i].name, prom_latencies[i].help, NULL, NULL,
                             json_object_get(lat, prom_latencies[i].key));
        json_object_foreach((json_t *)lat, key, v) {
                char name[160];
                size_t i;

                for (i = 0; i < N(prom_latencies) && strcmp(prom_latencies[i].key, key) != 0; i++)
                        ;
                if (i < N(prom_latencies))
                        continue;
                metric_name(name, sizeof(name), key, "_seconds");
                prom_summary(p, name, "A latency in seconds " UNKNOWN_HELP ".", NULL, NULL, v);
                p->family = NULL; /* name does not outlive this loop */
        }
        /* The steps are parts of one path, so one family: summed over
         * step, what a job attempt took from its pick to its end's
         * commit. */
        json_object_foreach((json_t *)path, key, v)
                prom_summary(p, "ringq_job_path_seconds",
                             "Seconds each step of a job attempt on its worker slot takes, by step: launch (picked "
                             "to child cloned), submit_commit (a job started as it was submitted: child cloned to "
                             "its submit committed), start_commit (start handed to the database to committed), exec "
                             "(child released to exec done), run (exec to exit), drain (exit to the end handed "
                             "to the database), end_commit (end handed over to committed), slot_idle (a job's "
                             "exit to the next job's exec in that slot, when one was waiting).",
                             "step", key, v);
}

/* One family per field, a series per queue that has the field: a queue
 * without a cap of its own has no ringq_queue_workers series (rather than
 * a made-up value), and a family with no series is left out. */
static int prom_queues_write(struct prom *p, const json_t *queues)
{
        static const struct prom_gauge fams[] = {
                { "queued", "ringq_queue_queued", "Jobs in state queued in a queue, delayed ones included.", false },
                { "running", "ringq_queue_running", "Jobs of a queue running now.", false },
                { "workers", "ringq_queue_workers",
                  "Jobs of a queue that may run at once, for queues with a cap of their own.", false },
                { "high_water", "ringq_queue_high_water",
                  "Queued jobs at which submits to a queue are rejected, for queues with a mark of their own.", false },
                { "paused", "ringq_queue_paused", "1 while a queue is paused (by itself or with every queue), else 0.",
                  false },
        };
        const json_t **qs = NULL;
        size_t n;
        int r;

        r = fmt_queues_sorted(queues, &qs, &n);
        if (r < 0)
                return r;
        for (size_t k = 0; k < N(fams); k++)
                for (size_t i = 0; i < n; i++) {
                        const json_t *v = json_object_get(qs[i], fams[k].key);

                        if (!json_is_number(v) && !json_is_boolean(v))
                                continue;
                        prom_family(p, fams[k].name, "gauge", fams[k].help);
                        prom_series(p, fams[k].name, "queue", json_string_value(json_object_get(qs[i], "name")),
                                    NULL);
                        prom_value(p->f, v, false);
                }
        free(qs);
        return 0;
}

static int prometheus(FILE *f, const json_t *st)
{
        struct prom p = { .f = f };
        int r;

        prom_gauges_write(&p, st);
        prom_counters_write(&p, json_object_get(st, "counters"));
        prom_latencies_write(&p, st);
        r = prom_queues_write(&p, json_object_get(st, "queues"));
        if (r < 0)
                return r;
        return ferror(f) ? -EIO : 0;
}

int verb_stats(const struct verb *v, int argc, char **argv)
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
        r = arg_prometheus ? prometheus(stdout, reply) : fmt_stats(stdout, reply);
        return r < 0 ? RINGQ_EXIT_SOFTWARE : 0;
}

int verb_ping(const struct verb *v, int argc, char **argv)
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


/* queues, pause and resume: the op is the verb's name, and each answers
 * with the queue table. Whether a name is a valid queue is ringqd's to
 * say, as for submit -q. */
int verb_queues(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        bool takes_queue = strcmp(v->name, "queues") != 0;
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        const char *queue = NULL;
        json_t *req;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (takes_queue && optind < argc)
                queue = argv[optind++];
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        if (queue && !ringq_utf8_valid(queue))
                return usage_error(v, "queue must be valid UTF-8");
        r = open_client(&cl);
        if (r)
                return r;
        req = json_pack("{s:s}", "op", v->name);
        if (req && queue && set_new(req, "queue", json_string(queue)) < 0) {
                json_decref(req);
                req = NULL;
        }
        r = call(cl, req, &reply);
        if (r || arg_json)
                return r;
        return fmt_queues(stdout, reply) < 0 ? RINGQ_EXIT_SOFTWARE : 0;
}

/* ---- admin: ringqd itself ----
 *
 * reexec asks ringqd to re-execute in place and reports how that went,
 * which only the process after it can say: ringqd answers the request at
 * once, then settles, closes or hands over every connection and execs.
 * So stats is read before, and then asked on fresh connections until
 * reexecs has grown (done: the new process answers), reexec_failed has
 * (given up: the old one goes on), or another process answers. */

/* How long the outcome may take: ringqd gives up settling after 15 s,
 * then a new process opens the database and recovers before it answers.
 * Past a minute something else is wrong, and the journal says what. */
#define REEXEC_WAIT_MS 60000
/* Each stats attempt. A connection made while ringqd settles waits in
 * the listening socket's backlog until a process takes it, normally the
 * new one; the bound lets an attempt that nothing will answer (ringqd
 * crashed) be given up and made again rather than waited on forever. */
#define REEXEC_ASK_MS 2000
#define REEXEC_POLL_MS 100

enum rx_outcome { RX_PENDING, RX_DONE, RX_GIVEN_UP, RX_AFRESH, RX_REPLACED, RX_TIMEOUT };

static const char *const rx_outcome_names[] = {
        [RX_PENDING] = "pending",     [RX_DONE] = "reexecuted", [RX_GIVEN_UP] = "given_up",
        [RX_AFRESH] = "started_afresh", [RX_REPLACED] = "replaced", [RX_TIMEOUT] = "timeout",
};

/* What a stats reply says about the re-exec. */
struct rx_seen {
        int64_t pid, reexecs, failed, uptime_ms;
};

static struct rx_seen rx_read(const json_t *st)
{
        return (struct rx_seen){
                .pid = json_integer_value(json_object_get(st, "pid")),
                .reexecs = json_integer_value(json_object_get(st, "reexecs")),
                .failed = json_integer_value(json_object_get(json_object_get(st, "counters"), "reexec_failed")),
                .uptime_ms = json_integer_value(json_object_get(st, "uptime_ms")),
        };
}

/* Counters and uptime start again with each process image; reexecs and
 * the pid outlive a re-exec. */
static enum rx_outcome rx_judge(const struct rx_seen *before, int64_t base_reexecs, const struct rx_seen *now)
{
        if (now->pid != before->pid)
                return RX_REPLACED;
        if (now->reexecs > base_reexecs)
                return RX_DONE;
        if (now->uptime_ms < before->uptime_ms)
                return RX_AFRESH; /* exec'd, but the hand-off was not taken */
        if (now->failed > before->failed)
                return RX_GIVEN_UP;
        return RX_PENDING;
}

/* stats on a connection of its own, within REEXEC_ASK_MS. */
static int rx_ask(const char *path, json_t **ret)
{
        _cleanup_client_ client *c = NULL;
        _cleanup_json_ json_t *req = json_pack("{s:s}", "op", "stats");
        int r;

        if (!req)
                return -ENOMEM;
        r = client_connect(path, &c);
        if (r == 0)
                r = client_queue(c, req);
        if (r == 0)
                r = client_recv(c, REEXEC_ASK_MS, ret);
        return r;
}

static int rx_report(enum rx_outcome o, const json_t *before, const json_t *last)
{
        const json_t *counters = json_object_get(last, "counters");
        const char *v0 = json_string_value(json_object_get(before, "version"));
        const char *v1 = json_string_value(json_object_get(last, "version"));
        int64_t pid = json_integer_value(json_object_get(last, "pid"));
        char version[128] = "";

        if (arg_json) {
                _cleanup_json_ json_t *out = json_pack(
                        "{s:b,s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "ok", o == RX_DONE, "outcome", rx_outcome_names[o],
                        "pid", json_object_get(last, "pid"), "version", json_object_get(last, "version"), "reexecs",
                        json_object_get(last, "reexecs"), "adopted", json_object_get(counters, "adopted"),
                        "reexec_failed", json_object_get(counters, "reexec_failed"), "running",
                        json_object_get(last, "running"));

                if (!out)
                        return conn_error("ringq", -ENOMEM);
                emit_json(out);
        }
        switch (o) {
        case RX_DONE:
                if (v0 && v1 && strcmp(v0, v1) != 0)
                        snprintf(version, sizeof(version), ", version %s -> %s", v0, v1);
                if (!arg_json)
                        printf("ringqd re-executed (pid %" PRId64 "%s): %" PRId64 " running job(s) adopted\n", pid,
                               version, (int64_t)json_integer_value(json_object_get(counters, "adopted")));
                return 0;
        case RX_GIVEN_UP:
                fprintf(stderr, "ringq: ringqd gave the re-exec up and goes on as before (pid %" PRId64
                                "); its journal says why\n", pid);
                return 1;
        case RX_AFRESH:
                fprintf(stderr, "ringq: ringqd re-executed (pid %" PRId64 ") but did not take the hand-off: it "
                                "started as after a crash, its running jobs interrupted and queued again; its "
                                "journal says why\n", pid);
                return 1;
        case RX_REPLACED:
                fprintf(stderr, "ringq: another ringqd (pid %" PRId64 ", was %" PRId64 ") answers: the one asked "
                                "stopped or crashed instead of re-executing; its journal says why\n", pid,
                        (int64_t)json_integer_value(json_object_get(before, "pid")));
                return 1;
        default:
                fprintf(stderr, "ringq: ringqd (pid %" PRId64 ") has neither re-executed nor given up within %d s; "
                                "its journal says why\n", pid, REEXEC_WAIT_MS / 1000);
                return RINGQ_EXIT_WAIT_TIMEOUT;
        }
}

static int admin_reexec(void)
{
        const char *path = ringq_client_socket(arg_socket);
        _cleanup_client_ client *c = NULL;
        _cleanup_json_ json_t *before = NULL, *reply = NULL, *req = NULL, *last = NULL;
        enum rx_outcome o = RX_PENDING;
        struct rx_seen seen0;
        int64_t base, deadline;
        int r;

        r = open_client(&c);
        if (r)
                return r;
        req = json_pack("{s:s}", "op", "stats");
        r = req ? client_call(c, req, &before) : -ENOMEM;
        if (r < 0)
                return conn_error(path, r);
        if (!client_reply_ok(before))
                return reply_error(before, NULL);
        json_decref(req);
        req = json_pack("{s:s}", "op", "reexec");
        r = req ? client_call(c, req, &reply) : -ENOMEM;
        if (r < 0)
                return conn_error(path, r);
        if (!client_reply_ok(reply))
                return reply_error(reply, NULL);
        /* Counted from what the process had when it took the request: a
         * re-exec already under way (already) is the one reported. */
        seen0 = rx_read(before);
        base = json_is_integer(json_object_get(reply, "reexecs"))
                       ? json_integer_value(json_object_get(reply, "reexecs")) : seen0.reexecs;
        c = client_free(c);

        last = json_incref(before);
        deadline = client_now_ms() + REEXEC_WAIT_MS;
        while (o == RX_PENDING) {
                json_t *st = NULL;
                struct rx_seen now;

                if (client_now_ms() >= deadline) {
                        o = RX_TIMEOUT;
                        break;
                }
                (void)nanosleep(&(struct timespec){ 0, REEXEC_POLL_MS * 1000000L }, NULL);
                r = rx_ask(path, &st);
                if (r == -ENOMEM)
                        return conn_error(path, r);
                /* Refused, absent, hung up or slow: ringqd is between
                 * processes, or restarting; ask again. */
                if (r < 0)
                        continue;
                if (!client_reply_ok(st)) {
                        json_decref(st);
                        continue;
                }
                now = rx_read(st);
                json_decref(last);
                last = st;
                o = rx_judge(&seen0, base, &now);
        }
        return rx_report(o, before, last);
}

int verb_admin(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        const char *cmd;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (optind >= argc)
                return usage_error(v, "admin needs a command: reexec");
        cmd = argv[optind++];
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        if (strcmp(cmd, "reexec") == 0)
                return admin_reexec();
        return usage_error(v, "unknown admin command '%s' (reexec)", cmd);
}
