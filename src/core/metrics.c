/* metrics.c - Prometheus registry. Series live in a list under one mutex that is
 * taken only to create a series or to render; values are atomics, so increments
 * from event-loop threads never contend on the lock. Histograms keep one atomic
 * count per bucket and the sum as fixed-point microunits (atomic, lock-free). */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"

#define METRICS_MAX_COLLECTORS 16

struct metric {
    struct metric *next;
    char *name, *help, *labels;   /* labels may be NULL */
    enum metric_kind kind;
    _Atomic int64_t value;         /* counter / gauge */
    double *bounds;                /* histogram upper bounds */
    size_t nbounds;
    _Atomic uint64_t *buckets;     /* nbounds + 1 (last = +Inf) non-cumulative counts */
    _Atomic int64_t sum_micro;     /* histogram sum * 1e6 */
    _Atomic uint64_t count;
};

struct metrics {
    pthread_mutex_t lock;
    struct metric *head, *tail;    /* creation order; render groups by name */
    struct {
        metrics_collect_fn *fn;
        void *ctx;
    } collectors[METRICS_MAX_COLLECTORS];
    size_t ncollectors;
};

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(struct metrics *m)
{
    struct metric *s, *n;

    if (!m)
        return;
    for (s = m->head; s; s = n) {
        n = s->next;
        free(s->name);
        free(s->help);
        free(s->labels);
        free(s->bounds);
        free((void *)s->buckets);
        free(s);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int labels_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static struct metric *get_or_create(struct metrics *m, enum metric_kind kind, const char *name,
                                    const char *help, const char *labels, const double *bounds,
                                    size_t nbounds)
{
    struct metric *s;

    pthread_mutex_lock(&m->lock);
    for (s = m->head; s; s = s->next)
        if (s->kind == kind && strcmp(s->name, name) == 0 && labels_eq(s->labels, labels))
            goto out;
    s = xcalloc(1, sizeof(*s));
    s->name = xstrdup(name);
    s->help = xstrdup(help ? help : "");
    s->labels = labels ? xstrdup(labels) : NULL;
    s->kind = kind;
    if (kind == METRIC_HISTOGRAM) {
        s->nbounds = nbounds;
        s->bounds = xmalloc(sizeof(double) * (nbounds ? nbounds : 1));
        memcpy(s->bounds, bounds, sizeof(double) * nbounds);
        s->buckets = xcalloc(nbounds + 1, sizeof(*s->buckets));
    }
    /* keep series of one name adjacent so HELP/TYPE print once */
    {
        struct metric *p, *last_same = NULL;
        for (p = m->head; p; p = p->next)
            if (strcmp(p->name, name) == 0)
                last_same = p;
        if (last_same) {
            s->next = last_same->next;
            last_same->next = s;
            if (m->tail == last_same)
                m->tail = s;
        } else if (m->tail) {
            m->tail->next = s;
            m->tail = s;
        } else {
            m->head = m->tail = s;
        }
    }
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels)
{
    return get_or_create(m, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return get_or_create(m, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds)
{
    return get_or_create(m, METRIC_HISTOGRAM, name, help, labels, bounds, nbounds);
}

void metric_add(struct metric *c, uint64_t v)
{
    atomic_fetch_add_explicit(&c->value, (int64_t)v, memory_order_relaxed);
}

void metric_set(struct metric *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void metric_gauge_add(struct metric *g, int64_t v)
{
    atomic_fetch_add_explicit(&g->value, v, memory_order_relaxed);
}

void metric_observe(struct metric *h, double v)
{
    size_t i = 0;

    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micro, (int64_t)(v * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t metric_value(const struct metric *c)
{
    return (uint64_t)atomic_load_explicit(&((struct metric *)c)->value, memory_order_relaxed);
}

void metrics_on_collect(struct metrics *m, metrics_collect_fn *fn, void *ctx)
{
    pthread_mutex_lock(&m->lock);
    if (m->ncollectors < METRICS_MAX_COLLECTORS) {
        m->collectors[m->ncollectors].fn = fn;
        m->collectors[m->ncollectors].ctx = ctx;
        m->ncollectors++;
    }
    pthread_mutex_unlock(&m->lock);
}

static const char *kind_name(enum metric_kind k)
{
    return k == METRIC_COUNTER ? "counter" : k == METRIC_GAUGE ? "gauge" : "histogram";
}

static void render_histogram(struct buf *out, struct metric *s)
{
    uint64_t cum = 0;
    size_t i;
    const char *sep = s->labels ? "," : "";
    const char *lab = s->labels ? s->labels : "";

    for (i = 0; i <= s->nbounds; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < s->nbounds)
            buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, lab, sep, s->bounds[i],
                       (unsigned long long)cum);
        else
            buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, lab, sep,
                       (unsigned long long)cum);
    }
    buf_printf(out, "%s_sum%s%s%s %.6f\n", s->name, s->labels ? "{" : "", lab,
               s->labels ? "}" : "",
               (double)atomic_load_explicit(&s->sum_micro, memory_order_relaxed) / 1e6);
    buf_printf(out, "%s_count%s%s%s %llu\n", s->name, s->labels ? "{" : "", lab,
               s->labels ? "}" : "",
               (unsigned long long)atomic_load_explicit(&s->count, memory_order_relaxed));
}

enum err metrics_render(struct metrics *m, struct buf *out)
{
    struct metric *s;
    const char *last = NULL;
    size_t i, n;
    struct {
        metrics_collect_fn *fn;
        void *ctx;
    } cols[METRICS_MAX_COLLECTORS];

    pthread_mutex_lock(&m->lock);
    n = m->ncollectors;
    for (i = 0; i < n; i++) {
        cols[i].fn = m->collectors[i].fn;
        cols[i].ctx = m->collectors[i].ctx;
    }
    pthread_mutex_unlock(&m->lock);
    for (i = 0; i < n; i++)
        cols[i].fn(m, cols[i].ctx);

    pthread_mutex_lock(&m->lock);
    for (s = m->head; s; s = s->next) {
        if (!last || strcmp(last, s->name) != 0) {
            buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name,
                       kind_name(s->kind));
            last = s->name;
        }
        if (s->kind == METRIC_HISTOGRAM) {
            render_histogram(out, s);
            continue;
        }
        buf_printf(out, "%s%s%s%s %lld\n", s->name, s->labels ? "{" : "",
                   s->labels ? s->labels : "", s->labels ? "}" : "",
                   (long long)atomic_load_explicit(&s->value, memory_order_relaxed));
    }
    pthread_mutex_unlock(&m->lock);
    return ERR_OK;
}

uint64_t metrics_rss_bytes(void)
{
    unsigned long long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}
