/* cache.c - size-capped LRU of remote Parquet files on local disk (cache.h).
 *
 * Index: a chained hash table of entries keyed by storage key, plus a doubly
 * linked list in recency order (head = most recently used). Eviction walks from
 * the tail and skips entries whose lease (pin_until) has not expired. All state
 * is under one mutex; file deletions happen under it too (they are cheap
 * unlinks), so the index and the directory never disagree for another thread. */
#include "storage/cache.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

#include "core/clock.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

struct centry {
    char *key;                  /* storage key, owned */
    uint64_t bytes;             /* file size */
    int64_t pin_until_ms;       /* monotonic ms; not evicted before */
    struct centry *hnext;       /* hash chain */
    struct centry *prev, *next; /* recency list */
};

struct s3cache {
    char *dir, *tmpdir;
    uint64_t max_bytes;
    int64_t pin_ms;
    pthread_mutex_t mu;
    struct centry **tab; /* nbuckets chains */
    size_t nbuckets, n;
    struct centry *head, *tail;
    uint64_t bytes, hits, misses, evictions;
    _Atomic uint64_t tmpseq;
    struct metric *m_hits, *m_misses, *m_evictions, *m_bytes;
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int64_t now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

static struct centry *find(struct s3cache *c, const char *key)
{
    struct centry *e = c->tab[hash_key(key) & (c->nbuckets - 1)];
    while (e && strcmp(e->key, key) != 0)
        e = e->hnext;
    return e;
}

static void list_unlink(struct s3cache *c, struct centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_head(struct s3cache *c, struct centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void grow(struct s3cache *c)
{
    size_t nb = c->nbuckets * 2, i;
    struct centry **t = xcalloc(nb, sizeof(*t));

    for (i = 0; i < c->nbuckets; i++) {
        struct centry *e = c->tab[i], *nx;
        for (; e; e = nx) {
            size_t b = hash_key(e->key) & (nb - 1);
            nx = e->hnext;
            e->hnext = t[b];
            t[b] = e;
        }
    }
    free(c->tab);
    c->tab = t;
    c->nbuckets = nb;
}

static void drop(struct s3cache *c, struct centry *e, bool unlink_file)
{
    struct centry **pp = &c->tab[hash_key(e->key) & (c->nbuckets - 1)];
    char path[4096];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(c, e);
    c->n--;
    c->bytes -= e->bytes;
    if (unlink_file && s3cache_path(c, e->key, path, sizeof(path)) == ERR_OK &&
        unlink(path) != 0 && errno != ENOENT)
        log_warn("cache: cannot remove file", "path=%s error=\"%s\"", path, strerror(errno));
    free(e->key);
    free(e);
}

static void set_gauge(struct s3cache *c)
{
    if (c->m_bytes)
        metric_set(c->m_bytes, (int64_t)c->bytes);
}

static void add_locked(struct s3cache *c, const char *key, uint64_t bytes, int64_t pin_until)
{
    struct centry *e = find(c, key);

    if (e) {
        c->bytes -= e->bytes;
        list_unlink(c, e);
    } else {
        size_t b;
        if (c->n + 1 > c->nbuckets)
            grow(c);
        e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        b = hash_key(key) & (c->nbuckets - 1);
        e->hnext = c->tab[b];
        c->tab[b] = e;
        c->n++;
    }
    e->bytes = bytes;
    if (pin_until > e->pin_until_ms)
        e->pin_until_ms = pin_until;
    c->bytes += bytes;
    list_push_head(c, e);
}

static size_t evict_locked(struct s3cache *c)
{
    struct centry *e = c->tail, *pv;
    int64_t now = now_ms();
    size_t evicted = 0;

    if (!c->max_bytes)
        return 0;
    for (; e && c->bytes > c->max_bytes; e = pv) {
        pv = e->prev;
        if (e->pin_until_ms > now)
            continue; /* a query may still open it */
        drop(c, e, true);
        evicted++;
    }
    c->evictions += evicted;
    if (evicted && c->m_evictions)
        metric_add(c->m_evictions, evicted);
    set_gauge(c);
    return evicted;
}

/* ---- scan at open ---------------------------------------------------------- */

struct found {
    char *key;
    uint64_t bytes;
    int64_t mtime;
};

struct scan {
    struct found *v;
    size_t n, cap;
};

static void scan_dir(struct s3cache *c, const char *rel, struct scan *s, int depth)
{
    char path[4096];
    DIR *d;
    struct dirent *de;

    if (depth > 16)
        return;
    snprintf(path, sizeof(path), "%s%s%s", c->dir, rel[0] ? "/" : "", rel);
    d = opendir(path);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char sub[4096], full[4096];
        struct stat sb;
        size_t nl = strlen(de->d_name);
        int n;
        if (de->d_name[0] == '.')
            continue; /* ., .., and .tmp (cleared separately) */
        n = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub))
            continue;
        if (snprintf(full, sizeof(full), "%s/%s", c->dir, sub) >= (int)sizeof(full) ||
            lstat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            scan_dir(c, sub, s, depth + 1);
        } else if (S_ISREG(sb.st_mode) && nl > 8 && !strcmp(de->d_name + nl - 8, ".parquet")) {
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
            }
            s->v[s->n].key = xstrdup(sub);
            s->v[s->n].bytes = (uint64_t)sb.st_size;
            s->v[s->n].mtime = (int64_t)sb.st_mtime;
            s->n++;
        }
    }
    closedir(d);
}

