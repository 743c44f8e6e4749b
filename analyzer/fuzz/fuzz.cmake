# libFuzzer targets for the log readers, built with clang-14 (the main build uses g++, so they
# are plain custom commands) and run for a bounded time as ctest tests.
find_program(LOCKGRAPH_CLANGXX_14 NAMES clang++-14)
if(NOT LOCKGRAPH_CLANGXX_14)
  message(STATUS "lockgraph: clang++-14 not found, log-reader fuzzers not built")
  return()
endif()
find_package(ZLIB REQUIRED)
set(LOCKGRAPH_FUZZ_DIR ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
set(LOCKGRAPH_FUZZERS)
foreach(fuzzer fuzz_binary_log fuzz_text_log)
  set(out ${LOCKGRAPH_FUZZ_DIR}/${fuzzer})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${LOCKGRAPH_FUZZ_DIR}
    COMMAND ${LOCKGRAPH_CLANGXX_14} -std=c++20 -g -O1 -fno-omit-frame-pointer
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${PROJECT_SOURCE_DIR}/runtime/include -I${PROJECT_SOURCE_DIR}/graph/include
            ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${fuzzer}.cpp
            ${PROJECT_SOURCE_DIR}/runtime/src/log_format.cpp
            -lz -o ${out}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${fuzzer}.cpp
            ${PROJECT_SOURCE_DIR}/runtime/src/log_format.cpp
            ${PROJECT_SOURCE_DIR}/runtime/include/lockgraph/log_format.h
    COMMENT "Building libFuzzer target ${fuzzer} with clang-14"
    VERBATIM)
  list(APPEND LOCKGRAPH_FUZZERS ${out})
endforeach()
if(LOCKGRAPH_BUILD_TESTS)
  add_custom_target(lockgraph_fuzzers ALL DEPENDS ${LOCKGRAPH_FUZZERS})
else()
  add_custom_target(lockgraph_fuzzers DEPENDS ${LOCKGRAPH_FUZZERS})
endif()
