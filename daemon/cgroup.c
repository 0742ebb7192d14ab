/* Job cgroups in a delegated cgroup v2 subtree (see cgroup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "cgroup.h"
#include "log.h"
#include "util.h"

/* Read a small control file below dirfd into buf (NUL-terminated). */
static int read_at(int dirfd, const char *name, char *buf, size_t size)
{
        ssize_t n = read_small_at(dirfd, name, buf, size);

        return n < 0 ? (int)n : 0;
}

static int write_at(int dirfd, const char *name, const char *text)
{
        int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, text, strlen(text)) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* The value after "key " in a flat-keyed file such as cpu.stat. */
static int flat_key(const char *text, const char *key, uint64_t *ret)
{
        size_t kl = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
                        return sscanf(p + kl + 1, "%" SCNu64, ret) == 1 ? 0 : -EBADMSG;
        return -ENOENT;
}

/* Where the cgroup v2 hierarchy is mounted ("/sys/fs/cgroup", or
 * ".../unified" on a hybrid host). */
static int v2_mount(char *buf, size_t size)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char mnt[4096], *sep = strstr(line, " - ");
                if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strlen(mnt) >= size)
                        continue;
                strcpy(buf, mnt);
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

/* ringqd's own cgroup v2 path ("0::/system.slice/ringqd.service"). */
static int own_cgroup(char *buf, size_t size)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                if (strlen(line + 3) < size) {
                        strcpy(buf, line + 3);
                        r = 0;
                }
                break;
        }
        fclose(f);
        return r;
}

/* systemd marks a cgroup it delegated (Delegate=yes) with this xattr. */
static bool delegated(const char *path)
{
        char v[8];
        ssize_t n = getxattr(path, "trusted.delegate", v, sizeof(v));

        if (n <= 0)
                n = getxattr(path, "user.delegate", v, sizeof(v));
        return n == 1 && v[0] == '1';
}

int cgroup_open(struct cgroups *cg, const char *setting, char **ret_err)
{
        char mnt[1024], own[2048], path[4096];
        int fd, r;

        *cg = (struct cgroups){ .dirfd = -1 };
        *ret_err = NULL;
        if (strcmp(setting, "off") == 0)
                return 0;
        if (strcmp(setting, "auto") == 0) {
                if (v2_mount(mnt, sizeof(mnt)) < 0 || own_cgroup(own, sizeof(own)) < 0 || strcmp(own, "/") == 0)
                        return 0;
                snprintf(path, sizeof(path), "%s%s", mnt, own);
                /* After a re-exec ringqd is already in the leaf it moved
                 * into (below): the delegated cgroup is its parent. */
                if (!delegated(path)) {
                        char *leaf = strrchr(path, '/');
                        if (!leaf || strcmp(leaf, "/daemon") != 0)
                                return 0;
                        *leaf = '\0';
                        if (!delegated(path))
                                return 0;
                }
        } else {
                if (strlen(setting) >= sizeof(path))
                        return set_error(ret_err, -ENAMETOOLONG, "cgroup %s: name too long", setting);
                strcpy(path, setting);
                r = mkdir_p(path, 0755);
                if (r < 0)
                        return set_error(ret_err, r, "cgroup %s: %s", path, strerror(-r));
        }
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error(ret_err, -errno, "cgroup %s: %s", path, strerror(errno));
        if (faccessat(fd, "cgroup.procs", W_OK, 0) < 0) {
                r = -errno;
                close(fd);
                return set_error(ret_err, r, "cgroup %s is not a cgroup v2 directory ringqd may use: %s", path,
                                 strerror(-r));
        }
        if (strcmp(setting, "auto") == 0) {
                /* A cgroup with children may hold no processes of its
                 * own: ringqd moves into a leaf beside the jobs' ones. */
                if (mkdirat(fd, "daemon", 0755) < 0 && errno != EEXIST)
                        r = -errno;
                else
                        r = write_at(fd, "daemon/cgroup.procs", "0");
                if (r < 0) {
                        close(fd);
                        return set_error(ret_err, r, "cgroup %s/daemon: cannot move ringqd there: %s", path,
                                         strerror(-r));
                }
        }
        cg->path = strdup(path);
        if (!cg->path) {
                close(fd);
                return -ENOMEM;
        }
        cg->dirfd = fd;
        return 0;
}

void cgroup_close(struct cgroups *cg)
{
        cg->dirfd = safe_close(cg->dirfd);
        free(cg->path);
        cg->path = NULL;
}