static int cmp_mtime(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

enum err s3cache_open(const struct s3cache_opts *o, struct s3cache **out, struct errbuf *eb)
{
    struct s3cache *c;
    struct scan s = {0};
    size_t i, n;
    DIR *d;
    enum err rc;

    c = xcalloc(1, sizeof(*c));
    c->dir = xstrdup(o->dir);
    n = strlen(c->dir);
    while (n > 1 && c->dir[n - 1] == '/')
        c->dir[--n] = '\0';
    c->tmpdir = xmalloc(n + 6);
    snprintf(c->tmpdir, n + 6, "%s/.tmp", c->dir);
    c->max_bytes = o->max_bytes;
    c->pin_ms = o->pin_ms;
    c->nbuckets = 256;
    c->tab = xcalloc(c->nbuckets, sizeof(*c->tab));
    pthread_mutex_init(&c->mu, NULL);
    if (o->metrics) {
        c->m_hits = metrics_counter(o->metrics, "arc_storage_cache_hits_total",
                                    "Remote files found in the local cache", NULL);
        c->m_misses = metrics_counter(o->metrics, "arc_storage_cache_misses_total",
                                      "Remote files downloaded into the cache", NULL);
        c->m_evictions = metrics_counter(o->metrics, "arc_storage_cache_evictions_total",
                                         "Files evicted from the cache", NULL);
        c->m_bytes = metrics_gauge(o->metrics, "arc_storage_cache_bytes",
                                   "Bytes of remote files in the local cache", NULL);
    }
    rc = fileio_mkdirs(c->tmpdir, 0755, NULL, eb);
    if (rc) {
        s3cache_free(c);
        return rc;
    }
    /* stale downloads of a previous process */
    d = opendir(c->tmpdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            char p[4096];
            if (de->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", c->tmpdir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    scan_dir(c, "", &s, 0);
    if (s.n)
        qsort(s.v, s.n, sizeof(*s.v), cmp_mtime);
    for (i = 0; i < s.n; i++) {
        add_locked(c, s.v[i].key, s.v[i].bytes, 0);
        free(s.v[i].key);
    }
    free(s.v);
    evict_locked(c);
    *out = c;
    return ERR_OK;
}

void s3cache_free(struct s3cache *c)
{
    struct centry *e, *nx;

    if (!c)
        return;
    for (e = c->head; e; e = nx) {
        nx = e->next;
        free(e->key);
        free(e);
    }
    free(c->tab);
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    free(c->tmpdir);
    free(c);
}

enum err s3cache_path(const struct s3cache *c, const char *key, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/%s", c->dir, key);
    return (n < 0 || (size_t)n >= out_len) ? ERR_LIMIT : ERR_OK;
}

enum err s3cache_tmp_path(struct s3cache *c, char *out, size_t out_len)
{
    uint64_t seq = atomic_fetch_add(&c->tmpseq, 1);
    int n = snprintf(out, out_len, "%s/%d-%llu.download", c->tmpdir, (int)getpid(),
                     (unsigned long long)seq);
    return (n < 0 || (size_t)n >= out_len) ? ERR_LIMIT : ERR_OK;
}

bool s3cache_acquire(struct s3cache *c, const char *key)
{
    struct centry *e;
    bool hit;

    pthread_mutex_lock(&c->mu);
    e = find(c, key);
    if (e) {
        char path[4096];
        /* the file was removed behind our back (cache dir cleaned): a miss */
        if (s3cache_path(c, key, path, sizeof(path)) != ERR_OK || access(path, R_OK) != 0) {
            drop(c, e, false);
            set_gauge(c);
            e = NULL;
        }
    }
    hit = e != NULL;
    if (e) {
        int64_t until = c->pin_ms ? now_ms() + c->pin_ms : 0;
        list_unlink(c, e);
        list_push_head(c, e);
        if (until > e->pin_until_ms)
            e->pin_until_ms = until;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    if (hit && c->m_hits)
        metric_add(c->m_hits, 1);
    if (!hit && c->m_misses)
        metric_add(c->m_misses, 1);
    return hit;
}

void s3cache_add(struct s3cache *c, const char *key, uint64_t bytes)
{
    pthread_mutex_lock(&c->mu);
    add_locked(c, key, bytes, c->pin_ms ? now_ms() + c->pin_ms : 0);
    evict_locked(c);
    pthread_mutex_unlock(&c->mu);
}

void s3cache_remove(struct s3cache *c, const char *key)
{
    struct centry *e;
    char path[4096];

    pthread_mutex_lock(&c->mu);
    e = find(c, key);
    if (e)
        drop(c, e, true);
    else if (s3cache_path(c, key, path, sizeof(path)) == ERR_OK)
        unlink(path);
    set_gauge(c);
    pthread_mutex_unlock(&c->mu);
}

size_t s3cache_evict(struct s3cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = evict_locked(c);
    pthread_mutex_unlock(&c->mu);
    return n;
}

void s3cache_stats(struct s3cache *c, struct s3cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->bytes = c->bytes;
    out->files = c->n;
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}
