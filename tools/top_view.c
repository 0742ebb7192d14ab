/* The layout of a ringq top frame (see top.h). At 80x24:
 *
 *   title: state, version, refresh period or "no reply for", clock
 *   queue fill and worker slots as bars, with the numbers
 *   accept/reject/finish rates
 *   latency p50/p99/max of commit, queue_wait, run | connections, uptime,
 *                                                   db and WAL sizes
 *   two rows of bounds hit (refused, stalls, ...)
 *   blank, then the queues (name, queued, running/cap, paused), as many
 *   to a row as the width holds and in at most a third of the rows below
 *   the head, and a blank (none of it if ringqd reports no queues)
 *   running jobs to the bottom: ID, UID, AGE, COMMAND
 *
 * Wider terminals get longer bars and commands and more queues to a row,
 * taller ones more queues and jobs.
 * Missing fields show as "-" or 0: a newer daemon must not break top.
 */
#include "top.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fmt.h"

#define BAR_MIN 10
/* Column of the connections/uptime/sizes block beside the latencies. */
#define INFO_COL 44
/* Longer queue names are cut in the panel (ringqd allows 64). */
#define QUEUE_NAME_W 20
/* Between two queues on one row. */
#define QUEUE_GAP 4

_Static_assert(TOP_HEAD_ROWS == 1 + 2 + 1 + 4 + 2 + 1 + 1,
               "title, bars, rates, latency, bounds, blank, jobs header");

static char *ms_str(char *buf, size_t n, const json_t *v)
{
        double ms = json_number_value(v);

        if (!json_is_number(v))
                snprintf(buf, n, "-");
        else if (ms < 10)
                snprintf(buf, n, "%.2fms", ms);
        else if (ms < 1000)
                snprintf(buf, n, "%.0fms", ms);
        else
                fmt_duration(buf, n, (int64_t)ms);
        return buf;
}

static char *bytes_str(char *buf, size_t n, const json_t *v)
{
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(buf, n, "-");
                return buf;
        }
        return fmt_bytes(buf, n, (uint64_t)json_integer_value(v));
}

/* "state" says draining too; older replies only have the bool. */
static const char *state_word(const json_t *st)
{
        const char *s = json_string_value(json_object_get(st, "state"));

        if (s)
                return s;
        return json_is_false(json_object_get(st, "accepting")) ? "rejecting" : "accepting";
}

static const char *state_sgr(const char *state)
{
        if (strcmp(state, "accepting") == 0)
                return "\033[1;30;42m";
        if (strcmp(state, "rejecting") == 0)
                return "\033[1;37;41m";
        /* Both pass: ringqd stops or becomes a new process. */
        if (strcmp(state, "draining") == 0 || strcmp(state, "reexecuting") == 0)
                return "\033[1;30;43m";
        return "\033[1;7m";
}

static void draw_title(struct frame *fr, const struct top_view *v)
{
        const char *state = state_word(v->stats);
        char d[FMT_BUF], clock[16];
        time_t now = time(NULL);
        struct tm tm;

        fr_text(fr, "ringq top  ");
        fr_attr(fr, state_sgr(state));
        fr_printf(fr, " %s ", state);
        fr_attr(fr, SGR_RESET);
        /* Here rather than in the queues panel, which a short screen
         * leaves out: nothing starts while it shows. */
        if (json_is_true(json_object_get(v->stats, "all_paused"))) {
                fr_text(fr, " ");
                fr_attr(fr, "\033[1;30;43m");
                fr_text(fr, " all paused ");
                fr_attr(fr, SGR_RESET);
        }
        fr_printf(fr, "  ringqd %s", json_string_value(json_object_get(v->stats, "version")) ?: "?");
        if (v->stale_ms > 0) {
                fr_attr(fr, SGR_BOLD);
                fr_printf(fr, "  no reply for %s", fmt_duration(d, sizeof(d), v->stale_ms));
                fr_attr(fr, SGR_RESET);
        } else {
                fr_printf(fr, "  every %s", fmt_duration(d, sizeof(d), v->interval_ms));
        }
        if (localtime_r(&now, &tm) && strftime(clock, sizeof(clock), "%H:%M:%S", &tm) &&
            fr_room(fr) >= 2 + strlen(clock)) {
                fr_pad_to(fr, fr->term->cols - (unsigned)strlen(clock));
                fr_text(fr, clock);
        }
        fr_newline(fr);
}

