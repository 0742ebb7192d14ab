/* ringqd: set-up order, the main loop, and an orderly end.
 *
 * Order matters: config, then the state directory and its lock, then the
 * database and the recovery of what an earlier run left, then the socket,
 * and only then READY=1 — a client that connects after READY finds the
 * queue as it will be served.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "conn.h"
#include "log.h"
#include "login_limits.h"
#include "procs.h"
#include "recover.h"
#include "reexec.h"
#include "ringq/protocol.h"
#include "users.h"

static struct config_option *arg_opts;
static size_t arg_nopts;
static char *arg_config;
static bool arg_check_config;

enum { OPT_CHECK_CONFIG = 900, OPT_KEY = 1000 /* + index of the key */ };

static void help(void)
{
        printf("Usage: ringqd [OPTION...]\n"
               "Run the ringq job daemon in the foreground.\n\n"
               "  -c, --config=FILE        config file (default %s; a missing default is fine)\n"
               "      --check-config       check the config file and the options, then exit:\n"
               "                           0 if they are fine, 78 with every error if not\n",
               RINGQ_CONFIG_DEFAULT);
        for (size_t i = 0; i < config_nkeys; i++) {
                const struct config_key *k = config_key_at(i);
                char opt[64];
                snprintf(opt, sizeof(opt), "--%s=VALUE", k->flag);
                printf("      %-22s %s (key %s, default %s)\n", opt, k->help, k->key, k->def);
        }
        printf("  -h, --help               show this help\n"
               "  -V, --version            show the version\n\n"
               "Durations: 250ms, 30s, 5m, 2h, 7d (a bare number is seconds).\n"
               "Sizes: 65536, 64K, 16M, 1G. Flags win over the config file.\n"
               "Exit status: 0 ok; 1 a failure after the configuration was read;\n"
               "64 usage; 78 configuration error.\n");
}

/* A usage error: one line that names ringqd (never argv[0], which may be
 * any path) and the way to --help. */
_printf_(1, 2) static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("ringqd: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'ringqd --help'.\n", stderr);
        return -EINVAL;
}

/* 1: go on; 0: done (help, version); -EINVAL: a usage error, told. */
static int parse_args(int argc, char **argv)
{
        _cleanup_free_ struct option *opts = NULL;
        size_t n = 0;
        int c;

        opts = calloc(config_nkeys + 5, sizeof(*opts));
        arg_opts = calloc((size_t)argc, sizeof(*arg_opts));
        if (!opts || !arg_opts)
                return -ENOMEM;
        for (size_t i = 0; i < config_nkeys; i++)
                opts[n++] = (struct option){ config_key_at(i)->flag, required_argument, NULL, OPT_KEY + (int)i };
        opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
        opts[n++] = (struct option){ "check-config", no_argument, NULL, OPT_CHECK_CONFIG };
        opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };

        /* getopt's own messages start with argv[0]. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:hV", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case OPT_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("ringqd %s (protocol %d)\n", RINGQ_VERSION, RINGQ_PROTOCOL);
                        return 0;
                case ':':
                        return usage_error("option '%s' needs a value", argv[optind - 1]);
                case '?':
                        if (optopt > 0 && optopt < 0x100 && argv[optind - 1][1] != '-')
                                return usage_error("unknown option '-%c'", optopt);
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                default:
                        arg_opts[arg_nopts++] = (struct config_option){ config_key_at((size_t)(c - OPT_KEY))->flag,
                                                                        optarg };
                        break;
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        return 1;
}

static const char *config_path(void)
{
        return arg_config ? arg_config : RINGQ_CONFIG_DEFAULT;
}

/* Defaults, then the file, then flags; every error in *ret_err. */
static int load_config(struct config *cfg, char **ret_err)
{
        return config_load(cfg, config_path(), !arg_config, arg_opts, arg_nopts, ret_err);
}

/* Each error of a load on a line of its own, as --check-config prints
 * them; returns their number. */
static unsigned log_config_errors(int r, const char *errs)
{
        unsigned n = 0;

        if (!errs) {
                log_error("configuration: %s", strerror(-r));
                return 1;
        }
        for (const char *p = errs; *p; n++) {
                size_t len = strcspn(p, "\n");
                log_error("%.*s", (int)len, p);
                p += len + (p[len] == '\n');
        }
        return n;
}

