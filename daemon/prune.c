/* When to prune finished jobs. The store thread does the deleting, in
 * small batches; this side only decides when to ask. It wakes at the
 * moment the oldest finished job passes `retention` (the store tells it
 * which that is) or at once when there are more than `max_finished`, so
 * a daemon with nothing to prune sets no timer at all. */
#include <stdlib.h>

#include "log.h"
#include "server.h"

#define PRUNE_BATCH 500
#define PRUNE_AGAIN_MS 20     /* between batches of a backlog */

static void prune_send(struct server *s)
{
        struct store_op *op;

        if (s->prune.inflight || s->draining || s->rx.phase != RX_NONE)
                return;
        op = calloc(1, sizeof(*op));
        if (!op)
                return; /* tried again at the next finish or timer */
        op->kind = SOP_PRUNE;
        op->prune.before_ms = now_wall_ms() - s->cfg.retention_ms;
        op->prune.excess = MAX(s->prune.finished - (int64_t)s->cfg.max_finished, 0);
        op->prune.limit = PRUNE_BATCH;
        op->enqueued_us = now_mono_us();
        s->prune.inflight = true;
        timers_disarm(&s->timers, &s->prune.timer);
        store_push(s->store, op);
}

static void prune_due(struct timer *t)
{
        prune_send(container_of(t, struct server, prune.timer));
}

void prune_init(struct server *s, int64_t finished)
{
        timer_init(&s->prune.timer, prune_due);
        s->prune.finished = finished;
        /* The first batch also tells when the next one is due. */
        prune_send(s);
}

void prune_note_finished(struct server *s, int64_t delta)
{
        s->prune.finished += delta;
        if (delta <= 0)
                return;
        if (s->prune.finished > (int64_t)s->cfg.max_finished)
                prune_send(s);
        else if (!s->prune.inflight && !timer_armed(&s->prune.timer))
                loop_arm_timer(s, &s->prune.timer, now_mono_ms() + s->cfg.retention_ms);
}

void prune_poke(struct server *s)
{
        if (!s->prune.inflight)
                loop_arm_timer(s, &s->prune.timer, now_mono_ms());
}

void prune_on_done(struct server *s, struct store_op *op)
{
        s->prune.inflight = false;
        if (op->result < 0) {
                log_warning_errno(op->result, "pruning finished jobs failed, trying again in 60s");
                loop_arm_timer(s, &s->prune.timer, now_mono_ms() + 60000);
                return;
        }
        s->prune.finished -= op->prune.deleted;
        s->stats.c[C_PRUNED] += op->prune.deleted;
        if (op->prune.deleted)
                log_debug("pruned %u finished job(s)", op->prune.deleted);
        if (op->prune.more || s->prune.finished > (int64_t)s->cfg.max_finished)
                loop_arm_timer(s, &s->prune.timer, now_mono_ms() + PRUNE_AGAIN_MS);
        else if (op->prune.next_finished >= 0) {
                int64_t wait = op->prune.next_finished + s->cfg.retention_ms - now_wall_ms();
                /* At least a second apart: a clock jump cannot make this spin. */
                loop_arm_timer(s, &s->prune.timer, now_mono_ms() + MAX(wait, 1000));
        }
}
