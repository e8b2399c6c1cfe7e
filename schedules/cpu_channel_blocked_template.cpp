// cpu_channel_blocked: direct (or transposed) convolution vectorized over output
// channels: the default for narrow rows (7 to 33 wide), kernels larger than 1x1 and
// channel-widening 1x1 layers (preferred_by_default has the measurements), where
// cpu_pointwise, listed before it, does not take the layer.
//
// A block of c_vectors x `lanes` output channels is one (or two) vectors (`lanes` is
// the machine's width, or on groups of 4 or 8 channels, ResNeXt's, as many); a row tile
// of x_tile outputs is x_tile x c_vectors vector accumulators; each (input channel,
// ky, kx) step loads c_vectors weight vectors and broadcasts x_tile input values.
// The weights of a channel block are repacked once per parallel task into a scratch
// buffer with the output channel innermost, so the weight vector is a dense load (in
// OIHW it is a gather). With c_in_chunk the tiles sum a chunk of input channels at a
// time into the task's sums in memory, every tile per chunk (a chunk's weights stay
// in L1), and store_rows stores those sums along the output rows.
// Measured on ResNet-50 res5 3x3 (512 -> 512, 7x7; 2-core AVX-512, 2026-11-21):
// 1.9 ms against cpu_direct's 5.9 ms (3.7 ms without the repacking).
#include <algorithm>

#include "cpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

// A 1x1 kernel with a stride: its window_input skips input positions, so a staged
// copy of it is smaller than the input.
bool reads_strided_window(const ConvAlgorithm& a) {
  return a.window_input.defined() && (a.spec.stride_w > 1 || a.spec.stride_h > 1);
}

// Output rows per strip for parallel=2: input rows of about 128 KiB (half a 2-core
// machine's share of L2), and at least kMinParallelTasks strips when the height allows.
int strip_rows(const ConvSpec& s) {
  const int64_t row_bytes = s.c_in * s.w_in * s.stride_h * 4;
  const int64_t by_cache = std::max<int64_t>(1, (int64_t{128} << 10) / std::max<int64_t>(row_bytes, 1));
  const int64_t by_tasks = std::max<int64_t>(1, output_h(s) * s.n / kMinParallelTasks);
  return static_cast<int>(std::min({by_cache, by_tasks, output_h(s)}));
}

// The channel-vector width: the machine's, or on grouped layers whose groups are not
// a multiple of it, the widest of its halves (down to 4) that divides a group, so that
// a vector's lanes share their group (one broadcast input value); 0 when none does.
int channel_lanes(const ConvSpec& s, int natural) {
  if (s.groups == 1) return s.c_out >= natural ? natural : 0;
  const int64_t per_group = s.c_out / s.groups;
  for (int lanes = natural; lanes >= 4; lanes /= 2) {
    if (per_group % lanes == 0) return lanes;
  }
  return 0;
}

// Channel vectors per register tile: 2 where a block of two vectors fits the output
// channels (of each group, so that the block shares one broadcast input).
std::vector<int> c_vector_choices(const ConvSpec& s, int lanes) {
  const int64_t per_group = s.c_out / s.groups;
  const bool two = s.groups > 1 ? per_group % (2 * lanes) == 0 : s.c_out >= 2 * lanes;
  return two ? std::vector<int>{1, 2} : std::vector<int>{1};
}

// Tiles no wider than the output (ShiftInwards), and the whole row when it fits in
// 14 accumulators, which is what defaults() picks for narrow outputs.
std::vector<int> x_tile_choices(int64_t w_out) {
  std::vector<int> x_tiles;
  for (int t = 4; t <= 14; ++t) {
    // The usual widths, and any that divides the row (11 for 33: no overlap).
    const bool usual = t == 4 || t == 6 || t == 7 || t == 8 || t == 10 || t == 12 || t == 14;
    if (t <= w_out && (usual || w_out % t == 0)) x_tiles.push_back(t);
  }
  if (w_out <= 14 && std::find(x_tiles.begin(), x_tiles.end(), w_out) == x_tiles.end()) {
    x_tiles.push_back(static_cast<int>(w_out));
    std::sort(x_tiles.begin(), x_tiles.end());
  }
  return x_tiles;
}

// The default tile width of one channel vector: the widest choice that redoes at most
// 10% of the columns (ShiftInwards overlaps the last tile), or one of 8 or more that
// divides the row, of at most `max_columns`. Transposed layers take only multiples of
// the stride, so that every tile starts on the same column phase; 0 when there is none.
int default_x_tile(const ConvSpec& s, int max_columns = 14) {
  const int64_t w_out = output_w(s);
  const int stride = s.transposed ? static_cast<int>(s.stride_w) : 1;
  int x_tile = 0;
  for (int t : x_tile_choices(w_out)) {  // choices ascend
    if (t % stride != 0 || t > max_columns) continue;
    if (x_tile == 0 || !tiles_redo_over_a_tenth(w_out, t)) x_tile = t;
  }
  for (int t : x_tile_choices(w_out)) {
    if (t >= 8 && t <= max_columns && t % stride == 0 && w_out % t == 0) x_tile = t;
  }
  return x_tile;
}

