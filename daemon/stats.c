#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "util.h"

const char *const path_step_names[_P_MAX] = {
        [P_LAUNCH] = "launch",
        [P_SUBMIT_COMMIT] = "submit_commit",
        [P_START_COMMIT] = "start_commit",
        [P_EXEC] = "exec",
        [P_RUN] = "run",
        [P_DRAIN] = "drain",
        [P_END_COMMIT] = "end_commit",
        [P_SLOT_IDLE] = "slot_idle",
};

const char *const counter_names[_C_MAX] = {
        [C_ACCEPTED] = "accepted",
        [C_REJECTED_FULL] = "rejected_full",
        [C_REJECTED_OTHER] = "rejected_other",
        [C_STARTED] = "started",
        [C_SUCCEEDED] = "succeeded",
        [C_FAILED] = "failed",
        [C_TIMED_OUT] = "timed_out",
        [C_CANCELED] = "canceled",
        [C_RETRIED] = "retried",
        [C_INTERRUPTED] = "interrupted",
        [C_REJECTED_USER] = "rejected_user",
        [C_CLIENTS_REFUSED] = "clients_refused",
        [C_CLIENTS_REFUSED_USER] = "clients_refused_user",
        [C_CLIENTS_GONE] = "clients_gone",
        [C_PIPELINE_STALLS] = "pipeline_stalls",
        [C_SLOW_READERS_CLOSED] = "slow_readers_closed",
        [C_IDLE_CLOSED] = "idle_closed",
        [C_TOO_LARGE] = "too_large",
        [C_OUTPUT_TRUNCATED] = "output_truncated",
        [C_STORE_BUSY] = "store_busy",
        [C_STORE_ERRORS] = "store_errors",
        [C_COMMITS] = "commits",
        [C_WAL_SYNCS] = "wal_syncs",
        [C_EARLY_SUBMITS] = "early_submits",
        [C_KILLED] = "killed",
        [C_ORPHANS_KILLED] = "orphans_killed",
        [C_PRUNED] = "pruned",
        [C_ADOPTED] = "adopted",
        [C_REEXEC_FAILED] = "reexec_failed",
};

void latency_add(struct latency *l, int64_t us)
{
        uint64_t v = us > 0 ? (uint64_t)us : 0;

        /* The sum saturates at INT64_MAX, the largest a JSON integer
         * carries exactly; the window's samples at UINT32_MAX. */
        l->sum_us = l->sum_us > (uint64_t)INT64_MAX - v ? (uint64_t)INT64_MAX : l->sum_us + v;
        l->count++;
        l->us[l->next] = (uint32_t)CLAMP(us, 0, (int64_t)UINT32_MAX);
        l->next = (l->next + 1) % LATENCY_WINDOW;
        if (l->n < LATENCY_WINDOW)
                l->n++;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return (x > y) - (x < y);
}

void latency_summarize(const struct latency *l, struct latency_summary *ret)
{
        uint32_t v[LATENCY_WINDOW];

        *ret = (struct latency_summary){ .samples = l->n, .count = l->count, .sum_us = l->sum_us };
        if (!l->n)
                return;
        memcpy(v, l->us, l->n * sizeof(v[0]));
        qsort(v, l->n, sizeof(v[0]), cmp_u32);
        /* Nearest-rank percentiles. */
        ret->p50_ms = v[(l->n * 50 + 99) / 100 - 1] / 1000.0;
        ret->p99_ms = v[(l->n * 99 + 99) / 100 - 1] / 1000.0;
        ret->max_ms = v[l->n - 1] / 1000.0;
}

/* Decay with a 10 s time constant: recent enough to follow a change in
 * load, long enough not to jump on one burst. */
static void rate_decay(struct stats *s, int64_t now)
{
        if (s->rate_mono_ms && now > s->rate_mono_ms)
                s->finish_rate *= exp(-(double)(now - s->rate_mono_ms) / 10000.0);
        s->rate_mono_ms = now;
}

void stats_finished(struct stats *s, int64_t now_mono_ms)
{
        rate_decay(s, now_mono_ms);
        s->finish_rate += 1.0 / 10.0;
}

double stats_rate(struct stats *s, int64_t now_mono_ms)
{
        rate_decay(s, now_mono_ms);
        return s->finish_rate;
}
