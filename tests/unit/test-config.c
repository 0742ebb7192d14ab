/* Unit tests of daemon/config.c.
 *
 * config_init defaults (ringqd.conf(5)) and $STATE_DIRECTORY /
 * $RUNTIME_DIRECTORY (first of a colon list); config_set for every key
 * type: limits and one past them, the exact error text, -ENOENT for an
 * unknown key; config_parse_buffer: comments, blank lines, CRLF,
 * trailing comments, a buffer cut by len, and the exact
 * "<name>:<line>: ..." text of each error; config_parse_file (missing,
 * directory, too large, a real file); config_finalize (low_water 90%
 * default, low < high); the key table helpers.
 *
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
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "ringq/protocol.h"

static int setup(void **state)
{
        static struct config c;

        unsetenv("STATE_DIRECTORY");
        unsetenv("RUNTIME_DIRECTORY");
        config_init(&c);
        *state = &c;
        return 0;
}

static int teardown(void **state)
{
        config_done(*state);
        return 0;
}

/* Parse text as a config file named "t.conf"; returns r and the error. */
static int parse(struct config *c, const char *text, char **err)
{
        return config_parse_buffer(c, text, strlen(text), "t.conf", err);
}

/* The text must fail with exactly this message. */
static void expect_error(const char *text, const char *msg)
{
        struct config c;
        char *err = NULL;
        int r;

        config_init(&c);
        r = parse(&c, text, &err);
        if (r != -EINVAL || !err || strcmp(err, msg) != 0)
                fail_msg("for %s\n got r=%d err=\"%s\"\nwant -EINVAL \"%s\"", text, r,
                         err ? err : "(null)", msg);
        free(err);
        config_done(&c);
}

static void test_defaults(void **state)
{
        struct config *c = *state;
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        char *err = NULL;

        assert_string_equal(c->state_dir, "/var/lib/ringq");
        assert_string_equal(c->socket, "/run/ringq/ringq.sock");
        assert_true(c->workers == (uint64_t)(n > 1024 ? 1024 : n));
        assert_true(c->high_water == 10000);
        assert_true(c->max_clients == 1024);
        assert_true(c->max_request_bytes == 65536);
        assert_true(c->default_timeout_ms == 3600000);
        assert_true(c->kill_grace_ms == 10000);
        assert_true(c->max_output_bytes == 16u << 20);
        assert_true(c->retention_ms == 7LL * 86400000);
        assert_true(c->max_finished == 100000);
        assert_int_equal(c->durability, DURABILITY_FULL);
        assert_true(c->shutdown_grace_ms == 30000);
        assert_true(c->idle_timeout_ms == 60000);
        assert_true(c->max_pipeline == 64);
        assert_true(c->max_reply_bytes == 1u << 20);
        assert_false(c->low_water_set);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_null(err);
        assert_true(c->low_water == 9000);
}

static void test_env_dirs(void **state)
{
        struct config c;

        assert_int_equal(setenv("STATE_DIRECTORY", "/srv/a:/srv/b", 1), 0);
        assert_int_equal(setenv("RUNTIME_DIRECTORY", "/run/x:/run/y", 1), 0);
        config_init(&c);
        assert_string_equal(c.state_dir, "/srv/a");
        assert_string_equal(c.socket, "/run/x/ringq.sock");
        config_done(&c);

        assert_int_equal(setenv("STATE_DIRECTORY", "/srv/only", 1), 0);
        assert_int_equal(setenv("RUNTIME_DIRECTORY", "", 1), 0);
        config_init(&c);
        assert_string_equal(c.state_dir, "/srv/only");
        assert_string_equal(c.socket, "/run/ringq/ringq.sock");
        config_done(&c);
        unsetenv("STATE_DIRECTORY");
        unsetenv("RUNTIME_DIRECTORY");
}

