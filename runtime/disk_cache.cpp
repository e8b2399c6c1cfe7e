// The on-disk kernel cache: entry format, private atomic installs, ownership and
// mode checks, checksum verification and least-recently-used eviction.
//
// Entry layout (little-endian):
//   0  "CJKCACHE"                 magic
//   8  u32 format version (1)
//  12  u32 header length H
//  16  u64 payload length P
//  24  u64 FNV-1a 64 of header text + payload
//  32  header text: "name=value\n" lines (key, kind, spec, target, schedule)
//  32+H payload (a shared object)
#include "convjit/disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>
#include <ctime>

#include "convjit/conv_spec.h"
#include "private_files.h"

namespace convjit {
namespace {

constexpr char kMagic[8] = {'C', 'J', 'K', 'C', 'A', 'C', 'H', 'E'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kPrefixBytes = 32;
constexpr const char* kEntrySuffix = ".kernel";
constexpr const char* kTempPrefix = ".tmp-";

void warn(const std::string& message) { std::fprintf(stderr, "convjit: warning: %s\n", message.c_str()); }

std::string errno_text() { return std::strerror(errno); }


std::string entry_name(const std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%s", static_cast<unsigned long long>(fnv1a64(key)), kEntrySuffix);
  return buf;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}


uint64_t checksum(const std::string& header, const char* payload, size_t payload_size) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      h ^= static_cast<unsigned char>(data[i]);
      h *= 1099511628211ull;
    }
  };
  mix(header.data(), header.size());
  mix(payload, payload_size);
  return h;
}

template <typename T>
T read_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string header_field(const std::string& header, const std::string& name) {
  std::istringstream in(header);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size() + 1, name + "=") == 0) return line.substr(name.size() + 1);
  }
  return "";
}

// Reads a whole regular file from an open descriptor.
bool read_all(int fd, std::string* out, size_t size) {
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, out->data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Parses and checks an entry's bytes; returns "" when valid, else why not.
std::string check_entry(const std::string& bytes, std::string* header, size_t* payload_offset) {
  if (bytes.size() < kPrefixBytes) return "truncated (" + std::to_string(bytes.size()) + " bytes)";
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return "not a convjit cache entry (bad magic)";
  const uint32_t version = read_le<uint32_t>(bytes.data() + 8);
  if (version != kFormatVersion) return "entry format version " + std::to_string(version) + ", expected 1";
  const uint64_t header_size = read_le<uint32_t>(bytes.data() + 12);
  const uint64_t payload_size = read_le<uint64_t>(bytes.data() + 16);
  const uint64_t stored_sum = read_le<uint64_t>(bytes.data() + 24);
  // Compared without adding the stored lengths: a crafted payload length near 2^64
  // would wrap the sum around and pass.
  const uint64_t after_prefix = bytes.size() - kPrefixBytes;
  if (header_size > after_prefix || payload_size != after_prefix - header_size)
    return "truncated or padded (" + std::to_string(bytes.size()) + " bytes, header gives lengths " +
           std::to_string(header_size) + " + " + std::to_string(payload_size) + ")";
  *header = bytes.substr(kPrefixBytes, header_size);
  *payload_offset = kPrefixBytes + header_size;
  if (checksum(*header, bytes.data() + *payload_offset, payload_size) != stored_sum) return "checksum mismatch";
  return "";
}

int64_t parse_bytes(const char* text, int64_t fallback) {
  if (!text || !*text) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || v <= 0) {
    warn(std::string("CONVJIT_CACHE_MAX_BYTES='") + text + "' is not a positive integer; using " +
         std::to_string(fallback));
    return fallback;
  }
  return v;
}


}  // namespace

