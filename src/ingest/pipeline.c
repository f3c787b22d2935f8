/* pipeline.c - decode -> WAL -> buffers, and replay. See pipeline.h.
 *
 * Why a lock with the WAL on: a measurement's buffered rows must be in LSN order,
 * so that a flush covers one contiguous LSN range per measurement and the catalog
 * can say exactly which records are already in Parquet (no row replayed twice,
 * none skipped). Decoding (the expensive part) happens before the lock; inside it
 * are a schema check, one write(2) into the WAL and a memcpy into the buffers.
 * The durability wait (fdatasync, shared by everyone waiting: group commit)
 * happens after the lock is released. */
#include "ingest/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "wal/wal.h"

struct ingest_pipeline {
    struct bufmgr *bm;
    struct wal *wal;
    struct catalog *catalog;
    pthread_mutex_t lock;            /* orders WAL records and buffer appends */
    _Atomic uint64_t appended_lsn;   /* every record <= this is in the buffers */
    pthread_mutex_t ckpt_lock;       /* serialises checkpoints (housekeeper, API, shutdown) */
    uint64_t checkpointed;           /* last checkpoint recorded, under ckpt_lock */
    bool replay_failed;              /* under ckpt_lock; set once: checkpoints refused */
    struct metric *m_wal_wait;
};

struct ingest_pipeline *ingest_pipeline_new(struct bufmgr *bm, struct wal *wal,
                                            struct catalog *catalog, struct metrics *metrics)
{
    struct ingest_pipeline *p = xcalloc(1, sizeof(*p));
    static const double bounds[] = {0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1};

    p->bm = bm;
    p->wal = wal;
    p->catalog = catalog;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->ckpt_lock, NULL);
    if (metrics && wal)
        p->m_wal_wait = metrics_histogram(metrics, "arc_wal_durable_wait_seconds",
                                          "Time a write waited for its WAL record to be durable",
                                          NULL, bounds, sizeof(bounds) / sizeof(bounds[0]));
    return p;
}

void ingest_pipeline_free(struct ingest_pipeline *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->ckpt_lock);
    free(p);
}

static enum err decode(enum ingest_format f, enum ingest_precision prec, const char *body,
                       size_t len, int64_t now_us, struct ingest_result *r, struct errbuf *eb)
{
    enum err rc;

    switch (f) {
    case INGEST_FMT_LP: return ingest_lp_decode(body, len, prec, now_us, NULL, r, eb);
    case INGEST_FMT_MSGPACK:
        rc = ingest_msgpack_decode((const uint8_t *)body, len, now_us, NULL, r, eb);
        if (rc == ERR_PARSE)
            errbuf_prefix(eb, "Invalid MessagePack payload");
        return rc;
    case INGEST_FMT_JSON:
        rc = ingest_json_decode(body, len, now_us, NULL, r, eb);
        if (rc == ERR_PARSE)
            errbuf_prefix(eb, "Invalid JSON payload");
        return rc;
    }
    return errbuf_set(eb, ERR_INTERNAL, "unknown ingest format %d", (int)f);
}

enum err ingest_pipeline_write(struct ingest_pipeline *p, const char *db, enum ingest_format f,
                               enum ingest_precision prec, const char *body, size_t len,
                               size_t *rows_out, struct errbuf *eb)
{
    struct ingest_result r = {0};
    int64_t now = clock_now_us();
    uint64_t lsn = 0;
    enum err rc;

    rc = decode(f, prec, body, len, now, &r, eb);
    if (rc)
        return rc;
    *rows_out = r.nrows;
    if (!p->wal) {
        rc = bufmgr_append(p->bm, db, r.batches, r.nbatches, 0, eb);
        ingest_result_release(&r);
        return rc;
    }

    pthread_mutex_lock(&p->lock);
    rc = bufmgr_check(p->bm, db, r.batches, r.nbatches, eb);
    if (rc == ERR_OK) {
        struct wal_record rec = {.kind = (uint8_t)f,
                                 .flags = (uint8_t)prec,
                                 .time_us = now,
                                 .db = db,
                                 .db_len = strlen(db),
                                 .body = body,
                                 .body_len = len};
        rc = wal_write(p->wal, &rec, &lsn, eb);
    }
    if (rc == ERR_OK) {
        rc = bufmgr_append(p->bm, db, r.batches, r.nbatches, lsn, eb);
        if (rc)
            /* cannot happen (checked under the same lock); the record would be
             * replayed after a restart, so say so loudly */
            log_error("buffer append failed after its WAL record was written",
                      "lsn=%llu error=\"%s\"", (unsigned long long)lsn, eb->msg);
        else
            atomic_store(&p->appended_lsn, lsn);
    }
    pthread_mutex_unlock(&p->lock);
    ingest_result_release(&r);
    if (rc)
        return rc;
    {
        int64_t t0 = clock_mono_ns();
        rc = wal_wait_durable(p->wal, lsn, eb);
        if (p->m_wal_wait)
            metric_observe(p->m_wal_wait, (double)(clock_mono_ns() - t0) / 1e9);
    }
    return rc;
}

