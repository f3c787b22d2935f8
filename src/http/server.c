/* server.c - libmicrohttpd integration: request state machine, router, auth
 * check, body caps and decoding, worker-pool dispatch and response sending.
 *
 * One MHD daemon runs N epoll event-loop threads (MHD thread pool). For each
 * request the access handler is called several times:
 *   1st call   headers only: match the route, check auth, reject an announced
 *              body over the cap (413) before reading any of it;
 *   body calls append to a capped buffer (past the cap the rest is discarded and
 *              the request ends in 413: memory never exceeds the cap);
 *   last call  decode gzip/zstd (capped), then run the handler: inline routes
 *              right here, others on the worker pool with the connection
 *              suspended (MHD_suspend_connection); the worker resumes it and the
 *              next call queues the response.
 * Streamed answers use a pipe: the worker writes, the event loop reads the other
 * end (MHD_create_response_from_pipe), so memory stays constant.
 * Design choice: per-request state (struct reqctx) is freed only in the
 * request-completed callback, never inside the access handler. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "auth/auth.h"
#include "core/clock.h"
#include "core/compress.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/workpool.h"

#define MAX_ROUTE_TABLES 32
#define MAX_STATUS 600

struct route_stats {
    /* lazily created counters, index = status; two threads may create the same one
     * (get-or-create returns the same series), so the slots are atomic */
    _Atomic(struct metric *) by_status[MAX_STATUS];
    struct metric *latency;               /* request duration histogram (seconds) */
};

struct route_entry {
    const struct http_route *r;
    struct route_stats *stats;
};

/* Per-connection bookkeeping for the header deadline (slow-loris defence).
 * MHD has only an inactivity timeout, so a client trickling one byte a second
 * would hold a connection forever; the reaper thread closes connections whose
 * request head has been arriving for longer than header_timeout. "Arriving" is
 * read from the kernel's byte counter (TCP_INFO): a quiet keep-alive connection
 * is left to the idle timeout. */
struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    _Atomic bool in_request;      /* between the head and the request's completion */
    _Atomic uint64_t baseline;    /* tcpi_bytes_received when the last request ended */
    _Atomic unsigned epoch;       /* bumped when a request ends */
    unsigned seen_epoch;          /* reaper-only */
    int64_t head_started_ns;      /* reaper-only: first byte of a new head seen, 0 = none */
    bool shut;                    /* reaper-only: shutdown() already sent */
};

struct http_server {
    struct app *app;
    pthread_mutex_t conns_lock;   /* guards the conn_track list (and its fds) */
    struct conn_track *conns;
    pthread_t reaper;
    bool reaper_started;
    _Atomic bool reaper_stop;
    struct http_server_opts o;
    char *host, *cors;                    /* owned copies of the option strings */
    struct MHD_Daemon *d;
    struct workpool *pool;
    struct route_entry *routes;
    size_t nroutes, routes_cap;
    struct route_stats unmatched;         /* 404/405/OPTIONS/early MHD errors */
    _Atomic int inflight;                 /* requests begun, not completed */
    struct metric *m_open_conns, *m_bytes_in, *m_bytes_out, *m_rejected_busy, *m_header_timeouts;
    int port;
};

enum reqstate { ST_READING = 0, ST_RUNNING, ST_DONE, ST_QUEUED };

struct reqctx {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const struct route_entry *route;
    enum reqstate state;
    int early_status;         /* nonzero: answer this error once the body is read */
    bool too_large;           /* body passed the cap: discard the rest */
    struct buf body;          /* raw body as received (capped) */
    struct buf decoded;       /* body after gzip/zstd decoding (capped) */
    struct http_req req;
    struct http_resp resp;
    char *path;               /* owned normalised path */
    char *database;           /* owned copy: never keep MHD's header strings */
    bool database_given;      /* the client named it (header or parameter) */
    struct auth_principal *principal;
    int64_t t0_ns;
    size_t bytes_in;
    int status_sent;
    bool *streamed_flag;      /* worker-local flag set by http_resp_stream */
    char *scratch;            /* owned storage for path parameter values */
};

static uint64_t bytes_received(int fd);

static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,   5,    10, 30};

/* ---------------------------------------------------------------- responses */

