/* mp_read.h - the MessagePack reader of msgpack.c: a bounds-checked cursor.
 *
 * Every read checks the bytes left first, and a container's element count is
 * checked against the bytes left (each element takes at least one byte) before
 * anything is sized from it, so a lying header cannot make a caller allocate.
 * mp_next reads one header (and a scalar's payload); mp_skip skips one whole value
 * with a depth cap (INGEST_MAX_DEPTH); mp_skip_n skips an array's elements, with a
 * fixed-stride fast path for arrays of one fixed-size kind. Header-only (static
 * inline): the decoder's inner loops call these per value. */
#ifndef ARC_INGEST_MP_READ_H
#define ARC_INGEST_MP_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

enum mpk { MK_SCALAR, MK_ARR, MK_MAP, MK_EXT };

struct mp {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the body */
};

/* One header: scalars come back as an ival (bin as a string), containers with n. */
struct mpv {
    enum mpk k;
    struct ival v;
    size_t n; /* elements (array) or pairs (map) */
};

static inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t be64(const uint8_t *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

static inline bool need(const struct mp *m, size_t n)
{
    return (size_t)(m->end - m->p) >= n;
}

static inline bool set_int(struct mpv *o, uint64_t u)
{
    o->k = MK_SCALAR;
    if (u > (uint64_t)INT64_MAX) {
        o->v.kind = IV_U64;
        o->v.v.u = u;
    } else {
        o->v.kind = IV_I64;
        o->v.v.i = (int64_t)u;
    }
    return true;
}

static inline bool set_str(struct mp *m, struct mpv *o, size_t len)
{
    if (!need(m, len))
        return false;
    o->k = MK_SCALAR;
    o->v.kind = IV_STR;
    o->v.v.s.p = (const char *)m->p;
    o->v.v.s.len = len;
    m->p += len;
    return true;
}

static inline bool set_cont(struct mp *m, struct mpv *o, enum mpk k, size_t n)
{
    /* each element is at least one byte (a map pair two): refuse lying counts */
    if ((size_t)(m->end - m->p) / (k == MK_MAP ? 2 : 1) < n)
        return false;
    o->k = k;
    o->n = n;
    return true;
}

static inline bool set_ext(struct mp *m, struct mpv *o, size_t len)
{
    if (!need(m, len + 1))
        return false;
    m->p += len + 1;
    o->k = MK_EXT;
    return true;
}

/* Read one header (and a scalar's payload). false: truncated or invalid byte. */
static inline bool mp_next(struct mp *m, struct mpv *o)
{
    uint8_t c;
    union {
        uint32_t u;
        float f;
    } f32;
    union {
        uint64_t u;
        double d;
    } f64;

    if (!need(m, 1))
        return false;
    c = *m->p++;
    if (c <= 0x7f)
        return set_int(o, c);
    if (c >= 0xe0) {
        o->k = MK_SCALAR;
        o->v.kind = IV_I64;
        o->v.v.i = (int8_t)c;
        return true;
    }
    if ((c & 0xf0) == 0x80)
        return set_cont(m, o, MK_MAP, c & 0x0f);
    if ((c & 0xf0) == 0x90)
        return set_cont(m, o, MK_ARR, c & 0x0f);
    if ((c & 0xe0) == 0xa0)
        return set_str(m, o, c & 0x1f);
    o->k = MK_SCALAR;
    switch (c) {
    case 0xc0:
        o->v.kind = IV_NIL;
        return true;
    case 0xc2:
    case 0xc3:
        o->v.kind = IV_BOOL;
        o->v.v.b = c == 0xc3;
        return true;
    case 0xc4: /* bin 8/16/32: taken as a string (UTF-8 checked where stored) */
    case 0xd9:
        if (!need(m, 1))
            return false;
        m->p += 1;
        return set_str(m, o, m->p[-1]);
    case 0xc5:
    case 0xda:
        if (!need(m, 2))
            return false;
        m->p += 2;
        return set_str(m, o, be16(m->p - 2));
    case 0xc6:
    case 0xdb:
        if (!need(m, 4))
            return false;
        m->p += 4;
        return set_str(m, o, be32(m->p - 4));
    case 0xc7:
        if (!need(m, 1))
            return false;
        m->p += 1;
        return set_ext(m, o, m->p[-1]);
    case 0xc8:
        if (!need(m, 2))
            return false;
        m->p += 2;
        return set_ext(m, o, be16(m->p - 2));
    case 0xc9:
        if (!need(m, 4))
            return false;
        m->p += 4;
        return set_ext(m, o, be32(m->p - 4));
    case 0xca:
        if (!need(m, 4))
            return false;
        f32.u = be32(m->p);
        m->p += 4;
        o->v.kind = IV_F64;
        o->v.v.f = f32.f;
        return true;
    case 0xcb:
        if (!need(m, 8))
            return false;
        f64.u = be64(m->p);
        m->p += 8;
        o->v.kind = IV_F64;
        o->v.v.f = f64.d;
        return true;
    case 0xcc:
        if (!need(m, 1))
            return false;
        return set_int(o, *m->p++);
    case 0xcd:
        if (!need(m, 2))
            return false;
        m->p += 2;
        return set_int(o, be16(m->p - 2));
    case 0xce:
        if (!need(m, 4))
            return false;
        m->p += 4;
        return set_int(o, be32(m->p - 4));
    case 0xcf:
        if (!need(m, 8))
            return false;
        m->p += 8;
        return set_int(o, be64(m->p - 8));
    case 0xd0:
        if (!need(m, 1))
            return false;
        o->v.kind = IV_I64;
        o->v.v.i = (int8_t)*m->p++;
        return true;
    case 0xd1:
        if (!need(m, 2))
            return false;
        o->v.kind = IV_I64;
        o->v.v.i = (int16_t)be16(m->p);
        m->p += 2;
        return true;
    case 0xd2:
        if (!need(m, 4))
            return false;
        o->v.kind = IV_I64;
        o->v.v.i = (int32_t)be32(m->p);
        m->p += 4;
        return true;
    case 0xd3:
        if (!need(m, 8))
            return false;
        o->v.kind = IV_I64;
        o->v.v.i = (int64_t)be64(m->p);
        m->p += 8;
        return true;
    case 0xd4:
        return set_ext(m, o, 1);
    case 0xd5:
        return set_ext(m, o, 2);
    case 0xd6:
        return set_ext(m, o, 4);
    case 0xd7:
        return set_ext(m, o, 8);
    case 0xd8:
        return set_ext(m, o, 16);
    case 0xdc:
        if (!need(m, 2))
            return false;
        m->p += 2;
        return set_cont(m, o, MK_ARR, be16(m->p - 2));
    case 0xdd:
        if (!need(m, 4))
            return false;
        m->p += 4;
        return set_cont(m, o, MK_ARR, be32(m->p - 4));
    case 0xde:
        if (!need(m, 2))
            return false;
        m->p += 2;
        return set_cont(m, o, MK_MAP, be16(m->p - 2));
    case 0xdf:
        if (!need(m, 4))
            return false;
        m->p += 4;
        return set_cont(m, o, MK_MAP, be32(m->p - 4));
    default: /* 0xc1: never used */
        return false;
    }
}

/* What follows a header byte 0xc0..0xdf: below 0x80 a fixed number of bytes
 * (ext counts its type byte); 0x80 | w a length or count field of w bytes;
 * 0xff the byte never used. */
static const uint8_t mp_tail[32] = {
    0,    0xff, 0,    0,    0x81, 0x82, 0x84, 0x81, /* nil, -, bools, bin 8/16/32, ext 8 */
    0x82, 0x84, 4,    8,    1,    2,    4,    8,    /* ext 16/32, float 32/64, uint */
    1,    2,    4,    8,    2,    3,    5,    9,    /* int, fixext 1/2/4/8 */
    17,   0x81, 0x82, 0x84, 0x82, 0x84, 0x82, 0x84, /* fixext 16, str, array, map */
};

/* Skip one whole value. false: truncated, invalid or nested deeper than the cap
 * (a container at nesting level L fails when depth + L >= INGEST_MAX_DEPTH).
 * Iterative and table-driven: skipping is a third of the columnar decode work,
 * so it does not build values the way mp_next does. */
static inline bool mp_skip(struct mp *m, unsigned depth)
{
    size_t left[INGEST_MAX_DEPTH + 1]; /* values still to skip in each open container */
    unsigned top = 0;
    size_t pending = 1;
    const uint8_t *p = m->p, *end = m->end;

    for (;;) {
        uint8_t c;
        size_t n = 0, body = 0;
        bool cont = false;

        while (pending == 0) {
            if (top == 0) {
                m->p = p;
                return true;
            }
            pending = left[--top];
        }
        pending--;
        if (p >= end)
            return false;
        c = *p++;
        if (c <= 0x7f || c >= 0xe0)
            continue;
        if (c < 0xc0) {
            if (c >= 0xa0) {
                body = c & 0x1f;
            } else {
                n = (size_t)(c & 0x0f) * (c < 0x90 ? 2 : 1);
                cont = true;
            }
        } else if (mp_tail[c - 0xc0] < 0x80) {
            body = mp_tail[c - 0xc0];
        } else {
            size_t w = mp_tail[c - 0xc0] & 0x7f;
            if (w > 4 || (size_t)(end - p) < w)
                return false; /* 0xc1, or truncated */
            n = w == 1 ? p[0] : w == 2 ? be16(p) : be32(p);
            p += w;
            if (c >= 0xdc) {
                n *= c >= 0xde ? 2 : 1;
                cont = true;
            } else {
                body = n + (c >= 0xc7 && c <= 0xc9); /* ext: the type byte */
            }
        }
        if (!cont) {
            if ((size_t)(end - p) < body)
                return false;
            p += body;
            continue;
        }
        if (depth + top >= INGEST_MAX_DEPTH || n > (size_t)(end - p))
            return false;
        if (n) {
            left[top++] = pending;
            pending = n;
        }
    }
}

/* Bytes of a whole scalar whose size its header byte alone gives (fixints, nil,
 * bools, fixstr, numbers, fixext); 0 for the rest. */
static inline size_t mp_fixed_size(uint8_t c)
{
    if (c <= 0x7f || c >= 0xe0)
        return 1;
    if (c >= 0xa0 && c <= 0xbf)
        return 1 + (size_t)(c & 0x1f);
    if (c >= 0xc0 && mp_tail[c - 0xc0] < 0x80)
        return 1 + (size_t)mp_tail[c - 0xc0];
    return 0;
}

/* Skip n values (an array's elements) at depth. Columns are usually n values of
 * one fixed-size kind (doubles, 64-bit times, equal-length strings): then the
 * header bytes sit at a fixed stride and are checked with independent loads,
 * rather than walked one after the other (each step waiting for the last). */
static inline bool mp_skip_n(struct mp *m, size_t n, unsigned depth)
{
    size_t sz = 0, k = 0;

    if (n >= 2 && m->end - m->p >= 2) {
        const uint8_t *q = m->p, h = q[0], l = q[1];
        bool len8 = h == 0xd9 || h == 0xc4; /* str 8 / bin 8: the length byte must match too */
        sz = len8 ? 2 + (size_t)l : mp_fixed_size(h);
        if (sz) {
            size_t fit = (size_t)(m->end - q) / sz, lim = n < fit ? n : fit;
            while (k < lim && q[k * sz] == h && (!len8 || q[k * sz + 1] == l))
                k++;
            m->p += k * sz;
        }
    }
    for (; k < n; k++) {
        if (!mp_skip(m, depth))
            return false;
    }
    return true;
}

#endif
