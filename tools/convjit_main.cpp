// The entry point of the `convjit` command-line tool.
#include <string>
#include <vector>

#include "command_line.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return convjit::run_command_line(args);
}
