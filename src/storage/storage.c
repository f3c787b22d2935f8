/* storage.c - the local backend and the flush pipeline (sort, split by hour,
 * Parquet through DuckDB, durable rename or remote placement, one catalog
 * transaction). The remote (s3) side lives in storage_s3.c.
 *
 * File names are `{µs since epoch}-{node id}-{process nonce}-{sequence}`: time
 * ordered, unique across nodes (node id) and across restarts of one node (the
 * nonce is random per process), never a counter that restarts at zero.
 * Temp files live in {root}/.tmp (a database name cannot start with '.'), on the
 * same file system as the final place, so rename() is atomic. */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "duck/duck.h"
#include "duck/duck_inspect.h"
#include "storage/hot.h"
#include "storage/storage_int.h"

#define US_PER_HOUR 3600000000LL

/* mkdir -p and fsync-by-path live in core/fileio; the short names keep the flush
 * pipeline readable. */
enum err storage_mkdirs(const char *path, bool *created, struct errbuf *eb)
{
    return fileio_mkdirs(path, 0755, created, eb);
}
#define mkdirs storage_mkdirs
#define fsync_path fileio_fsync_path

enum err storage_open(const struct storage_opts *o, struct storage **out, struct errbuf *eb)
{
    struct storage *st;
    size_t n;
    enum err rc;

    bool remote =
        !strcmp(o->backend, "s3") || !strcmp(o->backend, "minio") || !strcmp(o->backend, "gcs");

    if (strcmp(o->backend, "local") != 0 && !remote)
        return errbuf_set(eb, ERR_INVAL,
                          "storage.backend = \"%s\" is not one of local|s3|minio|gcs", o->backend);
    st = xcalloc(1, sizeof(*st));
    st->remote = remote;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->root = xstrdup(o->local_root);
    n = strlen(st->root);
    while (n > 1 && st->root[n - 1] == '/')
        st->root[--n] = '\0';
    st->tmpdir = xmalloc(n + 6);
    snprintf(st->tmpdir, n + 6, "%s/.tmp", st->root);
    st->node_id = xstrdup(o->node_id);
    st->hot = o->hot;
    if (RAND_bytes((unsigned char *)&st->nonce, sizeof(st->nonce)) != 1)
        st->nonce = (uint32_t)clock_now_us() ^ (uint32_t)getpid();
    memset(&st->pq, 0, sizeof(st->pq));
    if (!strcmp(o->compression, "snappy"))
        st->pq.compression = DUCK_PQ_SNAPPY;
    else if (!strcmp(o->compression, "none"))
        st->pq.compression = DUCK_PQ_UNCOMPRESSED;
    else
        st->pq.compression = DUCK_PQ_ZSTD;
    st->pq.zstd_level = o->compression_level;
    st->catalog = o->catalog;
    st->duck = o->duck;
    if (o->metrics) {
        st->m_files = metrics_counter(o->metrics, "arc_storage_files_written_total",
                                      "Parquet files written", NULL);
        st->m_bytes = metrics_counter(o->metrics, "arc_storage_bytes_written_total",
                                      "Parquet bytes written", NULL);
    }
    rc = mkdirs(st->tmpdir, NULL, eb);
    if (rc) {
        storage_close(st);
        return rc;
    }
    n = strlen(st->root) + 16;
    st->cachedir = xstrdup(o->cache_dir && *o->cache_dir ? o->cache_dir : "");
    st->spooldir = xstrdup(o->spool_dir && *o->spool_dir ? o->spool_dir : "");
    if (!st->cachedir[0]) {
        free(st->cachedir);
        st->cachedir = xmalloc(n);
        snprintf(st->cachedir, n, "%s/cache", st->root);
    }
    if (!st->spooldir[0]) {
        free(st->spooldir);
        st->spooldir = xmalloc(n);
        snprintf(st->spooldir, n, "%s/spool", st->root);
    }
    if (remote) {
        rc = storage_s3_open(st, o, eb);
        if (rc) {
            storage_close(st);
            return rc;
        }
    }
    *out = st;
    return ERR_OK;
}

