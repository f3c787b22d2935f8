/* wal_int.h - private to src/wal: the on-disk format and segment-level I/O.
 *
 * wal_segment.c knows bytes and files (framing, CRC checks, damage search,
 * atomic segment creation); wal.c knows the log (locking, group commit, LSNs,
 * rotation, checkpoints). Never included from another module. */
#ifndef WAL_WAL_INT_H
#define WAL_WAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wal/wal.h"

#define WAL_MAGIC "ARCWAL\0\0"
#define WAL_VERSION 1u
#define WAL_HDR_BYTES 24u   /* magic 8 + version 4 + header size 4 + first_lsn 8 */
#define WAL_FRAME_BYTES 16u /* payload_len 4 + crc 4 + lsn 8 */
#define WAL_PHDR_BYTES 16u  /* kind 1 + flags 1 + db_len 2 + reserved 4 + time_us 8 */
#define WAL_MAX_PAYLOAD (WAL_PHDR_BYTES + WAL_MAX_DB_BYTES + WAL_MAX_BODY_BYTES)
#define WAL_NAME_DIGITS 20
#define WAL_PATH_MAX 4096
/* A resync candidate's LSN must lie within this distance above the last good one:
 * filters random bytes long before the CRC is computed. */
#define WAL_RESYNC_LSN_WINDOW ((uint64_t)1 << 32)

static inline void wal_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void wal_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t wal_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wal_get_le64(const unsigned char *p)
{
    return (uint64_t)wal_get_le32(p) | (uint64_t)wal_get_le32(p + 4) << 32;
}

/* "{base, 20 digits}.wal" into out. */
void wal_seg_name(uint64_t base, char *out, size_t n);
/* "{dir}/{base, 20 digits}.wal{suffix}" into out (at least WAL_PATH_MAX bytes). */
void wal_seg_path(const char *dir, uint64_t base, const char *suffix, char *out, size_t n);
/* Parse a segment file name (exactly 20 digits + ".wal"). */
bool wal_seg_parse_name(const char *name, uint64_t *base);
/* ENOSPC/EDQUOT -> ERR_NOSPACE, anything else -> ERR_IO. */
enum err wal_errno_err(int e);
/* fsync or fdatasync per mode; -1 with errno on failure (test fault hook aware). */
int wal_fd_sync(enum wal_sync mode, int fd);
enum err wal_dir_fsync(const char *dir, struct errbuf *eb);
/* Write all of iov at off, looping over short writes; modifies iov. 0 or an errno. */
int wal_pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off);
/* Create segment base atomically (tmp + fsync + rename + dir fsync); *fd_out is
 * open O_RDWR at the new file. */
enum err wal_seg_create(const char *dir, uint64_t base, int *fd_out, struct errbuf *eb);
/* Turn the spare file (an old, checkpointed segment) into segment base: header,
 * fdatasync, rename, dir fsync. *fd_out open O_RDWR, *size_out its size. */
enum err wal_seg_recycle(const char *dir, const char *spare, uint64_t base, int *fd_out,
                         uint64_t *size_out, struct errbuf *eb);

/* Offset of the first non-zero byte of m[from, size), size if none. */
uint64_t wal_next_nonzero(const unsigned char *m, uint64_t size, uint64_t from);

/* A segment mapped read-only (wal_seg_map), header checked. munmap(p, size). */
struct wal_map {
    unsigned char *p;
    uint64_t size;
};

/* ERR_CORRUPT: shorter than a header or a header that is not ours for base. */
enum err wal_seg_map(const char *path, uint64_t base, int fd, struct wal_map *mp,
                     struct errbuf *eb);

/* What a walk over one segment found. */
struct wal_walk {
    uint64_t end;       /* end of the last intact record (or the header) */
    uint64_t first_lsn; /* first intact record (0 = none) */
    uint64_t last_lsn;  /* last intact record (0 = none) */
    uint64_t skipped;   /* damaged stretches skipped (intact records after them) */
    bool torn;          /* bytes after `end` are not all zero and hold no intact record */
    bool zero_tail;     /* bytes after `end` are all zero (clean end of a preallocated
                         * segment): neither torn nor damage */
    bool stale_tail;    /* bytes after `end` are not zero but do not start like a newer
                         * record (a recycled segment's old contents): clean end */
};

/* Walk the records of a mapped segment (name is for log lines). Records must have
 * LSN > prev_lsn (at least the segment's first_lsn - 1: a recycled segment's old
 * records are below it). log_skips: log each skipped damaged stretch. fn (may be NULL)
 * gets every intact record; its error stops the walk and is returned. */
enum err wal_seg_walk(const char *name, const unsigned char *m, uint64_t size, uint64_t prev_lsn,
                      bool log_skips, wal_replay_fn *fn, void *ctx, struct wal_walk *out,
                      struct errbuf *eb);

#endif
