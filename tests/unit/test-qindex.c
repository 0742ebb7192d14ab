/* Unit tests of daemon/qindex.c, the dispatch index.
 *
 * The order of ringq 1 within one user, in both modes: priority DESC,
 * run_at ASC, id ASC (SPEC "Dispatch order"), at the priority and run_at
 * limits and over 20000 jobs against a reference sort; delayed jobs come
 * out exactly when the monotonic time reaches their due time, keep their
 * priority and id; qindex_unpop puts an entry back in front; a wall-clock
 * jump after push neither starts a delayed job early nor holds it back.
 * Across users: fair share picks the user with the fewest running jobs,
 * then the least recently served, then the lowest uid, and off keeps one
 * global order; delayed jobs come due to their own user; canceled
 * entries are skipped; the counts; the packing limits; and a random run
 * against a reference model in both modes. All times are passed in: no
 * clocks.
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

/* Pop everything due at (wall, mono) and compare the ids in order. */
static void expect_pops(struct qindex *q, int64_t wall, int64_t mono, const int64_t *ids, size_t n)
{
        struct qpick e;

        for (size_t i = 0; i < n; i++) {
                if (qindex_pop(q, wall, mono, &e) != 1)
                        fail_msg("pop %zu: nothing, want id %lld", i, (long long)ids[i]);
                if (e.id != ids[i])
                        fail_msg("pop %zu: id %lld, want %lld", i, (long long)e.id, (long long)ids[i]);
        }
        assert_int_equal(qindex_pop(q, wall, mono, &e), 0);
}

static void test_empty(void **state)
{
        struct qindex *q = *state;
        struct qpick e = { 0 };

        assert_int_equal(qindex_pop(q, W0, M0, &e), 0);
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
                assert_int_equal(qindex_push(q, jobs[i][0], U, (int)jobs[i][1], jobs[i][2], W0, M0), 0);
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

        assert_int_equal(qindex_push(q, 1, U, 0, far, far, M0), 0);
        assert_int_equal(qindex_push(q, 2, U, 0, far - 1, far, M0), 0);
        assert_int_equal(qindex_push(q, 3, U, 0, 0, far, M0), 0);
        assert_int_equal(qindex_push(q, 4, U, 1, far, far, M0), 0);
        assert_int_equal(qindex_push(q, 5, U, -1, 0, far, M0), 0);
        expect_pops(q, far, M0, (const int64_t[]){ 4, 3, 2, 1, 5 }, 5);
}

static void test_delayed(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        /* Due in 1000 ms, and in 1 ms; run_at == now is runnable at once. */
        assert_int_equal(qindex_push(q, 10, U, 0, W0 + 1000, W0, M0), 0);
        assert_int_equal(qindex_push(q, 11, U, 0, W0 + 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 12, U, -1000, W0, W0, M0), 0);
        assert_int_equal(qindex_entries(q), 3);
        assert_true(qindex_next_due(q) == M0 + 1);

        expect_pops(q, W0, M0, (const int64_t[]){ 12 }, 1);
        expect_pops(q, W0 + 1, M0 + 1, (const int64_t[]){ 11 }, 1);
        assert_true(qindex_next_due(q) == M0 + 1000);
        assert_int_equal(qindex_pop(q, W0 + 999, M0 + 999, &e), 0);
        assert_int_equal(qindex_entries(q), 1);
        expect_pops(q, W0 + 1000, M0 + 1000, (const int64_t[]){ 10 }, 1);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_entries(q), 0);
}

