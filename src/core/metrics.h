/* metrics.h - a process-wide Prometheus registry: counters, gauges, histograms.
 *
 * Series are created once (get-or-create by name + label string) and return a
 * stable pointer; updating a series is one atomic operation, so hot paths keep
 * the pointer and never take the registry lock. metrics_render() writes the
 * Prometheus text exposition format (version 0.0.4).
 * Thread: every function is safe from any thread. */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct metrics;
struct metric;

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Get or create a series. labels is the inside of {...} already formatted, e.g.
 * `route="/query",status="200"`, or NULL. help is used the first time a name is
 * seen. For histograms, bounds are the upper bounds (ascending, copied). */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels);
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds);

void metric_add(struct metric *c, uint64_t v);     /* counter += v */
void metric_set(struct metric *g, int64_t v);      /* gauge = v */
void metric_gauge_add(struct metric *g, int64_t v);/* gauge += v (may be negative) */
void metric_observe(struct metric *h, double v);   /* histogram sample */
uint64_t metric_value(const struct metric *c);     /* counter or gauge value (tests) */

/* Called at render time to refresh computed gauges (RSS, uptime...). */
typedef void metrics_collect_fn(struct metrics *m, void *ctx);
void metrics_on_collect(struct metrics *m, metrics_collect_fn *fn, void *ctx);

/* Append the text exposition of every series to out. */
enum err metrics_render(struct metrics *m, struct buf *out);

/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
uint64_t metrics_rss_bytes(void);

#endif
