/* compact.c - merge small Parquet files per hour partition (compact.h). */
#include "maint/compact.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "maint/cron.h"
#include "query/query.h"
#include "storage/storage.h"

#define CANDIDATES_PER_PASS 256
#define TICK_MS 1000

struct retired {
    char *key;
    int64_t at_ns; /* clock_mono_ns() of the swap */
};

struct compactor {
    struct compactor_opts o;
    char *schedule;
    pthread_mutex_t pass_mu;   /* one pass at a time */
    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t cv;
    bool stop;
    pthread_t thread;
    bool has_thread;
    struct retired *retired;   /* inputs waiting for their readers to finish */
    size_t nretired, capretired;
    struct compact_pass last, total;
    int64_t last_end_us;       /* wall clock of the last pass end, 0 = none */
    size_t passes;
    char last_error[256];
    struct metric *m_jobs, *m_failed, *m_in, *m_out, *m_bytes_in, *m_bytes_out, *m_deleted;
};

/* ---- one job ---------------------------------------------------------------------- */

struct pass_ctx {
    struct compactor *c;
    struct catalog_partition *parts;
    size_t nparts;
    _Atomic size_t next;
    pthread_mutex_t mu;        /* guards res */
    struct compact_pass res;
    uint64_t max_lsn;
};

