/* compress.c - bounded decompression. gzip goes through libdeflate (whole
 * buffer, ~2.5x zlib): we size the output from the gzip trailer (ISIZE) when it
 * is plausible, else grow geometrically, never past max_out; multi-member gzip
 * is handled by looping over members. zstd streams with ZSTD_decompressStream
 * into a buffer that stops at max_out. */
#include "core/compress.h"

#include <libdeflate.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zstd.h>

#include "core/mem.h"

enum err compress_kind_from_encoding(const char *enc, enum compress_kind *out)
{
    if (!enc || !*enc || !strcasecmp(enc, "identity"))
        *out = COMPRESS_NONE;
    else if (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip"))
        *out = COMPRESS_GZIP;
    else if (!strcasecmp(enc, "zstd"))
        *out = COMPRESS_ZSTD;
    else
        return ERR_INVAL;
    return ERR_OK;
}

enum compress_kind compress_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;

    if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return COMPRESS_GZIP;
    if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return COMPRESS_ZSTD;
    return COMPRESS_NONE;
}

static enum err gunzip(const unsigned char *in, size_t len, size_t max_out, struct buf *out,
                       struct errbuf *eb)
{
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t pos = 0, in_used, out_got, room;
    enum libdeflate_result r;
    enum err rc = ERR_OK;

    if (!d)
        return errbuf_set(eb, ERR_INTERNAL, "gzip: cannot allocate decompressor");
    while (pos < len) {
        size_t produced_before = out->len;
        /* first guess: the member trailer's ISIZE (only exact for the last member
         * and mod 2^32), clamped to what is left of the cap; then double. */
        room = 4 * (len - pos) + 4096;
        if (len - pos >= 18) {
            uint32_t isize;
            memcpy(&isize, in + len - 4, 4);
            if (isize > room)
                room = isize;
        }
        for (;;) {
            size_t left = max_out - (out->len - 0);
            if (out->len > max_out) {
                rc = errbuf_set(eb, ERR_LIMIT, "decompressed body exceeds %zu bytes", max_out);
                goto out;
            }
            if (room > left)
                room = left;
            out->max_bytes = max_out + 1;
            if (buf_reserve(out, room + 1) != ERR_OK) {
                rc = errbuf_set(eb, ERR_LIMIT, "decompressed body exceeds %zu bytes", max_out);
                goto out;
            }
            r = libdeflate_gzip_decompress_ex(d, in + pos, len - pos, out->data + out->len,
                                              room, &in_used, &out_got);
            if (r == LIBDEFLATE_SUCCESS)
                break;
            if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
                if (room >= left) {
                    rc = errbuf_set(eb, ERR_LIMIT, "decompressed body exceeds %zu bytes",
                                    max_out);
                    goto out;
                }
                room = room * 2 < room ? left : room * 2;
                continue;
            }
            rc = errbuf_set(eb, ERR_PARSE, "gzip: corrupt data at byte %zu", pos);
            goto out;
        }
        out->len += out_got;
        out->data[out->len] = '\0';
        pos += in_used;
        (void)produced_before;
        /* trailing zero padding after the last member is tolerated */
        while (pos < len && in[pos] == 0)
            pos++;
    }
out:
    libdeflate_free_decompressor(d);
    return rc;
}

