/* rewrite.c - check and rewrite a query's parse tree (DuckDB's json_serialize_sql).
 *
 * We never look at SQL text with patterns: DuckDB's parser turns the statement
 * into a JSON tree, and this file walks that tree. Comments and string literals
 * are gone, quoted identifiers are plain strings, joins keep their join_type, so
 * the rewrite cannot change what the query means. For every table reference
 * (BASE_TABLE) that is not a CTE in scope:
 *   cpu       -> (default_db, cpu)     prod.cpu -> (prod, cpu)
 * the reference is renamed to a per-query view `__arc_q_<n>` (schema cleared) and,
 * if it had no alias, aliased to the original table name so `cpu.host` still binds.
 * The engine creates those views over the measurement's files and buffered rows.
 *
 * Sandbox checks on the same walk: table functions other than range,
 * generate_series and unnest are refused (read_csv, read_parquet, glob, read_text,
 * query, duckdb_settings, ...), as are a few scalar functions that reveal the
 * environment (getenv, current_setting). Statement kinds other than SELECT never
 * get here: json_serialize_sql refuses them.
 *
 * Time pruning: for a reference, the WHERE of the SELECT node whose FROM holds it
 * is split into top-level AND conjuncts; `time <op> expr` / `expr <op> time` /
 * `time BETWEEN a AND b`, with `time` unqualified (single FROM item) or qualified
 * by the reference's alias, and expr free of column references and subqueries,
 * gives a bound. The bound is kept as a tiny serialized SELECT that the engine
 * evaluates in DuckDB (now() - INTERVAL ..., string literals, casts: whatever the
 * comparison would compute). Pruning with a WHERE conjunct is safe for the join
 * kinds that match on their ON condition (inner, outer, semi, anti): WHERE runs
 * after the joins, so a row of the reference outside the bound can never satisfy
 * the conjunct. Not for ASOF and POSITIONAL joins, PIVOT/UNPIVOT sources and
 * samples, where the other rows change what matches: a statement with any of
 * them gets no bounds (nor row filters) at all.
 *
 * The JSON is handled by a small DOM of our own rather than jansson because the
 * tree holds numbers jansson cannot carry losslessly (uint64 query locations
 * such as 18446744073709551615, Infinity, NaN): scalars are kept as raw tokens
 * and written back verbatim. Input size and nesting depth are capped. */
#include "query/query.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/mem.h"
#include "query/native.h"
#include "query/rewrite_int.h"

#define RW_MAX_DEPTH 400                 /* JSON nesting (SQL nesting ~ 1/4 of it) */
#define RW_MAX_JSON_BYTES ((size_t)64 << 20)
#define RW_MAX_REFS 256                  /* measurement references per query */

/* ---- a minimal JSON DOM ------------------------------------------------------------ */


struct jp {
    const char *p, *end;
    int depth;
    const char *err;
};

static void jv_free(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jv_free(v->kids[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->s);
    free(v);
}

static void jv_push(struct jv *v, char *key, struct jv *kid)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 4;
        v->kids = xreallocarray(v->kids, v->cap, sizeof(*v->kids));
        if (v->t == J_OBJ)
            v->keys = xreallocarray(v->keys, v->cap, sizeof(*v->keys));
    }
    if (v->t == J_OBJ)
        v->keys[v->n] = key;
    v->kids[v->n++] = kid;
}

static void skip_ws(struct jp *p)
{
    while (p->p < p->end && (*p->p == ' ' || *p->p == '\n' || *p->p == '\t' || *p->p == '\r'))
        p->p++;
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char o[4];
    size_t n;

    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, o, n);
}

static bool hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

