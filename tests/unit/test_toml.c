/* test_toml.c - the TOML subset parser: grammar table of good and bad inputs with
 * exact error messages (line:col), value conversion, conflicts, limits, and a
 * mutation loop that feeds thousands of damaged documents through the parser to
 * show it always answers with a document or an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/toml.h"

static enum err parse(const char *text, struct toml_doc *doc, struct errbuf *eb)
{
    errbuf_init(eb);
    return toml_parse(text, strlen(text), "t.toml", doc, eb);
}

/* ---- bad inputs: the message, exactly ---------------------------------------- */

static const struct {
    const char *text;
    enum err code;
    const char *msg;
} BAD[] = {
    {"port 8000\n", ERR_PARSE, "t.toml:1:6: expected '=' after key"},
    {"\n\n[server]\nport = \n", ERR_PARSE, "t.toml:4:8: expected a value"},
    {"a = localhost\n", ERR_PARSE,
     "t.toml:1:5: expected a value, got 'localhost' (strings must be quoted)"},
    {"a = 1 2\n", ERR_PARSE, "t.toml:1:7: expected end of line after value"},
    {"a = \"abc\n", ERR_PARSE, "t.toml:1:9: unterminated string"},
    {"a = 'abc", ERR_PARSE, "t.toml:1:9: unterminated string"},
    {"a = \"x\\qy\"\n", ERR_PARSE, "t.toml:1:7: invalid escape '\\q'"},
    {"a = \"\\u12\"\n", ERR_PARSE, "t.toml:1:6: \\u needs 4 hex digits"},
    {"a = \"\\ud800\"\n", ERR_PARSE, "t.toml:1:6: \\u escape is not a unicode scalar value"},
    {"a = \"\\u0000\"\n", ERR_PARSE, "t.toml:1:6: \\u0000 is not allowed in strings"},
    {"a = \"\"\"x\"\"\"\n", ERR_PARSE, "t.toml:1:5: multi-line strings are not supported"},
    {"a = {x = 1}\n", ERR_PARSE, "t.toml:1:5: inline tables are not supported"},
    {"[[t]]\n", ERR_PARSE, "t.toml:1:1: arrays of tables ([[...]]) are not supported"},
    {"a = [1, [2]]\n", ERR_PARSE, "t.toml:1:9: nested arrays are not supported"},
    {"a = [1 2]\n", ERR_PARSE, "t.toml:1:8: expected ',' or ']' in array"},
    {"a = [1,\n 2,\n", ERR_PARSE, "t.toml:3:1: expected a value"},
    {"a = 1979-05-27\n", ERR_PARSE, "t.toml:1:5: dates and times are not supported"},
    {"a = 07:32:00\n", ERR_PARSE, "t.toml:1:5: dates and times are not supported"},
    {"a = 0123\n", ERR_PARSE, "t.toml:1:5: invalid number '0123'"},
    {"a = 1__0\n", ERR_PARSE, "t.toml:1:5: invalid number '1__0'"},
    {"a = _1\n", ERR_PARSE, "t.toml:1:5: invalid number '_1'"},
    {"a = 1_\n", ERR_PARSE, "t.toml:1:5: invalid number '1_'"},
    {"a = 1.\n", ERR_PARSE, "t.toml:1:5: invalid number '1.'"},
    {"a = 1e\n", ERR_PARSE, "t.toml:1:5: invalid number '1e'"},
    {"a = -0x10\n", ERR_PARSE, "t.toml:1:5: a sign is not allowed on 0x integers"},
    {"a = 9223372036854775808\n", ERR_PARSE,
     "t.toml:1:5: integer '9223372036854775808' out of range"},
    {"a = 1e999\n", ERR_PARSE, "t.toml:1:5: float '1e999' out of range"},
    {"a = True\n", ERR_PARSE, "t.toml:1:5: expected a value, got 'True' (strings must be quoted)"},
    {"[server\nport = 1\n", ERR_PARSE, "t.toml:1:8: expected ']' after table name"},
    {"[server] x\n", ERR_PARSE, "t.toml:1:10: expected end of line after table header"},
    {"= 1\n", ERR_PARSE, "t.toml:1:1: expected a key"},
    {"a.= 1\n", ERR_PARSE, "t.toml:1:3: expected a key"},
    {"\"\" = 1\n", ERR_PARSE, "t.toml:1:3: empty key"},
    {"a = 1\r\nb = 2\rc = 3\n", ERR_PARSE, "t.toml:2:6: carriage return not followed by newline"},
    {"a = \"\x01\"\n", ERR_PARSE, "t.toml:1:6: control character in string"},
    {"# ok\n# bad \x7f\n", ERR_PARSE, "t.toml:2:7: control character in comment"},
    {"a = \"\xc3\x28\"\n", ERR_PARSE, "t.toml:1:6: invalid UTF-8"},
    {"a = 1\na = 2\n", ERR_CONFLICT, "t.toml:2:1: duplicate key 'a'"},
    {"[s]\nx = 1\n[t]\n[s]\n", ERR_CONFLICT, "t.toml:4:1: table 's' defined twice"},
    {"[s]\nx = 1\n[s.x]\n", ERR_CONFLICT, "t.toml:3:1: 's.x' is already a value"},
    {"[s.x]\n[s]\nx = 1\n", ERR_CONFLICT, "t.toml:3:1: 's.x' is already a table"},
    {"a = 1\na.b = 2\n", ERR_CONFLICT, "t.toml:2:1: 'a' is a value, not a table"},
    {"[s]\n  x . y = 1\n  x.y = 2\n", ERR_CONFLICT, "t.toml:3:3: duplicate key 's.x.y'"},
};

