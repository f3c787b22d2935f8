/* auth_parse.c - the text formats of auth: permission lists, database lists,
 * expiry times, secrets (generation, base64url, hashing) and small JSON writers.
 *
 * Everything here takes client input (HTTP bodies, CLI flags) and so checks
 * lengths before copying and reports the offending value in the error. Lists are
 * accepted both as "a,b" (CLI, the seed's comma form) and as JSON array text
 * (the Go API, the catalog's databases column), parsed with jansson. */
#include "auth/auth.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/mem.h"

static const struct {
    const char *name;
    unsigned bit;
} perm_names[] = {
    {"read", AUTH_PERM_READ},
    {"write", AUTH_PERM_WRITE},
    {"delete", AUTH_PERM_DELETE},
    {"admin", AUTH_PERM_ADMIN},
};
#define N_PERM_NAMES (sizeof(perm_names) / sizeof(perm_names[0]))

/* ---- secrets -------------------------------------------------------------- */

void auth_hash_secret(const char *secret, size_t len, uint8_t out[CATALOG_TOKEN_HASH_LEN])
{
    unsigned int mdlen = 0;

    /* EVP_Digest with the built-in SHA-256 cannot fail short of a broken
     * OpenSSL; zero the output first so a failure can never match a row. */
    memset(out, 0, CATALOG_TOKEN_HASH_LEN);
    EVP_Digest(secret, len, out, &mdlen, EVP_sha256(), NULL);
}

size_t auth_base64url_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, o = 0;
    uint32_t v;

    for (i = 0; i + 3 <= n; i += 3) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (n - i == 1) {
        v = (uint32_t)in[i] << 16;
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
    } else if (n - i == 2) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

enum err auth_token_generate(char out[AUTH_TOKEN_CHARS + 1], struct errbuf *eb)
{
    uint8_t raw[AUTH_TOKEN_RANDOM_BYTES];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return errbuf_set(eb, ERR_INTERNAL, "random generator failed: cannot create a token");
    auth_base64url_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return ERR_OK;
}

/* ---- permissions ---------------------------------------------------------- */

enum err auth_perm_parse_name(const char *s, size_t len, unsigned *bit_out, struct errbuf *eb)
{
    size_t i;

    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    for (i = 0; i < N_PERM_NAMES; i++) {
        if (strlen(perm_names[i].name) == len && strncasecmp(perm_names[i].name, s, len) == 0) {
            *bit_out = perm_names[i].bit;
            return ERR_OK;
        }
    }
    if (len > 64)
        len = 64; /* the message quotes the value: keep it short */
    return errbuf_set(eb, ERR_INVAL,
                      "unknown permission '%.*s' (expected read, write, delete or admin)",
                      (int)len, s);
}

/* Parse JSON array text into a new jansson array of strings; checks the count. */
static enum err json_string_array(const char *text, const char *what, size_t max, json_t **out,
                                  struct errbuf *eb)
{
    json_error_t jerr;
    json_t *arr;
    size_t i;

    arr = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!arr || !json_is_array(arr)) {
        json_decref(arr);
        return errbuf_set(eb, ERR_INVAL, "%s: expected a JSON array of strings", what);
    }
    if (json_array_size(arr) > max) {
        json_decref(arr);
        return errbuf_set(eb, ERR_INVAL, "%s: more than %zu entries", what, max);
    }
    for (i = 0; i < json_array_size(arr); i++) {
        if (!json_is_string(json_array_get(arr, i))) {
            json_decref(arr);
            return errbuf_set(eb, ERR_INVAL, "%s: entry %zu is not a string", what, i);
        }
    }
    *out = arr;
    return ERR_OK;
}

static bool is_json_array_text(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '[';
}

enum err auth_perms_parse(const char *text, unsigned *out, struct errbuf *eb)
{
    unsigned perms = 0, bit;
    const char *p, *comma;
    json_t *arr;
    enum err rc;
    size_t i;

