/* Protocol v1 requests and replies, without any I/O: parse one request
 * line into a checked struct request, and build reply lines. Every field
 * is checked for exact type and range, and a bad one is named in the
 * bad_request reply. Pure, so it is unit-tested and fuzzed directly. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "ringq/protocol.h"

#define PROTO_QUEUE_MAX 64
#define PROTO_KEY_MAX 256

struct request {
        enum ringq_op op;
        json_t *root;            /* owns everything below */
        json_t *tag;             /* borrowed from root, or NULL */
        int64_t id;              /* status, cancel, retry, wait */
        /* submit */
        json_t *argv, *env;      /* borrowed: array of strings, object */
        const char *cwd, *queue, *key;
        int priority, max_attempts;
        int umask;               /* -1: unset */
        int64_t after[64];       /* the jobs it runs after (JOB_AFTER_MAX) */
        unsigned nafter;
        /* output */
        int stream;              /* 0: stdout, 1: stderr */
        int64_t delay_ms, run_at, timeout_ms, backoff_ms; /* -1: unset */
        /* list */
        int state;               /* -1: any */
        int64_t after_id;
        int64_t before_id;       /* 0: no upper bound */
        int64_t owner_uid;       /* -1: any */
        bool desc;               /* newest first */
        unsigned limit;
        /* wait: timeout_ms above, -1 for none */
};

struct proto_error {
        enum ringq_err code;
        const char *field;       /* static, or NULL */
        char message[256];
};

/* Parse one line (without its '\n'). On failure *err says why, and
 * req->tag is still set when the line was a JSON object with a tag, so
 * the error reply can echo it. request_done() must be called either way. */
int proto_parse(const char *line, size_t len, struct request *req, struct proto_error *err);
void request_done(struct request *req);

/* Reply builders. They return a new object, or NULL on OOM. */
json_t *proto_ok(void);
json_t *proto_err(enum ringq_err code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
json_t *proto_err_from(const struct proto_error *e);
/* The job object (docs/protocol.md); output paths under output_dir. */
json_t *proto_job(const struct job_rec *j, const char *output_dir);

/* Serialize a reply as one line ending in '\n', echoing tag when given.
 * Consumes the reply reference. Returns a malloc'd buffer or NULL. */
char *proto_line(json_t *reply, json_t *tag, size_t *ret_len);
/* The same line for a submit's answer, {"ok":true,"id":N} with
 * "duplicate":true if asked and the tag if any, printed without a tree:
 * at a high rate of submits that tree was the loop's largest cost after
 * parsing the request. NULL when out of memory. */
char *proto_submitted_line(int64_t id, bool duplicate, json_t *tag, size_t *ret_len);

/* The JSON text stored for argv/env, from a checked request. */
char *proto_dump_compact(json_t *v);
