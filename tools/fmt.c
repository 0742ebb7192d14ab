/* Formatting for ringq (see fmt.h). Knows the shape of ringqd's replies but
 * tolerates missing, null and extra fields: a newer daemon must not make an
 * older CLI fail. */
#include "fmt.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define ARGV_MAX_BYTES (1u << 20) /* a status line is not the place for more */

int64_t fmt_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stream_result(FILE *f)
{
        return ferror(f) ? -EIO : 0;
}

char *fmt_duration(char *buf, size_t n, int64_t ms)
{
        const char *sign = ms < 0 ? "-" : "";
        uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
        uint64_t s = v / 1000;

        if (v < 1000)
                snprintf(buf, n, "%s%" PRIu64 "ms", sign, v);
        else if (v < 10000 && v % 1000)
                snprintf(buf, n, "%s%" PRIu64 ".%" PRIu64 "s", sign, s, v % 1000 / 100);
        else if (s < 60)
                snprintf(buf, n, "%s%" PRIu64 "s", sign, s);
        else if (s < 3600)
                snprintf(buf, n, s % 60 ? "%s%" PRIu64 "m%02" PRIu64 "s" : "%s%" PRIu64 "m",
                         sign, s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, n, s / 60 % 60 ? "%s%" PRIu64 "h%02" PRIu64 "m" : "%s%" PRIu64 "h",
                         sign, s / 3600, s / 60 % 60);
        else
                snprintf(buf, n, s / 3600 % 24 ? "%s%" PRIu64 "d%" PRIu64 "h" : "%s%" PRIu64 "d",
                         sign, s / 86400, s / 3600 % 24);
        return buf;
}

char *fmt_bytes(char *buf, size_t n, uint64_t bytes)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double x = (double)bytes;
        unsigned u = 0;

        while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
                x /= 1024;
                u++;
        }
        snprintf(buf, n, u == 0 || x >= 10 ? "%.0f %s" : "%.1f %s", x, units[u]);
        return buf;
}

char *fmt_time(char *buf, size_t n, const json_t *v, int64_t now_ms)
{
        char age[FMT_BUF], when[32];
        struct tm tm;
        time_t t;
        int64_t ms;

        if (!json_is_integer(v)) {
                snprintf(buf, n, "-");
                return buf;
        }
        ms = json_integer_value(v);
        t = (time_t)(ms / 1000);
        if (!localtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm)) {
                snprintf(buf, n, "%" PRId64, ms);
                return buf;
        }
        if (ms <= now_ms)
                snprintf(buf, n, "%s (%s ago)", when, fmt_duration(age, sizeof(age), now_ms - ms));
        else
                snprintf(buf, n, "%s (in %s)", when, fmt_duration(age, sizeof(age), ms - now_ms));
        return buf;
}

/* Names of the ids seen, so a table of many rows asks the user database
 * (which may be a network service) once per id. A name longer than a
 * slot shows as the number rather than cut. */
#define NAME_CACHE 64
static struct name_ent {
        int64_t id;
        bool group, used;
        char name[64];
} name_cache[NAME_CACHE];
static unsigned name_next;

static char *id_name(char *buf, size_t n, int64_t id, bool group)
{
        struct name_ent *e = NULL;
        const char *name = NULL;

        for (unsigned i = 0; i < NAME_CACHE; i++)
                if (name_cache[i].used && name_cache[i].id == id && name_cache[i].group == group) {
                        e = &name_cache[i];
                        break;
                }
        if (!e && id >= 0 && id < UINT32_MAX) {
                if (group) {
                        const struct group *g = getgrgid((gid_t)id);
                        name = g ? g->gr_name : NULL;
                } else {
                        const struct passwd *pw = getpwuid((uid_t)id);
                        name = pw ? pw->pw_name : NULL;
                }
                e = &name_cache[name_next++ % NAME_CACHE];
                *e = (struct name_ent){ .id = id, .group = group, .used = true };
                if (name && strlen(name) < sizeof(e->name))
                        memcpy(e->name, name, strlen(name) + 1);
        }
        if (e && e->name[0])
                snprintf(buf, n, "%s", e->name);
        else
                snprintf(buf, n, "%" PRId64, id);
        return buf;
}

char *fmt_user(char *buf, size_t n, int64_t uid)
{
        return id_name(buf, n, uid, false);
}

