/* test_config.c - defaults, the shipped arc.conf, good and bad files with their
 * exact "file:LINE:" messages, environment names (canonical and seed), flags,
 * precedence defaults < file < env < flags, dump round trip and finalize.
 * Sample files live in $ARC_TEST_DATA/config; arc.conf at $ARC_TEST_DATA/../../.. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/toml.h"

static const char *data_path(const char *rel)
{
    static char path[4096];
    const char *root = getenv("ARC_TEST_DATA");

    assert_non_null(root);
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return path;
}

static char *dump(const struct config *c)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(config_dump_toml(c, &b), ERR_OK);
    return buf_steal(&b, NULL);
}

static void test_defaults(void **state)
{
    struct config c;

    (void)state;
    config_defaults(&c);
    assert_string_equal(c.server.host, "0.0.0.0");
    assert_int_equal(c.server.port, 8000);
    assert_int_equal(c.server.workers, 0);
    assert_string_equal(c.server.data_dir, "./data");
    assert_int_equal(c.server.max_payload_mb, 1024);
    assert_string_equal(c.server.cors_origins, "*");
    assert_false(c.server.access_log);
    assert_true(c.server.public_metrics);
    assert_true(c.auth.enabled);
    assert_string_equal(c.auth.bootstrap_token, "");
    assert_int_equal(c.auth.cache_ttl_seconds, 30);
    assert_string_equal(c.logging.level, "info");
    assert_string_equal(c.logging.format, "logfmt");
    assert_true(c.query_cache.enabled);
    assert_int_equal(c.query_cache.ttl_seconds, 60);
    assert_int_equal(c.query.timeout_seconds, 300);
    assert_int_equal(c.query.max_sql_kb, 1024);
    assert_int_equal(c.ingestion.buffer_size, 50000);
    assert_int_equal(c.ingestion.buffer_age_seconds, 5);
    assert_string_equal(c.ingestion.compression, "zstd");
    assert_false(c.wal.enabled);
    assert_string_equal(c.wal.sync_mode, "fdatasync");
    assert_string_equal(c.wal.dir, "");
    assert_int_equal(c.wal.max_size_mb, 100);
    assert_string_equal(c.storage.backend, "local");
    assert_string_equal(c.storage.local.path, "");
    assert_string_equal(c.storage.minio.endpoint, "http://127.0.0.1:9000");
    assert_string_equal(c.storage.minio.bucket, "arc");
    assert_false(c.storage.minio.use_ssl);
    assert_true(c.storage.minio.path_style);
    assert_true(c.storage.s3.use_ssl);
    assert_false(c.storage.s3.path_style);
    assert_string_equal(c.storage.s3.bucket, "");
    assert_string_equal(c.storage.gcs.endpoint, "https://storage.googleapis.com");
    assert_string_equal(c.storage.gcs.project_id, "");
    assert_string_equal(c.storage.minio.project_id, "");
    assert_string_equal(c.compaction.schedule, "5 * * * *");
    assert_int_equal(c.compaction.target_file_size_mb, 512);
    config_free(&c);
    /* config_free leaves a zeroed config that can be freed again */
    config_free(&c);
}

/* The shipped arc.conf loads cleanly, lists every key, and equals the defaults. */
static void test_shipped_arc_conf(void **state)
{
    struct config def, c;
    struct errbuf eb;
    struct toml_doc shipped, dumped;
    char *d1, *d2;
    size_t i;

    (void)state;
    config_defaults(&def);
    config_defaults(&c);
    errbuf_init(&eb);
    if (config_load_file(&c, data_path("../../../arc.conf"), &eb) != ERR_OK)
        fail_msg("arc.conf: %s", eb.msg);
    d1 = dump(&def);
    d2 = dump(&c);
    assert_string_equal(d2, d1);

    /* same key set as the dump, i.e. as the key table */
    assert_int_equal(toml_parse_file(data_path("../../../arc.conf"), &shipped, &eb), ERR_OK);
    assert_int_equal(toml_parse(d1, strlen(d1), "dump", &dumped, &eb), ERR_OK);
    for (i = 0; i < dumped.n; i++) {
        if (!toml_doc_get(&shipped, dumped.entries[i].key))
            fail_msg("arc.conf lacks key %s", dumped.entries[i].key);
    }
    assert_int_equal(shipped.n, dumped.n);
    toml_doc_release(&shipped);
    toml_doc_release(&dumped);
    free(d1);
    free(d2);
    config_free(&def);
    config_free(&c);
}

