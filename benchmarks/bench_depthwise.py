"""Where a digits evaluation's time goes, and what the kernels could give back (issue 28).

Profiled (torch.profiler, one pipeline of batch 32, 8 epochs): ``aten::convolution_backward`` is about 46% of the
CPU time and the forward convolutions 13%; most of it is the NAS cells' depthwise convolutions (5x5 and dilated) on
8x8 and 4x4 maps, and the slowest single calls are the reduction cell's stride-2 dilated ones in channels-last
(3.7 ms against 0.3 ms for a stride-1 5x5 of the same output). This script times one depthwise convolution,
forward plus backward, on the digits network's shapes (stage 1: 16 channels on 8x8; the reduction cell's input
ops: 32 channels on 8x8, stride 2; stage 2: 32 channels on 4x4), one torch thread, in these forms, each against
the default (oneDNN, NCHW) in the same run: channels-last (what ``fit_recipe`` trains in), a dense convolution
with a block-diagonal weight (the same function, 16-32x the multiply-adds, but oneDNN's fast path), and for the
dilated ones ``DilatedDepthwiseConv2d`` in channels-last (the same function without dilation: every second pixel
for stride 2, polyphase for stride 1; what the NAS cells use since December 2026).

    python benchmarks/bench_depthwise.py [--repeats 100]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ma2ml.models.nasnet import DilatedDepthwiseConv2d


def _time(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        fn(x).sum().backward()
    start = time.process_time()
    for _ in range(repeats):
        fn(x).sum().backward()
    return (time.process_time() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rewritten = "DilatedDepthwiseConv2d (channels-last)"
    ratios: dict[str, list[float]] = {"channels-last": [], "dense block-diagonal": [], rewritten: []}
    over_last: list[float] = []
    print(f"channels side kernel dilation stride batch | default us | channels-last x | dense block-diagonal x | "
          f"{rewritten} x")
    for channels, side, stride in ((16, 8, 1), (32, 8, 2), (32, 4, 1)):
        eye = torch.eye(channels).view(channels, channels, 1, 1)
        for kernel, dilation in ((3, 1), (5, 1), (3, 2), (5, 2)):
            pad = dilation * (kernel - 1) // 2
            for batch in (32, 128):
                x = torch.randn(batch, channels, side, side, requires_grad=True)
                conv = torch.nn.Conv2d(channels, channels, kernel, stride, pad, dilation=dilation, groups=channels,
                                       bias=False)
                last = torch.nn.Conv2d(channels, channels, kernel, stride, pad, dilation=dilation, groups=channels,
                                       bias=False).to(memory_format=torch.channels_last)
                x_last = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
                base = _time(conv, x, args.repeats)
                forms = {"channels-last": _time(last, x_last, args.repeats),
                         "dense block-diagonal": _time(
                             lambda t: F.conv2d(t, eye * conv.weight, stride=stride, padding=pad, dilation=dilation),
                             x, args.repeats)}
                if dilation > 1:
                    plain = DilatedDepthwiseConv2d(channels, kernel, stride, dilation).to(
                        memory_format=torch.channels_last)
                    forms[rewritten] = _time(plain, x_last, args.repeats)
                    over_last.append(forms["channels-last"] / forms[rewritten])
                for name, seconds in forms.items():
                    ratios[name].append(base / seconds)
                print(f"{channels:8d} {side:4d} {kernel:6d} {dilation:8d} {stride:6d} {batch:5d} | "
                      f"{base * 1e6:10.0f} | "
                      + " | ".join(f"{base / s:5.2f}x" for s in forms.values()), flush=True)
    print("headline: speed-up over the default, geometric mean over the shapes: "
          + ", ".join(f"{name} {statistics.geometric_mean(r):.2f}x" for name, r in ratios.items())
          + f"; on the dilated shapes, {rewritten} over the dilated kernel in channels-last: "
          f"{statistics.geometric_mean(over_last):.2f}x (range {min(over_last):.2f}-{max(over_last):.2f}x)")


if __name__ == "__main__":
    main()
