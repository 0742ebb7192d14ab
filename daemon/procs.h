/* Owning a job's processes without cgroups: a child subreaper.
 *
 * ringqd and each job's main process are child subreapers
 * (PR_SET_CHILD_SUBREAPER). While the main process lives, a process of
 * the job that is orphaned (a double fork, a daemon that detaches) is
 * re-parented to it, not to init, so every process of the job stays in
 * the tree below it, whatever session or process group it moved to:
 * procs_signal_tree reaches them all. When the main process exits, what
 * it leaves is re-parented to ringqd; any child of ringqd that is not the
 * main process of a running job (nor a helper of ringqd's own) is such a
 * leftover, and procs_sweep kills and reaps it.
 *
 * A job may clear the subreaper flag of its main process; then its
 * orphans reach ringqd while the job runs, and the next sweep ends them
 * early. That only ever harms the job that did it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pstat {
        char state;              /* R, S, D, Z... */
        pid_t ppid, pgrp, sid;
        uint64_t starttime;      /* clock ticks after boot: with the pid, one process for good */
};
/* What /proc/<pid>/stat says of a process: 0, or -errno. */
int procs_read_stat(pid_t pid, struct pstat *ret);
/* The RINGQ_JOB_ID in the environment pid started with: 0 and *ret_id,
 * -ENOENT if it has none (it may have exec'd with a clean one), or
 * another -errno if it cannot be read. */
int procs_job_id(pid_t pid, int64_t *ret_id);

/* Make ringqd a child subreaper. */
int procs_subreaper_init(void);
/* Send sig to root and every descendant of it. Returns how many got it. */
int procs_signal_tree(pid_t root, int sig);
/* Reap every child of ringqd for which keep() is false that is gone,
 * and (signal_them) SIGKILL the rest with their descendants. Returns how many
 * of those children were alive. */
int procs_sweep(bool (*keep)(void *ud, pid_t pid), void *ud, bool signal_them);
