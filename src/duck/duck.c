/* duck.c - the two DuckDB instances, their connection pools, and the query side.
 *
 * Arc runs two in-memory DuckDB databases in one process. The writer instance turns
 * column batches into Parquet (duck_parquet.c); it needs to write anywhere under the
 * storage root and never executes user SQL. The query instance executes user SQL, so
 * it is opened with external access off (only allowed_directories = the data
 * directory is readable), no extension autoload/autoinstall, and lock_configuration
 * set last, before any user connection exists, so no statement can SET any of it back. Keeping the
 * instances apart means no sandbox hole can ever reach the writer's file access, and a
 * runaway query cannot starve flushes of DuckDB memory or threads.
 *
 * Queries: one fresh connection per statement (connect is cheap next to any query and
 * makes statements independent: no shared transaction or temp state). Statements are
 * prepared (which also refuses multi-statement strings) and executed streaming, so a
 * large result is produced chunk by chunk as the caller encodes it. Only SELECT and
 * EXPLAIN statements run (checked after prepare), whatever the sandbox allows. Cancellation binds
 * the connection to a token under a mutex; duck_query_cancel() calls duckdb_interrupt
 * and sets a flag that every later exec/fetch checks, so a cancel that lands between
 * two DuckDB calls is not lost. */
#include "duck/duck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "duck/duck_int.h"

/* ---- helpers ------------------------------------------------------------------ */

enum err duck_sql_str(struct buf *b, const char *s, size_t n)
{
    enum err rc = buf_append_char(b, '\'');
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        if (s[i] == '\'')
            rc = buf_append_char(b, '\'');
        if (rc == ERR_OK)
            rc = buf_append_char(b, s[i]);
    }
    if (rc == ERR_OK)
        rc = buf_append_char(b, '\'');
    return rc;
}

enum err duck_sql_ident(struct buf *b, const char *s)
{
    enum err rc = buf_append_char(b, '"');
    for (; rc == ERR_OK && *s; s++) {
        if (*s == '"')
            rc = buf_append_char(b, '"');
        if (rc == ERR_OK)
            rc = buf_append_char(b, *s);
    }
    if (rc == ERR_OK)
        rc = buf_append_char(b, '"');
    return rc;
}

enum err duck_sql_str_append(struct buf *b, const char *s)
{
    return duck_sql_str(b, s, strlen(s));
}

enum err duck_sql_ident_append(struct buf *b, const char *s)
{
    return duck_sql_ident(b, s);
}

enum err duck_exec(duckdb_connection c, const char *sql, struct errbuf *eb)
{
    duckdb_result res;
    enum err rc = ERR_OK;

    if (duckdb_query(c, sql, &res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&res);
        rc = errbuf_set(eb, ERR_DB, "duckdb: %s", m ? m : "unknown error");
    }
    duckdb_destroy_result(&res);
    return rc;
}

const char *duck_version(void)
{
    return duckdb_library_version();
}

/* ---- open / close --------------------------------------------------------------- */

static enum err set_cfg(duckdb_config cfg, const char *name, const char *val, struct errbuf *eb)
{
    if (duckdb_set_config(cfg, name, val) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: cannot set %s=%s", name, val);
    return ERR_OK;
}

static enum err open_db(duckdb_config cfg, duckdb_database *out, const char *what,
                        struct errbuf *eb)
{
    char *err = NULL;

    if (duckdb_open_ext(":memory:", out, cfg, &err) != DuckDBSuccess) {
        errbuf_set(eb, ERR_DB, "duckdb: open %s instance: %s", what, err ? err : "?");
        duckdb_free(err);
        return ERR_DB;
    }
    return ERR_OK;
}

static enum err open_writer(struct duck *d, struct errbuf *eb)
{
    duckdb_config cfg = NULL;
    duckdb_connection c = NULL;
    enum err rc;

