/* log.c - logfmt-style logger. Each line is formatted into a stack buffer and
 * written with a single write(2) to fd 2, which keeps lines whole across threads
 * without a lock. Over-long lines are truncated, never split. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

bool log_level_parse(const char *s, enum log_level *out)
{
    if (!strcasecmp(s, "debug"))
        *out = LOG_DEBUG;
    else if (!strcasecmp(s, "info"))
        *out = LOG_INFO;
    else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        *out = LOG_WARN;
    else if (!strcasecmp(s, "error"))
        *out = LOG_ERROR;
    else if (!strcasecmp(s, "fatal") || !strcasecmp(s, "critical"))
        *out = LOG_FATAL;
    else
        return false;
    return true;
}

void log_set_level(enum log_level lvl)
{
    atomic_store(&g_level, (int)lvl);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&g_level);
}

bool log_enabled(enum log_level lvl)
{
    return (int)lvl >= atomic_load(&g_level);
}

void log_write(enum log_level lvl, const char *msg, const char *kvfmt, ...)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    size_t n = 0, i;
    int w;
    va_list ap;

    if (!log_enabled(lvl))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    w = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[lvl]);
    n = (size_t)w;
    for (i = 0; msg[i] && n < sizeof(line) - 8; i++) {
        char c = msg[i];
        if (c == '"' || c == '\\')
            line[n++] = '\\';
        line[n++] = (c == '\n') ? ' ' : c;
    }
    line[n++] = '"';
    if (kvfmt && *kvfmt && n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_start(ap, kvfmt);
        w = vsnprintf(line + n, sizeof(line) - n - 1, kvfmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof(line) - n - 1 ? (size_t)w : sizeof(line) - n - 2;
    }
    line[n++] = '\n';
    if (write(2, line, n) < 0) {
        /* nowhere left to report a failing stderr */
    }
}
