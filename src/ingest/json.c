/* json.c - the MessagePack item shapes, in JSON, via jansson -> column batches.
 *
 * JSON ingest is the convenience path (curl, scripts), not the hot one, so it
 * parses the whole body into a jansson tree and walks it; the body size is capped
 * by the HTTP layer before we see it, which bounds the tree. The column rules are
 * the shared ones in common.c, so the three decoders agree. JSON numbers written
 * with a '.' or exponent are floats, others integers (jansson's split); integers
 * beyond int64 are rejected by jansson. Object key order is preserved by jansson,
 * so columns appear in the order the client wrote them. */
#include "ingest/ingest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ingest/ingest_int.h"

struct jd {
    struct ictx x;
    int64_t now_us;
    struct errbuf *eb;
    size_t item;
};

static enum err jd_fail(struct jd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum err jd_fail(struct jd *d, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return errbuf_set(d->eb, ERR_PARSE, "item %zu: %s", d->item, msg);
}

static enum err jd_prefix(struct jd *d, enum err rc)
{
    errbuf_prefix(d->eb, "item %zu", d->item);
    return rc;
}

static const char *jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* A scalar as an ival; false for arrays and objects. */
static bool to_ival(const json_t *j, struct ival *v)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        v->kind = IV_NIL;
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        v->kind = IV_BOOL;
        v->v.b = json_is_true(j);
        return true;
    case JSON_INTEGER:
        v->kind = IV_I64;
        v->v.i = (int64_t)json_integer_value(j);
        return true;
    case JSON_REAL:
        v->kind = IV_F64;
        v->v.f = json_real_value(j);
        return true;
    case JSON_STRING:
        v->kind = IV_STR;
        v->v.s.p = json_string_value(j);
        v->v.s.len = json_string_length(j);
        return true;
    default:
        return false;
    }
}

static enum err set_tag(struct jd *d, struct batch *b, const char *name, size_t nlen,
                        const json_t *j, size_t row)
{
    struct batch_col *c;
    struct ival v;
    char num[64];
    const char *s;
    size_t len;
    enum err rc;

    if (!to_ival(j, &v))
        return errbuf_set(d->eb, ERR_PARSE, "tag '%.*s': value must be a string, got %s",
                          (int)nlen, name, jtype(j));
    if (v.kind == IV_NIL)
        return ERR_OK;
    if (v.kind == IV_STR) {
        s = v.v.s.p;
        len = v.v.s.len;
    } else {
        len = ival_format(&v, num, sizeof(num));
        s = num;
    }
    rc = ictx_tag_col(&d->x, b, name, nlen, &c, d->eb);
    if (rc == ERR_OK)
        rc = ictx_set_tag(&d->x, b, c, row, s, len, d->eb);
    return rc;
}

static enum err set_field(struct jd *d, struct batch *b, const char *name, size_t nlen,
                          const json_t *j, size_t row)
{
    struct ival v;

    if (!to_ival(j, &v))
        return errbuf_set(d->eb, ERR_PARSE, "field '%.*s': unsupported type %s", (int)nlen,
                          name, jtype(j));
    return ictx_set_field(&d->x, b, row, name, nlen, &v, d->eb);
}

/* Time of j in µs; unit inferred unless have_unit. Message has no location. */
static enum err time_of(struct jd *d, const json_t *j, bool have_unit, enum tunit *unit,
                        int64_t *us)
{
    bool ok;

    if (json_is_integer(j)) {
        int64_t t = (int64_t)json_integer_value(j);
        if (!have_unit)
            *unit = ingest_tunit_of(t < 0 ? 0 - (uint64_t)t : (uint64_t)t);
        ok = ingest_time_i64(t, *unit, us);
    } else if (json_is_real(j)) {
        double t = json_real_value(j);
        if (!have_unit && !ingest_tunit_of_f64(t, unit))
            return errbuf_set(d->eb, ERR_PARSE, "time is out of range");
        ok = ingest_time_f64(t, *unit, us);
    } else {
        return errbuf_set(d->eb, ERR_PARSE, "time must be a number, got %s", jtype(j));
    }
    if (!ok)
        return errbuf_set(d->eb, ERR_PARSE, "time is out of range");
    return ERR_OK;
}

static enum err measurement_of(struct jd *d, const json_t *item, struct batch **b)
{
    const json_t *m = json_object_get(item, "m");
    enum err rc;

