/* encode.c - the format-independent half of the result encoders: sinks, the
 * staging buffer, call-order checks, and the number/time formatters the text
 * formats share.
 *
 * Design: each format supplies three callbacks (begin, chunk, end); this file
 * owns the encoder object and the output path. The output is either the caller's
 * struct buf (direct: zero copies, its cap bounds the answer) or a 256 KiB stage
 * flushed to a write callback only when it cannot take the next value, so an fd
 * sink sees few large write(2) calls. Timestamps are formatted without gmtime():
 * days-to-civil arithmetic (H. Hinnant's algorithm) plus two per-column caches,
 * the "YYYY-MM-DDT" prefix of the last day and the "YYYY-MM-DDTHH:MM:SS." prefix
 * of the last second, because consecutive rows nearly always share both: a row
 * in the same second costs one compare, a 32-byte copy and six digits, no
 * division. The text formatters write through raw pointers into room the
 * caller reserved (the JSON and CSV encoders reserve once per row), and may
 * write a few bytes past their text where a fixed-size move is cheaper (each
 * states its room). JSON string escaping checks and copies 8 bytes at a time. */
#include "query/encode.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"
#include "query/dtoa.h"
#include "query/encode_int.h"

/* ---- sinks ------------------------------------------------------------------ */

static enum err fd_write(void *ctx, const void *p, size_t n, struct errbuf *eb)
{
    int fd = (int)(intptr_t)ctx;
    const char *s = p;
    struct pollfd pfd;
    ssize_t w;

    while (n > 0) {
        w = write(fd, s, n);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return errbuf_set(eb, ERR_IO, "poll on result stream: %s", strerror(errno));
            continue;
        }
        return errbuf_set(eb, ERR_IO, "write result stream: %s",
                          w < 0 ? strerror(errno) : "wrote nothing");
    }
    return ERR_OK;
}

struct enc_sink enc_sink_buf(struct buf *b)
{
    struct enc_sink s = {.write = NULL, .ctx = NULL, .direct = b};
    return s;
}

struct enc_sink enc_sink_fd(int fd)
{
    struct enc_sink s = {.write = fd_write, .ctx = (void *)(intptr_t)fd, .direct = NULL};
    return s;
}

struct enc_sink enc_sink_fn(enc_write_fn *fn, void *ctx)
{
    struct enc_sink s = {.write = fn, .ctx = ctx, .direct = NULL};
    return s;
}

/* ---- format names ------------------------------------------------------------- */

enum err enc_format_parse(const char *name, enum enc_format *out, struct errbuf *eb)
{
    static const struct {
        const char *name;
        enum enc_format f;
    } names[] = {
        {"json", ENC_JSON},     {"csv", ENC_CSV},         {"ndjson", ENC_NDJSON},
        {"jsonl", ENC_NDJSON},  {"arrow", ENC_ARROW},     {"msgpack", ENC_MSGPACK},
        {"messagepack", ENC_MSGPACK},
    };
    size_t i;

    for (i = 0; name && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].f;
            return ERR_OK;
        }
    }
    return errbuf_set(eb, ERR_INVAL,
                      "unknown format '%.64s': use json, csv, ndjson, arrow or msgpack",
                      name ? name : "");
}

const char *enc_format_content_type(enum enc_format f)
{
    switch (f) {
    case ENC_CSV: return "text/csv; charset=utf-8";
    case ENC_NDJSON: return "application/x-ndjson";
    case ENC_ARROW: return "application/vnd.apache.arrow.stream";
    case ENC_MSGPACK: return "application/msgpack";
    case ENC_JSON: break;
    }
    return "application/json";
}

/* ---- encoder object and call order ---------------------------------------- */

static const struct enc_ops *ops_for(enum enc_format f)
{
    switch (f) {
    case ENC_CSV: return &enc_csv_ops;
    case ENC_NDJSON: return &enc_ndjson_ops;
    case ENC_ARROW: return &enc_arrow_ops;
    case ENC_MSGPACK: return &enc_msgpack_ops;
    case ENC_JSON: break;
    }
    return &enc_json_ops;
}

