arc_unit_test(duck arc_duck)