static void test_good_file(void **state)
{
    struct config c;
    struct errbuf eb;

    (void)state;
    config_defaults(&c);
    errbuf_init(&eb);
    assert_int_equal(config_load_file(&c, data_path("config/good.conf"), &eb), ERR_OK);
    assert_string_equal(c.server.host, "127.0.0.1");
    assert_int_equal(c.server.port, 9100);
    assert_int_equal(c.server.workers, 4);
    assert_string_equal(c.server.cors_origins, "https://a.example,https://b.example");
    assert_string_equal(c.auth.bootstrap_token, "seed-token");
    assert_string_equal(c.logging.level, "debug");
    assert_string_equal(c.storage.backend, "minio");
    assert_string_equal(c.storage.minio.endpoint, "http://minio:9000");
    assert_string_equal(c.storage.minio.secret_key, "minioadmin123");
    assert_string_equal(c.storage.minio.database, "prod");
    assert_true(c.wal.enabled);
    assert_string_equal(c.wal.sync_mode, "fsync");
    assert_int_equal(c.wal.max_size_mb, 1000);
    /* untouched keys keep their defaults */
    assert_int_equal(c.ingestion.buffer_size, 50000);
    assert_string_equal(c.storage.s3.region, "us-east-1");
    config_free(&c);
}

static const struct {
    const char *file;
    enum err code;
    const char *msg; /* after "<path>" */
} BAD_FILES[] = {
    {"bad_unknown_key.conf", ERR_NOTFOUND, ":5: unknown key 'server.prot'"},
    {"bad_type.conf", ERR_INVAL, ":2: server.port: expected integer, got string"},
    {"bad_enum.conf", ERR_INVAL, ":4: wal.sync_mode: 'fast' is not one of fsync|fdatasync|async"},
    {"bad_dup.conf", ERR_CONFLICT, ":4:1: duplicate key 'server.port'"},
    {"bad_range.conf", ERR_INVAL, ":2: server.port: 70000 is out of range 0..65535"},
    {"bad_section.conf", ERR_NOTFOUND, ":2: unknown section 'srever' (key 'srever.port')"},
    {"bad_syntax.conf", ERR_PARSE, ":3:6: expected '=' after key"},
    {"bad_cron.conf", ERR_INVAL,
     ":2: compaction.schedule: '5 * * *': expected 5 cron fields (minute hour day month weekday)"},
    {"bad_list.conf", ERR_INVAL,
     ":2: server.cors_origins: array item 2: expected string, got integer"},
};

static void test_bad_files(void **state)
{
    struct config c;
    struct errbuf eb;
    char want[4096];
    size_t i;

    (void)state;
    config_defaults(&c);
    for (i = 0; i < sizeof(BAD_FILES) / sizeof(BAD_FILES[0]); i++) {
        char rel[256], path[4096];
        snprintf(rel, sizeof(rel), "config/%s", BAD_FILES[i].file);
        snprintf(path, sizeof(path), "%s", data_path(rel));
        snprintf(want, sizeof(want), "%s%s", path, BAD_FILES[i].msg);
        errbuf_init(&eb);
        assert_int_equal(config_load_file(&c, path, &eb), BAD_FILES[i].code);
        assert_string_equal(eb.msg, want);
    }
    /* a failed load changes nothing, even keys set before the bad line */
    assert_string_equal(c.server.host, "0.0.0.0");
    assert_true(!c.wal.enabled);
    assert_int_equal(c.server.port, 8000);

    errbuf_init(&eb);
    assert_int_equal(config_load_file(&c, "/nonexistent/arc.conf", &eb), ERR_IO);
    assert_string_equal(eb.msg, "/nonexistent/arc.conf: No such file or directory");
    config_free(&c);
}

