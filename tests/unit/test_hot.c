/* test_hot.c - the hot tier (storage/hot.h): recently flushed batches kept in
 * memory, found by file key, pinned by queries, evicted oldest first.
 *
 * Run under ASan too (build/asan): the pinned-after-eviction and forget tests are
 * only meaningful with leak and use-after-free detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/metrics.h"
#include "storage/hot.h"

/* A batch of n rows: time t[i] (or 1000 + i when t is NULL), field v = i (the row
 * index, so a segment's rows can be told apart), tag host = "h<i % 3>" with row 1
 * NULL, and a string field s = "s<i>". */
static struct batch *mk_batch(size_t n, const int64_t *t)
{
    struct batch *b = batch_new("cpu", 3);
    struct batch_col *v, *h, *s;

    v = batch_add_col(b, "v", 1, BATCH_F64, false);
    (void)v;
    h = batch_add_col(b, "host", 4, BATCH_STR, true);
    (void)h;
    s = batch_add_col(b, "s", 1, BATCH_STR, false);
    (void)s;
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        int len;
        size_t r = batch_add_row(b, t ? t[i] : 1000 + (int64_t)i);
        /* column pointers move when rows grow the vectors: look them up again */
        v = batch_find_col(b, "v", 1);
        h = batch_find_col(b, "host", 4);
        s = batch_find_col(b, "s", 1);
        batch_set_f64(v, r, (double)i);
        if (i != 1) {
            len = snprintf(buf, sizeof(buf), "h%zu", i % 3);
            batch_set_str(b, h, r, buf, (size_t)len);
        }
        len = snprintf(buf, sizeof(buf), "s%zu", i);
        batch_set_str(b, s, r, buf, (size_t)len);
    }
    return b;
}

/* The batch row of a segment's i-th row. */
static uint32_t seg_row(const struct hot_seg *g, size_t i)
{
    return g->rows ? g->rows[g->start + i] : (uint32_t)(g->start + i);
}

static int64_t seg_time(const struct hot_seg *g, size_t i)
{
    return g->b->time_us[seg_row(g, i)];
}

/* The value of column v (the original row index) at the segment's i-th row. */
static double seg_v(const struct hot_seg *g, size_t i)
{
    const struct batch_col *c = NULL;

    for (size_t k = 0; k < g->b->ncols; k++)
        if (!strcmp(g->b->cols[k].name, "v"))
            c = &g->b->cols[k];
    assert_non_null(c);
    return ((const double *)c->data)[seg_row(g, i)];
}

/* Every string of column s in the segment, touched (ASan: catches a freed batch). */
static void seg_touch(const struct hot_seg *g)
{
    const struct batch_col *c = NULL;

    for (size_t k = 0; k < g->b->ncols; k++)
        if (!strcmp(g->b->cols[k].name, "s"))
            c = &g->b->cols[k];
    assert_non_null(c);
    for (size_t i = 0; i < g->count; i++) {
        uint32_t r = seg_row(g, i);
        size_t len;
        char want[32];
        const char *got = strdict_get(g->b->dict, ((const uint32_t *)c->data)[r], &len);
        int n = snprintf(want, sizeof(want), "s%.0f", seg_v(g, i));
        assert_non_null(got);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(got, want, len);
    }
    assert_string_equal(g->b->measurement, "cpu");
}

static struct hot_stats stats(struct hot *h)
{
    struct hot_stats st;
    hot_get_stats(h, &st);
    return st;
}

static uint32_t *perm_of(const struct batch *b)
{
    uint32_t *p = malloc(b->nrows * sizeof(*p));
    assert_non_null(p);
    batch_sort_by_time(b->time_us, p, b->nrows);
    return p;
}

/* ------------------------------------------------------------------ put/get */

