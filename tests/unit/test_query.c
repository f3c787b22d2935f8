/* test_query.c - the parse-tree rewrite of the query engine, with DuckDB's real
 * parser: which (database, measurement) references a statement has, that CTE names
 * are not measurements, that the SQL rebuilt from the rewritten tree keeps LEFT
 * JOINs, comments-free semantics, string literals and quoted identifiers, that the
 * sandbox refuses file-reading functions and non-SELECT statements, and that the
 * time bounds evaluate to the right microseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "duck/duck.h"
#include "query/plan.h"
#include "query/native.h"
#include "query/query.h"

struct fix {
    char dir[64];
    struct duck *d;
};

static int setup(void **state)
{
    struct fix *f = xcalloc(1, sizeof(*f));
    struct duck_opts o = {0};
    struct errbuf eb;

    errbuf_init(&eb);
    snprintf(f->dir, sizeof(f->dir), "/tmp/arc_query_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    o.data_dir = f->dir;
    o.query_threads = 1;
    if (duck_open(&o, &f->d, &eb) != ERR_OK)
        fail_msg("duck_open: %s", eb.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    duck_close(f->d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Serialize sql with DuckDB and rewrite it with default database "dflt". */
static enum err rewrite(struct fix *f, const char *sql, struct query_rewrite *rw,
                        struct errbuf *eb)
{
    char *tree = NULL;
    enum err rc;

    errbuf_init(eb);
    rc = duck_query_text(f->d, "SELECT json_serialize_sql($1::VARCHAR)", sql, &tree, eb);
    if (rc != ERR_OK)
        fail_msg("serialize %s: %s", sql, eb->msg);
    assert_non_null(tree);
    memset(rw, 0, sizeof(*rw));
    rc = query_rewrite_tree(tree, strlen(tree), "dflt", rw, eb);
    free(tree);
    return rc;
}

/* rewrite() that must succeed. */
static void rewrite_ok(struct fix *f, const char *sql, struct query_rewrite *rw)
{
    struct errbuf eb;

    if (rewrite(f, sql, rw, &eb) != ERR_OK)
        fail_msg("%s: %s", sql, eb.msg);
}

/* The SQL text DuckDB rebuilds from the rewritten tree (caller frees). */
static char *rebuilt(struct fix *f, const struct query_rewrite *rw)
{
    struct errbuf eb;
    char *sql = NULL;

    errbuf_init(&eb);
    if (duck_query_text(f->d, "SELECT json_deserialize_sql($1::JSON)", rw->json, &sql, &eb) != ERR_OK)
        fail_msg("deserialize: %s", eb.msg);
    assert_non_null(sql);
    return sql;
}

struct ref_case {
    const char *sql;
    const char *refs; /* "db.m,db.m" in order of appearance */
};

static void test_refs_table(void **state)
{
    static const struct ref_case cases[] = {
        {"SELECT * FROM cpu", "dflt.cpu"},
        {"SELECT * FROM prod.cpu", "prod.cpu"},
        {"SELECT * FROM cpu c JOIN prod.mem m ON c.time = m.time", "dflt.cpu,prod.mem"},
        {"WITH recent AS (SELECT * FROM cpu) SELECT * FROM recent", "dflt.cpu"},
        {"WITH cpu AS (SELECT 1 AS x) SELECT * FROM cpu", ""},
        {"SELECT * FROM cpu WHERE host IN (SELECT host FROM prod.hosts)", "dflt.cpu,prod.hosts"},
        {"SELECT (SELECT max(v) FROM disk) AS m", "dflt.disk"},
        {"SELECT * FROM (SELECT * FROM \"weird name\") t", "dflt.weird name"},
        {"SELECT 'FROM x' AS s /* FROM y */ FROM cpu -- FROM z", "dflt.cpu"},
        {"SELECT * FROM a UNION ALL SELECT * FROM b.c", "dflt.a,b.c"},
        {"SELECT * FROM range(10)", ""},
        {"DESCRIBE prod.cpu", "prod.cpu"},
        {"SELECT * FROM cpu ASOF JOIN mem USING (host, time)", "dflt.cpu,dflt.mem"},
    };
    struct fix *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query_rewrite rw;
        struct errbuf eb;
        char got[512] = "";
        size_t len = 0;

        if (rewrite(f, cases[i].sql, &rw, &eb) != ERR_OK)
            fail_msg("%s: %s", cases[i].sql, eb.msg);
        for (size_t k = 0; k < rw.nrefs; k++)
            len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s.%s", k ? "," : "",
                                    rw.refs[k].database, rw.refs[k].measurement);
        if (strcmp(got, cases[i].refs) != 0)
            fail_msg("%s: refs '%s', want '%s'", cases[i].sql, got, cases[i].refs);
        query_rewrite_release(&rw);
    }
}