static void test_delayed_keep_prio_and_id(void **state)
{
        struct qindex *q = *state;
        const int64_t big = INT64_C(1) << 40;

        /* Due at different times, all due by M0 + 300. */
        assert_int_equal(qindex_push(q, big + 1, U, -1000, W0 + 100, W0, M0), 0);
        assert_int_equal(qindex_push(q, big + 2, U, 1000, W0 + 300, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, U, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, U, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(qindex_push(q, 5, U, 0, W0 - 50, W0, M0), 0); /* runnable */
        expect_pops(q, W0 + 300, M0 + 300, (const int64_t[]){ big + 2, 5, 3, 4, big + 1 }, 5);
}

static void test_delay_cap(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        /* A run_at further ahead than RINGQ_DURATION_MAX_MS waits that long. */
        assert_int_equal(qindex_push(q, 1, U, 0, 253402300799999LL, 0, M0), 0);
        assert_true(qindex_next_due(q) == M0 + RINGQ_DURATION_MAX_MS);
        assert_int_equal(qindex_pop(q, RINGQ_DURATION_MAX_MS - 1, M0 + RINGQ_DURATION_MAX_MS - 1, &e), 0);
        assert_int_equal(qindex_pop(q, RINGQ_DURATION_MAX_MS, M0 + RINGQ_DURATION_MAX_MS, &e), 1);
        assert_true(e.id == 1);
}

static void test_unpop(void **state)
{
        struct qindex *q = *state;
        struct qpick a, b;

        assert_int_equal(qindex_push(q, 1, U, 0, W0 - 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 2, U, 7, W0 - 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, U, 0, W0 + 500, W0, M0), 0);
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
        assert_int_equal(qindex_push(q, 3, U, 0, W0 + 500, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, U, 0, W0 + 600, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0 + 600, M0 + 600, &a), 1);
        assert_true(a.id == 3);
        assert_int_equal(qindex_unpop(q, &a), 0);
        expect_pops(q, W0 + 600, M0 + 600, (const int64_t[]){ 3, 4 }, 2);
}

static void test_wall_jump_forward(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        assert_int_equal(qindex_push(q, 1, U, 0, W0 + 1000, W0, M0), 0);
        /* The wall clock jumps a day ahead 10 ms later: not due yet. */
        assert_int_equal(qindex_pop(q, W0 + DAY + 10, M0 + 10, &e), 0);
        assert_int_equal(qindex_pop(q, W0 + DAY + 999, M0 + 999, &e), 0);
        assert_true(qindex_next_due(q) == M0 + 1000);
        assert_int_equal(qindex_pop(q, W0 + DAY + 1000, M0 + 1000, &e), 1);
        assert_true(e.id == 1);
}

static void test_wall_jump_backward(void **state)
{
        struct qindex *q = *state;
        struct qpick e;

        assert_int_equal(qindex_push(q, 1, U, 0, W0 + 1000, W0, M0), 0);
        /* The wall clock goes back a day: the job is not held back. */
        assert_int_equal(qindex_pop(q, W0 - DAY + 999, M0 + 999, &e), 0);
        assert_int_equal(qindex_pop(q, W0 - DAY + 1000, M0 + 1000, &e), 1);
        assert_true(e.id == 1);
}

/* The same pushes, popped with and without a wall-clock jump: the order
 * follows the stored run_at whatever the wall clock says at pop time. */
static void jump_order(struct qindex *q, int64_t jump)
{
        int64_t w = W0 + 2000 + jump, m = M0 + 2000;

        assert_int_equal(qindex_push(q, 1, U, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(qindex_push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 3, U, 0, W0 + 500, W0, M0), 0);  /* delayed */
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

        assert_int_equal(qindex_push(q, 1, U, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(qindex_push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 3, U, 0, W0 + 500, W0, M0), 0);  /* delayed */
        expect_pops(q, w, m, (const int64_t[]){ 3, 2, 1 }, 3);
}

/* Ahead a day: job 2 came due 1 s ago (wall W0+DAY+1000), job 4 was
 * pushed after the jump with run_at W0+DAY, so 4 comes first. */
static void test_jump_forward_orders_by_due_time(void **state)
{
        struct qindex *q = *state;
        int64_t w = W0 + DAY + 2000, m = M0 + 2000;

        assert_int_equal(qindex_push(q, 2, U, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 4, U, 0, W0 + DAY, w, m), 0);     /* runnable */
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

        memset(seen, 0, sizeof(seen));
        for (size_t i = 0; i < N; i++) {
                int64_t id = (int64_t)((i * 7919) % N) + 1; /* unique, shuffled */
                x = x * 1103515245u + 12345u;
                prio[id] = (int)((x >> 8) % 21) - 10;
                run_at[id] = W0 - 1000 + (int64_t)((x >> 4) % 2000);
                assert_int_equal(qindex_push(q, id, U, prio[id], run_at[id], W0, M0), 0);
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
        assert_null(q->users);
        assert_null(q->shared.e);
        assert_null(q->delay.e);
        assert_int_equal(qindex_bytes(q), 0);
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

/* Pop, and start the job as the server does once its start committed. */
static void start(struct qindex *q, int64_t id, uint32_t uid, int prio)
{
        expect_pick(q, W0, M0, id, uid, prio);
        qindex_run_begin(q, uid);
        qindex_dequeue(q, uid);
}

/* A queues 1000 jobs, then B one: fair share runs B's as soon as A has
 * one running; off runs A's 1000 first. */
static void test_fair_share(void **state)
{
        struct qindex *q = *state;
        const uint32_t a = 1000, b = 2000;

        for (int64_t id = 1; id <= 1000; id++)
                assert_int_equal(qindex_push(q, id, a, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 1001, b, 0, W0 - 5, W0, M0), 0);
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
                assert_int_equal(qindex_push(q, id, uids[(id - 1) % 3], 0, W0 - 100 + id, W0, M0), 0);
        /* Jobs: 30 has 1, 4, 7; 10 has 2, 5, 8; 20 has 3, 6, 9. */
        static const int64_t want[][2] = {
                { 2, 10 }, { 3, 20 }, { 1, 30 }, { 5, 10 }, { 6, 20 }, { 4, 30 },
        };
        for (size_t i = 0; i < 6; i++) {
                start(q, want[i][0], (uint32_t)want[i][1], 0);
                qindex_run_end(q, (uint32_t)want[i][1]);
        }
        /* 10 starts two and keeps them; 20 runs one; 30 none: 30 first
         * though served after 10, then 20, and 10 last. */
        qindex_run_begin(q, 10);
        qindex_run_begin(q, 10);
        qindex_run_begin(q, 20);
        start(q, 7, 30, 0);
        start(q, 9, 20, 0);
        /* 10 runs 2, 20 runs 2, 30 runs 1 but has nothing queued. */
        start(q, 8, 10, 0);
        assert_int_equal(qindex_pop(q, W0, M0, &(struct qpick){ 0 }), 0);
}

/* Priority orders a user's own jobs; across users it counts only when
 * fair share is off. */
static void test_priority_per_user(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(qindex_push(q, 1, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 2, 1, 5, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 2, 100, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 2, -100, W0 - 20, W0, M0), 0);
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

/* A delayed job that comes due joins its own user's heap, and keeps its
 * priority there. */
static void test_delayed_to_own_user(void **state)
{
        struct qindex *q = *state;

        assert_int_equal(qindex_push(q, 1, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 2, 1, 1000, W0 + 100, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 2, -1000, W0 + 100, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 3, 7, W0 + 200, W0, M0), 0);
        start(q, 1, 1, 0);
        assert_int_equal(qindex_pop(q, W0 + 99, M0 + 99, &(struct qpick){ 0 }), 0);
        assert_true(qindex_next_due(q) == M0 + 100);
        if (q->fair) {
                /* User 1 runs a job, user 2 none: 2's low priority first. */
                expect_pick(q, W0 + 100, M0 + 100, 3, 2, -1000);
                qindex_run_begin(q, 2);
                expect_pick(q, W0 + 100, M0 + 100, 2, 1, 1000);
        } else {
                expect_pick(q, W0 + 100, M0 + 100, 2, 1, 1000);
                expect_pick(q, W0 + 100, M0 + 100, 3, 2, -1000);
        }
        assert_int_equal(qindex_pop(q, W0 + 199, M0 + 199, &(struct qpick){ 0 }), 0);
        expect_pick(q, W0 + 200, M0 + 200, 4, 3, 7);
        assert_int_equal(qindex_entries(q), 0);
}

/* Canceled entries never pop, runnable or delayed; a user holding only
 * canceled entries does not stall the others; the marks go with them. */
static void test_cancel(void **state)
{
        struct qindex *q = *state;

        for (int64_t id = 1; id <= 3; id++)
                assert_int_equal(qindex_push(q, id, 1, 10, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 2, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 5, 2, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 6, 3, 0, W0 + 100, W0, M0), 0);
        for (int64_t id = 1; id <= 3; id++) {
                assert_int_equal(qindex_cancel(q, id), 0);
                qindex_dequeue(q, 1);
        }
        assert_int_equal(qindex_cancel(q, 5), 0);
        assert_int_equal(qindex_cancel(q, 6), 0);
        assert_int_equal(qindex_cancel(q, 0), -EINVAL);
        assert_int_equal(qindex_user_queued(q, 1), 0);
        assert_int_equal(qindex_entries(q), 6);
        start(q, 4, 2, 0);
        assert_int_equal(qindex_pop(q, W0 + 100, M0 + 100, &(struct qpick){ 0 }), 0);
        assert_int_equal(qindex_entries(q), 0);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(q->canceled.n, 0);

        /* A mark forgotten before the entry is met: it pops. */
        assert_int_equal(qindex_push(q, 7, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_cancel(q, 7), 0);
        qindex_uncancel(q, 7);
        expect_pick(q, W0, M0, 7, 1, 0);
}

/* What unpop puts back pops again, identical, in either mode, including
 * when the pop had emptied its user's heap. */
static void test_unpop_users(void **state)
{
        struct qindex *q = *state;
        struct qpick a, b, bad;

        assert_int_equal(qindex_push(q, 1, 5, 3, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 2, 6, 0, W0 - 20, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 6, 9, W0 + 50, W0, M0), 0);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(qindex_pop(q, W0 + 50, M0 + 50, &a), 1);
                assert_int_equal(qindex_entries(q), 2);
                assert_int_equal(qindex_unpop(q, &a), 0);
                assert_int_equal(qindex_entries(q), 3);
                assert_int_equal(qindex_pop(q, W0 + 50, M0 + 50, &b), 1);
                assert_memory_equal(&a, &b, sizeof(a));
                assert_int_equal(qindex_unpop(q, &b), 0);
                qindex_run_begin(q, 6); /* moves user 6, not the entries */
        }
        assert_true(a.id == (q->fair ? 1 : 3));
        bad = a;
        bad.e.who |= (UINT64_C(1) << QINDEX_USER_BITS) - 1;
        assert_int_equal(qindex_unpop(q, &bad), -EINVAL);
        assert_int_equal(qindex_queued(q), 3);
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
        fail_msg("too many users");
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

static void test_counts(void **state)
{
        struct qindex *q = *state;
        int64_t seen[8][3] = { { 0 } }, running = 0;
        size_t n = 0;

        for (int64_t id = 1; id <= 3; id++)
                assert_int_equal(qindex_push(q, id, 1, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 2, 0, W0 + 10, W0, M0), 0);
        assert_int_equal(qindex_push(q, 5, 2, 0, W0 - 10, W0, M0), 0);
        assert_int_equal(qindex_queued(q), 5);
        assert_int_equal(qindex_user_queued(q, 1), 3);
        assert_int_equal(qindex_user_queued(q, 2), 2);
        /* pop alone counts nothing */
        expect_pick(q, W0, M0, 1, 1, 0);
        assert_int_equal(qindex_queued(q), 5);
        assert_int_equal(qindex_user_running(q, 1), 0);
        qindex_run_begin(q, 1);
        qindex_dequeue(q, 1);
        qindex_run_begin(q, 1);
        assert_int_equal(qindex_queued(q), 4);
        assert_int_equal(qindex_user_queued(q, 1), 2);
        assert_int_equal(qindex_user_running(q, 1), 2);
        for (int i = 0; i < 3; i++)
                qindex_run_end(q, 1);
        assert_int_equal(qindex_user_running(q, 1), 0);

        /* A uid never pushed: zero, and nothing breaks. */
        qindex_run_end(q, 77);
        qindex_dequeue(q, 77);
        assert_int_equal(qindex_user_running(q, 77), 0);
        assert_int_equal(qindex_user_queued(q, 77), 0);
        qindex_run_begin(q, 88);
        assert_int_equal(qindex_user_running(q, 88), 1);
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

        /* Dequeue below zero does not wrap, nor touch the total. */
        for (int i = 0; i < 4; i++)
                qindex_dequeue(q, 2);
        qindex_run_end(q, 88);
        assert_int_equal(qindex_user_queued(q, 2), 0);
        assert_int_equal(qindex_queued(q), 2);
        memset(seen, 0, sizeof(seen));
        qindex_foreach_user(q, count_user, seen);
        assert_int_equal(seen_user(seen, 1, &running), 2);
        assert_int_equal(seen[1][0], 0);
        assert_int_equal(qindex_entries(q), 4);
}

/* 16 bytes an entry, whatever the spread over users, and a user's heap
 * gives its memory back once emptied. */
static void test_memory(void **state)
{
        enum { N = 100000 };
        struct qindex *q = *state;
        struct qpick p;
        size_t base;

        qindex_run_begin(q, 0); /* user records exist before the baseline */
        for (uint32_t u = 1; u < 10; u++)
                qindex_run_begin(q, u);
        base = qindex_bytes(q);
        for (int64_t id = 1; id <= N; id++)
                assert_int_equal(qindex_push(q, id, (uint32_t)(id % 10), 0, W0 - (id & 1), W0, M0), 0);
        assert_true(qindex_bytes(q) - base <= N * sizeof(struct qentry) * 16 / 10 + 10 * 64);
        while (qindex_pop(q, W0, M0, &p))
                qindex_dequeue(q, p.uid);
        assert_int_equal(qindex_queued(q), 0);
        if (q->fair)
                assert_true(qindex_bytes(q) == base);
}

/* Ids up to 2^44 - 1, priorities -1000..1000, any uid. */
static void test_limits(void **state)
{
        struct qindex *q = *state;
        const int64_t max = (INT64_C(1) << 44) - 1;

        assert_int_equal(qindex_push(q, max + 1, 1, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(qindex_push(q, -1, 1, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(qindex_append(q, max + 1, 1, 0, W0, W0, M0), -EOVERFLOW);
        assert_int_equal(qindex_push(q, 1, 1, 1001, W0, W0, M0), -EINVAL);
        assert_int_equal(qindex_push(q, 1, 1, -1001, W0, W0, M0), -EINVAL);
        assert_int_equal(qindex_entries(q), 0);
        assert_int_equal(qindex_queued(q), 0);
        assert_int_equal(qindex_push(q, max, UINT32_MAX, -1000, W0, W0, M0), 0);
        assert_int_equal(qindex_push(q, max - 1, 0, 1000, W0 + 5, W0, M0), 0);
        expect_pick(q, W0, M0, max, UINT32_MAX, -1000);
        expect_pick(q, W0 + 5, M0 + 5, max - 1, 0, 1000);
        assert_int_equal(qindex_cancel(q, max), 0);
        qindex_uncancel(q, max);
}

/* 2^20 users since start, then -ENOSPC for a new one only. */
static void test_too_many_users(void **state)
{
        struct qindex *q = *state;

        for (uint32_t u = 0; u < 1u << 20; u++)
                qindex_run_begin(q, u * 3);
        assert_int_equal(qindex_push(q, 1, 1, 0, W0, W0, M0), -ENOSPC);
        assert_int_equal(qindex_push(q, 1, 3, 0, W0, W0, M0), 0);
        qindex_run_begin(q, 1); /* not counted, not fatal */
        assert_int_equal(qindex_user_running(q, 1), 0);
        assert_int_equal(qindex_user_running(q, 3), 1);
        expect_pick(q, W0, M0, 1, 3, 0);
}

/* qindex_append + qindex_heapify (the start-up load) pop in the same
 * order as pushes would, users and starts included. */
static void test_bulk_load(void **state)
{
        enum { N = 5000 };
        struct qindex *a = *state, b;
        struct qpick pa, pb;
        uint32_t x = 777;
        size_t n = 0;

        assert_int_equal(qindex_init(&b, a->fair), 0);
        for (int64_t id = 1; id <= N; id++) {
                int prio;
                int64_t run_at;
                uint32_t uid;
                x = x * 1103515245u + 12345u;
                prio = (int)((x >> 8) % 7) - 3;
                run_at = W0 - 500 + (int64_t)((x >> 4) % 1000); /* half delayed */
                uid = (x >> 20) % 13;
                assert_int_equal(qindex_push(a, id, uid, prio, run_at, W0, M0), 0);
                assert_int_equal(qindex_append(&b, id, uid, prio, run_at, W0, M0), 0);
        }
        qindex_heapify(&b);
        assert_int_equal(qindex_next_due(a), qindex_next_due(&b));
        assert_int_equal(qindex_entries(a), qindex_entries(&b));
        while (qindex_pop(a, W0 + 1000, M0 + 1000, &pa) == 1) {
                assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &pb), 1);
                assert_memory_equal(&pa, &pb, sizeof(pa));
                qindex_run_begin(a, pa.uid);
                qindex_run_begin(&b, pb.uid);
                if (n % 3 == 0) {
                        qindex_run_end(a, pa.uid);
                        qindex_run_end(&b, pb.uid);
                }
                n++;
        }
        assert_int_equal(n, N);
        assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &pb), 0);
        qindex_done(&b);
}

/* The reference model: every job in a plain array, every choice by a
 * scan, the rules written out once more. */
enum { MJOBS = 4096, MUSERS = 10 };
enum mstate { M_DELAYED, M_RUNNABLE, M_RUNNING, M_GONE };

struct model {
        bool fair;
        struct { int64_t id; uint32_t uid; int prio; int64_t run_at, due; enum mstate st; } job[MJOBS];
        size_t njobs;
        struct { uint32_t uid, running; uint64_t served; int64_t queued; } user[MUSERS];
        uint64_t seq;
};

static int muser(struct model *m, uint32_t uid)
{
        for (int i = 0; i < MUSERS; i++)
                if (m->user[i].uid == uid)
                        return i;
        fail_msg("no user %u", uid);
        return -1;
}

static bool mjob_before(const struct model *m, size_t a, size_t b)
{
        if (m->job[a].prio != m->job[b].prio)
                return m->job[a].prio > m->job[b].prio;
        if (m->job[a].run_at != m->job[b].run_at)
                return m->job[a].run_at < m->job[b].run_at;
        return m->job[a].id < m->job[b].id;
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
                        if (m->job[i].st == M_RUNNABLE && (who < 0 || muser_before(m, u, who)))
                                who = u;
                }
        for (size_t i = 0; i < m->njobs; i++)
                if (m->job[i].st == M_RUNNABLE && (who < 0 || m->job[i].uid == m->user[who].uid) &&
                    (best < 0 || mjob_before(m, i, (size_t)best)))
                        best = (ssize_t)i;
        return best;
}

static size_t pick_job(struct model *m, uint32_t *x, enum mstate st)
{
        size_t n = 0, k;

        for (size_t i = 0; i < m->njobs; i++)
                n += m->job[i].st == st;
        if (!n)
                return SIZE_MAX;
        *x = *x * 1103515245u + 12345u;
        k = (*x >> 8) % n;
        for (size_t i = 0; i < m->njobs; i++)
                if (m->job[i].st == st && k-- == 0)
                        return i;
        return SIZE_MAX;
}

static void test_model(void **state)
{
        static const uint32_t uids[MUSERS] = { 0, 5, 17, 1000, 1001, 4242, 65534, 99999, 123456, UINT32_MAX };
        static struct model m;
        struct qindex *q = *state;
        int64_t wall = W0, mono = M0, next_id = 1;
        uint32_t x = 4242;
        size_t pops = 0;

        memset(&m, 0, sizeof(m));
        m.fair = q->fair;
        for (int i = 0; i < MUSERS; i++)
                m.user[i].uid = uids[i];
        for (int op = 0; op < 6000; op++) {
                unsigned r;
                size_t j;
                x = x * 1103515245u + 12345u;
                r = (x >> 8) % 100;
                if (r < 35 && m.njobs < MJOBS) {
                        uint32_t y = x * 69069u + 1u;
                        int u = (int)((y >> 8) % MUSERS);
                        int prio = (int)((y >> 16) % 5) - 2;
                        int64_t run_at = wall - 100 + (int64_t)((y >> 20) % 200);
                        j = m.njobs++;
                        m.job[j].id = next_id;
                        next_id += 1 + (int64_t)((y >> 4) % 3);
                        m.job[j].uid = uids[u];
                        m.job[j].prio = prio;
                        m.job[j].run_at = run_at;
                        m.job[j].due = mono + (run_at - wall);
                        m.job[j].st = run_at <= wall ? M_RUNNABLE : M_DELAYED;
                        m.user[u].queued++;
                        assert_int_equal(qindex_push(q, m.job[j].id, uids[u], prio, run_at, wall, mono), 0);
                } else if (r < 65) {
                        ssize_t want = mpop(&m, wall, mono);
                        struct qpick p;
                        int got = qindex_pop(q, wall, mono, &p);
                        if (want < 0) {
                                if (got)
                                        fail_msg("op %d: popped %lld, want none", op, (long long)p.id);
                                continue;
                        }
                        if (!got || p.id != m.job[want].id || p.uid != m.job[want].uid ||
                            p.prio != m.job[want].prio)
                                fail_msg("op %d: popped %lld (uid %u), want %lld (uid %u)", op,
                                         got ? (long long)p.id : -1LL, got ? p.uid : 0,
                                         (long long)m.job[want].id, m.job[want].uid);
                        pops++;
                        if ((x >> 20) % 4 == 0) {
                                assert_int_equal(qindex_unpop(q, &p), 0);
                        } else {
                                int u = muser(&m, p.uid);
                                m.job[want].st = M_RUNNING;
                                m.user[u].running++;
                                m.user[u].served = ++m.seq;
                                m.user[u].queued--;
                                qindex_run_begin(q, p.uid);
                                qindex_dequeue(q, p.uid);
                        }
                } else if (r < 80) {
                        j = pick_job(&m, &x, M_RUNNING);
                        if (j == SIZE_MAX) {
                                qindex_run_end(q, uids[x % MUSERS]); /* clamps at 0 */
                                continue;
                        }
                        m.job[j].st = M_GONE;
                        m.user[muser(&m, m.job[j].uid)].running--;
                        qindex_run_end(q, m.job[j].uid);
                } else if (r < 90) {
                        j = pick_job(&m, &x, (x >> 24) % 2 ? M_RUNNABLE : M_DELAYED);
                        if (j == SIZE_MAX)
                                continue;
                        m.job[j].st = M_GONE;
                        m.user[muser(&m, m.job[j].uid)].queued--;
                        assert_int_equal(qindex_cancel(q, m.job[j].id), 0);
                        qindex_dequeue(q, m.job[j].uid);
                } else {
                        int64_t step = (int64_t)((x >> 12) % 60);
                        mono += step;
                        wall += step;
                        if ((x >> 20) % 10 == 0)
                                wall += (x >> 24) % 2 ? DAY : -DAY;
                }
                int64_t total = 0;
                for (int i = 0; i < MUSERS; i++) {
                        total += m.user[i].queued;
                        assert_int_equal(qindex_user_queued(q, uids[i]), m.user[i].queued);
                        assert_int_equal(qindex_user_running(q, uids[i]), m.user[i].running);
                }
                assert_int_equal(qindex_queued(q), total);
        }
        assert_true(pops > 1000);
}

#define MODE(f, m) { .name = #f " (" #m ")", .test_func = f, .setup_func = setup, \
                     .teardown_func = teardown, .initial_state = &m }
#define FAIR_ONLY(f) MODE(f, FAIR)
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
                BOTH(test_cancel),
                BOTH(test_unpop_users),
                BOTH(test_counts),
                BOTH(test_memory),
                BOTH(test_limits),
                FAIR_ONLY(test_too_many_users),
                BOTH(test_bulk_load),
                BOTH(test_model),
        };

        return cmocka_run_group_tests_name("qindex", tests, NULL, NULL);
}