static void test_put_get_row_count(void **state)
{
    struct hot *h = hot_new(1 << 20);
    struct batch *b = mk_batch(10, NULL);
    struct hot_file files[] = {{"db/cpu/a.parquet", 0, 4}, {"db/cpu/b.parquet", 4, 6}};
    size_t bytes = batch_bytes(b);
    struct hot_seg g, g2;
    struct hot_stats st;
    char key[64];
    (void)state;

    /* the key is copied: the caller's buffer may change after hot_put */
    snprintf(key, sizeof(key), "%s", "db/cpu/a.parquet");
    files[0].key = key;
    hot_put(h, b, NULL, files, 2);
    memset(key, 'x', sizeof(key) - 1);
    st = stats(h);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.hits + st.misses + st.evicted, 0);

    assert_true(hot_get(h, "db/cpu/a.parquet", 4, &g));
    assert_ptr_equal(g.b, b);
    assert_null(g.rows);
    assert_int_equal(g.start, 0);
    assert_int_equal(g.count, 4);
    assert_non_null(g.pin);
    for (size_t i = 0; i < g.count; i++) {
        assert_int_equal(seg_time(&g, i), 1000 + (int64_t)i);
        assert_true(seg_v(&g, i) == (double)i);
    }
    seg_touch(&g);

    assert_true(hot_get(h, "db/cpu/b.parquet", 6, &g2));
    assert_ptr_equal(g2.b, b); /* both files share one batch */
    assert_int_equal(g2.start, 4);
    assert_int_equal(g2.count, 6);
    assert_int_equal(seg_time(&g2, 0), 1004);
    assert_int_equal(seg_time(&g2, 5), 1009);

    /* a row count that is not the catalog's: not this file's rows */
    struct hot_seg m;
    memset(&m, 0x5a, sizeof(m));
    assert_false(hot_get(h, "db/cpu/a.parquet", 5, &m));
    assert_null(m.pin); /* a miss leaves nothing to release */
    assert_false(hot_get(h, "db/cpu/a.parquet", 3, &m));
    assert_false(hot_get(h, "db/cpu/a.parquet", 0, &m));
    assert_false(hot_get(h, "db/cpu/a.parquet", -1, &m));
    assert_false(hot_get(h, "db/cpu/b.parquet", 4, &m));
    /* unknown keys, a prefix, and the overwritten caller buffer */
    assert_false(hot_get(h, "db/cpu/c.parquet", 4, &m));
    assert_false(hot_get(h, "db/cpu/a.parque", 4, &m));
    assert_false(hot_get(h, "", 4, &m));
    assert_false(hot_get(h, key, 4, &m));
    hot_release(h, &m); /* releasing a miss is harmless */

    st = stats(h);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 9);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.files, 2);

    hot_release(h, &g);
    assert_null(g.pin);
    hot_release(h, &g); /* a second release of the same seg is a no-op */
    hot_release(h, &g2);
    /* pinning again after release works, and the same file may be pinned twice */
    assert_true(hot_get(h, "db/cpu/a.parquet", 4, &g));
    assert_true(hot_get(h, "db/cpu/a.parquet", 4, &g2));
    hot_release(h, &g);
    hot_release(h, &g2);
    assert_int_equal(stats(h).hits, 4);
    hot_free(h);
}

static void test_perm_and_null_perm(void **state)
{
    /* out of order, with ties (stable: equal times keep their row order) */
    static const int64_t t[] = {50, 10, 40, 20, 30, 10, 60, 20, 55, 5};
    struct hot *h = hot_new(1 << 20);
    struct batch *b = mk_batch(10, t);
    uint32_t *perm = perm_of(b);
    size_t bytes = batch_bytes(b) + 10 * sizeof(uint32_t);
    /* sorted: 5(9) 10(1) 10(5) 20(3) 20(7) 30(4) 40(2) 50(0) 55(8) 60(6); hours cut
     * at perm positions 0..4 and 4..10 */
    struct hot_file files[] = {{"k/lo", 0, 4}, {"k/hi", 4, 6}};
    static const uint32_t want_rows[] = {9, 1, 5, 3, 7, 4, 2, 0, 8, 6};
    struct hot_seg g;
    (void)state;

    hot_put(h, b, perm, files, 2);
    assert_int_equal(stats(h).bytes, bytes); /* the row order is counted too */

    assert_true(hot_get(h, "k/lo", 4, &g));
    assert_ptr_equal(g.rows, perm);
    assert_int_equal(g.start, 0);
    assert_int_equal(g.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(seg_row(&g, i), want_rows[i]);
        assert_true(seg_v(&g, i) == (double)want_rows[i]);
    }
    seg_touch(&g);
    /* bounds over a permuted segment */
    hot_seg_bound(&g, 10, 10);
    assert_int_equal(g.count, 2);
    assert_int_equal(seg_row(&g, 0), 1);
    assert_int_equal(seg_row(&g, 1), 5);
    hot_release(h, &g);

    assert_true(hot_get(h, "k/hi", 6, &g));
    assert_int_equal(g.start, 4);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(seg_row(&g, i), want_rows[4 + i]);
        if (i)
            assert_true(seg_time(&g, i - 1) <= seg_time(&g, i));
    }
    hot_seg_bound(&g, 21, 55);
    assert_int_equal(g.count, 4);
    assert_int_equal(seg_time(&g, 0), 30);
    assert_int_equal(seg_time(&g, 3), 55);
    hot_release(h, &g);
    hot_free(h); /* frees batch and perm (ASan: no leak) */

    /* a NULL perm: the batch is already in time order */
    h = hot_new(1 << 20);
    b = mk_batch(5, NULL);
    bytes = batch_bytes(b);
    struct hot_file one = {"k/one", 0, 5};
    hot_put(h, b, NULL, &one, 1);
    assert_int_equal(stats(h).bytes, bytes);
    assert_true(hot_get(h, "k/one", 5, &g));
    assert_null(g.rows);
    hot_seg_bound(&g, 1001, 1003);
    assert_null(g.rows);
    assert_int_equal(g.start, 1);
    assert_int_equal(g.count, 3);
    hot_release(h, &g);
    hot_free(h);
}

/* ----------------------------------------------------------------- bounds */

