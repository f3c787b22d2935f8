/* main.c - arguments, configuration, start-up and shutdown order.
 *
 *   arc serve [options]      run the server
 *   arc token <cmd> ...      manage API tokens offline (same arc.db)
 *   arc version              print the version
 *
 * Start-up order: config (defaults < arc.conf < env < flags) -> logging ->
 * data dir -> metrics -> catalog -> auth (+ bootstrap token) -> HTTP server ->
 * /ready. Shutdown (SIGTERM/SIGINT) runs it backwards: stop accepting, let
 * in-flight requests finish, flush, close, exit 0.
 * Signals are blocked in every thread and taken synchronously with sigwait()
 * by the main thread, so no code runs in signal context. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "auth/auth.h"
#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "duck/duck.h"
#include "http/http.h"
#include "http/routes.h"
#include "query/query.h"
#include "ingest/pipeline.h"
#include "maint/compact.h"
#include "storage/hot.h"
#include "storage/storage.h"
#include "wal/wal.h"

#include <openssl/rand.h>

extern char **environ;

static const char usage_main[] =
    "usage: arc <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve     run the server (default config: ./arc.conf if present, else built-in)\n"
    "  token     manage API tokens in {data_dir}/arc.db (run `arc token --help`)\n"
    "  catalog   `arc catalog rebuild`: recreate the file list from storage\n"
    "  version   print the version\n"
    "\n"
    "Run `arc <command> --help` for the options of a command.\n";

static const char usage_serve[] =
    "usage: arc serve [options]\n"
    "\n"
    "  --config FILE      read FILE instead of ./arc.conf (must exist)\n"
    "  --no-config        ignore ./arc.conf (defaults + environment + flags only)\n"
    "  --host ADDR        server.host\n"
    "  --port N           server.port (0 = pick a free port; the ready line says which)\n"
    "  --data-dir DIR     server.data_dir\n"
    "  --log-level LEVEL  logging.level (debug, info, warn, error)\n"
    "  --set KEY=VALUE    any config key, e.g. --set wal.enabled=true (repeatable)\n"
    "  --print-config     print the merged configuration as TOML and exit\n"
    "\n"
    "Precedence: built-in defaults < arc.conf < environment (ARC_<SECTION>_<KEY> and the\n"
    "seed's names such as ARC_PORT, STORAGE_BACKEND, WAL_ENABLED) < flags.\n";

/* ------------------------------------------------------------ configuration */

struct cli {
    const char *config_path;
    bool no_config, print_config, help;
};

/* Parse config-related flags, applying key flags to c in order. Leaves other
 * arguments untouched; returns ERR_INVAL for an unknown flag when strict. */
static enum err parse_flags(int argc, char **argv, struct cli *cli, struct config *c, bool strict,
                            struct errbuf *eb)
{
    static const struct {
        const char *flag, *key;
    } direct[] = {{"--host", "server.host"},
                  {"--port", "server.port"},
                  {"--data-dir", "server.data_dir"},
                  {"--log-level", "logging.level"}};
    int i;
    size_t k;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool matched = false;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli->help = true;
            continue;
        }
        if (!strcmp(a, "--no-config")) {
            cli->no_config = true;
            continue;
        }
        if (!strcmp(a, "--print-config")) {
            cli->print_config = true;
            continue;
        }
        if (!strcmp(a, "--config")) {
            if (i + 1 >= argc)
                return errbuf_set(eb, ERR_INVAL, "--config needs a file name");
            cli->config_path = argv[++i];
            continue;
        }
        if (!strcmp(a, "--set")) {
            char key[256];
            const char *eq;
            if (i + 1 >= argc || !(eq = strchr(argv[i + 1], '=')) ||
                (size_t)(eq - argv[i + 1]) >= sizeof(key))
                return errbuf_set(eb, ERR_INVAL, "--set needs KEY=VALUE");
            if (c) {
                memcpy(key, argv[i + 1], (size_t)(eq - argv[i + 1]));
                key[eq - argv[i + 1]] = '\0';
                if (config_set(c, key, eq + 1, "--set", eb) != ERR_OK)
                    return eb->code;
            }
            i++;
            continue;
        }
        for (k = 0; k < sizeof(direct) / sizeof(direct[0]); k++) {
            if (strcmp(a, direct[k].flag) != 0)
                continue;
            if (i + 1 >= argc)
                return errbuf_set(eb, ERR_INVAL, "%s needs a value", a);
            if (c && config_set(c, direct[k].key, argv[i + 1], direct[k].flag, eb) != ERR_OK)
                return eb->code;
            i++;
            matched = true;
            break;
        }
        if (!matched && strict)
            return errbuf_set(eb, ERR_INVAL, "unknown option '%s' (see arc serve --help)", a);
    }
    return ERR_OK;
}

