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
    pthread_mutex_t mu; /* guards the scan state's cursor; also orders memory for
                           TSan, which cannot see DuckDB's own hand-offs: the query
                           thread (which pinned the rows) unlocks it in bind, init
                           holds it while it builds the state, every thread that
                           fills a chunk takes it before and after, and the free of
                           the bind data (before the rows are unpinned) takes it */
};

struct scan_state {
    struct pq_job *jobs; /* one per distinct batch (its dictionary) */
    size_t njobs;
    size_t *seg_job; /* segs[i] reads through jobs[seg_job[i]] */
    size_t *cols;    /* projected output column -> batch column (DUCK_COL_TIME,
                        or past ncols: a row id DuckDB asked for) */
    size_t ncols;
    size_t seg, pos;    /* next rows to hand out */
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

    pthread_mutex_lock(&sb->mu); /* after every fill's unlock (see scan_bind.mu) */
    pthread_mutex_unlock(&sb->mu);
    pthread_mutex_destroy(&sb->mu);
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
    pthread_mutex_init(&sb->mu, NULL);
    pthread_mutex_lock(&sb->mu); /* publish (see scan_bind.mu) */
    pthread_mutex_unlock(&sb->mu);
    duckdb_bind_set_cardinality(info, sb->rows, true);
    duckdb_bind_set_bind_data(info, sb, bind_free);
}

static void state_free(void *p)
{
    struct scan_state *st = p;

    for (size_t i = 0; i < st->njobs; i++)
        if (st->jobs[i].dict)
            duckdb_destroy_vector(&st->jobs[i].dict);
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

    pthread_mutex_lock(&sb->mu); /* reads the rows, publishes st (see scan_bind.mu) */
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
    pthread_mutex_unlock(&sb->mu);
    duckdb_init_set_init_data(info, st, state_free);
    /* one thread per 16 vectors of rows: small scans stay on the calling thread */
    threads = sb->rows / (16 * duckdb_vector_size()) + 1;
    duckdb_init_set_max_threads(info, threads);
}

/* Rows of one segment that go into the chunk being filled. */
struct piece {
    const uint32_t *rows; /* the segment's row order, NULL = in place */
    size_t start, count;  /* rows[start .. start+count) of the batch */
    size_t off;           /* first output row */
};

#define PIECE_ROW(p, i) ((p)->rows ? (p)->rows[(p)->start + (i)] : (p)->start + (i))

/* Column ci (DUCK_COL_TIME or a batch column) of the pieces into v. Several pieces
 * share one vector, so strings are one dictionary slice over the whole chunk and
 * NULLs are marked row by row. */
static void fill_pieces(const struct pq_job *j, size_t ci, duckdb_vector v, const struct piece *pc,
                        size_t npc, size_t total)
{
    const struct batch_col *c = ci == DUCK_COL_TIME ? NULL : &j->b->cols[ci];
    uint64_t *mask = NULL;

    if (c && c->type == BATCH_STR) {
        duckdb_selection_vector sel = duckdb_create_selection_vector(total);
        sel_t *sv = duckdb_selection_vector_get_data_ptr(sel);
        const uint32_t *ids = c->data;
        for (size_t k = 0; k < npc; k++)
            for (size_t i = 0; i < pc[k].count; i++) {
                size_t r = PIECE_ROW(&pc[k], i);
                sv[pc[k].off + i] = (!c->valid || c->valid[r]) ? ids[r] : j->null_id;
            }
        duckdb_vector_reference_vector(v, j->dict);
        duckdb_slice_vector(v, sel, total);
        duckdb_destroy_selection_vector(sel);
        return;
    }
    if (c && c->valid) {
        duckdb_vector_ensure_validity_writable(v);
        mask = duckdb_vector_get_validity(v);
    }
    for (size_t k = 0; k < npc; k++) {
        const struct piece *p = &pc[k];
        if (!c || c->type != BATCH_BOOL) { /* 8-byte values: time, DOUBLE, BIGINT, UBIGINT */
            uint64_t *d = (uint64_t *)duckdb_vector_get_data(v) + p->off;
            const uint64_t *src = c ? c->data : (const void *)j->b->time_us;
            if (!p->rows)
                memcpy(d, src + p->start, p->count * sizeof(*d));
            else
                for (size_t i = 0; i < p->count; i++)
                    d[i] = src[p->rows[p->start + i]];
        } else { /* DuckDB needs 0/1 and NULL slots may hold anything */
            uint8_t *d = (uint8_t *)duckdb_vector_get_data(v) + p->off;
            const uint8_t *src = c->data;
            for (size_t i = 0; i < p->count; i++)
                d[i] = src[PIECE_ROW(p, i)] != 0;
        }
        if (mask)
            for (size_t i = 0; i < p->count; i++)
                if (!c->valid[PIECE_ROW(p, i)])
                    duckdb_validity_set_row_invalid(mask, p->off + i);
    }
}

/* Fill one chunk from the next rows: consecutive segments of the same batch share a
 * chunk (a lastpoint reads ~100 rows from each of many files), so DuckDB sees full
 * chunks instead of many small ones. */
static void bq_func(duckdb_function_info info, duckdb_data_chunk out)
{
    struct scan_bind *sb = duckdb_function_get_bind_data(info);
    struct scan_state *st = duckdb_function_get_init_data(info);
    size_t cap = duckdb_vector_size(), total = 0, npc = 0, job = 0;
    struct piece pc[64];

    pthread_mutex_lock(&sb->mu);
    while (total < cap && npc < 64) {
        const struct duck_seg *g;
        size_t n;
        while (st->seg < sb->nsegs && st->pos >= sb->segs[st->seg].count) {
            st->seg++;
            st->pos = 0;
        }
        if (st->seg >= sb->nsegs || (npc && st->seg_job[st->seg] != job))
            break;
        g = &sb->segs[st->seg];
        job = st->seg_job[st->seg];
        n = g->count - st->pos < cap - total ? g->count - st->pos : cap - total;
        pc[npc].rows = g->rows;
        pc[npc].start = g->start + st->pos;
        pc[npc].count = n;
        pc[npc].off = total;
        npc++;
        st->pos += n;
        total += n;
    }
    pthread_mutex_unlock(&sb->mu);
    for (size_t i = 0; i < st->ncols && total; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(out, i);
        if (st->cols[i] == DUCK_COL_TIME || st->cols[i] < st->jobs[job].b->ncols) {
            fill_pieces(&st->jobs[job], st->cols[i], v, pc, npc, total);
        } else { /* a row id (asked for when no column is: count(*)); never read */
            int64_t *d = duckdb_vector_get_data(v);
            for (size_t r = 0; r < total; r++)
                d[r] = (int64_t)r;
        }
    }
    pthread_mutex_lock(&sb->mu); /* the reads above happen before the rows are freed */
    pthread_mutex_unlock(&sb->mu);
    duckdb_data_chunk_set_size(out, total);
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
