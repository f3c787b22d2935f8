/* encode_msgpack.c - the MessagePack answer, column-major as the Go Arc sends it.
 *
 * One map of 7 keys, in this order:
 *   success: true, columns: [names], types: [type names], data: [[col0...], ...],
 *   row_count: uint, execution_time_ms: uint (rounded), timestamp: RFC 3339 string.
 * Type names and value encodings follow the Go Arc's contract (its
 * query_msgpack.go / wiretypes.go): "bool", "int8".."int64", "uint8".."uint64",
 * "float32", "float64", "utf8", "binary", "date32", "timestamp[s|ms|us|ns]",
 * "string_encoded" (TIME, sent as "HH:MM:SS.ffffff"), "null" (DUCK_T_OTHER, all nil).
 * Integers use the smallest msgpack form; floats keep NaN/Inf (msgpack can);
 * TIMESTAMP and DATE values are the msgpack timestamp extension (type -1,
 * 32/64/96-bit forms, nanoseconds preserved), which msgpack libraries decode to
 * native time types; DuckDB's +-infinity timestamps and dates are nil.
 *
 * Design: because data is column-major and each column's array length (the row
 * count) precedes its values, nothing can be sent before the last chunk. Each
 * column is encoded into its own buffer as chunks arrive (the result is held
 * once, already encoded: no second pass over DuckDB data) and the total is capped
 * by opts->max_bytes (ERR_LIMIT); enc_end writes the map and frees each column
 * buffer as soon as it is copied out. */
#include "query/encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "query/encode_int.h"

struct mp_state {
    struct buf *cols; /* per column: its encoded values */
    size_t total;     /* sum of cols[i].len, checked against opts.max_bytes */
};

/* ---- primitive writers (p must have room: at most 15 bytes each) ---- */

static inline char *be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static inline char *be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static inline char *be64(char *p, uint64_t v)
{
    p = be32(p, (uint32_t)(v >> 32));
    return be32(p, (uint32_t)v);
}

static char *mp_uint(char *p, uint64_t v)
{
    if (v < 128) {
        *p++ = (char)v;
    } else if (v <= 0xff) {
        *p++ = (char)0xcc;
        *p++ = (char)v;
    } else if (v <= 0xffff) {
        *p++ = (char)0xcd;
        p = be16(p, (uint16_t)v);
    } else if (v <= 0xffffffffu) {
        *p++ = (char)0xce;
        p = be32(p, (uint32_t)v);
    } else {
        *p++ = (char)0xcf;
        p = be64(p, v);
    }
    return p;
}

static char *mp_int(char *p, int64_t v)
{
    if (v >= 0)
        return mp_uint(p, (uint64_t)v);
    if (v >= -32) {
        *p++ = (char)(int8_t)v; /* negative fixint 0xe0..0xff */
    } else if (v >= INT8_MIN) {
        *p++ = (char)0xd0;
        *p++ = (char)(int8_t)v;
    } else if (v >= INT16_MIN) {
        *p++ = (char)0xd1;
        p = be16(p, (uint16_t)(int16_t)v);
    } else if (v >= INT32_MIN) {
        *p++ = (char)0xd2;
        p = be32(p, (uint32_t)(int32_t)v);
    } else {
        *p++ = (char)0xd3;
        p = be64(p, (uint64_t)v);
    }
    return p;
}

static char *mp_f64(char *p, double d)
{
    uint64_t u;

    memcpy(&u, &d, 8);
    *p++ = (char)0xcb;
    return be64(p, u);
}

static char *mp_f32(char *p, float f)
{
    uint32_t u;

    memcpy(&u, &f, 4);
    *p++ = (char)0xca;
    return be32(p, u);
}

/* Header of a str (bin = false) or bin of n bytes. n < 2^32 (checked by callers). */
static char *mp_strhdr(char *p, size_t n, bool bin)
{
    if (!bin && n < 32) {
        *p++ = (char)(0xa0 | n);
    } else if (n <= 0xff) {
        *p++ = (char)(bin ? 0xc4 : 0xd9);
        *p++ = (char)n;
    } else if (n <= 0xffff) {
        *p++ = (char)(bin ? 0xc5 : 0xda);
        p = be16(p, (uint16_t)n);
    } else {
        *p++ = (char)(bin ? 0xc6 : 0xdb);
        p = be32(p, (uint32_t)n);
    }
    return p;
}

