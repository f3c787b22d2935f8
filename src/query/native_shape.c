/* native_shape.c - recognise the statement shapes the native executor answers
 * (native.h) in DuckDB's parse tree. Anything not recognised exactly is left to
 * DuckDB: a shape is returned only when every clause of the SELECT node was
 * understood. */
#include "query/native.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "query/rewrite_int.h"

#define NX_MAX_ITEMS 64
#define NX_MAX_PREDS 32

static bool is(const struct jv *o, const char *key, const char *val)
{
    const char *s = jstr(o, key);
    return s && !strcmp(s, val);
}

static bool raw_is(const struct jv *o, const char *key, const char *val)
{
    const struct jv *v = jget(o, key);
    return v && v->t == J_RAW && !strcmp(v->s, val);
}

/* A constant's value object and its type id, or NULL. */
static const struct jv *constant(const struct jv *e, const char **type_id)
{
    const struct jv *v, *t;

    if (!e || e->t != J_OBJ || !is(e, "class", "CONSTANT"))
        return NULL;
    v = jget(e, "value");
    t = v ? jget(v, "type") : NULL;
    if (!v || !t || !jstr(t, "id") || !raw_is(v, "is_null", "false"))
        return NULL;
    *type_id = jstr(t, "id");
    return v;
}

/* A VARCHAR constant (optionally CAST to cast_to), or NULL. */
static const struct jv *str_constant(const struct jv *e, const char *cast_to)
{
    const char *tid;
    const struct jv *v;

    if (cast_to && e && e->t == J_OBJ && is(e, "class", "CAST")) {
        const struct jv *ct = jget(e, "cast_type");
        if (!ct || !is(ct, "id", cast_to) || !raw_is(e, "try_cast", "false"))
            return NULL;
        e = jget(e, "child");
    }
    v = constant(e, &tid);
    if (!v || strcmp(tid, "VARCHAR"))
        return NULL;
    v = jget(v, "value");
    return v && v->t == J_STR ? v : NULL;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s)
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

/* ---- literals ---------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* 'YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,6}]]][Z]' as DuckDB casts it to TIMESTAMP (UTC);
 * any other spelling (offsets, names, more digits) is left to DuckDB. */
static bool parse_timestamp(const char *s, size_t n, int64_t *out)
{
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, fd = 0;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 10;

    if (n > 0 && s[n - 1] == 'Z')
        n--;
    if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    if (n > 10) {
        if ((s[10] != ' ' && s[10] != 'T') || n < 16 || !digits(s + 11, 2, &h) || s[13] != ':' ||
            !digits(s + 14, 2, &mi))
            return false;
        i = 16;
        if (n > 16) {
            if (n < 19 || s[16] != ':' || !digits(s + 17, 2, &sec))
                return false;
            i = 19;
            if (n > 19) {
                if (s[19] != '.' || n - 20 < 1 || n - 20 > 6 || !digits(s + 20, n - 20, &frac))
                    return false;
                for (fd = (unsigned)(n - 20); fd < 6; fd++)
                    frac *= 10;
                i = n;
            }
        }
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 59)
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    *out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000000) + frac;
    return true;
}

/* '<n> <unit>' with unit second(s), minute(s), hour(s) or day(s): the widths whose
 * time_bucket is a fixed number of µs. */
static bool parse_width(const char *s, int64_t *out)
{
    static const struct {
        const char *name;
        int64_t us;
    } units[] = {{"second", 1000000},      {"seconds", 1000000},     {"minute", 60000000},
                 {"minutes", 60000000},    {"hour", 3600000000LL},   {"hours", 3600000000LL},
                 {"day", 86400000000LL},   {"days", 86400000000LL}};
    char *end;
    long long n;

    if (!s || *s < '1' || *s > '9')
        return false;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || *end != ' ' || n <= 0 || n > 100000)
        return false;
    end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcmp(end, units[i].name)) {
            *out = n * units[i].us;
            return true;
        }
    return false;
}

