/* log.h - one line per event: `ts=... level=info msg="..." key=value ...` on stderr.
 *
 * The level is process-wide (log_set_level). Lines are written with one write(2)
 * so lines from different threads never interleave. Thread: all safe. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_FATAL = 4 };

/* Parse "debug"/"info"/"warn"/"warning"/"error"/"fatal" (any case). false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
bool log_enabled(enum log_level lvl);

/* Emit one line: msg is quoted, kvfmt (may be NULL) is a printf format of
 * space-separated key=value pairs appended after it. */
void log_write(enum log_level lvl, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, msg, __VA_ARGS__);                                                \
    } while (0)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
