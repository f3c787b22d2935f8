/* wal.c - segments, append with group commit, replay, rotation and checkpoints.
 *
 * One mutex (mu) orders everything that touches the active segment: a writer
 * takes it, gets the next LSN, writes the whole record with one pwritev at the
 * segment's end and releases it, so file order == LSN order and a record is never
 * interleaved with another. Durability is separate (group commit): a waiter whose
 * LSN is not yet durable either becomes the syncer - it notes target = last_lsn,
 * drops the lock, fdatasyncs the active fd, then publishes durable_lsn = target -
 * or sleeps on cv until the running sync ends. Records written while a sync runs
 * ride on the next one, so N concurrent writers cost far fewer than N syncs.
 * While a sync runs (syncing == true) the active fd must stay open, so rotation
 * waits for it; rotation itself syncs the old segment before sealing it, which
 * keeps the invariant "every sealed segment is fully synced" and lets durable_lsn
 * jump to last_lsn. A failed write is cut back with ftruncate (no partial record
 * survives); a failed sync makes the log read-only (after a failed fsync Linux may
 * have dropped the dirty pages, so a retry could falsely succeed).
 *
 * Bytes and files (format, framing, damage search, atomic segment creation) live
 * in wal_segment.c; this file is the log: LSNs, locking, group commit, rotation,
 * replay order and checkpoints. See docs/wal.md for the format and the reasons. */
#include "wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "wal/wal_int.h"

struct seg {
    uint64_t base_lsn;  /* from the name and header: lower bound of LSNs inside */
    uint64_t first_lsn; /* first record known (0 = none known) */
    uint64_t last_lsn;  /* last record known (0 = none known) */
    uint64_t bytes;     /* end of the last record (the active segment's write offset);
                         * the file size until known */
    uint64_t file_bytes; /* file size: records plus zero-filled space (preallocation) */
};

struct wal {
    char *dir;
    enum wal_sync sync;
    uint64_t max_segment_bytes;
    int64_t max_segment_age_ms;

    pthread_mutex_t mu;   /* guards every field below */
    pthread_cond_t cv;    /* broadcast when a sync ends */
    struct seg *segs;     /* oldest first; segs[nsegs - 1] is the active one; nsegs >= 1 */
    size_t nsegs, cap_segs;
    int fd;               /* active segment, O_RDWR */
    int64_t active_since_ns; /* monotonic time the active segment was opened/created */
    uint64_t next_lsn;    /* LSN of the next record written */
    uint64_t last_lsn;    /* highest LSN written (next_lsn - 1) */
    uint64_t durable_lsn; /* every record <= this is synced; <= last_lsn */
    uint64_t checkpoint_lsn;
    bool syncing;         /* a thread is syncing fd with mu released */
    bool prealloc;        /* opts.preallocate */
    bool zeroing;         /* bg thread writes zeros to fd at [zero_from, zero_to), mu released */
    uint64_t zero_from, zero_to;
    int64_t prealloc_retry_ns; /* no zero-filling before this (no room, or a write failed) */
    uint64_t prealloc_bytes;
    /* Checkpointed segments kept for reuse (preallocation on only): slot i is the
     * file {dir}/spare-i.wal.spare of spare_bytes[i] bytes, 0 = empty slot. */
    uint64_t spare_bytes[WAL_MAX_SPARES];
    uint64_t recycled;    /* segments reused since open */
    bool broken;          /* a sync failed: writes refused until restart */
    bool replayed;        /* wal_replay ran */
    bool written;         /* a write was attempted: replay is no longer allowed */
    uint64_t appends, bytes, syncs, corrupt_records, truncated_tails;

    struct metric *m_appends, *m_bytes, *m_syncs, *m_corrupt, *m_tails, *m_errors;
    struct metric *m_segments, *m_last_lsn, *m_durable_lsn;

    pthread_t bg;         /* background thread (async sync, age rotation, zero-filling) */
    bool has_bg, stop_bg;
    bool bg_waiting;      /* the bg thread sleeps on bg_cv (a writer may wake it) */
    bool prealloc_warned; /* "no room to zero-fill" was logged */
    pthread_cond_t bg_cv; /* CLOCK_MONOTONIC; signalled to stop the thread */
};

static void madd(struct metric *m, uint64_t v)
{
    if (m)
        metric_add(m, v);
}

static void mset(struct metric *m, int64_t v)
{
    if (m)
        metric_set(m, v);
}

static void spare_path(const struct wal *w, int i, char *out, size_t n)
{
    snprintf(out, n, "%s/spare-%d.wal.spare", w->dir, i);
}

static void segs_push(struct wal *w, uint64_t base, uint64_t bytes)
{
    if (w->nsegs == w->cap_segs) {
        w->cap_segs = w->cap_segs ? w->cap_segs * 2 : 16;
        w->segs = xreallocarray(w->segs, w->cap_segs, sizeof(*w->segs));
    }
    w->segs[w->nsegs++] = (struct seg){.base_lsn = base, .bytes = bytes, .file_bytes = bytes};
}

/* The active fd is in use with mu released (a group sync, or the zero-filler):
 * it must not be closed (rotation) until this is false. */
