/* The daemon's state, owned by the loop thread. Everything here is
 * touched only from the loop (the store thread has its own struct store
 * and talks through store_push/store_take_done). Each module keeps its
 * part in a struct of its own; this holds them together. */
#pragma once

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "dispatch.h"
#include "idmap.h"
#include "launches.h"
#include "listener.h"
#include "loop.h"
#include "notify.h"
#include "ops.h"
#include "prune.h"
#include "reexec.h"
#include "stats.h"
#include "store.h"
#include "timers.h"
#include "walsync.h"

struct conn;
struct slot;

struct server {
        struct config cfg;
        struct io_uring ring;
        bool ring_ok;
        struct timers timers;

        struct store *store;
        struct reader *reader;
        char *db_path, *output_dir;
        int state_dirfd, output_dirfd, devnull_fd;
        struct launches launches;     /* each slot's pid until its start is committed */

        struct dispatch dp;           /* the queued set (dispatch.h) */
        /* The last job id given (ops.c): a submit takes the next before
         * its commit, so its job can be readied while the commit runs.
         * From the database at start; an id whose submit did not commit
         * (refused, duplicate, or lost with a crash before its commit)
         * is never seen by anyone, so ids only grow. */
        int64_t last_job_id;
        struct idmap waiters;         /* id -> struct req list (waiters.c) */
        struct reject_cache full;     /* ops.c */

        /* Connections: a fixed table of max_clients + root_reserve_clients
         * entries; conn_users counts each non-root uid's (uid + 1 -> n). */
        struct listener lis;
        struct conn **conns;
        unsigned nconns, conn_cap;
        uint32_t conn_gen;
        bool reap_conns;
        struct idmap conn_users;
        /* Every connection sits in this epoll set with no events asked
         * for, so it reports only hang-ups: a client that closed its
         * socket is noticed at once, even while ringqd is not reading it
         * (a pending wait, a stalled pipeline, a half-closed peer). */
        int hup_fd;
        bool hup_armed;

        struct slot *slots;
        unsigned nslots, busy_slots;
        int64_t turnover_exit_us;     /* worker.c: the exit whose slot is being refilled */
        /* How a job's processes are owned: a cgroup each when there is a
         * delegated subtree, else ringqd is their subreaper (procs.h). */
        struct cgroups cg;

        int sig_fd;
        struct signalfd_siginfo sig_buf;
        int store_efd;
        uint64_t efd_buf;

        struct pruner prune;
        struct stats stats;
        struct notifier notify;
        struct walsync wsync;
        /* Submit answers waiting for their early batch's fsync, in
         * batch order (ops.c). */
        struct {
                struct req *head, **tail;
        } held;
        int64_t start_mono_ms;
        /* The time of the completion being handled (loop.h: loop_mono_us). */
        struct {
                int64_t mono_us, wall_ms;
                bool have_mono, have_wall;
        } clk;
        uid_t uid;                    /* ringqd's own uid */

        /* Lifecycle. */
        bool draining, stop;
        struct reexec rx;
        /* The hand-off of the ringqd this process replaced (reexec.h),
         * until server_open has adopted its jobs; NULL on a plain start. */
        json_t *handoff;
        /* The signalfd read is on the ring (loop.c). */
        bool sig_reading;
        struct timer shutdown_timer;
        /* SIGHUP: set by main (the config and flags live there). */
        void (*on_reload)(struct server *s);
};

/* server.c: set-up and tear-down shared by ringqd and the fuzz harness.
 * server_open needs cfg, db_path, state_dirfd, output_dir and output_dirfd set; it
 * opens the store (recovering interrupted jobs), rebuilds the dispatch
 * index, and sets up workers, ring and store thread. On failure
 * *ret_err is one malloc'd line. server_done frees whatever is set. */
void server_init(struct server *s);
int server_open(struct server *s, char **ret_err);
void server_done(struct server *s);