static int cmp_min_time(const void *a, const void *b)
{
    const struct catalog_file *x = a, *y = b;

    if (x->min_time_us != y->min_time_us)
        return x->min_time_us < y->min_time_us ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static void note_retired(struct compactor *c, const struct catalog_file *f, size_t n,
                         int64_t at_ns)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        if (c->nretired == c->capretired) {
            c->capretired = c->capretired ? c->capretired * 2 : 64;
            c->retired = xreallocarray(c->retired, c->capretired, sizeof(*c->retired));
        }
        c->retired[c->nretired].key = xstrdup(f[i].path);
        c->retired[c->nretired].at_ns = at_ns;
        c->nretired++;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Test hook: ARC_TEST_COMPACT_PAUSE="before:MS" or "after:MS" sleeps before or
 * after the catalog swap, so a test can kill -9 the server in that window. */
static void test_pause(const char *where)
{
    const char *v = getenv("ARC_TEST_COMPACT_PAUSE");
    size_t n = strlen(where);

    if (v && !strncmp(v, where, n) && v[n] == ':') {
        long ms = strtol(v + n + 1, NULL, 10);
        log_info("compaction test pause", "where=%s ms=%ld", where, ms);
        if (ms > 0)
            usleep((useconds_t)ms * 1000);
    }
}

static enum err tags_csv(struct compactor *c, const char *db, const char *m, struct buf *out,
                         struct errbuf *eb)
{
    struct catalog_column *cols = NULL;
    size_t ncols = 0;
    bool first = true;
    enum err rc = catalog_columns_list(c->o.catalog, db, m, &cols, &ncols, eb);

    if (rc)
        return rc;
    for (size_t i = 0; i < ncols; i++) {
        if (!cols[i].is_tag)
            continue;
        if (!first)
            buf_append_char(out, ',');
        buf_append_str(out, cols[i].name);
        first = false;
    }
    if (!out->data)
        buf_append_str(out, "");
    catalog_columns_free(cols, ncols);
    return ERR_OK;
}

/* Compact one partition. Adds to r (caller's lock). */
static enum err compact_partition(struct compactor *c, const struct catalog_partition *p,
                                  uint64_t max_lsn, struct compact_pass *r, struct errbuf *eb)
{
    struct catalog_file *files = NULL, merged;
    size_t nfiles = 0, take = 0;
    uint64_t bytes = 0, rows_want = 0, rows_got = 0;
    char **inputs = NULL;
    const char **keys = NULL;
    char tmp[4096], base[512], key[4096], final[4096], dir[4096];
    struct buf tags, sources;
    bool sorted = true, renamed = false;
    struct stat sb;
    enum err rc;

    buf_init(&tags, 0);
    buf_init(&sources, 0);
    memset(&merged, 0, sizeof(merged));
    rc = catalog_partition_files(c->o.catalog, p->database, p->measurement, p->hour_us, max_lsn,
                                 &files, &nfiles, eb);
    if (rc)
        goto out;
    /* smallest first, while the sum stays within the target */
    while (take < nfiles && bytes + (uint64_t)files[take].bytes <= c->o.target_bytes)
        bytes += (uint64_t)files[take++].bytes;
    if (take < 2) {
        rc = ERR_OK; /* nothing small enough to merge */
        goto out;
    }
    qsort(files, take, sizeof(*files), cmp_min_time);
    inputs = xcalloc(take, sizeof(*inputs));
    keys = xcalloc(take, sizeof(*keys));
    merged.min_time_us = files[0].min_time_us;
    merged.max_time_us = files[0].max_time_us;
    merged.wal_lsn_lo = files[0].wal_lsn_lo;
    for (size_t i = 0; i < take; i++) {
        char path[4096];
        const char *slash = strrchr(files[i].path, '/');

        if (storage_local_path(c->o.storage, files[i].path, path, sizeof(path)) != ERR_OK) {
            rc = errbuf_set(eb, ERR_LIMIT, "path too long: %s", files[i].path);
            goto out;
        }
        inputs[i] = xstrdup(path);
        keys[i] = files[i].path;
        rows_want += (uint64_t)files[i].rows;
        if (i && files[i].min_time_us < files[i - 1].max_time_us)
            sorted = false;
        if (files[i].min_time_us < merged.min_time_us)
            merged.min_time_us = files[i].min_time_us;
        if (files[i].max_time_us > merged.max_time_us)
            merged.max_time_us = files[i].max_time_us;
        if (files[i].wal_lsn_lo < merged.wal_lsn_lo)
            merged.wal_lsn_lo = files[i].wal_lsn_lo;
        if (files[i].wal_lsn_hi > merged.wal_lsn_hi)
            merged.wal_lsn_hi = files[i].wal_lsn_hi;
        if (i)
            buf_append_char(&sources, ',');
        buf_append_str(&sources, slash ? slash + 1 : files[i].path);
    }
    if ((rc = tags_csv(c, p->database, p->measurement, &tags, eb)) != ERR_OK)
        goto out;

    storage_new_names(c->o.storage, tmp, sizeof(tmp), base, sizeof(base));
    snprintf(dir, sizeof(dir), "%s", files[0].path);
    *strrchr(dir, '/') = '\0';
    if ((size_t)snprintf(key, sizeof(key), "%s/%s", dir, base) >= sizeof(key) ||
        storage_local_path(c->o.storage, key, final, sizeof(final)) != ERR_OK) {
        rc = errbuf_set(eb, ERR_LIMIT, "path too long: %s", key);
        goto out;
    }
    rc = duck_merge_parquet(c->o.duck, (const char *const *)inputs, take, sorted,
                            p->measurement, tags.data, sources.data, tmp, &c->o.pq, &rows_got,
                            eb);
    if (rc)
        goto out;
    if (rows_got != rows_want) {
        rc = errbuf_set(eb, ERR_INTERNAL,
                        "merged %" PRIu64 " rows, the catalog lists %" PRIu64 " for %zu files",
                        rows_got, rows_want, take);
        goto out;
    }
    if ((rc = fileio_fsync_path(tmp, false, eb)) != ERR_OK)
        goto out;
    if (stat(tmp, &sb) != 0) {
        rc = errbuf_set(eb, ERR_IO, "stat %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, final) != 0) {
        rc = errbuf_set(eb, ERR_IO, "rename %s -> %s: %s", tmp, final, strerror(errno));
        goto out;
    }
    renamed = true;
    snprintf(dir, sizeof(dir), "%s", final);
    *strrchr(dir, '/') = '\0';
    if ((rc = fileio_fsync_path(dir, true, eb)) != ERR_OK)
        goto out;

    test_pause("before");
    merged.path = key;
    merged.rows = (int64_t)rows_got;
    merged.bytes = sb.st_size;
    rc = catalog_files_replace(c->o.catalog, p->database, p->measurement, keys, take, &merged,
                               eb);
    if (rc)
        goto out;
    renamed = false; /* listed now: it stays */
    note_retired(c, files, take, clock_mono_ns());
    test_pause("after");
    log_info("compacted", "database=%s measurement=%s files=%zu rows=%" PRIu64
             " bytes_in=%" PRIu64 " bytes_out=%lld key=%s",
             p->database, p->measurement, take, rows_got, bytes, (long long)sb.st_size, key);
    r->files_in += take;
    r->files_out++;
    r->rows += rows_got;
    r->bytes_in += bytes;
    r->bytes_out += (uint64_t)sb.st_size;
out:
    if (rc != ERR_OK) {
        unlink(tmp);
        if (renamed)
            unlink(final);
    }
    for (size_t i = 0; inputs && i < take; i++)
        free(inputs[i]);
    free(inputs);
    free(keys);
    catalog_files_free(files, nfiles);
    buf_release(&tags);
    buf_release(&sources);
    return rc;
}

static void *pass_worker(void *arg)
{
    struct pass_ctx *pc = arg;
    struct compactor *c = pc->c;

    for (;;) {
        size_t i = atomic_fetch_add(&pc->next, 1);
        struct compact_pass r;
        struct errbuf eb;
        enum err rc;

        if (i >= pc->nparts)
            break;
        memset(&r, 0, sizeof(r));
        errbuf_init(&eb);
        rc = compact_partition(c, &pc->parts[i], pc->max_lsn, &r, &eb);
        pthread_mutex_lock(&pc->mu);
        pc->res.files_in += r.files_in;
        pc->res.files_out += r.files_out;
        pc->res.rows += r.rows;
        pc->res.bytes_in += r.bytes_in;
        pc->res.bytes_out += r.bytes_out;
        if (rc != ERR_OK) {
            pc->res.jobs_failed++;
            log_warn("compaction job failed (the inputs stay as they are)",
                     "database=%s measurement=%s hour_us=%lld error=\"%s\"",
                     pc->parts[i].database, pc->parts[i].measurement,
                     (long long)pc->parts[i].hour_us, eb.msg);
            pthread_mutex_lock(&c->mu);
            {
                size_t len = strnlen(eb.msg, sizeof(c->last_error) - 1);
                memcpy(c->last_error, eb.msg, len);
                c->last_error[len] = '\0';
            }
            pthread_mutex_unlock(&c->mu);
        } else if (r.files_out) {
            pc->res.jobs_ok++;
        }
        pthread_mutex_unlock(&pc->mu);
    }
    return NULL;
}

static uint64_t checkpointed_lsn(struct compactor *c)
{
    struct errbuf eb;
    char *v = NULL;
    uint64_t lsn = 0;

    if (!c->o.wal_enabled)
        return UINT64_MAX;
    errbuf_init(&eb);
    if (catalog_meta_get(c->o.catalog, "wal_checkpoint_lsn", &v, &eb) == ERR_OK && v)
        lsn = strtoull(v, NULL, 10);
    free(v);
    return lsn;
}

static enum err candidates(struct compactor *c, uint64_t max_lsn, struct catalog_partition **out,
                           size_t *n, struct errbuf *eb)
{
    int64_t now = clock_now_us();

    return catalog_compaction_candidates(c->o.catalog, c->o.min_files, now - c->o.min_age_us,
                                         max_lsn, CANDIDATES_PER_PASS, out, n, eb);
}

enum err compactor_run(struct compactor *c, struct compact_pass *out, struct errbuf *eb)
{
    struct pass_ctx pc;
    pthread_t th[64];
    unsigned nth;
    int64_t t0 = clock_mono_ns();
    enum err rc;

    memset(&pc, 0, sizeof(pc));
    pc.c = c;
    pthread_mutex_init(&pc.mu, NULL);
    pthread_mutex_lock(&c->pass_mu);
    pc.max_lsn = checkpointed_lsn(c);
    rc = candidates(c, pc.max_lsn, &pc.parts, &pc.nparts, eb);
    if (rc == ERR_OK) {
        nth = c->o.jobs ? c->o.jobs : 1;
        if (nth > 64)
            nth = 64;
        if (nth > pc.nparts)
            nth = (unsigned)pc.nparts;
        for (unsigned i = 0; i < nth; i++)
            if (pthread_create(&th[i], NULL, pass_worker, &pc) != 0)
                nth = i;
        if (nth == 0)
            pass_worker(&pc);
        for (unsigned i = 0; i < nth; i++)
            pthread_join(th[i], NULL);
        pc.res.partitions = pc.nparts;
        pc.res.seconds = (double)(clock_mono_ns() - t0) / 1e9;
        pthread_mutex_lock(&c->mu);
        c->last = pc.res;
        c->total.partitions += pc.res.partitions;
        c->total.jobs_ok += pc.res.jobs_ok;
        c->total.jobs_failed += pc.res.jobs_failed;
        c->total.files_in += pc.res.files_in;
        c->total.files_out += pc.res.files_out;
        c->total.rows += pc.res.rows;
        c->total.bytes_in += pc.res.bytes_in;
        c->total.bytes_out += pc.res.bytes_out;
        c->total.seconds += pc.res.seconds;
        c->passes++;
        c->last_end_us = clock_now_us();
        pthread_mutex_unlock(&c->mu);
        if (c->m_jobs) {
            metric_add(c->m_jobs, pc.res.jobs_ok);
            metric_add(c->m_failed, pc.res.jobs_failed);
            metric_add(c->m_in, pc.res.files_in);
            metric_add(c->m_out, pc.res.files_out);
            metric_add(c->m_bytes_in, pc.res.bytes_in);
            metric_add(c->m_bytes_out, pc.res.bytes_out);
        }
        if (out)
            *out = pc.res;
    }
    pthread_mutex_unlock(&c->pass_mu);
    catalog_partitions_free(pc.parts, pc.nparts);
    pthread_mutex_destroy(&pc.mu);
    compactor_sweep(c);
    return rc;
}

void compactor_sweep(struct compactor *c)
{
    int64_t oldest = c->o.query ? query_engine_oldest_start_ns(c->o.query) : INT64_MAX;
    struct retired *due = NULL;
    size_t ndue = 0, keep = 0;

    pthread_mutex_lock(&c->mu);
    if (c->nretired)
        due = xcalloc(c->nretired, sizeof(*due));
    for (size_t i = 0; i < c->nretired; i++) {
        /* every query that could have listed it (started before the swap) ended */
        if (c->retired[i].at_ns < oldest)
            due[ndue++] = c->retired[i];
        else
            c->retired[keep++] = c->retired[i];
    }
    c->nretired = keep;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < ndue; i++) {
        struct errbuf eb;
        errbuf_init(&eb);
        if (storage_delete(c->o.storage, due[i].key, &eb) != ERR_OK ||
            catalog_retired_forget(c->o.catalog, due[i].key, &eb) != ERR_OK)
            log_warn("cannot delete a compacted input (retried at start-up)",
                     "key=%s error=\"%s\"", due[i].key, eb.msg);
        else if (c->m_deleted)
            metric_add(c->m_deleted, 1);
        free(due[i].key);
    }
    free(due);
}

/* ---- scheduler ------------------------------------------------------------------- */

static void *sched_main(void *arg)
{
    struct compactor *c = arg;
    int64_t last_minute = -1;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct timespec ts;
        time_t now;
        struct tm tm;
        int64_t minute;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->mu);
        now = time(NULL);
        gmtime_r(&now, &tm);
        minute = (int64_t)now / 60;
        if (c->o.enabled && minute != last_minute && cron_matches(c->schedule, &tm)) {
            struct errbuf eb;
            struct compact_pass r;
            last_minute = minute;
            errbuf_init(&eb);
            if (compactor_run(c, &r, &eb) != ERR_OK)
                log_warn("compaction pass failed", "error=\"%s\"", eb.msg);
            else if (r.files_in)
                log_info("compaction pass", "partitions=%zu jobs=%zu failed=%zu files_in=%zu "
                         "files_out=%zu seconds=%.3f", r.partitions, r.jobs_ok, r.jobs_failed,
                         r.files_in, r.files_out, r.seconds);
        } else {
            compactor_sweep(c);
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

enum err compactor_new(const struct compactor_opts *o, struct compactor **out, struct errbuf *eb)
{
    struct compactor *c;

    if (!o->catalog || !o->duck || !o->storage)
        return errbuf_set(eb, ERR_INVAL, "compactor: catalog, duck and storage are required");
    c = xcalloc(1, sizeof(*c));
    c->o = *o;
    c->schedule = xstrdup(o->schedule && o->schedule[0] ? o->schedule : "5 * * * *");
    c->o.schedule = c->schedule;
    if (c->o.min_files < 2)
        c->o.min_files = 2;
    if (!c->o.target_bytes)
        c->o.target_bytes = (uint64_t)512 << 20;
    pthread_mutex_init(&c->pass_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (o->metrics) {
        c->m_jobs = metrics_counter(o->metrics, "arc_compaction_jobs_total",
                                    "Hour partitions compacted", NULL);
        c->m_failed = metrics_counter(o->metrics, "arc_compaction_jobs_failed_total",
                                      "Compaction jobs that failed (inputs untouched)", NULL);
        c->m_in = metrics_counter(o->metrics, "arc_compaction_files_in_total",
                                  "Parquet files merged away by compaction", NULL);
        c->m_out = metrics_counter(o->metrics, "arc_compaction_files_out_total",
                                   "Parquet files written by compaction", NULL);
        c->m_bytes_in = metrics_counter(o->metrics, "arc_compaction_bytes_in_total",
                                        "Bytes of the files compaction merged", NULL);
        c->m_bytes_out = metrics_counter(o->metrics, "arc_compaction_bytes_out_total",
                                         "Bytes of the files compaction wrote", NULL);
        c->m_deleted = metrics_counter(o->metrics, "arc_compaction_inputs_deleted_total",
                                       "Merged inputs deleted once no query read them", NULL);
    }
    /* the thread also deletes retired inputs when passes come from the trigger only */
    {
        if (pthread_create(&c->thread, NULL, sched_main, c) != 0) {
            compactor_free(c);
            return errbuf_set(eb, ERR_INTERNAL, "compactor: cannot start its thread");
        }
        c->has_thread = true;
    }
    *out = c;
    return ERR_OK;
}

void compactor_free(struct compactor *c)
{
    if (!c)
        return;
    if (c->has_thread) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    /* files still retired are deleted at the next start-up (retired_files) */
    for (size_t i = 0; i < c->nretired; i++)
        free(c->retired[i].key);
    free(c->retired);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->pass_mu);
    free(c->schedule);
    free(c);
}

/* ---- endpoints -------------------------------------------------------------------- */

static void pass_json(struct buf *b, const struct compact_pass *p)
{
    buf_printf(b,
               "{\"partitions\":%zu,\"jobs\":%zu,\"jobs_failed\":%zu,\"files_in\":%zu,"
               "\"files_out\":%zu,\"rows\":%" PRIu64 ",\"bytes_in\":%" PRIu64
               ",\"bytes_out\":%" PRIu64 ",\"seconds\":%.3f}",
               p->partitions, p->jobs_ok, p->jobs_failed, p->files_in, p->files_out, p->rows,
               p->bytes_in, p->bytes_out, p->seconds);
}

void compactor_status_json(struct compactor *c, struct buf *b)
{
    pthread_mutex_lock(&c->mu);
    buf_printf(b, "\"enabled\":%s,\"schedule\":", c->o.enabled ? "true" : "false");
    buf_append_json_str(b, c->schedule, strlen(c->schedule));
    buf_printf(b,
               ",\"min_age_hours\":%.3f,\"min_files\":%u,\"target_file_size_mb\":%" PRIu64
               ",\"max_concurrent_jobs\":%u,\"passes\":%zu,\"pending_deletions\":%zu,"
               "\"last_pass_end\":%lld,\"last\":",
               (double)c->o.min_age_us / 3.6e9, c->o.min_files, c->o.target_bytes >> 20,
               c->o.jobs, c->passes, c->nretired, (long long)c->last_end_us);
    pass_json(b, &c->last);
    buf_append_str(b, ",\"total\":");
    pass_json(b, &c->total);
    buf_append_str(b, ",\"last_error\":");
    buf_append_json_str(b, c->last_error, strlen(c->last_error));
    pthread_mutex_unlock(&c->mu);
}

enum err compactor_candidates_json(struct compactor *c, struct buf *b, struct errbuf *eb)
{
    struct catalog_partition *parts = NULL;
    size_t n = 0;
    enum err rc = candidates(c, checkpointed_lsn(c), &parts, &n, eb);

    if (rc)
        return rc;
    buf_append_str(b, "\"candidates\":[");
    for (size_t i = 0; i < n; i++) {
        time_t secs = (time_t)(parts[i].hour_us / 1000000);
        struct tm tm;
        char hour[32];

        gmtime_r(&secs, &tm);
        strftime(hour, sizeof(hour), "%Y-%m-%dT%H:00:00Z", &tm);
        buf_append_str(b, i ? ",{\"database\":" : "{\"database\":");
        buf_append_json_str(b, parts[i].database, strlen(parts[i].database));
        buf_append_str(b, ",\"measurement\":");
        buf_append_json_str(b, parts[i].measurement, strlen(parts[i].measurement));
        buf_printf(b, ",\"hour\":\"%s\",\"files\":%zu}", hour, parts[i].files);
    }
    buf_append_char(b, ']');
    catalog_partitions_free(parts, n);
    return ERR_OK;
}
