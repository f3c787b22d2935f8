/* buffer_int.h - the buffer manager's internal types, shared by buffer.c (table,
 * append, flush, maintenance) and buffer_schema.c (schema checks, row copies). */
#ifndef ARC_BUFFER_INT_H
#define ARC_BUFFER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer/buffer.h"
#include "core/batch.h"
#include "core/err.h"
#include "core/metrics.h"
#include "core/workpool.h"

#define NBUCKETS 1024

struct flushitem {
    struct flushitem *next;
    struct batch *b;
    size_t bytes;            /* budget charged for b */
    bool queued;             /* a flush job for it is queued or running */
    uint64_t lsn_lo, lsn_hi; /* WAL range of its rows (0 = none) */
    int64_t retry_at_ns;     /* after a failure: earliest retry (monotonic) */
    unsigned failures;
    bool dropped; /* its database was dropped: discard instead of writing */
    bool started; /* a flusher has taken it: no more rows join it */
};

struct schema_col {
    char *name;
    enum batch_type type;
    bool is_tag;
};

struct mbuf {
    struct mbuf *next; /* hash chain */
    struct bufmgr *bm;
    char *db, *m;
    pthread_mutex_t lock;
    pthread_rwlock_t commit_lock;  /* write: a flush commits + drops its batch;
                                      read: a query lists files + copies batches */
    struct batch *active;          /* NULL when empty */
    size_t active_bytes;           /* budget charged for active */
    int64_t active_since_ns;       /* monotonic time of the first row in active */
    uint64_t active_lo, active_hi; /* WAL range of the active rows (0 = none) */
    struct flushitem *flushing;    /* oldest first */
    struct schema_col *schema;     /* every column ever seen, with its current type */
    size_t nschema, schema_cap;
    _Atomic uint64_t gen; /* data generation (bufmgr_generation); 0 = never changed */
};

struct bufmgr {
    struct bufmgr_opts o;
    pthread_rwlock_t table_lock;
    struct mbuf *buckets[NBUCKETS];
    size_t nbufs;
    struct workpool *pool;
    pthread_mutex_t done_lock; /* with done_cond: wakes bufmgr_flush_all */
    pthread_cond_t done_cond;
    _Atomic size_t bytes;
    _Atomic size_t active_rows, flushing_rows;
    _Atomic uint64_t rows_accepted, rows_flushed, flushes, flush_errors, rejected_busy;
    _Atomic uint64_t coalesced;      /* rotations merged into a waiting flush (coalesce) */
    _Atomic uint64_t gen_seq;        /* last generation handed out: values never repeat */
    char last_error[ERRBUF_MSG_MAX]; /* under done_lock */
    struct metric *m_rows, *m_flushed, *m_flushes, *m_errors, *m_busy, *m_bytes, *m_budget;
};

/* ---- buffer_schema.c (x locked) ---- */
struct schema_col *mbuf_schema_find(struct mbuf *x, const char *name);
void mbuf_schema_add(struct mbuf *x, const char *name, enum batch_type t, bool is_tag);
/* Would appending src to x succeed? ERR_OK, or a "field type conflict" naming the
 * column and both types (nothing changes either way). */
enum err mbuf_check_batch(struct mbuf *x, const struct batch *src, struct errbuf *eb);
/* Does src fit x's schema exactly (so it can become the active batch as is)? */
bool mbuf_fits_exactly(struct mbuf *x, const struct batch *src);
/* Append src's rows to dst under x's schema (new columns, int -> float widening,
 * string ids re-interned once per distinct value). */
void mbuf_copy_rows(struct mbuf *x, struct batch *dst, const struct batch *src);

#endif
