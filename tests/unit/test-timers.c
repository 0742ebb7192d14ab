/* Unit tests of daemon/timers.c, the monotonic deadline heap.
 *
 * A zeroed or freshly initialised timer is disarmed and disarming it is
 * a no-op; timers_next; timers_run fires exactly the due timers (due <=
 * now) in due order and returns the count; re-arming an armed timer
 * moves it (earlier and later); disarming from the middle keeps the heap
 * valid (checked after every step on 500 timers); a callback may re-arm
 * itself or disarm another due timer; timers_done leaves timers idle.
 * Time is passed in: no clocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "timers.h"
#include "util.h"

struct item {
        struct timer t;
        int name;
        int64_t rearm_to;       /* > 0: the callback re-arms to this */
        struct item *victim;    /* the callback disarms this one */
};

static struct timers *cur;      /* the heap the callbacks act on */
static int fired[1024];
static size_t nfired;

static void on_fire(struct timer *t)
{
        struct item *it = container_of(t, struct item, t);

        assert_false(timer_armed(t)); /* disarmed before its callback */
        assert_true(nfired < ELEMENTSOF(fired));
        fired[nfired++] = it->name;
        if (it->victim)
                timers_disarm(cur, &it->victim->t);
        if (it->rearm_to > 0) {
                int64_t to = it->rearm_to;
                it->rearm_to = 0;
                assert_int_equal(timers_arm(cur, t, to), 0);
        }
}

static int setup(void **state)
{
        static struct timers ts;

        memset(&ts, 0, sizeof(ts));
        cur = &ts;
        nfired = 0;
        *state = &ts;
        return 0;
}

static int teardown(void **state)
{
        timers_done(*state);
        return 0;
}

/* Every slot knows its index and no child is due before its parent. */
static void check_heap(const struct timers *ts)
{
        for (size_t i = 0; i < ts->n; i++) {
                assert_true(ts->heap[i]->idx == i + 1);
                if (i)
                        assert_true(ts->heap[(i - 1) / 2]->due_ms <= ts->heap[i]->due_ms);
        }
}

static void expect_fired(const int *names, size_t n)
{
        if (nfired != n)
                fail_msg("fired %zu timers, want %zu", nfired, n);
        for (size_t i = 0; i < n; i++)
                if (fired[i] != names[i])
                        fail_msg("fire %zu: timer %d, want %d", i, fired[i], names[i]);
        nfired = 0;
}

static void test_idle(void **state)
{
        struct timers *ts = *state;
        struct item a;

        memset(&a, 0, sizeof(a));
        assert_false(timer_armed(&a.t));
        timers_disarm(ts, &a.t);       /* zeroed: a no-op */
        timer_init(&a.t, on_fire);
        assert_false(timer_armed(&a.t));
        timers_disarm(ts, &a.t);
        assert_true(timers_next(ts) == INT64_MAX);
        assert_int_equal(timers_run(ts, INT64_MAX), 0);
        assert_int_equal(ts->n, 0);
}

static void test_fire_in_order(void **state)
{
        struct timers *ts = *state;
        static const int64_t due[] = { 50, 10, 40, -5, 30, 20, 1000 };
        struct item it[ELEMENTSOF(due)];

        for (size_t i = 0; i < ELEMENTSOF(due); i++) {
                memset(&it[i], 0, sizeof(it[i]));
                timer_init(&it[i].t, on_fire);
                it[i].name = (int)i;
                assert_int_equal(timers_arm(ts, &it[i].t, due[i]), 0);
                assert_true(timer_armed(&it[i].t));
                check_heap(ts);
        }
        assert_true(timers_next(ts) == -5);
        assert_int_equal(timers_run(ts, -6), 0);
        assert_int_equal(timers_run(ts, 9), 1);
        expect_fired((const int[]){ 3 }, 1);
        assert_true(timers_next(ts) == 10);
        /* Due exactly at now fires; one ms later does not. */
        assert_int_equal(timers_run(ts, 40), 4);
        expect_fired((const int[]){ 1, 5, 4, 2 }, 4);
        assert_false(timer_armed(&it[2].t));
        assert_true(timer_armed(&it[0].t));
        assert_int_equal(timers_run(ts, 999), 1);
        expect_fired((const int[]){ 0 }, 1);
        assert_true(timers_next(ts) == 1000);
        assert_int_equal(timers_run(ts, INT64_MAX), 1);
        expect_fired((const int[]){ 6 }, 1);
        assert_true(timers_next(ts) == INT64_MAX);
}