struct encoder *enc_new(enum enc_format f, const struct enc_sink *sink,
                        const struct duck_result *r, const struct enc_opts *o)
{
    struct encoder *e = xcalloc(1, sizeof(*e));
    size_t i;

    e->fmt = f;
    e->ops = ops_for(f);
    e->sink = *sink;
    buf_init(&e->stage, 0); /* server-made: bounded by the flush threshold + one value */
    e->out = sink->direct ? sink->direct : &e->stage;
    if (o)
        e->opts = *o;
    if (!e->opts.max_bytes)
        e->opts.max_bytes = ENC_DEFAULT_MAX_BYTES;
    if (!e->opts.arrow_batch_rows)
        e->opts.arrow_batch_rows = ENC_ARROW_BATCH_ROWS;
    e->ncols = duck_result_ncols(r);
    e->cols = xcalloc(e->ncols ? e->ncols : 1, sizeof(*e->cols));
    for (i = 0; i < e->ncols; i++) {
        const char *name = duck_result_col_name(r, i);
        e->cols[i].name = xstrdup(name ? name : "");
        e->cols[i].name_len = strlen(e->cols[i].name);
        e->cols[i].type = duck_result_col_type(r, i);
        e->cols[i].day = INT64_MIN;
    }
    return e;
}

/* Hot loops write through raw pointers; restore struct buf's invariant that
 * data[len] == '\0' (buf_reserve always leaves room for it) before returning. */
static void terminate(struct encoder *e)
{
    if (e->out->data)
        e->out->data[e->out->len] = '\0';
}

/* Shared guard: refuse calls out of order or after a failure, and latch failure. */
static enum err guard(struct encoder *e, bool want_begun, struct errbuf *eb)
{
    if (e->failed)
        return errbuf_set(eb, ERR_INVAL, "encoder already failed");
    if (e->ended)
        return errbuf_set(eb, ERR_INVAL, "encoder already ended");
    if (e->begun != want_begun)
        return errbuf_set(eb, ERR_INVAL, want_begun ? "enc_begin not called"
                                                    : "enc_begin called twice");
    return ERR_OK;
}

enum err enc_begin(struct encoder *e, struct errbuf *eb)
{
    enum err rc = guard(e, false, eb);

    if (rc)
        return rc;
    e->begun = true;
    if (!e->sink.direct) {
        rc = buf_reserve(&e->stage, ENC_STAGE_BYTES);
        if (rc)
            return errbuf_set(eb, rc, "cannot allocate the result staging buffer");
    }
    rc = e->ops->begin(e, eb);
    terminate(e);
    if (rc)
        e->failed = true;
    return rc;
}

enum err enc_chunk(struct encoder *e, const struct duck_chunk *c, struct errbuf *eb)
{
    enum err rc = guard(e, true, eb);
    size_t n;

    if (rc)
        return rc;
    n = c ? duck_chunk_rows(c) : 0;
    if (n == 0)
        return ERR_OK;
    rc = e->ops->chunk(e, c, n, eb);
    terminate(e);
    if (rc)
        e->failed = true;
    return rc;
}

enum err enc_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    struct enc_summary dflt = {0, 0};
    enum err rc = guard(e, true, eb);

    if (rc)
        return rc;
    rc = e->ops->end(e, s ? s : &dflt, eb);
    if (!rc)
        rc = enc_flush(e, eb);
    terminate(e);
    if (rc)
        e->failed = true;
    else
        e->ended = true;
    return rc;
}

uint64_t enc_rows(const struct encoder *e)
{
    return e->rows;
}

uint64_t enc_unsupported_values(const struct encoder *e)
{
    return e->unsupported;
}

uint64_t enc_bytes_out(const struct encoder *e)
{
    return e->sink.direct ? (uint64_t)e->sink.direct->len : e->bytes_flushed;
}

void enc_free(struct encoder *e)
{
    size_t i;

    if (!e)
        return;
    if (e->ops->release)
        e->ops->release(e);
    for (i = 0; i < e->ncols; i++)
        free(e->cols[i].name);
    free(e->cols);
    buf_release(&e->stage);
    free(e);
}

/* ---- output path -------------------------------------------------------------- */

