/* Buckets of runnable entries per (queue, user), a delayed heap, heaps of
 * buckets and of users, per-queue parked lists; qindex.h says why, and
 * qheap.h holds the heaps themselves. */
#include <errno.h>
#include <stdlib.h>

#include "qindex.h"
#include "ringq/protocol.h"
#include "util.h"

#define T_BITS 52
#define T_MASK ((UINT64_C(1) << T_BITS) - 1)
#define ID_SHIFT 20
#define TAG_SHIFT 11
#define TAG_MASK ((1u << QINDEX_TAG_BITS) - 1)
#define PRIO_MASK ((1u << TAG_SHIFT) - 1)
#define BUCKET_MASK ((UINT64_C(1) << QINDEX_BUCKET_BITS) - 1)
#define DUE_MAX ((INT64_C(1) << QINDEX_DUE_BITS) - 1)
#define MAX_BUCKETS ((size_t)1 << QINDEX_BUCKET_BITS)
#define MAX_QUEUES ((uint32_t)1 << QINDEX_QUEUE_BITS)
#define MAX_USERS ((size_t)1 << 20)
#define NOPOS QIHEAP_NONE

enum {
        B_EMPTY,        /* no runnable entry (delayed ones may name it) */
        B_HEAPED,       /* in its heap (the user's, or q->all) */
        B_PARKED,       /* on its queue's parked list: the queue is not eligible */
        B_FREE,         /* on the free list */
};

struct qbucket {
        struct qheap run;       /* runnable entries of (queue, user) */
        uint32_t queue, user;   /* queue number, user index */
        uint32_t delayed;       /* delayed entries naming this bucket */
        uint32_t pos;           /* place in its heap, or NOPOS */
        uint32_t next;          /* parked or free list; NOPOS ends it */
        uint8_t state;          /* B_* */
};

struct quser {
        struct qiheap bh;       /* fair: its B_HEAPED buckets */
        uint64_t served;        /* q->seq at its last start; 0: never */
        int64_t queued;
        uint32_t uid, running;
        uint32_t pos;           /* place in q->uheap, or NOPOS */
        uint32_t apos;          /* place in q->active, or NOPOS */
        uint32_t nbuckets;      /* buckets in use; its heap has room for all */
};

struct qqueue {
        int64_t queued;
        uint64_t entries;       /* runnable and delayed, in its buckets */
        uint32_t running, cap;  /* cap 0: none */
        uint32_t parked;        /* first parked bucket, or NOPOS */
        bool paused;
};

/* Buckets in a heap by their top entries, then by index. */
static bool bucket_less(const void *ctx, uint32_t a, uint32_t b)
{
        const struct qindex *q = ctx;
        const struct qentry *x = q->buckets[a].run.e, *y = q->buckets[b].run.e;

        if (x->key != y->key || x->who != y->who)
                return qentry_less(x, y);
        return a < b;
}

static void bucket_moved(void *ctx, uint32_t v, uint32_t pos)
{
        ((struct qindex *)ctx)->buckets[v].pos = pos;
}

/* Users: fewest running first, then the least recently served (never
 * served first), then the lowest uid. */
static bool user_less(const void *ctx, uint32_t a, uint32_t b)
{
        const struct qindex *q = ctx;
        const struct quser *x = &q->users[a], *y = &q->users[b];

        if (x->running != y->running)
                return x->running < y->running;
        if (x->served != y->served)
                return x->served < y->served;
        return x->uid < y->uid;
}

static void user_moved(void *ctx, uint32_t v, uint32_t pos)
{
        ((struct qindex *)ctx)->users[v].pos = pos;
}

static const struct qiheap_ops BUCKETS = { bucket_less, bucket_moved }, USERS = { user_less, user_moved };

static inline bool eligible(const struct qqueue *qq)
{
        return !qq->paused && (!qq->cap || qq->running < qq->cap);
}

static inline int64_t bucket_key(uint32_t queue, uint32_t uid)
{
        return ((int64_t)queue << 32 | uid) + 1;
}

static inline struct qiheap *bheap(struct qindex *q, const struct qbucket *b)
{
        return q->fair ? &q->users[b->user].bh : &q->all;
}

