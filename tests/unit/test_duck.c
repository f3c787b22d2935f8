/* test_duck.c - the DuckDB module: Parquet written from batches reads back exactly
 * (values, types, NULLs, order, metadata, codec) through the sandboxed query
 * instance, for every writer method; the sandbox refuses files, writes, extensions
 * and SET; cancellation stops a running query. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/mem.h"
#include "duck/duck.h"

struct fix {
    char dir[64];   /* data dir (the query sandbox) */
    char out[64];   /* a second dir outside the sandbox */
    struct duck *d;
};

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    struct fix *f = xcalloc(1, sizeof(*f));
    struct duck_opts o = {0};
    struct errbuf eb;

    errbuf_init(&eb);
    snprintf(f->dir, sizeof(f->dir), "/tmp/arc_duck_XXXXXX");
    snprintf(f->out, sizeof(f->out), "/tmp/arc_duck_out_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_non_null(mkdtemp(f->out));
    o.data_dir = f->dir;
    o.memory_limit_bytes = 512ull << 20;
    o.query_threads = 2;
    if (duck_open(&o, &f->d, &eb) != ERR_OK)
        fail_msg("duck_open: %s", eb.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    duck_close(f->d);
    rm_rf(f->dir);
    rm_rf(f->out);
    free(f);
    return 0;
}

/* Run sql, expect ERR_OK and exactly one row with one VARCHAR column; return a copy
 * of it ("NULL" for NULL). */
static char *q1(struct duck *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *q1(struct duck *d, const char *fmt, ...)
{
    char sql[2048];
    struct duck_result *r;
    struct duck_chunk *c;
    struct errbuf eb;
    const char *s;
    size_t len;
    char *ret;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    errbuf_init(&eb);
    if (duck_query_exec(d, sql, &r, &eb) != ERR_OK)
        fail_msg("%s: %s", sql, eb.msg);
    assert_int_equal(duck_result_ncols(r), 1);
    assert_int_equal(duck_result_col_type(r, 0), DUCK_T_VARCHAR);
    assert_int_equal(duck_result_next_chunk(r, &c, &eb), ERR_OK);
    assert_non_null(c);
    assert_int_equal(duck_chunk_rows(c), 1);
    s = duck_chunk_str(c, 0, 0, &len);
    ret = s ? xstrndup(s, len) : xstrdup("NULL");
    assert_int_equal(duck_result_next_chunk(r, &c, &eb), ERR_OK);
    assert_null(c);
    duck_result_free(r);
    return ret;
}

#define ASSERT_Q(d, want, ...)                                                              \
    do {                                                                                   \
        char *got_ = q1(d, __VA_ARGS__);                                                  \
        assert_string_equal(got_, want);                                                   \
        free(got_);                                                                        \
    } while (0)

/* Expect sql to fail with code; return the message. */
static void expect_fail(struct duck *d, const char *sql, enum err code, const char *needle)
{
    struct duck_result *r = NULL;
    struct errbuf eb;
    enum err rc;

    errbuf_init(&eb);
    rc = duck_query_exec(d, sql, &r, &eb);
    if (rc == ERR_OK) {
        struct duck_chunk *c;
        rc = duck_result_next_chunk(r, &c, &eb); /* may fail while streaming */
        duck_result_free(r);
    }
    if (rc != code)
        fail_msg("%s: want %s got %s (%s)", sql, err_name(code), err_name(rc), eb.msg);
    if (needle && !strstr(eb.msg, needle))
        fail_msg("%s: message '%s' lacks '%s'", sql, eb.msg, needle);
}

/* A batch with every type, NULLs in every nullable column, negative time. */
static struct batch *make_typed_batch(void)
{
    struct batch *b = batch_new("cpu", 3);
    struct batch_col *host = batch_add_col(b, "host", 4, BATCH_STR, true);
    struct batch_col *region = batch_add_col(b, "region", 6, BATCH_STR, true);
    struct batch_col *usage = batch_add_col(b, "usage", 5, BATCH_F64, false);
    struct batch_col *cnt = batch_add_col(b, "count", 5, BATCH_I64, false);
    struct batch_col *big = batch_add_col(b, "big", 3, BATCH_U64, false);
    struct batch_col *ok = batch_add_col(b, "ok", 2, BATCH_BOOL, false);
    struct batch_col *msg = batch_add_col(b, "msg", 3, BATCH_STR, false);
    size_t r;

    r = batch_add_row(b, 1700000000000000);
    batch_set_str(b, host, r, "a", 1);
    batch_set_str(b, region, r, "eu-west", 7);
    batch_set_f64(usage, r, 1.5);
    batch_set_i64(cnt, r, -7);
    batch_set_u64(big, r, UINT64_MAX);
    batch_set_bool(ok, r, true);
    batch_set_str(b, msg, r, "it's a \"long\" string > 12 bytes", 31);

    r = batch_add_row(b, 1700000000000001); /* all fields NULL, region NULL */
    batch_set_str(b, host, r, "b", 1);

    r = batch_add_row(b, -1000000); /* 1969-12-31 23:59:59 */
    batch_set_str(b, host, r, "a", 1);
    batch_set_str(b, region, r, "us", 2);
    batch_set_f64(usage, r, -0.25);
    batch_set_i64(cnt, r, INT64_MIN);
    batch_set_u64(big, r, 0);
    batch_set_bool(ok, r, false);
    batch_set_str(b, msg, r, "", 0);

    r = batch_add_row(b, 1700000000000003); /* only some NULL */
    batch_set_str(b, host, r, "c", 1);
    batch_set_f64(usage, r, 1e300);
    batch_set_bool(ok, r, true);
    return b;
}

static void write_ok(struct duck *d, const struct batch *b, const uint32_t *rows, size_t n,
                     const char *path, const struct duck_parquet_opts *o)
{
    struct errbuf eb;
    errbuf_init(&eb);
    if (duck_write_parquet(d, b, rows, n, path, o, &eb) != ERR_OK)
        fail_msg("write %s: %s", path, eb.msg);
}

/* Read the typed file back with typed accessors and check every cell. */
static void check_typed_file(struct duck *d, const char *path)
{
    static const char *const names[] = {"time", "host", "region", "usage", "count", "big",
                                        "ok", "msg"};
    static const enum duck_type types[] = {DUCK_T_TIMESTAMP, DUCK_T_VARCHAR, DUCK_T_VARCHAR,
                                           DUCK_T_F64, DUCK_T_I64, DUCK_T_U64, DUCK_T_BOOL,
                                           DUCK_T_VARCHAR};
    char sql[512];
    struct duck_result *r;
    struct duck_chunk *c;
    struct errbuf eb;
    const int64_t *t;
    const double *u;
    const int64_t *n;
    const uint64_t *bg;
    const uint8_t *ok;
    const char *s;
    size_t len;

    errbuf_init(&eb);
    snprintf(sql, sizeof(sql), "SELECT * FROM read_parquet('%s')", path);
    if (duck_query_exec(d, sql, &r, &eb) != ERR_OK)
        fail_msg("%s", eb.msg);
    assert_int_equal(duck_result_ncols(r), 8);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(duck_result_col_name(r, i), names[i]);
        assert_int_equal(duck_result_col_type(r, i), types[i]);
    }
    assert_int_equal(duck_result_next_chunk(r, &c, &eb), ERR_OK);
    assert_non_null(c);
    assert_int_equal(duck_chunk_rows(c), 4);
    t = duck_chunk_data(c, 0);
    assert_true(t[0] == 1700000000000000 && t[1] == 1700000000000001 && t[2] == -1000000 &&
                t[3] == 1700000000000003);
    assert_null(duck_chunk_validity(c, 0)); /* time never NULL */
    s = duck_chunk_str(c, 1, 0, &len);
    assert_true(len == 1 && s[0] == 'a');
    s = duck_chunk_str(c, 1, 1, &len);
    assert_true(len == 1 && s[0] == 'b');
    s = duck_chunk_str(c, 1, 3, &len);
    assert_true(len == 1 && s[0] == 'c');
    s = duck_chunk_str(c, 2, 0, &len);
    assert_true(len == 7 && memcmp(s, "eu-west", 7) == 0);
    assert_null(duck_chunk_str(c, 2, 1, &len));
    assert_false(duck_chunk_is_valid(c, 2, 1));
    assert_null(duck_chunk_str(c, 2, 3, &len));
    u = duck_chunk_data(c, 3);
    assert_true(u[0] == 1.5 && u[2] == -0.25 && u[3] == 1e300);
    assert_false(duck_chunk_is_valid(c, 3, 1));
    assert_true(duck_chunk_is_valid(c, 3, 3));
    n = duck_chunk_data(c, 4);
    assert_true(n[0] == -7 && n[2] == INT64_MIN);
    assert_false(duck_chunk_is_valid(c, 4, 1));
    assert_false(duck_chunk_is_valid(c, 4, 3));
    bg = duck_chunk_data(c, 5);
    assert_true(bg[0] == UINT64_MAX && bg[2] == 0);
    assert_false(duck_chunk_is_valid(c, 5, 1));
    ok = duck_chunk_data(c, 6);
    assert_true(ok[0] == 1 && ok[2] == 0 && ok[3] == 1);
    assert_false(duck_chunk_is_valid(c, 6, 1));
    s = duck_chunk_str(c, 7, 0, &len);
    assert_true(len == 31 && memcmp(s, "it's a \"long\" string > 12 bytes", 31) == 0);
    assert_false(duck_chunk_is_valid(c, 7, 1));
    s = duck_chunk_str(c, 7, 2, &len);
    assert_true(s != NULL && len == 0); /* empty string is not NULL */
    assert_null(duck_chunk_str(c, 7, 3, &len));
    assert_int_equal(duck_result_next_chunk(r, &c, &eb), ERR_OK);
    assert_null(c);
    duck_result_free(r);

    /* Types as DuckDB itself sees the file, and the metadata. */
    ASSERT_Q(d, "TIMESTAMP,VARCHAR,VARCHAR,DOUBLE,BIGINT,UBIGINT,BOOLEAN,VARCHAR",
             "SELECT string_agg(column_type, ',') FROM (DESCRIBE SELECT * FROM read_parquet('%s'))",
             path);
    ASSERT_Q(d, "arc_measurement=cpu;arc_tags=host,region;arc_version=" ARC_VERSION,
             "SELECT string_agg(decode(key) || '=' || decode(value), ';' ORDER BY decode(key)) "
             "FROM parquet_kv_metadata('%s')",
             path);
    ASSERT_Q(d, "1969-12-31 23:59:59", "SELECT min(time)::VARCHAR FROM read_parquet('%s')", path);
}

static void test_roundtrip_all_methods(void **state)
{
    struct fix *f = *state;
    struct batch *b = make_typed_batch();
    struct duck_parquet_opts variants[] = {
        {.compression = DUCK_PQ_ZSTD, .zstd_level = 5},
        {.compression = DUCK_PQ_SNAPPY, .strings_per_value = true},
        {.compression = DUCK_PQ_UNCOMPRESSED, .method = DUCK_PQ_APPENDER},
        {.compression = DUCK_PQ_ZSTD, .method = DUCK_PQ_APPENDER, .strings_per_value = true},
    };
    static const char *const codec[] = {"ZSTD", "SNAPPY", "UNCOMPRESSED", "ZSTD"};
    char path[128];

    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        snprintf(path, sizeof(path), "%s/typed%zu.parquet", f->dir, i);
        write_ok(f->d, b, NULL, 0, path, &variants[i]);
        check_typed_file(f->d, path);
        ASSERT_Q(f->d, codec[i],
                 "SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata('%s')",
                 path);
    }
    /* Defaults (o == NULL) are zstd. */
    snprintf(path, sizeof(path), "%s/default.parquet", f->dir);
    write_ok(f->d, b, NULL, 0, path, NULL);
    ASSERT_Q(f->d, "ZSTD",
             "SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata('%s')", path);
    batch_free(b);
}

