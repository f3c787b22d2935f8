/* query.h - the query engine: sandboxed DuckDB SQL over Arc's Parquet files and
 * live buffers, with measurement name resolution, time pruning and limits.
 *
 * A query goes: SQL text -> DuckDB's own parser (json_serialize_sql) -> parse-tree
 * checks and rewrite (rewrite.c: every measurement reference becomes a per-query
 * view, forbidden table/scalar functions are refused, WHERE bounds on `time` are
 * extracted) -> per reference, a consistent snapshot of the catalog's files
 * (pruned by the time bounds) and the buffered rows -> TEMP VIEWs on a fresh
 * connection of the sandboxed query instance -> a streaming duck_result that the
 * caller encodes (query/encode.h). SHOW DATABASES / SHOW TABLES / SHOW
 * MEASUREMENTS are answered from the catalog (also as a duck_result).
 *
 * Sandbox, two layers: DuckDB's own guards on the query instance (duck.h) and the
 * parse-tree checks here. Only SELECT-like statements serialize, so COPY, ATTACH,
 * SET, PRAGMA, CREATE, ... fail at the parser step.
 *
 * Limits: a cap on running queries (ERR_TOOMANY), on the SQL text (ERR_LIMIT),
 * and a timeout enforced by a watchdog thread with duck_query_cancel().
 *
 * Errors: ERR_PARSE/ERR_INVAL (400: bad or refused SQL, unknown measurement, with
 * DuckDB's message), ERR_PERM (403: a database the caller may not read),
 * ERR_LIMIT (413), ERR_TOOMANY (429), ERR_TIMEOUT (cancelled), others are ours (500).
 * Thread: every function is safe from any thread except the event loop (they block). */
#ifndef QUERY_QUERY_H
#define QUERY_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct duck;
struct duck_result;
struct catalog;
struct bufmgr;
struct storage;
struct hot;
struct metrics;
struct query_engine;
struct query;

/* May the caller read database db? (The HTTP layer passes the token's check.) */
typedef bool query_can_db_fn(const void *ctx, const char *db);

struct query_engine_opts {
    struct duck *duck;        /* borrowed, required */
    struct catalog *catalog;  /* borrowed, required */
    struct bufmgr *buffers;   /* borrowed; NULL = no read-your-writes scan */
    struct storage *storage;  /* borrowed, required (file paths) */
    struct hot *hot;          /* borrowed; NULL = every file is read from storage */
    struct metrics *metrics;  /* may be NULL */
    int64_t timeout_ms;       /* per query; 0 = none */
    unsigned max_concurrent;  /* running queries; 0 = unlimited */
    size_t max_sql_bytes;     /* SQL text cap; 0 = ARC_MAX_SQL_BYTES */
    bool native;              /* answer the shapes of native.h without DuckDB */
};

enum err query_engine_new(const struct query_engine_opts *o, struct query_engine **out,
                          struct errbuf *eb);
/* No query may be running. Accepts NULL. */
void query_engine_free(struct query_engine *qe);
/* clock_mono_ns() at which the oldest running query started (before it listed any
 * file), INT64_MAX when none runs. Files unlisted before that can be deleted. */
int64_t query_engine_oldest_start_ns(struct query_engine *qe);

struct query_req {
    const char *sql;          /* the statement (need not be NUL-terminated) */
    size_t sql_len;
    const char *database;     /* database of unqualified names ("default" if NULL) */
    query_can_db_fn *can_db;  /* NULL = every database allowed */
    const void *can_db_ctx;
    bool explain;             /* run EXPLAIN of the statement instead (estimates) */
    bool buffered;            /* the answer is built in memory (not /query/stream): DuckDB
                               * materializes the result unless a LIMIT makes it large */
    bool no_native;           /* the result must come from DuckDB (Parquet export) */
};

/* What a query touched, for the x-arc-profile header and tests. */
struct query_profile {
    size_t refs;           /* measurement references resolved */
    size_t files;          /* Parquet files read (after time pruning) */
    size_t hot_files;      /* of those, read from memory (storage/hot.h) */
    size_t buffered_rows;  /* rows read from the live buffers */
    size_t bounded_refs;   /* references that had a usable time bound */
    bool latest;           /* read only each key group's newest rows (plan.h) */
    bool materialized;     /* the result was small and materialized (duck.h) */
    bool native;           /* answered by the native executor (native.h), not DuckDB */
};

