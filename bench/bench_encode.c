/* bench_encode.c - encoder throughput on a 6-column result (time, host, 3 doubles,
 * 1 bigint), 1 M rows by default, for every format.
 *
 * Doubles: two with few decimals (what sensors send), one full-precision random
 * (the slow path of shortest formatting). The rows come from DuckDB (range()).
 * Reported rate: rows / the time spent inside enc_begin + enc_chunk + enc_end
 * (clock read around each call, ~500 chunks), best of RUNS runs. The old figure,
 * a fetch-and-encode pass minus a fetch-only pass, is printed too ("total");
 * on a busy 2-core machine that subtraction of two noisy timings swings by
 * +-30 %, the in-encoder time much less.
 * Usage: bench_encode [rows [runs [format]]]   (build with -DARC_BENCH=ON, Release;
 * pin it with taskset -c N for one core; format: json, csv, ndjson, arrow, msgpack) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "duck/duck.h"
#include "query/encode.h"

/* Fetch (and, fmt >= 0, encode) the whole result; returns the wall time and sets
 * *enc_s to the time spent in the encoder calls. */
static double run(struct duck *d, const char *sql, int fmt, struct buf *out, uint64_t *bytes,
                  double *enc_s)
{
    int64_t t_enc = 0, t1;
    struct enc_sink sink = enc_sink_buf(out);
    struct encoder *e = NULL;
    struct duck_result *r;
    struct duck_chunk *c;
    struct errbuf eb;
    int64_t t0;

    errbuf_init(&eb);
    buf_reset(out);
    t0 = clock_mono_ns();
    if (duck_query_exec(d, sql, &r, &eb) != ERR_OK) {
        fprintf(stderr, "query: %s\n", eb.msg);
        exit(1);
    }
    if (fmt >= 0) {
        t1 = clock_mono_ns();
        e = enc_new((enum enc_format)fmt, &sink, r, NULL);
        if (enc_begin(e, &eb))
            goto fail;
        t_enc += clock_mono_ns() - t1;
    }
    for (;;) {
        if (duck_result_next_chunk(r, &c, &eb) != ERR_OK) {
            fprintf(stderr, "fetch: %s\n", eb.msg);
            exit(1);
        }
        if (!c)
            break;
        t1 = clock_mono_ns();
        if (e && enc_chunk(e, c, &eb))
            goto fail;
        t_enc += clock_mono_ns() - t1;
    }
    t1 = clock_mono_ns();
    if (e && enc_end(e, NULL, &eb))
        goto fail;
    t_enc += clock_mono_ns() - t1;
    *enc_s = (double)t_enc / 1e9;
    *bytes = e ? enc_bytes_out(e) : 0;
    enc_free(e);
    duck_result_free(r);
    return (double)(clock_mono_ns() - t0) / 1e9;
fail:
    fprintf(stderr, "encode: %s\n", eb.msg);
    exit(1);
}

int main(int argc, char **argv)
{
    static const char *names[] = {"json", "csv", "ndjson", "arrow", "msgpack"};
    char dir[] = "/tmp/arc_bench_enc_XXXXXX", sql[512];
    long rows = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
    const char *only = argc > 3 ? argv[3] : NULL;
    struct duck_opts o = {0};
    struct duck *d;
    struct errbuf eb;
    struct buf out;
    double base = 1e9, t, best, enc, best_enc;
    uint64_t bytes = 0;
    int f, i;

    if (!mkdtemp(dir))
        return 1;
    o.data_dir = dir;
    o.query_threads = 1;
    errbuf_init(&eb);
    if (duck_open(&o, &d, &eb)) {
        fprintf(stderr, "duck_open: %s\n", eb.msg);
        return 1;
    }
    snprintf(sql, sizeof(sql),
             "SELECT TIMESTAMP '2026-08-22 00:00:00' + INTERVAL (range) MILLISECOND AS time,"
             " 'host' || (range %% 1000) AS host, round(random() * 100, 2) AS usage_user,"
             " round(random() * 100, 1) AS usage_system, random() * 100 AS usage_idle,"
             " range AS counter FROM range(%ld)",
             rows);
    buf_init(&out, 0);
    if (runs < 1)
        runs = 1;
    for (i = 0; i < runs; i++) {
        t = run(d, sql, -1, &out, &bytes, &enc);
        base = t < base ? t : base;
    }
    printf("rows=%ld runs=%d fetch only: %.3f s\n", rows, runs, base);
    for (f = 0; f <= 4; f++) {
        if (only && strcmp(only, names[f]) != 0)
            continue;
        best = best_enc = 1e9;
        for (i = 0; i < runs; i++) {
            t = run(d, sql, f, &out, &bytes, &enc);
            best = t < best ? t : best;
            best_enc = enc < best_enc ? enc : best_enc;
        }
        printf("%-8s encode %.3f s = %6.2f M rows/s | total %.3f s - fetch = %6.2f M rows/s |"
               " %6.1f MB\n",
               names[f], best_enc, rows / best_enc / 1e6, best,
               best > base ? rows / (best - base) / 1e6 : 0.0, bytes / 1e6);
    }
    buf_release(&out);
    duck_close(d);
    rmdir(dir);
    return 0;
}
