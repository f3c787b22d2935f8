# Query result encoders (src/query/encode*.c, dtoa.c) in a small library of their own,
# so the unit test and benchmark link neither the engine nor the catalog.
# libdouble-conversion (C++) is only the test's reference for src/query/dtoa.c.
pkg_check_modules(DCONV REQUIRED IMPORTED_TARGET double-conversion)
if(NOT TARGET arc_query_encode)
  add_library(arc_query_encode STATIC
    ${CMAKE_SOURCE_DIR}/src/query/encode.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_json.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_csv.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_arrow.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_msgpack.c
    ${CMAKE_SOURCE_DIR}/src/query/dtoa.c)
  target_include_directories(arc_query_encode PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(arc_query_encode PUBLIC arc_duck arc_core PRIVATE m)
endif()
arc_unit_test(encode arc_query_encode arc_duck)
# dtoa.c against libdouble-conversion (dtoa_ref.cc) and strtod, millions of values
arc_unit_test(dtoa arc_query_encode)
if(TARGET test_dtoa)
  target_sources(test_dtoa PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/dtoa_ref.cc)
  target_link_libraries(test_dtoa PRIVATE PkgConfig::DCONV m)
  set_tests_properties(dtoa PROPERTIES TIMEOUT 300)
endif()

if(ARC_BENCH AND EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_encode.c)
  add_executable(bench_encode ${CMAKE_SOURCE_DIR}/bench/bench_encode.c)
  target_link_libraries(bench_encode PRIVATE arc_query_encode arc_duck)
endif()
if(TARGET test_encode)
  # the project's venv (pyarrow, msgpack) reads Arrow and MessagePack answers back
  target_compile_definitions(test_encode PRIVATE ARC_PYTHON="${CMAKE_SOURCE_DIR}/.venv/bin/python")
endif()
