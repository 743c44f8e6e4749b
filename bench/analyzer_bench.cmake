# analyzer_bench: the log codec and the whole `lockgraph analyze` pipeline (load + replay).
if(TARGET lockgraph::analyzer)
  target_link_libraries(analyzer_bench PRIVATE lockgraph::analyzer)
else()
  message(STATUS "lockgraph: analyzer_bench needs the analyzer library; skipped")
  set_target_properties(analyzer_bench PROPERTIES EXCLUDE_FROM_ALL ON)
endif()
