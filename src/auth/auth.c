/* auth.c - the token table in memory and auth_check() on the request path.
 *
 * Design: the tokens table is small (tens to thousands of rows) and changes
 * rarely, while auth_check() runs on every request from many event-loop threads.
 * So the whole table lives in memory as an immutable snapshot: an array of
 * refcounted principals sorted by the first 8 bytes of their SHA-256. A check
 * hashes the presented secret, takes the read lock, binary-searches the prefix,
 * confirms the full hash with CRYPTO_memcmp (constant time), takes a reference
 * and drops the lock. No SQLite, no allocation.
 *
 * Every change (create, update, delete, rotate, bootstrap: auth_tokens.c; TTL
 * reload: here) writes the catalog first and then rebuilds the snapshot from the
 * catalog, under admin_mu so rebuilds never interleave; the new snapshot is
 * swapped in under the write lock. Requests keep their principal alive by its refcount, so a
 * token deleted mid-request is freed when the request releases it.
 *
 * Last-used times are kept in each principal (an atomic store, at most once a
 * second per token) and written in one transaction by auth_flush_last_used();
 * a rebuild carries pending times over to the new principal with the same hash. */
#include "auth/auth.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define USE_RECORD_GRANULARITY_US 1000000 /* record a token's use at most once a second */

/* ---- principals ----------------------------------------------------------- */

void auth_principal_ref(struct auth_principal *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void auth_principal_release(struct auth_principal *p)
{
    if (!p)
        return;
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(p->name);
    auth_string_list_free(p->databases, p->ndatabases);
    free(p);
}

bool auth_principal_has(const struct auth_principal *p, unsigned perm_bits)
{
    if (!p)
        return false;
    return (p->perms & AUTH_PERM_ADMIN) || (p->perms & perm_bits);
}

bool auth_principal_can_db(const struct auth_principal *p, const char *database)
{
    size_t i;

    if (!p || !p->databases)
        return true;
    if (!database)
        return false;
    for (i = 0; i < p->ndatabases; i++)
        if (strcmp(p->databases[i], database) == 0)
            return true;
    return false;
}

int64_t auth_principal_id(const struct auth_principal *p)
{
    return p->id;
}

const char *auth_principal_name(const struct auth_principal *p)
{
    return p->name;
}

unsigned auth_principal_perms(const struct auth_principal *p)
{
    return p->perms;
}

const char *const *auth_principal_databases(const struct auth_principal *p, size_t *n_out)
{
    *n_out = p->databases ? p->ndatabases : 0;
    return (const char *const *)p->databases;
}

int64_t auth_principal_expires_at_us(const struct auth_principal *p)
{
    return p->expires_at_us;
}

enum err auth_principal_json(const struct auth_principal *p, struct buf *b)
{
    enum err rc;

    rc = buf_printf(b, "{\"id\":%lld,\"name\":", (long long)p->id);
    if (rc == ERR_OK)
        rc = buf_append_json_str(b, p->name, strlen(p->name));
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"permissions\":");
    if (rc == ERR_OK)
        rc = auth_perms_to_json(p->perms, b);
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"databases\":");
    if (rc == ERR_OK)
        rc = p->databases ? auth_databases_to_json((const char *const *)p->databases,
                                                   p->ndatabases, b)
                          : buf_append_str(b, "null");
    if (rc == ERR_OK)
        rc = buf_append_str(b, ",\"expires_at\":");
    if (rc == ERR_OK)
        rc = auth_time_to_json(p->expires_at_us, b);
    if (rc == ERR_OK)
        rc = buf_append_char(b, '}');
    return rc;
}

static uint64_t hash_prefix(const uint8_t *h)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return v;
}

/* Decode the catalog's permissions/databases text. A row we cannot understand
 * fails closed: no permissions, no databases (and a warning). */
static struct auth_principal *principal_from_row(const struct catalog_token *t)
{
    struct auth_principal *p = xcalloc(1, sizeof(*p));
    struct errbuf eb;

