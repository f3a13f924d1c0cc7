"""Batched TorchRL env speed: agent-steps per second for N games at once, against the PettingZoo path.

One agent-step is one agent acting once (an env step of N games with n agents is N * n
agent-steps). Measured in the same run, on the DigitsBench table (fixed replicate 0):

* **batched** (:func:`ma2ml.envs.torchrl_env.table_env`, N = ``--envs``): TorchRL's own
  stepping loop, ``env.step_and_maybe_reset`` (what TorchRL's collectors call: auto-reset of
  finished games, nothing stacked), with a uniform random policy over the legal actions in
  torch; for both the token view (L = 4 steps per pipeline) and the one-step joint view;
* **rollout**: ``env.rollout(L)`` of one episode batch (stacks the trajectory, as a learner
  does), for the token view;
* **PettingZoo**: ``reset`` + ``step`` of one game at a time through the PettingZoo API
  (``ma2ml/TokenAutoML-DigitsBench-v0`` and ``ma2ml/AutoML-DigitsBench-v0``) with the same kind
  of policy (NumPy, precomputed actions for the joint view).

Target: >= 1,000,000 agent-steps/s for the batched token view at N = 4,096 on a 2-core CPU,
one torch thread. The last line is the headline figure.

    python benchmarks/bench_torchrl_env.py [--envs 4096] [--seconds 2] [--quick]
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import torch

import ma2ml.envs  # noqa: F401  (registers the envs)
from common import rate

TARGET = 1_000_000
"""Agent-steps per second the batched token view must reach at N = 4,096."""



def random_legal(generator: torch.Generator) -> Callable:
    """A uniform policy over legal actions: the token view's masks are prefixes (actions 0..k-1 legal)."""
    def policy(td):
        mask = td.get(("agents", "action_mask"))
        legal = mask.sum(-1)
        td.set(("agents", "action"), (torch.rand(legal.shape, generator=generator) * legal).long())
        return td
    return policy


def batched_rate(env, policy: Callable, seconds: float) -> float:
    """Agent-steps per second of ``env.step_and_maybe_reset`` under ``policy``."""
    agents = sum(env.full_action_spec[k].shape[1] for k in env.full_action_spec.keys())
    state = {"td": env.reset()}

    def steps() -> int:
        td = state["td"]
        for _ in range(20):
            _, td = env.step_and_maybe_reset(policy(td))
        state["td"] = td
        return 20 * env.num_envs * agents
    return rate(steps, seconds)


def main(argv: list[str] | None = None) -> None:
    import pettingzoo

    from ma2ml.envs.torchrl_env import table_env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4096, help="N, the games of the batched env")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--quick", action="store_true", help="N = 256 and 0.2 s per measurement (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.seconds = 256, 0.2
    torch.set_num_threads(1)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"torch {torch.__version__}, 1 thread")

    generator = torch.Generator().manual_seed(0)
    token = table_env(args.envs, view="token", table_seed=0, seed=0)
    n, L = len(token.layout.agents), token.layout.steps
    batched = batched_rate(token, random_legal(generator), args.seconds)
    print(f"batched token view, step_and_maybe_reset (N = {args.envs:,}): {batched:,.0f} agent-steps/s")

    joint = table_env(args.envs, view="joint", table_seed=0, seed=0)
    nvec = {a: torch.tensor(s) for a, s in zip(joint.layout.agents, joint.layout.sizes)}

    def joint_policy(td):
        for a, sizes in nvec.items():
            td.set((a, "action"), (torch.rand(args.envs, 1, len(sizes), generator=generator) * sizes).long())
        return td
    batched_joint = batched_rate(joint, joint_policy, args.seconds)
    print(f"batched joint view, step_and_maybe_reset (N = {args.envs:,}): {batched_joint:,.0f} agent-steps/s")

    policy = random_legal(generator)
    rolled = rate(lambda: token.rollout(L, policy, auto_reset=True).numel() * n, args.seconds)
    print(f"batched token view, rollout of one episode batch (N = {args.envs:,}, L = {L}): "
          f"{rolled:,.0f} agent-steps/s")

    rng = np.random.default_rng(0)
    penv = pettingzoo.make("parallel", "ma2ml/TokenAutoML-DigitsBench-v0", table_seed=0)
    penv.reset(seed=0)

    def token_episode() -> int:
        obs, _ = penv.reset()
        steps = 0
        while penv.agents:
            obs, *_ = penv.step({a: int(rng.integers(obs[a]["action_mask"].sum())) for a in penv.agents})
            steps += n
        return steps
    pz_token = rate(token_episode, args.seconds)
    print(f"PettingZoo token view (reset + {L} steps, one game): {pz_token:,.0f} agent-steps/s")

    base = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    base.reset(seed=0)
    actions = [{a: base.action_space(a).sample() for a in base.possible_agents} for _ in range(1000)]
    cursor = iter(range(10**12))

    def joint_episode() -> int:
        base.reset()
        base.step(actions[next(cursor) % len(actions)])
        return n
    pz_joint = rate(joint_episode, args.seconds)
    print(f"PettingZoo parallel (joint) view (reset + step, one game): {pz_joint:,.0f} agent-steps/s")

    print(f"ratios: batched/PettingZoo token view {batched / pz_token:,.0f}x; "
          f"joint view {batched_joint / pz_joint:,.0f}x")
    verdict = "target met" if batched >= TARGET else "TARGET MISSED"
    print(f"headline: {batched:,.0f} agent-steps/s batched token view at N = {args.envs:,} (target {TARGET:,}: "
          f"{verdict}), {batched / pz_token:,.0f}x the PettingZoo path ({pz_token:,.0f}/s)")


if __name__ == "__main__":
    main()
