/* The io_uring loop: one ring, one thread, every socket, pipe, pidfd,
 * signal and timer of the daemon. Each turn submits what handlers
 * queued, sleeps until a completion or the earliest timer, handles the
 * whole batch of completions, then runs due timers. An idle daemon
 * sleeps in the kernel with no timeout but its real timers. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "worker.h"

#define SQ_ENTRIES 512
#define CQ_ENTRIES 8192

int loop_init(struct server *s)
{
        struct io_uring_params p;
        /* Newest flags first: a single issuer with deferred task work
         * runs completions only when this thread asks for them, which is
         * exactly how the loop works; older kernels get less. */
        static const unsigned flag_sets[] = {
                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
                        IORING_SETUP_DEFER_TASKRUN,
                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
                IORING_SETUP_CQSIZE,
        };
        int r = -EINVAL;

        /* Deferred or cooperative task work runs only when the thread
         * enters the kernel for io_uring; the poll(2) wait used under
         * valgrind would sit on completions until its timeout. */
        for (size_t i = under_valgrind() ? 2 : 0; i < ELEMENTSOF(flag_sets); i++) {
                memset(&p, 0, sizeof(p));
                p.flags = flag_sets[i];
                p.cq_entries = CQ_ENTRIES;
                r = io_uring_queue_init_params(SQ_ENTRIES, &s->ring, &p);
                if (r != -EINVAL)
                        break;
        }
        if (r < 0)
                return r;
        s->ring_ok = true;
        if (!(p.features & IORING_FEAT_NODROP))
                log_warning("this kernel's io_uring may drop completions under overload");
        return 0;
}

void loop_done(struct server *s)
{
        if (s->ring_ok)
                io_uring_queue_exit(&s->ring);
        s->ring_ok = false;
        timers_done(&s->timers);
}

struct io_uring_sqe *get_sqe(struct server *s)
{
        struct io_uring_sqe *sqe;

        /* A full submission queue is flushed and the request retried;
         * the kernel copies SQEs on submit, so this always makes room. */
        while (!(sqe = io_uring_get_sqe(&s->ring)))
                (void)io_uring_submit(&s->ring);
        return sqe;
}

void loop_arm_timer(struct server *s, struct timer *t, int64_t due_ms)
{
        if (timers_arm(&s->timers, t, due_ms) < 0) {
                /* Cannot grow the timer heap: fire on the next turn
                 * instead of losing the deadline. */
                log_error("out of memory for a timer");
        }
}

static void arm_signal(struct server *s)
{
        struct io_uring_sqe *sqe = get_sqe(s);

        io_uring_prep_read(sqe, s->sig_fd, &s->sig_buf, sizeof(s->sig_buf), 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_SIGNAL, 0, 0));
        s->sig_reading = true;
}

/* Before a re-exec: a signal the ring read and whose completion the old
 * process never saw would be lost; one left unread stays pending for
 * the new process's signalfd. */
void loop_park_signals(struct server *s)
{
        struct io_uring_sqe *sqe;

        if (!s->sig_reading)
                return;
        sqe = get_sqe(s);
        io_uring_prep_cancel64(sqe, ud_pack(UD_SIGNAL, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_IGNORE, 0, 0));
}

bool loop_signals_parked(struct server *s)
{
        return !s->sig_reading;
}

void loop_resume_signals(struct server *s)
{
        if (!s->sig_reading)
                arm_signal(s);
}

void loop_arm_store(struct server *s)
{
        struct io_uring_sqe *sqe = get_sqe(s);

        io_uring_prep_read(sqe, s->store_efd, &s->efd_buf, sizeof(s->efd_buf), 0);
        io_uring_sqe_set_data64(sqe, ud_pack(UD_STORE, 0, 0));
}

static void shutdown_grace_over(struct timer *t)
{
        struct server *s = container_of(t, struct server, shutdown_timer);

        log_notice("shutdown grace of %lldms is over: stopping %u running job(s)",
                   (long long)s->cfg.shutdown_grace_ms, s->busy_slots);
        workers_stop_all(s, false);
}

