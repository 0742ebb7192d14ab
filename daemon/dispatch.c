/* Dispatch (see dispatch.h): the queued set, the named queues, the jobs
 * that wait for others, admission, and the choice of the next job. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "ringq/protocol.h"
#include "worker.h"

#define RETRY_SPAWN_MS 1000    /* after EAGAIN/EMFILE/ENOMEM at spawn */
#define TAG_MASK 511u          /* the bits of queued_seq an entry carries */
#define DEFAULT_QUEUE "default"

struct dqueue {
        char *name;                   /* NULL: the number is free */
        uint64_t workers, high_water; /* its own settings; 0: none */
        bool configured, paused;
        bool accepting;               /* its own marks' hysteresis */
        int64_t reserved;             /* submits in flight */
};

/* A queued job that waits for others: what it needs to enter the index
 * once they have all succeeded. */
struct waiting {
        int64_t id, run_at, queued_seq;
        uint32_t uid, queue;
        int prio;
        unsigned nunmet;
        int64_t unmet[];
};

/* The jobs waiting for one job. */
struct idlist {
        unsigned n, cap;
        int64_t ids[];
};

static struct dispatch *D(struct server *s)
{
        return &s->dp;
}

/* ---- named queues ---- */

static uint64_t hash_name(const char *name)
{
        uint64_t h = 1469598103934665603ULL;

        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
                h = (h ^ *p) * 1099511628211ULL;
        return h;
}

/* The slot of name in byname: where it is, or the empty one that ends
 * its probe chain. */
static size_t name_slot(struct dispatch *d, const char *name)
{
        size_t mask = d->namecap - 1, i = hash_name(name) & mask;

        for (;; i = (i + 1) & mask) {
                uint32_t v = d->byname[i];
                if (v == 0 || (v != UINT32_MAX && strcmp(d->queues[v - 1].name, name) == 0))
                        return i;
        }
}

static struct dqueue *dq_find(struct dispatch *d, const char *name, uint32_t *ret)
{
        size_t i;

        if (!d->namecap)
                return NULL;
        i = name_slot(d, name);
        if (!d->byname[i])
                return NULL;
        if (ret)
                *ret = d->byname[i] - 1;
        return &d->queues[d->byname[i] - 1];
}

static int names_grow(struct dispatch *d)
{
        size_t cap = d->namecap ? d->namecap * 2 : 64, old = d->namecap;
        uint32_t *was = d->byname;

        /* Deletions leave tombstones: rebuild at the same size when they
         * are what fills the table. */
        if (old && (d->nqueues - d->nfreeq) * 4 < old)
                cap = old;
        d->byname = calloc(cap, sizeof(*d->byname));
        if (!d->byname) {
                d->byname = was;
                return -ENOMEM;
        }
        d->namecap = cap;
        d->nameused = 0;
        for (size_t i = 0; i < old; i++)
                if (was[i] && was[i] != UINT32_MAX) {
                        d->byname[name_slot(d, d->queues[was[i] - 1].name)] = was[i];
                        d->nameused++;
                }
        free(was);
        return 0;
}

int dispatch_queue_number(struct server *s, const char *name, uint32_t *ret)
{
        struct dispatch *d = D(s);
        uint32_t n;
        char *copy;

        if (dq_find(d, name, ret))
                return 0;
        if ((d->nameused + 1) * 2 > d->namecap && names_grow(d) < 0)
                return -ENOMEM;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        if (d->nfreeq)
                n = d->freeq[--d->nfreeq];
        else {
                if (d->nqueues >= (1u << 20) ||
                    grow_array((void **)&d->queues, &d->capqueues, d->nqueues + 1, sizeof(*d->queues)) < 0) {
                        free(copy);
                        return d->nqueues >= (1u << 20) ? -ENOSPC : -ENOMEM;
                }
                n = (uint32_t)d->nqueues++;
        }
        d->queues[n] = (struct dqueue){ .name = copy, .accepting = true };
        d->byname[name_slot(d, name)] = n + 1;
        d->nameused++;
        *ret = n;
        return 0;
}

