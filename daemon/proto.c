/* Request parsing and reply encoding for protocol v1. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proto.h"
#include "ringq/utf8.h"
#include "util.h"

_printf_(4, 5) static int bad(struct proto_error *err, enum ringq_err code, const char *field,
                              const char *fmt, ...)
{
        va_list ap;

        err->code = code;
        err->field = field;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A JSON string usable as a C string: jansson allows "\u0000" inside,
 * which would silently cut a path or an argument short. */
static bool plain_string(json_t *v)
{
        return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* The fields a request may carry besides "op" and "tag". Each request's
 * object is walked once (fields_collect), which is also where an unknown
 * field is found; the checks below read the values from that table
 * instead of hashing every name they look for: at a high rate of submits
 * those lookups were a tenth of the parse. */
enum field {
        F_ARGV, F_ENV, F_CWD, F_QUEUE, F_PRIORITY, F_DELAY_MS, F_RUN_AT, F_TIMEOUT_MS, F_MAX_ATTEMPTS,
        F_BACKOFF_MS, F_KEY, F_UMASK, F_AFTER, F_ID, F_STATE, F_LIMIT, F_AFTER_ID, F_BEFORE_ID, F_ORDER,
        F_OWNER_UID, F_STREAM, _F_MAX
};

static const char *const field_names[_F_MAX] = {
        [F_ARGV] = "argv", [F_ENV] = "env", [F_CWD] = "cwd", [F_QUEUE] = "queue", [F_PRIORITY] = "priority",
        [F_DELAY_MS] = "delay_ms", [F_RUN_AT] = "run_at", [F_TIMEOUT_MS] = "timeout_ms",
        [F_MAX_ATTEMPTS] = "max_attempts", [F_BACKOFF_MS] = "backoff_ms", [F_KEY] = "key", [F_UMASK] = "umask",
        [F_AFTER] = "after", [F_ID] = "id", [F_STATE] = "state", [F_LIMIT] = "limit", [F_AFTER_ID] = "after_id",
        [F_BEFORE_ID] = "before_id", [F_ORDER] = "order", [F_OWNER_UID] = "owner_uid", [F_STREAM] = "stream",
};

/* Fields each op accepts, in the order they are tried. Unknown fields
 * are errors: a misspelt "timout_ms" must not run a job without a
 * timeout. */
#define FIELD_END _F_MAX
static const enum field op_fields[_RINGQ_OP_MAX][16] = {
        [RINGQ_OP_PING] = { FIELD_END },
        [RINGQ_OP_SUBMIT] = { F_ARGV, F_ENV, F_CWD, F_QUEUE, F_PRIORITY, F_DELAY_MS, F_RUN_AT, F_TIMEOUT_MS,
                              F_MAX_ATTEMPTS, F_BACKOFF_MS, F_KEY, F_UMASK, F_AFTER, FIELD_END },
        [RINGQ_OP_STATUS] = { F_ID, FIELD_END },
        [RINGQ_OP_LIST] = { F_STATE, F_QUEUE, F_LIMIT, F_AFTER_ID, F_BEFORE_ID, F_ORDER, F_OWNER_UID, FIELD_END },
        [RINGQ_OP_CANCEL] = { F_ID, FIELD_END },
        [RINGQ_OP_RETRY] = { F_ID, FIELD_END },
        [RINGQ_OP_WAIT] = { F_ID, F_TIMEOUT_MS, FIELD_END },
        [RINGQ_OP_STATS] = { FIELD_END },
        [RINGQ_OP_OUTPUT] = { F_ID, F_STREAM, FIELD_END },
        [RINGQ_OP_PAUSE] = { F_QUEUE, FIELD_END },
        [RINGQ_OP_RESUME] = { F_QUEUE, FIELD_END },
        [RINGQ_OP_QUEUES] = { FIELD_END },
        [RINGQ_OP_REEXEC] = { FIELD_END },
};

/* The request's fields by name; borrowed from its root. */
struct fields {
        json_t *v[_F_MAX];
};

static int fields_collect(json_t *root, enum ringq_op op, struct fields *fs, struct proto_error *err)
{
        const char *k;
        json_t *v;

        json_object_foreach(root, k, v) {
                size_t i;

                if (strcmp(k, "op") == 0 || strcmp(k, "tag") == 0)
                        continue;
                for (i = 0; op_fields[op][i] != FIELD_END; i++)
                        if (strcmp(k, field_names[op_fields[op][i]]) == 0)
                                break;
                if (op_fields[op][i] == FIELD_END) {
                        /* The field name is the client's text: cut it. */
                        return bad(err, RINGQ_ERR_BAD_REQUEST, NULL, "unknown field '%.64s' for %s", k,
                                   ringq_op_names[op]);
                }
                fs->v[op_fields[op][i]] = v;
        }
        return 0;
}

static int get_int(const struct fields *fs, enum field f, int64_t lo, int64_t hi, int64_t *ret,
                   struct proto_error *err, const char *what)
{
        const char *field = field_names[f];
        json_t *v = fs->v[f];
        json_int_t x;

        if (!v)
                return 0;
        if (!json_is_integer(v))
                return bad(err, RINGQ_ERR_BAD_REQUEST, field, "%s must be %s", field, what);
        x = json_integer_value(v);
        if (x < lo || x > hi)
                return bad(err, RINGQ_ERR_BAD_REQUEST, field, "%s must be %s", field, what);
        *ret = x;
        return 1;
}

static int get_string(const struct fields *fs, enum field f, size_t maxlen, const char **ret,
                      struct proto_error *err)
{
        const char *field = field_names[f];
        json_t *v = fs->v[f];

        if (!v)
                return 0;
        if (!plain_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen)
                return bad(err, RINGQ_ERR_BAD_REQUEST, field,
                           "%s must be a non-empty string of at most %zu bytes", field, maxlen);
        *ret = json_string_value(v);
        return 1;
}

/* Queue names: [A-Za-z0-9_.-]{1,64}, so they read well in a log line, a
 * metric label and a file name. */
static int get_queue(const struct fields *fs, const char **ret, struct proto_error *err)
{
        json_t *v = fs->v[F_QUEUE];

        if (!v)
                return 0;
        if (!plain_string(v) || !queue_name_valid(json_string_value(v), json_string_length(v)))
                return bad(err, RINGQ_ERR_BAD_REQUEST, "queue",
                           "queue must be 1 to 64 letters, digits, '_', '.' or '-'");
        *ret = json_string_value(v);
        return 1;
}

/* One of a few names, as its index; -1 when v is not one of them. */
static int get_name(json_t *v, const char *const *names, size_t n)
{
        return json_is_string(v) ? ringq_lookup(names, n, json_string_value(v)) : -1;
}

static int get_after(struct request *req, const struct fields *fs, struct proto_error *err)
{
        json_t *a = fs->v[F_AFTER], *v;
        size_t i;

        if (!a)
                return 0;
        if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > ELEMENTSOF(req->after))
                return bad(err, RINGQ_ERR_BAD_REQUEST, "after", "after must be an array of 1 to %zu job ids",
                           ELEMENTSOF(req->after));
        json_array_foreach(a, i, v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1)
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "after", "after[%zu] must be a job id", i);
                for (unsigned k = 0; k < req->nafter; k++)
                        if (req->after[k] == json_integer_value(v))
                                return bad(err, RINGQ_ERR_BAD_REQUEST, "after", "after names job %lld twice",
                                           (long long)json_integer_value(v));
                req->after[req->nafter++] = json_integer_value(v);
        }
        return 1;
}