/* --check-config: everything a start reads, nothing it opens. */
static int check_config(void)
{
        struct config cfg;
        char *err = NULL;
        int r;

        r = load_config(&cfg, &err);
        if (r < 0)
                log_config_errors(r, err);
        else if (cfg.file)
                printf("ringqd: %s: configuration ok\n", cfg.file);
        else
                printf("ringqd: %s: not present; configuration ok with the defaults\n", config_path());
        free(err);
        config_done(&cfg);
        return r == -EINVAL ? EX_CONFIG : r < 0 ? EX_OSERR : EX_OK;
}

/* The owner's login limits for every job (PAM's session stack, in a
 * helper); without the service file jobs get the limits ringqd started
 * with. Not being able to start the helper is logged, not fatal: jobs
 * still run, under those start-up limits. */
static void start_login_limits(struct server *s)
{
        char *err = NULL;
        const char *service = strcmp(s->cfg.pam_service, "none") == 0 ? NULL : s->cfg.pam_service;

        if (limits_start(service, getenv("RINGQ_PAM_CONFDIR"), &err) < 0)
                log_warning("login limits: %s; jobs get the limits ringqd started with", err ? err : "cannot start");
        free(err);
}

static void restart_key_changed(const char *key)
{
        log_warning("reload: %s changed; it takes effect after `ringq admin reexec` (running jobs go on) or a "
                    "restart of ringqd", key);
}

static void server_reload(struct server *s)
{
        struct config nc;
        char *err = NULL;
        int r;

        notify_reloading(s);
        r = load_config(&nc, &err);
        if (r < 0) {
                unsigned n = log_config_errors(r, err);
                log_error("reload: %u error(s); keeping the running configuration", n);
                free(err);
                config_done(&nc);
                notify_ready(s);
                return;
        }
        config_keep_restart_keys(&nc, &s->cfg, restart_key_changed);
        config_done(&s->cfg);
        s->cfg = nc;
        log_max_level = s->cfg.log_level;
        store_set_busy_timeout(s->store, s->cfg.busy_timeout_ms);
        users_flush();
        /* Also notices a PAM service file installed or removed since. */
        start_login_limits(s);
        log_notice("reloaded configuration: high_water %llu, low_water %llu", (unsigned long long)s->cfg.high_water,
                   (unsigned long long)s->cfg.low_water);
        /* Queue caps and marks may have changed: a queue below its new cap
         * may take a job now. */
        dispatch_configure(s);
        dispatch_update_accepting(s);
        dispatch_run(s);
        prune_poke(s);
        notify_ready(s);
}

/* Keep fds 0..2 open, so no socket or pipe of ours ever lands there. */
static void fix_stdio(void)
{
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0)
                        (void)open("/dev/null", fd ? O_WRONLY : O_RDONLY);
}

static int setup_state_dir(struct server *s)
{
        const char *dir = s->cfg.state_dir;
        int r, fd;

        /* The database itself is 0640 (umask), output/ 0700: nobody but
         * ringqd lists or opens what jobs wrote; owners get their own
         * through ringq logs (op output passes the descriptor). */
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "state dir %s", dir);
        /* After a re-exec the directory is the one whose lock this
         * process already holds: no other ringqd can slip in between. */
        fd = s->handoff ? (int)json_integer_value(json_object_get(s->handoff, "state_dirfd")) : -1;
        if (fd >= 3 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
                s->state_dirfd = fd;
        else
                s->state_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->state_dirfd < 0)
                return log_error_errno(-errno, "state dir %s", dir);
        /* One ringqd per state dir: two would both dispatch its jobs. */
        if (flock(s->state_dirfd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK) {
                        log_error("state dir %s is in use by another ringqd", dir);
                        return -EBUSY;
                }
                return log_error_errno(-errno, "state dir %s: lock", dir);
        }
        /* Prove it is writable now, not at the first submit. */
        fd = openat(s->state_dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR)
                return log_error_errno(-errno, "state dir %s is not writable", dir);
        safe_close(fd);
        if (mkdirat(s->state_dirfd, "output", 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "state dir %s: cannot create output/", dir);
        /* Also closes the 0755 of an older ringqd's directory. */
        if (fchmodat(s->state_dirfd, "output", 0700, 0) < 0)
                return log_error_errno(-errno, "state dir %s: cannot make output/ private", dir);
        s->output_dirfd = openat(s->state_dirfd, "output", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->output_dirfd < 0)
                return log_error_errno(-errno, "state dir %s: output/", dir);
        if (asprintf(&s->db_path, "%s/queue.db", dir) < 0 || asprintf(&s->output_dir, "%s/output", dir) < 0)
                return -ENOMEM;
        return 0;
}

