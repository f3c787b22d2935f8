/* err.c - error buffer helpers. Messages are truncated, never overflow. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void errbuf_init(struct errbuf *eb)
{
    eb->code = ERR_OK;
    eb->msg[0] = '\0';
}

enum err errbuf_set(struct errbuf *eb, enum err code, const char *fmt, ...)
{
    va_list ap;

    if (!eb)
        return code;
    eb->code = code;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    return code;
}

enum err errbuf_prefix(struct errbuf *eb, const char *fmt, ...)
{
    char prefix[256], old[ERRBUF_MSG_MAX];
    va_list ap;

    if (!eb)
        return ERR_INTERNAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, eb->msg, sizeof(old));
    {
        size_t pl = strlen(prefix);
        if (pl + 2 >= sizeof(eb->msg))
            pl = sizeof(eb->msg) - 3;
        memcpy(eb->msg, prefix, pl);
        eb->msg[pl] = ':';
        eb->msg[pl + 1] = ' ';
        /* keep as much of the old message as fits */
        memcpy(eb->msg + pl + 2, old, sizeof(eb->msg) - pl - 3);
        eb->msg[sizeof(eb->msg) - 1] = '\0';
    }
    return eb->code;
}

const char *err_name(enum err code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_PARSE: return "parse";
    case ERR_INVAL: return "invalid";
    case ERR_LIMIT: return "limit";
    case ERR_NOTFOUND: return "not_found";
    case ERR_AUTH: return "auth";
    case ERR_PERM: return "permission";
    case ERR_CONFLICT: return "conflict";
    case ERR_BUSY: return "busy";
    case ERR_TOOMANY: return "too_many";
    case ERR_IO: return "io";
    case ERR_DB: return "db";
    case ERR_CORRUPT: return "corrupt";
    case ERR_NOSPACE: return "no_space";
    case ERR_TIMEOUT: return "timeout";
    case ERR_INTERNAL: return "internal";
    }
    return "unknown";
}