static bool fd_busy(const struct wal *w)
{
    return w->syncing || w->zeroing;
}

/* ---- rotation and sync (mu held) ------------------------------------------- */

static void set_broken(struct wal *w, const char *what, int e)
{
    w->broken = true;
    madd(w->m_errors, 1);
    log_error("WAL sync failed: the log is read-only until restart", "op=%s error=\"%s\"", what,
              strerror(e));
    pthread_cond_broadcast(&w->cv);
}

/* Seal the active segment (synced) and start a new one at next_lsn. Requires
 * !syncing so the old fd is not in use. On failure the old segment stays active. */
static enum err rotate(struct wal *w, struct errbuf *eb)
{
    char name[64];
    enum err rc = ERR_IO;
    uint64_t size = WAL_HDR_BYTES;
    int fd = -1;

    if (wal_fd_sync(w->sync, w->fd) != 0) {
        int e = errno;
        set_broken(w, "rotate", e);
        return errbuf_set(eb, ERR_IO, "sync WAL segment before rotation: %s", strerror(e));
    }
    w->syncs++;
    madd(w->m_syncs, 1);
    w->durable_lsn = w->last_lsn;
    mset(w->m_durable_lsn, (int64_t)w->durable_lsn);
    for (int i = WAL_MAX_SPARES - 1; i >= 0 && rc != ERR_OK; i--) {
        /* Reuse a checkpointed segment: its blocks are allocated and written, so
         * records overwrite them as they do zero-filled space, with no zeros to
         * write first. Its old records read as the end of the log. */
        char spare[WAL_PATH_MAX];
        struct errbuf reb;
        if (!w->spare_bytes[i])
            continue;
        spare_path(w, i, spare, sizeof(spare));
        errbuf_init(&reb);
        w->spare_bytes[i] = 0;
        rc = wal_seg_recycle(w->dir, spare, w->next_lsn, &fd, &size, &reb);
        if (rc != ERR_OK) {
            log_warn("WAL: cannot reuse a recycled segment, creating one", "error=\"%s\"",
                     reb.msg);
            unlink(spare);
        } else {
            w->recycled++;
        }
    }
    if (rc != ERR_OK) {
        rc = wal_seg_create(w->dir, w->next_lsn, &fd, eb);
        if (rc != ERR_OK)
            return rc;
        size = WAL_HDR_BYTES;
    }
    close(w->fd);
    w->fd = fd;
    segs_push(w, w->next_lsn, WAL_HDR_BYTES);
    w->segs[w->nsegs - 1].file_bytes = size;
    w->active_since_ns = clock_mono_ns();
    mset(w->m_segments, (int64_t)w->nsegs);
    pthread_cond_broadcast(&w->cv); /* durable_lsn moved */
    wal_seg_name(w->next_lsn, name, sizeof(name));
    log_debug("WAL segment rotated", "segment=%s", name);
    return ERR_OK;
}

/* One group-commit round: sync the active fd for every record written so far.
 * Called and returns with mu held; drops it during the sync. */
static void sync_round(struct wal *w)
{
    uint64_t target = w->last_lsn;
    int fd = w->fd, r, e;

    w->syncing = true;
    pthread_mutex_unlock(&w->mu);
    r = wal_fd_sync(w->sync, fd);
    e = errno;
    pthread_mutex_lock(&w->mu);
    w->syncing = false;
    if (r == 0) {
        w->syncs++;
        madd(w->m_syncs, 1);
        if (target > w->durable_lsn) {
            w->durable_lsn = target;
            mset(w->m_durable_lsn, (int64_t)target);
        }
        pthread_cond_broadcast(&w->cv);
    } else {
        set_broken(w, "sync", e);
    }
}

/* ---- preallocation (background thread, mu held) ------------------------------
 *
 * The active segment is zero-filled ahead of its last record, chunk by chunk, by
 * the background thread: a record then overwrites blocks that are allocated and
 * initialised, so its fdatasync writes data pages only; appending past the end
 * of the file also makes every fdatasync write the file's metadata (the size
 * changed, new blocks: an inode write, or with a journal a journal commit that
 * queues behind other files' writes). With recycling (checkpoint_locked keeps a
 * covered segment as the next one) most segments need no zeros at all. The
 * filler never touches the range records go to: it starts at
 * least a gap past the last record, and a writer that would reach the range being
 * zeroed waits for it (zeroing). After each chunk it syncs the file as one group
 * commit round (sync_round): one sync at a time on the fd, so a failure is seen
 * by the round that publishes durable_lsn (fsyncgate) and makes the log
 * read-only like any failed sync. A crash leaves zeros (or a hole) after the
 * last record, which open and replay read as the clean end of the log. */

static unsigned char zero_block[1 << 20]; /* never written: .bss, not the binary */

/* The range to zero-fill next in the active segment so that the space ready
 * after its last record reaches `ahead` (capped at the segment size): [*from,
 * *to), at most one chunk, starting a gap after the last record. False when
 * enough is ready or the filler may not run now. */
