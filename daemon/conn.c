/* Client connections: framing, ordering, and every per-connection bound
 * (max_pipeline, max_reply_bytes, max_request_bytes, idle_timeout). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "proto.h"

#define RBUF_MIN 4096
#define WBUF_KEEP 65536 /* an idle connection keeps at most this much */

static struct conn *conn_get(struct server *s, uint64_t ud)
{
        uint32_t i = ud_slot(ud);
        struct conn *c = i < s->conn_cap ? s->conns[i] : NULL;

        return c && c->gen == ud_gen(ud) ? c : NULL;
}

static void conn_finalize(struct conn *c)
{
        struct server *s = c->srv;

        if (!c->closing || c->ring_ops)
                return;
        /* Closing a Unix socket with unread input makes the peer's reads
         * fail with ECONNRESET, which would hide the reply we just sent
         * (too_large, say) behind an error. Discard what is queued
         * first: bounded, and it never blocks. */
        for (int i = 0; i < 16; i++) {
                static char sink[65536];
                if (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
                        break;
        }
        close(c->fd);
        for (size_t i = 0; i < c->nfdq; i++)
                close(c->fdq[i].fd);
        free(c->fdq);
        if (c->uid != 0) {
                uintptr_t n = (uintptr_t)idmap_get(&s->conn_users, (int64_t)c->uid + 1);
                if (n > 1)
                        (void)idmap_put(&s->conn_users, (int64_t)c->uid + 1, (void *)(n - 1));
                else
                        idmap_remove(&s->conn_users, (int64_t)c->uid + 1);
        }
        free(c->groups_json);
        free(c->rbuf);
        free(c->sbuf);
        free(c->wbuf);
        s->conns[c->idx] = NULL;
        s->nconns--;
        free(c);
}

static void arm_recv(struct conn *c)
{
        struct server *s = c->srv;
        struct io_uring_sqe *sqe;

        if (c->recv_armed || c->closing || c->stalled || c->close_after_flush || s->rx.phase == RX_PARK)
                return;
        if (c->rlen == c->rcap) {
                size_t cap = MIN(MAX(c->rcap * 2, (size_t)RBUF_MIN), s->cfg.max_request_bytes + 1);
                char *p;
                if (cap <= c->rcap)
                        return; /* full line in the buffer: process_lines decides */
                p = realloc(c->rbuf, cap);
                if (!p) {
                        log_warning("connection %u: out of memory for its read buffer, closing", c->idx);
                        conn_close(c);
                        return;
                }
                c->rbuf = p;
                c->rcap = cap;
        }
        sqe = get_sqe(s);
        io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_RECV, c->idx, c->gen));
        c->recv_armed = true;
        c->ring_ops++;
}

static void arm_send(struct conn *c)
{
        struct io_uring_sqe *sqe;
        size_t len;

        if (c->send_armed || c->closing)
                return;
        if (c->soff == c->slen && c->wlen) {
                char *p = c->sbuf;
                size_t cap = c->scap;
                c->sbuf = c->wbuf;
                c->scap = c->wcap;
                c->slen = c->wlen;
                c->soff = 0;
                c->wbuf = p;
                c->wcap = cap;
                c->wlen = 0;
        }
        if (c->soff == c->slen)
                return;
        len = c->slen - c->soff;
        sqe = get_sqe(c->srv);
        if (c->nfdq && c->fdq[0].pos == c->sent) {
                /* This send begins the reply that carries a descriptor. */
                if (c->nfdq > 1)
                        len = MIN(len, c->fdq[1].pos - c->sent);
                c->iov = (struct iovec){ c->sbuf + c->soff, len };
                c->msg = (struct msghdr){
                        .msg_iov = &c->iov, .msg_iovlen = 1,
                        .msg_control = c->cmsg, .msg_controllen = sizeof(c->cmsg),
                };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&c->msg);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &c->fdq[0].fd, sizeof(int));
                io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
                c->fd_in_flight = true;
        } else {
                /* Stop short of the next reply that carries one. */
                if (c->nfdq)
                        len = MIN(len, c->fdq[0].pos - c->sent);
                io_uring_prep_send(sqe, c->fd, c->sbuf + c->soff, len, MSG_NOSIGNAL);
        }
        io_uring_sqe_set_data64(sqe, ud_pack(UD_SEND, c->idx, c->gen));
        c->send_armed = true;
        c->ring_ops++;
}

