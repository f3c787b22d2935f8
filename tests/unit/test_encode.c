/* test_encode.c - query result encoders: exact JSON / NDJSON / CSV text for a
 * result with every type, NULLs, NaN/Inf, UBIGINT max, pre-1970 and infinite
 * timestamps, unicode and quote/newline strings; shortest doubles; Arrow IPC and
 * MessagePack read back by pyarrow / python-msgpack (skipped when the project's
 * .venv is missing); multiple Arrow batches; 1 M rows; fd sinks (same bytes as
 * the buffer sink, EPIPE -> ERR_IO); caps -> ERR_LIMIT. Results come from real
 * SQL on the sandboxed DuckDB query instance. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "duck/duck.h"
#include "query/dtoa.h"
#include "query/encode.h"
#include "query/encode_int.h" /* the shared text formatters, tested directly */

#ifndef ARC_PYTHON
#define ARC_PYTHON "python3"
#endif

/* 2026-08-22T14:00:00Z, so envelopes are reproducible */
#define TS_FIXED 1787407200000000LL

struct fix {
    char dir[64];
    struct duck *d;
};

static struct fix *F;

static int setup(void **state)
{
    struct duck_opts o = {0};
    struct errbuf eb;

    F = xcalloc(1, sizeof(*F));
    errbuf_init(&eb);
    snprintf(F->dir, sizeof(F->dir), "/tmp/arc_enc_XXXXXX");
    assert_non_null(mkdtemp(F->dir));
    o.data_dir = F->dir;
    o.memory_limit_bytes = 1ull << 30;
    o.query_threads = 2;
    if (duck_open(&o, &F->d, &eb) != ERR_OK)
        fail_msg("duck_open: %s", eb.msg);
    signal(SIGPIPE, SIG_IGN); /* as the server does: EPIPE must come back as ERR_IO */
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    duck_close(F->d);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F->dir);
    assert_int_equal(system(cmd), 0);
    free(F);
    return 0;
}

/* Run sql and encode its whole result in format f to sink; returns the first
 * failing code (message in eb) or ERR_OK. *rows_out gets enc_rows(). */
static enum err encode_sql_sink(enum enc_format f, const char *sql, const struct enc_sink *sink,
                                const struct enc_opts *o, struct errbuf *eb, uint64_t *rows_out,
                                uint64_t *unsupported_out)
{
    struct enc_summary sum = {12.5, TS_FIXED};
    struct duck_result *r = NULL;
    struct duck_chunk *c;
    struct encoder *e;
    enum err rc;

    errbuf_init(eb);
    if (duck_query_exec(F->d, sql, &r, eb) != ERR_OK)
        fail_msg("%s: %s", sql, eb->msg);
    e = enc_new(f, sink, r, o);
    rc = enc_begin(e, eb);
    while (!rc) {
        rc = duck_result_next_chunk(r, &c, eb);
        if (rc || !c)
            break;
        rc = enc_chunk(e, c, eb);
    }
    if (!rc)
        rc = enc_end(e, &sum, eb);
    if (rows_out)
        *rows_out = enc_rows(e);
    if (unsupported_out)
        *unsupported_out = enc_unsupported_values(e);
    if (rc) { /* once failed, the encoder refuses further calls */
        struct errbuf eb2;
        errbuf_init(&eb2);
        assert_int_equal(enc_end(e, &sum, &eb2), ERR_INVAL);
        assert_non_null(strstr(eb2.msg, "already failed"));
    }
    enc_free(e);
    duck_result_free(r);
    return rc;
}

/* Encode into a fresh buffer; returns its text (caller frees). */
static char *encode_sql(enum enc_format f, const char *sql, size_t *len_out)
{
    struct enc_sink sink;
    struct errbuf eb;
    struct buf b;

    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    if (encode_sql_sink(f, sql, &sink, NULL, &eb, NULL, NULL) != ERR_OK)
        fail_msg("encode %s: %s", sql, eb.msg);
    return buf_steal(&b, len_out);
}

/* Every type, 4 rows: values, all NULL, minimums / NaN / -Inf / pre-1970,
 * maximums / Inf / infinities / odd years. Values cast from VARCHAR so that each
 * column has exactly the type named. */
static const char ALL_TYPES_SQL[] =
    "SELECT b::BOOLEAN AS b, i8::TINYINT AS i8, i16::SMALLINT AS i16, i32::INTEGER AS i32,"
    " i64::BIGINT AS i64, u8::UTINYINT AS u8, u16::USMALLINT AS u16, u32::UINTEGER AS u32,"
    " u64::UBIGINT AS u64, f32::FLOAT AS f32, f64::DOUBLE AS f64, s::VARCHAR AS s,"
    " bl::BLOB AS bl, d::DATE AS d, tm::TIME AS tm, ts::TIMESTAMP AS ts,"
    " tstz::TIMESTAMPTZ AS tstz, ts_s::TIMESTAMP_S AS ts_s, ts_ms::TIMESTAMP_MS AS ts_ms,"
    " ts_ns::TIMESTAMP_NS AS ts_ns FROM (VALUES"
    " (1, 'true', '-5', '300', '-70000', '9223372036854775807', '200', '60000', '4000000000',"
    "  '18446744073709551615', '1.5', '12.3', 'h1', '\\xAA\\x01z', '2026-08-22',"
    "  '14:00:00.123456', '2026-08-22 14:00:00.123456', '2026-08-22 14:00:00.5+02',"
    "  '2026-08-22 14:00:01', '2026-08-22 14:00:00.123', '2026-08-22 14:00:00.123456789'),"
    " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL),"
    " (3, 'false', '-128', '-32768', '-2147483648', '-9223372036854775808', '0', '0', '0', '0',"
    "  'nan', '-inf', 'say \"hi\",\nbye', '', '1900-01-01', '00:00:00',"
    "  '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', '1960-01-01 00:00:00',"
    "  '1969-12-31 23:59:59.999', '1969-12-31 23:59:59.999999999'),"
    " (4, 'true', '127', '32767', '2147483647', '0', '255', '65535', '4294967295', '1', '0.1',"
    "  'inf', 'h\xc3\xa9llo \xe2\x9c\x93 \\ back\t', 'a\"b,c', '-infinity', '23:59:59.999999',"
    "  'infinity', '0001-01-01 00:00:00+00', '10000-01-01 00:00:00', '0002-01-01 (BC)', NULL)"
    ") t(k, b, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, s, bl, d, tm, ts, tstz, ts_s,"
    " ts_ms, ts_ns) ORDER BY k";

