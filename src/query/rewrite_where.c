/* rewrite_where.c - what a WHERE clause says of a reference's rows.
 *
 * For a measurement reference, the top-level AND conjuncts of the WHERE of the
 * SELECT node whose FROM holds it give (rewrite.c header, docs/query.md):
 * - time bounds: `time <op> expr`, `expr <op> time`, `time BETWEEN a AND b`, with expr
 *   free of columns and subqueries, kept as a tiny serialized SELECT that the engine
 *   evaluates in DuckDB (file pruning, and the hot tier's row range);
 * - tag sets: `col = 'v'` / `col IN ('v1', ...)` with non-NULL string literals;
 * - numeric comparisons: `col <op> number` with finite numeric literals.
 * The column must be unqualified with a single FROM item, or qualified by the
 * reference's alias. The engine applies the last two only to rows held in memory
 * (engine_hot.c), and only for columns the measurement has. */
#include "query/rewrite_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "query/query.h"

/* Does expression e reference a column, a subquery or a parameter? */
static bool has_column(const struct jv *e)
{
    const char *cls;

    if (!e || (e->t != J_OBJ && e->t != J_ARR))
        return false;
    if (e->t == J_OBJ && (cls = jstr(e, "class")) &&
        (!strcmp(cls, "COLUMN_REF") || !strcmp(cls, "SUBQUERY") || !strcmp(cls, "PARAMETER") ||
         !strcmp(cls, "STAR") || !strcmp(cls, "LAMBDA_REF") || !strcmp(cls, "WINDOW")))
        return true;
    for (size_t i = 0; i < e->n; i++)
        if (has_column(e->kids[i]))
            return true;
    return false;
}

/* The column name if e is a column of the reference with effective name alias
 * (unqualified only when it is the FROM's single item), else NULL. */
static const char *ref_col(const struct jv *e, const char *alias, bool single)
{
    const struct jv *names;

    if (!e || e->t != J_OBJ || !jstr(e, "class") || strcmp(jstr(e, "class"), "COLUMN_REF"))
        return NULL;
    names = jget(e, "column_names");
    if (!names || names->t != J_ARR)
        return NULL;
    if (names->n == 1 && names->kids[0]->t == J_STR)
        return single ? names->kids[0]->s : NULL;
    if (names->n == 2 && names->kids[0]->t == J_STR && names->kids[1]->t == J_STR &&
        !strcasecmp(names->kids[0]->s, alias))
        return names->kids[1]->s;
    return NULL;
}

/* Is e the `time` column of the reference with effective name alias? */
static bool is_time_col(const struct jv *e, const char *alias, bool single)
{
    const char *col = ref_col(e, alias, single);

    return col && !strcasecmp(col, "time");
}

/* Is e a non-NULL VARCHAR literal? Its bytes in *s, *len. */
static bool const_varchar(const struct jv *e, const char **s, size_t *len)
{
    const struct jv *v, *t, *val;

    if (!e || e->t != J_OBJ || !jstr(e, "class") || strcmp(jstr(e, "class"), "CONSTANT"))
        return false;
    v = jget(e, "value");
    t = v ? jget(v, "type") : NULL;
    val = v ? jget(v, "value") : NULL;
    if (!t || !jstr(t, "id") || strcmp(jstr(t, "id"), "VARCHAR") || !val || val->t != J_STR)
        return false;
    if (jget(v, "is_null") && jget(v, "is_null")->t == J_RAW &&
        strcmp(jget(v, "is_null")->s, "false") != 0)
        return false;
    *s = val->s;
    *len = val->slen;
    return true;
}

#define RW_MAX_TAG_VALUES 1024 /* longer IN lists are not worth a row filter */

