/* buffer.c - per-measurement column buffers, schema checks, flush scheduling.
 *
 * Layout: a fixed hash table (db, measurement) -> struct mbuf, guarded by a
 * read-write lock that is write-locked only to create a buffer. Each mbuf has its
 * own mutex, an active batch that grows as writes arrive, and a list of batches
 * being flushed. A request touching several measurements locks their mbufs in
 * address order, checks every batch against the schema, and only then copies, so
 * a conflict in the last measurement leaves the first ones untouched.
 *
 * Copying (buffer_schema.c: schema checks, mbuf_copy_rows): when a measurement's
 * active batch is empty and the incoming batch needs no conversion, the batch
 * itself becomes the active batch (no copy).
 * Otherwise its columns are appended with memcpy; strings are re-interned once per
 * distinct value through an id map, never per row.
 *
 * Flushing: rotate() moves the active batch to the flushing list and queues a
 * job on the flush pool. The job calls the sink; on success the batch is freed and
 * its bytes leave the budget; on failure it stays (and is retried by tick after a
 * back-off), so rows are never dropped for a transient storage error. */
#include "buffer/buffer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/workpool.h"
#include "buffer/buffer_int.h"

#define MAX_TOUCHED 256       /* measurements locked by one request (more: split) */
#define RETRY_BACKOFF_MS 1000 /* wait before retrying a failed flush */

/* ------------------------------------------------------------------ table */

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

static struct mbuf *find_locked(struct bufmgr *bm, const char *db, const char *m, uint64_t h)
{
    struct mbuf *x;
    for (x = bm->buckets[h % NBUCKETS]; x; x = x->next)
        if (!strcmp(x->db, db) && !strcmp(x->m, m))
            return x;
    return NULL;
}

/* A new generation for x: process-wide sequence, so a value is never reused. */
static void gen_bump(struct mbuf *x)
{
    atomic_store(&x->gen, atomic_fetch_add(&x->bm->gen_seq, 1) + 1);
}

static struct mbuf *get_mbuf(struct bufmgr *bm, const char *db, const char *m)
{
    uint64_t h = hash2(db, m);
    struct mbuf *x;

    pthread_rwlock_rdlock(&bm->table_lock);
    x = find_locked(bm, db, m, h);
    pthread_rwlock_unlock(&bm->table_lock);
    if (x)
        return x;
    pthread_rwlock_wrlock(&bm->table_lock);
    x = find_locked(bm, db, m, h);
    if (!x) {
        x = xcalloc(1, sizeof(*x));
        x->bm = bm;
        x->db = xstrdup(db);
        x->m = xstrdup(m);
        pthread_mutex_init(&x->lock, NULL);
        pthread_rwlock_init(&x->commit_lock, NULL);
        x->next = bm->buckets[h % NBUCKETS];
        bm->buckets[h % NBUCKETS] = x;
        bm->nbufs++;
    }
    pthread_rwlock_unlock(&bm->table_lock);
    return x;
}

/* ----------------------------------------------------------------- schema */

void bufmgr_set_schema(struct bufmgr *bm, const char *db, const char *measurement,
                       const struct bufmgr_col_schema *cols, size_t ncols)
{
    struct mbuf *x = get_mbuf(bm, db, measurement);
    size_t i;

    pthread_mutex_lock(&x->lock);
    for (i = 0; i < ncols; i++) {
        struct schema_col *s = mbuf_schema_find(x, cols[i].name);
        if (s) {
            s->type = cols[i].type;
            s->is_tag = cols[i].is_tag;
        } else {
            mbuf_schema_add(x, cols[i].name, cols[i].type, cols[i].is_tag);
        }
    }
    pthread_mutex_unlock(&x->lock);
}

/* ------------------------------------------------------------------ flush */

struct flushjob {
    struct mbuf *x;
    struct flushitem *it;
};

struct bufmgr_commit {
    struct mbuf *x;
    bool locked; /* commit_lock held for writing */
    uint64_t lo, hi;
    bufmgr_keep_fn *keep; /* the sink keeps the batch (bufmgr_commit_keep) */
    void *keep_ctx;
};

