// `convjit cache`: inspects and maintains the persistent kernel cache (stats, list,
// verify, clear) through the public DiskCache API.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "convjit/disk_cache.h"
#include "spec_json.h"

namespace convjit {
namespace {

// Key fields at these values say nothing a reader of `list` needs; dropping them
// keeps one entry on one readable line. The full key is in `list --json`.
const char* const kDefaultKeyFields[] = {
    "stride=1x1",   "pad=0,0,0,0",        "dilation=1x1",       "groups=1",
    "transposed=0", "output_padding=0x0", "padding_mode=zeros", "conv_mode=cross_correlation",
    "dtype=f32",    "compute_mode=default", "bias=0",
};

std::string compact_spec(const std::string& key) {
  std::istringstream in(key);
  std::string token, out;
  while (in >> token) {
    bool is_default = false;
    for (const char* field : kDefaultKeyFields) is_default = is_default || token == field;
    if (is_default) continue;
    out += (out.empty() ? "" : " ") + token;
  }
  return out.empty() ? "-" : out;
}

std::string local_time(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[32];
  if (localtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    return std::to_string(unix_seconds);
  return buf;
}

// "1 entry", "2 entries".
std::string count_text(int64_t count, const char* one, const char* many) {
  return std::to_string(count) + " " + (count == 1 ? one : many);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string byte_text(int64_t bytes) {
  char buf[64];
  if (bytes >= (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%lld bytes (%.1f GiB)", static_cast<long long>(bytes),
                  static_cast<double>(bytes) / (1 << 30));
  } else if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%lld bytes (%.1f MiB)", static_cast<long long>(bytes),
                  static_cast<double>(bytes) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%lld bytes (%.1f KiB)", static_cast<long long>(bytes),
                  static_cast<double>(bytes) / 1024);
  }
  return buf;
}

// Left-aligned columns separated by two spaces; the last column is not padded.
std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

// Prints `text` to stdout; a failed write (a closed pipe, a full disk) is an error.
int print(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  if (std::fflush(stdout) != 0) return report_error("cannot write to stdout", kExitFailure);
  return kExitOk;
}

// The cache a subcommand works on. The tool opens an existing directory even when
// CONVJIT_CACHE=off (it loads no code, and clearing or checking a cache that is
// switched off is legitimate), but never creates one: inspecting a cache must not
// leave a directory behind.
struct CacheTarget {
  DiskCacheConfig config;       // as the environment and --cache-dir say
  bool exists = false;          // the directory exists (and is a directory)
  std::shared_ptr<DiskCache> cache;  // open when it exists
};

bool open_target(const RoutedArguments& routed, CacheTarget* target, CommandError* error) {
  target->config = DiskCacheConfig::from_environment();
  auto dir = routed.options.find("--cache-dir");
  if (dir != routed.options.end()) target->config.directory = dir->second;
  const std::string& directory = target->config.directory;
  if (directory.empty()) {
    error->message = "no cache directory: set CONVJIT_CACHE_DIR or HOME, or give --cache-dir";
    error->exit_code = kExitFailure;
    return false;
  }
  struct stat st;
  if (stat(directory.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;  // nothing cached yet
    error->message = "cannot stat cache directory '" + directory + "': " + std::strerror(errno);
    error->exit_code = kExitFailure;
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    error->message = "cache directory '" + directory + "' is not a directory";
    error->exit_code = kExitFailure;
    return false;
  }
  target->exists = true;
  DiskCacheConfig config = target->config;
  config.enabled = true;  // so that open() checks ownership and mode and reports them
  target->cache = DiskCache::open(config);
  return true;
}

int stats(const CacheTarget& target) {
  std::vector<DiskCacheEntry> entries;
  if (target.exists) entries = target.cache->list();
  int64_t kernels = 0, runtimes = 0, invalid = 0, total = 0;
  for (const DiskCacheEntry& e : entries) {
    if (e.kind == "kernel") {
      ++kernels;
    } else if (e.kind == "runtime") {
      ++runtimes;
    } else {
      ++invalid;
    }
    total += e.size_bytes;
  }
  std::string state;
  if (!target.config.enabled) {
    state = "no (disabled by CONVJIT_CACHE)";
  } else if (!target.exists) {
    state = "yes (the directory is created on first use)";
  } else if (!target.cache->enabled()) {
    state = "no (" + target.cache->reason() + ")";
  } else {
    state = "yes";
  }
  std::string counts = std::to_string(entries.size()) + " (" + count_text(kernels, "kernel", "kernels") + ", " +
                       count_text(runtimes, "runtime", "runtimes");
  if (invalid > 0) counts += ", " + std::to_string(invalid) + " unreadable";
  counts += ")";
  return print(format_table({
      {"directory:", target.config.directory + (target.exists ? "" : " (does not exist)")},
      {"enabled:", state},
      {"entries:", counts},
      {"total:", byte_text(total)},
      {"max:", byte_text(target.config.max_bytes)},
  }));
}

int list(const CacheTarget& target, bool json) {
  std::vector<DiskCacheEntry> entries;
  if (target.exists) entries = target.cache->list();
  std::string out;
  if (json) {
    for (const DiskCacheEntry& e : entries) {
      out += "{\"file\": " + json_quote(base_name(e.file)) + ", \"path\": " + json_quote(e.file) +
             ", \"kind\": " + json_quote(e.kind) + ", \"size_bytes\": " + std::to_string(e.size_bytes) +
             ", \"last_use_unix\": " + std::to_string(e.last_use_unix) +
             ", \"last_use\": " + json_quote(local_time(e.last_use_unix)) +
             ", \"target\": " + json_quote(e.target) + ", \"schedule\": " + json_quote(e.schedule) +
             ", \"spec\": " + json_quote(e.spec) + ", \"key\": " + json_quote(e.key) + "}\n";
    }
    return print(out);
  }
  std::vector<std::vector<std::string>> rows = {{"KIND", "SIZE", "LAST USE", "TARGET", "SCHEDULE", "SPEC", "FILE"}};
  for (const DiskCacheEntry& e : entries) {
    rows.push_back({e.kind, std::to_string(e.size_bytes), local_time(e.last_use_unix),
                    e.target.empty() ? "-" : e.target, e.schedule.empty() ? "-" : e.schedule,
                    compact_spec(e.spec), base_name(e.file)});
  }
  return print(format_table(rows));
}

int verify(const CacheTarget& target, bool remove_bad) {
  if (!target.exists) return print("0 entries, 0 bad\n");  // as for an empty directory
  const size_t count = target.cache->list().size();
  const std::vector<std::string> bad = target.cache->verify(remove_bad);
  std::string out;
  for (const std::string& line : bad) out += line + "\n";
  out += count_text(static_cast<int64_t>(count), "entry", "entries") + ", " + std::to_string(bad.size()) + " bad";
  if (remove_bad && !bad.empty()) out += ", removed";
  out += "\n";
  if (int rc = print(out); rc != kExitOk) return rc;
  if (bad.empty()) return kExitOk;
  if (!remove_bad) {
    return report_error(count_text(static_cast<int64_t>(bad.size()), "bad cache entry", "bad cache entries") +
                            " in '" + target.config.directory +
                            "'; 'convjit cache verify --remove-bad' removes them",
                        kExitFailure);
  }
  // verify() ignores a failed unlink; checking again tells whether removal worked.
  const size_t left = target.cache->verify(false).size();
  if (left != 0) {
    return report_error("cannot remove " +
                            count_text(static_cast<int64_t>(left), "bad cache entry", "bad cache entries") +
                            " in '" + target.config.directory + "'",
                        kExitFailure);
  }
  return kExitOk;
}

int clear(const CacheTarget& target) {
  if (!target.exists) return print("removed 0 entries\n");
  const size_t count = target.cache->list().size();
  Status cleared = target.cache->clear();
  if (!cleared.ok()) return report_error(cleared);
  return print("removed " + count_text(static_cast<int64_t>(count), "entry", "entries") + " from " +
               target.config.directory + "\n");
}

}  // namespace

int cache_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    return report_error("missing subcommand; expected stats, list, verify or clear (see 'convjit cache --help')",
                        kExitUsage);
  }
  const std::string& sub = args[0];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::fputs(usage_text("cache").c_str(), stdout);
    return kExitOk;
  }
  std::vector<ToolOption> options = {{"--cache-dir", true}};
  if (sub == "list") {
    options.push_back({"--json", false});
  } else if (sub == "verify") {
    options.push_back({"--remove-bad", false});
  } else if (sub != "stats" && sub != "clear") {
    return report_error("unknown cache subcommand '" + sub +
                            "'; expected stats, list, verify or clear (see 'convjit cache --help')",
                        kExitUsage);
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("cache " + sub, rest, options, &routed, &error)) return report_error(error);
  if (routed.help) {
    std::fputs(usage_text("cache").c_str(), stdout);
    return kExitOk;
  }
  // route_arguments accepts problem options and a descriptor; the cache takes neither.
  if (!routed.problem_tokens.empty()) {
    const std::string& first = routed.problem_tokens.front();
    return report_error((first == routed.descriptor ? "unexpected argument '" : "unknown option '") + first +
                            "' for 'convjit cache " + sub + "' (see 'convjit cache --help')",
                        kExitUsage);
  }
  CacheTarget target;
  if (!open_target(routed, &target, &error)) return report_error(error);
  if (sub == "stats") return stats(target);
  if (sub == "list") return list(target, routed.options.count("--json") != 0);
  if (sub == "verify") return verify(target, routed.options.count("--remove-bad") != 0);
  return clear(target);
}

}  // namespace convjit
