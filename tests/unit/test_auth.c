/* test_auth.c - tokens: generation, hashing at rest, check, rotate/delete/expiry,
 * permission and database scope, parsing, bootstrap, cache reload, CLI. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/clock.h"

struct fixture {
    char dir[64];
    struct catalog *cat;
    struct auth *auth;
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
    struct auth_opts o = {.cache_ttl_ms = 50};
    struct errbuf eb;

    snprintf(f->dir, sizeof(f->dir), "/tmp/arc-auth-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (catalog_open(f->dir, &f->cat, &eb) != ERR_OK || auth_new(f->cat, &o, &f->auth, &eb))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    auth_free(f->auth);
    catalog_close(f->cat);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Create a token, asserting success; returns the secret (caller frees). */
static char *create(struct auth *a, const char *name, unsigned perms, const char *const *dbs,
                    size_t ndbs, int64_t expires_at_us, int64_t *id_out)
{
    struct auth_token_spec spec = {.name = name,
                                   .perms = perms,
                                   .databases = dbs,
                                   .ndatabases = ndbs,
                                   .expires_at_us = expires_at_us};
    struct errbuf eb;
    char *tok = NULL;

    errbuf_init(&eb);
    if (auth_token_create(a, &spec, &tok, id_out, &eb) != ERR_OK)
        fail_msg("create %s: %s", name, eb.msg);
    return tok;
}

static void test_generate_format(void **state)
{
    char a[AUTH_TOKEN_CHARS + 1], b[AUTH_TOKEN_CHARS + 1];
    struct errbuf eb;
    size_t i;

    (void)state;
    assert_int_equal(auth_token_generate(a, &eb), ERR_OK);
    assert_int_equal(auth_token_generate(b, &eb), ERR_OK);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(a, b);
    for (i = 0; i < 43; i++)
        assert_true(a[i] != '=' && a[i] != '+' && a[i] != '/');
}

static void test_create_and_check(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    int64_t id = 0;
    char *tok = create(f->auth, "svc", 0, NULL, 0, 0, &id);
    char *wrong;

    errbuf_init(&eb);
    assert_int_equal(strlen(tok), AUTH_TOKEN_CHARS);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "svc");
    assert_int_equal(auth_principal_id(p), id);
    assert_int_equal(auth_principal_perms(p), AUTH_PERM_READ | AUTH_PERM_WRITE); /* default */
    auth_principal_release(p);

    /* One character off, empty, NULL and absurdly long secrets are rejected. */
    wrong = strdup(tok);
    wrong[42] = wrong[42] == 'A' ? 'B' : 'A';
    p = NULL;
    assert_int_equal(auth_check(f->auth, wrong, &p, &eb), ERR_AUTH);
    assert_string_equal(eb.msg, "Invalid or expired token");
    assert_null(p);
    assert_int_equal(auth_check(f->auth, "", &p, &eb), ERR_AUTH);
    assert_string_equal(eb.msg, "Authentication required");
    assert_int_equal(auth_check(f->auth, NULL, &p, &eb), ERR_AUTH);
    {
        char big[AUTH_MAX_SECRET_LEN + 10];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(auth_check(f->auth, big, &p, &eb), ERR_AUTH);
    }
    free(wrong);
    free(tok);
}

/* Read a whole file (may be absent: returns NULL, *n = 0). */
static char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    char *data;
    long len;

    *n = 0;
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    data = malloc((size_t)len + 1);
    *n = fread(data, 1, (size_t)len, fp);
    fclose(fp);
    return data;
}

