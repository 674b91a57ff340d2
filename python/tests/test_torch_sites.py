"""Activation sites fed by several branches, clipped activations and grouped kernels (MATH.md sections 9-10).

The blocks are written here after torchvision's ResNet ``BasicBlock`` /
``Bottleneck``, MobileNetV2's ``InvertedResidual`` and DenseNet's dense
layer (untrained, seeded). Oracles: the blocks' own forward passes and
``torch.nn.functional.conv2d`` with kernels rebuilt from the returned
factors, in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import discover  # noqa: E402
from relusv.torch.sites import JointMap  # noqa: E402
from torch import nn  # noqa: E402


def _bn(channels: int, seed: int, shift: float = 0.0, gain: float = 1.0) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(channels, generator=g) * 0.1)
        bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
        bn.weight.copy_(gain * (torch.rand(channels, generator=g) + 0.5))
        bn.bias.copy_(torch.randn(channels, generator=g) * 0.2 + shift)
    return bn


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: one ``nn.ReLU`` called twice, identity or 1x1 stride-s downsample."""

    def __init__(self, cin: int, cout: int, stride: int = 1, seed: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _bn(cout, seed)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout, seed + 1)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout, seed + 2))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck: 1x1 -> 3x3 -> 1x1, ReLU after the sum with the skip."""

    def __init__(self, cin: int, width: int, seed: int = 0):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), _bn(width, seed)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), _bn(width, seed + 1)
        self.conv3, self.bn3 = nn.Conv2d(width, cin, 1, bias=False), _bn(cin, seed + 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x
        return self.relu(out)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1 + ReLU6, depthwise 3x3 + ReLU6, project 1x1 (linear), skip add."""

    def __init__(self, channels: int, expand: int, seed: int = 0, shift: float = 0.0, gain: float = 1.0):
        super().__init__()
        hidden = channels * expand
        self.conv = nn.Sequential(
            nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), _bn(hidden, seed, shift, gain), nn.ReLU6()),
            nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                          _bn(hidden, seed + 1, shift, gain), nn.ReLU6()),
            nn.Conv2d(hidden, channels, 1, bias=False), _bn(channels, seed + 2))

    def forward(self, x):
        return x + self.conv(x)


class DenseLayer(nn.Module):
    """DenseNet's pre-activation dense layer on a concatenation: BN -> ReLU -> 1x1 conv -> BN -> ReLU -> 3x3 conv."""

    def __init__(self, cin: int, growth: int, seed: int = 0):
        super().__init__()
        self.norm1, self.relu1 = _bn(cin, seed), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2, self.relu2 = _bn(2 * growth, seed + 1), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, cin: int = 4, growth: int = 3, seed: int = 0):
        super().__init__()
        self.stem = nn.Conv2d(3, cin, 3, padding=1)
        self.layer1 = DenseLayer(cin, growth, seed)
        self.layer2 = DenseLayer(cin + growth, growth, seed + 5)

    def forward(self, x):
        features = [self.stem(x)]
        features.append(self.layer1(features))
        features.append(self.layer2(features))
        return torch.cat(features, 1)


def _branches(site):
    return [(b.kind, b.layers) for b in site.branches]


def test_basic_block_sites_and_branches():
    torch.manual_seed(0)
    model = nn.Sequential(BasicBlock(3, 4, stride=2, seed=1), BasicBlock(4, 4, seed=7)).eval()
    sites = {s.name: s for s in discover(model).sites}
    assert set(sites) == {"0.relu", "0.relu@1", "1.relu", "1.relu@1"}
    assert sites["0.relu"].layer == "0.conv1" and sites["1.relu"].layer == "1.conv1"
    assert _branches(sites["0.relu@1"]) == [("conv2d", ("0.conv2", "0.bn2")),
                                            ("conv2d", ("0.downsample.0", "0.downsample.1"))]
    assert _branches(sites["1.relu@1"]) == [("conv2d", ("1.conv2", "1.bn2")), ("identity", ())]
    assert sites["1.relu@1"].branches[1].input == sites["0.relu@1"].node   # the skip carries the block input
    assert sites["0.relu@1"].layer is None


