/* Unit tests of daemon/stats.c.
 *
 * latency_add / latency_summarize: no samples, one, two, three, 100 and
 * exactly 1024 samples (nearest-rank p50/p99/max, input order does not
 * matter), the window keeping only the last 1024 of 2000 samples,
 * saturation of negative and > UINT32_MAX microsecond values; the
 * counter name table; the completion rate's decay with explicit times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "stats.h"

static void expect_summary(const struct latency *l, unsigned n, double p50, double p99, double max)
{
        struct latency_summary s;

        latency_summarize(l, &s);
        if (s.samples != n || fabs(s.p50_ms - p50) > 1e-9 || fabs(s.p99_ms - p99) > 1e-9 ||
            fabs(s.max_ms - max) > 1e-9)
                fail_msg("got n=%u p50=%.3f p99=%.3f max=%.3f; want n=%u p50=%.3f p99=%.3f max=%.3f",
                         s.samples, s.p50_ms, s.p99_ms, s.max_ms, n, p50, p99, max);
}

static void test_empty(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        expect_summary(&l, 0, 0, 0, 0);
}

static void test_small(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        latency_add(&l, 1500);
        expect_summary(&l, 1, 1.5, 1.5, 1.5);
        latency_add(&l, 500);
        /* n=2: p50 is rank 1, p99 rank 2. */
        expect_summary(&l, 2, 0.5, 1.5, 1.5);
        latency_add(&l, 1000);
        /* n=3: p50 rank 2, p99 rank 3. */
        expect_summary(&l, 3, 1.0, 1.5, 1.5);
}

static void test_hundred(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        /* 1..100 ms, in a scrambled order. */
        for (unsigned i = 0; i < 100; i++)
                latency_add(&l, (int64_t)((i * 37) % 100 + 1) * 1000);
        expect_summary(&l, 100, 50, 99, 100);
        latency_add(&l, 101000);
        /* n=101: p50 rank 51, p99 rank 100. */
        expect_summary(&l, 101, 51, 100, 101);
}

static void test_full_window(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        for (unsigned i = 0; i < LATENCY_WINDOW; i++)
                latency_add(&l, (int64_t)((i * 389) % LATENCY_WINDOW + 1) * 1000);
        /* ranks ceil(512) = 512 and ceil(1013.76) = 1014 */
        expect_summary(&l, 1024, 512, 1014, 1024);

        /* The first of exactly 1024 samples still counts. */
        memset(&l, 0, sizeof(l));
        latency_add(&l, 2000000);
        for (unsigned i = 1; i < LATENCY_WINDOW; i++)
                latency_add(&l, 1000);
        expect_summary(&l, 1024, 1, 1, 2000);
}

static void test_window_slides(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        latency_add(&l, 999999000); /* an old outlier, pushed out below */
        for (unsigned i = 1; i <= 2000; i++)
                latency_add(&l, (int64_t)i * 1000);
        /* The window holds 977..2000: rank 512 is 1488, rank 1014 is 1990. */
        expect_summary(&l, 1024, 1488, 1990, 2000);
        assert_int_equal(l.n, LATENCY_WINDOW);
        for (unsigned i = 0; i < LATENCY_WINDOW; i++)
                latency_add(&l, 7000);
        expect_summary(&l, 1024, 7, 7, 7);
        /* A full window of slow samples is entirely replaced by fast ones. */
        for (unsigned i = 0; i < LATENCY_WINDOW; i++)
                latency_add(&l, 5000000);
        for (unsigned i = 0; i < LATENCY_WINDOW; i++)
                latency_add(&l, 1000);
        expect_summary(&l, 1024, 1, 1, 1);
}

static void test_saturation(void **state)
{
        struct latency l;

        memset(&l, 0, sizeof(l));
        latency_add(&l, -5);
        latency_add(&l, INT64_MIN);
        expect_summary(&l, 2, 0, 0, 0);
        latency_add(&l, INT64_MAX);
        latency_add(&l, (int64_t)UINT32_MAX + 1);
        expect_summary(&l, 4, 0, 4294967.295, 4294967.295);
}

static void test_counter_names(void **state)
{
        static const char *const spec[] = { "accepted", "rejected_full", "rejected_other", "started",
                                            "succeeded", "failed", "timed_out", "canceled", "retried" };

        for (int i = 0; i < (int)(sizeof(spec) / sizeof(spec[0])); i++)
                assert_string_equal(counter_names[i], spec[i]);
        for (int i = 0; i < _C_MAX; i++) {
                assert_non_null(counter_names[i]);
                for (int j = 0; j < i; j++)
                        assert_true(strcmp(counter_names[i], counter_names[j]) != 0);
        }
        assert_string_equal(counter_names[C_PRUNED], "pruned");
}

static void test_finish_rate(void **state)
{
        struct stats s;

        memset(&s, 0, sizeof(s));
        assert_true(stats_rate(&s, 1000) == 0.0);
        for (int i = 0; i < 10; i++)
                stats_finished(&s, 1000);
        assert_true(fabs(stats_rate(&s, 1000) - 1.0) < 1e-9);
        /* One time constant (10 s) later: e^-1. */
        assert_true(fabs(stats_rate(&s, 11000) - exp(-1.0)) < 1e-9);
        /* Time going backwards does not raise it. */
        assert_true(fabs(stats_rate(&s, 5000) - exp(-1.0)) < 1e-9);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_small),
                cmocka_unit_test(test_hundred),
                cmocka_unit_test(test_full_window),
                cmocka_unit_test(test_window_slides),
                cmocka_unit_test(test_saturation),
                cmocka_unit_test(test_counter_names),
                cmocka_unit_test(test_finish_rate),
        };

        return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
