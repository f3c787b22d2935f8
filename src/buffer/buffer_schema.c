/* buffer_schema.c - each measurement's schema (every column ever seen, with its
 * current type) and the row copies that follow it: type checks before anything
 * is copied, int -> float widening, new columns, string ids re-interned once per
 * distinct value. Callers hold the mbuf's lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer/buffer_int.h"
#include "core/mem.h"

/* ----------------------------------------------------------------- schema */

struct schema_col *mbuf_schema_find(struct mbuf *x, const char *name)
{
    size_t i;
    for (i = 0; i < x->nschema; i++)
        if (!strcmp(x->schema[i].name, name))
            return &x->schema[i];
    return NULL;
}

void mbuf_schema_add(struct mbuf *x, const char *name, enum batch_type t, bool is_tag)
{
    if (x->nschema == x->schema_cap) {
        x->schema_cap = x->schema_cap ? x->schema_cap * 2 : 16;
        x->schema = xreallocarray(x->schema, x->schema_cap, sizeof(*x->schema));
    }
    x->schema[x->nschema].name = xstrdup(name);
    x->schema[x->nschema].type = t;
    x->schema[x->nschema].is_tag = is_tag;
    x->nschema++;
}

static const char *type_word(enum batch_type t)
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

static bool is_int_float_pair(enum batch_type a, enum batch_type b)
{
    return (a == BATCH_I64 && b == BATCH_F64) || (a == BATCH_F64 && b == BATCH_I64);
}

/* The stored name of an incoming column: a field named like an existing tag is
 * stored as <name>_value (the InfluxDB convention). Writes into out. */
static const char *target_name(struct mbuf *x, const struct batch_col *c, char *out, size_t n)
{
    struct schema_col *s = mbuf_schema_find(x, c->name);
    if (s && s->is_tag && !c->is_tag) {
        snprintf(out, n, "%s_value", c->name);
        return out;
    }
    return c->name;
}

/* Can src be appended to x without a conflict? */
enum err mbuf_check_batch(struct mbuf *x, const struct batch *src, struct errbuf *eb)
{
    char tmp[512];
    size_t i;

    for (i = 0; i < src->ncols; i++) {
        const struct batch_col *c = &src->cols[i];
        const char *name = target_name(x, c, tmp, sizeof(tmp));
        struct schema_col *s = mbuf_schema_find(x, name);
        if (!s) {
            size_t k;
            for (k = 0; k < x->nschema; k++)
                if (strcasecmp(x->schema[k].name, name) == 0)
                    return errbuf_set(eb, ERR_CONFLICT,
                                      "measurement '%s': column '%s' differs only in case from "
                                      "existing column '%s' (column names are case-insensitive)",
                                      x->m, name, x->schema[k].name);
            continue;
        }
        if (c->is_tag && !s->is_tag)
            return errbuf_set(eb, ERR_CONFLICT,
                              "measurement '%s': tag '%s' conflicts with an existing field of "
                              "the same name (%s)",
                              x->m, c->name, type_word(s->type));
        if (s->type == c->type || is_int_float_pair(s->type, c->type))
            continue;
        return errbuf_set(eb, ERR_CONFLICT,
                          "field type conflict: measurement '%s' field '%s' is %s, got %s", x->m,
                          name, type_word(s->type), type_word(c->type));
    }
    return ERR_OK;
}

/* ------------------------------------------------------------------ copy */

/* Does src fit x's schema exactly (so it can become the active batch as is)? */
bool mbuf_fits_exactly(struct mbuf *x, const struct batch *src)
{
    size_t i;
    for (i = 0; i < src->ncols; i++) {
        struct schema_col *s = mbuf_schema_find(x, src->cols[i].name);
        if (s && (s->type != src->cols[i].type || s->is_tag != src->cols[i].is_tag))
            return false;
    }
    return true;
}

/* Append every row of src to dst (dst's columns follow x's schema). */
void mbuf_copy_rows(struct mbuf *x, struct batch *dst, const struct batch *src)
{
    size_t base, n = src->nrows, i, r;
    uint32_t *idmap = NULL;
    size_t idmap_len = 0;
    char tmp[512];

    base = batch_add_rows(dst, n);
    memcpy(dst->time_us + base, src->time_us, n * sizeof(int64_t));
    for (i = 0; i < src->ncols; i++) {
        const struct batch_col *c = &src->cols[i];
        const char *name = target_name(x, c, tmp, sizeof(tmp));
        struct schema_col *s = mbuf_schema_find(x, name);
        struct batch_col *d = batch_find_col(dst, name, strlen(name));
        enum batch_type want = s ? s->type : c->type;

        if (s && s->type == BATCH_I64 && c->type == BATCH_F64) {
            s->type = BATCH_F64; /* int then float: the column becomes DOUBLE */
            want = BATCH_F64;
        }
        if (!d) {
            d = batch_add_col(dst, name, strlen(name), want, c->is_tag);
            d = batch_find_col(dst, name, strlen(name)); /* add may move the array */
        } else if (d->type == BATCH_I64 && want == BATCH_F64) {
            batch_col_widen_to_f64(dst, d);
        }
        if (!s)
            mbuf_schema_add(x, name, want, c->is_tag);

        if (d->type == c->type && c->type != BATCH_STR) {
            memcpy((char *)d->data + base * batch_type_size(c->type), c->data,
                   n * batch_type_size(c->type));
        } else if (d->type == BATCH_F64 && c->type == BATCH_I64) {
            double *o = (double *)d->data + base;
            const int64_t *in = c->data;
            for (r = 0; r < n; r++)
                o[r] = (double)in[r];
        } else { /* strings: remap dictionary ids */
            const uint32_t *in = c->data;
            uint32_t *o = (uint32_t *)d->data + base;
            size_t nd = strdict_count(src->dict);
            if (!idmap) {
                idmap_len = nd;
                idmap = xmalloc((nd ? nd : 1) * sizeof(uint32_t));
                memset(idmap, 0xff, (nd ? nd : 1) * sizeof(uint32_t));
            }
            for (r = 0; r < n; r++) {
                uint32_t id;
                if (c->valid && !c->valid[r]) {
                    o[r] = 0;
                    continue;
                }
                id = in[r];
                if (id < idmap_len && idmap[id] == UINT32_MAX)
                    idmap[id] = strdict_intern_from(dst->dict, src->dict, id);
                o[r] = id < idmap_len ? idmap[id] : 0;
            }
        }
        /* validity: batch_add_rows marked the new rows NULL in every column */
        if (d->valid) {
            if (c->valid)
                memcpy(d->valid + base, c->valid, n);
            else
                memset(d->valid + base, 1, n);
        }
    }
    free(idmap);
}