DiskCacheConfig DiskCacheConfig::from_environment() {
  DiskCacheConfig config;
  if (const char* mode = std::getenv("CONVJIT_CACHE")) {
    const std::string m = mode;
    config.enabled = !(m == "off" || m == "0" || m == "false" || m == "no");
  }
  if (const char* dir = std::getenv("CONVJIT_CACHE_DIR"); dir && *dir) {
    config.directory = dir;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') {
    config.directory = std::string(xdg) + "/convjit";
  } else {
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
      const passwd* pw = getpwuid(geteuid());
      home = pw ? pw->pw_dir : nullptr;
    }
    config.directory = home ? std::string(home) + "/.cache/convjit" : "";
  }
  config.max_bytes = parse_bytes(std::getenv("CONVJIT_CACHE_MAX_BYTES"), config.max_bytes);
  return config;
}

class DiskCache::Impl {
 public:
  explicit Impl(const DiskCacheConfig& config) : config_(config) {}

  void open() {
    if (!config_.enabled) return disable("disabled (CONVJIT_CACHE=off, or by the program's options)", false);
    if (config_.directory.empty()) return disable("no cache directory: set CONVJIT_CACHE_DIR or HOME", true);
    std::string error;
    if (!make_private_directories(config_.directory, &error)) return disable(error, true);
    struct stat st;
    if (stat(config_.directory.c_str(), &st) != 0) return disable("cannot stat '" + config_.directory + "': " + errno_text(), true);
    if (!S_ISDIR(st.st_mode)) return disable("cache directory '" + config_.directory + "' is not a directory", true);
    if (std::string problem = ownership_problem(st); !problem.empty())
      return disable("refusing cache directory '" + config_.directory + "': " + problem, true);
    // Root may write anywhere: the owner's write bit, not access(), says writable.
    if (!(st.st_mode & S_IWUSR) || access(config_.directory.c_str(), W_OK) != 0)
      return disable("cache directory '" + config_.directory + "' is not writable (mode " + mode_text(st.st_mode) + ")", true);
    enabled_ = true;
  }

