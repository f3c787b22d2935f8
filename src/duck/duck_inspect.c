/* duck_inspect.c - row count, time range, columns and tag names of a Parquet
 * file, through the writer instance's read_parquet / parquet_kv_metadata. Three
 * small queries per file; rebuild is an offline, rare operation. */
#include "duck/duck_inspect.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "duck/duck_int.h"

static enum err run(duckdb_connection c, const char *sql, duckdb_result *res, struct errbuf *eb)
{
    if (duckdb_query(c, sql, res) != DuckDBSuccess) {
        enum err rc = errbuf_set(eb, ERR_DB, "%s", duckdb_result_error(res));
        duckdb_destroy_result(res);
        return rc;
    }
    return ERR_OK;
}

/* true if name is in the comma list tags */
static bool in_list(const char *tags, const char *name)
{
    size_t nl = strlen(name);
    const char *p = tags;

    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == nl && !memcmp(p, name, nl))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

enum err duck_inspect_parquet(struct duck *d, const char *path, struct duck_pq_info *out,
                              struct errbuf *eb)
{
    duckdb_connection c;
    duckdb_result res;
    struct buf sql, lit;
    struct duck_pq_info info;
    char *tags = NULL;
    bool have_time = false;
    idx_t i, n;
    enum err rc;

    memset(&info, 0, sizeof(info));
    rc = duck_writer_conn_get(d, &c, eb);
    if (rc)
        return rc;
    buf_init(&sql, 0);
    buf_init(&lit, 0);
    duck_sql_str(&lit, path, strlen(path));

    buf_printf(&sql, "DESCRIBE SELECT * FROM read_parquet(%s)", lit.data);
    if ((rc = run(c, sql.data, &res, eb)))
        goto out;
    n = duckdb_row_count(&res);
    info.cols = xcalloc(n ? n : 1, sizeof(*info.cols));
    for (i = 0; i < n; i++) {
        char *name = duckdb_value_varchar(&res, 0, i), *type = duckdb_value_varchar(&res, 1, i);
        if (name && !strcmp(name, "time")) {
            have_time = true;
        } else if (name && type) {
            info.cols[info.ncols].name = xstrdup(name);
            info.cols[info.ncols].type = xstrdup(type);
            info.ncols++;
        }
        duckdb_free(name);
        duckdb_free(type);
    }
    duckdb_destroy_result(&res);
    if (!have_time) {
        rc = errbuf_set(eb, ERR_INVAL, "%s: no \"time\" column (not an Arc file)", path);
        goto out;
    }

    buf_reset(&sql);
    buf_printf(&sql,
               "SELECT count(*), COALESCE(epoch_us(min(\"time\")), 0), "
               "COALESCE(epoch_us(max(\"time\")), 0) FROM read_parquet(%s)",
               lit.data);
    if ((rc = run(c, sql.data, &res, eb)))
        goto out;
    info.rows = duckdb_value_int64(&res, 0, 0);
    info.min_time_us = duckdb_value_int64(&res, 1, 0);
    info.max_time_us = duckdb_value_int64(&res, 2, 0);
    duckdb_destroy_result(&res);

    buf_reset(&sql);
    buf_printf(&sql,
               "SELECT CAST(value AS VARCHAR) FROM parquet_kv_metadata(%s) "
               "WHERE CAST(key AS VARCHAR) = 'arc_tags'",
               lit.data);
    if ((rc = run(c, sql.data, &res, eb)))
        goto out;
    if (duckdb_row_count(&res) > 0)
        tags = duckdb_value_varchar(&res, 0, 0);
    duckdb_destroy_result(&res);
    for (i = 0; i < info.ncols; i++)
        info.cols[i].is_tag = tags && in_list(tags, info.cols[i].name);
    duckdb_free(tags);
    buf_reset(&sql);
    buf_printf(&sql,
               "SELECT CAST(value AS VARCHAR) FROM parquet_kv_metadata(%s) "
               "WHERE CAST(key AS VARCHAR) = 'arc_compacted_from'",
               lit.data);
    if ((rc = run(c, sql.data, &res, eb)))
        goto out;
    if (duckdb_row_count(&res) > 0) {
        char *v = duckdb_value_varchar(&res, 0, 0);
        info.compacted_from = v ? xstrdup(v) : NULL;
        duckdb_free(v);
    }
    duckdb_destroy_result(&res);
    *out = info;
    memset(&info, 0, sizeof(info));
out:
    duck_pq_info_release(&info);
    duck_writer_conn_put(d, c);
    buf_release(&sql);
    buf_release(&lit);
    return rc;
}

void duck_pq_info_release(struct duck_pq_info *info)
{
    size_t i;

    for (i = 0; i < info->ncols; i++) {
        free(info->cols[i].name);
        free(info->cols[i].type);
    }
    free(info->cols);
    free(info->compacted_from);
    memset(info, 0, sizeof(*info));
}
