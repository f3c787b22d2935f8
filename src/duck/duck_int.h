/* duck_int.h - private declarations shared by duck.c and duck_parquet.c.
 * Never included from another module (it pulls in duckdb.h). */
#ifndef DUCK_DUCK_INT_H
#define DUCK_DUCK_INT_H

#include <pthread.h>

#include <duckdb.h>

#include "core/buf.h"
#include "duck/duck.h"

struct duck_scan_slot {
    uint64_t id;
    struct duck_seg *segs; /* owned copy; the batches are borrowed from the caller */
    size_t nsegs;
};

/* Idle connections of one instance (LIFO), under duck.pool_mu. */
struct duck_pool {
    duckdb_connection *conns;
    size_t n, cap;
    size_t max; /* idle connections kept; 0 = no cap */
};

struct duck {
    duckdb_database wdb;         /* writer instance: private, full file access, threads=1 */
    duckdb_database qdb;         /* query instance: sandboxed, configuration locked */
    pthread_mutex_t pool_mu;     /* guards both pools */
    struct duck_pool wpool;      /* idle writer connections */
    struct duck_pool qpool;      /* idle query connections */
    char *data_dir;              /* owned copy of duck_opts.data_dir */
    pthread_mutex_t scan_mu;     /* guards the scan registry below */
    struct duck_scan_slot *scans; /* batches exposed to the query instance by id */
    size_t nscans, scans_cap;
    uint64_t next_scan_id;       /* ids are never reused */
};

/* ---- query side objects (duck.c; duck_export.c reads results) ---- */
struct duck_cancel {
    pthread_mutex_t mu;     /* guards conn and cancelled */
    duckdb_connection conn; /* connection of the bound query, or NULL */
    bool cancelled;         /* sticky until duck_cancel_reset */
};

struct duck_chunk {
    duckdb_data_chunk ch;     /* current chunk (owned), NULL before the first fetch */
    size_t rows;              /* rows in ch */
    size_t ncols;
    const enum duck_type *types;   /* the result's column types (borrowed) */
    void **data;              /* per column: vector data (ncols entries) */
    uint64_t **valid;         /* per column: validity words or NULL = all valid */
};

struct duck_result {
    duckdb_connection conn;   /* owned until duck_result_free returns it to the pool */
    struct duck *d;           /* the pool conn goes back to */
    duckdb_result res;        /* streaming or (small results) materialized result */
    bool materialized;        /* res was materialized (duck_query_exec_sized) */
    struct duck_cancel *cancel; /* bound token or NULL (borrowed) */
    size_t ncols;
    enum duck_type *types;    /* ncols entries */
    struct duck_chunk chunk;  /* the window handed out by next_chunk */
    bool done;                /* result exhausted */
    /* duck_result_from_columns: no DuckDB result; chunks are windows of these */
    bool native;
    size_t nrows, next_row;   /* rows held, first row of the next window */
    char **names;             /* ncols copies */
    void **cols;              /* ncols arrays (VARCHAR as duckdb_string_t) */
    uint64_t **cvalid;        /* ncols bitmasks or NULL */
};

/* Is the token cancelled? NULL: false. */
bool duck_cancel_is_set(struct duck_cancel *c);

/* Register arc_result_scan() on the writer instance (duck_export.c; once, at open). */
enum err duck_export_register(struct duck *d, duckdb_connection c, struct errbuf *eb);

/* Take an idle writer connection, or open a new one. ERR_DB on failure. */
enum err duck_writer_conn_get(struct duck *d, duckdb_connection *out, struct errbuf *eb);
/* Return a writer connection to the pool (the caller's statement has finished). */
void duck_writer_conn_put(struct duck *d, duckdb_connection c);

/* One batch handed to DuckDB as a table (duck_parquet.c): the Parquet writer's COPY
 * source on the writer instance, and a buffered-rows scan on the query instance. */
struct pq_job {
    uint64_t magic;            /* PQ_MAGIC while the job is live (writer side) */
    const struct batch *b;     /* borrowed */
    const uint32_t *rows;      /* row order, or NULL = 0..n-1 */
    size_t n;                  /* rows to emit */
    bool str_per_value;        /* copy strings one by one (benchmark knob) */
    duckdb_vector dict;        /* VARCHAR vector: dictionary ids 0..ndict-1, then NULL */
    uint32_t null_id;          /* index of the NULL entry in dict */
};

/* DuckDB type of a batch column type. */
duckdb_type duck_batch_col_type(enum batch_type t);
/* Build j->dict (once) if any column holds strings; the caller destroys it. */
void duck_job_build_dict(struct pq_job *j);
/* Fill output rows [start, start+count) of batch column ci (DUCK_COL_TIME for the
 * time column) into vector v (count <= vector size). */
#define DUCK_COL_TIME ((size_t)-1)
void duck_job_fill_col(struct pq_job *j, size_t ci, duckdb_vector v, size_t start, size_t count);
/* Fill output rows [start, start+count) of the job into out (count <= vector size);
 * column 0 is time, then the batch's columns in order. */
void duck_job_fill_chunk(struct pq_job *j, duckdb_data_chunk out, size_t start, size_t count);

/* Register arc_batch_scan() on the query instance (duck_scan.c; once, at open). */
enum err duck_scan_register(struct duck *d, duckdb_connection c, struct errbuf *eb);

/* Register arc_batch_scan() on the writer instance (once, at open). */
enum err duck_parquet_register(struct duck *d, duckdb_connection c, struct errbuf *eb);

/* Append s[0..n) to b as a SQL string literal ('...' with quotes doubled). */
enum err duck_sql_str(struct buf *b, const char *s, size_t n);
/* Append s as a SQL identifier ("..." with quotes doubled). */
enum err duck_sql_ident(struct buf *b, const char *s);

/* Run sql on c, discard the result. ERR_DB with DuckDB's message in eb on failure. */
enum err duck_exec(duckdb_connection c, const char *sql, struct errbuf *eb);

#endif
