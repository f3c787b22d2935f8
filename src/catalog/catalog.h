/* catalog.h - the SQLite catalog {data_dir}/arc.db: tokens now; files, schemas,
 * WAL checkpoints and retention policies as later migrations add them.
 *
 * One SQLite connection per struct catalog, in WAL journal mode with a busy
 * timeout, so `arc token ...` run offline against the same file works while the
 * server holds it open. Schema changes are numbered migrations (PRAGMA
 * user_version); catalog_open() applies the missing ones, each in its own
 * transaction, so reopening is idempotent and two processes opening at once
 * cannot apply one migration twice.
 *
 * Thread: every public function is safe from any thread; each takes the
 * catalog's mutex for the whole call. Calls may block on disk (and on another
 * process's write lock for up to CATALOG_BUSY_TIMEOUT_MS): never call them from
 * an HTTP event-loop thread.
 *
 * Times stored in the catalog are INTEGER microseconds since the Unix epoch, UTC. */
#ifndef CATALOG_CATALOG_H
#define CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CATALOG_FILE_NAME "arc.db"
#define CATALOG_BUSY_TIMEOUT_MS 5000 /* wait this long for another process's lock */
#define CATALOG_TOKEN_HASH_LEN 32    /* SHA-256 */

struct catalog; /* opaque; defined in catalog_int.h */

/* Open (creating data_dir with mode 0755 and arc.db if missing) and migrate the
 * catalog. On success *out owns a new handle (catalog_close).
 * ERR_IO: the directory or file could not be created/opened. ERR_DB: SQLite or a
 * migration failed. ERR_CORRUPT: arc.db was written by a newer Arc (its schema
 * version is above the highest this binary knows). */
enum err catalog_open(const char *data_dir, struct catalog **out, struct errbuf *eb);

/* Close the connection and free c. Accepts NULL. No call may be in progress. */
void catalog_close(struct catalog *c);

/* Run one or more SQL statements that return no rows (DDL, simple updates).
 * ERR_DB with SQLite's message on failure. */
enum err catalog_exec(struct catalog *c, const char *sql, struct errbuf *eb);

/* Schema version now in the file (number of migrations applied). */
int catalog_schema_version(struct catalog *c);
/* Highest schema version this binary knows. */
int catalog_schema_latest(void);
/* Full path of arc.db; borrowed, lives as long as c. */
const char *catalog_path(const struct catalog *c);

/* ---- tokens (catalog_tokens.c) ------------------------------------------- */

/* One row of the tokens table. Strings are owned by the struct after a get/list
 * (catalog_token_release); for insert/update they are borrowed from the caller. */
struct catalog_token {
    int64_t id;                                /* INTEGER PRIMARY KEY, > 0 */
    char *name;                                /* unique, not NULL */
    char *description;                         /* "" when none */
    uint8_t token_hash[CATALOG_TOKEN_HASH_LEN]; /* SHA-256 of the secret; never the secret */
    char *permissions;                         /* comma list: "read,write" */
    char *databases;                           /* JSON array text, NULL = all databases */
    int64_t created_at_us;                     /* µs since epoch */
    int64_t last_used_at_us;                   /* µs since epoch, 0 = never used */
    int64_t expires_at_us;                     /* µs since epoch, 0 = never expires */
    bool enabled;
};

/* One pending last-used time, for catalog_token_touch(). */
struct catalog_token_touch {
    int64_t id;
    int64_t last_used_at_us;
};

/* Free the strings of t (not t itself) and zero it. Accepts a zeroed struct. */
void catalog_token_release(struct catalog_token *t);
/* Release each of the n rows and free the array. Accepts NULL. */
void catalog_token_list_free(struct catalog_token *rows, size_t n);

/* Insert t (its id is ignored; created_at_us 0 means now). *id_out (may be NULL)
 * gets the new id. ERR_CONFLICT if the name or the hash already exists (the
 * message says which). */
enum err catalog_token_insert(struct catalog *c, const struct catalog_token *t,
                              int64_t *id_out, struct errbuf *eb);

/* All rows ordered by id. *rows_out is a new array (catalog_token_list_free), or
 * NULL when *n_out is 0. */
