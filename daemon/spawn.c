/* The clone(CLONE_VM) child: see spawn.h for why it is built this way. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

#define CHILD __attribute__((no_sanitize("address", "undefined"), noinline, used))
#define RAW static inline __attribute__((always_inline, no_sanitize("address", "undefined")))

/* System calls without libc: the return is the kernel's (-errno on
 * failure) and nothing is written outside the child's stack. */
#if defined(__x86_64__)
RAW long rsys6(long n, long a, long b, long c, long d, long e, long f)
{
        register long r10 __asm__("r10") = d;
        register long r8 __asm__("r8") = e;
        register long r9 __asm__("r9") = f;
        long ret;

        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
        return ret;
}
#elif defined(__aarch64__)
RAW long rsys6(long n, long a, long b, long c, long d, long e, long f)
{
        register long x8 __asm__("x8") = n;
        register long x0 __asm__("x0") = a;
        register long x1 __asm__("x1") = b;
        register long x2 __asm__("x2") = c;
        register long x3 __asm__("x3") = d;
        register long x4 __asm__("x4") = e;
        register long x5 __asm__("x5") = f;

        __asm__ volatile("svc 0"
                         : "+r"(x0)
                         : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                         : "memory");
        return x0;
}
#else
#error "spawn.c needs a raw system call for this architecture"
#endif

#define rsys(n, a, b, c) rsys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

RAW void child_fail(const struct spawn_args *a, long err)
{
        int e = (int)-err;

        (void)rsys(__NR_write, a->err_w, &e, sizeof(e));
        for (;;)
                (void)rsys(__NR_exit_group, SPAWN_FAILED_STATUS, 0, 0);
}

/* Move fd to at least `min`, away from 0..2 and from `avoid`. */
RAW int lift_fd(const struct spawn_args *a, int fd)
{
        long r;

        if (fd > 2)
                return fd;
        r = rsys(__NR_fcntl, fd, F_DUPFD_CLOEXEC, 3);
        if (r < 0)
                child_fail(a, r);
        return (int)r;
}

/* The kernel's struct sigaction: the child passes it to the raw
 * rt_sigaction, and spawn_capture_parent reads it back. */
struct ksigaction {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
};

