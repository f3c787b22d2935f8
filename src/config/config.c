/* config.c - the configuration key table and the four ways into it.
 *
 * KEYS[] below is the single description of every setting: its dotted name, type,
 * offset in struct config, default (as text), range or allowed values, and help
 * line. Defaults, the TOML loader, environment variables, `--set` flags, the dump
 * and the shipped arc.conf all derive from it, so adding a setting is one line
 * here plus the field in config.h (and its line in arc.conf, which a test checks).
 *
 * Defaults are stored as text and applied through the same parser as environment
 * values, so a default can never bypass validation. Loads and env overlays work on
 * a deep copy that replaces the caller's config only when every value was valid:
 * a failed load never leaves a half-applied config behind. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/mem.h"
#include "core/toml.h"

enum key_type {
    KT_STR,  /* free text */
    KT_ENUM, /* one of choices, stored lower case */
    KT_LIST, /* comma-separated list; TOML may also give an array of strings */
    KT_INT,  /* int64_t in [min, max] */
    KT_BOOL  /* bool */
};

#define KF_SECRET 1u   /* masked in dumps */
#define KF_ALIAS 2u    /* accepted name for another key's field; not dumped or defaulted */
#define KF_INTERNAL 4u /* owned string field that is not a settable key */

typedef const char *check_fn(const char *v); /* NULL if fine, else what is wrong */

struct key {
    const char *name;    /* dotted, as in arc.conf */
    enum key_type type;  /* how the field is stored and parsed */
    size_t off;          /* offsetof(struct config, field) */
    const char *def;     /* default, as text */
    int64_t min, max;    /* KT_INT range, inclusive */
    const char *choices; /* KT_ENUM: "a|b|c" */
    check_fn *check;     /* extra KT_STR validation, or NULL */
    unsigned flags;      /* KF_* */
    const char *help;    /* one line for docs and --help */
};

static const char *check_cron(const char *v);
static const char *check_mem_size(const char *v);
static const char *check_not_empty(const char *v);

#define OFF(f) offsetof(struct config, f)
#define S(n, f, d, h) {n, KT_STR, OFF(f), d, 0, 0, NULL, NULL, 0, h}
#define SC(n, f, d, chk, h) {n, KT_STR, OFF(f), d, 0, 0, NULL, chk, 0, h}
#define SECRET(n, f, h) {n, KT_STR, OFF(f), "", 0, 0, NULL, NULL, KF_SECRET, h}
#define E(n, f, d, ch, h) {n, KT_ENUM, OFF(f), d, 0, 0, ch, NULL, 0, h}
#define L(n, f, d, h) {n, KT_LIST, OFF(f), d, 0, 0, NULL, NULL, 0, h}
#define I(n, f, d, lo, hi, h) {n, KT_INT, OFF(f), #d, lo, hi, NULL, NULL, 0, h}
#define B(n, f, d, h) {n, KT_BOOL, OFF(f), #d, 0, 0, NULL, NULL, 0, h}
#define INTERNAL(f, d) {#f, KT_STR, OFF(f), d, 0, 0, NULL, NULL, KF_INTERNAL, ""}

#define MB_MAX 16777216 /* 16 TiB in MiB: a generous sanity ceiling */
#define REMOTE(sec, f, d_ep, d_bucket, d_region, d_ssl, d_pstyle, what)                                     \
    S(sec ".endpoint", f.endpoint, d_ep, what " endpoint URL"),                                     \
        S(sec ".access_key", f.access_key, "", what " access key id"),                            \
        SECRET(sec ".secret_key", f.secret_key, what " secret key (masked in dumps)"),            \
        S(sec ".bucket", f.bucket, d_bucket, what " bucket"),                                       \
        S(sec ".database", f.database, "default", "database namespace used when none is given"), \
        S(sec ".region", f.region, d_region, "SigV4 signing region"),                               \
        S(sec ".prefix", f.prefix, "", "key prefix inside the bucket (\"\" = none)"),             \
        B(sec ".use_ssl", f.use_ssl, d_ssl, "use https when the endpoint has no scheme"),           \
        B(sec ".path_style", f.path_style, d_pstyle, "path-style URLs instead of virtual-host")

