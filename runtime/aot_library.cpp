// Generation of AOT libraries: kernels compiled per spec and target, a generated C
// dispatcher (CPU-feature dispatch, tensor checks, the spec dispatcher, provenance),
// one Halide runtime, archived into a static library with a header and a CMake
// package config.
#include "convjit/aot_library.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "Halide.h"
#include "code_fingerprint.h"
#include "conv_gemm_bridge_object.h"
#include "convjit/runtime.h"
#include "convjit/tuning_database.h"
#include "schedule_templates.h"
#include "halide_runtime_library.h"
#include "lowering.h"
#include "pipeline_compiler.h"
#include "shared_object_loader.h"

namespace convjit {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProvenanceBegin = "CONVJIT-PROVENANCE-BEGIN\n";
constexpr const char* kProvenanceEnd = "CONVJIT-PROVENANCE-END";

bool is_c_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// A layer name as a C identifier: "resnet_50:res2a_branch2b" -> "resnet_50_res2a_branch2b".
std::string entry_identifier(const std::string& name) {
  std::string id;
  for (char c : name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (!id.empty() && std::isdigit(static_cast<unsigned char>(id[0]))) id = "_" + id;
  return id;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// A C string literal of arbitrary text.
std::string c_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n\"\n    \"";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Variant {
  std::string target;     // canonical target string
  std::string function;   // the kernel's symbol
  std::string schedule;   // description
  std::string tuning;     // the tuning record as JSON, or "null"
  std::vector<uint64_t> feature_words;
  bool cuda = false;      // runs on a CUDA device (the object embeds its PTX)
};

struct Entry {
  std::string identifier;
  std::string layer_name;
  ConvSpec spec;  // canonical
  std::vector<Variant> variants;
};

std::string shape_text(const int64_t* shape, int rank) {
  std::ostringstream out;
  out << "(";
  for (int i = 0; i < rank; ++i) out << (i ? ", " : "") << shape[i];
  return out.str() + ")";
}

// The spec of an entry in plain words, for the header.
std::string describe_in_words(const Entry& e, const std::string& prefix) {
  const ConvSpec& s = e.spec;
  const auto in = input_shape(s), out = output_shape(s);
  const auto w = weight_shape(s);
  const char* type = s.dtype == DataType::kFloat16 ? "float16 (uint16_t bits)" : "float32";
  std::ostringstream d;
  d << " * " << prefix << "_" << e.identifier << (e.layer_name.empty() ? "" : " (" + e.layer_name + ")") << ":\n"
    << " *   " << (s.transposed ? "transposed convolution" : "convolution") << ", batch " << s.n << ", "
    << s.c_in << " input channels " << s.h_in << "x" << s.w_in << " -> " << s.c_out << " output channels "
    << out[2] << "x" << out[3] << ",\n"
    << " *   kernel " << s.kh << "x" << s.kw << ", stride " << s.stride_h << "x" << s.stride_w
    << ", padding top " << s.pad_top << " bottom " << s.pad_bottom << " left " << s.pad_left << " right "
    << s.pad_right << ", dilation " << s.dilation_h << "x" << s.dilation_w << ", groups " << s.groups;
  if (s.transposed) d << ", output padding " << s.output_padding_h << "x" << s.output_padding_w;
  d << ",\n *   " << to_string(s.padding_mode) << " padding, " << to_string(s.conv_mode) << ", " << type
    << (s.dtype == DataType::kFloat16 ? " with float32 accumulation" : "") << ", "
    << (s.has_bias ? "with bias" : "no bias (pass NULL)") << ".\n"
    << " *   src " << shape_text(in.data(), 4) << " NCHW; weights " << shape_text(w.data(), weight_rank(s)) << " "
    << to_string(s.weight_layout) << "; " << (s.has_bias ? "bias (" + std::to_string(s.c_out) + "); " : "")
    << "dst " << shape_text(out.data(), 4) << " NCHW.\n"
    << " *   descriptor: " << print_descriptor(s) << "\n";
  return d.str();
}

std::vector<uint64_t> feature_words(const Halide::Target& t) {
  std::vector<uint64_t> words((halide_target_feature_end + 63) / 64, 0);
  for (int f = 0; f < halide_target_feature_end; ++f) {
    if (t.has_feature(static_cast<Halide::Target::Feature>(f))) words[f / 64] |= uint64_t{1} << (f % 64);
  }
  return words;
}

std::string record_json(const TuningRecord& r) {
  std::ostringstream j;
  j << "{\"schedule\": \"" << json_escape(r.schedule_template + "(" + r.schedule_params + ")")
    << "\", \"time_ms\": " << r.time_ms << ", \"default_time_ms\": " << r.default_time_ms
    << ", \"max_error\": " << r.max_error << ", \"created_unix\": " << r.created_unix << "}";
  return j.str();
}

std::string header_text(const std::string& name, const std::vector<Entry>& entries,
                        const std::vector<std::string>& targets) {
  std::string guard = name;
  for (char& c : guard) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::ostringstream h;
  h << "/* " << name << ".h: convolution kernels compiled ahead of time by convjit " << CONVJIT_VERSION
    << " (Halide " << CONVJIT_HALIDE_VERSION << ").\n"
    << " *\n"
    << " * Link with lib" << name << ".a, -lpthread and -ldl (or find_package(" << name << ") and the\n"
    << " * target " << name << "::" << name << "); neither Halide nor LLVM is needed.\n"
    << " *\n"
    << " * Tensors are caller-owned: " << name << "_tensor gives a pointer, the rank, the shape and\n"
    << " * the strides in elements, outermost first (NCHW for activations); all-zero strides\n"
    << " * mean dense C order. The innermost stride must be 1. float16 tensors hold IEEE\n"
    << " * half bits (uint16_t). `memory` says where data lives: 0 host memory, 1 a CUDA\n"
    << " * device pointer (CUDA targets only; host tensors given to a CUDA kernel are copied\n"
    << " * to the device and dst back). Every function returns " << guard << "_OK (0) or a\n"
    << " * negative error code (" << name << "_error_string names it); kernels are safe to call\n"
    << " * from many threads at once and run on the library's thread pool.\n"
    << " *\n"
    << " * Targets compiled in, in order of preference (the first this machine supports\n"
    << " * runs; a CUDA target needs the NVIDIA driver and a device, and embeds its PTX):\n";
  for (const std::string& t : targets) h << " *   " << t << "\n";
  h << " */\n#ifndef " << guard << "_H\n#define " << guard << "_H\n\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << "#define " << guard << "_OK 0\n"
    << "#define " << guard << "_ERROR_TENSOR (-1001)     /* a tensor's rank, shape, strides or data */\n"
    << "#define " << guard << "_ERROR_NO_TARGET (-1002)  /* this machine supports none of the targets */\n"
    << "#define " << guard << "_ERROR_NO_KERNEL (-1003)  /* no entry for this spec */\n\n"
    << "typedef struct " << name << "_tensor {\n  void *data;\n  int32_t rank;\n  int64_t shape[5];\n"
    << "  int64_t strides[5];\n  int32_t memory;  /* 0 host, 1 CUDA device pointer */\n} " << name
    << "_tensor;\n\n"
    << "/* A spec in convjit's canonical form (the values the entries below list). Enums:\n"
    << " * padding_mode 0 zeros 1 reflect 2 replicate 3 circular; conv_mode 0\n"
    << " * cross_correlation 1 convolution; dtype 0 f32 1 f16; compute_mode 0 default 1\n"
    << " * float32; weight_layout 0 oihw 1 goihw 2 iohw 3 mihw 4 oihw16o. */\n"
    << "typedef struct " << name << "_spec {\n"
    << "  int64_t n, c_in, h_in, w_in, c_out, kh, kw, stride_h, stride_w;\n"
    << "  int64_t pad_top, pad_bottom, pad_left, pad_right, dilation_h, dilation_w, groups;\n"
    << "  int32_t transposed;\n  int64_t output_padding_h, output_padding_w;\n"
    << "  int32_t padding_mode, conv_mode, dtype, compute_mode, weight_layout, has_bias;\n} " << name
    << "_spec;\n\n/* Entry points, one per spec:\n *\n";
  for (const Entry& e : entries) h << describe_in_words(e, name) << " *\n";
  h << " */\n";
  for (const Entry& e : entries) {
    h << "int " << name << "_" << e.identifier << "(const " << name << "_tensor *src, const " << name
      << "_tensor *weights,\n    const " << name << "_tensor *bias, " << name << "_tensor *dst);\n";
  }
  h << "\n/* Runs the entry whose canonical spec equals *spec (" << guard << "_ERROR_NO_KERNEL if none). */\n"
    << "int " << name << "_run(const " << name << "_spec *spec, const " << name << "_tensor *src,\n"
    << "    const " << name << "_tensor *weights, const " << name << "_tensor *bias, " << name
    << "_tensor *dst);\n\n"
    << "/* Number of entries, and the canonical spec and name of entry i. */\n"
    << "int " << name << "_entry_count(void);\n"
    << "const " << name << "_spec *" << name << "_entry_spec(int i);\n"
    << "const char *" << name << "_entry_name(int i);\n\n"
    << "/* The CUDA context (CUcontext) and stream (CUstream) the library's CUDA kernels\n"
    << " * run on, for callers that own them; NULL context (the default) lets Halide's\n"
    << " * runtime create its own. No effect in a library without CUDA targets. */\n"
    << "void " << name << "_set_cuda_context(void *context, void *stream);\n\n"
    << "/* The target string chosen for this machine, or NULL when it supports none. */\n"
    << "const char *" << name << "_selected_target(void);\n\n"
    << "/* Provenance of every kernel as JSON: convjit and Halide versions, target,\n"
    << " * schedule and tuning record. */\n"
    << "const char *" << name << "_provenance(void);\n\n"
    << "const char *" << name << "_error_string(int code);\n\n"
    << "/* Worker threads of the library's thread pool (0 = one per core). */\n"
    << "void " << name << "_set_num_threads(int threads);\n\n"
    << "#ifdef __cplusplus\n}  /* extern \"C\" */\n#endif\n\n#endif  /* " << guard << "_H */\n";
  return h.str();
}

std::string dispatcher_text(const std::string& name, const std::vector<Entry>& entries,
                            const std::vector<std::string>& targets, const std::string& provenance) {
  std::string guard = name;
  for (char& c : guard) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::ostringstream c;
  c << "/* Generated by convjit: the dispatcher of " << name << " (compiled into lib" << name << ".a). */\n"
    << "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n#include \"HalideRuntime.h\"\n#include \""
    << name << ".h\"\n\n";
  for (const Entry& e : entries) {
    for (const Variant& v : e.variants) {
      c << "extern int " << v.function << "(struct halide_buffer_t *, struct halide_buffer_t *, "
        << (e.spec.has_bias ? "struct halide_buffer_t *, " : "") << "struct halide_buffer_t *);\n";
    }
  }
  const size_t words = entries.front().variants.front().feature_words.size();
  bool any_cuda = false, any_cpu = false;
  for (const Variant& v : entries.front().variants) (v.cuda ? any_cuda : any_cpu) = true;
  c << "\nstatic const char *const kTargets[] = {";
  for (const std::string& t : targets) c << c_string(t) << ", ";
  c << "NULL};\nstatic const uint64_t kFeatures[][" << words << "] = {\n";
  for (const Variant& v : entries.front().variants) {
    c << "  {";
    for (uint64_t w : v.feature_words) c << w << "ull, ";
    c << "},\n";
  }
  c << "};\nstatic const int kNeedsCuda[] = {";
  for (const Variant& v : entries.front().variants) c << (v.cuda ? 1 : 0) << ", ";
  c << "};\n\n";
  if (any_cuda) {
    c << "#include <dlfcn.h>\n#include \"HalideRuntimeCuda.h\"\n\n"
      << "/* Whether the NVIDIA driver loads and reports a device; checked once. */\n"
      << "static int cuda_device_present(void) {\n"
      << "  static volatile int present = -1;\n"
      << "  if (present < 0) {\n    int found = 0, count = 0;\n"
      << "    void *lib = dlopen(\"libcuda.so.1\", RTLD_NOW | RTLD_LOCAL);\n"
      << "    if (lib != NULL) {\n"
      << "      int (*init)(unsigned) = (int (*)(unsigned))dlsym(lib, \"cuInit\");\n"
      << "      int (*get_count)(int *) = (int (*)(int *))dlsym(lib, \"cuDeviceGetCount\");\n"
      << "      found = init != NULL && get_count != NULL && init(0) == 0 && get_count(&count) == 0 && count > 0;\n"
      << "    }\n    present = found;\n  }\n  return present;\n}\n\n"
      << "static void *chosen_context, *chosen_stream;\n"
      << "static halide_cuda_acquire_context_t halide_acquire;\n"
      << "static halide_cuda_release_context_t halide_release;\n"
      << "static halide_cuda_get_stream_t halide_stream;\n"
      << "static int acquire_context(void *uc, void **ctx, bool create) {\n"
      << "  if (chosen_context == NULL) return halide_acquire(uc, ctx, create);\n"
      << "  *ctx = chosen_context;\n  return 0;\n}\n"
      << "static int release_context(void *uc) { return chosen_context == NULL ? halide_release(uc) : 0; }\n"
      << "static int get_stream(void *uc, void *ctx, void **stream) {\n"
      << "  if (chosen_context == NULL) return halide_stream(uc, ctx, stream);\n"
      << "  *stream = chosen_stream;\n  return 0;\n}\n"
      << "void " << name << "_set_cuda_context(void *context, void *stream) {\n"
      << "  if (halide_acquire == NULL) {\n"
      << "    halide_acquire = halide_set_cuda_acquire_context(acquire_context);\n"
      << "    halide_release = halide_set_cuda_release_context(release_context);\n"
      << "    halide_stream = halide_set_cuda_get_stream(get_stream);\n  }\n"
      << "  chosen_context = context;\n  chosen_stream = stream;\n}\n\n"
      << "/* Host tensors: inputs marked dirty on the host so Halide copies them in.\n"
      << " * Device tensors: wrapped in place. */\n"
      << "static int cuda_attach(const " << name << "_tensor *t, struct halide_buffer_t *b, int is_input) {\n"
      << "  if (t->memory == 1) {\n    b->host = NULL;\n"
      << "    return halide_cuda_wrap_device_ptr(NULL, b, (uint64_t)(uintptr_t)t->data);\n  }\n"
      << "  if (is_input) b->flags |= halide_buffer_flag_host_dirty;\n  return 0;\n}\n"
      << "static void cuda_detach(const " << name << "_tensor *t, struct halide_buffer_t *b) {\n"
      << "  if (b->device == 0) return;\n"
      << "  if (t->memory == 1) halide_cuda_detach_device_ptr(NULL, b);\n"
      << "  else halide_device_free(NULL, b);\n}\n\n";
  } else {
    c << "static int cuda_device_present(void) { return 0; }\n"
      << "void " << name << "_set_cuda_context(void *context, void *stream) { (void)context; (void)stream; }\n\n";
  }
  c << "/* The first target this machine supports; computed once (an idempotent race). */\n"
    << "static int selected_target(void) {\n"
    << "  static volatile int chosen = -2;\n"
    << "  if (chosen == -2) {\n    int found = -1;\n"
    << "    for (int t = 0; kTargets[t] != NULL; ++t) {\n"
    << "      if (kNeedsCuda[t] && !cuda_device_present()) continue;\n"
    << "      if (halide_can_use_target_features(" << words << ", kFeatures[t])) { found = t; break; }\n"
    << "    }\n    chosen = found;\n  }\n  return chosen;\n}\n\n"
    << "const char *" << name << "_selected_target(void) {\n"
    << "  int t = selected_target();\n  return t < 0 ? NULL : kTargets[t];\n}\n\n";
  if (any_cpu) c << "static int on_host(const " << name << "_tensor *t) { return t == NULL || t->memory == 0; }\n\n";
  c << "static int describe(const " << name << "_tensor *t, int rank, const int64_t *expected, uint8_t bits,\n"
    << "                    struct halide_buffer_t *b, struct halide_dimension_t *dims) {\n"
    << "  if (t == NULL || t->data == NULL || t->rank != rank) return " << guard << "_ERROR_TENSOR;\n"
    << "  int dense = 1;\n  for (int d = 0; d < rank; ++d) {\n"
    << "    if (t->shape[d] != expected[d]) return " << guard << "_ERROR_TENSOR;\n"
    << "    if (t->strides[d] != 0) dense = 0;\n  }\n"
    << "  int64_t stride = 1;\n  memset(b, 0, sizeof *b);\n"
    << "  for (int d = rank - 1; d >= 0; --d) {\n"
    << "    int64_t s = dense ? stride : t->strides[d];\n"
    << "    if (s < 0 || s > INT32_MAX || (d == rank - 1 && s != 1)) return " << guard << "_ERROR_TENSOR;\n"
    << "    dims[rank - 1 - d].min = 0;\n    dims[rank - 1 - d].extent = (int32_t)expected[d];\n"
    << "    dims[rank - 1 - d].stride = (int32_t)s;\n    dims[rank - 1 - d].flags = 0;\n"
    << "    stride *= expected[d];\n  }\n"
    << "  b->host = (uint8_t *)t->data;\n  b->type.code = halide_type_float;\n  b->type.bits = bits;\n"
    << "  b->type.lanes = 1;\n  b->dimensions = rank;\n  b->dim = dims;\n  return 0;\n}\n\n";

  for (const Entry& e : entries) {
    const ConvSpec& s = e.spec;
    const auto in = input_shape(s), out = output_shape(s);
    const auto w = weight_shape(s);
    const int bits = s.dtype == DataType::kFloat16 ? 16 : 32;
    auto array = [](const int64_t* v, int n) {
      std::ostringstream a;
      a << "{";
      for (int i = 0; i < n; ++i) a << v[i] << (i + 1 < n ? ", " : "");
      return a.str() + "}";
    };
    c << "int " << name << "_" << e.identifier << "(const " << name << "_tensor *src, const " << name
      << "_tensor *weights,\n    const " << name << "_tensor *bias, " << name << "_tensor *dst) {\n"
      << "  static const int64_t src_shape[] = " << array(in.data(), 4) << ";\n"
      << "  static const int64_t weight_shape[] = " << array(w.data(), weight_rank(s)) << ";\n"
      << "  static const int64_t bias_shape[] = {" << s.c_out << "};\n"
      << "  static const int64_t dst_shape[] = " << array(out.data(), 4) << ";\n"
      << "  struct halide_buffer_t bs, bw, bb, bd;\n"
      << "  struct halide_dimension_t ds[4], dw[5], db[1], dd[4];\n"
      << "  int err;\n"
      << "  if ((err = describe(src, 4, src_shape, " << bits << ", &bs, ds))) return err;\n"
      << "  if ((err = describe(weights, " << weight_rank(s) << ", weight_shape, " << bits << ", &bw, dw))) return err;\n"
      << "  if ((err = describe(dst, 4, dst_shape, " << bits << ", &bd, dd))) return err;\n";
    if (s.has_bias) {
      c << "  if ((err = describe(bias, 1, bias_shape, " << bits << ", &bb, db))) return err;\n";
    } else {
      c << "  (void)bb; (void)db; (void)bias_shape;\n  if (bias != NULL) return " << guard << "_ERROR_TENSOR;\n";
    }
    c << "  switch (selected_target()) {\n";
    const std::string call_args = std::string("(&bs, &bw, ") + (s.has_bias ? "&bb, " : "") + "&bd)";
    for (size_t t = 0; t < e.variants.size(); ++t) {
      if (!e.variants[t].cuda) {
        c << "    case " << t << ":\n"
          << "      if (!on_host(src) || !on_host(weights) || !on_host(bias) || !on_host(dst)) return " << guard
          << "_ERROR_TENSOR;\n"
          << "      return " << e.variants[t].function << call_args << ";\n";
        continue;
      }
      c << "    case " << t << ": {\n"
        << "      err = cuda_attach(src, &bs, 1);\n"
        << "      if (!err) err = cuda_attach(weights, &bw, 1);\n"
        << (s.has_bias ? "      if (!err) err = cuda_attach(bias, &bb, 1);\n" : "")
        << "      if (!err) err = cuda_attach(dst, &bd, 0);\n"
        << "      if (!err) err = " << e.variants[t].function << call_args << ";\n"
        << "      if (!err && dst->memory == 0) err = halide_copy_to_host(NULL, &bd);\n"
        << "      cuda_detach(src, &bs);\n      cuda_detach(weights, &bw);\n"
        << (s.has_bias ? "      cuda_detach(bias, &bb);\n" : "")
        << "      cuda_detach(dst, &bd);\n      return err;\n    }\n";
    }
    c << "    default: return " << guard << "_ERROR_NO_TARGET;\n  }\n}\n\n";
  }

  c << "static const " << name << "_spec kSpecs[] = {\n";
  for (const Entry& e : entries) {
    const ConvSpec& s = e.spec;
    c << "  {" << s.n << ", " << s.c_in << ", " << s.h_in << ", " << s.w_in << ", " << s.c_out << ", " << s.kh
      << ", " << s.kw << ", " << s.stride_h << ", " << s.stride_w << ", " << s.pad_top << ", " << s.pad_bottom
      << ", " << s.pad_left << ", " << s.pad_right << ", " << s.dilation_h << ", " << s.dilation_w << ", "
      << s.groups << ", " << (s.transposed ? 1 : 0) << ", " << s.output_padding_h << ", " << s.output_padding_w
      << ", " << static_cast<int>(s.padding_mode) << ", " << static_cast<int>(s.conv_mode) << ", "
      << static_cast<int>(s.dtype) << ", " << static_cast<int>(s.compute_mode) << ", "
      << static_cast<int>(s.weight_layout) << ", " << (s.has_bias ? 1 : 0) << "},\n";
  }
  c << "};\nstatic const char *const kNames[] = {";
  for (const Entry& e : entries) c << c_string(e.identifier) << ", ";
  c << "};\ntypedef int (*entry_fn)(const " << name << "_tensor *, const " << name << "_tensor *, const " << name
    << "_tensor *, " << name << "_tensor *);\nstatic const entry_fn kEntries[] = {";
  for (const Entry& e : entries) c << name << "_" << e.identifier << ", ";
  c << "};\n\nstatic int same_spec(const " << name << "_spec *a, const " << name << "_spec *b) {\n"
    << "  return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in && a->w_in == b->w_in &&\n"
    << "         a->c_out == b->c_out && a->kh == b->kh && a->kw == b->kw && a->stride_h == b->stride_h &&\n"
    << "         a->stride_w == b->stride_w && a->pad_top == b->pad_top && a->pad_bottom == b->pad_bottom &&\n"
    << "         a->pad_left == b->pad_left && a->pad_right == b->pad_right && a->dilation_h == b->dilation_h &&\n"
    << "         a->dilation_w == b->dilation_w && a->groups == b->groups && a->transposed == b->transposed &&\n"
    << "         a->output_padding_h == b->output_padding_h && a->output_padding_w == b->output_padding_w &&\n"
    << "         a->padding_mode == b->padding_mode && a->conv_mode == b->conv_mode && a->dtype == b->dtype &&\n"
    << "         a->compute_mode == b->compute_mode && a->weight_layout == b->weight_layout &&\n"
    << "         a->has_bias == b->has_bias;\n}\n\n"
    << "int " << name << "_entry_count(void) { return " << entries.size() << "; }\n"
    << "const " << name << "_spec *" << name << "_entry_spec(int i) {\n  return i >= 0 && i < " << entries.size()
    << " ? &kSpecs[i] : NULL;\n}\n"
    << "const char *" << name << "_entry_name(int i) {\n  return i >= 0 && i < " << entries.size()
    << " ? kNames[i] : NULL;\n}\n\n"
    << "int " << name << "_run(const " << name << "_spec *spec, const " << name << "_tensor *src,\n    const "
    << name << "_tensor *weights, const " << name << "_tensor *bias, " << name << "_tensor *dst) {\n"
    << "  for (int i = 0; i < " << entries.size() << "; ++i) {\n"
    << "    if (spec != NULL && same_spec(spec, &kSpecs[i])) return kEntries[i](src, weights, bias, dst);\n"
    << "  }\n  return " << guard << "_ERROR_NO_KERNEL;\n}\n\n"
    << "/* Between markers so that `convjit aot --inspect` finds it in the archive. */\n"
    << "static const char kProvenance[] = " << c_string(kProvenanceBegin + provenance) << " \"\\0\" "
    << c_string(kProvenanceEnd) << ";\n"
    << "const char *" << name << "_provenance(void) { return kProvenance + " << std::string(kProvenanceBegin).size()
    << "; }\n\n"
    << "const char *" << name << "_error_string(int code) {\n"
    << "  switch (code) {\n    case " << guard << "_OK: return \"ok\";\n"
    << "    case " << guard << "_ERROR_TENSOR: return \"a tensor's data, rank, shape or strides do not match the entry\";\n"
    << "    case " << guard << "_ERROR_NO_TARGET: return \"this machine supports none of the library's targets\";\n"
    << "    case " << guard << "_ERROR_NO_KERNEL: return \"the library has no entry for this spec\";\n"
    << "    default: return \"Halide runtime error (see stderr)\";\n  }\n}\n\n"
    << "extern int halide_set_num_threads(int n);\n"
    << "void " << name << "_set_num_threads(int threads) { halide_set_num_threads(threads); }\n";
  return c.str();
}

std::string cmake_config_text(const std::string& name) {
  std::ostringstream c;
  c << "# Generated by convjit: find_package(" << name << ") gives the imported target " << name << "::" << name
    << ".\n"
    << "include(CMakeFindDependencyMacro)\nfind_dependency(Threads)\n"
    << "if(NOT TARGET " << name << "::" << name << ")\n"
    << "  add_library(" << name << "::" << name << " STATIC IMPORTED)\n"
    << "  get_filename_component(_" << name << "_prefix \"${CMAKE_CURRENT_LIST_DIR}/../../..\" ABSOLUTE)\n"
    << "  set_target_properties(" << name << "::" << name << " PROPERTIES\n"
    << "    IMPORTED_LOCATION \"${_" << name << "_prefix}/lib/lib" << name << ".a\"\n"
    << "    INTERFACE_INCLUDE_DIRECTORIES \"${_" << name << "_prefix}/include\"\n"
    << "    INTERFACE_LINK_LIBRARIES \"Threads::Threads;${CMAKE_DL_LIBS}\")\n"
    << "endif()\n";
  return c.str();
}

// Removes the temporary directory unless the work was committed.
class TemporaryTree {
 public:
  explicit TemporaryTree(std::string path) : path_(std::move(path)) {}
  ~TemporaryTree() {
    if (!path_.empty()) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  void release() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

Status generate_aot_library(const AotOptions& options) {
  auto progress = [&](const std::string& line) {
    if (options.on_progress) options.on_progress(line);
  };
  if (!is_c_identifier(options.name))
    return Status::invalid_argument("library name '" + options.name +
                                    "': must be a C identifier (letters, digits, '_', not starting with a digit)");
  if (options.problems.empty()) return Status::invalid_argument("no specs: the library needs at least one");
  if (options.targets.empty()) return Status::invalid_argument("no targets: give at least one (e.g. host)");
  if (options.output_directory.empty()) return Status::invalid_argument("no output directory");

  // Targets, resolved and distinct.
  std::vector<Halide::Target> targets;
  std::vector<std::string> target_strings;
  for (const std::string& text : options.targets) {
    auto target = resolve_target(text);
    if (!target.ok()) return target.status();
    const std::string canonical = target->to_string();
    for (const std::string& seen : target_strings) {
      if (seen == canonical) return Status::invalid_argument("target '" + text + "' is listed twice (" + canonical + ")");
    }
    targets.push_back(*target);
    target_strings.push_back(canonical);
  }

  // Entries, named and distinct.
  std::vector<Entry> entries;
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < options.problems.size(); ++i) {
    const Problem& p = options.problems[i];
    CONVJIT_RETURN_IF_ERROR(validate(p.spec));
    Entry e;
    e.layer_name = p.name;
    e.identifier = p.name.empty() ? "conv" + std::to_string(i) : entry_identifier(p.name);
    e.spec = canonicalize(p.spec);
    auto [it, fresh] = names.emplace(e.identifier, i);
    if (!fresh) {
      return Status::invalid_argument("duplicate entry name '" + e.identifier + "' (specs " +
                                      std::to_string(it->second + 1) + " and " + std::to_string(i + 1) +
                                      "): give the layers distinct names (n<name> in the descriptor)");
    }
    entries.push_back(std::move(e));
  }

  const fs::path final_dir(options.output_directory);
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    if (!fs::is_directory(final_dir, ec) || !fs::is_empty(final_dir, ec))
      return Status::invalid_argument("output directory '" + options.output_directory +
                                      "' exists and is not an empty directory");
  }
  const fs::path temp_dir = final_dir.string() + ".partial-" + std::to_string(getpid());
  fs::remove_all(temp_dir, ec);
  if (!fs::create_directories(temp_dir / "include", ec) || !fs::create_directories(temp_dir / "obj", ec) ||
      !fs::create_directories(temp_dir / "lib" / "cmake" / options.name, ec)) {
    return Status::invalid_argument("cannot create '" + temp_dir.string() + "': " + ec.message());
  }
  TemporaryTree cleanup(temp_dir.string());

  std::shared_ptr<TuningDatabase> db;
  struct stat st;
  if (!options.tuning_database.empty() && stat(options.tuning_database.c_str(), &st) == 0) {
    auto opened = TuningDatabase::open(options.tuning_database);
    if (!opened.ok()) return opened.status();
    db = *opened;
  }

  std::vector<std::string> objects;
  std::ostringstream provenance;
  provenance << "[\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    for (size_t t = 0; t < targets.size(); ++t) {
      Variant v;
      v.target = target_strings[t];
      v.function = options.name + "_" + e.identifier + "_t" + std::to_string(t);
      v.feature_words = feature_words(targets[t]);
      v.cuda = is_gpu_target(targets[t]);
      v.tuning = "null";
      std::optional<ScheduleRequest> tuned;
      if (db) {
        auto best = db->best(canonical_key(e.spec), v.target, tuning_codegen_fingerprint());
        if (best.ok() && best->has_value()) {
          tuned = ScheduleRequest{(*best)->schedule_template, (*best)->schedule_params};
          v.tuning = record_json(**best);
        }
      }
      progress("[aot] " + std::to_string(i + 1) + "/" + std::to_string(entries.size()) + " " + e.identifier +
               " for " + v.target + (tuned ? " (tuned)" : ""));
      const std::string object = (temp_dir / "obj" / (v.function + ".o")).string();
      std::lock_guard<std::mutex> lock(halide_compile_mutex());
      Status status;
      Status caught = catch_halide_errors("compiling " + v.function, [&] {
        ConvAlgorithm algorithm = lower(e.spec);
        ScheduleChoice choice = default_schedule(algorithm, targets[t]);
        if (tuned) {
          const ScheduleTemplate* chosen = find_template(tuned->template_name);
          auto params = ScheduleParams::parse(tuned->params);
          if (chosen && params.ok() && chosen->why_not_applicable(algorithm, targets[t]).empty()) {
            choice = {chosen, *params};
          } else {
            v.tuning = "null";  // a stale record: the default serves
          }
        }
        choice.apply_to(algorithm, targets[t]);
        v.schedule = choice.describe();
        status = compile_to_object(algorithm, targets[t], v.function, object);
      });
      CONVJIT_RETURN_IF_ERROR(caught);
      CONVJIT_RETURN_IF_ERROR(status);
      objects.push_back(object);
      provenance << (objects.size() > 1 ? ",\n" : "") << "{\"entry\": \"" << json_escape(e.identifier)
                 << "\", \"layer\": \"" << json_escape(e.layer_name) << "\", \"descriptor\": \""
                 << json_escape(print_descriptor(e.spec)) << "\", \"spec_key\": \"" << json_escape(canonical_key(e.spec))
                 << "\", \"target\": \"" << json_escape(v.target) << "\", \"function\": \"" << v.function
                 << "\", \"schedule\": \"" << json_escape(v.schedule) << "\", \"tuning_record\": " << v.tuning
                 << ", \"convjit_version\": \"" << CONVJIT_VERSION << "\", \"halide_version\": \""
                 << CONVJIT_HALIDE_VERSION << "\", \"codegen\": \"" << codegen_fingerprint() << "\"}";
      e.variants.push_back(std::move(v));
    }
  }
  provenance << "\n]\n";

  progress("[aot] Halide runtime, dispatcher, archive");
  {
    const std::string runtime_object = (temp_dir / "obj" / "halide_runtime.o").string();
    std::lock_guard<std::mutex> lock(halide_compile_mutex());
    CONVJIT_RETURN_IF_ERROR(catch_halide_errors("compiling the Halide runtime", [&] {
      Halide::Target runtime_target(targets[0].os, targets[0].arch, targets[0].bits);
      for (const Halide::Target& t : targets) {
        if (is_gpu_target(t)) runtime_target.set_feature(Halide::Target::CUDA);
      }
      Halide::compile_standalone_runtime(runtime_object, runtime_target);
    }));
    objects.push_back(runtime_object);
  }
  if (std::any_of(targets.begin(), targets.end(), [](const Halide::Target& t) { return is_gpu_target(t); })) {
    // gpu_cublas kernels (tuned choices) call the GEMM form's extern stage.
    const std::string bridge_object = (temp_dir / "obj" / "conv_gemm_bridge.o").string();
    CONVJIT_RETURN_IF_ERROR(write_whole_file(bridge_object, conv_gemm_bridge_object()));
    objects.push_back(bridge_object);
  }
  const std::string header = (temp_dir / "include" / (options.name + ".h")).string();
  CONVJIT_RETURN_IF_ERROR(write_whole_file(header, header_text(options.name, entries, target_strings)));
  const std::string dispatcher_source = (temp_dir / "obj" / (options.name + "_dispatch.c")).string();
  CONVJIT_RETURN_IF_ERROR(
      write_whole_file(dispatcher_source, dispatcher_text(options.name, entries, target_strings, provenance.str())));
  const std::string dispatcher_object = (temp_dir / "obj" / (options.name + "_dispatch.o")).string();
  CONVJIT_RETURN_IF_ERROR(run_program({cxx_driver(), "-x", "c", "-std=c99", "-O2", "-fPIC", "-Wall", "-c",
                                       "-I" + std::string(CONVJIT_HALIDE_INCLUDE_DIR),
                                       "-I" + (temp_dir / "include").string(), dispatcher_source, "-o",
                                       dispatcher_object}));
  objects.push_back(dispatcher_object);
  std::vector<std::string> ar = {"ar", "rcs", (temp_dir / "lib" / ("lib" + options.name + ".a")).string()};
  ar.insert(ar.end(), objects.begin(), objects.end());
  CONVJIT_RETURN_IF_ERROR(run_program(ar));
  CONVJIT_RETURN_IF_ERROR(write_whole_file((temp_dir / "lib" / "cmake" / options.name / (options.name + "Config.cmake")).string(),
                                     cmake_config_text(options.name)));
  fs::remove_all(temp_dir / "obj", ec);

  if (fs::exists(final_dir, ec)) fs::remove(final_dir, ec);  // empty, checked above
  fs::rename(temp_dir, final_dir, ec);
  if (ec) return Status::internal("cannot move the library into '" + options.output_directory + "': " + ec.message());
  cleanup.release();
  progress("[aot] wrote " + options.output_directory);
  return Status();
}

StatusOr<std::string> inspect_aot_library(const std::string& path) {
  auto bytes = read_whole_file(path);
  if (!bytes.ok()) return bytes.status();
  const size_t begin = bytes->find(kProvenanceBegin);
  if (begin == std::string::npos)
    return Status::invalid_argument("'" + path + "' holds no convjit provenance: not a library from convjit aot");
  const size_t start = begin + std::string(kProvenanceBegin).size();
  const size_t end = bytes->find(std::string("\0", 1) + kProvenanceEnd, start);
  if (end == std::string::npos) return Status::invalid_argument("'" + path + "': provenance is truncated");
  return bytes->substr(start, end - start);
}

}  // namespace convjit
