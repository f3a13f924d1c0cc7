"""MA2ML's estimators against exact enumeration, and mutants of MA2ML that these checks reject.

On a tiny game (two or three agents, 36 joint actions) every quantity of the equations in
:mod:`ma2ml.agents.ma2ml` can be computed exactly, in float64, with the exact Q (the game's
score table) in place of the critic (``critic_steps=0``). Each check below recomputes its
quantity independently and compares it with the learner's:

1. the counterfactual baseline b(S, a_-i) = sum_a pi_i(a) Q(S, a, a_-i), exactly when agent i's
   actions are enumerated and within five standard errors when they are sampled (K = 4096);
2. the advantages A_i = G - b - lambda [log pi_i/rho_i (a_i) - E_pi_i log pi_i/rho_i], with
   lambda > 0 and rho != pi;
3. the policy gradient: sum over every joint row of pi(row) grad surrogate(row) equals
   grad [E_pi Q - lambda sum_i KL(pi_i || rho_i)] for every policy parameter;
4. the Polyak step rho <- (1 - tau) rho + tau pi, once per told batch (three policy steps each);
5. DMAC's monotonic improvement: in the default config, with DMAC's tau = 0.01 and with the
   default tau, the return under the target policy, E_rho[Q], rises at every one of 20 batches
   (3 games x 2 seeds); and what lambda buys: the largest KL(pi || rho) over those batches is
   under a third of lambda = 0's. (E_pi[Q] is not monotone with lambda > 0: Adam overshoots the
   maximiser of E_pi[Q] - lambda KL(pi || rho) and the KL pulls pi back; with plain SGD neither
   E_pi[Q] nor that objective falls.)

Each check is a function of the learner class, so :func:`test_checks_catch_mutation` runs the
same checks on mutants of MA2ML (one overridden method each) and asserts that they fail.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from ma2ml.agents.ma2ml import MA2ML, MA2MLConfig
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.spaces import TokenSpace

LAYOUTS = {
    "3-agents": {"aug": [3, 2], "nas": [2], "hpo": [3]},
    "2-agents": {"aug": [2, 3], "nas": [3, 2]},
}
"""Token sizes of each agent; both have 36 joint actions and an agent with two tokens (the
autoregressive path of the policy)."""

KL_COEF = 0.5
"""lambda of the estimator checks: large enough that the KL terms are a visible part of A_i and grad J."""


class ExactQ(nn.Module):
    """Q(S, A) read from the game's score table (the exact critic), in float64."""

    def __init__(self, evaluator: SyntheticEvaluator, layout: JointLayout) -> None:
        super().__init__()
        rows = layout.all_rows()
        sizes = [int(n) for n in layout.nvec]
        self.register_buffer("table", torch.tensor([evaluator.score(row) for row in rows], dtype=torch.float64))
        self.register_buffer("strides", torch.tensor([int(np.prod(sizes[i + 1:])) for i in range(len(sizes))]))

    def forward(self, state: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        return self.table[(joint * self.strides).sum(1)]

    def score(self, state: torch.Tensor, joint: torch.Tensor, optimism: float = 0.0) -> torch.Tensor:
        """The :class:`~ma2ml.agents.critic.CriticEnsemble` interface that ``MA2ML.q_value`` calls."""
        return self(state, joint)


def make(cls: type[MA2ML] = MA2ML, layout: str = "3-agents", game: int = 0, seed: int = 0, **config) -> MA2ML:
    """A learner of class ``cls`` on the tiny game, its policies in float64 and Q exact."""
    spaces = {agent: TokenSpace(nvec, kind=agent) for agent, nvec in LAYOUTS[layout].items()}
    evaluator = SyntheticEvaluator(spaces=spaces, game=game)
    env = parallel_env(evaluator=evaluator, flops_constraint=evaluator.flops)
    env.reset(seed=seed)
    learner = cls(env, MA2MLConfig(critic_steps=0, **config), seed=seed)
    learner.policies.double()
    learner.target_policies.double()
    learner.S = learner.S.double()
    learner.Q = ExactQ(evaluator, learner.layout)
    return learner


def perturbed(cls: type[MA2ML] = MA2ML, layout: str = "3-agents", **config) -> MA2ML:
    """:func:`make` with seeded noise added to every parameter of pi and, separately, of rho, so
    that pi and rho are neither uniform (their initial heads are zero) nor equal."""
    learner = make(cls, layout, **config)
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in itertools.chain(learner.policies.parameters(), learner.target_policies.parameters()):
            p.add_(0.3 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    return learner


# -- exact quantities, computed without the learner's estimators ----------------------------------------
def agent_actions(learner: MA2ML, agent: str) -> torch.Tensor:
    """Every token vector of ``agent``, last token fastest."""
    return torch.tensor(list(itertools.product(*(range(int(n)) for n in learner.nvec[agent]))))


def log_probs(learner: MA2ML, policies: nn.ModuleDict, agent: str) -> torch.Tensor:
    """log pi(a) of every action a of ``agent`` under ``policies[agent]`` (pi or rho)."""
    actions = agent_actions(learner, agent)
    return policies[agent].log_prob(learner.states(len(actions)), actions)


def action_index(learner: MA2ML, agent: str, tokens: torch.Tensor) -> torch.Tensor:
    """Index in :func:`agent_actions` of each row of ``agent``'s tokens (n, its tokens)."""
    nvec = [int(n) for n in learner.nvec[agent]]
    strides = torch.tensor([int(np.prod(nvec[t + 1:])) for t in range(len(nvec))])
    return (tokens * strides).sum(1)


def joint_index(learner: MA2ML, agent: str, joint: torch.Tensor) -> torch.Tensor:
    """Index in :func:`agent_actions` of each joint row's ``agent`` action."""
    return action_index(learner, agent, joint[:, learner.slices[agent]])


def all_joint(learner: MA2ML) -> torch.Tensor:
    return torch.as_tensor(learner.layout.all_rows())


def q_grid(learner: MA2ML) -> torch.Tensor:
    """Q with one axis per agent (that agent's action index): the table, reshaped."""
    return learner.Q.table.view(*(len(agent_actions(learner, a)) for a in learner.agents))


def counterfactual_moments(learner: MA2ML, agent: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, variance) over a_i ~ pi_i of Q(S, a_i, a_-i), for every joint row."""
    axis = learner.agents.index(agent)
    pi = log_probs(learner, learner.policies, agent).exp()
    grid = q_grid(learner)
    mean = torch.tensordot(grid, pi, dims=([axis], [0]))
    variance = torch.tensordot(grid ** 2, pi, dims=([axis], [0])) - mean ** 2
    joint = all_joint(learner)
    others = tuple(joint_index(learner, a, joint) for a in learner.agents if a != agent)
    return mean[others], variance[others]


def exact_objective(learner: MA2ML) -> torch.Tensor:
    """J = E_pi[Q] - lambda sum_i KL(pi_i || rho_i), by enumeration, differentiable in pi."""
    joint = all_joint(learner)
    log_pi = {a: log_probs(learner, learner.policies, a) for a in learner.agents}
    log_rho = {a: log_probs(learner, learner.target_policies, a).detach() for a in learner.agents}
    pi_rows = sum(log_pi[a][joint_index(learner, a, joint)] for a in learner.agents).exp()
    kl = sum((log_pi[a].exp() * (log_pi[a] - log_rho[a])).sum() for a in learner.agents)
    return (pi_rows * learner.Q.table).sum() - learner.config.kl_coef * kl


@torch.no_grad()
def expected_returns(learner: MA2ML) -> tuple[float, float, float]:
    """(E_pi[Q], E_rho[Q], sum_i KL(pi_i || rho_i)) by enumeration."""
    joint = all_joint(learner)
    log_pi = {a: log_probs(learner, learner.policies, a) for a in learner.agents}
    log_rho = {a: log_probs(learner, learner.target_policies, a) for a in learner.agents}
    pi_rows = sum(log_pi[a][joint_index(learner, a, joint)] for a in learner.agents).exp()
    rho_rows = sum(log_rho[a][joint_index(learner, a, joint)] for a in learner.agents).exp()
    kl = sum((log_pi[a].exp() * (log_pi[a] - log_rho[a])).sum() for a in learner.agents)
    return float(pi_rows @ learner.Q.table), float(rho_rows @ learner.Q.table), float(kl)


# -- the checks: each raises AssertionError when the learner class gets its quantity wrong ----------------
def check_counterfactuals(cls: type[MA2ML], k: int = 4096) -> None:
    """With exact_baseline_max = 3, "nas" (2 actions) and "hpo" (3) are enumerated: every action once,
    weighted by pi_i; "aug" (6) is sampled: K draws weighted 1/K, whose frequencies are within five
    standard errors of pi_i. log pi_i is the policy's, in both cases."""
    learner = perturbed(cls, exact_baseline_max=3, baseline_samples=k)
    for agent in learner.agents:
        actions, weights, log_pi = learner.counterfactuals(agent)
        index = action_index(learner, agent, actions)
        exact_log_pi = log_probs(learner, learner.policies, agent)
        pi = exact_log_pi.exp()
        torch.testing.assert_close(log_pi, exact_log_pi[index], rtol=1e-12, atol=1e-12)
        if agent == "aug":
            torch.testing.assert_close(weights, torch.full((k,), 1.0 / k, dtype=weights.dtype))
            frequency = torch.bincount(index, minlength=len(pi)) / k
            assert ((frequency - pi).abs() <= 5 * (pi * (1 - pi) / k).sqrt()).all(), f"{frequency} vs pi {pi}"
        else:
            assert torch.equal(index, torch.arange(len(pi))), f"{agent}: not every action once"
            torch.testing.assert_close(weights, pi, rtol=1e-12, atol=1e-12)


def check_baseline(cls: type[MA2ML], layout: str = "3-agents") -> None:
    """b(S, a_-i) of every joint row equals sum_a pi_i(a) Q(S, a, a_-i) (enumerated actions)."""
    learner = perturbed(cls, layout)
    joint = all_joint(learner)
    for agent in learner.agents:
        expected, _ = counterfactual_moments(learner, agent)
        torch.testing.assert_close(learner.baseline(agent, joint), expected, rtol=1e-12, atol=1e-12)


def check_monte_carlo_baseline(cls: type[MA2ML], layout: str = "3-agents", k: int = 4096) -> None:
    """With every agent sampled (exact_baseline_max = 0), b is within five standard errors
    sqrt(Var_pi_i Q / K) of the exact mean, row by row."""
    learner = perturbed(cls, layout, exact_baseline_max=0, baseline_samples=k)
    joint = all_joint(learner)
    for agent in learner.agents:
        mean, variance = counterfactual_moments(learner, agent)
        error = (learner.baseline(agent, joint) - mean).abs()
        assert (error <= 5 * (variance / k).sqrt()).all(), f"{agent}: error {error.max():.3g}"


def check_advantages(cls: type[MA2ML], layout: str = "3-agents") -> None:
    """A_i = G - b - lambda [log pi_i/rho_i (a_i) - E_pi_i log pi_i/rho_i] for every joint row and agent,
    with G the exact Q plus noise (so G is the given return, not Q)."""
    learner = perturbed(cls, layout, kl_coef=KL_COEF)
    joint = all_joint(learner)
    G = learner.Q.table + 0.1 * torch.randn(len(joint), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    advantages = learner.advantages(joint, G)
    assert set(advantages) == set(learner.agents)
    with torch.no_grad():
        for agent in learner.agents:
            b, _ = counterfactual_moments(learner, agent)
            log_ratio = log_probs(learner, learner.policies, agent) - log_probs(learner, learner.target_policies, agent)
            mean_log_ratio = (log_probs(learner, learner.policies, agent).exp() * log_ratio).sum()
            expected = G - b - KL_COEF * (log_ratio[joint_index(learner, agent, joint)] - mean_log_ratio)
            torch.testing.assert_close(advantages[agent], expected, rtol=1e-12, atol=1e-12)


def check_gradient(cls: type[MA2ML], layout: str = "3-agents") -> None:
    """sum over every joint row of pi(row) grad surrogate(row) (pi(row) held fixed, G = Q) equals
    autograd of J = E_pi[Q] - lambda sum_i KL(pi_i || rho_i), for every parameter of every policy."""
    learner = perturbed(cls, layout, kl_coef=KL_COEF)
    params = list(learner.policies.parameters())
    joint = all_joint(learner)
    with torch.no_grad():
        pi_rows = sum(log_probs(learner, learner.policies, a)[joint_index(learner, a, joint)]
                      for a in learner.agents).exp()
    estimate = torch.autograd.grad((pi_rows * learner.surrogate(joint, learner.Q.table)).sum(), params,
                                   allow_unused=True)
    expected = torch.autograd.grad(exact_objective(learner), params, allow_unused=True)
    scale = max(float(e.abs().max()) for e in expected if e is not None)
    for p, got, want in zip(params, estimate, expected, strict=True):
        torch.testing.assert_close(torch.zeros_like(p) if got is None else got,
                                   torch.zeros_like(p) if want is None else want, rtol=1e-9, atol=1e-12 * scale)


def check_polyak(cls: type[MA2ML], target_rate: float = 0.01) -> None:
    """After each of two told batches of three policy steps, every rho parameter equals
    (1 - tau) rho_before + tau pi_after."""
    learner = perturbed(cls, policy_steps=3, target_rate=target_rate)
    told = all_joint(learner)[:4]
    for _ in range(2):
        rho_before = [p.detach().clone() for p in learner.target_policies.parameters()]
        pi_before = [p.detach().clone() for p in learner.policies.parameters()]
        learner.tell(learner.split(told.numpy()), learner.Q(None, told).tolist())
        pi_after = [p.detach() for p in learner.policies.parameters()]
        assert max(float((p - q).abs().max()) for p, q in zip(pi_after, pi_before)) > 1e-4, "pi did not move"
        for rho, rho0, pi in zip(learner.target_policies.parameters(), rho_before, pi_after, strict=True):
            torch.testing.assert_close(rho, (1 - target_rate) * rho0 + target_rate * pi, rtol=1e-12,
                                       atol=1e-14)


BATCHES = 20
TARGET_RATES = sorted({0.01, MA2MLConfig.target_rate})
"""DMAC's tau and the default one."""


@functools.cache
def trajectory(cls: type[MA2ML], game: int, seed: int, kl_coef: float, target_rate: float) -> np.ndarray:
    """(E_pi[Q], E_rho[Q], KL(pi || rho)) before the first and after each of BATCHES told batches, in the
    default config (Adam at 3e-3, 5 policy steps of 64 fresh rows each per batch) but lambda and tau."""
    learner = make(cls, game=game, seed=seed, kl_coef=kl_coef, target_rate=target_rate)
    told = all_joint(learner)[:1]
    rows = [expected_returns(learner)]
    for _ in range(BATCHES):
        learner.tell(learner.split(told.numpy()), learner.Q(None, told).tolist())
        rows.append(expected_returns(learner))
    return np.array(rows)


def check_target_improves(cls: type[MA2ML], game: int = 0, seed: int = 0,
                          target_rate: float = MA2MLConfig.target_rate) -> None:
    """E_rho[Q] rises at every batch, and by more than 1e-3 over BATCHES batches (default lambda)."""
    returns = trajectory(cls, game, seed, MA2MLConfig.kl_coef, target_rate)[:, 1]
    steps = np.diff(returns)
    assert steps.min() > 0, f"E_rho[Q] changed by {steps.min():.3g} at batch {int(steps.argmin())}"
    assert returns[-1] - returns[0] > 1e-3, f"E_rho[Q] rose by only {returns[-1] - returns[0]:.3g}"


def check_kl_restrains(cls: type[MA2ML], game: int = 0, seed: int = 0,
                       target_rate: float = MA2MLConfig.target_rate) -> None:
    """The largest KL(pi || rho) over BATCHES batches with the default lambda is under a third of
    the real MA2ML's with lambda = 0."""
    regularised = trajectory(cls, game, seed, MA2MLConfig.kl_coef, target_rate)[:, 2].max()
    free = trajectory(MA2ML, game, seed, 0.0, target_rate)[:, 2].max()
    assert regularised < free / 3, f"max KL {regularised:.3f} with lambda, {free:.3f} without"


# -- the checks on MA2ML -----------------------------------------------------------------------------
def test_counterfactuals_are_every_action_or_samples_of_pi():
    check_counterfactuals(MA2ML)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_baseline_is_the_counterfactual_mean_of_q(layout):
    check_baseline(MA2ML, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_monte_carlo_baseline_is_within_five_standard_errors(layout):
    check_monte_carlo_baseline(MA2ML, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_advantages_follow_the_formula(layout):
    check_advantages(MA2ML, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_policy_gradient_is_the_gradient_of_the_regularised_objective(layout):
    check_gradient(MA2ML, layout)


@pytest.mark.parametrize("target_rate", [0.01, 0.25])
def test_targets_move_by_polyak_once_per_batch(target_rate):
    check_polyak(MA2ML, target_rate)


GAMES_AND_SEEDS = [(game, seed) for game in range(3) for seed in range(2)]


@pytest.mark.parametrize("target_rate", TARGET_RATES)
@pytest.mark.parametrize(("game", "seed"), GAMES_AND_SEEDS)
def test_target_policy_return_rises_every_batch(game, seed, target_rate):
    check_target_improves(MA2ML, game, seed, target_rate)


@pytest.mark.parametrize("target_rate", TARGET_RATES)
@pytest.mark.parametrize(("game", "seed"), GAMES_AND_SEEDS)
def test_kl_keeps_the_policy_near_its_target(game, seed, target_rate):
    check_kl_restrains(MA2ML, game, seed, target_rate)


# -- mutants: each check above must reject a wrong MA2ML ----------------------------------------------------
class FlippedKL(MA2ML):
    """(a) A_i = G - b + lambda [...]: the KL correction with the wrong sign."""

    def advantages(self, joint: torch.Tensor, G: torch.Tensor) -> dict[str, torch.Tensor]:
        regularised = super().advantages(joint, G)
        lam, self.config.kl_coef = self.config.kl_coef, 0.0
        try:
            plain = super().advantages(joint, G)
        finally:
            self.config.kl_coef = lam
        return {a: 2 * plain[a] - regularised[a] for a in plain}


class RhoIsPi(MA2ML):
    """(b) the KL correction against pi itself (rho = pi, so log pi_i/rho_i = 0)."""

    def advantages(self, joint: torch.Tensor, G: torch.Tensor) -> dict[str, torch.Tensor]:
        rho, self.target_policies = self.target_policies, self.policies
        try:
            return super().advantages(joint, G)
        finally:
            self.target_policies = rho


class NoBaseline(MA2ML):
    """(c) A_i = G - lambda [...]: the counterfactual baseline left out of the advantage."""

    def advantages(self, joint: torch.Tensor, G: torch.Tensor) -> dict[str, torch.Tensor]:
        return {a: adv + self.baseline(a, joint) for a, adv in super().advantages(joint, G).items()}


class FrozenTargets(MA2ML):
    """(d) rho never moves."""

    def update_targets(self) -> None:
        pass


class TargetsEveryStep(MA2ML):
    """(e) the Polyak step after every policy step as well as after the batch (issue 14's old bug)."""

    def improve(self, joint: torch.Tensor, rewards: torch.Tensor | None = None) -> None:
        super().improve(joint, rewards)
        self.update_targets()


CAUGHT_BY = {
    FlippedKL: [check_advantages, check_gradient, check_kl_restrains],
    RhoIsPi: [check_advantages, check_gradient, check_kl_restrains],
    # The baseline has zero mean under pi_i, so the exact expected gradient (check_gradient) is the
    # same without it (test_gradient_check_is_blind_to_the_baseline); only the advantages show it.
    NoBaseline: [check_advantages],
    FrozenTargets: [check_polyak, check_target_improves],
    TargetsEveryStep: [check_polyak],
}


@pytest.mark.parametrize(("mutant", "check"), [(m, c) for m, checks in CAUGHT_BY.items() for c in checks],
                         ids=lambda x: x.__name__)
def test_checks_catch_mutation(mutant, check):
    with pytest.raises(AssertionError):
        check(mutant)


def test_gradient_check_is_blind_to_the_baseline():
    check_gradient(NoBaseline)