#define ALL_COLS                                                                            \
    "\"b\",\"i8\",\"i16\",\"i32\",\"i64\",\"u8\",\"u16\",\"u32\",\"u64\",\"f32\",\"f64\","  \
    "\"s\",\"bl\",\"d\",\"tm\",\"ts\",\"tstz\",\"ts_s\",\"ts_ms\",\"ts_ns\""

static const char *ROW1[] = {
    "true", "-5", "300", "-70000", "9223372036854775807", "200", "60000", "4000000000",
    "\"18446744073709551615\"", "1.5", "12.3", "\"h1\"", "\"\\\\xAA\\\\x01z\"",
    "\"2026-08-22\"", "\"14:00:00.123456\"", "\"2026-08-22T14:00:00.123456Z\"",
    "\"2026-08-22T12:00:00.500000Z\"", "\"2026-08-22T14:00:01.000000Z\"",
    "\"2026-08-22T14:00:00.123000Z\"", "\"2026-08-22T14:00:00.123456Z\""};
static const char *ROW3[] = {
    "false", "-128", "-32768", "-2147483648", "-9223372036854775808", "0", "0", "0", "\"0\"",
    "null", "null", "\"say \\\"hi\\\",\\nbye\"", "\"\"", "\"1900-01-01\"",
    "\"00:00:00.000000\"", "\"1969-12-31T23:59:59.999999Z\"",
    "\"1969-12-31T23:59:59.999999Z\"", "\"1960-01-01T00:00:00.000000Z\"",
    "\"1969-12-31T23:59:59.999000Z\"", "\"1969-12-31T23:59:59.999999Z\""};
static const char *ROW4[] = {
    "true", "127", "32767", "2147483647", "0", "255", "65535", "4294967295", "\"1\"", "0.1",
    "null", "\"h\xc3\xa9llo \xe2\x9c\x93 \\\\ back\\t\"", "\"a\\\"b,c\"", "\"-infinity\"",
    "\"23:59:59.999999\"", "\"infinity\"", "\"0001-01-01T00:00:00.000000Z\"",
    "\"+10000-01-01T00:00:00.000000Z\"", "\"-0001-01-01T00:00:00.000000Z\"", "null"};
static const char *NAMES[] = {"b",   "i8", "i16", "i32", "i64", "u8",   "u16",
                              "u32", "u64", "f32", "f64", "s",  "bl",   "d",
                              "tm",  "ts",  "tstz", "ts_s", "ts_ms", "ts_ns"};
#define NCOL 20

static void row_json(struct buf *b, const char **vals)
{
    size_t i;

    buf_append_char(b, '[');
    for (i = 0; i < NCOL; i++) {
        if (i)
            buf_append_char(b, ',');
        buf_append_str(b, vals ? vals[i] : "null");
    }
    buf_append_char(b, ']');
}

static void test_json_all_types(void **state)
{
    struct buf want;
    char *got;

    (void)state;
    buf_init(&want, 0);
    buf_append_str(&want, "{\"success\":true,\"columns\":[" ALL_COLS "],\"data\":[");
    row_json(&want, ROW1);
    buf_append_char(&want, ',');
    row_json(&want, NULL);
    buf_append_char(&want, ',');
    row_json(&want, ROW3);
    buf_append_char(&want, ',');
    row_json(&want, ROW4);
    buf_append_str(&want, "],\"row_count\":4,\"execution_time_ms\":12.5,"
                          "\"timestamp\":\"2026-08-22T14:00:00.000000Z\"}");
    got = encode_sql(ENC_JSON, ALL_TYPES_SQL, NULL);
    assert_string_equal(got, want.data);
    free(got);
    buf_release(&want);
}

static void test_ndjson_all_types(void **state)
{
    const char **rows[4] = {ROW1, NULL, ROW3, ROW4};
    struct buf want;
    size_t r, i;
    char *got;

    (void)state;
    buf_init(&want, 0);
    for (r = 0; r < 4; r++) {
        for (i = 0; i < NCOL; i++)
            buf_printf(&want, "%c\"%s\":%s", i ? ',' : '{', NAMES[i],
                       rows[r] ? rows[r][i] : "null");
        buf_append_str(&want, "}\n");
    }
    got = encode_sql(ENC_NDJSON, ALL_TYPES_SQL, NULL);
    assert_string_equal(got, want.data);
    free(got);
    buf_release(&want);
}

