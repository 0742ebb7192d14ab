/* Unit tests of daemon/launches.c, the launch records.
 *
 * A new file has no records; a record written by one holder is found by
 * the next open (the crash), whole, while one cleared is not; nothing is
 * cleared until launches_reset, so a second crash before it finds the
 * same records; a record written in another boot (its header's boot id)
 * or in a file that is not one of ours is dropped; the file is 0600 and
 * fully allocated (no holes: a store into a hole is SIGBUS on a full
 * disk).
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
#include <sys/stat.h>
#include <unistd.h>

#include "launches.h"
#include "util.h"

static char dir[] = "/tmp/test-launches-XXXXXX";
static int dirfd_ = -1;

static int setup(void **state)
{
        (void)state;
        assert_non_null(mkdtemp(dir));
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dirfd_ >= 0);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        (void)unlinkat(dirfd_, LAUNCHES_FILE, 0);
        close(dirfd_);
        rmdir(dir);
        return 0;
}

/* Open, expecting n records left; returns them (caller frees). */
static struct launch_rec *open_expect(struct launches *l, size_t n)
{
        struct launch_rec *left = NULL;
        size_t got = 99;

        assert_int_equal(launches_open(l, dirfd_, &left, &got), 0);
        assert_int_equal(got, n);
        return left;
}

static void test_records_outlive_their_holder(void **state)
{
        struct launches l;
        struct launch_rec *left;
        struct stat sb;

        (void)state;
        (void)unlinkat(dirfd_, LAUNCHES_FILE, 0);
        free(open_expect(&l, 0));
        launches_reset(&l);
        launches_set(&l, 3, 42, 7, 1700000000123, 4242);
        launches_set(&l, 0, 43, 1, 1700000000456, 4343);
        launches_set(&l, LAUNCHES_MAX - 1, 44, 2, 1700000000789, 4444);
        launches_clear(&l, 0);
        /* No unmap, no close: what a kill -9 leaves. The next holder
         * maps the same page cache. */
        {
                struct launches l2;
                left = open_expect(&l2, 2);
                assert_int_equal(left[0].job_id, 42);
                assert_int_equal(left[0].queued_seq, 7);
                assert_int_equal(left[0].started_at, 1700000000123);
                assert_int_equal(left[0].pid, 4242);
                assert_int_equal(left[1].job_id, 44);
                assert_int_equal(left[1].pid, 4444);
                free(left);
                launches_close(&l2);
        }
        launches_close(&l);

        /* Still there until reset, however often it is opened. */
        free(open_expect(&l, 2));
        launches_reset(&l);
        launches_close(&l);
        free(open_expect(&l, 0));
        launches_close(&l);

        assert_int_equal(fstatat(dirfd_, LAUNCHES_FILE, &sb, 0), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
        assert_true(sb.st_blocks * 512 >= sb.st_size);
}

static void test_another_boot_is_dropped(void **state)
{
        struct launches l;
        int fd;

        (void)state;
        free(open_expect(&l, 0));
        launches_reset(&l);
        launches_set(&l, 1, 50, 1, 1, 5050);
        launches_close(&l);
        free(open_expect(&l, 1));
        launches_close(&l);
        /* The header's boot id (after the 8-byte magic) from elsewhere. */
        fd = openat(dirfd_, LAUNCHES_FILE, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "00000000-0000-0000-0000-000000000000", 36, 8), 36);
        close(fd);
        free(open_expect(&l, 0));
        launches_close(&l);

        /* Nor is a file that is not ours read: no magic. */
        free(open_expect(&l, 0));
        launches_reset(&l);
        launches_set(&l, 1, 51, 1, 1, 5151);
        launches_close(&l);
        fd = openat(dirfd_, LAUNCHES_FILE, O_RDWR | O_CLOEXEC);
        assert_int_equal(pwrite(fd, "NOTOURS!", 8, 0), 8);
        close(fd);
        free(open_expect(&l, 0));
        launches_close(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_records_outlive_their_holder),
                cmocka_unit_test(test_another_boot_is_dropped),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