    if (duckdb_create_config(&cfg) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: create config");
    /* threads=1: no background workers; each COPY runs on its caller's (flusher)
     * thread, so concurrency = number of flusher threads, with no oversubscription. */
    if ((rc = set_cfg(cfg, "threads", "1", eb)) != ERR_OK ||
        (rc = set_cfg(cfg, "autoinstall_known_extensions", "false", eb)) != ERR_OK ||
        (rc = set_cfg(cfg, "autoload_known_extensions", "false", eb)) != ERR_OK)
        goto out_cfg;
    if ((rc = open_db(cfg, &d->wdb, "writer", eb)) != ERR_OK)
        goto out_cfg;
    if (duckdb_connect(d->wdb, &c) != DuckDBSuccess) {
        rc = errbuf_set(eb, ERR_DB, "duckdb: connect to writer instance");
        goto out_cfg;
    }
    rc = duck_parquet_register(d, c, eb);
    if (rc == ERR_OK)
        rc = duck_export_register(d, c, eb);
    if (rc == ERR_OK)
        duck_writer_conn_put(d, c);
    else
        duckdb_disconnect(&c);
out_cfg:
    duckdb_destroy_config(&cfg);
    return rc;
}

static enum err open_query(struct duck *d, const struct duck_opts *o, struct errbuf *eb)
{
    duckdb_config cfg = NULL;
    duckdb_connection c = NULL;
    struct buf sql, dir;
    char num[32];
    enum err rc;

    buf_init(&sql, 0);
    buf_init(&dir, 0);
    if (duckdb_create_config(&cfg) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: create config");
    if ((rc = set_cfg(cfg, "autoinstall_known_extensions", "false", eb)) != ERR_OK ||
        (rc = set_cfg(cfg, "autoload_known_extensions", "false", eb)) != ERR_OK ||
        (rc = set_cfg(cfg, "allow_community_extensions", "false", eb)) != ERR_OK)
        goto out;
    if (o->memory_limit && o->memory_limit[0]) {
        if ((rc = set_cfg(cfg, "memory_limit", o->memory_limit, eb)) != ERR_OK)
            goto out;
    } else if (o->memory_limit_bytes) {
        snprintf(num, sizeof(num), "%lluKiB",
                 (unsigned long long)((o->memory_limit_bytes + 1023) / 1024));
        if ((rc = set_cfg(cfg, "memory_limit", num, eb)) != ERR_OK)
            goto out;
    }
    if (o->query_threads) {
        snprintf(num, sizeof(num), "%u", o->query_threads);
        if ((rc = set_cfg(cfg, "threads", num, eb)) != ERR_OK)
            goto out;
    }
    if (o->temp_dir && (rc = set_cfg(cfg, "temp_directory", o->temp_dir, eb)) != ERR_OK)
        goto out;
    if ((rc = open_db(cfg, &d->qdb, "query", eb)) != ERR_OK)
        goto out;
    /* The file sandbox cannot go through duckdb_set_config in 1.4 (the list-valued
     * allowed_directories is refused there), so it is applied by SQL on a bootstrap
     * connection before any user connection exists, in the order DuckDB requires:
     * allowed_directories while access is still on, then access off, then the lock.
     * These are global settings: they bind every later connection. A trailing '/'
     * makes the prefix match whole directory names (/data/ does not admit /data2). */
    if (duckdb_connect(d->qdb, &c) != DuckDBSuccess) {
        rc = errbuf_set(eb, ERR_DB, "duckdb: connect to query instance");
        goto out;
    }
    buf_append(&dir, o->data_dir, strlen(o->data_dir));
    if (dir.data[dir.len - 1] != '/')
        buf_append_char(&dir, '/');
    buf_append_str(&sql, "SET GLOBAL allowed_directories = [");
    duck_sql_str(&sql, dir.data, dir.len);
    buf_append_str(&sql, "]");
    /* TimeZone UTC: TIMESTAMP vs TIMESTAMPTZ comparisons (now() - INTERVAL ...) and
     * time-bound evaluation then agree with the UTC `time` column. */
    if ((rc = duck_scan_register(d, c, eb)) != ERR_OK ||
        (rc = duck_exec(c, "SET GLOBAL TimeZone = 'UTC'", eb)) != ERR_OK ||
        /* Parquet files are immutable: keep their footers (schema, row-group
         * statistics) across queries instead of re-reading every file's footer at
         * every bind, the fixed cost that dominated small queries over many files */
        (rc = duck_exec(c, "SET GLOBAL parquet_metadata_cache = true", eb)) != ERR_OK ||
        (rc = duck_exec(c, sql.data, eb)) != ERR_OK ||
        (rc = duck_exec(c, "SET GLOBAL enable_external_access = false", eb)) != ERR_OK ||
        (rc = duck_exec(c, "SET GLOBAL lock_configuration = true", eb)) != ERR_OK)
        errbuf_prefix(eb, "sandbox the query instance");
    duckdb_disconnect(&c);
out:
    duckdb_destroy_config(&cfg);
    buf_release(&sql);
    buf_release(&dir);
    return rc;
}

#define QPOOL_MAX 64 /* idle query connections kept (see query_conn_get) */

enum err duck_open(const struct duck_opts *o, struct duck **out, struct errbuf *eb)
{
    struct duck *d;
    enum err rc;

