/* response.c - filling a struct http_resp: bodies, JSON error envelopes, extra
 * headers, and the one table that maps error codes to HTTP statuses. Handlers call
 * these from any thread; nothing here touches the connection (server.c sends). */
#include "http/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

void http_resp_body(struct http_resp *resp, int status, const char *content_type,
                    const void *body, size_t len)
{
    resp->status = status;
    free(resp->content_type);
    resp->content_type = content_type ? xstrdup(content_type) : NULL;
    buf_reset(&resp->body);
    if (len)
        buf_append(&resp->body, body, len);
}

void http_resp_json(struct http_resp *resp, int status, const char *json, size_t len)
{
    http_resp_body(resp, status, "application/json", json, len);
}

void http_resp_error(struct http_resp *resp, int status, const char *fmt, ...)
{
    char msg[ERRBUF_MSG_MAX];
    va_list ap;
    struct buf b;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":false,\"error\":");
    buf_append_json_str(&b, msg, strlen(msg));
    buf_append_char(&b, '}');
    http_resp_json(resp, status, b.data, b.len);
    buf_release(&b);
    if (status == 503 || status == 429)
        http_resp_header(resp, "Retry-After", "1");
}

void http_resp_err(struct http_resp *resp, enum err code, const char *msg)
{
    http_resp_error(resp, http_status_for_err(code), "%s", msg);
}

void http_resp_no_content(struct http_resp *resp, int status)
{
    http_resp_body(resp, status, NULL, NULL, 0);
}

void http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
    resp->headers = xreallocarray(resp->headers, resp->nheaders + 1, sizeof(*resp->headers));
    resp->headers[resp->nheaders].name = xstrdup(name);
    resp->headers[resp->nheaders].value = xstrdup(value);
    resp->nheaders++;
}

int http_status_for_err(enum err code)
{
    switch (code) {
    case ERR_OK: return 200;
    case ERR_PARSE: return 400;
    case ERR_INVAL: return 400;
    case ERR_LIMIT: return 413;
    case ERR_NOTFOUND: return 404;
    case ERR_AUTH: return 401;
    case ERR_PERM: return 403;
    case ERR_CONFLICT: return 409;
    case ERR_BUSY: return 503;
    case ERR_TOOMANY: return 429;
    case ERR_NOSPACE: return 507;
    case ERR_TIMEOUT: return 504;
    case ERR_IO:
    case ERR_DB:
    case ERR_CORRUPT:
    case ERR_INTERNAL: return 500;
    }
    return 500;
}

