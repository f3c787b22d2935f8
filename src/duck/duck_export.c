/* duck_export.c - a query result written as a Parquet file (format "parquet").
 *
 * The sandboxed query instance cannot write files, and must not be able to. So the
 * user's statement runs there as usual (streaming result), and the file is written
 * by the WRITER instance, which never sees user SQL: a table function registered
 * on it, arc_result_scan(handle), pulls the query result chunk by chunk and hands
 * each vector over by reference (duckdb_vector_reference_vector: no copy of any
 * value), and
 *   COPY (SELECT * FROM arc_result_scan(h)) TO '<path>' (FORMAT parquet, ...)
 * encodes it. Memory stays at a few chunks whatever the result size. Column types
 * are the result's own (types the chunk API cannot expose were already cast to
 * VARCHAR by duck.c, so every column is a plain type).
 *
 * As in duck_parquet.c, the handle in the SQL text is the address of a job on the
 * caller's stack, checked by a magic number; acceptable only because the writer
 * instance runs SQL from this module alone. A fetch failure of the query (its
 * error, or a cancel through its token) is raised inside the COPY with
 * duckdb_function_set_error, so the COPY fails and the caller deletes the file.
 *
 * Threads: the writer instance has threads=1, so the COPY (and every fetch from
 * the query result) runs on the calling thread. */
#include "duck/duck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "duck/duck_int.h"

#define EXP_MAGIC 0x6172635f72657375ULL /* "arc_resu" */

struct exp_job {
    uint64_t magic;          /* EXP_MAGIC while live */
    struct duck_result *r;   /* borrowed */
    uint64_t rows;           /* rows handed to the COPY */
    char err[512];           /* first fetch error (the query's own message) */
};

static void exp_bind(duckdb_bind_info info)
{
    duckdb_value hv = duckdb_bind_get_parameter(info, 0);
    struct exp_job *j = (struct exp_job *)(uintptr_t)duckdb_get_uint64(hv);

    duckdb_destroy_value(&hv);
    if (!j || j->magic != EXP_MAGIC) {
        duckdb_bind_set_error(info, "arc_result_scan: invalid handle");
        return;
    }
    for (size_t i = 0; i < j->r->ncols; i++) {
        duckdb_logical_type t = duckdb_column_logical_type(&j->r->res, i);
        const char *name = duckdb_column_name(&j->r->res, i);
        duckdb_bind_add_result_column(info, name ? name : "", t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_bind_set_bind_data(info, j, NULL); /* borrowed: lives on the caller's stack */
}

static void exp_init(duckdb_init_info info)
{
    duckdb_init_set_max_threads(info, 1); /* result order is the query's order */
}

static void exp_func(duckdb_function_info info, duckdb_data_chunk out)
{
    struct exp_job *j = duckdb_function_get_bind_data(info);
    struct duck_result *r = j->r;
    duckdb_data_chunk ch;
    size_t n;

    duckdb_data_chunk_set_size(out, 0);
    if (r->done)
        return;
    if (duck_cancel_is_set(r->cancel)) {
        snprintf(j->err, sizeof(j->err), "query cancelled");
        duckdb_function_set_error(info, j->err);
        return;
    }
    ch = duckdb_fetch_chunk(r->res);
    if (!ch) {
        const char *m = duckdb_result_error(&r->res);
        if (duck_cancel_is_set(r->cancel))
            m = "query cancelled";
        if (m) {
            snprintf(j->err, sizeof(j->err), "%s", m);
            duckdb_function_set_error(info, j->err);
            return;
        }
        r->done = true;
        return;
    }
    n = duckdb_data_chunk_get_size(ch);
    for (size_t i = 0; i < r->ncols; i++)
        duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(out, i),
                                       duckdb_data_chunk_get_vector(ch, i));
    duckdb_data_chunk_set_size(out, n);
    /* out now shares the buffers; dropping our handle on the source chunk is safe */
    duckdb_destroy_data_chunk(&ch);
    j->rows += n;
}

enum err duck_export_register(struct duck *d, duckdb_connection c, struct errbuf *eb)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
    enum err rc = ERR_OK;

    (void)d;
    duckdb_table_function_set_name(f, "arc_result_scan");
    duckdb_table_function_add_parameter(f, t);
    duckdb_table_function_set_bind(f, exp_bind);
    duckdb_table_function_set_init(f, exp_init);
    duckdb_table_function_set_function(f, exp_func);
    if (duckdb_register_table_function(c, f) != DuckDBSuccess)
        rc = errbuf_set(eb, ERR_DB, "duckdb: cannot register arc_result_scan");
    duckdb_destroy_logical_type(&t);
    duckdb_destroy_table_function(&f);
    return rc;
}

enum err duck_result_write_parquet(struct duck *d, struct duck_result *r, const char *path,
                                   uint64_t *rows_out, struct errbuf *eb)
{
    struct exp_job j = {.magic = EXP_MAGIC, .r = r};
    duckdb_connection c;
    struct buf sql;
    enum err rc;

    if (!r || !path)
        return errbuf_set(eb, ERR_INVAL, "parquet export: no result or path");
    if (r->native)
        return errbuf_set(eb, ERR_INTERNAL, "parquet export: not a DuckDB result");
    if (r->chunk.ch) /* a chunk handed out earlier is no longer valid */
        duckdb_destroy_data_chunk(&r->chunk.ch);
    r->chunk.rows = 0;
    if ((rc = duck_writer_conn_get(d, &c, eb)) != ERR_OK)
        return rc;
    buf_init(&sql, 0);
    buf_printf(&sql, "COPY (SELECT * FROM arc_result_scan(%llu::UBIGINT)) TO ",
               (unsigned long long)(uintptr_t)&j);
    duck_sql_str(&sql, path, strlen(path));
    buf_append_str(&sql, " (FORMAT parquet, COMPRESSION zstd)");
    rc = duck_exec(c, sql.data, eb);
    if (rc != ERR_OK) {
        if (duck_cancel_is_set(r->cancel))
            rc = errbuf_set(eb, ERR_TIMEOUT, "query cancelled");
        else if (j.err[0])
            rc = errbuf_set(eb, ERR_DB, "%s", j.err); /* the query's own error */
    }
    j.magic = 0;
    buf_release(&sql);
    duck_writer_conn_put(d, c);
    if (rc == ERR_OK && rows_out)
        *rows_out = j.rows;
    return rc;
}