    if (!o || !o->data_dir || !o->data_dir[0])
        return errbuf_set(eb, ERR_INVAL, "duck_open: data_dir is required");
    /* Relative paths would be resolved against whatever the cwd is when DuckDB
     * checks a file: the sandbox must not depend on it. */
    if (o->data_dir[0] != '/')
        return errbuf_set(eb, ERR_INVAL, "duck_open: data_dir must be an absolute path: %s",
                          o->data_dir);
    d = xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->pool_mu, NULL);
    d->qpool.max = QPOOL_MAX;
    pthread_mutex_init(&d->scan_mu, NULL);
    d->data_dir = xstrdup(o->data_dir);
    if ((rc = open_writer(d, eb)) != ERR_OK)
        goto fail_free;
    if ((rc = open_query(d, o, eb)) != ERR_OK)
        goto fail_free;
    *out = d;
    return ERR_OK;

fail_free:
    duck_close(d);
    return rc;
}

static void pool_close(struct duck_pool *p);

void duck_close(struct duck *d)
{
    if (!d)
        return;
    pool_close(&d->wpool);
    pool_close(&d->qpool);
    if (d->wdb)
        duckdb_close(&d->wdb);
    if (d->qdb)
        duckdb_close(&d->qdb);
    pthread_mutex_destroy(&d->pool_mu);
    pthread_mutex_destroy(&d->scan_mu);
    for (size_t i = 0; i < d->nscans; i++)
        free(d->scans[i].segs);
    free(d->scans);
    free(d->data_dir);
    free(d);
}

/* ---- connection pools ------------------------------------------------------------ */

static duckdb_connection pool_take(struct duck *d, struct duck_pool *p)
{
    duckdb_connection c = NULL;

    pthread_mutex_lock(&d->pool_mu);
    if (p->n > 0)
        c = p->conns[--p->n];
    pthread_mutex_unlock(&d->pool_mu);
    return c;
}

/* Keep c idle in p, or disconnect it when p holds its max already. */
static void pool_give(struct duck *d, struct duck_pool *p, duckdb_connection c)
{
    pthread_mutex_lock(&d->pool_mu);
    if (!p->max || p->n < p->max) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 8;
            p->conns = xreallocarray(p->conns, p->cap, sizeof(*p->conns));
        }
        p->conns[p->n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&d->pool_mu);
    if (c)
        duckdb_disconnect(&c);
}

static void pool_close(struct duck_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        duckdb_disconnect(&p->conns[i]);
    free(p->conns);
}

/* The writer pool only ever holds as many connections as there were concurrent
 * writers (flusher threads), so it needs no cap of its own. */
enum err duck_writer_conn_get(struct duck *d, duckdb_connection *out, struct errbuf *eb)
{
    duckdb_connection c = pool_take(d, &d->wpool);

    if (!c && duckdb_connect(d->wdb, &c) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: connect to writer instance");
    *out = c;
    return ERR_OK;
}

void duck_writer_conn_put(struct duck *d, duckdb_connection c)
{
    pool_give(d, &d->wpool, c);
}

/* A query connection costs ~0.3 ms to build (client context, temporary catalog,
 * settings maps): a third of a small query's server time. Connections of the query
 * instance carry no state a statement can leave behind: only SELECT/EXPLAIN run there
 * (see exec_one), the configuration is locked, and DuckDB clears a pending interrupt
 * when the next statement starts. The cancel token is unbound before a connection
 * goes back, under the token's mutex, so a late cancel cannot reach the next query.
 * At most QPOOL_MAX idle connections are kept (one per concurrent query is enough). */
static enum err query_conn_get(struct duck *d, duckdb_connection *out, struct errbuf *eb)
{
    duckdb_connection c = pool_take(d, &d->qpool);