enum err catalog_token_list(struct catalog *c, struct catalog_token **rows_out, size_t *n_out,
                            struct errbuf *eb);

/* Look one row up. *out is filled (caller releases) only on success.
 * ERR_NOTFOUND if no such row. */
enum err catalog_token_get_by_id(struct catalog *c, int64_t id, struct catalog_token *out,
                                 struct errbuf *eb);
enum err catalog_token_get_by_name(struct catalog *c, const char *name,
                                   struct catalog_token *out, struct errbuf *eb);
enum err catalog_token_get_by_hash(struct catalog *c, const uint8_t hash[CATALOG_TOKEN_HASH_LEN],
                                   struct catalog_token *out, struct errbuf *eb);

/* Overwrite name, description, permissions, databases, expires_at and enabled of
 * row t->id (hash, created_at and last_used_at are left alone).
 * ERR_NOTFOUND: no such id. ERR_CONFLICT: the new name is taken. */
enum err catalog_token_update(struct catalog *c, const struct catalog_token *t,
                              struct errbuf *eb);

/* Replace the hash of row id (rotation). ERR_NOTFOUND, ERR_CONFLICT as above. */
enum err catalog_token_set_hash(struct catalog *c, int64_t id,
                                const uint8_t hash[CATALOG_TOKEN_HASH_LEN], struct errbuf *eb);

/* Delete row id. ERR_NOTFOUND if there was none. */
enum err catalog_token_delete(struct catalog *c, int64_t id, struct errbuf *eb);

/* Number of rows. */
enum err catalog_token_count(struct catalog *c, int64_t *n_out, struct errbuf *eb);

/* Record last-used times of n rows in one transaction. A time never moves
 * backwards (MAX with the stored one); ids that no longer exist are skipped. */
enum err catalog_token_touch(struct catalog *c, const struct catalog_token_touch *items,
                             size_t n, struct errbuf *eb);

/* ---- data files, schemas, databases, metadata (catalog_files.c) ----------- */

/* One live data file. Strings are owned after a list (catalog_files_free);
 * borrowed for catalog_files_add. */
struct catalog_file {
    int64_t id;
    char *database;
    char *measurement;
    char *path;           /* storage key: {db}/{m}/YYYY/MM/DD/HH/{name}.parquet */
    int64_t min_time_us;  /* smallest row time in the file */
    int64_t max_time_us;  /* largest row time in the file */
    int64_t rows;
    int64_t bytes;
    int64_t created_at_us;
    uint64_t wal_lsn_lo;  /* WAL records [lo, hi] of this measurement are in the file's */
    uint64_t wal_lsn_hi;  /* flush (0, 0: written without a WAL) */
};

/* One column of a measurement; borrowed strings for add, owned after a list. */
struct catalog_column {
    const char *name;
    const char *type;     /* DuckDB type name: DOUBLE, BIGINT, UBIGINT, BOOLEAN, VARCHAR */
    bool is_tag;
};

/* Register n files of (db, measurement) and merge cols into the measurement's
 * schema (new columns appended; BIGINT widened to DOUBLE), creating the database
 * row if needed, all in ONE transaction: either every file is listed or none. */
enum err catalog_files_add(struct catalog *c, const char *db, const char *measurement,
                           const struct catalog_file *files, size_t n,
                           const struct catalog_column *cols, size_t ncols, struct errbuf *eb);

/* WAL replay: call fn for every distinct (db, measurement, lo, hi) range of
 * committed files with hi > above_lsn. A record with LSN in a range of its
 * measurement is already in Parquet and must not be replayed again. */
typedef void catalog_range_fn(void *ctx, const char *db, const char *measurement, uint64_t lo,
                              uint64_t hi);
enum err catalog_wal_ranges(struct catalog *c, uint64_t above_lsn, catalog_range_fn *fn,
                            void *ctx, struct errbuf *eb);
/* Highest wal_lsn_hi of any file ever registered (0 if none). */
enum err catalog_wal_max_lsn(struct catalog *c, uint64_t *out, struct errbuf *eb);

