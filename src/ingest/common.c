/* common.c - the result builder and column rules shared by the three decoders.
 *
 * Decoders parse; this file decides what a value does to the batch: which batch
 * (measurement, found through a dictionary with a one-entry cache because bodies
 * repeat the same measurement line after line), which column (created on first
 * use, renamed to <name>_value when a tag already owns the name, widened from
 * integer to DOUBLE when a float arrives), and whether a cap or a type rule is
 * broken. Keeping the rules in one place keeps line protocol, MessagePack and
 * JSON consistent. Messages carry no location; the decoder prefixes it.
 * Also here: the series cache (repeated tag sets) and the parallel-decode plumbing
 * (how many parts, running them, merging their results exactly); ingest_int.h
 * explains both. */
#include "ingest/ingest_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/mem.h"

void ingest_limits_default(struct ingest_limits *lim)
{
    lim->max_rows = INGEST_DEFAULT_MAX_ROWS;
    lim->max_cols = INGEST_DEFAULT_MAX_COLS;
    lim->max_str_len = INGEST_DEFAULT_MAX_STR_LEN;
    lim->max_measurements = INGEST_DEFAULT_MAX_MEASUREMENTS;
}

void ingest_result_release(struct ingest_result *r)
{
    size_t i;

    for (i = 0; i < r->nbatches; i++)
        batch_free(r->batches[i]);
    free(r->batches);
    r->batches = NULL;
    r->nbatches = 0;
    r->nrows = 0;
}

struct batch *ingest_result_take(struct ingest_result *r, size_t i)
{
    struct batch *b;

    if (i >= r->nbatches)
        return NULL;
    b = r->batches[i];
    r->batches[i] = NULL;
    return b;
}

