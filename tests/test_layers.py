"""The layering contract (import-linter, ``setup.cfg``): lower layers never import higher ones.

``envs/``, ``agents/`` and ``baselines/`` map into ``ma2ml.*`` through ``setup.py``'s
``package_dir``, which import-linter cannot follow in the source tree, so the test stages the
package as installed (a copy under a temporary folder) and runs ``lint-imports`` there. A
second run plants one upward import (the environment importing a learner) and must fail:
the contract can catch what it is for.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = next((str(c) for c in (Path(sys.executable).parent / "lint-imports", shutil.which("lint-imports") or "")
             if c and Path(c).is_file()), None)
"""import-linter's command, beside this interpreter first (a pyenv shim may not exist before a rehash)."""
needs_linter = pytest.mark.skipif(importlib.util.find_spec("importlinter") is None,
                                  reason="import-linter is not installed (pip install -e '.[test]')")


def _stage(tmp: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "data")
    shutil.copytree(ROOT / "ma2ml", tmp / "ma2ml", ignore=ignore)
    for folder in ("envs", "agents", "baselines"):
        shutil.copytree(ROOT / folder, tmp / "ma2ml" / folder, ignore=ignore)
    shutil.copy(ROOT / "setup.cfg", tmp / "setup.cfg")
    return tmp


def _lint(tmp: Path) -> subprocess.CompletedProcess:
    assert LINT is not None, "import-linter is installed but its lint-imports command was not found"
    return subprocess.run([LINT, "setup.cfg"], cwd=tmp, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp)})


@needs_linter
def test_the_layers_contract_is_kept(tmp_path):
    result = _lint(_stage(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@needs_linter
def test_an_upward_import_breaks_it(tmp_path):
    staged = _stage(tmp_path)
    reward = staged / "ma2ml" / "envs" / "core" / "reward.py"
    reward.write_text(reward.read_text() + "\nimport ma2ml.agents  # planted: the env importing the learners\n")
    result = _lint(staged)
    assert result.returncode == 1
    assert "ma2ml.envs.core is not allowed to import ma2ml.agents" in result.stdout
    assert "ma2ml.envs.core.reward -> ma2ml.agents" in result.stdout


@pytest.mark.parametrize("package", ["ma2ml.envs", "ma2ml.agents", "ma2ml.baselines"])
def test_every_public_name_resolves(package):
    import importlib

    module = importlib.import_module(package)
    assert module.__all__, f"{package} has no __all__"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_the_readme_imports_only_public_names():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deep = re.findall(r"^\s*from (ma2ml\.(?:envs|agents|baselines)\.\w+) import", readme, flags=re.M)
    assert deep == [], f"README imports from inner modules: {deep}"


def test_every_package_folder_is_in_the_wheel():
    """setup.py lists packages explicitly (the folders map into ``ma2ml.*``): a subpackage missing
    there works in an editable install and is absent from a wheel. Every folder with an
    ``__init__.py`` must be listed, under the name its folder maps to."""
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    assign = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "PACKAGE_DIR")
    namespace: dict = {}
    exec(compile(ast.Module([assign], type_ignores=[]), "setup.py", "exec"), namespace)  # the dict literal only
    listed: dict[str, str] = namespace["PACKAGE_DIR"]
    roots = {"ma2ml": "ma2ml", "envs": "ma2ml.envs", "agents": "ma2ml.agents", "baselines": "ma2ml.baselines"}
    for folder, package in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *rel.parts])
            assert listed.get(name) == init.parent.relative_to(ROOT).as_posix(), f"{name} is missing from setup.py"


MACHINERY = ("ma2ml.training", "ma2ml.runtime", "ma2ml.bench.digits_build", "ma2ml.bench.results",
             "ma2ml.bench.hard.sharded", "ma2ml.bench.hard.trainer", "hard_pilot_lib", "ma2ml.agents",
             "ma2ml.baselines")
"""What the game never needs to be played: trainer, store, executors, table builders, learners."""


def test_the_game_loads_no_machinery():
    """``import ma2ml.envs`` and making every table env (parallel, AEC, joint, token views) load no trainer,
    store, executor, builder or learner module: a fresh interpreter lists ``sys.modules``."""
    code = """if True:
        import json, sys
        import gymnasium, pettingzoo
        import ma2ml.envs
        loaded_by_import = sorted(m for m in sys.modules if m.startswith("ma2ml"))
        for family in ("DigitsBench", "DigitsHard"):
            for kind in ("parallel", "aec"):
                pettingzoo.make(kind, f"ma2ml/AutoML-{family}-v0").reset(seed=0)
            gymnasium.make(f"ma2ml/JointAutoML-{family}-v0").reset(seed=0)
            pettingzoo.make("parallel", f"ma2ml/TokenAutoML-{family}-v0").reset(seed=0)
        print(json.dumps([loaded_by_import, sorted(m for m in sys.modules if m.startswith("ma2ml"))]))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    by_import, by_tables = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in by_import if not m.startswith(("ma2ml.envs", "ma2ml")) or m.startswith(MACHINERY)]
    assert "ma2ml.envs.automl_v0" not in by_import  # the env modules load when an env is made
    assert not [m for m in by_tables if m.startswith(MACHINERY)], by_tables
    assert "ma2ml.bench.table" in by_tables  # the check would catch the machinery: the table itself did load


def test_no_research_scaffolding_in_the_package():
    """The hard tier's pilot (its candidate spaces, surrogates and jobs) lives with its scripts in benchmarks/,
    not in the installed package."""
    modules = {p.stem for p in (ROOT / "ma2ml").rglob("*.py")} | {p.stem for p in (ROOT / "envs").rglob("*.py")}
    assert not modules & {"pilot", "candidates"}, modules & {"pilot", "candidates"}
    assert (ROOT / "benchmarks" / "hard_pilot_lib.py").is_file()
