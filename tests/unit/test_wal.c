/* test_wal.c - unit tests of the write-ahead log (src/wal) through wal.h.
 *
 * Each test works in its own temp directory. Damage (torn tails, flipped bytes)
 * is made by editing segment files between close and open, as a crash would;
 * disk-full is made with the ARC_TESTING fault hook and, when the test runs as
 * root, a real 1 MiB tmpfs. The Go Arc WAL bugs each have a test: records dropped
 * under load (group_commit, async), flushed data replayed again (replay_once),
 * the active file deleted during rotation (checkpoint_races_rotation). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "wal/wal.h"

/* ---- helpers ---------------------------------------------------------------- */

/* cmocka's asserts longjmp and must not run on other threads: threads record the
 * first failure here and the test thread checks it after joining. */
static pthread_mutex_t thread_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char thread_err[512];

static void thread_fail(const char *what, const char *msg)
{
    pthread_mutex_lock(&thread_err_mu);
    if (!thread_err[0])
        /* %.200s/%.300s: bounded, so the compiler can see the message fits */
        snprintf(thread_err, sizeof(thread_err), "%.200s: %.300s", what, msg);
    pthread_mutex_unlock(&thread_err_mu);
}

static void check_threads_ok(void)
{
    if (thread_err[0])
        fail_msg("thread failed: %s", thread_err);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/arc-wal-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void tmpdir_free(char *d)
{
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static void seg_file(const char *dir, uint64_t base, char *out, size_t n)
{
    int w = snprintf(out, n, "%.400s/%020" PRIu64 ".wal", dir, base);
    assert_true(w > 0 && (size_t)w < n);
}

static const char *path_of(const char *dir, uint64_t base, char *out, size_t n)
{
    seg_file(dir, base, out, n);
    return out;
}

static off_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

static int count_segments(const char *dir)
{
    char cmd[512];
    int n = 0;
    FILE *f;
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.wal$'", dir);
    f = popen(cmd, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static struct wal *open_wal(const char *dir, enum wal_sync sync, uint64_t seg_bytes,
                            struct metrics *m)
{
    struct wal_opts o = {.dir = dir, .sync = sync, .max_segment_bytes = seg_bytes, .metrics = m};
    struct errbuf eb;
    struct wal *w = NULL;
    errbuf_init(&eb);
    if (wal_open(&o, &w, &eb) != ERR_OK)
        fail_msg("wal_open: %s", eb.msg);
    return w;
}

/* One replayed record, copied. */
struct got {
    uint64_t lsn;
    uint8_t kind, flags;
    int64_t time_us;
    char *db;
    char *body;
    size_t body_len;
};

struct got_list {
    struct got *v;
    size_t n, cap;
    enum err fail_at_call; /* test: return this error ... */
    size_t fail_after;     /* ... on call number fail_after (1-based), 0 = never */
};

static enum err collect(void *ctx, uint64_t lsn, const struct wal_record *r, struct errbuf *eb)
{
    struct got_list *g = ctx;
    if (g->fail_after && g->n + 1 == g->fail_after)
        return errbuf_set(eb, g->fail_at_call, "callback refused lsn %" PRIu64, lsn);
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = xreallocarray(g->v, g->cap, sizeof(*g->v));
    }
    g->v[g->n++] = (struct got){
        .lsn = lsn,
        .kind = r->kind,
        .flags = r->flags,
        .time_us = r->time_us,
        .db = xstrndup(r->db, r->db_len),
        .body = r->body_len ? xstrndup(r->body, r->body_len) : xstrdup(""),
        .body_len = r->body_len,
    };
    return ERR_OK;
}

static void got_release(struct got_list *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].db);
        free(g->v[i].body);
    }
    free(g->v);
    memset(g, 0, sizeof(*g));
}

static void replay_all(struct wal *w, struct got_list *g)
{
    struct errbuf eb;
    errbuf_init(&eb);
    if (wal_replay(w, collect, g, &eb) != ERR_OK)
        fail_msg("wal_replay: %s", eb.msg);
}

/* Append "rec-<i>" padded to pad bytes, db "db<i%3>", kind 1 + i%3, flags i%256. */
static uint64_t append_n(struct wal *w, int from, int count, size_t pad)
{
    uint64_t lsn = 0;
    char *body = xmalloc(pad + 32);
    for (int i = from; i < from + count; i++) {
        char db[16];
        int n = snprintf(body, pad + 32, "rec-%d", i);
        struct errbuf eb;
        size_t len = (size_t)n;
        if (len < pad) {
            memset(body + n, 'x', pad - len);
            len = pad;
        }
        snprintf(db, sizeof(db), "db%d", i % 3);
        struct wal_record r = {.kind = (uint8_t)(1 + i % 3), .flags = (uint8_t)(i % 256),
                               .time_us = 1700000000000000LL + i, .db = db,
                               .db_len = strlen(db), .body = body, .body_len = len};
        errbuf_init(&eb);
        if (wal_append(w, &r, &lsn, &eb) != ERR_OK)
            fail_msg("wal_append %d: %s", i, eb.msg);
    }
    free(body);
    return lsn;
}

