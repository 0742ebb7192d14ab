/* ringqd client: connection, line framing, pipelining (see client.h).
 *
 * Invariants: rbuf[rstart..rlen) holds bytes read but not yet returned as a
 * reply, and rbuf[rstart..rscan) is known to hold no '\n', so a long line is
 * scanned once. wbuf[wstart..wlen) holds request bytes not yet written.
 * fds[fd_head..fd_tail) holds descriptors ringqd passed that no caller has
 * taken yet, oldest first.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536u
/* Descriptors one read takes. ringqd passes one per message and Linux ends
 * a read at a message that carries any, so one would do; the spare room
 * keeps a peer that sends more from truncating the control data, which
 * closes the descriptors that do not fit. */
#define FDS_PER_READ 8

struct client {
        int fd;
        char *path;
        char *rbuf;
        size_t rstart, rscan, rlen, rcap;
        char *wbuf;
        size_t wstart, wlen, wcap;
        int *fds;
        size_t fd_head, fd_tail, fd_cap;
        unsigned outstanding;
        bool eof;      /* the daemon closed its side */
        bool wdead;    /* writing failed; read what is left, then fail */
};

int64_t client_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_connect(const char *path, client **ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        client *c;
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->path = strdup(path);
        if (!c->path) {
                client_free(c);
                return -ENOMEM;
        }

        /* A blocking connect, so a full listen backlog waits instead of
         * failing with EAGAIN; the socket turns non-blocking afterwards. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                client_free(c);
                return r;
        }
        c->fd = fd;
        do
                r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        while (r < 0 && errno == EINTR);
        if (r < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = -errno;
                client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Is gid among the groups the user database gives the caller, though
 * not among those of this process: added, but not logged in since? */
static bool group_pending(gid_t gid)
{
        const struct passwd *pw = getpwuid(getuid());
        gid_t mine[256], listed[256];
        int nmine = getgroups(256, mine), nlisted = 256;

        if (!pw || nmine < 0 || getgrouplist(pw->pw_name, pw->pw_gid, listed, &nlisted) < 0)
                return false;
        for (int i = 0; i < nmine; i++)
                if (mine[i] == gid)
                        return false;
        for (int i = 0; i < nlisted; i++)
                if (listed[i] == gid)
                        return true;
        return false;
}

void client_access_advice(const char *path, char *buf, size_t n)
{
        const struct group *gr;
        const struct passwd *pw;
        char gname[64], uname[64];
        const char *slash = strrchr(path, '/');
        struct stat st;

        buf[0] = '\0';
        if (stat(path, &st) < 0) {
                /* The socket is there, but a directory on the way is
                 * closed to the caller. */
                if (errno == EACCES && slash && slash != path)
                        snprintf(buf, n, "the directory %.*s is closed to you (ringqd's socket is in it)",
                                 (int)(slash - path), path);
                return;
        }
        gr = getgrgid(st.st_gid);
        pw = getpwuid(st.st_uid);
        if (gr)
                snprintf(gname, sizeof(gname), "%s", gr->gr_name);
        else
                snprintf(gname, sizeof(gname), "%u", (unsigned)st.st_gid);
        if (pw)
                snprintf(uname, sizeof(uname), "%s", pw->pw_name);
        else
                snprintf(uname, sizeof(uname), "%u", (unsigned)st.st_uid);
        /* Connecting to a Unix socket takes write permission on it. */
        if (!(st.st_mode & S_IWGRP))
                snprintf(buf, n, "the socket %s is open to its owner %s only", path, uname);
        else if (group_pending(st.st_gid))
                snprintf(buf, n,
                         "the socket %s is open to group %s, which you were added to after you logged in: log in "
                         "again (or run 'newgrp %s')",
                         path, gname, gname);
        else
                snprintf(buf, n,
                         "the socket %s is open to group %s only: ask an administrator to add you "
                         "('adduser $USER %s'), then log in again",
                         path, gname, gname);
}

client *client_free(client *c)
{
        if (!c)
                return NULL;
        if (c->fd >= 0)
                close(c->fd);
        for (size_t i = c->fd_head; i < c->fd_tail; i++)
                close(c->fds[i]);
        free(c->fds);
        free(c->path);
        free(c->rbuf);
        free(c->wbuf);
        free(c);
        return NULL;
}

const char *client_path(const client *c)
{
        return c->path;
}

int client_fd(const client *c)
{
        return c->fd;
}

unsigned client_outstanding(const client *c)
{
        return c->outstanding;
}

static int fd_push(client *c, int fd)
{
        if (c->fd_tail == c->fd_cap) {
                if (c->fd_head > 0) {
                        memmove(c->fds, c->fds + c->fd_head, (c->fd_tail - c->fd_head) * sizeof(int));
                        c->fd_tail -= c->fd_head;
                        c->fd_head = 0;
                } else {
                        size_t ncap = c->fd_cap ? c->fd_cap * 2 : 4;
                        int *p = reallocarray(c->fds, ncap, sizeof(int));

                        if (!p)
                                return -ENOMEM;
                        c->fds = p;
                        c->fd_cap = ncap;
                }
        }
        c->fds[c->fd_tail++] = fd;
        return 0;
}

int client_take_fd(client *c)
{
        int fd;

        if (c->fd_head == c->fd_tail)
                return -1;
        fd = c->fds[c->fd_head++];
        if (c->fd_head == c->fd_tail)
                c->fd_head = c->fd_tail = 0;
        return fd;
}

/* Keep the descriptors of a read's SCM_RIGHTS control data, in order. */
static int take_rights(client *c, struct msghdr *mh)
{
        int r = 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                size_t n;
                int *fds;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                fds = (int *)CMSG_DATA(cm);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, fds + i, sizeof(fd));
                        /* Past an error none can be queued in order;
                         * close the rest rather than leak them. */
                        if (r == 0)
                                r = fd_push(c, fd);
                        if (r < 0)
                                close(fd);
                }
        }
        /* Descriptors were lost (too many, or no room in our fd table), so
         * the ones left can no longer be matched to their replies. */
        if (r == 0 && (mh->msg_flags & MSG_CTRUNC))
                r = -EBADMSG;
        return r;
}

