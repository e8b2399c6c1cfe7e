// The correctness suite: compiled kernels, requested and run through the public
// runtime API, against the naive double-precision reference for every feature, their
// combinations, edge sizes, the seed documents' worked examples and a seeded random
// sweep of specs, with dense and strided caller tensors.
//
// Cost model: each distinct spec is one JIT compile (about 0.5-1 s on a 2-core
// machine), so the lists below are chosen to cover features with about 300 distinct
// specs, and the strided-view tests reuse specs that other tests already compiled
// (the global runtime's cache serves them).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/runtime.h"
#include "reference_conv.h"
#include "scoped_test_state.h"

namespace convjit {
namespace {

constexpr double kF32Tolerance = 1e-4;
constexpr double kF16Tolerance = 1e-2;

double tolerance(const ConvSpec& s) {
  return s.dtype == DataType::kFloat16 ? kF16Tolerance : kF32Tolerance;
}

// ---- Spec builder -------------------------------------------------------------

// A fluent ConvSpec builder so that each case below reads as one line of features.
class Spec {
 public:
  Spec(int64_t n, int64_t c_in, int64_t c_out, int64_t h, int64_t w, int64_t kh, int64_t kw) {
    s_.n = n;
    s_.c_in = c_in;
    s_.c_out = c_out;
    s_.h_in = h;
    s_.w_in = w;
    s_.kh = kh;
    s_.kw = kw;
  }
  Spec& stride(int64_t h, int64_t w) { s_.stride_h = h; s_.stride_w = w; return *this; }
  Spec& pad(int64_t p) { return pad(p, p, p, p); }
  Spec& pad(int64_t top, int64_t bottom, int64_t left, int64_t right) {
    s_.pad_top = top; s_.pad_bottom = bottom; s_.pad_left = left; s_.pad_right = right;
    return *this;
  }
  Spec& dilation(int64_t h, int64_t w) { s_.dilation_h = h; s_.dilation_w = w; return *this; }
  Spec& groups(int64_t g) { s_.groups = g; return *this; }
  // Transposed convolutions default to their frameworks' IOHW weights.
  Spec& transposed() { s_.transposed = true; s_.weight_layout = WeightLayout::kIOHW; return *this; }
  Spec& output_padding(int64_t h, int64_t w) { s_.output_padding_h = h; s_.output_padding_w = w; return *this; }
  Spec& outsize(int64_t h, int64_t w) { s_.outsize_h = h; s_.outsize_w = w; return *this; }
  Spec& mode(PaddingMode m) { s_.padding_mode = m; return *this; }
  Spec& flip() { s_.conv_mode = ConvMode::kConvolution; return *this; }
  Spec& cover_all() { s_.cover_all = true; return *this; }
  Spec& bias(bool on = true) { s_.has_bias = on; return *this; }
  Spec& f16() { s_.dtype = DataType::kFloat16; return *this; }
  Spec& f16_acc32() { s_.dtype = DataType::kFloat16; s_.compute_mode = ComputeMode::kFloat32; return *this; }
  Spec& layout(WeightLayout l) { s_.weight_layout = l; return *this; }
  operator ConvSpec() const { return s_; }  // NOLINT: implicit by design

 private:
  ConvSpec s_;
};

// A readable test-name fragment listing every non-default feature of a spec.
std::string describe(const ConvSpec& s) {
  auto num = [](int64_t v) { return v < 0 ? "m" + std::to_string(-v) : std::to_string(v); };
  std::ostringstream o;
  o << "n" << s.n << "_c" << s.c_in << "to" << s.c_out << "_" << s.h_in << "x" << s.w_in << "_k" << s.kh
    << "x" << s.kw;
  if (s.stride_h != 1 || s.stride_w != 1) o << "_s" << s.stride_h << "x" << s.stride_w;
  if (s.pad_top || s.pad_bottom || s.pad_left || s.pad_right)
    o << "_p" << num(s.pad_top) << "_" << num(s.pad_bottom) << "_" << num(s.pad_left) << "_"
      << num(s.pad_right);
  if (s.dilation_h != 1 || s.dilation_w != 1) o << "_d" << s.dilation_h << "x" << s.dilation_w;
  if (s.groups != 1) o << "_g" << s.groups;
  if (s.transposed) o << "_T";
  if (s.output_padding_h || s.output_padding_w) o << "_op" << s.output_padding_h << "x" << s.output_padding_w;
  if (s.outsize_h || s.outsize_w) o << "_os" << s.outsize_h << "x" << s.outsize_w;
  if (s.padding_mode != PaddingMode::kZeros) o << "_" << to_string(s.padding_mode);
  if (s.conv_mode == ConvMode::kConvolution) o << "_flip";
  if (s.cover_all) o << "_coverall";
  if (s.has_bias) o << "_bias";
  if (s.dtype == DataType::kFloat16) o << (s.compute_mode == ComputeMode::kFloat32 ? "_f16acc32" : "_f16");
  const WeightLayout natural = s.transposed ? WeightLayout::kIOHW : WeightLayout::kOIHW;
  if (s.weight_layout != natural) o << "_" << to_string(s.weight_layout);
  return o.str();
}

struct Case {
  std::string name;
  ConvSpec spec;
};

// gtest prints parameters of failing tests: show the whole spec.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name << " {" << canonical_key(c.spec) << "}"; }

std::vector<Case> named(const std::vector<ConvSpec>& specs, const std::string& prefix = "") {
  std::vector<Case> cases;
  std::set<std::string> seen;
  for (const ConvSpec& s : specs) {
    std::string name = prefix + describe(s);
    while (!seen.insert(name).second) name += "_";  // equal names only for equal specs
    cases.push_back({name, s});
  }
  return cases;
}

std::string case_name(const testing::TestParamInfo<Case>& info) { return info.param.name; }

// ---- Caller tensors -------------------------------------------------------------

// A tensor of one dtype in caller-owned storage: element `index` lives at
// offset + sum(index[d] * strides[d]); every other storage element holds a sentinel
// that a kernel must never overwrite. Empty strides mean a dense C-order view.
class HostTensor {
 public:
  HostTensor(DataType dtype, std::vector<int64_t> shape, std::vector<int64_t> strides = {},
             int64_t offset = 0)
      : dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)), offset_(offset) {
    std::vector<int64_t> effective = strides_;
    if (effective.empty()) {
      effective.assign(shape_.size(), 1);
      for (int d = static_cast<int>(shape_.size()) - 2; d >= 0; --d)
        effective[d] = effective[d + 1] * shape_[d + 1];
    }
    int64_t last = offset_;
    for (size_t d = 0; d < shape_.size(); ++d) last += (shape_[d] - 1) * effective[d];
    const int64_t elements = last + 1 + 5;  // a tail of sentinels catches writes past the end
    storage_.resize(elements * element_size(dtype_));
    for (int64_t k = 0; k < elements; ++k) put(k, sentinel());
    logical_.assign(elements, false);
    for_each_index([&](const std::vector<int64_t>& index, int64_t) {
      int64_t at = offset_;
      for (size_t d = 0; d < index.size(); ++d) at += index[d] * effective[d];
      offsets_.push_back(at);
      logical_[at] = true;
    });
  }

