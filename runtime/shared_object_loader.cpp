// Loads shared objects from memory through memfd_create and /proc/self/fd.
#include "shared_object_loader.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace convjit {

StatusOr<LoadedObject> load_shared_object(const std::string& bytes, const std::string& name, bool global_symbols) {
  const int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return Status::internal("memfd_create for " + name + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Status::internal("writing " + name + " to memory: " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* handle = dlopen(path.c_str(), RTLD_NOW | (global_symbols ? RTLD_GLOBAL : RTLD_LOCAL));
  if (!handle) {
    ::close(fd);
    return Status::internal("cannot load " + name + ": " + dlerror());
  }
  return LoadedObject{handle, fd};
}

void unload_shared_object(const LoadedObject& object) {
  if (object.handle) dlclose(object.handle);
  if (object.memory_file >= 0) ::close(object.memory_file);
}

StatusOr<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

Status write_whole_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return Status::invalid_argument("cannot write '" + path + "': " + std::strerror(errno));
  return Status();
}

}  // namespace convjit
