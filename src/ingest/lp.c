/* lp.c - InfluxDB line protocol -> column batches.
 *
 * One pass over the body with a cursor; no line splitting, no per-value malloc.
 * Keys and values are slices of the body; only a token that contains a backslash
 * is unescaped, into one of two scratch buffers (key, value) that grow to the
 * longest such token. Tag values are interned in the batch dictionary; a line
 * whose measurement and tag set repeat an earlier line's bytes takes its tags from
 * the series cache (ingest_int.h). Bodies of >= 256 KiB without a '"' may be cut
 * at newlines and decoded on several threads (lp_decode_parts). Floats
 * take the exact fast path (<= 19 significant digits, mantissa <= 2^53, decimal
 * exponent within +-22: one multiply or divide by an exact power of ten, which is
 * correctly rounded); anything else goes to strtod on a NUL-terminated copy.
 *
 * Grammar decisions (docs/ingest.md): string field values may span lines (the
 * line count follows); duplicate fields or tags in one line: the last wins; `.5`
 * and `1.` are floats; NaN/Inf and out-of-range floats are errors; an unescaped
 * '=' inside a tag value is kept literally; leading spaces/tabs before a line are
 * skipped; a line ends with optional spaces, optional '\r', then '\n' or the end. */
#include "ingest/ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ingest/ingest_int.h"

struct lp {
    struct ictx x;
    enum ingest_precision prec;
    int64_t now_us;
    struct errbuf *eb;
    size_t line;     /* 1-based number of the line being parsed (first line of it) */
    char *kbuf;      /* scratch for unescaped keys */
    size_t kcap;
    char *vbuf;      /* scratch for unescaped values and strtod copies */
    size_t vcap;
};

/* Byte classes: which bytes stop a token of each kind. Backslash is handled
 * by the scanner itself and always stops the fast loop. */
enum { ST_MEAS = 1, ST_TKEY = 2, ST_TVAL = 4, ST_FKEY = 8, ST_BARE = 16 };
#define ST_ALL (ST_MEAS | ST_TKEY | ST_TVAL | ST_FKEY | ST_BARE)
static const uint8_t stop_tab[256] = {
    [','] = ST_ALL,
    [' '] = ST_ALL,
    ['\n'] = ST_ALL,
    ['='] = ST_TKEY | ST_FKEY,
    ['\r'] = ST_BARE,
    ['\t'] = ST_BARE, /* trailing tab after a value */
    ['\\'] = ST_MEAS | ST_TKEY | ST_TVAL | ST_FKEY,
};

/* Scan a key/name/tag value from p; returns its end; *esc set if it had a backslash.
 * A backslash skips the next byte (unless it is a newline), so `\,` `\=` `\ ` never
 * end the token. */
static const char *scan_tok(const char *p, const char *end, uint8_t cls, bool *esc)
{
    for (;;) {
        while (p < end && !(stop_tab[(uint8_t)*p] & cls))
            p++;
        if (p < end && *p == '\\') {
            *esc = true;
            p += (p + 1 < end && p[1] != '\n') ? 2 : 1;
            continue;
        }
        return p;
    }
}

static char *scratch(char **buf, size_t *cap, size_t need)
{
    if (need + 1 > *cap) {
        *cap = need + 1 > 64 ? need + 1 : 64;
        free(*buf);
        *buf = xmalloc(*cap);
    }
    return *buf;
}

/* Unescape `\,` `\=` `\ ` (the key / tag value set); other backslashes are literal. */
static size_t unescape(const char *s, size_t len, char *out)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == ',' || s[i + 1] == '=' || s[i + 1] == ' '))
            i++;
        out[n++] = s[i];
    }
    return n;
}

static enum err lp_err(struct lp *lp, enum err code, const char *fmt, const char *a, int alen,
                       const char *b, int blen)
{
    char msg[512];

    snprintf(msg, sizeof(msg), fmt, alen, a, blen, b);
    return errbuf_set(lp->eb, code, "line %zu: %s", lp->line, msg);
}