  void fill(const std::vector<double>& dense) {
    CONVJIT_CHECK(dense.size() == offsets_.size(), "fill size");
    for (size_t k = 0; k < dense.size(); ++k) put(offsets_[k], dense[k]);
    snapshot_ = storage_;
  }

  std::vector<double> read() const {
    std::vector<double> out(offsets_.size());
    for (size_t k = 0; k < offsets_.size(); ++k) out[k] = get(offsets_[k]);
    return out;
  }

  // Number of storage elements outside the tensor changed since fill().
  int64_t changed_outside() const {
    const int64_t size = element_size(dtype_);
    int64_t changed = 0;
    for (size_t k = 0; k < logical_.size(); ++k)
      if (!logical_[k] && std::memcmp(&storage_[k * size], &snapshot_[k * size], size) != 0) ++changed;
    return changed;
  }

  TensorView view() {
    return TensorView{storage_.data() + offset_ * element_size(dtype_), shape_, strides_};
  }

 private:
  static double sentinel() { return -12345.0; }  // exact in f16 and f32

  void for_each_index(const std::function<void(const std::vector<int64_t>&, int64_t)>& fn) const {
    std::vector<int64_t> index(shape_.size(), 0);
    int64_t count = 1;
    for (int64_t e : shape_) count *= e;
    for (int64_t linear = 0; linear < count; ++linear) {
      fn(index, linear);
      for (int d = static_cast<int>(shape_.size()) - 1; d >= 0; --d) {
        if (++index[d] < shape_[d]) break;
        index[d] = 0;
      }
    }
  }

  void put(int64_t k, double v) {
    if (dtype_ == DataType::kFloat16) {
      const uint16_t h = double_to_half(v);
      std::memcpy(&storage_[k * 2], &h, 2);
    } else {
      const float f = static_cast<float>(v);
      std::memcpy(&storage_[k * 4], &f, 4);
    }
  }

  double get(int64_t k) const {
    if (dtype_ == DataType::kFloat16) {
      uint16_t h;
      std::memcpy(&h, &storage_[k * 2], 2);
      return half_to_float(h);
    }
    float f;
    std::memcpy(&f, &storage_[k * 4], 4);
    return f;
  }

  DataType dtype_;
  std::vector<int64_t> shape_, strides_;
  int64_t offset_;
  std::vector<uint8_t> storage_, snapshot_;
  std::vector<bool> logical_;
  std::vector<int64_t> offsets_;  // storage element of each logical element, C order
};

std::vector<int64_t> vec(const std::array<int64_t, 4>& a) { return {a.begin(), a.end()}; }
std::vector<int64_t> weight_dims(const ConvSpec& s) {
  const auto w = weight_shape(s);
  return {w.begin(), w.begin() + weight_rank(s)};
}

// The data of one test: random values (f16 specs: rounded to half, so that kernel
// and reference see the same numbers) and the reference output.
struct Problem {
  std::vector<double> src, weights, bias, expected;
};

Problem make_problem(const ConvSpec& s, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  Problem p;
  p.src = random_values(input_elements(s), seed, lo, hi);
  p.weights = random_values(weight_elements(s), seed + 1, lo, hi);
  if (s.has_bias) p.bias = random_values(s.c_out, seed + 2, lo, hi);
  if (s.dtype == DataType::kFloat16) {
    p.src = round_to_half(p.src);
    p.weights = round_to_half(p.weights);
    p.bias = round_to_half(p.bias);
  }
  p.expected = reference_conv(s, p.src, p.weights, s.has_bias ? &p.bias : nullptr);
  return p;
}

