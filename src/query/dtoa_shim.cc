/* dtoa_shim.cc - extern "C" wrapper over libdouble-conversion for dtoa.h.
 *
 * Why a library and not a hand-written Ryu/Grisu: shortest round-trip printing is
 * subtle (boundary cases, denormals, the bignum fallback when Grisu3 cannot
 * decide) and double-conversion is the implementation V8 and many databases
 * ship; it is packaged by Debian and libstdc++ is linked anyway through DuckDB.
 * The converter is configured to print what Python's repr() prints (see dtoa.h).
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

extern "C" size_t dtoa_shortest(double v, char *out)
{
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
