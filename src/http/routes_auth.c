/* routes_auth.c - token endpoints under /auth/... (seed) and /api/v1/auth/... (Go).
 *
 * Thin HTTP adapters over auth.h: parse the JSON body with jansson, call the auth
 * module, answer JSON. The router has already authenticated the caller and
 * checked the route's permission (admin for everything but verify), so handlers
 * only validate input. verify reads only the principal and runs inline on the
 * event loop; the others touch SQLite and run on the worker pool. A secret
 * appears in an answer only from create and rotate, and never in a listing.
 * {id} may be a numeric id or a token name. */
#include "http/routes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth/auth.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/mem.h"
#include "http/http.h"

void routes_auth_register(struct http_server *s);

static const char created_msg[] = "Token created. Store it now: it cannot be shown again.";

/* The auth module, or NULL after answering 400 (auth disabled). */
static struct auth *need_auth(struct http_req *req, struct http_resp *resp)
{
    if (!req->app || !req->app->auth) {
        http_resp_error(resp, 400, "Token management is unavailable: authentication is disabled");
        return NULL;
    }
    return req->app->auth;
}

/* Parse the body as a JSON object; NULL after answering 400. */
static json_t *body_object(struct http_req *req, struct http_resp *resp)
{
    json_error_t jerr;
    json_t *root;

    if (!req->body || req->body_len == 0) {
        http_resp_error(resp, 400, "request body must be a JSON object");
        return NULL;
    }
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        http_resp_error(resp, 400, "invalid JSON at line %d, column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        http_resp_error(resp, 400, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Optional string member: ERR_OK with *out NULL when absent or null. */
static enum err opt_string(json_t *obj, const char *key, const char **out, struct errbuf *eb)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return ERR_OK;
    if (!json_is_string(v))
        return errbuf_set(eb, ERR_INVAL, "%s: must be a string", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return errbuf_set(eb, ERR_INVAL, "%s: must not contain NUL characters", key);
    *out = json_string_value(v);
    return ERR_OK;
}

/* "permissions": ["read","write"] or "read,write". */
static enum err parse_perms(json_t *v, unsigned *out, struct errbuf *eb)
{
    unsigned perms = 0, bit;
    enum err rc;
    size_t i;

    if (json_is_string(v))
        return auth_perms_parse(json_string_value(v), out, eb);
    if (!json_is_array(v))
        return errbuf_set(eb, ERR_INVAL,
                          "permissions: expected an array like [\"read\",\"write\"] or a "
                          "string like \"read,write\"");
    if (json_array_size(v) > 16)
        return errbuf_set(eb, ERR_INVAL, "permissions: too many entries");
    for (i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return errbuf_set(eb, ERR_INVAL, "permissions: entry %zu is not a string", i);
        rc = auth_perm_parse_name(json_string_value(e), json_string_length(e), &bit, eb);
        if (rc != ERR_OK)
            return rc;
        perms |= bit;
    }
    if (perms == 0)
        return errbuf_set(eb, ERR_INVAL, "permissions: empty list");
    *out = perms;
    return ERR_OK;
}

/* "databases": ["a","b"] or "a,b"; *out is a new array of new strings
 * (auth_string_list_free). The names themselves are checked by auth. */
static enum err parse_databases(json_t *v, char ***out, size_t *n_out, struct errbuf *eb)
{
    size_t i, n;
    char **dbs;

    if (json_is_string(v))
        return auth_databases_parse(json_string_value(v), out, n_out, eb);
    if (!json_is_array(v))
        return errbuf_set(eb, ERR_INVAL,
                          "databases: expected an array of database names, or null for all");
    n = json_array_size(v);
    if (n == 0)
        return errbuf_set(eb, ERR_INVAL,
                          "databases: empty list (use null or omit it to allow all databases)");
    if (n > ARC_MAX_TOKEN_DATABASES)
        return errbuf_set(eb, ERR_INVAL, "databases: more than %d entries",
                          ARC_MAX_TOKEN_DATABASES);
    for (i = 0; i < n; i++)
        if (!json_is_string(json_array_get(v, i)))
            return errbuf_set(eb, ERR_INVAL, "databases: entry %zu is not a string", i);
    dbs = xcalloc(n, sizeof(*dbs));
    for (i = 0; i < n; i++)
        dbs[i] = xstrdup(json_string_value(json_array_get(v, i)));
    *out = dbs;
    *n_out = n;
    return ERR_OK;
}

/* "expires_in" (duration or RFC 3339) or "expires_at" (RFC 3339). *set says
 * whether either key was present; null means never. */
static enum err parse_expiry(json_t *obj, bool *set, int64_t *out, struct errbuf *eb)
{
    static const char *const keys[] = {"expires_in", "expires_at"};
    json_t *v;
    size_t i;

    *set = false;
    *out = 0;
    for (i = 0; i < 2; i++) {
        v = json_object_get(obj, keys[i]);
        if (!v)
            continue;
        *set = true;
        if (json_is_null(v))
            return ERR_OK;
        if (!json_is_string(v))
            return errbuf_set(eb, ERR_INVAL, "%s: expected a string like \"7d\" or an RFC 3339 "
                                             "time",
                              keys[i]);
        return auth_expiry_parse(json_string_value(v), clock_now_us(), out, eb);
    }
    return ERR_OK;
}

static void answer_err(struct http_resp *resp, enum err rc, const struct errbuf *eb)
{
    http_resp_err(resp, rc, eb->msg[0] ? eb->msg : err_name(rc));
}

/* Answer {"success":true,"token":{info}} for ref. */
static void answer_info(struct http_resp *resp, struct auth *a, const char *ref, int status)
{
    struct auth_token_info info;
    struct errbuf eb;
    struct buf b;
    enum err rc;

    errbuf_init(&eb);
    rc = auth_token_get(a, ref, &info, &eb);
    if (rc != ERR_OK) {
        answer_err(resp, rc, &eb);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"token\":");
    auth_token_info_json(&info, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, status, b.data, b.len);
    buf_release(&b);
    auth_token_info_release(&info);
}

/* ---- handlers ------------------------------------------------------------- */

static void h_verify(struct http_req *req, struct http_resp *resp)
{
    static const char no_auth[] =
        "{\"success\":true,\"valid\":true,\"auth_enabled\":false,\"token_info\":null}";
    struct buf b;

    if (!req->principal) {
        http_resp_json(resp, 200, no_auth, sizeof(no_auth) - 1);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"valid\":true,\"token_info\":");
    auth_principal_json(req->principal, &b);
    buf_append_char(&b, '}');
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
}

static void h_list(struct http_req *req, struct http_resp *resp)
{
    struct auth *a = need_auth(req, resp);
    struct auth_token_info *v = NULL;
    struct errbuf eb;
    struct buf b;
    size_t n = 0, i;
    enum err rc;

    if (!a)
        return;
    errbuf_init(&eb);
    rc = auth_token_list(a, &v, &n, &eb);
    if (rc != ERR_OK) {
        answer_err(resp, rc, &eb);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"tokens\":[");
    for (i = 0; i < n; i++) {
        if (i)
            buf_append_char(&b, ',');
        auth_token_info_json(&v[i], &b);
    }
    buf_printf(&b, "],\"count\":%zu}", n);
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
    auth_token_info_list_free(v, n);
}

static void h_create(struct http_req *req, struct http_resp *resp)
{
    struct auth *a = need_auth(req, resp);
    struct auth_token_spec spec = {0};
    char **dbs = NULL, *token = NULL;
    size_t ndbs = 0;
    struct errbuf eb;
    struct buf b;
    json_t *root, *v;
    int64_t id = 0;
    bool exp_set;
    enum err rc;

    if (!a || !(root = body_object(req, resp)))
        return;
    errbuf_init(&eb);
    rc = opt_string(root, "name", &spec.name, &eb);
    if (rc == ERR_OK && !spec.name)
        rc = errbuf_set(&eb, ERR_INVAL, "name: required");
    if (rc == ERR_OK)
        rc = opt_string(root, "description", &spec.description, &eb);
    if (rc == ERR_OK && (v = json_object_get(root, "permissions")) && !json_is_null(v))
        rc = parse_perms(v, &spec.perms, &eb);
    if (rc == ERR_OK && (v = json_object_get(root, "databases")) && !json_is_null(v))
        rc = parse_databases(v, &dbs, &ndbs, &eb);
    if (rc == ERR_OK)
        rc = parse_expiry(root, &exp_set, &spec.expires_at_us, &eb);
    if (rc == ERR_OK) {
        spec.databases = (const char *const *)dbs;
        spec.ndatabases = ndbs;
        rc = auth_token_create(a, &spec, &token, &id, &eb);
    }
    if (rc != ERR_OK) {
        answer_err(resp, rc, &eb);
        goto out;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"token\":");
    buf_append_json_str(&b, token, strlen(token));
    buf_printf(&b, ",\"id\":%lld,\"name\":", (long long)id);
    buf_append_json_str(&b, spec.name, strlen(spec.name));
    buf_printf(&b, ",\"message\":\"%s\"}", created_msg);
    http_resp_json(resp, 201, b.data, b.len);
    buf_release(&b);
    free(token);
out:
    auth_string_list_free(dbs, ndbs);
    json_decref(root);
}

static void h_get(struct http_req *req, struct http_resp *resp)
{
    struct auth *a = need_auth(req, resp);

    if (a)
        answer_info(resp, a, req->params[0], 200);
}

static void h_update(struct http_req *req, struct http_resp *resp)
{
    struct auth *a = need_auth(req, resp);
    struct auth_token_update u = {0};
    struct auth_token_info cur;
    char **dbs = NULL;
    size_t ndbs = 0;
    char idbuf[32];
    struct errbuf eb;
    json_t *root, *v;
    enum err rc;

    if (!a || !(root = body_object(req, resp)))
        return;
    errbuf_init(&eb);
    rc = opt_string(root, "name", &u.name, &eb);
    if (rc == ERR_OK)
        rc = opt_string(root, "description", &u.description, &eb);
    if (rc == ERR_OK && (v = json_object_get(root, "permissions")) && !json_is_null(v)) {
        u.set_perms = true;
        rc = parse_perms(v, &u.perms, &eb);
    }
    if (rc == ERR_OK && (v = json_object_get(root, "databases"))) {
        u.set_databases = true; /* null: all databases */
        if (!json_is_null(v))
            rc = parse_databases(v, &dbs, &ndbs, &eb);
        u.databases = (const char *const *)dbs;
        u.ndatabases = ndbs;
    }
    if (rc == ERR_OK && (v = json_object_get(root, "enabled"))) {
        if (!json_is_boolean(v))
            rc = errbuf_set(&eb, ERR_INVAL, "enabled: must be true or false");
        u.set_enabled = true;
        u.enabled = json_is_true(v);
    }
    if (rc == ERR_OK)
        rc = parse_expiry(root, &u.set_expires, &u.expires_at_us, &eb);
    /* Resolve {id} first so the answer can find the token even after a rename. */
    if (rc == ERR_OK)
        rc = auth_token_get(a, req->params[0], &cur, &eb);
    if (rc == ERR_OK) {
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)cur.id);
        auth_token_info_release(&cur);
        rc = auth_token_update(a, idbuf, &u, &eb);
    }
    if (rc != ERR_OK)
        answer_err(resp, rc, &eb);
    else
        answer_info(resp, a, idbuf, 200);
    auth_string_list_free(dbs, ndbs);
    json_decref(root);
}

