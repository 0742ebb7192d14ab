/* The io_uring loop: one ring, one thread, every socket, pipe, pidfd,
 * signal and timer of the daemon (loop.c says how a turn goes). */
#pragma once

#include <liburing.h>
#include <stdint.h>

#include "timers.h"

struct server;

/* user_data codec: op in the top byte, a 24-bit generation, a 32-bit
 * slot. A completion for a connection or worker slot that has since
 * been reused carries the old generation and is recognised as stale. */
enum ud_op {
        UD_NONE,
        UD_ACCEPT,
        UD_RECV,
        UD_SEND,
        UD_SIGNAL,
        UD_STORE,
        UD_PIDFD,
        UD_PIPE_READ,
        UD_FILE_WRITE,
        UD_FILE_OPEN,   /* a job's output file, made at its first write */
        UD_EXEC,        /* a job's error pipe closed: it exec'd or exited */
        UD_HUP,         /* the epoll set that reports clients gone */
        UD_CGROUP,      /* a job cgroup's cgroup.events changed */
        UD_WALSYNC,     /* the WAL's trailing fsync (walsync.h) */
        UD_STORE_RING,  /* the store thread's wake-up, posted into the ring */
        UD_IGNORE,      /* cancel requests: nothing to do on completion */
        _UD_MAX,
};

static inline uint64_t ud_pack(enum ud_op op, uint32_t slot, uint32_t gen)
{
        return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | slot;
}
static inline enum ud_op ud_op(uint64_t ud) { return (enum ud_op)(ud >> 56); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud; }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }

int loop_init(struct server *s);
int loop_run(struct server *s);
/* One turn: submit, wait for a completion or the earliest timer (at most
 * max_wait_ms unless negative), handle the batch, run due timers, free
 * closed connections. Returns completions handled or a negative errno. */
int loop_turn(struct server *s, int64_t max_wait_ms);
/* Keep a read armed on the store's eventfd (the store thread's wake-up
 * where it cannot post into the ring). */
void loop_arm_store(struct server *s);
/* A re-exec (reexec.h) takes the signalfd read off the ring, waits until
 * it is off, and puts it back if the exec fails. */
void loop_park_signals(struct server *s);
bool loop_signals_parked(struct server *s);
void loop_resume_signals(struct server *s);
void loop_done(struct server *s);
/* An SQE, flushing the queue to make room if it is full. */
struct io_uring_sqe *get_sqe(struct server *s);
void loop_arm_timer(struct server *s, struct timer *t, int64_t due_ms);
/* The clock as the completion being handled found it, read once on
 * first use: the requests of one recv share it. A submit read the clock
 * nine times, 4 % of ringqd under a burst; a request's times are those
 * of its arrival either way. Not for timing steps inside one handler:
 * both ends would read the same. */
int64_t loop_mono_us(struct server *s);
int64_t loop_mono_ms(struct server *s);
int64_t loop_wall_ms(struct server *s);
