/* loadgen.c - HTTP write-load generator for Arc (and its self-test sink).
 *
 * Sends pre-generated write bodies (columnar or row MessagePack, line protocol,
 * TSBS cpu-only line protocol) to one Arc server over N keep-alive HTTP/1.1
 * connections and reports rows/s, requests/s, MB/s, per-request latency
 * percentiles, errors by status and, given --pid, the server's CPU seconds per
 * million rows and peak RSS - all measured only inside the timed window that
 * follows the warm-up.
 *
 * Design: one blocking thread per connection (connections are few, the machine
 * has 2 cores, and a blocking send/recv pair costs two syscalls per request, which
 * is the least any design can do). Bodies are generated before the clock starts
 * into a read-only pool shared by every thread (cycled, so timestamps repeat
 * across cycles); the hot loop only formats a ~200-byte header and calls
 * sendmsg/recv. --unique instead generates every body just before it is sent
 * (outside the latency measurement) so that each row carries a per-connection
 * `seq` field and a globally distinct time: that mode exists to check exactly
 * how many acknowledged rows were stored, not for peak throughput.
 * Latencies go into a log-linear histogram (64 sub-buckets per power of two,
 * < 1.6 % error) so a long run needs no per-request memory.
 *
 * Policy: the URL must be http:// to 127.0.0.1, localhost or [::1]; every run
 * ends by itself (duration, then a hard deadline via alarm()).
 *
 * `loadgen --self-test` starts an in-process sink that decodes every body (the
 * MessagePack and line-protocol shapes, gzip and zstd), answers some requests
 * 503, and checks the generator's accounting against what the sink received. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/buf.h"
#include "core/compress.h"
#include "core/err.h"
#include "core/mem.h"

/* ------------------------------------------------------------------ options */

enum shape { SHAPE_IOT_COLUMNAR, SHAPE_IOT_LP, SHAPE_ROW_MSGPACK, SHAPE_TSBS_CPU };

static const char *const SHAPE_NAMES[] = {"iot-columnar", "iot-lp", "row-msgpack", "tsbs-cpu"};
static const uint32_t SHAPE_DEFAULT_BATCH[] = {1000, 5000, 10000, 10000};
static const char *const IOT_MEAS[] = {"cpu", "mem", "disk", "net"};

#define LG_MAX_CONNECTIONS 1024
#define LG_MAX_BATCH 1000000u
#define LG_POOL_MAX_BYTES ((size_t)256 << 20) /* pre-generated bodies, all shapes */
#define LG_RESP_MAX_HEAD 65536                 /* response header cap */
#define LG_ERRTEXT_MAX 200                     /* first error body kept per run */
#define LG_IO_TIMEOUT_S 30                     /* send/recv timeout per socket */
#define LG_HIST_BUCKETS (64 * 50)

struct lg_opts {
    char host_hdr[64];    /* Host header value, e.g. 127.0.0.1:8000 */
    struct sockaddr_storage addr; /* always loopback (checked by parse_url) */
    socklen_t addr_len;
    const char *token;    /* bearer token or NULL */
    const char *database; /* x-arc-database and ?db= */
    const char *path;     /* request path override (e.g. /ping) or NULL */
    enum shape shape;
    unsigned connections;
    double duration_s;    /* timed window (cap when total_rows is set) */
    double warmup_s;
    uint32_t batch;       /* rows per request */
    uint32_t pool;        /* distinct pre-generated bodies */
    uint32_t hosts;       /* distinct host tag values */
    enum compress_kind compress;
    long pid;             /* server pid for /proc sampling, 0 = none */
    bool json;
    bool unique;
    uint64_t total_rows;  /* 0 = run for duration */
    uint64_t seed;
};

/* ---------------------------------------------------------------- utilities */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: fast, deterministic per seed, good enough for test data. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_seed(uint64_t a, uint64_t b)
{
    uint64_t s = (a + 1) * 0x9E3779B97F4A7C15ULL ^ (b + 7) * 0xBF58476D1CE4E5B9ULL;
    return s ? s : 1;
}

/* Random value 0.00..100.00 as integer hundredths. */
static uint32_t rng_cents(uint64_t *s) { return (uint32_t)(rng_next(s) % 10001u); }

/* Appends used only on our own bounded data: the pool has its own byte cap, so an
 * ERR_LIMIT cannot happen (buffers are uncapped) and OOM aborts inside buf. */
static void put(struct buf *b, const void *p, size_t n) { (void)buf_append(b, p, n); }
static void puts_(struct buf *b, const char *s) { (void)buf_append_str(b, s); }

static void put_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + i, sizeof(tmp) - i);
}

/* Hundredths as a decimal with exactly two places: 1234 -> "12.34". */
static void put_cents(struct buf *b, uint32_t c)
{
    char frac[3] = {'.', (char)('0' + c / 10 % 10), (char)('0' + c % 10)};
    put_u64(b, c / 100);
    put(b, frac, 3);
}

/* -------------------------------------------------------- msgpack encoding */
/* Only fixed-width encodings (map16, array32, str8, float64, int64): decoders
 * must handle them, and fixed widths make body sizes predictable. */

static void mp_map16(struct buf *b, uint16_t n)
{
    uint8_t h[3] = {0xde, (uint8_t)(n >> 8), (uint8_t)n};
    put(b, h, 3);
}

