"""Final training: the step after a search. Train a found pipeline at full budget on
train + validation, score it once on the test split, and save a checkpoint that rebuilds.

A *pipeline file* is a JSON object with the joint action under ``"tokens"`` (as ``ma2ml search``
writes ``best.json``) or ``"actions"``: one token list per agent of the env, e.g.

    {"tokens": {"aug": [3, 10, 4, ...], "nas": [0, 1, 6, ...], "hpo": [3, 1, 2, 0, 0, 0]},
     "pipeline": {...}, "settings": {"env": "ma2ml/AutoML-Digits-v0", "env_args": {...}}}

Only the tokens are required. ``"pipeline"``, when present, must equal the decoded choice of
the tokens in the env's spaces (``{agent: space.to_json(config)}``, as records hold it), which
catches a file paired with the wrong env. ``"settings"`` (a search's) names the env the search
ran on and the arguments it was made with (``agents``, ``flops_constraint``, dataset options,
...): the env is made again with them, so the tokens decode in the same spaces. Other keys are
ignored.

:class:`FinalTraining` (or :func:`train_final`) trains with the same loop as the search's proxy
evaluations (:func:`ma2ml.training.evaluators.fit_recipe`: uint8 data on the device, batched
augmentation, bf16 + channels_last on CUDA) for the given number of epochs, on the union of the
train and validation splits, standardised with that union's per-channel mean and std. The test
split is scored once, after training; nothing is selected on it.

A checkpoint (:func:`save_checkpoint`, written atomically) holds the network's ``state_dict``
and a :class:`FinalRecord`: the env id, its arguments and the tokens (from which the
architecture is rebuilt), the budget that shaped the network, the image shape, classes and
input normalisation. :func:`load_checkpoint` rebuilds the same network and loads the weights.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import resolve_device
from ma2ml.envs.core.files import MAX_INPUT_BYTES, atomic_write, check_input_file, read_input_file
from ma2ml.envs.core.records import decode_actions
from ma2ml.envs.spaces import ModuleSpace
from ma2ml.envs.tasks import Task
from ma2ml.training.evaluators import TrainEvaluator, accuracy, fit_recipe, network_cost, normalizer, to_input

CHECKPOINT_FORMAT = "ma2ml-final-v1"
"""Tag stored in every checkpoint; :func:`load_checkpoint` refuses anything else."""

ACTION_KEYS = ("tokens", "actions")
"""Keys of a pipeline file that may hold the per-agent tokens (the first present is used)."""

FILE_ENV_ARGS = ("task", "agents", "epochs", "flops_constraint", "reward_exponent", "soft_constraint",
                 "train_seed", "table_seed", "epoch", "cpu_threads")
"""Env arguments a pipeline file or checkpoint may carry: pure configuration (names and numbers)."""
RUNTIME_ENV_ARGS = ("data_dir", "table", "store", "run_id", "cache", "executor", "workers", "device",
                    "time_limit", "info_timings")
"""Env arguments a file never supplies (paths, stores, executors, devices): they come from the
command line. A search's ``best.json`` may hold them; they are ignored there."""


def file_env_args(env_args: Any, source: str) -> dict[str, Any]:
    """The configuration part of env arguments read from a file (:data:`FILE_ENV_ARGS`).

    Runtime arguments (:data:`RUNTIME_ENV_ARGS`) are dropped; any other key, or a value that
    is not a number, string, bool or list of strings, is one ``ValueError``: a file may name
    configuration, never a path, object or store that the env would open.
    """
    if not isinstance(env_args, Mapping):
        raise UserError(f"{source}: settings.env_args must be an object of env arguments, got {env_args!r}")
    unknown = sorted(k for k in env_args if k not in FILE_ENV_ARGS and k not in RUNTIME_ENV_ARGS)
    if unknown:
        raise UserError(f"{source}: settings.env_args names {unknown}, which a pipeline file may not set; "
                         f"it may carry {list(FILE_ENV_ARGS)} (paths, stores and executors come from the "
                         "command line)")
    out = {}
    for key in FILE_ENV_ARGS:
        if key not in env_args:
            continue
        value = env_args[key]
        plain = value is None or isinstance(value, (bool, int, float, str)) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not plain:
            raise UserError(f"{source}: settings.env_args[{key!r}] must be a number, string or list of names, "
                             f"got {value!r}")
        out[key] = value
    return out