static char *mp_arrhdr(char *p, uint64_t n)
{
    if (n < 16) {
        *p++ = (char)(0x90 | n);
    } else if (n <= 0xffff) {
        *p++ = (char)0xdc;
        p = be16(p, (uint16_t)n);
    } else {
        *p++ = (char)0xdd;
        p = be32(p, (uint32_t)n);
    }
    return p;
}

/* The timestamp extension (type -1) in its smallest form. */
static char *mp_time(char *p, int64_t secs, uint32_t nanos)
{
    if (((uint64_t)secs >> 34) == 0) {
        uint64_t v = ((uint64_t)nanos << 34) | (uint64_t)secs;
        if ((v & 0xffffffff00000000ull) == 0) {
            *p++ = (char)0xd6; /* fixext 4: uint32 seconds */
            *p++ = (char)0xff;
            return be32(p, (uint32_t)v);
        }
        *p++ = (char)0xd7; /* fixext 8: 30-bit nanos, 34-bit seconds */
        *p++ = (char)0xff;
        return be64(p, v);
    }
    *p++ = (char)0xc7; /* ext 8, 12 bytes: uint32 nanos, int64 seconds */
    *p++ = 12;
    *p++ = (char)0xff;
    p = be32(p, nanos);
    return be64(p, (uint64_t)secs);
}

static const char *mp_type_name(enum duck_type t)
{
    switch (t) {
    case DUCK_T_BOOL: return "bool";
    case DUCK_T_I8: return "int8";
    case DUCK_T_I16: return "int16";
    case DUCK_T_I32: return "int32";
    case DUCK_T_I64: return "int64";
    case DUCK_T_U8: return "uint8";
    case DUCK_T_U16: return "uint16";
    case DUCK_T_U32: return "uint32";
    case DUCK_T_U64: return "uint64";
    case DUCK_T_F32: return "float32";
    case DUCK_T_F64: return "float64";
    case DUCK_T_VARCHAR: return "utf8";
    case DUCK_T_BLOB: return "binary";
    case DUCK_T_DATE: return "date32";
    case DUCK_T_TIME: return "string_encoded";
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ: return "timestamp[us]";
    case DUCK_T_TIMESTAMP_S: return "timestamp[s]";
    case DUCK_T_TIMESTAMP_MS: return "timestamp[ms]";
    case DUCK_T_TIMESTAMP_NS: return "timestamp[ns]";
    case DUCK_T_OTHER: break;
    }
    return "null";
}

/* ---- encoder ---- */

static enum err mp_begin(struct encoder *e, struct errbuf *eb)
{
    struct mp_state *st = xcalloc(1, sizeof(*st));
    size_t i;

    (void)eb;
    st->cols = xcalloc(e->ncols ? e->ncols : 1, sizeof(*st->cols));
    for (i = 0; i < e->ncols; i++)
        buf_init(&st->cols[i], 0); /* capped together through st->total */
    e->priv = st;
    return ERR_OK;
}

/* Room for n more bytes in column buffer b, within the result cap. */
static enum err col_need(struct encoder *e, struct mp_state *st, struct buf *b, size_t n,
                         struct errbuf *eb)
{
    if (b->data && b->cap - b->len >= n)
        return ERR_OK;
    if (n > e->opts.max_bytes || st->total + n > e->opts.max_bytes)
        return errbuf_set(eb, ERR_LIMIT,
                          "MessagePack answer exceeds the %zu-byte limit (%zu rows encoded)",
                          e->opts.max_bytes, (size_t)e->rows);
    return buf_reserve(b, n) ? errbuf_set(eb, ERR_LIMIT, "cannot grow a result column")
                             : ERR_OK;
}

