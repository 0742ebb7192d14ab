/* ringq top: a live view of ringqd, refreshed every --interval, like top(1).
 *
 * This file is the refresh loop; top_view.c lays a frame out and screen.c
 * handles the terminal. On a terminal top draws full-screen frames on the
 * alternate screen, reads keys from stdin (q quits, space refreshes) and
 * redraws on SIGWINCH. Otherwise it prints plain text frames separated by
 * a blank line (--json: the replies themselves).
 *
 * Each refresh pipelines "stats" and a "list" of running jobs sized to the
 * rows left, on one connection. Signals come through a signalfd, so nothing
 * runs in a handler, and top_main() restores the terminal on every way out
 * before it reports anything. Needs Linux signalfd.
 */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "fmt.h"
#include "top.h"

#define INTERVAL_MIN_MS 100
/* ringqd closes a connection idle for 60 s; every refresh is a request, so
 * stay well inside that. */
#define INTERVAL_MAX_MS 30000
/* A refresh is two short lines; a socket that takes none of it for this
 * long belongs to a daemon that stopped reading. */
#define FLUSH_TIMEOUT_MS 5000
/* Without a terminal: lines are cut at $COLUMNS or this, and up to this
 * many running jobs are listed. */
#define PLAIN_COLS 80
#define PLAIN_JOBS RINGQ_LIST_DEFAULT

static int64_t arg_interval_ms = 1000;
static int64_t arg_iterations;

/* The counters rates are computed from, as of one stats reply. */
struct sample {
        int64_t uptime_ms;
        int64_t n[_TOP_RATE_MAX];
};

struct top {
        client *c;
        struct term term;
        int sig_fd;
        json_t *stats;      /* the last complete refresh: the stats reply */
        json_t *jobs;       /* and its list reply; NULL if none was asked */
        json_t *new_stats;  /* the stats reply of the refresh in flight */
        json_t *err_reply;  /* an error reply that ends top */
        unsigned want;      /* replies the refresh in flight still needs */
        bool asked_jobs;
        struct sample prev;
        bool have_prev;
        double rate[_TOP_RATE_MAX];
        bool have_rate;
        int64_t next_ms;    /* CLOCK_MONOTONIC ms of the next refresh */
        int64_t sent_ms;    /* when the refresh in flight went out */
        int64_t frames;     /* refreshes completed */
        enum { FAIL_DAEMON, FAIL_CONNECT, FAIL_OUTPUT } fail; /* whose error ended top */
};

/* Draw the last complete refresh: a full screen, or a plain frame. */
static int top_draw(struct top *t)
{
        struct top_view view = {
                .stats = t->stats,
                .jobs = t->jobs,
                .have_rate = t->have_rate,
                .interval_ms = arg_interval_ms,
        };
        _cleanup_free_ char *buf = NULL;
        int64_t waited = client_now_ms() - t->sent_ms;
        struct frame fr;
        size_t len = 0;
        int r, k;

        if (!t->stats || arg_json)
                return 0;
        memcpy(view.rate, t->rate, sizeof(view.rate));
        if (t->want > 0 && waited >= arg_interval_ms)
                view.stale_ms = waited;
        r = fr_begin(&fr, &t->term, &buf, &len);
        if (r == 0) {
                if (!t->term.screen && t->frames > 1)
                        fputc('\n', fr.f); /* between plain frames */
                r = top_render(&fr, &view);
                k = fr_end(&fr);
                if (r == 0)
                        r = k;
        }
        if (r == 0)
                r = write_all(STDOUT_FILENO, buf, len);
        if (r < 0)
                t->fail = FAIL_OUTPUT;
        return r;
}

/* ---- refreshes ---- */

static unsigned jobs_rows(const struct top *t)
{
        unsigned head;

        if (!t->term.screen)
                return PLAIN_JOBS;
        head = TOP_HEAD_ROWS + top_queue_rows(t->stats, t->term.cols, t->term.rows);
        if (t->term.rows <= head)
                return 0;
        return t->term.rows - head < RINGQ_LIST_MAX ? t->term.rows - head : RINGQ_LIST_MAX;
}

/* Send the requests of one refresh. */
static int top_ask(struct top *t)
{
        _cleanup_json_ json_t *stats = json_pack("{s:s}", "op", "stats");
        _cleanup_json_ json_t *list = NULL;
        unsigned rows = jobs_rows(t);
        int r;

        if (!stats)
                return -ENOMEM;
        r = client_queue(t->c, stats);
        if (r < 0)
                return r;
        t->want = 1;
        t->asked_jobs = rows > 0;
        if (t->asked_jobs) {
                list = json_pack("{s:s,s:s,s:I}", "op", "list", "state", "running", "limit", (json_int_t)rows);
                if (!list)
                        return -ENOMEM;
                r = client_queue(t->c, list);
                if (r < 0)
                        return r;
                t->want++;
        }
        return client_flush(t->c, FLUSH_TIMEOUT_MS);
}