static bool prealloc_range(const struct wal *w, uint64_t ahead, uint64_t *from, uint64_t *to)
{
    const struct seg *s = &w->segs[w->nsegs - 1];
    uint64_t gap = w->max_segment_bytes / 16, target = s->bytes + ahead, f;

    if (!w->prealloc || w->broken || fd_busy(w))
        return false;
    if (gap > WAL_PREALLOC_GAP)
        gap = WAL_PREALLOC_GAP;
    if (target > w->max_segment_bytes)
        target = w->max_segment_bytes;
    f = s->file_bytes > s->bytes + gap ? s->file_bytes : s->bytes + gap;
    if (f >= target)
        return false;
    *from = f;
    *to = target - f > WAL_PREALLOC_CHUNK ? f + WAL_PREALLOC_CHUNK : target;
    return !w->prealloc_retry_ns || clock_mono_ns() >= w->prealloc_retry_ns;
}

/* Is less than half the runway ready? (a writer then wakes the filler) */
static bool prealloc_wanted(const struct wal *w)
{
    uint64_t from, to;
    return prealloc_range(w, WAL_PREALLOC_AHEAD / 2, &from, &to);
}

/* The next range to zero-fill, if any, and if the file system has room. */
static bool prealloc_plan(struct wal *w, uint64_t *from, uint64_t *to)
{
    struct statvfs sv;

    if (w->stop_bg || !prealloc_range(w, WAL_PREALLOC_AHEAD, from, to))
        return false;
    if (fstatvfs(w->fd, &sv) == 0) {
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        uint64_t reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 50;
        if (reserve < WAL_PREALLOC_RESERVE)
            reserve = WAL_PREALLOC_RESERVE;
        if (avail < reserve + (*to - *from)) {
            if (!w->prealloc_warned)
                log_info("WAL: not zero-filling ahead, the file system is nearly full "
                         "(records are appended; retried every second)",
                         "dir=%s free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64, w->dir, avail,
                         reserve);
            w->prealloc_warned = true;
            w->prealloc_retry_ns = clock_mono_ns() + 1000000000LL;
            return false;
        }
    }
    return true;
}

/* Zero-fill ahead until enough is ready (or stop, or an error). */
static void prealloc_run(struct wal *w)
{
    uint64_t from, to;

    while (prealloc_plan(w, &from, &to)) {
        struct seg *s;
        uint64_t off = from;
        int fd = w->fd, e = 0;

        w->zeroing = true;
        w->zero_from = from;
        w->zero_to = to;
        pthread_mutex_unlock(&w->mu);
        while (off < to) {
            size_t n = to - off < sizeof(zero_block) ? (size_t)(to - off) : sizeof(zero_block);
            ssize_t k = pwrite(fd, zero_block, n, (off_t)off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                e = k < 0 ? errno : EIO;
                break;
            }
            off += (uint64_t)k;
        }
        pthread_mutex_lock(&w->mu);
        w->zeroing = false;
        pthread_cond_broadcast(&w->cv);
        s = &w->segs[w->nsegs - 1]; /* still the same segment: rotation waits for us */
        if (off > s->file_bytes)
            s->file_bytes = off;
        w->prealloc_bytes += off - from;
        if (e) {
            /* Zeros past the records are harmless; records are appended instead. */
            log_warn("WAL: zero-filling ahead failed, retrying in 10 s", "dir=%s error=\"%s\"",
                     w->dir, strerror(e));
            w->prealloc_retry_ns = clock_mono_ns() + 10000000000LL;
            return;
        }
        /* Commit the allocation (and everyone's records) before records land there. */
        while (w->syncing)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->broken)
            return;
        sync_round(w);
        if (w->broken)
            return;
    }
}

/* ---- open / close ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* List segment bases in dir (sorted), removing leftover .tmp files. */
static enum err list_segments(struct wal *w, uint64_t **out, size_t *n_out, struct errbuf *eb)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d = opendir(w->dir);

    if (!d)
        return errbuf_set(eb, ERR_IO, "open WAL dir %s: %s", w->dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        uint64_t base;
        if (len > 8 && strcmp(de->d_name + len - 8, ".wal.tmp") == 0) {
            /* A crash during seg_create: never held a record. */
            char path[WAL_PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", w->dir, de->d_name);
            log_info("WAL: removing unfinished segment", "file=%s", path);
            unlink(path);
            continue;
        }
        if (len > 10 && strcmp(de->d_name + len - 10, ".wal.spare") == 0) {
            /* A checkpointed segment kept for reuse (renamed whole: complete):
             * adopted into its slot, or deleted (preallocation off, odd name). */
            char path[WAL_PATH_MAX];
            struct stat st;
            int i = -1, k = 0;
            snprintf(path, sizeof(path), "%s/%s", w->dir, de->d_name);
            char canon[WAL_PATH_MAX];
            if (sscanf(de->d_name, "spare-%d.wal.spare%n", &i, &k) == 1 && k == (int)len &&
                i >= 0 && i < WAL_MAX_SPARES && !w->spare_bytes[i])
                spare_path(w, i, canon, sizeof(canon));
            else
                canon[0] = 0;
            if (w->prealloc && strcmp(canon, path) == 0 && stat(path, &st) == 0 &&
                st.st_size >= WAL_HDR_BYTES)
                w->spare_bytes[i] = (uint64_t)st.st_size;
            else
                unlink(path);
            continue;
        }
        if (!wal_seg_parse_name(de->d_name, &base))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = base;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_u64);
    *out = v;
    *n_out = n;
    return ERR_OK;
}

