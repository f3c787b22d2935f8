/* native.h - the native executor: a few statement shapes answered from the hot
 * tier's memory without DuckDB.
 *
 * DuckDB's fixed cost per statement (parse, bind, optimize, pipeline set-up, hash
 * tables allocated per thread) is 2-4 ms, several times the work of the typical
 * dashboard statement over recent data: a per-minute max of one host over an hour
 * is 360 rows. For the shapes below, over a single measurement whose every file is
 * in the hot tier (storage/hot.h) plus its buffered rows, the engine computes the
 * answer itself:
 *
 *   AGG     SELECT <keys and aggregates> FROM m [WHERE ...] GROUP BY <keys>
 *           [ORDER BY <keys>] [LIMIT n]
 *           keys: time_bucket(INTERVAL '<n> <unit>', time) and string columns;
 *           aggregates: min, max, avg, sum (DOUBLE only), count(col), count(*).
 *   RAW     SELECT <columns or *> FROM m [WHERE ...] [ORDER BY time [DESC]] [LIMIT n]
 *   LATEST  SELECT DISTINCT ON (k) <columns or *> FROM m ORDER BY k, time DESC
 *
 *   WHERE: an AND of `time <op> '<timestamp literal>'`, `col = 'v'`,
 *   `col IN ('v', ...)` and `col <op> <number literal>` (op: < <= > >= =).
 *
 * Anything else - another function, an expression, HAVING, OFFSET, a join, a CTE,
 * a column of an unexpected type, a file not in memory, an answer or aggregate state
 * too big to hold (native.c NX_MAX_*), /query/stream - goes to DuckDB as before.
 * The comparisons, aggregates and orders follow DuckDB's semantics (NaN above every
 * number and equal to itself, NULLs last, avg of integers in 128-bit sums, bucket
 * origin 2000-01-03). Column names and types are those DuckDB gave the same plan
 * the first time it ran it (query_plan.nx_rec); until then, and whenever the
 * types would differ, DuckDB answers. docs/query.md "Native executor". */
#ifndef QUERY_NATIVE_H
#define QUERY_NATIVE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duck/duck.h"

struct batch;
struct catalog_column;
struct hot_seg;
struct jv;

enum nx_kind { NX_AGG = 1, NX_RAW, NX_LATEST };

enum nx_item_kind {
    NX_I_COL = 1,  /* a column (group key in AGG) */
    NX_I_STAR,     /* * (RAW/LATEST): the recorded names, in order */
    NX_I_BUCKET,   /* time_bucket(width, time) */
    NX_I_MIN,
    NX_I_MAX,
    NX_I_AVG,
    NX_I_SUM,
    NX_I_COUNT,    /* count(col) */
    NX_I_COUNT_STAR,
};

struct nx_item {
    enum nx_item_kind k;
    char *col;        /* NX_I_COL and aggregates over a column */
    int64_t width_us; /* NX_I_BUCKET */
};

enum nx_op { NX_LT = 1, NX_LE, NX_GT, NX_GE, NX_EQ };
enum nx_lit { NX_L_INT = 1, NX_L_DEC, NX_L_DBL };

struct nx_pred {
    enum { NX_P_TIME = 1, NX_P_STR, NX_P_NUM } k;
    char *col;        /* NX_P_STR / NX_P_NUM */
    enum nx_op op;    /* NX_P_TIME / NX_P_NUM */
    int64_t t_us;     /* NX_P_TIME */
    char **vals;      /* NX_P_STR: the IN list (or the one `=` value) */
    size_t *lens, nvals;
    enum nx_lit lk;   /* NX_P_NUM literal: INT iv, DEC iv / 10^scale, DBL dv */
    int64_t iv;
    int scale;
    double dv;
};

struct nx_order {
    size_t item;      /* index into items */
    bool desc;
};

struct nx_shape {
    enum nx_kind kind;
    struct nx_item *items;
    size_t nitems;
    struct nx_pred *preds;
    size_t npreds;
    struct nx_order *orders; /* AGG: over key items; RAW: time only (item SIZE_MAX) */
    size_t norders;
    uint64_t limit;          /* 0: none */
    bool has_limit;
    char *latest_key;        /* LATEST */
    char **aliases;          /* nitems: the alias as written, or NULL */
};

/* The shape of the statement's only SELECT node (json_serialize_sql's "node"), or
 * NULL when it is not one of the shapes above. */
struct nx_shape *nx_shape_from_node(const struct jv *node);
void nx_shape_free(struct nx_shape *s);

/* Names and types DuckDB gave the plan's result, with the catalog columns they were
 * computed against. */
struct nx_record {
    size_t ncols;
    char **names;
    enum duck_type *types;
    uint64_t catalog_sig;
};
void nx_record_free(struct nx_record *r);
/* A digest of the measurement's columns (names, types): a recorded `*` or type is
 * valid only while it is unchanged. */
uint64_t nx_catalog_sig(const struct catalog_column *cols, size_t ncols);

/* The rows a query may read: pinned hot segments (already narrowed to a superset of
 * the WHERE) and whole buffered batches. */
struct nx_input {
    const struct hot_seg *segs;
    size_t nsegs;
    struct batch *const *bufs;
    size_t nbufs;
    const struct catalog_column *cols; /* the measurement's catalog columns */
    size_t ncols;
};

/* Answer the shape over in, named and typed as rec says. false: not possible here
 * (a type differs from rec's, a column is missing, ...): ask DuckDB. */
bool nx_exec(const struct nx_shape *s, const struct nx_record *rec, const struct nx_input *in,
             struct duck_result **out);

#endif