void bufmgr_commit_keep(struct bufmgr_commit *cm, bufmgr_keep_fn *fn, void *ctx)
{
    cm->keep = fn;
    cm->keep_ctx = ctx;
}

void bufmgr_commit_lsn(const struct bufmgr_commit *cm, uint64_t *lo, uint64_t *hi)
{
    *lo = cm->lo;
    *hi = cm->hi;
}

void bufmgr_commit_lock(struct bufmgr_commit *cm)
{
    if (!cm->locked) {
        pthread_rwlock_wrlock(&cm->x->commit_lock);
        cm->locked = true;
    }
}

static void flush_job(void *arg)
{
    struct flushjob *j = arg;
    struct mbuf *x = j->x;
    struct flushitem *it = j->it, **pp;
    struct bufmgr *bm = x->bm;
    struct errbuf eb;
    enum err rc;
    size_t rows;
    struct bufmgr_commit cm = {x, false, 0, 0, NULL, NULL};
    bool dropped;

    free(j);
    errbuf_init(&eb);
    pthread_mutex_lock(&x->lock);
    it->started = true;
    dropped = it->dropped;
    rows = it->b->nrows; /* rotations may have merged rows into it while it waited */
    cm.lo = it->lsn_lo;
    cm.hi = it->lsn_hi;
    pthread_mutex_unlock(&x->lock);
    /* a dropped database's rows are discarded, not written */
    rc = dropped ? ERR_OK : bm->o.sink(bm->o.sink_ctx, x->db, it->b, &cm, &eb);
    if (rc == ERR_OK)
        bufmgr_commit_lock(&cm); /* a sink that skipped it still must not race queries */

    pthread_mutex_lock(&x->lock);
    it->queued = false;
    if (rc == ERR_OK) {
        for (pp = &x->flushing; *pp; pp = &(*pp)->next)
            if (*pp == it) {
                *pp = it->next;
                break;
            }
        gen_bump(x); /* the files changed (the rows did not, but caches key on files too) */
    } else {
        it->failures++;
        it->retry_at_ns = clock_mono_ns() + (int64_t)RETRY_BACKOFF_MS * 1000000 *
                                                (it->failures < 30 ? it->failures : 30);
    }
    pthread_mutex_unlock(&x->lock);
    if (cm.locked)
        pthread_rwlock_unlock(&x->commit_lock);

    if (rc == ERR_OK) {
        atomic_fetch_sub(&bm->bytes, it->bytes);
        atomic_fetch_sub(&bm->flushing_rows, rows);
        atomic_fetch_add(&bm->rows_flushed, rows);
        atomic_fetch_add(&bm->flushes, 1);
        if (bm->m_flushed) {
            metric_add(bm->m_flushed, rows);
            metric_add(bm->m_flushes, 1);
        }
        if (cm.keep) /* off the lists: no snapshot or listing reaches it now */
            cm.keep(cm.keep_ctx, it->b);
        else
            batch_free(it->b);
        free(it);
    } else {
        atomic_fetch_add(&bm->flush_errors, 1);
        if (bm->m_errors)
            metric_add(bm->m_errors, 1);
        log_error("flush failed; rows kept for retry", "db=%s measurement=%s rows=%zu error=\"%s\"",
                  x->db, x->m, rows, eb.msg);
        pthread_mutex_lock(&bm->done_lock);
        snprintf(bm->last_error, sizeof(bm->last_error), "%s", eb.msg);
        pthread_mutex_unlock(&bm->done_lock);
    }
    pthread_mutex_lock(&bm->done_lock);
    pthread_cond_broadcast(&bm->done_cond);
    pthread_mutex_unlock(&bm->done_lock);
}

/* Queue a flush job for it (x locked). */
static void queue_item(struct mbuf *x, struct flushitem *it)
{
    struct flushjob *j = xmalloc(sizeof(*j));

    j->x = x;
    j->it = it;
    it->queued = true;
    if (workpool_submit(x->bm->pool, flush_job, j) != ERR_OK) {
        it->queued = false; /* pool full: tick() retries */
        free(j);
    }
}

