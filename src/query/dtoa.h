/* dtoa.h - shortest round-trip formatting of doubles and floats.
 *
 * Our own C implementation of the Schubfach algorithm (dtoa.c), byte for byte
 * what libdouble-conversion printed before it (tests/unit/test_dtoa.c compares
 * them on millions of values). The output follows Python's repr(), which is also
 * what Python's json module writes: the shortest digit string that parses back to
 * the same value, decimal notation for 1e-4 <= |v| < 1e16 with at least one digit
 * after the point ("2.0", "12.3", "0.0001"), exponent notation otherwise with a
 * sign and at least two exponent digits ("1e+300", "1.5e-07"). -0.0 prints "-0.0".
 * NaN and infinities are the caller's business (JSON has none): the functions
 * write "NaN", "Infinity", "-Infinity" for them.
 *
 * Thread: all functions are reentrant (no state; the tables are const). */
#ifndef QUERY_DTOA_H
#define QUERY_DTOA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest output of dtoa_shortest/dtoa_shortest_f32, without a terminator:
 * "-2.2250738585072014e-308" is 24 bytes. */
#define DTOA_MAX_LEN 32

/* Write v into out, which must have DTOA_MAX_LEN bytes of room: all of them may
 * be written (fixed-size stores), whatever the length of the text. Returns the
 * length of the text (1..24; no NUL is counted or promised). */
size_t dtoa_shortest(double v, char *out);

/* Same for a float: the shortest string that round-trips through float
 * (0.1f prints "0.1", not "0.10000000149011612"). */
size_t dtoa_shortest_f32(float v, char *out);

/* Tables shared with the integer writers of encode.c: the two-digit pairs
 * "00".."99", and 10^0..10^19. */
extern const char dtoa_digits2[201];
extern const uint64_t dtoa_pow10[20];

#ifdef __cplusplus
}
#endif

#endif
