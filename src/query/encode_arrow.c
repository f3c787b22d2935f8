/* encode_arrow.c - Arrow IPC streaming format writer (no Arrow library).
 *
 * Stream = Schema message, RecordBatch messages, end-of-stream marker
 * (0xFFFFFFFF 0x00000000). Each message is the continuation marker 0xFFFFFFFF,
 * an int32 metadata length, a flatbuffer-encoded Message (padded so the body
 * starts 8-byte aligned), then the body: the batch's buffers, each starting at
 * an 8-byte aligned offset. Metadata version V5, little-endian, no compression,
 * no dictionaries.
 *
 * Type mapping: BOOL -> Bool (bit-packed), I8..U64 -> Int(bitWidth, signed),
 * F32/F64 -> FloatingPoint(SINGLE/DOUBLE), VARCHAR -> Utf8, BLOB -> Binary
 * (int32 offsets), DATE -> Date(DAY), TIME -> Time(MICROSECOND, 64),
 * TIMESTAMP[_TZ] -> Timestamp(MICROSECOND, "UTC"), TIMESTAMP_S/MS/NS ->
 * Timestamp(SECOND/MILLISECOND/NANOSECOND, "UTC"), DUCK_T_OTHER -> Null (no
 * buffers; every value null). Every field is nullable; a column without nulls in
 * a batch sends a zero-length validity buffer and null_count 0.
 *
 * Flatbuffers are written FRONT TO BACK by a tiny builder below rather than the
 * usual back-to-front builder: a table's vtable is written just before it, each
 * offset field is a placeholder patched once its target (always at a higher
 * address, as uoffset_t is unsigned) has been written. Scalars are always
 * written, even when equal to the schema default (Date.unit = DAY differs from
 * its default MILLISECOND). Layout rules kept: tables start 8-aligned (the
 * soffset to the vtable first), each scalar aligned to its size, vectors'
 * length prefix 4-aligned with 8-byte struct elements 8-aligned.
 *
 * Batching: DuckDB chunks (~2048 rows) are copied into per-column staging
 * buffers (memcpy for fixed-width values; validity words copied when the row
 * offset is byte-aligned) and a RecordBatch is emitted when it reaches
 * opts.arrow_batch_rows (default 10 000) rows, and at the end. The staging is
 * capped by opts.max_bytes; a Utf8 column may not pass 2^31-1 bytes in one batch
 * (int32 offsets): the batch is cut early when the next chunk might not fit. */
#include "query/encode.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "query/encode_int.h"

/* Schema.fbs Type union tags */
enum { T_NULL = 1, T_INT = 2, T_FLOAT = 3, T_BINARY = 4, T_UTF8 = 5, T_BOOL = 6, T_DATE = 8,
       T_TIME = 9, T_TIMESTAMP = 10 };
/* Message.fbs MessageHeader union tags */
enum { H_SCHEMA = 1, H_RECORD_BATCH = 3 };
#define METADATA_V5 4

/* ---- front-to-back flatbuffer builder ---- */

struct fbb {
    struct buf b; /* the flatbuffer; server-made and small (schema, batch metadata) */
};

struct fbf {
    uint16_t id;  /* field id in the table (union = two ids: type tag, then value) */
    uint8_t size; /* scalar size 1/2/4/8; 0 = uoffset placeholder (4 bytes) */
    uint64_t val; /* scalar value */
};

static void fb_pad(struct fbb *f, size_t align)
{
    static const char zeros[8];
    size_t r = f->b.len % align;

    if (r)
        buf_append(&f->b, zeros, align - r);
}

