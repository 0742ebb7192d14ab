/* stderr logger: one line per call, written with a single write(2) so
 * lines from the daemon never interleave mid-line; job lines go to the
 * journal with their fields when stderr is the journal. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "ringq/utf8.h"

int log_max_level = LOG_INFO;

__attribute__((format(printf, 3, 0))) static void log_write(int prio, const char *suffix, const char *fmt,
                                                          va_list ap)
{
        char buf[2048];
        int n = 0, m;

        /* A <N> on a terminal or in a file is noise: only journald
         * reads it. */
        if (log_to_journal())
                n = snprintf(buf, sizeof(buf), "<%d>", prio);
        m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
        if (m < 0)
                return;
        n = MIN((size_t)(n + m), sizeof(buf) - 1);
        if (suffix)
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", suffix);
        n = MIN((size_t)n, sizeof(buf) - 2);
        buf[n++] = '\n';
        /* A lost log line is not worth a failure path of its own. */
        (void)!write(STDERR_FILENO, buf, (size_t)n);
}

void log_msg(int prio, const char *fmt, ...)
{
        va_list ap;

        if (prio > log_max_level)
                return;
        va_start(ap, fmt);
        log_write(prio, NULL, fmt, ap);
        va_end(ap);
}

char *log_quote(char *buf, size_t size, const char *str)
{
        const unsigned char *p = (const unsigned char *)(str ? str : "");
        size_t o = 0;

        if (size < 8) {
                if (size)
                        buf[0] = '\0';
                return buf;
        }
        buf[o++] = '"';
        while (*p) {
                char esc[8];
                size_t n = ringq_utf8_len(p), el;

                if (*p == '"' || *p == '\\')
                        el = (size_t)snprintf(esc, sizeof(esc), "\\%c", *p);
                else if (*p == '\n')
                        el = (size_t)snprintf(esc, sizeof(esc), "\\n");
                else if (*p == '\t')
                        el = (size_t)snprintf(esc, sizeof(esc), "\\t");
                else if (n == 0 || *p < 0x20 || *p == 0x7f)
                        el = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p), n = 1;
                else
                        el = 0;
                /* Room for this piece, the closing quote, "..." and NUL. */
                if (o + (el ? el : n) + 5 > size) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                if (el) {
                        memcpy(buf + o, esc, el);
                        o += el;
                        p++;
                } else {
                        /* C1 controls (U+0080..U+009F) steer terminals too. */
                        if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
                                o += (size_t)snprintf(buf + o, size - o, "\\u%04x", p[1]);
                                p += 2;
                                continue;
                        }
                        memcpy(buf + o, p, n);
                        o += n;
                        p += n;
                }
        }
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

/* systemd says which stream it connected in $JOURNAL_STREAM ("dev:ino");
 * a child whose stderr was redirected inherits the variable but no longer
 * matches it (systemd.exec(5)). */
bool log_to_journal(void)
{
        static int cached = -1;
        const char *e;
        unsigned long long dev, ino;
        struct stat st;

        if (cached >= 0)
                return cached;
        e = getenv("JOURNAL_STREAM");
        cached = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                 st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
        return cached;
}

/* Job lines go to journald's own socket when stderr is the journal. If
 * that socket is not there (journald gone, or another mount namespace),
 * sd_journal_sendv drops the entry and reports success: the line would
 * be lost, so it goes to stderr instead. */
static bool journal_socket(void)
{
        static int cached = -1;

        if (cached < 0)
                cached = access("/run/systemd/journal/socket", W_OK) == 0;
        return cached;
}

/* Add "KEY=value" as one field, formatted into buf (cut to size). */
_printf_(5, 6) static void add_field(struct iovec *iov, size_t *n, char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (len >= 0)
                iov[(*n)++] = (struct iovec){ buf, MIN((size_t)len, size - 1) };
}

_printf_(4, 0) static void job_line(int prio, const struct log_job *j, int attempt, const char *fmt, va_list ap)
{
        char msg[8 + 2048] = "MESSAGE=", num[4][48], queue[96], state[48], reason[512];
        struct iovec iov[10];
        size_t n = 0;
        int len;

        if (prio > log_max_level)
                return;
        if (!log_to_journal() || !journal_socket()) {
                log_write(prio, NULL, fmt, ap);
                return;
        }
        /* The text is the one a terminal would show; the fields are raw,
         * as a field may hold any byte (sd_journal_sendv encodes it). */
        len = vsnprintf(msg + 8, sizeof(msg) - 8, fmt, ap);
        if (len < 0)
                return;
        iov[n++] = (struct iovec){ msg, 8 + MIN((size_t)len, sizeof(msg) - 9) };
        add_field(iov, &n, num[0], sizeof(num[0]), "PRIORITY=%d", prio);
        iov[n++] = (struct iovec){ (char *)"SYSLOG_IDENTIFIER=ringqd", strlen("SYSLOG_IDENTIFIER=ringqd") };
        add_field(iov, &n, num[1], sizeof(num[1]), "RINGQ_JOB_ID=%" PRId64, j->id);
        add_field(iov, &n, num[2], sizeof(num[2]), "RINGQ_OWNER_UID=%" PRId64, j->owner_uid);
        add_field(iov, &n, queue, sizeof(queue), "RINGQ_QUEUE=%s", j->queue ? j->queue : "");
        add_field(iov, &n, state, sizeof(state), "RINGQ_STATE=%s", j->state ? j->state : "");
        if (attempt > 0)
                add_field(iov, &n, num[3], sizeof(num[3]), "RINGQ_ATTEMPT=%d", attempt);
        if (j->reason)
                add_field(iov, &n, reason, sizeof(reason), "RINGQ_REASON=%s", j->reason);
        /* One datagram to journald, like sd_notify: bounded and cheap.
         * If it fails, the line still goes out on stderr. */
        if (sd_journal_sendv(iov, (int)n) < 0)
                log_msg(prio, "%s", msg + 8);
}

void log_job(int prio, const struct log_job *j, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        job_line(prio, j, 0, fmt, ap);
        va_end(ap);
}

void log_job_attempt(int prio, const struct log_job *j, int attempt, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        job_line(prio, j, attempt, fmt, ap);
        va_end(ap);
}

int log_errno(int prio, int err, const char *fmt, ...)
{
        va_list ap;

        if (prio <= log_max_level) {
                va_start(ap, fmt);
                log_write(prio, strerror(err < 0 ? -err : err), fmt, ap);
                va_end(ap);
        }
        return err < 0 ? err : -err;
}

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

int log_level_from_string(const char *s)
{
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        for (int i = 0; i < (int)ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}