// Where the largest difference is, for the failure message.
std::string worst_element(const ConvSpec& s, const std::vector<double>& actual,
                          const std::vector<double>& expected) {
  size_t worst = 0;
  for (size_t k = 0; k < actual.size(); ++k)
    if (!(std::fabs(actual[k] - expected[k]) <= std::fabs(actual[worst] - expected[worst]))) worst = k;
  const int64_t oh = output_h(s), ow = output_w(s);
  std::ostringstream o;
  o << "worst at (n, c, y, x) = (" << worst / (s.c_out * oh * ow) << ", " << (worst / (oh * ow)) % s.c_out
    << ", " << (worst / ow) % oh << ", " << worst % ow << "): got " << actual[worst] << ", expected "
    << expected[worst];
  return o.str();
}

StatusOr<Kernel> kernel_for(const ConvSpec& s) { return Runtime::global().get_kernel(s, "host"); }

// Runs `kernel` on the given (possibly strided) tensors holding `p` and compares
// the result with the reference, and the storage around each tensor with what it
// held before the run.
void run_and_compare(const Kernel& kernel, const Problem& p, HostTensor& src, HostTensor& weights,
                     HostTensor* bias, HostTensor& dst) {
  const ConvSpec& s = kernel.spec();
  src.fill(p.src);
  weights.fill(p.weights);
  if (bias) bias->fill(p.bias);
  dst.fill(std::vector<double>(p.expected.size(), 777.0));  // stale values must be overwritten
  const std::vector<double> src_before = src.read(), weights_before = weights.read();
  TensorView bias_view = bias ? bias->view() : TensorView{};
  const Status status = kernel.run(src.view(), weights.view(), bias ? &bias_view : nullptr, dst.view());
  ASSERT_TRUE(status.ok()) << status.message();
  const std::vector<double> actual = dst.read();
  const double error = relative_error(actual, p.expected);
  EXPECT_LE(error, tolerance(s)) << "relative error " << error << " for " << canonical_key(s)
                                 << "\nschedule " << kernel.schedule() << "\n"
                                 << worst_element(s, actual, p.expected);
  EXPECT_EQ(dst.changed_outside(), 0) << "dst: wrote outside the tensor";
  EXPECT_EQ(src.changed_outside(), 0) << "src: storage outside the view changed";
  EXPECT_EQ(weights.changed_outside(), 0) << "weights changed";
  EXPECT_TRUE(src.read() == src_before) << "src was written";
  EXPECT_TRUE(weights.read() == weights_before) << "weights were written";
}

// Compiles s (or takes it from the cache) and checks it on dense tensors.
void expect_matches_reference(const ConvSpec& s, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  ASSERT_TRUE(validate(s).ok()) << "test bug, invalid spec: " << validate(s).message();
  auto kernel = kernel_for(s);
  ASSERT_TRUE(kernel.ok()) << kernel.status().message() << "\nspec " << canonical_key(s);
  EXPECT_EQ(kernel->spec(), s);
  const Problem p = make_problem(s, seed, lo, hi);
  HostTensor src(s.dtype, vec(input_shape(s)));
  HostTensor weights(s.dtype, weight_dims(s));
  HostTensor bias(s.dtype, {s.c_out});
  HostTensor dst(s.dtype, vec(output_shape(s)));
  run_and_compare(*kernel, p, src, weights, s.has_bias ? &bias : nullptr, dst);
}

uint32_t seed_of(const std::string& name) { return static_cast<uint32_t>(fnv1a64(name)); }

// ---- Feature grid: geometry ------------------------------------------------------

// stride x four-sided padding x dilation x groups x transposed, non-square kernel
// and image, bias on every other case.
std::vector<Case> geometry_grid() {
  std::vector<ConvSpec> specs;
  int k = 0;
  for (bool transposed : {false, true})
    for (int64_t g : {1, 2})
      for (auto [sh, sw] : {std::pair<int64_t, int64_t>{1, 1}, {2, 3}})
        for (bool asymmetric : {false, true})
          for (auto [dh, dw] : {std::pair<int64_t, int64_t>{1, 1}, {2, 1}}) {
            Spec b = transposed ? Spec(2, 4, 6, 4, 5, 3, 2) : Spec(2, 4, 6, 7, 9, 3, 2);
            b.groups(g).stride(sh, sw).dilation(dh, dw).bias(k++ % 2 == 0);
            if (asymmetric) b.pad(0, 2, 1, 3); else b.pad(1);
            if (transposed) b.transposed();
            specs.push_back(b);
          }
  return named(specs);
}

// ---- Feature grid: padding modes (forward only) ------------------------------------

std::vector<Case> padding_mode_grid() {
  std::vector<ConvSpec> specs;
  for (PaddingMode m : {PaddingMode::kReflect, PaddingMode::kReplicate, PaddingMode::kCircular})
    for (int64_t stride : {1, 2})
      for (int64_t dilation : {1, 2})
        for (int64_t g : {1, 2})
          specs.push_back(Spec(1, 4, 4, 7, 9, 3, 3)
                              .mode(m)
                              .pad(2, 1, 0, 3)
                              .stride(stride, stride)
                              .dilation(dilation, dilation)
                              .groups(g)
                              .bias(g == 2));
  return named(specs);
}

// ---- Conv mode, cover_all, dtypes, weight layouts ---------------------------------