/* Make a relative path absolute against the working directory (DuckDB's
 * sandbox and the storage layer compare absolute paths). */
static void absolutize(char **path)
{
    char cwd[4096], *abs;
    size_t n;

    if (!*path || !**path || **path == '/' || !getcwd(cwd, sizeof(cwd)))
        return;
    n = strlen(cwd) + strlen(*path) + 2;
    abs = xmalloc(n);
    snprintf(abs, n, "%s/%s", cwd, (*path)[0] == '.' && (*path)[1] == '/' ? *path + 2 : *path);
    free(*path);
    *path = abs;
}

/* defaults < file < env < flags, then derived values. */
static enum err load_config(int argc, char **argv, bool strict, struct cli *cli, struct config *c,
                            struct errbuf *eb)
{
    const char *path;
    enum err rc;

    config_defaults(c);
    rc = parse_flags(argc, argv, cli, NULL, strict, eb); /* find --config first */
    if (rc)
        return rc;
    path = cli->config_path;
    if (!path && !cli->no_config && access("arc.conf", F_OK) == 0)
        path = "arc.conf";
    if (path && config_load_file(c, path, eb) != ERR_OK)
        return eb->code;
    if (config_apply_env(c, environ, eb) != ERR_OK)
        return eb->code;
    rc = parse_flags(argc, argv, cli, c, strict, eb);
    if (rc)
        return rc;
    rc = config_finalize(c, 0, eb);
    if (rc)
        return rc;
    absolutize(&c->server.data_dir);
    absolutize(&c->storage.local.path);
    absolutize(&c->storage.cache_dir);
    absolutize(&c->query.temp_dir);
    absolutize(&c->wal.dir);
    return ERR_OK;
}

/* ------------------------------------------------------------------- serve */

static void collect_process(struct metrics *m, void *ctx)
{
    struct app *app = ctx;
    metric_set(metrics_gauge(m, "arc_process_resident_memory_bytes", "Resident set size", NULL),
               (int64_t)metrics_rss_bytes());
    metric_set(metrics_gauge(m, "arc_uptime_seconds", "Seconds since start", NULL),
               (clock_now_us() - app->start_us) / 1000000);
    metric_set(metrics_gauge(m, "arc_ready", "1 once start-up recovery has finished", NULL),
               app->ready ? 1 : 0);
}