@dataclass
class FinalRecord:
    """The outcome of a final training, and what is needed to rebuild its network (JSON-friendly)."""

    env_id: str
    """The PettingZoo id of the env whose spaces decode ``actions``."""
    task: str
    """The env's task name."""
    env_args: dict[str, Any]
    """Keyword arguments the env was made with (besides ``data_dir``)."""
    data_dir: str | None
    """The dataset folder it was trained from (the env is made with it again; its data is not read)."""
    actions: dict[str, list[int]]
    """Tokens per agent."""
    pipeline: dict[str, Any]
    """The decoded choice of every agent."""
    epochs: int
    """Training epochs."""
    seed: int
    """Training seed."""
    device: str
    """Device type it was trained on ("cpu" or "cuda")."""
    test_acc: float
    """Accuracy on the test split, after the last epoch."""
    flops: int
    """Multiply-adds of one forward pass on one image."""
    params: int
    """Trainable parameters."""
    train_size: int
    """Images trained on (train + validation splits)."""
    losses: list[float] = field(default_factory=list)
    """Mean training loss of each epoch."""
    train_seconds: float = 0.0
    """Wall-clock seconds of training."""
    budget: dict[str, Any] = field(default_factory=dict)
    """The task budget (network skeleton) the network was built with, epochs set to ``epochs``."""
    image_shape: list[int] = field(default_factory=list)
    """(C, H, W) of the input images."""
    input_size: int | None = None
    """Resolution the network reads (images are resized to it), if the pipeline sets one."""
    num_classes: int = 0
    """Classes of the classifier."""
    norm_mean: list[float] = field(default_factory=list)
    """Per-channel mean the [0, 1]-scaled inputs are standardised with."""
    norm_std: list[float] = field(default_factory=list)
    """Per-channel std the [0, 1]-scaled inputs are standardised with."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CHECKPOINT_LIMIT = 4 * MAX_INPUT_BYTES
"""The largest checkpoint file read (1 GiB: the weights of a large network)."""

_RECORD_TYPES = {"env_id": str, "task": str, "env_args": dict, "actions": dict, "pipeline": dict, "epochs": int,
                 "seed": int, "device": str, "budget": dict, "image_shape": list, "num_classes": int}
"""The types of the record fields a checkpoint is rebuilt from."""


def _record_problem(record: Any) -> str | None:
    """What makes a checkpoint's record unusable as a :class:`FinalRecord`, or None."""
    if not isinstance(record, dict):
        return f"its record is a {type(record).__name__}, expected a dict"
    names = {f.name for f in fields(FinalRecord)}
    required = {f.name for f in fields(FinalRecord) if f.default is MISSING and f.default_factory is MISSING}
    unknown = sorted(str(k) for k in record if k not in names)
    missing = sorted(n for n in required | set(_RECORD_TYPES) if n not in record)
    if unknown or missing:
        return "its record " + " and ".join([f"has unknown fields {unknown}"] * bool(unknown)
                                            + [f"lacks {missing}"] * bool(missing))
    for name, kind in _RECORD_TYPES.items():
        if not isinstance(record[name], kind) or isinstance(record[name], bool):
            return f"its record's {name!r} is {record[name]!r:.80}, expected {kind.__name__}"
    if not all(isinstance(t, list) and all(isinstance(x, int) for x in t) for t in record["actions"].values()):
        return "its record's 'actions' are not agent -> integer tokens"
    return None


@dataclass
class Checkpoint:
    """A loaded final model: the rebuilt network (eval mode) and its record."""

    model: torch.nn.Module
    record: FinalRecord

    def logits(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits (float32) of uint8 images (N, C, H, W), standardised as in training."""
        device = next(self.model.parameters()).device
        norm = (torch.tensor(self.record.norm_mean, device=device).view(1, -1, 1, 1),
                torch.tensor(self.record.norm_std, device=device).view(1, -1, 1, 1))
        self.model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                xb = to_input(images[i:i + batch_size].to(device), norm, self.record.input_size)
                out.append(self.model(xb).float())
        return torch.cat(out) if out else torch.empty(0, self.record.num_classes)


@dataclass(frozen=True)
class PipelineFile:
    """What a pipeline file holds (see the module docstring)."""

    actions: dict[str, list[int]]
    """Tokens per agent."""
    pipeline: dict[str, Any] | None
    """The decoded choice of every agent, if the file has it (cross-checked against the tokens)."""
    env_id: str | None
    """The env the search ran on (``settings.env``), if the file names it."""
    env_args: dict[str, Any]
    """The arguments that env was made with (``settings.env_args``), if any."""


def read_pipeline(path: str | Path) -> PipelineFile:
    """Read a pipeline file; one ``ValueError`` naming the problem if it is malformed."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a pipeline file, e.g. a search's {path / 'best.json'}")
    try:  # a missing file, a FIFO, /dev/zero or a huge file: refused unread
        text = read_input_file(path, "pipeline file").decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text (JSON) file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise UserError(f"{path} nests JSON too deeply to be a pipeline file; expected a few levels") from None
    expected = 'a JSON object {"tokens": {agent: [tokens, ...], ...}} ("actions" works too)'
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold {expected}, got a JSON {type(data).__name__}")
    key = next((k for k in ACTION_KEYS if k in data), None)
    if key is None:
        raise UserError(f"{path} has no {' or '.join(repr(k) for k in ACTION_KEYS)} field; expected {expected}")
    raw = data[key]
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: {key!r} must map each agent to its token list; expected {expected}")
    actions: dict[str, list[int]] = {}
    for agent, tokens in raw.items():
        if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise UserError(f"{path}: {key}[{agent!r}] must be a list of integer tokens, got {tokens!r}")
        actions[agent] = tokens
    pipeline = data.get("pipeline")
    if pipeline is not None and not isinstance(pipeline, dict):
        raise UserError(f"{path}: 'pipeline' must be an object agent -> decoded choice, got {pipeline!r}")
    settings = data.get("settings", {})
    env_id, env_args = (settings.get("env"), settings.get("env_args", {})) if isinstance(settings, dict) else (None, {})
    if env_id is not None and not isinstance(env_id, str):
        raise UserError(f"{path}: settings.env must be an env id string, got {env_id!r}")
    return PipelineFile(actions, pipeline, env_id, file_env_args(env_args, str(path)))


