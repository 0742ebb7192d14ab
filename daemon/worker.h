/* Worker slots: a fixed number of jobs run at once, each watched through
 * its pidfd and its two output pipes on the ring.
 *
 * Life of a slot (each step says why it exists):
 *   free       nothing runs.
 *   starting   the child exists but waits at the barrier until the
 *              store has committed state=running with its pid.
 *   running    barrier released: the job runs; its timeout is armed.
 *   stopping   SIGTERM sent to the process group (timeout, cancel,
 *              shutdown); SIGKILL follows after kill_grace.
 *   reaped     the main process has exited and was reaped; every other
 *              process of the job was SIGKILLed (its cgroup, or its
 *              process group and what ringqd adopted as subreaper); the
 *              pipes are drained and the cgroup emptied (bounded by a
 *              short deadline, since a process may hang in the kernel).
 * A slot is freed only when the child is reaped, both pipes are closed,
 * its cgroup is empty, no ring op references it and its START op is back
 * from the store.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server.h"
#include "spawn.h"
#include "timers.h"

enum end_reason {
        END_NONE,
        END_TIMEOUT,
        END_CANCELED,
        END_INTERRUPTED,
};

struct stream {
        int pipe_r, file_fd;
        uint64_t kept;           /* bytes written to the file */
        bool eof, reading, writing, truncated;
        char *buf;
        size_t wlen, woff;       /* pending file write: buf[woff, wlen) */
};

struct slot {
        struct server *srv;
        unsigned idx;
        uint32_t gen;
        bool active;

        int64_t job_id, owner_uid;
        int priority, attempts_before, max_attempts;
        int64_t backoff_ms, timeout_ms, run_at, submitted_at;
        char *argv0, *queue;     /* for its log lines */

        pid_t pid;
        int pidfd, barrier_w, err_r;
        bool start_pending, started, start_failed, released, reaped;
        /* Its cgroup (cgroup.h): the end waits until the last process in
         * it is gone (bounded by the drain deadline), then reads what
         * they used and removes it. */
        bool in_cgroup, cg_wait;
        int cg_events;
        int64_t cpu_ms, max_rss_kb;     /* -1: unknown */
        enum end_reason end;
        int kill_stage;          /* 0, 1: SIGTERM sent, 2: SIGKILL sent */
        int exit_code, signal, spawn_errno;
        int64_t started_wall_ms, started_mono_us;
        struct timer timer;      /* timeout, kill grace, drain deadline */
        unsigned ring_ops;
        struct stream st[2];     /* stdout, stderr */

        /* Read by the clone child until it execs; freed with the slot. */
        void *stack;
        struct spawn_args args;
        char **argv, **envp, **paths;
        char *cwd;
        gid_t *groups;
};
