# libFuzzer targets for the log readers, built with clang-14 (the main build uses g++, so they
# are plain custom commands) and run for a bounded time as ctest tests.
find_program(LOCKGRAPH_CLANGXX_14 NAMES clang++-14)
if(NOT LOCKGRAPH_CLANGXX_14)
  message(STATUS "lockgraph: clang++-14 not found, log-reader fuzzers not built")
  return()
endif()
find_package(ZLIB REQUIRED)
set(LOCKGRAPH_FUZZ_DIR ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
# The replay fuzzer also compiles the engine and the analyzer's reader and replayer.
file(GLOB LOCKGRAPH_FUZZ_ENGINE_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/graph/src/*.cpp)
set(LOCKGRAPH_FUZZ_REPLAY_SOURCES ${LOCKGRAPH_FUZZ_ENGINE_SOURCES}
  ${CMAKE_CURRENT_SOURCE_DIR}/src/log_reader.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/replay.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/block_decode.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/progress.cpp)
get_target_property(LOCKGRAPH_FUZZ_BOOST_INC Boost::boost INTERFACE_INCLUDE_DIRECTORIES)
set(LOCKGRAPH_FUZZERS)
foreach(fuzzer fuzz_binary_log fuzz_text_log fuzz_suppressions fuzz_baseline fuzz_replay)
  set(out ${LOCKGRAPH_FUZZ_DIR}/${fuzzer})
  set(extra_sources)
  set(extra_flags)
  if(fuzzer STREQUAL "fuzz_binary_log")
    set(extra_sources ${CMAKE_CURRENT_SOURCE_DIR}/src/block_decode.cpp)
    set(extra_flags -I${CMAKE_CURRENT_SOURCE_DIR}/src -I${PROJECT_SOURCE_DIR}/graph/include)
  endif()
  if(fuzzer STREQUAL "fuzz_suppressions" OR fuzzer STREQUAL "fuzz_baseline")
    set(extra_sources ${CMAKE_CURRENT_SOURCE_DIR}/src/suppressions.cpp
      ${CMAKE_CURRENT_SOURCE_DIR}/src/log_reader.cpp ${CMAKE_CURRENT_SOURCE_DIR}/src/progress.cpp
      ${PROJECT_SOURCE_DIR}/graph/src/finding.cpp)
    set(extra_flags -I${CMAKE_CURRENT_SOURCE_DIR}/src)
  endif()
  if(fuzzer STREQUAL "fuzz_replay")
    set(extra_sources ${LOCKGRAPH_FUZZ_REPLAY_SOURCES})
    set(extra_flags -I${CMAKE_CURRENT_SOURCE_DIR}/src)
    foreach(dir ${LOCKGRAPH_FUZZ_BOOST_INC})
      if(NOT dir STREQUAL "/usr/include")  # -isystem /usr/include breaks #include_next
        list(APPEND extra_flags -isystem ${dir})
      endif()
    endforeach()
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${LOCKGRAPH_FUZZ_DIR}
    COMMAND ${LOCKGRAPH_CLANGXX_14} -std=c++20 -g -O1 -fno-omit-frame-pointer
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${PROJECT_SOURCE_DIR}/runtime/include -I${PROJECT_SOURCE_DIR}/graph/include
            ${extra_flags}
            ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${fuzzer}.cpp
            ${PROJECT_SOURCE_DIR}/runtime/src/log_format.cpp ${extra_sources}
            -lz -lpthread -o ${out}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${fuzzer}.cpp
            ${PROJECT_SOURCE_DIR}/runtime/src/log_format.cpp
            ${PROJECT_SOURCE_DIR}/runtime/include/lockgraph/log_format.h ${extra_sources}
    COMMENT "Building libFuzzer target ${fuzzer} with clang-14"
    VERBATIM)
  if(fuzzer STREQUAL "fuzz_replay")
    # Compiles the whole engine with sanitizers: built on request only, run by hand.
    add_custom_target(lockgraph_fuzz_replay DEPENDS ${out})
  else()
    list(APPEND LOCKGRAPH_FUZZERS ${out})
  endif()
endforeach()
if(LOCKGRAPH_BUILD_TESTS)
  add_custom_target(lockgraph_fuzzers ALL DEPENDS ${LOCKGRAPH_FUZZERS})
else()
  add_custom_target(lockgraph_fuzzers DEPENDS ${LOCKGRAPH_FUZZERS})
endif()
