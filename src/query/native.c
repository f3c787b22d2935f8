/* native.c - run a recognised shape (native.h) over in-memory rows.
 *
 * Steps: bind every column the shape uses to the catalog (types must be the ones
 * DuckDB saw: rec), select each source's rows with the exact WHERE, then project
 * (RAW), keep each key's newest row (LATEST) or aggregate into a hash table (AGG),
 * order, cut to the LIMIT and hand the columns over as a duck_result. Strings are
 * borrowed from the batches' dictionaries, which stay pinned until the query ends. */
#include "query/native_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog.h"
#include "core/batch.h"
#include "core/mem.h"
#include "storage/hot.h"

enum duck_type nx_duck_of(enum batch_type t)
{
    switch (t) {
    case BATCH_F64: return DUCK_T_F64;
    case BATCH_I64: return DUCK_T_I64;
    case BATCH_U64: return DUCK_T_U64;
    case BATCH_BOOL: return DUCK_T_BOOL;
    case BATCH_STR: return DUCK_T_VARCHAR;
    }
    return DUCK_T_OTHER;
}

static bool batch_type_of(const char *sql, enum batch_type *out)
{
    static const enum batch_type all[] = {BATCH_F64, BATCH_I64, BATCH_U64, BATCH_BOOL, BATCH_STR};
    for (size_t i = 0; i < 5; i++)
        if (!strcmp(batch_type_sql(all[i]), sql)) {
            *out = all[i];
            return true;
        }
    return false;
}

/* Bind name to the catalog ("time" is the time column). */
bool nx_bind_col(const struct nx_input *in, const char *name, struct colref *out)
{
    if (!strcasecmp(name, "time")) {
        out->name = NULL;
        out->type = BATCH_I64;
        return true;
    }
    for (size_t i = 0; i < in->ncols; i++)
        if (!strcasecmp(in->cols[i].name, name)) {
            out->name = in->cols[i].name;
            return batch_type_of(in->cols[i].type, &out->type);
        }
    return false;
}

/* Is batch column c (the batch's k-th) a catalog column, same spelling and type? The
 * catalog lists columns in the order batches add them: try position k + 1 first
 * (the catalog's first column is usually time's neighbour), then every one. */
static bool in_catalog(const struct nx_input *in, const struct batch_col *c, size_t k)
{
    const char *sql = batch_type_sql(c->type);

    for (size_t g = k; g < k + 2 && g < in->ncols; g++)
        if (!strcmp(in->cols[g].name, c->name))
            return !strcmp(in->cols[g].type, sql);
    for (size_t g = 0; g < in->ncols; g++)
        if (!strcasecmp(in->cols[g].name, c->name))
            return !strcmp(in->cols[g].name, c->name) && !strcmp(in->cols[g].type, sql);
    return false;
}

/* The batch's column for a bound catalog column, type-checked: *c NULL when the
 * batch lacks it (all NULL there). false: present with another type (DuckDB would
 * cast it in the union: not ours to answer). */
bool nx_src_col(const struct batch *b, const struct colref *r, const struct batch_col **c)
{
    *c = NULL;
    for (size_t i = 0; i < b->ncols; i++)
        if (!strcmp(b->cols[i].name, r->name)) {
            if (b->cols[i].type != r->type)
                return false;
            *c = &b->cols[i];
            return true;
        }
    return true;
}

/* ---- WHERE ------------------------------------------------------------------------- */

static inline bool op_holds(enum nx_op op, int c)
{
    switch (op) {
    case NX_LT: return c < 0;
    case NX_LE: return c <= 0;
    case NX_GT: return c > 0;
    case NX_GE: return c >= 0;
    case NX_EQ: return c == 0;
    }
    return false;
}

static const double pow10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/* A predicate bound to one batch. */
struct bpred {
    const struct nx_pred *p;
    const struct batch_col *c;
    uint8_t *accept; /* NX_P_STR: per dictionary id */
    double dv;       /* NX_P_NUM on a DOUBLE column, or a BIGINT column vs DOUBLE */
};

/* 2^53: integers up to it convert to double exactly. */
#define NX_EXACT_INT 9007199254740992LL

/* Does `v <op> literal` hold: 1 yes, 0 no, -1 not decided here. A BIGINT beyond 2^53
 * against a DECIMAL or DOUBLE literal is -1: how DuckDB casts there (to DECIMAL, to
 * DOUBLE, the literal to BIGINT) changes the answer, so such a query is DuckDB's. */
