/* auth_cli.c - `arc token create|list|delete|rotate`: token admin without a server.
 *
 * Opens {data_dir}/arc.db directly (WAL mode lets a running server keep it open)
 * and goes through the same struct auth as the HTTP routes, so validation and
 * hashing are identical. A running server sees the change after its cache TTL.
 * `create` and `rotate` print the secret alone on stdout, so scripts can capture
 * it with $(arc token create NAME); everything else a human should read goes to
 * stderr, except the `list` table. */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/mem.h"

static const char usage_main[] =
    "usage: arc token <command> [options]\n"
    "\n"
    "commands:\n"
    "  create NAME [--permissions read,write] [--databases a,b] [--description D]\n"
    "              [--expires 7d|24h|30m|3600s|RFC3339]   create a token, print it\n"
    "  list                                               list tokens (never secrets)\n"
    "  delete NAME|ID                                     delete a token\n"
    "  rotate NAME|ID                                     new secret, print it\n"
    "\n"
    "Run `arc token <command> --help` for details.\n";

static const char usage_create[] =
    "usage: arc token create NAME [options]\n"
    "\n"
    "Create an API token and print its secret on stdout (shown only this once).\n"
    "  --permissions P   comma list of read, write, delete, admin (default read,write)\n"
    "  --databases D     comma list of databases the token may use (default: all)\n"
    "  --description D   free text\n"
    "  --expires E       duration (3600s, 30m, 24h, 7d, 2w) or RFC 3339 time\n";

static const char usage_list[] = "usage: arc token list\n"
                                 "\n"
                                 "List tokens: id, name, permissions, databases, state.\n";

static const char usage_delete[] = "usage: arc token delete NAME|ID\n"
                                   "\n"
                                   "Delete a token; it stops working at once (a running server\n"
                                   "notices within its auth cache TTL).\n";

static const char usage_rotate[] = "usage: arc token rotate NAME|ID\n"
                                   "\n"
                                   "Give a token a new secret and print it on stdout; the old\n"
                                   "secret stops working.\n";

static bool is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

/* Match "--name value" or "--name=value" at argv[*i]; advances *i past it. */
static bool take_opt(int argc, char **argv, int *i, const char *name, const char **val,
                     bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        *missing = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

static int cmd_create(struct auth *a, int argc, char **argv)
{
    const char *name = NULL, *perms = NULL, *dbs = NULL, *desc = NULL, *expires = NULL;
    struct auth_token_spec spec = {0};
    char **dbv = NULL, *token = NULL;
    size_t ndb = 0;
    struct errbuf eb;
    bool missing = false;
    int i, status = 1;

    errbuf_init(&eb);
    for (i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_create, stdout);
            return 0;
        }
        if (take_opt(argc, argv, &i, "--permissions", &perms, &missing) ||
            take_opt(argc, argv, &i, "--databases", &dbs, &missing) ||
            take_opt(argc, argv, &i, "--description", &desc, &missing) ||
            take_opt(argc, argv, &i, "--expires", &expires, &missing)) {
            if (missing) {
                fprintf(stderr, "arc token create: %s needs a value\n", argv[i]);
                return 2;
            }
            continue;
        }
        if (argv[i][0] == '-' || name) {
            fprintf(stderr, "arc token create: unexpected argument '%s'\n%s", argv[i],
                    usage_create);
            return 2;
        }
        name = argv[i];
    }
    if (!name) {
        fprintf(stderr, "arc token create: NAME is required\n%s", usage_create);
        return 2;
    }
    spec.name = name;
    spec.description = desc;
    if (perms && auth_perms_parse(perms, &spec.perms, &eb) != ERR_OK)
        goto out_error;
    if (dbs && auth_databases_parse(dbs, &dbv, &ndb, &eb) != ERR_OK)
        goto out_error;
    spec.databases = (const char *const *)dbv;
    spec.ndatabases = ndb;
    if (expires && auth_expiry_parse(expires, clock_now_us(), &spec.expires_at_us, &eb) != ERR_OK)
        goto out_error;
    if (auth_token_create(a, &spec, &token, NULL, &eb) != ERR_OK)
        goto out_error;
    printf("%s\n", token);
    free(token);
    status = 0;
    goto out;

out_error:
    fprintf(stderr, "arc token create: %s\n", eb.msg);
out:
    auth_string_list_free(dbv, ndb);
    return status;
}

