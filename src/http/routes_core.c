/* routes_core.c - the public endpoints: / (what this is), /health, /ready,
 * /ping (InfluxDB clients), /metrics (Prometheus). All run inline on the event
 * loop: they read only memory. */
#include "http/routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "http/http.h"

static void h_root(struct http_req *req, struct http_resp *resp)
{
    struct buf b;

    buf_init(&b, 0);
    buf_printf(&b, "{\"name\":\"Arc\",\"version\":\"%s\",\"description\":\"Time-series data "
                   "warehouse: InfluxDB line protocol and MessagePack in, Parquet on disk or "
                   "S3, SQL through DuckDB\",\"endpoints\":",
               ARC_VERSION);
    http_server_list_routes(req->app->http, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_health(struct http_req *req, struct http_resp *resp)
{
    char now[40], body[256];
    int64_t t = clock_now_us(), up = (t - req->app->start_us) / 1000000;
    int n;

    clock_format_rfc3339_us(t, now, sizeof(now));
    n = snprintf(body, sizeof(body),
                 "{\"status\":\"ok\",\"service\":\"arc\",\"version\":\"%s\",\"time\":\"%s\","
                 "\"uptime\":\"%llds\",\"uptime_sec\":%lld}",
                 ARC_VERSION, now, (long long)up, (long long)up);
    http_resp_json(resp, 200, body, (size_t)n);
}

static void h_ready(struct http_req *req, struct http_resp *resp)
{
    if (req->app->ready && !req->app->stopping) {
        static const char ok[] = "{\"status\":\"ready\"}";
        http_resp_json(resp, 200, ok, sizeof(ok) - 1);
    } else {
        http_resp_error(resp, 503, req->app->stopping ? "shutting down"
                                                      : "starting: recovery not finished");
    }
}

static void h_ping(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    http_resp_no_content(resp, 204);
    http_resp_header(resp, "X-Influxdb-Version", "1.8.10");
    http_resp_header(resp, "X-Influxdb-Build", "OSS");
}

static void h_metrics(struct http_req *req, struct http_resp *resp)
{
    struct buf b;

    buf_init(&b, 0);
    metrics_render(req->app->metrics, &b);
    http_resp_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    resp->compress_ok = true;
    buf_release(&b);
}

static const struct http_route core_routes[] = {
    {"GET", "/", h_root, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/health", h_health, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/api/v1/health", h_health, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/ready", h_ready, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/api/v1/ready", h_ready, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/ping", h_ping, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"POST", "/ping", h_ping, HTTP_ROUTE_PUBLIC | HTTP_ROUTE_INLINE, 0},
    {"GET", "/metrics", h_metrics, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_DB, HTTP_PERM_READ},
};

void routes_core_register(struct http_server *s)
{
    http_server_add_routes(s, core_routes, sizeof(core_routes) / sizeof(core_routes[0]));
}
