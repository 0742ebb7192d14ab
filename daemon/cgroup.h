/* A cgroup per job: the way a systemd service owns every process a job
 * starts, including those that call setsid or fork twice.
 *
 * With `Delegate=yes` the service owns its cgroup subtree. ringqd moves
 * itself into a leaf (<base>/daemon, since a cgroup with children may
 * hold no processes) and each job's main process moves itself into
 * <base>/job-<id> before it execs; whatever it starts is born there.
 * cgroup.kill then ends all of them at once, cgroup.events says when the
 * last one is gone, and cpu.stat gives what they used. Without a
 * delegated subtree (ringqd outside systemd, or a unit without Delegate=)
 * the jobs are tracked with a child subreaper instead (procs.h).
 *
 * Only cgroup v2 is used: on a hybrid host that is the hierarchy mounted
 * at .../unified, which has no controllers but all of the above.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroups {
        int dirfd;              /* the base directory; -1: not in use */
        char *path;             /* the same, for messages */
};

/* setting: "auto" (the service's own cgroup when systemd delegated it,
 * else none), "off", or a cgroup v2 directory to use as the base (made
 * if missing; ringqd does not move itself into it). Not finding a
 * delegated cgroup with "auto" is not an error: cg->dirfd stays -1.
 * *ret_err is a malloc'd line on failure. */
int cgroup_open(struct cgroups *cg, const char *setting, char **ret_err);
void cgroup_close(struct cgroups *cg);
static inline bool cgroup_enabled(const struct cgroups *cg) { return cg->dirfd >= 0; }

/* Make job-<id> and return an O_WRONLY fd of its cgroup.procs, which the
 * job's main process writes "0" to before it execs. */
int cgroup_job_create(struct cgroups *cg, int64_t id, int *ret_procs_fd);
/* Send sig to every process of the job: SIGKILL through cgroup.kill
 * (atomic, nothing can fork away), anything else to each member. */
int cgroup_job_signal(struct cgroups *cg, int64_t id, int sig);
/* 1 while any process of the job lives, 0 when none does, or -errno. */
int cgroup_job_populated(struct cgroups *cg, int64_t id);
/* The same, read through an fd of cgroup.events (re-arms its poll). */
int cgroup_events_populated(int fd);
/* An fd of job-<id>/cgroup.events: it polls POLLPRI when it changes. */
int cgroup_job_events_fd(struct cgroups *cg, int64_t id);
/* CPU time (user + system) the job's processes used, in microseconds. */
int cgroup_job_cpu_usec(struct cgroups *cg, int64_t id, uint64_t *ret);
/* Remove job-<id>: -EBUSY while a process of it lives. */
int cgroup_job_remove(struct cgroups *cg, int64_t id);
/* At start-up: kill what every job-* cgroup still holds (an earlier
 * ringqd crashed), wait for it up to timeout_ms, and remove them; the
 * jobs in spare (handed over by a re-exec) are left alone. Returns the
 * number of processes killed. */
int cgroup_sweep(struct cgroups *cg, int timeout_ms, const int64_t *spare, size_t nspare);
