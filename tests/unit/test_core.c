/* test_core.c - unit tests for core: buf caps, JSON string escaping, errbuf,
 * compression caps (gzip bomb, zstd bomb, multi-member gzip), metrics text,
 * workpool ordering and back-pressure, RFC 3339 formatting (pre-1970 too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/compress.h"
#include "core/err.h"
#include "core/metrics.h"
#include "core/workpool.h"

static void test_buf_cap(void **state)
{
    struct buf b;
    (void)state;

    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "0123456789", 10), ERR_OK);
    assert_int_equal(buf_append(&b, "x", 1), ERR_LIMIT); /* refused before allocating */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "ab"), ERR_OK);
    assert_string_equal(b.data, "42-ab");
    assert_int_equal(buf_printf(&b, "%s", "too long for it"), ERR_LIMIT);
    buf_release(&b);
}

static void test_json_str(void **state)
{
    struct buf b;
    (void)state;

    buf_init(&b, 0);
    buf_append_json_str(&b, "a\"b\\c\n\x01 é", strlen("a\"b\\c\n\x01 é"));
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001 é\"");
    buf_reset(&b);
    buf_append_json_str(&b, "x\xff" "y", 3); /* invalid UTF-8 -> U+FFFD */
    assert_string_equal(b.data, "\"x\xEF\xBF\xBDy\"");
    buf_reset(&b);
    buf_append_json_str(&b, "\xed\xa0\x80", 3); /* surrogate: invalid */
    assert_string_equal(b.data, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    buf_release(&b);
}

static void test_errbuf(void **state)
{
    struct errbuf eb;
    (void)state;

    errbuf_init(&eb);
    assert_int_equal(errbuf_set(&eb, ERR_PARSE, "line %d: bad", 7), ERR_PARSE);
    errbuf_prefix(&eb, "item %d", 3);
    assert_string_equal(eb.msg, "item 3: line 7: bad");
    assert_string_equal(err_name(ERR_LIMIT), "limit");
}

static void roundtrip(enum compress_kind k)
{
    struct buf z, out;
    struct errbuf eb;
    char *src = malloc(100000);
    size_t i;

    for (i = 0; i < 100000; i++)
        src[i] = (char)('a' + (i * 7) % 26);
    buf_init(&z, 0);
    buf_init(&out, 0);
    assert_int_equal(compress_deflate(k, src, 100000, &z), ERR_OK);
    assert_int_equal(compress_sniff(z.data, z.len), k);
    assert_int_equal(compress_inflate(k, z.data, z.len, 100000, &out, &eb), ERR_OK);
    assert_int_equal(out.len, 100000);
    assert_memory_equal(out.data, src, 100000);
    /* one byte under the cap: refused as a bomb */
    buf_reset(&out);
    assert_int_equal(compress_inflate(k, z.data, z.len, 99999, &out, &eb), ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "exceeds"));
    /* corrupt: truncated stream */
    buf_reset(&out);
    assert_int_not_equal(compress_inflate(k, z.data, z.len / 2, 1 << 20, &out, &eb), ERR_OK);
    buf_release(&z);
    buf_release(&out);
    free(src);
}

static void test_gzip(void **state)
{
    (void)state;
    roundtrip(COMPRESS_GZIP);
}

static void test_zstd(void **state)
{
    (void)state;
    roundtrip(COMPRESS_ZSTD);
}

static void test_bomb(void **state)
{
    /* 64 MiB of zeros compresses to ~64 KiB; with an 8 MiB cap it must fail
     * without producing more than the cap */
    size_t n = 64u << 20;
    char *zeros = calloc(1, n);
    struct buf z, out;
    struct errbuf eb;
    enum compress_kind kinds[] = {COMPRESS_GZIP, COMPRESS_ZSTD};
    size_t i;
    (void)state;

    for (i = 0; i < 2; i++) {
        buf_init(&z, 0);
        buf_init(&out, 0);
        assert_int_equal(compress_deflate(kinds[i], zeros, n, &z), ERR_OK);
        assert_true(z.len < n / 100);
        assert_int_equal(compress_inflate(kinds[i], z.data, z.len, 8u << 20, &out, &eb),
                         ERR_LIMIT);
        assert_true(out.cap <= (8u << 20) + 1);
        buf_release(&z);
        buf_release(&out);
    }
    free(zeros);
}