static void resp_release(struct http_resp *resp)
{
    size_t i;

    free(resp->content_type);
    buf_release(&resp->body);
    for (i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    if (resp->stream_fd >= 0)
        close(resp->stream_fd);
    memset(resp, 0, sizeof(*resp));
    resp->stream_fd = -1;
}

/* ------------------------------------------------------------------ requests */

const char *http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

/* ------------------------------------------------------------------- router */

void http_server_add_routes(struct http_server *s, const struct http_route *routes, size_t n)
{
    size_t i;
    char labels[512];

    for (i = 0; i < n; i++) {
        if (s->nroutes == s->routes_cap) {
            s->routes_cap = s->routes_cap ? s->routes_cap * 2 : 64;
            s->routes = xreallocarray(s->routes, s->routes_cap, sizeof(*s->routes));
        }
        s->routes[s->nroutes].r = &routes[i];
        s->routes[s->nroutes].stats = xcalloc(1, sizeof(struct route_stats));
        snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"", routes[i].method,
                 routes[i].pattern);
        s->routes[s->nroutes].stats->latency = metrics_histogram(
            s->app->metrics, "arc_http_request_duration_seconds", "HTTP request latency",
            labels, latency_bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0]));
        s->nroutes++;
    }
}

void http_server_list_routes(struct http_server *s, struct buf *b)
{
    size_t i;
    char line[512];

    buf_append_char(b, '[');
    for (i = 0; i < s->nroutes; i++) {
        snprintf(line, sizeof(line), "%s %s", s->routes[i].r->method, s->routes[i].r->pattern);
        if (i)
            buf_append_char(b, ',');
        buf_append_json_str(b, line, strlen(line));
    }
    buf_append_char(b, ']');
}

/* Match path against pattern; on success fill params (pointers into path_copy,
 * which is modified: '/' after a param becomes NUL). Segment-wise compare. */
static bool route_match(const char *pattern, const char *path, char *scratch, size_t scratch_len,
                        const char **params, size_t *nparams)
{
    const char *p = pattern, *q = path;
    size_t n = 0, used = 0;

    while (*p && *q) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *qe = strchr(q, '/');
            size_t len;
            if (!pe)
                return false;
            if (!qe)
                qe = q + strlen(q);
            len = (size_t)(qe - q);
            if (len == 0 || n >= HTTP_MAX_PATH_PARAMS || used + len + 1 > scratch_len)
                return false;
            memcpy(scratch + used, q, len);
            scratch[used + len] = '\0';
            params[n++] = scratch + used;
            used += len + 1;
            p = pe + 1;
            q = qe;
            continue;
        }
        if (*p != *q)
            return false;
        p++;
        q++;
    }
    if (*p || *q)
        return false;
    *nparams = n;
    return true;
}

/* Find the route for method + path. *path_exists tells 405 from 404. */
static const struct route_entry *route_find(struct http_server *s, const char *method,
                                            const char *path, char *scratch, size_t scratch_len,
                                            const char **params, size_t *nparams,
                                            bool *path_exists)
{
    size_t i;
    bool head = strcmp(method, "HEAD") == 0;

    *path_exists = false;
    for (i = 0; i < s->nroutes; i++) {
        const struct http_route *r = s->routes[i].r;
        if (!route_match(r->pattern, path, scratch, scratch_len, params, nparams))
            continue;
        *path_exists = true;
        if (strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0))
            return &s->routes[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------- auth */

/* Credentials in the order InfluxDB and Arc clients send them. Returns a pointer
 * into tmp or into MHD's header storage; NULL if none. */
static const char *extract_token(struct MHD_Connection *c, char *tmp, size_t tmp_len)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *v;

    if (h) {
        while (*h == ' ')
            h++;
        if (!strncasecmp(h, "Bearer ", 7) || !strncasecmp(h, "Token ", 6)) {
            v = strchr(h, ' ');
            while (*v == ' ')
                v++;
            return *v ? v : NULL;
        }
        if (!strncasecmp(h, "Basic ", 6)) {
            char *pass = NULL;
            char *user = MHD_basic_auth_get_username_password(c, &pass);
            const char *out = NULL;
            if (pass && strlen(pass) < tmp_len) {
                snprintf(tmp, tmp_len, "%s", pass);
                out = tmp;
            }
            MHD_free(user);
            MHD_free(pass);
            return out;
        }
    }
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    if (v && *v)
        return v;
    v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "p");
    if (v && *v)
        return v;
    return NULL;
}