static const struct key KEYS[] = {
    S("server.host", server.host, "0.0.0.0", "listen address"),
    I("server.port", server.port, 8000, 0, 65535, "listen port; 0 picks a free port"),
    I("server.workers", server.workers, 0, 0, 1024, "event-loop threads; 0 = number of cores"),
    I("server.worker_threads", server.worker_threads, 0, 0, 4096,
      "blocking-handler pool threads; 0 = 8 x cores, at least 16"),
    SC("server.data_dir", server.data_dir, "./data", check_not_empty,
       "root directory for the catalog, local data, WAL and cache"),
    I("server.max_payload_mb", server.max_payload_mb, 1024, 1, 65536,
      "largest request body accepted, MiB"),
    I("server.max_decompressed_mb", server.max_decompressed_mb, 1024, 1, 65536,
      "largest body after gzip/zstd decompression, MiB"),
    I("server.header_timeout_seconds", server.header_timeout_seconds, 10, 1, 3600,
      "a request head must arrive within this once its first byte did"),
    I("server.idle_timeout_seconds", server.idle_timeout_seconds, 120, 1, 86400,
      "close keep-alive connections idle this long"),
    I("server.max_connections", server.max_connections, 4096, 1, 1000000,
      "concurrent client connections"),
    L("server.cors_origins", server.cors_origins, "*",
      "allowed CORS origins, comma-separated or an array; \"*\" = any, \"\" = CORS off"),
    B("server.access_log", server.access_log, false, "log one line per request"),
    B("server.public_metrics", server.public_metrics, true, "serve /metrics without a token"),
    I("server.shutdown_timeout_seconds", server.shutdown_timeout_seconds, 30, 0, 3600,
      "time to drain requests and flush buffers on shutdown"),

    B("auth.enabled", auth.enabled, true, "require a token on every non-public route"),
    SECRET("auth.bootstrap_token", auth.bootstrap_token,
           "admin token created at first start; \"\" = generate and print once"),
    {"auth.default_token", KT_STR, OFF(auth.bootstrap_token), "", 0, 0, NULL, NULL,
     KF_SECRET | KF_ALIAS, "seed name of auth.bootstrap_token"},
    I("auth.cache_ttl_seconds", auth.cache_ttl_seconds, 30, 0, 86400,
      "how long a verified token stays cached"),

    E("logging.level", logging.level, "info", "debug|info|warn|warning|error|fatal",
      "least severe level logged"),
    E("logging.format", logging.format, "logfmt", "logfmt|json", "log line format"),

    B("query_cache.enabled", query_cache.enabled, true, "cache query results"),
    I("query_cache.ttl_seconds", query_cache.ttl_seconds, 60, 0, 604800,
      "lifetime of a cached result"),
    I("query_cache.max_size_mb", query_cache.max_size_mb, 256, 0, MB_MAX,
      "total size of cached results, MiB"),

    I("query.timeout_seconds", query.timeout_seconds, 300, 0, 86400,
      "cancel queries running longer; 0 = no limit"),
    I("query.max_concurrent", query.max_concurrent, 0, 0, 4096,
      "queries run at once; 0 = 2 x cores"),
    SC("query.memory_limit", query.memory_limit, "", check_mem_size,
       "DuckDB memory limit such as \"4GB\"; \"\" = DuckDB default (80% of RAM)"),
    I("query.threads", query.threads, 0, 0, 1024, "DuckDB threads; 0 = number of cores"),
    S("query.temp_dir", query.temp_dir, "", "DuckDB spill directory; \"\" = data_dir/tmp"),
    I("query.max_sql_kb", query.max_sql_kb, 1024, 1, ARC_MAX_SQL_BYTES / 1024,
      "longest SQL text accepted, KiB"),
    B("query.hot_cache", query.hot_cache, true,
      "keep the rows of recently written files in memory for queries"),
    I("query.hot_cache_mb", query.hot_cache_mb, 0, 0, MB_MAX,
      "memory for them, MiB; 0 = 1/32 of RAM, at most 256"),
    B("query.native", query.native, true,
      "answer simple statements over in-memory rows without DuckDB"),

    I("ingestion.buffer_size", ingestion.buffer_size, 50000, 1, 100000000,
      "rows buffered per measurement before a flush"),
    I("ingestion.buffer_age_seconds", ingestion.buffer_age_seconds, 5, 1, 86400,
      "flush a buffer at this age (the loss window with the WAL off)"),
    I("ingestion.max_buffer_bytes_mb", ingestion.max_buffer_bytes_mb, 0, 0, MB_MAX,
      "all buffers together, MiB; 0 = 1/8 of RAM"),
    I("ingestion.memory_budget_mb", ingestion.memory_budget_mb, 0, 0, MB_MAX,
      "ingest memory before writes get 503, MiB; 0 = 1/8 of RAM, at most 768"),
    E("ingestion.compression", ingestion.compression, "zstd", "zstd|snappy|none",
      "Parquet compression codec"),
    I("ingestion.compression_level", ingestion.compression_level, 3, 1, 22,
      "zstd level (1 fast .. 22 small)"),
    I("ingestion.flush_threads", ingestion.flush_threads, 2, 1, 256,
      "threads writing Parquet files"),

    B("wal.enabled", wal.enabled, false, "write-ahead log: acknowledged rows survive a crash"),
    E("wal.sync_mode", wal.sync_mode, "fdatasync", "fsync|fdatasync|async",
      "how a write waits for the disk; async can lose the last moments on power loss"),
    S("wal.dir", wal.dir, "", "WAL directory; \"\" = data_dir/wal"),
    I("wal.max_size_mb", wal.max_size_mb, 100, 1, 65536, "rotate a segment at this size, MiB"),
    I("wal.max_age_seconds", wal.max_age_seconds, 3600, 1, 604800,
      "rotate a segment at this age"),
    B("wal.preallocate", wal.preallocate, true,
      "zero-fill segments ahead of records: fdatasync then skips the file-system journal"),

    E("storage.backend", storage.backend, "local", "local|s3|minio|gcs",
      "where Parquet files live"),
    S("storage.cache_dir", storage.cache_dir, "",
      "local cache of remote files; \"\" = data_dir/cache"),
    I("storage.cache_max_mb", storage.cache_max_mb, 10240, 0, MB_MAX, "cache size, MiB"),
    I("storage.spool_max_mb", storage.spool_max_mb, 10240, 0, MB_MAX,
      "files kept locally while the remote store is unreachable, MiB"),
    I("storage.multipart_threshold_mb", storage.multipart_threshold_mb, 64, 5, MB_MAX,
      "S3: files larger than this are uploaded in parts, MiB"),
    I("storage.multipart_part_mb", storage.multipart_part_mb, 16, 5, 5120,
      "S3: multipart part size, MiB (S3's minimum is 5)"),
    S("storage.local.path", storage.local.path, "", "data files root; \"\" = data_dir"),
    REMOTE("storage.minio", storage.minio, "http://127.0.0.1:9000", "arc", "us-east-1", false,
           true, "MinIO"),
    REMOTE("storage.s3", storage.s3, "", "", "us-east-1", true, false, "S3"),
    REMOTE("storage.gcs", storage.gcs, "https://storage.googleapis.com", "", "auto", true, true,
           "GCS (S3-compatible XML API with HMAC keys)"),
    S("storage.gcs.project_id", storage.gcs.project_id, "", "GCP project id"),
    INTERNAL(storage.minio.project_id, ""),
    INTERNAL(storage.s3.project_id, ""),

    B("compaction.enabled", compaction.enabled, true, "merge small files in the background"),
    I("compaction.min_age_hours", compaction.min_age_hours, 1, 0, 8760,
      "only compact hours older than this"),
    I("compaction.min_files", compaction.min_files, 10, 2, 100000,
      "only compact partitions with at least this many files"),
    I("compaction.target_file_size_mb", compaction.target_file_size_mb, 512, 1, 65536,
      "target size of compacted files, MiB"),
    SC("compaction.schedule", compaction.schedule, "5 * * * *", check_cron,
       "when to look for work (cron: minute hour day month weekday)"),
    I("compaction.max_concurrent_jobs", compaction.max_concurrent_jobs, 2, 1, 64,
      "compaction jobs at once"),
    E("compaction.compression", compaction.compression, "zstd", "zstd|snappy|none",
      "codec of compacted files"),
    I("compaction.compression_level", compaction.compression_level, 3, 1, 22, "zstd level"),
};