static int parse_submit(struct request *req, const struct fields *fs, struct proto_error *err)
{
        json_t *v;
        size_t i;
        const char *k;
        int64_t x;
        int r;

        req->argv = fs->v[F_ARGV];
        if (!req->argv)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "argv", "argv is required");
        if (!json_is_array(req->argv) || json_array_size(req->argv) == 0)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "argv", "argv must be a non-empty array of strings");
        json_array_foreach(req->argv, i, v)
                if (!plain_string(v))
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "argv",
                                   "argv[%zu] must be a string without NUL bytes", i);
        if (json_string_length(json_array_get(req->argv, 0)) == 0)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "argv", "argv[0] must not be empty");

        req->env = fs->v[F_ENV];
        if (req->env) {
                if (!json_is_object(req->env))
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "env", "env must be an object of strings");
                size_t klen;
                json_object_keylen_foreach(req->env, k, klen, v) {
                        if (!*k || strchr(k, '=') || strlen(k) != klen)
                                return bad(err, RINGQ_ERR_BAD_REQUEST, "env",
                                           "env names must be non-empty and contain neither '=' nor NUL");
                        if (!plain_string(v))
                                return bad(err, RINGQ_ERR_BAD_REQUEST, "env",
                                           "env values must be strings without NUL bytes");
                }
        }

        req->cwd = "/";
        r = get_string(fs, F_CWD, 4095, &req->cwd, err);
        if (r < 0)
                return r;
        if (req->cwd[0] != '/')
                return bad(err, RINGQ_ERR_BAD_REQUEST, "cwd", "cwd must be an absolute path");

        req->queue = "default";
        r = get_queue(fs, &req->queue, err);
        if (r < 0)
                return r;
        r = get_after(req, fs, err);
        if (r < 0)
                return r;

        r = get_string(fs, F_KEY, PROTO_KEY_MAX, &req->key, err);
        if (r < 0)
                return r;

        x = 0;
        if (get_int(fs, F_PRIORITY, RINGQ_PRIO_MIN, RINGQ_PRIO_MAX, &x, err, "an integer from -1000 to 1000") < 0)
                return -EINVAL;
        req->priority = (int)x;
        x = 1;
        if (get_int(fs, F_MAX_ATTEMPTS, 1, RINGQ_ATTEMPTS_MAX, &x, err, "an integer from 1 to 1000") < 0)
                return -EINVAL;
        req->max_attempts = (int)x;
        if (get_int(fs, F_DELAY_MS, 0, RINGQ_DURATION_MAX_MS, &req->delay_ms, err,
                    "a non-negative number of milliseconds (at most 100 years)") < 0)
                return -EINVAL;
        if (get_int(fs, F_RUN_AT, 0, 253402300799999LL, &req->run_at, err,
                    "a time in unix milliseconds (year 9999 at most)") < 0)
                return -EINVAL;
        if (req->delay_ms >= 0 && req->run_at >= 0)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "run_at", "give delay_ms or run_at, not both");
        if (get_int(fs, F_TIMEOUT_MS, 1, RINGQ_DURATION_MAX_MS, &req->timeout_ms, err,
                    "a positive number of milliseconds (at most 100 years)") < 0)
                return -EINVAL;
        if (get_int(fs, F_BACKOFF_MS, 0, RINGQ_BACKOFF_CAP_MS, &req->backoff_ms, err,
                    "a number of milliseconds from 0 to 3600000") < 0)
                return -EINVAL;
        x = -1;
        if (get_int(fs, F_UMASK, 0, 0777, &x, err, "an integer from 0 to 511 (0777)") < 0)
                return -EINVAL;
        req->umask = (int)x;
        return 0;
}