std::vector<Case> feature_cases() {
  using WL = WeightLayout;
  using PM = PaddingMode;
  std::vector<ConvSpec> specs = {
      // conv_mode = convolution (flipped kernel)
      Spec(2, 3, 5, 6, 8, 3, 2).flip(),
      Spec(1, 4, 6, 9, 7, 3, 3).flip().stride(2, 1).dilation(1, 2).pad(1, 0, 2, 1).groups(2).bias(),
      Spec(1, 3, 6, 5, 6, 3, 2).flip().groups(3).pad(1),  // depthwise, multiplier 2
      Spec(2, 3, 5, 4, 3, 3, 2).flip().transposed(),
      Spec(1, 4, 6, 3, 4, 3, 3).flip().transposed().stride(2, 3).dilation(2, 1).pad(1, 0, 0, 2).groups(2).bias(),
      Spec(1, 4, 4, 4, 5, 2, 3).flip().transposed().groups(4).stride(2, 2).output_padding(1, 1),
      Spec(1, 2, 3, 6, 7, 3, 3).flip().mode(PM::kReflect).pad(1, 2, 2, 1),
      Spec(1, 2, 3, 6, 7, 3, 2).flip().mode(PM::kCircular).pad(2, 0, 1, 1).stride(2, 1),
      // cover_all (Chainer): forward, zeros padding
      Spec(2, 2, 3, 8, 9, 3, 3).cover_all().stride(3, 2),
      Spec(1, 3, 4, 9, 10, 2, 3).cover_all().stride(2, 3).dilation(1, 2).pad(1).bias(),
      Spec(1, 4, 6, 7, 8, 3, 2).cover_all().stride(4, 3).groups(2).flip(),
      Spec(1, 3, 3, 7, 9, 3, 3).cover_all().stride(2, 2).pad(0, 0, 1, 0).f16(),
      // f16 and f16 with float32 accumulation
      Spec(2, 3, 5, 6, 7, 3, 3).f16().pad(1).bias(),
      Spec(2, 3, 5, 6, 7, 3, 3).f16_acc32().pad(1).bias(),
      Spec(1, 4, 6, 9, 8, 3, 2).f16().groups(2).stride(2, 1).dilation(1, 2),
      Spec(1, 4, 6, 9, 8, 3, 2).f16_acc32().groups(2).stride(2, 1).dilation(1, 2),
      Spec(1, 4, 3, 4, 5, 3, 3).f16().transposed().stride(2, 2).pad(1).bias(),
      Spec(1, 4, 3, 4, 5, 3, 3).f16_acc32().transposed().stride(2, 2).pad(1).bias(),
      Spec(1, 3, 6, 6, 6, 3, 3).f16().groups(3).layout(WL::kMIHW).pad(1),
      Spec(1, 3, 6, 6, 6, 3, 3).f16_acc32().groups(3).layout(WL::kMIHW).pad(1),
      Spec(1, 2, 4, 5, 7, 3, 3).f16().mode(PM::kReflect).pad(2),
      Spec(1, 2, 4, 5, 7, 3, 3).f16_acc32().mode(PM::kReplicate).pad(2).flip(),
      Spec(1, 4, 6, 3, 4, 2, 3).f16().transposed().groups(2).flip().layout(WL::kGOIHW),
      Spec(1, 16, 16, 6, 6, 5, 5).f16_acc32().pad(2).bias(),  // a longer reduction: 400 terms
      // weight layouts
      Spec(1, 4, 6, 6, 7, 3, 3).layout(WL::kGOIHW).groups(2).pad(1).bias(),
      Spec(1, 3, 5, 6, 7, 3, 3).layout(WL::kGOIHW),
      Spec(1, 6, 3, 4, 4, 3, 3).transposed().layout(WL::kGOIHW).groups(3).stride(2, 2),
      Spec(1, 3, 5, 6, 7, 3, 2).layout(WL::kIOHW).pad(1),
      Spec(1, 4, 6, 6, 7, 3, 3).layout(WL::kIOHW).groups(2).stride(2, 1),
      Spec(1, 4, 6, 4, 4, 3, 3).transposed().layout(WL::kOIHW).groups(2).stride(2, 2),
      Spec(2, 3, 3, 6, 7, 3, 3).layout(WL::kMIHW).groups(3).pad(1),            // m = 1
      Spec(1, 3, 6, 7, 6, 3, 3).layout(WL::kMIHW).groups(3).stride(2, 2).bias(),  // m = 2
      Spec(1, 3, 9, 6, 7, 3, 2).layout(WL::kMIHW).groups(3).dilation(2, 1).pad(1, 1, 0, 0),  // m = 3
      Spec(1, 3, 6, 4, 4, 3, 3).transposed().layout(WL::kMIHW).groups(3).stride(2, 2).pad(1),
      Spec(1, 4, 12, 6, 6, 3, 3).groups(4).pad(1),  // depthwise m = 3 in OIHW
      Spec(1, 4, 8, 6, 6, 3, 3).groups(4).layout(WL::kGOIHW).pad(1).bias(),
      Spec(1, 4, 8, 4, 4, 3, 3).transposed().groups(4).stride(2, 2).bias(),  // depthwise IOHW
  };
  return named(specs);
}

// ---- Edge sizes ---------------------------------------------------------------------