enum err enc_flush(struct encoder *e, struct errbuf *eb)
{
    enum err rc;

    if (e->sink.direct || e->stage.len == 0)
        return ERR_OK;
    rc = e->sink.write(e->sink.ctx, e->stage.data, e->stage.len, eb);
    if (rc)
        return rc;
    e->bytes_flushed += e->stage.len;
    e->stage.len = 0;
    return ERR_OK;
}

enum err enc_grow(struct encoder *e, size_t n, struct errbuf *eb)
{
    enum err rc;

    if (!e->sink.direct && e->stage.len > 0) {
        rc = enc_flush(e, eb);
        if (rc)
            return rc;
        if (e->stage.data && e->stage.cap >= n)
            return ERR_OK;
    }
    rc = buf_reserve(e->out, n);
    if (rc == ERR_LIMIT)
        return errbuf_set(eb, ERR_LIMIT, "query result exceeds the %zu-byte answer limit",
                          e->out->max_bytes);
    return rc ? errbuf_set(eb, rc, "cannot grow the result buffer") : ERR_OK;
}

enum err enc_put(struct encoder *e, const void *p, size_t n, struct errbuf *eb)
{
    enum err rc = enc_need(e, n, eb);

    if (rc)
        return rc;
    memcpy(e->out->data + e->out->len, p, n);
    e->out->len += n;
    return ERR_OK;
}

/* ---- numbers -------------------------------------------------------------------- */



/* Decimal digits of v (1 for 0). */
static inline int u64_len(uint64_t v)
{

    int n = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12; /* log10 of the bit length */

    return n + ((v | 1) >= dtoa_pow10[n]); /* v | 1: 0 has one digit too */
}

char *enc_fmt_u64(char *p, uint64_t v)
{
    char *end = p + u64_len(v), *q = end;
    uint32_t w;

    /* two digits per step from the right; 32-bit steps once v fits (cheaper) */
    while (v >> 32) {
        unsigned d = (unsigned)(v % 100);
        v /= 100;
        q -= 2;
        memcpy(q, dtoa_digits2 + 2 * d, 2);
    }
    w = (uint32_t)v;
    while (w >= 100) {
        unsigned d = w % 100;
        w /= 100;
        q -= 2;
        memcpy(q, dtoa_digits2 + 2 * d, 2);
    }
    if (w >= 10)
        memcpy(q - 2, dtoa_digits2 + 2 * w, 2);
    else
        q[-1] = (char)('0' + w);
    return end;
}

char *enc_fmt_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return enc_fmt_u64(p, (uint64_t)0 - (uint64_t)v); /* INT64_MIN safe */
    }
    return enc_fmt_u64(p, (uint64_t)v);
}

char *enc_fmt_bool_int(char *p, enum duck_type t, const void *data, size_t row)
{
    switch (t) {
    case DUCK_T_BOOL:
        if (((const uint8_t *)data)[row]) {
            memcpy(p, "true", 4);
            return p + 4;
        }
        memcpy(p, "false", 5);
        return p + 5;
    case DUCK_T_I8: return enc_fmt_i64(p, ((const int8_t *)data)[row]);
    case DUCK_T_I16: return enc_fmt_i64(p, ((const int16_t *)data)[row]);
    case DUCK_T_I32: return enc_fmt_i64(p, ((const int32_t *)data)[row]);
    case DUCK_T_I64: return enc_fmt_i64(p, ((const int64_t *)data)[row]);
    case DUCK_T_U8: return enc_fmt_u64(p, ((const uint8_t *)data)[row]);
    case DUCK_T_U16: return enc_fmt_u64(p, ((const uint16_t *)data)[row]);
    case DUCK_T_U32: return enc_fmt_u64(p, ((const uint32_t *)data)[row]);
    default: return NULL;
    }
}

static inline char *put2(char *p, unsigned v)
{
    memcpy(p, dtoa_digits2 + v * 2, 2);
    return p + 2;
}

