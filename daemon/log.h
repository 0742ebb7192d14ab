/* Logging to stderr with <N> syslog priority prefixes, which journald
 * turns into real priorities. The daemon's library code never logs above
 * debug; main, the loop and the workers log at the edge. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <syslog.h>

#include "util.h"

extern int log_max_level;

void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
/* Log with ": <strerror(-err)>" appended; returns err (negative). */
int log_errno(int prio, int err, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_errno(LOG_WARNING, (r), __VA_ARGS__)

/* A user-controlled string (argv, queue, cwd, key, reason) as it may
 * appear in a log line: in double quotes, with '"', '\\' and every
 * control character or byte that is not UTF-8 escaped (\n, \t, \xNN),
 * and cut at about size bytes ("..." at the end), so that no request can
 * end a line early, start one of its own or choose its priority.
 * Returns buf. */
char *log_quote(char *buf, size_t size, const char *s);

/* What a job's start and end lines carry besides their text: under
 * journald (stderr is the journal, $JOURNAL_STREAM) they are sent as
 * structured fields, so `journalctl RINGQ_JOB_ID=42` finds a job. */
struct log_job {
        int64_t id;
        int64_t owner_uid;
        const char *queue;       /* raw: fields need no quoting */
        const char *state;
        const char *reason;      /* NULL: none yet */
};
void log_job(int prio, const struct log_job *j, const char *fmt, ...) _printf_(3, 4);

/* "debug", "info", "notice", "warning", "err"/"error", "crit", or 0..7. */
int log_level_from_string(const char *s);