static void begin_drain(struct server *s, int sig)
{
        if (s->draining) {
                log_notice("%s again: stopping running jobs now", strsignal(sig));
                workers_stop_all(s, false);
                return;
        }
        log_notice("%s: draining: no new jobs, %u running job(s) may finish within %lldms", strsignal(sig),
                   s->busy_slots, (long long)s->cfg.shutdown_grace_ms);
        s->draining = true;
        listener_stop(s);
        notify_stopping(s);
        if (s->busy_slots)
                loop_arm_timer(s, &s->shutdown_timer, now_mono_ms() + s->cfg.shutdown_grace_ms);
}

static void on_signal(struct server *s, struct io_uring_cqe *cqe)
{
        s->sig_reading = false;
        if (cqe->res == sizeof(s->sig_buf)) {
                mem_defined(&s->sig_buf, sizeof(s->sig_buf));
                int sig = (int)s->sig_buf.ssi_signo;
                if (sig == SIGHUP && s->on_reload)
                        s->on_reload(s);
                else if (sig == SIGCHLD)
                        workers_on_sigchld(s);
                else if (sig == SIGUSR2) {
                        int r = reexec_begin(s, "SIGUSR2");
                        if (r < 0 && r != -EALREADY)
                                log_warning_errno(r, "SIGUSR2: cannot re-execute now");
                } else
                        begin_drain(s, sig);
        }
        /* Parked for a re-exec: what comes now waits for the new
         * process (pending, unread). */
        if (s->rx.phase != RX_PARK)
                arm_signal(s);
}

/* The store came back with what it committed: each op goes to the module
 * that owns what it changed; then free slots take what became runnable. */
static void on_store(struct server *s)
{
        struct store_op *op = store_take_done(s->store);
        int64_t now = now_mono_us();

        while (op) {
                struct store_op *next = op->next;
                if (op->result == -EBUSY)
                        s->stats.c[C_STORE_BUSY]++;
                /* -ESTALE, -ENOENT, -EPERM, -EALREADY, -EDEADLK are
                 * answers, not failures of the store. */
                if (op->result < 0 && op->result != -ESTALE && op->result != -ENOENT && op->result != -EPERM &&
                    op->result != -EALREADY && op->result != -EDEADLK)
                        s->stats.c[C_STORE_ERRORS]++;
                if (op->result == 0 && op->kind != SOP_SYNCED)
                        latency_add(&s->stats.commit, now - op->enqueued_us);
                switch (op->kind) {
                case SOP_START:
                case SOP_FINISH:
                        worker_on_store_done(s, op);
                        break;
                case SOP_PRUNE:
                        prune_on_done(s, op);
                        break;
                case SOP_DEP_CANCEL:
                        dispatch_on_store_done(s, op);
                        break;
                case SOP_SYNCED:
                        ops_on_synced(s, op);
                        break;
                default:
                        ops_on_store_done(s, op);
                        break;
                }
                store_op_free(op);
                op = next;
        }
        walsync_kick(s);
        dispatch_run(s);
}

static void handle(struct server *s, struct io_uring_cqe *cqe)
{
        switch (ud_op(cqe->user_data)) {
        case UD_ACCEPT:
                listener_on_accept(s, cqe);
                break;
        case UD_RECV:
                conn_on_recv(s, cqe);
                break;
        case UD_SEND:
                conn_on_send(s, cqe);
                break;
        case UD_SIGNAL:
                on_signal(s, cqe);
                break;
        case UD_STORE:
                on_store(s);
                loop_arm_store(s);
                break;
        case UD_STORE_RING:
                on_store(s);
                break;
        case UD_PIDFD:
                worker_on_pidfd(s, cqe);
                break;
        case UD_PIPE_READ:
                worker_on_pipe_read(s, cqe);
                break;
        case UD_FILE_WRITE:
                worker_on_file_write(s, cqe);
                break;
        case UD_FILE_OPEN:
                worker_on_file_open(s, cqe);
                break;
        case UD_EXEC:
                worker_on_exec(s, cqe);
                break;
        case UD_HUP:
                conn_on_hup(s, cqe);
                break;
        case UD_CGROUP:
                worker_on_cgroup(s, cqe);
                break;
        case UD_WALSYNC:
                walsync_on_done(s, cqe);
                break;
        default:
                break;
        }
}

