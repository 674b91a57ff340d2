"""Adversarial geometries for the certified operator norms of relusv.torch (MATH.md sections 9 and 10).

Oracle everywhere: the dense operator of the layer (or of a site's joint map on its stacked inputs) built by
applying torch's own modules to the identity basis in float64, and ``numpy.linalg.norm(A, 2)``. A certified
bracket must satisfy ``lower <= ||A|| <= upper`` up to a relative ``1e-9`` (float64 rounding of the oracle);
an exact value must agree with it to a relative ``1e-9``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import analyze, conv_operator_norm, discover  # noqa: E402
from relusv.torch.sites import JointMap  # noqa: E402
from torch import nn  # noqa: E402

REL = 1e-9


def _dense(fn, shape) -> np.ndarray:
    """The matrix of the linear map ``fn`` on ``(C, H, W)`` inputs (columns: images of the basis vectors)."""
    n = int(np.prod(shape))
    with torch.no_grad():
        out = fn(torch.eye(n, dtype=torch.float64).reshape(n, *shape))
    return out.reshape(n, -1).T.numpy()


def _conv_norm(conv: nn.Conv2d, shape) -> float:
    """``||A_K||`` of ``conv`` (its own forward, any padding mode, bias left out) on ``shape`` inputs."""
    conv = conv.double()
    return float(np.linalg.norm(_dense(lambda x: conv._conv_forward(x, conv.weight, None), shape), 2))


def _within(lower: float, true: float, upper: float) -> bool:
    return lower <= true * (1 + REL) and true <= upper * (1 + REL)


# -- circular padding whose dilated kernel is larger than the input ------------------------------------------

@pytest.mark.parametrize("cin, cout, groups, size, stride", [
    (2, 3, 1, (4, 4), 1), (2, 3, 1, (3, 3), 1), (2, 3, 1, (4, 3), 1), (4, 4, 2, (4, 4), 2), (4, 4, 4, (3, 3), 3)])
def test_circular_kernel_wider_than_the_input_is_exact(cin, cout, groups, size, stride):
    """A 3x3 kernel with dilation 2 and circular padding 2 on a 3x3 / 4x4 input is legal in torch (the
    padding does not exceed the input); its taps wrap onto each other. It used to be refused ("the kernel
    (5 x 5) is larger than the input"), which crashed ``analyze`` on the whole model."""
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=2, dilation=2, padding_mode="circular", groups=groups)
    true = _conv_norm(conv, (cin, *size))
    result = conv_operator_norm(conv, size)
    assert result.exact
    assert result.estimate == pytest.approx(true, rel=REL)
    assert _within(result.lower, true, result.upper)


class _Wrapping(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=2, dilation=2, padding_mode="circular")
        self.c2 = nn.Conv2d(4, 4, 3, padding=2, dilation=2, padding_mode="circular")

    def forward(self, x):
        h = torch.relu(self.c1(x))
        return torch.relu(self.c2(h) + x[:, :1])   # a site: c2 on h plus an identity branch (broadcast channel 1)


def test_analyze_does_not_fail_on_a_wrapping_circular_conv():
    torch.manual_seed(1)
    model = nn.Sequential(_Wrapping(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).double().eval()
    x, y = torch.randn(24, 3, 4, 3, dtype=torch.float64), torch.randint(0, 2, (24,))
    table = analyze(model, x, y, progress=False, relu_points=2, relu_options={"max_steps": 3}, repeats=1)
    rows = table.set_index("layer")
    for name, conv, shape in (("0.c1", model[0].c1, (3, 4, 3)), ("0.c2", model[0].c2, (4, 4, 3))):
        true = _conv_norm(conv, shape)
        assert _within(rows.loc[name, "operator_norm_lower"], true, rows.loc[name, "operator_norm"]), name


# -- a sweep of unusual geometries: stride, dilation, padding, modes, asymmetric kernels, groups -------------

_SWEEP = [c for c in itertools.product(
    [(2, 3, 1), (4, 4, 2), (4, 4, 4)], [(1, 3), (3, 1), (2, 2), (3, 3)], [1, 2, 3, (2, 1)], [1, 2], [0, 1, (0, 2)],
    ["zeros", "circular", "reflect", "replicate"])][::23]


@pytest.mark.parametrize("channels, kernel, stride, dilation, padding, mode", _SWEEP)
def test_conv_operator_norm_brackets_the_dense_operator(channels, kernel, stride, dilation, padding, mode):
    cin, cout, groups = channels
    size = (5, 7)
    torch.manual_seed(2)
    try:
        conv = nn.Conv2d(cin, cout, kernel, stride=stride, dilation=dilation, padding=padding, padding_mode=mode,
                         groups=groups)
        conv(torch.zeros(1, cin, *size))
    except (RuntimeError, ValueError, NotImplementedError):
        pytest.skip("not a legal torch geometry")
    true = _conv_norm(conv, (cin, *size))
    for dense in (True, False):
        result = conv_operator_norm(conv, size, dense=dense)
        assert _within(result.lower, true, result.upper), (result, true)


# -- kernels of extreme magnitude: the bracket must still hold (norms are positively homogeneous) -------------

@pytest.mark.parametrize("scale", [1e-170, 1e150])
@pytest.mark.parametrize("mode, dense", [("zeros", True), ("zeros", False), ("reflect", True)])
def test_conv_operator_norm_of_tiny_and_huge_kernels(scale, mode, dense):
    """A kernel of 1e-170 made the dense route report ``upper = 0`` (its Gram matrix underflowed) for an
    operator of norm ~1e-170; one of 1e150 raised LinAlgError (the Gram matrix overflowed)."""
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, bias=False).double()
    true = _conv_norm(conv, (2, 5, 6)) * scale
    result = conv_operator_norm(conv.weight.detach().numpy() * scale, (5, 6), padding=1, padding_mode=mode,
                                dense=dense)
    assert true > 0 and _within(result.lower, true, result.upper), (result, true)
    assert result.lower >= 0.5 * true   # and the lower end is not a useless 0