/* Pin `key` again and bound it to [lo, hi]; return the seg (still pinned). */
static struct hot_seg bound(struct hot *h, const char *key, int64_t rows, int64_t lo, int64_t hi)
{
    struct hot_seg g;
    assert_true(hot_get(h, key, rows, &g));
    hot_seg_bound(&g, lo, hi);
    return g;
}

static void check_bound(struct hot *h, const char *key, int64_t rows, int64_t lo, int64_t hi,
                        size_t want_first, size_t want_count)
{
    struct hot_seg whole, g = bound(h, key, rows, lo, hi);
    size_t rel;

    assert_true(hot_get(h, key, rows, &whole));
    /* brute force: the rows of the whole file within [lo, hi] are exactly g's */
    size_t n = 0, first = SIZE_MAX;
    for (size_t i = 0; i < whole.count; i++) {
        int64_t t = seg_time(&whole, i);
        if (t >= lo && t <= hi) {
            if (first == SIZE_MAX)
                first = i;
            n++;
        }
    }
    assert_int_equal(g.count, n);
    assert_int_equal(g.count, want_count);
    assert_ptr_equal(g.b, whole.b);
    assert_ptr_equal(g.rows, whole.rows);
    if (want_count) {
        rel = g.start - whole.start;
        assert_int_equal(rel, want_first);
        assert_int_equal(rel, first);
        for (size_t i = 0; i < g.count; i++) {
            assert_true(seg_time(&g, i) >= lo && seg_time(&g, i) <= hi);
            assert_int_equal(seg_row(&g, i), seg_row(&whole, rel + i));
        }
    }
    /* never outside the file's own rows */
    assert_true(g.start >= whole.start && g.start + g.count <= whole.start + whole.count);
    hot_release(h, &g);
    hot_release(h, &whole);
}

static void test_seg_bound(void **state)
{
    /* sorted, with runs of equal times */
    static const int64_t t[] = {10, 20, 20, 20, 30, 40, 40, 50};
    struct hot *h = hot_new(1 << 20);
    struct batch *b = mk_batch(8, t);
    /* "all": the whole batch; "mid": rows 2..7 (20 20 30 40 40) of the same batch */
    struct hot_file files[] = {{"all", 0, 8}, {"mid", 2, 5}};
    (void)state;

    hot_put(h, b, NULL, files, 2);
    check_bound(h, "all", 8, INT64_MIN, INT64_MAX, 0, 8); /* whole range */
    check_bound(h, "all", 8, 10, 50, 0, 8);               /* exactly the ends */
    check_bound(h, "all", 8, 20, 20, 1, 3);               /* equal times, min == max */
    check_bound(h, "all", 8, 11, 49, 1, 6);
    check_bound(h, "all", 8, 10, 10, 0, 1); /* first row only */
    check_bound(h, "all", 8, 50, 50, 7, 1); /* last row only */
    check_bound(h, "all", 8, 40, INT64_MAX, 5, 3);
    check_bound(h, "all", 8, INT64_MIN, 20, 0, 4);
    check_bound(h, "all", 8, 21, 29, 0, 0);  /* in a gap: empty */
    check_bound(h, "all", 8, 51, 100, 0, 0); /* after the end */
    check_bound(h, "all", 8, 0, 9, 0, 0);    /* before the start */
    check_bound(h, "all", 8, 40, 20, 0, 0);  /* min > max */
    check_bound(h, "all", 8, 50, 10, 0, 0);
    check_bound(h, "all", 8, 21, 20, 0, 0);
    check_bound(h, "all", 8, INT64_MAX, INT64_MIN, 0, 0);
    /* a file that starts inside its batch */
    check_bound(h, "mid", 5, INT64_MIN, INT64_MAX, 0, 5);
    check_bound(h, "mid", 5, 20, 20, 0, 2);
    check_bound(h, "mid", 5, 30, 40, 2, 3);
    check_bound(h, "mid", 5, 10, 10, 0, 0); /* row 0 of the batch is not this file's */
    check_bound(h, "mid", 5, 50, 50, 0, 0); /* nor is row 7 */
    check_bound(h, "mid", 5, 41, 60, 0, 0);
    check_bound(h, "mid", 5, 40, 30, 0, 0);

    /* bounding twice narrows further (the engine bounds, then filters) */
    struct hot_seg g = bound(h, "all", 8, 20, 40);
    assert_int_equal(g.count, 6);
    hot_seg_bound(&g, 30, 50);
    assert_int_equal(g.count, 3);
    assert_int_equal(seg_time(&g, 0), 30);
    hot_seg_bound(&g, 41, 50);
    assert_int_equal(g.count, 0);
    hot_release(h, &g);
    hot_free(h);

    /* the same table over a permuted batch, and every (lo, hi) pair brute-forced */
    static const int64_t u[] = {40, 20, 50, 10, 20, 40, 30, 20};
    struct batch *pb = mk_batch(8, u);
    uint32_t *perm = perm_of(pb);
    struct hot_file pf[] = {{"p", 0, 8}, {"q", 3, 4}};
    h = hot_new(1 << 20);
    hot_put(h, pb, perm, pf, 2);
    for (int64_t lo = 5; lo <= 55; lo += 5)
        for (int64_t hi = 5; hi <= 55; hi += 5) {
            struct hot_seg w, s;
            for (int f = 0; f < 2; f++) {
                size_t n = 0, first = SIZE_MAX;
                assert_true(hot_get(h, pf[f].key, (int64_t)pf[f].count, &w));
                s = w;
                hot_seg_bound(&s, lo, hi);
                for (size_t i = 0; i < w.count; i++)
                    if (seg_time(&w, i) >= lo && seg_time(&w, i) <= hi) {
                        first = first == SIZE_MAX ? i : first;
                        n++;
                    }
                assert_int_equal(s.count, n);
                if (n)
                    assert_int_equal(s.start, w.start + first);
                hot_release(h, &w);
            }
        }
    hot_free(h);
}

