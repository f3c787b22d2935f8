/* batch.c - column batches and the string dictionary behind their string columns.
 *
 * A batch keeps one typed vector per column plus a validity byte vector (1 =
 * present), all sized to the same row capacity, which grows by doubling so that
 * appending a row is amortised O(columns). Strings live in a per-batch dictionary:
 * an arena of NUL-terminated copies (blocks never move, so pointers returned by
 * strdict_get stay valid) indexed by an open-addressing hash table of ids. Column
 * names are interned in a second, private dictionary whose ids equal column
 * indexes, which makes batch_find_col a hash probe instead of a scan: decoders
 * look a column up for every value they store.
 *
 * Nothing here sees client sizes directly: decoders check the caps in
 * core/limits.h and ingest_limits before they add rows, columns or strings. */
#include "core/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* ---- string dictionary ------------------------------------------------------ */

#define SD_BLOCK_BYTES (64 * 1024) /* arena block; larger strings get their own block */

struct sd_block {
    struct sd_block *next;
    char data[]; /* string copies, each NUL-terminated */
};

struct strdict {
    uint32_t *slots;         /* nslots entries: id + 1, 0 = empty */
    size_t nslots;           /* power of two, load kept under 1/2 */
    const char **strs;       /* n string pointers into the arena */
    size_t *lens;            /* n lengths */
    uint64_t *hashes;        /* n hashes, so growing the table never rehashes bytes */
    size_t n, cap;           /* ids used / allocated */
    struct sd_block *blocks; /* arena chain, newest first */
    char *cur;               /* free space in the newest block */
    size_t cur_left;         /* bytes free at cur */
    size_t bytes;            /* arena + tables, for strdict_bytes */
};