/* ------------------------------------------------------------------ replay */

struct range {
    char *key; /* "db\x1fmeasurement" */
    uint64_t lo, hi;
};

struct ranges {
    struct range *v;
    size_t n, cap;
};

static char *range_key(const char *db, const char *m)
{
    size_t a = strlen(db), b = strlen(m);
    char *k = xmalloc(a + b + 2);
    memcpy(k, db, a);
    k[a] = '\x1f';
    memcpy(k + a + 1, m, b + 1);
    return k;
}

static void add_range(void *ctx, const char *db, const char *m, uint64_t lo, uint64_t hi)
{
    struct ranges *rs = ctx;

    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = xreallocarray(rs->v, rs->cap, sizeof(*rs->v));
    }
    rs->v[rs->n].key = range_key(db, m);
    rs->v[rs->n].lo = lo;
    rs->v[rs->n].hi = hi;
    rs->n++;
}

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Is lsn of (db, m) inside a committed range? Binary search on (key, lo). */
static bool covered(const struct ranges *rs, const char *key, uint64_t lsn)
{
    size_t lo = 0, hi = rs->n;

    /* find the last range with (key, lo) <= (key, lsn) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rs->v[mid].key, key);
        if (c < 0 || (c == 0 && rs->v[mid].lo <= lsn))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && strcmp(rs->v[lo - 1].key, key) == 0 && rs->v[lo - 1].hi >= lsn;
}

struct replay_ctx {
    struct ingest_pipeline *p;
    struct ranges rs;
    uint64_t records, rows, skipped_batches;
};

static enum err replay_one(void *ctx, uint64_t lsn, const struct wal_record *rec,
                           struct errbuf *eb)
{
    struct replay_ctx *rc = ctx;
    struct ingest_result r = {0};
    struct errbuf deb;
    char db[256];
    size_t i, keep = 0, rows = 0;
    enum err e;

    if (rec->db_len == 0 || rec->db_len >= sizeof(db)) {
        log_error("WAL record with a bad database name skipped", "lsn=%llu",
                  (unsigned long long)lsn);
        return ERR_OK;
    }
    memcpy(db, rec->db, rec->db_len);
    db[rec->db_len] = '\0';
    errbuf_init(&deb);
    e = decode((enum ingest_format)rec->kind, (enum ingest_precision)rec->flags, rec->body,
               rec->body_len, rec->time_us, &r, &deb);
    if (e) {
        log_error("WAL record does not decode; skipped", "lsn=%llu error=\"%s\"",
                  (unsigned long long)lsn, deb.msg);
        return ERR_OK;
    }
    /* keep only the measurements whose rows are not yet in a committed file */
    for (i = 0; i < r.nbatches; i++) {
        char *key = range_key(db, r.batches[i]->measurement);
        bool done = covered(&rc->rs, key, lsn);
        free(key);
        if (done) {
            batch_free(r.batches[i]);
            rc->skipped_batches++;
            continue;
        }
        rows += r.batches[i]->nrows;
        r.batches[keep++] = r.batches[i];
    }
    r.nbatches = keep;
    if (keep) {
        e = bufmgr_append(rc->p->bm, db, r.batches, keep, lsn, &deb);
        if (e == ERR_BUSY) {
            /* more to replay than the memory budget holds: write what is buffered
             * to Parquet (the flush records its LSN range) and go on */
            errbuf_init(&deb);
            e = bufmgr_flush_all(rc->p->bm, 600000, &deb);
            if (e == ERR_OK)
                e = bufmgr_append(rc->p->bm, db, r.batches, keep, lsn, &deb);
        }
        if (e) {
            ingest_result_release(&r);
            return errbuf_set(eb, e, "replay of WAL record %llu: %s", (unsigned long long)lsn,
                              deb.msg);
        }
        rc->records++;
        rc->rows += rows;
    }
    atomic_store(&rc->p->appended_lsn, lsn);
    ingest_result_release(&r);
    return ERR_OK;
}