/* Forget a queue nobody uses: no settings, nothing queued, running or in
 * flight. Queue names are the clients' to choose, so their number must
 * not only grow. */
static void dq_maybe_free(struct dispatch *d, uint32_t n)
{
        struct dqueue *q = &d->queues[n];
        size_t i;

        if (!q->name || q->configured || q->paused || q->reserved || !qindex_queue_idle(&d->qi, n))
                return;
        if (grow_array((void **)&d->freeq, &d->capfreeq, d->nfreeq + 1, sizeof(*d->freeq)) < 0)
                return; /* kept; tried again next time */
        i = name_slot(d, q->name);
        d->byname[i] = UINT32_MAX;
        free(q->name);
        *q = (struct dqueue){ 0 };
        d->freeq[d->nfreeq++] = n;
}

static const char *qname(const char *queue)
{
        return queue ? queue : DEFAULT_QUEUE;
}

bool dispatch_queue_known(struct server *s, const char *name)
{
        return dq_find(D(s), name, NULL) != NULL;
}

/* ---- set-up ---- */

static void due(struct timer *t)
{
        struct dispatch *d = container_of(t, struct dispatch, timer);
        struct server *s = container_of(d, struct server, dp);

        d->blocked = false;
        dispatch_run(s);
}

int dispatch_init(struct server *s)
{
        struct dispatch *d = D(s);

        *d = (struct dispatch){ .accepting = true };
        timer_init(&d->timer, due);
        return qindex_init(&d->qi, s->cfg.fair_share == FAIR_SHARE_USERS);
}

static void free_values(struct idmap *m)
{
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].key > 0)
                        free(m->slots[i].value);
        idmap_done(m);
}

void dispatch_done(struct server *s)
{
        struct dispatch *d = D(s);

        qindex_done(&d->qi);
        for (size_t i = 0; i < d->nqueues; i++)
                free(d->queues[i].name);
        free(d->queues);
        free(d->byname);
        free(d->freeq);
        free_values(&d->waiting);
        free_values(&d->dependents);
        idmap_done(&d->user_reserved);
        *d = (struct dispatch){ 0 };
}

void dispatch_configure(struct server *s)
{
        struct dispatch *d = D(s);

        for (size_t i = 0; i < d->nqueues; i++) {
                struct dqueue *q = &d->queues[i];
                if (!q->name || !q->configured)
                        continue;
                q->configured = false;
                q->workers = q->high_water = 0;
        }
        for (size_t i = 0; i < s->cfg.nqueues; i++) {
                const struct queue_cfg *c = &s->cfg.queues[i];
                uint32_t n;
                if (dispatch_queue_number(s, c->name, &n) < 0) {
                        log_error("queue %s: out of memory for its settings", c->name);
                        continue;
                }
                d->queues[n].configured = true;
                d->queues[n].workers = c->workers;
                d->queues[n].high_water = c->high_water;
        }
        for (size_t i = 0; i < d->nqueues; i++) {
                struct dqueue *q = &d->queues[i];
                if (!q->name)
                        continue;
                qindex_queue_set(&d->qi, (uint32_t)i, (uint32_t)q->workers, q->paused);
                dq_maybe_free(d, (uint32_t)i);
        }
}

/* ---- waiting for other jobs ---- */

static int depend(struct dispatch *d, int64_t on, int64_t id)
{
        struct idlist *l = idmap_get(&d->dependents, on);

        if (!l || l->n == l->cap) {
                unsigned cap = l ? l->cap * 2 : 2;
                struct idlist *nl = realloc(l, sizeof(*nl) + cap * sizeof(int64_t));
                if (!nl)
                        return -ENOMEM;
                nl->n = l ? nl->n : 0;
                nl->cap = cap;
                l = nl;
                if (idmap_put(&d->dependents, on, l) < 0) {
                        free(l);
                        return -ENOMEM;
                }
        }
        l->ids[l->n++] = id;
        return 0;
}

