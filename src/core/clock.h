/* clock.h - wall and monotonic time in explicit units. */
#ifndef CORE_CLOCK_H
#define CORE_CLOCK_H

#include <stdint.h>

/* Wall clock, microseconds since the Unix epoch (UTC). */
int64_t clock_now_us(void);
/* Monotonic clock in nanoseconds (for durations and deadlines only). */
int64_t clock_mono_ns(void);
/* Format a UTC time in microseconds as RFC 3339 with 6 fractional digits
 * ("2026-08-22T14:00:00.123456Z") into out (at least 32 bytes). Returns length. */
int clock_format_rfc3339_us(int64_t ts_us, char *out, int out_len);

#endif
