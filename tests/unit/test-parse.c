/* Unit tests of include/ringq/parse.h and include/ringq/protocol.h.
 *
 * parse.h: ringq_parse_u64 (prefix, end pointer, UINT64 overflow),
 * ringq_parse_duration_ms (every unit, bare seconds, the exact
 * RINGQ_DURATION_MAX_MS limit per unit and one past it, INT64/UINT64
 * overflow, malformed text) and ringq_parse_size (binary units, the
 * largest value per shift and one past it).
 * protocol.h: name tables against their enums, *_from_name round trips
 * and rejects, ringq_state_is_final, ringq_exit_for_error for every
 * error code (ringq(1), EXIT STATUS), ringq_client_socket precedence.
 *
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringq/parse.h"
#include "ringq/protocol.h"

#define DMAX RINGQ_DURATION_MAX_MS /* 3153600000000 ms */

static void test_u64_basic(void **state)
{
        uint64_t v = 7;
        const char *end = NULL;
        const char *s;

        s = "0";
        assert_int_equal(ringq_parse_u64(s, &v, &end), 0);
        assert_true(v == 0);
        assert_ptr_equal(end, s + 1);

        s = "00042rest";
        assert_int_equal(ringq_parse_u64(s, &v, &end), 0);
        assert_true(v == 42);
        assert_string_equal(end, "rest");

        s = "18446744073709551615";
        assert_int_equal(ringq_parse_u64(s, &v, &end), 0);
        assert_true(v == UINT64_MAX);
        assert_ptr_equal(end, s + strlen(s));
}

static void test_u64_rejects(void **state)
{
        uint64_t v = 99;
        const char *end = NULL;

        assert_int_equal(ringq_parse_u64("", &v, &end), -EINVAL);
        assert_int_equal(ringq_parse_u64("-1", &v, &end), -EINVAL);
        assert_int_equal(ringq_parse_u64("+1", &v, &end), -EINVAL);
        assert_int_equal(ringq_parse_u64(" 1", &v, &end), -EINVAL);
        assert_int_equal(ringq_parse_u64("x1", &v, &end), -EINVAL);
        /* UINT64_MAX + 1, and a much longer number. */
        assert_int_equal(ringq_parse_u64("18446744073709551616", &v, &end), -ERANGE);
        assert_int_equal(ringq_parse_u64("99999999999999999999999999", &v, &end), -ERANGE);
        /* Outputs untouched on failure. */
        assert_true(v == 99);
        assert_null(end);
}

static void test_duration_units(void **state)
{
        static const struct { const char *s; int64_t ms; } ok[] = {
                { "0", 0 },          { "0ms", 0 },        { "1ms", 1 },
                { "250ms", 250 },    { "30s", 30000 },    { "30", 30000 },
                { "1", 1000 },       { "5m", 300000 },    { "2h", 7200000 },
                { "7d", 604800000 }, { "007s", 7000 },    { "1000ms", 1000 },
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int64_t ms = -1;
                assert_int_equal(ringq_parse_duration_ms(ok[i].s, &ms), 0);
                assert_true(ms == ok[i].ms);
        }
}

static void test_duration_limits(void **state)
{
        /* The largest value of each unit is exactly RINGQ_DURATION_MAX_MS. */
        static const struct { const char *max, *over; } lim[] = {
                { "3153600000000ms", "3153600000001ms" },
                { "3153600000s", "3153600001s" },
                { "3153600000", "3153600001" },
                { "52560000m", "52560001m" },
                { "876000h", "876001h" },
                { "36500d", "36501d" },
        };

        assert_true(DMAX == INT64_C(3153600000000));
        for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
                int64_t ms = -1;
                assert_int_equal(ringq_parse_duration_ms(lim[i].max, &ms), 0);
                assert_true(ms == DMAX);
                ms = -1;
                assert_int_equal(ringq_parse_duration_ms(lim[i].over, &ms), -ERANGE);
                assert_true(ms == -1);
        }
}