static void test_rebuilt_sql(void **state)
{
    struct fix *f = *state;
    struct query_rewrite rw;
    struct errbuf eb;
    char *sql;

    assert_int_equal(rewrite(f, "SELECT cpu.host, m.v, 'it''s FROM x' AS s FROM cpu "
                                "LEFT JOIN prod.\"my mem\" m ON cpu.host = m.host -- FROM evil",
                             &rw, &eb),
                     ERR_OK);
    assert_int_equal(rw.nrefs, 2);
    assert_string_equal(rw.refs[1].database, "prod");
    assert_string_equal(rw.refs[1].measurement, "my mem");
    sql = rebuilt(f, &rw);
    /* the unaliased reference keeps its name as alias; the join kind is kept */
    assert_non_null(strstr(sql, "FROM __arc_q_1 AS cpu LEFT JOIN __arc_q_2 AS m"));
    assert_non_null(strstr(sql, "'it''s FROM x'"));
    assert_null(strstr(sql, "evil"));
    assert_null(strstr(sql, "prod"));
    free(sql);
    query_rewrite_release(&rw);

    /* RIGHT and FULL joins too */
    assert_int_equal(rewrite(f, "SELECT * FROM a RIGHT JOIN b ON a.x = b.x FULL JOIN c ON true",
                             &rw, &eb),
                     ERR_OK);
    sql = rebuilt(f, &rw);
    assert_non_null(strstr(sql, "RIGHT JOIN __arc_q_2 AS b"));
    assert_non_null(strstr(sql, "FULL JOIN __arc_q_3 AS c"));
    free(sql);
    query_rewrite_release(&rw);

    /* big integers and special floats survive the round trip */
    assert_int_equal(rewrite(f, "SELECT 18446744073709551615 AS u, 'inf'::DOUBLE AS i FROM cpu",
                             &rw, &eb),
                     ERR_OK);
    sql = rebuilt(f, &rw);
    assert_non_null(strstr(sql, "18446744073709551615"));
    free(sql);
    query_rewrite_release(&rw);
}

static void test_sandbox_refusals(void **state)
{
    static const struct {
        const char *sql;
        const char *msg;
    } cases[] = {
        {"SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"},
        {"SELECT * FROM read_parquet('/tmp/x.parquet')", "read_parquet() is not allowed"},
        {"SELECT * FROM glob('/*')", "glob() is not allowed"},
        {"SELECT * FROM read_text('/etc/passwd')", "read_text() is not allowed"},
        {"SELECT * FROM cpu, duckdb_settings()", "duckdb_settings() is not allowed"},
        {"SELECT * FROM query('SELECT 1')", "query() is not allowed"},
        {"SELECT getenv('HOME')", "getenv() is not allowed"},
        {"SELECT current_setting('allowed_directories')", "current_setting() is not allowed"},
        {"COPY cpu TO '/tmp/x.csv'", "only SELECT queries are allowed"},
        {"ATTACH '/tmp/x.db' AS x", "only SELECT queries are allowed"},
        {"INSTALL httpfs", "only SELECT queries are allowed"},
        {"SET enable_external_access = true", "only SELECT queries are allowed"},
        {"CREATE TABLE t (x INT)", "only SELECT queries are allowed"},
        {"SELECT 1; SELECT 2", "only one statement per query is allowed"},
        {"SELEC 1", "syntax error"},
        {"SELECT * FROM a.b.c", "use measurement or database.measurement"},
    };
    struct fix *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query_rewrite rw;
        struct errbuf eb;
        enum err rc = rewrite(f, cases[i].sql, &rw, &eb);
        if (rc == ERR_OK)
            fail_msg("%s: accepted", cases[i].sql);
        if (!strstr(eb.msg, cases[i].msg))
            fail_msg("%s: error '%s', want '%s'", cases[i].sql, eb.msg, cases[i].msg);
        assert_true(rc == ERR_PARSE || rc == ERR_INVAL);
    }
}

