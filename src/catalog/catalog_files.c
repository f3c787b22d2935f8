/* catalog_files.c - data files, measurement schemas, databases and metadata.
 *
 * The files table is the truth about what data exists: queries, SHOW TABLES,
 * compaction and retention read it instead of listing directories. A flush
 * registers all files of one batch in a single transaction (catalog_files_add),
 * which is what makes a flush atomic. Every function takes the catalog lock for
 * its whole duration (see catalog_int.h). */
#include "catalog/catalog.h"

#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "core/clock.h"
#include "core/mem.h"

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

enum err catalog_files_add(struct catalog *c, const char *db, const char *measurement,
                           const struct catalog_file *files, size_t n,
                           const struct catalog_column *cols, size_t ncols, struct errbuf *eb)
{
    sqlite3_stmt *ins = NULL, *col = NULL, *pos = NULL;
    int64_t now = clock_now_us(), next_pos = 0;
    enum err rc;
    size_t i;

    catalog_lock(c);
    rc = catalog_begin_locked(c, eb);
    if (rc)
        goto out_unlock;
    {
        sqlite3_stmt *d = NULL;
        rc = catalog_prepare_locked(
            c, "INSERT OR IGNORE INTO databases (name, created_at) VALUES (?1, ?2)", &d, eb);
        if (rc)
            goto fail;
        bind_text(d, 1, db);
        sqlite3_bind_int64(d, 2, now);
        if (sqlite3_step(d) != SQLITE_DONE) {
            sqlite3_finalize(d);
            rc = catalog_sql_error(c, "register database", eb);
            goto fail;
        }
        sqlite3_finalize(d);
    }
    rc = catalog_prepare_locked(
        c,
        "INSERT INTO files (database, measurement, path, min_time, max_time, row_count, "
        "size_bytes, created_at, wal_lsn_lo, wal_lsn_hi) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &ins, eb);
    if (rc)
        goto fail;
    for (i = 0; i < n; i++) {
        sqlite3_reset(ins);
        bind_text(ins, 1, db);
        bind_text(ins, 2, measurement);
        bind_text(ins, 3, files[i].path);
        sqlite3_bind_int64(ins, 4, files[i].min_time_us);
        sqlite3_bind_int64(ins, 5, files[i].max_time_us);
        sqlite3_bind_int64(ins, 6, files[i].rows);
        sqlite3_bind_int64(ins, 7, files[i].bytes);
        sqlite3_bind_int64(ins, 8, now);
        sqlite3_bind_int64(ins, 9, (sqlite3_int64)files[i].wal_lsn_lo);
        sqlite3_bind_int64(ins, 10, (sqlite3_int64)files[i].wal_lsn_hi);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = catalog_sql_error(c, "register file", eb);
            goto fail;
        }
    }
    rc = catalog_prepare_locked(c,
                                "SELECT COALESCE(MAX(position) + 1, 0) FROM columns "
                                "WHERE database = ?1 AND measurement = ?2",
                                &pos, eb);
    if (rc)
        goto fail;
    bind_text(pos, 1, db);
    bind_text(pos, 2, measurement);
    if (sqlite3_step(pos) == SQLITE_ROW)
        next_pos = sqlite3_column_int64(pos, 0);
    rc = catalog_prepare_locked(
        c,
        "INSERT INTO columns (database, measurement, name, type, is_tag, position) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (database, measurement, name) DO UPDATE "
        "SET type = excluded.type WHERE columns.type = 'BIGINT' AND excluded.type = 'DOUBLE'",
        &col, eb);
    if (rc)
        goto fail;
    for (i = 0; i < ncols; i++) {
        sqlite3_reset(col);
        bind_text(col, 1, db);
        bind_text(col, 2, measurement);
        bind_text(col, 3, cols[i].name);
        bind_text(col, 4, cols[i].type);
        sqlite3_bind_int(col, 5, cols[i].is_tag ? 1 : 0);
        sqlite3_bind_int64(col, 6, next_pos + (int64_t)i);
        if (sqlite3_step(col) != SQLITE_DONE) {
            rc = catalog_sql_error(c, "register column", eb);
            goto fail;
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(col);
    sqlite3_finalize(pos);
    rc = catalog_commit_locked(c, eb);
    goto out_unlock;
fail:
    sqlite3_finalize(ins);
    sqlite3_finalize(col);
    sqlite3_finalize(pos);
    catalog_rollback_locked(c);
out_unlock:
    catalog_unlock(c);
    return rc;
}

enum err catalog_wal_ranges(struct catalog *c, uint64_t above_lsn, catalog_range_fn *fn,
                            void *ctx, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c,
                                "SELECT DISTINCT database, measurement, wal_lsn_lo, wal_lsn_hi "
                                "FROM files WHERE wal_lsn_hi > ?1",
                                &st, eb);
    if (rc == ERR_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)above_lsn);
        while (sqlite3_step(st) == SQLITE_ROW)
            fn(ctx, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
               (uint64_t)sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_wal_max_lsn(struct catalog *c, uint64_t *out, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT COALESCE(MAX(wal_lsn_hi), 0) FROM files", &st, eb);
    if (rc == ERR_OK && sqlite3_step(st) == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_file_exists(struct catalog *c, const char *path, bool *out, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT 1 FROM files WHERE path = ?1", &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, path);
        *out = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    catalog_unlock(c);
    return rc;
}

enum err catalog_files_collect(struct catalog *c, sqlite3_stmt *st, const char *what,
                               struct catalog_file **out, size_t *n, struct errbuf *eb)
{
    struct catalog_file *v = NULL;
    size_t cnt = 0, cap = 0;
    int r;

    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt].id = sqlite3_column_int64(st, 0);
        v[cnt].database = catalog_column_strdup(st, 1);
        v[cnt].measurement = catalog_column_strdup(st, 2);
        v[cnt].path = catalog_column_strdup(st, 3);
        v[cnt].min_time_us = sqlite3_column_int64(st, 4);
        v[cnt].max_time_us = sqlite3_column_int64(st, 5);
        v[cnt].rows = sqlite3_column_int64(st, 6);
        v[cnt].bytes = sqlite3_column_int64(st, 7);
        v[cnt].created_at_us = sqlite3_column_int64(st, 8);
        v[cnt].wal_lsn_lo = (uint64_t)sqlite3_column_int64(st, 9);
        v[cnt].wal_lsn_hi = (uint64_t)sqlite3_column_int64(st, 10);
        cnt++;
    }
    if (r != SQLITE_DONE) {
        catalog_files_free(v, cnt);
        return catalog_sql_error(c, what, eb);
    }
    *out = v;
    *n = cnt;
    return ERR_OK;
}

enum err catalog_files_list(struct catalog *c, const char *db, const char *measurement,
                            int64_t min_us, int64_t max_us, struct catalog_file **out, size_t *n,
                            struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_cached_locked(
        c, CAT_ST_FILES_LIST,
        "SELECT " CATALOG_FILE_COLS " FROM files WHERE (?1 IS NULL OR database = ?1) AND "
        "(?2 IS NULL OR measurement = ?2) AND max_time >= ?3 AND min_time <= ?4 "
        "ORDER BY min_time, id",
        &st, eb);
    if (rc)
        goto out;
    if (db)
        bind_text(st, 1, db);
    if (measurement)
        bind_text(st, 2, measurement);
    sqlite3_bind_int64(st, 3, min_us);
    sqlite3_bind_int64(st, 4, max_us);
    rc = catalog_files_collect(c, st, "list files", out, n, eb);
out:
    catalog_cached_done(st);
    catalog_unlock(c);
    return rc;
}

void catalog_files_free(struct catalog_file *files, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(files[i].database);
        free(files[i].measurement);
        free(files[i].path);
    }
    free(files);
}

enum err catalog_columns_list(struct catalog *c, const char *db, const char *measurement,
                              struct catalog_column **out, size_t *n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    struct catalog_column *v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc;

    catalog_lock(c);
    rc = catalog_cached_locked(c, CAT_ST_COLUMNS_LIST,
                               "SELECT name, type, is_tag FROM columns WHERE database = ?1 AND "
                               "measurement = ?2 ORDER BY position",
                               &st, eb);
    if (rc)
        goto out;
    bind_text(st, 1, db);
    bind_text(st, 2, measurement);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt].name = catalog_column_strdup(st, 0);
        v[cnt].type = catalog_column_strdup(st, 1);
        v[cnt].is_tag = sqlite3_column_int(st, 2) != 0;
        cnt++;
    }
    *out = v;
    *n = cnt;
