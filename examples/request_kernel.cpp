// Teaches the basic use of the C++ API: describe a convolution (a ConvSpec built field
// by field, or a benchdnn descriptor parsed), request its kernel from the runtime, run
// it on memory the caller owns (dense and strided TensorViews), and check the result
// against a naive loop written right here.
//
// Usage: request_kernel [--channels C] [--size HW] [DESCRIPTOR]
//   --channels C  input and output channels of the spec built field by field (default 16)
//   --size HW     its input height and width (default 20)
//   DESCRIPTOR    a forward convolution to parse (default a grouped stride-2 3x3 layer)
// Prints the max error of each run and "OK"; exits with 1 on a mismatch or an error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "convjit/descriptor.h"
#include "convjit/runtime.h"

namespace {

using convjit::ConvSpec;

// The convolution spelled out as loops: every output is a bias plus a sum over the
// input channels of its group and the kernel window. Zero padding, OIHW weights,
// cross-correlation (the kernel is not flipped), as PyTorch's Conv2d. Forward only.
// All tensors are dense NCHW here.
std::vector<float> naive_conv(const ConvSpec& s, const std::vector<float>& src,
                              const std::vector<float>& wei, const std::vector<float>& bia) {
  const int64_t h_out = convjit::output_h(s), w_out = convjit::output_w(s);
  const int64_t cin_per_group = s.c_in / s.groups, cout_per_group = s.c_out / s.groups;
  std::vector<float> dst(s.n * s.c_out * h_out * w_out);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oc = 0; oc < s.c_out; ++oc)
      for (int64_t oy = 0; oy < h_out; ++oy)
        for (int64_t ox = 0; ox < w_out; ++ox) {
          double sum = s.has_bias ? bia[oc] : 0.0;  // double: the reference must not round
          const int64_t g = oc / cout_per_group;
          for (int64_t ic = 0; ic < cin_per_group; ++ic)
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
                const int64_t ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
                if (iy < 0 || iy >= s.h_in || ix < 0 || ix >= s.w_in) continue;  // zero padding
                const int64_t c = g * cin_per_group + ic;
                sum += double(src[((n * s.c_in + c) * s.h_in + iy) * s.w_in + ix]) *
                       wei[((oc * cin_per_group + ic) * s.kh + ky) * s.kw + kx];
              }
          dst[((n * s.c_out + oc) * h_out + oy) * w_out + ox] = static_cast<float>(sum);
        }
  return dst;
}