/* Evaluate every bound of ref 0 in DuckDB: min and max in µs (INT64_MIN/MAX = none). */
static void bounds_of(struct fix *f, const char *sql, int64_t *min_us, int64_t *max_us)
{
    struct query_rewrite rw;
    struct errbuf eb;

    if (rewrite(f, sql, &rw, &eb) != ERR_OK)
        fail_msg("%s: %s", sql, eb.msg);
    *min_us = INT64_MIN;
    *max_us = INT64_MAX;
    assert_true(rw.nrefs >= 1);
    for (size_t i = 0; i < rw.refs[0].nbounds; i++) {
        char *q = NULL, *v = NULL;
        long long x;
        errbuf_init(&eb);
        assert_int_equal(duck_query_text(f->d, "SELECT json_deserialize_sql($1::JSON)",
                                         rw.refs[0].bounds[i].select_json, &q, &eb),
                         ERR_OK);
        if (duck_query_text(f->d, q, NULL, &v, &eb) != ERR_OK)
            fail_msg("%s: bound %s: %s", sql, q, eb.msg);
        x = strtoll(v, NULL, 10);
        if (rw.refs[0].bounds[i].op != QUERY_BOUND_MAX && x > *min_us)
            *min_us = x;
        if (rw.refs[0].bounds[i].op != QUERY_BOUND_MIN && x < *max_us)
            *max_us = x;
        free(q);
        free(v);
    }
    query_rewrite_release(&rw);
}

static void test_time_bounds(void **state)
{
    struct fix *f = *state;
    const int64_t t2026 = 1767225600000000LL; /* 2026-01-01T00:00:00Z */
    const int64_t hour = 3600000000LL;
    int64_t lo, hi;

    bounds_of(f, "SELECT * FROM cpu WHERE time >= '2026-01-01T00:00:00Z' AND "
                 "time < '2026-01-01T01:00:00Z'", &lo, &hi);
    assert_int_equal(lo, t2026);
    assert_int_equal(hi, t2026 + hour);

    bounds_of(f, "SELECT * FROM cpu WHERE time BETWEEN TIMESTAMP '2026-01-01' AND "
                 "TIMESTAMP '2026-01-01' + INTERVAL 2 HOUR AND host = 'a'", &lo, &hi);
    assert_int_equal(lo, t2026);
    assert_int_equal(hi, t2026 + 2 * hour);

    /* reversed operands, qualified column */
    bounds_of(f, "SELECT * FROM cpu c WHERE '2026-01-01' <= c.time", &lo, &hi);
    assert_int_equal(lo, t2026);
    assert_int_equal(hi, INT64_MAX);

    /* now() - INTERVAL: within a minute of the wall clock minus one hour */
    bounds_of(f, "SELECT * FROM cpu WHERE time > now() - INTERVAL '1 hour'", &lo, &hi);
    {
        int64_t now_us = (int64_t)time(NULL) * 1000000LL;
        assert_true(lo > now_us - hour - 60000000LL && lo < now_us - hour + 60000000LL);
    }

    /* OR, column-dependent bounds, and other tables' columns give no bound */
    bounds_of(f, "SELECT * FROM cpu WHERE time > '2026-01-01' OR host = 'a'", &lo, &hi);
    assert_int_equal(lo, INT64_MIN);
    bounds_of(f, "SELECT * FROM cpu WHERE time > other_col", &lo, &hi);
    assert_int_equal(lo, INT64_MIN);
    bounds_of(f, "SELECT * FROM cpu a JOIN mem b ON a.host = b.host WHERE b.time > '2026-01-01'",
              &lo, &hi);
    assert_int_equal(lo, INT64_MIN); /* ref 0 is cpu (a): b's bound is not its */
    bounds_of(f, "SELECT * FROM cpu a JOIN mem b ON a.host = b.host WHERE a.time = '2026-01-01'",
              &lo, &hi);
    assert_int_equal(lo, t2026);
    assert_int_equal(hi, t2026);
    /* an ASOF join matches the latest row before: a bound would change the match */
    bounds_of(f, "SELECT * FROM cpu c ASOF JOIN mem m ON m.time >= c.time "
                 "WHERE c.time > '2026-01-01'", &lo, &hi);
    assert_int_equal(lo, INT64_MIN);
}

/* The row-filter conjuncts of ref 0 as text: "col=v1|v2;..." for tag sets, then
 * "col>x" (op > >= < <= =) for numeric comparisons, in WHERE order. */