/* Parse a string at p->p (at the opening quote) into a new NUL-terminated string. */
static char *parse_str(struct jp *p, size_t *len_out)
{
    struct buf b;

    buf_init(&b, 0);
    p->p++;
    while (p->p < p->end && *p->p != '"') {
        char c = *p->p++;
        if (c != '\\') {
            buf_append_char(&b, c);
            continue;
        }
        if (p->p >= p->end)
            break;
        c = *p->p++;
        switch (c) {
        case 'n': buf_append_char(&b, '\n'); break;
        case 't': buf_append_char(&b, '\t'); break;
        case 'r': buf_append_char(&b, '\r'); break;
        case 'b': buf_append_char(&b, '\b'); break;
        case 'f': buf_append_char(&b, '\f'); break;
        case 'u': {
            unsigned cp, lo;
            if (p->end - p->p < 4 || !hex4(p->p, &cp)) {
                p->err = "bad \\u escape";
                buf_release(&b);
                return NULL;
            }
            p->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p->end - p->p >= 6 && p->p[0] == '\\' &&
                p->p[1] == 'u' && hex4(p->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->p += 6;
            }
            put_utf8(&b, cp);
            break;
        }
        default: buf_append_char(&b, c); break; /* \" \\ \/ */
        }
    }
    if (p->p >= p->end) {
        p->err = "unterminated string";
        buf_release(&b);
        return NULL;
    }
    p->p++;
    *len_out = b.len;
    if (!b.data)
        return xstrdup("");
    return buf_steal(&b, NULL);
}

static struct jv *parse_val(struct jp *p)
{
    struct jv *v;

    skip_ws(p);
    if (p->p >= p->end) {
        p->err = "unexpected end";
        return NULL;
    }
    if (++p->depth > RW_MAX_DEPTH) {
        p->err = "too deep";
        return NULL;
    }
    v = xcalloc(1, sizeof(*v));
    if (*p->p == '"') {
        v->t = J_STR;
        v->s = parse_str(p, &v->slen);
        if (!v->s)
            goto fail;
    } else if (*p->p == '[' || *p->p == '{') {
        bool obj = *p->p == '{';
        char close = obj ? '}' : ']';
        v->t = obj ? J_OBJ : J_ARR;
        p->p++;
        skip_ws(p);
        if (p->p < p->end && *p->p == close) {
            p->p++;
        } else {
            for (;;) {
                char *key = NULL;
                size_t kl;
                struct jv *kid;
                skip_ws(p);
                if (obj) {
                    if (p->p >= p->end || *p->p != '"') {
                        p->err = "expected key";
                        goto fail;
                    }
                    key = parse_str(p, &kl);
                    if (!key)
                        goto fail;
                    skip_ws(p);
                    if (p->p >= p->end || *p->p != ':') {
                        free(key);
                        p->err = "expected ':'";
                        goto fail;
                    }
                    p->p++;
                }
                kid = parse_val(p);
                if (!kid) {
                    free(key);
                    goto fail;
                }
                jv_push(v, key, kid);
                skip_ws(p);
                if (p->p < p->end && *p->p == ',') {
                    p->p++;
                    continue;
                }
                if (p->p < p->end && *p->p == close) {
                    p->p++;
                    break;
                }
                p->err = "expected ',' or close";
                goto fail;
            }
        }
    } else {
        const char *s = p->p;
        while (p->p < p->end && (strchr("+-.", *p->p) || (*p->p >= '0' && *p->p <= '9') ||
                                 (*p->p >= 'a' && *p->p <= 'z') || (*p->p >= 'A' && *p->p <= 'Z')))
            p->p++;
        if (p->p == s) {
            p->err = "unexpected character";
            goto fail;
        }
        v->t = J_RAW;
        v->s = xstrndup(s, (size_t)(p->p - s));
        v->slen = (size_t)(p->p - s);
    }
    p->depth--;
    return v;
fail:
    jv_free(v);
    return NULL;
}

void jv_dump(const struct jv *v, struct buf *b)
{
    switch (v->t) {
    case J_RAW: buf_append(b, v->s, v->slen); break;
    case J_STR: buf_append_json_str(b, v->s, v->slen); break;
    case J_ARR:
    case J_OBJ:
        buf_append_char(b, v->t == J_ARR ? '[' : '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                buf_append_char(b, ',');
            if (v->t == J_OBJ) {
                buf_append_json_str(b, v->keys[i], strlen(v->keys[i]));
                buf_append_char(b, ':');
            }
            jv_dump(v->kids[i], b);
        }
        buf_append_char(b, v->t == J_ARR ? ']' : '}');
        break;
    }
}

struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return o->kids[i];
    return NULL;
}

/* The string value of o[key], or NULL if absent / not a string. */
const char *jstr(const struct jv *o, const char *key)
{
    struct jv *v = jget(o, key);
    return v && v->t == J_STR ? v->s : NULL;
}

