/* duck_int.h - private declarations shared by duck.c and duck_parquet.c.
 * Never included from another module (it pulls in duckdb.h). */
#ifndef DUCK_DUCK_INT_H
#define DUCK_DUCK_INT_H

#include <pthread.h>

#include <duckdb.h>

#include "core/buf.h"
#include "duck/duck.h"

struct duck {
    duckdb_database wdb;         /* writer instance: private, full file access, threads=1 */
    duckdb_database qdb;         /* query instance: sandboxed, configuration locked */
    pthread_mutex_t pool_mu;     /* guards pool/npool/pool_cap */
    duckdb_connection *pool;     /* idle writer connections (LIFO) */
    size_t npool, pool_cap;      /* idle count, slots allocated */
    char *data_dir;              /* owned copy of duck_opts.data_dir */
};

/* Take an idle writer connection, or open a new one. ERR_DB on failure. */
enum err duck_writer_conn_get(struct duck *d, duckdb_connection *out, struct errbuf *eb);
/* Return a writer connection to the pool (the caller's statement has finished). */
void duck_writer_conn_put(struct duck *d, duckdb_connection c);

/* Register arc_batch_scan() on the writer instance (once, at open). */
enum err duck_parquet_register(struct duck *d, duckdb_connection c, struct errbuf *eb);

/* Append s[0..n) to b as a SQL string literal ('...' with quotes doubled). */
enum err duck_sql_str(struct buf *b, const char *s, size_t n);
/* Append s as a SQL identifier ("..." with quotes doubled). */
enum err duck_sql_ident(struct buf *b, const char *s);

/* Run sql on c, discard the result. ERR_DB with DuckDB's message in eb on failure. */
enum err duck_exec(duckdb_connection c, const char *sql, struct errbuf *eb);

#endif
