"""How good is MA2ML's critic on the benchmark table? (the first check of issue 5, item 4)

    python benchmarks/critic_quality.py            # budgets 50, 100, 260; 5 seeds each

For each budget n, MA2ML's critic (same class, optimizer and update schedule as the learner's
defaults: 50 mini-batch steps of 64 after each batch of 10) is fitted on n pipelines drawn
uniformly from the table (fixed replicate), then scored on every pipeline it has not seen:
Spearman rank correlation with the true reward, RMSE, and the true rank of the pipeline the
critic likes best. The last line is the headline (rank correlation at 5% of the table).
"""
from __future__ import annotations

import argparse

import numpy as np
import pettingzoo
import torch
import torch.nn.functional as F
from scipy import stats

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import learner_config
from ma2ml.agents.critic import Critic
from ma2ml.bench.space import joint_nvec, pipeline_tokens


def fit_and_score(nvec: np.ndarray, rows: np.ndarray, rewards: np.ndarray, state: np.ndarray, n: int,
                  seed: int) -> dict[str, float]:
    cfg = learner_config("ma2ml")
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    seen = rng.choice(len(rows), size=n, replace=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        q = Critic(nvec, len(state), cfg.hidden)
    opt = torch.optim.AdamW(q.parameters(), lr=cfg.critic_lr, weight_decay=cfg.critic_weight_decay)
    S = torch.as_tensor(np.repeat(state[None], len(rows), 0))
    A, R = torch.as_tensor(rows), torch.as_tensor(rewards, dtype=torch.float32)
    for end in range(10, n + 1, 10):  # one critic update per batch of 10, as the learner does
        idx = torch.as_tensor(seen[:end])
        for _ in range(cfg.critic_steps):
            pick = idx[torch.randint(len(idx), (cfg.critic_batch,), generator=gen)]
            loss = F.mse_loss(q(S[pick], A[pick]), R[pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = q(S, A).numpy()
    held = np.setdiff1d(np.arange(len(rows)), seen)
    order = np.argsort(-rewards)
    rank = {int(p): r for r, p in enumerate(order)}
    return {
        "spearman": float(stats.spearmanr(pred[held], rewards[held]).statistic),
        "rmse": float(np.sqrt(np.mean((pred[held] - rewards[held]) ** 2))),
        "argmax_rank": rank[int(held[np.argmax(pred[held])])] + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="50,100,260")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    spaces, ev = env.spaces, env.evaluator
    n = ev.table.n_pipelines
    rows = ev.joint([pipeline_tokens(spaces, i) for i in range(n)])
    rewards = ev.rewards(rows, env.reward_fn, seeds=[0] * n)
    print(f"table: {n} pipelines, reward std {rewards.std():.4f}")
    headline = None
    for budget in (int(b) for b in args.budgets.split(",")):
        runs = [fit_and_score(joint_nvec(spaces), rows, rewards, env.state(), budget, s) for s in range(args.seeds)]
        rho = np.mean([r["spearman"] for r in runs])
        print(f"critic on {budget:4d} pipelines: held-out Spearman {rho:.3f}, RMSE "
              f"{np.mean([r['rmse'] for r in runs]):.4f}, true rank of its favourite "
              f"{sorted(r['argmax_rank'] for r in runs)} (of {n})")
        headline = (budget, rho) if budget == 260 or headline is None else headline
    print(f"headline: critic rank correlation on held-out pipelines after {headline[0]} evaluations: {headline[1]:.3f}")


if __name__ == "__main__":
    main()
