/* catalog_tokens.c - rows of the tokens table (migration 1).
 *
 * Plain CRUD with prepared statements under the catalog lock; no policy lives
 * here. Parsing permissions, hashing secrets and caching belong to src/auth,
 * which is the only intended caller. Unique-constraint failures are turned into
 * ERR_CONFLICT with a message naming the column, so the HTTP layer can answer 409
 * without knowing SQLite. Statements are prepared per call: token changes are
 * rare and the request path reads tokens from auth's memory, never from here. */
#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "core/clock.h"
#include "core/mem.h"

#define TOKEN_COLS                                                                                 \
    "id, name, description, token_hash, permissions, databases, created_at, last_used_at, "       \
    "expires_at, enabled"

void catalog_token_release(struct catalog_token *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->description);
    free(t->permissions);
    free(t->databases);
    memset(t, 0, sizeof(*t));
}

void catalog_token_list_free(struct catalog_token *rows, size_t n)
{
    size_t i;

    if (!rows)
        return;
    for (i = 0; i < n; i++)
        catalog_token_release(&rows[i]);
    free(rows);
}

/* Fill t from a row selected with TOKEN_COLS. */
static void read_row(sqlite3_stmt *st, struct catalog_token *t)
{
    const void *h;
    char *s;

    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(st, 0);
    t->name = catalog_column_strdup(st, 1);
    s = catalog_column_strdup(st, 2);
    t->description = s ? s : xstrdup("");
    h = sqlite3_column_blob(st, 3);
    if (h && sqlite3_column_bytes(st, 3) == CATALOG_TOKEN_HASH_LEN)
        memcpy(t->token_hash, h, CATALOG_TOKEN_HASH_LEN);
    t->permissions = catalog_column_strdup(st, 4);
    t->databases = catalog_column_strdup(st, 5);
    t->created_at_us = sqlite3_column_int64(st, 6);
    t->last_used_at_us = sqlite3_column_int64(st, 7);
    t->expires_at_us = sqlite3_column_int64(st, 8);
    t->enabled = sqlite3_column_int(st, 9) != 0;
}

/* Turn a failed step into an error, mapping UNIQUE violations to messages. */
static enum err step_error(struct catalog *c, const char *what, const char *name,
                           struct errbuf *eb)
{
    const char *msg = sqlite3_errmsg(c->db);

    if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE) {
        if (strstr(msg, "tokens.name"))
            return errbuf_set(eb, ERR_CONFLICT, "a token named '%s' already exists",
                              name ? name : "");
        if (strstr(msg, "tokens.token_hash"))
            return errbuf_set(eb, ERR_CONFLICT, "this token secret is already in use");
    }
    return catalog_sql_error(c, what, eb);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

enum err catalog_token_insert(struct catalog *c, const struct catalog_token *t,
                              int64_t *id_out, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    if (!t->name || !*t->name)
        return errbuf_set(eb, ERR_INVAL, "token name is empty");
    catalog_lock(c);
    rc = catalog_prepare_locked(c,
                                "INSERT INTO tokens (name, description, token_hash, permissions,"
                                " databases, created_at, last_used_at, expires_at, enabled)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                &st, eb);
    if (rc != ERR_OK)
        goto out_unlock;
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, t->description ? t->description : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, t->token_hash, CATALOG_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, t->permissions ? t->permissions : "read,write", -1,
                      SQLITE_TRANSIENT);
    bind_text_or_null(st, 5, t->databases);
    sqlite3_bind_int64(st, 6, t->created_at_us ? t->created_at_us : clock_now_us());
    sqlite3_bind_int64(st, 7, t->last_used_at_us);
    sqlite3_bind_int64(st, 8, t->expires_at_us);
    sqlite3_bind_int(st, 9, t->enabled ? 1 : 0);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = step_error(c, "insert token", t->name, eb);
        goto out_finalize;
    }
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(c->db);
out_finalize:
    sqlite3_finalize(st);
out_unlock:
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_list(struct catalog *c, struct catalog_token **rows_out, size_t *n_out,
                            struct errbuf *eb)
{
    struct catalog_token *rows = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    enum err rc;
    int s;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT " TOKEN_COLS " FROM tokens ORDER BY id", &st, eb);
    if (rc != ERR_OK)
        goto out_unlock;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xreallocarray(rows, cap, sizeof(*rows));
        }
        read_row(st, &rows[n++]);
    }
    if (s != SQLITE_DONE) {
        rc = catalog_sql_error(c, "list tokens", eb);
        catalog_token_list_free(rows, n);
        goto out_finalize;
    }
    *rows_out = rows;
    *n_out = n;
out_finalize:
    sqlite3_finalize(st);
out_unlock:
    catalog_unlock(c);
    return rc;
}

/* Run "SELECT ... WHERE <where>" with ?1 bound to id (kind 0), name (kind 1) or
 * hash (kind 2), and read the first row into out. */
