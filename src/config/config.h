/* config.h - Arc's configuration: defaults < arc.conf < environment < flags.
 *
 * struct config has one nested struct per arc.conf section, and every field is
 * named exactly like its TOML key, so `[storage.minio] endpoint` is
 * cfg->storage.minio.endpoint. Integers are int64_t, switches bool, and strings
 * char * owned by the config (heap, never NULL after config_defaults()).
 *
 * All sources go through one key table in config.c (name, type, field offset,
 * default, range or allowed values, help text): the file loader, the environment,
 * `--set key=value` flags, config_dump_toml() and the shipped arc.conf agree
 * because of it. Enumerated strings (wal.sync_mode, storage.backend, ...) are
 * validated and stored in lower case.
 *
 * Zero / empty defaults that mean "derive it" (server.workers = cores,
 * wal.dir = data_dir/wal, ...) stay zero / empty until config_finalize() fills
 * them, so a dump before finalize shows what the user wrote.
 *
 * Every function that can fail leaves *c unchanged on failure.
 * Thread: a config is built on one thread at start-up and read-only afterwards. */
#ifndef CONFIG_CONFIG_H
#define CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct config_storage_remote {
    char *endpoint;   /* URL, e.g. "http://127.0.0.1:9000" */
    char *access_key; /* access key id (HMAC key for GCS) */
    char *secret_key; /* secret; masked in dumps */
    char *bucket;     /* bucket name */
    char *database;   /* default database namespace */
    char *region;     /* SigV4 region */
    char *prefix;     /* key prefix inside the bucket, "" = none */
    char *project_id; /* GCS only ("" elsewhere; not a key for minio/s3) */
    bool use_ssl;     /* https to endpoint (when the endpoint has no scheme) */
    bool path_style;  /* path-style addressing instead of virtual-host */
};

struct config {
    struct {
        char *host;                       /* listen address */
        int64_t port;                     /* 1..65535, 0 = pick a free port */
        int64_t workers;                  /* event-loop threads, 0 = cores */
        int64_t worker_threads;           /* blocking-handler pool, 0 = max(16, 8*cores) */
        char *data_dir;                   /* root of catalog, local data, wal, cache */
        int64_t max_payload_mb;           /* request body cap, MiB */
        int64_t max_decompressed_mb;      /* body cap after gzip/zstd, MiB */
        int64_t header_timeout_seconds;   /* time to receive request headers */
        int64_t idle_timeout_seconds;     /* keep-alive idle close */
        int64_t max_connections;          /* concurrent connections */
        char *cors_origins;               /* comma-separated origins, "*" = any, "" = off */
        bool access_log;                  /* one log line per request */
        bool public_metrics;              /* /metrics without a token */
        int64_t shutdown_timeout_seconds; /* graceful drain before exit */
    } server;
    struct {
        bool enabled;              /* require tokens on non-public routes */
        char *bootstrap_token;     /* admin token created at first start ("" = generate) */
        int64_t cache_ttl_seconds; /* token lookup cache */
    } auth;
    struct {
        char *level;  /* debug|info|warn|warning|error|fatal */
        char *format; /* logfmt|json */
    } logging;
    struct {
        bool enabled;        /* cache query results */
        int64_t ttl_seconds; /* entry lifetime */
        int64_t max_size_mb; /* total cache size, MiB */
    } query_cache;
    struct {
        int64_t timeout_seconds; /* per query, 0 = none */
        int64_t max_concurrent;  /* running queries, 0 = 2*cores */
        char *memory_limit;      /* DuckDB memory_limit, e.g. "4GB"; "" = DuckDB default */
        int64_t threads;         /* DuckDB threads, 0 = cores */
        char *temp_dir;          /* DuckDB spill dir, "" = data_dir/tmp */
        int64_t max_sql_kb;      /* SQL text cap, KiB */
        bool hot_cache;          /* keep recently written files' rows in memory */
        int64_t hot_cache_mb;    /* their memory, MiB; 0 = RAM/32, at most 256 */
        bool native;             /* native executor for simple shapes (query/native.h) */
    } query;
    struct {
        int64_t buffer_size;         /* rows per measurement buffer before flush */
        int64_t buffer_age_seconds;  /* flush a buffer at this age */
        int64_t max_buffer_bytes_mb; /* all buffers, MiB; 0 = 1/8 of RAM */
        int64_t memory_budget_mb;    /* ingest memory before 429/503, MiB; 0 = 1/4 of RAM */
        char *compression;           /* parquet codec: zstd|snappy|none */
        int64_t compression_level;   /* zstd level 1..22 */
        int64_t flush_threads;       /* parquet writer threads */
    } ingestion;
    struct {
        bool enabled;            /* write-ahead log on */
        char *sync_mode;         /* fsync|fdatasync|async */
        char *dir;               /* "" = data_dir/wal */
        int64_t max_size_mb;     /* rotate a segment at this size, MiB */
        int64_t max_age_seconds; /* rotate a segment at this age */
        bool preallocate;        /* zero-fill segments ahead of records (cheaper fdatasync) */
    } wal;
    struct {
        char *backend;        /* local|s3|minio|gcs */
        char *cache_dir;      /* remote file cache, "" = data_dir/cache */
        int64_t cache_max_mb; /* cache size, MiB */
        int64_t spool_max_mb; /* files held locally while the remote is away, MiB */
        int64_t multipart_threshold_mb; /* S3: multipart upload above this, MiB */
        int64_t multipart_part_mb;      /* S3: part size, MiB (>= 5) */
        struct {
            char *path; /* "" = data_dir */
        } local;
        struct config_storage_remote minio;
        struct config_storage_remote s3;
        struct config_storage_remote gcs;
    } storage;
    struct {
        bool enabled;                /* background compaction */
        int64_t min_age_hours;       /* only hours older than this */
        int64_t min_files;           /* only partitions with at least this many files */
        int64_t target_file_size_mb; /* output file size, MiB */
        char *schedule;              /* 5-field cron expression */
        int64_t max_concurrent_jobs; /* parallel jobs */
        char *compression;           /* zstd|snappy|none */
        int64_t compression_level;   /* zstd level 1..22 */
    } compaction;
};

