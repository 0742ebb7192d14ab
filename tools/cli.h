/* What the ringq verb files share: the verb table's shape, the options every
 * verb takes, and the helpers that turn client results into messages and
 * exit codes (ringq.c). Each verb file keeps its own arg_* options static;
 * only the common ones live here.
 *
 * Helpers named *_error, call(), open_client() and wait_result() print and
 * return an exit code (0 or RINGQ_EXIT_*); the others return 0 or a
 * negative errno and do not print, but for the *relink* ones, which say
 * why they gave up and return -E_GONE (conn_error() makes it exit 69).
 */
#pragma once

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

/* Replies already reported to the user; the exit code is kept elsewhere. */
#define E_REPORTED ECANCELED
/* ringqd went away and did not come back in time (relink()); reported,
 * and its exit code is "unreachable". */
#define E_GONE EHOSTDOWN

struct verb;
typedef int (*verb_fn)(const struct verb *v, int argc, char **argv);
struct verb {
        const char *name;
        verb_fn fn;
        const char *args;    /* after "ringq NAME" in the usage line */
        const char *summary;
        const char *options; /* verb-specific option lines for --help */
};

/* Options every verb takes (and main before the verb). */
extern const char *arg_socket;
extern bool arg_json;

enum {
        OPT_JSON = 0x100,
        OPT_VERSION,
        OPT_DELAY,
        OPT_TIMEOUT,
        OPT_ATTEMPTS,
        OPT_BACKOFF,
        OPT_KEY,
        OPT_NO_ENV,
        OPT_WAIT,
        OPT_BLOCK,
        OPT_BLOCK_TIMEOUT,
        OPT_BATCH,
        OPT_STATE,
        OPT_QUEUE,
        OPT_LIMIT,
        OPT_AFTER,
        OPT_STDERR,
        OPT_PROMETHEUS,
        OPT_INTERVAL,
};

#define COMMON_SHORT "s:h"
#define COMMON_LONG                                                            \
        { "socket", required_argument, NULL, 's' },                            \
        { "json", no_argument, NULL, OPT_JSON },                               \
        { "help", no_argument, NULL, 'h' }

/* ---- messages and exit codes (ringq.c) ---- */

__attribute__((format(printf, 2, 3)))
int usage_error(const struct verb *v, const char *fmt, ...);
/* Report a failed client call on the connection to path; the exit code. */
int conn_error(const char *path, int r);
int open_client(client **ret);
void emit_json(const json_t *reply);
/* Print an error reply as "ringq: [prefix]code: message"; its exit code. */
int reply_error(const json_t *reply, const char *prefix);
/* One call (takes req, which may be NULL after an OOM); prints the reply
 * under --json and errors always. Returns the exit code, with *ret_reply
 * set when the reply was ok. */
int call(client *c, json_t *req, json_t **ret_reply);
/* Handle a wait reply: its exit code, with "job N failed: reason" for the
 * jobs that did not succeed. */
int wait_result(const json_t *reply, const char *prefix);

/* ---- waits that outlive their connection (ringq.c) ----
 *
 * ringqd closes a connection under a wait when it cannot hand it over
 * to its re-executed self, and a crash closes them all; a wait is the
 * one request that may be sent again as it is (so is a read such as
 * output), so the verbs that wait connect again and ask again. A submit
 * is never sent again: its reply may have been the one lost. */

struct relink {
        int64_t lost_ms;    /* when ringqd went away; 0: no loss, or a reply since */
        int64_t linked_ms;  /* when the last new connection was made */
        int64_t give_up_ms; /* stop trying then too (wait --timeout), as
                               client_now_ms(); 0 if only RELINK_MS */
};
/* Did a client call fail because the connection ended? */
bool conn_lost(int r);
/* Replace *c, whose connection ended, by a new one to the same socket,
 * trying for a while (a restarted ringqd takes a moment to bind it);
 * *c is left as it was on failure. Call relink_reply() on rl for each
 * reply that comes: a new connection lost again at once, with no reply
 * in between, is the same absence of ringqd (the time allowed counts
 * from its start) and is not tried again at once.
 * 0, -E_GONE (reported) or -ENOMEM. */
int relink(client **c, struct relink *rl);
static inline void relink_reply(struct relink *rl)
{
        rl->lost_ms = 0;
}
/* client_call() for a request that may be sent twice, over new
 * connections until it has its reply. 0 or a negative errno. */
int call_relinking(client **c, const json_t *req, json_t **ret_reply);
/* client_pipeline() of requests that may be sent twice: when the
 * connection ends, rewind(userdata) makes next() start again from the
 * first request without a reply, and the pipeline goes on over a new
 * connection, tried until give_up_ms at the latest (0: no such bound).
 * 0 or a negative errno. */
int pipeline_relinking(client **c, const client_pipe_ops *ops, void *userdata, void (*rewind)(void *userdata),
                       int64_t give_up_ms);

/* ---- arguments (ringq.c) ---- */

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* Job IDs from argv; *ret is the caller's to free. An exit code. */
int parse_ids(const struct verb *v, int argc, char **argv, int64_t **ret, size_t *ret_n);
/* A duration for option opt; an exit code. */
int parse_dur(const struct verb *v, const char *opt, const char *s, int64_t *ret);
/* Options every verb shares, and getopt's errors. -1 to go on, else the
 * exit code. */
int common_opt(const struct verb *v, int c, char **argv);

/* ---- small helpers (ringq.c) ---- */

/* json_object_set_new that reports failure (it frees v either way). */
int set_new(json_t *o, const char *k, json_t *v);
int write_all(int fd, const char *p, size_t n);

/* ---- verbs ---- */

int verb_submit(const struct verb *v, int argc, char **argv); /* submit.c */
int verb_ids(const struct verb *v, int argc, char **argv);    /* jobs.c: cancel, retry, wait */
int verb_status(const struct verb *v, int argc, char **argv); /* jobs.c */
int verb_list(const struct verb *v, int argc, char **argv);   /* jobs.c */
int verb_logs(const struct verb *v, int argc, char **argv);   /* logs.c */
int verb_stats(const struct verb *v, int argc, char **argv);  /* stats.c */
int verb_ping(const struct verb *v, int argc, char **argv);   /* stats.c */
int verb_queues(const struct verb *v, int argc, char **argv); /* stats.c: queues, pause, resume */
int verb_admin(const struct verb *v, int argc, char **argv);  /* stats.c: admin reexec */
int verb_top(const struct verb *v, int argc, char **argv);    /* top.c */