static int parse_id(struct request *req, const struct fields *fs, struct proto_error *err)
{
        int r = get_int(fs, F_ID, 1, INT64_MAX, &req->id, err, "a positive integer");

        if (r == 0)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "id", "id is required");
        return r < 0 ? r : 0;
}

static int parse_list(struct request *req, const struct fields *fs, struct proto_error *err)
{
        int64_t x = RINGQ_LIST_DEFAULT;

        if (fs->v[F_STATE]) {
                req->state = get_name(fs->v[F_STATE], ringq_state_names, _RINGQ_STATE_MAX);
                if (req->state < 0)
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "state",
                                   "state must be one of queued, running, succeeded, failed, canceled");
        }
        if (get_string(fs, F_QUEUE, 128, &req->queue, err) < 0) /* names older versions allowed too */
                return -EINVAL;
        if (get_int(fs, F_LIMIT, 1, RINGQ_LIST_MAX, &x, err, "an integer from 1 to 1000") < 0)
                return -EINVAL;
        req->limit = (unsigned)x;
        req->after_id = 0;
        if (get_int(fs, F_AFTER_ID, 0, INT64_MAX, &req->after_id, err, "a non-negative integer") < 0)
                return -EINVAL;
        if (get_int(fs, F_BEFORE_ID, 1, INT64_MAX, &req->before_id, err, "a positive integer") < 0)
                return -EINVAL;
        /* uid_t is 32 bits and (uid_t)-1 is no one's. */
        if (get_int(fs, F_OWNER_UID, 0, (int64_t)UINT32_MAX - 1, &req->owner_uid, err,
                    "a uid (an integer from 0 to 4294967294)") < 0)
                return -EINVAL;
        if (fs->v[F_ORDER]) {
                int o = get_name(fs->v[F_ORDER], (const char *const[]){ "asc", "desc" }, 2);
                if (o < 0)
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "order", "order must be asc or desc");
                req->desc = o == 1;
        }
        return 0;
}