static void fb_le(struct fbb *f, uint64_t v, size_t n)
{
    unsigned char tmp[8];
    size_t i;

    for (i = 0; i < n; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    buf_append(&f->b, tmp, n);
}

static void fb_set32(struct fbb *f, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)f->b.data + at;

    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Point the uoffset placeholder at `at` to `target` (target > at). */
static void fb_link(struct fbb *f, size_t at, size_t target)
{
    fb_set32(f, at, (uint32_t)(target - at));
}

/* Write a table of n fields; pos[i] receives field i's position (used to link
 * offset fields). Returns the table's position. */
static size_t fb_table(struct fbb *f, const struct fbf *fs, size_t n, size_t *pos)
{
    uint16_t slot[16] = {0};
    size_t i, nslots = 0, off = 4, tpos, vpos;

    /* table-relative field offsets: soffset at 0, each scalar aligned to its size
     * assuming the table itself starts 8-aligned */
    for (i = 0; i < n; i++) {
        size_t sz = fs[i].size ? fs[i].size : 4;
        off = (off + sz - 1) / sz * sz;
        slot[fs[i].id] = (uint16_t)off;
        pos[i] = off;
        off += sz;
        if (fs[i].id + 1u > nslots)
            nslots = fs[i].id + 1u;
    }
    fb_pad(f, 2);
    vpos = f->b.len;
    fb_le(f, 4 + 2 * nslots, 2); /* vtable size */
    fb_le(f, off, 2);            /* table inline size */
    for (i = 0; i < nslots; i++)
        fb_le(f, slot[i], 2);
    fb_pad(f, 8);
    tpos = f->b.len;
    fb_le(f, (uint32_t)(int32_t)(tpos - vpos), 4); /* soffset: vtable = table - this */
    for (i = 0; i < n; i++) {
        size_t sz = fs[i].size ? fs[i].size : 4;
        while (f->b.len < tpos + pos[i])
            fb_le(f, 0, 1);
        fb_le(f, fs[i].size ? fs[i].val : 0, sz);
        pos[i] += tpos;
    }
    return tpos;
}

/* A vector of n uoffsets (placeholders); returns its position; element i is at
 * position + 4 + 4 * i. */
static size_t fb_offvec(struct fbb *f, size_t n)
{
    size_t p, i;

    fb_pad(f, 4);
    p = f->b.len;
    fb_le(f, n, 4);
    for (i = 0; i < n; i++)
        fb_le(f, 0, 4);
    return p;
}

/* A vector of n 16-byte structs of two int64 (FieldNode, Buffer). */
static size_t fb_pairvec(struct fbb *f, const int64_t *v, size_t n)
{
    size_t p, i;

    fb_pad(f, 8);
    fb_le(f, 0, 4); /* so the elements after the 4-byte length are 8-aligned */
    p = f->b.len;
    fb_le(f, n, 4);
    for (i = 0; i < 2 * n; i++)
        fb_le(f, (uint64_t)v[i], 8);
    return p;
}

static size_t fb_string(struct fbb *f, const char *s, size_t n)
{
    size_t p;

    fb_pad(f, 4);
    p = f->b.len;
    fb_le(f, n, 4);
    buf_append(&f->b, s, n);
    fb_le(f, 0, 1); /* NUL terminator */
    return p;
}

/* ---- per-column staging ---- */

struct acol {
    struct buf valid; /* validity bitmap, LSB first; bits past nrows are zero */
    struct buf data;  /* values (fixed width), value bytes (Utf8/Binary), bits (Bool) */
    struct buf offs;  /* int32 offsets (Utf8/Binary), nrows + 1 entries */
    uint64_t nulls;   /* null count in this batch */
};

struct arrow_state {
    struct acol *cols;  /* ncols entries */
    size_t nrows;       /* rows in the current batch */
    size_t staged;      /* bytes held across all column buffers */
    struct fbb fb;      /* reused metadata builder */
    int64_t *pairs;     /* scratch: FieldNodes / Buffers, 2 int64 each */
    size_t npairs_cap;  /* capacity of pairs, in pairs */
};

static size_t type_width(enum duck_type t)
{
    switch (t) {
    case DUCK_T_I8:
    case DUCK_T_U8: return 1;
    case DUCK_T_I16:
    case DUCK_T_U16: return 2;
    case DUCK_T_I32:
    case DUCK_T_U32:
    case DUCK_T_F32:
    case DUCK_T_DATE: return 4;
    case DUCK_T_I64:
    case DUCK_T_U64:
    case DUCK_T_F64:
    case DUCK_T_TIME:
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: return 8;
    default: return 0;
    }
}

static bool is_var(enum duck_type t)
{
    return t == DUCK_T_VARCHAR || t == DUCK_T_BLOB;
}

/* Number of body buffers of a column type (validity included). */
static size_t nbuffers(enum duck_type t)
{
    if (t == DUCK_T_OTHER)
        return 0;
    return is_var(t) ? 3 : 2;
}

/* ---- schema ---- */

/* The Type union tag of column type t. */
static uint8_t type_tag(enum duck_type t)
{
    switch (t) {
    case DUCK_T_BOOL: return T_BOOL;
    case DUCK_T_VARCHAR: return T_UTF8;
    case DUCK_T_BLOB: return T_BINARY;
    case DUCK_T_F32:
    case DUCK_T_F64: return T_FLOAT;
    case DUCK_T_DATE: return T_DATE;
    case DUCK_T_TIME: return T_TIME;
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: return T_TIMESTAMP;
    case DUCK_T_OTHER: return T_NULL;
    default: return T_INT;
    }
}

/* Write the Type table of column type t; returns its position. *tz_at is the
 * position of the timezone placeholder to link (0 if none). */
static size_t fb_type(struct fbb *f, enum duck_type t, size_t *tz_at)
{
    struct fbf fs[2];
    size_t pos[2], w;

    *tz_at = 0;
    switch (t) {
    case DUCK_T_BOOL:
    case DUCK_T_VARCHAR:
    case DUCK_T_BLOB:
    case DUCK_T_OTHER: return fb_table(f, fs, 0, pos); /* empty tables */
    case DUCK_T_F32:
    case DUCK_T_F64:
        fs[0] = (struct fbf){0, 2, t == DUCK_T_F32 ? 1 : 2}; /* Precision SINGLE/DOUBLE */
        return fb_table(f, fs, 1, pos);
    case DUCK_T_DATE:
        fs[0] = (struct fbf){0, 2, 0}; /* DateUnit DAY */
        return fb_table(f, fs, 1, pos);
    case DUCK_T_TIME:
        fs[0] = (struct fbf){1, 4, 64}; /* bitWidth */
        fs[1] = (struct fbf){0, 2, 2};  /* TimeUnit MICROSECOND */
        return fb_table(f, fs, 2, pos);
    case DUCK_T_TIMESTAMP:
    case DUCK_T_TIMESTAMP_TZ:
    case DUCK_T_TIMESTAMP_S:
    case DUCK_T_TIMESTAMP_MS:
    case DUCK_T_TIMESTAMP_NS: {
        size_t tpos;
        fs[0] = (struct fbf){1, 0, 0}; /* timezone (string) */
        fs[1] = (struct fbf){0, 2,
                             t == DUCK_T_TIMESTAMP_S    ? 0
                             : t == DUCK_T_TIMESTAMP_MS ? 1
                             : t == DUCK_T_TIMESTAMP_NS ? 3
                                                        : 2};
        tpos = fb_table(f, fs, 2, pos);
        *tz_at = pos[0];
        return tpos;
    }
    default:
        w = type_width(t);
        fs[0] = (struct fbf){0, 4, w * 8}; /* bitWidth */
        fs[1] = (struct fbf){1, 1, t >= DUCK_T_I8 && t <= DUCK_T_I64}; /* is_signed */
        return fb_table(f, fs, 2, pos);
    }
}

/* Append one framed message (metadata in f, body bytes written by the caller
 * right after) header: continuation, length, metadata, padding to 8. */
static enum err put_message(struct encoder *e, struct fbb *f, struct errbuf *eb)
{
    static const char zeros[8];
    unsigned char hdr[8] = {0xff, 0xff, 0xff, 0xff};
    size_t meta = (f->b.len + 7) / 8 * 8;
    enum err rc;

    hdr[4] = (unsigned char)meta;
    hdr[5] = (unsigned char)(meta >> 8);
    hdr[6] = (unsigned char)(meta >> 16);
    hdr[7] = (unsigned char)(meta >> 24);
    rc = enc_put(e, hdr, 8, eb);
    if (!rc)
        rc = enc_put(e, f->b.data, f->b.len, eb);
    if (!rc && meta > f->b.len)
        rc = enc_put(e, zeros, meta - f->b.len, eb);
    return rc;
}

/* Start a Message table with header type h; returns the position of the header
 * offset placeholder. The root offset is at 0. */
static size_t fb_message(struct fbb *f, uint8_t h, int64_t body_len)
{
    struct fbf fs[4] = {
        {3, 8, (uint64_t)body_len}, /* bodyLength */
        {0, 2, METADATA_V5},        /* version */
        {1, 1, h},                  /* header_type */
        {2, 0, 0},                  /* header */
    };
    size_t pos[4], t;

    buf_reset(&f->b);
    fb_le(f, 0, 4); /* root uoffset, linked below */
    t = fb_table(f, fs, 4, pos);
    fb_link(f, 0, t);
    return pos[3];
}

static enum err arrow_begin(struct encoder *e, struct errbuf *eb)
{
    struct arrow_state *st = xcalloc(1, sizeof(*st));
    struct fbb *f = &st->fb;
    size_t hdr_at, schema, fields_vec, i;
    struct fbf sf[1] = {{1, 0, 0}}; /* Schema.fields; endianness = Little by default */
    size_t spos[1];

    e->priv = st;
    st->cols = xcalloc(e->ncols ? e->ncols : 1, sizeof(*st->cols));
    for (i = 0; i < e->ncols; i++) {
        buf_init(&st->cols[i].valid, 0); /* capped together through st->staged */
        buf_init(&st->cols[i].data, 0);
        buf_init(&st->cols[i].offs, 0);
    }
    buf_init(&f->b, 0);

    hdr_at = fb_message(f, H_SCHEMA, 0);
    schema = fb_table(f, sf, 1, spos);
    fb_link(f, hdr_at, schema);
    fields_vec = fb_offvec(f, e->ncols);
    fb_link(f, spos[0], fields_vec);
    for (i = 0; i < e->ncols; i++) {
        /* Field: name, nullable, type_type, type, children (empty: readers
         * expect the vector to be present) */
        struct fbf ff[5] = {{0, 0, 0}, {3, 0, 0}, {5, 0, 0}, {1, 1, 1}, {2, 1, 0}};
        size_t fpos[5], field, s, tz_at, type, kids;

        ff[4].val = type_tag(e->cols[i].type);
        field = fb_table(f, ff, 5, fpos);
        fb_link(f, fields_vec + 4 + 4 * i, field);
        s = fb_string(f, e->cols[i].name, e->cols[i].name_len);
        fb_link(f, fpos[0], s);
        type = fb_type(f, e->cols[i].type, &tz_at);
        fb_link(f, fpos[1], type);
        if (tz_at)
            fb_link(f, tz_at, fb_string(f, "UTC", 3));
        kids = fb_offvec(f, 0);
        fb_link(f, fpos[2], kids);
    }
    return put_message(e, f, eb);
}

/* ---- staging chunks ---- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "encode_arrow.c copies host values into a Little-endian Arrow stream"
#endif

/* Count set bits among the first n bits of v (v == NULL: all set). */
static size_t count_valid(const uint64_t *v, size_t n)
{
    size_t i, c = 0;

    if (!v)
        return n;
    for (i = 0; i < n / 64; i++)
        c += (size_t)__builtin_popcountll(v[i]);
    if (n % 64)
        c += (size_t)__builtin_popcountll(v[n / 64] & ((1ull << (n % 64)) - 1));
    return c;
}

/* Append n validity bits from src (NULL = all valid) at bit offset off of bm,
 * whose len is (off + 7) / 8 and which has room for (off + n + 7) / 8 bytes. */
static void bits_append(struct buf *bm, size_t off, const uint64_t *src, size_t n)
{
    unsigned char *d = (unsigned char *)bm->data;
    size_t nbytes = (off + n + 7) / 8, i;

    memset(d + bm->len, 0, nbytes - bm->len);
    if (off % 8 == 0 && src) {
        memcpy(d + off / 8, src, (n + 7) / 8); /* LSB-first words = LSB-first bytes */
        if ((off + n) % 8)
            d[nbytes - 1] &= (unsigned char)((1u << ((off + n) % 8)) - 1);
    } else if (off % 8 == 0) {
        memset(d + off / 8, 0xff, n / 8);
        if (n % 8)
            d[nbytes - 1] = (unsigned char)((1u << (n % 8)) - 1);
    } else {
        for (i = 0; i < n; i++)
            if (enc_valid(src, i))
                d[(off + i) / 8] |= (unsigned char)(1u << ((off + i) % 8));
    }
    bm->len = nbytes;
}

/* Append n booleans (uint8 0/1) as bits at offset off (same contract as above). */
static void bools_append(struct buf *bm, size_t off, const uint8_t *src, size_t n)
{
    unsigned char *d = (unsigned char *)bm->data;
    size_t nbytes = (off + n + 7) / 8, i;

    memset(d + bm->len, 0, nbytes - bm->len);
    for (i = 0; i < n; i++)
        if (src[i])
            d[(off + i) / 8] |= (unsigned char)(1u << ((off + i) % 8));
    bm->len = nbytes;
}

/* Room for n more bytes in staging buffer b, within opts.max_bytes. */
static enum err stage_need(struct encoder *e, struct arrow_state *st, struct buf *b, size_t n,
                           struct errbuf *eb)
{
    if (b->data && b->cap - b->len >= n)
        return ERR_OK;
    if (n > e->opts.max_bytes || st->staged + n > e->opts.max_bytes)
        return errbuf_set(eb, ERR_LIMIT, "Arrow record batch exceeds the %zu-byte limit",
                          e->opts.max_bytes);
    return buf_reserve(b, n) ? errbuf_set(eb, ERR_LIMIT, "cannot grow an Arrow column")
                             : ERR_OK;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Emit the staged rows as one RecordBatch message and reset the staging. */
static enum err emit_batch(struct encoder *e, struct arrow_state *st, struct errbuf *eb)
{
    static const char zeros[8];
    struct fbb *f = &st->fb;
    size_t nbuf = 0, i, k, hdr_at, rb, nodes, bufs, need;
    int64_t body = 0, *nd, *bf;
    enum err rc = ERR_OK;

    for (i = 0; i < e->ncols; i++)
        nbuf += nbuffers(e->cols[i].type);
    need = e->ncols + nbuf;
    if (need > st->npairs_cap) {
        st->pairs = xreallocarray(st->pairs, need, 2 * sizeof(int64_t));
        st->npairs_cap = need;
    }
    nd = st->pairs;
    bf = st->pairs + 2 * e->ncols;
    for (i = 0, k = 0; i < e->ncols; i++) {
        struct acol *c = &st->cols[i];
        enum duck_type t = e->cols[i].type;
        size_t lens[3] = {c->nulls ? c->valid.len : 0, 0, 0}, j;

        nd[2 * i] = (int64_t)st->nrows;
        nd[2 * i + 1] = t == DUCK_T_OTHER ? (int64_t)st->nrows : (int64_t)c->nulls;
        if (t == DUCK_T_OTHER)
            continue;
        if (is_var(t)) {
            lens[1] = c->offs.len;
            lens[2] = c->data.len;
        } else {
            lens[1] = c->data.len;
        }
        for (j = 0; j < nbuffers(t); j++, k++) {
            bf[2 * k] = body;
            bf[2 * k + 1] = (int64_t)lens[j];
            body += (int64_t)pad8(lens[j]);
        }
    }

    /* Message { RecordBatch { length, nodes, buffers } } */
    hdr_at = fb_message(f, H_RECORD_BATCH, body);
    {
        struct fbf rf[3] = {{0, 8, st->nrows}, {1, 0, 0}, {2, 0, 0}};
        size_t rpos[3];
        rb = fb_table(f, rf, 3, rpos);
        fb_link(f, hdr_at, rb);
        nodes = fb_pairvec(f, nd, e->ncols);
        fb_link(f, rpos[1], nodes);
        bufs = fb_pairvec(f, bf, nbuf);
        fb_link(f, rpos[2], bufs);
    }
    rc = put_message(e, f, eb);

    /* body, in the order the Buffers list them */
    for (i = 0; !rc && i < e->ncols; i++) {
        struct acol *c = &st->cols[i];
        enum duck_type t = e->cols[i].type;
        const struct buf *parts[3] = {&c->valid, is_var(t) ? &c->offs : &c->data, &c->data};
        size_t j, len;

        if (t == DUCK_T_OTHER)
            continue;
        for (j = 0; !rc && j < nbuffers(t); j++) {
            len = (j == 0 && !c->nulls) ? 0 : parts[j]->len;
            if (len)
                rc = enc_put(e, parts[j]->data, len, eb);
            if (!rc && pad8(len) > len)
                rc = enc_put(e, zeros, pad8(len) - len, eb);
        }
    }
    for (i = 0; i < e->ncols; i++) {
        st->cols[i].valid.len = 0;
        st->cols[i].data.len = 0;
        st->cols[i].offs.len = 0;
        st->cols[i].nulls = 0;
    }
    st->nrows = 0;
    st->staged = 0;
    return rc;
}

/* Stage column ci of chunk c (n rows) after the st->nrows rows already staged.
 * var_bytes: the chunk's total string bytes for Utf8/Binary columns. */
static enum err stage_column(struct encoder *e, struct arrow_state *st, size_t ci,
                             const struct duck_chunk *c, size_t n, size_t var_bytes,
                             struct errbuf *eb)
{
    struct acol *ac = &st->cols[ci];
    enum duck_type t = e->cols[ci].type;
    const uint64_t *valid = duck_chunk_validity(c, ci);
    const void *data = duck_chunk_data(c, ci);
    size_t off = st->nrows, nvalid = count_valid(valid, n), before, w, row, len;
    enum err rc;

    if (t == DUCK_T_OTHER) {
        e->unsupported += nvalid;
        return ERR_OK;
    }
    before = ac->valid.len + ac->data.len + ac->offs.len;
    rc = stage_need(e, st, &ac->valid, (off + n + 7) / 8 - ac->valid.len, eb);
    if (rc)
        return rc;
    bits_append(&ac->valid, off, valid, n);
    ac->nulls += n - nvalid;

    if (t == DUCK_T_BOOL) {
        rc = stage_need(e, st, &ac->data, (off + n + 7) / 8 - ac->data.len, eb);
        if (rc)
            return rc;
        bools_append(&ac->data, off, data, n);
    } else if (is_var(t)) {
        int32_t o;
        char *dst;
        rc = stage_need(e, st, &ac->offs, (n + 1) * 4, eb);
        if (!rc)
            rc = stage_need(e, st, &ac->data, var_bytes, eb);
        if (rc)
            return rc;
        if (ac->offs.len == 0) {
            o = 0;
            memcpy(ac->offs.data, &o, 4);
            ac->offs.len = 4;
        }
        dst = ac->data.data + ac->data.len;
        for (row = 0; row < n; row++) {
            const char *s = enc_valid(valid, row) ? duck_chunk_str(c, ci, row, &len) : NULL;
            if (s && len) {
                memcpy(dst, s, len);
                dst += len;
            }
            o = (int32_t)(dst - ac->data.data); /* < 2^31: checked by arrow_chunk */
            memcpy(ac->offs.data + ac->offs.len, &o, 4);
            ac->offs.len += 4;
        }
        ac->data.len = (size_t)(dst - ac->data.data);
    } else {
        w = type_width(t);
        rc = stage_need(e, st, &ac->data, n * w, eb);
        if (rc)
            return rc;
        memcpy(ac->data.data + ac->data.len, data, n * w); /* NULL slots: garbage, allowed */
        ac->data.len += n * w;
    }
    st->staged += ac->valid.len + ac->data.len + ac->offs.len - before;
    return ERR_OK;
}

static enum err arrow_chunk(struct encoder *e, const struct duck_chunk *c, size_t n,
                            struct errbuf *eb)
{
    struct arrow_state *st = e->priv;
    size_t var_small[64], *var = var_small, i, row, len;
    enum err rc = ERR_OK;

    if (e->ncols > 64)
        var = xcalloc(e->ncols, sizeof(*var));
    /* string bytes per column first: a batch's Utf8 data must stay below 2^31
     * (int32 offsets), so cut the batch before a chunk that would pass it */
    for (i = 0; i < e->ncols; i++) {
        var[i] = 0;
        if (!is_var(e->cols[i].type))
            continue;
        for (row = 0; row < n; row++)
            if (duck_chunk_str(c, i, row, &len))
                var[i] += len;
        if (var[i] > INT32_MAX) {
            rc = errbuf_set(eb, ERR_LIMIT,
                            "column '%s': over 2 GiB of strings in %zu rows (Arrow int32 offsets)",
                            e->cols[i].name, n);
            goto out;
        }
        if (st->nrows && st->cols[i].data.len + var[i] > INT32_MAX) {
            rc = emit_batch(e, st, eb);
            if (rc)
                goto out;
        }
    }
    for (i = 0; i < e->ncols && !rc; i++)
        rc = stage_column(e, st, i, c, n, var[i], eb);
    if (rc)
        goto out;
    st->nrows += n;
    e->rows += n;
    if (st->nrows >= e->opts.arrow_batch_rows)
        rc = emit_batch(e, st, eb);
out:
    if (var != var_small)
        free(var);
    return rc;
}

static enum err arrow_end(struct encoder *e, const struct enc_summary *s, struct errbuf *eb)
{
    static const unsigned char eos[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    struct arrow_state *st = e->priv;
    enum err rc = ERR_OK;

    (void)s;
    if (st->nrows)
        rc = emit_batch(e, st, eb);
    return rc ? rc : enc_put(e, eos, sizeof(eos), eb);
}

static void arrow_release(struct encoder *e)
{
    struct arrow_state *st = e->priv;
    size_t i;

    if (!st)
        return;
    for (i = 0; i < e->ncols; i++) {
        buf_release(&st->cols[i].valid);
        buf_release(&st->cols[i].data);
        buf_release(&st->cols[i].offs);
    }
    free(st->cols);
    buf_release(&st->fb.b);
    free(st->pairs);
    free(st);
    e->priv = NULL;
}

const struct enc_ops enc_arrow_ops = {arrow_begin, arrow_chunk, arrow_end, arrow_release};