static void test_env(void **state)
{
    char *env[] = {
        "PATH=/usr/bin",
        "ARC_SERVER_PORT=9001",
        "ARC_PORT=7000", /* seed name loses to the canonical one */
        "ARC_HOST=10.0.0.1",
        "STORAGE_BACKEND=MinIO",
        "MINIO_ENDPOINT=minio:9000",
        "MINIO_ACCESS_KEY=ak",
        "MINIO_SECRET_KEY=sk",
        "MINIO_BUCKET=b1",
        "MINIO_DATABASE=db1",
        "QUERY_CACHE_ENABLED=false",
        "QUERY_CACHE_TTL=5",
        "LOG_LEVEL=WARNING",
        "WAL_ENABLED=1",
        "WAL_SYNC_MODE=async",
        "WAL_DIR=/var/wal",
        "WAL_MAX_SIZE_MB=7",
        "WAL_MAX_AGE_SECONDS=8",
        "ARC_AUTH_BOOTSTRAP_TOKEN=tok",
        "ARC_DATA_DIR=/srv/arc",
        "ARC_STORAGE_MINIO_USE_SSL=yes",
        "ARC_INGESTION_BUFFER_AGE_SECONDS=2",
        "AWS_ACCESS_KEY_ID=aws-ak",
        "S3_ACCESS_KEY=s3-ak", /* later seed row wins over AWS_* */
        "ARC_SOMETHING_ELSE=ignored",
        "ARC_SERVER_PROT=ignored",
        "ARC_=x",
        "NOEQUALS",
        NULL,
    };
    struct config c;
    struct errbuf eb;

    (void)state;
    config_defaults(&c);
    errbuf_init(&eb);
    if (config_apply_env(&c, env, &eb) != ERR_OK)
        fail_msg("%s", eb.msg);
    assert_int_equal(c.server.port, 9001);
    assert_string_equal(c.server.host, "10.0.0.1");
    assert_string_equal(c.storage.backend, "minio");
    assert_string_equal(c.storage.minio.endpoint, "minio:9000");
    assert_string_equal(c.storage.minio.access_key, "ak");
    assert_string_equal(c.storage.minio.secret_key, "sk");
    assert_string_equal(c.storage.minio.bucket, "b1");
    assert_string_equal(c.storage.minio.database, "db1");
    assert_true(c.storage.minio.use_ssl);
    assert_false(c.query_cache.enabled);
    assert_int_equal(c.query_cache.ttl_seconds, 5);
    assert_string_equal(c.logging.level, "warning");
    assert_true(c.wal.enabled);
    assert_string_equal(c.wal.sync_mode, "async");
    assert_string_equal(c.wal.dir, "/var/wal");
    assert_int_equal(c.wal.max_size_mb, 7);
    assert_int_equal(c.wal.max_age_seconds, 8);
    assert_string_equal(c.auth.bootstrap_token, "tok");
    assert_string_equal(c.server.data_dir, "/srv/arc");
    assert_int_equal(c.ingestion.buffer_age_seconds, 2);
    assert_string_equal(c.storage.s3.access_key, "s3-ak");
    config_free(&c);
}