static void test_only_hash_is_stored(void **state)
{
    struct fixture *f = *state;
    unsigned char hash[32];
    unsigned int hlen = 0;
    char path[128];
    const char *suffix[] = {"", "-wal"};
    char *tok = create(f->auth, "secretive", 0, NULL, 0, 0, NULL);
    bool hash_seen = false;
    size_t i, n;

    EVP_Digest(tok, strlen(tok), hash, &hlen, EVP_sha256(), NULL);
    assert_int_equal(hlen, 32);
    for (i = 0; i < 2; i++) {
        char *data;
        snprintf(path, sizeof(path), "%s/arc.db%s", f->dir, suffix[i]);
        data = slurp(path, &n);
        if (!data)
            continue;
        assert_null(memmem(data, n, tok, strlen(tok)));
        /* Also not a prefix long enough to matter. */
        assert_null(memmem(data, n, tok, 16));
        if (memmem(data, n, hash, sizeof(hash)))
            hash_seen = true;
        free(data);
    }
    assert_true(hash_seen); /* positive control: we did look at the right bytes */
    free(tok);
}

static void test_rotate_invalidates_old(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    int64_t id = 0;
    char *old = create(f->auth, "rot", AUTH_PERM_READ, NULL, 0, 0, &id);
    char *fresh = NULL, idbuf[32];

    errbuf_init(&eb);
    snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
    assert_int_equal(auth_token_rotate(f->auth, idbuf, &fresh, &eb), ERR_OK);
    assert_string_not_equal(old, fresh);
    assert_int_equal(auth_check(f->auth, old, &p, &eb), ERR_AUTH);
    assert_int_equal(auth_check(f->auth, fresh, &p, &eb), ERR_OK);
    assert_int_equal(auth_principal_id(p), id);
    assert_int_equal(auth_principal_perms(p), AUTH_PERM_READ);
    auth_principal_release(p);
    assert_int_equal(auth_token_rotate(f->auth, "nope", &fresh, &eb), ERR_NOTFOUND);
    assert_string_equal(eb.msg, "token 'nope' not found");
    free(old);
    free(fresh);
}

static void test_delete_invalidates_but_held_principal_survives(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *held = NULL, *p = NULL;
    struct errbuf eb;
    char *tok = create(f->auth, "gone", AUTH_PERM_WRITE, NULL, 0, 0, NULL);

    errbuf_init(&eb);
    assert_int_equal(auth_check(f->auth, tok, &held, &eb), ERR_OK);
    assert_int_equal(auth_token_delete(f->auth, "gone", &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_AUTH);
    assert_string_equal(eb.msg, "Invalid or expired token");
    /* The in-flight request still reads its principal (ASan would flag a UAF). */
    assert_string_equal(auth_principal_name(held), "gone");
    assert_true(auth_principal_has(held, AUTH_PERM_WRITE));
    auth_principal_release(held);
    assert_int_equal(auth_token_delete(f->auth, "gone", &eb), ERR_NOTFOUND);
    free(tok);
}

static void test_expired_and_disabled(void **state)
{
    struct fixture *f = *state;
    struct auth_token_update u = {.set_enabled = true, .enabled = false};
    struct auth_principal *p = NULL;
    struct errbuf eb;
    char *tok = create(f->auth, "short", 0, NULL, 0, clock_now_us() + 150000, NULL);
    char *tok2 = create(f->auth, "off", 0, NULL, 0, 0, NULL);

    errbuf_init(&eb);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    assert_true(auth_principal_expires_at_us(p) > 0);
    auth_principal_release(p);
    sleep_ms(200);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_AUTH);
    assert_string_equal(eb.msg, "Token 'short' has expired");

    assert_int_equal(auth_token_update(f->auth, "off", &u, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok2, &p, &eb), ERR_AUTH);
    assert_string_equal(eb.msg, "Token 'off' is disabled");
    u.enabled = true;
    assert_int_equal(auth_token_update(f->auth, "off", &u, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok2, &p, &eb), ERR_OK);
    auth_principal_release(p);

    /* An expiry in the past is refused at creation. */
    {
        struct auth_token_spec spec = {.name = "past", .expires_at_us = clock_now_us() - 1};
        char *t = NULL;
        assert_int_equal(auth_token_create(f->auth, &spec, &t, NULL, &eb), ERR_INVAL);
        assert_non_null(strstr(eb.msg, "past"));
        assert_null(t);
    }
    free(tok);
    free(tok2);
}