/* Fill c with the built-in defaults: a working server with no file (local storage
 * in ./data, port 8000, auth on). c's previous contents are ignored (not freed). */
void config_defaults(struct config *c);

/* Free the strings c owns and zero it. Accepts a zeroed config. */
void config_free(struct config *c);

/* Overlay the TOML file at path onto c. Unknown sections or keys, wrong types and
 * out-of-range values stop the load with, e.g.,
 *   "<path>:LINE: unknown key 'server.prot'"
 *   "<path>:LINE: server.port: expected integer, got string"
 *   "<path>:LINE: wal.sync_mode: 'fast' is not one of fsync|fdatasync|async"
 * and syntax errors with "<path>:LINE:COL: ..." (see core/toml.h).
 * ERR_IO: unreadable; ERR_PARSE / ERR_INVAL / ERR_CONFLICT / ERR_LIMIT otherwise. */
enum err config_load_file(struct config *c, const char *path, struct errbuf *eb);

/* Overlay environment variables (envp as in main's third argument or `environ`,
 * NULL-terminated "NAME=value" strings). Recognised names:
 *   ARC_<SECTION>_<KEY> for every key, dots and nesting joined by '_', upper case
 *     (ARC_SERVER_PORT, ARC_STORAGE_MINIO_ENDPOINT, ARC_WAL_SYNC_MODE, ...);
 *   the seed's names (ARC_HOST, ARC_PORT, STORAGE_BACKEND, MINIO_ENDPOINT,
 *     WAL_ENABLED, LOG_LEVEL, ...; the table is in config.c and docs/config.md).
 * When both spellings are set the ARC_<SECTION>_<KEY> one wins. Unknown ARC_*
 * variables are ignored. A bad value fails with the variable's name, e.g.
 * "ARC_SERVER_PORT: server.port: expected integer, got 'abc'". */
enum err config_apply_env(struct config *c, char **envp, struct errbuf *eb);

/* Set one key from text, as env and `--set key=value` flags do. origin names the
 * source in messages ("--set", "ARC_PORT"). Booleans accept true/false/1/0/yes/no/
 * on/off, integers decimal digits with optional sign, enums any case. The alias
 * auth.default_token (seed) sets auth.bootstrap_token.
 * ERR_NOTFOUND: "<origin>: unknown key 'x'"; ERR_INVAL: bad value. */
enum err config_set(struct config *c, const char *dotted_key, const char *value,
                    const char *origin, struct errbuf *eb);

/* Append c as TOML that config_load_file() reads back, one [section] per table,
 * secrets (auth.bootstrap_token, *.secret_key) shown as "***" when set.
 * ERR_LIMIT only if out has a cap that is too small. */
enum err config_dump_toml(const struct config *c, struct buf *out);

/* Check cross-key rules and resolve derived defaults, in place:
 *   workers/query.threads = ncpu, worker_threads = max(16, 8*ncpu), query.max_concurrent = 2*ncpu,
 *   wal.dir = data_dir/wal, storage.cache_dir = data_dir/cache,
 *   storage.local.path = data_dir, query.temp_dir = data_dir/tmp,
 *   ingestion.memory_budget_mb = RAM/4, ingestion.max_buffer_bytes_mb = RAM/8.
 * ncpu <= 0 means "ask the OS". Rules: s3 and gcs backends need a bucket;
 * server.data_dir must not be empty. ERR_INVAL names the key. */
enum err config_finalize(struct config *c, int ncpu, struct errbuf *eb);

#endif
