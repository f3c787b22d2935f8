/* fuzz_dtoa.c - libFuzzer target for src/query/dtoa.c: any 8 bytes as a double
 * (and the first 4 as a float) must format into at most DTOA_MAX_LEN - 1 bytes
 * of a heap buffer of exactly DTOA_MAX_LEN (ASan sees any overrun), as a JSON
 * number that strtod/strtof parse back to the same bits, with no more digits
 * than the fewest "%.*e" needs (tests/unit/test_dtoa.c compares the text with
 * libdouble-conversion). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/dtoa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Significant digits of the text (before any exponent, zeros at both ends dropped). */
static size_t sig_digits(const char *s, size_t n)
{
    size_t k, first = 0, last = 0, seen = 0;

    for (k = 0; k < n && s[k] != 'e'; k++) {
        if (s[k] < '0' || s[k] > '9')
            continue;
        seen++;
        if (s[k] != '0') {
            if (!first)
                first = seen;
            last = seen;
        }
    }
    return first ? last - first + 1 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out, txt[DTOA_MAX_LEN + 1];
    uint64_t bits;
    uint32_t fbits;
    double v;
    float f, fb;
    size_t n;
    int p;

    if (size < 8)
        return 0;
    memcpy(&bits, data, 8);
    memcpy(&v, &bits, 8);
    out = malloc(DTOA_MAX_LEN);
    if (!out)
        return 0;
    n = dtoa_shortest(v, out);
    if (n == 0 || n >= DTOA_MAX_LEN)
        abort();
    memcpy(txt, out, n);
    txt[n] = '\0';
    if (isfinite(v)) {
        if (strtod(txt, NULL) != v || (v == 0 && signbit(strtod(txt, NULL)) != signbit(v)))
            abort();
        for (p = 1; p < 17; p++) { /* the fewest digits printf's nearest rounding needs */
            char e[40];
            snprintf(e, sizeof(e), "%.*e", p - 1, v);
            if (strtod(e, NULL) == v)
                break;
        }
        if (sig_digits(txt, n) > (size_t)p)
            abort();
        if (strspn(txt, "-0123456789.e+") != n)
            abort();
    }
    memcpy(&fbits, data, 4);
    memcpy(&f, &fbits, 4);
    n = dtoa_shortest_f32(f, out);
    if (n == 0 || n >= DTOA_MAX_LEN)
        abort();
    memcpy(txt, out, n);
    txt[n] = '\0';
    if (isfinite(f)) {
        fb = strtof(txt, NULL);
        if (memcmp(&fb, &f, 4) != 0)
            abort();
    }
    free(out);
    return 0;
}
