/* test_s3.c - the network-independent parts of the S3 backend: URL and key
 * building, XML error/tag parsing, the LRU cache's accounting and leases, and
 * the error classification of an unreachable endpoint (a closed local port). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "storage/cache.h"
#include "storage/s3.h"

static char *url_of(const struct s3_config *cfg, const char *key, const char *query)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(s3_url_build(cfg, key, query, &b), ERR_OK);
    return buf_steal(&b, NULL);
}

static void test_url_path_style(void **state)
{
    struct s3_config cfg = {.endpoint = "http://127.0.0.1:9000/", .bucket = "arc",
                            .path_style = true};
    char *u;
    (void)state;

    u = url_of(&cfg, "db/cpu/2024/01/02/03/f 1+x.parquet", NULL);
    assert_string_equal(u, "http://127.0.0.1:9000/arc/db/cpu/2024/01/02/03/f%201%2Bx.parquet");
    free(u);
    u = url_of(&cfg, NULL, "list-type=2&prefix=a%2Fb");
    assert_string_equal(u, "http://127.0.0.1:9000/arc?list-type=2&prefix=a%2Fb");
    free(u);
}

static void test_url_virtual_host(void **state)
{
    struct s3_config cfg = {.endpoint = "s3.eu-west-1.amazonaws.com", .bucket = "my-bucket",
                            .use_ssl = true, .path_style = false};
    char *u;
    (void)state;

    u = url_of(&cfg, "k/a~b_c.d", "uploads=");
    assert_string_equal(u, "https://my-bucket.s3.eu-west-1.amazonaws.com/k/a~b_c.d?uploads=");
    free(u);
    cfg.use_ssl = false;
    u = url_of(&cfg, NULL, NULL);
    assert_string_equal(u, "http://my-bucket.s3.eu-west-1.amazonaws.com/");
    free(u);
}

static void test_uri_encode(void **state)
{
    struct buf b;
    (void)state;

    buf_init(&b, 0);
    assert_int_equal(s3_uri_encode(&b, "a/b c=d&\xc3\xa9", false), ERR_OK);
    assert_string_equal(b.data, "a%2Fb%20c%3Dd%26%C3%A9");
    buf_reset(&b);
    assert_int_equal(s3_uri_encode(&b, "a/b", true), ERR_OK);
    assert_string_equal(b.data, "a/b");
    buf_release(&b);
}

static void test_object_key(void **state)
{
    char out[64];
    (void)state;

    assert_int_equal(s3_object_key("", "db/m/x.parquet", out, sizeof(out)), ERR_OK);
    assert_string_equal(out, "db/m/x.parquet");
    assert_int_equal(s3_object_key("arc/prod/", "/db/m/x.parquet", out, sizeof(out)), ERR_OK);
    assert_string_equal(out, "arc/prod/db/m/x.parquet");
    assert_int_equal(s3_object_key(NULL, "k", out, sizeof(out)), ERR_OK);
    assert_string_equal(out, "k");
    assert_int_equal(s3_object_key("p", "0123456789012345678901234567890123456789"
                                        "0123456789012345678901234567890123456789",
                                   out, sizeof(out)),
                     ERR_LIMIT);
}

static void test_error_parse(void **state)
{
    const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                      "SignatureDoesNotMatch</Code><Message>The request signature we calculated "
                      "does not match &amp; &lt;ok&gt; &#65;</Message><Key>a</Key></Error>";
    char code[64], msg[256];
    (void)state;

    assert_true(s3_error_parse(xml, strlen(xml), code, sizeof(code), msg, sizeof(msg)));
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "The request signature we calculated does not match & <ok> A");
    assert_false(s3_error_parse("<html>bad gateway</html>", 24, code, sizeof(code), msg,
                                sizeof(msg)));
    assert_string_equal(code, "");
    assert_string_equal(msg, "");
    assert_false(s3_error_parse(NULL, 0, code, sizeof(code), msg, sizeof(msg)));
    /* truncation keeps a terminated prefix */
    assert_true(s3_error_parse(xml, strlen(xml), code, 5, msg, sizeof(msg)));
    assert_string_equal(code, "Sign");
}

