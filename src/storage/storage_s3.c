/* storage_s3.c - the remote (S3/MinIO/GCS) backend: placing flushed files,
 * the outage spool and its uploader, the read-through cache for queries.
 *
 * Placement of one flushed file (fsynced temp file in {root}/.tmp):
 *   1. intent row (state UPLOADING) in the catalog;
 *   2. PUT (or multipart) under its key; on success rename into the cache;
 *   3. if the store is unreachable (transient error after retries) or the
 *      spool is already draining: intent -> SPOOLED, rename into
 *      {spool}/{key}, fsync; the file is listed with that pending flag;
 *   4. the caller commits the catalog row (the trigger drops UPLOADING intents).
 * The uploader thread uploads SPOOLED files in intent order under the same key
 * (a retried PUT of the same bytes is idempotent), hard-links the file into the
 * cache, clears the intent, and unlinks the spool copy only after cache_pin_ms
 * so a query that was handed the spool path can still open it. New flushes go
 * straight to the spool while anything is pending (keeps the order and skips
 * retry delays) and for a few seconds after a transient failure (breaker).
 *
 * Start-up recovery: intents of unlisted files are orphans of a crash before
 * the commit (the object and spool copy are deleted; the WAL re-creates the
 * rows); spool files without a pending intent are leftovers and removed. */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "catalog/catalog_s3.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "storage/hot.h"
#include "storage/storage_int.h"

#define BREAKER_MS 5000       /* after a transient failure, spool for this long */
#define UPLOAD_BACKOFF_MAX_MS 10000
#define DEFAULT_PIN_MS 600000 /* 10 min when the query timeout is 0 */

static int64_t mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

static enum err key_path(const char *dir, const char *key, char *out, size_t out_len,
                         struct errbuf *eb)
{
    int n = snprintf(out, out_len, "%s/%s", dir, key);
    if (n < 0 || (size_t)n >= out_len)
        return errbuf_set(eb, ERR_LIMIT, "path too long for key %s", key);
    return ERR_OK;
}

/* rename src to {dir}/{key}, creating directories; fsync the directory when
 * durable (the spool must survive power loss, the cache need not). */
static enum err move_into(const char *src, const char *dir, const char *key, bool durable,
                          char *dst, size_t dst_len, struct errbuf *eb)
{
    char parent[4096];
    char *slash;
    enum err rc;

    rc = key_path(dir, key, dst, dst_len, eb);
    if (rc)
        return rc;
    snprintf(parent, sizeof(parent), "%s", dst);
    slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    rc = storage_mkdirs(parent, NULL, eb);
    if (rc)
        return rc;
    if (rename(src, dst) != 0)
        return errbuf_set(eb, errno == ENOSPC ? ERR_NOSPACE : ERR_IO, "rename %s -> %s: %s", src,
                          dst, strerror(errno));
    if (durable)
        return fileio_fsync_path(parent, true, eb);
    return ERR_OK;
}

static void spool_gauges(struct storage *st)
{
    if (st->m_spool_bytes) {
        metric_set(st->m_spool_bytes, (int64_t)st->spool_bytes);
        metric_set(st->m_spool_files, (int64_t)st->npending);
    }
}

/* ---- placement (flush side) -------------------------------------------------- */

