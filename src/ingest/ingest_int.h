/* ingest_int.h - private to src/ingest: the result builder the three decoders share.
 *
 * struct ictx collects batches by measurement and applies the shared column rules
 * (tag/field clash -> <name>_value, `time` reserved, int/float widening, type
 * conflicts, caps, UTF-8). Its functions write an error message with no location;
 * the decoder prefixes "line N: " or "item N: " with errbuf_prefix(). */
#ifndef INGEST_INGEST_INT_H
#define INGEST_INGEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/err.h"
#include "ingest/ingest.h"

enum ival_kind { IV_NIL = 0, IV_BOOL, IV_I64, IV_U64, IV_F64, IV_STR };

/* One decoded value; strings are borrowed from the body (or a scratch buffer). */
struct ival {
    enum ival_kind kind;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        struct {
            const char *p;
            size_t len;
        } s;
    } v;
};

/* Series cache. Rows of one series repeat their tags byte for byte (line
 * protocol: "cpu,hostname=host_7,region=...,service_environment=test"; MessagePack:
 * the encoded "h" and "tags" values), and decoding those bytes again gives the
 * same tag columns and dictionary ids: columns are never removed or renamed, a tag
 * column stays a tag, and every check on a tag (name rules, caps, UTF-8) passed
 * the first time and depends only on those bytes. So the decoder records the
 * (column, id) pairs of the first successful parse of a key, and later rows with
 * the same bytes (and batch) store them directly: one hash and one compare instead
 * of a column and a dictionary lookup per tag (~35 % of tsbs-cpu decoding, 10 tags
 * a line). Keys are slices of the body, borrowed for the decode. */
#define SERIES_MAX_ENTRIES 65536u /* series remembered per decode; then no new ones */

struct series_ent {
    const char *key;  /* borrowed from the body */
    size_t len;
    uint64_t hash;
    struct batch *b;  /* the batch the tags belong to */
    uint32_t first;   /* its tags: pairs[first .. first + 2 * ntags) */
    uint32_t ntags;
};

struct series_cache {
    uint32_t *slots;          /* nslots entries: index into ents + 1, 0 = empty */
    size_t nslots;            /* power of two, load under 1/2 */
    struct series_ent *ents;
    size_t nents, ents_cap;
    uint32_t *pairs;          /* column index, dictionary id, column index, id, ... */
    size_t npairs, pairs_cap; /* in uint32_t */
};

uint64_t series_hash(const char *s, size_t len);
/* The entry for key (and batch b, unless b is NULL); NULL if none. */
const struct series_ent *series_find(const struct series_cache *sc, const struct batch *b,
                                     const char *key, size_t len, uint64_t h);
/* Record a tag of the row being parsed; series_add() then files the pairs pushed
 * since `first` (sc->npairs when the row began) under key. A row that is not added
 * drops its pairs by setting sc->npairs back to first. */
void series_push(struct series_cache *sc, uint32_t col, uint32_t id);
void series_add(struct series_cache *sc, const char *key, size_t len, uint64_t h,
                struct batch *b, size_t first);

struct ictx {
    struct ingest_limits lim;
    struct strdict *mnames;  /* measurement name -> index in batches */
    struct batch **batches;  /* owned until ictx_finish */
    size_t nbatches, cap;
    size_t nrows;            /* rows accounted so far, <= lim.max_rows */
    struct batch *last;      /* measurement cache: most lines repeat the last one */
    size_t last_len;         /* strlen(last->measurement) */
    struct batch *pred_b;    /* column prediction: lines repeat the previous line's */
    size_t pred;             /* layout, so the next key is usually column `pred` */
    struct batch *clen_b;    /* name lengths of clen_b's columns [0, nclen), so a */
    uint16_t *clen;          /* predicted column is checked without a strlen; */
    size_t nclen, clen_cap;  /* valid while clen_b is: columns never change names */
    struct series_cache series; /* see above */
    bool series_off;         /* test hook: never use the series cache */
};

void ictx_init(struct ictx *x, const struct ingest_limits *lim);
/* Free everything collected (the error path). */
void ictx_abort(struct ictx *x);
/* Move the batches into out (dropping all-present validity vectors). */
void ictx_finish(struct ictx *x, struct ingest_result *out);

/* The batch for measurement m (validated name), created on first use. */
enum err ictx_batch(struct ictx *x, const char *m, size_t len, struct batch **out,
                    struct errbuf *eb);
/* Store the tags of cached series e into row of e->b (a new row: its tag
 * columns are NULL so far) and predict the column after the last tag. */
void ictx_series_store(struct ictx *x, const struct series_ent *e, size_t row);
/* Account n more rows against max_rows (call before adding them). */
enum err ictx_rows(struct ictx *x, size_t n, struct errbuf *eb);