static void conjuncts_of(struct fix *f, const char *sql, char *out, size_t cap)
{
    static const char *ops[] = {">", ">=", "<", "<=", "="};
    struct query_rewrite rw;
    struct errbuf eb;
    size_t n = 0;

    if (rewrite(f, sql, &rw, &eb) != ERR_OK)
        fail_msg("%s: %s", sql, eb.msg);
    out[0] = '\0';
    assert_true(rw.nrefs >= 1);
    for (size_t i = 0; i < rw.refs[0].ntags; i++) {
        const struct query_tagset *t = &rw.refs[0].tags[i];
        n += (size_t)snprintf(out + n, cap - n, "%s=", t->column);
        for (size_t k = 0; k < t->nvalues; k++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", k ? "|" : "", t->values[k]);
        n += (size_t)snprintf(out + n, cap - n, ";");
    }
    for (size_t i = 0; i < rw.refs[0].nnums; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s%g;", rw.refs[0].nums[i].column,
                              ops[rw.refs[0].nums[i].op], rw.refs[0].nums[i].value);
    query_rewrite_release(&rw);
}

/* Which WHERE conjuncts become row filters for the hot tier (docs/query.md). */
static void test_row_filter_conjuncts(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"SELECT * FROM cpu WHERE host = 'a'", "host=a;"},
        {"SELECT * FROM cpu WHERE 'a' = host AND region IN ('x', 'y')", "host=a;region=x|y;"},
        {"SELECT * FROM cpu c WHERE c.host IN ('h1') AND c.usage > 90.5", "host=h1;usage>90.5;"},
        {"SELECT * FROM cpu WHERE usage >= 90 AND 5 > n AND v <= -2.5e3 AND w = 1.25",
         "usage>=90;n<5;v<=-2500;w=1.25;"},
        {"SELECT * FROM cpu WHERE x < 12.345", "x<12.345;"},
        /* never: OR, NOT IN, NULL literals, casts, expressions, time, other tables */
        {"SELECT * FROM cpu WHERE host = 'a' OR host = 'b'", ""},
        {"SELECT * FROM cpu WHERE host NOT IN ('a')", ""},
        {"SELECT * FROM cpu WHERE host IN ('a', NULL)", ""},
        {"SELECT * FROM cpu WHERE host = 'a'::VARCHAR OR usage > 1", ""},
        {"SELECT * FROM cpu WHERE lower(host) = 'a' AND usage + 1 > 2", ""},
        {"SELECT * FROM cpu WHERE n > 99999999999999999999", ""}, /* HUGEINT */
        {"SELECT * FROM cpu WHERE time = 5", ""},
        {"SELECT * FROM cpu a JOIN mem b ON a.host = b.host WHERE b.host = 'x' AND b.v > 1", ""},
        {"SELECT * FROM cpu a JOIN mem b ON a.host = b.host WHERE host = 'x'", ""},
        {"SELECT * FROM (SELECT * FROM cpu) WHERE host = 'x'", ""},
        {"SELECT * FROM cpu WHERE usage > 1e309 AND v < -1e309", ""}, /* +-inf */
        /* where other rows change what matches: nothing for any reference */
        {"SELECT * FROM cpu c ASOF JOIN mem m ON m.time >= c.time WHERE c.host = 'a'", ""},
        {"SELECT * FROM cpu c POSITIONAL JOIN mem m WHERE c.host = 'a' AND c.usage > 1", ""},
        {"SELECT * FROM cpu TABLESAMPLE 10% WHERE host = 'a'", ""},
        {"SELECT count(*) FROM cpu WHERE host = 'a' USING SAMPLE 100 ROWS", ""},
        {"SELECT * FROM cpu UNPIVOT (usage FOR k IN (usage, cnt)) WHERE usage > 5", ""},
    };
    char got[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conjuncts_of(f, cases[i].sql, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].sql, got, cases[i].want);
    }
}

/* The native executor's shape of sql as text ("" = none): kind, items, WHERE
 * predicates, orders, limit. */