static void test_selection_rows(void **state)
{
    struct fix *f = *state;
    struct batch *b = make_typed_batch();
    static const uint32_t rows[] = {3, 0, 2};
    static const uint32_t bad[] = {0, 4};
    struct duck_parquet_opts methods[] = {{.method = DUCK_PQ_SCAN},
                                          {.method = DUCK_PQ_APPENDER},
                                          {.strings_per_value = true}};
    struct errbuf eb;
    char path[128];

    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/sel%zu.parquet", f->dir, i);
        write_ok(f->d, b, rows, 3, path, &methods[i]);
        ASSERT_Q(f->d, "1700000000000003:c:NULL:1e+300:NULL|1700000000000000:a:eu-west:1.5:-7|"
                       "-1000000:a:us:-0.25:-9223372036854775808",
                 "SELECT string_agg(concat_ws(':', epoch_us(time), host, coalesce(region, 'NULL'),"
                 " usage, coalesce(count::VARCHAR, 'NULL')), '|') FROM read_parquet('%s')",
                 path);
    }
    /* Zero rows selected: a valid, empty file with the full schema. */
    snprintf(path, sizeof(path), "%s/empty.parquet", f->dir);
    write_ok(f->d, b, rows, 0, path, NULL);
    ASSERT_Q(f->d, "0:8", "SELECT count(*) || ':' || (SELECT count(*) FROM (DESCRIBE "
                          "SELECT * FROM read_parquet('%s'))) FROM read_parquet('%s')",
             path, path);

    errbuf_init(&eb);
    snprintf(path, sizeof(path), "%s/bad.parquet", f->dir);
    assert_int_equal(duck_write_parquet(f->d, b, bad, 2, path, NULL, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "row index 4 at 1 >= 4 rows"));
    batch_free(b);
}