/* --------------------------------------------------------------- eviction */

static void test_eviction_oldest_first(void **state)
{
    struct batch *b[5];
    struct hot *h;
    struct hot_seg g;
    struct hot_stats st;
    size_t one;
    char key[16];
    (void)state;

    for (int i = 0; i < 5; i++)
        b[i] = mk_batch(100, NULL);
    one = batch_bytes(b[0]);
    assert_int_equal(batch_bytes(b[4]), one);
    h = hot_new(3 * one + one / 2); /* room for three */
    for (int i = 0; i < 3; i++) {
        struct hot_file f[2] = {{NULL, 0, 50}, {NULL, 50, 50}};
        char k0[16], k1[16];
        snprintf(k0, sizeof(k0), "b%d/0", i);
        snprintf(k1, sizeof(k1), "b%d/1", i);
        f[0].key = k0;
        f[1].key = k1;
        hot_put(h, b[i], NULL, f, 2);
    }
    st = stats(h);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.files, 6);
    assert_int_equal(st.bytes, 3 * one);
    assert_int_equal(st.evicted, 0);

    /* reading the oldest does not make it younger: eviction is by insertion order */
    assert_true(hot_get(h, "b0/0", 50, &g));
    hot_release(h, &g);

    struct hot_file f3 = {"b3/0", 0, 100};
    hot_put(h, b[3], NULL, &f3, 1);
    st = stats(h);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.files, 5); /* both files of b0 went */
    assert_int_equal(st.bytes, 3 * one);
    assert_int_equal(st.evicted, 1);
    assert_false(hot_get(h, "b0/0", 50, &g));
    assert_false(hot_get(h, "b0/1", 50, &g));
    for (int i = 1; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof(key), "b%d/%d", i, k);
            assert_true(hot_get(h, key, 50, &g));
            hot_release(h, &g);
        }
    assert_true(hot_get(h, "b3/0", 100, &g));
    hot_release(h, &g);

    /* a batch larger than the whole budget is not kept (and evicts nothing) */
    struct batch *big = mk_batch(5000, NULL);
    struct hot_file fb = {"big", 0, 5000};
    assert_true(batch_bytes(big) > 3 * one + one / 2);
    hot_put(h, big, NULL, &fb, 1); /* freed at once: ASan reports a leak otherwise */
    assert_false(hot_get(h, "big", 5000, &g));
    st = stats(h);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.files, 5);
    assert_int_equal(st.evicted, 1);
    assert_true(hot_get(h, "b1/0", 50, &g));
    hot_release(h, &g);

    /* the next one pushes out b1, then b2 when two need room */
    struct hot_file f4 = {"b4/0", 0, 100};
    hot_put(h, b[4], NULL, &f4, 1);
    assert_false(hot_get(h, "b1/0", 50, &g));
    assert_true(hot_get(h, "b2/0", 50, &g));
    hot_release(h, &g);
    struct batch *two = mk_batch(2000, NULL); /* more than one, less than two slots */
    struct hot_file f5 = {"b5/0", 0, 2000};
    size_t two_bytes = batch_bytes(two);
    assert_true(two_bytes > one + one / 2 && two_bytes <= 2 * one + one / 2);
    hot_put(h, two, NULL, &f5, 1);
    assert_false(hot_get(h, "b2/0", 50, &g));
    assert_false(hot_get(h, "b3/0", 100, &g));
    assert_true(hot_get(h, "b4/0", 100, &g));
    hot_release(h, &g);
    assert_true(hot_get(h, "b5/0", 2000, &g));
    hot_release(h, &g);
    st = stats(h);
    assert_int_equal(st.evicted, 4);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.bytes, one + two_bytes);
    assert_true(st.bytes <= 3 * one + one / 2);
    hot_free(h);
}