static void test_gzip_multimember(void **state)
{
    struct buf z, out;
    struct errbuf eb;
    (void)state;

    buf_init(&z, 0);
    buf_init(&out, 0);
    compress_deflate(COMPRESS_GZIP, "hello ", 6, &z);
    compress_deflate(COMPRESS_GZIP, "world", 5, &z);
    assert_int_equal(compress_inflate(COMPRESS_GZIP, z.data, z.len, 1000, &out, &eb), ERR_OK);
    assert_string_equal(out.data, "hello world");
    buf_release(&z);
    buf_release(&out);
}

static void test_encoding_names(void **state)
{
    enum compress_kind k;
    (void)state;

    assert_int_equal(compress_kind_from_encoding("GZIP", &k), ERR_OK);
    assert_int_equal(k, COMPRESS_GZIP);
    assert_int_equal(compress_kind_from_encoding("zstd", &k), ERR_OK);
    assert_int_equal(k, COMPRESS_ZSTD);
    assert_int_equal(compress_kind_from_encoding(NULL, &k), ERR_OK);
    assert_int_equal(k, COMPRESS_NONE);
    assert_int_equal(compress_kind_from_encoding("br", &k), ERR_INVAL);
}

static void test_metrics(void **state)
{
    struct metrics *m = metrics_new();
    struct metric *c, *c2, *h;
    struct buf b;
    const double bounds[] = {0.1, 1};
    (void)state;

    c = metrics_counter(m, "arc_x_total", "X things", "route=\"/a\"");
    c2 = metrics_counter(m, "arc_x_total", "X things", "route=\"/a\"");
    assert_ptr_equal(c, c2);
    metric_add(c, 3);
    metrics_counter(m, "arc_y_total", "Y", NULL);
    metric_add(metrics_counter(m, "arc_x_total", "X things", "route=\"/b\""), 1);
    h = metrics_histogram(m, "arc_lat_seconds", "L", NULL, bounds, 2);
    metric_observe(h, 0.05);
    metric_observe(h, 0.5);
    metric_observe(h, 5);
    buf_init(&b, 0);
    metrics_render(m, &b);
    assert_non_null(strstr(b.data, "# TYPE arc_x_total counter\narc_x_total{route=\"/a\"} 3\n"
                                   "arc_x_total{route=\"/b\"} 1\n"));
    assert_non_null(strstr(b.data, "arc_lat_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(b.data, "arc_lat_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "arc_lat_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "arc_lat_seconds_count 3\n"));
    buf_release(&b);
    metrics_free(m);
    assert_true(metrics_rss_bytes() > 0);
}

static _Atomic int g_sum;
static pthread_mutex_t g_gate = PTHREAD_MUTEX_INITIALIZER;

static void job_add(void *arg)
{
    atomic_fetch_add(&g_sum, (int)(intptr_t)arg);
}

static void job_block(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_gate);
    pthread_mutex_unlock(&g_gate);
}

static void test_workpool(void **state)
{
    struct workpool *p = workpool_new(2, 1000, "t");
    int i;
    (void)state;

    for (i = 1; i <= 100; i++)
        assert_int_equal(workpool_submit(p, job_add, (void *)(intptr_t)i), ERR_OK);
    workpool_free(p); /* drains the queue */
    assert_int_equal(atomic_load(&g_sum), 5050);

    /* a full queue answers ERR_BUSY instead of growing */
    pthread_mutex_lock(&g_gate);
    p = workpool_new(1, 2, "t");
    assert_int_equal(workpool_submit(p, job_block, NULL), ERR_OK);
    usleep(50000); /* the worker takes it and blocks */
    assert_int_equal(workpool_submit(p, job_block, NULL), ERR_OK);
    assert_int_equal(workpool_submit(p, job_block, NULL), ERR_OK);
    assert_int_equal(workpool_submit(p, job_block, NULL), ERR_BUSY);
    pthread_mutex_unlock(&g_gate);
    workpool_free(p);
}

static void test_rfc3339(void **state)
{
    char s[40];
    (void)state;

    clock_format_rfc3339_us(1755871200123456LL, s, sizeof(s));
    assert_string_equal(s, "2025-08-22T14:00:00.123456Z");
    clock_format_rfc3339_us(-1, s, sizeof(s)); /* one µs before the epoch */
    assert_string_equal(s, "1969-12-31T23:59:59.999999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),      cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_errbuf),       cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_zstd),         cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_gzip_multimember), cmocka_unit_test(test_encoding_names),
        cmocka_unit_test(test_metrics),      cmocka_unit_test(test_workpool),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
