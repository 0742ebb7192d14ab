/* The listening socket: passed by systemd (LISTEN_FDS) or bound here,
 * and accepted with one multishot accept. */
#pragma once

#include <liburing.h>
#include <stdbool.h>
#include <sys/types.h>

#include "timers.h"

struct server;

struct listener {
        int fd;
        bool activated;          /* passed by systemd: never unlink */
        dev_t dev;               /* the path we bound, to unlink */
        ino_t ino;               /* only our own socket at exit */
        bool armed;
        struct timer retry;      /* re-arm after EMFILE */
};

int listener_open(struct server *s, char **ret_err);
void listener_arm(struct server *s);
/* Stop accepting (drain): a socket we bound is removed, one systemd
 * passed stays (connections wait in its backlog). */
void listener_stop(struct server *s);
/* Stop accepting, keep the socket: a re-exec (reexec.h). */
void listener_pause(struct server *s);
void listener_on_accept(struct server *s, struct io_uring_cqe *cqe);
void listener_close(struct server *s);
