// The convjit commands. Each takes the arguments after its name and returns the process
// exit code, having printed its result to stdout or one error line to stderr.
#pragma once

#include <string>
#include <vector>

namespace convjit {

// convjit run [problem options] DESCRIPTOR --src X.npy --wei W.npy [--bia B.npy] --dst Y.npy
int run_command(const std::vector<std::string>& args);
// convjit info [problem options] DESCRIPTOR | --batch FILE [--schedules [--target T]]
int info_command(const std::vector<std::string>& args);
// convjit compile [problem options] DESCRIPTOR --emit FORMAT -o FILE [--target T]
int compile_command(const std::vector<std::string>& args);
// convjit cache stats|list|verify|clear [--cache-dir DIR] [--json] [--remove-bad]
int cache_command(const std::vector<std::string>& args);
// convjit tune DESCRIPTOR | --batch FILE --budget SECONDS [--db PATH] | --export F | --import F
int tune_command(const std::vector<std::string>& args);
// convjit aot --batch FILE --target T1[,T2] --name NAME -o DIR | --inspect LIB
int aot_command(const std::vector<std::string>& args);
// convjit bench DESCRIPTOR | --batch FILE [--threads 1,2] [--repeat N] [--json] [--no-onednn]
int bench_command(const std::vector<std::string>& args);

}  // namespace convjit