static enum err get_one(struct catalog *c, const char *where, int kind, int64_t id,
                        const char *name, const uint8_t *hash, struct catalog_token *out,
                        struct errbuf *eb)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    enum err rc;
    int s;

    snprintf(sql, sizeof(sql), "SELECT " TOKEN_COLS " FROM tokens WHERE %s", where);
    catalog_lock(c);
    rc = catalog_prepare_locked(c, sql, &st, eb);
    if (rc != ERR_OK)
        goto out_unlock;
    if (kind == 0)
        sqlite3_bind_int64(st, 1, id);
    else if (kind == 1)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_blob(st, 1, hash, CATALOG_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        read_row(st, out);
    } else if (s == SQLITE_DONE) {
        if (kind == 0)
            rc = errbuf_set(eb, ERR_NOTFOUND, "token %lld not found", (long long)id);
        else if (kind == 1)
            rc = errbuf_set(eb, ERR_NOTFOUND, "token '%s' not found", name);
        else
            rc = errbuf_set(eb, ERR_NOTFOUND, "token not found");
    } else {
        rc = catalog_sql_error(c, "get token", eb);
    }
    sqlite3_finalize(st);
out_unlock:
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_get_by_id(struct catalog *c, int64_t id, struct catalog_token *out,
                                 struct errbuf *eb)
{
    return get_one(c, "id = ?1", 0, id, NULL, NULL, out, eb);
}

enum err catalog_token_get_by_name(struct catalog *c, const char *name,
                                   struct catalog_token *out, struct errbuf *eb)
{
    return get_one(c, "name = ?1", 1, 0, name, NULL, out, eb);
}

enum err catalog_token_get_by_hash(struct catalog *c, const uint8_t hash[CATALOG_TOKEN_HASH_LEN],
                                   struct catalog_token *out, struct errbuf *eb)
{
    return get_one(c, "token_hash = ?1", 2, 0, NULL, hash, out, eb);
}

/* Run a single-row UPDATE/DELETE prepared by the caller; ERR_NOTFOUND when it
 * changed nothing. Lock held; finalizes st. */
static enum err step_change(struct catalog *c, sqlite3_stmt *st, int64_t id, const char *what,
                            const char *name, struct errbuf *eb)
{
    enum err rc = ERR_OK;

    if (sqlite3_step(st) != SQLITE_DONE)
        rc = step_error(c, what, name, eb);
    else if (sqlite3_changes(c->db) == 0)
        rc = errbuf_set(eb, ERR_NOTFOUND, "token %lld not found", (long long)id);
    sqlite3_finalize(st);
    return rc;
}

enum err catalog_token_update(struct catalog *c, const struct catalog_token *t,
                              struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    if (!t->name || !*t->name)
        return errbuf_set(eb, ERR_INVAL, "token name is empty");
    catalog_lock(c);
    rc = catalog_prepare_locked(c,
                                "UPDATE tokens SET name = ?2, description = ?3, permissions = ?4,"
                                " databases = ?5, expires_at = ?6, enabled = ?7 WHERE id = ?1",
                                &st, eb);
    if (rc == ERR_OK) {
        sqlite3_bind_int64(st, 1, t->id);
        sqlite3_bind_text(st, 2, t->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, t->description ? t->description : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, t->permissions ? t->permissions : "read,write", -1,
                          SQLITE_TRANSIENT);
        bind_text_or_null(st, 5, t->databases);
        sqlite3_bind_int64(st, 6, t->expires_at_us);
        sqlite3_bind_int(st, 7, t->enabled ? 1 : 0);
        rc = step_change(c, st, t->id, "update token", t->name, eb);
    }
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_set_hash(struct catalog *c, int64_t id,
                                const uint8_t hash[CATALOG_TOKEN_HASH_LEN], struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "UPDATE tokens SET token_hash = ?2 WHERE id = ?1", &st, eb);
    if (rc == ERR_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_blob(st, 2, hash, CATALOG_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
        rc = step_change(c, st, id, "rotate token", NULL, eb);
    }
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_delete(struct catalog *c, int64_t id, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "DELETE FROM tokens WHERE id = ?1", &st, eb);
    if (rc == ERR_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = step_change(c, st, id, "delete token", NULL, eb);
    }
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_count(struct catalog *c, int64_t *n_out, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;

    catalog_lock(c);
    rc = catalog_prepare_locked(c, "SELECT count(*) FROM tokens", &st, eb);
    if (rc == ERR_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *n_out = sqlite3_column_int64(st, 0);
        else
            rc = catalog_sql_error(c, "count tokens", eb);
        sqlite3_finalize(st);
    }
    catalog_unlock(c);
    return rc;
}

enum err catalog_token_touch(struct catalog *c, const struct catalog_token_touch *items,
                             size_t n, struct errbuf *eb)
{
    sqlite3_stmt *st = NULL;
    enum err rc;
    size_t i;

    if (n == 0)
        return ERR_OK;
    catalog_lock(c);
    rc = catalog_begin_locked(c, eb);
    if (rc != ERR_OK)
        goto out_unlock;
    rc = catalog_prepare_locked(
        c, "UPDATE tokens SET last_used_at = MAX(last_used_at, ?2) WHERE id = ?1", &st, eb);
    if (rc != ERR_OK)
        goto fail_rollback;
    for (i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, items[i].id);
        sqlite3_bind_int64(st, 2, items[i].last_used_at_us);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = catalog_sql_error(c, "record token use", eb);
            sqlite3_finalize(st);
            goto fail_rollback;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    rc = catalog_commit_locked(c, eb);
    goto out_unlock;

fail_rollback:
    catalog_rollback_locked(c);
out_unlock:
    catalog_unlock(c);
    return rc;
}
