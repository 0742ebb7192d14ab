/* Finding and killing what an earlier ringqd left running.
 *
 * The database holds each running job's pid, committed before the job
 * could exec (see spawn.h), and that pid is also the id of the job's
 * process group and session. The main process died with ringqd
 * (PR_SET_PDEATHSIG); its descendants may live on in the group. A group
 * or session id cannot be given to a new process while any member lives,
 * so members found under it are the job's. The one ambiguous case is a
 * live process whose pid equals the recorded one: that is either the
 * job's own main process or a stranger that got the recycled pid, and
 * its environment (RINGQ_JOB_ID) tells which.
 *
 * Except when the record is old: a database put back from a backup may
 * name a pid that has since been the leader of a stranger's group or
 * session, whose leader is gone and whose members live on. So every
 * member must carry the job's RINGQ_JOB_ID too; a process of the job
 * that dropped its environment is left alone (with a cgroup per job,
 * the cgroup is swept instead, and it spares nothing).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "procs.h"
#include "recover.h"

/* Does the process's environment hold RINGQ_JOB_ID=<id>? */
static bool has_job_env(pid_t pid, int64_t id)
{
        char path[64], want[48], buf[65536];
        size_t wl;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        wl = (size_t)snprintf(want, sizeof(want), "RINGQ_JOB_ID=%" PRId64, id) + 1; /* with its NUL */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf));
        close(fd);
        for (ssize_t i = 0; n > 0 && i + (ssize_t)wl <= n;) {
                if (memcmp(buf + i, want, wl) == 0 && (i == 0 || buf[i - 1] == '\0'))
                        return true;
                char *z = memchr(buf + i, '\0', (size_t)(n - i));
                if (!z)
                        break;
                i = z - buf + 1;
        }
        return false;
}

static int sweep(pid_t pgid, int64_t id, bool first)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        int hit = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                struct pstat ps;
                pid_t pid;
                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                pid = (pid_t)atoi(de->d_name);
                if (procs_read_stat(pid, &ps) < 0 || ps.state == 'Z' || ps.state == 'X')
                        continue;
                if (ps.pgrp != pgid && ps.sid != pgid)
                        continue;
                if (!has_job_env(pid, id)) {
                        if (first)
                                log_notice("job %" PRId64 ": pid %d is in its old group or session but not of the job; "
                                           "leaving it alone", id, (int)pid);
                        continue;
                }
                if (kill(pid, SIGKILL) == 0)
                        hit++;
        }
        closedir(d);
        return hit;
}

int recover_kill_job(pid_t pgid, int64_t id, int timeout_ms)
{
        struct pstat ps;
        int total = 0;

        if (pgid <= 1)
                return 0;
        if (procs_read_stat(pgid, &ps) == 0 && ps.state != 'Z' && !has_job_env(pgid, id)) {
                log_notice("job %" PRId64 ": pid %d now belongs to another program; leaving it alone", id, (int)pgid);
                return 0;
        }
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                int n = sweep(pgid, id, waited == 0);
                if (n <= 0)
                        break;
                total += n;
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
        return total;
}

int recover_interrupted(struct store *st)
{
        struct interrupted *v = NULL;
        int64_t *run_at = NULL, now = now_wall_ms();
        size_t n = 0, requeued = 0;
        int r, killed = 0;

        r = store_list_running(st, &v, &n);
        if (r < 0 || n == 0)
                goto out;
        run_at = calloc(n, sizeof(*run_at));
        if (!run_at) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                killed += recover_kill_job((pid_t)v[i].pid, v[i].id, 2000);
                run_at[i] = now;
                requeued += v[i].attempts < v[i].max_attempts;
        }
        r = store_mark_interrupted(st, v, n, run_at, now);
        if (r == 0)
                log_notice("recovered %zu interrupted job(s): %zu requeued, %zu failed; %d leftover process(es) killed",
                           n, requeued, n - requeued, killed);
out:
        free(v);
        free(run_at);
        return r;
}
