"""The recommendation (issue 25): every learner names the pipeline it stands behind; by default the best lower
confidence bound of its observed means, so a pipeline measured several times beats one lucky draw."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.envs.core.errors import UserError
from ma2ml.learners import learner_names, make_learner


def _env(noise: float = 0.0):
    env = parallel_env(evaluator=SyntheticEvaluator(game=3, noise=noise))
    env.reset(seed=0)
    return env


def _actions(learner, rows):
    return learner.split(np.asarray(rows, dtype=np.int64))


def test_a_measured_mean_beats_a_lucky_draw_but_not_a_much_better_one():
    env = _env()
    learner = make_learner("random", env, seed=0)
    lucky, steady, other = [0] * 6, [1] * 6, [2] * 6
    learner.tell(_actions(learner, [lucky, steady, other]), [0.80, 0.80, 0.60])
    assert learner.joint([learner.recommend()]).tolist() == [lucky]  # only single draws: the best observed
    learner.tell(_actions(learner, [steady, steady, steady, other, other]), [0.78, 0.80, 0.78, 0.70, 0.72])
    # pooled noise sd 0.042: lucky's bound 0.80 - 0.042 < steady's 0.79 - 0.042 / 2
    assert learner.joint([learner.recommend()]).tolist() == [steady]
    assert {tuple(r): (round(m, 4), c) for r, m, c in learner.observations()} == {
        tuple(lucky): (0.80, 1), tuple(steady): (0.79, 4), tuple(other): (0.6733, 3)}
    learner.tell(_actions(learner, [[3] * 6]), [0.95])  # far above the noise: a single draw wins
    assert learner.joint([learner.recommend()]).tolist() == [[3] * 6]


def test_a_pipeline_repeated_by_chance_does_not_win_on_its_repeats():
    """Random search with repeats draws a few pipelines twice by chance; they must not displace a far better
    single observation (a rule that merely preferred repeated pipelines did, on the hard tier)."""
    learner = make_learner("random", _env(), seed=0)
    learner.tell(_actions(learner, [[0] * 6, [1] * 6, [1] * 6]), [0.90, 0.30, 0.31])
    assert learner.joint([learner.recommend()]).tolist() == [[0] * 6]


def test_without_observations_it_is_one_clear_error():
    learner = make_learner("random", _env(), seed=0)
    with pytest.raises(UserError, match="recommend\\(\\) needs at least one told evaluation"):
        learner.recommend()


def test_the_recommendation_survives_a_checkpoint():
    env = _env(noise=0.05)
    learner = make_learner("evolution", env, seed=1)
    learner.learn(env, budget=40, batch_size=8, no_repeat=False)
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    restored = make_learner("evolution", env, seed=1)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert {a: v.tolist() for a, v in restored.recommend().items()} == \
        {a: v.tolist() for a, v in learner.recommend().items()}
    assert [(r.tolist(), m, c) for r, m, c in restored.observations()] == \
        [(r.tolist(), m, c) for r, m, c in learner.observations()]


@pytest.mark.parametrize("name", learner_names())
def test_every_learner_recommends_a_pipeline_it_evaluated(name):
    env = _env(noise=0.02)
    learner = make_learner(name, env, seed=0)
    learner.learn(env, budget=24, batch_size=8)
    pick = learner.recommend()
    assert set(pick) == set(env.possible_agents)
    seen = {tuple(r) for r, _, _ in learner.observations()}
    assert tuple(learner.joint([pick])[0]) in seen
    learner.close()


def test_the_report_scores_the_learners_own_recommendation():
    """compare's report picks, from the stored evaluations alone, the pipeline the learner's recommend()
    names (repeats on a noisy game included), so the two never disagree."""
    from ma2ml.report import Run

    env = _env(noise=0.05)
    learner = make_learner("evolution", env, seed=2, population_size=4, sample_size=2)
    batches = learner.learn(env, budget=60, batch_size=6, no_repeat=False)
    records = [{"index": b.start + k, "batch": b.index, "reward": r,
                "tokens": {a: np.asarray(act[a]).tolist() for a in env.possible_agents}}
               for b in batches for k, (act, r) in enumerate(zip(b.actions, b.rewards))]
    run = Run.from_records("evolution", 2, records)
    assert len({tuple(learner.joint([t])[0]) for t in run.tokens}) < len(run.tokens)  # it did repeat
    rec = run.recommended()
    assert learner.joint([run.tokens[rec]]).tolist() == learner.joint([learner.recommend()]).tolist()
    mean, times = run.observed_mean(rec)
    assert (mean, times) == pytest.approx(next((m, c) for r, m, c in learner.observations()
                                               if r.tolist() == learner.joint([run.tokens[rec]])[0].tolist()))


def test_a_noisy_comparison_leads_with_the_true_regret_and_measures_the_winners_curse():
    from ma2ml.report import Run, compare_runs, per_run_json, summary_markdown

    tokens = [{"aug": [i, 0]} for i in range(3)]
    records = [{"index": i, "batch": 0, "reward": r, "tokens": tokens[i]} for i, r in enumerate([0.5, 0.9, 0.6])]
    truth = lambda ts: np.array([{0: 0.55, 1: 0.70, 2: 0.65}[t["aug"][0]] for t in ts])  # noqa: E731
    run = Run.from_records("x", 0, records, truth=truth)
    quiet = compare_runs([run], optimum=0.8, true_optimum=0.7)
    noisy = compare_runs([run], optimum=0.8, true_optimum=0.7, noisy=True)
    assert [m.key for m in quiet.tabulated] == ["regret", "true_regret"]  # deterministic tables: as before
    assert [m.key for m in noisy.tabulated] == ["true_regret", "regret"]
    assert "simple regret (optimum − best observed) can be negative" in summary_markdown(noisy)
    assert "can be negative" not in summary_markdown(quiet)
    entry = per_run_json([run], noisy)["runs"][0]
    assert entry["recommended"]["winners_curse"] == pytest.approx(0.9 - 0.70)
    assert entry["best_evaluated_true_reward"] == pytest.approx(0.70)
    assert "winners_curse" not in per_run_json([run], quiet)["runs"][0]["recommended"]


def test_evaluators_declare_their_seed_noise():
    from ma2ml.envs import make_parallel

    assert make_parallel("ma2ml/AutoML-DigitsHard-v0").evaluator.seed_noise()
    assert not make_parallel("ma2ml/AutoML-DigitsHard-v0", table_seed=0).evaluator.seed_noise()
    assert _env(noise=0.05).evaluator.seed_noise() and not _env().evaluator.seed_noise()


def test_reevaluating_the_top_turns_lucky_draws_into_measured_means():
    """reevaluate_share: the budget's last share re-evaluates the best pipelines observed so far; on a
    noisy game the recommendation is then a measured mean, and it lands nearer the truth than the best
    single draw does (summed over seeds; the game and the noise are fixed, so this cannot flake)."""
    gaps_plain, gaps_reeval, regret_plain, regret_reeval = [], [], [], []
    for seed in range(6):
        for share, gaps, regret in ((0.0, gaps_plain, regret_plain), (0.4, gaps_reeval, regret_reeval)):
            ev = SyntheticEvaluator(game=11, noise=0.08)
            env = parallel_env(evaluator=ev)
            env.reset(seed=seed)
            learner = make_learner("random", env, seed=seed, reevaluate_share=share, reevaluate_top=4)
            learner.learn(env, budget=50, batch_size=10, no_repeat=False)
            pick = learner.joint([learner.recommend()])[0]
            truth = ev.score(pick.tolist())
            observed = next(m for r, m, c in learner.observations() if r.tolist() == pick.tolist())
            gaps.append(observed - truth)
            regret.append(ev.optimum()[0] - truth)
            if share:
                counts = sorted((c for _, _, c in learner.observations()), reverse=True)
                assert counts[0] >= 2 and sum(counts) == 50  # re-evaluations are charged to the budget
    assert np.mean(gaps_reeval) < np.mean(gaps_plain)  # the winner's curse shrinks
    assert np.mean(gaps_plain) > 0.05  # without re-evaluation the best draw overshoots its truth


def test_reevaluations_are_not_told_to_the_learner(monkeypatch):
    env = _env(noise=0.05)
    learner = make_learner("random", env, seed=0, reevaluate_share=0.5, reevaluate_top=2)
    told = []
    monkeypatch.setattr(learner, "_tell", lambda joint, rewards, records: told.append(len(joint)))
    learner.learn(env, budget=20, batch_size=5, no_repeat=False)
    assert sum(told) == 10 and learner.num_evaluations == 20
