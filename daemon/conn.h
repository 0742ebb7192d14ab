/* A client connection and the requests it has in flight.
 *
 * States of a connection (each with the reason it exists):
 *   reading   recv armed; lines are parsed as they complete.
 *   stalled   max_pipeline requests unanswered: no recv until replies
 *             drain, so one client cannot queue unbounded work.
 *   closing   shutdown(2) issued; waits for its ring ops to complete
 *             before the fd is closed and the buffers freed, so no late
 *             completion ever points at freed memory.
 * Requests are answered strictly in order: each struct req sits in the
 * connection's FIFO until it has a reply and everything before it has
 * been written to the output buffer.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "proto.h"
#include "server.h"
#include "timers.h"

enum req_state {
        REQ_DONE,       /* reply ready */
        REQ_STORE,      /* an op for it is in the store */
        REQ_WAIT,       /* waiting for a job to end (wait, cancel) */
        REQ_DEFERRED,   /* parsed, held behind this connection's writes */
};

struct req {
        struct req *next;        /* connection FIFO */
        struct conn *conn;       /* NULL once the connection is gone */
        enum req_state state;
        json_t *tag;             /* owned reference */
        char *reply;             /* owned; one line with '\n' */
        size_t reply_len;
        int64_t job_id;          /* REQ_WAIT: the job */
        struct req *wnext;       /* REQ_WAIT: others waiting on job_id */
        struct timer wtimer;     /* REQ_WAIT: wait timeout */
        struct server *srv;
        int64_t t0_us;
        bool is_write;           /* changes a job; counted in conn->writes */
        bool has_rq;             /* REQ_DEFERRED: rq is owned here */
        int pass_fd;             /* passed with the reply (SCM_RIGHTS); -1: none */
        /* A submit committed in an early batch, its answer held until
         * the batch's fsync (ops.c): the next one held, the batch, and
         * whether it was a duplicate (job_id is the job). */
        struct req *pnext;
        uint64_t sync_seq;
        bool duplicate;
        struct request rq;
};

struct conn {
        struct server *srv;
        unsigned idx;
        uint32_t gen;
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        /* The client's supplementary groups as it really had them when it
         * connected (SO_PEERGROUPS), as the JSON array its jobs record. */
        char *groups_json;

        char *rbuf;              /* not NUL-terminated */
        size_t rlen, rcap, scanned;
        size_t rstart;           /* first byte of the current line */
        /* Two output buffers: the kernel reads sbuf while a send is in
         * flight, so replies are appended to wbuf and the two swap when
         * sbuf is empty. Neither moves while the kernel may read it. */
        char *sbuf, *wbuf;
        size_t soff, slen, scap, wlen, wcap;
        uint64_t sent;           /* bytes sent so far: sbuf[soff] is byte `sent` */
        /* Descriptors to pass, each with the position in the output where
         * its reply starts: a send stops short of that byte, and the send
         * that begins there carries the descriptor (sendmsg, SCM_RIGHTS),
         * so it arrives with the first bytes of its own reply. */
        struct fdpass {
                uint64_t pos;
                int fd;
        } *fdq;
        size_t nfdq, capfdq;
        bool fd_in_flight;       /* the armed send carries fdq[0] */
        struct msghdr msg;       /* read by the kernel until the send completes */
        struct iovec iov;
        char cmsg[CMSG_SPACE(sizeof(int))] __attribute__((aligned(__alignof__(struct cmsghdr))));

        bool recv_armed, send_armed, closing, close_after_flush, stalled, in_process;
        bool peer_gone;          /* the client closed its socket entirely */
        unsigned ring_ops;

        struct req *head, **tail;
        unsigned npending;       /* requests not yet written out */
        unsigned writes;         /* its submits/cancels/retries in flight */
        unsigned ndeferred;      /* its requests in REQ_DEFERRED */
        unsigned nwaits;         /* REQ_WAIT among them: not idle */
        struct timer idle;
        int64_t last_active_ms;
};

/* A new request at the end of c's FIFO, awaiting its reply; NULL: out of
 * memory. */
struct req *req_new(struct conn *c);
/* Set a request's reply (consumes the reply reference) and write out
 * whatever is ready in order. */
void req_reply(struct req *r, json_t *reply);
/* The same with the reply already rendered: a malloc'd line ending in
 * '\n' (consumed; NULL: out of memory). */
void req_reply_line(struct req *r, char *line, size_t len);
/* Free a request no connection holds any more. */
void req_free(struct req *r);
/* Begin closing a connection (idempotent). */
void conn_close(struct conn *c);

struct ucred;
void conn_on_recv(struct server *s, struct io_uring_cqe *cqe);
void conn_on_send(struct server *s, struct io_uring_cqe *cqe);
void conn_on_hup(struct server *s, struct io_uring_cqe *cqe);
void conn_arm_hup(struct server *s);
/* Whether a client of uid may have one more connection now: 0, or the
 * error to refuse it with (-EBUSY: max_clients, -EUSERS: its own cap). */
int conn_admit(struct server *s, uid_t uid);
int conn_new(struct server *s, int fd, const struct ucred *cred);
void conn_close_all(struct server *s);
/* Re-exec (reexec.h): settled: every connection's unanswered requests
 * are waits and its replies are out; park: take their reads off the ring
 * (others are closed); parked: none left on it; handoff: each as
 * {fd, input} into conns, kept open across exec (undo: not); unpark:
 * back to serving (the exec failed); adopt: the new process's side. */
bool conns_settled(struct server *s);
void conns_park(struct server *s);
bool conns_parked(struct server *s);
int conns_handoff(struct server *s, json_t *conns);
void conns_handoff_undo(struct server *s);
void conns_unpark(struct server *s);
int conns_adopt(struct server *s, json_t *handoff);
/* Free the connections closed during this turn. */
void conn_reap(struct server *s);
