"""The sweep that chose the noise strategy of benchmarks/compare_noise.sh (issue 25): how to spend the end of
a budget of 300 on the hard tier with seed noise so that the recommendation stands behind a measured mean.

    python3 benchmarks/reevaluation_sweep.py [--seeds 6000:6020] [--learners ma2ml,random]

Dev seeds only: 6000-6019 (the hard tier's reporting seeds are 3000-3029; nothing here looks at them).

1. Each learner searches with the no-repeat protocol for the full budget; its trajectory (pipelines in
   the order told, each one's first reward) is cached in ``benchmarks/results/reevaluation/trajectories/``.
   A learner's own proposals do not depend on the re-evaluations (they are never told to it), so the
   search of a run with ``reevaluate_share = s`` is the first ``300 (1 - s)`` evaluations of this one.
2. Each strategy is then played on the table's stored trainings: a re-evaluation of a pipeline answers
   with one of its stored trainings not yet drawn (at random; all drawn: with replacement), as the table
   answers a repeat. Strategies: none; equal shares over the top k by observed mean (the fewest
   evaluations first: ``reevaluate_share``/``reevaluate_top``, whose live rule also lets a pipeline leave
   the top k once its mean drops); successive halving over the top k (for comparison).
   The recommendation is the learners' rule (``pick_recommendation``: the best lower confidence bound).
3. Racing (``race_seeds``) changes the search itself (a batch's race evaluations go before the learner's
   own proposals), so it runs live, with the learner.

Prints one markdown table per learner: the true regret of the recommendation and of the best evaluated
pipeline, mean over seeds. benchmarks/results/reevaluation/sweep.md holds the committed output.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "reevaluation" / "trajectories"
BUDGET = 300
ENV = "ma2ml/AutoML-DigitsHard-v0"


def trajectory(learner: str, seed: int, **learner_args) -> dict:
    """A run's told pipelines (table indices, in order), first rewards, and its recommendation's index."""
    import ma2ml
    from ma2ml.envs.core.layout import JointLayout

    env = ma2ml.make(ENV)
    env.reset(seed=seed)
    layout = JointLayout.of_spaces(env.evaluator.spaces)
    model = ma2ml.make_learner(learner, env, seed=seed, **learner_args)
    model.learn(env, budget=BUDGET, batch_size=10, no_repeat=True)
    observed = model.observations()
    out = {"index": layout.index(np.stack([r for r, _, _ in observed])).tolist(),
           "reward": [m for _, m, _ in observed], "count": [c for _, _, c in observed],
           "recommended": int(layout.index(model.joint([model.recommend()]))[0])}
    model.close()
    return out


def cached(learner: str, seed: int) -> dict:
    path = OUT / f"{learner}-{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    run = trajectory(learner, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run) + "\n")
    return run


class Table:
    """The hard tier's stored trainings: each pipeline's rewards (one per stored seed) and its truth."""

    def __init__(self) -> None:
        import ma2ml

        env = ma2ml.make(ENV)
        ev = env.evaluator
        self.rewards = ev.seed_rewards(env.reward_fn)
        self.replicates = np.maximum(ev.table.replicates, 1)
        self.truth = ev.truth(env.reward_fn)
        self.optimum = float(self.truth.max())

    def draws(self, index: int, first: float, rng: np.random.Generator) -> list[float]:
        """The pipeline's other stored trainings in a random order (the one that answered first left out)."""
        values = [float(v) for v in self.rewards[index, :self.replicates[index]]]
        values.pop(int(np.argmin([abs(v - first) for v in values])))
        rng.shuffle(values)
        return values


def play(table: Table, run: dict, share: float, policy: str, k: int, seed: int) -> tuple[float, float]:
    """(true regret of the recommendation, true regret of the best evaluated) of one strategy."""
    from ma2ml.agents.base import pick_recommendation

    spend = int(round(share * BUDGET)) if policy != "none" else 0
    rng = np.random.default_rng(seed)
    obs: dict[int, list[float]] = {}
    for index, reward in zip(run["index"][:BUDGET - spend], run["reward"]):
        obs.setdefault(index, []).append(reward)
    queue: dict[int, list[float]] = {}

    def again(index: int) -> None:
        if index not in queue:
            queue[index] = table.draws(index, obs[index][0], rng)
        rest = queue[index]
        obs[index].append(rest.pop(0) if rest else float(rng.choice(table.rewards[index, :table.replicates[index]])))

    means = {i: float(np.mean(v)) for i, v in obs.items()}
    if policy == "equal":
        top = sorted(obs, key=lambda i: -means[i])[:k]
        for _ in range(spend):
            again(min(top, key=lambda i: (len(obs[i]), -float(np.mean(obs[i])))))
    elif policy == "halving":
        alive, left = sorted(obs, key=lambda i: -means[i])[:k], spend
        rounds = max(1, math.ceil(math.log2(k)))
        for r in range(rounds):
            per = left // (rounds - r)
            for j in range(per):
                again(alive[j % len(alive)])
            left -= per
            alive = sorted(alive, key=lambda i: -float(np.mean(obs[i])))[:max(1, math.ceil(len(alive) / 2))]
    keys = list(obs)
    pick = keys[pick_recommendation(np.array([sum(obs[i]) for i in keys]), np.array([len(obs[i]) for i in keys]),
                                    np.array([sum(x * x for x in obs[i]) for i in keys]))]
    return table.optimum - float(table.truth[pick]), table.optimum - float(table.truth[keys].max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="6000:6020", help="first:stop (default 6000:6020, the dev seeds)")
    parser.add_argument("--learners", default="ma2ml,random")
    parser.add_argument("--race", default="8,16", help="race_seeds values run live (empty: none)")
    args = parser.parse_args(argv)
    first, stop = (int(x) for x in args.seeds.split(":"))
    seeds = range(first, stop)
    table = Table()
    strategies = [("none", 0, 0.0)] + [("equal", k, s) for k in (3, 5, 10) for s in (0.1, 0.2, 0.3)] \
        + [("halving", k, s) for k in (8, 16) for s in (0.1, 0.2, 0.3)]
    print(f"hard tier with seed noise, budget {BUDGET}, dev seeds {first}..{stop - 1}; true regret, mean over seeds")
    for learner in args.learners.split(","):
        runs = {s: cached(learner, s) for s in seeds}
        print(f"\n#### {learner}\n\n| strategy | top k | share | (a) recommendation | (b) best evaluated |\n|---|---|---|---|---|")
        for policy, k, share in strategies:
            res = np.array([play(table, runs[s], share, policy, k, s) for s in seeds])
            print(f"| {policy} | {k or '—'} | {share:g} | {res[:, 0].mean():.4f} | {res[:, 1].mean():.4f} |", flush=True)
        for race in [int(r) for r in args.race.split(",") if r]:
            res = []
            for s in seeds:
                run = trajectory(learner, s, race_seeds=race)
                res.append((table.optimum - table.truth[run["recommended"]],
                            table.optimum - table.truth[run["index"]].max()))
            res = np.array(res)
            print(f"| racing (race_seeds={race}, live) | — | — | {res[:, 0].mean():.4f} | {res[:, 1].mean():.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
