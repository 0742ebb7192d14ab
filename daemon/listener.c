/* The listening socket: passed by systemd (LISTEN_FDS) or bound here,
 * and accepted with one multishot accept. Connections over max_clients
 * get a single "busy" line and are closed at once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "conn.h"
#include "log.h"
#include "proto.h"

#define ACCEPT_RETRY_MS 100

static void accept_retry(struct timer *t)
{
        struct server *s = container_of(t, struct server, lis.retry);

        listener_arm(s);
}

/* "<what> <path>: <why>" */
static int fail(char **ret_err, int r, const char *what, const char *path)
{
        if (asprintf(ret_err, "%s%s%s: %s", what, *path ? " " : "", path, strerror(-r)) < 0)
                *ret_err = NULL;
        return r;
}

int listener_open(struct server *s, char **ret_err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = s->cfg.socket;
        struct stat st;
        mode_t old;
        int n, fd, r;

        *ret_err = NULL;
        timer_init(&s->lis.retry, accept_retry);
        n = sd_listen_fds(1);
        if (n < 0)
                return fail(ret_err, n, "LISTEN_FDS", "");
        if (n > 1) {
                *ret_err = strdup("systemd passed more than one socket; ringqd serves exactly one");
                return -EINVAL;
        }
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        *ret_err = strdup("the socket systemd passed is not a listening Unix stream socket");
                        return -EINVAL;
                }
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                s->lis.fd = fd;
                s->lis.activated = true;
                return 0;
        }

        if (strlen(path) >= sizeof(sa.sun_path))
                return fail(ret_err, -ENAMETOOLONG, "socket", path);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail(ret_err, -errno, "socket", path);
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        close(fd);
                        if (asprintf(ret_err, "socket %s: exists and is not a socket", path) < 0)
                                *ret_err = NULL;
                        return -EEXIST;
                }
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        close(fd);
                        if (asprintf(ret_err, "socket %s is already served by a running ringqd", path) < 0)
                                *ret_err = NULL;
                        return -EADDRINUSE;
                }
                if (errno != ECONNREFUSED) {
                        r = -errno;
                        close(fd);
                        return fail(ret_err, r, "socket", path);
                }
                /* Nobody listens: a ringqd died without cleaning up. */
                log_notice("removing stale socket %s", path);
                if (unlink(path) < 0 && errno != ENOENT) {
                        r = -errno;
                        close(fd);
                        return fail(ret_err, r, "cannot remove stale socket", path);
                }
                close(fd);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return fail(ret_err, -errno, "socket", path);
        }
        /* 0660: the owner and its group may submit; the unit's socket
         * decides the group when systemd binds it instead. */
        old = umask(0117);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r == 0 && listen(fd, SOMAXCONN) < 0)
                r = -errno;
        if (r == 0 && stat(path, &st) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return fail(ret_err, r, "cannot listen on", path);
        }
        s->lis.dev = st.st_dev;
        s->lis.ino = st.st_ino;
        s->lis.fd = fd;
        return 0;
}

void listener_arm(struct server *s)
{
        struct io_uring_sqe *sqe;

        if (s->lis.armed || s->draining || s->lis.fd < 0)
                return;
        sqe = get_sqe(s);
        io_uring_prep_multishot_accept(sqe, s->lis.fd, NULL, NULL, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_ACCEPT, 0, 0));
        s->lis.armed = true;
}

/* One line and close, for clients that will not be served. */
static void refuse(int fd, json_t *reply)
{
        size_t len;
        char *line = proto_line(reply, NULL, &len);

        /* A fresh socket's buffer takes a short line without blocking;
         * if not, the client gets the close alone. */
        if (line)
                (void)!send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        free(line);
        close(fd);
}

void listener_on_accept(struct server *s, struct io_uring_cqe *cqe)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd = cqe->res, r;

        if (!(cqe->flags & IORING_CQE_F_MORE))
                s->lis.armed = false;
        if (fd < 0) {
                if (fd == -ECANCELED)
                        return;
                /* Out of fds or memory: back off instead of spinning. */
                log_warning_errno(fd, "accept failed, retrying in %dms", ACCEPT_RETRY_MS);
                if (!s->lis.armed)
                        loop_arm_timer(s, &s->lis.retry, now_mono_ms() + ACCEPT_RETRY_MS);
                return;
        }
        if (!s->lis.armed)
                listener_arm(s);
        if (s->draining) {
                refuse(fd, proto_err(RINGQ_ERR_SHUTTING_DOWN, NULL, "ringqd is shutting down"));
                return;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_warning_errno(-errno, "cannot read a new client's credentials");
                close(fd);
                return;
        }
        r = conn_admit(s, cred.uid);
        if (r == -EBUSY) {
                s->stats.c[C_CLIENTS_REFUSED]++;
                refuse(fd, proto_err(RINGQ_ERR_BUSY, NULL, "ringqd serves %u clients already; try again later",
                                     s->nconns));
                return;
        }
        if (r == -EUSERS) {
                s->stats.c[C_CLIENTS_REFUSED_USER]++;
                refuse(fd, proto_err(RINGQ_ERR_BUSY, NULL,
                                     "uid %u has %llu connections open already (max_clients_per_user); "
                                     "close one or try again later",
                                     (unsigned)cred.uid, (unsigned long long)s->cfg.max_clients_per_user));
                return;
        }
        if (s->uid != 0 && cred.uid != s->uid && cred.uid != 0) {
                refuse(fd, proto_err(RINGQ_ERR_FORBIDDEN, NULL,
                                     "this ringqd runs as uid %u and serves only that uid and root",
                                     (unsigned)s->uid));
                return;
        }
        r = conn_new(s, fd, &cred);
        if (r < 0) {
                log_warning_errno(r, "cannot set up a new connection");
                close(fd);
        }
}

void listener_stop(struct server *s)
{
        struct io_uring_sqe *sqe;

        timers_disarm(&s->timers, &s->lis.retry);
        if (s->lis.armed) {
                sqe = get_sqe(s);
                io_uring_prep_cancel64(sqe, ud_pack(UD_ACCEPT, 0, 0), 0);
                io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
                s->lis.armed = false;
        }
        /* A socket systemd passed stays open and bound: connections wait
         * in its backlog for the next ringqd. One we bound goes away now,
         * so clients are told at once that nobody serves it. */
        if (!s->lis.activated)
                listener_close(s);
}

void listener_close(struct server *s)
{
        struct stat st;

        if (s->lis.fd < 0)
                return;
        /* Unlink only the socket we bound, not one a newer ringqd bound
         * at the same path since. */
        if (!s->lis.activated && stat(s->cfg.socket, &st) == 0 && st.st_ino == s->lis.ino &&
            st.st_dev == s->lis.dev)
                (void)unlink(s->cfg.socket);
        s->lis.fd = safe_close(s->lis.fd);
}