static void test_pinned_survives_eviction(void **state)
{
    struct batch *a = mk_batch(200, NULL), *b = mk_batch(200, NULL);
    size_t one = batch_bytes(a);
    struct hot *h = hot_new(one + one / 2); /* room for one */
    struct hot_file fa[] = {{"a/0", 0, 120}, {"a/1", 120, 80}};
    struct hot_file fb = {"b/0", 0, 200};
    struct hot_seg g, g2;
    (void)state;

    hot_put(h, a, NULL, fa, 2);
    assert_true(hot_get(h, "a/0", 120, &g));
    assert_true(hot_get(h, "a/1", 80, &g2));
    hot_seg_bound(&g2, 1150, 1170);
    hot_put(h, b, NULL, &fb, 1); /* evicts a while a query reads it */
    struct hot_stats st = stats(h);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.bytes, batch_bytes(b)); /* a is no longer counted */
    struct hot_seg m;
    assert_false(hot_get(h, "a/0", 120, &m)); /* new queries read the file */

    /* the pinned rows stay readable until released (ASan: no use after free) */
    assert_ptr_equal(g.b, a);
    for (size_t i = 0; i < g.count; i++)
        assert_true(seg_v(&g, i) == (double)i);
    seg_touch(&g);
    hot_release(h, &g);
    /* still pinned by g2 */
    assert_int_equal(g2.count, 21);
    for (size_t i = 0; i < g2.count; i++)
        assert_int_equal(seg_time(&g2, i), 1150 + (int64_t)i);
    seg_touch(&g2);
    hot_release(h, &g2); /* the last pin: a is freed now (ASan: no leak) */

    /* b, never pinned now, is freed by hot_free */
    assert_true(hot_get(h, "b/0", 200, &g));
    hot_release(h, &g);
    hot_free(h);
}

/* ----------------------------------------------------------------- forget */

static void test_forget(void **state)
{
    struct hot *h = hot_new(1 << 20);
    struct batch *b = mk_batch(30, NULL);
    size_t bytes = batch_bytes(b);
    struct hot_file f[] = {{"f/0", 0, 10}, {"f/1", 10, 10}, {"f/2", 20, 10}};
    struct hot_seg g;
    struct hot_stats st;
    (void)state;

    hot_forget(NULL, "f/0"); /* storage calls it with the tier off */
    hot_put(h, b, NULL, f, 3);
    hot_forget(h, "nope");
    hot_forget(h, "f/1");
    st = stats(h);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.bytes, bytes); /* the batch still serves f/0 and f/2 */
    assert_false(hot_get(h, "f/1", 10, &g));
    assert_true(hot_get(h, "f/0", 10, &g));
    assert_int_equal(seg_time(&g, 9), 1009);
    hot_release(h, &g);
    assert_true(hot_get(h, "f/2", 10, &g));
    assert_int_equal(seg_time(&g, 0), 1020);
    seg_touch(&g);
    hot_release(h, &g);
    hot_forget(h, "f/1"); /* twice: no-op */
    assert_int_equal(stats(h).files, 2);

    /* forget the rest while one is pinned: readable until released, then freed */
    assert_true(hot_get(h, "f/2", 10, &g));
    hot_forget(h, "f/0");
    hot_forget(h, "f/2");
    st = stats(h);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.bytes, 0);
    assert_false(hot_get(h, "f/0", 10, &(struct hot_seg){0}));
    seg_touch(&g);
    assert_int_equal(seg_time(&g, 0), 1020);
    hot_release(h, &g);

    /* forgetting every file of an unpinned batch frees it at once (ASan: no leak,
     * and hot_free below must not free it again) */
    struct batch *c = mk_batch(4, NULL);
    struct hot_file fc[] = {{"c/0", 0, 2}, {"c/1", 2, 2}};
    hot_put(h, c, perm_of(c), fc, 2);
    hot_forget(h, "c/1");
    hot_forget(h, "c/0");
    st = stats(h);
    assert_int_equal(st.files + st.batches + st.bytes, 0);

    /* a forgotten batch no longer takes room: a new one fits without evicting */
    struct batch *d = mk_batch(30, NULL);
    struct hot_file fd = {"d/0", 0, 30};
    uint64_t ev = stats(h).evicted;
    hot_put(h, d, NULL, &fd, 1);
    assert_int_equal(stats(h).evicted, ev);
    assert_true(hot_get(h, "d/0", 30, &g));
    hot_release(h, &g);
    hot_free(h);
}

/* ----------------------------------------------------------- stats & edges */

