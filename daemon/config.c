/* Config keys, their parsers and their limits. Unknown keys and bad
 * values are errors that name the line: a typo must not silently run
 * the daemon with a default the operator did not choose. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "launches.h"
#include "log.h"
#include "ringq/parse.h"

enum ktype { K_PATH, K_COUNT, K_DURATION, K_SIZE, K_DURABILITY, K_LOGLEVEL, K_FAIRSHARE, K_CGROUP, K_NAME };

struct kdef {
        struct config_key pub;
        enum ktype type;
        size_t off;
        uint64_t min, max;     /* for counts, sizes and durations (ms) */
        bool reloadable;
};

#define OFF(f) offsetof(struct config, f)
#define U64MAX UINT64_MAX

static const struct kdef kdefs[] = {
        { { "state_dir", "state-dir", "state directory (queue.db, output/, launches)", "$STATE_DIRECTORY or /var/lib/ringq" },
          K_PATH, OFF(state_dir), 0, 0, false },
        { { "socket", "socket", "listening socket path", "$RUNTIME_DIRECTORY/ringq.sock or /run/ringq/ringq.sock" },
          K_PATH, OFF(socket), 0, 0, false },
        { { "workers", "workers", "fixed number of worker slots", "number of CPUs" },
          K_COUNT, OFF(workers), 1, LAUNCHES_MAX, false },
        { { "high_water", "high-water", "queued jobs at which submits are rejected", "10000" },
          K_COUNT, OFF(high_water), 1, 100000000, true },
        { { "low_water", "low-water", "queued jobs at which submits are accepted again", "90% of high_water" },
          K_COUNT, OFF(low_water), 0, 100000000, true },
        { { "max_clients", "max-clients", "client connections served at once", "1024" },
          K_COUNT, OFF(max_clients), 1, 65536, false },
        { { "max_request_bytes", "max-request", "longest request line", "65536" },
          K_SIZE, OFF(max_request_bytes), 256, 64 << 20, true },
        { { "default_timeout", "default-timeout", "timeout of jobs that set none", "1h" },
          K_DURATION, OFF(default_timeout_ms), 1, RINGQ_DURATION_MAX_MS, true },
        { { "kill_grace", "kill-grace", "time between SIGTERM and SIGKILL", "10s" },
          K_DURATION, OFF(kill_grace_ms), 0, 3600 * 1000, true },
        { { "max_output_bytes", "max-output", "output kept per stream per job", "16MiB" },
          K_SIZE, OFF(max_output_bytes), 0, (uint64_t)1 << 40, true },
        { { "retention", "retention", "how long finished jobs are kept", "7d" },
          K_DURATION, OFF(retention_ms), 0, RINGQ_DURATION_MAX_MS, true },
        { { "max_finished", "max-finished", "finished jobs kept at most", "100000" },
          K_COUNT, OFF(max_finished), 0, 1000000000, true },
        { { "durability", "durability", "full (fsync before ack) or normal", "full" },
          K_DURABILITY, OFF(durability), 0, 0, false },
        { { "shutdown_grace", "shutdown-grace", "how long running jobs may finish on stop", "30s" },
          K_DURATION, OFF(shutdown_grace_ms), 0, 24 * 3600 * 1000, true },
        { { "reexec_timeout", "reexec-timeout",
            "how long a re-exec may wait for starts, ends and commits to settle", "15s" },
          K_DURATION, OFF(reexec_timeout_ms), 100, 3600 * 1000, true },
        { { "max_interruptions", "max-interruptions",
            "interruptions by a stop or crash of ringqd a job gets without spending an attempt", "3" },
          K_COUNT, OFF(max_interruptions), 0, 1000, true },
        { { "log_level", "log-level", "debug, info, notice, warning or err", "info" },
          K_LOGLEVEL, OFF(log_level), 0, 0, true },
        { { "idle_timeout", "idle-timeout", "close connections idle this long", "60s" },
          K_DURATION, OFF(idle_timeout_ms), 100, 24 * 3600 * 1000, true },
        { { "max_pipeline", "max-pipeline", "unanswered requests per connection", "64" },
          K_COUNT, OFF(max_pipeline), 1, 4096, true },
        { { "max_reply_bytes", "max-reply-buffer", "unread replies per connection before it is closed", "1MiB" },
          K_SIZE, OFF(max_reply_bytes), 4096, 1 << 30, true },
        { { "busy_timeout", "busy-timeout", "how long a commit waits for a database lock", "1s" },
          K_DURATION, OFF(busy_timeout_ms), 0, 60 * 1000, true },
        { { "max_batch", "max-batch", "operations grouped into one commit", "4096" },
          K_COUNT, OFF(max_batch), 1, 1000000, false },
        { { "max_clients_per_user", "max-clients-per-user", "connections of one non-root user (0: no cap)", "64" },
          K_COUNT, OFF(max_clients_per_user), 0, 65536, true },
        { { "root_reserve_clients", "root-reserve-clients", "connections beyond max_clients that only root can take", "16" },
          K_COUNT, OFF(root_reserve_clients), 0, 4096, false },
        { { "max_queued_per_user", "max-queued-per-user", "queued jobs of one non-root user (0: no cap)", "0" },
          K_COUNT, OFF(max_queued_per_user), 0, 100000000, true },
        { { "root_reserve_jobs", "root-reserve-jobs", "queued jobs root may add above high_water", "5% of high_water" },
          K_COUNT, OFF(root_reserve_jobs), 0, 100000000, true },
        { { "fair_share", "fair-share", "users (a free slot goes to the user running fewest jobs) or off", "users" },
          K_FAIRSHARE, OFF(fair_share), 0, 0, false },
        { { "cgroup", "cgroup", "auto, off, or a cgroup v2 directory for the jobs' cgroups", "auto" },
          K_CGROUP, OFF(cgroup), 0, 0, false },
        { { "pam_service", "pam-service", "PAM service whose session gives jobs their owner's login limits, or none", "ringq" },
          K_NAME, OFF(pam_service), 0, 0, true },
};