int proto_parse(const char *line, size_t len, struct request *req, struct proto_error *err)
{
        struct fields fs = { { NULL } };
        json_error_t jerr;
        json_t *op;
        int r;

        *req = (struct request){
                .op = _RINGQ_OP_INVALID, .state = -1, .delay_ms = -1, .run_at = -1,
                .timeout_ms = -1, .backoff_ms = -1, .umask = -1, .owner_uid = -1,
        };
        /* JSON_REJECT_DUPLICATES: {"argv":..,"argv":..} is ambiguous. */
        req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req->root)
                return bad(err, RINGQ_ERR_BAD_REQUEST, NULL, "invalid JSON at byte %d: %.160s", jerr.position,
                           jerr.text);
        if (!json_is_object(req->root))
                return bad(err, RINGQ_ERR_BAD_REQUEST, NULL, "a request must be a JSON object");
        req->tag = json_object_get(req->root, "tag");
        op = json_object_get(req->root, "op");
        if (!op)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "op", "op is required");
        req->op = json_is_string(op) ? ringq_op_from_name(json_string_value(op)) : _RINGQ_OP_INVALID;
        if (req->op < 0)
                return bad(err, RINGQ_ERR_BAD_REQUEST, "op",
                           "unknown op; expected ping, submit, status, list, cancel, retry, wait, stats, output, "
                           "pause, resume, queues or reexec");
        r = fields_collect(req->root, req->op, &fs, err);
        if (r < 0)
                return r;
        switch (req->op) {
        case RINGQ_OP_SUBMIT:
                return parse_submit(req, &fs, err);
        case RINGQ_OP_STATUS:
        case RINGQ_OP_CANCEL:
        case RINGQ_OP_RETRY:
                return parse_id(req, &fs, err);
        case RINGQ_OP_WAIT:
                r = parse_id(req, &fs, err);
                if (r < 0)
                        return r;
                if (get_int(&fs, F_TIMEOUT_MS, 0, RINGQ_DURATION_MAX_MS, &req->timeout_ms, err,
                            "a non-negative number of milliseconds") < 0)
                        return -EINVAL;
                return 0;
        case RINGQ_OP_LIST:
                return parse_list(req, &fs, err);
        case RINGQ_OP_PAUSE:
        case RINGQ_OP_RESUME:
                req->queue = NULL;
                return get_queue(&fs, &req->queue, err) < 0 ? -EINVAL : 0;
        case RINGQ_OP_OUTPUT:
                r = parse_id(req, &fs, err);
                if (r < 0)
                        return r;
                if (!fs.v[F_STREAM])
                        return 0;
                req->stream = get_name(fs.v[F_STREAM], (const char *const[]){ "stdout", "stderr" }, 2);
                if (req->stream < 0)
                        return bad(err, RINGQ_ERR_BAD_REQUEST, "stream", "stream must be stdout or stderr");
                return 0;
        default:
                return 0;
        }
}

void request_done(struct request *req)
{
        json_decref(req->root);
        req->root = req->tag = req->argv = req->env = NULL;
}

json_t *proto_ok(void)
{
        return json_pack("{s:b}", "ok", 1);
}

/* Replace every byte that is not part of valid UTF-8 with '?'. Error
 * messages quote the client's bytes (and jansson's own error text cuts
 * them anywhere), and a JSON string must be valid UTF-8. */
static void utf8_scrub(char *s)
{
        unsigned char *p = (unsigned char *)s;

        while (*p) {
                size_t n = ringq_utf8_len(p);
                if (!n)
                        *p++ = '?';
                else
                        p += n;
        }
}

