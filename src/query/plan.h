/* plan.h - the parsed and rewritten form of a statement, cached by its text.
 *
 * Turning SQL text into something Arc can run costs three DuckDB round trips
 * (json_serialize_sql, json_deserialize_sql of the rewritten tree, and one more per
 * time bound) - about 1 ms, as much as DuckDB needs for a small query itself. The
 * result depends only on (default database, SQL text): not on the catalog, the
 * files or the token (permissions are checked per query on the plan's references).
 * So it is computed once and kept in a small LRU; dashboards and benchmarks repeat
 * the same statements.
 *
 * A plan is immutable once built and reference-counted: query_plan_get hands out a
 * reference that stays valid after the plan is evicted; query_plan_put returns it. */
#ifndef ARC_QUERY_PLAN_H
#define ARC_QUERY_PLAN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#include "core/err.h"
#include "query/query.h"

struct duck;
struct metrics;
struct nx_record;
struct nx_shape;

struct plan_bound {
    enum query_bound_op op;
    char *sql;              /* SELECT epoch_us(CAST((expr) AS TIMESTAMP)) */
    bool constant;          /* the statement is not volatile: value computed once */
    int64_t value;          /* µs since the epoch, when constant */
};

struct plan_ref {
    char *database;         /* resolved */
    char *measurement;
    char *view;             /* the name that replaced the reference: __arc_q_<n> */
    struct plan_bound *bounds;
    size_t nbounds;
    struct query_tagset *tags; /* string-column conjuncts (query.h), for row filters */
    size_t ntags;
    struct query_numcmp *nums; /* numeric comparisons (query.h), for row filters */
    size_t nnums;
};

struct query_plan {
    char *sql;              /* the rewritten statement: references read the views */
    struct plan_ref *refs;  /* in order of appearance */
    size_t nrefs;
    bool is_volatile;       /* now(), random(), samples: results are never cached */
    char **latest_keys;     /* DISTINCT ON keys of a "latest row per key" statement over
                               its only reference (rewrite.c); the engine then keeps
                               only each key group's newest rows in that relation */
    size_t nlatest_keys;
    uint64_t max_rows;      /* result bound of a constant LIMIT (0: none) - rewrite.c */
    struct nx_shape *native; /* the native executor's shape (native.h), or NULL */
    /* what DuckDB answered for this plan last time (names, types): the native
     * executor's output must look the same. Mutable: guarded by nx_mu. */
    pthread_mutex_t nx_mu;
    struct nx_record *nx_rec;
    /* cache bookkeeping (plan.c) */
    unsigned refcnt;
    char *key;
    size_t key_len;
    struct query_plan *lru_prev, *lru_next, *hnext;
};

struct plan_cache;

/* capacity 0 = no caching (every get builds a fresh plan). */
struct plan_cache *plan_cache_new(size_t capacity, struct metrics *metrics);
void plan_cache_free(struct plan_cache *pc);

/* The plan of `sql` (sql_len bytes, no NUL inside) with unqualified names in
 * default_db. Errors are those of query_rewrite_tree plus DuckDB's parser (ERR_DB
 * with its message). Failed statements are not cached. */
enum err query_plan_get(struct plan_cache *pc, struct duck *d, const char *default_db,
                        const char *sql, size_t sql_len, struct query_plan **out,
                        struct errbuf *eb);
void query_plan_put(struct plan_cache *pc, struct query_plan *p);

/* The bound's value in µs since the epoch (the cached one when constant, else
 * evaluated now in DuckDB). false: it does not evaluate (the bound is ignored,
 * which only costs pruning). */
bool query_plan_bound_value(struct duck *d, const struct plan_bound *b, int64_t *out);

/* Prefix the plan's statement with one CTE per reference: out = "WITH <name> AS NOT
 * MATERIALIZED (<body>), ... <statement>", merged into the statement's own WITH
 * [RECURSIVE] list when it has one. bodies[i] is the SELECT for refs[i]. */
void query_plan_compose(const struct query_plan *p, const char *const *bodies,
                        struct buf *out);

#endif