static void test_xml_tag(void **state)
{
    const char *xml = "<R><UploadId>abc+/=</UploadId><IsTruncated>true</IsTruncated>"
                      "<Contents><Key>a&amp;b</Key></Contents><Unclosed>x</R>";
    char v[64];
    (void)state;

    assert_true(s3_xml_tag(xml, strlen(xml), "UploadId", v, sizeof(v)));
    assert_string_equal(v, "abc+/=");
    assert_true(s3_xml_tag(xml, strlen(xml), "Key", v, sizeof(v)));
    assert_string_equal(v, "a&b");
    assert_false(s3_xml_tag(xml, strlen(xml), "Unclosed", v, sizeof(v)));
    assert_false(s3_xml_tag(xml, strlen(xml), "Missing", v, sizeof(v)));
    assert_string_equal(v, "");
}

/* ---- cache ------------------------------------------------------------------- */

static char g_dir[256];

static void put_file(struct s3cache *c, const char *key, size_t bytes)
{
    char path[512], dir[512], *slash;
    FILE *f;
    char *zeros = calloc(1, bytes ? bytes : 1);

    assert_int_equal(s3cache_path(c, key, path, sizeof(path)), ERR_OK);
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    *slash = '\0';
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(zeros, 1, bytes, f), bytes);
    fclose(f);
    free(zeros);
}

static bool on_disk(struct s3cache *c, const char *key)
{
    char path[512];
    assert_int_equal(s3cache_path(c, key, path, sizeof(path)), ERR_OK);
    return access(path, F_OK) == 0;
}

static int cache_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/arc-test-s3cache-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int cache_teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd);
}

static void test_cache_lru(void **state)
{
    struct s3cache_opts o = {.dir = g_dir, .max_bytes = 3000, .pin_ms = 0};
    struct s3cache *c;
    struct s3cache_stats s;
    struct metrics *m = metrics_new();
    struct errbuf eb;
    (void)state;

    o.metrics = m;
    errbuf_init(&eb);
    assert_int_equal(s3cache_open(&o, &c, &eb), ERR_OK);
    put_file(c, "db/m/a.parquet", 1000);
    s3cache_add(c, "db/m/a.parquet", 1000);
    put_file(c, "db/m/b.parquet", 1000);
    s3cache_add(c, "db/m/b.parquet", 1000);
    put_file(c, "db/m/c.parquet", 1000);
    s3cache_add(c, "db/m/c.parquet", 1000);
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 3000);
    assert_int_equal(s.files, 3);
    assert_int_equal(s.evictions, 0);

    /* a is used again: b becomes the least recently used */
    assert_true(s3cache_acquire(c, "db/m/a.parquet"));
    assert_false(s3cache_acquire(c, "db/m/zzz.parquet"));
    put_file(c, "db/m/d.parquet", 1000);
    s3cache_add(c, "db/m/d.parquet", 1000);
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 3000);
    assert_int_equal(s.files, 3);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 1);
    assert_false(on_disk(c, "db/m/b.parquet"));
    assert_true(on_disk(c, "db/m/a.parquet"));
    assert_false(s3cache_acquire(c, "db/m/b.parquet"));

    /* re-adding a key replaces its size instead of counting it twice */
    s3cache_add(c, "db/m/d.parquet", 500);
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 2500);

    s3cache_remove(c, "db/m/a.parquet");
    assert_false(on_disk(c, "db/m/a.parquet"));
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 1500);
    assert_int_equal(s.files, 2);
    assert_int_equal(metric_value(metrics_gauge(m, "arc_storage_cache_bytes", "", NULL)), 1500);
    assert_int_equal(
        metric_value(metrics_counter(m, "arc_storage_cache_evictions_total", "", NULL)), 1);
    s3cache_free(c);

    /* reopening rebuilds the index from the directory and clears temp files */
    {
        char tmp[512];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s/.tmp/stale.download", g_dir);
        f = fopen(tmp, "w");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(s3cache_open(&o, &c, &eb), ERR_OK);
        s3cache_stats(c, &s);
        assert_int_equal(s.files, 2);
        assert_int_equal(s.bytes, 1000 + 1000); /* d's file on disk is 1000 bytes */
        assert_int_equal(access(tmp, F_OK), -1);
        s3cache_free(c);
    }
    metrics_free(m);
}