static json_t *err_obj(enum ringq_err code, const char *field, const char *message)
{
        char msg[512];
        json_t *o;

        snprintf(msg, sizeof(msg), "%s", message);
        utf8_scrub(msg);
        o = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", ringq_err_names[code], "message", msg);

        if (o && field)
                json_object_set_new(o, "field", json_string(field));
        return o;
}

json_t *proto_err(enum ringq_err code, const char *field, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return err_obj(code, field, msg);
}

json_t *proto_err_from(const struct proto_error *e)
{
        return err_obj(e->code, e->field, e->message);
}

static json_t *opt_int(int64_t v)
{
        return v >= 0 ? json_integer(v) : json_null();
}

static json_t *opt_str(const char *s)
{
        return s ? json_string(s) : json_null();
}

json_t *proto_job(const struct job_rec *j, const char *output_dir)
{
        char out[4200], err[4200];
        json_t *o, *argv;

        argv = json_loads(j->argv ? j->argv : "[]", 0, NULL);
        snprintf(out, sizeof(out), "%s/%lld.out", output_dir, (long long)j->id);
        snprintf(err, sizeof(err), "%s/%lld.err", output_dir, (long long)j->id);
        o = json_object();
        if (!o || !argv) {
                json_decref(o);
                json_decref(argv);
                return NULL;
        }
        json_object_set_new(o, "id", json_integer(j->id));
        json_object_set_new(o, "queue", opt_str(j->queue));
        json_object_set_new(o, "state", json_string(j->state >= 0 ? ringq_state_names[j->state] : "unknown"));
        json_object_set_new(o, "priority", json_integer(j->priority));
        json_object_set_new(o, "argv", argv);
        json_object_set_new(o, "cwd", opt_str(j->cwd));
        json_object_set_new(o, "owner_uid", json_integer(j->owner_uid));
        json_object_set_new(o, "owner_gid", json_integer(j->owner_gid));
        json_object_set_new(o, "submitted_at", opt_int(j->submitted_at));
        json_object_set_new(o, "run_at", opt_int(j->run_at));
        json_object_set_new(o, "started_at", opt_int(j->started_at));
        json_object_set_new(o, "finished_at", opt_int(j->finished_at));
        json_object_set_new(o, "attempts", json_integer(j->attempts));
        json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
        json_object_set_new(o, "interruptions", json_integer(j->interruptions));
        json_object_set_new(o, "timeout_ms", opt_int(j->timeout_ms));
        json_object_set_new(o, "backoff_ms", json_integer(j->backoff_ms));
        json_object_set_new(o, "exit_code", opt_int(j->exit_code));
        json_object_set_new(o, "signal", j->signal > 0 ? json_integer(j->signal) : json_null());
        json_object_set_new(o, "reason", opt_str(j->reason));
        json_object_set_new(o, "key", opt_str(j->idem_key));
        json_object_set_new(o, "pid", opt_int(j->pid));
        {
                json_t *after = json_array();
                for (unsigned i = 0; after && i < j->nafter; i++)
                        json_array_append_new(after, json_integer(j->after[i]));
                json_object_set_new(o, "after", after ? after : json_null());
        }
        json_object_set_new(o, "cpu_ms", opt_int(j->cpu_ms));
        json_object_set_new(o, "max_rss_kb", opt_int(j->max_rss_kb));
        json_object_set_new(o, "stdout_path", json_string(out));
        json_object_set_new(o, "stderr_path", json_string(err));
        return o;
}

char *proto_line(json_t *reply, json_t *tag, size_t *ret_len)
{
        char *s, *line;
        size_t n;

        if (!reply)
                return NULL;
        if (tag)
                json_object_set(reply, "tag", tag);
        s = json_dumps(reply, JSON_COMPACT);
        json_decref(reply);
        if (!s)
                return NULL;
        n = strlen(s);
        line = realloc(s, n + 2);
        if (!line) {
                free(s);
                return NULL;
        }
        line[n] = '\n';
        line[n + 1] = '\0';
        *ret_len = n + 1;
        return line;
}