/* Draining ends when no job runs and the store has recorded everything;
 * then waiters are told, replies get a moment to leave, and the loop
 * ends. */
static void check_exit(struct server *s, int64_t *exit_deadline)
{
        bool flushed = true;

        if (!s->draining)
                return;
        if (*exit_deadline == 0) {
                if (s->busy_slots || store_inflight(s->store) || !walsync_idle(s) || !ops_none_held(s))
                        return;
                timers_disarm(&s->timers, &s->shutdown_timer);
                waiters_fail_all(s);
                *exit_deadline = now_mono_ms() + 1000;
        }
        for (unsigned i = 0; i < s->conn_cap; i++) {
                struct conn *c = s->conns[i];
                if (c && !c->closing && (c->slen - c->soff + c->wlen) > 0)
                        flushed = false;
        }
        if (flushed || now_mono_ms() >= *exit_deadline)
                s->stop = true;
}

/* valgrind runs one thread at a time and holds its lock across
 * io_uring_enter, so a thread waiting there starves the store thread.
 * Under valgrind only, the loop waits in poll(2) on the ring fd instead,
 * which valgrind knows to wait outside its lock. */
static int valgrind_wait(struct server *s, struct __kernel_timespec *tsp)
{
        struct pollfd p = { .fd = s->ring.ring_fd, .events = POLLIN };
        int ms = tsp ? (int)MIN(tsp->tv_sec * 1000 + tsp->tv_nsec / 1000000, 1000) : 1000;
        int r = io_uring_submit(&s->ring);

        if (r < 0)
                return r;
        if (!io_uring_cq_ready(&s->ring))
                (void)poll(&p, 1, ms);
        return io_uring_submit_and_get_events(&s->ring);
}

int64_t loop_mono_us(struct server *s)
{
        if (!s->clk.have_mono) {
                s->clk.mono_us = now_mono_us();
                s->clk.have_mono = true;
        }
        return s->clk.mono_us;
}

int64_t loop_mono_ms(struct server *s)
{
        return loop_mono_us(s) / 1000;
}

int64_t loop_wall_ms(struct server *s)
{
        if (!s->clk.have_wall) {
                s->clk.wall_ms = now_wall_ms();
                s->clk.have_wall = true;
        }
        return s->clk.wall_ms;
}

static void clock_forget(struct server *s)
{
        s->clk.have_mono = s->clk.have_wall = false;
}

int loop_turn(struct server *s, int64_t max_wait_ms)
{
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts, *tsp = NULL;
        int64_t next = timers_next(&s->timers);
        unsigned head, n = 0;
        int r;

        if (max_wait_ms >= 0)
                next = MIN(next, now_mono_ms() + max_wait_ms);
        if (next != INT64_MAX) {
                int64_t ms = MAX(next - now_mono_ms(), 0);
                ts.tv_sec = ms / 1000;
                ts.tv_nsec = (ms % 1000) * 1000000;
                tsp = &ts;
        }
        store_flush(s->store);
        if (under_valgrind())
                r = valgrind_wait(s, tsp);
        else
                r = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, tsp, NULL);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY)
                return r;
        io_uring_for_each_cqe(&s->ring, head, cqe) {
                clock_forget(s);
                handle(s, cqe);
                store_flush_if_idle(s->store);
                n++;
        }
        io_uring_cq_advance(&s->ring, n);
        clock_forget(s);
        timers_run(&s->timers, loop_mono_ms(s));
        conn_reap(s);
        clock_forget(s);
        return (int)n;
}

int loop_run(struct server *s)
{
        int64_t exit_deadline = 0;

        timer_init(&s->shutdown_timer, shutdown_grace_over);
        arm_signal(s);
        loop_arm_store(s);
        listener_arm(s);
        conn_arm_hup(s);

        while (!s->stop) {
                /* While draining ends or a re-exec settles, look at
                 * the replies and slots often. */
                int r = loop_turn(s, exit_deadline || s->rx.phase != RX_NONE ? 50 : -1);
                if (r < 0)
                        return log_error_errno(r, "io_uring wait failed");
                reexec_poll(s);
                check_exit(s, &exit_deadline);
        }
        return 0;
}
