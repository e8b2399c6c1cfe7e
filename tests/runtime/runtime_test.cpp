// Tests of the runtime API contract (runtime.h): one compile per key under
// concurrent requests, kernels shared by many threads, run() argument errors that
// name the tensor and dimension, the errors of get_kernel, and the tuner's report of
// the candidates it rejected and of the autoscheduler's time.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convjit/autotuner.h"
#include "convjit/conv_spec.h"
#include "convjit/runtime.h"
#include "reference_conv.h"
#include "square_conv.h"

namespace convjit {
namespace {

ConvSpec small_spec(int64_t c_in, int64_t c_out, int64_t k, int64_t stride, int64_t groups,
                    bool bias) {
  ConvSpec s;
  s.n = 2;
  s.c_in = c_in;
  s.h_in = 6;
  s.w_in = 7;
  s.c_out = c_out;
  s.kh = s.kw = k;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = k / 2;
  s.groups = groups;
  s.has_bias = bias;
  return s;
}

// Dense f32 tensors of one spec with random contents and the reference output.
struct F32Problem {
  ConvSpec spec;
  std::vector<float> src, weights, bias;
  std::vector<double> expected;

  F32Problem(const ConvSpec& s, uint32_t seed) : spec(s) {
    const auto src_d = random_values(input_elements(s), seed);
    const auto w_d = random_values(weight_elements(s), seed + 1);
    const auto b_d = random_values(s.c_out, seed + 2);
    // The reference sees the float-rounded values the kernel sees.
    src = to_float(src_d);
    weights = to_float(w_d);
    bias = to_float(b_d);
    const auto b_f = from_float(bias);
    expected = reference_conv(s, from_float(src), from_float(weights), s.has_bias ? &b_f : nullptr);
  }

  std::vector<int64_t> src_shape() const {
    const auto a = input_shape(spec);
    return {a.begin(), a.end()};
  }
  std::vector<int64_t> weight_dims() const {
    const auto a = weight_shape(spec);
    return {a.begin(), a.begin() + weight_rank(spec)};
  }
  std::vector<int64_t> dst_shape() const {
    const auto a = output_shape(spec);
    return {a.begin(), a.end()};
  }