static inline int num_holds(const struct bpred *bp, uint32_t r)
{
    const struct nx_pred *p = bp->p;
    const struct batch_col *c = bp->c;
    int64_t v;

    if (c->type == BATCH_F64)
        return op_holds(p->op, dcmp(((const double *)c->data)[r], bp->dv));
    v = ((const int64_t *)c->data)[r];
    if (p->lk == NX_L_INT)
        return op_holds(p->op, v < p->iv ? -1 : v > p->iv);
    if (v > NX_EXACT_INT || v < -NX_EXACT_INT)
        return -1;
    if (p->lk == NX_L_DEC) {
        __int128 x = (__int128)v, m = p->iv;
        for (int i = 0; i < p->scale; i++)
            x *= 10;
        return op_holds(p->op, x < m ? -1 : x > m);
    }
    return op_holds(p->op, dcmp((double)v, bp->dv)); /* exact: v is a double too */
}

/* The time conjuncts as one inclusive range (µs are integers: t > x is t >= x + 1). */
static void time_range(const struct nx_shape *s, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (size_t k = 0; k < s->npreds; k++) {
        const struct nx_pred *p = &s->preds[k];
        int64_t v = p->t_us, l = INT64_MIN, h = INT64_MAX;
        if (p->k != NX_P_TIME)
            continue;
        switch (p->op) {
        case NX_LT: h = v == INT64_MIN ? INT64_MIN : v - 1; if (v == INT64_MIN) l = INT64_MAX; break;
        case NX_LE: h = v; break;
        case NX_GT: l = v == INT64_MAX ? INT64_MAX : v + 1; if (v == INT64_MAX) h = INT64_MIN; break;
        case NX_GE: l = v; break;
        case NX_EQ: l = h = v; break;
        }
        if (l > *lo)
            *lo = l;
        if (h < *hi)
            *hi = h;
    }
}

/* Select src's rows that satisfy every predicate. false: not answerable. */
static bool select_rows(const struct nx *x, struct src *sr)
{
    const struct nx_shape *s = x->s;
    struct bpred bp[32];
    size_t nbp = 0, n = 0, ndict = sr->b->dict ? strdict_count(sr->b->dict) : 0;
    bool ok = true, none = false;

    for (size_t i = 0; i < s->npreds && ok; i++) {
        const struct nx_pred *p = &s->preds[i];
        struct colref cr;
        if (p->k == NX_P_TIME)
            continue;
        if (!nx_bind_col(x->in, p->col, &cr) || !cr.name || !nx_src_col(sr->b, &cr, &bp[nbp].c)) {
            ok = false;
            break;
        }
        bp[nbp].p = p;
        bp[nbp].accept = NULL;
        if (!bp[nbp].c) {
            none = true; /* NULL in this batch: the conjunct is never true */
            continue;
        }
        if (p->k == NX_P_STR) {
            if (cr.type != BATCH_STR) {
                ok = false;
                break;
            }
            bp[nbp].accept = xcalloc(ndict + 1, 1);
            for (size_t k = 0; k < p->nvals; k++) {
                uint32_t id;
                if (strdict_find(sr->b->dict, p->vals[k], p->lens[k], &id))
                    bp[nbp].accept[id] = 1;
            }
        } else {
            if (cr.type != BATCH_F64 && cr.type != BATCH_I64) {
                ok = false;
                break;
            }
            /* a literal beyond 2^53 against a DOUBLE column: rounding is DuckDB's call */
            if (cr.type == BATCH_F64 && p->lk != NX_L_DBL &&
                (p->iv > NX_EXACT_INT || p->iv < -NX_EXACT_INT)) {
                ok = false;
                break;
            }
            bp[nbp].dv = p->lk == NX_L_INT   ? (double)p->iv
                         : p->lk == NX_L_DEC ? (double)p->iv / pow10d[p->scale]
                                             : p->dv;
        }
        nbp++;
    }
    if (ok && !none) {
        int64_t lo, hi;
        time_range(s, &lo, &hi);
        sr->sel = xmalloc((sr->count ? sr->count : 1) * sizeof(*sr->sel));
        for (size_t i = 0; i < sr->count && ok; i++) {
            uint32_t r = sr->rows ? sr->rows[sr->start + i] : (uint32_t)(sr->start + i);
            int64_t t = sr->b->time_us[r];
            bool pass = t >= lo && t <= hi;
            for (size_t k = 0; k < nbp && pass; k++) {
                if (!present(bp[k].c, r))
                    pass = false;
                else if (bp[k].accept)
                    pass = bp[k].accept[((const uint32_t *)bp[k].c->data)[r]];
                else {
                    int h = num_holds(&bp[k], r);
                    if (h < 0)
                        ok = false;
                    pass = h > 0;
                }
            }
            if (pass) {
                if (!n) {
                    sr->tmin = sr->tmax = t;
                    sr->sorted = true;
                } else {
                    sr->sorted &= t >= sr->tmax;
                    sr->tmin = t < sr->tmin ? t : sr->tmin;
                    sr->tmax = t > sr->tmax ? t : sr->tmax;
                }
                sr->sel[n++] = r;
            }
        }
    }
    sr->nsel = n;
    for (size_t k = 0; k < nbp; k++)
        free(bp[k].accept);
    return ok;
}