class _Block(nn.Module):
    def __init__(self, gain: float):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.double()   # a gain of 1e150 does not fit float32
        with torch.no_grad():
            self.bn.weight.fill_(gain)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, h, x):
        return torch.relu(self.bn(self.conv(h)) + x)


@pytest.mark.parametrize("gain", [1e-170, 1e30, 1e150])
def test_joint_operator_norm_with_a_branch_of_extreme_scale(gain):
    """A residual site whose folded BatchNorm has gain 1e30 raised LinAlgError (float32 overflow in the
    Lanczos iteration); the bracket of the joint map ``[A_conv, I]`` must hold at any scale."""
    torch.manual_seed(4)
    block = _Block(gain).double().eval()
    site = next(s for s in discover(block).sites if len(s.branches) == 2)
    joint = JointMap(site.branches, site.bias, site.activation, [(3, 4, 5), (3, 4, 5)])
    scale = (block.bn.weight / torch.sqrt(block.bn.running_var + block.bn.eps)).detach().reshape(1, -1, 1, 1)
    a_conv = _dense(lambda v: scale * nn.functional.conv2d(v, block.conv.weight, padding=1), (3, 4, 5))
    true = float(np.linalg.norm(np.hstack([a_conv, np.eye(60)]), 2))
    upper, lower, _ = joint.operator_norm(seed=0)
    assert _within(lower, true, upper), (lower, true, upper)
    assert lower >= 0.5 * true


# -- string padding: 'same' and 'valid' are integer paddings; an even 'same' kernel is said to be asymmetric ----

class _StringPadded(nn.Module):
    def __init__(self, even: bool):
        super().__init__()
        self.same = nn.Conv2d(3, 4, 3, padding="same", dilation=2, padding_mode="reflect")
        self.valid = nn.Conv2d(4, 5, (1, 3), padding="valid")
        self.odd = nn.Conv2d(5, 3, 2 if even else 3, padding="same")

    def forward(self, x):
        return torch.relu(self.odd(torch.relu(self.valid(torch.relu(self.same(x))))))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("even", [False, True])
def test_string_padded_layers_have_certified_norms(even):
    """Layer rows of ``padding='same'`` / ``'valid'`` convolutions are brackets of the dense operator (they read
    NaN, "string-padded", before); ``'same'`` with an even kernel pads one side more and is said to be so."""
    torch.manual_seed(2)
    model = nn.Sequential(_StringPadded(even), nn.Flatten()).double().eval()
    x, y = torch.randn(16, 3, 6, 7, dtype=torch.float64), torch.randint(0, 2, (16,))
    rows = analyze(model, x, y, progress=False, relu_bounds=False, repeats=1).set_index("layer")
    convs = {"0.same": (model[0].same, (3, 6, 7)), "0.valid": (model[0].valid, (4, 6, 7)),
             "0.odd": (model[0].odd, (5, 6, 5))}
    for name, (conv, shape) in convs.items():
        if name == "0.odd" and even:
            assert np.isnan(rows.loc[name, "operator_norm"])
            assert "asymmetric padding" in rows.loc[name, "operator_norm_method"]
            continue
        true = _conv_norm(conv, shape)
        assert _within(rows.loc[name, "operator_norm_lower"], true, rows.loc[name, "operator_norm"]), name


class _SharedInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        return torch.relu(self.c2(h) + h)     # both branches read h


def test_branches_reading_one_value_are_said_to_be_stacked():
    """``relu(c2(h) + h)``: the site's norm is of the stacked map ``[A_c2, I]`` on ``(h, h)`` (MATH.md section
    10), which the row brackets; the map of ``h`` itself, ``A_c2 + I``, can have a larger norm, and the row says
    which it measured."""
    torch.manual_seed(3)
    model = nn.Sequential(_SharedInput(), nn.Flatten()).double().eval()
    x, y = torch.randn(16, 3, 5, 5, dtype=torch.float64), torch.randint(0, 2, (16,))
    table = analyze(model, x, y, progress=False, relu_bounds=False, repeats=1)
    site = table[table["layer"].str.contains("relu@1|relu_1", regex=True)]
    assert len(site) == 1
    assert "branches 1 and 2 read the same graph value" in site["notes"].iloc[0]
    assert "read the same graph value" not in " ".join(table["notes"].iloc[:2])
    c2 = model[0].c2
    stacked = np.hstack([_dense(lambda v: c2._conv_forward(v, c2.weight, None), (4, 5, 5)), np.eye(100)])
    assert _within(site["operator_norm_lower"].iloc[0], np.linalg.norm(stacked, 2), site["operator_norm"].iloc[0])
