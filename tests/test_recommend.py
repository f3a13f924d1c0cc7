"""The recommendation (issue 25): every learner names the pipeline it stands behind; by default the best lower
confidence bound of its observed means, so a pipeline measured several times beats one lucky draw."""
from __future__ import annotations

import io
import json

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


@pytest.mark.parametrize("settings", [{}, {"race_seeds": 4}, {"reevaluate_share": 0.25, "reevaluate_top": 3}],
                         ids=["default", "racing", "reevaluate"])
@pytest.mark.parametrize("name", learner_names())
def test_every_learner_recommends_a_pipeline_it_evaluated(name, settings):
    env = _env(noise=0.02)
    learner = make_learner(name, env, seed=0, **settings)
    learner.learn(env, budget=24, batch_size=8)
    assert learner.num_evaluations == 24
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


def _noisy_loop(learner, evaluator, budget, batch, draws=None):
    """ask/tell by hand on a noisy synthetic game: each pipeline's k-th evaluation answers with a fixed draw
    (seeded by the pipeline and k), so two loops over the same asks get the same rewards."""
    draws = {} if draws is None else draws
    while learner.num_evaluations < budget:
        actions = learner.ask(min(batch, budget - learner.num_evaluations))
        rewards = []
        for row in learner.joint(actions):
            k = draws[row.tobytes()] = draws.get(row.tobytes(), -1) + 1
            noise = np.random.default_rng([*row.tolist(), k]).normal(0.0, evaluator.noise)
            rewards.append(evaluator.score(row.tolist()) + noise)
        learner.tell(actions, rewards)
    return draws


def test_racing_stands_behind_the_best_mean_not_the_luckiest_draw():
    """race_seeds (SMAC's intensification): on a noisy game where the luckiest draw is rarely the best
    pipeline, racing challengers against an incumbent on doubling seeds recommends pipelines nearer the optimum
    than the best single draw does, and its recommendation's observed mean overshoots the truth less."""
    regrets, curses = {0: [], 8: []}, {0: [], 8: []}
    for seed in range(8):
        for k in (0, 8):
            ev = SyntheticEvaluator(game=11, noise=0.08)
            env = parallel_env(evaluator=ev)
            env.reset(seed=seed)
            learner = make_learner("random", env, seed=seed, race_seeds=k)
            _noisy_loop(learner, ev, budget=80, batch=8)
            pick = learner.joint([learner.recommend()])[0]
            observed, count = next((m, c) for r, m, c in learner.observations() if r.tolist() == pick.tolist())
            regrets[k].append(ev.optimum()[0] - ev.score(pick.tolist()))
            curses[k].append(observed - ev.score(pick.tolist()))
            if k:
                assert learner.num_evaluations == 80 and len(learner.observations()) < 80  # races are charged
                assert count >= 2  # the incumbent was measured more than once
    assert np.mean(regrets[8]) < np.mean(regrets[0])
    assert np.mean(curses[8]) < np.mean(curses[0]) / 2


def test_a_race_follows_the_doubling_rule():
    """By hand: the incumbent gets one more evaluation per challenge; a challenger then needs as many
    evaluations as the incumbent (1 more, then as many more as it has, capped at the incumbent's count) and is
    dropped as soon as its mean falls
    below the incumbent's."""
    learner = make_learner("random", _env(noise=0.05), seed=0, race_seeds=4)
    inc, ch, weak = [0] * 6, [1] * 6, [2] * 6

    learner.tell(_actions(learner, [inc]), [0.50])
    learner.tell(_actions(learner, [ch, weak]), [0.60, 0.40])  # ch challenges; weak does not
    assert learner._race.challengers == [learner.row_key(np.array(ch))]
    asked = learner.joint(learner.ask(2)).tolist()
    assert asked[1:] == [inc]  # own proposal first, then the incumbent's extra evaluation
    learner.tell(_actions(learner, asked), [0.30, 0.52])  # incumbent mean 0.51: ch needs 1 more (2 vs 2)
    asked = learner.joint(learner.ask(2)).tolist()
    assert asked[1:] == [ch]
    learner.tell(_actions(learner, asked), [0.30, 0.58])  # ch 0.59 over 2 >= 0.51 over 2: promoted
    assert learner.joint([learner.recommend()]).tolist() == [ch]
    learner.tell(_actions(learner, [[3] * 6]), [0.70])  # a new challenger
    assert learner.joint(learner.ask(2)).tolist() == [ch, [3] * 6]  # ch's extra evaluation; [3]*6 to 2 (vs 2)
    learner.tell(_actions(learner, [ch, [3] * 6]), [0.60, 0.66])  # ch 0.5933 over 3; [3]*6 0.68 over 2
    assert learner.joint(learner.ask(1)).tolist() == [[3] * 6]  # doubling, capped at the incumbent's 3
    learner.tell(_actions(learner, [[3] * 6]), [0.20])  # its mean 0.52 < ch's 0.5933: dropped
    assert learner._race.challengers == [] and learner.joint([learner.recommend()]).tolist() == [ch]
    assert learner.num_evaluations == 11 and learner.observations()[1][2] == 3


