/* The WAL's trailing fsync (see walsync.h). */
#include <errno.h>

#include "log.h"
#include "server.h"
#include "walsync.h"

static void issue(struct server *s)
{
        struct io_uring_sqe *sqe = get_sqe(s);

        io_uring_prep_fsync(sqe, store_wal_fd(s->store), IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_WALSYNC, 0, 0));
        s->wsync.inflight = true;
        s->wsync.owed = false;
        s->stats.c[C_WAL_SYNCS]++;
}

void walsync_kick(struct server *s)
{
        /* Frames written while one runs need the next one. */
        if (store_take_unsynced(s->store))
                s->wsync.owed = true;
        if (s->wsync.owed && !s->wsync.inflight)
                issue(s);
}

void walsync_on_done(struct server *s, struct io_uring_cqe *cqe)
{
        s->wsync.inflight = false;
        if (cqe->res < 0) {
                /* The frames stay committed and readable; only a power cut
                 * before a good fsync could take them back. Tried again
                 * at the next commit, not in a loop against a failing
                 * disk. */
                s->stats.c[C_STORE_ERRORS]++;
                log_error_errno(cqe->res, "cannot fsync the database's WAL; job starts and ends since the last "
                                          "good fsync are not durable yet");
                s->wsync.owed = true;
                return;
        }
        if (s->wsync.owed)
                issue(s);
}

bool walsync_idle(struct server *s)
{
        return !s->wsync.inflight;
}