/* Parse, check, rewrite and start the statement. On success *out owns a running
 * query: read its rows through query_result(), then query_finish(). */
enum err query_start(struct query_engine *qe, const struct query_req *r, struct query **out,
                     struct errbuf *eb);
/* The streaming result (borrowed; valid until query_finish). */
struct duck_result *query_result(struct query *q);
/* Next chunk of the result (duck_result_next_chunk, with the timeout reported as
 * ERR_TIMEOUT "query timed out after N s" and DuckDB failures as ERR_INVAL). */
struct duck_chunk;
enum err query_next_chunk(struct query *q, struct duck_chunk **out, struct errbuf *eb);
/* Write the whole result of q to a new Parquet file at path (duck_result_write_parquet:
 * the query instance stays unable to write files). Errors as query_next_chunk; the
 * caller deletes the file, also after a failure. *rows (may be NULL): rows written. */
enum err query_write_parquet(struct query *q, const char *path, uint64_t *rows,
                             struct errbuf *eb);
const struct query_profile *query_get_profile(const struct query *q);
/* Monotonic start of the query (ns), for execution_time_ms. */
int64_t query_started_ns(const struct query *q);
/* Interrupt the query (client gone). Thread: any. */
void query_cancel(struct query *q);
/* Free the result and everything the query held; releases its concurrency slot.
 * Accepts NULL. */
void query_finish(struct query *q);

/* Map an engine error to an HTTP status (400/403/413/429/504/500). */
int query_http_status(enum err code);

/* Can the answer of q be cached? False for SHOW, EXPLAIN, and statements that call
 * volatile functions (now(), random(), current_timestamp, ...) or sample rows. */
bool query_is_cacheable(const struct query *q);

/* The (database, measurement) pairs q read, with the data generation of each read
 * before its snapshot (bufmgr_generation; 0 without buffers). Borrowed, valid
 * until query_finish. */
struct query_cache_dep {
    const char *database, *measurement;
    uint64_t gen;
};
size_t query_deps(const struct query *q, const struct query_cache_dep **out);

/* ---- result cache (cache.c) --------------------------------------------------------
 * Encoded answers of identical queries, served from memory but never stale: an entry
 * records the generation of every measurement it read and a lookup drops it when
 * any changed (any write or file change), or when its TTL passed. LRU within
 * max_bytes. The key is opaque bytes built by the caller from everything that shapes
 * the answer (database, SQL, format, options). A hit re-checks every database the
 * entry read against the caller's can_db. Thread: all functions, any thread. */

/* Current generation of (db, measurement). */
typedef uint64_t query_cache_gen_fn(void *ctx, const char *db, const char *measurement);
/* Monotonic clock override for tests (ns). */
typedef int64_t query_cache_now_fn(void *ctx);

struct query_cache_opts {
    size_t max_bytes;           /* all entries (bodies + bookkeeping); an entry may use 1/4 */
    int64_t ttl_ms;             /* entry lifetime; <= 0 stores nothing */
    query_cache_gen_fn *gen;    /* required */
    void *gen_ctx;              /* passed to gen and now_ns */
    query_cache_now_fn *now_ns; /* NULL = clock_mono_ns */
};

struct query_cache_stats {
    uint64_t hits, misses;      /* lookups */
    uint64_t stores;            /* entries added */
    uint64_t invalidations;     /* entries dropped because a measurement changed */
    uint64_t expirations;       /* entries dropped by the TTL */
    uint64_t evictions;         /* entries dropped by the size cap (LRU) */
    uint64_t too_large;         /* answers not stored: above max_bytes / 4 */
    uint64_t uncacheable;       /* answers not stored: volatile SQL, SHOW, ... */
    uint64_t clears;            /* query_cache_clear calls */
    size_t entries, bytes;      /* current */
    size_t max_bytes;
    int64_t ttl_ms;
};

enum query_cache_result { QUERY_CACHE_MISS = 0, QUERY_CACHE_HIT = 1 };

struct query_cache;
struct buf;
struct query_cache *query_cache_new(const struct query_cache_opts *o);
void query_cache_free(struct query_cache *c); /* accepts NULL */

