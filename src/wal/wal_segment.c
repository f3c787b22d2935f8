/* wal_segment.c - the WAL's bytes on disk: segment files and record framing.
 *
 * Writing: a segment is born atomically (header to NAME.wal.tmp, fsync, rename,
 * fsync the directory), so a crash leaves either no segment or a complete header,
 * and a leftover .tmp never held a record. Records are written with one pwritev.
 * Reading maps the segment read-only and walks it. Damage is told apart by what
 * follows it: if an intact record (good CRC, LSN above the last good one) follows,
 * the damaged bytes are skipped and counted; if nothing intact follows, it is a
 * torn tail. The search for the next intact record tries the damaged record's own
 * length first, then every byte offset with cheap checks (plausible length, LSN
 * in a window above the last good one) before the CRC, so even a flipped length
 * field costs one record, not the rest of the segment. */
#include "wal/wal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#ifdef ARC_TESTING
struct wal_test_faults wal_test_faults;
#endif


void wal_seg_name(uint64_t base, char *out, size_t n)
{
    snprintf(out, n, "%020" PRIu64 ".wal", base);
}

void wal_seg_path(const char *dir, uint64_t base, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRIu64 ".wal%s", dir, base, suffix);
}

/* Parse "NNNNNNNNNNNNNNNNNNNN.wal" (exactly 20 digits). */
bool wal_seg_parse_name(const char *name, uint64_t *base)
{
    uint64_t v = 0;

    if (strlen(name) != WAL_NAME_DIGITS + 4 || strcmp(name + WAL_NAME_DIGITS, ".wal") != 0)
        return false;
    for (int i = 0; i < WAL_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *base = v;
    return true;
}

enum err wal_errno_err(int e)
{
    return (e == ENOSPC || e == EDQUOT) ? ERR_NOSPACE : ERR_IO;
}

int wal_fd_sync(enum wal_sync mode, int fd)
{
#ifdef ARC_TESTING
    if (wal_test_faults.fail_sync_errno) {
        errno = wal_test_faults.fail_sync_errno;
        wal_test_faults.fail_sync_errno = 0;
        return -1;
    }
#endif
    return mode == WAL_SYNC_FSYNC ? fsync(fd) : fdatasync(fd);
}

enum err wal_dir_fsync(const char *dir, struct errbuf *eb)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "open WAL dir %s: %s", dir, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return errbuf_set(eb, wal_errno_err(e), "fsync WAL dir %s: %s", dir, strerror(e));
    }
    close(fd);
    return ERR_OK;
}

/* Write all of iov at off, looping over short writes. Returns 0 or an errno. */
int wal_pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
#ifdef ARC_TESTING
    if (wal_test_faults.fail_errno) {
        int e = wal_test_faults.fail_errno;
        size_t left = wal_test_faults.short_bytes;
        wal_test_faults.fail_errno = 0;
        for (int i = 0; i < cnt && left > 0; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            if (pwrite(fd, iov[i].iov_base, n, (off_t)off) != (ssize_t)n)
                return errno ? errno : EIO;
            off += n;
            left -= n;
        }
        return e;
    }
