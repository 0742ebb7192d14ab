/* Unit tests of daemon/proto.c: request validation and reply encoding.
 *
 * proto_parse: malformed input (not JSON, not an object, trailing data,
 * invalid UTF-8, raw NUL, too deep, integers past INT64), op handling,
 * duplicate keys, unknown fields per op, every field of every op with
 * its type and range limits (±1), NUL inside strings, relative cwd,
 * delay_ms with run_at, defaults, and the tag kept for error replies.
 * proto_err / proto_err_from / proto_line (one line, one '\n', tag
 * echoed) and proto_job (docs/protocol.md, the job object).
 * Requests are written with ' for " to keep them readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Parse q with every ' turned into ". The caller calls request_done. */
static int parse(const char *q, struct request *req, struct proto_error *err)
{
        char *s = strdup(q);
        int r;

        assert_non_null(s);
        for (char *p = s; *p; p++)
                if (*p == '\'')
                        *p = '"';
        memset(err, 0, sizeof(*err));
        r = proto_parse(s, strlen(s), req, err);
        free(s);
        return r;
}

/* The request last parsed by expect_ok; each call frees the one before. */
static struct request R;

#define expect_ok(q) expect_ok_at(q, __LINE__)
static void expect_ok_at(const char *q, int line)
{
        struct proto_error err;

        request_done(&R);
        if (parse(q, &R, &err) != 0)
                fail_msg("line %d: %s rejected: [%s] %s", line, q, err.field ? err.field : "-",
                         err.message);
}

/* q must be a bad_request naming field (NULL: none); msg, when given, is
 * the exact message, or its prefix when it ends in '*'. */
#define expect_bad(q, field, msg) expect_bad_at(q, field, msg, __LINE__)
static void expect_bad_at(const char *q, const char *field, const char *msg, int line)
{
        struct request req;
        struct proto_error err;
        int r = parse(q, &req, &err);
        bool same_field = field ? err.field && strcmp(err.field, field) == 0 : !err.field;
        size_t n = msg ? strlen(msg) : 0;
        bool same_msg = !msg || (msg[n - 1] == '*' ? strncmp(err.message, msg, n - 1) == 0
                                                   : strcmp(err.message, msg) == 0);

        request_done(&req);
        if (r != -EINVAL || err.code != RINGQ_ERR_BAD_REQUEST || !same_field || !same_msg)
                fail_msg("line %d: %s\n got r=%d code=%d field=%s msg=\"%s\"\n want field=%s msg=\"%s\"",
                         line, q, r, err.code, err.field ? err.field : "(null)", err.message,
                         field ? field : "(null)", msg ? msg : "(any)");
}

static int free_last(void **state)
{
        request_done(&R);
        return 0;
}

static void test_malformed(void **state)
{
        static const char nul[] = "{\"op\":\"ping\"}\0";
        struct request req;
        struct proto_error err;
        char deep[5000];
        int n;

        expect_bad("", NULL, "invalid JSON at byte *");
        expect_bad("not json", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping'", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping'} {}", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping',}", NULL, "invalid JSON at byte *");
        expect_bad("'ping'", NULL, "invalid JSON at byte *");
        expect_bad("[{'op':'ping'}]", NULL, "a request must be a JSON object");
        expect_bad("{'op':'ping','tag':'\xff'}", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping','tag':'\xc3'}", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping','tag':'\xed\xa0\x80'}", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'status','id':9223372036854775808}", NULL, "invalid JSON at byte *");
        expect_bad("{'op':'ping','tag':'a\nb'}", NULL, "invalid JSON at byte *");

        /* A raw NUL byte inside the line. */
        assert_int_equal(proto_parse(nul, sizeof(nul) - 1, &req, &err), -EINVAL);
        assert_int_equal(err.code, RINGQ_ERR_BAD_REQUEST);
        assert_null(req.tag);
        request_done(&req);

        /* Nesting: 100 levels are fine in a tag, 2100 are refused (jansson's
         * limit is 2048). */
        n = sprintf(deep, "{'op':'ping','tag':");
        memset(deep + n, '[', 100);
        memset(deep + n + 100, ']', 100);
        strcpy(deep + n + 200, "}");
        expect_ok(deep);
        assert_true(json_is_array(R.tag));
        memset(deep + n, '[', 2100);
        memset(deep + n + 2100, ']', 2100);
        strcpy(deep + n + 4200, "}");
        expect_bad(deep, NULL, "invalid JSON at byte *");
}