#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

/* Seed (Python Arc Core) and common environment names. Applied in this order
 * before the ARC_<SECTION>_<KEY> names, so later rows beat earlier ones and the
 * canonical names beat all of them. */
static const struct {
    const char *env;
    const char *key;
} SEED_ENV[] = {
    {"ARC_HOST", "server.host"},
    {"ARC_PORT", "server.port"},
    {"ARC_WORKERS", "server.workers"},
    {"ARC_DATA_DIR", "server.data_dir"},
    {"AUTH_ENABLED", "auth.enabled"},
    {"LOG_LEVEL", "logging.level"},
    {"ARC_LOG_LEVEL", "logging.level"},
    {"LOG_FORMAT", "logging.format"},
    {"QUERY_CACHE_ENABLED", "query_cache.enabled"},
    {"QUERY_CACHE_TTL", "query_cache.ttl_seconds"},
    {"WAL_ENABLED", "wal.enabled"},
    {"WAL_SYNC_MODE", "wal.sync_mode"},
    {"WAL_DIR", "wal.dir"},
    {"WAL_MAX_SIZE_MB", "wal.max_size_mb"},
    {"WAL_MAX_AGE_SECONDS", "wal.max_age_seconds"},
    {"COMPACTION_ENABLED", "compaction.enabled"},
    {"STORAGE_BACKEND", "storage.backend"},
    {"MINIO_ENDPOINT", "storage.minio.endpoint"},
    {"MINIO_ACCESS_KEY", "storage.minio.access_key"},
    {"MINIO_SECRET_KEY", "storage.minio.secret_key"},
    {"MINIO_BUCKET", "storage.minio.bucket"},
    {"MINIO_DATABASE", "storage.minio.database"},
    {"MINIO_USE_SSL", "storage.minio.use_ssl"},
    {"MINIO_REGION", "storage.minio.region"},
    {"AWS_ACCESS_KEY_ID", "storage.s3.access_key"},
    {"AWS_SECRET_ACCESS_KEY", "storage.s3.secret_key"},
    {"AWS_REGION", "storage.s3.region"},
    {"S3_ENDPOINT", "storage.s3.endpoint"},
    {"S3_ACCESS_KEY", "storage.s3.access_key"},
    {"S3_SECRET_KEY", "storage.s3.secret_key"},
    {"S3_BUCKET", "storage.s3.bucket"},
    {"S3_DATABASE", "storage.s3.database"},
    {"S3_REGION", "storage.s3.region"},
    {"S3_PREFIX", "storage.s3.prefix"},
    {"GCS_ENDPOINT", "storage.gcs.endpoint"},
    {"GCS_HMAC_KEY_ID", "storage.gcs.access_key"},
    {"GCS_HMAC_SECRET", "storage.gcs.secret_key"},
    {"GCS_ACCESS_KEY", "storage.gcs.access_key"},
    {"GCS_SECRET_KEY", "storage.gcs.secret_key"},
    {"GCS_BUCKET", "storage.gcs.bucket"},
    {"GCS_DATABASE", "storage.gcs.database"},
    {"GCS_PROJECT_ID", "storage.gcs.project_id"},
    {"GCS_PREFIX", "storage.gcs.prefix"},
};

