/* Unit tests of daemon/idmap.c, the job id -> pointer map.
 *
 * Empty map; put/get/replace/remove and their return values; ids at the
 * ends of the range (1, INT64_MAX, ids differing only in high bits);
 * growth through thousands of keys with every key checked after
 * removing half (probe chains crossing deleted slots); deleted slots
 * reused so churn with a few live keys keeps the table small; the table
 * freed once a large map is emptied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "idmap.h"

#define V(x) ((void *)(uintptr_t)(x)) /* a distinct non-NULL value per id */

static int setup(void **state)
{
        struct idmap *m = calloc(1, sizeof(*m));

        assert_non_null(m);
        *state = m;
        return 0;
}

static int teardown(void **state)
{
        idmap_done(*state);
        free(*state);
        return 0;
}

static void test_empty(void **state)
{
        struct idmap *m = *state;

        assert_null(idmap_get(m, 1));
        assert_null(idmap_remove(m, 1));
        assert_null(idmap_get(m, INT64_MAX));
        assert_int_equal(m->n, 0);
        idmap_done(m);
        idmap_done(m); /* twice is harmless */
}

static void test_put_get_remove(void **state)
{
        struct idmap *m = *state;
        int a, b;

        assert_int_equal(idmap_put(m, 5, &a), 0);
        assert_ptr_equal(idmap_get(m, 5), &a);
        assert_null(idmap_get(m, 6));
        assert_int_equal(m->n, 1);
        /* Replace keeps one entry. */
        assert_int_equal(idmap_put(m, 5, &b), 0);
        assert_ptr_equal(idmap_get(m, 5), &b);
        assert_int_equal(m->n, 1);
        assert_ptr_equal(idmap_remove(m, 5), &b);
        assert_null(idmap_get(m, 5));
        assert_null(idmap_remove(m, 5));
        assert_int_equal(m->n, 0);
        /* Back after removal. */
        assert_int_equal(idmap_put(m, 5, &a), 0);
        assert_ptr_equal(idmap_get(m, 5), &a);
        /* A NULL value is stored, but reads as absent. */
        assert_int_equal(idmap_put(m, 7, NULL), 0);
        assert_null(idmap_get(m, 7));
        assert_int_equal(m->n, 2);
}

static void test_extreme_ids(void **state)
{
        struct idmap *m = *state;
        const int64_t ids[] = { 1, 2, INT64_MAX, INT64_MAX - 1, INT64_C(1) << 62, INT64_C(1) << 32,
                                (INT64_C(1) << 32) + 1, INT64_C(1) << 17, (INT64_C(1) << 17) + 1 };
        const size_t n = sizeof(ids) / sizeof(ids[0]);

        for (size_t i = 0; i < n; i++)
                assert_int_equal(idmap_put(m, ids[i], V(i + 1)), 0);
        assert_int_equal(m->n, n);
        for (size_t i = 0; i < n; i++)
                assert_ptr_equal(idmap_get(m, ids[i]), V(i + 1));
        assert_null(idmap_get(m, 3));
        assert_null(idmap_get(m, INT64_MAX - 2));
        assert_ptr_equal(idmap_remove(m, INT64_MAX), V(3));
        assert_null(idmap_get(m, INT64_MAX));
        assert_ptr_equal(idmap_get(m, INT64_MAX - 1), V(4));
}

/* Scattered 63-bit ids (splitmix64, a bijection), so probe chains form. */
static int64_t key_at(uint64_t i)
{
        uint64_t z = i + UINT64_C(0x9E3779B97F4A7C15);

        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return (int64_t)((z ^ (z >> 31)) >> 1) | 1;
}

static void test_thousands(void **state)
{
        enum { N = 50000 };
        struct idmap *m = *state;

        for (int64_t i = 1; i <= N; i++) {
                assert_int_equal(idmap_put(m, key_at(i), V(i)), 0);
                if ((i & (i - 1)) == 0) /* now and then: all still there */
                        for (int64_t j = 1; j <= i; j++)
                                assert_ptr_equal(idmap_get(m, key_at(j)), V(j));
        }
        assert_int_equal(m->n, N); /* the ids are distinct */
        assert_true(m->cap >= N);
        assert_true((m->cap & (m->cap - 1)) == 0);
        for (int64_t i = 1; i <= N; i++)
                assert_ptr_equal(idmap_get(m, key_at(i)), V(i));
        /* Remove every other one: lookups must cross the deleted slots. */
        for (int64_t i = 1; i <= N; i += 2)
                assert_ptr_equal(idmap_remove(m, key_at(i)), V(i));
        assert_int_equal(m->n, N / 2);
        for (int64_t i = 1; i <= N; i++) {
                assert_ptr_equal(idmap_get(m, key_at(i)), i % 2 ? NULL : V(i));
                assert_null(idmap_get(m, key_at(i + N)));
        }
        /* Put the removed ones back with new values. */
        for (int64_t i = 1; i <= N; i += 2)
                assert_int_equal(idmap_put(m, key_at(i), V(i + N)), 0);
        for (int64_t i = 1; i <= N; i++)
                assert_ptr_equal(idmap_get(m, key_at(i)), V(i % 2 ? i + N : i));
        assert_int_equal(m->n, N);
}

static void test_deleted_slots_reused(void **state)
{
        struct idmap *m = *state;
        size_t cap;

        for (int64_t id = 1; id <= 10; id++)
                assert_int_equal(idmap_put(m, id, V(id)), 0);
        cap = m->cap;
        /* 200000 short-lived ids next to 10 long-lived ones. */
        for (int64_t id = 1000; id < 201000; id++) {
                assert_int_equal(idmap_put(m, id, V(id)), 0);
                assert_ptr_equal(idmap_get(m, id), V(id));
                assert_ptr_equal(idmap_remove(m, id), V(id));
                assert_true(m->used * 10 <= m->cap * 7);
        }
        assert_int_equal(m->n, 10);
        assert_true(m->cap <= 4 * cap);
        for (int64_t id = 1; id <= 10; id++)
                assert_ptr_equal(idmap_get(m, id), V(id));
        assert_null(idmap_get(m, 200999));
}

static void test_shrinks_when_empty(void **state)
{
        struct idmap *m = *state;

        for (int64_t id = 1; id <= 5000; id++)
                assert_int_equal(idmap_put(m, id, V(id)), 0);
        assert_true(m->cap > 1024);
        for (int64_t id = 5000; id >= 1; id--)
                assert_ptr_equal(idmap_remove(m, id), V(id));
        assert_int_equal(m->n, 0);
        assert_int_equal(m->cap, 0);
        assert_null(m->slots);
        assert_null(idmap_get(m, 1));
        /* And works again from nothing. */
        assert_int_equal(idmap_put(m, 42, V(42)), 0);
        assert_ptr_equal(idmap_get(m, 42), V(42));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put_get_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_extreme_ids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_thousands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deleted_slots_reused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shrinks_when_empty, setup, teardown),
        };

        return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