static size_t unsent(const struct conn *c)
{
        return c->slen - c->soff + c->wlen;
}

static void maybe_done(struct conn *c)
{
        if (c->close_after_flush && !c->head && unsent(c) == 0)
                conn_close(c);
}

/* Append every ready reply at the head of the FIFO to the output. */
static void flush_replies(struct conn *c)
{
        struct server *s = c->srv;

        while (c->head && c->head->state == REQ_DONE) {
                struct req *r = c->head;
                /* The bound is on what the client left unread before this
                 * reply: a client that reads is never closed for the size
                 * of one reply (and list replies are cut to the bound). */
                if (r->reply && unsent(c) > s->cfg.max_reply_bytes) {
                        /* The client does not read its replies; holding
                         * more for it would let one slow reader grow the
                         * daemon. */
                        s->stats.c[C_SLOW_READERS_CLOSED]++;
                        log_info("connection %u (pid %d): %zu bytes of unread replies, closing", c->idx, (int)c->pid,
                                 unsent(c));
                        conn_close(c);
                        return;
                }
                if (r->reply && r->pass_fd >= 0) {
                        if (grow_array((void **)&c->fdq, &c->capfdq, c->nfdq + 1, sizeof(*c->fdq)) < 0) {
                                conn_close(c);
                                return;
                        }
                        c->fdq[c->nfdq++] = (struct fdpass){ c->sent + unsent(c), r->pass_fd };
                        r->pass_fd = -1;
                }
                if (r->reply) {
                        if (grow_array((void **)&c->wbuf, &c->wcap, c->wlen + r->reply_len, 1) < 0) {
                                conn_close(c);
                                return;
                        }
                        memcpy(c->wbuf + c->wlen, r->reply, r->reply_len);
                        c->wlen += r->reply_len;
                }
                c->head = r->next;
                if (!c->head)
                        c->tail = &c->head;
                c->npending--;
                r->conn = NULL;
                req_free(r);
        }
        arm_send(c);
}

struct req *req_new(struct conn *c)
{
        struct req *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->srv = c->srv;
        r->conn = c;
        r->state = REQ_STORE; /* not ready until it has a reply */
        r->pass_fd = -1;
        r->t0_us = loop_mono_us(c->srv);
        *c->tail = r;
        c->tail = &r->next;
        c->npending++;
        return r;
}

static void too_large(struct conn *c)
{
        struct server *s = c->srv;
        struct req *r;

        s->stats.c[C_TOO_LARGE]++;
        c->rlen = c->rstart = c->scanned = 0;
        c->close_after_flush = true;
        r = req_new(c);
        if (!r) {
                conn_close(c);
                return;
        }
        req_reply(r, proto_err(RINGQ_ERR_TOO_LARGE, NULL, "request line longer than %llu bytes",
                               (unsigned long long)s->cfg.max_request_bytes));
}

/* Handle complete lines while the pipeline has room. */
static void process_lines(struct conn *c)
{
        struct server *s = c->srv;

        if (c->in_process)
                return;
        c->in_process = true;
        while (!c->closing && !c->close_after_flush) {
                char *line = c->rbuf + c->rstart, *nl;
                size_t len;

                if (c->npending >= s->cfg.max_pipeline) {
                        if (!c->stalled)
                                s->stats.c[C_PIPELINE_STALLS]++;
                        c->stalled = true;
                        break;
                }
                nl = memchr(c->rbuf + c->scanned, '\n', c->rlen - c->scanned);
                if (!nl) {
                        c->scanned = c->rlen;
                        if (c->rlen - c->rstart > s->cfg.max_request_bytes)
                                too_large(c);
                        break;
                }
                len = (size_t)(nl - line);
                c->rstart = c->scanned = (size_t)(nl - c->rbuf) + 1;
                if (len > s->cfg.max_request_bytes) {
                        too_large(c);
                        break;
                }
                if (len && line[len - 1] == '\r')
                        len--;
                if (len == 0)
                        continue;
                c->last_active_ms = loop_mono_ms(s);
                ops_handle(c, line, len);
        }
        /* Keep the unparsed tail at the start of the buffer. */
        if (!c->closing && c->rstart) {
                memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
                c->rlen -= c->rstart;
                c->scanned -= c->rstart;
                c->rstart = 0;
        }
        c->in_process = false;
}

