// AtomicFile: a temporary file next to the destination, renamed onto it on commit().
#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace convjit {
namespace {

std::string errno_text() { return std::strerror(errno); }

// The extension of the last path component ("out.s" -> ".s"), kept on the temporary
// name because some writers choose what to write from it.
std::string extension_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  if (dot == (slash == std::string::npos ? 0 : slash + 1)) return "";  // ".hidden"
  return path.substr(dot);
}

}  // namespace

StatusOr<AtomicFile> AtomicFile::create(const std::string& path) {
  if (path.empty()) return Status::invalid_argument("output path is empty");
  if (path.back() == '/') {
    return Status::invalid_argument("output path '" + path + "' names a directory, not a file");
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status::invalid_argument("output path '" + path + "' is a directory");
  }
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string suffix = extension_of(path);
  // A hidden name so that a crash between create and commit leaves nothing that looks
  // like the destination.
  std::string templ = dir + "." + base + ".tmp-XXXXXX" + suffix;
  std::vector<char> buffer(templ.begin(), templ.end());
  buffer.push_back('\0');
  int fd = mkstemps(buffer.data(), static_cast<int>(suffix.size()));
  if (fd < 0) {
    return Status::invalid_argument("cannot create output file '" + path + "' (temporary file in '" +
                                    (dir.empty() ? std::string(".") : dir) + "'): " + errno_text());
  }
  AtomicFile file;
  file.path_ = path;
  file.temp_path_ = buffer.data();
  file.fd_ = fd;
  return file;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      committed_(std::exchange(other.committed_, true)) {
  other.temp_path_.clear();
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    fd_ = std::exchange(other.fd_, -1);
    committed_ = std::exchange(other.committed_, true);
    other.temp_path_.clear();
  }
  return *this;
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (!committed_ && !temp_path_.empty()) unlink(temp_path_.c_str());
  temp_path_.clear();
}

Status AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0) return Status::internal("write to '" + path_ + "' after commit or move");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::invalid_argument("cannot write '" + path_ + "': " + errno_text());
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok_status();
}

Status AtomicFile::commit() {
  if (committed_ || temp_path_.empty()) {
    return Status::internal("commit of '" + path_ + "' twice or after move");
  }
  // mkstemps makes the file 0600; a plain new output file gets 0666 minus the umask.
  mode_t mask = umask(0);
  umask(mask);
  Status status;
  if (fchmod(fd_, 0666 & ~mask) != 0) {
    status = Status::invalid_argument("cannot set permissions of '" + path_ + "': " + errno_text());
  } else if (close(std::exchange(fd_, -1)) != 0) {
    // close() reports delayed write errors (NFS, full disk).
    status = Status::invalid_argument("cannot write '" + path_ + "': " + errno_text());
  } else if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    status = Status::invalid_argument("cannot rename '" + temp_path_ + "' to '" + path_ +
                                      "': " + errno_text());
  }
  if (!status.ok()) {
    discard();
    return status;
  }
  committed_ = true;
  temp_path_.clear();
  return status;
}

}  // namespace convjit
