/* catalog_s3.c - upload intents of the s3 backend and the files-table rebuild
 * (catalog_s3.h). The intent table and its trigger come from migration 3 in
 * catalog.c; the trigger is what makes "file listed" and "upload finished"
 * one atomic step for direct uploads without changing catalog_files_add(). */
#include "catalog/catalog_s3.h"

#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "core/clock.h"
#include "core/mem.h"

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

enum err catalog_upload_set(struct catalog *c, const char *path, enum catalog_upload_state state,
                            int64_t bytes, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    /* ON CONFLICT keeps the id (and so the upload order) of an existing intent */
    rc = catalog_prepare_locked(c,
                                "INSERT INTO s3_uploads (path, state, bytes, created_at) "
                                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (path) DO UPDATE SET "
                                "state = excluded.state, bytes = excluded.bytes",
                                &st, eb);
    if (rc)
        goto out;
    bind_text(st, 1, path);
    sqlite3_bind_int(st, 2, (int)state);
    sqlite3_bind_int64(st, 3, bytes);
    sqlite3_bind_int64(st, 4, clock_now_us());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = catalog_sql_error(c, "record upload intent", eb);
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_upload_clear(struct catalog *c, const char *path, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "DELETE FROM s3_uploads WHERE path = ?1", &st, eb);
    if (rc)
        goto out;
    bind_text(st, 1, path);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = catalog_sql_error(c, "clear upload intent", eb);
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

static enum err list_uploads(struct catalog *c, const char *sql, struct catalog_upload **out,
                             size_t *n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    struct catalog_upload *v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc;
    int s;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, sql, &st, eb);
    if (rc)
        goto out;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt].id = sqlite3_column_int64(st, 0);
        v[cnt].path = catalog_column_strdup(st, 1);
        v[cnt].bytes = sqlite3_column_int64(st, 2);
        v[cnt].state = sqlite3_column_int(st, 3);
        if (!v[cnt].path)
            v[cnt].path = xstrdup("");
        cnt++;
    }
    if (s != SQLITE_DONE) {
        rc = catalog_sql_error(c, "list upload intents", eb);
        catalog_uploads_free(v, cnt);
        goto out;
    }
    *out = v;
    *n = cnt;
out:
    sqlite3_finalize(st);
    catalog_unlock(c);
    return rc;
}

enum err catalog_uploads_pending(struct catalog *c, struct catalog_upload **out, size_t *n,
                                 struct errbuf *eb)
{
    return list_uploads(c,
                        "SELECT u.id, u.path, u.bytes, u.state FROM s3_uploads u "
                        "JOIN files f ON f.path = u.path WHERE u.state = 1 ORDER BY u.id",
                        out, n, eb);
}

enum err catalog_uploads_orphans(struct catalog *c, struct catalog_upload **out, size_t *n,
                                 struct errbuf *eb)
{
    return list_uploads(c,
                        "SELECT u.id, u.path, u.bytes, u.state FROM s3_uploads u "
                        "WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.path = u.path) "
                        "ORDER BY u.id",
                        out, n, eb);
}

void catalog_uploads_free(struct catalog_upload *u, size_t n)
{
    size_t i;

    for (i = 0; u && i < n; i++)
        free(u[i].path);
    free(u);
}

static enum err step_done(struct catalog *c, sqlite3_stmt *st, const char *what,
                          struct errbuf *eb)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return catalog_sql_error(c, what, eb);
    sqlite3_reset(st);
    return ERR_OK;
}

