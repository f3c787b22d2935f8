/* test_msgpack.c - MessagePack decoder: item shapes, time units, NULLs, errors,
 * and truncation at every byte offset. Payloads come from a tiny packer below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "ingest/ingest.h"
#include "test_ingest_cmp.h"

#define NOW 1111111111111111LL

/* ---- packer ---- */
static struct buf P;
static void u8(uint8_t c) { buf_append(&P, &c, 1); }
static void be(uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        u8((uint8_t)(v >> (8 * i)));
}
static void pmap(size_t n) { if (n < 16) u8((uint8_t)(0x80 | n)); else { u8(0xde); be(n, 2); } }
static void parr(size_t n) { if (n < 16) u8((uint8_t)(0x90 | n)); else { u8(0xdc); be(n, 2); } }
static void pstr(const char *s)
{
    size_t n = strlen(s);
    if (n < 32) u8((uint8_t)(0xa0 | n)); else { u8(0xd9); u8((uint8_t)n); }
    buf_append(&P, s, n);
}
static void pint(int64_t v)
{
    if (v >= 0 && v < 128) u8((uint8_t)v);
    else if (v >= -32 && v < 0) u8((uint8_t)v);
    else { u8(0xd3); be((uint64_t)v, 8); }
}
static void puint(uint64_t v) { u8(0xcf); be(v, 8); }
static void pf64(double d) { uint64_t u; memcpy(&u, &d, 8); u8(0xcb); be(u, 8); }
static void pf32(float f) { uint32_t u; memcpy(&u, &f, 4); u8(0xca); be(u, 4); }
static void pnil(void) { u8(0xc0); }
static void pbool(int b) { u8(b ? 0xc3 : 0xc2); }

static struct ingest_result R;
static struct errbuf EB;

static enum err dec(void)
{
    ingest_result_release(&R);
    errbuf_init(&EB);
    return ingest_msgpack_decode((const uint8_t *)P.data, P.len, NOW, NULL, &R, &EB);
}

static void ok(void)
{
    if (dec() != ERR_OK)
        fail_msg("decode failed: %s", EB.msg);
}

static void bad(const char *msg)
{
    assert_int_not_equal(dec(), ERR_OK);
    assert_string_equal(EB.msg, msg);
    assert_int_equal(R.nbatches, 0);
}

static struct batch *B(const char *m)
{
    for (size_t i = 0; i < R.nbatches; i++)
        if (strcmp(R.batches[i]->measurement, m) == 0)
            return R.batches[i];
    fail_msg("no measurement %s", m);
    return NULL;
}

static struct batch_col *C(struct batch *b, const char *n)
{
    struct batch_col *c = batch_find_col(b, n, strlen(n));
    if (!c)
        fail_msg("no column %s", n);
    return c;
}

static const char *S(struct batch *b, const char *col, size_t row)
{
    struct batch_col *c = C(b, col);
    assert_int_equal(c->type, BATCH_STR);
    assert_true(batch_is_valid(c, row));
    return strdict_get(b->dict, ((uint32_t *)c->data)[row], NULL);
}

static double F(struct batch *b, const char *col, size_t row)
{
    struct batch_col *c = C(b, col);
    assert_int_equal(c->type, BATCH_F64);
    assert_true(batch_is_valid(c, row));
    return ((double *)c->data)[row];
}

static void row_item(const char *m, int64_t t)
{
    pmap(4);
    pstr("m"); pstr(m);
    pstr("t"); pint(t);
    pstr("tags"); pmap(1); pstr("region"); pstr("eu");
    pstr("fields"); pmap(2); pstr("v"); pf64(1.5); pstr("n"); pint(-3);
}

