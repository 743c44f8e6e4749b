# engine_bench also times the class graph's order maintenance alone (graph/src/dep_graph.h, an
# internal header over Boost.Graph).
target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/graph/src)
target_link_libraries(${name} PRIVATE Boost::boost)
