/* The daemon's state, owned by the loop thread. Everything here is
 * touched only from the loop (the store thread has its own struct store
 * and talks through store_push/store_take_done). */
#pragma once

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "idmap.h"
#include "qindex.h"
#include "stats.h"
#include "store.h"
#include "timers.h"

/* user_data codec: op in the top byte, a 24-bit generation, a 32-bit
 * slot. A completion for a connection or worker slot that has since
 * been reused carries the old generation and is recognised as stale. */
enum ud_op {
        UD_NONE,
        UD_ACCEPT,
        UD_RECV,
        UD_SEND,
        UD_SIGNAL,
        UD_STORE,
        UD_PIDFD,
        UD_PIPE_READ,
        UD_FILE_WRITE,
        UD_HUP,         /* the epoll set that reports clients gone */
        UD_CGROUP,      /* a job cgroup's cgroup.events changed */
        UD_IGNORE,      /* cancel requests: nothing to do on completion */
        _UD_MAX,
};

static inline uint64_t ud_pack(enum ud_op op, uint32_t slot, uint32_t gen)
{
        return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | slot;
}
static inline enum ud_op ud_op(uint64_t ud) { return (enum ud_op)(ud >> 56); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud; }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }

struct conn;
struct slot;
struct ucred;
struct req;

struct server {
        struct config cfg;
        char *config_path;           /* for reload; NULL: none given */
        struct io_uring ring;
        bool ring_ok;
        struct timers timers;

        struct store *store;
        struct reader *reader;
        char *db_path, *output_dir;
        int state_dirfd, output_dirfd, devnull_fd;

        /* Dispatch: the queued set, its per-user counts and fair share. */
        struct qindex qi;
        struct idmap waiters;         /* id -> struct req list */
        int64_t reserved;             /* submits handed to the store */
        struct idmap user_reserved;   /* uid + 1 -> the part of reserved a
                                       * non-root uid sent */
        bool accepting;               /* high/low-water hysteresis */
        /* The last queue_full reply line and what it said: queued,
         * retry_after_ms, high and low water (ops.c). */
        char *full_line;
        size_t full_len;
        int64_t full_key[4];
        struct timer dispatch_timer;  /* next delayed job comes due */
        bool dispatch_blocked;        /* spawn failed for lack of resources */

        /* Connections: a fixed table of max_clients + root_reserve_clients
         * entries; conn_users counts each non-root uid's (uid + 1 -> n). */
        int listen_fd;
        bool listen_activated;        /* passed by systemd: never unlink */
        dev_t sock_dev;               /* the path we bound, to unlink */
        ino_t sock_ino;               /* only our own socket at exit */
        bool accept_armed;
        struct timer accept_timer;    /* re-arm after EMFILE */
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
        /* How a job's processes are owned: a cgroup each when there is a
         * delegated subtree, else ringqd is their subreaper (procs.h). */
        struct cgroups cg;

        int sig_fd;
        struct signalfd_siginfo sig_buf;
        int store_efd;
        uint64_t efd_buf;

        /* Pruning of finished jobs (prune.c). */
        int64_t finished;             /* finished rows in the database */
        bool prune_inflight;
        struct timer prune_timer;

        struct stats stats;
        int64_t start_mono_ms;
        uid_t uid;                    /* ringqd's own uid */

        /* Lifecycle. */
        bool draining, stop, force_kill;
        struct timer shutdown_timer;
        int exit_code;

        /* sd_notify */
        bool notify_enabled;
        int64_t status_sent_mono_ms;
        bool status_dirty, last_accepting;
        struct timer status_timer;
        uint64_t watchdog_usec;
        struct timer watchdog_timer;
        bool reloading;
        /* SIGHUP: set by main (the config and flags live there). */
        void (*on_reload)(struct server *s);
};