/* Check replayed record g matches what append_n(i) wrote. */
static void check_rec(const struct got *g, int i, size_t pad)
{
    char want[64], db[16];
    snprintf(want, sizeof(want), "rec-%d", i);
    snprintf(db, sizeof(db), "db%d", i % 3);
    assert_int_equal(g->kind, 1 + i % 3);
    assert_int_equal(g->flags, i % 256);
    assert_int_equal(g->time_us, 1700000000000000LL + i);
    assert_string_equal(g->db, db);
    assert_int_equal(strncmp(g->body, want, strlen(want)), 0);
    assert_int_equal(g->body_len, strlen(want) > pad ? strlen(want) : pad);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_crc32c(void **state)
{
    (void)state;
    unsigned char buf[1027];
    assert_int_equal(wal_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(wal_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(wal_crc32c(0, "", 0), 0);
    memset(buf, 0, 32);
    assert_int_equal(wal_crc32c(0, buf, 32), 0x8A9136AAu); /* RFC 3720 B.4: 32 zero bytes */
    memset(buf, 0xff, 32);
    assert_int_equal(wal_crc32c(0, buf, 32), 0x62A8AB43u); /* RFC 3720 B.4: 32 0xff bytes */
    /* Hardware and table paths agree at every length and alignment; a running
     * checksum split anywhere equals the one-shot value. */
    srand(7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)rand();
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof(buf); n += 37) {
            uint32_t a = wal_crc32c(0, buf + off, n);
            assert_int_equal(a, wal_crc32c_sw(0, buf + off, n));
            assert_int_equal(a, wal_crc32c(wal_crc32c(0, buf + off, n / 3), buf + off + n / 3,
                                           n - n / 3));
        }
}

static void test_roundtrip(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct got_list g = {0};
    unsigned char bin[300];
    struct errbuf eb;
    uint64_t lsn;

    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)(i * 7); /* includes NUL bytes */
    struct wal_record recs[3] = {
        {.kind = 1, .flags = 3, .time_us = -5, .db = "prod", .db_len = 4, .body = "cpu v=1",
         .body_len = 7},
        {.kind = 2, .flags = 255, .time_us = INT64_MAX, .db = "", .db_len = 0, .body = NULL,
         .body_len = 0},
        {.kind = 3, .flags = 0, .time_us = 42, .db = "x", .db_len = 1, .body = bin,
         .body_len = sizeof(bin)},
    };
    for (int i = 0; i < 3; i++) {
        errbuf_init(&eb);
        assert_int_equal(wal_append(w, &recs[i], &lsn, &eb), ERR_OK);
        assert_int_equal(lsn, (uint64_t)i + 1);
    }
    assert_int_equal(wal_last_lsn(w), 3);
    wal_close(w);

    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g.v[i].lsn, (uint64_t)i + 1);
        assert_int_equal(g.v[i].kind, recs[i].kind);
        assert_int_equal(g.v[i].flags, recs[i].flags);
        assert_int_equal(g.v[i].time_us, recs[i].time_us);
        assert_int_equal(strlen(g.v[i].db), recs[i].db_len);
        assert_memory_equal(g.v[i].db, recs[i].db, recs[i].db_len);
        assert_int_equal(g.v[i].body_len, recs[i].body_len);
        if (recs[i].body_len)
            assert_memory_equal(g.v[i].body, recs[i].body, recs[i].body_len);
    }
    /* Exact on-disk size: header 24 + per record 32 + db + body. */
    char path[512];
    seg_file(dir, 1, path, sizeof(path));
    assert_int_equal(file_size(path), 24 + (32 + 4 + 7) + (32 + 0 + 0) + (32 + 1 + 300));
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_lsn_continue_and_hint(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC};
    struct errbuf eb;

    assert_int_equal(append_n(w, 0, 5, 0), 5);
    wal_close(w);
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    assert_int_equal(wal_last_lsn(w), 5);
    assert_int_equal(append_n(w, 5, 2, 0), 7);
    wal_close(w);

    /* All segments gone (deleted by a checkpoint) but the catalog remembers 1000:
     * LSNs never restart below it. */
    tmpdir_free(dir);
    dir = tmpdir_new();
    o.dir = dir;
    o.next_lsn_hint = 1000;
    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    assert_int_equal(append_n(w, 0, 1, 0), 1000);
    wal_close(w);
    /* A hint below the tail does not move LSNs back. */
    o.next_lsn_hint = 10;
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    assert_int_equal(append_n(w, 1, 1, 0), 1001);
    wal_close(w);
    tmpdir_free(dir);
}

/* Go Arc bug: recovery replayed already flushed data. Replay skips records at or
 * below the checkpoint, and runs once only. */
