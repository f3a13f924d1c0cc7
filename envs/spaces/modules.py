"""The built-in module spaces: :class:`AugSpace` (AutoAugment), :class:`NasSpace` (NASNet cells),
:class:`HpoSpace` (training hyper-parameters) and :class:`TokenSpace` (plain tokens, for your own
modules). What a module space is, and how to write one: :mod:`ma2ml.envs.spaces.base`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, replace
from typing import Any

from ma2ml.envs.core.errors import UserError
from ma2ml.models.augment import AUG_OPS, NUM_MAGNITUDES, NUM_PROBS
from ma2ml.models.nasnet import NAS_OPS, Block, Genotype
from ma2ml.envs.spaces.base import AugOp, AugPolicy, HParams, ModuleSpace, Recipe, TokenField


class AugSpace(ModuleSpace):
    """AutoAugment's space: K sub-policies of two (op, probability, magnitude) operations."""

    layout_name = "ma2ml.envs.spaces.AugSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "aug"

    def __init__(
        self,
        num_sub_policies: int = 5,
        ops: Sequence[str] = AUG_OPS,
        probs: Sequence[float] | None = None,
        magnitudes: Sequence[int] | None = None,
    ) -> None:
        unknown = [o for o in ops if o not in AUG_OPS]
        if unknown:
            raise UserError(f"unknown augmentation ops {unknown}; valid ops are {list(AUG_OPS)}")
        if num_sub_policies < 1:
            raise UserError(f"num_sub_policies must be >= 1, got {num_sub_policies}")
        probs = tuple(probs) if probs is not None else tuple(i / (NUM_PROBS - 1) for i in range(NUM_PROBS))
        mags = tuple(magnitudes) if magnitudes is not None else tuple(range(NUM_MAGNITUDES))
        grid = {round(i / (NUM_PROBS - 1), 6) for i in range(NUM_PROBS)}
        if any(round(p, 6) not in grid for p in probs):
            raise UserError(f"probabilities must be multiples of 0.1 in [0, 1], got {list(probs)}")
        if any(not 0 <= m < NUM_MAGNITUDES for m in mags):
            raise UserError(f"magnitude levels must be in 0..{NUM_MAGNITUDES - 1}, got {list(mags)}")
        self.num_sub_policies = num_sub_policies
        fs = []
        for k in range(num_sub_policies):
            for j in range(2):
                fs += [
                    TokenField(f"sub{k}.op{j}.type", tuple(ops)),
                    TokenField(f"sub{k}.op{j}.prob", probs),
                    TokenField(f"sub{k}.op{j}.magnitude", mags),
                ]
        super().__init__(fs)

    def build(self, values: Mapping[str, Any]) -> AugPolicy:
        def op(k: int, j: int) -> AugOp:
            p = f"sub{k}.op{j}."
            return AugOp(values[p + "type"], float(values[p + "prob"]), int(values[p + "magnitude"]))

        return AugPolicy(tuple((op(k, 0), op(k, 1)) for k in range(self.num_sub_policies)))

    def values(self, config: AugPolicy) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, sub in enumerate(config.sub_policies):
            for j, o in enumerate(sub):
                p = f"sub{k}.op{j}."
                out.update({p + "type": o.op, p + "prob": o.prob, p + "magnitude": o.magnitude})
        return out

    def apply(self, config: AugPolicy, recipe: Recipe) -> None:
        recipe.augment = config

    def to_json(self, config: AugPolicy) -> list[list[dict[str, Any]]]:
        return [[asdict(o) for o in sub] for sub in config.sub_policies]

    def describe(self, config: AugPolicy | None = None) -> str:
        if config is None:
            return super().describe()
        return "; ".join(
            " then ".join(f"{o.op}(p={o.prob:.1f}, m={o.magnitude})" for o in sub) for sub in config.sub_policies
        )