static void test_csv_all_types(void **state)
{
    static const char want[] =
        "b,i8,i16,i32,i64,u8,u16,u32,u64,f32,f64,s,bl,d,tm,ts,tstz,ts_s,ts_ms,ts_ns\n"
        "true,-5,300,-70000,9223372036854775807,200,60000,4000000000,18446744073709551615,"
        "1.5,12.3,h1,\\xAA\\x01z,2026-08-22,14:00:00.123456,2026-08-22T14:00:00.123456Z,"
        "2026-08-22T12:00:00.500000Z,2026-08-22T14:00:01.000000Z,2026-08-22T14:00:00.123000Z,"
        "2026-08-22T14:00:00.123456Z\n"
        ",,,,,,,,,,,,,,,,,,,\n"
        "false,-128,-32768,-2147483648,-9223372036854775808,0,0,0,0,NaN,-Infinity,"
        "\"say \"\"hi\"\",\nbye\",,1900-01-01,00:00:00.000000,1969-12-31T23:59:59.999999Z,"
        "1969-12-31T23:59:59.999999Z,1960-01-01T00:00:00.000000Z,1969-12-31T23:59:59.999000Z,"
        "1969-12-31T23:59:59.999999Z\n"
        "true,127,32767,2147483647,0,255,65535,4294967295,1,0.1,Infinity,"
        "h\xc3\xa9llo \xe2\x9c\x93 \\ back\t,\"a\"\"b,c\",-infinity,23:59:59.999999,infinity,"
        "0001-01-01T00:00:00.000000Z,+10000-01-01T00:00:00.000000Z,"
        "-0001-01-01T00:00:00.000000Z,\n";
    struct enc_opts o = {.csv_no_header = true};
    struct enc_sink sink;
    struct errbuf eb;
    struct buf b;
    char *got;

    (void)state;
    got = encode_sql(ENC_CSV, ALL_TYPES_SQL, NULL);
    assert_string_equal(got, want);
    free(got);

    /* without the header; names needing quotes are quoted in the header */
    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    assert_int_equal(encode_sql_sink(ENC_CSV, "SELECT 1 AS \"a,b\", 2 AS \"q\"\"x\"", &sink,
                                     &o, &eb, NULL, NULL),
                     ERR_OK);
    assert_string_equal(b.data, "1,2\n");
    buf_reset(&b);
    assert_int_equal(encode_sql_sink(ENC_CSV, "SELECT 1 AS \"a,b\", 2 AS \"q\"\"x\"", &sink,
                                     NULL, &eb, NULL, NULL),
                     ERR_OK);
    assert_string_equal(b.data, "\"a,b\",\"q\"\"x\"\n1,2\n");
    buf_release(&b);
}

/* Shortest round-trip doubles, spelled as Python's repr() / json.dumps. */
static void test_doubles(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {12.3, "12.3"},
        {2.0, "2.0"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e300, "1e+300"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {123456789012345680.0, "1.2345678901234568e+17"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {1.5e-7, "1.5e-07"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-2.2250738585072014e-308, "-2.2250738585072014e-308"},
    };
    char out[DTOA_MAX_LEN];
    size_t i, n;
    char *got;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = dtoa_shortest(cases[i].v, out);
        if (n != strlen(cases[i].want) || memcmp(out, cases[i].want, n) != 0)
            fail_msg("dtoa(%.17g) = '%.*s', want '%s'", cases[i].v, (int)n, out,
                     cases[i].want);
    }
    n = dtoa_shortest_f32(0.1f, out);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "0.1", 3);

    /* and through the JSON encoder, including a very long column name escape */
    got = encode_sql(ENC_JSON,
                     "SELECT v AS \"we\"\"ird\\\" FROM (VALUES (12.3::DOUBLE), (1e300),"
                     " (2.0), (-0.0::DOUBLE), ('nan'::DOUBLE)) t(v)",
                     NULL);
    assert_string_equal(got, "{\"success\":true,\"columns\":[\"we\\\"ird\\\\\"],\"data\":"
                             "[[12.3],[1e+300],[2.0],[-0.0],[null]],\"row_count\":5,"
                             "\"execution_time_ms\":12.5,"
                             "\"timestamp\":\"2026-08-22T14:00:00.000000Z\"}");
    free(got);
}

static void test_empty_result(void **state)
{
    char *got;

    (void)state;
    got = encode_sql(ENC_JSON, "SELECT 1 AS a WHERE false", NULL);
    assert_string_equal(got, "{\"success\":true,\"columns\":[\"a\"],\"data\":[],"
                             "\"row_count\":0,\"execution_time_ms\":12.5,"
                             "\"timestamp\":\"2026-08-22T14:00:00.000000Z\"}");
    free(got);
    got = encode_sql(ENC_CSV, "SELECT 1 AS a WHERE false", NULL);
    assert_string_equal(got, "a\n");
    free(got);
    got = encode_sql(ENC_NDJSON, "SELECT 1 AS a WHERE false", NULL);
    assert_string_equal(got, "");
    free(got);
}

/* DECIMAL is DUCK_T_OTHER inside DuckDB; the duck module casts such columns to
 * VARCHAR, so they reach the encoders as DuckDB prints them and nothing is
 * counted as unsupported (the OTHER -> null path is defensive only). */
static void test_decimal_as_text(void **state)
{
    struct enc_sink sink;
    uint64_t unsup = 7;
    struct errbuf eb;
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    assert_int_equal(encode_sql_sink(ENC_JSON,
                                     "SELECT x::DECIMAL(4,2) AS x FROM (VALUES (1.5), (NULL),"
                                     " (-2.25)) t(x)",
                                     &sink, NULL, &eb, NULL, &unsup),
                     ERR_OK);
    assert_int_equal(unsup, 0);
    assert_non_null(strstr(b.data, "\"data\":[[\"1.50\"],[null],[\"-2.25\"]]"));
    buf_release(&b);
}

