// layer_cases: one spec per kind of layer the schedule templates distinguish, with
// the features that change index arithmetic (layouts, groups, dilation, flips,
// padding modes, f16, transposed phases, tiny widths). The CPU template tests and the
// CUDA tests both force every applicable template on each.
#pragma once

#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "square_conv.h"

namespace convjit {

struct LayerCase {
  std::string name;
  ConvSpec spec;
};

inline std::vector<LayerCase> layer_cases() {
  std::vector<LayerCase> c;
  c.push_back({"dense3x3_wide", square_conv(8, 16, 12, 20, 3, 1, 1)});
  c.push_back({"dense3x3_narrow_bias", square_conv(16, 32, 7, 7, 3, 1, 1)});
  c.back().spec.has_bias = true;
  c.push_back({"pointwise_strided", square_conv(16, 16, 9, 9, 1, 2, 0)});
  // 80 channels on 14-wide rows: cpu_channel_blocked's default takes blocks of two
  // vectors (32 channels) by 7 columns, the last block overlapping its neighbour.
  c.push_back({"dense3x3_two_channel_vectors", square_conv(8, 80, 14, 14, 3, 1, 1)});
  c.back().spec.has_bias = true;
  c.push_back({"first_layer_7x7", square_conv(3, 16, 30, 30, 7, 2, 3)});
  {
    ConvSpec s = square_conv(32, 32, 6, 6, 3, 1, 1);
    s.groups = 2;  // 16 output channels per group: one vector
    s.weight_layout = WeightLayout::kGOIHW;
    c.push_back({"grouped_goihw", s});
  }
  {
    // Weights in blocks of 16 output channels (oihw16o): read as they are, with no
    // repacking; 3x3 grouped with a bias, and 1x1 (cpu_pointwise's broadcasts).
    ConvSpec s = square_conv(8, 32, 6, 9, 3, 1, 1);
    s.groups = 2;
    s.has_bias = true;
    s.weight_layout = WeightLayout::kOIHW16o;
    c.push_back({"grouped_weights_in_blocks_of_16", s});
    ConvSpec t = square_conv(24, 48, 7, 7, 1, 1, 0);
    t.weight_layout = WeightLayout::kOIHW16o;
    c.push_back({"pointwise_weights_in_blocks_of_16", t});
    // Transposed, 4x4 stride 2 (DCGAN), two vectors of channels by 8 columns.
    ConvSpec u = square_deconv(8, 64, 4, 4, 4, 2, 1);
    u.weight_layout = WeightLayout::kOIHW16o;
    c.push_back({"transposed_weights_in_blocks_of_16", u});
  }
  {
    // Groups narrower than a machine vector (ResNeXt's 32 groups of 4 or 8 channels):
    // cpu_direct's default tiles a group's channels by several rows (AVX-512);
    // cpu_channel_blocked, forced, vectorizes over them with a narrower vector.
    ConvSpec s = square_conv(32, 32, 11, 11, 3, 2, 1);
    s.groups = 4;  // 8 output channels per group
    s.has_bias = true;
    c.push_back({"grouped_eight_per_group_strided", s});
    ConvSpec t = square_conv(24, 32, 8, 9, 3, 1, 1);
    t.groups = 8;  // 3 input and 4 output channels per group
    c.push_back({"grouped_four_per_group", t});
  }
  {
    ConvSpec s = square_conv(16, 16, 10, 10, 3, 1, 2);
    s.dilation_h = s.dilation_w = 2;
    s.conv_mode = ConvMode::kConvolution;
    s.weight_layout = WeightLayout::kIOHW;
    c.push_back({"dilated_flipped_iohw", s});
  }
  {
    ConvSpec s = square_conv(16, 16, 8, 8, 3, 1, 1);
    s.padding_mode = PaddingMode::kReflect;
    s.dtype = DataType::kFloat16;
    c.push_back({"reflect_f16", s});
  }
  {
    ConvSpec s = ConvSpec::depthwise(2, 8, 11, 13, 2, 3, 3);
    s.stride_h = s.stride_w = 2;
    s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
    s.weight_layout = WeightLayout::kMIHW;
    c.push_back({"depthwise_multiplier_mihw", s});
  }
  {
    ConvSpec s = square_deconv(8, 4, 5, 6, 4, 2, 1);
    s.has_bias = true;
    c.push_back({"transposed", s});
  }
  {
    // 16 output channels: one full vector, so cpu_channel_blocked and the channel
    // axis of cpu_transposed_phases apply too; 14 columns, 7 per phase.
    ConvSpec s = square_deconv(8, 16, 5, 7, 4, 2, 1);
    s.has_bias = true;
    c.push_back({"transposed_channel_vector", s});
  }
  {
    ConvSpec s = square_deconv(16, 32, 5, 5, 3, 2, 1);
    s.groups = 2;
    s.output_padding_w = 1;  // 10 columns: even, as cpu_transposed_phases needs
    s.conv_mode = ConvMode::kConvolution;
    c.push_back({"transposed_grouped_channel_vector", s});
  }
  {
    ConvSpec s = square_deconv(6, 8, 7, 5, 3, 2, 1);
    s.groups = 2;
    s.output_padding_h = 1;
    c.push_back({"transposed_grouped_output_padding", s});
  }
  {
    // 64 output channels on 8 columns: cpu_channel_blocked's default for transposed
    // layers, two channel vectors by 8 columns (every column keeps its phase).
    ConvSpec s = square_deconv(8, 64, 4, 4, 4, 2, 1);
    s.has_bias = true;
    c.push_back({"transposed_two_channel_vectors", s});
  }
  {
    // 32 output channels on 12 columns (6 per phase): cpu_channel_blocked's default
    // with one channel vector by 12 columns, two channel blocks.
    ConvSpec s = square_deconv(8, 32, 6, 6, 3, 2, 1);
    s.output_padding_w = 1;
    c.push_back({"transposed_one_channel_vector_default", s});
  }
  c.push_back({"one_column", square_conv(4, 8, 3, 1, 1, 1, 0)});
  {
    // 1x1 on 400 positions (cpu_pointwise reads the input in place; 20-wide rows, so
    // register tiles cross row ends) and on 117 (its input zero-padded to whole tiles).
    ConvSpec s = square_conv(8, 20, 20, 20, 1, 1, 0);
    s.n = 2;
    s.has_bias = true;
    c.push_back({"pointwise_rows_batch_bias", s});
    ConvSpec t = square_conv(12, 18, 9, 13, 1, 1, 0);
    t.groups = 3;
    t.weight_layout = WeightLayout::kGOIHW;
    c.push_back({"pointwise_grouped_small_image", t});
    // 1x1 with a stride and reflected padding: output (x, y) reads input
    // (2x - 1, 2y - 1), so row -1 reflects to row 1; 16 x 14 outputs.
    ConvSpec u = square_conv(8, 12, 30, 26, 1, 2, 1);
    u.n = 2;
    u.has_bias = true;
    u.padding_mode = PaddingMode::kReflect;
    c.push_back({"pointwise_strided_reflect_padding", u});
  }
  return c;
}

}  // namespace convjit
