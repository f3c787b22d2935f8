/* test_lp.c - line protocol decoder: grammar edge cases, types, times, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "ingest/ingest.h"
#include "test_ingest_cmp.h"

#define NOW 1111111111111111LL

static struct ingest_result R;
static struct errbuf EB;

static enum err dec(const char *body, enum ingest_precision p)
{
    ingest_result_release(&R);
    errbuf_init(&EB);
    return ingest_lp_decode(body, strlen(body), p, NOW, NULL, &R, &EB);
}

static void ok(const char *body)
{
    enum err rc = dec(body, PREC_NS);
    if (rc != ERR_OK)
        fail_msg("decode failed: %s", EB.msg);
}

static void bad(const char *body, const char *msg)
{
    enum err rc = dec(body, PREC_NS);
    assert_int_not_equal(rc, ERR_OK);
    assert_string_equal(EB.msg, msg);
    assert_int_equal(R.nbatches, 0);
}

static struct batch *B(const char *m)
{
    size_t i;
    for (i = 0; i < R.nbatches; i++)
        if (strcmp(R.batches[i]->measurement, m) == 0)
            return R.batches[i];
    fail_msg("no measurement %s", m);
    return NULL;
}

static struct batch_col *C(struct batch *b, const char *name)
{
    struct batch_col *c = batch_find_col(b, name, strlen(name));
    if (!c)
        fail_msg("no column %s", name);
    return c;
}

static const char *S(struct batch *b, struct batch_col *c, size_t row)
{
    size_t len;
    assert_int_equal(c->type, BATCH_STR);
    assert_true(batch_is_valid(c, row));
    return strdict_get(b->dict, ((uint32_t *)c->data)[row], &len);
}

static double F(struct batch_col *c, size_t row)
{
    assert_int_equal(c->type, BATCH_F64);
    assert_true(batch_is_valid(c, row));
    return ((double *)c->data)[row];
}

static int64_t I(struct batch_col *c, size_t row)
{
    assert_int_equal(c->type, BATCH_I64);
    assert_true(batch_is_valid(c, row));
    return ((int64_t *)c->data)[row];
}

static void test_basic_types(void **state)
{
    struct batch *b;
    (void)state;
    ok("cpu,host=server01,region=us value=12.5,count=3i,neg=-5i,u=7u,ok=true,s=\"hi there\" "
       "1700000000000000000\n");
    assert_int_equal(R.nbatches, 1);
    assert_int_equal(R.nrows, 1);
    b = B("cpu");
    assert_int_equal(b->nrows, 1);
    assert_int_equal(b->time_us[0], 1700000000000000LL);
    assert_true(C(b, "host")->is_tag);
    assert_string_equal(S(b, C(b, "host"), 0), "server01");
    assert_string_equal(S(b, C(b, "region"), 0), "us");
    assert_true(F(C(b, "value"), 0) == 12.5);
    assert_int_equal(I(C(b, "count"), 0), 3);
    assert_int_equal(I(C(b, "neg"), 0), -5);
    assert_int_equal(C(b, "u")->type, BATCH_U64);
    assert_int_equal(((uint64_t *)C(b, "u")->data)[0], 7);
    assert_int_equal(C(b, "ok")->type, BATCH_BOOL);
    assert_int_equal(((uint8_t *)C(b, "ok")->data)[0], 1);
    assert_false(C(b, "s")->is_tag);
    assert_string_equal(S(b, C(b, "s"), 0), "hi there");
}

static void test_escapes(void **state)
{
    struct batch *b;
    (void)state;
    ok("m,ta\\ g=v\\,a\\=l\\ ue,lit=a\\b f\\=x\\,y\\ z=1,s=\"a \\\"q\\\" \\\\ b \\n, = x\"\n");
    b = B("m");
    assert_string_equal(S(b, C(b, "ta g"), 0), "v,a=l ue");
    assert_string_equal(S(b, C(b, "lit"), 0), "a\\b"); /* backslash before other: literal */
    assert_true(F(C(b, "f=x,y z"), 0) == 1.0);
    assert_string_equal(S(b, C(b, "s"), 0), "a \"q\" \\ b \\n, = x");
    /* unescaped '=' in a tag value is kept */
    ok("m,t=a=b v=1");
    assert_string_equal(S(B("m"), C(B("m"), "t"), 0), "a=b");
}

