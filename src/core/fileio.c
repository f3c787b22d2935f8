/* fileio.c - mkdir -p and fsync-by-path with errno turned into messages. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum err fileio_mkdirs(const char *path, mode_t mode, bool *created, struct errbuf *eb)
{
    char tmp[4096];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof(tmp))
        return errbuf_set(eb, n ? ERR_LIMIT : ERR_INVAL, "bad directory path '%.200s'", path);
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, mode) == 0) {
            if (created)
                *created = true;
        } else if (errno != EEXIST) {
            return errbuf_set(eb, errno == ENOSPC ? ERR_NOSPACE : ERR_IO, "mkdir %s: %s", tmp,
                              strerror(errno));
        }
        tmp[i] = path[i];
    }
    return ERR_OK;
}

enum err fileio_fsync_path(const char *path, bool dir, struct errbuf *eb)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    enum err rc = ERR_OK;

    if (fd < 0)
        return errbuf_set(eb, ERR_IO, "open %s: %s", path, strerror(errno));
    if (fsync(fd) != 0)
        rc = errbuf_set(eb, errno == ENOSPC ? ERR_NOSPACE : ERR_IO, "fsync %s: %s", path,
                        strerror(errno));
    close(fd);
    return rc;
}