static void test_duration_overflow(void **state)
{
        int64_t ms = -1;

        /* INT64_MAX and INT64_MAX+1 in ms; multiplications that would wrap. */
        assert_int_equal(ringq_parse_duration_ms("9223372036854775807ms", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("9223372036854775808ms", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("18446744073709551615ms", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("18446744073709551616ms", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("213503982334601d", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("9223372036854776s", &ms), -ERANGE);
        assert_int_equal(ringq_parse_duration_ms("99999999999999999999999d", &ms), -ERANGE);
        assert_true(ms == -1);
}

static void test_duration_malformed(void **state)
{
        static const char *const bad[] = {
                "",     "ms",  "s",    "-1",   "-1s",  "+1s", " 1s", "1s ", "1 s",
                "1.5s", "1S",  "1M",   "1H",   "1D",   "1w",  "1y",  "1us", "1ns",
                "1sec", "1min", "1mss", "1sm", "5m5s", "0x10", "1e3", "1ms\n",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t ms = -7;
                int r = ringq_parse_duration_ms(bad[i], &ms);
                if (r != -EINVAL)
                        fail_msg("duration '%s': got %d, want -EINVAL", bad[i], r);
                assert_true(ms == -7);
        }
        assert_int_equal(ringq_parse_duration_ms(NULL, &(int64_t){ 0 }), -EINVAL);
}

static void test_size(void **state)
{
        static const struct { const char *s; uint64_t v; } ok[] = {
                { "0", 0 },          { "65536", 65536 },     { "1B", 1 },
                { "1K", 1024 },      { "1KB", 1024 },        { "1KiB", 1024 },
                { "1k", 1024 },      { "16M", 16777216 },    { "16MB", 16777216 },
                { "16MiB", 16777216 }, { "1G", 1073741824 }, { "1GB", 1073741824 },
                { "1GiB", 1073741824 }, { "0G", 0 },
                { "18446744073709551615", UINT64_MAX },
                { "18014398509481983K", UINT64_MAX << 10 },
                { "17592186044415M", UINT64_MAX << 20 },
                { "17179869183G", UINT64_MAX << 30 },
        };
        static const struct { const char *s; int r; } bad[] = {
                { "", -EINVAL },      { "K", -EINVAL },    { "-1", -EINVAL },
                { "1 K", -EINVAL },   { "1T", -EINVAL },   { "1m", -EINVAL },
                { "1g", -EINVAL },    { "1kB", -EINVAL },  { "1Ki", -EINVAL },
                { "1.5M", -EINVAL },  { "1b", -EINVAL },   { "1KK", -EINVAL },
                { "18446744073709551616", -ERANGE },
                { "18014398509481984K", -ERANGE },
                { "17592186044416M", -ERANGE },
                { "17179869184G", -ERANGE },
                { "99999999999999999999G", -ERANGE },
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                uint64_t v = 1234;
                int r = ringq_parse_size(ok[i].s, &v);
                if (r != 0 || v != ok[i].v)
                        fail_msg("size '%s': r=%d v=%llu", ok[i].s, r, (unsigned long long)v);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint64_t v = 1234;
                int r = ringq_parse_size(bad[i].s, &v);
                if (r != bad[i].r || v != 1234)
                        fail_msg("size '%s': r=%d want %d", bad[i].s, r, bad[i].r);
        }
        assert_int_equal(ringq_parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_name_tables(void **state)
{
        static const char *const ops[] = { "ping", "submit", "status", "list",
                                           "cancel", "retry", "wait", "stats", "output",
                                           "pause", "resume", "queues", "reexec" };
        static const char *const errs[] = { "bad_request", "too_large", "queue_full", "busy",
                                            "not_found", "forbidden", "invalid_state", "timeout",
                                            "shutting_down", "storage_error", "internal" };
        static const char *const states[] = { "queued", "running", "succeeded", "failed",
                                              "canceled" };

        assert_int_equal(_RINGQ_OP_MAX, 13);
        assert_int_equal(_RINGQ_ERR_MAX, 11);
        assert_int_equal(_RINGQ_STATE_MAX, 5);
        for (int i = 0; i < _RINGQ_OP_MAX; i++) {
                assert_string_equal(ringq_op_names[i], ops[i]);
                assert_int_equal(ringq_op_from_name(ops[i]), i);
        }
        for (int i = 0; i < _RINGQ_ERR_MAX; i++) {
                assert_string_equal(ringq_err_names[i], errs[i]);
                assert_int_equal(ringq_err_from_name(errs[i]), i);
        }
        for (int i = 0; i < _RINGQ_STATE_MAX; i++) {
                assert_string_equal(ringq_state_names[i], states[i]);
                assert_int_equal(ringq_state_from_name(states[i]), i);
        }
        assert_int_equal(RINGQ_OP_WAIT, 6);
        assert_int_equal(RINGQ_ERR_STORAGE, 9);
        assert_int_equal(RINGQ_STATE_CANCELED, 4);
}

static void test_from_name_rejects(void **state)
{
        static const char *const bad[] = { "", "PING", "ping ", " ping", "pin", "pings",
                                           "storage", "cancelled", "done" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(ringq_op_from_name(bad[i]), -EINVAL);
                assert_int_equal(ringq_err_from_name(bad[i]), -EINVAL);
                assert_int_equal(ringq_state_from_name(bad[i]), -EINVAL);
        }
        assert_int_equal(ringq_op_from_name(NULL), _RINGQ_OP_INVALID);
        assert_int_equal(ringq_err_from_name(NULL), _RINGQ_ERR_INVALID);
        assert_int_equal(ringq_state_from_name(NULL), _RINGQ_STATE_INVALID);
        /* Names belong to their own table only. */
        assert_int_equal(ringq_op_from_name("queued"), -EINVAL);
        assert_int_equal(ringq_state_from_name("timeout"), -EINVAL);
        assert_int_equal(ringq_err_from_name("wait"), -EINVAL);
}

static void test_state_is_final(void **state)
{
        assert_false(ringq_state_is_final(RINGQ_STATE_QUEUED));
        assert_false(ringq_state_is_final(RINGQ_STATE_RUNNING));
        assert_true(ringq_state_is_final(RINGQ_STATE_SUCCEEDED));
        assert_true(ringq_state_is_final(RINGQ_STATE_FAILED));
        assert_true(ringq_state_is_final(RINGQ_STATE_CANCELED));
        assert_false(ringq_state_is_final(_RINGQ_STATE_INVALID));
}

static void test_exit_for_error(void **state)
{
        /* ringq(1): 65 bad_request; 66 not_found; 75 queue_full, busy or
         * shutting_down; 77 forbidden; 124 wait timeout; 70 anything else. */
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_BAD_REQUEST), 65);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_NOT_FOUND), 66);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_QUEUE_FULL), 75);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_BUSY), 75);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_SHUTTING_DOWN), 75);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_FORBIDDEN), 77);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_TIMEOUT), 124);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_INVALID_STATE), 70);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_STORAGE), 70);
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_INTERNAL), 70);
        assert_int_equal(ringq_exit_for_error(_RINGQ_ERR_INVALID), 70);
        assert_int_equal(ringq_exit_for_error((enum ringq_err)_RINGQ_ERR_MAX), 70);
        assert_int_equal(RINGQ_EXIT_USAGE, 64);
        assert_int_equal(RINGQ_EXIT_UNREACHABLE, 69);
}

