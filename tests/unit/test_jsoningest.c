/* test_jsoningest.c - JSON ingest: the MessagePack item shapes in JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ingest/ingest.h"

#define NOW 1111111111111111LL

static struct ingest_result R;
static struct errbuf EB;

static enum err dec(const char *body)
{
    ingest_result_release(&R);
    errbuf_init(&EB);
    return ingest_json_decode(body, strlen(body), NOW, NULL, &R, &EB);
}

static void ok(const char *body)
{
    if (dec(body) != ERR_OK)
        fail_msg("decode failed: %s", EB.msg);
}

static void bad(const char *body, const char *msg)
{
    assert_int_not_equal(dec(body), ERR_OK);
    assert_string_equal(EB.msg, msg);
    assert_int_equal(R.nbatches, 0);
}

static struct batch_col *C(struct batch *b, const char *n)
{
    struct batch_col *c = batch_find_col(b, n, strlen(n));
    if (!c)
        fail_msg("no column %s", n);
    return c;
}

static void test_row(void **state)
{
    struct batch *b;
    struct batch_col *c;
    (void)state;
    ok("{\"m\":\"cpu\",\"t\":1700000000,\"h\":\"s1\",\"tags\":{\"dc\":\"x\",\"n\":3},"
       "\"fields\":{\"v\":1.5,\"i\":2,\"s\":\"str\",\"b\":false,\"z\":null}}");
    assert_int_equal(R.nbatches, 1);
    b = R.batches[0];
    assert_string_equal(b->measurement, "cpu");
    assert_int_equal(b->time_us[0], 1700000000000000LL);
    c = C(b, "host");
    assert_true(c->is_tag);
    assert_string_equal(strdict_get(b->dict, ((uint32_t *)c->data)[0], NULL), "s1");
    c = C(b, "n");
    assert_string_equal(strdict_get(b->dict, ((uint32_t *)c->data)[0], NULL), "3");
    assert_true(((double *)C(b, "v")->data)[0] == 1.5);
    assert_int_equal(C(b, "i")->type, BATCH_I64);
    assert_int_equal(C(b, "b")->type, BATCH_BOOL);
    assert_null(batch_find_col(b, "z", 1));
    /* no t: now */
    ok("{\"m\":\"cpu\",\"f\":[1,2.5]}");
    assert_int_equal(R.batches[0]->time_us[0], NOW);
    assert_int_equal(C(R.batches[0], "field_0")->type, BATCH_I64);
}

static void test_columnar_and_batch(void **state)
{
    struct batch *b;
    struct batch_col *c;
    (void)state;
    ok("{\"batch\":[{\"m\":\"cpu\",\"tag_keys\":[\"host\"],\"columns\":{"
       "\"time\":[1700000000000000000,1700000001000000000],\"host\":[\"a\",\"b\"],"
       "\"v\":[1,2.5],\"_x\":[1],\"s\":[\"p\",null]}},"
       "{\"m\":\"cpu\",\"fields\":{\"v\":3}}]}");
    b = R.batches[0];
    assert_int_equal(b->nrows, 3);
    assert_int_equal(b->time_us[1], 1700000001000000LL);
    assert_int_equal(b->time_us[2], NOW);
    assert_true(C(b, "host")->is_tag);
    c = C(b, "v");
    assert_int_equal(c->type, BATCH_F64);
    assert_true(((double *)c->data)[0] == 1.0 && ((double *)c->data)[1] == 2.5 &&
                ((double *)c->data)[2] == 3.0);
    assert_false(batch_is_valid(C(b, "s"), 1));
    assert_null(batch_find_col(b, "_x", 2));
    ok("[{\"m\":\"a\",\"fields\":{\"v\":1}},{\"m\":\"b\",\"fields\":{\"v\":1}}]");
    assert_int_equal(R.nbatches, 2);
}

static void test_errors(void **state)
{
    (void)state;
    bad("{\"m\":\"cpu\",\"fields\":", "invalid JSON payload: unexpected token near end of file "
                                      "at line 1 column 20");
    bad("[{\"m\":\"a\",\"fields\":{\"v\":1}},{\"m\":\"a\",\"fields\":{\"v\":\"x\"}}]",
        "item 1: field type conflict: field 'v' is integer, got string");
    bad("{\"m\":\"cpu\",\"columns\":{\"time\":[1,2],\"v\":[1]}}",
        "item 0: column 'v' has 1 values, column 'time' has 2");
    bad("{\"m\":\"cpu\",\"columns\":{\"time\":[1,\"x\"]}}",
        "item 0: column 'time' row 1: time must be a number, got string");
    bad("{\"m\":\"cpu\",\"columns\":{\"time\":[1],\"v\":[[1]]}}",
        "item 0: column 'v' row 0: unsupported type array");
    bad("{\"m\":\"bad name\",\"fields\":{\"v\":1}}",
        "item 0: invalid measurement name 'bad name': use a letter, then letters, digits, '_' "
        "or '-' (at most 128 bytes)");
    bad("{\"fields\":{\"v\":1}}", "item 0: missing 'm' (measurement)");
    bad("{\"m\":\"cpu\",\"t\":\"now\",\"fields\":{\"v\":1}}",
        "item 0: 't': time must be a number, got string");
    bad("42", "invalid JSON payload: '[' or '{' expected near '42' at line 1 column 2");
    bad("{\"batch\":3}", "invalid JSON payload: expected an object or an array in 'batch'");
}

static int teardown(void **state)
{
    (void)state;
    ingest_result_release(&R);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_row, teardown),
        cmocka_unit_test_teardown(test_columnar_and_batch, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
