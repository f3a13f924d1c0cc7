"""Learning sanity on the synthetic game: how often each learner finds the optimum.

    python benchmarks/synthetic_sanity.py 1024 32 5     # budget, batch size, games

Game g = ``SyntheticEvaluator(game=g)`` with ``small_spaces()`` (3 agents x 2 tokens x 4
choices, 4,096 pipelines, pairwise terms between agents), searched with learner seed g; the
reward is the game's accuracy (FLOPs constraint = the game's FLOPs).
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

from ma2ml.learners import learner_names, make_learner
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.bench.synthetic import SyntheticEvaluator


def main(budget: int, batch: int, games: int) -> None:
    torch.set_num_threads(1)
    for name in learner_names():
        hits, regrets, start = 0, [], time.perf_counter()
        for seed in range(games):
            game = SyntheticEvaluator(game=seed)
            env = parallel_env(evaluator=game, flops_constraint=game.flops)
            env.reset(seed=seed)
            learner = make_learner(name, env, seed=seed)
            best = max(r for b in learner.learn(env, budget=budget, batch_size=batch) for r in b.rewards)
            learner.close()
            regrets.append(game.optimum()[0] - best)
            hits += regrets[-1] <= 1e-12
        print(f"{name:15s} optimum in {hits}/{games}  median regret {statistics.median(regrets):.4f}  "
              f"{(time.perf_counter() - start) / games:.1f} s/run")


if __name__ == "__main__":
    main(*(int(x) for x in (sys.argv[1:4] or (1024, 32, 5))))
