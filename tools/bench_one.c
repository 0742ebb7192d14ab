/* ringq-bench one: the cost ringq adds to one job nobody waits behind.
 * N times, on an idle ringqd: submit a job, wait for its end (the time
 * from sending the submit to reading the wait's answer), and beside it
 * spawn the same command directly (posix_spawnp + waitpid, output to
 * /dev/null): the floor, taken in the same run and interleaved with the
 * jobs so both see the same machine. What ringq adds is the difference of
 * the medians; the daemon's own step timings (stats job_path_ms) say where
 * it goes. The submit's own answer (its fsync'd commit) is timed apart:
 * what is added beyond it is what ringq adds to a job besides making it
 * durable.
 *
 * With --fsync-dir, a third figure in the same rounds: the disk's floor
 * under a durable submit. An fdatasync costs what the disk makes it cost
 * (a tenth of a millisecond to several on the same machine, hour to
 * hour), so a ratio against spawn alone says little about ringq when the
 * disk is slow; beside this floor it does.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* The command's argv, split on blanks (like bench_submit_request). */
static char **split_cmd(const char *cmd)
{
        size_t n = 0, cap = 8;
        char **v = calloc(cap, sizeof(*v)), *copy = strdup(cmd), *save = NULL;

        if (!v || !copy)
                goto fail;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                if (n + 2 > cap) {
                        char **nv = realloc(v, (cap *= 2) * sizeof(*v));
                        if (!nv)
                                goto fail;
                        v = nv;
                }
                if (!(v[n++] = strdup(w)))
                        goto fail;
                v[n] = NULL;
        }
        free(copy);
        return v;
fail:
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
        free(copy);
        return NULL;
}

