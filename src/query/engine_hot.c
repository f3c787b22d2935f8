/* engine_hot.c - the query engine's use of the hot tier (storage/hot.h).
 *
 * For each file of a reference that the hot tier holds, the engine pins the file's
 * rows and narrows them before DuckDB sees any: to the reference's time bounds
 * (binary search, rows are in time order), to its `col = 'v'` / `col IN (...)`
 * conjuncts on string columns and `col <op> number` ones (a row selection), or, for a "latest row
 * per key" statement, to the file's newest rows per key (memoized with the file). The pinned
 * segments are then read through one arc_batch_scan per column list. DuckDB still
 * evaluates the whole statement; every narrowing only drops rows the statement can
 * never use (docs/query.md "Hot tier"). */
#include "query/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>

#include "catalog/catalog.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/mem.h"
#include "duck/duck.h"
#include "query/plan.h"
#include "storage/hot.h"

const char *qe_column_named(const struct catalog_column *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(cols[i].name, name))
            return cols[i].name;
    return NULL;
}

bool qe_latest_applies(const struct query_plan *plan, const struct catalog_column *cols,
                       size_t ncols)
{
    if (!plan->nlatest_keys || plan->nrefs != 1)
        return false;
    for (size_t i = 0; i < plan->nlatest_keys; i++)
        if (!qe_column_named(cols, ncols, plan->latest_keys[i]))
            return false;
    return true;
}

/* Column `name` of b, matched as DuckDB binds names (case-insensitively). */
static const struct batch_col *batch_col_ci(const struct batch *b, const char *name)
{
    for (size_t i = 0; i < b->ncols; i++)
        if (!strcasecmp(b->cols[i].name, name))
            return &b->cols[i];
    return NULL;
}

/* A row filter over one batch: a tag set (accept[id] for the column's string ids)
 * or a numeric comparison. c NULL: the column is not in this batch (all NULL, which
 * no conjunct accepts). */
struct row_filter {
    const struct batch_col *c;
    uint8_t *accept;                /* tag set */
    const struct query_numcmp *num; /* numeric comparison */
};

/* Give g a selection of its own (snap-owned) made of rows[0..n). */
static void seg_select(struct snap *s, struct hot_seg *g, uint32_t *rows, size_t n)
{
    s->sel = xreallocarray(s->sel, s->nsel + 1, sizeof(*s->sel));
    s->sel[s->nsel++] = rows;
    g->rows = rows;
    g->start = 0;
    g->count = n;
}

#define SEG_ROW(g, i) ((g)->rows ? (g)->rows[(g)->start + (i)] : (uint32_t)((g)->start + (i)))

/* Could `v <op> x` be true in DuckDB? False only when it certainly is not: the
 * literal went through strtod and a decimal scale here, the column value may be an
 * int64 beyond 2^53, and DuckDB may compare in DECIMAL, so a close call (within
 * 1e-9 relative) is kept and left to DuckDB. NaN is kept: DuckDB orders it above
 * every number. */
static bool num_maybe(double v, const struct query_numcmp *n)
{
    double x = n->value, eps = (x < 0 ? -x : x) * 1e-9 + 1e-300;

    if (v != v)
        return true;
    switch (n->op) {
    case QUERY_NUM_GT:
        return v > x - eps;
    case QUERY_NUM_GE:
        return v >= x - eps;
    case QUERY_NUM_LT:
        return v < x + eps;
    case QUERY_NUM_LE:
        return v <= x + eps;
    case QUERY_NUM_EQ:
        return v >= x - eps && v <= x + eps;
    }
    return true;
}

static bool filter_pass(const struct row_filter *f, uint32_t r)
{
    const struct batch_col *c = f->c;
    double v;

    if (!c || (c->valid && !c->valid[r]))
        return false; /* NULL: the conjunct is never true */
    if (f->accept)
        return f->accept[((const uint32_t *)c->data)[r]];
    switch (c->type) {
    case BATCH_F64:
        v = ((const double *)c->data)[r];
        break;
    case BATCH_I64:
        v = (double)((const int64_t *)c->data)[r];
        break;
    case BATCH_U64:
        v = (double)((const uint64_t *)c->data)[r];
        break;
    default:
        return true;
    }
    return num_maybe(v, f->num);
}

