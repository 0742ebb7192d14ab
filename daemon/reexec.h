/* Re-executing ringqd in place: the running process is replaced by a
 * new one (the same path, perhaps a new version) while jobs run on.
 *
 * It is what a web server's binary upgrade and systemd's daemon-reexec do:
 * execve of itself with the descriptors that matter kept open and a
 * small state hand-off. The pid stays, so the jobs stay ringqd's
 * children (their pidfds, their parent-death signal, which is tied to
 * the main thread that cloned them and which an execve from that thread
 * does not fire) and systemd's MAINPID stays true. What is handed over:
 * the listening socket, the state directory (and its lock), and for each
 * running job its pidfd, output pipes, output files, exec pipe and
 * deadline. Everything else the new process reads from SQLite as it does
 * at any start. Client connections are closed; the CLI reconnects and
 * asks again (a wait is re-issued).
 *
 * Steps, from the loop: quiesce (no new starts or accepts; wait until
 * the store has committed everything, no start or end is half done and
 * replies have left), park (cancel the ring's reads on every job's pipes
 * and pidfd, and wait until the ring holds nothing of theirs), then stop
 * the store thread and exec. If the exec fails, everything is re-armed
 * and ringqd goes on as before. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct server;

enum reexec_phase {
        RX_NONE,
        RX_QUIESCE,
        RX_PARK,
};

struct reexec {
        enum reexec_phase phase;
        int64_t deadline_ms;     /* CLOCK_MONOTONIC: give up the quiesce */
        int64_t clients_ms;      /* stop waiting for clients to read their replies */
        uint64_t count;          /* re-execs this ringqd's pid has been through */
};

/* main: remember how ringqd was started (the binary's path now, before
 * an upgrade replaces the file, and the arguments). */
void reexec_save_args(int argc, char **argv);
/* Ask for a re-exec (SIGUSR2, op reexec). 0, -EALREADY if one is under
 * way, -ESHUTDOWN while draining. */
int reexec_begin(struct server *s, const char *why);
/* The loop calls this after each turn while a re-exec is under way; it
 * moves through the steps and does not return if the exec succeeds. */
void reexec_poll(struct server *s);

/* The new process: the hand-off the old one left ($RINGQ_REEXEC_FD), or
 * NULL if this is a plain start. The variable is removed, the
 * descriptor closed. Unreadable or of an unknown version: an error is
 * logged and NULL returned (a start like after a crash; the jobs that
 * were running are recovered and requeued). */
json_t *reexec_take_handoff(void);
/* With a hand-off: keep the state_dir and socket the old process ran
 * on, whatever the configuration says now. */
int reexec_keep_paths(struct server *s);
