"""The networks of the paper: exact sizes, Table 1's compute, torchvision equivalence, shortcuts, bad input."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from resnet_repro.models import CifarResNet, ImageNetResNet, Projection, ZeroPadShortcut


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Sec. 4.2 / Table 6, counted exactly (the docstring table of models/cifar.py)
CIFAR_PARAMS = {
    20: (269_722, 272_474, 283_962),
    32: (464_154, 466_906, 489_594),
    44: (658_586, 661_338, 695_226),
    56: (853_018, 855_770, 900_858),
    110: (1_727_962, 1_730_714, 1_826_202),
    1202: (19_421_274, 19_424_026, 20_538_714),
}


@pytest.mark.parametrize("depth", sorted(CIFAR_PARAMS))
def test_cifar_parameter_counts(depth: int) -> None:
    a, b, c = CIFAR_PARAMS[depth]
    assert n_params(CifarResNet(depth, shortcut="A")) == a
    assert n_params(CifarResNet(depth, residual=False)) == a  # plain nets equal option A
    assert n_params(CifarResNet(depth, shortcut="B")) == b == a + 2_752
    assert n_params(CifarResNet(depth, shortcut="C")) == c


def test_cifar_docstring_table_matches_counts() -> None:
    from resnet_repro.models import cifar

    for depth, counts in CIFAR_PARAMS.items():
        row = next(line for line in cifar.__doc__.splitlines() if line.strip().startswith(f"{depth} "))
        assert [f"{c:,}" for c in counts] == row.split()[2:5]


IMAGENET_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
TABLE1_GMACS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


@pytest.mark.parametrize("depth", sorted(IMAGENET_PARAMS))
def test_imagenet_parameter_counts_equal_torchvision(depth: int) -> None:
    assert n_params(ImageNetResNet(depth, shortcut="B")) == IMAGENET_PARAMS[depth]
    assert n_params(ImageNetResNet(depth, shortcut="B", stride_in_1x1=False)) == IMAGENET_PARAMS[depth]


def test_plain34_equals_resnet34_a() -> None:
    assert n_params(ImageNetResNet(34, residual=False)) == n_params(ImageNetResNet(34, shortcut="A"))


@pytest.mark.parametrize("depth", sorted(TABLE1_GMACS))
def test_imagenet_macs_match_table1(depth: int) -> None:
    model = ImageNetResNet(depth, stride_in_1x1=True).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    gmacs = counter.get_total_flops() / 2 / 1e9  # the counter reports 2 FLOPs per multiply-add
    assert gmacs == pytest.approx(TABLE1_GMACS[depth], rel=0.05)


def test_stride_placement_changes_compute_not_size() -> None:
    def gmacs(model: torch.nn.Module) -> float:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.randn(1, 3, 224, 224))
        return counter.get_total_flops() / 2e9

    v1, v15 = ImageNetResNet(50, stride_in_1x1=True), ImageNetResNet(50, stride_in_1x1=False)
    assert gmacs(v15) == pytest.approx(4.09, rel=0.01)  # torchvision's documented 4.09 GFLOPS
    assert gmacs(v1) < gmacs(v15)
    assert v1.layer2[0].conv1.stride == (2, 2) and v15.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_loads_torchvision_weights_and_matches_outputs(depth: int) -> None:
    torch.manual_seed(depth)
    reference = getattr(torchvision.models, f"resnet{depth}")().eval()
    ours = ImageNetResNet(depth, shortcut="B", stride_in_1x1=False).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


CASES = [(CifarResNet, d, s, r) for d in (8, 20) for s in "ABC" for r in (True, False)] + [
    (ImageNetResNet, d, s, r) for d in (18, 50) for s in "ABC" for r in (True, False)
]


@pytest.mark.parametrize(("cls", "depth", "shortcut", "residual"), CASES)
def test_forward_backward_shapes(cls: type, depth: int, shortcut: str, residual: bool) -> None:
    model = cls(depth, residual=residual, shortcut=shortcut, num_classes=7)
    x = torch.randn(2, 3, 32, 32) if cls is CifarResNet else torch.randn(2, 3, 64, 64)
    features = model.forward_features(x)
    if cls is CifarResNet:
        assert features.shape == (2, 64, 8, 8)
    else:
        assert features.shape == (2, 512 * (4 if depth >= 50 else 1), 2, 2)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_plain_block_adds_no_shortcut() -> None:
    """Zero the last BN of every block: a plain block then outputs relu(0) = 0, a residual one relu(x) = x."""
    x = torch.relu(torch.randn(2, 16, 32, 32))
    for residual in (False, True):
        model = CifarResNet(20, residual=residual, zero_init_residual=True)
        block = model.layer1[0].eval()
        if not residual:
            torch.nn.init.zeros_(block.bn2.weight)
        with torch.no_grad():
            out = block(x)
        expected = x if residual else torch.zeros_like(x)
        torch.testing.assert_close(out, expected)
    plain = CifarResNet(56, residual=False)
    assert not any(isinstance(m, ZeroPadShortcut | Projection) for m in plain.modules())


def test_shortcut_modules_per_option() -> None:
    a, b, c = (CifarResNet(20, shortcut=s) for s in "ABC")
    assert [type(blk.downsample) for blk in a.layer2] == [ZeroPadShortcut, type(None), type(None)]
    assert [type(blk.downsample) for blk in b.layer2] == [Projection, type(None), type(None)]
    assert all(isinstance(blk.downsample, Projection) for stage in c.stages() for blk in stage)


def test_option_a_pads_zero_channels_and_subsamples() -> None:
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 32, 32)
    y = shortcut(x)
    assert y.shape == (2, 32, 16, 16)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_models_pickle_and_deepcopy() -> None:
    for model in (CifarResNet(20, shortcut="A"), ImageNetResNet(18, shortcut="A")):
        clone = pickle.loads(pickle.dumps(model))
        assert n_params(clone) == n_params(copy.deepcopy(model))


def test_fig7_responses_reachable_by_hooks() -> None:
    model = CifarResNet(20).eval()
    layers = model.response_layers()
    assert len(layers) == 19  # the stem and 2 per block: every 3x3 layer of the 20 weighted layers but the fc
    assert layers[1][0] == "layer1.0.bn1" and layers[-1][0] == "layer3.2.bn2"
    seen = []
    handles = [bn.register_forward_hook(lambda m, i, o: seen.append(o.clone())) for _, bn in layers]
    model(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    assert len(seen) == 19
    assert (seen[2] < 0).any()  # before the ReLU: the response keeps its negative values


def test_he_init_and_zero_init_residual() -> None:
    model = CifarResNet(20)
    conv = model.layer3[1].conv1.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert conv.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)
    assert all(torch.all(bn.weight == 1) for _, bn in model.response_layers())
    zeroed = CifarResNet(20, zero_init_residual=True)
    assert all(torch.all(blk.bn2.weight == 0) for stage in zeroed.stages() for blk in stage)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: CifarResNet(21), r"6n\+2"),
        (lambda: CifarResNet(2), r"6n\+2"),
        (lambda: ImageNetResNet(20), r"\[18, 34, 50, 101, 152\]"),
        (lambda: CifarResNet(20, shortcut="D"), "A, B, C"),
        (lambda: ImageNetResNet(18, shortcut="projection"), "A, B, C"),
        (lambda: CifarResNet(20, num_classes=0), "num_classes"),
        (lambda: ImageNetResNet(50, num_classes=-1), "num_classes"),
    ],
)
def test_bad_arguments_raise_value_error_naming_choices(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_stage_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = CifarResNet(32)  # 5 blocks per stage: checkpointed in 2 segments
    checkpointed = copy.deepcopy(plain)
    checkpointed.checkpoint_stages = True
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for model in (plain, checkpointed):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.mark.parametrize("depth", [32, 110])  # 2 and 4 checkpointed segments per stage
def test_stage_checkpointing_keeps_bn_statistics_exact(depth: int) -> None:
    """After N SGD steps, every BN's running mean, variance and batch count equal those of the plain forward."""
    torch.manual_seed(0)
    plain = CifarResNet(depth)
    checkpointed = copy.deepcopy(plain)
    checkpointed.checkpoint_stages = True
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))) for _ in range(3)]
    for model in (plain, checkpointed):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x, y in batches:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    buffers = dict(checkpointed.named_buffers())
    assert any(name.endswith("num_batches_tracked") for name in buffers)
    for name, value in plain.named_buffers():
        torch.testing.assert_close(buffers[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert int(buffers["layer2.0.bn1.num_batches_tracked"]) == 3