    errbuf_init(&eb);
    atomic_init(&p->refs, 1);
    p->id = t->id;
    p->name = xstrdup(t->name);
    if (auth_perms_parse(t->permissions, &p->perms, &eb) != ERR_OK) {
        log_warn("token has unreadable permissions: denying all", "token=%lld error=\"%s\"",
                 (long long)t->id, eb.msg);
        p->perms = 0;
    }
    if (t->databases &&
        auth_databases_parse(t->databases, &p->databases, &p->ndatabases, &eb) != ERR_OK) {
        log_warn("token has an unreadable database list: denying all databases",
                 "token=%lld error=\"%s\"", (long long)t->id, eb.msg);
        p->databases = xcalloc(1, sizeof(char *));
        p->ndatabases = 0;
    }
    p->expires_at_us = t->expires_at_us;
    p->enabled = t->enabled;
    memcpy(p->hash, t->token_hash, sizeof(p->hash));
    p->prefix = hash_prefix(p->hash);
    atomic_init(&p->used_us, t->last_used_at_us);
    atomic_init(&p->flushed_us, t->last_used_at_us);
    return p;
}

/* ---- snapshot ------------------------------------------------------------- */

static int cmp_prefix(const void *a, const void *b)
{
    const struct auth_principal *x = *(struct auth_principal *const *)a;
    const struct auth_principal *y = *(struct auth_principal *const *)b;

    return x->prefix < y->prefix ? -1 : x->prefix > y->prefix;
}