/* ---- the shared text formatters (white box: query/encode_int.h) ---- */

static uint64_t trng_state = 0x853C49E6748FEA9BULL;

static uint64_t trng(void)
{
    trng_state ^= trng_state >> 12;
    trng_state ^= trng_state << 25;
    trng_state ^= trng_state >> 27;
    return trng_state * 0x2545F4914F6CDD1DULL;
}

/* A random byte string made of pieces that matter to JSON and CSV: plain ASCII
 * runs, quotes, backslashes, commas, CR/LF, other controls, DEL, valid UTF-8 of
 * every length, and broken UTF-8 (stray continuations, overlongs, surrogates,
 * beyond U+10FFFF, sequences cut short). */
static size_t random_text(unsigned char *s, size_t cap)
{
    static const char *pieces[] = {
        "a", "host42", "abcdefghijklmnop", "\"", "\\", ",", "\r", "\n", "\t", "\x01", "\x1f",
        "\x7f", " ", "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80", "\x80", "\xbf", "\xc0\xaf",
        "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xc3",
        "\xe2\x9c", "\xf0\x9f\x98", "\xff", "0123456789"};
    size_t n = 0, want = trng() % 48, k;

    while (n < want) {
        const char *pc = pieces[trng() % (sizeof(pieces) / sizeof(pieces[0]))];
        k = strlen(pc);
        if (n + k > cap)
            break;
        memcpy(s + n, pc, k);
        n += k;
    }
    return n;
}

/* enc_fmt_json_str (8-byte runs, tail tricks) writes what buf_append_json_str
 * writes, never past 6n + 2; enc_is_plain_json agrees with a byte loop; CSV
 * quoting matches a plain reference; integers match printf. */
static void test_text_formatters(void **state)
{
    static const uint64_t ints[] = {0,
                                    1,
                                    9,
                                    10,
                                    99,
                                    100,
                                    999,
                                    1000,
                                    4294967295ULL,
                                    4294967296ULL,
                                    9999999999ULL,
                                    10000000000ULL,
                                    9223372036854775807ULL,
                                    9223372036854775808ULL,
                                    10000000000000000000ULL,
                                    18446744073709551615ULL};
    unsigned char in[128];
    char out[6 * 128 + 2 + 16], want[64], *end;
    struct buf ref;
    size_t i, n, k, len;
    int round;

    (void)state;
    buf_init(&ref, 0);
    for (round = 0; round < 200000; round++) {
        bool plain = true, special = false;

        n = random_text(in, sizeof(in));
        buf_reset(&ref);
        assert_int_equal(buf_append_json_str(&ref, (const char *)in, n), ERR_OK);
        memset(out, 0x5A, sizeof(out));
        end = enc_fmt_json_str(out, (const char *)in, n);
        len = (size_t)(end - out);
        for (k = 6 * n + 2; k < sizeof(out); k++)
            if (out[k] != 0x5A)
                fail_msg("enc_fmt_json_str wrote past 6n + 2 (n = %zu)", n);
        if (len != ref.len || memcmp(out, ref.data, len) != 0)
            fail_msg("enc_fmt_json_str('%.*s') = '%.*s', buf_append_json_str '%s'", (int)n,
                     (const char *)in, (int)len, out, ref.data);
        for (i = 0; i < n; i++) {
            plain &= in[i] >= 0x20 && in[i] < 0x80 && in[i] != '"' && in[i] != '\\';
            special |= in[i] == ',' || in[i] == '"' || in[i] == '\r' || in[i] == '\n';
        }
        assert_int_equal(enc_is_plain_json((const char *)in, n), plain);
        assert_int_equal(enc_csv_needs_quotes((const char *)in, n), special);
        /* CSV: quoted with doubled quotes exactly when special */
        buf_reset(&ref);
        if (special)
            buf_append_char(&ref, '"');
        for (i = 0; i < n; i++) {
            if (special && in[i] == '"')
                buf_append_char(&ref, '"');
            buf_append_char(&ref, (char)in[i]);
        }
        if (special)
            buf_append_char(&ref, '"');
        end = enc_fmt_csv_field(out, (const char *)in, n);
        len = (size_t)(end - out);
        assert_true(len <= 2 * n + 2);
        if (len != ref.len || memcmp(out, ref.data, len) != 0)
            fail_msg("enc_fmt_csv_field('%.*s') = '%.*s', want '%s'", (int)n, (const char *)in,
                     (int)len, out, ref.data);
    }
    buf_release(&ref);
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        for (k = 0; k < 3; k++) { /* v - 1, v, v + 1 */
            uint64_t v = ints[i] + k - 1;
            int64_t sv = (int64_t)v;

            end = enc_fmt_u64(out, v);
            snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
            assert_int_equal((size_t)(end - out), strlen(want));
            assert_memory_equal(out, want, strlen(want));
            end = enc_fmt_i64(out, sv);
            snprintf(want, sizeof(want), "%lld", (long long)sv);
            assert_int_equal((size_t)(end - out), strlen(want));
            assert_memory_equal(out, want, strlen(want));
        }
    }
}

/* Reference: raw timestamp value in units per second (10^k), floored, via gmtime. */
static void ts_ref(char *out, size_t cap, int64_t raw, int64_t unit)
{
    int64_t secs = raw / unit, frac = raw % unit;
    struct tm tm;
    time_t t;

    if (frac < 0) {
        frac += unit;
        secs--;
    }
    t = (time_t)secs;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(unit >= 1000000 ? frac / (unit / 1000000) : frac * (1000000 / unit)));
}

