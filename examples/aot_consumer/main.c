/* Example 4: using a convjit AOT library from a program that has no Halide.
 *
 * What it teaches: the generated header is all a consumer needs. It lists the
 * entry points; each takes caller-owned tensors (pointer, rank, shape, strides). The
 * library picks the best compiled target for this CPU at run time, and carries the
 * provenance of every kernel. This program runs every entry through the spec
 * dispatcher (demo_kernels_run), checks it against a naive loop, and prints what the
 * library says about itself.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "demo_kernels.h"

/* Output size of a forward convolution in canonical form (exact: no slack rows). */
static int64_t out_size(int64_t in, int64_t pad_begin, int64_t pad_end, int64_t k, int64_t d, int64_t s) {
  return (in + pad_begin + pad_end - d * (k - 1) - 1) / s + 1;
}

static demo_kernels_tensor tensor(float *data, int rank, const int64_t *shape) {
  demo_kernels_tensor t = {0};
  t.data = data;
  t.rank = rank;
  for (int d = 0; d < rank; ++d) t.shape[d] = shape[d];
  return t; /* strides all zero: dense */
}

/* Naive forward convolution, zeros padding, OIHW weights, any groups. */
static void reference(const demo_kernels_spec *s, const float *x, const float *w, const float *b, float *y,
                      int64_t oh, int64_t ow) {
  const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
  for (int64_t n = 0; n < s->n; ++n)
    for (int64_t o = 0; o < s->c_out; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = b ? b[o] : 0.0;
          for (int64_t i = 0; i < cig; ++i)
            for (int64_t ky = 0; ky < s->kh; ++ky)
              for (int64_t kx = 0; kx < s->kw; ++kx) {
                const int64_t iy = oy * s->stride_h + ky * s->dilation_h - s->pad_top;
                const int64_t ix = ox * s->stride_w + kx * s->dilation_w - s->pad_left;
                if (iy < 0 || iy >= s->h_in || ix < 0 || ix >= s->w_in) continue;
                const int64_t c = (o / cog) * cig + i;
                acc += (double)x[((n * s->c_in + c) * s->h_in + iy) * s->w_in + ix] *
                       w[((o * cig + i) * s->kh + ky) * s->kw + kx];
              }
          y[((n * s->c_out + o) * oh + oy) * ow + ox] = (float)acc;
        }
}

static void fill(float *v, int64_t count, unsigned seed) {
  for (int64_t i = 0; i < count; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
  }
}

int main(void) {
  const char *target = demo_kernels_selected_target();
  printf("selected target: %s\n", target ? target : "(none: this CPU supports no compiled target)");
  int failures = 0;
  for (int e = 0; e < demo_kernels_entry_count(); ++e) {
    const demo_kernels_spec *s = demo_kernels_entry_spec(e);
    const int64_t oh = out_size(s->h_in, s->pad_top, s->pad_bottom, s->kh, s->dilation_h, s->stride_h);
    const int64_t ow = out_size(s->w_in, s->pad_left, s->pad_right, s->kw, s->dilation_w, s->stride_w);
    const int64_t src_shape[4] = {s->n, s->c_in, s->h_in, s->w_in};
    const int64_t wei_shape[4] = {s->c_out, s->c_in / s->groups, s->kh, s->kw};
    const int64_t bias_shape[1] = {s->c_out};
    const int64_t dst_shape[4] = {s->n, s->c_out, oh, ow};
    const int64_t src_count = s->n * s->c_in * s->h_in * s->w_in;
    const int64_t wei_count = wei_shape[0] * wei_shape[1] * s->kh * s->kw;
    const int64_t dst_count = s->n * s->c_out * oh * ow;
    float *x = malloc(src_count * sizeof *x), *w = malloc(wei_count * sizeof *w);
    float *b = malloc(s->c_out * sizeof *b), *y = malloc(dst_count * sizeof *y);
    float *expected = malloc(dst_count * sizeof *expected);
    fill(x, src_count, 1);
    fill(w, wei_count, 2);
    fill(b, s->c_out, 3);
    demo_kernels_tensor src = tensor(x, 4, src_shape), wei = tensor(w, 4, wei_shape);
    demo_kernels_tensor bias = tensor(b, 1, bias_shape), dst = tensor(y, 4, dst_shape);
    const int rc = demo_kernels_run(s, &src, &wei, s->has_bias ? &bias : NULL, &dst);
    if (rc != DEMO_KERNELS_OK) {
      printf("%-20s error %d: %s\n", demo_kernels_entry_name(e), rc, demo_kernels_error_string(rc));
      ++failures;
    } else {
      reference(s, x, w, s->has_bias ? b : NULL, expected, oh, ow);
      double max_diff = 0, max_ref = 0;
      for (int64_t i = 0; i < dst_count; ++i) {
        const double diff = fabs((double)y[i] - expected[i]);
        if (diff > max_diff) max_diff = diff;
        if (fabs(expected[i]) > max_ref) max_ref = fabs(expected[i]);
      }
      const double error = max_diff / (max_ref > 0 ? max_ref : 1);
      printf("%-20s output (%lld, %lld, %lld, %lld)  relative error %.1e  %s\n", demo_kernels_entry_name(e),
             (long long)s->n, (long long)s->c_out, (long long)oh, (long long)ow, error,
             error <= 1e-4 ? "OK" : "MISMATCH");
      failures += error <= 1e-4 ? 0 : 1;
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(expected);
  }
  /* A spec the library does not hold is refused, not guessed. */
  demo_kernels_spec unknown = *demo_kernels_entry_spec(0);
  unknown.c_out += 1;
  if (demo_kernels_run(&unknown, NULL, NULL, NULL, NULL) != DEMO_KERNELS_ERROR_NO_KERNEL) ++failures;
  printf("provenance:\n%s", demo_kernels_provenance());
  printf("%s\n", failures == 0 ? "all entries match the naive reference" : "FAILURES");
  return failures == 0 ? 0 : 1;
}
