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
#include <limits.h>
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
        int64_t v;

        return procs_job_id(pid, &v) == 0 && v == id;
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

int recover_interrupted(struct store *st, const int64_t *spare, size_t nspare)
{
        struct interrupted *v = NULL;
        int64_t *run_at = NULL, now = now_wall_ms();
        size_t n = 0, requeued = 0, refunded = 0, kept = 0;
        int r, killed = 0;

        r = store_list_running(st, &v, &n);
        for (size_t i = 0; r == 0 && i < n; i++)
                if (!id_in(spare, nspare, v[i].id))
                        v[kept++] = v[i];
        n = kept;
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
        }
        r = store_mark_interrupted(st, v, n, run_at, now);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                requeued += v[i].again;
                refunded += v[i].refunded;
        }
        log_notice("recovered %zu interrupted job(s): %zu requeued (%zu without spending an attempt), %zu failed; "
                   "%d leftover process(es) killed",
                   n, requeued, refunded, n - requeued, killed);
        r = (int)MIN(n, (size_t)INT_MAX);
out:
        free(v);
        free(run_at);
        return r;
}
