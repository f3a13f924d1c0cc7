"""ma2ml's table envs as a BenchMARL task (issue 27, item 4): specs BenchMARL accepts, ma2ml's evaluation budget in
BenchMARL's frames, and a real BenchMARL experiment (MAPPO and QMIX) on the digits table. Runs where the
``benchmarl`` extra is installed (it pins torchrl<0.12); the docs recipe runs here too."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_without_benchmarl_the_task_is_one_clear_error(monkeypatch):
    from ma2ml.envs.core.errors import UserError

    monkeypatch.setitem(sys.modules, "benchmarl", None)
    monkeypatch.setitem(sys.modules, "benchmarl.environments.common", None)
    monkeypatch.delitem(sys.modules, "ma2ml.benchmarl", raising=False)
    with pytest.raises(UserError, match=r'needs BenchMARL \(benchmarl>=1\.5\): pip install -e "\.\[benchmarl\]"'):
        import ma2ml.benchmarl  # noqa: F401


@pytest.fixture(autouse=True)
def _needs_benchmarl(request):
    if request.node.name != "test_without_benchmarl_the_task_is_one_clear_error":
        pytest.importorskip("benchmarl", reason="the benchmarl extra is not installed")


def _config(tmp_path, evaluations, task):
    from benchmarl.experiment import ExperimentConfig

    config = ExperimentConfig.get_from_yaml()
    config.sampling_device = config.train_device = config.buffer_device = "cpu"
    config.max_n_frames = task.frames(evaluations)
    config.on_policy_collected_frames_per_batch = config.off_policy_collected_frames_per_batch = task.frames(20)
    config.on_policy_n_envs_per_worker = config.off_policy_n_envs_per_worker = 10
    config.on_policy_minibatch_size = config.off_policy_train_batch_size = 40
    config.on_policy_n_minibatch_iters = config.off_policy_n_optimizer_steps = 2
    config.loggers, config.create_json, config.evaluation, config.render = [], False, False, False
    config.checkpoint_interval, config.save_folder = 0, str(tmp_path)
    return config


def test_the_budget_is_evaluations_in_frames():
    from ma2ml.benchmarl import Ma2mlTask
    from ma2ml.envs.core.errors import UserError

    task = Ma2mlTask.of("ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    steps = task.steps()
    assert steps == 4  # the digits table's token game: four token steps per pipeline
    assert task.frames(300) == 300 * steps and task.evaluations(task.frames(300)) == 300
    with pytest.raises(UserError, match="evaluations must be an integer >= 1"):
        task.frames(0)
    with pytest.raises(UserError, match="does not take these arguments"):
        Ma2mlTask.of("ma2ml/AutoML-DigitsBench-v0", nonsense=1)


@pytest.mark.parametrize("algorithm", ["MappoConfig", "QmixConfig"])
def test_a_benchmarl_experiment_runs_on_the_digits_table(tmp_path, algorithm):
    import benchmarl.algorithms as algorithms
    from benchmarl.experiment import Experiment
    from benchmarl.models.mlp import MlpConfig

    from ma2ml.benchmarl import Ma2mlTask

    task = Ma2mlTask.of("ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    experiment = Experiment(task=task, algorithm_config=getattr(algorithms, algorithm).get_from_yaml(),
                            model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
                            seed=0, config=_config(tmp_path, 100, task))
    experiment.run()
    assert task.evaluations(experiment.total_frames) == 100  # the budget, charged in evaluations


def test_the_marl_doc_recipe_runs(tmp_path):
    text = (ROOT / "docs" / "marl.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- snippet: skip \(needs BenchMARL[^)]*\) -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "docs/marl.md has no BenchMARL recipe"
    proc = subprocess.run([sys.executable, "-c", block.group(1)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "evaluations" in proc.stdout
