/* Human formatting for ringq: no sockets, no exit codes, so
 * each helper can be tested on a json_t alone. Allocating helpers return
 * NULL on OOM; printing helpers return 0 or -errno of the stream. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Large enough for any fmt_duration() or fmt_time() result. */
#define FMT_BUF 64

/* Unix time in milliseconds. */
int64_t fmt_now_ms(void);

/* "250ms", "1.5s", "42s", "5m12s", "2h03m", "3d4h"; negative values get a
 * leading '-'. Returns buf. */
char *fmt_duration(char *buf, size_t n, int64_t ms);

/* "512 B", "1.5 KiB", "12 MiB", "3.2 GiB": binary units, one decimal
 * below 10. Returns buf. */
char *fmt_bytes(char *buf, size_t n, uint64_t bytes);

/* A unix-ms timestamp as "2026-11-27 06:01:02 (3s ago)" in local time,
 * "(in 5s)" for the future, "-" for null. Returns buf. */
char *fmt_time(char *buf, size_t n, const json_t *v, int64_t now_ms);

/* The name of user uid ("alice"), else its number ("1001"): what a
 * table shows. Each id is looked up once per process, so a list of many
 * jobs of few owners asks the user database a few times. Returns buf. */
char *fmt_user(char *buf, size_t n, int64_t uid);

/* One code point at s: its length, and *ret_cp (-1 if s does not start a
 * valid UTF-8 sequence; then the length is 1). */
size_t fmt_utf8_next(const char *s, int32_t *ret_cp);
/* Must not reach a terminal as is: C0 and C1 controls (a UTF-8 terminal
 * obeys both), DEL, and bytes that are not UTF-8 (cp -1). */
bool fmt_cp_unsafe(int32_t cp);
/* A copy of s with unsafe code points shown as '?'. Caller frees. */
char *fmt_safe(const char *s);

/* An argv array joined by spaces with unsafe code points shown as '?';
 * quote=true quotes words the shell would split. Caller frees. */
char *fmt_argv(const json_t *argv, bool quote);

/* Columns to fit a table into: $COLUMNS, else the tty width of stdout,
 * else 0 (no limit). */
unsigned fmt_terminal_width(void);

/* A text table whose last column is cut to fit the width. */
typedef struct fmt_table fmt_table;
fmt_table *fmt_table_new(unsigned ncols, const char *const *headers,
                         const bool *right_align);
fmt_table *fmt_table_free(fmt_table *t);
/* Copy one row of ncols cells (NULL shows as "-"). */
int fmt_table_add(fmt_table *t, const char *const *cells);
int fmt_table_print(FILE *f, const fmt_table *t, unsigned width);

/* "key: value" lines for a job object. */
int fmt_job(FILE *f, const json_t *job, int64_t now_ms);
/* The objects of a "queues" array that have a string name, sorted by name:
 * *ret is an array of borrowed pointers the caller frees (NULL when there
 * are none). 0 or -ENOMEM. */
int fmt_queues_sorted(const json_t *queues, const json_t ***ret, size_t *ret_n);
/* A queues, pause or resume reply as a table, by name: "all queues
 * paused" first when the reply says so. */
int fmt_queues(FILE *f, const json_t *reply);
/* The stats reply as a short block. */
int fmt_stats(FILE *f, const json_t *stats);