/* Group commit: while the newest flushing item still waits for a flusher (the
 * flushers are behind), the rows of the next rotation join it instead of making
 * another file, up to COALESCE_ROWS_FACTOR x flush_rows rows. Under a backlog that
 * turns many buffer_size files into fewer, larger ones - each file costs the
 * writer's set-up and its own dictionaries - while at ordinary rates nothing waits
 * and files stay at buffer_size. Rows stay visible exactly once: the move happens
 * under x->lock, where queries copy both lists. The WAL range stays contiguous
 * (consecutive rotations of one measurement). The item's capacity may grow past
 * the two batches it replaces: that can overshoot the budget by at most one item
 * (flush_bytes) for as long as it waits - a backlog is exactly when the budget is
 * full, and refusing then would forbid the merges that clear it. true: merged. */
#define COALESCE_ROWS_FACTOR 8

static bool coalesce(struct mbuf *x)
{
    struct bufmgr *bm = x->bm;
    struct flushitem *tail = x->flushing;
    size_t n = x->active->nrows, after;

    while (tail && tail->next)
        tail = tail->next;
    if (!tail || !tail->queued || tail->started || tail->dropped || tail->failures ||
        tail->b->nrows + n > COALESCE_ROWS_FACTOR * bm->o.flush_rows ||
        tail->bytes + x->active_bytes > bm->o.flush_bytes ||
        atomic_load(&bm->bytes) > bm->o.budget_bytes)
        return false;
    mbuf_copy_rows(x, tail->b, x->active);
    after = batch_bytes(tail->b);
    if (after >= tail->bytes + x->active_bytes)
        atomic_fetch_add(&bm->bytes, after - tail->bytes - x->active_bytes);
    else
        atomic_fetch_sub(&bm->bytes, tail->bytes + x->active_bytes - after);
    tail->bytes = after;
    if (x->active_lo) {
        if (!tail->lsn_lo)
            tail->lsn_lo = x->active_lo;
        tail->lsn_hi = x->active_hi;
    }
    batch_free(x->active);
    x->active = NULL;
    x->active_bytes = 0;
    x->active_lo = x->active_hi = 0;
    atomic_fetch_sub(&bm->active_rows, n);
    atomic_fetch_add(&bm->flushing_rows, n);
    atomic_fetch_add(&bm->coalesced, 1);
    return true;
}

/* Move the active batch to the flushing list and queue it (x locked). */
static void rotate(struct mbuf *x)
{
    struct flushitem *it, **pp;

    if (!x->active || x->active->nrows == 0)
        return;
    if (coalesce(x))
        return;
    it = xcalloc(1, sizeof(*it));
    it->b = x->active;
    it->bytes = x->active_bytes;
    it->lsn_lo = x->active_lo;
    it->lsn_hi = x->active_hi;
    x->active = NULL;
    x->active_bytes = 0;
    x->active_lo = x->active_hi = 0;
    for (pp = &x->flushing; *pp; pp = &(*pp)->next)
        ;
    *pp = it;
    atomic_fetch_sub(&x->bm->active_rows, it->b->nrows);
    atomic_fetch_add(&x->bm->flushing_rows, it->b->nrows);
    queue_item(x, it);
}

/* ----------------------------------------------------------------- append */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* Lock the mbufs of batches in address order (no deadlock between requests). */
static size_t lock_all(struct bufmgr *bm, const char *db, struct batch *const *batches, size_t n,
                       struct mbuf **xs, struct mbuf **locked)
{
    size_t i, nlocked = 0;

    for (i = 0; i < n; i++)
        xs[i] = locked[i] = get_mbuf(bm, db, batches[i]->measurement);
    qsort(locked, n, sizeof(locked[0]), cmp_ptr);
    for (i = 0; i < n; i++)
        if (i == 0 || locked[i] != locked[i - 1])
            locked[nlocked++] = locked[i];
    for (i = 0; i < nlocked; i++)
        pthread_mutex_lock(&locked[i]->lock);
    return nlocked;
}

