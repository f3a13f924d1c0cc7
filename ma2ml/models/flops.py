"""Multiply-adds and parameter counts of a model, the FLOPs of the reward (DESIGN §5).

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode`, which counts 2 FLOPs per
multiply-add of convolutions, matrix products and attention; these functions return multiply-adds
(the NAS convention, and what torchvision lists as "GFLOPS"). Element-wise ops, normalization and
pooling are not counted. The forward runs on the meta device: shapes only, no compute, no weights.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode


def count_macs(build: Callable[[], nn.Module], input_shape: Sequence[int]) -> tuple[int, int]:
    """(multiply-adds, parameters) of ``build()`` in eval mode on one input of ``input_shape``.

    ``input_shape`` includes the batch dimension (use 1). The model is built under
    ``torch.device("meta")``, so ``build`` must not pin tensors to another device nor compute on
    tensor values (torchvision's RegNet builders do; build those for real and call
    :func:`count_module_macs`).
    """
    with torch.device("meta"):
        model = build()
    model.eval()
    macs = _forward_macs(lambda x: model(x), torch.empty(tuple(input_shape), device="meta"))
    return macs, _num_params(model)


def count_module_macs(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """(multiply-adds, parameters) of an existing module in eval mode, left as it was found.

    The forward runs on meta copies of the parameters and buffers (``torch.func.functional_call``);
    if the module cannot run on meta (data-dependent control flow, tensors that are not registered
    buffers), it falls back to a real forward on zeros under ``torch.no_grad()``.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        meta_state = {name: torch.empty_like(t, device="meta")
                      for name, t in (*model.named_parameters(), *model.named_buffers())}
        try:
            macs = _forward_macs(lambda x: functional_call(model, meta_state, (x,)),
                                 torch.empty(tuple(input_shape), device="meta"))
        except RuntimeError:
            reference = next((p for p in model.parameters() if p.is_floating_point()), None)
            x = torch.zeros(tuple(input_shape),
                            device=reference.device if reference is not None else None,
                            dtype=reference.dtype if reference is not None else None)
            macs = _forward_macs(model, x)
    finally:
        for module, training in modes.items():
            module.training = training
    return macs, _num_params(model)


def _forward_macs(forward: Callable[[Tensor], object], x: Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        forward(x)
    return counter.get_total_flops() // 2


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
