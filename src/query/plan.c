/* plan.c - parse + rewrite a statement once, keep the result by its text (plan.h).
 *
 * Cache: a hash table over (default database, SQL text) with an LRU list; one mutex.
 * Plans are immutable and reference-counted, so a hit costs a lookup and an
 * increment, and eviction never frees a plan that a running query still reads. */
#include "query/plan.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "duck/duck.h"
#include "query/native.h"

#define PLAN_BUCKETS 1024u

struct plan_cache {
    pthread_mutex_t mu;
    size_t capacity, count;
    struct query_plan *buckets[PLAN_BUCKETS];
    struct query_plan *lru_head, *lru_tail; /* head = most recently used */
    struct metric *m_hits, *m_misses;
};

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct plan_cache *plan_cache_new(size_t capacity, struct metrics *metrics)
{
    struct plan_cache *pc = xcalloc(1, sizeof(*pc));

    pthread_mutex_init(&pc->mu, NULL);
    pc->capacity = capacity;
    if (metrics) {
        pc->m_hits = metrics_counter(metrics, "arc_query_plan_cache_hits_total",
                                     "Statements whose parsed and rewritten plan was reused",
                                     NULL);
        pc->m_misses = metrics_counter(metrics, "arc_query_plan_cache_misses_total",
                                       "Statements parsed and rewritten", NULL);
    }
    return pc;
}

static void plan_free(struct query_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nrefs; i++) {
        struct plan_ref *r = &p->refs[i];
        free(r->database);
        free(r->measurement);
        free(r->view);
        for (size_t j = 0; j < r->nbounds; j++)
            free(r->bounds[j].sql);
        free(r->bounds);
        query_tagsets_free(r->tags, r->ntags);
        for (size_t j = 0; j < r->nnums; j++)
            free(r->nums[j].column);
        free(r->nums);
    }
    free(p->refs);
    for (size_t i = 0; i < p->nlatest_keys; i++)
        free(p->latest_keys[i]);
    free(p->latest_keys);
    nx_shape_free(p->native);
    nx_record_free(p->nx_rec);
    pthread_mutex_destroy(&p->nx_mu);
    free(p->sql);
    free(p->key);
    free(p);
}

void plan_cache_free(struct plan_cache *pc)
{
    struct query_plan *p, *n;

    if (!pc)
        return;
    for (p = pc->lru_head; p; p = n) {
        n = p->lru_next;
        plan_free(p); /* no query may be running */
    }
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}

/* ---- building ---------------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* DESCRIBE db.m where a part is a keyword (`default`) fails in DuckDB's parser.
 * Recognise DESCRIBE <name>[.<name>] (bare words or "quoted"; any case; optional
 * ';') and rebuild it with both parts quoted into out. false: not this shape (the
 * SQL goes to the parser unchanged). */
static bool quote_describe(const char *sql, struct buf *out)
{
    const char *p = sql;
    struct buf part[2];
    size_t nparts = 0;
    bool ok = false;

    while (is_space(*p))
        p++;
    if (strncasecmp(p, "DESCRIBE", 8) != 0 || !(p[8] == ' ' || p[8] == '\t' || p[8] == '\n'))
        return false;
    p += 8;
    while (is_space(*p))
        p++;
    buf_init(&part[0], 1024);
    buf_init(&part[1], 1024);
    for (;;) {
        struct buf *b = &part[nparts];
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p)
                    goto out;
                if (*p == '"') {
                    if (p[1] != '"')
                        break;
                    p++;
                }
                if (buf_append_char(b, *p) != ERR_OK)
                    goto out;
            }
            p++;
        } else {
            while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '_')
                if (buf_append_char(b, *p++) != ERR_OK)
                    goto out;
        }
        if (b->len == 0)
            goto out;
        nparts++;
        if (*p != '.' || nparts == 2)
            break;
        p++;
    }
    while (is_space(*p) || *p == ';')
        p++;
    if (*p)
        goto out;
    buf_append_str(out, "DESCRIBE ");
    for (size_t i = 0; i < nparts; i++) {
        if (i)
            buf_append_char(out, '.');
        duck_sql_ident_append(out, part[i].data);
    }
    ok = true;
out:
    buf_release(&part[0]);
    buf_release(&part[1]);
    return ok;
}

/* json_deserialize_sql of our own rewritten tree: a failure is our fault. */
static enum err deserialize(struct duck *d, const char *json, char **out, struct errbuf *eb)
{
    enum err rc = duck_query_text(d, "SELECT json_deserialize_sql($1::JSON)", json, out, eb);