/* Keep only g's rows that can pass the reference's `col = 'v'` / `col IN (...)`
 * conjuncts on string columns and `col <op> number` ones on numeric columns
 * (query.h): the scan then hands DuckDB a few rows instead of every row in the time
 * bounds. Only conjuncts on a column the measurement has apply (otherwise the name
 * may bind to something else); a file without that column has it NULL, which no
 * conjunct accepts. */
static void filter_rows(struct snap *s, struct hot_seg *g, const struct plan_ref *ref,
                        const struct catalog_column *cols, size_t ncols)
{
    struct row_filter f[32];
    size_t nf = 0, n = 0, ndict = g->b->dict ? strdict_count(g->b->dict) : 0;
    uint32_t *out;

    for (size_t i = 0; i < ref->ntags && nf < 16 && g->count; i++) {
        const struct query_tagset *t = &ref->tags[i];
        const struct batch_col *c;
        bool any = false;

        if (!qe_column_named(cols, ncols, t->column))
            continue;
        c = batch_col_ci(g->b, t->column);
        if (c && c->type != BATCH_STR)
            continue; /* not a string here: DuckDB compares after a cast */
        f[nf].c = c;
        f[nf].num = NULL;
        f[nf].accept = xcalloc(ndict + 1, 1);
        for (size_t k = 0; c && k < t->nvalues; k++) {
            uint32_t id;
            if (strdict_find(g->b->dict, t->values[k], t->lens[k], &id)) {
                f[nf].accept[id] = 1;
                any = true;
            }
        }
        nf++;
        if (!any)
            g->count = 0; /* no row of this file can match */
    }
    for (size_t i = 0; i < ref->nnums && nf < 32 && g->count; i++) {
        const struct batch_col *c;

        if (!qe_column_named(cols, ncols, ref->nums[i].column))
            continue;
        c = batch_col_ci(g->b, ref->nums[i].column);
        if (c && c->type != BATCH_F64 && c->type != BATCH_I64 && c->type != BATCH_U64)
            continue;
        f[nf].c = c;
        f[nf].num = &ref->nums[i];
        f[nf].accept = NULL;
        nf++;
    }
    if (nf == 0)
        return;
    out = xmalloc((g->count ? g->count : 1) * sizeof(*out));
    if (f[0].accept && f[0].c) {
        /* the common case (a tag set first): that one branch-free (a NULL row reads
         * accept[ndict], which is 0), the other filters on its survivors */
        const uint32_t *ids = f[0].c->data;
        const uint8_t *acc = f[0].accept, *valid = f[0].c->valid;
        uint32_t none = (uint32_t)ndict;
        size_t m = 0;
        for (size_t i = 0; i < g->count; i++) {
            uint32_t r = SEG_ROW(g, i);
            out[n] = r;
            n += acc[valid && !valid[r] ? none : ids[r]];
        }
        for (size_t i = 0; i < n; i++) {
            bool ok = true;
            for (size_t k = 1; k < nf && ok; k++)
                ok = filter_pass(&f[k], out[i]);
            if (ok)
                out[m++] = out[i];
        }
        n = m;
    } else {
        for (size_t i = 0; i < g->count; i++) {
            uint32_t r = SEG_ROW(g, i);
            bool ok = true;
            for (size_t k = 0; k < nf && ok; k++)
                ok = filter_pass(&f[k], r);
            if (ok)
                out[n++] = r;
        }
    }
    seg_select(s, g, out, n);
    for (size_t k = 0; k < nf; k++)
        free(f[k].accept);
}