static void jset_str(struct jv *o, const char *key, const char *val)
{
    struct jv *v = jget(o, key);

    if (!v) {
        v = xcalloc(1, sizeof(*v));
        jv_push(o, xstrdup(key), v);
    }
    if (v->t == J_ARR || v->t == J_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            jv_free(v->kids[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->kids);
        free(v->keys);
        v->kids = NULL;
        v->keys = NULL;
        v->n = v->cap = 0;
    }
    free(v->s);
    v->t = J_STR;
    v->s = xstrdup(val);
    v->slen = strlen(val);
}

/* ---- the walk ------------------------------------------------------------------------ */

struct sel_ctx {
    const struct jv *node;  /* the SELECT_NODE */
    size_t from_items;      /* leaf items in its FROM (tables, subqueries, functions) */
};

struct walk {
    const char *default_db;
    struct errbuf *eb;
    enum err rc;
    const char **ctes;      /* CTE names in scope (borrowed from the tree) */
    size_t nctes, ctes_cap;
    struct sel_ctx *sel;    /* SELECT node stack */
    size_t nsel, sel_cap;
    struct query_ref *refs;
    size_t nrefs, refs_cap;
    bool is_volatile;       /* a volatile function or a sample was seen */
    bool no_narrow;         /* an ASOF/POSITIONAL join, a PIVOT/UNPIVOT or a sample: a
                               row outside a WHERE conjunct can still change which rows
                               match, so no reference gets bounds or row filters */
};

static const char *const allowed_table_fns[] = {"range", "generate_series", "unnest"};
static const char *const denied_scalar_fns[] = {"getenv", "current_setting"};
/* Functions whose value changes between two runs of the same SQL: a query that
 * calls one is never served from the result cache. (The parser spells the SQL
 * keywords CURRENT_TIMESTAMP, CURRENT_DATE, ... as these function names.) */
static const char *const volatile_fns[] = {
    "now", "current_timestamp", "get_current_timestamp", "transaction_timestamp",
    "current_date", "today", "current_time", "get_current_time", "localtimestamp",
    "localtime", "current_localtimestamp", "current_localtime", "random", "setseed",
    "uuid", "gen_random_uuid", "uuidv4", "uuidv7", "nextval", "currval",
    "current_query", "current_transaction_id", "txid_current", "epoch_ns_now"};

static bool is_cte(const struct walk *w, const char *name)
{
    for (size_t i = 0; i < w->nctes; i++)
        if (!strcasecmp(w->ctes[i], name))
            return true;
    return false;
}

static size_t count_from_items(const struct jv *t)
{
    const char *type = jstr(t, "type");

    if (!type)
        return 0;
    if (!strcmp(type, "JOIN"))
        return count_from_items(jget(t, "left")) + count_from_items(jget(t, "right"));
    if (!strcmp(type, "EMPTY"))
        return 0;
    return 1;
}

static enum err on_base_table(struct walk *w, struct jv *t)
{
    const char *schema = jstr(t, "schema_name"), *table = jstr(t, "table_name");
    const char *cat = jstr(t, "catalog_name"), *alias = jstr(t, "alias");
    const struct jv *colal = jget(t, "column_name_alias");
    struct query_ref *r;
    char view[32];
    const char *eff;

    if (!table)
        return ERR_OK;
    if ((!schema || !schema[0]) && is_cte(w, table))
        return ERR_OK;
    if (cat && cat[0])
        return errbuf_set(w->eb, ERR_INVAL,
                          "table name '%s.%s.%s': use measurement or database.measurement", cat,
                          schema ? schema : "", table);
    if (w->nrefs >= RW_MAX_REFS)
        return errbuf_set(w->eb, ERR_LIMIT, "too many measurement references (max %d)",
                          RW_MAX_REFS);
    if (w->nrefs == w->refs_cap) {
        w->refs_cap = w->refs_cap ? 2 * w->refs_cap : 4;
        w->refs = xreallocarray(w->refs, w->refs_cap, sizeof(*w->refs));
    }
    r = &w->refs[w->nrefs++];
    memset(r, 0, sizeof(*r));
    r->database = xstrdup(schema && schema[0] ? schema : w->default_db);
    r->measurement = xstrdup(table);
    snprintf(view, sizeof(view), "__arc_q_%zu", w->nrefs);
    r->view = xstrdup(view);

    eff = alias && alias[0] ? alias : table;
    /* Bounds from the WHERE of the SELECT node whose FROM holds this reference
     * (renamed time columns are not followed). */
    if (w->nsel > 0 && (!colal || colal->t != J_ARR || colal->n == 0)) {
        const struct sel_ctx *s = &w->sel[w->nsel - 1];
        const struct jv *where = jget(s->node, "where_clause");
        if (where && where->t == J_OBJ)
            rw_where_conjuncts(r, where, eff, s->from_items == 1);
    }
    if (!alias || !alias[0])
        jset_str(t, "alias", table);
    jset_str(t, "table_name", view);
    jset_str(t, "schema_name", "");
    return ERR_OK;
}

static enum err walk_node(struct walk *w, struct jv *v)
{
    const char *type, *cls;
    struct jv *cte_map;
    size_t ctes_before = w->nctes;
    bool pushed_sel = false;
    enum err rc = ERR_OK;

    if (v->t != J_OBJ && v->t != J_ARR)
        return ERR_OK;
    if (v->t == J_OBJ) {
        type = jstr(v, "type");
        cls = jstr(v, "class");
        {
            /* USING SAMPLE / TABLESAMPLE (on a node or a table): a random subset each
             * run, taken before WHERE */
            const struct jv *smp = jget(v, "sample");
            if (smp && smp->t == J_OBJ)
                w->is_volatile = w->no_narrow = true;
        }
        if (type && !cls && !strcmp(type, "BASE_TABLE") && jget(v, "table_name"))
            return on_base_table(w, v);
        if (type && !cls && !strcmp(type, "TABLE_FUNCTION")) {
            const char *fn = jstr(jget(v, "function"), "function_name");
            bool ok = false;
            for (size_t i = 0; fn && i < sizeof(allowed_table_fns) / sizeof(*allowed_table_fns); i++)
                ok |= !strcasecmp(fn, allowed_table_fns[i]);
            if (!ok)
                return errbuf_set(w->eb, ERR_INVAL,
                                  "table function %s() is not allowed: queries read Arc's "
                                  "measurements only (allowed: range, generate_series, unnest)",
                                  fn ? fn : "?");
        }
        if (cls && !strcmp(cls, "FUNCTION")) {
            const char *fn = jstr(v, "function_name");
            for (size_t i = 0; fn && i < sizeof(denied_scalar_fns) / sizeof(*denied_scalar_fns); i++)
                if (!strcasecmp(fn, denied_scalar_fns[i]))
                    return errbuf_set(w->eb, ERR_INVAL, "function %s() is not allowed", fn);
            for (size_t i = 0; fn && i < sizeof(volatile_fns) / sizeof(*volatile_fns); i++)
                if (!strcasecmp(fn, volatile_fns[i]))
                    w->is_volatile = true;
        }
        if (cls && !strcmp(cls, "COLUMN_REF")) {
            /* CURRENT_TIMESTAMP & co. parse as column names the binder resolves to
             * functions; a real column of that name only costs caching. */
            const struct jv *names = jget(v, "column_names");
            if (names && names->t == J_ARR && names->n == 1 && names->kids[0]->t == J_STR)
                for (size_t i = 0; i < sizeof(volatile_fns) / sizeof(*volatile_fns); i++)
                    if (!strcasecmp(names->kids[0]->s, volatile_fns[i]))
                        w->is_volatile = true;
        }
        if (type && !strcmp(type, "PIVOT"))
            w->no_narrow = true;
        if (type && !strcmp(type, "JOIN") && jstr(v, "ref_type") &&
            (!strcmp(jstr(v, "ref_type"), "ASOF") || !strcmp(jstr(v, "ref_type"), "POSITIONAL")))
            w->no_narrow = true;
        cte_map = jget(jget(v, "cte_map"), "map");
        if (cte_map && cte_map->t == J_ARR) {
            for (size_t i = 0; i < cte_map->n; i++) {
                const char *k = jstr(cte_map->kids[i], "key");
                if (!k)
                    continue;
                if (w->nctes == w->ctes_cap) {
                    w->ctes_cap = w->ctes_cap ? 2 * w->ctes_cap : 8;
                    w->ctes = xreallocarray(w->ctes, w->ctes_cap, sizeof(*w->ctes));
                }
                w->ctes[w->nctes++] = k;
            }
        }
        if (type && !cls && !strcmp(type, "SELECT_NODE")) {
            if (w->nsel == w->sel_cap) {
                w->sel_cap = w->sel_cap ? 2 * w->sel_cap : 8;
                w->sel = xreallocarray(w->sel, w->sel_cap, sizeof(*w->sel));
            }
            w->sel[w->nsel].node = v;
            w->sel[w->nsel].from_items = count_from_items(jget(v, "from_table"));
            w->nsel++;
            pushed_sel = true;
        }
    }
    for (size_t i = 0; i < v->n && rc == ERR_OK; i++) {
        /* A subquery in this node's WHERE etc. pushes its own SELECT context; a
         * FROM-clause table of this node sees this node's context. */
        rc = walk_node(w, v->kids[i]);
    }
    if (pushed_sel)
        w->nsel--;
    w->nctes = ctes_before;
    return rc;
}

/* ---- "latest row per key" ------------------------------------------------------------

   SELECT DISTINCT ON (k1..kn) <columns or *> FROM <one measurement>
   ORDER BY k1..kn, time DESC [LIMIT ...]  (TSBS lastpoint, Grafana "current value")
   keeps, per key group, a row with the group's largest time. Restricting the
   measurement's rows to those whose time is their group's max (a semi join the
   engine adds to the relation) gives the same answer without sorting every row.
   Only this exact shape qualifies: no WHERE/GROUP BY/HAVING/QUALIFY/sample/CTE, a
   select list of plain columns or a bare *, keys that are plain column names. */

const char *rw_plain_column(const struct jv *e)
{
    const struct jv *names;

    if (!e || e->t != J_OBJ || !jstr(e, "class") || strcmp(jstr(e, "class"), "COLUMN_REF"))
        return NULL;
    names = jget(e, "column_names");
    if (!names || names->t != J_ARR || names->n != 1 || names->kids[0]->t != J_STR)
        return NULL;
    return names->kids[0]->s;
}

bool rw_null_or_empty(const struct jv *v)
{
    return !v || (v->t == J_RAW && !strcmp(v->s, "null")) || (v->t == J_ARR && v->n == 0);
}

static void detect_latest(const struct jv *stmts, struct query_rewrite *out)
{
    const struct jv *node, *mods, *distinct = NULL, *order = NULL, *sel, *from, *ctes, *map;
    const struct jv *keys, *orders;

    if (!stmts || stmts->t != J_ARR || stmts->n != 1 || stmts->kids[0]->t != J_OBJ)
        return;
    node = jget(stmts->kids[0], "node");
    if (!node || node->t != J_OBJ || !jstr(node, "type") || strcmp(jstr(node, "type"), "SELECT_NODE"))
        return;
    mods = jget(node, "modifiers");
    if (!mods || mods->t != J_ARR)
        return;
    for (size_t i = 0; i < mods->n; i++) {
        const char *t = jstr(mods->kids[i], "type");
        if (t && !strcmp(t, "DISTINCT_MODIFIER") && !distinct)
            distinct = mods->kids[i];
        else if (t && !strcmp(t, "ORDER_MODIFIER") && !order)
            order = mods->kids[i];
        else if (!t || strcmp(t, "LIMIT_MODIFIER"))
            return;
    }
    if (!distinct || !order)
        return;
    ctes = jget(node, "cte_map");
    map = ctes ? jget(ctes, "map") : NULL;
    from = jget(node, "from_table");
    if (!rw_null_or_empty(jget(node, "where_clause")) ||
        !rw_null_or_empty(jget(node, "group_expressions")) ||
        !rw_null_or_empty(jget(node, "group_sets")) || !rw_null_or_empty(jget(node, "having")) ||
        !rw_null_or_empty(jget(node, "qualify")) || !rw_null_or_empty(jget(node, "sample")) ||
        (map && !rw_null_or_empty(map)) || !from || !jstr(from, "type") ||
        strcmp(jstr(from, "type"), "BASE_TABLE") || !rw_null_or_empty(jget(from, "sample")))
        return;
    sel = jget(node, "select_list");
    if (!sel || sel->t != J_ARR || sel->n == 0)
        return;
    for (size_t i = 0; i < sel->n; i++) {
        const struct jv *e = sel->kids[i];
        const char *cls = jstr(e, "class");
        if (rw_plain_column(e))
            continue;
        if (!cls || strcmp(cls, "STAR") || !rw_null_or_empty(jget(e, "exclude_list")) ||
            !rw_null_or_empty(jget(e, "replace_list")) || !rw_null_or_empty(jget(e, "expr")) ||
            !rw_null_or_empty(jget(e, "qualified_exclude_list")) ||
            !rw_null_or_empty(jget(e, "rename_list")) ||
            (jget(e, "columns") && strcmp(jget(e, "columns")->s ? jget(e, "columns")->s : "", "false")))
            return;
    }
    keys = jget(distinct, "distinct_on_targets");
    orders = jget(order, "orders");
    if (!keys || keys->t != J_ARR || keys->n == 0 || keys->n > 16 || !orders ||
        orders->t != J_ARR || orders->n != keys->n + 1)
        return;
    for (size_t i = 0; i < keys->n; i++) {
        const char *k = rw_plain_column(keys->kids[i]);
        const char *o = rw_plain_column(jget(orders->kids[i], "expression"));
        if (!k || !o || strcasecmp(k, o) || !strcasecmp(k, "time"))
            return;
    }
    {
        const struct jv *last = orders->kids[keys->n];
        const char *o = rw_plain_column(jget(last, "expression"));
        if (!o || strcasecmp(o, "time") || !jstr(last, "type") ||
            strcmp(jstr(last, "type"), "DESCENDING"))
            return;
    }
    out->latest_keys = xcalloc(keys->n, sizeof(*out->latest_keys));
    for (size_t i = 0; i < keys->n; i++)
        out->latest_keys[i] = xstrdup(rw_plain_column(keys->kids[i]));
    out->nlatest_keys = keys->n;
}

/* ---- result size --------------------------------------------------------------------

   A constant top-level LIMIT (of a SELECT or a set operation) bounds the number of
   rows the statement returns: max_rows, the smallest such LIMIT. The engine then
   materializes small results instead of streaming them (duck.h). */

static void detect_result_size(const struct jv *stmts, struct query_rewrite *out)
{
    const struct jv *node, *mods;

    if (!stmts || stmts->t != J_ARR || stmts->n != 1 || stmts->kids[0]->t != J_OBJ)
        return;
    node = jget(stmts->kids[0], "node");
    mods = node && node->t == J_OBJ ? jget(node, "modifiers") : NULL;
    if (!mods || mods->t != J_ARR)
        return;
    for (size_t i = 0; i < mods->n; i++) {
        const struct jv *m = mods->kids[i], *lim, *val, *num;
        const char *t = jstr(m, "type");
        char *end;
        unsigned long long n;

        if (!t || strcmp(t, "LIMIT_MODIFIER"))
            continue;
        lim = jget(m, "limit");
        val = lim ? jget(lim, "value") : NULL;
        num = val ? jget(val, "value") : NULL;
        if (!lim || !jstr(lim, "class") || strcmp(jstr(lim, "class"), "CONSTANT") || !num ||
            num->t != J_RAW || !num->s || num->s[0] < '0' || num->s[0] > '9')
            continue;
        errno = 0;
        n = strtoull(num->s, &end, 10);
        if (*end || errno)
            continue;
        if (!n)
            n = 1; /* LIMIT 0: no rows; max_rows 0 means "no bound" */
        if (!out->max_rows || n < out->max_rows)
            out->max_rows = n;
    }
}

static void refs_free(struct query_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(refs[i].database);
        free(refs[i].measurement);
        free(refs[i].view);
        for (size_t k = 0; k < refs[i].nbounds; k++)
            free(refs[i].bounds[k].select_json);
        free(refs[i].bounds);
        query_tagsets_free(refs[i].tags, refs[i].ntags);
        for (size_t k = 0; k < refs[i].nnums; k++)
            free(refs[i].nums[k].column);
        free(refs[i].nums);
    }
    free(refs);
}