    if (rc == ERR_OK && !*out)
        return errbuf_set(eb, ERR_INTERNAL, "json_deserialize_sql returned NULL");
    if (rc != ERR_OK) {
        errbuf_prefix(eb, "rewrite");
        if (rc == ERR_DB)
            eb->code = rc = ERR_INTERNAL;
    }
    return rc;
}

bool query_plan_bound_value(struct duck *d, const struct plan_bound *b, int64_t *out)
{
    struct errbuf eb;
    char *val = NULL, *end = NULL;
    long long v;
    bool ok = false;

    if (b->constant) {
        *out = b->value;
        return true;
    }
    errbuf_init(&eb);
    if (duck_query_text(d, b->sql, NULL, &val, &eb) == ERR_OK && val) {
        errno = 0;
        v = strtoll(val, &end, 10);
        if (end != val && !*end && errno == 0) {
            *out = v;
            ok = true;
        }
    }
    free(val);
    return ok;
}

static enum err plan_build(struct duck *d, const char *db, const char *sql, size_t len,
                           struct query_plan **out, struct errbuf *eb)
{
    struct query_rewrite rw = {0};
    struct query_plan *p = xcalloc(1, sizeof(*p));
    char *sqlz = xstrndup(sql, len), *tree = NULL;

    pthread_mutex_init(&p->nx_mu, NULL);
    struct buf dq;
    enum err rc;

    buf_init(&dq, 0);
    if (quote_describe(sqlz, &dq)) {
        free(sqlz);
        sqlz = buf_steal(&dq, NULL);
    }
    if ((rc = duck_query_text(d, "SELECT json_serialize_sql($1::VARCHAR)", sqlz, &tree, eb)) !=
        ERR_OK)
        goto out;
    if (!tree) {
        rc = errbuf_set(eb, ERR_INTERNAL, "json_serialize_sql returned NULL");
        goto out;
    }
    if ((rc = query_rewrite_tree(tree, strlen(tree), db, &rw, eb)) != ERR_OK)
        goto out;
    if ((rc = deserialize(d, rw.json, &p->sql, eb)) != ERR_OK)
        goto out;
    p->is_volatile = rw.is_volatile;
    p->max_rows = rw.max_rows;
    p->latest_keys = rw.latest_keys;
    p->nlatest_keys = rw.nlatest_keys;
    rw.latest_keys = NULL;
    rw.nlatest_keys = 0;
    p->native = rw.native;
    rw.native = NULL;
    p->refs = xcalloc(rw.nrefs ? rw.nrefs : 1, sizeof(*p->refs));
    p->nrefs = rw.nrefs;
    for (size_t i = 0; i < rw.nrefs; i++) {
        struct query_ref *s = &rw.refs[i];
        struct plan_ref *r = &p->refs[i];

        r->tags = s->tags; /* moved */
        r->ntags = s->ntags;
        s->tags = NULL;
        s->ntags = 0;
        r->nums = s->nums;
        r->nnums = s->nnums;
        s->nums = NULL;
        s->nnums = 0;
        r->database = xstrdup(s->database);
        r->measurement = xstrdup(s->measurement);
        r->view = xstrdup(s->view);
        r->bounds = xcalloc(s->nbounds ? s->nbounds : 1, sizeof(*r->bounds));
        for (size_t j = 0; j < s->nbounds; j++) {
            struct errbuf ignore;
            char *bsql = NULL;

            /* a bound we cannot turn back into SQL only costs pruning */
            errbuf_init(&ignore);
            if (deserialize(d, s->bounds[j].select_json, &bsql, &ignore) != ERR_OK)
                continue;
            struct plan_bound *b = &r->bounds[r->nbounds];
            b->op = s->bounds[j].op;
            b->sql = bsql;
            /* literals ('2016-01-01 05:00:00', $__timeFilter's) are the same at every
             * run: evaluate them once; now() - INTERVAL ... is evaluated per query */
            if (!rw.is_volatile) {
                if (!query_plan_bound_value(d, b, &b->value)) {
                    free(bsql);
                    continue;
                }
                b->constant = true;
            }
            r->nbounds++;
        }
    }
    p->refcnt = 1;
    *out = p;
    p = NULL;
out:
    plan_free(p);
    query_rewrite_release(&rw);
    buf_release(&dq);
    free(tree);
    free(sqlz);
    return rc;
}

/* ---- cache ------------------------------------------------------------------------- */

static void lru_unlink(struct plan_cache *pc, struct query_plan *p)
{
    if (p->lru_prev)
        p->lru_prev->lru_next = p->lru_next;
    else
        pc->lru_head = p->lru_next;
    if (p->lru_next)
        p->lru_next->lru_prev = p->lru_prev;
    else
        pc->lru_tail = p->lru_prev;
    p->lru_prev = p->lru_next = NULL;
}

