/* Unit tests of the new process's side of daemon/reexec.c: reading the
 * hand-off the old process left in $RINGQ_REEXEC_FD.
 *
 * No variable: a plain start (NULL). A memfd with a hand-off of this
 * version: the object, the variable removed and the descriptor closed.
 * Every way it can be wrong (another version, not JSON, not an object,
 * a variable that is not a descriptor number, a descriptor that is not
 * open) gives NULL, a start as after a crash, and still removes the
 * variable and closes the descriptor, so nothing of it leaks into jobs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reexec.h"

/* A memfd holding text, its number in $RINGQ_REEXEC_FD. */
static int offer(const char *text)
{
        char num[16];
        int fd = memfd_create("handoff-test", 0);

        assert_true(fd >= 3);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        snprintf(num, sizeof(num), "%d", fd);
        assert_int_equal(setenv("RINGQ_REEXEC_FD", num, 1), 0);
        return fd;
}

static void assert_taken(int fd)
{
        assert_null(getenv("RINGQ_REEXEC_FD"));
        assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
}

static void test_plain_start(void **state)
{
        (void)state;
        unsetenv("RINGQ_REEXEC_FD");
        assert_null(reexec_take_handoff());
}

static void test_good_handoff(void **state)
{
        json_t *h;
        int fd;

        (void)state;
        fd = offer("{\"version\":1,\"reexecs\":3,\"socket_fd\":7,\"slots\":[],\"conns\":[]}");
        h = reexec_take_handoff();
        assert_non_null(h);
        assert_int_equal(json_integer_value(json_object_get(h, "reexecs")), 3);
        assert_int_equal(json_integer_value(json_object_get(h, "socket_fd")), 7);
        assert_taken(fd);
        json_decref(h);
}

static void test_bad_handoffs(void **state)
{
        static const char *const bad[] = {
                "{\"version\":2,\"slots\":[]}", /* a newer ringqd's */
                "{\"slots\":[]}",               /* no version */
                "[1,2,3]",                      /* not an object */
                "{\"version\":1,",              /* cut short */
                "",                             /* empty */
        };

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int fd = offer(bad[i]);
                assert_null(reexec_take_handoff());
                assert_taken(fd);
        }
}

static void test_bad_variable(void **state)
{
        static const char *const bad[] = { "x", "12abc", "-1", "2", "99999999999" };
        int unused;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(setenv("RINGQ_REEXEC_FD", bad[i], 1), 0);
                assert_null(reexec_take_handoff());
                assert_null(getenv("RINGQ_REEXEC_FD"));
        }
        /* A number that names no open descriptor. */
        unused = dup(0);
        assert_true(unused >= 3);
        close(unused);
        {
                char num[16];
                snprintf(num, sizeof(num), "%d", unused);
                assert_int_equal(setenv("RINGQ_REEXEC_FD", num, 1), 0);
        }
        assert_null(reexec_take_handoff());
        assert_null(getenv("RINGQ_REEXEC_FD"));
        /* stdio is never the hand-off: 0..2 are left alone. */
        assert_int_not_equal(fcntl(2, F_GETFD), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_start),
                cmocka_unit_test(test_good_handoff),
                cmocka_unit_test(test_bad_handoffs),
                cmocka_unit_test(test_bad_variable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
