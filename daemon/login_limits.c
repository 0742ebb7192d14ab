/* Login limits for jobs: the cache and the helper client (in ringqd's
 * loop) and the helper itself (`ringqd --limits-helper`); login_limits.h says
 * why a helper, and why a child per request.
 *
 * Wire: fixed-size structs on a SOCK_SEQPACKET socketpair, one request
 * and its reply at a time; both ends are the same binary, and each
 * checks the exact size of what it reads, as imsg does. A request
 * carries everything the answer depends on (service, confdir, base), so
 * a respawned helper needs no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <security/pam_appl.h>

#include "login_limits.h"
#include "log.h"
#include "util.h"

#define CACHE_SIZE 32
#define TTL_MS 60000
#define DEADLINE_MS 1000
#define RESPAWN_MS 1000
#define WARN_MS 60000
#define HELPER_FD 3
#define USER_MAX 256            /* LOGIN_NAME_MAX, with the NUL */
#define SERVICE_MAX 64
#define PAM_DIR "/etc/pam.d"    /* PAM's own default, for the check below */

struct req {
        uint32_t seq;
        uint32_t uid;
        struct job_limits base;
        char user[USER_MAX], service[SERVICE_MAX];
        char confdir[PATH_MAX]; /* "" for PAM's default */
};

struct reply {
        uint32_t seq;
        int32_t status;         /* 0, a PAM error (> 0) or a negative errno */
        struct job_limits lim;
        char err[256];          /* why, when status != 0 */
};

struct entry {
        uid_t uid;
        int64_t fetched_ms;     /* monotonic */
        struct job_limits lim;
};

static struct job_limits base;
static bool captured;
static struct entry cache[CACHE_SIZE];
static unsigned ncache;

/* ringqd's side. pid stays set after a kill until the reap, so at most
 * one helper exists and limits_helper_pid() always names it. */
static struct {
        bool on;
        char service[SERVICE_MAX], confdir[PATH_MAX], exe[PATH_MAX];
        int fd;
        pid_t pid;
        uint32_t seq;
        int64_t spawned_ms, warned_ms;
} st = { .fd = -1, .pid = -1, .spawned_ms = INT64_MIN / 2, .warned_ms = INT64_MIN / 2 };

void limits_capture_base(void)
{
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (getrlimit(i, &base.rl[i]) < 0) /* unknown to this kernel: no limit */
                        base.rl[i] = (struct rlimit){ RLIM_INFINITY, RLIM_INFINITY };
        errno = 0;
        base.nice = getpriority(PRIO_PROCESS, 0);
        if (base.nice == -1 && errno != 0)
                base.nice = 0;
        captured = true;
}

/* Zeroed limits would stop every job: late beats never. */
const struct job_limits *limits_base(void)
{
        if (!captured)
                limits_capture_base();
        return &base;
}

static void service_path(char *buf, size_t size, const char *confdir, const char *service)
{
        (void)snprintf(buf, size, "%s/%s", confdir[0] ? confdir : PAM_DIR, service);
}

/* ---- ringqd's side ---- */

static bool helper_reap(bool block)
{
        pid_t r;

        if (st.pid < 0)
                return true;
        do
                r = waitpid(st.pid, NULL, block ? 0 : WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0)
                return false;
        st.pid = -1;
        return true;
}

/* A helper that failed us is not trusted with another request: it
 * goes, and the next miss after RESPAWN_MS starts a new one. Reaped now
 * if already dead, else at a later miss, never waited for here. */
static void helper_kill(void)
{
        st.fd = safe_close(st.fd);
        if (st.pid > 0)
                (void)kill(st.pid, SIGKILL);
        (void)helper_reap(false);
}

