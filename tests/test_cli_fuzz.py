"""Every command x its bad inputs: exit code 2, one line on stderr, no traceback, nothing left behind.

The list grew from an outside audit (December 2026: 19 tracebacks out of 108 bad inputs). Each
case runs in an empty working folder that also holds the fixtures it needs (a file, a folder,
a read-only folder, damaged tables and pipeline files); the folder's contents must be the same
afterwards. The read-only cases use ``chattr +i`` as root (root ignores permission bits) and are
skipped where that is not available.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ma2ml.cli import main

TABLE = ["--env", "ma2ml/AutoML-DigitsBench-v0"]
TOKENS = {"aug": [0, 0], "nas": [0, 0, 0, 0], "hpo": [0, 0]}


def _pipeline(tokens: dict, **settings) -> str:
    return json.dumps({"tokens": tokens, "settings": {"env": "ma2ml/AutoML-DigitsBench-v0", **settings}})


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("hello.txt", "not a table")
    return buffer.getvalue()


FIXTURES: dict[str, bytes | str | None] = {  # name -> file content (None: a folder)
    "afile": "just a file\n",
    "adir": None,
    "ro": None,
    "huge_token.json": _pipeline({**TOKENS, "hpo": [0, 10**30]}),
    "string_token.json": _pipeline({**TOKENS, "hpo": [0, "x"]}),
    "bool_token.json": _pipeline({**TOKENS, "hpo": [0, True]}),
    "negative_token.json": _pipeline({**TOKENS, "hpo": [0, -1]}),
    "wrong_agent.json": _pipeline({**TOKENS, "opt": [0]}),
    "evil_args.json": _pipeline(TOKENS, env_args={"evaluator": "x"}),
    "empty.json": "",
    "list.json": "[1, 2]",
    "binary.json": b"\x89PNG\r\n\x1a\n\x00\xff",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "empty.npz": b"",
    "random.npz": bytes(range(256)) * 8,
    "wrongkeys.npz": _npz(a=np.zeros(3)),
    "notnpz.npz": _zip(),
    "truncated.npz": None,  # filled from the packaged table below
}


def _setup(folder: Path) -> None:
    from ma2ml.bench.table import TABLE_PATH

    for name, content in FIXTURES.items():
        path = folder / name
        if name == "truncated.npz":
            data = TABLE_PATH.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif content is None:
            path.mkdir()
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)


CASES: list[tuple[str, list[str], str]] = [
    # search
    ("search-seed-negative", ["search", *TABLE, "--seed", "-1", "--out", "o"], "--seed must be an integer in 0.."),
    ("search-seed-huge", ["search", *TABLE, "--seed", str(2**40), "--out", "o"], "--seed must be an integer in 0.."),
    ("search-budget-huge", ["search", *TABLE, "--budget", "1000000000000", "--batch-size", "1000000000000",
                            "--out", "o"], "--budget must be an integer in 1..10,000,000"),
    ("search-batch-huge", ["search", *TABLE, "--batch-size", "1000000000000", "--out", "o"],
     "--batch-size must be an integer in 1..100,000"),
    ("search-budget-zero", ["search", *TABLE, "--budget", "0", "--out", "o"], "--budget must be"),
    ("search-budget-text", ["search", *TABLE, "--budget", "lots", "--out", "o"], "invalid int value: 'lots'"),
    ("search-out-file", ["search", *TABLE, "--out", "afile"], "exists and is not a folder"),
    ("search-out-under-file", ["search", *TABLE, "--out", "afile/run"], "is a file"),
    ("search-out-readonly", ["search", *TABLE, "--out", "ro/run"], "cannot write in"),
    ("search-out-empty", ["search", *TABLE, "--out", ""], "--out is empty"),
    ("search-env-unknown", ["search", "--env", "ma2ml/Nope-v0", "--out", "o"], "unknown env 'ma2ml/Nope-v0'"),
    ("search-learner-unknown", ["search", *TABLE, "--learner", "nope", "--out", "o"], "unknown learner 'nope'"),
    ("search-env-arg-unknown", ["search", *TABLE, "--env-arg", "bogus=1", "--out", "o"], "bogus"),
    ("search-env-arg-store", ["search", *TABLE, "--env-arg", "store=x.sqlite", "--out", "o"],
     "is set by ma2ml itself"),
    ("search-env-arg-set", ["search", *TABLE, "--env-arg", "table_seed={1, 2}", "--out", "o"],
     "--env-arg table_seed = {1, 2} is invalid: values must be finite numbers, strings"),
    ("search-env-arg-malformed", ["search", *TABLE, "--env-arg", "oops", "--out", "o"], "expects KEY=VALUE"),
    ("search-learner-arg-bad", ["search", *TABLE, "--learner-arg", "kl_coef=-1", "--out", "o"], "kl_coef"),
    ("search-abbrev", ["search", *TABLE, "--bud", "3", "--out", "o"], "unrecognized arguments: --bud"),
    ("search-device-tpu", ["search", "--env-arg", "device=tpu", "--out", "o"], "tpu"),
    ("search-exponent-nan", ["search", *TABLE, "--env-arg", "reward_exponent=float('nan')", "--out", "o"],
     "reward_exponent"),
    # compare
    ("compare-first-seed", ["compare", *TABLE, "--learners", "random", "--first-seed", "-5", "--out", "o"],
     "--first-seed must be an integer in 0.."),
    ("compare-seeds-zero", ["compare", *TABLE, "--learners", "random", "--seeds", "0", "--out", "o"], "--seeds"),
    ("compare-seeds-huge", ["compare", *TABLE, "--learners", "random", "--seeds", "10000000", "--out", "o"],
     "--seeds"),
    ("compare-jobs-zero", ["compare", *TABLE, "--learners", "random", "--jobs", "0", "--out", "o"], "--jobs"),
    ("compare-topk-zero", ["compare", *TABLE, "--learners", "random", "--top-k", "0", "--out", "o"], "--top-k"),
    ("compare-learners-empty", ["compare", *TABLE, "--learners", ",", "--out", "o"], "at least one learner"),
    ("compare-abbrev", ["compare", *TABLE, "--learner", "random", "--out", "o"], "--learners"),
    ("compare-out-file", ["compare", *TABLE, "--learners", "random", "--out", "afile"], "not a folder"),
    ("compare-out-readonly", ["compare", *TABLE, "--learners", "random", "--out", "ro/x"], "cannot write in"),
    ("compare-out-empty", ["compare", *TABLE, "--learners", "random", "--out", ""], "--out is empty"),
    ("compare-env-unknown", ["compare", "--env", "nope", "--learners", "random", "--out", "o"], "unknown env"),
    # train
    ("train-huge-token", ["train", "huge_token.json", "--epochs", "1", "--out", "o"], "out of range"),
    ("train-string-token", ["train", "string_token.json", "--epochs", "1", "--out", "o"], "integer tokens"),
    ("train-bool-token", ["train", "bool_token.json", "--epochs", "1", "--out", "o"], "integer tokens"),
    ("train-negative-token", ["train", "negative_token.json", "--epochs", "1", "--out", "o"], "out of range"),
    ("train-wrong-agent", ["train", "wrong_agent.json", "--epochs", "1", "--out", "o"], "opt"),
    ("train-evil-args", ["train", "evil_args.json", "--epochs", "1", "--out", "o"], "may not set"),
    ("train-folder", ["train", "adir", "--epochs", "1", "--out", "o"], "is a folder"),
    ("train-missing", ["train", "nothing.json", "--epochs", "1", "--out", "o"], "nothing.json"),
    ("train-empty", ["train", "empty.json", "--epochs", "1", "--out", "o"], "is not valid JSON"),
    ("train-list", ["train", "list.json", "--epochs", "1", "--out", "o"], "must hold"),
    ("train-binary", ["train", "binary.json", "--epochs", "1", "--out", "o"], "not a text"),
    ("train-epochs-zero", ["train", "huge_token.json", "--epochs", "0", "--out", "o"], "--epochs"),
    ("train-seed-negative", ["train", "negative_token.json", "--epochs", "1", "--seed", "-1", "--out", "o"],
     "--seed"),
    ("train-out-readonly", ["train", "wrong_agent.json", "--epochs", "1", "--out", "ro/x"], "cannot write in"),
    ("train-out-file", ["train", "wrong_agent.json", "--epochs", "1", "--out", "afile"], "not a folder"),
    ("train-out-empty", ["train", "wrong_agent.json", "--epochs", "1", "--out", ""], "--out is empty"),
    ("train-env-unknown", ["train", "wrong_agent.json", "--env", "nope", "--epochs", "1", "--out", "o"],
     "unknown env"),
    # bench
    ("bench-info-empty", ["bench", "info", "--table", "empty.npz"], "empty.npz"),
    ("bench-info-folder", ["bench", "info", "--table", "adir"], "adir"),
    ("bench-info-random", ["bench", "info", "--table", "random.npz"], "random.npz"),
    ("bench-info-wrongkeys", ["bench", "info", "--table", "wrongkeys.npz"], "wrongkeys.npz"),
    ("bench-info-notnpz", ["bench", "info", "--table", "notnpz.npz"], "notnpz.npz"),
    ("bench-info-truncated", ["bench", "info", "--table", "truncated.npz"], "truncated.npz"),
    ("bench-info-missing", ["bench", "info", "--table", "missing.npz"], "missing.npz"),
    ("bench-build-limit", ["bench", "build", "--out", "t.npz", "--limit", "-1"], "limit must be"),
    ("bench-build-workers", ["bench", "build", "--out", "t.npz", "--workers", "0"], "workers must be"),
    ("bench-build-raw-folder", ["bench", "build", "--out", "t.npz", "--raw", "adir"], "adir"),
    ("bench-build-same-file", ["bench", "build", "--out", "t.jsonl"], ".npz"),
    ("bench-build-raw-is-out", ["bench", "build", "--out", "t.npz", "--raw", "t.npz"], "t.npz"),
    ("bench-build-exists", ["bench", "build", "--out", "random.npz", "--limit", "1"], "--force"),
    ("bench-build-out-empty", ["bench", "build", "--out", ""], "--out"),
    ("bench-build-readonly", ["bench", "build", "--out", "ro/t.npz", "--limit", "1"], "ro"),
    ("bench-compact-raw-missing", ["bench", "compact", "--raw", "nothing.jsonl", "--out", "t.npz"],
     "nothing.jsonl"),
    ("bench-compact-raw-folder", ["bench", "compact", "--raw", "adir", "--out", "t.npz"], "adir"),
    # download, list, the parser
    ("download-into-file", ["download", "cifar10", "--data-dir", "afile"], "afile"),
    ("download-unknown", ["download", "mnist", "--data-dir", "d"], "invalid choice: 'mnist'"),
    ("download-offline", ["download", "cifar10", "--data-dir", "d"], "nothing was left"),
    ("list-extra", ["list", "extra"], "unrecognized arguments: extra"),
    ("unknown-command", ["fly"], "invalid choice: 'fly'"),
]



# -- generated: every registered learner's every config field, with values of the wrong type or range -----
def bad_texts(rule) -> list[str]:
    """``--learner-arg``/``--env-arg`` values (Python literals as typed on a command line) that ``rule``
    (:class:`~ma2ml.envs.core.fields.FieldRule`) refuses."""
    if rule.kind is object:
        return []
    texts = [] if rule.optional else ["None"]
    if rule.kind is bool:
        return texts + ["1", "0.0", "'yes'", "[True]"]
    if rule.kind is str:
        return texts + ["1", "['own']"] + (["'nope'"] if rule.choices else [])
    if rule.kind is tuple:
        too_long = "[" + ", ".join(["8"] * (rule.length.high + 1)) + "]"
        return texts + ["'64'", "[1.5]", "[True]", too_long, *(f"[{v}]" for v in rule.range.outside(True))]
    texts += ["'x'", "[1]", "True", "{'a': 1}"]
    if rule.kind is int:
        texts += ["2.5", "1e3"]
    else:
        texts += ["1e999", "-1e999", "'nan'"]
    if rule.range is not None:
        texts += [repr(v) for v in rule.range.outside(rule.kind is int)]
    return texts


def _learner_cases() -> list[tuple[str, list[str], str]]:
    from ma2ml.learners import learner_config, learner_names
    from ma2ml.envs.core.fields import field_rules

    cases = []
    for name in learner_names():
        config_class = type(learner_config(name))
        cases.append((f"learner-{name}-unknown-field", ["search", *TABLE, "--learner", name, "--learner-arg",
                                                        "bogus=1", "--out", "o/run"], "has no setting ['bogus']"))
        for rule in field_rules(config_class):
            for k, text in enumerate(bad_texts(rule)):
                cases.append((f"learner-{name}-{rule.name}-{k}",
                              ["search", *TABLE, "--learner", name, "--learner-arg", f"{rule.name}={text}",
                               "--budget", "20", "--batch-size", "10", "--out", "o/run"],
                              f"{config_class.__name__}.{rule.name} = "))
    return cases


def _env_arg_cases() -> list[tuple[str, list[str], str]]:
    from ma2ml.envs.automl_v0 import ARGUMENTS, TRAIN_DEFAULTS
    from ma2ml.envs.core.fields import rule_of

    cases = []
    for env_id in ("ma2ml/AutoML-DigitsBench-v0", "ma2ml/AutoML-DigitsHard-v0"):
        short = env_id.split("-")[1]
        for name, hint in ARGUMENTS.items():
            if name == "run_id":  # set by ma2ml itself: its own case above
                continue
            for k, text in enumerate(bad_texts(rule_of(name, hint))):
                cases.append((f"env-{short}-{name}-{k}", ["search", "--env", env_id, "--env-arg", f"{name}={text}",
                                                          "--out", "o/run"], f"{name} = "))
        for name in TRAIN_DEFAULTS:  # arguments of the train evaluator: the table decides them
            value = {"task": "'cifar10'", "spaces": "{'x': None}", "data_dir": "'/nonexistent'", "epochs": "3",
                     "cpu_threads": "2"}[name]
            cases.append((f"env-{short}-not-applicable-{name}",
                          ["search", "--env", env_id, "--env-arg", f"{name}={value}", "--out", "o/run"],
                          f"{name}= does not apply here"))
        bench_message = "bench = 1 is invalid" if short == "DigitsBench" else "bench= does not apply"
        for k, (arg, message) in enumerate((("bench=1", bench_message), ("epoch=True", "epoch = True"),
                                            ("table_seed=True", "table_seed = True"), ("table=[1]", "table = [1]"),
                                            ("table_seed=-1", "table_seed"), ("epoch=0", "epoch must be"),
                                            ("table_seed='first'", "table_seed"), ("epoch=2.5", "epoch must be"))):
            cases.append((f"env-{short}-table-{k}", ["search", "--env", env_id, "--env-arg", arg, "--out", "o/run"],
                          message))
    return cases


LONG_DASHES = "-" * 100_000 + "1"
CASES += [
    # issue 23, item 2
    ("search-learner-abstract", ["search", *TABLE, "--learner", "ma2ml.agents.base:Learner", "--out", "o/run"],
     "is abstract"),
    ("compare-learner-abstract", ["compare", *TABLE, "--learners", "ma2ml.agents.base:Learner", "--budget", "20",
                                  "--out", "o/cmp"], "is abstract"),
    ("search-learner-not-a-class", ["search", *TABLE, "--learner", "ma2ml.learners:make_learner", "--out", "o/run"],
     "not a subclass"),
    ("search-env-arg-dashes", ["search", *TABLE, "--env-arg", f"epochs={LONG_DASHES}", "--out", "o/run"],
     "characters long"),
    ("search-env-arg-dashes-short", ["search", *TABLE, "--env-arg", "epochs=" + "-" * 5000 + "1", "--out", "o/run"],
     "nested too deeply"),
    ("search-learner-arg-nested", ["search", *TABLE, "--learner-arg", "hidden=" + "[" * 3000 + "]" * 3000,
                                   "--out", "o/run"], "hidden"),
    ("search-learner-arg-huge-hidden", ["search", *TABLE, "--learner-arg", "hidden=1000000000", "--out", "o/run"],
     "MA2MLConfig.hidden = 1000000000 is invalid; valid values are integers in 1..1024"),
    ("search-learner-arg-sample-size", ["search", *TABLE, "--learner", "evolution", "--learner-arg",
                                        "sample_size=30", "--out", "o/run"], "EvolutionConfig.sample_size"),
    ("search-learner-arg-unknown", ["search", *TABLE, "--learner-arg", "bogus=1", "--out", "o/run"],
     "has no setting ['bogus']"),
    ("search-learner-arg-device", ["search", *TABLE, "--learner", "ppo", "--learner-arg", "device='tpu'",
                                   "--out", "o/run"], "PPOConfig.device"),
    # item 4: a refused argument leaves no half-made run folder, not even its parents
    ("search-train-seed-text", ["search", *TABLE, "--env-arg", "train_seed='x'", "--out", "o/deep/run"],
     "train_seed = 'x'"),
    ("compare-store-arg", ["compare", *TABLE, "--learners", "random", "--env-arg", "store='x.sqlite'",
                           "--out", "o/cmp"], "is set by ma2ml itself"),
    ("search-run-id-arg", ["search", *TABLE, "--env-arg", "run_id='r'", "--out", "o/run"], "is set by ma2ml itself"),
    # items 2 and 3: untrusted files named on the command line
    ("search-table-dev-zero", ["search", *TABLE, "--env-arg", "table='/dev/zero'", "--out", "o/run"],
     "/dev/zero"),
    ("compare-table-dev-zero", ["compare", *TABLE, "--learners", "random", "--env-arg", "table='/dev/zero'",
                                "--out", "o/cmp"], "/dev/zero"),
    ("bench-info-dev-zero", ["bench", "info", "--table", "/dev/zero"], "/dev/zero"),
    ("train-deep-json", ["train", "deep.json", "--epochs", "1", "--out", "o"], "deep.json"),
    ("train-dev-zero", ["train", "/dev/zero", "--epochs", "1", "--out", "o"], "/dev/zero"),
    # item 10
    ("search-out-too-long", ["search", *TABLE, "--out", "o/" + "x" * 250 + "/" + "y" * 250 + "/run"], "500"),
    # item 13
    ("bench-build-workers-huge", ["bench", "build", "--out", "t.npz", "--workers", "100000"], "--workers must be"),
]
CASES += _learner_cases() + _env_arg_cases()


def _snapshot(folder: Path) -> dict[str, tuple[bool, int]]:
    return {str(p.relative_to(folder)): (p.is_dir(), 0 if p.is_dir() else p.stat().st_size)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    readonly = tmp_path / "ro"
    if os.geteuid() == 0:
        protected = subprocess.run(["chattr", "+i", str(readonly)], capture_output=True).returncode == 0
    else:
        readonly.chmod(0o555)
        protected = True
    yield tmp_path, protected
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(readonly)], capture_output=True)
    readonly.chmod(0o755)


def _offline(*args, **kwargs):
    raise OSError("[Errno -3] Temporary failure in name resolution")


def test_the_list_is_long_enough():
    """Issue 23: at least 300 bad command lines, every registered learner's config among them."""
    from ma2ml.learners import learner_names

    assert len(CASES) >= 300
    with_learner_args = {argv[argv.index("--learner") + 1] for _, argv, _ in CASES
                         if "--learner" in argv and "--learner-arg" in argv}
    assert set(learner_names()) <= with_learner_args


@pytest.mark.parametrize("name, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(workdir, capsys, monkeypatch, name, argv, message):
    folder, protected = workdir
    if "ro/" in " ".join(argv) and not protected:
        pytest.skip("cannot make a folder read-only for this user here")
    if name == "download-offline":
        import torchvision.datasets.utils as tv_utils

        monkeypatch.setattr(tv_utils, "urlretrieve", _offline, raising=False)
        monkeypatch.setattr(tv_utils, "download_url", _offline)
        monkeypatch.setattr(tv_utils, "download_and_extract_archive", _offline)
    before = _snapshot(folder)
    capsys.readouterr()
    rc = run_cli(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert _snapshot(folder) == before


def run_cli(argv: list[str]) -> int | str | None:
    """``main(argv)``'s exit code, parser errors (``SystemExit``) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
