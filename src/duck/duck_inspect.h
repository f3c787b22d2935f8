/* duck_inspect.h - read what a Parquet file holds (for `arc catalog rebuild`).
 *
 * Runs on the WRITER instance (full file access, never user SQL). Kept out of
 * duck.h so the storage module can add it without touching the core of the
 * duck module. Thread: safe from any thread (takes a pooled writer connection). */
#ifndef DUCK_DUCK_INSPECT_H
#define DUCK_DUCK_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct duck;

struct duck_pq_column {
    char *name;  /* owned */
    char *type;  /* DuckDB type name (DOUBLE, BIGINT, UBIGINT, BOOLEAN, VARCHAR, ...) */
    bool is_tag; /* listed in the file's arc_tags key-value metadata */
};

struct duck_pq_info {
    int64_t rows;
    int64_t min_time_us, max_time_us; /* of column "time"; 0 when no rows */
    struct duck_pq_column *cols;      /* every column but "time", file order */
    size_t ncols;
    char *compacted_from;             /* compaction output: comma-joined input names in
                                         the same directory (metadata arc_compacted_from);
                                         NULL otherwise */
};

/* Inspect the Parquet file at path. ERR_DB / ERR_INVAL (no "time" column) with
 * DuckDB's message. On success *out is filled (duck_pq_info_release). */
enum err duck_inspect_parquet(struct duck *d, const char *path, struct duck_pq_info *out,
                              struct errbuf *eb);
void duck_pq_info_release(struct duck_pq_info *info);

#endif
