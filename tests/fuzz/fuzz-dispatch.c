/* fuzz-dispatch: the daemon's request path end to end, in process.
 *
 * A real struct server is put together with the same server_open() as
 * ringqd (store, recovery, dispatch index, one worker slot, the store
 * thread and a real io_uring), minus the listener, the signalfd and
 * sd_notify. Each input
 * is one client connection (or several in turn, split at lines "@@";
 * as root, every second one is made as uid 65534 so owner checks are
 * reached): a socketpair whose daemon end goes through conn_new(), the
 * input bytes written into the peer end, then the peer's write side shut
 * down. The daemon's loop_turn() then runs, one bounded turn at a time,
 * until that
 * connection has been answered and closed and the store has nothing in
 * flight. Submits really commit to SQLite; no job ever runs, because the
 * harness starts with dispatch stopped (s->dp.stopped) (nothing in the daemon clears
 * it but the retry timer that only a failed spawn arms).
 *
 * A connection that can make no more progress on its own (a wait on a
 * job that never ends, or one whose timeout is further away than
 * STUCK_MS) is closed by the harness with conn_close(), as an idle
 * timeout or a client hang-up would; only a parked wait may hold a
 * connection like that.
 *
 * Checks besides the sanitizers, all of them always: every reply line is
 * a JSON object with a boolean "ok"; replies come in request order, each
 * echoing its request's tag, and each fits its request (a bad line gets
 * bad_request; status, cancel, retry and wait answer with the job they
 * named or one of the errors the SPEC lists for them; wait with a job
 * that has ended, cancel with it canceled, retry with it queued; list
 * with at most limit jobs in id order matching its filters); when the
 * connection ended by itself and no bound was hit, every complete
 * non-blank request line got exactly one reply; no job process was ever
 * started; only completions the harness can produce appear on the ring.
 *
 * Read your writes: connections run one after the other and no job
 * runs, so the queue changes only by the submits, cancels and retries
 * the harness sent, and a status or list sees every write made before
 * it on its connection and none after it (a wait sees every write
 * before it, and may be ended by a cancel after it). The harness keeps
 * a model of the queue (`model`) from the replies to those writes and
 * holds each reply against it: not_found, forbidden, invalid_state,
 * duplicate, the job a status or wait shows, the exact jobs a list
 * returns. Once a write goes unanswered (a forced close, a bound) or
 * fails in the store, the model no longer knows every job; until the
 * next fresh server each connection then starts from nothing and holds
 * its replies to what it learnt itself (its own writes and reads).
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
#include <sys/socket.h>
#include <sys/stat.h>

#include "conn.h"
#include "log.h"
#include "proto.h"
#include "ringq/protocol.h"
#include "server.h"

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
static bool debug;                  /* RINGQ_FUZZ_DEBUG=1: print replies */

/* What the harness knows of the queue, learnt from replies (see the top
 * of the file). complete: v holds every job the server has, each as it
 * is now; else v holds only what the current connection learnt. */
struct mjob {
        int64_t id, owner;
        int state;
        char *queue, *key;      /* key may be NULL */
};

static struct {
        struct mjob *v;         /* ascending id */
        size_t n, cap;
        bool complete;
} model;

static void model_clear(bool complete)
{
        for (size_t i = 0; i < model.n; i++) {
                free(model.v[i].queue);
                free(model.v[i].key);
        }
        model.n = 0;
        model.complete = complete;
}

