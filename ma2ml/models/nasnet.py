"""NASNet-style cell networks built from a genotype (the NAS space for CIFAR and small images).

A :class:`Genotype` fixes two cells, *normal* and *reduce*, each a sequence of B blocks. Block j
reads two nodes, 0 = output of cell k-2, 1 = output of cell k-1, 2+i = block i of the same cell
(i < j), applies one operation from :data:`NAS_OPS` to each and sums the two results. The cell
output is the channel concatenation of the blocks that no later block reads (NASNet, Zoph et al.
2018), so the cell width is (number of such blocks) x C.

:class:`NASNetwork` is the NASNet/DARTS skeleton: a 3x3 conv stem, ``stages`` stages of
``cells_per_stage`` normal cells with one reduction cell between consecutive stages (stride 2 on
the operations that read the cell inputs, C doubled), then global average pooling, dropout and a
linear classifier. Operations and cell preprocessing are those of DARTS (Liu et al. 2019); drop
path follows DARTS too and can be scheduled by assigning ``network.drop_path`` between epochs.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ma2ml.envs.core.errors import UserError

NAS_OPS: tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                            "max_pool_3x3", "avg_pool_3x3", "identity")
"""Operation names, in the token order of the NAS agent."""

NUM_CELL_INPUTS = 2
"""Nodes 0 and 1 of every cell are the outputs of cells k-2 and k-1."""

KERNELS = 2
"""The generation of the cells' kernels: raised when the computation changes its floats but not its function
(2, December 2026: dilated convolutions without dilation, format-preserving pixel picks; 1 before). Table builds
record it (``ma2ml.bench.results.build_platform``): entries retrain bit for bit only on the same generation."""


@dataclass(frozen=True)
class Block:
    """One block of a cell: ``NAS_OPS[ops[0]](node inputs[0]) + NAS_OPS[ops[1]](node inputs[1])``.

    Node 0 = output of cell k-2, 1 = output of cell k-1, 2+j = block j of the same cell.
    Any integer-like values (numpy integers included) are stored as Python ints.
    """

    inputs: tuple[int, int]
    ops: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(operator.index(i) for i in self.inputs))
        object.__setattr__(self, "ops", tuple(operator.index(o) for o in self.ops))


@dataclass(frozen=True)
class Genotype:
    """The two cells of a NASNet-style network. Build one freely; :meth:`validate` checks it."""

    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", tuple(self.normal))
        object.__setattr__(self, "reduce", tuple(self.reduce))

    def cells(self) -> tuple[tuple[str, tuple[Block, ...]], ...]:
        """``(("normal", blocks), ("reduce", blocks))``."""
        return (("normal", self.normal), ("reduce", self.reduce))

    def validate(self) -> None:
        """Raise ValueError naming the first bad cell or block."""
        for name, blocks in self.cells():
            _validate_cell(name, blocks)

    def to_dict(self) -> dict[str, list[dict[str, list[Any]]]]:
        """JSON-friendly form, ops as names: ``{"normal": [{"inputs": [0, 1], "ops": [...]}, ...], ...}``."""
        self.validate()
        return {name: [{"inputs": list(b.inputs), "ops": [NAS_OPS[o] for o in b.ops]} for b in blocks]
                for name, blocks in self.cells()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[Mapping[str, Sequence[Any]]]]) -> Genotype:
        """Inverse of :meth:`to_dict`; raises ValueError on unknown op names or an invalid genotype."""
        cells = {}
        for name in ("normal", "reduce"):
            blocks = []
            for j, block in enumerate(data[name]):
                unknown = [op for op in block["ops"] if op not in NAS_OPS]
                if unknown:
                    raise UserError(f"{name} cell block {j}: unknown op(s) {unknown}; valid ops are {NAS_OPS}")
                blocks.append(Block(tuple(block["inputs"]), tuple(NAS_OPS.index(op) for op in block["ops"])))
            cells[name] = tuple(blocks)
        genotype = cls(**cells)
        genotype.validate()
        return genotype

    def __str__(self) -> str:
        lines = []
        for name, blocks in self.cells():
            lines.append(f"{name} cell:")
            for j, block in enumerate(blocks):
                terms = [f"{_op_name(op)}({_node_name(node)})" for node, op in zip(block.inputs, block.ops)]
                lines.append(f"  b{j} = {' + '.join(terms)}")
            lines.append(f"  out = concat({', '.join(f'b{j}' for j in output_blocks(blocks))})")
        return "\n".join(lines)


def output_blocks(blocks: Sequence[Block]) -> tuple[int, ...]:
    """Indices of the blocks that no later block reads: the ones a cell concatenates."""
    read = {node - NUM_CELL_INPUTS for block in blocks for node in block.inputs}
    return tuple(j for j in range(len(blocks)) if j not in read)


def _validate_cell(name: str, blocks: Sequence[Block]) -> None:
    if not blocks:
        raise UserError(f"{name} cell has no blocks; a cell needs at least one block")
    for j, block in enumerate(blocks):
        if len(block.inputs) != 2 or len(block.ops) != 2:
            raise UserError(f"{name} cell block {j}: needs exactly 2 inputs and 2 ops, "
                             f"got inputs={block.inputs}, ops={block.ops}")
        for node in block.inputs:
            if not 0 <= node < NUM_CELL_INPUTS + j:
                raise UserError(f"{name} cell block {j}: input node {node} is out of range; valid nodes are "
                                 f"0..{NUM_CELL_INPUTS + j - 1} (0 = cell k-2, 1 = cell k-1, 2+i = block i < {j})")
        for op in block.ops:
            if not 0 <= op < len(NAS_OPS):
                raise UserError(f"{name} cell block {j}: op index {op} is out of range; valid op indices are "
                                 f"0..{len(NAS_OPS) - 1} {NAS_OPS}")


def _node_name(node: int) -> str:
    return ("k-2", "k-1")[node] if 0 <= node < NUM_CELL_INPUTS else f"b{node - NUM_CELL_INPUTS}"


def _op_name(op: int) -> str:
    return NAS_OPS[op] if 0 <= op < len(NAS_OPS) else f"<op {op}>"


def _layout(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        else torch.contiguous_format


def _empty(shape: Sequence[int], like: Tensor, layout: torch.memory_format) -> Tensor:
    return torch.empty(tuple(shape), dtype=like.dtype, device=like.device, memory_format=layout)


class _Pixels(torch.autograd.Function):
    """``x[..., start::step, start::step]`` copied in ``x``'s memory format, its gradient in that format too.

    Indexing's own backward scatters into a contiguous (NCHW) zero tensor; next to channels-last
    activations that mixes formats, and every elementwise op that meets both (ReLU's backward
    most) runs up to 30x slower on CPU.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, start: int, step: int) -> Tensor:
        ctx.shape, ctx.layout, ctx.start, ctx.step = x.shape, _layout(x), start, step
        return x[..., start::step, start::step].contiguous(memory_format=ctx.layout)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        out = _empty(ctx.shape, grad, ctx.layout).zero_()
        out[..., ctx.start::ctx.step, ctx.start::ctx.step] = grad
        return out, None, None


