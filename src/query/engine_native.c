/* engine_native.c - the query engine's use of the native executor (native.h): run it
 * over a reference's snapshot, and keep the names and types DuckDB gave a plan so a
 * native answer looks exactly like DuckDB's. */
#include "query/engine_int.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/mem.h"
#include "duck/duck.h"
#include "query/native.h"
#include "query/plan.h"

/* A copy of the plan's record, if it was made against the same columns (sig). */
static struct nx_record *record_copy(struct query_plan *plan, uint64_t sig)
{
    struct nx_record *rec = NULL;

    pthread_mutex_lock(&plan->nx_mu);
    if (plan->nx_rec && plan->nx_rec->catalog_sig == sig) {
        const struct nx_record *p = plan->nx_rec;
        rec = xcalloc(1, sizeof(*rec));
        rec->ncols = p->ncols;
        rec->catalog_sig = p->catalog_sig;
        rec->names = xcalloc(p->ncols ? p->ncols : 1, sizeof(*rec->names));
        rec->types = xcalloc(p->ncols ? p->ncols : 1, sizeof(*rec->types));
        for (size_t i = 0; i < p->ncols; i++) {
            rec->names[i] = xstrdup(p->names[i]);
            rec->types[i] = p->types[i];
        }
    }
    pthread_mutex_unlock(&plan->nx_mu);
    return rec;
}

bool qe_try_native(struct query_plan *plan, struct snap *s, struct query_profile *prof,
                   struct duck_result **res)
{
    struct nx_record *rec = record_copy(plan, nx_catalog_sig(s->cols, s->ncols));
    struct nx_input in;
    bool ok;

    if (!rec)
        return false;
    in = (struct nx_input){s->hot, s->nhot, s->batches, s->nbatches, s->cols, s->ncols};
    ok = nx_exec(plan->native, rec, &in, res);
    nx_record_free(rec);
    if (ok) {
        prof->native = true;
        prof->materialized = true;
        prof->latest = s->latest && s->pinned > 0; /* read each file's newest rows */
    }
    return ok;
}

void qe_record_native(struct query_plan *plan, const struct snap *s, struct duck_result *res)
{
    struct nx_record *rec;
    uint64_t sig;
    size_t n;

    if (!res)
        return;
    sig = nx_catalog_sig(s->cols, s->ncols);
    pthread_mutex_lock(&plan->nx_mu);
    if (plan->nx_rec && plan->nx_rec->catalog_sig == sig) {
        pthread_mutex_unlock(&plan->nx_mu);
        return;
    }
    n = duck_result_ncols(res);
    rec = xcalloc(1, sizeof(*rec));
    rec->ncols = n;
    rec->catalog_sig = sig;
    rec->names = xcalloc(n ? n : 1, sizeof(*rec->names));
    rec->types = xcalloc(n ? n : 1, sizeof(*rec->types));
    for (size_t i = 0; i < n; i++) {
        const char *name = duck_result_col_name(res, i);
        rec->names[i] = xstrdup(name ? name : "");
        rec->types[i] = duck_result_col_type(res, i);
    }
    nx_record_free(plan->nx_rec);
    plan->nx_rec = rec;
    pthread_mutex_unlock(&plan->nx_mu);
}