static void test_replay_once_above_checkpoint(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .checkpoint_lsn = 6};
    struct got_list g = {0};
    struct errbuf eb;
    uint64_t lsn;

    append_n(w, 0, 10, 0);
    wal_close(w);
    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    replay_all(w, &g);
    assert_int_equal(g.n, 4);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.v[i].lsn, 7 + i);
        check_rec(&g.v[i], (int)(6 + i), 0);
    }
    /* Second replay refused: it would put rows into the buffers twice. */
    assert_int_equal(wal_replay(w, collect, &g, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "once"));
    assert_int_equal(g.n, 4);
    got_release(&g);
    wal_close(w);

    /* Replay after a write is refused too. */
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct wal_record r = {.kind = 1, .db = "d", .db_len = 1, .body = "b", .body_len = 1};
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_OK);
    assert_int_equal(lsn, 11);
    assert_int_equal(wal_replay(w, collect, &g, &eb), ERR_INVAL);
    assert_int_equal(g.n, 0);
    wal_close(w);

    /* A callback error stops replay and comes back with its message. */
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    g.fail_after = 3;
    g.fail_at_call = ERR_BUSY;
    assert_int_equal(wal_replay(w, collect, &g, &eb), ERR_BUSY);
    assert_string_equal(eb.msg, "callback refused lsn 3");
    assert_int_equal(g.n, 2);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_rotation_by_size(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 4096, NULL);
    struct got_list g = {0};
    struct wal_stats st;

    /* 100 records of 32 + 3 + 500 bytes: 7 per 4 KiB segment -> 15 segments. */
    append_n(w, 0, 100, 500);
    wal_get_stats(w, &st);
    assert_int_equal(st.segments, 15);
    assert_int_equal(count_segments(dir), 15);
    assert_int_equal(st.appends, 100);
    assert_int_equal(st.last_lsn, 100);
    assert_int_equal(st.durable_lsn, 100);
    /* Segment names are their first LSN: 1, 8, 15, ... */
    char path[512];
    seg_file(dir, 8, path, sizeof(path));
    assert_true(file_size(path) > 0);
    assert_true(file_size(path) <= 4096);
    wal_close(w);

    w = open_wal(dir, WAL_SYNC_FDATASYNC, 4096, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, 100);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.v[i].lsn, i + 1);
        check_rec(&g.v[i], (int)i, 500);
    }
    got_release(&g);
    /* A record larger than the segment size goes alone into a fresh segment. */
    append_n(w, 100, 1, 10000);
    wal_get_stats(w, &st);
    assert_int_equal(st.segments, 16);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_checkpoint_deletes_covered(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 4096, NULL);
    struct got_list g = {0};
    struct wal_stats st;
    struct errbuf eb;
    size_t deleted = 99;
    char path[512];

    append_n(w, 0, 21, 500); /* segments start at 1, 8, 15 (active) */
    assert_int_equal(count_segments(dir), 3);
    errbuf_init(&eb);
    /* LSN 10 covers segment 1 (1..7) but not segment 8 (8..14). */
    assert_int_equal(wal_checkpoint(w, 10, &deleted, &eb), ERR_OK);
    assert_int_equal(deleted, 1);
    seg_file(dir, 1, path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    seg_file(dir, 8, path, sizeof(path));
    assert_true(file_size(path) > 0);
    /* Everything covered, even beyond the last LSN: the active one stays. */
    assert_int_equal(wal_checkpoint(w, UINT64_MAX - 1, &deleted, &eb), ERR_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(count_segments(dir), 1);
    seg_file(dir, 15, path, sizeof(path));
    assert_true(file_size(path) > 24);
    wal_get_stats(w, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.checkpoint_lsn, UINT64_MAX - 1);
    /* Appends go on in the active segment. */
    assert_int_equal(append_n(w, 21, 1, 10), 22);
    wal_close(w);

    /* Reopen with the catalog's checkpoint: nothing replays twice. */
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .checkpoint_lsn = 20};
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    replay_all(w, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.v[0].lsn, 21);
    assert_int_equal(g.v[1].lsn, 22);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

/* Go Arc bug: the active WAL file deleted during rotation. Writers rotate every
 * few records while another thread checkpoints at the last LSN in a loop. */
struct race_ctx {
    struct wal *w;
    _Atomic int stop;
};

static void *ckpt_thread(void *arg)
{
    struct race_ctx *c = arg;
    while (!c->stop) {
        uint64_t l = wal_last_lsn(c->w);
        struct errbuf eb;
        errbuf_init(&eb);
        if (wal_checkpoint(c->w, l, NULL, &eb) != ERR_OK)
            thread_fail("checkpoint", eb.msg);
    }
    return NULL;
}

static void *append_thread_small(void *arg)
{
    struct race_ctx *c = arg;
    for (int i = 0; i < 500; i++) {
        struct wal_record r = {.kind = 1, .db = "d", .db_len = 1, .body = "0123456789abcdef",
                               .body_len = 16};
        struct errbuf eb;
        uint64_t lsn;
        errbuf_init(&eb);
        if (wal_append(c->w, &r, &lsn, &eb) != ERR_OK)
            thread_fail("append", eb.msg);
    }
    return NULL;
}

static void test_checkpoint_races_rotation(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct race_ctx c = {.w = open_wal(dir, WAL_SYNC_ASYNC, 256, NULL)};
    pthread_t ck, ap[4];
    struct got_list g = {0};
    struct wal_stats st;

    pthread_create(&ck, NULL, ckpt_thread, &c);
    for (int i = 0; i < 4; i++)
        pthread_create(&ap[i], NULL, append_thread_small, &c);
    for (int i = 0; i < 4; i++)
        pthread_join(ap[i], NULL);
    c.stop = 1;
    pthread_join(ck, NULL);
    check_threads_ok();
    wal_get_stats(c.w, &st);
    assert_int_equal(st.last_lsn, 2000);
    assert_true(st.segments >= 1);
    assert_true(count_segments(dir) == (int)st.segments);
    uint64_t ckpt = st.checkpoint_lsn;
    wal_close(c.w);

    /* The active segment survived and everything above the checkpoint replays. */
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .checkpoint_lsn = ckpt};
    struct errbuf eb;
    struct wal *w;
    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    replay_all(w, &g);
    assert_int_equal(g.n, 2000 - ckpt);
    for (size_t i = 0; i < g.n; i++)
        assert_int_equal(g.v[i].lsn, ckpt + 1 + i);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

/* Go Arc bug: entries silently dropped under load. 8 threads x 2000 appends in
 * fdatasync mode: every LSN given out replays exactly once with its own body. */
#define GC_THREADS 8
#define GC_PER_THREAD 2000

struct gc_ctx {
    struct wal *w;
    int id;
    uint64_t lsns[GC_PER_THREAD];
};

static void *gc_thread(void *arg)
{
    struct gc_ctx *c = arg;
    for (int i = 0; i < GC_PER_THREAD; i++) {
        char body[64];
        int n = snprintf(body, sizeof(body), "t%d-%d", c->id, i);
        struct wal_record r = {.kind = 2, .flags = (uint8_t)c->id, .time_us = i, .db = "load",
                               .db_len = 4, .body = body, .body_len = (size_t)n};
        struct errbuf eb;
        errbuf_init(&eb);
        if (wal_append(c->w, &r, &c->lsns[i], &eb) != ERR_OK)
            thread_fail("append", eb.msg);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 256 * 1024, NULL);
    struct gc_ctx *c = xcalloc(GC_THREADS, sizeof(*c));
    pthread_t th[GC_THREADS];
    const size_t total = GC_THREADS * GC_PER_THREAD;
    unsigned char *seen = xcalloc(total + 1, 1);
    struct got_list g = {0};
    struct wal_stats st;

    for (int t = 0; t < GC_THREADS; t++) {
        c[t].w = w;
        c[t].id = t;
        pthread_create(&th[t], NULL, gc_thread, &c[t]);
    }
    for (int t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);
    check_threads_ok();
    /* The LSNs handed out are exactly 1..total, each once; per thread increasing. */
    for (int t = 0; t < GC_THREADS; t++)
        for (int i = 0; i < GC_PER_THREAD; i++) {
            uint64_t l = c[t].lsns[i];
            assert_true(l >= 1 && l <= total);
            assert_int_equal(seen[l], 0);
            seen[l] = 1;
            if (i)
                assert_true(l > c[t].lsns[i - 1]);
        }
    wal_get_stats(w, &st);
    assert_int_equal(st.appends, total);
    assert_int_equal(st.durable_lsn, total);
    /* Sharing: far fewer syncs than appends (one per append would be 16000). */
    assert_true(st.syncs < st.appends);
    print_message("group commit: %" PRIu64 " appends, %" PRIu64 " syncs, %zu segments\n",
                  st.appends, st.syncs, st.segments);
    wal_close(w);

    w = open_wal(dir, WAL_SYNC_FDATASYNC, 256 * 1024, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, total);
    for (size_t i = 0; i < g.n; i++) {
        uint64_t l = g.v[i].lsn;
        int t = g.v[i].flags;
        char want[64];
        assert_int_equal(l, i + 1);
        assert_true(t >= 0 && t < GC_THREADS);
        /* The body is the one its writer sent with this LSN. */
        for (int k = 0; k < GC_PER_THREAD; k++)
            if (c[t].lsns[k] == l) {
                snprintf(want, sizeof(want), "t%d-%d", t, k);
                assert_string_equal(g.v[i].body, want);
                assert_int_equal(g.v[i].time_us, k);
                break;
            }
    }
    got_release(&g);
    wal_close(w);
    free(seen);
    free(c);
    tmpdir_free(dir);
}

static void test_torn_tail(void **state)
{
    (void)state;
    const size_t rec_bytes = 32 + 3 + 100; /* framing + "dbN" + body */
    const size_t cuts[] = {1, 2, 5, 16, 17, 33, 100, rec_bytes - 1};

    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        char *dir = tmpdir_new();
        struct metrics *m = metrics_new();
        struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
        struct got_list g = {0};
        struct wal_stats st;
        char path[512];
        off_t full;

        append_n(w, 0, 10, 100);
        wal_close(w);
        seg_file(dir, 1, path, sizeof(path));
        full = file_size(path);
        assert_int_equal(full, 24 + 10 * rec_bytes);
        assert_int_equal(truncate(path, full - (off_t)cuts[k]), 0);

        w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, m);
        wal_get_stats(w, &st);
        assert_int_equal(st.truncated_tails, 1);
        assert_int_equal(metric_value(metrics_counter(m, "arc_wal_truncated_tails_total", "",
                                                      NULL)), 1);
        assert_int_equal(st.last_lsn, 9);
        /* Cut back to the end of record 9 exactly. */
        assert_int_equal(file_size(path), 24 + 9 * rec_bytes);
        replay_all(w, &g);
        assert_int_equal(g.n, 9);
        for (size_t i = 0; i < g.n; i++)
            check_rec(&g.v[i], (int)i, 100);
        assert_int_equal(append_n(w, 9, 1, 100), 10);
        got_release(&g);
        wal_close(w);

        /* The repaired log is clean on the next open. */
        w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
        wal_get_stats(w, &st);
        assert_int_equal(st.truncated_tails, 0);
        replay_all(w, &g);
        assert_int_equal(g.n, 10);
        got_release(&g);
        wal_close(w);
        metrics_free(m);
        tmpdir_free(dir);
    }

    /* Bytes after the last record that start like the next record (plausible
     * length, LSN 4) but fail their check are a torn tail: cut and counted. */
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct wal_stats st;
    struct got_list g = {0};
    char path[512];
    append_n(w, 0, 3, 100);
    wal_close(w);
    seg_file(dir, 1, path, sizeof(path));
    {
        unsigned char junk[4096];
        int fd = open(path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        memset(junk, 0x5a, sizeof(junk));
        junk[0] = 200, junk[1] = junk[2] = junk[3] = 0;       /* payload_len 200 */
        junk[8] = 4;                                          /* lsn 4 */
        memset(junk + 9, 0, 7);
        junk[18] = 2, junk[19] = 0;                           /* db_len 2 */
        memset(junk + 20, 0, 4);                              /* reserved 0 */
        assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
        close(fd);
    }
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 1);
    assert_int_equal(st.last_lsn, 3);
    assert_int_equal(file_size(path), 24 + 3 * rec_bytes);
    wal_close(w);

    /* Non-zero bytes that do not start like a newer record (stale bytes: here a
     * copy of record 1, LSN 1) are the end of the log, as in a recycled segment:
     * not cut, not counted, overwritten by the next records. */
    {
        unsigned char rec1[135];
        int fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, rec1, sizeof(rec1), 24), (ssize_t)sizeof(rec1));
        assert_int_equal(pwrite(fd, rec1, sizeof(rec1), 24 + 3 * rec_bytes), (ssize_t)sizeof(rec1));
        assert_int_equal(pwrite(fd, rec1, 50, 24 + 4 * rec_bytes), 50);
        close(fd);
    }
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(st.last_lsn, 3);
    assert_int_equal(file_size(path), 24 + 4 * rec_bytes + 50);
    replay_all(w, &g);
    assert_int_equal(g.n, 3);
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    wal_close(w);
    assert_int_equal(truncate(path, 24 + 3 * rec_bytes), 0);

    /* Zeros after the last record are the clean end of the log (a preallocated
     * segment, or pages of unacknowledged records that never reached the disk):
     * nothing cut, nothing counted, and new records overwrite them. */
    assert_int_equal(truncate(path, 24 + 3 * rec_bytes + 4096), 0);
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.last_lsn, 3);
    assert_int_equal(file_size(path), 24 + 3 * rec_bytes + 4096);
    replay_all(w, &g);
    assert_int_equal(g.n, 3);
    got_release(&g);
    assert_int_equal(append_n(w, 3, 2, 100), 5);
    assert_int_equal(file_size(path), 24 + 3 * rec_bytes + 4096); /* written in place */
    wal_close(w);
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, 5);
    for (size_t i = 0; i < g.n; i++)
        check_rec(&g.v[i], (int)i, 100);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails + st.corrupt_records, 0);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_flipped_byte_middle(void **state)
{
    (void)state;
    const size_t rec_bytes = 32 + 3 + 100;
    /* Offsets inside record 5 (index 4): body byte, CRC, LSN, length field. */
    const off_t in_rec[] = {32 + 3 + 50, 5, 9, 1};

    for (size_t k = 0; k < sizeof(in_rec) / sizeof(in_rec[0]); k++) {
        char *dir = tmpdir_new();
        struct metrics *m = metrics_new();
        struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
        struct got_list g = {0};
        struct wal_stats st;
        char path[512];

        append_n(w, 0, 10, 100);
        wal_close(w);
        seg_file(dir, 1, path, sizeof(path));
        flip_byte(path, (off_t)(24 + 4 * rec_bytes) + in_rec[k]);

        w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, m);
        wal_get_stats(w, &st);
        assert_int_equal(st.truncated_tails, 0); /* damage in the middle: nothing cut */
        assert_int_equal(file_size(path), 24 + 10 * rec_bytes);
        assert_int_equal(st.last_lsn, 10);
        replay_all(w, &g);
        assert_int_equal(g.n, 9);
        for (size_t i = 0; i < g.n; i++) {
            int want = i < 4 ? (int)i : (int)i + 1; /* record 5 (i = 4) missing */
            assert_int_equal(g.v[i].lsn, (uint64_t)want + 1);
            check_rec(&g.v[i], want, 100);
        }
        wal_get_stats(w, &st);
        assert_int_equal(st.corrupt_records, 1);
        assert_int_equal(metric_value(metrics_counter(m, "arc_wal_corrupt_records_total", "",
                                                      NULL)), 1);
        /* New records continue after LSN 10. */
        assert_int_equal(append_n(w, 10, 1, 100), 11);
        got_release(&g);
        wal_close(w);
        metrics_free(m);
        tmpdir_free(dir);
    }
}

