/* native_agg.c - the AGG shape of the native executor (native.h): groups keyed by
 * a time bucket and string columns in a hash table (with a small cache in front, as
 * rows in time order repeat a key), aggregates updated a column at a time, then
 * ordered and cut to the LIMIT. */
#include "query/native_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* ---- AGG ------------------------------------------------------------------------------- */

/* time_bucket(width, ts) for a width without months: buckets aligned to the default
 * origin 2000-01-03 00:00:00 (DuckDB's TimeBucketMicros). */
#define NX_BUCKET_ORIGIN_US 946857600000000LL

static inline int64_t bucket_of(int64_t ts, int64_t w)
{
    int64_t origin = NX_BUCKET_ORIGIN_US % w, d = ts - origin, r = (d / w) * w;

    if (d < 0 && d % w != 0)
        r -= w;
    return r + origin;
}

struct aggst {
    union {
        double d;
        int64_t i;
    } v;
    __int128 isum;   /* avg of BIGINT */
    int64_t cnt;     /* values seen (count, avg; min/max/sum: > 0 = has a value) */
};

struct gkey {
    int64_t bucket;
    uint32_t g[NX_MAX_KEYS]; /* 0: NULL, else query-wide string id + 1 */
};

struct agg_run {
    size_t nkeys;            /* string key items */
    size_t key_item[NX_MAX_KEYS];
    size_t bucket_item;      /* SIZE_MAX: none */
    int64_t width;
    size_t naggs;
    size_t agg_item[64];
    struct colref agg_col[64];
    struct colref key_col[NX_MAX_KEYS];
    /* groups */
    struct gkey *keys;
    struct aggst *st;        /* ngroups * naggs */
    size_t ngroups, gcap;
    uint32_t *slot;          /* hash table of group index + 1; 0 empty */
    size_t scap;
    struct strdict *gd;
    struct duck_str *gstr;   /* id -> bytes (borrowed from a batch) */
    size_t ngstr;
};

static inline uint64_t key_hash(const struct agg_run *a, const struct gkey *k)
{
    uint64_t h = nx_mix((uint64_t)k->bucket);
    for (size_t i = 0; i < a->nkeys; i++)
        h = nx_mix(h ^ k->g[i]);
    return h;
}

static inline bool key_eq(const struct agg_run *a, const struct gkey *x, const struct gkey *y)
{
    if (x->bucket != y->bucket)
        return false;
    for (size_t i = 0; i < a->nkeys; i++)
        if (x->g[i] != y->g[i])
            return false;
    return true;
}

static void rehash(struct agg_run *a)
{
    size_t cap = a->scap ? a->scap * 2 : 1024;

    free(a->slot);
    a->slot = xcalloc(cap, sizeof(*a->slot));
    a->scap = cap;
    for (size_t gi = 0; gi < a->ngroups; gi++) {
        size_t p = key_hash(a, &a->keys[gi]) & (cap - 1);
        while (a->slot[p])
            p = (p + 1) & (cap - 1);
        a->slot[p] = (uint32_t)gi + 1;
    }
}

/* The group of k (created empty if new); SIZE_MAX past NX_MAX_GROUPS. */
static size_t group_of(struct agg_run *a, const struct gkey *k)
{
    size_t p;

    if (2 * (a->ngroups + 1) > a->scap)
        rehash(a);
    p = key_hash(a, k) & (a->scap - 1);
    while (a->slot[p]) {
        size_t gi = a->slot[p] - 1;
        if (key_eq(a, &a->keys[gi], k))
            return gi;
        p = (p + 1) & (a->scap - 1);
    }
    if ((a->ngroups + 1) * (a->naggs ? a->naggs : 1) > NX_MAX_STATES)
        return SIZE_MAX;
    if (a->ngroups == a->gcap) {
        a->gcap = a->gcap ? 2 * a->gcap : 256;
        a->keys = xreallocarray(a->keys, a->gcap, sizeof(*a->keys));
        a->st = xreallocarray(a->st, a->gcap * (a->naggs ? a->naggs : 1), sizeof(*a->st));
    }
    a->keys[a->ngroups] = *k;
    memset(&a->st[a->ngroups * a->naggs], 0, a->naggs * sizeof(*a->st));
    a->slot[p] = (uint32_t)a->ngroups + 1;
    return a->ngroups++;
}

