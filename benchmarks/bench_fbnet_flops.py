"""FLOPs scoring throughput of the ImageNet (FBNet) space: the analytic scorer vs ``count_macs``.

Random architectures of the default :class:`~ma2ml.envs.spaces.fbnet.FBNetSpace` are scored from their
token vectors (decode + multiply-adds) by :meth:`FBNetSpace.flops` (per-block formula, cached by
block shape) and by :func:`~ma2ml.models.flops.count_macs` (torch's FlopCounterMode on the meta
device), on distinct candidates, in the same run; every candidate counted both ways must agree.

With ``--evaluation`` it also times what the README's cost figures come from: one evaluation of
``ma2ml/AutoML-ImageNet-v0`` on a generated tiny ImageFolder tree with the tiny proxy budget of
the tests, and full-size training steps (batch 32, CPU) of the ``fbnetv3-c-like`` reference.

    python benchmarks/bench_fbnet_flops.py [--count 30] [--fast 20000] [--evaluation]

The last line is the headline ratio.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch


def time_evaluation() -> None:
    import pettingzoo

    import ma2ml.envs  # noqa: F401  (registers the envs)
    from ma2ml.models.fbnet import REFERENCE_ARCHITECTURES, FBNetwork
    from ma2ml.envs.tasks.imagefolder import ImageFolderConfig, imagefolder_task, write_synthetic_imagefolder

    with tempfile.TemporaryDirectory() as tmp:
        tree = write_synthetic_imagefolder(f"{tmp}/data")
        config = ImageFolderConfig(resolutions=(32, 40), epochs=1, width_mult=0.25, cache_dir=f"{tmp}/cache")
        env = pettingzoo.make("parallel", "ma2ml/AutoML-ImageNet-v0", task=imagefolder_task(config), data_dir=str(tree))
        env.reset(seed=0)
        env.unwrapped.evaluator.splits  # decode and cache the tree outside the timing
        seconds = []
        for _ in range(3):
            env.reset()
            actions = {a: env.action_space(a).sample() for a in env.possible_agents}
            start = time.perf_counter()
            env.step(actions)
            seconds.append(time.perf_counter() - start)
        print(f"tiny tree (3 classes x 6 images, 1 epoch, 32-40 px, width x0.25): "
              f"{np.median(seconds):.2f} s per env step, FLOPs counting included (median of 3, CPU)")
    arch = REFERENCE_ARCHITECTURES["fbnetv3-c-like"]
    torch.manual_seed(0)
    net = FBNetwork(arch, 3, 200)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 3, arch.resolution, arch.resolution), torch.randint(0, 200, (32,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(2):
        step()
    per_image = (time.perf_counter() - start) / 64
    print(f"full size ({arch.resolution} px, 200 classes): {1 / per_image:.1f} training images/s on CPU "
          f"({torch.get_num_threads()} thread(s))")


def main(argv: list[str] | None = None) -> None:
    from ma2ml.models.fbnet import FBNetwork
    from ma2ml.models.flops import count_macs
    from ma2ml.envs.spaces.fbnet import FBNetSpace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30, help="candidates scored with count_macs")
    parser.add_argument("--fast", type=int, default=20_000, help="candidates scored with the analytic scorer")
    parser.add_argument("--evaluation", action="store_true", help="also time one evaluation and training steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    space = FBNetSpace()
    rng = np.random.default_rng(0)
    tokens = [space.sample(rng) for _ in range(max(args.fast, args.count))]

    start = time.perf_counter()
    reference = []
    for t in tokens[:args.count]:
        arch = space.decode(t)
        reference.append(count_macs(lambda a=arch: FBNetwork(a), (1, 3, arch.resolution, arch.resolution))[0])
    slow = args.count / (time.perf_counter() - start)
    print(f"count_macs (meta device):  {slow:10.1f} candidates/s ({args.count} candidates)")

    start = time.perf_counter()
    fast_flops = [space.flops(t) for t in tokens[:args.fast]]
    fast = args.fast / (time.perf_counter() - start)
    print(f"analytic scorer:           {fast:10.1f} candidates/s ({args.fast} distinct candidates, cache filling)")
    if fast_flops[:args.count] != reference:
        raise SystemExit("the analytic scorer disagrees with count_macs")
    print(f"agreement: {args.count}/{args.count} equal; FLOPs of the {args.fast} candidates: "
          f"5th/50th/95th percentile {np.percentile(fast_flops, [5, 50, 95]).round(-6) / 1e6} M")

    if args.evaluation:
        time_evaluation()
    print(f"analytic / count_macs throughput: {fast / slow:.0f}x")


if __name__ == "__main__":
    main()
