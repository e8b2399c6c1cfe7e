// oneDNN timing of a ConvSpec's geometry: convolution_forward or deconvolution_forward,
// blocked and NCHW, with OpenMP's thread count and wait policy under control.
#include "onednn_peer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#ifdef CONVJIT_HAVE_ONEDNN
#include <omp.h>

#include "dnnl.hpp"
#endif

namespace convjit::peers {

namespace {

double median_ms(int repeat, const std::function<void()>& body) {
  body();  // warm-up: page faults, thread pools, caches
  body();
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  std::perror("convjit: warning: re-executing with OMP_WAIT_POLICY=passive");
}

#ifndef CONVJIT_HAVE_ONEDNN

bool onednn_available() { return false; }

StatusOr<std::unique_ptr<OneDnnConvolution>> OneDnnConvolution::create(const ConvSpec&, int, int) {
  return Status::unsupported("convjit was built without oneDNN (install libdnnl-dev and reconfigure)");
}

#else

bool onednn_available() { return true; }

namespace {

using dnnl::memory;

void fill(memory& m) {
  float* data = static_cast<float*>(m.get_data_handle());
  const size_t count = m.get_desc().get_size() / sizeof(float);
  for (size_t i = 0; i < count; ++i) data[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
}

class DnnlConvolution final : public OneDnnConvolution {
 public:
  DnnlConvolution(const ConvSpec& s, int buffer_sets) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    const memory::dims src_dims = {s.n, s.c_in, s.h_in, s.w_in};
    const memory::dims dst_dims = {s.n, s.c_out, output_h(s), output_w(s)};
    const bool grouped = s.groups > 1;
    const memory::dims wei_dims = grouped ? memory::dims{s.groups, s.c_out / s.groups, s.c_in / s.groups, s.kh, s.kw}
                                          : memory::dims{s.c_out, s.c_in, s.kh, s.kw};
    const memory::dims bias_dims = {s.c_out};
    const auto f32 = memory::data_type::f32;
    auto any = [&](const memory::dims& d) { return memory::desc(d, f32, memory::format_tag::any); };
    const memory::desc bias_md(bias_dims, f32, memory::format_tag::x);
    const memory::dims strides = {s.stride_h, s.stride_w};
    const memory::dims dilates = {s.dilation_h - 1, s.dilation_w - 1};
    const memory::dims pad_l = {s.pad_top, s.pad_left};
    // A transposed output_padding is extra bottom/right output: negative padding there.
    const memory::dims pad_r = {s.pad_bottom - s.output_padding_h, s.pad_right - s.output_padding_w};

    memory::desc src_md, wei_md, dst_md;
    if (!s.transposed) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                        any(src_dims), any(wei_dims), bias_md, any(dst_dims), strides, dilates,
                                        pad_l, pad_r);
      dnnl::convolution_forward::primitive_desc pd(d, engine_);
      src_md = pd.src_desc();
      wei_md = pd.weights_desc();
      dst_md = pd.dst_desc();
      implementation_ = pd.impl_info_str();
      primitive_ = dnnl::convolution_forward(pd);
    } else {
      dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                          dnnl::algorithm::deconvolution_direct, any(src_dims), any(wei_dims),
                                          bias_md, any(dst_dims), strides, dilates, pad_l, pad_r);
      dnnl::deconvolution_forward::primitive_desc pd(d, engine_);
      src_md = pd.src_desc();
      wei_md = pd.weights_desc();
      dst_md = pd.dst_desc();
      implementation_ = pd.impl_info_str();
      primitive_ = dnnl::deconvolution_forward(pd);
    }
    for (int k = 0; k < std::max(buffer_sets, 1); ++k) {
      Buffers b;
      b.src_plain = memory({src_dims, f32, memory::format_tag::nchw}, engine_);
      b.dst_plain = memory({dst_dims, f32, memory::format_tag::nchw}, engine_);
      b.src = memory(src_md, engine_);
      b.wei = memory(wei_md, engine_);
      b.dst = memory(dst_md, engine_);
      b.bias = memory(bias_md, engine_);
      fill(b.src_plain);
      fill(b.wei);
      fill(b.bias);
      sets_.push_back(b);
    }
    to_blocked_ = dnnl::reorder(sets_[0].src_plain, sets_[0].src);
    to_plain_ = dnnl::reorder(sets_[0].dst, sets_[0].dst_plain);
    for (Buffers& b : sets_) to_blocked_.execute(stream_, b.src_plain, b.src);
    stream_.wait();
  }

  void run_blocked() override {
    execute(next_set());
    stream_.wait();
  }
  void run_nchw() override {
    Buffers& b = next_set();
    to_blocked_.execute(stream_, b.src_plain, b.src);
    execute(b);
    to_plain_.execute(stream_, b.dst, b.dst_plain);
    stream_.wait();
  }
  const std::string& implementation() const override { return implementation_; }

 private:
  struct Buffers {
    memory src_plain, dst_plain, src, wei, dst, bias;
  };

  Buffers& next_set() {
    Buffers& b = sets_[next_];
    next_ = (next_ + 1) % sets_.size();
    return b;
  }

  void execute(Buffers& b) {
    primitive_.execute(stream_, {{DNNL_ARG_SRC, b.src}, {DNNL_ARG_WEIGHTS, b.wei}, {DNNL_ARG_BIAS, b.bias},
                                 {DNNL_ARG_DST, b.dst}});
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  dnnl::reorder to_blocked_, to_plain_;
  std::vector<Buffers> sets_;
  size_t next_ = 0;
  std::string implementation_;
};

}  // namespace

StatusOr<std::unique_ptr<OneDnnConvolution>> OneDnnConvolution::create(const ConvSpec& requested, int threads,
                                                                     int buffer_sets) {
  if (requested.dtype != DataType::kFloat32) return Status::unsupported("oneDNN is timed on f32 only");
  omp_set_num_threads(threads);
  try {
    return std::unique_ptr<OneDnnConvolution>(new DnnlConvolution(canonicalize(requested), buffer_sets));
  } catch (const dnnl::error& e) {
    return Status::unsupported(std::string("oneDNN rejects this geometry: ") + e.what());
  }
}

#endif

StatusOr<OneDnnTimes> time_onednn(const ConvSpec& spec, int threads, int repeat) {
  auto convolution = OneDnnConvolution::create(spec, threads);
  if (!convolution.ok()) return convolution.status();
  OneDnnConvolution& c = **convolution;
  OneDnnTimes times;
  times.implementation = c.implementation();
  times.blocked_ms = median_ms(repeat, [&] { c.run_blocked(); });
  times.nchw_ms = median_ms(repeat, [&] { c.run_nchw(); });
  return times;
}

}  // namespace convjit::peers