static void test_reserved_time_column(void **state)
{
    struct fix *f = *state;
    struct batch *b = batch_new("m", 1);
    struct batch_col *c = batch_add_col(b, "Time", 4, BATCH_F64, false);
    struct errbuf eb;
    char path[128];

    batch_set_f64(c, batch_add_row(b, 1), 1.0);
    errbuf_init(&eb);
    snprintf(path, sizeof(path), "%s/t.parquet", f->dir);
    assert_int_equal(duck_write_parquet(f->d, b, NULL, 0, path, NULL, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "'time' is reserved"));
    assert_int_equal(access(path, F_OK), -1);
    batch_free(b);
}

#define BIG_ROWS 1000000

static struct batch *make_big_batch(size_t n)
{
    struct batch *b = batch_new("cpu", 3);
    struct batch_col *host = batch_add_col(b, "host", 4, BATCH_STR, true);
    struct batch_col *val = batch_add_col(b, "value", 5, BATCH_F64, false);
    struct batch_col *idle = batch_add_col(b, "n", 1, BATCH_I64, false);
    char name[32];
    uint32_t ids[1000];

    batch_reserve(b, n);
    for (size_t i = 0; i < 1000; i++) {
        int len = snprintf(name, sizeof(name), "server-%04zu.example.com", i);
        ids[i] = strdict_intern(b->dict, name, (size_t)len);
    }
    batch_add_rows(b, n);
    for (size_t i = 0; i < n; i++) {
        b->time_us[i] = 1700000000000000 + (int64_t)i;
        ((uint32_t *)host->data)[i] = ids[i % 1000];
        host->valid[i] = 1;
        batch_set_f64(val, i, (double)(i % 1000) * 0.5);
        if (i % 7)
            batch_set_i64(idle, i, (int64_t)i);
    }
    batch_drop_full_validity(b);
    return b;
}

