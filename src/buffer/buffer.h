/* buffer.h - per (database, measurement) column buffers between ingest and Parquet.
 *
 * Writes hand decoded batches to bufmgr_append(); rows land in the measurement's
 * *active* batch (one growing column batch per measurement). A buffer is flushed
 * when it reaches flush_rows rows, flush_bytes bytes or flush_age: the active batch
 * moves to the *flushing* list and a flusher thread hands it to the sink (which
 * writes Parquet and registers the file in the catalog). Only when the sink
 * succeeds are the rows dropped; a failed flush keeps them and is retried.
 *
 * Schema: each measurement has one type per column. A new column is added (older
 * rows read it as NULL); int then float widens to DOUBLE; any other conflict is
 * rejected with ERR_CONFLICT naming the field and both types, and nothing of the
 * request is stored (all or nothing across every measurement of the request).
 *
 * Memory: one budget for all buffered rows (active + flushing). A write that would
 * pass it fails with ERR_BUSY (the HTTP layer answers 503 + Retry-After); memory
 * never grows past the budget because of client traffic.
 *
 * Thread: all functions are safe from any thread. */
#ifndef BUFFER_BUFFER_H
#define BUFFER_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/err.h"

struct bufmgr;
struct metrics;

struct bufmgr_commit;

/* The sink writes one flushing batch of database db durably (rows in any order).
 * It borrows b. It must call bufmgr_commit_lock(cm) right before the step that
 * makes its files visible (the catalog commit) and not after it: from that call
 * until the buffer has dropped the batch, queries of this measurement wait, so
 * no query sees the rows both in a file and in the buffer, or in neither.
 * Returns ERR_OK once the rows are in durable, registered files; any other code
 * keeps the batch for a retry. Runs on a flusher thread. */
typedef enum err bufmgr_sink_fn(void *ctx, const char *db, const struct batch *b,
                                struct bufmgr_commit *cm, struct errbuf *eb);

/* See bufmgr_sink_fn. Idempotent. */
void bufmgr_commit_lock(struct bufmgr_commit *cm);
/* A sink that succeeds may keep the batch it was given (the hot tier does): instead
 * of freeing it, the buffer calls fn(ctx, b) once b is off its lists, on the
 * flusher thread; fn owns b from then on (nobody changes or reads it through the
 * buffer any more). Register at most once, only when returning ERR_OK. */
struct batch;
typedef void bufmgr_keep_fn(void *ctx, struct batch *b);
void bufmgr_commit_keep(struct bufmgr_commit *cm, bufmgr_keep_fn *fn, void *ctx);

/* Known column types of a measurement (from the catalog at start-up); the loader
 * fills names/types/is_tag for (db, measurement) and returns the count. */
struct bufmgr_col_schema {
    const char *name;
    enum batch_type type;
    bool is_tag;
};

struct bufmgr_opts {
    size_t flush_rows;       /* flush a measurement at this many rows */
    size_t flush_bytes;      /* ... or this many bytes */
    int64_t flush_age_ms;    /* ... or when its oldest row is this old */
    size_t budget_bytes;     /* all buffered rows, active + flushing */
    unsigned flush_threads;  /* concurrent sink calls */
    bufmgr_sink_fn *sink;
    void *sink_ctx;
    struct metrics *metrics; /* may be NULL */
};

struct bufmgr *bufmgr_new(const struct bufmgr_opts *o);
/* Flush nothing, free everything (call bufmgr_flush_all first to keep the rows). */
void bufmgr_free(struct bufmgr *bm);

/* Declare the stored schema of a measurement (start-up, from the catalog). */
void bufmgr_set_schema(struct bufmgr *bm, const char *db, const char *measurement,
                       const struct bufmgr_col_schema *cols, size_t ncols);

/* Would bufmgr_append accept these batches now (schema and budget)? Lets a
 * caller log a write-ahead record only for writes that will be stored. The answer
 * holds until the next append only if appends are serialised by the caller. */
enum err bufmgr_check(struct bufmgr *bm, const char *db, struct batch *const *batches, size_t n,
                      struct errbuf *eb);

