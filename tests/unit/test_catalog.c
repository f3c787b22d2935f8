/* test_catalog.c - catalog open/migrate and the tokens table CRUD. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"

struct fixture {
    char root[64];  /* mkdtemp directory */
    char dir[128];  /* data dir under it (not created yet) */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(f->root, sizeof(f->root), "/tmp/arc-catalog-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    /* Nested and missing: catalog_open must create it. */
    snprintf(f->dir, sizeof(f->dir), "%s/a/b/data", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void fill_hash(uint8_t *h, uint8_t seed)
{
    int i;

    for (i = 0; i < CATALOG_TOKEN_HASH_LEN; i++)
        h[i] = (uint8_t)(seed + i);
}

static void test_open_creates_and_migrates_idempotently(void **state)
{
    struct fixture *f = *state;
    struct catalog_token t = {0}, got;
    struct catalog *c = NULL;
    struct errbuf eb;
    char path[256];
    struct stat st;
    int64_t id = 0, n = -1;

    errbuf_init(&eb);
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);
    snprintf(path, sizeof(path), "%s/arc.db", f->dir);
    assert_string_equal(catalog_path(c), path);
    assert_int_equal(stat(path, &st), 0);
    assert_true(catalog_schema_latest() >= 1);
    assert_int_equal(catalog_schema_version(c), catalog_schema_latest());

    t.name = "keep";
    t.permissions = "read";
    fill_hash(t.token_hash, 1);
    t.enabled = true;
    assert_int_equal(catalog_token_insert(c, &t, &id, &eb), ERR_OK);
    catalog_close(c);

    /* Reopen: no migration re-runs (CREATE TABLE would fail), data kept. */
    c = NULL;
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);
    assert_int_equal(catalog_schema_version(c), catalog_schema_latest());
    assert_int_equal(catalog_token_count(c, &n, &eb), ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(catalog_token_get_by_id(c, id, &got, &eb), ERR_OK);
    assert_string_equal(got.name, "keep");
    catalog_token_release(&got);
    catalog_close(c);
}

static void test_newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    struct catalog *c = NULL;
    struct errbuf eb;

    errbuf_init(&eb);
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);
    assert_int_equal(catalog_exec(c, "PRAGMA user_version = 999", &eb), ERR_OK);
    catalog_close(c);
    c = NULL;
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_CORRUPT);
    assert_null(c);
    assert_non_null(strstr(eb.msg, "schema version 999"));
    assert_non_null(strstr(eb.msg, "newer"));
}

static void test_exec_reports_sqlite_error(void **state)
{
    struct fixture *f = *state;
    struct catalog *c = NULL;
    struct errbuf eb;

    errbuf_init(&eb);
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);
    assert_int_equal(catalog_exec(c, "SELEKT 1", &eb), ERR_DB);
    assert_non_null(strstr(eb.msg, "syntax error"));
    catalog_close(c);
}