static int spawn_once(char **argv, posix_spawn_file_actions_t *fa, hist *h)
{
        int64_t t0 = now_ns();
        pid_t pid;
        int st, r;

        r = posix_spawnp(&pid, argv[0], fa, NULL, argv, environ);
        if (r)
                return -r;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        hist_add(h, (uint64_t)(now_ns() - t0));
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static int job_once(client *c, const json_t *submit, hist *h, hist *hs, char *err, size_t errsize)
{
        _cleanup_json_ json_t *reply = NULL, *wreply = NULL, *wait = NULL;
        int64_t t0 = now_ns();
        const char *state;
        int r;

        r = client_call(c, submit, &reply);
        if (r < 0)
                return r;
        if (!client_reply_ok(reply)) {
                snprintf(err, errsize, "submit: %s: %s", client_reply_error(reply), client_reply_message(reply));
                return -EPROTO;
        }
        hist_add(hs, (uint64_t)(now_ns() - t0));
        wait = json_pack("{s:s, s:I, s:i}", "op", "wait", "id", json_integer_value(json_object_get(reply, "id")),
                         "timeout_ms", 60000);
        if (!wait)
                return -ENOMEM;
        r = client_call(c, wait, &wreply);
        if (r < 0)
                return r;
        state = json_string_value(json_object_get(json_object_get(wreply, "job"), "state"));
        if (!client_reply_ok(wreply) || !state || strcmp(state, "succeeded") != 0) {
                snprintf(err, errsize, "wait: %s", client_reply_ok(wreply) ? (state ? state : "?")
                                                                           : client_reply_message(wreply));
                return -EPROTO;
        }
        hist_add(h, (uint64_t)(now_ns() - t0));
        return 0;
}

int bench_one(const bench_opts *o, json_t **ret)
{
        _cleanup_client_ client *c = NULL;
        _cleanup_json_ json_t *req = NULL;
        posix_spawn_file_actions_t fa;
        proc_sample pa = { 0 }, pb = { 0 };
        hist *jobs = calloc(1, sizeof(hist)), *spawns = calloc(1, sizeof(hist)), *submits = calloc(1, sizeof(hist)),
             *fsyncs = calloc(1, sizeof(hist));
        struct bench_floor *floor = NULL;
        char **argv = split_cmd(o->cmd), err[200] = "";
        int64_t deadline = client_now_ms() + o->duration_ms;
        uint64_t done = 0;
        json_t *res = NULL;
        int pid, r;

        posix_spawn_file_actions_init(&fa);
        if (!jobs || !spawns || !submits || !fsyncs || !argv || !argv[0]) {
                r = -ENOMEM;
                goto out;
        }
        if (o->fsync_dir && (r = bench_floor_open(o->fsync_dir, &floor)) < 0)
                goto out;
        /* The floor's child gets what a job gets: stdin from /dev/null, its
         * output to a place that keeps nothing. */
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        r = bench_submit_request(o, 0, &req);
        if (r < 0)
                goto out;
        r = bench_connect_sampled(o, &c, &pid, &pa);
        if (r < 0)
                goto out;
        for (; done < o->count && client_now_ms() < deadline; done++) {
                /* Alternate which goes first, so neither always runs on a
                 * cache the other warmed. */
                bool spawn_first = done & 1;
                if (spawn_first && (r = spawn_once(argv, &fa, spawns)) < 0)
                        break;
                if ((r = job_once(c, req, jobs, submits, err, sizeof(err))) < 0)
                        break;
                if (!spawn_first && (r = spawn_once(argv, &fa, spawns)) < 0)
                        break;
                if (floor && (r = bench_floor_once(floor, fsyncs)) < 0) {
                        snprintf(err, sizeof(err), "the fsync floor: %s", strerror(-r));
                        break;
                }
        }
        (void)proc_read(pid, &pb);
        if (r < 0) {
                fprintf(stderr, "ringq-bench: one: %s\n", err[0] ? err : r == -ECHILD ? "the floor's command failed" : strerror(-r));
                r = -ECANCELED;
                goto out;
        }
        res = json_object();
        if (!res) {
                r = -ENOMEM;
                goto out;
        }
        {
                int64_t job50 = (int64_t)hist_quantile(jobs, 0.5), spawn50 = (int64_t)hist_quantile(spawns, 0.5),
                        submit50 = (int64_t)hist_quantile(submits, 0.5), fsync50 = (int64_t)hist_quantile(fsyncs, 0.5);

                json_object_set_new(res, "mode", json_string("one"));
                json_object_set_new(res, "cmd", json_string(o->cmd));
                json_object_set_new(res, "jobs", json_integer((json_int_t)done));
                json_object_set_new(res, "job_ms", hist_json(jobs));
                json_object_set_new(res, "spawn_ms", hist_json(spawns));
                json_object_set_new(res, "submit_ms", hist_json(submits));
                json_object_set_new(res, "added_ms_p50", bench_ms(job50 - spawn50));
                json_object_set_new(res, "added_beyond_submit_ms_p50", bench_ms(job50 - spawn50 - submit50));
                if (floor) {
                        /* Both floors in series: a job whose every step
                         * beyond the spawn and the one fsync were free
                         * would show 0, and below 0 when the two overlap. */
                        json_object_set_new(res, "fsync_ms", hist_json(fsyncs));
                        json_object_set_new(res, "submit_beyond_fsync_ms_p50", bench_ms(submit50 - fsync50));
                        json_object_set_new(res, "added_beyond_fsync_ms_p50", bench_ms(job50 - spawn50 - fsync50));
                }
                json_object_set_new(res, "daemon", proc_json(pid, &pa, &pb));
                bench_add_daemon_figures(c, res, &pa, &pb, done);
        }
        *ret = TAKE_PTR(res);
        r = 0;
out:
        posix_spawn_file_actions_destroy(&fa);
        if (argv)
                for (char **p = argv; *p; p++)
                        free(*p);
        free(argv);
        free(jobs);
        free(spawns);
        free(submits);
        free(fsyncs);
        bench_floor_close(floor);
        return r;
}