static void test_set_values(void **state)
{
        struct config *c = *state;
        char *err = NULL;

        assert_int_equal(config_set(c, "workers", "1", &err), 0);
        assert_true(c->workers == 1);
        assert_int_equal(config_set(c, "workers", "1024", &err), 0);
        assert_true(c->workers == 1024);
        assert_int_equal(config_set(c, "max_request_bytes", "256", &err), 0);
        assert_true(c->max_request_bytes == 256);
        assert_int_equal(config_set(c, "max_request_bytes", "64M", &err), 0);
        assert_true(c->max_request_bytes == 64u << 20);
        assert_int_equal(config_set(c, "max_output_bytes", "1024G", &err), 0);
        assert_true(c->max_output_bytes == UINT64_C(1) << 40);
        assert_int_equal(config_set(c, "kill_grace", "0", &err), 0);
        assert_true(c->kill_grace_ms == 0);
        assert_int_equal(config_set(c, "kill_grace", "1h", &err), 0);
        assert_true(c->kill_grace_ms == 3600000);
        assert_int_equal(config_set(c, "default_timeout", "1ms", &err), 0);
        assert_true(c->default_timeout_ms == 1);
        assert_int_equal(config_set(c, "retention", "36500d", &err), 0);
        assert_true(c->retention_ms == RINGQ_DURATION_MAX_MS);
        assert_int_equal(config_set(c, "durability", "normal", &err), 0);
        assert_int_equal(c->durability, DURABILITY_NORMAL);
        assert_int_equal(config_set(c, "log_level", "debug", &err), 0);
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_int_equal(config_set(c, "log_level", "3", &err), 0);
        assert_int_equal(c->log_level, 3);
        assert_int_equal(config_set(c, "state_dir", "/tmp/s", &err), 0);
        assert_string_equal(c->state_dir, "/tmp/s");
        assert_int_equal(config_set(c, "low_water", "0", &err), 0);
        assert_true(c->low_water == 0);
        assert_true(c->low_water_set);
        assert_null(err);
}

static void test_set_errors(void **state)
{
        static const struct { const char *key, *value, *msg; } cases[] = {
                { "workers", "0", "workers: 0 is out of range (1..1024)" },
                { "workers", "1025", "workers: 1025 is out of range (1..1024)" },
                { "workers", "4x", "workers: '4x' is not a whole number" },
                { "workers", "-1", "workers: '-1' is not a whole number" },
                { "workers", "18446744073709551616", "workers: '18446744073709551616' is not a whole number" },
                { "high_water", "100000001", "high_water: 100000001 is out of range (1..100000000)" },
                { "max_request_bytes", "255", "max_request_bytes: 255 is out of range (256..67108864)" },
                { "max_request_bytes", "67108865", "max_request_bytes: 67108865 is out of range (256..67108864)" },
                { "max_request_bytes", "1T", "max_request_bytes: '1T' is not a size (like 65536, 64K, 16M)" },
                { "max_output_bytes", "1025G", "max_output_bytes: 1025G is out of range (0..1099511627776)" },
                { "max_output_bytes", "17179869184G", "max_output_bytes: '17179869184G' is not a size (like 65536, 64K, 16M)" },
                { "kill_grace", "3600001ms", "kill_grace: 3600001ms is out of range (0ms..3600000ms)" },
                { "default_timeout", "0", "default_timeout: 0 is out of range (1ms..3153600000000ms)" },
                { "default_timeout", "36501d", "default_timeout: '36501d' is not a duration (like 250ms, 30s, 5m, 2h, 7d)" },
                { "idle_timeout", "99ms", "idle_timeout: 99ms is out of range (100ms..86400000ms)" },
                { "durability", "FULL", "durability: 'FULL' is not one of full, normal" },
                { "log_level", "loud", "log_level: 'loud' is not a log level (debug, info, notice, warning, err)" },
                { "log_level", "8", "log_level: '8' is not a log level (debug, info, notice, warning, err)" },
                { "state_dir", "var/lib", "state_dir: 'var/lib' is not an absolute path" },
                { "socket", "", "socket: '' is not an absolute path" },
        };
        struct config *c = *state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *err = NULL;
                int r = config_set(c, cases[i].key, cases[i].value, &err);
                if (r != -EINVAL || !err || strcmp(err, cases[i].msg) != 0)
                        fail_msg("%s=%s: r=%d err=\"%s\"", cases[i].key, cases[i].value, r,
                                 err ? err : "(null)");
                free(err);
        }
        /* Failed sets leave the old values. */
        assert_true(c->workers >= 1 && c->workers <= 1024);
        assert_true(c->kill_grace_ms == 10000);
        assert_string_equal(c->state_dir, "/var/lib/ringq");
}