struct housekeeper {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

/* Background duties that must never run on an event loop: age-based buffer
 * flushes and retries (every 100 ms) and token last-used times (every second). */
static void *housekeeping_main(void *arg)
{
    struct housekeeper *h = arg;
    struct timespec ts;
    struct errbuf eb;
    unsigned ticks = 0;
    uint64_t trimmed_at = 0; /* rows_flushed at the last malloc_trim */

    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000; /* 100 ms: the resolution of age-based flushes */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->wake, &h->lock, &ts);
        if (h->stop)
            break;
        pthread_mutex_unlock(&h->lock);
        if (h->app->buffers)
            bufmgr_tick(h->app->buffers);
        /* glibc keeps freed memory in each of its arenas (up to 8 per core, one per
         * contending thread): ingest batches allocated by handler threads and freed
         * by flushers left ~400 MB of RSS that no one used (90 s of unique
         * iot-columnar: peak 1.41 GB; 1.02 GB with one arena per core, but that
         * cap slowed queries by 5-20 % through malloc contention in DuckDB).
         * Handing free pages back every 2 s costs a walk of the arenas, and it
         * also unmaps the pages every query reuses: each one faulted back in (a
         * SELECT 1 took 9 ms of CPU instead of 5 with the hot tier loaded). So
         * trim only when flushes ran since the last trim: during and just after
         * ingest, never under a query-only load. */
        if (++ticks % 20 == 0 && h->app->buffers) {
            struct bufmgr_stats st;
            bufmgr_get_stats(h->app->buffers, &st);
            if (st.rows_flushed != trimmed_at) {
                trimmed_at = st.rows_flushed;
                malloc_trim(0);
            }
        }
        if (ticks % 10 == 0) {
            errbuf_init(&eb);
            if (h->app->auth && auth_flush_last_used(h->app->auth, &eb) != ERR_OK)
                log_warn("token last-used update failed", "error=\"%s\"", eb.msg);
            errbuf_init(&eb);
            if (h->app->pipeline && h->app->ready &&
                ingest_pipeline_checkpoint(h->app->pipeline, &eb) != ERR_OK)
                log_warn("WAL checkpoint failed", "error=\"%s\"", eb.msg);
        }
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static enum batch_type type_from_sql(const char *t)
{
    if (!strcmp(t, "DOUBLE"))
        return BATCH_F64;
    if (!strcmp(t, "BIGINT"))
        return BATCH_I64;
    if (!strcmp(t, "UBIGINT"))
        return BATCH_U64;
    if (!strcmp(t, "BOOLEAN"))
        return BATCH_BOOL;
    return BATCH_STR;
}

/* Teach the buffers every stored measurement's schema, so a type conflict with
 * data written before a restart is caught at write time. */
static enum err load_schemas(struct app *app, struct errbuf *eb)
{
    struct catalog_measurement *ms = NULL;
    size_t n = 0, i, k;
    enum err rc;

    rc = catalog_measurements_list(app->catalog, NULL, &ms, &n, eb);
    if (rc)
        return rc;
    for (i = 0; i < n && rc == ERR_OK; i++) {
        struct catalog_column *cols = NULL;
        struct bufmgr_col_schema *sc;
        size_t nc = 0;
        rc = catalog_columns_list(app->catalog, ms[i].database, ms[i].measurement, &cols, &nc, eb);
        if (rc)
            break;
        sc = xcalloc(nc ? nc : 1, sizeof(*sc));
        for (k = 0; k < nc; k++) {
            sc[k].name = cols[k].name;
            sc[k].type = type_from_sql(cols[k].type);
            sc[k].is_tag = cols[k].is_tag;
        }
        bufmgr_set_schema(app->buffers, ms[i].database, ms[i].measurement, sc, nc);
        free(sc);
        catalog_columns_free(cols, nc);
    }
    catalog_measurements_free(ms, n);
    return rc;
}

/* This node's id: random, made once, kept in the catalog (part of file names). */
static enum err node_id(struct catalog *c, char *out, size_t out_len, struct errbuf *eb)
{
    char *v = NULL;
    unsigned char rnd[4];