size_t enc_text_max(enum duck_type t)
{
    switch (t) {
    case DUCK_T_VARCHAR:
    case DUCK_T_BLOB: return 0;
    case DUCK_T_F32:
    case DUCK_T_F64: return DTOA_MAX_LEN; /* dtoa writes all of them */
    case DUCK_T_DATE:
    case DUCK_T_TIME: return 24 + 2;
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: return ENC_TS_MAX + 2;
    default: return ENC_NUM_MAX + 2; /* booleans, integers (UBIGINT quoted), "null" */
    }
}

/* ---- dates and times -------------------------------------------------------------- */

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, yy;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* "YYYY-MM-DD" (years outside 0..9999 signed, at least 4 digits). */
static char *fmt_day(char *p, int64_t day)
{
    int64_t y;
    unsigned m, d;

    civil_from_days(day, &y, &m, &d);
    if (y >= 0 && y <= 9999) {
        p = put2(p, (unsigned)(y / 100));
        p = put2(p, (unsigned)(y % 100));
    } else {
        char tmp[ENC_NUM_MAX];
        char *e;
        uint64_t a = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
        size_t len;

        *p++ = y < 0 ? '-' : '+';
        e = enc_fmt_u64(tmp, a);
        len = (size_t)(e - tmp);
        while (len < 4) {
            *p++ = '0';
            len++;
        }
        memcpy(p, tmp, (size_t)(e - tmp));
        p += e - tmp;
    }
    *p++ = '-';
    p = put2(p, m);
    *p++ = '-';
    return put2(p, d);
}

bool enc_ts_split(enum duck_type t, int64_t v, int64_t *secs, uint32_t *nanos)
{
    int64_t unit, s, r;

    /* DuckDB's timestamp infinities (timestamp_t::infinity() / ninfinity()) */
    if (v == INT64_MAX || v == -INT64_MAX) {
        *secs = v > 0 ? 1 : -1;
        return false;
    }
    switch (t) {
    case DUCK_T_TIMESTAMP_S: unit = 1; break;
    case DUCK_T_TIMESTAMP_MS: unit = 1000; break;
    case DUCK_T_TIMESTAMP_NS: unit = 1000000000; break;
    default: unit = 1000000; break;
    }
    s = v / unit;
    r = v % unit;
    if (r < 0) {
        r += unit;
        s -= 1;
    }
    *secs = s;
    *nanos = (uint32_t)(r * (1000000000 / unit));
    return true;
}

/* ".ffffff" is already in the prefix; write the six digits of us (< 10^6) and 'Z'. */
static inline char *put_us_z(char *p, uint32_t us)
{
    uint32_t hi = us / 10000, lo = us % 10000;

    p = put2(p, hi);
    p = put2(p, lo / 100);
    p = put2(p, lo % 100);
    *p = 'Z';
    return p + 1;
}

/* Units of a timestamp type per second. */
static inline uint64_t ts_units(enum duck_type t)
{
    switch (t) {
    case DUCK_T_TIMESTAMP_S: return 1;
    case DUCK_T_TIMESTAMP_MS: return 1000;
    case DUCK_T_TIMESTAMP_NS: return 1000000000;
    default: return 1000000;
    }
}

/* Microseconds in [0, 10^6) of off units past the start of a second. */
static inline uint32_t ts_off_us(enum duck_type t, uint64_t off)
{
    switch (t) {
    case DUCK_T_TIMESTAMP_S: return 0;
    case DUCK_T_TIMESTAMP_MS: return (uint32_t)off * 1000;
    case DUCK_T_TIMESTAMP_NS: return (uint32_t)(off / 1000);
    default: return (uint32_t)off;
    }
}

/* A second not in the cache: split, format the prefix into col->sec_str, and
 * cache it when its span of raw values cannot hold an infinity (or overflow). */
