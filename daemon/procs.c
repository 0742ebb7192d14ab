/* The child-subreaper fallback (see procs.h). Children are found through
 * /proc/<pid>/task/<tid>/children, which lists each thread's children. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "procs.h"
#include "util.h"

/* Enough for any real job; a fork bomb beyond it is still stopped by the
 * next pass or, at the end, by the sweep. */
#define TREE_MAX 4096

int procs_read_stat(pid_t pid, struct pstat *ret)
{
        char path[64], buf[1024], *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        n = read_small_at(AT_FDCWD, path, buf, sizeof(buf));
        if (n <= 0)
                return n < 0 ? (int)n : -EIO;
        /* comm may hold spaces and parentheses: parse after the last ')'. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %d %d %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %" SCNu64,
                         &ret->state, &ret->ppid, &ret->pgrp, &ret->sid, &ret->starttime) != 5)
                return -EIO;
        return 0;
}

int procs_job_id(pid_t pid, int64_t *ret_id)
{
        static const char key[] = "RINGQ_JOB_ID=";
        char path[64], buf[65536];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        n = read_small_at(AT_FDCWD, path, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        for (char *e = buf; e < buf + n; e += strlen(e) + 1)
                if (strncmp(e, key, sizeof(key) - 1) == 0) {
                        char *end;
                        long long v = strtoll(e + sizeof(key) - 1, &end, 10);
                        if (*end)
                                return -EINVAL;
                        *ret_id = v;
                        return 0;
                }
        return -ENOENT;
}

static bool alive(pid_t pid)
{
        struct pstat ps;

        return procs_read_stat(pid, &ps) == 0 && ps.state != 'Z' && ps.state != 'X';
}

int procs_subreaper_init(void)
{
        return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* Append the children listed in /proc/<pid>/task/<tid>/children. */
static void add_task_children(pid_t pid, const char *tid, pid_t *v, size_t *n, size_t max)
{
        char path[64], buf[8192];

        snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, tid);
        if (read_small_at(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
                return;
        for (char *p = buf, *end; *n < max; p = end) {
                long c = strtol(p, &end, 10);
                if (end == p)
                        break;
                if (c > 1)
                        v[(*n)++] = (pid_t)c;
        }
}

/* Append the children of every thread of pid to v[*n..max). */
static void add_children(pid_t pid, pid_t *v, size_t *n, size_t max)
{
        char path[64];
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        d = opendir(path);
        if (!d)
                return;
        while ((de = readdir(d)) && *n < max)
                if (de->d_name[0] != '.')
                        add_task_children(pid, de->d_name, v, n, max);
        closedir(d);
}

int procs_signal_tree(pid_t root, int sig)
{
        pid_t *v = malloc(TREE_MAX * sizeof(*v));
        size_t n = 0, done = 0;
        int hit = 0;

        if (!v)
                return kill(root, sig) == 0;
        v[n++] = root;
        /* Children are read before their parent is signalled: a parent
         * that dies hands its children on, and they would drop out of
         * its list before we read it. */
        while (done < n) {
                pid_t p = v[done++];
                add_children(p, v, &n, TREE_MAX);
                if (kill(p, sig) == 0)
                        hit++;
        }
        free(v);
        return hit;
}

int procs_sweep(bool (*keep)(void *ud, pid_t pid), void *ud, bool signal_them)
{
        pid_t kids[1024];
        size_t n = 0;
        int alive_n = 0;
        char self[16];

        /* Orphans are handed to a live thread of the subreaper, which is
         * ringqd's main thread (it runs the loop), and the jobs are
         * cloned from it too; other threads never fork. */
        snprintf(self, sizeof(self), "%d", (int)getpid());
        add_task_children(getpid(), self, kids, &n, ELEMENTSOF(kids));
        for (size_t i = 0; i < n; i++) {
                siginfo_t si = { 0 };
                if (keep(ud, kids[i]))
                        continue;
                /* A zombie only needs reaping; count the live ones. */
                alive_n += alive(kids[i]);
                if (signal_them)
                        (void)procs_signal_tree(kids[i], SIGKILL);
                /* Reap it if it is gone already; if not, its SIGCHLD
                 * brings us back here. */
                (void)waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOHANG);
        }
        return alive_n;
}