/* Make room for n more bytes at the end of a buffer, compacting first. */
int client_buf_reserve(char **buf, size_t *start, size_t *len, size_t *cap, size_t n)
{
        size_t need, ncap;
        char *p;

        if (*start > 0 && (*start == *len || *cap - *len < n)) {
                memmove(*buf, *buf + *start, *len - *start);
                *len -= *start;
                *start = 0;
        }
        if (*cap - *len >= n)
                return 0;
        need = *len + n;
        if (need > (size_t)CLIENT_MAX_LINE + READ_CHUNK)
                return -EMSGSIZE;
        ncap = *cap ? *cap : 4096;
        while (ncap < need)
                ncap *= 2;
        p = realloc(*buf, ncap);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = ncap;
        return 0;
}

int client_queue(client *c, const json_t *req)
{
        _cleanup_free_ char *s = NULL;
        size_t n;
        int r;

        s = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        r = client_buf_reserve(&c->wbuf, &c->wstart, &c->wlen, &c->wcap, n + 1);
        if (r < 0)
                return r;
        memcpy(c->wbuf + c->wlen, s, n);
        c->wbuf[c->wlen + n] = '\n';
        c->wlen += n + 1;
        c->outstanding++;
        return 0;
}

/* Write what the socket takes now. A dead peer is not an error yet: it may
 * have sent a reply (such as "busy") that explains why, so reading goes on. */
static int try_write(client *c)
{
        while (c->wstart < c->wlen && !c->wdead) {
                ssize_t n = send(c->fd, c->wbuf + c->wstart, c->wlen - c->wstart,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == EPIPE || errno == ECONNRESET) {
                                c->wdead = true;
                                break;
                        }
                        return -errno;
                }
                c->wstart += (size_t)n;
        }
        if (c->wstart == c->wlen || c->wdead)
                c->wstart = c->wlen = 0;
        return 0;
}

static int try_read(client *c)
{
        for (;;) {
                size_t scanned = c->rscan > c->rstart ? c->rscan - c->rstart : 0;
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * FDS_PER_READ)];
                } ctl;
                struct iovec iov;
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf),
                };
                ssize_t n;
                int r;

                /* Compaction moves rstart; rscan moves with it. */
                r = client_buf_reserve(&c->rbuf, &c->rstart, &c->rlen, &c->rcap, READ_CHUNK);
                c->rscan = c->rstart + scanned;
                if (r < 0)
                        return r;
                iov = (struct iovec){ c->rbuf + c->rlen, c->rcap - c->rlen };
                /* recvmsg() every time: recv() of a message that carries
                 * descriptors would close them unseen. */
                n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == ECONNRESET) {
                                c->eof = true;
                                return 0;
                        }
                        return -errno;
                }
                if (n == 0) {
                        c->eof = true;
                        return 0;
                }
                c->rlen += (size_t)n;
                r = take_rights(c, &mh);
                if (r < 0)
                        return r;
                /* One chunk per call keeps a fast daemon from growing the
                 * buffer without bound between line extractions. */
                return 0;
        }
}

/* Take one complete line from the read buffer: 1 and *ret set, 0 if there
 * is none yet. */
static int take_line(client *c, json_t **ret)
{
        char *nl;
        json_t *j;
        size_t len;

        if (c->rscan < c->rstart)
                c->rscan = c->rstart;
        nl = c->rscan < c->rlen ? memchr(c->rbuf + c->rscan, '\n', c->rlen - c->rscan) : NULL;
        if (!nl) {
                c->rscan = c->rlen;
                if (c->rlen - c->rstart > CLIENT_MAX_LINE)
                        return -EMSGSIZE;
                return 0;
        }
        len = (size_t)(nl - (c->rbuf + c->rstart));
        if (len > CLIENT_MAX_LINE)
                return -EMSGSIZE;
        j = json_loadb(c->rbuf + c->rstart, len, 0, NULL);
        c->rstart += len + 1;
        c->rscan = c->rstart;
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        if (c->outstanding > 0)
                c->outstanding--;
        *ret = j;
        return 1;
}