static enum err mp_column(struct encoder *e, struct mp_state *st, size_t ci,
                          const struct duck_chunk *c, size_t n, struct errbuf *eb)
{
    struct enc_col *col = &e->cols[ci];
    struct buf *b = &st->cols[ci];
    const void *data = duck_chunk_data(c, ci);
    const uint64_t *valid = duck_chunk_validity(c, ci);
    size_t before = b->len, row, len;
    enum err rc;
    const char *s;
    int64_t secs;
    uint32_t nanos;
    char *p;

    if (col->type == DUCK_T_VARCHAR || col->type == DUCK_T_BLOB) {
        for (row = 0; row < n; row++) {
            s = enc_valid(valid, row) ? duck_chunk_str(c, ci, row, &len) : NULL;
            if (s && len > 0xffffffffu)
                return errbuf_set(eb, ERR_LIMIT, "string value over 4 GiB");
            rc = col_need(e, st, b, s ? len + 5 : 1, eb);
            if (rc)
                return rc;
            p = b->data + b->len;
            if (!s) {
                *p++ = (char)0xc0;
            } else {
                p = mp_strhdr(p, len, col->type == DUCK_T_BLOB);
                memcpy(p, s, len);
                p += len;
            }
            b->len = (size_t)(p - b->data);
            st->total += b->len - before;
            before = b->len;
        }
        return ERR_OK;
    }
    /* fixed-size values: at most 15 bytes each (ext 8 timestamp), reserve once */
    rc = col_need(e, st, b, n * 16, eb);
    if (rc)
        return rc;
    p = b->data + b->len;
    for (row = 0; row < n; row++) {
        if (!enc_valid(valid, row)) {
            *p++ = (char)0xc0;
            continue;
        }
        switch (col->type) {
        case DUCK_T_BOOL: *p++ = ((const uint8_t *)data)[row] ? (char)0xc3 : (char)0xc2; break;
        case DUCK_T_I8: p = mp_int(p, ((const int8_t *)data)[row]); break;
        case DUCK_T_I16: p = mp_int(p, ((const int16_t *)data)[row]); break;
        case DUCK_T_I32: p = mp_int(p, ((const int32_t *)data)[row]); break;
        case DUCK_T_I64: p = mp_int(p, ((const int64_t *)data)[row]); break;
        case DUCK_T_U8: p = mp_uint(p, ((const uint8_t *)data)[row]); break;
        case DUCK_T_U16: p = mp_uint(p, ((const uint16_t *)data)[row]); break;
        case DUCK_T_U32: p = mp_uint(p, ((const uint32_t *)data)[row]); break;
        case DUCK_T_U64: p = mp_uint(p, ((const uint64_t *)data)[row]); break;
        case DUCK_T_F32: p = mp_f32(p, ((const float *)data)[row]); break;
        case DUCK_T_F64: p = mp_f64(p, ((const double *)data)[row]); break;
        case DUCK_T_DATE: {
            int32_t days = ((const int32_t *)data)[row];
            if (days == INT32_MAX || days == -INT32_MAX)
                *p++ = (char)0xc0;
            else
                p = mp_time(p, (int64_t)days * 86400, 0);
            break;
        }
        case DUCK_T_TIME:
            *p++ = (char)(0xa0 | 15);
            p = enc_fmt_time(p, ((const int64_t *)data)[row]);
            break;
        case DUCK_T_TIMESTAMP:
        case DUCK_T_TIMESTAMP_TZ:
        case DUCK_T_TIMESTAMP_S:
        case DUCK_T_TIMESTAMP_MS:
        case DUCK_T_TIMESTAMP_NS:
            if (enc_ts_split(col->type, ((const int64_t *)data)[row], &secs, &nanos))
                p = mp_time(p, secs, nanos);
            else
                *p++ = (char)0xc0;
            break;
        default:
            e->unsupported++;
            *p++ = (char)0xc0;
            break;
        }
    }
    b->len = (size_t)(p - b->data);
    st->total += b->len - before;
    return ERR_OK;
}

