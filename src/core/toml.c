/* toml.c - recursive-descent parser for the TOML subset described in toml.h.
 *
 * The parser walks the bytes once with an explicit cursor (never reading past len,
 * never relying on a NUL terminator), builds each full dotted key in a capped buf,
 * and appends (key, value, line, col) to a flat array. Keys and table names go into
 * a small open-addressing hash set so duplicate detection stays linear even for a
 * 1 MiB file of tiny keys (a fuzzer finds quadratic paths quickly). Every name in
 * the set is tagged VALUE, TABLE (defined by a [header]) or IMPLICIT (a prefix of
 * some key), which is all that is needed to reject the TOML conflicts: duplicate
 * key, table defined twice, and a key used as a table or vice versa.
 *
 * Segment boundaries are remembered as offsets, so a quoted segment holding a '.'
 * never splits a key in the wrong place when prefixes are registered.
 * Error positions are turned into line:column by rescanning from the start of the
 * text; that is O(n) once per failed parse and keeps the hot path simple. */
#include "core/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"

enum name_kind { NAME_VALUE, NAME_TABLE, NAME_IMPLICIT };

struct name_slot {
    char *name; /* heap, NULL = empty slot */
    size_t len; /* strlen(name) */
    enum name_kind kind;
};

struct name_set {
    struct name_slot *slots; /* cap slots, cap is a power of two */
    size_t cap;
    size_t n; /* used slots, kept below cap / 2 */
};

struct parser {
    const char *s;    /* text */
    size_t len;       /* bytes in text */
    size_t pos;       /* cursor, <= len */
    int line;         /* 1-based line of pos */
    const char *name; /* for messages */
    struct errbuf *eb;
    struct toml_doc doc;
    struct name_set names;
    struct buf table;                  /* current [table] path, "" at root */
    size_t table_seg[TOML_MAX_DEPTH];  /* end offset of each segment of table */
    int table_nseg;                    /* segments in table */
};

/* ---- errors ---------------------------------------------------------------- */

static enum err fail_at(struct parser *p, size_t at, enum err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum err fail_at(struct parser *p, size_t at, enum err code, const char *fmt, ...)
{
    char what[512];
    size_t i, line_start = 0;
    int line = 1;
    va_list ap;

    if (at > p->len)
        at = p->len;
    for (i = 0; i < at; i++) {
        if (p->s[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return errbuf_set(p->eb, code, "%s:%d:%zu: %s", p->name, line, at - line_start + 1, what);
}

#define FAIL(p, code, ...) fail_at((p), (p)->pos, (code), __VA_ARGS__)

/* ---- name set ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The slot holding name[0..n), or the empty slot where it would go. */
static struct name_slot *names_slot(struct name_set *ns, const char *name, size_t n)
{
    size_t i = (size_t)hash_bytes(name, n) & (ns->cap - 1);

    for (;;) {
        struct name_slot *sl = &ns->slots[i];
        if (!sl->name || (sl->len == n && memcmp(sl->name, name, n) == 0))
            return sl;
        i = (i + 1) & (ns->cap - 1);
    }
}

static void names_grow(struct name_set *ns)
{
    struct name_slot *old = ns->slots;
    size_t oldcap = ns->cap, i;

    ns->cap = oldcap ? oldcap * 2 : 64;
    ns->slots = xcalloc(ns->cap, sizeof(*ns->slots));
    for (i = 0; i < oldcap; i++) {
        if (old[i].name)
            *names_slot(ns, old[i].name, old[i].len) = old[i];
    }
    free(old);
}

static struct name_slot *names_find(struct name_set *ns, const char *name, size_t n)
{
    struct name_slot *sl;

    if (!ns->cap)
        return NULL;
    sl = names_slot(ns, name, n);
    return sl->name ? sl : NULL;
}

static void names_add(struct name_set *ns, const char *name, size_t n, enum name_kind kind)
{
    struct name_slot *sl;

    if ((ns->n + 1) * 2 > ns->cap)
        names_grow(ns);
    sl = names_slot(ns, name, n);
    sl->name = xstrndup(name, n);
    sl->len = n;
    sl->kind = kind;
    ns->n++;
}

static void names_release(struct name_set *ns)
{
    size_t i;

    for (i = 0; i < ns->cap; i++)
        free(ns->slots[i].name);
    free(ns->slots);
    ns->slots = NULL;
    ns->cap = ns->n = 0;
}

/* ---- values ------------------------------------------------------------------ */

static void value_release(struct toml_value *v)
{
    size_t i;

    if (v->type == TOML_STRING) {
        free(v->u.s);
    } else if (v->type == TOML_ARRAY) {
        for (i = 0; i < v->u.arr.n; i++)
            value_release(&v->u.arr.items[i]);
        free(v->u.arr.items);
    }
    v->type = TOML_BOOL;
}

void toml_doc_release(struct toml_doc *d)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        free(d->entries[i].key);
        value_release(&d->entries[i].val);
    }
    free(d->entries);
    d->entries = NULL;
    d->n = d->cap = 0;
}

const struct toml_entry *toml_doc_get(const struct toml_doc *d, const char *key)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        if (strcmp(d->entries[i].key, key) == 0)
            return &d->entries[i];
    }
    return NULL;
}