    if (!c && duckdb_connect(d->qdb, &c) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: connect to query instance");
    *out = c;
    return ERR_OK;
}

static void query_conn_put(struct duck *d, duckdb_connection c)
{
    if (c)
        pool_give(d, &d->qpool, c);
}

/* ---- query side ----------------------------------------------------------------- */

static const char *const type_names[] = {
    [DUCK_T_OTHER] = "OTHER",         [DUCK_T_BOOL] = "BOOLEAN",
    [DUCK_T_I8] = "TINYINT",          [DUCK_T_I16] = "SMALLINT",
    [DUCK_T_I32] = "INTEGER",         [DUCK_T_I64] = "BIGINT",
    [DUCK_T_U8] = "UTINYINT",         [DUCK_T_U16] = "USMALLINT",
    [DUCK_T_U32] = "UINTEGER",        [DUCK_T_U64] = "UBIGINT",
    [DUCK_T_F32] = "FLOAT",           [DUCK_T_F64] = "DOUBLE",
    [DUCK_T_VARCHAR] = "VARCHAR",     [DUCK_T_BLOB] = "BLOB",
    [DUCK_T_DATE] = "DATE",           [DUCK_T_TIME] = "TIME",
    [DUCK_T_TIMESTAMP] = "TIMESTAMP", [DUCK_T_TIMESTAMP_TZ] = "TIMESTAMP WITH TIME ZONE",
    [DUCK_T_TIMESTAMP_S] = "TIMESTAMP_S", [DUCK_T_TIMESTAMP_MS] = "TIMESTAMP_MS",
    [DUCK_T_TIMESTAMP_NS] = "TIMESTAMP_NS",
};

const char *duck_type_name(enum duck_type t)
{
    if ((size_t)t >= sizeof(type_names) / sizeof(type_names[0]) || !type_names[t])
        return "OTHER";
    return type_names[t];
}

static enum duck_type map_type(duckdb_type t)
{
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return DUCK_T_BOOL;
    case DUCKDB_TYPE_TINYINT: return DUCK_T_I8;
    case DUCKDB_TYPE_SMALLINT: return DUCK_T_I16;
    case DUCKDB_TYPE_INTEGER: return DUCK_T_I32;
    case DUCKDB_TYPE_BIGINT: return DUCK_T_I64;
    case DUCKDB_TYPE_UTINYINT: return DUCK_T_U8;
    case DUCKDB_TYPE_USMALLINT: return DUCK_T_U16;
    case DUCKDB_TYPE_UINTEGER: return DUCK_T_U32;
    case DUCKDB_TYPE_UBIGINT: return DUCK_T_U64;
    case DUCKDB_TYPE_FLOAT: return DUCK_T_F32;
    case DUCKDB_TYPE_DOUBLE: return DUCK_T_F64;
    case DUCKDB_TYPE_VARCHAR: return DUCK_T_VARCHAR;
    case DUCKDB_TYPE_BLOB: return DUCK_T_BLOB;
    case DUCKDB_TYPE_DATE: return DUCK_T_DATE;
    case DUCKDB_TYPE_TIME: return DUCK_T_TIME;
    case DUCKDB_TYPE_TIMESTAMP: return DUCK_T_TIMESTAMP;
    case DUCKDB_TYPE_TIMESTAMP_TZ: return DUCK_T_TIMESTAMP_TZ;
    case DUCKDB_TYPE_TIMESTAMP_S: return DUCK_T_TIMESTAMP_S;
    case DUCKDB_TYPE_TIMESTAMP_MS: return DUCK_T_TIMESTAMP_MS;
    case DUCKDB_TYPE_TIMESTAMP_NS: return DUCK_T_TIMESTAMP_NS;
    default: return DUCK_T_OTHER;
    }
}

struct duck_cancel *duck_cancel_new(void)
{
    struct duck_cancel *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void duck_cancel_free(struct duck_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void duck_query_cancel(struct duck_cancel *c)
{
    pthread_mutex_lock(&c->mu);
    c->cancelled = true;
    if (c->conn)
        duckdb_interrupt(c->conn);
    pthread_mutex_unlock(&c->mu);
}

void duck_cancel_reset(struct duck_cancel *c)
{
    pthread_mutex_lock(&c->mu);
    c->cancelled = false;
    pthread_mutex_unlock(&c->mu);
}

bool duck_cancel_is_set(struct duck_cancel *c)
{
    bool v;

    if (!c)
        return false;
    pthread_mutex_lock(&c->mu);
    v = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return v;
}

/* Bind conn to c (NULL c: nothing). Fails if c is already cancelled. */
static bool cancel_bind(struct duck_cancel *c, duckdb_connection conn)
{
    bool ok = true;

    if (!c)
        return true;
    pthread_mutex_lock(&c->mu);
    if (c->cancelled)
        ok = false;
    else
        c->conn = conn;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void cancel_unbind(struct duck_cancel *c, duckdb_connection conn)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->conn == conn)
        c->conn = NULL;
    pthread_mutex_unlock(&c->mu);
}

/* Result columns whose type the chunk API does not expose (DUCK_T_OTHER: DECIMAL,
 * HUGEINT, UUID, INTERVAL, lists, structs, ...) are cast to VARCHAR, so every
 * value reaches the encoders as DuckDB prints it. Positional references (#n) keep
 * duplicate column names working; the original names are kept as aliases. */
static enum err cast_other_columns(duckdb_connection conn, const char *sql,
                                   duckdb_prepared_statement *st, struct errbuf *eb)
{
    idx_t n = duckdb_prepared_statement_column_count(*st);
    duckdb_prepared_statement st2 = NULL;
    struct buf w;
    size_t len = strlen(sql);
    bool any = false;
    enum err rc = ERR_OK;

    if (duckdb_prepared_statement_type(*st) != DUCKDB_STATEMENT_TYPE_SELECT)
        return ERR_OK;
    for (idx_t i = 0; i < n && !any; i++)
        any = map_type(duckdb_prepared_statement_column_type(*st, i)) == DUCK_T_OTHER;
    if (!any)
        return ERR_OK;
    while (len > 0 && (sql[len - 1] == ';' || sql[len - 1] == ' ' || sql[len - 1] == '\n' ||
                       sql[len - 1] == '\t' || sql[len - 1] == '\r'))
        len--;
    buf_init(&w, 0);
    buf_append_str(&w, "SELECT ");
    for (idx_t i = 0; i < n; i++) {
        const char *name = duckdb_prepared_statement_column_name(*st, i);
        bool other = map_type(duckdb_prepared_statement_column_type(*st, i)) == DUCK_T_OTHER;
        if (i)
            buf_append_str(&w, ", ");
        if (other)
            buf_printf(&w, "CAST(#%llu AS VARCHAR) AS ", (unsigned long long)i + 1);
        else
            buf_printf(&w, "#%llu AS ", (unsigned long long)i + 1);
        duck_sql_ident(&w, name ? name : "");
        duckdb_free((void *)name);
    }
    buf_append_str(&w, " FROM (\n");
    buf_append(&w, sql, len);
    buf_append_str(&w, "\n)");
    if (duckdb_prepare(conn, w.data, &st2) != DuckDBSuccess) {
        const char *m = duckdb_prepare_error(st2);
        rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "cannot prepare statement");
        duckdb_destroy_prepare(&st2);
    } else {
        duckdb_destroy_prepare(st);
        *st = st2;
    }
    buf_release(&w);
    return rc;
}

enum err duck_query_exec(struct duck *d, const char *sql, struct duck_result **out,
                         struct errbuf *eb)
{
    return duck_query_exec_sized(d, sql, NULL, DUCK_RESULT_STREAM, out, eb);
}

enum err duck_query_exec_ex(struct duck *d, const char *sql, struct duck_cancel *c,
                            struct duck_result **out, struct errbuf *eb)
{
    return duck_query_exec_sized(d, sql, c, DUCK_RESULT_STREAM, out, eb);
}

/* Prepare sql (with cast_other_columns' wrapper when needed) and execute it,
 * streaming or materialized, into r->res. */
static enum err exec_one(duckdb_connection conn, const char *sql, bool materialize,
                         struct duck_cancel *c, struct duck_result *r, struct errbuf *eb)
{
    duckdb_prepared_statement st = NULL;
    duckdb_pending_result pend = NULL;
    duckdb_statement_type stype;
    duckdb_state ps;
    enum err rc = ERR_OK;

