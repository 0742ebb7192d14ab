/* Launch records: a job's pid, kept where a crash of ringqd cannot lose
 * it, from before the job execs until its start is committed.
 *
 * A job may exec only when a crash of ringqd can no longer leave it
 * running unknown to the next ringqd, which must kill what is left of
 * it. The database says so only after the start's commit: a round trip
 * to the store thread that stood in each slot's path from one job's exit
 * to the next job's exec. Instead, before a slot lets its child exec, the
 * loop writes the job's id and pid into the slot's record in a small file
 * of the state directory, mapped shared. A store to a shared file mapping
 * is in the page cache at once and outlives the process that made it
 * (kill -9, a crash); a power cut takes it, and the job's processes with
 * it, which is why the file is never fsynced. The start is committed
 * behind the exec, and the record cleared when it is, or when the slot is
 * free again (its processes dead).
 *
 * At start-up, a record left by a crash during this boot names a job that
 * may have run although its start was never committed: server_open
 * commits that start (store_replay_starts), then recovery treats the job
 * as every other it finds running. A record from another boot names
 * processes that are gone with it, and is dropped.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* One slot's record, as it is in the file. */
struct launch_rec {
        int64_t job_id;        /* 0: none */
        int64_t queued_seq;    /* the job's queued_seq when it was picked */
        int64_t started_at;    /* wall ms, the start's started_at */
        int32_t pid;           /* 0 until the child exists */
        int32_t unused;
};

#define LAUNCHES_FILE "launches"
/* One record per slot; workers is at most this (config.c). */
#define LAUNCHES_MAX 1024

struct launches {
        int fd;
        void *map;             /* header, then LAUNCHES_MAX records */
        struct launch_rec *rec;
};

/* Open (creating it 0600) dirfd/LAUNCHES_FILE and map it. *ret_left gets
 * a copy of the records that a ringqd of this boot left with a pid,
 * *ret_n their count (the caller frees *ret_left); nothing is cleared
 * until launches_reset. Returns 0 or a negative errno. */
int launches_open(struct launches *l, int dirfd, struct launch_rec **ret_left, size_t *ret_n);
/* Clear every record and stamp the file with this boot: after what was
 * left has been committed. */
void launches_reset(struct launches *l);
void launches_close(struct launches *l);

/* Slot i's record, written after clone and before the child may exec
 * (the pid last), and cleared. i < LAUNCHES_MAX. */
void launches_set(struct launches *l, unsigned i, int64_t job_id, int64_t queued_seq, int64_t started_at, pid_t pid);
void launches_clear(struct launches *l, unsigned i);