static void h_delete(struct http_req *req, struct http_resp *resp)
{
    static const char ok[] = "{\"success\":true,\"message\":\"Token deleted\"}";
    struct auth *a = need_auth(req, resp);
    struct errbuf eb;
    enum err rc;

    if (!a)
        return;
    errbuf_init(&eb);
    rc = auth_token_delete(a, req->params[0], &eb);
    if (rc != ERR_OK)
        answer_err(resp, rc, &eb);
    else
        http_resp_json(resp, 200, ok, sizeof(ok) - 1);
}

static void h_rotate(struct http_req *req, struct http_resp *resp)
{
    struct auth *a = need_auth(req, resp);
    char *token = NULL;
    struct errbuf eb;
    struct buf b;
    enum err rc;

    if (!a)
        return;
    errbuf_init(&eb);
    rc = auth_token_rotate(a, req->params[0], &token, &eb);
    if (rc != ERR_OK) {
        answer_err(resp, rc, &eb);
        return;
    }
    buf_init(&b, 0);
    buf_append_str(&b, "{\"success\":true,\"token\":");
    buf_append_json_str(&b, token, strlen(token));
    buf_append_str(&b, ",\"message\":\"Token rotated: the old secret no longer works. Store "
                       "the new one now: it cannot be shown again.\"}");
    http_resp_json(resp, 200, b.data, b.len);
    buf_release(&b);
    free(token);
}

