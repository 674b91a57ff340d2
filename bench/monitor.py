"""Training overhead of relusv.torch.Monitor, on an MLP and on ResNet-18.

MLP: 784-100-100-100-10 trained on 60,000 synthetic points (10 Gaussian
classes in R^784, noisy enough that a few percent of the points stay
misclassified), once without and once with a monitor that measures at the end
of every epoch on a 2,000-point probe set (GMW of both groups at every layer's
input and ReLU output, 5 subsamples each, and the layers' singular values).
The two runs start from the same weights and see the same batches; their
epochs are interleaved (plain, monitored, monitored, plain, ...) so that a
change in machine load hits both alike. An epoch's time includes the monitor's
measurement.

ResNet-18 (torchvision, 10 classes) at 32x32 on synthetic images (10 Gaussian
class patterns plus noise), SGD with batch ``--cnn-batch``, for ``--cnn-steps``
steps, with a monitor on 200 probe points measuring every ``--cnn-every``
steps (GMW, singular values, operator norms warm-started between
measurements); the plain and monitored runs alternate in chunks of
``--cnn-every`` steps, each monitored chunk ending with one measurement.

Printed: per-epoch (per-chunk) times, their medians and ratio, the median
time of one measurement relative to a plain epoch (chunk) -- the added time
itself, free of the noise between epochs on a shared machine -- and a summary
with both models' overheads side by side (target < 10 %).

    .venv/bin/python bench/monitor.py [--models mlp,resnet18] [--epochs 3] [--cnn-steps 300] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from relusv.torch import Monitor
from torch import nn


def synthetic(points: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 784, generator=g) * 0.12
    labels = torch.randint(0, 10, (points,), generator=g)
    x = centres[labels] + torch.randn(points, 784, generator=g)
    return x, labels


def mlp(hidden=(100, 100, 100)) -> nn.Module:
    """784 -> hidden... -> 10 with a ReLU after every hidden layer."""
    sizes = (784, *hidden)
    layers = []
    for n, m in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n, m), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))


class Run:
    def __init__(self, model: nn.Module, x, y, batch_size: int, monitor=None):
        self.model, self.x, self.y, self.batch_size, self.monitor = model, x, y, batch_size, monitor
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.times, self.measure_times = [], []

    def epoch(self, epoch: int) -> None:
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        start = time.perf_counter()
        self.model.train()
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            self.optimizer.zero_grad()
            nn.functional.cross_entropy(self.model(self.x[idx]), self.y[idx]).backward()
            self.optimizer.step()
        if self.monitor is not None:
            before = time.perf_counter()
            self.monitor.epoch_end()
            self.measure_times.append(time.perf_counter() - before)
        self.times.append(time.perf_counter() - start)


def bench_mlp(args) -> tuple:
    """The MLP run; returns (added time fraction, one measurement / plain epoch)."""
    hidden = tuple(int(h) for h in args.hidden.split(","))
    x, y = synthetic(args.points + args.probe, seed=0)
    x_train, y_train, x_probe, y_probe = x[:args.points], y[:args.points], x[args.points:], y[args.points:]
    torch.manual_seed(0)
    plain_model = mlp(hidden)
    watched_model = mlp(hidden)
    watched_model.load_state_dict(plain_model.state_dict())
    monitor = Monitor(watched_model, x_probe, y_probe, every_epochs=1, relu_bounds=args.relu_bounds,
                      relu_options={"max_steps": 100})
    plain = Run(plain_model, x_train, y_train, args.batch_size)
    watched = Run(watched_model, x_train, y_train, args.batch_size, monitor)

    params = sum(p.numel() for p in plain_model.parameters())
    print(f"MLP 784-{'-'.join(map(str, hidden))}-10 ({params:,} parameters), {args.points} points, batch {args.batch_size}, {args.epochs} epochs, "
          f"probe {args.probe} points, torch threads {args.threads}")
    print(f"{'epoch':>5} {'plain s':>9} {'monitored s':>12} {'measure s':>10} {'probe acc':>10} {'group':>6}")
    for epoch in range(1, args.epochs + 1):
        # Alternate which run goes first, so that neither always follows the other's work.
        for run in ((plain, watched) if epoch % 2 else (watched, plain)):
            run.epoch(epoch)
        last = monitor.history.select(measurement=monitor.measurements - 1)
        print(f"{epoch:5d} {plain.times[-1]:9.3f} {watched.times[-1]:12.3f} {watched.measure_times[-1]:10.3f} "
              f"{last[0]['accuracy']:10.3f} {min(last[0]['correct'], last[0]['incorrect']):6d}")
    return report(plain, watched, len(monitor.history), "epoch")


def report(plain, watched, records: int, unit: str) -> tuple:
    a, b = statistics.median(plain.times), statistics.median(watched.times)
    print(f"median {unit}: plain {a:.3f} s, monitored {b:.3f} s, ratio {b / a:.3f} "
          f"(added {100 * (b / a - 1):+.1f} %; target < +10 %)")
    m = statistics.median(watched.measure_times)
    print(f"median measurement: {m:.3f} s = {100 * m / a:.1f} % of a plain {unit} "
          f"(the added time itself, free of the noise between {unit}s; {records} records)", flush=True)
    return b / a - 1, m / a


def synthetic_images(points: int, seed: int, noise: float = 8.0):
    """10 classes of 3 x 32 x 32 images: a smooth random pattern per class plus pixel noise.

    At the default noise a ResNet-18 classifies 60-90 % of held-out points
    correctly in its first 300 steps, so both groups of the comparison are
    populated (with little noise every probe point is correct and the
    comparison, part of a measurement's cost, is skipped).
    """
    g = torch.Generator().manual_seed(seed)
    patterns = nn.functional.interpolate(torch.randn(10, 3, 8, 8, generator=g), size=32, mode="bilinear")
    labels = torch.randint(0, 10, (points,), generator=g)
    return patterns[labels] + noise * torch.randn(points, 3, 32, 32, generator=g), labels


class Chunks:
    """Training in chunks of ``every`` steps (SGD, momentum 0.9); a monitored chunk ends with its measurement."""

    def __init__(self, model: nn.Module, x, y, batch_size: int, every: int, monitor=None):
        self.model, self.x, self.y, self.batch_size, self.every, self.monitor = model, x, y, batch_size, every, monitor
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        self.times, self.measure_times, self.step = [], [], 0

    def chunk(self) -> None:
        start = time.perf_counter()
        self.model.train()
        for _ in range(self.every):
            g = torch.Generator().manual_seed(self.step)
            idx = torch.randint(0, len(self.x), (self.batch_size,), generator=g)
            self.optimizer.zero_grad()
            nn.functional.cross_entropy(self.model(self.x[idx]), self.y[idx]).backward()
            self.optimizer.step()
            self.step += 1
            if self.monitor is not None:
                before = time.perf_counter()
                if self.monitor.step() is not None:
                    self.measure_times.append(time.perf_counter() - before)
        self.times.append(time.perf_counter() - start)


def bench_resnet18(args) -> tuple:
    """The ResNet-18 run; returns (added time fraction, one measurement / plain chunk)."""
    import torchvision

    x, y = synthetic_images(args.cnn_points + 200, seed=1)
    x_train, y_train, x_probe, y_probe = x[:-200], y[:-200], x[-200:], y[-200:]
    torch.manual_seed(0)
    plain_model = torchvision.models.resnet18(num_classes=10)
    watched_model = torchvision.models.resnet18(num_classes=10)
    watched_model.load_state_dict(plain_model.state_dict())
    monitor = Monitor(watched_model, x_probe, y_probe, every_steps=args.cnn_every)
    plain = Chunks(plain_model, x_train, y_train, args.cnn_batch, args.cnn_every)
    watched = Chunks(watched_model, x_train, y_train, args.cnn_batch, args.cnn_every, monitor)
    print(f"ResNet-18 at 32x32, {len(x_train)} synthetic images, batch {args.cnn_batch}, {args.cnn_steps} steps, "
          f"probe 200 points measured every {args.cnn_every} steps ({len(monitor.layers)} layers), "
          f"torch threads {args.threads}")
    print(f"{'chunk':>5} {'plain s':>9} {'monitored s':>12} {'measure s':>10} {'probe acc':>10}")
    for chunk in range(1, args.cnn_steps // args.cnn_every + 1):
        for run in ((plain, watched) if chunk % 2 else (watched, plain)):
            run.chunk()
        last = monitor.history.select(measurement=monitor.measurements - 1)
        print(f"{chunk:5d} {plain.times[-1]:9.3f} {watched.times[-1]:12.3f} {watched.measure_times[-1]:10.3f} "
              f"{last[0]['accuracy']:10.3f}", flush=True)
    norms = monitor.history.select(measurement=monitor.measurements - 1, quantity="operator_norm")
    print("operator norms (last measurement): " + "; ".join(f"{r['layer']} {r['value']:.4g} [{r['note']}]"
                                                            for r in norms))
    return report(plain, watched, len(monitor.history), "chunk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,resnet18", help="comma-separated: mlp, resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--probe", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own default, one per core; the native library uses "
                             "OpenBLAS's)")
    parser.add_argument("--relu-bounds", action="store_true", help="also record ReLU singular-value bounds k=0..3")
    parser.add_argument("--hidden", default="100,100,100",
                        help="hidden widths (default 100,100,100; 1024,200,100 gives about 1M parameters)")
    parser.add_argument("--cnn-steps", type=int, default=300, help="ResNet-18 training steps per run")
    parser.add_argument("--cnn-every", type=int, default=100, help="ResNet-18: measure every N steps")
    parser.add_argument("--cnn-batch", type=int, default=64)
    parser.add_argument("--cnn-points", type=int, default=5_000, help="ResNet-18 training images")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    results = {}
    for name in args.models.split(","):
        results[name] = {"mlp": bench_mlp, "resnet18": bench_resnet18}[name](args)
        print()
    print(f"{'model':<10}{'added time':>12}{'measurement / plain':>22}   (target < 10 %)")
    for name, (added, measurement) in results.items():
        print(f"{name:<10}{100 * added:>+11.1f}%{100 * measurement:>21.1f}%")


if __name__ == "__main__":
    main()