    if (duckdb_prepare(conn, sql, &st) != DuckDBSuccess) {
        const char *m = duckdb_prepare_error(st);
        rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "cannot prepare statement");
        goto out;
    }
    /* Read-only statements only: defence in depth behind the instance sandbox, which
     * would still let COPY/EXPORT write inside data_dir and CREATE/SET/ATTACH reach
     * state. DESCRIBE/SHOW/SUMMARIZE are SELECTs to DuckDB. */
    stype = duckdb_prepared_statement_type(st);
    if (stype != DUCKDB_STATEMENT_TYPE_SELECT && stype != DUCKDB_STATEMENT_TYPE_EXPLAIN) {
        rc = errbuf_set(eb, ERR_PERM, "only SELECT statements are allowed (statement type %d)",
                        (int)stype);
        goto out;
    }
    if ((rc = cast_other_columns(conn, sql, &st, eb)) != ERR_OK)
        goto out;
    ps = materialize ? duckdb_pending_prepared(st, &pend)
                     : duckdb_pending_prepared_streaming(st, &pend);
    if (ps != DuckDBSuccess) {
        const char *m = duckdb_pending_error(pend);
        rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "cannot start statement");
        goto out;
    }
    if (duckdb_execute_pending(pend, &r->res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&r->res);
        if (duck_cancel_is_set(c))
            rc = errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
        else
            rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "statement failed");
        duckdb_destroy_result(&r->res);
        goto out;
    }
    r->materialized = materialize;