/* `col = 'v'` or `col IN ('v1', ...)` of the reference: record it in r->tags. */
static void conjunct_tags(struct query_ref *r, const struct jv *c, const char *alias, bool single)
{
    const char *cls = jstr(c, "class"), *type = jstr(c, "type"), *col = NULL, *s;
    const struct jv *vals[RW_MAX_TAG_VALUES];
    size_t n = 0, len;
    struct query_tagset *t;

    if (!strcmp(cls, "COMPARISON") && !strcmp(type, "COMPARE_EQUAL")) {
        const struct jv *l = jget(c, "left"), *rt = jget(c, "right");
        if ((col = ref_col(l, alias, single)) && const_varchar(rt, &s, &len))
            vals[n++] = rt;
        else if ((col = ref_col(rt, alias, single)) && const_varchar(l, &s, &len))
            vals[n++] = l;
    } else if (!strcmp(cls, "OPERATOR") && !strcmp(type, "COMPARE_IN")) {
        const struct jv *kids = jget(c, "children");
        if (!kids || kids->t != J_ARR || kids->n < 2 || kids->n - 1 > RW_MAX_TAG_VALUES ||
            !(col = ref_col(kids->kids[0], alias, single)))
            return;
        for (size_t i = 1; i < kids->n; i++) {
            if (!const_varchar(kids->kids[i], &s, &len))
                return;
            vals[n++] = kids->kids[i];
        }
    }
    if (!col || n == 0 || !strcasecmp(col, "time"))
        return;
    r->tags = xreallocarray(r->tags, r->ntags + 1, sizeof(*r->tags));
    t = &r->tags[r->ntags++];
    t->column = xstrdup(col);
    t->values = xcalloc(n, sizeof(*t->values));
    t->lens = xcalloc(n, sizeof(*t->lens));
    for (size_t i = 0; i < n; i++) {
        const_varchar(vals[i], &s, &len);
        t->values[i] = xmalloc(len + 1);
        memcpy(t->values[i], s, len);
        t->values[i][len] = '\0';
        t->lens[i] = len;
    }
    t->nvalues = n;
}

/* Is e a non-NULL numeric literal DuckDB compares exactly enough in a double
 * (TINYINT..BIGINT, FLOAT, DOUBLE, DECIMAL)? Its value in *v. */
static bool const_number(const struct jv *e, double *v)
{
    const struct jv *val, *t, *ti;
    const char *id;
    char *end;

    if (!e || e->t != J_OBJ || !jstr(e, "class") || strcmp(jstr(e, "class"), "CONSTANT"))
        return false;
    val = jget(e, "value");
    t = val ? jget(val, "type") : NULL;
    id = t ? jstr(t, "id") : NULL;
    if (!id || !jget(val, "value") || jget(val, "value")->t != J_RAW ||
        (jget(val, "is_null") && jget(val, "is_null")->t == J_RAW &&
         strcmp(jget(val, "is_null")->s, "false") != 0))
        return false;
    if (strcmp(id, "TINYINT") && strcmp(id, "SMALLINT") && strcmp(id, "INTEGER") &&
        strcmp(id, "BIGINT") && strcmp(id, "FLOAT") && strcmp(id, "DOUBLE") &&
        strcmp(id, "DECIMAL"))
        return false;
    errno = 0;
    *v = strtod(jget(val, "value")->s, &end);
    if (errno || end == jget(val, "value")->s || *end)
        return false;
    if (!strcmp(id, "DECIMAL")) { /* the unscaled integer; type_info has the scale */
        const struct jv *sc;
        long scale;
        ti = jget(t, "type_info");
        sc = ti ? jget(ti, "scale") : NULL;
        if (!sc || sc->t != J_RAW)
            return false;
        scale = strtol(sc->s, &end, 10);
        if (*end || scale < 0 || scale > 38)
            return false;
        while (scale-- > 0)
            *v /= 10.0;
    }
    return isfinite(*v); /* 1e309 parses as +inf: no margin around it */
}

/* `col <op> number` / `number <op> col` of the reference: record it in r->nums. */
static void conjunct_nums(struct query_ref *r, const struct jv *c, const char *alias, bool single)
{
    const char *type = jstr(c, "type"), *col;
    const struct jv *l = jget(c, "left"), *rt = jget(c, "right");
    enum query_num_op op;
    bool flip = false;
    double v;

    if (strcmp(jstr(c, "class"), "COMPARISON") != 0)
        return;
    if ((col = ref_col(l, alias, single)) && const_number(rt, &v))
        flip = false;
    else if ((col = ref_col(rt, alias, single)) && const_number(l, &v))
        flip = true;
    else
        return;
    if (!strcasecmp(col, "time"))
        return;
    if (!strcmp(type, "COMPARE_EQUAL"))
        op = QUERY_NUM_EQ;
    else if (!strcmp(type, "COMPARE_GREATERTHAN"))
        op = flip ? QUERY_NUM_LT : QUERY_NUM_GT;
    else if (!strcmp(type, "COMPARE_GREATERTHANOREQUALTO"))
        op = flip ? QUERY_NUM_LE : QUERY_NUM_GE;
    else if (!strcmp(type, "COMPARE_LESSTHAN"))
        op = flip ? QUERY_NUM_GT : QUERY_NUM_LT;
    else if (!strcmp(type, "COMPARE_LESSTHANOREQUALTO"))
        op = flip ? QUERY_NUM_GE : QUERY_NUM_LE;
    else
        return;
    if (r->nnums >= 16)
        return;
    r->nums = xreallocarray(r->nums, r->nnums + 1, sizeof(*r->nums));
    r->nums[r->nnums].column = xstrdup(col);
    r->nums[r->nnums].op = op;
    r->nums[r->nnums].value = v;
    r->nnums++;
}

