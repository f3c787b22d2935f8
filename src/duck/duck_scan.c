/* duck_scan.c - buffered (not yet flushed) rows as a table on the query instance.
 *
 * Read-your-writes needs queries to see rows that still sit in the ingest buffers.
 * The query engine takes a snapshot of them (owned column batches) and registers
 * each batch here with duck_scan_add(), which hands back a numeric id; the SQL it
 * generates then reads `arc_batch_scan(<id>)`, a table function of the query
 * instance that fills DuckDB vectors straight from the batch (the same fill code
 * the Parquet writer uses: memcpy for numbers, dictionary slices for strings).
 *
 * Unlike the writer instance, the query instance runs user SQL, so the id is never
 * a pointer: it is looked up in a registry under a mutex, and an unknown id fails
 * with "invalid handle". (User SQL cannot name the function anyway: the query
 * engine's parse-tree check only admits range/generate_series/unnest.)
 * The caller keeps the batch alive and registered until every result that reads
 * it has been freed. */
#include "duck/duck.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "duck/duck_int.h"

struct scan_bind {
    const struct batch *b; /* borrowed: registered until the query's result is freed */
};

struct scan_state {
    struct pq_job job; /* dict built once per scan */
    size_t pos;        /* next output row */
};

uint64_t duck_scan_add(struct duck *d, const struct batch *b)
{
    uint64_t id;

    pthread_mutex_lock(&d->scan_mu);
    if (d->nscans == d->scans_cap) {
        d->scans_cap = d->scans_cap ? 2 * d->scans_cap : 16;
        d->scans = xreallocarray(d->scans, d->scans_cap, sizeof(*d->scans));
    }
    id = ++d->next_scan_id;
    d->scans[d->nscans].id = id;
    d->scans[d->nscans].b = b;
    d->nscans++;
    pthread_mutex_unlock(&d->scan_mu);
    return id;
}

void duck_scan_remove(struct duck *d, uint64_t id)
{
    pthread_mutex_lock(&d->scan_mu);
    for (size_t i = 0; i < d->nscans; i++) {
        if (d->scans[i].id == id) {
            d->scans[i] = d->scans[--d->nscans];
            break;
        }
    }
    pthread_mutex_unlock(&d->scan_mu);
}

static const struct batch *scan_lookup(struct duck *d, uint64_t id)
{
    const struct batch *b = NULL;

    pthread_mutex_lock(&d->scan_mu);
    for (size_t i = 0; i < d->nscans; i++) {
        if (d->scans[i].id == id) {
            b = d->scans[i].b;
            break;
        }
    }
    pthread_mutex_unlock(&d->scan_mu);
    return b;
}

static void bq_bind(duckdb_bind_info info)
{
    struct duck *d = duckdb_bind_get_extra_info(info);
    duckdb_value hv = duckdb_bind_get_parameter(info, 0);
    uint64_t id = duckdb_get_uint64(hv);
    const struct batch *b;
    struct scan_bind *sb;
    duckdb_logical_type t;

    duckdb_destroy_value(&hv);
    b = scan_lookup(d, id);
    if (!b) {
        duckdb_bind_set_error(info, "arc_batch_scan: invalid handle");
        return;
    }
    t = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    duckdb_bind_add_result_column(info, "time", t);
    duckdb_destroy_logical_type(&t);
    for (size_t i = 0; i < b->ncols; i++) {
        t = duckdb_create_logical_type(duck_batch_col_type(b->cols[i].type));
        duckdb_bind_add_result_column(info, b->cols[i].name, t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_bind_set_cardinality(info, b->nrows, true);
    sb = xcalloc(1, sizeof(*sb));
    sb->b = b;
    duckdb_bind_set_bind_data(info, sb, free);
}

static void state_free(void *p)
{
    struct scan_state *st = p;

    if (st->job.dict)
        duckdb_destroy_vector(&st->job.dict);
    free(st);
}

static void bq_init(duckdb_init_info info)
{
    struct scan_bind *sb = duckdb_init_get_bind_data(info);
    struct scan_state *st = xcalloc(1, sizeof(*st));

    st->job.b = sb->b;
    st->job.n = sb->b->nrows;
    duck_job_build_dict(&st->job);
    duckdb_init_set_init_data(info, st, state_free);
    duckdb_init_set_max_threads(info, 1);
}

static void bq_func(duckdb_function_info info, duckdb_data_chunk out)
{
    struct scan_state *st = duckdb_function_get_init_data(info);
    size_t count = st->job.n - st->pos;

    if (count > duckdb_vector_size())
        count = duckdb_vector_size();
    if (count == 0) {
        duckdb_data_chunk_set_size(out, 0);
        return;
    }
    duck_job_fill_chunk(&st->job, out, st->pos, count);
    st->pos += count;
}

enum err duck_scan_register(struct duck *d, duckdb_connection c, struct errbuf *eb)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
    enum err rc = ERR_OK;

    duckdb_table_function_set_name(f, "arc_batch_scan");
    duckdb_table_function_add_parameter(f, t);
    duckdb_table_function_set_extra_info(f, d, NULL);
    duckdb_table_function_set_bind(f, bq_bind);
    duckdb_table_function_set_init(f, bq_init);
    duckdb_table_function_set_function(f, bq_func);
    if (duckdb_register_table_function(c, f) != DuckDBSuccess)
        rc = errbuf_set(eb, ERR_DB, "duckdb: cannot register arc_batch_scan (query instance)");
    duckdb_destroy_logical_type(&t);
    duckdb_destroy_table_function(&f);
    return rc;
}