static int cmd_list(struct auth *a, int argc, char **argv)
{
    struct auth_token_info *v = NULL;
    char perms[64], exp[40], used[40], dbs[256];
    size_t n = 0, i, j, o;
    struct errbuf eb;

    errbuf_init(&eb);
    if (argc > 1) {
        if (is_help(argv[1])) {
            fputs(usage_list, stdout);
            return 0;
        }
        fprintf(stderr, "arc token list: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    if (auth_token_list(a, &v, &n, &eb) != ERR_OK) {
        fprintf(stderr, "arc token list: %s\n", eb.msg);
        return 1;
    }
    printf("%-6s %-24s %-26s %-24s %-8s %-21s %s\n", "ID", "NAME", "PERMISSIONS", "DATABASES",
           "ENABLED", "EXPIRES", "LAST USED");
    for (i = 0; i < n; i++) {
        auth_perms_format(v[i].perms, perms, sizeof(perms));
        if (!v[i].databases) {
            snprintf(dbs, sizeof(dbs), "*");
        } else {
            dbs[0] = '\0';
            for (j = 0, o = 0; j < v[i].ndatabases && o < sizeof(dbs); j++) {
                int w = snprintf(dbs + o, sizeof(dbs) - o, "%s%s", j ? "," : "",
                                 v[i].databases[j]);
                if (w < 0)
                    break;
                o += (size_t)w;
            }
        }
        if (v[i].expires_at_us)
            clock_format_rfc3339_us(v[i].expires_at_us, exp, (int)sizeof(exp));
        else
            snprintf(exp, sizeof(exp), "never");
        if (v[i].last_used_at_us)
            clock_format_rfc3339_us(v[i].last_used_at_us, used, (int)sizeof(used));
        else
            snprintf(used, sizeof(used), "never");
        /* Trim the RFC 3339 times to seconds for the table. */
        if (strlen(exp) > 19 && exp[4] == '-')
            exp[19] = '\0';
        if (strlen(used) > 19 && used[4] == '-')
            used[19] = '\0';
        printf("%-6lld %-24s %-26s %-24s %-8s %-21s %s\n", (long long)v[i].id, v[i].name, perms,
               dbs, v[i].enabled ? "yes" : "no", exp, used);
    }
    auth_token_info_list_free(v, n);
    return 0;
}

/* delete and rotate: one NAME|ID argument. */
static int cmd_ref(struct auth *a, int argc, char **argv, bool rotate)
{
    const char *usage = rotate ? usage_rotate : usage_delete;
    char *token = NULL;
    struct errbuf eb;
    enum err rc;

    errbuf_init(&eb);
    if (argc > 1 && is_help(argv[1])) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "arc token %s: expected exactly one NAME or ID\n%s", argv[0], usage);
        return 2;
    }
    if (rotate)
        rc = auth_token_rotate(a, argv[1], &token, &eb);
    else
        rc = auth_token_delete(a, argv[1], &eb);
    if (rc != ERR_OK) {
        fprintf(stderr, "arc token %s: %s\n", argv[0], eb.msg);
        return 1;
    }
    if (rotate) {
        printf("%s\n", token);
        free(token);
    } else {
        fprintf(stderr, "deleted token %s\n", argv[1]);
    }
    return 0;
}

int auth_cli_main(int argc, char **argv, const char *data_dir)
{
    struct catalog *cat = NULL;
    struct auth *a = NULL;
    const char *sub;
    struct errbuf eb;
    int status;

    errbuf_init(&eb);
    if (argc < 2 || is_help(argv[1])) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    sub = argv[1];
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "delete") != 0 &&
        strcmp(sub, "rotate") != 0) {
        fprintf(stderr, "arc token: unknown command '%s'\n%s", sub, usage_main);
        return 2;
    }
    /* Answer --help without touching the data directory. */
    if (argc > 2 && is_help(argv[2])) {
        if (strcmp(sub, "create") == 0)
            fputs(usage_create, stdout);
        else if (strcmp(sub, "list") == 0)
            fputs(usage_list, stdout);
        else
            fputs(strcmp(sub, "delete") == 0 ? usage_delete : usage_rotate, stdout);
        return 0;
    }
    if (catalog_open(data_dir, &cat, &eb) != ERR_OK) {
        fprintf(stderr, "arc token: %s\n", eb.msg);
        return 1;
    }
    if (auth_new(cat, NULL, &a, &eb) != ERR_OK) {
        fprintf(stderr, "arc token: %s\n", eb.msg);
        catalog_close(cat);
        return 1;
    }
    if (strcmp(sub, "create") == 0)
        status = cmd_create(a, argc - 1, argv + 1);
    else if (strcmp(sub, "list") == 0)
        status = cmd_list(a, argc - 1, argv + 1);
    else
        status = cmd_ref(a, argc - 1, argv + 1, strcmp(sub, "rotate") == 0);
    auth_free(a);
    catalog_close(cat);
    return status;
}
