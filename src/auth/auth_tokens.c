/* auth_tokens.c - token management (create, get, list, update, delete, rotate)
 * and the first-start bootstrap, on top of the catalog.
 *
 * Every operation validates its input, then, under admin_mu, changes the catalog
 * and rebuilds the in-memory table (auth_rebuild_locked), so when the call
 * returns the change is already visible to auth_check() on this server. Secrets
 * exist in plaintext only in a local buffer (cleansed after use) and in the
 * caller's copy; the catalog receives only their SHA-256. */
#include "auth/auth.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/mem.h"

/* ---- management ----------------------------------------------------------- */

static enum err check_name(const char *name, struct errbuf *eb)
{
    size_t i, n;

    if (!name || !*name)
        return errbuf_set(eb, ERR_INVAL, "name: required");
    n = strlen(name);
    if (n > ARC_MAX_TOKEN_NAME)
        return errbuf_set(eb, ERR_INVAL, "name: longer than %d bytes", ARC_MAX_TOKEN_NAME);
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return errbuf_set(eb, ERR_INVAL, "name: control characters are not allowed");
    return ERR_OK;
}

static enum err check_description(const char *d, struct errbuf *eb)
{
    if (d && strlen(d) > ARC_MAX_TOKEN_DESC)
        return errbuf_set(eb, ERR_INVAL, "description: longer than %d bytes",
                          ARC_MAX_TOKEN_DESC);
    return ERR_OK;
}

static enum err check_perms(unsigned perms, struct errbuf *eb)
{
    if (perms & ~(unsigned)AUTH_PERM_ALL)
        return errbuf_set(eb, ERR_INVAL, "permissions: unknown permission bits 0x%x", perms);
    return ERR_OK;
}

/* Validate a database list and encode it as JSON text (new string, or NULL for
 * "all databases"). */
static enum err databases_json(const char *const *v, size_t n, char **out, struct errbuf *eb)
{
    struct buf b;
    enum err rc;
    size_t i;

    if (!v) {
        *out = NULL;
        return ERR_OK;
    }
    if (n == 0)
        return errbuf_set(eb, ERR_INVAL, "databases: empty list (omit it to allow all databases)");
    if (n > ARC_MAX_TOKEN_DATABASES)
        return errbuf_set(eb, ERR_INVAL, "databases: more than %d entries",
                          ARC_MAX_TOKEN_DATABASES);
    for (i = 0; i < n; i++) {
        rc = auth_database_name_check(v[i], eb);
        if (rc != ERR_OK)
            return rc;
    }
    buf_init(&b, 0);
    rc = auth_databases_to_json(v, n, &b);
    if (rc != ERR_OK) {
        buf_release(&b);
        return errbuf_set(eb, rc, "databases: cannot encode");
    }
    *out = buf_steal(&b, NULL);
    return ERR_OK;
}

/* Insert a token with the given secret. admin_mu held. */
static enum err create_locked(struct auth *a, const struct auth_token_spec *spec,
                              const char *secret, int64_t *id_out, struct errbuf *eb)
{
    struct catalog_token row;
    char perms[64];
    char *dbjson = NULL;
    unsigned bits = spec->perms ? spec->perms : AUTH_PERM_DEFAULT;
    enum err rc;

    rc = check_name(spec->name, eb);
    if (rc == ERR_OK)
        rc = check_description(spec->description, eb);
    if (rc == ERR_OK)
        rc = check_perms(bits, eb);
    if (rc == ERR_OK && spec->expires_at_us && spec->expires_at_us <= clock_now_us())
        rc = errbuf_set(eb, ERR_INVAL, "expiry: the time is in the past");
    if (rc == ERR_OK)
        rc = databases_json(spec->databases, spec->ndatabases, &dbjson, eb);
    if (rc != ERR_OK)
        return rc;

    auth_perms_format(bits, perms, sizeof(perms));
    memset(&row, 0, sizeof(row));
    row.name = (char *)spec->name;
    row.description = (char *)(spec->description ? spec->description : "");
    auth_hash_secret(secret, strlen(secret), row.token_hash);
    row.permissions = perms;
    row.databases = dbjson;
    row.expires_at_us = spec->expires_at_us;
    row.enabled = true;
    rc = catalog_token_insert(a->catalog, &row, id_out, eb);
    free(dbjson);
    if (rc == ERR_OK)
        rc = auth_rebuild_locked(a, eb);
    return rc;
}

