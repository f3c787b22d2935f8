/* encode.c - the format-independent half of the result encoders: sinks, the
 * staging buffer, call-order checks, and the number/time formatters the text
 * formats share.
 *
 * Design: each format supplies three callbacks (begin, chunk, end); this file
 * owns the encoder object and the output path. The output is either the caller's
 * struct buf (direct: zero copies, its cap bounds the answer) or a 256 KiB stage
 * flushed to a write callback only when it cannot take the next value, so an fd
 * sink sees few large write(2) calls. Timestamps are formatted without gmtime():
 * days-to-civil arithmetic (H. Hinnant's algorithm) plus a per-column cache of
 * the "YYYY-MM-DDT" prefix, because consecutive rows nearly always share a day -
 * this keeps JSON encoding dominated by double formatting, not by dates. */
#include "query/encode.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mem.h"
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

static const char digits2[201] = "00010203040506070809"
                                 "10111213141516171819"
                                 "20212223242526272829"
                                 "30313233343536373839"
                                 "40414243444546474849"
                                 "50515253545556575859"
                                 "60616263646566676869"
                                 "70717273747576777879"
                                 "80818283848586878889"
                                 "90919293949596979899";

char *enc_fmt_u64(char *p, uint64_t v)
{
    char tmp[ENC_NUM_MAX];
    char *t = tmp + sizeof(tmp);
    size_t n;

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--t = digits2[d + 1];
        *--t = digits2[d];
    }
    if (v >= 10) {
        *--t = digits2[v * 2 + 1];
        *--t = digits2[v * 2];
    } else {
        *--t = (char)('0' + v);
    }
    n = (size_t)(tmp + sizeof(tmp) - t);
    memcpy(p, t, n);
    return p + n;
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
    memcpy(p, digits2 + v * 2, 2);
    return p + 2;
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

char *enc_fmt_ts(struct enc_col *col, char *p, int64_t v)
{
    int64_t secs, day, sod;
    uint32_t ns, us;

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
        char *e = fmt_day(col->day_str, day);
        *e++ = 'T';
        col->day_len = (uint8_t)(e - col->day_str);
        col->day = day;
    }
    memcpy(p, col->day_str, col->day_len);
    p += col->day_len;
    p = put2(p, (unsigned)(sod / 3600));
    *p++ = ':';
    p = put2(p, (unsigned)(sod / 60 % 60));
    *p++ = ':';
    p = put2(p, (unsigned)(sod % 60));
    *p++ = '.';
    us = ns / 1000;
    p = put2(p, us / 10000);
    p = put2(p, us / 100 % 100);
    p = put2(p, us % 100);
    *p++ = 'Z';
    return p;
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

bool enc_is_plain_json(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            return false;
    }
    return true;
}

enum err enc_json_str(struct encoder *e, const char *s, size_t n, struct errbuf *eb)
{
    enum err rc;
    char *p;

    if (enc_is_plain_json(s, n)) {
        rc = enc_need(e, n + 2, eb);
        if (rc)
            return rc;
        p = e->out->data + e->out->len;
        *p++ = '"';
        memcpy(p, s, n);
        p[n] = '"';
        e->out->len += n + 2;
        return ERR_OK;
    }
    if (n > (SIZE_MAX - 2) / 6)
        return errbuf_set(eb, ERR_LIMIT, "string value too large");
    rc = enc_need(e, n * 6 + 2, eb); /* buf_append_json_str's worst case: no regrowth */
    if (rc)
        return rc;
    rc = buf_append_json_str(e->out, s, n);
    return rc ? errbuf_set(eb, rc, "cannot encode a string value") : ERR_OK;
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
