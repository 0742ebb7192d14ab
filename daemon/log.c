/* stderr logger: one line per call, written with a single write(2) so
 * lines from the daemon never interleave mid-line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int log_max_level = LOG_INFO;

__attribute__((format(printf, 3, 0))) static void log_write(int prio, const char *suffix, const char *fmt,
                                                          va_list ap)
{
        char buf[2048];
        int n, m;

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

const char *log_level_to_string(int level)
{
        if (level < 0 || level >= (int)ELEMENTSOF(level_names))
                return "?";
        return level_names[level];
}
