/* ringq wire protocol, version 1: what ringqd and its tools share.
 *
 * One JSON object per line in each direction over a Unix stream socket.
 * Every name here is part of the user-facing contract (docs/protocol.md); the
 * tables are indexed by the enums so a name and its code cannot drift.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RINGQ_PROTOCOL 1

/* Where the socket lives when neither a flag nor the environment says. */
#define RINGQ_SOCKET_NAME "ringq.sock"
#define RINGQ_SOCKET_DEFAULT "/run/ringq/" RINGQ_SOCKET_NAME
#define RINGQ_STATE_DEFAULT "/var/lib/ringq"
#define RINGQ_CONFIG_DEFAULT "/etc/ringq/ringqd.conf"

/* Job field limits, checked by the daemon and echoed in its errors. */
#define RINGQ_PRIO_MIN (-1000)
#define RINGQ_PRIO_MAX 1000
#define RINGQ_LIST_DEFAULT 100
#define RINGQ_LIST_MAX 1000
#define RINGQ_ATTEMPTS_MAX 1000
/* Backoff is backoff_ms * 2^(attempt-1), capped here (1h). */
#define RINGQ_BACKOFF_CAP_MS (3600LL * 1000)
/* Largest duration accepted anywhere (timeouts, delays): ~100 years, so
 * that any sum of a timestamp and a duration stays far from overflow. */
#define RINGQ_DURATION_MAX_MS (100LL * 365 * 24 * 3600 * 1000)

enum ringq_op {
        RINGQ_OP_PING,
        RINGQ_OP_SUBMIT,
        RINGQ_OP_STATUS,
        RINGQ_OP_LIST,
        RINGQ_OP_CANCEL,
        RINGQ_OP_RETRY,
        RINGQ_OP_WAIT,
        RINGQ_OP_STATS,
        RINGQ_OP_OUTPUT,
        RINGQ_OP_PAUSE,
        RINGQ_OP_RESUME,
        RINGQ_OP_QUEUES,
        RINGQ_OP_REEXEC,
        _RINGQ_OP_MAX,
        _RINGQ_OP_INVALID = -EINVAL,
};

static const char *const ringq_op_names[_RINGQ_OP_MAX] = {
        [RINGQ_OP_PING] = "ping",     [RINGQ_OP_SUBMIT] = "submit",
        [RINGQ_OP_STATUS] = "status", [RINGQ_OP_LIST] = "list",
        [RINGQ_OP_CANCEL] = "cancel", [RINGQ_OP_RETRY] = "retry",
        [RINGQ_OP_WAIT] = "wait",     [RINGQ_OP_STATS] = "stats",
        [RINGQ_OP_OUTPUT] = "output", [RINGQ_OP_PAUSE] = "pause",
        [RINGQ_OP_RESUME] = "resume", [RINGQ_OP_QUEUES] = "queues",
        [RINGQ_OP_REEXEC] = "reexec",
};

enum ringq_err {
        RINGQ_ERR_BAD_REQUEST,
        RINGQ_ERR_TOO_LARGE,
        RINGQ_ERR_QUEUE_FULL,
        RINGQ_ERR_BUSY,
        RINGQ_ERR_NOT_FOUND,
        RINGQ_ERR_FORBIDDEN,
        RINGQ_ERR_INVALID_STATE,
        RINGQ_ERR_TIMEOUT,
        RINGQ_ERR_SHUTTING_DOWN,
        RINGQ_ERR_STORAGE,
        RINGQ_ERR_INTERNAL,
        _RINGQ_ERR_MAX,
        _RINGQ_ERR_INVALID = -EINVAL,
};

static const char *const ringq_err_names[_RINGQ_ERR_MAX] = {
        [RINGQ_ERR_BAD_REQUEST] = "bad_request",
        [RINGQ_ERR_TOO_LARGE] = "too_large",
        [RINGQ_ERR_QUEUE_FULL] = "queue_full",
        [RINGQ_ERR_BUSY] = "busy",
        [RINGQ_ERR_NOT_FOUND] = "not_found",
        [RINGQ_ERR_FORBIDDEN] = "forbidden",
        [RINGQ_ERR_INVALID_STATE] = "invalid_state",
        [RINGQ_ERR_TIMEOUT] = "timeout",
        [RINGQ_ERR_SHUTTING_DOWN] = "shutting_down",
        [RINGQ_ERR_STORAGE] = "storage_error",
        [RINGQ_ERR_INTERNAL] = "internal",
};

