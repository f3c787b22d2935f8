/* cache.c - the query result cache: encoded answers of identical queries served
 * from memory, never stale.
 *
 * An entry is the complete encoded answer (body bytes, content type, profile
 * header) under an opaque key the caller builds from everything that shapes the
 * answer (database, SQL text, format, options). Freshness is not a guess: the
 * entry records, for every (database, measurement) the query read, the data
 * generation it saw (bufmgr_generation(), read *before* the query took its
 * snapshot). A lookup asks for the current generations through the gen callback
 * and drops the entry if any differs: any write or file change to a measurement
 * the query read invalidates it, a write to another measurement does not. On top
 * of that, entries expire after the TTL (bounding what volatile-but-undetected
 * SQL could serve) and the whole cache is an LRU capped at max_bytes.
 *
 * Principal scope: the key does not hold the token. Instead every hit re-checks
 * each database the entry read against the caller's can_db, so a cached answer
 * reaches exactly the callers who could have computed it.
 *
 * Layout: a chained hash table (FNV-1a of the key) plus a doubly linked LRU list,
 * one mutex. Lookups copy the body out under the mutex; answers are bounded by
 * max_bytes / 4 per entry so no single entry can flush the whole cache. */
#include "query/query.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"

#define QC_MIN_BUCKETS 1024

struct qc_dep {
    char *database, *measurement; /* owned */
    uint64_t gen;                 /* generation seen before the query's snapshot */
};

struct qc_entry {
    struct qc_entry *hnext;       /* hash chain */
    struct qc_entry *prev, *next; /* LRU: head = most recent */
    uint64_t hash;
    char *key;                    /* owned, keylen bytes */
    size_t keylen;
    char *body;                   /* owned encoded answer */
    size_t len;
    char *content_type, *profile; /* owned; profile may be NULL */
    struct qc_dep *deps;
    size_t ndeps;
    int64_t expires_ns;           /* monotonic */
    size_t cost;                  /* bytes charged against max_bytes */
};

struct query_cache {
    struct query_cache_opts o;
    pthread_mutex_t mu;
    struct qc_entry **buckets;
    size_t nbuckets;
    struct qc_entry *head, *tail; /* LRU list */
    struct query_cache_stats st;  /* counters; entries/bytes kept current */
};

