/* fuzz-dispatch: the daemon's request path end to end, in process.
 *
 * A real struct server is put together the way main.c does it (config,
 * state dir, store_open, recovery, reader_open, workers_init with one
 * slot, an eventfd for the store thread, a real io_uring, store_start,
 * prune_init), minus the listener, the signalfd and sd_notify. Each input
 * is one client connection (or several in turn, split at lines "@@";
 * as root, every second one is made as uid 65534 so owner checks are
 * reached): a socketpair whose daemon end goes through conn_new(), the
 * input bytes written into the peer end, then the peer's write side shut
 * down. The loop machinery then runs, one bounded turn
 * at a time exactly like loop_run() (submit and wait, handle the batch of
 * completions, advance, run due timers, reap connections), until that
 * connection has been answered and closed and the store has nothing in
 * flight. Submits really commit to SQLite; no job ever runs, because the
 * harness starts with dispatch_blocked set (nothing in the daemon clears
 * it but the retry timer that only a failed spawn arms).
 *
 * A connection that can make no more progress on its own (a wait without
 * timeout on a job that never ends) is closed by the harness with
 * conn_close(), as an idle timeout or a client hang-up would.
 *
 * Checks besides the sanitizers: every reply line is a JSON object with a
 * boolean "ok"; replies come in request order, each echoing its request's
 * tag, and each fits its request (a bad line gets bad_request; status,
 * cancel, retry and wait answer with the job they named or one of the
 * errors the SPEC lists for them; wait and cancel with a job that has
 * ended; list with at most limit jobs in id order matching its filters);
 * when the connection ended by itself and no bound was hit, every
 * complete non-blank request line got exactly one reply; no job process
 * was ever started; only completions the harness can produce appear on
 * the ring. Two known daemon bugs (see known_bug_2 and collect_requests)
 * are counted and tolerated unless RINGQ_FUZZ_STRICT=1.
 *
 * Memory stays bounded and crashes reproduce: an input that committed
 * anything to the database is followed by a fresh server and state dir,
 * so every input starts from an empty queue; inputs that changed nothing
 * (bad lines, pings, lookups: most of them) share a server, which is
 * replaced at least every 1000 inputs. RINGQ_FUZZ_RESET_EVERY=N instead
 * keeps one server, queue and all, for N inputs (stateful: finds more,
 * reproduces less). State dirs live under $TMPDIR; each starts from a
 * copy of an empty queue.db made once by store_open().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "conn.h"
#include "log.h"
#include "proto.h"
#include "recover.h"
#include "ringq/protocol.h"
#include "server.h"
#include "users.h"

#define CHECK(x)                                                                               \
        do {                                                                                   \
                if (!(x)) {                                                                    \
                        fprintf(stderr, "fuzz-dispatch: check failed at %s:%d: %s\n", __FILE__, \
                                __LINE__, #x);                                                 \
                        abort();                                                               \
                }                                                                              \
        } while (0)

#define MAX_REQUEST 1024       /* small, so too_large is reachable */
#define TURN_MS 10             /* longest sleep of one loop turn */
#define STUCK_MS 50            /* a timer further away than this: stuck */
#define INPUT_DEADLINE_MS 8000 /* below libFuzzer's -timeout=10 */

static char state_root[4096];
static struct server *srv;
static unsigned server_serial, inputs_on_server;
static unsigned reset_every = 1000; /* RINGQ_FUZZ_RESET_EVERY */
static bool stateful;               /* set when RINGQ_FUZZ_RESET_EVERY is */
static uint64_t commits_at_start;   /* of this server, after its first prune */
static bool strict;                 /* RINGQ_FUZZ_STRICT=1: known bugs fail too */
static bool debug;                  /* RINGQ_FUZZ_DEBUG=1: print replies */
static unsigned long known_bug_hits, known_bug2_hits;

/* One turn of the daemon's own loop (loop_turn); no job may ever run
 * here, since dispatch is blocked. */
static unsigned turn(struct server *s, int64_t max_ms)
{
        int r = loop_turn(s, max_ms);

        if (r < 0) {
                fprintf(stderr, "fuzz-dispatch: io_uring wait: %s\n", strerror(-r));
                abort();
        }
        CHECK(s->busy_slots == 0);
        return (unsigned)r;
}

static void pump_store(struct server *s)
{
        int64_t deadline = now_mono_ms() + INPUT_DEADLINE_MS;

        while (store_inflight(s->store)) {
                CHECK(now_mono_ms() < deadline);
                (void)turn(s, TURN_MS);
        }
}