const char *toml_type_name(enum toml_type t)
{
    switch (t) {
    case TOML_STRING: return "string";
    case TOML_INT: return "integer";
    case TOML_FLOAT: return "float";
    case TOML_BOOL: return "boolean";
    case TOML_ARRAY: return "array";
    }
    return "value";
}

/* ---- lexing helpers ------------------------------------------------------------ */

static int peek(const struct parser *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->s[p->pos + ahead] : -1;
}

static bool is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static bool is_ctrl(int c)
{
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_ws(struct parser *p)
{
    while (peek(p, 0) == ' ' || peek(p, 0) == '\t')
        p->pos++;
}

/* Skip a comment starting at '#', stopping before the line end. */
static enum err skip_comment(struct parser *p)
{
    int c;

    p->pos++; /* '#' */
    while ((c = peek(p, 0)) != -1 && c != '\n' && c != '\r') {
        if (is_ctrl(c))
            return FAIL(p, ERR_PARSE, "control character in comment");
        p->pos++;
    }
    return ERR_OK;
}

/* At a line end (LF or CRLF) consume it and return true; otherwise false. */
static bool eat_newline(struct parser *p)
{
    if (peek(p, 0) == '\n') {
        p->pos++;
    } else if (peek(p, 0) == '\r' && peek(p, 1) == '\n') {
        p->pos += 2;
    } else {
        return false;
    }
    p->line++;
    return true;
}

/* After a header or key/value: optional blanks and comment, then EOL or EOF. */
static enum err expect_eol(struct parser *p, const char *after)
{
    enum err rc;

    skip_ws(p);
    if (peek(p, 0) == '#' && (rc = skip_comment(p)) != ERR_OK)
        return rc;
    if (peek(p, 0) == -1 || eat_newline(p))
        return ERR_OK;
    if (peek(p, 0) == '\r')
        return FAIL(p, ERR_PARSE, "carriage return not followed by newline");
    return FAIL(p, ERR_PARSE, "expected end of line after %s", after);
}

/* Skip blanks, newlines and comments (inside arrays). */
static enum err skip_ws_nl(struct parser *p)
{
    enum err rc;

    for (;;) {
        skip_ws(p);
        if (peek(p, 0) == '#') {
            if ((rc = skip_comment(p)) != ERR_OK)
                return rc;
        } else if (!eat_newline(p)) {
            if (peek(p, 0) == '\r')
                return FAIL(p, ERR_PARSE, "carriage return not followed by newline");
            return ERR_OK;
        }
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void append_utf8(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    /* cannot pass the cap: the output is never longer than the input text */
    (void)buf_append(b, u, n);
}

/* Parse a basic ("...") or literal ('...') single-line string at the cursor into
 * out (appended). The caller checked the opening quote. */
static enum err parse_string(struct parser *p, struct buf *out)
{
    int q = peek(p, 0), c;

    if (peek(p, 1) == q && peek(p, 2) == q)
        return FAIL(p, ERR_PARSE, "multi-line strings are not supported");
    p->pos++;
    for (;;) {
        c = peek(p, 0);
        if (c == -1 || c == '\n' || c == '\r')
            return FAIL(p, ERR_PARSE, "unterminated string");
        if (c == q) {
            p->pos++;
            return ERR_OK;
        }
        if (is_ctrl(c))
            return FAIL(p, ERR_PARSE, "control character in string");
        if (c != '\\' || q == '\'') {
            (void)buf_append_char(out, (char)c);
            p->pos++;
            continue;
        }
        /* escape in a basic string */
        c = peek(p, 1);
        switch (c) {
        case 'b': (void)buf_append_char(out, '\b'); break;
        case 't': (void)buf_append_char(out, '\t'); break;
        case 'n': (void)buf_append_char(out, '\n'); break;
        case 'f': (void)buf_append_char(out, '\f'); break;
        case 'r': (void)buf_append_char(out, '\r'); break;
        case '"': (void)buf_append_char(out, '"'); break;
        case '\\': (void)buf_append_char(out, '\\'); break;
        case 'u':
        case 'U': {
            int ndig = c == 'u' ? 4 : 8, i, h;
            uint32_t cp = 0;
            for (i = 0; i < ndig; i++) {
                h = hexval(peek(p, 2 + (size_t)i));
                if (h < 0)
                    return FAIL(p, ERR_PARSE, "\\%c needs %d hex digits", c, ndig);
                cp = (cp << 4) | (uint32_t)h;
            }
            if (cp == 0)
                return FAIL(p, ERR_PARSE, "\\u0000 is not allowed in strings");
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return FAIL(p, ERR_PARSE, "\\%c escape is not a unicode scalar value", c);
            append_utf8(out, cp);
            p->pos += (size_t)ndig;
            break;
        }
        default:
            if (c == -1 || c == '\n' || c == '\r')
                return FAIL(p, ERR_PARSE, "unterminated string");
            if (c >= 0x20 && c < 0x7f)
                return FAIL(p, ERR_PARSE, "invalid escape '\\%c'", c);
            return FAIL(p, ERR_PARSE, "invalid escape");
        }
        p->pos += 2;
    }
}

/* ---- numbers ------------------------------------------------------------------ */

/* Check that s[0..n) is digits (per base) with single '_' between digits only. */
static bool digits_ok(const char *s, size_t n, int base)
{
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c == '_') {
            if (i == 0 || i + 1 == n || s[i - 1] == '_')
                return false;
            continue;
        }
        v = hexval(c);
        if (v < 0 || v >= base)
            return false;
    }
    return true;
}

static bool accumulate(const char *s, size_t n, int base, bool neg, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    /* accumulate negatively so INT64_MIN fits */
    for (i = 0; i < n; i++) {
        int d;
        if (s[i] == '_')
            continue;
        d = hexval((unsigned char)s[i]);
        if (v < (INT64_MIN + d) / base)
            return false;
        v = v * base - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return false;
        v = -v;
    }
    *out = v;
    return true;
}

/* Classify and convert the bare token t[0..n) (a number, bool, inf/nan). */
static enum err scalar_from_token(struct parser *p, size_t at, const char *t, size_t n,
                                  struct toml_value *v)
{
    const char *d = t;
    size_t dn = n, i, ip_len, fr_len = 0, ex_len = 0;
    const char *ip, *fr = NULL, *ex = NULL;
    bool neg = false;
    int shown = n > 40 ? 40 : (int)n;

    if (n == 4 && memcmp(t, "true", 4) == 0) {
        v->type = TOML_BOOL;
        v->u.b = true;
        return ERR_OK;
    }
    if (n == 5 && memcmp(t, "false", 5) == 0) {
        v->type = TOML_BOOL;
        v->u.b = false;
        return ERR_OK;
    }
    /* a local date starts "dddd-", a time holds ':' */
    if (memchr(t, ':', n) ||
        (n > 4 && t[4] == '-' && strspn(t, "0123456789") == 4))
        return fail_at(p, at, ERR_PARSE, "dates and times are not supported");
    if (dn && (d[0] == '+' || d[0] == '-')) {
        neg = d[0] == '-';
        d++;
        dn--;
    }
    if ((dn == 3 && memcmp(d, "inf", 3) == 0) || (dn == 3 && memcmp(d, "nan", 3) == 0)) {
        v->type = TOML_FLOAT;
        v->u.f = d[0] == 'i' ? (neg ? -INFINITY : INFINITY) : NAN;
        return ERR_OK;
    }
    if (dn > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'o' || d[1] == 'b')) {
        int base = d[1] == 'x' ? 16 : d[1] == 'o' ? 8 : 2;
        if (d != t)
            return fail_at(p, at, ERR_PARSE, "a sign is not allowed on 0%c integers", d[1]);
        if (!digits_ok(d + 2, dn - 2, base))
            return fail_at(p, at, ERR_PARSE, "invalid number '%.*s'", shown, t);
        /* non-decimal integers are unsigned bit patterns; must fit in int64 */
        if (!accumulate(d + 2, dn - 2, base, false, &v->u.i))
            return fail_at(p, at, ERR_PARSE, "integer '%.*s' out of range", shown, t);
        v->type = TOML_INT;
        return ERR_OK;
    }
    if (dn == 0 || d[0] < '0' || d[0] > '9') {
        if (dn > 0 && ((d[0] >= 'a' && d[0] <= 'z') || (d[0] >= 'A' && d[0] <= 'Z')))
            return fail_at(p, at, ERR_PARSE, "expected a value, got '%.*s' (strings must be quoted)",
                           shown, t);
        return fail_at(p, at, ERR_PARSE, "invalid number '%.*s'", shown, t);
    }
    /* split: int [. frac] [e|E exp] */
    ip = d;
    for (i = 0; i < dn && d[i] != '.' && d[i] != 'e' && d[i] != 'E'; i++)
        ;
    ip_len = i;
    if (i < dn && d[i] == '.') {
        fr = d + i + 1;
        for (i++; i < dn && d[i] != 'e' && d[i] != 'E'; i++)
            ;
        fr_len = (size_t)(d + i - fr);
    }
    if (i < dn) {
        ex = d + i + 1;
        ex_len = dn - i - 1;
    }
    if (!digits_ok(ip, ip_len, 10) || (ip_len > 1 && ip[0] == '0') ||
        (fr && !digits_ok(fr, fr_len, 10)))
        return fail_at(p, at, ERR_PARSE, "invalid number '%.*s'", shown, t);
    if (ex) {
        const char *e = ex;
        size_t en = ex_len;
        if (en && (e[0] == '+' || e[0] == '-')) {
            e++;
            en--;
        }
        if (!digits_ok(e, en, 10))
            return fail_at(p, at, ERR_PARSE, "invalid number '%.*s'", shown, t);
    }
    if (!fr && !ex) {
        if (!accumulate(ip, ip_len, 10, neg, &v->u.i))
            return fail_at(p, at, ERR_PARSE, "integer '%.*s' out of range", shown, t);
        v->type = TOML_INT;
        return ERR_OK;
    }
    {
        /* float: strip underscores and let strtod convert (C locale) */
        char *clean = xmalloc(n + 1), *end;
        size_t k = 0;
        for (i = 0; i < n; i++) {
            if (t[i] != '_')
                clean[k++] = t[i];
        }
        clean[k] = '\0';
        errno = 0;
        v->u.f = strtod(clean, &end);
        if (end != clean + k || (errno == ERANGE && isinf(v->u.f))) {
            free(clean);
            return fail_at(p, at, ERR_PARSE, "float '%.*s' out of range", shown, t);
        }
        free(clean);
        v->type = TOML_FLOAT;
        return ERR_OK;
    }
}