/* Check the last segment: cut a torn tail, learn its LSNs, open it for writing. */
static enum err open_active(struct wal *w, struct errbuf *eb)
{
    struct seg *s = &w->segs[w->nsegs - 1];
    char path[WAL_PATH_MAX], name[64];
    struct wal_walk r;
    struct wal_map mp;
    enum err rc;
    int fd;

    wal_seg_path(w->dir, s->base_lsn, "", path, sizeof(path));
    wal_seg_name(s->base_lsn, name, sizeof(name));
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "open WAL segment %s: %s", path, strerror(errno));
    rc = wal_seg_map(path, s->base_lsn, fd, &mp, eb);
    if (rc != ERR_OK)
        goto fail_close;
    rc = wal_seg_walk(name, mp.p, mp.size, s->base_lsn ? s->base_lsn - 1 : 0, false, NULL, NULL,
                      &r, eb);
    munmap(mp.p, (size_t)mp.size);
    if (rc != ERR_OK)
        goto fail_close;
    if (r.stale_tail)
        log_info("WAL: the active segment's records end before bytes of its earlier use "
                 "(recycled segment); records go on there",
                 "segment=%s offset=%" PRIu64 " last_lsn=%" PRIu64, name, r.end, r.last_lsn);
    if (r.torn) {
        log_warn("WAL: torn or corrupt tail cut off", "segment=%s offset=%" PRIu64
                 " size=%" PRIu64 " cut_bytes=%" PRIu64 " last_lsn=%" PRIu64,
                 name, r.end, mp.size, mp.size - r.end, r.last_lsn);
        if (ftruncate(fd, (off_t)r.end) != 0 || fsync(fd) != 0) {
            rc = errbuf_set(eb, ERR_IO, "cut torn tail of WAL segment %s at %" PRIu64 ": %s",
                            path, r.end, strerror(errno));
            goto fail_close;
        }
        w->truncated_tails++;
        madd(w->m_tails, 1);
        mp.size = r.end;
    }
    s->bytes = r.end; /* a zero tail (preallocated space) stays, records overwrite it */
    s->file_bytes = mp.size;
    s->first_lsn = r.first_lsn;
    s->last_lsn = r.last_lsn;
    w->fd = fd;
    return ERR_OK;

fail_close:
    close(fd);
    return rc;
}

static void register_metrics(struct wal *w, struct metrics *m)
{
    if (!m)
        return;
    w->m_appends = metrics_counter(m, "arc_wal_appends_total", "WAL records written", NULL);
    w->m_bytes = metrics_counter(m, "arc_wal_bytes_total", "WAL record bytes written", NULL);
    w->m_syncs = metrics_counter(m, "arc_wal_syncs_total", "WAL fsync/fdatasync calls", NULL);
    w->m_corrupt = metrics_counter(m, "arc_wal_corrupt_records_total",
                                   "WAL records skipped at replay because they failed a check",
                                   NULL);
    w->m_tails = metrics_counter(m, "arc_wal_truncated_tails_total",
                                 "torn WAL tails cut off at open", NULL);
    w->m_errors = metrics_counter(m, "arc_wal_write_errors_total",
                                  "WAL writes or syncs that failed", NULL);
    w->m_segments = metrics_gauge(m, "arc_wal_segments", "WAL segment files", NULL);
    w->m_last_lsn = metrics_gauge(m, "arc_wal_last_lsn", "highest WAL LSN written", NULL);
    w->m_durable_lsn = metrics_gauge(m, "arc_wal_durable_lsn", "highest synced WAL LSN", NULL);
}

/* Every WAL_BACKGROUND_TICK_MS: wal_tick (async sync, age rotation). In between,
 * and whenever a writer wakes it: zero-fill ahead (preallocation). */
