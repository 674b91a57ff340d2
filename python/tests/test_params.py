"""relusv.params: parameter and multiply-add counts as stored and in the cheaper form (MATH.md sections 7 and 9).

Oracles: ``sum(p.numel())`` of the model, and counts written out from the layer shapes by hand.
"""
from __future__ import annotations

import pytest
from relusv import params

torch = pytest.importorskip("torch")
from relusv.torch import DoubleConv2d, DoubleLinear  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_cheaper_form_flips_at_break_even():
    # m n / (m + n) = 100 * 64 / 164 = 39.02: rank 39 factored, 40 dense
    assert params.layer_count(100, 64, 39).parameters == 39 * 164 + 100
    assert params.layer_count(100, 64, 40).parameters == 100 * 64 + 100
    # a tie (4 * 8 = 32 = 2 * 16) is kept dense
    assert params.cheaper_form(4, 4, 2) == "dense" and params.cheaper_form(4, 4, 1) == "factored"
    assert params.layer_count(10, 20, 3, bias=False, positions=5).multiply_adds == 3 * 30 * 5
    assert params.layer_count(10, 20, None, form="factored").parameters == 10 * 30 + 10


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         DoubleConv2d(8, 16, 3, rank=2, stride=2, padding=1, seed=0), nn.ReLU(),
                         DoubleConv2d(16, 4, 1, rank=4, bias=False, seed=1), nn.Flatten(),
                         DoubleLinear(4 * 4 * 4, 50, 30, seed=2), nn.ReLU(), nn.Linear(50, 10))


def test_model_counts_by_hand():
    net = model()
    counts = params.model_counts(net, torch.randn(5, 3, 8, 8))
    assert counts.stored.parameters == sum(p.numel() for p in net.parameters())
    conv0 = 8 * 27 + 8                      # dense, 8 x 8 output positions
    batchnorm = 16                          # not a weight layer: as stored
    double1_stored = 2 * (72 + 16) + 16     # K_mat 16 x 72, rank 2 < 16*72/88: factored both ways
    double2_stored, double2_dense = 4 * (16 + 4), 4 * 16   # K_mat 4 x 16, rank 4 >= 3.2: dense is cheaper
    linear1_stored, linear1_dense = 30 * (64 + 50) + 50, 64 * 50 + 50   # rank 30 >= 3200 / 114 = 28.07
    linear2 = 50 * 10 + 10
    assert counts.cheaper.parameters == conv0 + batchnorm + double1_stored + double2_dense + linear1_dense + linear2
    assert counts.stored.parameters == conv0 + batchnorm + double1_stored + double2_stored + linear1_stored + linear2
    macs = 8 * 27 * 64 + 2 * (72 + 16) * 16 + 4 * 16 * 16 + 64 * 50 + 500
    assert counts.cheaper.multiply_adds == macs
    assert params.model_counts(net).cheaper.multiply_adds is None      # convolutions need an example input


def test_store_cheaper_keeps_the_map_and_stores_the_counted_form():
    net = model().eval()
    x = torch.randn(7, 3, 8, 8)
    expected = params.model_counts(net, x).cheaper
    with torch.no_grad():
        before = net(x)
    params.store_cheaper(net)
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-5)
    assert [type(net[i]).__name__ for i in (3, 5, 7)] == ["DoubleConv2d", "Conv2d", "Linear"]
    after = params.model_counts(net, x)
    assert sum(p.numel() for p in net.parameters()) == after.stored.parameters == expected.parameters
    assert after.stored == after.cheaper == expected


def test_model_counts_of_a_training_model_with_batchnorm_leave_it_untouched():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    net.train()
    net[2].eval()  # mixed modes are restored exactly
    before = {k: v.clone() for k, v in net.state_dict().items()}
    counts = params.model_counts(net, torch.randn(5, 3, 8, 8))
    assert counts.cheaper.multiply_adds == 4 * 27 * 36 + 4 * 36 * 2   # conv: 36 positions; linear: 1
    assert [m.training for m in net.modules()] == [True, True, True, False, True, True]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running statistics unmoved


def test_model_counts_of_a_training_model_with_batchnorm1d():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).train()
    assert params.model_counts(net, torch.randn(5, 3)).cheaper.multiply_adds == 3 * 4 + 4 * 2
