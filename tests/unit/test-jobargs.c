/* Unit tests of daemon/jobargs.c: what a job's process is given.
 *
 * argv from its JSON text (and what is refused); the environment, minimal
 * and sent, with RINGQ_JOB_ID and RINGQ_ATTEMPT first and impossible to
 * override, and the PATH execvp will search; the exec candidates for a
 * name with and without a '/', empty PATH entries included; the groups
 * recorded with a job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "jobargs.h"
#include "users.h"

static size_t count(char **v)
{
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

static void test_argv(void **state)
{
        char **v = jobargs_argv("[\"sh\",\"-c\",\"echo a b\"]");

        assert_int_equal(count(v), 3);
        assert_string_equal(v[2], "echo a b");
        strv_free(v);
        assert_null(jobargs_argv("[]"));
        assert_null(jobargs_argv("[\"a\",1]"));
        assert_null(jobargs_argv("{\"a\":1}"));
        assert_null(jobargs_argv("not json"));
        strv_free(NULL);
}

static const struct user_info alice = { .uid = 1000, .gid = 1000, .name = "alice", .home = "/home/alice",
                                        .shell = "/bin/bash" };

static void test_minimal_env(void **state)
{
        struct job_rec j = { .id = 42 };
        char *path = NULL, **env = jobargs_env(&j, NULL, &alice, 3, &path);

        assert_int_equal(count(env), 7);
        assert_string_equal(env[0], "RINGQ_JOB_ID=42");
        assert_string_equal(env[1], "RINGQ_ATTEMPT=3");
        assert_string_equal(env[2], "PATH=" JOBARGS_DEFAULT_PATH);
        assert_string_equal(env[3], "HOME=/home/alice");
        assert_string_equal(env[4], "USER=alice");
        assert_string_equal(env[5], "LOGNAME=alice");
        assert_string_equal(env[6], "SHELL=/bin/bash");
        assert_string_equal(path, JOBARGS_DEFAULT_PATH);
        strv_free(env);
        free(path);
}

static void test_sent_env(void **state)
{
        struct job_rec j = { .id = 7, .env = "{\"PATH\":\"/opt/bin:\",\"RINGQ_JOB_ID\":\"1\",\"X\":\"a=b\"}" };
        char *path = NULL, **env = jobargs_env(&j, NULL, &alice, 1, &path);

        assert_int_equal(count(env), 4);
        assert_string_equal(env[0], "RINGQ_JOB_ID=7");
        assert_string_equal(env[1], "RINGQ_ATTEMPT=1");
        assert_string_equal(env[2], "PATH=/opt/bin:");
        assert_string_equal(env[3], "X=a=b");
        assert_string_equal(path, "/opt/bin:");
        strv_free(env);
        free(path);
        j.env = "[1]";
        assert_null(jobargs_env(&j, NULL, &alice, 1, &path));
}

/* A job started from its submit gets its environment from the request's
 * parsed object: the same vector as from the row's text, in the same
 * order; the text is not parsed then (here it says something else). */
static void test_env_from_object(void **state)
{
        const char *text = "{\"HOME\":\"/h\",\"RINGQ_ATTEMPT\":\"9\",\"PATH\":\"/p\",\"Z\":\"\\u00e9\"}";
        json_t *o = json_loads(text, 0, NULL);
        struct job_rec j = { .id = 5, .env = (char *)text };
        char *p1 = NULL, *p2 = NULL, **from_text = jobargs_env(&j, NULL, &alice, 2, &p1), **from_obj;

        assert_non_null(o);
        from_obj = jobargs_env(&j, o, &alice, 2, &p2);
        assert_int_equal(count(from_text), 5);
        assert_int_equal(count(from_obj), count(from_text));
        for (size_t i = 0; i < count(from_text); i++)
                assert_string_equal(from_obj[i], from_text[i]);
        assert_string_equal(from_obj[4], "Z=\xc3\xa9");
        assert_string_equal(p2, "/p");
        strv_free(from_obj);
        free(p2);
        j.env = "{\"PATH\":\"/from/text\"}";
        from_obj = jobargs_env(&j, o, &alice, 2, &p2);
        assert_string_equal(p2, "/p");
        assert_int_equal(count(from_obj), 5);
        strv_free(from_obj);
        free(p2);
        strv_free(from_text);
        free(p1);
        json_decref(o);
}

static void test_paths(void **state)
{
        char **v = jobargs_paths("./run", "/usr/bin");

        assert_int_equal(count(v), 1);
        assert_string_equal(v[0], "./run");
        strv_free(v);
        v = jobargs_paths("make", "/usr/local/bin::/usr/bin");
        assert_int_equal(count(v), 3);
        assert_string_equal(v[0], "/usr/local/bin/make");
        assert_string_equal(v[1], "make"); /* an empty entry: the working directory */
        assert_string_equal(v[2], "/usr/bin/make");
        strv_free(v);
        v = jobargs_paths("make", "");
        assert_int_equal(count(v), 1);
        assert_string_equal(v[0], "make");
        strv_free(v);
}

static void test_groups(void **state)
{
        gid_t *g = NULL;
        size_t n = 0;

        assert_int_equal(jobargs_groups("[1000,27,4294967294]", &g, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(g[1], 27);
        assert_int_equal(g[2], 4294967294u);
        free(g);
        assert_int_equal(jobargs_groups("[]", &g, &n), 0);
        assert_int_equal(n, 0);
        free(g);
        assert_int_equal(jobargs_groups("[-1]", &g, &n), -EBADMSG);
        assert_int_equal(jobargs_groups("[4294967295]", &g, &n), -EBADMSG); /* (gid_t)-1 is no group */
        assert_int_equal(jobargs_groups("[\"27\"]", &g, &n), -EBADMSG);
        assert_int_equal(jobargs_groups("{}", &g, &n), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_argv),
                cmocka_unit_test(test_minimal_env),
                cmocka_unit_test(test_sent_env),
                cmocka_unit_test(test_env_from_object),
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_groups),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
