/* routes_query.c - the query endpoints of both path families.
 *
 *   POST /query, /api/v1/query            {"sql", "format"?} -> json|csv|ndjson|arrow|msgpack
 *   POST /api/v1/query/arrow, /msgpack    the same, format fixed
 *   POST /query/stream, /api/v1/query/stream   streamed (chunked), constant memory
 *   POST /query/estimate, /api/v1/query/estimate   row estimate from EXPLAIN
 *   GET  /query/{m}, /api/v1/query/{m}    ?database=&limit=&offset=&order_by=&where=
 *   GET  /query/{m}/csv                   the same as CSV
 *   GET  /measurements, /api/v1/measurements
 *   GET  /cache/stats, /cache/health; POST /cache/clear (also under /api/v1)
 *
 * format "parquet": the result is written to a temp file under data_dir/tmp by the
 * DuckDB writer instance (the sandboxed query instance cannot write files; see
 * duck_result_write_parquet), sent, and deleted.
 *
 * Buffered answers go through the query result cache (query.h): the key is the
 * database, format and SQL text; the answer says x-arc-cache: hit|miss. Streamed
 * answers are never cached.
 *
 * Every handler runs on the worker pool. Routes are HTTP_ROUTE_NO_DB: a query
 * names its databases in SQL (FROM prod.cpu), so the engine checks each database
 * it touches against the token (query_req.can_db) instead of the server checking
 * only x-arc-database. Buffered answers may be compressed (Accept-Encoding);
 * streamed ones are written through the pipe of http_resp_stream() chunk by chunk,
 * and a failed write (client gone) cancels the query. The encoder call site is
 * encode_result(): one place for every format. */
#include "http/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "auth/auth.h"
#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "duck/duck.h"
#include "http/http.h"
#include "query/encode.h"
#include "query/query.h"

#define RQ_MAX_BUFFERED_BYTES ((size_t)1 << 30) /* buffered answer cap: use /query/stream */
#define RQ_MAX_LIMIT 10000000LL                 /* GET /query/{m} ?limit= ceiling */
#define RQ_PARQUET_TYPE "application/vnd.apache.parquet"

/* The answer format: an encoder format, or a Parquet file (written by duck/). */
struct rq_format {
    enum enc_format f;
    bool parquet;
};

/* ---- the result cache ------------------------------------------------------------
 * One cache per server, made on first use from app->cfg ([query_cache]) and kept for
 * the process's life (app.h has no slot for it yet). Freshness comes from the
 * buffer manager's per-measurement generations; without buffers there is none. */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct query_cache *cache_obj; /* under cache_mu until set; then read-only */
static const struct app *cache_app;   /* the app cache_obj was made for */

static uint64_t cache_gen(void *ctx, const char *db, const char *m)
{
    const struct app *app = ctx;
    return bufmgr_generation(app->buffers, db, m);
}

static struct query_cache *cache_of(struct app *app)
{
    struct query_cache *c;

    pthread_mutex_lock(&cache_mu);
    if (cache_app != app) {
        const struct config *cfg = app->cfg;
        query_cache_free(cache_obj);
        cache_obj = NULL;
        cache_app = app;
        if (cfg && cfg->query_cache.enabled && cfg->query_cache.ttl_seconds > 0 &&
            cfg->query_cache.max_size_mb > 0 && app->buffers) {
            struct query_cache_opts o = {
                .max_bytes = (size_t)cfg->query_cache.max_size_mb << 20,
                .ttl_ms = cfg->query_cache.ttl_seconds * 1000,
                .gen = cache_gen,
                .gen_ctx = app,
            };
            cache_obj = query_cache_new(&o);
        }
    }
    c = cache_obj;
    pthread_mutex_unlock(&cache_mu);
    return c;
}

/* Everything that shapes a buffered answer: database of unqualified names, format,
 * SQL text. (The token's scope is re-checked on every hit by query_cache_get.) */