const size_t config_nkeys = ELEMENTSOF(kdefs);
_Static_assert(ELEMENTSOF(kdefs) == CONFIG_NKEYS, "CONFIG_NKEYS is the number of keys in kdefs");

/* Errors past this many are counted, not listed: a binary file given as
 * the config must not flood the journal. */
#define MAX_ERRORS 50

const struct config_key *config_key_at(size_t i)
{
        return i < ELEMENTSOF(kdefs) ? &kdefs[i].pub : NULL;
}

static const char *const durability_names[_DURABILITY_MAX] = {
        [DURABILITY_FULL] = "full", [DURABILITY_NORMAL] = "normal",
};

static const char *const fair_share_names[_FAIR_SHARE_MAX] = {
        [FAIR_SHARE_USERS] = "users", [FAIR_SHARE_OFF] = "off",
};

bool queue_name_valid(const char *name, size_t len)
{
        if (len == 0 || len > QUEUE_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", name[i]) || !name[i])
                        return false;
        return true;
}

const struct queue_cfg *config_queue(const struct config *c, const char *name)
{
        for (size_t i = 0; i < c->nqueues; i++)
                if (strcmp(c->queues[i].name, name) == 0)
                        return &c->queues[i];
        return NULL;
}

/* queue.<name>.workers and queue.<name>.high_water: keys with a name in
 * them, so not in the table. Reasons without the key, like set_key's. */
static int set_queue_key(struct config *c, const char *key, const char *value, struct config_origin from,
                         char **ret_why)
{
        const char *name = key + strlen("queue."), *dot = strrchr(name, '.');
        struct queue_cfg *q;
        uint64_t u;
        bool workers;

        if (!dot || dot == name || !queue_name_valid(name, (size_t)(dot - name)) ||
            (strcmp(dot, ".workers") != 0 && strcmp(dot, ".high_water") != 0)) {
                set_error(ret_why, -EINVAL, "unknown key '%s' (queue.<name>.workers or queue.<name>.high_water, "
                          "a name of 1-64 letters, digits, '_', '.' or '-')", key);
                return -ENOENT;
        }
        workers = strcmp(dot, ".workers") == 0;
        if (ringq_parse_u64(value, &u, &(const char *){ NULL }) < 0 || strspn(value, "0123456789") != strlen(value))
                return set_error(ret_why, -EINVAL, "'%s' is not a whole number", value);
        if (u < 1 || u > (workers ? 1024 : 100000000))
                return set_error(ret_why, -EINVAL, "%s is out of range (1..%u)", value, workers ? 1024 : 100000000);
        for (q = c->queues; q && q < c->queues + c->nqueues; q++)
                if (strlen(q->name) == (size_t)(dot - name) && strncmp(q->name, name, (size_t)(dot - name)) == 0)
                        break;
        if (!q || q == c->queues + c->nqueues) {
                size_t cap = c->nqueues;
                if (grow_array((void **)&c->queues, &cap, c->nqueues + 1, sizeof(*c->queues)) < 0)
                        return -ENOMEM;
                q = &c->queues[c->nqueues++];
                *q = (struct queue_cfg){ 0 };
                memcpy(q->name, name, (size_t)(dot - name));
        }
        if (workers) {
                q->workers = u;
                q->workers_from = from;
        } else {
                q->high_water = u;
                q->high_water_from = from;
        }
        return 0;
}

static const struct kdef *kdef_find(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(kdefs); i++)
                if (strcmp(kdefs[i].pub.key, key) == 0)
                        return &kdefs[i];
        return NULL;
}