static int64_t now_ns(const struct query_cache *c)
{
    return c->o.now_ns ? c->o.now_ns(c->o.gen_ctx) : clock_mono_ns();
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

struct query_cache *query_cache_new(const struct query_cache_opts *o)
{
    struct query_cache *c = xcalloc(1, sizeof(*c));

    c->o = *o;
    c->nbuckets = QC_MIN_BUCKETS;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    pthread_mutex_init(&c->mu, NULL);
    c->st.max_bytes = o->max_bytes;
    c->st.ttl_ms = o->ttl_ms;
    return c;
}

static void entry_free(struct qc_entry *e)
{
    for (size_t i = 0; i < e->ndeps; i++) {
        free(e->deps[i].database);
        free(e->deps[i].measurement);
    }
    free(e->deps);
    free(e->key);
    free(e->body);
    free(e->content_type);
    free(e->profile);
    free(e);
}

/* Unlink e from the hash chain and the LRU list and free it (c->mu held). */
static void entry_remove(struct query_cache *c, struct qc_entry *e)
{
    struct qc_entry **pp = &c->buckets[e->hash % c->nbuckets];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->st.entries--;
    c->st.bytes -= e->cost;
    entry_free(e);
}

static void lru_front(struct query_cache *c, struct qc_entry *e)
{
    if (c->head == e)
        return;
    /* unlink */
    if (e->prev)
        e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else if (c->tail == e)
        c->tail = e->prev;
    /* push front */
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

void query_cache_free(struct query_cache *c)
{
    if (!c)
        return;
    while (c->head)
        entry_remove(c, c->head);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct qc_entry *find(struct query_cache *c, const char *key, size_t keylen, uint64_t h)
{
    for (struct qc_entry *e = c->buckets[h % c->nbuckets]; e; e = e->hnext)
        if (e->hash == h && e->keylen == keylen && !memcmp(e->key, key, keylen))
            return e;
    return NULL;
}

enum query_cache_result query_cache_get(struct query_cache *c, const char *key, size_t keylen,
                                        query_can_db_fn *can_db, const void *can_db_ctx,
                                        struct buf *body, char **content_type, char **profile)
{
    uint64_t h = fnv1a(key, keylen);
    enum query_cache_result res = QUERY_CACHE_MISS;
    struct qc_entry *e;

    if (!c)
        return QUERY_CACHE_MISS;
    pthread_mutex_lock(&c->mu);
    e = find(c, key, keylen, h);
    if (!e) {
        c->st.misses++;
        goto out;
    }
    if (now_ns(c) >= e->expires_ns) {
        c->st.expirations++;
        c->st.misses++;
        entry_remove(c, e);
        goto out;
    }
    for (size_t i = 0; i < e->ndeps; i++) {
        if (c->o.gen(c->o.gen_ctx, e->deps[i].database, e->deps[i].measurement) !=
            e->deps[i].gen) {
            c->st.invalidations++;
            c->st.misses++;
            entry_remove(c, e);
            goto out;
        }
    }
    for (size_t i = 0; can_db && i < e->ndeps; i++) {
        if (!can_db(can_db_ctx, e->deps[i].database)) {
            /* not an answer for this caller: let the engine produce the 403 */
            c->st.misses++;
            goto out;
        }
    }
    if (buf_append(body, e->body, e->len) != ERR_OK) {
        c->st.misses++;
        goto out;
    }
    *content_type = xstrdup(e->content_type);
    *profile = e->profile ? xstrdup(e->profile) : NULL;
    lru_front(c, e);
    c->st.hits++;
    res = QUERY_CACHE_HIT;
out:
    pthread_mutex_unlock(&c->mu);
    return res;
}

/* Double the bucket array (c->mu held): chains stay short however many small
 * entries max_bytes admits. */
static void rehash(struct query_cache *c)
{
    size_t n = c->nbuckets * 2;
    struct qc_entry **b = xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < c->nbuckets; i++) {
        struct qc_entry *e = c->buckets[i], *nx;
        for (; e; e = nx) {
            nx = e->hnext;
            e->hnext = b[e->hash % n];
            b[e->hash % n] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

bool query_cache_put(struct query_cache *c, const char *key, size_t keylen,
                     const struct query_cache_dep *deps, size_t ndeps, const void *body,
                     size_t len, const char *content_type, const char *profile)
{
    uint64_t h = fnv1a(key, keylen);
    struct qc_entry *e, *old;
    size_t cost = len + keylen + sizeof(*e) + 64 * (ndeps + 1);

    if (!c || c->o.ttl_ms <= 0)
        return false;
    if (cost > c->o.max_bytes / 4) {
        pthread_mutex_lock(&c->mu);
        c->st.too_large++;
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    e = xcalloc(1, sizeof(*e));
    e->hash = h;
    e->key = xmalloc(keylen ? keylen : 1);
    memcpy(e->key, key, keylen);
    e->keylen = keylen;
    e->body = xmalloc(len ? len : 1);
    memcpy(e->body, body, len);
    e->len = len;
    e->content_type = xstrdup(content_type ? content_type : "application/octet-stream");
    e->profile = profile ? xstrdup(profile) : NULL;
    e->deps = xcalloc(ndeps ? ndeps : 1, sizeof(*e->deps));
    for (size_t i = 0; i < ndeps; i++) {
        e->deps[i].database = xstrdup(deps[i].database);
        e->deps[i].measurement = xstrdup(deps[i].measurement);
        e->deps[i].gen = deps[i].gen;
    }
    e->ndeps = ndeps;
    e->cost = cost;

    pthread_mutex_lock(&c->mu);
    if (c->st.entries + 1 > 2 * c->nbuckets)
        rehash(c);
    e->expires_ns = now_ns(c) + c->o.ttl_ms * 1000000LL;
    if ((old = find(c, key, keylen, h)) != NULL)
        entry_remove(c, old);
    while (c->tail && c->st.bytes + cost > c->o.max_bytes) {
        c->st.evictions++;
        entry_remove(c, c->tail);
    }
    e->hnext = c->buckets[h % c->nbuckets];
    c->buckets[h % c->nbuckets] = e;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    c->st.entries++;
    c->st.bytes += cost;
    c->st.stores++;
    pthread_mutex_unlock(&c->mu);
    return true;
}

size_t query_cache_clear(struct query_cache *c)
{
    size_t n;

    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    n = c->st.entries;
    while (c->head)
        entry_remove(c, c->head);
    c->st.clears++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void query_cache_note_uncacheable(struct query_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->st.uncacheable++;
    pthread_mutex_unlock(&c->mu);
}

void query_cache_get_stats(struct query_cache *c, struct query_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
