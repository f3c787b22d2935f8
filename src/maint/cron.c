/* cron.c - match a five-field cron expression against a time (cron.h). */
#include "maint/cron.h"

#include <stdlib.h>
#include <string.h>

/* Parse one field into a bitmap of allowed values in [lo, hi]. false: malformed. */
static bool parse_field(const char *s, size_t len, int lo, int hi, unsigned long long *bits,
                        bool *star)
{
    const char *end = s + len;

    *bits = 0;
    *star = len == 1 && s[0] == '*';
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        long a = lo, b = hi, step = 1;
        char *e;

        if (*s == '*') {
            s++;
        } else {
            a = strtol(s, &e, 10);
            if (e == s)
                return false;
            s = e;
            b = a;
            if (s < item_end && *s == '-') {
                b = strtol(s + 1, &e, 10);
                if (e == s + 1)
                    return false;
                s = e;
            }
        }
        if (s < item_end && *s == '/') {
            step = strtol(s + 1, &e, 10);
            if (e == s + 1 || step <= 0)
                return false;
            s = e;
            if (a == b && s[-1] != '*')
                b = hi; /* "5/15" = 5, 20, 35, 50 */
        }
        if (s != item_end || a < lo || b > hi || a > b)
            return false;
        for (long v = a; v <= b; v += step)
            *bits |= 1ull << v;
        s = comma ? comma + 1 : end;
    }
    return *bits != 0;
}

bool cron_matches(const char *expr, const struct tm *tm)
{
    static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 7};
    unsigned long long bits[5];
    bool star[5];
    const char *p = expr;
    int n = 0;

    if (!expr)
        return false;
    while (n < 5) {
        const char *start;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return false;
        start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (!parse_field(start, (size_t)(p - start), lo[n], hi[n], &bits[n], &star[n]))
            return false;
        n++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return false;
    if (bits[4] & (1ull << 7))
        bits[4] |= 1; /* 7 is Sunday too */
    if (!(bits[0] >> tm->tm_min & 1) || !(bits[1] >> tm->tm_hour & 1) ||
        !(bits[3] >> (tm->tm_mon + 1) & 1))
        return false;
    {
        bool dom = bits[2] >> tm->tm_mday & 1, dow = bits[4] >> tm->tm_wday & 1;
        if (star[2] || star[4])
            return dom && dow;
        return dom || dow;
    }
}