const struct config_key *config_key_by_flag(const char *flag)
{
        for (size_t i = 0; i < ELEMENTSOF(kdefs); i++)
                if (strcmp(kdefs[i].pub.flag, flag) == 0)
                        return &kdefs[i].pub;
        return NULL;
}

bool config_key_reloadable(const char *key)
{
        const struct kdef *k = kdef_find(key);
        return k && k->reloadable;
}

void config_init(struct config *c)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        const char *sd = getenv("STATE_DIRECTORY");
        const char *rd = getenv("RUNTIME_DIRECTORY");

        *c = (struct config){
                .workers = n > 0 ? (uint64_t)MIN(n, 1024) : 1,
                .high_water = 10000,
                .max_clients = 1024,
                .max_request_bytes = 65536,
                .default_timeout_ms = 3600 * 1000,
                .kill_grace_ms = 10 * 1000,
                .max_output_bytes = 16 << 20,
                .retention_ms = 7LL * 24 * 3600 * 1000,
                .max_finished = 100000,
                .durability = DURABILITY_FULL,
                .shutdown_grace_ms = 30 * 1000,
                .reexec_timeout_ms = 15 * 1000,
                .max_interruptions = 3,
                .log_level = LOG_INFO,
                .idle_timeout_ms = 60 * 1000,
                .max_pipeline = 64,
                .max_reply_bytes = 1 << 20,
                .busy_timeout_ms = 1000,
                .max_batch = 4096,
                .max_clients_per_user = 64,
                .root_reserve_clients = 16,
                .fair_share = FAIR_SHARE_USERS,
        };
        /* systemd may pass several colon-separated directories; the
         * first one is ours. */
        if (sd && *sd)
                c->state_dir = strndup(sd, strcspn(sd, ":"));
        else
                c->state_dir = strdup(RINGQ_STATE_DEFAULT);
        if (rd && *rd) {
                if (asprintf(&c->socket, "%.*s/" RINGQ_SOCKET_NAME, (int)strcspn(rd, ":"), rd) < 0)
                        c->socket = NULL;
        } else
                c->socket = strdup(RINGQ_SOCKET_DEFAULT);
        c->cgroup = strdup("auto");
        c->pam_service = strdup("ringq");
}

void config_done(struct config *c)
{
        free(c->state_dir);
        free(c->socket);
        free(c->cgroup);
        free(c->pam_service);
        free(c->queues);
        free(c->file);
        c->state_dir = c->socket = c->cgroup = c->pam_service = c->file = NULL;
        c->queues = NULL;
        c->nqueues = 0;
}