out:
    duckdb_destroy_pending(&pend);
    duckdb_destroy_prepare(&st);
    return rc;
}

enum err duck_query_exec_sized(struct duck *d, const char *sql, struct duck_cancel *c,
                               enum duck_result_size size, struct duck_result **out,
                               struct errbuf *eb)
{
    duckdb_connection conn = NULL;
    struct duck_result *r;
    enum err rc;

    if ((rc = query_conn_get(d, &conn, eb)) != ERR_OK)
        return rc;
    if (!cancel_bind(c, conn)) {
        query_conn_put(d, conn);
        return errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
    }
    r = xcalloc(1, sizeof(*r));
    rc = exec_one(conn, sql, size == DUCK_RESULT_SMALL, c, r, eb);
    if (rc != ERR_OK) {
        free(r);
        cancel_unbind(c, conn);
        query_conn_put(d, conn);
        return rc;
    }
    r->d = d;
    r->conn = conn;
    r->cancel = c;
    r->ncols = duckdb_column_count(&r->res);
    r->types = xcalloc(r->ncols ? r->ncols : 1, sizeof(*r->types));
    for (size_t i = 0; i < r->ncols; i++)
        r->types[i] = map_type(duckdb_column_type(&r->res, i));
    r->chunk.ncols = r->ncols;
    r->chunk.types = r->types;
    r->chunk.data = xcalloc(r->ncols ? r->ncols : 1, sizeof(*r->chunk.data));
    r->chunk.valid = xcalloc(r->ncols ? r->ncols : 1, sizeof(*r->chunk.valid));
    *out = r;
    return ERR_OK;
}

/* ---- results built outside DuckDB ---------------------------------------------- */

/* Chunks of DUCK_NATIVE_CHUNK rows (a multiple of 64: validity windows then start
 * on a word), the size DuckDB hands out. */
#define DUCK_NATIVE_CHUNK 2048

static enum err native_next_chunk(struct duck_result *r, struct duck_chunk **out)
{
    size_t start = r->next_row, n = r->nrows - start;

