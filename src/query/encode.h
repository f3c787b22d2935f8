/* encode.h - query result encoders: JSON, NDJSON, CSV, Arrow IPC stream, MessagePack.
 *
 * The query engine runs SQL through duck/, then hands every result chunk to one
 * encoder, which writes bytes to a sink: a memory buffer (buffered answer) or a
 * file descriptor (streamed answer, e.g. the write end of a pipe to the client).
 * Encoding is type-driven: the column types are read once from the duck_result
 * and each chunk is walked column array by column array, never value by value
 * through a generic accessor. Exact output shapes are in docs/query_encoders.md.
 *
 * Memory: JSON, NDJSON and CSV stream (a 256 KiB staging buffer between the
 * encoder and an fd sink). Arrow holds one record batch (~10 000 rows) at a time.
 * MessagePack is column-major, so it holds the whole result, per column, until
 * enc_end(); opts->max_bytes caps what it (and an Arrow batch) may hold.
 *
 * Thread: an encoder belongs to one thread at a time (the query worker). */
#ifndef QUERY_ENCODE_H
#define QUERY_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "duck/duck.h"

enum enc_format {
    ENC_JSON = 0, /* {"success":true,"columns":[..],"data":[[row]..],...} (application/json) */
    ENC_CSV,      /* header line + RFC 4180 rows (text/csv) */
    ENC_NDJSON,   /* one {"col":value,...} object per line (application/x-ndjson) */
    ENC_ARROW,    /* Arrow IPC stream (application/vnd.apache.arrow.stream) */
    ENC_MSGPACK,  /* column-major map as the Go Arc answers (application/msgpack) */
};

/* Parse a format name as clients send it ("json", "csv", "ndjson", "arrow",
 * "msgpack"; case-insensitive; "jsonl" = ndjson, "messagepack" = msgpack).
 * ERR_INVAL (with a message naming the accepted values) if unknown. */
enum err enc_format_parse(const char *name, enum enc_format *out, struct errbuf *eb);

/* The Content-Type of a format, e.g. "application/json". Never NULL. */
const char *enc_format_content_type(enum enc_format f);

/* Write callback of a sink: write all n bytes or fail. Must set eb on failure. */
typedef enum err enc_write_fn(void *ctx, const void *p, size_t n, struct errbuf *eb);

/* Where encoded bytes go. Build one with the helpers below; it is copied by
 * enc_new(), so a temporary is fine. */
struct enc_sink {
    enc_write_fn *write; /* called with >= 256 KiB pieces (less at the end); NULL if direct */
    void *ctx;           /* passed to write */
    struct buf *direct;  /* if set, encoders append straight into this buffer (no copy);
                            its max_bytes caps the answer (ERR_LIMIT) */
};

/* Sink appending to b (borrowed; must outlive the encoder). b's max_bytes is the
 * answer's size cap: passing it fails the encoder call with ERR_LIMIT. */
struct enc_sink enc_sink_buf(struct buf *b);

/* Sink writing to fd (borrowed, not closed) with write(2); retries EINTR, waits
 * with poll(2) on EAGAIN. A failed write (EPIPE when the reader went away) is
 * ERR_IO with the errno text. The process must ignore SIGPIPE (the server does). */
struct enc_sink enc_sink_fd(int fd);

/* Sink calling fn(ctx, ...) with the encoded bytes. */
struct enc_sink enc_sink_fn(enc_write_fn *fn, void *ctx);

struct enc_opts {
    size_t max_bytes;         /* cap on what MessagePack buffers for the whole result and
                                 Arrow for one batch; 0 = ENC_DEFAULT_MAX_BYTES */
    size_t arrow_batch_rows;  /* rows per Arrow record batch; 0 = ENC_ARROW_BATCH_ROWS */
    bool csv_no_header;       /* CSV: omit the header line */
};

#define ENC_DEFAULT_MAX_BYTES ((size_t)1 << 30) /* 1 GiB */
#define ENC_ARROW_BATCH_ROWS 10000
#define ENC_STAGE_BYTES (256 * 1024) /* fd/fn sinks receive pieces of about this size */

/* What only the caller knows when the result is complete. */
struct enc_summary {
    double execution_time_ms; /* JSON: printed shortest ("12.5"); MessagePack: rounded uint */
    int64_t timestamp_us;     /* the "timestamp" field (RFC 3339 UTC); 0 = now */
};

struct encoder; /* opaque */

/* Create an encoder for result r's columns (names and types are copied: r may be
 * freed before the encoder). sink is copied; o may be NULL (defaults). Never
 * fails (column types the format cannot carry are written as null: see
 * enc_unsupported_values()). Free with enc_free(). */
struct encoder *enc_new(enum enc_format f, const struct enc_sink *sink,
                        const struct duck_result *r, const struct enc_opts *o);

/* Write what precedes the rows (JSON envelope head, CSV header, Arrow schema).
 * Call once, first. ERR_IO/ERR_LIMIT from the sink. */
enum err enc_begin(struct encoder *e, struct errbuf *eb);

/* Encode all rows of chunk c (a chunk of the result given to enc_new; borrowed for
 * the call only: the encoder copies what it keeps). ERR_IO: the sink failed (stop:
 * the client is gone); ERR_LIMIT: the answer passed a cap (the sink buffer's
 * max_bytes, opts->max_bytes, or a 2 GiB string column in one Arrow batch). After
 * any failure every later call returns ERR_INVAL without writing. */
enum err enc_chunk(struct encoder *e, const struct duck_chunk *c, struct errbuf *eb);

/* Finish: JSON trailer (row_count, execution_time_ms, timestamp), the last Arrow
 * batch and end-of-stream marker, the whole MessagePack map; then flush the
 * staging buffer to the sink. s may be NULL (0 ms, now). */
enum err enc_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb);

/* Rows encoded so far (the row_count of the answer). */
uint64_t enc_rows(const struct encoder *e);

/* Non-NULL values of columns whose type the encoders cannot represent
 * (DUCK_T_OTHER: decimal, hugeint, lists, ...) that were written as null. The
 * engine casts such columns to VARCHAR in SQL, so non-zero means a bug there. */
uint64_t enc_unsupported_values(const struct encoder *e);

/* Bytes handed to the sink so far (after enc_end: the answer's size). */
uint64_t enc_bytes_out(const struct encoder *e);

/* Free e (does not touch the sink's buffer or fd). Accepts NULL. */
void enc_free(struct encoder *e);

#endif