static void test_nospace_fault_hook(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    struct wal_record r = {.kind = 1, .db = "db", .db_len = 2, .body = "payload-bytes",
                           .body_len = 13};
    struct got_list g = {0};
    struct wal_stats st;
    struct errbuf eb;
    uint64_t lsn = 777;
    char path[512];
    off_t before;

    append_n(w, 0, 3, 10);
    seg_file(dir, 1, path, sizeof(path));
    before = file_size(path);

    /* Whole write refused. */
    wal_test_faults = (struct wal_test_faults){.fail_errno = ENOSPC};
    errbuf_init(&eb);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_NOSPACE);
    assert_int_equal(lsn, 777); /* out-parameter untouched on failure */
    assert_non_null(strstr(eb.msg, "No space left on device"));
    assert_int_equal(file_size(path), before);

    /* Partial write (20 of 47 bytes landed) is cut back. */
    wal_test_faults = (struct wal_test_faults){.fail_errno = ENOSPC, .short_bytes = 20};
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_NOSPACE);
    assert_int_equal(file_size(path), before);

    /* Other errors are ERR_IO. */
    wal_test_faults = (struct wal_test_faults){.fail_errno = EIO, .short_bytes = 5};
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_IO);
    assert_int_equal(file_size(path), before);

    /* Space is back: the next append succeeds with the next LSN (no gap). */
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_OK);
    assert_int_equal(lsn, 4);
    wal_get_stats(w, &st);
    assert_int_equal(st.appends, 4);
    wal_close(w);

    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0); /* no partial record was left behind */
    replay_all(w, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.v[3].body, "payload-bytes");
    assert_int_equal(g.v[3].lsn, 4);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_sync_failure_readonly(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FSYNC, 0, NULL);
    struct wal_record r = {.kind = 1, .db = "db", .db_len = 2, .body = "x", .body_len = 1};
    struct errbuf eb;
    uint64_t lsn = 0;

    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_OK);
    wal_test_faults = (struct wal_test_faults){.fail_sync_errno = EIO};
    errbuf_init(&eb);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_IO);
    assert_non_null(strstr(eb.msg, "not durable"));
    assert_int_equal(lsn, 1);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_IO);
    assert_non_null(strstr(eb.msg, "read-only"));
    wal_close(w);
    tmpdir_free(dir);
}

