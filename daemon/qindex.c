/* Binary min-heaps of packed 16-byte entries (per user, or one shared,
 * and one delayed), and a heap of users; qindex.h says why. */
#include <errno.h>
#include <stdlib.h>

#include "qindex.h"
#include "ringq/protocol.h"
#include "util.h"

#define T_MASK ((UINT64_C(1) << 52) - 1)
#define USER_MASK ((UINT64_C(1) << QINDEX_USER_BITS) - 1)
#define MAX_USERS ((size_t)1 << QINDEX_USER_BITS)
#define PRIO_BITS 11
#define NOPOS UINT32_MAX

struct quser {
        struct qheap run;       /* fair: this user's runnable entries */
        uint64_t served;        /* q->seq at its last start; 0: never */
        int64_t queued;
        uint32_t uid, running;
        uint32_t hpos;          /* place in q->uheap, or NOPOS */
        uint32_t apos;          /* place in q->active, or NOPOS */
};

static inline bool less(const struct qentry *a, const struct qentry *b)
{
        return a->key < b->key || (a->key == b->key && a->who < b->who);
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

/* Add e, in heap order or (bulk load) at the end. A heap starts with room
 * for one entry, not grow_array's eight: with many users holding a job or
 * two each, the slack would outweigh the jobs. */
static int heap_add(struct qheap *h, struct qentry e, bool order)
{
        if (h->n == h->cap) {
                if (!h->cap) {
                        h->e = malloc(sizeof(*h->e));
                        if (!h->e)
                                return -ENOMEM;
                        h->cap = 1;
                } else if (grow_array((void **)&h->e, &h->cap, h->n + 1, sizeof(*h->e)) < 0)
                        return -ENOMEM;
        }
        h->e[h->n++] = e;
        if (order)
                heap_up(h->e, h->n - 1);
        return 0;
}

static struct qentry heap_take(struct qheap *h)
{
        struct qentry top = h->e[0];

        h->e[0] = h->e[--h->n];
        if (h->n)
                heap_down(h->e, h->n, 0);
        return top;
}

static void heap_order(struct qheap *h)
{
        for (size_t i = h->n / 2; i-- > 0;)
                heap_down(h->e, h->n, i);
}

/* The user heap: fewest running first, then the least recently served
 * (never served first), then the lowest uid. */
static bool uless(const struct qindex *q, uint32_t a, uint32_t b)
{
        const struct quser *x = &q->users[a], *y = &q->users[b];

        if (x->running != y->running)
                return x->running < y->running;
        if (x->served != y->served)
                return x->served < y->served;
        return x->uid < y->uid;
}

static void uheap_set(struct qindex *q, size_t i, uint32_t ui)
{
        q->uheap[i] = ui;
        q->users[ui].hpos = (uint32_t)i;
}

static size_t uheap_up(struct qindex *q, size_t i)
{
        uint32_t ui = q->uheap[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!uless(q, ui, q->uheap[p]))
                        break;
                uheap_set(q, i, q->uheap[p]);
                i = p;
        }
        uheap_set(q, i, ui);
        return i;
}

static void uheap_down(struct qindex *q, size_t i)
{
        uint32_t ui = q->uheap[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= q->nuheap)
                        break;
                if (c + 1 < q->nuheap && uless(q, q->uheap[c + 1], q->uheap[c]))
                        c++;
                if (!uless(q, q->uheap[c], ui))
                        break;
                uheap_set(q, i, q->uheap[c]);
                i = c;
        }
        uheap_set(q, i, ui);
}

/* Move a user whose running count or served sequence changed. */
static void uheap_fix(struct qindex *q, uint32_t ui)
{
        size_t i = q->users[ui].hpos;

        if (i == NOPOS)
                return;
        if (uheap_up(q, i) == i)
                uheap_down(q, i);
}

static void uheap_remove(struct qindex *q, size_t i)
{
        uint32_t last = q->uheap[--q->nuheap];

        q->users[q->uheap[i]].hpos = NOPOS;
        if (i == q->nuheap)
                return;
        uheap_set(q, i, last);
        uheap_fix(q, last);
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
            grow_array((void **)&q->uheap, &q->capuheap, n + 1, sizeof(*q->uheap)) < 0 ||
            grow_array((void **)&q->active, &q->capactive, n + 1, sizeof(*q->active)) < 0 ||
            idmap_put(&q->byuid, (int64_t)uid + 1, (void *)(uintptr_t)(n + 1)) < 0)
                return -ENOMEM;
        q->users[n] = (struct quser){ .uid = uid, .hpos = NOPOS, .apos = NOPOS };
        q->nusers++;
        *ret = (uint32_t)n;
        return 0;
}