/* ---- a server, as main.c's run() builds it ---- */

static void set(struct server *s, const char *key, const char *value)
{
        char *why = NULL;

        if (config_set(&s->cfg, key, value, &why) < 0) {
                fprintf(stderr, "fuzz-dispatch: config %s=%s: %s\n", key, value, why ? why : "?");
                abort();
        }
}

#define MUST(x)                                                                                      \
        do {                                                                                         \
                int _r = (x);                                                                        \
                if (_r < 0) {                                                                        \
                        fprintf(stderr, "fuzz-dispatch: %s: %s%s%s\n", #x, strerror(-_r), err ? ": " : "", \
                                err ? err : "");                                                     \
                        abort();                                                                     \
                }                                                                                    \
        } while (0)

/* An empty queue.db made once by store_open() (schema creation is most
 * of the cost of a fresh server); each server starts from a copy, as a
 * restarted ringqd with an empty queue would. */
static char template_db[4200];

static void make_template(void)
{
        struct config cfg;
        struct store *st = NULL;
        char dir[4200], *err = NULL;

        snprintf(dir, sizeof(dir), "%s/template", state_root);
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(template_db, sizeof(template_db), "%s/queue.db", dir);
        config_init(&cfg);
        cfg.durability = DURABILITY_NORMAL;
        MUST(store_open(template_db, &cfg, &st, &err));
        store_close(st); /* checkpoints: queue.db alone is the database */
        config_done(&cfg);
}