std::vector<Case> edge_cases() {
  using PM = PaddingMode;
  std::vector<ConvSpec> specs = {
      Spec(1, 1, 1, 1, 1, 1, 1),                                   // everything 1
      Spec(2, 3, 5, 1, 1, 3, 3).pad(1).bias(),                     // 1x1 image, 3x3 kernel
      Spec(1, 3, 5, 1, 1, 1, 1).groups(1).f16(),                   // 1x1 image f16
      Spec(1, 2, 3, 1, 1, 3, 3).transposed().stride(2, 2),         // 1x1 input transposed
      Spec(1, 3, 2, 5, 6, 7, 8).pad(1),                            // kernel = padded input
      Spec(1, 7, 13, 4, 5, 4, 5),                                  // kernel = input, prime channels
      Spec(1, 2, 2, 5, 6, 5, 4).dilation(1, 2).pad(0, 0, 1, 0),    // dilated kernel = padded input
      Spec(2, 3, 5, 6, 7, 3, 3).pad(1),                            // prime channels
      Spec(1, 5, 7, 5, 6, 3, 2).stride(2, 1),
      Spec(1, 13, 3, 5, 5, 3, 3).bias(),
      Spec(1, 7, 7, 6, 5, 3, 3).groups(7).pad(1),                  // depthwise prime
      Spec(3, 2, 3, 5, 5, 3, 3).pad(1).bias(),                     // batch 3
      Spec(5, 1, 2, 4, 4, 2, 2).stride(2, 2).transposed(),         // batch 5 transposed
      Spec(1, 8, 16, 8, 8, 1, 1).stride(2, 2).pad(0, -1, 0, -1),   // ResNet projection pad -1
      Spec(1, 3, 4, 9, 11, 3, 3).stride(2, 2).pad(1, -1, 0, -2),   // negative bottom/right
      Spec(1, 3, 4, 9, 9, 3, 3).stride(3, 3).pad(0, -2, 0, 0).cover_all(),
      Spec(1, 2, 3, 6, 7, 3, 3).pad(3, 0, 1, 2),                   // asymmetric four-sided
      Spec(1, 3, 2, 4, 5, 3, 3).transposed().pad(2, 0, 0, 1),      // asymmetric transposed
      Spec(1, 3, 4, 5, 11, 1, 5).stride(1, 3).dilation(3, 1).pad(0, 2, 1, 0),  // non-square all
      Spec(1, 2, 3, 11, 4, 5, 1).stride(2, 1).dilation(1, 1).pad(2, 1, 0, 0),
      Spec(1, 2, 3, 4, 4, 3, 3).transposed().stride(3, 3).output_padding(2, 1),       // op > pad_bottom
      Spec(1, 2, 3, 4, 5, 3, 3).transposed().stride(2, 2).pad(1).output_padding(1, 1),  // PyTorch
      Spec(1, 2, 3, 4, 5, 3, 3).transposed().dilation(3, 2).output_padding(2, 1),     // op < dilation
      Spec(1, 2, 3, 4, 5, 3, 3).transposed().stride(3, 2).pad(1).outsize(12, 10),     // Chainer outsize
      Spec(1, 2, 3, 4, 5, 3, 3).transposed().stride(3, 2).pad(1).outsize(10, 9),      // outsize natural
      Spec(1, 6, 9, 5, 5, 3, 3).groups(3).pad(1),                  // groups, not depthwise
      Spec(1, 8, 4, 5, 6, 3, 3).groups(4).stride(2, 1),            // 2 inputs, 1 output per group
      Spec(1, 4, 8, 4, 4, 3, 3).groups(2).transposed().stride(2, 2).pad(1, 0, 1, 0),
      Spec(1, 2, 3, 5, 6, 3, 3).mode(PM::kReflect).pad(4, 4, 5, 5),    // reflect = size - 1
      Spec(1, 2, 3, 5, 6, 3, 3).mode(PM::kCircular).pad(5, 5, 6, 6),   // circular = size
      Spec(1, 2, 3, 3, 4, 3, 3).mode(PM::kReplicate).pad(5, 4, 7, 6),  // replicate > size
      Spec(1, 1, 2, 1, 5, 1, 3).mode(PM::kReplicate).pad(2),           // one-row image
      Spec(1, 3, 4, 9, 10, 2, 2).stride(4, 3),                     // stride > kernel
      Spec(1, 3, 4, 3, 3, 2, 2).transposed().stride(4, 3).bias(),  // gaps between taps
      Spec(1, 3, 16, 5, 33, 3, 3).pad(1).bias(),                   // odd width, 16 channels
      Spec(1, 16, 16, 12, 12, 5, 5).pad(2),                        // the sweep's largest sizes
  };
  return named(specs);
}

// ---- Worked examples of the seed documents ------------------------------------------

struct SeedCase {
  std::string name;
  ConvSpec spec;
  std::array<int64_t, 4> printed_shape;  // what the document prints
  double lo, hi;                          // the example's data range
  bool arange_input;                      // MegEngine: np.arange(96)
};

void PrintTo(const SeedCase& c, std::ostream* os) { *os << c.name << " {" << canonical_key(c.spec) << "}"; }

