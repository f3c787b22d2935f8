/* batch.h - a column batch: rows of one measurement, decoded, typed, columnar.
 *
 * Decoders (ingest/) write straight into these vectors: no per-row objects, no
 * per-value malloc. Strings (tags and string fields) are interned in a per-batch
 * dictionary, so a column of tags is a vector of uint32 ids. The batch is the unit
 * that moves between threads (ingest -> wal -> buffer -> storage) by hand-off.
 *
 * Invariants: every column has exactly nrows values; time_us has nrows values;
 * column names are unique within a batch; tag columns are BATCH_STR with is_tag.
 * Thread: a batch is owned by one thread at a time. */
#ifndef CORE_BATCH_H
#define CORE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum batch_type {
    BATCH_F64 = 1,  /* double */
    BATCH_I64 = 2,  /* int64_t */
    BATCH_U64 = 3,  /* uint64_t */
    BATCH_BOOL = 4, /* uint8_t 0/1 */
    BATCH_STR = 5,  /* uint32_t id into the batch's dictionary */
};

/* Name of a type as DuckDB spells it: "DOUBLE", "BIGINT", "UBIGINT", "BOOLEAN", "VARCHAR". */
const char *batch_type_sql(enum batch_type t);
/* Bytes of one value of type t in a column vector (BATCH_STR: its uint32_t id). */
size_t batch_type_size(enum batch_type t);

/* String dictionary: interns byte strings (may contain NUL), ids are dense from 0. */
struct strdict;
struct strdict *strdict_new(void);
void strdict_free(struct strdict *d);
/* Intern s[0..len); returns its id (existing id if already present). */
uint32_t strdict_intern(struct strdict *d, const char *s, size_t len);
/* Intern string id of src into d (no rehash: both use the same hash). An id
 * past src's end interns the empty string. */
uint32_t strdict_intern_from(struct strdict *d, const struct strdict *src, uint32_t id);
/* The string for id; *len gets its length. The pointer stays valid until the dict is freed. */
const char *strdict_get(const struct strdict *d, uint32_t id, size_t *len);
size_t strdict_count(const struct strdict *d);
/* Look s[0..len) up without interning it: true and *id set if present. */
bool strdict_find(const struct strdict *d, const char *s, size_t len, uint32_t *id);
/* Bytes held by the dictionary (strings + table), for memory accounting. */
size_t strdict_bytes(const struct strdict *d);

struct batch_col {
    char *name;           /* owned, unique within the batch */
    enum batch_type type;
    bool is_tag;          /* tag column (always BATCH_STR) */
    void *data;           /* nrows values of the type's C type (cap slots allocated) */
    uint8_t *valid;       /* cap bytes, 1 = value present, 0 = NULL; NULL = all present */
};

struct batch {
    char *measurement;     /* owned */
    size_t nrows;          /* rows filled */
    size_t cap;            /* rows allocated in every vector */
    int64_t *time_us;      /* nrows timestamps, µs since epoch UTC (any sign) */
    struct batch_col *cols;
    size_t ncols, cols_cap;
    struct strdict *dict;  /* shared by all string columns of this batch */
    struct strdict *colnames; /* private index: name -> column index (ids == indexes);
                                 kept by batch_add_col, so add columns only through it
                                 and never rename one */
};

/* New empty batch for measurement (copied). */
struct batch *batch_new(const char *measurement, size_t measurement_len);
void batch_free(struct batch *b);
/* Ensure room for `rows` more rows in every column. */
void batch_reserve(struct batch *b, size_t rows);
/* Find a column by name; NULL if absent. */
struct batch_col *batch_find_col(struct batch *b, const char *name, size_t name_len);
/* Add a column (must not exist); earlier rows are NULL in it. */
struct batch_col *batch_add_col(struct batch *b, const char *name, size_t name_len,
                                enum batch_type type, bool is_tag);
/* Append a row slot: time set, every column NULL. Returns the row index. */
size_t batch_add_row(struct batch *b, int64_t time_us);
/* Append n row slots (time 0, every column NULL) and return the first row index.
 * For decoders that fill whole columns at once (columnar MessagePack/JSON). */
size_t batch_add_rows(struct batch *b, size_t n);
/* Free the validity vectors of columns that have no NULL (valid becomes NULL).
 * Decoders call it once at the end; later appends re-create them as needed. */
void batch_drop_full_validity(struct batch *b);
/* Set a value at row (the column's type must match). */
void batch_set_f64(struct batch_col *c, size_t row, double v);
void batch_set_i64(struct batch_col *c, size_t row, int64_t v);
void batch_set_u64(struct batch_col *c, size_t row, uint64_t v);
void batch_set_bool(struct batch_col *c, size_t row, bool v);
void batch_set_str(struct batch *b, struct batch_col *c, size_t row, const char *s, size_t len);
/* Widen an integer column to DOUBLE in place (InfluxDB: int then float -> float). */
void batch_col_widen_to_f64(struct batch *b, struct batch_col *c);
/* Is the value at row present? */
bool batch_is_valid(const struct batch_col *c, size_t row);
/* Approximate bytes held, for memory budgets. */
size_t batch_bytes(const struct batch *b);

/* perm[0..n) = the rows 0..n-1 ordered by times[row], stable (equal times keep
 * row order). Fast on data made of ascending runs. */
void batch_sort_by_time(const int64_t *times, uint32_t *perm, size_t n);

#endif
