// Tests of the disk cache contract (disk_cache.h) through DiskCache and Runtime: entries
// of other users or writable by others are refused, damaged or misplaced entries are
// rebuilt, unusable directories fall back to memory, concurrent processes leave one
// valid entry per key, the size bound evicts least recently used entries, and the
// memory cache's LRU bound keeps handed-out kernels working.
//
// Every test works in a temporary directory of its own, never in $CONVJIT_CACHE_DIR
// or ~/.cache. Specs are tiny (one compile is a fraction of a second).
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/disk_cache.h"
#include "convjit/runtime.h"
#include "reference_conv.h"
#include "scoped_test_state.h"
#include "worker_processes.h"

extern char** environ;

namespace convjit {
namespace {

constexpr double kTolerance = 1e-4;
// The uid the ownership tests give entries and directories: anyone but us.
constexpr uid_t kOtherUid = 12345;
// Set in the environment of the worker processes of ConcurrentProcesses...: the
// descriptor of the pipe whose end-of-file starts them all at once.
constexpr const char* kWorkerBarrierVariable = "CONVJIT_DISK_CACHE_TEST_WORKER_FD";

// ---- Helpers --------------------------------------------------------------------

// 1x4x8x8 input, 3x3 "same" convolution; c_out tells specs apart.
ConvSpec tiny_spec(int64_t c_out = 4) {
  ConvSpec s;
  s.n = 1;
  s.c_in = 4;
  s.h_in = s.w_in = 8;
  s.c_out = c_out;
  s.kh = s.kw = 3;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
  return s;
}

// Runs `kernel` on random data and returns the relative error against the reference.
double run_error(const Kernel& kernel, uint32_t seed = 7) {
  const ConvSpec& s = kernel.spec();
  const std::vector<float> src = to_float(random_values(input_elements(s), seed));
  const std::vector<float> weights = to_float(random_values(weight_elements(s), seed + 1));
  const std::vector<double> expected = reference_conv(s, from_float(src), from_float(weights), nullptr);
  std::vector<float> dst(expected.size(), 0.0f);
  const auto in = input_shape(s), out = output_shape(s);
  const auto w = weight_shape(s);
  const Status status = kernel.run(TensorView::dense(src.data(), {in.begin(), in.end()}),
                                   TensorView::dense(weights.data(), {w.begin(), w.begin() + weight_rank(s)}),
                                   nullptr, TensorView::dense(dst.data(), {out.begin(), out.end()}));
  if (!status.ok()) {
    ADD_FAILURE() << "run: " << status.message();
    return 1e30;
  }
  return relative_error(from_float(dst), expected);
}


RuntimeOptions options_for(const std::string& directory, int64_t max_bytes = int64_t{1} << 30) {
  RuntimeOptions options;
  options.disk.enabled = true;
  options.disk.directory = directory;
  options.disk.max_bytes = max_bytes;
  return options;
}

DiskCacheConfig config_for(const std::string& directory) { return options_for(directory).disk; }

// The Halide runtime is process-wide and stored on disk by the first Runtime that
// needs it. Loading it here first (with no disk cache) keeps it out of the tests'
// directories, so that they hold kernel entries only.
void load_halide_runtime() {
  static const bool loaded = [] {
    RuntimeOptions options;
    options.disk.enabled = false;
    Runtime runtime(options);
    auto kernel = runtime.get_kernel(tiny_spec(), "host");
    EXPECT_TRUE(kernel.ok()) << kernel.status().message();
    return true;
  }();
  (void)loaded;
}

// Names of everything in `directory` but "." and "..", sorted.
std::vector<std::string> directory_names(const std::string& directory) {
  std::vector<std::string> names;
  if (DIR* dir = opendir(directory.c_str())) {
    while (dirent* e = readdir(dir)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Writes `bytes` as a private file (mode 0600, as the cache writes its entries).
void write_file(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(::close(fd), 0);
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_mode & 07777;
}

// The entries of kind "kernel" in `directory`, most recently used first.
std::vector<DiskCacheEntry> kernel_entries(const std::string& directory) {
  std::vector<DiskCacheEntry> kernels;
  for (const DiskCacheEntry& e : DiskCache::open(config_for(directory))->list()) {
    if (e.kind == "kernel") kernels.push_back(e);
  }
  return kernels;
}

// Compiles `spec` into the cache at `directory` and returns its entry's path.
std::string compile_into(const std::string& directory, const ConvSpec& spec, const std::string& target = "host") {
  Runtime runtime(options_for(directory));
  auto kernel = runtime.get_kernel(spec, target);
  EXPECT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_EQ(runtime.stats().compiles, 1);
  // Most recently used first: the first entry of the spec is the one just written.
  for (const DiskCacheEntry& e : kernel_entries(directory)) {
    if (e.spec == canonical_key(spec)) return e.file;
  }
  ADD_FAILURE() << "no kernel entry for " << canonical_key(spec) << " in " << directory;
  return "";
}

// A Runtime on `directory` must find nothing usable on disk for `spec`, compile it
// once, run it correctly, and leave a valid entry that the next Runtime loads.
void expect_rebuilt_from_scratch(const std::string& directory, const ConvSpec& spec) {
  {
    Runtime runtime(options_for(directory));
    auto kernel = runtime.get_kernel(spec, "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_LT(run_error(*kernel), kTolerance);
    const CacheStats stats = runtime.stats();
    EXPECT_EQ(stats.compiles, 1);
    EXPECT_EQ(stats.disk_hits, 0);
    EXPECT_GE(stats.disk_rejected, 1);
  }
  auto cache = DiskCache::open(config_for(directory));
  EXPECT_TRUE(cache->verify(false).empty());
  Runtime next(options_for(directory));
  auto kernel = next.get_kernel(spec, "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_LT(run_error(*kernel), kTolerance);
  EXPECT_EQ(next.stats().disk_hits, 1);
  EXPECT_EQ(next.stats().compiles, 0);
}

// A cache at `config` must be turned off with a reason containing `reason`, and a
// Runtime on it must compile, run and serve repeats from memory, writing nothing.
void expect_memory_only(const DiskCacheConfig& config, const std::string& reason) {
  auto cache = DiskCache::open(config);
  EXPECT_FALSE(cache->enabled());
  EXPECT_NE(cache->reason().find(reason), std::string::npos)
      << "reason '" << cache->reason() << "' does not contain '" << reason << "'";
  RuntimeOptions options;
  options.disk = config;
  Runtime runtime(options);
  for (int i = 0; i < 2; ++i) {
    auto kernel = runtime.get_kernel(tiny_spec(), "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_LT(run_error(*kernel), kTolerance);
  }
  const CacheStats stats = runtime.stats();
  EXPECT_EQ(stats.compiles, 1);
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.disk_hits, 0);
}


// ---- DiskCache on its own ---------------------------------------------------------

TEST(DiskCache, WriteThenReadReturnsThePayloadUnderAHashedName) {
  TempDir dir("convjit_disk_cache_test");
  auto cache = DiskCache::open(config_for(dir.path()));
  ASSERT_TRUE(cache->enabled()) << cache->reason();
  // A key that would escape the directory if it were used as a file name.
  const std::string key = "../../escape/../x /etc/passwd";
  DiskCacheEntry description;
  description.key = key;
  description.kind = "kernel";
  description.spec = "conv2d.v1 n=1";
  description.target = "x86-64-linux";
  const std::string payload("\0binary\xff payload", 16);
  ASSERT_TRUE(cache->write(description, payload).ok());

  auto read = cache->read(key);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, payload);
  EXPECT_FALSE(cache->read(key + " other").ok());

  const std::vector<std::string> names = directory_names(dir.path());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(std::regex_match(names[0], std::regex("^[0-9a-f]{16}\\.kernel$"))) << names[0];
  EXPECT_EQ(mode_of(dir.file(names[0])), 0600u);
  const std::vector<DiskCacheEntry> entries = cache->list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].key, key);
  EXPECT_EQ(entries[0].kind, "kernel");
  EXPECT_EQ(entries[0].spec, description.spec);
  EXPECT_EQ(entries[0].target, description.target);
  EXPECT_EQ(entries[0].size_bytes, static_cast<int64_t>(read_file(dir.file(names[0])).size()));
  EXPECT_TRUE(cache->verify(false).empty());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/../escape"));

  ASSERT_TRUE(cache->clear().ok());
  EXPECT_TRUE(directory_names(dir.path()).empty());
  EXPECT_FALSE(cache->read(key).ok());
}

// Lengths near 2^64 in a crafted header must not wrap the size check around and
// send the checksum past the end of the file.
TEST(DiskCache, EntryWithWrappingLengthsIsRejectedWithoutReadingPastIt) {
  TempDir dir("convjit_disk_cache_test");
  auto cache = DiskCache::open(config_for(dir.path()));
  ASSERT_TRUE(cache->enabled()) << cache->reason();
  DiskCacheEntry description;
  description.key = "crafted";
  description.kind = "kernel";
  ASSERT_TRUE(cache->write(description, "payload").ok());
  const std::vector<std::string> names = directory_names(dir.path());
  ASSERT_EQ(names.size(), 1u);
  std::string bytes = read_file(dir.file(names[0]));
  // A header longer than the file, and a payload length that makes
  // 32 + header + payload wrap around to exactly the file's size.
  const uint32_t header_size = static_cast<uint32_t>(bytes.size());
  const uint64_t payload_size = uint64_t{0} - 32;
  std::memcpy(bytes.data() + 12, &header_size, 4);
  std::memcpy(bytes.data() + 16, &payload_size, 8);
  {
    std::ofstream out(dir.file(names[0]), std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  EXPECT_FALSE(cache->verify(false).empty());
  EXPECT_FALSE(cache->read("crafted").ok());
  EXPECT_TRUE(directory_names(dir.path()).empty()) << "the invalid entry is removed";
}

TEST(DiskCache, CreatesMissingDirectoriesWithMode0700) {
  TempDir dir("convjit_disk_cache_test");
  const std::string nested = dir.path() + "/a/b/cache";
  auto cache = DiskCache::open(config_for(nested));
  ASSERT_TRUE(cache->enabled()) << cache->reason();
  for (const std::string& path : {dir.path() + "/a", dir.path() + "/a/b", nested}) {
    EXPECT_EQ(mode_of(path), 0700u) << path;
  }
}

TEST(DiskCache, ConfigReadsTheEnvironment) {
  TempDir dir("convjit_disk_cache_test");
  ScopedEnv cache_dir("CONVJIT_CACHE_DIR", dir.path().c_str());
  ScopedEnv max_bytes("CONVJIT_CACHE_MAX_BYTES", "123456");
  {
    ScopedEnv mode("CONVJIT_CACHE", nullptr);
    const DiskCacheConfig config = DiskCacheConfig::from_environment();
    EXPECT_TRUE(config.enabled);
    EXPECT_EQ(config.directory, dir.path());
    EXPECT_EQ(config.max_bytes, 123456);
  }
  for (const char* off : {"off", "0", "false", "no"}) {
    ScopedEnv mode("CONVJIT_CACHE", off);
    EXPECT_FALSE(DiskCacheConfig::from_environment().enabled) << "CONVJIT_CACHE=" << off;
  }
  {
    ScopedEnv unset_dir("CONVJIT_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", dir.path().c_str());
    EXPECT_EQ(DiskCacheConfig::from_environment().directory, dir.path() + "/convjit");
  }
  {
    ScopedEnv unset_dir("CONVJIT_CACHE_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", dir.path().c_str());
    EXPECT_EQ(DiskCacheConfig::from_environment().directory, dir.path() + "/.cache/convjit");
  }
}

// ---- Refused entries and directories ------------------------------------------------

// Compiles an entry, applies `tamper` to its file, and expects the next Runtime to
// refuse it, compile again and replace it with a private entry of its own.
void expect_tampered_entry_refused(const std::function<void(const std::string&)>& tamper) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  const std::string file = compile_into(dir.path(), tiny_spec());
  ASSERT_FALSE(file.empty());
  tamper(file);
  ASSERT_FALSE(DiskCache::open(config_for(dir.path()))->verify(false).empty())
      << "verify does not report the tampered entry";
  expect_rebuilt_from_scratch(dir.path(), tiny_spec());
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(DiskCache, EntryOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
  expect_tampered_entry_refused([](const std::string& file) { ASSERT_EQ(chown(file.c_str(), kOtherUid, -1), 0); });
}

TEST(DiskCache, GroupWritableEntryIsRefused) {
  expect_tampered_entry_refused([](const std::string& file) { ASSERT_EQ(chmod(file.c_str(), 0660), 0); });
}

TEST(DiskCache, OtherWritableEntryIsRefused) {
  expect_tampered_entry_refused([](const std::string& file) { ASSERT_EQ(chmod(file.c_str(), 0602), 0); });
}

TEST(DiskCache, DirectoryOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "giving a directory to another user needs root";
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  const std::string cache = dir.path() + "/cache";
  ASSERT_EQ(mkdir(cache.c_str(), 0700), 0);
  ASSERT_EQ(chown(cache.c_str(), kOtherUid, -1), 0);
  expect_memory_only(config_for(cache), "owned by uid 12345");
  EXPECT_TRUE(directory_names(cache).empty());
}

TEST(DiskCache, GroupWritableDirectoryIsRefused) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  ASSERT_EQ(chmod(dir.path().c_str(), 0770), 0);
  expect_memory_only(config_for(dir.path()), "writable by group or others (mode 0770)");
  EXPECT_TRUE(directory_names(dir.path()).empty());
}

TEST(DiskCache, WorldWritableDirectoryIsRefused) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  ASSERT_EQ(chmod(dir.path().c_str(), 0777), 0);
  expect_memory_only(config_for(dir.path()), "writable by group or others (mode 0777)");
  EXPECT_TRUE(directory_names(dir.path()).empty());
}

TEST(DiskCache, ReadOnlyDirectoryMeansMemoryOnly) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  // Root passes access(W_OK) on any directory: the cache must look at the mode bits.
  ASSERT_EQ(chmod(dir.path().c_str(), 0500), 0);
  expect_memory_only(config_for(dir.path()), "not writable");
  EXPECT_TRUE(directory_names(dir.path()).empty());
}

TEST(DiskCache, RegularFileAsDirectoryMeansMemoryOnly) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  const std::string file = dir.file("not_a_directory");
  write_file(file, "keep me");
  expect_memory_only(config_for(file), "not a directory");
  // A path below a regular file cannot be created at all.
  expect_memory_only(config_for(file + "/cache"), "cannot create");
  EXPECT_EQ(read_file(file), "keep me");
  EXPECT_EQ(directory_names(dir.path()), std::vector<std::string>{"not_a_directory"});
}

TEST(DiskCache, SwitchedOffMeansMemoryOnlyAndNothingWritten) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  const std::string cache = dir.path() + "/cache";
  DiskCacheConfig config = config_for(cache);
  config.enabled = false;
  expect_memory_only(config, "CONVJIT_CACHE=off");
  EXPECT_FALSE(std::filesystem::exists(cache));

