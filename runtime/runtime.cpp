// Runtime: the in-memory kernel cache (LRU; one compile per key, concurrent requests
// wait for it) in front of the disk cache, and the path spec -> algorithm ->
// schedule -> loaded code.
#include "convjit/runtime.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "code_fingerprint.h"
#include "compiled_kernel.h"
#include "convjit/tuning_database.h"
#include "schedule_templates.h"
#include "halide_runtime_library.h"
#include "host_target.h"
#include "lowering.h"
#include "pipeline_compiler.h"
#include "shared_object_loader.h"

namespace convjit {
namespace {

using CompileResult = StatusOr<std::shared_ptr<const CompiledKernel>>;

// The in-memory key: (canonical spec, target). Within one process the schedule and
// the code generator are functions of it, so it needs nothing else.
std::string memory_key(const ConvSpec& spec, const std::string& target_text) {
  return canonical_key(spec) + " target=" + target_text;
}

// The disk key adds what may differ between processes: how the schedule was chosen
// (the memory key names a requested one; the default one follows from the rest),
// Halide, and convjit's own code generation (which includes the default heuristics). It deliberately leaves out the host's name, the
// compiler that links the shared object (it only links, never generates code) and
// the time of the compile.
std::string disk_key(const std::string& memory_key, const std::string& schedule) {
  return "kernel " + memory_key + " schedule=" + schedule + " halide=" + halide_fingerprint() +
         " codegen=" + codegen_fingerprint();
}

std::string function_name(const std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "convjit_%016llx", static_cast<unsigned long long>(fnv1a64(key)));
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

StatusOr<CompiledKernel::ArgvFunction> find_entry(void* handle, const std::string& name) {
  auto entry = reinterpret_cast<CompiledKernel::ArgvFunction>(dlsym(handle, (name + "_argv").c_str()));
  if (!entry) return Status::internal("compiled kernel lacks its entry point " + name + "_argv");
  return entry;
}

// Where a kernel came from, for the counters.
enum class Origin { kCompiled, kDisk };

struct Produced {
  std::shared_ptr<const CompiledKernel> code;
  Origin origin;
};

// Resolves a requested schedule against the templates: it must name an applicable
// template and give every knob one of its listed values.
StatusOr<ScheduleChoice> resolve_schedule(const ScheduleRequest& request, const ConvAlgorithm& algorithm,
                                          const Halide::Target& target) {
  const ScheduleTemplate* chosen = find_template(request.template_name);
  if (!chosen) return Status::invalid_argument("unknown schedule template '" + request.template_name + "'");
  if (std::string why = chosen->why_not_applicable(algorithm, target); !why.empty())
    return Status::invalid_argument("schedule template " + request.template_name + " does not apply: " + why);
  auto params = ScheduleParams::parse(request.params);
  if (!params.ok()) return params.status();
  for (const Knob& knob : chosen->knobs(algorithm, target)) {
    if (!params->has(knob.name))
      return Status::invalid_argument("schedule " + request.template_name + "(" + request.params + "): knob " +
                                      knob.name + " is not set");
    const int value = params->get(knob.name);
    if (std::find(knob.choices.begin(), knob.choices.end(), value) == knob.choices.end())
      return Status::invalid_argument("schedule " + request.template_name + "(" + request.params + "): " +
                                      knob.name + "=" + std::to_string(value) +
                                      " is not one of the values this spec allows");
  }
  if (params->values().size() != chosen->knobs(algorithm, target).size())
    return Status::invalid_argument("schedule " + request.template_name + "(" + request.params +
                                    "): unknown knob for this template");
  return ScheduleChoice{chosen, *params};
}

// Disk cache, else Halide + LLVM + link; a compiled kernel is stored on disk.
StatusOr<Produced> produce(const ConvSpec& spec, const Halide::Target& target, const std::string& key,
                           DiskCache* disk, const std::optional<ScheduleRequest>& request) {
  const auto start = std::chrono::steady_clock::now();
  auto runtime = HalideRuntimeLibrary::get(target, disk);
  if (!runtime.ok()) return runtime.status();
  const std::string name = function_name(key);

  // A requested schedule (explicit or tuned) is named in the disk key; the default
  // one is a function of the spec, the target, the code generator (all in the key
  // already) and the host traits the target string cannot say (a Zen 4 and a Zen 5
  // sharing a cache directory share target strings too). So a disk hit needs no
  // lowering: the description comes from the entry.
  const std::string cpu_traits = default_schedule_cpu_traits(target);
  const std::string full_key =
      disk_key(key, request ? request->template_name + "(" + request->params + ")"
                            : cpu_traits.empty() ? "default" : "default cpu=" + cpu_traits);
  if (disk && disk->enabled()) {
    DiskCacheEntry stored;
    auto cached = disk->read(full_key, &stored);
    if (cached.ok()) {
      auto handle = load_shared_object(*cached, name, /*global_symbols=*/false);
      if (handle.ok()) {
        auto entry = find_entry(handle->handle, name);
        if (entry.ok()) {
          return Produced{std::make_shared<const CompiledKernel>(*handle, *entry, *runtime, target,
                                                                 stored.schedule, key, seconds_since(start),
                                                                 static_cast<int64_t>(cached->size())),
                          Origin::kDisk};
        }
        unload_shared_object(*handle);
      }
    }
  }

  std::optional<ConvAlgorithm> algorithm;
  ScheduleChoice schedule;
  {
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    Status resolved;
    CONVJIT_RETURN_IF_ERROR(catch_halide_errors("scheduling " + name, [&] {
      algorithm.emplace(lower(spec));
      if (request) {
        auto choice = resolve_schedule(*request, *algorithm, target);
        if (!choice.ok()) {
          resolved = choice.status();
          return;
        }
        schedule = *choice;
      } else {
        schedule = default_schedule(*algorithm, target);
      }
      schedule.apply_to(*algorithm, target);
    }));
    CONVJIT_RETURN_IF_ERROR(resolved);
  }

  auto scratch = ScratchDirectory::create();
  if (!scratch.ok()) return scratch.status();
  const std::string object = scratch->file(name + ".o");
  const std::string library = scratch->file(name + ".so");
  {
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    CONVJIT_RETURN_IF_ERROR(compile_to_object(*algorithm, target, name, object));
    algorithm.reset();  // Halide objects are released under the lock that made them
  }
  CONVJIT_RETURN_IF_ERROR(link_shared_object({object}, library));
  auto bytes = read_whole_file(library);
  if (!bytes.ok()) return bytes.status();
  if (disk) {
    DiskCacheEntry entry;
    entry.key = full_key;
    entry.kind = "kernel";
    entry.spec = canonical_key(spec);
    entry.target = target.to_string();
    entry.schedule = schedule.describe();
    (void)disk->write(entry, *bytes);
  }
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return Status::internal("cannot load compiled kernel " + library + ": " + dlerror());
  auto entry = find_entry(handle, name);
  if (!entry.ok()) {
    dlclose(handle);
    return entry.status();
  }
  return Produced{std::make_shared<const CompiledKernel>(LoadedObject{handle, -1}, *entry, *runtime, target, schedule.describe(),
                                                         key, seconds_since(start),
                                                         static_cast<int64_t>(bytes->size())),
                  Origin::kCompiled};
}

}  // namespace

class RuntimeImpl {
 public:
  explicit RuntimeImpl(const RuntimeOptions& options)
      : options_(options), disk_(DiskCache::open(options.disk)) {
    struct stat st;
    if (!options.tuning_database.empty() && stat(options.tuning_database.c_str(), &st) == 0) {
      auto db = TuningDatabase::open(options.tuning_database);
      if (db.ok()) {
        tuning_ = *db;
      } else {
        std::fprintf(stderr, "convjit: warning: tuning database not used: %s\n", db.status().message().c_str());
      }
    }
  }