// AVX2's default register tile (16 vector registers): two channel vectors by 4
// columns (8 accumulators, two weight vectors for each broadcast input value) where
// a block of two vectors fits and tiles of 4 redo at most a tenth of the row, else
// one vector by at most 8 columns. Against the AVX-512 rule on AVX2 (one vector by
// up to 14 columns: 14 accumulators, the taps' registers spilled; bench/schedule_ab
// --warm, 2-3 rounds, 1 thread, 2-core AMD EPYC Zen 3, 2026-12-02; ratios to oneDNN
// in the same rounds): ResNet-50 res2a 3x3 2 x 4 0.96-1.04x, 1 x 7 1.02x, 1 x 14
// 0.42-0.59x; res3a 1.02x, 0.92x, 0.50-0.69x; res4a (oihw16o, 14 wide) 1.16x, 1.24x,
// 0.58-0.78x; conv1 7x7 0.85x, 0.76x, 0.70x; DeepLab aspp_rate2 (33 wide) 1.05x, 1 x
// 11 0.76-0.97x. Two vectors by 6-8 columns (12-16 accumulators) were 0.46-0.65x.
bool avx2_takes_two_vectors_by_four(const ConvSpec& s, int lanes) {
  return c_vector_choices(s, lanes).back() == 2 && output_w(s) >= 8 && !tiles_redo_over_a_tenth(output_w(s), 4);
}

// Chunks of input channels (per group) for c_in_chunk: 0 (no chunks), the sizes from
// 8 to 64 that divide the group's channels into two chunks or more, and all of them
// (one chunk: the sums in memory, for store_rows).
std::vector<int> c_in_chunk_choices(const ConvSpec& s) {
  std::vector<int> chunks = {0};
  for (int chunk : input_channel_chunks(s, {8, 16, 32, 64})) chunks.push_back(chunk);
  chunks.push_back(static_cast<int>(s.c_in / s.groups));
  return chunks;
}

// The default chunk. Where a block's weights for the whole reduction pass 32 KiB (two
// thirds of a 48 KiB L1), of a forward layer: the largest choice whose weights and
// input rows under the kernel's window (kh padded rows of the chunk's channels) fit
// in 28 KiB together. Against no chunks (bench/schedule_ab --warm, 9 rounds, 2-core
// AVX-512 Xeon, 2026-11-22; 2 threads, then 1): DeepLab's 33-wide dilated 3x3
// 256 -> 256 by 16 1.10x, 1.02x; ResNet-50 3x3 res2a (64 channels, 56 wide) by 8
// 1.07x, 0.99x; res3a (128) by 16 1.05x, 0.99x; res4a (256) 1.09x, 1.00x; res5a
// (512) 1.08x, 1.06x; 1x1 on 7x7 512 -> 2048 by 64 1.12x, 1.14x, 960 -> 320 1.14x,
// 1.12x. Chunks of 8 and 16 were within 3% of each other. The gain is mostly on 2
// threads, whose cores share the L3 the weights otherwise stream from.
//
// Elsewhere one chunk of all the channels (the sums in memory, stored along rows by
// store_rows), where that measured faster than channel vectors stored from the
// register tiles with the channel stride (same method): ResNet-50 conv1 (3 -> 64, 7x7
// stride 2) 1.15x, 1.02x; DCGAN 4x4 stride 2 transposed 128 -> 64 (output planes 4
// KiB apart: the scatter's stores fall in one L1 set) 1.26x, 1.33x, 256 -> 128
// 1.02x, 1.02x. Not on transposed layers of one channel vector (3x3 stride 2
// 64 -> 32: chunks of 8-32 0.92-0.95x) or on groups of 4 or 8 channels (ResNeXt res3a
// 0.93x, 0.94x): 0 there.
//
// On AVX2 (8 lanes) transposed layers take the L1-sized chunks too (same method, 3
// rounds, 1 thread, 2-core AMD EPYC Zen 3, 32 KiB L1d, 2026-12-02; ratios to oneDNN):
// DCGAN 4x4 stride 2 256 -> 128 (128 KiB of a block's weights) by 16 1.50x, by 64
// 1.12x, none 0.63x; 128 -> 64 by 32 1.64x, none 1.59x.
//
// On AVX2 a block of one vector holds a quarter of AVX-512's two-vector weights, so
// the rule above leaves 1x1 layers on 7x7 images in one chunk; chunks of 64 keep the
// chunk's input (12.5 KiB) in L1 for every tile instead (same method, 5 rounds):
// ResNet-50 res5a_branch2c (512 -> 2048) 0.77x against 0.49-0.51x, MobileNetV2
// conv6_3 (960 -> 320) 0.68x against 0.62-0.73x; on 14x14 (res4a_branch1, stride 2)
// chunks measured no faster (0.61x against 0.58-0.68x), so only images of at most
// 64 positions.
int default_c_in_chunk(const ConvSpec& s, int block, int natural_lanes) {
  const int64_t per_group = s.c_in / s.groups;
  const int64_t weight_bytes = s.kh * s.kw * block * 4;
  if (natural_lanes < 16 && !s.transposed && s.kh * s.kw == 1 && output_w(s) * output_h(s) <= 64) {
    int chunk = 0;
    for (int c : c_in_chunk_choices(s)) {
      if (c > 0 && c <= 64 && c < per_group) chunk = c;
    }
    if (chunk > 0) return chunk;
  }
  if ((!s.transposed || natural_lanes < 16) && per_group * weight_bytes > (int64_t{32} << 10)) {
    const int64_t window_bytes = s.kh * (s.w_in + s.pad_left + s.pad_right) * 4;
    const std::vector<int> choices = c_in_chunk_choices(s);
    int chunk = choices[1];  // the smallest, where none fits
    for (int c : choices) {
      if (c > 0 && c * (weight_bytes + window_bytes) <= (int64_t{28} << 10)) chunk = c;
    }
    return chunk;
  }
  if (s.transposed && natural_lanes >= 16 && block >= 2 * natural_lanes &&
      per_group * weight_bytes >= (int64_t{1} << 20)) {
    // Transposed layers whose block of two channel vectors holds 1 MiB of weights or
    // more: chunks of 32 input channels (64 KiB of a block's weights for 4x4 taps),
    // which every row of the block reads from L2, where one chunk streamed them from
    // L3 for each row. Against one chunk (bench/schedule_ab --warm, 11 rounds, ratios
    // to oneDNN, oihw16o, 1 / 2 threads, 2-core AMD EPYC Zen 4, 2026-12-03), DCGAN 4x4
    // stride 2: 4x4 512 -> 256 1.01x / 1.34x against 0.86x / 1.13x; 4x4 1024 -> 512
    // 1.04x / 1.07x against 0.90x / 0.86x; 8x8 512 -> 256 0.97x / 1.01x against 0.80x
    // / 0.90x (chunks of 16 within 7% of 32). On 8x8 256 -> 128 (512 KiB a block)
    // chunks measured within the noise (1.02x against 1.04x, 1 thread).
    int chunk = 0;
    for (int c : c_in_chunk_choices(s)) {
      if (c > 0 && c <= 32 && c < per_group) chunk = c;
    }
    if (chunk > 0) return chunk;
  }
  const bool one_chunk = s.transposed ? block >= 2 * natural_lanes : s.groups == 1;
  return one_chunk ? static_cast<int>(per_group) : 0;
}

class CpuChannelBlockedTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "cpu_channel_blocked"; }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    if (a.family == ConvFamily::kDepthwise) return "a depthwise convolution (one input channel per output: no channel reuse)";
    const ConvSpec& s = a.spec;
    if (channel_lanes(s, target.natural_vector_size<float>()) != 0) return "";
    if (s.groups == 1) return "fewer output channels than a vector";
    return "output channels per group not a multiple of 4 (the lanes of a vector must share their group)";
  }

  // Where it wins over cpu_direct, defaults against defaults, 2026-11-21, 2-core
  // AVX-512 Xeon, bench/schedule_ab (interleaved rounds; range of the round ratios):
  // - rows narrower than about two vectors, where cpu_direct's x tiles overlap
  //   (ShiftInwards) and redo up to half the work: DeepLab's 33-wide dilated 3x3
  //   1.75x (1.59-1.81), ResNet-50's stride-2 1x1 projection (28 wide) 1.24x;
  // - kernels larger than 1x1, whose taps reuse each packed weight vector: res2 3x3
  //   1.23x (1.20-1.24), ResNet-50 conv1 7x7 1.24x (MobileNetV2 conv1 1.43x then,
  //   before convjit's own thread pool; see the scatter rule below);
  // - 1x1 layers that widen the channels: 16 -> 96 2.67x; 64 -> 256 is a tie;
  // - grouped layers (2026-11-22, with a padded copy per task): ResNeXt-50's 32 groups,
  //   res2a (4 channels a group, 4 lanes) 2.00x, res3a (8, stride 2) 1.80x, res4a
  //   (16) 2.08x, res5a (32) 2.92x; on AVX2 res2a 1.82x, res3a 2.91x. With one warm
  //   buffer set (schedule_ab --warm, 5 rounds) res2a 1.11x, res3a 1.34x.
  // cpu_direct stays ahead on wide 1x1 layers that keep or narrow the channels
  // (64 -> 64 by 1.43x, 256 -> 64 by 1.62x, 32 -> 16 by 1.11x; explore_schedules,
  // single runs): its tile reuses each input row across all output channels.
  //
  // Transposed layers with two channel vectors by 8 columns, against
  // cpu_transposed_phases (bench/schedule_ab, 3 rounds, 2 threads, 2026-11-21): DCGAN
  // 4x4 stride 2 128 -> 64 on 32 columns 1.43x, 256 -> 128 on 16 1.17x, 512 -> 256 on
  // 8 1.16x; 3x3 stride 2 128 -> 64 on 56 1.25x. With 32 channels (one block of two
  // vectors) it lost on 64 columns, 0.62x; by 7 columns (phases alternating between
  // tiles) 0.80x.
  // With one channel vector (channel_blocked_takes_transposed; same method,
  // 2026-11-22): 64 -> 32 stride 2 on 56 columns, 3x3 1.92x, 4x4 2.15x, 2x2 2.48x;
  // 4x4 on 32 columns 1.12x; 3x3 stride 1 48 -> 48 on 28 columns 1.29x over
  // cpu_transposed. It lost where a phase holds two vectors (4x4 64 -> 32 on 64
  // columns, 0.71x) and with one channel block (64 -> 16: 0.60x, one task).
  bool preferred_by_default(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    if (a.family == ConvFamily::kTransposed) {
      return channel_blocked_takes_transposed(s, target.natural_vector_size<float>());
    }
    if (a.family != ConvFamily::kDirect) return false;
    // Each output column's channel vector is stored with the channel stride (a
    // scatter): with fewer than 32 multiply-adds per output the stores outweigh the
    // sums. MobileNetV2 conv1 (3 -> 32, 3x3, 27 per output): cpu_direct 1.27-1.44x on
    // AVX-512, 1.14x on AVX2 (bench/schedule_ab --warm, 5 rounds, 2026-11-22).
    if ((s.c_in / s.groups) * s.kh * s.kw < 32) return false;
    // Groups narrower than the machine's vector leave lanes idle in every channel
    // vector; cpu_direct's tiles of a group's channels by several rows fill them
    // along x (its defaults have the measurements: 1.41-2.68x on ResNeXt-50).
    if (s.groups > 1 && s.c_out / s.groups < target.natural_vector_size<float>()) return false;
    return output_w(s) < 2 * target.natural_vector_size<float>() + 2 || s.kh * s.kw > 1 || s.c_out >= 2 * s.c_in;
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const int lanes = channel_lanes(a.spec, target.natural_vector_size<float>());
    return {
        {"lanes", {lanes}, "output channels per vector (the machine's width, or less to fit a group)"},
        {"x_tile", x_tile_choices(output_w(a.spec)), "outputs along x accumulated at once (one vector each)"},
        {"y_tile", {1, 2}, "rows accumulated at once (clamped to the height)"},
        {"c_vectors", c_vector_choices(a.spec, lanes),
         "channel vectors accumulated at once: each broadcast input value feeds all of them"},
        {"pack_weights", a.spec.weight_layout == WeightLayout::kOIHW16o ? std::vector<int>{0} : std::vector<int>{0, 1},
         "repack each channel block's weights with the channel innermost (never for oihw16o weights, already so)"},
        {"parallel", {0, 1, 2},
         "tasks: 0 = channel blocks, 1 = channel blocks x row strips, 2 = row strips, each "
         "running every channel block over its input rows while they are in cache"},
        {"stage", a.reads_padding || reads_strided_window(a) ? std::vector<int>{0, 1} : std::vector<int>{0},
         "input staged 0 = per task (padded input) or read in place, 1 = once, before the tasks: the "
         "padded input, or for a strided 1x1 kernel a dense copy of the positions read"},
        {"c_in_chunk", c_in_chunk_choices(a.spec),
         "input channels (of a group) a register tile sums before the next tile runs: 0 = all, the "
         "sums stored from registers; else the task's sums are kept in memory and each chunk runs "
         "over every tile, its weights staying in L1 (all the group's channels: one chunk)"},
        {"store_rows", {0, 1},
         "with c_in_chunk > 0: 1 = the task's sums stored in vectors along the output rows (gathered "
         "from memory), 0 = in channel vectors, with the output's channel stride (a scatter)"},
        {"skip_padding_rows", has_zero_padding_rows(a.spec) ? std::vector<int>{0, 1} : std::vector<int>{0},
         "1 = output rows whose window reaches into zero padding above or below sum only the kernel rows "
         "inside the input (the ky loop trimmed; transposed: the taps on input rows), 0 = every kernel "
         "row, multiplying padding zeros"},
    };
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const int lanes = channel_lanes(a.spec, target.natural_vector_size<float>());
    // Up to 14 accumulators (default_x_tile): 14 for 7-, 14-, 28-, 56- and 112-wide
    // rows. Wider tiles load each weight vector for more FMAs: on DeepLab's 33-wide
    // layer 12 columns took 6.4 ms, 7 columns 7.6 (no waste either way). A width of 8
    // or more that divides the row wastes nothing: 11 columns on the 33-wide DeepLab
    // layers against 12, 1.11x (dilation 4) and 1.03x (dilation 2) (bench/schedule_ab,
    // 3 rounds, 2 threads, 2026-11-21).
    int x_tile = default_x_tile(a.spec);
    if (x_tile == 0) x_tile = x_tile_choices(output_w(a.spec)).front();
    // Two channel vectors by 7 columns (14 accumulators) where the row is a multiple
    // of 7: each broadcast input value then feeds two FMAs. Against one vector by the
    // tile above (bench/schedule_ab, 3 rounds, 2 threads, 2026-11-21): ResNet-50
    // res2a-res5a 3x3 1.09-1.12x, conv1 7x7 1.39x, MobileNetV2 conv6_3 1.05x. Two
    // vectors by 12 or 14 columns (24-28 accumulators) were 0.46-0.82x; with only
    // two vectors of channels in all (MobileNetV2 conv1, 32) 0.66x, as the one
    // channel block leaves row strips as the only tasks.
    int c_vectors = 1;
    if (channel_blocked_takes_two_vectors(a.spec, lanes)) {
      c_vectors = 2;
      x_tile = channel_blocked_two_vector_columns(a.spec);
    } else if (!has_32_vector_registers(target) && a.spec.transposed) {
      if (const int narrow = default_x_tile(a.spec, 8); narrow != 0) x_tile = narrow;
    } else if (!has_32_vector_registers(target) && a.spec.kh * a.spec.kw > 1) {
      // Forward 1x1 layers keep the tiles above (up to 14 accumulators, or 7 x 2
      // rows): their taps take no registers. On AVX2 (same method and machine as
      // avx2_takes_two_vectors_by_four, oihw16o weights): 7x7 512 -> 2048 7 x 2 rows
      // 0.64x, 2 x 4 0.62x; res4a_branch1 (14x14, stride 2) 14 x 1 0.81x, 2 x 4 0.72x.
      if (avx2_takes_two_vectors_by_four(a.spec, lanes)) {
        c_vectors = 2;
        x_tile = 4;
      } else if (const int narrow = default_x_tile(a.spec, 8); narrow != 0) {
        x_tile = narrow;
      }
    }
    const int64_t blocks = a.spec.c_out / (lanes * c_vectors) * a.spec.n;
    // Channel-block tasks each stream the whole input; row-strip tasks (2) each stream
    // all the weights. Strips won where the input is large and the weights small:
    // ResNet-50's stride-2 projection res3a_branch1 (3.2 MB in, 0.5 MB of weights)
    // 1.19x (1.04-1.33); they lost on res4a_branch1 (1.6 MB in, 2 MB of weights) 0.48x,
    // where a block's packed weights stay in L1 (bench/schedule_ab, 2026-11-21).
    const int64_t input_bytes = a.spec.n * a.spec.c_in * a.spec.h_in * a.spec.w_in * 4;
    const int64_t weight_bytes = a.spec.c_out * (a.spec.c_in / a.spec.groups) * a.spec.kh * a.spec.kw * 4;
    int parallel = blocks >= kMinParallelTasks ? 0 : 1;
    if (input_bytes >= (int64_t{2} << 20) && weight_bytes <= (int64_t{1} << 20)) parallel = 2;
    // Transposed: channel blocks even when few, as row strips would each repack their
    // block's weights (4x4 taps): DCGAN 128 -> 64 (2 blocks) 1.27x, 256 -> 128 (4
    // blocks) 1.20x over strips (bench/schedule_ab, 3 rounds, 2 threads, 2026-11-21).
    if (a.spec.transposed) parallel = 0;
    // Grouped: each channel block reads only its group's input channels, so neither
    // row strips nor one staged copy of every channel pays: ResNeXt-50 res3a (32
    // groups of 8, stride 2) with a padded copy per task 1.76x cpu_direct, against
    // 0.58x with row strips and one copy (bench/schedule_ab, 3 rounds, 2 threads,
    // 2026-11-22). A copy per task against one copy of every channel, warm
    // (--warm, 5 rounds): res4a (16 a group) 2.17x, res5a (32) 1.95x.
    const bool grouped = a.spec.groups > 1;
    if (grouped) parallel = blocks >= kMinParallelTasks ? 0 : 1;
    const bool forward_pointwise = !a.spec.transposed && a.spec.kh == 1 && a.spec.kw == 1;
    const int chunk = default_c_in_chunk(a.spec, lanes * c_vectors, target.natural_vector_size<float>());
    return {{"lanes", lanes},
            {"x_tile", x_tile},
            // Two rows of 7 (14 accumulators instead of 7) measured slower on ResNet-50
            // res5 3x3: 2.08 ms against 1.71 (the 7 rows split 2+2+2+1, the last one
            // overlapping); again on res4a/res5a 3x3 with oihw16o weights, 0.76x and
            // 0.89x. Forward 1x1 layers take two rows: each tap is one input value, so
            // twice the accumulators halve the weight loads per multiply-add.
            // Against one row (bench/schedule_ab --warm, 7 rounds, 1 thread, oihw16o,
            // 2-core AVX-512 Xeon, 2026-11-22): 7x7 512 -> 2048 1.14x, 960 -> 320
            // 1.10x, 160 -> 960 1.06x; 14x14 96 -> 576 1.06x; 28x28 512 -> 1024 stride
            // 2 1.11x (2 threads, 9 rounds: 512 -> 2048 1.18x, 960 -> 320 1.02x).
            // On AVX2 only tiles of up to 7 accumulators take the second row (14 in
            // all): res4a_branch1 (14 columns) took 14 x 1 (see the x tile above).
            {"y_tile", forward_pointwise && output_h(a.spec) >= 2 &&
                               (has_32_vector_registers(target) || x_tile * c_vectors <= 7)
                           ? 2
                           : 1},
            {"c_vectors", c_vectors},
            {"pack_weights", a.spec.weight_layout == WeightLayout::kOIHW16o ? 0 : 1},
            {"parallel", parallel},
            // Tasks over channel blocks each read the whole image: staged per task,
            // the padded copy is made once per block. Once for all: ResNet-50 res4
            // 3x3 1.12x (1.09-1.28), res5 3x3 1.04x (bench/schedule_ab, 2026-11-21).
            // Strided 1x1 kernels stage the positions they read: read in place, every
            // input channel's broadcasts start a new line in a far plane. Against in
            // place (bench/schedule_ab --warm, 1 thread, 2-core AVX-512 Xeon,
            // 2026-11-22): ResNet-50 res4a_branch1 (28x28 512 -> 1024, oihw16o) 1.19x
            // (15 rounds), res5a_branch1 0.97x and res3a_branch1 1.02x (11 rounds).
            {"stage", (a.reads_padding && blocks >= kMinParallelTasks && !grouped) || reads_strided_window(a) ? 1 : 0},
            {"c_in_chunk", chunk},
            // Rows over channel vectors, chunked (same method, 2 threads): DeepLab
            // 1.02x, ResNet-50 3x3 res2a-res5a 1.05x, 1.02x, 1.01x, 1.03x; 7x7 1x1
            // 512 -> 2048 1.06x, 960 -> 320 1.05x; with one chunk (conv1) 1.17x.
            {"store_rows", chunk > 0 ? 1 : 0},
            // oneDNN's kernels skip the taps that fall in zero padding; summed, they
            // are a tenth of the work on 7x7 images (19 of 21 kernel rows are inside)
            // and 5% on 14x14. Against every kernel row (bench/schedule_ab --warm,
            // 5 rounds, 1 thread, 2-core AMD EPYC Zen 4, 2026-12-02; ratios to oneDNN
            // in the same rounds): ResNet-50 res5a 3x3 0.81-0.83x -> 1.00-1.03x,
            // res4a 0.88-0.89x -> 0.92-0.93x, res2a 0.91x -> 0.91-0.93x; DeepLab
            // aspp_rate4 (dilation 4: 8 of 99 kernel-row positions outside) 0.82-0.85x
            // -> 0.91x. Kept to this template: cpu_direct's tiles of two rows took a
            // test per row inside the loop (MobileNetV2 conv1 0.89-0.99x -> 0.80-0.89x),
            // and cpu_depthwise measured the same or slower.
            //
            // Transposed layers only where half their row taps or more read outside
            // the input: DCGAN's first layer (1x1 -> 4x4 100 -> 512, 4x4 stride 1, 3
            // of 4 outside) 1.03x / 2.62x oneDNN against 0.29x / 0.83x (same method,
            // 7 rounds, oihw16o, 1 / 2 threads, 2026-12-03). Where 1 in 8 or fewer
            // are, it measured the same or slower: DCGAN 4x4 stride 2 512 -> 256,
            // 256 -> 128, 128 -> 64 within the noise (1.23x / 1.57x against 1.26x /
            // 1.71x on the last), the decoder's 3x3 stride 2 64 -> 32 1.22x / 1.65x
            // against 2.32x / 3.21x.
            {"skip_padding_rows", has_zero_padding_rows(a.spec) &&
                                          (!a.spec.transposed || transposed_row_taps_outside_input(a.spec) >= 0.5)
                                      ? 1
                                      : 0}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target& target, const ScheduleParams& p) const override {
    if (p.get("skip_padding_rows") == 1 && has_zero_padding_rows(a.spec) && !a.skips_padding_rows) {
      a = lower(a.spec, /*transposed_phases=*/false, /*forward_column_phases=*/false, /*skip_zero_padding_rows=*/true);
    }
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const int lanes = p.get("lanes");
    const int x_tile = static_cast<int>(std::min<int64_t>(p.get("x_tile"), output_w(a.spec)));
    const int y_tile = static_cast<int>(std::min<int64_t>(p.get("y_tile"), output_h(a.spec)));
    // A channel block of c_vectors vectors, all in the register tile.
    const int block = lanes * p.get("c_vectors");
    Var co("co"), ci("ci"), xo("xo"), xi("xi"), yo("yo"), yi("yi"), task("task"), block_row("block_row");
    // The output, by columns of channel vectors from the register tiles (stored with
    // the output's channel stride: a scatter), or with the task's sums in memory
    // (c_in_chunk > 0) and store_rows, by vectors along its rows gathered from them.
    const int chunk = p.get("c_in_chunk");
    const int64_t w_out = output_w(a.spec);
    const bool along_x = p.get("store_rows") == 1 && chunk > 0;
    const int natural = target.natural_vector_size<float>();
    const int store_width = w_out >= natural ? natural : (w_out >= 8 ? 8 : x_tile);
    out.split(c, co, ci, block, TailStrategy::ShiftInwards)
        .split(x, xo, xi, along_x ? store_width : x_tile, TailStrategy::ShiftInwards);
    if (along_x) {
      out.vectorize(xi);
    } else {
      out.vectorize(ci).unroll(xi);
    }
    const Var first = along_x ? xi : ci, second = along_x ? ci : xi;
    if (p.get("parallel") == 0) {
      out.split(y, yo, yi, y_tile, TailStrategy::ShiftInwards)
          .reorder(first, second, yi, xo, yo, co, n)
          .unroll(yi)
          .fuse(co, n, task)
          .parallel(task);
    } else if (p.get("parallel") == 1) {
      // Row strips, just enough of them for kMinParallelTasks tasks: every task
      // repacks its channel block's weights, so one task per row repacked them
      // h_out times (conv2_2/expand: 1.28 ms against 0.40 with one pack per block).
      const int64_t blocks = (a.spec.c_out + block - 1) / block * a.spec.n;
      const int64_t strips = std::min<int64_t>(output_h(a.spec), (kMinParallelTasks + blocks - 1) / blocks);
      const int rows = std::max(y_tile, static_cast<int>((output_h(a.spec) + strips - 1) / strips));
      Var strip("strip"), row("row");
      out.split(y, strip, row, rows, TailStrategy::ShiftInwards)
          .split(row, yo, yi, y_tile, TailStrategy::ShiftInwards)
          .reorder(first, second, yi, xo, yo, strip, co, n)
          .unroll(yi)
          .fuse(strip, co, block_row)
          .fuse(block_row, n, task)
          .parallel(task);
    } else {
      // Row strips outermost, channel blocks inside each strip: the strip's input rows
      // (all channels) stay in cache while every block reads them. Over channel blocks
      // each block streams the whole input, which for large inputs comes from L3 once
      // per block. The weights are repacked once, before the tasks.
      const int rows = std::max(y_tile, strip_rows(a.spec));
      Var strip("strip"), row("row");
      out.split(y, strip, row, rows, TailStrategy::ShiftInwards)
          .split(row, yo, yi, y_tile, TailStrategy::ShiftInwards)
          .reorder(first, second, yi, xo, yo, co, strip, n)
          .unroll(yi)
          .fuse(strip, n, task)
          .parallel(task);
    }
    if (p.get("stage") == 1 && reads_strided_window(a)) {
      // One dense copy of the positions read, its channels in parallel: every channel
      // block then reads it from L2 in planes of h_out x w_out, where in place its
      // broadcasts touched a new line of a far plane for each input channel.
      const int copy_lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(w_out));
      a.window_input.compute_root().reorder(x, y, c, n).parallel(c);
      if (copy_lanes >= 4) a.window_input.vectorize(x, copy_lanes, TailStrategy::ShiftInwards);
    } else if (p.get("stage") == 1) {
      // One padded copy, its channels in parallel.
      const std::vector<Var> in = a.input_extended.args();
      a.input_extended.compute_root()
          .reorder(in[0], in[1], in[2], in[3])
          .parallel(in[2])
          .vectorize(in[0], 8, TailStrategy::RoundUp);
    } else {
      stage_padded_input(a, out, task, 8);
    }
    // The sums of one register tile: channel vectors side by side along x (and y), in
    // registers. With two channel vectors the vector is twice the machine's width:
    // LLVM splits each operation in two, and both halves share the broadcast input.
    // Without chunks the tile sums every input channel at once; with them it sums one
    // chunk, added to the task's sums in memory (below).
    Func tile_sums = acc;
    if (chunk > 0) {
      Halide::RVar chunk_index("chunk_index"), chunk_channel("chunk_channel");
      Var u("u");
      tile_sums = acc.update().split(a.r.z, chunk_index, chunk_channel, chunk).rfactor(chunk_index, u);
      tile_sums.compute_at(acc, xo);
      schedule_tile_sums(a, tile_sums, {c, x, y, n, u}, chunk_channel, block);
      // The sums of one channel block over the task's rows, one chunk of input
      // channels at a time over every tile, so that the chunk's weights stay in L1
      // for all of them. Row-strip tasks (parallel=2) run their channel blocks one
      // after another: the sums are per block there too.
      acc.compute_at(out, p.get("parallel") == 2 ? co : task)
          .reorder_storage(c, x, y, n)
          .reorder(c, x, y, n)
          .vectorize(c);
      acc.update()
          .split(x, xo, xi, x_tile, TailStrategy::GuardWithIf)
          .split(y, yo, yi, y_tile, TailStrategy::GuardWithIf)
          .reorder(c, xi, yi, xo, yo, chunk_index, n)
          .vectorize(c)
          .unroll(xi)
          .unroll(yi);
    } else {
      acc.compute_at(out, xo);
      schedule_tile_sums(a, acc, {c, x, y, n}, Halide::RVar(a.r.z), block);
    }
    if (p.get("pack_weights") == 1) {
      if (p.get("parallel") == 2) {
        pack_weights_channel_innermost(a, tile_sums, out, Var::outermost(), lanes);
      } else {
        pack_weights_channel_innermost(a, tile_sums, out, task, lanes);
      }
    }
  }

 private:
  // A register tile's sums: `pure` are its storage dimensions (channel, x, y, ...),
  // `channel` the input-channel variable of its reduction (r.z, or the channel within
  // a chunk). The taps stay inside the channels, as in the reduction's definition.
  static void schedule_tile_sums(ConvAlgorithm& a, Func& sums, const std::vector<Var>& pure,
                                 const Halide::RVar& channel, int block) {
    const Var &c = pure[0], &x = pure[1], &y = pure[2];
    std::vector<Halide::VarOrRVar> pure_order(pure.begin(), pure.end());
    sums.reorder_storage(pure).reorder(pure_order).vectorize(c).unroll(x).unroll(y);
    std::vector<Halide::VarOrRVar> order = {x, y, a.r.x, a.r.y, channel};
    order.insert(order.end(), pure.begin() + 3, pure.end());
    if (a.spec.weight_layout == WeightLayout::kOIHW16o && block % 16 == 0) {
      // Weights in blocks of 16 channels: one load per block of 16. A 32-wide vector
      // spans two blocks, which Halide loads as a gather (5x slower on ResNet-50
      // res5 3x3); split, each half is a dense load.
      Var cv("cv"), cl("cl");
      order.insert(order.begin(), {cl, cv});
      sums.update().split(c, cv, cl, 16).reorder(order).vectorize(cl).unroll(cv).unroll(x).unroll(y);
    } else {
      order.insert(order.begin(), c);
      sums.update().reorder(order).vectorize(c).unroll(x).unroll(y);
    }
  }
};

}  // namespace