/* The per-second prefix cache of enc_fmt_ts: runs of rows within a second, steps
 * across second, minute and day boundaries, jumps back and forth, pre-1970
 * values, in every timestamp unit; each value checked against gmtime. */
static void test_timestamp_seconds(void **state)
{
    struct buf sql;
    char *got, *line, *next, want[64];
    const char *f[8];
    int64_t r = 0, raw;
    size_t rows = 0, i;
    int k;

    (void)state;
    buf_init(&sql, 0);
    buf_append_str(&sql, "SELECT us, us::TIMESTAMP_MS AS ms, epoch_ms(us::TIMESTAMP_MS) AS raw_ms,"
                         " us::TIMESTAMP_S AS s, epoch_ms(us::TIMESTAMP_S) AS raw_s,"
                         " us::TIMESTAMP_NS AS ns, epoch_ns(us::TIMESTAMP_NS) AS raw_ns,"
                         " epoch_us(us) AS raw_us FROM (SELECT make_timestamp(unnest([");
    for (k = 0; k < 4000; k++) {
        uint64_t x = trng();
        char num[32];

        if (k % 500 == 0) /* a new base between 1950 and 2050, sometimes right at 0 */
            r = k == 1000 ? -3000000 : (int64_t)(x % 3155760000ULL) * 1000000 - 631152000000000LL;
        else if (x % 50 == 0) /* a jump back */
            r -= (int64_t)(x >> 8) % 5000000;
        else
            r += (int64_t)((x >> 8) % 400000); /* < 0.4 s: runs within a second */
        if (k % 700 == 0) /* an exact day boundary */
            r -= r % 86400000000LL;
        snprintf(num, sizeof(num), "%s%lld", k ? "," : "", (long long)r);
        buf_append_str(&sql, num);
    }
    buf_append_str(&sql, "])) AS us)");
    got = encode_sql(ENC_CSV, sql.data, NULL);
    line = strchr(got, '\n') + 1; /* after the header */
    for (; *line; line = next + 1) {
        next = strchr(line, '\n');
        assert_non_null(next);
        *next = '\0';
        f[0] = line;
        for (i = 1; i < 8; i++) {
            char *c = strchr(f[i - 1], ',');
            assert_non_null(c);
            *c = '\0';
            f[i] = c + 1;
        }
        raw = strtoll(f[7], NULL, 10);
        ts_ref(want, sizeof(want), raw, 1000000);
        assert_string_equal(f[0], want);
        ts_ref(want, sizeof(want), strtoll(f[2], NULL, 10), 1000);
        assert_string_equal(f[1], want);
        ts_ref(want, sizeof(want), strtoll(f[4], NULL, 10), 1000);
        assert_string_equal(f[3], want);
        ts_ref(want, sizeof(want), strtoll(f[6], NULL, 10), 1000000000);
        assert_string_equal(f[5], want);
        rows++;
    }
    assert_int_equal(rows, 4000);
    free(got);
    buf_release(&sql);
}

/* ---- Python read-back ---- */

static bool have_python(const char *module)
{
    char cmd[512];

    if (access(ARC_PYTHON, X_OK) != 0)
        return false;
    snprintf(cmd, sizeof(cmd), "%s -c 'import %s' 2>/dev/null", ARC_PYTHON, module);
    return system(cmd) == 0;
}

/* Write data to a temp file, run script (python source) with the file as argv[1];
 * the script exits non-zero with a message on any mismatch. */