out:
    catalog_cached_done(st);
    catalog_unlock(c);
    return rc;
}

void catalog_columns_free(struct catalog_column *cols, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free((char *)cols[i].name);
        free((char *)cols[i].type);
    }
    free(cols);
}

enum err catalog_measurements_list(struct catalog *c, const char *db,
                                   struct catalog_measurement **out, size_t *n,
                                   struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    struct catalog_measurement *v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(
        c,
        "SELECT m.database, m.measurement, COUNT(f.id), COALESCE(SUM(f.row_count), 0), "
        "COALESCE(SUM(f.size_bytes), 0), COALESCE(MIN(f.min_time), 0), "
        "COALESCE(MAX(f.max_time), 0) FROM (SELECT DISTINCT database, measurement FROM columns "
        "WHERE ?1 IS NULL OR database = ?1) m LEFT JOIN files f ON f.database = m.database AND "
        "f.measurement = m.measurement GROUP BY m.database, m.measurement "
        "ORDER BY m.database, m.measurement",
        &st, eb);
    if (rc)
        goto out;
    if (db)
        bind_text(st, 1, db);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt].database = catalog_column_strdup(st, 0);
        v[cnt].measurement = catalog_column_strdup(st, 1);
        v[cnt].files = sqlite3_column_int64(st, 2);
        v[cnt].rows = sqlite3_column_int64(st, 3);
        v[cnt].bytes = sqlite3_column_int64(st, 4);
        v[cnt].min_time_us = sqlite3_column_int64(st, 5);
        v[cnt].max_time_us = sqlite3_column_int64(st, 6);
        cnt++;
    }
    *out = v;
    *n = cnt;
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