#endif
    while (cnt > 0) {
        ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO;
        off += (uint64_t)n;
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Create segment base atomically: write the header to NAME.tmp, fsync, rename,
 * fsync the directory. A crash leaves either no segment or a complete header. */
enum err wal_seg_create(const char *dir, uint64_t base, int *fd_out, struct errbuf *eb)
{
    char tmp[WAL_PATH_MAX], path[WAL_PATH_MAX];
    unsigned char hdr[WAL_HDR_BYTES];
    struct iovec iov = {hdr, sizeof(hdr)};
    enum err rc;
    int fd, e;

    wal_seg_path(dir, base, ".tmp", tmp, sizeof(tmp));
    wal_seg_path(dir, base, "", path, sizeof(path));
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errbuf_set(eb, wal_errno_err(errno), "create WAL segment %s: %s", tmp,
                          strerror(errno));
    memcpy(hdr, WAL_MAGIC, 8);
    wal_put_le32(hdr + 8, WAL_VERSION);
    wal_put_le32(hdr + 12, WAL_HDR_BYTES);
    wal_put_le64(hdr + 16, base);
    e = wal_pwritev_all(fd, &iov, 1, 0);
    if (e != 0) {
        rc = errbuf_set(eb, wal_errno_err(e), "write WAL segment header %s: %s", tmp, strerror(e));
        goto fail_unlink;
    }
    if (fsync(fd) != 0) {
        rc = errbuf_set(eb, wal_errno_err(errno), "fsync WAL segment %s: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    if (rename(tmp, path) != 0) {
        rc = errbuf_set(eb, wal_errno_err(errno), "rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail_unlink;
    }
    rc = wal_dir_fsync(dir, eb);
    if (rc != ERR_OK) {
        unlink(path);
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return ERR_OK;

fail_unlink:
    unlink(tmp);
    close(fd);
    return rc;
}

/* Reuse the file at spare (an old segment, checkpointed) as segment base: fsync
 * the directory (its spare name is final), new header, fdatasync, rename, fsync
 * the directory. Its old records stay behind the
 * header until overwritten; their LSNs are all below base, so readers take them
 * for the end of the log (wal_seg_walk: stale_tail). *size_out: its file size. */
enum err wal_seg_recycle(const char *dir, const char *spare, uint64_t base, int *fd_out,
                         uint64_t *size_out, struct errbuf *eb)
{
    char path[WAL_PATH_MAX];
    unsigned char hdr[WAL_HDR_BYTES];
    struct iovec iov = {hdr, sizeof(hdr)};
    struct stat st;
    enum err rc;
    int fd, e;

    wal_seg_path(dir, base, "", path, sizeof(path));
    fd = open(spare, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "open recycled WAL segment %s: %s", spare, strerror(errno));
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < WAL_HDR_BYTES) {
        rc = errbuf_set(eb, ERR_IO, "recycled WAL segment %s: unusable", spare);
        goto fail;
    }
    /* Records rarely cover whole pages: a page of the old file that is no longer
     * cached would be read before a record overwrites part of it. Read ahead. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    /* The rename to the spare name must be durable before the file gets a new
     * header, or a crash could bring the old segment's name back over it. */
    rc = wal_dir_fsync(dir, eb);
    if (rc != ERR_OK)
        goto fail;
    memcpy(hdr, WAL_MAGIC, 8);
    wal_put_le32(hdr + 8, WAL_VERSION);
    wal_put_le32(hdr + 12, WAL_HDR_BYTES);
    wal_put_le64(hdr + 16, base);
    e = wal_pwritev_all(fd, &iov, 1, 0);
    if (e == 0 && fdatasync(fd) != 0)
        e = errno;
    if (e != 0) {
        rc = errbuf_set(eb, wal_errno_err(e), "write header of recycled WAL segment %s: %s",
                        spare, strerror(e));
        goto fail;
    }
    if (rename(spare, path) != 0) {
        rc = errbuf_set(eb, wal_errno_err(errno), "rename %s to %s: %s", spare, path,
                        strerror(errno));
        goto fail;
    }
    rc = wal_dir_fsync(dir, eb);
    if (rc != ERR_OK) {
        unlink(path);
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return ERR_OK;

fail:
    close(fd);
    return rc;
}

/* ---- reading: framing, damage, walking ------------------------------------- */

enum frame { FRAME_OK, FRAME_BADCRC, FRAME_BAD };

struct rec_view {
    uint64_t lsn;
    uint64_t total; /* frame + payload bytes */
    struct wal_record rec;
};

/* Look at the record starting at off. FRAME_BAD: it cannot be framed (too short,
 * impossible length, runs past the end). FRAME_BADCRC: framed, checksum wrong. */
static enum frame frame_at(const unsigned char *m, uint64_t size, uint64_t off,
                           struct rec_view *v)
{
    uint32_t plen, crc;
    const unsigned char *p;
    uint16_t db_len;

    if (off > size || size - off < WAL_FRAME_BYTES + WAL_PHDR_BYTES)
        return FRAME_BAD;
    p = m + off;
    plen = wal_get_le32(p);
    if (plen < WAL_PHDR_BYTES || plen > WAL_MAX_PAYLOAD || plen > size - off - WAL_FRAME_BYTES)
        return FRAME_BAD;
    db_len = (uint16_t)(p[WAL_FRAME_BYTES + 2] | p[WAL_FRAME_BYTES + 3] << 8);
    if (db_len > plen - WAL_PHDR_BYTES)
        return FRAME_BAD;
    v->lsn = wal_get_le64(p + 8);
    v->total = WAL_FRAME_BYTES + (uint64_t)plen;
    crc = wal_crc32c(0, p + 8, 8 + (size_t)plen);
    if (crc != wal_get_le32(p + 4))
        return FRAME_BADCRC;
    p += WAL_FRAME_BYTES;
    v->rec.kind = p[0];
    v->rec.flags = p[1];
    v->rec.time_us = (int64_t)wal_get_le64(p + 8);
    v->rec.db = (const char *)p + WAL_PHDR_BYTES;
    v->rec.db_len = db_len;
    v->rec.body = p + WAL_PHDR_BYTES + db_len;
    v->rec.body_len = plen - WAL_PHDR_BYTES - db_len;
    return FRAME_OK;
}

static bool is_intact(const unsigned char *m, uint64_t size, uint64_t off, uint64_t prev_lsn)
{
    struct rec_view v;
    return frame_at(m, size, off, &v) == FRAME_OK && v.lsn > prev_lsn;
}

/* Offset of the first non-zero byte at or after from, or size if there is none.
 * Eight bytes per step: a preallocated segment's zero tail is megabytes long. */
uint64_t wal_next_nonzero(const unsigned char *m, uint64_t size, uint64_t from)
{
    uint64_t off = from;

    while (off < size && (off & 7))
        if (m[off++])
            return off - 1;
    for (; size - off >= 32; off += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, m + off, 8);
        memcpy(&b, m + off + 8, 8);
        memcpy(&c, m + off + 16, 8);
        memcpy(&d, m + off + 24, 8);
        if (a | b | c | d)
            break;
    }
    for (; off < size; off++)
        if (m[off])
            return off;
    return size;
}

/* Find the first intact record at or after from (see the file comment). */
static bool find_intact(const unsigned char *m, uint64_t size, uint64_t from, uint64_t prev_lsn,
                        uint64_t *found)
{
    for (uint64_t off = from; off + WAL_FRAME_BYTES + WAL_PHDR_BYTES <= size; off++) {
        uint32_t plen = wal_get_le32(m + off);
        uint64_t lsn;
        if (plen == 0) {
            /* A run of zeros (preallocated space, unwritten pages) cannot hold a
             * record start until 3 bytes before its next non-zero byte. */
            uint64_t nz = wal_next_nonzero(m, size, off + 4);
            if (nz >= size)
                return false;
            if (nz - 3 > off + 1)
                off = nz - 3 - 1; /* the loop's off++ lands on nz - 3 */
            continue;
        }
        lsn = wal_get_le64(m + off + 8);
        /* Cheap filters first; the CRC runs only on plausible candidates. */
        if (plen < WAL_PHDR_BYTES || plen > size - off - WAL_FRAME_BYTES)
            continue;
        if (lsn <= prev_lsn || lsn - prev_lsn > WAL_RESYNC_LSN_WINDOW)
            continue;
        if (is_intact(m, size, off, prev_lsn)) {
            *found = off;
            return true;
        }
    }
    return false;
}

/* Does the (damaged) stretch at off start like a record newer than prev_lsn: a
 * plausible length, an LSN just above the last good one and, when present, a
 * plausible payload header (reserved 0, db_len within the length)? Stale bytes
 * (old records, or the middle of one) almost never pass all of these. */
static bool looks_like_next(const unsigned char *m, uint64_t size, uint64_t off, uint64_t prev_lsn)
{
    const unsigned char *p = m + off;
    uint32_t plen;
    uint64_t lsn;

    if (size - off < WAL_FRAME_BYTES)
        return true; /* a frame header cut short by the end of the file: an append */
    plen = wal_get_le32(p);
    lsn = wal_get_le64(p + 8);
    if (plen < WAL_PHDR_BYTES || plen > WAL_MAX_PAYLOAD || lsn <= prev_lsn ||
        lsn - prev_lsn > WAL_RESYNC_LSN_WINDOW)
        return false;
    if (size - off < WAL_FRAME_BYTES + WAL_PHDR_BYTES)
        return true;
    return wal_get_le32(p + WAL_FRAME_BYTES + 4) == 0 &&
           (uint32_t)(p[WAL_FRAME_BYTES + 2] | p[WAL_FRAME_BYTES + 3] << 8) <= plen - WAL_PHDR_BYTES;
}

/* Walk the records of one mapped segment. prev_lsn: records must be above it.
 * log_skips: log each skipped stretch (replay does; the open-time check is quiet
 * so each damage is reported once). fn (may be NULL) gets every intact record. */
enum err wal_seg_walk(const char *name, const unsigned char *m, uint64_t size,
                             uint64_t prev_lsn, bool log_skips, wal_replay_fn *fn, void *ctx,
                             struct wal_walk *out, struct errbuf *eb)
{
    uint64_t off = WAL_HDR_BYTES;
    struct wal_walk r = {.end = WAL_HDR_BYTES};

    while (off < size) {
        struct rec_view v;
        enum frame f = frame_at(m, size, off, &v);
        uint64_t next;

        if (f == FRAME_OK && v.lsn > prev_lsn) {
            if (fn) {
                enum err rc = fn(ctx, v.lsn, &v.rec, eb);
                if (rc != ERR_OK)
                    return rc;
            }
            if (!r.first_lsn)
                r.first_lsn = v.lsn;
            r.last_lsn = prev_lsn = v.lsn;
            off += v.total;
            r.end = off;
            continue;
        }
        /* Damage at off. Prefer the record right after a framed one. */
        if (f != FRAME_BAD && off + v.total < size && is_intact(m, size, off + v.total, prev_lsn))
            next = off + v.total;
        else if (!find_intact(m, size, off + 1, prev_lsn, &next)) {
            /* Nothing intact follows: the end of the log. A torn tail if what is
             * there starts like the next record (it was being written: a plausible
             * length and an LSN just above the last good one, or a frame header
             * cut short by the end of the file); otherwise zeros (preallocated
             * space) or stale bytes of the segment's earlier use (recycled), which
             * are not ours to cut, nor damage: records overwrite them. */
            if (wal_next_nonzero(m, size, off) >= size)
                r.zero_tail = true;
            else if (looks_like_next(m, size, off, prev_lsn))
                r.torn = true;
            else
                r.stale_tail = true;
            break;
        }
        r.skipped++;
        if (log_skips)
            log_error("WAL: corrupt record skipped, later records replay", 
                      "segment=%s offset=%" PRIu64 " lsn=%" PRIu64 " reason=%s"
                      " skipped_bytes=%" PRIu64 " after_lsn=%" PRIu64,
                      name, off, f == FRAME_BAD ? (uint64_t)0 : v.lsn,
                      f == FRAME_BAD ? "unframeable" : f == FRAME_BADCRC ? "crc" : "lsn-order",
                      next - off, prev_lsn);
        off = next;
    }
    *out = r;
    return ERR_OK;
}

/* Map a segment read-only and check its header. */
enum err wal_seg_map(const char *path, uint64_t base, int fd, struct wal_map *mp,
                            struct errbuf *eb)
{
    struct stat st;
    void *p;

    if (fstat(fd, &st) != 0)
        return errbuf_set(eb, ERR_IO, "stat WAL segment %s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size < WAL_HDR_BYTES)
        return errbuf_set(eb, ERR_CORRUPT, "WAL segment %s: %lld bytes, shorter than its header",
                          path, (long long)st.st_size);
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return errbuf_set(eb, ERR_IO, "mmap WAL segment %s: %s", path, strerror(errno));
    mp->p = p;
    mp->size = (uint64_t)st.st_size;
    if (memcmp(mp->p, WAL_MAGIC, 8) != 0 || wal_get_le32(mp->p + 8) != WAL_VERSION ||
        wal_get_le32(mp->p + 12) != WAL_HDR_BYTES || wal_get_le64(mp->p + 16) != base) {
        uint32_t version = wal_get_le32(mp->p + 8), hsize = wal_get_le32(mp->p + 12);
        munmap(mp->p, (size_t)mp->size);
        return errbuf_set(eb, ERR_CORRUPT,
                          "WAL segment %s: bad header (magic, version %u, size %u or first_lsn)",
                          path, version, hsize);
    }
    return ERR_OK;
}