int channel_blocked_two_vector_columns(const ConvSpec& spec) {
  if (spec.transposed) return 8;
  const int64_t w = output_w(spec);
  if (w % 7 == 0) return 7;
  // Else the widest of 8 to 11 columns that divides the row (16 to 22 accumulators):
  // against one vector by the same width (bench/schedule_ab --warm, 3 rounds, 2
  // threads, 2026-11-22): DeepLab's 33-wide 3x3 by 11 1.12-1.22x, 16-wide by 8 1.12x,
  // 20-wide by 10 1.08x.
  for (int columns = 11; columns >= 8; --columns) {
    if (w % columns == 0) return columns;
  }
  return 7;  // no width divides the row: two_vectors rejects it (w % 7 != 0)
}

bool channel_blocked_takes_two_vectors(const ConvSpec& spec, int lanes) {
  // 14 or 16 accumulators, two weight vectors and a broadcast need AVX-512's 32
  // vector registers; AVX2's 16 would spill.
  if (lanes < 16) return false;
  const int columns = channel_blocked_two_vector_columns(spec);
  if (spec.transposed && columns % spec.stride_w != 0) return false;
  return c_vector_choices(spec, lanes).back() == 2 && output_w(spec) % columns == 0 && spec.c_out >= 4 * lanes;
}