/* A word the shell would keep as one: printable, none of its specials. */
static bool shell_safe(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((unsigned char)*s >= 0x80 || strchr("abcdefghijklmnopqrstuvwxyz"
                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                          "0123456789@%+=:,./_-", *s)))
                        return false;
        return true;
}

size_t fmt_utf8_next(const char *s, int32_t *ret_cp)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n;
        int32_t cp;

        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0)
                n = 2, cp = p[0] & 0x1f;
        else if ((p[0] & 0xf0) == 0xe0)
                n = 3, cp = p[0] & 0x0f;
        else if ((p[0] & 0xf8) == 0xf0)
                n = 4, cp = p[0] & 0x07;
        else
                goto bad;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        goto bad;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        *ret_cp = cp;
        return n;
bad:
        *ret_cp = -1;
        return 1;
}

bool fmt_cp_unsafe(int32_t cp)
{
        return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
}

/* s with what fmt_cp_unsafe() refuses shown as '?'; a quote=true word
 * also escapes its single quotes for the shell. */
static void put_safe(FILE *f, const char *s, bool quote)
{
        while (*s) {
                int32_t cp;
                size_t n = fmt_utf8_next(s, &cp);

                if (fmt_cp_unsafe(cp))
                        fputc('?', f);
                else if (quote && cp == '\'')
                        fputs("'\\''", f);
                else
                        fwrite(s, 1, n, f);
                s += n;
        }
}

char *fmt_safe(const char *s)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        if (!f)
                return NULL;
        put_safe(f, s, false);
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

