/* A small client for ringqd: one Unix stream socket carrying one JSON object
 * per line each way (protocol.h). Shared by ringq and ringq-bench.
 *
 * The socket is non-blocking underneath; the calls below block with poll()
 * so a caller can mix plain calls with a pipelined stream and never deadlock
 * against a daemon that is slow to read. Functions return 0 (or a count) or
 * a negative errno; none of them print.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ringq/protocol.h"

#ifndef RINGQ_VERSION
#define RINGQ_VERSION "0.1.0"
#endif

/* Largest reply line accepted; a longer one fails with -EMSGSIZE. A list
 * of 1000 jobs with long argvs fits many times over. */
#define CLIENT_MAX_LINE (64u << 20)
/* Room for n more bytes at buf[len..cap): the unread part [start..len) is
 * moved to the front when that makes room, else the buffer grows, to at
 * most CLIENT_MAX_LINE plus one read (-EMSGSIZE beyond). 0 or -errno. */
int client_buf_reserve(char **buf, size_t *start, size_t *len, size_t *cap, size_t n);
/* ringqd stops reading a connection with this many unanswered requests. */
#define CLIENT_WINDOW_MAX 64u

#ifndef _cleanup_
#define _cleanup_(f) __attribute__((cleanup(f)))
#endif
#ifndef TAKE_PTR
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                __typeof__(p) _p_ = (p);                                       \
                (p) = NULL;                                                    \
                _p_;                                                           \
        })
#endif

#ifndef _cleanup_free_
static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)
#endif

/* jansson (>= 2.11) provides json_decrefp() for this. */
#define _cleanup_json_ _cleanup_(json_decrefp)

typedef struct client client;

/* Connect to the socket at path. */
int client_connect(const char *path, client **ret);
/* After client_connect() failed with -EACCES: why, and how to get in, as
 * one line for a human, from the socket's owner, group and mode and the
 * caller's groups ("the socket is open to group ringq only: ..."); "" if
 * there is nothing to add. Prints nothing. */
void client_access_advice(const char *path, char *buf, size_t n);
/* Close and free; NULL is fine. Returns NULL. */
client *client_free(client *c);
static inline void client_freep(client **c)
{
        client_free(*c);
}
#define _cleanup_client_ _cleanup_(client_freep)

const char *client_path(const client *c);
int client_fd(const client *c);
/* Requests queued or sent whose reply has not been read yet. */
unsigned client_outstanding(const client *c);

/* Append one request line to the output buffer; nothing is written yet. */
int client_queue(client *c, const json_t *req);
/* Write buffered requests until none is left or timeout_ms (-1: forever)
 * runs out (-ETIMEDOUT). */
int client_flush(client *c, int timeout_ms);
/* Next reply, in request order. -ETIMEDOUT if none came within timeout_ms
 * (0: only what is already readable), -ECONNRESET if the daemon closed,
 * -EBADMSG for a line that is not a JSON object or passed descriptors that
 * were lost (truncated control data), -EMSGSIZE if too long.
 * Writes pending requests meanwhile. */
int client_recv(client *c, int timeout_ms, json_t **ret_reply);
/* Send one request and read its reply. */
int client_call(client *c, const json_t *req, json_t **ret_reply);

/* Descriptors ringqd passed (SCM_RIGHTS), oldest first; the caller owns
 * the one returned, -1 if none is held. Each reply with "fd":true (the
 * output op) carries one, in reply order, and it has been received by the
 * time that reply is returned, so take it then. A caller that does not
 * want a reply's descriptor must still take (and close) it, or later
 * replies get the wrong ones; client_free() closes those never taken. */
int client_take_fd(client *c);

/* Pipelining: the engine asks next() for requests while fewer than the
 * window are unanswered, writes them while reading replies, and hands each
 * reply to reply() in request order. */
enum {
        CLIENT_NEXT_DONE,  /* nothing more, unless a reply changes that */
        CLIENT_NEXT_REQ,   /* *ret_req is a new request (ownership passes) */
        CLIENT_NEXT_LATER, /* nothing now; ask again after *ret_wait_ms */
};
typedef struct client_pipe_ops {
        int (*next)(void *userdata, json_t **ret_req, int *ret_wait_ms);
        /* reply is borrowed; a negative return stops the pipeline. */
        int (*reply)(void *userdata, json_t *reply);
} client_pipe_ops;

/* Run until next() says DONE and every reply has been handled. */
int client_pipeline(client *c, unsigned window, const client_pipe_ops *ops,
                    void *userdata);

/* Reply helpers. */
bool client_reply_ok(const json_t *reply);
/* 0 for ok, else the exit code for the reply's error (70 if unknown). */
int client_reply_exit(const json_t *reply);
/* The "error" code of a failed reply, or "internal" if missing. */
const char *client_reply_error(const json_t *reply);
/* The "message", or "" if missing. */
const char *client_reply_message(const json_t *reply);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t client_now_ms(void);
