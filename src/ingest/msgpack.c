/* msgpack.c - Arc MessagePack bodies -> column batches, with our own reader
 * (mp_read.h: a bounds-checked cursor; values we do not use are skipped with a
 * depth cap). An item map is walked once: scan_item finds its keys (clients send
 * them in any order) and records a columnar item's columns; then it is decoded,
 * and its values are read in place. Columnar arrays go straight into the column
 * vectors; a float64 column has a fast path that reads 9-byte doubles with no
 * dispatch. Time units: see ingest.h and docs/ingest.md (a columnar `time`
 * column takes its unit from its first value, as the Go Arc does). Row items
 * whose encoded "h"/"tags" values repeat take their tags from the series cache,
 * and a large array of items may be decoded in parts on several threads
 * (decode_items_parts); both give exactly the one-pass result. */
#include "ingest/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ingest/ingest_int.h"
#include "ingest/mp_read.h"

/* ---- decoding --------------------------------------------------------------- */

struct ccol {
    const char *name; /* borrowed from the body */
    size_t len;
    struct mp at; /* cursor at the first element */
    size_t n;     /* elements */
    bool is_tag;
};

#define MD_REC_COLS 64 /* columns of one columnar item that scan_item records */

struct md {
    struct ictx x;
    int64_t now_us;
    struct errbuf *eb;
    size_t item;   /* index of the item being decoded */
    size_t nparts; /* decode an array of items in this many parts (1: one pass) */
    bool record;   /* tag_value records its (column, id) for the series cache */
    size_t used;   /* parts the result came from */
    /* the columns of the "columns" map at rec_at, as scan_columns found them */
    const uint8_t *rec_at;
    struct ccol rec[MD_REC_COLS];
};

/* Positions of an item's known keys (cursor at the value), has_* if present. */
struct item {
    struct mp m, t, h, tags, fields, f, columns, tag_keys, batch;
    bool has_m, has_t, has_h, has_tags, has_fields, has_f, has_columns, has_tag_keys, has_batch;
    const uint8_t *h_end, *tags_end; /* one past the "h" / "tags" value */
};