def make_env(env_id: str, env_args: Mapping[str, Any] | None = None, data_dir: str | Path | None = None) -> Any:
    """The registered PettingZoo parallel env ``env_id`` made with ``env_args`` (and ``data_dir``,
    if given); ``ValueError`` for an unknown id or arguments the env does not take."""
    from ma2ml.envs import make_parallel

    return make_parallel(env_id, **{**(env_args or {}), **({} if data_dir is None else {"data_dir": str(data_dir)})})


def decode_pipeline(spaces: Mapping[str, ModuleSpace], actions: Mapping[str, list[int]],
                    pipeline: Mapping[str, Any] | None, env_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(configs, JSON form) of ``actions`` in ``spaces``; ``ValueError`` naming a bad agent or token,
    or if a given decoded ``pipeline`` is not what the tokens decode to."""
    configs = decode_actions(spaces, actions)
    decoded = json.loads(json.dumps({a: spaces[a].to_json(c) for a, c in configs.items()}))
    if pipeline is not None and json.loads(json.dumps(pipeline)) != decoded:
        differ = sorted(a for a in set(decoded) | set(pipeline) if decoded.get(a) != pipeline.get(a))
        raise UserError(f"the file's 'pipeline' differs from what its tokens decode to in {env_id} "
                         f"(agents {differ}); was it written for another env?")
    return configs, decoded


class FinalTraining:
    """A checked final-training job: the constructor validates every input and loads the data
    (``ValueError`` naming the problem, before any training); :meth:`run` trains and scores.

    ``pipeline`` (optional) is cross-checked against the tokens (see :func:`decode_pipeline`);
    ``env_args`` are the env's keyword arguments (a search's ``settings.env_args``); ``data_dir``
    overrides theirs.
    """

    def __init__(
        self,
        env_id: str,
        actions: Mapping[str, list[int]],
        epochs: int,
        data_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        pipeline: Mapping[str, Any] | None = None,
        env_args: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UserError(f"epochs must be an integer >= 1, got {epochs!r}")
        env_args = dict(env_args or {})
        args_data_dir = env_args.pop("data_dir", None)
        data_dir = args_data_dir if data_dir is None else data_dir
        self.env_id, self.env_args, self.epochs = env_id, env_args, epochs
        self.data_dir = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
        self.device = resolve_device(device)
        env = make_env(env_id, env_args, self.data_dir)
        configs, self.pipeline = decode_pipeline(env.spaces, actions, pipeline, env_id)
        self.actions = {a: [int(t) for t in v] for a, v in actions.items()}
        self.task: Task = env.task
        env.close()  # only its task and spaces are needed
        self.evaluator = TrainEvaluator(self.task, env.spaces, data_dir=self.data_dir, device=self.device,
                                        epochs=epochs)
        self.recipe = self.evaluator.recipe(configs)
        self.splits = self.evaluator.splits

    def run(self, seed: int = 0, epoch_end: Callable[[int, float], None] | None = None
            ) -> tuple[torch.nn.Module, FinalRecord]:
        """Train on train + val for ``epochs``, score on test; ``epoch_end(epoch, mean_loss)`` after
        every epoch (progress). Raises :class:`~ma2ml.training.evaluators.TrainingDiverged` if the loss
        becomes non-finite."""
        splits, budget, device = self.splits, self.evaluator.budget, self.device
        build = self.task.build_network
        x = torch.cat([splits.train.x, splits.val.x]).to(device)
        y = torch.cat([splits.train.y, splits.val.y]).to(device)
        c, h, w = splits.image_shape
        size = self.recipe.input_size or h
        flops, params = network_cost(build, self.recipe.architecture, c, size, splits.num_classes, budget)
        norm = normalizer(x)
        losses: list[float] = []

        def on_epoch(_model: torch.nn.Module, loss: float) -> bool:
            losses.append(loss)
            if epoch_end is not None:
                epoch_end(len(losses), loss)
            return False

        start = time.perf_counter()
        model = fit_recipe(self.recipe, build, budget, x, y, splits.num_classes, seed, norm, on_epoch)
        seconds = time.perf_counter() - start
        test_acc = accuracy(model, splits.test.x.to(device), splits.test.y.to(device), norm,
                            budget.eval_batch_size, device.type == "cuda", size)
        record = FinalRecord(
            env_id=self.env_id, task=self.task.name, env_args=self.env_args, data_dir=self.data_dir,
            actions=self.actions, pipeline=self.pipeline, epochs=self.epochs, seed=seed, device=device.type, test_acc=test_acc,
            flops=flops, params=params, train_size=len(y), losses=losses, train_seconds=seconds,
            budget=asdict(budget), image_shape=[c, h, w], input_size=self.recipe.input_size,
            num_classes=splits.num_classes,
            norm_mean=norm[0].flatten().tolist(), norm_std=norm[1].flatten().tolist(),
        )
        return model, record


def train_final(env_id: str, actions: Mapping[str, list[int]], epochs: int, data_dir: str | Path | None = None,
                device: str | torch.device | None = None, seed: int = 0, pipeline: Mapping[str, Any] | None = None,
                env_args: Mapping[str, Any] | None = None) -> tuple[torch.nn.Module, FinalRecord]:
    """Train the pipeline ``actions`` of env ``env_id`` for ``epochs`` on train + val and score it on
    test: ``FinalTraining(...).run(seed)``."""
    return FinalTraining(env_id, actions, epochs, data_dir, device, pipeline, env_args).run(seed)


def save_checkpoint(path: str | Path, model: torch.nn.Module, record: FinalRecord) -> Path:
    """Write ``{format, record, state_dict}`` to ``path`` atomically (a temporary file, then rename)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "record": record.to_dict(), "state_dict": state}
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: str | Path, device: str | torch.device | None = "cpu",
                    data_dir: str | Path | None = None) -> Checkpoint:
    """Rebuild the network of a checkpoint written by :func:`save_checkpoint` and load its weights.

    The architecture is decoded again from the record's tokens in its env, made again with the
    recorded configuration (:func:`file_env_args`: never a path or store from the file) and the
    caller's ``data_dir`` (for tasks that need one; its data is not read); the budget, image shape
    and classes come from the record. The file is read with ``weights_only=True``, so nothing in
    it runs. Returns the model in eval mode on ``device``.
    """
    path = Path(path)
    if path.exists():  # a missing one: torch.load's FileNotFoundError names it
        check_input_file(path, "checkpoint", limit=CHECKPOINT_LIMIT)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch's weights-only refusal spans lines: keep the one naming what was refused
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        why = next((line for line in lines if "GLOBAL" in line or "WeightsUnpickler error" in line), lines[0])
        raise UserError(f"{path} is not a readable ma2ml checkpoint ({type(exc).__name__}: {why}); "
                        "nothing in it was run") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an ma2ml final checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    problem = _record_problem(payload.get("record"))
    if problem is not None or not isinstance(payload.get("state_dict"), dict):
        raise UserError(f"{path} is not an ma2ml final checkpoint: {problem or 'it has no state_dict'}; "
                        "give a final.pt written by `ma2ml train`")
    record = FinalRecord(**payload["record"])
    env = make_env(record.env_id, file_env_args(record.env_args, str(path)), data_dir)
    env.close()
    recipe = TrainEvaluator(env.task, env.spaces).recipe(decode_actions(env.spaces, record.actions))
    try:
        budget = Budget(**record.budget)
        model = env.task.build_network(recipe.architecture, record.image_shape[0], record.num_classes, budget,
                                       drop_path=recipe.hparams.drop_path)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, IndexError, RuntimeError) as exc:  # a record or weights edited by hand
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: its record and weights do not rebuild the network ({type(exc).__name__}: "
                        f"{first}); give a final.pt written by `ma2ml train`") from None
    model.to(resolve_device(device)).eval()
    return Checkpoint(model=model, record=record)
