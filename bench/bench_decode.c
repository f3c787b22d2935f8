/* bench_decode.c - decode cost of write bodies on one thread, no HTTP, no buffers.
 *
 *   loadgen --shape iot-columnar --dump DIR      (bodies as the load generator sends them)
 *   bench_decode [--seconds S] DIR/body-*.msgpack
 *
 * Decodes the files round-robin for S seconds (default 5) with the server's
 * decoders (MessagePack for *.msgpack, line protocol in ns for *.lp, JSON for
 * *.json), one part, and prints rows/s and ns per row. Every body must decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "ingest/ingest.h"

struct body {
    char *data;
    size_t len;
    char kind; /* 'm' msgpack, 'l' line protocol, 'j' json */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *path, struct body *b)
{
    FILE *f = fopen(path, "rb");
    const char *dot = strrchr(path, '.');
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "bench_decode: cannot read %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    b->len = (size_t)n;
    b->data = malloc(b->len ? b->len : 1);
    if (!b->data || fread(b->data, 1, b->len, f) != b->len) {
        fprintf(stderr, "bench_decode: short read %s\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    b->kind = dot && !strcmp(dot, ".lp") ? 'l' : dot && !strcmp(dot, ".json") ? 'j' : 'm';
    return 0;
}

static enum err decode(const struct body *b, const struct ingest_limits *lim,
                       struct ingest_result *out, struct errbuf *eb)
{
    int64_t now_us = 1700000000000000LL;

    switch (b->kind) {
    case 'l':
        return ingest_lp_decode_parts(b->data, b->len, PREC_NS, now_us, lim, 1, out, NULL, eb);
    case 'j':
        return ingest_json_decode(b->data, b->len, now_us, lim, out, eb);
    default:
        return ingest_msgpack_decode_parts((const uint8_t *)b->data, b->len, now_us, lim, 1, out,
                                           NULL, eb);
    }
}

int main(int argc, char **argv)
{
    double seconds = 5, t0, c0, wall, cpu;
    struct body *bodies;
    struct ingest_limits lim;
    size_t nb = 0, i, rows = 0, bytes = 0, iters = 0;
    int a = 1;

    if (argc > 2 && !strcmp(argv[1], "--seconds")) {
        seconds = atof(argv[2]);
        a = 3;
    }
    if (a >= argc || seconds <= 0) {
        fprintf(stderr, "usage: bench_decode [--seconds S] FILE...\n");
        return 2;
    }
    bodies = calloc((size_t)(argc - a), sizeof(*bodies));
    for (; a < argc; a++)
        if (load(argv[a], &bodies[nb++]) != 0)
            return 1;
    ingest_limits_default(&lim);
    t0 = now_s();
    c0 = cpu_s();
    while (now_s() - t0 < seconds) {
        for (i = 0; i < nb; i++) {
            struct ingest_result r;
            struct errbuf eb;
            memset(&r, 0, sizeof(r));
            errbuf_init(&eb);
            if (decode(&bodies[i], &lim, &r, &eb) != ERR_OK) {
                fprintf(stderr, "bench_decode: body %zu: %s\n", i, eb.msg);
                return 1;
            }
            rows += r.nrows;
            bytes += bodies[i].len;
            ingest_result_release(&r);
        }
        iters++;
    }
    wall = now_s() - t0;
    cpu = cpu_s() - c0;
    printf("bodies %zu  passes %zu  rows %zu  %.2f M rows/s  %.1f ns/row (cpu)  %.0f MB/s\n", nb,
           iters, rows, (double)rows / wall / 1e6, cpu * 1e9 / (double)rows,
           (double)bytes / wall / 1e6);
    for (i = 0; i < nb; i++)
        free(bodies[i].data);
    free(bodies);
    return 0;
}