static void test_permission_table(void **state)
{
    struct fixture *f = *state;
    const char *const dbs[] = {"prod", "metrics"};
    struct auth_principal *r = NULL, *w = NULL, *adm = NULL, *scoped = NULL;
    struct errbuf eb;
    const char *const *got;
    size_t n = 0;
    char *tr = create(f->auth, "r", AUTH_PERM_READ, NULL, 0, 0, NULL);
    char *tw = create(f->auth, "w", AUTH_PERM_WRITE | AUTH_PERM_DELETE, NULL, 0, 0, NULL);
    char *ta = create(f->auth, "a", AUTH_PERM_ADMIN, NULL, 0, 0, NULL);
    char *ts = create(f->auth, "s", AUTH_PERM_READ | AUTH_PERM_WRITE, dbs, 2, 0, NULL);

    errbuf_init(&eb);
    assert_int_equal(auth_check(f->auth, tr, &r, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tw, &w, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, ta, &adm, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, ts, &scoped, &eb), ERR_OK);

    assert_true(auth_principal_has(r, AUTH_PERM_READ));
    assert_false(auth_principal_has(r, AUTH_PERM_WRITE));
    assert_false(auth_principal_has(r, AUTH_PERM_DELETE));
    assert_false(auth_principal_has(r, AUTH_PERM_ADMIN));

    assert_false(auth_principal_has(w, AUTH_PERM_READ));
    assert_true(auth_principal_has(w, AUTH_PERM_WRITE));
    assert_true(auth_principal_has(w, AUTH_PERM_DELETE));
    assert_true(auth_principal_has(w, AUTH_PERM_READ | AUTH_PERM_WRITE)); /* any of */
    assert_false(auth_principal_has(w, AUTH_PERM_ADMIN));

    assert_true(auth_principal_has(adm, AUTH_PERM_READ));
    assert_true(auth_principal_has(adm, AUTH_PERM_WRITE));
    assert_true(auth_principal_has(adm, AUTH_PERM_DELETE));
    assert_true(auth_principal_has(adm, AUTH_PERM_ADMIN));
    assert_false(auth_principal_has(NULL, AUTH_PERM_READ));

    assert_true(auth_principal_can_db(r, "anything"));
    assert_true(auth_principal_can_db(scoped, "prod"));
    assert_true(auth_principal_can_db(scoped, "metrics"));
    assert_false(auth_principal_can_db(scoped, "default"));
    assert_false(auth_principal_can_db(scoped, "Prod"));
    assert_false(auth_principal_can_db(scoped, NULL));
    assert_true(auth_principal_can_db(NULL, "x")); /* auth disabled */
    got = auth_principal_databases(scoped, &n);
    assert_int_equal(n, 2);
    assert_string_equal(got[0], "prod");
    assert_null(auth_principal_databases(r, &n));
    assert_int_equal(n, 0);

    auth_principal_release(r);
    auth_principal_release(w);
    auth_principal_release(adm);
    auth_principal_release(scoped);
    free(tr);
    free(tw);
    free(ta);
    free(ts);
}