/* Hold a queued job until every id of unmet has succeeded. */
static int wait_for(struct dispatch *d, int64_t id, uint32_t uid, uint32_t queue, int prio, int64_t run_at,
                    int64_t seq, const int64_t *unmet, unsigned n)
{
        struct waiting *w = malloc(sizeof(*w) + n * sizeof(int64_t));

        if (!w)
                return -ENOMEM;
        *w = (struct waiting){ .id = id, .run_at = run_at, .queued_seq = seq, .uid = uid, .queue = queue,
                               .prio = prio, .nunmet = n };
        memcpy(w->unmet, unmet, n * sizeof(int64_t));
        if (idmap_put(&d->waiting, id, w) < 0) {
                free(w);
                return -ENOMEM;
        }
        d->nwaiting++;
        for (unsigned i = 0; i < n; i++)
                if (depend(d, unmet[i], id) < 0)
                        return -ENOMEM;
        return 0;
}

/* The monotonic millisecond a delay is counted from, rounded up: the
 * wall clock's millisecond is cut at another point of the second, and a
 * delayed job must never become due before its run_at has passed on the
 * wall clock (truncated, it could by up to a millisecond). */
static int64_t delay_base_ms(int64_t mono_us)
{
        return (mono_us + 999) / 1000;
}

static void push(struct server *s, int64_t id, uint32_t uid, uint32_t queue, int prio, int64_t run_at, int64_t seq)
{
        int r = qindex_push(&D(s)->qi, id, uid, queue, prio, (unsigned)(seq & TAG_MASK), run_at, loop_wall_ms(s),
                            delay_base_ms(loop_mono_us(s)));

        if (r < 0)
                log_error_errno(r, "job %" PRId64 ": cannot enter the dispatch index; it runs after a restart", id);
}

/* A job entered the queued state: counted, and either in the index or,
 * while others it runs after have not succeeded, waiting. */
static void enqueue(struct server *s, int64_t id, uid_t uid, const char *queue, int prio, int64_t run_at,
                    int64_t seq, const int64_t *unmet, unsigned nunmet)
{
        struct dispatch *d = D(s);
        uint32_t q;

        if (dispatch_queue_number(s, qname(queue), &q) < 0) {
                log_error("job %" PRId64 ": out of memory for queue %s; it runs after a restart", id, qname(queue));
                return;
        }
        qindex_queued_add(&d->qi, uid, q, 1);
        if (!nunmet) {
                push(s, id, uid, q, prio, run_at, seq);
                return;
        }
        if (wait_for(d, id, uid, q, prio, run_at, seq, unmet, nunmet) < 0)
                log_error("job %" PRId64 ": out of memory for what it waits for; it runs after a restart", id);
}

static void reserve(struct server *s, uid_t uid, const char *queue, int delta);

/* A job about to be submitted would start as soon as it is committed:
 * a slot is free, nothing holds dispatch, and it is due and waits for no
 * other job. A hint for the store (the queue may be paused or at its cap). */
static bool may_start_at_once(struct server *s, const struct job_rec *j)
{
        struct dispatch *d = D(s);

        return !s->draining && s->rx.phase == RX_NONE && !d->blocked && !d->stopped && !d->all_paused &&
               workers_free(s) && j->nafter == 0 && j->run_at <= loop_wall_ms(s);
}

/* A job readied at its submit holds its request's parse tree, its row
 * and its slot's vectors at once; a big one (100,000 arguments, a
 * 60 KiB variable) would make that peak several MiB, for a launch that
 * costs more than the commit it would hide. It goes through the queue. */
#define AT_ONCE_MAX_BYTES 16384

static bool small_job(const struct job_rec *j)
{
        return strlen(j->argv) + (j->env ? strlen(j->env) : 0) <= AT_ONCE_MAX_BYTES;
}

