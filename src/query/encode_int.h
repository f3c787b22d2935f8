/* encode_int.h - private to src/query/encode*.c: the encoder object, the output
 * staging buffer, and the text formatters JSON, NDJSON and CSV share.
 *
 * Output path: every format appends to e->out, which is either the sink's own
 * buffer (enc_sink_buf: no copy) or e->stage, flushed to the sink's write
 * callback whenever it cannot take the next value. Hot loops call enc_need(e, n)
 * with an upper bound on what they write (the text formats: once per row, plus
 * once per string value; Arrow and MessagePack: per value), then write through
 * a raw pointer and advance e->out->len themselves. The formatters below may
 * write past their text (fixed-size moves), never past the room they state. */
#ifndef QUERY_ENCODE_INT_H
#define QUERY_ENCODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "query/encode.h"

struct enc_ops {
    enum err (*begin)(struct encoder *e, struct errbuf *eb);
    enum err (*chunk)(struct encoder *e, const struct duck_chunk *c, size_t nrows,
                      struct errbuf *eb);
    enum err (*end)(struct encoder *e, const struct enc_summary *s, struct errbuf *eb);
    void (*release)(struct encoder *e); /* frees e->priv; may be NULL */
};

/* Bytes of enc_col.sec_str: the longest prefix fits (TIMESTAMP_S years reach 12
 * digits: "+292277026596-12-04T15:30:07." is 29 bytes), and enc_fmt_ts copies
 * all of them at once. */
#define ENC_TS_PREFIX 32

struct enc_col {
    char *name;          /* NUL-terminated copy of the column name */
    size_t name_len;     /* strlen(name) */
    enum duck_type type; /* column type */
    int64_t day;         /* day (since epoch) whose "YYYY-MM-DDT" is in day_str; INT64_MIN = none */
    char day_str[24];    /* cached date prefix of timestamps: rows share days */
    uint8_t day_len;     /* bytes used in day_str */
    uint8_t sec_len;     /* bytes used in sec_str */
    int64_t sec_lo;      /* raw value (column units) of the first instant of the cached second */
    uint64_t sec_span;   /* units per second; 0 = no second cached. The span never holds a
                            timestamp infinity (+-INT64_MAX) */
    char sec_str[ENC_TS_PREFIX]; /* "YYYY-MM-DDTHH:MM:SS." of that second: rows 1 ms apart
                                    share it 1000 times */
};

struct encoder {
    enum enc_format fmt;      /* the format */
    const struct enc_ops *ops; /* format callbacks */
    struct enc_sink sink;     /* where bytes go */
    struct buf stage;         /* staging buffer for write-callback sinks */
    struct buf *out;          /* &stage, or sink.direct */
    size_t ncols;             /* columns in the result */
    struct enc_col *cols;     /* ncols entries */
    struct enc_opts opts;     /* defaults filled in */
    uint64_t rows;            /* rows encoded so far */
    uint64_t unsupported;     /* non-NULL DUCK_T_OTHER values written as null */
    uint64_t bytes_flushed;   /* bytes handed to the write callback */
    bool begun, ended, failed; /* call-order state; failed = a call returned an error */
    void *priv;               /* format state (arrow columns, msgpack columns, ...) */
};

extern const struct enc_ops enc_json_ops, enc_ndjson_ops, enc_csv_ops, enc_arrow_ops,
    enc_msgpack_ops;

/* Make room for n more bytes in e->out, flushing the stage first when it is
 * non-empty and too full. ERR_LIMIT (a direct sink's cap) or the sink's error. */
enum err enc_grow(struct encoder *e, size_t n, struct errbuf *eb);

static inline enum err enc_need(struct encoder *e, size_t n, struct errbuf *eb)
{
    struct buf *b = e->out;

    if (b->data && b->cap - b->len >= n)
        return ERR_OK;
    return enc_grow(e, n, eb);
}

/* Append n bytes (enc_need + memcpy). */
enum err enc_put(struct encoder *e, const void *p, size_t n, struct errbuf *eb);

/* Hand everything staged to the write callback (no-op for a direct sink). */
enum err enc_flush(struct encoder *e, struct errbuf *eb);

/* ---- text formatting; each writes at p and returns the new end ---- */

#define ENC_NUM_MAX 24 /* longest integer: "-9223372036854775808" is 20 */
#define ENC_TS_MAX 40  /* room enc_fmt_ts needs at p (it writes ENC_TS_PREFIX bytes at once) */