/* Upper bound of the bytes appending src to x adds: src itself (its vectors and
 * dictionary are copied or handed over) plus, if x's active batch must grow, its
 * current size (vectors grow by doubling). x locked. */
static size_t append_cost(const struct mbuf *x, const struct batch *src)
{
    size_t cost = batch_bytes(src), i, cap;

    if (!x->active)
        return cost;
    cap = x->active->cap;
    if (x->active->nrows + src->nrows > cap) {
        cost += x->active_bytes;
        cap = 2 * cap > x->active->nrows + src->nrows ? 2 * cap : x->active->nrows + src->nrows;
    }
    /* a column the active batch lacks is allocated for all of its rows */
    for (i = 0; i < src->ncols; i++)
        if (!batch_find_col((struct batch *)x->active, src->cols[i].name,
                            strlen(src->cols[i].name)))
            cost += cap * (batch_type_size(src->cols[i].type) + 1);
    return cost;
}

/* Reserve `cost` bytes of the budget atomically; false if it does not fit. */
static bool budget_reserve(struct bufmgr *bm, size_t cost)
{
    size_t cur = atomic_load(&bm->bytes);

    do {
        if (cur + cost > bm->o.budget_bytes)
            return false;
    } while (!atomic_compare_exchange_weak(&bm->bytes, &cur, cur + cost));
    return true;
}

static enum err budget_full(struct bufmgr *bm, size_t cost, struct errbuf *eb)
{
    atomic_fetch_add(&bm->rejected_busy, 1);
    if (bm->m_busy)
        metric_add(bm->m_busy, 1);
    return errbuf_set(eb, ERR_BUSY,
                      "ingest buffers full (%zu of %zu bytes in use, this write needs up to "
                      "%zu): retry later",
                      atomic_load(&bm->bytes), bm->o.budget_bytes, cost);
}

enum err bufmgr_check(struct bufmgr *bm, const char *db, struct batch *const *batches, size_t n,
                      struct errbuf *eb)
{
    struct mbuf *xs[MAX_TOUCHED], *locked[MAX_TOUCHED];
    size_t i, nlocked;
    enum err rc;

    if (n > MAX_TOUCHED)
        return errbuf_set(eb, ERR_LIMIT, "a request may write at most %d measurements",
                          MAX_TOUCHED);
    nlocked = lock_all(bm, db, batches, n, xs, locked);
    rc = ERR_OK;
    for (i = 0; i < n && rc == ERR_OK; i++)
        rc = mbuf_check_batch(xs[i], batches[i], eb);
    if (rc == ERR_OK) {
        size_t cost = 0;
        for (i = 0; i < n; i++)
            cost += append_cost(xs[i], batches[i]);
        if (atomic_load(&bm->bytes) + cost > bm->o.budget_bytes)
            rc = budget_full(bm, cost, eb);
    }
    for (i = 0; i < nlocked; i++)
        pthread_mutex_unlock(&locked[i]->lock);
    return rc;
}

static void min_lsn_one(struct mbuf *x, void *arg)
{
    uint64_t *m = arg;
    struct flushitem *it;

    pthread_mutex_lock(&x->lock);
    if (x->active && x->active_lo && x->active_lo < *m)
        *m = x->active_lo;
    for (it = x->flushing; it; it = it->next)
        if (it->lsn_lo && it->lsn_lo < *m)
            *m = it->lsn_lo;
    pthread_mutex_unlock(&x->lock);
}

static void for_each(struct bufmgr *bm, void (*fn)(struct mbuf *x, void *arg), void *arg);

uint64_t bufmgr_min_unflushed_lsn(struct bufmgr *bm)
{
    uint64_t m = UINT64_MAX;
    for_each(bm, min_lsn_one, &m);
    return m;
}

