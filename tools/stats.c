/* ringq stats (human or Prometheus text), ping, and the queue verbs:
 * queues, pause and resume. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fmt.h"
#include "ringq/utf8.h"

static bool arg_prometheus;

int verb_stats(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = {
                COMMON_LONG,
                { "prometheus", no_argument, NULL, OPT_PROMETHEUS },
                {}
        };
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1) {
                if (c == OPT_PROMETHEUS)
                        arg_prometheus = true;
                else if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        }
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        r = open_client(&cl);
        if (r)
                return r;
        r = call(cl, json_pack("{s:s}", "op", "stats"), &reply);
        if (r || arg_json)
                return r;
        r = arg_prometheus ? fmt_prometheus(stdout, reply) : fmt_stats(stdout, reply);
        return r < 0 ? RINGQ_EXIT_SOFTWARE : 0;
}

int verb_ping(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        struct timespec t0, t1;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        r = open_client(&cl);
        if (r)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = call(cl, json_pack("{s:s}", "op", "ping"), &reply);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r || arg_json)
                return r;
        printf("ringqd %s protocol %" PRId64 ", round trip %.3f ms\n",
               json_string_value(json_object_get(reply, "version")) ?: "?",
               (int64_t)json_integer_value(json_object_get(reply, "protocol")),
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        return 0;
}


/* queues, pause and resume: the op is the verb's name, and each answers
 * with the queue table. Whether a name is a valid queue is ringqd's to
 * say, as for submit -q. */
int verb_queues(const struct verb *v, int argc, char **argv)
{
        static const struct option opts[] = { COMMON_LONG, {} };
        bool takes_queue = strcmp(v->name, "queues") != 0;
        _cleanup_client_ client *cl = NULL;
        _cleanup_json_ json_t *reply = NULL;
        const char *queue = NULL;
        json_t *req;
        int c, r;

        while ((c = getopt_long(argc, argv, ":" COMMON_SHORT, opts, NULL)) != -1)
                if ((r = common_opt(v, c, argv)) >= 0)
                        return r;
        if (takes_queue && optind < argc)
                queue = argv[optind++];
        if (optind < argc)
                return usage_error(v, "unexpected argument '%s'", argv[optind]);
        if (queue && !ringq_utf8_valid(queue))
                return usage_error(v, "queue must be valid UTF-8");
        r = open_client(&cl);
        if (r)
                return r;
        req = json_pack("{s:s}", "op", v->name);
        if (req && queue && set_new(req, "queue", json_string(queue)) < 0) {
                json_decref(req);
                req = NULL;
        }
        r = call(cl, req, &reply);
        if (r || arg_json)
                return r;
        return fmt_queues(stdout, reply) < 0 ? RINGQ_EXIT_SOFTWARE : 0;
}