static void test_booleans(void **state)
{
    static const char *t[] = {"t", "T", "true", "True", "TRUE"};
    static const char *f[] = {"f", "F", "false", "False", "FALSE"};
    char line[64];
    size_t i;
    (void)state;
    for (i = 0; i < 5; i++) {
        snprintf(line, sizeof(line), "m a=%s,b=%s", t[i], f[i]);
        ok(line);
        assert_int_equal(C(B("m"), "a")->type, BATCH_BOOL);
        assert_int_equal(((uint8_t *)C(B("m"), "a")->data)[0], 1);
        assert_int_equal(((uint8_t *)C(B("m"), "b")->data)[0], 0);
    }
    bad("m a=tru", "line 1: invalid field value for 'a': 'tru'");
    bad("m a=yes", "line 1: invalid field value for 'a': 'yes'");
}

static void test_floats(void **state)
{
    static const struct {
        const char *txt;
        double want;
    } cases[] = {
        {"1", 1.0},         {"-1.5e-3", -1.5e-3},   {"1.", 1.0},
        {".5", 0.5},        {"1E+2", 100.0},        {"12.50", 12.5},
        {"0.1", 0.1},       {"3.14159", 3.14159},   {"1e22", 1e22},
        {"1e-300", 1e-300}, {"123456789012345678901234.5", 123456789012345678901234.5},
        {"0.000001", 1e-6}, {"-0", -0.0},           {"9007199254740993", 9007199254740993.0},
    };
    char line[128];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line), "m v=%s", cases[i].txt);
        ok(line);
        assert_true(F(C(B("m"), "v"), 0) == cases[i].want);
    }
    bad("m v=1e400", "line 1: invalid field value for 'v': '1e400'");
    bad("m v=NaN", "line 1: invalid field value for 'v': 'NaN'");
    bad("m v=inf", "line 1: invalid field value for 'v': 'inf'");
    bad("m v=1.2.3", "line 1: invalid field value for 'v': '1.2.3'");
    bad("m v=1e", "line 1: invalid field value for 'v': '1e'");
    bad("m v=-", "line 1: invalid field value for 'v': '-'");
    bad("m v=.", "line 1: invalid field value for 'v': '.'");
    bad("m v=0x10", "line 1: invalid field value for 'v': '0x10'");
}

static void test_integers(void **state)
{
    (void)state;
    ok("m a=9223372036854775807i,b=-9223372036854775808i,c=18446744073709551615u");
    assert_int_equal(I(C(B("m"), "a"), 0), INT64_MAX);
    assert_int_equal(I(C(B("m"), "b"), 0), INT64_MIN);
    assert_true(((uint64_t *)C(B("m"), "c")->data)[0] == UINT64_MAX);
    bad("m a=9223372036854775808i",
        "line 1: invalid field value for 'a': '9223372036854775808i'");
    bad("m a=-1u", "line 1: invalid field value for 'a': '-1u'");
    bad("m a=1.5i", "line 1: invalid field value for 'a': '1.5i'");
    bad("m a=i", "line 1: invalid field value for 'a': 'i'");
}

static void test_layout(void **state)
{
    struct batch *b;
    (void)state;
    /* comments, blank lines, CRLF, leading spaces, trailing whitespace, no final newline */
    ok("# comment\n\n  \r\ncpu v=1 10000\r\n   cpu v=2 20000   \n\t# indented comment\ncpu v=3\t\r\n"
       "cpu v=4 40000 ");
    b = B("cpu");
    assert_int_equal(b->nrows, 4);
    assert_int_equal(b->time_us[0], 10);
    assert_int_equal(b->time_us[1], 20);
    assert_int_equal(b->time_us[2], NOW); /* missing timestamp: now */
    assert_int_equal(b->time_us[3], 40);
    assert_true(F(C(b, "v"), 3) == 4.0);
    /* empty body and only comments: no rows, no error */
    ok("");
    assert_int_equal(R.nbatches, 0);
    ok("# nothing\n\n");
    assert_int_equal(R.nrows, 0);
}

