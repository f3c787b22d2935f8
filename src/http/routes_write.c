/* routes_write.c - the write endpoints of both path families, flush, write stats,
 * and database management.
 *
 * A write is: decode the whole body into column batches (all or nothing), then
 * hand them to the buffers (which check the schema across every measurement of
 * the request before storing any row), then answer 204. Any error answers with
 * nothing stored. Handlers run on the worker pool: decoding a large body must not
 * stall an event loop. */
#include "http/routes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "auth/auth.h"
#include "buffer/buffer.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "ingest/pipeline.h"
#include "storage/storage.h"

enum wformat { WF_LP, WF_MSGPACK, WF_JSON, WF_COUNT };

static const char *const wformat_names[WF_COUNT] = {"line_protocol", "msgpack", "json"};

static struct {
    _Atomic uint64_t requests, rows, errors, bytes;
} g_stats[WF_COUNT];

/* Names the data directory uses for itself: a database may not take them. */
static bool is_reserved_db(const char *db)
{
    return !strcmp(db, "wal") || !strcmp(db, "cache") || !strcmp(db, "tmp") ||
           !strcmp(db, "spool");
}

/* Validate a database name; on failure fill resp and return false. */
static bool check_db_name(struct http_resp *resp, const char *db)
{
    if (!ingest_name_valid(db, strlen(db), ARC_MAX_DB_NAME)) {
        http_resp_error(resp, 400,
                        "invalid database name '%.80s': a letter, then letters, digits, '_' or "
                        "'-', at most %d characters",
                        db, ARC_MAX_DB_NAME);
        return false;
    }
    if (is_reserved_db(db)) {
        http_resp_error(resp, 400, "database name '%s' is reserved", db);
        return false;
    }
    return true;
}

static void count_metric(struct app *app, enum wformat f, const char *what, uint64_t v)
{
    char name[96], labels[64];
    snprintf(name, sizeof(name), "arc_write_%s_total", what);
    snprintf(labels, sizeof(labels), "format=\"%s\"", wformat_names[f]);
    metric_add(metrics_counter(app->metrics, name, "Write requests/rows/errors by format", labels),
               v);
}

static void do_write(struct http_req *req, struct http_resp *resp, enum wformat f)
{
    struct app *app = req->app;
    static const enum ingest_format fmt_of[WF_COUNT] = {INGEST_FMT_LP, INGEST_FMT_MSGPACK,
                                                         INGEST_FMT_JSON};
    enum ingest_precision p = PREC_NS;
    struct errbuf eb;
    enum err rc;
    size_t rows = 0;

    errbuf_init(&eb);
    atomic_fetch_add(&g_stats[f].requests, 1);
    atomic_fetch_add(&g_stats[f].bytes, req->body_len);
    if (!check_db_name(resp, req->database))
        goto err_counted;
    if (app->stopping || !app->ready) {
        http_resp_error(resp, 503, app->stopping ? "server is shutting down"
                                                 : "server is starting: recovery in progress");
        goto err_counted;
    }
    if (f == WF_LP) {
        const char *prec = http_req_query(req, "precision");
        if (!ingest_precision_parse(prec, &p)) {
            http_resp_error(resp, 400,
                            "invalid precision '%s': use ns, us, ms or s (1.x also n, u, m, h)",
                            prec);
            goto err_counted;
        }
    }
    rc = ingest_pipeline_write(app->pipeline, req->database, fmt_of[f], p, req->body,
                               req->body_len, &rows, &eb);
    if (rc) {
        /* a type conflict is the client's fault (400, as InfluxDB answers) */
        int st = rc == ERR_CONFLICT ? 400 : http_status_for_err(rc);
        http_resp_error(resp, st, "%s", eb.msg);
        goto err_counted;
    }
    atomic_fetch_add(&g_stats[f].rows, rows);
    count_metric(app, f, "rows", rows);
    count_metric(app, f, "requests", 1);
    http_resp_no_content(resp, 204);
    return;

err_counted:
    atomic_fetch_add(&g_stats[f].errors, 1);
    count_metric(app, f, "errors", 1);
}

static void h_write_lp(struct http_req *req, struct http_resp *resp)
{
    do_write(req, resp, WF_LP);
}

