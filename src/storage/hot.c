/* hot.c - the hot tier (hot.h): recently written files' rows, in memory.
 *
 * A block is one flushed batch (and its time order), shared by the files cut from
 * it; an entry is one file: its key and its range of the block's rows. Entries sit
 * in a chained hash table by key; blocks in a FIFO list, oldest first, which is the
 * eviction order. A block is freed when it has been evicted (or all its files
 * forgotten) and no query pins it. One mutex guards everything: a query takes it
 * once per file it lists, a flush once per batch. */
#include "storage/hot.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/metrics.h"

#define HOT_MAX_MEMOS 8 /* derived row lists kept per block */

struct hot_ent {
    char *key;
    struct hot_blk *blk;
    size_t start, count;
    struct hot_ent *next; /* hash chain */
};

struct hot_memo {
    size_t start; /* the file's first row (identifies it within the block) */
    char *name;
    uint32_t *rows;
    size_t n;
    struct hot_memo *next;
};

struct hot_blk {
    struct batch *b;
    struct hot_memo *memos; /* derived row lists of its files (hot_memo_put) */
    uint32_t *perm;         /* NULL = b in time order */
    size_t bytes;
    size_t refs;           /* pins by queries */
    bool evicted;          /* out of the list and the table */
    struct hot_ent **ents; /* its entries still in the table (NULL once forgotten) */
    size_t nents, live;
    struct hot_blk *prev, *next; /* FIFO, oldest at head */
};

struct hot {
    pthread_mutex_t mu;
    size_t max_bytes, bytes;
    struct hot_ent **tab;
    size_t tab_size, nents; /* tab_size: a power of two */
    struct hot_blk *head, *tail;
    uint64_t nblocks, hits, misses, evicted;
    struct metric *m_bytes, *m_files, *m_hits, *m_misses, *m_evicted; /* may be NULL */
};

static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: keys are short, lookups few */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct hot *hot_new(size_t max_bytes)
{
    struct hot *h = xcalloc(1, sizeof(*h));

    pthread_mutex_init(&h->mu, NULL);
    h->max_bytes = max_bytes;
    h->tab_size = 256;
    h->tab = xcalloc(h->tab_size, sizeof(*h->tab));
    return h;
}

void hot_set_metrics(struct hot *h, struct metrics *m)
{
    if (!h || !m)
        return;
    h->m_bytes = metrics_gauge(m, "arc_hot_bytes", "memory held by the hot tier", NULL);
    h->m_files = metrics_gauge(m, "arc_hot_files", "files whose rows the hot tier holds", NULL);
    h->m_hits = metrics_counter(m, "arc_hot_hits_total", "files queries read from memory", NULL);
    h->m_misses =
        metrics_counter(m, "arc_hot_misses_total", "files queries read from storage instead", NULL);
    h->m_evicted = metrics_counter(m, "arc_hot_evicted_batches_total",
                                   "batches dropped from the hot tier", NULL);
}

/* Gauges after a change (h->mu held). */
static void gauges(struct hot *h)
{
    if (h->m_bytes) {
        metric_set(h->m_bytes, (int64_t)h->bytes);
        metric_set(h->m_files, (int64_t)h->nents);
    }
}

static void blk_free(struct hot_blk *k)
{
    struct hot_memo *m, *next;

    for (m = k->memos; m; m = next) {
        next = m->next;
        free(m->name);
        free(m->rows);
        free(m);
    }
    batch_free(k->b);
    free(k->perm);
    free(k->ents);
    free(k);
}

static void tab_remove(struct hot *h, struct hot_ent *e)
{
    struct hot_ent **pp = &h->tab[key_hash(e->key) & (h->tab_size - 1)];

    for (; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            h->nents--;
            return;
        }
}

static void tab_grow(struct hot *h)
{
    size_t n = h->tab_size * 2;
    struct hot_ent **t = xcalloc(n, sizeof(*t));

    for (size_t i = 0; i < h->tab_size; i++) {
        struct hot_ent *e = h->tab[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = t[key_hash(e->key) & (n - 1)];
            t[key_hash(e->key) & (n - 1)] = e;
        }
    }
    free(h->tab);
    h->tab = t;
    h->tab_size = n;
}

/* Unlink k from the list and drop its entries (h->mu held); free it unless pinned. */
static void blk_evict(struct hot *h, struct hot_blk *k)
{
    if (k->evicted)
        return;
    for (size_t i = 0; i < k->nents; i++) {
        if (!k->ents[i])
            continue;
        tab_remove(h, k->ents[i]);
        free(k->ents[i]->key);
        free(k->ents[i]);
        k->ents[i] = NULL;
    }
    if (k->prev)
        k->prev->next = k->next;
    else
        h->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        h->tail = k->prev;
    k->evicted = true;
    h->bytes -= k->bytes;
    h->nblocks--;
    h->evicted++;
    if (h->m_evicted)
        metric_add(h->m_evicted, 1);
    if (k->refs == 0)
        blk_free(k);
}