/* ---- table ---------------------------------------------------------------- */

#define ADMIN_ROUTE(method, path, fn) {method, path, fn, HTTP_ROUTE_NO_DB, HTTP_PERM_ADMIN}
#define AUTH_ROUTES(prefix)                                                                        \
    {"GET", prefix "/verify", h_verify, HTTP_ROUTE_NO_DB | HTTP_ROUTE_INLINE, 0},                  \
        ADMIN_ROUTE("GET", prefix "/tokens", h_list),                                              \
        ADMIN_ROUTE("POST", prefix "/tokens", h_create),                                           \
        ADMIN_ROUTE("GET", prefix "/tokens/{id}", h_get),                                          \
        ADMIN_ROUTE("PATCH", prefix "/tokens/{id}", h_update),                                     \
        ADMIN_ROUTE("PUT", prefix "/tokens/{id}", h_update),                                       \
        ADMIN_ROUTE("DELETE", prefix "/tokens/{id}", h_delete),                                    \
        ADMIN_ROUTE("POST", prefix "/tokens/{id}/rotate", h_rotate)

static const struct http_route auth_routes[] = {
    AUTH_ROUTES("/api/v1/auth"),
    AUTH_ROUTES("/auth"),
};

void routes_auth_register(struct http_server *s)
{
    http_server_add_routes(s, auth_routes, sizeof(auth_routes) / sizeof(auth_routes[0]));
}
