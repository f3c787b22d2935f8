/* native_int.h - what native.c and native_agg.c share (native.h's executor). */
#ifndef QUERY_NATIVE_INT_H
#define QUERY_NATIVE_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "query/native.h"

/* Bigger answers are DuckDB's (it spills, streams and runs in parallel): the native
 * executor holds its whole answer and state in memory. */
#define NX_MAX_STATES ((size_t)1 << 21) /* groups x aggregates (48 B each) */
#define NX_MAX_VALUES ((size_t)1 << 24) /* rows x columns of a RAW/LATEST answer */
#define NX_MAX_KEYS 4                   /* string key columns of an AGG */

/* One run of input rows: a batch and its rows (rows NULL: start..start+count). */
struct src {
    const struct batch *b;
    const uint32_t *rows;
    size_t start, count;
    uint32_t *sel; /* rows passing the WHERE (owned) */
    size_t nsel;
    int64_t tmin, tmax; /* times of the selected rows (nsel > 0) */
    bool sorted;        /* sel is in time order */
    size_t from, to;    /* native_agg.c top_buckets: the part of sel in its range */
};

/* An output column bound to its input: the time column (col NULL, is_time), a
 * catalog column by name, or an aggregate's input. */
struct colref {
    const char *name; /* catalog spelling; NULL: time */
    enum batch_type type;
};

struct nx {
    const struct nx_shape *s;
    const struct nx_record *rec;
    const struct nx_input *in;
    struct src *srcs;
    size_t nsrcs;
};

static inline bool present(const struct batch_col *c, uint32_t r)
{
    return c && (!c->valid || c->valid[r]);
}

/* DuckDB's double order: NaN above every number and equal to itself. */
static inline int dcmp(double a, double b)
{
    if (a != a)
        return b != b ? 0 : 1;
    if (b != b)
        return -1;
    return a < b ? -1 : a > b;
}

/* A 64-bit finalizer (murmur3's). */
static inline uint64_t nx_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

struct outcol {
    struct duck_ncol nc;
    size_t n; /* rows filled */
};

enum duck_type nx_duck_of(enum batch_type t);
/* Bind name to the catalog ("time" is the time column: out->name NULL). */
bool nx_bind_col(const struct nx_input *in, const char *name, struct colref *out);
/* The batch's column for a bound catalog column (*c NULL: absent, all NULL); false:
 * present with another type. */
bool nx_src_col(const struct batch *b, const struct colref *r, const struct batch_col **c);
int nx_cmp_bytes(const char *a, size_t al, const char *b, size_t bl);
void nx_out_init(struct outcol *o, const char *name, enum duck_type t, size_t rows);
void nx_out_null(struct outcol *o, size_t row);
/* Hand the columns over as *out (their arrays are taken). */
bool nx_finish(struct outcol *oc, size_t ncols, size_t nrows, struct duck_result **out);
void nx_out_free(struct outcol *oc, size_t n);
/* AGG (native_agg.c). */
bool nx_run_agg(const struct nx *x, struct duck_result **out);

#endif