void hot_free(struct hot *h)
{
    if (!h)
        return;
    while (h->head)
        blk_evict(h, h->head);
    free(h->tab);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void hot_put(struct hot *h, struct batch *b, uint32_t *perm, const struct hot_file *files, size_t n)
{
    size_t bytes = batch_bytes(b) + (perm ? b->nrows * sizeof(*perm) : 0);
    struct hot_blk *k;

    if (!h || n == 0 || bytes > h->max_bytes) {
        batch_free(b);
        free(perm);
        return;
    }
    k = xcalloc(1, sizeof(*k));
    k->b = b;
    k->perm = perm;
    k->bytes = bytes;
    k->ents = xcalloc(n, sizeof(*k->ents));
    pthread_mutex_lock(&h->mu);
    while (h->head && h->bytes + bytes > h->max_bytes)
        blk_evict(h, h->head);
    for (size_t i = 0; i < n; i++) {
        struct hot_ent *e = xcalloc(1, sizeof(*e));
        size_t slot;

        e->key = xstrdup(files[i].key);
        e->blk = k;
        e->start = files[i].start;
        e->count = files[i].count;
        if (h->nents >= h->tab_size)
            tab_grow(h);
        slot = key_hash(e->key) & (h->tab_size - 1);
        e->next = h->tab[slot];
        h->tab[slot] = e;
        h->nents++;
        k->ents[k->nents++] = e;
    }
    k->live = n;
    k->prev = h->tail;
    if (h->tail)
        h->tail->next = k;
    else
        h->head = k;
    h->tail = k;
    h->bytes += bytes;
    h->nblocks++;
    gauges(h);
    pthread_mutex_unlock(&h->mu);
}

static struct hot_ent *find_locked(struct hot *h, const char *key)
{
    struct hot_ent *e = h->tab[key_hash(key) & (h->tab_size - 1)];

    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    return e;
}

bool hot_get(struct hot *h, const char *key, int64_t rows, struct hot_seg *out)
{
    struct hot_ent *e;

    memset(out, 0, sizeof(*out));
    if (!h)
        return false;
    pthread_mutex_lock(&h->mu);
    e = find_locked(h, key);
    if (!e || rows < 0 || (size_t)rows != e->count) {
        h->misses++;
        if (h->m_misses)
            metric_add(h->m_misses, 1);
        pthread_mutex_unlock(&h->mu);
        return false;
    }
    e->blk->refs++;
    h->hits++;
    if (h->m_hits)
        metric_add(h->m_hits, 1);
    out->b = e->blk->b;
    out->rows = e->blk->perm;
    out->start = e->start;
    out->count = e->count;
    out->pin = e->blk;
    pthread_mutex_unlock(&h->mu);
    return true;
}

void hot_release(struct hot *h, struct hot_seg *s)
{
    struct hot_blk *k = s->pin;

    if (!h || !k)
        return;
    pthread_mutex_lock(&h->mu);
    if (--k->refs == 0 && k->evicted)
        blk_free(k);
    pthread_mutex_unlock(&h->mu);
    s->pin = NULL;
}

void hot_forget(struct hot *h, const char *key)
{
    struct hot_ent *e;

    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    e = find_locked(h, key);
    if (e) {
        struct hot_blk *k = e->blk;
        tab_remove(h, e);
        for (size_t i = 0; i < k->nents; i++)
            if (k->ents[i] == e)
                k->ents[i] = NULL;
        free(e->key);
        free(e);
        if (--k->live == 0)
            blk_evict(h, k);
        gauges(h);
    }
    pthread_mutex_unlock(&h->mu);
}

bool hot_memo_get(struct hot *h, const struct hot_seg *s, const char *name, const uint32_t **rows,
                  size_t *n)
{
    struct hot_blk *k = s->pin;
    bool found = false;

    if (!h || !k)
        return false;
    pthread_mutex_lock(&h->mu);
    for (struct hot_memo *m = k->memos; m; m = m->next)
        if (m->start == s->start && !strcmp(m->name, name)) {
            *rows = m->rows;
            *n = m->n;
            found = true;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    return found;
}

void hot_memo_put(struct hot *h, const struct hot_seg *s, const char *name, uint32_t *rows,
                  size_t n)
{
    struct hot_blk *k = s->pin;
    struct hot_memo *m;
    size_t nm = 0;

    if (!h || !k) {
        free(rows);
        return;
    }

    pthread_mutex_lock(&h->mu);
    for (m = k->memos; m; m = m->next, nm++)
        if (m->start == s->start && !strcmp(m->name, name))
            break;
    /* bounded: a few memos per block, each a real reduction of its file */
    if (m || nm >= HOT_MAX_MEMOS || n * 4 > s->count) {
        pthread_mutex_unlock(&h->mu);
        free(rows);
        return;
    }
    m = xcalloc(1, sizeof(*m));
    /* counted with its block from now on (until the block goes) */
    k->bytes += n * sizeof(*rows);
    if (!k->evicted)
        h->bytes += n * sizeof(*rows);
    m->start = s->start;
    m->name = xstrdup(name);
    m->rows = rows;
    m->n = n;
    m->next = k->memos;
    k->memos = m;
    pthread_mutex_unlock(&h->mu);
}

void hot_get_stats(struct hot *h, struct hot_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    out->bytes = h->bytes;
    out->files = h->nents;
    out->batches = h->nblocks;
    out->hits = h->hits;
    out->misses = h->misses;
    out->evicted = h->evicted;
    pthread_mutex_unlock(&h->mu);
}

void hot_seg_bound(struct hot_seg *s, int64_t min_us, int64_t max_us)
{
    const int64_t *t = s->b->time_us;
    size_t lo = 0, hi = s->count, first, end;

#define HOT_T(i) t[s->rows ? s->rows[s->start + (i)] : s->start + (i)]
    while (lo < hi) { /* first row with time >= min_us */
        size_t mid = lo + (hi - lo) / 2;
        if (HOT_T(mid) < min_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    first = lo;
    hi = s->count;
    while (lo < hi) { /* first row with time > max_us */
        size_t mid = lo + (hi - lo) / 2;
        if (HOT_T(mid) <= max_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    end = lo;
#undef HOT_T
    s->start += first;
    s->count = end - first;
}
