/* The dispatch index: which queued job runs next.
 *
 * Every queued job is here as 16 bytes, so dispatch never reads the
 * database to choose and a million queued jobs cost 16 MiB, not a table
 * scan. Jobs whose run_at is still ahead wait in a second heap keyed by
 * a monotonic due time and move over when it passes, so a wall-clock
 * jump neither starts a delayed job early nor holds it back.
 * A job that comes due after a wall-clock jump takes, as its run_at for
 * ordering, the moment it came due in the wall time of now (its stored
 * run_at would compare across the jump; 16 bytes have no room for both).
 * Entries are never removed by id: a canceled job's entry is dropped when
 * it reaches the top (the caller checks), which keeps this O(log n) and
 * free of a per-job hash table.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct qentry {
        uint64_t key;   /* runnable: (1000 - prio) << 52 | run_at_ms;
                         * delayed: due_mono_ms */
        int64_t id;     /* runnable: job id; delayed: id << 11 | prio + 1000 */
};

struct qindex {
        struct qentry *run, *delay;
        size_t nrun, caprun, ndelay, capdelay;
};

/* Add a queued job. Returns 0 or -ENOMEM. */
int qindex_push(struct qindex *q, int64_t id, int prio, int64_t run_at_ms,
                int64_t now_wall_ms, int64_t now_mono_ms);
/* Bulk load (start-up): add without keeping the heap order, then
 * qindex_heapify once, O(n) in all instead of O(n log n). */
int qindex_append(struct qindex *q, int64_t id, int prio, int64_t run_at_ms,
                  int64_t now_wall_ms, int64_t now_mono_ms);
void qindex_heapify(struct qindex *q);
/* Take the next runnable job: highest priority, then earliest run_at,
 * then lowest id. Returns 1 and sets *ret (ret->id is the job id), or 0
 * when none is due. */
int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qentry *ret);
/* Put back an entry qindex_pop returned (its job could not start yet). */
int qindex_unpop(struct qindex *q, const struct qentry *e);
/* Monotonic time at which the next delayed job becomes due (INT64_MAX if
 * none). */
int64_t qindex_next_due(const struct qindex *q);
static inline size_t qindex_size(const struct qindex *q) { return q->nrun + q->ndelay; }
/* Bytes held, for stats. */
size_t qindex_bytes(const struct qindex *q);
void qindex_done(struct qindex *q);