static enum err lp_fail(struct lp *lp, const char *what)
{
    return errbuf_set(lp->eb, ERR_PARSE, "line %zu: %s", lp->line, what);
}

/* Prefix the location to a message written by the ictx helpers; returns rc
 * (errbuf_prefix's own return is not used: eb may be NULL). */
static enum err lp_prefix(struct lp *lp, enum err rc)
{
    errbuf_prefix(lp->eb, "line %zu", lp->line);
    return rc;
}

/* A line whose series key is cached: a new row with the series' tags. */
static enum err sk_apply(struct lp *lp, const struct series_ent *e)
{
    enum err rc;

    lp->x.last = e->b;
    lp->x.last_len = strlen(e->b->measurement);
    rc = ictx_rows(&lp->x, 1, lp->eb);
    if (rc != ERR_OK)
        return lp_prefix(lp, rc);
    ictx_series_store(&lp->x, e, batch_add_row(e->b, 0));
    return ERR_OK;
}

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse a float token [s,e) by the line protocol grammar:
 * -?(digits(.digits*)?|.digits)([eE][+-]?digits)?  -> false if malformed or out of range. */
static bool parse_float(struct lp *lp, const char *s, const char *e, double *out)
{
    const char *p = s;
    bool neg = false;
    uint64_t mant = 0;
    int ndig = 0, nint = 0, nfrac = 0, dexp = 0, exp10 = 0;
    bool exact = true;

    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    while (p < e && *p >= '0' && *p <= '9') {
        if (mant || *p != '0') {
            if (ndig < 19)
                mant = mant * 10 + (uint64_t)(*p - '0');
            else
                exact = false;
            ndig++;
            if (ndig > 19)
                dexp++;
        }
        nint++;
        p++;
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && *p >= '0' && *p <= '9') {
            if (mant || *p != '0') {
                if (ndig < 19) {
                    mant = mant * 10 + (uint64_t)(*p - '0');
                    dexp--;
                } else {
                    exact = false;
                }
                ndig++;
            } else {
                dexp--;
            }
            nfrac++;
            p++;
        }
    }
    if (nint + nfrac == 0)
        return false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        int en = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == e)
            return false;
        while (p < e && *p >= '0' && *p <= '9') {
            if (en < 100000)
                en = en * 10 + (*p - '0');
            p++;
        }
        exp10 = eneg ? -en : en;
    }
    if (p != e)
        return false;
    if (exact && mant <= (1ull << 53)) {
        int x = dexp + exp10;
        double v = (double)mant;
        if (mant == 0) {
            *out = neg ? -0.0 : 0.0;
            return true;
        }
        if (x >= 0 && x <= 22) {
            *out = neg ? -(v * pow10_tab[x]) : v * pow10_tab[x];
            return true;
        }
        if (x < 0 && x >= -22) {
            *out = neg ? -(v / pow10_tab[-x]) : v / pow10_tab[-x];
            return true;
        }
    }
    {
        size_t n = (size_t)(e - s);
        char *buf = scratch(&lp->vbuf, &lp->vcap, n), *endp;
        double v;
        memcpy(buf, s, n);
        buf[n] = '\0';
        errno = 0;
        v = strtod(buf, &endp);
        if (endp != buf + n)
            return false;
        /* ERANGE with a huge result is overflow; underflow to 0 or a denormal is fine. */
        if (errno == ERANGE && (v > 1.0 || v < -1.0))
            return false;
        *out = v;
        return true;
    }
}