static enum err mp_chunk(struct encoder *e, const struct duck_chunk *c, size_t n,
                         struct errbuf *eb)
{
    struct mp_state *st = e->priv;
    enum err rc;
    size_t i;

    if (e->rows + n > 0xffffffffu)
        return errbuf_set(eb, ERR_LIMIT, "MessagePack answer over 2^32 rows");
    for (i = 0; i < e->ncols; i++) {
        rc = mp_column(e, st, i, c, n, eb);
        if (rc)
            return rc;
    }
    e->rows += n;
    return ERR_OK;
}

/* Append a str of n bytes to the output. */
static enum err out_str(struct encoder *e, const char *s, size_t n, struct errbuf *eb)
{
    enum err rc = enc_need(e, n + 5, eb);
    char *p;

    if (rc)
        return rc;
    p = mp_strhdr(e->out->data + e->out->len, n, false);
    memcpy(p, s, n);
    e->out->len = (size_t)(p + n - e->out->data);
    return ERR_OK;
}

static enum err out_hdr(struct encoder *e, uint64_t n, struct errbuf *eb)
{
    enum err rc = enc_need(e, 5, eb);

    if (rc)
        return rc;
    e->out->len = (size_t)(mp_arrhdr(e->out->data + e->out->len, n) - e->out->data);
    return ERR_OK;
}

static enum err mp_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    struct mp_state *st = e->priv;
    double ms = s->execution_time_ms;
    char ts[48], tail[16];
    enum err rc;
    size_t i;
    int tsn;

    rc = enc_put(e, "\x87\xa7success\xc3\xa7" "columns", 18, eb);
    if (!rc)
        rc = out_hdr(e, e->ncols, eb);
    for (i = 0; !rc && i < e->ncols; i++)
        rc = out_str(e, e->cols[i].name, e->cols[i].name_len, eb);
    if (!rc)
        rc = enc_put(e, "\xa5types", 6, eb);
    if (!rc)
        rc = out_hdr(e, e->ncols, eb);
    for (i = 0; !rc && i < e->ncols; i++) {
        const char *tn = mp_type_name(e->cols[i].type);
        rc = out_str(e, tn, strlen(tn), eb);
    }
    if (!rc)
        rc = enc_put(e, "\xa4" "data", 5, eb);
    if (!rc)
        rc = out_hdr(e, e->ncols, eb);
    for (i = 0; !rc && i < e->ncols; i++) {
        rc = out_hdr(e, e->rows, eb);
        if (!rc && st->cols[i].len)
            rc = enc_put(e, st->cols[i].data, st->cols[i].len, eb);
        st->total -= st->cols[i].len;
        buf_release(&st->cols[i]); /* peak memory: result + one column, not 2x */
    }
    if (!rc)
        rc = enc_put(e, "\xa9row_count", 10, eb);
    if (!rc) {
        char *p = mp_uint(tail, e->rows);
        rc = enc_put(e, tail, (size_t)(p - tail), eb);
    }
    if (!rc)
        rc = enc_put(e, "\xb1" "execution_time_ms", 18, eb);
    if (!rc) {
        char *p = mp_uint(tail, isfinite(ms) && ms > 0 && ms < 1e18 ? (uint64_t)llround(ms) : 0);
        rc = enc_put(e, tail, (size_t)(p - tail), eb);
    }
    if (!rc)
        rc = enc_put(e, "\xa9timestamp", 10, eb);
    if (!rc) {
        tsn = clock_format_rfc3339_us(s->timestamp_us ? s->timestamp_us : clock_now_us(), ts,
                                      (int)sizeof(ts));
        rc = out_str(e, ts, (size_t)tsn, eb);
    }
    return rc;
}

static void mp_release(struct encoder *e)
{
    struct mp_state *st = e->priv;
    size_t i;

    if (!st)
        return;
    for (i = 0; i < e->ncols; i++)
        buf_release(&st->cols[i]);
    free(st->cols);
    free(st);
    e->priv = NULL;
}

const struct enc_ops enc_msgpack_ops = {mp_begin, mp_chunk, mp_end, mp_release};
