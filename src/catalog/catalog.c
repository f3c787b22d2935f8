/* catalog.c - open arc.db, apply schema migrations, serialise access.
 *
 * Design: a single SQLite connection guarded by a mutex. The catalog is small and
 * its writes are rare (a token change, a file flushed every few seconds), so one
 * connection is simpler than a pool and cannot deadlock against itself; readers
 * that must be fast (auth on the request path) keep their own in-memory copy and
 * never come here. WAL journal mode lets another process (the offline
 * `arc token` CLI) read and write the same file while the server runs; the busy
 * timeout makes such a writer wait instead of failing.
 *
 * Migrations: `migrations[]` below is the ordered schema history. Entry i brings
 * the schema from version i to i + 1 (PRAGMA user_version). Append only: never
 * edit or reorder an entry that has shipped. Each migration runs inside
 * BEGIN IMMEDIATE and re-reads user_version under that write lock, so two
 * processes opening a fresh file at once apply each migration exactly once. */
#include "catalog/catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog/catalog_int.h"
#include "core/fileio.h"
#include "core/mem.h"

/* ---- schema history (append only) ---------------------------------------- */

static const char *const migrations[] = {
    /* 1: API tokens. Only the SHA-256 of a secret is stored. permissions is a
     * comma list of read,write,delete,admin; databases is a JSON array of names,
     * NULL meaning every database. Times are µs since the epoch; 0 = never. */
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* ids are never reused */
    "  name TEXT UNIQUE NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  token_hash BLOB UNIQUE NOT NULL CHECK (length(token_hash) = 32),"
    "  permissions TEXT NOT NULL DEFAULT 'read,write',"
    "  databases TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  enabled INTEGER NOT NULL DEFAULT 1"
    ");",
    /* 2: data files, measurement schemas, databases, node metadata (catalog_files.c).
     * files.path is the storage key {db}/{m}/YYYY/MM/DD/HH/{name}.parquet; time
     * range and counts let queries prune without opening files. columns keeps one
     * type per (db, measurement, column): the schema writes are checked against. */
    "CREATE TABLE databases ("
    "  name TEXT PRIMARY KEY,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE files ("
    "  id INTEGER PRIMARY KEY,"
    "  database TEXT NOT NULL,"
    "  measurement TEXT NOT NULL,"
    "  path TEXT UNIQUE NOT NULL,"
    "  min_time INTEGER NOT NULL,"
    "  max_time INTEGER NOT NULL,"
    "  row_count INTEGER NOT NULL,"
    "  size_bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  wal_lsn_lo INTEGER NOT NULL DEFAULT 0,"
    "  wal_lsn_hi INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX files_by_lsn ON files (wal_lsn_hi) WHERE wal_lsn_hi > 0;"
    "CREATE INDEX files_by_time ON files (database, measurement, min_time, max_time);"
    "CREATE TABLE columns ("
    "  database TEXT NOT NULL,"
    "  measurement TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  is_tag INTEGER NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY (database, measurement, name)"
    ");"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ");",
    /* 3: upload intents of the s3 storage backend (catalog_s3.c). state 0: PUT in
     * progress (the trigger deletes it in the transaction that lists the file);
     * state 1: spooled while the store was unreachable = the file row's "pending
     * upload" flag, cleared by the uploader. id orders the uploads. */
    "CREATE TABLE s3_uploads ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  path TEXT UNIQUE NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TRIGGER s3_uploads_listed AFTER INSERT ON files BEGIN"
    "  DELETE FROM s3_uploads WHERE path = NEW.path AND state = 0;"
    "END;",
    /* 4: files replaced by compaction (catalog_compact.c), listed in the same
     * transaction that swaps them for the merged file, deleted from storage once no
     * query can still read them (and at start-up, before orphans are judged). */
    "CREATE TABLE retired_files ("
    "  path TEXT PRIMARY KEY,"
    "  retired_at INTEGER NOT NULL"
    ");",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int catalog_schema_latest(void)
{
    return N_MIGRATIONS;
}

/* ---- helpers shared with catalog_*.c (catalog_int.h) --------------------- */

void catalog_lock(struct catalog *c)
{
    pthread_mutex_lock(&c->mu);
}

void catalog_unlock(struct catalog *c)
{
    pthread_mutex_unlock(&c->mu);
}

enum err catalog_sql_error(struct catalog *c, const char *what, struct errbuf *eb)
{
    int prim = sqlite3_errcode(c->db) & 0xff;
    enum err code = ERR_DB;

    if (prim == SQLITE_CONSTRAINT)
        code = ERR_CONFLICT;
    else if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        code = ERR_BUSY;
    return errbuf_set(eb, code, "%s: %s", what, sqlite3_errmsg(c->db));
}

enum err catalog_prepare_locked(struct catalog *c, const char *sql, sqlite3_stmt **out,
                                struct errbuf *eb)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, out, NULL) != SQLITE_OK)
        return catalog_sql_error(c, "catalog prepare", eb);
    return ERR_OK;
}

enum err catalog_cached_locked(struct catalog *c, enum catalog_cached slot, const char *sql,
                               sqlite3_stmt **out, struct errbuf *eb)
{
    /* A query lists its measurement's columns and files: preparing those two
     * statements each time cost more than running them. */
    if (!c->cached[slot] && sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                               &c->cached[slot], NULL) != SQLITE_OK)
        return catalog_sql_error(c, "catalog prepare", eb);
    *out = c->cached[slot];
    return ERR_OK;
}