/* ---- values and arrays ------------------------------------------------------------ */

static enum err parse_value(struct parser *p, struct toml_value *v, bool in_array);

static enum err parse_array(struct parser *p, struct toml_value *v)
{
    struct toml_value *items = NULL, item;
    size_t n = 0, cap = 0, i;
    enum err rc;

    p->pos++; /* '[' */
    for (;;) {
        if ((rc = skip_ws_nl(p)) != ERR_OK)
            goto fail_free_items;
        if (peek(p, 0) == ']')
            break;
        if (n == TOML_MAX_ARRAY) {
            rc = FAIL(p, ERR_LIMIT, "array has more than %d items", TOML_MAX_ARRAY);
            goto fail_free_items;
        }
        if ((rc = parse_value(p, &item, true)) != ERR_OK)
            goto fail_free_items;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            items = xreallocarray(items, cap, sizeof(*items));
        }
        items[n++] = item;
        if ((rc = skip_ws_nl(p)) != ERR_OK)
            goto fail_free_items;
        if (peek(p, 0) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p, 0) == ']')
            break;
        if (peek(p, 0) == -1)
            rc = FAIL(p, ERR_PARSE, "unterminated array");
        else
            rc = FAIL(p, ERR_PARSE, "expected ',' or ']' in array");
        goto fail_free_items;
    }
    p->pos++; /* ']' */
    v->type = TOML_ARRAY;
    v->u.arr.items = items;
    v->u.arr.n = n;
    return ERR_OK;