static inline int64_t entry_id(const struct qentry *e)
{
        return (int64_t)(e->who >> QINDEX_USER_BITS);
}

static inline uint32_t entry_user(const struct qentry *e)
{
        return (uint32_t)(e->who & USER_MASK);
}

static struct qentry runnable_entry(int64_t id, uint32_t ui, int prio, int64_t run_at_ms)
{
        return (struct qentry){
                .key = (uint64_t)(RINGQ_PRIO_MAX - prio) << 52 | ((uint64_t)MAX(run_at_ms, 0) & T_MASK),
                .who = (uint64_t)id << QINDEX_USER_BITS | ui,
        };
}

/* Monotonic ms fit in 53 bits for 285000 years of uptime. */
static struct qentry delayed_entry(int64_t id, uint32_t ui, int prio, int64_t run_at_ms,
                                   int64_t now_wall_ms, int64_t now_mono_ms)
{
        int64_t due = now_mono_ms + MIN(run_at_ms - now_wall_ms, RINGQ_DURATION_MAX_MS);

        return (struct qentry){
                .key = (uint64_t)MAX(due, 0) << PRIO_BITS | (uint64_t)(prio - RINGQ_PRIO_MIN),
                .who = (uint64_t)id << QINDEX_USER_BITS | ui,
        };
}

static int push_runnable(struct qindex *q, uint32_t ui, struct qentry e, bool order)
{
        struct quser *u = &q->users[ui];
        struct qheap *h = q->fair ? &u->run : &q->shared;
        size_t cap = h->cap;
        int r = heap_add(h, e, order);

        if (q->fair)
                q->usercap += h->cap - cap;
        if (r < 0)
                return r;
        q->nrun++;
        if (q->fair && u->hpos == NOPOS) {
                uheap_set(q, q->nuheap++, ui);
                if (order)
                        uheap_up(q, u->hpos);
        }
        return 0;
}

static int add(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at_ms,
               int64_t now_wall_ms, int64_t now_mono_ms, bool order)
{
        uint32_t ui;
        int r;

        if (id < 0 || id >= INT64_C(1) << QINDEX_ID_BITS)
                return -EOVERFLOW;
        if (prio < RINGQ_PRIO_MIN || prio > RINGQ_PRIO_MAX)
                return -EINVAL;
        r = user_get(q, uid, &ui);
        if (r < 0)
                return r;
        if (run_at_ms <= now_wall_ms)
                r = push_runnable(q, ui, runnable_entry(id, ui, prio, run_at_ms), order);
        else
                r = heap_add(&q->delay, delayed_entry(id, ui, prio, run_at_ms, now_wall_ms, now_mono_ms),
                             order);
        if (r < 0)
                return r;
        q->users[ui].queued++;
        q->queued++;
        touch(q, ui);
        return 0;
}

int qindex_init(struct qindex *q, bool fair_users)
{
        *q = (struct qindex){ .fair = fair_users };
        return 0;
}

int qindex_push(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at_ms,
                int64_t now_wall_ms, int64_t now_mono_ms)
{
        return add(q, id, uid, prio, run_at_ms, now_wall_ms, now_mono_ms, true);
}

int qindex_append(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at_ms,
                  int64_t now_wall_ms, int64_t now_mono_ms)
{
        return add(q, id, uid, prio, run_at_ms, now_wall_ms, now_mono_ms, false);
}

void qindex_heapify(struct qindex *q)
{
        heap_order(&q->shared);
        heap_order(&q->delay);
        for (size_t i = 0; i < q->nuheap; i++)
                heap_order(&q->users[q->uheap[i]].run);
        for (size_t i = q->nuheap / 2; i-- > 0;)
                uheap_down(q, i);
}

/* A canceled entry is dropped where it is met, and its mark with it. */
static bool dropped(struct qindex *q, const struct qentry *e)
{
        int64_t id = entry_id(e);

        return q->canceled.n && id > 0 && idmap_remove(&q->canceled, id);
}

/* Move every job that came due onto its runnable heap. */
static void move_due(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms)
{
        while (q->delay.n && (int64_t)(q->delay.e[0].key >> PRIO_BITS) <= now_mono_ms) {
                struct qentry d = q->delay.e[0];
                int64_t due = (int64_t)(d.key >> PRIO_BITS);
                int prio = (int)(d.key & ((1u << PRIO_BITS) - 1)) + RINGQ_PRIO_MIN;
                struct qentry e = runnable_entry(entry_id(&d), entry_user(&d), prio,
                                                 now_wall_ms - (now_mono_ms - due));

                if (!dropped(q, &d) && push_runnable(q, entry_user(&d), e, true) < 0)
                        break; /* out of memory: it stays delayed, retried at the next pop */
                (void)heap_take(&q->delay);
        }
}