static void test_perms_parse(void **state)
{
    struct errbuf eb;
    unsigned bits = 0;
    char out[64];

    (void)state;
    errbuf_init(&eb);
    assert_int_equal(auth_perms_parse("read,write", &bits, &eb), ERR_OK);
    assert_int_equal(bits, 3);
    assert_int_equal(auth_perms_parse(" READ , delete ", &bits, &eb), ERR_OK);
    assert_int_equal(bits, 5);
    assert_int_equal(auth_perms_parse("[\"read\", \"admin\"]", &bits, &eb), ERR_OK);
    assert_int_equal(bits, 9);
    bits = 77;
    assert_int_equal(auth_perms_parse("read,bogus", &bits, &eb), ERR_INVAL);
    assert_string_equal(eb.msg,
                        "unknown permission 'bogus' (expected read, write, delete or admin)");
    assert_int_equal(bits, 77); /* untouched on failure */
    assert_int_equal(auth_perms_parse("[\"write\",\"superuser\"]", &bits, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "'superuser'"));
    assert_int_equal(auth_perms_parse("[\"read\",1]", &bits, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "permissions: entry 1 is not a string");
    assert_int_equal(auth_perms_parse("[]", &bits, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "permissions: empty list");
    assert_int_equal(auth_perms_parse("", &bits, &eb), ERR_INVAL);
    assert_int_equal(auth_perms_parse("read,", &bits, &eb), ERR_INVAL);
    assert_int_equal(auth_perms_parse("[\"read\"", &bits, &eb), ERR_INVAL);

    auth_perms_format(AUTH_PERM_ADMIN | AUTH_PERM_READ, out, sizeof(out));
    assert_string_equal(out, "read,admin");
    auth_perms_format(AUTH_PERM_ALL, out, sizeof(out));
    assert_string_equal(out, "read,write,delete,admin");
}

static void test_databases_parse(void **state)
{
    struct errbuf eb;
    char **v = NULL;
    size_t n = 0;

    (void)state;
    errbuf_init(&eb);
    assert_int_equal(auth_databases_parse("prod, dev", &v, &n, &eb), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "prod");
    assert_string_equal(v[1], "dev");
    auth_string_list_free(v, n);
    assert_int_equal(auth_databases_parse("[\"a_b\",\"c-d.e\"]", &v, &n, &eb), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[1], "c-d.e");
    auth_string_list_free(v, n);
    assert_int_equal(auth_databases_parse("ok,bad/name", &v, &n, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "'bad/name'"));
    assert_int_equal(auth_databases_parse("a,,b", &v, &n, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "databases: empty database name");
    assert_int_equal(auth_databases_parse("[]", &v, &n, &eb), ERR_INVAL);
}

static void test_expiry_parse(void **state)
{
    const int64_t now = 1700000000LL * 1000000;
    struct errbuf eb;
    int64_t t = -1;

    (void)state;
    errbuf_init(&eb);
    assert_int_equal(auth_expiry_parse("7d", now, &t, &eb), ERR_OK);
    assert_int_equal(t, now + 7LL * 86400 * 1000000);
    assert_int_equal(auth_expiry_parse("24h", now, &t, &eb), ERR_OK);
    assert_int_equal(t, now + 86400LL * 1000000);
    assert_int_equal(auth_expiry_parse("30m", now, &t, &eb), ERR_OK);
    assert_int_equal(t, now + 1800LL * 1000000);
    assert_int_equal(auth_expiry_parse("3600s", now, &t, &eb), ERR_OK);
    assert_int_equal(t, now + 3600LL * 1000000);
    assert_int_equal(auth_expiry_parse("2w", now, &t, &eb), ERR_OK);
    assert_int_equal(t, now + 14LL * 86400 * 1000000);
    assert_int_equal(auth_expiry_parse("never", now, &t, &eb), ERR_OK);
    assert_int_equal(t, 0);

    /* 2030-01-02T03:04:05Z == 1893553445 */
    assert_int_equal(auth_expiry_parse("2030-01-02T03:04:05Z", now, &t, &eb), ERR_OK);
    assert_int_equal(t, 1893553445LL * 1000000);
    assert_int_equal(auth_expiry_parse("2030-01-02T04:04:05.5+01:00", now, &t, &eb), ERR_OK);
    assert_int_equal(t, 1893553445LL * 1000000 + 500000);

    t = 42;
    assert_int_equal(auth_expiry_parse("7x", now, &t, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "'7x' is not a duration"));
    assert_int_equal(t, 42);
    assert_int_equal(auth_expiry_parse("d", now, &t, &eb), ERR_INVAL);
    assert_int_equal(auth_expiry_parse("0h", now, &t, &eb), ERR_INVAL);
    assert_int_equal(auth_expiry_parse("99999999999999999999d", now, &t, &eb), ERR_INVAL);
    assert_int_equal(auth_expiry_parse("", now, &t, &eb), ERR_INVAL);
    assert_int_equal(auth_expiry_parse("2020-01-01T00:00:00Z", now, &t, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "in the past"));
    assert_int_equal(auth_expiry_parse("2030-02-30T00:00:00Z", now, &t, &eb), ERR_INVAL);
    assert_int_equal(auth_expiry_parse("2030-01-02T03:04:05", now, &t, &eb), ERR_INVAL);
    assert_int_equal(t, 42);
}

static void test_invalid_specs(void **state)
{
    struct fixture *f = *state;
    const char *const bad_dbs[] = {"ok", "no spaces"};
    const char *const no_dbs[] = {NULL};
    struct auth_token_spec spec = {.name = "x"};
    struct errbuf eb;
    char longname[200];
    char *tok = NULL;

    errbuf_init(&eb);
    spec.name = "";
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_INVAL);
    assert_string_equal(eb.msg, "name: required");
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    spec.name = longname;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "longer than"));
    spec.name = "x";
    spec.databases = bad_dbs;
    spec.ndatabases = 2;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_INVAL);
    assert_non_null(strstr(eb.msg, "'no spaces'"));
    spec.databases = no_dbs;
    spec.ndatabases = 0;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_INVAL);
    spec.databases = NULL;
    spec.perms = 0x30;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_INVAL);
    assert_null(tok);

    /* Duplicate names are conflicts. */
    spec.perms = 0;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_OK);
    free(tok);
    tok = NULL;
    assert_int_equal(auth_token_create(f->auth, &spec, &tok, NULL, &eb), ERR_CONFLICT);
    assert_string_equal(eb.msg, "a token named 'x' already exists");
    assert_null(tok);
}

