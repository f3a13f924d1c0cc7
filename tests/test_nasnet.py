"""NASNetwork: shapes, gradients, drop path, genotype validation, meta construction, serialization."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ma2ml.models.flops import count_macs, count_module_macs
from ma2ml.models.nasnet import NAS_OPS, Block, DilatedDepthwiseConv2d, Genotype, NASNetwork, output_blocks

SEP3, SEP5, DIL3, DIL5, MAX, AVG, IDENTITY = range(len(NAS_OPS))

# Every op reads both a cell input (stride 2 in the reduction cell) and a block output.
ALL_OPS = Genotype(
    normal=(Block((0, 1), (SEP3, IDENTITY)), Block((1, 2), (SEP5, MAX)), Block((0, 2), (DIL3, AVG)),
            Block((3, 1), (DIL5, IDENTITY))),
    reduce=(Block((0, 1), (MAX, IDENTITY)), Block((2, 1), (SEP3, AVG)), Block((2, 3), (IDENTITY, SEP5)),
            Block((4, 0), (DIL3, DIL5)), Block((2, 3), (MAX, AVG))),
)
CHAIN = Genotype(  # one output block per cell
    normal=(Block((0, 1), (SEP3, SEP3)), Block((2, 2), (IDENTITY, AVG))),
    reduce=(Block((1, 1), (IDENTITY, MAX)), Block((2, 0), (DIL3, IDENTITY))),
)


def random_genotype(num_blocks: int, seed: int) -> Genotype:
    rng = np.random.default_rng(seed)

    def cell() -> tuple[Block, ...]:
        return tuple(Block(tuple(rng.integers(0, 2 + j, size=2)), tuple(rng.integers(0, len(NAS_OPS), size=2)))
                     for j in range(num_blocks))

    return Genotype(normal=cell(), reduce=cell())


GENOTYPES = [ALL_OPS, CHAIN] + [random_genotype(b, seed=b) for b in (2, 3, 4, 5)]


@pytest.mark.parametrize("genotype", GENOTYPES, ids=lambda g: f"B{len(g.normal)}-{len(g.reduce)}")
@pytest.mark.parametrize("shape, stages", [((2, 1, 8, 8), 2), ((2, 1, 8, 8), 3), ((2, 3, 32, 32), 3)])
def test_forward_shape(genotype: Genotype, shape: tuple[int, ...], stages: int) -> None:
    net = NASNetwork(genotype, in_channels=shape[1], num_classes=10, channels=4, stages=stages)
    assert net(torch.randn(shape)).shape == (shape[0], 10)


@pytest.mark.parametrize("shape, stages", [((2, 3, 7, 7), 3), ((2, 1, 8, 8), 4)])
def test_odd_and_one_pixel_feature_maps(shape: tuple[int, ...], stages: int) -> None:
    net = NASNetwork(ALL_OPS, in_channels=shape[1], num_classes=3, channels=4, stages=stages, cells_per_stage=2)
    assert net(torch.randn(shape)).shape == (shape[0], 3)


def test_backward_reaches_every_parameter() -> None:
    net = NASNetwork(ALL_OPS, in_channels=3, num_classes=10, channels=4, stem_multiplier=3, drop_path=0.2, dropout=0.1)
    net(torch.randn(2, 3, 32, 32)).logsumexp(dim=1).sum().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_cell_widths_follow_unused_blocks() -> None:
    assert output_blocks(ALL_OPS.normal) == (2, 3)
    assert output_blocks(ALL_OPS.reduce) == (3, 4)
    assert output_blocks(CHAIN.normal) == (1,)
    net = NASNetwork(ALL_OPS, in_channels=1, num_classes=10, channels=4, stages=2)
    assert net.classifier.in_features == 2 * 8  # last normal cell: 2 output blocks x C = 8


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    net = NASNetwork(ALL_OPS, in_channels=1, num_classes=10, channels=4, drop_path=0.5)
    x = torch.randn(4, 1, 8, 8)

    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        with torch.no_grad():
            return net(x)

    assert not torch.allclose(run(1), run(2))
    net.eval()
    assert torch.equal(run(1), run(2))
    net.drop_path = 0.0
    assert torch.equal(run(1), run(3))
    net.train()
    assert torch.equal(run(1), run(2))


def test_deterministic_given_seed() -> None:
    def build() -> NASNetwork:
        torch.manual_seed(7)
        return NASNetwork(ALL_OPS, in_channels=3, num_classes=10, channels=4)

    a, b = build(), build()
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name


@pytest.mark.parametrize("normal, reduce, message", [
    ((Block((0, 2), (SEP3, SEP3)),), CHAIN.reduce, r"normal cell block 0: input node 2 .* valid nodes are 0\.\.1"),
    (CHAIN.normal, (Block((0, 1), (SEP3, SEP3)), Block((0, 3), (SEP3, SEP3))),
     r"reduce cell block 1: input node 3 .* valid nodes are 0\.\.2"),
    ((Block((-1, 0), (SEP3, SEP3)),), CHAIN.reduce, r"normal cell block 0: input node -1"),
    ((Block((0, 1), (SEP3, len(NAS_OPS))),), CHAIN.reduce, r"normal cell block 0: op index 7 .* 0\.\.6"),
    (CHAIN.normal, (Block((0, 1), (-1, SEP3)),), r"reduce cell block 0: op index -1"),
    (CHAIN.normal, (), r"reduce cell has no blocks"),
    ((Block((0, 1, 1), (SEP3, SEP3)),), CHAIN.reduce, r"normal cell block 0: needs exactly 2 inputs"),
])
def test_invalid_genotype_raises(normal: tuple[Block, ...], reduce: tuple[Block, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NASNetwork(Genotype(normal, reduce), in_channels=1, num_classes=10)


@pytest.mark.parametrize("kwargs", [{"channels": 1}, {"stages": 0}, {"cells_per_stage": 0}, {"drop_path": 1.0},
                                    {"dropout": -0.1}])
def test_invalid_skeleton_raises(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        NASNetwork(CHAIN, in_channels=1, num_classes=10, **kwargs)


def test_meta_construction_and_macs_grow_with_channels() -> None:
    with torch.device("meta"):
        net = NASNetwork(ALL_OPS, in_channels=3, num_classes=10, channels=8)
    assert all(t.is_meta for t in (*net.parameters(), *net.buffers()))

    counts = [count_macs(lambda c=c: NASNetwork(ALL_OPS, 3, 10, channels=c), (1, 3, 32, 32)) for c in (4, 8, 16)]
    macs = [m for m, _ in counts]
    params = [p for _, p in counts]
    assert macs[0] < macs[1] < macs[2]
    assert params[0] < params[1] < params[2]
    real = NASNetwork(ALL_OPS, 3, 10, channels=16)
    assert count_module_macs(real, (1, 3, 32, 32)) == counts[2]
    assert params[2] == sum(p.numel() for p in real.parameters())


def test_genotype_dict_round_trip() -> None:
    for genotype in GENOTYPES:
        data = json.loads(json.dumps(genotype.to_dict()))
        assert Genotype.from_dict(data) == genotype
    assert ALL_OPS.to_dict()["normal"][0] == {"inputs": [0, 1], "ops": ["sep_conv_3x3", "identity"]}


def test_from_dict_rejects_unknown_op() -> None:
    data = CHAIN.to_dict()
    data["normal"][0]["ops"][1] = "conv_7x7"
    with pytest.raises(ValueError, match="normal cell block 0: unknown op.*conv_7x7"):
        Genotype.from_dict(data)


def test_str_is_readable() -> None:
    assert str(CHAIN) == (
        "normal cell:\n"
        "  b0 = sep_conv_3x3(k-2) + sep_conv_3x3(k-1)\n"
        "  b1 = identity(b0) + avg_pool_3x3(b0)\n"
        "  out = concat(b1)\n"
        "reduce cell:\n"
        "  b0 = identity(k-1) + max_pool_3x3(k-1)\n"
        "  b1 = dil_conv_3x3(b0) + identity(k-2)\n"
        "  out = concat(b1)")


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(8, 8), (4, 4), (7, 7), (6, 5), (2, 3), (1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_dilated_depthwise_conv_is_the_dilated_conv(kernel: int, stride: int, size: tuple[int, int],
                                                    channels_last: bool) -> None:
    """The rewritten forms (every d-th pixel for stride d, polyphase for stride 1) compute the dilated conv:
    the same output and, up to float summation order, the same gradients, in the input's memory format."""
    torch.manual_seed(kernel * 10 + stride)
    conv = DilatedDepthwiseConv2d(6, kernel, stride, dilation=2)
    x = torch.randn(3, 6, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = conv(x)
    reference = torch.nn.functional.conv2d(x, conv.weight, None, stride, kernel - 1, 2, 6)
    assert out.shape == reference.shape
    torch.testing.assert_close(out, reference, rtol=1e-6, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, conv.weight), grad)
    want = torch.autograd.grad(reference, (x, conv.weight), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    # the input's gradient keeps its memory format: mixed formats make CPU elementwise ops up to 30x slower
    assert got[0].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_dilated_depthwise_conv_counts_and_saves_like_a_conv() -> None:
    """Same multiply-adds as the dilated kernel (counted on meta), same state dict, one clear error on even kernels."""
    for stride in (1, 2):
        conv = DilatedDepthwiseConv2d(8, 5, stride, dilation=2)
        plain = torch.nn.Conv2d(8, 8, 5, stride, 4, dilation=2, groups=8, bias=False)
        assert count_module_macs(conv, (1, 8, 8, 8)) == count_module_macs(plain, (1, 8, 8, 8))
        assert conv.state_dict().keys() == plain.state_dict().keys()
    with pytest.raises(ValueError, match="needs an odd kernel .* got 4"):
        DilatedDepthwiseConv2d(8, 4, 1, dilation=2)


@pytest.mark.parametrize("size", [(8, 8), (7, 7), (6, 5), (1, 1), (2, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_factorized_reduce_is_the_shifted_pair_of_strided_convs(size: tuple[int, int], channels_last: bool) -> None:
    """The DARTS definition (the second conv reads the input shifted by one pixel, zero-padded) on every side,
    gradients included, the input's gradient in the input's memory format."""
    from ma2ml.models.nasnet import _FactorizedReduce

    torch.manual_seed(0)
    reduce = _FactorizedReduce(4, 6).eval()
    x = torch.randn(2, 4, *size)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=layout).requires_grad_()
    out = reduce(x)
    r = torch.relu(x)
    shifted = torch.nn.functional.pad(r, (0, 1, 0, 1))[:, :, 1:, 1:]
    conv = torch.nn.functional.conv2d
    want = reduce.bn(torch.cat([conv(r, reduce.conv_a.weight, stride=2), conv(shifted, reduce.conv_b.weight, stride=2)],
                               dim=1))
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    grad = torch.randn_like(out)
    inputs = (x, reduce.conv_a.weight, reduce.conv_b.weight)
    got, expected = torch.autograd.grad(out, inputs, grad), torch.autograd.grad(want, inputs, grad)
    for g, w in zip(got, expected):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    assert got[0].is_contiguous(memory_format=layout)
