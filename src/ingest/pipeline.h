/* pipeline.h - the write path: decode -> (WAL) -> buffers, and WAL replay.
 *
 * ingest_pipeline_write() is what every write endpoint calls. Order (DESIGN.md §5):
 *   1. decode and validate the whole body (all or nothing, no lock held);
 *   2. with the WAL on, under the pipeline lock: check the batches against the
 *      buffers (schema, budget), write one WAL record, append to the buffers
 *      (so buffer order == LSN order); then, without the lock, wait until the
 *      record is as durable as sync_mode promises (group commit);
 *      with the WAL off: append to the buffers;
 *   3. return ERR_OK: the caller answers 204.
 * A request that fails at any step stores nothing and logs nothing to the WAL.
 *
 * Replay (start-up, before /ready): every WAL record is decoded again (with the
 * server time it was received at) and each measurement's batch is appended
 * unless the catalog lists a committed file whose LSN range covers the record for
 * that measurement: each acknowledged row comes back exactly once.
 * Thread: write is safe from any thread; replay and checkpoint from one. */
#ifndef INGEST_PIPELINE_H
#define INGEST_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ingest/ingest.h"

struct ingest_pipeline;
struct bufmgr;
struct wal;
struct catalog;
struct metrics;

enum ingest_format { INGEST_FMT_LP = 1, INGEST_FMT_MSGPACK = 2, INGEST_FMT_JSON = 3 };

struct ingest_pipeline *ingest_pipeline_new(struct bufmgr *bm, struct wal *wal /* may be NULL */,
                                            struct catalog *catalog, struct metrics *metrics);
void ingest_pipeline_free(struct ingest_pipeline *p);

/* Decode body and store it (see above). *rows_out gets the row count on success.
 * Errors: ERR_PARSE/ERR_LIMIT (body), ERR_CONFLICT (types), ERR_BUSY (budget),
 * ERR_NOSPACE/ERR_IO (WAL). eb says what and where. */
enum err ingest_pipeline_write(struct ingest_pipeline *p, const char *db, enum ingest_format f,
                               enum ingest_precision prec, const char *body, size_t len,
                               size_t *rows_out, struct errbuf *eb);

/* Replay the WAL into the buffers. *records and *rows count what was re-applied. */
enum err ingest_pipeline_replay(struct ingest_pipeline *p, uint64_t *records, uint64_t *rows,
                                struct errbuf *eb);

/* Tell the WAL which records are now in committed Parquet files; deletes covered
 * segments. Call periodically and after a full flush. */
enum err ingest_pipeline_checkpoint(struct ingest_pipeline *p, struct errbuf *eb);

#endif
