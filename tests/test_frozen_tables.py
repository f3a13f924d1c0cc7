"""Frozen, content-hashed tables (issue 26, item 1): the packaged tables are pinned to their SHA-256, the
table's hash is part of the store's settings and of run.json, and a run refuses a table whose bytes changed."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import numpy as np
import pytest

from ma2ml.bench.hard.tables import HARD_BENCH, SUITE_BENCHES, SUITE_SHA256
from ma2ml.bench.table import DIGITS_BENCH, load_table
from ma2ml.envs.core.errors import UserError
from ma2ml.experiment import Experiment
from ma2ml.runtime.store import StoreError


FROZEN = {"digits": DIGITS_BENCH, "hard": HARD_BENCH, **{n: SUITE_BENCHES[n] for n, h in SUITE_SHA256.items() if h}}


@pytest.mark.parametrize("bench", list(FROZEN.values()), ids=list(FROZEN))
def test_each_packaged_table_is_the_file_it_was_frozen_as(bench):
    assert hashlib.sha256(bench.path.read_bytes()).hexdigest() == bench.sha256 == load_table(None, bench).sha256


def test_a_changed_packaged_table_is_refused():
    other = dataclasses.replace(DIGITS_BENCH, sha256="0" * 64)
    with pytest.raises(UserError, match=r"content hash is d57a7fcfb0374012\.\.\., but this version of ma2ml froze "
                                        r"it at 0000000000000000\.\.\."):
        load_table(None, other)


def _changed_copy(source, target) -> None:
    """A valid table with one validation accuracy moved: other bytes, the same layout."""
    with np.load(source, allow_pickle=False) as data:
        arrays = {name: data[name].copy() for name in data.files}
    arrays["val_acc"][0, 0] = max(0.0, float(arrays["val_acc"][0, 0]) - 0.01)
    np.savez_compressed(target, **arrays)


def test_a_run_refuses_a_table_whose_bytes_changed(tmp_path):
    table = tmp_path / "my_table.npz"
    shutil.copyfile(DIGITS_BENCH.path, table)
    run = dict(out=tmp_path / "run", env="ma2ml/AutoML-DigitsBench-v0",
               env_args={"table": str(table), "table_seed": 0}, learner="random", batch_size=5, seed=0)
    Experiment(budget=10, **run).run(progress=False)
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["table_sha256"] == DIGITS_BENCH.sha256
    _changed_copy(DIGITS_BENCH.path, table)
    with pytest.raises(StoreError, match=r"evaluator\.table_sha256: d57a7fcfb.* -> "):
        Experiment(budget=20, **run).run(progress=False)
