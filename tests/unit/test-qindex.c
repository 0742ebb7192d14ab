/* Unit tests of daemon/qindex.c, the dispatch index.
 *
 * The order of ringq 1 within one bucket, in both modes: priority DESC,
 * run_at ASC, id ASC (README, Dispatch), at the priority and run_at
 * limits and over 20000 jobs against a reference sort; delayed jobs come
 * out exactly when the monotonic time reaches their due time, keep their
 * priority, id and tag; qindex_unpop puts an entry back in front, without
 * memory; a wall-clock jump after push neither starts a delayed job early
 * nor holds it back. Across users: fair share picks the user with the
 * fewest running jobs, then the least recently served, then the lowest
 * uid, and off keeps one global order across users and queues. Queues:
 * a cap or a pause stops a queue and only it, its entries are parked and
 * come back, never lost nor doubled, also when they come due meanwhile
 * or are all a user has; buckets are freed and reused; queue_idle; tags;
 * counts that never go negative; the packing limits; a million entries at
 * about 16 bytes each; and a random run against a reference model in
 * both modes. All times are passed in: no clocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "qindex.h"
#include "ringq/protocol.h"

#define W0 INT64_C(1700000000000) /* wall ms at "push" time */
#define M0 INT64_C(5000000)       /* monotonic ms at "push" time */
#define DAY INT64_C(86400000)
#define U 1000                    /* the one user of single-user tests */

static bool FAIR = true, OFF = false;

/* The prestate says the mode: &FAIR or &OFF. */
static int setup(void **state)
{
        bool fair = *(bool *)*state;
        struct qindex *q = calloc(1, sizeof(*q));

        assert_non_null(q);
        assert_int_equal(qindex_init(q, fair), 0);
        *state = q;
        return 0;
}

static int teardown(void **state)
{
        qindex_done(*state);
        free(*state);
        return 0;
}

/* Push to queue 0 with the tag id * 3 (low 9 bits kept). */
static int push(struct qindex *q, int64_t id, uint32_t uid, int prio, int64_t run_at, int64_t wall, int64_t mono)
{
        return qindex_push(q, id, uid, 0, prio, (unsigned)id * 3, run_at, wall, mono);
}

static int pushq(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue, int prio, int64_t run_at)
{
        return qindex_push(q, id, uid, queue, prio, (unsigned)id * 3, run_at, W0, M0);
}

/* Pop everything due at (wall, mono) and compare the ids in order. */
static void expect_pops(struct qindex *q, int64_t wall, int64_t mono, const int64_t *ids, size_t n)
{
        struct qpick e;

        for (size_t i = 0; i < n; i++) {
                if (qindex_pop(q, wall, mono, &e) != 1)
                        fail_msg("pop %zu: nothing, want id %lld", i, (long long)ids[i]);
                if (e.id != ids[i])
                        fail_msg("pop %zu: id %lld, want %lld", i, (long long)e.id, (long long)ids[i]);
                if (e.tag != (((unsigned)e.id * 3) & 511))
                        fail_msg("pop %zu: id %lld has tag %u", i, (long long)e.id, e.tag);
        }
        assert_int_equal(qindex_pop(q, wall, mono, &e), 0);
}

static void expect_none(struct qindex *q, int64_t wall, int64_t mono)
{
        struct qpick p;

        if (qindex_pop(q, wall, mono, &p))
                fail_msg("popped id %lld (queue %u), want none", (long long)p.id, p.queue);
}

static void test_empty(void **state)
{
        struct qindex *q = *state;

        expect_none(q, W0, M0);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_entries(q), 0);
}

static void test_order(void **state)
{
        struct qindex *q = *state;
        /* id, prio, run_at */
        static const int64_t jobs[][3] = {
                { 1, 0, W0 - 10 },  { 2, 5, W0 - 10 },  { 3, 0, W0 - 20 }, { 4, 5, W0 - 30 },
                { 5, 0, W0 - 10 },  { 6, -5, W0 - 99 }, { 7, 5, W0 - 30 }, { 8, 0, W0 - 20 },
                { 9, 1000, W0 },    { 10, -1000, 0 },   { 11, 999, W0 },   { 12, -999, 0 },
                { 13, -1000, 0 },
        };

        for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++)
                assert_int_equal(push(q, jobs[i][0], U, (int)jobs[i][1], jobs[i][2], W0, M0), 0);
        assert_int_equal(qindex_entries(q), 13);
        assert_true(qindex_bytes(q) >= 13 * sizeof(struct qentry));
        assert_true(qindex_next_due(q) == INT64_MAX);
        /* 10 and 13 tie on priority and run_at: the lower id first. */
        expect_pops(q, W0, M0, (const int64_t[]){ 9, 11, 4, 7, 2, 3, 8, 1, 5, 6, 12, 10, 13 }, 13);
        assert_int_equal(qindex_entries(q), 0);
}

static void test_run_at_limits(void **state)
{
        struct qindex *q = *state;
        const int64_t far = 253402300799999LL; /* the largest run_at a client may send */

        assert_int_equal(push(q, 1, U, 0, far, far, M0), 0);
        assert_int_equal(push(q, 2, U, 0, far - 1, far, M0), 0);
        assert_int_equal(push(q, 3, U, 0, 0, far, M0), 0);
        assert_int_equal(push(q, 4, U, 1, far, far, M0), 0);
        assert_int_equal(push(q, 5, U, -1, 0, far, M0), 0);
        expect_pops(q, far, M0, (const int64_t[]){ 4, 3, 2, 1, 5 }, 5);
}

static void test_delayed(void **state)
{
        struct qindex *q = *state;

        /* Due in 1000 ms, and in 1 ms; run_at == now is runnable at once. */
        assert_int_equal(push(q, 10, U, 0, W0 + 1000, W0, M0), 0);
        assert_int_equal(push(q, 11, U, 0, W0 + 1, W0, M0), 0);
        assert_int_equal(push(q, 12, U, -1000, W0, W0, M0), 0);
        assert_int_equal(qindex_entries(q), 3);
        assert_true(qindex_next_due(q) == M0 + 1);

        expect_pops(q, W0, M0, (const int64_t[]){ 12 }, 1);
        expect_pops(q, W0 + 1, M0 + 1, (const int64_t[]){ 11 }, 1);
        assert_true(qindex_next_due(q) == M0 + 1000);
        expect_none(q, W0 + 999, M0 + 999);
        assert_int_equal(qindex_entries(q), 1);
        expect_pops(q, W0 + 1000, M0 + 1000, (const int64_t[]){ 10 }, 1);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_entries(q), 0);
}

