/* duck.h - the DuckDB module: the only code in Arc that includes duckdb.h.
 *
 * One struct duck holds two separate in-memory DuckDB instances:
 *  - the WRITER instance turns column batches into Parquet files
 *    (duck_write_parquet). It never sees user SQL, so it keeps full file access.
 *    It runs with threads=1: each call encodes on the calling (flusher) thread, and
 *    N flusher threads give N-way parallelism through a pool of connections.
 *  - the QUERY instance runs user SQL (duck_query_exec). It is sandboxed at open:
 *    enable_external_access=false with allowed_directories = the data directory,
 *    no extension install/autoload, a memory limit, TimeZone=UTC, and
 *    lock_configuration=true so SQL cannot SET its way out. It also has the table
 *    function arc_batch_scan(id) over batches registered with duck_scan_add()
 *    (read-your-writes; duck_scan.c). Result columns of types the chunk API does
 *    not expose (DECIMAL, HUGEINT, UUID, lists, ...) are cast to VARCHAR.
 * DuckDB types never cross this header: results come back as our enum duck_type and
 * plain C arrays. See docs/duck.md for the measurements behind the writer design.
 *
 * Thread: every function here is safe to call from any thread (not the event loop:
 * they block), concurrently, on one struct duck. A struct duck_result belongs to
 * one thread at a time. */
#ifndef DUCK_DUCK_H
#define DUCK_DUCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/err.h"

struct duck;        /* opaque: the two instances and the writer connection pool */
struct duck_result; /* opaque: one running/finished query */
struct duck_chunk;  /* opaque: a window of up to ~2048 result rows */
struct duck_cancel; /* opaque: cancellation token for a running query */

struct duck_opts {
    const char *data_dir;        /* required: the only directory (tree) query SQL may read */
    const char *temp_dir;        /* query spill directory; NULL = DuckDB default */
    uint64_t memory_limit_bytes; /* query instance cap; 0 = DuckDB default (80% RAM) */
    const char *memory_limit;    /* same in DuckDB syntax ("4GB"); overrides the bytes
                                    when non-empty */
    unsigned query_threads;      /* query instance threads; 0 = DuckDB default (cores) */
};

/* Open both instances. Borrows o (strings are copied). On success *out owns the new
 * handle (duck_close). ERR_INVAL: o or data_dir missing; ERR_DB: DuckDB refused the
 * configuration (eb has DuckDB's message). */
enum err duck_open(const struct duck_opts *o, struct duck **out, struct errbuf *eb);

/* Close both instances and free d. No query or write may be running. Accepts NULL. */
void duck_close(struct duck *d);

/* DuckDB's library version string, e.g. "v1.4.4". */
const char *duck_version(void);

/* ---- Parquet writer --------------------------------------------------------- */

enum duck_compression {
    DUCK_PQ_ZSTD = 0, /* default; level from zstd_level */
    DUCK_PQ_SNAPPY = 1,
    DUCK_PQ_UNCOMPRESSED = 2,
};

/* How the batch reaches DuckDB (for benchmarks; AUTO is the measured best). */
enum duck_pq_method {
    DUCK_PQ_AUTO = 0,     /* = DUCK_PQ_SCAN */
    DUCK_PQ_SCAN = 1,     /* table function arc_batch_scan() feeding COPY ... TO */
    DUCK_PQ_APPENDER = 2, /* appender into a temp table, then COPY table TO */
};

struct duck_parquet_opts {
    enum duck_compression compression;
    int zstd_level;              /* 1..22; 0 = DuckDB default (3). Ignored unless ZSTD */
    uint64_t row_group_rows;     /* rows per row group; 0 = DuckDB default (122880) */
    enum duck_pq_method method;  /* benchmark knob; leave 0 */
    bool strings_per_value;      /* benchmark knob: copy each string instead of slicing a
                                    dictionary vector; leave false */
};

/* Write rows of batch b to a new Parquet file at path (overwritten if it exists;
 * the caller handles temp name, fsync and rename).
 * rows: nrows row indices into b, in output order (the caller sorts by time);
 * rows == NULL writes all b->nrows rows in order (nrows is then ignored).
 * Schema: `time` TIMESTAMP (µs, UTC, non-null) first, then b's columns in b's order
 * with their types (tags VARCHAR); NULLs preserved. Key-value metadata: arc_tags
 * (comma-joined tag column names), arc_measurement, arc_version.
 * o == NULL means zstd level 3, default row groups.
 * Borrows b (read only; not modified) for the duration of the call.
 * ERR_INVAL: a row index >= b->nrows, or an invalid batch; ERR_DB/ERR_IO: DuckDB
 * failed (eb has its message; a partial file may be left at path).
 * Thread: safe concurrently; each call takes a pooled writer connection and encodes
 * on the calling thread. */
enum err duck_write_parquet(struct duck *d, const struct batch *b, const uint32_t *rows,
                            size_t nrows, const char *path, const struct duck_parquet_opts *o,
                            struct errbuf *eb);