/* ---- field access ------------------------------------------------------------ */

static char **str_field(struct config *c, const struct key *k)
{
    return (char **)(void *)((char *)c + k->off);
}

static int64_t *int_field(struct config *c, const struct key *k)
{
    return (int64_t *)(void *)((char *)c + k->off);
}

static bool *bool_field(struct config *c, const struct key *k)
{
    return (bool *)(void *)((char *)c + k->off);
}

static bool is_string_type(enum key_type t)
{
    return t == KT_STR || t == KT_ENUM || t == KT_LIST;
}

/* Keys that own a string field (each field exactly once; aliases excluded). */
static bool owns_string(const struct key *k)
{
    return is_string_type(k->type) && !(k->flags & KF_ALIAS);
}

static const struct key *key_find(const char *name)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (!(KEYS[i].flags & KF_INTERNAL) && strcmp(KEYS[i].name, name) == 0)
            return &KEYS[i];
    }
    return NULL;
}

static const char *type_word(enum key_type t)
{
    switch (t) {
    case KT_INT: return "integer";
    case KT_BOOL: return "boolean";
    case KT_LIST: return "string or array of strings";
    default: return "string";
    }
}

static void set_str(struct config *c, const struct key *k, const char *v)
{
    char **f = str_field(c, k);

    free(*f);
    *f = xstrdup(v);
}