static void native_of(struct fix *f, const char *sql, char *out, size_t n)
{
    static const char *const kinds[] = {"?", "agg", "raw", "latest"};
    static const char *const items[] = {"?", "col", "*", "bucket", "min", "max", "avg", "sum",
                                        "count", "count*"};
    static const char *const ops[] = {"?", "<", "<=", ">", ">=", "="};
    struct query_rewrite rw;
    const struct nx_shape *s;
    size_t len = 0;

    rewrite_ok(f, sql, &rw);
    s = rw.native;
    out[0] = '\0';
    if (s) {
        len += (size_t)snprintf(out + len, n - len, "%s:", kinds[s->kind]);
        for (size_t i = 0; i < s->nitems; i++)
            len += (size_t)snprintf(out + len, n - len, " %s%s%s%s", items[s->items[i].k],
                                    s->items[i].col ? "(" : "", s->items[i].col ? s->items[i].col : "",
                                    s->items[i].col ? ")" : "");
        for (size_t i = 0; i < s->npreds; i++) {
            const struct nx_pred *p = &s->preds[i];
            if (p->k == NX_P_TIME)
                len += (size_t)snprintf(out + len, n - len, " time%s%lld", ops[p->op],
                                        (long long)p->t_us);
            else if (p->k == NX_P_STR)
                len += (size_t)snprintf(out + len, n - len, " %s~%zu", p->col, p->nvals);
            else
                len += (size_t)snprintf(out + len, n - len, " %s%s%s%lld/%d", p->col, ops[p->op],
                                        p->lk == NX_L_INT ? "i" : p->lk == NX_L_DEC ? "d" : "f",
                                        (long long)(p->lk == NX_L_DBL ? (long long)p->dv : p->iv),
                                        p->scale);
        }
        for (size_t i = 0; i < s->norders; i++)
            len += (size_t)snprintf(out + len, n - len, " order%s%s",
                                    s->orders[i].item == SIZE_MAX ? "T" : "",
                                    s->orders[i].desc ? "-" : "+");
        if (s->has_limit)
            snprintf(out + len, n - len, " limit%llu", (unsigned long long)s->limit);
    }
    query_rewrite_release(&rw);
}

static void test_native_shapes(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"SELECT time_bucket(INTERVAL '1 minute', time) AS m, max(u) FROM cpu WHERE host IN "
         "('a', 'b') AND time >= '2016-01-01 05:23:00' AND time < '2016-01-01T06:23:00Z' "
         "GROUP BY m ORDER BY m DESC LIMIT 5",
         "agg: bucket max(u) host~2 time>=1451625780000000 time<1451629380000000 order- limit5"},
        {"SELECT host, avg(u), count(*), count(v), min(w), sum(d) FROM cpu GROUP BY 1",
         "agg: col(host) avg(u) count* count(v) min(w) sum(d)"},
        {"SELECT count(*) FROM cpu WHERE u > 90.0 AND 5 <= n AND v < 1e3 AND w = -2.5",
         "agg: count* u>d900/1 n>=i5/0 v<f1000/0 w=d-25/1"},
        {"SELECT * FROM cpu WHERE time > TIMESTAMP '1969-12-31 23:59:59.5' ORDER BY time LIMIT 3",
         "raw: * time>-500000 orderT+ limit3"},
        {"SELECT time, host FROM cpu WHERE '2016-01-01' <= time", "raw: col(time) col(host) time>=1451606400000000"},
        {"SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC", "latest: *"},
        {"SELECT time_bucket(INTERVAL '7 minutes', time), max(u) FROM cpu "
         "GROUP BY time_bucket(INTERVAL '7 minutes', time) ORDER BY 1",
         "agg: bucket max(u) order+"},
        /* never: anything not understood exactly */
        {"SELECT sum(u) + 1 FROM cpu", ""},
        {"SELECT max(u) FROM cpu GROUP BY host HAVING max(u) > 1", ""},
        {"SELECT * FROM cpu LIMIT 5 OFFSET 2", ""},
        {"SELECT * FROM cpu WHERE host = 'a' OR host = 'b'", ""},
        {"SELECT * FROM cpu WHERE time > now() - INTERVAL '1 hour'", ""},
        {"SELECT * FROM cpu WHERE time > '2016-01-01 00:00:00+02'", ""},
        {"SELECT * FROM cpu WHERE time > '2016-02-30'", ""},
        {"SELECT * FROM cpu WHERE host > 'a'", ""},
        {"SELECT * FROM cpu ORDER BY host", ""},
        {"SELECT time_bucket(INTERVAL '1 month', time) b, max(u) FROM cpu GROUP BY b", ""},
        {"SELECT time_bucket(INTERVAL '1 hour', time, TIMESTAMP '2000-01-01') b, max(u) FROM cpu "
         "GROUP BY b", ""},
        {"SELECT host, max(u) FROM cpu GROUP BY ALL", ""},
        {"SELECT max(u) FILTER (WHERE u > 1) FROM cpu", ""},
        {"SELECT count(DISTINCT host) FROM cpu", ""},
        {"SELECT * FROM cpu a JOIN mem b ON a.host = b.host", ""},
        {"WITH x AS (SELECT * FROM cpu) SELECT * FROM x", ""},
        {"SELECT DISTINCT ON (host, region) * FROM cpu ORDER BY host, region, time DESC", ""},
        {"SELECT * FROM cpu TABLESAMPLE 10%", ""},
        {"SELECT cpu.host FROM cpu", ""},
        {"SELECT * FROM cpu WHERE usage > 1e309", ""},
    };
    char got[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        native_of(f, cases[i].sql, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].sql, got, cases[i].want);
    }
}

