/* Telling systemd how ringqd is doing (notify.c): READY, STATUS,
 * WATCHDOG, RELOADING and STOPPING over $NOTIFY_SOCKET. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timers.h"

struct server;

struct notifier {
        bool enabled;            /* $NOTIFY_SOCKET is set */
        int64_t status_sent_mono_ms;
        bool status_dirty, last_accepting;
        struct timer status_timer;
        uint64_t watchdog_usec;
        struct timer watchdog_timer;
};

void notify_init(struct server *s);
void notify_ready(struct server *s);
void notify_stopping(struct server *s);
void notify_reloading(struct server *s);
/* Mark the status line changed; sent at once on an accepting/rejecting
 * switch, else at most once a second. */
void notify_status(struct server *s);
void notify_status_now(struct server *s);
void notify_status_text(struct server *s, char *buf, size_t size);
/* accepting, rejecting or draining. */
const char *server_state_word(struct server *s);
