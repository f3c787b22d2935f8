/* duck_parquet.c - write a column batch to a Parquet file through DuckDB.
 *
 * DuckDB's Parquet encoder is the main cost of a flush, so the job here is to hand it
 * the batch with as little work of our own as possible. The batch is exposed as a
 * table function, arc_batch_scan(handle), registered once on the private writer
 * instance, and the file is written with
 *   COPY (SELECT * FROM arc_batch_scan(h)) TO 'path' (FORMAT parquet, ...).
 * The scan fills DuckDB's output vectors directly: numeric and time columns by
 * memcpy (or a gather loop when the caller gives a row order), validity by writing
 * the 64-bit mask words, and string columns without copying any string: the batch's
 * dictionary is loaded once per file into one VARCHAR vector (plus a NULL entry), and
 * every output string vector becomes a dictionary vector over it, sliced by the
 * batch's uint32 ids (duckdb_slice_vector). The alternative - an appender into a temp
 * table, then COPY table TO - is kept behind DUCK_PQ_APPENDER for the benchmark
 * (bench/bench_parquet.c); it measured slower (docs/duck.md), because the table
 * stores a second copy of every value before COPY reads it again.
 *
 * The handle in the SQL text is the address of a struct pq_job on the caller's
 * stack, checked by a magic number. That is acceptable only because the writer
 * instance never runs SQL from anyone but this file.
 *
 * Threads: the writer instance has threads=1, so each COPY runs entirely on the
 * calling thread, on a connection taken from the pool (duck.c). */
#include "duck/duck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "duck/duck_int.h"

#define PQ_MAGIC 0x6172635f62617463ULL /* "arc_batc" */
#define PQ_SQL_MAX (1 << 20)           /* COPY text: path + metadata, server-made */

struct pq_scan_state {
    size_t pos; /* next output row */
};

duckdb_type duck_batch_col_type(enum batch_type t)
{
    switch (t) {
    case BATCH_F64: return DUCKDB_TYPE_DOUBLE;
    case BATCH_I64: return DUCKDB_TYPE_BIGINT;
    case BATCH_U64: return DUCKDB_TYPE_UBIGINT;
    case BATCH_BOOL: return DUCKDB_TYPE_BOOLEAN;
    case BATCH_STR: return DUCKDB_TYPE_VARCHAR;
    }
    return DUCKDB_TYPE_INVALID;
}

/* Build the dictionary vector (once per file) if any column holds strings. */
void duck_job_build_dict(struct pq_job *j)
{
    const struct batch *b = j->b;
    duckdb_logical_type vt;
    size_t ndict;
    bool any = false;

    for (size_t i = 0; i < b->ncols; i++)
        any |= b->cols[i].type == BATCH_STR;
    if (!any || j->str_per_value)
        return;
    ndict = b->dict ? strdict_count(b->dict) : 0;
    vt = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    j->dict = duckdb_create_vector(vt, ndict + 1);
    duckdb_destroy_logical_type(&vt);
    for (size_t id = 0; id < ndict; id++) {
        size_t len;
        const char *s = strdict_get(b->dict, (uint32_t)id, &len);
        duckdb_vector_assign_string_element_len(j->dict, id, s, len);
    }
    j->null_id = (uint32_t)ndict;
    duckdb_vector_ensure_validity_writable(j->dict);
    duckdb_validity_set_row_invalid(duckdb_vector_get_validity(j->dict), ndict);
}

/* Write the validity words of output rows [0, count) for a column with a valid[] map. */
static void fill_validity(duckdb_vector v, const uint8_t *valid, const uint32_t *rows,
                          size_t start, size_t count)
{
    uint64_t *mask;

    duckdb_vector_ensure_validity_writable(v);
    mask = duckdb_vector_get_validity(v);
    for (size_t w = 0; w * 64 < count; w++) {
        size_t lim = count - w * 64 < 64 ? count - w * 64 : 64;
        uint64_t word = 0;
        for (size_t k = 0; k < lim; k++) {
            size_t src = start + w * 64 + k;
            src = rows ? rows[src] : src;
            word |= (uint64_t)(valid[src] != 0) << k;
        }
        mask[w] = word;
    }
}

