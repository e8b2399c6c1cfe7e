// Runtime: the in-memory kernel cache (one compile per key, concurrent requests
// wait for it) and the compile path spec -> algorithm -> schedule -> loaded code.
#include "convjit/runtime.h"

#include <dlfcn.h>

#include <chrono>
#include <future>
#include <mutex>
#include <unordered_map>

#include "compiled_kernel.h"
#include "cpu_schedules.h"
#include "halide_runtime_library.h"
#include "lowering.h"
#include "pipeline_compiler.h"

namespace convjit {
namespace {

using CompileResult = StatusOr<std::shared_ptr<const CompiledKernel>>;

// The in-memory key: everything that decides the generated code. The schedule is
// a deterministic function of (canonical spec, target) for the default heuristics,
// so it need not be part of it yet.
std::string memory_key(const ConvSpec& spec, const Halide::Target& target) {
  return canonical_key(spec) + " target=" + target.to_string();
}

std::string function_name(const std::string& key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "convjit_%016llx", static_cast<unsigned long long>(fnv1a64(key)));
  return buf;
}

CompileResult compile(const ConvSpec& spec, const Halide::Target& target, const std::string& key) {
  const auto start = std::chrono::steady_clock::now();
  auto runtime = HalideRuntimeLibrary::get(target);
  if (!runtime.ok()) return runtime.status();
  auto scratch = ScratchDirectory::create();
  if (!scratch.ok()) return scratch.status();
  const std::string name = function_name(key);
  const std::string object = scratch->file(name + ".o");
  const std::string library = scratch->file(name + ".so");

  AppliedSchedule schedule;
  {
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    Status status = catch_halide_errors("scheduling " + name, [&] {
      ConvAlgorithm algorithm = lower(spec);
      schedule = apply_default_cpu_schedule(algorithm, target);
      Status compiled = compile_to_object(algorithm, target, name, object);
      if (!compiled.ok()) throw std::runtime_error(compiled.message());
    });
    if (!status.ok()) return status;
  }
  CONVJIT_RETURN_IF_ERROR(link_shared_object({object}, library));
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return Status::internal("cannot load compiled kernel " + library + ": " + dlerror());
  auto entry = reinterpret_cast<CompiledKernel::ArgvFunction>(dlsym(handle, (name + "_argv").c_str()));
  if (!entry) {
    dlclose(handle);
    return Status::internal("compiled kernel " + library + " lacks " + name + "_argv");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::shared_ptr<const CompiledKernel>(
      new CompiledKernel(handle, entry, target.to_string(), schedule.describe(), key, seconds));
}

}  // namespace

class RuntimeImpl {
 public:
  StatusOr<Kernel> get_kernel(const ConvSpec& spec, const std::string& target_text) {
    CONVJIT_RETURN_IF_ERROR(validate(spec));
    auto target = resolve_target(target_text);
    if (!target.ok()) return target.status();
    const std::string key = memory_key(spec, *target);

    std::shared_future<CompileResult> pending;
    std::promise<CompileResult> promise;
    bool compile_here = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        ++stats_.hits;
        pending = it->second;
      } else {
        ++stats_.misses;
        pending = promise.get_future().share();
        entries_.emplace(key, pending);
        compile_here = true;
      }
    }
    if (compile_here) {
      CompileResult result = compile(spec, *target, key);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (result.ok()) {
          stats_.compile_seconds += (*result)->compile_seconds();
        } else {
          // Failures are not cached: a later request tries again.
          ++stats_.compile_failures;
          entries_.erase(key);
        }
      }
      promise.set_value(std::move(result));
    }
    const CompileResult& result = pending.get();
    if (!result.ok()) return result.status();
    return Kernel(std::make_shared<const KernelImpl>(spec, *result));
  }

  CacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    CacheStats s = stats_;
    s.entries = static_cast<int64_t>(entries_.size());
    return s;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_future<CompileResult>> entries_;
  CacheStats stats_;
};

Runtime::Runtime() : impl_(std::make_unique<RuntimeImpl>()) {}
Runtime::~Runtime() = default;

Runtime& Runtime::global() {
  static Runtime* runtime = new Runtime();  // never destroyed: kernels may be used at exit
  return *runtime;
}

StatusOr<Kernel> Runtime::get_kernel(const ConvSpec& spec, const std::string& target) {
  return impl_->get_kernel(spec, target);
}

CacheStats Runtime::stats() const { return impl_->stats(); }

StatusOr<EmitFormat> parse_emit_format(const std::string& text) {
  if (text == "stmt") return EmitFormat::kStmt;
  if (text == "html") return EmitFormat::kHtml;
  if (text == "asm") return EmitFormat::kAssembly;
  if (text == "object") return EmitFormat::kObject;
  return Status::invalid_argument("unknown emit format '" + text + "': expected one of stmt, html, asm, object");
}

Status Runtime::emit(const ConvSpec& spec, const std::string& target_text, EmitFormat format,
                     const std::string& path) {
  CONVJIT_RETURN_IF_ERROR(validate(spec));
  auto target = resolve_target(target_text);
  if (!target.ok()) return target.status();
  const std::string name = function_name(memory_key(spec, *target));
  static const ReadableForm kForms[] = {ReadableForm::kStmt, ReadableForm::kHtml, ReadableForm::kAssembly,
                                        ReadableForm::kObject};
  std::lock_guard<std::mutex> lock(halide_compile_mutex());
  Status status;
  Status caught = catch_halide_errors("generating " + name, [&] {
    ConvAlgorithm algorithm = lower(spec);
    apply_default_cpu_schedule(algorithm, *target);
    status = write_generated_code(algorithm, *target, name, kForms[static_cast<int>(format)], path);
  });
  return caught.ok() ? status : caught;
}

std::string host_target_string() { return Halide::get_host_target().to_string(); }

void set_num_threads(int threads) {
  auto runtime = HalideRuntimeLibrary::get(Halide::get_host_target());
  if (runtime.ok()) (*runtime)->set_num_threads(threads);
}

}  // namespace convjit