static const char *request_database(struct MHD_Connection *c, bool *given)
{
    static const char *const params[] = {"db", "bucket", "database"};
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-arc-database");
    size_t i;

    *given = true;
    if (v && *v)
        return v;
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, params[i]);
        if (v && *v)
            return v;
    }
    *given = false;
    return "default";
}

static const char *perm_name(unsigned perm)
{
    if (perm & HTTP_PERM_ADMIN)
        return "admin";
    if (perm & HTTP_PERM_DELETE)
        return "delete";
    if (perm & HTTP_PERM_WRITE)
        return "write";
    return "read";
}

/* Returns 0 when allowed, else the status to answer (message in msg). */
static int check_auth(struct http_server *s, struct reqctx *x, char *msg, size_t msg_len)
{
    const struct http_route *r = x->route->r;
    char tmp[512];
    const char *tok;
    struct errbuf eb;

    if (!s->o.auth_enabled || (r->flags & HTTP_ROUTE_PUBLIC))
        return 0;
    if (s->o.public_metrics && strcmp(r->pattern, "/metrics") == 0)
        return 0;
    tok = extract_token(x->conn, tmp, sizeof(tmp));
    if (!tok) {
        snprintf(msg, msg_len, "Authentication required");
        return 401;
    }
    errbuf_init(&eb);
    if (auth_check(s->app->auth, tok, &x->principal, &eb) != ERR_OK) {
        snprintf(msg, msg_len, "%s", eb.msg[0] ? eb.msg : "Invalid or expired token");
        return 401;
    }
    if (r->perm && !auth_principal_has(x->principal, r->perm)) {
        snprintf(msg, msg_len, "Permission denied: %s required", perm_name(r->perm));
        return 403;
    }
    if (!(r->flags & HTTP_ROUTE_NO_DB) &&
        (x->database_given || !(r->flags & HTTP_ROUTE_DB_IF_GIVEN)) &&
        !auth_principal_can_db(x->principal, x->database)) {
        snprintf(msg, msg_len, "Permission denied: token may not access database '%s'",
                 x->database);
        return 403;
    }
    return 0;
}

/* ----------------------------------------------------------- sending answers */