void storage_close(struct storage *st)
{
    if (!st)
        return;
    storage_s3_close(st);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st->cachedir);
    free(st->spooldir);
    free(st->root);
    free(st->tmpdir);
    free(st->node_id);
    free(st);
}

const char *storage_root(const struct storage *st)
{
    return st->root;
}

bool storage_is_remote(const struct storage *st)
{
    return st->remote;
}

enum err storage_local_path(struct storage *st, const char *key, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/%s", st->remote ? st->cachedir : st->root, key);
    return (n < 0 || (size_t)n >= out_len) ? ERR_LIMIT : ERR_OK;
}

enum err storage_delete_local(struct storage *st, const char *key, struct errbuf *eb);

enum err storage_delete_local(struct storage *st, const char *key, struct errbuf *eb)
{
    char path[4096];

    if (storage_local_path(st, key, path, sizeof(path)))
        return errbuf_set(eb, ERR_LIMIT, "path too long");
    if (unlink(path) != 0 && errno != ENOENT)
        return errbuf_set(eb, ERR_IO, "unlink %s: %s", path, strerror(errno));
    return ERR_OK;
}

/* ------------------------------------------------------------- the sink */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct pending {
    char key[1024];
    char final[4096];
    char tmp[4096];
    int64_t min_us, max_us;
    size_t start, rows; /* perm[start .. start+rows) */
    int64_t bytes;
    bool renamed; /* local: at its final name */
    bool placed;  /* remote: uploaded (cached) or spooled */
    bool spooled; /* remote: in the spool, upload pending */
};

/* What the hot tier needs of a written batch, until the buffer hands it over. */
struct hot_keep {
    struct hot *hot;
    uint32_t *perm;         /* owned; NULL = the batch was in time order */
    struct hot_file *files; /* keys owned */
    size_t n;
};

static void keep_in_hot(void *ctx, struct batch *b)
{
    struct hot_keep *k = ctx;

    hot_put(k->hot, b, k->perm, k->files, k->n); /* takes b and perm, copies the keys */
    for (size_t i = 0; i < k->n; i++)
        free((char *)k->files[i].key);
    free(k->files);
    free(k);
}

enum err storage_write_batch(void *ctx, const char *db, const struct batch *b,
                             struct bufmgr_commit *cm, struct errbuf *eb)
{
    struct storage *st = ctx;
    uint32_t *perm;
    size_t n = b->nrows, i, start, npend = 0, cap_pend = 0;
    struct pending *pend = NULL;
    struct catalog_file *files = NULL;
    struct catalog_column *cols = NULL;
    bool sorted = true;
    enum err rc = ERR_OK;
    uint64_t lsn_lo = 0, lsn_hi = 0;

    if (n == 0)
        return ERR_OK;
    if (n > UINT32_MAX)
        return errbuf_set(eb, ERR_LIMIT, "batch too large");
    perm = xmalloc(n * sizeof(uint32_t));
    for (i = 0; i < n; i++) {
        perm[i] = (uint32_t)i;
        if (i && b->time_us[i] < b->time_us[i - 1])
            sorted = false;
    }
    if (!sorted)
        batch_sort_by_time(b->time_us, perm, n);

