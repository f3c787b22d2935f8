/* dtoa.c - shortest round-trip formatting of doubles and floats (see dtoa.h).
 *
 * Algorithm: Schubfach (R. Giulietti, "The Schubfach way to render doubles",
 * 2020), written here from the paper's description. A finite v = c * 2^q has a
 * rounding interval R of the reals that parse back to v: (c -+ 1/2) * 2^q, with
 * a lower half-width of 1/4 ulp at the bottom of a binade, end points included
 * when c is even (round-half-even parsing). With k = floor(log10 2^q) the scaled
 * interval R * 10^-k is at least 1 and less than 10 wide, so:
 *   - it holds at most one multiple of 10: if exactly one of the two multiples
 *     of 10 around v * 10^-k lies in R, that one (trailing zeros removed) is the
 *     unique shortest candidate;
 *   - otherwise one of s = floor(v * 10^-k) and s + 1 lies in R (both may): the
 *     one in R, or the closer one (ties to even s) when both are.
 * v * 10^-k and the end points are computed in fixed point with 2 fraction bits
 * plus a sticky bit from a 126-bit approximation g of 10^-k (dtoa_pow10.h,
 * generated exactly by scripts/gen_dtoa_pow10.py); the paper proves that this
 * precision decides every comparison above exactly for every double. Floats use
 * the same code and table (their c has 24 bits instead of 53, so the same proof
 * margin holds with room to spare).
 * Differences from the paper's Java reference: that one prints at least two
 * digits (Java's 4.9E-324); here the shortest string wins ("5e-324", Python's
 * repr), so the multiple-of-10 step runs from s >= 10 on, not from s >= 100, and
 * the tiny-subnormal rescaling is not needed.
 *
 * Output spelling follows Python's repr(): decimal notation for scientific
 * exponents -4..15 with at least one fraction digit ("2.0", "0.0001"), otherwise
 * d[.ddd]e<sign><at least 2 digits> ("1e+16", "1.5e-07").
 *
 * Speed: three 64x128-bit products; the digits scaled to exactly 17 and made 8
 * at a time in a register (SWAR division in lanes); trailing zeros counted from
 * those registers; the layout (point, zeros, exponent) done with shifts and
 * masks on a 128-bit value and written with wide stores that may pass the end
 * of the text (so out needs DTOA_MAX_LEN bytes even for a short answer). Nothing
 * written is read back: a wide load of bytes just stored in pieces stalls on
 * store forwarding, which cost as much as the whole algorithm in an earlier
 * version. Needs unsigned __int128 and an arithmetic right shift of negative
 * integers (GCC, Clang) and a little-endian machine (checked below). */
#include "query/dtoa.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "query/dtoa_pow10.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dtoa.c builds digit strings in little-endian words"
#endif

const char dtoa_digits2[201] = "00010203040506070809"
                                 "10111213141516171819"
                                 "20212223242526272829"
                                 "30313233343536373839"
                                 "40414243444546474849"
                                 "50515253545556575859"
                                 "60616263646566676869"
                                 "70717273747576777879"
                                 "80818283848586878889"
                                 "90919293949596979899";

const uint64_t dtoa_pow10[20] = {1ULL,
                                   10ULL,
                                   100ULL,
                                   1000ULL,
                                   10000ULL,
                                   100000ULL,
                                   1000000ULL,
                                   10000000ULL,
                                   100000000ULL,
                                   1000000000ULL,
                                   10000000000ULL,
                                   100000000000ULL,
                                   1000000000000ULL,
                                   10000000000000ULL,
                                   100000000000000ULL,
                                   1000000000000000ULL,
                                   10000000000000000ULL,
                                   100000000000000000ULL,
                                   1000000000000000000ULL,
                                   10000000000000000000ULL};

/* floor(q * log10(2)), floor(q * log10(2) + log10(3/4)), floor(e * log2(10)):
 * exact over |q|, |e| < 1100 (checked by the generator script). */
static inline int flog10_pow2(int q)
{
    return (int)(((int64_t)q * 661971961083LL) >> 41);
}

static inline int flog10_three_quarters_pow2(int q)
{
    return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}

static inline int flog2_pow10(int e)
{
    return (int)(((int64_t)e * 913124641741LL) >> 38);
}

/* floor(g * cp / 2^127) with its lowest bit set when the division is inexact
 * (round to odd): the sticky bit keeps "exactly on a quarter" apart from "just
 * above it". g = g1 * 2^63 + g0 with g1, g0 < 2^63. */
static inline uint64_t rop(uint64_t g1, uint64_t g0, uint64_t cp)
{
    unsigned __int128 x = (unsigned __int128)g0 * cp, y = (unsigned __int128)g1 * cp;
    uint64_t z = ((uint64_t)y >> 1) + (uint64_t)(x >> 64);
    uint64_t vbp = (uint64_t)(y >> 64) + (z >> 63);
    const uint64_t mask63 = ((uint64_t)1 << 63) - 1;

    return vbp | (((z & mask63) + mask63) >> 63);
}

