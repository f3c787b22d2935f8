/* engine_int.h - what engine.c and engine_hot.c share inside the query engine. */
#ifndef QUERY_ENGINE_INT_H
#define QUERY_ENGINE_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch;
struct buf;
struct catalog_column;
struct catalog_file;
struct duck;
struct hot;
struct hot_seg;
struct plan_ref;
struct query_plan;
struct query_profile;
struct duck_result;

/* What one reference of a running query reads besides Parquet files. */
struct snap {
    struct batch **batches;
    size_t nbatches;
    uint64_t *scan_ids;  /* one per batch, 0 = not registered */
    struct hot_seg *hot; /* pinned in-memory files (storage/hot.h) */
    size_t nhot;
    uint64_t *hot_scans; /* arc_batch_scan ids over hot segments */
    size_t nhot_scans;
    uint32_t **sel; /* row selections made for hot segments (owned) */
    size_t nsel;
    bool latest_cut; /* the hot rows are exactly each key group's newest */
    struct catalog_column *cols; /* the measurement's columns when the snapshot was taken */
    size_t ncols;
    struct catalog_file *files;  /* its files in the time bounds (path NULL: pinned) */
    size_t nfiles;
    size_t pinned;               /* files read from memory (0 or nfiles) */
    size_t buffered;             /* rows in batches */
    bool latest;                 /* "latest row per key" narrowing applies */
};

/* The catalog's spelling of column `name` (case-insensitive), or NULL. */
const char *qe_column_named(const struct catalog_column *cols, size_t n, const char *name);
/* Will the engine wrap this reference for "latest row per key" (plan.h)? */
bool qe_latest_applies(const struct query_plan *plan, const struct catalog_column *cols,
                       size_t ncols);
/* If the hot tier holds every one of files[0..nfiles), pin them into s, narrowed to
 * [min_us, max_us] and ref's conjuncts, or (latest) to each file's newest rows per
 * key (cut across files too unless skip_cut), set their paths to NULL (freed) and
 * return nfiles; otherwise pin nothing and return 0 (the files are read from storage). */
size_t qe_pin_hot(struct hot *h, struct snap *s, struct catalog_file *files, size_t nfiles,
                  int64_t min_us, int64_t max_us, const struct query_plan *plan,
                  const struct plan_ref *ref, const struct catalog_column *cols, size_t ncols,
                  bool latest, bool skip_cut);
/* Append `UNION ALL BY NAME SELECT * FROM arc_batch_scan(id)` to view for each
 * column list among s's non-empty pinned segments. */
void qe_add_hot_scans(struct duck *d, struct snap *s, struct buf *view);
/* The native executor (engine_native.c): answer plan's only reference from s into
 * *res (true), or leave it to DuckDB (false: no record of DuckDB's names and types
 * for these columns yet, or nx_exec declined). */
bool qe_try_native(struct query_plan *plan, struct snap *s, struct query_profile *prof,
                   struct duck_result **res);
/* Keep the names and types DuckDB gave plan's result res (a native-shaped plan). */
void qe_record_native(struct query_plan *plan, const struct snap *s, struct duck_result *res);
/* Unregister the scans, unpin the segments, free the selections (after the result). */
void qe_release_hot(struct duck *d, struct hot *h, struct snap *s);

#endif
