/* fuzz-dispatch: the daemon's request path end to end, in process, with
 * jobs running.
 *
 * A real struct server is put together with the same server_open() as
 * ringqd (store, recovery, dispatch index, two worker slots, the store
 * thread and a real io_uring), minus the listener, the signalfd and
 * sd_notify. Each input is one client connection (or several in turn,
 * split at lines "@@"; as root, every second one is made as uid 65534 so
 * owner checks are reached): a socketpair whose daemon end goes through
 * conn_new(), the input bytes written into the peer end, then the peer's
 * write side shut down. The daemon's loop_turn() then runs, one bounded
 * turn at a time, until that connection has been answered and closed and
 * the store has nothing in flight. Submits really commit to SQLite, and
 * dispatch really starts jobs: their ends come through pidfds on the same
 * ring.
 *
 * What a job runs is never the input's: the daemon's exec hook
 * (workers_exec_hook) swaps every job's argv, environment and working
 * directory for a fixed harmless program chosen by argv[0] alone
 * (kind_of): "false" runs /bin/false, "sleep" /bin/sleep for 1..50 ms
 * (from argv[1]), "stubborn" a shell that ignores SIGTERM while it sleeps
 * so, "missing" a path that does not exist (spawn: ENOENT), anything else
 * /bin/true; the environment is only PATH, the directory "/". An input
 * ends by holding dispatch and waiting for the jobs still running (a few
 * tens of ms at most), so no job outlives its input.
 *
 * A connection that can make no more progress on its own (a wait on a
 * job that cannot end soon: delayed, paused, waiting for others, backing
 * off) is closed by the harness with conn_close(), as an idle timeout or
 * a client hang-up would; only a parked wait on a job that has not ended
 * may hold a connection like that.
 *
 * Checks besides the sanitizers, all of them always: every reply line is
 * a JSON object with a boolean "ok"; replies come in request order, each
 * echoing its request's tag, and each fits its request (a bad line gets
 * bad_request, or queue_full if shaped as a submit ringqd may refuse
 * before parsing; status, cancel, retry and wait answer with the job they
 * named or one of the errors the SPEC lists for them; list with at most
 * limit jobs in id order matching its filters); every job object fits its
 * own state and what its program does (job_sane: a succeeded job ran a
 * program that exits 0, a failed one used up its attempts, "canceled"
 * only after someone asked, "dependency <id> <state>" only for a job of
 * its after); when the connection ended by itself and no bound was hit,
 * every complete non-blank request line got exactly one reply.
 *
 * Starts (the exec hook sees each, with the job's row): a job starts only
 * when its run_at has come, with every job of its after succeeded (read
 * from the database), with attempts left and, on a retry after a failure,
 * not before its backoff; never in a queue the harness knows paused (a
 * pause answered ok, no resume since that could have applied), never
 * while another slot still runs it, and never while a cancel of it is
 * parked. Liveness: when the loop has gone quiet
 * (no completion, nothing in the store, no timer due soon) with a slot
 * free, no queued job may be due, unpaused and free of what it waits for;
 * and a request parked then must be a wait on a job that has not ended.
 *
 * The model (`model`), and how it lives with asynchrony. Jobs start and
 * end between two replies, so the harness does not know a job's state,
 * only where it may be: each job has the states it was last seen in
 * (base), and poss_of() closes that under what may happen with no request
 * of this client: queued -> running (if every job of its after may still
 * succeed) -> succeeded (a program that exits 0) or failed (one that
 * fails, or may time out), failed -> queued again (attempts left),
 * queued -> canceled (its after names a job that may fail or be
 * canceled, or that may have: the cascade commits a little later, and
 * neither a retry nor a read that saw the job queued since undoes it). A
 * reply must show a state in that closure, and then the job is known in
 * that state again. Its own writes move it (submit: queued,
 * or canceled at once when a job of its after had already failed; cancel:
 * canceled; retry: queued), and they stay exact where they are decided in
 * order: not_found, forbidden, invalid_state, duplicate, keys, and
 * "every job the model has in that state" for list. Two replies are made
 * out of request order and are read with that in mind: a wait may answer
 * long after the requests behind it, so it teaches nothing unless the job
 * had ended when it was asked; and a cancel of a job that may be running
 * answers when the job has ended, after the writes behind it, so until
 * the next read the job may be anywhere it could have been, and that read
 * (and a wait) must show it as the cancel answered (unless a retry came
 * between).
 *
 * Once a write goes unanswered (a forced close, a bound) or fails in the
 * store, the model no longer knows every job; until the next fresh server
 * each connection then starts from nothing and holds its replies to what
 * it learnt itself (its own writes and reads). The paused queues are
 * known likewise from pause, resume and queues replies, and not known
 * once one of those goes unanswered, until the next such reply.
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
#include "jobargs.h"
#include "log.h"
#include "proto.h"
#include "ringq/protocol.h"
#include "server.h"
#include "worker.h"

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
#define SLEEP_MAX_MS 50        /* the longest a job runs (sleep, stubborn) */
#define TIMEOUT_SURE_MS 60000  /* a job timeout this long never fires in an input */
#define DUE_SLACK_MS 20        /* run_at against the loop's clocks */

static char state_root[4096];
static struct server *srv;
static unsigned server_serial, inputs_on_server;
static unsigned reset_every = 1000; /* RINGQ_FUZZ_RESET_EVERY */
static bool stateful;               /* set when RINGQ_FUZZ_RESET_EVERY is */
static uint64_t commits_at_start;   /* of this server, after its first prune */
static bool debug;                  /* RINGQ_FUZZ_DEBUG=1: print replies */

#define BIT(state) (1u << (state))
#define Q_ BIT(RINGQ_STATE_QUEUED)
#define R_ BIT(RINGQ_STATE_RUNNING)
#define S_ BIT(RINGQ_STATE_SUCCEEDED)
#define F_ BIT(RINGQ_STATE_FAILED)
#define C_ BIT(RINGQ_STATE_CANCELED)
#define ENDED (S_ | F_ | C_)
#define ANY (Q_ | R_ | ENDED)

/* ---- what a job runs ---- */

enum kind {
        K_TRUE,         /* /bin/true */
        K_FALSE,        /* /bin/false: exit 1 */
        K_SLEEP,        /* /bin/sleep a few ms, exit 0 */
        K_STUBBORN,     /* ignores SIGTERM while it sleeps a few ms, exit 0 */
        K_MISSING,      /* no such program: spawn: ENOENT */
};

/* The program the exec hook runs for a job whose argv begins so. Only the
 * last component of argv[0] chooses, and argv[1] gives at most a bounded
 * number of milliseconds; no byte of either reaches the program. */
static enum kind kind_of(const char *argv0, const char *argv1, int *ret_ms)
{
        const char *base = argv0 ? strrchr(argv0, '/') : NULL;
        double v = argv1 ? strtod(argv1, NULL) : 0;

        base = base ? base + 1 : argv0 ? argv0 : "";
        if (ret_ms)
                *ret_ms = v > 0 && v < 1 ? (int)CLAMP(v * 1000, 1, SLEEP_MAX_MS) : 10;
        if (strcmp(base, "false") == 0)
                return K_FALSE;
        if (strcmp(base, "sleep") == 0)
                return K_SLEEP;
        if (strcmp(base, "stubborn") == 0)
                return K_STUBBORN;
        if (strcmp(base, "missing") == 0)
                return K_MISSING;
        return K_TRUE;
}

