"""Final training (ma2ml.training.final) and ``ma2ml train``: pipeline files, one-line errors that
leave nothing written, training on train+val, and checkpoints that load back bit-identically."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from ma2ml import cli
from ma2ml.envs.core.files import atomic_write
from ma2ml.training.final import (Checkpoint, FinalTraining, PipelineFile, load_checkpoint, make_env, read_pipeline,
                              save_checkpoint, train_final)
from ma2ml.envs.tasks import get_task, load_splits
from ma2ml.training.evaluators import TrainingDiverged

ENV = "ma2ml/AutoML-Digits-v0"
SANE_HPO = [3, 2, 2, 0, 0, 0]  # lr 0.1, wd 5e-4, momentum 0.9, batch 32: trains well on digits


def _actions() -> dict[str, list[int]]:
    env = make_env(ENV)
    rng = np.random.default_rng(0)
    actions = {a: s.sample(rng).tolist() for a, s in env.spaces.items()}
    actions["hpo"] = list(SANE_HPO)
    return actions


def _best_json(tmp_path, **extra) -> str:
    """A pipeline file in the form ``ma2ml search`` writes (tokens, pipeline, settings)."""
    actions = _actions()
    env = make_env(ENV)
    data = {"index": 3, "tokens": actions, "pipeline": env.evaluator.pipeline_json(actions), "reward": 0.5,
            "settings": {"env": ENV, "env_args": {}, "learner": "random"}, **extra}
    path = tmp_path / "best.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="module")
def trained():
    return train_final(ENV, _actions(), epochs=2, seed=3)


# -- pipeline files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"reward": 1}', "no 'tokens' or 'actions' field"),
    ('{"actions": [1, 2]}', "must map each agent"),
    ('{"actions": {}}', "must map each agent"),
    ('{"actions": {"hpo": [1, "a"]}}', r"actions\['hpo'\] must be a list of integer tokens"),
    ('{"actions": {"hpo": [1.5]}}', "must be a list of integer tokens"),
    ('{"actions": {"hpo": [1]}, "pipeline": [1]}', "'pipeline' must be an object"),
    ('{"tokens": {"hpo": [1]}, "settings": {"env": 3}}', "settings.env must be an env id"),
    ('{"tokens": {"hpo": [1]}, "settings": {"env_args": [1]}}', "settings.env_args must be an object"),
])
def test_read_pipeline_rejects_malformed_files(tmp_path, text, match):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_pipeline(path)


def test_read_pipeline_forms(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"actions": {"hpo": [0, 1, 2, 0, 0, 0]}}')
    assert read_pipeline(path) == PipelineFile({"hpo": [0, 1, 2, 0, 0, 0]}, None, None, {})
    found = read_pipeline(_best_json(tmp_path))
    assert found.actions == _actions() and found.env_id == ENV and found.env_args == {}
    assert found.pipeline == json.loads(json.dumps(make_env(ENV).evaluator.pipeline_json(_actions())))


@pytest.mark.parametrize("change, match", [
    ({"env": "ma2ml/Nope-v0"}, "unknown env 'ma2ml/Nope-v0'; registered envs are"),
    ({"actions": {"hpo": SANE_HPO}}, "actions name agents"),
    ({"actions": {"aug": [0] * 30, "nas": [0] * 24, "hpo": [9, 0, 0, 0, 0, 0]}},
     r"token 0 \(lr\) = 9 is out of range"),
    ({"pipeline": {"aug": [], "nas": {}, "hpo": {}}},
     r"differs from what its tokens decode to .*\['aug', 'hpo', 'nas'\]"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"device": "cuda:notanumber"}, "unknown device"),
    ({"env_args": {"nonsense": 1}}, "does not take these arguments"),
    ({"env_args": {"agents": ["nas", "hpo"]}}, "actions name agents"),
])
def test_final_training_checks_input_before_training(change, match):
    args = {"env": ENV, "actions": _actions(), "epochs": 1, "pipeline": None, **change}
    with pytest.raises(ValueError, match=match):
        FinalTraining(args["env"], args["actions"], args["epochs"], device=args.get("device"),
                      pipeline=args["pipeline"], env_args=args.get("env_args"))


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("content, argv, match", [
    ("{oops", [], "is not valid JSON"),
    ('{"reward": 0.3}', [], "no 'tokens' or 'actions' field"),
    ('{"tokens": {"hpo": [3, 2, 2, 0, 0, 0]}}', ["--env", ""], "names no env"),
    (None, ["--env", "ma2ml/Nope-v0"], "unknown env"),
    ('{"actions": {"hpo": [3, 2, 2, 0, 0, 0]}}', ["--env", ENV], "actions name agents"),
    (None, ["--epochs", "0"], "--epochs must be an integer in 1..100,000"),
    (None, ["--env", "ma2ml/AutoML-CIFAR10-v0"], "cifar10 needs --data-dir"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, content, argv, match):
    pipeline = _best_json(tmp_path)
    if content is not None:
        (tmp_path / "best.json").write_text(content)
    out = tmp_path / "out"
    args = ["train", pipeline, "--epochs", "1", "--out", str(out), *argv]
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ma2ml train: error: ")
    assert re.search(match, err)
    assert not out.exists()


def test_cli_missing_pipeline_file(tmp_path, capsys):
    assert cli.main(["train", str(tmp_path / "none.json"), "--env", ENV, "--epochs", "1"]) == 2
    assert "none.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_divergence_writes_nothing(tmp_path, capsys, monkeypatch):
    def diverge(self, seed=0, epoch_end=None):
        raise TrainingDiverged("non-finite training loss in epoch 1")

    monkeypatch.setattr(FinalTraining, "run", diverge)
    pipeline = _best_json(tmp_path)
    assert cli.main(["train", pipeline, "--env", ENV, "--epochs", "1"]) == 2
    assert "training diverged" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"]


@pytest.mark.slow
def test_cli_uses_the_search_env_and_its_arguments(tmp_path, capsys):
    """A search on a subset of agents: its best.json's settings make the env again with them."""
    env = make_env(ENV, {"agents": ["nas", "hpo"]})
    tokens = {"nas": [0] * 24, "hpo": list(SANE_HPO)}
    best = {"tokens": tokens, "pipeline": env.evaluator.pipeline_json(tokens),
            "settings": {"env": ENV, "env_args": {"agents": ["nas", "hpo"], "epochs": 1}}}
    (tmp_path / "best.json").write_text(json.dumps(best))
    assert cli.main(["train", str(tmp_path / "best.json"), "--epochs", "1"]) == 0
    loaded = load_checkpoint(tmp_path / "final.pt")
    assert loaded.record.env_args == {"agents": ["nas", "hpo"], "epochs": 1}
    assert set(loaded.record.actions) == {"nas", "hpo"}


