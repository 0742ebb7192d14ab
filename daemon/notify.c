/* Telling systemd how ringqd is doing: READY, STATUS, WATCHDOG,
 * RELOADING and STOPPING over $NOTIFY_SOCKET. sd_notify is one datagram
 * to a local socket: bounded and cheap enough for the loop. Without
 * $NOTIFY_SOCKET it does nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "server.h"

#define STATUS_INTERVAL_MS 1000

const char *server_state_word(struct server *s)
{
        if (s->draining)
                return "draining";
        if (s->rx.phase != RX_NONE)
                return "reexecuting";
        return s->dp.accepting ? "accepting" : "rejecting";
}

void notify_status_text(struct server *s, char *buf, size_t size)
{
        snprintf(buf, size, "%s; queued %lld/%llu; running %u/%u; ok %llu, failed %llu; rejected %llu",
                 server_state_word(s), (long long)qindex_queued(&s->dp.qi), (unsigned long long)s->cfg.high_water,
                 s->busy_slots, s->nslots, (unsigned long long)s->stats.c[C_SUCCEEDED],
                 (unsigned long long)s->stats.c[C_FAILED],
                 (unsigned long long)(s->stats.c[C_REJECTED_FULL] + s->stats.c[C_REJECTED_OTHER]));
}

static void send_status(struct server *s, const char *prefix)
{
        char text[256];

        notify_status_text(s, text, sizeof(text));
        s->notify.status_sent_mono_ms = now_mono_ms();
        s->notify.status_dirty = false;
        s->notify.last_accepting = s->dp.accepting;
        timers_disarm(&s->timers, &s->notify.status_timer);
        if (s->notify.enabled)
                (void)sd_notifyf(0, "%sSTATUS=%s", prefix, text);
}

static void status_due(struct timer *t)
{
        struct server *s = container_of(t, struct server, notify.status_timer);

        if (s->notify.status_dirty)
                send_status(s, "");
}

static void watchdog_due(struct timer *t)
{
        struct server *s = container_of(t, struct server, notify.watchdog_timer);

        /* Sent from the loop itself: if the loop stalls, the pings stop
         * and systemd restarts the service. */
        (void)sd_notify(0, "WATCHDOG=1");
        loop_arm_timer(s, &s->notify.watchdog_timer, now_mono_ms() + (int64_t)(s->notify.watchdog_usec / 2000));
}

void notify_init(struct server *s)
{
        uint64_t usec = 0;

        s->notify.enabled = getenv("NOTIFY_SOCKET") != NULL;
        s->notify.last_accepting = s->dp.accepting;
        timer_init(&s->notify.status_timer, status_due);
        timer_init(&s->notify.watchdog_timer, watchdog_due);
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
                s->notify.watchdog_usec = usec;
                loop_arm_timer(s, &s->notify.watchdog_timer, now_mono_ms() + (int64_t)(usec / 2000));
                log_info("watchdog enabled: pinging every %llums", (unsigned long long)(usec / 2000));
        }
}

/* Now, not at the next rate-limited update: a change of phase. */
void notify_status_now(struct server *s)
{
        send_status(s, "");
}

void notify_ready(struct server *s)
{
        send_status(s, "READY=1\n");
}

void notify_stopping(struct server *s)
{
        send_status(s, "STOPPING=1\n");
}

void notify_reloading(struct server *s)
{
        if (s->notify.enabled) {
                /* MONOTONIC_USEC lets a Type=notify-reload unit match this
                 * reload to its request; older systemd ignores it. */
                (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)now_mono_us());
        }
}

void notify_status(struct server *s)
{
        s->notify.status_dirty = true;
        /* A switch between accepting and rejecting is news at once; the
         * rest is sent at most once a second. While the timer is armed,
         * a second has not passed (this is called for every submit). */
        if (s->notify.last_accepting == s->dp.accepting && timer_armed(&s->notify.status_timer))
                return;
        if (s->notify.last_accepting != s->dp.accepting ||
            loop_mono_ms(s) - s->notify.status_sent_mono_ms >= STATUS_INTERVAL_MS)
                send_status(s, "");
        else if (!timer_armed(&s->notify.status_timer))
                loop_arm_timer(s, &s->notify.status_timer, s->notify.status_sent_mono_ms + STATUS_INTERVAL_MS);
}