/* The shortest decimal in the rounding interval of c * 2^q (closest to it among
 * the shortest ones, ties to an even last digit): returns its digits f
 * (1 <= f < 10^17, maybe with trailing zeros) and sets *e so that it is f * 10^e.
 * irregular: c is the smallest significand of a binade above the first (the
 * lower neighbour is only half as far away). */
static uint64_t to_decimal(uint64_t c, int q, bool irregular, int *e)
{
    uint64_t out = c & 1, cb = c << 2, cbr = cb + 2, cbl, g1, g0, vb, vbl, vbr, s, t;
    int k, h;

    if (!irregular) {
        cbl = cb - 2;
        k = flog10_pow2(q);
    } else {
        cbl = cb - 1;
        k = flog10_three_quarters_pow2(q);
    }
    h = q + flog2_pow10(-k) + 2; /* 1..5: cb << h stays below 2^60 */
    g1 = POW10_G[2 * (k - POW10_K_MIN)];
    g0 = POW10_G[2 * (k - POW10_K_MIN) + 1];
    vb = rop(g1, g0, cb << h); /* v * 10^-k in quarters, sticky lowest bit */
    vbl = rop(g1, g0, cbl << h);
    vbr = rop(g1, g0, cbr << h);
    s = vb >> 2;
    *e = k;
    if (s >= 10) {
        /* one digit fewer: a multiple of 10 in the interval (at most one is) */
        uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
        bool upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;

        if (upin != wpin)
            return upin ? sp10 : tp10;
    }
    t = s + 1;
    {
        bool uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;
        int64_t cmp;

        if (uin != win)
            return uin ? s : t;
        cmp = (int64_t)(vb - ((s + t) << 1)); /* v vs the midpoint of s and t */
        return cmp < 0 || (cmp == 0 && (s & 1) == 0) ? s : t;
    }
}

static inline void put2(char *p, uint32_t v)
{
    memcpy(p, dtoa_digits2 + 2 * v, 2);
}

/* v < 10^8 as 8 ASCII digits in one word, the first digit in the lowest byte
 * (the order of memory on a little-endian machine). Divisions by 10^4, 10^2 and
 * 10 run in parallel lanes of 32, 16 and 8 bits (multiply-shift, exact for the
 * lane ranges: v < 10^8, lane < 10^4, lane < 10^2). */
static inline uint64_t digits8(uint32_t v)
{
    uint64_t x = v, hi = (x * 109951163) >> 40;               /* v / 10^4 */
    uint64_t m = hi | ((x - hi * 10000) << 32);               /* lanes: first 4 digits, last 4 */
    uint64_t t = ((m * 10486) >> 20) & 0x0000007F0000007FULL; /* lane / 100 */
    uint64_t r = t | ((m - t * 100) << 16);
    uint64_t u = ((r * 103) >> 10) & 0x000F000F000F000FULL; /* lane / 10 */

    return (u | ((r - u * 10) << 8)) + 0x3030303030303030ULL;
}

/* Number of decimal digits of f (1 <= f < 10^19). */
static inline int dec_len(uint64_t f)
{
    int n = ((64 - __builtin_clzll(f)) * 1233) >> 12; /* log10 of the bit length, +-1 */

    return n + (f >= dtoa_pow10[n]);
}

/* Lay out f * 10^e (1 <= f < 10^17), negative if neg, in Python's spelling at
 * out (DTOA_MAX_LEN bytes: all of them may be written). Returns the length.
 * The 17 digits (f scaled to exactly 17, so that its trailing zeros are the
 * ones to drop) are made in registers and written with wide stores only: no
 * byte written here is read back, which would stall on store forwarding. */
