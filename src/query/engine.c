/* engine.c - run one user statement: resolve measurements, snapshot files and
 * buffered rows, create the per-query views, execute with limits.
 *
 * query_start() does, in order:
 *  1. admission: the SQL length cap and the concurrent-query cap (a counter; no
 *     queueing: past the cap the caller answers 429 at once);
 *  2. SHOW DATABASES / SHOW TABLES / SHOW MEASUREMENTS [FROM db]: answered from the
 *     catalog, as a VALUES query so every output format works the same way;
 *  3. the statement's plan (plan.c, cached by its text): json_serialize_sql, then
 *     rewrite.c (sandbox checks, references renamed to __arc_q_<n>, time bounds
 *     extracted), json_deserialize_sql of the rewritten tree; constant bounds are
 *     evaluated there once;
 *  4. per reference: the database permission, the time bounds (volatile ones such
 *     as now() - INTERVAL evaluated now in DuckDB; a bound that fails to evaluate is
 *     dropped, which only costs pruning), then bufmgr_snapshot() with a callback that
 *     lists the catalog's files overlapping the bounds, so each row is seen exactly
 *     once (in a listed file or in the snapshot, never both);
 *  5. the reference's relation: a typed empty SELECT of the catalog's columns (fixes
 *     the column set and order even when no file survives pruning), UNION ALL BY NAME
 *     read_parquet([files], union_by_name=true), UNION ALL BY NAME
 *     arc_batch_scan(<id>) per buffered batch;
 *  6. those relations become NOT MATERIALIZED CTEs in front of the rewritten
 *     statement (inlined by DuckDB like views, without a CREATE VIEW that binds every
 *     file a second time), executed streaming on a fresh connection.
 * Read-your-writes therefore scans the live buffers (copied by the snapshot) rather
 * than flushing: a dashboard polling every second creates no small files.
 *
 * Timeouts: a watchdog thread checks the running queries every 50 ms and cancels
 * (duckdb_interrupt through duck_query_cancel) the ones past their deadline. */
#include "query/query.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "duck/duck.h"
#include "query/engine_int.h"
#include "query/plan.h"
#include "storage/hot.h"
#include "storage/storage.h"

#define QE_VIEW_SQL_MAX ((size_t)256 << 20) /* server-made view text (file lists) */
#define QE_WATCH_MS 50
#define QE_PLAN_CACHE_ENTRIES 512

struct query_engine {
    struct query_engine_opts o;
    _Atomic unsigned running;
    pthread_mutex_t mu;        /* guards the active list and stop */
    pthread_cond_t cv;
    struct query *active;      /* queries with a deadline (doubly linked) */
    bool stop;
    pthread_t watchdog;
    bool has_watchdog;
    struct metric *m_files, *m_queries, *m_errors, *m_timeouts, *m_rejected;
    struct plan_cache *plans;  /* parsed + rewritten statements by text (plan.h) */
};


struct query {
    struct query_engine *qe;
    struct duck_result *res;
    struct duck_cancel *cancel;
    struct snap *snaps;        /* one per reference */
    size_t nsnaps;
    struct query_profile prof;
    int64_t started_ns, deadline_ns;
    struct query_cache_dep *deps; /* measurements read, generation before the snapshot
                                     (strings owned) */
    size_t ndeps;
    uint64_t input_values;     /* rows x columns the references read (files + buffers) */
    bool cacheable;            /* a plain SELECT without volatile functions */
    bool timed_out;            /* set by the watchdog (under qe->mu) */
    bool listed;               /* on the active list */
    struct query *prev, *next;
};

/* ---- engine ------------------------------------------------------------------------ */

static void *watchdog_main(void *arg)
{
    struct query_engine *qe = arg;
    struct timespec ts;

    pthread_mutex_lock(&qe->mu);
    while (!qe->stop) {
        int64_t now;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += QE_WATCH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&qe->cv, &qe->mu, &ts);
        now = clock_mono_ns();
        for (struct query *q = qe->active; q; q = q->next) {
            if (!q->timed_out && q->deadline_ns && now >= q->deadline_ns) {
                q->timed_out = true;
                duck_query_cancel(q->cancel);
            }
        }
    }
    pthread_mutex_unlock(&qe->mu);
    return NULL;
}

enum err query_engine_new(const struct query_engine_opts *o, struct query_engine **out,
                          struct errbuf *eb)
{
    struct query_engine *qe;

