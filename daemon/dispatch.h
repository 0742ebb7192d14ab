/* Dispatch: the one owner of the queued set and of the choice of the next
 * job to start.
 *
 * It holds every queued job: the ones that may run as entries of the
 * dispatch index (qindex.h: fair share between users, each queue's cap
 * and pause, delayed jobs by due time), and the ones that wait for other
 * jobs (submit field after) in a set of its own, with a map from each job
 * to those waiting for it. It keeps the counts that admission reads (per
 * user, per queue, in all), the named queues with their settings and
 * paused state, and decides which job a free worker slot starts.
 *
 * The other modules tell it what happened to a job, once the store has
 * committed it: a submit, a start, a requeue, a retry, a cancel, an end.
 * Each of those moves the job in or out of the queued set here, and
 * nowhere else. An entry of the index carries a few bits of the job's
 * queued_seq, which the store bumps each time the job enters the queue:
 * an entry left from an earlier time (a job canceled and retried) is
 * recognised when it comes up and never starts the job.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "idmap.h"
#include "qindex.h"
#include "timers.h"

struct server;
struct store_op;
struct job_rec;

struct dqueue;
struct dispatch {
        struct qindex qi;
        /* Named queues by number (the index's queue numbers). */
        struct dqueue *queues;
        size_t nqueues, capqueues;
        uint32_t *freeq;              /* numbers free for reuse */
        size_t nfreeq, capfreeq;
        uint32_t *byname;             /* open addressing: number + 1; 0 empty, UINT32_MAX deleted */
        size_t namecap, nameused;
        bool all_paused;              /* pause without a queue: every queue */
        /* Queued jobs that wait for others. */
        struct idmap waiting;         /* id -> struct waiting */
        struct idmap dependents;      /* id -> struct idlist: who waits for it */
        size_t nwaiting;
        /* Admission: submits handed to the store and not back yet. */
        int64_t reserved;
        struct idmap user_reserved;   /* uid + 1 -> count */
        bool accepting;               /* the global marks' hysteresis */
        struct timer timer;           /* the next delayed job comes due */
        bool blocked;                 /* a start failed for lack of resources */
        bool stopped;                 /* start nothing at all (the fuzzer's choice) */
};

int dispatch_init(struct server *s);
void dispatch_done(struct server *s);
/* Rebuild from the database at start-up: the queued jobs, the jobs they
 * wait for, the paused queues; jobs whose wait can no longer end are
 * canceled (store ops, sent once the store runs). */
int dispatch_load(struct server *s);
/* Take the queues' settings from s->cfg (start and reload). */
void dispatch_configure(struct server *s);

/* Admission of a new job of uid in queue (NULL: "default"). */
enum admit {
        ADMIT_OK,
        ADMIT_FULL,           /* the global marks (or the queue's own) */
        ADMIT_ROOT_FULL,      /* even root's reserve is used up */
        ADMIT_USER_FULL,      /* max_queued_per_user */
};
struct admit_info {
        int64_t queued, high_water, low_water;
        const char *queue;            /* the queue whose own marks said no; NULL: the global marks */
};
enum admit dispatch_admit(struct server *s, uid_t uid, const char *queue, struct admit_info *ret);
/* Queued and in flight, for the global marks. */
int64_t dispatch_queued(struct server *s);
/* What bounds how soon the queue can shrink, which it does only as jobs
 * start: how many entries could start now (runnable ones; those of a
 * paused queue, and entries left from a job since canceled, count too,
 * so it errs towards sooner) and the monotonic ms at which the next
 * delayed job comes due (INT64_MAX: none is delayed). */
void dispatch_drain_outlook(struct server *s, int64_t *ret_runnable, int64_t *ret_next_due_mono_ms);
/* Re-evaluate the global marks (after any change of the counts). */
void dispatch_update_accepting(struct server *s);
/* Is the queue known (configured, paused, or with jobs)? */
bool dispatch_queue_known(struct server *s, const char *name);

/* A submit goes to the store: its place is reserved (counted under the
 * marks until it comes back) and op->submit.early set when its job could
 * start as soon as it is committed. If it is the job dispatch would pick
 * now (a slot is free, nothing in the index is due and eligible, its
 * queue takes another, it waits for no job, names no key that could
 * make it a duplicate and its argv and env are small), a slot starts it
 * at once, up to the barrier,
 * while the commit runs: it execs only once the commit is back
 * (workers_start_submitted). The op is pushed to the store either way.
 * env is the request's parsed env (or NULL), read only during the call. */
void dispatch_submit(struct server *s, struct store_op *op, const json_t *env);
/* The submit came back: out of the reserve, and its job into the queue,
 * or out of the barrier of the slot that took it; a refused one's slot
 * ends it unrun. */
void dispatch_submitted(struct server *s, const struct store_op *op);
void dispatch_retried(struct server *s, const struct store_op *op);
void dispatch_requeued(struct server *s, const struct store_op *op);
void dispatch_start_committed(struct server *s, uid_t uid, uint32_t queue);
/* A queued job was canceled (by a request, or because a job it waited
 * for failed): it leaves the queued set; those waiting for it follow. */
void dispatch_canceled(struct server *s, int64_t id, uid_t uid, const char *queue);
/* A job reached a final state: those waiting for it go on or are canceled. */
void dispatch_ended(struct server *s, int64_t id, int state);
/* A SOP_DEP_CANCEL came back. */
void dispatch_on_store_done(struct server *s, struct store_op *op);

/* Start what the free slots can take (the loop calls it after each batch
 * of completions). */
void dispatch_run(struct server *s);
/* A job of uid in queue started on a slot (counts for fair share and the
 * queue's cap) or its slot was freed. */
void dispatch_slot_begin(struct server *s, uid_t uid, uint32_t queue);
void dispatch_slot_end(struct server *s, uid_t uid, uint32_t queue);
/* The queue number of name, made if new: -ENOSPC, -ENOMEM. */
int dispatch_queue_number(struct server *s, const char *name, uint32_t *ret);

/* Pause or resume one queue (name) or every queue (NULL), once the store
 * has recorded it; the queues listing for replies and stats. */
void dispatch_set_paused(struct server *s, const char *name, bool paused);
json_t *dispatch_queues_json(struct server *s);
/* Add "waiting_for" to a job object: the jobs of after it still waits for. */
void dispatch_annotate(struct server *s, json_t *job, const struct job_rec *j);
