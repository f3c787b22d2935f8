/* wal.h - write-ahead log for rows accepted but not yet in Parquet.
 *
 * A write is acknowledged only after its WAL record is as durable as sync_mode
 * promises; on start-up wal_replay() hands every record above the checkpoint back
 * to the caller, which rebuilds the column buffers. Segments are deleted only
 * after a checkpoint says every record in them is in durable Parquet files, and
 * the active segment is never deleted.
 *
 * On disk (little-endian; see docs/wal.md):
 *   segment  {dir}/{first_lsn, 20 digits zero-padded}.wal
 *   header   "ARCWAL\0\0" (8) | u32 version = 1 | u32 header_size = 24 | u64 first_lsn
 *   record   u32 payload_len | u32 crc32c(lsn .. end of payload) | u64 lsn | payload
 *   payload  u8 kind | u8 flags | u16 db_len | u32 reserved (0) | i64 time_us |
 *            db bytes | body bytes
 *   tail     zeros (preallocated) or stale bytes of a recycled segment, up to the end
 *            of the file: the clean end of the log (only bytes that start like the
 *            next record and fail their check are a torn tail)
 * LSNs start at 1 and strictly increase across segments and restarts. A segment's
 * first_lsn is a lower bound of the LSNs inside it and greater than every LSN in
 * the segments before it.
 *
 * Thread: wal_write/wal_wait_durable/wal_append/wal_checkpoint/wal_tick/
 * wal_get_stats/wal_files_json/wal_last_lsn are safe from any thread. wal_open,
 * wal_replay and wal_close run on one thread, replay before any write. */
#ifndef WAL_WAL_H
#define WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct metrics;
struct wal; /* opaque; defined in wal.c */

#define WAL_MAX_BODY_BYTES ((size_t)1 << 30)      /* one record's body; larger: ERR_LIMIT */
#define WAL_MAX_DB_BYTES ((size_t)UINT16_MAX)      /* db name bytes (u16 on disk) */
#define WAL_DEFAULT_SEGMENT_BYTES ((uint64_t)64 << 20) /* max_segment_bytes when 0 */
#define WAL_BACKGROUND_TICK_MS 100                 /* background thread period */
/* Preallocation (wal_opts.preallocate): the background thread keeps the active
 * segment zero-filled this far ahead of its last record, in chunks of
 * WAL_PREALLOC_CHUNK, starting at least WAL_PREALLOC_GAP (at most 1/16 of the
 * segment size) past the last record so that writers rarely meet the filler. It
 * zero-fills only while the file system keeps WAL_PREALLOC_RESERVE (or 1/50 of
 * its size, whichever is more) free after the chunk. */
#define WAL_PREALLOC_AHEAD ((uint64_t)32 << 20)
#define WAL_PREALLOC_CHUNK ((uint64_t)4 << 20)
#define WAL_PREALLOC_GAP ((uint64_t)1 << 20)
#define WAL_PREALLOC_RESERVE ((uint64_t)256 << 20)
/* Checkpointed segments kept (renamed to spare-N.wal.spare) for reuse as later
 * segments instead of zero-filling new files (preallocation on only). */
#define WAL_MAX_SPARES 4

enum wal_sync {
    WAL_SYNC_FSYNC,     /* fsync(2) before an append returns */
    WAL_SYNC_FDATASYNC, /* fdatasync(2) before an append returns (default for the lead) */
    WAL_SYNC_ASYNC      /* written to the OS; a background thread syncs every ~100 ms */
};

struct wal_opts {
    const char *dir;            /* segment directory; created (one level) if missing */
    enum wal_sync sync;         /* durability of an acknowledged append */
    uint64_t max_segment_bytes; /* rotate once the active segment would pass this; 0 = 64 MiB */
    int64_t max_segment_age_ms; /* rotate a non-empty active segment this old; 0 = never */
    struct metrics *metrics;    /* arc_wal_* series are registered here; may be NULL */
    uint64_t next_lsn_hint;     /* LSNs given out are >= this (catalog's highest ever), 0 = none */
    uint64_t checkpoint_lsn;    /* records <= this are already in Parquet: replay skips
                                 * them, LSNs continue above it, covered segments go */
    bool preallocate;           /* zero-fill the active segment ahead of its records in
                                 * the background (WAL_PREALLOC_*): a record then
                                 * overwrites allocated blocks, so its fdatasync flushes
                                 * data pages only, with no file-system journal commit
                                 * for a size change. Segments then end in zeros, which
                                 * open and replay read as the clean end of the log.
                                 * Ignored in async mode (syncs are off the write path). */
};

struct wal_record {
    uint8_t kind;         /* caller-defined: 1 = line protocol, 2 = msgpack, 3 = json ... */
    uint8_t flags;        /* caller-defined, e.g. precision */
    int64_t time_us;      /* server time of the write, so replay decodes identically */
    const char *db;       /* database name bytes (not NUL-terminated on replay) */
    size_t db_len;        /* <= WAL_MAX_DB_BYTES */
    const void *body;     /* record body (may be NULL when body_len == 0) */
    size_t body_len;      /* <= WAL_MAX_BODY_BYTES */
};

struct wal_stats {
    uint64_t appends;         /* records written since open */
    uint64_t bytes;           /* record bytes written since open (framing included) */
    uint64_t syncs;           /* fsync/fdatasync calls made for records (group commits) */
    uint64_t last_lsn;        /* highest LSN written (0 if none ever) */
    uint64_t durable_lsn;     /* every record <= this is synced */
    uint64_t checkpoint_lsn;  /* highest checkpoint seen */
    uint64_t corrupt_records; /* records skipped by replay because they failed their check */
    uint64_t truncated_tails; /* torn tails cut off at open */
    size_t segments;          /* segment files, active one included */
    uint64_t total_bytes;     /* bytes of all segment files (zero-filled space included) */
    uint64_t prealloc_bytes;  /* bytes zero-filled ahead of records since open */
    bool preallocate;         /* zero-filling ahead is on (opts.preallocate, not async) */
    uint64_t spare_bytes;     /* checkpointed segments kept for reuse (0 = none) */
    uint64_t recycled;        /* segments reused instead of created since open */
};

