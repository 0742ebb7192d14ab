/* ringq-bench submit and overload: K connections, each with up to D
 * requests in flight, driven by one thread with ppoll().
 *
 * Closed loop (submit): every connection is kept at depth D until count
 * requests are sent or the duration runs out. Open loop (overload): request
 * i is due at t0 + i/rate and goes out on the next connection with room; a
 * request sent late because every window was full keeps its due time, so
 * its latency includes the wait (no coordinated omission). One that is
 * only as late as the sender's own pacing tick counts from its send:
 * that tick is the bench's, not the server's.
 *
 * Latency is from the request's send (or due) time to its reply, taken on
 * CLOCK_MONOTONIC; replies come in request order on each connection, so a
 * FIFO of send times per connection pairs them.
 *
 * Targets: ringqd through the CLI's client (client.h), and, for comparison,
 * beanstalkd ("put" with a far delay -> "INSERTED <id>") and redis (RESP
 * "LPUSH <key> <body>" -> ":<n>") over a raw non-blocking socket. Every
 * target gets the same body: the JSON text of the ringq submit request.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

#define RAW_CHUNK 65536u
/* Open loop: the loop sleeps at least this long between sends, so requests
 * due close together go out together rather than one syscall each (on a
 * virtual machine a syscall costs microseconds). A request at most this
 * late counts from its send, one later from its due time. */
#define OPEN_LOOP_TICK_NS 200000
#define REDIS_KEY "ringq-bench"
/* beanstalkd: priority and time-to-run of the put; neither matters since
 * the job is delayed past the run. */
#define BEANSTALK_PRI 1024
#define BEANSTALK_TTR 120

enum reply_kind { REPLY_OK, REPLY_REJECTED, REPLY_ERROR };

/* Every target is driven the same way: one request rendered once and
 * copied per send, replies classified from their bytes. Parsing every
 * reply as JSON would tax the generator, which shares the machine with
 * the daemon, more for ringq than for its peers. */
struct bconn {
        client *rc;   /* ringq target: the CLI's client owns the socket */
        int fd;
        char *rbuf;   /* rbuf[rstart..rlen) read, not yet parsed */
        size_t rstart, rlen, rcap;
        char *wbuf;   /* wbuf[wstart..wlen) not yet written */
        size_t wstart, wlen, wcap;
        bool want_write;
        bool dirty;   /* requests queued since the last flush */
        bool dead;
        int64_t *sent; /* send (or due) times of unanswered requests, FIFO */
        unsigned head, n;
};

struct load {
        const bench_opts *o;
        double rate;        /* 0: closed loop */
        uint64_t limit;     /* requests to send at most */
        unsigned depth;
        struct bconn *c;
        unsigned nc;
        struct pollfd *pfd;
        json_t *req;        /* ringq request */
        char *raw;          /* the request's bytes for a raw target */
        size_t raw_len;
        size_t queue_at;    /* --queues: where the queue number's digits are in raw */
        int64_t t0, stop_at, last_reply;
        uint64_t issued, accepted, rejected, errors, lost, late;
        int64_t max_lag_ns;
        unsigned rr;
        hist *lat_ok, *lat_rej;
        char first_error[160];
};

/* ---- connections ---- */

