/* cron.h - five-field cron expressions (minute hour day-of-month month weekday):
 * `*`, numbers, `a-b` ranges, `,` lists and `/step` on any of them. Day-of-month and
 * weekday combine as in Vixie cron: when both are restricted, either may match. */
#ifndef ARC_MAINT_CRON_H
#define ARC_MAINT_CRON_H

#include <stdbool.h>
#include <time.h>

/* Does tm (broken-down UTC time) match expr? A malformed expression matches nothing. */
bool cron_matches(const char *expr, const struct tm *tm);

#endif