static void test_set_unknown_key(void **state)
{
        char *err = NULL;

        assert_int_equal(config_set(*state, "worker", "4", &err), -ENOENT);
        assert_non_null(err);
        assert_string_equal(err, "unknown key 'worker'");
        free(err);
}

static void test_parse_good(void **state)
{
        struct config *c = *state;
        char *err = (char *)1;
        const char *text =
                "# ringqd.conf\n"
                "\n"
                "   workers=3\n"
                "high_water = 500   # half a thousand\r\n"
                "\tkill_grace\t=\t2s\t\r\n"
                "state_dir = /srv/ringq=x\n"
                "   # indented comment\n"
                "durability = normal\n"
                "workers = 5"; /* no final newline; the last one wins */

        assert_int_equal(parse(c, text, &err), 0);
        assert_null(err);
        assert_true(c->workers == 5);
        assert_true(c->high_water == 500);
        assert_true(c->kill_grace_ms == 2000);
        assert_string_equal(c->state_dir, "/srv/ringq=x");
        assert_int_equal(c->durability, DURABILITY_NORMAL);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 450);

        assert_int_equal(config_parse_buffer(c, "", 0, "t.conf", &err), 0);
        assert_int_equal(parse(c, "\n\n# only comments\n", &err), 0);
}

static void test_parse_len(void **state)
{
        struct config *c = *state;
        const char *text = "workers = 7\nworkers = bogus\n";
        char *err = NULL;

        /* Only the first len bytes are the file. */
        assert_int_equal(config_parse_buffer(c, text, 12, "t.conf", &err), 0);
        assert_true(c->workers == 7);
        assert_int_equal(config_parse_buffer(c, "workers = 12345", 12, "t.conf", &err), 0);
        assert_true(c->workers == 12);
}

static void test_parse_errors(void **state)
{
        expect_error("bogus = 1\n", "t.conf:1: unknown key 'bogus'");
        expect_error("\n\n# c\n\nworkers = x\n", "t.conf:5: workers: 'x' is not a whole number");
        expect_error("workers = 2\nthis line has no equals\n", "t.conf:2: expected 'key = value'");
        expect_error("workers =\n", "t.conf:1: workers: missing value");
        expect_error("workers =   # nothing\n", "t.conf:1: workers: missing value");
        expect_error("= 5\n", "t.conf:1: unknown key ''");
        expect_error("Workers = 4\n", "t.conf:1: unknown key 'Workers'");
        /* Every bad line, not only the first. */
        expect_error("a\r\nb\r\nworkers = 0\r\n", "t.conf:1: expected 'key = value'\n"
                                                   "t.conf:2: expected 'key = value'\n"
                                                   "t.conf:3: workers: 0 is out of range (1..1024)");
        expect_error("# 1\r\n# 2\r\nworkers = 0\r\n", "t.conf:3: workers: 0 is out of range (1..1024)");
        expect_error("x\n", "t.conf:1: expected 'key = value'");
        expect_error("kill_grace = 2h\n", "t.conf:1: kill_grace: 2h is out of range (0ms..3600000ms)");
        expect_error("state_dir = relative/dir\n", "t.conf:1: state_dir: 'relative/dir' is not an absolute path");
        expect_error("durability = fast\n", "t.conf:1: durability: 'fast' is not one of full, normal");
}

static void test_parse_nul(void **state)
{
        char *err = NULL;
        static const char text[] = "workers = 4\n\0workers = 5\n";

        assert_int_equal(config_parse_buffer(*state, text, sizeof(text) - 1, "t.conf", &err), -EINVAL);
        assert_non_null(err);
        assert_true(strncmp(err, "t.conf", 6) == 0);
        assert_non_null(strstr(err, "NUL"));
        free(err);
}

/* config.h: "*ret_err names the line: <name>:<line>: <reason>", a NUL
 * byte included (line 2 here). */
static void test_parse_nul_line(void **state)
{
        char *err = NULL;
        static const char text[] = "workers = 4\nworkers = 5\0\n";

        assert_int_equal(config_parse_buffer(*state, text, sizeof(text) - 1, "t.conf", &err), -EINVAL);
        assert_non_null(err);
        assert_true(strncmp(err, "t.conf:2: ", 10) == 0);
        free(err);
}