static void *bg_main(void *arg)
{
    struct wal *w = arg;
    const int64_t tick_ns = (int64_t)WAL_BACKGROUND_TICK_MS * 1000000;
    int64_t next_tick = clock_mono_ns() + tick_ns;

    pthread_mutex_lock(&w->mu);
    while (!w->stop_bg) {
        struct timespec ts;
        int64_t now;

        prealloc_run(w);
        if (w->stop_bg)
            break;
        now = clock_mono_ns();
        if (now >= next_tick) {
            next_tick = now + tick_ns;
            pthread_mutex_unlock(&w->mu);
            wal_tick(w);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        ts.tv_sec = (time_t)(next_tick / 1000000000);
        ts.tv_nsec = (long)(next_tick % 1000000000);
        w->bg_waiting = true;
        pthread_cond_timedwait(&w->bg_cv, &w->mu, &ts);
        w->bg_waiting = false;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static enum err checkpoint_locked(struct wal *w, size_t *deleted, struct errbuf *eb);

enum err wal_open(const struct wal_opts *o, struct wal **out, struct errbuf *eb)
{
    uint64_t *bases = NULL, next, tail_last = 0;
    size_t nbases = 0;
    pthread_condattr_t ca;
    struct wal *w;
    enum err rc;

    if (!o || !o->dir || !o->dir[0])
        return errbuf_set(eb, ERR_INVAL, "WAL: no directory given");
    if (strlen(o->dir) > WAL_PATH_MAX - 64)
        return errbuf_set(eb, ERR_LIMIT, "WAL dir path too long (%zu bytes)", strlen(o->dir));
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
        return errbuf_set(eb, ERR_IO, "create WAL dir %s: %s", o->dir, strerror(errno));

    w = xcalloc(1, sizeof(*w));
    w->dir = xstrdup(o->dir);
    w->sync = o->sync;
    w->max_segment_bytes = o->max_segment_bytes ? o->max_segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
    w->max_segment_age_ms = o->max_segment_age_ms;
    w->checkpoint_lsn = o->checkpoint_lsn;
    /* Only syncs on the acknowledgement path gain from it; async syncs ten times
     * a second and would only write the bytes twice. */
    w->prealloc = o->preallocate && o->sync != WAL_SYNC_ASYNC;
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->bg_cv, &ca);
    pthread_condattr_destroy(&ca);
    register_metrics(w, o->metrics);

    rc = list_segments(w, &bases, &nbases, eb);
    if (rc != ERR_OK)
        goto fail_free;
    for (size_t i = 0; i < nbases; i++) {
        char path[WAL_PATH_MAX];
        struct stat st;
        wal_seg_path(w->dir, bases[i], "", path, sizeof(path));
        if (stat(path, &st) != 0) {
            rc = errbuf_set(eb, ERR_IO, "stat WAL segment %s: %s", path, strerror(errno));
            goto fail_free;
        }
        segs_push(w, bases[i], (uint64_t)st.st_size);
    }
    free(bases);

    next = 1;
    if (o->next_lsn_hint > next)
        next = o->next_lsn_hint;
    if (o->checkpoint_lsn >= next)
        next = o->checkpoint_lsn + 1;
    if (w->nsegs > 0) {
        rc = open_active(w, eb);
        if (rc != ERR_OK)
            goto fail_free;
        tail_last = w->segs[w->nsegs - 1].last_lsn;
        if (w->segs[w->nsegs - 1].base_lsn > next)
            next = w->segs[w->nsegs - 1].base_lsn;
        if (tail_last >= next)
            next = tail_last + 1;
    } else {
        rc = wal_seg_create(w->dir, next, &w->fd, eb);
        if (rc != ERR_OK)
            goto fail_free;
        segs_push(w, next, WAL_HDR_BYTES);
    }
    w->next_lsn = next;
    w->last_lsn = next - 1;
    w->durable_lsn = w->last_lsn; /* everything on disk now was synced or cut */
    w->active_since_ns = clock_mono_ns();
    mset(w->m_segments, (int64_t)w->nsegs);
    mset(w->m_last_lsn, (int64_t)w->last_lsn);
    mset(w->m_durable_lsn, (int64_t)w->durable_lsn);

    if (w->checkpoint_lsn > 0) {
        pthread_mutex_lock(&w->mu);
        checkpoint_locked(w, NULL, NULL); /* failures are logged and retried later */
        pthread_mutex_unlock(&w->mu);
    }

    if (w->sync == WAL_SYNC_ASYNC || w->max_segment_age_ms > 0 || w->prealloc) {
        if (pthread_create(&w->bg, NULL, bg_main, w) != 0) {
            rc = errbuf_set(eb, ERR_INTERNAL, "WAL: cannot start background thread");
            goto fail_free;
        }
        w->has_bg = true;
    }
    log_info("WAL opened", "dir=%s segments=%zu next_lsn=%" PRIu64 " sync=%s preallocate=%s",
             w->dir, w->nsegs, w->next_lsn,
             w->sync == WAL_SYNC_FSYNC ? "fsync" : w->sync == WAL_SYNC_ASYNC ? "async" : "fdatasync",
             w->prealloc ? "on" : "off");
    *out = w;
    return ERR_OK;

fail_free:
    if (w->fd >= 0)
        close(w->fd);
    pthread_cond_destroy(&w->bg_cv);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->segs);
    free(w->dir);
    free(w);
    return rc;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->has_bg) {
        pthread_mutex_lock(&w->mu);
        w->stop_bg = true;
        pthread_cond_signal(&w->bg_cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->bg, NULL);
    }
    if (w->fd >= 0) {
        /* Async mode promised only "written to the OS"; a clean close syncs anyway. */
        if (!w->broken && w->durable_lsn < w->last_lsn &&
            (w->sync == WAL_SYNC_FSYNC ? fsync(w->fd) : fdatasync(w->fd)) != 0)
            log_warn("WAL: final sync failed", "dir=%s error=\"%s\"", w->dir, strerror(errno));
        close(w->fd);
    }
    pthread_cond_destroy(&w->bg_cv);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->segs);
    free(w->dir);
    free(w);
}

/* ---- replay ----------------------------------------------------------------- */

