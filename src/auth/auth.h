/* auth.h - API tokens: creation, verification on the request path, management.
 *
 * A token secret is 32 random bytes encoded base64url without padding (43
 * characters). Only its SHA-256 is stored (catalog table `tokens`); the
 * plaintext is returned once, by create/rotate/bootstrap, and never again.
 *
 * Request path: auth_check() looks the SHA-256 of the presented secret up in an
 * in-memory table (a snapshot of the tokens table) and compares hashes in
 * constant time. It never touches SQLite and takes only a read lock, so any
 * number of event-loop threads may call it at once. It returns a refcounted
 * principal that stays valid for the whole request even if the token is deleted
 * or the table reloaded meanwhile (auth_principal_release when done).
 *
 * Freshness: changes made through this struct auth update the table at once.
 * Changes made by another process on the same arc.db (the offline `arc token`
 * CLI) are picked up by auth_flush_last_used(), which reloads the table when it
 * is older than cache_ttl_ms. The server calls it periodically from a background
 * thread; a token created or deleted offline therefore takes effect within
 * cache_ttl_ms plus one flush period.
 *
 * Thread: auth_check, auth_principal_* are safe from any thread and never block
 * on I/O. Every other function may block on SQLite and must not run on an
 * event-loop thread; they are safe to call concurrently with each other. */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct catalog;
struct auth;           /* opaque; auth.c */
struct auth_principal; /* opaque, refcounted, immutable; auth.c */

/* Permission bits: the same values as enum http_perm in http/http.h. */
enum auth_perm {
    AUTH_PERM_READ = 1u << 0,
    AUTH_PERM_WRITE = 1u << 1,
    AUTH_PERM_DELETE = 1u << 2,
    AUTH_PERM_ADMIN = 1u << 3, /* implies every other permission */
    AUTH_PERM_ALL = 0xfu,
};
#define AUTH_PERM_DEFAULT (AUTH_PERM_READ | AUTH_PERM_WRITE)

#define AUTH_TOKEN_RANDOM_BYTES 32
#define AUTH_TOKEN_CHARS 43          /* base64url(32 bytes), no padding */
#define AUTH_MAX_SECRET_LEN 512      /* longer presented secrets are rejected unhashed */
#define AUTH_DEFAULT_CACHE_TTL_MS 30000
#define AUTH_BOOTSTRAP_NAME "admin"

struct auth_opts {
    unsigned cache_ttl_ms; /* reload the token table when older than this; 0 = default */
};

/* Load the token table from c (borrowed; must outlive the auth).
 * ERR_DB if the table cannot be read. */
enum err auth_new(struct catalog *c, const struct auth_opts *o, struct auth **out,
                  struct errbuf *eb);
/* Free a. Accepts NULL. Principals still held by requests stay valid. Pending
 * last-used times are not written: call auth_flush_last_used() first. */
void auth_free(struct auth *a);

/* Make sure an admin can log in at first start.
 * - No tokens at all: create an admin token named "admin" whose secret is
 *   bootstrap_token when that is non-empty, else a new random one. In the random
 *   case *printed_token_out gets the plaintext (caller frees; main prints it once
 *   to stderr); otherwise it gets NULL.
 * - Tokens exist and bootstrap_token is non-empty: make sure that secret is a
 *   valid admin token (insert it as "admin", or "bootstrap" if that name is
 *   taken; re-enable and grant admin if it exists with less).
 * bootstrap_token may be NULL or "". ERR_INVAL if it is longer than
 * AUTH_MAX_SECRET_LEN. */
enum err auth_bootstrap(struct auth *a, const char *bootstrap_token, char **printed_token_out,
                        struct errbuf *eb);

/* Verify a presented secret. On success *out is a new reference (release it).
 * ERR_AUTH with "Authentication required" (NULL/empty), "Invalid or expired
 * token" (unknown), "Token '<name>' has expired", "Token '<name>' is disabled".
 * Records the use in memory (written later by auth_flush_last_used). */
enum err auth_check(struct auth *a, const char *token, struct auth_principal **out,
                    struct errbuf *eb);

/* Write pending last-used times to the catalog in one transaction, then reload
 * the token table if it is older than cache_ttl_ms. Call periodically from a
 * background thread. */
enum err auth_flush_last_used(struct auth *a, struct errbuf *eb);
/* Reload the token table from the catalog now. */
enum err auth_reload(struct auth *a, struct errbuf *eb);

/* ---- principals (result of auth_check) ----------------------------------- */

void auth_principal_ref(struct auth_principal *p);
/* Drop a reference. Accepts NULL. */
void auth_principal_release(struct auth_principal *p);
/* True if p has any of perm_bits, or admin. */
bool auth_principal_has(const struct auth_principal *p, unsigned perm_bits);
/* True if p may use database (its list is absent = all, or names it exactly).
 * p == NULL (auth disabled) is allowed everything. */
bool auth_principal_can_db(const struct auth_principal *p, const char *database);
int64_t auth_principal_id(const struct auth_principal *p);
/* Borrowed; lives as long as the reference. */
const char *auth_principal_name(const struct auth_principal *p);
unsigned auth_principal_perms(const struct auth_principal *p);
/* The database list (borrowed), or NULL when the token may use all databases. */
const char *const *auth_principal_databases(const struct auth_principal *p, size_t *n_out);
int64_t auth_principal_expires_at_us(const struct auth_principal *p); /* 0 = never */
/* Append {"id":..,"name":..,"permissions":[..],"databases":[..]|null,
 * "expires_at":"RFC3339"|null} to b. */