static void cache_key(struct buf *k, const struct http_req *req, const struct rq_format *fmt,
                      const char *sql, size_t len)
{
    buf_append_str(k, "v1");
    buf_append_char(k, '\0');
    buf_append_str(k, req->database ? req->database : "default");
    buf_append_char(k, '\0');
    buf_printf(k, "%s%d", fmt->parquet ? "parquet" : "enc", (int)fmt->f);
    buf_append_char(k, '\0');
    buf_append(k, sql, len);
}

static bool can_db(const void *ctx, const char *db)
{
    return auth_principal_can_db(ctx, db);
}

static void fill_req(struct http_req *req, struct query_req *qr, const char *sql, size_t len)
{
    memset(qr, 0, sizeof(*qr));
    qr->sql = sql;
    qr->sql_len = len;
    qr->database = req->database;
    if (req->principal) {
        qr->can_db = can_db;
        qr->can_db_ctx = req->principal;
    }
}

static void profile_header(struct http_resp *resp, struct query *q, double ms)
{
    const struct query_profile *p = query_get_profile(q);
    char v[200];

    snprintf(v, sizeof(v),
             "files=%zu;hot_files=%zu;refs=%zu;buffered_rows=%zu;bounded_refs=%zu;ms=%.3f%s%s%s",
             p->files, p->hot_files, p->refs, p->buffered_rows, p->bounded_refs, ms,
             p->latest ? ";latest=1" : "", p->materialized ? ";materialized=1" : "",
             p->native ? ";native=1" : "");
    http_resp_header(resp, "x-arc-profile", v);
}

static double elapsed_ms(struct query *q)
{
    return (double)(clock_mono_ns() - query_started_ns(q)) / 1e6;
}

/* Encode every chunk of q's result into sink. On failure eb says why; ERR_IO means
 * the sink (client) failed and the query was cancelled. */
static enum err encode_result(struct query *q, enum enc_format f, const struct enc_sink *sink,
                              struct errbuf *eb)
{
    struct encoder *e = enc_new(f, sink, query_result(q), NULL);
    struct enc_summary sum = {0};
    struct duck_chunk *c;
    enum err rc;

    if ((rc = enc_begin(e, eb)) != ERR_OK)
        goto out;
    for (;;) {
        if ((rc = query_next_chunk(q, &c, eb)) != ERR_OK)
            goto out;
        if (!c)
            break;
        if ((rc = enc_chunk(e, c, eb)) != ERR_OK)
            goto out;
    }
    sum.execution_time_ms = elapsed_ms(q);
    rc = enc_end(e, &sum, eb);
out:
    if (rc == ERR_IO)
        query_cancel(q);
    enc_free(e);
    return rc;
}

/* Write q's result as a Parquet file under data_dir/tmp (the query instance cannot
 * write; duck/ goes through the writer instance), then answer it: streamed through
 * fd >= 0, else into resp->body (capped like every buffered answer). The file is
 * deleted in every case. */
static enum err answer_parquet(const char *root, struct http_resp *resp, struct query *q,
                               int fd, struct errbuf *eb)
{
    static _Atomic uint64_t seq;
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat st;
    enum err rc;
    int in;

    if (!root || !root[0])
        return errbuf_set(eb, ERR_INTERNAL, "parquet: no data directory");
    snprintf(dir, sizeof(dir), "%s/tmp", root);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return errbuf_set(eb, ERR_IO, "parquet: mkdir %s: %s", dir, strerror(errno));
    if ((size_t)snprintf(path, sizeof(path), "%s/query-%d-%llu.parquet", dir, (int)getpid(),
                         (unsigned long long)atomic_fetch_add(&seq, 1)) >= sizeof(path))
        return errbuf_set(eb, ERR_INTERNAL, "parquet: temp path too long");
    if ((rc = query_write_parquet(q, path, NULL, eb)) != ERR_OK)
        goto out_unlink;
    in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) != 0) {
        rc = errbuf_set(eb, ERR_IO, "parquet: open %s: %s", path, strerror(errno));
        if (in >= 0)
            close(in);
        goto out_unlink;
    }
    if (fd < 0 && (size_t)st.st_size > RQ_MAX_BUFFERED_BYTES) {
        rc = errbuf_set(eb, ERR_LIMIT, "result is %lld bytes of Parquet (max %zu)",
                        (long long)st.st_size, RQ_MAX_BUFFERED_BYTES);
        goto out_close;
    }
    if (fd < 0 && (rc = buf_reserve(&resp->body, (size_t)st.st_size)) != ERR_OK) {
        errbuf_set(eb, rc, "parquet: result too large");
        goto out_close;
    }
    for (;;) {
        char chunk[65536];
        ssize_t n = read(in, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errbuf_set(eb, ERR_IO, "parquet: read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (fd >= 0) {
            struct enc_sink sink = enc_sink_fd(fd);
            if ((rc = sink.write(sink.ctx, chunk, (size_t)n, eb)) != ERR_OK)
                break;
        } else if ((rc = buf_append(&resp->body, chunk, (size_t)n)) != ERR_OK) {
            errbuf_set(eb, rc, "parquet: result too large");
            break;
        }
    }
out_close:
    close(in);
out_unlink:
    unlink(path);
    return rc;
}