static size_t format(char *out, bool neg, uint64_t f, int e)
{
    const uint64_t zeros8 = 0x3030303030303030ULL; /* "00000000" */
    uint64_t hi, lo, c0, w1, w2, w0, wb, d16;
    unsigned __int128 a, o;
    int n0, n, tz, x, m;
    char *p = out + neg, *q;

    *out = '-'; /* overwritten when !neg */
    /* to_decimal's digits of a normal double have 16 or 17 digits: no log there */
    if (f >= 10000000000000000ULL) {
        n0 = 17;
    } else if (f >= 1000000000000000ULL) {
        n0 = 16;
        f *= 10;
    } else {
        n0 = dec_len(f);
        f *= dtoa_pow10[17 - n0];
    }
    hi = f / 100000000; /* 9 digits */
    lo = f % 100000000;
    c0 = f / 10000000000000000ULL; /* first digit, in parallel with hi */
    w1 = digits8((uint32_t)(hi - c0 * 100000000));
    w2 = digits8((uint32_t)lo);
    /* trailing '0' digits are the high bytes equal to '0' */
    if (w2 != zeros8)
        tz = __builtin_clzll(w2 ^ zeros8) >> 3;
    else
        tz = 8 + (w1 != zeros8 ? __builtin_clzll(w1 ^ zeros8) >> 3 : 8);
    n = 17 - tz;    /* significant digits */
    x = e + n0 - 1; /* scientific exponent: v = d0.d1...d(n-1) * 10^x */
    /* digits 0..15 in a, digit 16 in d16 */
    w0 = ('0' + c0) | (w1 << 8);
    wb = (w1 >> 56) | (w2 << 8);
    d16 = w2 >> 56;
    a = (unsigned __int128)w0 | ((unsigned __int128)wb << 64);
    if (x >= 0 && x < 16) {
        m = x + 1;    /* integer digits */
        if (n <= m) { /* integral: digits and zeros (all in a), ".0" */
            memcpy(p, &a, 16);
            memcpy(p + m, ".0", 2);
            return (size_t)(neg + m + 2);
        }
        if (m == 16) {
            memcpy(p, &a, 16);
            p[16] = '.';
            p[17] = (char)d16;
        } else { /* digits 0..m-1, '.', digits m.. one byte up */
            unsigned __int128 low = ((unsigned __int128)1 << (8 * m)) - 1;
            o = (a & low) | ((unsigned __int128)'.' << (8 * m)) |
                ((a << 8) & ~(low | ((unsigned __int128)0xFF << (8 * m))));
            memcpy(p, &o, 16);
            w0 = (wb >> 56) | (d16 << 8); /* output bytes 16, 17: digits 15, 16 */
            memcpy(p + 16, &w0, 2);
        }
        return (size_t)(neg + n + 1);
    }
    if (x < 0 && x >= -4) { /* "0." and -x-1 zeros, then the digits */
        memcpy(p, "0.000000", 8);
        q = p + 1 - x;
        memcpy(q, &a, 16);
        q[16] = (char)d16;
        return (size_t)(neg + n + 1 - x);
    }
    /* d[.ddd]e+XX */
    p[0] = (char)w0;
    p[1] = '.';
    o = (a >> 8) | ((unsigned __int128)d16 << 120); /* digits 1..16 */
    memcpy(p + 2, &o, 16);
    q = n > 1 ? p + 1 + n : p + 1; /* one digit: no point */
    {
        uint32_t ax = (uint32_t)(x < 0 ? -x : x);

        q[0] = 'e';
        q[1] = x < 0 ? '-' : '+';
        q += 2;
        if (ax >= 100) {
            *q++ = (char)('0' + ax / 100);
            ax %= 100;
        }
        put2(q, ax);
        return (size_t)(q + 2 - out);
    }
}

/* NaN and infinities, as dtoa.h promises them. */
static size_t special(char *out, bool neg, bool nan)
{
    if (nan) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (neg) {
        memcpy(out, "-Infinity", 9);
        return 9;
    }
    memcpy(out, "Infinity", 8);
    return 8;
}

static size_t zero(char *out, bool neg)
{
    if (neg) {
        memcpy(out, "-0.0", 4);
        return 4;
    }
    memcpy(out, "0.0", 3);
    return 3;
}

size_t dtoa_shortest(double v, char *out)
{
    uint64_t bits, t, c, f;
    int be, q, e;
    bool neg;

    memcpy(&bits, &v, 8);
    neg = bits >> 63;
    be = (int)(bits >> 52) & 0x7ff;
    t = bits & (((uint64_t)1 << 52) - 1);
    if (be == 0x7ff)
        return special(out, neg, t != 0);
    if (be == 0) {
        if (t == 0)
            return zero(out, neg);
        f = to_decimal(t, -1074, false, &e); /* subnormal */
        return format(out, neg, f, e);
    }
    c = t | ((uint64_t)1 << 52);
    q = be - 1075;
    /* integers below 2^53: their digits are the shortest, exact answer */
    if (q < 0 && q > -53 && (c & (((uint64_t)1 << -q) - 1)) == 0)
        return format(out, neg, c >> -q, 0);
    f = to_decimal(c, q, t == 0 && be > 1, &e);
    return format(out, neg, f, e);
}

size_t dtoa_shortest_f32(float v, char *out)
{
    uint32_t bits, t, c;
    uint64_t f;
    int be, q, e;
    bool neg;

    memcpy(&bits, &v, 4);
    neg = bits >> 31;
    be = (int)(bits >> 23) & 0xff;
    t = bits & ((1u << 23) - 1);
    if (be == 0xff)
        return special(out, neg, t != 0);
    if (be == 0) {
        if (t == 0)
            return zero(out, neg);
        f = to_decimal(t, -149, false, &e);
        return format(out, neg, f, e);
    }
    c = t | (1u << 23);
    q = be - 150;
    if (q < 0 && q > -24 && (c & ((1u << -q) - 1)) == 0)
        return format(out, neg, c >> -q, 0);
    f = to_decimal(c, q, t == 0 && be > 1, &e);
    return format(out, neg, f, e);
}