enum err storage_s3_place(struct storage *st, const char *key, const char *tmp, int64_t bytes,
                          bool *spooled, struct errbuf *eb)
{
    char dst[4096];
    bool spool_now;
    enum err rc;

    rc = catalog_upload_set(st->catalog, key, CATALOG_UPLOAD_UPLOADING, bytes, eb);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->mu);
    spool_now = st->npending > 0 || mono_ms() < st->breaker_until_ms;
    pthread_mutex_unlock(&st->mu);
    if (!spool_now) {
        rc = s3_put_file(st->s3, key, tmp, NULL, eb);
        if (rc == ERR_OK) {
            if (st->m_uploads)
                metric_add(st->m_uploads, 1);
            rc = move_into(tmp, st->cachedir, key, false, dst, sizeof(dst), eb);
            if (rc) {
                /* uploaded but not cached: fine, queries will download it */
                log_warn("cannot move an uploaded file into the cache", "key=%s error=\"%s\"",
                         key, eb->msg);
                errbuf_init(eb);
                unlink(tmp);
            }
            *spooled = false;
            return ERR_OK;
        }
        if (st->m_upload_errors)
            metric_add(st->m_upload_errors, 1);
        if (!s3_err_is_transient(rc)) {
            log_error("S3 upload refused", "key=%s error=\"%s\"", key, eb->msg);
            return rc;
        }
        log_warn("S3 unreachable: spooling the file locally", "key=%s error=\"%s\"", key,
                 eb->msg);
        errbuf_init(eb);
    }
    pthread_mutex_lock(&st->mu);
    st->breaker_until_ms = mono_ms() + BREAKER_MS;
    if (st->spool_bytes + (uint64_t)bytes > st->spool_max_bytes) {
        uint64_t have = st->spool_bytes;
        pthread_mutex_unlock(&st->mu);
        return errbuf_set(eb, ERR_BUSY,
                          "remote store %s unreachable and the local spool is full "
                          "(%llu of %llu bytes used; storage.spool_max_mb)",
                          s3_client_where(st->s3), (unsigned long long)have,
                          (unsigned long long)st->spool_max_bytes);
    }
    st->spool_bytes += (uint64_t)bytes; /* reserve */
    pthread_mutex_unlock(&st->mu);
    rc = catalog_upload_set(st->catalog, key, CATALOG_UPLOAD_SPOOLED, bytes, eb);
    if (rc == ERR_OK)
        rc = move_into(tmp, st->spooldir, key, true, dst, sizeof(dst), eb);
    if (rc) {
        pthread_mutex_lock(&st->mu);
        st->spool_bytes -= (uint64_t)bytes;
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    if (st->m_spooled_total)
        metric_add(st->m_spooled_total, 1);
    *spooled = true;
    return ERR_OK;
}

