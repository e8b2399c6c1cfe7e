#!/usr/bin/python3
"""Cross-checks `convjit run` against PyTorch on seeded random convolutions.

Each case mixes the features of a spec (stride, asymmetric padding through the
descriptor's derived bottom/right padding, dilation, groups, depthwise multiplier,
transposed with output_padding, padding modes, true convolution, cover_all, bias, f16
and f32, the four weight layouts), writes the tensors as .npy, runs the tool on the
benchdnn descriptor, and compares its output with PyTorch's in float64:
relative error = max|out - ref| / max|ref|, at most 1e-4 for f32 and 1e-2 for f16
(whose inputs are rounded to f16 before PyTorch sees them).

usage: pytorch_crosscheck.py --convjit PATH [--cases 40] [--seed 20240611] [--jobs 2]
                             [--keep DIR] [--target host-cuda]

With --target the tool runs its kernels for that target (host-cuda on a GPU host
checks the CUDA kernels); the reference stays PyTorch on the CPU in float64.
"""
import argparse
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = {"f32": 1e-4, "f16": 1e-2}


def make_case(rng, index):
    """One random problem, as a dict of every choice the tool and the reference need."""
    c = {"index": index}
    c["transposed"] = rng.random() < 0.3
    kind = rng.choice(["dense", "dense", "grouped", "depthwise"])
    if kind == "depthwise":
        c_in = rng.randint(1, 4)
        m = rng.randint(1, 3)
        c["groups"], c["c_in"], c["c_out"], c["multiplier"] = c_in, c_in, c_in * m, m
    else:
        g = 1 if kind == "dense" else rng.randint(2, 3)
        c["groups"] = g
        c["c_in"] = g * rng.randint(1, 3)
        c["c_out"] = g * rng.randint(1, 3)
        c["multiplier"] = 0
    c["n"] = rng.randint(1, 2)
    c["kh"], c["kw"] = rng.randint(1, 4), rng.randint(1, 4)
    c["sh"], c["sw"] = rng.randint(1, 3), rng.randint(1, 3)
    c["dh"], c["dw"] = rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2])
    c["dtype"] = rng.choice(["f32", "f32", "f16"])
    c["compute_mode"] = "float32" if c["dtype"] == "f16" and rng.random() < 0.5 else "default"
    c["bias"] = rng.random() < 0.5
    c["conv_mode"] = "convolution" if rng.random() < 0.25 else "cross_correlation"
    # mihw (depthwise only) weighted up so that it meets transposed cases too.
    layouts = ["oihw", "goihw", "iohw"] + (["mihw"] * 3 if c["multiplier"] else [])
    c["wtag"] = rng.choice(layouts)
    dkh = c["dh"] * (c["kh"] - 1) + 1
    dkw = c["dw"] * (c["kw"] - 1) + 1

    if c["transposed"]:
        # PyTorch's ConvTranspose2d pads with zeros only; output_padding < max(stride, dilation).
        c["padding_mode"], c["cover_all"] = "zeros", False
        c["ih"], c["iw"] = rng.randint(1, 6), rng.randint(1, 6)
        natural_h = natural_w = None
        while True:
            c["pt"], c["pl"] = rng.randint(0, dkh - 1), rng.randint(0, dkw - 1)
            natural_h = (c["ih"] - 1) * c["sh"] + dkh - 2 * c["pt"]
            natural_w = (c["iw"] - 1) * c["sw"] + dkw - 2 * c["pl"]
            if natural_h >= 1 and natural_w >= 1:
                break
        c["oph"] = rng.randint(0, max(c["sh"], c["dh"]) - 1)
        c["opw"] = rng.randint(0, max(c["sw"], c["dw"]) - 1)
        c["oh"], c["ow"] = natural_h + c["oph"], natural_w + c["opw"]
        return c

    c["padding_mode"] = rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
    c["cover_all"] = c["padding_mode"] == "zeros" and rng.random() < 0.25
    c["ih"], c["iw"] = rng.randint(max(dkh, 3), 12), rng.randint(max(dkw, 3), 12)
    # reflect needs padding < the input size, circular <= it; keep both well inside.
    limit_h = min(dkh - 1, c["ih"] - 1)
    limit_w = min(dkw - 1, c["iw"] - 1)
    c["pt"], c["pl"] = rng.randint(0, limit_h), rng.randint(0, limit_w)
    if c["cover_all"]:
        # No oh/ow in the descriptor: symmetric padding, then Chainer's cover_all.
        c["pb"], c["pr"] = c["pt"], c["pl"]
        c["oh"] = -(-(c["ih"] + 2 * c["pt"] - dkh) // c["sh"]) + 1
        c["ow"] = -(-(c["iw"] + 2 * c["pl"] - dkw) // c["sw"]) + 1
    else:
        # Bottom/right padding of our choosing; the descriptor only says oh/ow and the
        # tool derives the smallest padding giving them (negative when the last rows
        # are never read), which computes the same output.
        c["pb"], c["pr"] = rng.randint(0, limit_h), rng.randint(0, limit_w)
        c["oh"] = (c["ih"] + c["pt"] + c["pb"] - dkh) // c["sh"] + 1
        c["ow"] = (c["iw"] + c["pl"] + c["pr"] - dkw) // c["sw"] + 1
    return c


def descriptor(c):
    """The benchdnn descriptor: dh/dw 0-based, ph/pw top/left."""
    d = "g%dmb%dic%dih%diw%doc%d" % (c["groups"], c["n"], c["c_in"], c["ih"], c["iw"], c["c_out"])
    if not c["cover_all"]:
        d += "oh%dow%d" % (c["oh"], c["ow"])
    d += "kh%dkw%dsh%dsw%dph%dpw%ddh%ddw%d" % (c["kh"], c["kw"], c["sh"], c["sw"], c["pt"],
                                               c["pl"], c["dh"] - 1, c["dw"] - 1)
    return d + "n" + "case%d" % c["index"]


def command_options(c):
    options = []
    if c["transposed"]:
        options.append("--deconv")
    options += ["--padding-mode", c["padding_mode"], "--conv-mode", c["conv_mode"],
                "--wtag", c["wtag"], "--dt", c["dtype"], "--compute-mode", c["compute_mode"]]
    if c["cover_all"]:
        options.append("--cover-all")
    if c["bias"]:
        options.append("--bias")  # --bia implies it; said here so the log shows it
    return options


def weight_in_layout(c, rng_np):
    """Random weights in the case's layout, and the same weights in PyTorch's layout:
    (c_out, c_in/g, kh, kw) for conv2d, (c_in, c_out/g, kh, kw) for conv_transpose2d."""
    g, ci, co, kh, kw = c["groups"], c["c_in"], c["c_out"], c["kh"], c["kw"]
    icg, ocg = ci // g, co // g
    shapes = {"oihw": (co, icg, kh, kw), "goihw": (g, ocg, icg, kh, kw),
              "iohw": (ci, ocg, kh, kw), "mihw": (c["multiplier"], ci, kh, kw)}
    w = rng_np.uniform(-1, 1, shapes[c["wtag"]])
    # Everything to the layout-neutral (g, ocg, icg, kh, kw) first.
    if c["wtag"] in ("oihw", "goihw"):
        goi = w.reshape(g, ocg, icg, kh, kw)
    elif c["wtag"] == "iohw":
        goi = w.reshape(g, icg, ocg, kh, kw).transpose(0, 2, 1, 3, 4)
    else:  # mihw: output channel i*m+j uses W[j, i]; groups = c_in, icg = 1
        goi = w.transpose(1, 0, 2, 3).reshape(g, ocg, 1, kh, kw)
    if c["transposed"]:
        torch_w = goi.transpose(0, 2, 1, 3, 4).reshape(ci, ocg, kh, kw)
    else:
        torch_w = goi.reshape(co, icg, kh, kw)
    return w, torch_w


def reference(c, x, w, b):
    """PyTorch's result in float64."""
    x, w = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64))
    b = None if b is None else torch.from_numpy(b.astype(np.float64))
    if c["conv_mode"] == "convolution":
        w = torch.flip(w, dims=[2, 3])
    stride, dilation = (c["sh"], c["sw"]), (c["dh"], c["dw"])
    if c["transposed"]:
        return F.conv_transpose2d(x, w, b, stride=stride, padding=(c["pt"], c["pl"]),
                                  output_padding=(c["oph"], c["opw"]), groups=c["groups"],
                                  dilation=dilation).numpy()
    pad = (c["pl"], c["pr"], c["pt"], c["pb"])
    if c["padding_mode"] == "zeros":
        x = F.pad(x, pad)
    else:
        x = F.pad(x, pad, mode=c["padding_mode"])
    if c["cover_all"]:
        x = F.pad(x, (0, c["sw"] - 1, 0, c["sh"] - 1))
    return F.conv2d(x, w, b, stride=stride, dilation=dilation, groups=c["groups"]).numpy()


