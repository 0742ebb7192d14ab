/* Unit tests of daemon/login_limits.c, login limits through PAM.
 *
 * The real helper (this binary, run with --limits-helper) drives the
 * real PAM library and pam_limits with a PAM directory of the test's
 * own: a "ringq" service whose pam_limits reads the test's limits.conf,
 * which gives "nobody" soft/hard nofile 222/333, hard nproc 77 and
 * priority 5. Checked: nobody gets exactly those; root, with no line,
 * gets for each limit the base or, where a distribution's pam_limits
 * starts from the kernel defaults (Debian: /proc/1/limits), pid 1's
 * value; an unknown user gets the base; a missing service file, no
 * service or a bad name turn PAM off (no helper, base); a cached answer
 * needs no helper (it is dead by then); a helper killed with SIGKILL is
 * replaced at a later miss; a stopped helper costs the bounded wait
 * and the base, not a hang. The cost of a miss is printed, not checked.
 * Needs root (skipped otherwise), as in CI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "login_limits.h"
#include "log.h"
#include "util.h"

static char dir[] = "/tmp/test-limits-XXXXXX";
static char empty_dir[sizeof(dir) + 8];
static uid_t nobody_uid;
static gid_t nobody_gid;

static void write_file(const char *name, const char *text)
{
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
        struct passwd *pw = getpwnam("nobody");
        char text[512];

        limits_capture_base();
        if (!pw || !mkdtemp(dir))
                return -1;
        nobody_uid = pw->pw_uid;
        nobody_gid = pw->pw_gid;
        snprintf(text, sizeof(text),
                 "# test-limits: pam_limits with the test's own limits.conf\n"
                 "session required pam_limits.so conf=%s/limits.conf\n", dir);
        write_file("ringq", text);
        write_file("limits.conf", "nobody soft nofile 222\n"
                                  "nobody hard nofile 333\n"
                                  "nobody hard nproc 77\n"
                                  "nobody - priority 5\n");
        snprintf(empty_dir, sizeof(empty_dir), "%s/empty", dir);
        return mkdir(empty_dir, 0755);
}

static int group_teardown(void **state)
{
        char path[256];

        limits_stop();
        rmdir(empty_dir);
        snprintf(path, sizeof(path), "%s/ringq", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/limits.conf", dir);
        unlink(path);
        rmdir(dir);
        return 0;
}

static int teardown(void **state)
{
        limits_stop();
        return 0;
}

/* Without root limits_start turns PAM off: nothing here to test. */
static void need_root(void)
{
        if (geteuid() != 0)
                skip();
}

static void start(void)
{
        char *err = NULL;

        assert_int_equal(limits_start("ringq", dir, &err), 0);
        assert_null(err);
        assert_true(limits_helper_pid() > 0);
}

static void assert_nobody(const struct job_limits *l)
{
        assert_int_equal(l->rl[RLIMIT_NOFILE].rlim_cur, 222);
        assert_int_equal(l->rl[RLIMIT_NOFILE].rlim_max, 333);
        assert_int_equal(l->rl[RLIMIT_NPROC].rlim_max, 77);
        assert_true(l->rl[RLIMIT_NPROC].rlim_cur <= 77);
        assert_int_equal(l->nice, 5);
}

static void assert_base(const struct job_limits *l)
{
        assert_memory_equal(l, limits_base(), sizeof(*l));
}

