"""Table-env speed: episodes per second through the PettingZoo API and through the batched path.

Reference, measured in the same run: one real training evaluation of a table pipeline
(``TrainEvaluator`` on CPU, one torch thread), which is what the table answers stand for.
Targets: >= 5,000 episodes/s through ``reset`` + ``step`` and >= 100,000 lookups/s through
``TableEvaluator.rewards`` (token rows in, rewards out).

    python benchmarks/bench_table_speed.py [--seconds 2] [--batch 100000]

The last line is the headline figure.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import ma2ml.envs  # noqa: F401  (registers the envs)
from common import rate



def main(argv: list[str] | None = None) -> None:
    import pettingzoo

    from ma2ml.envs.benchmark.space import bench_spaces, bench_task, pipeline_tokens
    from ma2ml.envs.training.evaluators import TrainEvaluator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=100_000, help="joint actions per batched lookup")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    spaces = bench_spaces()
    trainer = TrainEvaluator(bench_task(), spaces, device="cpu")
    trainer.evaluate(pipeline_tokens(spaces, 0), seed=0)  # data loading and first-call costs
    start = time.perf_counter()
    trainer.evaluate(pipeline_tokens(spaces, 2591), seed=0)
    train_s = time.perf_counter() - start
    print(f"reference: one real training evaluation: {train_s:.3f} s ({1 / train_s:.2f} evaluations/s)")

    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [{a: env.action_space(a).sample() for a in env.possible_agents} for _ in range(1000)]
    cursor = iter(range(10**12))

    def episode() -> int:
        env.reset()
        env.step(actions[next(cursor) % len(actions)])
        return 1

    api = rate(episode, args.seconds)
    print(f"PettingZoo API (reset + step): {api:,.0f} episodes/s = {api * train_s:,.0f}x real training")

    records = rate(lambda: len(env.evaluate_batch(actions)), args.seconds)
    print(f"env.evaluate_batch (EvalRecords, batches of {len(actions)}): {records:,.0f} evaluations/s "
          f"= {records * train_s:,.0f}x real training")

    ev = env.evaluator
    nvec = np.concatenate([s.nvec for s in spaces.values()])
    rows = rng.integers(0, nvec, size=(args.batch, len(nvec)))
    seeds = rng.integers(0, 2**31 - 1, size=args.batch)
    batched = rate(lambda: len(ev.rewards(rows, env.reward_fn, seeds)), args.seconds)
    print(f"batched lookup TableEvaluator.rewards (rows of {args.batch:,}): {batched:,.0f} lookups/s "
          f"= {batched * train_s:,.0f}x real training")
    ok = api >= 5_000 and batched >= 100_000
    print(f"headline: {api:,.0f} episodes/s via PettingZoo (target 5,000), {batched:,.0f} lookups/s batched "
          f"(target 100,000): {'targets met' if ok else 'TARGETS MISSED'}")


if __name__ == "__main__":
    main()
