/* compress.h - gzip and zstd for request and response bodies, with output caps.
 *
 * Decompression never produces more than max_out bytes: a body that would
 * expand past the cap (a "zip bomb") fails with ERR_LIMIT, having allocated at
 * most max_out (+ a small constant). Thread: all functions are reentrant. */
#ifndef CORE_COMPRESS_H
#define CORE_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

enum compress_kind { COMPRESS_NONE = 0, COMPRESS_GZIP, COMPRESS_ZSTD };

/* Kind from a Content-Encoding value ("gzip", "x-gzip", "zstd", "identity");
 * ERR_INVAL for anything else. NULL or "" is COMPRESS_NONE. */
enum err compress_kind_from_encoding(const char *enc, enum compress_kind *out);
/* Kind from magic bytes (1f 8b / 28 b5 2f fd); COMPRESS_NONE if neither. */
enum compress_kind compress_sniff(const void *data, size_t len);

/* Decompress in[0..len) into out (appended; out->max_bytes becomes max_out + 1, so
 * out never allocates past the cap). ERR_LIMIT past max_out bytes,
 * ERR_PARSE on corrupt input (eb names the codec). */
enum err compress_inflate(enum compress_kind kind, const void *in, size_t len, size_t max_out,
                          struct buf *out, struct errbuf *eb);

/* Compress in into out (appended) with a fast level. */
enum err compress_deflate(enum compress_kind kind, const void *in, size_t len, struct buf *out);

#endif