/* ---- output columns ------------------------------------------------------------------ */

void nx_out_init(struct outcol *o, const char *name, enum duck_type t, size_t rows)
{
    size_t w = t == DUCK_T_VARCHAR ? sizeof(struct duck_str) : t == DUCK_T_BOOL ? 1 : 8;
    o->nc.name = name;
    o->nc.type = t;
    o->nc.data = xcalloc(rows ? rows : 1, w);
    o->nc.valid = NULL;
    o->n = rows;
}

void nx_out_null(struct outcol *o, size_t row)
{
    if (!o->nc.valid) {
        size_t words = (o->n + 63) / 64;
        o->nc.valid = xmalloc((words ? words : 1) * sizeof(uint64_t));
        memset(o->nc.valid, 0xff, (words ? words : 1) * sizeof(uint64_t));
    }
    o->nc.valid[row / 64] &= ~((uint64_t)1 << (row % 64));
}

/* Copy value (b, r) of batch column c (NULL: absent) or of the time column. */
static void out_copy(struct outcol *o, size_t row, const struct batch *b, const struct batch_col *c,
                     bool is_time, uint32_t r)
{
    if (is_time) {
        ((int64_t *)o->nc.data)[row] = b->time_us[r];
        return;
    }
    if (!present(c, r)) {
        nx_out_null(o, row);
        return;
    }
    switch (c->type) {
    case BATCH_F64:
    case BATCH_I64:
    case BATCH_U64:
        memcpy((char *)o->nc.data + row * 8, (const char *)c->data + (size_t)r * 8, 8);
        break;
    case BATCH_BOOL:
        ((uint8_t *)o->nc.data)[row] = ((const uint8_t *)c->data)[r] ? 1 : 0;
        break;
    case BATCH_STR: {
        struct duck_str *d = (struct duck_str *)o->nc.data + row;
        d->p = strdict_get(b->dict, ((const uint32_t *)c->data)[r], &d->len);
        break;
    }
    }
}

bool nx_finish(struct outcol *oc, size_t ncols, size_t nrows, struct duck_result **out)
{
    struct duck_ncol *nc = xcalloc(ncols ? ncols : 1, sizeof(*nc));

    for (size_t i = 0; i < ncols; i++)
        nc[i] = oc[i].nc;
    *out = duck_result_from_columns(nc, ncols, nrows);
    free(nc);
    return true;
}

void nx_out_free(struct outcol *oc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(oc[i].nc.data);
        free(oc[i].nc.valid);
    }
}

/* ---- RAW and LATEST: rows as they are ---------------------------------------------------- */

/* The catalog columns of the output, in rec's order: items, with a lone * spanning
 * the recorded names the other items leave. */
static bool project_cols(const struct nx *x, struct colref *cols)
{
    const struct nx_shape *s = x->s;
    size_t nstar = 0, o = 0;

    for (size_t i = 0; i < s->nitems; i++)
        nstar += s->items[i].k == NX_I_STAR;
    if (nstar > 1 || (!nstar && s->nitems != x->rec->ncols) ||
        (nstar && x->rec->ncols < s->nitems - 1))
        return false;
    for (size_t i = 0; i < s->nitems; i++) {
        if (s->items[i].k == NX_I_COL) {
            if (!nx_bind_col(x->in, s->items[i].col, &cols[o++]))
                return false;
            continue;
        }
        for (size_t k = 0; k < x->rec->ncols - (s->nitems - 1); k++, o++)
            if (!nx_bind_col(x->in, x->rec->names[o], &cols[o]))
                return false;
    }
    for (size_t i = 0; i < o; i++) {
        enum duck_type t = cols[i].name ? nx_duck_of(cols[i].type) : DUCK_T_TIMESTAMP;
        if (t != x->rec->types[i])
            return false;
    }
    return o == x->rec->ncols;
}