/* Is a file with this storage key listed? */
enum err catalog_file_exists(struct catalog *c, const char *path, bool *out, struct errbuf *eb);

/* Files of db (NULL = every database) and measurement (NULL = every one) whose
 * time range overlaps [min_us, max_us] (inclusive), ordered by min time.
 * *out is a new array of *n rows (catalog_files_free). */
enum err catalog_files_list(struct catalog *c, const char *db, const char *measurement,
                            int64_t min_us, int64_t max_us, struct catalog_file **out, size_t *n,
                            struct errbuf *eb);
void catalog_files_free(struct catalog_file *files, size_t n);

/* ---- compaction (catalog_compact.c) ---- */

/* An hour partition of one measurement: hour_us = floor(time / 1 h) * 1 h. */
struct catalog_partition {
    char *database, *measurement;
    int64_t hour_us;
    size_t files;
};
/* Partitions whose hour ended by hour_end_before_us with >= min_files files whose
 * wal_lsn_hi <= max_lsn (files whose WAL records are all checkpointed); most files
 * first, at most limit. */
enum err catalog_compaction_candidates(struct catalog *c, unsigned min_files,
                                       int64_t hour_end_before_us, uint64_t max_lsn, size_t limit,
                                       struct catalog_partition **out, size_t *n,
                                       struct errbuf *eb);
void catalog_partitions_free(struct catalog_partition *p, size_t n);
/* Files of one partition with wal_lsn_hi <= max_lsn, smallest first (every field,
 * LSNs included; catalog_files_free). */
enum err catalog_partition_files(struct catalog *c, const char *db, const char *measurement,
                                 int64_t hour_us, uint64_t max_lsn, struct catalog_file **out,
                                 size_t *n, struct errbuf *eb);
/* One transaction: unlist old_paths (each must still be listed, else ERR_CONFLICT
 * and nothing changes), list them in retired_files, register merged. */
enum err catalog_files_replace(struct catalog *c, const char *db, const char *measurement,
                               const char *const *old_paths, size_t nold,
                               const struct catalog_file *merged, struct errbuf *eb);
/* Retired files (replaced by compaction, maybe still on storage), oldest first;
 * forget one once it is deleted. */
enum err catalog_retired_list(struct catalog *c, char ***paths, size_t *n, struct errbuf *eb);
enum err catalog_retired_forget(struct catalog *c, const char *path, struct errbuf *eb);

/* Columns of (db, measurement) in position order. *out is a new array whose
 * strings are owned (catalog_columns_free). */
enum err catalog_columns_list(struct catalog *c, const char *db, const char *measurement,
                              struct catalog_column **out, size_t *n, struct errbuf *eb);
void catalog_columns_free(struct catalog_column *cols, size_t n);

/* A measurement with its file statistics. */
struct catalog_measurement {
    char *database, *measurement;
    int64_t files, rows, bytes, min_time_us, max_time_us;
};
/* Measurements known in db (NULL = all), with file counts (0 files: schema only). */
enum err catalog_measurements_list(struct catalog *c, const char *db,
                                   struct catalog_measurement **out, size_t *n,
                                   struct errbuf *eb);
void catalog_measurements_free(struct catalog_measurement *m, size_t n);

/* Databases: list (names, sorted), create (ERR_CONFLICT if it exists), drop
 * (removes its rows in files/columns and returns the dropped file keys in
 * *paths, *npaths, to be deleted from storage by the caller; ERR_NOTFOUND). */
enum err catalog_databases_list(struct catalog *c, char ***names, size_t *n, struct errbuf *eb);
enum err catalog_database_create(struct catalog *c, const char *name, struct errbuf *eb);
enum err catalog_database_drop(struct catalog *c, const char *name, char ***paths,
                               size_t *npaths, struct errbuf *eb);
void catalog_strings_free(char **s, size_t n);

/* Small key/value metadata (node id, WAL checkpoint, ...). get: ERR_NOTFOUND. */
enum err catalog_meta_get(struct catalog *c, const char *key, char **value, struct errbuf *eb);
enum err catalog_meta_set(struct catalog *c, const char *key, const char *value,
                          struct errbuf *eb);

#endif