/* Keep a user in q->active exactly while it has queued or running jobs,
 * so qindex_foreach_user visits those and not every uid ever seen. */
static void touch(struct qindex *q, uint32_t ui)
{
        struct quser *u = &q->users[ui];
        bool on = u->queued > 0 || u->running > 0;

        if (on && u->apos == NOPOS) {
                u->apos = (uint32_t)q->nactive;
                q->active[q->nactive++] = ui;
        } else if (!on && u->apos != NOPOS) {
                uint32_t last = q->active[--q->nactive];
                q->active[u->apos] = last;
                q->users[last].apos = u->apos;
                u->apos = NOPOS;
        }
}

static struct quser *user_find(const struct qindex *q, uint32_t uid)
{
        uintptr_t v = (uintptr_t)idmap_get(&q->byuid, (int64_t)uid + 1);

        return v ? &q->users[v - 1] : NULL;
}

/* The index of uid's record, made on first use. Returns 0, -ENOMEM or
 * -ENOSPC. */
static int user_get(struct qindex *q, uint32_t uid, uint32_t *ret)
{
        struct quser *u = user_find(q, uid);
        size_t n = q->nusers;

        if (u) {
                *ret = (uint32_t)(u - q->users);
                return 0;
        }
        if (n == MAX_USERS)
                return -ENOSPC;
        /* Room everywhere before anything changes, so a failure leaves no
         * half-made user and joining the user heap or the active set later
         * never allocates. */
        if (grow_array((void **)&q->users, &q->capusers, n + 1, sizeof(*q->users)) < 0 ||
            grow_array((void **)&q->uheap.v, &q->uheap.cap, n + 1, sizeof(*q->uheap.v)) < 0 ||
            grow_array((void **)&q->active, &q->capactive, n + 1, sizeof(*q->active)) < 0 ||
            idmap_put(&q->byuid, (int64_t)uid + 1, (void *)(uintptr_t)(n + 1)) < 0)
                return -ENOMEM;
        q->users[n] = (struct quser){ .uid = uid, .pos = NOPOS, .apos = NOPOS };
        q->nusers++;
        *ret = (uint32_t)n;
        return 0;
}

static struct qqueue *queue_find(const struct qindex *q, uint32_t queue)
{
        return queue < q->nqueues ? &q->queues[queue] : NULL;
}

/* queue's record, made (with every lower number) on first use. Returns
 * 0, -ENOMEM or -ENOSPC. */
static int queue_get(struct qindex *q, uint32_t queue)
{
        if (queue >= MAX_QUEUES)
                return -ENOSPC;
        if (queue < q->nqueues)
                return 0;
        if (grow_array((void **)&q->queues, &q->capqueues, (size_t)queue + 1, sizeof(*q->queues)) < 0)
                return -ENOMEM;
        while (q->nqueues <= queue)
                q->queues[q->nqueues++] = (struct qqueue){ .parked = NOPOS };
        return 0;
}

/* The index of the bucket of (queue, uid), made on first use, with room
 * in the heap it will join. Returns 0, -ENOMEM or -ENOSPC. */
static int bucket_get(struct qindex *q, uint32_t uid, uint32_t queue, uint32_t *ret)
{
        int64_t k = bucket_key(queue, uid);
        uintptr_t v = (uintptr_t)idmap_get(&q->bybucket, k);
        uint32_t ui = 0, bi;
        struct qiheap *h;
        size_t cap;
        int r;

        if (v) {
                *ret = (uint32_t)(v - 1);
                return 0;
        }
        r = queue_get(q, queue);
        if (r >= 0)
                r = user_get(q, uid, &ui);
        if (r < 0)
                return r;
        if (q->freeb == NOPOS && q->nbuckets == MAX_BUCKETS)
                return -ENOSPC;
        h = q->fair ? &q->users[ui].bh : &q->all;
        cap = h->cap;
        if ((q->freeb == NOPOS &&
             grow_array((void **)&q->buckets, &q->capbuckets, q->nbuckets + 1, sizeof(*q->buckets)) < 0) ||
            grow_array((void **)&h->v, &h->cap, (q->fair ? q->users[ui].nbuckets : q->nlive) + 1,
                       sizeof(*h->v)) < 0)
                return -ENOMEM;
        if (q->fair)
                q->bhcap += h->cap - cap;
        bi = q->freeb != NOPOS ? q->freeb : (uint32_t)q->nbuckets;
        if (idmap_put(&q->bybucket, k, (void *)(uintptr_t)(bi + 1)) < 0)
                return -ENOMEM;
        if (bi == q->freeb)
                q->freeb = q->buckets[bi].next;
        else
                q->nbuckets++;
        q->buckets[bi] = (struct qbucket){ .queue = queue, .user = ui, .pos = NOPOS, .next = NOPOS };
        q->users[ui].nbuckets++;
        q->nlive++;
        *ret = bi;
        return 0;
}

