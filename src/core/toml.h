/* toml.h - a small TOML subset parser for arc.conf.
 *
 * Debian ships no C TOML library, and a configuration file needs only a subset:
 *   - tables `[a]`, `[a.b]` (bare or quoted segments); no `[[arrays of tables]]`
 *   - `key = value` with bare, quoted ("..." / '...') and dotted keys
 *   - values: basic strings with escapes (\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX),
 *     literal strings, integers (sign, `_` separators, 0x/0o/0b), floats
 *     (incl. inf/nan), booleans, and arrays of scalars (multi-line, trailing
 *     comma, comments inside)
 *   - `#` comments, blank lines, LF or CRLF line ends, UTF-8 (validated)
 * Not supported (reported as errors, never misparsed): multi-line strings, inline
 * tables, dates/times, nested arrays.
 *
 * The result is flat: one entry per key, named by its full dotted path
 * ("storage.minio.endpoint"), with its typed value and the line/column of the key.
 * Entries keep file order. Duplicate keys, a table defined twice and a key that is
 * also a table are errors.
 *
 * Errors read "<name>:<line>:<col>: <what>", 1-based, column counted in bytes,
 * e.g. "arc.conf:12:7: expected '=' after key".
 *
 * Bounds: input at most TOML_MAX_BYTES, key paths at most TOML_MAX_DEPTH segments,
 * arrays at most TOML_MAX_ARRAY items. Any input, however malformed, yields either
 * a document or an error (fuzz-safe); nothing aborts except out-of-memory.
 * Thread: no shared state; a document belongs to its caller. */
#ifndef CORE_TOML_H
#define CORE_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define TOML_MAX_BYTES (1u << 20) /* whole document, bytes */
#define TOML_MAX_DEPTH 16         /* segments in one dotted key path */
#define TOML_MAX_ARRAY 4096       /* items in one array */

enum toml_type { TOML_STRING, TOML_INT, TOML_FLOAT, TOML_BOOL, TOML_ARRAY };

struct toml_value {
    enum toml_type type;
    union {
        char *s;  /* TOML_STRING: heap, NUL-terminated, valid UTF-8, never holds NUL */
        int64_t i; /* TOML_INT */
        double f;  /* TOML_FLOAT */
        bool b;    /* TOML_BOOL */
        struct {
            struct toml_value *items; /* heap; scalars only (never TOML_ARRAY) */
            size_t n;                 /* item count, <= TOML_MAX_ARRAY */
        } arr;                        /* TOML_ARRAY */
    } u;
};

struct toml_entry {
    char *key;             /* full dotted path, heap; quoted segments appear verbatim */
    struct toml_value val; /* owned by the entry */
    int line;              /* 1-based line of the key */
    int col;               /* 1-based byte column of the key */
};

struct toml_doc {
    struct toml_entry *entries; /* file order */
    size_t n;                   /* entries used */
    size_t cap;                 /* entries allocated */
};

/* Parse len bytes of text (need not be NUL-terminated). name prefixes error
 * messages (use the file path). On success *out receives a document the caller
 * releases with toml_doc_release(); on failure *out is untouched and eb holds
 * "<name>:<line>:<col>: <what>". ERR_PARSE for syntax, ERR_CONFLICT for duplicate
 * keys/tables, ERR_LIMIT for a bound exceeded. */
enum err toml_parse(const char *text, size_t len, const char *name, struct toml_doc *out,
                    struct errbuf *eb);

/* Read path (at most TOML_MAX_BYTES) and parse it, naming errors by path.
 * ERR_IO if the file cannot be read; otherwise as toml_parse(). */
enum err toml_parse_file(const char *path, struct toml_doc *out, struct errbuf *eb);

/* Free everything the document owns and reset it to empty. Accepts an empty doc. */
void toml_doc_release(struct toml_doc *d);

/* The entry named key, or NULL. Borrowed; valid until the doc is released. */
const struct toml_entry *toml_doc_get(const struct toml_doc *d, const char *key);

/* "string", "integer", "float", "boolean", "array". Never NULL. */
const char *toml_type_name(enum toml_type t);

#endif