fail_free_items:
    for (i = 0; i < n; i++)
        value_release(&items[i]);
    free(items);
    return rc;
}

static enum err parse_value(struct parser *p, struct toml_value *v, bool in_array)
{
    int c = peek(p, 0);
    size_t start = p->pos;
    enum err rc;

    if (c == '"' || c == '\'') {
        struct buf b;
        buf_init(&b, TOML_MAX_BYTES);
        if ((rc = parse_string(p, &b)) != ERR_OK) {
            buf_release(&b);
            return rc;
        }
        v->type = TOML_STRING;
        v->u.s = b.data ? buf_steal(&b, NULL) : xstrdup("");
        return ERR_OK;
    }
    if (c == '[') {
        if (in_array)
            return FAIL(p, ERR_PARSE, "nested arrays are not supported");
        return parse_array(p, v);
    }
    if (c == '{')
        return FAIL(p, ERR_PARSE, "inline tables are not supported");
    while ((c = peek(p, 0)) != -1 &&
           (is_bare_key_char(c) || c == '+' || c == '.' || c == ':'))
        p->pos++;
    if (p->pos == start) {
        if (c == -1 || c == '\n' || c == '\r' || c == '#')
            return FAIL(p, ERR_PARSE, "expected a value");
        return FAIL(p, ERR_PARSE, "unexpected character in value");
    }
    return scalar_from_token(p, start, p->s + start, p->pos - start, v);
}

