/* test_batch.c - column batches and the string dictionary (core/batch.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"

static void test_strdict(void **state)
{
    struct strdict *d = strdict_new();
    char s[32];
    size_t len, i;
    uint32_t id;
    (void)state;

    assert_int_equal(strdict_intern(d, "a", 1), 0);
    assert_int_equal(strdict_intern(d, "b", 1), 1);
    assert_int_equal(strdict_intern(d, "a", 1), 0);
    assert_int_equal(strdict_intern(d, "a\0b", 3), 2); /* embedded NUL is its own string */
    assert_int_equal(strdict_intern(d, "", 0), 3);
    assert_string_equal(strdict_get(d, 1, &len), "b");
    assert_int_equal(len, 1);
    assert_memory_equal(strdict_get(d, 2, &len), "a\0b", 3);
    assert_int_equal(len, 3);
    assert_null(strdict_get(d, 99, &len));
    /* growth: ids stay dense and stable, old pointers stay valid */
    const char *p0 = strdict_get(d, 0, NULL);
    for (i = 0; i < 100000; i++) {
        int n = snprintf(s, sizeof(s), "host-%zu", i);
        assert_int_equal(strdict_intern(d, s, (size_t)n), i + 4);
    }
    assert_int_equal(strdict_count(d), 100004);
    assert_ptr_equal(strdict_get(d, 0, NULL), p0);
    assert_true(strdict_find(d, "host-77777", 10, &id));
    assert_int_equal(id, 77777 + 4);
    assert_false(strdict_find(d, "host-100000", 11, &id));
    assert_string_equal(strdict_get(d, 4 + 99999, NULL), "host-99999");
    assert_true(strdict_bytes(d) > 100000 * 10);
    strdict_free(d);
    strdict_free(NULL);
}

static void test_rows_cols_nulls(void **state)
{
    struct batch *b = batch_new("cpuX", 3);
    struct batch_col *v, *h, *s;
    size_t r, len;
    (void)state;

    assert_string_equal(b->measurement, "cpu");
    r = batch_add_row(b, 100);
    assert_int_equal(r, 0);
    v = batch_add_col(b, "v", 1, BATCH_F64, false);
    assert_false(batch_is_valid(v, 0)); /* earlier rows are NULL in a new column */
    batch_set_f64(v, 0, 1.5);
    assert_true(batch_is_valid(v, 0));
    h = batch_add_col(b, "host", 4, BATCH_F64 /* ignored for tags */, true);
    assert_int_equal(h->type, BATCH_STR);
    assert_true(h->is_tag);
    for (r = 1; r < 1000; r++) {
        assert_int_equal(batch_add_row(b, (int64_t)r), r);
        if (r % 2)
            batch_set_str(b, h, r, "a", 1);
    }
    /* column pointers move when columns are added: look them up again */
    v = batch_find_col(b, "v", 1);
    h = batch_find_col(b, "host", 4);
    assert_non_null(v);
    assert_null(batch_find_col(b, "nope", 4));
    assert_int_equal(b->nrows, 1000);
    assert_int_equal(b->time_us[999], 999);
    assert_false(batch_is_valid(v, 1));
    assert_true(batch_is_valid(h, 999));
    assert_false(batch_is_valid(h, 998));
    assert_string_equal(strdict_get(b->dict, ((uint32_t *)h->data)[1], &len), "a");
    s = batch_add_col(b, "s", 1, BATCH_BOOL, false);
    batch_set_bool(s, 5, true);
    assert_int_equal(((uint8_t *)s->data)[5], 1);
    assert_false(batch_is_valid(s, 4));
    assert_true(batch_bytes(b) > 1000 * 8);
    batch_free(b);
    batch_free(NULL);
}