/* Parse value into the field of k. */
static int set_value(struct config *c, const struct kdef *k, char *field, const char *value, char **ret_why)
{
        uint64_t u = 0;
        int64_t ms;
        int r;

        switch (k->type) {
        case K_PATH:
        case K_CGROUP:
        case K_NAME: {
                char *p;
                if (k->type == K_NAME && (strlen(value) > 64 || strspn(value, "abcdefghijklmnopqrstuvwxyz"
                                                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(value)))
                        return set_error(ret_why, -EINVAL, "'%s' is not a name of letters, digits, '_', '.' and '-'", value);
                if (k->type == K_CGROUP && value[0] != '/' && strcmp(value, "auto") != 0 && strcmp(value, "off") != 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not auto, off or an absolute path", value);
                if (k->type == K_PATH && value[0] != '/')
                        return set_error(ret_why, -EINVAL, "'%s' is not an absolute path", value);
                p = strdup(value);
                if (!p)
                        return -ENOMEM;
                free(*(char **)field);
                *(char **)field = p;
                return 0;
        }
        case K_COUNT:
                r = ringq_parse_u64(value, &u, &(const char *){ NULL });
                if (r < 0 || strspn(value, "0123456789") != strlen(value))
                        return set_error(ret_why, -EINVAL, "'%s' is not a whole number", value);
                break;
        case K_SIZE:
                r = ringq_parse_size(value, &u);
                if (r < 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not a size (like 65536, 64K, 16M)", value);
                break;
        case K_DURATION:
                r = ringq_parse_duration_ms(value, &ms);
                if (r < 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not a duration (like 250ms, 30s, 5m, 2h, 7d)", value);
                if ((uint64_t)ms < k->min || (uint64_t)ms > k->max)
                        return set_error(ret_why, -EINVAL, "%s is out of range (%llums..%llums)", value,
                                    (unsigned long long)k->min, (unsigned long long)k->max);
                *(int64_t *)field = ms;
                return 0;
        case K_DURABILITY:
                r = ringq_lookup(durability_names, _DURABILITY_MAX, value);
                if (r < 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not one of full, normal", value);
                *(int *)field = r;
                return 0;
        case K_FAIRSHARE:
                r = ringq_lookup(fair_share_names, _FAIR_SHARE_MAX, value);
                if (r < 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not one of users, off", value);
                *(int *)field = r;
                return 0;
        case K_LOGLEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return set_error(ret_why, -EINVAL, "'%s' is not a log level (debug, info, notice, warning, err)", value);
                *(int *)field = r;
                return 0;
        }
        if (u < k->min || u > k->max)
                return set_error(ret_why, -EINVAL, "%s is out of range (%llu..%llu)", value,
                            (unsigned long long)k->min, (unsigned long long)k->max);
        *(uint64_t *)field = u;
        if (k->off == OFF(low_water))
                c->low_water_set = true;
        if (k->off == OFF(root_reserve_jobs))
                c->root_reserve_jobs_set = true;
        return 0;
}

/* Set a key and note where from. On a bad value *ret_why is the reason
 * without the key, so that each caller can say where the value was. */
static int set_key(struct config *c, const char *key, const char *value, struct config_origin from, char **ret_why)
{
        const struct kdef *k = kdef_find(key);
        char *field;
        int r;

        *ret_why = NULL;
        if (!k && strncmp(key, "queue.", 6) == 0)
                return set_queue_key(c, key, value, from, ret_why);
        if (!k) {
                set_error(ret_why, -EINVAL, "unknown key '%s'", key);
                return -ENOENT;
        }
        field = (char *)c + k->off;
        r = set_value(c, k, field, value, ret_why);
        if (r == -EINVAL)
                c->origin[k - kdefs].bad = true;
        if (r < 0)
                return r;
        c->origin[k - kdefs] = from;
        return 0;
}

int config_set(struct config *c, const char *key, const char *value, char **ret_err)
{
        char *why = NULL;
        int r = set_key(c, key, value, (struct config_origin){ 0 }, &why);

        *ret_err = NULL;
        if (r == -EINVAL) {
                set_error(ret_err, r, "%s: %s", key, why ? why : "invalid");
                free(why);
        } else
                *ret_err = why;
        return r;
}

int config_set_option(struct config *c, const char *flag, const char *value, char **ret_err)
{
        const struct config_key *k = config_key_by_flag(flag);
        char *why = NULL;
        int r;

        *ret_err = NULL;
        if (!k)
                return set_error(ret_err, -EINVAL, "--%s: not an option that sets a key", flag);
        r = set_key(c, k->key, value, (struct config_origin){ .seq = ++c->nsets }, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                set_error(ret_err, -EINVAL, "--%s: %s", flag, why ? why : "invalid");
        free(why);
        return r < 0 ? -EINVAL : 0;
}

/* Add one line to the errors in *errs; -EINVAL, or -ENOMEM. */
_printf_(2, 3) static int add_error(char **errs, const char *fmt, ...)
{
        char *line = NULL, *joined;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        if (!*errs) {
                *errs = line;
                return -EINVAL;
        }
        n = asprintf(&joined, "%s\n%s", *errs, line);
        free(line);
        if (n < 0)
                return -ENOMEM;
        free(*errs);
        *errs = joined;
        return -EINVAL;
}

static char *strip(char *s)
{
        char *e;

        s += strspn(s, " \t\r");
        e = s + strlen(s);
        while (e > s && strchr(" \t\r", e[-1]))
                *--e = '\0';
        return s;
}

int config_parse_buffer(struct config *c, const char *buf, size_t len,
                        const char *name, char **ret_err)
{
        _cleanup_free_ char *copy = NULL;
        char *line, *next, *errs = NULL;
        unsigned lineno = 0, nerr = 0;

        *ret_err = NULL;
        {
                const char *nul = memchr(buf, '\0', len);
                unsigned at = 1;
                for (const char *p = buf; nul && p < nul; p++)
                        at += *p == '\n';
                if (nul)
                        return set_error(ret_err, -EINVAL, "%s:%u: contains a NUL byte", name, at);
        }
        copy = strndup(buf, len);
        free(c->file);
        c->file = strdup(name);
        if (!copy || !c->file)
                return -ENOMEM;
        for (line = copy; line; line = next) {
                char *eq, *key, *value, *why = NULL;
                int r;

                lineno++;
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                line = strip(line);
                if (*line == '\0' || *line == '#')
                        continue;
                eq = strchr(line, '=');
                if (eq) {
                        *eq = '\0';
                        key = strip(line);
                        value = strip(eq + 1);
                        /* A trailing comment after a value is allowed. */
                        value[strcspn(value, "#")] = '\0';
                        value = strip(value);
                        r = *value ? set_key(c, key, value, (struct config_origin){ .seq = ++c->nsets, .line = lineno },
                                             &why)
                                   : 0;
                        if (r == -ENOMEM) {
                                free(errs);
                                return r;
                        }
                        if (r == 0 && *value)
                                continue;
                }
                /* Every bad line is reported, so that one run of
                 * --check-config shows them all. */
                if (++nerr > MAX_ERRORS)
                        r = -EINVAL;
                else if (!eq)
                        r = add_error(&errs, "%s:%u: expected 'key = value'", name, lineno);
                else if (!*value)
                        r = add_error(&errs, "%s:%u: %s: missing value", name, lineno, key);
                else if (r == -ENOENT)
                        r = add_error(&errs, "%s:%u: %s", name, lineno, why ? why : "unknown key");
                else
                        r = add_error(&errs, "%s:%u: %s: %s", name, lineno, key, why ? why : "invalid");
                free(why);
                if (r == -ENOMEM) {
                        free(errs);
                        return r;
                }
        }
        if (nerr > MAX_ERRORS && add_error(&errs, "%s: %u more errors not shown", name, nerr - MAX_ERRORS) == -ENOMEM) {
                free(errs);
                return -ENOMEM;
        }
        *ret_err = errs;
        return errs ? -EINVAL : 0;
}

int config_parse_file(struct config *c, const char *path, bool missing_ok, char **ret_err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        struct stat st;

        *ret_err = NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT && missing_ok)
                        return 0;
                return set_error(ret_err, -EINVAL, "%s: %s", path, strerror(errno));
        }
        if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode))
                return set_error(ret_err, -EINVAL, "%s: not a file", path);
        for (;;) {
                ssize_t n;
                if (grow_array((void **)&buf, &cap, len + 4096, 1) < 0)
                        return -ENOMEM;
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return set_error(ret_err, -EINVAL, "%s: %s", path, strerror(errno));
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                /* A config file is a few hundred bytes. */
                if (len > 1 << 20)
                        return set_error(ret_err, -EINVAL, "%s: larger than 1 MiB", path);
        }
        return config_parse_buffer(c, buf ? buf : "", len, path, ret_err);
}

/* Where the later of two keys was set, as the start of an error: a
 * "<file>:<line>: ", "--<flag>: " (flag NULL: the key has none), or "". */
static const char *later_origin(const struct config *c, struct config_origin a, const char *aflag,
                                struct config_origin b, const char *bflag, char *buf, size_t size)
{
        const char *flag = b.seq > a.seq ? bflag : aflag;
        struct config_origin o = b.seq > a.seq ? b : a;

        buf[0] = '\0';
        if (o.seq && o.line && c->file)
                snprintf(buf, size, "%s:%u: ", c->file, o.line);
        else if (o.seq && !o.line && flag)
                snprintf(buf, size, "--%s: ", flag);
        return buf;
}

int config_finalize(struct config *c, char **ret_err)
{
        const struct kdef *kw = kdef_find("workers"), *kh = kdef_find("high_water"), *kl = kdef_find("low_water");
        struct config_origin ow = c->origin[kw - kdefs], oh = c->origin[kh - kdefs], ol = c->origin[kl - kdefs];
        char *errs = NULL, where[4200];
        int r = 0;

        *ret_err = NULL;
        if (!c->state_dir || !c->socket || !c->cgroup || !c->pam_service)
                return -ENOMEM;
        if (!c->root_reserve_jobs_set)
                c->root_reserve_jobs = MAX(c->high_water / 20, 1);
        if (!c->low_water_set)
                c->low_water = c->high_water * 9 / 10;
        /* A key whose value was rejected is reported as such; judged
         * by its default, it would earn a second, misleading error. */
        for (size_t i = 0; i < c->nqueues && r != -ENOMEM && !ow.bad; i++) {
                const struct queue_cfg *q = &c->queues[i];
                if (q->workers > c->workers)
                        r = add_error(&errs, "%squeue.%s.workers (%llu) is more than workers (%llu)",
                                      later_origin(c, q->workers_from, NULL, ow, kw->pub.flag, where, sizeof(where)),
                                      q->name, (unsigned long long)q->workers, (unsigned long long)c->workers);
        }
        if (r != -ENOMEM && !oh.bad && !ol.bad && c->low_water >= c->high_water)
                r = add_error(&errs, "%slow_water (%llu) must be below high_water (%llu)",
                              later_origin(c, ol, kl->pub.flag, oh, kh->pub.flag, where, sizeof(where)),
                              (unsigned long long)c->low_water, (unsigned long long)c->high_water);
        if (r == -ENOMEM) {
                free(errs);
                return r;
        }
        *ret_err = errs;
        return errs ? -EINVAL : 0;
}

int config_load(struct config *c, const char *path, bool missing_ok, const struct config_option *opts,
                size_t nopts, char **ret_err)
{
        char *errs = NULL, *e = NULL;
        int r;

        *ret_err = NULL;
        config_init(c);
        r = config_parse_file(c, path, missing_ok, &errs);
        if (r == -ENOMEM)
                return r;
        for (size_t i = 0; i < nopts; i++) {
                r = config_set_option(c, opts[i].flag, opts[i].value, &e);
                if (r == -EINVAL)
                        r = add_error(&errs, "%s", e ? e : "invalid option");
                free(e);
                if (r == -ENOMEM)
                        goto oom;
        }
        r = config_finalize(c, &e);
        if (r == -EINVAL)
                r = add_error(&errs, "%s", e ? e : "invalid");
        free(e);
        if (r == -ENOMEM)
                goto oom;
        *ret_err = errs;
        return errs ? -EINVAL : 0;
oom:
        free(errs);
        return -ENOMEM;
}

static bool is_string(enum ktype t)
{
        return t == K_PATH || t == K_CGROUP || t == K_NAME;
}

static size_t value_size(enum ktype t)
{
        switch (t) {
        case K_COUNT:
        case K_SIZE:
                return sizeof(uint64_t);
        case K_DURATION:
                return sizeof(int64_t);
        default:
                return sizeof(int);
        }
}

void config_keep_restart_keys(struct config *nc, const struct config *old, void (*changed)(const char *key))
{
        for (size_t i = 0; i < ELEMENTSOF(kdefs); i++) {
                const struct kdef *k = &kdefs[i];
                char *nf = (char *)nc + k->off;
                const char *of = (const char *)old + k->off;

                if (k->reloadable)
                        continue;
                if (is_string(k->type)) {
                        char **np = (char **)nf;
                        char *const *op = (char *const *)of;
                        char *copy;
                        if (strcmp(*np, *op) == 0)
                                continue;
                        copy = strdup(*op);
                        if (!copy)
                                continue; /* keeps the new text; reported all the same */
                        free(*np);
                        *np = copy;
                } else {
                        if (memcmp(nf, of, value_size(k->type)) == 0)
                                continue;
                        memcpy(nf, of, value_size(k->type));
                }
                changed(k->pub.key);
        }
}

const char *fair_share_to_string(int f)
{
        return f >= 0 && f < _FAIR_SHARE_MAX ? fair_share_names[f] : "?";
}

const char *durability_to_string(int d)
{
        return d >= 0 && d < _DURABILITY_MAX ? durability_names[d] : "?";
}