static void test_row_item(void **state)
{
    struct batch *b;
    (void)state;
    buf_reset(&P);
    pmap(5);
    pstr("fields"); /* keys in any order */
    pmap(7);
    pstr("f"); pf64(2.5);
    pstr("f32"); pf32(0.5f);
    pstr("i"); pint(-300);
    pstr("big"); puint(UINT64_MAX);
    pstr("s"); pstr("hello");
    pstr("b"); pbool(1);
    pstr("nothing"); pnil();
    pstr("m"); pstr("cpu");
    pstr("t"); pint(1700000000000LL); /* ms */
    pstr("h"); pstr("server01");
    pstr("tags"); pmap(2); pstr("dc"); pstr("x"); pstr("rack"); pint(7);
    ok();
    b = B("cpu");
    assert_int_equal(b->nrows, 1);
    assert_int_equal(b->time_us[0], 1700000000000000LL);
    assert_true(F(b, "f", 0) == 2.5);
    assert_true(F(b, "f32", 0) == 0.5);
    assert_int_equal(C(b, "i")->type, BATCH_I64);
    assert_int_equal(((int64_t *)C(b, "i")->data)[0], -300);
    assert_int_equal(C(b, "big")->type, BATCH_U64);
    assert_true(((uint64_t *)C(b, "big")->data)[0] == UINT64_MAX);
    assert_string_equal(S(b, "s", 0), "hello");
    assert_int_equal(C(b, "b")->type, BATCH_BOOL);
    assert_null(batch_find_col(b, "nothing", 7)); /* nil with no type: no column */
    assert_true(C(b, "host")->is_tag);
    assert_string_equal(S(b, "host", 0), "server01");
    assert_string_equal(S(b, "rack", 0), "7"); /* non-string tag: its string form */
}

static void test_positional_and_missing_time(void **state)
{
    struct batch *b;
    (void)state;
    buf_reset(&P);
    pmap(2);
    pstr("m"); pstr("mem");
    pstr("f"); parr(3); pf64(1.0); pint(2); pstr("x");
    ok();
    b = B("mem");
    assert_int_equal(b->time_us[0], NOW);
    assert_true(F(b, "field_0", 0) == 1.0);
    assert_int_equal(((int64_t *)C(b, "field_1")->data)[0], 2);
    assert_string_equal(S(b, "field_2", 0), "x");
}

static void test_time_units(void **state)
{
    static const struct {
        int64_t t;
        int64_t want_us;
    } cases[] = {
        {0, 0},
        {1700000000, 1700000000000000LL},              /* s */
        {9999999999LL, 9999999999000000LL},            /* s, just under 1e10 */
        {10000000000LL, 10000000000000LL},             /* ms from 1e10 */
        {1700000000123LL, 1700000000123000LL},         /* ms */
        {1700000000123456LL, 1700000000123456LL},      /* µs */
        {1700000000123456789LL, 1700000000123456LL},   /* ns */
        {-1700000000, -1700000000000000LL},            /* s, pre-1970 */
        {-1700000000123456789LL, -1700000000123457LL}, /* ns floors toward -inf */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&P);
        row_item("m", cases[i].t);
        ok();
        assert_int_equal(B("m")->time_us[0], cases[i].want_us);
    }
    /* float seconds with a fraction */
    buf_reset(&P);
    pmap(3); pstr("m"); pstr("m"); pstr("t"); pf64(1700000000.25); pstr("fields"); pmap(1);
    pstr("v"); pint(1);
    ok();
    assert_int_equal(B("m")->time_us[0], 1700000000250000LL);
    (void)state;
}

static void columnar(size_t n, int with_tagkeys)
{
    pmap(with_tagkeys ? 3 : 2);
    pstr("m"); pstr("cpu");
    if (with_tagkeys) {
        pstr("tag_keys"); parr(1); pstr("host");
    }
    pstr("columns"); pmap(5);
    pstr("time"); parr(n);
    for (size_t i = 0; i < n; i++)
        pint(1700000000000LL + (int64_t)i); /* ms from the first value */
    pstr("host"); parr(n);
    for (size_t i = 0; i < n; i++)
        pstr(i % 2 ? "a" : "b");
    pstr("usage"); parr(n);
    for (size_t i = 0; i < n; i++) {
        if (i == 1) pnil(); else pf64((double)i + 0.5);
    }
    pstr("_internal"); parr(n);
    for (size_t i = 0; i < n; i++)
        pint(1);
    pstr("cnt"); parr(n);
    for (size_t i = 0; i < n; i++)
        pint((int64_t)i);
}