static void test_op(void **state)
{
        static const char buf[] = "{\"op\":\"stats\"}garbage";
        struct request req;
        struct proto_error err;

        /* Only len bytes are the line; no NUL terminator needed. */
        assert_int_equal(proto_parse(buf, 14, &req, &err), 0);
        assert_int_equal(req.op, RINGQ_OP_STATS);
        request_done(&req);
        assert_null(req.root);
        expect_ok("{'op':'ping'}");
        assert_int_equal(R.op, RINGQ_OP_PING);
        assert_null(R.tag);
        expect_ok("{'op':'stats','tag':null}");
        assert_int_equal(R.op, RINGQ_OP_STATS);
        assert_true(json_is_null(R.tag));

        expect_bad("{}", "op", "op is required");
        expect_bad("{'tag':1}", "op", "op is required");
        expect_bad("{'op':1}", "op", "unknown op; *");
        expect_bad("{'op':null}", "op", "unknown op; *");
        expect_bad("{'op':['ping']}", "op", "unknown op; *");
        expect_bad("{'op':'PING'}", "op", "unknown op; *");
        expect_bad("{'op':''}", "op", "unknown op; *");
        expect_bad("{'op':'pingx'}", "op", "unknown op; *");
        expect_bad("{'op':'ping','op':'ping'}", NULL, "invalid JSON at byte *");
}

/* "\u0000" inside any string is refused. jansson does it (no
 * JSON_ALLOW_NUL); note the op and list state lookups compare C strings
 * and would take "ping\u0000x" for "ping" if that flag were ever set. */
static void test_nul_in_strings(void **state)
{
        static const char *const q[] = {
                "{'op':'ping\\u0000junk'}",
                "{'op':'status\\u0000','id':1}",
                "{'op':'ping','tag':'a\\u0000'}",
                "{'op':'submit','argv':['ls','a\\u0000b']}",
                "{'op':'submit','argv':['\\u0000']}",
                "{'op':'submit','argv':['ls'],'env':{'A':'x\\u0000y'}}",
                "{'op':'submit','argv':['ls'],'env':{'A\\u0000B':'1'}}",
                "{'op':'submit','argv':['ls'],'cwd':'/a\\u0000b'}",
                "{'op':'submit','argv':['ls'],'queue':'a\\u0000'}",
                "{'op':'submit','argv':['ls'],'key':'k\\u0000'}",
                "{'op':'list','state':'queued\\u0000x'}",
                "{'op':'list','queue':'a\\u0000'}",
                "{'op':'ping','a\\u0000':1}",
        };

        for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
                expect_bad(q[i], NULL, "invalid JSON at byte *");
}

static void test_unknown_fields(void **state)
{
        char q[300];

        expect_bad("{'op':'ping','id':1}", NULL, "unknown field 'id' for ping");
        expect_bad("{'op':'stats','x':1}", NULL, "unknown field 'x' for stats");
        expect_bad("{'op':'status','id':1,'argv':['x']}", NULL, "unknown field 'argv' for status");
        expect_bad("{'op':'submit','argv':['x'],'timout_ms':5}", NULL,
                   "unknown field 'timout_ms' for submit");
        expect_bad("{'op':'wait','id':1,'limit':5}", NULL, "unknown field 'limit' for wait");
        expect_bad("{'op':'list','id':1}", NULL, "unknown field 'id' for list");
        expect_bad("{'op':'cancel','id':1,'Id':1}", NULL, "unknown field 'Id' for cancel");
        expect_bad("{'op':'ping','':1}", NULL, "unknown field '' for ping");
        /* The echoed name is cut at 64 bytes. */
        snprintf(q, sizeof(q), "{'op':'ping','%0100d':1}", 0);
        expect_bad(q, NULL, "unknown field '0000000000000000000000000000000000000000000000000000000000000000' for ping");
}

