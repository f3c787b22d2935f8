/* catalog_s3.h - catalog state of the remote (s3) storage backend, and the
 * rebuild of the files table from a storage listing.
 *
 * Upload intents (table s3_uploads, migration 3) make a flush to S3 safe across
 * crashes and outages:
 *   state 0 (UPLOADING): written before a file's PUT. A trigger deletes the row
 *     in the same transaction that inserts the file's catalog row, so after a
 *     commit no state-0 row of a listed file survives. A state-0 row whose file
 *     is not listed is an orphan of a crash between PUT and commit: the object
 *     is deleted at start-up.
 *   state 1 (SPOOLED): the store was unreachable; the file waits in the local
 *     spool and IS listed (queries read the spool copy). This row is the
 *     "pending upload" flag of the file row. The uploader uploads pending files
 *     in id order under the same key and then deletes the row.
 * Thread: as catalog.h (each call takes the catalog lock). */
#ifndef CATALOG_CATALOG_S3_H
#define CATALOG_CATALOG_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "core/err.h"

enum catalog_upload_state {
    CATALOG_UPLOAD_UPLOADING = 0,
    CATALOG_UPLOAD_SPOOLED = 1,
};

struct catalog_upload {
    int64_t id;    /* increasing: upload order */
    char *path;    /* storage key, owned */
    int64_t bytes; /* file size */
    int state;     /* enum catalog_upload_state */
};

/* Record (or replace) the intent for key path. */
enum err catalog_upload_set(struct catalog *c, const char *path, enum catalog_upload_state state,
                            int64_t bytes, struct errbuf *eb);
/* Forget the intent for path (uploaded, or cleaned up). Missing is fine. */
enum err catalog_upload_clear(struct catalog *c, const char *path, struct errbuf *eb);

/* Spooled files whose catalog row exists, in upload order (pending uploads).
 * *out is a new array (catalog_uploads_free). */
enum err catalog_uploads_pending(struct catalog *c, struct catalog_upload **out, size_t *n,
                                 struct errbuf *eb);
/* Intents of files the catalog does not list (crash leftovers), any state. */
enum err catalog_uploads_orphans(struct catalog *c, struct catalog_upload **out, size_t *n,
                                 struct errbuf *eb);
void catalog_uploads_free(struct catalog_upload *u, size_t n);

/* One file found in storage, for catalog_files_rebuild (all borrowed). */
struct catalog_rebuild_file {
    const char *database, *measurement, *path;
    int64_t min_time_us, max_time_us, rows, bytes;
    const struct catalog_column *cols;
    size_t ncols;
};

/* Make the files table list exactly these files, in ONE transaction: rows of
 * files not in the list are deleted, files already listed keep their row (and
 * WAL range), the others are inserted; columns and databases are added when
 * missing. Spooled files (pending upload, not in the remote listing yet) keep
 * their rows and intents; state-0 intents of unlisted files are dropped.
 * *added / *removed (may be NULL) get the counts. */
enum err catalog_files_rebuild(struct catalog *c, const struct catalog_rebuild_file *files,
                               size_t n, size_t *added, size_t *removed, struct errbuf *eb);

#endif