static int helper_spawn(void)
{
        char *argv[] = { (char *)"ringqd", (char *)"--limits-helper", NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        pid_t pid;
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* ringqd blocks the signals it reads through its signalfd and
         * ignores SIGPIPE; the helper must die of SIGTERM. The dup2 also
         * clears close-on-exec when sv[1] already is HELPER_FD (glibc >=
         * 2.29); closefrom (2.34) keeps any fd ringqd failed to mark
         * close-on-exec (a job's pipe) out of a long-lived process.
         * These setters cannot fail with valid arguments. */
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        (void)posix_spawn_file_actions_adddup2(&fa, sv[1], HELPER_FD);
        (void)posix_spawn_file_actions_addclosefrom_np(&fa, HELPER_FD + 1);
        (void)posix_spawnattr_setsigmask(&attr, &none);
        (void)posix_spawnattr_setsigdefault(&attr, &all);
        (void)posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = posix_spawn(&pid, st.exe, &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        close(sv[1]);
        if (r != 0) {
                close(sv[0]);
                return -r;
        }
        st.fd = sv[0];
        st.pid = pid;
        return 0;
}

static int helper_ensure(void)
{
        int64_t now = now_mono_ms();

        if (st.fd >= 0)
                return 0;
        if (!helper_reap(false))
                return -EBUSY;          /* the last one is still dying */
        if (now - st.spawned_ms < RESPAWN_MS)
                return -EAGAIN;
        st.spawned_ms = now;
        return helper_spawn();
}

/* One request, one reply, within DEADLINE_MS of the send. */
static int round_trip(const struct req *q, struct reply *rep)
{
        int64_t deadline = now_mono_us() + DEADLINE_MS * 1000;
        struct {
                struct reply r;
                char excess;    /* a longer message shows as a longer read */
        } buf;
        ssize_t n;

        n = send(st.fd, q, sizeof(*q), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        if ((size_t)n != sizeof(*q))
                return -EIO;
        for (;;) {
                struct pollfd p = { .fd = st.fd, .events = POLLIN };
                int64_t left = deadline - now_mono_us();

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int)((left + 999) / 1000)) < 0 && errno != EINTR)
                        return -errno;
                n = recv(st.fd, &buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EPIPE;
                if ((size_t)n != sizeof(buf.r) || buf.r.seq != q->seq)
                        return -EBADMSG;
                buf.r.err[sizeof(buf.r.err) - 1] = '\0';
                *rep = buf.r;
                return 0;
        }
}

static bool warn_due(void)
{
        int64_t now = now_mono_ms();

        if (now - st.warned_ms < WARN_MS)
                return false;
        st.warned_ms = now;
        return true;
}

static void cache_put(uid_t uid, const struct job_limits *lim)
{
        unsigned i, oldest = 0;

        for (i = 0; i < ncache && cache[i].uid != uid; i++)
                ;
        if (i == ncache && ncache < CACHE_SIZE)
                ncache++;
        else if (i == ncache) {
                for (i = 1; i < CACHE_SIZE; i++)
                        if (cache[i].fetched_ms < cache[oldest].fetched_ms)
                                oldest = i;
                i = oldest;
        }
        cache[i] = (struct entry){ .uid = uid, .fetched_ms = now_mono_ms(), .lim = *lim };
}

int limits_for(uid_t uid, gid_t gid, const char *user, struct job_limits *ret)
{
        struct reply rep;
        const char *why;
        int r;

        if (!user || !ret || strlen(user) >= USER_MAX)
                return -EINVAL;
        *ret = *limits_base();
        if (!st.on)
                return 0;
        for (unsigned i = 0; i < ncache; i++)
                if (cache[i].uid == uid && now_mono_ms() - cache[i].fetched_ms < TTL_MS) {
                        *ret = cache[i].lim;
                        return 0;
                }

        struct req q = { .seq = ++st.seq, .uid = uid, .base = base };
        strcpy(q.user, user);
        strcpy(q.service, st.service);
        strcpy(q.confdir, st.confdir);
        r = helper_ensure();
        if (r == 0)
                r = round_trip(&q, &rep);
        if (r < 0) {
                helper_kill();
                why = r == -ETIMEDOUT ? "too slow, killed" : r == -EAGAIN || r == -EBUSY ? "restarting" : strerror(-r);
                if (warn_due())
                        log_warning("limits: PAM helper: %s; the jobs of %s get ringqd's start-up limits", why, user);
                return 0;
        }
        /* A PAM error is the configuration's answer and would be the same
         * next time: cache it (as the base) rather than ask per job. */
        if (rep.status != 0) {
                if (warn_due())
                        log_warning("limits: PAM session %s for %s failed: %s; its jobs get ringqd's start-up limits",
                                    st.service, user, rep.err);
                rep.lim = base;
        }
        cache_put(uid, &rep.lim);
        *ret = rep.lim;
        return 0;
}

void limits_flush(void)
{
        ncache = 0;
}

void limits_stop(void)
{
        st.fd = safe_close(st.fd);
        if (st.pid > 0)
                (void)kill(st.pid, SIGTERM);
        (void)helper_reap(true);
        st.on = false;
        limits_flush();
}

pid_t limits_helper_pid(void)
{
        return st.pid;
}

int limits_start(const char *service, const char *confdir, char **ret_err)
{
        char path[sizeof(st.confdir) + sizeof(st.service) + 1];
        ssize_t n;
        int r;

        limits_stop();
        if (!service || !*service)
                return 0;
        if (strchr(service, '/') || strlen(service) >= sizeof(st.service))
                return set_error(ret_err, -EINVAL, "PAM service name '%s': not a file name of at most %zu bytes",
                                 service, sizeof(st.service) - 1);
        if (confdir && (!*confdir || strlen(confdir) >= sizeof(st.confdir)))
                return set_error(ret_err, -EINVAL, "PAM directory '%s': empty or too long", confdir);
        if (geteuid() != 0)
                return 0;       /* jobs run as ringqd's user, with its limits */
        /* Without its file PAM would run the "other" service, which on
         * Debian is the full login stack (pam_systemd and more). */
        service_path(path, sizeof(path), confdir ? confdir : "", service);
        if (access(path, F_OK) < 0) {
                log_notice("limits: PAM service file %s: %m; jobs get ringqd's start-up limits", path);
                return 0;
        }
        strcpy(st.service, service);
        strcpy(st.confdir, confdir ? confdir : "");
        /* After an upgrade the path names the new binary, whose helper
         * might speak another wire format: then use the running one. */
        n = readlink("/proc/self/exe", st.exe, sizeof(st.exe) - 1);
        st.exe[n > 0 ? n : 0] = '\0';
        if (n <= 0 || (size_t)n >= sizeof(st.exe) - 1 || strstr(st.exe, " (deleted)"))
                strcpy(st.exe, "/proc/self/exe");
        st.on = true;
        st.spawned_ms = now_mono_ms();
        r = helper_spawn();
        if (r < 0)
                return set_error(ret_err, r, "starting the PAM limits helper %s: %s", st.exe, strerror(-r));
        return 0;
}

/* ---- the helper ---- */

static int conv_none(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
        return PAM_CONV_ERR;    /* a job has nobody to answer a prompt */
}

static int pam_begin(const struct req *q, const char *user, pam_handle_t **ret)
{
        static const struct pam_conv conv = { conv_none, NULL };

        if (q->confdir[0])
                return pam_start_confdir(q->service, user, &conv, q->confdir, ret);
        return pam_start(q->service, user, &conv, ret);
}

_printf_(3, 4) static int fail(struct reply *rep, int status, const char *fmt, ...)
{
        va_list ap;

        rep->status = status;
        va_start(ap, fmt);
        (void)vsnprintf(rep->err, sizeof(rep->err), fmt, ap);
        va_end(ap);
        return status;
}

/* In the per-request child: start from the base, let the session set
 * what the user's login gets, read it back. */
static int session(const struct req *q, struct reply *rep)
{
        char path[sizeof(q->confdir) + sizeof(q->service) + 1], buf[4096];
        struct passwd pw, *pwp = NULL;
        pam_handle_t *h = NULL;
        int r;

        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (setrlimit(i, &q->base.rl[i]) < 0 && errno != EINVAL)
                        return fail(rep, -errno, "resetting limit %d to the base: %m", i);
        if (setpriority(PRIO_PROCESS, 0, q->base.nice) < 0)
                return fail(rep, -errno, "resetting nice to %d: %m", q->base.nice);
        service_path(path, sizeof(path), q->confdir, q->service);
        if (access(path, F_OK) < 0)
                return fail(rep, -errno, "%s: %m", path);
        /* The name came from a cache: make sure it still is this uid. */
        if (getpwnam_r(q->user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
                return fail(rep, PAM_USER_UNKNOWN, "no user %s", q->user);
        if (pw.pw_uid != q->uid)
                return fail(rep, -ESTALE, "user %s is now uid %u, not %u", q->user, (unsigned)pw.pw_uid,
                            (unsigned)q->uid);

        r = pam_begin(q, q->user, &h);
        if (r != PAM_SUCCESS)
                return fail(rep, r, "pam_start: %s", pam_strerror(h, r));
        /* The job was asked for by its owner (SO_PEERCRED), so the
         * requesting user is the user: modules that log or check who
         * asked (pam_exec, pam_access) see that, not an empty item. */
        (void)pam_set_item(h, PAM_RUSER, q->user);
        r = pam_open_session(h, PAM_SILENT);
        if (r == PAM_SUCCESS) {
                for (int i = 0; i < RLIM_NLIMITS; i++)
                        if (getrlimit(i, &rep->lim.rl[i]) < 0) /* unknown to this kernel */
                                rep->lim.rl[i] = q->base.rl[i];
                errno = 0;
                rep->lim.nice = getpriority(PRIO_PROCESS, 0);
                if (rep->lim.nice == -1 && errno != 0)
                        rep->lim.nice = q->base.nice;
                (void)pam_close_session(h, PAM_SILENT);
        } else
                (void)fail(rep, r, "pam_open_session: %s", pam_strerror(h, r));
        pam_end(h, r);
        return rep->status;
}

/* Modules stay loaded between requests while a handle for the service
 * is open here: each child's pam_start then finds them mapped instead of
 * loading them (measured: a sixth of a request's time). */
static pam_handle_t *warm;
static char warm_service[SERVICE_MAX], warm_confdir[PATH_MAX];

static void warm_up(const struct req *q)
{
        char path[sizeof(q->confdir) + sizeof(q->service) + 1];

        if (warm && strcmp(warm_service, q->service) == 0 && strcmp(warm_confdir, q->confdir) == 0)
                return;
        if (warm)
                pam_end(warm, PAM_SUCCESS);
        warm = NULL;
        service_path(path, sizeof(path), q->confdir, q->service);
        if (access(path, F_OK) < 0 || pam_begin(q, NULL, &warm) != PAM_SUCCESS) {
                warm = NULL;
                return;
        }
        strcpy(warm_service, q->service);
        strcpy(warm_confdir, q->confdir);
}

/* The child answers ringqd itself; the helper only speaks for a child
 * that died without answering (exit status other than 0). */
static int serve(int fd, const struct req *q)
{
        struct reply rep = { .seq = q->seq };
        pid_t helper = getpid(), pid;
        int status = 0;

        warm_up(q);
        pid = fork();
        if (pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != helper)
                        _exit(1);
                (void)session(q, &rep);
                _exit(send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) == (ssize_t)sizeof(rep) ? 0 : 1);
        }
        if (pid < 0)
                (void)fail(&rep, -errno, "fork: %m");
        else {
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (status == 0)
                        return 1;
                (void)fail(&rep, -ECHILD, "session process ended without an answer (wait status %#x)", status);
        }
        if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) < 0)
                return errno == EPIPE || errno == ECONNRESET ? 0 : -errno;
        return 1;
}

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