static void lru_push_front(struct plan_cache *pc, struct query_plan *p)
{
    p->lru_prev = NULL;
    p->lru_next = pc->lru_head;
    if (pc->lru_head)
        pc->lru_head->lru_prev = p;
    pc->lru_head = p;
    if (!pc->lru_tail)
        pc->lru_tail = p;
}

static void put_locked(struct query_plan *p)
{
    if (--p->refcnt == 0)
        plan_free(p);
}

static void evict_locked(struct plan_cache *pc, struct query_plan *p)
{
    struct query_plan **pp = &pc->buckets[hash_key(p->key, p->key_len) % PLAN_BUCKETS];

    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    lru_unlink(pc, p);
    pc->count--;
    put_locked(p); /* the cache's reference */
}

enum err query_plan_get(struct plan_cache *pc, struct duck *d, const char *default_db,
                        const char *sql, size_t sql_len, struct query_plan **out,
                        struct errbuf *eb)
{
    size_t dblen = strlen(default_db), klen = dblen + 1 + sql_len;
    char *key = xmalloc(klen);
    uint64_t h;
    struct query_plan *p;
    enum err rc;

    memcpy(key, default_db, dblen + 1);
    memcpy(key + dblen + 1, sql, sql_len);
    h = hash_key(key, klen) % PLAN_BUCKETS;
    pthread_mutex_lock(&pc->mu);
    for (p = pc->buckets[h]; p; p = p->hnext) {
        if (p->key_len == klen && !memcmp(p->key, key, klen)) {
            p->refcnt++;
            lru_unlink(pc, p);
            lru_push_front(pc, p);
            pthread_mutex_unlock(&pc->mu);
            free(key);
            if (pc->m_hits)
                metric_add(pc->m_hits, 1);
            *out = p;
            return ERR_OK;
        }
    }
    pthread_mutex_unlock(&pc->mu);
    if (pc->m_misses)
        metric_add(pc->m_misses, 1);

    if ((rc = plan_build(d, default_db, sql, sql_len, &p, eb)) != ERR_OK) {
        free(key);
        return rc;
    }
    p->key = key;
    p->key_len = klen;
    if (pc->capacity == 0) {
        *out = p;
        return ERR_OK;
    }
    pthread_mutex_lock(&pc->mu);
    /* A concurrent miss may have inserted the same key: keep both, the older one
     * ages out of the LRU. */
    p->refcnt++; /* the cache's reference */
    p->hnext = pc->buckets[h];
    pc->buckets[h] = p;
    lru_push_front(pc, p);
    if (++pc->count > pc->capacity)
        evict_locked(pc, pc->lru_tail);
    pthread_mutex_unlock(&pc->mu);
    *out = p;
    return ERR_OK;
}

void query_plan_put(struct plan_cache *pc, struct query_plan *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&pc->mu);
    put_locked(p);
    pthread_mutex_unlock(&pc->mu);
}

/* ---- composing the statement ------------------------------------------------------- */

static bool starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

void query_plan_compose(const struct query_plan *p, const char *const *bodies,
                        struct buf *out)
{
    const char *s = p->sql, *rest = NULL;
    bool wrap = false;

    if (p->nrefs == 0) {
        buf_append_str(out, s);
        return;
    }
    /* DuckDB prints statements back in a fixed form: a query with CTEs starts with
     * "WITH " or "WITH RECURSIVE "; DESCRIBE/SUMMARIZE/... are not queries a WITH
     * can precede, so they become a subquery. */
    buf_append_str(out, "WITH ");
    if (starts_with(s, "WITH RECURSIVE ")) {
        buf_append_str(out, "RECURSIVE ");
        rest = s + strlen("WITH RECURSIVE ");
    } else if (starts_with(s, "WITH ")) {
        rest = s + strlen("WITH ");
    } else if (!starts_with(s, "SELECT ") && !starts_with(s, "(") &&
               !starts_with(s, "FROM ") && !starts_with(s, "VALUES ")) {
        wrap = true;
    }
    for (size_t i = 0; i < p->nrefs; i++) {
        if (i)
            buf_append_str(out, ", ");
        duck_sql_ident_append(out, p->refs[i].view);
        buf_append_str(out, " AS NOT MATERIALIZED (");
        buf_append_str(out, bodies[i]);
        buf_append_char(out, ')');
    }
    if (rest) {
        buf_append_str(out, ", ");
        buf_append_str(out, rest);
    } else if (wrap) {
        buf_append_str(out, " SELECT * FROM (");
        buf_append_str(out, s);
        buf_append_char(out, ')');
    } else {
        buf_append_char(out, ' ');
        buf_append_str(out, s);
    }
}