struct replay_ctx {
    wal_replay_fn *fn;
    void *ctx;
    uint64_t skip_upto; /* checkpoint: records <= this are in Parquet already */
};

static enum err replay_one(void *ctx, uint64_t lsn, const struct wal_record *rec,
                           struct errbuf *eb)
{
    struct replay_ctx *rc = ctx;
    if (lsn <= rc->skip_upto)
        return ERR_OK;
    return rc->fn(rc->ctx, lsn, rec, eb);
}

enum err wal_replay(struct wal *w, wal_replay_fn *fn, void *ctx, struct errbuf *eb)
{
    struct replay_ctx rctx = {fn, ctx, 0};
    uint64_t prev = 0;
    size_t nsegs;

    pthread_mutex_lock(&w->mu);
    if (w->replayed || w->written) {
        pthread_mutex_unlock(&w->mu);
        return errbuf_set(eb, ERR_INVAL, "WAL replay runs once, before the first write");
    }
    w->replayed = true;
    rctx.skip_upto = w->checkpoint_lsn;
    nsegs = w->nsegs;
    pthread_mutex_unlock(&w->mu);

    /* Single-threaded by contract (before any write), so the segment list is
     * stable; the active segment is read through its own mapping. */
    for (size_t i = 0; i < nsegs; i++) {
        struct seg *s = &w->segs[i];
        char path[WAL_PATH_MAX], name[64];
        struct errbuf leb;
        struct wal_walk r;
        struct wal_map mp;
        enum err rc;
        int fd;

        wal_seg_path(w->dir, s->base_lsn, "", path, sizeof(path));
        wal_seg_name(s->base_lsn, name, sizeof(name));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errbuf_set(eb, ERR_IO, "open WAL segment %s: %s", path, strerror(errno));
        errbuf_init(&leb);
        rc = wal_seg_map(path, s->base_lsn, fd, &mp, &leb);
        close(fd);
        if (rc == ERR_CORRUPT) {
            /* A sealed segment with a damaged header: its records cannot be trusted
             * to be ours. Loud, counted, the rest replays. */
            log_error("WAL: segment skipped at replay", "segment=%s error=\"%s\"", name, leb.msg);
            pthread_mutex_lock(&w->mu);
            w->corrupt_records++;
            madd(w->m_corrupt, 1);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (rc != ERR_OK)
            return errbuf_set(eb, rc, "%s", leb.msg);
        if (s->base_lsn && prev < s->base_lsn - 1)
            prev = s->base_lsn - 1; /* a recycled segment's old records are below it */
        rc = wal_seg_walk(name, mp.p, mp.size, prev, true, replay_one, &rctx, &r, eb);
        munmap(mp.p, (size_t)mp.size);
        if (rc != ERR_OK)
            return rc;
        pthread_mutex_lock(&w->mu);
        w->corrupt_records += r.skipped;
        madd(w->m_corrupt, r.skipped);
        if (r.torn && i + 1 < nsegs) {
            /* Sealed segments were synced before sealing: a torn end is damage. */
            w->corrupt_records++;
            madd(w->m_corrupt, 1);
            log_error("WAL: unframeable bytes end a sealed segment's replay",
                      "segment=%s offset=%" PRIu64 " size=%" PRIu64 " last_lsn=%" PRIu64, name,
                      r.end, mp.size, r.last_lsn);
        }
        s->first_lsn = r.first_lsn;
        s->last_lsn = r.last_lsn;
        if (i + 1 < nsegs)
            s->bytes = r.end;
        pthread_mutex_unlock(&w->mu);
        if (r.last_lsn)
            prev = r.last_lsn;
    }
    return ERR_OK;
}

/* ---- write path ------------------------------------------------------------- */

enum err wal_write(struct wal *w, const struct wal_record *rec, uint64_t *lsn,
                   struct errbuf *eb)
{
    unsigned char hdr[WAL_FRAME_BYTES + WAL_PHDR_BYTES];
    struct iovec iov[3];
    struct seg *s;
    uint64_t total, l;
    uint32_t crc, plen;
    enum err rc;
    int e;

    if (rec->db_len > WAL_MAX_DB_BYTES)
        return errbuf_set(eb, ERR_LIMIT, "WAL record: database name of %zu bytes (max %zu)",
                          rec->db_len, WAL_MAX_DB_BYTES);
    if (rec->body_len > WAL_MAX_BODY_BYTES)
        return errbuf_set(eb, ERR_LIMIT, "WAL record: body of %zu bytes (max %zu)",
                          rec->body_len, WAL_MAX_BODY_BYTES);
    plen = (uint32_t)(WAL_PHDR_BYTES + rec->db_len + rec->body_len);
    total = WAL_FRAME_BYTES + (uint64_t)plen;

