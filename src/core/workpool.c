/* workpool.c - mutex + condition-variable job queue (a ring of fixed capacity).
 * The ring is allocated once at max_queued slots, so the pool never allocates
 * per job and its memory is bounded by construction. */
#include "core/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct job {
    workpool_job_fn *fn;
    void *arg;
};

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct job *ring;      /* cap slots */
    size_t cap, head, len; /* pending jobs are ring[head .. head+len) mod cap */
    size_t running;        /* jobs taken but not finished */
    bool stopping;
    pthread_t *threads;
    size_t nthreads;
};

static void *worker_main(void *arg)
{
    struct workpool *p = arg;
    struct job j;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->len == 0 && !p->stopping)
            pthread_cond_wait(&p->nonempty, &p->lock);
        if (p->len == 0 && p->stopping) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->len--;
        p->running++;
        pthread_mutex_unlock(&p->lock);

        j.fn(j.arg);

        pthread_mutex_lock(&p->lock);
        p->running--;
        pthread_mutex_unlock(&p->lock);
    }
}

struct workpool *workpool_new(size_t nthreads, size_t max_queued, const char *name)
{
    struct workpool *p = xcalloc(1, sizeof(*p));
    size_t i;
    char tname[16];

    if (nthreads == 0)
        nthreads = 1;
    if (max_queued == 0)
        max_queued = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->nonempty, NULL);
    p->cap = max_queued;
    p->ring = xcalloc(p->cap, sizeof(*p->ring));
    p->threads = xcalloc(nthreads, sizeof(*p->threads));
    p->nthreads = nthreads;
    for (i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            fprintf(stderr, "level=fatal msg=\"pthread_create failed\"\n");
            abort();
        }
        snprintf(tname, sizeof(tname), "%.10s-%u", name ? name : "pool", (unsigned)(i % 1000));
        pthread_setname_np(p->threads[i], tname);
    }
    return p;
}

enum err workpool_submit(struct workpool *p, workpool_job_fn *fn, void *arg)
{
    enum err rc = ERR_OK;

    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->len == p->cap) {
        rc = ERR_BUSY;
    } else {
        p->ring[(p->head + p->len) % p->cap] = (struct job){fn, arg};
        p->len++;
        pthread_cond_signal(&p->nonempty);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

size_t workpool_pending(struct workpool *p)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->len + p->running;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void workpool_free(struct workpool *p)
{
    size_t i;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->nonempty);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->nonempty);
    pthread_mutex_destroy(&p->lock);
    free(p->ring);
    free(p->threads);
    free(p);
}
