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
 * and pandas write; every CSV reader accepts it). Like JSON, one room check per
 * row and raw pointer writes; strings check their own room. */
#include "query/encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "query/dtoa.h"
#include "query/encode_int.h"

/* Append s as one CSV field, quoted if it must be, and leave at least extra
 * bytes of room after it (for the rest of the row). */
static enum err csv_field(struct encoder *e, const char *s, size_t n, size_t extra,
                          struct errbuf *eb)
{
    enum err rc;

    if (n > (SIZE_MAX - 2 - extra) / 2)
        return errbuf_set(eb, ERR_LIMIT, "string value too large");
    /* quotes double: 2n + 2 at worst; a long field asks for what it needs */
    rc = enc_need(e, (n > 4096 && !enc_csv_needs_quotes(s, n) ? n : 2 * n + 2) + extra, eb);
    if (rc)
        return rc;
    e->out->len = (size_t)(enc_fmt_csv_field(e->out->data + e->out->len, s, n) - e->out->data);
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
            rc = csv_field(e, e->cols[i].name, e->cols[i].name_len, 0, eb);
    }
    return rc ? rc : enc_put(e, "\n", 1, eb);
}

/* Bytes one row can take with its strings empty (separators, every fixed-size
 * value's maximum): reserved once per row; each string checks its own room. */
static size_t csv_row_max(const struct encoder *e)
{
    size_t i, m = 1; /* '\n' */

    for (i = 0; i < e->ncols; i++)
        m += enc_text_max(e->cols[i].type) + 1;
    return m;
}

/* Append the VARCHAR or BLOB value of column ci at row (not NULL) at e->out->len,
 * with room for the rest of the row (extra) after it. */
static enum err csv_string(struct encoder *e, const struct duck_chunk *c, size_t ci,
                           enum duck_type t, size_t row, size_t extra, struct errbuf *eb)
{
    const char *s;
    size_t len;
    enum err rc;
    char *p, *tmp;

    s = duck_chunk_str(c, ci, row, &len);
    if (!s)
        return ERR_OK;
    if (t == DUCK_T_VARCHAR)
        return csv_field(e, s, len, extra, eb);
    /* BLOB (rare): format into a temporary, then quote like any other field */
    if (len > SIZE_MAX / 4 - 1)
        return errbuf_set(eb, ERR_LIMIT, "BLOB value too large");
    tmp = xmalloc(len * 4 + 1);
    p = enc_fmt_blob(tmp, (const unsigned char *)s, len);
    rc = csv_field(e, tmp, (size_t)(p - tmp), extra, eb);
    free(tmp);
    return rc;
}

/* Write the non-NULL value of fixed-size type column col at row at p (room:
 * enc_text_max); returns the new end. */
static inline char *csv_fixed(struct encoder *e, struct enc_col *col, const void *data,
                              size_t row, char *p)
{
    double d;

    switch (col->type) {
    case DUCK_T_F64:
    case DUCK_T_F32:
        d = col->type == DUCK_T_F64 ? ((const double *)data)[row] : ((const float *)data)[row];
        if (__builtin_expect(isnan(d), 0)) {
            memcpy(p, "NaN", 3);
            return p + 3;
        }
        if (__builtin_expect(isinf(d), 0)) {
            if (d < 0)
                *p++ = '-';
            memcpy(p, "Infinity", 8);
            return p + 8;
        }
        if (col->type == DUCK_T_F64)
            return p + dtoa_shortest(d, p);
        return p + dtoa_shortest_f32(((const float *)data)[row], p);
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: return enc_fmt_ts(col, p, ((const int64_t *)data)[row]);
    case DUCK_T_I64: return enc_fmt_i64(p, ((const int64_t *)data)[row]);
    case DUCK_T_BOOL:
    case DUCK_T_I8:
    case DUCK_T_I16:
    case DUCK_T_I32:
    case DUCK_T_U8:
    case DUCK_T_U16:
    case DUCK_T_U32: return enc_fmt_bool_int(p, col->type, data, row);
    case DUCK_T_U64: return enc_fmt_u64(p, ((const uint64_t *)data)[row]);
    case DUCK_T_DATE: return enc_fmt_date(p, ((const int32_t *)data)[row]);
    case DUCK_T_TIME: return enc_fmt_time(p, ((const int64_t *)data)[row]);
    default: e->unsupported++; return p; /* DUCK_T_OTHER: empty field */
    }
}

static enum err csv_chunk(struct encoder *e, const struct duck_chunk *c, size_t n,
                          struct errbuf *eb)
{
    const void *data[64];
    const uint64_t *valid[64];
    const void **dp = data;
    const uint64_t **vp = valid;
    enum err rc = ERR_OK;
    size_t row, i, ncols = e->ncols, row_max = csv_row_max(e);
    struct buf *b;
    char *p;

    if (ncols > 64) {
        dp = xcalloc(ncols, sizeof(*dp));
        vp = xcalloc(ncols, sizeof(*vp));
    }
    for (i = 0; i < ncols; i++) {
        dp[i] = duck_chunk_data(c, i);
        vp[i] = duck_chunk_validity(c, i);
    }
    for (row = 0; row < n; row++) {
        rc = enc_need(e, row_max, eb);
        if (rc)
            break;
        b = e->out;
        p = b->data + b->len;
        for (i = 0; i < ncols; i++) {
            struct enc_col *col = &e->cols[i];

            if (i)
                *p++ = ',';
            if (!enc_valid(vp[i], row))
                continue; /* NULL: empty field */
            if (col->type == DUCK_T_VARCHAR || col->type == DUCK_T_BLOB) {
                b->len = (size_t)(p - b->data);
                rc = csv_string(e, c, i, col->type, row, row_max, eb);
                if (rc)
                    goto out;
                p = b->data + b->len; /* the buffer may have moved */
            } else {
                p = csv_fixed(e, col, dp[i], row, p);
            }
        }
        *p++ = '\n';
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

static enum err csv_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    (void)e;
    (void)s;
    (void)eb;
    return ERR_OK;
}

const struct enc_ops enc_csv_ops = {csv_begin, csv_chunk, csv_end, NULL};