char *fmt_argv(const json_t *argv, bool quote)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f;
        size_t i;
        json_t *a;

        f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        json_array_foreach(argv, i, a) {
                const char *s = json_string_value(a);
                bool q;

                if (!s)
                        s = "?";
                if (ftell(f) > (long)ARGV_MAX_BYTES) {
                        fputs(" ...", f);
                        break;
                }
                q = quote && !shell_safe(s);
                if (i > 0)
                        fputc(' ', f);
                if (q)
                        fputc('\'', f);
                put_safe(f, s, q);
                if (q)
                        fputc('\'', f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

unsigned fmt_terminal_width(void)
{
        const char *e = getenv("COLUMNS");
        struct winsize ws;

        if (e && *e) {
                char *end;
                unsigned long v = strtoul(e, &end, 10);

                if (!*end && v > 0 && v < 100000)
                        return (unsigned)v;
        }
        if (isatty(STDOUT_FILENO)) {
                if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                        return ws.ws_col;
                return 80;
        }
        return 0;
}

/* Display columns of a UTF-8 string, counting each code point as one. */
static size_t text_width(const char *s)
{
        size_t w = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Bytes of s that fit in w columns, never splitting a code point. */
static size_t text_prefix(const char *s, size_t w)
{
        size_t i = 0, cols = 0;

        while (s[i]) {
                size_t j = i + 1;

                while (((unsigned char)s[j] & 0xc0) == 0x80)
                        j++;
                if (cols + 1 > w)
                        break;
                cols++;
                i = j;
        }
        return i;
}

struct fmt_table {
        unsigned ncols;
        bool *right;
        char **cells; /* nrows * ncols, row 0 is the header */
        size_t nrows, cap;
};

fmt_table *fmt_table_free(fmt_table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

fmt_table *fmt_table_new(unsigned ncols, const char *const *headers,
                         const bool *right_align)
{
        fmt_table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->ncols = ncols;
        t->right = calloc(ncols, sizeof(bool));
        if (!t->right)
                return fmt_table_free(t);
        if (right_align)
                memcpy(t->right, right_align, ncols * sizeof(bool));
        if (fmt_table_add(t, headers) < 0)
                return fmt_table_free(t);
        return t;
}

int fmt_table_add(fmt_table *t, const char *const *cells)
{
        if (t->nrows == t->cap) {
                size_t ncap = t->cap ? t->cap * 2 : 16;
                char **p;

                if (ncap > SIZE_MAX / sizeof(char *) / t->ncols)
                        return -ENOMEM;
                p = realloc(t->cells, ncap * t->ncols * sizeof(char *));
                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->cap = ncap;
        }
        for (unsigned i = 0; i < t->ncols; i++) {
                char *s = fmt_safe(cells[i] ? cells[i] : "-");

                if (!s) {
                        while (i > 0)
                                free(t->cells[t->nrows * t->ncols + --i]);
                        return -ENOMEM;
                }
                t->cells[t->nrows * t->ncols + i] = s;
        }
        t->nrows++;
        return 0;
}

int fmt_table_print(FILE *f, const fmt_table *t, unsigned width)
{
        size_t w[16] = { 0 }, used = 0;
        unsigned n = t->ncols < 16 ? t->ncols : 16;

        for (size_t r = 0; r < t->nrows; r++)
                for (unsigned i = 0; i < n; i++) {
                        size_t cw = text_width(t->cells[r * t->ncols + i]);
                        if (cw > w[i])
                                w[i] = cw;
                }
        for (unsigned i = 0; i + 1 < n; i++)
                used += w[i] + 2;

        for (size_t r = 0; r < t->nrows; r++) {
                for (unsigned i = 0; i < n; i++) {
                        const char *s = t->cells[r * t->ncols + i];
                        size_t pad = w[i] - text_width(s);

                        if (i + 1 == n) {
                                size_t room = width > used ? width - used : 1;
                                /* A cut cell ends with "…" so it does not
                                 * read as the whole command. */
                                if (width && text_width(s) > room)
                                        fprintf(f, "%.*s\xe2\x80\xa6", (int)text_prefix(s, room - 1), s);
                                else
                                        fputs(s, f);
                                break;
                        }
                        if (t->right[i])
                                fprintf(f, "%*s%s  ", (int)pad, "", s);
                        else
                                fprintf(f, "%s%*s  ", s, (int)pad, "");
                }
                fputc('\n', f);
        }
        return stream_result(f);
}

/* ---- job ---- */

static const char *str_or_dash(const json_t *v)
{
        const char *s = json_string_value(v);
        return s ? s : "-";
}

static char *num_or_dash(char *buf, size_t n, const json_t *v)
{
        if (json_is_integer(v))
                snprintf(buf, n, "%" PRId64, (int64_t)json_integer_value(v));
        else if (json_is_number(v))
                snprintf(buf, n, "%g", json_number_value(v));
        else
                snprintf(buf, n, "-");
        return buf;
}

#define KEY_W 15 /* longest label ("interruptions:") plus a space */

static void kv(FILE *f, const char *key, const char *val)
{
        /* A longer label (a field this CLI does not know) still gets its
         * space. */
        fprintf(f, "%s:%*s", key, strlen(key) + 1 < KEY_W ? (int)(KEY_W - 1 - strlen(key)) : 1, "");
        put_safe(f, val, false);
        fputc('\n', f);
}

/* The integers of an array as "12, 14" ("-" if it is empty; anything
 * else shows as "?"). Caller frees. */
static char *id_list(const json_t *a)
{
        char *out = NULL;
        size_t len = 0, i;
        FILE *f = open_memstream(&out, &len);
        json_t *x;

        if (!f)
                return NULL;
        json_array_foreach(a, i, x) {
                if (i > 0)
                        fputs(", ", f);
                if (json_is_integer(x))
                        fprintf(f, "%" PRId64, (int64_t)json_integer_value(x));
                else
                        fputc('?', f);
        }
        if (json_array_size(a) == 0)
                fputc('-', f);
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* "alice (1001)": the name where the user (group) database has one. */
static char *id_and_name(char *buf, size_t n, const json_t *v, bool group)
{
        char name[FMT_BUF];

        if (!json_is_integer(v)) {
                snprintf(buf, n, "-");
                return buf;
        }
        id_name(name, sizeof(name), json_integer_value(v), group);
        if (strcmp(name, num_or_dash(buf, n, v)) == 0)
                return buf;
        snprintf(buf, n, "%s (%" PRId64 ")", name, (int64_t)json_integer_value(v));
        return buf;
}

/* The delay before each next attempt, as ringqd computes it (protocol.md,
 * the life of a job); nothing for a job of one attempt, which has none. */
static void backoff_line(FILE *f, const json_t *job)
{
        const json_t *v = json_object_get(job, "backoff_ms");
        const json_t *max = json_object_get(job, "max_attempts");
        char a[FMT_BUF], line[2 * FMT_BUF];

        if (!json_is_integer(v) || (json_is_integer(max) && json_integer_value(max) <= 1))
                return;
        if (json_integer_value(v) <= 0)
                snprintf(line, sizeof(line), "none: a failed attempt is tried again at once");
        else if (json_integer_value(v) >= 3600000)
                snprintf(line, sizeof(line), "%s before each next attempt (with 20%% jitter)",
                         fmt_duration(a, sizeof(a), json_integer_value(v)));
        else
                snprintf(line, sizeof(line), "%s, doubling per attempt, at most 1h (with 20%% jitter)",
                         fmt_duration(a, sizeof(a), json_integer_value(v)));
        kv(f, "backoff", line);
}

int fmt_job(FILE *f, const json_t *job, int64_t now_ms)
{
        static const char *const known[] = {
                "id", "state", "reason", "queue", "priority", "argv", "cwd",
                "owner_uid", "owner_gid", "attempts", "max_attempts", "timeout_ms",
                "submitted_at", "run_at", "started_at", "finished_at", "exit_code",
                "signal", "stdout_path", "stderr_path", "cpu_ms", "max_rss_kb", "umask",
                "after", "waiting_for", "backoff_ms", "key", "pid", "default_timeout_ms",
                "interruptions",
        };
        char a[FMT_BUF], b[FMT_BUF], line[2 * FMT_BUF + 8];
        const json_t *started = json_object_get(job, "started_at");
        const json_t *finished = json_object_get(job, "finished_at");
        const json_t *v;
        const char *key;
        char *cmd;

        kv(f, "id", num_or_dash(a, sizeof(a), json_object_get(job, "id")));
        kv(f, "state", str_or_dash(json_object_get(job, "state")));
        /* A queued job with attempts behind it waits for its next one:
         * the reason is the last one's, not why it is queued. */
        v = json_object_get(job, "attempts");
        if (json_is_string(json_object_get(job, "reason")) && json_is_integer(v) && json_integer_value(v) > 0 &&
            strcmp(str_or_dash(json_object_get(job, "state")), "queued") == 0)
                kv(f, "last attempt", str_or_dash(json_object_get(job, "reason")));
        else
                kv(f, "reason", str_or_dash(json_object_get(job, "reason")));
        kv(f, "queue", str_or_dash(json_object_get(job, "queue")));
        kv(f, "priority", num_or_dash(a, sizeof(a), json_object_get(job, "priority")));
        cmd = fmt_argv(json_object_get(job, "argv"), true);
        if (!cmd)
                return -ENOMEM;
        kv(f, "command", cmd);
        free(cmd);
        kv(f, "cwd", str_or_dash(json_object_get(job, "cwd")));
        /* Octal, as umask(1) shows it; absent where ringqd does not say. */
        v = json_object_get(job, "umask");
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 0777) {
                snprintf(a, sizeof(a), "%04o", (unsigned)json_integer_value(v));
                kv(f, "umask", a);
        }
        kv(f, "owner", id_and_name(line, sizeof(line), json_object_get(job, "owner_uid"), false));
        kv(f, "group", id_and_name(line, sizeof(line), json_object_get(job, "owner_gid"), true));
        snprintf(line, sizeof(line), "%s of %s",
                 num_or_dash(a, sizeof(a), json_object_get(job, "attempts")),
                 num_or_dash(b, sizeof(b), json_object_get(job, "max_attempts")));
        kv(f, "attempts", line);
        /* Runs cut short by ringqd stopping or crashing; most jobs have
         * none, and then the line is left out. */
        v = json_object_get(job, "interruptions");
        if (json_is_integer(v) && json_integer_value(v) > 0)
                kv(f, "interruptions", num_or_dash(a, sizeof(a), v));
        v = json_object_get(job, "timeout_ms");
        if (json_is_integer(v)) {
                kv(f, "timeout", fmt_duration(a, sizeof(a), json_integer_value(v)));
        } else if (json_is_integer(json_object_get(job, "default_timeout_ms"))) {
                snprintf(line, sizeof(line), "%s (default)",
                         fmt_duration(a, sizeof(a), json_integer_value(json_object_get(job, "default_timeout_ms"))));
                kv(f, "timeout", line);
        } else {
                kv(f, "timeout", "ringqd's default");
        }
        backoff_line(f, job);
        kv(f, "submitted", fmt_time(line, sizeof(line), json_object_get(job, "submitted_at"), now_ms));
        kv(f, "run at", fmt_time(line, sizeof(line), json_object_get(job, "run_at"), now_ms));
        /* Dependencies, absent where ringqd does not say. "waiting for"
         * only while the job is queued: once it has ended, the ids that
         * never succeeded are no longer awaited (the reason names one). */
        v = json_object_get(job, "after");
        if (json_is_array(v)) {
                cmd = id_list(v);
                if (!cmd)
                        return -ENOMEM;
                kv(f, "after", cmd);
                free(cmd);
        }
        v = json_object_get(job, "waiting_for");
        if (json_array_size(v) > 0 && strcmp(str_or_dash(json_object_get(job, "state")), "queued") == 0) {
                cmd = id_list(v);
                if (!cmd)
                        return -ENOMEM;
                kv(f, "waiting for", cmd);
                free(cmd);
        }
        kv(f, "started", fmt_time(line, sizeof(line), started, now_ms));
        kv(f, "finished", fmt_time(line, sizeof(line), finished, now_ms));
        if (json_is_integer(started))
                kv(f, "runtime", fmt_duration(a, sizeof(a),
                                              (json_is_integer(finished) ? json_integer_value(finished) : now_ms) -
                                                      json_integer_value(started)));
        /* Usage is known once the job has ended; until then it is null
         * and the lines are left out rather than shown as "-". */
        v = json_object_get(job, "cpu_ms");
        if (json_is_integer(v))
                kv(f, "cpu", fmt_duration(a, sizeof(a), json_integer_value(v)));
        v = json_object_get(job, "max_rss_kb");
        if (json_is_integer(v) && json_integer_value(v) >= 0)
                kv(f, "max rss", fmt_bytes(a, sizeof(a), (uint64_t)json_integer_value(v) * 1024));
        kv(f, "exit code", num_or_dash(a, sizeof(a), json_object_get(job, "exit_code")));
        v = json_object_get(job, "signal");
        if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 128 &&
            sigabbrev_np((int)json_integer_value(v))) {
                snprintf(line, sizeof(line), "%d (SIG%s)", (int)json_integer_value(v),
                         sigabbrev_np((int)json_integer_value(v)));
                kv(f, "signal", line);
        } else {
                kv(f, "signal", num_or_dash(a, sizeof(a), v));
        }
        kv(f, "stdout", str_or_dash(json_object_get(job, "stdout_path")));
        kv(f, "stderr", str_or_dash(json_object_get(job, "stderr_path")));
        /* Only what there is: most jobs have no key, and only a running
         * one a pid. */
        if (json_is_string(json_object_get(job, "key")))
                kv(f, "key", json_string_value(json_object_get(job, "key")));
        if (json_is_integer(json_object_get(job, "pid")))
                kv(f, "pid", num_or_dash(a, sizeof(a), json_object_get(job, "pid")));

        /* Fields this CLI does not know yet, shown as compact JSON. */
        json_object_foreach((json_t *)job, key, v) {
                bool seen = false;
                char *s;

                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !seen; i++)
                        seen = strcmp(key, known[i]) == 0;
                if (seen || strlen(key) > 40)
                        continue;
                if (json_is_null(v) || json_is_string(v) || json_is_number(v)) {
                        kv(f, key, json_is_string(v) ? json_string_value(v) : num_or_dash(a, sizeof(a), v));
                        continue;
                }
                s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!s)
                        return -ENOMEM;
                kv(f, key, s);
                free(s);
        }
        return stream_result(f);
}

/* ---- queues ---- */

static const char *queue_name(const json_t *q)
{
        return json_string_value(json_object_get(q, "name"));
}

static int queue_cmp(const void *a, const void *b)
{
        return strcmp(queue_name(*(const json_t *const *)a), queue_name(*(const json_t *const *)b));
}

int fmt_queues_sorted(const json_t *queues, const json_t ***ret, size_t *ret_n)
{
        const json_t **qs = NULL;
        size_t n = 0, i;
        json_t *q;

        if (json_array_size(queues) > 0) {
                qs = calloc(json_array_size(queues), sizeof(*qs));
                if (!qs)
                        return -ENOMEM;
        }
        json_array_foreach(queues, i, q)
                if (queue_name(q))
                        qs[n++] = q;
        if (n > 1)
                qsort(qs, n, sizeof(*qs), queue_cmp);
        *ret = qs;
        *ret_n = n;
        return 0;
}

static const char *yes_no_dash(const json_t *v)
{
        return json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : "-";
}

int fmt_queues(FILE *f, const json_t *reply)
{
        static const char *const headers[] = { "QUEUE", "QUEUED", "RUNNING", "WORKERS", "HIGH_WATER", "PAUSED" };
        static const bool right[] = { false, true, true, true, true, false };
        const json_t **qs = NULL;
        fmt_table *t;
        size_t n;
        int r;

        r = fmt_queues_sorted(json_object_get(reply, "queues"), &qs, &n);
        if (r < 0)
                return r;
        t = fmt_table_new(6, headers, right);
        if (!t) {
                free(qs);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                char a[FMT_BUF], b[FMT_BUF], c[FMT_BUF], d[FMT_BUF];
                const char *cells[6] = {
                        queue_name(qs[i]),
                        num_or_dash(a, sizeof(a), json_object_get(qs[i], "queued")),
                        num_or_dash(b, sizeof(b), json_object_get(qs[i], "running")),
                        num_or_dash(c, sizeof(c), json_object_get(qs[i], "workers")),
                        num_or_dash(d, sizeof(d), json_object_get(qs[i], "high_water")),
                        yes_no_dash(json_object_get(qs[i], "paused")),
                };

                r = fmt_table_add(t, cells);
        }
        if (r == 0) {
                if (json_is_true(json_object_get(reply, "all_paused")))
                        fputs("all queues paused\n", f);
                /* No width: every cell is short (a queue name is at most 64
                 * bytes), and PAUSED, last, must never be cut. */
                r = fmt_table_print(f, t, 0);
        }
        fmt_table_free(t);
        free(qs);
        return r;
}

/* ---- stats ---- */

static const char *const counter_order[] = {
        "accepted", "rejected_full", "rejected_other", "started", "succeeded",
        "failed", "timed_out", "canceled", "retried", "interrupted", "adopted", "reexec_failed",
};
#define N_COUNTERS (sizeof(counter_order) / sizeof(counter_order[0]))

static const char *const top_known[] = {
        "ok", "queued", "running", "workers", "high_water", "low_water", "accepting",
        "connections", "uptime_ms", "counters", "latency_ms", "tag", "state", "pid", "reexecs",
};

static bool in_list(const char *const *list, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i], s) == 0)
                        return true;
        return false;
}

