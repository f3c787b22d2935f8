/* duck_direct.c - plain DuckDB (C API) baseline for the query benchmark.
 *
 * Runs one SQL statement N times on an in-memory DuckDB after optional setup
 * statements (e.g. CREATE VIEW cpu AS SELECT * FROM read_parquet([...])), fetching
 * every chunk of every run (as Arc does before it encodes), and prints one JSON
 * line: {"cold_ms":..,"median_ms":..,"p95_ms":..,"min_ms":..,"rows":..}. The first
 * run is the cold one; the statistics are over the warm runs. Used by
 * bench/query_bench.py to put Arc's time next to DuckDB's own on the same Parquet
 * files, in the same run, with the same thread count.
 *
 *   duck_direct [--threads N] [--runs N] [--stream|--prepared] [--setup SQL]... --sql SQL
 *
 * --stream executes as Arc does for unbounded results (prepare, pending streaming
 * result, fetch chunks); --prepared likewise but materialized. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <duckdb.h>

#define MAX_SETUP 16
#define MAX_RUNS 10000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long long g_chunks; /* chunks fetched by the last run */
static int g_mode; /* 0 duckdb_query; 1 --stream: prepare + pending streaming, as Arc
                    * executes unbounded results; 2 --prepared: prepare + pending */

/* Run sql once, fetching every chunk; returns rows or -1 (message on stderr). */
static long long run_once(duckdb_connection c, const char *sql)
{
    duckdb_result res;
    duckdb_data_chunk ch;
    long long rows = 0;

    g_chunks = 0;
    if (g_mode) {
        duckdb_prepared_statement st = NULL;
        duckdb_pending_result pend = NULL;
        bool ok = duckdb_prepare(c, sql, &st) == DuckDBSuccess &&
                  (g_mode == 1 ? duckdb_pending_prepared_streaming(st, &pend)
                               : duckdb_pending_prepared(st, &pend)) == DuckDBSuccess &&
                  duckdb_execute_pending(pend, &res) == DuckDBSuccess;
        if (!ok)
            fprintf(stderr, "duck_direct: %s\n",
                    pend ? duckdb_pending_error(pend) : duckdb_prepare_error(st));
        duckdb_destroy_pending(&pend);
        duckdb_destroy_prepare(&st);
        if (!ok)
            return -1;
    } else if (duckdb_query(c, sql, &res) != DuckDBSuccess) {
        fprintf(stderr, "duck_direct: %s\n", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        return -1;
    }
    while ((ch = duckdb_fetch_chunk(res)) != NULL) {
        rows += (long long)duckdb_data_chunk_get_size(ch);
        g_chunks++;
        duckdb_destroy_data_chunk(&ch);
    }
    duckdb_destroy_result(&res);
    return rows;
}

int main(int argc, char **argv)
{
    const char *setup[MAX_SETUP], *sql = NULL, *threads = NULL;
    size_t nsetup = 0;
    long runs = 20;
    duckdb_database db;
    duckdb_connection c;
    duckdb_config cfg;
    double *t;
    long long rows = 0;
    double cold;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--setup") && i + 1 < argc && nsetup < MAX_SETUP)
            setup[nsetup++] = argv[++i];
        else if (!strcmp(argv[i], "--sql") && i + 1 < argc)
            sql = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "--stream"))
            g_mode = 1;
        else if (!strcmp(argv[i], "--prepared"))
            g_mode = 2;
        else {
            fprintf(stderr, "usage: duck_direct [--threads N] [--runs N] [--stream|--prepared] [--setup SQL]... "
                            "--sql SQL\n");
            return 2;
        }
    }
    if (!sql || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "duck_direct: --sql is required; --runs 1..%d\n", MAX_RUNS);
        return 2;
    }
    duckdb_create_config(&cfg);
    if (threads)
        duckdb_set_config(cfg, "threads", threads);
    duckdb_set_config(cfg, "autoload_known_extensions", "false");
    if (duckdb_open_ext(NULL, &db, cfg, NULL) != DuckDBSuccess ||
        duckdb_connect(db, &c) != DuckDBSuccess) {
        fprintf(stderr, "duck_direct: cannot open DuckDB\n");
        return 1;
    }
    duckdb_destroy_config(&cfg);
    if (run_once(c, "SET TimeZone = 'UTC'") < 0)
        return 1;
    for (size_t i = 0; i < nsetup; i++)
        if (run_once(c, setup[i]) < 0)
            return 1;
    t = calloc((size_t)runs, sizeof(*t));
    if (!t)
        return 1;
    cold = now_ms();
    if ((rows = run_once(c, sql)) < 0)
        return 1;
    cold = now_ms() - cold;
    for (long i = 0; i < runs; i++) {
        double t0 = now_ms();
        if (run_once(c, sql) < 0)
            return 1;
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_double);
    printf("{\"cold_ms\":%.3f,\"median_ms\":%.3f,\"p95_ms\":%.3f,\"min_ms\":%.3f,\"rows\":%lld,\"chunks\":%lld}\n",
           cold, t[runs / 2], t[(size_t)((double)(runs - 1) * 0.95)], t[0], rows, g_chunks);
    free(t);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return 0;
}