/* Free bucket bi if no entry refers to it; the last one out frees the
 * array. */
static void bucket_gc(struct qindex *q, uint32_t bi)
{
        struct qbucket *b = &q->buckets[bi];
        struct quser *u = &q->users[b->user];

        if (b->state != B_EMPTY || b->delayed)
                return;
        (void)idmap_remove(&q->bybucket, bucket_key(b->queue, u->uid));
        q->ecap -= b->run.cap;
        free(b->run.e);
        if (--u->nbuckets == 0 && u->bh.cap) {
                q->bhcap -= u->bh.cap;
                free(u->bh.v);
                u->bh = (struct qiheap){ 0 };
        }
        if (q->spare == bi)
                q->spare = NOPOS;
        *b = (struct qbucket){ .state = B_FREE, .pos = NOPOS, .next = q->freeb };
        q->freeb = bi;
        if (--q->nlive == 0) {
                free(q->buckets);
                free(q->all.v);
                q->buckets = NULL;
                q->all = (struct qiheap){ 0 };
                q->nbuckets = q->capbuckets = 0;
                q->freeb = NOPOS;
        }
}

/* Free the bucket the last pop emptied, unless it holds entries again.
 * Pop keeps it so that an unpop right after needs no memory; every other
 * change lets it go, so at most one empty bucket is ever kept. */
static void settle(struct qindex *q)
{
        if (q->spare != NOPOS)
                bucket_gc(q, q->spare);
        q->spare = NOPOS;
}

/* Put bucket bi, which has runnable entries and sits nowhere, in its heap
 * if its queue is eligible, else on the queue's parked list. */
static void bucket_place(struct qindex *q, uint32_t bi, bool order)
{
        struct qbucket *b = &q->buckets[bi];
        struct qqueue *qq = &q->queues[b->queue];
        struct quser *u = &q->users[b->user];

        if (!eligible(qq)) {
                b->state = B_PARKED;
                b->next = qq->parked;
                qq->parked = bi;
                return;
        }
        b->state = B_HEAPED;
        qiheap_add(bheap(q, b), &BUCKETS, q, bi, order);
        if (q->fair && u->pos == NOPOS)
                qiheap_add(&q->uheap, &USERS, q, b->user, order);
}

/* Add a runnable entry to bucket bi. Returns 0 or -ENOMEM. */
static int bucket_add(struct qindex *q, uint32_t bi, struct qentry e, bool order)
{
        struct qbucket *b = &q->buckets[bi];
        int r = qheap_add(&b->run, e, order, &q->ecap);

        if (r < 0)
                return r;
        q->nrun++;
        if (b->state == B_EMPTY)
                bucket_place(q, bi, order);
        else if (b->state == B_HEAPED && order)
                (void)qiheap_up(bheap(q, b), &BUCKETS, q, b->pos); /* its top may be e now */
        return 0;
}

/* Put every parked bucket of an eligible queue back in its heap. */
static void unpark(struct qindex *q, struct qqueue *qq)
{
        uint32_t bi = qq->parked;

        qq->parked = NOPOS;
        while (bi != NOPOS) {
                uint32_t next = q->buckets[bi].next;
                q->buckets[bi].next = NOPOS;
                bucket_place(q, bi, true);
                bi = next;
        }
}

static inline uint64_t runnable_key(int prio, int64_t run_at_ms)
{
        return (uint64_t)(RINGQ_PRIO_MAX - prio) << T_BITS | (uint64_t)CLAMP(run_at_ms, 0, (int64_t)T_MASK);
}