static void test_big_batch(void **state)
{
    struct fix *f = *state;
    struct batch *b = make_big_batch(BIG_ROWS);
    struct duck_parquet_opts o = {.row_group_rows = 100000};
    uint32_t *rev = xmalloc(BIG_ROWS * sizeof(*rev));
    char path[128];
    double want_sum = 0;
    long long want_n = 0;
    char want[256];

    for (size_t i = 0; i < BIG_ROWS; i++) {
        want_sum += (double)(i % 1000) * 0.5;
        if (i % 7)
            want_n += (long long)i;
        rev[i] = (uint32_t)(BIG_ROWS - 1 - i);
    }
    snprintf(path, sizeof(path), "%s/big.parquet", f->dir);
    write_ok(f->d, b, NULL, 0, path, &o);
    snprintf(want, sizeof(want), "%d:%.1f:%lld:1000:%d:true", BIG_ROWS, want_sum, want_n,
             BIG_ROWS / 7 + 1);
    ASSERT_Q(f->d, want,
             "SELECT count(*) || ':' || round(sum(value), 1) || ':' || sum(n) || ':' || "
             "count(DISTINCT host) || ':' || count(*) FILTER (WHERE n IS NULL) || ':' || "
             "bool_and(host = 'server-' || lpad(((epoch_us(time) - 1700000000000000) %% 1000)"
             "::VARCHAR, 4, '0') || '.example.com') FROM read_parquet('%s')",
             path);
    ASSERT_Q(f->d, "10", "SELECT count(DISTINCT row_group_id)::VARCHAR FROM "
                         "parquet_metadata('%s')", path);

    /* Reversed order through the selection path: the file is sorted descending. */
    snprintf(path, sizeof(path), "%s/bigrev.parquet", f->dir);
    write_ok(f->d, b, rev, BIG_ROWS, path, NULL);
    ASSERT_Q(f->d, "1000000:true",
             "SELECT count(*) || ':' || bool_and(d < 0) FROM (SELECT epoch_us(time) - "
             "lag(epoch_us(time), 1, 9e18::BIGINT) OVER () AS d FROM read_parquet('%s'))",
             path);
    free(rev);
    batch_free(b);
}