/* server.c: set-up and tear-down shared by ringqd and the fuzz harness.
 * server_open needs cfg, db_path, output_dir and output_dirfd set; it
 * opens the store (recovering interrupted jobs), rebuilds the dispatch
 * index, and sets up workers, ring and store thread. On failure
 * *ret_err is one malloc'd line. server_done frees whatever is set. */
void server_init(struct server *s);
int server_open(struct server *s, char **ret_err);
void server_done(struct server *s);

/* loop.c */
int loop_init(struct server *s);
int loop_run(struct server *s);
/* One turn: submit, wait for a completion or the earliest timer (at most
 * max_wait_ms unless negative), handle the batch, run due timers, free
 * closed connections. Returns completions handled or a negative errno. */
int loop_turn(struct server *s, int64_t max_wait_ms);
/* Keep a read armed on the store's eventfd. */
void loop_arm_store(struct server *s);
void loop_done(struct server *s);
struct io_uring_sqe *get_sqe(struct server *s);
void loop_arm_timer(struct server *s, struct timer *t, int64_t due_ms);

/* listener.c */
int listener_open(struct server *s, char **ret_err);
void listener_arm(struct server *s);
void listener_stop(struct server *s);
void listener_on_accept(struct server *s, struct io_uring_cqe *cqe);
void listener_close(struct server *s);

/* conn.c */
void conn_on_recv(struct server *s, struct io_uring_cqe *cqe);
void conn_on_send(struct server *s, struct io_uring_cqe *cqe);
void conn_on_hup(struct server *s, struct io_uring_cqe *cqe);
void conn_arm_hup(struct server *s);
/* Whether a client of uid may have one more connection now: 0, or the
 * error to refuse it with (-EBUSY: max_clients, -EUSERS: its own cap). */
int conn_admit(struct server *s, uid_t uid);
int conn_new(struct server *s, int fd, const struct ucred *cred);
void conn_close_all(struct server *s);
void conn_reap(struct server *s);

/* ops.c: request handling */
void ops_on_store_done(struct server *s);
struct job_rec;
/* waiters.c: job id ended; answer its waiters with row (NULL: read it). */
void ops_job_final(struct server *s, int64_t id, const struct job_rec *row);
void ops_update_accepting(struct server *s);
void ops_fail_waiters(struct server *s);

/* worker.c */
int workers_init(struct server *s);
void workers_done(struct server *s);
void workers_dispatch(struct server *s);
/* Rebuild the dispatch index (and s->queued) from the database. */
int workers_load_queue(struct server *s);
void worker_on_pidfd(struct server *s, struct io_uring_cqe *cqe);
void workers_on_sigchld(struct server *s);
/* Kill and reap what ended jobs left behind (subreaper mode). */
void workers_sweep_orphans(struct server *s);
void worker_on_cgroup(struct server *s, struct io_uring_cqe *cqe);
void worker_on_pipe_read(struct server *s, struct io_uring_cqe *cqe);
void worker_on_file_write(struct server *s, struct io_uring_cqe *cqe);
void worker_on_store_done(struct server *s, struct store_op *op);
/* Cancel a running job; returns 0, -ENOENT if it is not running here,
 * -EPERM if uid may not. */
int workers_cancel(struct server *s, int64_t id, uid_t uid);
void workers_stop_all(struct server *s, bool hard);
unsigned workers_busy(struct server *s);

/* prune.c */
void prune_init(struct server *s, int64_t finished);
/* delta finished jobs appeared (or, negative, went back to queued). */
void prune_note_finished(struct server *s, int64_t delta);
void prune_on_done(struct server *s, struct store_op *op);

/* notify.c */
void notify_init(struct server *s);
void notify_ready(struct server *s);
void notify_stopping(struct server *s);
void notify_reloading(struct server *s);
/* Mark the status line changed; sent at once on an accepting/rejecting
 * switch, else at most once a second. */
void notify_status(struct server *s);
void notify_status_text(struct server *s, char *buf, size_t size);
const char *server_state_word(struct server *s);