void storage_s3_committed(struct storage *st, const char *key, int64_t bytes, bool spooled)
{
    if (!spooled) {
        s3cache_add(st->cache, key, (uint64_t)bytes);
        return;
    }
    pthread_mutex_lock(&st->mu);
    st->npending++;
    spool_gauges(st);
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void storage_s3_unplace(struct storage *st, const char *key, int64_t bytes, bool spooled)
{
    char path[4096];
    struct errbuf eb;

    errbuf_init(&eb);
    if (spooled) {
        if (key_path(st->spooldir, key, path, sizeof(path), &eb) == ERR_OK)
            unlink(path);
        pthread_mutex_lock(&st->mu);
        st->spool_bytes -= (uint64_t)bytes;
        pthread_mutex_unlock(&st->mu);
    } else {
        if (key_path(st->cachedir, key, path, sizeof(path), &eb) == ERR_OK)
            unlink(path);
        if (s3_delete(st->s3, key, &eb) != ERR_OK)
            log_warn("cannot delete an uploaded file after a failed commit (orphan object)",
                     "key=%s error=\"%s\"", key, eb.msg);
    }
    errbuf_init(&eb);
    catalog_upload_clear(st->catalog, key, &eb);
}

/* ---- uploader ------------------------------------------------------------------- */

static void run_deferred(struct storage *st, bool all)
{
    int64_t now = mono_ms();
    size_t i = 0;

    pthread_mutex_lock(&st->mu);
    while (i < st->ndl) {
        if (all || st->dl[i].at_ms <= now) {
            unlink(st->dl[i].path);
            free(st->dl[i].path);
            st->dl[i] = st->dl[--st->ndl];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&st->mu);
}

/* Upload one pending file. ERR_OK: done (intent cleared). */
static enum err upload_one(struct storage *st, const struct catalog_upload *u, struct errbuf *eb)
{
    char spath[4096], cpath[4096], parent[4096];
    struct stat sb;
    enum err rc;

    rc = key_path(st->spooldir, u->path, spath, sizeof(spath), eb);
    if (rc)
        return rc;
    if (stat(spath, &sb) != 0) {
        bool there = false;
        rc = s3_exists(st->s3, u->path, &there, NULL, eb);
        if (rc)
            return rc;
        if (!there)
            log_error("spooled file missing and not in the remote store: its rows are lost",
                      "key=%s", u->path);
        rc = catalog_upload_clear(st->catalog, u->path, eb);
        if (rc == ERR_OK) {
            pthread_mutex_lock(&st->mu);
            st->npending--;
            st->spool_bytes -= (uint64_t)u->bytes;
            spool_gauges(st);
            pthread_mutex_unlock(&st->mu);
        }
        return rc;
    }
    rc = s3_put_file(st->s3, u->path, spath, NULL, eb);
    if (rc) {
        if (st->m_upload_errors)
            metric_add(st->m_upload_errors, 1);
        return rc;
    }
    if (st->m_uploads)
        metric_add(st->m_uploads, 1);
    /* into the cache by hard link: the spool copy stays for queries holding it */
    if (key_path(st->cachedir, u->path, cpath, sizeof(cpath), eb) == ERR_OK) {
        char *slash;
        snprintf(parent, sizeof(parent), "%s", cpath);
        slash = strrchr(parent, '/');
        if (slash)
            *slash = '\0';
        unlink(cpath);
        if (storage_mkdirs(parent, NULL, eb) == ERR_OK && link(spath, cpath) == 0)
            s3cache_add(st->cache, u->path, (uint64_t)sb.st_size);
        errbuf_init(eb);
    }
    rc = catalog_upload_clear(st->catalog, u->path, eb);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->mu);
    st->npending--;
    st->spool_bytes -= (uint64_t)u->bytes;
    if (st->ndl == st->dl_cap) {
        st->dl_cap = st->dl_cap ? st->dl_cap * 2 : 16;
        st->dl = xreallocarray(st->dl, st->dl_cap, sizeof(*st->dl));
    }
    st->dl[st->ndl].path = xstrdup(spath);
    st->dl[st->ndl].at_ms = mono_ms() + st->pin_ms;
    st->ndl++;
    spool_gauges(st);
    pthread_mutex_unlock(&st->mu);
    log_info("spooled file uploaded", "key=%s bytes=%lld", u->path, (long long)u->bytes);
    return ERR_OK;
}

static void *uploader_main(void *arg)
{
    struct storage *st = arg;
    int64_t backoff = 500, next_try = 0;

    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        struct timespec ts;
        struct catalog_upload *ups = NULL;
        size_t n = 0, i;
        struct errbuf eb;
        bool work = st->npending > 0 && mono_ms() >= next_try;

        if (!work) {
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&st->cv, &st->mu, &ts);
            pthread_mutex_unlock(&st->mu);
            run_deferred(st, false);
            s3cache_evict(st->cache);
            pthread_mutex_lock(&st->mu);
            continue;
        }
        pthread_mutex_unlock(&st->mu);
        errbuf_init(&eb);
        if (catalog_uploads_pending(st->catalog, &ups, &n, &eb) != ERR_OK) {
            log_warn("cannot list pending uploads", "error=\"%s\"", eb.msg);
            next_try = mono_ms() + backoff;
        }
        for (i = 0; i < n; i++) {
            bool stop;
            pthread_mutex_lock(&st->mu);
            stop = st->stop;
            pthread_mutex_unlock(&st->mu);
            if (stop)
                break;
            errbuf_init(&eb);
            if (upload_one(st, &ups[i], &eb) != ERR_OK) {
                log_warn("upload of a spooled file failed; will retry", "key=%s error=\"%s\"",
                         ups[i].path, eb.msg);
                next_try = mono_ms() + backoff;
                backoff = backoff * 2 > UPLOAD_BACKOFF_MAX_MS ? UPLOAD_BACKOFF_MAX_MS
                                                              : backoff * 2;
                break;
            }
            backoff = 500;
        }
        catalog_uploads_free(ups, n);
        pthread_mutex_lock(&st->mu);
        if (i == n && n > 0) {
            /* drained what was listed: the store is back */
            st->breaker_until_ms = 0;
        }
        if (n == 0)
            next_try = mono_ms() + 1000; /* a flush not committed yet, or files dropped
                                            while pending: look again in a second */
        spool_gauges(st);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- open / recovery -------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Remove spool files that are not pending (uploaded before a crash, or left by
 * an interrupted placement). keys: sorted pending keys. */
static void sweep_spool(struct storage *st, const char *rel, char **keys, size_t nkeys,
                        int depth)
{
    char path[4096];
    DIR *d;
    struct dirent *de;

    if (depth > 16)
        return;
    snprintf(path, sizeof(path), "%s%s%s", st->spooldir, rel[0] ? "/" : "", rel);
    d = opendir(path);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char sub[4096], full[4096];
        const char *k = sub;
        struct stat sb;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof(sub) ||
            snprintf(full, sizeof(full), "%s/%s", st->spooldir, sub) >= (int)sizeof(full))
            continue;
        if (lstat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            sweep_spool(st, sub, keys, nkeys, depth + 1);
        else if (!bsearch(&k, keys, nkeys, sizeof(char *), cmp_str))
            unlink(full);
    }
    closedir(d);
}

