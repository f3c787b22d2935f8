/* routes_maint.c - compaction endpoints, under /api/compaction/... (seed) and
 * /api/v1/compaction/...: status, stats, candidates (read), trigger (admin: one
 * pass now, answered when it ends). Without a compactor (s3 backend) they say so. */
#include "http/routes.h"

#include <string.h>

#include "app.h"
#include "core/buf.h"
#include "http/http.h"
#include "maint/compact.h"

static bool have(struct http_req *req, struct http_resp *resp)
{
    static const char off[] = "{\"success\":true,\"enabled\":false,\"message\":\"compaction runs "
                              "only with local storage\"}";
    if (req->app->compactor)
        return true;
    http_resp_json(resp, 200, off, sizeof(off) - 1);
    return false;
}

static void h_status(struct http_req *req, struct http_resp *resp)
{
    struct buf b;

    if (!have(req, resp))
        return;
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,");
    compactor_status_json(req->app->compactor, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_candidates(struct http_req *req, struct http_resp *resp)
{
    struct errbuf eb;
    struct buf b;

    if (!have(req, resp))
        return;
    errbuf_init(&eb);
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,");
    if (compactor_candidates_json(req->app->compactor, &b, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
    } else {
        buf_append_char(&b, '}');
        http_resp_json(resp, 200, b.data, b.len);
    }
    buf_release(&b);
}

static void h_trigger(struct http_req *req, struct http_resp *resp)
{
    struct compact_pass r;
    struct errbuf eb;
    struct buf b;

    if (!have(req, resp))
        return;
    errbuf_init(&eb);
    if (compactor_run(req->app->compactor, &r, &eb) != ERR_OK) {
        http_resp_err(resp, eb.code, eb.msg);
        return;
    }
    buf_init(&b, 0);
    buf_printf(&b,
               "{\"success\":true,\"partitions\":%zu,\"jobs\":%zu,\"jobs_failed\":%zu,"
               "\"files_in\":%zu,\"files_out\":%zu,\"rows\":%llu,\"seconds\":%.3f}",
               r.partitions, r.jobs_ok, r.jobs_failed, r.files_in, r.files_out,
               (unsigned long long)r.rows, r.seconds);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

#define RO (HTTP_ROUTE_NO_DB)
static const struct http_route maint_routes[] = {
    {"GET", "/api/compaction/status", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/compaction/stats", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/compaction/candidates", h_candidates, RO, HTTP_PERM_READ},
    {"POST", "/api/compaction/trigger", h_trigger, RO, HTTP_PERM_ADMIN},
    {"GET", "/api/v1/compaction/status", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/v1/compaction/stats", h_status, RO, HTTP_PERM_READ},
    {"GET", "/api/v1/compaction/candidates", h_candidates, RO, HTTP_PERM_READ},
    {"POST", "/api/v1/compaction/trigger", h_trigger, RO, HTTP_PERM_ADMIN},
};
#undef RO

void routes_maint_register(struct http_server *s)
{
    http_server_add_routes(s, maint_routes, sizeof(maint_routes) / sizeof(maint_routes[0]));
}