struct rowref {
    uint32_t src, row;
    int64_t t;
};

static int cmp_time_asc(const void *a, const void *b)
{
    const struct rowref *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int cmp_time_desc(const void *a, const void *b)
{
    return cmp_time_asc(b, a);
}

static bool emit_rows(const struct nx *x, const struct colref *cols, const struct rowref *rr,
                      size_t n, struct duck_result **out)
{
    size_t nc = x->rec->ncols;
    struct outcol *oc;
    const struct batch_col **bc;
    const struct batch *last = NULL;
    bool ok = true;

    if (n * (nc ? nc : 1) > NX_MAX_VALUES)
        return false;
    oc = xcalloc(nc ? nc : 1, sizeof(*oc));
    bc = xcalloc(nc ? nc : 1, sizeof(*bc));

    for (size_t i = 0; i < nc; i++)
        nx_out_init(&oc[i], x->rec->names[i], x->rec->types[i], n);
    for (size_t i = 0; i < n && ok; i++) {
        const struct batch *b = x->srcs[rr[i].src].b;
        if (b != last) {
            for (size_t k = 0; k < nc && ok; k++)
                if (cols[k].name)
                    ok = nx_src_col(b, &cols[k], &bc[k]);
            last = b;
        }
        for (size_t k = 0; k < nc && ok; k++)
            out_copy(&oc[k], i, b, bc[k], !cols[k].name, rr[i].row);
    }
    free(bc);
    if (!ok) {
        nx_out_free(oc, nc);
        free(oc);
        return false;
    }
    nx_finish(oc, nc, n, out);
    free(oc);
    return true;
}

static bool run_raw(const struct nx *x, struct duck_result **out)
{
    struct colref *cols = xcalloc(x->rec->ncols ? x->rec->ncols : 1, sizeof(*cols));
    struct rowref *rr;
    size_t n = 0, total = 0;
    bool ok;

    if (!project_cols(x, cols)) {
        free(cols);
        return false;
    }
    for (size_t i = 0; i < x->nsrcs; i++)
        total += x->srcs[i].nsel;
    if (x->s->has_limit && !x->s->norders && total > x->s->limit)
        total = (size_t)x->s->limit; /* any rows will do: the first ones */
    if (total * (x->rec->ncols ? x->rec->ncols : 1) > NX_MAX_VALUES) {
        free(cols);
        return false;
    }
    rr = xmalloc((total ? total : 1) * sizeof(*rr));
    for (size_t i = 0; i < x->nsrcs; i++)
        for (size_t k = 0; k < x->srcs[i].nsel && n < total; k++) {
            uint32_t r = x->srcs[i].sel[k];
            rr[n++] = (struct rowref){(uint32_t)i, r, x->srcs[i].b->time_us[r]};
        }
    if (x->s->norders)
        qsort(rr, n, sizeof(*rr), x->s->orders[0].desc ? cmp_time_desc : cmp_time_asc);
    if (x->s->has_limit && n > x->s->limit)
        n = (size_t)x->s->limit;
    ok = emit_rows(x, cols, rr, n, out);
    free(rr);
    free(cols);
    return ok;
}

/* LATEST: per value of the key column (a string column; NULL is a key too) the row
 * with the largest time (the first seen among equals), ordered by key (bytes, NULL
 * last). */
struct latest {
    const char *k;
    size_t klen;
    bool null, seen;
    struct rowref best;
};

int nx_cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_latest(const void *a, const void *b)
{
    const struct latest *x = a, *y = b;

    if (x->null || y->null)
        return x->null - y->null;
    return nx_cmp_bytes(x->k, x->klen, y->k, y->klen);
}

static bool run_latest(const struct nx *x, struct duck_result **out)
{
    struct colref key, *cols = xcalloc(x->rec->ncols ? x->rec->ncols : 1, sizeof(*cols));
    struct latest *ls = NULL;
    struct rowref *rr = NULL;
    struct strdict *gd = strdict_new();
    size_t cap = 0, n = 0;
    bool ok = project_cols(x, cols) && nx_bind_col(x->in, x->s->latest_key, &key) && key.name &&
              key.type == BATCH_STR;

    for (size_t i = 0; ok && i < x->nsrcs; i++) {
        const struct src *sr = &x->srcs[i];
        const struct batch_col *kc;
        uint32_t *remap = NULL; /* batch string id -> key group + 1 (0: not seen yet) */
        if (!nx_src_col(sr->b, &key, &kc)) {
            ok = false;
            break;
        }
        if (kc && sr->nsel)
            remap = xcalloc(strdict_count(sr->b->dict) + 1, sizeof(*remap));
        for (size_t k = 0; k < sr->nsel; k++) {
            uint32_t r = sr->sel[k];
            int64_t t = sr->b->time_us[r];
            const char *s = NULL;
            size_t len = 0, g = 0; /* 0: the NULL key */
            if (present(kc, r)) {
                uint32_t id = ((const uint32_t *)kc->data)[r];
                s = strdict_get(sr->b->dict, id, &len);
                if (!remap[id])
                    remap[id] = strdict_intern(gd, s, len) + 2;
                g = remap[id] - 1;
            }
            if (g >= cap) {
                size_t old = cap;
                while (g >= cap)
                    cap = cap ? 2 * cap : 64;
                ls = xreallocarray(ls, cap, sizeof(*ls));
                memset(ls + old, 0, (cap - old) * sizeof(*ls));
            }
            if (!ls[g].seen) {
                ls[g] = (struct latest){s, len, g == 0, true, {(uint32_t)i, r, t}};
            } else if (t > ls[g].best.t) {
                ls[g].best = (struct rowref){(uint32_t)i, r, t};
            }
        }
        free(remap);
    }
    if (ok) {
        for (size_t g = 0; g < cap; g++)
            if (ls[g].seen)
                ls[n++] = ls[g];
        qsort(ls, n, sizeof(*ls), cmp_latest);
        if (x->s->has_limit && n > x->s->limit)
            n = (size_t)x->s->limit;
        rr = xmalloc((n ? n : 1) * sizeof(*rr));
        for (size_t i = 0; i < n; i++)
            rr[i] = ls[i].best;
        ok = emit_rows(x, cols, rr, n, out);
    }
    free(rr);
    free(ls);
    free(cols);
    strdict_free(gd);
    return ok;
}

/* ---- entry ----------------------------------------------------------------------------- */

bool nx_exec(const struct nx_shape *s, const struct nx_record *rec, const struct nx_input *in,
             struct duck_result **out)
{
    struct nx x = {.s = s, .rec = rec, .in = in};
    bool ok = true;

    *out = NULL;
    if (!s || !rec)
        return false;
    x.srcs = xcalloc(in->nsegs + in->nbufs + 1, sizeof(*x.srcs));
    for (size_t i = 0; i < in->nsegs; i++)
        if (in->segs[i].count)
            x.srcs[x.nsrcs++] = (struct src){.b = in->segs[i].b, .rows = in->segs[i].rows,
                                             .start = in->segs[i].start,
                                             .count = in->segs[i].count};
    for (size_t i = 0; i < in->nbufs; i++)
        if (in->bufs[i]->nrows)
            x.srcs[x.nsrcs++] = (struct src){.b = in->bufs[i], .count = in->bufs[i]->nrows};
    /* every column of every batch is in the catalog with its type: otherwise the
     * relation DuckDB reads (UNION ALL BY NAME) has a column or a cast we lack */
    for (size_t i = 0; i < x.nsrcs && ok; i++) {
        const struct batch *b = x.srcs[i].b;
        bool again = false;
        for (size_t k = 0; k < i && !again; k++)
            again = x.srcs[k].b == b; /* a batch spans several files */
        for (size_t k = 0; k < b->ncols && ok && !again; k++)
            ok = in_catalog(in, &b->cols[k], k);
    }
    for (size_t i = 0; i < x.nsrcs && ok; i++)
        ok = select_rows(&x, &x.srcs[i]);
    if (ok) {
        switch (s->kind) {
        case NX_AGG: ok = nx_run_agg(&x, out); break;
        case NX_RAW: ok = run_raw(&x, out); break;
        case NX_LATEST: ok = run_latest(&x, out); break;
        default: ok = false;
        }
    }
    for (size_t i = 0; i < x.nsrcs; i++)
        free(x.srcs[i].sel);
    free(x.srcs);
    return ok;
}

void nx_record_free(struct nx_record *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->names[i]);
    free(r->names);
    free(r->types);
    free(r);
}

uint64_t nx_catalog_sig(const struct catalog_column *cols, size_t ncols)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ncols;

    for (size_t i = 0; i < ncols; i++) {
        for (const char *p = cols[i].name; *p; p++)
            h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
        h = nx_mix(h ^ 0x2f);
        for (const char *p = cols[i].type; *p; p++)
            h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
        h = nx_mix(h ^ 0x3a);
    }
    return h;
}
