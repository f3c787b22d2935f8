/* dtoa_ref.cc - test-only reference for src/query/dtoa.c: libdouble-conversion
 * (Grisu3 with a bignum fallback; V8's shortest formatter) configured to print
 * what Python's repr() prints, as src/query/dtoa_shim.cc did before dtoa.c
 * replaced it. test_dtoa compares both byte for byte. */
#include <cstddef>

#include <double-conversion/double-conversion.h>

using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;

static const DoubleToStringConverter &converter()
{
    /* decimal notation for exponents in [-4, 16); exponent with a sign and at
     * least two digits ("1e+16", "1e-05") */
    static const DoubleToStringConverter conv(
        DoubleToStringConverter::EMIT_POSITIVE_EXPONENT_SIGN |
            DoubleToStringConverter::EMIT_TRAILING_DECIMAL_POINT |
            DoubleToStringConverter::EMIT_TRAILING_ZERO_AFTER_POINT,
        "Infinity", "NaN", 'e', -4, 16, 0, 0, 2);
    return conv;
}

extern "C" size_t dtoa_ref(double v, char *out, size_t cap)
{
    StringBuilder sb(out, (int)cap);
    converter().ToShortest(v, &sb);
    return (size_t)sb.position();
}

extern "C" size_t dtoa_ref_f32(float v, char *out, size_t cap)
{
    StringBuilder sb(out, (int)cap);
    converter().ToShortestSingle(v, &sb);
    return (size_t)sb.position();
}
