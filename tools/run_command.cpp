// `convjit run`: reads .npy tensors, runs one convolution through the runtime and writes
// the output .npy atomically.
#include <cstdio>
#include <cstring>

#include "atomic_file.h"
#include "command_line.h"
#include "commands.h"
#include "convjit/descriptor.h"
#include "convjit/runtime.h"
#include "npy_file.h"

namespace convjit {
namespace {

// Reads one tensor file and checks it against what the spec expects; `option` and
// `role` name it in messages ("--wei", "weight").
StatusOr<NpyArray> read_tensor(const std::string& option, const std::string& path,
                               const std::string& role, DataType dtype,
                               const std::vector<int64_t>& expected_shape,
                               const std::string& shape_rule) {
  StatusOr<NpyArray> array = read_npy(path);
  if (!array.ok()) return Status(array.status().code(), option + ": " + array.status().message());
  if (array->dtype != dtype) {
    return Status::invalid_argument(option + ": " + path + ": dtype " + to_string(array->dtype) +
                                    " does not match --dt " + to_string(dtype) +
                                    " (" + role + " data must have the spec's data type)");
  }
  if (array->shape != expected_shape) {
    return Status::invalid_argument(option + ": " + path + ": shape " +
                                    shape_to_string(array->shape) + " does not match the " + role +
                                    " shape " + shape_to_string(expected_shape) + " of the spec " +
                                    shape_rule);
  }
  return array;
}

template <size_t N>
std::vector<int64_t> to_vector(const std::array<int64_t, N>& a, size_t count = N) {
  return std::vector<int64_t>(a.begin(), a.begin() + count);
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  RoutedArguments routed;
  CommandError error;
  if (!route_arguments("run", args,
                       {{"--src", true}, {"--wei", true}, {"--bia", true}, {"--dst", true},
                        {"--target", true}},
                       &routed, &error)) {
    return report_error(error);
  }
  if (routed.help) {
    std::fputs(usage_text("run").c_str(), stdout);
    return kExitOk;
  }
  if (routed.descriptor.empty()) {
    return report_error("missing DESCRIPTOR (see 'convjit run --help')", kExitUsage);
  }
  for (const char* required : {"--src", "--wei", "--dst"}) {
    if (routed.options.count(required) == 0) {
      return report_error(std::string("missing required option ") + required +
                              " (see 'convjit run --help')",
                          kExitUsage);
    }
  }
  const bool bias_file = routed.options.count("--bia") != 0;
  std::vector<std::string> tokens = routed.problem_tokens;
  // A bias file is what makes a run add a bias; --bias alone has nothing to add.
  if (bias_file) tokens.insert(tokens.begin(), "--bias");
  std::string target = routed.options.count("--target") ? routed.options["--target"] : "host";

  StatusOr<Problem> problem = parse_problem(tokens);
  if (!problem.ok()) return report_error(problem.status());
  const ConvSpec& spec = problem->spec;
  if (spec.has_bias && !bias_file) {
    return report_error("--bias asks for a bias but no --bia FILE gives it (see 'convjit run --help')",
                        kExitUsage);
  }

  // Inputs are read and checked before the (slow) compile, and the output's temporary
  // file is created before it too, so that every input error is reported at once.
  const std::string weight_rule =
      std::string("(--wtag ") + to_string(spec.weight_layout) + ")";
  StatusOr<NpyArray> src = read_tensor("--src", routed.options["--src"], "input", spec.dtype,
                                       to_vector(input_shape(spec)), "(mb, ic, ih, iw)");
  if (!src.ok()) return report_error(src.status());
  StatusOr<NpyArray> wei =
      read_tensor("--wei", routed.options["--wei"], "weight", spec.dtype,
                  to_vector(weight_shape(spec), static_cast<size_t>(weight_rank(spec))), weight_rule);
  if (!wei.ok()) return report_error(wei.status());
  StatusOr<NpyArray> bia = NpyArray();
  if (bias_file) {
    bia = read_tensor("--bia", routed.options["--bia"], "bias", spec.dtype, {bias_size(spec)},
                      "(oc,)");
    if (!bia.ok()) return report_error(bia.status());
  }

  std::vector<int64_t> dst_shape = to_vector(output_shape(spec));
  StatusOr<std::string> header = make_npy_header(spec.dtype, dst_shape);
  if (!header.ok()) return report_error(header.status());
  StatusOr<AtomicFile> out = AtomicFile::create(routed.options["--dst"]);
  if (!out.ok()) return report_error(Status(out.status().code(), "--dst: " + out.status().message()));

  StatusOr<Kernel> kernel = Runtime::global().get_kernel(spec, target);
  if (!kernel.ok()) return report_error(kernel.status());

  int64_t count = 1;
  for (int64_t d : dst_shape) count *= d;
  std::vector<uint8_t> dst(static_cast<size_t>(count) * element_size(spec.dtype));
  TensorView src_view = TensorView::dense(src->data.data(), src->shape);
  TensorView wei_view = TensorView::dense(wei->data.data(), wei->shape);
  TensorView bia_view = TensorView::dense(bia->data.data(), bia->shape);
  TensorView dst_view = TensorView::dense(dst.data(), dst_shape);
  Status ran = kernel->run(src_view, wei_view, bias_file ? &bia_view : nullptr, dst_view);
  if (!ran.ok()) return report_error(ran);

  Status written = out->write(header->data(), header->size());
  if (written.ok()) written = out->write(dst.data(), dst.size());
  if (written.ok()) written = out->commit();
  if (!written.ok()) return report_error(written);
  return kExitOk;
}

}  // namespace convjit