static void test_bad_inputs(void **state)
{
    struct errbuf eb;
    struct toml_doc doc;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        enum err rc = parse(BAD[i].text, &doc, &eb);
        if (rc != BAD[i].code || strcmp(eb.msg, BAD[i].msg) != 0)
            print_error("case %zu: input %s\n  got  %d '%s'\n  want %d '%s'\n", i, BAD[i].text,
                        rc, eb.msg, BAD[i].code, BAD[i].msg);
        assert_int_equal(rc, BAD[i].code);
        assert_string_equal(eb.msg, BAD[i].msg);
    }
}

/* ---- good inputs ---------------------------------------------------------------- */

static void test_scalars(void **state)
{
    const char *text =
        "\xef\xbb\xbf# leading BOM and a comment\r\n"
        "s = \"a\\\"b\\\\c\\n\\t\\u00e9\\U0001F600\"   # trailing comment\r\n"
        "lit = 'C:\\path\\no\\escape'\n"
        "i = +1_000\n"
        "neg = -42\n"
        "zero = 0\n"
        "hex = 0xff\n"
        "oct = 0o17\n"
        "bin = 0b101\n"
        "min = -9223372036854775808\n"
        "f = 3.5e-1\n"
        "f2 = -1_0.2_5\n"
        "pinf = +inf\n"
        "nan = nan\n"
        "t = true\n"
        "b = false\n"
        "\n"
        "   \t\n";
    struct errbuf eb;
    struct toml_doc doc;
    const struct toml_entry *e;

    (void)state;
    if (parse(text, &doc, &eb) != ERR_OK)
        fail_msg("%s", eb.msg);
    assert_int_equal(doc.n, 15);
    e = toml_doc_get(&doc, "s");
    assert_int_equal(e->val.type, TOML_STRING);
    assert_string_equal(e->val.u.s, "a\"b\\c\n\t\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->col, 1);
    assert_string_equal(toml_doc_get(&doc, "lit")->val.u.s, "C:\\path\\no\\escape");
    assert_int_equal(toml_doc_get(&doc, "i")->val.u.i, 1000);
    assert_int_equal(toml_doc_get(&doc, "neg")->val.u.i, -42);
    assert_int_equal(toml_doc_get(&doc, "zero")->val.u.i, 0);
    assert_int_equal(toml_doc_get(&doc, "hex")->val.u.i, 255);
    assert_int_equal(toml_doc_get(&doc, "oct")->val.u.i, 15);
    assert_int_equal(toml_doc_get(&doc, "bin")->val.u.i, 5);
    assert_true(toml_doc_get(&doc, "min")->val.u.i == INT64_MIN);
    e = toml_doc_get(&doc, "f");
    assert_int_equal(e->val.type, TOML_FLOAT);
    assert_true(fabs(e->val.u.f - 0.35) < 1e-12);
    assert_true(fabs(toml_doc_get(&doc, "f2")->val.u.f + 10.25) < 1e-12);
    assert_true(isinf(toml_doc_get(&doc, "pinf")->val.u.f));
    assert_true(isnan(toml_doc_get(&doc, "nan")->val.u.f));
    assert_int_equal(toml_doc_get(&doc, "t")->val.type, TOML_BOOL);
    assert_true(toml_doc_get(&doc, "t")->val.u.b);
    assert_false(toml_doc_get(&doc, "b")->val.u.b);
    assert_int_equal(toml_doc_get(&doc, "b")->line, 16);
    toml_doc_release(&doc);
}

static void test_tables_and_keys(void **state)
{
    const char *text = "top = 1\n"
                       "[server]\n"
                       "  port = 8000\n"
                       "[storage.minio]   # sub-table\n"
                       "endpoint = \"http://x:9000\"\n"
                       "[ storage . s3 ]\n"
                       "\"quoted key\" = 'q'\n"
                       "dotted.key = 2\n"
                       "bare-key_1 = 3\n"
                       "[storage]\n"
                       "backend = \"s3\"\n";
    static const char *const want[] = {"top",
                                       "server.port",
                                       "storage.minio.endpoint",
                                       "storage.s3.quoted key",
                                       "storage.s3.dotted.key",
                                       "storage.s3.bare-key_1",
                                       "storage.backend"};
    struct errbuf eb;
    struct toml_doc doc;
    size_t i;

    (void)state;
    assert_int_equal(parse(text, &doc, &eb), ERR_OK);
    assert_int_equal(doc.n, 7);
    for (i = 0; i < 7; i++)
        assert_string_equal(doc.entries[i].key, want[i]);
    assert_int_equal(doc.entries[1].line, 3);
    assert_int_equal(doc.entries[1].col, 3);
    assert_int_equal(doc.entries[6].line, 11);
    assert_null(toml_doc_get(&doc, "port"));
    toml_doc_release(&doc);
}

static void test_arrays(void **state)
{
    const char *text = "a = [ \"x\", 'y' ]\n"
                       "empty = []\n"
                       "multi = [\n"
                       "   1,   # one\n"
                       "\n"
                       "   2,\r\n"
                       "   # comment line\n"
                       "   3,\n"
                       "]\n"
                       "after = true\n";
    struct errbuf eb;
    struct toml_doc doc;
    const struct toml_entry *e;

    (void)state;
    assert_int_equal(parse(text, &doc, &eb), ERR_OK);
    e = toml_doc_get(&doc, "a");
    assert_int_equal(e->val.type, TOML_ARRAY);
    assert_int_equal(e->val.u.arr.n, 2);
    assert_string_equal(e->val.u.arr.items[0].u.s, "x");
    assert_string_equal(e->val.u.arr.items[1].u.s, "y");
    assert_int_equal(toml_doc_get(&doc, "empty")->val.u.arr.n, 0);
    e = toml_doc_get(&doc, "multi");
    assert_int_equal(e->val.u.arr.n, 3);
    assert_int_equal(e->val.u.arr.items[2].u.i, 3);
    /* line counting continues correctly past a multi-line array */
    assert_int_equal(toml_doc_get(&doc, "after")->line, 10);
    toml_doc_release(&doc);
}

static void test_limits(void **state)
{
    struct errbuf eb;
    struct toml_doc doc;
    struct buf b;
    char *big;
    int i;

    (void)state;
    /* nesting */
    buf_init(&b, 0);
    buf_append_str(&b, "[a");
    for (i = 1; i < TOML_MAX_DEPTH + 1; i++)
        buf_append_str(&b, ".a");
    buf_append_str(&b, "]\n");
    assert_int_equal(parse(b.data, &doc, &eb), ERR_LIMIT);
    assert_string_equal(eb.msg, "t.toml:1:34: key nested deeper than 16 levels");
    buf_reset(&b);

    /* array items */
    buf_append_str(&b, "a = [");
    for (i = 0; i <= TOML_MAX_ARRAY; i++)
        buf_append_str(&b, "1,");
    buf_append_str(&b, "]\n");
    assert_int_equal(parse(b.data, &doc, &eb), ERR_LIMIT);
    assert_non_null(strstr(eb.msg, "array has more than 4096 items"));
    buf_release(&b);

    /* whole document */
    big = xmalloc(TOML_MAX_BYTES + 2);
    memset(big, '#', TOML_MAX_BYTES + 1);
    big[TOML_MAX_BYTES + 1] = '\0';
    errbuf_init(&eb);
    assert_int_equal(toml_parse(big, TOML_MAX_BYTES + 1, "big", &doc, &eb), ERR_LIMIT);
    assert_string_equal(eb.msg, "big: larger than 1048576 bytes");
    /* exactly at the cap is fine */
    assert_int_equal(toml_parse(big, TOML_MAX_BYTES, "big", &doc, &eb), ERR_OK);
    assert_int_equal(doc.n, 0);
    toml_doc_release(&doc);
    free(big);
}

/* Many keys must stay fast (hash set, not quadratic) and all be found. */
static void test_many_keys(void **state)
{
    struct errbuf eb;
    struct toml_doc doc;
    struct buf b;
    int i;

    (void)state;
    buf_init(&b, 0);
    for (i = 0; i < 50000; i++)
        buf_printf(&b, "k%d = %d\n", i, i);
    buf_append_str(&b, "k777 = 1\n");
    assert_int_equal(parse(b.data, &doc, &eb), ERR_CONFLICT);
    assert_string_equal(eb.msg, "t.toml:50001:1: duplicate key 'k777'");
    buf_release(&b);
}

static void test_parse_file(void **state)
{
    char path[] = "/tmp/arc_toml_XXXXXX";
    struct errbuf eb;
    struct toml_doc doc;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[x]\ny = 'z'\nbad\n", 16), 16);
    close(fd);
    errbuf_init(&eb);
    assert_int_equal(toml_parse_file(path, &doc, &eb), ERR_PARSE);
    {
        char want[256];
        snprintf(want, sizeof(want), "%s:3:4: expected '=' after key", path);
        assert_string_equal(eb.msg, want);
    }
    unlink(path);
    assert_int_equal(toml_parse_file(path, &doc, &eb), ERR_IO);
    assert_non_null(strstr(eb.msg, "No such file"));
    assert_int_equal(toml_parse_file("/tmp", &doc, &eb), ERR_IO);
    assert_string_equal(eb.msg, "/tmp: not a regular file");
}

/* Damage a valid document in many deterministic ways: every prefix, and random
 * byte flips / insertions. The parser must return (OK or an error with a
 * "t.toml:" message) without crashing, leaking or reading out of bounds (ASan). */
static void test_mutations(void **state)
{
    static const char seed[] = "# c\n[server]\nport = 8000 # p\nhost = \"0.0.0.0\"\n"
                               "[storage.minio]\nendpoint = 'http://x'\nxs = [1, 2,\n 3]\n"
                               "f = -1.5e3\nb = true\ns = \"\\u00e9\\n\"\n";
    static const char alphabet[] = "[]=\"'\\#.,\n\r\t -+_0e9xu{}:\x01\xc3\xff";
    size_t n = sizeof(seed) - 1, i, j;
    uint32_t rng = 12345;
    struct errbuf eb;
    struct toml_doc doc;
    char *m = xmalloc(n + 8);

    (void)state;
    for (i = 0; i <= n; i++) {
        /* exact-length copy so ASan catches any read past len */
        char *pre = xmalloc(i ? i : 1);
        memcpy(pre, seed, i);
        errbuf_init(&eb);
        if (toml_parse(pre, i, "t.toml", &doc, &eb) == ERR_OK)
            toml_doc_release(&doc);
        else
            assert_memory_equal(eb.msg, "t.toml:", 7);
        free(pre);
    }
    for (i = 0; i < 20000; i++) {
        size_t len = n;
        memcpy(m, seed, n);
        for (j = 0; j < 3; j++) {
            rng = rng * 1103515245u + 12345u;
            size_t at = (rng >> 8) % len;
            char ch = alphabet[(rng >> 20) % (sizeof(alphabet) - 1)];
            if ((rng >> 4) & 1) {
                m[at] = ch;
            } else if (len < n + 7) {
                memmove(m + at + 1, m + at, len - at);
                m[at] = ch;
                len++;
            }
        }
        errbuf_init(&eb);
        if (toml_parse(m, len, "t.toml", &doc, &eb) == ERR_OK)
            toml_doc_release(&doc);
        else
            assert_memory_equal(eb.msg, "t.toml:", 7);
    }
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),   cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_tables_and_keys), cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_parse_file),   cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