/* Unmounts and removes the tmpfs even when an assertion failed mid-test. */
static int tmpfs_teardown(void **state)
{
    char *mnt = *state;
    if (mnt) {
        umount2(mnt, MNT_DETACH);
        tmpdir_free(mnt);
        *state = NULL;
    }
    return 0;
}

/* Real disk-full on a 1 MiB tmpfs (needs root; skipped otherwise). */
static void test_nospace_tmpfs(void **state)
{
    char *mnt = tmpdir_new();
    char waldir[512], filler[512];
    struct got_list g = {0};
    struct errbuf eb;
    struct wal *w;
    uint64_t ok = 0, lsn;
    char body[8000];
    int fd;

    *state = mnt; /* tmpfs_teardown unmounts and removes it */
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        print_message("tmpfs mount failed (%s): skipped\n", strerror(errno));
        skip();
    }
    snprintf(waldir, sizeof(waldir), "%s/wal", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    /* Take 256 KiB so that freeing it later makes room. */
    fd = open(filler, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    memset(body, 'f', sizeof(body));
    for (int i = 0; i < 32; i++)
        assert_int_equal(write(fd, body, sizeof(body)), (ssize_t)sizeof(body));
    close(fd);

    w = open_wal(waldir, WAL_SYNC_FDATASYNC, 0, NULL);
    memset(body, 'b', sizeof(body));
    struct wal_record r = {.kind = 1, .db = "db", .db_len = 2, .body = body,
                           .body_len = sizeof(body)};
    enum err rc;
    errbuf_init(&eb);
    for (;;) {
        rc = wal_append(w, &r, &lsn, &eb);
        if (rc != ERR_OK)
            break;
        ok++;
        assert_int_equal(lsn, ok);
        assert_true(ok < 1000);
    }
    assert_int_equal(rc, ERR_NOSPACE);
    assert_non_null(strstr(eb.msg, "No space left"));
    assert_true(ok > 50);
    char seg[512];
    seg_file(waldir, 1, seg, sizeof(seg));
    assert_int_equal(file_size(seg), (off_t)(24 + ok * (32 + 2 + sizeof(body))));
    /* Still full: still refused, nothing partial. */
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_NOSPACE);
    /* Free space: appends succeed again. */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_OK);
    assert_int_equal(lsn, ok + 1);
    wal_close(w);

    w = open_wal(waldir, WAL_SYNC_FDATASYNC, 0, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, ok + 1);
    assert_int_equal(g.v[ok].body_len, sizeof(body));
    got_release(&g);
    wal_close(w);
}

static void *async_thread(void *arg)
{
    struct gc_ctx *c = arg;
    gc_thread(c);
    return NULL;
}

static void test_async_mode(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_ASYNC, 64 * 1024, NULL);
    struct gc_ctx *c = xcalloc(4, sizeof(*c));
    pthread_t th[4];
    struct got_list g = {0};
    struct wal_stats st;

    for (int t = 0; t < 4; t++) {
        c[t].w = w;
        c[t].id = t;
        pthread_create(&th[t], NULL, async_thread, &c[t]);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    check_threads_ok();
    /* The background thread syncs within ~100 ms. */
    for (int i = 0; i < 50; i++) {
        wal_get_stats(w, &st);
        if (st.durable_lsn == st.last_lsn)
            break;
        usleep(20000);
    }
    assert_int_equal(st.last_lsn, 4 * GC_PER_THREAD);
    assert_int_equal(st.durable_lsn, 4 * GC_PER_THREAD);
    assert_true(st.syncs < 4 * GC_PER_THREAD);
    wal_close(w);

    w = open_wal(dir, WAL_SYNC_ASYNC, 64 * 1024, NULL);
    replay_all(w, &g);
    assert_int_equal(g.n, 4 * GC_PER_THREAD);
    for (size_t i = 0; i < g.n; i++)
        assert_int_equal(g.v[i].lsn, i + 1);
    got_release(&g);
    wal_close(w);
    free(c);
    tmpdir_free(dir);
}

static void test_limits(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    static const char one = 'x';
    struct wal_record r = {.kind = 1, .db = "d", .db_len = 1, .body = &one,
                           .body_len = WAL_MAX_BODY_BYTES + 1}; /* never read: refused first */
    struct wal_stats st;
    struct errbuf eb;
    uint64_t lsn = 5;

    errbuf_init(&eb);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "body of 1073741825 bytes"));
    r.body_len = 1;
    r.db_len = 70000;
    assert_int_equal(wal_write(w, &r, &lsn, &eb), ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "database name of 70000 bytes"));
    assert_int_equal(lsn, 5);
    assert_int_equal(wal_wait_durable(w, 9, &eb), ERR_INVAL);
    wal_get_stats(w, &st);
    assert_int_equal(st.appends, 0);
    assert_int_equal(st.last_lsn, 0);

    /* No directory. */
    struct wal_opts o = {.dir = "", .sync = WAL_SYNC_FSYNC};
    struct wal *w2 = NULL;
    assert_int_equal(wal_open(&o, &w2, &eb), ERR_INVAL);
    assert_null(w2);
    o.dir = "/proc/arc-no-such/wal";
    assert_int_equal(wal_open(&o, &w2, &eb), ERR_IO);
    assert_non_null(strstr(eb.msg, "create WAL dir /proc/arc-no-such/wal"));
    wal_close(w);
    tmpdir_free(dir);
}

