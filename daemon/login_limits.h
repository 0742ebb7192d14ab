/* A job owner's login resource limits (limits.conf, limits.d) applied
 * to its jobs, as cron and atd do, through a PAM session (pam_limits).
 *
 * pam_limits sets the limits of the process that opens the session, so
 * ringqd never opens one itself: a helper process (ringqd re-executed
 * with --limits-helper) forks a short-lived child per request, which
 * starts from ringqd's start-up limits (the "base"), opens and closes a
 * session of ringqd's PAM service ("ringq") for the user and sends back what it
 * ended with. A fresh child per request, not the helper itself, because
 * a session can lower hard limits, raise the nice value and set
 * no_new_privs, none of which can be undone without CAP_SYS_RESOURCE
 * and CAP_SYS_NICE (not in ringqd's bounding set). Results are cached
 * per uid for a minute; any failure gives the job the base.
 *
 * Not thread-safe: call everything from the loop thread, which lives as
 * long as ringqd (the helper's death signal follows the thread that
 * started it).
 */
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

struct job_limits {
        struct rlimit rl[RLIM_NLIMITS];   /* indexed by RLIMIT_* */
        int nice;                         /* -20..19 */
};

/* Record ringqd's own limits and nice value as every job's starting
 * point. Call first in main, before anything is raised (if it is never
 * called, the first use records them, raised or not). */
void limits_capture_base(void);
const struct job_limits *limits_base(void);

/* Turn PAM on with the PAM service file `service` in `confdir` (NULL:
 * PAM's default, /etc/pam.d) and start the helper. PAM stays off (every
 * job gets the base; returns 0) when not root, when service is NULL or
 * "", or when the service file is missing (logged once). -EINVAL for a
 * service name with '/' or too long, or a confdir empty or too long.
 * If the helper cannot be started, returns its negative errno with
 * *ret_err set; PAM stays on and the helper is started again at the
 * next miss. Calling it again first stops what the last call started. */
int limits_start(const char *service, const char *confdir, char **ret_err);

/* What a job of uid (named user) gets: the cached answer, or one round
 * trip to the helper bounded by one second. Any failure (helper dead or
 * too slow, PAM error) gives the base and a warning, at most one a
 * minute. gid is not used: pam_limits reads the user's groups from the
 * group database. Returns 0, or -EINVAL for a NULL
 * argument or a user name longer than 255 bytes. */
int limits_for(uid_t uid, gid_t gid, const char *user, struct job_limits *ret);

/* Forget every cached answer (configuration reload). */
void limits_flush(void);
/* Close the helper's socket, SIGTERM it and reap it. */
void limits_stop(void);
/* The helper's pid, -1 if there is none. It is reaped here, never by
 * the caller's own reaping of jobs. */
pid_t limits_helper_pid(void);

/* The helper: `ringqd --limits-helper` runs this with its socket on fd.
 * Returns 0 when ringqd closes the socket or is gone, a negative errno
 * on a malformed request or a failed read. */
int limits_helper_main(int fd);