    if (!m)
        return jd_fail(d, "missing 'm' (measurement)");
    if (!json_is_string(m))
        return jd_fail(d, "'m' must be a string, got %s", jtype(m));
    rc = ictx_batch(&d->x, json_string_value(m), json_string_length(m), b, d->eb);
    if (rc != ERR_OK)
        return jd_prefix(d, rc);
    return ERR_OK;
}

static enum err decode_row(struct jd *d, const json_t *item)
{
    const json_t *t = json_object_get(item, "t"), *h = json_object_get(item, "h");
    const json_t *tags = json_object_get(item, "tags"), *fields = json_object_get(item, "fields");
    const json_t *f = json_object_get(item, "f"), *val;
    const char *key;
    int64_t t_us = d->now_us;
    enum tunit unit;
    struct batch *b;
    size_t row, i;
    enum err rc;

    if (t && !json_is_null(t)) {
        rc = time_of(d, t, false, &unit, &t_us);
        if (rc != ERR_OK) {
            errbuf_prefix(d->eb, "item %zu: 't'", d->item);
            return rc;
        }
    }
    if (!fields && !f)
        return jd_fail(d, "missing 'fields'");
    if (fields && !json_is_object(fields))
        return jd_fail(d, "'fields' must be an object, got %s", jtype(fields));
    if (f && !json_is_array(f))
        return jd_fail(d, "'f' must be an array, got %s", jtype(f));
    if ((fields ? json_object_size(fields) : 0) + (f ? json_array_size(f) : 0) == 0)
        return jd_fail(d, "'fields' is empty");
    if (tags && !json_is_object(tags) && !json_is_null(tags))
        return jd_fail(d, "'tags' must be an object, got %s", jtype(tags));
    rc = measurement_of(d, item, &b);
    if (rc != ERR_OK)
        return rc;
    rc = ictx_rows(&d->x, 1, d->eb);
    if (rc != ERR_OK)
        return jd_prefix(d, rc);
    row = batch_add_row(b, t_us);
    if (tags && json_is_object(tags)) {
        json_object_foreach((json_t *)tags, key, val) {
            rc = set_tag(d, b, key, strlen(key), val, row);
            if (rc != ERR_OK)
                return jd_prefix(d, rc);
        }
    }
    if (h) {
        rc = set_tag(d, b, "host", 4, h, row);
        if (rc != ERR_OK)
            return jd_prefix(d, rc);
    }
    if (fields) {
        json_object_foreach((json_t *)fields, key, val) {
            rc = set_field(d, b, key, strlen(key), val, row);
            if (rc != ERR_OK)
                return jd_prefix(d, rc);
        }
    }
    if (f) {
        json_array_foreach(f, i, val) {
            char name[32];
            int nl = snprintf(name, sizeof(name), "field_%zu", i);
            rc = set_field(d, b, name, (size_t)nl, val, row);
            if (rc != ERR_OK)
                return jd_prefix(d, rc);
        }
    }
    return ERR_OK;
}

