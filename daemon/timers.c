/* Binary min-heap of timer pointers keyed by due_ms. */
#include <errno.h>
#include <stdlib.h>

#include "timers.h"
#include "util.h"

static void place(struct timers *ts, size_t i, struct timer *t)
{
        ts->heap[i] = t;
        t->idx = i + 1;
}

static void sift_up(struct timers *ts, size_t i)
{
        struct timer *t = ts->heap[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (ts->heap[p]->due_ms <= t->due_ms)
                        break;
                place(ts, i, ts->heap[p]);
                i = p;
        }
        place(ts, i, t);
}

static void sift_down(struct timers *ts, size_t i)
{
        struct timer *t = ts->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= ts->n)
                        break;
                if (c + 1 < ts->n && ts->heap[c + 1]->due_ms < ts->heap[c]->due_ms)
                        c++;
                if (t->due_ms <= ts->heap[c]->due_ms)
                        break;
                place(ts, i, ts->heap[c]);
                i = c;
        }
        place(ts, i, t);
}

int timers_arm(struct timers *ts, struct timer *t, int64_t due_ms)
{
        if (timer_armed(t)) {
                int64_t old = t->due_ms;
                t->due_ms = due_ms;
                if (due_ms < old)
                        sift_up(ts, t->idx - 1);
                else
                        sift_down(ts, t->idx - 1);
                return 0;
        }
        if (grow_array((void **)&ts->heap, &ts->cap, ts->n + 1, sizeof(*ts->heap)) < 0)
                return -ENOMEM;
        t->due_ms = due_ms;
        place(ts, ts->n, t);
        sift_up(ts, ts->n++);
        return 0;
}

void timers_disarm(struct timers *ts, struct timer *t)
{
        size_t i = t->idx - 1;
        struct timer *last;

        if (!timer_armed(t))
                return;
        t->idx = 0;
        last = ts->heap[--ts->n];
        if (i == ts->n)
                return;
        place(ts, i, last);
        sift_up(ts, i);
        sift_down(ts, last->idx - 1);
}

int64_t timers_next(const struct timers *ts)
{
        return ts->n ? ts->heap[0]->due_ms : INT64_MAX;
}

unsigned timers_run(struct timers *ts, int64_t now_ms)
{
        unsigned fired = 0;

        while (ts->n && ts->heap[0]->due_ms <= now_ms) {
                struct timer *t = ts->heap[0];
                timers_disarm(ts, t);
                t->fn(t);
                fired++;
        }
        return fired;
}

void timers_done(struct timers *ts)
{
        for (size_t i = 0; i < ts->n; i++)
                ts->heap[i]->idx = 0;
        free(ts->heap);
        *ts = (struct timers){ 0 };
}