static void test_tag_on_error(void **state)
{
        struct request req;
        struct proto_error err;
        char *line;
        size_t len = 0;

        assert_int_equal(parse("{'op':'nope','tag':{'a':[1,{'b':null}]}}", &req, &err), -EINVAL);
        assert_true(json_is_object(req.tag));
        line = proto_line(proto_err_from(&err), req.tag, &len);
        request_done(&req);
        assert_non_null(line);
        assert_string_equal(line, "{\"ok\":false,\"error\":\"bad_request\",\"message\":"
                                  "\"unknown op; expected ping, submit, status, list, cancel, retry, wait, stats, output, pause, resume, queues or reexec\","
                                  "\"field\":\"op\",\"tag\":{\"a\":[1,{\"b\":null}]}}\n");
        assert_int_equal(len, strlen(line));
        free(line);

        assert_int_equal(parse("{'tag':'t1','op':'submit','argv':[1]}", &req, &err), -EINVAL);
        assert_string_equal(json_string_value(req.tag), "t1");
        assert_string_equal(err.field, "argv");
        request_done(&req);
        assert_int_equal(parse("{'op':'ping','zz':0,'tag':7}", &req, &err), -EINVAL);
        assert_int_equal(json_integer_value(req.tag), 7);
        request_done(&req);
        assert_int_equal(parse("{'op':'ping','tag':7", &req, &err), -EINVAL);
        assert_null(req.tag);
        request_done(&req);
}

static void test_submit_defaults(void **state)
{
        expect_ok("{'op':'submit','argv':['/bin/true']}");
        assert_int_equal(R.op, RINGQ_OP_SUBMIT);
        assert_int_equal(json_array_size(R.argv), 1);
        assert_null(R.env);
        assert_string_equal(R.cwd, "/");
        assert_string_equal(R.queue, "default");
        assert_null(R.key);
        assert_int_equal(R.priority, 0);
        assert_int_equal(R.max_attempts, 1);
        assert_true(R.delay_ms == -1 && R.run_at == -1);
        assert_true(R.timeout_ms == -1 && R.backoff_ms == -1);

        expect_ok("{'op':'submit','argv':['sh','','-c','x'],'env':{'A':'1','B':'','\xc3\xa9':'\xe2\x82\xac'},"
                  "'cwd':'/tmp','queue':'q-e.1_','key':'k','priority':-1000,'max_attempts':1000,"
                  "'delay_ms':0,'timeout_ms':1,'backoff_ms':3600000,'tag':[]}");
        assert_int_equal(json_array_size(R.argv), 4);
        assert_int_equal(json_object_size(R.env), 3);
        assert_string_equal(R.cwd, "/tmp");
        assert_string_equal(R.queue, "q-e.1_");
        assert_string_equal(R.key, "k");
        assert_int_equal(R.priority, -1000);
        assert_int_equal(R.max_attempts, 1000);
        assert_true(R.delay_ms == 0 && R.run_at == -1);
        assert_true(R.timeout_ms == 1 && R.backoff_ms == 3600000);
}

