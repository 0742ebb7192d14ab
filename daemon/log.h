/* Logging to stderr, one line per message. When stderr is the journal
 * ($JOURNAL_STREAM names it) each line starts with a <N> syslog priority
 * prefix, which journald turns into the entry's priority; on a terminal
 * or in a file the lines are plain text. The daemon's library code never
 * logs above debug; main, the loop and the workers log at the edge. */
#pragma once

#include <errno.h>
#include <stdbool.h>
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

/* What a job's lines (start, end, retry, cancel) carry besides their
 * text: under journald (stderr is the journal, $JOURNAL_STREAM) each is
 * one journal entry with these as fields (RINGQ_JOB_ID, RINGQ_OWNER_UID,
 * RINGQ_QUEUE, RINGQ_STATE, RINGQ_REASON, RINGQ_ATTEMPT), so
 * `journalctl RINGQ_JOB_ID=42` finds a job; elsewhere the text line is
 * all there is. */
struct log_job {
        int64_t id;
        int64_t owner_uid;
        const char *queue;       /* raw: fields need no quoting */
        const char *state;
        const char *reason;      /* NULL: none (a start): no field */
};
void log_job(int prio, const struct log_job *j, const char *fmt, ...) _printf_(3, 4);
/* The same, with which run of the job the line is about: 1 for the first
 * (RINGQ_ATTEMPT; log_job sends no such field). */
void log_job_attempt(int prio, const struct log_job *j, int attempt, const char *fmt, ...) _printf_(4, 5);

/* Is stderr the journal: $JOURNAL_STREAM ("dev:ino") names the stream
 * that stderr is? Asked once. */
bool log_to_journal(void);

/* "debug", "info", "notice", "warning", "err"/"error", "crit", or 0..7. */
int log_level_from_string(const char *s);