static enum err recover(struct storage *st, bool reachable, struct errbuf *eb)
{
    struct catalog_upload *u = NULL;
    size_t n = 0, i;
    char **keys;
    enum err rc;

    rc = catalog_uploads_orphans(st->catalog, &u, &n, eb);
    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        char path[4096];
        struct errbuf e2;
        errbuf_init(&e2);
        if (!reachable)
            break; /* keep the intents: the objects are deleted at a later start */
        if (s3_delete(st->s3, u[i].path, &e2) != ERR_OK) {
            log_warn("cannot delete an orphan object", "key=%s error=\"%s\"", u[i].path, e2.msg);
            continue;
        }
        if (key_path(st->spooldir, u[i].path, path, sizeof(path), &e2) == ERR_OK)
            unlink(path);
        if (key_path(st->cachedir, u[i].path, path, sizeof(path), &e2) == ERR_OK)
            unlink(path);
        catalog_upload_clear(st->catalog, u[i].path, &e2);
        log_warn("removed an object the catalog does not list (crash before commit)", "key=%s",
                 u[i].path);
    }
    catalog_uploads_free(u, n);
    u = NULL;
    n = 0;
    rc = catalog_uploads_pending(st->catalog, &u, &n, eb);
    if (rc)
        return rc;
    keys = xcalloc(n ? n : 1, sizeof(*keys));
    for (i = 0; i < n; i++) {
        keys[i] = u[i].path;
        st->spool_bytes += (uint64_t)u[i].bytes;
    }
    st->npending = n;
    if (n)
        qsort(keys, n, sizeof(*keys), cmp_str);
    sweep_spool(st, "", keys, n, 0);
    free(keys);
    if (n)
        log_info("files waiting in the spool for upload", "count=%zu bytes=%llu", n,
                 (unsigned long long)st->spool_bytes);
    catalog_uploads_free(u, n);
    spool_gauges(st);
    return ERR_OK;
}

enum err storage_s3_open(struct storage *st, const struct storage_opts *o, struct errbuf *eb)
{
    struct s3cache_opts co;
    bool reachable = true;
    enum err rc;