static void test_submit_argv_env(void **state)
{
        expect_bad("{'op':'submit'}", "argv", "argv is required");
        expect_bad("{'op':'submit','argv':null}", "argv", "argv must be a non-empty array of strings");
        expect_bad("{'op':'submit','argv':'ls'}", "argv", "argv must be a non-empty array of strings");
        expect_bad("{'op':'submit','argv':[]}", "argv", "argv must be a non-empty array of strings");
        expect_bad("{'op':'submit','argv':{'0':'ls'}}", "argv", "argv must be a non-empty array of strings");
        expect_bad("{'op':'submit','argv':['ls',1]}", "argv", "argv[1] must be a string without NUL bytes");
        expect_bad("{'op':'submit','argv':[['ls']]}", "argv", "argv[0] must be a string without NUL bytes");
        expect_bad("{'op':'submit','argv':['','x']}", "argv", "argv[0] must not be empty");
        expect_bad("{'op':'submit','argv':['ls'],'argv':['ls']}", NULL, "invalid JSON at byte *");

        expect_bad("{'op':'submit','argv':['ls'],'env':['A=1']}", "env", "env must be an object of strings");
        expect_bad("{'op':'submit','argv':['ls'],'env':null}", "env", "env must be an object of strings");
        expect_bad("{'op':'submit','argv':['ls'],'env':{'':'1'}}", "env",
                   "env names must be non-empty and contain neither '=' nor NUL");
        expect_bad("{'op':'submit','argv':['ls'],'env':{'A=B':'1'}}", "env",
                   "env names must be non-empty and contain neither '=' nor NUL");
        expect_bad("{'op':'submit','argv':['ls'],'env':{'A':1}}", "env", "env values must be strings without NUL bytes");
        expect_bad("{'op':'submit','argv':['ls'],'env':{'A':null}}", "env", "env values must be strings without NUL bytes");
        /* jansson itself refuses a NUL in a key, and duplicate names. */
        expect_bad("{'op':'submit','argv':['ls'],'env':{'A':'1','A':'2'}}", NULL, "invalid JSON at byte *");
}

static void test_submit_strings(void **state)
{
        char q[5000], long_s[4200];

        expect_bad("{'op':'submit','argv':['ls'],'cwd':'tmp'}", "cwd", "cwd must be an absolute path");
        expect_bad("{'op':'submit','argv':['ls'],'cwd':'./'}", "cwd", "cwd must be an absolute path");
        expect_bad("{'op':'submit','argv':['ls'],'cwd':''}", "cwd", "cwd must be a non-empty string of at most 4095 bytes");
        expect_bad("{'op':'submit','argv':['ls'],'cwd':7}", "cwd", "cwd must be a non-empty string of at most 4095 bytes");
        long_s[0] = '/';
        memset(long_s + 1, 'd', 4094);
        long_s[4095] = '\0';
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'cwd':'%s'}", long_s);
        expect_ok(q);
        assert_int_equal(strlen(R.cwd), 4095);
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'cwd':'%sd'}", long_s);
        expect_bad(q, "cwd", "cwd must be a non-empty string of at most 4095 bytes");

        /* Queue names: [A-Za-z0-9_.-]{1,64}. */
        memset(long_s, 'q', 64);
        long_s[64] = '\0';
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'queue':'%s'}", long_s);
        expect_ok(q);
        expect_ok("{'op':'submit','argv':['ls'],'queue':'nightly.backup-2_x'}");
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'queue':'%sq'}", long_s);
        expect_bad(q, "queue", "queue must be 1 to 64 letters, digits, '_', '.' or '-'");
        expect_bad("{'op':'submit','argv':['ls'],'queue':''}", "queue", "queue must be 1 to 64*");
        expect_bad("{'op':'submit','argv':['ls'],'queue':'a b'}", "queue", "queue must be 1 to 64*");
        expect_bad("{'op':'submit','argv':['ls'],'queue':'a\\tb'}", "queue", "queue must be 1 to 64*");
        expect_bad("{'op':'submit','argv':['ls'],'queue':'\\u007f'}", "queue", "queue must be 1 to 64*");
        expect_bad("{'op':'submit','argv':['ls'],'queue':'q-\xc3\xa9'}", "queue", "queue must be 1 to 64*");
        expect_bad("{'op':'submit','argv':['ls'],'queue':'a/b'}", "queue", "queue must be 1 to 64*");

        memset(long_s, 'k', 256);
        long_s[256] = '\0';
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'key':'%s'}", long_s);
        expect_ok(q);
        assert_int_equal(strlen(R.key), 256);
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'key':'%sk'}", long_s);
        expect_bad(q, "key", "key must be a non-empty string of at most 256 bytes");
        expect_bad("{'op':'submit','argv':['ls'],'key':''}", "key", NULL);
        expect_bad("{'op':'submit','argv':['ls'],'key':5}", "key", NULL);
}

