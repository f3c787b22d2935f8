/* duck_scan.c - rows held in memory as a table on the query instance.
 *
 * Two kinds of rows are read this way: batches still in the ingest buffers
 * (read-your-writes: the query engine snapshots them) and the hot tier's copies of
 * recently written files (storage/hot.h: pinned, already narrowed by the engine to
 * the rows a query can use). The engine registers a set of segments - rows
 * [start, start+count) of a batch, through an optional row order - with
 * duck_scan_add_segs() (duck_scan_add() for one whole batch) and gets a numeric id;
 * the SQL it generates then reads `arc_batch_scan(<id>)`, a table function of the
 * query instance that fills DuckDB vectors straight from the batches (the fill code
 * of the Parquet writer: memcpy or gathers for numbers, dictionary slices for
 * strings), only for the columns the statement uses (projection pushdown), on up to
 * one thread per 16 vectors of rows.
 *
 * Unlike the writer instance, the query instance runs user SQL, so the id is never
 * a pointer: it is looked up in a registry under a mutex, and an unknown id fails
 * with "invalid handle". (User SQL cannot name the function anyway: the query
 * engine's parse-tree check only admits range/generate_series/unnest.)
 * The caller keeps the batches alive and registered until every result that reads
 * them has been freed. */
#include "duck/duck.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "duck/duck_int.h"

struct scan_bind {
    struct duck_seg *segs; /* copy of the registry's; the batches are registered until
                              the query's result is freed */
    size_t nsegs;
    uint64_t rows;
};

struct scan_state {
    struct pq_job *jobs;   /* one per distinct batch (its dictionary) */
    size_t njobs;
    size_t *seg_job;       /* segs[i] reads through jobs[seg_job[i]] */
    size_t *cols;          /* projected output column -> batch column (DUCK_COL_TIME,
                              or past ncols: a row id DuckDB asked for) */
    size_t ncols;
    pthread_mutex_t mu;    /* guards the cursor: several threads scan at once */
    size_t seg, pos;       /* next rows to hand out */
};

static uint64_t scan_add(struct duck *d, struct duck_seg *segs, size_t n)
{
    uint64_t id;

    pthread_mutex_lock(&d->scan_mu);
    if (d->nscans == d->scans_cap) {
        d->scans_cap = d->scans_cap ? 2 * d->scans_cap : 16;
        d->scans = xreallocarray(d->scans, d->scans_cap, sizeof(*d->scans));
    }
    id = ++d->next_scan_id;
    d->scans[d->nscans].id = id;
    d->scans[d->nscans].segs = segs;
    d->scans[d->nscans].nsegs = n;
    d->nscans++;
    pthread_mutex_unlock(&d->scan_mu);
    return id;
}

uint64_t duck_scan_add(struct duck *d, const struct batch *b)
{
    struct duck_seg *s = xcalloc(1, sizeof(*s));

    s->b = b;
    s->count = b->nrows;
    return scan_add(d, s, 1);
}

uint64_t duck_scan_add_segs(struct duck *d, const struct duck_seg *segs, size_t n)
{
    struct duck_seg *s = xcalloc(n ? n : 1, sizeof(*s));

    memcpy(s, segs, n * sizeof(*s));
    return scan_add(d, s, n);
}

void duck_scan_remove(struct duck *d, uint64_t id)
{
    pthread_mutex_lock(&d->scan_mu);
    for (size_t i = 0; i < d->nscans; i++) {
        if (d->scans[i].id == id) {
            free(d->scans[i].segs);
            d->scans[i] = d->scans[--d->nscans];
            break;
        }
    }
    pthread_mutex_unlock(&d->scan_mu);
}