class _AddInPlace(nn.Module):
    """A residual sum written in place and not reassigned: ``h2.add_(h)`` changes ``h2`` for the ReLU after it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.a(x).relu_()
        h2 = self.b(h)
        h2.add_(h)
        return h2.relu()


class _SkipAfterInPlaceReLU(nn.Module):
    """The skip reads ``h`` after ``F.relu(h, inplace=True)`` changed it: it carries the activation."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.a(x)
        r = nn.functional.relu(h, inplace=True)
        return nn.functional.relu(self.b(r) + h)


@pytest.mark.parametrize("model_type", [_AddInPlace, _SkipAfterInPlaceReLU])
def test_in_place_operations_are_followed(model_type):
    """Discovery reads the graph as the model computes it: after an in-place operation every later use of
    the changed tensor sees the change. Both models compute ``relu(b(r) + r)`` with ``r = relu(a(x))``; the
    site's joint map, evaluated on the hooked branch inputs, must give the network's own output."""
    torch.manual_seed(0)
    model = model_type().double().eval()
    found = discover(model)
    last = found.sites[-1]
    assert _branches(last) == [("conv2d", ("b",)), ("identity", ())]
    assert last.branches[1].input == found.sites[0].node     # the skip carries the activation, not a(x)
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        r = torch.relu(model.a(x))
        out = model(x.clone())
        assert torch.equal(out, torch.relu(model.b(r) + r))  # the models do compute it
    # s_0 of the site's joint map on its branch inputs (r for both) is that of the network's output.
    joint = JointMap(last.branches, last.bias, last.activation, [tuple(r.shape[1:])] * 2)
    points = torch.cat([r.reshape(5, -1), r.reshape(5, -1)], 1).numpy()
    s0 = joint.bounds(points, [0], seed=0, max_steps=0).bound[0]
    at_zero = torch.relu(model.b.bias).view(1, -1, 1, 1)
    assert s0 == pytest.approx(_per_point_error(out, at_zero), rel=1e-12)


def test_bottleneck_inverted_residual_and_dense_sites():
    bottleneck = {s.name: s for s in discover(Bottleneck(8, 4).eval()).sites}
    assert list(bottleneck) == ["relu", "relu@1", "relu@2"]
    assert _branches(bottleneck["relu@2"]) == [("conv2d", ("conv3", "bn3")), ("identity", ())]
    mobile = discover(InvertedResidual(4, 3).eval())
    assert [(s.name, s.activation.name, s.layer) for s in mobile.sites] == [
        ("conv.0.2", "relu6", "conv.0.0"), ("conv.1.2", "relu6", "conv.1.0")]
    relu6 = {layer.name: layer for layer in mobile.layers}
    assert relu6["conv.1.0"].clipped and not relu6["conv.1.0"].relu and relu6["conv.1.0"].activation == "relu6"
    assert relu6["conv.2"].activation is None          # the projection feeds the (activation-free) sum
    dense = {s.name: s for s in discover(DenseBlock().eval()).sites}
    assert list(dense) == ["layer1.relu1", "layer1.relu2", "layer2.relu1", "layer2.relu2"]
    # pre-activation on a concatenation: one branch, the folded BatchNorm as a diagonal map of the cat
    assert _branches(dense["layer2.relu1"]) == [("identity", ("layer2.norm1",))]
    assert dense["layer2.relu1"].layer is None
    assert dense["layer2.relu2"].layer == "layer2.conv1"


def _hooked(model, names, x):
    """Inputs and outputs of the named modules in one forward pass (copies)."""
    seen = {}
    modules = dict(model.named_modules())

    def keep(name):
        def hook(module, inputs, output):
            seen.setdefault(name, (inputs[0].detach().clone(), output.detach().clone()))
        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def _folded(bn):
    s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return s.detach(), (bn.bias.double() - s * bn.running_mean.double()).detach()


