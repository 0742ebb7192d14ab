/* Bringing a server's queue, workers and ring up, and everything down
 * again: the part of start-up that ringqd (main.c) and the in-process
 * fuzz harness share. main.c adds the config, the state dir and its
 * lock, signals, the listener and sd_notify around it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "conn.h"
#include "worker.h"
#include "log.h"
#include "procs.h"
#include "recover.h"
#include "users.h"
#include "util.h"

void server_init(struct server *s)
{
        *s = (struct server){
                .lis = { .fd = -1 }, .sig_fd = -1, .store_efd = -1, .devnull_fd = -1, .hup_fd = -1,
                .state_dirfd = -1, .output_dirfd = -1, .launches = { .fd = -1 }, .cg = { .dirfd = -1 },
        };
        s->held.tail = &s->held.head;
}

/* Schema 1 gave each output file to its job's owner (0640), who could
 * then append to it, chmod it or keep a hard link to it. Once, on the
 * upgrade, every file becomes ringqd's own again (0600). */
static void take_back_output(struct server *s)
{
        int fd = dup(s->output_dirfd), n = 0;
        struct dirent *de;
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

        if (!d) {
                safe_close(fd);
                log_warning_errno(-errno, "output: cannot take the files back from their jobs' owners");
                return;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (fchownat(s->output_dirfd, de->d_name, geteuid(), getegid(), AT_SYMLINK_NOFOLLOW) == 0 &&
                    fchmodat(s->output_dirfd, de->d_name, 0600, 0) == 0)
                        n++;
        }
        closedir(d);
        log_notice("output: %d file(s) of schema 1 are ringqd's own again (0600)", n);
}

/* Output files of ids above the last one the database gave (left by jobs
 * of a database since put back from a backup) would show as the output of
 * the new jobs that get those ids, to their owners: they go at start. */
static void forget_unknown_output(struct server *s)
{
        int fd = dup(s->output_dirfd), n = 0;
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        int64_t last = s->last_job_id;

        if (!d) {
                safe_close(fd);
                log_warning_errno(-errno, "output: cannot look for files of unknown jobs");
                return;
        }
        while ((de = readdir(d))) {
                char *end;
                long long id = strtoll(de->d_name, &end, 10);
                if (end == de->d_name || (strcmp(end, ".out") != 0 && strcmp(end, ".err") != 0) || id <= last)
                        continue;
                if (unlinkat(s->output_dirfd, de->d_name, 0) == 0)
                        n++;
        }
        closedir(d);
        if (n)
                log_notice("output: removed %d file(s) of job ids the database has not given yet "
                           "(it was restored from an older copy)", n);
}

/* A cgroup per job when systemd delegated a subtree (or one is
 * configured), else ringqd adopts what jobs leave behind as their
 * subreaper. Before recovery: an earlier run's job cgroups are emptied
 * first. */
static int setup_job_ownership(struct server *s, const int64_t *spare, size_t nspare, char **ret_err)
{
        int r = cgroup_open(&s->cg, s->cfg.cgroup, ret_err);

        if (r < 0)
                return r;
        if (cgroup_enabled(&s->cg)) {
                r = cgroup_sweep(&s->cg, 2000, spare, nspare);
                if (r > 0)
                        log_notice("killed %d process(es) an earlier ringqd left in %s", r, s->cg.path);
                log_info("jobs run in cgroups under %s", s->cg.path);
                return 0;
        }
        r = procs_subreaper_init();
        if (r < 0)
                return set_error(ret_err, r, "cannot become a child subreaper: %s", strerror(-r));
        log_info("jobs are tracked as ringqd's descendants (no delegated cgroup; cgroup = %s)", s->cfg.cgroup);
        return 0;
}

/* Jobs that may have run although their start never reached the
 * database (launches.h): their starts are committed now, so that
 * recovery finds them running like any other and kills what is left. */
static int replay_launches(struct server *s, char **ret_err)
{
        _cleanup_free_ struct launch_rec *left = NULL;
        size_t n = 0, done = 0;
        int r;

        r = launches_open(&s->launches, s->state_dirfd, &left, &n);
        if (r < 0)
                return set_error(ret_err, r, "%s/%s: %s", s->cfg.state_dir, LAUNCHES_FILE, strerror(-r));
        r = store_replay_starts(s->store, left, n, &done);
        if (r < 0)
                return set_error(ret_err, r, "%s: recording the starts of %zu job(s) left by a crash: %s", s->db_path,
                                 n, strerror(-r));
        if (done > 0)
                log_notice("%zu job(s) had started before a crash but their starts were not yet recorded; "
                           "recovered as interrupted", done);
        return 0;
}