static int raw_connect(const target *t, int *ret)
{
        int fd, r;

        if (t->unix_path) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                if (strlen(t->unix_path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                strcpy(sa.sun_path, t->unix_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                do
                        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
                while (r < 0 && errno == EINTR);
        } else {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
                int one = 1;

                r = getaddrinfo(t->host, t->port, &hints, &ai);
                if (r != 0)
                        return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
                fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        r = -errno;
                        freeaddrinfo(ai);
                        return r;
                }
                do
                        r = connect(fd, ai->ai_addr, ai->ai_addrlen);
                while (r < 0 && errno == EINTR);
                freeaddrinfo(ai);
                if (r == 0)
                        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (r < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int conn_open(struct load *l, struct bconn *c)
{
        int r;

        c->fd = -1;
        c->sent = calloc(l->depth, sizeof(*c->sent));
        if (!c->sent)
                return -ENOMEM;
        if (l->o->tgt.kind == TARGET_RINGQ) {
                r = client_connect(l->o->socket, &c->rc);
                if (r < 0)
                        return r;
                c->fd = client_fd(c->rc);
                return fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0 ? -errno : 0;
        }
        return raw_connect(&l->o->tgt, &c->fd);
}

static void conn_close(struct bconn *c)
{
        if (c->rc)
                c->rc = client_free(c->rc);
        else if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        free(c->rbuf);
        free(c->wbuf);
        free(c->sent);
}

/* Queue one request on c, stamped with t (ns). */
static int conn_issue(struct load *l, struct bconn *c, int64_t t)
{
        int r;

        r = client_buf_reserve(&c->wbuf, &c->wstart, &c->wlen, &c->wcap, l->raw_len);
        if (r < 0)
                return r;
        memcpy(c->wbuf + c->wlen, l->raw, l->raw_len);
        if (l->o->queues) {
                /* The line is rendered once; only the queue's number
                 * changes, in place, so spreading costs no re-render. */
                char digits[16];
                snprintf(digits, sizeof(digits), "%05u", (unsigned)(l->issued % l->o->queues));
                memcpy(c->wbuf + c->wlen + l->queue_at, digits, 5);
        }
        c->wlen += l->raw_len;
        c->sent[(c->head + c->n) % l->depth] = t;
        c->n++;
        c->dirty = true;
        l->issued++;
        return 0;
}

/* Write what the socket takes now. A dead peer ends the connection. */
static int conn_flush(struct bconn *c)
{
        c->dirty = false;
        while (c->wstart < c->wlen) {
                ssize_t n = send(c->fd, c->wbuf + c->wstart, c->wlen - c->wstart, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        if (errno == EPIPE || errno == ECONNRESET) {
                                c->dead = true;
                                return 0;
                        }
                        return -errno;
                }
                c->wstart += (size_t)n;
        }
        if (c->wstart == c->wlen)
                c->wstart = c->wlen = 0;
        c->want_write = c->wlen > c->wstart;
        return 0;
}

static void note_error(struct load *l, const char *what, size_t len)
{
        if (l->first_error[0])
                return;
        if (len >= sizeof(l->first_error))
                len = sizeof(l->first_error) - 1;
        memcpy(l->first_error, what, len);
        l->first_error[len] = '\0';
        /* Keep it printable on one key=value line. */
        for (char *p = l->first_error; *p; p++)
                if (*p == '\r' || *p == '\n')
                        *p = ' ';
}

static void account(struct load *l, struct bconn *c, enum reply_kind k, int64_t now)
{
        int64_t t;

        if (c->n == 0) { /* a reply nobody asked for */
                l->errors++;
                note_error(l, "unexpected reply", 16);
                return;
        }
        t = c->sent[c->head];
        c->head = (c->head + 1) % l->depth;
        c->n--;
        l->last_reply = now;
        switch (k) {
        case REPLY_OK:
                l->accepted++;
                hist_add(l->lat_ok, (uint64_t)(now - t));
                break;
        case REPLY_REJECTED:
                l->rejected++;
                hist_add(l->lat_rej, (uint64_t)(now - t));
                break;
        case REPLY_ERROR:
                l->errors++;
                break;
        }
}

/* One complete raw reply at p[0..len): its length (> 0), 0 if incomplete. */
static size_t raw_reply(struct load *l, const char *p, size_t len, enum reply_kind *ret)
{
        const char *end;
        size_t n;

        if (l->o->tgt.kind == TARGET_RINGQ) {
                /* ringqd writes "ok" first and the error code next. */
                static const char ok[] = "{\"ok\":true", full[] = "\"error\":\"queue_full\"";

                end = memchr(p, '\n', len);
                if (!end)
                        return 0;
                n = (size_t)(end - p) + 1;
                if (n > sizeof(ok) - 1 && memcmp(p, ok, sizeof(ok) - 1) == 0)
                        *ret = REPLY_OK;
                else if (memmem(p, n, full, sizeof(full) - 1))
                        *ret = REPLY_REJECTED;
                else
                        *ret = REPLY_ERROR;
                if (*ret == REPLY_ERROR)
                        note_error(l, p, n - 1);
                return n;
        }
        end = memmem(p, len, "\r\n", 2);
        if (!end)
                return 0;
        n = (size_t)(end - p) + 2;
        if (l->o->tgt.kind == TARGET_REDIS) {
                if (p[0] == ':' || p[0] == '+')
                        *ret = REPLY_OK;
                else if (n > 4 && memcmp(p, "-OOM", 4) == 0)
                        *ret = REPLY_REJECTED;
                else
                        *ret = REPLY_ERROR;
        } else {
                if (n > 9 && memcmp(p, "INSERTED ", 9) == 0)
                        *ret = REPLY_OK;
                else if ((n > 7 && memcmp(p, "BURIED ", 7) == 0) || memcmp(p, "OUT_OF_MEMORY\r", 14) == 0 ||
                         memcmp(p, "DRAINING\r", 9) == 0)
                        *ret = REPLY_REJECTED;
                else
                        *ret = REPLY_ERROR;
        }
        if (*ret != REPLY_OK)
                note_error(l, p, n - 2);
        return n;
}

/* Read and account every reply available on c. */
static int conn_read(struct load *l, struct bconn *c)
{
        for (;;) {
                ssize_t n;
                int64_t now;
                bool short_read;
                size_t space;
                int r;

                r = client_buf_reserve(&c->rbuf, &c->rstart, &c->rlen, &c->rcap, RAW_CHUNK);
                if (r < 0)
                        return r;
                space = c->rcap - c->rlen;
                n = recv(c->fd, c->rbuf + c->rlen, space, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == ECONNRESET) {
                                c->dead = true;
                                return 0;
                        }
                        return -errno;
                }
                if (n == 0) {
                        c->dead = true;
                        return 0;
                }
                c->rlen += (size_t)n;
                short_read = (size_t)n < space;
                now = now_ns();
                for (;;) {
                        enum reply_kind k;
                        size_t used = raw_reply(l, c->rbuf + c->rstart, c->rlen - c->rstart, &k);

                        if (used == 0)
                                break;
                        c->rstart += used;
                        account(l, c, k, now);
                }
                if (c->rlen - c->rstart > RAW_CHUNK) /* no line end in sight */
                        return -EBADMSG;
                if (short_read) /* drained; poll says when there is more */
                        return 0;
        }
}

/* ---- requests ---- */

int bench_submit_request(const bench_opts *o, int64_t delay_ms, json_t **ret)
{
        _cleanup_json_ json_t *req = NULL, *argv = json_array();
        _cleanup_free_ char *cmd = strdup(o->cmd);
        char *save = NULL;

        if (!argv || !cmd)
                return -ENOMEM;
        if (o->ping) {
                *ret = json_pack("{s:s}", "op", "ping");
                return *ret ? 0 : -ENOMEM;
        }
        for (char *w = strtok_r(cmd, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
                if (json_array_append_new(argv, json_string(w)) < 0)
                        return -ENOMEM;
        if (json_array_size(argv) == 0)
                return -EINVAL;
        req = json_pack("{s:s, s:O, s:s}", "op", "submit", "argv", argv, "cwd", "/");
        if (!req)
                return -ENOMEM;
        if (delay_ms > 0 && json_object_set_new(req, "delay_ms", json_integer(delay_ms)) < 0)
                return -ENOMEM;
        if (o->queues && json_object_set_new(req, "queue", json_string("q00000")) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}

static int raw_request(struct load *l)
{
        _cleanup_free_ char *body = json_dumps(l->req, JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t n;
        int r;

        if (!body)
                return -ENOMEM;
        n = strlen(body);
        if (l->o->tgt.kind == TARGET_RINGQ)
                r = asprintf(&l->raw, "%s\n", body);
        else if (l->o->tgt.kind == TARGET_REDIS)
                r = asprintf(&l->raw, "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                             strlen(REDIS_KEY), REDIS_KEY, n, body);
        else
                r = asprintf(&l->raw, "put %d %" PRId64 " %d %zu\r\n%s\r\n", BEANSTALK_PRI,
                             l->o->delay_ms > 0 ? (l->o->delay_ms + 999) / 1000 : 0, BEANSTALK_TTR, n, body);
        if (r < 0) {
                l->raw = NULL;
                return -ENOMEM;
        }
        l->raw_len = (size_t)r;
        if (l->o->queues) {
                char *q = strstr(l->raw, "\"q00000\"");
                if (!q)
                        return -EINVAL;
                l->queue_at = (size_t)(q - l->raw) + 2;
        }
        return 0;
}

/* ---- the loop ---- */

static uint64_t outstanding(const struct load *l)
{
        uint64_t n = 0;

        for (unsigned i = 0; i < l->nc; i++)
                if (!l->c[i].dead)
                        n += l->c[i].n;
        return n;
}

/* Send what is due: closed loop fills every window, open loop sends the
 * requests whose time has come on connections with room. */
static int issue_due(struct load *l, int64_t now)
{
        int r;

        if (now >= l->stop_at || l->issued >= l->limit)
                return 0;
        if (l->rate <= 0) {
                for (unsigned i = 0; i < l->nc && l->issued < l->limit; i++) {
                        struct bconn *c = &l->c[i];

                        while (!c->dead && c->n < l->depth && l->issued < l->limit)
                                if ((r = conn_issue(l, c, now)) < 0)
                                        return r;
                }
                return 0;
        }
        l->rr++;
        for (;;) {
                int64_t due = l->t0 + (int64_t)((double)l->issued * 1e9 / l->rate);
                unsigned tried = 0;
                struct bconn *c = NULL;

                if (due > now || l->issued >= l->limit)
                        return 0;
                /* Stay on one connection while it has room: what is due
                 * together goes out in one write instead of one write per
                 * request. Each call starts on the next connection, so
                 * all K carry load. */
                while (tried++ < l->nc) {
                        struct bconn *x = &l->c[l->rr % l->nc];

                        if (!x->dead && x->n < l->depth) {
                                c = x;
                                break;
                        }
                        l->rr++;
                }
                if (!c)
                        return 0; /* every window is full: wait for replies */
                if (now - due > 1000000) { /* more than 1 ms behind */
                        l->late++;
                        if (now - due > l->max_lag_ns)
                                l->max_lag_ns = now - due;
                }
                if ((r = conn_issue(l, c, now - due > 2 * OPEN_LOOP_TICK_NS ? due : now)) < 0)
                        return r;
        }
}

static int run_loop(struct load *l)
{
        int r;

        l->t0 = now_ns();
        l->stop_at = l->t0 + l->o->duration_ms * 1000000;
        l->last_reply = l->t0;
        for (;;) {
                int64_t now = now_ns(), wake = -1;
                bool sending = now < l->stop_at && l->issued < l->limit;
                struct timespec ts, *tsp = NULL;
                unsigned live = 0;

                if ((r = issue_due(l, now)) < 0)
                        return r;
                for (unsigned i = 0; i < l->nc; i++)
                        if (l->c[i].dirty && !l->c[i].dead && (r = conn_flush(&l->c[i])) < 0)
                                return r;
                if (outstanding(l) == 0 && (!sending || l->issued >= l->limit))
                        break;
                if (!sending && now >= l->stop_at + (int64_t)BENCH_DRAIN_MS * 1000000)
                        break; /* what is still out is lost */

                for (unsigned i = 0; i < l->nc; i++) {
                        struct bconn *c = &l->c[i];

                        l->pfd[i] = (struct pollfd){ .fd = -1 };
                        if (c->dead)
                                continue;
                        live++;
                        l->pfd[i].fd = c->fd;
                        l->pfd[i].events = (c->n > 0 ? POLLIN : 0) | (c->want_write ? POLLOUT : 0);
                }
                if (live == 0)
                        return -ECONNRESET;
                if (sending && l->rate > 0) {
                        wake = l->t0 + (int64_t)((double)l->issued * 1e9 / l->rate);
                        if (wake < now + OPEN_LOOP_TICK_NS)
                                wake = now + OPEN_LOOP_TICK_NS;
                }
                if (sending && (wake < 0 || wake > l->stop_at))
                        wake = l->stop_at;
                if (!sending)
                        wake = l->stop_at + (int64_t)BENCH_DRAIN_MS * 1000000;
                if (wake >= 0) {
                        int64_t d = wake - now;

                        if (d < 0)
                                d = 0;
                        ts = (struct timespec){ d / 1000000000, d % 1000000000 };
                        tsp = &ts;
                }
                r = ppoll(l->pfd, l->nc, tsp, NULL);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (unsigned i = 0; i < l->nc && r > 0; i++) {
                        struct bconn *c = &l->c[i];
                        short ev = l->pfd[i].revents;

                        if (!ev)
                                continue;
                        if ((ev & POLLOUT) && (r = conn_flush(c)) < 0)
                                return r;
                        if ((ev & (POLLIN | POLLHUP | POLLERR)) && (r = conn_read(l, c)) < 0)
                                return r;
                        r = 1;
                }
        }
        for (unsigned i = 0; i < l->nc; i++)
                l->lost += l->c[i].n;
        return 0;
}

static json_t *load_result(struct load *l, double offered)
{
        double el = (double)((l->last_reply > l->t0 ? l->last_reply : now_ns()) - l->t0) / 1e9;
        double send_s = (double)l->o->duration_ms / 1000.0;
        json_t *o = json_object();

        if (!o)
                return NULL;
        json_object_set_new(o, "mode", json_string(l->o->mode == MODE_OVERLOAD ? "overload" : "submit"));
        json_object_set_new(o, "target", json_string(l->o->tgt.spec));
        json_object_set_new(o, "connections", json_integer(l->nc));
        json_object_set_new(o, "depth", json_integer(l->depth));
        if (l->rate > 0) {
                uint64_t due = (uint64_t)(l->rate * send_s);

                json_object_set_new(o, "offered_per_s", json_real(round(offered)));
                json_object_set_new(o, "duration_s", json_real(send_s));
                json_object_set_new(o, "unsent", json_integer((json_int_t)(due > l->issued && l->issued < l->limit
                                                                                ? due - l->issued : 0)));
                json_object_set_new(o, "late", json_integer((json_int_t)l->late));
                json_object_set_new(o, "max_lag_ms", json_real(round((double)l->max_lag_ns / 1e3) / 1e3));
                json_object_set_new(o, "tick_ms", json_real((double)OPEN_LOOP_TICK_NS / 1e6));
        }
        json_object_set_new(o, "sent", json_integer((json_int_t)l->issued));
        json_object_set_new(o, "accepted", json_integer((json_int_t)l->accepted));
        json_object_set_new(o, "rejected", json_integer((json_int_t)l->rejected));
        json_object_set_new(o, "errors", json_integer((json_int_t)l->errors));
        json_object_set_new(o, "lost", json_integer((json_int_t)l->lost));
        json_object_set_new(o, "elapsed_s", json_real(round(el * 1000) / 1000));
        json_object_set_new(o, "accepted_per_s", json_real(el > 0 ? round((double)l->accepted / el) : 0));
        json_object_set_new(o, "rejected_per_s", json_real(el > 0 ? round((double)l->rejected / el) : 0));
        json_object_set_new(o, "latency_ms", hist_json(l->lat_ok));
        json_object_set_new(o, "reject_latency_ms", hist_json(l->lat_rej));
        if (l->first_error[0])
                json_object_set_new(o, "first_error", json_string(l->first_error));
        return o;
}

/* One run at rate (0: closed loop) for the options' count and duration. */
static int load_once(const bench_opts *o, double rate, uint64_t limit, int64_t duration_ms, json_t **ret,
                     int *ret_pid, proc_sample *ret_a, proc_sample *ret_b)
{
        bench_opts oo = *o;
        struct load l = { .o = &oo, .rate = rate, .limit = limit, .depth = o->depth, .nc = o->connections };
        int r, pid = o->pid;

        oo.duration_ms = duration_ms;
        l.c = calloc(l.nc, sizeof(*l.c));
        l.pfd = calloc(l.nc, sizeof(*l.pfd));
        l.lat_ok = calloc(1, sizeof(hist));
        l.lat_rej = calloc(1, sizeof(hist));
        if (!l.c || !l.pfd || !l.lat_ok || !l.lat_rej) {
                r = -ENOMEM;
                goto out;
        }
        for (unsigned i = 0; i < l.nc; i++)
                l.c[i].fd = -1;
        r = bench_submit_request(o, o->delay_ms, &l.req);
        if (r < 0)
                goto out;
        if ((r = raw_request(&l)) < 0)
                goto out;
        for (unsigned i = 0; i < l.nc; i++) {
                r = conn_open(&l, &l.c[i]);
                if (r < 0) {
                        fprintf(stderr, "ringq-bench: connect to %s: %s\n",
                                o->tgt.kind == TARGET_RINGQ ? o->socket : o->tgt.spec, strerror(-r));
                        r = -ECANCELED;
                        goto out;
                }
        }
        if (pid <= 0) {
                pid = peer_pid(l.c[0].fd);
                if (pid < 0)
                        pid = 0;
        }
        (void)proc_read(pid, ret_a);
        r = run_loop(&l);
        (void)proc_read(pid, ret_b);
        if (r < 0)
                goto out;
        *ret = load_result(&l, rate);
        *ret_pid = pid;
        r = *ret ? 0 : -ENOMEM;
out:
        if (l.c)
                for (unsigned i = 0; i < l.nc; i++)
                        conn_close(&l.c[i]);
        free(l.c);
        free(l.pfd);
        free(l.lat_ok);
        free(l.lat_rej);
        free(l.raw);
        json_decref(l.req);
        return r;
}

int bench_load(const bench_opts *o, double rate, json_t **ret)
{
        proc_sample a = { 0 }, b = { 0 };
        json_t *res = NULL, *probe = NULL;
        double capacity = 0;
        int pid = 0, r;

        if (o->mode == MODE_OVERLOAD && rate <= 0) {
                /* No rate given: twice what a short closed loop achieves. */
                int64_t pd = o->duration_ms / 4 < 2000 ? o->duration_ms / 4 : 2000;
                proc_sample pa, pb;

                r = load_once(o, 0, o->count, pd > 100 ? pd : 100, &probe, &pid, &pa, &pb);
                if (r < 0)
                        return r;
                capacity = json_real_value(json_object_get(probe, "accepted_per_s")) +
                           json_real_value(json_object_get(probe, "rejected_per_s"));
                json_decref(probe);
                rate = 2 * (capacity > 1 ? capacity : 1);
        }
        r = load_once(o, rate, o->count, o->duration_ms, &res, &pid, &a, &b);
        if (r < 0)
                return r;
        if (capacity > 0)
                json_object_set_new(res, "probed_capacity_per_s", json_real(round(capacity)));
        json_object_set_new(res, "daemon", proc_json(pid, &a, &b));
        *ret = res;
        return 0;
}

int bench_ringq_pid(const bench_opts *o)
{
        _cleanup_client_ client *c = NULL;
        int r = client_connect(o->socket, &c);

        return r < 0 ? r : peer_pid(client_fd(c));
}