bool channel_blocked_takes_transposed(const ConvSpec& spec, int lanes) {
  if (!spec.transposed) return false;
  if (channel_blocked_takes_two_vectors(spec, lanes)) return true;
  // One channel vector by default_x_tile's columns, with two channel blocks or more
  // to share the cores.
  if (spec.groups != 1 || spec.c_out < 2 * lanes || output_w(spec) % spec.stride_w != 0) return false;
  if (lanes < 16) {
    // AVX2 (8 lanes), with a stride: tiles of at most 8 columns (defaults()). With
    // up to 14 columns it lost to cpu_transposed_phases on 3x3 and 4x4 stride-2
    // layers (0.77x, 0.87x) and to cpu_transposed on a 3x3 stride-1 layer (0.87x)
    // (bench/schedule_ab, 3 rounds, 2026-11-22). With 8 (bench/schedule_ab --warm, 3
    // rounds, 1 thread, 2-core AMD EPYC Zen 3, 2026-12-02; ratios to oneDNN): DCGAN
    // deconv3 (8x8 256 -> 128, 4x4 stride 2, oihw16o) 0.97-1.05x against 0.41x,
    // deconv4 (16x16 128 -> 64) 1.54x against 1.14x, the decoder's 3x3 stride 2
    // (28x28 64 -> 32) 1.86x against 1.88x.
    return spec.stride_w > 1 && default_x_tile(spec, 8) != 0;
  }
  // Where each phase of the output holds two vectors or more, cpu_transposed_phases
  // loads its input densely along them and stays ahead.
  if (spec.stride_w > 1 && output_w(spec) / spec.stride_w >= 2 * lanes) return false;
  return default_x_tile(spec) != 0;
}

const ScheduleTemplate& cpu_channel_blocked_template() {
  static const CpuChannelBlockedTemplate instance;
  return instance;
}

}  // namespace convjit
