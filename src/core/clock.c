/* clock.c - time helpers. Formatting handles pre-1970 times by flooring. */
#include "core/clock.h"

#include <stdio.h>
#include <time.h>

int64_t clock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int clock_format_rfc3339_us(int64_t ts_us, char *out, int out_len)
{
    int64_t secs = ts_us / 1000000, frac = ts_us % 1000000;
    time_t t;
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    t = (time_t)secs;
    gmtime_r(&t, &tm);
    return snprintf(out, (size_t)out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, (long)frac);
}