void dispatch_submit(struct server *s, struct store_op *op, const json_t *env)
{
        struct dispatch *d = D(s);
        struct job_rec *j = &op->submit.rec;
        uint32_t q;
        /* Numbered before its place is reserved: the reserve counts on
         * the queue it comes back to (dispatch_submitted takes it off). */
        bool numbered = dispatch_queue_number(s, qname(j->queue), &q) == 0, early;

        reserve(s, (uid_t)j->owner_uid, j->queue, +1);
        /* What is due in the index goes first: with a slot still free
         * after that, nothing there could start now. */
        early = may_start_at_once(s, j);
        if (early && qindex_entries(&d->qi)) {
                dispatch_run(s);
                early = may_start_at_once(s, j);
        }
        op->submit.early = early;
        if (early && !j->idem_key && numbered && qindex_queue_eligible(&d->qi, q) && small_job(j)) {
                /* Set before the push: the store never reads it. */
                op->submit.started = true;
                (void)workers_start_submitted(s, op, env, q);
                return;
        }
        store_push(s->store, op);
}

void dispatch_submitted(struct server *s, const struct store_op *op)
{
        const struct job_rec *j = &op->submit.rec;
        bool ok = op->result == 0 && !op->submit.duplicate && !op->submit.dep_failed;

        reserve(s, (uid_t)j->owner_uid, j->queue, -1);
        /* By the id the loop gave (a failed batch clears op->id). */
        if (op->submit.started && workers_submit_done(s, j->id, ok)) {
                /* Queued in the database until its start is committed
                 * (dispatch_start_committed), like any job picked; its
                 * queue is there, its slot counted in it. */
                uint32_t q;
                if (dq_find(D(s), qname(j->queue), &q))
                        qindex_queued_add(&D(s)->qi, (uid_t)j->owner_uid, q, 1);
                return;
        }
        if (!ok) {
                /* A queue first named by a refused submit goes again. */
                uint32_t q;
                if (dq_find(D(s), qname(j->queue), &q))
                        dq_maybe_free(D(s), q);
                return;
        }
        enqueue(s, op->id, (uid_t)j->owner_uid, j->queue, j->priority, j->run_at, 0, op->unmet, op->nunmet);
}

/* A job back in the queue (retry, requeue): its row as the op left it,
 * else as last committed. */
static void reenter(struct server *s, const struct store_op *op, int64_t run_at, const int64_t *unmet,
                    unsigned nunmet)
{
        struct job_rec j;
        const struct job_rec *row = op->row;
        int r = 0;

        if (!row) {
                r = reader_get(s->reader, op->id, &j);
                row = r == 0 ? &j : NULL;
        }
        if (!row) {
                log_error_errno(r, "job %" PRId64 ": cannot read it back; it runs after a restart", op->id);
                return;
        }
        enqueue(s, op->id, (uid_t)row->owner_uid, row->queue, row->priority, run_at, row->queued_seq, unmet, nunmet);
        if (row == &j)
                job_rec_done(&j);
}

void dispatch_retried(struct server *s, const struct store_op *op)
{
        reenter(s, op, op->change.now_ms, op->unmet, op->nunmet);
}

void dispatch_requeued(struct server *s, const struct store_op *op)
{
        reenter(s, op, op->finish.run_at, NULL, 0);
}

void dispatch_start_committed(struct server *s, uid_t uid, uint32_t queue)
{
        qindex_queued_add(&D(s)->qi, uid, queue, -1);
        dq_maybe_free(D(s), queue);
}

static void cancel_for(struct server *s, int64_t id, int64_t dep, int state)
{
        struct store_op *op = calloc(1, sizeof(*op));

        if (!op || asprintf(&op->dep.reason, "dependency %" PRId64 " %s", dep, ringq_state_names[state]) < 0) {
                free(op);
                log_error("job %" PRId64 ": out of memory canceling it; a restart does", id);
                return;
        }
        op->kind = SOP_DEP_CANCEL;
        op->id = id;
        op->dep.now_ms = now_wall_ms();
        op->enqueued_us = now_mono_us();
        store_push(s->store, op);
}