/* ---- select items ------------------------------------------------------------------- */

static bool plain_function(const struct jv *e, const char *name, size_t nargs)
{
    const struct jv *kids = jget(e, "children"), *ob = jget(e, "order_bys");

    return is(e, "class", "FUNCTION") && is(e, "function_name", name) && is(e, "schema", "") &&
           (!jget(e, "catalog") || is(e, "catalog", "")) && raw_is(e, "distinct", "false") &&
           raw_is(e, "is_operator", "false") && rw_null_or_empty(jget(e, "filter")) &&
           (!ob || rw_null_or_empty(jget(ob, "orders"))) &&
           (!jget(e, "export_state") || raw_is(e, "export_state", "false")) && kids &&
           kids->t == J_ARR && kids->n == nargs;
}

static bool bucket_width(const struct jv *e, int64_t *width)
{
    const struct jv *lit;

    if (!plain_function(e, "time_bucket", 2))
        return false;
    lit = str_constant(jget(e, "children")->kids[0], "INTERVAL");
    if (!lit || !is(jget(e, "children")->kids[0], "class", "CAST"))
        return false;
    if (!rw_plain_column(jget(e, "children")->kids[1]) ||
        strcasecmp(rw_plain_column(jget(e, "children")->kids[1]), "time"))
        return false;
    return parse_width(lit->s, width);
}

static bool parse_item(const struct jv *e, struct nx_item *it)
{
    static const struct {
        const char *fn;
        enum nx_item_kind k;
    } aggs[] = {{"min", NX_I_MIN},     {"max", NX_I_MAX},     {"avg", NX_I_AVG},
                {"sum", NX_I_SUM},     {"count", NX_I_COUNT}};
    const char *c = rw_plain_column(e);

    memset(it, 0, sizeof(*it));
    if (c) {
        it->k = NX_I_COL;
        it->col = xstrdup(c);
        return true;
    }
    if (is(e, "class", "STAR")) {
        if (!rw_null_or_empty(jget(e, "exclude_list")) || !rw_null_or_empty(jget(e, "replace_list")) ||
            !rw_null_or_empty(jget(e, "expr")) ||
            !rw_null_or_empty(jget(e, "qualified_exclude_list")) ||
            !rw_null_or_empty(jget(e, "rename_list")) || !is(e, "relation_name", "") ||
            (jget(e, "columns") && !raw_is(e, "columns", "false")))
            return false;
        it->k = NX_I_STAR;
        return true;
    }
    if (bucket_width(e, &it->width_us)) {
        it->k = NX_I_BUCKET;
        return true;
    }
    if (plain_function(e, "count_star", 0)) {
        it->k = NX_I_COUNT_STAR;
        return true;
    }
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        if (plain_function(e, aggs[i].fn, 1) && rw_plain_column(jget(e, "children")->kids[0])) {
            it->k = aggs[i].k;
            it->col = xstrdup(rw_plain_column(jget(e, "children")->kids[0]));
            return true;
        }
    }
    return false;
}

static bool is_agg(enum nx_item_kind k)
{
    return k >= NX_I_MIN;
}

/* ---- WHERE -------------------------------------------------------------------------- */

static enum nx_op flip(enum nx_op op)
{
    switch (op) {
    case NX_LT: return NX_GT;
    case NX_LE: return NX_GE;
    case NX_GT: return NX_LT;
    case NX_GE: return NX_LE;
    default: return op;
    }
}

static bool cmp_op(const char *type, enum nx_op *op)
{
    if (!type)
        return false;
    if (!strcmp(type, "COMPARE_EQUAL"))
        *op = NX_EQ;
    else if (!strcmp(type, "COMPARE_LESSTHAN"))
        *op = NX_LT;
    else if (!strcmp(type, "COMPARE_LESSTHANOREQUALTO"))
        *op = NX_LE;
    else if (!strcmp(type, "COMPARE_GREATERTHAN"))
        *op = NX_GT;
    else if (!strcmp(type, "COMPARE_GREATERTHANOREQUALTO"))
        *op = NX_GE;
    else
        return false;
    return true;
}