/* 8 bytes at a time multiply-xor hash: tags are short, this is ~1 ns per 8 bytes. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x243F6A8885A308D3ull ^ (len * k);
    uint64_t w;
    uint32_t a, b;
    bool long_str = len >= 8;

    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    /* the tail with fixed-size loads (a variable memcpy is a libc call) */
    if (len && long_str) {
        memcpy(&w, s + len - 8, 8); /* the last 8 bytes, overlapping the ones hashed */
    } else if (len >= 4) {
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        w = ((uint64_t)b << 32) | a;
    } else if (len) {
        w = (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[len / 2] << 8 |
            (uint64_t)(uint8_t)s[len - 1] << 16;
    }
    if (len) {
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

struct strdict *strdict_new(void)
{
    struct strdict *d = xcalloc(1, sizeof(*d));
    d->nslots = 16;
    d->slots = xcalloc(d->nslots, sizeof(*d->slots));
    d->bytes = d->nslots * sizeof(*d->slots);
    return d;
}

void strdict_free(struct strdict *d)
{
    struct sd_block *blk, *next;

    if (!d)
        return;
    for (blk = d->blocks; blk; blk = next) {
        next = blk->next;
        free(blk);
    }
    free(d->slots);
    free(d->strs);
    free(d->lens);
    free(d->hashes);
    free(d);
}

static char *arena_copy(struct strdict *d, const char *s, size_t len)
{
    char *p;

    if (len + 1 > d->cur_left) {
        size_t sz = len + 1 > SD_BLOCK_BYTES ? len + 1 : SD_BLOCK_BYTES;
        struct sd_block *blk = xmalloc(sizeof(*blk) + sz);
        blk->next = d->blocks;
        d->blocks = blk;
        d->cur = blk->data;
        d->cur_left = sz;
        d->bytes += sizeof(*blk) + sz;
    }
    p = d->cur;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    d->cur += len + 1;
    d->cur_left -= len + 1;
    return p;
}

static void table_grow(struct strdict *d)
{
    size_t nslots = d->nslots * 2, mask = nslots - 1, i;
    uint32_t *slots = xcalloc(nslots, sizeof(*slots));

    for (i = 0; i < d->n; i++) {
        size_t pos = d->hashes[i] & mask;
        while (slots[pos])
            pos = (pos + 1) & mask;
        slots[pos] = (uint32_t)(i + 1);
    }
    free(d->slots);
    d->bytes += (nslots - d->nslots) * sizeof(*slots);
    d->slots = slots;
    d->nslots = nslots;
}

/* Slot index holding s, or the empty slot where it would go. */
static size_t probe(const struct strdict *d, const char *s, size_t len, uint64_t h)
{
    size_t mask = d->nslots - 1, pos = h & mask;

    for (;;) {
        uint32_t v = d->slots[pos];
        if (!v)
            return pos;
        v--;
        if (d->hashes[v] == h && d->lens[v] == len && memcmp(d->strs[v], s, len) == 0)
            return pos;
        pos = (pos + 1) & mask;
    }
}

static uint32_t intern_hashed(struct strdict *d, const char *s, size_t len, uint64_t h)
{
    size_t pos = probe(d, s, len, h);
    uint32_t id;

    if (d->slots[pos])
        return d->slots[pos] - 1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        d->strs = xreallocarray(d->strs, cap, sizeof(*d->strs));
        d->lens = xreallocarray(d->lens, cap, sizeof(*d->lens));
        d->hashes = xreallocarray(d->hashes, cap, sizeof(*d->hashes));
        d->bytes += (cap - d->cap) * (sizeof(*d->strs) + sizeof(*d->lens) + sizeof(*d->hashes));
        d->cap = cap;
    }
    id = (uint32_t)d->n;
    d->strs[id] = arena_copy(d, s, len);
    d->lens[id] = len;
    d->hashes[id] = h;
    d->n++;
    d->slots[pos] = id + 1;
    if (d->n * 2 > d->nslots)
        table_grow(d);
    return id;
}

uint32_t strdict_intern(struct strdict *d, const char *s, size_t len)
{
    return intern_hashed(d, s, len, hash_bytes(s, len));
}

uint32_t strdict_intern_from(struct strdict *d, const struct strdict *src, uint32_t id)
{
    if (id >= src->n)
        return strdict_intern(d, "", 0);
    return intern_hashed(d, src->strs[id], src->lens[id], src->hashes[id]);
}

bool strdict_find(const struct strdict *d, const char *s, size_t len, uint32_t *id)
{
    size_t pos = probe(d, s, len, hash_bytes(s, len));

    if (!d->slots[pos])
        return false;
    *id = d->slots[pos] - 1;
    return true;
}

const char *strdict_get(const struct strdict *d, uint32_t id, size_t *len)
{
    if (id >= d->n) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = d->lens[id];
    return d->strs[id];
}

size_t strdict_count(const struct strdict *d)
{
    return d->n;
}

size_t strdict_bytes(const struct strdict *d)
{
    return sizeof(*d) + d->bytes;
}

/* ---- batches ---------------------------------------------------------------- */

const char *batch_type_sql(enum batch_type t)
{
    switch (t) {
    case BATCH_F64:
        return "DOUBLE";
    case BATCH_I64:
        return "BIGINT";
    case BATCH_U64:
        return "UBIGINT";
    case BATCH_BOOL:
        return "BOOLEAN";
    case BATCH_STR:
        return "VARCHAR";
    }
    return "UNKNOWN";
}

size_t batch_type_size(enum batch_type t)
{
    switch (t) {
    case BATCH_BOOL:
        return 1;
    case BATCH_STR:
        return sizeof(uint32_t);
    default:
        return 8;
    }
}

struct batch *batch_new(const char *measurement, size_t measurement_len)
{
    struct batch *b = xcalloc(1, sizeof(*b));
    b->measurement = xstrndup(measurement, measurement_len);
    b->dict = strdict_new();
    b->colnames = strdict_new();
    return b;
}

void batch_free(struct batch *b)
{
    size_t i;

    if (!b)
        return;
    for (i = 0; i < b->ncols; i++) {
        free(b->cols[i].name);
        free(b->cols[i].data);
        free(b->cols[i].valid);
    }
    free(b->cols);
    free(b->time_us);
    free(b->measurement);
    strdict_free(b->dict);
    strdict_free(b->colnames);
    free(b);
}

/* Validity vector for c sized to b->cap; rows before nrows are present. */
static void valid_materialise(struct batch *b, struct batch_col *c)
{
    c->valid = xmalloc(b->cap ? b->cap : 1);
    memset(c->valid, 1, b->nrows);
}

void batch_reserve(struct batch *b, size_t rows)
{
    size_t need, cap, i;

    if (rows > SIZE_MAX - b->nrows)
        abort(); /* callers cap rows long before this */
    need = b->nrows + rows;
    if (need <= b->cap)
        return;
    cap = b->cap ? b->cap : 16;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->time_us = xreallocarray(b->time_us, cap, sizeof(*b->time_us));
    for (i = 0; i < b->ncols; i++) {
        struct batch_col *c = &b->cols[i];
        c->data = xreallocarray(c->data, cap, batch_type_size(c->type));
        if (c->valid)
            c->valid = xrealloc(c->valid, cap);
    }
    b->cap = cap;
}

struct batch_col *batch_find_col(struct batch *b, const char *name, size_t name_len)
{
    uint32_t id;

    if (!strdict_find(b->colnames, name, name_len, &id) || id >= b->ncols)
        return NULL;
    return &b->cols[id];
}

struct batch_col *batch_add_col(struct batch *b, const char *name, size_t name_len,
                                enum batch_type type, bool is_tag)
{
    struct batch_col *c;

    if (b->ncols == b->cols_cap) {
        b->cols_cap = b->cols_cap ? b->cols_cap * 2 : 8;
        b->cols = xreallocarray(b->cols, b->cols_cap, sizeof(*b->cols));
    }
    (void)strdict_intern(b->colnames, name, name_len); /* id == b->ncols (names unique) */
    c = &b->cols[b->ncols++];
    c->name = xstrndup(name, name_len);
    c->type = is_tag ? BATCH_STR : type;
    c->is_tag = is_tag;
    c->data = xreallocarray(NULL, b->cap ? b->cap : 1, batch_type_size(c->type));
    c->valid = xcalloc(b->cap ? b->cap : 1, 1); /* earlier rows are NULL */
    return c;
}

size_t batch_add_rows(struct batch *b, size_t n)
{
    size_t row = b->nrows, i;

    if (n == 0)
        return row; /* nothing to add (and time_us may still be NULL) */
    batch_reserve(b, n);
    memset(b->time_us + row, 0, n * sizeof(*b->time_us));
    for (i = 0; i < b->ncols; i++) {
        struct batch_col *c = &b->cols[i];
        if (!c->valid)
            valid_materialise(b, c);
        memset(c->valid + row, 0, n);
    }
    b->nrows += n;
    return row;
}

size_t batch_add_row(struct batch *b, int64_t time_us)
{
    size_t row = b->nrows, i;

    if (row == b->cap)
        batch_reserve(b, 1);
    b->time_us[row] = time_us;
    for (i = 0; i < b->ncols; i++) {
        struct batch_col *c = &b->cols[i];
        if (!c->valid)
            valid_materialise(b, c);
        c->valid[row] = 0;
    }
    b->nrows++;
    return row;
}

void batch_drop_full_validity(struct batch *b)
{
    size_t i;

    for (i = 0; i < b->ncols; i++) {
        struct batch_col *c = &b->cols[i];
        if (c->valid &&
            (b->nrows == 0 || (c->valid[0] && !memcmp(c->valid, c->valid + 1, b->nrows - 1)))) {
            free(c->valid);
            c->valid = NULL;
        }
    }
}

static inline void mark(struct batch_col *c, size_t row)
{
    if (c->valid)
        c->valid[row] = 1;
}

void batch_set_f64(struct batch_col *c, size_t row, double v)
{
    ((double *)c->data)[row] = v;
    mark(c, row);
}

void batch_set_i64(struct batch_col *c, size_t row, int64_t v)
{
    ((int64_t *)c->data)[row] = v;
    mark(c, row);
}

void batch_set_u64(struct batch_col *c, size_t row, uint64_t v)
{
    ((uint64_t *)c->data)[row] = v;
    mark(c, row);
}

void batch_set_bool(struct batch_col *c, size_t row, bool v)
{
    ((uint8_t *)c->data)[row] = v ? 1 : 0;
    mark(c, row);
}

void batch_set_str(struct batch *b, struct batch_col *c, size_t row, const char *s, size_t len)
{
    ((uint32_t *)c->data)[row] = strdict_intern(b->dict, s, len);
    mark(c, row);
}

void batch_col_widen_to_f64(struct batch *b, struct batch_col *c)
{
    size_t i;

    /* Same 8-byte slots, converted in place; NULL slots hold garbage and are
     * converted too, harmlessly (their validity byte stays 0). */
    if (c->type == BATCH_I64) {
        int64_t *iv = c->data;
        double *dv = c->data;
        for (i = 0; i < b->nrows; i++) {
            int64_t v = batch_is_valid(c, i) ? iv[i] : 0;
            dv[i] = (double)v;
        }
    } else if (c->type == BATCH_U64) {
        uint64_t *uv = c->data;
        double *dv = c->data;
        for (i = 0; i < b->nrows; i++) {
            uint64_t v = batch_is_valid(c, i) ? uv[i] : 0;
            dv[i] = (double)v;
        }
    } else {
        return;
    }
    c->type = BATCH_F64;
}

bool batch_is_valid(const struct batch_col *c, size_t row)
{
    return !c->valid || c->valid[row];
}

size_t batch_bytes(const struct batch *b)
{
    size_t n = sizeof(*b) + b->cap * sizeof(*b->time_us) + b->cols_cap * sizeof(*b->cols), i;

    for (i = 0; i < b->ncols; i++) {
        n += b->cap * batch_type_size(b->cols[i].type) + strlen(b->cols[i].name) + 1;
        if (b->cols[i].valid)
            n += b->cap;
    }
    return n + strdict_bytes(b->dict) + strdict_bytes(b->colnames);
}

/* ---- sorting ----------------------------------------------------------------- */

/* Stable sort of perm[0..n) by times[perm[i]], for batches that are mostly
 * sorted runs (each request's rows in time order, requests interleaved): find the
 * ascending runs, then merge neighbours bottom-up on (time, row) pairs, so a
 * batch of r runs costs n log2(r) compares and no callbacks. */
struct trow {
    int64_t t;
    uint32_t row;
};

void batch_sort_by_time(const int64_t *times, uint32_t *perm, size_t n)
{
    struct trow *a = xmalloc(n * sizeof(*a)), *tmp = xmalloc(n * sizeof(*a)), *sw;
    size_t *runs = xmalloc((n + 1) * sizeof(*runs)), nruns = 0, i, r, w;

    for (i = 0; i < n; i++) {
        a[i].t = times[i];
        a[i].row = (uint32_t)i;
        if (i == 0 || times[i] < times[i - 1])
            runs[nruns++] = i;
    }
    runs[nruns] = n;
    while (nruns > 1) {
        for (r = 0, w = 0; r < nruns; r += 2, w++) {
            size_t lo = runs[r], mid = runs[r + 1], hi, x, y, o;
            runs[w] = lo;
            if (r + 1 == nruns) { /* the odd run out is carried over */
                memcpy(tmp + lo, a + lo, (n - lo) * sizeof(*a));
                continue;
            }
            hi = runs[r + 2]; /* runs[nruns] == n */
            x = lo, y = mid, o = lo;
            while (x < mid && y < hi)
                tmp[o++] = a[y].t < a[x].t ? a[y++] : a[x++]; /* ties: left first */
            while (x < mid)
                tmp[o++] = a[x++];
            while (y < hi)
                tmp[o++] = a[y++];
        }
        nruns = w;
        runs[nruns] = n;
        sw = a;
        a = tmp;
        tmp = sw;
    }
    for (i = 0; i < n; i++)
        perm[i] = a[i].row;
    free(a);
    free(tmp);
    free(runs);
}