static void test_get_list_update_json(void **state)
{
    struct fixture *f = *state;
    const char *const dbs[] = {"prod"};
    struct auth_token_update u = {.name = "renamed",
                                  .description = "d2",
                                  .set_perms = true,
                                  .perms = AUTH_PERM_READ | AUTH_PERM_DELETE,
                                  .set_databases = true,
                                  .databases = dbs,
                                  .ndatabases = 1};
    struct auth_token_info info, *list = NULL;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    struct buf b;
    size_t n = 0;
    int64_t id = 0;
    char idbuf[32];
    char *tok = create(f->auth, "orig", 0, NULL, 0, 0, &id);
    char *tok2 = create(f->auth, "other", 0, NULL, 0, 0, NULL);

    errbuf_init(&eb);
    snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
    assert_int_equal(auth_token_update(f->auth, idbuf, &u, &eb), ERR_OK);
    assert_int_equal(auth_token_get(f->auth, "renamed", &info, &eb), ERR_OK);
    assert_int_equal(info.id, id);
    assert_string_equal(info.description, "d2");
    assert_int_equal(info.perms, AUTH_PERM_READ | AUTH_PERM_DELETE);
    assert_int_equal(info.ndatabases, 1);
    assert_string_equal(info.databases[0], "prod");

    buf_init(&b, 0);
    assert_int_equal(auth_token_info_json(&info, &b), ERR_OK);
    assert_non_null(strstr(b.data, "\"name\":\"renamed\""));
    assert_non_null(strstr(b.data, "\"permissions\":[\"read\",\"delete\"]"));
    assert_non_null(strstr(b.data, "\"databases\":[\"prod\"]"));
    assert_non_null(strstr(b.data, "\"expires_at\":null"));
    assert_non_null(strstr(b.data, "\"enabled\":true"));
    assert_null(strstr(b.data, tok));
    buf_release(&b);
    auth_token_info_release(&info);

    /* The running cache saw the update. */
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "renamed");
    assert_false(auth_principal_can_db(p, "default"));
    buf_init(&b, 0);
    assert_int_equal(auth_principal_json(p, &b), ERR_OK);
    {
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"id\":%lld,\"name\":\"renamed\",\"permissions\":[\"read\",\"delete\"],"
                 "\"databases\":[\"prod\"],\"expires_at\":null}",
                 (long long)id);
        assert_string_equal(b.data, want);
    }
    buf_release(&b);
    auth_principal_release(p);

    /* Renaming onto an existing name is a conflict; clearing databases works. */
    memset(&u, 0, sizeof(u));
    u.name = "other";
    assert_int_equal(auth_token_update(f->auth, "renamed", &u, &eb), ERR_CONFLICT);
    memset(&u, 0, sizeof(u));
    u.set_databases = true;
    assert_int_equal(auth_token_update(f->auth, "renamed", &u, &eb), ERR_OK);

    assert_int_equal(auth_token_list(f->auth, &list, &n, &eb), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "renamed");
    assert_null(list[0].databases);
    assert_string_equal(list[1].name, "other");
    auth_token_info_list_free(list, n);
    assert_int_equal(auth_token_get(f->auth, "999", &info, &eb), ERR_NOTFOUND);
    assert_string_equal(eb.msg, "token '999' not found");
    free(tok);
    free(tok2);
}