static bool num_literal(const struct jv *e, struct nx_pred *p)
{
    const char *tid;
    const struct jv *v = constant(e, &tid), *num = v ? jget(v, "value") : NULL;

    if (!num || num->t != J_RAW)
        return false;
    if (!strcmp(tid, "INTEGER") || !strcmp(tid, "BIGINT") || !strcmp(tid, "SMALLINT") ||
        !strcmp(tid, "TINYINT")) {
        p->lk = NX_L_INT;
        return parse_i64(num->s, &p->iv);
    }
    if (!strcmp(tid, "DECIMAL")) {
        const struct jv *ti = jget(jget(v, "type"), "type_info"), *sc, *wd;
        int64_t scale, width;
        sc = ti ? jget(ti, "scale") : NULL;
        wd = ti ? jget(ti, "width") : NULL;
        if (!sc || !wd || sc->t != J_RAW || wd->t != J_RAW || !parse_i64(sc->s, &scale) ||
            !parse_i64(wd->s, &width) || width > 18 || scale < 0 || scale > 18)
            return false;
        p->lk = NX_L_DEC;
        p->scale = (int)scale;
        return parse_i64(num->s, &p->iv);
    }
    if (!strcmp(tid, "DOUBLE")) {
        char *end;
        errno = 0;
        p->dv = strtod(num->s, &end);
        p->lk = NX_L_DBL;
        return !*end && !errno && isfinite(p->dv);
    }
    return false;
}

static void pred_free(struct nx_pred *p)
{
    free(p->col);
    for (size_t i = 0; i < p->nvals; i++)
        free(p->vals[i]);
    free(p->vals);
    free(p->lens);
}

static void str_push(struct nx_pred *p, const struct jv *s)
{
    p->vals = xreallocarray(p->vals, p->nvals + 1, sizeof(*p->vals));
    p->lens = xreallocarray(p->lens, p->nvals + 1, sizeof(*p->lens));
    p->vals[p->nvals] = xmalloc(s->slen + 1);
    memcpy(p->vals[p->nvals], s->s, s->slen + 1);
    p->lens[p->nvals] = s->slen;
    p->nvals++;
}

static bool parse_conjunct(const struct jv *e, struct nx_pred *p)
{
    const struct jv *l, *r;
    const char *c;
    enum nx_op op;

    memset(p, 0, sizeof(*p));
    if (is(e, "class", "OPERATOR") && is(e, "type", "COMPARE_IN")) {
        const struct jv *kids = jget(e, "children");
        if (!kids || kids->t != J_ARR || kids->n < 2 || !(c = rw_plain_column(kids->kids[0])) ||
            !strcasecmp(c, "time"))
            return false;
        p->k = NX_P_STR;
        p->col = xstrdup(c);
        for (size_t i = 1; i < kids->n; i++) {
            const struct jv *s = str_constant(kids->kids[i], NULL);
            if (!s)
                return false;
            str_push(p, s);
        }
        return true;
    }
    if (!is(e, "class", "COMPARISON") || !cmp_op(jstr(e, "type"), &op))
        return false;
    l = jget(e, "left");
    r = jget(e, "right");
    if (!rw_plain_column(l)) {
        const struct jv *t = l;
        l = r;
        r = t;
        op = flip(op);
    }
    if (!(c = rw_plain_column(l)))
        return false;
    p->op = op;
    if (!strcasecmp(c, "time")) {
        const struct jv *s = str_constant(r, "TIMESTAMP");
        p->k = NX_P_TIME;
        return s && parse_timestamp(s->s, s->slen, &p->t_us);
    }
    p->col = xstrdup(c);
    {
        const struct jv *s = str_constant(r, NULL);
        if (s) {
            p->k = NX_P_STR;
            str_push(p, s);
            return op == NX_EQ;
        }
    }
    p->k = NX_P_NUM;
    return num_literal(r, p);
}