static void h_write_msgpack(struct http_req *req, struct http_resp *resp)
{
    do_write(req, resp, WF_MSGPACK);
}

static void h_write_json(struct http_req *req, struct http_resp *resp)
{
    do_write(req, resp, WF_JSON);
}

static void h_flush(struct http_req *req, struct http_resp *resp)
{
    struct errbuf eb;
    struct bufmgr_stats s;
    char body[256];
    int n;
    int64_t t0 = clock_mono_ns();

    errbuf_init(&eb);
    bufmgr_get_stats(req->app->buffers, &s);
    if (bufmgr_flush_all(req->app->buffers, 120000, &eb) != ERR_OK) {
        http_resp_error(resp, eb.code == ERR_TIMEOUT ? 504 : 500, "%s", eb.msg);
        return;
    }
    n = snprintf(body, sizeof(body),
                 "{\"success\":true,\"message\":\"all buffered rows are in durable Parquet "
                 "files\",\"rows_flushed\":%zu,\"duration_ms\":%.3f}",
                 s.active_rows + s.flushing_rows, (double)(clock_mono_ns() - t0) / 1e6);
    http_resp_json(resp, 200, body, (size_t)n);
}

static void h_write_stats(struct http_req *req, struct http_resp *resp)
{
    struct bufmgr_stats s;
    struct buf b;
    int f;

    bufmgr_get_stats(req->app->buffers, &s);
    buf_init(&b, 0);
    buf_printf(&b,
               "{\"success\":true,\"buffers\":{\"measurements\":%zu,\"active_rows\":%zu,"
               "\"flushing_rows\":%zu,\"bytes\":%zu,\"budget_bytes\":%zu,\"rows_accepted\":%llu,"
               "\"rows_flushed\":%llu,\"flushes\":%llu,\"flush_errors\":%llu,"
               "\"rejected_busy\":%llu,\"coalesced\":%llu},\"formats\":{",
               s.measurements, s.active_rows, s.flushing_rows, s.bytes, s.budget_bytes,
               (unsigned long long)s.rows_accepted, (unsigned long long)s.rows_flushed,
               (unsigned long long)s.flushes, (unsigned long long)s.flush_errors,
               (unsigned long long)s.rejected_busy, (unsigned long long)s.coalesced);
    for (f = 0; f < WF_COUNT; f++)
        buf_printf(&b, "%s\"%s\":{\"requests\":%llu,\"rows\":%llu,\"errors\":%llu,\"bytes\":%llu}",
                   f ? "," : "", wformat_names[f],
                   (unsigned long long)atomic_load(&g_stats[f].requests),
                   (unsigned long long)atomic_load(&g_stats[f].rows),
                   (unsigned long long)atomic_load(&g_stats[f].errors),
                   (unsigned long long)atomic_load(&g_stats[f].bytes));
    buf_append_str(&b, "}}");
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_write_health(struct http_req *req, struct http_resp *resp)
{
    struct bufmgr_stats s;
    char body[256];
    int n;
    bool full;

    bufmgr_get_stats(req->app->buffers, &s);
    full = s.bytes * 10 >= s.budget_bytes * 9;
    n = snprintf(body, sizeof(body),
                 "{\"status\":\"%s\",\"buffer_used_pct\":%.1f,\"flush_errors\":%llu}",
                 full ? "degraded" : "ok",
                 s.budget_bytes ? 100.0 * (double)s.bytes / (double)s.budget_bytes : 0.0,
                 (unsigned long long)s.flush_errors);
    http_resp_json(resp, full ? 503 : 200, body, (size_t)n);
}

static void h_msgpack_spec(struct http_req *req, struct http_resp *resp)
{
    static const char spec[] =
        "{\"format\":\"MessagePack\",\"content_type\":\"application/msgpack\","
        "\"database\":\"header x-arc-database (default 'default')\","
        "\"body\":\"a row item, a columnar item, {\\\"batch\\\": [items]} or an array of items\","
        "\"row_item\":{\"m\":\"measurement (required)\",\"t\":\"time: int in s/ms/us/ns by "
        "magnitude (<1e10 s, <1e13 ms, <1e16 us, else ns) or omitted for server time\","
        "\"h\":\"host tag (optional)\",\"tags\":\"map of string tags (optional)\","
        "\"fields\":\"map of fields: int, float, string, bool, nil (NULL)\","
        "\"f\":\"positional fields -> field_0, field_1, ...\"},"
        "\"columnar_item\":{\"m\":\"measurement\",\"columns\":\"map name -> array, equal "
        "lengths, 'time' required; names starting with '_' are dropped\","
        "\"tag_keys\":\"optional list of column names that are tags\"},"
        "\"errors\":\"a bad item rejects the whole request (400, item index named); "
        "nothing of it is stored\",\"success\":\"204 No Content\"}";
    (void)req;
    http_resp_json(resp, 200, spec, sizeof(spec) - 1);
}

static void h_msgpack_stats(struct http_req *req, struct http_resp *resp)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"success\":true,\"requests\":%llu,\"rows\":%llu,\"errors\":%llu,"
                     "\"bytes\":%llu}",
                     (unsigned long long)atomic_load(&g_stats[WF_MSGPACK].requests),
                     (unsigned long long)atomic_load(&g_stats[WF_MSGPACK].rows),
                     (unsigned long long)atomic_load(&g_stats[WF_MSGPACK].errors),
                     (unsigned long long)atomic_load(&g_stats[WF_MSGPACK].bytes));
    (void)req;
    http_resp_json(resp, 200, body, (size_t)n);
}