static char *bound_json(const struct jv *expr)
{
    struct buf b;

    buf_init(&b, 0);
    buf_append_str(&b, "{\"error\":false,\"statements\":[{\"node\":{\"type\":\"SELECT_NODE\","
                       "\"modifiers\":[],\"cte_map\":{\"map\":[]},\"select_list\":[{\"class\":"
                       "\"FUNCTION\",\"type\":\"FUNCTION\",\"alias\":\"\",\"query_location\":0,"
                       "\"function_name\":\"epoch_us\",\"schema\":\"\",\"children\":[{\"class\":"
                       "\"CAST\",\"type\":\"OPERATOR_CAST\",\"alias\":\"\",\"query_location\":0,"
                       "\"child\":");
    jv_dump(expr, &b);
    buf_append_str(&b,
                   ",\"cast_type\":{\"id\":\"TIMESTAMP\",\"type_info\":null},\"try_cast\":false}],"
                   "\"filter\":null,\"order_bys\":{\"type\":\"ORDER_MODIFIER\",\"orders\":[]},"
                   "\"distinct\":false,\"is_operator\":false,\"export_state\":false,"
                   "\"catalog\":\"\"}],\"from_table\":{\"type\":\"EMPTY\",\"alias\":\"\","
                   "\"sample\":null,\"query_location\":0},\"where_clause\":null,"
                   "\"group_expressions\":[],\"group_sets\":[],\"aggregate_handling\":"
                   "\"STANDARD_HANDLING\",\"having\":null,\"sample\":null,\"qualify\":null},"
                   "\"named_param_map\":[]}]}");
    return buf_steal(&b, NULL);
}

static void add_bound(struct query_ref *r, enum query_bound_op op, const struct jv *expr)
{
    r->bounds = xreallocarray(r->bounds, r->nbounds + 1, sizeof(*r->bounds));
    r->bounds[r->nbounds].op = op;
    r->bounds[r->nbounds].select_json = bound_json(expr);
    r->nbounds++;
}

/* One conjunct: add a bound to r if it constrains the reference's time. */
void rw_where_conjuncts(struct query_ref *r, const struct jv *c, const char *alias, bool single)
{
    const char *cls = jstr(c, "class"), *type = jstr(c, "type");
    const struct jv *l, *rt;
    enum query_bound_op op;
    bool flip;

    if (!cls || !type)
        return;
    if (!strcmp(cls, "CONJUNCTION") && !strcmp(type, "CONJUNCTION_AND")) {
        const struct jv *kids = jget(c, "children");
        for (size_t i = 0; kids && kids->t == J_ARR && i < kids->n; i++)
            rw_where_conjuncts(r, kids->kids[i], alias, single);
        return;
    }
    if (!strcmp(cls, "BETWEEN")) {
        const struct jv *lo = jget(c, "lower"), *hi = jget(c, "upper");
        if (is_time_col(jget(c, "input"), alias, single) && lo && hi && !has_column(lo) &&
            !has_column(hi)) {
            add_bound(r, QUERY_BOUND_MIN, lo);
            add_bound(r, QUERY_BOUND_MAX, hi);
        }
        return;
    }
    conjunct_tags(r, c, alias, single);
    conjunct_nums(r, c, alias, single);
    if (strcmp(cls, "COMPARISON") != 0)
        return;
    l = jget(c, "left");
    rt = jget(c, "right");
    if (is_time_col(l, alias, single) && rt && !has_column(rt)) {
        flip = false;
    } else if (is_time_col(rt, alias, single) && l && !has_column(l)) {
        flip = true;
        rt = l;
    } else {
        return;
    }
    if (!strcmp(type, "COMPARE_EQUAL"))
        op = QUERY_BOUND_EQ;
    else if (!strcmp(type, "COMPARE_GREATERTHAN") || !strcmp(type, "COMPARE_GREATERTHANOREQUALTO"))
        op = flip ? QUERY_BOUND_MAX : QUERY_BOUND_MIN;
    else if (!strcmp(type, "COMPARE_LESSTHAN") || !strcmp(type, "COMPARE_LESSTHANOREQUALTO"))
        op = flip ? QUERY_BOUND_MIN : QUERY_BOUND_MAX;
    else
        return;
    add_bound(r, op, rt);
}