static void mp_arr32(struct buf *b, uint32_t n)
{
    uint8_t h[5] = {0xdd, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    put(b, h, 5);
}

static void mp_str8(struct buf *b, const char *s, size_t n)
{
    uint8_t h[2] = {0xd9, (uint8_t)(n > 255 ? 255 : n)};
    put(b, h, 2);
    put(b, s, h[1]);
}

static void mp_cstr(struct buf *b, const char *s) { mp_str8(b, s, strlen(s)); }

static void mp_be64(struct buf *b, uint8_t tag, uint64_t v)
{
    uint8_t h[9];
    h[0] = tag;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    put(b, h, 9);
}

static void mp_i64(struct buf *b, int64_t v) { mp_be64(b, 0xd3, (uint64_t)v); }

static void mp_f64(struct buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    mp_be64(b, 0xcb, v);
}

/* ----------------------------------------------------------- data shapes */

/* What one body needs to know to place its rows. Pool bodies number rows
 * globally (first_row) so times increase across the pool; unique bodies place row
 * seq of connection conn at time base + seq*nconn + conn (distinct across all). */
struct gen_pos {
    bool unique;
    uint64_t first_row; /* pool: global index of the body's first row */
    uint64_t first_seq; /* unique: the connection's next seq */
    unsigned conn, nconn;
    uint32_t body_no;   /* rotates the columnar measurement */
};

struct gen {
    enum shape shape;
    uint32_t hosts;
    uint64_t base_us;   /* wall-clock start: all times are at or after it */
    uint64_t seed;
    char (*tsbs_tags)[200]; /* per host: ",hostname=...,service_environment=..." */
};

static const char *const TSBS_FIELDS[] = {"usage_user", "usage_system", "usage_idle",
                                          "usage_nice", "usage_iowait", "usage_irq",
                                          "usage_softirq", "usage_steal", "usage_guest",
                                          "usage_guest_nice"};

/* TSBS devops host tags (pkg/data/usecases/devops/host.go): region with its own
 * datacenters, rack 0-99, os, arch, team, service 0-19, version 0-1, environment. */
static void tsbs_host_tags(uint32_t host, uint64_t seed, char *out, size_t cap)
{
    static const struct {
        const char *name;
        const char *dcs[4];
        int ndc;
    } regions[] = {
        {"us-east-1", {"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"}, 4},
        {"us-west-1", {"us-west-1a", "us-west-1b"}, 2},
        {"us-west-2", {"us-west-2a", "us-west-2b", "us-west-2c"}, 3},
        {"eu-west-1", {"eu-west-1a", "eu-west-1b", "eu-west-1c"}, 3},
        {"eu-central-1", {"eu-central-1a", "eu-central-1b"}, 2},
        {"ap-southeast-1", {"ap-southeast-1a", "ap-southeast-1b"}, 2},
        {"ap-southeast-2", {"ap-southeast-2a", "ap-southeast-2b"}, 2},
        {"ap-northeast-1", {"ap-northeast-1a", "ap-northeast-1c"}, 2},
        {"sa-east-1", {"sa-east-1a", "sa-east-1b", "sa-east-1c"}, 3},
    };
    static const char *const os[] = {"Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"};
    static const char *const arch[] = {"x64", "x86"};
    static const char *const team[] = {"SF", "NYC", "LON", "CHI"};
    static const char *const env[] = {"production", "staging", "test"};
    uint64_t s = rng_seed(seed, host);
    unsigned r = (unsigned)(rng_next(&s) % 9);
    const char *dc = regions[r].dcs[rng_next(&s) % (uint64_t)regions[r].ndc];
    unsigned rack = (unsigned)(rng_next(&s) % 100);
    const char *a = arch[rng_next(&s) % 2];
    const char *o = os[rng_next(&s) % 3];
    unsigned svc = (unsigned)(rng_next(&s) % 20);
    unsigned ver = (unsigned)(rng_next(&s) % 2);
    const char *e = env[rng_next(&s) % 3];
    const char *t = team[rng_next(&s) % 4];

    snprintf(out, cap,
             ",hostname=host_%u,region=%s,datacenter=%s,rack=%u,os=%s,arch=%s,team=%s,"
             "service=%u,service_version=%u,service_environment=%s",
             host, regions[r].name, dc, rack, o, a, t, svc, ver, e);
}

static void gen_init(struct gen *g, enum shape shape, uint32_t hosts, uint64_t seed)
{
    g->shape = shape;
    g->hosts = hosts;
    g->seed = seed;
    g->base_us = wall_us();
    g->tsbs_tags = NULL;
    if (shape == SHAPE_TSBS_CPU) {
        g->tsbs_tags = xcalloc(hosts, sizeof(*g->tsbs_tags));
        for (uint32_t h = 0; h < hosts; h++)
            tsbs_host_tags(h, seed, g->tsbs_tags[h], sizeof(g->tsbs_tags[h]));
    }
}

static void gen_release(struct gen *g)
{
    free(g->tsbs_tags);
    g->tsbs_tags = NULL;
}

/* Row i of a body: its host index, its time in microseconds and its seq. */
static void row_place(const struct gen *g, const struct gen_pos *pos, uint32_t i,
                      uint32_t *host, uint64_t *t_us, uint64_t *seq)
{
    if (pos->unique) {
        *seq = pos->first_seq + i;
        *host = (uint32_t)(*seq % g->hosts);
        *t_us = g->base_us + *seq * pos->nconn + pos->conn;
        return;
    }
    uint64_t r = pos->first_row + i;
    *seq = r;
    *host = (uint32_t)(r % g->hosts);
    if (g->shape == SHAPE_TSBS_CPU) /* TSBS: every host reports every 10 s */
        *t_us = g->base_us + (r / g->hosts) * 10000000u;
    else
        *t_us = g->base_us + r * 1000u; /* one row per millisecond */
}

static void host_name(uint32_t h, char out[16])
{
    snprintf(out, 16, "server%03u", h % 1000u);
}

static void gen_iot_columnar(const struct gen *g, const struct gen_pos *pos, uint32_t rows,
                             uint64_t *rng, struct buf *b)
{
    static const char *const fcols[] = {"value", "cpu_idle", "cpu_user"};
    uint32_t host;
    uint64_t t, seq;
    char hn[16];

    mp_map16(b, 2);
    mp_cstr(b, "m");
    mp_cstr(b, IOT_MEAS[pos->body_no % 4]);
    mp_cstr(b, "columns");
    mp_map16(b, pos->unique ? 6 : 5);
    mp_cstr(b, "time");
    mp_arr32(b, rows);
    for (uint32_t i = 0; i < rows; i++) {
        row_place(g, pos, i, &host, &t, &seq);
        mp_i64(b, (int64_t)t);
    }
    mp_cstr(b, "host");
    mp_arr32(b, rows);
    for (uint32_t i = 0; i < rows; i++) {
        row_place(g, pos, i, &host, &t, &seq);
        host_name(host, hn);
        mp_cstr(b, hn);
    }
    for (int c = 0; c < 3; c++) {
        mp_cstr(b, fcols[c]);
        mp_arr32(b, rows);
        for (uint32_t i = 0; i < rows; i++)
            mp_f64(b, rng_cents(rng) / 100.0);
    }
    if (pos->unique) {
        mp_cstr(b, "seq");
        mp_arr32(b, rows);
        for (uint32_t i = 0; i < rows; i++) {
            row_place(g, pos, i, &host, &t, &seq);
            mp_i64(b, (int64_t)seq);
        }
    }
}

static void gen_iot_lp(const struct gen *g, const struct gen_pos *pos, uint32_t rows,
                       uint64_t *rng, struct buf *b)
{
    uint32_t host;
    uint64_t t, seq;
    char hn[16];

    for (uint32_t i = 0; i < rows; i++) {
        row_place(g, pos, i, &host, &t, &seq);
        host_name(host, hn);
        puts_(b, "cpu,host=");
        puts_(b, hn);
        puts_(b, " value=");
        put_cents(b, rng_cents(rng));
        puts_(b, ",cpu_idle=");
        put_cents(b, rng_cents(rng));
        puts_(b, ",cpu_user=");
        put_cents(b, rng_cents(rng));
        if (pos->unique) {
            puts_(b, ",seq=");
            put_u64(b, seq);
            puts_(b, "i");
        }
        puts_(b, " ");
        put_u64(b, t * 1000u);
        puts_(b, "\n");
    }
}

static void gen_row_msgpack(const struct gen *g, const struct gen_pos *pos, uint32_t rows,
                            uint64_t *rng, struct buf *b)
{
    static const char *const region[] = {"us-east", "us-west", "eu-central"};
    static const char *const dc[] = {"aws", "gcp", "azure"};
    uint32_t host;
    uint64_t t, seq;
    char hn[16];

    mp_map16(b, 1);
    mp_cstr(b, "batch");
    mp_arr32(b, rows);
    for (uint32_t i = 0; i < rows; i++) {
        row_place(g, pos, i, &host, &t, &seq);
        host_name(host, hn);
        mp_map16(b, 5);
        mp_cstr(b, "m");
        mp_cstr(b, "cpu");
        mp_cstr(b, "t");
        /* milliseconds, as the seed's README: unique mode spaces rows 1 ms apart */
        mp_i64(b, (int64_t)(pos->unique ? g->base_us / 1000u + (t - g->base_us) : t / 1000u));
        mp_cstr(b, "h");
        mp_cstr(b, hn);
        mp_cstr(b, "tags");
        mp_map16(b, 2);
        mp_cstr(b, "region");
        mp_cstr(b, region[host % 3]);
        mp_cstr(b, "dc");
        mp_cstr(b, dc[host / 3 % 3]);
        mp_cstr(b, "fields");
        mp_map16(b, pos->unique ? 4 : 3);
        mp_cstr(b, "usage_idle");
        mp_f64(b, rng_cents(rng) / 100.0);
        mp_cstr(b, "usage_user");
        mp_f64(b, rng_cents(rng) / 100.0);
        mp_cstr(b, "usage_system");
        mp_f64(b, rng_cents(rng) / 100.0);
        if (pos->unique) {
            mp_cstr(b, "seq");
            mp_i64(b, (int64_t)seq);
        }
    }
}

/* TSBS cpu-only, as its influx serializer writes it: ten string tags, ten int64
 * fields with the `i` suffix (CPUMeasurement.ToPoint uses ToPointAllInt64), ns time. */
static void gen_tsbs_cpu(const struct gen *g, const struct gen_pos *pos, uint32_t rows,
                         uint64_t *rng, struct buf *b)
{
    uint32_t host;
    uint64_t t, seq;

    for (uint32_t i = 0; i < rows; i++) {
        row_place(g, pos, i, &host, &t, &seq);
        puts_(b, "cpu");
        puts_(b, g->tsbs_tags[host]);
        for (int f = 0; f < 10; f++) {
            puts_(b, f ? "," : " ");
            puts_(b, TSBS_FIELDS[f]);
            puts_(b, "=");
            put_u64(b, rng_next(rng) % 101u);
            puts_(b, "i");
        }
        if (pos->unique) {
            puts_(b, ",seq=");
            put_u64(b, seq);
            puts_(b, "i");
        }
        puts_(b, " ");
        put_u64(b, t * 1000u);
        puts_(b, "\n");
    }
}

/* Append one body of `rows` rows to b. Returns the measurement index (IOT_MEAS). */
static unsigned gen_body(const struct gen *g, const struct gen_pos *pos, uint32_t rows,
                         struct buf *b)
{
    uint64_t rng = rng_seed(g->seed ^ (pos->unique ? pos->first_seq : pos->first_row),
                            pos->conn * 131u + pos->body_no);

    switch (g->shape) {
    case SHAPE_IOT_COLUMNAR:
        gen_iot_columnar(g, pos, rows, &rng, b);
        return pos->body_no % 4;
    case SHAPE_IOT_LP:
        gen_iot_lp(g, pos, rows, &rng, b);
        return 0;
    case SHAPE_ROW_MSGPACK:
        gen_row_msgpack(g, pos, rows, &rng, b);
        return 0;
    case SHAPE_TSBS_CPU:
        gen_tsbs_cpu(g, pos, rows, &rng, b);
        return 0;
    }
    return 0;
}

static bool shape_is_msgpack(enum shape s)
{
    return s == SHAPE_IOT_COLUMNAR || s == SHAPE_ROW_MSGPACK;
}

/* -------------------------------------------------------------- histogram */

/* Bucket of a latency in ns: exact below 128, then 64 sub-buckets per power of 2. */
static unsigned hist_index(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6;
    unsigned idx = shift * 64u + (unsigned)(v >> shift);
    return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1;
}

/* Midpoint of a bucket's value range. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned shift = idx / 64u - 1;
    uint64_t lo = (uint64_t)(idx - shift * 64u) << shift;
    return lo + ((uint64_t)1 << shift) / 2;
}

/* Value at quantile q (0..1) of n samples in h; 0 when empty. */
static uint64_t hist_quantile(const uint64_t *h, uint64_t n, double q)
{
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)n), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return hist_value(LG_HIST_BUCKETS - 1);
}

/* ------------------------------------------------------------- URL policy */

/* Accept only http://127.0.0.1|localhost|[::1][:port][/...]; fill addr and the
 * Host header. ERR_INVAL (message in eb) for anything else: this machine's policy
 * is that benchmarks talk to loopback only, and no name is ever resolved. */