void dispatch_ended(struct server *s, int64_t id, int state)
{
        struct dispatch *d = D(s);
        struct idlist *l = idmap_remove(&d->dependents, id);

        for (unsigned i = 0; l && i < l->n; i++) {
                struct waiting *w = idmap_get(&d->waiting, l->ids[i]);
                unsigned k;

                if (!w)
                        continue; /* canceled meanwhile */
                if (state != RINGQ_STATE_SUCCEEDED) {
                        cancel_for(s, w->id, id, state);
                        continue;
                }
                for (k = 0; k < w->nunmet && w->unmet[k] != id; k++)
                        ;
                if (k == w->nunmet)
                        continue;
                w->unmet[k] = w->unmet[--w->nunmet];
                if (w->nunmet)
                        continue;
                idmap_remove(&d->waiting, w->id);
                d->nwaiting--;
                push(s, w->id, w->uid, w->queue, w->prio, w->run_at, w->queued_seq);
                free(w);
        }
        free(l);
}

void dispatch_canceled(struct server *s, int64_t id, uid_t uid, const char *queue)
{
        struct dispatch *d = D(s);
        struct waiting *w = idmap_remove(&d->waiting, id);
        uint32_t q;

        if (w) {
                d->nwaiting--;
                qindex_queued_add(&d->qi, w->uid, w->queue, -1);
                dq_maybe_free(d, w->queue);
                free(w);
        } else if (dq_find(d, qname(queue), &q)) {
                /* Its entry stays in the index until it comes up; the
                 * row says canceled then, and it is dropped. */
                qindex_queued_add(&d->qi, uid, q, -1);
                dq_maybe_free(d, q);
        }
        dispatch_ended(s, id, RINGQ_STATE_CANCELED);
}

void dispatch_on_store_done(struct server *s, struct store_op *op)
{
        struct waiting *w;

        if (op->result < 0) {
                log_error_errno(op->result, "job %" PRId64 ": cannot record it canceled (%s); a restart does", op->id,
                                op->dep.reason);
                return;
        }
        if (!op->dep.done)
                return; /* no longer queued: something else ended it */
        w = idmap_get(&D(s)->waiting, op->id);
        log_notice("job %" PRId64 " ended: canceled, reason=\"%s\"", op->id, op->dep.reason);
        s->stats.c[C_CANCELED]++;
        prune_note_finished(s, 1);
        dispatch_canceled(s, op->id, w ? w->uid : 0, NULL);
        waiters_job_final(s, op->id, op->row);
        notify_status(s);
}

/* ---- admission ---- */

static int64_t user_reserved(struct dispatch *d, uid_t uid)
{
        return (int64_t)(uintptr_t)idmap_get(&d->user_reserved, (int64_t)uid + 1);
}

static void reserve(struct server *s, uid_t uid, const char *queue, int delta)
{
        struct dispatch *d = D(s);
        struct dqueue *q = dq_find(d, qname(queue), NULL);
        int64_t n = user_reserved(d, uid) + delta;

        d->reserved += delta;
        if (q)
                q->reserved += delta;
        if (uid == 0)
                return;
        if (n > 0)
                (void)idmap_put(&d->user_reserved, (int64_t)uid + 1, (void *)(uintptr_t)n);
        else
                idmap_remove(&d->user_reserved, (int64_t)uid + 1);
}

/* Jobs under the global marks: those of queues without marks of their
 * own, queued or in flight. */
int64_t dispatch_queued(struct server *s)
{
        struct dispatch *d = D(s);
        int64_t n = qindex_queued(&d->qi) + d->reserved;

        for (size_t i = 0; i < d->nqueues; i++)
                if (d->queues[i].name && d->queues[i].high_water)
                        n -= qindex_queue_queued(&d->qi, (uint32_t)i) + d->queues[i].reserved;
        return n;
}

void dispatch_drain_outlook(struct server *s, int64_t *ret_runnable, int64_t *ret_next_due_mono_ms)
{
        const struct qindex *qi = &D(s)->qi;

        *ret_runnable = (int64_t)(qindex_entries(qi) - qi->delay.n);
        *ret_next_due_mono_ms = qindex_next_due(qi);
}

