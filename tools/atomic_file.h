// AtomicFile: an output file that appears under its final name complete or not at all.
//
// create() makes a temporary file next to the destination (same directory, hence same
// file system, so rename() is atomic); write() appends to it, or someone else (Halide's
// emitters) fills temp_path(); commit() renames it onto the destination. Until commit()
// succeeds the destination is untouched; an AtomicFile destroyed without a successful
// commit() removes its temporary file. Not thread safe; one owner.
#pragma once

#include <cstddef>
#include <string>

#include "convjit/status.h"

namespace convjit {

class AtomicFile {
 public:
  // Creates the temporary file; fails (naming `path`) when its directory does not
  // exist or is not writable, before any expensive work has been done.
  static StatusOr<AtomicFile> create(const std::string& path);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

  // Appends bytes to the temporary file.
  Status write(const void* data, size_t size);
  // Flushes, gives the file the permissions a plain new file would get, and renames it
  // onto path(). After a failure the temporary file is removed and path() untouched.
  Status commit();

 private:
  AtomicFile() = default;
  void discard();

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace convjit
