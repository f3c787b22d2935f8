arc_unit_test(core arc_core)
