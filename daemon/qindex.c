/* Two binary min-heaps of packed 16-byte entries. */
#include <errno.h>
#include <stdlib.h>

#include "qindex.h"
#include "ringq/protocol.h"
#include "util.h"

#define T_MASK ((UINT64_C(1) << 52) - 1)

static inline int less(const struct qentry *a, const struct qentry *b)
{
        return a->key < b->key || (a->key == b->key && a->id < b->id);
}

static void heap_up(struct qentry *h, size_t i)
{
        struct qentry e = h[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!less(&e, &h[p]))
                        break;
                h[i] = h[p];
                i = p;
        }
        h[i] = e;
}

static void heap_down(struct qentry *h, size_t n, size_t i)
{
        struct qentry e = h[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= n)
                        break;
                if (c + 1 < n && less(&h[c + 1], &h[c]))
                        c++;
                if (!less(&h[c], &e))
                        break;
                h[i] = h[c];
                i = c;
        }
        h[i] = e;
}

static int heap_push(struct qentry **h, size_t *n, size_t *cap, struct qentry e)
{
        if (grow_array((void **)h, cap, *n + 1, sizeof(**h)) < 0)
                return -ENOMEM;
        (*h)[(*n)++] = e;
        heap_up(*h, *n - 1);
        return 0;
}

static struct qentry heap_pop(struct qentry *h, size_t *n)
{
        struct qentry top = h[0];

        h[0] = h[--*n];
        if (*n)
                heap_down(h, *n, 0);
        return top;
}

static struct qentry runnable_entry(int64_t id, int prio, int64_t run_at_ms)
{
        return (struct qentry){
                .key = (uint64_t)(RINGQ_PRIO_MAX - prio) << 52 | ((uint64_t)MAX(run_at_ms, 0) & T_MASK),
                .id = id,
        };
}

static int push_runnable(struct qindex *q, int64_t id, int prio, int64_t run_at_ms)
{
        return heap_push(&q->run, &q->nrun, &q->caprun, runnable_entry(id, prio, run_at_ms));
}

static struct qentry delayed_entry(int64_t id, int prio, int64_t run_at_ms, int64_t now_wall_ms,
                                   int64_t now_mono_ms)
{
        return (struct qentry){
                .key = (uint64_t)(now_mono_ms + MIN(run_at_ms - now_wall_ms, RINGQ_DURATION_MAX_MS)),
                .id = id << 11 | (prio - RINGQ_PRIO_MIN),
        };
}

int qindex_push(struct qindex *q, int64_t id, int prio, int64_t run_at_ms,
                int64_t now_wall_ms, int64_t now_mono_ms)
{
        if (run_at_ms <= now_wall_ms)
                return push_runnable(q, id, prio, run_at_ms);
        return heap_push(&q->delay, &q->ndelay, &q->capdelay,
                         delayed_entry(id, prio, run_at_ms, now_wall_ms, now_mono_ms));
}

static int append(struct qentry **h, size_t *n, size_t *cap, struct qentry e)
{
        if (grow_array((void **)h, cap, *n + 1, sizeof(**h)) < 0)
                return -ENOMEM;
        (*h)[(*n)++] = e;
        return 0;
}

int qindex_append(struct qindex *q, int64_t id, int prio, int64_t run_at_ms,
                  int64_t now_wall_ms, int64_t now_mono_ms)
{
        if (run_at_ms <= now_wall_ms)
                return append(&q->run, &q->nrun, &q->caprun, runnable_entry(id, prio, run_at_ms));
        return append(&q->delay, &q->ndelay, &q->capdelay,
                      delayed_entry(id, prio, run_at_ms, now_wall_ms, now_mono_ms));
}

void qindex_heapify(struct qindex *q)
{
        for (size_t i = q->nrun / 2; i-- > 0;)
                heap_down(q->run, q->nrun, i);
        for (size_t i = q->ndelay / 2; i-- > 0;)
                heap_down(q->delay, q->ndelay, i);
}

int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qentry *ret)
{
        /* Move every job that came due onto the runnable heap first. The
         * runnable heap only grows by what the delayed one loses, so this
         * cannot fail for want of memory once both were allocated... */
        while (q->ndelay && (int64_t)q->delay[0].key <= now_mono_ms) {
                struct qentry e = q->delay[0];
                int64_t run_at = now_wall_ms - (now_mono_ms - (int64_t)e.key);
                if (push_runnable(q, e.id >> 11, (int)(e.id & 2047) + RINGQ_PRIO_MIN, run_at) < 0)
                        break; /* ...but if it does, the job stays delayed and is retried. */
                heap_pop(q->delay, &q->ndelay);
        }
        if (!q->nrun)
                return 0;
        *ret = heap_pop(q->run, &q->nrun);
        return 1;
}

int qindex_unpop(struct qindex *q, const struct qentry *e)
{
        return heap_push(&q->run, &q->nrun, &q->caprun, *e);
}

int64_t qindex_next_due(const struct qindex *q)
{
        return q->ndelay ? (int64_t)q->delay[0].key : INT64_MAX;
}

size_t qindex_bytes(const struct qindex *q)
{
        return (q->caprun + q->capdelay) * sizeof(struct qentry);
}

void qindex_done(struct qindex *q)
{
        free(q->run);
        free(q->delay);
        *q = (struct qindex){ 0 };
}
