/* Counters and recent latencies, all in memory: stats never count rows
 * in the database. */
#pragma once

#include <stdint.h>

#define LATENCY_WINDOW 1024 /* samples kept per latency: "recent" */

struct latency {
        uint32_t us[LATENCY_WINDOW]; /* microseconds, saturating */
        unsigned n, next;
        /* Every sample since start, not just the window: what a rate of
         * them or a mean over any interval is computed from. */
        uint64_t count, sum_us;
};

struct latency_summary {
        double p50_ms, p99_ms, max_ms;
        unsigned samples;
        uint64_t count, sum_us;
};

void latency_add(struct latency *l, int64_t us);
void latency_summarize(const struct latency *l, struct latency_summary *ret);

enum counter {
        C_ACCEPTED,
        C_REJECTED_FULL,
        C_REJECTED_OTHER,
        C_STARTED,
        C_SUCCEEDED,
        C_FAILED,
        C_TIMED_OUT,
        C_CANCELED,
        C_RETRIED,
        C_INTERRUPTED,          /* runs cut short by a stop, or found cut short by a crash at start */
        C_REJECTED_USER,        /* max_queued_per_user */
        /* One counter per bound, so each limit shows when it is hit. */
        C_CLIENTS_REFUSED,      /* max_clients */
        C_CLIENTS_REFUSED_USER, /* max_clients_per_user */
        C_CLIENTS_GONE,         /* clients that closed with requests pending */
        C_PIPELINE_STALLS,      /* max_pipeline */
        C_SLOW_READERS_CLOSED,  /* max_reply_bytes */
        C_IDLE_CLOSED,          /* idle_timeout */
        C_TOO_LARGE,            /* max_request_bytes */
        C_OUTPUT_TRUNCATED,     /* max_output_bytes */
        C_STORE_BUSY,           /* busy_timeout ran out */
        C_STORE_ERRORS,         /* any failed commit */
        C_COMMITS,              /* group commits done */
        C_WAL_SYNCS,            /* trailing fsyncs of the WAL (walsync.h) */
        C_EARLY_SUBMITS,        /* submits whose job could start before their fsync */
        C_KILLED,               /* process groups that needed SIGKILL */
        C_ORPHANS_KILLED,       /* processes an ended job left behind */
        C_PRUNED,               /* finished jobs removed */
        C_ADOPTED,              /* running jobs taken over from the process a re-exec replaced */
        C_REEXEC_FAILED,        /* re-execs given up (did not settle, or the exec failed) */
        _C_MAX,
};

extern const char *const counter_names[_C_MAX];

/* The steps of one job on its slot, each timed as it happens: what ringqd
 * adds to a job is launch + exec beyond the spawn itself (the start's
 * commit runs beside the job; only its end waits for it), and what a slot
 * stands idle between two jobs is slot_idle. */
enum path_step {
        P_LAUNCH,       /* picked -> child cloned */
        P_SUBMIT_COMMIT,/* a job a slot took as it was submitted: cloned ->
                         * its submit committed, when the barrier may open */
        P_START_COMMIT, /* its start handed to the store -> committed */
        P_EXEC,         /* released -> exec'd (its error pipe closed) */
        P_RUN,          /* exec'd -> main process exited */
        P_DRAIN,        /* exited -> pipes drained, end handed to the store */
        P_END_COMMIT,   /* end handed to the store -> committed */
        P_SLOT_IDLE,    /* a job's exit -> the next job's exec in the slot it
                         * freed, when that job was waiting for it */
        _P_MAX,
};

extern const char *const path_step_names[_P_MAX];

struct stats {
        uint64_t c[_C_MAX];
        struct latency commit, queue_wait, run;
        struct latency path[_P_MAX];
        /* Completion rate for retry_after_ms: an exponentially weighted
         * count of finished jobs per second. */
        double finish_rate;
        int64_t rate_mono_ms;
};

void stats_finished(struct stats *s, int64_t now_mono_ms);
double stats_rate(struct stats *s, int64_t now_mono_ms);