std::vector<SeedCase> seed_cases() {
  const ConvSpec chainer_conv = Spec(10, 3, 1, 30, 40, 10, 10).pad(5).stride(5, 7).bias();
  const ConvSpec chainer_cover_all = Spec(10, 3, 1, 30, 40, 10, 10).pad(5).stride(5, 7).bias().cover_all();
  const ConvSpec chainer_depthwise =
      Spec(2, 3, 6, 4, 7, 3, 3).groups(3).layout(WeightLayout::kMIHW).bias();
  const ConvSpec chainer_deconv = Spec(10, 1, 3, 5, 10, 10, 10).transposed().stride(5, 5).pad(5).bias();
  const ConvSpec megengine = Spec(2, 3, 1, 4, 4, 3, 3).bias();
  // PyTorch's batch is 20; the two dilated/padded variants use 2 to save time.
  const ConvSpec torch_a = Spec(20, 16, 33, 50, 100, 3, 3).stride(2, 2).bias();
  const ConvSpec torch_b = Spec(2, 16, 33, 50, 100, 3, 5).stride(2, 1).pad(4, 4, 2, 2).bias();
  const ConvSpec torch_c =
      Spec(2, 16, 33, 50, 100, 3, 5).stride(2, 1).pad(4, 4, 2, 2).dilation(3, 1).bias();
  return {
      {"chainer_convolution_2d", chainer_conv, {10, 1, 7, 6}, 0, 1, false},
      {"chainer_convolution_2d_cover_all", chainer_cover_all, {10, 1, 7, 7}, 0, 1, false},
      {"chainer_depthwise_convolution_2d", chainer_depthwise, {2, 6, 2, 5}, 0, 1, false},
      {"chainer_deconvolution_2d", chainer_deconv, {10, 3, 20, 45}, 0, 1, false},
      {"megengine_conv2d_arange", megengine, {2, 1, 2, 2}, -1, 1, true},
      {"pytorch_conv2d_stride2", torch_a, {20, 33, 24, 49}, -1, 1, false},
      {"pytorch_conv2d_nonsquare_padding", torch_b, {2, 33, 28, 100}, -1, 1, false},
      {"pytorch_conv2d_nonsquare_padding_dilation", torch_c, {2, 33, 26, 100}, -1, 1, false},
  };
}

// ---- Seeded random sweep -----------------------------------------------------------

// The sizes a random sweep draws from (inclusive upper bounds).
struct RandomLimits {
  int64_t channels = 16;
  int64_t image = 12;
  int64_t kernel = 5;
};

// `count` valid, distinct specs mixing every feature within `limits`. The draws are
// fixed by the seed, so the list (and the test names) are the same on every run.
std::vector<Case> random_cases(uint32_t seed, size_t count, RandomLimits limits, const char* name_prefix) {
  std::mt19937 gen(seed);
  auto uniform = [&](int64_t lo, int64_t hi) {  // inclusive; explicit so every libstdc++ agrees
    return lo + static_cast<int64_t>(gen() % static_cast<uint32_t>(hi - lo + 1));
  };
  auto chance = [&](int percent) { return uniform(0, 99) < percent; };
  std::vector<ConvSpec> specs;
  std::set<std::string> keys;
  for (size_t attempt = 0; attempt < 40 * count && specs.size() < count; ++attempt) {
    ConvSpec s;
    s.transposed = chance(30);
    s.n = uniform(1, 3);
    const int64_t kind = uniform(0, 3);
    if (kind <= 1) {  // dense
      s.groups = 1;
      s.c_in = uniform(1, limits.channels);
      s.c_out = uniform(1, limits.channels);
    } else if (kind == 2) {  // depthwise
      s.c_in = uniform(1, limits.channels / 2);
      s.c_out = s.c_in * uniform(1, std::min<int64_t>(3, limits.channels / s.c_in));
      s.groups = s.c_in;
    } else {  // grouped
      s.groups = uniform(2, 4);
      s.c_in = s.groups * uniform(1, limits.channels / s.groups);
      s.c_out = s.groups * uniform(1, limits.channels / s.groups);
    }
    s.h_in = uniform(1, limits.image);
    s.w_in = uniform(1, limits.image);
    s.kh = uniform(1, limits.kernel);
    s.kw = uniform(1, limits.kernel);
    s.stride_h = uniform(1, 3);
    s.stride_w = uniform(1, 3);
    s.dilation_h = chance(70) ? 1 : uniform(2, 3);
    s.dilation_w = chance(70) ? 1 : uniform(2, 3);
    s.pad_top = uniform(0, 3);
    s.pad_bottom = uniform(0, 3);
    s.pad_left = uniform(0, 3);
    s.pad_right = uniform(0, 3);
    if (!s.transposed) {
      if (chance(15)) s.pad_bottom = -uniform(1, 2);
      if (chance(15)) s.pad_right = -uniform(1, 2);
      const int64_t mode = uniform(0, 9);
      s.padding_mode = mode < 7 ? PaddingMode::kZeros
                       : mode == 7 ? PaddingMode::kReflect
                       : mode == 8 ? PaddingMode::kReplicate
                                   : PaddingMode::kCircular;
      s.cover_all = s.padding_mode == PaddingMode::kZeros && chance(15);
    } else if (chance(20)) {
      // Chainer's outsize anywhere in its valid range.
      s.outsize_h = s.stride_h * (s.h_in - 1) + dilated_kernel_h(s) - s.pad_top - s.pad_bottom +
                    uniform(0, s.stride_h - 1);
      s.outsize_w = s.stride_w * (s.w_in - 1) + dilated_kernel_w(s) - s.pad_left - s.pad_right +
                    uniform(0, s.stride_w - 1);
    } else if (chance(40)) {
      s.output_padding_h = uniform(0, std::max(s.stride_h, s.dilation_h) - 1);
      s.output_padding_w = uniform(0, std::max(s.stride_w, s.dilation_w) - 1);
    }
    s.conv_mode = chance(25) ? ConvMode::kConvolution : ConvMode::kCrossCorrelation;
    s.has_bias = chance(50);
    const int64_t dtype = uniform(0, 99);
    if (dtype >= 70) s.dtype = DataType::kFloat16;
    if (dtype >= 85) s.compute_mode = ComputeMode::kFloat32;
    const int64_t layout = uniform(0, 99);
    const bool depthwise = s.groups == s.c_in && s.c_out % s.c_in == 0;
    if (layout < 45) s.weight_layout = s.transposed ? WeightLayout::kIOHW : WeightLayout::kOIHW;
    else if (layout < 65) s.weight_layout = WeightLayout::kGOIHW;
    else if (layout < 80) s.weight_layout = s.transposed ? WeightLayout::kOIHW : WeightLayout::kIOHW;
    else s.weight_layout = depthwise ? WeightLayout::kMIHW : WeightLayout::kGOIHW;
    if (!validate(s).ok()) continue;
    if (!keys.insert(canonical_key(s)).second) continue;
    specs.push_back(s);
  }
  std::vector<Case> cases = named(specs);
  for (size_t k = 0; k < cases.size(); ++k) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%s%03zu_", name_prefix, k);
    cases[k].name = prefix + cases[k].name;
  }
  return cases;
}