enum err auth_token_create(struct auth *a, const struct auth_token_spec *spec, char **token_out,
                           int64_t *id_out, struct errbuf *eb)
{
    char secret[AUTH_TOKEN_CHARS + 1];
    enum err rc;

    rc = auth_token_generate(secret, eb);
    if (rc != ERR_OK)
        return rc;
    pthread_mutex_lock(&a->admin_mu);
    rc = create_locked(a, spec, secret, id_out, eb);
    pthread_mutex_unlock(&a->admin_mu);
    if (rc == ERR_OK)
        *token_out = xstrdup(secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

/* Resolve "12" or "name" to a catalog row. */
static enum err find_row(struct auth *a, const char *ref, struct catalog_token *out,
                         struct errbuf *eb)
{
    char *end;
    long long id;
    enum err rc;

    if (!ref || !*ref)
        return errbuf_set(eb, ERR_INVAL, "token id or name: required");
    if (strlen(ref) > ARC_MAX_TOKEN_NAME)
        return errbuf_set(eb, ERR_NOTFOUND, "token not found");
    id = strtoll(ref, &end, 10);
    if (*end == '\0' && id > 0) {
        rc = catalog_token_get_by_id(a->catalog, id, out, eb);
        if (rc != ERR_NOTFOUND)
            return rc;
    }
    rc = catalog_token_get_by_name(a->catalog, ref, out, eb);
    if (rc == ERR_NOTFOUND)
        return errbuf_set(eb, ERR_NOTFOUND, "token '%s' not found", ref);
    return rc;
}

static void info_from_row(const struct catalog_token *t, struct auth_token_info *out)
{
    struct errbuf eb;

    memset(out, 0, sizeof(*out));
    out->id = t->id;
    out->name = xstrdup(t->name);
    out->description = xstrdup(t->description ? t->description : "");
    if (auth_perms_parse(t->permissions, &out->perms, &eb) != ERR_OK)
        out->perms = 0;
    if (t->databases &&
        auth_databases_parse(t->databases, &out->databases, &out->ndatabases, &eb) != ERR_OK) {
        out->databases = xcalloc(1, sizeof(char *));
        out->ndatabases = 0;
    }
    out->created_at_us = t->created_at_us;
    out->last_used_at_us = t->last_used_at_us;
    out->expires_at_us = t->expires_at_us;
    out->enabled = t->enabled;
}

enum err auth_token_get(struct auth *a, const char *ref, struct auth_token_info *out,
                        struct errbuf *eb)
{
    struct catalog_token row;
    int64_t mem_us;
    enum err rc;

    rc = find_row(a, ref, &row, eb);
    if (rc != ERR_OK)
        return rc;
    info_from_row(&row, out);
    mem_us = auth_memory_last_used(a, row.token_hash);
    if (mem_us > out->last_used_at_us)
        out->last_used_at_us = mem_us;
    catalog_token_release(&row);
    return ERR_OK;
}

enum err auth_token_list(struct auth *a, struct auth_token_info **out, size_t *n_out,
                         struct errbuf *eb)
{
    struct catalog_token *rows = NULL;
    struct auth_token_info *v;
    size_t n = 0, i;
    int64_t mem_us;
    enum err rc;

    rc = catalog_token_list(a->catalog, &rows, &n, eb);
    if (rc != ERR_OK)
        return rc;
    v = xcalloc(n ? n : 1, sizeof(*v));
    for (i = 0; i < n; i++) {
        info_from_row(&rows[i], &v[i]);
        mem_us = auth_memory_last_used(a, rows[i].token_hash);
        if (mem_us > v[i].last_used_at_us)
            v[i].last_used_at_us = mem_us;
    }
    catalog_token_list_free(rows, n);
    *out = v;
    *n_out = n;
    return ERR_OK;
}

enum err auth_token_update(struct auth *a, const char *ref, const struct auth_token_update *u,
                           struct errbuf *eb)
{
    struct catalog_token row;
    char perms[64];
    char *old_name, *old_desc, *old_perms, *old_dbs, *dbjson = NULL;
    enum err rc = ERR_OK;

    if (u->name)
        rc = check_name(u->name, eb);
    if (rc == ERR_OK)
        rc = check_description(u->description, eb);
    if (rc == ERR_OK && u->set_perms) {
        if (u->perms == 0)
            rc = errbuf_set(eb, ERR_INVAL, "permissions: empty list");
        else
            rc = check_perms(u->perms, eb);
    }
    if (rc == ERR_OK && u->set_expires && u->expires_at_us &&
        u->expires_at_us <= clock_now_us())
        rc = errbuf_set(eb, ERR_INVAL, "expiry: the time is in the past");
    if (rc == ERR_OK && u->set_databases)
        rc = databases_json(u->databases, u->ndatabases, &dbjson, eb);
    if (rc != ERR_OK)
        return rc;

    pthread_mutex_lock(&a->admin_mu);
    rc = find_row(a, ref, &row, eb);
    if (rc != ERR_OK)
        goto out_unlock;
    /* Swap in borrowed replacements; the originals are restored for release. */
    old_name = row.name;
    old_desc = row.description;
    old_perms = row.permissions;
    old_dbs = row.databases;
    if (u->name)
        row.name = (char *)u->name;
    if (u->description)
        row.description = (char *)u->description;
    if (u->set_perms) {
        auth_perms_format(u->perms, perms, sizeof(perms));
        row.permissions = perms;
    }
    if (u->set_databases)
        row.databases = dbjson;
    if (u->set_enabled)
        row.enabled = u->enabled;
    if (u->set_expires)
        row.expires_at_us = u->expires_at_us;
    rc = catalog_token_update(a->catalog, &row, eb);
    row.name = old_name;
    row.description = old_desc;
    row.permissions = old_perms;
    row.databases = old_dbs;
    catalog_token_release(&row);
    if (rc == ERR_OK)
        rc = auth_rebuild_locked(a, eb);
out_unlock:
    pthread_mutex_unlock(&a->admin_mu);
    free(dbjson);
    return rc;
}

enum err auth_token_delete(struct auth *a, const char *ref, struct errbuf *eb)
{
    struct catalog_token row;
    enum err rc;

    pthread_mutex_lock(&a->admin_mu);
    rc = find_row(a, ref, &row, eb);
    if (rc == ERR_OK) {
        rc = catalog_token_delete(a->catalog, row.id, eb);
        catalog_token_release(&row);
        if (rc == ERR_OK)
            rc = auth_rebuild_locked(a, eb);
    }
    pthread_mutex_unlock(&a->admin_mu);
    return rc;
}

enum err auth_token_rotate(struct auth *a, const char *ref, char **token_out,
                           struct errbuf *eb)
{
    char secret[AUTH_TOKEN_CHARS + 1];
    uint8_t hash[CATALOG_TOKEN_HASH_LEN];
    struct catalog_token row;
    enum err rc;

    rc = auth_token_generate(secret, eb);
    if (rc != ERR_OK)
        return rc;
    auth_hash_secret(secret, strlen(secret), hash);
    pthread_mutex_lock(&a->admin_mu);
    rc = find_row(a, ref, &row, eb);
    if (rc == ERR_OK) {
        rc = catalog_token_set_hash(a->catalog, row.id, hash, eb);
        catalog_token_release(&row);
        if (rc == ERR_OK)
            rc = auth_rebuild_locked(a, eb);
    }
    pthread_mutex_unlock(&a->admin_mu);
    if (rc == ERR_OK)
        *token_out = xstrdup(secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

void auth_token_info_release(struct auth_token_info *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->description);
    auth_string_list_free(t->databases, t->ndatabases);
    memset(t, 0, sizeof(*t));
}

void auth_token_info_list_free(struct auth_token_info *v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        auth_token_info_release(&v[i]);
    free(v);
}

enum err auth_token_info_json(const struct auth_token_info *t, struct buf *b)
{
    enum err rc;

    rc = buf_printf(b, "{\"id\":%lld,\"name\":", (long long)t->id);
    if (rc == ERR_OK)
        rc = buf_append_json_str(b, t->name, strlen(t->name));
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"description\":");
    if (rc == ERR_OK)
        rc = buf_append_json_str(b, t->description, strlen(t->description));
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"permissions\":");
    if (rc == ERR_OK)
        rc = auth_perms_to_json(t->perms, b);
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"databases\":");
    if (rc == ERR_OK)
        rc = t->databases
                 ? auth_databases_to_json((const char *const *)t->databases, t->ndatabases, b)
                 : buf_append_str(b, "null");
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"created_at\":");
    if (rc == ERR_OK)
        rc = auth_time_to_json(t->created_at_us, b);
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"last_used_at\":");
    if (rc == ERR_OK)
        rc = auth_time_to_json(t->last_used_at_us, b);
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"expires_at\":");
    if (rc == ERR_OK)
        rc = auth_time_to_json(t->expires_at_us, b);
    if (rc == ERR_OK)
        rc = buf_printf(b, ",\"enabled\":%s}", t->enabled ? "true" : "false");
    return rc;
}