    st->pin_ms = o->cache_pin_ms > 0 ? o->cache_pin_ms : DEFAULT_PIN_MS;
    st->spool_max_bytes = o->spool_max_bytes;
    if (o->metrics) {
        st->m_uploads = metrics_counter(o->metrics, "arc_storage_uploads_total",
                                        "Files uploaded to the remote store", NULL);
        st->m_upload_errors = metrics_counter(o->metrics, "arc_storage_upload_errors_total",
                                              "Failed uploads (retried or spooled)", NULL);
        st->m_spooled_total = metrics_counter(o->metrics, "arc_storage_spooled_total",
                                              "Files spooled while the store was away", NULL);
        st->m_spool_bytes = metrics_gauge(o->metrics, "arc_storage_spool_bytes",
                                          "Bytes waiting in the local spool", NULL);
        st->m_spool_files = metrics_gauge(o->metrics, "arc_storage_spool_files",
                                          "Files waiting in the local spool", NULL);
    }
    rc = s3_client_new(&o->s3, &st->s3, eb);
    if (rc)
        return rc;
    rc = s3_bucket_check(st->s3, o->create_bucket, eb);
    if (rc && s3_err_is_transient(rc)) {
        log_warn("remote store unreachable at start-up: flushed files will be spooled",
                 "error=\"%s\"", eb->msg);
        errbuf_init(eb);
        reachable = false;
        st->breaker_until_ms = mono_ms() + BREAKER_MS;
    } else if (rc) {
        return errbuf_prefix(eb, "cannot access the remote store");
    }
    memset(&co, 0, sizeof(co));
    co.dir = st->cachedir;
    co.max_bytes = o->cache_max_bytes;
    co.pin_ms = st->pin_ms;
    co.metrics = o->metrics;
    rc = s3cache_open(&co, &st->cache, eb);
    if (rc)
        return rc;
    rc = storage_mkdirs(st->spooldir, NULL, eb);
    if (rc)
        return rc;
    rc = recover(st, reachable, eb);
    if (rc)
        return rc;
    if (!o->no_uploader) {
        if (pthread_create(&st->uploader, NULL, uploader_main, st) != 0)
            return errbuf_set(eb, ERR_INTERNAL, "cannot start the uploader thread");
        st->uploader_running = true;
    }
    log_info("remote storage ready", "where=%s prefix=%s cache=%s spool=%s pending=%zu",
             s3_client_where(st->s3), o->s3.prefix ? o->s3.prefix : "", st->cachedir,
             st->spooldir, st->npending);
    return ERR_OK;
}

void storage_s3_close(struct storage *st)
{
    if (st->uploader_running) {
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->uploader, NULL);
        st->uploader_running = false;
    }
    run_deferred(st, true);
    free(st->dl);
    st->dl = NULL;
    st->ndl = st->dl_cap = 0;
    s3cache_free(st->cache);
    st->cache = NULL;
    s3_client_free(st->s3);
    st->s3 = NULL;
}

/* ---- the public interface's remote halves ------------------------------------------ */

enum err storage_read_path(struct storage *st, const char *key, char *out, size_t out_len,
                           struct errbuf *eb)
{
    char tmp[4096];
    struct stat sb;
    uint64_t bytes = 0;
    enum err rc;

    if (!st->remote) {
        if (storage_local_path(st, key, out, out_len) != ERR_OK)
            return errbuf_set(eb, ERR_LIMIT, "storage path too long: %s", key);
        return ERR_OK;
    }
    rc = key_path(st->cachedir, key, out, out_len, eb);
    if (rc)
        return rc;
    if (s3cache_acquire(st->cache, key))
        return ERR_OK;
    /* a file still waiting for its upload is read from the spool */
    rc = key_path(st->spooldir, key, tmp, sizeof(tmp), eb);
    if (rc)
        return rc;
    if (stat(tmp, &sb) == 0) {
        if (strlen(tmp) >= out_len)
            return errbuf_set(eb, ERR_LIMIT, "path too long for key %s", key);
        memcpy(out, tmp, strlen(tmp) + 1);
        return ERR_OK;
    }
    rc = s3cache_tmp_path(st->cache, tmp, sizeof(tmp));
    if (rc)
        return errbuf_set(eb, ERR_LIMIT, "cache path too long");
    rc = s3_get_file(st->s3, key, tmp, &bytes, eb);
    if (rc == ERR_OK) {
        char parent[4096], *slash;
        snprintf(parent, sizeof(parent), "%s", out);
        slash = strrchr(parent, '/');
        if (slash)
            *slash = '\0';
        rc = storage_mkdirs(parent, NULL, eb);
        if (rc == ERR_OK && rename(tmp, out) != 0)
            rc = errbuf_set(eb, ERR_IO, "rename %s -> %s: %s", tmp, out, strerror(errno));
    }
    if (rc) {
        unlink(tmp);
        return errbuf_prefix(eb, "reading %s", key);
    }
    s3cache_add(st->cache, key, bytes);
    return ERR_OK;
}