void conn_on_recv(struct server *s, struct io_uring_cqe *cqe)
{
        struct conn *c = conn_get(s, cqe->user_data);

        if (!c)
                return;
        c->ring_ops--;
        c->recv_armed = false;
        if (c->closing) {
                conn_finalize(c);
                return;
        }
        if (s->rx.phase == RX_PARK) {
                /* Parked for a re-exec: what came is kept unread for the
                 * next process, which reads it in the same order. */
                if (cqe->res > 0) {
                        mem_defined(c->rbuf + c->rlen, (size_t)cqe->res);
                        c->rlen += (size_t)cqe->res;
                } else if (cqe->res == 0)
                        c->close_after_flush = true;
                else if (cqe->res != -ECANCELED)
                        conn_close(c);
                return;
        }
        if (cqe->res <= 0) {
                /* EOF: the client may have half-closed after its last
                 * request; answer what it asked, then close. */
                if (cqe->res < 0 && cqe->res != -ECONNRESET)
                        log_debug("connection %u: recv: %s", c->idx, strerror(-cqe->res));
                if (cqe->res < 0 || c->peer_gone) {
                        conn_close(c);
                        return;
                }
                c->close_after_flush = true;
                maybe_done(c);
                return;
        }
        mem_defined(c->rbuf + c->rlen, (size_t)cqe->res);
        c->rlen += (size_t)cqe->res;
        process_lines(c);
        arm_recv(c);
        /* Gone, and nothing more will be read (a full pipeline): done. */
        if (c->peer_gone && !c->recv_armed && !c->closing)
                conn_close(c);
}

void conn_on_send(struct server *s, struct io_uring_cqe *cqe)
{
        struct conn *c = conn_get(s, cqe->user_data);

        if (!c)
                return;
        c->ring_ops--;
        c->send_armed = false;
        if (c->closing) {
                conn_finalize(c);
                return;
        }
        if (cqe->res < 0) {
                conn_close(c);
                return;
        }
        if (c->fd_in_flight) {
                /* Sent with its first bytes: the peer holds it now. */
                c->fd_in_flight = false;
                if (cqe->res > 0) {
                        close(c->fdq[0].fd);
                        memmove(c->fdq, c->fdq + 1, --c->nfdq * sizeof(*c->fdq));
                }
        }
        c->sent += (size_t)cqe->res;
        c->soff += (size_t)cqe->res;
        if (c->soff == c->slen) {
                c->soff = c->slen = 0;
                if (c->scap > WBUF_KEEP) {
                        free(c->sbuf);
                        c->sbuf = NULL;
                        c->scap = 0;
                }
        }
        c->last_active_ms = now_mono_ms();
        arm_send(c);
        maybe_done(c);
}

static void on_idle(struct timer *t)
{
        struct conn *c = container_of(t, struct conn, idle);
        struct server *s = c->srv;
        int64_t now = now_mono_ms(), due = c->last_active_ms + s->cfg.idle_timeout_ms;

        /* A connection with requests in flight or a pending wait is busy,
         * not idle. */
        if (c->npending)
                c->last_active_ms = now;
        else if (now >= due) {
                s->stats.c[C_IDLE_CLOSED]++;
                log_debug("connection %u (pid %d): idle for %lldms, closing", c->idx, (int)c->pid,
                          (long long)(now - c->last_active_ms));
                conn_close(c);
                return;
        }
        loop_arm_timer(s, &c->idle, c->last_active_ms + s->cfg.idle_timeout_ms);
}

int conn_admit(struct server *s, uid_t uid)
{
        uintptr_t mine;

        /* Root can always act: it gets the reserve on top of max_clients,
         * which no other user can take. */
        if (uid == 0)
                return s->nconns < s->conn_cap ? 0 : -EBUSY;
        if (s->nconns >= s->cfg.max_clients)
                return -EBUSY;
        /* A ringqd of one user serves that user alone: no share to keep. */
        if (s->uid != 0)
                return 0;
        mine = (uintptr_t)idmap_get(&s->conn_users, (int64_t)uid + 1);
        if (s->cfg.max_clients_per_user && mine >= s->cfg.max_clients_per_user)
                return -EUSERS;
        return 0;
}