/* Volatile functions (and samples) make a statement uncacheable; plain ones do not. */
static void test_volatile_detection(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *sql;
        bool is_volatile;
    } cases[] = {
        {"SELECT count(*) FROM cpu", false},
        {"SELECT time_bucket(INTERVAL '1 hour', time) b, avg(v) FROM cpu GROUP BY b", false},
        {"SELECT * FROM cpu WHERE time > now() - INTERVAL '1 hour'", true},
        {"SELECT CURRENT_TIMESTAMP", true},
        {"SELECT current_date, 1", true},
        {"SELECT random() FROM cpu", true},
        {"SELECT * FROM cpu WHERE v > (SELECT random())", true},
        {"WITH x AS (SELECT now() t) SELECT * FROM x, cpu", true},
        {"SELECT * FROM cpu USING SAMPLE 10%", true},
        {"SELECT gen_random_uuid()", true},
        {"SELECT 'now()' AS s FROM cpu", false}, /* a string, not a call */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query_rewrite rw = {0};
        rewrite_ok(f, cases[i].sql, &rw);
        if (rw.is_volatile != cases[i].is_volatile)
            fail_msg("%s: is_volatile=%d, want %d", cases[i].sql, rw.is_volatile,
                     cases[i].is_volatile);
        query_rewrite_release(&rw);
    }
}

/* A constant top-level LIMIT bounds the result (max_rows: the engine materializes
 * small ones); anything else leaves it 0 = unbounded. */
static void test_result_size(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *sql;
        uint64_t max_rows;
    } cases[] = {
        {"SELECT * FROM cpu LIMIT 10", 10},
        {"SELECT * FROM cpu ORDER BY time DESC LIMIT 5000 OFFSET 20", 5000},
        {"SELECT host, max(v) FROM cpu GROUP BY host ORDER BY host LIMIT 7", 7},
        {"SELECT v FROM cpu UNION ALL SELECT v FROM mem LIMIT 3", 3},
        {"WITH x AS (SELECT * FROM cpu) SELECT * FROM x LIMIT 42", 42},
        {"SELECT * FROM cpu LIMIT 0", 1},
        {"SELECT * FROM cpu LIMIT 123456789012", 123456789012ULL},
        {"SELECT * FROM cpu", 0},
        {"SELECT * FROM (SELECT * FROM cpu LIMIT 5)", 0}, /* not top-level */
        {"SELECT * FROM cpu LIMIT 10 PERCENT", 0},
        {"SELECT * FROM cpu LIMIT 2 + 3", 0},
        {"SELECT * FROM cpu LIMIT (SELECT 5)", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query_rewrite rw = {0};
        rewrite_ok(f, cases[i].sql, &rw);
        if (rw.max_rows != cases[i].max_rows)
            fail_msg("%s: max_rows=%llu, want %llu", cases[i].sql,
                     (unsigned long long)rw.max_rows, (unsigned long long)cases[i].max_rows);
        query_rewrite_release(&rw);
    }
}

/* ---- the result cache, with fake generations and a fake clock -------------------- */

struct fake {
    uint64_t gen_cpu, gen_mem;
    int64_t now;
};

static uint64_t fake_gen(void *ctx, const char *db, const char *m)
{
    struct fake *k = ctx;
    (void)db;
    return !strcmp(m, "cpu") ? k->gen_cpu : !strcmp(m, "mem") ? k->gen_mem : 0;
}

static int64_t fake_now(void *ctx)
{
    return ((struct fake *)ctx)->now;
}

static bool only_db_a(const void *ctx, const char *db)
{
    (void)ctx;
    return !strcmp(db, "a");
}

static enum query_cache_result get(struct query_cache *c, const char *key, struct buf *out)
{
    char *ct = NULL, *prof = NULL;
    enum query_cache_result r;

    buf_reset(out);
    r = query_cache_get(c, key, strlen(key), NULL, NULL, out, &ct, &prof);
    if (r == QUERY_CACHE_HIT) {
        assert_string_equal(ct, "application/json");
        free(ct);
        free(prof);
    }
    return r;
}

