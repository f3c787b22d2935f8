arc_unit_test(s3 arc_storage)