static enum err parse_url(const char *url, struct lg_opts *o, struct errbuf *eb)
{
    const char *p, *host_end, *port_s = NULL;
    char host[64];
    long port = 80;
    size_t hl;

    if (strncmp(url, "http://", 7) != 0)
        return errbuf_set(eb, ERR_INVAL, "url %s: only http:// is supported", url);
    p = url + 7;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end)
            return errbuf_set(eb, ERR_INVAL, "url %s: unterminated [", url);
        hl = (size_t)(host_end - p - 1);
        if (hl >= sizeof(host))
            return errbuf_set(eb, ERR_INVAL, "url %s: host too long", url);
        memcpy(host, p + 1, hl);
        host[hl] = '\0';
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/?");
        hl = (size_t)(host_end - p);
        if (hl >= sizeof(host))
            return errbuf_set(eb, ERR_INVAL, "url %s: host too long", url);
        memcpy(host, p, hl);
        host[hl] = '\0';
    }
    if (*host_end == ':') {
        char *end;
        port_s = host_end + 1;
        errno = 0;
        port = strtol(port_s, &end, 10);
        if (errno || end == port_s || port < 1 || port > 65535 ||
            (*end && *end != '/' && *end != '?'))
            return errbuf_set(eb, ERR_INVAL, "url %s: bad port", url);
    } else if (*host_end && *host_end != '/' && *host_end != '?') {
        return errbuf_set(eb, ERR_INVAL, "url %s: cannot parse", url);
    }

    memset(&o->addr, 0, sizeof(o->addr));
    if (!strcmp(host, "127.0.0.1") || !strcasecmp(host, "localhost")) {
        struct sockaddr_in *a = (struct sockaddr_in *)&o->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        o->addr_len = sizeof(*a);
        snprintf(o->host_hdr, sizeof(o->host_hdr), "127.0.0.1:%ld", port);
    } else if (!strcmp(host, "::1")) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        o->addr_len = sizeof(*a);
        snprintf(o->host_hdr, sizeof(o->host_hdr), "[::1]:%ld", port);
    } else {
        return errbuf_set(eb, ERR_INVAL,
                          "url %s: host %s refused (only 127.0.0.1, localhost, [::1])", url,
                          host);
    }
    return ERR_OK;
}

/* ------------------------------------------------------------- run state */

struct body {
    char *data;      /* owned */
    size_t len;
    uint32_t rows;
    unsigned meas;   /* IOT_MEAS index */
};

struct stats {
    uint64_t hist[LG_HIST_BUCKETS]; /* latency ns, window only */
    uint64_t requests, rows, bytes;  /* window, 2xx and not */
    uint64_t rows_ok;                /* window, acknowledged */
    uint64_t status[600];            /* window, by HTTP status */
    uint64_t conn_errors;            /* window: connect/send/recv failures */
    uint64_t lat_max_ns;
    uint64_t last_done_ns;           /* completion time of the last window request */
    uint64_t acked_total;            /* all phases: rows answered 2xx */
    uint64_t acked_meas[4];          /* all phases, by measurement */
    uint64_t status_total[600];      /* all phases */
};

struct run {
    const struct lg_opts *o;
    struct gen gen;
    struct body *pool;
    uint32_t npool;
    uint64_t t0_ns, t_start_ns, t_end_ns; /* run start, window start, window end */
    atomic_bool stop;
    atomic_uint_fast64_t claimed;        /* total_rows mode: rows in flight or acked */
    atomic_uint_fast64_t acked;          /* total_rows mode: acknowledged */
    pthread_mutex_t lock;
    char first_error[LG_ERRTEXT_MAX + 64]; /* "503: {...}" of the first non-2xx */
};

struct worker {
    struct run *r;
    unsigned id;
    pthread_t thread;
    int fd;
    struct stats st;
    char *rbuf; /* response buffer, LG_RESP_MAX_HEAD bytes */
    size_t rlen;
};