static void test_add_rows_widen_validity(void **state)
{
    struct batch *b = batch_new("m", 1);
    struct batch_col *i64, *u64;
    size_t r0;
    (void)state;

    i64 = batch_add_col(b, "i", 1, BATCH_I64, false);
    r0 = batch_add_rows(b, 3);
    assert_int_equal(r0, 0);
    assert_int_equal(b->nrows, 3);
    assert_int_equal(b->time_us[2], 0);
    batch_set_i64(i64, 0, -7);
    batch_set_i64(i64, 2, 9007199254740993LL);
    batch_col_widen_to_f64(b, i64);
    assert_int_equal(i64->type, BATCH_F64);
    assert_true(((double *)i64->data)[0] == -7.0);
    assert_true(((double *)i64->data)[2] == 9007199254740992.0);
    assert_false(batch_is_valid(i64, 1));
    u64 = batch_add_col(b, "u", 1, BATCH_U64, false);
    batch_set_u64(u64, 0, UINT64_MAX);
    batch_set_u64(u64, 1, 1);
    batch_set_u64(u64, 2, 2);
    batch_col_widen_to_f64(b, u64);
    assert_true(((double *)u64->data)[0] == 18446744073709551616.0);
    /* u has no NULL: its validity vector is dropped; i keeps its own */
    batch_drop_full_validity(b);
    u64 = batch_find_col(b, "u", 1);
    i64 = batch_find_col(b, "i", 1);
    assert_null(u64->valid);
    assert_non_null(i64->valid);
    /* appending after the drop re-creates it: old rows present, new row NULL */
    batch_add_row(b, 5);
    assert_non_null(u64->valid);
    assert_true(batch_is_valid(u64, 2));
    assert_false(batch_is_valid(u64, 3));
    assert_string_equal(batch_type_sql(BATCH_F64), "DOUBLE");
    assert_string_equal(batch_type_sql(BATCH_I64), "BIGINT");
    assert_string_equal(batch_type_sql(BATCH_U64), "UBIGINT");
    assert_string_equal(batch_type_sql(BATCH_BOOL), "BOOLEAN");
    assert_string_equal(batch_type_sql(BATCH_STR), "VARCHAR");
    batch_free(b);
}

/* Strings that differ in one byte at every position, for every length up to 40:
 * the hash reads the tail with overlapping loads, each byte must count. */
static void test_strdict_every_byte_counts(void **state)
{
    struct strdict *d = strdict_new();
    char s[41];
    size_t len, pos, n = 0;
    uint32_t id;
    (void)state;

    for (len = 1; len <= 40; len++) {
        memset(s, 'x', len);
        for (pos = 0; pos < len; pos++) {
            s[pos] = 'y';
            assert_int_equal(strdict_intern(d, s, len), n);
            n++;
            s[pos] = 'x';
        }
    }
    for (len = 1; len <= 40; len++) { /* all-'x' strings are new too */
        memset(s, 'x', len);
        assert_false(strdict_find(d, s, len, &id));
    }
    assert_int_equal(strdict_count(d), n);
    strdict_free(d);
}

static void check_sorted_perm(const int64_t *t, const uint32_t *perm, size_t n)
{
    char *seen = calloc(n ? n : 1, 1);
    size_t i;

    for (i = 0; i < n; i++) {
        assert_true(perm[i] < n);
        assert_false(seen[perm[i]]);
        seen[perm[i]] = 1;
        if (i) {
            assert_true(t[perm[i - 1]] <= t[perm[i]]);
            if (t[perm[i - 1]] == t[perm[i]])
                assert_true(perm[i - 1] < perm[i]); /* stable */
        }
    }
    free(seen);
}

static void test_sort_by_time(void **state)
{
    enum { N = 20000 };
    int64_t *t = malloc(N * sizeof(*t));
    uint32_t *perm = malloc(N * sizeof(*perm));
    uint64_t rng = 88172645463325252ull;
    size_t i, n, shape;
    (void)state;

    for (shape = 0; shape < 6; shape++) {
        for (n = 0; n <= N; n = n ? n * 3 + 1 : 1) {
            for (i = 0; i < n; i++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                switch (shape) {
                case 0: /* interleaved ascending runs of 1000, like 8 writers */
                    t[i] = (int64_t)((i % 1000) * 10 + (i / 1000) % 8);
                    break;
                case 1: /* random with many ties */
                    t[i] = (int64_t)(rng % 50);
                    break;
                case 2: /* descending: n runs of one */
                    t[i] = (int64_t)(n - i);
                    break;
                case 3: /* all equal */
                    t[i] = -5;
                    break;
                case 4: /* full range, negative times included */
                    t[i] = (int64_t)rng;
                    break;
                default: /* sorted, then one row out of place */
                    t[i] = (int64_t)i * 2 - (i == n / 2 ? 7 : 0);
                }
            }
            batch_sort_by_time(t, perm, n);
            check_sorted_perm(t, perm, n);
        }
    }
    free(t);
    free(perm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strdict),
        cmocka_unit_test(test_rows_cols_nulls),
        cmocka_unit_test(test_add_rows_widen_validity),
        cmocka_unit_test(test_strdict_every_byte_counts),
        cmocka_unit_test(test_sort_by_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