/* Compaction: write the rows of the Parquet files `inputs` (absolute paths) into one
 * new file at path, with the usual options and key-value metadata (tags: comma-joined
 * tag names; sources, if not NULL, stored as arc_compacted_from). Columns are the
 * union by name. sorted: the inputs are given in time order and their time ranges do
 * not overlap, so no sort is needed; else the rows are sorted by time. *rows_out:
 * rows written. Thread: as duck_write_parquet (a pooled writer connection). */
enum err duck_merge_parquet(struct duck *d, const char *const *inputs, size_t n, bool sorted,
                            const char *measurement, const char *tags, const char *sources,
                            const char *path, const struct duck_parquet_opts *o,
                            uint64_t *rows_out, struct errbuf *eb);

/* ---- Query side -------------------------------------------------------------- */

/* Column types as the result presents them. Data layout of duck_chunk_data():
 * BOOL uint8_t 0/1; I8..I64 / U8..U64 the C integer; F32 float; F64 double;
 * DATE int32_t days since epoch; TIME int64_t µs since midnight;
 * TIMESTAMP and TIMESTAMP_TZ int64_t µs since epoch (UTC); TIMESTAMP_S/_MS/_NS
 * int64_t in that unit; VARCHAR/BLOB: use duck_chunk_str(); OTHER (decimal, lists,
 * structs, intervals, hugeint, uuid, ...): not accessible here - cast in SQL. */
enum duck_type {
    DUCK_T_OTHER = 0,
    DUCK_T_BOOL,
    DUCK_T_I8,
    DUCK_T_I16,
    DUCK_T_I32,
    DUCK_T_I64,
    DUCK_T_U8,
    DUCK_T_U16,
    DUCK_T_U32,
    DUCK_T_U64,
    DUCK_T_F32,
    DUCK_T_F64,
    DUCK_T_VARCHAR,
    DUCK_T_BLOB,
    DUCK_T_DATE,
    DUCK_T_TIME,
    DUCK_T_TIMESTAMP,
    DUCK_T_TIMESTAMP_TZ,
    DUCK_T_TIMESTAMP_S,
    DUCK_T_TIMESTAMP_MS,
    DUCK_T_TIMESTAMP_NS,
};

/* Short name of a type, e.g. "BIGINT"; never NULL. */
const char *duck_type_name(enum duck_type t);

/* Run one SQL statement on the sandboxed query instance and return a streaming
 * result (rows are produced as chunks are fetched). Only one read-only statement
 * (SELECT, incl. DESCRIBE/SHOW/SUMMARIZE, or EXPLAIN) is accepted. On success *out
 * owns the result (duck_result_free). ERR_PERM: not a read-only statement;
 * ERR_DB: the statement failed (eb has DuckDB's message, e.g. a sandbox refusal or
 * a syntax error); ERR_TIMEOUT: it was cancelled. */
enum err duck_query_exec(struct duck *d, const char *sql, struct duck_result **out,
                         struct errbuf *eb);

/* Same, with a cancellation token (may be NULL): duck_query_cancel(c) from another
 * thread interrupts the statement while it executes or while chunks are fetched. */
enum err duck_query_exec_ex(struct duck *d, const char *sql, struct duck_cancel *c,
                            struct duck_result **out, struct errbuf *eb);

/* Cancellation token. One token serves one query at a time; it may be reused. */
struct duck_cancel *duck_cancel_new(void);
void duck_cancel_free(struct duck_cancel *c); /* accepts NULL; no query may use it */
/* Interrupt the query bound to c, if any; later exec/fetch with c fail with
 * ERR_TIMEOUT until duck_cancel_reset(). Thread: any thread. */
void duck_query_cancel(struct duck_cancel *c);
void duck_cancel_reset(struct duck_cancel *c);

/* How the result of duck_query_exec_sized is produced. Streaming keeps memory
 * bounded whatever the result size, but DuckDB copies every chunk the last
 * pipeline emits into a fresh full-size chunk of its own: a selective scan (a
 * filter pushed into the Parquet reader) emits thousands of chunks of a row or
 * two, and under a LIMIT (which runs on one thread to keep the order) that copying
 * costs more than the scan - 310 ms streamed vs 190 ms materialized for a
 * LIMIT 5000 over one host of 1 000 (bench/duck_direct --stream). A materialized
 * result packs the rows densely.
 *   STREAM  always stream.
 *   SMALL   materialize: the caller knows the result is bounded (a constant LIMIT
 *           of at most DUCK_SMALL_ROWS rows, or a buffered answer over at most
 *           DUCK_MATERIALIZE_MAX_VALUES input values - query/engine.c). DuckDB keeps
 *           a materialized result in plain memory, outside its memory_limit. */
enum duck_result_size { DUCK_RESULT_STREAM = 0, DUCK_RESULT_SMALL };
#define DUCK_SMALL_ROWS 10000u
#define DUCK_MATERIALIZE_MAX_VALUES (128u * 1024 * 1024) /* rows x columns; ~2 GiB at 16 B */

enum err duck_query_exec_sized(struct duck *d, const char *sql, struct duck_cancel *c,
                               enum duck_result_size size, struct duck_result **out,
                               struct errbuf *eb);