/* First index whose prefix >= key. */
static size_t lower_bound(const struct auth_snapshot *s, uint64_t key)
{
    size_t lo = 0, hi = s->n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (s->v[mid]->prefix < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The principal with this hash, borrowed from s, or NULL. Caller holds the lock. */
struct auth_principal *auth_snapshot_find(const struct auth_snapshot *s, const uint8_t *hash)
{
    uint64_t key = hash_prefix(hash);
    size_t i;

    for (i = lower_bound(s, key); i < s->n && s->v[i]->prefix == key; i++)
        if (CRYPTO_memcmp(s->v[i]->hash, hash, CATALOG_TOKEN_HASH_LEN) == 0)
            return s->v[i];
    return NULL;
}

static void snapshot_release(struct auth_snapshot *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        auth_principal_release(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Rebuild the snapshot from the catalog and swap it in. admin_mu held. */
enum err auth_rebuild_locked(struct auth *a, struct errbuf *eb)
{
    struct catalog_token *rows = NULL;
    struct auth_snapshot next = {0}, old;
    struct auth_principal *prev;
    size_t n = 0, i;
    enum err rc;

    rc = catalog_token_list(a->catalog, &rows, &n, eb);
    if (rc != ERR_OK)
        return rc;
    next.v = xcalloc(n ? n : 1, sizeof(*next.v));
    for (i = 0; i < n; i++)
        next.v[i] = principal_from_row(&rows[i]);
    next.n = n;
    catalog_token_list_free(rows, n);
    qsort(next.v, next.n, sizeof(*next.v), cmp_prefix);

    pthread_rwlock_wrlock(&a->lock);
    /* Carry over uses recorded in memory but not yet flushed. */
    for (i = 0; i < next.n; i++) {
        prev = auth_snapshot_find(&a->snap, next.v[i]->hash);
        if (prev && prev->id == next.v[i]->id &&
            atomic_load(&prev->used_us) > atomic_load(&next.v[i]->used_us))
            atomic_store(&next.v[i]->used_us, atomic_load(&prev->used_us));
    }
    old = a->snap;
    a->snap = next;
    pthread_rwlock_unlock(&a->lock);
    atomic_store(&a->loaded_mono_ns, clock_mono_ns());
    snapshot_release(&old);
    return ERR_OK;
}

/* ---- lifetime ------------------------------------------------------------- */

enum err auth_new(struct catalog *c, const struct auth_opts *o, struct auth **out,
                  struct errbuf *eb)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    unsigned ttl_ms = (o && o->cache_ttl_ms) ? o->cache_ttl_ms : AUTH_DEFAULT_CACHE_TTL_MS;
    enum err rc;

    a->catalog = c;
    a->ttl_ns = (int64_t)ttl_ms * 1000000;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->admin_mu, NULL);
    pthread_mutex_lock(&a->admin_mu);
    rc = auth_rebuild_locked(a, eb);
    pthread_mutex_unlock(&a->admin_mu);
    if (rc != ERR_OK) {
        errbuf_prefix(eb, "load tokens");
        auth_free(a);
        return rc;
    }
    *out = a;
    return ERR_OK;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    snapshot_release(&a->snap);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->admin_mu);
    free(a);
}

enum err auth_reload(struct auth *a, struct errbuf *eb)
{
    enum err rc;

    pthread_mutex_lock(&a->admin_mu);
    rc = auth_rebuild_locked(a, eb);
    pthread_mutex_unlock(&a->admin_mu);
    return rc;
}

/* ---- request path ----------------------------------------------------------- */

enum err auth_check(struct auth *a, const char *token, struct auth_principal **out,
                    struct errbuf *eb)
{
    uint8_t hash[CATALOG_TOKEN_HASH_LEN];
    struct auth_principal *p;
    int64_t now_us;
    size_t len;

    if (!token || !*token)
        return errbuf_set(eb, ERR_AUTH, "Authentication required");
    len = strnlen(token, AUTH_MAX_SECRET_LEN + 1);
    if (len > AUTH_MAX_SECRET_LEN)
        return errbuf_set(eb, ERR_AUTH, "Invalid or expired token");
    auth_hash_secret(token, len, hash);

    pthread_rwlock_rdlock(&a->lock);
    p = auth_snapshot_find(&a->snap, hash);
    if (p)
        auth_principal_ref(p);
    pthread_rwlock_unlock(&a->lock);
    if (!p)
        return errbuf_set(eb, ERR_AUTH, "Invalid or expired token");

    now_us = clock_now_us();
    if (!p->enabled) {
        errbuf_set(eb, ERR_AUTH, "Token '%s' is disabled", p->name);
        auth_principal_release(p);
        return ERR_AUTH;
    }
    if (p->expires_at_us && p->expires_at_us <= now_us) {
        errbuf_set(eb, ERR_AUTH, "Token '%s' has expired", p->name);
        auth_principal_release(p);
        return ERR_AUTH;
    }
    /* Avoid a shared-cacheline store on every request: once a second is plenty. */
    if (now_us - atomic_load_explicit(&p->used_us, memory_order_relaxed) >=
        USE_RECORD_GRANULARITY_US)
        atomic_store_explicit(&p->used_us, now_us, memory_order_relaxed);
    *out = p;
    return ERR_OK;
}

enum err auth_flush_last_used(struct auth *a, struct errbuf *eb)
{
    struct catalog_token_touch *items = NULL;
    struct auth_principal **held = NULL;
    size_t n = 0, i;
    enum err rc = ERR_OK;
    int64_t used;

    pthread_mutex_lock(&a->admin_mu);
    pthread_rwlock_rdlock(&a->lock);
    if (a->snap.n) {
        items = xcalloc(a->snap.n, sizeof(*items));
        held = xcalloc(a->snap.n, sizeof(*held));
    }
    for (i = 0; i < a->snap.n; i++) {
        struct auth_principal *p = a->snap.v[i];
        used = atomic_load(&p->used_us);
        if (used > atomic_load(&p->flushed_us)) {
            items[n].id = p->id;
            items[n].last_used_at_us = used;
            auth_principal_ref(p);
            held[n++] = p;
        }
    }
    pthread_rwlock_unlock(&a->lock);

    if (n)
        rc = catalog_token_touch(a->catalog, items, n, eb);
    for (i = 0; i < n; i++) {
        if (rc == ERR_OK)
            atomic_store(&held[i]->flushed_us, items[i].last_used_at_us);
        auth_principal_release(held[i]);
    }
    free(items);
    free(held);

    if (rc == ERR_OK && clock_mono_ns() - atomic_load(&a->loaded_mono_ns) >= a->ttl_ns)
        rc = auth_rebuild_locked(a, eb);
    pthread_mutex_unlock(&a->admin_mu);
    return rc;
}

/* Newer last-used time known only in memory (not flushed yet), else 0. */
int64_t auth_memory_last_used(struct auth *a, const uint8_t *hash)
{
    struct auth_principal *p;
    int64_t v = 0;

    pthread_rwlock_rdlock(&a->lock);
    p = auth_snapshot_find(&a->snap, hash);
    if (p)
        v = atomic_load(&p->used_us);
    pthread_rwlock_unlock(&a->lock);
    return v;
}