int limits_helper_main(int fd)
{
        struct ucred peer;
        socklen_t len = sizeof(peer);
        gid_t groups[64];
        int ngroups = ELEMENTSOF(groups), r = 0;

        /* The socket's creator is ringqd: if it is no longer our parent
         * it died before the death signal was set. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
                return log_error_errno(-errno, "limits helper: fd %d", fd);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != peer.pid)
                return 0;
        /* Modules PAM runs (pam_exec) must not inherit it. */
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        /* Load the NSS modules for users and groups once, here, rather
         * than in every child (libnss_systemd alone is most of a request). */
        (void)getpwuid(0);
        (void)getgrgid(0);
        (void)getgrouplist("root", 0, groups, &ngroups);

        for (;;) {
                struct {
                        struct req q;
                        char excess;
                } buf;
                ssize_t n = recv(fd, &buf, sizeof(buf), 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : 0;
                        break;
                }
                if ((size_t)n != sizeof(buf.q) || !TERMINATED(buf.q.user) || !TERMINATED(buf.q.service) ||
                    !TERMINATED(buf.q.confdir) || strchr(buf.q.service, '/')) {
                        log_error("limits helper: malformed request of %zd bytes", n);
                        r = -EBADMSG;
                        break;
                }
                r = serve(fd, &buf.q);
                if (r <= 0)
                        break;
        }
        if (warm)
                pam_end(warm, PAM_SUCCESS);
        warm = NULL;
        return r < 0 ? r : 0;
}
