/* Unit tests of daemon/qindex.c, the dispatch index.
 *
 * Pop order is priority DESC, run_at ASC, id ASC (SPEC "Dispatch
 * order"), at the priority and run_at limits and over 20000 jobs
 * against a reference sort; delayed jobs come out exactly when the
 * monotonic time reaches their due time, keep their priority and id;
 * qindex_unpop puts an entry back in front; qindex_next_due and
 * qindex_size; a wall-clock jump after push neither starts a delayed
 * job early nor holds it back. All times are passed in: no clocks.
 *
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qindex.h"
#include "ringq/protocol.h"

#define W0 INT64_C(1700000000000) /* wall ms at "push" time */
#define M0 INT64_C(5000000)       /* monotonic ms at "push" time */
#define DAY INT64_C(86400000)

static int setup(void **state)
{
        struct qindex *q = calloc(1, sizeof(*q));

        assert_non_null(q);
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
        struct qentry e;

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
        struct qentry e = { 0 };

        assert_int_equal(qindex_pop(q, W0, M0, &e), 0);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_size(q), 0);
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
                assert_int_equal(qindex_push(q, jobs[i][0], (int)jobs[i][1], jobs[i][2], W0, M0), 0);
        assert_int_equal(qindex_size(q), 13);
        assert_true(qindex_bytes(q) >= 13 * sizeof(struct qentry));
        assert_true(qindex_next_due(q) == INT64_MAX);
        /* 10 and 13 tie on priority and run_at: the lower id first. */
        expect_pops(q, W0, M0, (const int64_t[]){ 9, 11, 4, 7, 2, 3, 8, 1, 5, 6, 12, 10, 13 }, 13);
        assert_int_equal(qindex_size(q), 0);
}

static void test_run_at_limits(void **state)
{
        struct qindex *q = *state;
        const int64_t far = 253402300799999LL; /* the largest run_at a client may send */

        assert_int_equal(qindex_push(q, 1, 0, far, far, M0), 0);
        assert_int_equal(qindex_push(q, 2, 0, far - 1, far, M0), 0);
        assert_int_equal(qindex_push(q, 3, 0, 0, far, M0), 0);
        assert_int_equal(qindex_push(q, 4, 1, far, far, M0), 0);
        assert_int_equal(qindex_push(q, 5, -1, 0, far, M0), 0);
        expect_pops(q, far, M0, (const int64_t[]){ 4, 3, 2, 1, 5 }, 5);
}

static void test_delayed(void **state)
{
        struct qindex *q = *state;
        struct qentry e;

        /* Due in 1000 ms, and in 1 ms; run_at == now is runnable at once. */
        assert_int_equal(qindex_push(q, 10, 0, W0 + 1000, W0, M0), 0);
        assert_int_equal(qindex_push(q, 11, 0, W0 + 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 12, -1000, W0, W0, M0), 0);
        assert_int_equal(qindex_size(q), 3);
        assert_true(qindex_next_due(q) == M0 + 1);

        expect_pops(q, W0, M0, (const int64_t[]){ 12 }, 1);
        expect_pops(q, W0 + 1, M0 + 1, (const int64_t[]){ 11 }, 1);
        assert_true(qindex_next_due(q) == M0 + 1000);
        assert_int_equal(qindex_pop(q, W0 + 999, M0 + 999, &e), 0);
        assert_int_equal(qindex_size(q), 1);
        expect_pops(q, W0 + 1000, M0 + 1000, (const int64_t[]){ 10 }, 1);
        assert_true(qindex_next_due(q) == INT64_MAX);
        assert_int_equal(qindex_size(q), 0);
}

static void test_delayed_keep_prio_and_id(void **state)
{
        struct qindex *q = *state;
        const int64_t big = INT64_C(1) << 40;

        /* Due at different times, all due by M0 + 300. */
        assert_int_equal(qindex_push(q, big + 1, -1000, W0 + 100, W0, M0), 0);
        assert_int_equal(qindex_push(q, big + 2, 1000, W0 + 300, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 0, W0 + 200, W0, M0), 0);
        assert_int_equal(qindex_push(q, 5, 0, W0 - 50, W0, M0), 0); /* runnable */
        expect_pops(q, W0 + 300, M0 + 300, (const int64_t[]){ big + 2, 5, 3, 4, big + 1 }, 5);
}

static void test_delay_cap(void **state)
{
        struct qindex *q = *state;
        struct qentry e;

        /* A run_at further ahead than RINGQ_DURATION_MAX_MS waits that long. */
        assert_int_equal(qindex_push(q, 1, 0, 253402300799999LL, 0, M0), 0);
        assert_true(qindex_next_due(q) == M0 + RINGQ_DURATION_MAX_MS);
        assert_int_equal(qindex_pop(q, RINGQ_DURATION_MAX_MS - 1, M0 + RINGQ_DURATION_MAX_MS - 1, &e), 0);
        assert_int_equal(qindex_pop(q, RINGQ_DURATION_MAX_MS, M0 + RINGQ_DURATION_MAX_MS, &e), 1);
        assert_true(e.id == 1);
}