/* ---- validators ------------------------------------------------------------- */

static const char *check_not_empty(const char *v)
{
    return *v ? NULL : "must not be empty";
}

/* "" or a number followed by an optional unit, as DuckDB's memory_limit takes. */
static const char *check_mem_size(const char *v)
{
    static const char *const units[] = {"",   "b",   "kb",  "mb",  "gb",  "tb",
                                        "kib", "mib", "gib", "tib", "%"};
    size_t i, n = 0;

    if (!*v)
        return NULL;
    while (isdigit((unsigned char)v[n]) || v[n] == '.')
        n++;
    if (n == 0)
        return "expected a size such as \"4GB\"";
    while (v[n] == ' ')
        n++;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(v + n, units[i]) == 0)
            return NULL;
    }
    return "expected a size such as \"4GB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
}

/* Five whitespace-separated fields of digits and * / , - only. The scheduler
 * checks ranges; this catches typos at start-up. */
static const char *check_cron(const char *v)
{
    int fields = 0;
    const char *p = v;

    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        fields++;
        while (*p && *p != ' ' && *p != '\t') {
            if (!isdigit((unsigned char)*p) && !strchr("*/,-", *p))
                return "expected a cron expression of digits and * / , -";
            p++;
        }
    }
    return fields == 5 ? NULL : "expected 5 cron fields (minute hour day month weekday)";
}

/* ---- setting one value -------------------------------------------------------- */

/* Print at most 60 bytes of a user value in messages. */
#define SHOWN(v) (strlen(v) > 60 ? 60 : (int)strlen(v)), (v)

static enum err set_enum(struct config *c, const struct key *k, const char *v,
                         const char *origin, struct errbuf *eb)
{
    const char *p = k->choices;
    size_t n = strlen(v);

    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, v, n) == 0) {
            char *low = xstrndup(p, len);
            char **f = str_field(c, k);
            free(*f);
            *f = low;
            return ERR_OK;
        }
        p += len + (bar ? 1 : 0);
    }
    return errbuf_set(eb, ERR_INVAL, "%s: %s: '%.*s' is not one of %s", origin, k->name,
                      SHOWN(v), k->choices);
}

static enum err set_int(struct config *c, const struct key *k, int64_t v, const char *origin,
                        struct errbuf *eb)
{
    if (v < k->min || v > k->max)
        return errbuf_set(eb, ERR_INVAL, "%s: %s: %lld is out of range %lld..%lld", origin,
                          k->name, (long long)v, (long long)k->min, (long long)k->max);
    *int_field(c, k) = v;
    return ERR_OK;
}

static enum err set_string_checked(struct config *c, const struct key *k, const char *v,
                                   const char *origin, struct errbuf *eb)
{
    const char *why;

    if (k->type == KT_ENUM)
        return set_enum(c, k, v, origin, eb);
    if (k->check && (why = k->check(v)) != NULL)
        return errbuf_set(eb, ERR_INVAL, "%s: %s: '%.*s': %s", origin, k->name, SHOWN(v), why);
    set_str(c, k, v);
    return ERR_OK;
}