/* "Latest row per key" (plan.h) over a hot segment: keep, per key group, only the
 * rows at the group's largest time in this file. The semi join of wrap_latest then
 * picks the newest among files from a handful of rows per file. Keys must be
 * string columns (tags) here; otherwise the segment is left whole. */
static void latest_rows(struct hot *h, struct snap *s, struct hot_seg *g,
                        const struct query_plan *plan)
{
    const struct batch_col *kc[16];
    char name[512];
    const uint32_t *memo;
    size_t nmemo, nlen;
    size_t nk = plan->nlatest_keys, ndict = g->b->dict ? strdict_count(g->b->dict) : 0;
    size_t cap, n = 0;
    struct slot {
        uint32_t row; /* first row seen (from the end) of the group, UINT32_MAX = empty */
        int64_t t;    /* the group's max time in this segment */
    } * tab;
    uint32_t *out;

    if (nk == 0 || nk > 16 || g->count == 0)
        return;
    nlen = (size_t)snprintf(name, sizeof(name), "latest");
    for (size_t k = 0; k < nk && nlen < sizeof(name); k++) {
        kc[k] = batch_col_ci(g->b, plan->latest_keys[k]);
        if (kc[k] && kc[k]->type != BATCH_STR)
            return;
        /* the memo is per column (\x1f never occurs in a column name we accept) */
        nlen +=
            (size_t)snprintf(name + nlen, sizeof(name) - nlen, "\x1f%s", kc[k] ? kc[k]->name : "");
    }
    if (nlen >= sizeof(name))
        return;
    if (hot_memo_get(h, g, name, &memo, &nmemo)) {
        g->rows = memo; /* the block's: valid while g is pinned */
        g->start = 0;
        g->count = nmemo;
        return;
    }
#define KEY_ID(k, r)                                                                               \
    (!kc[k]                               ? (uint32_t)ndict                                        \
     : (kc[k]->valid && !kc[k]->valid[r]) ? (uint32_t)ndict                                        \
                                          : ((const uint32_t *)kc[k]->data)[r])
    cap = 64;
    while (cap < 2 * (ndict + 1) && cap < 2 * g->count)
        cap *= 2;
    tab = xmalloc(cap * sizeof(*tab));
    for (size_t i = 0; i < cap; i++)
        tab[i].row = UINT32_MAX;
    out = xmalloc(g->count * sizeof(*out));
    for (size_t i = g->count; i-- > 0;) { /* newest first: the first row of a group is its max */
        uint32_t r = SEG_ROW(g, i);
        uint64_t hv = 1469598103934665603ULL;
        size_t slot;
        for (size_t k = 0; k < nk; k++)
            hv = (hv ^ KEY_ID(k, r)) * 1099511628211ULL;
        for (slot = (size_t)(hv ^ (hv >> 29)) & (cap - 1);; slot = (slot + 1) & (cap - 1)) {
            bool same = tab[slot].row != UINT32_MAX;
            for (size_t k = 0; k < nk && same; k++)
                same = KEY_ID(k, tab[slot].row) == KEY_ID(k, r);
            if (tab[slot].row == UINT32_MAX || same)
                break;
        }
        if (tab[slot].row == UINT32_MAX) {
            tab[slot].row = r;
            tab[slot].t = g->b->time_us[r];
            out[n++] = r;
            if (n * 2 > cap) { /* more groups than planned: leave the segment whole */
                free(tab);
                free(out);
                return;
            }
        } else if (g->b->time_us[r] == tab[slot].t) {
            out[n++] = r; /* a tie at the group's max time */
        }
    }
#undef KEY_ID
    free(tab);
    {
        uint32_t *keep = xmalloc((n ? n : 1) * sizeof(*keep));
        memcpy(keep, out, n * sizeof(*keep));
        hot_memo_put(h, g, name, keep, n);
    }
    seg_select(s, g, out, n);
}

/* The key of row r into k: per key column (kc[i] of r's batch; NULL = absent) its
 * string's length (size_t) and bytes, NULL as the length SIZE_MAX. */