  // Runs the kernel on dense views; returns the status and the relative error.
  Status run(const Kernel& kernel, double* error) const {
    std::vector<float> dst(expected.size(), 0.0f);
    TensorView b = TensorView::dense(bias.data(), {spec.c_out});
    Status status = kernel.run(TensorView::dense(src.data(), src_shape()),
                               TensorView::dense(weights.data(), weight_dims()),
                               spec.has_bias ? &b : nullptr, TensorView::dense(dst.data(), dst_shape()));
    *error = relative_error(from_float(dst), expected);
    return status;
  }
};

// Eight specs whose cache keys differ in fields every kernel is specialized on
// (kernel size, stride, groups, channels), so each needs its own compile.
std::vector<ConvSpec> eight_specs() {
  return {small_spec(2, 3, 1, 1, 1, false), small_spec(2, 3, 3, 1, 1, true),
          small_spec(4, 4, 3, 2, 2, false), small_spec(3, 6, 3, 1, 3, true),
          small_spec(3, 5, 2, 1, 1, false), small_spec(4, 2, 5, 2, 1, true),
          small_spec(1, 4, 3, 3, 1, false), small_spec(6, 6, 3, 1, 6, false)};
}

TEST(Runtime, SixteenThreadsCompileEachOfEightSpecsExactlyOnce) {
  // Fresh, and without the disk cache, so that every spec really compiles here.
  RuntimeOptions options;
  options.disk.enabled = false;
  Runtime runtime(options);
  const std::vector<ConvSpec> specs = eight_specs();
  std::vector<F32Problem> problems;
  for (size_t k = 0; k < specs.size(); ++k) problems.emplace_back(specs[k], 100 + 10 * k);

  constexpr int kThreads = 16;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::vector<std::string>> keys(kThreads, std::vector<std::string>(specs.size()));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<size_t> order(specs.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = k;
      std::mt19937 gen(1000 + t);
      std::shuffle(order.begin(), order.end(), gen);
      // Start together so that requests for one key really overlap.
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (size_t k : order) {
        auto kernel = runtime.get_kernel(specs[k], "host");
        std::string failure;
        if (!kernel.ok()) {
          failure = "get_kernel: " + kernel.status().message();
        } else {
          keys[t][k] = kernel->key();
          double error = 0;
          const Status status = problems[k].run(*kernel, &error);
          if (!status.ok()) failure = "run: " + status.message();
          else if (!(error <= 1e-4)) failure = "relative error " + std::to_string(error);
        }
        if (!failure.empty()) {
          std::lock_guard<std::mutex> lock(mutex);
          failures.push_back("thread " + std::to_string(t) + " spec " + canonical_key(specs[k]) + ": " + failure);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (const std::string& f : failures) ADD_FAILURE() << f;
  const CacheStats stats = runtime.stats();
  EXPECT_EQ(stats.misses, 8);
  EXPECT_EQ(stats.compiles, 8);
  EXPECT_EQ(stats.hits, kThreads * 8 - 8);
  EXPECT_EQ(stats.entries, 8);
  EXPECT_EQ(stats.compile_failures, 0);
  EXPECT_GT(stats.compile_seconds, 0.0);
  for (size_t k = 0; k < specs.size(); ++k)
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(keys[t][k], keys[0][k]) << "spec " << k;
}

TEST(Kernel, RunsConcurrentlyFromManyThreads) {
  auto kernel = Runtime::global().get_kernel(small_spec(3, 6, 3, 1, 3, true), "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  constexpr int kThreads = 8, kRuns = 25;
  std::atomic<int> bad{0};
  std::mutex mutex;
  std::string first_failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread its own inputs and output (outputs must not alias).
      const F32Problem problem(kernel->spec(), 500 + 3 * t);
      for (int r = 0; r < kRuns; ++r) {
        double error = 0;
        const Status status = problem.run(*kernel, &error);
        if (!status.ok() || !(error <= 1e-4)) {
          if (bad++ == 0) {
            std::lock_guard<std::mutex> lock(mutex);
            first_failure = status.ok() ? "relative error " + std::to_string(error) : status.message();
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(bad.load(), 0) << first_failure;
}

TEST(Kernel, SharedInputsFromManyThreads) {
  auto kernel = Runtime::global().get_kernel(small_spec(2, 3, 3, 1, 1, true), "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  const F32Problem problem(kernel->spec(), 77);  // read by every thread at once
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < 20; ++r) {
        double error = 0;
        if (!problem.run(*kernel, &error).ok() || !(error <= 1e-4)) ++bad;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(bad.load(), 0);
}

// ---- run() argument errors --------------------------------------------------------

class RunErrors : public testing::Test {
 protected:
  void SetUp() override {
    auto k = Runtime::global().get_kernel(spec_, "host");
    ASSERT_TRUE(k.ok()) << k.status().message();
    kernel_ = std::make_unique<Kernel>(*k);
  }

  // Runs with the given views and expects kInvalidArgument whose message contains
  // every fragment, and dst left untouched.
  void expect_error(const TensorView& src, const TensorView& weights, const TensorView* bias,
                    const TensorView& dst, const std::vector<std::string>& fragments) {
    std::fill(dst_.begin(), dst_.end(), 42.0f);
    const Status status = kernel_->run(src, weights, bias, dst);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.message();
    for (const std::string& f : fragments)
      EXPECT_NE(status.message().find(f), std::string::npos)
          << "message \"" << status.message() << "\" lacks \"" << f << "\"";
    for (float v : dst_) ASSERT_EQ(v, 42.0f) << "dst written by a failing run";
  }

  TensorView src() { return TensorView::dense(src_.data(), {2, 4, 5, 6}); }
  TensorView weights() { return TensorView::dense(weights_.data(), {6, 2, 3, 3}); }
  TensorView dst() { return TensorView::dense(dst_.data(), {2, 6, 5, 6}); }

  // groups 2, pad 1: src (2, 4, 5, 6), weights (6, 2, 3, 3), dst (2, 6, 5, 6).
  const ConvSpec spec_ = [] {
    ConvSpec s = small_spec(4, 6, 3, 1, 2, true);
    s.h_in = 5;
    s.w_in = 6;
    return s;
  }();
  std::unique_ptr<Kernel> kernel_;
  std::vector<float> src_ = std::vector<float>(2 * 4 * 5 * 6 * 2, 1.0f);  // room for larger views
  std::vector<float> weights_ = std::vector<float>(6 * 2 * 3 * 3 * 2, 1.0f);
  std::vector<float> bias_ = std::vector<float>(12, 1.0f);
  std::vector<float> dst_ = std::vector<float>(2 * 6 * 5 * 6 * 2, 0.0f);
};

TEST_F(RunErrors, ValidViewsRun) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  EXPECT_TRUE(kernel_->run(src(), weights(), &b, dst()).ok());
}

TEST_F(RunErrors, WrongSrcShapeNamesTensorDimensionAndExpectedShape) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(TensorView::dense(src_.data(), {2, 5, 5, 6}), weights(), &b, dst(),
               {"src", "dimension 1", "5", "(2, 4, 5, 6)"});
  expect_error(TensorView::dense(src_.data(), {2, 4, 5, 7}), weights(), &b, dst(),
               {"src", "dimension 3", "7", "(2, 4, 5, 6)"});
}

TEST_F(RunErrors, WrongWeightShape) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(src(), TensorView::dense(weights_.data(), {6, 4, 3, 3}), &b, dst(),
               {"weights", "dimension 1", "(6, 2, 3, 3)"});
}

TEST_F(RunErrors, WrongDstShape) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(src(), weights(), &b, TensorView::dense(dst_.data(), {2, 6, 4, 6}),
               {"dst", "dimension 2", "4", "(2, 6, 5, 6)"});
}

TEST_F(RunErrors, WrongBiasShape) {
  TensorView b = TensorView::dense(bias_.data(), {7});
  expect_error(src(), weights(), &b, dst(), {"bias", "dimension 0", "7", "(6)"});
}

TEST_F(RunErrors, WrongRank) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(src(), TensorView::dense(weights_.data(), {6, 2, 9}), &b, dst(),
               {"weights", "rank 3", "rank 4"});
  // GOIHW shape for an OIHW spec: rank 5 where 4 is expected.
  expect_error(src(), TensorView::dense(weights_.data(), {2, 3, 2, 3, 3}), &b, dst(),
               {"weights", "rank 5", "rank 4"});
  expect_error(TensorView::dense(src_.data(), {4, 5, 6}), weights(), &b, dst(), {"src", "rank 3"});
}

TEST_F(RunErrors, NullData) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(TensorView{nullptr, {2, 4, 5, 6}, {}}, weights(), &b, dst(), {"src", "null"});
  expect_error(src(), weights(), &b, TensorView{nullptr, {2, 6, 5, 6}, {}}, {"dst", "null"});
  TensorView null_bias{nullptr, {6}, {}};
  expect_error(src(), weights(), &null_bias, dst(), {"bias", "null"});
}

TEST_F(RunErrors, MissingBiasWhenTheSpecHasOne) {
  expect_error(src(), weights(), nullptr, dst(), {"bias"});
}

TEST_F(RunErrors, BiasGivenWhenTheSpecHasNone) {
  ConvSpec s = spec_;
  s.has_bias = false;
  auto k = Runtime::global().get_kernel(s, "host");
  ASSERT_TRUE(k.ok()) << k.status().message();
  kernel_ = std::make_unique<Kernel>(*k);
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(src(), weights(), &b, dst(), {"bias"});
  EXPECT_TRUE(kernel_->run(src(), weights(), nullptr, dst()).ok());
}

TEST_F(RunErrors, InnermostStrideMustBeOne) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(src(), weights(), &b, TensorView{dst_.data(), {2, 6, 5, 6}, {360, 60, 12, 2}},
               {"dst", "innermost stride", "2"});
  expect_error(TensorView{src_.data(), {2, 4, 5, 6}, {240, 60, 12, 2}}, weights(), &b, dst(),
               {"src", "innermost stride"});
}

TEST_F(RunErrors, StrideCountMustMatchRank) {
  TensorView b = TensorView::dense(bias_.data(), {6});
  expect_error(TensorView{src_.data(), {2, 4, 5, 6}, {30, 6, 1}}, weights(), &b, dst(), {"src", "3"});
}

// ---- get_kernel errors and kernel properties ----------------------------------------

TEST(Runtime, InvalidSpecReturnsTheValidationErrorWithoutCompiling) {
  Runtime runtime;
  ConvSpec s = small_spec(4, 6, 3, 1, 1, false);
  s.groups = 4;  // c_out 6 not divisible by 4
  auto kernel = runtime.get_kernel(s, "host");
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), StatusCode::kInvalidSpec);
  EXPECT_EQ(kernel.status().message(), validate(s).message());
  EXPECT_EQ(runtime.stats().misses, 0);
  EXPECT_EQ(runtime.stats().entries, 0);
}

TEST(Runtime, UnknownTargetIsAnError) {
  Runtime runtime;
  auto kernel = runtime.get_kernel(small_spec(2, 3, 1, 1, 1, false), "no-such-target");
  ASSERT_FALSE(kernel.ok());
  EXPECT_NE(kernel.status().code(), StatusCode::kInternal);
  EXPECT_NE(kernel.status().message().find("no-such-target"), std::string::npos)
      << kernel.status().message();
  EXPECT_EQ(runtime.stats().entries, 0);
}

TEST(Runtime, KernelDescribesItsCompilation) {
  Runtime runtime;
  const ConvSpec s = small_spec(2, 3, 3, 1, 1, true);
  auto kernel = runtime.get_kernel(s, "host");
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_GT(kernel->compile_seconds(), 0.0);
  EXPECT_EQ(kernel->spec(), s);
  EXPECT_EQ(kernel->target(), host_target_string());
  EXPECT_FALSE(kernel->schedule().empty());
  EXPECT_FALSE(kernel->key().empty());
  // Compiled here, or loaded from the disk cache an earlier run filled.
  const CacheStats stats = runtime.stats();
  EXPECT_EQ(stats.compiles + stats.disk_hits, 1);
  EXPECT_GT(stats.compile_seconds + stats.load_seconds, 0.0);
}

TEST(Runtime, EqualAndEquivalentSpecsShareOneCompile) {
  Runtime runtime;
  ConvSpec a = small_spec(2, 3, 3, 3, 1, false);
  a.pad_top = a.pad_left = 0;
  a.pad_bottom = a.pad_right = 0;
  a.cover_all = true;  // Chainer's cover_all is extra bottom/right zero padding
  ConvSpec b = a;
  b.cover_all = false;
  b.pad_bottom = (output_h(a) - 1) * a.stride_h + a.kh - a.h_in;
  b.pad_right = (output_w(a) - 1) * a.stride_w + a.kw - a.w_in;
  ASSERT_EQ(canonical_key(a), canonical_key(b));
  auto first = runtime.get_kernel(a, "host");
  auto again = runtime.get_kernel(a, "host");
  auto equivalent = runtime.get_kernel(b, "host");
  ASSERT_TRUE(first.ok() && again.ok() && equivalent.ok());
  EXPECT_EQ(runtime.stats().misses, 1);
  EXPECT_EQ(runtime.stats().hits, 2);
  EXPECT_EQ(first->key(), equivalent->key());
  // Each handle still reports the spec it was requested with, and computes it.
  EXPECT_EQ(equivalent->spec(), b);
  double error = 0;
  EXPECT_TRUE(F32Problem(b, 9).run(*equivalent, &error).ok());
  EXPECT_LE(error, 1e-4);
  EXPECT_TRUE(F32Problem(a, 9).run(*first, &error).ok());
  EXPECT_LE(error, 1e-4);
}

TEST(Runtime, KernelOutlivesItsRuntime) {
  const ConvSpec s = small_spec(2, 3, 3, 2, 1, true);
  std::unique_ptr<Kernel> kernel;
  {
    Runtime runtime;
    auto k = runtime.get_kernel(s, "host");
    ASSERT_TRUE(k.ok()) << k.status().message();
    kernel = std::make_unique<Kernel>(*k);
  }
  double error = 0;
  const Status status = F32Problem(s, 31).run(*kernel, &error);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_LE(error, 1e-4);
}

TEST(Runtime, GlobalIsOneInstance) { EXPECT_EQ(&Runtime::global(), &Runtime::global()); }

// A candidate the tuner rejects is reported with its schedule and the reason, not
// only counted: here a starting point naming a template that does not exist. A
// starting point from another spec (as the nearest tuned record gives) whose knob
// values this spec does not allow is fitted to the allowed ones, not rejected.
TEST(Autotuner, ReportsWhyEachRejectedCandidateWasRejectedAndFitsStartingPoints) {
  const ConvSpec s = square_conv(16, 32, 7, 7, 1, 1, 0);  // 7 rows: rows=16 is not allowed
  TuneOptions options;
  options.budget_seconds = 3;
  options.timing_runs = 3;
  options.starting_points = {
      ScheduleRequest{"no_such_template", "x_tile=3"},
      ScheduleRequest{"cpu_pointwise", "c_block=96,c_tile=6,direct_output=1,lanes=16,pack_input=0,rows=16,stage=0,"
                                       "tile_order=0,x_vectors=4"}};
  auto result = tune(s, "host", options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->rejections.size(), static_cast<size_t>(result->rejected));
  bool unknown_template_reported = false;
  for (const std::string& why : result->rejections) {
    if (why.find("no_such_template(x_tile=3): no kernel") == 0 &&
        why.find("no_such_template", 20) != std::string::npos) {
      unknown_template_reported = true;
    }
    EXPECT_EQ(why.find("cpu_pointwise(c_block=96"), std::string::npos) << "not fitted to the spec: " << why;
  }
  EXPECT_TRUE(unknown_template_reported) << "rejections: " << result->rejections.size();
}

// Halide's autoscheduled kernel, when the budget lets the tuner measure one, is timed
// again in the rounds that confirm the tuned and default times (cold and warm,
// interleaved), so that the ratios the tuner reports compare one moment of the machine.
TEST(Autotuner, TimesTheAutoscheduledKernelInTheConfirmationRounds) {
  const ConvSpec s = square_conv(8, 16, 12, 12, 3, 1, 1);
  TuneOptions options;
  options.budget_seconds = 20;  // the autoschedulers run while a quarter (5 s) remains
  options.timing_runs = 3;
  auto result = tune(s, "host", options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_GT(result->autoscheduler_ms, 0) << "no autoscheduler candidate was measured";
  EXPECT_TRUE(std::isfinite(result->autoscheduler_ms));
  EXPECT_TRUE(result->autoscheduler_confirmed) << result->autoscheduler_description;
  // Warm too (one buffer set), beside the default's and the tuned kernel's warm times.
  EXPECT_GT(result->autoscheduler_warm_ms, 0);
  EXPECT_GT(result->default_warm_ms, 0);
  EXPECT_GT(result->best_warm_ms, 0);
  EXPECT_EQ(result->autoscheduler_description.rfind("halide_autoscheduler(", 0), 0u) << result->autoscheduler_description;
  EXPECT_GT(result->default_ms, 0);
  EXPECT_LE(result->best_ms, result->default_ms);
}

}  // namespace
}  // namespace convjit
