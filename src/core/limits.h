/* limits.h - every fixed cap in one place (SQLite's sqliteLimit.h).
 *
 * Caps that users tune live in the config (server.max_payload_mb, ...); these are
 * the hard ceilings and the defaults behind them. */
#ifndef CORE_LIMITS_H
#define CORE_LIMITS_H

#define ARC_MAX_HEADER_BYTES (64 * 1024)     /* request line + headers, per connection */
#define ARC_MAX_URL_BYTES (16 * 1024)        /* request target */
#define ARC_MAX_JSON_REQUEST_BYTES (4 << 20) /* JSON control bodies (auth, query) */
#define ARC_MAX_SQL_BYTES (1 << 20)          /* one SQL statement */
#define ARC_MAX_DB_NAME 64                   /* database name length */
#define ARC_MAX_MEASUREMENT_NAME 128         /* measurement name length */
#define ARC_MAX_TOKEN_NAME 128               /* token name length */
#define ARC_MAX_TOKEN_DESC 1024              /* token description length */
#define ARC_MAX_TOKEN_DATABASES 256          /* databases listed on one token */
#define ARC_DEFAULT_MAX_PAYLOAD_MB 1024      /* server.max_payload_mb */
#define ARC_DEFAULT_MAX_DECOMPRESSED_MB 1024 /* server.max_decompressed_mb */

#endif