static inline int who_prio(uint64_t who)
{
        return (int)(who & PRIO_MASK) + RINGQ_PRIO_MIN;
}

static int add(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, unsigned tag,
               int64_t run_at_ms, int64_t now_wall_ms, int64_t now_mono_ms, bool order)
{
        uint64_t who = (uint64_t)id << ID_SHIFT | (uint64_t)(tag & TAG_MASK) << TAG_SHIFT |
                       (uint64_t)(prio - RINGQ_PRIO_MIN);
        int64_t due = 0;
        uint32_t bi;
        int r;

        if (id < 0 || id >= INT64_C(1) << QINDEX_ID_BITS)
                return -EOVERFLOW;
        if (prio < RINGQ_PRIO_MIN || prio > RINGQ_PRIO_MAX)
                return -EINVAL;
        if (queue >= MAX_QUEUES)
                return -ENOSPC;
        if (run_at_ms > now_wall_ms) {
                /* A run_at further ahead than the longest duration a
                 * client may ask for waits that long. */
                due = MAX(now_mono_ms, 0) + MIN(run_at_ms - now_wall_ms, RINGQ_DURATION_MAX_MS);
                if (due > DUE_MAX)
                        return -EOVERFLOW;
        }
        settle(q);
        r = bucket_get(q, uid, queue, &bi);
        if (r < 0)
                return r;
        if (run_at_ms <= now_wall_ms)
                r = bucket_add(q, bi, (struct qentry){ runnable_key(prio, run_at_ms), who }, order);
        else {
                r = qheap_add(&q->delay, (struct qentry){ (uint64_t)due << QINDEX_BUCKET_BITS | bi, who }, order,
                              &q->ecap);
                if (r >= 0)
                        q->buckets[bi].delayed++;
        }
        if (r < 0) {
                bucket_gc(q, bi); /* if just made */
                return r;
        }
        q->queues[queue].entries++;
        return 0;
}

int qindex_init(struct qindex *q, bool fair_users)
{
        *q = (struct qindex){ .fair = fair_users, .freeb = NOPOS, .spare = NOPOS };
        return 0;
}

int qindex_push(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, unsigned tag,
                int64_t run_at_ms, int64_t now_wall_ms, int64_t now_mono_ms)
{
        return add(q, id, uid, queue, prio, tag, run_at_ms, now_wall_ms, now_mono_ms, true);
}

int qindex_append(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, unsigned tag,
                  int64_t run_at_ms, int64_t now_wall_ms, int64_t now_mono_ms)
{
        return add(q, id, uid, queue, prio, tag, run_at_ms, now_wall_ms, now_mono_ms, false);
}

void qindex_heapify(struct qindex *q)
{
        qheap_order(&q->delay);
        for (size_t i = 0; i < q->nbuckets; i++)
                if (q->buckets[i].state != B_FREE)
                        qheap_order(&q->buckets[i].run);
        qiheap_order(&q->all, &BUCKETS, q);
        for (size_t i = 0; q->fair && i < q->nusers; i++)
                qiheap_order(&q->users[i].bh, &BUCKETS, q);
        qiheap_order(&q->uheap, &USERS, q);
}

/* Move every entry that came due into its bucket. */
static void move_due(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms)
{
        while (q->delay.n && (int64_t)(q->delay.e[0].key >> QINDEX_BUCKET_BITS) <= now_mono_ms) {
                struct qentry d = q->delay.e[0];
                int64_t due = (int64_t)(d.key >> QINDEX_BUCKET_BITS);
                uint32_t bi = (uint32_t)(d.key & BUCKET_MASK);
                struct qentry e = { runnable_key(who_prio(d.who), now_wall_ms - (now_mono_ms - due)), d.who };

                if (bucket_add(q, bi, e, true) < 0)
                        break; /* out of memory: it stays delayed, retried at the next pop */
                (void)qheap_take(&q->delay, &q->ecap);
                q->buckets[bi].delayed--;
        }
}

