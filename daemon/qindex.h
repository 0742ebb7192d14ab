/* The dispatch index: which queued job runs next, from which queue, and
 * whose.
 *
 * Every queued job is here as one 16-byte entry, so dispatch never reads
 * the database to choose and a million queued jobs cost 16 MiB, not a
 * table scan. Jobs whose run_at is still ahead wait in one heap keyed by
 * a monotonic due time and move over when it passes, so a wall-clock jump
 * neither starts a delayed job early nor holds it back. A job that comes
 * due after a wall-clock jump takes, as its run_at for ordering, the
 * moment it came due in the wall time of now (its stored run_at would
 * compare across the jump; 16 bytes have no room for both).
 *
 * Runnable entries live in buckets, one per (queue, user) pair, each a
 * heap in the order of ringq 1 (priority, run_at, id). A bucket is found
 * by (queue, uid) through a hash and named by a 22-bit index, which is
 * what a delayed entry carries, so it finds its bucket when it comes due
 * however the arrays move; a bucket is freed when no entry refers to it.
 *
 * Fair share (fair_share = users) must pick a user before a job, without
 * looking at every user or job: each user has a heap of its non-empty
 * buckets keyed by their top entries, and the users whose heaps are not
 * empty sit in a heap keyed by (running, last served, uid). A start or an
 * end moves one user, O(log U). With fair_share = off every bucket sits in
 * one heap, as if all belonged to one user: one global order.
 *
 * A queue that is paused or at its cap must give nothing, but pausing it
 * must not cost a walk over its jobs or buckets: so nothing happens then,
 * and pop, meeting a bucket of such a queue on top, parks it on the
 * queue's list and looks further. When the queue becomes eligible again
 * its parked buckets go back, O(parked buckets), never O(jobs).
 *
 * Entries are never removed by id: each carries a 9-bit tag of the job's
 * enqueue sequence and the caller drops, at pop, an entry whose tag no
 * longer matches its job. So counts are the caller's to keep (queued_add,
 * run_begin, run_end): an entry only orders, it counts nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idmap.h"
#include "qheap.h"

#define QINDEX_ID_BITS 44
#define QINDEX_QUEUE_BITS 20
#define QINDEX_BUCKET_BITS 22
#define QINDEX_TAG_BITS 9
#define QINDEX_DUE_BITS 42

/* An entry (qheap.h), 16 bytes:
 * key: runnable (1000 - prio) << 52 | run_at_ms (52 bits);
 *      delayed  due_mono_ms (42 bits) << 22 | bucket index (22 bits).
 * who: id (44 bits) << 20 | tag (9 bits) << 11 | prio + 1000 (11 bits),
 *      in both heaps, so a tie on key falls to the lower id:
 *      priority DESC, run_at ASC, id ASC. */

struct qbucket;         /* qindex.c */
struct quser;
struct qqueue;

struct qindex {
        bool fair;
        struct qheap delay;             /* every delayed entry */
        struct qbucket *buckets;        /* by bucket index */
        size_t nbuckets, capbuckets;    /* slots in use or free; allocated */
        size_t nlive;                   /* buckets in use */
        uint32_t freeb;                 /* first free slot below nbuckets */
        uint32_t spare;                 /* the bucket the last pop emptied */
        struct qiheap all;              /* off: every eligible non-empty bucket */
        struct quser *users;            /* by user index; never shrinks */
        size_t nusers, capusers;
        struct qiheap uheap;            /* fair: users with a bucket in their heap */
        uint32_t *active;               /* users with queued or running jobs */
        size_t nactive, capactive;
        struct qqueue *queues;          /* by queue number */
        size_t nqueues, capqueues;
        struct idmap byuid;             /* uid + 1 -> user index + 1 */
        struct idmap bybucket;          /* (queue << 32 | uid) + 1 -> bucket index + 1 */
        uint64_t seq;                   /* last start's served sequence */
        int64_t queued;
        size_t nrun;                    /* runnable entries, all buckets */
        size_t ecap;                    /* entries the entry heaps have room for */
        size_t bhcap;                   /* indices the users' bucket heaps have room for */
};

/* What qindex_pop returned; e is opaque, for qindex_unpop. */
struct qpick {
        int64_t id;
        uint32_t uid, queue;
        int prio;
        unsigned tag;
        struct qentry e;
};