static void test_two_phase_and_age_rotation(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .max_segment_age_ms = 300};
    struct wal_record r = {.kind = 1, .db = "d", .db_len = 1, .body = "b", .body_len = 1};
    struct wal_stats st;
    struct errbuf eb;
    uint64_t l1, l2;
    struct wal *w;

    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    /* Two-phase: written, not yet durable, then durable. */
    assert_int_equal(wal_write(w, &r, &l1, &eb), ERR_OK);
    assert_int_equal(wal_write(w, &r, &l2, &eb), ERR_OK);
    assert_int_equal(l2, l1 + 1);
    wal_get_stats(w, &st);
    assert_int_equal(st.durable_lsn, 0);
    assert_int_equal(wal_wait_durable(w, l1, &eb), ERR_OK);
    wal_get_stats(w, &st);
    assert_int_equal(st.durable_lsn, 2); /* one sync covered both */
    assert_int_equal(st.syncs, 1);

    /* The background thread rotates the non-empty segment once it is 300 ms old,
     * and leaves an empty active segment alone. */
    for (int i = 0; i < 300; i++) {
        wal_get_stats(w, &st);
        if (st.segments == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(st.segments, 2);
    usleep(700000);
    wal_get_stats(w, &st);
    assert_int_equal(st.segments, 2);
    assert_int_equal(count_segments(dir), 2);
    char path[512];
    seg_file(dir, 3, path, sizeof(path));
    assert_int_equal(file_size(path), 24);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_files_json(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 200, NULL);
    struct buf b;

    append_n(w, 0, 3, 100); /* 135-byte records: one per segment */
    buf_init(&b, 0);
    wal_files_json(w, &b);
    assert_string_equal(b.data,
                        "[{\"name\":\"00000000000000000001.wal\",\"first_lsn\":1,\"last_lsn\":1,"
                        "\"bytes\":159,\"file_bytes\":159,\"active\":false},"
                        "{\"name\":\"00000000000000000002.wal\",\"first_lsn\":2,\"last_lsn\":2,"
                        "\"bytes\":159,\"file_bytes\":159,\"active\":false},"
                        "{\"name\":\"00000000000000000003.wal\",\"first_lsn\":3,\"last_lsn\":3,"
                        "\"bytes\":159,\"file_bytes\":159,\"active\":true}]");
    buf_release(&b);
    wal_close(w);
    tmpdir_free(dir);
}

static void test_leftover_tmp_removed(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct wal *w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    char path[512];
    int fd;

    append_n(w, 0, 2, 0);
    wal_close(w);
    /* A crash inside segment creation leaves NAME.wal.tmp: removed, ignored. */
    snprintf(path, sizeof(path), "%s/00000000000000000003.wal.tmp", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "ARC", 3), 3);
    close(fd);
    w = open_wal(dir, WAL_SYNC_FDATASYNC, 0, NULL);
    assert_int_equal(file_size(path), -1);
    assert_int_equal(wal_last_lsn(w), 2);
    wal_close(w);
    tmpdir_free(dir);
}

/* ---- preallocated segments --------------------------------------------------- */

static struct wal *open_wal_prealloc(const char *dir, uint64_t seg_bytes)
{
    struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .max_segment_bytes = seg_bytes,
                         .preallocate = true};
    struct errbuf eb;
    struct wal *w = NULL;
    errbuf_init(&eb);
    if (wal_open(&o, &w, &eb) != ERR_OK)
        fail_msg("wal_open: %s", eb.msg);
    return w;
}

/* The filler needs WAL_PREALLOC_RESERVE free after a chunk. */
static bool room_to_prealloc(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return false;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 50;
    return avail > (reserve > WAL_PREALLOC_RESERVE ? reserve : WAL_PREALLOC_RESERVE) + (64 << 20);
}

/* Wait (at most 10 s) until the segment files add up to want bytes. */
static void wait_total_bytes(struct wal *w, uint64_t want)
{
    struct wal_stats st;
    for (int i = 0; i < 1000; i++) {
        wal_get_stats(w, &st);
        if (st.total_bytes == want)
            return;
        usleep(10000);
    }
    fail_msg("segment files are %" PRIu64 " bytes after 10 s, want %" PRIu64, st.total_bytes,
             want);
}

#define PA_SEG ((uint64_t)8 << 20)
#define PA_REC (32 + 3 + 1000) /* append_n(.., pad 1000) record bytes */

/* dir with one fully zero-filled 8 MiB segment holding records 0..n-1. */
static char *prealloc_dir(int n)
{
    char *dir = tmpdir_new();
    struct wal *w = open_wal_prealloc(dir, PA_SEG);
    struct wal_stats st;
    append_n(w, 0, n, 1000);
    wait_total_bytes(w, PA_SEG); /* the filler reached the segment's end */
    wal_get_stats(w, &st);
    assert_true(st.prealloc_bytes > 0 && st.prealloc_bytes < PA_SEG);
    assert_int_equal(st.last_lsn, (uint64_t)n);
    wal_close(w);
    return dir;
}

static void zero_range(const char *path, off_t off, size_t n)
{
    char *z = xcalloc(1, n);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, z, n, off), (ssize_t)n);
    close(fd);
    free(z);
}

/* A zero-filled segment: the file is the segment size, zeros after the records;
 * it reopens clean (with or without preallocation), replays exactly its records,
 * and new records are written in place after the last one. */
static void test_prealloc_zero_tail(void **state)
{
    (void)state;
    char *dir;
    struct wal *w;
    struct wal_stats st;
    struct got_list g = {0};
    char path[512];

    if (!room_to_prealloc("/tmp"))
        skip();
    dir = prealloc_dir(10);
    seg_file(dir, 1, path, sizeof(path));
    assert_int_equal(file_size(path), (off_t)PA_SEG);
    {
        /* everything after the records is zero */
        int fd = open(path, O_RDONLY);
        size_t n = PA_SEG - (24 + 10 * PA_REC);
        unsigned char *b = xmalloc(n);
        assert_int_equal(pread(fd, b, n, 24 + 10 * PA_REC), (ssize_t)n);
        for (size_t i = 0; i < n; i++)
            if (b[i])
                fail_msg("non-zero byte at %zu after the records", 24 + 10 * PA_REC + i);
        free(b);
        close(fd);
    }

    w = open_wal(dir, WAL_SYNC_FDATASYNC, PA_SEG, NULL); /* preallocation off */
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(st.last_lsn, 10);
    assert_int_equal(st.total_bytes, PA_SEG);
    replay_all(w, &g);
    assert_int_equal(g.n, 10);
    for (size_t i = 0; i < g.n; i++)
        check_rec(&g.v[i], (int)i, 1000);
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(append_n(w, 10, 5, 1000), 15);
    assert_int_equal(file_size(path), (off_t)PA_SEG); /* in place, not appended */
    wal_close(w);

    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    replay_all(w, &g);
    assert_int_equal(g.n, 15);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.v[i].lsn, i + 1);
        check_rec(&g.v[i], (int)i, 1000);
    }
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    wal_close(w);
    tmpdir_free(dir);
}

/* Damage in a zero-filled segment: a record whose pages never reached the disk
 * (zeros) with an intact record after it is skipped and counted like any damage
 * in the middle; a last record whose end is missing (zeros in place) is a torn
 * tail, cut and counted; a flipped byte in the middle costs one record. */