static void latest_key(const struct batch *b, const struct batch_col *const *kc, size_t nk,
                       uint32_t r, struct buf *k)
{
    buf_reset(k);
    for (size_t i = 0; i < nk; i++) {
        size_t len;
        const char *v;
        if (!kc[i] || (kc[i]->valid && !kc[i]->valid[r])) {
            len = SIZE_MAX; /* no string has this length */
            buf_append(k, (const char *)&len, sizeof(len));
            continue;
        }
        v = strdict_get(b->dict, ((const uint32_t *)kc[i]->data)[r], &len);
        buf_append(k, (const char *)&len, sizeof(len));
        buf_append(k, v, len);
    }
}

#define LATEST_ACROSS_MAX_ROWS 65536 /* beyond it the semi join does the cut */

/* After latest_rows() on every file: keep, per key group, only the rows at the
 * group's largest time over all the files (the keys are compared by their strings:
 * each batch has its own dictionary). True when done: every row is then one of its
 * group's newest, and wrap_latest's semi join would only repeat the cut. Not done
 * (false) when a key column is not a string column somewhere or the files left more
 * than LATEST_ACROSS_MAX_ROWS rows (many groups: a table that size per query). */
static bool latest_across(struct snap *s, const struct query_plan *plan)
{
    struct ent {
        char *key;
        size_t len;
        int64_t t;
    } * tab;
    size_t cap = 64, total = 0, nk = plan->nlatest_keys;
    const struct batch_col *kc[16];
    struct buf k;

    if (nk == 0 || nk > 16)
        return false;
    for (size_t i = 0; i < s->nhot; i++) {
        total += s->hot[i].count;
        for (size_t j = 0; j < nk; j++) {
            const struct batch_col *c = batch_col_ci(s->hot[i].b, plan->latest_keys[j]);
            if (c && c->type != BATCH_STR)
                return false;
        }
    }
    if (total > LATEST_ACROSS_MAX_ROWS)
        return false;
    while (cap < 2 * total)
        cap *= 2;
    tab = xcalloc(cap, sizeof(*tab));
    buf_init(&k, 0);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->nhot; i++) {
            struct hot_seg *g = &s->hot[i];
            uint32_t *out = pass ? xmalloc((g->count ? g->count : 1) * sizeof(*out)) : NULL;
            size_t n = 0;
            for (size_t j = 0; j < nk; j++)
                kc[j] = batch_col_ci(g->b, plan->latest_keys[j]);
            for (size_t j = 0; j < g->count; j++) {
                uint32_t r = SEG_ROW(g, j);
                int64_t t = g->b->time_us[r];
                uint64_t hv = 1469598103934665603ULL;
                size_t slot;
                latest_key(g->b, kc, nk, r, &k);
                for (size_t b = 0; b < k.len; b++)
                    hv = (hv ^ (unsigned char)k.data[b]) * 1099511628211ULL;
                for (slot = (size_t)(hv ^ (hv >> 29)) & (cap - 1); tab[slot].key;
                     slot = (slot + 1) & (cap - 1))
                    if (tab[slot].len == k.len && !memcmp(tab[slot].key, k.data, k.len))
                        break;
                if (!pass) {
                    if (!tab[slot].key) {
                        tab[slot].key = xmalloc(k.len ? k.len : 1);
                        memcpy(tab[slot].key, k.data, k.len);
                        tab[slot].len = k.len;
                        tab[slot].t = t;
                    } else if (t > tab[slot].t) {
                        tab[slot].t = t;
                    }
                } else if (t == tab[slot].t) {
                    out[n++] = r;
                }
            }
            if (pass)
                seg_select(s, g, out, n);
        }
    }
    for (size_t i = 0; i < cap; i++)
        free(tab[i].key);
    free(tab);
    buf_release(&k);
    return true;
}