  // The tuned schedule for (spec, target) when the database has one for this code
  // generator; a record naming a schedule that no longer fits is ignored.
  std::optional<ScheduleRequest> tuned_schedule(const ConvSpec& spec, const std::string& target_text) {
    if (!tuning_) return std::nullopt;
    auto best = tuning_->best(canonical_key(spec), target_text, tuning_codegen_fingerprint());
    if (!best.ok() || !best->has_value()) return std::nullopt;
    return ScheduleRequest{(*best)->schedule_template, (*best)->schedule_params};
  }

  StatusOr<Kernel> get_kernel(const ConvSpec& spec, const std::string& target_text,
                              const std::optional<ScheduleRequest>& request) {
    CONVJIT_RETURN_IF_ERROR(validate(spec));
    auto target = cached_target(target_text);
    if (!target.ok()) return target.status();
    std::string key = memory_key(spec, target->text);
    if (request) key += " schedule=" + request->template_name + "(" + request->params + ")";

    std::shared_future<CompileResult> pending;
    std::promise<CompileResult> promise;
    bool produce_here = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        ++stats_.hits;
        recency_.splice(recency_.begin(), recency_, it->second.recency);
        pending = it->second.result;
      } else {
        ++stats_.misses;
        pending = promise.get_future().share();
        recency_.push_front(key);
        entries_.emplace(key, Entry{pending, 0, recency_.begin(), false});
        produce_here = true;
      }
    }
    if (produce_here) {
      std::optional<ScheduleRequest> schedule = request;
      if (!schedule) schedule = tuned_schedule(spec, target->text);
      StatusOr<Produced> produced = produce(spec, target->target, key, disk_.get(), schedule);
      if (!produced.ok() && schedule && !request) {
        // A stale tuning record must not make a spec unusable: fall back to the default.
        produced = produce(spec, target->target, key, disk_.get(), std::nullopt);
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = entries_.find(key);
        if (produced.ok()) {
          const CompiledKernel& code = *produced->code;
          if (produced->origin == Origin::kDisk) {
            ++stats_.disk_hits;
            stats_.load_seconds += code.compile_seconds();
          } else {
            ++stats_.compiles;
            stats_.compile_seconds += code.compile_seconds();
          }
          it->second.bytes = code.code_bytes();
          it->second.ready = true;
          stats_.bytes += code.code_bytes();
          evict_over_bounds();
        } else {
          // Failures are not cached: a later request tries again.
          ++stats_.compile_failures;
          recency_.erase(it->second.recency);
          entries_.erase(it);
        }
      }
      promise.set_value(produced.ok() ? CompileResult(produced->code) : CompileResult(produced.status()));
    }
    const CompileResult& result = pending.get();
    if (!result.ok()) return result.status();
    return Kernel(std::make_shared<const KernelImpl>(spec, *result));
  }

  CacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    CacheStats s = stats_;
    s.entries = static_cast<int64_t>(entries_.size());
    s.disk_rejected = disk_->rejected_entries();
    s.disk_evictions = disk_->evicted_entries();
    return s;
  }

  DiskCache& disk() { return *disk_; }

 private:
  struct ResolvedTarget {
    Halide::Target target;
    std::string text;  // target.to_string(), the form keys use
  };

  // Parsing and printing a target string costs microseconds, as much as the rest of
  // a memory hit: each distinct text is resolved once.
  StatusOr<ResolvedTarget> cached_target(const std::string& text) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = targets_.find(text);
      if (it != targets_.end()) return it->second;
    }
    auto target = resolve_target(text);
    if (!target.ok()) return target.status();
    ResolvedTarget resolved{*target, target->to_string()};
    std::lock_guard<std::mutex> lock(mutex_);
    targets_.emplace(text, resolved);
    return resolved;
  }

  struct Entry {
    std::shared_future<CompileResult> result;
    int64_t bytes;
    std::list<std::string>::iterator recency;
    bool ready;  // in-flight entries are never evicted: requests wait on them
  };

  // Drops least recently used kernels (callers' handles keep theirs alive).
  void evict_over_bounds() {
    auto over = [&] {
      return static_cast<int64_t>(entries_.size()) > options_.max_memory_entries ||
             stats_.bytes > options_.max_memory_bytes;
    };
    for (auto it = recency_.end(); over() && it != recency_.begin();) {
      --it;
      auto entry = entries_.find(*it);
      if (!entry->second.ready) continue;
      stats_.bytes -= entry->second.bytes;
      ++stats_.evictions;
      entries_.erase(entry);
      it = recency_.erase(it);
    }
  }

  RuntimeOptions options_;
  std::shared_ptr<DiskCache> disk_;
  std::shared_ptr<TuningDatabase> tuning_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recency_;  // most recently used first
  std::unordered_map<std::string, ResolvedTarget> targets_;
  CacheStats stats_;
};