/* Wait for the socket to become readable (if want_read) or writable (if
 * output is pending). Returns 0, or -ETIMEDOUT. */
static int wait_io(client *c, bool want_read, int timeout_ms)
{
        struct pollfd p = { .fd = c->fd };
        int r;

        if (want_read)
                p.events |= POLLIN;
        if (c->wlen > c->wstart && !c->wdead)
                p.events |= POLLOUT;
        if (!p.events)
                return -EDEADLK; /* nothing could ever happen */
        r = poll(&p, 1, timeout_ms);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r == 0 ? -ETIMEDOUT : 0;
}

static int remaining(int64_t deadline)
{
        int64_t left;

        if (deadline < 0)
                return -1;
        left = deadline - client_now_ms();
        return left <= 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
}

int client_flush(client *c, int timeout_ms)
{
        int64_t deadline = timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
        int r;

        for (;;) {
                r = try_write(c);
                if (r < 0)
                        return r;
                if (c->wdead)
                        return -EPIPE;
                if (c->wlen == c->wstart)
                        return 0;
                r = wait_io(c, false, remaining(deadline));
                if (r < 0)
                        return r;
        }
}

int client_recv(client *c, int timeout_ms, json_t **ret_reply)
{
        int64_t deadline = timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
        int r;

        for (;;) {
                r = take_line(c, ret_reply);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (c->eof)
                        return -ECONNRESET;
                r = try_write(c);
                if (r < 0)
                        return r;
                r = try_read(c);
                if (r < 0)
                        return r;
                if (c->eof || c->rlen > c->rscan)
                        continue;
                /* recv() just said EAGAIN: a poll() with no time would
                 * only repeat it. */
                if (timeout_ms == 0)
                        return -ETIMEDOUT;
                r = wait_io(c, true, remaining(deadline));
                if (r < 0)
                        return r;
        }
}

int client_call(client *c, const json_t *req, json_t **ret_reply)
{
        int r;

        r = client_queue(c, req);
        if (r < 0)
                return r;
        return client_recv(c, -1, ret_reply);
}

int client_pipeline(client *c, unsigned window, const client_pipe_ops *ops,
                    void *userdata)
{
        int64_t wake = -1; /* when next() asked to be called again */
        bool done = false;
        int r;

        if (window == 0 || window > CLIENT_WINDOW_MAX)
                window = CLIENT_WINDOW_MAX;

        for (;;) {
                json_t *reply = NULL;
                bool progress = false;
                struct pollfd p = { .fd = c->fd };

                done = false;
                while (c->outstanding < window && (wake < 0 || client_now_ms() >= wake)) {
                        json_t *req = NULL;
                        int wait_ms = -1;

                        wake = -1;
                        r = ops->next(userdata, &req, &wait_ms);
                        if (r < 0)
                                return r;
                        if (r == CLIENT_NEXT_DONE) {
                                done = true;
                                break;
                        }
                        if (r == CLIENT_NEXT_LATER) {
                                if (wait_ms >= 0)
                                        wake = client_now_ms() + wait_ms;
                                break;
                        }
                        r = client_queue(c, req);
                        json_decref(req);
                        if (r < 0)
                                return r;
                }
                if (done && c->outstanding == 0)
                        return 0;

                r = try_write(c);
                if (r < 0)
                        return r;

                /* Hand over every complete reply before blocking. */
                while ((r = take_line(c, &reply)) > 0) {
                        progress = true;
                        r = ops->reply(userdata, reply);
                        json_decref(reply);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
                if (progress) {
                        wake = -1; /* a reply may have changed what next() has */
                        continue;
                }
                if (c->eof)
                        return -ECONNRESET;

                if (c->outstanding > 0)
                        p.events |= POLLIN;
                if (c->wlen > c->wstart && !c->wdead)
                        p.events |= POLLOUT;
                if (!p.events && wake < 0)
                        return done ? 0 : -EDEADLK;
                r = poll(&p, p.events ? 1 : 0, remaining(wake));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
                        r = try_read(c);
                        if (r < 0)
                                return r;
                }
        }
}

bool client_reply_ok(const json_t *reply)
{
        return json_is_true(json_object_get(reply, "ok"));
}

const char *client_reply_error(const json_t *reply)
{
        const char *s = json_string_value(json_object_get(reply, "error"));

        return s ? s : ringq_err_names[RINGQ_ERR_INTERNAL];
}

const char *client_reply_message(const json_t *reply)
{
        const char *s = json_string_value(json_object_get(reply, "message"));

        return s ? s : "";
}

int client_reply_exit(const json_t *reply)
{
        if (client_reply_ok(reply))
                return RINGQ_EXIT_OK;
        return ringq_exit_for_error(ringq_err_from_name(client_reply_error(reply)));
}