/* Integers, written straight at p (no temporary): at most 20 / 21 bytes. */
char *enc_fmt_u64(char *p, uint64_t v);
char *enc_fmt_i64(char *p, int64_t v);
/* Write BOOLEAN (true/false) or a signed/unsigned integer up to 32 bits, or BIGINT,
 * of column type t at row as text; NULL (nothing written) for any other type. UBIGINT
 * is left to the caller (JSON quotes it). Needs at most 21 bytes at p. */
char *enc_fmt_bool_int(char *p, enum duck_type t, const void *data, size_t row);

/* Timestamp of column type t (TIMESTAMP[_TZ|_S|_MS|_NS]) as RFC 3339 UTC with
 * exactly 6 fraction digits and 'Z' ("2026-08-22T14:00:00.123456Z"); nanoseconds
 * are truncated toward the past. DuckDB's infinities print "infinity" and
 * "-infinity"; years outside 0..9999 print with a sign ("+10000-01-01T...",
 * "-0001-..."). col caches the date part and the whole "date T time." prefix of
 * the last second: a row in the same second costs a compare, a 32-byte copy and
 * six digits. Needs ENC_TS_MAX bytes at p (writes past the text). */
char *enc_fmt_ts(struct enc_col *col, char *p, int64_t v);
/* DATE (days since epoch) as "YYYY-MM-DD" (or "infinity"/"-infinity"). */
char *enc_fmt_date(char *p, int32_t days);
/* TIME (µs since midnight) as "HH:MM:SS.ffffff". */
char *enc_fmt_time(char *p, int64_t us);

/* Most bytes a text format (JSON, NDJSON, CSV) writes at p for one non-NULL
 * value of fixed-size type t, quotes and the formatters' overshoot included; 0
 * for VARCHAR and BLOB, whose size depends on the value. At least 4 ("null"). */
size_t enc_text_max(enum duck_type t);

/* Split a timestamp of type t into seconds and nanoseconds (0..999999999),
 * flooring. false for DuckDB's +-infinity values (*secs = +1/-1 says which). */
bool enc_ts_split(enum duck_type t, int64_t v, int64_t *secs, uint32_t *nanos);

/* true if s[0..n) needs no JSON escaping (printable ASCII without '"' and '\\'). */
bool enc_is_plain_json(const char *s, size_t n);

/* Append s as a JSON string literal (quotes included); fast path for plain ASCII,
 * buf_append_json_str semantics otherwise (invalid UTF-8 becomes U+FFFD). */
enum err enc_json_str(struct encoder *e, const char *s, size_t n, struct errbuf *eb);

/* Write s as a JSON string literal at p, byte for byte what buf_append_json_str
 * writes: runs of safe bytes are checked and copied 8 at a time, escapes and
 * UTF-8 checks only where a byte needs them. Needs 6 * n + 2 bytes at p; returns
 * the new end. */
char *enc_fmt_json_str(char *p, const char *s, size_t n);

/* true if s[0..n) must be quoted as a CSV field (holds ',', '"', CR or LF). */
bool enc_csv_needs_quotes(const char *s, size_t n);

/* Write s as one CSV field at p, quoted (quotes doubled) if it must be. Needs
 * 2 * n + 2 bytes at p; returns the new end. */
char *enc_fmt_csv_field(char *p, const char *s, size_t n);

/* Copy n bytes to p; small copies (the usual tag values) without a libc call. */
static inline char *enc_copy(char *p, const void *s, size_t n)
{
    const char *c = s;

    if (n >= 8 && n <= 16) { /* two overlapping 8-byte moves */
        uint64_t a, b;
        memcpy(&a, c, 8);
        memcpy(&b, c + n - 8, 8);
        memcpy(p, &a, 8);
        memcpy(p + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, c, 4);
        memcpy(&b, c + n - 4, 4);
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
    } else if (n < 4) {
        size_t i;
        for (i = 0; i < n; i++)
            p[i] = c[i];
    } else {
        memcpy(p, c, n);
    }
    return p + n;
}

/* BLOB bytes as text the way DuckDB casts BLOB to VARCHAR: printable ASCII as is
 * (except '\\'), every other byte as \xHH. Writes at p (room: 4 * n). */
char *enc_fmt_blob(char *p, const unsigned char *s, size_t n);

/* true if bit row of validity bitmap v is set (v == NULL: all valid). */
static inline bool enc_valid(const uint64_t *v, size_t row)
{
    return !v || (v[row >> 6] >> (row & 63)) & 1;
}

#endif
