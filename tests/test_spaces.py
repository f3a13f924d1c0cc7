"""Module search spaces: layouts, decode/encode round-trips, clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ma2ml.models.augment import AUG_OPS
from ma2ml.models.nasnet import NAS_OPS
from ma2ml.envs.spaces import AugSpace, HParams, HpoSpace, NasSpace, TokenSpace


@pytest.mark.parametrize("space", [AugSpace(), AugSpace(num_sub_policies=1, ops=("Rotate", "Invert")),
                                   NasSpace(), NasSpace(num_blocks=2, cells=("normal",)),
                                   NasSpace(num_blocks=2, ops=NAS_OPS[:3], fixed_inputs=((0, 1), (1, 2))),
                                   HpoSpace(), HpoSpace({"lr": (0.01, 0.1), "batch_size": (32, 64)}),
                                   TokenSpace([3, 4])])
def test_round_trip(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens = space.sample(rng)
        assert np.array_equal(space.encode(space.decode(tokens)), tokens)
        assert isinstance(space.describe(space.decode(tokens)), str)
    assert space.action_space().nvec.tolist() == space.nvec.tolist()
    assert space.size == math.prod(int(n) for n in space.nvec)


def test_aug_layout_matches_autoaugment():
    space = AugSpace()
    assert space.nvec.tolist() == [16, 11, 10] * 10
    policy = space.decode(np.zeros(30, dtype=int))
    assert len(policy.sub_policies) == 5 and policy.sub_policies[0][0].op == AUG_OPS[0]
    assert policy.as_tensor().shape == (5, 2, 3)


def test_nas_layout_and_fixed_inputs():
    space = NasSpace(num_blocks=3)
    # per cell: block b has two inputs among 2+b nodes and two of 7 ops
    assert space.nvec.tolist() == [2, 2, 7, 7, 3, 3, 7, 7, 4, 4, 7, 7] * 2
    fixed = NasSpace(num_blocks=2, ops=NAS_OPS[:4], cells=("normal",), fixed_inputs=((0, 1), (1, 2)))
    assert fixed.nvec.tolist() == [4, 4, 4, 4]
    geno = fixed.decode([0, 1, 2, 3])
    assert geno.normal == geno.reduce and geno.normal[1].inputs == (1, 2)


def test_hpo_levels_and_constants():
    space = HpoSpace({"lr": (0.01, 0.1), "momentum": (0.9,)})
    assert space.token_names == ("lr",)
    hp = space.decode([1])
    assert hp == HParams(lr=0.1)
    with pytest.raises(ValueError, match="lr = 0.5 is not in the space; valid values are \\[0.01, 0.1\\]"):
        space.encode(HParams(lr=0.5))
    with pytest.raises(ValueError, match="unknown hyper-parameters \\['nope'\\]"):
        HpoSpace({"nope": (1, 2)})


def test_invalid_tokens_name_agent_position_and_range():
    space = HpoSpace()
    with pytest.raises(ValueError, match=r"agent 'hpo': token 0 \(lr\) = 7 is out of range; valid values are 0..4"):
        space.decode([7, 0, 0, 0, 0, 0], agent="hpo")
    with pytest.raises(ValueError, match="expected 6 tokens"):
        space.decode([0, 0])
    with pytest.raises(ValueError, match="integers"):
        space.decode([0.5, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="unknown augmentation ops"):
        AugSpace(ops=("Blur",))
    with pytest.raises(ValueError, match="unknown NAS ops"):
        NasSpace(ops=("conv_7x7",))
