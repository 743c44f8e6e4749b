# runtime_hooks_bench runs the shim's hooks in-process: it links liblockgraph (whose
# pthread interposers then sit in front of libc's) and reaches libc's own functions by dlsym.
if(TARGET lockgraph::runtime)
  target_link_libraries(${name} PRIVATE lockgraph::runtime ${CMAKE_DL_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/runtime/include)
  # The link editor checks liblockgraph's references to glibc's compatibility aliases.
  target_link_options(${name} PRIVATE -Wl,--allow-shlib-undefined)
else()
  message(STATUS "lockgraph: runtime_hooks_bench needs the runtime library; skipped")
  set_target_properties(${name} PROPERTIES EXCLUDE_FROM_ALL ON)
endif()
# The whole-program harness lives in its own folder.
add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/harness ${CMAKE_CURRENT_BINARY_DIR}/harness)