static char *fmt_ts_slow(struct enc_col *col, char *p, int64_t v)
{
    int64_t secs, day, sod;
    uint64_t unit = ts_units(col->type);
    uint32_t ns;
    char *e;

    if (!enc_ts_split(col->type, v, &secs, &ns)) {
        if (secs < 0)
            *p++ = '-';
        memcpy(p, "infinity", 8);
        return p + 8;
    }
    day = secs / 86400;
    sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        day -= 1;
    }
    if (day != col->day) {
        e = fmt_day(col->day_str, day);
        *e++ = 'T';
        col->day_len = (uint8_t)(e - col->day_str);
        col->day = day;
    }
    memcpy(col->sec_str, col->day_str, col->day_len);
    e = col->sec_str + col->day_len;
    e = put2(e, (unsigned)(sod / 3600));
    *e++ = ':';
    e = put2(e, (unsigned)(sod / 60 % 60));
    *e++ = ':';
    e = put2(e, (unsigned)(sod % 60));
    *e++ = '.';
    col->sec_len = (uint8_t)(e - col->sec_str);
    col->sec_span = 0;
    if (v > -INT64_MAX + (int64_t)unit && v < INT64_MAX - (int64_t)unit) {
        /* ns * unit / 10^9 is the offset in units, exact: ns is a multiple of 10^9 / unit */
        col->sec_lo = v - (int64_t)((uint64_t)ns / (1000000000 / unit));
        col->sec_span = unit;
    }
    memcpy(p, col->sec_str, col->sec_len);
    return put_us_z(p + col->sec_len, ns / 1000);
}

char *enc_fmt_ts(struct enc_col *col, char *p, int64_t v)
{
    uint64_t off = (uint64_t)v - (uint64_t)col->sec_lo;

    if (off < col->sec_span) { /* same second as the row before (the usual case) */
        memcpy(p, col->sec_str, ENC_TS_PREFIX);
        return put_us_z(p + col->sec_len, ts_off_us(col->type, off));
    }
    return fmt_ts_slow(col, p, v);
}

char *enc_fmt_date(char *p, int32_t days)
{
    if (days == INT32_MAX || days == -INT32_MAX) { /* DuckDB's date infinities */
        if (days < 0)
            *p++ = '-';
        memcpy(p, "infinity", 8);
        return p + 8;
    }
    return fmt_day(p, days);
}

char *enc_fmt_time(char *p, int64_t us)
{
    uint64_t u = us < 0 ? 0 : (uint64_t)us, s = u / 1000000, f = u % 1000000;

    p = put2(p, (unsigned)(s / 3600 % 100));
    *p++ = ':';
    p = put2(p, (unsigned)(s / 60 % 60));
    *p++ = ':';
    p = put2(p, (unsigned)(s % 60));
    *p++ = '.';
    p = put2(p, (unsigned)(f / 10000));
    p = put2(p, (unsigned)(f / 100 % 100));
    return put2(p, (unsigned)(f % 100));
}

/* ---- strings ------------------------------------------------------------------------ */

/* SWAR tests on 8 bytes at once (little or big endian alike: they only say
 * whether some byte matches, not which). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Some byte of w is < 0x20, >= 0x80, '"' or '\\'. Exact: a byte >= 0x80 is
 * reported anyway, and a borrow into a higher byte only happens below a byte
 * that already matched. */
static inline bool json_unsafe8(uint64_t w)
{
    return (((w - 0x20 * ONES) | ((w ^ ('"' * ONES)) - ONES) | ((w ^ ('\\' * ONES)) - ONES) | w) &
            HIGHS) != 0;
}

static inline bool json_unsafe4(uint32_t w)
{
    const uint32_t ones = 0x01010101u, highs = 0x80808080u;

    return (((w - 0x20 * ones) | ((w ^ ('"' * ones)) - ones) | ((w ^ ('\\' * ones)) - ones) | w) &
            highs) != 0;
}

static inline bool json_safe_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Some byte of w is zero (the classic exact test, valid with bytes >= 0x80). */
static inline bool has_zero8(uint64_t w)
{
    return ((w - ONES) & ~w & HIGHS) != 0;
}

bool enc_is_plain_json(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint64_t w;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        if (json_unsafe8(w))
            return false;
    }
    for (; i < n; i++)
        if (!json_safe_byte(p[i]))
            return false;
    return true;
}

/* One byte that is not safe (or the start of a UTF-8 sequence) at s[0]: write its
 * JSON form at *pp, return the input bytes consumed. */