// ~150 specs at small sizes (channels <= 16, images <= 12, kernels <= 5): every run.
std::vector<Case> random_cases() { return random_cases(20240611u, 150, RandomLimits{}, "r"); }

// An opt-in sweep at the sizes of real layers' tiles, where the templates take their
// wider paths (16-lane vectors, several vectors a tile, rows too wide to unroll):
// CONVJIT_RANDOM_SPECS=SEED:COUNT (e.g. 7:200; about 0.4 s a spec on a 2-core Zen 4)
// draws COUNT specs of up to 48 channels, 72x72 images and 7x7 kernels. Unset, it adds
// no tests; anything but two unsigned numbers around a colon (COUNT above 0) stops.
std::vector<Case> opt_in_random_cases() {
  const char* request = std::getenv("CONVJIT_RANDOM_SPECS");
  if (request == nullptr || *request == '\0') return {};
  unsigned seed = 0;
  size_t count = 0;
  int consumed = 0;
  const char* colon = std::strchr(request, ':');
  const bool digits_first = std::isdigit(static_cast<unsigned char>(request[0])) && colon != nullptr &&
                            std::isdigit(static_cast<unsigned char>(colon[1]));
  if (!digits_first || std::sscanf(request, "%u:%zu%n", &seed, &count, &consumed) != 2 ||
      request[consumed] != '\0' || count == 0) {
    std::fprintf(stderr, "CONVJIT_RANDOM_SPECS='%s': expected SEED:COUNT, e.g. 7:200\n", request);
    std::abort();
  }
  return random_cases(seed, count, RandomLimits{48, 72, 7}, "s");
}

// ---- The tests ---------------------------------------------------------------------

class Correctness : public testing::TestWithParam<Case> {};

TEST_P(Correctness, MatchesReference) {
  expect_matches_reference(GetParam().spec, seed_of(GetParam().name));
}