static enum err md_fail(struct md *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum err md_fail(struct md *d, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return errbuf_set(d->eb, ERR_PARSE, "item %zu: %s", d->item, msg);
}

static enum err md_truncated(struct md *d)
{
    return md_fail(d, "invalid MessagePack: truncated or malformed value");
}

static enum err md_prefix(struct md *d, enum err rc)
{
    errbuf_prefix(d->eb, "item %zu", d->item);
    return rc;
}

static bool key_is(const struct mpv *k, const char *s)
{
    size_t n = strlen(s);
    return k->v.v.s.len == n && memcmp(k->v.v.s.p, s, n) == 0;
}

static const char *kind_word(const struct mpv *v)
{
    switch (v->k) {
    case MK_ARR:
        return "array";
    case MK_MAP:
        return "map";
    case MK_EXT:
        return "extension";
    default:
        return ival_kind_name(v->v.kind);
    }
}

/* Walk the "columns" map at *m, recording each column's name, element count and
 * first element in d->rec for decode_columnar, so the arrays are skipped once
 * rather than twice. Depths as scan_item's mp_skip(m, 1) would count them.
 * false: not a map of at most MD_REC_COLS string keys to arrays, or malformed;
 * *m is unchanged and decode_columnar walks the map itself, reporting what is
 * wrong. */
static bool scan_columns(struct md *d, struct mp *m)
{
    struct mp c = *m;
    struct mpv v, k, a;
    size_t i;

    if (!mp_next(&c, &v) || v.k != MK_MAP || v.n > MD_REC_COLS)
        return false;
    for (i = 0; i < v.n; i++) {
        if (!mp_next(&c, &k) || k.k != MK_SCALAR || k.v.kind != IV_STR || !mp_next(&c, &a) ||
            a.k != MK_ARR)
            return false;
        d->rec[i].name = k.v.v.s.p;
        d->rec[i].len = k.v.v.s.len;
        d->rec[i].at = c;
        d->rec[i].n = a.n;
        d->rec[i].is_tag = false;
        if (!mp_skip_n(&c, a.n, 3))
            return false;
    }
    d->rec_at = m->p;
    *m = c;
    return true;
}

/* Scan npairs key/value pairs at m, recording known keys; m ends past the map. */
static enum err scan_item(struct md *d, struct mp *m, size_t npairs, struct item *it)
{
    size_t i;

    memset(it, 0, sizeof(*it));
    for (i = 0; i < npairs; i++) {
        struct mpv k;
        struct mp at;
        if (!mp_next(m, &k))
            return md_truncated(d);
        if (k.k != MK_SCALAR || k.v.kind != IV_STR)
            return md_fail(d, "map keys must be strings");
        at = *m;
#define KEY(name, fld)                                                                             \
    if (key_is(&k, name)) {                                                                        \
        it->fld = at;                                                                              \
        it->has_##fld = true;                                                                      \
    } else
        KEY("m", m)
        KEY("t", t)
        KEY("h", h)
        KEY("tags", tags) KEY("fields", fields) KEY("f", f) KEY("columns", columns)
            KEY("tag_keys", tag_keys) KEY("batch", batch)
        {
        }
#undef KEY
        if (it->has_columns && it->columns.p == at.p) {
            d->rec_at = NULL;
            if (scan_columns(d, m))
                continue;
        }
        if (!mp_skip(m, 1))
            return md_truncated(d);
        if (it->has_h && it->h.p == at.p)
            it->h_end = m->p;
        if (it->has_tags && it->tags.p == at.p)
            it->tags_end = m->p;
    }
    return ERR_OK;
}

/* A scalar as a tag value: strings as they are, numbers and booleans formatted. */
static enum err tag_value(struct md *d, struct batch *b, const char *name, size_t nlen,
                          const struct mpv *v, size_t row)
{
    struct batch_col *c;
    char num[64];
    const char *s;
    size_t len;
    enum err rc;

    if (v->k != MK_SCALAR)
        return errbuf_set(d->eb, ERR_PARSE, "tag '%.*s': value must be a string, got %s", (int)nlen,
                          name, kind_word(v));
    if (v->v.kind == IV_NIL)
        return ERR_OK;
    if (v->v.kind == IV_STR) {
        s = v->v.v.s.p;
        len = v->v.v.s.len;
    } else {
        len = ival_format(&v->v, num, sizeof(num));
        s = num;
    }
    rc = ictx_tag_col(&d->x, b, name, nlen, &c, d->eb);
    if (rc == ERR_OK)
        rc = ictx_set_tag(&d->x, b, c, row, s, len, d->eb);
    if (rc == ERR_OK && d->record)
        series_push(&d->x.series, (uint32_t)(c - b->cols), ((uint32_t *)c->data)[row]);
    return rc;
}

static enum err field_value(struct md *d, struct batch *b, const char *name, size_t nlen,
                            const struct mpv *v, size_t row)
{
    if (v->k != MK_SCALAR)
        return errbuf_set(d->eb, ERR_PARSE, "field '%.*s': unsupported type %s", (int)nlen, name,
                          kind_word(v));
    return ictx_set_field(&d->x, b, row, name, nlen, &v->v, d->eb);
}

static enum err item_measurement(struct md *d, const struct item *it, struct mpv *mv)
{
    struct mp m = it->m;

    if (!it->has_m)
        return md_fail(d, "missing 'm' (measurement)");
    if (!mp_next(&m, mv))
        return md_truncated(d);
    if (mv->k != MK_SCALAR || mv->v.kind != IV_STR)
        return md_fail(d, "'m' must be a string, got %s", kind_word(mv));
    return ERR_OK;
}

static enum err time_scalar(struct md *d, const struct mpv *v, const char *what, int64_t *us)
{
    enum tunit u;
    bool ok;

    if (v->k != MK_SCALAR)
        return md_fail(d, "%s must be a number, got %s", what, kind_word(v));
    switch (v->v.kind) {
    case IV_I64:
        u = ingest_tunit_of(v->v.v.i < 0 ? 0 - (uint64_t)v->v.v.i : (uint64_t)v->v.v.i);
        ok = ingest_time_i64(v->v.v.i, u, us);
        break;
    case IV_U64:
        ok = ingest_time_u64(v->v.v.u, TU_NS, us);
        break;
    case IV_F64:
        ok = ingest_tunit_of_f64(v->v.v.f, &u) && ingest_time_f64(v->v.v.f, u, us);
        break;
    default:
        return md_fail(d, "%s must be a number, got %s", what, kind_word(v));
    }
    if (!ok)
        return md_fail(d, "%s is out of range", what);
    return ERR_OK;
}

static enum err decode_row(struct md *d, const struct item *it)
{
    struct mpv mv, v, k;
    struct batch *b;
    struct mp m;
    int64_t t_us = d->now_us;
    size_t row, i, n, sk_len = 0, sk_first = 0;
    const char *sk_key = NULL; /* this row's series key, to cache once its tags parse */
    uint64_t sk_h = 0;
    enum err rc;

    rc = item_measurement(d, it, &mv);
    if (rc != ERR_OK)
        return rc;
    if (it->has_t) {
        m = it->t;
        if (!mp_next(&m, &v))
            return md_truncated(d);
        if (!(v.k == MK_SCALAR && v.v.kind == IV_NIL)) {
            rc = time_scalar(d, &v, "'t'", &t_us);
            if (rc != ERR_OK)
                return rc;
        }
    }
    if (!it->has_fields && !it->has_f)
        return md_fail(d, "missing 'fields'");
    rc = ictx_batch(&d->x, mv.v.v.s.p, mv.v.v.s.len, &b, d->eb);
    if (rc == ERR_OK)
        rc = ictx_rows(&d->x, 1, d->eb);
    if (rc != ERR_OK)
        return md_prefix(d, rc);
    row = batch_add_row(b, t_us);

    /* The encoded "h" and "tags" values of a series repeat byte for byte: their
     * span is the series-cache key (struct series_cache), when nothing much
     * else lies between them (in practice only the key "tags"). */
    if ((it->has_h || it->has_tags) && !d->x.series_off) {
        const uint8_t *lo = it->has_h ? it->h.p : it->tags.p;
        const uint8_t *hi = it->has_h ? it->h_end : it->tags_end;
        size_t vals = (size_t)(hi - lo);
        if (it->has_h && it->has_tags) {
            vals += (size_t)(it->tags_end - it->tags.p);
            lo = it->tags.p < lo ? it->tags.p : lo;
            hi = it->tags_end > hi ? it->tags_end : hi;
        }
        if (lo && hi && (size_t)(hi - lo) <= vals + 16) {
            const struct series_ent *e;
            sk_h = series_hash((const char *)lo, (size_t)(hi - lo));
            e = series_find(&d->x.series, b, (const char *)lo, (size_t)(hi - lo), sk_h);
            if (e) {
                ictx_series_store(&d->x, e, row);
                goto fields;
            }
            sk_key = (const char *)lo;
            sk_len = (size_t)(hi - lo);
            sk_first = d->x.series.npairs;
            d->record = true;
        }
    }

    /* tags first, so a field named like a tag becomes <name>_value */
    if (it->has_tags) {
        m = it->tags;
        if (!mp_next(&m, &v))
            return md_truncated(d);
        if (v.k == MK_MAP) {
            n = v.n;
            for (i = 0; i < n; i++) {
                if (!mp_next(&m, &k))
                    return md_truncated(d);
                if (k.k != MK_SCALAR || k.v.kind != IV_STR)
                    return md_fail(d, "tag names must be strings");
                if (!mp_next(&m, &v))
                    return md_truncated(d);
                rc = tag_value(d, b, k.v.v.s.p, k.v.v.s.len, &v, row);
                if (rc != ERR_OK)
                    return md_prefix(d, rc);
            }
        } else if (!(v.k == MK_SCALAR && v.v.kind == IV_NIL)) {
            return md_fail(d, "'tags' must be a map, got %s", kind_word(&v));
        }
    }
    if (it->has_h) {
        m = it->h;
        if (!mp_next(&m, &v))
            return md_truncated(d);
        rc = tag_value(d, b, "host", 4, &v, row);
        if (rc != ERR_OK)
            return md_prefix(d, rc);
    }
    if (sk_key) {
        d->record = false;
        if (d->x.series.npairs > sk_first)
            series_add(&d->x.series, sk_key, sk_len, sk_h, b, sk_first);
        else
            d->x.series.npairs = sk_first;
    }
fields:
    if (it->has_fields) {
        m = it->fields;
        if (!mp_next(&m, &v))
            return md_truncated(d);
        if (v.k != MK_MAP)
            return md_fail(d, "'fields' must be a map, got %s", kind_word(&v));
        if (v.n == 0 && !it->has_f)
            return md_fail(d, "'fields' is empty");
        n = v.n;
        for (i = 0; i < n; i++) {
            if (!mp_next(&m, &k))
                return md_truncated(d);
            if (k.k != MK_SCALAR || k.v.kind != IV_STR)
                return md_fail(d, "field names must be strings");
            if (!mp_next(&m, &v))
                return md_truncated(d);
            rc = field_value(d, b, k.v.v.s.p, k.v.v.s.len, &v, row);
            if (rc != ERR_OK)
                return md_prefix(d, rc);
        }
    }
    if (it->has_f) {
        m = it->f;
        if (!mp_next(&m, &v))
            return md_truncated(d);
        if (v.k != MK_ARR)
            return md_fail(d, "'f' must be an array, got %s", kind_word(&v));
        if (v.n == 0 && !it->has_fields)
            return md_fail(d, "'f' is empty");
        n = v.n;
        for (i = 0; i < n; i++) {
            char name[32];
            int nl = snprintf(name, sizeof(name), "field_%zu", i);
            if (!mp_next(&m, &v))
                return md_truncated(d);
            rc = field_value(d, b, name, (size_t)nl, &v, row);
            if (rc != ERR_OK)
                return md_prefix(d, rc);
        }
    }
    return ERR_OK;
}

/* Fill rows row0.. of column cc (n values) in batch b. */
static enum err fill_column(struct md *d, struct batch *b, struct ccol *cc, size_t row0)
{
    struct mp m = cc->at;
    struct batch_col *c = NULL;
    struct mpv v;
    size_t r;
    enum err rc;

    if (cc->is_tag) {
        for (r = 0; r < cc->n; r++) {
            if (!mp_next(&m, &v))
                return md_truncated(d);
            rc = tag_value(d, b, cc->name, cc->len, &v, row0 + r);
            if (rc != ERR_OK) {
                errbuf_prefix(d->eb, "item %zu: column '%.*s' row %zu", d->item, (int)cc->len,
                              cc->name, r);
                return rc;
            }
        }
        return ERR_OK;
    }
    for (r = 0; r < cc->n; r++) {
        /* fast path: float64 into a DOUBLE column, no dispatch */
        if (c && c->type == BATCH_F64) {
            double *dv = c->data;
            uint8_t *valid = c->valid;
            while (r < cc->n && m.end - m.p >= 9 && m.p[0] == 0xcb) {
                union {
                    uint64_t u;
                    double f;
                } x;
                x.u = be64(m.p + 1);
                dv[row0 + r] = x.f;
                valid[row0 + r] = 1;
                m.p += 9;
                r++;
            }
            if (r == cc->n)
                break;
        }
        if (!mp_next(&m, &v))
            return md_truncated(d);
        if (v.k != MK_SCALAR)
            return md_fail(d, "column '%.*s' row %zu: unsupported type %s", (int)cc->len, cc->name,
                           r, kind_word(&v));
        if (v.v.kind == IV_NIL)
            continue;
        if (!c || !(c->type == BATCH_F64
                        ? (v.v.kind == IV_F64 || v.v.kind == IV_I64 || v.v.kind == IV_U64)
                        : (c->type == BATCH_I64    ? v.v.kind == IV_I64
                           : c->type == BATCH_U64  ? v.v.kind == IV_U64
                           : c->type == BATCH_BOOL ? v.v.kind == IV_BOOL
                                                   : v.v.kind == IV_STR))) {
            rc = ictx_field_col(&d->x, b, cc->name, cc->len, v.v.kind, &c, d->eb);
            if (rc != ERR_OK) {
                errbuf_prefix(d->eb, "item %zu: column '%.*s' row %zu", d->item, (int)cc->len,
                              cc->name, r);
                return rc;
            }
        }
        if (v.v.kind == IV_STR) {
            rc = ictx_check_str(&d->x, v.v.v.s.p, v.v.v.s.len, d->eb);
            if (rc != ERR_OK) {
                errbuf_prefix(d->eb, "item %zu: column '%.*s' row %zu", d->item, (int)cc->len,
                              cc->name, r);
                return rc;
            }
        }
        ival_store(b, c, row0 + r, &v.v);
    }
    return ERR_OK;
}

/* Read one column of a "columns" map at m: its name, its array header, then skip
 * its elements; cc gets name, count and first element. */
static enum err walk_column(struct md *d, struct mp *m, struct ccol *cc)
{
    struct mpv k, a;

    if (!mp_next(m, &k))
        return md_truncated(d);
    if (k.k != MK_SCALAR || k.v.kind != IV_STR)
        return md_fail(d, "column names must be strings");
    if (!mp_next(m, &a))
        return md_truncated(d);
    if (a.k != MK_ARR)
        return md_fail(d, "column '%.*s': expected an array, got %s", (int)k.v.v.s.len, k.v.v.s.p,
                       kind_word(&a));
    cc->name = k.v.v.s.p;
    cc->len = k.v.v.s.len;
    cc->at = *m;
    cc->n = a.n;
    if (!mp_skip_n(m, a.n, 1))
        return md_truncated(d);
    return ERR_OK;
}

static enum err decode_columnar(struct md *d, const struct item *it)
{
    struct mpv mv, v, k;
    struct ccol *cols = NULL, *tcol = NULL;
    size_t ncols = 0, i, j, nrows = 0, row0;
    struct mp m, tk;
    struct batch *b;
    enum tunit unit = TU_US;
    enum err rc;

    rc = item_measurement(d, it, &mv);
    if (rc != ERR_OK)
        return rc;
    m = it->columns;
    if (!mp_next(&m, &v))
        return md_truncated(d);
    if (v.k != MK_MAP)
        return md_fail(d, "'columns' must be a map, got %s", kind_word(&v));
    if (v.n > 2 * (d->x.lim.max_cols + 1) + 64) /* '_' columns are dropped, allow some */
        return errbuf_set(d->eb, ERR_LIMIT, "item %zu: too many columns (max %zu)", d->item,
                          d->x.lim.max_cols);
    cols = xcalloc(v.n ? v.n : 1, sizeof(*cols)); /* v.n <= bytes left / 2 and capped above */
    for (i = 0, j = v.n; i < j; i++) {
        if (d->rec_at == it->columns.p) { /* scan_item walked the map already */
            cols[ncols] = d->rec[i];
        } else {
            rc = walk_column(d, &m, &cols[ncols]);
            if (rc != ERR_OK)
                goto out;
        }
        if (cols[ncols].len == 4 && memcmp(cols[ncols].name, "time", 4) == 0)
            tcol = &cols[ncols];
        else if (cols[ncols].len > 0 && cols[ncols].name[0] == '_')
            continue; /* private columns are dropped (Go Arc behaviour) */
        ncols++;
    }
    if (!tcol) {
        rc = md_fail(d, "columnar item has no 'time' column");
        goto out;
    }
    nrows = tcol->n;
    for (i = 0; i < ncols; i++) {
        if (cols[i].n != nrows) {
            rc = md_fail(d, "column '%.*s' has %zu values, column 'time' has %zu", (int)cols[i].len,
                         cols[i].name, cols[i].n, nrows);
            goto out;
        }
    }
    if (it->has_tag_keys) {
        tk = it->tag_keys;
        if (!mp_next(&tk, &v)) {
            rc = md_truncated(d);
            goto out;
        }
        if (v.k != MK_ARR) {
            rc = md_fail(d, "'tag_keys' must be an array of strings");
            goto out;
        }
        for (i = 0, j = v.n; i < j; i++) {
            if (!mp_next(&tk, &k)) {
                rc = md_truncated(d);
                goto out;
            }
            if (k.k != MK_SCALAR || k.v.kind != IV_STR) {
                rc = md_fail(d, "'tag_keys' must be an array of strings");
                goto out;
            }
            for (size_t c = 0; c < ncols; c++) {
                if (cols[c].len == k.v.v.s.len && !memcmp(cols[c].name, k.v.v.s.p, k.v.v.s.len))
                    cols[c].is_tag = true;
            }
        }
    }
    if (tcol->is_tag) {
        rc = md_fail(d, "'time' cannot be a tag");
        goto out;
    }
    rc = ictx_batch(&d->x, mv.v.v.s.p, mv.v.v.s.len, &b, d->eb);
    if (rc == ERR_OK)
        rc = ictx_rows(&d->x, nrows, d->eb);
    if (rc != ERR_OK) {
        md_prefix(d, rc);
        goto out;
    }
    row0 = batch_add_rows(b, nrows);

    /* time: the unit is taken from the first value and applied to all */
    m = tcol->at;
    for (i = 0; i < nrows; i++) {
        bool ok;
        if (!mp_next(&m, &v)) {
            rc = md_truncated(d);
            goto out;
        }
        if (v.k != MK_SCALAR || (v.v.kind != IV_I64 && v.v.kind != IV_U64 && v.v.kind != IV_F64)) {
            rc = md_fail(d, "column 'time' row %zu: time must be a number, got %s", i,
                         kind_word(&v));
            goto out;
        }
        if (i == 0) {
            if (v.v.kind == IV_I64)
                unit = ingest_tunit_of(v.v.v.i < 0 ? 0 - (uint64_t)v.v.v.i : (uint64_t)v.v.v.i);
            else if (v.v.kind == IV_U64)
                unit = TU_NS;
            else if (!ingest_tunit_of_f64(v.v.v.f, &unit))
                unit = TU_US; /* NaN/Inf: rejected just below */
        }
        if (v.v.kind == IV_I64)
            ok = ingest_time_i64(v.v.v.i, unit, &b->time_us[row0 + i]);
        else if (v.v.kind == IV_U64)
            ok = ingest_time_u64(v.v.v.u, unit, &b->time_us[row0 + i]);
        else
            ok = ingest_time_f64(v.v.v.f, unit, &b->time_us[row0 + i]);
        if (!ok) {
            rc = md_fail(d, "column 'time' row %zu: time is out of range", i);
            goto out;
        }
    }
    /* tags first, so that a field named like a tag becomes <name>_value */
    for (i = 0; i < ncols && rc == ERR_OK; i++) {
        if (cols[i].is_tag && &cols[i] != tcol)
            rc = fill_column(d, b, &cols[i], row0);
    }
    for (i = 0; i < ncols && rc == ERR_OK; i++) {
        if (!cols[i].is_tag && &cols[i] != tcol)
            rc = fill_column(d, b, &cols[i], row0);
    }
out:
    free(cols);
    return rc;
}

static enum err decode_item(struct md *d, struct mp *m)
{
    struct mpv v;
    struct item it;
    enum err rc;

    if (!mp_next(m, &v))
        return md_truncated(d);
    if (v.k != MK_MAP)
        return md_fail(d, "expected a map, got %s", kind_word(&v));
    rc = scan_item(d, m, v.n, &it);
    if (rc != ERR_OK)
        return rc;
    if (it.has_batch)
        return md_fail(d, "'batch' is only allowed at the top level");
    return it.has_columns ? decode_columnar(d, &it) : decode_row(d, &it);
}

/* One part of a parallel decode: items [from, to) of the array whose first item
 * is at m; the part skips the items before its own. */
struct mp_part {
    struct md d;
    struct mp m; /* at item 0; after the run, past item to - 1 */
    size_t from, to;
    enum err rc;
    struct errbuf eb; /* the part's own message; never shown */
};

static void mp_part_main(void *arg)
{
    struct mp_part *pt = arg;
    size_t i;

    pt->rc = ERR_OK;
    for (i = 0; i < pt->from; i++) {
        if (!mp_skip(&pt->m, 0)) {
            pt->rc = ERR_PARSE;
            return;
        }
    }
    for (i = pt->from; i < pt->to && pt->rc == ERR_OK; i++) {
        pt->d.item = i;
        pt->rc = decode_item(&pt->d, &pt->m);
    }
}

/* Decode the n items at *m in d->nparts parts on their own threads, merged into
 * d->x (which holds nothing yet). Items are independent but for the columns they
 * share, which ictx_merge reconciles exactly or refuses; every part but the first
 * skips the items before its own, so later parts get fewer items to decode. true:
 * done, *m past the array; false: nothing changed, decode sequentially (a part
 * failed or the parts do not merge: the sequential pass gives the one message). */
static bool decode_items_parts(struct md *d, struct mp *m, size_t n)
{
    struct mp_part *parts;
    size_t k = d->nparts, i, at = 0;
    bool ok = true;

    if (k > INGEST_MAX_PARTS)
        k = INGEST_MAX_PARTS;
    if (k < 2 || n < k || d->x.nbatches)
        return false;
    parts = xcalloc(k, sizeof(*parts));
    for (i = 0; i < k; i++) {
        /* skipping an item costs about a third of decoding it: part i's share
         * shrinks so that skip + decode take about as long in every part */
        size_t end = i + 1 == k ? n : at + (n - at) * 3 / (3 * (k - i) - (k - i - 1));
        if (end <= at)
            end = at + 1;
        if (end > n)
            end = n;
        errbuf_init(&parts[i].eb);
        ictx_init(&parts[i].d.x, &d->x.lim);
        parts[i].d.now_us = d->now_us;
        parts[i].d.eb = &parts[i].eb;
        parts[i].m = *m;
        parts[i].from = at;
        parts[i].to = end;
        at = end;
    }
    ingest_parts_run(mp_part_main, parts, sizeof(*parts), k);
    for (i = 0; i < k && ok; i++)
        ok = parts[i].rc == ERR_OK && (i == 0 || ictx_merge(&parts[0].d.x, &parts[i].d.x));
    if (ok) {
        ictx_abort(&d->x);
        d->x = parts[0].d.x;
        *m = parts[k - 1].m;
        d->used = k;
    } else {
        ictx_abort(&parts[0].d.x);
    }
    for (i = 1; i < k; i++)
        ictx_abort(&parts[i].d.x);
    free(parts);
    return ok;
}

static enum err decode_items(struct md *d, struct mp *m)
{
    struct mpv v;
    size_t i, n;
    enum err rc;

    if (!mp_next(m, &v))
        return errbuf_set(d->eb, ERR_PARSE, "invalid MessagePack payload: truncated");
    if (v.k != MK_ARR)
        return errbuf_set(d->eb, ERR_PARSE,
                          "invalid MessagePack payload: 'batch' must be an array");
    n = v.n;
    if (d->nparts > 1 && decode_items_parts(d, m, n))
        return ERR_OK;
    for (i = 0; i < n; i++) {
        d->item = i;
        rc = decode_item(d, m);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static enum err mp_decode(const uint8_t *body, size_t len, int64_t now_us,
                          const struct ingest_limits *lim, size_t nparts, struct ingest_result *out,
                          size_t *parts_used, struct errbuf *eb);

enum err ingest_msgpack_decode(const uint8_t *body, size_t len, int64_t now_us,
                               const struct ingest_limits *lim, struct ingest_result *out,
                               struct errbuf *eb)
{
    size_t n = ingest_par_begin(len, INGEST_PAR_MIN_BYTES);
    enum err rc = mp_decode(body, len, now_us, lim, n, out, NULL, eb);

    ingest_par_end(n);
    return rc;
}

enum err ingest_msgpack_decode_parts(const uint8_t *body, size_t len, int64_t now_us,
                                     const struct ingest_limits *lim, size_t nparts,
                                     struct ingest_result *out, size_t *parts_used,
                                     struct errbuf *eb)
{
    return mp_decode(body, len, now_us, lim, nparts, out, parts_used, eb);
}

static enum err mp_decode(const uint8_t *body, size_t len, int64_t now_us,
                          const struct ingest_limits *lim, size_t nparts, struct ingest_result *out,
                          size_t *parts_used, struct errbuf *eb)
{
    struct md d;
    struct mp m = {body, body + len}, probe;
    struct mpv v;
    struct item it;
    enum err rc;

    memset(&d, 0, sizeof(d));
    ictx_init(&d.x, lim);
    d.now_us = now_us;
    d.eb = eb;
    d.nparts = nparts;
    d.used = 1;
    probe = m;
    if (len == 0) {
        rc = errbuf_set(eb, ERR_PARSE, "invalid MessagePack payload: empty body");
        goto fail;
    }
    if (!mp_next(&probe, &v)) {
        rc = errbuf_set(eb, ERR_PARSE, "invalid MessagePack payload: truncated");
        goto fail;
    }
    if (v.k == MK_ARR) {
        rc = decode_items(&d, &m);
    } else if (v.k == MK_MAP) {
        rc = scan_item(&d, &probe, v.n, &it);
        if (rc == ERR_OK && it.has_batch) {
            struct mp bm = it.batch;
            rc = decode_items(&d, &bm);
        } else if (rc == ERR_OK) {
            rc = decode_item(&d, &m);
        }
        if (rc == ERR_OK)
            m = probe;
    } else {
        rc = errbuf_set(eb, ERR_PARSE,
                        "invalid MessagePack payload: expected a map or an array, got %s",
                        kind_word(&v));
    }
    if (rc == ERR_OK && m.p != m.end)
        rc = errbuf_set(eb, ERR_PARSE, "invalid MessagePack payload: %zu trailing bytes",
                        (size_t)(m.end - m.p));
    if (rc != ERR_OK)
        goto fail;
    ictx_finish(&d.x, out);
    if (parts_used)
        *parts_used = d.used;
    return ERR_OK;

fail:
    ictx_abort(&d.x);
    return rc;
}