    /* one file per hour of data: runs of equal floor(time / 1h) in sorted order */
    for (start = 0; start < n;) {
        int64_t hour = floor_div(b->time_us[perm[start]], US_PER_HOUR);
        size_t end = start + 1;
        struct pending *p;
        time_t secs = (time_t)(hour * 3600);
        struct tm tm;
        struct stat sb;
        bool created = false;
        char dir[4096];
        uint64_t seq;

        while (end < n && floor_div(b->time_us[perm[end]], US_PER_HOUR) == hour)
            end++;
        if (npend == cap_pend) {
            cap_pend = cap_pend ? cap_pend * 2 : 4;
            pend = xreallocarray(pend, cap_pend, sizeof(*pend));
        }
        p = &pend[npend++];
        memset(p, 0, sizeof(*p));
        gmtime_r(&secs, &tm);
        seq = atomic_fetch_add(&st->seq, 1);
        snprintf(p->key, sizeof(p->key), "%s/%s/%04d/%02d/%02d/%02d/%lld-%s-%08x-%llu.parquet", db,
                 b->measurement, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 (long long)clock_now_us(), st->node_id, st->nonce, (unsigned long long)seq);
        snprintf(p->final, sizeof(p->final), "%s/%s", st->root, p->key);
        snprintf(p->tmp, sizeof(p->tmp), "%s/%lld-%08x-%llu.parquet.tmp", st->tmpdir,
                 (long long)clock_now_us(), st->nonce, (unsigned long long)seq);
        p->min_us = b->time_us[perm[start]];
        p->max_us = b->time_us[perm[end - 1]];
        p->start = start;
        p->rows = end - start;

        rc = duck_write_parquet(st->duck, b, perm + start, end - start, p->tmp, &st->pq, eb);
        if (rc)
            goto fail;
        rc = fsync_path(p->tmp, false, eb);
        if (rc)
            goto fail;
        if (stat(p->tmp, &sb) == 0)
            p->bytes = sb.st_size;
        if (st->remote) {
            rc = storage_s3_place(st, p->key, p->tmp, p->bytes, &p->spooled, eb);
            if (rc)
                goto fail;
            p->placed = true;
            start = end;
            continue;
        }
        snprintf(dir, sizeof(dir), "%s", p->final);
        *strrchr(dir, '/') = '\0';
        rc = mkdirs(dir, &created, eb);
        if (rc)
            goto fail;
        if (rename(p->tmp, p->final) != 0) {
            rc = errbuf_set(eb, ERR_IO, "rename %s -> %s: %s", p->tmp, p->final, strerror(errno));
            goto fail;
        }
        p->renamed = true;
        rc = fsync_path(dir, true, eb);
        if (rc)
            goto fail;
        if (created) {
            /* new hour/day/... directories: make their entries durable too */
            char *slash;
            while ((slash = strrchr(dir, '/')) && strlen(dir) > strlen(st->root)) {
                *slash = '\0';
                if (fsync_path(dir, true, eb) != ERR_OK)
                    break;
            }
        }
        start = end;
    }

    files = xcalloc(npend, sizeof(*files));
    bufmgr_commit_lsn(cm, &lsn_lo, &lsn_hi);
    for (i = 0; i < npend; i++) {
        files[i].wal_lsn_lo = lsn_lo;
        files[i].wal_lsn_hi = lsn_hi;
        files[i].database = (char *)db;
        files[i].measurement = b->measurement;
        files[i].path = pend[i].key;
        files[i].min_time_us = pend[i].min_us;
        files[i].max_time_us = pend[i].max_us;
        files[i].rows = (int64_t)pend[i].rows;
        files[i].bytes = pend[i].bytes;
    }
    cols = xcalloc(b->ncols ? b->ncols : 1, sizeof(*cols));
    for (i = 0; i < b->ncols; i++) {
        cols[i].name = b->cols[i].name;
        cols[i].type = batch_type_sql(b->cols[i].type);
        cols[i].is_tag = b->cols[i].is_tag;
    }
    bufmgr_commit_lock(cm); /* from here until the buffer drops b, queries wait */
    rc = catalog_files_add(st->catalog, db, b->measurement, files, npend, cols, b->ncols, eb);
    if (rc)
        goto fail;
    for (i = 0; i < npend; i++) {
        if (st->remote)
            storage_s3_committed(st, pend[i].key, pend[i].bytes, pend[i].spooled);
        if (st->m_files) {
            metric_add(st->m_files, 1);
            metric_add(st->m_bytes, (uint64_t)pend[i].bytes);
        }
        log_debug("parquet file written", "key=%s rows=%zu bytes=%lld", pend[i].key, pend[i].rows,
                  (long long)pend[i].bytes);
    }
    if (st->hot) {
        /* keep the rows in memory for queries of these files (hot.h), once the
         * buffer has let go of the batch */
        struct hot_keep *k = xcalloc(1, sizeof(*k));
        k->hot = st->hot;
        k->perm = sorted ? NULL : perm;
        k->files = xcalloc(npend, sizeof(*k->files));
        k->n = npend;
        for (i = 0; i < npend; i++) {
            k->files[i].key = xstrdup(pend[i].key);
            k->files[i].start = pend[i].start;
            k->files[i].count = pend[i].rows;
        }
        bufmgr_commit_keep(cm, keep_in_hot, k);
        if (!sorted)
            perm = NULL;
    }
    goto out;

fail:
    /* nothing was registered: remove what we wrote so a retry leaves no orphan */
    for (i = 0; i < npend; i++) {
        unlink(pend[i].tmp);
        if (pend[i].renamed)
            unlink(pend[i].final);
        if (pend[i].placed)
            storage_s3_unplace(st, pend[i].key, pend[i].bytes, pend[i].spooled);
    }
out:
    free(files);
    free(cols);
    free(pend);
    free(perm);
    return rc;
}

