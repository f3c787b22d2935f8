/* storage_rebuild.c - `arc catalog rebuild`: recreate the files table from what
 * storage holds. Keys are listed (directory walk or bucket listing), each
 * layout-conforming .parquet key {db}/{m}/YYYY/MM/DD/HH/{name}.parquet is read
 * with DuckDB (rows, time range, columns, tag names from the file's arc_tags
 * metadata) through a local path (remote files are fetched into the cache),
 * and the result is applied in ONE catalog transaction
 * (catalog_files_rebuild). */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/catalog_s3.h"
#include "core/log.h"
#include "core/mem.h"
#include "duck/duck_inspect.h"
#include "storage/storage_int.h"

struct keys {
    char **v;
    uint64_t *size;
    size_t n, cap;
};

static int collect(void *ctx, const char *key, uint64_t size)
{
    struct keys *k = ctx;

    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->v = xreallocarray(k->v, k->cap, sizeof(*k->v));
        k->size = xreallocarray(k->size, k->cap, sizeof(*k->size));
    }
    k->v[k->n] = xstrdup(key);
    k->size[k->n] = size;
    k->n++;
    return 0;
}

/* Split key into database and measurement (new strings); false if the key
 * does not follow the layout. */
static bool parse_key(const char *key, char **db, char **m)
{
    const char *p = key, *s1, *s2;
    int slashes = 0;

    for (; *p; p++)
        slashes += *p == '/';
    if (slashes != 6)
        return false;
    s1 = strchr(key, '/');
    s2 = strchr(s1 + 1, '/');
    if (s1 == key || s2 == s1 + 1)
        return false;
    *db = xstrndup(key, (size_t)(s1 - key));
    *m = xstrndup(s1 + 1, (size_t)(s2 - s1 - 1));
    return true;
}

/* A compaction output (c-*.parquet) names its inputs in its metadata. When both are
 * on storage (a crash between the catalog swap and the inputs' deletion, then the
 * catalog was lost), the output holds every row of the inputs (its row count was
 * checked before it got its name): register it alone and delete the inputs, or the
 * rows would count twice. Returns the new count of rf/info (kept in step). */
static size_t drop_superseded(struct storage *st, struct catalog_rebuild_file *rf,
                              struct duck_pq_info *info, size_t n)
{
    size_t keep = 0;

    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(rf[i].path, '/');
        const char *name = slash ? slash + 1 : rf[i].path;
        size_t dirlen = (size_t)(name - rf[i].path);
        bool superseded = false;

        for (size_t j = 0; j < n && !superseded; j++) {
            const char *list = info[j].compacted_from, *p;
            size_t nl = strlen(name);

            if (j == i || !list || strncmp(rf[j].path, rf[i].path, dirlen) != 0 ||
                strchr(rf[j].path + dirlen, '/'))
                continue;
            for (p = list; (p = strstr(p, name)) != NULL; p += nl)
                if ((p == list || p[-1] == ',') && (p[nl] == ',' || p[nl] == '\0'))
                    superseded = true;
        }
        if (superseded) {
            struct errbuf eb;
            errbuf_init(&eb);
            log_warn("rebuild: deleting a file a compaction output already holds",
                     "key=%s", rf[i].path);
            if (storage_delete(st, rf[i].path, &eb) != ERR_OK)
                log_warn("rebuild: cannot delete", "key=%s error=\"%s\"", rf[i].path, eb.msg);
            continue;
        }
        if (keep != i) {
            struct duck_pq_info t = info[keep];
            struct catalog_rebuild_file tr = rf[keep];
            info[keep] = info[i];
            rf[keep] = rf[i];
            info[i] = t; /* released by the caller either way */
            rf[i] = tr;
        }
        keep++;
    }
    return keep;
}

enum err storage_rebuild_catalog(struct storage *st, size_t *files, size_t *added,
                                 size_t *removed, struct errbuf *eb)
{
    struct keys k = {0};
    struct catalog_rebuild_file *rf = NULL;
    struct duck_pq_info *info = NULL;
    struct catalog_column **cols = NULL;
    char **dbs = NULL, **ms = NULL;
    size_t i, j, n = 0;
    enum err rc;

    rc = storage_list(st, collect, &k, eb);
    if (rc)
        goto out;
    rf = xcalloc(k.n ? k.n : 1, sizeof(*rf));
    info = xcalloc(k.n ? k.n : 1, sizeof(*info));
    cols = xcalloc(k.n ? k.n : 1, sizeof(*cols));
    dbs = xcalloc(k.n ? k.n : 1, sizeof(*dbs));
    ms = xcalloc(k.n ? k.n : 1, sizeof(*ms));
    for (i = 0; i < k.n; i++) {
        char path[4096];
        if (!parse_key(k.v[i], &dbs[n], &ms[n])) {
            log_warn("rebuild: skipping a key outside the layout", "key=%s", k.v[i]);
            continue;
        }
        rc = storage_read_path(st, k.v[i], path, sizeof(path), eb);
        if (rc == ERR_OK)
            rc = duck_inspect_parquet(st->duck, path, &info[n], eb);
        if (rc) {
            errbuf_prefix(eb, "rebuild: %s", k.v[i]);
            free(dbs[n]);
            free(ms[n]);
            dbs[n] = ms[n] = NULL;
            goto out;
        }
        cols[n] = xcalloc(info[n].ncols ? info[n].ncols : 1, sizeof(**cols));
        for (j = 0; j < info[n].ncols; j++) {
            cols[n][j].name = info[n].cols[j].name;
            cols[n][j].type = info[n].cols[j].type;
            cols[n][j].is_tag = info[n].cols[j].is_tag;
        }
        rf[n].database = dbs[n];
        rf[n].measurement = ms[n];
        rf[n].path = k.v[i];
        rf[n].min_time_us = info[n].min_time_us;
        rf[n].max_time_us = info[n].max_time_us;
        rf[n].rows = info[n].rows;
        rf[n].bytes = (int64_t)k.size[i];
        rf[n].cols = cols[n];
        rf[n].ncols = info[n].ncols;
        n++;
    }
    n = drop_superseded(st, rf, info, n);
    rc = catalog_files_rebuild(st->catalog, rf, n, added, removed, eb);
    if (rc == ERR_OK && files)
        *files = n;
out:
    for (i = 0; i < k.n; i++) {
        if (info && i < k.n)
            duck_pq_info_release(&info[i]);
        if (cols)
            free(cols[i]);
        if (dbs)
            free(dbs[i]);
        if (ms)
            free(ms[i]);
        free(k.v[i]);
    }
    free(k.v);
    free(k.size);
    free(rf);
    free(info);
    free(cols);
    free(dbs);
    free(ms);
    return rc;
}