/* Open or create the log in o->dir. Validates the tail of the last segment: a torn
 * or corrupt tail is cut off (ftruncate to the end of the last intact record),
 * logged with segment name and offset, and counted; never fatal. Segments wholly
 * <= o->checkpoint_lsn (except the active one) are deleted. Starts a background
 * thread (async sync, age rotation) when sync == WAL_SYNC_ASYNC or
 * max_segment_age_ms > 0. On success *out owns a new handle (wal_close).
 * ERR_IO: the directory or a segment cannot be read or written; ERR_CORRUPT: the
 * last segment has a header that is not ours (left in place for a human; segments
 * are created atomically, so this is real damage, not a crash). Sealed segments
 * are checked by wal_replay, which skips one with a bad header (logged, counted). */
enum err wal_open(const struct wal_opts *o, struct wal **out, struct errbuf *eb);

/* Stop the background thread, sync the active segment (best effort), free w.
 * Accepts NULL. No call may be running on w. */
void wal_close(struct wal *w);

/* Called by wal_replay for each intact record. rec's pointers are valid only during
 * the call. A non-OK return stops the replay and is returned by wal_replay. */
typedef enum err wal_replay_fn(void *ctx, uint64_t lsn, const struct wal_record *rec,
                               struct errbuf *eb);

/* Call fn for every intact record with LSN > opts.checkpoint_lsn, in LSN order
 * (all segments, oldest first). Allowed once, before the first write (ERR_INVAL
 * otherwise: replaying twice would store rows twice). A corrupt record in the
 * middle of a segment (bad CRC, intact records after it) is skipped with a loud log
 * line (segment, offset, lsn) and counted (corrupt_records and
 * arc_wal_corrupt_records_total); bytes that cannot be framed and are followed by
 * no intact record end that segment's replay (logged, counted). */
enum err wal_replay(struct wal *w, wal_replay_fn *fn, void *ctx, struct errbuf *eb);

/* Write one record at the end of the active segment under the WAL's lock and
 * return its LSN in *lsn. The record is in the OS but not yet synced: call
 * wal_wait_durable(). Rotates first if the segment is full. ERR_LIMIT: db or body
 * too long; ERR_NOSPACE: disk full (the segment is cut back, no partial record
 * remains, a later write may succeed); ERR_IO: other errors, or the log is
 * read-only after a failed sync. A failed write leaves no record. Borrows rec. */
enum err wal_write(struct wal *w, const struct wal_record *rec, uint64_t *lsn,
                   struct errbuf *eb);

/* Block until the record lsn (from wal_write) is as durable as sync_mode promises.
 * Concurrent callers share syncs (group commit): one thread syncs for everyone
 * whose record was written before the sync began. Async mode returns at once.
 * ERR_IO if a sync failed: the log is then read-only (a failed fsync cannot be
 * retried safely) and the record may or may not survive a restart. */
enum err wal_wait_durable(struct wal *w, uint64_t lsn, struct errbuf *eb);

/* wal_write + wal_wait_durable: *lsn is set only once the record is durable. */
enum err wal_append(struct wal *w, const struct wal_record *rec, uint64_t *lsn,
                    struct errbuf *eb);

/* Every record with LSN <= lsn is in durable Parquet files. Deletes the segments
 * whose records are all <= lsn, oldest first, never the active one; *deleted (may
 * be NULL) gets the count. ERR_IO if a file could not be deleted (it stays listed
 * and a later checkpoint retries). */
enum err wal_checkpoint(struct wal *w, uint64_t lsn, size_t *deleted, struct errbuf *eb);

/* Periodic work: rotate the active segment when older than max_segment_age_ms and
 * non-empty; in async mode sync written records. The background thread calls it
 * every WAL_BACKGROUND_TICK_MS; callers may call it too (tests, shutdown). */
void wal_tick(struct wal *w);

void wal_get_stats(struct wal *w, struct wal_stats *out);

/* Append a JSON array of the segments to out:
 * [{"name":"...wal","first_lsn":N,"last_lsn":N,"bytes":N,"file_bytes":N,"active":true}, ...]
 * first_lsn/last_lsn are 0 for a segment with no known record; bytes is the end of
 * the last record (header included) once known (the active segment; sealed ones
 * after replay), else the file size; file_bytes is the file size, zero-filled
 * space included. */
void wal_files_json(struct wal *w, struct buf *out);

/* Highest LSN written (0 if none). */
uint64_t wal_last_lsn(struct wal *w);

/* CRC32C (Castagnoli), standard pre/post inversion: wal_crc32c(0, "123456789", 9)
 * == 0xE3069283. Pass a previous result as crc to continue a running checksum.
 * Uses the SSE4.2 crc32 instruction when the CPU has it. */
uint32_t wal_crc32c(uint32_t crc, const void *p, size_t n);

#ifdef ARC_TESTING
/* Table-driven CRC32C (the fallback), exposed so tests compare both paths. */
uint32_t wal_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* Fault hook: when fail_errno != 0, the next record write writes short_bytes bytes
 * of the record for real and then fails with fail_errno (and the hook clears).
 * fail_sync_errno makes the next sync fail the same way. Tests only. */
struct wal_test_faults {
    int fail_errno;
    size_t short_bytes;
    int fail_sync_errno;
};
extern struct wal_test_faults wal_test_faults;
#endif

#endif