int server_open(struct server *s, char **ret_err)
{
        _cleanup_free_ int64_t *spare = NULL;
        size_t nspare = 0;
        int64_t finished = 0;
        int r;

        *ret_err = NULL;
        s->start_mono_ms = now_mono_ms();
        s->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->devnull_fd < 0)
                return set_error(ret_err, -errno, "/dev/null: %s", strerror(errno));
        r = store_open(s->db_path, &s->cfg, &s->store, ret_err);
        if (r < 0)
                return r;
        /* Jobs a re-exec handed over alive are spared by everything that
         * cleans up after a crash, once each is proven the process it
         * claims to be. */
        if (s->handoff) {
                r = workers_verify_handoff(s, s->handoff, &spare, &nspare);
                if (r < 0)
                        return set_error(ret_err, r, "re-exec hand-off: %s", strerror(-r));
                s->rx.count = (uint64_t)json_integer_value(json_object_get(s->handoff, "reexecs"));
        }
        r = setup_job_ownership(s, spare, nspare, ret_err);
        if (r < 0)
                return r;
        if (store_schema_from(s->store) == 1)
                take_back_output(s);
        /* The ids given so far (recovery gives none); submits count on. */
        r = store_last_id(s->store, &s->last_job_id);
        if (r < 0)
                return set_error(ret_err, r, "%s: reading the last job id: %s", s->db_path, strerror(-r));
        forget_unknown_output(s);
        r = replay_launches(s, ret_err);
        if (r < 0)
                return r;
        r = recover_interrupted(s->store, spare, nspare);
        if (r < 0)
                return set_error(ret_err, r, "%s: recovering interrupted jobs: %s", s->db_path, strerror(-r));
        /* Only now: until the jobs it named are recorded as recovered, a
         * crash must find the records again. */
        launches_reset(&s->launches);
        s->stats.c[C_INTERRUPTED] += (uint64_t)r;
        r = dispatch_init(s);
        if (r < 0)
                return set_error(ret_err, r, "dispatch index: %s", strerror(-r));
        r = dispatch_load(s);
        if (r < 0)
                return set_error(ret_err, r, "%s: loading the queue: %s", s->db_path, strerror(-r));
        r = store_count_finished(s->store, &finished);
        if (r < 0)
                return set_error(ret_err, r, "%s: counting finished jobs: %s", s->db_path, strerror(-r));
        r = reader_open(s->db_path, &s->reader);
        if (r < 0)
                return set_error(ret_err, r, "%s: opening a read connection: %s", s->db_path, strerror(-r));
        s->conn_cap = (unsigned)(s->cfg.max_clients + s->cfg.root_reserve_clients);
        s->conns = calloc(s->conn_cap, sizeof(*s->conns));
        if (!s->conns)
                return set_error(ret_err, -ENOMEM, "connection table: %s", strerror(ENOMEM));
        r = workers_init(s);
        if (r < 0)
                return set_error(ret_err, r, "worker slots: %s", strerror(-r));
        s->hup_fd = epoll_create1(EPOLL_CLOEXEC);
        if (s->hup_fd < 0)
                return set_error(ret_err, -errno, "epoll: %s", strerror(errno));
        s->store_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->store_efd < 0)
                return set_error(ret_err, -errno, "eventfd: %s", strerror(errno));
        r = loop_init(s);
        if (r < 0)
                return set_error(ret_err, r, "io_uring setup: %s", strerror(-r));
        if (s->handoff) {
                r = workers_adopt(s, s->handoff);
                if (r < 0)
                        return set_error(ret_err, r, "adopting running jobs: %s", strerror(-r));
        }
        r = store_start(s->store,
                        &(struct store_waker){ .ring_fd = s->ring.ring_fd,
                                               .ring_data = ud_pack(UD_STORE_RING, 0, 0),
                                               .efd = s->store_efd },
                        s->output_dirfd);
        if (r < 0)
                return set_error(ret_err, r, "store thread: %s", strerror(-r));
        prune_init(s, finished);
        dispatch_update_accepting(s);
        /* Last: what the handed-over clients asked is served at once. */
        if (s->handoff)
                (void)conns_adopt(s, s->handoff);
        return 0;
}

void server_done(struct server *s)
{
        json_decref(s->handoff);
        s->handoff = NULL;
        if (s->conns) {
                conn_close_all(s);
                s->reap_conns = true;
                /* Connections still waiting on ring ops are freed here,
                 * the ring being gone with them. */
                for (unsigned i = 0; i < s->conn_cap; i++)
                        if (s->conns[i])
                                s->conns[i]->ring_ops = 0;
                conn_reap(s);
                free(s->conns);
                s->conns = NULL;
        }
        listener_close(s);
        store_close(s->store);
        s->store = NULL;
        reader_close(s->reader);
        s->reader = NULL;
        workers_done(s);
        launches_close(&s->launches);
        loop_done(s);
        dispatch_done(s);
        idmap_done(&s->waiters);
        idmap_done(&s->conn_users);
        users_flush();
        free(s->full.line);
        s->full = (struct reject_cache){ 0 };
        s->sig_fd = safe_close(s->sig_fd);
        s->store_efd = safe_close(s->store_efd);
        s->hup_fd = safe_close(s->hup_fd);
        s->devnull_fd = safe_close(s->devnull_fd);
        s->output_dirfd = safe_close(s->output_dirfd);
        s->state_dirfd = safe_close(s->state_dirfd);
        cgroup_close(&s->cg);
        free(s->db_path);
        free(s->output_dir);
        s->db_path = s->output_dir = NULL;
        config_done(&s->cfg);
}