/* Run sql and answer in format fmt, buffered (stream = false) or streamed.
 * Buffered answers go through the result cache (x-arc-cache: hit|miss). */
static void run_query(struct http_req *req, struct http_resp *resp, const char *sql, size_t len,
                      const struct rq_format *fmt, bool stream)
{
    const char *ctype = fmt->parquet ? RQ_PARQUET_TYPE : enc_format_content_type(fmt->f);
    struct query_cache *cache = NULL;
    struct query_req qr;
    struct query *q = NULL;
    struct errbuf eb;
    struct enc_sink sink;
    struct buf key;
    enum err rc;
    int fd;

    errbuf_init(&eb);
    buf_init(&key, 0);
    if (!req->app->query) {
        http_resp_error(resp, 503, "query engine not available");
        return;
    }
    fill_req(req, &qr, sql, len);
    qr.buffered = !stream;
    qr.no_native = fmt->parquet;
    if (!stream && (cache = cache_of(req->app)) != NULL) {
        char *ct = NULL, *prof = NULL;
        cache_key(&key, req, fmt, sql, len);
        buf_reset(&resp->body);
        resp->body.max_bytes = RQ_MAX_BUFFERED_BYTES;
        if (query_cache_get(cache, key.data, key.len, qr.can_db, qr.can_db_ctx, &resp->body, &ct,
                            &prof) == QUERY_CACHE_HIT) {
            resp->body.max_bytes = 0;
            resp->status = 200;
            free(resp->content_type);
            resp->content_type = ct;
            resp->compress_ok = true;
            http_resp_header(resp, "x-arc-cache", "hit");
            if (prof)
                http_resp_header(resp, "x-arc-profile", prof);
            free(prof);
            buf_release(&key);
            return;
        }
        resp->body.max_bytes = 0;
    }
    rc = query_start(req->app->query, &qr, &q, &eb);
    if (rc) {
        http_resp_error(resp, query_http_status(rc), "%s", eb.msg);
        buf_release(&key);
        return;
    }
    if (stream) {
        /* after http_resp_stream the request belongs to the event loop (and may be
         * freed if the client leaves): take what we need from it first */
        const char *root = req->app->cfg ? req->app->cfg->server.data_dir : NULL;
        profile_header(resp, q, elapsed_ms(q));
        fd = http_resp_stream(resp, 200, ctype);
        if (fd < 0) {
            query_finish(q);
            return;
        }
        if (fmt->parquet) {
            rc = answer_parquet(root, NULL, q, fd, &eb);
        } else {
            sink = enc_sink_fd(fd);
            rc = encode_result(q, fmt->f, &sink, &eb);
        }
        if (rc && rc != ERR_IO)
            log_warn("streamed query failed mid-answer", "error=\"%s\"", eb.msg);
        close(fd);
        query_finish(q);
        return;
    }
    buf_reset(&resp->body);
    resp->body.max_bytes = RQ_MAX_BUFFERED_BYTES;
    if (fmt->parquet) {
        rc = answer_parquet(req->app->cfg ? req->app->cfg->server.data_dir : NULL, resp, q, -1,
                            &eb);
    } else {
        sink = enc_sink_buf(&resp->body);
        rc = encode_result(q, fmt->f, &sink, &eb);
    }
    profile_header(resp, q, elapsed_ms(q));
    if (rc == ERR_OK && cache) {
        const struct query_cache_dep *deps;
        size_t ndeps = query_deps(q, &deps);
        if (query_is_cacheable(q)) {
            const char *prof = NULL;
            for (size_t i = 0; i < resp->nheaders; i++)
                if (!strcasecmp(resp->headers[i].name, "x-arc-profile"))
                    prof = resp->headers[i].value;
            query_cache_put(cache, key.data, key.len, deps, ndeps, resp->body.data,
                            resp->body.len, ctype, prof);
        } else {
            query_cache_note_uncacheable(cache);
        }
    }
    buf_release(&key);
    query_finish(q);
    resp->body.max_bytes = 0;
    if (rc) {
        buf_release(&resp->body);
        if (rc == ERR_LIMIT)
            http_resp_error(resp, 413, "%s (use /query/stream for large results)", eb.msg);
        else
            http_resp_error(resp, query_http_status(rc), "%s", eb.msg);
        return;
    }
    http_resp_header(resp, "x-arc-cache", "miss");
    resp->status = 200;
    free(resp->content_type);
    resp->content_type = xstrdup(ctype);
    resp->compress_ok = true;
}