static void copy_file(const char *from, int dirfd, const char *to)
{
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        CHECK(in >= 0);
        out = openat(dirfd, to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        CHECK(out >= 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                CHECK(write(out, buf, (size_t)n) == n);
        CHECK(n == 0);
        close(in);
        close(out);
}

static struct server *server_up(void)
{
        struct server *s = calloc(1, sizeof(*s));
        char dir[4200], *err = NULL;
        int64_t finished = 0;

        CHECK(s);
        *s = (struct server){
                .listen_fd = -1, .sig_fd = -1, .store_efd = -1, .devnull_fd = -1,
                .state_dirfd = -1, .output_dirfd = -1,
        };
        snprintf(dir, sizeof(dir), "%s/state-%u", state_root, server_serial++);
        config_init(&s->cfg);
        set(s, "state_dir", dir);
        set(s, "workers", "1");
        set(s, "max_clients", "4");
        set(s, "durability", "normal"); /* no fsync per commit: speed */
        set(s, "max_request_bytes", "1024");
        set(s, "high_water", "32");   /* queue_full within one input */
        MUST(config_finalize(&s->cfg, &err));
        s->uid = getuid();
        s->start_mono_ms = now_mono_ms();
        s->accepting = true;
        notify_init(s);

        /* main.c: setup_state_dir(), without the lock (the dir is ours). */
        CHECK(mkdir(dir, 0755) == 0);
        s->state_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(s->state_dirfd >= 0);
        CHECK(mkdirat(s->state_dirfd, "output", 0755) == 0);
        s->output_dirfd = openat(s->state_dirfd, "output", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(s->output_dirfd >= 0);
        CHECK(asprintf(&s->db_path, "%s/queue.db", dir) > 0);
        CHECK(asprintf(&s->output_dir, "%s/output", dir) > 0);
        s->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(s->devnull_fd >= 0);
        copy_file(template_db, s->state_dirfd, "queue.db");

        MUST(store_open(s->db_path, &s->cfg, &s->store, &err));
        MUST(recover_interrupted(s->store));
        MUST(workers_load_queue(s));
        MUST(store_count_finished(s->store, &finished));
        MUST(reader_open(s->db_path, &s->reader));
        s->conn_cap = (unsigned)s->cfg.max_clients;
        s->conns = calloc(s->conn_cap, sizeof(*s->conns));
        CHECK(s->conns);
        MUST(workers_init(s));
        /* Nothing may run: workers_dispatch() returns at once while this
         * is set, and only the spawn-retry timer clears it. */
        s->dispatch_blocked = true;
        s->store_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        CHECK(s->store_efd >= 0);
        MUST(loop_init(s));
        MUST(store_start(s->store, s->store_efd, s->output_dirfd));
        prune_init(s, finished);
        ops_update_accepting(s);
        notify_ready(s);
        workers_dispatch(s);
        loop_arm_store(s);
        pump_store(s); /* the first prune batch */
        return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

/* main.c: server_done() */
static void server_down(struct server *s)
{
        char dir[4200];

        snprintf(dir, sizeof(dir), "%s", s->cfg.state_dir);
        conn_close_all(s);
        s->reap_conns = true;
        for (unsigned i = 0; i < s->conn_cap; i++)
                if (s->conns[i])
                        s->conns[i]->ring_ops = 0;
        conn_reap(s);
        free(s->conns);
        listener_close(s);
        store_close(s->store);
        reader_close(s->reader);
        workers_done(s);
        loop_done(s);
        qindex_done(&s->qi);
        idmap_done(&s->canceled);
        idmap_done(&s->waiters);
        users_flush();
        safe_close(s->sig_fd);
        safe_close(s->store_efd);
        safe_close(s->devnull_fd);
        safe_close(s->output_dirfd);
        safe_close(s->state_dirfd);
        free(s->db_path);
        free(s->output_dir);
        config_done(&s->cfg);
        free(s);
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
        if (known_bug_hits)
                fprintf(stderr, "fuzz-dispatch: known bug 1 (error message not UTF-8) hit by %lu connection(s)\n",
                        known_bug_hits);
        if (known_bug2_hits)
                fprintf(stderr, "fuzz-dispatch: known bug 2 (reply from a later state of the job) hit by %lu "
                        "reply(s)\n", known_bug2_hits);
        if (srv)
                server_down(srv);
        srv = NULL;
        (void)nftw(state_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *tmp = getenv("TMPDIR"), *e;

        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("STATE_DIRECTORY");
        unsetenv("RUNTIME_DIRECTORY");
        signal(SIGPIPE, SIG_IGN);
        e = getenv("RINGQ_FUZZ_LOG_LEVEL");
        log_max_level = e ? log_level_from_string(e) : LOG_ERR;
        if (log_max_level < 0)
                log_max_level = LOG_ERR;
        debug = getenv("RINGQ_FUZZ_DEBUG") != NULL;
        e = getenv("RINGQ_FUZZ_STRICT");
        strict = e && strcmp(e, "1") == 0;
        e = getenv("RINGQ_FUZZ_RESET_EVERY");
        if (e && atoi(e) > 0) {
                reset_every = (unsigned)atoi(e);
                stateful = true;
        }
        snprintf(state_root, sizeof(state_root), "%s/ringq-fuzz-dispatch.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(state_root)) {
                perror("fuzz-dispatch: mkdtemp");
                abort();
        }
        atexit(cleanup);
        make_template();
        return 0;
}

/* ---- one input: one client connection ---- */

/* What a client reads: complete lines, each one JSON object with "ok". */
struct peer {
        int fd;
        size_t len;
        unsigned replies;
        bool eof;
        json_t *got;            /* the replies, in order */
        char *buf;              /* kept across inputs */
        size_t cap;
};

/* A list of 1000 jobs is one line of well under this. */
#define PEER_MAX (16u << 20)

static void peer_read(struct peer *p)
{
        for (;;) {
                ssize_t n;
                char *nl;

                if (p->cap - p->len < 65536) {
                        CHECK(p->cap < PEER_MAX);
                        p->cap = p->cap ? p->cap * 2 : 1 << 17;
                        p->buf = realloc(p->buf, p->cap);
                        CHECK(p->buf);
                }
                n = recv(p->fd, p->buf + p->len, p->cap - p->len, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        p->eof = true; /* ECONNRESET after a forced close */
                        return;
                }
                if (n < 0)
                        return;
                p->len += (size_t)n;
                while ((nl = memchr(p->buf, '\n', p->len))) {
                        size_t l = (size_t)(nl - p->buf);
                        json_t *o = json_loadb(p->buf, l, JSON_REJECT_DUPLICATES, NULL);

                        if (debug)
                                fprintf(stderr, "reply: %.*s\n", (int)MIN(l, 300), p->buf);
                        CHECK(o && json_is_object(o));
                        CHECK(json_is_boolean(json_object_get(o, "ok")));
                        CHECK(json_array_append_new(p->got, o) == 0);
                        p->replies++;
                        memmove(p->buf, nl + 1, p->len - l - 1);
                        p->len -= l + 1;
                }
        }
}

/* What the client asked, line by line, to hold each reply against. */
struct asked {
        bool parsed;            /* proto_parse accepted it */
        bool bad_utf8;          /* known bug 1: it gets no reply at all */
        int op;
        int64_t id, after_id;
        int state;
        unsigned limit;
        char *queue;
        json_t *tag;            /* owned */
};

struct asked_list {
        struct asked *v;
        unsigned n;
        bool too_long;          /* a line over max_request_bytes: the rest is cut */
        bool bad_utf8;
};

static void asked_done(struct asked_list *l)
{
        for (unsigned i = 0; i < l->n; i++) {
                json_decref(l->v[i].tag);
                free(l->v[i].queue);
        }
        free(l->v);
        *l = (struct asked_list){ 0 };
}

/* Complete non-blank lines, as conn.c frames them; stops at a line the
 * daemon answers with too_large (it closes the connection after it). */
static void collect_requests(const uint8_t *data, size_t size, struct asked_list *l)
{
        size_t start = 0;

        *l = (struct asked_list){ 0 };
        for (size_t i = 0; i <= size; i++) {
                struct request rq;
                struct proto_error err;
                struct asked *a;
                size_t len;

                if (i == size) {
                        l->too_long |= size - start > MAX_REQUEST;
                        break;
                }
                if (data[i] != '\n')
                        continue;
                len = i - start;
                if (len > MAX_REQUEST) {
                        l->too_long = true;
                        break;
                }
                if (len && data[i - 1] == '\r')
                        len--;
                if (len == 0) {
                        start = i + 1;
                        continue;
                }
                l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
                CHECK(l->v);
                a = &l->v[l->n++];
                *a = (struct asked){ .op = -1, .state = -1 };
                a->parsed = proto_parse((const char *)data + start, len, &rq, &err) == 0;
                a->tag = rq.tag ? json_incref(rq.tag) : NULL;
                if (a->parsed) {
                        a->op = rq.op;
                        a->id = rq.id;
                        a->state = rq.state;
                        a->limit = rq.limit;
                        a->after_id = rq.after_id;
                        a->queue = rq.queue && rq.op == RINGQ_OP_LIST ? strdup(rq.queue) : NULL;
                } else {
                        json_t *reply = proto_err_from(&err);
                        a->bad_utf8 = !reply;
                        l->bad_utf8 |= a->bad_utf8;
                        json_decref(reply);
                }
                request_done(&rq);
                start = i + 1;
        }
}

static bool is_error(json_t *reply, const char *const *codes)
{
        const char *e = json_string_value(json_object_get(reply, "error"));

        if (json_is_true(json_object_get(reply, "ok")) || !e || !json_is_string(json_object_get(reply, "message")))
                return false;
        for (; *codes; codes++)
                if (strcmp(e, *codes) == 0)
                        return true;
        return false;
}

static int job_state(json_t *job)
{
        return ringq_state_from_name(json_string_value(json_object_get(job, "state")));
}

static bool job_is(json_t *reply, int64_t id)
{
        json_t *job = json_object_get(reply, "job");

        return json_is_object(job) && json_integer_value(json_object_get(job, "id")) == id &&
               job_state(job) >= 0;
}

/* Known bug 2, reported to the lead: a cancel and a retry of the same job
 * committed in one group commit are both answered from the row as it is
 * after the whole batch, so the cancel (and every wait on that job) can
 * be answered with the job "queued", and a retry with it "canceled". */
static void known_bug_2(const char *what, json_t *reply)
{
        known_bug2_hits++;
        if (strict || debug) {
                char *t = json_dumps(reply, JSON_COMPACT);
                fprintf(stderr, "fuzz-dispatch: %s: %s\n", what, t);
                free(t);
                if (strict)
                        abort();
        }
}

#define EXPECT(cond)                                                                             \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        char *_t = json_dumps(reply, JSON_COMPACT);                              \
                        fprintf(stderr, "fuzz-dispatch: reply %u to a %s: %s: %s\n", i,          \
                                a->parsed ? ringq_op_names[a->op] : "bad line", #cond, _t);     \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

/* Replies come in request order (SPEC), one per request, each echoing its
 * tag; hold each against what was asked. */
static void check_replies(const struct asked_list *l, json_t *got)
{
        static const char *const bad_request[] = { "bad_request", NULL };
        static const char *const submit_errs[] = { "queue_full", "storage_error", "shutting_down", "internal", NULL };
        static const char *const lookup_errs[] = { "not_found", "forbidden", "storage_error", "internal", NULL };
        static const char *const change_errs[] = { "not_found", "forbidden", "invalid_state", "storage_error",
                                                   "internal", NULL };
        static const char *const wait_errs[] = { "not_found", "forbidden", "timeout", "storage_error",
                                                 "shutting_down", "internal", NULL };
        static const char *const list_errs[] = { "timeout", "storage_error", "internal", NULL };

        for (unsigned i = 0; i < json_array_size(got); i++) {
                json_t *reply = json_array_get(got, i);
                const struct asked *a = i < l->n ? &l->v[i] : NULL;
                bool ok = json_is_true(json_object_get(reply, "ok"));

                if (!a || (a->bad_utf8 && !strict)) {
                        /* Past the last request only too_large may come;
                         * past a known-bug line the order is lost. */
                        if (!a) {
                                static const char *const tl[] = { "too_large", NULL };
                                CHECK(is_error(reply, tl));
                        }
                        return;
                }
                if (!ok && strcmp(json_string_value(json_object_get(reply, "error")) ?: "", "too_large") == 0)
                        return; /* a line longer than max_request_bytes: the end */
                EXPECT(json_equal(json_object_get(reply, "tag"), a->tag) ||
                       (!a->tag && !json_object_get(reply, "tag")));
                if (!a->parsed) {
                        EXPECT(is_error(reply, bad_request));
                        continue;
                }
                switch (a->op) {
                case RINGQ_OP_PING:
                        EXPECT(ok && json_integer_value(json_object_get(reply, "protocol")) == RINGQ_PROTOCOL);
                        break;
                case RINGQ_OP_SUBMIT:
                        EXPECT(ok ? json_integer_value(json_object_get(reply, "id")) > 0 : is_error(reply, submit_errs));
                        break;
                case RINGQ_OP_STATUS:
                        EXPECT(ok ? job_is(reply, a->id) : is_error(reply, lookup_errs));
                        break;
                case RINGQ_OP_CANCEL:
                case RINGQ_OP_WAIT:
                        EXPECT(ok ? job_is(reply, a->id)
                                  : is_error(reply, a->op == RINGQ_OP_WAIT ? wait_errs : change_errs));
                        if (ok && !ringq_state_is_final(job_state(json_object_get(reply, "job"))))
                                known_bug_2(a->op == RINGQ_OP_WAIT ? "wait answered with a job that has not ended"
                                                                   : "cancel answered with a job not canceled",
                                            reply);
                        break;
                case RINGQ_OP_RETRY:
                        EXPECT(ok ? job_is(reply, a->id) : is_error(reply, change_errs));
                        if (ok && job_state(json_object_get(reply, "job")) != RINGQ_STATE_QUEUED)
                                known_bug_2("retry answered with a job not queued", reply);
                        break;
                case RINGQ_OP_LIST: {
                        json_t *jobs = json_object_get(reply, "jobs"), *j;
                        int64_t prev = a->after_id;
                        size_t k;
                        EXPECT(ok ? json_is_array(jobs) : is_error(reply, list_errs));
                        if (!ok)
                                break;
                        EXPECT(json_array_size(jobs) <= a->limit);
                        json_array_foreach(jobs, k, j) {
                                int64_t id = json_integer_value(json_object_get(j, "id"));
                                EXPECT(id > prev); /* id order, after after_id */
                                EXPECT(a->state < 0 || job_state(j) == a->state);
                                EXPECT(!a->queue ||
                                       strcmp(json_string_value(json_object_get(j, "queue")) ?: "", a->queue) == 0);
                                prev = id;
                        }
                        break;
                }
                case RINGQ_OP_STATS:
                        EXPECT(ok && json_is_object(json_object_get(reply, "counters")));
                        break;
                default:
                        EXPECT(!"an op the parser does not know");
                }
        }
}

static bool conn_alive(struct server *s, unsigned idx, uint32_t gen)
{
        return s->conns[idx] && s->conns[idx]->gen == gen;
}

/* The client's end of a socketpair carries the credentials of whoever
 * made it: as root, the harness makes the pair as OTHER_UID for every
 * second connection, so owner checks (forbidden) are reachable. */
#define OTHER_UID 65534

static void make_pair(int sv[2], bool other)
{
        bool switched = other && geteuid() == 0 && seteuid(OTHER_UID) == 0;

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        if (switched)
                CHECK(seteuid(0) == 0);
}

/* One client connection: send data, half-close, read every reply, and
 * run the loop until the daemon has closed it and the store is idle. */
static void one_connection(struct server *s, const uint8_t *data, size_t size, bool other)
{
        static struct peer p;
        int sv[2];
        unsigned idx = 0;
        struct asked_list asked;
        uint32_t gen;
        size_t off = 0;
        bool wr_open = true, forced = false;
        uint64_t bounds0, bounds1;
        int64_t deadline;

        make_pair(sv, other);
        CHECK(conn_new(s, sv[0]) == 0);
        for (idx = 0; idx < s->conn_cap; idx++)
                if (s->conns[idx] && s->conns[idx]->fd == sv[0])
                        break;
        CHECK(idx < s->conn_cap);
        gen = s->conns[idx]->gen;
        p.len = p.replies = 0;
        p.eof = false;
        p.fd = sv[1];
        p.got = json_array();
        CHECK(p.got);
        bounds0 = s->stats.c[C_TOO_LARGE] + s->stats.c[C_SLOW_READERS_CLOSED] + s->stats.c[C_IDLE_CLOSED];

        deadline = now_mono_ms() + INPUT_DEADLINE_MS;
        while (conn_alive(s, idx, gen) || store_inflight(s->store)) {
                unsigned handled;

                if (now_mono_ms() > deadline) {
                        fprintf(stderr, "fuzz-dispatch: connection not done after %dms\n", INPUT_DEADLINE_MS);
                        abort();
                }
                /* The client writes what the socket takes, then hangs up
                 * its sending side. */
                while (wr_open && off < size) {
                        ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        break;
                                wr_open = false; /* the daemon closed it */
                                break;
                        }
                        off += (size_t)n;
                }
                if (wr_open && off == size) {
                        (void)shutdown(sv[1], SHUT_WR);
                        wr_open = false;
                }
                handled = turn(s, TURN_MS);
                peer_read(&p);
                if (handled == 0 && conn_alive(s, idx, gen) && !store_inflight(s->store) &&
                    timers_next(&s->timers) > now_mono_ms() + STUCK_MS) {
                        /* Nothing in flight and no timer soon: only a
                         * job ending could move it, and none runs. */
                        forced = true;
                        conn_close(s->conns[idx]);
                }
        }
        peer_read(&p);
        bounds1 = s->stats.c[C_TOO_LARGE] + s->stats.c[C_SLOW_READERS_CLOSED] + s->stats.c[C_IDLE_CLOSED];
        collect_requests(data, size, &asked);
        known_bug_hits += asked.bad_utf8;
        check_replies(&asked, p.got);
        /* Every request answered exactly once, unless the connection was
         * cut: by the harness (a wait that cannot end), by a bound, or by
         * known bug 1. */
        if (!forced && !asked.too_long && bounds0 == bounds1 && off == size && (strict || !asked.bad_utf8)) {
                if (p.replies != asked.n) {
                        fprintf(stderr, "fuzz-dispatch: %u request line(s), %u replies\n", asked.n, p.replies);
                        abort();
                }
        }
        CHECK(p.replies <= asked.n + 1); /* + too_large */
        asked_done(&asked);
        json_decref(p.got);
        p.got = NULL;
        close(sv[1]);
}

/* An input is one or more connections, one after the other, separated
 * by a line "@@" (which the daemon never sees); every second one is made
 * by OTHER_UID when the harness runs as root. */
#define MAX_CONNECTIONS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t start = 0;
        unsigned nconn = 0;

        if (!srv) {
                struct store_info si;
                srv = server_up();
                store_get_info(srv->store, &si);
                commits_at_start = si.commits;
        }

        for (size_t i = 0; i <= size && nconn < MAX_CONNECTIONS; i++) {
                bool sep = i + 3 <= size && (i == 0 || data[i - 1] == '\n') && memcmp(data + i, "@@\n", 3) == 0;
                if (i < size && !sep)
                        continue;
                one_connection(srv, data + start, i - start, nconn % 2 == 1);
                nconn++;
                if (sep) {
                        start = i + 3;
                        i += 2;
                }
        }

        /* An input that committed anything changed the queue: the next
         * one starts from an empty queue again, so every input is
         * reproducible alone. Inputs that changed nothing (most of them:
         * bad lines, pings, lookups) share a server, for speed. */
        {
                struct store_info si;
                store_get_info(srv->store, &si);
                if (!stateful && si.commits != commits_at_start)
                        inputs_on_server = reset_every;
        }
        if (++inputs_on_server >= reset_every) {
                server_down(srv);
                srv = NULL;
                inputs_on_server = 0;
        }
        return 0;
}