/* ------------------------------------------------------------- databases */

static void h_db_list(struct http_req *req, struct http_resp *resp)
{
    struct errbuf eb;
    char **names = NULL;
    size_t n = 0, i, shown = 0;
    struct buf b;

    errbuf_init(&eb);
    if (catalog_databases_list(req->app->catalog, &names, &n, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"databases\":[");
    for (i = 0; i < n; i++) {
        if (req->principal && !auth_principal_can_db(req->principal, names[i]))
            continue;
        if (shown++)
            buf_append_char(&b, ',');
        buf_append_json_str(&b, names[i], strlen(names[i]));
    }
    buf_printf(&b, "],\"count\":%zu}", shown);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
    catalog_strings_free(names, n);
}

static void h_db_create(struct http_req *req, struct http_resp *resp)
{
    json_t *root, *jn;
    json_error_t je;
    const char *name;
    struct errbuf eb;
    char body[256];
    int n;

    root = json_loadb(req->body, req->body_len, 0, &je);
    if (!root || !json_is_object(root)) {
        http_resp_error(resp, 400, "body must be a JSON object {\"name\": \"...\"}");
        json_decref(root);
        return;
    }
    jn = json_object_get(root, "name");
    name = json_string_value(jn);
    if (!name) {
        http_resp_error(resp, 400, "field 'name' (string) is required");
        json_decref(root);
        return;
    }
    if (!check_db_name(resp, name)) {
        json_decref(root);
        return;
    }
    if (req->principal && !auth_principal_can_db(req->principal, name)) {
        http_resp_error(resp, 403, "Permission denied: token may not access database '%s'", name);
        json_decref(root);
        return;
    }
    errbuf_init(&eb);
    if (catalog_database_create(req->app->catalog, name, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        json_decref(root);
        return;
    }
    n = snprintf(body, sizeof(body), "{\"success\":true,\"database\":\"%s\"}", name);
    http_resp_json(resp, 201, body, (size_t)n);
    json_decref(root);
}

static void h_db_drop(struct http_req *req, struct http_resp *resp)
{
    const char *name = req->params[0], *confirm = http_req_query(req, "confirm");
    struct errbuf eb;
    char **paths = NULL;
    size_t n = 0, i, failed = 0;
    char body[256];
    int len;

    if (!confirm || strcmp(confirm, "true") != 0) {
        http_resp_error(resp, 400,
                        "dropping database '%s' deletes all its data: repeat with ?confirm=true",
                        name);
        return;
    }
    if (req->principal && !auth_principal_can_db(req->principal, name)) {
        http_resp_error(resp, 403, "Permission denied: token may not access database '%s'", name);
        return;
    }
    errbuf_init(&eb);
    bufmgr_drop_database(req->app->buffers, name);
    if (catalog_database_drop(req->app->catalog, name, &paths, &n, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    for (i = 0; i < n; i++)
        if (storage_delete(req->app->storage, paths[i], &eb) != ERR_OK)
            failed++;
    catalog_strings_free(paths, n);
    log_info("database dropped", "database=%s files=%zu delete_failures=%zu", name, n, failed);
    len = snprintf(body, sizeof(body),
                   "{\"success\":true,\"database\":\"%s\",\"files_deleted\":%zu}", name,
                   n - failed);
    http_resp_json(resp, 200, body, (size_t)len);
}

static void h_db_measurements(struct http_req *req, struct http_resp *resp)
{
    const char *name = req->params[0];
    struct catalog_measurement *ms = NULL;
    struct errbuf eb;
    size_t n = 0, i;
    struct buf b;

    if (req->principal && !auth_principal_can_db(req->principal, name)) {
        http_resp_error(resp, 403, "Permission denied: token may not access database '%s'", name);
        return;
    }
    errbuf_init(&eb);
    if (catalog_measurements_list(req->app->catalog, name, &ms, &n, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"database\":");
    buf_append_json_str(&b, name, strlen(name));
    buf_append_str(&b, ",\"measurements\":[");
    for (i = 0; i < n; i++) {
        buf_printf(&b, "%s{\"name\":", i ? "," : "");
        buf_append_json_str(&b, ms[i].measurement, strlen(ms[i].measurement));
        buf_printf(&b, ",\"file_count\":%lld,\"row_count\":%lld,\"total_size_bytes\":%lld}",
                   (long long)ms[i].files, (long long)ms[i].rows, (long long)ms[i].bytes);
    }
    buf_printf(&b, "],\"count\":%zu}", n);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
    catalog_measurements_free(ms, n);
}

#define W HTTP_PERM_WRITE
#define R HTTP_PERM_READ
static const struct http_route write_routes[] = {
    /* line protocol: InfluxDB 1.x, 2.x and Arc's own path */
    {"POST", "/write", h_write_lp, 0, W},
    {"POST", "/api/v1/write", h_write_lp, 0, W},
    {"POST", "/api/v2/write", h_write_lp, 0, W},
    {"POST", "/api/v1/write/line-protocol", h_write_lp, 0, W},
    /* MessagePack: seed paths and Go Arc's */
    {"POST", "/write/v2/msgpack", h_write_msgpack, 0, W},
    {"POST", "/api/v2/msgpack", h_write_msgpack, 0, W},
    {"POST", "/api/v1/write/msgpack", h_write_msgpack, 0, W},
    {"GET", "/write/v2/msgpack/spec", h_msgpack_spec, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, 0},
    {"GET", "/api/v2/msgpack/spec", h_msgpack_spec, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, 0},
    {"GET", "/api/v1/write/msgpack/spec", h_msgpack_spec, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, 0},
    {"GET", "/write/v2/msgpack/stats", h_msgpack_stats, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    {"GET", "/api/v2/msgpack/stats", h_msgpack_stats, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    {"GET", "/api/v1/write/msgpack/stats", h_msgpack_stats, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB,
     R},
    /* JSON items */
    {"POST", "/api/v1/write/json", h_write_json, 0, W},
    {"POST", "/write/json", h_write_json, 0, W},
    /* flush, stats, health */
    {"POST", "/write/flush", h_flush, HTTP_ROUTE_NO_DB, W},
    {"POST", "/api/v1/write/flush", h_flush, HTTP_ROUTE_NO_DB, W},
    {"GET", "/write/stats", h_write_stats, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    {"GET", "/api/v1/write/stats", h_write_stats, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    {"GET", "/write/health", h_write_health, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    {"GET", "/api/v1/write/health", h_write_health, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, R},
    /* databases */
    {"GET", "/api/v1/databases", h_db_list, HTTP_ROUTE_NO_DB, R},
    {"POST", "/api/v1/databases", h_db_create, HTTP_ROUTE_NO_DB, W},
    {"DELETE", "/api/v1/databases/{name}", h_db_drop, HTTP_ROUTE_NO_DB, HTTP_PERM_ADMIN},
    {"GET", "/api/v1/databases/{name}/measurements", h_db_measurements, HTTP_ROUTE_NO_DB, R},
};
#undef W
#undef R

void routes_write_register(struct http_server *s)
{
    http_server_add_routes(s, write_routes, sizeof(write_routes) / sizeof(write_routes[0]));
}