/* Decimal digits of v at buf (room for 20 bytes); returns their count. */
static size_t fmt_i64(char *buf, int64_t v)
{
        char tmp[20], *p = tmp + sizeof(tmp);
        uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
        size_t n;

        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *--p = '-';
        n = (size_t)(tmp + sizeof(tmp) - p);
        memcpy(buf, p, n);
        return n;
}

char *proto_submitted_line(int64_t id, bool duplicate, json_t *tag, size_t *ret_len)
{
        /* An integer tag, what a pipelining client numbers its requests
         * with, is printed here too; jansson dumps any other. */
        _cleanup_free_ char *dumped = NULL;
        char num[20], *line, *p;
        const char *t = NULL;
        size_t tlen = 0;

        if (json_is_integer(tag)) {
                tlen = fmt_i64(num, json_integer_value(tag));
                t = num;
        } else if (tag) {
                dumped = json_dumps(tag, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!dumped)
                        return NULL;
                t = dumped;
                tlen = strlen(dumped);
        }
        line = malloc(sizeof("{\"ok\":true,\"id\":") + sizeof(num) + sizeof(",\"duplicate\":true") +
                      sizeof(",\"tag\":") + tlen + sizeof("}\n"));
        if (!line)
                return NULL;
        p = stpcpy(line, "{\"ok\":true,\"id\":");
        p += fmt_i64(p, id);
        if (duplicate)
                p = stpcpy(p, ",\"duplicate\":true");
        if (t) {
                p = stpcpy(p, ",\"tag\":");
                p = mempcpy(p, t, tlen);
        }
        p = stpcpy(p, "}\n");
        *ret_len = (size_t)(p - line);
        return line;
}

/* A string as jansson's compact dump writes it: what the parser
 * accepted is valid UTF-8, so only the quote, the backslash and the
 * control characters are escaped; the rest is copied. */
static char *put_string(char *p, const char *s, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";

        *p++ = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c != '"' && c != '\\') {
                        *p++ = (char)c;
                        continue;
                }
                *p++ = '\\';
                switch (c) {
                case '"': case '\\': *p++ = (char)c; break;
                case '\b': *p++ = 'b'; break;
                case '\f': *p++ = 'f'; break;
                case '\n': *p++ = 'n'; break;
                case '\r': *p++ = 'r'; break;
                case '\t': *p++ = 't'; break;
                default:
                        p = stpcpy(p, "u00");
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p++ = '"';
        return p;
}

/* Every submit stores its argv and env as text. jansson's dump of a
 * container formats its address into a table to catch cycles (an
 * snprintf, a strdup and a hash per array), which was 6 % of ringqd's
 * CPU under a burst of submits; the two shapes a job has, an array of
 * strings and an object of them, are written here in one pass, byte
 * for byte what jansson writes (test-proto's dump_compact holds the
 * two to each other). Anything else goes to jansson. */
char *proto_dump_compact(json_t *v)
{
        const char *k;
        json_t *e;
        size_t i, klen, room = 3;
        char *out, *p;

        if (json_is_array(v)) {
                json_array_foreach(v, i, e) {
                        if (!json_is_string(e))
                                goto jansson;
                        room += 6 * json_string_length(e) + 3;
                }
                p = out = malloc(room);
                if (!out)
                        return NULL;
                *p++ = '[';
                json_array_foreach(v, i, e) {
                        if (i)
                                *p++ = ',';
                        p = put_string(p, json_string_value(e), json_string_length(e));
                }
                *p++ = ']';
        } else if (json_is_object(v)) {
                json_object_keylen_foreach(v, k, klen, e) {
                        if (!json_is_string(e))
                                goto jansson;
                        room += 6 * (klen + json_string_length(e)) + 6;
                }
                p = out = malloc(room);
                if (!out)
                        return NULL;
                *p++ = '{';
                bool first = true;
                json_object_keylen_foreach(v, k, klen, e) {
                        if (!first)
                                *p++ = ',';
                        first = false;
                        p = put_string(p, k, klen);
                        *p++ = ':';
                        p = put_string(p, json_string_value(e), json_string_length(e));
                }
                *p++ = '}';
        } else
                goto jansson;
        *p = '\0';
        return out;
jansson:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
