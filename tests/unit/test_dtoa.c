/* test_dtoa.c - src/query/dtoa.c, the shortest round-trip double/float formatter
 * of the JSON and CSV encoders.
 *
 * Every value checked is formatted into a guarded buffer (nothing may be written
 * past DTOA_MAX_LEN), parsed back with strtod/strtof (must give the same bits),
 * and compared byte for byte with libdouble-conversion configured the same way
 * (dtoa_ref.cc, the formatter dtoa.c replaced). Sets: a table of spelled-out
 * cases; every power of two and of ten with their neighbours; the subnormal
 * range; integers around 2^53; few-decimal values (what sensors send); millions
 * of random bit patterns; and an independent shortest-length check with a printf
 * loop (the fewest %.*e digits that round-trip). ARC_DTOA_SEED=<n> reseeds the
 * random sets, ARC_DTOA_RANDOM=<n> changes their size (default 4 M doubles and
 * 4 M floats; 1 M under AddressSanitizer). Finite answers must also be JSON
 * numbers. The float formatter was also compared with the reference on all
 * 2^32 bit patterns once (too slow for every run; see bench/README.md). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/dtoa.h"

size_t dtoa_ref(double v, char *out, size_t cap);
size_t dtoa_ref_f32(float v, char *out, size_t cap);

#define GUARD 16

/* Random values per set; a quarter under sanitizers (5-10x slower). */
#if defined(__SANITIZE_ADDRESS__)
#define RANDOM_DEFAULT 1000000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RANDOM_DEFAULT 1000000
#endif
#endif
#ifndef RANDOM_DEFAULT
#define RANDOM_DEFAULT 4000000
#endif

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);

    return s && *s ? strtol(s, NULL, 10) : dflt;
}

static double from_bits(uint64_t b)
{
    double v;

    memcpy(&v, &b, 8);
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, 8);
    return b;
}

static uint64_t checked; /* values checked by check_d / check_f */

/* s[0..n) is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t n)
{
    size_t i = 0, k;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        k = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        k = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    return i == n;
}

/* Format v, check guard bytes, round trip and equality with the reference. */
static void check_d(double v)
{
    char out[DTOA_MAX_LEN + GUARD], ref[64], txt[64];
    size_t n, rn, i;
    double back;

    memset(out, 0x5A, sizeof(out));
    n = dtoa_shortest(v, out);
    for (i = DTOA_MAX_LEN; i < sizeof(out); i++)
        if (out[i] != 0x5A)
            fail_msg("dtoa(%a) wrote past DTOA_MAX_LEN", v);
    if (n == 0 || n >= DTOA_MAX_LEN)
        fail_msg("dtoa(%a): length %zu", v, n);
    rn = dtoa_ref(v, ref, sizeof(ref));
    if (n != rn || memcmp(out, ref, n) != 0)
        fail_msg("dtoa(%a = %.17g) = '%.*s', reference '%.*s'", v, v, (int)n, out, (int)rn, ref);
    if (isfinite(v)) {
        if (!is_json_number(out, n))
            fail_msg("dtoa(%a) = '%.*s' is not a JSON number", v, (int)n, out);
        memcpy(txt, out, n);
        txt[n] = '\0';
        back = strtod(txt, NULL);
        if (to_bits(back) != to_bits(v))
            fail_msg("dtoa(%a) = '%s' parses back as %a", v, txt, back);
    }
    checked++;
}

static void check_f(float v)
{
    char out[DTOA_MAX_LEN + GUARD], ref[64], txt[64];
    size_t n, rn, i;
    float back;

    memset(out, 0x5A, sizeof(out));
    n = dtoa_shortest_f32(v, out);
    for (i = DTOA_MAX_LEN; i < sizeof(out); i++)
        if (out[i] != 0x5A)
            fail_msg("dtoa_f32(%a) wrote past DTOA_MAX_LEN", (double)v);
    rn = dtoa_ref_f32(v, ref, sizeof(ref));
    if (n != rn || memcmp(out, ref, n) != 0)
        fail_msg("dtoa_f32(%a = %.9g) = '%.*s', reference '%.*s'", (double)v, (double)v, (int)n,
                 out, (int)rn, ref);
    if (isfinite(v)) {
        if (!is_json_number(out, n))
            fail_msg("dtoa_f32(%a) = '%.*s' is not a JSON number", (double)v, (int)n, out);
        memcpy(txt, out, n);
        txt[n] = '\0';
        back = strtof(txt, NULL);
        if (memcmp(&back, &v, 4) != 0)
            fail_msg("dtoa_f32(%a) = '%s' parses back as %a", (double)v, txt, (double)back);
    }
    checked++;
}