static bool is_tag_key(const json_t *tag_keys, const char *name)
{
    size_t i;
    const json_t *v;

    if (!json_is_array(tag_keys))
        return false;
    json_array_foreach(tag_keys, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

static enum err fill_column(struct jd *d, struct batch *b, const char *name, const json_t *arr,
                            bool is_tag, size_t row0)
{
    size_t nlen = strlen(name), r;
    struct batch_col *c = NULL;
    const json_t *val;
    struct ival v;
    enum err rc = ERR_OK;

    json_array_foreach(arr, r, val) {
        if (is_tag) {
            rc = set_tag(d, b, name, nlen, val, row0 + r);
        } else if (!to_ival(val, &v)) {
            rc = errbuf_set(d->eb, ERR_PARSE, "unsupported type %s", jtype(val));
        } else {
            if (v.kind == IV_STR)
                rc = ictx_check_str(&d->x, v.v.s.p, v.v.s.len, d->eb);
            if (rc == ERR_OK)
                rc = ictx_field_col(&d->x, b, name, nlen, v.kind, &c, d->eb);
            if (rc == ERR_OK && c)
                ival_store(b, c, row0 + r, &v);
        }
        if (rc != ERR_OK) {
            errbuf_prefix(d->eb, "item %zu: column '%s' row %zu", d->item, name, r);
            return rc;
        }
    }
    return ERR_OK;
}

static enum err decode_columnar(struct jd *d, const json_t *item, const json_t *cols)
{
    const json_t *tcol = json_object_get(cols, "time"), *tag_keys, *val;
    const char *key;
    enum tunit unit = TU_US;
    struct batch *b;
    size_t n, r, row0;
    enum err rc;
    int pass;

    if (!tcol)
        return jd_fail(d, "columnar item has no 'time' column");
    if (!json_is_array(tcol))
        return jd_fail(d, "column 'time': expected an array, got %s", jtype(tcol));
    n = json_array_size(tcol);
    json_object_foreach((json_t *)cols, key, val) {
        if (!json_is_array(val))
            return jd_fail(d, "column '%s': expected an array, got %s", key, jtype(val));
        if (key[0] != '_' && json_array_size(val) != n)
            return jd_fail(d, "column '%s' has %zu values, column 'time' has %zu", key,
                           json_array_size(val), n);
    }
    tag_keys = json_object_get(item, "tag_keys");
    if (tag_keys && !json_is_array(tag_keys))
        return jd_fail(d, "'tag_keys' must be an array of strings");
    if (is_tag_key(tag_keys, "time"))
        return jd_fail(d, "'time' cannot be a tag");
    rc = measurement_of(d, item, &b);
    if (rc != ERR_OK)
        return rc;
    rc = ictx_rows(&d->x, n, d->eb);
    if (rc != ERR_OK)
        return jd_prefix(d, rc);
    row0 = batch_add_rows(b, n);
    json_array_foreach(tcol, r, val) {
        rc = time_of(d, val, r > 0, &unit, &b->time_us[row0 + r]);
        if (rc != ERR_OK) {
            errbuf_prefix(d->eb, "item %zu: column 'time' row %zu", d->item, r);
            return rc;
        }
    }
    /* pass 0: tags, pass 1: fields (a field named like a tag becomes <name>_value) */
    for (pass = 0; pass < 2; pass++) {
        json_object_foreach((json_t *)cols, key, val) {
            bool tag = is_tag_key(tag_keys, key);
            if (key[0] == '_' || strcmp(key, "time") == 0 || tag != (pass == 0))
                continue;
            rc = fill_column(d, b, key, val, tag, row0);
            if (rc != ERR_OK)
                return rc;
        }
    }
    return ERR_OK;
}

static enum err decode_item(struct jd *d, const json_t *item)
{
    const json_t *cols;

    if (!json_is_object(item))
        return jd_fail(d, "expected an object, got %s", jtype(item));
    if (json_object_get(item, "batch"))
        return jd_fail(d, "'batch' is only allowed at the top level");
    cols = json_object_get(item, "columns");
    if (cols) {
        if (!json_is_object(cols))
            return jd_fail(d, "'columns' must be an object, got %s", jtype(cols));
        return decode_columnar(d, item, cols);
    }
    return decode_row(d, item);
}

enum err ingest_json_decode(const char *body, size_t len, int64_t now_us,
                            const struct ingest_limits *lim, struct ingest_result *out,
                            struct errbuf *eb)
{
    struct jd d;
    json_error_t jerr;
    json_t *root, *items, *it;
    size_t i;
    enum err rc = ERR_OK;

    memset(&d, 0, sizeof(d));
    ictx_init(&d.x, lim);
    d.now_us = now_us;
    d.eb = eb;
    root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        rc = errbuf_set(eb, ERR_PARSE, "invalid JSON payload: %s at line %d column %d", jerr.text,
                        jerr.line, jerr.column);
        goto fail;
    }
    items = json_is_object(root) ? json_object_get(root, "batch") : root;
    if (json_is_object(root) && !items) {
        rc = decode_item(&d, root);
    } else if (!json_is_array(items)) {
        rc = errbuf_set(eb, ERR_PARSE, "invalid JSON payload: expected an object or an array%s",
                        items == root ? "" : " in 'batch'");
    } else {
        json_array_foreach(items, i, it) {
            d.item = i;
            rc = decode_item(&d, it);
            if (rc != ERR_OK)
                break;
        }
    }
    json_decref(root);
    if (rc != ERR_OK)
        goto fail;
    ictx_finish(&d.x, out);
    return ERR_OK;

fail:
    ictx_abort(&d.x);
    return rc;
}