static void test_cache(void **state)
{
    struct fake k = {.gen_cpu = 5, .gen_mem = 9, .now = 1000};
    struct query_cache_opts o = {.max_bytes = 64 * 1024, .ttl_ms = 1000, .gen = fake_gen,
                                 .gen_ctx = &k, .now_ns = fake_now};
    struct query_cache *c = query_cache_new(&o);
    struct query_cache_dep cpu = {"a", "cpu", 5}, mem = {"a", "mem", 9};
    struct query_cache_stats st;
    struct buf out;
    char *ct = NULL, *prof = NULL;
    char body[4096];

    (void)state;
    buf_init(&out, 0);
    assert_int_equal(get(c, "q1", &out), QUERY_CACHE_MISS);
    assert_true(query_cache_put(c, "q1", 2, &cpu, 1, "[1]", 3, "application/json", "files=1"));
    assert_int_equal(get(c, "q1", &out), QUERY_CACHE_HIT);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "[1]", 3);

    /* another measurement changes: still a hit; the one read changes: a miss */
    k.gen_mem++;
    assert_int_equal(get(c, "q1", &out), QUERY_CACHE_HIT);
    k.gen_cpu++;
    assert_int_equal(get(c, "q1", &out), QUERY_CACHE_MISS);
    assert_int_equal(get(c, "q1", &out), QUERY_CACHE_MISS); /* the entry is gone */

    /* TTL: valid just before, gone at the deadline */
    cpu.gen = k.gen_cpu;
    mem.gen = k.gen_mem;
    {
        struct query_cache_dep both[2] = {cpu, mem};
        assert_true(query_cache_put(c, "q2", 2, both, 2, "[2]", 3, "application/json", NULL));
    }
    k.now += 1000 * 1000000LL - 1;
    assert_int_equal(get(c, "q2", &out), QUERY_CACHE_HIT);
    k.now += 1;
    assert_int_equal(get(c, "q2", &out), QUERY_CACHE_MISS);

    /* scope: a caller who may not read database "b" misses an entry that read it */
    {
        struct query_cache_dep other = {"b", "cpu", k.gen_cpu};
        assert_true(query_cache_put(c, "q3", 2, &other, 1, "[3]", 3, "application/json", NULL));
        buf_reset(&out);
        assert_int_equal(query_cache_get(c, "q3", 2, only_db_a, NULL, &out, &ct, &prof),
                         QUERY_CACHE_MISS);
        assert_int_equal(out.len, 0);
        assert_int_equal(get(c, "q3", &out), QUERY_CACHE_HIT); /* unrestricted caller */
    }

    /* size cap: 16 KiB max per entry; LRU eviction keeps bytes <= 64 KiB */
    memset(body, 'x', sizeof(body));
    {
        char big[20000];
        memset(big, 'y', sizeof(big));
        assert_false(query_cache_put(c, "huge", 4, &cpu, 1, big, sizeof(big), "x/y", NULL));
    }
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(query_cache_put(c, key, strlen(key), &cpu, 1, body, sizeof(body),
                                    "application/json", NULL));
        query_cache_get_stats(c, &st);
        assert_true(st.bytes <= o.max_bytes);
    }
    assert_int_equal(get(c, "k39", &out), QUERY_CACHE_HIT);
    assert_int_equal(out.len, sizeof(body));
    assert_int_equal(get(c, "k0", &out), QUERY_CACHE_MISS); /* least recent: evicted */
    query_cache_get_stats(c, &st);
    assert_true(st.evictions >= 25);
    assert_int_equal(st.too_large, 1);
    assert_int_equal(st.invalidations, 1);
    assert_int_equal(st.expirations, 1);

    assert_true(query_cache_clear(c) > 0);
    query_cache_get_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(get(c, "k39", &out), QUERY_CACHE_MISS);

    /* TTL 0: nothing is stored */
    query_cache_free(c);
    o.ttl_ms = 0;
    c = query_cache_new(&o);
    assert_false(query_cache_put(c, "q", 1, &cpu, 1, "[]", 2, "application/json", NULL));
    query_cache_free(c);
    buf_release(&out);
}

/* Plans: reuse by (database, text), eviction that never frees a held plan, constant
 * bounds computed once, and composed statements that DuckDB runs (each reference
 * replaced by the CTE body "SELECT 42 AS v"). */
struct compose_case {
    const char *sql;
    const char *want; /* first value of the first row */
};