static void test_columnar(void **state)
{
    struct batch *b;
    (void)state;
    buf_reset(&P);
    columnar(4, 1);
    ok();
    b = B("cpu");
    assert_int_equal(b->nrows, 4);
    assert_int_equal(R.nrows, 4);
    assert_int_equal(b->time_us[3], 1700000000003000LL);
    assert_true(C(b, "host")->is_tag);
    assert_string_equal(S(b, "host", 1), "a");
    assert_true(F(b, "usage", 0) == 0.5);
    assert_false(batch_is_valid(C(b, "usage"), 1)); /* nil -> NULL */
    assert_true(F(b, "usage", 3) == 3.5);
    assert_null(batch_find_col(b, "_internal", 9)); /* dropped */
    assert_int_equal(((int64_t *)C(b, "cnt")->data)[2], 2);
    /* without tag_keys, string columns are string fields */
    buf_reset(&P);
    columnar(3, 0);
    ok();
    assert_false(C(B("cpu"), "host")->is_tag);
}

/* The columns of a columnar item are walked once, with a fast skip for arrays of
 * one fixed-size kind; every layout (mixed kinds, str 8, keys after "columns",
 * more columns than scan_item records, repeated "columns") decodes to the values. */
static void pstr8(const char *s) /* str 8 even when short, as some encoders write */
{
    size_t n = strlen(s);
    u8(0xd9); u8((uint8_t)n);
    buf_append(&P, s, n);
}

static void skip_item(size_t n, int ncols_extra, int columns_first)
{
    char name[32];
    pmap(columns_first ? 4 : 3);
    if (!columns_first) {
        pstr("m"); pstr("cpu");
    }
    pstr("columns"); pmap((size_t)(6 + ncols_extra));
    pstr("time"); parr(n);
    for (size_t i = 0; i < n; i++)
        puint(1700000000000000ULL + i); /* one 9-byte kind: fast skip */
    pstr("h8"); parr(n); /* str 8 of one length, then of another */
    for (size_t i = 0; i < n; i++)
        pstr8(i < n / 2 ? "server001" : "srv2");
    pstr("mix"); parr(n); /* fixstr and str 8 alternating */
    for (size_t i = 0; i < n; i++) {
        if (i % 2) pstr8("b"); else pstr("a");
    }
    pstr("ints"); parr(n); /* fixints, then 9-byte ints, then negatives */
    for (size_t i = 0; i < n; i++)
        pint(i < n / 3 ? (int64_t)i : i < 2 * n / 3 ? (int64_t)i * 1000000000LL : -(int64_t)i - 40);
    pstr("f"); parr(n); /* doubles with a NULL in the middle and a float 32 at the end */
    for (size_t i = 0; i < n; i++) {
        if (i == n / 2) pnil(); else if (i == n - 1) pf32(0.5f); else pf64((double)i / 4);
    }
    pstr("_skipped"); parr(n);
    for (size_t i = 0; i < n; i++) {
        parr(1); pmap(1); pstr("k"); pstr("v"); /* nested values: never decoded */
    }
    for (int c = 0; c < ncols_extra; c++) {
        snprintf(name, sizeof(name), "x%02d", c);
        pstr(name); parr(n);
        for (size_t i = 0; i < n; i++)
            pint(c);
    }
    if (columns_first) {
        pstr("m"); pstr("cpu");
    }
    pstr("tag_keys"); parr(1); pstr("h8");
    if (columns_first) {
        pstr("zz"); pmap(1); pstr("k"); parr(2); pint(1); pstr("x"); /* unknown key */
    }
}

