/* The listening socket: passed by systemd (LISTEN_FDS) or bound here,
 * and accepted with one multishot accept. Connections over max_clients
 * get a single "busy" line and are closed at once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
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

/* The socket the process a re-exec replaced listened on (reexec.h):
 * connections made meanwhile wait in its backlog. (systemd's LISTEN_FDS
 * were consumed by the first start; the pid is the same, the variables
 * are gone.) */
static int adopt_socket(struct server *s)
{
        json_t *h = s->handoff;
        int fd = (int)json_integer_value(json_object_get(h, "socket_fd"));

        if (fd < 3 || sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                return -EBADF;
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        s->lis.fd = fd;
        s->lis.activated = json_is_true(json_object_get(h, "socket_activated"));
        s->lis.dev = (dev_t)json_integer_value(json_object_get(h, "socket_dev"));
        s->lis.ino = (ino_t)json_integer_value(json_object_get(h, "socket_ino"));
        return 0;
}

/* How long the start-up probe waits for an answer to its ping. A live
 * ringqd answers a ping from its loop at once, without the store, so it
 * takes milliseconds even when loaded; a dead one's socket, which its
 * io_uring keeps open until the kernel has torn that down, resets the
 * connection within tens of milliseconds. 1 s is far past both (and past
 * a live ringqd under valgrind), and still no delay worth noticing in a
 * start that finds a socket file. */
#define PROBE_TIMEOUT_MS 1000
/* A ringqd's answers to a ping (a pong, or busy/forbidden at connect)
 * are short lines; anything longer is not one. */
#define PROBE_REPLY_MAX 1024

/* Send a ping on fd and read one line of answer into buf, within
 * PROBE_TIMEOUT_MS. Returns the line's length with its '\n' (so never 0
 * for a line); 0 when the peer hung up without sending a byte; -ETIMEDOUT; -EPROTO when it
 * sent something that is not one line; or another negative errno. */
static ssize_t probe_ask(int fd, char *buf, size_t size)
{
        int64_t deadline = now_mono_ms() + PROBE_TIMEOUT_MS;
        size_t len = 0, n;
        char *line, *nl;
        ssize_t k;

        line = proto_line(json_pack("{s:s}", "op", ringq_op_names[RINGQ_OP_PING]), NULL, &n);
        if (!line)
                return -ENOMEM;
        /* A peer that hung up fails the send, but may have written its
         * line first (a ringqd refusing at connect): read on regardless. */
        k = send(fd, line, n, MSG_NOSIGNAL);
        free(line);
        if (k < 0 && errno != EPIPE && errno != ECONNRESET)
                return -errno;
        while (len < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_mono_ms();

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int)left) <= 0)
                        continue; /* the deadline decides; EINTR included */
                k = read(fd, buf + len, size - len);
                if (k == 0 || (k < 0 && errno == ECONNRESET))
                        return len ? -EPROTO : 0;
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return -errno;
                }
                nl = memchr(buf + len, '\n', (size_t)k);
                len += (size_t)k;
                if (nl)
                        return nl - buf + 1;
        }
        return -EPROTO;
}

/* A ringqd's answer: a pong, or the line it refuses a client with at
 * connect (busy, forbidden, shutting_down), which still says one runs. */
static bool is_ringqd_reply(const char *line, size_t len)
{
        json_t *v = json_loadb(line, len, 0, NULL);
        json_t *ok = json_object_get(v, "ok");
        bool ours = json_is_true(ok) ? json_is_integer(json_object_get(v, "protocol"))
                                     : json_is_false(ok) && json_is_string(json_object_get(v, "error"));

        json_decref(v);
        return ours;
}

/* Who serves the socket file at sa: 0 nobody (connect refused), 1 nobody
 * either but the socket still took the connection and then hung up (a
 * ringqd that has just died: its io_uring holds the socket a moment
 * longer), or a negative errno with *ret_err set when something answers
 * or might. A connect alone proves nothing, so only an answer counts. */
static int probe_socket(const struct sockaddr_un *sa, char **ret_err)
{
        const char *path = sa->sun_path;
        char buf[PROBE_REPLY_MAX];
        const char *why;
        ssize_t n;
        int fd, r;

        /* Non-blocking: a listener whose backlog is full would hold a
         * blocking connect for ever. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return fail(ret_err, -errno, "socket", path);
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
                r = -errno;
                close(fd);
                if (r == -ECONNREFUSED)
                        return 0;
                if (r != -EAGAIN)
                        return fail(ret_err, r, "socket", path);
                n = -ETIMEDOUT;
        } else {
                n = probe_ask(fd, buf, sizeof(buf));
                close(fd);
        }
        if (n == 0)
                return 1;
        if (n > 0 && is_ringqd_reply(buf, (size_t)n)) {
                why = "is already served by a running ringqd";
                r = -EADDRINUSE;
        } else if (n > 0 || n == -EPROTO) {
                why = "is served by something other than ringqd (its answer to a ping is not ringqd's); "
                      "stop that program or choose another socket";
                r = -EPROTO;
        } else if (n == -ETIMEDOUT) {
                /* Taking the path from a live process that is only stuck
                 * (a stopped ringqd, one whose loop stalled) would leave
                 * it serving nobody, unaware, and its clients talking to
                 * another queue. Removing the file is the operator's call. */
                why = "accepts connections but nothing answered a ping within 1 s: a stuck ringqd or "
                      "another program holds it, so it is left alone; stop that process, or remove the "
                      "file if none runs";
                r = -ETIMEDOUT;
        } else
                return fail(ret_err, (int)n, "socket", path);
        if (asprintf(ret_err, "socket %s %s", path, why) < 0)
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
        if (s->handoff && adopt_socket(s) == 0)
                return 0;
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
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        if (asprintf(ret_err, "socket %s: exists and is not a socket", path) < 0)
                                *ret_err = NULL;
                        return -EEXIST;
                }
                r = probe_socket(&sa, ret_err);
                if (r < 0)
                        return r;
                log_notice("removing stale socket %s%s", path,
                           r ? " (it took a connection and hung up unanswered, as a ringqd that has just died does)"
                             : "");
                if (unlink(path) < 0 && errno != ENOENT)
                        return fail(ret_err, -errno, "cannot remove stale socket", path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail(ret_err, -errno, "socket", path);
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

        if (s->lis.armed || s->draining || s->rx.phase != RX_NONE || s->lis.fd < 0)
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

/* A re-exec: stop accepting but keep the socket (and its path) for the
 * next process. */
void listener_pause(struct server *s)
{
        struct io_uring_sqe *sqe;

        timers_disarm(&s->timers, &s->lis.retry);
        if (!s->lis.armed)
                return;
        sqe = get_sqe(s);
        io_uring_prep_cancel64(sqe, ud_pack(UD_ACCEPT, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
        s->lis.armed = false;
}
