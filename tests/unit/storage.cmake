arc_unit_test(s3 arc_storage)
arc_unit_test(hot arc_storage)