/* ---------------------------------------------------------------- orphans */

static struct storage *g_walk_st;
static size_t g_walk_removed, g_walk_adopted;
static bool g_walk_adopt;

/* Register an unlisted file instead of deleting it (WAL off: its rows were
 * acknowledged and exist nowhere else). key is {db}/{m}/YYYY/MM/DD/HH/name. */
static bool adopt_file(struct storage *st, const char *path, const char *key, off_t bytes)
{
    struct duck_pq_info info;
    struct catalog_file f;
    struct catalog_column *cols = NULL;
    char db[256], m[256];
    const char *s1 = strchr(key, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    struct errbuf eb;
    size_t i;
    bool ok;

    if (!s1 || !s2 || (size_t)(s1 - key) >= sizeof(db) || (size_t)(s2 - s1 - 1) >= sizeof(m))
        return false;
    memcpy(db, key, (size_t)(s1 - key));
    db[s1 - key] = '\0';
    memcpy(m, s1 + 1, (size_t)(s2 - s1 - 1));
    m[s2 - s1 - 1] = '\0';
    errbuf_init(&eb);
    memset(&info, 0, sizeof(info));
    if (duck_inspect_parquet(st->duck, path, &info, &eb) != ERR_OK)
        return false;
    memset(&f, 0, sizeof(f));
    f.path = (char *)key;
    f.min_time_us = info.min_time_us;
    f.max_time_us = info.max_time_us;
    f.rows = info.rows;
    f.bytes = bytes;
    cols = xcalloc(info.ncols ? info.ncols : 1, sizeof(*cols));
    for (i = 0; i < info.ncols; i++) {
        cols[i].name = info.cols[i].name;
        cols[i].type = info.cols[i].type;
        cols[i].is_tag = info.cols[i].is_tag;
    }
    ok = catalog_files_add(st->catalog, db, m, &f, 1, cols, info.ncols, &eb) == ERR_OK;
    if (ok)
        log_warn("adopted a data file the catalog did not list (crash before commit)",
                 "path=%s rows=%lld", path, (long long)info.rows);
    free(cols);
    duck_pq_info_release(&info);
    return ok;
}
static pthread_mutex_t g_walk_lock = PTHREAD_MUTEX_INITIALIZER;

static int walk_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    struct storage *st = g_walk_st;
    size_t rl = strlen(st->root), pl = strlen(path);
    bool listed = false;
    struct errbuf eb;
    (void)ftw;

    if (type == FTW_D && (!strcmp(path, st->cachedir) || !strcmp(path, st->spooldir)))
        return FTW_SKIP_SUBTREE; /* remote-backend copies, not local data */
    if (type != FTW_F)
        return 0;
    if (!strncmp(path, st->tmpdir, strlen(st->tmpdir))) {
        if (unlink(path) == 0)
            g_walk_removed++;
        return 0;
    }
    if (st->remote || pl < 8 || strcmp(path + pl - 8, ".parquet") != 0 || pl <= rl + 1)
        return 0; /* remote: the root holds only temp files (orphans: storage_s3.c) */
    errbuf_init(&eb);
    if (catalog_file_exists(st->catalog, path + rl + 1, &listed, &eb) != ERR_OK)
        return 0;
    if (!listed) {
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        /* never adopt a compaction output: unlisted means its swap did not commit,
         * so the files it merged are still listed and adopting it would double them */
        bool merged = !strncmp(base, STORAGE_COMPACTED_PREFIX, strlen(STORAGE_COMPACTED_PREFIX));
        if (g_walk_adopt && !merged && adopt_file(st, path, path + rl + 1, sb ? sb->st_size : 0)) {
            g_walk_adopted++;
            return 0;
        }
        log_warn("removing data file the catalog does not list (crash before commit)", "path=%s",
                 path);
        if (unlink(path) == 0)
            g_walk_removed++;
    }
    return 0;
}

