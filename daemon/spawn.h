/* Starting a job's process cheaply and safely.
 *
 * The child is created with clone(CLONE_VM): it shares ringqd's memory
 * instead of copying its page tables (the cost of fork grows with the
 * daemon's address space, e.g. a million-job dispatch index), and unlike
 * vfork the loop is not suspended: the child sets itself up and waits at
 * a barrier until ringqd has written its pid into the slot's launch
 * record (launches.h), where a crash of ringqd cannot lose it. Only then
 * does it exec; if ringqd dies before, the barrier pipe reads EOF and the
 * child exits without running anything. So a crash can never leave a
 * running job that the next ringqd cannot find.
 *
 * Sharing memory means the child may touch nothing but its own stack and
 * the read-only struct spawn_args: it makes raw system calls only (no
 * libc wrappers, which set errno in the parent's thread-local storage)
 * and is built without sanitizer instrumentation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct spawn_args {
        char *const *argv;
        char *const *envp;
        char *const *paths;      /* execve candidates, in PATH order */
        const char *cwd;
        bool set_creds;          /* drop to uid/gid/groups (root only) */
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        size_t ngroups;
        int fd_in, fd_out, fd_err;
        int barrier_r, barrier_w;
        int err_w;               /* child writes an errno here on failure */
        int cgroup_procs;        /* the job cgroup's cgroup.procs; -1: none */
        bool subreaper;          /* the job's orphans stay below its main process */
        /* Its owner's login limits and nice value, set while the child is
         * still root (raising a hard limit needs that). */
        struct rlimit rl[RLIM_NLIMITS];
        /* What the child must change of what it inherits from ringqd
         * (spawn_inherit): the limits in rl that differ from ringqd's
         * own (bit i: limit i), and the signals ringqd does not leave at
         * their default (bit sig - 1). */
        uint32_t rl_set;
        uint64_t sig_reset;
        int nice;
        unsigned umask;
        pid_t parent;
};

/* Read ringqd's own limits and signal dispositions, once, after it has
 * set both up: it changes neither afterwards, and installs no handler
 * later. A child then makes only the system calls that change something:
 * 22 from its clone to its exec, where putting back every signal and
 * every limit made 95. */
void spawn_capture_parent(void);
/* Fill a->rl_set and a->sig_reset for the limits already in a->rl. */
void spawn_inherit(struct spawn_args *a);

/* Child exit status when it failed before exec (the errno is in err_w). */
#define SPAWN_FAILED_STATUS 127

/* Start the child on the given stack. Everything in *a must stay valid
 * and unchanged until the child has exec'd or exited. *ret_pidfd is -1
 * when the child was forked without one (under valgrind). */
int spawn_clone(const struct spawn_args *a, void *stack, size_t stack_size,
                pid_t *ret_pid, int *ret_pidfd);