enum err auth_principal_json(const struct auth_principal *p, struct buf *b);

/* ---- token management ---------------------------------------------------- */

/* What a new token gets. Strings and arrays are borrowed. */
struct auth_token_spec {
    const char *name;                /* required, 1..ARC_MAX_TOKEN_NAME bytes, printable */
    const char *description;         /* NULL = "" */
    unsigned perms;                  /* enum auth_perm bits; 0 = AUTH_PERM_DEFAULT */
    const char *const *databases;    /* NULL = all databases */
    size_t ndatabases;               /* entries of databases (1..ARC_MAX_TOKEN_DATABASES) */
    int64_t expires_at_us;           /* µs since epoch; 0 = never; must be in the future */
};

/* Metadata of a stored token; never the secret or its hash. Owned strings. */
struct auth_token_info {
    int64_t id;
    char *name;
    char *description;
    unsigned perms;
    char **databases;       /* NULL = all databases */
    size_t ndatabases;
    int64_t created_at_us;
    int64_t last_used_at_us; /* 0 = never */
    int64_t expires_at_us;   /* 0 = never */
    bool enabled;
};

/* Which fields an update changes; a false set_* / NULL string leaves it alone. */
struct auth_token_update {
    const char *name;
    const char *description;
    bool set_perms;
    unsigned perms;
    bool set_databases;
    const char *const *databases; /* with set_databases: NULL = all databases */
    size_t ndatabases;
    bool set_enabled;
    bool enabled;
    bool set_expires;
    int64_t expires_at_us; /* with set_expires: 0 = never */
};

/* Create a token. *token_out (caller frees) gets the plaintext secret, the only
 * time it exists; *id_out (may be NULL) the id. ERR_INVAL names the bad field;
 * ERR_CONFLICT if the name is taken. */
enum err auth_token_create(struct auth *a, const struct auth_token_spec *spec, char **token_out,
                           int64_t *id_out, struct errbuf *eb);

/* ref is a numeric id or a name (a number is tried as an id first, then as a
 * name). ERR_NOTFOUND if neither matches. */
enum err auth_token_get(struct auth *a, const char *ref, struct auth_token_info *out,
                        struct errbuf *eb);
/* All tokens ordered by id; *out is a new array (auth_token_info_list_free). */
enum err auth_token_list(struct auth *a, struct auth_token_info **out, size_t *n_out,
                         struct errbuf *eb);
enum err auth_token_update(struct auth *a, const char *ref, const struct auth_token_update *u,
                           struct errbuf *eb);
enum err auth_token_delete(struct auth *a, const char *ref, struct errbuf *eb);
/* Give the token a new random secret (returned in *token_out, caller frees); the
 * old secret stops working immediately for this server. */
enum err auth_token_rotate(struct auth *a, const char *ref, char **token_out,
                           struct errbuf *eb);

void auth_token_info_release(struct auth_token_info *t);
void auth_token_info_list_free(struct auth_token_info *v, size_t n);
/* Append the info as a JSON object (times RFC 3339 or null) to b. */
enum err auth_token_info_json(const struct auth_token_info *t, struct buf *b);

/* ---- parsing and helpers ------------------------------------------------- */

/* "read" -> AUTH_PERM_READ etc. (case-insensitive, surrounding blanks ignored).
 * ERR_INVAL "unknown permission 'x' (expected read, write, delete or admin)". */
enum err auth_perm_parse_name(const char *s, size_t len, unsigned *bit_out, struct errbuf *eb);
/* Parse "read,write" or a JSON array text ["read","write"] into bits.
 * ERR_INVAL for an unknown or empty list. */
enum err auth_perms_parse(const char *text, unsigned *out, struct errbuf *eb);
/* Format bits as "read,write,delete,admin" (in that order) into out. */
void auth_perms_format(unsigned perms, char *out, size_t out_len);
/* Check one database name: 1..ARC_MAX_DB_NAME bytes of [A-Za-z0-9_.-]. */
enum err auth_database_name_check(const char *name, struct errbuf *eb);
/* Parse "a,b" or a JSON array text ["a","b"] into a new array of new strings
 * (free with auth_string_list_free). Names are checked. */
enum err auth_databases_parse(const char *text, char ***out, size_t *n_out, struct errbuf *eb);
void auth_string_list_free(char **v, size_t n);
/* Parse an expiry: a duration from now ("7d", "24h", "30m", "3600s", "2w") or an
 * RFC 3339 time ("2026-01-02T03:04:05Z", offsets and fractions allowed).
 * "never" and "0" give 0 (no expiry). ERR_INVAL says what was wrong. */
enum err auth_expiry_parse(const char *s, int64_t now_us, int64_t *expires_at_us_out,
                           struct errbuf *eb);
/* Fill out with a new random secret: AUTH_TOKEN_CHARS base64url chars + NUL.
 * ERR_INTERNAL if the random generator fails. */
enum err auth_token_generate(char out[AUTH_TOKEN_CHARS + 1], struct errbuf *eb);

/* `arc token <sub> ...` (argv[0] == "token"): create, list, delete, rotate.
 * Returns a process exit code; output on stdout, errors on stderr. (auth_cli.c) */
int auth_cli_main(int argc, char **argv, const char *data_dir);

#endif