/* One integer field of submit: lo and hi pass, lo-1 and hi+1 and
 * non-integers fail naming the field. */
static void check_int_field(const char *field, long long lo, long long hi, const char *msg)
{
        static const char *const wrong[] = { "'1'", "1.0", "true", "null", "[1]", "{}", "1e2" };
        const long long vals[4] = { lo, hi, lo - 1, hi + 1 };
        char q[200];

        for (int i = 0; i < 4; i++) {
                snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'%s':%lld}", field, vals[i]);
                if (i < 2)
                        expect_ok(q);
                else
                        expect_bad(q, field, msg);
        }
        for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
                snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'%s':%s}", field, wrong[i]);
                expect_bad(q, field, msg);
        }
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'%s':-9223372036854775808}", field);
        expect_bad(q, field, msg);
        snprintf(q, sizeof(q), "{'op':'submit','argv':['ls'],'%s':9223372036854775807}", field);
        expect_bad(q, field, msg);
}

static void test_submit_ints(void **state)
{

        check_int_field("priority", -1000, 1000, "priority must be an integer from -1000 to 1000");
        check_int_field("max_attempts", 1, 1000, "max_attempts must be an integer from 1 to 1000");
        check_int_field("delay_ms", 0, RINGQ_DURATION_MAX_MS,
                        "delay_ms must be a non-negative number of milliseconds (at most 100 years)");
        check_int_field("run_at", 0, 253402300799999LL,
                        "run_at must be a time in unix milliseconds (year 9999 at most)");
        check_int_field("timeout_ms", 1, RINGQ_DURATION_MAX_MS,
                        "timeout_ms must be a positive number of milliseconds (at most 100 years)");
        check_int_field("backoff_ms", 0, 3600000, "backoff_ms must be a number of milliseconds from 0 to 3600000");

        expect_ok("{'op':'submit','argv':['ls'],'run_at':1700000000000,'priority':1000}");
        assert_true(R.run_at == 1700000000000LL && R.delay_ms == -1);
        assert_int_equal(R.priority, 1000);
        expect_bad("{'op':'submit','argv':['ls'],'delay_ms':0,'run_at':0}", "run_at", "give delay_ms or run_at, not both");
        expect_bad("{'op':'submit','argv':['ls'],'run_at':5,'delay_ms':1000}", "run_at", "give delay_ms or run_at, not both");
}

static void test_id_ops(void **state)
{
        static const char *const ops[] = { "status", "cancel", "retry", "wait" };
        static const char *const bad_ids[] = { "0", "-1", "'1'", "1.0", "null", "true", "[1]",
                                               "-9223372036854775808" };
        char q[200];

        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                snprintf(q, sizeof(q), "{'op':'%s','id':1}", ops[i]);
                expect_ok(q);
                assert_int_equal(R.op, ringq_op_from_name(ops[i]));
                assert_true(R.id == 1);
                snprintf(q, sizeof(q), "{'op':'%s','id':9223372036854775807}", ops[i]);
                expect_ok(q);
                assert_true(R.id == INT64_MAX);
                snprintf(q, sizeof(q), "{'op':'%s'}", ops[i]);
                expect_bad(q, "id", "id is required");
                for (size_t j = 0; j < sizeof(bad_ids) / sizeof(bad_ids[0]); j++) {
                        snprintf(q, sizeof(q), "{'op':'%s','id':%s}", ops[i], bad_ids[j]);
                        expect_bad(q, "id", "id must be a positive integer");
                }
        }
        expect_ok("{'op':'wait','id':3}");
        assert_true(R.timeout_ms == -1);
        expect_ok("{'op':'wait','id':3,'timeout_ms':0}");
        assert_true(R.timeout_ms == 0);
        expect_ok("{'op':'wait','id':3,'timeout_ms':3153600000000}");
        assert_true(R.timeout_ms == RINGQ_DURATION_MAX_MS);
        expect_bad("{'op':'wait','id':3,'timeout_ms':3153600000001}", "timeout_ms", NULL);
        expect_bad("{'op':'wait','id':3,'timeout_ms':-1}", "timeout_ms",
                   "timeout_ms must be a non-negative number of milliseconds");
        expect_bad("{'op':'wait','id':0,'timeout_ms':-1}", "id", NULL);
        expect_bad("{'op':'status','id':1,'timeout_ms':1}", NULL, "unknown field 'timeout_ms' for status");
}

