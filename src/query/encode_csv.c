/* encode_csv.c - CSV answers (RFC 4180 quoting, '\n' line ends).
 *
 * A header line of column names, then one line per row. A field is quoted only
 * when it contains a comma, a double quote, CR or LF; quotes inside are doubled.
 * NULL is an empty field (so is the empty string: CSV cannot tell them apart, a
 * documented loss). Booleans are true/false, doubles shortest round-trip
 * ("2.0", "12.3"), NaN as NaN and infinities as Infinity / -Infinity (what
 * Python's float() and pandas read back), UBIGINT unquoted, timestamps RFC 3339
 * UTC with 6 fraction digits, DATE "YYYY-MM-DD", TIME "HH:MM:SS.ffffff", BLOB as
 * DuckDB's \xHH text, DUCK_T_OTHER as empty. Lines end in '\n' (as DuckDB's COPY
 * and pandas write; every CSV reader accepts it). */
#include "query/encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "query/dtoa.h"
#include "query/encode_int.h"

/* Append s as one CSV field, quoted if it must be. */
static enum err csv_field(struct encoder *e, const char *s, size_t n, struct errbuf *eb)
{
    enum err rc;
    size_t i, quotes = 0;
    bool needs = false;
    char *p;

    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ',' || ch == '"' || ch == '\r' || ch == '\n') {
            needs = true;
            quotes += ch == '"';
        }
    }
    if (!needs)
        return enc_put(e, s, n, eb);
    if (n > SIZE_MAX / 2 - 2)
        return errbuf_set(eb, ERR_LIMIT, "string value too large");
    rc = enc_need(e, n + quotes + 2, eb);
    if (rc)
        return rc;
    p = e->out->data + e->out->len;
    *p++ = '"';
    for (i = 0; i < n; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    e->out->len = (size_t)(p - e->out->data);
    return ERR_OK;
}

static enum err csv_begin(struct encoder *e, struct errbuf *eb)
{
    enum err rc = ERR_OK;
    size_t i;

    if (e->opts.csv_no_header)
        return ERR_OK;
    for (i = 0; i < e->ncols && !rc; i++) {
        if (i)
            rc = enc_put(e, ",", 1, eb);
        if (!rc)
            rc = csv_field(e, e->cols[i].name, e->cols[i].name_len, eb);
    }
    return rc ? rc : enc_put(e, "\n", 1, eb);
}

static enum err csv_value(struct encoder *e, struct enc_col *col, const struct duck_chunk *c,
                          size_t ci, const void *data, const uint64_t *valid, size_t row,
                          struct errbuf *eb)
{
    enum err rc;
    const char *s;
    size_t len;
    char *p, *tmp;
    double d;

    if (!enc_valid(valid, row))
        return ERR_OK;
    if (col->type == DUCK_T_VARCHAR) {
        s = duck_chunk_str(c, ci, row, &len);
        return s ? csv_field(e, s, len, eb) : ERR_OK;
    }
    if (col->type == DUCK_T_BLOB) {
        s = duck_chunk_str(c, ci, row, &len);
        if (!s)
            return ERR_OK;
        /* rare: format into a temporary, then quote like any other field */
        if (len > SIZE_MAX / 4 - 1)
            return errbuf_set(eb, ERR_LIMIT, "BLOB value too large");
        tmp = xmalloc(len * 4 + 1);
        p = enc_fmt_blob(tmp, (const unsigned char *)s, len);
        rc = csv_field(e, tmp, (size_t)(p - tmp), eb);
        free(tmp);
        return rc;
    }
    rc = enc_need(e, ENC_TS_MAX + 2, eb);
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
    case DUCK_T_U64: p = enc_fmt_u64(p, ((const uint64_t *)data)[row]); break;
    case DUCK_T_F32:
    case DUCK_T_F64:
        d = col->type == DUCK_T_F64 ? ((const double *)data)[row] : ((const float *)data)[row];
        if (isnan(d)) {
            memcpy(p, "NaN", 3);
            p += 3;
        } else if (isinf(d)) {
            if (d < 0)
                *p++ = '-';
            memcpy(p, "Infinity", 8);
            p += 8;
        } else if (col->type == DUCK_T_F64) {
            p += dtoa_shortest(d, p);
        } else {
            p += dtoa_shortest_f32(((const float *)data)[row], p);
        }
        break;
    case DUCK_T_DATE: p = enc_fmt_date(p, ((const int32_t *)data)[row]); break;
    case DUCK_T_TIME: p = enc_fmt_time(p, ((const int64_t *)data)[row]); break;
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: p = enc_fmt_ts(col, p, ((const int64_t *)data)[row]); break;
    default: e->unsupported++; break; /* DUCK_T_OTHER: empty field */
    }
    e->out->len = (size_t)(p - e->out->data);
    return ERR_OK;
}

static enum err csv_chunk(struct encoder *e, const struct duck_chunk *c, size_t n,
                          struct errbuf *eb)
{
    const void *data[64];
    const uint64_t *valid[64];
    const void **dp = data;
    const uint64_t **vp = valid;
    enum err rc = ERR_OK;
    size_t row, i;

    if (e->ncols > 64) {
        dp = xcalloc(e->ncols, sizeof(*dp));
        vp = xcalloc(e->ncols, sizeof(*vp));
    }
    for (i = 0; i < e->ncols; i++) {
        dp[i] = duck_chunk_data(c, i);
        vp[i] = duck_chunk_validity(c, i);
    }
    for (row = 0; row < n && !rc; row++) {
        for (i = 0; i < e->ncols && !rc; i++) {
            if (i)
                rc = enc_put(e, ",", 1, eb);
            if (!rc)
                rc = csv_value(e, &e->cols[i], c, i, dp[i], vp[i], row, eb);
        }
        if (!rc)
            rc = enc_put(e, "\n", 1, eb);
        if (!rc)
            e->rows++;
    }
    if (dp != data) {
        free(dp);
        free(vp);
    }
    return rc;
}

static enum err csv_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    (void)e;
    (void)s;
    (void)eb;
    return ERR_OK;
}

const struct enc_ops enc_csv_ops = {csv_begin, csv_chunk, csv_end, NULL};