static enum kind kind_json(json_t *argv)
{
        return kind_of(json_string_value(json_array_get(argv, 0)), json_string_value(json_array_get(argv, 1)),
                       NULL);
}

static bool kind_succeeds(enum kind k)
{
        return k == K_TRUE || k == K_SLEEP || k == K_STUBBORN;
}

/* A job timeout short enough to end a run within an input. */
static bool may_time_out(int64_t timeout_ms)
{
        return timeout_ms > 0 && timeout_ms <= TIMEOUT_SURE_MS;
}

/* ---- what the harness knows of jobs by id, beyond the model ---- */

/* Per server: facts the start hook and the requests leave, which
 * job_sane and the output check read. */
enum { F_LAUNCHED = 1, F_CANCEL_ASKED = 2 };
static struct idmap facts;

static unsigned fact(int64_t id)
{
        return id > 0 ? (unsigned)(uintptr_t)idmap_get(&facts, id) : 0;
}

static void fact_add(int64_t id, unsigned f)
{
        if (id > 0)
                CHECK(idmap_put(&facts, id, (void *)(uintptr_t)(fact(id) | f)) == 0);
}

/* The paused queues as the replies to pause, resume and queues said;
 * per-queue flags matter only while not every queue is paused (only a
 * resume of every queue ends that, and it clears them all). */
static struct {
        bool known, all;
        char **q;
        size_t n;
} paused;

/* The current connection's pause and resume requests (as root) not yet
 * answered: while a resume may be applied, nothing is known paused; while
 * either may be, nothing is known unpaused. */
static struct {
        unsigned pause_ops, resumes;
} cur;

static bool paused_has(const char *queue)
{
        for (size_t i = 0; i < paused.n; i++)
                if (strcmp(paused.q[i], queue) == 0)
                        return true;
        return false;
}

static void paused_clear(void)
{
        for (size_t i = 0; i < paused.n; i++)
                free(paused.q[i]);
        free(paused.q);
        paused.q = NULL;
        paused.n = 0;
        paused.all = false;
}

static void paused_set(const char *queue, bool on)
{
        for (size_t i = 0; i < paused.n; i++)
                if (strcmp(paused.q[i], queue) == 0) {
                        if (!on) {
                                free(paused.q[i]);
                                paused.q[i] = paused.q[--paused.n];
                        }
                        return;
                }
        if (!on)
                return;
        paused.q = realloc(paused.q, (paused.n + 1) * sizeof(*paused.q));
        CHECK(paused.q);
        paused.q[paused.n] = strdup(queue);
        CHECK(paused.q[paused.n]);
        paused.n++;
}

static bool definitely_paused(const char *queue)
{
        return paused.known && !cur.resumes && (paused.all || paused_has(queue ? queue : "default"));
}

static bool maybe_paused(const char *queue)
{
        return !paused.known || cur.pause_ops || paused.all || paused_has(queue ? queue : "default");
}

/* ---- the model of the queue ---- */

/* What the harness knows of a job, learnt from replies (see the top of
 * the file). complete: v holds every job the server has; else v holds
 * only what the current connection learnt. */
struct mjob {
        int64_t id, owner;
        char *queue, *key;      /* key may be NULL */
        unsigned base;          /* the states it was last known in (BIT) */
        int ended_as;           /* a cancel answered with this state: a read sees it so, unless a retry came; -1 */
        bool cascade;           /* a job of its after may have failed or been canceled: while queued, it
                                 * may be canceled for that (the cascade commits later) */
        enum kind kind;
        bool may_time_out;
        int max_attempts;
        int64_t *after;
        unsigned nafter;
        unsigned memo, memo_epoch; /* poss_of, for model.epoch */
};

static struct {
        struct mjob *v;         /* ascending id */
        size_t n, cap;
        bool complete;
        unsigned epoch;         /* bumped at every change: poss_of's memo */
} model;

static void mjob_free(struct mjob *m)
{
        free(m->queue);
        free(m->key);
        free(m->after);
        m->queue = m->key = NULL;
        m->after = NULL;
}