static void test_list(void **state)
{
        char q[200];

        expect_ok("{'op':'list'}");
        assert_int_equal(R.state, -1);
        assert_null(R.queue);
        assert_int_equal(R.limit, 100);
        assert_true(R.after_id == 0);
        for (int s = 0; s < _RINGQ_STATE_MAX; s++) {
                snprintf(q, sizeof(q), "{'op':'list','state':'%s'}", ringq_state_names[s]);
                expect_ok(q);
                assert_int_equal(R.state, s);
        }
        expect_ok("{'op':'list','queue':'q','limit':1,'after_id':9223372036854775807}");
        assert_string_equal(R.queue, "q");
        assert_int_equal(R.limit, 1);
        assert_true(R.after_id == INT64_MAX);
        expect_ok("{'op':'list','limit':1000}");
        assert_int_equal(R.limit, 1000);

        expect_bad("{'op':'list','state':'done'}", "state",
                   "state must be one of queued, running, succeeded, failed, canceled");
        expect_bad("{'op':'list','state':1}", "state", NULL);
        expect_bad("{'op':'list','state':null}", "state", NULL);
        expect_bad("{'op':'list','state':'Queued'}", "state", NULL);
        expect_bad("{'op':'list','limit':0}", "limit", "limit must be an integer from 1 to 1000");
        expect_bad("{'op':'list','limit':1001}", "limit", "limit must be an integer from 1 to 1000");
        expect_bad("{'op':'list','limit':'5'}", "limit", NULL);
        expect_bad("{'op':'list','after_id':-1}", "after_id", "after_id must be a non-negative integer");
        expect_bad("{'op':'list','queue':''}", "queue", NULL);
}


static void test_err_and_line(void **state)
{
        struct proto_error pe = { .code = RINGQ_ERR_QUEUE_FULL, .field = NULL, .message = "full" };
        json_t *tag = json_pack("[s,i]", "t", 1);
        char *line;
        size_t len = 0;

        line = proto_line(proto_err(RINGQ_ERR_NOT_FOUND, NULL, "no job %d", 42), NULL, &len);
        assert_string_equal(line, "{\"ok\":false,\"error\":\"not_found\",\"message\":\"no job 42\"}\n");
        assert_int_equal(len, strlen(line));
        free(line);

        /* A newline in the text is escaped: still exactly one line. */
        line = proto_line(proto_err(RINGQ_ERR_BAD_REQUEST, "cwd", "a\nb"), tag, &len);
        assert_string_equal(line, "{\"ok\":false,\"error\":\"bad_request\",\"message\":\"a\\nb\","
                                  "\"field\":\"cwd\",\"tag\":[\"t\",1]}\n");
        assert_ptr_equal(strchr(line, '\n'), line + len - 1);
        free(line);
        /* proto_line took its own reference to the tag. */
        assert_int_equal(tag->refcount, 1);
        json_decref(tag);

        line = proto_line(proto_err_from(&pe), NULL, &len);
        assert_string_equal(line, "{\"ok\":false,\"error\":\"queue_full\",\"message\":\"full\"}\n");
        free(line);

        tag = json_string("x");
        line = proto_line(proto_ok(), tag, &len);
        assert_string_equal(line, "{\"ok\":true,\"tag\":\"x\"}\n");
        assert_int_equal(len, 22);
        free(line);
        json_decref(tag);
        assert_null(proto_line(NULL, NULL, &len));
}