std::string RuntimeOptions::default_tuning_database_path() { return TuningDatabase::default_path(); }

Runtime::Runtime() : Runtime(RuntimeOptions()) {}
Runtime::Runtime(const RuntimeOptions& options) : impl_(std::make_unique<RuntimeImpl>(options)) {}
Runtime::~Runtime() = default;

Runtime& Runtime::global() {
  static Runtime* runtime = new Runtime();  // never destroyed: kernels may be used at exit
  return *runtime;
}

StatusOr<Kernel> Runtime::get_kernel(const ConvSpec& spec, const std::string& target) {
  return impl_->get_kernel(spec, target, std::nullopt);
}

StatusOr<Kernel> Runtime::get_kernel(const ConvSpec& spec, const std::string& target,
                                     const ScheduleRequest& schedule) {
  return impl_->get_kernel(spec, target, schedule);
}

CacheStats Runtime::stats() const { return impl_->stats(); }

StatusOr<EmitFormat> parse_emit_format(const std::string& text) {
  if (text == "stmt") return EmitFormat::kStmt;
  if (text == "html") return EmitFormat::kHtml;
  if (text == "asm") return EmitFormat::kAssembly;
  if (text == "object") return EmitFormat::kObject;
  if (text == "ptx") return EmitFormat::kPtx;
  return Status::invalid_argument("unknown emit format '" + text + "': expected one of stmt, html, asm, object, ptx");
}