static bool parse_i64(const char *s, const char *e, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0, lim;

    if (s < e && *s == '-') {
        neg = true;
        s++;
    }
    if (s == e)
        return false;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    /* up to 18 digits cannot overflow (10^18 < 2^63): no range check per digit */
    for (; s < e && v < 100000000000000000ull; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    for (; s < e; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (d > 9 || v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool parse_u64(const char *s, const char *e, uint64_t *out)
{
    uint64_t v = 0;

    if (s == e)
        return false;
    for (; s < e; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* Classify and parse a bare (unquoted) field value [s,e). */
static bool parse_bare(struct lp *lp, const char *s, const char *e, struct ival *v)
{
    size_t n = (size_t)(e - s);
    char last;

    if (n == 0)
        return false;
    last = e[-1];
    switch (s[0]) {
    case 't':
    case 'T':
        if (n == 1 || word_is(s, n, "true") || word_is(s, n, "True") || word_is(s, n, "TRUE")) {
            v->kind = IV_BOOL;
            v->v.b = true;
            return true;
        }
        return false;
    case 'f':
    case 'F':
        if (n == 1 || word_is(s, n, "false") || word_is(s, n, "False") ||
            word_is(s, n, "FALSE")) {
            v->kind = IV_BOOL;
            v->v.b = false;
            return true;
        }
        return false;
    default:
        break;
    }
    if (last == 'i') {
        v->kind = IV_I64;
        return parse_i64(s, e - 1, &v->v.i);
    }
    if (last == 'u') {
        v->kind = IV_U64;
        return parse_u64(s, e - 1, &v->v.u);
    }
    v->kind = IV_F64;
    return parse_float(lp, s, e, &v->v.f);
}

static enum err to_us(struct lp *lp, int64_t t, int64_t *us)
{
    static const int64_t mult[] = {0, 1, 1000, 1000000, 60000000, 3600000000};

    if (lp->prec == PREC_NS) {
        int64_t q = t / 1000;
        if (t % 1000 != 0 && t < 0)
            q--; /* floor: pre-1970 rows must land in the right hour */
        *us = q;
        return ERR_OK;
    }
    if (__builtin_mul_overflow(t, mult[lp->prec], us))
        return lp_fail(lp, "timestamp out of range");
    return ERR_OK;
}

/* Parse one line starting at *pp (not blank, not a comment). Consumes through '\n'. */
static enum err parse_line(struct lp *lp, const char **pp, const char *end)
{
    const char *p = *pp, *s, *ks, *ke;
    struct batch *b;
    struct batch_col *c;
    size_t row, nextra = 0, sk_len = 0, sk_first = 0;
    const char *sk_key = NULL; /* this line's series key, to cache once its tags parse */
    uint64_t sk_h = 0;
    bool esc;
    enum err rc;
    int64_t t;
    struct ival v;

    /* a series key seen before (same measurement and tag set bytes, no
     * backslash, so the key ends at the first space): see struct series_cache */
    {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!lp->x.series_off && sp && sp > p && !memchr(p, '\n', (size_t)(sp - p)) &&
            !memchr(p, '\\', (size_t)(sp - p))) {
            const struct series_ent *e;
            sk_h = series_hash(p, (size_t)(sp - p));
            e = series_find(&lp->x.series, NULL, p, (size_t)(sp - p), sk_h);
            if (e) {
                rc = sk_apply(lp, e);
                if (rc != ERR_OK)
                    return rc;
                b = e->b;
                row = b->nrows - 1;
                p = sp;
                goto fields;
            }
            sk_key = p;
            sk_len = (size_t)(sp - p);
            sk_first = lp->x.series.npairs;
        }
    }

    /* measurement */
    s = p;
    esc = false;
    p = scan_tok(p, end, ST_MEAS, &esc);
    if (p == end || *p == '\n')
        return lp_fail(lp, "missing fields");
    rc = ictx_batch(&lp->x, s, (size_t)(p - s), &b, lp->eb);
    if (rc != ERR_OK)
        return lp_prefix(lp, rc);
    rc = ictx_rows(&lp->x, 1, lp->eb);
    if (rc != ERR_OK)
        return lp_prefix(lp, rc);
    row = batch_add_row(b, 0);

    /* tag set */
    while (p < end && *p == ',') {
        const char *vs, *ve;
        p++;
        ks = p;
        esc = false;
        p = scan_tok(p, end, ST_TKEY, &esc);
        ke = p;
        if (p == end || *p != '=')
            return lp_err(lp, ERR_PARSE, "missing tag value for '%.*s'%.*s", ks,
                          (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
        if (ke == ks)
            return lp_fail(lp, "empty tag key");
        if (esc) {
            char *k = scratch(&lp->kbuf, &lp->kcap, (size_t)(ke - ks));
            ke = k + unescape(ks, (size_t)(ke - ks), k);
            ks = k;
        }
        p++;
        vs = p;
        esc = false;
        p = scan_tok(p, end, ST_TVAL, &esc);
        ve = p;
        if (ve == vs)
            return lp_err(lp, ERR_PARSE, "empty tag value for '%.*s'%.*s", ks,
                          (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
        if (esc) {
            char *o = scratch(&lp->vbuf, &lp->vcap, (size_t)(ve - vs));
            ve = o + unescape(vs, (size_t)(ve - vs), o);
            vs = o;
        }
        rc = ictx_tag_col(&lp->x, b, ks, (size_t)(ke - ks), &c, lp->eb);
        if (rc == ERR_OK)
            rc = ictx_set_tag(&lp->x, b, c, row, vs, (size_t)(ve - vs), lp->eb);
        if (rc != ERR_OK)
            return lp_prefix(lp, rc);
        if (sk_key)
            series_push(&lp->x.series, (uint32_t)(c - b->cols), ((uint32_t *)c->data)[row]);
        if (p == end)
            break;
    }
    if (sk_key && p == sk_key + sk_len && lp->x.series.npairs > sk_first)
        series_add(&lp->x.series, sk_key, sk_len, sk_h, b, sk_first);
    else if (sk_key)
        lp->x.series.npairs = sk_first;
fields:
    if (p == end || *p != ' ')
        return lp_fail(lp, "missing fields");
    while (p < end && *p == ' ')
        p++;
    if (p == end || *p == '\n' || *p == '\r')
        return lp_fail(lp, "missing fields");

    /* field set */
    for (;;) {
        ks = p;
        esc = false;
        p = scan_tok(p, end, ST_FKEY, &esc);
        ke = p;
        if (p == end || *p != '=')
            return lp_err(lp, ERR_PARSE, "missing field value for '%.*s'%.*s", ks,
                          (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
        if (ke == ks)
            return lp_fail(lp, "empty field key");
        if (esc) {
            char *k = scratch(&lp->kbuf, &lp->kcap, (size_t)(ke - ks));
            ke = k + unescape(ks, (size_t)(ke - ks), k);
            ks = k;
        }
        p++;
        if (p < end && *p == '"') {
            /* string: ends at an unescaped quote; may span lines */
            const char *vs = ++p;
            bool sesc = false;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end) {
                    sesc = true;
                    if (p[1] == '\n')
                        nextra++;
                    p += 2;
                    continue;
                }
                if (*p == '\n')
                    nextra++;
                p++;
            }
            if (p == end)
                return lp_err(lp, ERR_PARSE, "unterminated string value for field '%.*s'%.*s",
                              ks, (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
            v.kind = IV_STR;
            v.v.s.p = vs;
            v.v.s.len = (size_t)(p - vs);
            if (sesc) {
                char *o = scratch(&lp->vbuf, &lp->vcap, v.v.s.len);
                size_t i, n = 0;
                for (i = 0; i < v.v.s.len; i++) {
                    if (vs[i] == '\\' && i + 1 < v.v.s.len && (vs[i + 1] == '"' || vs[i + 1] == '\\'))
                        i++;
                    o[n++] = vs[i];
                }
                v.v.s.p = o;
                v.v.s.len = n;
            }
            p++;
            if (p < end && !(stop_tab[(uint8_t)*p] & ST_BARE))
                return lp_err(lp, ERR_PARSE,
                              "unexpected text after the string value of field '%.*s'%.*s", ks,
                              (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
            rc = ictx_check_str(&lp->x, v.v.s.p, v.v.s.len, lp->eb);
            if (rc != ERR_OK) {
                errbuf_prefix(lp->eb, "field '%.*s'", (int)(ke - ks > 64 ? 64 : ke - ks), ks);
                return lp_prefix(lp, rc);
            }
        } else {
            const char *vs = p;
            while (p < end && !(stop_tab[(uint8_t)*p] & ST_BARE))
                p++;
            if (!parse_bare(lp, vs, p, &v)) {
                int vl = (int)(p - vs > 40 ? 40 : p - vs);
                if (vl == 0)
                    return lp_err(lp, ERR_PARSE, "missing field value for '%.*s'%.*s", ks,
                                  (int)(ke - ks > 64 ? 64 : ke - ks), "", 0);
                return lp_err(lp, ERR_PARSE, "invalid field value for '%.*s': '%.*s'", ks,
                              (int)(ke - ks > 64 ? 64 : ke - ks), vs, vl);
            }
        }
        rc = ictx_field_col(&lp->x, b, ks, (size_t)(ke - ks), v.kind, &c, lp->eb);
        if (rc != ERR_OK)
            return lp_prefix(lp, rc);
        ival_store(b, c, row, &v);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        break;
    }

    /* timestamp */
    t = lp->now_us;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '-' || (*p >= '0' && *p <= '9'))) {
        const char *ts = p;
        int64_t raw;
        while (p < end && (*p == '-' || (*p >= '0' && *p <= '9')))
            p++;
        if (!parse_i64(ts, p, &raw))
            return lp_err(lp, ERR_PARSE, "invalid timestamp '%.*s'%.*s", ts,
                          (int)(p - ts > 40 ? 40 : p - ts), "", 0);
        rc = to_us(lp, raw, &t);
        if (rc != ERR_OK)
            return rc;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    if (p < end && *p == '\r')
        p++;
    if (p < end && *p != '\n') {
        const char *bad = p;
        while (p < end && *p != '\n' && p - bad < 40)
            p++;
        return lp_err(lp, ERR_PARSE, "unexpected text at end of line: '%.*s'%.*s", bad,
                      (int)(p - bad), "", 0);
    }
    if (p < end) {
        p++;
        nextra++;
    }
    b->time_us[row] = t;
    lp->line += nextra;
    *pp = p;
    return ERR_OK;
}

static void lp_init(struct lp *lp, const struct ingest_limits *lim, enum ingest_precision prec,
                    int64_t now_us, struct errbuf *eb)
{
    memset(lp, 0, sizeof(*lp));
    ictx_init(&lp->x, lim);
    lp->prec = prec;
    lp->now_us = now_us;
    lp->eb = eb;
    lp->line = 1;
}

/* Decode the lines of [p, end) into lp->x. */
static enum err lp_lines(struct lp *lp, const char *p, const char *end)
{
    enum err rc;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        if (*p == '\n' || *p == '#' || (*p == '\r' && (p + 1 == end || p[1] == '\n'))) {
            /* blank line, CRLF blank line or comment: skip through the newline */
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                break;
            p = nl + 1;
            lp->line++;
            continue;
        }
        rc = parse_line(lp, &p, end);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static void lp_scratch_free(struct lp *lp)
{
    free(lp->kbuf);
    free(lp->vbuf);
    lp->kbuf = lp->vbuf = NULL;
}

/* One part of a parallel decode: whole lines [p, end) of the body. */
struct lp_part {
    struct lp lp;
    const char *p, *end;
    enum err rc;
    struct errbuf eb; /* the part's own message; never shown (see lp_decode_parts) */
};

static void lp_part_main(void *arg)
{
    struct lp_part *pt = arg;

    pt->rc = lp_lines(&pt->lp, pt->p, pt->end);
    lp_scratch_free(&pt->lp);
}

/* Decode body in up to nparts parts on their own threads and merge them. Only
 * bodies without '"' are cut: a quoted string value may contain newlines, and
 * outside strings every '\n' ends a line (a backslash never escapes it), so each
 * part starts at a line start. true with *out filled, or false: decode
 * sequentially (a part failed or the merge says the result would differ), so
 * results and messages are always those of one sequential pass. */
static bool lp_decode_parts(const char *body, size_t len, enum ingest_precision prec,
                            int64_t now_us, const struct ingest_limits *lim, size_t nparts,
                            struct ingest_result *out, size_t *used)
{
    const char *starts[INGEST_MAX_PARTS + 1], *end = body + len;
    struct lp_part *parts;
    size_t k = 1, i;
    bool ok = true;

    if (nparts < 2 || len == 0 || memchr(body, '"', len))
        return false;
    if (nparts > INGEST_MAX_PARTS)
        nparts = INGEST_MAX_PARTS;
    starts[0] = body;
    for (i = 1; i < nparts; i++) {
        const char *at = body + len / nparts * i, *nl;
        if (at < starts[k - 1])
            at = starts[k - 1];
        nl = memchr(at, '\n', (size_t)(end - at));
        if (!nl || nl + 1 >= end)
            break;
        starts[k++] = nl + 1;
    }
    if (k < 2)
        return false;
    starts[k] = end;
    parts = xcalloc(k, sizeof(*parts));
    for (i = 0; i < k; i++) {
        errbuf_init(&parts[i].eb);
        lp_init(&parts[i].lp, lim, prec, now_us, &parts[i].eb);
        parts[i].p = starts[i];
        parts[i].end = starts[i + 1];
    }
    ingest_parts_run(lp_part_main, parts, sizeof(*parts), k);
    for (i = 0; i < k && ok; i++)
        ok = parts[i].rc == ERR_OK && (i == 0 || ictx_merge(&parts[0].lp.x, &parts[i].lp.x));
    if (ok)
        ictx_finish(&parts[0].lp.x, out);
    else
        ictx_abort(&parts[0].lp.x);
    for (i = 1; i < k; i++)
        ictx_abort(&parts[i].lp.x);
    free(parts);
    if (ok && used)
        *used = k;
    return ok;
}

static enum err lp_decode(const char *body, size_t len, enum ingest_precision prec,
                          int64_t now_us, const struct ingest_limits *lim, size_t nparts,
                          struct ingest_result *out, size_t *used, struct errbuf *eb)
{
    struct lp lp;
    enum err rc;

    if (used)
        *used = 1;
    if (lp_decode_parts(body, len, prec, now_us, lim, nparts, out, used))
        return ERR_OK;
    lp_init(&lp, lim, prec, now_us, eb);
    rc = lp_lines(&lp, body, body + len);
    lp_scratch_free(&lp);
    if (rc != ERR_OK) {
        ictx_abort(&lp.x);
        return rc;
    }
    ictx_finish(&lp.x, out);
    return ERR_OK;
}

enum err ingest_lp_decode(const char *body, size_t len, enum ingest_precision prec, int64_t now_us,
                          const struct ingest_limits *lim, struct ingest_result *out,
                          struct errbuf *eb)
{
    size_t n = ingest_par_begin(len, INGEST_PAR_MIN_BYTES);
    enum err rc = lp_decode(body, len, prec, now_us, lim, n, out, NULL, eb);

    ingest_par_end(n);
    return rc;
}

enum err ingest_lp_decode_parts(const char *body, size_t len, enum ingest_precision prec,
                                int64_t now_us, const struct ingest_limits *lim, size_t nparts,
                                struct ingest_result *out, size_t *parts_used, struct errbuf *eb)
{
    return lp_decode(body, len, prec, now_us, lim, nparts, out, parts_used, eb);
}