enum err ingest_pipeline_replay(struct ingest_pipeline *p, uint64_t *records, uint64_t *rows,
                                struct errbuf *eb)
{
    struct replay_ctx rc;
    enum err e;
    size_t i;

    memset(&rc, 0, sizeof(rc));
    rc.p = p;
    *records = *rows = 0;
    if (!p->wal)
        return ERR_OK;
    e = catalog_wal_ranges(p->catalog, 0, add_range, &rc.rs, eb);
    if (e)
        return e;
    if (rc.rs.n)
        qsort(rc.rs.v, rc.rs.n, sizeof(*rc.rs.v), cmp_range);
    e = wal_replay(p->wal, replay_one, &rc, eb);
    for (i = 0; i < rc.rs.n; i++)
        free(rc.rs.v[i].key);
    free(rc.rs.v);
    if (e) {
        /* records after the failure are not in the buffers: never let a
         * checkpoint pass them (it would delete acknowledged rows) */
        pthread_mutex_lock(&p->ckpt_lock);
        p->replay_failed = true;
        pthread_mutex_unlock(&p->ckpt_lock);
        return e;
    }
    if (atomic_load(&p->appended_lsn) < wal_last_lsn(p->wal))
        atomic_store(&p->appended_lsn, wal_last_lsn(p->wal));
    *records = rc.records;
    *rows = rc.rows;
    if (rc.skipped_batches)
        log_info("WAL replay skipped batches already in Parquet", "batches=%llu",
                 (unsigned long long)rc.skipped_batches);
    return e;
}

static enum err checkpoint_locked(struct ingest_pipeline *p, struct errbuf *eb)
{
    uint64_t appended, unflushed, safe;
    size_t deleted = 0;
    enum err e;

    /* read appended before the buffers: a record appended in between is then
     * either above `appended` or visible as unflushed, never lost from view */
    appended = atomic_load(&p->appended_lsn);
    unflushed = bufmgr_min_unflushed_lsn(p->bm);
    safe = unflushed == UINT64_MAX ? appended
                                   : (unflushed - 1 < appended ? unflushed - 1 : appended);
    if (safe <= p->checkpointed)
        return ERR_OK;
    e = wal_checkpoint(p->wal, safe, &deleted, eb);
    if (e)
        return e;
    /* remembered so replay skips what is already in Parquet without decoding */
    {
        char v[32];
        snprintf(v, sizeof(v), "%llu", (unsigned long long)safe);
        e = catalog_meta_set(p->catalog, "wal_checkpoint_lsn", v, eb);
        if (e)
            return e;
    }
    p->checkpointed = safe;
    if (deleted)
        log_info("WAL segments deleted after checkpoint", "checkpoint_lsn=%llu segments=%zu",
                 (unsigned long long)safe, deleted);
    return ERR_OK;
}

enum err ingest_pipeline_checkpoint(struct ingest_pipeline *p, struct errbuf *eb)
{
    enum err e;

    if (!p->wal)
        return ERR_OK;
    pthread_mutex_lock(&p->ckpt_lock);
    if (p->replay_failed)
        e = errbuf_set(eb, ERR_INVAL,
                       "WAL replay failed: checkpoints are disabled until a successful restart");
    else
        e = checkpoint_locked(p, eb);
    pthread_mutex_unlock(&p->ckpt_lock);
    return e;
}