    if (catalog_meta_get(c, "node_id", &v, eb) == ERR_OK) {
        snprintf(out, out_len, "%s", v);
        free(v);
        return ERR_OK;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return errbuf_set(eb, ERR_INTERNAL, "no randomness for the node id");
    snprintf(out, out_len, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    return catalog_meta_set(c, "node_id", out, eb);
}

/* Environment-only knob (no config key yet): a size in MiB, 0 when unset. */

/* storage_opts from the configuration (everything but catalog, duck, metrics). */
static void storage_opts_from_config(const struct config *cfg, const char *nid,
                                     struct storage_opts *so)
{
    const struct config_storage_remote *r = &cfg->storage.minio;

    memset(so, 0, sizeof(*so));
    so->backend = cfg->storage.backend;
    so->local_root = cfg->storage.local.path;
    so->node_id = nid;
    so->compression = cfg->ingestion.compression;
    so->compression_level = (int)cfg->ingestion.compression_level;
    if (!strcmp(cfg->storage.backend, "s3"))
        r = &cfg->storage.s3;
    else if (!strcmp(cfg->storage.backend, "gcs"))
        r = &cfg->storage.gcs;
    so->s3.endpoint = r->endpoint[0] ? r->endpoint : "https://s3.amazonaws.com";
    so->s3.access_key = r->access_key;
    so->s3.secret_key = r->secret_key;
    so->s3.bucket = r->bucket;
    so->s3.region = r->region;
    so->s3.prefix = r->prefix;
    so->s3.use_ssl = r->use_ssl;
    so->s3.path_style = r->path_style;
    so->s3.multipart_threshold_bytes = (uint64_t)cfg->storage.multipart_threshold_mb << 20;
    so->s3.part_bytes = (uint64_t)cfg->storage.multipart_part_mb << 20;
    so->create_bucket = true;
    so->cache_dir = cfg->storage.cache_dir;
    so->cache_max_bytes = (uint64_t)cfg->storage.cache_max_mb << 20;
    /* a path handed to a query stays cached as long as the query may run */
    so->cache_pin_ms = cfg->query.timeout_seconds * 1000;
    so->spool_max_bytes = (uint64_t)cfg->storage.spool_max_mb << 20;
}

/* Remote backends: the query sandbox reads only under storage.local.path, so the
 * cache (and the spool beside it) must live there. */
static enum err check_remote_dirs(const struct config *cfg, struct errbuf *eb)
{
    size_t n = strlen(cfg->storage.local.path);

    if (!strcmp(cfg->storage.backend, "local"))
        return ERR_OK;
    if (strncmp(cfg->storage.cache_dir, cfg->storage.local.path, n) != 0 ||
        (cfg->storage.cache_dir[n] != '/' && cfg->storage.cache_dir[n] != '\0'))
        return errbuf_set(eb, ERR_INVAL,
                          "storage.cache_dir (%s) must be inside storage.local.path (%s): "
                          "queries may read only there",
                          cfg->storage.cache_dir, cfg->storage.local.path);
    return ERR_OK;
}

/* DuckDB, storage and buffers: everything between a decoded write and a file. */
static enum err open_data_path(struct app *app, const struct config *cfg, struct errbuf *eb)
{
    struct duck_opts dopt;
    struct storage_opts so;
    struct bufmgr_opts bo;
    char nid[64];
    size_t removed = 0, adopted = 0;
    enum err rc;

    memset(&dopt, 0, sizeof(dopt));
    dopt.data_dir = cfg->storage.local.path;
    dopt.temp_dir = cfg->query.temp_dir;
    dopt.query_threads = (unsigned)cfg->query.threads;
    dopt.memory_limit = cfg->query.memory_limit;
    rc = duck_open(&dopt, &app->duck, eb);
    if (rc)
        return rc;
    rc = node_id(app->catalog, nid, sizeof(nid), eb);
    if (rc)
        return rc;
    rc = check_remote_dirs(cfg, eb);
    if (rc)
        return rc;
    storage_opts_from_config(cfg, nid, &so);
    so.catalog = app->catalog;
    so.duck = app->duck;
    so.metrics = app->metrics;
    if (cfg->query.hot_cache)
        app->hot = hot_new((size_t)cfg->query.hot_cache_mb << 20);
    hot_set_metrics(app->hot, app->metrics);
    so.hot = app->hot;
    rc = storage_open(&so, &app->storage, eb);
    if (rc)
        return rc;
    rc = storage_remove_orphans(app->storage, !cfg->wal.enabled, &removed, &adopted, eb);
    if (rc)
        return rc;
    if (removed)
        log_warn("removed files left by an interrupted flush", "count=%zu", removed);
    if (adopted)
        log_warn("adopted files left by an interrupted flush", "count=%zu", adopted);

    if (cfg->wal.enabled) {
        struct wal_opts wo;
        uint64_t max_lsn = 0;
        char *cp = NULL;
        memset(&wo, 0, sizeof(wo));
        wo.dir = cfg->wal.dir;
        wo.sync = !strcmp(cfg->wal.sync_mode, "fsync")   ? WAL_SYNC_FSYNC
                  : !strcmp(cfg->wal.sync_mode, "async") ? WAL_SYNC_ASYNC
                                                          : WAL_SYNC_FDATASYNC;
        wo.max_segment_bytes = (uint64_t)cfg->wal.max_size_mb << 20;
        wo.max_segment_age_ms = cfg->wal.max_age_seconds * 1000;
        wo.preallocate = cfg->wal.preallocate;
        wo.metrics = app->metrics;
        rc = catalog_wal_max_lsn(app->catalog, &max_lsn, eb);
        if (rc)
            return rc;
        /* LSNs never restart below what a file already claims */
        wo.next_lsn_hint = max_lsn + 1;
        if (catalog_meta_get(app->catalog, "wal_checkpoint_lsn", &cp, eb) == ERR_OK) {
            wo.checkpoint_lsn = strtoull(cp, NULL, 10);
            free(cp);
        }
        errbuf_init(eb);
        rc = wal_open(&wo, &app->wal, eb);
        if (rc)
            return rc;
    }

    memset(&bo, 0, sizeof(bo));
    bo.flush_rows = (size_t)cfg->ingestion.buffer_size;
    bo.flush_age_ms = cfg->ingestion.buffer_age_seconds * 1000;
    /* a measurement is flushed at 128 MiB (or the whole-buffer cap if lower) so
     * one Parquet write never needs more memory than that */
    bo.flush_bytes = (size_t)cfg->ingestion.max_buffer_bytes_mb << 20;
    if (bo.flush_bytes == 0 || bo.flush_bytes > ((size_t)128 << 20))
        bo.flush_bytes = (size_t)128 << 20;
    bo.budget_bytes = (size_t)cfg->ingestion.memory_budget_mb << 20;
    bo.flush_threads = (unsigned)cfg->ingestion.flush_threads;
    bo.sink = storage_write_batch;
    bo.sink_ctx = app->storage;
    bo.metrics = app->metrics;
    app->buffers = bufmgr_new(&bo);
    {
        struct query_engine_opts qo = {
            .duck = app->duck, .catalog = app->catalog, .buffers = app->buffers,
            .storage = app->storage, .hot = app->hot, .metrics = app->metrics,
            .timeout_ms = cfg->query.timeout_seconds * 1000,
            .max_concurrent = (unsigned)cfg->query.max_concurrent,
            .max_sql_bytes = (size_t)cfg->query.max_sql_kb * 1024,
            .native = cfg->query.native};
        rc = query_engine_new(&qo, &app->query, eb);
        if (rc)
            return rc;
    }
    rc = load_schemas(app, eb);
    if (rc)
        return rc;
    app->pipeline = ingest_pipeline_new(app->buffers, app->wal, app->catalog, app->metrics);
    if (storage_is_remote(app->storage)) {
        log_info("compaction is off: it runs only with local storage", "backend=%s",
                 cfg->storage.backend);
    } else {
        struct compactor_opts co = {
            .catalog = app->catalog, .duck = app->duck, .storage = app->storage,
            .query = app->query, .metrics = app->metrics, .enabled = cfg->compaction.enabled,
            .schedule = cfg->compaction.schedule,
            .min_age_us = cfg->compaction.min_age_hours * INT64_C(3600000000),
            .min_files = (unsigned)cfg->compaction.min_files,
            .target_bytes = (uint64_t)cfg->compaction.target_file_size_mb << 20,
            .jobs = (unsigned)cfg->compaction.max_concurrent_jobs,
            .wal_enabled = cfg->wal.enabled};
        co.pq.compression = !strcmp(cfg->compaction.compression, "snappy") ? DUCK_PQ_SNAPPY
                            : !strcmp(cfg->compaction.compression, "none") ? DUCK_PQ_UNCOMPRESSED
                                                                            : DUCK_PQ_ZSTD;
        co.pq.zstd_level = (int)cfg->compaction.compression_level;
        rc = compactor_new(&co, &app->compactor, eb);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static unsigned ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    struct cli cli = {0};
    struct app app;
    struct errbuf eb;
    struct http_server_opts ho;
    struct housekeeper hk;
    enum log_level lvl;
    sigset_t sigs;
    char *printed = NULL;
    int sig = 0, rc = 1, rc_flush = 0;
    bool replay_failed = false;
    bool drained;

    memset(&app, 0, sizeof(app));
    memset(&hk, 0, sizeof(hk));
    errbuf_init(&eb);
    if (load_config(argc, argv, true, &cli, &cfg, &eb) != ERR_OK) {
        if (cli.help) {
            fputs(usage_serve, stdout);
            return 0;
        }
        fprintf(stderr, "arc: %s\n", eb.msg);
        config_free(&cfg);
        return 2;
    }
    if (cli.help) {
        fputs(usage_serve, stdout);
        config_free(&cfg);
        return 0;
    }
    if (cli.print_config) {
        struct buf b;
        buf_init(&b, 0);
        config_dump_toml(&cfg, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_release(&b);
        config_free(&cfg);
        return 0;
    }
    if (log_level_parse(cfg.logging.level, &lvl))
        log_set_level(lvl);

    /* block the shutdown signals before any thread starts, so all inherit it */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that goes away must not kill the server */

    app.cfg = &cfg;
    app.start_us = clock_now_us();
    app.metrics = metrics_new();
    metrics_on_collect(app.metrics, collect_process, &app);

    if (fileio_mkdirs(cfg.server.data_dir, 0755, NULL, &eb) != ERR_OK) {
        log_error("cannot create data directory", "error=\"%s\"", eb.msg);
        goto out;
    }
    if (catalog_open(cfg.server.data_dir, &app.catalog, &eb) != ERR_OK) {
        log_error("cannot open catalog", "error=\"%s\"", eb.msg);
        goto out;
    }
    {
        struct auth_opts ao = {.cache_ttl_ms = (unsigned)cfg.auth.cache_ttl_seconds * 1000};
        if (auth_new(app.catalog, &ao, &app.auth, &eb) != ERR_OK) {
            log_error("cannot start auth", "error=\"%s\"", eb.msg);
            goto out;
        }
    }
    if (cfg.auth.enabled) {
        if (auth_bootstrap(app.auth, cfg.auth.bootstrap_token, &printed, &eb) != ERR_OK) {
            log_error("cannot create the bootstrap admin token", "error=\"%s\"", eb.msg);
            goto out;
        }
        if (printed) {
            fprintf(stderr,
                    "\n==================================================================\n"
                    " Arc created the first admin token. It is shown only this once:\n\n"
                    "   %s\n\n"
                    " Use it as: Authorization: Bearer <token>\n"
                    "==================================================================\n\n",
                    printed);
            free(printed);
        }
    } else {
        log_warn("authentication is DISABLED: every client has full access",
                 "setting=auth.enabled");
    }

    if (open_data_path(&app, &cfg, &eb) != ERR_OK) {
        log_error("cannot open the data path", "error=\"%s\"", eb.msg);
        goto out;
    }

    memset(&ho, 0, sizeof(ho));
    ho.host = cfg.server.host;
    ho.port = (int)cfg.server.port;
    ho.event_threads = cfg.server.workers > 0 ? (unsigned)cfg.server.workers : ncpu();
    ho.worker_threads =
        cfg.server.worker_threads > 0 ? (unsigned)cfg.server.worker_threads : 2 * ncpu();
    ho.max_body_bytes = (size_t)cfg.server.max_payload_mb << 20;
    ho.max_decompressed_bytes = (size_t)cfg.server.max_decompressed_mb << 20;
    ho.idle_timeout_s = (unsigned)cfg.server.idle_timeout_seconds;
    ho.header_timeout_s = (unsigned)cfg.server.header_timeout_seconds;
    ho.max_connections = (unsigned)cfg.server.max_connections;
    ho.cors_origins = cfg.server.cors_origins;
    ho.access_log = cfg.server.access_log;
    ho.public_metrics = cfg.server.public_metrics;
    ho.auth_enabled = cfg.auth.enabled;
    app.http = http_server_new(&app, &ho);
    routes_core_register(app.http);
    routes_auth_register(app.http);
    routes_write_register(app.http);
    routes_wal_register(app.http);
    routes_maint_register(app.http);
    routes_query_register(app.http);
    if (http_server_start(app.http, &eb) != ERR_OK) {
        log_error("cannot start HTTP server", "error=\"%s\"", eb.msg);
        goto out;
    }

    hk.app = &app;
    pthread_mutex_init(&hk.lock, NULL);
    pthread_cond_init(&hk.wake, NULL);
    pthread_create(&hk.thread, NULL, housekeeping_main, &hk);

    if (app.wal) {
        uint64_t recs = 0, rows = 0;
        int64_t t0 = clock_mono_ns();
        errbuf_init(&eb);
        if (ingest_pipeline_replay(app.pipeline, &recs, &rows, &eb) != ERR_OK) {
            log_error("WAL replay failed", "error=\"%s\"", eb.msg);
            replay_failed = true;
        }
        log_info("WAL replayed", "records=%llu rows=%llu ms=%.1f", (unsigned long long)recs,
                 (unsigned long long)rows, (double)(clock_mono_ns() - t0) / 1e6);
    }
    app.ready = !replay_failed;
    if (app.ready)
        log_info("arc ready", "host=%s port=%d data_dir=%s event_threads=%u worker_threads=%u "
             "auth=%s version=%s",
             cfg.server.host, http_server_port(app.http), cfg.server.data_dir, ho.event_threads,
             ho.worker_threads, cfg.auth.enabled ? "on" : "off", ARC_VERSION);

    while (!replay_failed && sigwait(&sigs, &sig) != 0)
        ;
    if (!replay_failed)
        log_info("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    app.stopping = true;
    http_server_quiesce(app.http);
    drained = http_server_drain(app.http, (int)cfg.server.shutdown_timeout_seconds * 1000);
    if (!drained)
        log_warn("shutdown timeout: closing connections with requests in flight",
                 "timeout_s=%lld", (long long)cfg.server.shutdown_timeout_seconds);

    if (app.buffers && !replay_failed) {
        errbuf_init(&eb);
        if (bufmgr_flush_all(app.buffers, (int)cfg.server.shutdown_timeout_seconds * 1000, &eb) !=
            ERR_OK) {
            log_error(app.wal ? "shutdown flush incomplete: the WAL keeps the rows"
                              : "shutdown flush incomplete: buffered rows may be lost",
                      "error=\"%s\"", eb.msg);
            rc_flush = app.wal ? 0 : 1;
        }
        errbuf_init(&eb);
        if (ingest_pipeline_checkpoint(app.pipeline, &eb) != ERR_OK)
            log_warn("WAL checkpoint failed", "error=\"%s\"", eb.msg);
    }
    pthread_mutex_lock(&hk.lock);
    hk.stop = true;
    pthread_cond_signal(&hk.wake);
    pthread_mutex_unlock(&hk.lock);
    pthread_join(hk.thread, NULL);
    pthread_cond_destroy(&hk.wake);
    pthread_mutex_destroy(&hk.lock);
    rc = replay_failed ? 1 : rc_flush;

out:
    http_server_free(app.http);
    compactor_free(app.compactor);
    ingest_pipeline_free(app.pipeline);
    query_engine_free(app.query);
    bufmgr_free(app.buffers);
    storage_close(app.storage);
    hot_free(app.hot);
    duck_close(app.duck);
    if (app.auth) {
        errbuf_init(&eb);
        auth_flush_last_used(app.auth, &eb);
        auth_free(app.auth);
    }
    catalog_close(app.catalog);
    metrics_free(app.metrics);
    if (rc == 0)
        log_info("stopped", "%s", "clean=1");
    config_free(&cfg);
    return rc;
}

/* -------------------------------------------------------------------- token */

static int cmd_token(int argc, char **argv)
{
    struct config cfg;
    struct cli cli = {0};
    struct errbuf eb;
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
    int i, n = 0, rc;

    /* strip the config flags (--data-dir, --config, --set) and keep the rest */
    for (i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "--data-dir") || !strcmp(argv[i], "--config") ||
             !strcmp(argv[i], "--set")) &&
            i + 1 < argc) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--no-config"))
            continue;
        rest[n++] = argv[i];
    }
    errbuf_init(&eb);
    for (i = 1; i < n; i++)
        if (!strcmp(rest[i], "--help") || !strcmp(rest[i], "-h")) {
            /* help needs no data directory: do not create one */
            rc = auth_cli_main(n, rest, "");
            free(rest);
            return rc;
        }
    if (load_config(argc, argv, false, &cli, &cfg, &eb) != ERR_OK) {
        fprintf(stderr, "arc: %s\n", eb.msg);
        free(rest);
        config_free(&cfg);
        return 2;
    }
    if (fileio_mkdirs(cfg.server.data_dir, 0755, NULL, &eb) != ERR_OK) {
        fprintf(stderr, "arc: %s\n", eb.msg);
        free(rest);
        config_free(&cfg);
        return 1;
    }
    rc = auth_cli_main(n, rest, cfg.server.data_dir);
    free(rest);
    config_free(&cfg);
    return rc;
}

/* ------------------------------------------------------------------ catalog */

static const char usage_catalog[] =
    "usage: arc catalog rebuild [--config FILE] [--data-dir DIR] [--set KEY=VALUE ...]\n"
    "\n"
    "Recreate the catalog's list of data files from storage (a directory walk for\n"
    "storage.backend = local, a bucket listing for s3/minio/gcs): each Parquet file's\n"
    "rows, time range and columns are read back with DuckDB. Run it with the server\n"
    "stopped.\n";

static int cmd_catalog(int argc, char **argv)
{
    struct config cfg;
    struct cli cli = {0};
    struct errbuf eb;
    struct catalog *cat = NULL;
    struct duck *duck = NULL;
    struct storage *st = NULL;
    struct storage_opts so;
    struct duck_opts dopt;
    char nid[64];
    size_t files = 0, added = 0, removed = 0;
    int rc = 1;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_catalog, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "rebuild") != 0) {
        fprintf(stderr, "arc catalog: unknown command '%s'\n\n%s", argv[1], usage_catalog);
        return 2;
    }
    errbuf_init(&eb);
    if (load_config(argc - 1, argv + 1, true, &cli, &cfg, &eb) != ERR_OK) {
        fprintf(stderr, "arc: %s\n", eb.msg);
        config_free(&cfg);
        return 2;
    }
    if (cli.help) {
        fputs(usage_catalog, stdout);
        config_free(&cfg);
        return 0;
    }
    {
        enum log_level lvl;
        if (log_level_parse(cfg.logging.level, &lvl))
            log_set_level(lvl);
    }
    if (fileio_mkdirs(cfg.server.data_dir, 0755, NULL, &eb) != ERR_OK ||
        catalog_open(cfg.server.data_dir, &cat, &eb) != ERR_OK ||
        check_remote_dirs(&cfg, &eb) != ERR_OK || node_id(cat, nid, sizeof(nid), &eb) != ERR_OK)
        goto out;
    memset(&dopt, 0, sizeof(dopt));
    dopt.data_dir = cfg.storage.local.path;
    dopt.temp_dir = cfg.query.temp_dir;
    dopt.query_threads = 1;
    if (duck_open(&dopt, &duck, &eb) != ERR_OK)
        goto out;
    storage_opts_from_config(&cfg, nid, &so);
    so.catalog = cat;
    so.duck = duck;
    so.no_uploader = true;
    so.create_bucket = false;
    if (storage_open(&so, &st, &eb) != ERR_OK)
        goto out;
    if (storage_rebuild_catalog(st, &files, &added, &removed, &eb) != ERR_OK)
        goto out;
    printf("catalog rebuilt from %s storage: %zu files listed, %zu added, %zu removed\n",
           cfg.storage.backend, files, added, removed);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "arc catalog rebuild: %s\n", eb.msg);
    storage_close(st);
    duck_close(duck);
    catalog_close(cat);
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        if (argc > 2 && !strcmp(argv[2], "--help")) {
            puts("usage: arc version\n\nPrint the version of this binary.");
            return 0;
        }
        printf("arc %s\n", ARC_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "token"))
        return cmd_token(argc - 1, argv + 1);
    if (!strcmp(argv[1], "catalog"))
        return cmd_catalog(argc - 1, argv + 1);
    fprintf(stderr, "arc: unknown command '%s'\n\n%s", argv[1], usage_main);
    return 2;
}