/* The groups the client had when it connected, as a JSON array. */
static char *peer_groups(int fd, gid_t gid)
{
        gid_t stack[64], *g = stack;
        socklen_t len = sizeof(stack);
        char *out = NULL;
        size_t n, size = 0;
        FILE *f;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
                if (errno != ERANGE || !(g = malloc(len)))
                        return NULL;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
                        free(g);
                        return NULL;
                }
        }
        n = len / sizeof(gid_t);
        f = open_memstream(&out, &size);
        if (f) {
                /* Never empty: a client with no supplementary group runs
                 * with its own gid only, as its process did. */
                fputc('[', f);
                if (n == 0)
                        fprintf(f, "%u", (unsigned)gid);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "%s%u", i ? "," : "", (unsigned)g[i]);
                fputc(']', f);
                if (fclose(f) != 0) {
                        free(out);
                        out = NULL;
                }
        }
        if (g != stack)
                free(g);
        return out;
}

static int conn_make(struct server *s, int fd, const struct ucred *cred, struct conn **ret)
{
        struct epoll_event ev = { .events = 0 };
        struct conn *c;
        unsigned i;

        for (i = 0; i < s->conn_cap && s->conns[i]; i++)
                ;
        if (i == s->conn_cap)
                return -EBUSY;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->srv = s;
        c->idx = i;
        c->gen = ++s->conn_gen & 0xffffff;
        c->fd = fd;
        c->uid = cred->uid;
        c->gid = cred->gid;
        c->pid = cred->pid;
        c->groups_json = peer_groups(fd, cred->gid);
        ev.data.u64 = ud_pack(UD_HUP, c->idx, c->gen);
        if (!c->groups_json || epoll_ctl(s->hup_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = c->groups_json ? -errno : -ENOMEM;
                free(c->groups_json);
                free(c);
                return r;
        }
        if (c->uid != 0) {
                uintptr_t n = (uintptr_t)idmap_get(&s->conn_users, (int64_t)c->uid + 1);
                if (idmap_put(&s->conn_users, (int64_t)c->uid + 1, (void *)(n + 1)) < 0) {
                        free(c->groups_json);
                        free(c);
                        return -ENOMEM;
                }
        }
        c->tail = &c->head;
        c->last_active_ms = now_mono_ms();
        timer_init(&c->idle, on_idle);
        s->conns[i] = c;
        s->nconns++;
        loop_arm_timer(s, &c->idle, c->last_active_ms + s->cfg.idle_timeout_ms);
        *ret = c;
        return 0;
}

int conn_new(struct server *s, int fd, const struct ucred *cred)
{
        struct conn *c;
        int r = conn_make(s, fd, cred, &c);

        if (r == 0)
                arm_recv(c);
        return r;
}

void conn_arm_hup(struct server *s)
{
        struct io_uring_sqe *sqe;

        if (s->hup_armed || s->hup_fd < 0)
                return;
        sqe = get_sqe(s);
        io_uring_prep_poll_multishot(sqe, s->hup_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_HUP, 0, 0));
        s->hup_armed = true;
}

/* The client closed its socket entirely: nobody will read another reply,
 * so its pending waits are dropped and its slot freed now. Bytes it sent
 * before closing are still handled if a read is under way (it returns
 * them, then end-of-file); a stalled or half-closed connection has
 * nothing left to read. */
static void peer_gone(struct conn *c)
{
        if (c->closing || c->peer_gone)
                return;
        c->peer_gone = true;
        if (c->npending)
                c->srv->stats.c[C_CLIENTS_GONE]++;
        (void)epoll_ctl(c->srv->hup_fd, EPOLL_CTL_DEL, c->fd, NULL);
        if (!c->recv_armed)
                conn_close(c);
}

void conn_on_hup(struct server *s, struct io_uring_cqe *cqe)
{
        struct epoll_event ev[64];
        int n;

        if (!(cqe->flags & IORING_CQE_F_MORE))
                s->hup_armed = false;
        do {
                n = epoll_wait(s->hup_fd, ev, (int)ELEMENTSOF(ev), 0);
                for (int i = 0; i < n; i++) {
                        struct conn *c = conn_get(s, ev[i].data.u64);
                        if (c)
                                peer_gone(c);
                }
        } while (n == (int)ELEMENTSOF(ev));
        conn_arm_hup(s);
}

