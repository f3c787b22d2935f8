/* dtoa.h - shortest round-trip formatting of doubles and floats.
 *
 * A thin C interface over Debian's libdouble-conversion (Grisu3 with a bignum
 * fallback; see dtoa_shim.cc). The output follows Python's repr(), which is also
 * what Python's json module writes: the shortest digit string that parses back to
 * the same value, decimal notation for 1e-4 <= |v| < 1e16 with at least one digit
 * after the point ("2.0", "12.3", "0.0001"), exponent notation otherwise with a
 * sign and at least two exponent digits ("1e+300", "1.5e-07"). -0.0 prints "-0.0".
 * NaN and infinities are the caller's business (JSON has none): the functions
 * write "NaN", "Infinity", "-Infinity" for them.
 *
 * Thread: all functions are reentrant (the converter is a const singleton). */
#ifndef QUERY_DTOA_H
#define QUERY_DTOA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest output of dtoa_shortest/dtoa_shortest_f32, without a terminator:
 * "-2.2250738585072014e-308" is 24 bytes. */
#define DTOA_MAX_LEN 32

/* Write v into out (at least DTOA_MAX_LEN bytes). A NUL may follow the digits
 * but is not counted. Returns the number of bytes written (1..DTOA_MAX_LEN-1). */
size_t dtoa_shortest(double v, char *out);

/* Same for a float: the shortest string that round-trips through float
 * (0.1f prints "0.1", not "0.10000000149011612"). */
size_t dtoa_shortest_f32(float v, char *out);

#ifdef __cplusplus
}
#endif

#endif