enum err bufmgr_append(struct bufmgr *bm, const char *db, struct batch **batches, size_t n,
                       uint64_t lsn, struct errbuf *eb)
{
    struct mbuf *xs[MAX_TOUCHED], *locked[MAX_TOUCHED];
    size_t i, j, nlocked, rows = 0, reserved = 0, grown = 0;
    enum err rc;

    if (n > MAX_TOUCHED)
        return errbuf_set(eb, ERR_LIMIT, "a request may write at most %d measurements",
                          MAX_TOUCHED);
    for (i = 0; i < n; i++)
        rows += batches[i]->nrows;
    nlocked = lock_all(bm, db, batches, n, xs, locked);

    rc = ERR_OK;
    for (i = 0; i < n && rc == ERR_OK; i++)
        rc = mbuf_check_batch(xs[i], batches[i], eb);
    if (rc == ERR_OK) {
        /* reserve the worst case now, settle to the real growth below: the
         * budget is never exceeded, even by concurrent writers */
        for (i = 0; i < n; i++)
            reserved += append_cost(xs[i], batches[i]);
        if (!budget_reserve(bm, reserved)) {
            rc = budget_full(bm, reserved, eb);
            reserved = 0;
        }
    }
    if (rc == ERR_OK) {
        for (i = 0; i < n; i++) {
            struct mbuf *x = xs[i];
            struct batch *src = batches[i];
            size_t before = x->active_bytes, src_rows = src->nrows;

            batches[i] = NULL; /* ownership passes to the buffers */
            if (src_rows == 0) {
                batch_free(src);
                continue;
            }
            if (!x->active && mbuf_fits_exactly(x, src)) {
                for (j = 0; j < src->ncols; j++)
                    if (!mbuf_schema_find(x, src->cols[j].name))
                        mbuf_schema_add(x, src->cols[j].name, src->cols[j].type, src->cols[j].is_tag);
                x->active = src; /* hand-off: no copy */
                x->active_since_ns = clock_mono_ns();
            } else {
                if (!x->active) {
                    x->active = batch_new(x->m, strlen(x->m));
                    x->active_since_ns = clock_mono_ns();
                }
                mbuf_copy_rows(x, x->active, src);
                batch_free(src);
            }
            if (lsn) {
                if (!x->active_lo)
                    x->active_lo = lsn;
                x->active_hi = lsn;
            }
            x->active_bytes = batch_bytes(x->active);
            grown += x->active_bytes - before; /* buffers only grow on append */
            atomic_fetch_add(&bm->active_rows, src_rows);
            gen_bump(x); /* after the rows are visible, before the write is acknowledged */
        }
        /* settle the reservation to what the appends really took */
        if (grown <= reserved)
            atomic_fetch_sub(&bm->bytes, reserved - grown);
        else
            atomic_fetch_add(&bm->bytes, grown - reserved);
        for (i = 0; i < nlocked; i++) {
            struct mbuf *x = locked[i];
            if (x->active && (x->active->nrows >= bm->o.flush_rows ||
                              x->active_bytes >= bm->o.flush_bytes))
                rotate(x);
        }
    }
    for (i = 0; i < nlocked; i++)
        pthread_mutex_unlock(&locked[i]->lock);
    if (rc == ERR_OK) {
        atomic_fetch_add(&bm->rows_accepted, rows);
        if (bm->m_rows)
            metric_add(bm->m_rows, rows);
    }
    return rc;
}

/* ------------------------------------------------------------ maintenance */

/* Call fn on every mbuf (table read-locked; fn takes x->lock itself). */
static void for_each(struct bufmgr *bm, void (*fn)(struct mbuf *x, void *arg), void *arg)
{
    size_t i;
    struct mbuf *x;

    pthread_rwlock_rdlock(&bm->table_lock);
    for (i = 0; i < NBUCKETS; i++)
        for (x = bm->buckets[i]; x; x = x->next)
            fn(x, arg);
    pthread_rwlock_unlock(&bm->table_lock);
}