@pytest.mark.slow
def test_cli_trains_reports_and_saves(tmp_path, capsys):
    pipeline = _best_json(tmp_path)
    assert cli.main(["train", pipeline, "--env", ENV, "--epochs", "1", "--seed", "5"]) == 0
    stdout = capsys.readouterr().out
    record = json.loads((tmp_path / "final.json").read_text())
    assert f"test accuracy {record['test_acc']:.4f}" in stdout
    assert f"params {record['params'] / 1e6:.3f} M" in stdout
    assert record["seed"] == 5 and record["epochs"] == 1 and len(record["losses"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "final.json", "final.pt"]
    assert load_checkpoint(tmp_path / "final.pt").record.to_dict() == record


# -- training and checkpoints ---------------------------------------------------------------------------
@pytest.mark.slow
def test_final_training_uses_train_plus_val_and_learns(trained):
    _, record = trained
    splits = load_splits(get_task("digits"))
    assert record.train_size == len(splits.train) + len(splits.val)
    assert record.epochs == 2 and len(record.losses) == 2 and record.losses[1] < record.losses[0]
    assert record.test_acc > 0.5  # chance is 0.1
    assert record.flops > 0 and record.params > 0
    assert record.pipeline["hpo"]["lr"] == 0.1


@pytest.mark.slow
def test_final_training_is_deterministic(trained):
    _, again = train_final(ENV, _actions(), epochs=2, seed=3)
    first = trained[1].to_dict()
    second = again.to_dict()
    first.pop("train_seconds"), second.pop("train_seconds")
    assert first == second


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_logits(trained, tmp_path):
    model, record = trained
    path = save_checkpoint(tmp_path / "final.pt", model, record)
    loaded = load_checkpoint(path)
    images = load_splits(get_task("digits")).test.x
    expected = Checkpoint(model, record).logits(images)
    assert loaded.model is not model and not loaded.model.training
    assert loaded.record == record
    assert torch.equal(loaded.logits(images), expected)
    fresh = load_checkpoint(path)
    with torch.no_grad():
        for p in fresh.model.parameters():
            p.mul_(0.5)
    assert not torch.equal(fresh.logits(images), expected)  # the comparison can fail


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_final_training_loads_on_cpu(tmp_path):
    model, record = train_final(ENV, _actions(), epochs=1, device="cuda", seed=0)
    assert record.device == "cuda"
    loaded = load_checkpoint(save_checkpoint(tmp_path / "final.pt", model, record), device="cpu")
    images = load_splits(get_task("digits")).test.x
    assert torch.allclose(loaded.logits(images), Checkpoint(model, record).logits(images).cpu(), atol=1e-3)


def test_load_checkpoint_rejects_other_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an ma2ml final checkpoint"):
        load_checkpoint(path)
    path.write_text("garbage")
    with pytest.raises(ValueError, match="not a readable ma2ml checkpoint"):
        load_checkpoint(path)


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "final.json"
    path.write_text("old")

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["final.json"]
    atomic_write(path, lambda fh: fh.write(b"new"))
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["final.json"]