static bool cors_allowed(struct http_server *s, const char *origin)
{
    const char *p;
    size_t n;

    if (!origin || !s->cors || !*s->cors)
        return false;
    if (strcmp(s->cors, "*") == 0)
        return true;
    n = strlen(origin);
    for (p = s->cors; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        if (len == n && strncmp(p, origin, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static void add_cors(struct http_server *s, struct MHD_Connection *c, struct MHD_Response *r)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");

    if (!cors_allowed(s, origin))
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin",
                            strcmp(s->cors, "*") == 0 ? "*" : origin);
    MHD_add_response_header(r, "Access-Control-Expose-Headers",
                            "x-arc-profile, Retry-After, Content-Encoding");
    if (strcmp(s->cors, "*") != 0)
        MHD_add_response_header(r, "Vary", "Origin");
}

/* Pick a response encoding from Accept-Encoding (zstd preferred). */
static enum compress_kind accept_kind(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");

    if (!ae)
        return COMPRESS_NONE;
    if (strstr(ae, "zstd"))
        return COMPRESS_ZSTD;
    if (strstr(ae, "gzip"))
        return COMPRESS_GZIP;
    return COMPRESS_NONE;
}

static enum MHD_Result send_resp(struct reqctx *x)
{
    struct http_server *s = x->srv;
    struct http_resp *resp = &x->resp;
    struct MHD_Response *r;
    enum MHD_Result ret;
    enum compress_kind ck = COMPRESS_NONE;
    size_t i, len;
    char *data;

    if (resp->stream_fd >= 0) {
        r = MHD_create_response_from_pipe(resp->stream_fd);
        if (r)
            resp->stream_fd = -1; /* MHD owns it now; on failure resp_release closes
                                     it and the writer gets EPIPE instead of blocking */
    } else {
        if (resp->compress_ok && resp->body.len >= 1024)
            ck = accept_kind(x->conn);
        if (ck != COMPRESS_NONE) {
            struct buf z;
            buf_init(&z, 0);
            if (compress_deflate(ck, resp->body.data, resp->body.len, &z) == ERR_OK) {
                buf_release(&resp->body);
                resp->body = z;
            } else {
                buf_release(&z);
                ck = COMPRESS_NONE;
            }
        }
        data = buf_steal(&resp->body, &len);
        r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        metric_add(s->m_bytes_out, len);
    }
    if (!r)
        return MHD_NO;
    if (ck == COMPRESS_GZIP)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    else if (ck == COMPRESS_ZSTD)
        MHD_add_response_header(r, "Content-Encoding", "zstd");
    if (resp->content_type)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    for (i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    MHD_add_response_header(r, "X-Arc-Version", ARC_VERSION);
    add_cors(s, x->conn, r);
    if (s->app->stopping)
        MHD_add_response_header(r, "Connection", "close");
    x->status_sent = resp->status ? resp->status : 200;
    ret = MHD_queue_response(x->conn, (unsigned)x->status_sent, r);
    MHD_destroy_response(r);
    x->state = ST_QUEUED;
    return ret;
}

static enum MHD_Result send_error_now(struct reqctx *x, int status, const char *msg)
{
    http_resp_error(&x->resp, status, "%s", msg);
    return send_resp(x);
}

/* --------------------------------------------------------- worker dispatch */

static void run_job(void *arg)
{
    struct reqctx *x = arg;
    bool streamed = false;

    x->streamed_flag = &streamed;
    x->route->r->fn(&x->req, &x->resp);
    if (streamed)
        return; /* http_resp_stream resumed the connection; x may be gone */
    x->state = ST_DONE;
    MHD_resume_connection(x->conn);
}

int http_resp_stream(struct http_resp *resp, int status, const char *content_type)
{
    struct reqctx *x = (struct reqctx *)((char *)resp - offsetof(struct reqctx, resp));
    int fds[2];

    if (!x->streamed_flag) {
        http_resp_error(resp, 500, "streaming is only possible from worker handlers");
        return -1;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        http_resp_error(resp, 500, "pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    resp->status = status;
    free(resp->content_type);
    resp->content_type = content_type ? xstrdup(content_type) : NULL;
    resp->stream_fd = fds[0];
    *x->streamed_flag = true;
    x->streamed_flag = NULL;
    x->state = ST_DONE;
    MHD_resume_connection(x->conn); /* from here on x belongs to the event loop */
    return fds[1];
}

/* Body fully received: decode it and run the handler. */
static enum MHD_Result dispatch(struct reqctx *x)
{
    struct http_server *s = x->srv;
    const char *enc;
    enum compress_kind ck;
    struct errbuf eb;

    if (x->too_large) {
        return send_error_now(x, 413, "request body exceeds server.max_payload_mb");
    }

    enc = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "Content-Encoding");
    if (compress_kind_from_encoding(enc, &ck) != ERR_OK)
        return send_error_now(x, 415, "unsupported Content-Encoding");
    if (ck == COMPRESS_NONE)
        ck = compress_sniff(x->body.data, x->body.len);
    if (ck != COMPRESS_NONE) {
        errbuf_init(&eb);
        buf_init(&x->decoded, s->o.max_decompressed_bytes);
        if (compress_inflate(ck, x->body.data, x->body.len, s->o.max_decompressed_bytes,
                             &x->decoded, &eb) != ERR_OK) {
            buf_release(&x->decoded);
            return send_error_now(x, eb.code == ERR_LIMIT ? 413 : 400, eb.msg);
        }
        buf_release(&x->body);
        x->req.body = x->decoded.data ? x->decoded.data : "";
        x->req.body_len = x->decoded.len;
    } else {
        x->req.body = x->body.data ? x->body.data : "";
        x->req.body_len = x->body.len;
    }

    if (x->route->r->flags & HTTP_ROUTE_INLINE) {
        x->route->r->fn(&x->req, &x->resp);
        return send_resp(x);
    }
    x->state = ST_RUNNING;
    MHD_suspend_connection(x->conn);
    if (workpool_submit(s->pool, run_job, x) != ERR_OK) {
        MHD_resume_connection(x->conn);
        x->state = ST_DONE;
        metric_add(s->m_rejected_busy, 1);
        http_resp_error(&x->resp, 503, "server busy: worker queue full, retry later");
    }
    return MHD_YES;
}

static enum MHD_Result sum_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    size_t *n = cls;
    (void)kind;
    *n += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *s = cls;
    struct reqctx *x = *con_cls;
    char msg[ERRBUF_MSG_MAX];
    int st;
    (void)version;

    if (!x) {
        const char *cl;
        size_t n;
        bool path_exists;

        x = xcalloc(1, sizeof(*x));
        x->srv = s;
        x->conn = conn;
        x->t0_ns = clock_mono_ns();
        x->resp.stream_fd = -1;
        x->resp.status = 200;
        buf_init(&x->body, s->o.max_body_bytes);
        *con_cls = x;
        atomic_fetch_add(&s->inflight, 1);

        n = strlen(url);
        while (n > 1 && url[n - 1] == '/')
            n--; /* "/health/" routes as "/health" */
        x->path = xstrndup(url, n);
        x->database = xstrdup(request_database(conn, &x->database_given));
        {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
            struct conn_track *t = ci ? ci->socket_context : NULL;
            if (t)
                atomic_store(&t->in_request, true);
        }
        x->req.method = method;
        x->req.path = x->path;
        x->req.app = s->app;
        x->req.conn = conn;
        x->req.database = x->database;

        if (strcmp(method, "OPTIONS") == 0) {
            x->early_status = -204; /* CORS preflight, answered after the body */
            return MHD_YES;
        }
        {
            /* path parameters are copied into scratch owned by the context */
            char *scratch = xmalloc(n + HTTP_MAX_PATH_PARAMS + 1);
            x->route = route_find(s, method, x->path, scratch, n + HTTP_MAX_PATH_PARAMS + 1,
                                  x->req.params, &x->req.nparams, &path_exists);
            x->scratch = scratch;
        }
        if (!x->route) {
            st = path_exists ? 405 : 404;
            snprintf(msg, sizeof(msg), "%s %s: %s", method, x->path,
                     path_exists ? "method not allowed" : "no such endpoint");
            goto early;
        }
        x->req.route = x->route->r->pattern;
        {
            size_t head = strlen(url) + strlen(method) + 16;
            MHD_get_connection_values(conn, MHD_HEADER_KIND, sum_header_bytes, &head);
            if (head > ARC_MAX_HEADER_BYTES) {
                st = 431;
                snprintf(msg, sizeof(msg), "request headers of %zu bytes exceed the limit of %d",
                         head, ARC_MAX_HEADER_BYTES);
                goto early;
            }
        }
        st = check_auth(s, x, msg, sizeof(msg));
        if (st)
            goto early;
        x->req.principal = x->principal;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end == cl || *end != '\0') {
                st = 400;
                snprintf(msg, sizeof(msg), "invalid Content-Length");
                goto early;
            }
            if (v > s->o.max_body_bytes) {
                st = 413;
                snprintf(msg, sizeof(msg),
                         "request body of %llu bytes exceeds the limit of %zu bytes "
                         "(server.max_payload_mb)",
                         v, s->o.max_body_bytes);
                goto early;
            }
        }
        return MHD_YES;
    early:
        /* answer at once: the body (if any) is never read into memory */
        x->early_status = st;
        return send_error_now(x, st, msg);
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        x->bytes_in += n;
        if (x->state == ST_QUEUED || x->early_status > 0) {
            *upload_data_size = 0; /* already answered: discard */
            return MHD_YES;
        }
        if (!x->too_large && buf_append(&x->body, upload_data, n) != ERR_OK) {
            x->too_large = true;
            buf_release(&x->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    switch (x->state) {
    case ST_READING:
        metric_add(s->m_bytes_in, x->bytes_in);
        if (x->early_status == -204) {
            http_resp_no_content(&x->resp, 204);
            http_resp_header(&x->resp, "Access-Control-Allow-Methods",
                             "GET, POST, PUT, PATCH, DELETE, OPTIONS");
            http_resp_header(&x->resp, "Access-Control-Allow-Headers",
                             "Authorization, Content-Type, Content-Encoding, x-api-key, "
                             "x-arc-database, Accept-Encoding");
            http_resp_header(&x->resp, "Access-Control-Max-Age", "86400");
            return send_resp(x);
        }
        return dispatch(x);
    case ST_RUNNING:
        return MHD_YES; /* spurious call while suspended */
    case ST_DONE:
        return send_resp(x);
    case ST_QUEUED:
        return MHD_YES;
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct reqctx *x = *con_cls;
    struct route_stats *rs;
    double secs;
    int st;

    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        struct conn_track *t = ci ? ci->socket_context : NULL;
        if (t) {
            atomic_store(&t->baseline, bytes_received(t->fd));
            atomic_fetch_add(&t->epoch, 1);
            atomic_store(&t->in_request, false);
        }
    }
    if (!x)
        return;
    *con_cls = NULL;
    if (x->state == ST_RUNNING) {
        /* cannot happen: MHD does not complete suspended connections; keep the
         * context alive rather than free memory a worker still uses */
        log_error("request completed while its handler runs", "path=%s", x->path);
        return;
    }
    st = x->status_sent ? x->status_sent : 499; /* 499: client went away first */
    secs = (double)(clock_mono_ns() - x->t0_ns) / 1e9;
    rs = x->route ? x->route->stats : &s->unmatched;
    if (st > 0 && st < MAX_STATUS) {
        struct metric *c = atomic_load_explicit(&rs->by_status[st], memory_order_acquire);
        if (!c) {
            char labels[512];
            snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%d\"",
                     x->route ? x->route->r->method : "*",
                     x->route ? x->route->r->pattern : "unmatched", st);
            c = metrics_counter(s->app->metrics, "arc_http_requests_total",
                                "HTTP requests by route and status", labels);
            atomic_store_explicit(&rs->by_status[st], c, memory_order_release);
        }
        metric_add(c, 1);
    }
    if (rs->latency)
        metric_observe(rs->latency, secs);
    if (s->o.access_log)
        log_info("request", "method=%s path=%s status=%d dur_ms=%.3f bytes_in=%zu db=%s%s",
                 x->req.method ? x->req.method : "-", x->path ? x->path : "-", st, secs * 1e3,
                 x->bytes_in, x->database ? x->database : "-",
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    if (x->principal)
        auth_principal_release(x->principal);
    buf_release(&x->body);
    buf_release(&x->decoded);
    resp_release(&x->resp);
    free(x->path);
    free(x->database);
    free(x->scratch);
    free(x);
    atomic_fetch_sub(&s->inflight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    struct conn_track *t;

    metric_gauge_add(s->m_open_conns, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t = xcalloc(1, sizeof(*t));
        t->fd = ci ? ci->connect_fd : -1; /* baseline 0: a new connection has sent nothing */
        pthread_mutex_lock(&s->conns_lock);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        pthread_mutex_unlock(&s->conns_lock);
        *socket_ctx = t;
        return;
    }
    t = *socket_ctx;
    if (!t)
        return;
    /* MHD closes the fd after this callback: unlink first, so the reaper
     * never touches a closed (or reused) descriptor */
    pthread_mutex_lock(&s->conns_lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        s->conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&s->conns_lock);
    free(t);
    *socket_ctx = NULL;
}

static uint64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return ti.tcpi_bytes_received;
}

static void *reaper_main(void *arg)
{
    struct http_server *s = arg;
    struct conn_track *t;
    int64_t limit_ns = (int64_t)s->o.header_timeout_s * 1000000000;

    while (!atomic_load(&s->reaper_stop)) {
        int64_t now = clock_mono_ns();
        pthread_mutex_lock(&s->conns_lock);
        for (t = s->conns; t; t = t->next) {
            uint64_t got;
            if (t->shut || atomic_load(&t->in_request))
                continue;
            if (atomic_load(&t->epoch) != t->seen_epoch) {
                t->seen_epoch = atomic_load(&t->epoch);
                t->head_started_ns = 0;
            }
            got = bytes_received(t->fd);
            if (got <= atomic_load(&t->baseline))
                continue; /* quiet keep-alive: the idle timeout's business */
            if (!t->head_started_ns) {
                t->head_started_ns = now;
            } else if (now - t->head_started_ns > limit_ns) {
                /* MHD sees the shutdown as a closed peer and cleans up itself */
                shutdown(t->fd, SHUT_RDWR);
                t->shut = true;
                metric_add(s->m_header_timeouts, 1);
            }
        }
        pthread_mutex_unlock(&s->conns_lock);
        usleep(100000);
    }
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("microhttpd", "detail=\"%s\"", msg);
}

/* ---------------------------------------------------------------- lifecycle */

struct http_server *http_server_new(struct app *app, const struct http_server_opts *o)
{
    struct http_server *s = xcalloc(1, sizeof(*s));

    s->app = app;
    s->o = *o;
    s->host = xstrdup(o->host ? o->host : "0.0.0.0");
    s->cors = xstrdup(o->cors_origins ? o->cors_origins : "");
    s->o.host = s->host;
    s->o.cors_origins = s->cors;
    if (s->o.event_threads == 0)
        s->o.event_threads = 1;
    if (s->o.worker_threads == 0)
        s->o.worker_threads = 1;
    s->unmatched.latency = NULL;
    s->m_open_conns = metrics_gauge(app->metrics, "arc_http_open_connections",
                                    "Open HTTP connections", NULL);
    s->m_bytes_in = metrics_counter(app->metrics, "arc_http_request_bytes_total",
                                    "Request body bytes received", NULL);
    s->m_bytes_out = metrics_counter(app->metrics, "arc_http_response_bytes_total",
                                     "Response body bytes sent (buffered answers)", NULL);
    s->m_rejected_busy = metrics_counter(app->metrics, "arc_http_rejected_busy_total",
                                         "Requests answered 503 because the worker queue was full",
                                         NULL);
    s->m_header_timeouts = metrics_counter(app->metrics, "arc_http_header_timeouts_total",
                                           "Connections closed for sending a request head too "
                                           "slowly (server.header_timeout_seconds)",
                                           NULL);
    pthread_mutex_init(&s->conns_lock, NULL);
    if (s->o.header_timeout_s == 0)
        s->o.header_timeout_s = 10;
    return s;
}

enum err http_server_start(struct http_server *s, struct errbuf *eb)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    int lfd, one = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->o.port);
    if (inet_pton(AF_INET, s->host, &sa.sin_addr) != 1)
        return errbuf_set(eb, ERR_INVAL, "server.host: '%s' is not an IPv4 address", s->host);
    /* our own listening socket: SO_REUSEADDR only (restart while old
     * connections linger in TIME_WAIT), never SO_REUSEPORT, so a second server
     * on a taken port fails here instead of silently sharing it */
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0)
        return errbuf_set(eb, ERR_IO, "socket: %s", strerror(errno));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1024) != 0) {
        int e = errno;
        close(lfd);
        return errbuf_set(eb, ERR_IO, "cannot listen on %s:%d: %s", s->host, s->o.port,
                          strerror(e));
    }
    s->pool = workpool_new(s->o.worker_threads, 4096, "arc-worker");
    s->d = MHD_start_daemon(
        flags, (uint16_t)s->o.port, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_THREAD_POOL_SIZE, s->o.event_threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024, MHD_OPTION_CONNECTION_TIMEOUT,
        s->o.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, s->o.max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!s->d) {
        close(lfd);
        workpool_free(s->pool);
        s->pool = NULL;
        return errbuf_set(eb, ERR_IO, "cannot start the HTTP server on %s:%d", s->host,
                          s->o.port);
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->o.port;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        s->reaper_started = true;
    return ERR_OK;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_quiesce(struct http_server *s)
{
    MHD_socket fd;

    if (!s->d)
        return;
    fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

bool http_server_drain(struct http_server *s, int timeout_ms)
{
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;

    while (atomic_load(&s->inflight) > 0) {
        if (clock_mono_ns() > deadline)
            return false;
        usleep(5000);
    }
    return true;
}

void http_server_free(struct http_server *s)
{
    size_t i;

    if (!s)
        return;
    if (s->reaper_started) {
        atomic_store(&s->reaper_stop, true);
        pthread_join(s->reaper, NULL);
    }
    /* workers first: a handler still running must resume its connection on a live
     * daemon (MHD aborts when stopped with suspended connections) */
    workpool_free(s->pool);
    if (s->d)
        MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->conns_lock);
    for (i = 0; i < s->nroutes; i++)
        free(s->routes[i].stats);
    free(s->routes);
    free(s->host);
    free(s->cors);
    free(s);
}