    if (!text)
        return errbuf_set(eb, ERR_INVAL, "permissions: empty list");
    if (is_json_array_text(text)) {
        rc = json_string_array(text, "permissions", 16, &arr, eb);
        if (rc != ERR_OK)
            return rc;
        for (i = 0; i < json_array_size(arr); i++) {
            json_t *e = json_array_get(arr, i);
            rc = auth_perm_parse_name(json_string_value(e), json_string_length(e), &bit, eb);
            if (rc != ERR_OK) {
                json_decref(arr);
                return rc;
            }
            perms |= bit;
        }
        json_decref(arr);
    } else {
        for (p = text;; p = comma + 1) {
            comma = strchr(p, ',');
            rc = auth_perm_parse_name(p, comma ? (size_t)(comma - p) : strlen(p), &bit, eb);
            if (rc != ERR_OK)
                return rc;
            perms |= bit;
            if (!comma)
                break;
        }
    }
    if (perms == 0)
        return errbuf_set(eb, ERR_INVAL, "permissions: empty list");
    *out = perms;
    return ERR_OK;
}

void auth_perms_format(unsigned perms, char *out, size_t out_len)
{
    size_t i, o = 0;
    int n;

    if (out_len == 0)
        return;
    out[0] = '\0';
    for (i = 0; i < N_PERM_NAMES; i++) {
        if (!(perms & perm_names[i].bit))
            continue;
        n = snprintf(out + o, out_len - o, "%s%s", o ? "," : "", perm_names[i].name);
        if (n < 0 || (size_t)n >= out_len - o)
            return;
        o += (size_t)n;
    }
}

enum err auth_perms_to_json(unsigned perms, struct buf *b)
{
    enum err rc = buf_append_char(b, '[');
    bool first = true;
    size_t i;

    for (i = 0; rc == ERR_OK && i < N_PERM_NAMES; i++) {
        if (!(perms & perm_names[i].bit))
            continue;
        rc = buf_printf(b, "%s\"%s\"", first ? "" : ",", perm_names[i].name);
        first = false;
    }
    return rc == ERR_OK ? buf_append_char(b, ']') : rc;
}

/* ---- databases ------------------------------------------------------------ */

enum err auth_database_name_check(const char *name, struct errbuf *eb)
{
    size_t i, n = strlen(name);

    if (n == 0)
        return errbuf_set(eb, ERR_INVAL, "databases: empty database name");
    if (n > ARC_MAX_DB_NAME)
        return errbuf_set(eb, ERR_INVAL, "databases: name '%.32s...' longer than %d bytes", name,
                          ARC_MAX_DB_NAME);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.')
            return errbuf_set(eb, ERR_INVAL,
                              "databases: invalid character in '%s' (allowed: letters, digits, "
                              "'_', '-', '.')",
                              name);
    }
    return ERR_OK;
}