static void test_last_used_is_flushed(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *p = NULL;
    struct catalog_token row;
    struct errbuf eb;
    int64_t before = clock_now_us();
    char *tok = create(f->auth, "busy", 0, NULL, 0, 0, NULL);

    errbuf_init(&eb);
    assert_int_equal(catalog_token_get_by_name(f->cat, "busy", &row, &eb), ERR_OK);
    assert_int_equal(row.last_used_at_us, 0);
    catalog_token_release(&row);

    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    auth_principal_release(p);
    /* Not in SQLite until the flush. */
    assert_int_equal(catalog_token_get_by_name(f->cat, "busy", &row, &eb), ERR_OK);
    assert_int_equal(row.last_used_at_us, 0);
    catalog_token_release(&row);

    assert_int_equal(auth_flush_last_used(f->auth, &eb), ERR_OK);
    assert_int_equal(catalog_token_get_by_name(f->cat, "busy", &row, &eb), ERR_OK);
    assert_true(row.last_used_at_us >= before);
    assert_true(row.last_used_at_us <= clock_now_us());
    catalog_token_release(&row);
    free(tok);
}

static void test_bootstrap_random(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    char *printed = NULL;
    int64_t n = 0;

    errbuf_init(&eb);
    assert_int_equal(auth_bootstrap(f->auth, "", &printed, &eb), ERR_OK);
    assert_non_null(printed);
    assert_int_equal(strlen(printed), AUTH_TOKEN_CHARS);
    assert_int_equal(auth_check(f->auth, printed, &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "admin");
    assert_int_equal(auth_principal_perms(p), AUTH_PERM_ADMIN);
    auth_principal_release(p);
    free(printed);

    /* Second start: nothing new, nothing printed. */
    printed = (char *)"sentinel";
    assert_int_equal(auth_bootstrap(f->auth, NULL, &printed, &eb), ERR_OK);
    assert_null(printed);
    assert_int_equal(catalog_token_count(f->cat, &n, &eb), ERR_OK);
    assert_int_equal(n, 1);
}

static void test_bootstrap_env_token(void **state)
{
    struct fixture *f = *state;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    char *printed = NULL;
    int64_t n = 0;
    char *plain;

    errbuf_init(&eb);
    assert_int_equal(auth_bootstrap(f->auth, "env-secret-1", &printed, &eb), ERR_OK);
    assert_null(printed); /* the operator already knows it */
    assert_int_equal(auth_check(f->auth, "env-secret-1", &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "admin");
    assert_true(auth_principal_has(p, AUTH_PERM_ADMIN));
    auth_principal_release(p);

    /* Restart with the same token: idempotent. */
    assert_int_equal(auth_bootstrap(f->auth, "env-secret-1", &printed, &eb), ERR_OK);
    assert_int_equal(catalog_token_count(f->cat, &n, &eb), ERR_OK);
    assert_int_equal(n, 1);

    /* Tokens exist, a different env token: it is added as an admin. */
    plain = create(f->auth, "reader", AUTH_PERM_READ, NULL, 0, 0, NULL);
    assert_int_equal(auth_bootstrap(f->auth, "env-secret-2", &printed, &eb), ERR_OK);
    assert_null(printed);
    assert_int_equal(auth_check(f->auth, "env-secret-2", &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "bootstrap");
    assert_true(auth_principal_has(p, AUTH_PERM_ADMIN));
    auth_principal_release(p);
    assert_int_equal(auth_check(f->auth, "env-secret-1", &p, &eb), ERR_OK);
    auth_principal_release(p);

    /* The env token is an existing non-admin secret: it is promoted. */
    assert_int_equal(auth_bootstrap(f->auth, plain, &printed, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, plain, &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "reader");
    assert_int_equal(auth_principal_perms(p), AUTH_PERM_ADMIN);
    auth_principal_release(p);
    free(plain);
}

static void test_offline_change_seen_after_ttl(void **state)
{
    struct fixture *f = *state;
    struct catalog *cat2 = NULL;
    struct auth *offline = NULL;
    struct auth_principal *p = NULL;
    struct errbuf eb;
    char *tok;

    errbuf_init(&eb);
    /* A second handle on the same arc.db, as `arc token create` would open. */
    assert_int_equal(catalog_open(f->dir, &cat2, &eb), ERR_OK);
    assert_int_equal(auth_new(cat2, NULL, &offline, &eb), ERR_OK);
    tok = create(offline, "from-cli", AUTH_PERM_READ, NULL, 0, 0, NULL);

    /* The server's cache is fresh (TTL 50 ms, loaded just now). */
    assert_int_equal(auth_flush_last_used(f->auth, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_AUTH);
    sleep_ms(80);
    assert_int_equal(auth_flush_last_used(f->auth, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    assert_string_equal(auth_principal_name(p), "from-cli");
    auth_principal_release(p);

    /* Deleted offline: rejected after the TTL too. */
    assert_int_equal(auth_token_delete(offline, "from-cli", &eb), ERR_OK);
    sleep_ms(80);
    assert_int_equal(auth_flush_last_used(f->auth, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_AUTH);

    auth_free(offline);
    catalog_close(cat2);
    free(tok);
}

struct race {
    struct auth *a;
    const char *tok;
    atomic_bool stop;
    atomic_long ok;
};

static void *checker(void *arg)
{
    struct race *r = arg;
    struct auth_principal *p;
    struct errbuf eb;

    while (!atomic_load(&r->stop)) {
        p = NULL;
        if (auth_check(r->a, r->tok, &p, &eb) == ERR_OK) {
            /* Touch the principal after the table may have been swapped. */
            if (strcmp(auth_principal_name(p), "stable") == 0)
                atomic_fetch_add(&r->ok, 1);
            auth_principal_release(p);
        }
    }
    return NULL;
}

static void test_concurrent_checks_during_changes(void **state)
{
    struct fixture *f = *state;
    struct race r = {.a = f->auth};
    struct errbuf eb;
    pthread_t th[4];
    char name[32];
    int i;
    char *stable = create(f->auth, "stable", 0, NULL, 0, 0, NULL);

    errbuf_init(&eb);
    r.tok = stable;
    atomic_init(&r.stop, false);
    atomic_init(&r.ok, 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, checker, &r), 0);
    for (i = 0; i < 30; i++) {
        char *t;
        snprintf(name, sizeof(name), "churn%d", i);
        t = create(f->auth, name, 0, NULL, 0, 0, NULL);
        assert_int_equal(auth_token_delete(f->auth, name, &eb), ERR_OK);
        assert_int_equal(auth_flush_last_used(f->auth, &eb), ERR_OK);
        free(t);
    }
    atomic_store(&r.stop, true);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&r.ok) > 0);
    free(stable);
}

/* Run auth_cli_main with stdout captured into out. Returns the exit status. */
static int run_cli(const char *dir, char *out, size_t out_len, int argc, char **argv)
{
    char path[128];
    int fd, saved, status;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/cli-out", dir);
    fflush(stdout);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    saved = dup(1);
    dup2(fd, 1);
    status = auth_cli_main(argc, argv, dir);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, out, out_len - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return status;
}

static void test_cli(void **state)
{
    struct fixture *f = *state;
    char *create_argv[] = {"token", "create", "cli-tok", "--permissions", "read,delete",
                           "--databases=prod", "--expires", "7d"};
    char *bad_argv[] = {"token", "create", "x", "--permissions", "root"};
    char *list_argv[] = {"token", "list"};
    char *rotate_argv[] = {"token", "rotate", "cli-tok"};
    char *delete_argv[] = {"token", "delete", "cli-tok"};
    char *unknown_argv[] = {"token", "frobnicate"};
    char *help_argv[] = {"token", "create", "--help"};
    struct auth_principal *p = NULL;
    struct errbuf eb;
    char out[4096], tok[64], tok2[64];

    errbuf_init(&eb);
    assert_int_equal(run_cli(f->dir, out, sizeof(out), 8, create_argv), 0);
    /* stdout is the token and a newline, nothing else. */
    assert_int_equal(strlen(out), AUTH_TOKEN_CHARS + 1);
    assert_int_equal(out[AUTH_TOKEN_CHARS], '\n');
    snprintf(tok, sizeof(tok), "%.*s", AUTH_TOKEN_CHARS, out);

    assert_int_equal(auth_reload(f->auth, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_OK);
    assert_int_equal(auth_principal_perms(p), AUTH_PERM_READ | AUTH_PERM_DELETE);
    assert_true(auth_principal_can_db(p, "prod"));
    assert_false(auth_principal_can_db(p, "default"));
    assert_true(auth_principal_expires_at_us(p) > clock_now_us() + 6LL * 86400 * 1000000);
    auth_principal_release(p);

    assert_int_equal(run_cli(f->dir, out, sizeof(out), 5, bad_argv), 1);
    assert_string_equal(out, "");

    assert_int_equal(run_cli(f->dir, out, sizeof(out), 2, list_argv), 0);
    assert_non_null(strstr(out, "cli-tok"));
    assert_non_null(strstr(out, "read,delete"));
    assert_null(strstr(out, tok));

    assert_int_equal(run_cli(f->dir, out, sizeof(out), 3, rotate_argv), 0);
    snprintf(tok2, sizeof(tok2), "%.*s", AUTH_TOKEN_CHARS, out);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(auth_reload(f->auth, &eb), ERR_OK);
    assert_int_equal(auth_check(f->auth, tok, &p, &eb), ERR_AUTH);
    assert_int_equal(auth_check(f->auth, tok2, &p, &eb), ERR_OK);
    auth_principal_release(p);

    assert_int_equal(run_cli(f->dir, out, sizeof(out), 3, delete_argv), 0);
    assert_int_equal(run_cli(f->dir, out, sizeof(out), 3, delete_argv), 1);
    assert_int_equal(run_cli(f->dir, out, sizeof(out), 2, unknown_argv), 2);
    assert_int_equal(run_cli(f->dir, out, sizeof(out), 3, help_argv), 0);
    assert_non_null(strstr(out, "usage: arc token create"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_generate_format),
        T(test_create_and_check),
        T(test_only_hash_is_stored),
        T(test_rotate_invalidates_old),
        T(test_delete_invalidates_but_held_principal_survives),
        T(test_expired_and_disabled),
        T(test_permission_table),
        T(test_perms_parse),
        T(test_databases_parse),
        T(test_expiry_parse),
        T(test_invalid_specs),
        T(test_get_list_update_json),
        T(test_last_used_is_flushed),
        T(test_bootstrap_random),
        T(test_bootstrap_env_token),
        T(test_offline_change_seen_after_ttl),
        T(test_concurrent_checks_during_changes),
        T(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