Status Runtime::emit(const ConvSpec& spec, const std::string& target_text, EmitFormat format,
                     const std::string& path, const ScheduleRequest* request) {
  CONVJIT_RETURN_IF_ERROR(validate(spec));
  auto target = resolve_target(target_text);
  if (!target.ok()) return target.status();
  const std::string name = function_name(memory_key(spec, target->to_string()));
  static const ReadableForm kForms[] = {ReadableForm::kStmt, ReadableForm::kHtml, ReadableForm::kAssembly,
                                        ReadableForm::kObject};
  std::lock_guard<std::mutex> lock(halide_compile_mutex());
  Status status;
  Status caught = catch_halide_errors("generating " + name, [&] {
    ConvAlgorithm algorithm = lower(spec);
    ScheduleChoice schedule = default_schedule(algorithm, *target);
    if (request) {
      auto choice = resolve_schedule(*request, algorithm, *target);
      if (!choice.ok()) {
        status = choice.status();
        return;
      }
      schedule = *choice;
    }
    schedule.apply_to(algorithm, *target);
    if (format == EmitFormat::kPtx) {
      auto ptx = generate_ptx(algorithm, *target, name);
      if (!ptx.ok()) {
        status = ptx.status();
        return;
      }
      // A comment line (PTX accepts // comments) says what the kernels compute.
      status = write_whole_file(path, "// convjit " + canonical_key(spec) + "\n// schedule " +
                                         schedule.describe() + "\n// target " + target->to_string() + "\n" + *ptx);
      return;
    }
    status = write_generated_code(algorithm, *target, name, kForms[static_cast<int>(format)], path);
  });
  return caught.ok() ? status : caught;
}

StatusOr<ScheduleRequest> parse_schedule_request(const std::string& text, const ConvSpec& spec,
                                                 const std::string& target) {
  const size_t open = text.find('(');
  if (open != std::string::npos) {
    if (open == 0 || text.back() != ')') {
      return Status::invalid_argument("schedule '" + text + "': expected NAME or NAME(knob=value,...)");
    }
    return ScheduleRequest{text.substr(0, open), text.substr(open + 1, text.size() - open - 2)};
  }
  auto spaces = schedule_spaces(spec, target);
  if (!spaces.ok()) return spaces.status();
  for (const ScheduleSpace& space : *spaces) {
    if (space.template_name != text) continue;
    if (!space.not_applicable.empty()) {
      return Status::invalid_argument("schedule template " + text + " does not apply: " + space.not_applicable);
    }
    return ScheduleRequest{text, space.defaults};
  }
  return Status::invalid_argument("unknown schedule template '" + text + "' ('convjit info --schedules DESCRIPTOR' lists them)");
}

StatusOr<std::vector<ScheduleSpace>> schedule_spaces(const ConvSpec& spec, const std::string& target_text) {
  CONVJIT_RETURN_IF_ERROR(validate(spec));
  auto target = resolve_target(target_text);
  if (!target.ok()) return target.status();
  std::vector<ScheduleSpace> spaces;
  std::lock_guard<std::mutex> lock(halide_compile_mutex());
  Status caught = catch_halide_errors("listing schedules", [&] {
    const ConvAlgorithm algorithm = lower(spec);
    const ScheduleTemplate* chosen = default_schedule(algorithm, *target).schedule_template;
    for (const ScheduleTemplate* t : all_templates()) {
      ScheduleSpace space;
      space.template_name = t->name();
      space.is_default = t == chosen;
      space.not_applicable = t->why_not_applicable(algorithm, *target);
      if (space.not_applicable.empty()) {
        for (const Knob& k : t->knobs(algorithm, *target)) space.knobs.push_back({k.name, k.choices, k.meaning});
        space.defaults = t->defaults(algorithm, *target).to_string();
      }
      spaces.push_back(std::move(space));
    }
  });
  if (!caught.ok()) return caught;
  return spaces;
}

std::string host_target_string() { return host_cpu_target().to_string(); }

StatusOr<std::string> resolve_target_string(const std::string& text) {
  auto target = resolve_target(text);
  if (!target.ok()) return target.status();
  return target->to_string();
}

void set_num_threads(int threads) {
  auto runtime = HalideRuntimeLibrary::get(host_cpu_target(), &Runtime::global().impl_->disk());
  if (runtime.ok()) (*runtime)->set_num_threads(threads);
}

}  // namespace convjit