static void check_skip_item(size_t n, int ncols_extra)
{
    struct batch *b = B("cpu");
    char name[32];
    assert_int_equal(b->nrows, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b->time_us[i], 1700000000000000LL + (int64_t)i);
        assert_string_equal(S(b, "h8", i), i < n / 2 ? "server001" : "srv2");
        assert_string_equal(S(b, "mix", i), i % 2 ? "b" : "a");
        assert_int_equal(((int64_t *)C(b, "ints")->data)[i],
                         i < n / 3 ? (int64_t)i : i < 2 * n / 3 ? (int64_t)i * 1000000000LL
                                                                : -(int64_t)i - 40);
        if (i == n / 2)
            assert_false(batch_is_valid(C(b, "f"), i));
        else
            assert_true(F(b, "f", i) == (i == n - 1 ? 0.5 : (double)i / 4));
    }
    assert_true(C(b, "h8")->is_tag);
    assert_null(batch_find_col(b, "_skipped", 8));
    for (int c = 0; c < ncols_extra; c++) {
        snprintf(name, sizeof(name), "x%02d", c);
        assert_int_equal(((int64_t *)C(b, name)->data)[n - 1], c);
    }
}

static void test_columnar_skip_paths(void **state)
{
    static const size_t sizes[] = {2, 3, 17, 1000};
    (void)state;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (int first = 0; first < 2; first++) {
            for (int extra = 0; extra <= 70; extra += 70) { /* 76 columns: past the record */
                buf_reset(&P);
                skip_item(sizes[s], extra, first);
                ok();
                check_skip_item(sizes[s], extra);
            }
        }
    }
    /* two items in a batch, and the same body cut anywhere in its last column */
    buf_reset(&P);
    parr(2);
    skip_item(40, 0, 1);
    skip_item(40, 3, 0);
    ok();
    assert_int_equal(B("cpu")->nrows, 80);
    for (size_t cut = P.len - 40; cut < P.len; cut++) {
        ingest_result_release(&R);
        errbuf_init(&EB);
        assert_int_equal(ingest_msgpack_decode((const uint8_t *)P.data, cut, NOW, NULL, &R, &EB),
                         ERR_PARSE);
        assert_int_equal(R.nbatches, 0);
    }
    /* "columns" twice: the last one counts, as for every key */
    buf_reset(&P);
    pmap(3); pstr("columns"); pmap(1); pstr("time"); parr(1); pint(5);
    pstr("m"); pstr("cpu");
    pstr("columns"); pmap(2); pstr("time"); parr(2); puint(1700000000000000ULL);
    puint(1700000000000001ULL); pstr("v"); parr(2); pf64(1); pf64(2);
    ok();
    assert_int_equal(B("cpu")->nrows, 2);
    assert_true(F(B("cpu"), "v", 1) == 2);
    /* a uniform column whose stride runs past the body is truncated, not skipped */
    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("columns"); pmap(1); pstr("time"); parr(3);
    puint(1700000000000000ULL); puint(1700000000000001ULL); u8(0xcf); be(1, 4);
    bad("item 0: invalid MessagePack: truncated or malformed value");
}

static void test_batch_and_array_forms(void **state)
{
    (void)state;
    buf_reset(&P);
    pmap(1); pstr("batch"); parr(3);
    row_item("cpu", 1700000000);
    columnar(2, 1);
    row_item("mem", 1700000001);
    ok();
    assert_int_equal(R.nbatches, 2);
    assert_int_equal(B("cpu")->nrows, 3);
    assert_int_equal(B("mem")->nrows, 1);
    assert_int_equal(R.nrows, 4);
    /* cpu row item set region; columnar rows have it NULL */
    assert_false(batch_is_valid(C(B("cpu"), "region"), 1));

    buf_reset(&P);
    parr(2);
    row_item("a", 1);
    row_item("b", 2);
    ok();
    assert_int_equal(R.nbatches, 2);
}

