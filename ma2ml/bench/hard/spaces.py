"""Module spaces of the hard benchmark tier: a NAS space that searches the cell *and* the
network's width, depth and input resolution (:class:`CellNetSpace`), and an HPO space that
searches the training length beside the hyper-parameters (:class:`TrainSpace`).

Both are ordinary :class:`~ma2ml.envs.spaces.ModuleSpace` s: ``apply`` writes the choice into
the training :class:`~ma2ml.envs.spaces.Recipe` (architecture and ``input_size``; hyper-parameters
and ``epochs``), so :class:`~ma2ml.training.evaluators.TrainEvaluator` trains them as it
trains every other pipeline. The network is the project's NASNet skeleton
(:class:`~ma2ml.models.nasnet.NASNetwork`) with the searched width and cells per stage
(:func:`build_cell_net`, a task's ``build_network``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.errors import UserError
from ma2ml.models.nasnet import NAS_OPS, Genotype, NASNetwork
from ma2ml.envs.spaces import AugOp, AugPolicy, HParams, ModuleSpace, NasSpace, Recipe, TokenField


@dataclass(frozen=True)
class CellNet:
    """The NAS choice of the hard tier: a cell genotype and the network's size."""

    genotype: Genotype
    channels: int
    """C of the first stage (doubled at each reduction)."""
    cells_per_stage: int
    """Normal cells per stage."""
    resolution: int
    """Side of the square input the images are resized to."""


def build_cell_net(architecture: CellNet, in_channels: int, num_classes: int, budget: Budget,
                   drop_path: float = 0.0) -> NASNetwork:
    """The NASNet skeleton of the budget (its ``stages``) at the searched width and depth."""
    return NASNetwork(architecture.genotype, in_channels, num_classes, architecture.channels,
                      architecture.cells_per_stage, budget.stages, drop_path=drop_path)


class CellNetSpace(ModuleSpace):
    """A NASNet cell (as :class:`~ma2ml.envs.spaces.NasSpace`) plus width, cells per stage and
    input resolution; a size given one value is a constant (no token)."""

    layout_name = "ma2ml.envs.benchmark.hard.spaces.CellNetSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "nas"

    def __init__(self, num_blocks: int = 1, ops: Sequence[str] = NAS_OPS,
                 fixed_inputs: Sequence[tuple[int, int]] | None = None, channels: Sequence[int] = (16,),
                 cells_per_stage: Sequence[int] = (1,), resolutions: Sequence[int] = (8,)) -> None:
        for name, values in (("channels", channels), ("cells_per_stage", cells_per_stage),
                             ("resolutions", resolutions)):
            if not values or any(int(v) != v or v < 1 for v in values):
                raise UserError(f"{name} must be positive integers, got {list(values)}")
        self.cell = NasSpace(num_blocks=num_blocks, ops=ops, cells=("normal",), fixed_inputs=fixed_inputs)
        super().__init__([*self.cell.fields, TokenField("channels", tuple(int(c) for c in channels)),
                          TokenField("cells_per_stage", tuple(int(c) for c in cells_per_stage)),
                          TokenField("resolution", tuple(int(r) for r in resolutions))])

    def build(self, values: Mapping[str, Any]) -> CellNet:
        return CellNet(self.cell.build(values), int(values["channels"]), int(values["cells_per_stage"]),
                       int(values["resolution"]))

    def values(self, config: CellNet) -> dict[str, Any]:
        return {**self.cell.values(config.genotype), "channels": config.channels,
                "cells_per_stage": config.cells_per_stage, "resolution": config.resolution}

    def apply(self, config: CellNet, recipe: Recipe) -> None:
        recipe.architecture = config
        recipe.input_size = config.resolution

    def to_json(self, config: CellNet) -> dict[str, Any]:
        return {"cell": self.cell.to_json(config.genotype)["normal"], "channels": config.channels,
                "cells_per_stage": config.cells_per_stage, "resolution": config.resolution}


@dataclass(frozen=True)
class TrainChoice:
    """The HPO choice of the hard tier: hyper-parameters and the number of epochs."""

    hparams: HParams
    epochs: int


class TrainSpace(ModuleSpace):
    """Discrete levels of the :class:`~ma2ml.envs.spaces.HParams` fields and of ``epochs`` (the
    training length; the cosine schedule spans it). Fields not given are ``base``'s (epochs: 4)."""

    layout_name = "ma2ml.envs.benchmark.hard.spaces.TrainSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "hpo"

    def __init__(self, levels: Mapping[str, Sequence[Any]], base: HParams | None = None, epochs: int = 4) -> None:
        names = [f.name for f in fields(HParams)] + ["epochs"]
        unknown = sorted(set(levels) - set(names))
        if unknown:
            raise UserError(f"unknown hyper-parameters {unknown}; valid names are {names}")
        if any(int(e) != e or e < 1 for e in levels.get("epochs", (epochs,))):
            raise UserError(f"epochs must be positive integers, got {list(levels['epochs'])}")
        self.base = base or HParams()
        defaults = {**asdict(self.base), "epochs": epochs}
        super().__init__([TokenField(n, tuple(levels[n]) if n in levels else (defaults[n],)) for n in names])

    def build(self, values: Mapping[str, Any]) -> TrainChoice:
        hp = HParams(**{f.name: values[f.name] for f in fields(HParams)})
        return TrainChoice(hp, int(values["epochs"]))

    def values(self, config: TrainChoice) -> dict[str, Any]:
        return {**asdict(config.hparams), "epochs": config.epochs}

    def apply(self, config: TrainChoice, recipe: Recipe) -> None:
        recipe.hparams = config.hparams
        recipe.epochs = config.epochs


class AugStrengthSpace(ModuleSpace):
    """One AutoAugment sub-policy of two operations whose *strength* is searched: the op pair, and
    one probability and one magnitude level shared by both ops (tokens ``pair``, ``prob``,
    ``magnitude``). Pairs are written ``"Rotate+ShearX"``."""

    layout_name = "ma2ml.envs.benchmark.hard.spaces.AugStrengthSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "aug"

    def __init__(self, pairs: Sequence[str], probs: Sequence[float], magnitudes: Sequence[int]) -> None:
        from ma2ml.envs.spaces import AugSpace

        for pair in pairs:
            if len(pair.split("+")) != 2:
                raise UserError(f"an op pair is written 'OpA+OpB', got {pair!r}")
            AugSpace(1, ops=pair.split("+"), probs=probs, magnitudes=magnitudes)  # checks ops, probs, levels
        super().__init__([TokenField("pair", tuple(pairs)), TokenField("prob", tuple(float(p) for p in probs)),
                          TokenField("magnitude", tuple(int(m) for m in magnitudes))])

    def build(self, values: Mapping[str, Any]) -> AugPolicy:
        a, b = str(values["pair"]).split("+")
        p, m = float(values["prob"]), int(values["magnitude"])
        return AugPolicy(((AugOp(a, p, m), AugOp(b, p, m)),))

    def values(self, config: AugPolicy) -> dict[str, Any]:
        if len(config.sub_policies) != 1:
            raise UserError(f"AugStrengthSpace: expected one sub-policy, got {len(config.sub_policies)}")
        a, b = config.sub_policies[0]
        if (a.prob, a.magnitude) != (b.prob, b.magnitude):
            raise UserError("AugStrengthSpace: both ops share one probability and magnitude")
        return {"pair": f"{a.op}+{b.op}", "prob": a.prob, "magnitude": a.magnitude}

    def apply(self, config: AugPolicy, recipe: Recipe) -> None:
        recipe.augment = config