/* Add the values of rows[0..n) (group gidx[i] each) of column c to the states
 * st[group * stride] of one aggregate: the kind and type are fixed per loop. */
static void agg_column(enum nx_item_kind k, enum batch_type t, struct aggst *st, size_t stride,
                       const struct batch_col *c, const uint32_t *rows, const uint32_t *gidx,
                       size_t n)
{
    if (k == NX_I_COUNT_STAR) {
        for (size_t i = 0; i < n; i++)
            st[gidx[i] * stride].cnt++;
        return;
    }
    if (!c)
        return; /* all NULL in this batch */
    if (k == NX_I_COUNT) {
        for (size_t i = 0; i < n; i++)
            st[gidx[i] * stride].cnt += present(c, rows[i]);
        return;
    }
#define NX_EACH(body)                                                                              \
    for (size_t i = 0; i < n; i++) {                                                               \
        uint32_t r = rows[i];                                                                      \
        if (i + 16 < n)                                                                            \
            __builtin_prefetch(&v[rows[i + 16]]);                                                  \
        struct aggst *a = &st[gidx[i] * stride];                                                   \
        if (c->valid && !c->valid[r])                                                              \
            continue;                                                                              \
        body;                                                                                      \
        a->cnt++;                                                                                  \
    }
    if (t == BATCH_F64) {
        const double *v = c->data;
        if (k == NX_I_MIN)
            NX_EACH(if (!a->cnt || dcmp(v[r], a->v.d) < 0) a->v.d = v[r])
        else if (k == NX_I_MAX)
            NX_EACH(if (!a->cnt || dcmp(v[r], a->v.d) > 0) a->v.d = v[r])
        else
            NX_EACH(a->v.d = a->cnt ? a->v.d + v[r] : v[r])
    } else {
        const int64_t *v = c->data;
        if (k == NX_I_MIN)
            NX_EACH(if (!a->cnt || v[r] < a->v.i) a->v.i = v[r])
        else if (k == NX_I_MAX)
            NX_EACH(if (!a->cnt || v[r] > a->v.i) a->v.i = v[r])
        else
            NX_EACH(a->isum += v[r])
    }
#undef NX_EACH
}

/* DuckDB's hugeint -> long double (CastBigintToFloating). */
static long double i128_to_ld(__int128 v)
{
    uint64_t lower = (uint64_t)v;
    int64_t upper = (int64_t)(v >> 64);

    if (upper == -1)
        return -(long double)(UINT64_MAX - lower) - 1;
    return (long double)lower + (long double)upper * ((long double)UINT64_MAX + 1);
}

static int cmp_groups(const struct agg_run *a, const struct nx_shape *s, size_t x, size_t y)
{
    for (size_t i = 0; i < s->norders; i++) {
        size_t it = s->orders[i].item;
        int c = 0;
        if (it == a->bucket_item) {
            int64_t p = a->keys[x].bucket, q = a->keys[y].bucket;
            c = p < q ? -1 : p > q;
        } else {
            size_t k = 0;
            uint32_t p, q;
            while (a->key_item[k] != it)
                k++;
            p = a->keys[x].g[k];
            q = a->keys[y].g[k];
            if (!p || !q) {
                if (p != q)
                    return p ? -1 : 1; /* NULL last, either direction */
                continue;
            }
            c = nx_cmp_bytes(a->gstr[p - 1].p, a->gstr[p - 1].len, a->gstr[q - 1].p,
                          a->gstr[q - 1].len);
        }
        if (c)
            return s->orders[i].desc ? -c : c;
    }
    return 0;
}

struct gsort {
    const struct agg_run *a;
    const struct nx_shape *s;
};

static int cmp_gidx(const void *p, const void *q, void *ctx)
{
    const struct gsort *g = ctx;
    return cmp_groups(g->a, g->s, *(const size_t *)p, *(const size_t *)q);
}