static struct mjob *model_get(int64_t id)
{
        size_t lo = 0, hi = model.n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (model.v[mid].id == id)
                        return &model.v[mid];
                if (model.v[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* The job with this id (queue, key, owner and state to be filled in). */
static struct mjob *model_put(int64_t id)
{
        struct mjob *m = model_get(id);
        size_t at = 0;

        if (m)
                return m;
        if (model.n == model.cap) {
                model.cap = model.cap ? model.cap * 2 : 64;
                model.v = realloc(model.v, model.cap * sizeof(*model.v));
                CHECK(model.v);
        }
        while (at < model.n && model.v[at].id < id)
                at++;
        memmove(model.v + at + 1, model.v + at, (model.n - at) * sizeof(*model.v));
        model.n++;
        model.v[at] = (struct mjob){ .id = id, .owner = -1, .state = -1 };
        return &model.v[at];
}

static void model_drop(int64_t id)
{
        struct mjob *m = model_get(id);

        if (!m)
                return;
        free(m->queue);
        free(m->key);
        memmove(m, m + 1, (size_t)(model.v + model.n - (m + 1)) * sizeof(*m));
        model.n--;
}

/* Keys belong to their owner: (owner, queue, key) names one job. */
static struct mjob *model_find_key(int64_t owner, const char *queue, const char *key)
{
        for (size_t i = 0; i < model.n; i++)
                if (model.v[i].key && model.v[i].owner == owner && strcmp(model.v[i].key, key) == 0 &&
                    strcmp(model.v[i].queue, queue) == 0)
                        return &model.v[i];
        return NULL;
}

static char *dup_or_null(const char *v)
{
        char *d = v ? strdup(v) : NULL;

        CHECK(!v || d);
        return d;
}

/* Learn a job from a job object of a reply. */
static void model_learn(json_t *job)
{
        struct mjob *m;

        /* A job that runs after others changes when they do (a cancel
         * reaches it a commit later): the model does not follow it. */
        if (json_array_size(json_object_get(job, "after")) > 0) {
                model_drop(json_integer_value(json_object_get(job, "id")));
                model.complete = false;
                return;
        }
        m = model_put(json_integer_value(json_object_get(job, "id")));

        free(m->queue);
        free(m->key);
        m->state = ringq_state_from_name(json_string_value(json_object_get(job, "state")));
        m->owner = json_integer_value(json_object_get(job, "owner_uid"));
        m->queue = dup_or_null(json_string_value(json_object_get(job, "queue")) ?: "");
        m->key = dup_or_null(json_string_value(json_object_get(job, "key")));
}

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

        CHECK(s);
        server_init(s);
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
        notify_init(s);

        /* main.c's state dir, without the lock (the dir is ours). */
        CHECK(mkdir(dir, 0755) == 0);
        s->state_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(s->state_dirfd >= 0);
        CHECK(mkdirat(s->state_dirfd, "output", 0755) == 0);
        s->output_dirfd = openat(s->state_dirfd, "output", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(s->output_dirfd >= 0);
        CHECK(asprintf(&s->db_path, "%s/queue.db", dir) > 0);
        CHECK(asprintf(&s->output_dir, "%s/output", dir) > 0);
        copy_file(template_db, s->state_dirfd, "queue.db");

        MUST(server_open(s, &err));
        /* Nothing may run: dispatch_run() returns at once while this
         * is set, and only the spawn-retry timer clears it. */
        s->dp.stopped = true;
        notify_ready(s);
        dispatch_run(s);
        loop_arm_store(s);
        pump_store(s); /* the first prune batch */
        model_clear(true); /* an empty queue, and the harness knows it */
        return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static void server_down(struct server *s)
{
        char dir[4200];

        snprintf(dir, sizeof(dir), "%s", s->cfg.state_dir);
        server_done(s);
        free(s);
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
        if (srv)
                server_down(srv);
        srv = NULL;
        model_clear(false);
        free(model.v);
        model.v = NULL;
        model.cap = 0;
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
        int op;
        int64_t id, after_id;
        int state;
        unsigned limit;
        char *queue;            /* submit, list */
        char *key;              /* submit */
        bool after;             /* submit: runs after other jobs */
        json_t *tag;            /* owned */
};

struct asked_list {
        struct asked *v;
        unsigned n;
        bool too_long;          /* a line over max_request_bytes: the rest is cut */
};

static void asked_done(struct asked_list *l)
{
        for (unsigned i = 0; i < l->n; i++) {
                json_decref(l->v[i].tag);
                free(l->v[i].queue);
                free(l->v[i].key);
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
                        if (rq.op == RINGQ_OP_LIST || rq.op == RINGQ_OP_SUBMIT)
                                a->queue = dup_or_null(rq.queue);
                        if (rq.op == RINGQ_OP_SUBMIT)
                                a->key = dup_or_null(rq.key);
                        a->after = rq.nafter > 0;
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

static bool is_err(json_t *reply, const char *code)
{
        const char *const codes[] = { code, NULL };

        return is_error(reply, codes);
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

static bool same_str(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* The job object is the model's job m, in state `state`. */
static bool job_is_in(json_t *job, const struct mjob *m, int state)
{
        return json_integer_value(json_object_get(job, "id")) == m->id && job_state(job) == state &&
               json_integer_value(json_object_get(job, "owner_uid")) == m->owner &&
               same_str(json_string_value(json_object_get(job, "queue")), m->queue) &&
               same_str(json_string_value(json_object_get(job, "key")), m->key);
}

/* Whether a connection of uid may see or change m (ops.c: may_touch). */
static bool mine(const struct mjob *m, int64_t uid)
{
        return uid == 0 || m->owner == uid;
}

static bool is_write(int op)
{
        return op == RINGQ_OP_SUBMIT || op == RINGQ_OP_CANCEL || op == RINGQ_OP_RETRY;
}

static bool has_id(int op)
{
        return op == RINGQ_OP_STATUS || op == RINGQ_OP_CANCEL || op == RINGQ_OP_RETRY || op == RINGQ_OP_WAIT ||
               op == RINGQ_OP_OUTPUT;
}

static void fail_reply(unsigned i, const struct asked *a, json_t *reply, const char *what)
{
        char *t = json_dumps(reply, JSON_COMPACT);
        const struct mjob *m = a->parsed && has_id(a->op) ? model_get(a->id) : NULL;

        fprintf(stderr, "fuzz-dispatch: reply %u to a %s: %s: %s\n", i,
                a->parsed ? ringq_op_names[a->op] : "bad line", what, t);
        if (m)
                fprintf(stderr, "fuzz-dispatch: the harness knows job %lld as %s, owner %lld, queue %s (%s)\n",
                        (long long)m->id, m->state >= 0 ? ringq_state_names[m->state] : "?", (long long)m->owner,
                        m->queue, model.complete ? "every job known" : "learnt on this connection");
        else if (a->parsed && has_id(a->op))
                fprintf(stderr, "fuzz-dispatch: the harness %s job %lld\n",
                        model.complete ? "knows there is no" : "knows nothing of", (long long)a->id);
        free(t);
        abort();
}

#define EXPECT(cond)                                 \
        do {                                         \
                if (!(cond))                         \
                        fail_reply(i, a, reply, #cond); \
        } while (0)

/* A write answered with an error that says nothing of what it did (the
 * database or memory failed): the model no longer knows that job. */
static void model_unsure(int64_t id)
{
        model_drop(id);
        model.complete = false;
}

/* Replies come in request order (SPEC), one per request, each echoing its
 * tag; hold each against what was asked, and against the model of the
 * queue, which learns from each reply in turn. Returns how many requests
 * the replies answered. */
/* A cancel or retry: a job in state from_a or from_b goes to state to;
 * any other state is invalid_state. */
static void check_change(unsigned i, const struct asked *a, json_t *reply, const struct mjob *m, int64_t uid,
                         bool known, bool soft, int from_a, int from_b, int to)
{
        static const char *const change_errs[] = { "not_found", "forbidden", "invalid_state", "storage_error",
                                                   "internal", NULL };
        bool ok = json_is_true(json_object_get(reply, "ok"));
        json_t *job = json_object_get(reply, "job");

        EXPECT(ok ? job_is(reply, a->id) && job_state(job) == to : is_error(reply, change_errs));
        if (soft) {
                model_unsure(a->id);
                return;
        }
        if (known) {
                if (!m)
                        EXPECT(is_err(reply, "not_found"));
                else if (!mine(m, uid))
                        EXPECT(is_err(reply, "forbidden"));
                else if ((int)m->state == from_a || (int)m->state == from_b)
                        EXPECT(ok && job_is_in(job, m, to));
                else
                        EXPECT(is_err(reply, "invalid_state"));
        }
        if (ok)
                model_learn(job);
}

static unsigned check_replies(const struct asked_list *l, json_t *got, int64_t uid)
{
        static const char *const bad_request[] = { "bad_request", NULL };
        static const char *const soft_errs[] = { "storage_error", "internal", NULL };
        static const char *const submit_errs[] = { "queue_full", "storage_error", "shutting_down", "internal", NULL };
        static const char *const after_errs[] = { "queue_full", "storage_error", "shutting_down", "internal",
                                                  "not_found", "forbidden", NULL };
        static const char *const pause_errs[] = { "forbidden", "storage_error", "internal", NULL };
        static const char *const lookup_errs[] = { "not_found", "forbidden", "storage_error", "internal", NULL };
        static const char *const wait_errs[] = { "not_found", "forbidden", "timeout", "storage_error",
                                                 "shutting_down", "internal", NULL };
        static const char *const list_errs[] = { "timeout", "storage_error", "internal", NULL };
        unsigned i;

        for (i = 0; i < json_array_size(got); i++) {
                json_t *reply = json_array_get(got, i);
                const struct asked *a = i < l->n ? &l->v[i] : NULL;
                bool ok = json_is_true(json_object_get(reply, "ok")), soft, known;
                json_t *job = json_object_get(reply, "job");
                struct mjob *m;

                if (!a) {
                        /* Past the last request only too_large may come. */
                        static const char *const tl[] = { "too_large", NULL };
                        CHECK(is_error(reply, tl));
                        return i;
                }
                if (!ok && strcmp(json_string_value(json_object_get(reply, "error")) ?: "", "too_large") == 0)
                        return i; /* a line longer than max_request_bytes: the end */
                EXPECT(json_equal(json_object_get(reply, "tag"), a->tag) ||
                       (!a->tag && !json_object_get(reply, "tag")));
                if (!a->parsed) {
                        EXPECT(is_error(reply, bad_request));
                        continue;
                }
                m = has_id(a->op) ? model_get(a->id) : NULL;
                known = m || model.complete; /* what a->id holds, if anything */
                soft = !ok && is_error(reply, soft_errs);
                switch (a->op) {
                case RINGQ_OP_PING:
                        EXPECT(ok && json_integer_value(json_object_get(reply, "protocol")) == RINGQ_PROTOCOL);
                        break;
                case RINGQ_OP_SUBMIT: {
                        int64_t id = json_integer_value(json_object_get(reply, "id"));
                        bool dup = json_is_true(json_object_get(reply, "duplicate"));
                        struct mjob *same = a->key ? model_find_key(uid, a->queue, a->key) : NULL;

                        EXPECT(ok ? id > 0 : is_error(reply, a->after ? after_errs : submit_errs));
                        if (!ok) {
                                if (soft)
                                        model.complete = false;
                                break;
                        }
                        if (a->after && !dup) {
                                /* Waiting, or canceled at once if what it
                                 * runs after was: the model does not follow. */
                                model.complete = false;
                                break;
                        }
                        /* A key this owner used before in that queue names
                         * the job it was first given to; another owner's
                         * is invisible; a new job has a new id. */
                        EXPECT(!same || (dup && id == same->id));
                        EXPECT(same || !dup || !model.complete);
                        EXPECT(dup || !model_get(id));
                        if (!dup) {
                                m = model_put(id);
                                m->state = RINGQ_STATE_QUEUED;
                                m->owner = uid;
                                m->queue = dup_or_null(a->queue);
                                m->key = dup_or_null(a->key);
                        }
                        break;
                }
                case RINGQ_OP_STATUS:
                case RINGQ_OP_OUTPUT:
                        /* output: the job as status shows it, and whether its
                         * file came along (no job runs here: never). */
                        EXPECT(ok ? job_is(reply, a->id) : is_error(reply, lookup_errs));
                        EXPECT(a->op == RINGQ_OP_STATUS || !ok || json_is_false(json_object_get(reply, "fd")));
                        if (soft)
                                break;
                        if (!known) {
                                if (ok)
                                        model_learn(job);
                        } else if (!m)
                                EXPECT(is_err(reply, "not_found"));
                        else if (!mine(m, uid))
                                EXPECT(is_err(reply, "forbidden"));
                        else /* read your writes */
                                EXPECT(ok && job_is_in(job, m, m->state));
                        break;
                case RINGQ_OP_CANCEL:
                        check_change(i, a, reply, m, uid, known, soft, RINGQ_STATE_QUEUED, RINGQ_STATE_CANCELED,
                                     RINGQ_STATE_CANCELED);
                        break;
                case RINGQ_OP_RETRY:
                        check_change(i, a, reply, m, uid, known, soft, RINGQ_STATE_CANCELED, RINGQ_STATE_FAILED,
                                     RINGQ_STATE_QUEUED);
                        break;
                case RINGQ_OP_WAIT:
                        EXPECT(ok ? job_is(reply, a->id) && ringq_state_is_final(job_state(job))
                                  : is_error(reply, wait_errs));
                        /* Nothing to learn: a wait may end by a later write. */
                        if (soft || !known)
                                break;
                        if (!m)
                                EXPECT(is_err(reply, "not_found"));
                        else if (!mine(m, uid))
                                EXPECT(is_err(reply, "forbidden"));
                        else if (ringq_state_is_final(m->state)) /* read your writes */
                                EXPECT(ok && job_is_in(job, m, m->state));
                        else /* parked: only a later cancel (no job runs) or its timeout ends it */
                                EXPECT(ok ? job_is_in(job, m, RINGQ_STATE_CANCELED) : is_err(reply, "timeout"));
                        break;
                case RINGQ_OP_LIST: {
                        json_t *jobs = json_object_get(reply, "jobs"), *j;
                        int64_t prev = a->after_id, last;
                        size_t k, n;

                        EXPECT(ok ? json_is_array(jobs) : is_error(reply, list_errs));
                        if (!ok)
                                break;
                        n = json_array_size(jobs);
                        EXPECT(n <= a->limit);
                        json_array_foreach(jobs, k, j) {
                                int64_t id = json_integer_value(json_object_get(j, "id"));
                                const struct mjob *mj = model_get(id);
                                EXPECT(id > prev); /* id order, after after_id */
                                EXPECT(a->state < 0 || job_state(j) == a->state);
                                EXPECT(!a->queue ||
                                       strcmp(json_string_value(json_object_get(j, "queue")) ?: "", a->queue) == 0);
                                EXPECT(uid == 0 || json_integer_value(json_object_get(j, "owner_uid")) == uid);
                                /* Read your writes: each job as the model has it. */
                                EXPECT(mj ? job_is_in(j, mj, mj->state) : !model.complete);
                                prev = id;
                        }
                        /* ... and every job of the model it should show is
                         * there: those after after_id it may see that match
                         * its filters, up to the last one if the limit cut it. */
                        /* A page cut by size says so ("more"); then what
                         * follows its last job is for the next page. */
                        last = n < a->limit && !json_is_true(json_object_get(reply, "more")) ? INT64_MAX
                               : n                                                        ? prev
                                                                                          : a->after_id;
                        k = 0;
                        for (size_t x = 0; x < model.n; x++) {
                                const struct mjob *mj = &model.v[x];
                                if (mj->id <= a->after_id || mj->id > last || !mine(mj, uid) ||
                                    (a->state >= 0 && mj->state != a->state) ||
                                    (a->queue && strcmp(mj->queue, a->queue) != 0))
                                        continue;
                                while (k < n && json_integer_value(json_object_get(json_array_get(jobs, k), "id")) <
                                                        mj->id)
                                        k++;
                                EXPECT(k < n && json_integer_value(json_object_get(json_array_get(jobs, k), "id")) ==
                                                        mj->id);
                        }
                        if (!model.complete)
                                json_array_foreach(jobs, k, j)
                                        model_learn(j);
                        break;
                }
                case RINGQ_OP_STATS:
                        EXPECT(ok && json_is_object(json_object_get(reply, "counters")));
                        break;
                case RINGQ_OP_PAUSE:
                case RINGQ_OP_RESUME:
                        /* Root only; no job runs here, so the model holds. */
                        EXPECT(ok ? uid == 0 && json_is_array(json_object_get(reply, "queues"))
                                  : is_error(reply, pause_errs));
                        EXPECT(uid == 0 || is_err(reply, "forbidden"));
                        break;
                case RINGQ_OP_QUEUES:
                        EXPECT(ok && json_is_array(json_object_get(reply, "queues")));
                        break;
                default:
                        EXPECT(!"an op the parser does not know");
                }
        }
        return i;
}

static bool conn_alive(struct server *s, unsigned idx, uint32_t gen)
{
        return s->conns[idx] && s->conns[idx]->gen == gen;
}

/* Nothing can move connection c on its own: no completion came this turn,
 * nothing is queued for the ring (a reply a timer made in this turn has
 * its send still to be submitted), no send is out, nothing is in the
 * store, and no timer is due soon. */
static bool conn_stuck(struct server *s, struct conn *c, unsigned handled)
{
        return handled == 0 && io_uring_sq_ready(&s->ring) == 0 && !c->send_armed &&
               c->slen - c->soff + c->wlen == 0 && !store_inflight(s->store) &&
               timers_next(&s->timers) > now_mono_ms() + STUCK_MS;
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
        int64_t deadline, uid;
        unsigned answered;

        make_pair(sv, other);
        {
                struct ucred cred;
                socklen_t clen = sizeof(cred);
                CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0);
                CHECK(conn_new(s, sv[0], &cred) == 0);
        }
        for (idx = 0; idx < s->conn_cap; idx++)
                if (s->conns[idx] && s->conns[idx]->fd == sv[0])
                        break;
        CHECK(idx < s->conn_cap);
        gen = s->conns[idx]->gen;
        uid = s->conns[idx]->uid;
        /* Not knowing every job, this connection starts from nothing: what
         * others learnt may have been changed by a write that was cut. */
        if (!model.complete)
                model_clear(false);
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
                if (conn_alive(s, idx, gen) && conn_stuck(s, s->conns[idx], handled)) {
                        /* Nothing in flight and no timer soon: only a
                         * job ending could move it, and none runs. Only
                         * a parked wait may hold a connection so; else
                         * a request is lost (say, held behind writes
                         * that have all been answered). */
                        if (!s->conns[idx]->closing && !s->conns[idx]->nwaits) {
                                fprintf(stderr, "fuzz-dispatch: connection stuck with no wait parked: %u pending, "
                                        "%u deferred, %u writes in flight\n", s->conns[idx]->npending,
                                        s->conns[idx]->ndeferred, s->conns[idx]->writes);
                                abort();
                        }
                        forced = true;
                        conn_close(s->conns[idx]);
                }
        }
        peer_read(&p);
        bounds1 = s->stats.c[C_TOO_LARGE] + s->stats.c[C_SLOW_READERS_CLOSED] + s->stats.c[C_IDLE_CLOSED];
        collect_requests(data, size, &asked);
        answered = check_replies(&asked, p.got, uid);
        /* A write with no reply may or may not have been done: from here
         * on the model does not know every job. */
        for (unsigned k = answered; k < asked.n; k++)
                if (asked.v[k].parsed && is_write(asked.v[k].op))
                        model.complete = false;
        if (debug)
                fprintf(stderr, "connection: uid %lld, %u request(s), %u reply(s)%s; model: %zu job(s), %s\n",
                        (long long)uid, asked.n, p.replies, forced ? ", closed by the harness" : "", model.n,
                        model.complete ? "every job" : "partial");
        /* Every request answered exactly once, unless the connection was
         * cut: by the harness (a wait that cannot end) or by a bound. */
        if (!forced && !asked.too_long && bounds0 == bounds1 && off == size) {
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