static void test_err_long_message(void **state)
{
        char big[2000];
        json_t *o;

        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        o = proto_err(RINGQ_ERR_INTERNAL, "f", "%s", big);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "error")), "internal");
        assert_string_equal(json_string_value(json_object_get(o, "field")), "f");
        assert_int_equal(json_string_length(json_object_get(o, "message")), 511);
        assert_true(json_is_false(json_object_get(o, "ok")));
        json_decref(o);
}

static void test_job(void **state)
{
        struct job_rec j = {
                .id = 17, .queue = "q", .state = RINGQ_STATE_FAILED, .priority = -5,
                .argv = "[\"sh\",\"-c\",\"exit 3\"]", .cwd = "/w", .owner_uid = 1000,
                .owner_gid = 100, .submitted_at = 1000, .run_at = 0, .started_at = 2000,
                .finished_at = -1, .attempts = 2, .max_attempts = 3, .timeout_ms = -1,
                .exit_code = 3, .signal = 0, .reason = "exit 3", .pid = -1,
        };
        static const struct { const char *k; long long v; } ints[] = {
                { "id", 17 }, { "priority", -5 }, { "owner_uid", 1000 }, { "owner_gid", 100 },
                { "submitted_at", 1000 }, { "run_at", 0 }, { "started_at", 2000 },
                { "attempts", 2 }, { "max_attempts", 3 }, { "exit_code", 3 },
        };
        static const char *const strs[][2] = {
                { "queue", "q" }, { "state", "failed" }, { "cwd", "/w" }, { "reason", "exit 3" },
                { "stdout_path", "/var/lib/ringq/output/17.out" },
                { "stderr_path", "/var/lib/ringq/output/17.err" },
        };
        static const char *const nulls[] = { "finished_at", "timeout_ms", "signal" };
        json_t *o = proto_job(&j, "/var/lib/ringq/output");

        assert_non_null(o);
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
                json_t *v = json_object_get(o, ints[i].k);
                if (!json_is_integer(v) || json_integer_value(v) != ints[i].v)
                        fail_msg("%s: want %lld", ints[i].k, ints[i].v);
        }
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                assert_string_equal(json_string_value(json_object_get(o, strs[i][0])), strs[i][1]);
        for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
                assert_true(json_is_null(json_object_get(o, nulls[i])));
        assert_int_equal(json_array_size(json_object_get(o, "argv")), 3);
        assert_string_equal(json_string_value(json_array_get(json_object_get(o, "argv"), 2)), "exit 3");
        json_decref(o);

        /* Killed by a signal, NULL strings, no argv text, the largest id. */
        j = (struct job_rec){ .id = INT64_MAX, .state = RINGQ_STATE_QUEUED, .submitted_at = -1,
                              .run_at = -1, .started_at = -1, .finished_at = -1, .timeout_ms = 0,
                              .exit_code = -1, .signal = 9, .pid = -1 };
        o = proto_job(&j, "/o");
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "state")), "queued");
        assert_true(json_is_null(json_object_get(o, "queue")) && json_is_null(json_object_get(o, "cwd")));
        assert_true(json_is_null(json_object_get(o, "reason")) && json_is_null(json_object_get(o, "run_at")));
        assert_true(json_is_null(json_object_get(o, "exit_code")));
        assert_int_equal(json_array_size(json_object_get(o, "argv")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "timeout_ms")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "signal")), 9);
        assert_string_equal(json_string_value(json_object_get(o, "stdout_path")), "/o/9223372036854775807.out");
        json_decref(o);

        /* Corrupt argv text yields no object rather than a wrong one. */
        j.argv = "[\"unterminated";
        assert_null(proto_job(&j, "/o"));
}

