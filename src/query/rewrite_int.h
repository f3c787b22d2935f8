/* rewrite_int.h - what rewrite.c and rewrite_where.c share: the parse tree's small
 * JSON DOM (rewrite.c builds and writes it) and the WHERE-conjunct extraction. */
#ifndef QUERY_REWRITE_INT_H
#define QUERY_REWRITE_INT_H
#include <stdbool.h>
#include <stddef.h>

struct buf;
struct query_ref;

enum jt { J_RAW, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jt t;
    char *s; /* J_RAW: token text; J_STR: decoded string */
    size_t slen;
    struct jv **kids; /* J_ARR items / J_OBJ values */
    char **keys;      /* J_OBJ keys (decoded, NUL-terminated) */
    size_t n, cap;
};

/* Append v as JSON (scalars verbatim). */
void jv_dump(const struct jv *v, struct buf *b);
/* Object member `key`, or NULL. */
struct jv *jget(const struct jv *o, const char *key);
/* Object member `key` if it is a string, else NULL. */
const char *jstr(const struct jv *o, const char *key);

/* An unqualified column reference's name (COLUMN_REF with one name), or NULL. */
const char *rw_plain_column(const struct jv *e);
/* Absent, JSON null or an empty array. */
bool rw_null_or_empty(const struct jv *v);

/* Record in r what the WHERE clause c of the SELECT node whose FROM holds r says of
 * r's rows (rewrite_where.c): time bounds, `col = 'v'` / `col IN (...)` tag sets and
 * `col <op> number` comparisons, from its top-level AND conjuncts. alias: r's
 * effective name; single: r is the FROM's only item (unqualified columns are r's). */
void rw_where_conjuncts(struct query_ref *r, const struct jv *c, const char *alias, bool single);

#endif