/* Was the result materialized (DUCK_RESULT_SMALL)? */
bool duck_result_materialized(const struct duck_result *r);

/* Run one SELECT on the query instance with $1 bound to arg (VARCHAR; NULL = no
 * parameter) and return its first value as text in *out (a new string, free();
 * NULL for a SQL NULL or an empty result). For small internal questions such as
 * json_serialize_sql($1). ERR_PERM: not a SELECT; ERR_DB: DuckDB's message. */
enum err duck_query_text(struct duck *d, const char *sql, const char *arg, char **out,
                         struct errbuf *eb);

/* Expose batch b (borrowed: the caller keeps it alive and unchanged) to SQL on the
 * query instance as the table function arc_batch_scan(<id>): `time` TIMESTAMP first,
 * then b's columns with their types. Valid until duck_scan_remove(id), which the
 * caller may call only after every result reading it has been freed. */
uint64_t duck_scan_add(struct duck *d, const struct batch *b);
/* The same for rows of several batches at once: segs[i] is rows[start .. start+count)
 * of its batch (rows NULL: the batch's own order). All batches must have the same
 * columns (names, types, order). The scan reads only the columns the statement
 * uses and runs on several threads, so its rows come in no particular order. */
struct duck_seg {
    const struct batch *b;
    const uint32_t *rows;
    size_t start, count;
};
uint64_t duck_scan_add_segs(struct duck *d, const struct duck_seg *segs, size_t n);
void duck_scan_remove(struct duck *d, uint64_t id);

/* Append s as a SQL string literal ('...', quotes doubled) / a quoted identifier
 * ("...", quotes doubled) to b. ERR_LIMIT past b's cap. */
struct buf;
enum err duck_sql_str_append(struct buf *b, const char *s);
enum err duck_sql_ident_append(struct buf *b, const char *s);

size_t duck_result_ncols(const struct duck_result *r);
/* Column name; borrowed, valid until duck_result_free. col < ncols. */
const char *duck_result_col_name(const struct duck_result *r, size_t col);
enum duck_type duck_result_col_type(const struct duck_result *r, size_t col);

/* Fetch the next chunk. *out is borrowed and valid until the next call or
 * duck_result_free; *out == NULL (with ERR_OK) means the result is exhausted.
 * ERR_DB: execution failed mid-stream; ERR_TIMEOUT: cancelled. */
enum err duck_result_next_chunk(struct duck_result *r, struct duck_chunk **out,
                                struct errbuf *eb);

/* Write every remaining row of r to a new Parquet file at path (zstd; overwritten
 * if it exists; the caller deletes it). The query instance cannot write files, so
 * the writer instance pulls r's chunks through a table function and COPYs them
 * (duck_export.c); values are not copied on the way. *rows_out (may be NULL) gets
 * the row count. r is exhausted afterwards. ERR_DB: the query failed mid-way (eb
 * has its message) or the write failed; ERR_TIMEOUT: r's token was cancelled. A
 * partial file may be left at path on failure. Thread: the caller's (blocking). */
enum err duck_result_write_parquet(struct duck *d, struct duck_result *r, const char *path,
                                   uint64_t *rows_out, struct errbuf *eb);

/* Free the result and release its connection. Accepts NULL. */
void duck_result_free(struct duck_result *r);

/* A result computed outside DuckDB (query/native.c) that readers consume through
 * the same next_chunk/col_* calls. One column: name (copied), type (BOOL, I64,
 * U64, F64, TIMESTAMP or VARCHAR), nrows values in `data` (BOOL: uint8_t 0/1,
 * TIMESTAMP: int64_t µs, VARCHAR: struct duck_str) and `valid` (bit per row, set =
 * present; NULL = all present). data and valid are taken over (freed with the
 * result); VARCHAR bytes are borrowed: they must outlive the result. */
struct duck_str {
    const char *p;
    size_t len;
};
struct duck_ncol {
    const char *name;
    enum duck_type type;
    void *data;
    uint64_t *valid;
};
struct duck_result *duck_result_from_columns(const struct duck_ncol *cols, size_t ncols,
                                             size_t nrows);

size_t duck_chunk_rows(const struct duck_chunk *c);
/* The column's values as a C array (layout per enum duck_type); NULL for
 * VARCHAR/BLOB/OTHER. Entries for NULL rows hold garbage. */
const void *duck_chunk_data(const struct duck_chunk *c, size_t col);
/* Validity bitmap: bit (row % 64) of word row / 64, 1 = present; NULL = all present. */
const uint64_t *duck_chunk_validity(const struct duck_chunk *c, size_t col);
bool duck_chunk_is_valid(const struct duck_chunk *c, size_t col, size_t row);
/* VARCHAR/BLOB value at row: pointer (not NUL-terminated) and *len; NULL if the
 * value is NULL or the column is not a string type. Borrowed like the chunk. */
const char *duck_chunk_str(const struct duck_chunk *c, size_t col, size_t row, size_t *len);

#endif