static bool agg_types(const struct nx *x, struct agg_run *a)
{
    const struct nx_shape *s = x->s;

    if (x->rec->ncols != s->nitems)
        return false;
    a->bucket_item = SIZE_MAX;
    for (size_t i = 0; i < s->nitems; i++) {
        const struct nx_item *it = &s->items[i];
        enum duck_type t;
        struct colref cr = {0};
        if (it->col && !nx_bind_col(x->in, it->col, &cr))
            return false;
        switch (it->k) {
        case NX_I_BUCKET:
            if (a->bucket_item != SIZE_MAX)
                return false;
            a->bucket_item = i;
            a->width = it->width_us;
            t = DUCK_T_TIMESTAMP;
            break;
        case NX_I_COL:
            if (!cr.name || cr.type != BATCH_STR || a->nkeys == NX_MAX_KEYS)
                return false;
            a->key_item[a->nkeys] = i;
            a->key_col[a->nkeys++] = cr;
            t = DUCK_T_VARCHAR;
            break;
        case NX_I_MIN:
        case NX_I_MAX:
        case NX_I_AVG:
        case NX_I_SUM:
            if (!cr.name || (cr.type != BATCH_F64 && cr.type != BATCH_I64) ||
                (it->k == NX_I_SUM && cr.type != BATCH_F64))
                return false;
            t = (it->k == NX_I_MIN || it->k == NX_I_MAX) ? nx_duck_of(cr.type) : DUCK_T_F64;
            goto agg;
        case NX_I_COUNT:
            if (!cr.name)
                return false; /* count(time): leave it */
            t = DUCK_T_I64;
            goto agg;
        case NX_I_COUNT_STAR:
            t = DUCK_T_I64;
        agg:
            if (a->naggs == 64)
                return false;
            a->agg_item[a->naggs] = i;
            a->agg_col[a->naggs++] = cr;
            break;
        default:
            return false;
        }
        if (t != x->rec->types[i])
            return false;
    }
    /* an alias that names a real column binds differently in GROUP/ORDER BY */
    for (size_t i = 0; i < s->nitems; i++) {
        struct colref cr;
        if (s->aliases[i] && s->items[i].k == NX_I_BUCKET && nx_bind_col(x->in, s->aliases[i], &cr))
            return false;
    }
    return true;
}

static void agg_free(struct agg_run *a)
{
    free(a->keys);
    free(a->st);
    free(a->slot);
    free(a->gstr);
    strdict_free(a->gd);
}

/* A small direct-mapped cache in front of group_of, indexed by the string keys
 * only: rows in time order repeat a key's bucket for a while. */
#define NX_GCACHE 1024

struct gcache {
    struct gkey k;
    uint32_t gi; /* group + 1; 0 empty */
};

static bool agg_src(struct agg_run *a, const struct nx *x, const struct src *sr,
                    struct gcache *gc, uint32_t *gidx)
{
    const struct batch_col *kc[NX_MAX_KEYS], *ac[64];
    uint32_t *remap[NX_MAX_KEYS] = {0};
    size_t ndict = sr->b->dict ? strdict_count(sr->b->dict) : 0;
    int64_t blo = 1, bhi = 0; /* the current bucket [blo, bhi) */
    struct gkey k;
    bool ok = true;

    memset(&k, 0, sizeof(k));
    for (size_t i = 0; i < a->nkeys && ok; i++) {
        ok = nx_src_col(sr->b, &a->key_col[i], &kc[i]);
        if (ok && kc[i]) {
            remap[i] = xmalloc((ndict ? ndict : 1) * sizeof(uint32_t));
            memset(remap[i], 0, (ndict ? ndict : 1) * sizeof(uint32_t));
        }
    }
    for (size_t i = 0; i < a->naggs && ok; i++)
        if (a->agg_col[i].name)
            ok = nx_src_col(sr->b, &a->agg_col[i], &ac[i]);
        else
            ac[i] = NULL;
    for (size_t n = 0; ok && n < sr->nsel; n++) {
        uint32_t r = sr->sel[n], ci = 0;
        size_t gi;
        if (a->bucket_item != SIZE_MAX) {
            int64_t t = sr->b->time_us[r];
            if (t < blo || t >= bhi) {
                blo = bucket_of(t, a->width);
                bhi = blo + a->width;
            }
            k.bucket = blo;
        }
        for (size_t i = 0; i < a->nkeys; i++) {
            uint32_t id;
            if (!present(kc[i], r)) {
                k.g[i] = 0;
                continue;
            }
            id = ((const uint32_t *)kc[i]->data)[r];
            if (!remap[i][id]) {
                size_t len;
                const char *s = strdict_get(sr->b->dict, id, &len);
                uint32_t g = strdict_intern(a->gd, s, len);
                if (g >= a->ngstr) {
                    a->gstr = xreallocarray(a->gstr, g + 1, sizeof(*a->gstr));
                    a->ngstr = g + 1;
                    a->gstr[g] = (struct duck_str){s, len};
                }
                remap[i][id] = g + 1;
            }
            k.g[i] = remap[i][id];
            ci = ci * 31 + k.g[i];
        }
        ci &= NX_GCACHE - 1;
        if (gc[ci].gi && key_eq(a, &gc[ci].k, &k)) {
            gidx[n] = gc[ci].gi - 1;
            continue;
        }
        gi = group_of(a, &k);
        if (gi == SIZE_MAX) {
            ok = false;
            break;
        }
        gc[ci].k = k;
        gc[ci].gi = (uint32_t)gi + 1;
        gidx[n] = (uint32_t)gi;
    }
    for (size_t i = 0; ok && i < a->naggs; i++)
        agg_column(x->s->items[a->agg_item[i]].k, a->agg_col[i].type, a->st + i, a->naggs, ac[i],
                   sr->sel, gidx, sr->nsel);
    for (size_t i = 0; i < a->nkeys; i++)
        free(remap[i]);
    return ok;
}