/* Rejecting from high water on; accepting again once n is down to low
 * (n == low is accepted). The reject message says so (ops.c). */
static bool hysteresis(bool accepting, int64_t n, uint64_t high, uint64_t low)
{
        if (accepting && n >= (int64_t)high)
                return false;
        if (!accepting && n <= (int64_t)low)
                return true;
        return accepting;
}

void dispatch_update_accepting(struct server *s)
{
        struct dispatch *d = D(s);
        int64_t n = dispatch_queued(s);
        bool was = d->accepting;

        d->accepting = hysteresis(d->accepting, n, s->cfg.high_water, s->cfg.low_water);
        if (was != d->accepting)
                log_notice("queue %s: %lld queued (high water %llu, low water %llu)",
                           d->accepting ? "accepting again" : "full, rejecting submits", (long long)n,
                           (unsigned long long)s->cfg.high_water, (unsigned long long)s->cfg.low_water);
        notify_status(s);
}

enum admit dispatch_admit(struct server *s, uid_t uid, const char *queue, struct admit_info *ret)
{
        struct dispatch *d = D(s);
        uint32_t qn;
        struct dqueue *q = dq_find(d, qname(queue), &qn);
        uint64_t reserve = s->cfg.root_reserve_jobs;
        bool accepting;
        int64_t n, mine;

        *ret = (struct admit_info){ 0 };
        if (q && q->high_water) {
                /* Its own marks, the same way as the global ones; root's
                 * reserve in the same proportion. */
                n = qindex_queue_queued(&d->qi, qn) + q->reserved;
                q->accepting = hysteresis(q->accepting, n, q->high_water, q->high_water * 9 / 10);
                accepting = q->accepting;
                *ret = (struct admit_info){ n, (int64_t)q->high_water, (int64_t)(q->high_water * 9 / 10), q->name };
                if (reserve)
                        reserve = MAX(q->high_water * reserve / MAX(s->cfg.high_water, 1), 1);
        } else {
                dispatch_update_accepting(s);
                n = dispatch_queued(s);
                accepting = d->accepting;
                *ret = (struct admit_info){ n, (int64_t)s->cfg.high_water, (int64_t)s->cfg.low_water, NULL };
        }
        if (!accepting && uid != 0)
                return ADMIT_FULL;
        /* Root can always act on a full queue, up to its reserve; without
         * a reserve it is held like everyone, and told so (not of a
         * reserve it never had). */
        if (!accepting && !reserve)
                return ADMIT_FULL;
        if (!accepting)
                return n < ret->high_water + (int64_t)reserve ? ADMIT_OK : ADMIT_ROOT_FULL;
        if (uid == 0 || !s->cfg.max_queued_per_user || s->uid != 0)
                return ADMIT_OK;
        mine = qindex_user_queued(&d->qi, uid) + user_reserved(d, uid);
        if (mine < (int64_t)s->cfg.max_queued_per_user)
                return ADMIT_OK;
        *ret = (struct admit_info){ mine, (int64_t)s->cfg.max_queued_per_user, 0, NULL };
        return ADMIT_USER_FULL;
}

/* ---- starting jobs ---- */

void dispatch_slot_begin(struct server *s, uid_t uid, uint32_t queue)
{
        qindex_run_begin(&D(s)->qi, uid, queue);
}

void dispatch_slot_end(struct server *s, uid_t uid, uint32_t queue)
{
        qindex_run_end(&D(s)->qi, uid, queue);
        dq_maybe_free(D(s), queue);
}