void catalog_cached_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

enum err catalog_exec_locked(struct catalog *c, const char *sql, struct errbuf *eb)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return catalog_sql_error(c, "catalog exec", eb);
    return ERR_OK;
}

enum err catalog_begin_locked(struct catalog *c, struct errbuf *eb)
{
    return catalog_exec_locked(c, "BEGIN IMMEDIATE", eb);
}

enum err catalog_commit_locked(struct catalog *c, struct errbuf *eb)
{
    enum err rc = catalog_exec_locked(c, "COMMIT", eb);

    if (rc != ERR_OK)
        catalog_rollback_locked(c);
    return rc;
}

void catalog_rollback_locked(struct catalog *c)
{
    /* Fails only when no transaction is open (SQLite may already have rolled
     * back after an error); either way none is open afterwards. */
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

char *catalog_column_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *s;

    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    s = sqlite3_column_text(st, col);
    return xstrndup(s ? (const char *)s : "", (size_t)sqlite3_column_bytes(st, col));
}

/* ---- open / migrate ------------------------------------------------------- */


static int read_user_version(struct catalog *c)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static enum err migrate(struct catalog *c, struct errbuf *eb)
{
    char sql[64];
    enum err rc;
    int v;

    for (;;) {
        v = read_user_version(c);
        if (v < 0)
            return catalog_sql_error(c, "read schema version", eb);
        if (v > N_MIGRATIONS)
            return errbuf_set(eb, ERR_CORRUPT,
                              "%s has schema version %d, newer than this Arc knows (%d): "
                              "upgrade Arc",
                              c->path, v, N_MIGRATIONS);
        if (v == N_MIGRATIONS)
            return ERR_OK;

        rc = catalog_begin_locked(c, eb);
        if (rc != ERR_OK)
            return rc;
        /* Re-read under the write lock: another process may have migrated. */
        v = read_user_version(c);
        if (v < 0 || v >= N_MIGRATIONS) {
            catalog_rollback_locked(c);
            if (v < 0)
                return catalog_sql_error(c, "read schema version", eb);
            continue;
        }
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = catalog_sql_error(c, "catalog migration", eb);
            errbuf_prefix(eb, "migration %d", v + 1);
            catalog_rollback_locked(c);
            return rc;
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        rc = catalog_exec_locked(c, sql, eb);
        if (rc != ERR_OK) {
            catalog_rollback_locked(c);
            return rc;
        }
        rc = catalog_commit_locked(c, eb);
        if (rc != ERR_OK)
            return rc;
    }
}

enum err catalog_open(const char *data_dir, struct catalog **out, struct errbuf *eb)
{
    struct catalog *c;
    enum err rc;
    size_t plen;
    int src;

    if (!data_dir || !*data_dir)
        return errbuf_set(eb, ERR_INVAL, "catalog: empty data directory");
    rc = fileio_mkdirs(data_dir, 0755, NULL, eb);
    if (rc != ERR_OK)
        return rc;

    c = xcalloc(1, sizeof(*c));
    plen = strlen(data_dir) + sizeof("/" CATALOG_FILE_NAME);
    c->path = xmalloc(plen);
    snprintf(c->path, plen, "%s/%s", data_dir, CATALOG_FILE_NAME);
    pthread_mutex_init(&c->mu, NULL);

    /* NOMUTEX: our own mutex serialises the connection. */
    src = sqlite3_open_v2(c->path, &c->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = errbuf_set(eb, ERR_IO, "open %s: %s", c->path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        goto fail_close;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, CATALOG_BUSY_TIMEOUT_MS);

    catalog_lock(c);
    /* WAL: readers never block the writer, and another process can use the file
     * concurrently. synchronous=NORMAL is durable across process crashes in WAL
     * mode; FULL adds an fsync per commit so a catalog change survives power loss,
     * which the durability promise needs for file rows and checkpoints. */
    rc = catalog_exec_locked(c,
                             "PRAGMA journal_mode = WAL;"
                             "PRAGMA synchronous = FULL;"
                             "PRAGMA foreign_keys = ON;",
                             eb);
    if (rc == ERR_OK)
        rc = migrate(c, eb);
    catalog_unlock(c);
    if (rc != ERR_OK) {
        errbuf_prefix(eb, "catalog %s", c->path);
        goto fail_close;
    }
    *out = c;
    return ERR_OK;

fail_close:
    catalog_close(c);
    return rc;
}

void catalog_close(struct catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CAT_ST_N; i++)
        sqlite3_finalize(c->cached[i]);
    if (c->db)
        sqlite3_close_v2(c->db);
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

enum err catalog_exec(struct catalog *c, const char *sql, struct errbuf *eb)
{
    enum err rc;

    catalog_lock(c);
    rc = catalog_exec_locked(c, sql, eb);
    catalog_unlock(c);
    return rc;
}

int catalog_schema_version(struct catalog *c)
{
    int v;

    catalog_lock(c);
    v = read_user_version(c);
    catalog_unlock(c);
    return v;
}

const char *catalog_path(const struct catalog *c)
{
    return c->path;
}
