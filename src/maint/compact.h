/* compact.h - background compaction: many small Parquet files of one hour of one
 * measurement become one file, without ever showing a row twice or losing one.
 *
 * A job (one hour partition):
 *  1. pick the partition's files smallest first while their sum stays within the
 *     target size (at least two), only files whose WAL records are all checkpointed
 *     (so the merged file's LSN range covers nothing a replay still needs);
 *  2. DuckDB (writer instance) reads them and writes one file sorted by time into the
 *     storage temp dir; the row count must equal the catalog's sum, else the job
 *     fails and changes nothing;
 *  3. fsync, rename into the hour directory as c-<...>.parquet, fsync the directory;
 *  4. ONE catalog transaction unlists the inputs, lists them in retired_files and
 *     registers the merged file: queries see either the inputs or the merged file;
 *  5. the inputs are deleted once every query that started before step 4 ended
 *     (a query may still read them); at start-up, before any query, all retired
 *     files are deleted (storage_purge_retired).
 * A crash before 4 leaves an unlisted c-*.parquet that start-up deletes (never
 * adopts); a crash after 4 leaves retired inputs that start-up deletes (never adopts).
 *
 * Local storage only: with the s3 backend the compactor stays off (logged). */
#ifndef ARC_MAINT_COMPACT_H
#define ARC_MAINT_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "duck/duck.h"

struct catalog;
struct storage;
struct query_engine;
struct metrics;

struct compactor_opts {
    struct catalog *catalog;
    struct duck *duck;
    struct storage *storage;
    struct query_engine *query;   /* for the oldest running query; may be NULL */
    struct metrics *metrics;      /* may be NULL */
    bool enabled;                 /* run passes on the schedule (trigger works either way) */
    const char *schedule;         /* cron, UTC; NULL = "5 * * * *" */
    int64_t min_age_us;           /* every input file and the hour at least this old */
    unsigned min_files;           /* partitions with fewer files are left alone */
    uint64_t target_bytes;        /* inputs per job add up to at most this */
    unsigned jobs;                /* partitions compacted at once */
    bool wal_enabled;             /* WAL on: only checkpointed files are merged */
    struct duck_parquet_opts pq;  /* codec of the merged files */
};

struct compactor;

enum err compactor_new(const struct compactor_opts *o, struct compactor **out,
                       struct errbuf *eb);
/* Stop the scheduler (a running pass finishes first) and free. Accepts NULL. */
void compactor_free(struct compactor *c);

struct compact_pass {
    size_t partitions;     /* candidates looked at */
    size_t jobs_ok, jobs_failed;
    size_t files_in, files_out;
    uint64_t rows, bytes_in, bytes_out;
    double seconds;
};

/* Run one pass now, on the calling thread (serialised with the scheduler's). */
enum err compactor_run(struct compactor *c, struct compact_pass *out, struct errbuf *eb);

/* JSON bodies of the endpoints (fields appended to out, no braces):
 * status/stats: configuration, totals, the last pass, pending deletions;
 * candidates: "candidates":[{database, measurement, hour, files}...]. */
void compactor_status_json(struct compactor *c, struct buf *out);
enum err compactor_candidates_json(struct compactor *c, struct buf *out, struct errbuf *eb);

/* Delete retired inputs no running query can read any more. Called by every pass
 * and by the scheduler's tick; exposed for tests. */
void compactor_sweep(struct compactor *c);

#endif
