/* err.h - error codes and the error buffer that carries a message to the client.
 *
 * Fallible functions return enum err (ERR_OK == 0, failures negative). When the
 * caller needs to learn why, the function takes `struct errbuf *eb` last and fills
 * it with errbuf_set(), which returns the code so that one line records and returns.
 * http/ maps codes to statuses in one table (http_status_for_err). */
#ifndef CORE_ERR_H
#define CORE_ERR_H

#include <stddef.h>

enum err {
    ERR_OK = 0,
    ERR_PARSE = -1,    /* malformed client input (400) */
    ERR_INVAL = -2,    /* well-formed but invalid value or argument (400) */
    ERR_LIMIT = -3,    /* a size cap was exceeded (413) */
    ERR_NOTFOUND = -4, /* no such object (404) */
    ERR_AUTH = -5,     /* no or bad credentials (401) */
    ERR_PERM = -6,     /* credentials lack a permission (403) */
    ERR_CONFLICT = -7, /* exists already / type conflict (409 or 400 by context) */
    ERR_BUSY = -8,     /* overloaded, retry later (503) */
    ERR_TOOMANY = -9,  /* too many concurrent requests (429) */
    ERR_IO = -10,      /* file or network I/O failed (500) */
    ERR_DB = -11,      /* SQLite or DuckDB failed (500) */
    ERR_CORRUPT = -12, /* on-disk data failed a check (500) */
    ERR_NOSPACE = -13, /* disk full (507) */
    ERR_TIMEOUT = -14, /* deadline passed (504 / 408) */
    ERR_INTERNAL = -15 /* a bug of ours (500) */
};

#define ERRBUF_MSG_MAX 1024

struct errbuf {
    enum err code;             /* last code set, ERR_OK if none */
    char msg[ERRBUF_MSG_MAX]; /* NUL-terminated message, truncated to fit */
};

/* Reset eb to ERR_OK with an empty message. */
void errbuf_init(struct errbuf *eb);

/* Record code and a printf-style message in eb (eb may be NULL). Returns code. */
enum err errbuf_set(struct errbuf *eb, enum err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to the message already in eb. Returns eb->code. */
enum err errbuf_prefix(struct errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short stable name of a code, e.g. "parse". Never NULL. */
const char *err_name(enum err code);

#endif