static void test_dump_compact(void **state)
{
        json_t *v = json_pack("{s:[s,s]}", "a", "x", "y z");
        char *s = proto_dump_compact(v);

        assert_string_equal(s, "{\"a\":[\"x\",\"y z\"]}");
        free(s);
        json_decref(v);
        v = json_string("bare");
        s = proto_dump_compact(v);
        assert_string_equal(s, "\"bare\"");
        free(s);
        json_decref(v);

        /* argv and env are written by hand: they must come out as
         * jansson writes them, for every kind of character. */
        static const char *const pieces[] = {
                "a", "Z", " ", "/", "\"", "\\", "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
                "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1b", "\x1f", "=", "\\u0041",
        };
        unsigned seed = 7;
        for (int round = 0; round < 2000; round++) {
                bool obj = round & 1;
                json_t *c = obj ? json_object() : json_array();
                int n = (int)(rand_r(&seed) % 5);
                for (int i = 0; i < n; i++) {
                        char str[2][64];
                        for (int w = 0; w < 2; w++) {
                                size_t len = 0;
                                int m = (int)(rand_r(&seed) % 8);
                                str[w][0] = '\0';
                                for (int j = 0; j < m; j++) {
                                        const char *piece = pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(*pieces))];
                                        memcpy(str[w] + len, piece, strlen(piece) + 1);
                                        len += strlen(piece);
                                }
                        }
                        if (obj)
                                json_object_set_new(c, str[0], json_string(str[1]));
                        else
                                json_array_append_new(c, json_string(str[1]));
                }
                /* A NUL inside a string, which jansson can hold. */
                if (round % 7 == 0 && !obj)
                        json_array_append_new(c, json_stringn("x\0y", 3));
                char *ours = proto_dump_compact(c), *theirs = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
                assert_non_null(ours);
                assert_non_null(theirs);
                assert_string_equal(ours, theirs);
                free(ours);
                free(theirs);
                json_decref(c);
        }
        /* Shapes a job never has still come out. */
        v = json_pack("[s,i,{s:n}]", "x", 3, "k");
        s = proto_dump_compact(v);
        assert_string_equal(s, "[\"x\",3,{\"k\":null}]");
        free(s);
        json_decref(v);
}

/* A submit's answer is printed without a tree: it must be the line
 * proto_line would make of the same reply, byte for byte, for every
 * kind of tag (integers at both ends of their range included). */
static void test_submitted_line(void **state)
{
        json_t *tags[] = {
                NULL, json_integer(0), json_integer(7), json_integer(-12), json_integer(INT64_MAX),
                json_integer(INT64_MIN), json_string("t\"1\n"), json_null(), json_real(1.5),
                json_pack("{s:[i,s]}", "a", 1, "\xc3\xa9"),
        };
        const int64_t ids[] = { 1, 42, INT64_MAX };

        for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
                for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                        for (int dup = 0; dup < 2; dup++) {
                                json_t *reply = json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)ids[i]);
                                size_t want_len = 0, len = 0;
                                char *want, *got;

                                if (dup)
                                        json_object_set_new(reply, "duplicate", json_true());
                                want = proto_line(reply, tags[t], &want_len);
                                got = proto_submitted_line(ids[i], dup, tags[t], &len);
                                assert_non_null(want);
                                assert_non_null(got);
                                assert_string_equal(got, want);
                                assert_int_equal(len, want_len);
                                free(want);
                                free(got);
                        }
        for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
                json_decref(tags[t]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_op),
                cmocka_unit_test(test_nul_in_strings),
                cmocka_unit_test(test_unknown_fields),
                cmocka_unit_test(test_tag_on_error),
                cmocka_unit_test(test_submit_defaults),
                cmocka_unit_test(test_submit_argv_env),
                cmocka_unit_test(test_submit_strings),
                cmocka_unit_test(test_submit_ints),
                cmocka_unit_test(test_id_ops),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_err_and_line),
                cmocka_unit_test(test_err_long_message),
                cmocka_unit_test(test_job),
                cmocka_unit_test(test_dump_compact),
                cmocka_unit_test(test_submitted_line),
        };

        return cmocka_run_group_tests_name("proto", tests, NULL, free_last);
}