/* "[####....|...]": val of max, with mark (if 0 <= mark < max) shown as
 * '|' where the fill has not reached it. */
static void draw_bar(struct frame *fr, unsigned width, int64_t val, int64_t max, int64_t mark,
                     const char *sgr)
{
        unsigned fill = 0, at = UINT32_MAX;

        if (max > 0 && val > 0) {
                double f = val >= max ? width : (double)val / (double)max * width;

                fill = (unsigned)f;
                if (fill < width && f > fill)
                        fill++; /* any use at all shows */
        }
        if (max > 0 && mark >= 0 && mark < max)
                at = (unsigned)((double)mark / (double)max * width);
        fr_text(fr, "[");
        fr_attr(fr, sgr);
        for (unsigned i = 0; i < fill; i++)
                fr_text(fr, "#");
        fr_attr(fr, SGR_RESET);
        for (unsigned i = fill; i < width; i++)
                fr_text(fr, i == at ? "|" : ".");
        fr_text(fr, "]");
}

static void draw_bars(struct frame *fr, const json_t *st)
{
        int64_t queued = jint(st, "queued"), high = jint(st, "high_water"), low = jint(st, "low_water");
        int64_t running = jint(st, "running"), workers = jint(st, "workers");
        char qn[48], wn[48], lown[48];
        size_t numw, used;
        unsigned width;

        snprintf(qn, sizeof(qn), "%" PRId64 "/%" PRId64, queued, high);
        snprintf(wn, sizeof(wn), "%" PRId64 "/%" PRId64, running, workers);
        snprintf(lown, sizeof(lown), "  (low water %" PRId64 ")", low);
        numw = strlen(qn) > strlen(wn) ? strlen(qn) : strlen(wn);
        /* "queued  [" bar "]  " number suffix; both bars as wide. */
        used = 9 + 3 + numw + strlen(lown);
        width = fr->term->cols > used + BAR_MIN ? fr->term->cols - (unsigned)used : BAR_MIN;

        fr_text(fr, "queued  ");
        draw_bar(fr, width, queued, high, low,
                 queued >= high ? "\033[1;31m" : queued > low ? "\033[1;33m" : "\033[32m");
        fr_printf(fr, "  %*s%s", (int)numw, qn, lown);
        fr_newline(fr);
        fr_text(fr, "workers ");
        draw_bar(fr, width, running, workers, -1, "\033[36m");
        fr_printf(fr, "  %*s", (int)numw, wn);
        fr_newline(fr);
}

static void draw_rates(struct frame *fr, const struct top_view *v)
{
        static const char *const names[_TOP_RATE_MAX] = {
                [TOP_ACCEPTED] = "accepted", [TOP_REJECTED] = "rejected", [TOP_FINISHED] = "finished",
        };

        fr_text(fr, "rates/s");
        for (int i = 0; i < _TOP_RATE_MAX; i++) {
                fr_printf(fr, "   %s ", names[i]);
                if (!v->have_rate) {
                        fr_text(fr, "-");
                        continue;
                }
                if (i == TOP_REJECTED && v->rate[i] > 0)
                        fr_attr(fr, "\033[1;31m");
                fr_printf(fr, "%.1f", v->rate[i]);
                fr_attr(fr, SGR_RESET);
        }
        fr_newline(fr);
}