    if (n == 0) {
        r->done = true;
        *out = NULL;
        return ERR_OK;
    }
    if (n > DUCK_NATIVE_CHUNK)
        n = DUCK_NATIVE_CHUNK;
    for (size_t i = 0; i < r->ncols; i++) {
        size_t w = r->types[i] == DUCK_T_VARCHAR ? sizeof(duckdb_string_t)
                   : r->types[i] == DUCK_T_BOOL  ? 1
                                                 : 8;
        r->chunk.data[i] = (char *)r->cols[i] + start * w;
        r->chunk.valid[i] = r->cvalid[i] ? r->cvalid[i] + start / 64 : NULL;
    }
    r->chunk.rows = n;
    r->next_row = start + n;
    *out = &r->chunk;
    return ERR_OK;
}

struct duck_result *duck_result_from_columns(const struct duck_ncol *cols, size_t ncols,
                                             size_t nrows)
{
    struct duck_result *r = xcalloc(1, sizeof(*r));
    size_t n = ncols ? ncols : 1;

    r->native = true;
    r->materialized = true;
    r->ncols = ncols;
    r->nrows = nrows;
    r->names = xcalloc(n, sizeof(*r->names));
    r->cols = xcalloc(n, sizeof(*r->cols));
    r->cvalid = xcalloc(n, sizeof(*r->cvalid));
    r->types = xcalloc(n, sizeof(*r->types));
    for (size_t i = 0; i < ncols; i++) {
        r->names[i] = xstrdup(cols[i].name);
        r->types[i] = cols[i].type;
        r->cvalid[i] = cols[i].valid;
        if (cols[i].type != DUCK_T_VARCHAR) {
            r->cols[i] = cols[i].data;
            continue;
        }
        /* VARCHAR: DuckDB's string_t (length + 12 bytes inline, or prefix + pointer) */
        {
            const struct duck_str *in = cols[i].data;
            duckdb_string_t *sv = xcalloc(nrows ? nrows : 1, sizeof(*sv));
            for (size_t k = 0; k < nrows; k++) {
                size_t len = in[k].len;
                sv[k].value.inlined.length = (uint32_t)len;
                if (len <= sizeof(sv[k].value.inlined.inlined)) {
                    if (len)
                        memcpy(sv[k].value.inlined.inlined, in[k].p, len);
                } else {
                    memcpy(sv[k].value.pointer.prefix, in[k].p, 4);
                    sv[k].value.pointer.ptr = (char *)in[k].p;
                }
            }
            free(cols[i].data);
            r->cols[i] = sv;
        }
    }
    r->chunk.ncols = ncols;
    r->chunk.types = r->types;
    r->chunk.data = xcalloc(n, sizeof(*r->chunk.data));
    r->chunk.valid = xcalloc(n, sizeof(*r->chunk.valid));
    return r;
}

bool duck_result_materialized(const struct duck_result *r)
{
    return r->materialized;
}

size_t duck_result_ncols(const struct duck_result *r)
{
    return r->ncols;
}

const char *duck_result_col_name(const struct duck_result *r, size_t col)
{
    if (r->native)
        return col < r->ncols ? r->names[col] : NULL;
    /* duckdb_column_name takes a non-const result but only reads it. */
    return duckdb_column_name((duckdb_result *)&r->res, col);
}

enum duck_type duck_result_col_type(const struct duck_result *r, size_t col)
{
    return col < r->ncols ? r->types[col] : DUCK_T_OTHER;
}

enum err duck_result_next_chunk(struct duck_result *r, struct duck_chunk **out,
                                struct errbuf *eb)
{
    duckdb_data_chunk ch;

    if (r->chunk.ch)
        duckdb_destroy_data_chunk(&r->chunk.ch);
    r->chunk.rows = 0;
    if (r->done) {
        *out = NULL;
        return ERR_OK;
    }
    if (r->native)
        return native_next_chunk(r, out);
    if (duck_cancel_is_set(r->cancel))
        return errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
    ch = duckdb_fetch_chunk(r->res);
    if (!ch) {
        const char *m = duckdb_result_error(&r->res);
        if (duck_cancel_is_set(r->cancel))
            return errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
        if (m)
            return errbuf_set(eb, ERR_DB, "%s", m);
        r->done = true;
        *out = NULL;
        return ERR_OK;
    }
    /* Fetched chunks are flat (QueryResult::Fetch flattens), so data pointers index
     * rows directly. */
    r->chunk.ch = ch;
    r->chunk.rows = duckdb_data_chunk_get_size(ch);
    for (size_t i = 0; i < r->ncols; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(ch, i);
        r->chunk.data[i] = duckdb_vector_get_data(v);
        r->chunk.valid[i] = duckdb_vector_get_validity(v);
    }
    *out = &r->chunk;
    return ERR_OK;
}