def test_racing_resumes_exactly_from_a_checkpoint():
    ev = SyntheticEvaluator(game=5, noise=0.08)
    env = parallel_env(evaluator=ev)
    env.reset(seed=0)
    straight = make_learner("evolution", env, seed=3, race_seeds=8)
    _noisy_loop(straight, ev, budget=64, batch=8)
    first = make_learner("evolution", env, seed=3, race_seeds=8)
    draws = _noisy_loop(first, ev, budget=32, batch=8)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    resumed = make_learner("evolution", env, seed=3, race_seeds=8)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    _noisy_loop(resumed, ev, budget=64, batch=8, draws=draws)
    assert [(r.tolist(), m, c) for r, m, c in resumed.observations()] == \
        [(r.tolist(), m, c) for r, m, c in straight.observations()]
    assert resumed.joint([resumed.recommend()]).tolist() == straight.joint([straight.recommend()]).tolist()


def test_race_seeds_of_one_is_one_clear_error():
    with pytest.raises(UserError, match=r"race_seeds = 1 is invalid; valid values are 0 \(no racing\) or 2..64"):
        make_learner("random", _env(), seed=0, race_seeds=1)


def test_compare_scores_a_racing_learners_own_recommendation(tmp_path, capsys):
    """``compare --learner-arg race_seeds=4`` on the hard tier with seed noise: every run records its learner's
    recommend() after each batch (the incumbent, which the shared rule would not always pick), and the report's
    recommendation is that record, equal to best.json's; a resumed comparison rereads the same."""
    from ma2ml.cli import main
    from ma2ml.runfolder import read_stored_run

    out = tmp_path / "cmp"
    args = ["compare", "--env", "ma2ml/AutoML-DigitsHard-v0", "--learners", "random,evolution", "--seeds", "2",
            "--budget", "60", "--batch-size", "10", "--budgets", "20,40", "--learner-arg", "race_seeds=4",
            "--out", str(out)]
    assert main(args) == 0
    per_run = json.loads((out / "per_run.json").read_text())
    for entry in per_run["runs"]:
        folder = out / "runs" / entry["learner"] / f"seed{entry['seed']}"
        best = json.loads((folder / "best.json").read_text())
        assert best["settings"]["learner_args"] == {"race_seeds": 4}
        picks = read_stored_run(folder, 10).picks
        assert sorted(picks) == list(range(10, 61, 10)) and picks[60] == best["recommended"]["index"]
        assert entry["recommended"]["index"] == best["recommended"]["index"]
        assert entry["recommended"]["evaluations_of_it"] == best["recommended"]["evaluations_of_it"]
        assert entry["distinct_pipelines"] < 60  # the races were charged to the budget
    first = (out / "summary.md").read_bytes()
    assert main(args) == 0 and (out / "summary.md").read_bytes() == first
    capsys.readouterr()


def test_compare_refuses_a_learner_arg_one_learner_lacks(tmp_path, capsys):
    from ma2ml.cli import main

    code = main(["compare", "--env", "ma2ml/AutoML-DigitsHard-v0", "--learners", "random,ma2ml", "--seeds", "2",
                 "--learner-arg", "kl_coef=0.1", "--out", str(tmp_path / "cmp")])
    assert code == 2 and not (tmp_path / "cmp").exists()
    assert "learner 'random' has no setting ['kl_coef']" in capsys.readouterr().err