def run_case(c, convjit, work, target):
    """Returns None when the tool's output matches PyTorch, else a message."""
    rng_np = np.random.default_rng(1000 + c["index"])
    np_dtype = np.float16 if c["dtype"] == "f16" else np.float32
    x = rng_np.uniform(-1, 1, (c["n"], c["c_in"], c["ih"], c["iw"])).astype(np_dtype)
    w, torch_w = weight_in_layout(c, rng_np)
    w = w.astype(np_dtype)
    torch_w = torch_w.astype(np_dtype)  # the same rounding as the tool's copy
    b = rng_np.uniform(-1, 1, (c["c_out"],)).astype(np_dtype) if c["bias"] else None

    prefix = os.path.join(work, "case%d_" % c["index"])
    np.save(prefix + "src.npy", x)
    np.save(prefix + "wei.npy", w)
    args = [convjit, "run"] + command_options(c) + [descriptor(c), "--src", prefix + "src.npy",
                                                    "--wei", prefix + "wei.npy",
                                                    "--dst", prefix + "dst.npy", "--target", target]
    if b is not None:
        np.save(prefix + "bia.npy", b)
        args += ["--bia", prefix + "bia.npy"]
    command = " ".join(args)
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return "%s\n  exit %d: %s" % (command, done.returncode, done.stderr.strip())
    out = np.load(prefix + "dst.npy")
    ref = reference(c, x, torch_w, b)
    if out.dtype != np_dtype or out.shape != ref.shape:
        return "%s\n  output %s %s, expected %s %s" % (command, out.dtype, out.shape,
                                                       np.dtype(np_dtype), ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-30)
    error = float(np.abs(out.astype(np.float64) - ref).max()) / scale
    if not error <= TOLERANCE[c["dtype"]]:
        return "%s\n  relative error %.3g > %g" % (command, error, TOLERANCE[c["dtype"]])
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--convjit", required=True, help="path of the convjit executable")
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--jobs", type=int, default=2, help="convjit processes at once")
    parser.add_argument("--keep", help="write the .npy files here and keep them")
    parser.add_argument("--target", default="host", help="convjit's --target (e.g. host-cuda)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cases = [make_case(rng, i) for i in range(args.cases)]
    work = args.keep or tempfile.mkdtemp(prefix="convjit_crosscheck_")
    os.makedirs(work, exist_ok=True)
    failures = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = pool.map(lambda c: (c, run_case(c, os.path.abspath(args.convjit), work,
                                                        args.target)),
                               cases)
            for c, problem in results:
                print("%-4s case %2d: %s %s" % ("ok" if problem is None else "FAIL", c["index"],
                                                " ".join(command_options(c)), descriptor(c)))
                if problem is not None:
                    failures.append(problem)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for problem in failures:
        print("FAIL: " + problem, file=sys.stderr)
    print("pytorch_crosscheck: %d of %d cases match PyTorch" % (len(cases) - len(failures), len(cases)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