static void test_plan_cache_and_compose(void **state)
{
    static const struct compose_case cases[] = {
        {"SELECT v FROM cpu", "42"},
        {"FROM cpu SELECT v + 1", "43"},
        {"WITH a AS (SELECT v FROM cpu) SELECT v FROM a", "42"},
        {"WITH a AS MATERIALIZED (SELECT v FROM cpu) SELECT v FROM a UNION ALL SELECT 1 "
         "ORDER BY 1 DESC",
         "42"},
        {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < "
         "(SELECT v FROM cpu)) SELECT max(n) FROM r",
         "42"},
        {"SELECT v FROM cpu UNION ALL SELECT v + 1 FROM prod.mem ORDER BY 1 DESC", "43"},
        {"DESCRIBE cpu", "v"},
        {"SUMMARIZE cpu", "v"},
        {"SELECT (SELECT max(v) FROM disk) AS m", "42"},
    };
    struct fix *f = *state;
    struct plan_cache *pc = plan_cache_new(2, NULL);
    struct query_plan *p1, *p2, *p3, *p4;
    struct errbuf eb;
    const char *a = "SELECT v FROM cpu WHERE time >= '2026-01-01' AND time < now()";
    const char *b = "SELECT v FROM cpu";

    errbuf_init(&eb);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct query_plan *p;
        const char *bodies[4] = {"SELECT 42 AS v", "SELECT 42 AS v", "SELECT 42 AS v",
                                 "SELECT 42 AS v"};
        struct buf sql;
        char *got = NULL;

        if (query_plan_get(pc, f->d, "dflt", cases[i].sql, strlen(cases[i].sql), &p, &eb) !=
            ERR_OK)
            fail_msg("%s: %s", cases[i].sql, eb.msg);
        assert_true(p->nrefs >= 1 && p->nrefs <= 4);
        buf_init(&sql, 0);
        query_plan_compose(p, bodies, &sql);
        if (duck_query_text(f->d, sql.data, NULL, &got, &eb) != ERR_OK)
            fail_msg("%s -> %s: %s", cases[i].sql, sql.data, eb.msg);
        if (!got || strcmp(got, cases[i].want) != 0)
            fail_msg("%s -> %s: got %s, want %s", cases[i].sql, sql.data, got ? got : "NULL",
                     cases[i].want);
        free(got);
        buf_release(&sql);
        query_plan_put(pc, p);
    }

    /* reuse by text and database; a miss builds a new plan */
    assert_int_equal(query_plan_get(pc, f->d, "dflt", a, strlen(a), &p1, &eb), ERR_OK);
    assert_int_equal(query_plan_get(pc, f->d, "dflt", a, strlen(a), &p2, &eb), ERR_OK);
    assert_ptr_equal(p1, p2);
    assert_int_equal(query_plan_get(pc, f->d, "other", a, strlen(a), &p3, &eb), ERR_OK);
    assert_ptr_not_equal(p1, p3);
    assert_string_equal(p3->refs[0].database, "other");
    /* constant bound evaluated once; now() stays per query */
    assert_int_equal(p1->refs[0].nbounds, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct plan_bound *bd = &p1->refs[0].bounds[i];
        int64_t v = 0;
        assert_false(bd->constant); /* the statement calls now(): nothing is frozen */
        assert_true(query_plan_bound_value(f->d, bd, &v));
        if (bd->op == QUERY_BOUND_MIN)
            assert_true(v == INT64_C(1767225600000000));
        else
            assert_true(v > INT64_C(1767225600000000));
    }
    /* capacity 2: the third distinct statement evicts p1's entry, p1 stays usable */
    assert_int_equal(query_plan_get(pc, f->d, "dflt", b, strlen(b), &p4, &eb), ERR_OK);
    assert_string_equal(p1->refs[0].measurement, "cpu");
    query_plan_put(pc, p1);
    query_plan_put(pc, p2);
    query_plan_put(pc, p3);
    query_plan_put(pc, p4);
    {
        const char *c = "SELECT v FROM cpu WHERE time >= '2026-01-01 01:00:00'";
        struct query_plan *pc1;
        assert_int_equal(query_plan_get(pc, f->d, "dflt", c, strlen(c), &pc1, &eb), ERR_OK);
        assert_int_equal(pc1->refs[0].nbounds, 1);
        assert_true(pc1->refs[0].bounds[0].constant);
        assert_true(pc1->refs[0].bounds[0].value == INT64_C(1767229200000000));
        query_plan_put(pc, pc1);
    }
    /* a statement DuckDB cannot parse is an error, not a plan */
    assert_int_not_equal(query_plan_get(pc, f->d, "dflt", "SELEC 1", 7, &p1, &eb), ERR_OK);
    plan_cache_free(pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refs_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuilt_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_filter_conjuncts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volatile_detection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_size, setup, teardown),
        cmocka_unit_test(test_cache),
        cmocka_unit_test_setup_teardown(test_plan_cache_and_compose, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