/* Calls fn for each counter: the known ones in their usual order, then any
 * others the daemon sends, so nothing new is hidden. */
static void each_counter(const json_t *counters, void (*fn)(FILE *, const char *, const json_t *, void *),
                         FILE *f, void *ud)
{
        const char *key;
        json_t *v;

        for (size_t i = 0; i < N_COUNTERS; i++) {
                v = json_object_get(counters, counter_order[i]);
                if (json_is_number(v))
                        fn(f, counter_order[i], v, ud);
        }
        json_object_foreach((json_t *)counters, key, v)
                if (json_is_number(v) && !in_list(counter_order, N_COUNTERS, key))
                        fn(f, key, v, ud);
}

static void print_number(FILE *f, const json_t *v)
{
        if (json_is_integer(v))
                fprintf(f, "%" PRId64, (int64_t)json_integer_value(v));
        else
                fprintf(f, "%.6g", json_number_value(v));
}

/* Counters three to a line, "name value, name value". */
static void human_counter(FILE *f, const char *key, const json_t *v, void *ud)
{
        unsigned *n = ud;

        if (*n > 0)
                fputs(*n % 3 ? ", " : "\n                ", f);
        fprintf(f, "%s ", key);
        print_number(f, v);
        ++*n;
}

/* One "key:   value" line of the stats block. */
static void stat_line(FILE *f, const char *key, const char *val)
{
        fprintf(f, "%s:%*s%s\n", key, strlen(key) < 15 ? (int)(15 - strlen(key)) : 1, "", val);
}