int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qpick *ret)
{
        settle(q);
        move_due(q, now_wall_ms, now_mono_ms);
        for (;;) {
                struct qiheap *h = &q->all;
                struct qbucket *b;
                struct qqueue *qq;
                struct qentry e;
                uint32_t bi;

                if (q->fair) {
                        if (!q->uheap.n)
                                return 0;
                        h = &q->users[q->uheap.v[0]].bh;
                } else if (!h->n)
                        return 0;
                bi = h->v[0];
                b = &q->buckets[bi];
                qq = &q->queues[b->queue];
                if (!eligible(qq)) {
                        /* Paused or at its cap since it joined: park it. */
                        qiheap_remove(h, &BUCKETS, q, 0);
                        if (q->fair && !h->n)
                                qiheap_remove(&q->uheap, &USERS, q, 0);
                        b->state = B_PARKED;
                        b->next = qq->parked;
                        qq->parked = bi;
                        continue;
                }
                /* Taking an entry leaves its user's key as it was: only
                 * run_begin moves the user, once the job has started. */
                e = qheap_take(&b->run, &q->ecap);
                q->nrun--;
                qq->entries--;
                if (b->run.n)
                        qiheap_down(h, &BUCKETS, q, 0);
                else {
                        qiheap_remove(h, &BUCKETS, q, 0);
                        b->state = B_EMPTY;
                        if (q->fair && !h->n)
                                qiheap_remove(&q->uheap, &USERS, q, 0);
                        if (!b->delayed)
                                q->spare = bi;
                }
                *ret = (struct qpick){
                        .id = (int64_t)(e.who >> ID_SHIFT),
                        .uid = q->users[b->user].uid,
                        .queue = b->queue,
                        .prio = who_prio(e.who),
                        .tag = (unsigned)(e.who >> TAG_SHIFT) & TAG_MASK,
                        .e = e,
                };
                return 1;
        }
}

int qindex_unpop(struct qindex *q, const struct qpick *p)
{
        uint32_t bi;
        int r;

        if ((int64_t)(p->e.who >> ID_SHIFT) != p->id || who_prio(p->e.who) != p->prio ||
            ((p->e.who >> TAG_SHIFT) & TAG_MASK) != p->tag ||
            p->e.key >> T_BITS != (uint64_t)(RINGQ_PRIO_MAX - p->prio) || p->queue >= MAX_QUEUES)
                return -EINVAL;
        /* The entry and its user's key are what they were before the pop,
         * and so is the bucket pop emptied (q->spare): nothing to allocate. */
        r = bucket_get(q, p->uid, p->queue, &bi);
        if (r < 0)
                return r;
        r = bucket_add(q, bi, p->e, true);
        if (r < 0) {
                bucket_gc(q, bi);
                return r;
        }
        q->queues[p->queue].entries++;
        return 0;
}

int qindex_run_begin(struct qindex *q, uint32_t uid, uint32_t queue)
{
        uint32_t ui = 0;
        int r;

        settle(q);
        r = queue_get(q, queue);
        if (r >= 0)
                r = user_get(q, uid, &ui);
        if (r < 0)
                return r;
        q->queues[queue].running++; /* at its cap now: its buckets park when met */
        q->users[ui].running++;
        q->users[ui].served = ++q->seq;
        touch(q, ui);
        if (q->fair && q->users[ui].pos != NOPOS)
                qiheap_fix(&q->uheap, &USERS, q, q->users[ui].pos);
        return 0;
}

void qindex_run_end(struct qindex *q, uint32_t uid, uint32_t queue)
{
        struct quser *u = user_find(q, uid);
        struct qqueue *qq = queue_find(q, queue);

        settle(q);
        if (u && u->running) {
                u->running--;
                touch(q, (uint32_t)(u - q->users));
                if (q->fair && u->pos != NOPOS)
                        qiheap_fix(&q->uheap, &USERS, q, u->pos);
        }
        if (qq && qq->running) {
                qq->running--;
                if (eligible(qq))
                        unpark(q, qq);
        }
}

int qindex_queued_add(struct qindex *q, uint32_t uid, uint32_t queue, int64_t delta)
{
        struct quser *u = user_find(q, uid);
        struct qqueue *qq = queue_find(q, queue);
        uint32_t ui = 0;
        int r;

        settle(q);
        if (delta > 0) {
                r = queue_get(q, queue);
                if (r >= 0)
                        r = user_get(q, uid, &ui);
                if (r < 0)
                        return r;
                u = &q->users[ui];
                qq = &q->queues[queue];
        }
        if (u) {
                int64_t n = MAX(u->queued + delta, 0);
                q->queued += n - u->queued;
                u->queued = n;
                touch(q, (uint32_t)(u - q->users));
        }
        if (qq)
                qq->queued = MAX(qq->queued + delta, 0);
        return 0;
}

