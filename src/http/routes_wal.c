/* routes_wal.c - write-ahead log status endpoints, under /api/wal/... (seed) and
 * /api/v1/wal/... . With the WAL off they answer {"enabled": false}. */
#include "http/routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "core/buf.h"
#include "http/http.h"
#include "ingest/pipeline.h"
#include "wal/wal.h"

static void wal_off(struct http_resp *resp)
{
    static const char off[] = "{\"success\":true,\"enabled\":false,\"message\":\"the write-ahead "
                              "log is disabled (wal.enabled = false)\"}";
    http_resp_json(resp, 200, off, sizeof(off) - 1);
}

static void stats_json(struct app *app, struct buf *b)
{
    struct wal_stats st;

    wal_get_stats(app->wal, &st);
    buf_printf(b,
               "\"enabled\":true,\"sync_mode\":\"%s\",\"dir\":", app->cfg->wal.sync_mode);
    buf_append_json_str(b, app->cfg->wal.dir, strlen(app->cfg->wal.dir));
    buf_printf(b,
               ",\"appends\":%llu,\"bytes\":%llu,\"syncs\":%llu,\"last_lsn\":%llu,"
               "\"durable_lsn\":%llu,\"checkpoint_lsn\":%llu,\"corrupt_records\":%llu,"
               "\"truncated_tails\":%llu,\"segments\":%zu,\"total_bytes\":%llu,"
               "\"preallocate\":%s,\"prealloc_bytes\":%llu,\"spare_bytes\":%llu,"
               "\"recycled\":%llu",
               (unsigned long long)st.appends, (unsigned long long)st.bytes,
               (unsigned long long)st.syncs, (unsigned long long)st.last_lsn,
               (unsigned long long)st.durable_lsn, (unsigned long long)st.checkpoint_lsn,
               (unsigned long long)st.corrupt_records, (unsigned long long)st.truncated_tails,
               st.segments, (unsigned long long)st.total_bytes,
               st.preallocate ? "true" : "false",
               (unsigned long long)st.prealloc_bytes, (unsigned long long)st.spare_bytes,
               (unsigned long long)st.recycled);
}

static void h_status(struct http_req *req, struct http_resp *resp)
{
    struct buf b;

    if (!req->app->wal) {
        wal_off(resp);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,");
    stats_json(req->app, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_files(struct http_req *req, struct http_resp *resp)
{
    struct buf b;

    if (!req->app->wal) {
        wal_off(resp);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"files\":");
    wal_files_json(req->app->wal, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_health(struct http_req *req, struct http_resp *resp)
{
    struct wal_stats st;
    char body[256];
    int n;

    if (!req->app->wal) {
        wal_off(resp);
        return;
    }
    wal_get_stats(req->app->wal, &st);
    n = snprintf(body, sizeof(body),
                 "{\"status\":\"%s\",\"last_lsn\":%llu,\"durable_lsn\":%llu,"
                 "\"corrupt_records\":%llu}",
                 st.corrupt_records ? "degraded" : "ok", (unsigned long long)st.last_lsn,
                 (unsigned long long)st.durable_lsn, (unsigned long long)st.corrupt_records);
    http_resp_json(resp, 200, body, (size_t)n);
}

/* Checkpoint now: delete every segment whose records are all in Parquet. */
static void h_cleanup(struct http_req *req, struct http_resp *resp)
{
    struct errbuf eb;
    struct wal_stats before, after;
    char body[256];
    int n;

    if (!req->app->wal) {
        wal_off(resp);
        return;
    }
    errbuf_init(&eb);
    wal_get_stats(req->app->wal, &before);
    if (ingest_pipeline_checkpoint(req->app->pipeline, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    wal_get_stats(req->app->wal, &after);
    n = snprintf(body, sizeof(body),
                 "{\"success\":true,\"segments_deleted\":%zu,\"checkpoint_lsn\":%llu}",
                 before.segments > after.segments ? before.segments - after.segments : 0,
                 (unsigned long long)after.checkpoint_lsn);
    http_resp_json(resp, 200, body, (size_t)n);
}

#define RO (HTTP_ROUTE_NO_DB)
static const struct http_route wal_routes[] = {
    {"GET", "/api/wal/status", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/wal/stats", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/wal/files", h_files, RO, HTTP_PERM_READ},
    {"GET", "/api/wal/health", h_health, RO, HTTP_PERM_READ},
    {"POST", "/api/wal/cleanup", h_cleanup, RO, HTTP_PERM_ADMIN},
    {"GET", "/api/v1/wal/status", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/v1/wal/stats", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/v1/wal/files", h_files, RO, HTTP_PERM_READ},
    {"GET", "/api/v1/wal/health", h_health, RO, HTTP_PERM_READ},
    {"POST", "/api/v1/wal/cleanup", h_cleanup, RO, HTTP_PERM_ADMIN},
};
#undef RO

void routes_wal_register(struct http_server *s)
{
    http_server_add_routes(s, wal_routes, sizeof(wal_routes) / sizeof(wal_routes[0]));
}
