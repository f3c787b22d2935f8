/* hot.h - the hot tier: the rows of recently written Parquet files, kept in memory.
 *
 * A flush sorts a batch by time and writes one file per hour of data (storage.c).
 * Instead of freeing the batch afterwards, the storage sink hands it here with its
 * row order and the keys of the files it became. A query that lists one of those
 * files then reads its rows from memory (arc_batch_scan over the pinned segment:
 * only the rows inside the query's time bounds, only the columns it uses) instead
 * of opening and decompressing the Parquet file.
 *
 * The file on storage stays the source of truth. A key that is not here (evicted,
 * compacted away, written before a restart) is read from storage as before. An
 * entry is found by key and must have the catalog's row count; keys are never
 * reused (time, node, nonce, sequence), so an entry holds exactly its file's rows.
 *
 * Memory: at most max_bytes of batches and their memos; the oldest inserted go first.
 * A segment a query pinned stays valid until it is released, even if evicted
 * meanwhile (its bytes then no longer count).
 * Threads: every function may be called from any thread. */
#ifndef STORAGE_HOT_H
#define STORAGE_HOT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"

struct hot;

/* One file made from a batch: rows perm[start .. start+count) (or start.. when the
 * batch was already in time order). */
struct hot_file {
    const char *key; /* storage key, copied */
    size_t start, count;
};

/* A pinned file: rows[start .. start+count) of b, in time order. */
struct hot_seg {
    const struct batch *b;
    const uint32_t *rows; /* row order; NULL = b's rows are in time order */
    size_t start, count;
    void *pin; /* hot_release() it */
};

struct hot_stats {
    uint64_t bytes, files, batches; /* held now */
    uint64_t hits, misses, evicted; /* since start; evicted counts batches */
};

/* max_bytes 0 = keep nothing (every hot_put frees at once). */
struct hot *hot_new(size_t max_bytes);
/* Export arc_hot_{bytes,files} gauges and arc_hot_{hits,misses,evicted_batches}_total
 * counters to m (call once, before use). */
struct metrics;
void hot_set_metrics(struct hot *h, struct metrics *m);
/* Frees everything; no segment may still be pinned. Accepts NULL. */
void hot_free(struct hot *h);

/* Take ownership of b and perm (perm may be NULL: b in time order) and register
 * files[0..n) over them. A batch larger than the budget is freed at once; older
 * batches are evicted to make room. */
void hot_put(struct hot *h, struct batch *b, uint32_t *perm, const struct hot_file *files,
             size_t n);
/* Pin the rows of the file `key` if held and its row count is `rows`. */
bool hot_get(struct hot *h, const char *key, int64_t rows, struct hot_seg *out);
void hot_release(struct hot *h, struct hot_seg *s);
/* The file was deleted from storage (compaction, retention, delete): drop it. */
void hot_forget(struct hot *h, const char *key);
void hot_get_stats(struct hot *h, struct hot_stats *out);

/* Per-file memo: a row list derived from the whole file once (the engine keeps
 * each file's newest rows per key this way) and kept with it. `name` says what was
 * derived (e.g. "latest:host"). hot_memo_get: *rows valid while s stays pinned;
 * false when absent. hot_memo_put takes rows; it keeps them only if the file has
 * no memo of that name yet, its block has fewer than 8 and n <= count / 4.
 * s must be the file's whole segment, as hot_get returned it. */
bool hot_memo_get(struct hot *h, const struct hot_seg *s, const char *name, const uint32_t **rows,
                  size_t *n);
void hot_memo_put(struct hot *h, const struct hot_seg *s, const char *name, uint32_t *rows,
                  size_t n);

/* Narrow s to its rows with min_us <= time <= max_us (binary search; s stays pinned). */
void hot_seg_bound(struct hot_seg *s, int64_t min_us, int64_t max_us);

#endif