bool ingest_precision_parse(const char *s, enum ingest_precision *out)
{
    static const struct {
        const char *name;
        enum ingest_precision p;
    } names[] = {
        {"", PREC_NS},         {"ns", PREC_NS},        {"n", PREC_NS},  {"us", PREC_US},
        {"u", PREC_US},        {"\xc2\xb5", PREC_US},  {"\xc2\xb5s", PREC_US},
        {"\xce\xbc", PREC_US}, {"\xce\xbcs", PREC_US}, {"ms", PREC_MS}, {"s", PREC_S},
        {"m", PREC_M},         {"h", PREC_H},
    };
    size_t i;

    if (!s) {
        *out = PREC_NS;
        return true;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].p;
            return true;
        }
    }
    return false;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool ingest_name_valid(const char *s, size_t len, size_t max_len)
{
    size_t i;

    if (len == 0 || len > max_len || !is_alpha(s[0]))
        return false;
    for (i = 1; i < len; i++) {
        char c = s[i];
        if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool ingest_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;

    while (s < end) {
        uint64_t w;
        unsigned c;
        size_t n, k;
        uint32_t cp;

        /* ASCII fast path, 8 bytes at a time. */
        if (end - s >= 8) {
            memcpy(&w, s, 8);
            if (!(w & 0x8080808080808080ull)) {
                s += 8;
                continue;
            }
        }
        c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - s) <= n)
            return false;
        for (k = 1; k <= n; k++) {
            if ((s[k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        s += n + 1;
    }
    return true;
}

const char *ival_kind_name(enum ival_kind k)
{
    switch (k) {
    case IV_NIL:
        return "null";
    case IV_BOOL:
        return "boolean";
    case IV_I64:
        return "integer";
    case IV_U64:
        return "unsigned";
    case IV_F64:
        return "float";
    case IV_STR:
        return "string";
    }
    return "unknown";
}

const char *ingest_type_name(enum batch_type t)
{
    switch (t) {
    case BATCH_F64:
        return "float";
    case BATCH_I64:
        return "integer";
    case BATCH_U64:
        return "unsigned";
    case BATCH_BOOL:
        return "boolean";
    case BATCH_STR:
        return "string";
    }
    return "unknown";
}

size_t ival_format(const struct ival *v, char *out, size_t cap)
{
    int n;

    switch (v->kind) {
    case IV_BOOL:
        n = snprintf(out, cap, "%s", v->v.b ? "true" : "false");
        break;
    case IV_I64:
        n = snprintf(out, cap, "%lld", (long long)v->v.i);
        break;
    case IV_U64:
        n = snprintf(out, cap, "%llu", (unsigned long long)v->v.u);
        break;
    case IV_F64:
        n = snprintf(out, cap, "%.17g", v->v.f);
        break;
    default:
        n = 0;
        break;
    }
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- time ------------------------------------------------------------------- */

enum tunit ingest_tunit_of(uint64_t mag)
{
    if (mag < 10000000000ull)
        return TU_S;
    if (mag < 10000000000000ull)
        return TU_MS;
    if (mag < 10000000000000000ull)
        return TU_US;
    return TU_NS;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && (a < 0))
        q--;
    return q;
}

bool ingest_time_i64(int64_t t, enum tunit u, int64_t *us)
{
    switch (u) {
    case TU_S:
        return !__builtin_mul_overflow(t, (int64_t)1000000, us);
    case TU_MS:
        return !__builtin_mul_overflow(t, (int64_t)1000, us);
    case TU_US:
        *us = t;
        return true;
    case TU_NS:
        *us = floordiv(t, 1000);
        return true;
    }
    return false;
}

bool ingest_time_u64(uint64_t t, enum tunit u, int64_t *us)
{
    if (t <= (uint64_t)INT64_MAX)
        return ingest_time_i64((int64_t)t, u, us);
    if (u != TU_NS)
        return false;
    *us = (int64_t)(t / 1000);
    return true;
}

bool ingest_tunit_of_f64(double t, enum tunit *u)
{
    double a = fabs(t);

    if (!isfinite(t))
        return false;
    *u = a < 1e10 ? TU_S : a < 1e13 ? TU_MS : a < 1e16 ? TU_US : TU_NS;
    return true;
}

bool ingest_time_f64(double t, enum tunit u, int64_t *us)
{
    static const double mult[] = {1e6, 1e3, 1.0, 1e-3};
    double v;

    if (!isfinite(t))
        return false;
    v = floor(t * mult[u]);
    /* 9.2e18: the largest double below 2^63 keeps the cast defined. */
    if (!(v >= -9.2e18 && v <= 9.2e18))
        return false;
    *us = (int64_t)v;
    return true;
}

/* ---- series cache ----------------------------------------------------------- */

uint64_t series_hash(const char *s, size_t len)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = len * k, w;

    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 31;
        s += 8;
        len -= 8;
    }
    if (len) {
        w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * k;
    }
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static void series_free(struct series_cache *sk)
{
    free(sk->slots);
    free(sk->ents);
    free(sk->pairs);
    memset(sk, 0, sizeof(*sk));
}

const struct series_ent *series_find(const struct series_cache *sk, const struct batch *b,
                                     const char *key, size_t len, uint64_t h)
{
    size_t mask = sk->nslots - 1, pos;

    if (!sk->nslots)
        return NULL;
    for (pos = h & mask; sk->slots[pos]; pos = (pos + 1) & mask) {
        const struct series_ent *e = &sk->ents[sk->slots[pos] - 1];
        if (e->hash == h && e->len == len && (!b || e->b == b) && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

/* Remember key -> (b, the pairs just pushed from `first`); a full cache keeps what it has. */
void series_add(struct series_cache *sk, const char *key, size_t len, uint64_t h,
                struct batch *b, size_t first)
{
    size_t mask, pos, i;
    struct series_ent *e;

    if (sk->nents >= SERIES_MAX_ENTRIES) {
        sk->npairs = first;
        return;
    }
    if ((sk->nents + 1) * 2 > sk->nslots) {
        size_t n = sk->nslots ? sk->nslots * 2 : 256;
        free(sk->slots);
        sk->slots = xcalloc(n, sizeof(*sk->slots));
        sk->nslots = n;
        for (i = 0; i < sk->nents; i++) {
            for (pos = sk->ents[i].hash & (n - 1); sk->slots[pos]; pos = (pos + 1) & (n - 1))
                ;
            sk->slots[pos] = (uint32_t)(i + 1);
        }
    }
    if (sk->nents == sk->ents_cap) {
        sk->ents_cap = sk->ents_cap ? sk->ents_cap * 2 : 128;
        sk->ents = xreallocarray(sk->ents, sk->ents_cap, sizeof(*sk->ents));
    }
    e = &sk->ents[sk->nents];
    e->key = key;
    e->len = len;
    e->hash = h;
    e->b = b;
    e->first = (uint32_t)first;
    e->ntags = (uint32_t)((sk->npairs - first) / 2);
    mask = sk->nslots - 1;
    for (pos = h & mask; sk->slots[pos]; pos = (pos + 1) & mask)
        ;
    sk->slots[pos] = (uint32_t)(++sk->nents);
}

void series_push(struct series_cache *sk, uint32_t col, uint32_t id)
{
    if (sk->npairs + 2 > sk->pairs_cap) {
        sk->pairs_cap = sk->pairs_cap ? sk->pairs_cap * 2 : 256;
        sk->pairs = xreallocarray(sk->pairs, sk->pairs_cap, sizeof(*sk->pairs));
    }
    sk->pairs[sk->npairs++] = col;
    sk->pairs[sk->npairs++] = id;
}

void ictx_series_store(struct ictx *x, const struct series_ent *e, size_t row)
{
    const uint32_t *pr = x->series.pairs + e->first;
    size_t i;

    for (i = 0; i < e->ntags; i++, pr += 2) {
        struct batch_col *c = &e->b->cols[pr[0]];
        ((uint32_t *)c->data)[row] = pr[1];
        c->valid[row] = 1; /* batch_add_row keeps every validity vector */
    }
    if (e->ntags) {
        /* as after parsing the last tag: predict the column after it */
        x->pred_b = e->b;
        x->pred = pr[-2] + 1;
    }
}

/* ---- result builder --------------------------------------------------------- */

static _Atomic bool g_series_off; /* ingest_test_series_cache */

#ifdef ARC_TESTING
void ingest_test_series_cache(bool on)
{
    atomic_store(&g_series_off, !on);
}
#endif

void ictx_init(struct ictx *x, const struct ingest_limits *lim)
{
    memset(x, 0, sizeof(*x));
    x->series_off = atomic_load(&g_series_off);
    if (lim)
        x->lim = *lim;
    else
        ingest_limits_default(&x->lim);
    x->mnames = strdict_new();
}

void ictx_abort(struct ictx *x)
{
    size_t i;

    for (i = 0; i < x->nbatches; i++)
        batch_free(x->batches[i]);
    free(x->batches);
    free(x->clen);
    series_free(&x->series);
    strdict_free(x->mnames);
    memset(x, 0, sizeof(*x));
}

void ictx_finish(struct ictx *x, struct ingest_result *out)
{
    size_t i;

    for (i = 0; i < x->nbatches; i++)
        batch_drop_full_validity(x->batches[i]);
    out->batches = x->batches;
    out->nbatches = x->nbatches;
    out->nrows = x->nrows;
    free(x->clen);
    series_free(&x->series);
    strdict_free(x->mnames);
    memset(x, 0, sizeof(*x));
}

enum err ictx_batch(struct ictx *x, const char *m, size_t len, struct batch **out,
                    struct errbuf *eb)
{
    uint32_t id;
    struct batch *b;

    if (x->last && x->last_len == len && memcmp(x->last->measurement, m, len) == 0) {
        *out = x->last;
        return ERR_OK;
    }
    if (strdict_find(x->mnames, m, len, &id)) {
        b = x->batches[id];
    } else {
        if (!ingest_name_valid(m, len, ARC_MAX_MEASUREMENT_NAME)) {
            if (len == 0)
                return errbuf_set(eb, ERR_PARSE, "missing measurement name");
            return errbuf_set(eb, ERR_PARSE,
                              "invalid measurement name '%.*s': use a letter, then letters, "
                              "digits, '_' or '-' (at most %d bytes)",
                              (int)(len > 64 ? 64 : len), m, ARC_MAX_MEASUREMENT_NAME);
        }
        if (x->nbatches >= x->lim.max_measurements)
            return errbuf_set(eb, ERR_LIMIT, "too many measurements in one request (max %zu)",
                              x->lim.max_measurements);
        if (x->nbatches == x->cap) {
            x->cap = x->cap ? x->cap * 2 : 8;
            x->batches = xreallocarray(x->batches, x->cap, sizeof(*x->batches));
        }
        (void)strdict_intern(x->mnames, m, len); /* id == nbatches */
        b = batch_new(m, len);
        x->batches[x->nbatches++] = b;
    }
    x->last = b;
    x->last_len = len;
    *out = b;
    return ERR_OK;
}

enum err ictx_rows(struct ictx *x, size_t n, struct errbuf *eb)
{
    if (n > x->lim.max_rows - x->nrows)
        return errbuf_set(eb, ERR_LIMIT, "too many rows in one request (max %zu)",
                          x->lim.max_rows);
    x->nrows += n;
    return ERR_OK;
}

static enum err check_new_name(struct ictx *x, struct batch *b, const char *kind,
                               const char *name, size_t len, struct errbuf *eb)
{
    size_t i;

    if (len == 0)
        return errbuf_set(eb, ERR_PARSE, "empty %s name", kind);
    if (len > INGEST_MAX_NAME_LEN)
        return errbuf_set(eb, ERR_PARSE, "%s name '%.32s...' is longer than %u bytes", kind,
                          name, INGEST_MAX_NAME_LEN);
    /* SQL names are case-insensitive: 'Time' would collide with the timestamp */
    if (len == 4 && strncasecmp(name, "time", 4) == 0)
        return errbuf_set(eb, ERR_PARSE,
                          "%s name '%.4s' is reserved for the timestamp column", kind, name);
    for (i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return errbuf_set(eb, ERR_PARSE, "%s name contains a control character", kind);
    }
    if (!ingest_utf8_valid(name, len))
        return errbuf_set(eb, ERR_PARSE, "%s name is not valid UTF-8", kind);
    if (b->ncols >= x->lim.max_cols)
        return errbuf_set(eb, ERR_LIMIT, "too many columns in measurement '%s' (max %zu)",
                          b->measurement, x->lim.max_cols);
    /* two columns whose names differ only in case are one column to SQL */
    for (i = 0; i < b->ncols; i++)
        if (strncasecmp(b->cols[i].name, name, len) == 0 && b->cols[i].name[len] == '\0')
            return errbuf_set(eb, ERR_PARSE,
                              "%s '%.*s' differs only in case from column '%s' (column names "
                              "are case-insensitive)",
                              kind, (int)len, name, b->cols[i].name);
    return ERR_OK;
}

/* Find column name in b, trying the predicted column first: rows usually list
 * their keys in the same order as the row before, so the key after column i is
 * column i + 1 (wrapping to 0 at a new row). A hit costs one memcmp instead of a
 * hash and a probe (the profile showed ~15% of line-protocol decoding there). */
/* strlen of column i of b, remembered (names are at most INGEST_MAX_NAME_LEN + 6). */
static size_t col_name_len(struct ictx *x, struct batch *b, size_t i)
{
    if (x->clen_b != b) {
        x->clen_b = b;
        x->nclen = 0;
    }
    while (x->nclen <= i) {
        if (x->nclen == x->clen_cap) {
            x->clen_cap = x->clen_cap ? x->clen_cap * 2 : 32;
            x->clen = xreallocarray(x->clen, x->clen_cap, sizeof(*x->clen));
        }
        x->clen[x->nclen] = (uint16_t)strlen(b->cols[x->nclen].name);
        x->nclen++;
    }
    return x->clen[i];
}

static struct batch_col *find_col(struct ictx *x, struct batch *b, const char *name, size_t len)
{
    struct batch_col *c;

    if (x->pred_b == b && b->ncols) {
        size_t i = x->pred < b->ncols ? x->pred : 0;
        c = &b->cols[i];
        if (col_name_len(x, b, i) == len && memcmp(c->name, name, len) == 0) {
            x->pred = (size_t)(c - b->cols) + 1;
            return c;
        }
    }
    c = batch_find_col(b, name, len);
    if (c) {
        x->pred_b = b;
        x->pred = (size_t)(c - b->cols) + 1;
    }
    return c;
}

/* Add a column and predict the one after it next. */
static struct batch_col *add_col(struct ictx *x, struct batch *b, const char *name, size_t len,
                                 enum batch_type t, bool is_tag)
{
    struct batch_col *c = batch_add_col(b, name, len, t, is_tag);
    x->pred_b = b;
    x->pred = b->ncols;
    return c;
}

enum err ictx_tag_col(struct ictx *x, struct batch *b, const char *name, size_t len,
                      struct batch_col **out, struct errbuf *eb)
{
    struct batch_col *c = find_col(x, b, name, len);
    enum err rc;

    if (c) {
        if (!c->is_tag)
            return errbuf_set(eb, ERR_PARSE,
                              "tag '%.*s' clashes with a field of the same name in "
                              "measurement '%s'",
                              (int)len, name, b->measurement);
        *out = c;
        return ERR_OK;
    }
    rc = check_new_name(x, b, "tag", name, len, eb);
    if (rc != ERR_OK)
        return rc;
    *out = add_col(x, b, name, len, BATCH_STR, true);
    return ERR_OK;
}

enum err ictx_check_str(const struct ictx *x, const char *s, size_t len, struct errbuf *eb)
{
    if (len > x->lim.max_str_len)
        return errbuf_set(eb, ERR_LIMIT, "string value of %zu bytes is longer than %zu", len,
                          x->lim.max_str_len);
    if (!ingest_utf8_valid(s, len))
        return errbuf_set(eb, ERR_PARSE, "string value is not valid UTF-8");
    return ERR_OK;
}

enum err ictx_set_tag(struct ictx *x, struct batch *b, struct batch_col *c, size_t row,
                      const char *s, size_t len, struct errbuf *eb)
{
    size_t before;
    uint32_t id;

    if (len > x->lim.max_str_len)
        return errbuf_set(eb, ERR_LIMIT, "tag value of %zu bytes is longer than %zu", len,
                          x->lim.max_str_len);
    /* Tags repeat: validate UTF-8 only when the dictionary gains a new string. */
    before = strdict_count(b->dict);
    id = strdict_intern(b->dict, s, len);
    if (strdict_count(b->dict) != before && !ingest_utf8_valid(s, len))
        return errbuf_set(eb, ERR_PARSE, "tag '%s' value is not valid UTF-8", c->name);
    ((uint32_t *)c->data)[row] = id;
    if (c->valid)
        c->valid[row] = 1;
    return ERR_OK;
}

static enum batch_type kind_type(enum ival_kind k)
{
    switch (k) {
    case IV_BOOL:
        return BATCH_BOOL;
    case IV_I64:
        return BATCH_I64;
    case IV_U64:
        return BATCH_U64;
    case IV_STR:
        return BATCH_STR;
    default:
        return BATCH_F64;
    }
}

enum err ictx_field_col(struct ictx *x, struct batch *b, const char *name, size_t len,
                        enum ival_kind k, struct batch_col **out, struct errbuf *eb)
{
    struct batch_col *c = find_col(x, b, name, len);
    char renamed[INGEST_MAX_NAME_LEN + 8];
    enum err rc;

    if (c && c->is_tag) {
        /* InfluxDB allows a field and a tag of the same name; we cannot hold two
         * columns with one name, so the field becomes <name>_value. */
        if (len > INGEST_MAX_NAME_LEN)
            return errbuf_set(eb, ERR_PARSE, "field name is longer than %u bytes",
                              INGEST_MAX_NAME_LEN);
        memcpy(renamed, name, len);
        memcpy(renamed + len, "_value", 6);
        name = renamed;
        len += 6;
        c = batch_find_col(b, name, len);
        if (c && c->is_tag)
            return errbuf_set(eb, ERR_PARSE, "field '%.*s' clashes with tag '%.*s'",
                              (int)(len - 6), name, (int)len, name);
    }
    if (!c) {
        if (k == IV_NIL) {
            *out = NULL; /* nothing to store, type unknown: no column yet */
            return ERR_OK;
        }
        rc = check_new_name(x, b, "field", name, len, eb);
        if (rc != ERR_OK)
            return rc;
        *out = add_col(x, b, name, len, kind_type(k), false);
        return ERR_OK;
    }
    *out = c;
    if (k == IV_NIL || kind_type(k) == c->type)
        return ERR_OK;
    if (c->type == BATCH_F64 && (k == IV_I64 || k == IV_U64))
        return ERR_OK;
    if ((c->type == BATCH_I64 || c->type == BATCH_U64) && k == IV_F64) {
        batch_col_widen_to_f64(b, c);
        return ERR_OK;
    }
    return errbuf_set(eb, ERR_PARSE, "field type conflict: field '%.*s' is %s, got %s",
                      (int)len, name, ingest_type_name(c->type), ival_kind_name(k));
}

enum err ictx_set_field(struct ictx *x, struct batch *b, size_t row, const char *name,
                        size_t len, const struct ival *v, struct errbuf *eb)
{
    struct batch_col *c;
    enum err rc;

    if (v->kind == IV_STR) {
        rc = ictx_check_str(x, v->v.s.p, v->v.s.len, eb);
        if (rc != ERR_OK) {
            errbuf_prefix(eb, "field '%.*s'", (int)(len > 64 ? 64 : len), name);
            return rc;
        }
    }
    rc = ictx_field_col(x, b, name, len, v->kind, &c, eb);
    if (rc != ERR_OK)
        return rc;
    if (c)
        ival_store(b, c, row, v);
    return ERR_OK;
}

/* ---- parallel decoding ------------------------------------------------------ */

/* Decoding threads running now, over every request of the process. The only
 * process-wide state of the decoders: a hint, read without a lock, that keeps a
 * loaded server from splitting requests (with every core busy a split only adds
 * the merge). */
static _Atomic long g_decoding;

static size_t ncpu(void)
{
    static _Atomic long cached;
    long n = atomic_load(&cached);

    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
            n = 1;
        atomic_store(&cached, n);
    }
    return (size_t)n;
}

size_t ingest_par_begin(size_t units, size_t min_units)
{
    long busy = atomic_load(&g_decoding);
    size_t cpus = ncpu(), n = 1;

    if (cpus > 1 && min_units && units >= 2 * min_units && busy < (long)cpus) {
        n = cpus - (size_t)busy;
        if (n > units / min_units)
            n = units / min_units;
        if (n > INGEST_MAX_PARTS)
            n = INGEST_MAX_PARTS;
        if (n < 1)
            n = 1;
    }
    atomic_fetch_add(&g_decoding, (long)n);
    return n;
}

void ingest_par_end(size_t nparts)
{
    atomic_fetch_sub(&g_decoding, (long)nparts);
}

struct part_thread {
    pthread_t t;
    ingest_part_fn *fn;
    void *arg;
    bool started;
};

static void *part_main(void *arg)
{
    struct part_thread *pt = arg;
    pt->fn(pt->arg);
    return NULL;
}

void ingest_parts_run(ingest_part_fn *fn, void *args, size_t arg_size, size_t n)
{
    struct part_thread pts[INGEST_MAX_PARTS];
    size_t i;

    if (n > INGEST_MAX_PARTS)
        n = INGEST_MAX_PARTS;
    if (n == 0)
        return;
    for (i = 1; i < n; i++) {
        pts[i].fn = fn;
        pts[i].arg = (char *)args + i * arg_size;
        /* no thread (resource limits): the part runs below on this thread */
        pts[i].started = pthread_create(&pts[i].t, NULL, part_main, &pts[i]) == 0;
    }
    fn(args);
    for (i = 1; i < n; i++) {
        if (pts[i].started)
            pthread_join(pts[i].t, NULL);
        else
            fn(pts[i].arg);
    }
}

static bool is_int_type(enum batch_type t)
{
    return t == BATCH_I64 || t == BATCH_U64;
}

/* Append the rows of s to d (same measurement). false: a sequential decode would
 * have failed or built something else (see ictx_merge); d may then be half-merged. */
static bool merge_batch(struct ictx *x, struct batch *d, const struct batch *s)
{
    size_t i, j, r, nnew = 0, row0, n = s->nrows;
    size_t *map = xreallocarray(NULL, s->ncols ? s->ncols : 1, sizeof(*map));
    uint32_t *remap = NULL;
    bool ok = false;

    /* pass 1: can every column of s join d the way a sequential decode would? */
    for (i = 0; i < s->ncols; i++) {
        const struct batch_col *sc = &s->cols[i];
        size_t len = strlen(sc->name);
        struct batch_col *dc = batch_find_col(d, sc->name, len);

        if (dc) {
            if (dc->is_tag != sc->is_tag)
                goto out;
            if (dc->type != sc->type && !(dc->type == BATCH_F64 && is_int_type(sc->type)) &&
                !(is_int_type(dc->type) && sc->type == BATCH_F64))
                goto out;
            continue;
        }
        for (j = 0; j < d->ncols; j++)
            if (strcasecmp(d->cols[j].name, sc->name) == 0)
                goto out;
        nnew++;
    }
    if (nnew > x->lim.max_cols || d->ncols > x->lim.max_cols - nnew)
        goto out;

    /* pass 2: widen, add the new columns (earlier rows NULL), then copy */
    for (i = 0; i < s->ncols; i++) {
        const struct batch_col *sc = &s->cols[i];
        size_t len = strlen(sc->name);
        struct batch_col *dc = batch_find_col(d, sc->name, len);

        if (!dc)
            dc = batch_add_col(d, sc->name, len, sc->type, sc->is_tag);
        else if (is_int_type(dc->type) && sc->type == BATCH_F64)
            batch_col_widen_to_f64(d, dc);
        map[i] = (size_t)(dc - d->cols);
    }
    row0 = batch_add_rows(d, n); /* every column NULL in the new rows */
    if (n)
        memcpy(d->time_us + row0, s->time_us, n * sizeof(*d->time_us));
    for (i = 0; i < s->ncols && n; i++) {
        const struct batch_col *sc = &s->cols[i];
        struct batch_col *dc = &d->cols[map[i]];

        if (sc->valid)
            memcpy(dc->valid + row0, sc->valid, n);
        else
            memset(dc->valid + row0, 1, n);
        if (dc->type == sc->type && dc->type != BATCH_STR) {
            memcpy((char *)dc->data + row0 * batch_type_size(dc->type), sc->data,
                   n * batch_type_size(dc->type));
        } else if (dc->type == BATCH_F64) {
            /* integers into a DOUBLE column, as ival_store converts them */
            double *dv = (double *)dc->data + row0;
            for (r = 0; r < n; r++)
                dv[r] = sc->type == BATCH_I64 ? (double)((const int64_t *)sc->data)[r]
                                              : (double)((const uint64_t *)sc->data)[r];
        } else {
            /* strings: ids of s's dictionary -> ids of d's */
            const uint32_t *sv = sc->data;
            uint32_t *dv = (uint32_t *)dc->data + row0;
            size_t nd = strdict_count(s->dict);
            if (!remap) {
                remap = xreallocarray(NULL, nd ? nd : 1, sizeof(*remap));
                for (r = 0; r < nd; r++)
                    remap[r] = strdict_intern_from(d->dict, s->dict, (uint32_t)r);
            }
            for (r = 0; r < n; r++)
                dv[r] = (sc->valid && !sc->valid[r]) || sv[r] >= nd ? 0 : remap[sv[r]];
        }
    }
    ok = true;
out:
    free(remap);
    free(map);
    return ok;
}

bool ictx_merge(struct ictx *dst, struct ictx *src)
{
    size_t i;
    uint32_t id;

    if (src->nrows > dst->lim.max_rows - dst->nrows)
        return false;
    for (i = 0; i < src->nbatches; i++) {
        struct batch *sb = src->batches[i];
        size_t len = strlen(sb->measurement);

        if (strdict_find(dst->mnames, sb->measurement, len, &id)) {
            if (!merge_batch(dst, dst->batches[id], sb))
                return false;
            continue;
        }
        /* a measurement new to dst moves over whole */
        if (dst->nbatches >= dst->lim.max_measurements)
            return false;
        if (dst->nbatches == dst->cap) {
            dst->cap = dst->cap ? dst->cap * 2 : 8;
            dst->batches = xreallocarray(dst->batches, dst->cap, sizeof(*dst->batches));
        }
        (void)strdict_intern(dst->mnames, sb->measurement, len); /* id == nbatches */
        dst->batches[dst->nbatches++] = sb;
        src->batches[i] = NULL;
    }
    dst->nrows += src->nrows;
    dst->last = NULL; /* caches point into batches that changed */
    dst->pred_b = NULL;
    dst->clen_b = NULL;
    return true;
}
