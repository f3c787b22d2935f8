/* cache.h - the on-disk cache of remote Parquet files that queries read.
 *
 * DuckDB here has no S3 reader, so a query on the s3 backend reads local copies:
 * {dir}/{key}. The cache is a size-capped LRU. Safety under concurrent queries
 * is by lease: s3cache_acquire()/s3cache_add() pin the entry for pin_ms (the
 * query timeout), and eviction never removes a pinned entry, so a file handed
 * to a query stays on disk for as long as that query may run. When every entry
 * is pinned the cache goes over its cap for a while instead of failing queries
 * (soft cap); the next eviction pass catches up. A file already opened by DuckDB
 * would survive its unlink anyway (POSIX), the lease covers the gap between
 * handing out the path and DuckDB opening it.
 *
 * Files enter the cache by rename from a temp file in {dir}/.tmp (downloads) or
 * from the flush (files this node wrote), so a reader never sees half a file.
 * At open the directory is scanned and the index rebuilt (oldest mtime = least
 * recently used); stale temp files are removed.
 *
 * Metrics: arc_storage_cache_hits_total, _misses_total, _evictions_total and
 * the gauge arc_storage_cache_bytes.
 * Thread: every function is safe from any thread (one mutex). */
#ifndef STORAGE_CACHE_H
#define STORAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct metrics;
struct s3cache;

struct s3cache_opts {
    const char *dir;         /* cache root (created if missing) */
    uint64_t max_bytes;      /* size cap; 0 = no cap */
    int64_t pin_ms;          /* lease given by acquire/add; 0 = no lease */
    struct metrics *metrics; /* may be NULL */
};

struct s3cache_stats {
    uint64_t bytes, files;                /* what the index holds now */
    uint64_t hits, misses, evictions;     /* since open */
};

/* Open the cache in o->dir, scanning what is already there. */
enum err s3cache_open(const struct s3cache_opts *o, struct s3cache **out, struct errbuf *eb);
/* Free the index (files stay on disk). Accepts NULL. */
void s3cache_free(struct s3cache *c);

/* Path of key inside the cache (whether or not it is cached). ERR_LIMIT. */
enum err s3cache_path(const struct s3cache *c, const char *key, char *out, size_t out_len);
/* A fresh temp file name in {dir}/.tmp for a download. ERR_LIMIT. */
enum err s3cache_tmp_path(struct s3cache *c, char *out, size_t out_len);

/* If key is cached: mark it most recently used, extend its lease, count a hit
 * and return true. Otherwise count a miss and return false. */
bool s3cache_acquire(struct s3cache *c, const char *key);

/* Register key, whose file is now at s3cache_path(key), with its size; leased
 * and most recently used. Re-adding a key updates its size. Then evicts
 * unpinned least-recently-used entries while over the cap. */
void s3cache_add(struct s3cache *c, const char *key, uint64_t bytes);

/* Forget key and delete its file (object deleted from storage). */
void s3cache_remove(struct s3cache *c, const char *key);

/* Evict while over the cap (also done by s3cache_add). Returns files evicted. */
size_t s3cache_evict(struct s3cache *c);

void s3cache_stats(struct s3cache *c, struct s3cache_stats *out);

#endif