void auth_string_list_free(char **v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

enum err auth_databases_parse(const char *text, char ***out, size_t *n_out, struct errbuf *eb)
{
    char **v = NULL;
    size_t n = 0, i, len;
    const char *p, *comma;
    json_t *arr = NULL;
    enum err rc = ERR_OK;

    if (!text)
        return errbuf_set(eb, ERR_INVAL, "databases: empty list");
    if (is_json_array_text(text)) {
        rc = json_string_array(text, "databases", ARC_MAX_TOKEN_DATABASES, &arr, eb);
        if (rc != ERR_OK)
            return rc;
        n = json_array_size(arr);
        v = xcalloc(n ? n : 1, sizeof(*v));
        for (i = 0; i < n; i++) {
            json_t *e = json_array_get(arr, i);
            v[i] = xstrndup(json_string_value(e), json_string_length(e));
        }
        json_decref(arr);
    } else {
        for (p = text, i = 1; *p; p++)
            i += (*p == ',');
        if (i > ARC_MAX_TOKEN_DATABASES)
            return errbuf_set(eb, ERR_INVAL, "databases: more than %d entries",
                              ARC_MAX_TOKEN_DATABASES);
        v = xcalloc(i, sizeof(*v));
        for (p = text;; p = comma + 1) {
            comma = strchr(p, ',');
            len = comma ? (size_t)(comma - p) : strlen(p);
            while (len && isspace((unsigned char)*p)) {
                p++;
                len--;
            }
            while (len && isspace((unsigned char)p[len - 1]))
                len--;
            v[n++] = xstrndup(p, len);
            if (!comma)
                break;
        }
    }
    if (n == 0)
        rc = errbuf_set(eb, ERR_INVAL, "databases: empty list (omit it to allow all databases)");
    for (i = 0; rc == ERR_OK && i < n; i++)
        rc = auth_database_name_check(v[i], eb);
    if (rc != ERR_OK) {
        auth_string_list_free(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return ERR_OK;
}

enum err auth_databases_to_json(const char *const *v, size_t n, struct buf *b)
{
    enum err rc = buf_append_char(b, '[');
    size_t i;

    for (i = 0; rc == ERR_OK && i < n; i++) {
        if (i)
            rc = buf_append_char(b, ',');
        if (rc == ERR_OK)
            rc = buf_append_json_str(b, v[i], strlen(v[i]));
    }
    return rc == ERR_OK ? buf_append_char(b, ']') : rc;
}

enum err auth_time_to_json(int64_t ts_us, struct buf *b)
{
    char tbuf[40];

    if (ts_us == 0)
        return buf_append_str(b, "null");
    clock_format_rfc3339_us(ts_us, tbuf, (int)sizeof(tbuf));
    return buf_printf(b, "\"%s\"", tbuf);
}

/* ---- expiry --------------------------------------------------------------- */

/* Read exactly n digits at *p into *out. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return (m == 2 && leap) ? 29 : d[m - 1];
}

/* RFC 3339: YYYY-MM-DD[(T|t| )HH:MM:SS[.frac](Z|z|(+|-)HH:MM)]. */
static bool parse_rfc3339(const char *s, int64_t *out_us)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    int64_t frac_us = 0, scale = 100000;
    struct tm tm;
    time_t t;

    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return false;
    if (*s) {
        if (*s != 'T' && *s != 't' && *s != ' ')
            return false;
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
            !digits(&s, 2, &sec))
            return false;
        if (*s == '.') {
            s++;
            if (!isdigit((unsigned char)*s))
                return false;
            for (; isdigit((unsigned char)*s); s++) {
                frac_us += (*s - '0') * scale;
                scale /= 10;
            }
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            sign = *s++ == '+' ? 1 : -1;
            if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
                return false;
        } else {
            return false;
        }
        if (*s)
            return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *out_us = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000000 + frac_us;
    return true;
}

enum err auth_expiry_parse(const char *s, int64_t now_us, int64_t *expires_at_us_out,
                           struct errbuf *eb)
{
    /* 100 years: a longer "expiry" is a typo, and it keeps the product in range. */
    const int64_t max_s = (int64_t)100 * 366 * 86400;
    int64_t n = 0, unit_s, ts;
    const char *p = s;

    if (!s || !*s)
        return errbuf_set(eb, ERR_INVAL, "expiry: empty value");
    if (strcmp(s, "never") == 0 || strcmp(s, "0") == 0) {
        *expires_at_us_out = 0;
        return ERR_OK;
    }
    if (strlen(s) >= 10 && s[4] == '-') {
        if (!parse_rfc3339(s, &ts))
            return errbuf_set(eb, ERR_INVAL,
                              "expiry: '%.64s' is not an RFC 3339 time "
                              "(e.g. 2026-01-02T03:04:05Z)",
                              s);
        if (ts <= now_us)
            return errbuf_set(eb, ERR_INVAL, "expiry: '%.64s' is in the past", s);
        *expires_at_us_out = ts;
        return ERR_OK;
    }
    while (isdigit((unsigned char)*p) && n <= max_s)
        n = n * 10 + (*p++ - '0');
    switch (*p) {
    case 's': unit_s = 1; break;
    case 'm': unit_s = 60; break;
    case 'h': unit_s = 3600; break;
    case 'd': unit_s = 86400; break;
    case 'w': unit_s = 7 * 86400; break;
    default: unit_s = 0; break;
    }
    if (p == s || unit_s == 0 || p[1] != '\0')
        return errbuf_set(eb, ERR_INVAL,
                          "expiry: '%.64s' is not a duration like 3600s, 30m, 24h, 7d, 2w "
                          "or an RFC 3339 time",
                          s);
    if (n == 0)
        return errbuf_set(eb, ERR_INVAL, "expiry: duration '%.64s' must be positive", s);
    if (n > max_s / unit_s)
        return errbuf_set(eb, ERR_INVAL, "expiry: duration '%.64s' is longer than 100 years", s);
    *expires_at_us_out = now_us + n * unit_s * 1000000;
    return ERR_OK;
}