/* Look key up. On a hit the body is appended to body (a failed append - past its
 * cap - counts as a miss) and *content_type / *profile get new strings (free();
 * *profile may be NULL). c == NULL is always a miss. */
enum query_cache_result query_cache_get(struct query_cache *c, const char *key, size_t keylen,
                                        query_can_db_fn *can_db, const void *can_db_ctx,
                                        struct buf *body, char **content_type, char **profile);

/* Store a copy of an answer (replacing any entry of the same key), evicting the
 * least recently used entries to stay within max_bytes. false: not stored (too
 * large, TTL 0, or c == NULL). */
bool query_cache_put(struct query_cache *c, const char *key, size_t keylen,
                     const struct query_cache_dep *deps, size_t ndeps, const void *body,
                     size_t len, const char *content_type, const char *profile);

/* Drop every entry; returns how many there were. */
size_t query_cache_clear(struct query_cache *c);
/* Count an answer that could not be cached (stats only). */
void query_cache_note_uncacheable(struct query_cache *c);
void query_cache_get_stats(struct query_cache *c, struct query_cache_stats *out);

/* ---- parse-tree rewrite (rewrite.c), public for tests --------------------------- */

enum query_bound_op {
    QUERY_BOUND_MIN = 1, /* time >= v (or >) */
    QUERY_BOUND_MAX = 2, /* time <= v (or <) */
    QUERY_BOUND_EQ = 3,  /* time = v */
};

struct query_bound {
    enum query_bound_op op;
    char *select_json; /* serialized `SELECT epoch_us(CAST((expr) AS TIMESTAMP))` */
};

/* A WHERE conjunct `col = 'v'` / `col IN ('v1', ...)` on a reference's column with
 * string literals: rows of the reference whose col is none of the values (or NULL)
 * can never be in the result, the same argument as for time bounds (rewrite.c). */
struct query_tagset {
    char *column;       /* as written (DuckDB matches it case-insensitively) */
    char **values;      /* owned strings (may hold NUL bytes) */
    size_t *lens;
    size_t nvalues;
};
void query_tagsets_free(struct query_tagset *t, size_t n);

/* A WHERE conjunct `col <op> number` (op: > >= < <= =) on a reference's column with a
 * numeric literal (INTEGER, BIGINT, DOUBLE, DECIMAL...): the same argument; used to drop
 * rows that certainly fail it (engine_hot.c keeps a margin, so the comparison DuckDB
 * makes decides every close call). */
enum query_num_op { QUERY_NUM_GT, QUERY_NUM_GE, QUERY_NUM_LT, QUERY_NUM_LE, QUERY_NUM_EQ };
struct query_numcmp {
    char *column;
    enum query_num_op op;
    double value;
};

struct nx_shape;

struct query_ref {
    char *database;     /* resolved database (owned) */
    char *measurement;  /* owned */
    char *view;         /* the per-query view name that replaced the reference */
    struct query_bound *bounds;
    size_t nbounds;
    struct query_tagset *tags; /* conjuncts on string columns */
    size_t ntags;
    struct query_numcmp *nums; /* conjuncts comparing a column with a number */
    size_t nnums;
};

struct query_rewrite {
    char *json;              /* rewritten parse tree for json_deserialize_sql */
    struct query_ref *refs;  /* in order of appearance */
    size_t nrefs;
    bool is_volatile;        /* calls now(), random(), ... or samples: never cache */
    char **latest_keys;      /* "latest row per key" shape (rewrite.c): its DISTINCT ON
                                keys, for the only reference; NULL otherwise */
    size_t nlatest_keys;
    uint64_t max_rows;       /* a constant top-level LIMIT bounds the result; 0: no bound */
    struct nx_shape *native; /* a shape the native executor answers (native.h), or NULL */
};

/* Check and rewrite the output of json_serialize_sql(sql). default_db resolves
 * unqualified names. ERR_PARSE: DuckDB's parser refused the SQL, or it is not a
 * single SELECT (message says which); ERR_INVAL: a forbidden function (named) or
 * a name form we do not support; ERR_LIMIT: the tree is too deep / too many refs. */
enum err query_rewrite_tree(const char *tree_json, size_t len, const char *default_db,
                            struct query_rewrite *out, struct errbuf *eb);
void query_rewrite_release(struct query_rewrite *rw);

#endif
