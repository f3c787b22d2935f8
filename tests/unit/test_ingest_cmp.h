/* test_ingest_cmp.h - compare two decode results value by value (tests, fuzzers).
 *
 * Two results are equal when they hold the same measurements in the same order,
 * each with the same columns (name, type, tag or not) in the same order, the
 * same row count and times, the same NULLs, and the same values; strings are
 * compared by content (dictionary ids may differ). Used to check that a parallel
 * decode builds exactly what the sequential one builds. Header-only: static
 * functions for the test or fuzzer that includes it. */
#ifndef TEST_INGEST_CMP_H
#define TEST_INGEST_CMP_H

#include <stdio.h>
#include <string.h>

#include "ingest/ingest.h"

static int ingest_cmp_fail(char *why, size_t cap, const char *fmt, const char *a, size_t n)
{
    snprintf(why, cap, fmt, a, n);
    return 0;
}

static size_t ingest_cmp_width(enum batch_type t)
{
    return t == BATCH_BOOL ? 1 : t == BATCH_STR ? 4 : 8;
}

/* 1 if a and b are equal as described above, else 0 and why says where. */
static int ingest_result_equal(const struct ingest_result *a, const struct ingest_result *b,
                               char *why, size_t cap)
{
    size_t i, j, r;

    if (a->nbatches != b->nbatches || a->nrows != b->nrows)
        return ingest_cmp_fail(why, cap, "%s: %zu batches/rows differ", "result",
                               a->nbatches);
    for (i = 0; i < a->nbatches; i++) {
        const struct batch *x = a->batches[i], *y = b->batches[i];
        if (strcmp(x->measurement, y->measurement) != 0 || x->nrows != y->nrows ||
            x->ncols != y->ncols)
            return ingest_cmp_fail(why, cap, "measurement %s (#%zu): name/rows/columns differ",
                                   x->measurement, i);
        if (x->nrows && memcmp(x->time_us, y->time_us, x->nrows * sizeof(*x->time_us)) != 0)
            return ingest_cmp_fail(why, cap, "measurement %s: times differ (#%zu)",
                                   x->measurement, i);
        for (j = 0; j < x->ncols; j++) {
            const struct batch_col *c = &x->cols[j], *d = &y->cols[j];
            size_t w = ingest_cmp_width(c->type);
            if (strcmp(c->name, d->name) != 0 || c->type != d->type || c->is_tag != d->is_tag)
                return ingest_cmp_fail(why, cap, "column %s (#%zu): name/type/tag differ",
                                       c->name, j);
            for (r = 0; r < x->nrows; r++) {
                int va = batch_is_valid(c, r), vb = batch_is_valid(d, r);
                if (va != vb)
                    return ingest_cmp_fail(why, cap, "column %s: NULL differs at row %zu",
                                           c->name, r);
                if (!va)
                    continue;
                if (c->type == BATCH_STR) {
                    size_t la, lb;
                    const char *sa = strdict_get(x->dict, ((const uint32_t *)c->data)[r], &la);
                    const char *sb = strdict_get(y->dict, ((const uint32_t *)d->data)[r], &lb);
                    if (!sa || !sb || la != lb || memcmp(sa, sb, la) != 0)
                        return ingest_cmp_fail(why, cap, "column %s: string differs at row %zu",
                                               c->name, r);
                } else if (memcmp((const char *)c->data + r * w, (const char *)d->data + r * w,
                                  w) != 0) {
                    return ingest_cmp_fail(why, cap, "column %s: value differs at row %zu",
                                           c->name, r);
                }
            }
        }
    }
    return 1;
}

#endif