static int conn_open(const struct lg_opts *o)
{
    struct timeval tv = {LG_IO_TIMEOUT_S, 0};
    int one = 1;
    int fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addr_len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

/* Read more bytes into w->rbuf; false on EOF, error or a full buffer. */
static bool fill(struct worker *w)
{
    if (w->rlen >= LG_RESP_MAX_HEAD)
        return false;
    for (;;) {
        ssize_t n = recv(w->fd, w->rbuf + w->rlen, LG_RESP_MAX_HEAD - w->rlen, 0);
        if (n > 0) {
            w->rlen += (size_t)n;
            return true;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return false;
    }
}

/* Case-insensitive header lookup in head[0..len); returns the value start or NULL. */
static const char *hdr_find(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len), *end = head + len;

    while (p && p + 1 < end) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

struct resp {
    int status;
    int retry_after_s;    /* -1 if absent */
    bool close;           /* server will close: reconnect */
    char text[LG_ERRTEXT_MAX + 1]; /* start of the body */
};

/* Discard or keep (up to LG_ERRTEXT_MAX) n body bytes already partly in rbuf. */
static bool consume_body(struct worker *w, uint64_t n, struct resp *rs, size_t *kept)
{
    while (n > 0) {
        if (w->rlen == 0 && !fill(w))
            return false;
        size_t take = w->rlen < n ? w->rlen : (size_t)n;
        if (*kept < LG_ERRTEXT_MAX) {
            size_t k = LG_ERRTEXT_MAX - *kept < take ? LG_ERRTEXT_MAX - *kept : take;
            memcpy(rs->text + *kept, w->rbuf, k);
            *kept += k;
            rs->text[*kept] = '\0';
        }
        memmove(w->rbuf, w->rbuf + take, w->rlen - take);
        w->rlen -= take;
        n -= take;
    }
    return true;
}

/* Read one response: status line, headers, and a Content-Length or chunked body. */
static bool read_response(struct worker *w, struct resp *rs)
{
    char *eoh;
    size_t vlen, kept = 0;
    const char *v;

    rs->status = 0;
    rs->retry_after_s = -1;
    rs->close = false;
    rs->text[0] = '\0';
    while (!(eoh = memmem(w->rbuf, w->rlen, "\r\n\r\n", 4)))
        if (!fill(w))
            return false;
    size_t hlen = (size_t)(eoh - w->rbuf) + 4;
    if (hlen < 12 || memcmp(w->rbuf, "HTTP/1.", 7) != 0)
        return false;
    rs->status = (w->rbuf[9] - '0') * 100 + (w->rbuf[10] - '0') * 10 + (w->rbuf[11] - '0');
    if (rs->status < 100 || rs->status > 599)
        return false;
    if (w->rbuf[7] == '0')
        rs->close = true; /* HTTP/1.0 */
    if ((v = hdr_find(w->rbuf, hlen, "Connection", &vlen)) && vlen == 5 &&
        !strncasecmp(v, "close", 5))
        rs->close = true;
    if ((v = hdr_find(w->rbuf, hlen, "Retry-After", &vlen)) && vlen > 0 && vlen < 10)
        rs->retry_after_s = (int)strtol(v, NULL, 10);
    bool chunked = (v = hdr_find(w->rbuf, hlen, "Transfer-Encoding", &vlen)) && vlen >= 7 &&
                   !strncasecmp(v, "chunked", 7);
    uint64_t clen = 0;
    bool has_clen = false;
    if ((v = hdr_find(w->rbuf, hlen, "Content-Length", &vlen))) {
        clen = strtoull(v, NULL, 10);
        has_clen = true;
    }
    memmove(w->rbuf, w->rbuf + hlen, w->rlen - hlen);
    w->rlen -= hlen;

    if (rs->status == 204 || rs->status == 304 || rs->status < 200)
        return true;
    if (chunked) {
        for (;;) {
            char *eol;
            while (!(eol = memmem(w->rbuf, w->rlen, "\r\n", 2)))
                if (!fill(w))
                    return false;
            uint64_t csz = strtoull(w->rbuf, NULL, 16);
            size_t ll = (size_t)(eol - w->rbuf) + 2;
            memmove(w->rbuf, w->rbuf + ll, w->rlen - ll);
            w->rlen -= ll;
            if (csz == 0) { /* trailers end with an empty line */
                while (!(eol = memmem(w->rbuf, w->rlen, "\r\n", 2)))
                    if (!fill(w))
                        return false;
                ll = (size_t)(eol - w->rbuf) + 2;
                memmove(w->rbuf, w->rbuf + ll, w->rlen - ll);
                w->rlen -= ll;
                return true;
            }
            if (!consume_body(w, csz + 2, rs, &kept))
                return false;
        }
    }
    if (has_clen)
        return consume_body(w, clen, rs, &kept);
    rs->close = true; /* body until EOF: read what comes, then reconnect */
    while (fill(w)) {
        size_t k = 0;
        (void)consume_body(w, w->rlen, rs, &k);
    }
    return true;
}

static void record_error_text(struct run *r, int status, const char *text)
{
    pthread_mutex_lock(&r->lock);
    if (!r->first_error[0])
        snprintf(r->first_error, sizeof(r->first_error), "%d: %s", status, text);
    pthread_mutex_unlock(&r->lock);
}

/* total_rows mode: claim up to `want` rows; 0 when the target is reached. Failed
 * requests give their claim back, so a thread waits while others are in flight. */
static uint32_t claim_rows(struct run *r, uint32_t want, bool exact)
{
    for (;;) {
        uint64_t c = atomic_load(&r->claimed);
        if (c >= r->o->total_rows) {
            if (atomic_load(&r->acked) >= r->o->total_rows || atomic_load(&r->stop) ||
                now_ns() >= r->t_end_ns)
                return 0;
            sleep_ms(1);
            continue;
        }
        uint32_t n = want;
        if (exact && r->o->total_rows - c < n)
            n = (uint32_t)(r->o->total_rows - c);
        if (atomic_compare_exchange_weak(&r->claimed, &c, c + n))
            return n;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->r;
    const struct lg_opts *o = r->o;
    struct buf ubody, ucomp;
    uint64_t seq = 0, reqno = 0;
    char hdr[1024], pathbuf[300];
    const char *path;
    struct resp rs;

    buf_init(&ubody, 0);
    buf_init(&ucomp, 0);
    if (o->path) {
        path = o->path;
    } else if (shape_is_msgpack(o->shape)) {
        path = "/api/v1/write/msgpack";
    } else {
        snprintf(pathbuf, sizeof(pathbuf), "/api/v1/write?db=%s&precision=ns", o->database);
        path = pathbuf;
    }
    w->fd = -1;

    while (!atomic_load(&r->stop)) {
        uint64_t start = now_ns();
        if (start >= r->t_end_ns)
            break;
        uint32_t want = o->unique ? o->batch : r->pool[0].rows, got = want;
        if (o->total_rows && (got = claim_rows(r, want, o->unique)) == 0)
            break;

        const char *data;
        size_t len;
        uint32_t rows;
        unsigned meas;
        if (o->unique) {
            struct gen_pos pos = {.unique = true, .first_seq = seq, .conn = w->id,
                                  .nconn = o->connections, .body_no = (uint32_t)reqno};
            buf_reset(&ubody);
            meas = gen_body(&r->gen, &pos, got, &ubody);
            seq += got;
            data = ubody.data;
            len = ubody.len;
            if (o->compress != COMPRESS_NONE) {
                buf_reset(&ucomp);
                (void)compress_deflate(o->compress, ubody.data, ubody.len, &ucomp);
                data = ucomp.data;
                len = ucomp.len;
            }
            rows = got;
        } else {
            const struct body *bd = &r->pool[(w->id + reqno * o->connections) % r->npool];
            data = bd->data;
            len = bd->len;
            rows = bd->rows;
            meas = bd->meas;
        }
        reqno++;

        int hl = snprintf(hdr, sizeof(hdr),
                          "POST %s HTTP/1.1\r\nHost: %s\r\n%s%s%s"
                          "x-arc-database: %s\r\nContent-Type: %s\r\n%s%s%s"
                          "Content-Length: %zu\r\n\r\n",
                          path, o->host_hdr, o->token ? "Authorization: Bearer " : "",
                          o->token ? o->token : "", o->token ? "\r\n" : "", o->database,
                          shape_is_msgpack(o->shape) ? "application/msgpack" : "text/plain",
                          o->compress ? "Content-Encoding: " : "",
                          o->compress == COMPRESS_GZIP   ? "gzip"
                          : o->compress == COMPRESS_ZSTD ? "zstd"
                                                         : "",
                          o->compress ? "\r\n" : "", len);
        struct iovec iov[2] = {{hdr, (size_t)hl}, {(void *)data, len}};

        uint64_t t1 = now_ns();
        bool ok = true;
        if (w->fd < 0) {
            w->rlen = 0;
            w->fd = conn_open(o);
            ok = w->fd >= 0;
        }
        ok = ok && send_all(w->fd, iov, 2) && read_response(w, &rs);
        uint64_t t2 = now_ns();
        bool in_window = t2 >= r->t_start_ns && t2 < r->t_end_ns;
        bool acked = ok && rs.status >= 200 && rs.status < 300;

        if (acked) {
            w->st.acked_total += rows;
            w->st.acked_meas[meas] += rows;
            if (o->total_rows)
                atomic_fetch_add(&r->acked, rows);
        } else if (o->total_rows) {
            atomic_fetch_sub(&r->claimed, got);
        }
        if (ok)
            w->st.status_total[rs.status]++;
        if (in_window) {
            w->st.requests++;
            w->st.rows += rows;
            w->st.bytes += len;
            w->st.last_done_ns = t2;
            if (ok) {
                uint64_t lat = t2 - t1;
                w->st.hist[hist_index(lat)]++;
                if (lat > w->st.lat_max_ns)
                    w->st.lat_max_ns = lat;
                w->st.status[rs.status]++;
                if (acked)
                    w->st.rows_ok += rows;
            } else {
                w->st.conn_errors++;
            }
        }
        if (ok && !acked)
            record_error_text(r, rs.status, rs.text);
        if (!ok || rs.close) {
            if (w->fd >= 0)
                close(w->fd);
            w->fd = -1;
            if (!ok) {
                if (in_window || t2 < r->t_start_ns)
                    record_error_text(r, 0, "connection failed (connect/send/recv)");
                sleep_ms(10); /* server down or restarting: don't spin */
            }
        } else if (rs.status == 429 || rs.status == 503) {
            /* back off as asked (capped so a run still ends on time); the body is
             * not re-sent: its rows count as not acknowledged */
            sleep_ms(rs.retry_after_s < 0 ? 50 : rs.retry_after_s > 0 ? 200 : 1);
        }
    }
    if (w->fd >= 0)
        close(w->fd);
    buf_release(&ubody);
    buf_release(&ucomp);
    return NULL;
}

/* --------------------------------------------------------- server sampling */

struct proc_sample {
    bool ok;
    double cpu_s;     /* utime + stime */
    long hwm_kb, rss_kb;
};

static struct proc_sample proc_read(long pid)
{
    struct proc_sample ps = {0};
    char path[64], line[1024];
    FILE *f;

    if (pid <= 0)
        return ps;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r"))) {
        if (fgets(line, sizeof(line), f)) {
            /* fields after "(comm)": state is field 3, utime 14, stime 15 */
            char *p = strrchr(line, ')');
            unsigned long long ut = 0, st = 0;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &ut, &st) == 2) {
                ps.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
                ps.ok = true;
            }
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((f = fopen(path, "r"))) {
        while (fgets(line, sizeof(line), f)) {
            if (!strncmp(line, "VmHWM:", 6))
                ps.hwm_kb = strtol(line + 6, NULL, 10);
            else if (!strncmp(line, "VmRSS:", 6))
                ps.rss_kb = strtol(line + 6, NULL, 10);
        }
        fclose(f);
    }
    return ps;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------- run */

struct result {
    struct stats st;      /* merged */
    double window_s;
    double server_cpu_s;  /* < 0 when not sampled */
    long server_hwm_kb, server_rss_kb;
    double client_cpu_s;
    uint64_t pool_bytes;
    uint32_t npool;
    char first_error[LG_ERRTEXT_MAX + 64];
};

/* Pre-generate up to o->pool bodies (fewer if they pass LG_POOL_MAX_BYTES). */
static void pool_build(struct run *r)
{
    const struct lg_opts *o = r->o;
    size_t total = 0;
    struct buf b, c;

    r->pool = xcalloc(o->pool, sizeof(*r->pool));
    r->npool = 0;
    buf_init(&b, 0);
    buf_init(&c, 0);
    for (uint32_t k = 0; k < o->pool; k++) {
        struct gen_pos pos = {.first_row = (uint64_t)k * o->batch, .conn = 0, .nconn = 1,
                              .body_no = k};
        buf_reset(&b);
        unsigned meas = gen_body(&r->gen, &pos, o->batch, &b);
        struct buf *src = &b;
        if (o->compress != COMPRESS_NONE) {
            buf_reset(&c);
            (void)compress_deflate(o->compress, b.data, b.len, &c);
            src = &c;
        }
        if (k >= 4 && total + src->len > LG_POOL_MAX_BYTES)
            break;
        r->pool[k].data = xmalloc(src->len);
        memcpy(r->pool[k].data, src->data, src->len);
        r->pool[k].len = src->len;
        r->pool[k].rows = o->batch;
        r->pool[k].meas = meas;
        total += src->len;
        r->npool++;
    }
    buf_release(&b);
    buf_release(&c);
}

/* --dump DIR: write the pre-generated pool as DIR/body-NNNN.<msgpack|lp>, one
 * file per request body, for bench_decode (decode cost without HTTP). */
static int dump_pool(const struct lg_opts *o, const char *dir)
{
    struct run r;
    const char *ext = o->shape == SHAPE_IOT_LP || o->shape == SHAPE_TSBS_CPU ? "lp" : "msgpack";
    char path[4096];
    int rc = 0;

    memset(&r, 0, sizeof(r));
    r.o = o;
    gen_init(&r.gen, o->shape, o->hosts, o->seed);
    pool_build(&r);
    for (uint32_t k = 0; k < r.npool && rc == 0; k++) {
        FILE *f;
        snprintf(path, sizeof(path), "%s/body-%04u.%s", dir, k, ext);
        f = fopen(path, "wb");
        if (!f || fwrite(r.pool[k].data, 1, r.pool[k].len, f) != r.pool[k].len) {
            fprintf(stderr, "loadgen: write %s failed\n", path);
            rc = 1;
        }
        if (f && fclose(f) != 0)
            rc = 1;
    }
    for (uint32_t k = 0; k < r.npool; k++)
        free(r.pool[k].data);
    free(r.pool);
    gen_release(&r.gen);
    if (rc == 0)
        fprintf(stderr, "loadgen: %u bodies of %u rows in %s\n", r.npool, o->batch, dir);
    return rc;
}

static void run_load(const struct lg_opts *o, struct result *res)
{
    struct run r;
    struct worker *ws;
    struct proc_sample p0 = {0}, p1 = {0};
    double c0 = 0, c1 = 0;
    uint64_t window_end;

    memset(&r, 0, sizeof(r));
    memset(res, 0, sizeof(*res));
    r.o = o;
    pthread_mutex_init(&r.lock, NULL);
    gen_init(&r.gen, o->shape, o->hosts, o->seed);
    if (!o->unique)
        pool_build(&r);
    for (uint32_t k = 0; k < r.npool; k++)
        res->pool_bytes += r.pool[k].len;
    res->npool = r.npool;

    r.t0_ns = now_ns();
    r.t_start_ns = r.t0_ns + (uint64_t)(o->warmup_s * 1e9);
    r.t_end_ns = r.t_start_ns + (uint64_t)(o->duration_s * 1e9);
    ws = xcalloc(o->connections, sizeof(*ws));
    for (unsigned i = 0; i < o->connections; i++) {
        ws[i].r = &r;
        ws[i].id = i;
        ws[i].rbuf = xmalloc(LG_RESP_MAX_HEAD);
        pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    }

    while (now_ns() < r.t_start_ns)
        sleep_ms(1);
    p0 = proc_read(o->pid);
    c0 = self_cpu_s();
    for (;;) {
        uint64_t t = now_ns();
        if (t >= r.t_end_ns)
            break;
        if (o->total_rows && atomic_load(&r.acked) >= o->total_rows)
            break;
        sleep_ms(t + 10000000u < r.t_end_ns ? 10 : 1);
    }
    window_end = now_ns();
    if (window_end > r.t_end_ns)
        window_end = r.t_end_ns;
    p1 = proc_read(o->pid);
    c1 = self_cpu_s();
    atomic_store(&r.stop, true);
    for (unsigned i = 0; i < o->connections; i++)
        pthread_join(ws[i].thread, NULL);

    /* merge */
    uint64_t last_done = 0;
    for (unsigned i = 0; i < o->connections; i++) {
        struct stats *s = &ws[i].st;
        for (unsigned k = 0; k < LG_HIST_BUCKETS; k++)
            res->st.hist[k] += s->hist[k];
        for (unsigned k = 0; k < 600; k++) {
            res->st.status[k] += s->status[k];
            res->st.status_total[k] += s->status_total[k];
        }
        for (unsigned k = 0; k < 4; k++)
            res->st.acked_meas[k] += s->acked_meas[k];
        res->st.requests += s->requests;
        res->st.rows += s->rows;
        res->st.rows_ok += s->rows_ok;
        res->st.bytes += s->bytes;
        res->st.conn_errors += s->conn_errors;
        res->st.acked_total += s->acked_total;
        if (s->lat_max_ns > res->st.lat_max_ns)
            res->st.lat_max_ns = s->lat_max_ns;
        if (s->last_done_ns > last_done)
            last_done = s->last_done_ns;
        free(ws[i].rbuf);
    }
    /* total_rows mode ends when the last row is acknowledged, not at a fixed time */
    if (o->total_rows && last_done > r.t_start_ns)
        window_end = last_done;
    res->window_s = window_end > r.t_start_ns ? (double)(window_end - r.t_start_ns) / 1e9 : 0;
    res->server_cpu_s = p0.ok && p1.ok ? p1.cpu_s - p0.cpu_s : -1;
    res->server_hwm_kb = p1.hwm_kb;
    res->server_rss_kb = p1.rss_kb;
    res->client_cpu_s = c1 - c0;
    memcpy(res->first_error, r.first_error, sizeof(res->first_error));

    free(ws);
    for (uint32_t k = 0; k < r.npool; k++)
        free(r.pool[k].data);
    free(r.pool);
    gen_release(&r.gen);
    pthread_mutex_destroy(&r.lock);
}

/* ---------------------------------------------------------------- report */

static void report(const struct lg_opts *o, const struct result *res)
{
    const struct stats *s = &res->st;
    double w = res->window_s > 0 ? res->window_s : 1e-9;
    uint64_t nlat = 0, err_overload, err_other = 0;
    for (unsigned k = 0; k < LG_HIST_BUCKETS; k++)
        nlat += s->hist[k];
    double p50 = hist_quantile(s->hist, nlat, 0.50) / 1e6;
    double p95 = hist_quantile(s->hist, nlat, 0.95) / 1e6;
    double p99 = hist_quantile(s->hist, nlat, 0.99) / 1e6;
    double p999 = hist_quantile(s->hist, nlat, 0.999) / 1e6;
    err_overload = s->status[429] + s->status[503];
    for (unsigned k = 0; k < 600; k++)
        if ((k < 200 || k >= 300) && k != 429 && k != 503)
            err_other += s->status[k];
    double cpu_per_m = res->server_cpu_s >= 0 && s->rows_ok
                           ? res->server_cpu_s / ((double)s->rows_ok / 1e6)
                           : -1;
    struct buf b;
    buf_init(&b, 0);

    if (o->json) {
        buf_printf(&b,
                   "{\"shape\":\"%s\",\"database\":\"%s\",\"connections\":%u,\"batch\":%u,"
                   "\"compression\":\"%s\",\"unique\":%s,\"pool_bodies\":%u,"
                   "\"window_s\":%.3f,\"requests\":%" PRIu64 ",\"rows\":%" PRIu64
                   ",\"rows_ok\":%" PRIu64 ",\"rows_per_s\":%.0f,\"requests_per_s\":%.1f,"
                   "\"mb_per_s\":%.2f,\"bytes_sent\":%" PRIu64 ",\"latency_ms\":{\"p50\":%.3f,"
                   "\"p95\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
                   SHAPE_NAMES[o->shape], o->database, o->connections, o->batch,
                   o->compress == COMPRESS_GZIP   ? "gzip"
                   : o->compress == COMPRESS_ZSTD ? "zstd"
                                                  : "none",
                   o->unique ? "true" : "false", res->npool, res->window_s, s->requests,
                   s->rows, s->rows_ok, (double)s->rows_ok / w, (double)s->requests / w,
                   (double)s->bytes / 1e6 / w, s->bytes, p50, p95, p99, p999,
                   s->lat_max_ns / 1e6);
        buf_append_str(&b, "\"status\":{");
        bool first = true;
        for (unsigned k = 0; k < 600; k++)
            if (s->status[k]) {
                buf_printf(&b, "%s\"%u\":%" PRIu64, first ? "" : ",", k, s->status[k]);
                first = false;
            }
        buf_printf(&b,
                   "},\"errors_overload\":%" PRIu64 ",\"errors_other\":%" PRIu64
                   ",\"errors_connection\":%" PRIu64 ",\"rows_acked_total\":%" PRIu64
                   ",\"acked_by_measurement\":{",
                   err_overload, err_other, s->conn_errors, s->acked_total);
        unsigned nm = o->shape == SHAPE_IOT_COLUMNAR ? 4 : 1;
        for (unsigned k = 0; k < nm; k++)
            buf_printf(&b, "%s\"%s\":%" PRIu64, k ? "," : "", IOT_MEAS[k], s->acked_meas[k]);
        buf_append_str(&b, "},\"server_cpu_s\":");
        if (res->server_cpu_s >= 0)
            buf_printf(&b, "%.2f,\"server_cpu_s_per_million_rows\":%.3f", res->server_cpu_s,
                       cpu_per_m);
        else
            buf_append_str(&b, "null,\"server_cpu_s_per_million_rows\":null");
        buf_append_str(&b, ",\"server_peak_rss_mb\":");
        if (o->pid > 0)
            buf_printf(&b, "%.1f,\"server_rss_mb\":%.1f", res->server_hwm_kb / 1024.0,
                       res->server_rss_kb / 1024.0);
        else
            buf_append_str(&b, "null,\"server_rss_mb\":null");
        buf_printf(&b, ",\"client_cpu_s\":%.2f,\"first_error\":", res->client_cpu_s);
        if (res->first_error[0])
            buf_append_json_str(&b, res->first_error, strlen(res->first_error));
        else
            buf_append_str(&b, "null");
        buf_append_str(&b, "}\n");
    } else {
        buf_printf(&b,
                   "shape %s  db %s  connections %u  batch %u  compression %s%s  pool %u "
                   "bodies (%.1f MB)\n"
                   "window     %.2f s\n"
                   "rows/s     %.0f  (%" PRIu64 " rows acknowledged, %" PRIu64 " sent)\n"
                   "requests/s %.1f  (%" PRIu64 " requests)\n"
                   "MB/s sent  %.2f\n"
                   "latency ms p50 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                   SHAPE_NAMES[o->shape], o->database, o->connections, o->batch,
                   o->compress == COMPRESS_GZIP   ? "gzip"
                   : o->compress == COMPRESS_ZSTD ? "zstd"
                                                  : "none",
                   o->unique ? "  unique" : "", res->npool, res->pool_bytes / 1e6, res->window_s,
                   (double)s->rows_ok / w, s->rows_ok, s->rows, (double)s->requests / w,
                   s->requests, (double)s->bytes / 1e6 / w, p50, p95, p99, p999,
                   s->lat_max_ns / 1e6);
        buf_append_str(&b, "status    ");
        for (unsigned k = 0; k < 600; k++)
            if (s->status[k])
                buf_printf(&b, " %u x%" PRIu64, k, s->status[k]);
        buf_printf(&b,
                   "\nerrors     overload (429/503) %" PRIu64 "  other %" PRIu64
                   "  connection %" PRIu64 "\n",
                   err_overload, err_other, s->conn_errors);
        if (res->first_error[0])
            buf_printf(&b, "first error %s\n", res->first_error);
        if (res->server_cpu_s >= 0)
            buf_printf(&b, "server CPU %.2f s (%.3f s per million rows)  peak RSS %.1f MB  "
                           "RSS %.1f MB\n",
                       res->server_cpu_s, cpu_per_m, res->server_hwm_kb / 1024.0,
                       res->server_rss_kb / 1024.0);
        buf_printf(&b, "client CPU %.2f s   rows acknowledged in all phases %" PRIu64 "\n",
                   res->client_cpu_s, s->acked_total);
    }
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    buf_release(&b);
}

/* ------------------------------------------------------------- self-test */

static int st_failures;

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            st_failures++;                                                        \
        }                                                                         \
    } while (0)
#define CHECK_U64(a, b)                                                                 \
    do {                                                                                \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                \
        if (a_ != b_) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK %s == %s failed: %" PRIu64 " != %" PRIu64 "\n", \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                \
            st_failures++;                                                              \
        }                                                                               \
    } while (0)

/* A minimal reader for exactly the encodings the generator writes. */
struct mpr {
    const uint8_t *p, *end;
};

static bool mpr_tag(struct mpr *m, uint8_t tag, size_t n, uint64_t *v)
{
    if ((size_t)(m->end - m->p) < 1 + n || m->p[0] != tag)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | m->p[1 + i];
    m->p += 1 + n;
    return true;
}

static bool mpr_str(struct mpr *m, const char **s, size_t *n)
{
    uint64_t l;
    if (!mpr_tag(m, 0xd9, 1, &l) || (uint64_t)(m->end - m->p) < l)
        return false;
    *s = (const char *)m->p;
    *n = (size_t)l;
    m->p += l;
    return true;
}

static bool mpr_key(struct mpr *m, const char *want)
{
    const char *s;
    size_t n;
    return mpr_str(m, &s, &n) && n == strlen(want) && !memcmp(s, want, n);
}

/* One scalar value (str8, float64 or int64); its int value when int64. */
static bool mpr_scalar(struct mpr *m, bool *is_int, int64_t *iv)
{
    uint64_t v;
    const char *s;
    size_t n;
    *is_int = false;
    if (m->p < m->end && m->p[0] == 0xd3) {
        if (!mpr_tag(m, 0xd3, 8, &v))
            return false;
        *is_int = true;
        *iv = (int64_t)v;
        return true;
    }
    if (m->p < m->end && m->p[0] == 0xcb)
        return mpr_tag(m, 0xcb, 8, &v);
    return mpr_str(m, &s, &n);
}

struct sink {
    int lfd;
    unsigned port;
    pthread_t thread;
    atomic_bool stop;
    unsigned fail_every;     /* answer every Nth request 503 (0 = never) */
    pthread_mutex_t lock;
    uint64_t requests, n204, n503, invalid, rows_ok;
    uint64_t *times;         /* times of acknowledged rows */
    size_t ntimes, cap_times;
    bool want_seq;
    bool seq_missing;
    char last_invalid[160];
};

/* Count rows of a decoded body and collect its times; false if malformed. */
static bool sink_parse(struct sink *k, const char *path, const char *body, size_t len,
                       uint64_t **times, size_t *ntimes, size_t *rows)
{
    size_t cap = 0;
    *rows = 0;
    *ntimes = 0;
#define PUSH_TIME(t)                                                        \
    do {                                                                    \
        if (*ntimes == cap) {                                               \
            cap = cap ? cap * 2 : 1024;                                     \
            *times = xreallocarray(*times, cap, sizeof(**times));           \
        }                                                                   \
        (*times)[(*ntimes)++] = (uint64_t)(t);                              \
    } while (0)

    if (strstr(path, "msgpack")) {
        struct mpr m = {(const uint8_t *)body, (const uint8_t *)body + len};
        uint64_t n, items;
        const char *s;
        size_t sl;
        bool isint;
        int64_t iv;
        if (!mpr_tag(&m, 0xde, 2, &n))
            return false;
        if (n == 1) { /* {"batch":[row items]} */
            if (!mpr_key(&m, "batch") || !mpr_tag(&m, 0xdd, 4, &items))
                return false;
            for (uint64_t i = 0; i < items; i++) {
                uint64_t nf, nt, nfl;
                bool seq = false;
                if (!mpr_tag(&m, 0xde, 2, &nf) || nf != 5 || !mpr_key(&m, "m") ||
                    !mpr_str(&m, &s, &sl) || !mpr_key(&m, "t") ||
                    !mpr_scalar(&m, &isint, &iv) || !isint)
                    return false;
                PUSH_TIME(iv);
                if (!mpr_key(&m, "h") || !mpr_str(&m, &s, &sl) || !mpr_key(&m, "tags") ||
                    !mpr_tag(&m, 0xde, 2, &nt) || nt != 2)
                    return false;
                for (uint64_t j = 0; j < 2 * nt; j++)
                    if (!mpr_str(&m, &s, &sl))
                        return false;
                if (!mpr_key(&m, "fields") || !mpr_tag(&m, 0xde, 2, &nfl))
                    return false;
                for (uint64_t j = 0; j < nfl; j++) {
                    if (!mpr_str(&m, &s, &sl) || !mpr_scalar(&m, &isint, &iv))
                        return false;
                    seq |= sl == 3 && !memcmp(s, "seq", 3) && isint;
                }
                if (k->want_seq && !seq)
                    k->seq_missing = true;
                (*rows)++;
            }
        } else if (n == 2) { /* columnar */
            uint64_t ncol, alen;
            bool seq = false;
            if (!mpr_key(&m, "m") || !mpr_str(&m, &s, &sl) || !mpr_key(&m, "columns") ||
                !mpr_tag(&m, 0xde, 2, &ncol))
                return false;
            for (uint64_t c = 0; c < ncol; c++) {
                if (!mpr_str(&m, &s, &sl) || !mpr_tag(&m, 0xdd, 4, &alen))
                    return false;
                bool is_time = sl == 4 && !memcmp(s, "time", 4);
                seq |= sl == 3 && !memcmp(s, "seq", 3);
                if (c == 0)
                    *rows = (size_t)alen;
                else if (alen != *rows)
                    return false; /* columns of different lengths */
                for (uint64_t i = 0; i < alen; i++) {
                    if (!mpr_scalar(&m, &isint, &iv))
                        return false;
                    if (is_time) {
                        if (!isint)
                            return false;
                        PUSH_TIME(iv);
                    }
                }
            }
            if (k->want_seq && !seq)
                k->seq_missing = true;
        } else {
            return false;
        }
        return m.p == m.end;
    }
    /* line protocol: "<measurement,tags> <fields> <time>\n" per line */
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return false;
        const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || sp2 + 1 >= eol)
            return false;
        if (k->want_seq && !memmem(sp1, (size_t)(sp2 - sp1), ",seq=", 5))
            k->seq_missing = true;
        char *te;
        uint64_t t = strtoull(sp2 + 1, &te, 10);
        if (te != eol)
            return false;
        PUSH_TIME(t);
        (*rows)++;
        p = eol + 1;
    }
#undef PUSH_TIME
    return true;
}