static void test_delayed_keep_prio_and_id(void **state)
{
        struct qindex *q = *state;
        const int64_t big = (INT64_C(1) << 44) - 10;

        /* Due at different times, all due by M0 + 300. */
        assert_int_equal(push(q, big + 1, U, -1000, W0 + 100, W0, M0), 0);
        assert_int_equal(push(q, big + 2, U, 1000, W0 + 300, W0, M0), 0);
        assert_int_equal(push(q, 3, U, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(push(q, 4, U, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(push(q, 5, U, 0, W0 - 50, W0, M0), 0); /* runnable */
        expect_pops(q, W0 + 300, M0 + 300, (const int64_t[]){ big + 2, 5, 3, 4, big + 1 }, 5);
}

static void test_delay_cap(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        /* A run_at further ahead than RINGQ_DURATION_MAX_MS waits that long. */
        assert_int_equal(push(q, 1, U, 0, 253402300799999LL, 0, M0), 0);
        assert_true(qindex_next_due(q) == M0 + RINGQ_DURATION_MAX_MS);
        expect_none(q, RINGQ_DURATION_MAX_MS - 1, M0 + RINGQ_DURATION_MAX_MS - 1);
        assert_int_equal(qindex_pop(q, RINGQ_DURATION_MAX_MS, M0 + RINGQ_DURATION_MAX_MS, &e), 1);
        assert_true(e.id == 1);
}

static void test_unpop(void **state)
{
        struct qindex *q = *state;
        struct qpick a, b;
        size_t bytes;

        assert_int_equal(push(q, 1, U, 0, W0 - 1, W0, M0), 0);
        assert_int_equal(push(q, 2, U, 7, W0 - 1, W0, M0), 0);
        assert_int_equal(push(q, 3, U, 0, W0 + 500, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0, M0, &a), 1);
        assert_true(a.id == 2);
        assert_int_equal(qindex_entries(q), 2);
        assert_int_equal(qindex_unpop(q, &a), 0);
        assert_int_equal(qindex_entries(q), 3);
        assert_int_equal(qindex_pop(q, W0, M0, &b), 1);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_int_equal(qindex_unpop(q, &b), 0);

        /* A formerly delayed entry goes back in its place too. */
        expect_pops(q, W0 + 500, M0 + 500, (const int64_t[]){ 2, 1, 3 }, 3);
        assert_int_equal(push(q, 3, U, 0, W0 + 500, W0, M0), 0);
        assert_int_equal(push(q, 4, U, 0, W0 + 600, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0 + 600, M0 + 600, &a), 1);
        assert_true(a.id == 3);
        assert_int_equal(qindex_unpop(q, &a), 0);
        expect_pops(q, W0 + 600, M0 + 600, (const int64_t[]){ 3, 4 }, 2);

        /* The pop that empties a bucket keeps it, so the unpop that follows
         * needs no memory: nothing is freed and made again. */
        assert_int_equal(pushq(q, 9, 77, 5, 0, W0 - 1), 0);
        bytes = qindex_bytes(q);
        assert_int_equal(qindex_pop(q, W0, M0, &a), 1);
        assert_int_equal(qindex_bytes(q), bytes);
        assert_int_equal(qindex_unpop(q, &a), 0);
        assert_int_equal(qindex_bytes(q), bytes);
        assert_int_equal(qindex_pop(q, W0, M0, &b), 1);
        assert_memory_equal(&a, &b, sizeof(a));

        /* A pick that was tampered with is refused. */
        b.e.who ^= UINT64_C(1) << 20;
        assert_int_equal(qindex_unpop(q, &b), -EINVAL);
        b = a;
        b.tag ^= 1;
        assert_int_equal(qindex_unpop(q, &b), -EINVAL);
        b = a;
        b.prio++;
        assert_int_equal(qindex_unpop(q, &b), -EINVAL);
        assert_int_equal(qindex_entries(q), 0);
}

static void test_wall_jump_forward(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        assert_int_equal(push(q, 1, U, 0, W0 + 1000, W0, M0), 0);
        /* The wall clock jumps a day ahead 10 ms later: not due yet. */
        expect_none(q, W0 + DAY + 10, M0 + 10);
        expect_none(q, W0 + DAY + 999, M0 + 999);
        assert_true(qindex_next_due(q) == M0 + 1000);
        assert_int_equal(qindex_pop(q, W0 + DAY + 1000, M0 + 1000, &e), 1);
        assert_true(e.id == 1);
}

static void test_wall_jump_backward(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        assert_int_equal(push(q, 1, U, 0, W0 + 1000, W0, M0), 0);
        /* The wall clock goes back a day: the job is not held back. */
        expect_none(q, W0 - DAY + 999, M0 + 999);
        assert_int_equal(qindex_pop(q, W0 - DAY + 1000, M0 + 1000, &e), 1);
        assert_true(e.id == 1);
}

/* The same pushes, popped with and without a wall-clock jump: the order
 * follows the stored run_at whatever the wall clock says at pop time. */
static void jump_order(struct qindex *q, int64_t jump)
{
        int64_t w = W0 + 2000 + jump, m = M0 + 2000;

        assert_int_equal(push(q, 1, U, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(push(q, 3, U, 0, W0 + 500, W0, M0), 0);  /* delayed */
        expect_pops(q, w, m, (const int64_t[]){ 1, 3, 2 }, 3);
}

static void test_no_jump_order(void **state)
{
        jump_order(*state, 0);
}

static void test_jump_forward_keeps_runnable_first(void **state)
{
        jump_order(*state, DAY);
}

/* The documented rule (qindex.h): a delayed job that comes due after a
 * wall-clock jump is ordered by the moment it came due, in the wall time
 * of now. Back a day: delayed jobs 3 and 2 came due "a day ago" and so
 * sort before job 1, whose run_at was taken before the jump. */
static void test_jump_back_orders_by_due_time(void **state)
{
        struct qindex *q = *state;
        int64_t w = W0 + 2000 - DAY, m = M0 + 2000;

        assert_int_equal(push(q, 1, U, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(push(q, 3, U, 0, W0 + 500, W0, M0), 0);  /* delayed */
        expect_pops(q, w, m, (const int64_t[]){ 3, 2, 1 }, 3);
}

/* Ahead a day: job 2 came due 1 s ago (wall W0+DAY+1000), job 4 was
 * pushed after the jump with run_at W0+DAY, so 4 comes first. */
static void test_jump_forward_orders_by_due_time(void **state)
{
        struct qindex *q = *state;
        int64_t w = W0 + DAY + 2000, m = M0 + 2000;

        assert_int_equal(push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(push(q, 4, U, 0, W0 + DAY, w, m), 0);     /* runnable */
        expect_pops(q, w, m, (const int64_t[]){ 4, 2 }, 2);
}

/* 20000 jobs in pseudo-random order (some delayed) against the rule. */
static void test_many(void **state)
{
        enum { N = 20000 };
        struct qindex *q = *state;
        static int prio[N + 1];
        static int64_t run_at[N + 1];
        static bool seen[N + 1];
        int64_t prev = 0;
        uint32_t x = 12345;
        struct qpick e;
        size_t popped = 0;
        bool fair = q->fair;

        memset(seen, 0, sizeof(seen));
        for (size_t i = 0; i < N; i++) {
                int64_t id = (int64_t)((i * 7919) % N) + 1; /* unique, shuffled */
                x = x * 1103515245u + 12345u;
                prio[id] = (int)((x >> 8) % 21) - 10;
                run_at[id] = W0 - 1000 + (int64_t)((x >> 4) % 2000);
                assert_int_equal(push(q, id, U, prio[id], run_at[id], W0, M0), 0);
        }
        assert_int_equal(qindex_entries(q), N);
        assert_true(qindex_next_due(q) > M0);
        /* Everything is due 1000 ms later; the clocks moved together. */
        while (qindex_pop(q, W0 + 1000, M0 + 1000, &e) == 1) {
                int64_t id = e.id;
                assert_true(id >= 1 && id <= N);
                if (popped) {
                        bool ordered = prio[prev] > prio[id] ||
                                       (prio[prev] == prio[id] &&
                                        (run_at[prev] < run_at[id] ||
                                         (run_at[prev] == run_at[id] && prev < id)));
                        if (!ordered)
                                fail_msg("pop %zu out of order: id %lld (prio %d, run_at %lld) after "
                                         "id %lld (prio %d, run_at %lld)", popped, (long long)id, prio[id],
                                         (long long)run_at[id], (long long)prev, prio[prev],
                                         (long long)run_at[prev]);
                }
                assert_false(seen[id]);
                seen[id] = true;
                prev = id;
                popped++;
        }
        assert_int_equal(popped, N);
        assert_int_equal(qindex_entries(q), 0);
        qindex_done(q);
        assert_null(q->buckets);
        assert_null(q->users);
        assert_null(q->delay.e);
        assert_int_equal(qindex_bytes(q), 0);
        assert_int_equal(qindex_init(q, fair), 0);
}

static void expect_pick(struct qindex *q, int64_t wall, int64_t mono, int64_t id, uint32_t uid, int prio)
{
        struct qpick p;

        if (qindex_pop(q, wall, mono, &p) != 1)
                fail_msg("nothing popped, want id %lld", (long long)id);
        if (p.id != id || p.uid != uid || p.prio != prio)
                fail_msg("popped id %lld uid %u prio %d, want id %lld uid %u prio %d", (long long)p.id,
                         p.uid, p.prio, (long long)id, uid, prio);
}

/* Pop id from queue, and start it as the server does once its start
 * committed. */
static void startq(struct qindex *q, int64_t id, uint32_t uid, uint32_t queue)
{
        struct qpick p;

        if (qindex_pop(q, W0, M0, &p) != 1)
                fail_msg("nothing popped, want id %lld", (long long)id);
        if (p.id != id || p.uid != uid || p.queue != queue)
                fail_msg("popped id %lld uid %u queue %u, want id %lld uid %u queue %u", (long long)p.id,
                         p.uid, p.queue, (long long)id, uid, queue);
        assert_int_equal(qindex_run_begin(q, uid, queue), 0);
        assert_int_equal(qindex_queued_add(q, uid, queue, -1), 0);
}

static void start(struct qindex *q, int64_t id, uint32_t uid, int prio)
{
        expect_pick(q, W0, M0, id, uid, prio);
        assert_int_equal(qindex_run_begin(q, uid, 0), 0);
        assert_int_equal(qindex_queued_add(q, uid, 0, -1), 0);
}

/* A queues 1000 jobs, then B one: fair share runs B's as soon as A has
 * one running; off runs A's 1000 first. */
static void test_fair_share(void **state)
{
        struct qindex *q = *state;
        const uint32_t a = 1000, b = 2000;

        for (int64_t id = 1; id <= 1000; id++)
                assert_int_equal(push(q, id, a, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 1001, b, 0, W0 - 5, W0, M0), 0);
        start(q, 1, a, 0);
        if (q->fair) {
                start(q, 1001, b, 0);
                /* Both run one now; B was served last. */
                start(q, 2, a, 0);
                expect_pick(q, W0, M0, 3, a, 0);
        } else {
                for (int64_t id = 2; id <= 1000; id++)
                        start(q, id, a, 0);
                start(q, 1001, b, 0);
        }
}

/* Equal running counts: the least recently served user goes first, a
 * user never served before all, then the lowest uid. Fewer running beats
 * less recently served. */
static void test_round_robin(void **state)
{
        struct qindex *q = *state;
        static const uint32_t uids[] = { 30, 10, 20 };

        for (int64_t id = 1; id <= 9; id++)
                assert_int_equal(push(q, id, uids[(id - 1) % 3], 0, W0 - 100 + id, W0, M0), 0);
        /* Jobs: 30 has 1, 4, 7; 10 has 2, 5, 8; 20 has 3, 6, 9. */
        static const int64_t want[][2] = {
                { 2, 10 }, { 3, 20 }, { 1, 30 }, { 5, 10 }, { 6, 20 }, { 4, 30 },
        };
        for (size_t i = 0; i < 6; i++) {
                start(q, want[i][0], (uint32_t)want[i][1], 0);
                qindex_run_end(q, (uint32_t)want[i][1], 0);
        }
        /* 10 starts two and keeps them; 20 runs one; 30 none: 30 first
         * though served after 10, then 20, and 10 last. */
        assert_int_equal(qindex_run_begin(q, 10, 0), 0);
        assert_int_equal(qindex_run_begin(q, 10, 0), 0);
        assert_int_equal(qindex_run_begin(q, 20, 0), 0);
        start(q, 7, 30, 0);
        start(q, 9, 20, 0);
        /* 10 runs 2, 20 runs 2, 30 runs 1 but has nothing queued. */
        start(q, 8, 10, 0);
        expect_none(q, W0, M0);
}

/* Priority orders a user's own jobs; across users it counts only when
 * fair share is off. */
static void test_priority_per_user(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(push(q, 1, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 2, 1, 5, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 3, 2, 100, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 4, 2, -100, W0 - 20, W0, M0), 0);
        if (q->fair) {
                start(q, 2, 1, 5);
                start(q, 3, 2, 100);
                start(q, 1, 1, 0);
                start(q, 4, 2, -100);
        } else {
                start(q, 3, 2, 100);
                start(q, 2, 1, 5);
                start(q, 1, 1, 0);
                start(q, 4, 2, -100);
        }
}

/* A delayed job that comes due joins its own bucket, and keeps its
 * priority there. */
static void test_delayed_to_own_user(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(push(q, 1, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 2, 1, 1000, W0 + 100, W0, M0), 0);
        assert_int_equal(push(q, 3, 2, -1000, W0 + 100, W0, M0), 0);
        assert_int_equal(push(q, 4, 3, 7, W0 + 200, W0, M0), 0);
        start(q, 1, 1, 0);
        expect_none(q, W0 + 99, M0 + 99);
        assert_true(qindex_next_due(q) == M0 + 100);
        if (q->fair) {
                /* User 1 runs a job, user 2 none: 2's low priority first. */
                expect_pick(q, W0 + 100, M0 + 100, 3, 2, -1000);
                assert_int_equal(qindex_run_begin(q, 2, 0), 0);
                expect_pick(q, W0 + 100, M0 + 100, 2, 1, 1000);
        } else {
                expect_pick(q, W0 + 100, M0 + 100, 2, 1, 1000);
                expect_pick(q, W0 + 100, M0 + 100, 3, 2, -1000);
        }
        expect_none(q, W0 + 199, M0 + 199);
        expect_pick(q, W0 + 200, M0 + 200, 4, 3, 7);
        assert_int_equal(qindex_entries(q), 0);
}

/* Tags come back as pushed (low 9 bits), from either heap; a job retried
 * while its old entry still sits in a heap has two entries, told apart
 * by their tags (the caller keeps the one whose tag is its job's). */
static void test_tags(void **state)
{
        struct qindex *q = *state;
        static const unsigned tags[] = { 0, 1, 255, 511, 512, 513, 0xffffffffu };
        struct qpick p;

        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                assert_int_equal(qindex_push(q, (int64_t)i + 1, U, 3, 0, tags[i],
                                             i % 2 ? W0 + 10 : W0 - 10, W0, M0), 0);
        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                assert_int_equal(qindex_pop(q, W0 + 10, M0 + 10, &p), 1);
                assert_int_equal(p.queue, 3);
                assert_int_equal(p.tag, tags[p.id - 1] & 511);
        }
        /* Job 50: queued (tag 7), canceled, retried (tag 8) into another
         * queue at a higher priority, its old entry still there. */
        assert_int_equal(qindex_push(q, 50, U, 0, 0, 7, W0 - 5, W0, M0), 0);
        assert_int_equal(qindex_push(q, 50, U, 1, 9, 8, W0 - 1, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0, M0, &p), 1);
        assert_true(p.id == 50 && p.tag == 8 && p.queue == 1 && p.prio == 9);
        assert_int_equal(qindex_pop(q, W0, M0, &p), 1);
        assert_true(p.id == 50 && p.tag == 7 && p.queue == 0 && p.prio == 0);
        /* Same id and key in one bucket: both pop, lower tag first. */
        assert_int_equal(qindex_push(q, 60, U, 0, 0, 300, W0 - 5, W0, M0), 0);
        assert_int_equal(qindex_push(q, 60, U, 0, 0, 299, W0 - 5, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0, M0, &p), 1);
        assert_int_equal(p.tag, 299);
        assert_int_equal(qindex_pop(q, W0, M0, &p), 1);
        assert_int_equal(p.tag, 300);
        expect_none(q, W0, M0);
}

/* What unpop puts back pops again, identical, in either mode, including
 * when the pop had emptied its user's heap. */
static void test_unpop_users(void **state)
{
        struct qindex *q = *state;
        struct qpick a, b;

        assert_int_equal(push(q, 1, 5, 3, W0 - 10, W0, M0), 0);
        assert_int_equal(push(q, 2, 6, 0, W0 - 20, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 6, 4, 9, 3, W0 + 50, W0, M0), 0);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(qindex_pop(q, W0 + 50, M0 + 50, &a), 1);
                assert_int_equal(qindex_entries(q), 2);
                assert_int_equal(qindex_unpop(q, &a), 0);
                assert_int_equal(qindex_entries(q), 3);
                assert_int_equal(qindex_pop(q, W0 + 50, M0 + 50, &b), 1);
                assert_memory_equal(&a, &b, sizeof(a));
                assert_int_equal(qindex_unpop(q, &b), 0);
                assert_int_equal(qindex_run_begin(q, 6, 4), 0); /* moves user 6, not the entries */
        }
        assert_true(a.id == (q->fair ? 1 : 3));
        assert_int_equal(qindex_queued(q), 0);
}

static void count_user(void *ud, uint32_t uid, int64_t queued, uint32_t running)
{
        int64_t(*seen)[3] = ud;

        for (int i = 0; i < 8; i++)
                if (!seen[i][0]) {
                        seen[i][0] = (int64_t)uid + 1;
                        seen[i][1] = queued;
                        seen[i][2] = running;
                        return;
                }
        fail_msg("too many users or queues");
}

static int64_t seen_user(int64_t (*seen)[3], uint32_t uid, int64_t *running)
{
        for (int i = 0; i < 8; i++)
                if (seen[i][0] == (int64_t)uid + 1) {
                        *running = seen[i][2];
                        return seen[i][1];
                }
        return -1;
}

/* Counts are the caller's: entries count nothing, queued_add and run
 * begin/end do, per user, per queue and in total, never below 0. */
static void test_counts(void **state)
{
        struct qindex *q = *state;
        int64_t seen[8][3] = { { 0 } }, running = 0;
        size_t n = 0;

        for (int64_t id = 1; id <= 3; id++)
                assert_int_equal(pushq(q, id, 1, 0, 0, W0 - 10), 0);
        assert_int_equal(qindex_entries(q), 3);
        assert_int_equal(qindex_queued(q), 0);
        assert_int_equal(qindex_queued_add(q, 1, 0, 3), 0);
        assert_int_equal(qindex_queued_add(q, 2, 4, 2), 0); /* waiting on dependencies: no entry */
        assert_int_equal(qindex_queued(q), 5);
        assert_int_equal(qindex_user_queued(q, 1), 3);
        assert_int_equal(qindex_user_queued(q, 2), 2);
        assert_int_equal(qindex_queue_queued(q, 0), 3);
        assert_int_equal(qindex_queue_queued(q, 4), 2);
        /* pop alone counts nothing */
        expect_pick(q, W0, M0, 1, 1, 0);
        assert_int_equal(qindex_queued(q), 5);
        assert_int_equal(qindex_user_running(q, 1), 0);
        assert_int_equal(qindex_run_begin(q, 1, 0), 0);
        assert_int_equal(qindex_queued_add(q, 1, 0, -1), 0);
        assert_int_equal(qindex_run_begin(q, 1, 0), 0);
        assert_int_equal(qindex_queued(q), 4);
        assert_int_equal(qindex_user_queued(q, 1), 2);
        assert_int_equal(qindex_user_running(q, 1), 2);
        assert_int_equal(qindex_queue_running(q, 0), 2);
        for (int i = 0; i < 3; i++)
                qindex_run_end(q, 1, 0);
        assert_int_equal(qindex_user_running(q, 1), 0);
        assert_int_equal(qindex_queue_running(q, 0), 0);

        /* A uid or queue never seen: zero, and nothing breaks. */
        qindex_run_end(q, 77, 99);
        assert_int_equal(qindex_queued_add(q, 77, 99, -5), 0);
        assert_int_equal(qindex_user_running(q, 77), 0);
        assert_int_equal(qindex_user_queued(q, 77), 0);
        assert_int_equal(qindex_queue_running(q, 99), 0);
        assert_int_equal(qindex_queue_queued(q, 99), 0);
        assert_true(qindex_queue_idle(q, 99));
        assert_int_equal(qindex_run_begin(q, 88, 6), 0);
        assert_int_equal(qindex_user_running(q, 88), 1);
        assert_int_equal(qindex_queue_running(q, 6), 1);
        assert_int_equal(qindex_queued(q), 4);

        qindex_foreach_user(q, count_user, seen);
        for (int i = 0; i < 8; i++)
                n += seen[i][0] != 0;
        assert_int_equal(n, 3);
        assert_int_equal(seen_user(seen, 1, &running), 2);
        assert_int_equal(running, 0);
        assert_int_equal(seen_user(seen, 2, &running), 2);
        assert_int_equal(running, 0);
        assert_int_equal(seen_user(seen, 88, &running), 0);
        assert_int_equal(running, 1);
        memset(seen, 0, sizeof(seen));
        qindex_foreach_queue(q, count_user, seen);
        assert_int_equal(seen_user(seen, 0, &running), 2);
        assert_int_equal(running, 0);
        assert_int_equal(seen_user(seen, 4, &running), 2);
        assert_int_equal(seen_user(seen, 6, &running), 0);
        assert_int_equal(running, 1);
        assert_int_equal(seen_user(seen, 99, &running), -1);

        /* Below zero neither wraps nor touches the other counts: user 2
         * and queue 4 drop to 0 apart, each held there. */
        assert_int_equal(qindex_queued_add(q, 2, 4, -4), 0);
        assert_int_equal(qindex_queued_add(q, 2, 0, -1), 0);
        qindex_run_end(q, 88, 6);
        qindex_run_end(q, 88, 6);
        assert_int_equal(qindex_user_queued(q, 2), 0);
        assert_int_equal(qindex_queue_queued(q, 4), 0);
        assert_int_equal(qindex_queue_queued(q, 0), 1); /* user 2's -1 here was from its 0 */
        assert_int_equal(qindex_queued(q), 2);
        assert_int_equal(qindex_user_running(q, 88), 0);
        assert_int_equal(qindex_queue_running(q, 6), 0);
        memset(seen, 0, sizeof(seen));
        qindex_foreach_user(q, count_user, seen);
        assert_int_equal(seen_user(seen, 1, &running), 2);
        assert_int_equal(seen[1][0], 0);
        assert_int_equal(qindex_entries(q), 2);
}

/* 16 bytes an entry, whatever the spread over users, and memory goes
 * back once the entries are gone. */
static void test_memory(void **state)
{
        enum { N = 100000 };
        struct qindex *q = *state;
        struct qpick p;
        size_t base;

        for (uint32_t u = 0; u < 10; u++) /* records exist before the baseline */
                assert_int_equal(qindex_run_begin(q, u, 0), 0);
        base = qindex_bytes(q);
        for (int64_t id = 1; id <= N; id++)
                assert_int_equal(push(q, id, (uint32_t)(id % 10), 0, W0 - (id & 1), W0, M0), 0);
        assert_true(qindex_bytes(q) - base <= N * sizeof(struct qentry) * 16 / 10 + 4096);
        while (qindex_pop(q, W0, M0, &p))
                ;
        assert_int_equal(qindex_entries(q), 0);
        assert_true(qindex_bytes(q) <= base + 1024);
        assert_int_equal(q->nlive, 0);
}

/* A million entries in one queue cost about 16 bytes each. */
static void test_million(void **state)
{
        enum { N = 1000000 };
        struct qindex *q = *state;
        size_t bytes, n = 0;
        int prev = 1000;
        struct qpick p;

        for (int64_t id = 1; id <= N; id++)
                assert_int_equal(pushq(q, id, 1, 2, (int)(id % 7), W0 - id % 1000), 0);
        bytes = qindex_bytes(q);
        assert_int_equal(qindex_entries(q), N);
        assert_true(bytes >= N * sizeof(struct qentry));
        assert_true(bytes <= N * sizeof(struct qentry) * 3 / 2 + 4096);
        while (qindex_pop(q, W0, M0, &p)) {
                assert_true(p.prio <= prev);
                prev = p.prio;
                n++;
        }
        assert_int_equal(n, N);
        assert_true(qindex_bytes(q) < 4096);
}

/* Ids up to 2^44 - 1, priorities -1000..1000, queues up to 2^20 - 1, due
 * times up to 2^42 - 1 ms, any uid; nothing changes on a refusal. */
static void test_limits(void **state)
{
        struct qindex *q = *state;
        const int64_t max = (INT64_C(1) << 44) - 1, due_max = (INT64_C(1) << 42) - 1;
        const uint32_t qmax = (1u << 20) - 1;

        assert_int_equal(push(q, max + 1, 1, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(push(q, -1, 1, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(qindex_append(q, max + 1, 1, 0, 0, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(push(q, 1, 1, 1001, W0, W0, M0), -EINVAL);
        assert_int_equal(push(q, 1, 1, -1001, W0, W0, M0), -EINVAL);
        assert_int_equal(qindex_push(q, 1, 1, qmax + 1, 0, 0, W0, W0, M0), -ENOSPC);
        assert_int_equal(qindex_push(q, 1, 1, 0, 0, 0, W0 + 2, W0, due_max - 1), -EOVERFLOW);
        assert_int_equal(qindex_queue_set(q, qmax + 1, 1, false), -ENOSPC);
        assert_int_equal(qindex_run_begin(q, 1, qmax + 1), -ENOSPC);
        assert_int_equal(qindex_queued_add(q, 1, qmax + 1, 1), -ENOSPC);
        assert_int_equal(qindex_entries(q), 0);
        assert_int_equal(qindex_queued(q), 0);
        assert_int_equal(qindex_user_running(q, 1), 0);

        assert_int_equal(qindex_push(q, max, UINT32_MAX, qmax, -1000, 511, W0, W0, M0), 0);
        assert_int_equal(qindex_push(q, max - 1, 0, 0, 1000, 0, W0 + 5, W0, M0), 0);
        expect_pick(q, W0, M0, max, UINT32_MAX, -1000);
        expect_pick(q, W0 + 5, M0 + 5, max - 1, 0, 1000);
        assert_int_equal(qindex_push(q, 3, 0, 0, 0, 0, W0 + 1, W0, due_max - 1), 0);
        assert_true(qindex_next_due(q) == due_max);
        expect_none(q, W0 + 5, due_max - 1);
        expect_pick(q, W0 + 5, due_max, 3, 0, 0);
}

/* 2^20 users since start, then -ENOSPC for a new one only. */
static void test_too_many_users(void **state)
{
        struct qindex *q = *state;

        for (uint32_t u = 0; u < 1u << 20; u++)
                assert_int_equal(qindex_run_begin(q, u * 3, 0), 0);
        assert_int_equal(push(q, 1, 1, 0, W0, W0, M0), -ENOSPC);
        assert_int_equal(push(q, 1, 3, 0, W0, W0, M0), 0);
        assert_int_equal(qindex_run_begin(q, 1, 0), -ENOSPC); /* not counted, not fatal */
        assert_int_equal(qindex_user_running(q, 1), 0);
        assert_int_equal(qindex_user_running(q, 3), 1);
        expect_pick(q, W0, M0, 1, 3, 0);
}

/* A queue at its cap gives nothing while the others still do; an end
 * below the cap gives again; a cap raised or removed too. */
static void test_cap(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(qindex_queue_set(q, 1, 2, false), 0);
        for (int64_t id = 1; id <= 5; id++)
                assert_int_equal(pushq(q, id, 7, 1, 10, W0 - 100 + id), 0); /* capped, better */
        for (int64_t id = 11; id <= 13; id++)
                assert_int_equal(pushq(q, id, 7, 2, 0, W0 - 100 + id), 0);
        startq(q, 1, 7, 1);
        startq(q, 2, 7, 1);
        /* Queue 1 at its cap: queue 2's worse jobs run, not queue 1's. */
        startq(q, 11, 7, 2);
        assert_int_equal(qindex_entries(q), 5);
        qindex_run_end(q, 7, 1);
        startq(q, 3, 7, 1);
        startq(q, 12, 7, 2);
        assert_int_equal(qindex_queue_set(q, 1, 3, false), 0);
        startq(q, 4, 7, 1);
        startq(q, 13, 7, 2);
        expect_none(q, W0, M0);
        assert_int_equal(qindex_queue_running(q, 1), 3);
        assert_int_equal(qindex_queue_set(q, 1, 0, false), 0);
        startq(q, 5, 7, 1);
        expect_none(q, W0, M0);
        assert_int_equal(qindex_entries(q), 0);
        assert_int_equal(qindex_queue_running(q, 1), 4);
        assert_int_equal(qindex_queue_running(q, 2), 3);
        assert_int_equal(qindex_user_running(q, 7), 7);
}

/* A paused queue gives nothing, whether paused before its entries came
 * or while they sat in the heaps, and gives them back in order on
 * resume; a paused queue at its cap stays shut until both clear. */
static void test_pause(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(pushq(q, 1, 1, 3, 0, W0 - 10), 0);
        assert_int_equal(pushq(q, 2, 2, 3, 5, W0 - 10), 0);
        assert_int_equal(pushq(q, 3, 1, 4, 0, W0 - 5), 0);
        assert_int_equal(qindex_queue_set(q, 3, 0, true), 0);
        assert_int_equal(pushq(q, 4, 1, 3, 9, W0 - 1), 0); /* parked at once */
        startq(q, 3, 1, 4);
        expect_none(q, W0, M0);
        assert_int_equal(qindex_entries(q), 3);
        assert_false(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_queue_set(q, 3, 0, false), 0);
        if (q->fair) {
                /* User 2 runs nothing, user 1 one: 2 first. */
                startq(q, 2, 2, 3);
                startq(q, 4, 1, 3);
                startq(q, 1, 1, 3);
        } else {
                startq(q, 4, 1, 3);
                startq(q, 2, 2, 3);
                startq(q, 1, 1, 3);
        }
        /* Paused and at its cap: resuming alone is not enough. */
        assert_int_equal(pushq(q, 5, 1, 3, 0, W0 - 1), 0);
        assert_int_equal(qindex_queue_set(q, 3, 3, true), 0);
        expect_none(q, W0, M0);
        assert_int_equal(qindex_queue_set(q, 3, 3, false), 0);
        expect_none(q, W0, M0);
        qindex_run_end(q, 2, 3);
        startq(q, 5, 1, 3);
}

/* Entries through many pause/resume and cap changes while popping: each
 * pops exactly once, and entries() counts the parked ones. */
static void test_parking_exact(void **state)
{
        enum { N = 3000, NQ = 5 };
        struct qindex *q = *state;
        static bool seen[N + 1];
        uint32_t x = 99;
        size_t popped = 0;
        struct qpick p;

        memset(seen, 0, sizeof(seen));
        for (int64_t id = 1; id <= N; id++) {
                x = x * 1103515245u + 12345u;
                assert_int_equal(qindex_push(q, id, (x >> 8) % 4, (x >> 12) % NQ, (int)((x >> 16) % 5), 0,
                                             W0 - 500 + (int64_t)((x >> 4) % 1000), W0, M0), 0);
        }
        for (int round = 0; popped < N; round++) {
                int64_t t = 1000 + round;
                assert_true(round < 100000);
                x = x * 1103515245u + 12345u;
                uint32_t queue = (x >> 8) % NQ;
                switch ((x >> 16) % 4) {
                case 0:
                        assert_int_equal(qindex_queue_set(q, queue, 0, (x >> 20) % 2), 0);
                        break;
                case 1:
                        assert_int_equal(qindex_queue_set(q, queue, (x >> 20) % 3, false), 0);
                        break;
                case 2:
                        qindex_run_end(q, (x >> 24) % 4, queue);
                        break;
                default:
                        while (qindex_pop(q, W0 + t, M0 + t, &p) == 1) {
                                assert_true(p.id >= 1 && p.id <= N);
                                assert_false(seen[p.id]);
                                seen[p.id] = true;
                                popped++;
                                assert_int_equal(qindex_entries(q), N - popped);
                                assert_int_equal(qindex_run_begin(q, p.uid, p.queue), 0);
                                if ((x >> 24) % 3 == 0)
                                        break;
                        }
                }
                assert_int_equal(qindex_entries(q), N - popped);
        }
        for (uint32_t queue = 0; queue < NQ; queue++)
                assert_int_equal(qindex_queue_set(q, queue, 0, false), 0);
        expect_none(q, W0 + DAY, M0 + DAY);
}

/* Fair share: a user whose every bucket is parked leaves the users heap,
 * so the others run though they run more, and comes back first (fewest
 * running) when one of its queues resumes. */
static void test_user_all_parked(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(pushq(q, 1, 10, 1, 0, W0 - 10), 0);
        assert_int_equal(pushq(q, 2, 10, 2, 0, W0 - 9), 0);
        for (int64_t id = 11; id <= 14; id++)
                assert_int_equal(pushq(q, id, 20, 3, 0, W0 - 20 + id), 0);
        assert_int_equal(qindex_queue_set(q, 1, 0, true), 0);
        assert_int_equal(qindex_queue_set(q, 2, 1, false), 0);
        assert_int_equal(qindex_run_begin(q, 99, 2), 0); /* queue 2 at its cap */
        startq(q, 11, 20, 3);
        startq(q, 12, 20, 3);
        startq(q, 13, 20, 3);
        assert_int_equal(qindex_user_running(q, 20), 3);
        qindex_run_end(q, 99, 2); /* queue 2 below its cap: user 10 is back, first */
        startq(q, 2, 10, 2);
        startq(q, 14, 20, 3);
        expect_none(q, W0, M0);
        assert_int_equal(qindex_queue_set(q, 1, 0, false), 0);
        startq(q, 1, 10, 1);
        assert_int_equal(qindex_entries(q), 0);
}

/* Off: one global order over every queue and user. */
static void test_off_global_order(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(pushq(q, 1, 1, 0, 0, W0 - 10), 0);
        assert_int_equal(pushq(q, 2, 2, 1, 5, W0 - 10), 0);
        assert_int_equal(pushq(q, 3, 3, 2, 0, W0 - 20), 0);
        assert_int_equal(pushq(q, 4, 1, 3, 5, W0 - 30), 0);
        assert_int_equal(pushq(q, 5, 2, 0, 0, W0 - 10), 0);
        assert_int_equal(pushq(q, 6, 3, 1, -5, W0 - 99), 0);
        assert_int_equal(pushq(q, 7, 1, 2, 5, W0 - 30), 0);
        assert_int_equal(qindex_run_begin(q, 1, 9), 0); /* running counts do not matter */
        assert_int_equal(qindex_run_begin(q, 1, 9), 0);
        expect_pops(q, W0, M0, (const int64_t[]){ 4, 7, 2, 3, 1, 5, 6 }, 7);
}

/* A delayed entry coming due into a paused queue is parked, not lost,
 * and is ordered by the moment it came due. */
static void test_delayed_into_paused(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(pushq(q, 1, 1, 2, 0, W0 + 100), 0);
        assert_int_equal(pushq(q, 2, 1, 2, 0, W0 + 300), 0);
        assert_int_equal(qindex_queue_set(q, 2, 0, true), 0);
        expect_none(q, W0 + 200, M0 + 200);
        assert_true(qindex_next_due(q) == M0 + 300);
        assert_int_equal(qindex_entries(q), 2);
        assert_int_equal(pushq(q, 3, 1, 2, 0, W0 + 150), 0); /* came due at W0 + 150 */
        expect_none(q, W0 + 400, M0 + 400);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_entries(q), 3);
        assert_int_equal(qindex_queue_set(q, 2, 0, false), 0);
        expect_pops(q, W0 + 400, M0 + 400, (const int64_t[]){ 1, 3, 2 }, 3);
}

/* Buckets are freed when no entry names them and their slots reused:
 * many short-lived (queue, user) pairs one after another use a few
 * slots; a burst of them gives its memory back once gone. */
static void test_bucket_reuse(void **state)
{
        struct qindex *q = *state;
        size_t base, peak;
        struct qpick p;

        assert_int_equal(qindex_run_begin(q, 0, 999), 0); /* users and queues before the baseline */
        for (uint32_t u = 1; u < 8; u++)
                assert_int_equal(qindex_run_begin(q, u, 0), 0);
        base = qindex_bytes(q);
        for (int64_t i = 1; i <= 50000; i++) {
                uint32_t queue = (uint32_t)(i % 1000), uid = (uint32_t)(i % 8);
                int64_t delay = i % 3 ? 0 : 5, mono = M0 + 10 * i;
                assert_int_equal(qindex_push(q, i, uid, queue, 0, (unsigned)i, W0 + delay, W0, mono), 0);
                assert_int_equal(qindex_pop(q, W0 + delay, mono + delay, &p), 1);
                assert_true(p.id == i && p.queue == queue && p.uid == uid);
                assert_true(q->nbuckets <= 2);
        }
        expect_none(q, W0, M0 + DAY);
        assert_int_equal(q->nlive, 0);
        assert_int_equal(q->nbuckets, 0);
        assert_true(qindex_bytes(q) <= base + 1024);

        /* A burst: 8 users x 1000 queues at once, half delayed. */
        for (int64_t i = 0; i < 8000; i++)
                assert_int_equal(qindex_push(q, i + 1, (uint32_t)(i % 8), (uint32_t)(i / 8), 0, 0,
                                             W0 + i % 2, W0, M0), 0);
        assert_int_equal(q->nlive, 8000);
        peak = qindex_bytes(q);
        assert_true(peak > base + 8000 * sizeof(struct qentry));
        for (int64_t i = 1; i <= 8000; i++)
                assert_int_equal(qindex_pop(q, W0 + 1, M0 + 1, &p), 1);
        expect_none(q, W0 + 1, M0 + 1);
        assert_int_equal(q->nlive, 0);
        assert_true(qindex_bytes(q) <= base + 1024);
        assert_true(qindex_queue_idle(q, 500));
}

/* Idle: no entry (runnable, delayed or parked), nothing counted, default
 * settings. */
static void test_queue_idle(void **state)
{
        struct qindex *q = *state;
        struct qpick p;

        assert_true(qindex_queue_idle(q, 3));
        assert_true(qindex_queue_idle(q, 1u << 20));
        assert_int_equal(pushq(q, 1, 1, 3, 0, W0 + 10), 0);
        assert_false(qindex_queue_idle(q, 3)); /* delayed */
        assert_true(qindex_queue_idle(q, 2));
        assert_int_equal(qindex_queue_set(q, 3, 0, true), 0);
        expect_none(q, W0 + 10, M0 + 10);
        assert_false(qindex_queue_idle(q, 3)); /* parked */
        assert_int_equal(qindex_queue_set(q, 3, 0, false), 0);
        assert_false(qindex_queue_idle(q, 3)); /* runnable */
        assert_int_equal(qindex_pop(q, W0 + 10, M0 + 10, &p), 1);
        assert_true(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_unpop(q, &p), 0);
        assert_false(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_pop(q, W0 + 10, M0 + 10, &p), 1);
        assert_int_equal(qindex_queued_add(q, 1, 3, 1), 0);
        assert_false(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_queued_add(q, 1, 3, -1), 0);
        assert_int_equal(qindex_run_begin(q, 1, 3), 0);
        assert_false(qindex_queue_idle(q, 3));
        qindex_run_end(q, 1, 3);
        assert_true(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_queue_set(q, 3, 4, false), 0);
        assert_false(qindex_queue_idle(q, 3));
        assert_int_equal(qindex_queue_set(q, 3, 0, false), 0);
        assert_true(qindex_queue_idle(q, 3));
        /* The number reused by another queue starts clean. */
        assert_int_equal(pushq(q, 2, 1, 3, 0, W0 - 1), 0);
        startq(q, 2, 1, 3);
        assert_int_equal(qindex_queue_running(q, 3), 1);
}

/* qindex_append + qindex_heapify (the start-up load) pop in the same
 * order as pushes would, users, queues, a cap and starts included. */
static void test_bulk_load(void **state)
{
        enum { N = 5000 };
        struct qindex *a = *state, b;
        struct qpick pa, pb;
        uint32_t x = 777;
        size_t n = 0;

        assert_int_equal(qindex_init(&b, a->fair), 0);
        assert_int_equal(qindex_queue_set(a, 2, 3, false), 0);
        assert_int_equal(qindex_queue_set(&b, 2, 3, false), 0);
        assert_int_equal(qindex_queue_set(a, 3, 0, true), 0);
        assert_int_equal(qindex_queue_set(&b, 3, 0, true), 0);
        for (int64_t id = 1; id <= N; id++) {
                int prio;
                int64_t run_at;
                uint32_t uid, queue;
                x = x * 1103515245u + 12345u;
                prio = (int)((x >> 8) % 7) - 3;
                run_at = W0 - 500 + (int64_t)((x >> 4) % 1000); /* half delayed */
                uid = (x >> 20) % 13;
                queue = (x >> 26) % 4;
                assert_int_equal(qindex_push(a, id, uid, queue, prio, (unsigned)id, run_at, W0, M0), 0);
                assert_int_equal(qindex_append(&b, id, uid, queue, prio, (unsigned)id, run_at, W0, M0), 0);
        }
        qindex_heapify(&b);
        assert_int_equal(qindex_next_due(a), qindex_next_due(&b));
        assert_int_equal(qindex_entries(a), qindex_entries(&b));
        for (int round = 0; round < 2; round++) {
                while (qindex_pop(a, W0 + 1000, M0 + 1000, &pa) == 1) {
                        assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &pb), 1);
                        assert_memory_equal(&pa, &pb, sizeof(pa));
                        assert_int_equal(qindex_run_begin(a, pa.uid, pa.queue), 0);
                        assert_int_equal(qindex_run_begin(&b, pb.uid, pb.queue), 0);
                        if (n % 3 == 0) {
                                qindex_run_end(a, pa.uid, pa.queue);
                                qindex_run_end(&b, pb.uid, pb.queue);
                        }
                        n++;
                }
                assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &pb), 0);
                assert_int_equal(qindex_queue_set(a, 2, 0, false), 0);
                assert_int_equal(qindex_queue_set(&b, 2, 0, false), 0);
                assert_int_equal(qindex_queue_set(a, 3, 0, false), 0);
                assert_int_equal(qindex_queue_set(&b, 3, 0, false), 0);
        }
        assert_int_equal(n, N);
        qindex_done(&b);
}

/* The reference model: every entry in a plain array, every choice by a
 * scan, the rules written out once more. */
enum { MJOBS = 8192, MUSERS = 6, MQUEUES = 6, MHELD = 8 };
enum mstate { M_DELAYED, M_RUNNABLE, M_HELD, M_GONE };

struct mjob {
        int64_t id, run_at, due;
        uint32_t uid, queue;
        int prio;
        unsigned tag;
        enum mstate st;
};

struct model {
        bool fair;
        struct mjob job[MJOBS];
        size_t njobs;
        struct { uint32_t uid, running; uint64_t served; int64_t queued; } user[MUSERS];
        struct { uint32_t queue, running, cap; int64_t queued; bool paused; } queue[MQUEUES];
        uint64_t seq;
        struct { size_t job; struct qpick pick; } held[MHELD];
        size_t nheld;
        struct { int u, qi; } run[MJOBS];
        size_t nrun;
};

static const uint32_t m_uids[MUSERS] = { 0, 17, 1000, 4242, 65534, UINT32_MAX };
static const uint32_t m_queues[MQUEUES] = { 0, 1, 2, 5, 9, 63 };

static int muser(const struct model *m, uint32_t uid)
{
        for (int i = 0; i < MUSERS; i++)
                if (m->user[i].uid == uid)
                        return i;
        fail_msg("no user %u", uid);
        return -1;
}

static int mqueue(const struct model *m, uint32_t queue)
{
        for (int i = 0; i < MQUEUES; i++)
                if (m->queue[i].queue == queue)
                        return i;
        fail_msg("no queue %u", queue);
        return -1;
}

static bool meligible(const struct model *m, uint32_t queue)
{
        int i = mqueue(m, queue);

        return !m->queue[i].paused && !(m->queue[i].cap && m->queue[i].running >= m->queue[i].cap);
}

/* priority DESC, run_at ASC, id ASC, then tag ASC */
static bool mjob_before(const struct model *m, size_t a, size_t b)
{
        const struct mjob *x = &m->job[a], *y = &m->job[b];

        if (x->prio != y->prio)
                return x->prio > y->prio;
        if (x->run_at != y->run_at)
                return x->run_at < y->run_at;
        if (x->id != y->id)
                return x->id < y->id;
        return x->tag < y->tag;
}

static bool muser_before(const struct model *m, int a, int b)
{
        if (m->user[a].running != m->user[b].running)
                return m->user[a].running < m->user[b].running;
        if (m->user[a].served != m->user[b].served)
                return m->user[a].served < m->user[b].served;
        return m->user[a].uid < m->user[b].uid;
}

/* The job index the next pop returns, or -1. */
static ssize_t mpop(struct model *m, int64_t wall, int64_t mono)
{
        ssize_t best = -1;
        int who = -1;

        for (size_t i = 0; i < m->njobs; i++)
                if (m->job[i].st == M_DELAYED && m->job[i].due <= mono) {
                        m->job[i].st = M_RUNNABLE;
                        m->job[i].run_at = wall - (mono - m->job[i].due);
                }
        if (m->fair)
                for (size_t i = 0; i < m->njobs; i++) {
                        int u = muser(m, m->job[i].uid);
                        if (m->job[i].st == M_RUNNABLE && meligible(m, m->job[i].queue) &&
                            (who < 0 || muser_before(m, u, who)))
                                who = u;
                }
        for (size_t i = 0; i < m->njobs; i++)
                if (m->job[i].st == M_RUNNABLE && meligible(m, m->job[i].queue) &&
                    (who < 0 || m->job[i].uid == m->user[who].uid) && (best < 0 || mjob_before(m, i, (size_t)best)))
                        best = (ssize_t)i;
        return best;
}

static void mcheck(const struct model *m, const struct qindex *q, int op)
{
        int64_t total = 0, due = INT64_MAX;
        size_t entries = 0;
        int64_t qentries[MQUEUES] = { 0 };

        for (int i = 0; i < MUSERS; i++) {
                total += m->user[i].queued;
                if (qindex_user_queued(q, m_uids[i]) != m->user[i].queued ||
                    qindex_user_running(q, m_uids[i]) != m->user[i].running)
                        fail_msg("op %d: user %u counts %lld/%u, want %lld/%u", op, m_uids[i],
                                 (long long)qindex_user_queued(q, m_uids[i]), qindex_user_running(q, m_uids[i]),
                                 (long long)m->user[i].queued, m->user[i].running);
        }
        assert_int_equal(qindex_queued(q), total);
        for (size_t i = 0; i < m->njobs; i++)
                if (m->job[i].st == M_DELAYED || m->job[i].st == M_RUNNABLE) {
                        entries++;
                        qentries[mqueue(m, m->job[i].queue)]++;
                        if (m->job[i].st == M_DELAYED && m->job[i].due < due)
                                due = m->job[i].due;
                }
        assert_int_equal(qindex_entries(q), entries);
        assert_true(qindex_next_due(q) == due);
        for (int i = 0; i < MQUEUES; i++) {
                bool idle = !qentries[i] && !m->queue[i].queued && !m->queue[i].running && !m->queue[i].cap &&
                            !m->queue[i].paused;
                assert_int_equal(qindex_queue_queued(q, m_queues[i]), m->queue[i].queued);
                assert_int_equal(qindex_queue_running(q, m_queues[i]), m->queue[i].running);
                if (qindex_queue_idle(q, m_queues[i]) != idle)
                        fail_msg("op %d: queue %u idle %d, want %d", op, m_queues[i], !idle, idle);
        }
}

static uint32_t rnd(uint32_t *x, uint32_t n)
{
        *x = *x * 1103515245u + 12345u;
        return (*x >> 8) % n;
}

/* Pop from both, compare, and return the model's job index or -1. */
static ssize_t mpop_both(struct model *m, struct qindex *q, int64_t wall, int64_t mono, int op, struct qpick *p)
{
        ssize_t want = mpop(m, wall, mono);
        int got = qindex_pop(q, wall, mono, p);

        if (want < 0) {
                if (got)
                        fail_msg("op %d: popped %lld (uid %u queue %u), want none", op, (long long)p->id,
                                 p->uid, p->queue);
                return -1;
        }
        const struct mjob *j = &m->job[want];
        if (!got || p->id != j->id || p->uid != j->uid || p->queue != j->queue || p->prio != j->prio ||
            p->tag != j->tag)
                fail_msg("op %d: popped %lld/%u (uid %u queue %u), want %lld/%u (uid %u queue %u)", op,
                         got ? (long long)p->id : -1LL, got ? p->tag : 0, got ? p->uid : 0, got ? p->queue : 0,
                         (long long)j->id, j->tag, j->uid, j->queue);
        return want;
}

static void test_model(void **state)
{
        static struct model m;
        struct qindex *q = *state;
        int64_t wall = W0, mono = M0, next_id = 1;
        uint32_t x = q->fair ? 4242 : 2424;
        size_t pops = 0;
        struct qpick p;
        ssize_t w;
        int op;

        memset(&m, 0, sizeof(m));
        m.fair = q->fair;
        for (int i = 0; i < MUSERS; i++)
                m.user[i].uid = m_uids[i];
        for (int i = 0; i < MQUEUES; i++)
                m.queue[i].queue = m_queues[i];
        for (op = 0; op < 12000 && m.njobs < MJOBS; op++) {
                uint32_t r = rnd(&x, 100);

                if (r < 30) {
                        struct mjob *j = &m.job[m.njobs];
                        int u = (int)rnd(&x, MUSERS), qi = (int)rnd(&x, MQUEUES);
                        unsigned tag = rnd(&x, 256) + 512 * rnd(&x, 2); /* bits above the 9 are dropped */
                        if (m.njobs && rnd(&x, 5) == 0) {
                                /* A retry: same id, the next tag (the highest so far + 1,
                                 * so no two entries share id and tag). */
                                j->id = m.job[m.njobs - 1 - rnd(&x, (uint32_t)MIN(m.njobs, 40))].id;
                                tag = 0;
                                for (size_t i = 0; i < m.njobs; i++)
                                        if (m.job[i].id == j->id)
                                                tag = MAX(tag, m.job[i].tag + 1);
                                assert_true(tag < 512);
                        } else {
                                j->id = next_id;
                                next_id += 1 + rnd(&x, 3);
                        }
                        j->uid = m_uids[u];
                        j->queue = m_queues[qi];
                        j->prio = (int)rnd(&x, 5) - 2;
                        j->tag = tag & 511;
                        j->run_at = wall - 100 + rnd(&x, 250);
                        j->due = mono + (j->run_at - wall);
                        j->st = j->run_at <= wall ? M_RUNNABLE : M_DELAYED;
                        m.njobs++;
                        assert_int_equal(qindex_push(q, j->id, j->uid, j->queue, j->prio, tag, j->run_at, wall, mono),
                                         0);
                } else if (r < 60) {
                        w = mpop_both(&m, q, wall, mono, op, &p);
                        if (w < 0)
                                continue;
                        pops++;
                        r = rnd(&x, 8);
                        if (r < 2) {
                                assert_int_equal(qindex_unpop(q, &p), 0);
                        } else if (r < 3 && m.nheld < MHELD) {
                                m.job[w].st = M_HELD;
                                m.held[m.nheld].job = (size_t)w;
                                m.held[m.nheld++].pick = p;
                        } else if (r < 4) {
                                m.job[w].st = M_GONE; /* a stale entry, dropped */
                        } else {
                                int u = muser(&m, p.uid), qi = mqueue(&m, p.queue);
                                m.job[w].st = M_GONE;
                                m.user[u].running++;
                                m.user[u].served = ++m.seq;
                                m.queue[qi].running++;
                                m.run[m.nrun].u = u;
                                m.run[m.nrun++].qi = qi;
                                assert_int_equal(qindex_run_begin(q, p.uid, p.queue), 0);
                        }
                } else if (r < 70) {
                        if (!m.nrun) {
                                qindex_run_end(q, m_uids[rnd(&x, MUSERS)], m_queues[rnd(&x, MQUEUES)]); /* no-op */
                                continue;
                        }
                        size_t k = rnd(&x, (uint32_t)m.nrun);
                        int u = m.run[k].u, qi = m.run[k].qi;
                        m.run[k] = m.run[--m.nrun];
                        m.user[u].running--;
                        m.queue[qi].running--;
                        qindex_run_end(q, m_uids[u], m_queues[qi]);
                } else if (r < 75) {
                        if (!m.nheld)
                                continue;
                        size_t k = rnd(&x, (uint32_t)m.nheld);
                        m.job[m.held[k].job].st = M_RUNNABLE;
                        assert_int_equal(qindex_unpop(q, &m.held[k].pick), 0);
                        m.held[k] = m.held[--m.nheld];
                } else if (r < 80) {
                        int qi = (int)rnd(&x, MQUEUES);
                        m.queue[qi].cap = rnd(&x, 2) ? 0 : rnd(&x, 4);
                        m.queue[qi].paused = rnd(&x, 4) == 0;
                        assert_int_equal(qindex_queue_set(q, m_queues[qi], m.queue[qi].cap, m.queue[qi].paused), 0);
                } else if (r < 85) {
                        int u = (int)rnd(&x, MUSERS), qi = (int)rnd(&x, MQUEUES);
                        int64_t d = (int64_t)rnd(&x, 7) - 3;
                        m.user[u].queued = MAX(m.user[u].queued + d, 0);
                        m.queue[qi].queued = MAX(m.queue[qi].queued + d, 0);
                        assert_int_equal(qindex_queued_add(q, m_uids[u], m_queues[qi], d), 0);
                } else {
                        int64_t step = rnd(&x, 60);
                        mono += step;
                        wall += step;
                        if (rnd(&x, 10) == 0)
                                wall += rnd(&x, 2) ? DAY : -DAY;
                }
                mcheck(&m, q, op);
        }
        /* Everything back and eligible: each entry left pops exactly once,
         * in the model's order. */
        for (size_t k = 0; k < m.nheld; k++) {
                m.job[m.held[k].job].st = M_RUNNABLE;
                assert_int_equal(qindex_unpop(q, &m.held[k].pick), 0);
        }
        for (int i = 0; i < MQUEUES; i++) {
                m.queue[i].paused = false;
                m.queue[i].cap = 0;
                assert_int_equal(qindex_queue_set(q, m_queues[i], 0, false), 0);
        }
        mono += 1000;
        wall += 1000;
        while ((w = mpop_both(&m, q, wall, mono, op, &p)) >= 0) {
                int u = muser(&m, p.uid);
                m.job[w].st = M_GONE;
                m.user[u].running++;
                m.user[u].served = ++m.seq;
                m.queue[mqueue(&m, p.queue)].running++;
                assert_int_equal(qindex_run_begin(q, p.uid, p.queue), 0);
                op++;
        }
        mcheck(&m, q, op);
        assert_int_equal(qindex_entries(q), 0);
        assert_true(pops > 2000);
}

#define MODE(f, m) { .name = #f " (" #m ")", .test_func = f, .setup_func = setup, \
                     .teardown_func = teardown, .initial_state = &m }
#define FAIR_ONLY(f) MODE(f, FAIR)
#define OFF_ONLY(f) MODE(f, OFF)
#define BOTH(f) MODE(f, FAIR), MODE(f, OFF)

int main(void)
{
        const struct CMUnitTest tests[] = {
                BOTH(test_empty),
                BOTH(test_order),
                BOTH(test_run_at_limits),
                BOTH(test_delayed),
                BOTH(test_delayed_keep_prio_and_id),
                BOTH(test_delay_cap),
                BOTH(test_unpop),
                BOTH(test_wall_jump_forward),
                BOTH(test_wall_jump_backward),
                BOTH(test_no_jump_order),
                BOTH(test_jump_forward_keeps_runnable_first),
                BOTH(test_jump_back_orders_by_due_time),
                BOTH(test_jump_forward_orders_by_due_time),
                BOTH(test_many),
                BOTH(test_fair_share),
                FAIR_ONLY(test_round_robin),
                BOTH(test_priority_per_user),
                BOTH(test_delayed_to_own_user),
                BOTH(test_tags),
                BOTH(test_unpop_users),
                BOTH(test_counts),
                BOTH(test_memory),
                BOTH(test_million),
                BOTH(test_limits),
                FAIR_ONLY(test_too_many_users),
                BOTH(test_cap),
                BOTH(test_pause),
                BOTH(test_parking_exact),
                FAIR_ONLY(test_user_all_parked),
                OFF_ONLY(test_off_global_order),
                BOTH(test_delayed_into_paused),
                BOTH(test_bucket_reuse),
                BOTH(test_queue_idle),
                BOTH(test_bulk_load),
                BOTH(test_model),
        };

        return cmocka_run_group_tests_name("qindex", tests, NULL, NULL);
}