/* The per-queue block of the stats reply, in the latency block's columns;
 * nothing if the reply has no queues. */
static int stats_queues(FILE *f, const json_t *queues)
{
        const json_t **qs = NULL;
        size_t n, namew = 13;
        int r;

        r = fmt_queues_sorted(queues, &qs, &n);
        if (r < 0 || n == 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (text_width(queue_name(qs[i])) > namew)
                        namew = text_width(queue_name(qs[i]));
        fprintf(f, "queues:%*s %10s %10s %10s\n", (int)(namew - 5), "", "queued", "running", "workers");
        for (size_t i = 0; i < n; i++) {
                char a[FMT_BUF], b[FMT_BUF], c[FMT_BUF];

                fputs("  ", f);
                put_safe(f, queue_name(qs[i]), false);
                fprintf(f, "%*s %10s %10s %10s%s\n", (int)(namew - text_width(queue_name(qs[i]))), "",
                        num_or_dash(a, sizeof(a), json_object_get(qs[i], "queued")),
                        num_or_dash(b, sizeof(b), json_object_get(qs[i], "running")),
                        num_or_dash(c, sizeof(c), json_object_get(qs[i], "workers")),
                        json_is_true(json_object_get(qs[i], "paused")) ? "  paused" : "");
        }
        free(qs);
        return 0;
}

int fmt_stats(FILE *f, const json_t *st)
{
        char a[FMT_BUF], b[FMT_BUF], c[FMT_BUF], line[3 * FMT_BUF + 16];
        const json_t *lat = json_object_get(st, "latency_ms");
        const json_t *v;
        const char *key;
        int r;

        /* "state" says draining too; older replies only have the bool. */
        v = json_object_get(st, "state");
        stat_line(f, "state", json_is_string(v) ? json_string_value(v)
                              : json_is_false(json_object_get(st, "accepting")) ? "rejecting" : "accepting");
        /* Submits are still taken while paused: it is not a state of
         * their acceptance but of dispatch, so a line of its own. */
        if (json_is_true(json_object_get(st, "all_paused")))
                stat_line(f, "paused", "all queues");
        snprintf(line, sizeof(line), "%s/%s (low water %s)",
                 num_or_dash(a, sizeof(a), json_object_get(st, "queued")),
                 num_or_dash(b, sizeof(b), json_object_get(st, "high_water")),
                 num_or_dash(c, sizeof(c), json_object_get(st, "low_water")));
        stat_line(f, "queued", line);
        snprintf(line, sizeof(line), "%s/%s",
                 num_or_dash(a, sizeof(a), json_object_get(st, "running")),
                 num_or_dash(b, sizeof(b), json_object_get(st, "workers")));
        stat_line(f, "running", line);
        stat_line(f, "connections", num_or_dash(a, sizeof(a), json_object_get(st, "connections")));
        v = json_object_get(st, "uptime_ms");
        stat_line(f, "uptime", json_is_integer(v) ? fmt_duration(a, sizeof(a), json_integer_value(v)) : "-");
        /* The uptime and counters are this process image's; the pid and
         * reexecs outlive a re-exec (an older ringqd has neither). */
        if (json_object_get(st, "pid"))
                stat_line(f, "pid", num_or_dash(a, sizeof(a), json_object_get(st, "pid")));
        if (json_object_get(st, "reexecs"))
                stat_line(f, "reexecs", num_or_dash(a, sizeof(a), json_object_get(st, "reexecs")));
        json_object_foreach((json_t *)st, key, v)
                if (json_is_number(v) && !in_list(top_known, sizeof(top_known) / sizeof(top_known[0]), key))
                        stat_line(f, key, num_or_dash(a, sizeof(a), v));

        fputs("counters:       ", f);
        each_counter(json_object_get(st, "counters"), human_counter, f, &(unsigned){ 0 });
        fputc('\n', f);

        if (json_is_object(lat)) {
                fprintf(f, "latency (ms):   %10s %10s %10s\n", "p50", "p99", "max");
                json_object_foreach((json_t *)lat, key, v) {
                        if (!json_is_object(v))
                                continue;
                        fprintf(f, "  %-13s", key);
                        for (int i = 0; i < 3; i++) {
                                const json_t *x = json_object_get(v, (const char *[]){ "p50", "p99", "max" }[i]);
                                if (json_is_number(x))
                                        fprintf(f, " %10.3f", json_number_value(x));
                                else
                                        fprintf(f, " %10s", "-");
                        }
                        fputc('\n', f);
                }
        }
        r = stats_queues(f, json_object_get(st, "queues"));
        if (r < 0)
                return r;
        return stream_result(f);
}