INSTANTIATE_TEST_SUITE_P(Geometry, Correctness, testing::ValuesIn(geometry_grid()), case_name);
INSTANTIATE_TEST_SUITE_P(PaddingModes, Correctness, testing::ValuesIn(padding_mode_grid()), case_name);
INSTANTIATE_TEST_SUITE_P(Features, Correctness, testing::ValuesIn(feature_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(EdgeSizes, Correctness, testing::ValuesIn(edge_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(RandomSweep, Correctness, testing::ValuesIn(random_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(LargerRandomSweep, Correctness, testing::ValuesIn(opt_in_random_cases()), case_name);

// A malformed request must stop the run with a message naming it, not run no tests.
TEST(LargerRandomSweepRequest, MalformedStopsWithMessage) {
  for (const char* bad : {"7", "7:", ":5", "7:0", "7:-5", "-1:5", "7:5x", "a:5"}) {
    EXPECT_DEATH(
        {
          ScopedEnv request("CONVJIT_RANDOM_SPECS", bad);
          opt_in_random_cases();
        },
        "expected SEED:COUNT")
        << bad;
  }
}

TEST(LargerRandomSweepRequest, WellFormedDrawsThatMany) {
  ScopedEnv request("CONVJIT_RANDOM_SPECS", "7:3");
  const std::vector<Case> cases = opt_in_random_cases();
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].name.rfind("s000_", 0), 0u) << cases[0].name;
}

class SeedExamples : public testing::TestWithParam<SeedCase> {};

TEST_P(SeedExamples, MatchReferenceWithThePrintedShape) {
  const SeedCase& c = GetParam();
  ASSERT_TRUE(validate(c.spec).ok()) << validate(c.spec).message();
  EXPECT_EQ(output_shape(c.spec), c.printed_shape);
  if (!c.arange_input) {
    expect_matches_reference(c.spec, seed_of(c.name), c.lo, c.hi);
    return;
  }
  auto kernel = kernel_for(c.spec);
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  Problem p = make_problem(c.spec, seed_of(c.name), c.lo, c.hi);
  for (size_t k = 0; k < p.src.size(); ++k) p.src[k] = static_cast<double>(k);
  p.expected = reference_conv(c.spec, p.src, p.weights, &p.bias);
  HostTensor src(c.spec.dtype, vec(input_shape(c.spec)));
  HostTensor weights(c.spec.dtype, weight_dims(c.spec));
  HostTensor bias(c.spec.dtype, {c.spec.c_out});
  HostTensor dst(c.spec.dtype, vec(output_shape(c.spec)));
  run_and_compare(*kernel, p, src, weights, &bias, dst);
}

INSTANTIATE_TEST_SUITE_P(Seeds, SeedExamples, testing::ValuesIn(seed_cases()),
                         [](const testing::TestParamInfo<SeedCase>& info) { return info.param.name; });

// ---- Strided caller tensors -----------------------------------------------------------

// Specs that the tests above already compiled, so that these cost no compile: a
// dense and a grouped forward, a transposed, a depthwise MIHW, a GOIHW (rank-5
// weights) and an f16 one.
std::vector<Case> strided_cases() {
  std::vector<Case> cases;
  const std::vector<Case> geometry = geometry_grid();
  const std::vector<Case> features = feature_cases();
  cases.push_back(geometry[0]);   // forward, groups 1, bias
  cases.push_back(geometry[13]);  // forward, groups 2, stride 2x3
  cases.push_back(geometry[22]);  // transposed
  for (const Case& c : features) {
    const ConvSpec& s = c.spec;
    const bool mihw = s.weight_layout == WeightLayout::kMIHW && !s.transposed && s.has_bias;
    const bool goihw = s.weight_layout == WeightLayout::kGOIHW && s.groups == 2 && !s.transposed;
    const bool f16 = s.dtype == DataType::kFloat16 && s.transposed && s.has_bias &&
                     s.compute_mode == ComputeMode::kDefault;
    if (mihw || goihw || f16) cases.push_back(c);
  }
  return cases;
}

class StridedViews : public testing::TestWithParam<Case> {};

// src is a channel slice of a larger tensor with padded rows, the weights have a
// padded outermost stride, the bias sits inside a larger buffer and dst has padded
// rows and planes: the result must equal the dense one, and nothing outside the
// views may change.
TEST_P(StridedViews, MatchReferenceAndTouchOnlyTheirElements) {
  const ConvSpec& s = GetParam().spec;
  auto kernel = kernel_for(s);
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  const Problem p = make_problem(s, seed_of(GetParam().name) + 7);

  const int64_t extra_channels = 3, first_channel = 2, row = s.w_in + 4;
  const int64_t plane = s.h_in * row;
  HostTensor src(s.dtype, vec(input_shape(s)),
                 {(s.c_in + extra_channels) * plane, plane, row, 1}, first_channel * plane);

  std::vector<int64_t> wdims = weight_dims(s), wstrides(wdims.size(), 1);
  for (int d = static_cast<int>(wdims.size()) - 2; d >= 0; --d) wstrides[d] = wstrides[d + 1] * wdims[d + 1];
  wstrides[0] += 5;  // gaps between outermost slices
  HostTensor weights(s.dtype, wdims, wstrides, 3);

  HostTensor bias(s.dtype, {s.c_out}, {1}, 4);

  const auto out = output_shape(s);
  const int64_t out_row = out[3] + 3, out_plane = out[2] * out_row + 2;
  HostTensor dst(s.dtype, vec(out), {out[1] * out_plane + 1, out_plane, out_row, 1}, 1);

  run_and_compare(*kernel, p, src, weights, s.has_bias ? &bias : nullptr, dst);
}

TEST_P(StridedViews, ZeroBatchStrideBroadcastsOneImage) {
  // A zero stride is a legal view (numpy broadcasting): every image is the same.
  const ConvSpec& s = GetParam().spec;
  auto kernel = kernel_for(s);
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  Problem p = make_problem(s, seed_of(GetParam().name) + 9);
  const int64_t image = s.c_in * s.h_in * s.w_in;
  for (size_t k = image; k < p.src.size(); ++k) p.src[k] = p.src[k % image];
  p.expected = reference_conv(s, p.src, p.weights, s.has_bias ? &p.bias : nullptr);
  HostTensor src(s.dtype, vec(input_shape(s)), {0, s.h_in * s.w_in, s.w_in, 1});
  HostTensor weights(s.dtype, weight_dims(s));
  HostTensor bias(s.dtype, {s.c_out});
  HostTensor dst(s.dtype, vec(output_shape(s)));
  // fill() writes every logical element; with stride 0 the images share storage and
  // the last write wins, which is the same image.
  run_and_compare(*kernel, p, src, weights, s.has_bias ? &bias : nullptr, dst);
}

INSTANTIATE_TEST_SUITE_P(Reused, StridedViews, testing::ValuesIn(strided_cases()), case_name);

// ---- Suite bookkeeping -----------------------------------------------------------------

TEST(CorrectnessSuite, SpecListsAreValidAndWithinTheCompileBudget) {
  std::set<std::string> keys;
  int64_t random = 0;
  for (const auto& list : {geometry_grid(), padding_mode_grid(), feature_cases(), edge_cases(), random_cases()}) {
    for (const Case& c : list) {
      EXPECT_TRUE(validate(c.spec).ok()) << c.name << ": " << validate(c.spec).message();
      keys.insert(canonical_key(c.spec));
    }
  }
  for (const SeedCase& c : seed_cases()) keys.insert(canonical_key(c.spec));
  random = static_cast<int64_t>(random_cases().size());
  EXPECT_GE(random, 140);
  EXPECT_LE(keys.size(), 350u) << "each distinct spec costs a JIT compile";
  std::printf("correctness suite: %zu distinct specs (%lld random)\n", keys.size(),
              static_cast<long long>(random));
}

}  // namespace
}  // namespace convjit
