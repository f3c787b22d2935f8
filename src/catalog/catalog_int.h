/* catalog_int.h - private to src/catalog: the connection, its lock, and helpers
 * for the catalog_*.c files that run prepared statements.
 *
 * Pattern for a new catalog_<thing>.c function:
 *
 *     catalog_lock(c);
 *     rc = catalog_prepare_locked(c, "SELECT ...", &st, eb);
 *     if (rc != ERR_OK) goto out_unlock;
 *     ... sqlite3_bind_* / sqlite3_step ...
 *     sqlite3_finalize(st);
 *   out_unlock:
 *     catalog_unlock(c);
 *
 * Multi-statement changes that must be atomic use catalog_begin_locked() /
 * catalog_commit_locked() / catalog_rollback_locked() under one lock. Never call
 * a public catalog_* function while holding the lock (the mutex is not recursive).
 * Never include this header from outside src/catalog. */
#ifndef CATALOG_CATALOG_INT_H
#define CATALOG_CATALOG_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "catalog/catalog.h"

/* Statements every query runs (catalog_cached_locked): prepared once, reset after use. */
enum catalog_cached { CAT_ST_FILES_LIST, CAT_ST_COLUMNS_LIST, CAT_ST_N };

struct catalog {
    sqlite3 *db;        /* the one connection; used only under mu */
    pthread_mutex_t mu; /* serialises every use of db */
    char *path;         /* {data_dir}/arc.db, owned */
    sqlite3_stmt *cached[CAT_ST_N];
};

void catalog_lock(struct catalog *c);
void catalog_unlock(struct catalog *c);

/* Record SQLite's current error on c->db in eb as "<what>: <sqlite message>".
 * Returns ERR_CONFLICT for constraint violations, ERR_BUSY when the database
 * stayed locked past the busy timeout, ERR_DB otherwise. Lock held. */
enum err catalog_sql_error(struct catalog *c, const char *what, struct errbuf *eb);

/* Prepare one statement. Lock held. */
enum err catalog_prepare_locked(struct catalog *c, const char *sql, sqlite3_stmt **out,
                                struct errbuf *eb);
/* The cached statement `slot` (prepared from sql the first time), reset and unbound:
 * hand it back with catalog_cached_done, never finalize it. Lock held. */
enum err catalog_cached_locked(struct catalog *c, enum catalog_cached slot, const char *sql,
                               sqlite3_stmt **out, struct errbuf *eb);
void catalog_cached_done(sqlite3_stmt *st);
/* Run SQL that returns no rows. Lock held. */
enum err catalog_exec_locked(struct catalog *c, const char *sql, struct errbuf *eb);

/* BEGIN IMMEDIATE (takes the write lock now, so the transaction cannot fail with
 * SQLITE_BUSY halfway), COMMIT, ROLLBACK. Lock held. Rollback never fails. */
enum err catalog_begin_locked(struct catalog *c, struct errbuf *eb);
enum err catalog_commit_locked(struct catalog *c, struct errbuf *eb);
void catalog_rollback_locked(struct catalog *c);

/* Copy a TEXT column into a new string (NULL column -> NULL). */
char *catalog_column_strdup(sqlite3_stmt *st, int col);

/* The columns a file listing selects, in this order (CATALOG_FILE_COLS), and the
 * loop that steps st into a new array of catalog_file (*out, *n; catalog_files_free).
 * what names the listing in an error. Lock held. */
#define CATALOG_FILE_COLS                                                                      \
    "id, database, measurement, path, min_time, max_time, row_count, size_bytes, created_at, " \
    "wal_lsn_lo, wal_lsn_hi"
enum err catalog_files_collect(struct catalog *c, sqlite3_stmt *st, const char *what,
                               struct catalog_file **out, size_t *n, struct errbuf *eb);

#endif