/* The latency table, with connections, uptime and sizes beside it. */
static void draw_latency(struct frame *fr, const json_t *st)
{
        static const char *const kinds[] = { "commit", "queue_wait", "run" };
        const json_t *lat = json_object_get(st, "latency_ms");
        char a[FMT_BUF], b[FMT_BUF], c[FMT_BUF];

        fr_attr(fr, SGR_BOLD);
        fr_printf(fr, "%-12s %9s %9s %9s", "latency", "p50", "p99", "max");
        fr_attr(fr, SGR_RESET);
        fr_pad_to(fr, INFO_COL);
        fr_printf(fr, "connections  %" PRId64 "/%" PRId64, jint(st, "connections"), jint(st, "max_clients"));
        fr_newline(fr);
        for (int i = 0; i < 3; i++) {
                const json_t *k = json_object_get(lat, kinds[i]);
                const json_t *v = json_object_get(k, "samples");

                /* An empty window reports zeros; they are no measurement. */
                if (json_is_integer(v) && json_integer_value(v) == 0)
                        k = NULL;
                fr_printf(fr, "  %-10s %9s %9s %9s", kinds[i], ms_str(a, sizeof(a), json_object_get(k, "p50")),
                          ms_str(b, sizeof(b), json_object_get(k, "p99")),
                          ms_str(c, sizeof(c), json_object_get(k, "max")));
                fr_pad_to(fr, INFO_COL);
                switch (i) {
                case 0:
                        v = json_object_get(st, "uptime_ms");
                        fr_printf(fr, "uptime       %s",
                                  json_is_integer(v) ? fmt_duration(a, sizeof(a), json_integer_value(v)) : "-");
                        break;
                case 1:
                        fr_printf(fr, "database     %s", bytes_str(a, sizeof(a), json_object_get(st, "db_bytes")));
                        break;
                default:
                        fr_printf(fr, "wal          %s", bytes_str(a, sizeof(a), json_object_get(st, "wal_bytes")));
                }
                fr_newline(fr);
        }
}

/* Counters of limits ringqd enforced, on two lines; what does not fit is
 * left out. Counts above zero stand out. */
static void draw_bounds(struct frame *fr, const json_t *st)
{
        static const struct {
                const char *key, *label;
        } bounds[] = {
                { "clients_refused", "refused" },      { "pipeline_stalls", "stalls" },
                { "slow_readers_closed", "slow_readers" }, { "idle_closed", "idle_closed" },
                { "too_large", "too_large" },          { "output_truncated", "truncated" },
                { "store_busy", "store_busy" },        { "store_errors", "store_errors" },
                { "killed", "killed" },                { "pruned", "pruned" },
                /* The per-user bounds: shown when the terminal is wide. */
                { "clients_refused_user", "refused/user" }, { "rejected_user", "full/user" },
                { "orphans_killed", "orphans" },
        };
        const json_t *counters = json_object_get(st, "counters");
        unsigned line = 0; /* 0 or 1 */

        fr_text(fr, "bounds");
        for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
                const json_t *v = json_object_get(counters, bounds[i].key);
                char num[24];

                if (!json_is_integer(v))
                        continue;
                snprintf(num, sizeof(num), "%" PRId64, (int64_t)json_integer_value(v));
                if (2 + strlen(bounds[i].label) + 1 + strlen(num) > fr_room(fr)) {
                        if (line == 1)
                                break;
                        fr_newline(fr);
                        line = 1;
                        fr_pad_to(fr, 6); /* under the values of the first line */
                }
                fr_printf(fr, "  %s ", bounds[i].label);
                if (json_integer_value(v) > 0)
                        fr_attr(fr, SGR_BOLD);
                fr_text(fr, num);
                fr_attr(fr, SGR_RESET);
        }
        /* Always two rows, so the rows left for jobs are known before the
         * reply (TOP_HEAD_ROWS). */
        for (; line < 2; line++)
                fr_newline(fr);
}

/* ---- the queues panel ---- */

struct qpanel {
        const json_t **qs;   /* sorted by name; the caller frees */
        size_t n;
        size_t shown;        /* slots drawn; with n > shown the last says
                                how many are left out */
        unsigned namew, qw, rw, ncols, body;
};

static void qp_running(char *buf, size_t n, const json_t *q)
{
        const json_t *cap = json_object_get(q, "workers");

        if (json_is_integer(cap))
                snprintf(buf, n, "%" PRId64 "/%" PRId64, jint(q, "running"), (int64_t)json_integer_value(cap));
        else
                snprintf(buf, n, "%" PRId64 "/-", jint(q, "running"));
}