/* v and its neighbours up to k ulps away, both signs. */
static void check_around(double v, int k)
{
    double lo = v, hi = v;
    int i;

    check_d(v);
    check_d(-v);
    for (i = 0; i < k; i++) {
        lo = nextafter(lo, -INFINITY);
        hi = nextafter(hi, INFINITY);
        check_d(lo);
        check_d(hi);
        check_d(-lo);
        check_d(-hi);
    }
}

static void test_spelled_out(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-1.0, "-1.0"},
        {2.0, "2.0"},
        {12.3, "12.3"},
        {45.67, "45.67"},
        {1500.0, "1500.0"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {0.0001, "0.0001"},
        {0.000123, "0.000123"},
        {0.00001, "1e-05"},
        {1.5e-5, "1.5e-05"},
        {1.5e-7, "1.5e-07"},
        {1e15, "1000000000000000.0"},
        {1234567890123456.8, "1234567890123456.8"},
        {9999999999999998.0, "9999999999999998.0"},
        {1e16, "1e+16"},
        {1.2345e16, "1.2345e+16"},
        {123456789012345680.0, "1.2345678901234568e+17"},
        {1e21, "1e+21"},
        {1e22, "1e+22"},
        {1e23, "1e+23"},
        {1e100, "1e+100"},
        {1e300, "1e+300"},
        {9007199254740991.0, "9007199254740991.0"},      /* 2^53 - 1 */
        {9007199254740992.0, "9007199254740992.0"},      /* 2^53 */
        {9007199254740994.0, "9007199254740994.0"},      /* 2^53 + 2 (2^53 + 1 is not a double) */
        {18014398509481984.0, "1.8014398509481984e+16"}, /* 2^54 */
        {DBL_MAX, "1.7976931348623157e+308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {-DBL_MIN, "-2.2250738585072014e-308"},
        {5e-324, "5e-324"},                                 /* smallest subnormal */
        {1e-323, "1e-323"},                                 /* 2 * 5e-324 */
        {1e-310, "1e-310"},                                 /* a subnormal */
        {2.225073858507201e-308, "2.225073858507201e-308"}, /* largest subnormal */
        {4.35, "4.35"},
        {5e-5, "5e-05"},
        {123e-20, "1.23e-18"},
        {1.7976931348623157e308 / 3, "5.992310449541053e+307"},
    };
    static const struct {
        float v;
        const char *want;
    } fcases[] = {
        {0.1f, "0.1"},
        {-0.0f, "-0.0"},
        {1.0f, "1.0"},
        {16777216.0f, "16777216.0"},
        {1e10f, "10000000000.0"},
        {3.4028235e38f, "3.4028235e+38"},
        {1e-45f, "1e-45"},
        {1.17549435e-38f, "1.1754944e-38"},
        {0.3f, "0.3"},
        {12.3f, "12.3"},
    };
    char out[DTOA_MAX_LEN];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = dtoa_shortest(cases[i].v, out);
        if (n != strlen(cases[i].want) || memcmp(out, cases[i].want, n) != 0)
            fail_msg("dtoa(%.17g) = '%.*s', want '%s'", cases[i].v, (int)n, out, cases[i].want);
        check_d(cases[i].v);
    }
    for (i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
        n = dtoa_shortest_f32(fcases[i].v, out);
        if (n != strlen(fcases[i].want) || memcmp(out, fcases[i].want, n) != 0)
            fail_msg("dtoa_f32(%.9g) = '%.*s', want '%s'", (double)fcases[i].v, (int)n, out,
                     fcases[i].want);
        check_f(fcases[i].v);
    }
    /* what dtoa.h promises for the values JSON cannot carry (callers write null) */
    n = dtoa_shortest(NAN, out);
    assert_memory_equal(out, "NaN", n);
    n = dtoa_shortest(-INFINITY, out);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "-Infinity", 9);
    n = dtoa_shortest_f32(INFINITY, out);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "Infinity", 8);
}

/* Binade edges (where the lower neighbour is closer), decimal powers, the
 * subnormal range, integers near 2^53. */
static void test_edges(void **state)
{
    char buf[32];
    uint64_t t;
    int i;

    (void)state;
    for (i = -1074; i <= 1023; i++)
        check_around(ldexp(1.0, i), 2);
    for (i = -323; i <= 308; i++) {
        snprintf(buf, sizeof(buf), "1e%d", i);
        check_around(strtod(buf, NULL), 2);
        snprintf(buf, sizeof(buf), "5e%d", i);
        check_around(strtod(buf, NULL), 1);
    }
    for (t = 1; t < 200000; t++) { /* smallest subnormals */
        check_d(from_bits(t));
        check_d(from_bits(0x000FFFFFFFFFFFFFULL - t)); /* largest */
    }
    check_around(DBL_MAX, 3);
    check_around(DBL_MIN, 3);
    for (t = 0; t < 4096; t++) { /* integers around 2^53 and 2^54 */
        check_d(9007199254740992.0 - (double)t);
        check_d(9007199254740992.0 + 2.0 * (double)t);
        check_d(18014398509481984.0 + 4.0 * (double)t);
    }
    for (i = -149; i <= 127; i++)
        check_f(ldexpf(1.0f, i));
    for (t = 1; t < 100000; t++) { /* subnormal floats */
        uint32_t b = (uint32_t)t;
        float f;
        memcpy(&f, &b, 4);
        check_f(f);
    }
}