static size_t json_escape_one(char **pp, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    char *p = *pp;
    size_t run;

    if (c >= 0x80) {
        run = utf8_seq_len(s, n); /* core/buf.c's rules: same text as buf_append_json_str */
        if (run) {
            memcpy(p, s, run);
            *pp = p + run;
            return run;
        }
        memcpy(p, "\xEF\xBF\xBD", 3); /* U+FFFD for a byte that starts no valid sequence */
        *pp = p + 3;
        return 1;
    }
    *p++ = '\\';
    switch (c) {
    case '"': *p++ = '"'; break;
    case '\\': *p++ = '\\'; break;
    case '\n': *p++ = 'n'; break;
    case '\r': *p++ = 'r'; break;
    case '\t': *p++ = 't'; break;
    case '\b': *p++ = 'b'; break;
    case '\f': *p++ = 'f'; break;
    default:
        memcpy(p, "u00", 3);
        p[3] = hex[c >> 4];
        p[4] = hex[c & 15];
        p += 5;
    }
    *pp = p;
    return 1;
}

char *enc_fmt_json_str(char *p, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, r;
    uint64_t w;
    uint32_t a, b;

    *p++ = '"';
    for (;;) {
        while (n - i >= 8) { /* safe runs, 8 bytes per step */
            memcpy(&w, s + i, 8);
            if (json_unsafe8(w))
                break;
            memcpy(p, &w, 8);
            p += 8;
            i += 8;
        }
        r = n - i;
        if (r < 8) {
            if (r == 0)
                break;
            if (n >= 8) {
                /* if the last 8 input bytes are all safe, those before i were
                 * copied as they are right before p: one overlapping move
                 * rewrites them and adds the tail */
                memcpy(&w, s + n - 8, 8);
                if (!json_unsafe8(w)) {
                    memcpy(p + r - 8, &w, 8);
                    p += r;
                    break;
                }
            } else if (r >= 4) {
                memcpy(&a, s + i, 4);
                memcpy(&b, s + n - 4, 4);
                if (!json_unsafe4(a) && !json_unsafe4(b)) {
                    memcpy(p, &a, 4);
                    memcpy(p + r - 4, &b, 4);
                    p += r;
                    break;
                }
            }
        }
        /* byte by byte up to and including the first byte that needs work */
        while (i < n && json_safe_byte(s[i]))
            *p++ = (char)s[i++];
        if (i < n)
            i += json_escape_one(&p, s + i, n - i);
    }
    *p++ = '"';
    return p;
}

enum err enc_json_str(struct encoder *e, const char *s, size_t n, struct errbuf *eb)
{
    enum err rc;
    char *p;

    if (n > (SIZE_MAX - 2) / 6)
        return errbuf_set(eb, ERR_LIMIT, "string value too large");
    /* a long string asks for its exact size, not the 6x worst case */
    rc = enc_need(e, n > 4096 && enc_is_plain_json(s, n) ? n + 2 : n * 6 + 2, eb);
    if (rc)
        return rc;
    p = e->out->data + e->out->len;
    e->out->len = (size_t)(enc_fmt_json_str(p, s, n) - e->out->data);
    return ERR_OK;
}

/* Some byte of w is ',', '"', CR or LF. */
static inline bool csv_special8(uint64_t w)
{
    return has_zero8(w ^ (',' * ONES)) || has_zero8(w ^ ('"' * ONES)) ||
           has_zero8(w ^ ('\r' * ONES)) || has_zero8(w ^ ('\n' * ONES));
}

static inline bool csv_special_byte(char c)
{
    return c == ',' || c == '"' || c == '\r' || c == '\n';
}

bool enc_csv_needs_quotes(const char *s, size_t n)
{
    size_t i = 0;
    uint64_t w;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (csv_special8(w))
            return true;
    }
    if (n >= 8 && i < n) { /* the tail, as one overlapping word */
        memcpy(&w, s + n - 8, 8);
        return csv_special8(w);
    }
    for (; i < n; i++)
        if (csv_special_byte(s[i]))
            return true;
    return false;
}

char *enc_fmt_csv_field(char *p, const char *s, size_t n)
{
    size_t i;

    if (!enc_csv_needs_quotes(s, n))
        return enc_copy(p, s, n);
    *p++ = '"';
    for (i = 0; i < n; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    return p;
}

char *enc_fmt_blob(char *p, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            *p++ = (char)c;
        } else {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}