static bool parse_where(const struct jv *w, struct nx_shape *s)
{
    if (rw_null_or_empty(w))
        return true;
    if (is(w, "class", "CONJUNCTION") && is(w, "type", "CONJUNCTION_AND")) {
        const struct jv *kids = jget(w, "children");
        if (!kids || kids->t != J_ARR)
            return false;
        for (size_t i = 0; i < kids->n; i++)
            if (!parse_where(kids->kids[i], s))
                return false;
        return true;
    }
    if (s->npreds >= NX_MAX_PREDS)
        return false;
    s->preds = xreallocarray(s->preds, s->npreds + 1, sizeof(*s->preds));
    if (!parse_conjunct(w, &s->preds[s->npreds])) {
        pred_free(&s->preds[s->npreds]);
        return false;
    }
    s->npreds++;
    return true;
}

/* ---- GROUP BY / ORDER BY ------------------------------------------------------------- */

/* The item a GROUP BY or ORDER BY term names: an ordinal, an alias (order_by:
 * DuckDB binds ORDER BY names to aliases first), a column item, or the same
 * time_bucket call. SIZE_MAX: none. */
static size_t term_item(const struct nx_shape *s, const struct jv *e, bool order_by)
{
    const char *tid, *c = rw_plain_column(e);
    const struct jv *v = constant(e, &tid);
    int64_t k, w;

    if (v && !strcmp(tid, "INTEGER") && jget(v, "value") && jget(v, "value")->t == J_RAW &&
        parse_i64(jget(v, "value")->s, &k))
        return k >= 1 && (uint64_t)k <= s->nitems ? (size_t)k - 1 : SIZE_MAX;
    if (c) {
        if (order_by)
            for (size_t i = 0; i < s->nitems; i++)
                if (s->aliases[i] && !strcasecmp(s->aliases[i], c))
                    return i;
        for (size_t i = 0; i < s->nitems; i++)
            if (s->items[i].k == NX_I_COL && !strcasecmp(s->items[i].col, c) &&
                (!s->aliases[i] || !strcasecmp(s->aliases[i], c)))
                return i;
        if (!order_by)
            for (size_t i = 0; i < s->nitems; i++)
                if (s->aliases[i] && !strcasecmp(s->aliases[i], c) && s->items[i].k == NX_I_BUCKET)
                    return i;
        return SIZE_MAX;
    }
    if (bucket_width(e, &w))
        for (size_t i = 0; i < s->nitems; i++)
            if (s->items[i].k == NX_I_BUCKET && s->items[i].width_us == w)
                return i;
    return SIZE_MAX;
}

static bool parse_groups(const struct jv *node, struct nx_shape *s)
{
    const struct jv *g = jget(node, "group_expressions"), *sets = jget(node, "group_sets");
    bool covered[NX_MAX_ITEMS] = {0};

    if (!g || g->t != J_ARR || g->n == 0 || !sets || sets->t != J_ARR || sets->n != 1 ||
        sets->kids[0]->t != J_ARR || sets->kids[0]->n != g->n)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        int64_t k;
        const struct jv *x = sets->kids[0]->kids[i];
        size_t it;
        if (x->t != J_RAW || !parse_i64(x->s, &k) || k != (int64_t)i)
            return false;
        it = term_item(s, g->kids[i], false);
        if (it == SIZE_MAX || is_agg(s->items[it].k))
            return false;
        covered[it] = true;
    }
    for (size_t i = 0; i < s->nitems; i++)
        if (!is_agg(s->items[i].k) && !covered[i])
            return false;
    return true;
}