/* The exit codes list too_large under none of the named exit codes, so it is
 * "70 anything else". */
static void test_exit_too_large(void **state)
{
        assert_int_equal(ringq_exit_for_error(RINGQ_ERR_TOO_LARGE), 70);
}

static void test_client_socket(void **state)
{
        assert_int_equal(unsetenv("RINGQ_SOCKET"), 0);
        assert_string_equal(ringq_client_socket(NULL), "/run/ringq/ringq.sock");
        assert_string_equal(ringq_client_socket(""), "/run/ringq/ringq.sock");
        assert_int_equal(setenv("RINGQ_SOCKET", "", 1), 0);
        assert_string_equal(ringq_client_socket(NULL), "/run/ringq/ringq.sock");
        assert_int_equal(setenv("RINGQ_SOCKET", "/tmp/env.sock", 1), 0);
        assert_string_equal(ringq_client_socket(NULL), "/tmp/env.sock");
        assert_string_equal(ringq_client_socket(""), "/tmp/env.sock");
        assert_string_equal(ringq_client_socket("/tmp/flag.sock"), "/tmp/flag.sock");
        assert_int_equal(unsetenv("RINGQ_SOCKET"), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_u64_basic),
                cmocka_unit_test(test_u64_rejects),
                cmocka_unit_test(test_duration_units),
                cmocka_unit_test(test_duration_limits),
                cmocka_unit_test(test_duration_overflow),
                cmocka_unit_test(test_duration_malformed),
                cmocka_unit_test(test_size),
                cmocka_unit_test(test_name_tables),
                cmocka_unit_test(test_from_name_rejects),
                cmocka_unit_test(test_state_is_final),
                cmocka_unit_test(test_exit_for_error),
                cmocka_unit_test(test_exit_too_large),
                cmocka_unit_test(test_client_socket),
        };

        return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