static void job_name(char *buf, size_t size, int64_t id, const char *file)
{
        snprintf(buf, size, "job-%" PRId64 "%s%s", id, file ? "/" : "", file ? file : "");
}

int cgroup_job_create(struct cgroups *cg, int64_t id, int *ret_procs_fd)
{
        char name[64];
        int fd;

        job_name(name, sizeof(name), id, NULL);
        /* It may exist: an attempt whose last process would not die is
         * still in it. The new attempt joins it, and its end kills both. */
        if (mkdirat(cg->dirfd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        job_name(name, sizeof(name), id, "cgroup.procs");
        fd = openat(cg->dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_procs_fd = fd;
        return 0;
}

int cgroup_job_signal(struct cgroups *cg, int64_t id, int sig)
{
        char name[64], buf[65536];
        int r;

        if (sig == SIGKILL) {
                job_name(name, sizeof(name), id, "cgroup.kill");
                r = write_at(cg->dirfd, name, "1");
                if (r != -ENOENT)
                        return r;
                /* A kernel before 5.14 has no cgroup.kill: each member. */
        }
        job_name(name, sizeof(name), id, "cgroup.procs");
        r = read_at(cg->dirfd, name, buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *p = buf; *p;) {
                char *end;
                long pid = strtol(p, &end, 10);
                if (end == p)
                        break;
                if (pid > 1)
                        (void)kill((pid_t)pid, sig);
                p = end + strspn(end, "\n");
        }
        return 0;
}

int cgroup_job_populated(struct cgroups *cg, int64_t id)
{
        char name[64], buf[256];
        uint64_t v;
        int r;

        job_name(name, sizeof(name), id, "cgroup.events");
        r = read_at(cg->dirfd, name, buf, sizeof(buf));
        if (r < 0)
                return r;
        r = flat_key(buf, "populated", &v);
        return r < 0 ? r : v != 0;
}

int cgroup_events_populated(int fd)
{
        char buf[256];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        uint64_t v;
        int r;

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        r = flat_key(buf, "populated", &v);
        return r < 0 ? r : v != 0;
}

int cgroup_job_events_fd(struct cgroups *cg, int64_t id)
{
        char name[64];
        int fd;

        job_name(name, sizeof(name), id, "cgroup.events");
        fd = openat(cg->dirfd, name, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int cgroup_job_cpu_usec(struct cgroups *cg, int64_t id, uint64_t *ret)
{
        char name[64], buf[1024];
        int r;

        job_name(name, sizeof(name), id, "cpu.stat");
        r = read_at(cg->dirfd, name, buf, sizeof(buf));
        return r < 0 ? r : flat_key(buf, "usage_usec", ret);
}

int cgroup_job_remove(struct cgroups *cg, int64_t id)
{
        char name[64];

        job_name(name, sizeof(name), id, NULL);
        return unlinkat(cg->dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int cgroup_sweep(struct cgroups *cg, int timeout_ms, const int64_t *spare, size_t nspare)
{
        DIR *d;
        struct dirent *de;
        int64_t *ids = NULL;
        size_t n = 0, cap = 0;
        int fd, killed = 0;

        if (!cgroup_enabled(cg))
                return 0;
        fd = dup(cg->dirfd);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        while ((de = readdir(d))) {
                int64_t id;
                char end;
                if (sscanf(de->d_name, "job-%" SCNd64 "%c", &id, &end) != 1 || id_in(spare, nspare, id))
                        continue;
                if (grow_array((void **)&ids, &cap, n + 1, sizeof(*ids)) < 0)
                        break;
                ids[n++] = id;
        }
        closedir(d);
        for (size_t i = 0; i < n; i++) {
                char name[64], buf[65536];
                job_name(name, sizeof(name), ids[i], "cgroup.procs");
                if (read_at(cg->dirfd, name, buf, sizeof(buf)) == 0)
                        for (char *p = buf; *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                                killed += *p != '\n';
                (void)cgroup_job_signal(cg, ids[i], SIGKILL);
        }
        /* Killed processes leave their cgroup within moments, unless one
         * is stuck in the kernel (a dead NFS server): bounded. */
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                bool busy = false;
                for (size_t i = 0; i < n; i++)
                        if (ids[i] > 0 && cgroup_job_remove(cg, ids[i]) == -EBUSY)
                                busy = true;
                        else
                                ids[i] = -1;
                if (!busy)
                        break;
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
        for (size_t i = 0; i < n; i++)
                if (ids[i] > 0)
                        log_warning("cgroup %s/job-%" PRId64 ": processes would not die; left in place", cg->path,
                                    ids[i]);
        free(ids);
        return killed;
}