/* Serving max_clients connections and the workers' pipes takes more fds
 * than the usual soft limit of 1024: raise it to what is needed (at most
 * the hard limit). Jobs never see it: they get their owner's login
 * limits, which start from the limits captured before this
 * (login_limits.h). */
static void setup_nofile(struct server *s)
{
        struct rlimit rl;
        rlim_t need = s->cfg.max_clients + s->cfg.root_reserve_clients + s->cfg.workers * 8 + 64;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur >= need)
                return;
        rl.rlim_cur = MIN(need, rl.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
                log_warning("file descriptor limit %llu is below the %llu that max_clients=%llu and workers=%llu "
                            "need; connections beyond it are refused",
                            (unsigned long long)rl.rlim_cur, (unsigned long long)need,
                            (unsigned long long)s->cfg.max_clients, (unsigned long long)s->cfg.workers);
}

static int setup_signals(struct server *s)
{
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        /* Re-execute in place (reexec.h). */
        sigaddset(&mask, SIGUSR2);
        /* Jobs are watched through pidfds; SIGCHLD says that something
         * a job left behind was handed to ringqd as its subreaper (or,
         * under valgrind, which knows no pidfds, that a job ended). */
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        /* Writes to a closed peer return EPIPE; a signal would kill us. */
        signal(SIGPIPE, SIG_IGN);
        s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        return s->sig_fd < 0 ? -errno : 0;
}

/* Log a start-up failure's one line and pass r on. */
static int fail(int r, char *err)
{
        log_error("%s", err ? err : strerror(-r));
        free(err);
        return r;
}

/* s->cfg is loaded. */
static int run(struct server *s)
{
        char *err = NULL;
        int r;

        log_max_level = s->cfg.log_level;
        s->uid = getuid();
        s->on_reload = server_reload;
        notify_init(s);

        setup_nofile(s);
        r = setup_signals(s);
        if (r < 0)
                return log_error_errno(r, "signals");
        r = setup_state_dir(s);
        if (r < 0)
                return r;
        r = server_open(s, &err);
        if (r < 0)
                return fail(r, err);
        start_login_limits(s);
        r = listener_open(s, &err);
        if (r < 0)
                return fail(r, err);
        notify_ready(s);
        log_notice("ringqd %s ready: %lld queued, %u workers, socket %s%s, state dir %s", RINGQ_VERSION,
                   (long long)qindex_queued(&s->dp.qi), s->nslots, s->cfg.socket, s->lis.activated ? " (from systemd)" : "",
                   s->cfg.state_dir);
        dispatch_run(s);
        r = loop_run(s);
        log_notice("stopped: %" PRIu64 " succeeded, %" PRIu64 " failed since start", s->stats.c[C_SUCCEEDED],
                   s->stats.c[C_FAILED]);
        return r;
}


int main(int argc, char **argv)
{
        struct server s;
        int r, status;

        /* The login-limits helper is ringqd itself (login_limits.h). */
        if (argc == 2 && strcmp(argv[1], "--limits-helper") == 0)
                return limits_helper_main(3) < 0 ? 1 : 0;
        /* Before ringqd raises any: what a job starts from. */
        limits_capture_base();
        reexec_save_args(argc, argv);
        server_init(&s);
        fix_stdio();
        /* queue.db, its WAL and anything else ringqd creates are not for
         * every local user: job arguments and environments are in it. */
        umask(0027);
        /* Big replies (a list of jobs with long argvs) are short-lived;
         * with the default sliding threshold glibc would serve them from
         * the heap after the first one and keep the memory. A fixed
         * threshold gives every buffer over 256 KiB back on free. */
        (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        r = parse_args(argc, argv);
        if (r <= 0) {
                free(arg_opts);
                return r == -EINVAL ? EX_USAGE : r < 0 ? EX_OSERR : EX_OK;
        }
        if (arg_check_config) {
                r = check_config();
                free(arg_opts);
                return r;
        }
        {
                char *err = NULL;
                r = load_config(&s.cfg, &err);
                if (r < 0)
                        log_config_errors(r, err);
                free(err);
        }
        /* A configuration error is the operator's to fix: 78, which the
         * unit's RestartPreventExitStatus= does not restart. */
        if (r < 0)
                status = r == -EINVAL ? EX_CONFIG : EXIT_FAILURE;
        else {
                s.handoff = reexec_take_handoff();
                status = reexec_keep_paths(&s) < 0 || run(&s) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        limits_stop();
        server_done(&s);
        free(arg_opts);
        return status;
}