static void test_token_crud(void **state)
{
    struct fixture *f = *state;
    struct catalog_token t = {0}, got, *rows = NULL;
    struct catalog_token_touch touch[2];
    struct catalog *c = NULL;
    struct errbuf eb;
    uint8_t h2[CATALOG_TOKEN_HASH_LEN];
    int64_t id1 = 0, id2 = 0, n = 0;
    size_t nrows = 0;

    errbuf_init(&eb);
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);

    t.name = "alpha";
    t.description = "first";
    t.permissions = "read,write";
    t.databases = "[\"prod\"]";
    fill_hash(t.token_hash, 10);
    t.expires_at_us = 5000;
    t.enabled = true;
    assert_int_equal(catalog_token_insert(c, &t, &id1, &eb), ERR_OK);
    assert_true(id1 > 0);

    /* Duplicate name and duplicate hash are conflicts with clear messages. */
    fill_hash(t.token_hash, 20);
    assert_int_equal(catalog_token_insert(c, &t, NULL, &eb), ERR_CONFLICT);
    assert_string_equal(eb.msg, "a token named 'alpha' already exists");
    t.name = "beta";
    fill_hash(t.token_hash, 10);
    assert_int_equal(catalog_token_insert(c, &t, NULL, &eb), ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "secret is already in use"));

    fill_hash(t.token_hash, 20);
    t.databases = NULL;
    t.permissions = "admin";
    assert_int_equal(catalog_token_insert(c, &t, &id2, &eb), ERR_OK);
    assert_int_not_equal(id1, id2);

    assert_int_equal(catalog_token_get_by_name(c, "alpha", &got, &eb), ERR_OK);
    assert_int_equal(got.id, id1);
    assert_string_equal(got.description, "first");
    assert_string_equal(got.permissions, "read,write");
    assert_string_equal(got.databases, "[\"prod\"]");
    assert_int_equal(got.expires_at_us, 5000);
    assert_int_equal(got.last_used_at_us, 0);
    assert_true(got.created_at_us > 0);
    assert_true(got.enabled);
    catalog_token_release(&got);

    fill_hash(h2, 20);
    assert_int_equal(catalog_token_get_by_hash(c, h2, &got, &eb), ERR_OK);
    assert_string_equal(got.name, "beta");
    assert_null(got.databases);
    catalog_token_release(&got);

    /* Update: rename, disable; the name of another row is a conflict. */
    assert_int_equal(catalog_token_get_by_id(c, id1, &got, &eb), ERR_OK);
    free(got.name);
    got.name = strdup("beta");
    assert_int_equal(catalog_token_update(c, &got, &eb), ERR_CONFLICT);
    free(got.name);
    got.name = strdup("alpha2");
    got.enabled = false;
    assert_int_equal(catalog_token_update(c, &got, &eb), ERR_OK);
    catalog_token_release(&got);
    assert_int_equal(catalog_token_get_by_name(c, "alpha", &got, &eb), ERR_NOTFOUND);
    assert_string_equal(eb.msg, "token 'alpha' not found");
    assert_int_equal(catalog_token_get_by_name(c, "alpha2", &got, &eb), ERR_OK);
    assert_false(got.enabled);
    catalog_token_release(&got);

    /* Rotate the hash. */
    fill_hash(h2, 30);
    assert_int_equal(catalog_token_set_hash(c, id1, h2, &eb), ERR_OK);
    assert_int_equal(catalog_token_get_by_hash(c, h2, &got, &eb), ERR_OK);
    assert_int_equal(got.id, id1);
    catalog_token_release(&got);
    fill_hash(h2, 10);
    assert_int_equal(catalog_token_get_by_hash(c, h2, &got, &eb), ERR_NOTFOUND);

    /* Touch: batch, never backwards, unknown ids ignored. */
    touch[0].id = id1;
    touch[0].last_used_at_us = 777;
    touch[1].id = 999999;
    touch[1].last_used_at_us = 1;
    assert_int_equal(catalog_token_touch(c, touch, 2, &eb), ERR_OK);
    touch[0].last_used_at_us = 500;
    assert_int_equal(catalog_token_touch(c, touch, 1, &eb), ERR_OK);
    assert_int_equal(catalog_token_get_by_id(c, id1, &got, &eb), ERR_OK);
    assert_int_equal(got.last_used_at_us, 777);
    catalog_token_release(&got);

    assert_int_equal(catalog_token_list(c, &rows, &nrows, &eb), ERR_OK);
    assert_int_equal(nrows, 2);
    assert_int_equal(rows[0].id, id1);
    assert_string_equal(rows[1].name, "beta");
    catalog_token_list_free(rows, nrows);

    assert_int_equal(catalog_token_delete(c, id1, &eb), ERR_OK);
    assert_int_equal(catalog_token_delete(c, id1, &eb), ERR_NOTFOUND);
    assert_int_equal(catalog_token_count(c, &n, &eb), ERR_OK);
    assert_int_equal(n, 1);

    /* Ids are never reused, even for the highest id just deleted. */
    assert_int_equal(catalog_token_delete(c, id2, &eb), ERR_OK);
    t.name = "gamma";
    fill_hash(t.token_hash, 40);
    assert_int_equal(catalog_token_insert(c, &t, &id1, &eb), ERR_OK);
    assert_true(id1 > id2);
    catalog_close(c);
}

static void test_hash_length_enforced_by_schema(void **state)
{
    struct fixture *f = *state;
    struct catalog *c = NULL;
    struct errbuf eb;

    errbuf_init(&eb);
    assert_int_equal(catalog_open(f->dir, &c, &eb), ERR_OK);
    assert_int_equal(catalog_exec(c,
                                  "INSERT INTO tokens (name, token_hash, created_at) "
                                  "VALUES ('x', x'0102', 1)",
                                  &eb),
                     ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "CHECK constraint"));
    catalog_close(c);
}

static void test_open_fails_on_unusable_dir(void **state)
{
    struct fixture *f = *state;
    struct catalog *c = NULL;
    struct errbuf eb;
    char file[160], sub[200];
    FILE *fp;

    errbuf_init(&eb);
    snprintf(file, sizeof(file), "%s/plainfile", f->root);
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(sub, sizeof(sub), "%s/data", file);
    assert_int_equal(catalog_open(sub, &c, &eb), ERR_IO);
    assert_null(c);
    assert_non_null(strstr(eb.msg, "mkdir "));
    assert_int_equal(catalog_open("", &c, &eb), ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_migrates_idempotently, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_reports_sqlite_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_length_enforced_by_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_on_unusable_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
