# Write-ahead log (src/wal). bench_wal: appends/s per sync mode, record size and
# thread count (cmake -DARC_BENCH=ON; run build/.../tests/unit/bench_wal [dir]).
arc_unit_test(wal arc_wal)
if(ARC_BENCH AND TARGET arc_wal)
  add_executable(bench_wal ${CMAKE_CURRENT_SOURCE_DIR}/bench_wal.c)
  target_link_libraries(bench_wal PRIVATE arc_wal)
endif()