/* Wait for the helper's death without reaping it: that is limits.c's. */
static void wait_dead(pid_t pid)
{
        siginfo_t si;

        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static void test_pam_values(void **state)
{
        struct job_limits l;
        int64_t us[21];

        need_root();

        start();
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_nobody(&l);

        /* Cost of a miss with the modules loaded. */
        for (unsigned i = 0; i < ELEMENTSOF(us); i++) {
                int64_t t;

                limits_flush();
                t = now_mono_us();
                assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
                us[i] = now_mono_us() - t;
                assert_nobody(&l);
        }
        for (unsigned i = 1; i < ELEMENTSOF(us); i++)
                for (unsigned j = i; j > 0 && us[j] < us[j - 1]; j--) {
                        int64_t x = us[j];
                        us[j] = us[j - 1];
                        us[j - 1] = x;
                }
        print_message("limits: cache miss round trip: min %lld us, median %lld us, max %lld us (%zu misses)\n",
                      (long long)us[0], (long long)us[ELEMENTSOF(us) / 2], (long long)us[ELEMENTSOF(us) - 1],
                      ELEMENTSOF(us));
}

static void test_no_line(void **state)
{
        const struct job_limits *b = limits_base();
        struct job_limits l;

        need_root();

        start();
        assert_int_equal(limits_for(0, 0, "root", &l), 0);
        for (int i = 0; i < RLIM_NLIMITS; i++) {
                struct rlimit init;

                if (memcmp(&l.rl[i], &b->rl[i], sizeof(l.rl[i])) == 0)
                        continue;
                assert_int_equal(prlimit(1, i, NULL, &init), 0);
                assert_memory_equal(&l.rl[i], &init, sizeof(init));
        }
        assert_int_equal(l.nice, b->nice);

        /* pam_limits fails for a user it cannot find: the base. */
        assert_int_equal(limits_for(4242420, 4242420, "no-such-user-rq", &l), 0);
        assert_base(&l);
}

static void test_pam_off(void **state)
{
        struct job_limits l;
        char *err = NULL;

        need_root();

        /* No service file: PAM's "other" must not stand in for it. */
        assert_int_equal(limits_start("ringq", empty_dir, &err), 0);
        assert_int_equal(limits_helper_pid(), -1);
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_base(&l);

        assert_int_equal(limits_start(NULL, dir, &err), 0);
        assert_int_equal(limits_start("", dir, &err), 0);
        assert_int_equal(limits_helper_pid(), -1);
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_base(&l);

        assert_int_equal(limits_start("../ringq", dir, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        assert_int_equal(limits_helper_pid(), -1);

        assert_int_equal(limits_for(0, 0, NULL, &l), -EINVAL);
}

static void test_cache_then_respawn(void **state)
{
        struct job_limits l;
        pid_t pid;

        need_root();

        start();
        pid = limits_helper_pid();
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_nobody(&l);

        /* With the helper dead only the cache can answer this. */
        assert_int_equal(kill(pid, SIGKILL), 0);
        wait_dead(pid);
        memset(&l, 0, sizeof(l));
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_nobody(&l);

        /* A miss finds it dead: the base, and it is reaped. */
        limits_flush();
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_base(&l);
        assert_int_equal(limits_helper_pid(), -1);

        /* Respawns are at least a second apart; after that a miss starts
         * a new helper and gets its answer. */
        usleep(1100 * 1000);
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_nobody(&l);
        assert_true(limits_helper_pid() > 0);
        assert_int_not_equal(limits_helper_pid(), pid);
}

static void test_stopped_helper(void **state)
{
        struct job_limits l;
        siginfo_t si;
        pid_t pid;

        need_root();

        start();
        pid = limits_helper_pid();
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOWAIT), 0);

        /* Returns after the bounded wait (one second), with the base. */
        assert_int_equal(limits_for(nobody_uid, nobody_gid, "nobody", &l), 0);
        assert_base(&l);
        /* It was killed: dead, or already reaped by limits.c. */
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0) {
                assert_int_equal(errno, ECHILD);
                assert_int_equal(limits_helper_pid(), -1);
        }
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pam_values, NULL, teardown),
                cmocka_unit_test_setup_teardown(test_no_line, NULL, teardown),
                cmocka_unit_test_setup_teardown(test_pam_off, NULL, teardown),
                cmocka_unit_test_setup_teardown(test_cache_then_respawn, NULL, teardown),
                cmocka_unit_test_setup_teardown(test_stopped_helper, NULL, teardown),
        };

        /* limits.c starts its helper as this binary with this flag. */
        if (argc == 2 && strcmp(argv[1], "--limits-helper") == 0)
                return limits_helper_main(3) < 0 ? 1 : 0;
        /* The PAM-off notice and the fallback warnings are expected. */
        log_max_level = LOG_ERR;
        return cmocka_run_group_tests_name("limits", tests, group_setup, group_teardown);
}