/* Tag column `name` of b, created if new. ERR_PARSE if a field has that name. */
enum err ictx_tag_col(struct ictx *x, struct batch *b, const char *name, size_t len,
                      struct batch_col **out, struct errbuf *eb);
/* Store tag value s at row of tag column c (cap and UTF-8 checked). */
enum err ictx_set_tag(struct ictx *x, struct batch *b, struct batch_col *c, size_t row,
                      const char *s, size_t len, struct errbuf *eb);

/* Column for a field value of kind k (create, rename, widen, or conflict error).
 * *out may be NULL on success when k is IV_NIL and no column exists yet. */
enum err ictx_field_col(struct ictx *x, struct batch *b, const char *name, size_t len,
                        enum ival_kind k, struct batch_col **out, struct errbuf *eb);
/* Check a string value (cap, UTF-8) before storing it. */
enum err ictx_check_str(const struct ictx *x, const char *s, size_t len, struct errbuf *eb);
/* ictx_field_col + checks + store, for decoders that hold one value at a time. */
enum err ictx_set_field(struct ictx *x, struct batch *b, size_t row, const char *name,
                        size_t len, const struct ival *v, struct errbuf *eb);

/* Store v into c at row; c came from ictx_field_col for v->kind. NIL stores nothing. */
static inline void ival_store(struct batch *b, struct batch_col *c, size_t row,
                              const struct ival *v)
{
    switch (v->kind) {
    case IV_NIL:
        break;
    case IV_BOOL:
        batch_set_bool(c, row, v->v.b);
        break;
    case IV_I64:
        if (c->type == BATCH_F64)
            batch_set_f64(c, row, (double)v->v.i);
        else
            batch_set_i64(c, row, v->v.i);
        break;
    case IV_U64:
        if (c->type == BATCH_F64)
            batch_set_f64(c, row, (double)v->v.u);
        else
            batch_set_u64(c, row, v->v.u);
        break;
    case IV_F64:
        batch_set_f64(c, row, v->v.f);
        break;
    case IV_STR:
        batch_set_str(b, c, row, v->v.s.p, v->v.s.len);
        break;
    }
}

/* ---- parallel decoding (common.c) ----------------------------------------------
 * A large body is cut into parts (line protocol: at newlines; MessagePack: by item
 * index) that decode on their own threads into their own ictx; ictx_merge() then
 * appends part i+1 to part 0 as if one decoder had read them in order. Whenever
 * the merged result could differ from a sequential decode (any part failed, a
 * type or tag/field conflict between parts, a cap passed only by the sum), the
 * decoder throws the parts away and decodes the body sequentially, so results
 * and error messages ("line N", "item N") are exactly the sequential ones. */

/* How many parts to cut a body of `units` (bytes, items) into: 1 unless at least
 * 2 * min_units, at most one per idle core (cores minus decoding threads running
 * now, over all requests) and INGEST_MAX_PARTS. Counts the parts as running until
 * ingest_par_end(n); min_units 0 forces 1. */
size_t ingest_par_begin(size_t units, size_t min_units);
void ingest_par_end(size_t nparts);

typedef void ingest_part_fn(void *arg);
/* Run fn on args[0..n) (each arg_size bytes): part 0 on this thread, the others
 * on new threads (or here, if a thread cannot be created); returns when all are done. */
void ingest_parts_run(ingest_part_fn *fn, void *args, size_t arg_size, size_t n);

/* Append everything src collected to dst, as if src's rows had followed dst's in
 * one decode (columns widened, dictionary ids remapped, new columns and
 * measurements in order of first use). false when a sequential decode would have
 * failed or built something else; dst is then unusable (ictx_abort both).
 * Either way src still needs ictx_abort (it keeps nothing dst took). */
bool ictx_merge(struct ictx *dst, struct ictx *src);

/* "float" "integer" "unsigned" "string" "boolean" "null": the words in messages. */
const char *ival_kind_name(enum ival_kind k);
const char *ingest_type_name(enum batch_type t);

bool ingest_utf8_valid(const char *s, size_t len);

/* Time unit inferred from an integer's magnitude: < 1e10 s, < 1e13 ms, < 1e16 µs, else ns. */
enum tunit { TU_S, TU_MS, TU_US, TU_NS };
enum tunit ingest_tunit_of(uint64_t magnitude);
/* Convert to µs (ns floors toward -inf). false if the result does not fit int64. */
bool ingest_time_i64(int64_t t, enum tunit u, int64_t *us);
bool ingest_time_u64(uint64_t t, enum tunit u, int64_t *us);
bool ingest_time_f64(double t, enum tunit u, int64_t *us);
/* Unit for a float time, by |t| as for integers; false for NaN/Inf. */
bool ingest_tunit_of_f64(double t, enum tunit *u);

/* Format a non-string scalar as a tag value ("42", "1.5", "true"); returns length. */
size_t ival_format(const struct ival *v, char *out, size_t cap);

#endif