struct writer_arg {
    struct duck *d;
    const struct batch *b;
    char path[128];
    enum err rc;
};

static void *writer_thread(void *p)
{
    struct writer_arg *a = p;
    struct errbuf eb;
    errbuf_init(&eb);
    for (int i = 0; i < 3 && a->rc == ERR_OK; i++)
        a->rc = duck_write_parquet(a->d, a->b, NULL, 0, a->path, NULL, &eb);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fix *f = *state;
    struct batch *b = make_big_batch(50000);
    struct writer_arg args[4];
    pthread_t th[4];

    for (int i = 0; i < 4; i++) {
        args[i].d = f->d;
        args[i].b = b;
        args[i].rc = ERR_OK;
        snprintf(args[i].path, sizeof(args[i].path), "%s/conc%d.parquet", f->dir, i);
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].rc, ERR_OK);
    }
    ASSERT_Q(f->d, "200000", "SELECT count(*)::VARCHAR FROM read_parquet('%s/conc*.parquet')",
             f->dir);
    batch_free(b);
}

static void test_sandbox(void **state)
{
    struct fix *f = *state;
    struct batch *b = make_typed_batch();
    char path[128], sql[512];

    /* The writer may write anywhere; the query instance reads only data_dir. */
    snprintf(path, sizeof(path), "%s/outside.parquet", f->out);
    write_ok(f->d, b, NULL, 0, path, NULL);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM read_parquet('%s')", path);
    expect_fail(f->d, sql, ERR_DB, "Permission Error");
    snprintf(path, sizeof(path), "%s/inside.parquet", f->dir);
    write_ok(f->d, b, NULL, 0, path, NULL);
    ASSERT_Q(f->d, "4", "SELECT count(*)::VARCHAR FROM read_parquet('%s')", path);
    /* A sibling directory sharing the prefix is not inside. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM read_parquet('%sx/a.parquet')", f->dir);
    expect_fail(f->d, sql, ERR_DB, "Permission Error");

    expect_fail(f->d, "SELECT * FROM read_csv('/etc/passwd')", ERR_DB, "Permission Error");
    expect_fail(f->d, "SELECT * FROM read_text('/etc/passwd')", ERR_DB, "Permission Error");
    expect_fail(f->d, "SELECT * FROM glob('/etc/*')", ERR_DB, NULL);
    expect_fail(f->d, "COPY (SELECT 1) TO '/tmp/arc_duck_x.csv'", ERR_DB, "Permission Error");
    snprintf(sql, sizeof(sql), "COPY (SELECT 1) TO '%s/x.csv'", f->dir);
    expect_fail(f->d, sql, ERR_PERM, "only SELECT");
    expect_fail(f->d, "INSTALL httpfs", ERR_PERM, "only SELECT");
    expect_fail(f->d, "LOAD httpfs", ERR_PERM, "only SELECT");
    expect_fail(f->d, "SET threads=1", ERR_PERM, "only SELECT");
    expect_fail(f->d, "SET enable_external_access=true", ERR_PERM, "only SELECT");
    expect_fail(f->d, "ATTACH '/tmp/arc_duck_x.db'", ERR_PERM, "only SELECT");
    expect_fail(f->d, "CREATE TABLE t AS SELECT 1", ERR_PERM, "only SELECT");
    expect_fail(f->d, "SELECT 1; SELECT 2", ERR_DB, NULL);
    expect_fail(f->d, "SELEC 1", ERR_DB, "syntax error");
    /* The configuration behind the statement filter is really in force and locked. */
    ASSERT_Q(f->d, "false,false,false,true",
             "SELECT concat_ws(',', current_setting('enable_external_access'), "
             "current_setting('autoinstall_known_extensions'), "
             "current_setting('autoload_known_extensions'), "
             "current_setting('lock_configuration'))::VARCHAR");
    ASSERT_Q(f->d, "2", "SELECT current_setting('threads')::VARCHAR");
    assert_int_equal(access("/tmp/arc_duck_x.csv", F_OK), -1);
    batch_free(b);
}