void conn_close(struct conn *c)
{
        struct server *s = c->srv;

        if (c->closing)
                return;
        c->closing = true;
        /* Ends an in-flight recv or send early; the fd itself is closed
         * only once they have completed. */
        (void)shutdown(c->fd, SHUT_RDWR);
        timers_disarm(&s->timers, &c->idle);
        while (c->head) {
                struct req *r = c->head;
                c->head = r->next;
                r->conn = NULL;
                if (r->state == REQ_WAIT) {
                        waiters_drop(r);
                        req_free(r);
                } else if (r->state == REQ_DONE || r->state == REQ_DEFERRED)
                        req_free(r);
                /* REQ_STORE: the store still holds it; freed on return. */
        }
        c->tail = &c->head;
        c->npending = c->ndeferred = c->writes = 0;
        /* Freed by conn_reap() after the current batch of completions,
         * never under a caller that may still hold c. */
        s->reap_conns = true;
}

void conn_reap(struct server *s)
{
        if (!s->reap_conns)
                return;
        s->reap_conns = false;
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i] && s->conns[i]->closing)
                        conn_finalize(s->conns[i]);
}

void conn_close_all(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i])
                        conn_close(s->conns[i]);
}

void req_free(struct req *r)
{
        if (!r)
                return;
        if (r->pass_fd >= 0)
                close(r->pass_fd);
        if (r->has_rq)
                request_done(&r->rq);
        json_decref(r->tag);
        free(r->reply);
        free(r);
}

void req_reply(struct req *r, json_t *reply)
{
        char *line;
        size_t len = 0;

        if (!r->conn) {
                json_decref(reply);
                req_free(r);
                return;
        }
        line = proto_line(reply, r->tag, &len);
        req_reply_line(r, line, len);
}

void req_reply_line(struct req *r, char *line, size_t len)
{
        struct conn *c = r->conn;

        if (!c) {
                free(line);
                req_free(r);
                return;
        }
        r->reply = line;
        r->reply_len = len;
        if (!r->reply) {
                /* No reply could be built (out of memory): the client still
                 * gets one line, in order, so its other replies stand. */
                static const char oom[] = "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}\n";
                r->reply = strdup(oom);
                r->reply_len = r->reply ? sizeof(oom) - 1 : 0;
                if (!r->reply) {
                        r->state = REQ_DONE;
                        conn_close(c);
                        return;
                }
        }
        r->state = REQ_DONE;
        if (r != c->head)
                return;
        flush_replies(c);
        if (c->closing)
                return;
        if (c->stalled && c->npending < c->srv->cfg.max_pipeline) {
                c->stalled = false;
                process_lines(c);
                arm_recv(c);
        }
        maybe_done(c);
}

/* ---- re-exec (reexec.h) ----
 *
 * A connection whose only unanswered requests are waits (a wait, or a
 * cancel waiting for its job to stop) and that has nothing left to send
 * goes over to the new process as it is: its socket, and the bytes the
 * new process is to read first, which are each parked wait written out
 * again as a wait request (same id and tag, what is left of its
 * timeout), then whatever the client sent that was not parsed yet. A
 * client therefore sees its replies in order and never notices. Others
 * (rare: replies are let out before the park) are closed, and the
 * client reconnects. */

static bool conn_settled(const struct conn *c)
{
        for (const struct req *r = c->head; r; r = r->next)
                if (r->state != REQ_WAIT)
                        return false;
        return unsent(c) == 0 && c->nfdq == 0;
}

bool conns_settled(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i] && !s->conns[i]->closing && !conn_settled(s->conns[i]))
                        return false;
        return true;
}

void conns_park(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++) {
                struct conn *c = s->conns[i];
                struct io_uring_sqe *sqe;

                if (!c || c->closing)
                        continue;
                if (!conn_settled(c)) {
                        /* Its replies were not read in time (or it had a
                         * request under way): closed, as a slow reader
                         * is; the client reconnects and asks again. */
                        if (unsent(c))
                                s->stats.c[C_SLOW_READERS_CLOSED]++;
                        conn_close(c);
                        continue;
                }
                if (c->recv_armed) {
                        sqe = get_sqe(s);
                        io_uring_prep_cancel64(sqe, ud_pack(UD_RECV, c->idx, c->gen), 0);
                        io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
                }
        }
}

bool conns_parked(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i] && (s->conns[i]->closing || s->conns[i]->ring_ops))
                        return false;
        return true;
}

