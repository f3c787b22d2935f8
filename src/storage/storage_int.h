/* storage_int.h - private to src/storage: the storage handle shared by
 * storage.c (core, local backend, flush pipeline), storage_s3.c (remote
 * backend: cache, spool, uploader) and storage_rebuild.c. */
#ifndef STORAGE_STORAGE_INT_H
#define STORAGE_STORAGE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "duck/duck.h"
#include "storage/cache.h"
#include "storage/s3.h"
#include "storage/storage.h"

struct deferred_unlink {
    char *path;       /* owned */
    int64_t at_ms;    /* monotonic ms when it may go */
};

struct storage {
    char *root;                  /* local root, no trailing '/' */
    char *tmpdir;                /* {root}/.tmp */
    char *node_id;
    uint32_t nonce;              /* random per process */
    _Atomic uint64_t seq;        /* file sequence within this process */
    struct duck_parquet_opts pq;
    struct catalog *catalog;
    struct duck *duck;
    struct hot *hot;             /* borrowed, may be NULL */
    struct metric *m_files, *m_bytes, *m_write_ms;

    /* remote backend (remote == true) */
    bool remote;
    struct s3_client *s3;
    struct s3cache *cache;
    char *cachedir;              /* cache root, no trailing '/' (also when local) */
    char *spooldir;              /* spool root, no trailing '/' (also when local) */
    uint64_t spool_max_bytes;
    int64_t pin_ms;              /* lease of a path handed to a query */
    pthread_mutex_t mu;          /* guards the fields below */
    pthread_cond_t cv;           /* wakes the uploader */
    uint64_t spool_bytes;        /* bytes of spooled files */
    size_t npending;             /* spooled files not yet uploaded */
    int64_t breaker_until_ms;    /* until then new flushes spool without trying */
    bool stop;                   /* uploader must exit */
    bool uploader_running;
    pthread_t uploader;
    struct deferred_unlink *dl;  /* spool copies kept until queries are done */
    size_t ndl, dl_cap;
    struct metric *m_uploads, *m_upload_errors, *m_spool_bytes, *m_spool_files,
        *m_spooled_total;
};

/* mkdir -p / fsync helpers of storage.c. */
enum err storage_mkdirs(const char *path, bool *created, struct errbuf *eb);

/* storage_s3.c */
enum err storage_s3_open(struct storage *st, const struct storage_opts *o, struct errbuf *eb);
void storage_s3_close(struct storage *st);

/* Make the Parquet file at tmp (fsynced, bytes long) durable in the remote
 * store under key: upload it and move it into the cache, or - store
 * unreachable - into the spool with a pending-upload intent. *spooled tells
 * which. ERR_BUSY: unreachable and the spool is full. */
enum err storage_s3_place(struct storage *st, const char *key, const char *tmp, int64_t bytes,
                          bool *spooled, struct errbuf *eb);
/* After the catalog commit of placed files: register cached ones, wake the
 * uploader for spooled ones. */
void storage_s3_committed(struct storage *st, const char *key, int64_t bytes, bool spooled);
/* Undo a placement whose catalog commit failed (delete object / spool copy). */
void storage_s3_unplace(struct storage *st, const char *key, int64_t bytes, bool spooled);

#endif