static void test_parse_file(void **state)
{
        struct config *c = *state;
        char path[] = "/tmp/ringq-test-config-XXXXXX";
        char *err = NULL, *want = NULL;
        int fd = mkstemp(path);
        FILE *f;

        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        fputs("workers = 2\n# x\nmax_clients = 10\nmax_clients = 0\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_parse_file(c, path, false, &err), -EINVAL);
        assert_true(asprintf(&want, "%s:4: max_clients: 0 is out of range (1..65536)", path) > 0);
        assert_non_null(err);
        assert_string_equal(err, want);
        assert_true(c->workers == 2);
        assert_true(c->max_clients == 10);
        free(err);
        free(want);

        f = fopen(path, "w");
        assert_non_null(f);
        fputs("max_clients = 11\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_parse_file(c, path, false, &err), 0);
        assert_null(err);
        assert_true(c->max_clients == 11);

        /* Too large: more than 1 MiB of comments. */
        f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < 1100; i++)
                fprintf(f, "#%01022d\n", 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(config_parse_file(c, path, false, &err), -EINVAL);
        assert_true(asprintf(&want, "%s: larger than 1 MiB", path) > 0);
        assert_string_equal(err, want);
        free(err);
        free(want);
        assert_int_equal(unlink(path), 0);

        /* Missing. */
        assert_int_equal(config_parse_file(c, path, true, &err), 0);
        assert_null(err);
        assert_int_equal(config_parse_file(c, path, false, &err), -EINVAL);
        assert_true(asprintf(&want, "%s: No such file or directory", path) > 0);
        assert_string_equal(err, want);
        free(err);
        free(want);

        /* A directory is not a config file, even with missing_ok. */
        assert_int_equal(config_parse_file(c, "/tmp", true, &err), -EINVAL);
        assert_non_null(err);
        assert_true(strncmp(err, "/tmp: not a ", 12) == 0); /* "... regular file" / "... file" */
        free(err);
}

static void test_finalize(void **state)
{
        struct config *c = *state;
        char *err = NULL;

        assert_int_equal(config_set(c, "high_water", "10", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 9);
        /* Not set by the user: it follows high_water on a reload. */
        assert_int_equal(config_set(c, "high_water", "1", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 0);
        assert_int_equal(config_set(c, "high_water", "100000000", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 90000000);

        assert_int_equal(config_set(c, "high_water", "10", &err), 0);
        assert_int_equal(config_set(c, "low_water", "9", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 9);
        assert_int_equal(config_set(c, "low_water", "10", &err), 0);
        assert_int_equal(config_finalize(c, &err), -EINVAL);
        assert_non_null(err);
        assert_string_equal(err, "low_water (10) must be below high_water (10)");
        free(err);
        assert_int_equal(config_set(c, "low_water", "11", &err), 0);
        assert_int_equal(config_finalize(c, &err), -EINVAL);
        assert_string_equal(err, "low_water (11) must be below high_water (10)");
        free(err);
        /* A user-set low_water stays put when high_water changes. */
        assert_int_equal(config_set(c, "low_water", "5", &err), 0);
        assert_int_equal(config_set(c, "high_water", "1000", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_true(c->low_water == 5);
}

/* An error of a rule between keys names where the later one was set. */
static void test_finalize_origin(void **state)
{
        struct config *c = *state;
        char *err = NULL;

        assert_int_equal(parse(c, "low_water = 20\nhigh_water = 10\nqueue.q.workers = 3\nworkers = 2\n", &err), 0);
        assert_int_equal(config_finalize(c, &err), -EINVAL);
        assert_string_equal(err, "t.conf:4: queue.q.workers (3) is more than workers (2)\n"
                                 "t.conf:2: low_water (20) must be below high_water (10)");
        free(err);
        assert_int_equal(config_set_option(c, "low-water", "30", &err), 0);
        assert_int_equal(config_set_option(c, "workers", "3", &err), 0);
        assert_int_equal(config_finalize(c, &err), -EINVAL);
        assert_string_equal(err, "--low-water: low_water (30) must be below high_water (10)");
        free(err);
        assert_int_equal(config_set_option(c, "workers", "two", &err), -EINVAL);
        assert_string_equal(err, "--workers: 'two' is not a whole number");
        free(err);
        /* A rejected value is not judged again by a rule. */
        assert_int_equal(config_set_option(c, "high-water", "lots", &err), -EINVAL);
        free(err);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_null(err);
}

/* The keys of a shared ringqd: defaults, values, errors. */
static void test_sharing_keys(void **state)
{
        struct config *c = *state;
        char *err = NULL;

        assert_int_equal(c->max_clients_per_user, 64);
        assert_int_equal(c->root_reserve_clients, 16);
        assert_int_equal(c->max_queued_per_user, 0);
        assert_int_equal(c->fair_share, FAIR_SHARE_USERS);
        assert_string_equal(c->cgroup, "auto");
        assert_string_equal(c->pam_service, "ringq");
        assert_int_equal(config_finalize(c, &err), 0);
        assert_int_equal(c->root_reserve_jobs, 500); /* 5 % of 10000 */
        assert_int_equal(parse(c, "fair_share = off\ncgroup = /sys/fs/cgroup/x\npam_service = none\n"
                                  "root_reserve_jobs = 0\nhigh_water = 20\n", &err), 0);
        assert_int_equal(config_finalize(c, &err), 0);
        assert_int_equal(c->fair_share, FAIR_SHARE_OFF);
        assert_string_equal(c->cgroup, "/sys/fs/cgroup/x");
        assert_string_equal(c->pam_service, "none");
        assert_int_equal(c->root_reserve_jobs, 0); /* set: not derived */
        expect_error("fair_share = fifo\n", "t.conf:1: fair_share: 'fifo' is not one of users, off");
        expect_error("cgroup = cg\n", "t.conf:1: cgroup: 'cg' is not auto, off or an absolute path");
        expect_error("pam_service = ../etc/shadow\n",
                     "t.conf:1: pam_service: '../etc/shadow' is not a name of letters, digits, '_', '.' and '-'");
}

static void changed(const char *key)
{
        check_expected_ptr(key);
}

/* A reload keeps the restart-only keys and names each that changed. */
static void test_keep_restart_keys(void **state)
{
        struct config old, nc;
        char *err = NULL;

        config_init(&old);
        config_init(&nc);
        assert_int_equal(parse(&nc, "workers = 7\nhigh_water = 5\ncgroup = off\nfair_share = off\n", &err), 0);
        expect_string(changed, key, "workers");
        expect_string(changed, key, "fair_share");
        expect_string(changed, key, "cgroup");
        config_keep_restart_keys(&nc, &old, changed);
        assert_int_equal(nc.workers, old.workers);
        assert_int_equal(nc.fair_share, FAIR_SHARE_USERS);
        assert_string_equal(nc.cgroup, "auto");
        assert_int_equal(nc.high_water, 5); /* reloadable: taken */
        config_done(&old);
        config_done(&nc);
}

static void test_key_table(void **state)
{
        const struct config_key *k;

        assert_true(config_nkeys >= 14);
        for (size_t i = 0; i < config_nkeys; i++) {
                k = config_key_at(i);
                assert_non_null(k);
                assert_non_null(k->key);
                assert_ptr_equal(config_key_by_flag(k->flag), k);
        }
        assert_null(config_key_at(config_nkeys));
        k = config_key_by_flag("max-request");
        assert_non_null(k);
        assert_string_equal(k->key, "max_request_bytes");
        k = config_key_by_flag("high-water");
        assert_non_null(k);
        assert_string_equal(k->key, "high_water");
        assert_null(config_key_by_flag("no-such-flag"));
        assert_true(config_key_reloadable("high_water"));
        assert_false(config_key_reloadable("workers"));
        assert_false(config_key_reloadable("state_dir"));
        assert_false(config_key_reloadable("bogus"));
        assert_string_equal(durability_to_string(DURABILITY_FULL), "full");
        assert_string_equal(durability_to_string(DURABILITY_NORMAL), "normal");
        assert_string_equal(durability_to_string(_DURABILITY_MAX), "?");
        assert_string_equal(durability_to_string(-1), "?");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test(test_env_dirs),
                cmocka_unit_test_setup_teardown(test_set_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_unknown_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_good, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_len, setup, teardown),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test_setup_teardown(test_parse_nul, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_nul_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parse_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finalize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finalize_origin, setup, teardown),
                cmocka_unit_test(test_key_table),
                cmocka_unit_test_setup_teardown(test_sharing_keys, setup, teardown),
                cmocka_unit_test(test_keep_restart_keys),
        };

        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
