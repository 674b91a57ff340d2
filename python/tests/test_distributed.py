"""The monitor under torch.distributed: a 2-process gloo group gives the single-process history.

Each rank streams a round-robin share of the probe batches; the accumulators
are merged by all-reduce (MAX / MIN of the running extremes, SUM of counts).
The model is wrapped in DistributedDataParallel.
Rank 0 then measures again without the group, as a single process; both
histories are written out and compared value for value here.
"""
from __future__ import annotations

import json
import math
import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

WORLD = 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build():
    from relusv.torch import DoubleLinear
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), DoubleLinear(16, 12, 5, seed=2), nn.ReLU(), nn.Linear(12, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(700, 10, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:500]), y[:500]).backward()
        opt.step()
    return model, x[500:], y[500:]


def measure(model, x, y, distributed: bool, relu_bounds: bool = True):
    from relusv.torch import Monitor

    # 200 points in batches of 48: 5 batches, 3 on rank 0 and 2 on rank 1. With ReLU bounds a measurement
    # is two passes over the probe set, without them one (the products of all points formed in pass 1).
    monitor = Monitor(model, x, y, samples=40, seed=3, repeats=3, batch_size=48, relu_bounds=relu_bounds,
                      relu_ks=(0, 1), relu_options={"max_steps": 30}, distributed=distributed)
    return list(monitor.measure())


def join_group(rank: int, port: int) -> None:
    """This process as rank ``rank`` of a local gloo group, torch on one thread."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)


def worker(rank: int, port: int, out_dir: str) -> None:
    join_group(rank, port)
    try:
        model, x, y = build()
        # Wrapped in DDP as in a real run: the monitor probes the inner module, so the ranks' unequal
        # numbers of probe batches trigger no collective of the wrapper.
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
        for suffix, bounds in (("", True), ("-one-pass", False)):
            together = measure(wrapped, x, y, distributed=True, relu_bounds=bounds)
            with open(os.path.join(out_dir, f"rank{rank}{suffix}.json"), "w") as f:
                json.dump(together, f)
            if rank == 0:
                alone = measure(model, x, y, distributed=False, relu_bounds=bounds)
                with open(os.path.join(out_dir, f"single{suffix}.json"), "w") as f:
                    json.dump(alone, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_gloo_ranks_give_the_single_process_history(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    single = json.loads((tmp_path / "single.json").read_text())
    assert any(r["quantity"] == "gmw" and r["value"] is not None for r in single)
    assert any(r["quantity"] == "relu_bound" for r in single)
    assert {r["correct"] + r["incorrect"] for r in single} == {200}
    for suffix in ("", "-one-pass"):
        single = json.loads((tmp_path / f"single{suffix}.json").read_text())
        for rank in range(WORLD):
            together = json.loads((tmp_path / f"rank{rank}{suffix}.json").read_text())
            assert len(together) == len(single)
            for a, b in zip(together, single):
                assert a.keys() == b.keys()
                for key in a:
                    assert same(a[key], b[key]), (rank, suffix, key, a, b)


def mismatch_worker(rank: int, port: int, out_dir: str) -> None:
    from relusv.errors import InvalidInputError
    from relusv.torch import Monitor

    join_group(rank, port)
    try:
        model, x, y = build()
        n = 200 - rank   # rank 1 holds one point fewer: same number of batches of 48, different sizes
        try:
            Monitor(model, x[:n], y[:n], samples=20, batch_size=48, distributed=True).measure()
            message = "no error"
        except InvalidInputError as error:
            message = str(error)
        with open(os.path.join(out_dir, f"error{rank}.txt"), "w") as f:
            f.write(message)
        dist.barrier()   # the group is still usable after the refusal
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ranks_with_different_probe_sets_get_an_error_not_an_abort(tmp_path):
    # Before the sizes were compared, the first all_reduce of mismatched shapes ended gloo with SIGABRT.
    mp.spawn(mismatch_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        message = (tmp_path / f"error{rank}.txt").read_text()
        assert message.startswith("the ranks differ in their probe points (rank 0: 200, rank 1: 199)"), message
