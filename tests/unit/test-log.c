/* Unit tests of log_quote (daemon/log.c): how a user-controlled string
 * appears in a log line. Nothing a request sends may end the line, start
 * a new one with a priority of its choosing, or steer a terminal; valid
 * UTF-8 stays readable; the result never overruns its buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "log.h"

static void check(const char *in, const char *want)
{
        char buf[256];

        assert_string_equal(log_quote(buf, sizeof(buf), in), want);
}

static void test_plain(void **state)
{
        check("make", "\"make\"");
        check("", "\"\"");
        check(NULL, "\"\"");
        check("a b/c-d_e.f", "\"a b/c-d_e.f\"");
}

static void test_forged_line(void **state)
{
        /* The attack of the issue: a newline, then a priority prefix. */
        check("x\n<0>forged emergency", "\"x\\n<0>forged emergency\"");
        check("a\rb", "\"a\\x0db\"");
        check("tab\there", "\"tab\\there\"");
        check("say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\"");
        check("\x1b[31mred", "\"\\x1b[31mred\"");
        check("del\x7f", "\"del\\x7f\"");
}

static void test_utf8(void **state)
{
        check("héllo ✓ 🙂", "\"héllo ✓ 🙂\"");
        /* Not UTF-8: a lone continuation byte, a cut sequence, an
         * overlong '/', a surrogate, a code point past U+10FFFF. */
        check("\x80", "\"\\x80\"");
        check("\xe2\x9c", "\"\\xe2\\x9c\"");
        check("\xc0\xaf", "\"\\xc0\\xaf\"");
        check("\xed\xa0\x80", "\"\\xed\\xa0\\x80\"");
        check("\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\"");
        /* C1 controls are UTF-8 but steer terminals (U+009B is CSI). */
        check("\xc2\x9b" "31m", "\"\\u009b31m\"");
}

static void test_cut(void **state)
{
        char big[1000], buf[32];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        log_quote(buf, sizeof(buf), big);
        assert_true(strlen(buf) < sizeof(buf));
        assert_int_equal(buf[0], '"');
        assert_string_equal(buf + strlen(buf) - 4, "...\"");
        /* An escape is never cut in half. */
        memset(big, '\n', 100);
        big[100] = '\0';
        log_quote(buf, sizeof(buf), big);
        assert_true(strlen(buf) < sizeof(buf));
        for (size_t i = 1; buf[i] != '.'; i += 2)
                assert_memory_equal(buf + i, "\\n", 2);
        /* Nor a UTF-8 sequence. */
        log_quote(buf, 12, "ab✓✓✓✓");
        assert_string_equal(buf, "\"ab✓...\"");
        /* Too small for anything: still a string. */
        log_quote(buf, 4, "abc");
        assert_string_equal(buf, "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_forged_line),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_cut),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