static void run_python(const char *script, const char *data, size_t len)
{
    char dpath[] = "/tmp/arc_enc_data_XXXXXX", spath[] = "/tmp/arc_enc_py_XXXXXX";
    char cmd[512];
    int fd;

    fd = mkstemp(dpath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    fd = mkstemp(spath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s %s %s", ARC_PYTHON, spath, dpath);
    if (system(cmd) != 0)
        fail_msg("python check failed: %s (data kept in %s)", cmd, dpath);
    unlink(dpath);
    unlink(spath);
}

static const char PY_ARROW_ALL[] =
    "import sys, math, datetime as dt\n"
    "import pyarrow as pa, pyarrow.ipc as ipc\n"
    "r = ipc.open_stream(open(sys.argv[1], 'rb').read())\n"
    "t = r.read_all()\n"
    "def us(*a):\n"
    "    d = dt.datetime(*a, tzinfo=dt.timezone.utc) - dt.datetime(1970,1,1,tzinfo=dt.timezone.utc)\n"
    "    return d // dt.timedelta(microseconds=1)\n"
    "exp_types = {'b': pa.bool_(), 'i8': pa.int8(), 'i16': pa.int16(), 'i32': pa.int32(),\n"
    "  'i64': pa.int64(), 'u8': pa.uint8(), 'u16': pa.uint16(), 'u32': pa.uint32(),\n"
    "  'u64': pa.uint64(), 'f32': pa.float32(), 'f64': pa.float64(), 's': pa.string(),\n"
    "  'bl': pa.binary(), 'd': pa.date32(), 'tm': pa.time64('us'),\n"
    "  'ts': pa.timestamp('us', 'UTC'), 'tstz': pa.timestamp('us', 'UTC'),\n"
    "  'ts_s': pa.timestamp('s', 'UTC'), 'ts_ms': pa.timestamp('ms', 'UTC'),\n"
    "  'ts_ns': pa.timestamp('ns', 'UTC')}\n"
    "assert t.schema.names == list(exp_types), t.schema.names\n"
    "for n, ty in exp_types.items():\n"
    "    assert t.schema.field(n).type == ty, (n, t.schema.field(n).type)\n"
    "    assert t.schema.field(n).nullable\n"
    "assert t.num_rows == 4\n"
    "I64MAX = 2**63 - 1\n"
    "exp = {\n"
    " 'b': [True, None, False, True], 'i8': [-5, None, -128, 127],\n"
    " 'i16': [300, None, -32768, 32767], 'i32': [-70000, None, -2**31, 2**31 - 1],\n"
    " 'i64': [I64MAX, None, -2**63, 0], 'u8': [200, None, 0, 255],\n"
    " 'u16': [60000, None, 0, 65535], 'u32': [4000000000, None, 0, 4294967295],\n"
    " 'u64': [2**64 - 1, None, 0, 1],\n"
    " 's': ['h1', None, 'say \"hi\",\\nbye', 'h\\u00e9llo \\u2713 \\\\ back\\t'],\n"
    " 'bl': [b'\\xaa\\x01z', None, b'', b'a\"b,c'],\n"
    "}\n"
    "for n, v in exp.items():\n"
    "    got = t.column(n).to_pylist()\n"
    "    assert got == v, (n, got, v)\n"
    "f32 = t.column('f32').to_pylist()\n"
    "assert f32[0] == 1.5 and f32[1] is None and math.isnan(f32[2]), f32\n"
    "assert abs(f32[3] - 0.1) < 1e-7, f32\n"
    "assert t.column('f64').to_pylist() == [12.3, None, -math.inf, math.inf]\n"
    "raw = lambda n, ty: t.column(n).cast(ty).to_pylist()\n"
    "assert raw('d', pa.int32()) == [20687, None, -25567, -(2**31 - 1)], raw('d', pa.int32())\n"
    "assert raw('tm', pa.int64()) == [50400123456, None, 0, 86399999999], raw('tm', pa.int64())\n"
    "assert raw('ts', pa.int64()) == [us(2026,8,22,14,0,0,123456), None, -1, I64MAX]\n"
    "assert raw('tstz', pa.int64()) == [us(2026,8,22,12,0,0,500000), None, -1, us(1,1,1)]\n"
    "assert raw('ts_s', pa.int64())[:3] == [us(2026,8,22,14,0,1)//10**6, None, us(1960,1,1)//10**6]\n"
    "assert raw('ts_ms', pa.int64())[:3] == [us(2026,8,22,14,0,0,123000)//1000, None, -1]\n"
    "assert raw('ts_ns', pa.int64()) == [us(2026,8,22,14,0,0,123456)*1000+789, None, -1, None]\n"
    "for n in exp_types:\n"
    "    want = 1 if n != 'ts_ns' else 2\n"
    "    assert t.column(n).null_count == want, (n, t.column(n).null_count)\n";

static void test_arrow_all_types(void **state)
{
    size_t len;
    char *got;

    (void)state;
    got = encode_sql(ENC_ARROW, ALL_TYPES_SQL, &len);
    /* framing: continuation marker first, end-of-stream marker last, 8-aligned */
    assert_true(len > 16 && len % 8 == 0);
    assert_memory_equal(got, "\xff\xff\xff\xff", 4);
    assert_memory_equal(got + len - 8, "\xff\xff\xff\xff\0\0\0\0", 8);
    if (have_python("pyarrow"))
        run_python(PY_ARROW_ALL, got, len);
    else
        print_message("pyarrow missing: Arrow read-back skipped\n");
    free(got);
}

static const char PY_ARROW_BATCHES[] =
    "import sys, pyarrow as pa, pyarrow.ipc as ipc\n"
    "r = ipc.open_stream(open(sys.argv[1], 'rb').read())\n"
    "batches = list(r)\n"
    "sizes = [b.num_rows for b in batches]\n"
    "assert len(batches) >= 3 and sum(sizes) == 25000, sizes\n"
    "assert all(s <= 12288 for s in sizes), sizes\n"
    "t = pa.Table.from_batches(batches)\n"
    "assert t.column('i').to_pylist() == list(range(25000))\n"
    "assert t.column('v').to_pylist() == [i * 0.5 for i in range(25000)]\n"
    "assert t.column('s').to_pylist() == ['h%d' % (i % 3) for i in range(25000)]\n"
    "assert t.column('n').to_pylist() == [None if i % 7 == 0 else i for i in range(25000)]\n"
    "assert t.column('ok').to_pylist() == [None if i % 5 == 0 else i % 2 == 0 for i in range(25000)]\n"
    "assert t.column('x').type == pa.string() and t.column('x').null_count == 25000\n"
    "for b in batches:\n"
    "    assert b.column(0).null_count == 0 and b.column(0).buffers()[0] is None\n";

static void test_arrow_batches(void **state)
{
    static const char sql[] =
        "SELECT range AS i, range * 0.5::DOUBLE AS v, 'h' || (range % 3) AS s,"
        " CASE WHEN range % 7 = 0 THEN NULL ELSE range END AS n,"
        " CASE WHEN range % 5 = 0 THEN NULL ELSE range % 2 = 0 END AS ok,"
        " NULL::DECIMAL(4,2) AS x FROM range(25000) ORDER BY range";
    size_t len;
    char *got;

    (void)state;
    got = encode_sql(ENC_ARROW, sql, &len);
    if (have_python("pyarrow"))
        run_python(PY_ARROW_BATCHES, got, len);
    else
        print_message("pyarrow missing: Arrow read-back skipped\n");
    free(got);
}

static const char PY_MSGPACK_ALL[] =
    "import sys, math, msgpack\n"
    "d = msgpack.unpackb(open(sys.argv[1], 'rb').read(), raw=False, timestamp=0)\n"
    "assert list(d) == ['success', 'columns', 'types', 'data', 'row_count',\n"
    "                   'execution_time_ms', 'timestamp'], list(d)\n"
    "assert d['success'] is True and d['row_count'] == 4 and d['execution_time_ms'] == 13\n"
    "assert d['timestamp'] == '2026-08-22T14:00:00.000000Z', d['timestamp']\n"
    "assert d['columns'] == ['b','i8','i16','i32','i64','u8','u16','u32','u64','f32','f64',\n"
    "  's','bl','d','tm','ts','tstz','ts_s','ts_ms','ts_ns'], d['columns']\n"
    "assert d['types'] == ['bool','int8','int16','int32','int64','uint8','uint16','uint32',\n"
    "  'uint64','float32','float64','utf8','binary','date32','string_encoded',\n"
    "  'timestamp[us]','timestamp[us]','timestamp[s]','timestamp[ms]','timestamp[ns]'], d['types']\n"
    "c = dict(zip(d['columns'], d['data']))\n"
    "assert len(d['data']) == 20 and all(len(v) == 4 for v in d['data'])\n"
    "assert c['b'] == [True, None, False, True]\n"
    "assert c['i64'] == [2**63 - 1, None, -2**63, 0]\n"
    "assert c['u64'] == [2**64 - 1, None, 0, 1]\n"
    "assert c['i8'] == [-5, None, -128, 127] and c['i32'] == [-70000, None, -2**31, 2**31 - 1]\n"
    "assert c['f64'][0] == 12.3 and c['f64'][2] == -math.inf and c['f64'][3] == math.inf\n"
    "assert math.isnan(c['f32'][2]) and c['f32'][0] == 1.5\n"
    "assert c['s'] == ['h1', None, 'say \"hi\",\\nbye', 'h\\u00e9llo \\u2713 \\\\ back\\t'], c['s']\n"
    "assert c['bl'] == [b'\\xaa\\x01z', None, b'', b'a\"b,c'], c['bl']\n"
    "assert c['tm'] == ['14:00:00.123456', None, '00:00:00.000000', '23:59:59.999999']\n"
    "T = msgpack.Timestamp\n"
    "assert c['ts'] == [T(1787407200, 123456000), None, T(-1, 999999000), None], c['ts']\n"
    "assert c['d'] == [T(1787356800, 0), None, T(-2208988800, 0), None], c['d']\n"
    "assert c['ts_ns'] == [T(1787407200, 123456789), None, T(-1, 999999999), None], c['ts_ns']\n"
    "assert c['ts_s'][:3] == [T(1787407201, 0), None, T(-315619200, 0)], c['ts_s']\n";

static void test_msgpack_all_types(void **state)
{
    size_t len;
    char *got;

    (void)state;
    got = encode_sql(ENC_MSGPACK, ALL_TYPES_SQL, &len);
    /* fixmap of 7, first key "success" = true */
    assert_memory_equal(got, "\x87\xa7success\xc3", 10);
    if (have_python("msgpack"))
        run_python(PY_MSGPACK_ALL, got, len);
    else
        print_message("python msgpack missing: MessagePack read-back skipped\n");
    free(got);
}

/* ---- size, sinks, caps ---- */

/* Occurrences of needle in s[0..n) (a plain scan: strstr under ASan re-measures
 * the haystack on every call, quadratic on 60 MB). */
static size_t count_mem(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle), i, c = 0;

    for (i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
            c++;
    return c;
}

static void test_million_rows(void **state)
{
    static const char sql[] =
        "SELECT TIMESTAMP '2026-08-22 00:00:00' + INTERVAL (range) MICROSECOND * 1000 AS time,"
        " 'host' || (range % 100) AS host, range * 0.25::DOUBLE AS a,"
        " range / 3.0::DOUBLE AS b, range * -1.5::DOUBLE AS c, range AS n FROM range(1000000)";
    struct enc_sink sink;
    uint64_t rows = 0;
    struct errbuf eb;
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    assert_int_equal(encode_sql_sink(ENC_JSON, sql, &sink, NULL, &eb, &rows, NULL), ERR_OK);
    assert_int_equal(rows, 1000000);
    assert_non_null(strstr(b.data, "],\"row_count\":1000000,\"execution_time_ms\":12.5,"));
    assert_int_equal(count_mem(b.data, b.len, "],[\""), 999999);
    assert_non_null(strstr(b.data, "[\"2026-08-22T00:00:00.000000Z\",\"host0\",0.0,0.0,-0.0,0]"));
    buf_reset(&b);
    assert_int_equal(encode_sql_sink(ENC_ARROW, sql, &sink, NULL, &eb, &rows, NULL), ERR_OK);
    assert_int_equal(rows, 1000000);
    buf_release(&b);
}

/* The fd sink (256 KiB stage) produces exactly the buffer sink's bytes. */
static void test_fd_sink_same_bytes(void **state)
{
    static const char sql[] = "SELECT range AS i, 'x' || range AS s, range * 0.1::DOUBLE AS v"
                              " FROM range(100000)";
    enum enc_format fmts[] = {ENC_JSON, ENC_CSV, ENC_ARROW, ENC_MSGPACK};
    char path[] = "/tmp/arc_enc_fd_XXXXXX";
    struct enc_sink sink;
    struct errbuf eb;
    struct stat st;
    size_t i, len;
    char *want, *got;
    int fd;

    (void)state;
    for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        want = encode_sql(fmts[i], sql, &len);
        assert_true(len > ENC_STAGE_BYTES); /* exercises several flushes */
        fd = mkstemp(path);
        assert_true(fd >= 0);
        sink = enc_sink_fd(fd);
        assert_int_equal(encode_sql_sink(fmts[i], sql, &sink, NULL, &eb, NULL, NULL), ERR_OK);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((size_t)st.st_size, len);
        got = xmalloc(len);
        assert_int_equal(pread(fd, got, len, 0), (ssize_t)len);
        assert_memory_equal(got, want, len);
        free(got);
        free(want);
        close(fd);
        unlink(path);
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    }
}

static void test_fd_sink_epipe(void **state)
{
    struct enc_sink sink;
    struct errbuf eb;
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    close(p[0]); /* the client went away */
    sink = enc_sink_fd(p[1]);
    assert_int_equal(encode_sql_sink(ENC_JSON, "SELECT range AS i FROM range(300000)", &sink,
                                     NULL, &eb, NULL, NULL),
                     ERR_IO);
    assert_non_null(strstr(eb.msg, "Broken pipe"));
    close(p[1]);
}

struct piece_log {
    size_t calls, max, total;
};

static enum err log_piece(void *ctx, const void *p, size_t n, struct errbuf *eb)
{
    struct piece_log *l = ctx;

    (void)p;
    (void)eb;
    l->calls++;
    l->total += n;
    if (n > l->max)
        l->max = n;
    return ERR_OK;
}

static void test_fn_sink_pieces(void **state)
{
    struct piece_log l = {0};
    struct enc_sink sink = enc_sink_fn(log_piece, &l);
    struct errbuf eb;

    (void)state;
    assert_int_equal(encode_sql_sink(ENC_CSV, "SELECT range AS i FROM range(500000)", &sink,
                                     NULL, &eb, NULL, NULL),
                     ERR_OK);
    /* "i\n" + 0..499999 one per line */
    assert_int_equal(l.total, 2 + 3388890);
    assert_true(l.calls >= 12 && l.max <= ENC_STAGE_BYTES);
}

static void test_caps(void **state)
{
    struct enc_opts o = {.max_bytes = 100000};
    struct enc_sink sink;
    struct errbuf eb;
    struct buf b;

    (void)state;
    /* the answer buffer's own cap */
    buf_init(&b, 64 * 1024);
    sink = enc_sink_buf(&b);
    assert_int_equal(encode_sql_sink(ENC_JSON, "SELECT range AS i FROM range(100000)", &sink,
                                     NULL, &eb, NULL, NULL),
                     ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "65536-byte answer limit"));
    assert_true(b.len <= 64 * 1024);
    buf_release(&b);

    /* what MessagePack and Arrow hold before sending */
    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    assert_int_equal(encode_sql_sink(ENC_MSGPACK, "SELECT range AS i FROM range(100000)",
                                     &sink, &o, &eb, NULL, NULL),
                     ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "MessagePack answer exceeds the 100000-byte limit"));
    buf_reset(&b);
    assert_int_equal(encode_sql_sink(ENC_ARROW,
                                     "SELECT repeat('x', 100) AS s FROM range(5000)", &sink,
                                     &o, &eb, NULL, NULL),
                     ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "Arrow record batch exceeds the 100000-byte limit"));
    buf_release(&b);
}