static int append_hex(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";

        if (grow_array((void **)buf, cap, *len + 2 * n + 1, 1) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                (*buf)[(*len)++] = digits[(unsigned char)p[i] >> 4];
                (*buf)[(*len)++] = digits[(unsigned char)p[i] & 15];
        }
        (*buf)[*len] = 0;
        return 0;
}

/* The bytes the new process reads first on c, hex-encoded. */
static int conn_input(struct conn *c, char **ret)
{
        _cleanup_free_ char *hex = NULL;
        size_t len = 0, cap = 0;
        int64_t now = now_mono_ms();
        int r = append_hex(&hex, &len, &cap, "", 0);

        for (struct req *q = c->head; q && r == 0; q = q->next) {
                json_t *w = json_pack("{s:s, s:I}", "op", "wait", "id", (json_int_t)q->job_id);
                char *line;
                if (w && timer_armed(&q->wtimer))
                        json_object_set_new(w, "timeout_ms", json_integer(MAX(q->wtimer.due_ms - now, 0)));
                if (w && q->tag)
                        json_object_set(w, "tag", q->tag);
                line = w ? json_dumps(w, JSON_COMPACT) : NULL;
                json_decref(w);
                if (!line)
                        return -ENOMEM;
                r = append_hex(&hex, &len, &cap, line, strlen(line));
                r = r ?: append_hex(&hex, &len, &cap, "\n", 1);
                free(line);
        }
        r = r ?: append_hex(&hex, &len, &cap, c->rbuf + c->rstart, c->rlen - c->rstart);
        if (r == 0)
                *ret = TAKE_PTR(hex);
        return r;
}

int conns_handoff(struct server *s, json_t *conns)
{
        for (unsigned i = 0; i < s->conn_cap; i++) {
                struct conn *c = s->conns[i];
                _cleanup_free_ char *input = NULL;
                int r;

                if (!c)
                        continue;
                r = conn_input(c, &input);
                if (r < 0)
                        return r;
                if (json_array_append_new(conns, json_pack("{s:i, s:s, s:b}", "fd", c->fd, "input", input,
                                                           "eof", c->close_after_flush)) < 0)
                        return -ENOMEM;
                if (fcntl(c->fd, F_SETFD, 0) < 0)
                        return -errno;
        }
        return 0;
}

void conns_handoff_undo(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i])
                        (void)fcntl(s->conns[i]->fd, F_SETFD, FD_CLOEXEC);
}

void conns_unpark(struct server *s)
{
        for (unsigned i = 0; i < s->conn_cap; i++) {
                struct conn *c = s->conns[i];
                if (!c || c->closing)
                        continue;
                process_lines(c);
                arm_recv(c);
                maybe_done(c);
        }
}

static int unhex(int ch)
{
        return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Takes fd: on failure it is closed. */
static int conn_adopt(struct server *s, json_t *e)
{
        int fd = (int)json_integer_value(json_object_get(e, "fd"));
        const char *hex = json_string_value(json_object_get(e, "input"));
        size_t n = hex ? strlen(hex) / 2 : 0;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct conn *c;
        int r;

        if (fd < 3)
                return -EBADF;
        if (!hex || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                close(fd);
                return -EBADF;
        }
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        r = conn_make(s, fd, &cred, &c);
        if (r < 0) {
                close(fd);
                return r;
        }
        /* The handed bytes first; the first read goes after them. */
        r = grow_array((void **)&c->rbuf, &c->rcap, n + 1, 1);
        for (size_t i = 0; r == 0 && i < n; i++) {
                int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        r = -EBADMSG;
                else
                        c->rbuf[c->rlen++] = (char)(hi << 4 | lo);
        }
        if (r < 0) {
                conn_close(c);
                return r;
        }
        if (json_is_true(json_object_get(e, "eof")))
                c->close_after_flush = true;
        process_lines(c);
        arm_recv(c);
        maybe_done(c);
        return 0;
}

int conns_adopt(struct server *s, json_t *handoff)
{
        json_t *conns = json_object_get(handoff, "conns"), *e;
        size_t i;

        json_array_foreach(conns, i, e) {
                int r = conn_adopt(s, e);
                if (r < 0)
                        log_warning_errno(r, "re-exec: cannot take over a client connection; it is closed");
        }
        return 0;
}
