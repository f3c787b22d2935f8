/* encode_json.c - the JSON answer of /query (row-major, one envelope) and NDJSON
 * (one object per row).
 *
 * JSON:   {"success":true,"columns":["time","v"],"data":[["2026-...Z",1.5],...],
 *          "row_count":N,"execution_time_ms":T,"timestamp":"<RFC 3339>"}
 * NDJSON: {"time":"2026-...Z","v":1.5}\n per row, nothing else.
 *
 * Value mapping (shared by both): integers as JSON integers except UBIGINT, which
 * is a string ("18446744073709551615": JavaScript clients lose precision above
 * 2^53 and the Go Arc does the same); doubles in shortest round-trip form with
 * Python's spelling ("2.0", "1e+300"), NaN and +-Inf as null (JSON has neither);
 * timestamps, dates and times as RFC 3339 strings; BLOB as DuckDB's \xHH text;
 * NULL and DUCK_T_OTHER as null. The envelope's head is written by enc_begin, so
 * a streamed answer starts flowing with the first chunk; row_count comes last,
 * after the rows, which is why the trailer is written by enc_end.
 * Speed: one room check per row (row_max: every fixed-size value at its longest,
 * separators, NDJSON keys), then raw pointer writes; only a string checks again,
 * for its own 6x-escaped worst case. Doubles are dtoa.c's (Schubfach). */
#include "query/encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "query/dtoa.h"
#include "query/encode_int.h"

struct json_state {
    struct buf *keys;   /* NDJSON: per column `{"name":` (first) or `,"name":` */
    struct buf scratch; /* BLOB text before JSON escaping */
    size_t row_max;     /* bytes one row can take with its strings empty: reserved once per
                           row; each string then checks its own room */
};

static enum err json_begin(struct encoder *e, struct errbuf *eb)
{
    struct json_state *st = xcalloc(1, sizeof(*st));
    enum err rc;
    size_t i;

    e->priv = st;
    buf_init(&st->scratch, 0);
    st->row_max = 3; /* ",[" + "]" or "{" + "}\n" */
    for (i = 0; i < e->ncols; i++) {
        size_t m = enc_text_max(e->cols[i].type);
        st->row_max += (m ? m : 4) + 1; /* the value and its ',' */
    }
    if (e->fmt == ENC_NDJSON) {
        st->keys = xcalloc(e->ncols ? e->ncols : 1, sizeof(*st->keys));
        for (i = 0; i < e->ncols; i++) {
            buf_init(&st->keys[i], 0);
            if (buf_append_char(&st->keys[i], i == 0 ? '{' : ',') ||
                buf_append_json_str(&st->keys[i], e->cols[i].name, e->cols[i].name_len) ||
                buf_append_char(&st->keys[i], ':'))
                return errbuf_set(eb, ERR_INTERNAL, "cannot build NDJSON keys");
            st->row_max += st->keys[i].len;
        }
        return ERR_OK;
    }
    rc = enc_put(e, "{\"success\":true,\"columns\":[", 27, eb);
    for (i = 0; !rc && i < e->ncols; i++) {
        if (i)
            rc = enc_put(e, ",", 1, eb);
        if (!rc)
            rc = enc_json_str(e, e->cols[i].name, e->cols[i].name_len, eb);
    }
    if (!rc)
        rc = enc_put(e, "],\"data\":[", 10, eb);
    return rc;
}

/* Append the VARCHAR or BLOB value of column ci at row (not NULL) at e->out->len,
 * with room for it and for the rest of the row (st->row_max). */
static enum err json_string(struct encoder *e, struct json_state *st, const struct duck_chunk *c,
                            size_t ci, enum duck_type t, size_t row, struct errbuf *eb)
{
    struct buf *b;
    const char *s;
    size_t len, need;
    enum err rc;
    char *p;

    s = duck_chunk_str(c, ci, row, &len);
    if (!s) {
        s = "";
        len = 0;
    }
    if (t == DUCK_T_BLOB) {
        buf_reset(&st->scratch);
        if (len > SIZE_MAX / 4 || buf_reserve(&st->scratch, len * 4))
            return errbuf_set(eb, ERR_LIMIT, "BLOB value too large");
        p = enc_fmt_blob(st->scratch.data, (const unsigned char *)s, len);
        s = st->scratch.data;
        len = (size_t)(p - st->scratch.data);
    }
    if (len > (SIZE_MAX - 2 - st->row_max) / 6)
        return errbuf_set(eb, ERR_LIMIT, "string value too large");
    /* the 6x escaping worst case, except that a long plain string asks for its size */
    need = len > 4096 && enc_is_plain_json(s, len) ? len + 2 : len * 6 + 2;
    rc = enc_need(e, need + st->row_max, eb);
    if (rc)
        return rc;
    b = e->out;
    b->len = (size_t)(enc_fmt_json_str(b->data + b->len, s, len) - b->data);
    return ERR_OK;
}

/* Write the non-NULL value of fixed-size type column col at row at p (room:
 * enc_text_max); returns the new end. */