/* ---- bootstrap ------------------------------------------------------------ */

enum err auth_bootstrap(struct auth *a, const char *bootstrap_token, char **printed_token_out,
                        struct errbuf *eb)
{
    char secret[AUTH_TOKEN_CHARS + 1] = {0};
    struct auth_token_spec spec = {.name = AUTH_BOOTSTRAP_NAME,
                                   .description = "bootstrap admin token",
                                   .perms = AUTH_PERM_ADMIN};
    uint8_t hash[CATALOG_TOKEN_HASH_LEN];
    struct catalog_token row;
    bool given = bootstrap_token && *bootstrap_token;
    int64_t count = 0;
    enum err rc;

    *printed_token_out = NULL;
    if (given && strlen(bootstrap_token) > AUTH_MAX_SECRET_LEN)
        return errbuf_set(eb, ERR_INVAL, "bootstrap token: longer than %d bytes",
                          AUTH_MAX_SECRET_LEN);

    pthread_mutex_lock(&a->admin_mu);
    rc = catalog_token_count(a->catalog, &count, eb);
    if (rc != ERR_OK)
        goto out_unlock;

    if (count == 0) {
        if (!given) {
            rc = auth_token_generate(secret, eb);
            if (rc != ERR_OK)
                goto out_unlock;
        }
        rc = create_locked(a, &spec, given ? bootstrap_token : secret, NULL, eb);
        if (rc == ERR_OK && !given)
            *printed_token_out = xstrdup(secret);
        OPENSSL_cleanse(secret, sizeof(secret));
        goto out_unlock;
    }
    if (!given)
        goto out_unlock;