/* Values with few decimals, the shape sensors send (and what an earlier fast
 * path special-cased): m / 10^d for random m and d = 0..8, and the bench's
 * round(x, 2) over 0..100. */
static void test_few_decimals(void **state)
{
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    long i, n = env_long("ARC_DTOA_RANDOM", RANDOM_DEFAULT) / 4;

    (void)state;
    rng_state = 0x1234567ULL + (uint64_t)env_long("ARC_DTOA_SEED", 0);
    for (i = 0; i < 10000; i++)
        check_d((double)i / 100.0);
    for (i = 0; i < n; i++) {
        uint64_t r = rng();
        int d = (int)(r % 9);
        double m = (double)((r >> 8) % 10000000000ULL);
        check_d(m / p10[d]);
    }
}

static void test_random_bits(void **state)
{
    long i, n = env_long("ARC_DTOA_RANDOM", RANDOM_DEFAULT);

    (void)state;
    rng_state = 0xC0FFEEULL + (uint64_t)env_long("ARC_DTOA_SEED", 0);
    for (i = 0; i < n; i++) {
        uint64_t b = rng();
        uint32_t fb = (uint32_t)(b >> 17);
        float f;

        check_d(from_bits(b)); /* NaNs and infinities included: rare but spelled */
        memcpy(&f, &fb, 4);
        check_f(f);
    }
}

/* Significant digits of a dtoa answer: "0.00120" -> 2, "1500.0" -> 2, "1.5e-07" -> 2. */
static size_t sig_digits(const char *s, size_t len)
{
    char d[40];
    size_t k, n = 0, first;

    for (k = 0; k < len && s[k] != 'e'; k++)
        if (s[k] >= '0' && s[k] <= '9')
            d[n++] = s[k];
    for (first = 0; first < n && d[first] == '0'; first++)
        ;
    while (n > first && d[n - 1] == '0')
        n--;
    return n - first;
}

/* Independent of the reference: the fewest significant digits p such that
 * "%.{p-1}e" (the nearest p-digit decimal) parses back to v. Ours has exactly p,
 * except at a power of two, whose interval is lopsided (the lower neighbour is
 * closer): there another p'-digit decimal than the nearest one may round-trip,
 * so ours may be shorter. Never longer. */
static void test_shortest_printf(void **state)
{
    char out[DTOA_MAX_LEN], txt[40];
    long i, n = env_long("ARC_DTOA_RANDOM", RANDOM_DEFAULT) / 16;
    size_t len, digits;
    bool pow2;
    int p;

    (void)state;
    rng_state = 0xBADC0DEULL + (uint64_t)env_long("ARC_DTOA_SEED", 0);
    for (i = 0; i < n; i++) {
        uint64_t b = rng();
        /* a quarter over every exponent, the rest between 2^-60 and 2^60 */
        double v = from_bits(i % 4 == 0 ? b
                                        : (b & 0x800FFFFFFFFFFFFFULL) |
                                              ((uint64_t)(1023 - 60 + (b >> 52) % 120) << 52));
        if (i % 64 == 1) /* and powers of two times small integers */
            v = ldexp((double)(b % 1000 + 1), (int)((b >> 20) % 2000) - 1000);
        if (!isfinite(v) || v == 0)
            continue;
        for (p = 1; p < 17; p++) {
            snprintf(txt, sizeof(txt), "%.*e", p - 1, v);
            if (strtod(txt, NULL) == v)
                break;
        }
        len = dtoa_shortest(v, out);
        digits = sig_digits(out, len);
        pow2 = (to_bits(v) & 0x000FFFFFFFFFFFFFULL) == 0;
        if (digits > (size_t)p || (digits < (size_t)p && !pow2))
            fail_msg("dtoa(%a) = '%.*s': %zu significant digits, printf needs %d", v, (int)len, out,
                     digits, p);
    }
    print_message("%llu values checked against libdouble-conversion and strtod\n",
                  (unsigned long long)checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spelled_out),     cmocka_unit_test(test_edges),
        cmocka_unit_test(test_few_decimals),    cmocka_unit_test(test_random_bits),
        cmocka_unit_test(test_shortest_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
