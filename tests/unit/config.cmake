# TOML parser (core) and the config module.
arc_unit_test(toml arc_core)
arc_unit_test(config arc_config)