    pthread_mutex_lock(&w->mu);
    w->written = true;
    for (;;) {
        if (w->broken) {
            rc = errbuf_set(eb, ERR_IO, "WAL is read-only after a failed sync (restart needed)");
            goto out_unlock;
        }
        s = &w->segs[w->nsegs - 1];
        if (s->bytes <= WAL_HDR_BYTES || s->bytes + total <= w->max_segment_bytes) {
            /* The filler never writes where records go: wait if this one would
             * reach the range it is zeroing (rare: it works ahead with a gap). */
            if (w->zeroing && s->bytes + total > w->zero_from) {
                pthread_cond_wait(&w->cv, &w->mu);
                continue;
            }
            break;
        }
        if (fd_busy(w)) { /* the syncer or filler uses the active fd: wait */
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        rc = rotate(w, eb);
        if (rc != ERR_OK) {
            madd(w->m_errors, 1);
            goto out_unlock;
        }
    }

    l = w->next_lsn;
    wal_put_le32(hdr, plen);
    wal_put_le64(hdr + 8, l);
    hdr[16] = rec->kind;
    hdr[17] = rec->flags;
    hdr[18] = (unsigned char)(rec->db_len & 0xff);
    hdr[19] = (unsigned char)(rec->db_len >> 8);
    wal_put_le32(hdr + 20, 0);
    wal_put_le64(hdr + 24, (uint64_t)rec->time_us);
    crc = wal_crc32c(0, hdr + 8, 8 + WAL_PHDR_BYTES);
    crc = wal_crc32c(crc, rec->db, rec->db_len);
    crc = wal_crc32c(crc, rec->body, rec->body_len);
    wal_put_le32(hdr + 4, crc);
    iov[0] = (struct iovec){hdr, sizeof(hdr)};
    iov[1] = (struct iovec){(void *)rec->db, rec->db_len};
    iov[2] = (struct iovec){(void *)rec->body, rec->body_len};

    e = wal_pwritev_all(w->fd, iov, 3, s->bytes);
    if (e != 0) {
        madd(w->m_errors, 1);
        /* Cut back so no partial record remains; replay would cut it anyway, but a
         * later record written after it must not land behind garbage. */
        if (ftruncate(w->fd, (off_t)s->bytes) != 0) {
            int te = errno;
            if (s->file_bytes < s->bytes + total)
                s->file_bytes = s->bytes + total; /* unknown; at most this */
            set_broken(w, "ftruncate", te);
            rc = errbuf_set(eb, ERR_IO, "WAL write failed (%s) and cutting it back failed: %s",
                            strerror(e), strerror(te));
            goto out_unlock;
        }
        s->file_bytes = s->bytes; /* zero-filled space after it went too; refilled later */
        rc = errbuf_set(eb, wal_errno_err(e), "WAL write of %" PRIu64 " bytes to %s: %s", total,
                        w->dir, strerror(e));
        goto out_unlock;
    }
    s->bytes += total;
    if (s->bytes > s->file_bytes)
        s->file_bytes = s->bytes; /* appended past the zero-filled space */
    if (w->prealloc && w->bg_waiting && prealloc_wanted(w))
        pthread_cond_signal(&w->bg_cv);
    if (!s->first_lsn)
        s->first_lsn = l;
    s->last_lsn = l;
    w->next_lsn = l + 1;
    w->last_lsn = l;
    w->appends++;
    w->bytes += total;
    madd(w->m_appends, 1);
    madd(w->m_bytes, total);
    mset(w->m_last_lsn, (int64_t)l);
    *lsn = l;
    rc = ERR_OK;

out_unlock:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

enum err wal_wait_durable(struct wal *w, uint64_t lsn, struct errbuf *eb)
{
    enum err rc = ERR_OK;

    if (w->sync == WAL_SYNC_ASYNC)
        return ERR_OK; /* written to the OS is the promise; bg thread syncs */
    pthread_mutex_lock(&w->mu);
    if (lsn > w->last_lsn) {
        pthread_mutex_unlock(&w->mu);
        return errbuf_set(eb, ERR_INVAL, "WAL: LSN %" PRIu64 " was never written", lsn);
    }
    while (w->durable_lsn < lsn) {
        if (w->broken) {
            rc = errbuf_set(eb, ERR_IO, "WAL sync failed: record %" PRIu64 " is not durable",
                            lsn);
            break;
        }
        if (!w->syncing)
            sync_round(w);
        else
            pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

enum err wal_append(struct wal *w, const struct wal_record *rec, uint64_t *lsn,
                    struct errbuf *eb)
{
    uint64_t l;
    enum err rc = wal_write(w, rec, &l, eb);
    if (rc != ERR_OK)
        return rc;
    rc = wal_wait_durable(w, l, eb);
    if (rc != ERR_OK)
        return rc;
    *lsn = l;
    return ERR_OK;
}

/* ---- checkpoint, tick, introspection --------------------------------------- */

/* Keep sealed segment s as a spare instead of deleting it? Only with
 * preallocation (then writes into it need no zero-filling), WAL_MAX_SPARES at
 * most, a file big enough to matter, and while the file system has room to spare.
 * Returns the free slot, or -1. */
static int may_recycle(const struct wal *w, const struct seg *s)
{
    struct statvfs sv;
    uint64_t reserve;
    int slot = -1;

    for (int i = 0; i < WAL_MAX_SPARES && slot < 0; i++)
        if (!w->spare_bytes[i])
            slot = i;
    if (!w->prealloc || slot < 0 || w->broken || s->file_bytes < w->max_segment_bytes / 2)
        return -1;
    if (fstatvfs(w->fd, &sv) != 0)
        return false;
    reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 50;
    if (reserve < WAL_PREALLOC_RESERVE)
        reserve = WAL_PREALLOC_RESERVE;
    return (uint64_t)sv.f_bavail * sv.f_frsize >= reserve ? slot : -1;
}

static enum err checkpoint_locked(struct wal *w, size_t *deleted, struct errbuf *eb)
{
    size_t n = 0;
    enum err rc = ERR_OK;

    /* Never the active segment (nsegs - 1); oldest first, so bounds only grow. */
    while (w->nsegs > 1) {
        struct seg *s = &w->segs[0];
        uint64_t bound = w->segs[1].base_lsn - 1; /* every LSN in s is below the next base */
        char path[WAL_PATH_MAX], spare[WAL_PATH_MAX];
        int slot;

        if (s->last_lsn > bound)
            bound = s->last_lsn;
        if (bound > w->checkpoint_lsn)
            break;
        wal_seg_path(w->dir, s->base_lsn, "", path, sizeof(path));
        slot = may_recycle(w, s);
        if (slot >= 0)
            spare_path(w, slot, spare, sizeof(spare));
        if (slot >= 0 && rename(path, spare) == 0) {
            /* Kept as a later segment's file (no dir fsync needed: after a crash
             * either name is fine, an old covered segment is deleted again). */
            w->spare_bytes[slot] = s->file_bytes;
        } else if (unlink(path) != 0 && errno != ENOENT) {
            rc = errbuf_set(eb, ERR_IO, "delete WAL segment %s: %s", path, strerror(errno));
            log_warn("WAL: cannot delete checkpointed segment", "file=%s error=\"%s\"", path,
                     strerror(errno));
            break;
        }
        memmove(&w->segs[0], &w->segs[1], (w->nsegs - 1) * sizeof(*w->segs));
        w->nsegs--;
        n++;
    }
    mset(w->m_segments, (int64_t)w->nsegs);
    if (deleted)
        *deleted = n;
    return rc;
}

enum err wal_checkpoint(struct wal *w, uint64_t lsn, size_t *deleted, struct errbuf *eb)
{
    enum err rc;

    pthread_mutex_lock(&w->mu);
    if (lsn > w->checkpoint_lsn)
        w->checkpoint_lsn = lsn;
    rc = checkpoint_locked(w, deleted, eb);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void wal_tick(struct wal *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->max_segment_age_ms > 0 && !w->broken) {
        int64_t age_ms = (clock_mono_ns() - w->active_since_ns) / 1000000;
        while (fd_busy(w))
            pthread_cond_wait(&w->cv, &w->mu);
        if (age_ms >= w->max_segment_age_ms && w->segs[w->nsegs - 1].bytes > WAL_HDR_BYTES &&
            !w->broken) {
            struct errbuf eb;
            errbuf_init(&eb);
            if (rotate(w, &eb) != ERR_OK)
                log_warn("WAL: age rotation failed, will retry", "error=\"%s\"", eb.msg);
        }
    }
    if (w->sync == WAL_SYNC_ASYNC && !w->syncing && !w->broken && w->durable_lsn < w->last_lsn)
        sync_round(w);
    pthread_mutex_unlock(&w->mu);
}

void wal_get_stats(struct wal *w, struct wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = (struct wal_stats){
        .appends = w->appends,
        .bytes = w->bytes,
        .syncs = w->syncs,
        .last_lsn = w->last_lsn,
        .durable_lsn = w->durable_lsn,
        .checkpoint_lsn = w->checkpoint_lsn,
        .corrupt_records = w->corrupt_records,
        .truncated_tails = w->truncated_tails,
        .segments = w->nsegs,
    };
    out->prealloc_bytes = w->prealloc_bytes;
    for (int i = 0; i < WAL_MAX_SPARES; i++)
        out->spare_bytes += w->spare_bytes[i];
    out->recycled = w->recycled;
    out->preallocate = w->prealloc;
    for (size_t i = 0; i < w->nsegs; i++)
        out->total_bytes += w->segs[i].file_bytes;
    pthread_mutex_unlock(&w->mu);
}

void wal_files_json(struct wal *w, struct buf *out)
{
    pthread_mutex_lock(&w->mu);
    buf_append_char(out, '[');
    for (size_t i = 0; i < w->nsegs; i++) {
        const struct seg *s = &w->segs[i];
        char name[64];
        wal_seg_name(s->base_lsn, name, sizeof(name));
        buf_printf(out,
                   "%s{\"name\":\"%s\",\"first_lsn\":%" PRIu64 ",\"last_lsn\":%" PRIu64
                   ",\"bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64 ",\"active\":%s}",
                   i ? "," : "", name, s->first_lsn, s->last_lsn, s->bytes, s->file_bytes,
                   i + 1 == w->nsegs ? "true" : "false");
    }
    buf_append_char(out, ']');
    pthread_mutex_unlock(&w->mu);
}

uint64_t wal_last_lsn(struct wal *w)
{
    uint64_t l;
    pthread_mutex_lock(&w->mu);
    l = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return l;
}