def _per_point_error(exact, approx):
    return float((exact - approx).reshape(exact.shape[0], -1).norm(dim=1).max())


def test_residual_site_bounds_certified_from_factors():
    torch.manual_seed(3)
    block = BasicBlock(3, 4, stride=2, seed=11).double().eval()
    x = torch.randn(12, 3, 8, 8, dtype=torch.float64)
    seen = _hooked(block, ["conv2", "downsample.0"], x)
    h = seen["conv2"][0]
    with torch.no_grad():
        out = block(x)                                       # the site's output: relu(bn2(conv2 h) + ds(x))
    site = {s.name: s for s in discover(block).sites}["relu@1"]
    joint = JointMap(site.branches, site.bias, site.activation, [tuple(h.shape[1:]), tuple(x.shape[1:])])
    assert joint.matrix.shape == (4, 4 * 9 + 3)                # [K_conv2, K_downsample] on concatenated patches
    points = torch.cat([h.reshape(12, -1), x.reshape(12, -1)], 1).numpy()
    ks = [0, 1, 2, 3]
    spectrum = joint.bounds(points, ks, seed=0, max_steps=30)
    s2, c2 = _folded(block.bn2)
    sd, cd = _folded(block.downsample[1])
    np.testing.assert_allclose(joint.bias, (c2 + cd).numpy(), rtol=1e-12)
    relu_b = torch.relu(c2 + cd).reshape(1, -1, 1, 1)
    assert spectrum.bound[0] == pytest.approx(_per_point_error(out, relu_b.expand_as(out)), rel=1e-10)
    for k, bound, (u, v) in zip(ks, spectrum.bound, spectrum.factors):
        lm = torch.from_numpy(np.asarray(u) @ np.asarray(v))          # (4, 39) rank <= k
        assert np.linalg.matrix_rank(lm.numpy()) <= k
        k_conv, k_ds = lm[:, :36].reshape(4, 4, 3, 3), lm[:, 36:].reshape(4, 3, 1, 1)
        z = nn.functional.conv2d(h, k_conv, padding=1) + nn.functional.conv2d(x, k_ds, stride=2) \
            + (c2 + cd).reshape(1, -1, 1, 1)
        assert bound == pytest.approx(_per_point_error(out, torch.relu(z)), rel=1e-9, abs=1e-12)
    # the joint map reproduces the block exactly, and the bounds are below the truncation chain
    assert np.all(spectrum.bound <= spectrum.truncation_bound + 1e-12)
    assert np.all(np.diff(spectrum.bound) <= 1e-12)