static bool parse_bool_text(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int_text(const char *v, int64_t *out)
{
    long long x;
    char *end;
    const char *p = v;

    while (*p == ' ')
        p++;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    x = strtoll(v, &end, 10);
    while (*end == ' ')
        end++;
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = x;
    return true;
}

static enum err set_from_text(struct config *c, const struct key *k, const char *v,
                              const char *origin, struct errbuf *eb)
{
    int64_t i;
    bool b;

    switch (k->type) {
    case KT_INT:
        if (!parse_int_text(v, &i))
            return errbuf_set(eb, ERR_INVAL, "%s: %s: expected integer, got '%.*s'", origin,
                              k->name, SHOWN(v));
        return set_int(c, k, i, origin, eb);
    case KT_BOOL:
        if (!parse_bool_text(v, &b))
            return errbuf_set(eb, ERR_INVAL, "%s: %s: expected boolean, got '%.*s'", origin,
                              k->name, SHOWN(v));
        *bool_field(c, k) = b;
        return ERR_OK;
    default:
        return set_string_checked(c, k, v, origin, eb);
    }
}

static enum err set_from_toml(struct config *c, const struct key *k, const struct toml_value *v,
                              const char *origin, struct errbuf *eb)
{
    enum err rc;
    size_t i;

    if (k->type == KT_INT && v->type == TOML_INT)
        return set_int(c, k, v->u.i, origin, eb);
    if (k->type == KT_BOOL && v->type == TOML_BOOL) {
        *bool_field(c, k) = v->u.b;
        return ERR_OK;
    }
    if (is_string_type(k->type) && v->type == TOML_STRING)
        return set_string_checked(c, k, v->u.s, origin, eb);
    if (k->type == KT_LIST && v->type == TOML_ARRAY) {
        struct buf joined;
        buf_init(&joined, 0);
        for (i = 0; i < v->u.arr.n; i++) {
            if (v->u.arr.items[i].type != TOML_STRING) {
                buf_release(&joined);
                return errbuf_set(eb, ERR_INVAL, "%s: %s: array item %zu: expected string, got %s",
                                  origin, k->name, i + 1,
                                  toml_type_name(v->u.arr.items[i].type));
            }
            if (i)
                (void)buf_append_char(&joined, ',');
            if (v->u.arr.items[i].u.s[0]) /* never append 0 bytes to an empty buf */
                (void)buf_append_str(&joined, v->u.arr.items[i].u.s);
        }
        rc = set_string_checked(c, k, joined.data ? joined.data : "", origin, eb);
        buf_release(&joined);
        return rc;
    }
    return errbuf_set(eb, ERR_INVAL, "%s: %s: expected %s, got %s", origin, k->name,
                      type_word(k->type), toml_type_name(v->type));
}

/* ---- lifetime ------------------------------------------------------------------ */

void config_defaults(struct config *c)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < NKEYS; i++) {
        if (KEYS[i].flags & KF_ALIAS)
            continue;
        /* built-in defaults are valid by construction; test_config checks that */
        (void)set_from_text(c, &KEYS[i], KEYS[i].def, "default", NULL);
    }
}

void config_free(struct config *c)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (owns_string(&KEYS[i]))
            free(*str_field(c, &KEYS[i]));
    }
    memset(c, 0, sizeof(*c));
}

/* Deep copy: dst gets its own strings. */
static void config_copy(struct config *dst, const struct config *src)
{
    size_t i;
    char **f;

    memcpy(dst, src, sizeof(*dst));
    for (i = 0; i < NKEYS; i++) {
        if (!owns_string(&KEYS[i]))
            continue;
        f = str_field(dst, &KEYS[i]);
        *f = xstrdup(*f ? *f : "");
    }
}

/* Replace *c by *tmp (which c then owns). */
static void config_commit(struct config *c, struct config *tmp)
{
    config_free(c);
    memcpy(c, tmp, sizeof(*c));
}

/* ---- file, env, flags ---------------------------------------------------------- */

/* An unknown dotted key: name the section when no key lives under it. */
static enum err unknown_key(const char *origin, const char *name, struct errbuf *eb)
{
    const char *dot = strrchr(name, '.');
    size_t seclen = dot ? (size_t)(dot - name) : 0, i;

    if (!dot)
        return errbuf_set(eb, ERR_NOTFOUND, "%s: unknown key '%.*s' (keys belong in a [section])",
                          origin, SHOWN(name));
    for (i = 0; i < NKEYS; i++) {
        if (strncmp(KEYS[i].name, name, seclen) == 0 && KEYS[i].name[seclen] == '.')
            return errbuf_set(eb, ERR_NOTFOUND, "%s: unknown key '%.*s'", origin, SHOWN(name));
    }
    return errbuf_set(eb, ERR_NOTFOUND, "%s: unknown section '%.*s' (key '%.*s')", origin,
                      (int)(seclen > 60 ? 60 : seclen), name, SHOWN(name));
}

enum err config_load_file(struct config *c, const char *path, struct errbuf *eb)
{
    struct toml_doc doc;
    struct config tmp;
    const struct key *k;
    char origin[512];
    enum err rc;
    size_t i;

