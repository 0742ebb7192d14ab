/* Deadlines on the monotonic clock: a min-heap of timers embedded in
 * their owners (connections, worker slots, waiters). Each timer knows its
 * heap index, so removal is O(log n) and no stale entry ever piles up.
 * The loop sleeps exactly until the earliest one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
        int64_t due_ms;   /* CLOCK_MONOTONIC */
        size_t idx;       /* position in the heap + 1; 0 when idle, so a
                           * zeroed timer is a disarmed one */
        timer_fn fn;
};

struct timers {
        struct timer **heap;
        size_t n, cap;
};

static inline void timer_init(struct timer *t, timer_fn fn)
{
        t->due_ms = 0;
        t->idx = 0;
        t->fn = fn;
}

static inline int timer_armed(const struct timer *t) { return t->idx != 0; }

/* (Re)arm t at due_ms. Returns 0 or -ENOMEM. */
int timers_arm(struct timers *ts, struct timer *t, int64_t due_ms);
void timers_disarm(struct timers *ts, struct timer *t);
/* Earliest deadline, or INT64_MAX when none. */
int64_t timers_next(const struct timers *ts);
/* Fire every timer due at now_ms; each is disarmed before its callback,
 * which may re-arm it. Returns how many fired. */
unsigned timers_run(struct timers *ts, int64_t now_ms);
void timers_done(struct timers *ts);