def test_relu6_site_certified_with_relu6():
    torch.manual_seed(5)
    block = InvertedResidual(2, 3, seed=2, shift=4.0, gain=3.0).double().eval()   # pre-activations cross 6
    x = torch.randn(10, 2, 6, 6, dtype=torch.float64) * 2
    seen = _hooked(block, ["conv.1.0", "conv.1.1", "conv.1.2"], x)
    h, pre, relu6_out = seen["conv.1.0"][0], seen["conv.1.1"][1], seen["conv.1.2"][1]
    assert float(pre.max()) > 6.0 and float(relu6_out.max()) == 6.0    # clipping is active
    found = discover(block)
    site = {s.name: s for s in found.sites}["conv.1.2"]
    layer = {la.name: la for la in found.layers}["conv.1.0"]
    from relusv.torch.sites import branches_of_layer

    branches, bias = branches_of_layer(layer)
    joint = JointMap(branches, bias, site.activation, [tuple(h.shape[1:])])
    assert joint.matrix.shape == (6, 6 * 9)                  # depthwise kernel as its block-diagonal dense matrix
    ks = [0, 1, 3, 5]
    spectrum = joint.bounds(h.reshape(10, -1).numpy(), ks, seed=0, max_steps=20)
    s, c = _folded(block.conv[1][1])
    relu6_b = torch.clamp(c, 0, 6).reshape(1, -1, 1, 1)
    assert spectrum.bound[0] == pytest.approx(_per_point_error(relu6_out, relu6_b.expand_as(relu6_out)), rel=1e-10)
    relu_value = _per_point_error(torch.relu(pre), torch.relu(c).reshape(1, -1, 1, 1).expand_as(pre))
    assert abs(spectrum.bound[0] - relu_value) > 1e-3 * relu_value    # not the ReLU value
    for k, bound, (u, v) in zip(ks, spectrum.bound, spectrum.factors):
        lm = torch.from_numpy(np.asarray(u) @ np.asarray(v)).reshape(6, 6, 3, 3)
        z = nn.functional.conv2d(h, lm, padding=1) + c.reshape(1, -1, 1, 1)
        assert bound == pytest.approx(_per_point_error(relu6_out, torch.clamp(z, 0, 6)), rel=1e-9, abs=1e-12)
        u_t = torch.from_numpy(np.asarray(u))
        assert u_t.shape[1] <= k or np.linalg.matrix_rank(lm.reshape(6, -1).numpy()) <= k
    # with the table's shared SVD of W (its truncations read from the engine's factors): the same curve
    import relusv

    with relusv.WeightSVD(joint.matrix) as svd:
        shared = joint.bounds(h.reshape(10, -1).numpy(), ks, seed=0, max_steps=20, weight_svd=svd)
    np.testing.assert_allclose(shared.bound, spectrum.bound, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(shared.truncation_bound, spectrum.truncation_bound, rtol=1e-12, atol=1e-14)


def test_resnet18_every_relu_site_has_a_row():
    torchvision = pytest.importorskip("torchvision")
    from relusv.torch.analysis import _own_sites

    model = torchvision.models.resnet18(num_classes=10).eval()     # untrained: no weights downloaded
    found = discover(model)
    assert len(found.sites) == 17                                  # stem + 2 per block x 8 blocks
    layer_rows = {la.name for la in found.layers if la.bounded}
    own = {s.name for s in _own_sites(found)}
    for site in found.sites:
        assert (site.layer in layer_rows) != (site.name in own), site.describe()
    assert own == {f"layer{i}.{j}.relu@1" for i in range(1, 5) for j in range(2)}
    blocks = {s.name: s for s in found.sites}
    assert [b.kind for b in blocks["layer2.0.relu@1"].branches] == ["conv2d", "conv2d"]   # conv2 + downsample
    assert [b.kind for b in blocks["layer2.1.relu@1"].branches] == ["conv2d", "identity"]


def test_analyze_rows_for_residual_sites_and_relu6():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), BasicBlock(4, 5, stride=2, seed=1),
                          InvertedResidual(5, 2, seed=9, shift=3.0, gain=2.0), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(5, 2)).eval()
    x = torch.randn(60, 3, 6, 6)
    y = torch.randint(0, 2, (60,))
    from relusv.torch import analyze

    table = analyze(model, x, y, progress=False, relu_points=3, relu_options={"max_steps": 5}, repeats=2)
    rows = table.set_index("layer")
    assert list(table["layer"]) == ["0", "1.conv1", "1.conv2", "1.downsample.0", "1.relu@1", "2.conv.0.0",
                                    "2.conv.1.0", "2.conv.2", "5"]
    site = rows.loc["1.relu@1"]
    assert site["relu"] and site["relu_bounds"] == "computed" and site["matrix_shape"] == (5, 5 * 9 + 4)
    assert "a branch of the activation site 1.relu@1" in rows.loc["1.conv2", "notes"]
    # s_0 of the site by hand: max over each subset of ||block output - ReLU(b)||
    with torch.no_grad():
        out = model[1](model[0](x.double().float())).double()
    s2, c2 = _folded(model[1].bn2)
    sd, cd = _folded(model[1].downsample[1])
    zero = torch.relu(c2 + cd).reshape(1, -1, 1, 1)
    for g in ("correct", "incorrect"):
        values = [float((out[idx] - zero).reshape(len(idx), -1).norm(dim=1).max()) for idx in table.attrs["subsets"][g]]
        assert site[f"s0_{g}"] == pytest.approx(np.mean(values), rel=1e-5)
    depthwise = rows.loc["2.conv.1.0"]
    assert depthwise["activation"] == "relu6" and depthwise["relu_bounds"] == "computed"
    curve = table.attrs["details"]["2.conv.1.0"]["relu_bounds"]["correct"]
    assert curve["zero_from"] <= curve["rank_limit"] and max(curve["ks"]) < max(curve["zero_from"], 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_joint_operator_norm_against_the_dense_operator(seed):
    torch.manual_seed(seed)
    block = BasicBlock(4, 5, stride=2, seed=1).double().eval()
    site = {s.name: s for s in discover(block).sites}["relu@1"]
    joint = JointMap(site.branches, site.bias, site.activation, [(5, 4, 4), (4, 8, 8)])
    columns = []
    eye = torch.eye(5 * 16 + 4 * 64, dtype=torch.float64)
    with torch.no_grad():
        for e in eye:       # the operator's columns: A e_i = bn2-scaled conv2 + folded downsample, no bias
            h, x = e[:80].reshape(1, 5, 4, 4), e[80:].reshape(1, 4, 8, 8)
            s2, _ = _folded(block.bn2)
            sd, _ = _folded(block.downsample[1])
            z = s2.reshape(1, -1, 1, 1) * nn.functional.conv2d(h, block.conv2.weight, padding=1) + \
                sd.reshape(1, -1, 1, 1) * nn.functional.conv2d(x, block.downsample[0].weight, stride=2)
            columns.append(z.reshape(-1))
    exact = np.linalg.norm(torch.stack(columns, 1).numpy(), 2)
    upper, value, method = joint.operator_norm(seed=0, iterations=500, tol=1e-9)
    assert value <= exact * (1 + 1e-12), (value, exact)
    assert value == pytest.approx(exact, rel=1e-3), method
    assert exact <= upper * (1 + 1e-12) and upper <= exact * np.sqrt(2), (upper, exact)   # sum of two squares
    assert method.startswith("bracket (Lanczos on the joint map from below")


class StridedBottleneck(nn.Module):
    """A bottleneck whose 3x3 convolution has stride 2, the skip a 1x1 stride-2 downsample (ResNet-50's first
    block of a stage): the site after the sum has two pointwise branches."""

    def __init__(self, cin: int, width: int, cout: int, seed: int = 0):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), _bn(width, seed)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, 2, 1, bias=False), _bn(width, seed + 1)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), _bn(cout, seed + 2)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), _bn(cout, seed + 3))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.downsample(x))


