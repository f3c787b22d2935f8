# Query result encoders (src/query/encode*.c). The query module's own
# CMakeLists.txt is written by another engineer; until it lists these sources,
# this file builds them into a private library for the unit test and benchmark.
pkg_check_modules(DCONV REQUIRED IMPORTED_TARGET double-conversion)
if(NOT TARGET arc_query_encode)
  add_library(arc_query_encode STATIC
    ${CMAKE_SOURCE_DIR}/src/query/encode.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_json.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_csv.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_arrow.c
    ${CMAKE_SOURCE_DIR}/src/query/encode_msgpack.c
    ${CMAKE_SOURCE_DIR}/src/query/dtoa_shim.cc)
  target_include_directories(arc_query_encode PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(arc_query_encode PUBLIC arc_duck arc_core PRIVATE PkgConfig::DCONV m)
endif()
arc_unit_test(encode arc_query_encode arc_duck)

if(ARC_BENCH AND EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_encode.c)
  add_executable(bench_encode ${CMAKE_SOURCE_DIR}/bench/bench_encode.c)
  target_link_libraries(bench_encode PRIVATE arc_query_encode arc_duck)
endif()
if(TARGET test_encode)
  # the project's venv (pyarrow, msgpack) reads Arrow and MessagePack answers back
  target_compile_definitions(test_encode PRIVATE ARC_PYTHON="${CMAKE_SOURCE_DIR}/.venv/bin/python")
endif()
