/* catalog_compact.c - what compaction (src/maint/compact.c) needs from the catalog:
 * hour partitions worth merging, their files, the atomic swap of many files for
 * one, and the list of replaced ("retired") files still on storage. */
#include "catalog/catalog.h"

#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "core/clock.h"
#include "core/mem.h"

#define US_PER_HOUR INT64_C(3600000000)

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

void catalog_partitions_free(struct catalog_partition *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].database);
        free(p[i].measurement);
    }
    free(p);
}

enum err catalog_compaction_candidates(struct catalog *c, unsigned min_files,
                                       int64_t hour_end_before_us, uint64_t max_lsn, size_t limit,
                                       struct catalog_partition **out, size_t *n,
                                       struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    struct catalog_partition *v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc;
    int r;

    *out = NULL;
    *n = 0;
    catalog_lock(c);
    /* hour = floor(min_time / 1 h) (files never span hours); SQLite's % truncates
     * toward zero, hence the double modulo for times before 1970 */
    rc = catalog_prepare_locked(
        c,
        "SELECT database, measurement, min_time - ((min_time % ?1) + ?1) % ?1 AS hour, "
        "count(*) AS n FROM files WHERE wal_lsn_hi <= ?2 "
        "GROUP BY database, measurement, hour "
        "HAVING n >= ?3 AND hour + ?1 <= ?4 "
        "ORDER BY n DESC LIMIT ?5",
        &st, eb);
    if (rc)
        goto out;
    sqlite3_bind_int64(st, 1, US_PER_HOUR);
    sqlite3_bind_int64(st, 2, max_lsn > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max_lsn);
    sqlite3_bind_int64(st, 3, min_files);
    sqlite3_bind_int64(st, 4, hour_end_before_us);
    sqlite3_bind_int64(st, 5, (int64_t)limit);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt].database = catalog_column_strdup(st, 0);
        v[cnt].measurement = catalog_column_strdup(st, 1);
        v[cnt].hour_us = sqlite3_column_int64(st, 2);
        v[cnt].files = (size_t)sqlite3_column_int64(st, 3);
        cnt++;
    }
    if (r != SQLITE_DONE) {
        rc = catalog_sql_error(c, "list compaction candidates", eb);
        catalog_partitions_free(v, cnt);
        goto out;
    }
    *out = v;
    *n = cnt;
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_partition_files(struct catalog *c, const char *db, const char *measurement,
                                 int64_t hour_us, uint64_t max_lsn, struct catalog_file **out,
                                 size_t *n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    *out = NULL;
    *n = 0;
    catalog_lock(c);
    rc = catalog_prepare_locked(
        c,
        "SELECT " CATALOG_FILE_COLS " FROM files WHERE database = ?1 AND measurement = ?2 "
        "AND min_time >= ?3 AND min_time < ?3 + ?4 AND wal_lsn_hi <= ?5 ORDER BY size_bytes, id",
        &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, db);
        bind_text(st, 2, measurement);
        sqlite3_bind_int64(st, 3, hour_us);
        sqlite3_bind_int64(st, 4, US_PER_HOUR);
        sqlite3_bind_int64(st, 5,
                           max_lsn > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max_lsn);
        rc = catalog_files_collect(c, st, "list partition files", out, n, eb);
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_files_replace(struct catalog *c, const char *db, const char *measurement,
                               const char *const *old_paths, size_t nold,
                               const struct catalog_file *merged, struct errbuf *eb)
{
    sqlite3_stmt *del = NULL, *ins = NULL, *ret = NULL;
    int64_t now = clock_now_us();
    enum err rc;

    catalog_lock(c);
    rc = catalog_begin_locked(c, eb);
    if (rc)
        goto out_unlock;
    if ((rc = catalog_prepare_locked(c,
                                     "DELETE FROM files WHERE path = ?1 AND database = ?2 AND "
                                     "measurement = ?3",
                                     &del, eb)) != ERR_OK ||
        (rc = catalog_prepare_locked(c,
                                     "INSERT INTO retired_files (path, retired_at) VALUES "
                                     "(?1, ?2) ON CONFLICT (path) DO NOTHING",
                                     &ret, eb)) != ERR_OK ||
        (rc = catalog_prepare_locked(
             c,
             "INSERT INTO files (database, measurement, path, min_time, max_time, row_count, "
             "size_bytes, created_at, wal_lsn_lo, wal_lsn_hi) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
             &ins, eb)) != ERR_OK)
        goto fail;
    for (size_t i = 0; i < nold; i++) {
        sqlite3_reset(del);
        bind_text(del, 1, old_paths[i]);
        bind_text(del, 2, db);
        bind_text(del, 3, measurement);
        if (sqlite3_step(del) != SQLITE_DONE) {
            rc = catalog_sql_error(c, "unlist compacted file", eb);
            goto fail;
        }
        /* gone meanwhile (database dropped, ...): the merged file would bring its
         * rows back; give up, nothing changes */
        if (sqlite3_changes(c->db) != 1) {
            rc = errbuf_set(eb, ERR_CONFLICT, "file %s is no longer listed", old_paths[i]);
            goto fail;
        }
        sqlite3_reset(ret);
        bind_text(ret, 1, old_paths[i]);
        sqlite3_bind_int64(ret, 2, now);
        if (sqlite3_step(ret) != SQLITE_DONE) {
            rc = catalog_sql_error(c, "retire file", eb);
            goto fail;
        }
    }
    bind_text(ins, 1, db);
    bind_text(ins, 2, measurement);
    bind_text(ins, 3, merged->path);
    sqlite3_bind_int64(ins, 4, merged->min_time_us);
    sqlite3_bind_int64(ins, 5, merged->max_time_us);
    sqlite3_bind_int64(ins, 6, merged->rows);
    sqlite3_bind_int64(ins, 7, merged->bytes);
    sqlite3_bind_int64(ins, 8, now);
    sqlite3_bind_int64(ins, 9, (sqlite3_int64)merged->wal_lsn_lo);
    sqlite3_bind_int64(ins, 10, (sqlite3_int64)merged->wal_lsn_hi);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        rc = catalog_sql_error(c, "register merged file", eb);
        goto fail;
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ret);
    sqlite3_finalize(ins);
    rc = catalog_commit_locked(c, eb);
    goto out_unlock;
fail:
    sqlite3_finalize(del);
    sqlite3_finalize(ret);
    sqlite3_finalize(ins);
    catalog_rollback_locked(c);
out_unlock:
    catalog_unlock(c);
    return rc;
}

enum err catalog_retired_list(struct catalog *c, char ***paths, size_t *n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc;
    int r;

    *paths = NULL;
    *n = 0;
    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT path FROM retired_files ORDER BY retired_at", &st,
                                eb);
    if (rc)
        goto out;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt++] = catalog_column_strdup(st, 0);
    }
    if (r != SQLITE_DONE) {
        rc = catalog_sql_error(c, "list retired files", eb);
        catalog_strings_free(v, cnt);
        goto out;
    }
    *paths = v;
    *n = cnt;
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_retired_forget(struct catalog *c, const char *path, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "DELETE FROM retired_files WHERE path = ?1", &st, eb);
    if (rc == ERR_OK) {
        bind_text(st, 1, path);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = catalog_sql_error(c, "forget retired file", eb);
    }
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}