  bool enabled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return enabled_;
  }

  void disable(const std::string& reason, bool print) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!reason_.empty()) return;  // one warning per process and cache
    enabled_ = false;
    reason_ = reason;
    if (print) warn(reason + "; kernels are cached in memory only");
  }

  std::string path(const std::string& name) const { return config_.directory + "/" + name; }

  StatusOr<std::string> read(const std::string& key, DiskCacheEntry* description) {
    if (!enabled()) return Status::not_found("disk cache disabled");
    const std::string file = path(entry_name(key));
    const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Status::not_found("no entry " + file);
    struct stat st;
    std::string bytes, header, problem;
    size_t payload_offset = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      problem = "not a regular file";
    } else if (std::string owner = ownership_problem(st); !owner.empty()) {
      ::close(fd);
      warn("refusing cache entry '" + file + "': " + owner);
      ++rejected_;
      return Status::not_found("refused entry " + file);
    } else if (!read_all(fd, &bytes, static_cast<size_t>(st.st_size))) {
      problem = "unreadable: " + errno_text();
    } else {
      problem = check_entry(bytes, &header, &payload_offset);
      if (problem.empty() && header_field(header, "key") != key) problem = "stored under another key";
    }
    if (!problem.empty()) {
      ::close(fd);
      warn("cache entry '" + file + "' is invalid (" + problem + "); it is removed and rebuilt");
      ::unlink(file.c_str());
      ++rejected_;
      return Status::not_found("invalid entry " + file);
    }
    futimens(fd, nullptr);  // last use, for LRU eviction
    ::close(fd);
    if (description) {
      description->file = file;
      description->key = key;
      description->kind = header_field(header, "kind");
      description->spec = header_field(header, "spec");
      description->target = header_field(header, "target");
      description->schedule = header_field(header, "schedule");
      description->size_bytes = static_cast<int64_t>(bytes.size());
    }
    return bytes.substr(payload_offset);
  }

  Status write(const DiskCacheEntry& d, const std::string& payload) {
    if (!enabled()) return Status();
    std::ostringstream header;
    header << "key=" << d.key << "\nkind=" << d.kind << "\nspec=" << d.spec << "\ntarget=" << d.target
           << "\nschedule=" << d.schedule << "\n";
    const std::string h = header.str();
    std::string bytes(kPrefixBytes, '\0');
    std::memcpy(bytes.data(), kMagic, sizeof kMagic);
    const uint32_t version = kFormatVersion, header_size = static_cast<uint32_t>(h.size());
    const uint64_t payload_size = payload.size(), sum = checksum(h, payload.data(), payload.size());
    std::memcpy(bytes.data() + 8, &version, 4);
    std::memcpy(bytes.data() + 12, &header_size, 4);
    std::memcpy(bytes.data() + 16, &payload_size, 8);
    std::memcpy(bytes.data() + 24, &sum, 8);
    bytes += h;
    bytes += payload;

    static std::atomic<uint64_t> counter{0};
    std::ostringstream temp_name;
    temp_name << kTempPrefix << getpid() << "-" << std::hash<std::thread::id>()(std::this_thread::get_id()) << "-"
              << counter++;
    const std::string temp = path(temp_name.str());
    const std::string final_path = path(entry_name(d.key));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    std::string error;
    if (fd < 0) {
      error = "cannot create '" + temp + "': " + errno_text();
    } else {
      size_t done = 0;
      while (done < bytes.size() && error.empty()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) error = "cannot write '" + temp + "': " + errno_text();
        else done += static_cast<size_t>(n);
      }
      if (::close(fd) != 0 && error.empty()) error = "cannot write '" + temp + "': " + errno_text();
      if (error.empty() && ::rename(temp.c_str(), final_path.c_str()) != 0)
        error = "cannot install '" + final_path + "': " + errno_text();
      if (!error.empty()) ::unlink(temp.c_str());
    }
    if (!error.empty()) {
      disable(error, true);
      return Status();  // degraded, not failed: the kernel itself is fine
    }
    evict_to_fit();
    return Status();
  }

  struct FileInfo {
    std::string name;
    int64_t size;
    int64_t mtime_ns;
  };

  std::vector<FileInfo> scan(bool entries, bool temps) const {
    std::vector<FileInfo> files;
    DIR* dir = opendir(config_.directory.c_str());
    if (!dir) return files;
    while (dirent* e = readdir(dir)) {
      const std::string name = e->d_name;
      const bool is_entry = ends_with(name, kEntrySuffix) && name[0] != '.';
      const bool is_temp = name.compare(0, std::strlen(kTempPrefix), kTempPrefix) == 0;
      if (!((entries && is_entry) || (temps && is_temp))) continue;
      struct stat st;
      if (lstat(path(name).c_str(), &st) != 0) continue;
      files.push_back({name, static_cast<int64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    }
    closedir(dir);
    return files;
  }

  void evict_to_fit() {
    std::vector<FileInfo> files = scan(true, false);
    int64_t total = 0;
    for (const FileInfo& f : files) total += f.size;
    if (total <= config_.max_bytes) return;
    std::sort(files.begin(), files.end(), [](const FileInfo& a, const FileInfo& b) { return a.mtime_ns < b.mtime_ns; });
    for (const FileInfo& f : files) {
      if (total <= config_.max_bytes) break;
      if (::unlink(path(f.name).c_str()) == 0) {
        total -= f.size;
        ++evicted_;
      }
    }
  }

  DiskCacheEntry describe(const FileInfo& f) const {
    DiskCacheEntry e;
    e.file = path(f.name);
    e.size_bytes = f.size;
    e.last_use_unix = f.mtime_ns / 1000000000;
    e.kind = "invalid";
    const int fd = ::open(e.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return e;
    std::string prefix;
    if (read_all(fd, &prefix, kPrefixBytes) && std::memcmp(prefix.data(), kMagic, sizeof kMagic) == 0) {
      const uint32_t header_size = read_le<uint32_t>(prefix.data() + 12);
      std::string header;
      if (header_size < (1u << 20) && read_all(fd, &header, header_size)) {
        e.key = header_field(header, "key");
        e.kind = header_field(header, "kind");
        e.spec = header_field(header, "spec");
        e.target = header_field(header, "target");
        e.schedule = header_field(header, "schedule");
      }
    }
    ::close(fd);
    return e;
  }

  std::vector<DiskCacheEntry> list() const {
    std::vector<FileInfo> files = scan(true, false);
    std::sort(files.begin(), files.end(), [](const FileInfo& a, const FileInfo& b) { return a.mtime_ns > b.mtime_ns; });
    std::vector<DiskCacheEntry> entries;
    for (const FileInfo& f : files) entries.push_back(describe(f));
    return entries;
  }

  std::vector<std::string> verify(bool remove_bad) {
    std::vector<std::string> problems;
    for (const FileInfo& f : scan(true, false)) {
      const std::string file = path(f.name);
      std::string problem;
      const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      struct stat st;
      std::string bytes, header;
      size_t payload_offset = 0;
      if (fd < 0) {
        problem = "cannot open: " + errno_text();
      } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        problem = "not a regular file";
      } else if (std::string owner = ownership_problem(st); !owner.empty()) {
        problem = owner;
      } else if (!read_all(fd, &bytes, static_cast<size_t>(st.st_size))) {
        problem = "unreadable";
      } else if (problem = check_entry(bytes, &header, &payload_offset); problem.empty()) {
        if (entry_name(header_field(header, "key")) != f.name) problem = "file name does not match its key";
      }
      if (fd >= 0) ::close(fd);
      if (problem.empty()) continue;
      problems.push_back(file + ": " + problem);
      if (remove_bad) ::unlink(file.c_str());
    }
    return problems;
  }

  Status clear() {
    if (config_.directory.empty()) return Status();
    // A temporary file younger than this may be another process's entry in the
    // making: removing it would make that process's rename fail.
    constexpr int64_t kStaleTempNs = int64_t{600} * 1000000000;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t now_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
    for (const FileInfo& f : scan(true, true)) {
      if (!ends_with(f.name, kEntrySuffix) && now_ns - f.mtime_ns < kStaleTempNs) continue;
      if (::unlink(path(f.name).c_str()) != 0 && errno != ENOENT)
        return Status::internal("cannot remove '" + path(f.name) + "': " + errno_text());
    }
    return Status();
  }

  DiskCacheConfig config_;
  mutable std::mutex mutex_;
  bool enabled_ = false;
  std::string reason_;
  std::atomic<int64_t> rejected_{0}, evicted_{0};
};

DiskCache::DiskCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DiskCache::~DiskCache() = default;

std::shared_ptr<DiskCache> DiskCache::open(const DiskCacheConfig& config) {
  auto impl = std::make_unique<Impl>(config);
  impl->open();
  return std::make_shared<DiskCache>(std::move(impl));
}

bool DiskCache::enabled() const { return impl_->enabled(); }
const std::string& DiskCache::directory() const { return impl_->config_.directory; }
std::string DiskCache::reason() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->reason_;
}
int64_t DiskCache::max_bytes() const { return impl_->config_.max_bytes; }
StatusOr<std::string> DiskCache::read(const std::string& key, DiskCacheEntry* description) {
  return impl_->read(key, description);
}
Status DiskCache::write(const DiskCacheEntry& d, const std::string& payload) { return impl_->write(d, payload); }
std::vector<DiskCacheEntry> DiskCache::list() const { return impl_->list(); }
std::vector<std::string> DiskCache::verify(bool remove_bad) { return impl_->verify(remove_bad); }
Status DiskCache::clear() { return impl_->clear(); }
int64_t DiskCache::rejected_entries() const { return impl_->rejected_.load(); }
int64_t DiskCache::evicted_entries() const { return impl_->evicted_.load(); }

int64_t DiskCache::total_bytes() const {
  int64_t total = 0;
  for (const auto& f : impl_->scan(true, false)) total += f.size;
  return total;
}

}  // namespace convjit