int qindex_queue_set(struct qindex *q, uint32_t queue, uint32_t cap, bool paused)
{
        struct qqueue *qq;
        int r;

        settle(q);
        if (!queue_find(q, queue) && !cap && !paused)
                return queue < MAX_QUEUES ? 0 : -ENOSPC; /* the defaults */
        r = queue_get(q, queue);
        if (r < 0)
                return r;
        qq = &q->queues[queue];
        qq->cap = cap;
        qq->paused = paused;
        if (eligible(qq))
                unpark(q, qq);
        return 0;
}

bool qindex_queue_idle(const struct qindex *q, uint32_t queue)
{
        const struct qqueue *qq = queue_find(q, queue);

        return !qq || (!qq->entries && !qq->queued && !qq->running && !qq->cap && !qq->paused);
}

bool qindex_queue_eligible(const struct qindex *q, uint32_t queue)
{
        const struct qqueue *qq = queue_find(q, queue);

        return !qq || eligible(qq);
}

int64_t qindex_queued(const struct qindex *q)
{
        return q->queued;
}

int64_t qindex_user_queued(const struct qindex *q, uint32_t uid)
{
        const struct quser *u = user_find(q, uid);

        return u ? u->queued : 0;
}

uint32_t qindex_user_running(const struct qindex *q, uint32_t uid)
{
        const struct quser *u = user_find(q, uid);

        return u ? u->running : 0;
}

int64_t qindex_queue_queued(const struct qindex *q, uint32_t queue)
{
        const struct qqueue *qq = queue_find(q, queue);

        return qq ? qq->queued : 0;
}

uint32_t qindex_queue_running(const struct qindex *q, uint32_t queue)
{
        const struct qqueue *qq = queue_find(q, queue);

        return qq ? qq->running : 0;
}

void qindex_foreach_user(const struct qindex *q,
                         void (*fn)(void *ud, uint32_t uid, int64_t queued, uint32_t running), void *ud)
{
        for (size_t i = 0; i < q->nactive; i++) {
                const struct quser *u = &q->users[q->active[i]];
                fn(ud, u->uid, u->queued, u->running);
        }
}

void qindex_foreach_queue(const struct qindex *q,
                          void (*fn)(void *ud, uint32_t queue, int64_t queued, uint32_t running), void *ud)
{
        /* Queue numbers are small and reused: this walks the numbers in
         * use, not jobs. */
        for (size_t i = 0; i < q->nqueues; i++)
                if (q->queues[i].queued > 0 || q->queues[i].running > 0)
                        fn(ud, (uint32_t)i, q->queues[i].queued, q->queues[i].running);
}

int64_t qindex_next_due(const struct qindex *q)
{
        return q->delay.n ? (int64_t)(q->delay.e[0].key >> QINDEX_BUCKET_BITS) : INT64_MAX;
}

size_t qindex_entries(const struct qindex *q)
{
        return q->nrun + q->delay.n;
}

size_t qindex_bytes(const struct qindex *q)
{
        return q->ecap * sizeof(struct qentry) + q->capbuckets * sizeof(struct qbucket) +
               q->capusers * sizeof(struct quser) + q->capqueues * sizeof(struct qqueue) +
               (q->bhcap + q->all.cap + q->uheap.cap + q->capactive) * sizeof(uint32_t) +
               (q->byuid.cap + q->bybucket.cap) * sizeof(struct idmap_slot);
}

void qindex_done(struct qindex *q)
{
        for (size_t i = 0; i < q->nbuckets; i++)
                free(q->buckets[i].run.e);
        for (size_t i = 0; i < q->nusers; i++)
                free(q->users[i].bh.v);
        free(q->buckets);
        free(q->all.v);
        free(q->users);
        free(q->uheap.v);
        free(q->active);
        free(q->queues);
        free(q->delay.e);
        idmap_done(&q->byuid);
        idmap_done(&q->bybucket);
        *q = (struct qindex){ 0 };
}
