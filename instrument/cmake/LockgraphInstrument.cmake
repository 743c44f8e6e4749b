# lockgraph_instrument(<target> [STATIC] [CONFIG <file>...] [OPTIONS <tool options>...])
#
# Builds <target> from instrumented copies of its C and C++ sources: at build time each source is
# run through lockgraph-instrument (with the target's include directories, definitions and language
# standard) into ${CMAKE_CURRENT_BINARY_DIR}/lockgraph-instrumented/<target>/, and the target
# compiles those copies instead and links lockgraph::runtime (with STATIC: lockgraph::runtime_static,
# liblockgraph.a without the pthread interposers, for a program linked with -static). The original
# files are never written.
#
#   add_executable(server server.c lru.c)
#   lockgraph_instrument(server CONFIG ${CMAKE_CURRENT_SOURCE_DIR}/kernel.conf)
#
# The project's own headers (under PROJECT_SOURCE_DIR) are rewritten too, into copies beside each
# source's copy. The copy is remade when its source, a header it reads, the config or the tool
# changes.
function(lockgraph_instrument target)
  cmake_parse_arguments(ARG "STATIC" "" "CONFIG;OPTIONS" ${ARGN})
  if(NOT TARGET ${target})
    message(FATAL_ERROR "lockgraph_instrument: '${target}' is not a target")
  endif()
  if(TARGET lockgraph-instrument)
    set(tool $<TARGET_FILE:lockgraph-instrument>)
    set(tool_dep lockgraph-instrument)
  elseif(TARGET lockgraph::instrument)  # from an installed lockgraph's package
    set(tool $<TARGET_FILE:lockgraph::instrument>)
    set(tool_dep lockgraph::instrument)
  else()
    find_program(LOCKGRAPH_INSTRUMENT_EXECUTABLE lockgraph-instrument)
    if(NOT LOCKGRAPH_INSTRUMENT_EXECUTABLE)
      message(FATAL_ERROR "lockgraph_instrument: lockgraph-instrument not found (build lockgraph "
                          "with Clang 14, or set LOCKGRAPH_INSTRUMENT_EXECUTABLE)")
    endif()
    set(tool ${LOCKGRAPH_INSTRUMENT_EXECUTABLE})
    set(tool_dep ${LOCKGRAPH_INSTRUMENT_EXECUTABLE})
  endif()
  set(runtime lockgraph::runtime)
  if(ARG_STATIC)
    set(runtime lockgraph::runtime_static)
  endif()
  if(NOT TARGET ${runtime})
    message(FATAL_ERROR "lockgraph_instrument: target ${runtime} not found; instrumented "
                        "code calls the lockgraph runtime")
  endif()

  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/lockgraph-instrumented/${target})
  set(config_args)
  set(config_dep)
  foreach(file IN LISTS ARG_CONFIG)
    get_filename_component(config ${file} ABSOLUTE)
    list(APPEND config_args --config ${config})
    list(APPEND config_dep ${config})
  endforeach()

  # The flags the target's own compile would use, as far as they matter to parsing.
  set(includes "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  set(defines "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
  set(flags
    "$<$<BOOL:${includes}>:-I$<JOIN:${includes},$<SEMICOLON>-I>>"
    "$<$<BOOL:${defines}>:-D$<JOIN:${defines},$<SEMICOLON>-D>>")
  get_target_property(cxx_standard ${target} CXX_STANDARD)
  if(NOT cxx_standard AND CMAKE_CXX_STANDARD)
    set(cxx_standard ${CMAKE_CXX_STANDARD})
  endif()
  get_target_property(c_standard ${target} C_STANDARD)
  if(NOT c_standard AND CMAKE_C_STANDARD)
    set(c_standard ${CMAKE_C_STANDARD})
  endif()

  set(new_sources)
  foreach(src IN LISTS sources)
    get_filename_component(ext ${src} LAST_EXT)
    if(NOT ext MATCHES "^\\.(c|cc|cpp|cxx|C)$")
      list(APPEND new_sources ${src})
      continue()
    endif()
    get_filename_component(abs ${src} ABSOLUTE BASE_DIR ${source_dir})
    file(RELATIVE_PATH rel ${source_dir} ${abs})
    if(rel MATCHES "^\\.\\./")
      string(REGEX REPLACE "^/" "" rel ${abs})
    endif()
    set(out ${out_dir}/${rel})
    set(lang_flags)
    if(ext STREQUAL ".c")
      if(c_standard)
        set(lang_flags -std=gnu${c_standard})
      endif()
    elseif(cxx_standard)
      set(lang_flags -std=c++${cxx_standard})
    endif()
    # Headers of the project (under PROJECT_SOURCE_DIR) are rewritten too, into copies beside
    # the source's; the depfile names every header read, so a header change remakes the copy.
    add_custom_command(OUTPUT ${out}
      COMMAND ${tool} -o ${out_dir} --root ${source_dir} --headers-under ${PROJECT_SOURCE_DIR}
              --depfile ${out}.d ${config_args} ${ARG_OPTIONS} ${abs} -- ${lang_flags} ${flags}
      DEPENDS ${abs} ${tool_dep} ${config_dep}
      DEPFILE ${out}.d
      COMMENT "lockgraph-instrument ${rel}"
      COMMAND_EXPAND_LISTS VERBATIM)
    list(APPEND new_sources ${out})
  endforeach()
  set_property(TARGET ${target} PROPERTY SOURCES ${new_sources})
  target_link_libraries(${target} PRIVATE ${runtime})
endfunction()