static void test_env_errors(void **state)
{
    static const struct {
        const char *var;
        const char *msg;
    } cases[] = {
        {"ARC_SERVER_PORT=abc", "ARC_SERVER_PORT: server.port: expected integer, got 'abc'"},
        {"ARC_PORT=8000x", "ARC_PORT: server.port: expected integer, got '8000x'"},
        {"ARC_PORT=", "ARC_PORT: server.port: expected integer, got ''"},
        {"ARC_PORT=99999999999999999999",
         "ARC_PORT: server.port: expected integer, got '99999999999999999999'"},
        {"ARC_PORT=-1", "ARC_PORT: server.port: -1 is out of range 0..65535"},
        {"WAL_ENABLED=maybe", "WAL_ENABLED: wal.enabled: expected boolean, got 'maybe'"},
        {"WAL_SYNC_MODE=sometimes",
         "WAL_SYNC_MODE: wal.sync_mode: 'sometimes' is not one of fsync|fdatasync|async"},
        {"ARC_STORAGE_BACKEND=ftp",
         "ARC_STORAGE_BACKEND: storage.backend: 'ftp' is not one of local|s3|minio|gcs"},
        {"ARC_INGESTION_COMPRESSION=lz4",
         "ARC_INGESTION_COMPRESSION: ingestion.compression: 'lz4' is not one of zstd|snappy|none"},
        {"LOG_LEVEL=loud",
         "LOG_LEVEL: logging.level: 'loud' is not one of debug|info|warn|warning|error|fatal"},
        {"ARC_QUERY_MEMORY_LIMIT=lots",
         "ARC_QUERY_MEMORY_LIMIT: query.memory_limit: 'lots': expected a size such as \"4GB\""},
        {"ARC_SERVER_DATA_DIR=", "ARC_SERVER_DATA_DIR: server.data_dir: '': must not be empty"},
    };
    struct config c;
    struct errbuf eb;
    size_t i;

    (void)state;
    config_defaults(&c);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *env[] = {"ARC_SERVER_HOST=changed", (char *)cases[i].var, NULL};
        errbuf_init(&eb);
        assert_int_not_equal(config_apply_env(&c, env, &eb), ERR_OK);
        assert_string_equal(eb.msg, cases[i].msg);
        /* nothing applied: not even the good variable */
        assert_string_equal(c.server.host, "0.0.0.0");
    }
    config_free(&c);
}

