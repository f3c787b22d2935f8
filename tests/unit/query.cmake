arc_unit_test(query arc_query arc_duck)