static bool parse_orders(const struct jv *mod, struct nx_shape *s)
{
    const struct jv *orders = jget(mod, "orders");

    if (!orders || orders->t != J_ARR || orders->n == 0 || orders->n > NX_MAX_ITEMS)
        return false;
    s->orders = xcalloc(orders->n, sizeof(*s->orders));
    for (size_t i = 0; i < orders->n; i++) {
        const struct jv *o = orders->kids[i], *e = jget(o, "expression");
        const char *t = jstr(o, "type"), *no = jstr(o, "null_order");
        struct nx_order *x = &s->orders[s->norders];

        if (!t || !no || (strcmp(no, "ORDER_DEFAULT") && strcmp(no, "NULLS_LAST")))
            return false;
        x->desc = !strcmp(t, "DESCENDING");
        if (!x->desc && strcmp(t, "ASCENDING") && strcmp(t, "ORDER_DEFAULT"))
            return false;
        if (s->kind == NX_RAW) {
            const char *c = rw_plain_column(e);
            if (!c || strcasecmp(c, "time") || i > 0)
                return false;
            for (size_t k = 0; k < s->nitems; k++)
                if (s->aliases[k] && !strcasecmp(s->aliases[k], "time"))
                    return false; /* an alias named time: ORDER BY binds to it */
            x->item = SIZE_MAX;
        } else {
            x->item = term_item(s, e, true);
            if (x->item == SIZE_MAX || is_agg(s->items[x->item].k))
                return false;
        }
        s->norders++;
    }
    return true;
}

static bool parse_limit(const struct jv *mod, struct nx_shape *s)
{
    const char *tid;
    const struct jv *v = constant(jget(mod, "limit"), &tid);
    int64_t n;

    if (!rw_null_or_empty(jget(mod, "offset")) || !v || !jget(v, "value") ||
        jget(v, "value")->t != J_RAW || !parse_i64(jget(v, "value")->s, &n) || n < 0 ||
        (strcmp(tid, "INTEGER") && strcmp(tid, "BIGINT")))
        return false;
    s->has_limit = true;
    s->limit = (uint64_t)n;
    return true;
}

/* LATEST: DISTINCT ON (k) ... ORDER BY k [ASC], time DESC, no WHERE. */
static bool parse_latest(const struct jv *distinct, const struct jv *order, struct nx_shape *s)
{
    const struct jv *keys = jget(distinct, "distinct_on_targets");
    const struct jv *orders = order ? jget(order, "orders") : NULL;
    const char *k, *o0, *o1, *t0;

    if (!keys || keys->t != J_ARR || keys->n != 1 || !(k = rw_plain_column(keys->kids[0])) ||
        !strcasecmp(k, "time") || !orders || orders->t != J_ARR || orders->n != 2 || s->npreds)
        return false;
    o0 = rw_plain_column(jget(orders->kids[0], "expression"));
    o1 = rw_plain_column(jget(orders->kids[1], "expression"));
    t0 = jstr(orders->kids[0], "type");
    if (!o0 || !o1 || strcasecmp(o0, k) || strcasecmp(o1, "time") || !t0 ||
        (strcmp(t0, "ORDER_DEFAULT") && strcmp(t0, "ASCENDING")) ||
        !is(orders->kids[1], "type", "DESCENDING"))
        return false;
    for (size_t i = 0; i < 2; i++) {
        const char *no = jstr(orders->kids[i], "null_order");
        if (!no || (strcmp(no, "ORDER_DEFAULT") && strcmp(no, "NULLS_LAST")))
            return false;
    }
    for (size_t i = 0; i < s->nitems; i++)
        if (s->aliases[i] && (!strcasecmp(s->aliases[i], k) || !strcasecmp(s->aliases[i], "time")))
            return false;
    s->latest_key = xstrdup(k);
    return true;
}