static void tick_one(struct mbuf *x, void *arg)
{
    int64_t now = *(int64_t *)arg;
    struct flushitem *it;

    pthread_mutex_lock(&x->lock);
    if (x->active && now - x->active_since_ns >= x->bm->o.flush_age_ms * 1000000)
        rotate(x);
    for (it = x->flushing; it; it = it->next)
        if (!it->queued && now >= it->retry_at_ns)
            queue_item(x, it);
    pthread_mutex_unlock(&x->lock);
}

void bufmgr_tick(struct bufmgr *bm)
{
    int64_t now = clock_mono_ns();

    for_each(bm, tick_one, &now);
    if (bm->m_bytes)
        metric_set(bm->m_bytes, (int64_t)atomic_load(&bm->bytes));
}

static void rotate_one(struct mbuf *x, void *arg)
{
    struct flushitem *it;
    (void)arg;

    pthread_mutex_lock(&x->lock);
    rotate(x);
    for (it = x->flushing; it; it = it->next)
        if (!it->queued)
            queue_item(x, it); /* retry failed ones now too */
    pthread_mutex_unlock(&x->lock);
}

enum err bufmgr_flush_all(struct bufmgr *bm, int timeout_ms, struct errbuf *eb)
{
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    uint64_t errors_before = atomic_load(&bm->flush_errors);
    struct timespec ts;
    enum err rc = ERR_OK;

    for_each(bm, rotate_one, NULL);
    pthread_mutex_lock(&bm->done_lock);
    while (atomic_load(&bm->flushing_rows) > 0) {
        if (atomic_load(&bm->flush_errors) != errors_before) {
            rc = errbuf_set(eb, ERR_IO, "flush failed (rows kept, will retry): %s",
                            bm->last_error);
            break;
        }
        if (clock_mono_ns() > deadline) {
            rc = errbuf_set(eb, ERR_TIMEOUT, "flush did not finish within %d ms", timeout_ms);
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&bm->done_cond, &bm->done_lock, &ts);
    }
    pthread_mutex_unlock(&bm->done_lock);
    return rc;
}

/* A private copy of src (same columns, types, dictionary ids). */
static struct batch *clone_batch(const struct batch *src)
{
    struct batch *d = batch_new(src->measurement, strlen(src->measurement));
    size_t i, nd = strdict_count(src->dict), n = src->nrows;

    for (i = 0; i < nd; i++)
        strdict_intern_from(d->dict, src->dict, (uint32_t)i); /* dense ids in order: same id */
    for (i = 0; i < src->ncols; i++)
        batch_add_col(d, src->cols[i].name, strlen(src->cols[i].name), src->cols[i].type,
                      src->cols[i].is_tag);
    if (n == 0)
        return d;
    batch_add_rows(d, n);
    memcpy(d->time_us, src->time_us, n * sizeof(int64_t));
    for (i = 0; i < src->ncols; i++) {
        const struct batch_col *c = &src->cols[i];
        struct batch_col *o = &d->cols[i];
        memcpy(o->data, c->data, n * batch_type_size(c->type));
        if (o->valid) {
            if (c->valid)
                memcpy(o->valid, c->valid, n);
            else
                memset(o->valid, 1, n);
        }
    }
    return d;
}

enum err bufmgr_snapshot(struct bufmgr *bm, const char *db, const char *measurement,
                         bufmgr_files_fn *list_files, void *ctx, struct batch ***out, size_t *n,
                         struct errbuf *eb)
{
    uint64_t h = hash2(db, measurement);
    struct mbuf *x;
    struct flushitem *it;
    struct batch **v = NULL;
    size_t cnt = 0, cap = 0;
    enum err rc = ERR_OK;