/* ---- keys and tables ------------------------------------------------------------ */

/* Parse a (possibly dotted) key, appending segments to path ("." between them) and
 * their end offsets to seg[*nseg..]. */
static enum err parse_key(struct parser *p, struct buf *path, size_t *seg, int *nseg)
{
    enum err rc;
    int c;

    for (;;) {
        skip_ws(p);
        if (*nseg >= TOML_MAX_DEPTH)
            return FAIL(p, ERR_LIMIT, "key nested deeper than %d levels", TOML_MAX_DEPTH);
        if (path->len)
            (void)buf_append_char(path, '.');
        c = peek(p, 0);
        if (c == '"' || c == '\'') {
            size_t before = path->len;
            if ((rc = parse_string(p, path)) != ERR_OK)
                return rc;
            /* empty keys are legal TOML but useless here, and would make "" paths */
            if (path->len == before)
                return FAIL(p, ERR_PARSE, "empty key");
            if (memchr(path->data + before, '\n', path->len - before))
                return FAIL(p, ERR_PARSE, "newline in quoted key");
        } else if (is_bare_key_char(c)) {
            size_t start = p->pos;
            while (is_bare_key_char(peek(p, 0)))
                p->pos++;
            (void)buf_append(path, p->s + start, p->pos - start);
        } else {
            return FAIL(p, ERR_PARSE, "expected a key");
        }
        seg[(*nseg)++] = path->len;
        skip_ws(p);
        if (peek(p, 0) != '.')
            return ERR_OK;
        p->pos++;
    }
}

