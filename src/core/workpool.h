/* workpool.h - a fixed pool of threads running submitted jobs in FIFO order.
 *
 * Used for everything that may block (disk, SQLite, DuckDB) so event loops never
 * do. The queue is bounded: workpool_submit() fails with ERR_BUSY when it is full,
 * which callers turn into 503 + Retry-After instead of queueing without limit.
 * Thread: submit from any thread; shutdown from one. */
#ifndef CORE_WORKPOOL_H
#define CORE_WORKPOOL_H

#include <stddef.h>

#include "core/err.h"

struct workpool;

typedef void workpool_job_fn(void *arg);

/* Start nthreads threads with a queue of at most max_queued pending jobs. */
struct workpool *workpool_new(size_t nthreads, size_t max_queued, const char *name);
/* Queue fn(arg). Ownership of arg passes to the job. ERR_BUSY if the queue is
 * full or the pool is shutting down (fn is then not called). */
enum err workpool_submit(struct workpool *p, workpool_job_fn *fn, void *arg);
/* Jobs queued or running. */
size_t workpool_pending(struct workpool *p);
/* Finish every queued job, then join the threads and free p. Accepts NULL. */
void workpool_free(struct workpool *p);

#endif