class NasSpace(ModuleSpace):
    """NASNet-style cells: B blocks, each two inputs (earlier nodes) and two ops, summed.

    ``cells=("normal", "reduce")`` searches both cells; ``("normal",)`` searches one cell
    used for both roles (as NAS-Bench-201 does). ``fixed_inputs`` pins every block's inputs,
    leaving only the ops to search.
    """

    layout_name = "ma2ml.envs.spaces.NasSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "nas"

    def __init__(
        self,
        num_blocks: int = 5,
        ops: Sequence[str] = NAS_OPS,
        cells: Sequence[str] = ("normal", "reduce"),
        fixed_inputs: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        unknown = [o for o in ops if o not in NAS_OPS]
        if unknown:
            raise UserError(f"unknown NAS ops {unknown}; valid ops are {list(NAS_OPS)}")
        if set(cells) - {"normal", "reduce"} or "normal" not in cells:
            raise UserError(f"cells must be ('normal',) or ('normal', 'reduce'), got {tuple(cells)}")
        if num_blocks < 1:
            raise UserError(f"num_blocks must be >= 1, got {num_blocks}")
        if fixed_inputs is not None and len(fixed_inputs) != num_blocks:
            raise UserError(f"fixed_inputs needs {num_blocks} pairs, got {len(fixed_inputs)}")
        self.num_blocks = num_blocks
        self.cells = tuple(cells)
        fs = []
        for cell in self.cells:
            for b in range(num_blocks):
                for j in range(2):
                    inputs = tuple(range(2 + b)) if fixed_inputs is None else (fixed_inputs[b][j],)
                    fs.append(TokenField(f"{cell}.b{b}.in{j}", inputs))
                for j in range(2):
                    fs.append(TokenField(f"{cell}.b{b}.op{j}", tuple(ops)))
        super().__init__(fs)

    def _cell(self, values: Mapping[str, Any], cell: str) -> tuple[Block, ...]:
        return tuple(
            Block(
                inputs=(int(values[f"{cell}.b{b}.in0"]), int(values[f"{cell}.b{b}.in1"])),
                ops=(NAS_OPS.index(values[f"{cell}.b{b}.op0"]), NAS_OPS.index(values[f"{cell}.b{b}.op1"])),
            )
            for b in range(self.num_blocks)
        )

    def build(self, values: Mapping[str, Any]) -> Genotype:
        normal = self._cell(values, "normal")
        reduce = self._cell(values, "reduce") if "reduce" in self.cells else normal
        return Genotype(normal=normal, reduce=reduce)

    def values(self, config: Genotype) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cell in self.cells:
            blocks = getattr(config, cell)
            if len(blocks) != self.num_blocks:
                raise UserError(f"NasSpace: {cell} cell needs {self.num_blocks} blocks, got {len(blocks)}")
            for b, blk in enumerate(blocks):
                for j in range(2):
                    out[f"{cell}.b{b}.in{j}"] = blk.inputs[j]
                    out[f"{cell}.b{b}.op{j}"] = NAS_OPS[blk.ops[j]]
        return out

    def apply(self, config: Genotype, recipe: Recipe) -> None:
        recipe.architecture = config

    def to_json(self, config: Genotype) -> dict[str, Any]:
        return config.to_dict()

    def describe(self, config: Genotype | None = None) -> str:
        return super().describe() if config is None else str(config)


HPO_DEFAULT_LEVELS: dict[str, tuple[Any, ...]] = {
    "lr": (0.003, 0.01, 0.03, 0.1, 0.3),
    "weight_decay": (0.0, 1e-4, 5e-4, 1e-3),
    "momentum": (0.0, 0.5, 0.9),
    "batch_size": (32, 64, 128),
    "label_smoothing": (0.0, 0.1, 0.2),
    "drop_path": (0.0, 0.1, 0.2),
}


class HpoSpace(ModuleSpace):
    """Discrete levels of the training hyper-parameters (fields of :class:`HParams`).

    A field not given in ``levels`` is fixed to ``base``'s value; levels given as one value
    are constants too.
    """

    layout_name = "ma2ml.envs.spaces.HpoSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "hpo"

    def __init__(self, levels: Mapping[str, Sequence[Any]] | None = None, base: HParams | None = None) -> None:
        levels = dict(HPO_DEFAULT_LEVELS if levels is None else levels)
        names = [f.name for f in fields(HParams)]
        unknown = sorted(set(levels) - set(names))
        if unknown:
            raise UserError(f"unknown hyper-parameters {unknown}; valid names are {names}")
        self.base = base or HParams()
        super().__init__(
            [TokenField(n, tuple(levels[n]) if n in levels else (getattr(self.base, n),)) for n in names]
        )

    def build(self, values: Mapping[str, Any]) -> HParams:
        return replace(self.base, **values)

    def values(self, config: HParams) -> dict[str, Any]:
        return asdict(config)

    def apply(self, config: HParams, recipe: Recipe) -> None:
        recipe.hparams = config


class TokenSpace(ModuleSpace):
    """A generic module: named categorical tokens whose config is the tuple of their indices.

    Useful for synthetic games and as a starting point for a user module: override
    :meth:`apply` to make the choice enter training (e.g. pick the optimizer).
    """

    layout_name = "ma2ml.envs.spaces.TokenSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    def __init__(self, nvec: Sequence[int], kind: str = "module", names: Sequence[str] | None = None) -> None:
        names = list(names) if names is not None else [f"t{i}" for i in range(len(nvec))]
        if len(names) != len(nvec) or any(int(n) < 2 for n in nvec):
            raise UserError(f"TokenSpace needs one name per token and every size >= 2, got {list(nvec)}, {names}")
        self.kind = kind
        super().__init__([TokenField(n, tuple(range(int(k)))) for n, k in zip(names, nvec)])

    def build(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return tuple(int(values[f.name]) for f in self.fields)

    def values(self, config: Sequence[int]) -> dict[str, Any]:
        return {f.name: int(v) for f, v in zip(self.fields, config, strict=True)}

    def apply(self, config: tuple[int, ...], recipe: Recipe) -> None:
        recipe.options[self.kind] = config
