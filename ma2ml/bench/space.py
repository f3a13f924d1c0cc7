"""The ``digits`` benchmark's space and budget (task ``digits-bench``) and the numbering of
its pipelines (mixed radix over the agents' concatenated tokens, last token fastest).

The ``digits`` benchmark: an exhaustive table of real training results and its evaluator.

**The space** (task ``digits-bench``, 5,184 pipelines, every module a real agent):

* ``aug`` (2 tokens, 4 x 4): one AutoAugment sub-policy of two operations, each among
  AutoContrast (nearly the identity on digits), Rotate, TranslateY and Cutout, applied with
  probability 0.5 at magnitude level 5;
* ``nas`` (4 tokens, 3^4): a normal cell of two blocks with fixed inputs (block 0 reads
  cells k-2 and k-1, block 1 reads cell k-1 and block 0), each of the four operations among
  sep conv 3x3, dil conv 3x3 and max pool 3x3;
* ``hpo`` (2 tokens, 2 x 2): learning rate in {0.05, 0.2} and batch size in {64, 128}.

**The budget**: one stage of one cell, 16 channels, 4 epochs of SGD (Nesterov momentum 0.9,
weight decay 5e-4, cosine schedule) on the fixed 60 % train split of scikit-learn's digits,
random 1-pixel crops; the FLOPs constraint is the median of the space (144,544 multiply-adds).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.spaces import AugSpace, HParams, HpoSpace, ModuleSpace, NasSpace
from ma2ml.envs.tasks import DEFAULT_GENOTYPE, Task, get_task

TASK_NAME = "digits-bench"
"""The registered task of the benchmark's space and budget."""


EXTRA_FRACTION = 0.1
"""Share of the pipelines trained with extra seeds."""


EXTRA_SEEDS = 2
"""Extra seeds of those pipelines (3 seeds in all)."""


SUBSET_SEED = 20230
"""Seed of the choice of the extra-seed subset and of the build order."""


BENCH_BUDGET = Budget(epochs=4, channels=16, cells_per_stage=1, stages=1, crop_padding=1, flip=False,
                      eval_batch_size=1024)
"""The table's proxy budget: about half a second of one CPU thread per evaluation."""


BENCH_FLOPS_CONSTRAINT = 144_544.0
"""C of the reward: the median FLOPs (multiply-adds) of the space's 81 cells."""


def bench_spaces() -> dict[str, ModuleSpace]:
    """The benchmark's module spaces (see the module docstring)."""
    return {
        "aug": AugSpace(num_sub_policies=1, ops=("AutoContrast", "Rotate", "TranslateY", "Cutout"),
                        probs=(0.5,), magnitudes=(5,)),
        "nas": NasSpace(num_blocks=2, ops=("sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3"), cells=("normal",),
                        fixed_inputs=((0, 1), (1, 2))),
        "hpo": HpoSpace({"lr": (0.05, 0.2), "batch_size": (64, 128)}, base=HParams()),
    }


def bench_task_definition() -> Task:
    """The ``digits-bench`` task (the task registry makes it on first use: :data:`ma2ml.envs.tasks.LAZY_TASKS`)."""
    return Task(
        name=TASK_NAME,
        description="the digits benchmark table's space and budget (5,184 pipelines, 4 epochs, 1 cell)",
        load=get_task("digits").load,
        spaces={agent: (lambda a=agent: bench_spaces()[a]) for agent in ("aug", "nas", "hpo")},
        default_architecture=DEFAULT_GENOTYPE,
        budget=BENCH_BUDGET,
        flops_constraint=BENCH_FLOPS_CONSTRAINT,
    )


def bench_task() -> Task:
    """The registered ``digits-bench`` task."""
    return get_task(TASK_NAME)


# -- pipeline numbering ---------------------------------------------------------------------------
def joint_nvec(spaces: Mapping[str, ModuleSpace]) -> np.ndarray:
    """Sizes of the agents' concatenated tokens."""
    return JointLayout.of_spaces(spaces).nvec


def pipeline_index(spaces: Mapping[str, ModuleSpace], joint: np.ndarray) -> np.ndarray:
    """Pipeline numbers of joint token rows ``(B, T)`` (mixed radix, last token fastest); checked
    (:meth:`~ma2ml.envs.core.layout.JointLayout.index`)."""
    return JointLayout.of_spaces(spaces).index(joint)


def pipeline_tokens(spaces: Mapping[str, ModuleSpace], index: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`pipeline_index` for one pipeline: agent -> tokens."""
    return JointLayout.of_spaces(spaces).tokens_at(index)


def space_fingerprint(spaces: Mapping[str, ModuleSpace], budget: Budget) -> dict[str, Any]:
    """What a table was built for: every agent's fields and choices, and the budget."""
    return {
        "task": TASK_NAME,
        "spaces": {a: {f.name: [str(c) for c in f.choices] for f in s.fields} for a, s in spaces.items()},
        "budget": asdict(budget),
    }


# -- building -------------------------------------------------------------------------------------
def pipeline_seed(index: int, replicate: int) -> int:
    """The training seed of a pipeline's replicate (0 = main entry), derived from its index."""
    state = np.random.SeedSequence([SUBSET_SEED, int(index), int(replicate)]).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def extra_subset(n_pipelines: int) -> np.ndarray:
    """The sorted pipeline indices trained with extra seeds (a fixed random 10 %)."""
    rng = np.random.default_rng(SUBSET_SEED)
    return np.sort(rng.choice(n_pipelines, size=round(EXTRA_FRACTION * n_pipelines), replace=False))