static void test_negative_times_and_precision(void **state)
{
    static const struct {
        const char *ts;
        enum ingest_precision p;
        int64_t want;
    } cases[] = {
        {"-1", PREC_NS, -1},      {"-1000", PREC_NS, -1},    {"-1001", PREC_NS, -2},
        {"-1500", PREC_NS, -2},   {"1999", PREC_NS, 1},      {"0", PREC_NS, 0},
        {"5", PREC_US, 5},        {"5", PREC_MS, 5000},      {"5", PREC_S, 5000000},
        {"-5", PREC_S, -5000000}, {"2", PREC_M, 120000000},  {"1", PREC_H, 3600000000LL},
        /* 1969-12-31T23:59:59.9999995: floors into hour 23 of 1969, not 1970 */
        {"-500", PREC_NS, -1},
    };
    char line[64];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line), "m v=1 %s", cases[i].ts);
        assert_int_equal(dec(line, cases[i].p), ERR_OK);
        assert_int_equal(B("m")->time_us[0], cases[i].want);
    }
    assert_int_equal(dec("m v=1 9223372036854775807", PREC_S), ERR_PARSE);
    assert_string_equal(EB.msg, "line 1: timestamp out of range");
    bad("m v=1 12a", "line 1: unexpected text at end of line: 'a'");
    bad("m v=1 1-2", "line 1: invalid timestamp '1-2'");
}

static void test_precision_parse(void **state)
{
    static const struct {
        const char *s;
        bool ok;
        enum ingest_precision p;
    } cases[] = {
        {"ns", true, PREC_NS}, {"n", true, PREC_NS},  {"", true, PREC_NS},
        {"us", true, PREC_US}, {"u", true, PREC_US},  {"\xc2\xb5", true, PREC_US},
        {"ms", true, PREC_MS}, {"s", true, PREC_S},   {"m", true, PREC_M},
        {"h", true, PREC_H},   {"NS", false, PREC_NS}, {"sec", false, PREC_NS},
        {"d", false, PREC_NS}, {"mss", false, PREC_NS},
    };
    enum ingest_precision p;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = PREC_H;
        assert_int_equal(ingest_precision_parse(cases[i].s, &p), cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(p, cases[i].p);
    }
    assert_true(ingest_precision_parse(NULL, &p));
    assert_int_equal(p, PREC_NS);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(ingest_name_valid("cpu", 3, 128));
    assert_true(ingest_name_valid("a-b_c9", 6, 128));
    assert_false(ingest_name_valid("9cpu", 4, 128));
    assert_false(ingest_name_valid("_cpu", 4, 128));
    assert_false(ingest_name_valid("", 0, 128));
    assert_false(ingest_name_valid("a.b", 3, 128));
    assert_false(ingest_name_valid("abcd", 4, 3));
    assert_false(ingest_name_valid("a/b", 3, 128));
    bad("cp.u v=1", "line 1: invalid measurement name 'cp.u': use a letter, then letters, "
                    "digits, '_' or '-' (at most 128 bytes)");
    bad("../x v=1", "line 1: invalid measurement name '../x': use a letter, then letters, "
                    "digits, '_' or '-' (at most 128 bytes)");
}

