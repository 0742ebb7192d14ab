/* Requests parked on a job until it ends: `wait`, and `cancel` of a
 * running job (answered once the job is recorded canceled). They are
 * kept in a map from job id to a list of requests; each may have a
 * timeout on the loop's timers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "util.h"

static void wait_timeout(struct timer *t)
{
        struct req *r = container_of(t, struct req, wtimer);

        waiters_drop(r);
        ops_answer(r, proto_err(RINGQ_ERR_TIMEOUT, NULL, "job %lld has not ended yet", (long long)r->job_id));
}

void waiters_park(struct server *s, struct req *r, int64_t id, int64_t timeout_ms)
{
        r->state = REQ_WAIT;
        r->job_id = id;
        r->wnext = idmap_get(&s->waiters, id);
        if (idmap_put(&s->waiters, id, r) < 0) {
                r->state = REQ_STORE;
                ops_answer(r, proto_err(RINGQ_ERR_INTERNAL, NULL, "out of memory"));
                return;
        }
        if (r->conn)
                r->conn->nwaits++;
        timer_init(&r->wtimer, wait_timeout);
        if (timeout_ms >= 0)
                loop_arm_timer(s, &r->wtimer, now_mono_ms() + timeout_ms);
}

void waiters_drop(struct req *r)
{
        struct server *s = r->srv;
        struct req *head = idmap_get(&s->waiters, r->job_id), **pp;

        timers_disarm(&s->timers, &r->wtimer);
        for (pp = &head; *pp; pp = &(*pp)->wnext)
                if (*pp == r) {
                        *pp = r->wnext;
                        break;
                }
        if (head)
                (void)idmap_put(&s->waiters, r->job_id, head); /* replaces: no allocation */
        else
                idmap_remove(&s->waiters, r->job_id);
        if (r->conn && r->conn->nwaits)
                r->conn->nwaits--;
        r->state = REQ_STORE;
        r->wnext = NULL;
}

/* Unpark a list of requests taken out of the map. */
static struct req *detach(struct server *s, struct req *list)
{
        for (struct req *r = list; r; r = r->wnext) {
                timers_disarm(&s->timers, &r->wtimer);
                if (r->conn && r->conn->nwaits)
                        r->conn->nwaits--;
                r->state = REQ_STORE;
        }
        return list;
}

/* Answer every request of a detached list with a reply built per request. */
static void answer_all(struct req *r, json_t *(*build)(const void *ud), const void *ud)
{
        while (r) {
                struct req *next = r->wnext;
                r->wnext = NULL;
                ops_answer(r, build(ud));
                r = next;
        }
}

struct final {
        struct server *s;
        const struct job_rec *row;
        int err;
};

static json_t *final_reply(const void *ud)
{
        const struct final *f = ud;
        json_t *o, *job;

        if (!f->row)
                return proto_err(RINGQ_ERR_STORAGE, NULL, "the queue database cannot answer now: %s",
                                 strerror(-f->err));
        o = proto_ok();
        job = proto_job(f->row, f->s->output_dir);
        if (job)
                dispatch_annotate(f->s, job, f->row);
        json_object_set_new(o, "job", job);
        return o;
}

static json_t *shutting_down(const void *ud)
{
        return proto_err(RINGQ_ERR_SHUTTING_DOWN, NULL, "ringqd is shutting down");
}

void waiters_job_final(struct server *s, int64_t id, const struct job_rec *row)
{
        struct req *r = detach(s, idmap_remove(&s->waiters, id));
        struct final f = { s, row, 0 };
        struct job_rec j;

        if (!r)
                return;
        /* The job as its end was committed; a read only if that copy is
         * missing. */
        if (!row) {
                f.err = reader_get(s->reader, id, &j);
                f.row = f.err == 0 ? &j : NULL;
        }
        answer_all(r, final_reply, &f);
        if (f.row == &j)
                job_rec_done(&j);
}

void waiters_fail_all(struct server *s)
{
        /* Take the lists out first: answering may close a connection,
         * and removing from the map may shrink it. */
        struct req *lists = NULL;

        for (size_t i = 0; i < s->waiters.cap; i++) {
                struct idmap_slot *sl = &s->waiters.slots[i];
                struct req *r, *last;
                if (sl->key <= 0 || !sl->value)
                        continue;
                r = sl->value;
                sl->value = NULL;
                for (last = r; last->wnext; last = last->wnext)
                        ;
                last->wnext = lists;
                lists = r;
        }
        idmap_done(&s->waiters);
        answer_all(detach(s, lists), shutting_down, NULL);
}