static void test_prealloc_damage(void **state)
{
    (void)state;
    struct wal_stats st;
    struct got_list g = {0};
    char path[512];
    char *dir;
    struct wal *w;

    if (!room_to_prealloc("/tmp"))
        skip();

    /* record 5 (index 4) all zeros */
    dir = prealloc_dir(10);
    seg_file(dir, 1, path, sizeof(path));
    zero_range(path, 24 + 4 * PA_REC, PA_REC);
    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(st.last_lsn, 10);
    replay_all(w, &g);
    assert_int_equal(g.n, 9);
    for (size_t i = 0; i < g.n; i++) {
        int want = i < 4 ? (int)i : (int)i + 1;
        assert_int_equal(g.v[i].lsn, (uint64_t)want + 1);
        check_rec(&g.v[i], want, 1000);
    }
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 1);
    wal_close(w);
    tmpdir_free(dir);

    /* the last record's final 5 bytes are zeros: torn, cut at its start */
    dir = prealloc_dir(10);
    seg_file(dir, 1, path, sizeof(path));
    zero_range(path, 24 + 10 * PA_REC - 5, 5);
    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 1);
    assert_int_equal(st.last_lsn, 9);
    assert_true(file_size(path) >= 24 + 9 * PA_REC); /* cut there (the filler may refill) */
    replay_all(w, &g);
    assert_int_equal(g.n, 9);
    got_release(&g);
    assert_int_equal(append_n(w, 9, 3, 1000), 12);
    wal_close(w);
    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    replay_all(w, &g);
    assert_int_equal(g.n, 12);
    for (size_t i = 0; i < g.n; i++)
        check_rec(&g.v[i], (int)i, 1000);
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    wal_close(w);
    tmpdir_free(dir);

    /* a flipped body byte in record 5: skipped, the zero tail stays clean */
    dir = prealloc_dir(10);
    seg_file(dir, 1, path, sizeof(path));
    flip_byte(path, 24 + 4 * PA_REC + 500);
    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(file_size(path), (off_t)PA_SEG);
    replay_all(w, &g);
    assert_int_equal(g.n, 9);
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 1);
    wal_close(w);
    tmpdir_free(dir);
}

/* A failed write inside the zero-filled space is cut back like any other. */
static void test_prealloc_failed_write(void **state)
{
    (void)state;
    struct wal_record r = {.kind = 1, .db = "db", .db_len = 2, .body = "payload-bytes",
                           .body_len = 13};
    struct got_list g = {0};
    struct wal_stats st;
    struct errbuf eb;
    uint64_t lsn = 0;
    char *dir;
    struct wal *w;

    if (!room_to_prealloc("/tmp"))
        skip();
    dir = prealloc_dir(3);
    w = open_wal_prealloc(dir, PA_SEG);
    errbuf_init(&eb);
    /* field by field: the filler's syncs read fail_sync_errno meanwhile */
    wal_test_faults.short_bytes = 20;
    wal_test_faults.fail_errno = EIO;
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_IO);
    assert_int_equal(wal_append(w, &r, &lsn, &eb), ERR_OK);
    assert_int_equal(lsn, 4);
    wal_close(w);
    w = open_wal_prealloc(dir, PA_SEG);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    replay_all(w, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.v[3].body, "payload-bytes");
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    wal_close(w);
    tmpdir_free(dir);
}

/* 8 writers, 2 KiB records, 256 KiB segments: rotations and the filler race all
 * the time; every LSN replays exactly once, nothing is counted as damage. */
#define PG_PER_THREAD 600

struct pg_ctx {
    struct wal *w;
    int id;
};

static void *pg_thread(void *arg)
{
    struct pg_ctx *c = arg;
    char body[2048];
    for (int i = 0; i < PG_PER_THREAD; i++) {
        int n = snprintf(body, sizeof(body), "t%d-%d-", c->id, i);
        memset(body + n, 'a' + c->id, sizeof(body) - (size_t)n);
        struct wal_record r = {.kind = 2, .flags = (uint8_t)c->id, .time_us = i, .db = "load",
                               .db_len = 4, .body = body, .body_len = sizeof(body)};
        struct errbuf eb;
        uint64_t lsn;
        errbuf_init(&eb);
        if (wal_append(c->w, &r, &lsn, &eb) != ERR_OK)
            thread_fail("append", eb.msg);
    }
    return NULL;
}

static void test_prealloc_group_commit_rotation(void **state)
{
    (void)state;
    const uint64_t seg = 256 * 1024;
    struct pg_ctx c[GC_THREADS];
    pthread_t th[GC_THREADS];
    struct got_list g = {0};
    struct wal_stats st;
    int next[GC_THREADS] = {0};
    char *dir;
    struct wal *w;

    if (!room_to_prealloc("/tmp"))
        skip();
    dir = tmpdir_new();
    w = open_wal_prealloc(dir, seg);
    for (int t = 0; t < GC_THREADS; t++) {
        c[t] = (struct pg_ctx){w, t};
        pthread_create(&th[t], NULL, pg_thread, &c[t]);
    }
    for (int t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);
    check_threads_ok();
    wal_get_stats(w, &st);
    assert_int_equal(st.durable_lsn, GC_THREADS * PG_PER_THREAD);
    print_message("prealloc group commit: %" PRIu64 " appends, %" PRIu64 " syncs, %zu segments, "
                  "%" PRIu64 " bytes zero-filled\n",
                  st.appends, st.syncs, st.segments, st.prealloc_bytes);
    wal_close(w);

    w = open_wal_prealloc(dir, seg);
    replay_all(w, &g);
    assert_int_equal(g.n, GC_THREADS * PG_PER_THREAD);
    for (size_t i = 0; i < g.n; i++) {
        int t = g.v[i].flags;
        char want[32];
        assert_int_equal(g.v[i].lsn, i + 1);
        assert_true(t >= 0 && t < GC_THREADS);
        /* each writer's records replay in its order, each once */
        snprintf(want, sizeof(want), "t%d-%d-", t, next[t]);
        assert_int_equal(strncmp(g.v[i].body, want, strlen(want)), 0);
        assert_int_equal(g.v[i].body_len, 2048);
        next[t]++;
    }
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.truncated_tails, 0);
    got_release(&g);
    wal_close(w);
    tmpdir_free(dir);
}

/* Recycling: with preallocation a checkpointed segment is kept (renamed) and
 * becomes the next segment instead of a new file. The records written into it
 * are followed by the old segment's records (stale bytes, LSNs below the new
 * first_lsn): reopening replays exactly the new records, counts nothing; a torn
 * last record in it is still cut and counted. */
