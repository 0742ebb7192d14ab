/* Bringing a server's queue, workers and ring up, and everything down
 * again: the part of start-up that ringqd (main.c) and the in-process
 * fuzz harness share. main.c adds the config, the state dir and its
 * lock, signals, the listener and sd_notify around it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "conn.h"
#include "recover.h"
#include "users.h"
#include "util.h"

void server_init(struct server *s)
{
        *s = (struct server){
                .listen_fd = -1, .sig_fd = -1, .store_efd = -1, .devnull_fd = -1, .hup_fd = -1,
                .state_dirfd = -1, .output_dirfd = -1, .accepting = true,
        };
}

int server_open(struct server *s, char **ret_err)
{
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
        r = recover_interrupted(s->store);
        if (r < 0)
                return set_error(ret_err, r, "%s: recovering interrupted jobs: %s", s->db_path, strerror(-r));
        r = qindex_init(&s->qi, s->cfg.fair_share == FAIR_SHARE_USERS);
        if (r < 0)
                return set_error(ret_err, r, "dispatch index: %s", strerror(-r));
        r = workers_load_queue(s);
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
        r = store_start(s->store, s->store_efd, s->output_dirfd);
        if (r < 0)
                return set_error(ret_err, r, "store thread: %s", strerror(-r));
        prune_init(s, finished);
        ops_update_accepting(s);
        return 0;
}

void server_done(struct server *s)
{
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
        loop_done(s);
        qindex_done(&s->qi);
        idmap_done(&s->user_reserved);
        idmap_done(&s->waiters);
        idmap_done(&s->conn_users);
        users_flush();
        free(s->full_line);
        s->full_line = NULL;
        s->sig_fd = safe_close(s->sig_fd);
        s->store_efd = safe_close(s->store_efd);
        s->hup_fd = safe_close(s->hup_fd);
        s->devnull_fd = safe_close(s->devnull_fd);
        s->output_dirfd = safe_close(s->output_dirfd);
        s->state_dirfd = safe_close(s->state_dirfd);
        free(s->db_path);
        free(s->output_dir);
        s->db_path = s->output_dir = NULL;
        config_done(&s->cfg);
}