static void test_cache_pins(void **state)
{
    struct s3cache_opts o = {.dir = g_dir, .max_bytes = 1500, .pin_ms = 60000};
    struct s3cache *c;
    struct s3cache_stats s;
    struct errbuf eb;
    (void)state;

    errbuf_init(&eb);
    assert_int_equal(s3cache_open(&o, &c, &eb), ERR_OK);
    put_file(c, "p/1.parquet", 1000);
    s3cache_add(c, "p/1.parquet", 1000);
    put_file(c, "p/2.parquet", 1000);
    s3cache_add(c, "p/2.parquet", 1000);
    /* both leased: over the cap rather than deleting a file a query holds */
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 2000);
    assert_int_equal(s.evictions, 0);
    assert_int_equal(s3cache_evict(c), 0);
    assert_true(on_disk(c, "p/1.parquet"));
    s3cache_free(c);

    /* without leases the same state evicts down to the cap, oldest first */
    o.pin_ms = 0;
    assert_int_equal(s3cache_open(&o, &c, &eb), ERR_OK);
    s3cache_stats(c, &s);
    assert_int_equal(s.bytes, 1000);
    assert_int_equal(s.files, 1);
    s3cache_free(c);
}

/* ---- client errors without a server ------------------------------------------- */

static void test_client_config_errors(void **state)
{
    struct s3_config cfg = {.endpoint = "", .bucket = "b"};
    struct s3_client *c = NULL;
    struct errbuf eb;
    (void)state;

    errbuf_init(&eb);
    assert_int_equal(s3_client_new(&cfg, &c, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "endpoint"));
    cfg.endpoint = "http://x";
    cfg.bucket = NULL;
    assert_int_equal(s3_client_new(&cfg, &c, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "bucket"));
    assert_null(c);
}

static void test_unreachable_is_transient(void **state)
{
    /* port 1 on loopback: connection refused at once */
    struct s3_config cfg = {.endpoint = "http://127.0.0.1:1", .bucket = "bk",
                            .access_key = "a", .secret_key = "s", .path_style = true,
                            .max_attempts = 2, .backoff_ms = 10};
    struct s3_client *c = NULL;
    struct errbuf eb;
    bool there = true;
    enum err rc;
    (void)state;

    errbuf_init(&eb);
    assert_int_equal(s3_client_new(&cfg, &c, &eb), ERR_OK);
    rc = s3_exists(c, "db/m/k.parquet", &there, NULL, &eb);
    assert_int_equal(rc, ERR_BUSY);
    assert_true(s3_err_is_transient(rc));
    assert_non_null(strstr(eb.msg, "endpoint=http://127.0.0.1:1"));
    assert_non_null(strstr(eb.msg, "bucket=bk"));
    assert_non_null(strstr(eb.msg, "key=db/m/k.parquet"));
    assert_true(there); /* untouched on failure */
    errbuf_init(&eb);
    rc = s3_put_file(c, "k", "/nonexistent/file.parquet", NULL, &eb);
    assert_int_equal(rc, ERR_IO);
    assert_false(s3_err_is_transient(rc));
    s3_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_path_style),
        cmocka_unit_test(test_url_virtual_host),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_object_key),
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_xml_tag),
        cmocka_unit_test_setup_teardown(test_cache_lru, cache_setup, cache_teardown),
        cmocka_unit_test_setup_teardown(test_cache_pins, cache_setup, cache_teardown),
        cmocka_unit_test(test_client_config_errors),
        cmocka_unit_test(test_unreachable_is_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