std::vector<float> random_floats(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

int64_t product(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

// The largest |a - b| over the output, scaled by the largest |b| (at least 1), so
// that one tolerance serves small and large layers alike.
double max_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

// Requests the kernel of `s`, runs it on dense buffers and, when `strided` is set, a
// second time on views into larger buffers; compares each run with naive_conv.
bool check(const char* label, const ConvSpec& s, bool strided) {
  // 1. Request the kernel. The first request for a spec compiles it (LLVM, about a
  //    second); later ones, in this process or the next, come from the caches.
  auto kernel = convjit::Runtime::global().get_kernel(s, "host");
  if (!kernel.ok()) {  // a bad spec or target: the message names the value and the rule
    std::fprintf(stderr, "%s: %s\n", label, kernel.status().message().c_str());
    return false;
  }
  std::printf("%s: %s\n  schedule %s, ready in %.3f s\n", label, convjit::print_descriptor(s).c_str(),
              kernel->schedule().c_str(), kernel->compile_seconds());

  // 2. Caller-owned memory. The shapes come from the spec: NCHW activations, OIHW weights.
  const auto in = convjit::input_shape(s), out = convjit::output_shape(s);
  const auto w = convjit::weight_shape(s);
  const std::vector<int64_t> src_dims(in.begin(), in.end()), dst_dims(out.begin(), out.end());
  const std::vector<int64_t> wei_dims(w.begin(), w.begin() + convjit::weight_rank(s));
  const std::vector<float> src = random_floats(product(src_dims), 1);
  const std::vector<float> wei = random_floats(product(wei_dims), 2);
  const std::vector<float> bia = random_floats(s.c_out, 3);
  const std::vector<float> expected = naive_conv(s, src, wei, bia);

  // 3. Run on dense views: TensorView::dense means C order, no copy is made.
  std::vector<float> dst(product(dst_dims));
  const convjit::TensorView bias_view = convjit::TensorView::dense(bia.data(), {s.c_out});
  convjit::Status status =
      kernel->run(convjit::TensorView::dense(src.data(), src_dims), convjit::TensorView::dense(wei.data(), wei_dims),
                  s.has_bias ? &bias_view : nullptr, convjit::TensorView::dense(dst.data(), dst_dims));
  if (!status.ok()) {
    std::fprintf(stderr, "%s: run: %s\n", label, status.message().c_str());
    return false;
  }
  double error = max_error(dst, expected);
  std::printf("  dense views:   max error %.2e\n", error);
  bool ok = error <= 1e-4;

  if (strided) {
    // 4. Run on strided views: the input lives in a buffer whose rows are 7 floats
    //    longer than the image (as a crop of a larger image would), and the output is
    //    written into every other channel of a buffer with twice the channels.
    //    Strides are in elements, outermost first; the innermost must be 1.
    const int64_t pitch = s.w_in + 7;
    std::vector<float> wide_src(s.n * s.c_in * s.h_in * pitch, NAN);  // NaN: reading outside would show
    for (int64_t i = 0; i < s.n * s.c_in * s.h_in; ++i)
      std::copy_n(&src[i * s.w_in], s.w_in, &wide_src[i * pitch]);
    convjit::TensorView src_view{wide_src.data(), src_dims, {s.c_in * s.h_in * pitch, s.h_in * pitch, pitch, 1}};

    const int64_t plane = dst_dims[2] * dst_dims[3];
    std::vector<float> wide_dst(dst_dims[0] * 2 * dst_dims[1] * plane, 0.0f);
    convjit::TensorView dst_view{wide_dst.data(), dst_dims, {2 * dst_dims[1] * plane, 2 * plane, dst_dims[3], 1}};

    status = kernel->run(src_view, convjit::TensorView::dense(wei.data(), wei_dims),
                         s.has_bias ? &bias_view : nullptr, dst_view);
    if (!status.ok()) {
      std::fprintf(stderr, "%s: strided run: %s\n", label, status.message().c_str());
      return false;
    }
    // Gather the written channels back into dense order to compare.
    std::vector<float> gathered(dst.size());
    for (int64_t n = 0; n < dst_dims[0]; ++n)
      for (int64_t c = 0; c < dst_dims[1]; ++c)
        std::copy_n(&wide_dst[(n * 2 * dst_dims[1] + 2 * c) * plane], plane,
                    &gathered[(n * dst_dims[1] + c) * plane]);
    error = max_error(gathered, expected);
    std::printf("  strided views: max error %.2e\n", error);
    ok = ok && error <= 1e-4;
  }
  std::printf("  %s\n", ok ? "OK" : "MISMATCH");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t channels = 16, size = 20;
  std::string descriptor = "g4mb2ic16ih15oc32oh8kh3sh2ph1";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--channels") && i + 1 < argc) {
      channels = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--size") && i + 1 < argc) {
      size = std::max(1, std::atoi(argv[++i]));
    } else if (argv[i][0] != '-') {
      descriptor = argv[i];
    } else {
      std::fprintf(stderr, "usage: %s [--channels C] [--size HW] [DESCRIPTOR]\n", argv[0]);
      return 2;
    }
  }

  // A spec built field by field: a 3x3 "same" convolution with bias. Fields not set
  // keep their defaults (stride 1, dilation 1, groups 1, f32, zero padding).
  ConvSpec spec;
  spec.n = 1;
  spec.c_in = channels;
  spec.h_in = spec.w_in = size;
  spec.c_out = channels;
  spec.kh = spec.kw = 3;
  spec.pad_top = spec.pad_bottom = spec.pad_left = spec.pad_right = 1;
  spec.has_bias = true;
  // validate() says what is wrong with a spec before any compiling happens.
  if (convjit::Status st = convjit::validate(spec); !st.ok()) {
    std::fprintf(stderr, "built spec: %s\n", st.message().c_str());
    return 1;
  }
  bool ok = check("built spec", spec, /*strided=*/true);

  // A spec parsed from a benchdnn descriptor (also validated by the parser).
  auto problem = convjit::parse_descriptor(descriptor);
  if (!problem.ok()) {
    std::fprintf(stderr, "descriptor: %s\n", problem.status().message().c_str());
    return 1;
  }
  if (problem->spec.transposed) {
    std::fprintf(stderr, "descriptor: this example's naive loop covers forward convolutions only\n");
    return 1;
  }
  ok = check("parsed descriptor", problem->spec, /*strided=*/false) && ok;

  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