/* Register path's proper prefixes as tables. Fails if one is already a value. */
static enum err register_prefixes(struct parser *p, size_t at, const char *path,
                                  const size_t *seg, int nseg)
{
    struct name_slot *sl;
    int i;

    for (i = 0; i < nseg - 1; i++) {
        sl = names_find(&p->names, path, seg[i]);
        if (!sl)
            names_add(&p->names, path, seg[i], NAME_IMPLICIT);
        else if (sl->kind == NAME_VALUE)
            return fail_at(p, at, ERR_CONFLICT, "'%.*s' is a value, not a table", (int)seg[i],
                           path);
    }
    return ERR_OK;
}

static enum err parse_table_header(struct parser *p)
{
    size_t at = p->pos;
    struct name_slot *sl;
    enum err rc;

    if (peek(p, 1) == '[')
        return FAIL(p, ERR_PARSE, "arrays of tables ([[...]]) are not supported");
    p->pos++;
    buf_reset(&p->table);
    p->table_nseg = 0;
    if ((rc = parse_key(p, &p->table, p->table_seg, &p->table_nseg)) != ERR_OK)
        return rc;
    if (peek(p, 0) != ']')
        return FAIL(p, ERR_PARSE, "expected ']' after table name");
    p->pos++;
    if ((rc = register_prefixes(p, at, p->table.data, p->table_seg, p->table_nseg)) != ERR_OK)
        return rc;
    sl = names_find(&p->names, p->table.data, p->table.len);
    if (!sl)
        names_add(&p->names, p->table.data, p->table.len, NAME_TABLE);
    else if (sl->kind == NAME_VALUE)
        return fail_at(p, at, ERR_CONFLICT, "'%s' is already a value", p->table.data);
    else if (sl->kind == NAME_TABLE)
        return fail_at(p, at, ERR_CONFLICT, "table '%s' defined twice", p->table.data);
    else
        sl->kind = NAME_TABLE;
    return expect_eol(p, "table header");
}

static enum err parse_keyval(struct parser *p)
{
    size_t at = p->pos, seg[TOML_MAX_DEPTH];
    int nseg = p->table_nseg, line = p->line;
    struct name_slot *sl;
    struct toml_value v;
    struct toml_entry *e;
    struct buf key;
    enum err rc;

    buf_init(&key, TOML_MAX_BYTES * 2);
    if (p->table.len) /* buf_append of 0 bytes to an empty buf is unsafe in buf.c */
        (void)buf_append(&key, p->table.data, p->table.len);
    memcpy(seg, p->table_seg, sizeof(seg[0]) * (size_t)nseg);
    if ((rc = parse_key(p, &key, seg, &nseg)) != ERR_OK)
        goto fail_release_key;
    if (peek(p, 0) != '=') {
        rc = FAIL(p, ERR_PARSE, "expected '=' after key");
        goto fail_release_key;
    }
    p->pos++;
    skip_ws(p);
    if ((rc = register_prefixes(p, at, key.data, seg, nseg)) != ERR_OK)
        goto fail_release_key;
    sl = names_find(&p->names, key.data, key.len);
    if (sl) {
        if (sl->kind == NAME_VALUE)
            rc = fail_at(p, at, ERR_CONFLICT, "duplicate key '%s'", key.data);
        else
            rc = fail_at(p, at, ERR_CONFLICT, "'%s' is already a table", key.data);
        goto fail_release_key;
    }
    if ((rc = parse_value(p, &v, false)) != ERR_OK)
        goto fail_release_key;
    if ((rc = expect_eol(p, "value")) != ERR_OK) {
        value_release(&v);
        goto fail_release_key;
    }
    names_add(&p->names, key.data, key.len, NAME_VALUE);
    if (p->doc.n == p->doc.cap) {
        p->doc.cap = p->doc.cap ? p->doc.cap * 2 : 32;
        p->doc.entries = xreallocarray(p->doc.entries, p->doc.cap, sizeof(*p->doc.entries));
    }
    e = &p->doc.entries[p->doc.n++];
    e->key = buf_steal(&key, NULL);
    e->val = v;
    e->line = line;
    {
        size_t ls = at;
        while (ls > 0 && p->s[ls - 1] != '\n')
            ls--;
        e->col = (int)(at - ls + 1);
    }
    return ERR_OK;

fail_release_key:
    buf_release(&key);
    return rc;
}