void duck_result_free(struct duck_result *r)
{
    if (!r)
        return;
    if (r->native) {
        for (size_t i = 0; i < r->ncols; i++) {
            free(r->names[i]);
            free(r->cols[i]);
            free(r->cvalid[i]);
        }
        free(r->names);
        free(r->cols);
        free(r->cvalid);
        free(r->chunk.data);
        free(r->chunk.valid);
        free(r->types);
        free(r);
        return;
    }
    if (r->chunk.ch)
        duckdb_destroy_data_chunk(&r->chunk.ch);
    duckdb_destroy_result(&r->res);
    cancel_unbind(r->cancel, r->conn);
    query_conn_put(r->d, r->conn);
    free(r->chunk.data);
    free(r->chunk.valid);
    free(r->types);
    free(r);
}

size_t duck_chunk_rows(const struct duck_chunk *c)
{
    return c->rows;
}

const void *duck_chunk_data(const struct duck_chunk *c, size_t col)
{
    enum duck_type t = c->types[col];

    if (t == DUCK_T_OTHER || t == DUCK_T_VARCHAR || t == DUCK_T_BLOB)
        return NULL;
    return c->data[col];
}

const uint64_t *duck_chunk_validity(const struct duck_chunk *c, size_t col)
{
    return c->valid[col];
}

bool duck_chunk_is_valid(const struct duck_chunk *c, size_t col, size_t row)
{
    const uint64_t *v = c->valid[col];

    return !v || (v[row / 64] >> (row % 64)) & 1;
}

const char *duck_chunk_str(const struct duck_chunk *c, size_t col, size_t row, size_t *len)
{
    duckdb_string_t *s;
    enum duck_type t = c->types[col];

    if ((t != DUCK_T_VARCHAR && t != DUCK_T_BLOB) || row >= c->rows ||
        !duck_chunk_is_valid(c, col, row))
        return NULL;
    s = (duckdb_string_t *)c->data[col] + row;
    *len = duckdb_string_t_length(*s);
    return duckdb_string_t_data(s);
}

enum err duck_query_text(struct duck *d, const char *sql, const char *arg, char **out,
                         struct errbuf *eb)
{
    duckdb_connection conn = NULL;
    duckdb_prepared_statement st = NULL;
    duckdb_result res;
    enum err rc = ERR_OK;
    char *v;

    if (duckdb_connect(d->qdb, &conn) != DuckDBSuccess)
        return errbuf_set(eb, ERR_DB, "duckdb: connect to query instance");
    if (duckdb_prepare(conn, sql, &st) != DuckDBSuccess) {
        const char *m = duckdb_prepare_error(st);
        rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "cannot prepare statement");
        goto out_prep;
    }
    if (duckdb_prepared_statement_type(st) != DUCKDB_STATEMENT_TYPE_SELECT) {
        rc = errbuf_set(eb, ERR_PERM, "only SELECT statements are allowed");
        goto out_prep;
    }
    if (arg && duckdb_bind_varchar(st, 1, arg) != DuckDBSuccess) {
        rc = errbuf_set(eb, ERR_DB, "duckdb: cannot bind the argument");
        goto out_prep;
    }
    if (duckdb_execute_prepared(st, &res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&res);
        rc = errbuf_set(eb, ERR_DB, "%s", m ? m : "statement failed");
        duckdb_destroy_result(&res);
        goto out_prep;
    }
    if (duckdb_row_count(&res) < 1 || duckdb_column_count(&res) < 1 ||
        duckdb_value_is_null(&res, 0, 0)) {
        *out = NULL;
    } else {
        v = duckdb_value_varchar(&res, 0, 0);
        *out = xstrdup(v ? v : "");
        duckdb_free(v);
    }
    duckdb_destroy_result(&res);
out_prep:
    duckdb_destroy_prepare(&st);
    duckdb_disconnect(&conn);
    return rc;
}