/* Parse {"sql": ..., "format": ...}; on failure fill resp and return NULL. */
static json_t *parse_body(struct http_req *req, struct http_resp *resp, const char **sql,
                          size_t *len, struct rq_format *f, bool format_fixed)
{
    json_error_t je;
    json_t *root, *js, *jf;
    struct errbuf eb;

    if (req->body_len > ARC_MAX_JSON_REQUEST_BYTES) {
        http_resp_error(resp, 413, "request body too large (max %d bytes)",
                        ARC_MAX_JSON_REQUEST_BYTES);
        return NULL;
    }
    root = json_loadb(req->body ? req->body : "", req->body_len, 0, &je);
    if (!root || !json_is_object(root)) {
        http_resp_error(resp, 400, "body must be a JSON object {\"sql\": \"...\"}%s%s",
                        root ? "" : ": ", root ? "" : je.text);
        json_decref(root);
        return NULL;
    }
    js = json_object_get(root, "sql");
    if (!js)
        js = json_object_get(root, "query");
    if (!json_is_string(js) || json_string_length(js) == 0) {
        http_resp_error(resp, 400, "field 'sql' (non-empty string) is required");
        json_decref(root);
        return NULL;
    }
    *sql = json_string_value(js);
    *len = json_string_length(js);
    jf = json_object_get(root, "format");
    if (!format_fixed && jf && !json_is_null(jf)) {
        errbuf_init(&eb);
        f->parquet = json_is_string(jf) && !strcasecmp(json_string_value(jf), "parquet");
        if (!f->parquet &&
            (!json_is_string(jf) || enc_format_parse(json_string_value(jf), &f->f, &eb) != ERR_OK)) {
            http_resp_error(resp, 400, "%s",
                            json_is_string(jf) ? eb.msg : "field 'format' must be a string");
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

static void post_query(struct http_req *req, struct http_resp *resp, enum enc_format f,
                       bool fixed, bool stream)
{
    struct rq_format fmt = {.f = f};
    const char *sql;
    size_t len;
    json_t *root = parse_body(req, resp, &sql, &len, &fmt, fixed);

    if (!root)
        return;
    run_query(req, resp, sql, len, &fmt, stream);
    json_decref(root);
}

static void h_query(struct http_req *req, struct http_resp *resp)
{
    post_query(req, resp, ENC_JSON, false, false);
}

static void h_query_arrow(struct http_req *req, struct http_resp *resp)
{
    post_query(req, resp, ENC_ARROW, true, false);
}

static void h_query_msgpack(struct http_req *req, struct http_resp *resp)
{
    post_query(req, resp, ENC_MSGPACK, true, false);
}

static void h_query_stream(struct http_req *req, struct http_resp *resp)
{
    post_query(req, resp, ENC_JSON, false, true);
}

/* The estimate: DuckDB's EXPLAIN prints each operator's estimated cardinality as
 * "~N rows" (N may carry thousands separators); the first one is the root's, i.e.
 * the estimated size of the result. */
static bool parse_estimate(const char *s, size_t n, long long *out)
{
    for (size_t i = 0; i + 1 < n; i++) {
        long long v = 0;
        size_t k = i + 1;
        bool digits = false;
        if (s[i] != '~')
            continue;
        while (k < n && ((s[k] >= '0' && s[k] <= '9') || s[k] == ',')) {
            if (s[k] != ',') {
                if (v > (LLONG_MAX - 9) / 10)
                    break;
                v = v * 10 + (s[k] - '0');
                digits = true;
            }
            k++;
        }
        if (digits) {
            *out = v;
            return true;
        }
    }
    return false;
}

static void h_query_estimate(struct http_req *req, struct http_resp *resp)
{
    struct query_req qr;
    struct query *q = NULL;
    struct duck_chunk *c;
    struct errbuf eb;
    const char *sql;
    size_t len;
    long long est = -1;
    struct rq_format f = {.f = ENC_JSON};
    json_t *root = parse_body(req, resp, &sql, &len, &f, true);
    struct buf b;
    enum err rc;

    if (!root)
        return;
    if (!req->app->query) {
        http_resp_error(resp, 503, "query engine not available");
        json_decref(root);
        return;
    }
    errbuf_init(&eb);
    fill_req(req, &qr, sql, len);
    qr.explain = true;
    rc = query_start(req->app->query, &qr, &q, &eb);
    json_decref(root);
    if (rc) {
        http_resp_error(resp, query_http_status(rc), "%s", eb.msg);
        return;
    }
    while ((rc = query_next_chunk(q, &c, &eb)) == ERR_OK && c && est < 0) {
        size_t ncols = duck_result_ncols(query_result(q));
        for (size_t row = 0; row < duck_chunk_rows(c) && est < 0; row++) {
            for (size_t col = 0; col < ncols && est < 0; col++) {
                size_t sl;
                const char *s = duck_chunk_str(c, col, row, &sl);
                if (s && parse_estimate(s, sl, &est))
                    break;
            }
        }
    }
    buf_init(&b, 0);
    if (rc) {
        http_resp_error(resp, query_http_status(rc), "%s", eb.msg);
    } else {
        const struct query_profile *p = query_get_profile(q);
        buf_printf(&b, "{\"success\":true,\"estimated_rows\":%lld,\"files\":%zu,"
                       "\"buffered_rows\":%zu,\"method\":\"explain\",\"execution_time_ms\":%.3f}",
                   est < 0 ? 0 : est, p->files, p->buffered_rows, elapsed_ms(q));
        http_resp_json(resp, 200, b.data, b.len);
    }
    profile_header(resp, q, elapsed_ms(q));
    buf_release(&b);
    query_finish(q);
}

/* order_by: a comma list of column names, each optionally ASC/DESC. */
static bool order_by_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ',' || c == ' ' || c == '"'))
            return false;
    }
    return true;
}