/* Append batches (one per measurement) for database db. On ERR_OK ownership of
 * every batch passes to the buffers (the array itself stays the caller's and its
 * entries are set to NULL). On failure nothing was stored and the caller keeps the
 * batches. ERR_CONFLICT: field type conflict; ERR_BUSY: memory budget full.
 * lsn: the write-ahead log sequence number of the request (0 without a WAL);
 * callers must append in increasing LSN order. */
enum err bufmgr_append(struct bufmgr *bm, const char *db, struct batch **batches, size_t n,
                       uint64_t lsn, struct errbuf *eb);

/* LSN range [lo, hi] of the rows a flush is committing (0, 0 without a WAL). */
void bufmgr_commit_lsn(const struct bufmgr_commit *cm, uint64_t *lo, uint64_t *hi);

/* Lowest LSN of any row not yet in a committed file; UINT64_MAX if none. */
uint64_t bufmgr_min_unflushed_lsn(struct bufmgr *bm);

/* Age-based flushing and retries; call periodically (e.g. every 100 ms). */
void bufmgr_tick(struct bufmgr *bm);

/* Flush every buffer now and wait until all flushing rows are durable or
 * timeout_ms passes. ERR_TIMEOUT / the last sink error if not everything made it. */
enum err bufmgr_flush_all(struct bufmgr *bm, int timeout_ms, struct errbuf *eb);

/* Called by bufmgr_snapshot while no flush of the measurement can commit:
 * list the measurement's files here (e.g. from the catalog). */
typedef enum err bufmgr_files_fn(void *ctx, struct errbuf *eb);

/* Read-your-writes: copy every buffered row of (db, measurement) that is not yet
 * in a committed file (active and flushing batches), consistently with the file
 * list that list_files (may be NULL) takes at the same moment: each row is either
 * in a listed file or in the returned batches, never both, never neither.
 * *out gets a new array of *n owned batches (bufmgr_snapshot_free). */
enum err bufmgr_snapshot(struct bufmgr *bm, const char *db, const char *measurement,
                         bufmgr_files_fn *list_files, void *ctx, struct batch ***out, size_t *n,
                         struct errbuf *eb);
void bufmgr_snapshot_free(struct batch **batches, size_t n);

/* Discard the unflushed rows and schema of every measurement of db (database
 * drop), including batches waiting to be flushed, and wait (up to 30 s) until no
 * flush of db is still running, so that none commits after the caller drops the
 * database from the catalog. Blocks: call from a worker thread. */
void bufmgr_drop_database(struct bufmgr *bm, const char *db);

/* Data generation of (db, measurement): changes (to a value never used before)
 * whenever rows are appended, a flush commits files, the database is dropped, or
 * someone calls bufmgr_touch(). An append bumps it after its rows are visible to
 * bufmgr_snapshot() and before bufmgr_append() returns, so a reader that reads the
 * generation *before* taking its snapshot and later sees the same value knows the
 * data has not changed since (the query cache relies on it). 0 = no buffer exists.
 * Cheap: a hash lookup and an atomic load. */
uint64_t bufmgr_generation(struct bufmgr *bm, const char *db, const char *measurement);

/* Bump the generation of (db, measurement): call after any change to its files
 * made outside the buffers (compaction, retention, delete), once the change is
 * visible in the catalog. */
void bufmgr_touch(struct bufmgr *bm, const char *db, const char *measurement);

/* Call fn for every measurement of db (NULL: every database) that has rows not yet
 * in a committed file, with that row count. fn runs under an internal lock: it
 * must not call back into the bufmgr. */
typedef void bufmgr_list_fn(void *ctx, const char *db, const char *measurement, size_t rows);
void bufmgr_list_buffered(struct bufmgr *bm, const char *db, bufmgr_list_fn *fn, void *ctx);

struct bufmgr_stats {
    size_t measurements;     /* buffers known */
    size_t active_rows;      /* rows waiting for a flush */
    size_t flushing_rows;    /* rows being written */
    size_t bytes;            /* budget in use */
    size_t budget_bytes;
    uint64_t rows_accepted;  /* since start */
    uint64_t rows_flushed;
    uint64_t flushes;
    uint64_t flush_errors;
    uint64_t rejected_busy;  /* writes refused by the budget */
    uint64_t coalesced;      /* rotations merged into a flush still waiting (group commit) */
};
void bufmgr_get_stats(struct bufmgr *bm, struct bufmgr_stats *out);

#endif