void dispatch_run(struct server *s)
{
        struct dispatch *d = D(s);
        bool flushed = false;
        int64_t next;

        if (s->draining || s->rx.phase != RX_NONE || d->blocked || d->stopped || d->all_paused) {
                /* Nothing may start, so no due time may wake the loop:
                 * only a pop moves a due entry on, and a timer for one
                 * already due would fire on every turn. Whatever lifts
                 * the stop (resume, the spawn retry) runs dispatch. */
                if (!d->blocked)
                        timers_disarm(&s->timers, &d->timer);
                return;
        }
        while (workers_free(s)) {
                struct qpick p;
                int r;

                if (!qindex_pop(&d->qi, now_wall_ms(), now_mono_ms(), &p))
                        break;
                /* Replies first: a start holds the loop for a clone and two
                 * opens, and the clients whose writes made this job
                 * runnable should not wait behind that. */
                if (!flushed && io_uring_sq_ready(&s->ring))
                        (void)io_uring_submit(&s->ring);
                flushed = true;
                r = workers_start(s, &p, TAG_MASK);
                if (r == -ESTALE)
                        continue; /* an entry from before the job changed */
                if (r < 0) {
                        /* Out of processes, fds or memory, or the database
                         * would not answer: the job keeps its place and
                         * dispatch pauses a moment. */
                        log_warning_errno(r, "job %" PRId64 ": cannot start now, retrying in %dms", p.id,
                                          RETRY_SPAWN_MS);
                        (void)qindex_unpop(&d->qi, &p);
                        d->blocked = true;
                        loop_arm_timer(s, &d->timer, now_mono_ms() + RETRY_SPAWN_MS);
                        return;
                }
        }
        /* Wake when the next delayed job comes due, but only with a slot
         * free to run it: with all slots busy a finishing job dispatches,
         * and a timer for a job already due would fire on every turn. */
        next = qindex_next_due(&d->qi);
        if (!d->blocked && next != INT64_MAX && workers_free(s))
                loop_arm_timer(s, &d->timer, next);
        else if (!d->blocked)
                timers_disarm(&s->timers, &d->timer);
}

/* ---- pause, and the queues as clients see them ---- */

void dispatch_set_paused(struct server *s, const char *name, bool paused)
{
        struct dispatch *d = D(s);
        uint32_t n;

        if (!name) {
                d->all_paused = paused;
                for (size_t i = 0; !paused && i < d->nqueues; i++)
                        if (d->queues[i].name && d->queues[i].paused) {
                                d->queues[i].paused = false;
                                qindex_queue_set(&d->qi, (uint32_t)i, (uint32_t)d->queues[i].workers, false);
                                dq_maybe_free(d, (uint32_t)i);
                        }
                return;
        }
        if (dispatch_queue_number(s, name, &n) < 0) {
                log_error("queue %s: out of memory for its paused state; it applies after a restart", name);
                return;
        }
        d->queues[n].paused = paused;
        qindex_queue_set(&d->qi, n, (uint32_t)d->queues[n].workers, paused);
        dq_maybe_free(d, n);
}

static int by_name(const void *a, const void *b)
{
        return strcmp((*(const struct dqueue *const *)a)->name, (*(const struct dqueue *const *)b)->name);
}

json_t *dispatch_queues_json(struct server *s)
{
        struct dispatch *d = D(s);
        const struct dqueue **v = calloc(MAX(d->nqueues, 1), sizeof(*v));
        json_t *a = json_array();
        size_t n = 0;

        if (!v || !a) {
                free(v);
                json_decref(a);
                return NULL;
        }
        for (size_t i = 0; i < d->nqueues; i++)
                if (d->queues[i].name)
                        v[n++] = &d->queues[i];
        qsort(v, n, sizeof(*v), by_name);
        for (size_t i = 0; i < n; i++) {
                uint32_t q = (uint32_t)(v[i] - d->queues);
                json_t *o = json_pack("{s:s, s:I, s:I}", "name", v[i]->name, "queued",
                                      (json_int_t)qindex_queue_queued(&d->qi, q), "running",
                                      (json_int_t)qindex_queue_running(&d->qi, q));
                if (!o)
                        continue;
                json_object_set_new(o, "workers", v[i]->workers ? json_integer((json_int_t)v[i]->workers) : json_null());
                json_object_set_new(o, "high_water",
                                    v[i]->high_water ? json_integer((json_int_t)v[i]->high_water) : json_null());
                json_object_set_new(o, "paused", json_boolean(v[i]->paused || d->all_paused));
                json_array_append_new(a, o);
        }
        free(v);
        return a;
}