/* Widths from every queue, so columns stay put whichever are shown; then
 * as many to a row as cols holds and, on a screen, body rows out of a
 * third of those below the head (with the header and the blank after
 * them). No queues or no room: body 0. 0 or -ENOMEM. */
static int qp_layout(struct qpanel *p, const json_t *stats, unsigned cols, unsigned rows)
{
        unsigned entw, below, most;
        size_t need;
        int r;

        *p = (struct qpanel){ .namew = 5, .qw = 6, .rw = 7 };
        r = fmt_queues_sorted(json_object_get(stats, "queues"), &p->qs, &p->n);
        if (r < 0 || p->n == 0)
                return r;
        for (size_t i = 0; i < p->n; i++) {
                size_t len = strlen(json_string_value(json_object_get(p->qs[i], "name")));
                char num[48];

                if (len > p->namew)
                        p->namew = len < QUEUE_NAME_W ? (unsigned)len : QUEUE_NAME_W;
                len = (size_t)snprintf(num, sizeof(num), "%" PRId64, jint(p->qs[i], "queued"));
                if (len > p->qw)
                        p->qw = (unsigned)len;
                qp_running(num, sizeof(num), p->qs[i]);
                if (strlen(num) > p->rw)
                        p->rw = (unsigned)strlen(num);
        }
        /* name, queued, running, then "  paused" */
        entw = p->namew + 2 + p->qw + 2 + p->rw + 8;
        p->ncols = (cols + QUEUE_GAP) / (entw + QUEUE_GAP);
        if (p->ncols == 0)
                p->ncols = 1; /* cut at the edge */
        need = (p->n + p->ncols - 1) / p->ncols;
        if (rows == 0) {
                p->body = (unsigned)need;
        } else {
                below = rows > TOP_HEAD_ROWS ? rows - TOP_HEAD_ROWS : 0;
                most = below / 3 > 2 ? below / 3 - 2 : 0;
                p->body = need < most ? (unsigned)need : most;
        }
        p->shown = (size_t)p->body * p->ncols < p->n ? (size_t)p->body * p->ncols : p->n;
        return 0;
}

unsigned top_queue_rows(const json_t *stats, unsigned cols, unsigned rows)
{
        struct qpanel p;
        unsigned n = 0;

        /* Out of memory: no room kept; the frame drops what overflows. */
        if (qp_layout(&p, stats, cols, rows) == 0 && p.body > 0)
                n = 1 + p.body + 1;
        free(p.qs);
        return n;
}

static void draw_queue(struct frame *fr, const struct qpanel *p, const json_t *q)
{
        const char *name = json_string_value(json_object_get(q, "name"));
        const json_t *hw = json_object_get(q, "high_water");
        char run[48];
        bool full = json_is_integer(hw) && jint(q, "queued") >= json_integer_value(hw);

        if (strlen(name) > p->namew)
                fr_printf(fr, "%.*s~", (int)p->namew - 1, name);
        else
                fr_printf(fr, "%-*s", (int)p->namew, name);
        fr_text(fr, "  ");
        /* At its own high water the queue rejects submits. */
        if (full)
                fr_attr(fr, "\033[1;31m");
        fr_printf(fr, "%*" PRId64, (int)p->qw, jint(q, "queued"));
        fr_attr(fr, SGR_RESET);
        qp_running(run, sizeof(run), q);
        fr_printf(fr, "  %*s", (int)p->rw, run);
        if (json_is_true(json_object_get(q, "paused"))) {
                fr_text(fr, "  ");
                fr_attr(fr, "\033[1;33m");
                fr_text(fr, "paused");
                fr_attr(fr, SGR_RESET);
        }
}