enum err storage_remove_orphans(struct storage *st, bool adopt, size_t *removed, size_t *adopted,
                                struct errbuf *eb)
{
    int r;

    size_t purged = 0;
    enum err rc = storage_purge_retired(st, &purged, eb);

    if (rc != ERR_OK)
        return rc;
    pthread_mutex_lock(&g_walk_lock);
    g_walk_st = st;
    g_walk_removed = g_walk_adopted = 0;
    g_walk_adopt = adopt;
    r = nftw(st->root, walk_cb, 32, FTW_PHYS | FTW_ACTIONRETVAL);
    *removed = g_walk_removed + purged;
    *adopted = g_walk_adopted;
    pthread_mutex_unlock(&g_walk_lock);
    if (r != 0)
        return errbuf_set(eb, ERR_IO, "walk %s: %s", st->root, strerror(errno));
    return ERR_OK;
}

/* ---------------------------------------------------------------- compaction */

void storage_new_names(struct storage *st, char *tmp, size_t tmp_len, char *base, size_t base_len)
{
    uint64_t seq = atomic_fetch_add(&st->seq, 1);
    long long now = (long long)clock_now_us();

    snprintf(tmp, tmp_len, "%s/%lld-%08x-%llu.parquet.tmp", st->tmpdir, now, st->nonce,
             (unsigned long long)seq);
    snprintf(base, base_len, "%s%lld-%s-%08x-%llu.parquet", STORAGE_COMPACTED_PREFIX, now,
             st->node_id, st->nonce, (unsigned long long)seq);
}

enum err storage_purge_retired(struct storage *st, size_t *purged, struct errbuf *eb)
{
    char **paths = NULL;
    size_t n = 0;
    enum err rc;

    *purged = 0;
    rc = catalog_retired_list(st->catalog, &paths, &n, eb);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        struct errbuf e2;
        errbuf_init(&e2);
        /* a retired file still listed in files was re-registered by a rebuild:
         * keep it (the catalog is the truth), only forget the retirement */
        bool listed = false;
        if (catalog_file_exists(st->catalog, paths[i], &listed, &e2) == ERR_OK && !listed) {
            if (storage_delete(st, paths[i], &e2) != ERR_OK) {
                log_warn("cannot delete a file replaced by compaction", "path=%s error=\"%s\"",
                         paths[i], e2.msg);
                continue;
            }
            (*purged)++;
        }
        rc = catalog_retired_forget(st->catalog, paths[i], eb);
    }
    catalog_strings_free(paths, n);
    return rc;
}
