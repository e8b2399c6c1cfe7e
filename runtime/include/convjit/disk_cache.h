// The persistent on-disk kernel cache: compiled kernels (native shared objects)
// stored content-addressed under one directory, shared by every process of a user.
//
// Where: $CONVJIT_CACHE_DIR, else $XDG_CACHE_HOME/convjit, else ~/.cache/convjit.
// CONVJIT_CACHE=off disables it; CONVJIT_CACHE_MAX_BYTES bounds it (default 1 GiB).
//
// Contract:
// - Entries are immutable files named <16 hex digits>.kernel (a hash of the full key),
//   installed by writing a private temporary file and renaming it over the name, so
//   readers never see a torn entry and concurrent writers of one key leave one
//   valid entry.
// - Every read checks the entry's header (magic, format version, the full key, which
//   names the target, Halide and convjit's code generation) and a checksum of its
//   contents; an entry that fails is removed and reported as absent.
// - The cache holds code that is loaded and run, so the directory is created with
//   mode 0700, and a directory or entry owned by another user, or writable by group
//   or others, is refused with a warning and never loaded. Ownership and mode are
//   checked with fstat on the opened file, not with access().
// - A directory that cannot be used (unwritable, a file, refused) turns the cache
//   off for the process with one warning on stderr; the runtime then works from
//   memory only.
// - Size is bounded: after an install the least recently used entries are removed
//   until the total fits. Removing an entry another process is reading is safe
//   (the reader holds it open).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convjit/status.h"

namespace convjit {

struct DiskCacheConfig {
  bool enabled = true;
  std::string directory;
  int64_t max_bytes = int64_t{1} << 30;

  // Reads CONVJIT_CACHE, CONVJIT_CACHE_DIR, XDG_CACHE_HOME, HOME and
  // CONVJIT_CACHE_MAX_BYTES as documented above.
  static DiskCacheConfig from_environment();
};

// What an entry says about itself (its header), and its file's size and last use.
struct DiskCacheEntry {
  std::string file;       // path of the entry
  std::string key;        // the full key it was stored under
  std::string kind;       // "kernel" or "runtime"
  std::string spec;       // canonical descriptor or key of the spec ("" for the runtime)
  std::string target;     // Halide target string
  std::string schedule;   // schedule description ("" for the runtime)
  int64_t size_bytes = 0;
  int64_t last_use_unix = 0;  // seconds since the epoch (the file's mtime, touched on use)
};

class DiskCache {
 public:
  // Opens (creating if needed) the cache described by `config`. Never fails: a
  // cache that cannot be used is returned disabled, with reason() saying why and
  // one warning printed.
  static std::shared_ptr<DiskCache> open(const DiskCacheConfig& config);

  bool enabled() const;
  const std::string& directory() const;
  std::string reason() const;  // why it is disabled ("" when enabled)
  int64_t max_bytes() const;

  // The payload stored under `key`, verified; NotFound when absent or rejected
  // (a rejected entry is removed, and counted in rejected_entries()).
  // When `description` is given, the entry's header fields are stored there.
  StatusOr<std::string> read(const std::string& key, DiskCacheEntry* description = nullptr);

  // Stores `payload` under `key` with its descriptive fields (entry.key and
  // entry.file are ignored). A write failure disables the cache with one warning.
  Status write(const DiskCacheEntry& description, const std::string& payload);

  // Every entry's header, most recently used first. Entries that cannot be read
  // are listed with kind "invalid".
  std::vector<DiskCacheEntry> list() const;

  // Checks every entry fully (header, checksum, ownership, mode); returns one line
  // per bad entry and removes them when `remove_bad`.
  std::vector<std::string> verify(bool remove_bad);

  // Removes every entry, and temporary files older than ten minutes (younger ones
  // may be other processes' entries in the making).
  Status clear();

  int64_t total_bytes() const;
  int64_t rejected_entries() const;
  int64_t evicted_entries() const;

  class Impl;
  explicit DiskCache(std::unique_ptr<Impl> impl);
  ~DiskCache();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace convjit