    /* Tokens exist: make sure the configured secret is a working admin token. */
    auth_hash_secret(bootstrap_token, strlen(bootstrap_token), hash);
    rc = catalog_token_get_by_hash(a->catalog, hash, &row, eb);
    if (rc == ERR_OK) {
        if (!row.enabled || strcmp(row.permissions, "admin") != 0 || row.expires_at_us) {
            free(row.permissions);
            row.permissions = xstrdup("admin");
            row.enabled = true;
            row.expires_at_us = 0;
            rc = catalog_token_update(a->catalog, &row, eb);
            if (rc == ERR_OK)
                rc = auth_rebuild_locked(a, eb);
        }
        catalog_token_release(&row);
        goto out_unlock;
    }
    if (rc != ERR_NOTFOUND)
        goto out_unlock;
    rc = create_locked(a, &spec, bootstrap_token, NULL, eb);
    if (rc == ERR_CONFLICT) {
        /* "admin" belongs to another secret: keep it, use "bootstrap". */
        spec.name = "bootstrap";
        rc = create_locked(a, &spec, bootstrap_token, NULL, eb);
        if (rc == ERR_CONFLICT &&
            catalog_token_get_by_name(a->catalog, "bootstrap", &row, eb) == ERR_OK) {
            /* An older bootstrap secret was replaced in the environment. */
            rc = catalog_token_set_hash(a->catalog, row.id, hash, eb);
            if (rc == ERR_OK) {
                free(row.permissions);
                row.permissions = xstrdup("admin");
                row.enabled = true;
                row.expires_at_us = 0;
                rc = catalog_token_update(a->catalog, &row, eb);
            }
            catalog_token_release(&row);
            if (rc == ERR_OK)
                rc = auth_rebuild_locked(a, eb);
        }
    }
out_unlock:
    pthread_mutex_unlock(&a->admin_mu);
    return rc;
}
