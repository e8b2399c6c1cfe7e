// Loading shared objects from bytes in memory, and reading files whole.
#pragma once

#include <string>

#include "convjit/status.h"

namespace convjit {

// A shared object loaded from memory, and the memory file that backs it. The file
// stays open while the object is loaded: dlopen recognizes objects by path, and
// /proc/self/fd/N must not name two loaded objects at once.
struct LoadedObject {
  void* handle = nullptr;
  int memory_file = -1;
};

// Loads a shared object held in `bytes` through an anonymous memory file (memfd):
// cached kernels are loaded without a writable file of their own that another
// process could change between the check and the load. `global_symbols` exports
// its symbols to objects loaded later (the Halide runtime needs it).
StatusOr<LoadedObject> load_shared_object(const std::string& bytes, const std::string& name, bool global_symbols);

// dlclose, then close the memory file (either may be absent).
void unload_shared_object(const LoadedObject& object);

StatusOr<std::string> read_whole_file(const std::string& path);
// Writes `bytes` to `path`, replacing it; the error names the path and the reason.
Status write_whole_file(const std::string& path, const std::string& bytes);

}  // namespace convjit