static void test_stats_counters(void **state)
{
    struct batch *a = mk_batch(50, NULL);
    size_t one = batch_bytes(a);
    struct hot *h = hot_new(2 * one + one / 2);
    struct hot_seg g;
    struct hot_stats st;
    uint64_t hits = 0, misses = 0;
    (void)state;

    st = stats(h);
    assert_int_equal(st.bytes + st.files + st.batches + st.hits + st.misses + st.evicted, 0);
    for (int i = 0; i < 6; i++) {
        char k0[16], k1[16], k2[16];
        struct hot_file f[3] = {{k0, 0, 10}, {k1, 10, 20}, {k2, 30, 20}};
        snprintf(k0, sizeof(k0), "%d/a", i);
        snprintf(k1, sizeof(k1), "%d/b", i);
        snprintf(k2, sizeof(k2), "%d/c", i);
        hot_put(h, i ? mk_batch(50, NULL) : a, NULL, f, 3);
        st = stats(h);
        assert_int_equal(st.batches, i < 2 ? i + 1 : 2);
        assert_int_equal(st.files, 3 * st.batches);
        assert_int_equal(st.bytes, st.batches * one);
        assert_int_equal(st.evicted, i < 2 ? 0 : i - 1);
        /* hits and misses */
        assert_true(hot_get(h, k1, 20, &g));
        hits++;
        hot_release(h, &g);
        assert_false(hot_get(h, k1, 21, &g));
        misses++;
        if (i >= 2) {
            snprintf(k0, sizeof(k0), "%d/a", i - 2);
            assert_false(hot_get(h, k0, 10, &g)); /* evicted */
            misses++;
        }
        st = stats(h);
        assert_int_equal(st.hits, hits);
        assert_int_equal(st.misses, misses);
    }
    hot_forget(h, "5/a");
    st = stats(h);
    assert_int_equal(st.files, 5);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.misses, misses); /* forget is not a lookup */
    hot_get_stats(NULL, &st);
    assert_int_equal(st.bytes + st.files + st.batches + st.hits + st.misses + st.evicted, 0);
    hot_free(h);
}

static void test_zero_budget_keeps_nothing(void **state)
{
    struct hot *h = hot_new(0);
    struct hot_seg g;
    struct hot_stats st;
    (void)state;

    for (int i = 0; i < 3; i++) {
        struct batch *b = mk_batch(5, i == 1 ? (const int64_t[]){5, 4, 3, 2, 1} : NULL);
        struct hot_file f = {"z", 0, 5};
        hot_put(h, b, i == 1 ? perm_of(b) : NULL, &f, 1); /* freed at once */
        assert_false(hot_get(h, "z", 5, &g));
    }
    st = stats(h);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.misses, 3);
    hot_free(h);
    hot_free(NULL);

    /* no files: nothing to find the batch by, so it is not kept either */
    h = hot_new(1 << 20);
    hot_put(h, mk_batch(5, NULL), NULL, NULL, 0);
    st = stats(h);
    assert_int_equal(st.bytes + st.files + st.batches, 0);
    hot_free(h);
}

static void test_many_files(void **state)
{
    /* more files than the table's initial size: every one still found */
    struct hot *h = hot_new((size_t)256 << 20);
    struct hot_seg g;
    enum { NB = 40, NF = 50 };
    (void)state;

    for (int i = 0; i < NB; i++) {
        struct batch *b = mk_batch(NF * 2, NULL);
        struct hot_file f[NF];
        char keys[NF][32];
        for (int k = 0; k < NF; k++) {
            snprintf(keys[k], sizeof(keys[k]), "db/m/%04d/%02d.parquet", i, k);
            f[k].key = keys[k];
            f[k].start = (size_t)k * 2;
            f[k].count = 2;
        }
        hot_put(h, b, NULL, f, NF);
    }
    assert_int_equal(stats(h).files, NB * NF);
    for (int i = 0; i < NB; i++)
        for (int k = 0; k < NF; k++) {
            char key[32];
            snprintf(key, sizeof(key), "db/m/%04d/%02d.parquet", i, k);
            assert_true(hot_get(h, key, 2, &g));
            assert_int_equal(g.start, (size_t)k * 2);
            assert_int_equal(seg_time(&g, 1), 1000 + k * 2 + 1);
            hot_release(h, &g);
            if (k % 2)
                hot_forget(h, key);
        }
    assert_int_equal(stats(h).files, NB * NF / 2);
    assert_int_equal(stats(h).batches, NB);
    hot_free(h);
}

/* ------------------------------------------------------------------- memos */

static uint32_t *rows_of(size_t n, uint32_t first)
{
    uint32_t *r = malloc((n ? n : 1) * sizeof(*r));
    assert_non_null(r);
    for (size_t i = 0; i < n; i++)
        r[i] = first + (uint32_t)i;
    return r;
}