/* `GROUP BY <bucket> ORDER BY <bucket> [DESC] LIMIT n` with no other key: only the n
 * newest (oldest) buckets that hold rows are answered. When every bucket of the n
 * widths next to the newest (oldest) row holds a selected row, those are the answer:
 * drop the other rows before aggregating (a 5-minute LIMIT over a day of rows then
 * aggregates 5 minutes). With a gap, every row is aggregated as usual. */
#define NX_TOP_BUCKETS_MAX 4096

static void top_buckets(struct agg_run *a, const struct nx *x)
{
    const struct nx_shape *s = x->s;
    bool desc, *seen;
    int64_t edge = 0, lo, hi, w = a->width;
    size_t n, have = 0;
    bool any = false;

    if (a->nkeys || a->bucket_item == SIZE_MAX || !s->has_limit || !s->norders ||
        s->orders[0].item != a->bucket_item || s->limit == 0 || s->limit > NX_TOP_BUCKETS_MAX)
        return;
    n = (size_t)s->limit;
    desc = s->orders[0].desc;
    for (size_t i = 0; i < x->nsrcs; i++) {
        int64_t t = desc ? x->srcs[i].tmax : x->srcs[i].tmin;
        if (!x->srcs[i].nsel)
            continue;
        if (!any || (desc ? t > edge : t < edge))
            edge = t;
        any = true;
    }
    if (!any)
        return;
    edge = bucket_of(edge, w);
    if ((int64_t)n > INT64_MAX / 4 / w)
        return; /* n widths overflow µs */
    if (desc) {
        if (edge < INT64_MIN / 2 + (int64_t)(n - 1) * w)
            return;
        lo = edge - (int64_t)(n - 1) * w;
        hi = edge + w - 1;
    } else {
        if (edge > INT64_MAX / 2 - (int64_t)n * w)
            return;
        lo = edge;
        hi = edge + (int64_t)n * w - 1;
    }
    /* each source's rows in [lo, hi]: a binary search when they are in time order */
    seen = xcalloc(n, sizeof(*seen));
    for (size_t i = 0; i < x->nsrcs; i++) {
        struct src *sr = &x->srcs[i];
        size_t from = 0, to = sr->nsel;
        if (!sr->nsel || sr->tmax < lo || sr->tmin > hi) {
            sr->from = sr->to = 0;
            continue;
        }
        if (sr->sorted) {
            size_t l = 0, r = sr->nsel;
            while (l < r) { /* first row with t >= lo */
                size_t m = l + (r - l) / 2;
                if (sr->b->time_us[sr->sel[m]] < lo)
                    l = m + 1;
                else
                    r = m;
            }
            from = l;
            for (r = sr->nsel; l < r;) { /* first row with t > hi */
                size_t m = l + (r - l) / 2;
                if (sr->b->time_us[sr->sel[m]] <= hi)
                    l = m + 1;
                else
                    r = m;
            }
            to = l;
        }
        sr->from = from;
        sr->to = to;
        for (size_t k = from; k < to; k++) {
            int64_t t = sr->b->time_us[sr->sel[k]];
            if (t >= lo && t <= hi) {
                size_t b = (size_t)((t - lo) / w);
                have += !seen[b];
                seen[b] = true;
            }
        }
    }
    free(seen);
    if (have < n)
        return; /* a gap: the answer reaches further */
    for (size_t i = 0; i < x->nsrcs; i++) {
        struct src *sr = &x->srcs[i];
        size_t m = 0;
        for (size_t k = sr->from; k < sr->to; k++) {
            int64_t t = sr->b->time_us[sr->sel[k]];
            if (t >= lo && t <= hi)
                sr->sel[m++] = sr->sel[k];
        }
        sr->nsel = m;
    }
}