int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qpick *ret)
{
        move_due(q, now_wall_ms, now_mono_ms);
        for (;;) {
                struct qheap *h = &q->shared;
                struct qentry e;

                if (q->fair) {
                        if (!q->nuheap)
                                return 0;
                        h = &q->users[q->uheap[0]].run;
                } else if (!h->n)
                        return 0;
                /* Taking an entry leaves its user's key as it was: only
                 * run_begin moves the user, once the job has started. */
                e = heap_take(h);
                q->nrun--;
                if (q->fair && !h->n)
                        uheap_remove(q, 0);
                /* A user holding only canceled entries is emptied here and
                 * the next user served, so it cannot stall dispatch. */
                if (dropped(q, &e))
                        continue;
                *ret = (struct qpick){
                        .id = entry_id(&e),
                        .uid = q->users[entry_user(&e)].uid,
                        .prio = RINGQ_PRIO_MAX - (int)(e.key >> 52),
                        .e = e,
                };
                return 1;
        }
}

int qindex_unpop(struct qindex *q, const struct qpick *p)
{
        if (entry_user(&p->e) >= q->nusers)
                return -EINVAL;
        /* The entry and its user's key are what they were before the pop,
         * so the next pop returns it again. */
        return push_runnable(q, entry_user(&p->e), p->e, true);
}

void qindex_run_begin(struct qindex *q, uint32_t uid)
{
        uint32_t ui;

        /* Without a record (out of memory) the start goes uncounted: the
         * share is a little off, nothing else. */
        if (user_get(q, uid, &ui) < 0)
                return;
        q->users[ui].running++;
        q->users[ui].served = ++q->seq;
        touch(q, ui);
        uheap_fix(q, ui);
}

void qindex_run_end(struct qindex *q, uint32_t uid)
{
        struct quser *u = user_find(q, uid);
        uint32_t ui = u ? (uint32_t)(u - q->users) : 0;

        if (!u || !u->running)
                return;
        u->running--;
        touch(q, ui);
        uheap_fix(q, ui);
}

void qindex_dequeue(struct qindex *q, uint32_t uid)
{
        struct quser *u = user_find(q, uid);

        if (!u)
                return;
        if (u->queued > 0) {
                u->queued--;
                q->queued--;
                touch(q, (uint32_t)(u - q->users));
        }
        /* A user's emptied heap gives its memory back, so users who each
         * once queued a lot do not each keep their peak. Not in pop: an
         * unpop that follows must not need memory. */
        if (!u->run.n && u->run.cap) {
                q->usercap -= u->run.cap;
                free(u->run.e);
                u->run = (struct qheap){ 0 };
        }
}

int qindex_cancel(struct qindex *q, int64_t id)
{
        if (id <= 0)
                return -EINVAL;
        return idmap_put(&q->canceled, id, (void *)1);
}

void qindex_uncancel(struct qindex *q, int64_t id)
{
        if (id > 0)
                (void)idmap_remove(&q->canceled, id);
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

void qindex_foreach_user(const struct qindex *q,
                         void (*fn)(void *ud, uint32_t uid, int64_t queued, uint32_t running), void *ud)
{
        for (size_t i = 0; i < q->nactive; i++) {
                const struct quser *u = &q->users[q->active[i]];
                fn(ud, u->uid, u->queued, u->running);
        }
}

int64_t qindex_next_due(const struct qindex *q)
{
        return q->delay.n ? (int64_t)(q->delay.e[0].key >> PRIO_BITS) : INT64_MAX;
}

size_t qindex_entries(const struct qindex *q)
{
        return q->nrun + q->delay.n;
}

size_t qindex_bytes(const struct qindex *q)
{
        return (q->shared.cap + q->delay.cap + q->usercap) * sizeof(struct qentry) +
               q->capusers * sizeof(struct quser) +
               (q->capuheap + q->capactive) * sizeof(uint32_t) +
               (q->byuid.cap + q->canceled.cap) * sizeof(struct idmap_slot);
}

void qindex_done(struct qindex *q)
{
        for (size_t i = 0; i < q->nusers; i++)
                free(q->users[i].run.e);
        free(q->users);
        free(q->uheap);
        free(q->active);
        free(q->shared.e);
        free(q->delay.e);
        idmap_done(&q->byuid);
        idmap_done(&q->canceled);
        *q = (struct qindex){ 0 };
}