struct nx_shape *nx_shape_from_node(const struct jv *node)
{
    const struct jv *sel, *from, *mods, *ctes, *map, *distinct = NULL, *order = NULL;
    const struct jv *limit = NULL;
    struct nx_shape *s;
    bool any_agg = false;

    if (!node || node->t != J_OBJ || !is(node, "type", "SELECT_NODE"))
        return NULL;
    ctes = jget(node, "cte_map");
    map = ctes ? jget(ctes, "map") : NULL;
    from = jget(node, "from_table");
    sel = jget(node, "select_list");
    mods = jget(node, "modifiers");
    if ((map && !rw_null_or_empty(map)) || !from || !is(from, "type", "BASE_TABLE") ||
        !rw_null_or_empty(jget(from, "sample")) || !rw_null_or_empty(jget(from, "at_clause")) ||
        !rw_null_or_empty(jget(from, "column_name_alias")) ||
        !rw_null_or_empty(jget(node, "having")) || !rw_null_or_empty(jget(node, "qualify")) ||
        !rw_null_or_empty(jget(node, "sample")) ||
        !is(node, "aggregate_handling", "STANDARD_HANDLING") || !sel || sel->t != J_ARR ||
        sel->n == 0 || sel->n > NX_MAX_ITEMS || !mods || mods->t != J_ARR)
        return NULL;
    for (size_t i = 0; i < mods->n; i++) {
        const char *t = jstr(mods->kids[i], "type");
        if (t && !strcmp(t, "DISTINCT_MODIFIER") && !distinct)
            distinct = mods->kids[i];
        else if (t && !strcmp(t, "ORDER_MODIFIER") && !order)
            order = mods->kids[i];
        else if (t && !strcmp(t, "LIMIT_MODIFIER") && !limit)
            limit = mods->kids[i];
        else
            return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    s->items = xcalloc(sel->n, sizeof(*s->items));
    s->aliases = xcalloc(sel->n, sizeof(*s->aliases));
    for (size_t i = 0; i < sel->n; i++) {
        const char *a = jstr(sel->kids[i], "alias");
        s->nitems++;
        if (!parse_item(sel->kids[i], &s->items[i]))
            goto no;
        if (a && *a)
            s->aliases[i] = xstrdup(a);
        any_agg |= is_agg(s->items[i].k);
    }
    if (!parse_where(jget(node, "where_clause"), s))
        goto no;
    if (any_agg || !rw_null_or_empty(jget(node, "group_expressions"))) {
        s->kind = NX_AGG;
        if (distinct)
            goto no;
        if (rw_null_or_empty(jget(node, "group_expressions"))) {
            /* a global aggregate: nothing but aggregates */
            if (!rw_null_or_empty(jget(node, "group_sets")))
                goto no;
            for (size_t i = 0; i < s->nitems; i++)
                if (!is_agg(s->items[i].k))
                    goto no;
        } else if (!parse_groups(node, s))
            goto no;
        for (size_t i = 0; i < s->nitems; i++)
            if (s->items[i].k == NX_I_STAR)
                goto no;
    } else {
        s->kind = distinct ? NX_LATEST : NX_RAW;
        for (size_t i = 0; i < s->nitems; i++)
            if (s->items[i].k != NX_I_COL && s->items[i].k != NX_I_STAR)
                goto no;
        if (distinct && !parse_latest(distinct, order, s))
            goto no;
    }
    if (order && s->kind != NX_LATEST && !parse_orders(order, s))
        goto no;
    if (limit && !parse_limit(limit, s))
        goto no;
    return s;
no:
    nx_shape_free(s);
    return NULL;
}

void nx_shape_free(struct nx_shape *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nitems; i++) {
        free(s->items[i].col);
        free(s->aliases[i]);
    }
    free(s->items);
    free(s->aliases);
    for (size_t i = 0; i < s->npreds; i++)
        pred_free(&s->preds[i]);
    free(s->preds);
    free(s->orders);
    free(s->latest_key);
    free(s);
}