enum ringq_state {
        RINGQ_STATE_QUEUED,
        RINGQ_STATE_RUNNING,
        RINGQ_STATE_SUCCEEDED,
        RINGQ_STATE_FAILED,
        RINGQ_STATE_CANCELED,
        _RINGQ_STATE_MAX,
        _RINGQ_STATE_INVALID = -EINVAL,
};

static const char *const ringq_state_names[_RINGQ_STATE_MAX] = {
        [RINGQ_STATE_QUEUED] = "queued",
        [RINGQ_STATE_RUNNING] = "running",
        [RINGQ_STATE_SUCCEEDED] = "succeeded",
        [RINGQ_STATE_FAILED] = "failed",
        [RINGQ_STATE_CANCELED] = "canceled",
};

static inline int ringq_lookup(const char *const *names, int n, const char *s)
{
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (names[i] && strcmp(names[i], s) == 0)
                        return i;
        return -EINVAL;
}

static inline enum ringq_op ringq_op_from_name(const char *s)
{
        return (enum ringq_op)ringq_lookup(ringq_op_names, _RINGQ_OP_MAX, s);
}

static inline enum ringq_err ringq_err_from_name(const char *s)
{
        return (enum ringq_err)ringq_lookup(ringq_err_names, _RINGQ_ERR_MAX, s);
}

static inline enum ringq_state ringq_state_from_name(const char *s)
{
        return (enum ringq_state)ringq_lookup(ringq_state_names, _RINGQ_STATE_MAX, s);
}

static inline int ringq_state_is_final(enum ringq_state s)
{
        return s == RINGQ_STATE_SUCCEEDED || s == RINGQ_STATE_FAILED ||
               s == RINGQ_STATE_CANCELED;
}

/* CLI exit codes (sysexits.h values, plus the timeout convention of
 * timeout(1) for a wait that ran out). */
enum ringq_exit {
        RINGQ_EXIT_OK = 0,
        RINGQ_EXIT_WAIT_TIMEOUT = 124,
        RINGQ_EXIT_USAGE = 64,
        RINGQ_EXIT_BAD_REQUEST = 65,
        RINGQ_EXIT_NOT_FOUND = 66,
        RINGQ_EXIT_UNREACHABLE = 69,
        RINGQ_EXIT_SOFTWARE = 70,
        RINGQ_EXIT_TEMPFAIL = 75,
        RINGQ_EXIT_FORBIDDEN = 77,
};

/* Exit code for a reply's error code. */
static inline int ringq_exit_for_error(enum ringq_err e)
{
        switch (e) {
        case RINGQ_ERR_BAD_REQUEST:
                return RINGQ_EXIT_BAD_REQUEST;
        case RINGQ_ERR_NOT_FOUND:
                return RINGQ_EXIT_NOT_FOUND;
        case RINGQ_ERR_QUEUE_FULL:
        case RINGQ_ERR_BUSY:
        case RINGQ_ERR_SHUTTING_DOWN:
                return RINGQ_EXIT_TEMPFAIL;
        case RINGQ_ERR_FORBIDDEN:
                return RINGQ_EXIT_FORBIDDEN;
        case RINGQ_ERR_TIMEOUT:
                return RINGQ_EXIT_WAIT_TIMEOUT;
        default:
                return RINGQ_EXIT_SOFTWARE;
        }
}

/* The socket path a client uses: the flag, else $RINGQ_SOCKET, else the
 * default. The returned string is the caller's, the environment's or
 * static; never free it. */
static inline const char *ringq_client_socket(const char *flag)
{
        const char *s;

        if (flag && *flag)
                return flag;
        s = getenv("RINGQ_SOCKET");
        if (s && *s)
                return s;
        return RINGQ_SOCKET_DEFAULT;
}