static void fill_fixed8(void *dst, const void *src, const uint32_t *rows, size_t start,
                        size_t count)
{
    uint64_t *d = dst;
    const uint64_t *s = src;

    if (!rows) {
        memcpy(d, s + start, count * sizeof(*d));
        return;
    }
    for (size_t i = 0; i < count; i++)
        d[i] = s[rows[start + i]];
}

static void fill_str(struct pq_job *j, const struct batch_col *c, duckdb_vector v,
                     size_t start, size_t count)
{
    const uint32_t *ids = c->data;
    const uint32_t *rows = j->rows;

    if (j->dict) {
        duckdb_selection_vector sel = duckdb_create_selection_vector(count);
        sel_t *sv = duckdb_selection_vector_get_data_ptr(sel);
        for (size_t i = 0; i < count; i++) {
            size_t r = rows ? rows[start + i] : start + i;
            sv[i] = (!c->valid || c->valid[r]) ? ids[r] : j->null_id;
        }
        /* v now shares the dictionary vector; the slice keeps its own reference to
         * the selection buffer, so sel can go right away. */
        duckdb_vector_reference_vector(v, j->dict);
        duckdb_slice_vector(v, sel, count);
        duckdb_destroy_selection_vector(sel);
        return;
    }
    if (c->valid)
        fill_validity(v, c->valid, rows, start, count);
    for (size_t i = 0; i < count; i++) {
        size_t r = rows ? rows[start + i] : start + i;
        size_t len;
        const char *s;
        if (c->valid && !c->valid[r])
            continue;
        s = strdict_get(j->b->dict, ids[r], &len);
        duckdb_vector_assign_string_element_len(v, i, s, len);
    }
}

/* Fill output rows [start, start+count) of batch column ci (DUCK_COL_TIME: time)
 * into v (count <= vector size). */
void duck_job_fill_col(struct pq_job *j, size_t ci, duckdb_vector v, size_t start, size_t count)
{
    const struct batch *b = j->b;
    const uint32_t *rows = j->rows;
    const struct batch_col *c;

    if (ci == DUCK_COL_TIME) {
        fill_fixed8(duckdb_vector_get_data(v), b->time_us, rows, start, count);
        return;
    }
    c = &b->cols[ci];
    switch (c->type) {
    case BATCH_F64:
    case BATCH_I64:
    case BATCH_U64:
        fill_fixed8(duckdb_vector_get_data(v), c->data, rows, start, count);
        break;
    case BATCH_BOOL: {
        /* Normalise to 0/1: DuckDB requires it and NULL slots may hold anything. */
        uint8_t *d = duckdb_vector_get_data(v);
        const uint8_t *s = c->data;
        for (size_t i = 0; i < count; i++)
            d[i] = s[rows ? rows[start + i] : start + i] != 0;
        break;
    }
    case BATCH_STR:
        fill_str(j, c, v, start, count);
        return; /* validity handled inside */
    }
    if (c->valid)
        fill_validity(v, c->valid, rows, start, count);
}

/* Fill output rows [start, start+count) of the job into chunk (count <= vector size). */
void duck_job_fill_chunk(struct pq_job *j, duckdb_data_chunk out, size_t start, size_t count)
{
    duck_job_fill_col(j, DUCK_COL_TIME, duckdb_data_chunk_get_vector(out, 0), start, count);
    for (size_t ci = 0; ci < j->b->ncols; ci++)
        duck_job_fill_col(j, ci, duckdb_data_chunk_get_vector(out, ci + 1), start, count);
    duckdb_data_chunk_set_size(out, count);
}

/* ---- the table function arc_batch_scan(UBIGINT handle) --------------------------- */