    if ((rc = toml_parse_file(path, &doc, eb)) != ERR_OK)
        return rc;
    config_copy(&tmp, c);
    for (i = 0; i < doc.n; i++) {
        const struct toml_entry *e = &doc.entries[i];
        snprintf(origin, sizeof(origin), "%s:%d", path, e->line);
        k = key_find(e->key);
        if (!k) {
            rc = unknown_key(origin, e->key, eb);
            goto fail_free_tmp;
        }
        if ((rc = set_from_toml(&tmp, k, &e->val, origin, eb)) != ERR_OK)
            goto fail_free_tmp;
    }
    toml_doc_release(&doc);
    config_commit(c, &tmp);
    return ERR_OK;

fail_free_tmp:
    config_free(&tmp);
    toml_doc_release(&doc);
    return rc;
}

enum err config_set(struct config *c, const char *dotted_key, const char *value,
                    const char *origin, struct errbuf *eb)
{
    const struct key *k = key_find(dotted_key);
    struct config tmp;
    enum err rc;

    if (!origin)
        origin = "--set";
    if (!k)
        return unknown_key(origin, dotted_key, eb);
    config_copy(&tmp, c);
    if ((rc = set_from_text(&tmp, k, value, origin, eb)) != ERR_OK) {
        config_free(&tmp);
        return rc;
    }
    config_commit(c, &tmp);
    return ERR_OK;
}

/* The value of variable name in envp, or NULL. */
static const char *env_lookup(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp && *envp; envp++) {
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return NULL;
}