/* Start an empty index; fair_users picks fair share. Returns 0. */
int qindex_init(struct qindex *q, bool fair_users);
/* Free everything; *q is zeroed (qindex_init again before reuse). */
void qindex_done(struct qindex *q);
/* Add an entry for job id of uid in queue; tag's low 9 bits are kept.
 * Counts nothing. Returns 0, -ENOMEM, -EOVERFLOW (id outside 0..2^44-1,
 * or a due time past 2^42 ms), -ENOSPC (queue >= 2^20, 2^22 buckets or
 * 2^20 users) or -EINVAL (prio outside -1000..1000). */
int qindex_push(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, unsigned tag,
                int64_t run_at_ms, int64_t now_wall_ms, int64_t now_mono_ms);
/* As qindex_push without keeping heap order (the start-up load)... */
int qindex_append(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, unsigned tag,
                  int64_t run_at_ms, int64_t now_wall_ms, int64_t now_mono_ms);
/* ...which this restores once, O(n), before any pop. */
void qindex_heapify(struct qindex *q);
/* Take the best due entry of an eligible queue (fair: of the user ranked
 * first). Returns 1 and sets *ret, or 0 when none. Changes no count; the
 * caller drops an entry whose tag is not its job's. */
int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qpick *ret);
/* Put back what qindex_pop returned; with nothing changed in between the
 * next pop returns it again. Returns 0, -ENOMEM, -ENOSPC or -EINVAL;
 * needs no memory when it follows its pop. */
int qindex_unpop(struct qindex *q, const struct qpick *p);
/* A job of uid in queue started: running +1 for both, uid is the last
 * served. Returns 0, -ENOMEM or -ENOSPC (then nothing is counted). */
int qindex_run_begin(struct qindex *q, uint32_t uid, uint32_t queue);
/* A job of uid in queue ended: running -1 for both, never below 0. */
void qindex_run_end(struct qindex *q, uint32_t uid, uint32_t queue);
/* Jobs of uid in queue counted queued += delta, each count held at 0 or
 * more. Returns 0, -ENOMEM or -ENOSPC (then nothing is counted). */
int qindex_queued_add(struct qindex *q, uint32_t uid, uint32_t queue, int64_t delta);
/* Set queue's cap on running jobs (0: none) and paused state. Returns 0,
 * -ENOMEM or -ENOSPC (queue >= 2^20); then nothing changed. */
int qindex_queue_set(struct qindex *q, uint32_t queue, uint32_t cap, bool paused);
/* True when queue holds no entry, counts nothing and has default settings:
 * the caller may give its number to another queue. */
bool qindex_queue_idle(const struct qindex *q, uint32_t queue);
/* May queue start one more job now: not paused, below its cap? (A queue
 * never seen has neither.) */
bool qindex_queue_eligible(const struct qindex *q, uint32_t queue);
/* Jobs counted queued, all users. */
int64_t qindex_queued(const struct qindex *q);
/* Jobs of uid counted queued (0 for a uid never seen). */
int64_t qindex_user_queued(const struct qindex *q, uint32_t uid);
/* Jobs of uid running (0 for a uid never seen). */
uint32_t qindex_user_running(const struct qindex *q, uint32_t uid);
/* Jobs in queue counted queued (0 for a queue never seen). */
int64_t qindex_queue_queued(const struct qindex *q, uint32_t queue);
/* Jobs in queue running (0 for a queue never seen). */
uint32_t qindex_queue_running(const struct qindex *q, uint32_t queue);
/* Call fn for each user with queued or running jobs, in no set order. */
void qindex_foreach_user(const struct qindex *q,
                         void (*fn)(void *ud, uint32_t uid, int64_t queued, uint32_t running), void *ud);
/* Call fn for each queue with queued or running jobs, by number. */
void qindex_foreach_queue(const struct qindex *q,
                          void (*fn)(void *ud, uint32_t queue, int64_t queued, uint32_t running), void *ud);
/* Monotonic ms at which the next delayed entry comes due, INT64_MAX if none. */
int64_t qindex_next_due(const struct qindex *q);
/* Entries held, runnable (parked included) and delayed. */
size_t qindex_entries(const struct qindex *q);
/* Bytes held, for stats. */
size_t qindex_bytes(const struct qindex *q);