static bool parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (!s || !*s)
        return false;
    v = strtoll(s, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void get_measurement(struct http_req *req, struct http_resp *resp, enum enc_format f)
{
    const char *m = req->params[0];
    const char *db = http_req_query(req, "database");
    const char *lim = http_req_query(req, "limit"), *off = http_req_query(req, "offset");
    const char *order = http_req_query(req, "order_by"), *where = http_req_query(req, "where");
    long long limit = 100, offset = 0;
    struct buf sql;

    if (!db || !*db)
        db = req->database;
    if (lim && !parse_ll(lim, 0, RQ_MAX_LIMIT, &limit)) {
        http_resp_error(resp, 400, "limit must be an integer 0..%lld", RQ_MAX_LIMIT);
        return;
    }
    if (off && !parse_ll(off, 0, INT64_MAX, &offset)) {
        http_resp_error(resp, 400, "offset must be a non-negative integer");
        return;
    }
    if (order && *order && !order_by_ok(order)) {
        http_resp_error(resp, 400, "order_by must be column names with optional ASC/DESC");
        return;
    }
    /* Names are quoted; where and order_by go through the same parser and sandbox
     * checks as any SQL (the token could post that SQL to /query anyway). */
    buf_init(&sql, ARC_MAX_SQL_BYTES);
    buf_append_str(&sql, "SELECT * FROM ");
    duck_sql_ident_append(&sql, db);
    buf_append_char(&sql, '.');
    duck_sql_ident_append(&sql, m);
    if (where && *where) {
        buf_append_str(&sql, " WHERE (");
        buf_append_str(&sql, where);
        buf_append_str(&sql, "\n)");
    }
    buf_append_str(&sql, " ORDER BY ");
    buf_append_str(&sql, order && *order ? order : "time DESC");
    if (buf_printf(&sql, " LIMIT %lld OFFSET %lld", limit, offset) != ERR_OK) {
        http_resp_error(resp, 413, "query parameters too long");
        buf_release(&sql);
        return;
    }
    {
        struct rq_format fmt = {.f = f};
        run_query(req, resp, sql.data, sql.len, &fmt, false);
    }
    buf_release(&sql);
}

static void h_get_measurement(struct http_req *req, struct http_resp *resp)
{
    get_measurement(req, resp, ENC_JSON);
}

static void h_get_measurement_csv(struct http_req *req, struct http_resp *resp)
{
    get_measurement(req, resp, ENC_CSV);
}

static void h_measurements(struct http_req *req, struct http_resp *resp)
{
    const char *db = http_req_query(req, "database");
    struct catalog_measurement *ms = NULL;
    struct errbuf eb;
    size_t n = 0, shown = 0;
    struct buf b;

    if (db && !*db)
        db = NULL;
    if (db && req->principal && !auth_principal_can_db(req->principal, db)) {
        http_resp_error(resp, 403, "Permission denied: token may not access database '%s'", db);
        return;
    }
    errbuf_init(&eb);
    if (catalog_measurements_list(req->app->catalog, db, &ms, &n, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"measurements\":[");
    for (size_t i = 0; i < n; i++) {
        if (req->principal && !auth_principal_can_db(req->principal, ms[i].database))
            continue;
        buf_append_str(&b, shown++ ? ",{\"database\":" : "{\"database\":");
        buf_append_json_str(&b, ms[i].database, strlen(ms[i].database));
        buf_append_str(&b, ",\"measurement\":");
        buf_append_json_str(&b, ms[i].measurement, strlen(ms[i].measurement));
        buf_printf(&b, ",\"file_count\":%lld,\"row_count\":%lld,\"total_size_mb\":%.6f}",
                   (long long)ms[i].files, (long long)ms[i].rows,
                   (double)ms[i].bytes / (1024.0 * 1024.0));
    }
    buf_printf(&b, "],\"count\":%zu}", shown);
    http_resp_json(resp, 200, b.data, b.len);
    resp->compress_ok = true;
    buf_release(&b);
    catalog_measurements_free(ms, n);
}

/* ---- /cache/... -------------------------------------------------------------------- */

static void h_cache_stats(struct http_req *req, struct http_resp *resp)
{
    struct query_cache *c = cache_of(req->app);
    struct query_cache_stats st;
    const struct config *cfg = req->app->cfg;
    struct buf b;
    uint64_t lookups;

    memset(&st, 0, sizeof(st));
    if (c)
        query_cache_get_stats(c, &st);
    lookups = st.hits + st.misses;
    buf_init(&b, 0);
    buf_printf(&b,
               "{\"success\":true,\"enabled\":%s,\"entries\":%zu,\"size_bytes\":%zu,"
               "\"size_mb\":%.3f,\"max_size_mb\":%lld,\"ttl_seconds\":%lld,\"hits\":%llu,"
               "\"misses\":%llu,\"hit_rate\":%.4f,\"stores\":%llu,\"invalidations\":%llu,"
               "\"expirations\":%llu,\"evictions\":%llu,\"too_large\":%llu,"
               "\"uncacheable\":%llu,\"clears\":%llu}",
               c ? "true" : "false", st.entries, st.bytes, (double)st.bytes / (1024.0 * 1024.0),
               cfg ? (long long)cfg->query_cache.max_size_mb : 0LL,
               cfg ? (long long)cfg->query_cache.ttl_seconds : 0LL,
               (unsigned long long)st.hits, (unsigned long long)st.misses,
               lookups ? (double)st.hits / (double)lookups : 0.0,
               (unsigned long long)st.stores, (unsigned long long)st.invalidations,
               (unsigned long long)st.expirations, (unsigned long long)st.evictions,
               (unsigned long long)st.too_large, (unsigned long long)st.uncacheable,
               (unsigned long long)st.clears);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_cache_health(struct http_req *req, struct http_resp *resp)
{
    struct query_cache *c = cache_of(req->app);
    struct query_cache_stats st;
    struct buf b;

    memset(&st, 0, sizeof(st));
    if (c)
        query_cache_get_stats(c, &st);
    buf_init(&b, 0);
    buf_printf(&b,
               "{\"success\":true,\"status\":\"%s\",\"enabled\":%s,\"entries\":%zu,"
               "\"utilization_percent\":%.6f}",
               c ? "healthy" : "disabled", c ? "true" : "false", st.entries,
               st.max_bytes ? 100.0 * (double)st.bytes / (double)st.max_bytes : 0.0);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_cache_clear(struct http_req *req, struct http_resp *resp)
{
    struct query_cache *c = cache_of(req->app);
    struct buf b;
    size_t n = c ? query_cache_clear(c) : 0;

    buf_init(&b, 0);
    buf_printf(&b, "{\"success\":true,\"cleared\":%zu,\"message\":\"query cache cleared\"}", n);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

#define R HTTP_PERM_READ
#define DBG HTTP_ROUTE_DB_IF_GIVEN
#define CR (HTTP_ROUTE_NO_DB)
static const struct http_route query_routes[] = {
    {"POST", "/query", h_query, DBG, R},
    {"POST", "/api/v1/query", h_query, DBG, R},
    {"POST", "/api/v1/query/arrow", h_query_arrow, DBG, R},
    {"POST", "/api/v1/query/msgpack", h_query_msgpack, DBG, R},
    {"POST", "/query/stream", h_query_stream, DBG, R},
    {"POST", "/api/v1/query/stream", h_query_stream, DBG, R},
    {"POST", "/query/estimate", h_query_estimate, DBG, R},
    {"POST", "/api/v1/query/estimate", h_query_estimate, DBG, R},
    {"GET", "/query/{measurement}", h_get_measurement, DBG, R},
    {"GET", "/api/v1/query/{measurement}", h_get_measurement, DBG, R},
    {"GET", "/query/{measurement}/csv", h_get_measurement_csv, DBG, R},
    {"GET", "/api/v1/query/{measurement}/csv", h_get_measurement_csv, DBG, R},
    {"GET", "/measurements", h_measurements, DBG, R},
    {"GET", "/api/v1/measurements", h_measurements, DBG, R},
    {"GET", "/cache/stats", h_cache_stats, CR, R},
    {"GET", "/api/v1/cache/stats", h_cache_stats, CR, R},
    {"GET", "/cache/health", h_cache_health, CR, R},
    {"GET", "/api/v1/cache/health", h_cache_health, CR, R},
    {"POST", "/cache/clear", h_cache_clear, CR, HTTP_PERM_WRITE | HTTP_PERM_ADMIN},
    {"POST", "/api/v1/cache/clear", h_cache_clear, CR, HTTP_PERM_WRITE | HTTP_PERM_ADMIN},
};
#undef R
#undef DBG
#undef CR

void routes_query_register(struct http_server *s)
{
    http_server_add_routes(s, query_routes, sizeof(query_routes) / sizeof(query_routes[0]));
}
