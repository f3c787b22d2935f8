/* storage.h - where Parquet files live, and the flush pipeline that puts them there.
 *
 * A backend stores immutable objects under keys
 *   {database}/{measurement}/{YYYY}/{MM}/{DD}/{HH}/{name}.parquet
 * (UTC, the hour of the rows' own time). `local` keeps them under a root
 * directory; `s3` (later) in a bucket. Every backend implements the same small
 * interface (put, local path for reading, delete, list, exists).
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

struct storage;
struct catalog;
struct duck;
struct metrics;

struct storage_opts {
    const char *backend;       /* "local" (others later) */
    const char *local_root;    /* local: root directory of the data files */
    const char *node_id;       /* unique per node, part of every file name */
    const char *compression;   /* "zstd" | "snappy" | "none" */
    int compression_level;     /* zstd level */
    struct catalog *catalog;   /* borrowed */
    struct duck *duck;         /* borrowed */
    struct metrics *metrics;   /* may be NULL */
};

enum err storage_open(const struct storage_opts *o, struct storage **out, struct errbuf *eb);
void storage_close(struct storage *st);

struct bufmgr_commit;
/* The flush sink (matches bufmgr_sink_fn with ctx = struct storage *). */
enum err storage_write_batch(void *ctx, const char *db, const struct batch *b,
                             struct bufmgr_commit *cm, struct errbuf *eb);

/* Absolute local path a query engine can read for key (local backend: under the
 * root). Writes into out; ERR_LIMIT if it does not fit. */
enum err storage_local_path(struct storage *st, const char *key, char *out, size_t out_len);

/* Root directory of the local backend (borrowed). */
const char *storage_root(const struct storage *st);

/* Remove data files under the root that the catalog does not list (orphans of a
 * crash between a file's rename and its catalog commit) and stale temp files.
 * Returns the number removed in *removed. */
enum err storage_remove_orphans(struct storage *st, size_t *removed, struct errbuf *eb);

/* Delete one object (after the catalog no longer lists it). */
enum err storage_delete(struct storage *st, const char *key, struct errbuf *eb);

#endif