def test_joint_operator_norm_of_pointwise_branches_is_exact():
    """1x1 branches without padding (one of them strided) read disjoint input positions per output position:
    ``||A|| = sigma_0`` of the joint channel matrix, equal to the dense operator's norm."""
    torch.manual_seed(3)
    block = StridedBottleneck(3, 4, 5, seed=2).double().eval()
    site = next(s for s in discover(block).sites if len(s.branches) == 2)
    joint = JointMap(site.branches, site.bias, site.activation, [(4, 3, 3), (3, 6, 6)])
    s3, _ = _folded(block.bn3)
    sd, _ = _folded(block.downsample[1])
    columns = []
    with torch.no_grad():
        for e in torch.eye(4 * 9 + 3 * 36, dtype=torch.float64):
            h, x = e[:36].reshape(1, 4, 3, 3), e[36:].reshape(1, 3, 6, 6)
            z = s3.reshape(1, -1, 1, 1) * nn.functional.conv2d(h, block.conv3.weight) + \
                sd.reshape(1, -1, 1, 1) * nn.functional.conv2d(x, block.downsample[0].weight, stride=2)
            columns.append(z.reshape(-1))
    exact = np.linalg.norm(torch.stack(columns, 1).numpy(), 2)
    upper, lower, method = joint.operator_norm(seed=0)
    assert method == "exact" and lower <= exact <= upper and upper - lower <= 3e-10 * exact
    # A 1x1 convolution with padding has output positions that read only padding: a bracket, not "exact"
    # (its norm is still sigma_0 of the kernel matrix, inside the bracket).
    from relusv.torch.sites import branches_of_layer

    padded = nn.Sequential(nn.Conv2d(4, 5, 1, padding=1).double(), nn.ReLU())
    layer = discover(padded).layers[0]
    branches, bias = branches_of_layer(layer)
    joint = JointMap(branches, bias, site.activation, [(4, 3, 3)])
    upper, lower, method = joint.operator_norm(seed=0)
    top = np.linalg.norm(padded[0].weight.detach().reshape(5, 4).numpy(), 2)
    assert method.startswith("bracket") and lower <= top <= upper


