# Maintenance (src/maint): the cron matcher of the compaction schedule.
arc_unit_test(maint arc_maint)