/* "server.port" -> "ARC_SERVER_PORT" into out (size n). */
static void env_name_of(const char *key, char *out, size_t n)
{
    size_t j = 0;

    j = (size_t)snprintf(out, n, "ARC_");
    for (; *key && j + 1 < n; key++)
        out[j++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    out[j] = '\0';
}

enum err config_apply_env(struct config *c, char **envp, struct errbuf *eb)
{
    struct config tmp;
    char name[128];
    const char *v;
    enum err rc;
    size_t i;

    config_copy(&tmp, c);
    for (i = 0; i < sizeof(SEED_ENV) / sizeof(SEED_ENV[0]); i++) {
        if (!(v = env_lookup(envp, SEED_ENV[i].env)))
            continue;
        rc = set_from_text(&tmp, key_find(SEED_ENV[i].key), v, SEED_ENV[i].env, eb);
        if (rc != ERR_OK)
            goto fail_free_tmp;
    }
    for (i = 0; i < NKEYS; i++) {
        if (KEYS[i].flags & KF_INTERNAL)
            continue;
        env_name_of(KEYS[i].name, name, sizeof(name));
        if (!(v = env_lookup(envp, name)))
            continue;
        if ((rc = set_from_text(&tmp, &KEYS[i], v, name, eb)) != ERR_OK)
            goto fail_free_tmp;
    }
    config_commit(c, &tmp);
    return ERR_OK;

fail_free_tmp:
    config_free(&tmp);
    return rc;
}

/* ---- dump ------------------------------------------------------------------------ */

static enum err dump_string(struct buf *out, const char *s)
{
    enum err rc = buf_append_char(out, '"');

    for (; rc == ERR_OK && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            rc = buf_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            rc = buf_printf(out, "\\u%04x", ch);
        else
            rc = buf_append_char(out, (char)ch);
    }
    return rc ? rc : buf_append_char(out, '"');
}

enum err config_dump_toml(const struct config *c, struct buf *out)
{
    struct config *cc = (struct config *)c; /* field helpers only read through it */
    const char *sec = NULL, *dot;
    size_t seclen = 0, i;
    enum err rc = ERR_OK;

    for (i = 0; i < NKEYS && rc == ERR_OK; i++) {
        const struct key *k = &KEYS[i];
        if (k->flags & (KF_ALIAS | KF_INTERNAL))
            continue;
        dot = strrchr(k->name, '.');
        if (!sec || (size_t)(dot - k->name) != seclen || strncmp(sec, k->name, seclen) != 0) {
            sec = k->name;
            seclen = (size_t)(dot - k->name);
            rc = buf_printf(out, "%s[%.*s]\n", i ? "\n" : "", (int)seclen, sec);
            if (rc)
                break;
        }
        rc = buf_printf(out, "%s = ", dot + 1);
        if (rc)
            break;
        if (k->type == KT_INT)
            rc = buf_printf(out, "%lld", (long long)*int_field(cc, k));
        else if (k->type == KT_BOOL)
            rc = buf_append_str(out, *bool_field(cc, k) ? "true" : "false");
        else if ((k->flags & KF_SECRET) && **str_field(cc, k))
            rc = dump_string(out, "***");
        else
            rc = dump_string(out, *str_field(cc, k));
        if (rc == ERR_OK)
            rc = buf_append_char(out, '\n');
    }
    return rc;
}

/* ---- finalize ------------------------------------------------------------------- */

static void default_path(char **field, const char *data_dir, const char *sub)
{
    struct buf b;
    size_t n = strlen(data_dir);

    if (**field)
        return;
    buf_init(&b, 0);
    (void)buf_append(&b, data_dir, n);
    if (sub) {
        if (n == 0 || data_dir[n - 1] != '/')
            (void)buf_append_char(&b, '/');
        (void)buf_append_str(&b, sub);
    }
    free(*field);
    *field = buf_steal(&b, NULL);
}

enum err config_finalize(struct config *c, int ncpu, struct errbuf *eb)
{
    const char *be = c->storage.backend;
    long pages, psize;
    int64_t ram_mb = 4096; /* if the OS will not say, assume a small 4 GiB host */

    if (!c->server.data_dir[0])
        return errbuf_set(eb, ERR_INVAL, "server.data_dir: must not be empty");
    if (strcmp(be, "s3") == 0 && !c->storage.s3.bucket[0])
        return errbuf_set(eb, ERR_INVAL,
                          "storage.s3.bucket: must be set when storage.backend = \"s3\"");
    if (strcmp(be, "gcs") == 0 && !c->storage.gcs.bucket[0])
        return errbuf_set(eb, ERR_INVAL,
                          "storage.gcs.bucket: must be set when storage.backend = \"gcs\"");
    if (strcmp(be, "minio") == 0 && !c->storage.minio.bucket[0])
        return errbuf_set(eb, ERR_INVAL,
                          "storage.minio.bucket: must be set when storage.backend = \"minio\"");

    if (ncpu <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ncpu = n > 0 ? (n > 1024 ? 1024 : (int)n) : 1;
    }
    pages = sysconf(_SC_PHYS_PAGES);
    psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0)
        ram_mb = (int64_t)pages / (1024 * 1024 / psize > 0 ? 1024 * 1024 / psize : 1);

    if (!c->server.workers)
        c->server.workers = ncpu;
    if (!c->server.worker_threads)
        /* handlers mostly wait (WAL syncs, disk, DuckDB): enough threads that
         * concurrent writers share one WAL sync instead of queueing behind it */
        c->server.worker_threads = 8 * (int64_t)ncpu < 16 ? 16 : 8 * (int64_t)ncpu;
    if (!c->query.threads)
        c->query.threads = ncpu;
    if (!c->query.max_concurrent)
        c->query.max_concurrent = 2 * (int64_t)ncpu;
    if (!c->ingestion.memory_budget_mb)
        /* bounded so the server's RSS stays modest whatever the machine: past
         * the budget, writes get 503 instead of growing memory */
        c->ingestion.memory_budget_mb = ram_mb / 8 < 64 ? 64 : ram_mb / 8 > 768 ? 768 : ram_mb / 8;
    if (!c->query.hot_cache_mb)
        c->query.hot_cache_mb = ram_mb / 32 < 16 ? 16 : ram_mb / 32 > 256 ? 256 : ram_mb / 32;
    if (!c->ingestion.max_buffer_bytes_mb)
        c->ingestion.max_buffer_bytes_mb = ram_mb / 8 > 32 ? ram_mb / 8 : 32;
    default_path(&c->wal.dir, c->server.data_dir, "wal");
    default_path(&c->storage.cache_dir, c->server.data_dir, "cache");
    default_path(&c->storage.local.path, c->server.data_dir, NULL);
    default_path(&c->query.temp_dir, c->server.data_dir, "tmp");
    return ERR_OK;
}
