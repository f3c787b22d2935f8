# Column batches (core) and the ingest decoders.
arc_unit_test(batch arc_core)
arc_unit_test(lp arc_ingest)
arc_unit_test(msgpack arc_ingest)
arc_unit_test(jsoningest arc_ingest)
