/* buf.h - growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Every buffer whose size a client controls is a struct buf with max_bytes set;
 * an append that would pass the cap fails with ERR_LIMIT *before* allocating.
 * The data is always NUL-terminated (one spare byte past len) for convenience. */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct buf {
    char *data;       /* NULL until the first append; data[len] == '\0' after */
    size_t len;       /* bytes used */
    size_t cap;       /* bytes allocated (excluding the NUL) */
    size_t max_bytes; /* hard cap on len; 0 = unlimited (only for server-made data) */
};

/* Initialise an empty buffer capped at max_bytes (0 = no cap). */
void buf_init(struct buf *b, size_t max_bytes);
/* Free the storage and reset to empty (keeps max_bytes). */
void buf_release(struct buf *b);
/* Empty the buffer but keep its storage. */
void buf_reset(struct buf *b);
/* Make room for n more bytes. ERR_LIMIT if len + n would pass max_bytes. */
enum err buf_reserve(struct buf *b, size_t n);
enum err buf_append(struct buf *b, const void *p, size_t n);
enum err buf_append_str(struct buf *b, const char *s);
enum err buf_append_char(struct buf *b, char c);
enum err buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum err buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Take ownership of the data (caller frees); the buffer becomes empty. */
char *buf_steal(struct buf *b, size_t *len_out);

/* Append s as a JSON string literal (with quotes), escaping as RFC 8259 requires.
 * Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid JSON. */
/* Length of the valid UTF-8 sequence at s (at most n bytes; 1 for ASCII), 0 if it
 * is not one (overlong forms, surrogates and code points past U+10FFFF included). */
size_t utf8_seq_len(const unsigned char *s, size_t n);
enum err buf_append_json_str(struct buf *b, const char *s, size_t n);

#endif