enum err storage_delete_local(struct storage *st, const char *key, struct errbuf *eb);

enum err storage_delete(struct storage *st, const char *key, struct errbuf *eb)
{
    char path[4096];
    enum err rc;

    hot_forget(st->hot, key);
    if (!st->remote)
        return storage_delete_local(st, key, eb);
    rc = s3_delete(st->s3, key, eb);
    if (rc)
        return rc;
    s3cache_remove(st->cache, key);
    if (key_path(st->spooldir, key, path, sizeof(path), eb) == ERR_OK)
        unlink(path);
    return catalog_upload_clear(st->catalog, key, eb);
}

enum err storage_exists(struct storage *st, const char *key, bool *out, struct errbuf *eb)
{
    char path[4096];

    if (st->remote)
        return s3_exists(st->s3, key, out, NULL, eb);
    if (storage_local_path(st, key, path, sizeof(path)) != ERR_OK)
        return errbuf_set(eb, ERR_LIMIT, "storage path too long: %s", key);
    *out = access(path, F_OK) == 0;
    return ERR_OK;
}

size_t storage_pending_uploads(struct storage *st)
{
    size_t n;

    if (!st->remote)
        return 0;
    pthread_mutex_lock(&st->mu);
    n = st->npending;
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* local listing: a recursive walk of the root without cache, spool and .tmp */
static enum err walk_local(struct storage *st, const char *rel, storage_list_fn *fn, void *ctx,
                           int depth, bool *stop)
{
    char path[4096];
    DIR *d;
    struct dirent *de;

    if (depth > 16)
        return ERR_OK;
    snprintf(path, sizeof(path), "%s%s%s", st->root, rel[0] ? "/" : "", rel);
    if (!strcmp(path, st->cachedir) || !strcmp(path, st->spooldir))
        return ERR_OK;
    d = opendir(path);
    if (!d)
        return ERR_OK;
    while (!*stop && (de = readdir(d))) {
        char sub[4096], full[4096];
        struct stat sb;
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof(sub) ||
            snprintf(full, sizeof(full), "%s/%s", st->root, sub) >= (int)sizeof(full))
            continue;
        if (lstat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            walk_local(st, sub, fn, ctx, depth + 1, stop);
        else if (S_ISREG(sb.st_mode) && nl > 8 && !strcmp(de->d_name + nl - 8, ".parquet") &&
                 fn(ctx, sub, (uint64_t)sb.st_size) != 0)
            *stop = true;
    }
    closedir(d);
    return ERR_OK;
}

struct list_filter {
    storage_list_fn *fn;
    void *ctx;
};

static int only_parquet(void *ctx, const char *key, uint64_t size)
{
    struct list_filter *f = ctx;
    size_t n = strlen(key);

    if (n <= 8 || strcmp(key + n - 8, ".parquet") != 0)
        return 0;
    return f->fn(f->ctx, key, size);
}

enum err storage_list(struct storage *st, storage_list_fn *fn, void *ctx, struct errbuf *eb)
{
    bool stop = false;
    struct list_filter f = {fn, ctx};

    if (st->remote)
        return s3_list(st->s3, "", only_parquet, &f, eb);
    return walk_local(st, "", fn, ctx, 0, &stop);
}