static void model_clear(bool complete)
{
        for (size_t i = 0; i < model.n; i++)
                mjob_free(&model.v[i]);
        model.n = 0;
        model.complete = complete;
        model.epoch++;
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

/* The job with this id (the rest to be filled in). Moves the others:
 * pointers into the model do not survive it. */
static struct mjob *model_put(int64_t id)
{
        struct mjob *m = model_get(id);
        size_t at = 0;

        model.epoch++;
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
        model.v[at] = (struct mjob){ .id = id, .owner = -1, .max_attempts = 1, .ended_as = -1 };
        return &model.v[at];
}

static void model_drop(int64_t id)
{
        struct mjob *m = model_get(id);

        if (!m)
                return;
        mjob_free(m);
        memmove(m, m + 1, (size_t)(model.v + model.n - (m + 1)) * sizeof(*m));
        model.n--;
        model.epoch++;
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

static unsigned poss_of(const struct mjob *m);

static bool runs_after(const struct mjob *m, int64_t id)
{
        for (unsigned k = 0; k < m->nafter; k++)
                if (m->after[k] == id)
                        return true;
        return false;
}

/* Job id may have failed or been canceled: the cascade (a store op of
 * its own, a commit or so later) may cancel whatever waits for it while
 * that is queued, even after id was retried, or the waiting job was, or a
 * read saw it queued since. Only a read that sees the job out of queued
 * ends that: the cascade is pushed before anything that lets it start. */
static void cascade_may(int64_t id)
{
        for (size_t i = 0; i < model.n; i++) {
                struct mjob *d = &model.v[i];
                if (!d->cascade && runs_after(d, id)) {
                        d->cascade = true;
                        model.epoch++;
                        cascade_may(d->id);
                }
        }
}

static void set_base(struct mjob *m, unsigned base, int ended_as)
{
        m->base = base;
        m->ended_as = ended_as;
        model.epoch++;
        if (base & (F_ | C_))
                cascade_may(m->id);
}

/* What a job of after may come to; a job the model does not hold, any. */
static unsigned dep_poss(int64_t id)
{
        const struct mjob *d = model_get(id);

        return d ? poss_of(d) : ANY;
}

/* Where m may be now: its base, closed under what happens without a
 * request of this client (see the top of the file). Starting is allowed
 * here whenever its after may still all succeed; whether a start was
 * right at its moment (pause, run_at, backoff) is the start hook's check. */
static unsigned poss_of(const struct mjob *m)
{
        unsigned p = m->base, was;
        bool can_start = true, cascade = m->cascade;

        if (m->memo_epoch == model.epoch && m->memo)
                return m->memo;
        for (unsigned k = 0; k < m->nafter; k++) {
                unsigned d = dep_poss(m->after[k]);
                can_start &= (d & S_) != 0;
                cascade |= (d & (F_ | C_)) != 0;
        }
        do {
                was = p;
                if ((p & Q_) && can_start)
                        p |= R_;
                if ((p & Q_) && cascade)
                        p |= C_;
                if (p & R_) {
                        if (kind_succeeds(m->kind))
                                p |= S_;
                        if (!kind_succeeds(m->kind) || m->may_time_out)
                                p |= F_ | (m->max_attempts > 1 ? Q_ : 0);
                }
        } while (p != was);
        ((struct mjob *)m)->memo = p;
        ((struct mjob *)m)->memo_epoch = model.epoch;
        return p;
}

static char *dup_or_null(const char *v)
{
        char *d = v ? strdup(v) : NULL;

        CHECK(!v || d);
        return d;
}

static int job_state(json_t *job)
{
        return ringq_state_from_name(json_string_value(json_object_get(job, "state")));
}

/* Learn a job from a job object of a reply: in base (0: the state it
 * shows), ended_as as set_base has it. */
static void model_learn(json_t *job, unsigned base, int ended_as)
{
        json_t *after = json_object_get(job, "after"), *t = json_object_get(job, "timeout_ms");
        struct mjob *m = model_put(json_integer_value(json_object_get(job, "id")));
        size_t n = json_array_size(after);

        mjob_free(m);
        m->owner = json_integer_value(json_object_get(job, "owner_uid"));
        m->queue = dup_or_null(json_string_value(json_object_get(job, "queue")) ?: "");
        m->key = dup_or_null(json_string_value(json_object_get(job, "key")));
        m->kind = kind_json(json_object_get(job, "argv"));
        m->may_time_out = json_is_integer(t) && may_time_out(json_integer_value(t));
        m->max_attempts = (int)json_integer_value(json_object_get(job, "max_attempts"));
        m->after = n ? calloc(n, sizeof(*m->after)) : NULL;
        CHECK(!n || m->after);
        for (size_t k = 0; k < n; k++)
                m->after[k] = json_integer_value(json_array_get(after, k));
        m->nafter = (unsigned)n;
        set_base(m, base ? base : BIT(job_state(job)), ended_as);
}

static const char *states_str(unsigned bits, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (int st = 0; st < _RINGQ_STATE_MAX; st++)
                if (bits & BIT(st))
                        len += (size_t)snprintf(buf + len, size - MIN(len, size), "%s%s", len ? "|" : "",
                                                ringq_state_names[st]);
        return buf;
}

/* ---- starts: the exec hook ---- */

static char **strv_new(const char *a, const char *b, const char *c, const char *d)
{
        const char *in[] = { a, b, c, d };
        char **v = calloc(5, sizeof(*v));

        CHECK(v);
        for (int i = 0; i < 4 && in[i]; i++)
                CHECK((v[i] = strdup(in[i])));
        return v;
}

#define START_FAIL(...)                                                        \
        do {                                                                   \
                fprintf(stderr, "fuzz-dispatch: job %lld started: ", (long long)j->id); \
                fprintf(stderr, __VA_ARGS__);                                  \
                fputc('\n', stderr);                                           \
                abort();                                                       \
        } while (0)

/* Was starting j right? Its row as dispatch found it. */
static void check_start(struct server *s, const struct job_rec *j)
{
        int64_t now = now_wall_ms();

        fact_add(j->id, F_LAUNCHED);
        if (debug) {
                fprintf(stderr, "start: job %lld, attempt %d, queued_seq %lld;", (long long)j->id, j->attempts + 1,
                        (long long)j->queued_seq);
                for (unsigned k = 0; k < s->nslots; k++)
                        fprintf(stderr, " slot %u: state %d job %lld seq %lld%s%s", k, (int)s->slots[k].state,
                                (long long)s->slots[k].job_id, (long long)s->slots[k].queued_seq,
                                s->slots[k].start_pending ? " start-pending" : "",
                                s->slots[k].start_failed ? " start-failed" : "");
                fputc('\n', stderr);
        }
        if (j->run_at > now + DUE_SLACK_MS)
                START_FAIL("%lld ms before its run_at", (long long)(j->run_at - now));
        if (j->attempts >= j->max_attempts)
                START_FAIL("attempt %d of %d", j->attempts + 1, j->max_attempts);
        /* A run after a failed one (a retry by hand resets both): not
         * before backoff * 2^(attempt-1), capped, less its 20 % jitter,
         * after the failed run's start. */
        if (j->attempts > 0 && j->started_at >= 0) {
                double ms = (double)j->backoff_ms;
                for (int k = 1; k < j->attempts && ms < RINGQ_BACKOFF_CAP_MS; k++)
                        ms *= 2;
                ms = MIN(ms, (double)RINGQ_BACKOFF_CAP_MS) * 0.8;
                if (j->run_at - j->started_at < (int64_t)ms - 1)
                        START_FAIL("attempt %d due %lld ms after attempt %d started; its backoff is %lld ms",
                                   j->attempts + 1, (long long)(j->run_at - j->started_at), j->attempts,
                                   (long long)j->backoff_ms);
        }
        if (definitely_paused(j->queue))
                START_FAIL("in queue %s, paused%s", j->queue ? j->queue : "default", paused.all ? " (all)" : "");
        for (unsigned k = 0; k < j->nafter; k++) {
                struct job_rec d;
                int e = reader_get(s->reader, j->after[k], &d);
                if (e < 0 || d.state != RINGQ_STATE_SUCCEEDED)
                        START_FAIL("before job %lld of its after succeeded (it is %s)", (long long)j->after[k],
                                   e < 0 ? strerror(-e) : ringq_state_names[d.state]);
                job_rec_done(&d);
        }
        /* One run at a time: another slot that holds it means two,
         * unless that one's start is refused (that child is killed, and
         * nothing of its run recorded), or
         * will be: its START names an earlier queued_seq (the job was
         * canceled and retried since it was picked). */
        for (unsigned k = 0; k < s->nslots; k++) {
                const struct slot *o = &s->slots[k];
                if (o->state == SLOT_FREE || o->job_id != j->id || o->start_failed ||
                    (o->start_pending && o->queued_seq != j->queued_seq))
                        continue;
                START_FAIL("while slot %u still holds it (state %d, queued_seq %lld, now %lld)", k, (int)o->state,
                           (long long)o->queued_seq, (long long)j->queued_seq);
        }
        /* A cancel parked on it waits for this job to end canceled: it
         * must not run again. */
        for (struct req *r = idmap_get(&s->waiters, j->id); r; r = r->wnext)
                if (r->is_write)
                        START_FAIL("again while a cancel of it is parked (attempt %d of %d)", j->attempts + 1,
                                   j->max_attempts);
}

/* workers_exec_hook: check the start, then swap what the job would run
 * for one of the fixed programs of kind_of. */
static int exec_hook(struct slot *sl, const struct job_rec *j)
{
        char arg[32], script[96];
        int ms;
        enum kind k = kind_of(sl->argv[0], sl->argv[1], &ms);
        char **argv, **paths;

        check_start(sl->srv, j);
        snprintf(arg, sizeof(arg), "%d.%03d", ms / 1000, ms % 1000);
        switch (k) {
        case K_FALSE:
                argv = strv_new("/bin/false", NULL, NULL, NULL);
                break;
        case K_SLEEP:
                argv = strv_new("/bin/sleep", arg, NULL, NULL);
                break;
        case K_STUBBORN:
                /* SIG_IGN survives exec: sleep ignores SIGTERM too. */
                snprintf(script, sizeof(script), "trap '' TERM; exec /bin/sleep %s", arg);
                argv = strv_new("/bin/sh", "-c", script, NULL);
                break;
        case K_MISSING:
                argv = strv_new("/nonexistent/ringq-fuzz-missing", NULL, NULL, NULL);
                break;
        default:
                argv = strv_new("/bin/true", NULL, NULL, NULL);
                break;
        }
        paths = strv_new(argv[0], NULL, NULL, NULL);
        strv_free(sl->argv);
        strv_free(sl->paths);
        strv_free(sl->envp);
        free(sl->cwd);
        sl->argv = argv;
        sl->paths = paths;
        sl->envp = strv_new("PATH=/usr/bin:/bin", NULL, NULL, NULL);
        sl->cwd = strdup("/");
        CHECK(sl->cwd);
        return 0;
}

/* One turn of the daemon's own loop (loop_turn). */
static unsigned turn(struct server *s, int64_t max_ms)
{
        int r = loop_turn(s, max_ms);

        if (r < 0) {
                fprintf(stderr, "fuzz-dispatch: io_uring wait: %s\n", strerror(-r));
                abort();
        }
        CHECK(s->busy_slots <= s->nslots);
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

/* Nothing moves the daemon now: no completion came this turn, nothing is
 * queued for the ring, nothing is in the store, and no timer is due soon. */
static bool quiet(struct server *s, unsigned handled)
{
        return handled == 0 && io_uring_sq_ready(&s->ring) == 0 && !store_inflight(s->store) &&
               timers_next(&s->timers) > now_mono_ms() + STUCK_MS;
}

/* Quiet with a slot free: a queued job that is due, not paused and waits
 * for nothing would have been started. Its after names only succeeded
 * jobs, else it waits (one not ended yet) or it should have been canceled
 * with the one that failed (the cascade is a store op: none is left). */
static int check_queued_row(void *ud, struct job_rec *j)
{
        struct server *s = ud;

        if (j->run_at > now_wall_ms() - DUE_SLACK_MS || maybe_paused(j->queue))
                return 0;
        for (unsigned k = 0; k < j->nafter; k++) {
                struct job_rec d;
                int e = reader_get(s->reader, j->after[k], &d), st = e < 0 ? -1 : d.state;
                if (e == 0)
                        job_rec_done(&d);
                if (st == RINGQ_STATE_FAILED || st == RINGQ_STATE_CANCELED) {
                        fprintf(stderr, "fuzz-dispatch: job %lld is still queued, though job %lld of its after "
                                "is %s and nothing is in flight\n", (long long)j->id, (long long)j->after[k],
                                ringq_state_names[st]);
                        abort();
                }
                if (st != RINGQ_STATE_SUCCEEDED)
                        return 0;
        }
        fprintf(stderr, "fuzz-dispatch: job %lld (queue %s) is due %lld ms, not paused, waits for nothing, and a "
                "slot is free, but it has not started\n", (long long)j->id, j->queue ? j->queue : "default",
                (long long)(now_wall_ms() - j->run_at));
        abort();
}

static void check_liveness(struct server *s)
{
        struct list_filter f = { .state = RINGQ_STATE_QUEUED, .limit = 1000, .owner_uid = -1 };

        if (s->dp.blocked || s->dp.stopped || !workers_free(s))
                return;
        (void)reader_list(s->reader, &f, check_queued_row, s);
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
        set(s, "workers", "2");
        set(s, "max_clients", "4");
        set(s, "durability", "normal"); /* no fsync per commit: speed */
        set(s, "max_request_bytes", "1024");
        set(s, "high_water", "32");   /* queue_full within one input */
        set(s, "kill_grace", "200ms"); /* above any job's own run: SIGKILL only if something is wrong */
        set(s, "cgroup", "off");      /* the jobs are the fuzzer's children, not the host's cgroups' */
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
        notify_ready(s);
        dispatch_run(s);
        loop_arm_store(s);
        pump_store(s); /* the first prune batch */
        model_clear(true); /* an empty queue, and the harness knows it */
        paused_clear();
        paused.known = true;
        idmap_done(&facts);
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

        CHECK(s->busy_slots == 0); /* every input ends with its jobs */
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
        paused_clear();
        idmap_done(&facts);
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
        /* The programs jobs run (exec_hook). */
        CHECK(access("/bin/true", X_OK) == 0 && access("/bin/false", X_OK) == 0 &&
              access("/bin/sleep", X_OK) == 0 && access("/bin/sh", X_OK) == 0);
        workers_exec_hook = exec_hook;
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
        /* Shaped as the CLI writes a submit: refused unread at the mark,
         * so a bad one may get queue_full (docs/protocol.md, Admission). */
        bool submit_shaped;
        int op;
        int64_t id, after_id;
        int state;
        unsigned limit;
        char *queue;            /* submit, list, pause, resume (NULL: every queue) */
        char *key;              /* submit */
        int64_t timeout_ms;     /* wait */
        /* submit: what the job will run and how */
        enum kind kind;
        bool may_time_out;
        int max_attempts;
        int64_t *after;
        unsigned nafter;
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
                free(l->v[i].after);
        }
        free(l->v);
        *l = (struct asked_list){ 0 };
}

/* The protocol's rule for a line ringqd may refuse before parsing it:
 * {"op":"submit", first, and no backslash, "queue" or "tag" in it. */
static bool submit_shaped(const char *line, size_t len)
{
        static const char head[] = "{\"op\":\"submit\",";

        return len >= sizeof(head) - 1 && memcmp(line, head, sizeof(head) - 1) == 0 && !memchr(line, '\\', len) &&
               !memmem(line, len, "\"queue\"", 7) && !memmem(line, len, "\"tag\"", 5);
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
                *a = (struct asked){ .op = -1, .state = -1, .timeout_ms = -1 };
                a->parsed = proto_parse((const char *)data + start, len, &rq, &err) == 0;
                a->submit_shaped = submit_shaped((const char *)data + start, len);
                a->tag = rq.tag ? json_incref(rq.tag) : NULL;
                if (a->parsed) {
                        a->op = rq.op;
                        a->id = rq.id;
                        a->state = rq.state;
                        a->limit = rq.limit;
                        a->after_id = rq.after_id;
                        a->timeout_ms = rq.timeout_ms;
                        if (rq.op == RINGQ_OP_LIST || rq.op == RINGQ_OP_SUBMIT || rq.op == RINGQ_OP_PAUSE ||
                            rq.op == RINGQ_OP_RESUME)
                                a->queue = dup_or_null(rq.queue);
                        if (rq.op == RINGQ_OP_SUBMIT) {
                                a->key = dup_or_null(rq.key);
                                a->kind = kind_json(rq.argv);
                                a->may_time_out = may_time_out(rq.timeout_ms);
                                a->max_attempts = rq.max_attempts;
                                a->nafter = rq.nafter;
                                a->after = rq.nafter ? calloc(rq.nafter, sizeof(*a->after)) : NULL;
                                CHECK(!rq.nafter || a->after);
                                if (rq.nafter)
                                        memcpy(a->after, rq.after, rq.nafter * sizeof(*a->after));
                        }
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

/* The job object is the model's job m (its state is checked apart). */
static bool job_is_in(json_t *job, const struct mjob *m)
{
        return json_integer_value(json_object_get(job, "id")) == m->id &&
               json_integer_value(json_object_get(job, "owner_uid")) == m->owner &&
               same_str(json_string_value(json_object_get(job, "queue")), m->queue) &&
               same_str(json_string_value(json_object_get(job, "key")), m->key) &&
               kind_json(json_object_get(job, "argv")) == m->kind &&
               json_integer_value(json_object_get(job, "max_attempts")) == m->max_attempts &&
               json_array_size(json_object_get(job, "after")) == m->nafter;
}

static int64_t opt_int(json_t *job, const char *field)
{
        json_t *v = json_object_get(job, field);

        return json_is_integer(v) ? json_integer_value(v) : -1;
}

static bool in_after(json_t *job, int64_t id)
{
        json_t *after = json_object_get(job, "after"), *v;
        size_t k;

        json_array_foreach(after, k, v)
                if (json_integer_value(v) == id)
                        return true;
        return false;
}

/* What is wrong with a job object on its own, or NULL: its fields fit its
 * state, and how it ended fits the program the exec hook ran for it. */
static const char *job_sane(json_t *job)
{
        int st = job_state(job);
        int64_t id = opt_int(job, "id"), started = opt_int(job, "started_at"), finished = opt_int(job, "finished_at");
        int64_t attempts = opt_int(job, "attempts"), max = opt_int(job, "max_attempts");
        enum kind kind = kind_json(json_object_get(job, "argv"));
        bool tmo = may_time_out(opt_int(job, "timeout_ms"));
        const char *reason = json_string_value(json_object_get(job, "reason"));
        json_t *waiting = json_object_get(job, "waiting_for"), *v;
        long long dep;
        char word[16];
        size_t k;

        if (st < 0)
                return "a job in no state";
        if (attempts < 0 || attempts > max)
                return "attempts beyond max_attempts";
        json_array_foreach(waiting, k, v)
                if (st != RINGQ_STATE_QUEUED || !in_after(job, json_integer_value(v)))
                        return "waiting_for a job not of its after, or while not queued";
        switch (st) {
        case RINGQ_STATE_QUEUED:
                if (finished >= 0)
                        return "queued with a finished_at";
                return NULL;
        case RINGQ_STATE_RUNNING:
                if (started < 0 || finished >= 0 || opt_int(job, "pid") < 0)
                        return "running without started_at or pid, or with finished_at";
                return NULL;
        }
        if (finished < 0 || (started >= 0 && started > finished))
                return "ended without finished_at, or before it started";
        if (st == RINGQ_STATE_SUCCEEDED)
                return !kind_succeeds(kind) || !same_str(reason, "exit 0") || opt_int(job, "exit_code") != 0
                               ? "succeeded, which its program does not, or not as it does"
                               : NULL;
        if (st == RINGQ_STATE_FAILED) {
                if (attempts != max)
                        return "failed with attempts left";
                if (same_str(reason, "exit 1") ? kind != K_FALSE
                    : same_str(reason, "timeout") ? !tmo
                    : reason && strncmp(reason, "spawn: ", 7) == 0 ? kind != K_MISSING
                                                                   : true)
                        return "failed for a reason its program and timeout cannot give";
                return NULL;
        }
        if (same_str(reason, "canceled"))
                return fact(id) & F_CANCEL_ASKED ? NULL : "canceled, but no cancel of it was asked";
        if (reason && sscanf(reason, "dependency %lld %15s", &dep, word) == 2 && in_after(job, dep) &&
            (strcmp(word, "failed") == 0 || strcmp(word, "canceled") == 0))
                return NULL;
        return "canceled for a reason it cannot have";
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
        char *t = json_dumps(reply, JSON_COMPACT), b1[64], b2[64];
        const struct mjob *m = a->parsed && has_id(a->op) ? model_get(a->id) : NULL;

        fprintf(stderr, "fuzz-dispatch: reply %u to a %s: %s: %s\n", i,
                a->parsed ? ringq_op_names[a->op] : "bad line", what, t);
        if (m)
                fprintf(stderr, "fuzz-dispatch: the harness knows job %lld as %s (so now %s%s), owner %lld, "
                        "queue %s (%s)\n", (long long)m->id, states_str(m->base, b1, sizeof(b1)),
                        states_str(poss_of(m), b2, sizeof(b2)), m->ended_as >= 0 ? "; a cancel answered" : "",
                        (long long)m->owner, m->queue, model.complete ? "every job known" : "learnt on this connection");
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

/* A job the model knows to be gone, or another user's: the reply must
 * say so, and there is nothing more to check. */
static bool reachable(unsigned i, const struct asked *a, json_t *reply, const struct mjob *m, int64_t uid)
{
        if (!m) {
                EXPECT(is_err(reply, "not_found"));
                return false;
        }
        if (!mine(m, uid)) {
                EXPECT(is_err(reply, "forbidden"));
                return false;
        }
        return true;
}

/* A write answered with an error that says nothing of what it did (the
 * database or memory failed): the model no longer knows that job. */
static void model_unsure(int64_t id)
{
        model_drop(id);
        model.complete = false;
}

/* A later request of this connection is op on id (any id: -1). */
static bool later(const struct asked_list *l, unsigned i, int op, int64_t id)
{
        for (unsigned k = i + 1; k < l->n; k++)
                if (l->v[k].parsed && l->v[k].op == op && (id < 0 || l->v[k].id == id))
                        return true;
        return false;
}

/* A read in order (status, output, list): the job is where it may be,
 * and as a cancel answered if one did since the last read (the read ran
 * after that answer: a cancel is a write of this connection until it is
 * answered); now known there. */
static void seen(unsigned i, const struct asked *a, json_t *reply, json_t *job, struct mjob *m)
{
        int st = job_state(job);

        if (!(poss_of(m) & BIT(st)) || (m->ended_as >= 0 && st != m->ended_as)) {
                char b1[64], b2[64];
                fprintf(stderr, "fuzz-dispatch: job %lld shows %s; the harness knew it as %s (so now %s)%s%s\n",
                        (long long)m->id, ringq_state_names[st], states_str(m->base, b1, sizeof(b1)),
                        states_str(poss_of(m), b2, sizeof(b2)), m->ended_as >= 0 ? ", and a cancel answered it " : "",
                        m->ended_as >= 0 ? ringq_state_names[m->ended_as] : "");
                fail_reply(i, a, reply, "a job where it cannot be");
        }
        if (st != RINGQ_STATE_QUEUED)
                m->cascade = false;
        set_base(m, BIT(st), -1);
}

/* The paused flags of a reply's queues against the harness's; or, not
 * knowing them, learnt from it. */
static void check_queues(unsigned i, const struct asked *a, json_t *reply)
{
        json_t *queues = json_object_get(reply, "queues"), *q, *all = json_object_get(reply, "all_paused");
        int64_t running = 0;
        size_t k;

        EXPECT(json_is_array(queues) && json_is_boolean(all));
        json_array_foreach(queues, k, q) {
                const char *name = json_string_value(json_object_get(q, "name"));
                EXPECT(name && json_is_boolean(json_object_get(q, "paused")));
                running += json_integer_value(json_object_get(q, "running"));
                if (paused.known)
                        EXPECT(json_is_true(json_object_get(q, "paused")) == (paused.all || paused_has(name)));
        }
        EXPECT(running <= srv->nslots);
        if (paused.known) {
                EXPECT(json_is_true(all) == paused.all);
                return;
        }
        /* A paused queue is always listed (dispatch keeps its entry). */
        paused_clear();
        paused.all = json_is_true(all);
        json_array_foreach(queues, k, q)
                if (!paused.all && json_is_true(json_object_get(q, "paused")))
                        paused_set(json_string_value(json_object_get(q, "name")), true);
        paused.known = true;
}

/* The first job of after the store would refuse (every job known):
 * "not_found", "forbidden", or NULL. */
static const char *after_error(const struct asked *a, int64_t uid)
{
        for (unsigned k = 0; k < a->nafter; k++) {
                const struct mjob *d = model_get(a->after[k]);
                if (!d)
                        return "not_found";
                if (!mine(d, uid))
                        return "forbidden";
        }
        return NULL;
}

/* A new job from this connection's submit: canceled at once when a job
 * of its after had already failed or been canceled for sure, queued when
 * none may have, either when the model cannot tell. */
static void model_submitted(int64_t id, int64_t uid, const struct asked *a)
{
        unsigned base = Q_;
        struct mjob *m;

        for (unsigned k = 0; k < a->nafter; k++) {
                unsigned d = dep_poss(a->after[k]);
                if (!(d & ~(F_ | C_))) {
                        base = C_;
                        break;
                }
                if (d & (F_ | C_))
                        base |= C_;
        }
        m = model_put(id);
        m->owner = uid;
        m->queue = dup_or_null(a->queue);
        m->key = dup_or_null(a->key);
        m->kind = a->kind;
        m->may_time_out = a->may_time_out;
        m->max_attempts = a->max_attempts;
        m->after = a->nafter ? calloc(a->nafter, sizeof(*m->after)) : NULL;
        CHECK(!a->nafter || m->after);
        if (a->nafter)
                memcpy(m->after, a->after, a->nafter * sizeof(*m->after));
        m->nafter = a->nafter;
        set_base(m, base, -1);
}

static const char *const change_errs[] = { "not_found", "forbidden", "invalid_state", "storage_error", "internal",
                                           NULL };

/* cancel: a queued job ends canceled at its commit; one that may be
 * running (or starting) is stopped and answered once it has ended:
 * canceled, or as it ended if it was already over; canceled stays so;
 * succeeded and failed are invalid_state. */
static void check_cancel(unsigned i, const struct asked *a, json_t *reply, struct mjob *m, int64_t uid, bool known,
                         bool soft)
{
        bool ok = json_is_true(json_object_get(reply, "ok"));
        json_t *job = json_object_get(reply, "job");
        int st = ok ? job_state(job) : -1;
        unsigned p = m ? poss_of(m) : ANY;

        EXPECT(ok ? job_is(reply, a->id) && ringq_state_is_final(st) : is_error(reply, change_errs));
        if (soft) {
                model_unsure(a->id);
                return;
        }
        if (!known) {
                /* It may have waited for the job to end: until a read, it
                 * may be anywhere, and ended. */
                if (ok)
                        model_learn(job, ANY, st);
                return;
        }
        if (!reachable(i, a, reply, m, uid))
                return;
        EXPECT(!ok || job_is_in(job, m));
        if (!ok) {
                EXPECT(is_err(reply, "invalid_state") && (p & (S_ | F_)));
                /* A cancel that found the job running while its end was
                 * on its way to the store asks again behind that end: the
                 * writes behind it may have been done before, while the
                 * job still ran (a retry then says "running"). */
                set_base(m, (p & R_) ? p : p & (S_ | F_), m->ended_as);
                return;
        }
        if (st == RINGQ_STATE_CANCELED)
                EXPECT(p & (Q_ | R_ | C_));
        else /* it ended on its own before the stop reached it */
                EXPECT((p & R_) && (p & BIT(st)));
        /* Answered after the job ended, the writes behind it may have
         * been done before: they see it anywhere it may have been. */
        if (p & R_)
                set_base(m, p | BIT(st), st);
        else
                set_base(m, BIT(st), -1);
}

/* retry: failed or canceled goes back to queued, unless a job of its
 * after failed (invalid_state: that one first); others are
 * invalid_state; a full queue refuses a finished job's retry. */
static void check_retry(unsigned i, const struct asked *a, json_t *reply, struct mjob *m, int64_t uid, bool known,
                        bool soft)
{
        static const char *const retry_errs[] = { "not_found", "forbidden", "invalid_state", "queue_full",
                                                  "storage_error", "internal", NULL };
        bool ok = json_is_true(json_object_get(reply, "ok"));
        json_t *job = json_object_get(reply, "job");
        unsigned p = m ? poss_of(m) : ANY;

        EXPECT(ok ? job_is(reply, a->id) && job_state(job) == RINGQ_STATE_QUEUED : is_error(reply, retry_errs));
        if (soft) {
                model_unsure(a->id);
                return;
        }
        if (!known) {
                if (ok)
                        model_learn(job, 0, -1);
                return;
        }
        if (!reachable(i, a, reply, m, uid))
                return;
        if (ok) {
                EXPECT(job_is_in(job, m) && (p & (F_ | C_)));
                set_base(m, Q_, -1);
        } else if (is_err(reply, "queue_full"))
                EXPECT(p & ENDED);
        else
                EXPECT(is_err(reply, "invalid_state") && ((p & (Q_ | R_ | S_)) || (m->nafter && (p & (F_ | C_)))));
}

/* A wait answers once the job has ended: at once if it had (in order,
 * then), else whenever it ends, which may be after any later request of
 * this connection (so it teaches nothing); a later cancel may end it, of
 * it or, through the cascade, of a job it runs after. */
static void check_wait(unsigned i, const struct asked *a, json_t *reply, struct mjob *m, int64_t uid, bool known,
                       bool soft, const struct asked_list *l)
{
        static const char *const wait_errs[] = { "not_found", "forbidden", "timeout", "storage_error",
                                                 "shutting_down", "internal", NULL };
        bool ok = json_is_true(json_object_get(reply, "ok"));
        json_t *job = json_object_get(reply, "job");
        int st = ok ? job_state(job) : -1;
        unsigned p, can;

        EXPECT(ok ? job_is(reply, a->id) && ringq_state_is_final(st) : is_error(reply, wait_errs));
        EXPECT(!is_err(reply, "timeout") || a->timeout_ms >= 0);
        if (soft || !known)
                return;
        if (!reachable(i, a, reply, m, uid))
                return;
        p = poss_of(m);
        if (!(p & ~ENDED) || m->ended_as >= 0) {
                /* Ended when asked (after a cancel's answer, as that
                 * said): answered then, with that. */
                EXPECT(ok && job_is_in(job, m) && (p & BIT(st)));
                EXPECT(m->ended_as < 0 || st == m->ended_as);
                set_base(m, BIT(st), -1);
                return;
        }
        can = p | (later(l, i, RINGQ_OP_CANCEL, m->nafter ? -1 : a->id) ? C_ : 0) |
              (later(l, i, RINGQ_OP_RETRY, a->id) ? ANY : 0);
        EXPECT(ok ? job_is_in(job, m) && (can & BIT(st)) : is_err(reply, "timeout"));
}

static void check_list(unsigned i, const struct asked *a, json_t *reply, int64_t uid)
{
        static const char *const list_errs[] = { "timeout", "storage_error", "internal", NULL };
        bool ok = json_is_true(json_object_get(reply, "ok"));
        json_t *jobs = json_object_get(reply, "jobs"), *j;
        int64_t prev = a->after_id, last;
        size_t k, n;

        EXPECT(ok ? json_is_array(jobs) : is_error(reply, list_errs));
        if (!ok)
                return;
        n = json_array_size(jobs);
        EXPECT(n <= a->limit);
        json_array_foreach(jobs, k, j) {
                int64_t id = json_integer_value(json_object_get(j, "id"));
                const struct mjob *mj = model_get(id);
                const char *why = job_sane(j);
                if (why)
                        fail_reply(i, a, reply, why);
                EXPECT(id > prev); /* id order, after after_id */
                EXPECT(a->state < 0 || job_state(j) == a->state);
                EXPECT(!a->queue || strcmp(json_string_value(json_object_get(j, "queue")) ?: "", a->queue) == 0);
                EXPECT(uid == 0 || json_integer_value(json_object_get(j, "owner_uid")) == uid);
                EXPECT(mj ? job_is_in(j, mj) : !model.complete);
                prev = id;
        }
        /* ... and every job of the model it should show is there: those
         * after after_id it may see that match its filters (with a state
         * filter, those surely in that state), up to the last one if the
         * limit cut it. A page cut by size says so ("more"); then what
         * follows its last job is for the next page. */
        last = n < a->limit && !json_is_true(json_object_get(reply, "more")) ? INT64_MAX
               : n                                                        ? prev
                                                                          : a->after_id;
        k = 0;
        for (size_t x = 0; x < model.n; x++) {
                const struct mjob *mj = &model.v[x];
                if (mj->id <= a->after_id || mj->id > last || !mine(mj, uid) ||
                    (a->state >= 0 && poss_of(mj) != BIT(a->state)) || (a->queue && strcmp(mj->queue, a->queue) != 0))
                        continue;
                while (k < n && json_integer_value(json_object_get(json_array_get(jobs, k), "id")) < mj->id)
                        k++;
                EXPECT(k < n && json_integer_value(json_object_get(json_array_get(jobs, k), "id")) == mj->id);
        }
        /* Now each shown job is known in the state shown. */
        json_array_foreach(jobs, k, j) {
                struct mjob *mj = model_get(json_integer_value(json_object_get(j, "id")));
                if (mj)
                        seen(i, a, reply, j, mj);
                else
                        model_learn(j, 0, -1);
        }
}

/* Replies come in request order (SPEC), one per request, each echoing its
 * tag; hold each against what was asked, and against the model of the
 * queue, which learns from each reply in turn. They are checked as they
 * arrive, so what the start hook checks is known as of the last reply. */
struct checker {
        const struct asked_list *l;
        int64_t uid;
        unsigned next;          /* the next reply to check */
        bool done;              /* too_large: nothing after it answers a request */
};

static void check_reply(struct checker *ck, unsigned i, json_t *reply)
{
        static const char *const bad_request[] = { "bad_request", NULL };
        static const char *const bad_or_full[] = { "bad_request", "queue_full", NULL };
        static const char *const soft_errs[] = { "storage_error", "internal", NULL };
        static const char *const submit_errs[] = { "queue_full", "storage_error", "shutting_down", "internal", NULL };
        static const char *const after_errs[] = { "queue_full", "storage_error", "shutting_down", "internal",
                                                  "not_found", "forbidden", NULL };
        static const char *const pause_errs[] = { "forbidden", "storage_error", "internal", NULL };
        static const char *const lookup_errs[] = { "not_found", "forbidden", "storage_error", "internal", NULL };
        const struct asked *a = i < ck->l->n ? &ck->l->v[i] : NULL;
        int64_t uid = ck->uid;
        bool ok = json_is_true(json_object_get(reply, "ok")), soft, known;
        json_t *job = json_object_get(reply, "job");
        struct mjob *m;

        if (!a) {
                /* Past the last request only too_large may come. */
                static const char *const tl[] = { "too_large", NULL };
                CHECK(is_error(reply, tl));
                ck->done = true;
                return;
        }
        if (!ok && strcmp(json_string_value(json_object_get(reply, "error")) ?: "", "too_large") == 0) {
                ck->done = true; /* a line longer than max_request_bytes: the end */
                return;
        }
        ck->next = i + 1;
        EXPECT(json_equal(json_object_get(reply, "tag"), a->tag) || (!a->tag && !json_object_get(reply, "tag")));
        if (!a->parsed) {
                EXPECT(is_error(reply, a->submit_shaped ? bad_or_full : bad_request));
                return;
        }
        if (uid == 0 && (a->op == RINGQ_OP_PAUSE || a->op == RINGQ_OP_RESUME)) {
                cur.pause_ops--;
                cur.resumes -= a->op == RINGQ_OP_RESUME;
        }
        if (json_is_object(job)) {
                const char *why = job_sane(job);
                if (why)
                        fail_reply(i, a, reply, why);
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
                const char *deperr = model.complete ? after_error(a, uid) : NULL;

                EXPECT(ok ? id > 0 : is_error(reply, a->nafter ? after_errs : submit_errs));
                if (!ok) {
                        if (soft)
                                model.complete = false;
                        /* The jobs of after are looked at in order, after
                         * the key: the first missing or another's says no. */
                        if (model.complete && (is_err(reply, "not_found") || is_err(reply, "forbidden")))
                                EXPECT(!same && deperr && is_err(reply, deperr));
                        break;
                }
                /* A key this owner used before in that queue names the
                 * job it was first given to; another owner's is
                 * invisible; a new job has a new id. */
                EXPECT(!same || (dup && id == same->id));
                EXPECT(same || !dup || !model.complete);
                EXPECT(dup || !model_get(id));
                EXPECT(dup || !deperr);
                if (!dup)
                        model_submitted(id, uid, a);
                break;
        }
        case RINGQ_OP_STATUS:
        case RINGQ_OP_OUTPUT:
                EXPECT(ok ? job_is(reply, a->id) : is_error(reply, lookup_errs));
                /* output: the file comes along only once the job was
                 * started (the hook saw it). */
                EXPECT(a->op == RINGQ_OP_STATUS || !ok ||
                       (json_is_boolean(json_object_get(reply, "fd")) &&
                        (!json_is_true(json_object_get(reply, "fd")) || (fact(a->id) & F_LAUNCHED))));
                if (soft)
                        break;
                if (!known) {
                        if (ok)
                                model_learn(job, 0, -1);
                } else if (!m)
                        EXPECT(is_err(reply, "not_found"));
                else if (!mine(m, uid))
                        EXPECT(is_err(reply, "forbidden"));
                else { /* read your writes, and where it may have got to since */
                        EXPECT(ok && job_is_in(job, m));
                        seen(i, a, reply, job, m);
                }
                break;
        case RINGQ_OP_CANCEL:
                check_cancel(i, a, reply, m, uid, known, soft);
                break;
        case RINGQ_OP_RETRY:
                check_retry(i, a, reply, m, uid, known, soft);
                break;
        case RINGQ_OP_WAIT:
                check_wait(i, a, reply, m, uid, known, soft, ck->l);
                break;
        case RINGQ_OP_LIST:
                check_list(i, a, reply, uid);
                break;
        case RINGQ_OP_STATS:
                EXPECT(ok && json_is_object(json_object_get(reply, "counters")));
                EXPECT(json_integer_value(json_object_get(reply, "running")) <= srv->nslots);
                break;
        case RINGQ_OP_PAUSE:
        case RINGQ_OP_RESUME:
                /* Root only; what it answers is every queue's state. */
                EXPECT(ok ? uid == 0 : is_error(reply, pause_errs));
                EXPECT(uid == 0 || is_err(reply, "forbidden"));
                if (!ok)
                        break;
                if (paused.known) {
                        if (!a->queue && a->op == RINGQ_OP_RESUME)
                                paused_clear();
                        else if (!a->queue)
                                paused.all = true;
                        else
                                paused_set(a->queue, a->op == RINGQ_OP_PAUSE);
                }
                check_queues(i, a, reply);
                break;
        case RINGQ_OP_QUEUES:
                EXPECT(ok);
                check_queues(i, a, reply);
                break;
        case RINGQ_OP_REEXEC:
                /* Root only; in process here there is no binary to run
                 * again (main() never saved one), so it is refused and
                 * nothing stops: the rest of the input is served as
                 * before (tests/integration/test_reexec.py re-execs). */
                EXPECT(!ok && is_err(reply, uid == 0 ? "internal" : "forbidden"));
                EXPECT(srv->rx.phase == RX_NONE);
                break;
        default:
                EXPECT(!"an op the parser does not know");
        }
}

static void check_new_replies(struct checker *ck, json_t *got)
{
        while (!ck->done && ck->next < json_array_size(got))
                check_reply(ck, ck->next, json_array_get(got, ck->next));
}

static bool conn_alive(struct server *s, unsigned idx, uint32_t gen)
{
        return s->conns[idx] && s->conns[idx]->gen == gen;
}

/* Nothing can move connection c on its own: the daemon is quiet, no job
 * runs (its end could), and nothing is left to send. */
static bool conn_stuck(struct server *s, struct conn *c, unsigned handled)
{
        return quiet(s, handled) && s->busy_slots == 0 && !c->send_armed && c->slen - c->soff + c->wlen == 0;
}

/* A stuck connection may be held only by waits on jobs that have not
 * ended: a parked cancel waits for a running job to end, and none runs;
 * a wait on an ended job should have been answered with it. */
static void check_parked(struct server *s, struct conn *c)
{
        for (struct req *r = c->head; r; r = r->next) {
                struct job_rec j;
                int e;

                if (r->state != REQ_WAIT)
                        continue;
                if (r->is_write) {
                        fprintf(stderr, "fuzz-dispatch: a cancel is parked on job %lld, and no job runs\n",
                                (long long)r->job_id);
                        abort();
                }
                e = reader_get(s->reader, r->job_id, &j);
                if (e == 0 && ringq_state_is_final(j.state)) {
                        fprintf(stderr, "fuzz-dispatch: a wait is parked on job %lld, which is %s\n",
                                (long long)r->job_id, ringq_state_names[j.state]);
                        abort();
                }
                if (e == 0)
                        job_rec_done(&j);
        }
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

/* One client connection: send data, half-close, read and check every
 * reply as it comes, and run the loop until the daemon has closed it and
 * the store is idle. */
static void one_connection(struct server *s, const uint8_t *data, size_t size, bool other)
{
        static struct peer p;
        int sv[2];
        unsigned idx = 0;
        struct asked_list asked;
        struct checker ck;
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
        collect_requests(data, size, &asked);
        ck = (struct checker){ .l = &asked, .uid = uid };
        cur.pause_ops = cur.resumes = 0;
        for (unsigned k = 0; k < asked.n; k++) {
                const struct asked *a = &asked.v[k];
                if (a->parsed && a->op == RINGQ_OP_CANCEL)
                        fact_add(a->id, F_CANCEL_ASKED);
                if (a->parsed && uid == 0 && (a->op == RINGQ_OP_PAUSE || a->op == RINGQ_OP_RESUME)) {
                        cur.pause_ops++;
                        cur.resumes += a->op == RINGQ_OP_RESUME;
                }
        }
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
                check_new_replies(&ck, p.got);
                if (quiet(s, handled) && !cur.pause_ops && paused.known)
                        check_liveness(s);
                if (conn_alive(s, idx, gen) && conn_stuck(s, s->conns[idx], handled)) {
                        /* Nothing in flight, no job running and no timer
                         * soon: only a parked wait may hold a connection
                         * so (on a job delayed, paused, backing off or
                         * waiting for others); else a request is lost
                         * (say, held behind writes that have all been
                         * answered). */
                        if (!s->conns[idx]->closing && !s->conns[idx]->nwaits) {
                                fprintf(stderr, "fuzz-dispatch: connection stuck with no wait parked: %u pending, "
                                        "%u deferred, %u writes in flight\n", s->conns[idx]->npending,
                                        s->conns[idx]->ndeferred, s->conns[idx]->writes);
                                abort();
                        }
                        check_parked(s, s->conns[idx]);
                        forced = true;
                        conn_close(s->conns[idx]);
                }
        }
        peer_read(&p);
        check_new_replies(&ck, p.got);
        bounds1 = s->stats.c[C_TOO_LARGE] + s->stats.c[C_SLOW_READERS_CLOSED] + s->stats.c[C_IDLE_CLOSED];
        answered = ck.done ? ck.next : (unsigned)json_array_size(p.got);
        /* A write with no reply may or may not have been done: from here
         * on the model does not know every job, nor, for a pause or
         * resume, which queues are paused. */
        for (unsigned k = answered; k < asked.n; k++)
                if (asked.v[k].parsed && is_write(asked.v[k].op))
                        model.complete = false;
        if (cur.pause_ops)
                paused.known = false;
        cur.pause_ops = cur.resumes = 0;
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

/* The end of an input: one last look at liveness, then dispatch starts
 * nothing more and the jobs still running end on their own, a few tens
 * of ms at most, so none outlives the input. Held as after a failed start
 * (blocked, its retry timer disarmed), not with dp.stopped: that early
 * return re-arms the due timer at a time already past when a delayed job
 * is due, and timers_run() then spins (as with every queue paused). */
static void end_input(struct server *s)
{
        int64_t deadline = now_mono_ms() + INPUT_DEADLINE_MS;

        if (quiet(s, turn(s, 0)) && paused.known)
                check_liveness(s);
        s->dp.blocked = true;
        timers_disarm(&s->timers, &s->dp.timer);
        while (s->busy_slots || store_inflight(s->store)) {
                if (now_mono_ms() > deadline) {
                        fprintf(stderr, "fuzz-dispatch: %u job(s) still running %dms after the input\n",
                                s->busy_slots, INPUT_DEADLINE_MS);
                        abort();
                }
                (void)turn(s, TURN_MS);
        }
        s->dp.blocked = false;
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
        } else
                dispatch_run(srv); /* held at the end of the last input */

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
        end_input(srv);

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