size_t qe_pin_hot(struct hot *h, struct snap *s, struct catalog_file *files, size_t nfiles,
                  int64_t min_us, int64_t max_us, const struct query_plan *plan,
                  const struct plan_ref *ref, const struct catalog_column *cols, size_t ncols,
                  bool latest, bool skip_cut)
{
    if (!h || nfiles == 0)
        return 0;
    s->hot = xcalloc(nfiles, sizeof(*s->hot));
    /* All or nothing: a relation that unions Parquet with this scan loses DuckDB's
     * late materialization in the Parquet reader (SELECT * with a selective filter
     * over 76 files: 29 ms alone, 52 ms in any UNION ALL, bench/README.md "Session
     * 5"), which costs more than the hot files save. So the files are read from
     * memory only when every one of them is there. */
    for (size_t i = 0; i < nfiles; i++) {
        if (hot_get(h, files[i].path, files[i].rows, &s->hot[s->nhot])) {
            s->nhot++;
            continue;
        }
        while (s->nhot > 0)
            hot_release(h, &s->hot[--s->nhot]);
        return 0;
    }
    for (size_t i = 0; i < nfiles; i++) {
        struct hot_seg *g = &s->hot[i];
        if (latest) /* no WHERE: the whole file, as the memo needs */
            latest_rows(h, s, g, plan);
        else {
            hot_seg_bound(g, min_us, max_us);
            filter_rows(s, g, ref, cols, ncols);
        }
        free(files[i].path);
        files[i].path = NULL;
    }
    s->latest_cut = latest && !skip_cut && latest_across(s, plan);
    return nfiles;
}

static bool same_columns(const struct batch *a, const struct batch *b)
{
    if (a->ncols != b->ncols)
        return false;
    for (size_t i = 0; i < a->ncols; i++)
        if (a->cols[i].type != b->cols[i].type || strcmp(a->cols[i].name, b->cols[i].name) != 0)
            return false;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct duck_seg *x = a, *y = b;

    if (x->b != y->b)
        return (uintptr_t)x->b < (uintptr_t)y->b ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

void qe_add_hot_scans(struct duck *d, struct snap *s, struct buf *view)
{
    struct duck_seg *grp = xcalloc(s->nhot ? s->nhot : 1, sizeof(*grp));
    bool *done = xcalloc(s->nhot ? s->nhot : 1, sizeof(*done));

    for (size_t i = 0; i < s->nhot; i++) {
        size_t n = 0;
        if (done[i] || s->hot[i].count == 0)
            continue;
        for (size_t k = i; k < s->nhot; k++) {
            if (done[k] || s->hot[k].count == 0 || !same_columns(s->hot[i].b, s->hot[k].b))
                continue;
            done[k] = true;
            grp[n].b = s->hot[k].b;
            grp[n].rows = s->hot[k].rows;
            grp[n].start = s->hot[k].start;
            grp[n].count = s->hot[k].count;
            n++;
        }
        qsort(grp, n, sizeof(*grp), seg_cmp); /* a batch's segments adjacent: the scan packs them */
        s->hot_scans = xreallocarray(s->hot_scans, s->nhot_scans + 1, sizeof(*s->hot_scans));
        s->hot_scans[s->nhot_scans] = duck_scan_add_segs(d, grp, n);
        buf_printf(view, " UNION ALL BY NAME SELECT * FROM arc_batch_scan(%" PRIu64 "::UBIGINT)",
                   s->hot_scans[s->nhot_scans]);
        s->nhot_scans++;
    }
    free(grp);
    free(done);
}

void qe_release_hot(struct duck *d, struct hot *h, struct snap *s)
{
    for (size_t k = 0; k < s->nhot_scans; k++)
        duck_scan_remove(d, s->hot_scans[k]);
    free(s->hot_scans);
    for (size_t k = 0; k < s->nhot; k++)
        hot_release(h, &s->hot[k]);
    free(s->hot);
    for (size_t k = 0; k < s->nsel; k++)
        free(s->sel[k]);
    free(s->sel);
}