struct sink_conn {
    struct sink *k;
    int fd;
};

static void *sink_conn_main(void *arg)
{
    struct sink_conn *sc = arg;
    struct sink *k = sc->k;
    struct buf in, plain;
    uint64_t *times = NULL;

    buf_init(&in, (size_t)512 << 20);
    buf_init(&plain, 0);
    for (;;) {
        char *eoh;
        while (!(eoh = memmem(in.data ? in.data : "", in.len, "\r\n\r\n", 4))) {
            if (buf_reserve(&in, 65536) != ERR_OK)
                goto out;
            ssize_t n = recv(sc->fd, in.data + in.len, 65536, 0);
            if (n <= 0)
                goto out;
            in.len += (size_t)n;
        }
        size_t hlen = (size_t)(eoh - in.data) + 4, vlen;
        char path[256] = "";
        const char *sp = memchr(in.data, ' ', hlen);
        if (sp) {
            size_t pl = strcspn(sp + 1, " ");
            if (pl < sizeof(path)) {
                memcpy(path, sp + 1, pl);
                path[pl] = '\0';
            }
        }
        const char *v = hdr_find(in.data, hlen, "Content-Length", &vlen);
        size_t clen = v ? (size_t)strtoull(v, NULL, 10) : 0;
        enum compress_kind ck = COMPRESS_NONE;
        if ((v = hdr_find(in.data, hlen, "Content-Encoding", &vlen)))
            ck = vlen == 4 && !strncmp(v, "gzip", 4) ? COMPRESS_GZIP : COMPRESS_ZSTD;
        while (in.len < hlen + clen) {
            if (buf_reserve(&in, hlen + clen - in.len) != ERR_OK)
                goto out;
            ssize_t n = recv(sc->fd, in.data + in.len, hlen + clen - in.len, 0);
            if (n <= 0)
                goto out;
            in.len += (size_t)n;
        }
        const char *body = in.data + hlen;
        size_t blen = clen;
        struct errbuf eb;
        bool valid = true;
        if (ck != COMPRESS_NONE) {
            buf_reset(&plain);
            valid = compress_inflate(ck, body, clen, (size_t)512 << 20, &plain, &eb) == ERR_OK;
            body = plain.data;
            blen = plain.len;
        }
        size_t rows = 0, nt = 0;
        valid = valid && sink_parse(k, path, body, blen, &times, &nt, &rows);

        pthread_mutex_lock(&k->lock);
        uint64_t reqno = ++k->requests;
        bool fail = k->fail_every && reqno % k->fail_every == 0;
        const char *answer;
        char ans[256];
        if (!valid) {
            k->invalid++;
            snprintf(k->last_invalid, sizeof(k->last_invalid), "%.50s: %.100s", path, body);
            answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
        } else if (fail) {
            k->n503++;
            static const char msg[] = "{\"success\":false,\"error\":\"buffers full\"}";
            snprintf(ans, sizeof(ans),
                     "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof(msg) - 1, msg);
            answer = ans;
        } else {
            k->n204++;
            k->rows_ok += rows;
            if (k->ntimes + nt > k->cap_times) {
                k->cap_times = (k->ntimes + nt) * 2;
                k->times = xreallocarray(k->times, k->cap_times, sizeof(*k->times));
            }
            memcpy(k->times + k->ntimes, times, nt * sizeof(*times));
            k->ntimes += nt;
            answer = "HTTP/1.1 204 No Content\r\n\r\n";
        }
        pthread_mutex_unlock(&k->lock);
        if (send(sc->fd, answer, strlen(answer), MSG_NOSIGNAL) < 0)
            goto out;
        memmove(in.data, in.data + hlen + clen, in.len - hlen - clen);
        in.len -= hlen + clen;
    }
out:
    close(sc->fd);
    free(times);
    buf_release(&in);
    buf_release(&plain);
    free(sc);
    return NULL;
}

static void *sink_main(void *arg)
{
    struct sink *k = arg;
    while (!atomic_load(&k->stop)) {
        int fd = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct sink_conn *sc = xmalloc(sizeof(*sc));
        pthread_t t;
        sc->k = k;
        sc->fd = fd;
        pthread_create(&t, NULL, sink_conn_main, sc);
        pthread_detach(t);
    }
    return NULL;
}

static void sink_start(struct sink *k, unsigned fail_every, bool want_seq)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    struct timeval tv = {0, 100000}; /* accept wakes up to notice stop */

    memset(k, 0, sizeof(*k));
    k->fail_every = fail_every;
    k->want_seq = want_seq;
    pthread_mutex_init(&k->lock, NULL);
    k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(k->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (bind(k->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(k->lfd, 64) != 0) {
        perror("sink bind");
        exit(1);
    }
    getsockname(k->lfd, (struct sockaddr *)&a, &al);
    k->port = ntohs(a.sin_port);
    pthread_create(&k->thread, NULL, sink_main, k);
}

static void sink_stop(struct sink *k)
{
    atomic_store(&k->stop, true);
    pthread_join(k->thread, NULL);
    close(k->lfd);
    sleep_ms(50); /* connection threads exit once loadgen's sockets are closed */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void st_opts(struct lg_opts *o, unsigned port, enum shape shape)
{
    char url[64];
    struct errbuf eb;

    memset(o, 0, sizeof(*o));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    if (parse_url(url, o, &eb) != ERR_OK) {
        fprintf(stderr, "%s\n", eb.msg);
        exit(1);
    }
    o->shape = shape;
    o->database = "selftest";
    o->token = "tok";
    o->connections = 3;
    o->duration_s = 20;
    o->batch = 97; /* not a divisor of anything, to catch partial-batch bugs */
    o->pool = 8;
    o->hosts = 1000;
    o->seed = 42;
}

/* End-to-end: the generator against the sink, every shape, each compression. */
static void st_against_sink(enum shape shape, enum compress_kind ck, bool unique)
{
    struct sink k;
    struct lg_opts o;
    struct result *res = xcalloc(1, sizeof(*res));

    sink_start(&k, 5, unique);
    st_opts(&o, k.port, shape);
    o.compress = ck;
    o.unique = unique;
    o.total_rows = 3001;
    run_load(&o, res);
    sink_stop(&k);

    pthread_mutex_lock(&k.lock);
    if (k.invalid)
        fprintf(stderr, "shape %s: sink rejected: %s\n", SHAPE_NAMES[shape], k.last_invalid);
    CHECK_U64(k.invalid, 0);
    CHECK_U64(res->st.acked_total, k.rows_ok);
    CHECK_U64(res->st.status_total[503], k.n503);
    CHECK_U64(res->st.status_total[204], k.n204);
    CHECK(k.n503 > 0);
    CHECK_U64(res->st.status[503], k.n503); /* warm-up 0: everything is in the window */
    CHECK_U64(res->st.rows_ok, k.rows_ok);
    CHECK_U64(k.ntimes, k.rows_ok);
    CHECK(strstr(res->first_error, "503: {\"success\":false") == res->first_error);
    if (unique) {
        CHECK_U64(k.rows_ok, 3001); /* exactly the target: last batch is partial */
        CHECK(!k.seq_missing);
        qsort(k.times, k.ntimes, sizeof(*k.times), cmp_u64);
        size_t dups = 0;
        for (size_t i = 1; i < k.ntimes; i++)
            dups += k.times[i] == k.times[i - 1];
        CHECK_U64(dups, 0);
    } else {
        CHECK(k.rows_ok >= 3001 && k.rows_ok < 3001 + 97 * o.connections);
        CHECK_U64(k.rows_ok % 97, 0);
    }
    if (shape == SHAPE_IOT_COLUMNAR) {
        uint64_t sum = 0;
        for (int m = 0; m < 4; m++) {
            CHECK(res->st.acked_meas[m] > 0); /* measurements rotate */
            sum += res->st.acked_meas[m];
        }
        CHECK_U64(sum, res->st.acked_total);
    }
    pthread_mutex_unlock(&k.lock);
    free(k.times);
    free(res);
}

static void st_duration_mode(void)
{
    struct sink k;
    struct lg_opts o;
    struct result *res = xcalloc(1, sizeof(*res));

    sink_start(&k, 0, false);
    st_opts(&o, k.port, SHAPE_IOT_COLUMNAR);
    o.warmup_s = 0.3;
    o.duration_s = 0.5;
    run_load(&o, res);
    sink_stop(&k);
    CHECK(res->window_s > 0.49 && res->window_s < 0.51);
    CHECK(res->st.rows_ok > 0);
    /* warm-up rows were acknowledged but are not in the window */
    CHECK(res->st.acked_total > res->st.rows_ok);
    CHECK_U64(res->st.acked_total, k.rows_ok);
    CHECK_U64(res->st.status[204], res->st.requests);
    uint64_t nlat = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        nlat += res->st.hist[i];
    CHECK_U64(nlat, res->st.requests);
    CHECK(hist_quantile(res->st.hist, nlat, 0.5) > 0);
    free(k.times);
    free(res);
}

static void st_units(void)
{
    struct buf b;
    struct lg_opts o;
    struct errbuf eb;

    /* msgpack encodings */
    buf_init(&b, 0);
    mp_f64(&b, 1.5);
    mp_i64(&b, -2);
    mp_map16(&b, 3);
    mp_arr32(&b, 70000);
    mp_cstr(&b, "ab");
    static const uint8_t want[] = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xd3, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xde, 0, 3, 0xdd,
                                   0, 1, 0x11, 0x70, 0xd9, 2, 'a', 'b'};
    CHECK_U64(b.len, sizeof(want));
    CHECK(b.len == sizeof(want) && !memcmp(b.data, want, sizeof(want)));
    buf_reset(&b);
    put_cents(&b, 1205);
    put(&b, " ", 1);
    put_cents(&b, 7);
    put(&b, " ", 1);
    put_cents(&b, 10000);
    CHECK(!strcmp(b.data, "12.05 0.07 100.00"));

    /* histogram: every quantile within 1.6 % of the true value */
    static uint64_t h[LG_HIST_BUCKETS];
    for (uint64_t v = 1; v <= 100000; v++)
        h[hist_index(v * 1000)]++;
    double p50 = (double)hist_quantile(h, 100000, 0.5), p999 = (double)hist_quantile(h, 100000, 0.999);
    CHECK(fabs(p50 - 50000000.0) / 50000000.0 < 0.016);
    CHECK(fabs(p999 - 99900000.0) / 99900000.0 < 0.016);
    CHECK_U64(hist_value(hist_index(77)), 77);
    for (uint64_t v = 128; v < 1u << 20; v = v * 3 / 2 + 1)
        CHECK(fabs((double)hist_value(hist_index(v)) - (double)v) / (double)v < 0.016);

    /* URL policy */
    memset(&o, 0, sizeof(o));
    CHECK(parse_url("http://127.0.0.1:8000", &o, &eb) == ERR_OK);
    CHECK(!strcmp(o.host_hdr, "127.0.0.1:8000"));
    CHECK(parse_url("http://localhost:9/x", &o, &eb) == ERR_OK);
    CHECK(parse_url("http://[::1]:8000", &o, &eb) == ERR_OK);
    CHECK(!strcmp(o.host_hdr, "[::1]:8000"));
    CHECK(parse_url("http://10.0.0.1:8000", &o, &eb) == ERR_INVAL);
    CHECK(strstr(eb.msg, "host 10.0.0.1 refused") != NULL);
    CHECK(parse_url("http://example.com", &o, &eb) == ERR_INVAL);
    CHECK(parse_url("http://127.0.0.1.evil.com:80", &o, &eb) == ERR_INVAL);
    CHECK(parse_url("https://127.0.0.1:8000", &o, &eb) == ERR_INVAL);
    CHECK(parse_url("http://127.0.0.1:99999", &o, &eb) == ERR_INVAL);

    /* exact line formats */
    struct gen g;
    struct gen_pos pos = {.unique = true, .first_seq = 5, .conn = 1, .nconn = 4};
    gen_init(&g, SHAPE_TSBS_CPU, 10, 1);
    g.base_us = 1451606400000000ull;
    buf_reset(&b);
    gen_body(&g, &pos, 1, &b);
    /* seq 5 of connection 1 of 4: host 5, time base + 5*4 + 1 us */
    CHECK(!strncmp(b.data, "cpu,hostname=host_5,region=", 27));
    CHECK(strstr(b.data, " usage_user=") && strstr(b.data, "i,usage_system="));
    CHECK(strstr(b.data, "i,usage_guest_nice="));
    CHECK(strstr(b.data, ",seq=5i 1451606400000021000\n") != NULL);
    const char *f = strstr(b.data, ",service_environment=");
    CHECK(f && (!strncmp(f + 21, "production ", 11) || !strncmp(f + 21, "staging ", 8) ||
                !strncmp(f + 21, "test ", 5)));
    gen_release(&g);

    gen_init(&g, SHAPE_IOT_LP, 1000, 1);
    g.base_us = 1000000;
    struct gen_pos pp = {.first_row = 1001, .nconn = 1};
    buf_reset(&b);
    gen_body(&g, &pp, 2, &b);
    /* pool rows are 1 ms apart: row 1001 -> 1 s + 1001 ms, in ns */
    CHECK(!strncmp(b.data, "cpu,host=server001 value=", 25));
    CHECK(strstr(b.data, " 2001000000\ncpu,host=server002 value=") != NULL);
    gen_release(&g);
    buf_release(&b);
}

static int self_test(void)
{
    st_units();
    for (int s = 0; s < 4; s++) {
        st_against_sink((enum shape)s, COMPRESS_NONE, false);
        st_against_sink((enum shape)s, COMPRESS_NONE, true);
    }
    st_against_sink(SHAPE_IOT_COLUMNAR, COMPRESS_GZIP, false);
    st_against_sink(SHAPE_TSBS_CPU, COMPRESS_ZSTD, true);
    st_against_sink(SHAPE_ROW_MSGPACK, COMPRESS_GZIP, true);
    st_duration_mode();
    if (st_failures) {
        fprintf(stderr, "self-test: %d check(s) failed\n", st_failures);
        return 1;
    }
    printf("self-test: all checks passed\n");
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen [options]\n"
            "  --url URL            http://127.0.0.1:PORT (loopback only) [http://127.0.0.1:8000]\n"
            "  --token T            Authorization: Bearer T\n"
            "  --shape S            iot-columnar | iot-lp | row-msgpack | tsbs-cpu [iot-columnar]\n"
            "  --connections N      keep-alive connections, one thread each [8]\n"
            "  --duration S         timed window, seconds [30]\n"
            "  --warmup S           warm-up before the window, seconds [5]\n"
            "  --batch N            rows per request [1000|5000|10000|10000 by shape]\n"
            "  --database NAME      x-arc-database / ?db= [bench]\n"
            "  --gzip | --zstd      compress bodies (Content-Encoding)\n"
            "  --pid PID            sample server CPU and RSS from /proc/PID\n"
            "  --json               print one JSON object\n"
            "  --unique             every row unique (seq field, distinct times); bodies are\n"
            "                       generated per request\n"
            "  --total-rows N       stop after N acknowledged rows (duration is then a cap)\n"
            "  --pool N             distinct pre-generated bodies [64, max 256 MB]\n"
            "  --hosts N            distinct host tag values [1000]\n"
            "  --path P             POST to P instead of the shape's write endpoint\n"
            "  --seed N             data seed [1]\n"
            "  --self-test          run the built-in tests against an in-process sink\n"
            "  --dump DIR           write the body pool to DIR/body-NNNN.{msgpack,lp}, exit\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "loadgen: hard deadline passed, exiting\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(3);
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    struct errbuf eb;
    const char *url = "http://127.0.0.1:8000";
    double v;
    long batch = 0;
    bool self = false;
    const char *dump = NULL;

    memset(&o, 0, sizeof(o));
    o.shape = SHAPE_IOT_COLUMNAR;
    o.connections = 8;
    o.duration_s = 30;
    o.warmup_s = 5;
    o.database = "bench";
    o.pool = 64;
    o.hosts = 1000;
    o.seed = 1;
    bool dur_set = false, warm_set = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG()                                                        \
    do {                                                                  \
        if (!arg) {                                                       \
            fprintf(stderr, "loadgen: %s needs a value\n", a);            \
            return 2;                                                     \
        }                                                                 \
        i++;                                                              \
    } while (0)
#define NUM(lo, hi)                                                                  \
    do {                                                                             \
        NEED_ARG();                                                                  \
        if (!parse_num(arg, lo, hi, &v)) {                                           \
            fprintf(stderr, "loadgen: %s %s: expected a number in [%g, %g]\n", a, arg, \
                    (double)(lo), (double)(hi));                                     \
            return 2;                                                                \
        }                                                                            \
    } while (0)
        if (!strcmp(a, "--url")) {
            NEED_ARG();
            url = arg;
        } else if (!strcmp(a, "--token")) {
            NEED_ARG();
            o.token = arg;
        } else if (!strcmp(a, "--database")) {
            NEED_ARG();
            o.database = arg;
        } else if (!strcmp(a, "--path")) {
            NEED_ARG();
            o.path = arg;
        } else if (!strcmp(a, "--shape")) {
            NEED_ARG();
            int s;
            for (s = 0; s < 4 && strcmp(arg, SHAPE_NAMES[s]); s++)
                ;
            if (s == 4) {
                fprintf(stderr, "loadgen: unknown shape %s\n", arg);
                return 2;
            }
            o.shape = (enum shape)s;
        } else if (!strcmp(a, "--connections")) {
            NUM(1, LG_MAX_CONNECTIONS);
            o.connections = (unsigned)v;
        } else if (!strcmp(a, "--duration")) {
            NUM(0.01, 86400);
            o.duration_s = v;
            dur_set = true;
        } else if (!strcmp(a, "--warmup")) {
            NUM(0, 3600);
            o.warmup_s = v;
            warm_set = true;
        } else if (!strcmp(a, "--batch")) {
            NUM(1, LG_MAX_BATCH);
            batch = (long)v;
        } else if (!strcmp(a, "--pool")) {
            NUM(1, 4096);
            o.pool = (uint32_t)v;
        } else if (!strcmp(a, "--hosts")) {
            NUM(1, 1000000);
            o.hosts = (uint32_t)v;
        } else if (!strcmp(a, "--seed")) {
            NUM(0, 1e15);
            o.seed = (uint64_t)v;
        } else if (!strcmp(a, "--pid")) {
            NUM(1, 1e9);
            o.pid = (long)v;
        } else if (!strcmp(a, "--total-rows")) {
            NUM(1, 1e15);
            o.total_rows = (uint64_t)v;
        } else if (!strcmp(a, "--gzip")) {
            o.compress = COMPRESS_GZIP;
        } else if (!strcmp(a, "--zstd")) {
            o.compress = COMPRESS_ZSTD;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (!strcmp(a, "--unique")) {
            o.unique = true;
        } else if (!strcmp(a, "--self-test")) {
            self = true;
        } else if (!strcmp(a, "--dump")) {
            NEED_ARG();
            dump = arg;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
#undef NUM
#undef NEED_ARG
    }
    signal(SIGPIPE, SIG_IGN);
    if (self)
        return self_test();

    if (parse_url(url, &o, &eb) != ERR_OK) {
        fprintf(stderr, "loadgen: %s\n", eb.msg);
        return 2;
    }
    for (const char *p = o.database; *p; p++)
        if (!(*p == '_' || *p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z'))) {
            fprintf(stderr, "loadgen: --database %s: letters, digits, _ and - only\n",
                    o.database);
            return 2;
        }
    o.batch = batch ? (uint32_t)batch : SHAPE_DEFAULT_BATCH[o.shape];
    if (dump)
        return dump_pool(&o, dump);
    if (o.total_rows) {
        if (!warm_set)
            o.warmup_s = 0; /* every acknowledged row is in the window */
        if (!dur_set)
            o.duration_s = 3600;
    }
    /* hard deadline: a stuck server cannot keep us alive (socket timeouts are 30 s) */
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(o.warmup_s + o.duration_s) + 2 * LG_IO_TIMEOUT_S + 30);

    struct result *res = xcalloc(1, sizeof(*res));
    if (!o.json)
        fprintf(stderr, "loadgen: %s -> %s, %u connections, %.1f s warm-up, %.1f s window\n",
                SHAPE_NAMES[o.shape], url, o.connections, o.warmup_s, o.duration_s);
    run_load(&o, res);
    report(&o, res);
    int rc = res->st.rows_ok > 0 ? 0 : 1;
    free(res);
    return rc;
}
