#!/usr/bin/env python3
"""convjit's CUDA kernels against cuDNN (through PyTorch) on the layers of a shape file.

Runs on a GPU host. convjit's times come from `convjit bench --target T --json` (data
on the device, each run synchronized, medians after warm-ups); cuDNN's from PyTorch
in this process, timed with CUDA events the same way: torch.backends.cudnn.benchmark
on (cuDNN picks its fastest algorithm, as a framework would), TF32 off for FP32 (the
issue's rule: FP32 means FP32). Per layer: both times, the ratio (cuDNN time /
convjit time, > 1: convjit faster), convjit's TFLOP/s and percent of the FP32 peak;
then the geometric mean of the ratios. The spec of each layer comes from
`convjit info`, so both sides run exactly the same convolution.

usage: bench/cudnn_compare.py [--convjit build/tools/convjit] [--shapes bench/shapes]
                              [--target host-cuda] [--batch N] [--repeat 50] [--dt f16]
  --batch N   overrides every layer's batch size (the issue measures 1 and 32)
  --dt f16    float16 data (convjit: f32 accumulation, MegEngine's compute_mode)
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F


def rewrite_shapes(path, batch, dtype):
    """The shape file with mb<batch> and --dt added to every problem line."""
    out = []
    for line in open(path):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if batch:
            # bench/shapes spells out mbN on every line; replace it.
            text = re.sub(r"mb\d+", "mb%d" % batch, text)
        if dtype != "f32":
            text = "--dt %s --compute-mode float32 %s" % (dtype, text)
        out.append(text)
    handle = tempfile.NamedTemporaryFile("w", suffix=".shapes", delete=False)
    handle.write("\n".join(out) + "\n")
    handle.close()
    return handle.name


def json_lines(command):
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(command), done.stderr.strip()))
    return [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]


def torch_conv(spec, device, dtype):
    """A closure running the spec's convolution through cuDNN on random inputs of its shapes."""
    g = spec["groups"]
    x = torch.randn(spec["input_shape"], device=device, dtype=dtype)
    if spec["transposed"]:
        w = torch.randn(spec["c_in"], spec["c_out"] // g, spec["kh"], spec["kw"], device=device, dtype=dtype)
    else:
        w = torch.randn(spec["c_out"], spec["c_in"] // g, spec["kh"], spec["kw"], device=device, dtype=dtype)
    b = torch.randn(spec["c_out"], device=device, dtype=dtype) if spec["bias"] else None
    stride = (spec["stride_h"], spec["stride_w"])
    dilation = (spec["dilation_h"], spec["dilation_w"])
    pt, pb, pl, pr = spec["pad_top"], spec["pad_bottom"], spec["pad_left"], spec["pad_right"]
    out_h, out_w = spec["output_shape"][2], spec["output_shape"][3]
    if spec["transposed"]:
        # Symmetric padding with the output padding PyTorch derives: the layers of
        # bench/shapes are all of this form.
        op = (out_h - ((spec["h_in"] - 1) * stride[0] + dilation[0] * (spec["kh"] - 1) + 1 - 2 * pt),
              out_w - ((spec["w_in"] - 1) * stride[1] + dilation[1] * (spec["kw"] - 1) + 1 - 2 * pl))
        return lambda: F.conv_transpose2d(x, w, b, stride, (pt, pl), op, g, dilation)
    mode = spec["padding_mode"]
    if mode == "zeros" and pb <= pt and pr <= pl:
        # cuDNN's symmetric padding; a smaller (or negative, derived) bottom/right
        # padding only drops rows the last window never reads, which the output
        # size (checked below) confirms.
        run = lambda: F.conv2d(x, w, b, stride, (pt, pl), dilation, g)
    else:
        torch_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                      "circular": "circular"}[mode]
        run = lambda: F.conv2d(F.pad(x, (pl, pr, pt, pb), torch_mode), w, b, stride, 0, dilation, g)
    return run


def cuda_median_ms(run, repeat):
    for _ in range(3):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--convjit", default=os.path.join(here, "build", "tools", "convjit"))
    parser.add_argument("--shapes", default=os.path.join(here, "bench", "shapes"))
    parser.add_argument("--target", default="host-cuda")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--dt", choices=["f32", "f16"], default="f32")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cudnn_compare: PyTorch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    shapes = rewrite_shapes(args.shapes, args.batch, args.dt)
    specs = json_lines([args.convjit, "info", "--batch", shapes])
    mine = json_lines([args.convjit, "bench", "--batch", shapes, "--target", args.target, "--json",
                       "--repeat", str(args.repeat)])
    dtype = torch.float16 if args.dt == "f16" else torch.float32
    print("convjit %s vs cuDNN %s (PyTorch %s) on %s, %s, batch %s; TF32 off; cudnn.benchmark on"
          % (args.target, torch.backends.cudnn.version(), torch.__version__, torch.cuda.get_device_name(0),
             args.dt, args.batch or "as in the file"))
    print("%-32s %10s %10s %8s %8s %6s" % ("layer", "convjit_ms", "cudnn_ms", "ratio", "TFLOP/s", "peak%"))
    logs = []
    for spec, row in zip(specs, mine):
        run = torch_conv(spec, "cuda", dtype)
        out = run()
        if list(out.shape) != spec["output_shape"]:
            sys.exit("%s: PyTorch output %s, convjit %s" % (row["name"], list(out.shape), spec["output_shape"]))
        cudnn_ms = cuda_median_ms(run, args.repeat)
        ratio = cudnn_ms / row["convjit_ms"]
        logs.append(math.log(ratio))
        print("%-32s %10.4f %10.4f %7.2fx %8.2f %5.1f%%" % (row["name"], row["convjit_ms"], cudnn_ms, ratio,
                                                            row["gflops"] / 1e3, 100 * row["peak_fraction"]))
    print("geomean over %d layers: cuDNN time / convjit time = %.2fx" % (len(logs), math.exp(sum(logs) / len(logs))))
    os.unlink(shapes)


if __name__ == "__main__":
    main()