/* Rates from the counters' growth over ringqd's own uptime clock. */
static void top_rates(struct top *t)
{
        const json_t *c = json_object_get(t->stats, "counters");
        struct sample s = {
                .uptime_ms = jint(t->stats, "uptime_ms"),
                .n = {
                        [TOP_ACCEPTED] = jint(c, "accepted"),
                        [TOP_REJECTED] = jint(c, "rejected_full") + jint(c, "rejected_other"),
                        [TOP_FINISHED] = jint(c, "succeeded") + jint(c, "failed") + jint(c, "canceled"),
                },
        };
        int64_t dt = s.uptime_ms - t->prev.uptime_ms;

        t->have_rate = t->have_prev && dt > 0;
        for (int i = 0; t->have_rate && i < _TOP_RATE_MAX; i++)
                t->rate[i] = s.n[i] > t->prev.n[i] ? (double)(s.n[i] - t->prev.n[i]) * 1000.0 / (double)dt : 0;
        t->prev = s;
        t->have_prev = true;
}

/* Take the replies that have arrived: 1 when they complete a refresh, 0
 * if more are to come. An error reply is kept in t->err_reply. */
static int top_take(struct top *t)
{
        for (;;) {
                json_t *reply = NULL;
                int r = client_recv(t->c, 0, &reply);

                if (r == -ETIMEDOUT)
                        return 0;
                if (r < 0)
                        return r;
                if (t->want == 0) { /* nothing was asked */
                        json_decref(reply);
                        return -EBADMSG;
                }
                if (arg_json) {
                        emit_json(reply);
                        fflush(stdout);
                }
                if (!client_reply_ok(reply)) {
                        t->err_reply = reply;
                        return 0;
                }
                t->want--;
                if (!t->new_stats) {
                        t->new_stats = reply;
                } else {
                        json_decref(t->jobs);
                        t->jobs = reply;
                }
                if (t->want > 0)
                        continue;
                json_decref(t->stats);
                t->stats = TAKE_PTR(t->new_stats);
                if (!t->asked_jobs) {
                        json_decref(t->jobs);
                        t->jobs = NULL;
                }
                top_rates(t);
                t->frames++;
                return 1;
        }
}

/* A key: 1 to quit, else 0. */
static int top_key(struct top *t)
{
        char buf[64];
        ssize_t n = read(t->term.key_fd, buf, sizeof(buf));

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return 1; /* the terminal hung up */
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == 'q' || buf[i] == 'Q')
                        return 1;
                if (buf[i] == ' ' && t->want == 0)
                        t->next_ms = 0; /* refresh now */
        }
        return 0;
}

/* After a stop of any length: ringqd closes a connection idle for 60 s, so
 * go on with a new one (and a new refresh). */
static int top_reconnect(struct top *t)
{
        client *c;
        int r;

        r = client_connect(client_path(t->c), &c);
        if (r < 0) {
                t->fail = FAIL_CONNECT;
                return r;
        }
        client_free(t->c);
        t->c = c;
        json_decref(t->new_stats);
        t->new_stats = NULL;
        t->want = 0;
        t->next_ms = 0;
        return 0;
}

/* A signal: its number if it ends top, else 0. */
static int top_signal(struct top *t)
{
        struct signalfd_siginfo si;
        ssize_t n = read(t->sig_fd, &si, sizeof(si));
        sigset_t cont;
        int r;

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n != sizeof(si))
                return -EIO;
        switch (si.ssi_signo) {
        case SIGWINCH:
                term_size(&t->term);
                return top_draw(t);
        case SIGTSTP:
                /* Give the shell its terminal back and stop; once woken,
                 * take the SIGCONT that did it and resume right here. */
                term_leave(&t->term);
                (void)kill(getpid(), SIGSTOP);
                sigemptyset(&cont);
                sigaddset(&cont, SIGCONT);
                (void)sigtimedwait(&cont, NULL, &(struct timespec){ 0, 0 });
                __attribute__((fallthrough));
        case SIGCONT:
                /* Whoever stopped us may have reset the terminal. */
                term_leave(&t->term);
                r = term_enter(&t->term);
                if (r < 0) {
                        t->fail = FAIL_OUTPUT;
                        return r;
                }
                term_size(&t->term);
                r = top_reconnect(t);
                return r < 0 ? r : top_draw(t);
        default:
                return (int)si.ssi_signo;
        }
}

/* Refresh until a key, a signal, an error or -n ends it: 0 or a negative
 * errno, with *ret_sig set to a signal that ended it. Events come before a
 * refresh is sent, so one that replaced the connection (SIGCONT) is seen
 * first. */