    if (!o || !o->duck || !o->catalog || !o->storage)
        return errbuf_set(eb, ERR_INVAL, "query engine: duck, catalog and storage are required");
    qe = xcalloc(1, sizeof(*qe));
    qe->o = *o;
    if (!qe->o.max_sql_bytes || qe->o.max_sql_bytes > ARC_MAX_SQL_BYTES)
        qe->o.max_sql_bytes = ARC_MAX_SQL_BYTES;
    pthread_mutex_init(&qe->mu, NULL);
    pthread_cond_init(&qe->cv, NULL);
    if (o->metrics) {
        qe->m_files = metrics_counter(o->metrics, "arc_query_files_opened_total",
                                      "Parquet files opened by queries (after time pruning)",
                                      NULL);
        qe->m_queries = metrics_counter(o->metrics, "arc_queries_total", "Queries started", NULL);
        qe->m_errors = metrics_counter(o->metrics, "arc_query_errors_total",
                                       "Queries refused or failed before running", NULL);
        qe->m_timeouts = metrics_counter(o->metrics, "arc_query_timeouts_total",
                                         "Queries cancelled by the timeout", NULL);
        qe->m_rejected = metrics_counter(o->metrics, "arc_query_rejected_total",
                                         "Queries refused by the concurrency cap", NULL);
    }
    qe->plans = plan_cache_new(QE_PLAN_CACHE_ENTRIES, o->metrics);
    if (qe->o.timeout_ms > 0) {
        if (pthread_create(&qe->watchdog, NULL, watchdog_main, qe) != 0) {
            pthread_cond_destroy(&qe->cv);
            pthread_mutex_destroy(&qe->mu);
            plan_cache_free(qe->plans);
            free(qe);
            return errbuf_set(eb, ERR_INTERNAL, "query engine: cannot start the watchdog");
        }
        qe->has_watchdog = true;
    }
    *out = qe;
    return ERR_OK;
}

void query_engine_free(struct query_engine *qe)
{
    if (!qe)
        return;
    if (qe->has_watchdog) {
        pthread_mutex_lock(&qe->mu);
        qe->stop = true;
        pthread_cond_signal(&qe->cv);
        pthread_mutex_unlock(&qe->mu);
        pthread_join(qe->watchdog, NULL);
    }
    pthread_cond_destroy(&qe->cv);
    pthread_mutex_destroy(&qe->mu);
    plan_cache_free(qe->plans);
    free(qe);
}

int64_t query_engine_oldest_start_ns(struct query_engine *qe)
{
    int64_t oldest = INT64_MAX;

    pthread_mutex_lock(&qe->mu);
    for (struct query *q = qe->active; q; q = q->next)
        if (q->started_ns < oldest)
            oldest = q->started_ns;
    pthread_mutex_unlock(&qe->mu);
    return oldest;
}

static void count(struct metric *m, uint64_t v)
{
    if (m)
        metric_add(m, v);
}