static void test_utf8(void **state)
{
    struct batch *b;
    (void)state;
    ok("m,city=z\xc3\xbcrich s=\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"");
    b = B("m");
    assert_string_equal(S(b, C(b, "city"), 0), "z\xc3\xbcrich");
    assert_string_equal(S(b, C(b, "s"), 0), "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    bad("m s=\"\xff\"", "line 1: field 's': string value is not valid UTF-8");
    bad("m,t=\xc0\xaf v=1", "line 1: tag 't' value is not valid UTF-8");
    bad("m s=\"\xed\xa0\x80\"", "line 1: field 's': string value is not valid UTF-8");
}

static void test_error_lines(void **state)
{
    (void)state;
    bad("# c\n\ncpu v=1\ncpu v=abc\n", "line 4: invalid field value for 'v': 'abc'");
    bad("cpu\n", "line 1: missing fields");
    bad("cpu v=1\ncpu,host=a\n", "line 2: missing fields");
    bad("cpu,host=a \n", "line 1: missing fields");
    bad("cpu,host v=1", "line 1: missing tag value for 'host'");
    bad("cpu,host= v=1", "line 1: empty tag value for 'host'");
    bad("cpu,=a v=1", "line 1: empty tag key");
    bad("cpu v", "line 1: missing field value for 'v'");
    bad("cpu v=", "line 1: missing field value for 'v'");
    bad("cpu =1", "line 1: empty field key");
    bad("cpu s=\"abc", "line 1: unterminated string value for field 's'");
    bad("cpu s=\"a\"b", "line 1: unexpected text after the string value of field 's'");
    bad("cpu v=1 1 2", "line 1: unexpected text at end of line: '2'");
    /* a string spanning lines moves the count on */
    bad("m s=\"a\nb\"\nm v=x\n", "line 3: invalid field value for 'v': 'x'");
    /* CRLF lines count like LF lines */
    bad("m v=1\r\nm v=1\r\nm v=x\r\n", "line 3: invalid field value for 'v': 'x'");
}

static void test_all_or_nothing(void **state)
{
    struct buf body;
    size_t i;
    enum err rc;
    (void)state;
    buf_init(&body, 0);
    for (i = 1; i <= 10001; i++) {
        if (i == 10000)
            buf_append_str(&body, "cpu,host=a usage=oops 1\n");
        else
            buf_printf(&body, "cpu,host=h%zu usage=%zu.5 %zu000\n", i % 7, i, i);
    }
    ingest_result_release(&R);
    errbuf_init(&EB);
    rc = ingest_lp_decode(body.data, body.len, PREC_NS, NOW, NULL, &R, &EB);
    assert_int_equal(rc, ERR_PARSE);
    assert_string_equal(EB.msg, "line 10000: invalid field value for 'usage': 'oops'");
    assert_int_equal(R.nbatches, 0);
    assert_null(R.batches);
    /* the same body without the bad line decodes fully */
    buf_reset(&body);
    for (i = 1; i <= 10001; i++)
        buf_printf(&body, "cpu,host=h%zu usage=%zu.5 %zu000\n", i % 7, i, i);
    rc = ingest_lp_decode(body.data, body.len, PREC_NS, NOW, NULL, &R, &EB);
    assert_int_equal(rc, ERR_OK);
    assert_int_equal(R.nrows, 10001);
    assert_int_equal(strdict_count(B("cpu")->dict), 7);
    assert_true(F(C(B("cpu"), "usage"), 10000) == 10001.5);
    buf_release(&body);
}

static void test_types_across_lines(void **state)
{
    struct batch_col *c;
    (void)state;
    ok("m x=1i\nm x=2.5\nm y=1\n");
    c = C(B("m"), "x");
    assert_true(F(c, 0) == 1.0);
    assert_true(F(c, 1) == 2.5);
    assert_false(batch_is_valid(c, 2));
    ok("m x=1.5\nm x=2i\n");
    c = C(B("m"), "x");
    assert_true(F(c, 0) == 1.5);
    assert_true(F(c, 1) == 2.0);
    bad("m x=1\nm x=\"s\"", "line 2: field type conflict: field 'x' is float, got string");
    bad("m x=1i\nm x=true", "line 2: field type conflict: field 'x' is integer, got boolean");
    bad("m x=\"a\"\nm x=1u", "line 2: field type conflict: field 'x' is string, got unsigned");
    bad("m x=1i\nm x=1u", "line 2: field type conflict: field 'x' is integer, got unsigned");
    /* duplicate field in one line: the last wins */
    ok("m x=1,x=2");
    assert_true(F(C(B("m"), "x"), 0) == 2.0);
}

static void test_tag_field_clash_and_nulls(void **state)
{
    struct batch *b;
    (void)state;
    ok("m,host=a host=1,v=2\nm,host=b v=3\nm w=4i\n");
    b = B("m");
    assert_true(C(b, "host")->is_tag);
    assert_true(F(C(b, "host_value"), 0) == 1.0);
    assert_false(batch_is_valid(C(b, "host_value"), 1));
    assert_string_equal(S(b, C(b, "host"), 1), "b");
    assert_false(batch_is_valid(C(b, "host"), 2)); /* missing tag: NULL */
    assert_false(batch_is_valid(C(b, "v"), 2));    /* missing field: NULL, never 0 */
    assert_int_equal(I(C(b, "w"), 2), 4);
    assert_false(batch_is_valid(C(b, "w"), 0));
    bad("m x=1\nm,x=a y=1", "line 2: tag 'x' clashes with a field of the same name in "
                            "measurement 'm'");
    bad("m time=1", "line 1: field name 'time' is reserved for the timestamp column");
    bad("m,time=a v=1", "line 1: tag name 'time' is reserved for the timestamp column");
}

static void test_measurements(void **state)
{
    (void)state;
    ok("cpu v=1\nmem v=2\ncpu v=3\n");
    assert_int_equal(R.nbatches, 2);
    assert_string_equal(R.batches[0]->measurement, "cpu");
    assert_string_equal(R.batches[1]->measurement, "mem");
    assert_int_equal(R.batches[0]->nrows, 2);
    assert_int_equal(R.batches[1]->nrows, 1);
    assert_int_equal(R.nrows, 3);
}

static void test_limits(void **state)
{
    struct ingest_limits lim;
    const char *body;
    (void)state;
    ingest_limits_default(&lim);
    lim.max_rows = 2;
    ingest_result_release(&R);
    body = "m v=1\nm v=2\nm v=3\n";
    assert_int_equal(ingest_lp_decode(body, strlen(body), PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);
    assert_string_equal(EB.msg, "line 3: too many rows in one request (max 2)");
    assert_int_equal(R.nbatches, 0);

    ingest_limits_default(&lim);
    lim.max_cols = 2;
    body = "m,t=a v=1\nm w=2\n";
    assert_int_equal(ingest_lp_decode(body, strlen(body), PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);
    assert_string_equal(EB.msg, "line 2: too many columns in measurement 'm' (max 2)");

    ingest_limits_default(&lim);
    lim.max_str_len = 3;
    body = "m s=\"abcd\"\n";
    assert_int_equal(ingest_lp_decode(body, strlen(body), PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);
    assert_string_equal(EB.msg, "line 1: field 's': string value of 4 bytes is longer than 3");
    body = "m,t=abcd v=1\n";
    assert_int_equal(ingest_lp_decode(body, strlen(body), PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);

    ingest_limits_default(&lim);
    lim.max_measurements = 1;
    body = "a v=1\nb v=1\n";
    assert_int_equal(ingest_lp_decode(body, strlen(body), PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);
    assert_string_equal(EB.msg, "line 2: too many measurements in one request (max 1)");
    assert_int_equal(R.nbatches, 0);
}

/* ---- parallel decoding: every result and message equals the sequential one -- */

/* Decode body in one pass without the series cache and in nparts parts with it;
 * both must agree on the code, the message and (on success) every value. Returns
 * the parts the second result came from (1: one pass). */
static size_t par_same(const struct buf *body, const struct ingest_limits *lim, size_t nparts)
{
    struct ingest_result a = {0}, b = {0};
    struct errbuf ea, eb2;
    enum err ra, rb;
    size_t used = 0, used1 = 0;
    char why[256];

    errbuf_init(&ea);
    errbuf_init(&eb2);
    /* the reference: one pass without the series cache */
    ingest_test_series_cache(false);
    ra = ingest_lp_decode_parts(body->data, body->len, PREC_NS, NOW, lim, 1, &a, &used1, &ea);
    ingest_test_series_cache(true);
    rb = ingest_lp_decode_parts(body->data, body->len, PREC_NS, NOW, lim, nparts, &b, &used, &eb2);
    assert_int_equal(ra, rb);
    assert_string_equal(ea.msg, eb2.msg);
    if (ra == ERR_OK) {
        assert_int_equal(used1, 1);
        if (!ingest_result_equal(&a, &b, why, sizeof(why)))
            fail_msg("parallel decode differs: %s", why);
    } else {
        assert_int_equal(b.nbatches, 0);
        used = 0;
    }
    ingest_result_release(&a);
    ingest_result_release(&b);
    return used;
}

/* n tsbs-like lines; line i of measurement cpu (mem every 7th line). */
static void gen_lines(struct buf *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (i % 7 == 3)
            buf_printf(b, "mem,host=h%zu free=%zui,used=%zu.5 %zu\n", i % 13, i, i, 1000 + i);
        else
            buf_printf(b,
                       "cpu,host=h%zu,region=r%zu,rack=%zu usage_user=%zui,usage_idle=%zui%s "
                       "%zu\n",
                       i % 100, i % 3, i % 17, i % 100, 100 - i % 100,
                       i % 11 == 0 ? ",extra=t" : "", (size_t)1700000000000000000ull + i);
    }
}

static void test_parallel_same_result(void **state)
{
    struct buf b;
    size_t n;
    (void)state;

    buf_init(&b, 0);
    gen_lines(&b, 3000);
    /* late surprises: an int column widened by a float, a new column, a new
     * measurement, a NULL (missing field), comments and blank lines */
    buf_append_str(&b, "# comment\n\ncpu,host=h1 usage_user=1.5,late=1i 5\n"
                       "disk,dev=sda free=1i\ncpu,host=h2 usage_idle=3i\r\n");
    for (n = 2; n <= INGEST_MAX_PARTS; n++)
        assert_true(par_same(&b, NULL, n) > 1);
    /* no trailing newline, and parts that find no newline to start at */
    b.len--;
    assert_true(par_same(&b, NULL, 3) > 1);
    buf_release(&b);

    buf_init(&b, 0);
    buf_append_str(&b, "a v=1\n");
    assert_int_equal(par_same(&b, NULL, 4), 1); /* one line: one part */
    buf_release(&b);

    /* a quoted string may span lines: such a body is never cut */
    buf_init(&b, 0);
    gen_lines(&b, 500);
    buf_append_str(&b, "cpu,host=x s=\"two\nlines\"\n");
    gen_lines(&b, 500);
    assert_int_equal(par_same(&b, NULL, 2), 1);
    buf_release(&b);
}

static void test_parallel_errors(void **state)
{
    static const char *const tails[] = {
        "cpu,host=x usage_user=bad\n",   /* parse error late in the body */
        "cpu,host=x usage_user=true\n",  /* int column, bool in a later part */
        "cpu,usage_user=x f=1\n",        /* tag named like a field of earlier parts */
        "mem,host=h free=1u\n",          /* integer then unsigned */
        "cpu,Host=q v=1\n",              /* differs only in case from 'host' */
        "cpu v=1 notatime\n",            /* garbage after the timestamp */
    };
    struct ingest_limits lim;
    struct buf b;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        buf_init(&b, 0);
        gen_lines(&b, 2000);
        buf_append_str(&b, tails[i]);
        gen_lines(&b, 10);
        assert_int_equal(par_same(&b, NULL, 2), 0);
        assert_int_equal(par_same(&b, NULL, 5), 0);
        buf_release(&b);
    }
    /* an error in the first part, and the clash the other way round: a field
     * in a later part named like an earlier tag becomes <name>_value in one pass */
    buf_init(&b, 0);
    buf_append_str(&b, "cpu,host=a v=oops\n");
    gen_lines(&b, 2000);
    assert_int_equal(par_same(&b, NULL, 3), 0);
    buf_release(&b);
    buf_init(&b, 0);
    gen_lines(&b, 2000);
    buf_append_str(&b, "cpu host=1i\n");
    assert_true(par_same(&b, NULL, 2) >= 1);
    buf_release(&b);

    /* caps that only the sum of the parts passes */
    buf_init(&b, 0);
    gen_lines(&b, 2000);
    ingest_limits_default(&lim);
    lim.max_rows = 1999;
    assert_int_equal(par_same(&b, &lim, 4), 0);
    ingest_limits_default(&lim);
    lim.max_measurements = 1;
    assert_int_equal(par_same(&b, &lim, 4), 0);
    buf_append_str(&b, "cpu,host=h,newtag=1 usage_user=1i\n");
    ingest_limits_default(&lim);
    lim.max_cols = 6;
    assert_int_equal(par_same(&b, &lim, 2), 0);
    lim.max_cols = 7;
    assert_true(par_same(&b, &lim, 2) > 1);
    buf_release(&b);
}

/* Repeated series keys take their tags from the series cache: every value must
 * be what a lookup per tag gives. */
static void test_series_cache(void **state)
{
    static const char body[] =
        "cpu,host=a,region=x v=1 1\n"
        "cpu,host=b,region=y v=2 2\n"
        "cpu,host=a,region=x v=3 3\n"                 /* cached */
        "mem,host=a,region=x v=4 4\n"                 /* same tags, other measurement */
        "cpu,host=a,region=x,host=z v=5 5\n"          /* duplicate tag: the last wins */
        "cpu,host=a,region=x,host=z v=6 6\n"          /* cached, still z */
        "cpu,host=a\\,q,region=x v=7 7\n"             /* escaped: never cached */
        "cpu,host=a\\,q,region=x v=8 8\n"
        "cpu,host=a,region=x host=9i 9\n"             /* cached tags, field -> host_value */
        "cpu,region=x,host=a v=10 10\n"               /* other byte order: its own key */
        "cpu,host=a,region=x,dc=new v=11 11\n"        /* a new tag column, later rows NULL */
        "cpu,host=a,region=x v=12 12\n";
    struct ingest_limits lim;
    struct buf b;
    struct batch *cpu;
    static const char *const hosts[] = {"a", "b", "a", "z", "z", "a,q", "a,q", "a", "a", "a", "a"};
    size_t i;
    (void)state;

    buf_init(&b, 0);
    buf_append_str(&b, body);
    assert_int_equal(par_same(&b, NULL, 1), 1);
    buf_release(&b);
    ok(body);
    cpu = B("cpu");
    assert_int_equal(cpu->nrows, 11);
    for (i = 0; i < 11; i++) {
        assert_string_equal(S(cpu, C(cpu, "host"), i), hosts[i]);
        assert_string_equal(S(cpu, C(cpu, "region"), i), i == 1 ? "y" : "x");
        assert_int_equal(batch_is_valid(C(cpu, "dc"), i), i == 9);
    }
    assert_int_equal(I(C(cpu, "host_value"), 7), 9);
    assert_string_equal(S(B("mem"), C(B("mem"), "host"), 0), "a");
    /* the row cap hit on a cached line names that line */
    buf_init(&b, 0);
    buf_append_str(&b, body);
    ingest_limits_default(&lim);
    lim.max_rows = 2;
    assert_int_equal(par_same(&b, &lim, 1), 0);
    assert_int_equal(ingest_lp_decode(b.data, b.len, PREC_NS, 0, &lim, &R, &EB), ERR_LIMIT);
    assert_string_equal(EB.msg, "line 3: too many rows in one request (max 2)");
    buf_release(&b);
}

static int teardown(void **state)
{
    (void)state;
    ingest_result_release(&R);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_basic_types, teardown),
        cmocka_unit_test_teardown(test_escapes, teardown),
        cmocka_unit_test_teardown(test_booleans, teardown),
        cmocka_unit_test_teardown(test_floats, teardown),
        cmocka_unit_test_teardown(test_integers, teardown),
        cmocka_unit_test_teardown(test_layout, teardown),
        cmocka_unit_test_teardown(test_negative_times_and_precision, teardown),
        cmocka_unit_test_teardown(test_precision_parse, teardown),
        cmocka_unit_test_teardown(test_names, teardown),
        cmocka_unit_test_teardown(test_utf8, teardown),
        cmocka_unit_test_teardown(test_error_lines, teardown),
        cmocka_unit_test_teardown(test_all_or_nothing, teardown),
        cmocka_unit_test_teardown(test_types_across_lines, teardown),
        cmocka_unit_test_teardown(test_tag_field_clash_and_nulls, teardown),
        cmocka_unit_test_teardown(test_measurements, teardown),
        cmocka_unit_test_teardown(test_limits, teardown),
        cmocka_unit_test_teardown(test_series_cache, teardown),
        cmocka_unit_test_teardown(test_parallel_same_result, teardown),
        cmocka_unit_test_teardown(test_parallel_errors, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