static int top_loop(struct top *t, int *ret_sig)
{
        for (;;) {
                struct pollfd p[3] = {
                        { .fd = client_fd(t->c), .events = POLLIN }, /* replies, or ringqd going away */
                        { .fd = t->sig_fd, .events = POLLIN },
                        { .fd = t->term.key_fd, .events = POLLIN },  /* -1: ignored */
                };
                int64_t now = client_now_ms();
                int r;

                if (poll(p, 3, t->next_ms > now ? (int)(t->next_ms - now) : 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents) {
                        r = top_signal(t);
                        if (r != 0) {
                                if (r > 0)
                                        *ret_sig = r;
                                return r < 0 ? r : 0;
                        }
                }
                if (p[2].revents) {
                        r = top_key(t);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }
                if (p[0].revents) {
                        r = top_take(t);
                        if (r < 0 || t->err_reply)
                                return r;
                        if (r > 0) {
                                r = top_draw(t);
                                if (r < 0)
                                        return r;
                                if (arg_iterations > 0 && t->frames >= arg_iterations)
                                        return 0;
                        }
                }
                now = client_now_ms();
                if (now < t->next_ms)
                        continue;
                if (t->want == 0) {
                        r = top_ask(t);
                        if (r < 0)
                                return r;
                        t->sent_ms = now;
                } else if (t->term.screen) {
                        r = top_draw(t); /* says "no reply for ..." */
                        if (r < 0)
                                return r;
                }
                t->next_ms = now + arg_interval_ms;
        }
}

static int top_main(void)
{
        static const int quit_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
        struct top t = { .sig_fd = -1, .term = { .key_fd = -1 } };
        sigset_t mask, old;
        int r = 0, code = 0, sig = 0;

        t.term.screen = isatty(STDOUT_FILENO) && !arg_json;
        code = open_client(&t.c);
        if (code)
                return code;
        (void)setlocale(LC_CTYPE, "");
        t.term.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

        sigemptyset(&mask);
        for (size_t i = 0; i < sizeof(quit_signals) / sizeof(quit_signals[0]); i++)
                sigaddset(&mask, quit_signals[i]);
        if (t.term.screen) {
                sigaddset(&mask, SIGWINCH);
                sigaddset(&mask, SIGTSTP);
                sigaddset(&mask, SIGCONT);
        }
        (void)sigprocmask(SIG_BLOCK, &mask, &old);
        t.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (t.sig_fd < 0) {
                r = -errno;
                goto out;
        }
        if (t.term.screen) {
                term_size(&t.term);
                if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t.term.saved) == 0)
                        t.term.key_fd = STDIN_FILENO;
                r = term_enter(&t.term);
                if (r < 0) {
                        t.fail = FAIL_OUTPUT;
                        goto out;
                }
        } else {
                t.term.cols = fmt_terminal_width();
                if (t.term.cols == 0)
                        t.term.cols = PLAIN_COLS;
        }
        r = top_loop(&t, &sig);
out:
        /* The screen is back before anything is reported. */
        term_leave(&t.term);
        if (t.err_reply) {
                code = reply_error(t.err_reply, NULL);
        } else if (r < 0 && t.fail == FAIL_OUTPUT) {
                fprintf(stderr, "ringq: writing output: %s\n", strerror(-r));
                code = RINGQ_EXIT_SOFTWARE;
        } else if (r < 0 && t.fail == FAIL_CONNECT) {
                char advice[512] = "";

                fprintf(stderr, "ringq: cannot connect to %s: %s\n", client_path(t.c), strerror(-r));
                if (r == -EACCES)
                        client_access_advice(client_path(t.c), advice, sizeof(advice));
                if (advice[0])
                        fprintf(stderr, "ringq: %s\n", advice);
                code = RINGQ_EXIT_UNREACHABLE;
        } else if (r < 0) {
                code = conn_error(client_path(t.c), r);
        }
        if (t.sig_fd >= 0)
                close(t.sig_fd);
        client_free(t.c);
        json_decref(t.stats);
        json_decref(t.jobs);
        json_decref(t.new_stats);
        json_decref(t.err_reply);
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        if (sig > 0) {
                /* Die of the signal, so a calling shell sees what
                 * happened (and stops a script on Ctrl-C). */
                fflush(stdout);
                (void)raise(sig);
                return 128 + sig;
        }
        return code;
}

int verb_top(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "iterations", required_argument, NULL, 'n' },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT "n:", opts, NULL)) != -1) {
                if (c == OPT_INTERVAL) {
                        if ((r = parse_dur(v, "--interval", optarg, &arg_interval_ms)))
                                return r;
                        if (arg_interval_ms < INTERVAL_MIN_MS)
                                arg_interval_ms = INTERVAL_MIN_MS;
                        if (arg_interval_ms > INTERVAL_MAX_MS)
                                arg_interval_ms = INTERVAL_MAX_MS;
                } else if (c == 'n') {
                        if (parse_i64(optarg, 1, INT32_MAX, &arg_iterations) < 0)
                                return usage_error(v, "iterations must be a positive integer, not '%s'", optarg);
                } else if ((r = common_opt(v, c, argv)) >= 0) {
                        return r;
                }
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        return top_main();
}
