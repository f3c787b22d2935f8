/* bench_parquet.c - how fast duck_write_parquet turns a batch into a Parquet file.
 *
 * Generates N rows of (time, host from 1000 names, value, cpu_idle, cpu_user) - the
 * shape of the reference measurement in dependency-measurements.md (~4.7 M rows/s
 * per core for DuckDB's own COPY of such rows) - and times every writer method
 * (table-function scan vs appender + temp table; dictionary-sliced vs per-value
 * strings; all rows vs a row order) with zstd and snappy, best of R runs, and two
 * threads writing at once (the 2-core flush case).
 *
 * Usage: bench_parquet [rows=5000000] [runs=3] [dir=/tmp]
 * Build: cmake -DARC_BENCH=ON -DCMAKE_BUILD_TYPE=Release ...; target bench_parquet. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/mem.h"
#include "duck/duck.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct batch *make_batch(size_t n)
{
    struct batch *b = batch_new("cpu", 3);
    struct batch_col *host = batch_add_col(b, "host", 4, BATCH_STR, true);
    struct batch_col *value = batch_add_col(b, "value", 5, BATCH_F64, false);
    struct batch_col *idle = batch_add_col(b, "cpu_idle", 8, BATCH_F64, false);
    struct batch_col *user = batch_add_col(b, "cpu_user", 8, BATCH_F64, false);
    uint32_t ids[1000];
    char name[32];
    uint64_t x = 88172645463325252ull;

    for (size_t i = 0; i < 1000; i++) {
        int len = snprintf(name, sizeof(name), "server-%04zu", i);
        ids[i] = strdict_intern(b->dict, name, (size_t)len);
    }
    batch_add_rows(b, n);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: cheap, not compressible */
        b->time_us[i] = 1700000000000000 + (int64_t)i * 1000;
        ((uint32_t *)host->data)[i] = ids[x % 1000];
        batch_set_f64(value, i, (double)(x % 100000) / 100.0);
        batch_set_f64(idle, i, (double)((x >> 20) % 10000) / 100.0);
        batch_set_f64(user, i, (double)((x >> 40) % 10000) / 100.0);
        host->valid[i] = 1;
    }
    batch_drop_full_validity(b);
    return b;
}

struct par_arg {
    struct duck *d;
    const struct batch *b;
    char path[512];
    enum err rc;
    double cpu_s; /* CPU time of the writing thread */
};

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *par_write(void *p)
{
    struct par_arg *a = p;
    struct errbuf eb;

    double c0 = thread_cpu_s();

    errbuf_init(&eb);
    a->rc = duck_write_parquet(a->d, a->b, NULL, 0, a->path, NULL, &eb);
    a->cpu_s = thread_cpu_s() - c0;
    return NULL;
}

/* Two flusher threads writing concurrently (the 2-core ingest case). */
static void bench_parallel(struct duck *d, const struct batch *b, const char *dir, int runs)
{
    struct par_arg a[2];
    pthread_t th[2];
    double best = 1e99, cpu = 0;

    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        for (int i = 0; i < 2; i++) {
            a[i].d = d;
            a[i].b = b;
            a[i].rc = ERR_OK;
            snprintf(a[i].path, sizeof(a[i].path), "%s/bench_parquet_%d_%d.parquet", dir,
                     (int)getpid(), i);
            pthread_create(&th[i], NULL, par_write, &a[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        double t = now_s() - t0;
        if (t < best) {
            best = t;
            cpu = a[0].cpu_s + a[1].cpu_s;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (a[i].rc != ERR_OK)
            fprintf(stderr, "parallel write failed\n");
        unlink(a[i].path);
    }
    printf("%-28s %7.3f s  %6.2f M rows/s total, %.2f M rows per CPU-second\n",
           "2 threads scan dict zstd", best, 2.0 * (double)b->nrows / best / 1e6,
           2.0 * (double)b->nrows / cpu / 1e6);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    struct duck_opts dopts = {.data_dir = dir};
    struct {
        const char *name;
        struct duck_parquet_opts o;
        bool use_rows;
    } cases[] = {
        {"scan  dict   zstd  ", {.compression = DUCK_PQ_ZSTD, .method = DUCK_PQ_SCAN}, false},
        {"scan  dict   snappy", {.compression = DUCK_PQ_SNAPPY, .method = DUCK_PQ_SCAN}, false},
        {"scan  dict   zstd  rows[]", {.compression = DUCK_PQ_ZSTD}, true},
        {"scan  perval zstd  ", {.compression = DUCK_PQ_ZSTD, .strings_per_value = true}, false},
        {"scan  perval snappy", {.compression = DUCK_PQ_SNAPPY, .strings_per_value = true}, false},
        {"appnd dict   zstd  ", {.compression = DUCK_PQ_ZSTD, .method = DUCK_PQ_APPENDER}, false},
        {"appnd dict   snappy", {.compression = DUCK_PQ_SNAPPY, .method = DUCK_PQ_APPENDER}, false},
        {"appnd perval zstd  ",
         {.compression = DUCK_PQ_ZSTD, .method = DUCK_PQ_APPENDER, .strings_per_value = true},
         false},
        {"scan  dict   uncompressed", {.compression = DUCK_PQ_UNCOMPRESSED}, false},
    };
    struct errbuf eb;
    struct duck *d;
    struct batch *b;
    uint32_t *rows;
    char path[512];

    errbuf_init(&eb);
    if (duck_open(&dopts, &d, &eb) != ERR_OK) {
        fprintf(stderr, "duck_open: %s\n", eb.msg);
        return 1;
    }
    b = make_batch(n);
    rows = xmalloc(n * sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        rows[i] = (uint32_t)i;
    snprintf(path, sizeof(path), "%s/bench_parquet_%d.parquet", dir, (int)getpid());
    printf("%zu rows x (time, host, value, cpu_idle, cpu_user), best of %d, DuckDB %s\n", n,
           runs, duck_version());
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        double best = 1e99;
        for (int r = 0; r < runs; r++) {
            double t0 = now_s();
            if (duck_write_parquet(d, b, cases[c].use_rows ? rows : NULL, n, path, &cases[c].o,
                                   &eb) != ERR_OK) {
                fprintf(stderr, "%s: %s\n", cases[c].name, eb.msg);
                return 1;
            }
            double t = now_s() - t0;
            best = t < best ? t : best;
        }
        printf("%-28s %7.3f s  %6.2f M rows/s\n", cases[c].name, best, (double)n / best / 1e6);
        fflush(stdout);
    }
    bench_parallel(d, b, dir, runs);
    unlink(path);
    free(rows);
    batch_free(b);
    duck_close(d);
    return 0;
}