static void test_errors(void **state)
{
    (void)state;
    buf_reset(&P);
    parr(3);
    row_item("a", 1);
    row_item("b", 2);
    pmap(2); pstr("m"); pstr("c"); pstr("tags"); pmap(0);
    bad("item 2: missing 'fields'");

    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("columns"); pmap(2);
    pstr("time"); parr(3); pint(1); pint(2); pint(3);
    pstr("v"); parr(2); pf64(1); pf64(2);
    bad("item 0: column 'v' has 2 values, column 'time' has 3");

    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("columns"); pmap(1);
    pstr("v"); parr(1); pf64(1);
    bad("item 0: columnar item has no 'time' column");

    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("columns"); pmap(2);
    pstr("time"); parr(3); pint(1); pint(2); pint(3);
    pstr("v"); parr(3); pf64(1); pf64(2); pstr("x");
    bad("item 0: column 'v' row 2: field type conflict: field 'v' is float, got string");

    buf_reset(&P);
    parr(2);
    row_item("a", 1);
    pmap(2); pstr("m"); pstr("a"); pstr("fields"); pmap(1); pstr("v"); pstr("s");
    bad("item 1: field type conflict: field 'v' is float, got string");

    buf_reset(&P);
    pmap(2); pstr("m"); pint(5); pstr("fields"); pmap(1); pstr("v"); pint(1);
    bad("item 0: 'm' must be a string, got integer");

    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("fields"); pmap(1); pstr("v"); parr(0);
    bad("item 0: field 'v': unsupported type array");

    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("fields"); pmap(0);
    bad("item 0: 'fields' is empty");

    buf_reset(&P);
    pstr("hello");
    bad("invalid MessagePack payload: expected a map or an array, got string");

    buf_reset(&P);
    row_item("a", 1);
    u8(0x01);
    bad("invalid MessagePack payload: 1 trailing bytes");

    buf_reset(&P);
    u8(0xdd); be(0xffffffff, 4); /* array claiming 4 G elements in a 5-byte body */
    bad("invalid MessagePack payload: truncated");

    buf_reset(&P);
    bad("invalid MessagePack payload: empty body");
}

static void test_int_float_widen(void **state)
{
    (void)state;
    buf_reset(&P);
    pmap(2); pstr("m"); pstr("cpu"); pstr("columns"); pmap(2);
    pstr("time"); parr(3); pint(1); pint(2); pint(3);
    pstr("v"); parr(3); pint(1); pf64(2.5); pint(3);
    ok();
    assert_true(F(B("cpu"), "v", 0) == 1.0);
    assert_true(F(B("cpu"), "v", 1) == 2.5);
    assert_true(F(B("cpu"), "v", 2) == 3.0);
}

/* Every proper prefix of a valid payload must fail cleanly (and never crash). */
static void test_truncation(void **state)
{
    size_t full, cut;
    (void)state;
    buf_reset(&P);
    pmap(1); pstr("batch"); parr(3);
    row_item("cpu", 1700000000);
    columnar(3, 1);
    pmap(3); pstr("m"); pstr("x"); pstr("h"); pstr("host"); pstr("f"); parr(2); pf32(1.0f); puint(5);
    full = P.len;
    assert_int_equal(dec(), ERR_OK);
    for (cut = 0; cut < full; cut++) {
        ingest_result_release(&R);
        errbuf_init(&EB);
        assert_int_equal(ingest_msgpack_decode((const uint8_t *)P.data, cut, NOW, NULL, &R, &EB),
                         ERR_PARSE);
        assert_int_equal(R.nbatches, 0);
        assert_true(strlen(EB.msg) > 0);
    }
}

static void test_limits(void **state)
{
    struct ingest_limits lim;
    (void)state;
    ingest_limits_default(&lim);
    lim.max_rows = 3;
    buf_reset(&P);
    columnar(4, 1);
    ingest_result_release(&R);
    assert_int_equal(ingest_msgpack_decode((const uint8_t *)P.data, P.len, NOW, &lim, &R, &EB),
                     ERR_LIMIT);
    assert_string_equal(EB.msg, "item 0: too many rows in one request (max 3)");
    assert_int_equal(R.nbatches, 0);
}

/* ---- parallel decoding: every result and message equals the sequential one -- */

