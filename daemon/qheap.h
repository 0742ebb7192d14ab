/* Binary min-heaps for the dispatch index (qindex.c): of 16-byte entries
 * ordered by (key, who), and of 32-bit indices whose order and whose
 * position records the caller supplies (buckets by their top entries,
 * users by their share). Header-only and static inline, so the compiler
 * folds the callbacks into the loops and no build file has to know. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"

#define QIHEAP_NONE UINT32_MAX /* the position of an index in no heap */

struct qentry {
        uint64_t key;
        uint64_t who;
};

struct qheap {          /* entries, least (key, who) on top */
        struct qentry *e;
        size_t n, cap;
};

struct qiheap {         /* indices, least by ops->less on top */
        uint32_t *v;
        size_t n, cap;
};

struct qiheap_ops {
        bool (*less)(const void *ctx, uint32_t a, uint32_t b);
        void (*moved)(void *ctx, uint32_t v, uint32_t pos); /* v now at pos, or QIHEAP_NONE */
};

static inline bool qentry_less(const struct qentry *a, const struct qentry *b)
{
        return a->key < b->key || (a->key == b->key && a->who < b->who);
}

static inline void qheap_up(struct qentry *h, size_t i)
{
        struct qentry e = h[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!qentry_less(&e, &h[p]))
                        break;
                h[i] = h[p];
                i = p;
        }
        h[i] = e;
}

static inline void qheap_down(struct qentry *h, size_t n, size_t i)
{
        struct qentry e = h[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= n)
                        break;
                if (c + 1 < n && qentry_less(&h[c + 1], &h[c]))
                        c++;
                if (!qentry_less(&h[c], &e))
                        break;
                h[i] = h[c];
                i = c;
        }
        h[i] = e;
}

/* Add e, in heap order or (bulk load) at the end; *room counts the entries
 * all heaps have room for. A heap starts with room for one entry, not
 * grow_array's eight: with many heaps holding a job or two each, the slack
 * would outweigh the jobs. Returns 0 or -ENOMEM. */
static inline int qheap_add(struct qheap *h, struct qentry e, bool order, size_t *room)
{
        size_t cap = h->cap;

        if (h->n == h->cap) {
                if (!h->cap) {
                        h->e = malloc(sizeof(*h->e));
                        if (!h->e)
                                return -ENOMEM;
                        h->cap = 1;
                } else if (grow_array((void **)&h->e, &h->cap, h->n + 1, sizeof(*h->e)) < 0)
                        return -ENOMEM;
                *room += h->cap - cap;
        }
        h->e[h->n++] = e;
        if (order)
                qheap_up(h->e, h->n - 1);
        return 0;
}

/* Take the top of a non-empty heap. A heap a quarter full gives half its
 * room back, so memory follows the load; what is left always holds one
 * more, so putting the top back needs no memory. */
static inline struct qentry qheap_take(struct qheap *h, size_t *room)
{
        struct qentry top = h->e[0];

        h->e[0] = h->e[--h->n];
        if (h->n)
                qheap_down(h->e, h->n, 0);
        if (h->cap >= 16 && h->n <= h->cap / 4) {
                struct qentry *e = realloc(h->e, h->cap / 2 * sizeof(*e));
                if (e) {
                        *room -= h->cap - h->cap / 2;
                        h->e = e;
                        h->cap /= 2;
                }
        }
        return top;
}

static inline void qheap_order(struct qheap *h)
{
        for (size_t i = h->n / 2; i-- > 0;)
                qheap_down(h->e, h->n, i);
}

static inline void qiheap_set(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, size_t i, uint32_t v)
{
        h->v[i] = v;
        ops->moved(ctx, v, (uint32_t)i);
}

static inline size_t qiheap_up(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, size_t i)
{
        uint32_t v = h->v[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!ops->less(ctx, v, h->v[p]))
                        break;
                qiheap_set(h, ops, ctx, i, h->v[p]);
                i = p;
        }
        qiheap_set(h, ops, ctx, i, v);
        return i;
}

static inline void qiheap_down(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, size_t i)
{
        uint32_t v = h->v[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && ops->less(ctx, h->v[c + 1], h->v[c]))
                        c++;
                if (!ops->less(ctx, h->v[c], v))
                        break;
                qiheap_set(h, ops, ctx, i, h->v[c]);
                i = c;
        }
        qiheap_set(h, ops, ctx, i, v);
}

/* Move the index at i, whose key changed either way. */
static inline void qiheap_fix(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, size_t i)
{
        if (qiheap_up(h, ops, ctx, i) == i)
                qiheap_down(h, ops, ctx, i);
}

/* Add v, in order or at the end; the caller reserved the room. */
static inline void qiheap_add(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, uint32_t v, bool order)
{
        qiheap_set(h, ops, ctx, h->n++, v);
        if (order)
                (void)qiheap_up(h, ops, ctx, h->n - 1);
}

static inline void qiheap_remove(struct qiheap *h, const struct qiheap_ops *ops, void *ctx, size_t i)
{
        uint32_t last = h->v[--h->n];

        ops->moved(ctx, h->v[i], QIHEAP_NONE);
        if (i == h->n)
                return;
        qiheap_set(h, ops, ctx, i, last);
        qiheap_fix(h, ops, ctx, i);
}

static inline void qiheap_order(struct qiheap *h, const struct qiheap_ops *ops, void *ctx)
{
        for (size_t i = h->n / 2; i-- > 0;)
                qiheap_down(h, ops, ctx, i);
}