bool nx_run_agg(const struct nx *x, struct duck_result **out)
{
    const struct nx_shape *s = x->s;
    struct agg_run a;
    struct outcol *oc;
    size_t *order, n;
    bool ok;

    memset(&a, 0, sizeof(a));
    a.gd = strdict_new();
    ok = agg_types(x, &a);
    if (ok)
        top_buckets(&a, x);
    {
        struct gcache *gc = xcalloc(NX_GCACHE, sizeof(*gc));
        size_t most = 1;
        uint32_t *gidx;
        for (size_t i = 0; i < x->nsrcs; i++)
            most = x->srcs[i].nsel > most ? x->srcs[i].nsel : most;
        gidx = xmalloc(most * sizeof(*gidx));
        for (size_t i = 0; ok && i < x->nsrcs; i++)
            ok = agg_src(&a, x, &x->srcs[i], gc, gidx);
        free(gidx);
        free(gc);
    }
    /* no GROUP BY key at all (a global aggregate) answers one row even over nothing */
    if (ok && a.nkeys == 0 && a.bucket_item == SIZE_MAX && a.ngroups == 0) {
        struct gkey k0;
        memset(&k0, 0, sizeof(k0));
        ok = group_of(&a, &k0) != SIZE_MAX;
    }
    if (!ok) {
        agg_free(&a);
        return false;
    }
    n = a.ngroups;
    order = xmalloc((n ? n : 1) * sizeof(*order));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (s->norders) {
        struct gsort g = {&a, s};
        qsort_r(order, n, sizeof(*order), cmp_gidx, &g);
    }
    if (s->has_limit && n > s->limit)
        n = (size_t)s->limit;
    oc = xcalloc(s->nitems, sizeof(*oc));
    for (size_t i = 0; i < s->nitems; i++)
        nx_out_init(&oc[i], x->rec->names[i], x->rec->types[i], n);
    for (size_t row = 0; row < n; row++) {
        size_t gi = order[row];
        const struct aggst *st = &a.st[gi * a.naggs];
        if (a.bucket_item != SIZE_MAX)
            ((int64_t *)oc[a.bucket_item].nc.data)[row] = a.keys[gi].bucket;
        for (size_t k = 0; k < a.nkeys; k++) {
            uint32_t g = a.keys[gi].g[k];
            if (!g)
                nx_out_null(&oc[a.key_item[k]], row);
            else
                ((struct duck_str *)oc[a.key_item[k]].nc.data)[row] = a.gstr[g - 1];
        }
        for (size_t k = 0; k < a.naggs; k++) {
            struct outcol *o = &oc[a.agg_item[k]];
            enum nx_item_kind kind = s->items[a.agg_item[k]].k;
            if (kind == NX_I_COUNT || kind == NX_I_COUNT_STAR) {
                ((int64_t *)o->nc.data)[row] = st[k].cnt;
            } else if (!st[k].cnt) {
                nx_out_null(o, row);
            } else if (kind == NX_I_AVG && a.agg_col[k].type == BATCH_I64) {
                ((double *)o->nc.data)[row] =
                    (double)(i128_to_ld(st[k].isum) / (long double)st[k].cnt);
            } else if (kind == NX_I_AVG) {
                ((double *)o->nc.data)[row] = st[k].v.d / (double)st[k].cnt;
            } else {
                memcpy((char *)o->nc.data + row * 8, &st[k].v, 8);
            }
        }
    }
    nx_finish(oc, s->nitems, n, out);
    free(oc);
    free(order);
    agg_free(&a);
    return true;
}