static size_t par_same(const struct ingest_limits *lim, size_t nparts)
{
    struct ingest_result a = {0}, b = {0};
    struct errbuf ea, eb2;
    enum err ra, rb;
    size_t used = 0, used1 = 0;
    char why[256];
    const uint8_t *body = (const uint8_t *)P.data;

    errbuf_init(&ea);
    errbuf_init(&eb2);
    /* the reference: one pass without the series cache */
    ingest_test_series_cache(false);
    ra = ingest_msgpack_decode_parts(body, P.len, NOW, lim, 1, &a, &used1, &ea);
    ingest_test_series_cache(true);
    rb = ingest_msgpack_decode_parts(body, P.len, NOW, lim, nparts, &b, &used, &eb2);
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

/* Row item i of a generated body; `late` items (the last ones) bring surprises. */
static void gen_item(size_t i, int late)
{
    char host[32];
    snprintf(host, sizeof(host), "server%03zu", i % 50);
    if (i % 97 == 5) { /* a columnar item among the rows */
        pmap(2);
        pstr("m"); pstr("mem");
        pstr("columns"); pmap(2);
        pstr("time"); parr(2); pint(1000 + (int64_t)i); pint(2000 + (int64_t)i);
        pstr("free"); parr(2); pf64(1.5); pnil();
        return;
    }
    pmap(5);
    pstr("m"); pstr(late == 2 ? "disk" : "cpu");
    pstr("t"); pint(1700000000000 + (int64_t)i);
    pstr("h"); pstr(host);
    pstr("tags"); pmap(1); pstr("region"); pstr(i % 2 ? "us" : "eu");
    pstr("fields"); pmap(3);
    pstr("idle"); if (late == 1) pf64(0.5); else pint((int64_t)i); /* late: int -> float */
    pstr("opt"); if (i < 100) pnil(); else pbool(i % 3 == 0); /* NULL, then typed */
    pstr(late == 3 ? "newcol" : "user"); pf64((double)i / 4);
}

static void gen_items(size_t n, size_t nlate, int late, int wrap)
{
    size_t i;
    buf_release(&P);
    buf_init(&P, 0);
    if (wrap) {
        pmap(1);
        pstr("batch");
    }
    parr(n);
    for (i = 0; i < n; i++)
        gen_item(i, i >= n - nlate ? late : 0);
}

static void test_parallel_same_result(void **state)
{
    size_t k;
    int late;
    (void)state;

    for (late = 0; late <= 3; late++) {
        gen_items(3000, 20, late, late == 2);
        for (k = 2; k <= INGEST_MAX_PARTS; k++)
            assert_true(par_same(NULL, k) > 1);
    }
    gen_items(1, 0, 0, 0);
    assert_int_equal(par_same(NULL, 2), 1); /* fewer items than parts */
    /* a single item (not an array) is never cut */
    buf_release(&P);
    buf_init(&P, 0);
    gen_item(7, 0);
    assert_int_equal(par_same(NULL, 4), 1);
}

static void test_parallel_errors(void **state)
{
    struct ingest_limits lim;
    size_t i;
    (void)state;

    /* a malformed item late in the body: the message names its index */
    gen_items(2000, 0, 0, 0);
    P.data[P.len - 30] = (char)0xc1; /* never-used byte inside the last item */
    assert_int_equal(par_same(NULL, 3), 0);
    /* type conflict across parts: 'idle' integer early, string late */
    gen_items(2000, 0, 0, 0);
    P.len = 0;
    parr(2001);
    for (i = 0; i < 2000; i++)
        gen_item(i, 0);
    pmap(3);
    pstr("m"); pstr("cpu");
    pstr("h"); pstr("x");
    pstr("fields"); pmap(1); pstr("idle"); pstr("text");
    assert_int_equal(par_same(NULL, 2), 0);
    /* a tag named like a field of earlier parts */
    P.len = 0;
    parr(2001);
    for (i = 0; i < 2000; i++)
        gen_item(i, 0);
    pmap(3);
    pstr("m"); pstr("cpu");
    pstr("tags"); pmap(1); pstr("user"); pstr("x");
    pstr("fields"); pmap(1); pstr("v"); pint(1);
    assert_int_equal(par_same(NULL, 4), 0);
    /* truncated body: the last part runs off the end */
    gen_items(2000, 0, 0, 0);
    P.len -= 3;
    assert_int_equal(par_same(NULL, 2), 0);
    /* trailing bytes after the array */
    gen_items(2000, 0, 0, 0);
    pint(1);
    assert_int_equal(par_same(NULL, 2), 0);
    /* caps passed only by the sum of the parts */
    gen_items(2000, 0, 0, 0);
    ingest_limits_default(&lim);
    lim.max_rows = 2000 + 21 - 1; /* 21 columnar items of 2 rows */
    assert_int_equal(par_same(&lim, 4), 0);
    ingest_limits_default(&lim);
    lim.max_measurements = 1;
    assert_int_equal(par_same(&lim, 2), 0);
}

/* One row item; order 0: m, h, tags, fields; 1: m, tags, h, fields; 2: m, h, t,
 * tags, fields (the time lies between: no cache key). */
static void series_item(const char *m, const char *h, const char *region, int order, int64_t v)
{
    pmap(order == 2 ? 5 : 4);
    pstr("m"); pstr(m);
    if (order == 1) {
        pstr("tags"); pmap(2); pstr("region"); pstr(region); pstr("rack"); pint(v % 2);
        pstr("h"); pstr(h);
    } else {
        pstr("h"); pstr(h);
        if (order == 2) { pstr("t"); pint(1700000000000 + v); }
        pstr("tags"); pmap(2); pstr("region"); pstr(region); pstr("rack"); pint(v % 2);
    }
    pstr("fields"); pmap(1); pstr("v"); pint(v);
}

/* Repeated "h"/"tags" bytes take their tags from the series cache: every value
 * must be what a lookup per tag gives. */
static void test_series_cache(void **state)
{
    struct batch *b;
    size_t i;
    (void)state;

    buf_release(&P);
    buf_init(&P, 0);
    parr(40);
    for (i = 0; i < 40; i++)
        series_item(i % 5 == 4 ? "mem" : "cpu", i % 3 ? "h1" : "h2", i % 4 ? "eu" : "us",
                    (int)(i % 3), (int64_t)i);
    assert_int_equal(par_same(NULL, 1), 1);
    ok();
    b = B("cpu");
    assert_int_equal(b->nrows, 32);
    for (i = 0; i < 40; i++) {
        size_t row = i - (i + 1) / 5; /* rows of cpu before item i */
        if (i % 5 == 4)
            continue;
        assert_string_equal(S(b, "host", row), i % 3 ? "h1" : "h2");
        assert_string_equal(S(b, "region", row), i % 4 ? "eu" : "us");
        assert_string_equal(S(b, "rack", row), i % 2 ? "1" : "0");
    }
    /* a nil tag stores nothing, cached or not; "host" in tags and "h": h wins */
    buf_release(&P);
    buf_init(&P, 0);
    parr(4);
    for (i = 0; i < 4; i++) {
        pmap(4);
        pstr("m"); pstr("cpu");
        pstr("tags"); pmap(2); pstr("host"); pstr("t"); pstr("dc"); if (i < 2) pnil(); else pstr("x");
        pstr("h"); pstr("hh");
        pstr("fields"); pmap(1); pstr("v"); pint((int64_t)i);
    }
    assert_int_equal(par_same(NULL, 1), 1);
    ok();
    b = B("cpu");
    for (i = 0; i < 4; i++) {
        assert_string_equal(S(b, "host", i), "hh");
        assert_int_equal(batch_is_valid(C(b, "dc"), i), i >= 2);
    }
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
        cmocka_unit_test_teardown(test_row_item, teardown),
        cmocka_unit_test_teardown(test_positional_and_missing_time, teardown),
        cmocka_unit_test_teardown(test_time_units, teardown),
        cmocka_unit_test_teardown(test_columnar, teardown),
        cmocka_unit_test_teardown(test_columnar_skip_paths, teardown),
        cmocka_unit_test_teardown(test_batch_and_array_forms, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
        cmocka_unit_test_teardown(test_int_float_widen, teardown),
        cmocka_unit_test_teardown(test_truncation, teardown),
        cmocka_unit_test_teardown(test_limits, teardown),
        cmocka_unit_test_teardown(test_series_cache, teardown),
        cmocka_unit_test_teardown(test_parallel_same_result, teardown),
        cmocka_unit_test_teardown(test_parallel_errors, teardown),
    };
    int rc;
    buf_init(&P, 0);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    buf_release(&P);
    return rc;
}