static int draw_queues(struct frame *fr, const struct top_view *v)
{
        struct qpanel p;
        unsigned entw;
        int r;

        r = qp_layout(&p, v->stats, fr->term->cols, fr->term->rows);
        if (r < 0 || p.body == 0)
                goto out;
        entw = p.namew + 2 + p.qw + 2 + p.rw + 8;
        fr_attr(fr, SGR_BOLD);
        for (unsigned c = 0; c < p.ncols && c < p.n; c++) {
                fr_pad_to(fr, c * (entw + QUEUE_GAP));
                fr_printf(fr, "%-*s  %*s  %*s", (int)p.namew, "queue", (int)p.qw, "queued", (int)p.rw, "running");
        }
        fr_attr(fr, SGR_RESET);
        for (size_t i = 0; i < p.shown; i++) {
                if (i % p.ncols == 0)
                        fr_newline(fr);
                fr_pad_to(fr, (unsigned)(i % p.ncols) * (entw + QUEUE_GAP));
                if (i + 1 == p.shown && p.shown < p.n)
                        fr_printf(fr, "(%zu more)", p.n - i);
                else
                        draw_queue(fr, &p, p.qs[i]);
        }
        fr_newline(fr);
        fr_newline(fr);
out:
        free(p.qs);
        return r;
}

/* ---- running jobs ---- */

static int draw_jobs(struct frame *fr, const struct top_view *v)
{
        const json_t *jobs = json_object_get(v->jobs, "jobs");
        int64_t now = fmt_now_ms(), running = jint(v->stats, "running");
        int idw = 2, userw = 4;
        size_t i, shown;
        json_t *job;

        json_array_foreach(jobs, i, job) {
                char n[FMT_BUF];
                int w = snprintf(n, sizeof(n), "%" PRId64, jint(job, "id"));

                idw = w > idw ? w : idw;
                w = (int)strlen(fmt_user(n, sizeof(n), jint(job, "owner_uid")));
                userw = w > userw ? w : userw;
        }
        /* The jobs the screen holds, which may be fewer than were asked
         * for when the queues panel grew since. */
        shown = json_array_size(jobs);
        if (fr->term->rows > 0) {
                size_t room = fr->term->rows > fr->row + 1 ? fr->term->rows - fr->row - 1 : 0;

                if (room < shown)
                        shown = room;
        }
        fr_attr(fr, SGR_BOLD);
        fr_printf(fr, "%*s  %-*s  %6s  %s", idw, "ID", userw, "USER", "AGE", "COMMAND");
        fr_attr(fr, SGR_RESET);
        if (running > (int64_t)shown && shown > 0) {
                char more[64];

                snprintf(more, sizeof(more), "%zu of %" PRId64 " running", shown, running);
                if (fr_room(fr) >= 2 + strlen(more)) {
                        fr_pad_to(fr, fr->term->cols - (unsigned)strlen(more));
                        fr_text(fr, more);
                }
        }
        fr_newline(fr);
        if (json_array_size(jobs) == 0) {
                fr_text(fr, "(no job running)");
                fr_newline(fr);
        }
        json_array_foreach(jobs, i, job) {
                const json_t *started = json_object_get(job, "started_at");
                _cleanup_free_ char *cmd = NULL;
                char age[FMT_BUF], user[FMT_BUF];

                if (!fr_visible(fr))
                        break;
                cmd = fmt_argv(json_object_get(job, "argv"), false);
                if (!cmd)
                        return -ENOMEM;
                fr_printf(fr, "%*" PRId64 "  ", idw, jint(job, "id"));
                /* A name is the user database's text: through fr_text,
                 * which keeps controls off the terminal, then padded. */
                fmt_user(user, sizeof(user), jint(job, "owner_uid"));
                fr_text(fr, user);
                fr_printf(fr, "%*s  %6s  ", userw - (int)strlen(user), "",
                          json_is_integer(started) ? fmt_duration(age, sizeof(age), now - json_integer_value(started))
                                                   : "-");
                fr_text(fr, cmd);
                fr_newline(fr);
        }
        return 0;
}

int top_render(struct frame *fr, const struct top_view *v)
{
        draw_title(fr, v);
        draw_bars(fr, v->stats);
        draw_rates(fr, v);
        draw_latency(fr, v->stats);
        draw_bounds(fr, v->stats);
        fr_newline(fr);
        if (draw_queues(fr, v) < 0)
                return -ENOMEM;
        return v->jobs ? draw_jobs(fr, v) : 0;
}
