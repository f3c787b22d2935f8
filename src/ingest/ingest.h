/* ingest.h - request body decoders: line protocol, MessagePack, JSON -> column batches.
 *
 * A decoder turns one whole request body into a struct ingest_result holding one
 * struct batch (core/batch.h) per measurement: typed column vectors, tags interned
 * in the batch dictionary, validity bytes for NULLs, times in µs UTC. Decoding is
 * all or nothing: on any error nothing is returned (the result is untouched) and
 * eb names the place, "line 12: ..." for line protocol, "item 3: ..." (0-based)
 * for MessagePack and JSON. Every cap in struct ingest_limits is checked before
 * the memory it guards is allocated.
 *
 * Shared rules (docs/ingest.md has the full grammar decisions):
 *  - a field whose name is a tag of the same measurement is stored as <name>_value;
 *  - a column named `time` (tag or field) is rejected: `time` is the timestamp;
 *  - integer then float (or float then integer) in one column widens it to DOUBLE;
 *    any other type change is an error naming the field and both types;
 *  - strings and names must be valid UTF-8 (DuckDB VARCHAR requires it);
 *  - measurement names: a letter, then letters, digits, '_' or '-'.
 * Large bodies are decoded on several threads (one per idle core, see
 * ingest_lp_decode_parts); the result is the same as one sequential pass.
 * Thread: decoders keep no global state but a count of decoding threads (a load
 * hint); call them from any thread. */
#ifndef INGEST_INGEST_H
#define INGEST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/err.h"

#define INGEST_DEFAULT_MAX_ROWS 10000000u     /* rows per request */
#define INGEST_DEFAULT_MAX_COLS 1024u         /* columns per measurement (time excluded) */
#define INGEST_DEFAULT_MAX_STR_LEN (1u << 20) /* bytes in one string or tag value */
#define INGEST_DEFAULT_MAX_MEASUREMENTS 1024u /* measurements per request */
#define INGEST_MAX_NAME_LEN 255u              /* bytes in a tag or field name */
#define INGEST_MAX_DEPTH 32u                  /* MessagePack nesting while skipping values */

struct ingest_limits {
    size_t max_rows;         /* rows per request; ERR_LIMIT beyond */
    size_t max_cols;         /* columns per measurement, time excluded; ERR_LIMIT beyond */
    size_t max_str_len;      /* bytes in one string field or tag value; ERR_LIMIT beyond */
    size_t max_measurements; /* distinct measurements per request; ERR_LIMIT beyond */
};

/* Fill lim with the INGEST_DEFAULT_* values. Decoders given lim == NULL use them. */
void ingest_limits_default(struct ingest_limits *lim);

struct ingest_result {
    struct batch **batches; /* nbatches owned batches, one per measurement, in order of first use */
    size_t nbatches;
    size_t nrows; /* total rows over all batches */
};

/* Free every batch and the array; leaves r empty (nbatches 0). Accepts an empty r. */
void ingest_result_release(struct ingest_result *r);

/* Take ownership of batch i out of r (r->batches[i] becomes NULL; release skips it). */
struct batch *ingest_result_take(struct ingest_result *r, size_t i);

enum ingest_precision {
    PREC_NS = 0, /* nanoseconds (the line protocol default) */
    PREC_US,     /* microseconds */
    PREC_MS,     /* milliseconds */
    PREC_S,      /* seconds */
    PREC_M,      /* minutes (InfluxDB 1.x "m") */
    PREC_H,      /* hours (InfluxDB 1.x "h") */
};

/* Parse a precision query parameter: "ns" "n" (also NULL or "") -> NS; "us" "u" "µ"
 * "µs" -> US; "ms" -> MS; "s" -> S; "m" -> M; "h" -> H. Anything else false. */
bool ingest_precision_parse(const char *s, enum ingest_precision *out);

/* Is s[0..len) a valid database/measurement name: 1..max_len bytes, an ASCII letter
 * first, then ASCII letters, digits, '_' or '-'. */
bool ingest_name_valid(const char *s, size_t len, size_t max_len);

/* Decode an InfluxDB line protocol body. Timestamps are in precision p; lines
 * without one get now_us. lim NULL = defaults. On success *out (caller-owned,
 * release with ingest_result_release) holds the batches.
 * ERR_PARSE: malformed ("line N: ..."), ERR_LIMIT: a cap was passed. */
enum err ingest_lp_decode(const char *body, size_t len, enum ingest_precision p, int64_t now_us,
                          const struct ingest_limits *lim, struct ingest_result *out,
                          struct errbuf *eb);

/* ingest_lp_decode with the body cut into nparts parts (at most INGEST_MAX_PARTS)
 * decoded on their own threads and merged; for tests and fuzzers, which compare it
 * with the sequential decode. ingest_lp_decode picks the parts itself: one per idle
 * core for bodies of at least 2 * INGEST_PAR_MIN_BYTES. Same results and messages
 * as one sequential pass whatever nparts is (a body with a '"', a failing part or
 * parts that do not merge exactly are decoded sequentially). *parts_used (may be
 * NULL) gets the parts the result came from on success: 1 = sequential. */
#define INGEST_PAR_MIN_BYTES (128u * 1024u) /* least body bytes per part */
#define INGEST_MAX_PARTS 8u                  /* threads one body is decoded on */
enum err ingest_lp_decode_parts(const char *body, size_t len, enum ingest_precision p,
                                int64_t now_us, const struct ingest_limits *lim, size_t nparts,
                                struct ingest_result *out, size_t *parts_used,
                                struct errbuf *eb);

#ifdef ARC_TESTING
/* Test hook: with on == false decoders started afterwards skip the series cache
 * (ingest_int.h) and look every tag up, so tests and fuzzers can compare the two.
 * Process-wide; call it while no decode runs. */
void ingest_test_series_cache(bool on);
#endif

/* Decode an Arc MessagePack body: a row item {m,t?,h?,tags?,fields|f}, a columnar
 * item {m,columns,tag_keys?}, {"batch":[items]} or a top-level array of items.
 * Integer times are in s/ms/µs/ns by magnitude (docs/ingest.md). Same errors as
 * above, messages "item N: ...". */
enum err ingest_msgpack_decode(const uint8_t *body, size_t len, int64_t now_us,
                               const struct ingest_limits *lim, struct ingest_result *out,
                               struct errbuf *eb);

/* ingest_msgpack_decode with an array of items (top level or "batch") cut into
 * nparts parts by item index, as ingest_lp_decode_parts does for lines: same
 * results and messages as one pass; *parts_used (may be NULL) as there. */
enum err ingest_msgpack_decode_parts(const uint8_t *body, size_t len, int64_t now_us,
                                     const struct ingest_limits *lim, size_t nparts,
                                     struct ingest_result *out, size_t *parts_used,
                                     struct errbuf *eb);

/* The same item shapes as MessagePack, in JSON. */
enum err ingest_json_decode(const char *body, size_t len, int64_t now_us,
                            const struct ingest_limits *lim, struct ingest_result *out,
                            struct errbuf *eb);

#endif