static void test_memo(void **state)
{
    struct hot *h = hot_new(1 << 20);
    struct batch *b = mk_batch(100, NULL);
    struct hot_file f[] = {{"m/0", 0, 40}, {"m/1", 40, 60}};
    struct hot_seg g0, g1, g;
    const uint32_t *rows;
    uint32_t *mine;
    size_t n;
    (void)state;

    hot_put(h, b, NULL, f, 2);
    assert_true(hot_get(h, "m/0", 40, &g0));
    assert_true(hot_get(h, "m/1", 60, &g1));
    assert_false(hot_memo_get(h, &g0, "latest\x1fhost", &rows, &n));

    /* kept: then found by the same file and name, never by another file or name */
    mine = rows_of(10, 0);
    hot_memo_put(h, &g0, "latest\x1fhost", mine, 10);
    assert_true(hot_memo_get(h, &g0, "latest\x1fhost", &rows, &n));
    assert_ptr_equal(rows, mine);
    assert_int_equal(n, 10);
    assert_int_equal(rows[9], 9);
    assert_false(hot_memo_get(h, &g1, "latest\x1fhost", &rows, &n)); /* same block, other file */
    assert_false(hot_memo_get(h, &g0, "latest\x1fHOST", &rows, &n));
    assert_false(hot_memo_get(h, &g0, "latest\x1fhost\x1f", &rows, &n));
    assert_false(hot_memo_get(h, &g0, "latest", &rows, &n));

    /* a second memo of the same name is not kept (freed: ASan reports a leak else) */
    hot_memo_put(h, &g0, "latest\x1fhost", rows_of(5, 50), 5);
    assert_true(hot_memo_get(h, &g0, "latest\x1fhost", &rows, &n));
    assert_ptr_equal(rows, mine);
    assert_int_equal(n, 10);

    /* only a real reduction is kept: n <= count / 4 */
    hot_memo_put(h, &g1, "a", rows_of(16, 40), 16); /* 16 * 4 > 60 */
    assert_false(hot_memo_get(h, &g1, "a", &rows, &n));
    hot_memo_put(h, &g1, "a", rows_of(15, 40), 15); /* 15 * 4 == 60 */
    assert_true(hot_memo_get(h, &g1, "a", &rows, &n));
    assert_int_equal(n, 15);
    assert_int_equal(rows[0], 40);
    hot_memo_put(h, &g1, "empty", rows_of(0, 0), 0); /* no rows at all: kept too */
    assert_true(hot_memo_get(h, &g1, "empty", &rows, &n));
    assert_int_equal(n, 0);

    /* another pin of the same file sees the memo */
    assert_true(hot_get(h, "m/0", 40, &g));
    assert_true(hot_memo_get(h, &g, "latest\x1fhost", &rows, &n));
    assert_ptr_equal(rows, mine);
    hot_release(h, &g);

    /* at most 8 per block (3 so far) */
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        hot_memo_put(h, &g0, name, rows_of(1, 0), 1);
        assert_true(hot_memo_get(h, &g0, name, &rows, &n));
    }
    hot_memo_put(h, &g0, "ninth", rows_of(1, 0), 1);
    assert_false(hot_memo_get(h, &g0, "ninth", &rows, &n));
    hot_memo_put(h, &g1, "ninth", rows_of(1, 40), 1);
    assert_false(hot_memo_get(h, &g1, "ninth", &rows, &n));

    /* an unpinned segment has no memos and takes none (the rows are freed) */
    memset(&g, 0, sizeof(g));
    assert_false(hot_memo_get(h, &g, "latest\x1fhost", &rows, &n));
    hot_memo_put(h, &g, "x", rows_of(1, 0), 1);
    hot_memo_put(NULL, &g0, "x", rows_of(1, 0), 1);
    assert_false(hot_memo_get(NULL, &g0, "latest\x1fhost", &rows, &n));

    /* memos stay readable while pinned after eviction, and go with the block */
    assert_true(hot_memo_get(h, &g0, "latest\x1fhost", &rows, &n));
    struct batch *big = mk_batch(5000, NULL);
    struct hot_file fb = {"other", 0, 5000};
    hot_release(h, &g0);
    hot_release(h, &g1);
    hot_free(h); /* no pins left: frees the block and its 8 memos */
    h = hot_new(batch_bytes(big) + 1000);
    b = mk_batch(100, NULL);
    hot_put(h, b, NULL, f, 2);
    assert_true(hot_get(h, "m/1", 60, &g1));
    mine = rows_of(3, 41);
    hot_memo_put(h, &g1, "latest\x1fhost", mine, 3);
    hot_put(h, big, NULL, &fb, 1); /* evicts b while g1 pins it */
    assert_int_equal(stats(h).evicted, 1);
    assert_true(hot_memo_get(h, &g1, "latest\x1fhost", &rows, &n));
    assert_ptr_equal(rows, mine);
    assert_int_equal(rows[2], 43);
    assert_int_equal(g1.b->time_us[rows[2]], 1043);
    hot_release(h, &g1); /* frees b, its perm and its memo (ASan: no leak) */
    assert_false(hot_get(h, "m/1", 60, &g1));
    hot_free(h);
}