static enum err unzstd(const void *in, size_t len, size_t max_out, struct buf *out,
                       struct errbuf *eb)
{
    ZSTD_DCtx *z = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, len, 0};
    ZSTD_outBuffer ob;
    size_t r = 1, chunk;
    enum err rc = ERR_OK;

    if (!z)
        return errbuf_set(eb, ERR_INTERNAL, "zstd: cannot allocate context");
    /* bound the window so a frame cannot demand a huge history buffer */
    ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 27);
    while (ib.pos < ib.size || r != 0) {
        if (out->len >= max_out) {
            /* probe: is there more output? one byte past the cap is an error */
            char probe;
            ob = (ZSTD_outBuffer){&probe, 1, 0};
            r = ZSTD_decompressStream(z, &ob, &ib);
            if (ZSTD_isError(r)) {
                rc = errbuf_set(eb, ERR_PARSE, "zstd: %s", ZSTD_getErrorName(r));
                goto out;
            }
            if (ob.pos > 0) {
                rc = errbuf_set(eb, ERR_LIMIT, "decompressed body exceeds %zu bytes", max_out);
                goto out;
            }
            if (ib.pos == ib.size)
                break;
            continue;
        }
        chunk = ZSTD_DStreamOutSize() * 4;
        if (chunk > max_out - out->len)
            chunk = max_out - out->len;
        out->max_bytes = max_out + 1;
        buf_reserve(out, chunk + 1);
        ob = (ZSTD_outBuffer){out->data + out->len, chunk, 0};
        r = ZSTD_decompressStream(z, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = errbuf_set(eb, ERR_PARSE, "zstd: %s", ZSTD_getErrorName(r));
            goto out;
        }
        out->len += ob.pos;
        out->data[out->len] = '\0';
        if (ib.pos == ib.size && ob.pos < chunk && r != 0) {
            rc = errbuf_set(eb, ERR_PARSE, "zstd: truncated frame");
            goto out;
        }
    }
out:
    ZSTD_freeDCtx(z);
    return rc;
}

enum err compress_inflate(enum compress_kind kind, const void *in, size_t len, size_t max_out,
                          struct buf *out, struct errbuf *eb)
{
    switch (kind) {
    case COMPRESS_NONE: return buf_append(out, in, len);
    case COMPRESS_GZIP: return gunzip(in, len, max_out, out, eb);
    case COMPRESS_ZSTD: return unzstd(in, len, max_out, out, eb);
    }
    return errbuf_set(eb, ERR_INTERNAL, "unknown compression");
}

/* One compressor and one zstd context per thread, kept: allocating them per response
 * (hundreds of KiB: an mmap, page faults and an munmap each time) cost more than
 * compressing a small answer. Freed when the thread exits. */
static pthread_key_t deflate_key, zstd_key;
static pthread_once_t compress_once = PTHREAD_ONCE_INIT;

static void free_deflate(void *p)
{
    libdeflate_free_compressor(p);
}

static void free_zstd(void *p)
{
    ZSTD_freeCCtx(p);
}

static void compress_keys(void)
{
    pthread_key_create(&deflate_key, free_deflate);
    pthread_key_create(&zstd_key, free_zstd);
}

enum err compress_deflate(enum compress_kind kind, const void *in, size_t len, struct buf *out)
{
    size_t bound, n;
    enum err rc;

    pthread_once(&compress_once, compress_keys);
    if (kind == COMPRESS_GZIP) {
        struct libdeflate_compressor *c = pthread_getspecific(deflate_key);
        if (!c) {
            if (!(c = libdeflate_alloc_compressor(1)))
                return ERR_INTERNAL;
            pthread_setspecific(deflate_key, c);
        }
        bound = libdeflate_gzip_compress_bound(c, len);
        rc = buf_reserve(out, bound);
        if (rc == ERR_OK) {
            n = libdeflate_gzip_compress(c, in, len, out->data + out->len, bound);
            out->len += n;
            out->data[out->len] = '\0';
            rc = n ? ERR_OK : ERR_INTERNAL;
        }
        return rc;
    }
    if (kind == COMPRESS_ZSTD) {
        ZSTD_CCtx *z = pthread_getspecific(zstd_key);
        if (!z) {
            if (!(z = ZSTD_createCCtx()))
                return ERR_INTERNAL;
            pthread_setspecific(zstd_key, z);
        }
        bound = ZSTD_compressBound(len);
        rc = buf_reserve(out, bound);
        if (rc)
            return rc;
        n = ZSTD_compressCCtx(z, out->data + out->len, bound, in, len, 1);
        if (ZSTD_isError(n))
            return ERR_INTERNAL;
        out->len += n;
        out->data[out->len] = '\0';
        return ERR_OK;
    }
    return buf_append(out, in, len);
}