static void scan_bind(duckdb_bind_info info)
{
    duckdb_value hv = duckdb_bind_get_parameter(info, 0);
    struct pq_job *j = (struct pq_job *)(uintptr_t)duckdb_get_uint64(hv);
    duckdb_logical_type t;

    duckdb_destroy_value(&hv);
    if (!j || j->magic != PQ_MAGIC) {
        duckdb_bind_set_error(info, "arc_batch_scan: invalid handle");
        return;
    }
    t = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    duckdb_bind_add_result_column(info, "time", t);
    duckdb_destroy_logical_type(&t);
    for (size_t i = 0; i < j->b->ncols; i++) {
        t = duckdb_create_logical_type(duck_batch_col_type(j->b->cols[i].type));
        duckdb_bind_add_result_column(info, j->b->cols[i].name, t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_bind_set_cardinality(info, j->n, true);
    duckdb_bind_set_bind_data(info, j, NULL); /* borrowed: lives on the caller's stack */
}

static void scan_init(duckdb_init_info info)
{
    duckdb_init_set_init_data(info, xcalloc(1, sizeof(struct pq_scan_state)), free);
    duckdb_init_set_max_threads(info, 1); /* output order = row order */
}

static void scan_func(duckdb_function_info info, duckdb_data_chunk out)
{
    struct pq_job *j = duckdb_function_get_bind_data(info);
    struct pq_scan_state *st = duckdb_function_get_init_data(info);
    size_t count = j->n - st->pos;

    if (count > duckdb_vector_size())
        count = duckdb_vector_size();
    if (count == 0) {
        duckdb_data_chunk_set_size(out, 0);
        return;
    }
    duck_job_fill_chunk(j, out, st->pos, count);
    st->pos += count;
}

enum err duck_parquet_register(struct duck *d, duckdb_connection c, struct errbuf *eb)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
    enum err rc = ERR_OK;

    (void)d;
    duckdb_table_function_set_name(f, "arc_batch_scan");
    duckdb_table_function_add_parameter(f, t);
    duckdb_table_function_set_bind(f, scan_bind);
    duckdb_table_function_set_init(f, scan_init);
    duckdb_table_function_set_function(f, scan_func);
    /* Registered in the system catalog: visible to every writer connection. */
    if (duckdb_register_table_function(c, f) != DuckDBSuccess)
        rc = errbuf_set(eb, ERR_DB, "duckdb: cannot register arc_batch_scan");
    duckdb_destroy_logical_type(&t);
    duckdb_destroy_table_function(&f);
    return rc;
}

/* ---- COPY ------------------------------------------------------------------------ */

/* Append " TO 'path' (FORMAT parquet, ...)" to sql: the options and key-value
 * metadata every Arc file has (tags: comma-joined tag column names); extra_kv, if
 * any, is appended inside the KV_METADATA struct (", key: 'value'"). */
static enum err append_copy_opts_kv(struct buf *sql, const char *tags, const char *measurement,
                                    const char *path, const struct duck_parquet_opts *o,
                                    const char *extra_kv)
{
    buf_append_str(sql, " TO ");
    duck_sql_str(sql, path, strlen(path));
    buf_append_str(sql, " (FORMAT parquet, COMPRESSION ");
    switch (o->compression) {
    case DUCK_PQ_SNAPPY: buf_append_str(sql, "snappy"); break;
    case DUCK_PQ_UNCOMPRESSED: buf_append_str(sql, "uncompressed"); break;
    default:
        buf_append_str(sql, "zstd");
        if (o->zstd_level > 0)
            buf_printf(sql, ", COMPRESSION_LEVEL %d", o->zstd_level);
        break;
    }
    if (o->row_group_rows)
        buf_printf(sql, ", ROW_GROUP_SIZE %llu", (unsigned long long)o->row_group_rows);
    buf_append_str(sql, ", KV_METADATA {arc_tags: ");
    duck_sql_str(sql, tags ? tags : "", tags ? strlen(tags) : 0);
    buf_append_str(sql, ", arc_measurement: ");
    duck_sql_str(sql, measurement ? measurement : "", measurement ? strlen(measurement) : 0);
    buf_append_str(sql, ", arc_version: ");
    duck_sql_str(sql, ARC_VERSION, strlen(ARC_VERSION));
    if (extra_kv)
        buf_append_str(sql, extra_kv);
    return buf_append_str(sql, "})");
}

static enum err append_copy_opts(struct buf *sql, const struct batch *b, const char *path,
                                 const struct duck_parquet_opts *o)
{
    struct buf tags;
    enum err rc;
    bool first = true;

    buf_init(&tags, PQ_SQL_MAX);
    for (size_t i = 0; i < b->ncols; i++) {
        if (!b->cols[i].is_tag)
            continue;
        if (!first)
            buf_append_char(&tags, ',');
        buf_append_str(&tags, b->cols[i].name);
        first = false;
    }
    rc = append_copy_opts_kv(sql, tags.data, b->measurement, path, o, NULL);
    buf_release(&tags);
    return rc;
}

/* Appender path: chunks into a connection-local temp table, then COPY it. */
static enum err write_via_appender(duckdb_connection c, struct pq_job *j, const char *path,
                                   const struct duck_parquet_opts *o, struct errbuf *eb)
{
    const struct batch *b = j->b;
    duckdb_appender app = NULL;
    duckdb_logical_type *types;
    duckdb_data_chunk ch;
    struct buf sql;
    enum err rc;

    buf_init(&sql, PQ_SQL_MAX);
    buf_append_str(&sql, "CREATE OR REPLACE TEMP TABLE arc_tmp (\"time\" TIMESTAMP");
    for (size_t i = 0; i < b->ncols; i++) {
        buf_append_str(&sql, ", ");
        duck_sql_ident(&sql, b->cols[i].name);
        buf_printf(&sql, " %s", batch_type_sql(b->cols[i].type));
    }
    if ((rc = buf_append_char(&sql, ')')) != ERR_OK) {
        rc = errbuf_set(eb, ERR_LIMIT, "parquet: table definition too long");
        goto out_sql;
    }
    if ((rc = duck_exec(c, sql.data, eb)) != ERR_OK)
        goto out_sql;
    if (duckdb_appender_create_ext(c, "temp", "main", "arc_tmp", &app) != DuckDBSuccess) {
        rc = errbuf_set(eb, ERR_DB, "duckdb: appender: %s", duckdb_appender_error(app));
        goto out_app;
    }
    types = xcalloc(b->ncols + 1, sizeof(*types));
    types[0] = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    for (size_t i = 0; i < b->ncols; i++)
        types[i + 1] = duckdb_create_logical_type(duck_batch_col_type(b->cols[i].type));
    ch = duckdb_create_data_chunk(types, b->ncols + 1);
    for (size_t i = 0; i <= b->ncols; i++)
        duckdb_destroy_logical_type(&types[i]);
    free(types);
    for (size_t pos = 0; pos < j->n && rc == ERR_OK;) {
        size_t count = j->n - pos < duckdb_vector_size() ? j->n - pos : duckdb_vector_size();
        duckdb_data_chunk_reset(ch);
        duck_job_fill_chunk(j, ch, pos, count);
        if (duckdb_append_data_chunk(app, ch) != DuckDBSuccess)
            rc = errbuf_set(eb, ERR_DB, "duckdb: append: %s", duckdb_appender_error(app));
        pos += count;
    }
    duckdb_destroy_data_chunk(&ch);
    if (rc == ERR_OK && duckdb_appender_close(app) != DuckDBSuccess)
        rc = errbuf_set(eb, ERR_DB, "duckdb: appender close: %s", duckdb_appender_error(app));
    if (rc != ERR_OK)
        goto out_app;
    buf_reset(&sql);
    buf_append_str(&sql, "COPY arc_tmp");
    if (append_copy_opts(&sql, b, path, o) != ERR_OK) {
        rc = errbuf_set(eb, ERR_LIMIT, "parquet: COPY statement too long");
        goto out_app;
    }
    rc = duck_exec(c, sql.data, eb);
out_app:
    duckdb_appender_destroy(&app);
    duck_exec(c, "DROP TABLE IF EXISTS temp.main.arc_tmp", NULL);
out_sql:
    buf_release(&sql);
    return rc;
}

enum err duck_write_parquet(struct duck *d, const struct batch *b, const uint32_t *rows,
                            size_t nrows, const char *path, const struct duck_parquet_opts *o,
                            struct errbuf *eb)
{
    static const struct duck_parquet_opts defaults = {.compression = DUCK_PQ_ZSTD};
    struct pq_job j = {.magic = PQ_MAGIC, .b = b, .rows = rows};
    duckdb_connection c;
    struct buf sql;
    enum err rc;

    if (!o)
        o = &defaults;
    if (!b || !path)
        return errbuf_set(eb, ERR_INVAL, "parquet: no batch or path");
    j.n = rows ? nrows : b->nrows;
    if (rows) {
        for (size_t i = 0; i < nrows; i++)
            if (rows[i] >= b->nrows)
                return errbuf_set(eb, ERR_INVAL, "parquet: row index %u at %zu >= %zu rows",
                                  rows[i], i, b->nrows);
    }
    for (size_t i = 0; i < b->ncols; i++) {
        const struct batch_col *col = &b->cols[i];
        if (duck_batch_col_type(col->type) == DUCKDB_TYPE_INVALID || !col->name)
            return errbuf_set(eb, ERR_INVAL, "parquet: column %zu has an invalid type", i);
        if (strcasecmp(col->name, "time") == 0)
            return errbuf_set(eb, ERR_INVAL, "parquet: column name 'time' is reserved");
        if (col->type == BATCH_STR && !b->dict)
            return errbuf_set(eb, ERR_INVAL, "parquet: string column %s without dictionary",
                              col->name);
    }
    j.str_per_value = o->strings_per_value;
    if ((rc = duck_writer_conn_get(d, &c, eb)) != ERR_OK)
        return rc;
    duck_job_build_dict(&j);

    buf_init(&sql, PQ_SQL_MAX);
    if (o->method == DUCK_PQ_APPENDER) {
        rc = write_via_appender(c, &j, path, o, eb);
    } else {
        buf_printf(&sql, "COPY (SELECT * FROM arc_batch_scan(%llu::UBIGINT))",
                   (unsigned long long)(uintptr_t)&j);
        if (append_copy_opts(&sql, b, path, o) != ERR_OK)
            rc = errbuf_set(eb, ERR_LIMIT, "parquet: COPY statement too long");
        else
            rc = duck_exec(c, sql.data, eb);
    }
    if (rc != ERR_OK)
        errbuf_prefix(eb, "write %s", path);
    buf_release(&sql);
    if (j.dict)
        duckdb_destroy_vector(&j.dict);
    j.magic = 0;
    duck_writer_conn_put(d, c);
    return rc;
}

/* ---- compaction ------------------------------------------------------------------ */

enum err duck_merge_parquet(struct duck *d, const char *const *inputs, size_t n, bool sorted,
                            const char *measurement, const char *tags, const char *sources,
                            const char *path, const struct duck_parquet_opts *o,
                            uint64_t *rows_out, struct errbuf *eb)
{
    static const struct duck_parquet_opts defaults = {.compression = DUCK_PQ_ZSTD};
    duckdb_connection c;
    duckdb_result res;
    struct buf sql, kv;
    enum err rc = ERR_OK;

    if (!o)
        o = &defaults;
    if (!n || !path)
        return errbuf_set(eb, ERR_INVAL, "merge: no input or output");
    buf_init(&sql, 0);
    buf_init(&kv, 0);
    buf_append_str(&sql, "COPY (SELECT * FROM read_parquet([");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append_char(&sql, ',');
        duck_sql_str(&sql, inputs[i], strlen(inputs[i]));
    }
    /* threads=1 and insertion order preserved: inputs given in time order whose
     * ranges do not overlap come out sorted without a sort */
    buf_append_str(&sql, "], union_by_name=true)");
    if (!sorted)
        buf_append_str(&sql, " ORDER BY \"time\"");
    buf_append_char(&sql, ')');
    if (sources) {
        buf_append_str(&kv, ", arc_compacted_from: ");
        duck_sql_str(&kv, sources, strlen(sources));
    }
    if (append_copy_opts_kv(&sql, tags, measurement, path, o, kv.data) != ERR_OK) {
        rc = errbuf_set(eb, ERR_LIMIT, "merge: COPY statement too long");
        goto out;
    }
    if ((rc = duck_writer_conn_get(d, &c, eb)) != ERR_OK)
        goto out;
    if (duckdb_query(c, sql.data, &res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&res);
        rc = errbuf_set(eb, ERR_DB, "merge into %s: %s", path, m ? m : "COPY failed");
    } else if (rows_out) {
        *rows_out = (uint64_t)duckdb_value_int64(&res, 0, 0);
    }
    duckdb_destroy_result(&res);
    duck_writer_conn_put(d, c);
out:
    buf_release(&sql);
    buf_release(&kv);
    return rc;
}
