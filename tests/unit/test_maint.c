/* test_maint.c - cron expressions of the compaction schedule (maint/cron.h): fields,
 * lists, ranges, steps, Sunday as 0 or 7, the day-of-month/weekday OR rule, and
 * malformed expressions that must match nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "maint/cron.h"

/* 2026-11-28 (a Saturday) hh:mm UTC */
static struct tm at(int mday, int hour, int min)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_wday = (6 + (mday - 28) + 70) % 7;
    return tm;
}

static void test_cron(void **state)
{
    struct tm t = at(28, 14, 5);
    (void)state;

    assert_true(cron_matches("5 * * * *", &t));
    assert_false(cron_matches("6 * * * *", &t));
    assert_true(cron_matches("* * * * *", &t));
    assert_true(cron_matches("*/5 * * * *", &t));
    assert_false(cron_matches("*/10 * * * *", &t));
    assert_true(cron_matches("0-10/5 14 * * *", &t));
    assert_true(cron_matches("1,3,5 13-15 * 11 *", &t));
    assert_false(cron_matches("5 * * 12 *", &t));
    assert_true(cron_matches("5 14 * * 6", &t));     /* Saturday */
    assert_false(cron_matches("5 14 * * 0", &t));
    assert_true(cron_matches("  5\t14 28 11 6  ", &t));
    /* both day fields restricted: either matches */
    assert_true(cron_matches("5 14 1 * 6", &t));
    assert_true(cron_matches("5 14 28 * 1", &t));
    assert_false(cron_matches("5 14 1 * 1", &t));
    /* one restricted: it alone decides */
    assert_false(cron_matches("5 14 1 * *", &t));
    t = at(29, 0, 0); /* Sunday */
    assert_true(cron_matches("0 0 * * 7", &t));
    assert_true(cron_matches("0 0 * * 0", &t));
    assert_true(cron_matches("0/30 0 * * *", &t));
    /* malformed: never matches (never runs rather than always) */
    static const char *bad[] = {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
                                "* * 0 * *", "* * * 13 *", "a * * * *", "5-1 * * * *",
                                "*/0 * * * *", "1,,2 * * * *", "-1 * * * *"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cron_matches(bad[i], &t))
            fail_msg("'%s' matched", bad[i]);
    assert_false(cron_matches(NULL, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cron)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