enum err catalog_files_rebuild(struct catalog *c, const struct catalog_rebuild_file *files,
                               size_t n, size_t *added, size_t *removed, struct errbuf *eb)
{
    sqlite3_stmt *tmp = NULL, *ins = NULL, *db = NULL, *col = NULL, *pos = NULL;
    int64_t now = clock_now_us();
    size_t i, k, nadd = 0, nrem = 0;
    enum err rc;

    catalog_lock(c);
    rc = catalog_exec_locked(c,
                             "CREATE TEMP TABLE IF NOT EXISTS rebuild_keys (path TEXT PRIMARY KEY);"
                             "DELETE FROM rebuild_keys;",
                             eb);
    if (rc)
        goto out_unlock;
    rc = catalog_begin_locked(c, eb);
    if (rc)
        goto out_unlock;
    if ((rc = catalog_prepare_locked(c, "INSERT OR IGNORE INTO rebuild_keys VALUES (?1)", &tmp,
                                     eb)) ||
        (rc = catalog_prepare_locked(
             c,
             "INSERT OR IGNORE INTO files (database, measurement, path, min_time, max_time, "
             "row_count, size_bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
             &ins, eb)) ||
        (rc = catalog_prepare_locked(
             c, "INSERT OR IGNORE INTO databases (name, created_at) VALUES (?1, ?2)", &db, eb)) ||
        (rc = catalog_prepare_locked(c,
                                     "SELECT COALESCE(MAX(position) + 1, 0) FROM columns "
                                     "WHERE database = ?1 AND measurement = ?2",
                                     &pos, eb)) ||
        (rc = catalog_prepare_locked(
             c,
             "INSERT INTO columns (database, measurement, name, type, is_tag, position) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (database, measurement, name) DO "
             "UPDATE SET type = excluded.type WHERE columns.type = 'BIGINT' AND "
             "excluded.type = 'DOUBLE'",
             &col, eb)))
        goto fail;
    for (i = 0; i < n; i++) {
        const struct catalog_rebuild_file *f = &files[i];
        int64_t next_pos = 0;
        bind_text(tmp, 1, f->path);
        if ((rc = step_done(c, tmp, "rebuild: key", eb)))
            goto fail;
        bind_text(db, 1, f->database);
        sqlite3_bind_int64(db, 2, now);
        if ((rc = step_done(c, db, "rebuild: database", eb)))
            goto fail;
        bind_text(ins, 1, f->database);
        bind_text(ins, 2, f->measurement);
        bind_text(ins, 3, f->path);
        sqlite3_bind_int64(ins, 4, f->min_time_us);
        sqlite3_bind_int64(ins, 5, f->max_time_us);
        sqlite3_bind_int64(ins, 6, f->rows);
        sqlite3_bind_int64(ins, 7, f->bytes);
        sqlite3_bind_int64(ins, 8, now);
        if ((rc = step_done(c, ins, "rebuild: file", eb)))
            goto fail;
        nadd += (size_t)sqlite3_changes(c->db);
        bind_text(pos, 1, f->database);
        bind_text(pos, 2, f->measurement);
        if (sqlite3_step(pos) == SQLITE_ROW)
            next_pos = sqlite3_column_int64(pos, 0);
        sqlite3_reset(pos);
        for (k = 0; k < f->ncols; k++) {
            bind_text(col, 1, f->database);
            bind_text(col, 2, f->measurement);
            bind_text(col, 3, f->cols[k].name);
            bind_text(col, 4, f->cols[k].type);
            sqlite3_bind_int(col, 5, f->cols[k].is_tag ? 1 : 0);
            sqlite3_bind_int64(col, 6, next_pos + (int64_t)k);
            if ((rc = step_done(c, col, "rebuild: column", eb)))
                goto fail;
        }
    }
    rc = catalog_exec_locked(c,
                             "DELETE FROM files WHERE path NOT IN (SELECT path FROM rebuild_keys) "
                             "AND path NOT IN (SELECT path FROM s3_uploads WHERE state = 1)",
                             eb);
    if (rc)
        goto fail;
    nrem = (size_t)sqlite3_changes(c->db);
    rc = catalog_exec_locked(c,
                             "DELETE FROM s3_uploads WHERE state = 0 AND path NOT IN "
                             "(SELECT path FROM rebuild_keys)",
                             eb);
    if (rc)
        goto fail;
    sqlite3_finalize(tmp);
    sqlite3_finalize(ins);
    sqlite3_finalize(db);
    sqlite3_finalize(col);
    sqlite3_finalize(pos);
    tmp = ins = db = col = pos = NULL;
    rc = catalog_commit_locked(c, eb);
    if (rc == ERR_OK) {
        if (added)
            *added = nadd;
        if (removed)
            *removed = nrem;
    }
    goto out_unlock;
fail:
    sqlite3_finalize(tmp);
    sqlite3_finalize(ins);
    sqlite3_finalize(db);
    sqlite3_finalize(col);
    sqlite3_finalize(pos);
    catalog_rollback_locked(c);
out_unlock:
    catalog_exec_locked(c, "DROP TABLE IF EXISTS temp.rebuild_keys", NULL);
    catalog_unlock(c);
    return rc;
}
