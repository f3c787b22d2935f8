/* auth_int.h - private to src/auth: the table structures and helpers shared by
 * auth.c, auth_tokens.c, auth_parse.c and auth_cli.c. Never include from
 * another module. */
#ifndef AUTH_AUTH_INT_H
#define AUTH_AUTH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/buf.h"

struct auth_principal {
    atomic_int refs;                           /* one per snapshot + one per holder */
    int64_t id;                                /* tokens.id */
    char *name;                                /* owned */
    unsigned perms;                            /* enum auth_perm bits */
    char **databases;                          /* owned; NULL = all databases */
    size_t ndatabases;
    int64_t expires_at_us;                     /* 0 = never */
    bool enabled;
    uint64_t prefix;                           /* first 8 bytes of hash, big-endian: sort key */
    uint8_t hash[CATALOG_TOKEN_HASH_LEN];      /* SHA-256 of the secret */
    _Atomic int64_t used_us;                   /* latest use seen in memory, 0 = none */
    _Atomic int64_t flushed_us;                /* latest use written to the catalog */
};

struct auth_snapshot {
    struct auth_principal **v; /* sorted by prefix; each holds one reference */
    size_t n;
};

struct auth {
    struct catalog *catalog;   /* borrowed */
    int64_t ttl_ns;            /* reload when the snapshot is older than this */
    pthread_rwlock_t lock;     /* guards snap (read: checks; write: swap) */
    struct auth_snapshot snap;
    pthread_mutex_t admin_mu;  /* serialises rebuilds and management calls */
    _Atomic int64_t loaded_mono_ns; /* when snap was built from the catalog */
};

/* Rebuild the in-memory table from the catalog and swap it in. admin_mu held. */
enum err auth_rebuild_locked(struct auth *a, struct errbuf *eb);
/* The principal with this hash, borrowed from s, or NULL. a->lock held. */
struct auth_principal *auth_snapshot_find(const struct auth_snapshot *s, const uint8_t *hash);
/* Latest use of the token with this hash seen in memory (maybe not yet
 * flushed), or 0. Takes a->lock. */
int64_t auth_memory_last_used(struct auth *a, const uint8_t *hash);

/* SHA-256 of the secret's bytes. */
void auth_hash_secret(const char *secret, size_t len, uint8_t out[CATALOG_TOKEN_HASH_LEN]);

/* base64url without padding; out must hold 4 * ceil(n / 3) + 1 bytes. Returns
 * the length written (excluding the NUL). */
size_t auth_base64url_encode(const uint8_t *in, size_t n, char *out);

/* Append the names as a JSON array of strings to b. */
enum err auth_databases_to_json(const char *const *v, size_t n, struct buf *b);

/* Append bits as a JSON array of names ["read","write"] to b. */
enum err auth_perms_to_json(unsigned perms, struct buf *b);

/* Append an RFC 3339 time, or null when ts_us is 0, to b. */
enum err auth_time_to_json(int64_t ts_us, struct buf *b);

#endif
