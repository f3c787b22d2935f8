# Catalog (SQLite) and auth (tokens) unit tests.
arc_unit_test(catalog arc_catalog)
arc_unit_test(auth arc_auth)
