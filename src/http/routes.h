/* routes.h - every route table of the server; each feature registers its own. */
#ifndef HTTP_ROUTES_H
#define HTTP_ROUTES_H

struct http_server;

void routes_core_register(struct http_server *s);  /* /, /health, /ready, /ping, /metrics */
void routes_auth_register(struct http_server *s);  /* /auth/..., /api/v1/auth/... */
void routes_write_register(struct http_server *s); /* writes, flush, write stats, databases */
void routes_wal_register(struct http_server *s);
void routes_maint_register(struct http_server *s); /* /api/compaction/..., /api/v1/... */   /* /api/wal/..., /api/v1/wal/... */
void routes_query_register(struct http_server *s); /* /query..., /measurements */

#endif