/* Offset of the first byte that is not part of valid UTF-8, or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0, n, k;
    uint32_t cp, min;

    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (n >= len - i)
            return i;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

enum err toml_parse(const char *text, size_t len, const char *name, struct toml_doc *out,
                    struct errbuf *eb)
{
    struct parser p;
    size_t bad;
    enum err rc = ERR_OK;

    memset(&p, 0, sizeof(p));
    p.s = text;
    p.len = len;
    p.line = 1;
    p.name = name ? name : "<toml>";
    p.eb = eb;
    buf_init(&p.table, TOML_MAX_BYTES);
    if (len > TOML_MAX_BYTES)
        return errbuf_set(eb, ERR_LIMIT, "%s: larger than %u bytes", p.name, TOML_MAX_BYTES);
    bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len)
        return fail_at(&p, bad, ERR_PARSE, "invalid UTF-8");
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3; /* byte order mark */

    while (rc == ERR_OK) {
        int c;
        skip_ws(&p);
        c = peek(&p, 0);
        if (c == -1)
            break;
        if (c == '#') {
            if ((rc = skip_comment(&p)) == ERR_OK)
                rc = expect_eol(&p, "comment");
        } else if (c == '\n' || c == '\r') {
            rc = expect_eol(&p, "blank");
        } else if (c == '[') {
            rc = parse_table_header(&p);
        } else {
            rc = parse_keyval(&p);
        }
    }
    names_release(&p.names);
    buf_release(&p.table);
    if (rc != ERR_OK) {
        toml_doc_release(&p.doc);
        return rc;
    }
    *out = p.doc;
    return ERR_OK;
}

enum err toml_parse_file(const char *path, struct toml_doc *out, struct errbuf *eb)
{
    struct stat st;
    char *text = NULL;
    size_t got = 0;
    ssize_t r;
    enum err rc;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = errbuf_set(eb, ERR_IO, "%s: %s", path, strerror(errno));
        goto fail_close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = errbuf_set(eb, ERR_IO, "%s: not a regular file", path);
        goto fail_close_fd;
    }
    if (st.st_size > (off_t)TOML_MAX_BYTES) {
        rc = errbuf_set(eb, ERR_LIMIT, "%s: larger than %u bytes", path, TOML_MAX_BYTES);
        goto fail_close_fd;
    }
    /* read up to the cap + 1 so a file that grew after fstat is still caught */
    text = xmalloc(TOML_MAX_BYTES + 1);
    while (got <= TOML_MAX_BYTES) {
        r = read(fd, text + got, TOML_MAX_BYTES + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = errbuf_set(eb, ERR_IO, "%s: %s", path, strerror(errno));
            goto fail_free_text;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > TOML_MAX_BYTES) {
        rc = errbuf_set(eb, ERR_LIMIT, "%s: larger than %u bytes", path, TOML_MAX_BYTES);
        goto fail_free_text;
    }
    rc = toml_parse(text, got, path, out, eb);

fail_free_text:
    free(text);
fail_close_fd:
    close(fd);
    return rc;
}
