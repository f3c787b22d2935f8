/* bench_wal.c - appends/s of the WAL per sync mode, record size and thread count.
 *
 * Each cell runs for a fixed time (default 1 s, argv[2] ms) on a fresh WAL
 * directory under argv[1] (default /tmp) and prints appends/s, MB/s and appends
 * per sync (the group-commit factor). Build with -DARC_BENCH=ON; run
 * build/<dir>/tests/unit/bench_wal [parent_dir] [ms]. Use a release build for
 * numbers worth quoting. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "wal/wal.h"

struct run {
    struct wal *w;
    size_t rec_bytes;
    int64_t deadline_ns;
    _Atomic uint64_t appends;
    _Atomic int failed;
};

static void *worker(void *arg)
{
    struct run *r = arg;
    char *body = xmalloc(r->rec_bytes);
    memset(body, 'v', r->rec_bytes);
    struct wal_record rec = {.kind = 2, .db = "bench", .db_len = 5, .body = body,
                             .body_len = r->rec_bytes};
    while (clock_mono_ns() < r->deadline_ns) {
        struct errbuf eb;
        uint64_t lsn;
        errbuf_init(&eb);
        if (wal_append(r->w, &rec, &lsn, &eb) != ERR_OK) {
            fprintf(stderr, "append: %s\n", eb.msg);
            r->failed = 1;
            break;
        }
        r->appends++;
    }
    free(body);
    return NULL;
}

static int rm_rf(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int main(int argc, char **argv)
{
    const char *parent = argc > 1 ? argv[1] : "/tmp";
    long ms = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    const enum wal_sync modes[] = {WAL_SYNC_ASYNC, WAL_SYNC_FDATASYNC, WAL_SYNC_FDATASYNC,
                                   WAL_SYNC_FSYNC, WAL_SYNC_FSYNC};
    const bool prealloc[] = {false, false, true, false, true};
    const char *mode_names[] = {"async", "fdatasync", "fdatasync", "fsync", "fsync"};
    const size_t sizes[] = {1024, 64 * 1024};
    const int threads[] = {1, 4, 8};

    log_set_level(LOG_WARN);
    printf("%-10s %8s %7s %7s %12s %9s %12s\n", "mode", "prealloc", "record", "threads",
           "appends/s", "MB/s", "appends/sync");
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
        for (size_t s = 0; s < 2; s++)
            for (size_t t = 0; t < 3; t++) {
                char dir[512];
                struct wal_opts o = {.dir = dir, .sync = modes[m], .preallocate = prealloc[m]};
                struct run r = {.rec_bytes = sizes[s]};
                pthread_t th[8];
                struct wal_stats st;
                struct errbuf eb;
                int64_t t0;
                double secs;

                snprintf(dir, sizeof(dir), "%s/arc-bench-wal-%d", parent, (int)getpid());
                rm_rf(dir);
                errbuf_init(&eb);
                if (wal_open(&o, &r.w, &eb) != ERR_OK) {
                    fprintf(stderr, "wal_open: %s\n", eb.msg);
                    return 1;
                }
                t0 = clock_mono_ns();
                r.deadline_ns = t0 + (int64_t)ms * 1000000;
                for (int i = 0; i < threads[t]; i++)
                    pthread_create(&th[i], NULL, worker, &r);
                for (int i = 0; i < threads[t]; i++)
                    pthread_join(th[i], NULL);
                secs = (double)(clock_mono_ns() - t0) / 1e9;
                wal_get_stats(r.w, &st);
                wal_close(r.w);
                rm_rf(dir);
                if (r.failed)
                    return 1;
                printf("%-10s %8s %6zuK %7d %12.0f %9.1f %12.1f\n", mode_names[m],
                       prealloc[m] ? "on" : "off", sizes[s] / 1024, threads[t],
                       (double)r.appends / secs,
                       (double)r.appends * (double)sizes[s] / secs / 1e6,
                       st.syncs ? (double)st.appends / (double)st.syncs : 0.0);
                fflush(stdout);
            }
    return 0;
}