    pthread_rwlock_rdlock(&bm->table_lock);
    x = find_locked(bm, db, measurement, h);
    pthread_rwlock_unlock(&bm->table_lock);
    if (!x) {
        rc = list_files ? list_files(ctx, eb) : ERR_OK;
        if (rc == ERR_OK) {
            *out = NULL;
            *n = 0;
        }
        return rc;
    }
    pthread_rwlock_rdlock(&x->commit_lock);
    rc = list_files ? list_files(ctx, eb) : ERR_OK;
    if (rc == ERR_OK) {
        pthread_mutex_lock(&x->lock);
        for (it = x->flushing; it; it = it->next) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = xreallocarray(v, cap, sizeof(*v));
            }
            v[cnt++] = clone_batch(it->b);
        }
        if (x->active && x->active->nrows) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = xreallocarray(v, cap, sizeof(*v));
            }
            v[cnt++] = clone_batch(x->active);
        }
        pthread_mutex_unlock(&x->lock);
    }
    pthread_rwlock_unlock(&x->commit_lock);
    if (rc == ERR_OK) {
        *out = v;
        *n = cnt;
    }
    return rc;
}

void bufmgr_snapshot_free(struct batch **batches, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        batch_free(batches[i]);
    free(batches);
}

static void drop_one(struct mbuf *x, void *arg)
{
    const char *db = arg;
    struct flushitem *it;
    size_t k;

    if (strcmp(x->db, db) != 0)
        return;
    pthread_mutex_lock(&x->lock);
    if (x->active) {
        atomic_fetch_sub(&x->bm->active_rows, x->active->nrows);
        atomic_fetch_sub(&x->bm->bytes, x->active_bytes);
        batch_free(x->active);
        x->active = NULL;
        x->active_bytes = 0;
        x->active_lo = x->active_hi = 0;
    }
    /* batches waiting for a flush (or a retry) are discarded when their job runs */
    for (it = x->flushing; it; it = it->next) {
        it->dropped = true;
        if (!it->queued)
            queue_item(x, it);
    }
    for (k = 0; k < x->nschema; k++)
        free(x->schema[k].name);
    x->nschema = 0;
    gen_bump(x);
    pthread_mutex_unlock(&x->lock);
}

static void count_db_flushing(struct mbuf *x, void *arg)
{
    struct {
        const char *db;
        size_t n;
    } *c = arg;
    struct flushitem *it;

    if (strcmp(x->db, c->db) != 0)
        return;
    pthread_mutex_lock(&x->lock);
    for (it = x->flushing; it; it = it->next)
        c->n++;
    pthread_mutex_unlock(&x->lock);
}

void bufmgr_drop_database(struct bufmgr *bm, const char *db)
{
    struct {
        const char *db;
        size_t n;
    } c = {db, 0};
    int64_t deadline = clock_mono_ns() + (int64_t)30 * 1000000000;

    for_each(bm, drop_one, (void *)db);
    /* wait until no flush of db is still running, so none can commit (and
     * re-create the database) after the caller removes it from the catalog */
    for (;;) {
        c.n = 0;
        for_each(bm, count_db_flushing, &c);
        if (c.n == 0 || clock_mono_ns() > deadline)
            break;
        usleep(10000);
    }
}

uint64_t bufmgr_generation(struct bufmgr *bm, const char *db, const char *measurement)
{
    struct mbuf *x;

    pthread_rwlock_rdlock(&bm->table_lock);
    x = find_locked(bm, db, measurement, hash2(db, measurement));
    pthread_rwlock_unlock(&bm->table_lock);
    return x ? atomic_load(&x->gen) : 0;
}

void bufmgr_touch(struct bufmgr *bm, const char *db, const char *measurement)
{
    gen_bump(get_mbuf(bm, db, measurement));
}

struct list_ctx {
    const char *db;
    bufmgr_list_fn *fn;
    void *ctx;
};

static void list_one(struct mbuf *x, void *arg)
{
    struct list_ctx *lc = arg;
    struct flushitem *it;
    size_t rows = 0;

    if (lc->db && strcmp(x->db, lc->db) != 0)
        return;
    pthread_mutex_lock(&x->lock);
    if (x->active)
        rows += x->active->nrows;
    for (it = x->flushing; it; it = it->next)
        rows += it->b->nrows;
    pthread_mutex_unlock(&x->lock);
    if (rows)
        lc->fn(lc->ctx, x->db, x->m, rows);
}