def _to_phases(x: Tensor, d: int, layout: torch.memory_format) -> Tensor:
    """(n, c, h, w) -> (n*d*d, c, h/d, w/d): the d x d polyphase components stacked in the batch."""
    n, c, h, w = x.shape
    out = _empty((n * d * d, c, h // d, w // d), x, layout)
    out.view(n, d, d, c, h // d, w // d).copy_(x.view(n, c, h // d, d, w // d, d).permute(0, 3, 5, 1, 2, 4))
    return out


def _from_phases(y: Tensor, d: int, layout: torch.memory_format) -> Tensor:
    """The inverse of :func:`_to_phases`."""
    nd, c, hd, wd = y.shape
    n = nd // (d * d)
    out = _empty((n, c, hd * d, wd * d), y, layout)
    out.view(n, c, hd, d, wd, d).permute(0, 3, 5, 1, 2, 4).copy_(y.view(n, d, d, c, hd, wd))
    return out


class _Phases(torch.autograd.Function):
    """:func:`_to_phases` (``inverse=False``) or :func:`_from_phases`, each the other's gradient, in the
    input's memory format (the input must be contiguous in it)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, d: int, inverse: bool) -> Tensor:
        ctx.d, ctx.inverse, ctx.layout = d, inverse, _layout(x)
        return (_from_phases if inverse else _to_phases)(x, d, ctx.layout)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        grad = grad.contiguous(memory_format=ctx.layout)
        return (_to_phases if ctx.inverse else _from_phases)(grad, ctx.d, ctx.layout), None, None


class _ReLUConvBN(nn.Sequential):
    """ReLU, 1x1 conv, BN: brings a cell input to C channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class _FactorizedReduce(nn.Module):
    """Halves height and width: two 1x1 stride-2 convs, the second one pixel off, concatenated, BN.

    Output size is ceil(H/2) x ceil(W/2), the same as the stride-2 3x3 ops, for odd sizes too. Both
    convs read every second pixel, so they pick those pixels first and run with stride 1 (the same
    function and weights, without copying the whole input into a padded one).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        a = self.conv_a(_Pixels.apply(x, 0, 2))
        shifted = _Pixels.apply(x, 1, 2)  # on an odd side the shift's last row (column) is the zero padding
        if shifted.shape[-2:] != a.shape[-2:]:
            shifted = F.pad(shifted, (0, a.shape[-1] - shifted.shape[-1], 0, a.shape[-2] - shifted.shape[-2]))
        return self.bn(torch.cat([a, self.conv_b(shifted)], dim=1))


class _SepConv(nn.Sequential):
    """DARTS separable conv: (ReLU, depthwise kxk, pointwise 1x1, BN) twice, stride on the first."""

    def __init__(self, c: int, kernel: int, stride: int) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(), nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
            nn.ReLU(), nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class DilatedDepthwiseConv2d(nn.Conv2d):
    """A depthwise conv with dilation d and "same" padding d(k-1)/2, computed without dilation.

    Same function, same weight (an ``nn.Conv2d`` in every respect but the kernel it calls), so
    the multiply-adds counted and the state dict do not change. CPU kernels for small dilated
    depthwise convolutions are slow, the strided ones in channels-last most of all
    (``benchmarks/bench_depthwise.py``), and two identities avoid them:

    * stride d: every tap of an output pixel reads an input pixel at a multiple of d, so the
      result is a plain k x k conv, padding (k-1)/2, of the input's every d-th row and column;
    * stride 1, height and width multiples of d: the d x d polyphase components of the input
      are independent, so the result is one plain conv of the components stacked in the batch,
      interleaved back. Its two copies cost more than they save unless the dilated kernel spans
      the map (d(k-1)+1 >= the smaller side: most taps read padding, where the dilated kernel is
      slowest), so only then.

    Other shapes run the dilated kernel itself. The kernel must be odd (the "same" padding needs
    it). Outputs are equal, gradients equal up to float summation order (``tests/test_nasnet.py``).
    """

    def __init__(self, channels: int, kernel: int, stride: int, dilation: int) -> None:
        if kernel % 2 == 0:
            raise UserError(f"DilatedDepthwiseConv2d needs an odd kernel for its 'same' padding, got {kernel}")
        super().__init__(channels, channels, kernel, stride, dilation * (kernel - 1) // 2, dilation=dilation,
                         groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        (d, _), (stride, _), (k, _) = self.dilation, self.stride, self.kernel_size
        if d == 1 or x.dim() != 4:
            return super().forward(x)
        plain = (k - 1) // 2
        if stride == d:
            return F.conv2d(_Pixels.apply(x, 0, d), self.weight, None, 1, plain, 1, self.groups)
        h, w = x.shape[-2:]
        if stride == 1 and h % d == 0 and w % d == 0 and d * (k - 1) + 1 >= min(h, w):
            if not x.is_contiguous(memory_format=_layout(x)):
                x = x.contiguous()
            out = F.conv2d(_Phases.apply(x, d, False), self.weight, None, 1, plain, 1, self.groups)
            return _Phases.apply(out, d, True)
        return super().forward(x)


class _DilConv(nn.Sequential):
    """DARTS dilated conv: ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN."""

    def __init__(self, c: int, kernel: int, stride: int, dilation: int = 2) -> None:
        super().__init__(nn.ReLU(), DilatedDepthwiseConv2d(c, kernel, stride, dilation),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


_OP_FACTORIES: dict[str, Callable[[int, int], nn.Module]] = {
    "sep_conv_3x3": lambda c, stride: _SepConv(c, 3, stride),
    "sep_conv_5x5": lambda c, stride: _SepConv(c, 5, stride),
    "dil_conv_3x3": lambda c, stride: _DilConv(c, 3, stride),
    "dil_conv_5x5": lambda c, stride: _DilConv(c, 5, stride),
    "max_pool_3x3": lambda c, stride: nn.MaxPool2d(3, stride, padding=1),
    "avg_pool_3x3": lambda c, stride: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False),
    "identity": lambda c, stride: nn.Identity() if stride == 1 else _FactorizedReduce(c, c),
}


def _drop_path(x: Tensor, drop_prob: float) -> Tensor:
    """Zero whole samples with probability drop_prob and rescale the rest by 1/keep."""
    keep = 1.0 - drop_prob
    mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
    return x * mask / keep


class _Cell(nn.Module):
    def __init__(self, blocks: Sequence[Block], c_pp: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = _FactorizedReduce(c_pp, c) if reduction_prev else _ReLUConvBN(c_pp, c)
        self.preprocess1 = _ReLUConvBN(c_prev, c)
        self.inputs = [block.inputs for block in blocks]
        self.ops = nn.ModuleList(
            _OP_FACTORIES[NAS_OPS[op]](c, 2 if reduction and node < NUM_CELL_INPUTS else 1)
            for block in blocks for node, op in zip(block.inputs, block.ops))
        self.concat = output_blocks(blocks)
        self.out_channels = len(self.concat) * c

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float) -> Tensor:
        nodes = [self.preprocess0(s0), self.preprocess1(s1)]
        for j, inputs in enumerate(self.inputs):
            branches = []
            for k, node in enumerate(inputs):
                op = self.ops[2 * j + k]
                out = op(nodes[node])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    out = _drop_path(out, drop_prob)
                branches.append(out)
            nodes.append(branches[0] + branches[1])
        return torch.cat([nodes[NUM_CELL_INPUTS + j] for j in self.concat], dim=1)


class NASNetwork(nn.Module):
    """Image classifier built from a genotype; ``forward`` maps (N, in_channels, H, W) to logits.

    Args:
        genotype: the normal and reduction cells; validated here (ValueError when invalid).
        in_channels, num_classes: input image channels and number of logits.
        channels: C of the first stage; doubled at each reduction cell.
        cells_per_stage: normal cells per stage (N in NASNet).
        stages: stages of normal cells; a reduction cell sits between consecutive ones, so
            height and width shrink by 2 ** (stages - 1) (rounded up).
        stem_multiplier: the stem conv outputs stem_multiplier * channels channels.
        drop_path: per-sample drop-path probability on every non-identity op output, in
            training only; the attribute of the same name may be reassigned to schedule it.
        dropout: dropout probability before the classifier.
    """

    def __init__(self, genotype: Genotype, in_channels: int, num_classes: int, channels: int = 16,
                 cells_per_stage: int = 1, stages: int = 3, stem_multiplier: int = 1,
                 drop_path: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        genotype.validate()
        for name, value, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 1),
                                 ("channels", channels, 2), ("cells_per_stage", cells_per_stage, 1),
                                 ("stages", stages, 1), ("stem_multiplier", stem_multiplier, 1)):
            if value < low:
                raise UserError(f"{name} must be >= {low}, got {value}")
        for name, prob in (("drop_path", drop_path), ("dropout", dropout)):
            if not 0.0 <= prob < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {prob}")
        self.genotype = genotype
        self.drop_path = drop_path

        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_prev, c = c_stem, c_stem, channels
        reduction_prev = False
        self.cells = nn.ModuleList()
        for stage in range(stages):
            for i in range(cells_per_stage + (stage > 0)):
                reduction = stage > 0 and i == 0
                if reduction:
                    c *= 2
                cell = _Cell(genotype.reduce if reduction else genotype.normal,
                             c_pp, c_prev, c, reduction, reduction_prev)
                self.cells.append(cell)
                c_pp, c_prev, reduction_prev = c_prev, cell.out_channels, reduction
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path)
        return self.classifier(self.dropout(self.global_pool(s1).flatten(1)))
