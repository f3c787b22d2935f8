/* fileio.h - small file-system helpers shared by every module that touches disk.
 *
 * Errors are turned into messages where errno is fresh (STYLE.md §3): ENOSPC
 * becomes ERR_NOSPACE (507), anything else ERR_IO. Thread: all reentrant. */
#ifndef CORE_FILEIO_H
#define CORE_FILEIO_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

/* mkdir -p: create path and its missing parents with mode. *created (may be
 * NULL) is set to true if any directory was created. */
enum err fileio_mkdirs(const char *path, mode_t mode, bool *created, struct errbuf *eb);

/* fsync a file (dir false) or a directory (dir true) by path. */
enum err fileio_fsync_path(const char *path, bool dir, struct errbuf *eb);

#endif
