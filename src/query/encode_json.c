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
 * after the rows, which is why the trailer is written by enc_end. */
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
};

static enum err json_begin(struct encoder *e, struct errbuf *eb)
{
    struct json_state *st = xcalloc(1, sizeof(*st));
    enum err rc;
    size_t i;

    e->priv = st;
    buf_init(&st->scratch, 0);
    if (e->fmt == ENC_NDJSON) {
        st->keys = xcalloc(e->ncols ? e->ncols : 1, sizeof(*st->keys));
        for (i = 0; i < e->ncols; i++) {
            buf_init(&st->keys[i], 0);
            if (buf_append_char(&st->keys[i], i == 0 ? '{' : ',') ||
                buf_append_json_str(&st->keys[i], e->cols[i].name, e->cols[i].name_len) ||
                buf_append_char(&st->keys[i], ':'))
                return errbuf_set(eb, ERR_INTERNAL, "cannot build NDJSON keys");
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

/* Append one value of column ci at row. The caller's enc_need() is not relied on:
 * each branch asks for what it writes. */
static enum err json_value(struct encoder *e, struct json_state *st, struct enc_col *col,
                           const struct duck_chunk *c, size_t ci, const void *data,
                           const uint64_t *valid, size_t row, struct errbuf *eb)
{
    enum err rc;
    size_t len;
    char *p;
    const char *s;
    double d;

    if (!enc_valid(valid, row)) {
        rc = enc_need(e, 4, eb);
        if (rc)
            return rc;
        memcpy(e->out->data + e->out->len, "null", 4);
        e->out->len += 4;
        return ERR_OK;
    }
    if (col->type == DUCK_T_VARCHAR) {
        s = duck_chunk_str(c, ci, row, &len);
        return enc_json_str(e, s ? s : "", s ? len : 0, eb);
    }
    if (col->type == DUCK_T_BLOB) {
        s = duck_chunk_str(c, ci, row, &len);
        if (!s)
            len = 0;
        buf_reset(&st->scratch);
        if (len > SIZE_MAX / 4 || buf_reserve(&st->scratch, len * 4))
            return errbuf_set(eb, ERR_LIMIT, "BLOB value too large");
        p = enc_fmt_blob(st->scratch.data, (const unsigned char *)s, len);
        return enc_json_str(e, st->scratch.data, (size_t)(p - st->scratch.data), eb);
    }
    rc = enc_need(e, ENC_TS_MAX + 2, eb); /* >= every fixed-size value below */
    if (rc)
        return rc;
    p = e->out->data + e->out->len;
    switch (col->type) {
    case DUCK_T_BOOL:
    case DUCK_T_I8:
    case DUCK_T_I16:
    case DUCK_T_I32:
    case DUCK_T_I64:
    case DUCK_T_U8:
    case DUCK_T_U16:
    case DUCK_T_U32: p = enc_fmt_bool_int(p, col->type, data, row); break;
    case DUCK_T_U64:
        *p++ = '"';
        p = enc_fmt_u64(p, ((const uint64_t *)data)[row]);
        *p++ = '"';
        break;
    case DUCK_T_F32:
    case DUCK_T_F64:
        d = col->type == DUCK_T_F64 ? ((const double *)data)[row] : ((const float *)data)[row];
        if (!isfinite(d)) {
            memcpy(p, "null", 4);
            p += 4;
        } else if (col->type == DUCK_T_F64) {
            p += dtoa_shortest(d, p);
        } else {
            p += dtoa_shortest_f32(((const float *)data)[row], p);
        }
        break;
    case DUCK_T_DATE:
        *p++ = '"';
        p = enc_fmt_date(p, ((const int32_t *)data)[row]);
        *p++ = '"';
        break;
    case DUCK_T_TIME:
        *p++ = '"';
        p = enc_fmt_time(p, ((const int64_t *)data)[row]);
        *p++ = '"';
        break;
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS:
        *p++ = '"';
        p = enc_fmt_ts(col, p, ((const int64_t *)data)[row]);
        *p++ = '"';
        break;
    default: /* DUCK_T_OTHER: not readable here (the engine casts it in SQL) */
        e->unsupported++;
        memcpy(p, "null", 4);
        p += 4;
        break;
    }
    e->out->len = (size_t)(p - e->out->data);
    return ERR_OK;
}

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
    size_t row, i;

    /* column arrays once per chunk; heap only for very wide results */
    if (e->ncols > 64) {
        dp = xcalloc(e->ncols, sizeof(*dp));
        vp = xcalloc(e->ncols, sizeof(*vp));
    }
    for (i = 0; i < e->ncols; i++) {
        dp[i] = duck_chunk_data(c, i);
        vp[i] = duck_chunk_validity(c, i);
    }
    for (row = 0; row < n && !rc; row++) {
        if (nd) {
            if (e->ncols == 0)
                rc = enc_put(e, "{", 1, eb);
        } else {
            rc = e->rows ? enc_put(e, ",[", 2, eb) : enc_put(e, "[", 1, eb);
        }
        for (i = 0; i < e->ncols && !rc; i++) {
            if (nd)
                rc = enc_put(e, st->keys[i].data, st->keys[i].len, eb);
            else if (i)
                rc = enc_put(e, ",", 1, eb);
            if (!rc)
                rc = json_value(e, st, &e->cols[i], c, i, dp[i], vp[i], row, eb);
        }
        if (!rc)
            rc = nd ? enc_put(e, "}\n", 2, eb) : enc_put(e, "]", 1, eb);
        if (!rc)
            e->rows++;
    }
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
