"""Table-env speed: episodes per second through the PettingZoo API and through the batched path,
on the digits table and on the hard tier.

Reference, measured in the same run: one real training evaluation of a table pipeline
(``TrainEvaluator`` on CPU, one torch thread), which is what the table answers stand for.
Targets: >= 5,000 episodes/s through ``reset`` + ``step`` and >= 100,000 lookups/s through
``TableEvaluator.rewards`` (token rows in, rewards out).

    python benchmarks/bench_table_speed.py [--seconds 2] [--batch 100000] [--env ID ...]

The last line is the headline figure.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import ma2ml.envs  # noqa: F401  (registers the envs)
from common import rate



TIERS = ("ma2ml/AutoML-DigitsBench-v0", "ma2ml/AutoML-DigitsHard-v0")
"""The table envs measured: the digits table and the hard tier."""


def reference_training(env_id: str) -> float:
    """Seconds of one real training of a pipeline of the env's table (after a first, warming one):
    for the hard tier a pipeline whose training cost (FLOPs x epochs) is nearest the budget B, the
    median cost."""
    from ma2ml.bench.space import bench_spaces, bench_task
    from ma2ml.training.evaluators import TrainEvaluator

    if env_id.endswith("DigitsHard-v0"):
        from ma2ml.bench.hard.definitions import space_table
        from ma2ml.bench.hard.tables import CANDIDATE, HARD_BENCH, HARD_REWARD_ARGS

        task, spaces = HARD_BENCH.task(), HARD_BENCH.spaces()
        table = space_table(CANDIDATE)
        index = int(np.argmin(np.abs(table["flops"] * table["epochs"] - HARD_REWARD_ARGS["training_budget"])))
    else:
        task, spaces, index = bench_task(), bench_spaces(), 2591
    from ma2ml.envs.core.layout import JointLayout

    layout = JointLayout.of_spaces(spaces)
    trainer = TrainEvaluator(task, spaces, device="cpu")
    trainer.evaluate(layout.tokens_at(0), seed=0)  # data loading and first-call costs
    start = time.perf_counter()
    trainer.evaluate(layout.tokens_at(index), seed=0)
    return time.perf_counter() - start


def measure(env_id: str, seconds: float, batch: int) -> tuple[float, float]:
    """(episodes/s through reset + step, lookups/s through ``TableEvaluator.rewards``), printed
    with the reference training measured in the same run."""
    import pettingzoo

    train_s = reference_training(env_id)
    print(f"{env_id}\n  reference: one real training evaluation: {train_s:.3f} s ({1 / train_s:.2f} evaluations/s)")
    env = pettingzoo.make("parallel", env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [{a: env.action_space(a).sample() for a in env.possible_agents} for _ in range(1000)]
    cursor = iter(range(10**12))

    def episode() -> int:
        env.reset()
        env.step(actions[next(cursor) % len(actions)])
        return 1

    api = rate(episode, seconds)
    print(f"  PettingZoo API (reset + step): {api:,.0f} episodes/s = {api * train_s:,.0f}x real training")
    records = rate(lambda: len(env.evaluate_batch(actions)), seconds)
    print(f"  env.evaluate_batch (EvalRecords, batches of {len(actions)}): {records:,.0f} evaluations/s "
          f"= {records * train_s:,.0f}x real training")
    ev = env.evaluator
    nvec = ev.layout.nvec
    rows = rng.integers(0, nvec, size=(batch, len(nvec)))
    seeds = rng.integers(0, 2**31 - 1, size=batch)
    batched = rate(lambda: len(ev.rewards(rows, env.reward_fn, seeds)), seconds)
    print(f"  batched lookup TableEvaluator.rewards (rows of {batch:,}): {batched:,.0f} lookups/s "
          f"= {batched * train_s:,.0f}x real training")
    return api, batched


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=100_000, help="joint actions per batched lookup")
    parser.add_argument("--env", choices=TIERS, action="append", help="a table env to measure (default: both)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {env_id: measure(env_id, args.seconds, args.batch) for env_id in args.env or TIERS}
    ok = all(api >= 5_000 and batched >= 100_000 for api, batched in results.values())
    print("headline: " + "; ".join(f"{env_id.split('/')[1]} {api:,.0f} episodes/s via PettingZoo, {batched:,.0f} "
                                   f"lookups/s batched" for env_id, (api, batched) in results.items())
          + f" (targets 5,000 and 100,000): {'targets met' if ok else 'TARGETS MISSED'}")


if __name__ == "__main__":
    main()
