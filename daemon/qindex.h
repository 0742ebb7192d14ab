/* The dispatch index: which queued job runs next, and whose.
 *
 * Every queued job is here as 16 bytes, so dispatch never reads the
 * database to choose and a million queued jobs cost 16 MiB, not a table
 * scan. Jobs whose run_at is still ahead wait in one heap keyed by a
 * monotonic due time and move over when it passes, so a wall-clock jump
 * neither starts a delayed job early nor holds it back. A job that comes
 * due after a wall-clock jump takes, as its run_at for ordering, the
 * moment it came due in the wall time of now (its stored run_at would
 * compare across the jump; 16 bytes have no room for both).
 *
 * Fair share (fair_share = users) must pick a user before a job, without
 * looking at every user or job: so each user has its own runnable heap,
 * and the users whose heaps are not empty sit in a heap of their own,
 * keyed by (running, last served, uid). A start or an end moves one user
 * in that heap, O(log U). Entries name their user by a 20-bit index into
 * an array of user records that only grows, never by pointer, so the
 * array may move and a delayed entry still finds its user's heap when it
 * comes due. With fair_share = off one shared heap holds every runnable
 * entry, in the order of ringq 1.
 *
 * Entries are never removed by id: a canceled job is marked (a hash of
 * ids, usually empty) and its entry dropped when it reaches the top,
 * which keeps every operation O(log n) and entries at 16 bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idmap.h"

#define QINDEX_ID_BITS 44
#define QINDEX_USER_BITS 20

/* key: runnable (1000 - prio) << 52 | run_at_ms (52 bits);
 *      delayed  due_mono_ms << 11 | (prio + 1000).
 * who: id << 20 | user index, in both heaps, so a tie on key falls to
 *      the lower id: priority DESC, run_at ASC, id ASC. */
struct qentry {
        uint64_t key;
        uint64_t who;
};

struct qheap {
        struct qentry *e;
        size_t n, cap;
};

struct quser; /* one per uid seen since start (qindex.c) */

struct qindex {
        bool fair;
        struct qheap shared;    /* off: every runnable entry */
        struct qheap delay;     /* every delayed entry, fair or not */
        struct quser *users;    /* by user index; never shrinks */
        size_t nusers, capusers;
        uint32_t *uheap;        /* fair: users with runnable entries */
        uint32_t *active;       /* users with queued or running jobs */
        size_t nuheap, capuheap, nactive, capactive;
        struct idmap byuid;     /* uid + 1 -> user index + 1 */
        struct idmap canceled;  /* id -> (void *)1 */
        uint64_t seq;           /* last start's served sequence */
        int64_t queued;
        size_t nrun;            /* runnable entries, all heaps */
        size_t usercap;         /* entries the users' heaps have room for */
};

/* What qindex_pop returned; e is opaque, for qindex_unpop. */
struct qpick {
        int64_t id;
        uint32_t uid;
        int prio;
        struct qentry e;
};

/* Start an empty index; fair_users picks fair share. Returns 0 or -ENOMEM. */
int qindex_init(struct qindex *q, bool fair_users);
/* Free everything; *q is zeroed (qindex_init again before reuse). */
void qindex_done(struct qindex *q);
/* Add a queued job of uid (queued +1). Returns 0, -ENOMEM, -EOVERFLOW
 * (id outside 0..2^44-1), -ENOSPC (a 2^20th distinct user) or -EINVAL
 * (prio outside -1000..1000). */
int qindex_push(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at_ms,
                int64_t now_wall_ms, int64_t now_mono_ms);
/* As qindex_push without keeping heap order (the start-up load)... */
int qindex_append(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at_ms,
                  int64_t now_wall_ms, int64_t now_mono_ms);
/* ...which this restores once, O(n), before any pop. */
void qindex_heapify(struct qindex *q);
/* Take the next due job that is not canceled. Returns 1 and sets *ret, or
 * 0 when none is due. Changes no count: see run_begin and dequeue. */
int qindex_pop(struct qindex *q, int64_t now_wall_ms, int64_t now_mono_ms, struct qpick *ret);
/* Put back what qindex_pop returned (its job could not start now); the
 * next pop returns it again. Returns 0, -ENOMEM or -EINVAL. */
int qindex_unpop(struct qindex *q, const struct qpick *p);
/* A job of uid started: running +1, and uid becomes the last served. */
void qindex_run_begin(struct qindex *q, uint32_t uid);
/* A job of uid ended: running -1, never below 0. */
void qindex_run_end(struct qindex *q, uint32_t uid);
/* A queued job of uid left the queue (start committed, or canceled). */
void qindex_dequeue(struct qindex *q, uint32_t uid);
/* Never pop the entry of id (id > 0). Returns 0, -ENOMEM or -EINVAL. */
int qindex_cancel(struct qindex *q, int64_t id);
/* Forget the mark of id (it is queued again and pushed anew). */
void qindex_uncancel(struct qindex *q, int64_t id);
/* Jobs counted queued, all users. */
int64_t qindex_queued(const struct qindex *q);
/* Jobs of uid counted queued (0 for a uid never seen). */
int64_t qindex_user_queued(const struct qindex *q, uint32_t uid);
/* Jobs of uid running (0 for a uid never seen). */
uint32_t qindex_user_running(const struct qindex *q, uint32_t uid);
/* Call fn for each user with queued or running jobs, in no set order. */
void qindex_foreach_user(const struct qindex *q,
                         void (*fn)(void *ud, uint32_t uid, int64_t queued, uint32_t running), void *ud);
/* Monotonic ms at which the next delayed job comes due, INT64_MAX if none. */
int64_t qindex_next_due(const struct qindex *q);
/* Entries held, runnable and delayed, canceled ones included. */
size_t qindex_entries(const struct qindex *q);
/* Bytes held, for stats. */
size_t qindex_bytes(const struct qindex *q);