int query_http_status(enum err code)
{
    switch (code) {
    case ERR_PARSE:
    case ERR_INVAL:
    case ERR_CONFLICT:
    case ERR_NOTFOUND: return 400;
    case ERR_PERM: return 403;
    case ERR_AUTH: return 401;
    case ERR_LIMIT: return 413;
    case ERR_TOOMANY: return 429;
    case ERR_BUSY: return 503;
    case ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

/* ---- the query object -------------------------------------------------------------- */

static struct query *query_alloc(struct query_engine *qe)
{
    struct query *q = xcalloc(1, sizeof(*q));

    q->qe = qe;
    q->cancel = duck_cancel_new();
    q->started_ns = clock_mono_ns();
    if (qe->o.timeout_ms > 0)
        q->deadline_ns = q->started_ns + qe->o.timeout_ms * 1000000LL;
    pthread_mutex_lock(&qe->mu);
    q->next = qe->active;
    if (qe->active)
        qe->active->prev = q;
    qe->active = q;
    q->listed = true;
    pthread_mutex_unlock(&qe->mu);
    return q;
}

void query_finish(struct query *q)
{
    struct query_engine *qe;

    if (!q)
        return;
    qe = q->qe;
    duck_result_free(q->res); /* first: nothing reads the snapshots after this */
    for (size_t i = 0; i < q->nsnaps; i++) {
        struct snap *s = &q->snaps[i];
        for (size_t k = 0; k < s->nbatches; k++)
            if (s->scan_ids && s->scan_ids[k])
                duck_scan_remove(qe->o.duck, s->scan_ids[k]);
        free(s->scan_ids);
        bufmgr_snapshot_free(s->batches, s->nbatches);
        qe_release_hot(qe->o.duck, qe->o.hot, s);
        catalog_columns_free(s->cols, s->ncols);
        catalog_files_free(s->files, s->nfiles);
    }
    free(q->snaps);
    for (size_t i = 0; i < q->ndeps; i++) {
        free((char *)q->deps[i].database);
        free((char *)q->deps[i].measurement);
    }
    free(q->deps);
    pthread_mutex_lock(&qe->mu);
    if (q->listed) {
        if (q->prev)
            q->prev->next = q->next;
        else
            qe->active = q->next;
        if (q->next)
            q->next->prev = q->prev;
    }
    if (q->timed_out)
        count(qe->m_timeouts, 1);
    pthread_mutex_unlock(&qe->mu);
    duck_cancel_free(q->cancel);
    atomic_fetch_sub(&qe->running, 1);
    free(q);
}

struct duck_result *query_result(struct query *q)
{
    return q->res;
}

const struct query_profile *query_get_profile(const struct query *q)
{
    return &q->prof;
}

int64_t query_started_ns(const struct query *q)
{
    return q->started_ns;
}

bool query_is_cacheable(const struct query *q)
{
    return q->cacheable;
}

size_t query_deps(const struct query *q, const struct query_cache_dep **out)
{
    *out = q->deps;
    return q->ndeps;
}

void query_cancel(struct query *q)
{
    duck_query_cancel(q->cancel);
}

static bool query_timed_out(struct query *q)
{
    bool v;

    pthread_mutex_lock(&q->qe->mu);
    v = q->timed_out;
    pthread_mutex_unlock(&q->qe->mu);
    return v;
}

/* A DuckDB failure of the user's statement: 400 with DuckDB's message, or the
 * timeout. */
static enum err user_error(struct query *q, enum err rc, struct errbuf *eb)
{
    if (rc == ERR_TIMEOUT || query_timed_out(q)) {
        if (query_timed_out(q))
            return errbuf_set(eb, ERR_TIMEOUT, "query timed out after %.3g s",
                              (double)q->qe->o.timeout_ms / 1000.0);
        return errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
    }
    if (rc == ERR_DB) {
        /* DuckDB's "LINE n: ..." context quotes the composed statement (views with
         * file paths and scan ids), not the user's text: cut it */
        char *line = strstr(eb->msg, "\nLINE ");
        if (line) {
            while (line > eb->msg && (line[-1] == '\n' || line[-1] == ' '))
                line--;
            *line = '\0';
        }
        eb->code = rc = ERR_INVAL;
    }
    return rc;
}

enum err query_next_chunk(struct query *q, struct duck_chunk **out, struct errbuf *eb)
{
    enum err rc = duck_result_next_chunk(q->res, out, eb);

    if (rc)
        return user_error(q, rc, eb);
    return ERR_OK;
}

enum err query_write_parquet(struct query *q, const char *path, uint64_t *rows,
                             struct errbuf *eb)
{
    enum err rc = duck_result_write_parquet(q->qe->o.duck, q->res, path, rows, eb);

    if (rc)
        return user_error(q, rc, eb);
    return ERR_OK;
}

/* ---- SHOW ... ------------------------------------------------------------------------- */

enum show_kind { SHOW_NONE, SHOW_DATABASES, SHOW_TABLES };

/* Recognise SHOW DATABASES | SHOW TABLES | SHOW MEASUREMENTS [FROM db] (any case,
 * any whitespace, optional trailing ';'). db (may be quoted "...") goes to dbout. */
static enum show_kind parse_show(const char *sql, char *dbout, size_t dbout_len)
{
    char w[4][160];
    size_t nw = 0;
    const char *p = sql;

    while (*p) {
        size_t n = 0;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
            p++;
        if (!*p)
            break;
        if (nw == 4)
            return SHOW_NONE;
        if (*p == '"') {
            p++;
            while (*p && *p != '"' && n + 1 < sizeof(w[0]))
                w[nw][n++] = *p++;
            if (*p != '"')
                return SHOW_NONE;
            p++;
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';' &&
                   n + 1 < sizeof(w[0]))
                w[nw][n++] = *p++;
        }
        w[nw++][n] = '\0';
    }
    if (nw < 2 || strcasecmp(w[0], "SHOW") != 0)
        return SHOW_NONE;
    if (nw == 2 && !strcasecmp(w[1], "DATABASES"))
        return SHOW_DATABASES;
    if (strcasecmp(w[1], "TABLES") != 0 && strcasecmp(w[1], "MEASUREMENTS") != 0)
        return SHOW_NONE;
    if (nw == 2) {
        dbout[0] = '\0';
        return SHOW_TABLES;
    }
    if (nw == 4 && !strcasecmp(w[2], "FROM")) {
        snprintf(dbout, dbout_len, "%s", w[3]);
        return SHOW_TABLES;
    }
    return SHOW_NONE;
}

struct buffered_list {
    char **db, **m; /* owned */
    size_t n;
};

static void buffered_cb(void *ctx, const char *db, const char *m, size_t rows)
{
    struct buffered_list *bl = ctx;

    (void)rows;
    if (bl->n >= 100000) /* SHOW output bound; the catalog has the rest */
        return;
    bl->db = xreallocarray(bl->db, bl->n + 1, sizeof(*bl->db));
    bl->m = xreallocarray(bl->m, bl->n + 1, sizeof(*bl->m));
    bl->db[bl->n] = xstrdup(db);
    bl->m[bl->n] = xstrdup(m);
    bl->n++;
}

static void buffered_list_release(struct buffered_list *bl)
{
    for (size_t i = 0; i < bl->n; i++) {
        free(bl->db[i]);
        free(bl->m[i]);
    }
    free(bl->db);
    free(bl->m);
}

static enum err show_sql(struct query_engine *qe, const struct query_req *r, enum show_kind k,
                         const char *db, struct buf *sql, struct errbuf *eb)
{
    enum err rc;
    size_t rows = 0;

    if (k == SHOW_DATABASES) {
        char **names = NULL;
        size_t n = 0;
        if ((rc = catalog_databases_list(qe->o.catalog, &names, &n, eb)) != ERR_OK)
            return rc;
        buf_append_str(sql, "SELECT * FROM (VALUES ");
        for (size_t i = 0; i < n; i++) {
            if (r->can_db && !r->can_db(r->can_db_ctx, names[i]))
                continue;
            buf_append_str(sql, rows++ ? ", (" : "(");
            duck_sql_str_append(sql, names[i]);
            buf_append_char(sql, ')');
        }
        catalog_strings_free(names, n);
        if (!rows) {
            buf_reset(sql);
            buf_append_str(sql, "SELECT CAST(NULL AS VARCHAR) AS \"database\" WHERE false");
        } else {
            buf_append_str(sql, ") t(\"database\") ORDER BY 1");
        }
        return ERR_OK;
    } else {
        struct catalog_measurement *ms = NULL;
        size_t n = 0;
        const char *root = storage_root(qe->o.storage);
        if (db[0] && r->can_db && !r->can_db(r->can_db_ctx, db))
            return errbuf_set(eb, ERR_PERM, "Permission denied: token may not access database '%s'",
                              db);
        if ((rc = catalog_measurements_list(qe->o.catalog, db[0] ? db : r->database, &ms, &n,
                                            eb)) != ERR_OK)
            return rc;
        buf_append_str(sql, "SELECT * FROM (VALUES ");
        for (size_t i = 0; i < n; i++) {
            char path[4096];
            if (r->can_db && !r->can_db(r->can_db_ctx, ms[i].database))
                continue;
            snprintf(path, sizeof(path), "%s/%s/%s/", root ? root : "", ms[i].database,
                     ms[i].measurement);
            buf_append_str(sql, rows++ ? ", (" : "(");
            duck_sql_str_append(sql, ms[i].database);
            buf_append_str(sql, ", ");
            duck_sql_str_append(sql, ms[i].measurement);
            buf_append_str(sql, ", ");
            duck_sql_str_append(sql, path);
            buf_printf(sql, ", %" PRId64 ", CAST(%.6f AS DOUBLE))", ms[i].files,
                       (double)ms[i].bytes / (1024.0 * 1024.0));
        }
        /* measurements that exist only in the buffers (never flushed) */
        if (qe->o.buffers) {
            struct buffered_list bl = {0};
            bufmgr_list_buffered(qe->o.buffers, db[0] ? db : r->database, buffered_cb, &bl);
            for (size_t i = 0; i < bl.n; i++) {
                char path[4096];
                bool listed = false;
                for (size_t j = 0; j < n && !listed; j++)
                    listed = !strcmp(ms[j].database, bl.db[i]) &&
                             !strcmp(ms[j].measurement, bl.m[i]);
                if (listed || (r->can_db && !r->can_db(r->can_db_ctx, bl.db[i])))
                    continue;
                snprintf(path, sizeof(path), "%s/%s/%s/", root ? root : "", bl.db[i], bl.m[i]);
                buf_append_str(sql, rows++ ? ", (" : "(");
                duck_sql_str_append(sql, bl.db[i]);
                buf_append_str(sql, ", ");
                duck_sql_str_append(sql, bl.m[i]);
                buf_append_str(sql, ", ");
                duck_sql_str_append(sql, path);
                buf_append_str(sql, ", 0, CAST(0 AS DOUBLE))");
            }
            buffered_list_release(&bl);
        }
        catalog_measurements_free(ms, n);
        if (!rows) {
            buf_reset(sql);
            buf_append_str(sql, "SELECT CAST(NULL AS VARCHAR) AS \"database\", CAST(NULL AS VARCHAR) "
                                "AS table_name, CAST(NULL AS VARCHAR) AS storage_path, CAST(NULL "
                                "AS BIGINT) AS file_count, CAST(NULL AS DOUBLE) AS total_size_mb "
                                "WHERE false");
        } else {
            buf_append_str(sql, ") t(\"database\", table_name, storage_path, file_count, "
                                "total_size_mb) ORDER BY 1, 2");
        }
        return ERR_OK;
    }
}

/* ---- references -> views ----------------------------------------------------------------- */

struct list_ctx {
    struct query_engine *qe;
    const char *db, *m;
    int64_t min_us, max_us;
    struct catalog_file *files;
    size_t nfiles;
};

static enum err list_files_cb(void *ctx, struct errbuf *eb)
{
    struct list_ctx *lc = ctx;

    catalog_files_free(lc->files, lc->nfiles);
    lc->files = NULL;
    lc->nfiles = 0;
    return catalog_files_list(lc->qe->o.catalog, lc->db, lc->m, lc->min_us, lc->max_us,
                              &lc->files, &lc->nfiles, eb);
}

/* Evaluate the reference's time bounds; unknown sides stay INT64_MIN / INT64_MAX. */
static void eval_bounds(struct query_engine *qe, const struct plan_ref *ref, int64_t *min_us,
                        int64_t *max_us, bool *bounded)
{
    *min_us = INT64_MIN;
    *max_us = INT64_MAX;
    *bounded = false;
    for (size_t i = 0; i < ref->nbounds; i++) {
        int64_t v;

        if (!query_plan_bound_value(qe->o.duck, &ref->bounds[i], &v))
            continue;
        if (ref->bounds[i].op != QUERY_BOUND_MAX && v > *min_us)
            *min_us = v;
        if (ref->bounds[i].op != QUERY_BOUND_MIN && v < *max_us)
            *max_us = v;
        *bounded = true;
    }
}

/* Record that q reads (db, m) with its current generation. Read *before* the
 * snapshot: a change racing with the snapshot then leaves the entry looking stale
 * (a needless miss later), never a stale answer looking fresh. */
static void add_dep(struct query *q, const char *db, const char *m)
{
    uint64_t gen = q->qe->o.buffers ? bufmgr_generation(q->qe->o.buffers, db, m) : 0;

    for (size_t i = 0; i < q->ndeps; i++) {
        if (!strcmp(q->deps[i].database, db) && !strcmp(q->deps[i].measurement, m)) {
            if (gen != q->deps[i].gen)
                q->cacheable = false; /* it changed between two references */
            return;
        }
    }
    q->deps = xreallocarray(q->deps, q->ndeps + 1, sizeof(*q->deps));
    q->deps[q->ndeps].database = xstrdup(db);
    q->deps[q->ndeps].measurement = xstrdup(m);
    q->deps[q->ndeps].gen = gen;
    q->ndeps++;
}

/* "Latest row per key" (plan.h): wrap the relation so it keeps, per key group, only
 * the rows at the group's max time: the DISTINCT ON above then sorts a handful of
 * rows instead of all of them. NULL keys form a group too (IS NOT DISTINCT FROM). */
static void wrap_latest(const struct query_plan *plan, const struct catalog_column *cols,
                        size_t ncols, struct buf *view)
{
    struct buf w;

    for (size_t i = 0; i < plan->nlatest_keys; i++)
        if (!qe_column_named(cols, ncols, plan->latest_keys[i]))
            return; /* not a column: DuckDB reports it as usual */
    buf_init(&w, 0);
    buf_append_str(&w, "WITH __arc_b AS NOT MATERIALIZED (");
    buf_append(&w, view->data, view->len);
    buf_append_str(&w, ") SELECT __arc_b.* FROM __arc_b SEMI JOIN (SELECT ");
    for (size_t i = 0; i < plan->nlatest_keys; i++) {
        duck_sql_ident_append(&w, qe_column_named(cols, ncols, plan->latest_keys[i]));
        buf_append_str(&w, ", ");
    }
    buf_append_str(&w, "max(\"time\") AS __arc_t FROM __arc_b GROUP BY ALL) AS __arc_l ON ");
    for (size_t i = 0; i < plan->nlatest_keys; i++) {
        const char *k = qe_column_named(cols, ncols, plan->latest_keys[i]);
        buf_append_str(&w, "__arc_b.");
        duck_sql_ident_append(&w, k);
        buf_append_str(&w, " IS NOT DISTINCT FROM __arc_l.");
        duck_sql_ident_append(&w, k);
        buf_append_str(&w, " AND ");
    }
    buf_append_str(&w, "__arc_b.\"time\" = __arc_l.__arc_t");
    buf_reset(view);
    buf_append(view, w.data, w.len);
    buf_release(&w);
}

static uint64_t files_rows(const struct catalog_file *f, size_t n)
{
    uint64_t rows = 0;

    for (size_t i = 0; i < n; i++)
        rows += f[i].rows > 0 ? (uint64_t)f[i].rows : 0;
    return rows;
}

/* Phase 1 of a reference: permissions, bounds, columns, the snapshot of its files and
 * buffered rows, and the hot tier's pins (narrowed). skip_cut: the native executor
 * will likely answer, which needs no cross-file latest cut. */
static enum err snap_ref(struct query *q, const struct query_req *r, const struct query_plan *plan,
                         const struct plan_ref *ref, struct snap *s, bool skip_cut,
                         struct errbuf *eb)
{
    struct query_engine *qe = q->qe;
    struct list_ctx lc = {.qe = qe, .db = ref->database, .m = ref->measurement};
    bool bounded;
    enum err rc;

    if (r->can_db && !r->can_db(r->can_db_ctx, ref->database))
        return errbuf_set(eb, ERR_PERM, "Permission denied: token may not access database '%s'",
                          ref->database);
    eval_bounds(qe, ref, &lc.min_us, &lc.max_us, &bounded);
    if (bounded)
        q->prof.bounded_refs++;
    if ((rc = catalog_columns_list(qe->o.catalog, ref->database, ref->measurement, &s->cols,
                                   &s->ncols, eb)) != ERR_OK)
        return rc;
    add_dep(q, ref->database, ref->measurement);
    if (qe->o.buffers)
        rc = bufmgr_snapshot(qe->o.buffers, ref->database, ref->measurement, list_files_cb, &lc,
                             &s->batches, &s->nbatches, eb);
    else
        rc = list_files_cb(&lc, eb);
    s->files = lc.files; /* freed in query_finish */
    s->nfiles = lc.nfiles;
    if (rc)
        return rc;
    for (size_t i = 0; i < s->nbatches; i++)
        s->buffered += s->batches[i]->nrows;
    if (s->ncols == 0 && s->nfiles == 0 && s->buffered == 0)
        return errbuf_set(eb, ERR_INVAL, "measurement '%s' not found in database '%s'",
                          ref->measurement, ref->database);
    s->latest = qe_latest_applies(plan, s->cols, s->ncols) && !ref->nbounds && !ref->ntags &&
                !ref->nnums;
    s->pinned = qe_pin_hot(qe->o.hot, s, s->files, s->nfiles, lc.min_us, lc.max_us, plan, ref,
                           s->cols, s->ncols, s->latest, skip_cut);
    q->prof.files += s->nfiles;
    q->prof.hot_files += s->pinned;
    q->input_values += (files_rows(s->files, s->nfiles) + s->buffered) * (s->ncols + 1);
    q->prof.buffered_rows += s->buffered;
    return ERR_OK;
}

/* Phase 2, for DuckDB: the reference's relation as SQL over its Parquet files, hot
 * segments and buffered rows. */
static enum err build_view(struct query *q, const struct query_plan *plan,
                           const struct plan_ref *ref, struct snap *s, struct buf *view,
                           struct errbuf *eb)
{
    struct query_engine *qe = q->qe;
    enum err rc = ERR_OK;

    buf_append_str(view, "SELECT CAST(NULL AS TIMESTAMP) AS \"time\"");
    for (size_t i = 0; i < s->ncols; i++) {
        if (!strcasecmp(s->cols[i].name, "time"))
            continue;
        buf_printf(view, ", CAST(NULL AS %s) AS ", s->cols[i].type);
        duck_sql_ident_append(view, s->cols[i].name);
    }
    buf_append_str(view, " WHERE false");
    if (s->nfiles > s->pinned) {
        bool first = true;
        buf_append_str(view, " UNION ALL BY NAME SELECT * FROM read_parquet([");
        for (size_t i = 0; i < s->nfiles; i++) {
            char path[4096];
            if (s->files[i].path == NULL)
                continue; /* read from memory */
            /* remote backends fetch into the local cache here (storage.h) */
            rc = storage_read_path(qe->o.storage, s->files[i].path, path, sizeof(path), eb);
            if (rc != ERR_OK)
                return rc;
            if (!first)
                buf_append_char(view, ',');
            first = false;
            duck_sql_str_append(view, path);
        }
        buf_append_str(view, "], union_by_name=true)");
    }
    qe_add_hot_scans(qe->o.duck, s, view);
    s->scan_ids = xcalloc(s->nbatches ? s->nbatches : 1, sizeof(*s->scan_ids));
    for (size_t i = 0; i < s->nbatches; i++) {
        if (s->batches[i]->nrows == 0)
            continue;
        s->scan_ids[i] = duck_scan_add(qe->o.duck, s->batches[i]);
        buf_printf(view, " UNION ALL BY NAME SELECT * FROM arc_batch_scan(%" PRIu64 "::UBIGINT)",
                   s->scan_ids[i]);
    }
    if (view->len >= QE_VIEW_SQL_MAX)
        return errbuf_set(eb, ERR_LIMIT, "measurement '%s' has too many files for one query",
                          ref->measurement);
    if (s->latest && s->pinned == s->nfiles && s->pinned > 0 && s->buffered == 0 &&
        s->latest_cut) {
        /* every row comes from memory, already cut to each key group's newest rows
         * (qe_pin_hot): the semi join would only repeat that */
        q->prof.latest = true;
    } else if (plan->nlatest_keys && plan->nrefs == 1) {
        size_t before = view->len;
        wrap_latest(plan, s->cols, s->ncols, view);
        q->prof.latest = view->len != before;
    }
    return ERR_OK;
}

/* ---- the native executor (native.h, engine_native.c) -------------------------------- */

/* Could the native executor answer (before the snapshot: no look at the files)? */
static bool native_may(const struct query *q, const struct query_req *r,
                       const struct query_plan *plan)
{
    return plan->native && plan->nrefs == 1 && !r->explain && !r->no_native && r->buffered &&
           q->qe->o.native;
}

static bool try_native(struct query *q, const struct query_req *r, struct query_plan *plan)
{
    if (!native_may(q, r, plan) || q->prof.files != q->prof.hot_files)
        return false;
    return qe_try_native(plan, &q->snaps[0], &q->prof, &q->res);
}

/* ---- query_start ----------------------------------------------------------------------- */

static enum err run_sql(struct query *q, const char *sql, enum duck_result_size size,
                        struct errbuf *eb)
{
    enum err rc = duck_query_exec_sized(q->qe->o.duck, sql, q->cancel, size, &q->res, eb);

    if (rc)
        return user_error(q, rc, eb);
    q->prof.materialized = duck_result_materialized(q->res);
    return ERR_OK;
}

/* Streaming pays per chunk the last pipeline emits (duck.h), a full-size copy
 * even for a chunk of one row, so a selective scan streams slowly. Materialized:
 * results a constant LIMIT keeps small; and buffered answers (held whole in
 * memory anyway, capped at 1 GiB) of a statement over one measurement whose
 * input - the rows of its pruned files and buffers times its columns - is at
 * most DUCK_MATERIALIZE_MAX_VALUES, unless a constant LIMIT above DUCK_SMALL_ROWS
 * asks for a large result. Everything else, and /query/stream, streams in
 * constant memory. */
static enum duck_result_size result_size(const struct query *q, const struct query_plan *p,
                                         bool buffered)
{
    if (p->max_rows && p->max_rows <= DUCK_SMALL_ROWS)
        return DUCK_RESULT_SMALL;
    if (buffered && !p->max_rows && p->nrefs == 1 &&
        q->input_values <= DUCK_MATERIALIZE_MAX_VALUES)
        return DUCK_RESULT_SMALL;
    return DUCK_RESULT_STREAM;
}

enum err query_start(struct query_engine *qe, const struct query_req *r, struct query **out,
                     struct errbuf *eb)
{
    struct query_plan *plan = NULL;
    struct query *q = NULL;
    char *sqlz = NULL, *final_sql = NULL;
    struct buf *views = NULL, sql;
    char **bodies = NULL;
    char showdb[160];
    enum show_kind sk;
    struct query_req req = *r;
    enum err rc;

    if (!req.database)
        req.database = "default";
    buf_init(&sql, 0);
    if (r->sql_len > qe->o.max_sql_bytes) {
        count(qe->m_errors, 1);
        return errbuf_set(eb, ERR_LIMIT, "SQL too long: %zu bytes (max %zu)", r->sql_len,
                          qe->o.max_sql_bytes);
    }
    if (qe->o.max_concurrent &&
        atomic_fetch_add(&qe->running, 1) >= qe->o.max_concurrent) {
        atomic_fetch_sub(&qe->running, 1);
        count(qe->m_rejected, 1);
        return errbuf_set(eb, ERR_TOOMANY, "too many concurrent queries (max %u)",
                          qe->o.max_concurrent);
    }
    if (!qe->o.max_concurrent)
        atomic_fetch_add(&qe->running, 1);
    count(qe->m_queries, 1);
    q = query_alloc(qe);
    sqlz = xstrndup(r->sql ? r->sql : "", r->sql_len);
    if (r->sql && memchr(r->sql, '\0', r->sql_len)) {
        rc = errbuf_set(eb, ERR_PARSE, "SQL contains a NUL byte");
        goto fail;
    }

    sk = parse_show(sqlz, showdb, sizeof(showdb));
    if (sk != SHOW_NONE) {
        if ((rc = show_sql(qe, &req, sk, showdb, &sql, eb)) != ERR_OK)
            goto fail;
        if (r->explain) {
            final_sql = xmalloc(sql.len + 16);
            snprintf(final_sql, sql.len + 16, "EXPLAIN %s", sql.data);
        }
        if ((rc = run_sql(q, final_sql ? final_sql : sql.data, DUCK_RESULT_STREAM, eb)) !=
            ERR_OK)
            goto fail;
        goto done;
    }

    if ((rc = query_plan_get(qe->plans, qe->o.duck, req.database, sqlz, r->sql_len, &plan, eb)) !=
        ERR_OK)
        goto fail;
    q->prof.refs = plan->nrefs;
    /* without buffers there are no generations to prove freshness: never cache */
    q->cacheable = !plan->is_volatile && !r->explain && qe->o.buffers;
    q->snaps = xcalloc(plan->nrefs ? plan->nrefs : 1, sizeof(*q->snaps));
    q->nsnaps = plan->nrefs;
    views = xcalloc(plan->nrefs ? plan->nrefs : 1, sizeof(*views));
    bodies = xcalloc(plan->nrefs ? plan->nrefs : 1, sizeof(*bodies));
    for (size_t i = 0; i < plan->nrefs; i++)
        buf_init(&views[i], 0);
    {
        /* a plan DuckDB answered before (names and types recorded) likely goes native */
        bool skip_cut;
        pthread_mutex_lock(&plan->nx_mu);
        skip_cut = native_may(q, &req, plan) && plan->nx_rec;
        pthread_mutex_unlock(&plan->nx_mu);
        for (size_t i = 0; i < plan->nrefs; i++)
            if ((rc = snap_ref(q, &req, plan, &plan->refs[i], &q->snaps[i], skip_cut, eb)) !=
                ERR_OK)
                goto fail;
    }
    if (try_native(q, &req, plan)) {
        count(qe->m_files, q->prof.files);
        goto done;
    }
    for (size_t i = 0; i < plan->nrefs; i++) {
        if ((rc = build_view(q, plan, &plan->refs[i], &q->snaps[i], &views[i], eb)) != ERR_OK)
            goto fail;
        bodies[i] = views[i].data;
    }
    if (r->explain)
        buf_append_str(&sql, "EXPLAIN ");
    query_plan_compose(plan, (const char *const *)bodies, &sql);
    log_debug("query sql", "db=%s sql=\"%s\"", req.database, sql.data);
    if ((rc = run_sql(q, sql.data,
                      r->explain ? DUCK_RESULT_STREAM : result_size(q, plan, r->buffered),
                      eb)) !=
        ERR_OK)
        goto fail;
    if (!r->explain && plan->native && plan->nrefs == 1)
        qe_record_native(plan, &q->snaps[0], q->res);
    count(qe->m_files, q->prof.files);

done:
    *out = q;
    q = NULL;
    rc = ERR_OK;
fail:
    if (rc != ERR_OK)
        count(qe->m_errors, 1);
    query_finish(q);
    for (size_t i = 0; views && plan && i < plan->nrefs; i++)
        buf_release(&views[i]);
    free(views);
    free(bodies);
    query_plan_put(qe->plans, plan);
    buf_release(&sql);
    free(final_sql);
    free(sqlz);
    return rc;
}