static void test_prealloc_recycle(void **state)
{
    (void)state;
    const uint64_t seg = 256 * 1024;
    const size_t pad = 2000; /* 2035-byte records, 128 per segment */
    struct wal_opts o = {.sync = WAL_SYNC_FDATASYNC, .max_segment_bytes = seg,
                         .preallocate = true, .checkpoint_lsn = 200};
    struct got_list g = {0};
    struct wal_stats st;
    struct errbuf eb;
    size_t deleted = 0;
    char *dir, path[512];
    struct wal *w;
    struct buf b;

    if (!room_to_prealloc("/tmp"))
        skip();
    dir = tmpdir_new();
    o.dir = dir;
    w = open_wal_prealloc(dir, seg);
    append_n(w, 0, 300, pad); /* segments 1 (LSN 1..128), 129 (..256), 257 (active) */
    errbuf_init(&eb);
    assert_int_equal(wal_checkpoint(w, 200, &deleted, &eb), ERR_OK);
    assert_int_equal(deleted, 1);
    wal_get_stats(w, &st);
    assert_int_equal(st.segments, 2);
    assert_true(st.spare_bytes >= 128 * (32 + 3 + pad));
    {
        char sp[512];
        snprintf(sp, sizeof(sp), "%s/spare-0.wal.spare", dir);
        assert_true(file_size(sp) >= (off_t)(128 * (32 + 3 + pad)));
    }
    assert_int_equal(file_size(path_of(dir, 1, path, sizeof(path))), -1);
    append_n(w, 300, 200, pad); /* 257 fills at 384, 385 is the recycled file */
    wal_get_stats(w, &st);
    assert_int_equal(st.recycled, 1);
    assert_int_equal(st.spare_bytes, 0);
    assert_int_equal(st.last_lsn, 500);
    wal_close(w);

    /* The recycled segment: 116 new records, then the old segment's bytes. */
    seg_file(dir, 385, path, sizeof(path));
    assert_true(file_size(path) >= (off_t)(24 + 128 * (32 + 3 + pad)));
    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 0);
    assert_int_equal(st.last_lsn, 500);
    buf_init(&b, 0);
    wal_files_json(w, &b);
    assert_non_null(strstr(b.data, "\"name\":\"00000000000000000385.wal\",\"first_lsn\":385,"
                                    "\"last_lsn\":500,\"bytes\":236084,"));
    buf_release(&b);
    replay_all(w, &g);
    assert_int_equal(g.n, 300);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.v[i].lsn, 201 + i);
        check_rec(&g.v[i], 200 + (int)i, pad);
    }
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(append_n(w, 500, 3, pad), 503); /* in place, over the stale bytes */
    wal_close(w);

    /* The last record (503) loses its end: a torn tail even among stale bytes. */
    {
        char *z = xcalloc(1, 5);
        int fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, z, 5, 24 + 119 * (32 + 3 + pad) - 5), 5);
        close(fd);
        free(z);
    }
    errbuf_init(&eb);
    assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    wal_get_stats(w, &st);
    assert_int_equal(st.truncated_tails, 1);
    assert_int_equal(st.last_lsn, 502);
    replay_all(w, &g);
    assert_int_equal(g.n, 302);
    assert_int_equal(g.v[301].lsn, 502);
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records, 0);
    wal_close(w);
    tmpdir_free(dir);
}

static int count_spares(const char *dir)
{
    int n = 0;
    for (int i = 0; i < 8; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/spare-%d.wal.spare", dir, i);
        n += file_size(p) >= 0;
    }
    return n;
}

/* At most WAL_MAX_SPARES checkpointed segments are kept; they survive a restart
 * (adopted), are all reused before new files are made, and are deleted at open
 * when preallocation is off. Records replay exactly once throughout. */
static void test_prealloc_spares(void **state)
{
    (void)state;
    const uint64_t seg = 256 * 1024;
    const size_t pad = 2000; /* 128 records per segment */
    struct got_list g = {0};
    struct wal_stats st;
    struct errbuf eb;
    size_t deleted = 0;
    uint64_t ckpt;
    char *dir;
    struct wal *w;

    if (!room_to_prealloc("/tmp"))
        skip();
    dir = tmpdir_new();
    w = open_wal_prealloc(dir, seg);
    ckpt = append_n(w, 0, 128 * 8 + 1, pad) - 1; /* 8 full segments, 1 record in the 9th */
    errbuf_init(&eb);
    assert_int_equal(wal_checkpoint(w, ckpt, &deleted, &eb), ERR_OK);
    assert_int_equal(deleted, 8);
    assert_int_equal(count_spares(dir), WAL_MAX_SPARES);
    assert_int_equal(count_segments(dir), 1);
    wal_close(w);

    w = open_wal_prealloc(dir, seg);
    wal_get_stats(w, &st);
    assert_true(st.spare_bytes >= WAL_MAX_SPARES * 128 * (32 + 3 + pad));
    append_n(w, 128 * 8 + 1, 128 * 5, pad); /* 5 rotations: 4 reuse spares, 1 new file */
    wal_get_stats(w, &st);
    assert_int_equal(st.recycled, WAL_MAX_SPARES);
    assert_int_equal(st.spare_bytes, 0);
    assert_int_equal(count_spares(dir), 0);
    wal_close(w);

    {
        struct wal_opts o = {.dir = dir, .sync = WAL_SYNC_FDATASYNC, .max_segment_bytes = seg,
                             .checkpoint_lsn = ckpt};
        errbuf_init(&eb);
        assert_int_equal(wal_open(&o, &w, &eb), ERR_OK);
    }
    replay_all(w, &g);
    assert_int_equal(g.n, 128 * 5 + 1);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.v[i].lsn, ckpt + 1 + i);
        check_rec(&g.v[i], 128 * 8 + (int)i, pad);
    }
    got_release(&g);
    wal_get_stats(w, &st);
    assert_int_equal(st.corrupt_records + st.truncated_tails, 0);
    /* a checkpoint now deletes (preallocation off), and a stray spare goes at open */
    assert_int_equal(wal_checkpoint(w, ckpt + 128 * 4, &deleted, &eb), ERR_OK);
    assert_true(deleted >= 3);
    assert_int_equal(count_spares(dir), 0);
    wal_close(w);
    {
        char p[512];
        int fd;
        snprintf(p, sizeof(p), "%s/spare-2.wal.spare", dir);
        fd = open(p, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "ARCWAL\0\0 some old segment bytes", 31), 31);
        close(fd);
    }
    w = open_wal(dir, WAL_SYNC_FDATASYNC, seg, NULL);
    assert_int_equal(count_spares(dir), 0);
    wal_close(w);
    tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_lsn_continue_and_hint),
        cmocka_unit_test(test_replay_once_above_checkpoint),
        cmocka_unit_test(test_rotation_by_size),
        cmocka_unit_test(test_checkpoint_deletes_covered),
        cmocka_unit_test(test_checkpoint_races_rotation),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_flipped_byte_middle),
        cmocka_unit_test(test_nospace_fault_hook),
        cmocka_unit_test(test_sync_failure_readonly),
        cmocka_unit_test_teardown(test_nospace_tmpfs, tmpfs_teardown),
        cmocka_unit_test(test_async_mode),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_two_phase_and_age_rotation),
        cmocka_unit_test(test_files_json),
        cmocka_unit_test(test_leftover_tmp_removed),
        cmocka_unit_test(test_prealloc_zero_tail),
        cmocka_unit_test(test_prealloc_damage),
        cmocka_unit_test(test_prealloc_failed_write),
        cmocka_unit_test(test_prealloc_group_commit_rotation),
        cmocka_unit_test(test_prealloc_recycle),
        cmocka_unit_test(test_prealloc_spares),
    };
    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