struct cancel_arg {
    struct duck_cancel *c;
    unsigned delay_ms;
};

static void *cancel_thread(void *p)
{
    struct cancel_arg *a = p;
    struct timespec ts = {.tv_sec = a->delay_ms / 1000,
                          .tv_nsec = (long)(a->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    duck_query_cancel(a->c);
    return NULL;
}

static void test_cancel(void **state)
{
    struct fix *f = *state;
    struct duck_cancel *c = duck_cancel_new();
    struct cancel_arg a = {.c = c, .delay_ms = 200};
    struct duck_result *r = NULL;
    struct duck_chunk *ch;
    struct errbuf eb;
    struct timespec t0, t1;
    pthread_t th;
    enum err rc;

    errbuf_init(&eb);
    duck_query_cancel(c); /* cancelled before it starts */
    assert_int_equal(duck_query_exec_ex(f->d, "SELECT 1", c, &r, &eb), ERR_TIMEOUT);
    duck_cancel_reset(c);
    assert_int_equal(duck_query_exec_ex(f->d, "SELECT 1::VARCHAR", c, &r, &eb), ERR_OK);
    duck_result_free(r);

    /* A query that would run for minutes stops soon after the cancel. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pthread_create(&th, NULL, cancel_thread, &a), 0);
    rc = duck_query_exec_ex(f->d, "SELECT sum(i * i % 7) FROM range(100000000000) t(i)", c,
                            &r, &eb);
    if (rc == ERR_OK) {
        rc = duck_result_next_chunk(r, &ch, &eb);
        duck_result_free(r);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(rc, ERR_TIMEOUT);
    assert_string_equal(eb.msg, "query cancelled");
    assert_true((t1.tv_sec - t0.tv_sec) < 10);
    duck_cancel_free(c);
}

static void test_open_rejects(void **state)
{
    struct duck_opts o = {.data_dir = "relative/dir"};
    struct duck *d = NULL;
    struct errbuf eb;

    (void)state;
    errbuf_init(&eb);
    assert_int_equal(duck_open(&o, &d, &eb), ERR_INVAL);
    assert_null(d);
    assert_non_null(strstr(eb.msg, "absolute path: relative/dir"));
    assert_int_equal(duck_open(NULL, &d, &eb), ERR_INVAL);
    assert_string_equal(duck_type_name(DUCK_T_U64), "UBIGINT");
    assert_non_null(strstr(duck_version(), "1.4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects),
        cmocka_unit_test_setup_teardown(test_roundtrip_all_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selection_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_time_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