/* defaults < file < env < flags */
static void test_precedence(void **state)
{
    char *env[] = {"ARC_SERVER_PORT=9200", "MINIO_BUCKET=env-bucket", NULL};
    struct config c;
    struct errbuf eb;

    (void)state;
    config_defaults(&c);
    errbuf_init(&eb);
    assert_int_equal(config_load_file(&c, data_path("config/good.conf"), &eb), ERR_OK);
    assert_int_equal(c.server.port, 9100);
    assert_int_equal(config_apply_env(&c, env, &eb), ERR_OK);
    assert_int_equal(c.server.port, 9200);                   /* env beats file */
    assert_string_equal(c.storage.minio.bucket, "env-bucket"); /* seed env beats file */
    assert_string_equal(c.server.host, "127.0.0.1");         /* file beats default */
    assert_int_equal(config_set(&c, "server.port", "9300", "--set", &eb), ERR_OK);
    assert_int_equal(c.server.port, 9300); /* flag beats env */
    assert_int_equal(config_set(&c, "storage.minio.bucket", "flag-bucket", "--set", &eb),
                     ERR_OK);
    assert_string_equal(c.storage.minio.bucket, "flag-bucket");
    assert_int_equal(config_set(&c, "auth.default_token", "alias", NULL, &eb), ERR_OK);
    assert_string_equal(c.auth.bootstrap_token, "alias");
    assert_int_equal(config_set(&c, "wal.sync_mode", "FDATASYNC", "--set", &eb), ERR_OK);
    assert_string_equal(c.wal.sync_mode, "fdatasync");
    assert_int_equal(config_set(&c, "server.cors_origins", "", "--set", &eb), ERR_OK);
    assert_string_equal(c.server.cors_origins, "");

    assert_int_equal(config_set(&c, "server.prot", "1", "--set", &eb), ERR_NOTFOUND);
    assert_string_equal(eb.msg, "--set: unknown key 'server.prot'");
    assert_int_equal(config_set(&c, "port", "1", "--set", &eb), ERR_NOTFOUND);
    assert_string_equal(eb.msg, "--set: unknown key 'port' (keys belong in a [section])");
    assert_int_equal(config_set(&c, "server.port", "65536", "--set", &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "--set: server.port: 65536 is out of range 0..65535");
    assert_int_equal(c.server.port, 9300);
    /* an internal field is not a key */
    assert_int_equal(config_set(&c, "storage.minio.project_id", "p", "--set", &eb),
                     ERR_NOTFOUND);
    config_free(&c);
}

/* The dump masks secrets and reads back to the same config. */
static void test_dump_roundtrip(void **state)
{
    char path[] = "/tmp/arc_cfg_XXXXXX";
    struct config c, back;
    struct errbuf eb;
    char *d1, *d2;
    FILE *f;
    int fd;

    (void)state;
    config_defaults(&c);
    errbuf_init(&eb);
    assert_int_equal(config_set(&c, "server.host", "we\"ird\\ho\tst", NULL, &eb), ERR_OK);
    assert_int_equal(config_set(&c, "storage.s3.secret_key", "hush", NULL, &eb), ERR_OK);
    assert_int_equal(config_set(&c, "auth.bootstrap_token", "tok", NULL, &eb), ERR_OK);
    assert_int_equal(config_set(&c, "server.port", "0", NULL, &eb), ERR_OK);
    d1 = dump(&c);
    assert_non_null(strstr(d1, "[storage.s3]\n"));
    assert_non_null(strstr(d1, "\nsecret_key = \"***\"\n"));
    assert_non_null(strstr(d1, "\nbootstrap_token = \"***\"\n"));
    assert_null(strstr(d1, "hush"));
    assert_null(strstr(d1, "default_token"));
    assert_null(strstr(d1, "project_id = \"\"\n\n[storage.s3]")); /* minio has no project_id */
    assert_non_null(strstr(d1, "host = \"we\\\"ird\\\\ho\\u0009st\"\n"));

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(d1, f);
    fclose(f);
    config_defaults(&back);
    if (config_load_file(&back, path, &eb) != ERR_OK)
        fail_msg("%s", eb.msg);
    unlink(path);
    assert_string_equal(back.server.host, "we\"ird\\ho\tst");
    assert_int_equal(back.server.port, 0);
    assert_string_equal(back.storage.s3.secret_key, "***");
    d2 = dump(&back);
    assert_string_equal(d2, d1);
    free(d1);
    free(d2);
    config_free(&c);
    config_free(&back);
}

static void test_finalize(void **state)
{
    struct config c;
    struct errbuf eb;

    (void)state;
    config_defaults(&c);
    errbuf_init(&eb);
    assert_int_equal(config_finalize(&c, 4, &eb), ERR_OK);
    assert_int_equal(c.server.workers, 4);
    assert_int_equal(c.server.worker_threads, 32);
    assert_int_equal(c.query.threads, 4);
    assert_int_equal(c.query.max_concurrent, 8);
    assert_string_equal(c.wal.dir, "./data/wal");
    assert_string_equal(c.storage.cache_dir, "./data/cache");
    assert_string_equal(c.storage.local.path, "./data");
    assert_string_equal(c.query.temp_dir, "./data/tmp");
    assert_true(c.ingestion.memory_budget_mb >= 64 && c.ingestion.memory_budget_mb <= 768);
    assert_true(c.ingestion.max_buffer_bytes_mb >= 32);
    config_free(&c);

    /* explicit values are kept */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "server.data_dir", "/srv/", NULL, &eb), ERR_OK);
    assert_int_equal(config_set(&c, "wal.dir", "/fast/wal", NULL, &eb), ERR_OK);
    assert_int_equal(config_set(&c, "server.workers", "3", NULL, &eb), ERR_OK);
    assert_int_equal(config_finalize(&c, 0, &eb), ERR_OK);
    assert_int_equal(c.server.workers, 3);
    assert_true(c.query.threads >= 1);
    assert_string_equal(c.wal.dir, "/fast/wal");
    assert_string_equal(c.storage.cache_dir, "/srv/cache");
    config_free(&c);

    config_defaults(&c);
    assert_int_equal(config_set(&c, "storage.backend", "s3", NULL, &eb), ERR_OK);
    assert_int_equal(config_finalize(&c, 2, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "storage.s3.bucket: must be set when storage.backend = \"s3\"");
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_shipped_arc_conf),
        cmocka_unit_test(test_good_file),  cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_env),        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_precedence), cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_finalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