void query_tagsets_free(struct query_tagset *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < t[i].nvalues; k++)
            free(t[i].values[k]);
        free(t[i].values);
        free(t[i].lens);
        free(t[i].column);
    }
    free(t);
}

enum err query_rewrite_tree(const char *tree_json, size_t len, const char *default_db,
                            struct query_rewrite *out, struct errbuf *eb)
{
    struct jp p = {.p = tree_json, .end = tree_json + len};
    struct walk w;
    struct jv *root, *stmts;
    const char *msg;
    struct buf b;
    enum err rc;

    memset(&w, 0, sizeof(w));
    if (len > RW_MAX_JSON_BYTES)
        return errbuf_set(eb, ERR_LIMIT, "query too complex");
    root = parse_val(&p);
    if (!root) {
        if (p.err && !strcmp(p.err, "too deep"))
            return errbuf_set(eb, ERR_LIMIT, "query too deeply nested");
        return errbuf_set(eb, ERR_INTERNAL, "parse tree unreadable: %s", p.err ? p.err : "?");
    }
    if (root->t != J_OBJ) {
        rc = errbuf_set(eb, ERR_INTERNAL, "parse tree is not an object");
        goto out;
    }
    if (jget(root, "error") && jget(root, "error")->t == J_RAW &&
        !strcmp(jget(root, "error")->s, "true")) {
        msg = jstr(root, "error_message");
        if (msg && strstr(msg, "Only SELECT statements"))
            rc = errbuf_set(eb, ERR_PARSE, "only SELECT queries are allowed");
        else
            rc = errbuf_set(eb, ERR_PARSE, "%s", msg ? msg : "cannot parse the query");
        goto out;
    }
    stmts = jget(root, "statements");
    if (!stmts || stmts->t != J_ARR || stmts->n == 0) {
        rc = errbuf_set(eb, ERR_PARSE, "empty query");
        goto out;
    }
    if (stmts->n > 1) {
        rc = errbuf_set(eb, ERR_PARSE, "only one statement per query is allowed (got %zu)",
                        stmts->n);
        goto out;
    }
    w.default_db = default_db ? default_db : "default";
    w.eb = eb;
    detect_latest(stmts, out); /* before the walk renames the table */
    detect_result_size(stmts, out);
    if (stmts->kids[0]->t == J_OBJ)
        out->native = nx_shape_from_node(jget(stmts->kids[0], "node"));
    rc = walk_node(&w, stmts);
    if (rc)
        goto out;
    if (w.no_narrow) {
        /* "WHERE runs after the joins" does not hold for these: an ASOF join picks
         * the latest row before, a POSITIONAL join pairs by position, a sample and
         * PIVOT/UNPIVOT see the rows before WHERE. Every reference reads everything. */
        for (size_t i = 0; i < w.nrefs; i++) {
            struct query_ref *r = &w.refs[i];
            for (size_t k = 0; k < r->nbounds; k++)
                free(r->bounds[k].select_json);
            free(r->bounds);
            r->bounds = NULL;
            r->nbounds = 0;
            query_tagsets_free(r->tags, r->ntags);
            r->tags = NULL;
            r->ntags = 0;
            for (size_t k = 0; k < r->nnums; k++)
                free(r->nums[k].column);
            free(r->nums);
            r->nums = NULL;
            r->nnums = 0;
        }
    }
    if (w.nrefs != 1 || w.no_narrow) {
        nx_shape_free(out->native);
        out->native = NULL;
    }
    if (w.nrefs != 1) { /* the FROM was a CTE or not a measurement */
        for (size_t i = 0; i < out->nlatest_keys; i++)
            free(out->latest_keys[i]);
        free(out->latest_keys);
        out->latest_keys = NULL;
        out->nlatest_keys = 0;
    }
    buf_init(&b, 0);
    jv_dump(root, &b);
    out->json = buf_steal(&b, NULL);
    out->refs = w.refs;
    out->nrefs = w.nrefs;
    out->is_volatile = w.is_volatile;
    w.refs = NULL;
    w.nrefs = 0;
out:
    if (rc != ERR_OK) {
        nx_shape_free(out->native);
        out->native = NULL;
        for (size_t i = 0; i < out->nlatest_keys; i++)
            free(out->latest_keys[i]);
        free(out->latest_keys);
        out->latest_keys = NULL;
        out->nlatest_keys = 0;
    }
    refs_free(w.refs, w.nrefs);
    free(w.ctes);
    free(w.sel);
    jv_free(root);
    return rc;
}

void query_rewrite_release(struct query_rewrite *rw)
{
    if (!rw)
        return;
    free(rw->json);
    refs_free(rw->refs, rw->nrefs);
    for (size_t i = 0; i < rw->nlatest_keys; i++)
        free(rw->latest_keys[i]);
    free(rw->latest_keys);
    nx_shape_free(rw->native);
    memset(rw, 0, sizeof(*rw));
}
