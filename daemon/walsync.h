/* The WAL's trailing fsync (durability=full): job starts and ends are
 * committed without an fsync of their own, and the loop then syncs the
 * WAL through the ring, so neither a slot nor the store thread waits for
 * the disk. At most one such fsync is in flight; a commit that lands
 * while it runs gets the next one. */
#pragma once

#include <liburing.h>
#include <stdbool.h>

struct server;

struct walsync {
        bool inflight, owed;
};

/* After the store's completions: sync if the store asks for it. */
void walsync_kick(struct server *s);
void walsync_on_done(struct server *s, struct io_uring_cqe *cqe);
/* Nothing committed is waiting for its trailing fsync. */
bool walsync_idle(struct server *s);