/* A copy of the segments registered under id into sb; false if unknown or empty. */
static bool scan_lookup(struct duck *d, uint64_t id, struct scan_bind *sb)
{
    bool found = false;

    pthread_mutex_lock(&d->scan_mu);
    for (size_t i = 0; i < d->nscans; i++) {
        if (d->scans[i].id == id && d->scans[i].nsegs > 0) {
            sb->nsegs = d->scans[i].nsegs;
            sb->segs = xcalloc(sb->nsegs, sizeof(*sb->segs));
            memcpy(sb->segs, d->scans[i].segs, sb->nsegs * sizeof(*sb->segs));
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&d->scan_mu);
    return found;
}

static void bind_free(void *p)
{
    struct scan_bind *sb = p;

    free(sb->segs);
    free(sb);
}

static void bq_bind(duckdb_bind_info info)
{
    struct duck *d = duckdb_bind_get_extra_info(info);
    duckdb_value hv = duckdb_bind_get_parameter(info, 0);
    uint64_t id = duckdb_get_uint64(hv);
    const struct batch *b;
    struct scan_bind *sb = xcalloc(1, sizeof(*sb));
    duckdb_logical_type t;

    duckdb_destroy_value(&hv);
    if (!scan_lookup(d, id, sb)) {
        free(sb);
        duckdb_bind_set_error(info, "arc_batch_scan: invalid handle");
        return;
    }
    b = sb->segs[0].b;
    t = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    duckdb_bind_add_result_column(info, "time", t);
    duckdb_destroy_logical_type(&t);
    for (size_t i = 0; i < b->ncols; i++) {
        t = duckdb_create_logical_type(duck_batch_col_type(b->cols[i].type));
        duckdb_bind_add_result_column(info, b->cols[i].name, t);
        duckdb_destroy_logical_type(&t);
    }
    for (size_t i = 0; i < sb->nsegs; i++)
        sb->rows += sb->segs[i].count;
    duckdb_bind_set_cardinality(info, sb->rows, true);
    duckdb_bind_set_bind_data(info, sb, bind_free);
}

static void state_free(void *p)
{
    struct scan_state *st = p;

    for (size_t i = 0; i < st->njobs; i++)
        if (st->jobs[i].dict)
            duckdb_destroy_vector(&st->jobs[i].dict);
    pthread_mutex_destroy(&st->mu);
    free(st->jobs);
    free(st->seg_job);
    free(st->cols);
    free(st);
}

static void bq_init(duckdb_init_info info)
{
    struct scan_bind *sb = duckdb_init_get_bind_data(info);
    struct scan_state *st = xcalloc(1, sizeof(*st));
    const struct batch *b0 = sb->segs[0].b;
    bool any_str = false;
    uint64_t threads;

    pthread_mutex_init(&st->mu, NULL);
    st->ncols = duckdb_init_get_column_count(info);
    st->cols = xcalloc(st->ncols ? st->ncols : 1, sizeof(*st->cols));
    for (size_t i = 0; i < st->ncols; i++) {
        idx_t c = duckdb_init_get_column_index(info, i);
        st->cols[i] = c == 0 ? DUCK_COL_TIME : (size_t)c - 1;
        if (st->cols[i] < b0->ncols && b0->cols[st->cols[i]].type == BATCH_STR)
            any_str = true;
    }
    st->jobs = xcalloc(sb->nsegs, sizeof(*st->jobs));
    st->seg_job = xcalloc(sb->nsegs, sizeof(*st->seg_job));
    for (size_t i = 0; i < sb->nsegs; i++) {
        size_t k = 0;
        while (k < st->njobs && st->jobs[k].b != sb->segs[i].b)
            k++;
        if (k == st->njobs) {
            st->jobs[k].b = sb->segs[i].b; /* rows: per segment, set at fill time */
            st->jobs[k].n = sb->segs[i].b->nrows;
            if (any_str) /* the dictionary only when a string column is read */
                duck_job_build_dict(&st->jobs[k]);
            st->njobs++;
        }
        st->seg_job[i] = k;
    }
    duckdb_init_set_init_data(info, st, state_free);
    /* one thread per 16 vectors of rows: small scans stay on the calling thread */
    threads = sb->rows / (16 * duckdb_vector_size()) + 1;
    duckdb_init_set_max_threads(info, threads);
}

static void bq_func(duckdb_function_info info, duckdb_data_chunk out)
{
    struct scan_bind *sb = duckdb_function_get_bind_data(info);
    struct scan_state *st = duckdb_function_get_init_data(info);
    struct pq_job job;
    size_t seg, pos, count = 0;

    pthread_mutex_lock(&st->mu);
    while (st->seg < sb->nsegs && st->pos >= sb->segs[st->seg].count) {
        st->seg++;
        st->pos = 0;
    }
    seg = st->seg;
    pos = st->pos;
    if (seg < sb->nsegs) {
        count = sb->segs[seg].count - pos;
        if (count > duckdb_vector_size())
            count = duckdb_vector_size();
        st->pos += count;
    }
    pthread_mutex_unlock(&st->mu);
    if (count == 0) {
        duckdb_data_chunk_set_size(out, 0);
        return;
    }
    /* the batch's job (its dictionary) with this segment's row order */
    job = st->jobs[st->seg_job[seg]];
    job.rows = sb->segs[seg].rows;
    for (size_t i = 0; i < st->ncols; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(out, i);
        if (st->cols[i] == DUCK_COL_TIME || st->cols[i] < job.b->ncols) {
            duck_job_fill_col(&job, st->cols[i], v, sb->segs[seg].start + pos, count);
        } else { /* a row id: the position in the scan's input */
            int64_t *d = duckdb_vector_get_data(v);
            for (size_t r = 0; r < count; r++)
                d[r] = (int64_t)(pos + r);
        }
    }
    duckdb_data_chunk_set_size(out, count);
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
    duckdb_table_function_supports_projection_pushdown(f, true);
    if (duckdb_register_table_function(c, f) != DuckDBSuccess)
        rc = errbuf_set(eb, ERR_DB, "duckdb: cannot register arc_batch_scan (query instance)");
    duckdb_destroy_logical_type(&t);
    duckdb_destroy_table_function(&f);
    return rc;
}