  // The same through the environment, read by RuntimeOptions' defaults.
  ScopedEnv mode("CONVJIT_CACHE", "off");
  ScopedEnv cache_dir("CONVJIT_CACHE_DIR", cache.c_str());
  const DiskCacheConfig from_env = DiskCacheConfig::from_environment();
  EXPECT_FALSE(from_env.enabled);
  EXPECT_EQ(from_env.directory, cache);
  expect_memory_only(from_env, "CONVJIT_CACHE=off");
  Runtime runtime;  // RuntimeOptions() reads the environment
  auto kernel = runtime.get_kernel(tiny_spec(5), "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_LT(run_error(*kernel), kTolerance);
  EXPECT_EQ(runtime.stats().compiles, 1);
  EXPECT_FALSE(std::filesystem::exists(cache));
}

// ---- Damaged and misplaced entries --------------------------------------------------

// Valid entries made once per process: tiny_spec(4) and tiny_spec(6) for the host,
// and tiny_spec(4) for a target that differs from the host's (AVX2 without AVX-512,
// or plain SSE on an AVX2 host), with the file names they were stored under.
struct PristineEntries {
  std::string name, bytes;         // tiny_spec(4), host
  std::string other_spec_bytes;    // tiny_spec(6), host
  std::string other_target_bytes;  // tiny_spec(4), other target
};

const PristineEntries& pristine_entries() {
  static const PristineEntries entries = [] {
    load_halide_runtime();
    PristineEntries p;
    TempDir dir("convjit_disk_cache_test");
    const std::string file = compile_into(dir.path(), tiny_spec(4));
    p.name = file.substr(file.rfind('/') + 1);
    p.bytes = read_file(file);
    p.other_spec_bytes = read_file(compile_into(dir.path(), tiny_spec(6)));
    const std::string other_target = host_target_string().find("avx512") != std::string::npos
                                         ? "x86-64-linux-avx2-fma"
                                         : "x86-64-linux-sse41";
    p.other_target_bytes = read_file(compile_into(dir.path(), tiny_spec(4), other_target));
    return p;
  }();
  return entries;
}

// Installs `bytes` under the name of tiny_spec(4)'s host entry in a fresh directory
// and expects verify to name it as bad, then a rebuild.
void expect_bad_entry_rebuilt(const std::string& bytes) {
  const PristineEntries& p = pristine_entries();
  ASSERT_FALSE(p.bytes.empty());
  TempDir dir("convjit_disk_cache_test");
  write_file(dir.file(p.name), bytes);
  const std::vector<std::string> bad = DiskCache::open(config_for(dir.path()))->verify(false);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find(p.name), std::string::npos) << bad[0];
  expect_rebuilt_from_scratch(dir.path(), tiny_spec(4));
  EXPECT_EQ(directory_names(dir.path()), std::vector<std::string>{p.name});
}

// Offset of the payload (the shared object) in an entry: 32-byte prefix, then the header.
size_t payload_offset(const std::string& entry) {
  uint32_t header_size = 0;
  std::memcpy(&header_size, entry.data() + 12, sizeof header_size);
  return 32 + header_size;
}

TEST(KernelCache, CopiedValidEntryIsADiskHit) {
  // The harness itself: an intact copy must load, or the tests below prove nothing.
  const PristineEntries& p = pristine_entries();
  TempDir dir("convjit_disk_cache_test");
  write_file(dir.file(p.name), p.bytes);
  Runtime runtime(options_for(dir.path()));
  auto kernel = runtime.get_kernel(tiny_spec(4), "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_LT(run_error(*kernel), kTolerance);
  EXPECT_EQ(runtime.stats().disk_hits, 1);
  EXPECT_EQ(runtime.stats().compiles, 0);
}

TEST(KernelCache, TruncatedEntryIsRebuilt) {
  const std::string& bytes = pristine_entries().bytes;
  expect_bad_entry_rebuilt(bytes.substr(0, bytes.size() / 2));
  expect_bad_entry_rebuilt(bytes.substr(0, bytes.size() - 1));
  expect_bad_entry_rebuilt(bytes.substr(0, 20));
  expect_bad_entry_rebuilt("");
}

TEST(KernelCache, EntryWithAFlippedPayloadByteIsRebuilt) {
  std::string bytes = pristine_entries().bytes;
  const size_t offset = payload_offset(bytes);
  ASSERT_LT(offset, bytes.size());
  bytes[offset + (bytes.size() - offset) / 2] ^= 0x10;
  expect_bad_entry_rebuilt(bytes);
}

TEST(KernelCache, EntryWithAFlippedHeaderByteIsRebuilt) {
  const std::string& pristine = pristine_entries().bytes;
  const size_t header_end = payload_offset(pristine);
  // The magic, the format version, the header length and a byte of the key text.
  for (size_t offset : {size_t{0}, size_t{8}, size_t{12}, size_t{40}, header_end - 2}) {
    SCOPED_TRACE("byte " + std::to_string(offset));
    std::string bytes = pristine;
    bytes[offset] ^= 0x01;
    expect_bad_entry_rebuilt(bytes);
  }
}

TEST(KernelCache, EntryOfAnotherSpecUnderThisNameIsRebuilt) {
  expect_bad_entry_rebuilt(pristine_entries().other_spec_bytes);
}

TEST(KernelCache, EntryOfAnotherTargetUnderThisNameIsRebuilt) {
  // Same spec, valid entry, but code for another CPU: loading it would be wrong.
  expect_bad_entry_rebuilt(pristine_entries().other_target_bytes);
}

// ---- Sharing across Runtime objects and processes ------------------------------------

TEST(KernelCache, FreshRuntimeLoadsFromDiskWithoutCompiling) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  {
    Runtime first(options_for(dir.path()));
    auto kernel = first.get_kernel(tiny_spec(5), "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_EQ(first.stats().compiles, 1);
    EXPECT_EQ(first.stats().disk_hits, 0);
  }
  Runtime second(options_for(dir.path()));
  auto kernel = second.get_kernel(tiny_spec(5), "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_LT(run_error(*kernel), kTolerance);
  const CacheStats stats = second.stats();
  EXPECT_EQ(stats.disk_hits, 1);
  EXPECT_EQ(stats.compiles, 0);
  EXPECT_EQ(stats.misses, 1);
  EXPECT_EQ(stats.disk_rejected, 0);
  // A second request is a memory hit.
  ASSERT_TRUE(second.get_kernel(tiny_spec(5), "host").ok());
  EXPECT_EQ(second.stats().hits, 1);
  EXPECT_EQ(second.stats().disk_hits, 1);
}

const ConvSpec kWorkerSpecs[] = {tiny_spec(4), tiny_spec(5), tiny_spec(7)};

// The worker of ConcurrentProcessesLeaveOneValidEntryPerKey, run in child processes.
TEST(DiskCache, ConcurrentProcessWorker) {
  if (!wait_for_other_workers(kWorkerBarrierVariable)) {
    GTEST_SKIP() << "runs only as a child of DiskCache.ConcurrentProcessesLeaveOneValidEntryPerKey";
  }
  Runtime runtime;  // CONVJIT_CACHE_DIR names the shared directory
  for (const ConvSpec& spec : kWorkerSpecs) {
    auto kernel = runtime.get_kernel(spec, "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_LT(run_error(*kernel), kTolerance);
  }
  const CacheStats stats = runtime.stats();
  EXPECT_EQ(stats.compiles + stats.disk_hits, 3);
  EXPECT_EQ(stats.disk_rejected, 0);
}

TEST(DiskCache, ConcurrentProcessesLeaveOneValidEntryPerKey) {
  constexpr int kWorkers = 4;
  TempDir dir("convjit_disk_cache_test"), logs("convjit_disk_cache_test");
  // Workers get no cache settings of ours but the shared directory.
  const auto results = run_workers_together(
      "DiskCache.ConcurrentProcessWorker", kWorkers, kWorkerBarrierVariable, {"CONVJIT_CACHE"},
      [&](int) { return std::vector<std::string>{"CONVJIT_CACHE_DIR=" + dir.path()}; }, logs.path());
  ASSERT_EQ(results.size(), static_cast<size_t>(kWorkers));
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].succeeded()) << "worker " << i << " ended with status " << results[i].status << ":\n"
                                        << results[i].output;
  }

  // One entry per key: three kernels and the Halide runtime, no temporary files.
  const std::vector<std::string> names = directory_names(dir.path());
  EXPECT_EQ(names.size(), 4u);
  for (const std::string& name : names) {
    EXPECT_TRUE(std::regex_match(name, std::regex("^[0-9a-f]{16}\\.kernel$"))) << "stray file " << name;
  }
  auto cache = DiskCache::open(config_for(dir.path()));
  EXPECT_TRUE(cache->verify(false).empty());
  std::multiset<std::string> kernel_specs;
  int runtimes = 0;
  for (const DiskCacheEntry& e : cache->list()) {
    if (e.kind == "kernel") kernel_specs.insert(e.spec);
    if (e.kind == "runtime") ++runtimes;
  }
  std::multiset<std::string> expected;
  for (const ConvSpec& spec : kWorkerSpecs) expected.insert(canonical_key(spec));
  EXPECT_EQ(kernel_specs, expected);
  EXPECT_EQ(runtimes, 1);
}

// ---- Bounds ------------------------------------------------------------------------

TEST(DiskCache, SizeBoundEvictsLeastRecentlyUsedEntries) {
  load_halide_runtime();
  int64_t entry_size = 0;
  {
    TempDir measure("convjit_disk_cache_test");
    const std::string file = compile_into(measure.path(), tiny_spec(4));
    entry_size = static_cast<int64_t>(read_file(file).size());
  }
  ASSERT_GT(entry_size, 0);
  TempDir dir("convjit_disk_cache_test");
  const int64_t max_bytes = entry_size * 5 / 2;  // room for about two entries
  Runtime runtime(options_for(dir.path(), max_bytes));
  const ConvSpec specs[] = {tiny_spec(4), tiny_spec(5), tiny_spec(6), tiny_spec(7)};
  for (const ConvSpec& spec : specs) {
    auto kernel = runtime.get_kernel(spec, "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    EXPECT_LT(run_error(*kernel), kTolerance);
    EXPECT_LE(DiskCache::open(config_for(dir.path()))->total_bytes(), max_bytes);
  }
  EXPECT_EQ(runtime.stats().compiles, 4);
  EXPECT_GT(runtime.stats().disk_evictions, 0);

  const std::vector<DiskCacheEntry> kernels = kernel_entries(dir.path());
  ASSERT_FALSE(kernels.empty());
  EXPECT_LE(kernels.size(), 2u);
  EXPECT_EQ(kernels.front().spec, canonical_key(specs[3]));  // the most recent one survives
  RuntimeOptions options = options_for(dir.path(), max_bytes);
  Runtime next(options);
  ASSERT_TRUE(next.get_kernel(specs[3], "host").ok());
  EXPECT_EQ(next.stats().disk_hits, 1);
  EXPECT_EQ(next.stats().compiles, 0);
}

TEST(KernelCache, MemoryBoundEvictsLeastRecentlyUsedAndHandlesStayValid) {
  load_halide_runtime();
  RuntimeOptions options;
  options.disk.enabled = false;
  options.max_memory_entries = 2;
  Runtime runtime(options);
  auto first = runtime.get_kernel(tiny_spec(4), "host");
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(runtime.get_kernel(tiny_spec(5), "host").ok());
  ASSERT_TRUE(runtime.get_kernel(tiny_spec(6), "host").ok());
  CacheStats stats = runtime.stats();
  EXPECT_EQ(stats.compiles, 3);
  EXPECT_EQ(stats.evictions, 1);
  EXPECT_EQ(stats.entries, 2);
  // The evicted kernel's handle still owns its code.
  EXPECT_LT(run_error(*first), kTolerance);
  // The evicted one was the least recently used: the other two are still hits.
  ASSERT_TRUE(runtime.get_kernel(tiny_spec(6), "host").ok());
  ASSERT_TRUE(runtime.get_kernel(tiny_spec(5), "host").ok());
  stats = runtime.stats();
  EXPECT_EQ(stats.hits, 2);
  EXPECT_EQ(stats.compiles, 3);
  ASSERT_TRUE(runtime.get_kernel(tiny_spec(4), "host").ok());
  stats = runtime.stats();
  EXPECT_EQ(stats.compiles, 4);
  EXPECT_EQ(stats.evictions, 2);
  EXPECT_EQ(stats.entries, 2);
}

// ---- Entry names ------------------------------------------------------------------

TEST(KernelCache, EntriesAreNamedByHashInsideTheDirectory) {
  load_halide_runtime();
  TempDir dir("convjit_disk_cache_test");
  const std::string cache = dir.path() + "/x/cache";  // created by the Runtime
  Runtime runtime(options_for(cache));
  for (int64_t c_out : {4, 5}) {
    auto kernel = runtime.get_kernel(tiny_spec(c_out), "host");
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  }
  EXPECT_EQ(mode_of(dir.path() + "/x"), 0700u);
  EXPECT_EQ(mode_of(cache), 0700u);
  const std::vector<std::string> names = directory_names(cache);
  EXPECT_EQ(names.size(), 2u);
  for (const std::string& name : names) {
    EXPECT_TRUE(std::regex_match(name, std::regex("^[0-9a-f]{16}\\.kernel$"))) << name;
    EXPECT_EQ(mode_of(cache + "/" + name), 0600u) << name;
  }
  EXPECT_EQ(directory_names(dir.path()), std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace convjit