void catalog_measurements_free(struct catalog_measurement *m, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(m[i].database);
        free(m[i].measurement);
    }
    free(m);
}

static enum err collect_strings(struct catalog *c, sqlite3_stmt *st, char ***out, size_t *n,
                                struct errbuf *eb)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int r;

    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt++] = catalog_column_strdup(st, 0);
    }
    if (r != SQLITE_DONE) {
        catalog_strings_free(v, cnt);
        return catalog_sql_error(c, "list", eb);
    }
    *out = v;
    *n = cnt;
    return ERR_OK;
}

enum err catalog_databases_list(struct catalog *c, char ***names, size_t *n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT name FROM databases ORDER BY name", &st, eb);
    if (rc == ERR_OK)
        rc = collect_strings(c, st, names, n, eb);
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_database_create(struct catalog *c, const char *name, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "INSERT INTO databases (name, created_at) VALUES (?1, ?2)",
                                &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, clock_now_us());
        if (sqlite3_step(st) != SQLITE_DONE) {
            if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
                rc = errbuf_set(eb, ERR_CONFLICT, "database '%s' already exists", name);
            else
                rc = catalog_sql_error(c, "create database", eb);
        }
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_database_drop(struct catalog *c, const char *name, char ***paths,
                               size_t *npaths, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;
    char **v = NULL;
    size_t cnt = 0;

    catalog_lock(c);
    rc = catalog_begin_locked(c, eb);
    if (rc)
        goto out;
    rc = catalog_prepare_locked(c, "SELECT 1 FROM databases WHERE name = ?1", &st, eb);
    if (rc)
        goto fail;
    bind_text(st, 1, name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = errbuf_set(eb, ERR_NOTFOUND, "database '%s' does not exist", name);
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = catalog_prepare_locked(c, "SELECT path FROM files WHERE database = ?1", &st, eb);
    if (rc)
        goto fail;
    bind_text(st, 1, name);
    rc = collect_strings(c, st, &v, &cnt, eb);
    if (rc)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    {
        static const char *const dels[] = {"DELETE FROM files WHERE database = ?1",
                                           "DELETE FROM columns WHERE database = ?1",
                                           "DELETE FROM databases WHERE name = ?1"};
        size_t i;
        for (i = 0; i < 3; i++) {
            rc = catalog_prepare_locked(c, dels[i], &st, eb);
            if (rc)
                goto fail;
            bind_text(st, 1, name);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = catalog_sql_error(c, "drop database", eb);
                goto fail;
            }
            sqlite3_finalize(st);
            st = NULL;
        }
    }
    rc = catalog_commit_locked(c, eb);
    if (rc)
        goto fail_nocommit;
    *paths = v;
    *npaths = cnt;
    goto out;
fail:
    sqlite3_finalize(st);
    st = NULL;
    catalog_rollback_locked(c);
fail_nocommit:
    catalog_strings_free(v, cnt);
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

void catalog_strings_free(char **s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

enum err catalog_meta_get(struct catalog *c, const char *key, char **value, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT value FROM meta WHERE key = ?1", &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, key);
        if (sqlite3_step(st) == SQLITE_ROW)
            *value = catalog_column_strdup(st, 0);
        else
            rc = errbuf_set(eb, ERR_NOTFOUND, "no meta key '%s'", key);
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_meta_set(struct catalog *c, const char *key, const char *value,
                          struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c,
                                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) "
                                "DO UPDATE SET value = excluded.value",
                                &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, key);
        bind_text(st, 2, value);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = catalog_sql_error(c, "set meta", eb);
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}
