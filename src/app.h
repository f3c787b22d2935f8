/* app.h - the application context: every long-lived module handle of one server.
 *
 * Built by main.c in start-up order and torn down in reverse. Route handlers reach
 * it through req->app. Fields are set once before the HTTP server starts and are
 * read-only afterwards (each module is thread-safe on its own). */
#ifndef ARC_APP_H
#define ARC_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct config;
struct catalog;
struct auth;
struct http_server;
struct metrics;
struct duck;
struct ingest;
struct bufmgr;
struct storage;
struct wal;
struct query_engine;
struct ingest_pipeline;
struct compactor;

struct app {
    const struct config *cfg;     /* merged configuration (defaults < file < env < flags) */
    struct catalog *catalog;      /* SQLite {data_dir}/arc.db */
    struct auth *auth;            /* tokens; NULL-safe checks when auth is disabled */
    struct http_server *http;
    struct metrics *metrics;      /* process-wide Prometheus registry */
    struct duck *duck;            /* DuckDB instance (may be NULL before ingest exists) */
    struct bufmgr *buffers;       /* per (db, measurement) buffers */
    struct storage *storage;      /* local or s3 backend */
    struct hot *hot;              /* recently written files in memory; NULL = off */
    struct wal *wal;              /* NULL when the WAL is off */
    struct ingest_pipeline *pipeline; /* decode -> WAL -> buffers */
    struct query_engine *query;
    struct compactor *compactor;  /* NULL with a remote storage backend */
    int64_t start_us;             /* wall clock at start, µs */
    _Atomic bool ready;           /* start-up recovery finished: /ready answers 200 */
    _Atomic bool stopping;        /* shutdown began */
};

#endif
