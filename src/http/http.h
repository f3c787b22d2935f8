/* http.h - the HTTP server: libmicrohttpd event loops, a router that serves both
 * path families, auth before dispatch, and a worker pool for blocking handlers.
 *
 * Threads: N event-loop threads (MHD thread pool) parse requests and run routes
 * flagged HTTP_ROUTE_INLINE (cheap, in-memory only). Every other handler runs on
 * the worker pool: the connection is suspended, the handler runs, and the
 * connection is resumed with the response. A handler is called exactly once per
 * request, with the whole (decompressed, capped) body.
 *
 * Handlers fill a struct http_resp with http_resp_*(); for large answers they call
 * http_resp_stream() and write into the returned fd from the worker thread (the
 * event loop reads the other end: constant memory, chunked encoding). */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct app;
struct http_server;
struct auth_principal;

enum http_route_flags {
    HTTP_ROUTE_PUBLIC = 1u << 0, /* no token needed (/, /health, ...) */
    HTTP_ROUTE_INLINE = 1u << 1, /* run on the event loop: must not block */
    HTTP_ROUTE_NO_DB = 1u << 2,  /* no database scope check for this route */
    HTTP_ROUTE_DB_IF_GIVEN = 1u << 3, /* check the scope only when the client named a
                                         database (the handler checks what it touches) */
};

/* Permission bits (auth module uses the same values). */
enum http_perm {
    HTTP_PERM_NONE = 0,
    HTTP_PERM_READ = 1u << 0,
    HTTP_PERM_WRITE = 1u << 1,
    HTTP_PERM_DELETE = 1u << 2,
    HTTP_PERM_ADMIN = 1u << 3,
};

#define HTTP_MAX_PATH_PARAMS 4

struct http_req {
    const char *method;                        /* "GET", "POST", ... */
    const char *path;                          /* decoded path, no query string */
    const char *route;                         /* the matched pattern, for metrics */
    const char *params[HTTP_MAX_PATH_PARAMS];  /* values of {name} segments, in order */
    size_t nparams;
    const char *body;                          /* request body, decompressed, NUL-terminated */
    size_t body_len;
    const char *database;                      /* x-arc-database, else db/bucket/database
                                                  query parameter, else "default" */
    const struct auth_principal *principal;    /* NULL when auth is off or route public */
    struct app *app;                           /* the server's application context */
    void *conn;                                /* internal: the MHD connection */
};

/* Headers and query parameters of the request; NULL if absent. Case-insensitive
 * header names. The strings live until the handler returns. */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_query(const struct http_req *r, const char *name);

struct http_resp_header {
    char *name, *value;
};

struct http_resp {
    int status;                 /* HTTP status, default 200 */
    char *content_type;         /* owned; NULL = none */
    struct buf body;            /* the answer, unless streamed */
    struct http_resp_header *headers; /* extra headers, owned */
    size_t nheaders;
    int stream_fd;              /* internal: read end when streaming, else -1 */
    bool compress_ok;           /* answer may be gzip/zstd-compressed per Accept-Encoding */
};

/* Set a JSON answer (copies json). */
void http_resp_json(struct http_resp *resp, int status, const char *json, size_t len);
/* Set an arbitrary answer (copies body). */
void http_resp_body(struct http_resp *resp, int status, const char *content_type,
                    const void *body, size_t len);
/* {"success":false,"error":"<message>"} with the status. */
void http_resp_error(struct http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Error answer whose status comes from the code (ERR_PARSE 400, ERR_LIMIT 413 ...). */
void http_resp_err(struct http_resp *resp, enum err code, const char *msg);
/* 204 No Content. */
void http_resp_no_content(struct http_resp *resp, int status);
/* Add a header (copied). */
void http_resp_header(struct http_resp *resp, const char *name, const char *value);
/* Begin a streamed answer: returns the fd to write the body into (blocking writes;
 * close it when done). EPIPE on write means the client went away: stop. Only from
 * worker-pool handlers. Returns -1 on failure (resp then holds a 500). */
int http_resp_stream(struct http_resp *resp, int status, const char *content_type);

/* Map an error code to an HTTP status. */
int http_status_for_err(enum err code);

typedef void http_handler_fn(struct http_req *req, struct http_resp *resp);

struct http_route {
    const char *method;  /* "GET", "POST", "PATCH", "PUT", "DELETE" */
    const char *pattern; /* "/api/v1/auth/tokens/{id}": {x} matches one segment */
    http_handler_fn *fn;
    unsigned flags;      /* enum http_route_flags */
    unsigned perm;       /* enum http_perm needed (any of the bits), 0 for none */
};

struct http_server_opts {
    const char *host;              /* bind address, e.g. "0.0.0.0" or "127.0.0.1" */
    int port;                      /* 0 = pick a free port (see http_server_port) */
    unsigned event_threads;        /* event-loop threads (>= 1) */
    unsigned worker_threads;       /* blocking-handler pool threads (>= 1) */
    size_t max_body_bytes;         /* request body cap on the wire (413 past it) */
    size_t max_decompressed_bytes; /* cap after gzip/zstd decoding (413 past it) */
    unsigned idle_timeout_s;       /* close a connection with no traffic for this long */
    unsigned header_timeout_s;     /* a request head must arrive within this (0 = 10 s) */
    unsigned max_connections;
    const char *cors_origins;      /* "*" or comma list; "" disables CORS */
    bool access_log;
    bool public_metrics;           /* /metrics without a token */
    bool auth_enabled;
};

/* Create a server (not yet listening). app is borrowed for the server's life. */
struct http_server *http_server_new(struct app *app, const struct http_server_opts *o);
/* Start listening. ERR_IO with the reason (e.g. port in use) on failure. */
enum err http_server_start(struct http_server *s, struct errbuf *eb);
/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stop accepting new connections; in-flight requests continue. */
void http_server_quiesce(struct http_server *s);
/* Wait until no request is in flight or timeout_ms passes. true if drained. */
bool http_server_drain(struct http_server *s, int timeout_ms);
/* Stop the event loops and worker pool, close connections, free s. Accepts NULL. */
void http_server_free(struct http_server *s);

/* Register routes (the array must outlive the server). Call before http_server_start. */
void http_server_add_routes(struct http_server *s, const struct http_route *routes, size_t n);

/* Append a human-readable list of registered endpoints as a JSON array to b. */
void http_server_list_routes(struct http_server *s, struct buf *b);

#endif