static void test_unpop(void **state)
{
        struct qindex *q = *state;
        struct qentry a, b;

        assert_int_equal(qindex_push(q, 1, 0, W0 - 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 2, 7, W0 - 1, W0, M0), 0);
        assert_int_equal(qindex_push(q, 3, 0, W0 + 500, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0, M0, &a), 1);
        assert_true(a.id == 2);
        assert_int_equal(qindex_size(q), 2);
        assert_int_equal(qindex_unpop(q, &a), 0);
        assert_int_equal(qindex_size(q), 3);
        assert_int_equal(qindex_pop(q, W0, M0, &b), 1);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_int_equal(qindex_unpop(q, &b), 0);

        /* A formerly delayed entry goes back in its place too. */
        expect_pops(q, W0 + 500, M0 + 500, (const int64_t[]){ 2, 1, 3 }, 3);
        assert_int_equal(qindex_push(q, 3, 0, W0 + 500, W0, M0), 0);
        assert_int_equal(qindex_push(q, 4, 0, W0 + 600, W0, M0), 0);
        assert_int_equal(qindex_pop(q, W0 + 600, M0 + 600, &a), 1);
        assert_true(a.id == 3);
        assert_int_equal(qindex_unpop(q, &a), 0);
        expect_pops(q, W0 + 600, M0 + 600, (const int64_t[]){ 3, 4 }, 2);
}

static void test_wall_jump_forward(void **state)
{
        struct qindex *q = *state;
        struct qentry e;

        assert_int_equal(qindex_push(q, 1, 0, W0 + 1000, W0, M0), 0);
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
        struct qentry e;

        assert_int_equal(qindex_push(q, 1, 0, W0 + 1000, W0, M0), 0);
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

        assert_int_equal(qindex_push(q, 1, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(qindex_push(q, 2, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 3, 0, W0 + 500, W0, M0), 0);  /* delayed */
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

        assert_int_equal(qindex_push(q, 1, 0, W0 - 100, W0, M0), 0);  /* runnable */
        assert_int_equal(qindex_push(q, 2, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 3, 0, W0 + 500, W0, M0), 0);  /* delayed */
        expect_pops(q, w, m, (const int64_t[]){ 3, 2, 1 }, 3);
}

/* Ahead a day: job 2 came due 1 s ago (wall W0+DAY+1000), job 4 was
 * pushed after the jump with run_at W0+DAY, so 4 comes first. */
static void test_jump_forward_orders_by_due_time(void **state)
{
        struct qindex *q = *state;
        int64_t w = W0 + DAY + 2000, m = M0 + 2000;

        assert_int_equal(qindex_push(q, 2, 0, W0 + 1000, W0, M0), 0); /* delayed */
        assert_int_equal(qindex_push(q, 4, 0, W0 + DAY, w, m), 0);     /* runnable */
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
        struct qentry e;
        size_t popped = 0;

        for (size_t i = 0; i < N; i++) {
                int64_t id = (int64_t)((i * 7919) % N) + 1; /* unique, shuffled */
                x = x * 1103515245u + 12345u;
                prio[id] = (int)((x >> 8) % 21) - 10;
                run_at[id] = W0 - 1000 + (int64_t)((x >> 4) % 2000);
                assert_int_equal(qindex_push(q, id, prio[id], run_at[id], W0, M0), 0);
        }
        assert_int_equal(qindex_size(q), N);
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
        assert_int_equal(qindex_size(q), 0);
        qindex_done(q);
        assert_null(q->run);
        assert_null(q->delay);
        assert_int_equal(qindex_bytes(q), 0);
}

/* qindex_append + qindex_heapify (the start-up load) pop in the same
 * order as pushes would. */
static void test_bulk_load(void **state)
{
        enum { N = 5000 };
        struct qindex *a = *state, b = { 0 };
        struct qentry ea, eb;
        uint32_t x = 777;
        size_t n = 0;

        for (int64_t id = 1; id <= N; id++) {
                int prio;
                int64_t run_at;
                x = x * 1103515245u + 12345u;
                prio = (int)((x >> 8) % 7) - 3;
                run_at = W0 - 500 + (int64_t)((x >> 4) % 1000); /* half delayed */
                assert_int_equal(qindex_push(a, id, prio, run_at, W0, M0), 0);
                assert_int_equal(qindex_append(&b, id, prio, run_at, W0, M0), 0);
        }
        qindex_heapify(&b);
        assert_int_equal(qindex_next_due(a), qindex_next_due(&b));
        while (qindex_pop(a, W0 + 1000, M0 + 1000, &ea) == 1) {
                assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &eb), 1);
                assert_int_equal(ea.id, eb.id);
                n++;
        }
        assert_int_equal(n, N);
        assert_int_equal(qindex_pop(&b, W0 + 1000, M0 + 1000, &eb), 0);
        qindex_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_at_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delayed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delayed_keep_prio_and_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delay_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wall_jump_forward, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wall_jump_backward, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_jump_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jump_forward_keeps_runnable_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jump_back_orders_by_due_time, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jump_forward_orders_by_due_time, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bulk_load, setup, teardown),
        };

        return cmocka_run_group_tests_name("qindex", tests, NULL, NULL);
}