def test_analyze_pre_activation_sites_on_a_concatenation():
    torch.manual_seed(1)
    model = nn.Sequential(DenseBlock(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 2)).eval()
    x = torch.randn(50, 3, 5, 5)
    y = torch.randint(0, 2, (50,))
    from relusv.torch import analyze

    table = analyze(model, x, y, progress=False, relu_points=3, relu_options={"max_steps": 5}, repeats=1)
    rows = table.set_index("layer")
    site = rows.loc["0.layer2.relu1"]               # ReLU(BN(cat(stem, layer1))): diagonal map of the cat
    assert site["module"] == "activation site" and site["relu_bounds"] == "computed"
    assert site["matrix_shape"] == (7, 7)
    s, c = _folded(model[0].layer2.norm1)
    idx = table.attrs["subsets"]["correct"][0]
    with torch.no_grad():
        stem = model[0].stem(x[idx])
        cat = torch.cat([stem, model[0].layer1([stem])], 1).double()
    out = torch.relu(s.reshape(1, -1, 1, 1) * cat + c.reshape(1, -1, 1, 1))
    s0 = float((out - torch.relu(c).reshape(1, -1, 1, 1)).reshape(len(idx), -1).norm(dim=1).max())
    assert site["s0_correct"] == pytest.approx(s0, rel=1e-5)
    # The diagonal map's norm is its largest scale, exactly (closed form; the library's SVD by blocks).
    top = float(np.abs(s.double().numpy()).max())
    assert site["operator_norm_method"] == "exact"
    assert site["operator_norm_lower"] <= top <= site["operator_norm"]
    assert site["operator_norm"] - site["operator_norm_lower"] <= 3e-10 * top   # the ROUNDING bracket
    assert rows.loc["0.layer2.conv1", "activation"] == "relu"     # conv1 -> norm2 -> relu2: the layer's own row


def test_grouped_conv_row_operator_norm_within_its_bracket():
    from relusv.layer_table import operator_norm
    from relusv.torch.analysis import layer_input

    block = InvertedResidual(2, 3, seed=2).double().eval()
    layer = {la.name: la for la in discover(block).layers}["conv.1.0"]
    row = layer_input(layer, (6, 5, 5))
    norm, _ = operator_norm(row, float("nan"), 0)
    columns = []
    with torch.no_grad():
        s, _ = _folded(block.conv[1][1])
        for e in torch.eye(6 * 25, dtype=torch.float64):
            z = s.reshape(1, -1, 1, 1) * block.conv[1][0](e.reshape(1, 6, 5, 5))
            columns.append(z.reshape(-1))
    exact = np.linalg.norm(torch.stack(columns, 1).numpy(), 2)
    low, high = norm["operator_norm_lower"], norm["operator_norm"]
    assert low <= exact * (1 + 1e-9) and exact <= high * (1 + 1e-9)   # the certified bracket (or exact value)
    assert (high - low) <= 1e-3 * high and row.conv_geometry["groups"] == 6
