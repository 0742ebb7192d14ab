/* The fsync an early batch's commit left out (store_thread.c:
 * early_batch) runs on a thread of its own. The store thread goes on
 * committing while the disk works: a job readied at its submit gets its
 * start, and often its end, committed while its submit's fsync runs,
 * where both used to queue behind it. Batches that commit while one
 * fsync runs share the next. It is libc's fdatasync, the call the
 * power-cut test's model of a disk sees. */
#include <errno.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

/* Called with the lock held, after the batch's own ops are on the done
 * list: the loop must meet them before their SOP_SYNCED. */
void store_sync_queue(struct store *s, struct store_op *op)
{
        op->next = NULL;
        *s->sync_tail = op;
        s->sync_tail = &op->next;
        /* In flight from now: the loop is not idle (a shutdown or re-exec
         * waits) until it has answered the submits this releases. */
        s->inflight++;
        pthread_cond_signal(&s->sync_cond);
}

static void *syncer_main(void *arg)
{
        struct store *s = arg;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct store_op *list, **tail;
                uint64_t gen;
                int r;

                while (!s->sync_todo && !s->sync_stop)
                        pthread_cond_wait(&s->sync_cond, &s->lock);
                if (!s->sync_todo)
                        break;
                list = s->sync_todo;
                tail = s->sync_tail;
                s->sync_todo = NULL;
                s->sync_tail = &s->sync_todo;
                gen = s->relaxed_gen;
                pthread_mutex_unlock(&s->lock);

                /* Every frame written before this call is covered: the
                 * batches of the list, and any relaxed commit before. */
                r = fdatasync(s->wal_fd) < 0 ? -errno : 0;
                for (struct store_op *op = list; op; op = op->next)
                        op->result = r;

                pthread_mutex_lock(&s->lock);
                /* After a failed one the frames may be on disk or not: the
                 * submits are answered with the error, and the WAL is owed
                 * a good fsync (walsync.h). A relaxed commit made while
                 * this one ran may not be covered: it keeps its claim. */
                if (r < 0)
                        s->unsynced = true;
                else if (gen == s->relaxed_gen)
                        s->unsynced = false;
                *s->done_tail = list;
                s->done_tail = tail;
                store_wake_loop(s);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int store_syncer_start(struct store *s)
{
        int r;

        if (s->wal_fd < 0 || s->syncer_started)
                return 0;
        s->sync_stop = false;
        r = -pthread_create(&s->syncer, NULL, syncer_main, s);
        if (r == 0)
                s->syncer_started = true;
        return r;
}

/* After the store thread has ended: what it queued is synced first. */
void store_syncer_stop(struct store *s)
{
        if (!s->syncer_started)
                return;
        store_end_thread(s, &s->sync_stop, &s->sync_cond, s->syncer);
        s->syncer_started = false;
}
