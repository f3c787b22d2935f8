/* storage.h - where Parquet files live, and the flush pipeline that puts them there.
 *
 * A backend stores immutable objects under keys
 *   {database}/{measurement}/{YYYY}/{MM}/{DD}/{HH}/{name}.parquet
 * (UTC, the hour of the rows' own time). `local` keeps them under a root
 * directory; `s3` (backend names "s3", "minio", "gcs") in a bucket under an
 * optional prefix, through s3.h. Every backend implements the same small
 * interface (put, get/readable local path, delete, list, exists).
 *
 * The s3 backend (docs/s3.md): a flushed file is uploaded before its catalog
 * row is committed; files this node wrote go into the local read cache
 * (cache.h). If the store is unreachable the file goes into a durable local
 * spool ({data_dir}/spool, capped) and is listed with a "pending upload" flag
 * (catalog_s3.h); a background uploader uploads spooled files in order, under
 * the same key, when the store is back. Past the spool cap the flush fails with
 * ERR_BUSY and the buffers keep the rows (writes then get 503).
 *
 * storage_write_batch() is the buffer module's flush sink: it sorts the rows by
 * time, splits them by hour, writes one Parquet file per hour through DuckDB,
 * makes each durable (temp name, fsync, rename, fsync dir), and registers all of
 * them in ONE catalog transaction together with the measurement's columns. A crash
 * before that commit leaves only files the catalog does not list (orphans, removed
 * or adopted at start-up); a retry after a failure rewrites under new names, so a
 * row is never registered twice.
 * Thread: all functions are safe from any thread. */
#ifndef STORAGE_STORAGE_H
#define STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/err.h"

#include "storage/s3.h"

struct storage;
struct catalog;
struct duck;
struct metrics;

struct storage_opts {
    const char *backend;       /* "local" | "s3" | "minio" | "gcs" (the last three: s3) */
    const char *local_root;    /* local: root directory of the data files */
    const char *node_id;       /* unique per node, part of every file name */
    const char *compression;   /* "zstd" | "snappy" | "none" */
    int compression_level;     /* zstd level */
    struct catalog *catalog;   /* borrowed */
    struct duck *duck;         /* borrowed */
    struct metrics *metrics;   /* may be NULL */
    struct hot *hot;           /* borrowed; NULL = flushed batches are freed (hot.h) */
    /* remote backends only */
    struct s3_config s3;       /* endpoint, keys, bucket, prefix, ... (strings borrowed) */
    bool create_bucket;        /* create the bucket when it does not exist */
    const char *cache_dir;     /* read cache of remote files */
    uint64_t cache_max_bytes;  /* cache cap; 0 = none */
    int64_t cache_pin_ms;      /* a path handed to a query stays cached this long
                                  (the query timeout); 0 = 10 minutes */
    const char *spool_dir;     /* files waiting for an unreachable store */
    uint64_t spool_max_bytes;  /* spool cap; past it flushes fail with ERR_BUSY */
    bool no_uploader;          /* offline tools: do not start the background uploader */
};

/* Open the backend. Remote: creates the client, checks access to the bucket
 * (creating it when create_bucket and it is missing) and fails with a message
 * naming endpoint, bucket and S3 error code when the credentials are refused;
 * an unreachable store only logs a warning (the spool takes the files). Then
 * recovers upload intents of a previous run and starts the uploader. */
enum err storage_open(const struct storage_opts *o, struct storage **out, struct errbuf *eb);
/* Stop the uploader (pending files stay spooled for the next start), free st. */
void storage_close(struct storage *st);

/* True for the s3 backend. */
bool storage_is_remote(const struct storage *st);

struct bufmgr_commit;
struct hot;
/* The flush sink (matches bufmgr_sink_fn with ctx = struct storage *). */
enum err storage_write_batch(void *ctx, const char *db, const struct batch *b,
                             struct bufmgr_commit *cm, struct errbuf *eb);

/* Absolute local path where key is (or would be) readable without fetching:
 * local backend: under the root; s3: its place in the cache. Writes into out;
 * ERR_LIMIT if it does not fit. Does not download: queries use
 * storage_read_path(). */
enum err storage_local_path(struct storage *st, const char *key, char *out, size_t out_len);

/* Absolute local path a query can read for key NOW: local backend: under the
 * root; s3: the cached copy (downloaded on a miss, atomically: temp name then
 * rename), or the spooled copy while its upload is pending. The path stays
 * valid for at least cache_pin_ms (the cache does not evict it before).
 * ERR_LIMIT, ERR_NOTFOUND (object missing), transient s3 errors (ERR_BUSY). */
enum err storage_read_path(struct storage *st, const char *key, char *out, size_t out_len,
                           struct errbuf *eb);

/* Call fn for every .parquet key in storage (local: directory walk of the root;
 * s3: bucket listing under the prefix), with its size. */
typedef int storage_list_fn(void *ctx, const char *key, uint64_t size);
enum err storage_list(struct storage *st, storage_list_fn *fn, void *ctx, struct errbuf *eb);

/* Does key exist in storage? */
enum err storage_exists(struct storage *st, const char *key, bool *out, struct errbuf *eb);

/* Files waiting in the spool for the store to come back (s3; 0 for local). */
size_t storage_pending_uploads(struct storage *st);

/* `arc catalog rebuild`: make the catalog's files table list exactly the
 * .parquet objects in storage (plus files still waiting in the spool), reading
 * each file's row count, time range and columns with DuckDB (remote files are
 * fetched through the cache). ONE catalog transaction. */
enum err storage_rebuild_catalog(struct storage *st, size_t *files, size_t *added,
                                 size_t *removed, struct errbuf *eb);

/* Root directory of the local backend (borrowed). */
const char *storage_root(const struct storage *st);

/* Data files under the root that the catalog does not list are what a crash
 * between a file's rename and its catalog commit leaves. With adopt (WAL off: the
 * rows exist nowhere else) they are registered from their own Parquet metadata;
 * otherwise (WAL on: replay re-creates the rows) they are deleted, as are files
 * that cannot be read. Stale temp files are always deleted. */
enum err storage_remove_orphans(struct storage *st, bool adopt, size_t *removed,
                                size_t *adopted, struct errbuf *eb);

/* Delete one object (after the catalog no longer lists it). */
enum err storage_delete(struct storage *st, const char *key, struct errbuf *eb);

/* Compaction outputs are named STORAGE_COMPACTED_PREFIX...: start-up never adopts
 * one the catalog does not list (its swap did not commit; the inputs still count). */
#define STORAGE_COMPACTED_PREFIX "c-"
/* A fresh temp path (under the root's .tmp, swept at start-up) and a fresh unique
 * basename for a compaction output. */
void storage_new_names(struct storage *st, char *tmp, size_t tmp_len, char *base,
                       size_t base_len);
/* Delete every file in the catalog's retired_files (replaced by compaction) that no
 * file row lists, and forget them. Only when no query can be reading them: at
 * start-up (storage_remove_orphans calls it first). */
enum err storage_purge_retired(struct storage *st, size_t *purged, struct errbuf *eb);

#endif
