/* When to prune finished jobs (prune.c): the store thread deletes them in
 * small batches; this side only decides when to ask. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "timers.h"

struct server;
struct store_op;

struct pruner {
        int64_t finished;        /* finished rows in the database */
        bool inflight;
        struct timer timer;
};

void prune_init(struct server *s, int64_t finished);
/* delta finished jobs appeared (or, negative, went back to queued). */
void prune_note_finished(struct server *s, int64_t delta);
void prune_on_done(struct server *s, struct store_op *op);
/* Look again now (new retention or max_finished). */
void prune_poke(struct server *s);
