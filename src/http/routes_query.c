/* routes_query.c - the query endpoints of both path families.
 *
 *   POST /query, /api/v1/query            {"sql", "format"?} -> json|csv|ndjson|arrow|msgpack
 *   POST /api/v1/query/arrow, /msgpack    the same, format fixed
 *   POST /query/stream, /api/v1/query/stream   streamed (chunked), constant memory
 *   POST /query/estimate, /api/v1/query/estimate   row estimate from EXPLAIN
 *   GET  /query/{m}, /api/v1/query/{m}    ?database=&limit=&offset=&order_by=&where=
 *   GET  /query/{m}/csv                   the same as CSV
 *   GET  /measurements, /api/v1/measurements
 *
 * Every handler runs on the worker pool. Routes are HTTP_ROUTE_NO_DB: a query
 * names its databases in SQL (FROM prod.cpu), so the engine checks each database
 * it touches against the token (query_req.can_db) instead of the server checking
 * only x-arc-database. Buffered answers may be compressed (Accept-Encoding);
 * streamed ones are written through the pipe of http_resp_stream() chunk by chunk,
 * and a failed write (client gone) cancels the query. The encoder call site is
 * encode_result(): one place for every format. */
#include "http/routes.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
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
    char v[160];

    snprintf(v, sizeof(v), "files=%zu;refs=%zu;buffered_rows=%zu;bounded_refs=%zu;ms=%.3f",
             p->files, p->refs, p->buffered_rows, p->bounded_refs, ms);
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

/* Run sql and answer in format f, buffered (stream = false) or streamed. */
static void run_query(struct http_req *req, struct http_resp *resp, const char *sql, size_t len,
                      enum enc_format f, bool stream)
{
    struct query_req qr;
    struct query *q = NULL;
    struct errbuf eb;
    struct enc_sink sink;
    enum err rc;
    int fd;

    errbuf_init(&eb);
    if (!req->app->query) {
        http_resp_error(resp, 503, "query engine not available");
        return;
    }
    fill_req(req, &qr, sql, len);
    rc = query_start(req->app->query, &qr, &q, &eb);
    if (rc) {
        http_resp_error(resp, query_http_status(rc), "%s", eb.msg);
        return;
    }
    if (stream) {
        profile_header(resp, q, elapsed_ms(q));
        fd = http_resp_stream(resp, 200, enc_format_content_type(f));
        if (fd < 0) {
            query_finish(q);
            return;
        }
        sink = enc_sink_fd(fd);
        rc = encode_result(q, f, &sink, &eb);
        if (rc && rc != ERR_IO)
            log_warn("streamed query failed mid-answer", "error=\"%s\"", eb.msg);
        close(fd);
        query_finish(q);
        return;
    }
    buf_reset(&resp->body);
    resp->body.max_bytes = RQ_MAX_BUFFERED_BYTES;
    sink = enc_sink_buf(&resp->body);
    rc = encode_result(q, f, &sink, &eb);
    profile_header(resp, q, elapsed_ms(q));
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
    resp->status = 200;
    free(resp->content_type);
    resp->content_type = xstrdup(enc_format_content_type(f));
    resp->compress_ok = true;
}

/* Parse {"sql": ..., "format": ...}; on failure fill resp and return NULL. */
static json_t *parse_body(struct http_req *req, struct http_resp *resp, const char **sql,
                          size_t *len, enum enc_format *f, bool format_fixed)
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
        if (!json_is_string(jf) || enc_format_parse(json_string_value(jf), f, &eb) != ERR_OK) {
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
    const char *sql;
    size_t len;
    json_t *root = parse_body(req, resp, &sql, &len, &f, fixed);

    if (!root)
        return;
    run_query(req, resp, sql, len, f, stream);
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
    enum enc_format f = ENC_JSON;
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
    run_query(req, resp, sql.data, sql.len, f, false);
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

#define R HTTP_PERM_READ
#define DBG HTTP_ROUTE_DB_IF_GIVEN
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
};
#undef R
#undef DBG

void routes_query_register(struct http_server *s)
{
    http_server_add_routes(s, query_routes, sizeof(query_routes) / sizeof(query_routes[0]));
}