static inline char *json_fixed(struct encoder *e, struct enc_col *col, const void *data,
                               size_t row, char *p)
{
    double d;

    switch (col->type) {
    case DUCK_T_F64:
        d = ((const double *)data)[row];
        if (__builtin_expect(!isfinite(d), 0)) {
            memcpy(p, "null", 4);
            return p + 4;
        }
        return p + dtoa_shortest(d, p);
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS:
        *p++ = '"';
        p = enc_fmt_ts(col, p, ((const int64_t *)data)[row]);
        *p++ = '"';
        return p;
    case DUCK_T_I64: return enc_fmt_i64(p, ((const int64_t *)data)[row]);
    case DUCK_T_BOOL:
    case DUCK_T_I8:
    case DUCK_T_I16:
    case DUCK_T_I32:
    case DUCK_T_U8:
    case DUCK_T_U16:
    case DUCK_T_U32: return enc_fmt_bool_int(p, col->type, data, row);
    case DUCK_T_U64:
        *p++ = '"';
        p = enc_fmt_u64(p, ((const uint64_t *)data)[row]);
        *p++ = '"';
        return p;
    case DUCK_T_F32:
        d = ((const float *)data)[row];
        if (!isfinite(d)) {
            memcpy(p, "null", 4);
            return p + 4;
        }
        return p + dtoa_shortest_f32(((const float *)data)[row], p);
    case DUCK_T_DATE:
        *p++ = '"';
        p = enc_fmt_date(p, ((const int32_t *)data)[row]);
        *p++ = '"';
        return p;
    case DUCK_T_TIME:
        *p++ = '"';
        p = enc_fmt_time(p, ((const int64_t *)data)[row]);
        *p++ = '"';
        return p;
    default: /* DUCK_T_OTHER: not readable here (the engine casts it in SQL) */
        e->unsupported++;
        memcpy(p, "null", 4);
        return p + 4;
    }
}

/* Rows are written through a raw pointer into one reservation of st->row_max
 * bytes per row (every fixed-size value's maximum, separators, keys); only
 * strings, whose size varies, check for room again. */
static enum err json_chunk(struct encoder *e, const struct duck_chunk *c, size_t n,
                           struct errbuf *eb)
{
    struct json_state *st = e->priv;
    bool nd = e->fmt == ENC_NDJSON;
    const void *data[64];
    const uint64_t *valid[64];
    const void **dp = data;
    const uint64_t **vp = valid;
    enum err rc = ERR_OK;
    size_t row, i, ncols = e->ncols;
    struct buf *b;
    char *p;

    /* column arrays once per chunk; heap only for very wide results */
    if (ncols > 64) {
        dp = xcalloc(ncols, sizeof(*dp));
        vp = xcalloc(ncols, sizeof(*vp));
    }
    for (i = 0; i < ncols; i++) {
        dp[i] = duck_chunk_data(c, i);
        vp[i] = duck_chunk_validity(c, i);
    }
    for (row = 0; row < n; row++) {
        rc = enc_need(e, st->row_max, eb);
        if (rc)
            break;
        b = e->out;
        p = b->data + b->len;
        if (nd) {
            if (ncols == 0)
                *p++ = '{';
        } else {
            if (e->rows)
                *p++ = ',';
            *p++ = '[';
        }
        for (i = 0; i < ncols; i++) {
            struct enc_col *col = &e->cols[i];

            if (nd)
                p = enc_copy(p, st->keys[i].data, st->keys[i].len);
            else if (i)
                *p++ = ',';
            if (!enc_valid(vp[i], row)) {
                memcpy(p, "null", 4);
                p += 4;
            } else if (col->type == DUCK_T_VARCHAR || col->type == DUCK_T_BLOB) {
                b->len = (size_t)(p - b->data);
                rc = json_string(e, st, c, i, col->type, row, eb);
                if (rc)
                    goto out;
                p = b->data + b->len; /* the buffer may have moved */
            } else {
                p = json_fixed(e, col, dp[i], row, p);
            }
        }
        if (nd) {
            memcpy(p, "}\n", 2);
            p += 2;
        } else {
            *p++ = ']';
        }
        b->len = (size_t)(p - b->data);
        e->rows++;
    }
out:
    if (dp != data) {
        free(dp);
        free(vp);
    }
    return rc;
}

static enum err json_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    char tmp[160];
    char *p = tmp;
    double ms = s->execution_time_ms;

    if (e->fmt == ENC_NDJSON)
        return ERR_OK;
    memcpy(p, "],\"row_count\":", 14);
    p = enc_fmt_u64(p + 14, e->rows);
    memcpy(p, ",\"execution_time_ms\":", 21);
    p += 21;
    p += dtoa_shortest(isfinite(ms) && ms >= 0 ? ms : 0.0, p);
    memcpy(p, ",\"timestamp\":\"", 14);
    p += 14;
    p += clock_format_rfc3339_us(s->timestamp_us ? s->timestamp_us : clock_now_us(), p, 40);
    memcpy(p, "\"}", 2);
    p += 2;
    return enc_put(e, tmp, (size_t)(p - tmp), eb);
}

static void json_release(struct encoder *e)
{
    struct json_state *st = e->priv;
    size_t i;

    if (!st)
        return;
    if (st->keys) {
        for (i = 0; i < e->ncols; i++)
            buf_release(&st->keys[i]);
        free(st->keys);
    }
    buf_release(&st->scratch);
    free(st);
    e->priv = NULL;
}

const struct enc_ops enc_json_ops = {json_begin, json_chunk, json_end, json_release};
const struct enc_ops enc_ndjson_ops = {json_begin, json_chunk, json_end, json_release};