static void test_call_order_and_names(void **state)
{
    struct duck_result *r;
    struct encoder *e;
    struct enc_sink sink;
    enum enc_format f;
    struct errbuf eb;
    struct buf b;

    (void)state;
    errbuf_init(&eb);
    assert_int_equal(enc_format_parse("JSON", &f, &eb), ERR_OK);
    assert_int_equal(f, ENC_JSON);
    assert_int_equal(enc_format_parse("jsonl", &f, &eb), ERR_OK);
    assert_int_equal(f, ENC_NDJSON);
    assert_int_equal(enc_format_parse("msgpack", &f, &eb), ERR_OK);
    assert_int_equal(f, ENC_MSGPACK);
    assert_int_equal(enc_format_parse("xml", &f, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "unknown format 'xml'"));
    assert_string_equal(enc_format_content_type(ENC_ARROW), "application/vnd.apache.arrow.stream");

    buf_init(&b, 0);
    sink = enc_sink_buf(&b);
    assert_int_equal(duck_query_exec(F->d, "SELECT 1 AS a", &r, &eb), ERR_OK);
    e = enc_new(ENC_JSON, &sink, r, NULL);
    assert_int_equal(enc_end(e, NULL, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "enc_begin not called");
    assert_int_equal(enc_begin(e, &eb), ERR_OK);
    assert_int_equal(enc_begin(e, &eb), ERR_INVAL);
    assert_int_equal(enc_end(e, NULL, &eb), ERR_OK);
    assert_int_equal(enc_end(e, NULL, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "encoder already ended");
    assert_int_equal(enc_bytes_out(e), b.len);
    enc_free(e);
    enc_free(NULL);
    duck_result_free(r);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_all_types),
        cmocka_unit_test(test_ndjson_all_types),
        cmocka_unit_test(test_csv_all_types),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_empty_result),
        cmocka_unit_test(test_decimal_as_text),
        cmocka_unit_test(test_text_formatters),
        cmocka_unit_test(test_timestamp_seconds),
        cmocka_unit_test(test_arrow_all_types),
        cmocka_unit_test(test_arrow_batches),
        cmocka_unit_test(test_msgpack_all_types),
        cmocka_unit_test(test_million_rows),
        cmocka_unit_test(test_fd_sink_same_bytes),
        cmocka_unit_test(test_fd_sink_epipe),
        cmocka_unit_test(test_fn_sink_pieces),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_call_order_and_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
