// `lockgraph run [options] -- PROG ARGS...`: runs a program under the liblockgraph shim.
#ifndef LOCKGRAPH_ANALYZER_RUN_COMMAND_H_
#define LOCKGRAPH_ANALYZER_RUN_COMMAND_H_

namespace lockgraph::cli {

// Entry point of the `run` subcommand. argv[0] is "run"; the rest are its options, "--", the
// program and its arguments. Returns the process exit code: --exitcode N when the shim reported
// findings, else the program's own exit code (128 + signal when it was killed by a signal).
int RunCommand(int argc, char** argv);

}  // namespace lockgraph::cli

#endif  // LOCKGRAPH_ANALYZER_RUN_COMMAND_H_
