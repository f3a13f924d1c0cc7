"""Re-evaluating the top at the end of the budget, on the hard tier with seed noise: the true regret of each
learner's recommend() and its winner's-curse gap (observed mean - truth), with and without
``reevaluate_share``.

    python3 benchmarks/reevaluation.py [--seeds 6000:6010] [--budget 300] [--share 0.2] [--top 5]

The share and top are fixed choices, not tuned; seeds 6000-6009 are used by no other script (held out).
A pilot: 10 seeds resolve large differences only; ``ma2ml compare`` is the protocol for a full comparison.
"""
from __future__ import annotations

import argparse

import numpy as np


def run(learner: str, seed: int, budget: int, share: float, top: int) -> tuple[float, float, float]:
    """(true regret of recommend(), its winner's-curse gap, the best evaluated pipeline's true regret)."""
    import ma2ml
    from ma2ml.envs.core.layout import JointLayout

    env = ma2ml.make("ma2ml/AutoML-DigitsHard-v0")
    env.reset(seed=seed)
    truth = env.evaluator.truth(env.reward_fn)
    layout = JointLayout.of_spaces(env.evaluator.spaces)
    model = ma2ml.make_learner(learner, env, seed=seed, reevaluate_share=share, reevaluate_top=top)
    model.learn(env, budget=budget, batch_size=10, no_repeat=False)
    pick = layout.index(model.joint([model.recommend()]))[0]
    observed = next(m for r, m, _ in model.observations() if layout.index(r[None, :])[0] == pick)
    seen = layout.index(np.stack([r for r, _, _ in model.observations()]))
    model.close()
    return float(truth.max() - truth[pick]), float(observed - truth[pick]), float(truth.max() - truth[seen].max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="6000:6010", help="first:stop (default 6000:6010, held out)")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--learners", default="ma2ml,random")
    args = parser.parse_args(argv)
    first, stop = (int(x) for x in args.seeds.split(":"))
    seeds = range(first, stop)
    print(f"hard tier, seed noise, budget {args.budget}, seeds {first}..{stop - 1}; mean [min, max] over seeds")
    print("| learner | reevaluate_share | true regret of recommend() | winner's curse (observed - truth) | "
          "best evaluated's true regret |")
    print("|---|---|---|---|---|")
    for learner in args.learners.split(","):
        for share in (0.0, args.share):
            rows = np.array([run(learner, s, args.budget, share, args.top) for s in seeds])
            cells = [f"{rows[:, j].mean():.4f} [{rows[:, j].min():.4f}, {rows[:, j].max():.4f}]" for j in range(3)]
            print(f"| {learner} | {share:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
