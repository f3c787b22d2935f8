/* dtoa_shim.cc - extern "C" wrapper over libdouble-conversion for dtoa.h.
 *
 * Why a library and not a hand-written Ryu/Grisu: shortest round-trip printing is
 * subtle (boundary cases, denormals, the bignum fallback when Grisu3 cannot
 * decide) and double-conversion is the implementation V8 and many databases
 * ship; it is packaged by Debian and libstdc++ is linked anyway through DuckDB.
 * The converter is configured to print what Python's repr() prints (see dtoa.h).
 * A fast path (fast_decimal) handles numbers with few decimals without it.
 * No exception can leave this file: StringBuilder works on our stack buffer and
 * double-conversion does not allocate or throw. */
#include "query/dtoa.h"

#include <double-conversion/double-conversion.h>

using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;

static const DoubleToStringConverter &converter()
{
    /* decimal notation for exponents in [-4, 16), as Python's repr();
     * exponent with an explicit sign and at least two digits ("1e+16", "1e-05") */
    static const DoubleToStringConverter conv(
        DoubleToStringConverter::EMIT_POSITIVE_EXPONENT_SIGN |
            DoubleToStringConverter::EMIT_TRAILING_DECIMAL_POINT |
            DoubleToStringConverter::EMIT_TRAILING_ZERO_AFTER_POINT,
        "Infinity", "NaN", 'e', -4, 16, 0, 0, 2);
    return conv;
}

/* Fast path for the values time series are made of: numbers with few decimals
 * (12.3, 45.67, 1500.0). If v * 10^k rounds to an integer m < 2^53 for the
 * smallest such k <= 8, then m / 10^k (an exact integer over an exact power of
 * ten, so the division is correctly rounded like a parse would be) is checked to
 * give back v: the digits of m with k decimals are then a round-trip string, and
 * the shortest one (a shorter one would have succeeded at a smaller k), and the
 * closest (m is the integer nearest to v * 10^k). Only for 1e-4 <= |v| < 2^53,
 * where Python's repr uses decimal notation. Returns 0 when it does not apply. */
static size_t fast_decimal(double v, char *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double a = v < 0 ? -v : v, p;
    unsigned long long m, ip, fp;
    char tmp[24];
    size_t n = 0, t, k;

    if (!(a >= 1e-4 && a < 9007199254740992.0))
        return 0;
    for (k = 0; k < sizeof(pow10) / sizeof(pow10[0]); k++) {
        p = a * pow10[k];
        if (p >= 9007199254740992.0)
            return 0;
        m = (unsigned long long)p;
        if ((double)m == p && (double)m / pow10[k] == a)
            break;
    }
    if (k == sizeof(pow10) / sizeof(pow10[0]))
        return 0;
    while (k > 0 && m % 10 == 0) { /* 1.50 -> 1.5: same number, fewer digits */
        m /= 10;
        k--;
    }
    if (v < 0)
        out[n++] = '-';
    ip = m;
    fp = 0;
    for (t = 0; t < k; t++)
        ip /= 10;
    fp = m - ip * (unsigned long long)pow10[k];
    t = 0;
    do {
        tmp[t++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (t)
        out[n++] = tmp[--t];
    out[n++] = '.';
    if (k == 0) {
        out[n++] = '0';
        return n;
    }
    for (t = 0; t < k; t++) {
        tmp[t] = (char)('0' + fp % 10);
        fp /= 10;
    }
    while (t)
        out[n++] = tmp[--t];
    return n;
}

extern "C" size_t dtoa_shortest(double v, char *out)
{
    size_t n = fast_decimal(v, out);

    if (n)
        return n;
    StringBuilder sb(out, DTOA_MAX_LEN);
    converter().ToShortest(v, &sb);
    return (size_t)sb.position();
}

extern "C" size_t dtoa_shortest_f32(float v, char *out)
{
    StringBuilder sb(out, DTOA_MAX_LEN);
    converter().ToShortestSingle(v, &sb);
    return (size_t)sb.position();
}