void bufmgr_list_buffered(struct bufmgr *bm, const char *db, bufmgr_list_fn *fn, void *ctx)
{
    struct list_ctx lc = {db, fn, ctx};

    for_each(bm, list_one, &lc);
}

void bufmgr_get_stats(struct bufmgr *bm, struct bufmgr_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&bm->table_lock);
    out->measurements = bm->nbufs;
    pthread_rwlock_unlock(&bm->table_lock);
    out->active_rows = atomic_load(&bm->active_rows);
    out->flushing_rows = atomic_load(&bm->flushing_rows);
    out->bytes = atomic_load(&bm->bytes);
    out->budget_bytes = bm->o.budget_bytes;
    out->rows_accepted = atomic_load(&bm->rows_accepted);
    out->rows_flushed = atomic_load(&bm->rows_flushed);
    out->flushes = atomic_load(&bm->flushes);
    out->flush_errors = atomic_load(&bm->flush_errors);
    out->rejected_busy = atomic_load(&bm->rejected_busy);
    out->coalesced = atomic_load(&bm->coalesced);
}

/* --------------------------------------------------------------- lifecycle */

struct bufmgr *bufmgr_new(const struct bufmgr_opts *o)
{
    struct bufmgr *bm = xcalloc(1, sizeof(*bm));

    bm->o = *o;
    if (!bm->o.flush_rows)
        bm->o.flush_rows = 50000;
    if (!bm->o.flush_bytes)
        bm->o.flush_bytes = 64u << 20;
    if (!bm->o.budget_bytes)
        bm->o.budget_bytes = 1u << 30;
    if (!bm->o.flush_threads)
        bm->o.flush_threads = 1;
    pthread_rwlock_init(&bm->table_lock, NULL);
    pthread_mutex_init(&bm->done_lock, NULL);
    pthread_cond_init(&bm->done_cond, NULL);
    bm->pool = workpool_new(bm->o.flush_threads, 65536, "arc-flush");
    if (o->metrics) {
        struct metrics *m = o->metrics;
        bm->m_rows = metrics_counter(m, "arc_ingest_rows_total", "Rows accepted", NULL);
        bm->m_flushed = metrics_counter(m, "arc_flush_rows_total", "Rows written to Parquet", NULL);
        bm->m_flushes = metrics_counter(m, "arc_flush_total", "Buffer flushes", NULL);
        bm->m_errors = metrics_counter(m, "arc_flush_errors_total", "Failed flushes (retried)", NULL);
        bm->m_busy = metrics_counter(m, "arc_ingest_rejected_budget_total",
                                     "Writes refused with 503: buffer memory budget full", NULL);
        bm->m_bytes = metrics_gauge(m, "arc_buffer_bytes", "Bytes held by ingest buffers", NULL);
        bm->m_budget = metrics_gauge(m, "arc_buffer_budget_bytes", "Ingest buffer memory budget",
                                     NULL);
        metric_set(bm->m_budget, (int64_t)bm->o.budget_bytes);
    }
    return bm;
}

void bufmgr_free(struct bufmgr *bm)
{
    size_t i, k;
    struct mbuf *x, *nx;
    struct flushitem *it, *nit;

    if (!bm)
        return;
    workpool_free(bm->pool); /* runs queued flushes to completion first */
    for (i = 0; i < NBUCKETS; i++) {
        for (x = bm->buckets[i]; x; x = nx) {
            nx = x->next;
            batch_free(x->active);
            for (it = x->flushing; it; it = nit) {
                nit = it->next;
                batch_free(it->b);
                free(it);
            }
            for (k = 0; k < x->nschema; k++)
                free(x->schema[k].name);
            free(x->schema);
            pthread_mutex_destroy(&x->lock);
            pthread_rwlock_destroy(&x->commit_lock);
            free(x->db);
            free(x->m);
            free(x);
        }
    }
    pthread_rwlock_destroy(&bm->table_lock);
    pthread_mutex_destroy(&bm->done_lock);
    pthread_cond_destroy(&bm->done_cond);
    free(bm);
}
