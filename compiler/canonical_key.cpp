// The canonical form of a spec and its stable key and hash, used to cache kernels.
#include <cstdio>
#include <sstream>

#include "convjit/conv_spec.h"

namespace convjit {

ConvSpec canonicalize(const ConvSpec& s) {
  ConvSpec c = s;
  const int64_t oh = output_h(s), ow = output_w(s);
  if (!s.transposed) {
    // The smallest bottom/right padding that yields the same output size: rows
    // beyond the last window are never read, so the result is the same function.
    // cover_all is exactly stride-1 extra zero rows/columns and folds in too.
    c.pad_bottom = (oh - 1) * s.stride_h + dilated_kernel_h(s) - s.h_in - s.pad_top;
    c.pad_right = (ow - 1) * s.stride_w + dilated_kernel_w(s) - s.w_in - s.pad_left;
    c.cover_all = false;
  } else {
    // Only pad_bottom - output_padding matters (output = full - top - bottom + op):
    // keep the non-negative part on each side.
    const int64_t net_bottom = s.pad_bottom - effective_output_padding_h(s);
    const int64_t net_right = s.pad_right - effective_output_padding_w(s);
    c.pad_bottom = net_bottom > 0 ? net_bottom : 0;
    c.output_padding_h = net_bottom < 0 ? -net_bottom : 0;
    c.pad_right = net_right > 0 ? net_right : 0;
    c.output_padding_w = net_right < 0 ? -net_right : 0;
    c.outsize_h = c.outsize_w = 0;
  }
  // MegEngine: compute_mode only affects float16 data.
  if (s.dtype == DataType::kFloat32) c.compute_mode = ComputeMode::kDefault;
  return c;
}

std::string canonical_key(const ConvSpec& spec) {
  const ConvSpec s = canonicalize(spec);
  std::ostringstream k;
  // "v1" versions the key format itself: bump it when a field's meaning changes.
  k << "conv2d.v1"
    << " n=" << s.n << " c_in=" << s.c_in << " h_in=" << s.h_in << " w_in=" << s.w_in
    << " c_out=" << s.c_out << " kh=" << s.kh << " kw=" << s.kw << " stride=" << s.stride_h << "x"
    << s.stride_w << " pad=" << s.pad_top << "," << s.pad_bottom << "," << s.pad_left << ","
    << s.pad_right << " dilation=" << s.dilation_h << "x" << s.dilation_w << " groups=" << s.groups
    << " transposed=" << (s.transposed ? 1 : 0) << " output_padding=" << s.output_padding_h << "x"
    << s.output_padding_w << " padding_mode=" << to_string(s.padding_mode)
    << " conv_mode=" << to_string(s.conv_mode) << " dtype=" << to_string(s.dtype)
    << " compute_mode=" << to_string(s.compute_mode) << " wtag=" << to_string(s.weight_layout)
    << " bias=" << (s.has_bias ? 1 : 0);
  return k.str();
}

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis, 0xcbf29ce484222325
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

std::string canonical_hash(const ConvSpec& s) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(canonical_key(s))));
  return buf;
}

}  // namespace convjit
