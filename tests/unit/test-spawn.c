/* Unit tests of daemon/spawn.c, the clone(CLONE_VM) child that becomes
 * a job.
 *
 * The child shares this process's memory until it execs, so a signal
 * handler of this process must never run in it: a handler that touches
 * the heap (a library's, e.g. a fuzzer's or a sanitizer's interrupt
 * handler) would corrupt the parent's. The first test holds a child in
 * its very first system call (a write to a full pipe, where the job's
 * cgroup.procs would be), sends it a signal this process handles, and
 * checks that the handler did not run (a shared flag stays 0) and that
 * the signal waits, blocked, in the child. The second releases a child
 * and checks that what it execs starts with no signal blocked or
 * ignored, although this process blocks some and ignores SIGPIPE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#define STACK 65536

static volatile sig_atomic_t handler_ran;

static void on_usr1(int sig)
{
        (void)sig;
        handler_ran = 1;
}

struct child {
        struct spawn_args a;
        int barrier[2], err[2], out[2], full[2], null_fd;
        void *stack;
        pid_t pid;
        int pidfd;
};

static char *const true_argv[] = { "/bin/true", NULL };
static char *const status_argv[] = { "/bin/sh", "-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status", NULL };
static char *const no_env[] = { NULL };

static void child_setup(struct child *c, char *const *argv, bool block_in_cgroup_write)
{
        static char *paths[2];

        memset(c, 0, sizeof(*c));
        assert_int_equal(pipe2(c->barrier, O_CLOEXEC), 0);
        assert_int_equal(pipe2(c->err, O_CLOEXEC), 0);
        assert_int_equal(pipe2(c->out, O_CLOEXEC), 0);
        c->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        assert_true(c->null_fd > 2);
        c->full[0] = c->full[1] = -1;
        if (block_in_cgroup_write) {
                /* Fill the pipe, then make its write end block again:
                 * the child's first write then waits until we read. */
                char buf[4096] = { 0 };
                assert_int_equal(pipe2(c->full, O_CLOEXEC | O_NONBLOCK), 0);
                while (write(c->full[1], buf, sizeof(buf)) > 0)
                        ;
                while (write(c->full[1], buf, 1) > 0)
                        ;
                assert_int_equal(errno, EAGAIN);
                assert_int_equal(fcntl(c->full[1], F_SETFL, 0), 0);
        }
        paths[0] = argv[0];
        paths[1] = NULL;
        c->a = (struct spawn_args){
                .argv = argv, .envp = no_env, .paths = paths, .cwd = "/",
                .fd_in = c->null_fd, .fd_out = c->out[1], .fd_err = c->null_fd,
                .barrier_r = c->barrier[0], .barrier_w = c->barrier[1], .err_w = c->err[1],
                .cgroup_procs = c->full[1], .nice = 0, .umask = 022, .parent = getpid(),
        };
        for (int i = 0; i < RLIM_NLIMITS; i++)
                assert_int_equal(getrlimit(i, &c->a.rl[i]), 0);
        /* As ringqd does: read once this process's set-up is done (the
         * test's handlers, ignores and mask are in place by now). */
        spawn_capture_parent();
        spawn_inherit(&c->a);
        c->stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        assert_true(c->stack != MAP_FAILED);
        assert_int_equal(spawn_clone(&c->a, c->stack, STACK, &c->pid, &c->pidfd), 0);
        /* Only the child keeps these. */
        c->out[1] = safe_close(c->out[1]);
        c->err[1] = safe_close(c->err[1]);
        c->barrier[0] = safe_close(c->barrier[0]);
}

static int child_wait(struct child *c)
{
        int status = 0;

        assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
        safe_close(c->pidfd);
        safe_close(c->barrier[1]);
        safe_close(c->err[0]);
        safe_close(c->out[0]);
        safe_close(c->full[0]);
        safe_close(c->full[1]);
        safe_close(c->null_fd);
        munmap(c->stack, STACK);
        return status;
}

/* Field "name" of /proc/<pid>/status, as a bit mask. */
static uint64_t status_mask(pid_t pid, const char *name)
{
        char path[64], line[256];
        uint64_t v = 0;
        size_t n = strlen(name);
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, name, n) == 0 && line[n] == ':')
                        v = strtoull(line + n + 1, NULL, 16);
        fclose(f);
        return v;
}

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void test_no_parent_handler_in_child(void **state)
{
        struct sigaction sa = { .sa_handler = on_usr1 };
        uint64_t bit = 1ULL << (SIGUSR1 - 1);
        struct child c;
        bool pending = false;
        char drain[4096];
        int status;

        (void)state;
        handler_ran = 0;
        assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
        child_setup(&c, true_argv, true);

        /* The child is stuck in its first write: every signal it gets
         * now finds this process's handlers still installed. */
        for (int i = 0; i < 500 && !pending && !handler_ran; i++) {
                if (i == 0 || i % 50 == 0)
                        assert_int_equal(kill(c.pid, SIGUSR1), 0);
                sleep_ms(2);
                pending = (status_mask(c.pid, "SigPnd") | status_mask(c.pid, "ShdPnd")) & bit;
        }
        assert_int_equal(handler_ran, 0);
        assert_true(pending);
        assert_true(status_mask(c.pid, "SigBlk") & bit);

        /* Let the write through; at the barrier, EOF ends it unrun. */
        assert_true(read(c.full[0], drain, sizeof(drain)) > 0);
        c.barrier[1] = safe_close(c.barrier[1]);
        status = child_wait(&c);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), SPAWN_FAILED_STATUS);
        assert_int_equal(handler_ran, 0);
        signal(SIGUSR1, SIG_DFL);
}

static void test_job_starts_with_default_signals(void **state)
{
        sigset_t some;
        struct child c;
        char buf[512] = { 0 };
        size_t n = 0;
        ssize_t k;
        int status;

        (void)state;
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&some);
        sigaddset(&some, SIGTERM);
        sigaddset(&some, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &some, NULL), 0);

        child_setup(&c, status_argv, false);
        assert_int_equal(write(c.barrier[1], "x", 1), 1);
        while (n < sizeof(buf) - 1 && (k = read(c.out[0], buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)k;
        status = child_wait(&c);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_non_null(strstr(buf, "SigBlk:\t0000000000000000"));
        assert_non_null(strstr(buf, "SigIgn:\t0000000000000000"));

        assert_int_equal(sigprocmask(SIG_UNBLOCK, &some, NULL), 0);
        signal(SIGPIPE, SIG_DFL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_parent_handler_in_child),
                cmocka_unit_test(test_job_starts_with_default_signals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