static void test_metrics(void **state)
{
    struct metrics *m = metrics_new();
    struct batch *b = mk_batch(20, NULL);
    size_t one = batch_bytes(b);
    struct hot *h = hot_new(2 * one + one / 2);
    struct hot_file f[] = {{"x/0", 0, 10}, {"x/1", 10, 10}};
    struct hot_seg g;
    (void)state;

    hot_set_metrics(h, m);
    hot_set_metrics(h, NULL);
    hot_set_metrics(NULL, m);
#define VAL(kind, name) metric_value(metrics_##kind(m, name, "", NULL))
    hot_put(h, b, NULL, f, 2);
    assert_int_equal(VAL(gauge, "arc_hot_bytes"), one);
    assert_int_equal(VAL(gauge, "arc_hot_files"), 2);
    assert_true(hot_get(h, "x/0", 10, &g));
    hot_release(h, &g);
    assert_false(hot_get(h, "x/0", 11, &g));
    assert_false(hot_get(h, "nope", 1, &g));
    assert_int_equal(VAL(counter, "arc_hot_hits_total"), 1);
    assert_int_equal(VAL(counter, "arc_hot_misses_total"), 2);
    hot_forget(h, "x/1");
    assert_int_equal(VAL(gauge, "arc_hot_files"), 1);
    for (int i = 0; i < 3; i++) {
        char k[8];
        struct hot_file fi = {k, 0, 20};
        snprintf(k, sizeof(k), "y/%d", i);
        hot_put(h, mk_batch(20, NULL), NULL, &fi, 1);
    }
    /* x, y/0, y/1, y/2 put in a budget of two: x and y/0 went */
    struct hot_stats st = stats(h);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(VAL(counter, "arc_hot_evicted_batches_total"), st.evicted);
    assert_int_equal(VAL(gauge, "arc_hot_bytes"), st.bytes);
    assert_int_equal(VAL(gauge, "arc_hot_files"), st.files);
    assert_int_equal(st.files, 2);
    /* forgetting the last file of a batch drops it from the gauges too */
    hot_forget(h, "y/2");
    st = stats(h);
    assert_int_equal(VAL(gauge, "arc_hot_bytes"), st.bytes);
    assert_int_equal(VAL(gauge, "arc_hot_files"), 1);
    assert_int_equal(st.bytes, one);
#undef VAL
    hot_free(h);
    metrics_free(m);
}

/* ------------------------------------------------------------- threads */

struct thr {
    struct hot *h;
    int id;
    size_t bad;
};

static void *worker(void *arg)
{
    struct thr *t = arg;
    unsigned seed = (unsigned)t->id * 7919u + 1;

    for (int i = 0; i < 300; i++) {
        char keys[3][32];
        struct hot_file f[3];
        struct batch *b = mk_batch(30, NULL);
        for (int k = 0; k < 3; k++) {
            snprintf(keys[k], sizeof(keys[k]), "t%d/%d/%d", t->id, i, k);
            f[k].key = keys[k];
            f[k].start = (size_t)k * 10;
            f[k].count = 10;
        }
        hot_put(t->h, b, NULL, f, 3);
        /* read someone's recent file: its rows must be its own */
        for (int r = 0; r < 4; r++) {
            char key[32];
            struct hot_seg g;
            int who = (int)(rand_r(&seed) % 4), j = i - (int)(rand_r(&seed) % 3), k;
            k = (int)(rand_r(&seed) % 3);
            if (j < 0)
                continue;
            snprintf(key, sizeof(key), "t%d/%d/%d", who, j, k);
            if (!hot_get(t->h, key, 10, &g))
                continue;
            if (g.start != (size_t)k * 10 || g.count != 10 || seg_time(&g, 0) != 1000 + k * 10 ||
                seg_v(&g, 9) != (double)(k * 10 + 9))
                t->bad++;
            {
                /* a memo of this file (several threads may race to make it) */
                const uint32_t *mr;
                size_t mn;
                uint32_t *mine = malloc(2 * sizeof(*mine));
                mine[0] = (uint32_t)k * 10;
                mine[1] = (uint32_t)k * 10 + 9;
                hot_memo_put(t->h, &g, "ends", mine, 2);
                if (!hot_memo_get(t->h, &g, "ends", &mr, &mn) || mn != 2 ||
                    mr[0] != (uint32_t)k * 10 || mr[1] != (uint32_t)k * 10 + 9)
                    t->bad++;
            }
            hot_seg_bound(&g, 1000 + k * 10 + 2, 1000 + k * 10 + 4);
            if (g.count != 3)
                t->bad++;
            if (rand_r(&seed) % 2) {
                snprintf(key, sizeof(key), "t%d/%d/%d", who, j, (k + 1) % 3);
                hot_forget(t->h, key);
            }
            hot_release(t->h, &g);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    size_t one;
    struct batch *probe = mk_batch(30, NULL);
    struct thr t[4];
    pthread_t th[4];
    (void)state;

    one = batch_bytes(probe);
    batch_free(probe);
    struct hot *h = hot_new(20 * one); /* small: evictions all the time */
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){h, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(t[i].bad, 0);
    }
    struct hot_stats st = stats(h);
    assert_true(st.bytes <= 20 * one);
    assert_true(st.batches <= 20);
    assert_true(st.evicted > 0);
    assert_true(st.hits > 0);
    hot_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_row_count),
        cmocka_unit_test(test_perm_and_null_perm),
        cmocka_unit_test(test_seg_bound),
        cmocka_unit_test(test_eviction_oldest_first),
        cmocka_unit_test(test_pinned_survives_eviction),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_stats_counters),
        cmocka_unit_test(test_zero_budget_keeps_nothing),
        cmocka_unit_test(test_many_files),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