CHILD static int child_main(void *arg)
{
        const struct spawn_args *a = arg;
        uint64_t empty_mask = 0;
        struct ksigaction dfl = { 0 };
        int fds[3] = { a->fd_in, a->fd_out, a->fd_err };
        int barrier = a->barrier_r, errfd = a->err_w;
        long r, last = -ENOENT;
        char c;

        /* Into the job's cgroup first, so that nothing it ever starts is
         * born outside it. */
        if (a->cgroup_procs >= 0) {
                r = rsys(__NR_write, a->cgroup_procs, "0", 1);
                if (r < 0)
                        child_fail(a, r);
        }

        /* The write end of the barrier stays only with the parent, so its
         * death reads as EOF here. */
        (void)rsys(__NR_close, a->barrier_w, 0, 0);

        /* Put the job's stdio in place. The sources are above 2 (ringqd
         * keeps 0..2 open), so dup3 cannot clobber one it still needs. */
        for (int i = 0; i < 3; i++) {
                r = rsys(__NR_dup3, fds[i], i, 0);
                if (r < 0)
                        child_fail(a, r);
        }
        barrier = lift_fd(a, barrier);
        errfd = lift_fd(a, errfd);
        /* Close everything else now, not only at exec: no other job's
         * pipes stay open here while this child waits at the barrier. */
        {
                int lo = barrier < errfd ? barrier : errfd, hi = barrier < errfd ? errfd : barrier;
                (void)rsys(__NR_close_range, 3, lo - 1, 0);
                (void)rsys(__NR_close_range, lo + 1, hi - 1, 0);
                (void)rsys(__NR_close_range, hi + 1, ~0U, 0);
        }

        r = rsys(__NR_setsid, 0, 0, 0);
        if (r < 0)
                child_fail(a, r);
        /* What its owner's login would get, never ringqd's own raised
         * limits. A limit that cannot be raised stays lower: safe. */
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (a->rl_set & (1u << i))
                        (void)rsys6(__NR_prlimit64, 0, i, (long)&a->rl[i], 0, 0, 0);
        (void)rsys(__NR_setpriority, PRIO_PROCESS, 0, a->nice);
        (void)rsys(__NR_umask, a->umask, 0, 0);
        if (a->set_creds) {
                r = rsys(__NR_setgroups, a->ngroups, a->groups, 0);
                if (r >= 0)
                        r = rsys(__NR_setresgid, a->gid, a->gid, a->gid);
                if (r >= 0)
                        r = rsys(__NR_setresuid, a->uid, a->uid, a->uid);
                if (r < 0)
                        child_fail(a, r);
        }
        /* After the credential change, which clears it: if ringqd dies
         * the job's main process goes with it; recovery kills the rest of
         * its process group by the pid the database holds. */
        (void)rsys(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
        if (rsys(__NR_getppid, 0, 0, 0) != a->parent)
                child_fail(a, -ESRCH);
        if (a->subreaper)
                (void)rsys(__NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0);

        r = rsys(__NR_chdir, a->cwd, 0, 0);
        if (r < 0)
                child_fail(a, r);

        /* ringqd blocks signals it reads through signalfd; a job must
         * start with the defaults. A handler would not survive the exec,
         * but it could run here, on memory the two share, once the mask
         * is cleared below; an ignored signal would survive it. */
        dfl.handler = SIG_DFL;
        for (int sig = 1; sig < 65; sig++)
                if (a->sig_reset & (1ull << (sig - 1)))
                        (void)rsys6(__NR_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);

        /* Wait for the commit of our pid. */
        do
                r = rsys(__NR_read, barrier, &c, 1);
        while (r == -EINTR);
        if (r != 1)
                for (;;)
                        (void)rsys(__NR_exit_group, SPAWN_FAILED_STATUS, 0, 0);
        (void)rsys(__NR_close, barrier, 0, 0);

        (void)rsys6(__NR_rt_sigprocmask, SIG_SETMASK, (long)&empty_mask, 0, 8, 0, 0);
        /* execvp's rules: try each PATH candidate; remember EACCES, stop
         * at errors other than "not here". */
        for (char *const *p = a->paths; *p; p++) {
                r = rsys(__NR_execve, *p, a->argv, a->envp);
                if (r == -EACCES)
                        last = r;
                else if (r != -ENOENT && r != -ENOTDIR && r != -ENAMETOOLONG && r != -ELOOP) {
                        last = r;
                        break;
                } else if (last != -EACCES)
                        last = r;
        }
        child_fail(a, last);
        return 0;
}

static struct {
        struct rlimit rl[RLIM_NLIMITS];
        uint64_t sig_reset;
} parent;

void spawn_capture_parent(void)
{
        uint64_t reset = 0;

        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (getrlimit(i, &parent.rl[i]) < 0) /* unknown to this kernel: the child sets it */
                        parent.rl[i] = (struct rlimit){ 0, 0 };
        for (int sig = 1; sig < 65; sig++) {
                struct ksigaction old;

                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) < 0 || old.handler != SIG_DFL)
                        reset |= 1ull << (sig - 1);
        }
        /* glibc keeps the real-time signals below SIGRTMIN for itself and
         * gives them handlers when it first needs them, which may be
         * after this. */
        for (int sig = __SIGRTMIN; sig < SIGRTMIN; sig++)
                reset |= 1ull << (sig - 1);
        parent.sig_reset = reset;
}

void spawn_inherit(struct spawn_args *a)
{
        a->rl_set = 0;
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (a->rl[i].rlim_cur != parent.rl[i].rlim_cur || a->rl[i].rlim_max != parent.rl[i].rlim_max)
                        a->rl_set |= 1u << i;
        a->sig_reset = parent.sig_reset;
}

int spawn_clone(const struct spawn_args *a, void *stack, size_t stack_size,
                pid_t *ret_pid, int *ret_pidfd)
{
        sigset_t all, old;
        int pidfd = -1, e;
        pid_t pid;

        if (under_valgrind()) {
                /* valgrind cannot run a CLONE_VM child that is not a
                 * thread, nor pidfds: a plain fork runs the same child code
                 * on a copy of memory, and the loop learns of its exit
                 * from SIGCHLD. That is all a test under valgrind needs. */
                pid = fork();
                if (pid == 0)
                        child_main((void *)a);
                if (pid < 0)
                        return -errno;
                *ret_pid = pid;
                *ret_pidfd = pidfd;
                return 0;
        }
        /* The child starts with every signal blocked and unblocks only
         * after it has put every handler back to the default (each one
         * spawn_capture_parent found): a handler of this process (a
         * library's, or one a caller installed) run in the child would
         * run on memory the two share. ringqd's own
         * mask alone does not cover that, it leaves synchronous and
         * unused signals open. */
        sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old);
        /* The stack grows down on every architecture this builds for. */
        pid = clone(child_main, (char *)stack + stack_size, CLONE_VM | CLONE_PIDFD | SIGCHLD,
                    (void *)a, &pidfd);
        e = errno;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
                return -e;
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}