void dispatch_annotate(struct server *s, json_t *job, const struct job_rec *j)
{
        struct waiting *w = j->state == RINGQ_STATE_QUEUED ? idmap_get(&D(s)->waiting, j->id) : NULL;
        json_t *a = json_array();

        for (unsigned i = 0; a && w && i < w->nunmet; i++)
                json_array_append_new(a, json_integer(w->unmet[i]));
        if (a)
                json_object_set_new(job, "waiting_for", a);
}

/* ---- start-up ---- */

/* What the database says is waiting, before the queued jobs are read. */
struct pending {
        int64_t id;
        unsigned n, cap;
        int64_t failed;               /* a job it runs after that failed or was canceled */
        int failed_state;
        int64_t ids[];
};

struct load {
        struct server *s;
        struct idmap pending;         /* job id -> struct pending */
        int64_t wall, mono;
};

static int load_queue_row(void *ud, const char *name, bool paused)
{
        struct load *l = ud;

        if (strcmp(name, "*") == 0)
                D(l->s)->all_paused = paused;
        else if (paused && queue_name_valid(name, strlen(name)))
                dispatch_set_paused(l->s, name, true);
        return 0;
}

static int load_dep(void *ud, int64_t id, int64_t after, int state)
{
        struct load *l = ud;
        struct pending *p = idmap_get(&l->pending, id);

        if (!p || p->n == p->cap) {
                unsigned cap = p ? p->cap * 2 : 2;
                struct pending *np = realloc(p, sizeof(*np) + cap * sizeof(int64_t));
                if (!np)
                        return -ENOMEM;
                if (!p)
                        *np = (struct pending){ .id = id };
                np->cap = cap;
                p = np;
                if (idmap_put(&l->pending, id, p) < 0) {
                        free(p);
                        return -ENOMEM;
                }
        }
        if (state == RINGQ_STATE_FAILED || state == RINGQ_STATE_CANCELED) {
                if (!p->failed) {
                        p->failed = after;
                        p->failed_state = state;
                }
        } else if (state != RINGQ_STATE_SUCCEEDED)
                p->ids[p->n++] = after;
        return 0;
}

static int load_job(void *ud, const struct queued_job *j)
{
        struct load *l = ud;
        struct server *s = l->s;
        struct pending *p = idmap_remove(&l->pending, j->id);
        uint32_t q;
        int r;

        r = dispatch_queue_number(s, j->queue, &q);
        if (r < 0) {
                free(p);
                return r;
        }
        qindex_queued_add(&D(s)->qi, (uid_t)j->owner_uid, q, 1);
        if (p && p->failed) {
                /* Its wait can never end; until the cancel commits it
                 * waits on nothing. */
                cancel_for(s, j->id, p->failed, p->failed_state);
                p->n = 0;
        }
        if (p && (p->n || p->failed))
                r = wait_for(D(s), j->id, (uid_t)j->owner_uid, q, j->priority, j->run_at, j->queued_seq, p->ids, p->n);
        else
                r = qindex_append(&D(s)->qi, j->id, (uid_t)j->owner_uid, q, j->priority,
                                  (unsigned)(j->queued_seq & TAG_MASK), j->run_at, l->wall, l->mono);
        free(p);
        return r;
}

int dispatch_load(struct server *s)
{
        struct load l = { .s = s, .wall = now_wall_ms(), .mono = delay_base_ms(now_mono_us()) };
        int r;

        r = store_load_queues(s->store, load_queue_row, &l);
        if (r == 0)
                r = store_load_deps(s->store, load_dep, &l);
        if (r == 0)
                r = store_load_queued(s->store, load_job, &l);
        qindex_heapify(&D(s)->qi);
        free_values(&l.pending);
        if (r == 0)
                dispatch_configure(s);
        return r;
}