static void test_rearm_moves(void **state)
{
        struct timers *ts = *state;
        struct item it[4];

        for (int i = 0; i < 4; i++) {
                memset(&it[i], 0, sizeof(it[i]));
                timer_init(&it[i].t, on_fire);
                it[i].name = i;
                assert_int_equal(timers_arm(ts, &it[i].t, 100 + 10 * i), 0);
        }
        /* Later, earlier, and to the same time; the count does not grow. */
        assert_int_equal(timers_arm(ts, &it[0].t, 500), 0);
        check_heap(ts);
        assert_int_equal(timers_arm(ts, &it[3].t, 1), 0);
        check_heap(ts);
        assert_int_equal(timers_arm(ts, &it[1].t, 110), 0);
        check_heap(ts);
        assert_int_equal(ts->n, 4);
        assert_true(timers_next(ts) == 1);
        assert_int_equal(timers_run(ts, 499), 3);
        expect_fired((const int[]){ 3, 1, 2 }, 3);
        assert_int_equal(timers_run(ts, 500), 1);
        expect_fired((const int[]){ 0 }, 1);
}

static void test_disarm_middle(void **state)
{
        enum { N = 500 };
        struct timers *ts = *state;
        static struct item it[N];
        uint32_t x = 7;
        size_t left = N;
        int64_t last = INT64_MIN;

        for (int i = 0; i < N; i++) {
                memset(&it[i], 0, sizeof(it[i]));
                timer_init(&it[i].t, on_fire);
                it[i].name = i;
                x = x * 1664525u + 1013904223u;
                assert_int_equal(timers_arm(ts, &it[i].t, (int64_t)(x % 1000)), 0);
        }
        check_heap(ts);
        for (int i = 0; i < N; i += 3) {
                timers_disarm(ts, &it[i].t);
                assert_false(timer_armed(&it[i].t));
                check_heap(ts);
                left--;
        }
        timers_disarm(ts, &it[0].t); /* twice: still a no-op */
        assert_int_equal(ts->n, left);
        assert_int_equal(timers_run(ts, 1000), left);
        assert_int_equal(nfired, left);
        for (size_t i = 0; i < nfired; i++) {
                assert_true(fired[i] % 3 != 0);
                assert_true(it[fired[i]].t.due_ms >= last);
                last = it[fired[i]].t.due_ms;
        }
        assert_int_equal(ts->n, 0);
}

static void test_callback_rearms(void **state)
{
        struct timers *ts = *state;
        struct item a, b;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        timer_init(&a.t, on_fire);
        timer_init(&b.t, on_fire);
        a.name = 1;
        b.name = 2;
        a.rearm_to = 300;               /* later than now: fires once now */
        assert_int_equal(timers_arm(ts, &a.t, 100), 0);
        assert_int_equal(timers_arm(ts, &b.t, 200), 0);
        assert_int_equal(timers_run(ts, 250), 2);
        expect_fired((const int[]){ 1, 2 }, 2);
        assert_true(timer_armed(&a.t));
        assert_true(a.t.due_ms == 300);
        assert_true(timers_next(ts) == 300);

        /* A re-arm to a time already due fires again in the same run. */
        a.rearm_to = 301;
        b.rearm_to = 0;
        assert_int_equal(timers_arm(ts, &b.t, 305), 0);
        assert_int_equal(timers_run(ts, 310), 3);
        expect_fired((const int[]){ 1, 1, 2 }, 3);
        assert_int_equal(ts->n, 0);
}

static void test_callback_disarms_other(void **state)
{
        struct timers *ts = *state;
        struct item a, b, c;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        memset(&c, 0, sizeof(c));
        timer_init(&a.t, on_fire);
        timer_init(&b.t, on_fire);
        timer_init(&c.t, on_fire);
        a.name = 1;
        b.name = 2;
        c.name = 3;
        a.victim = &b;
        assert_int_equal(timers_arm(ts, &a.t, 10), 0);
        assert_int_equal(timers_arm(ts, &b.t, 20), 0);
        assert_int_equal(timers_arm(ts, &c.t, 30), 0);
        assert_int_equal(timers_run(ts, 100), 2);
        expect_fired((const int[]){ 1, 3 }, 2);
        assert_false(timer_armed(&b.t));
}

static void test_done(void **state)
{
        struct timers *ts = *state;
        struct item a, b;

        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        timer_init(&a.t, on_fire);
        timer_init(&b.t, on_fire);
        assert_int_equal(timers_arm(ts, &a.t, 1), 0);
        assert_int_equal(timers_arm(ts, &b.t, 2), 0);
        timers_done(ts);
        assert_false(timer_armed(&a.t));
        assert_false(timer_armed(&b.t));
        assert_null(ts->heap);
        assert_int_equal(ts->n, 0);
        assert_true(timers_next(ts) == INT64_MAX);
        /* Usable again after done. */
        assert_int_equal(timers_arm(ts, &a.t, 5), 0);
        assert_int_equal(timers_run(ts, 5), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fire_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rearm_moves, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disarm_middle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_rearms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_disarms_other, setup, teardown),
                cmocka_unit_test_setup_teardown(test_done, setup, teardown),
        };

        return cmocka_run_group_tests_name("timers", tests, NULL, NULL);
}
