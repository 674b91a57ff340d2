"""Training overhead of relusv.torch.Monitor.

An MLP 784-100-100-100-10 is trained on 60,000 synthetic points (10 Gaussian
classes in R^784, noisy enough that a few percent of the points stay
misclassified), once without and once with a monitor that measures at the end
of every epoch on a 2,000-point probe set (GMW of both groups at every layer's
input and ReLU output, 5 subsamples each, and the layers' singular values).
The two runs start from the same weights and see the same batches; their
epochs are interleaved (plain, monitored, monitored, plain, ...) so that a
change in machine load hits both alike. An epoch's time includes the monitor's
measurement. Printed: per-epoch times, their medians and the ratio, and the
median time of one measurement relative to a plain epoch (on a shared machine
the epoch-to-epoch noise can exceed the overhead itself).

    .venv/bin/python bench/monitor.py [--epochs 3] [--threads 1] [--relu-bounds] [--hidden 1024,200,100]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--probe", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the native library uses its own)")
    parser.add_argument("--relu-bounds", action="store_true", help="also record ReLU singular-value bounds k=0..3")
    parser.add_argument("--hidden", default="100,100,100",
                        help="hidden widths (default 100,100,100; 1024,200,100 gives about 1M parameters)")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    torch.set_num_threads(args.threads)

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
    a, b = statistics.median(plain.times), statistics.median(watched.times)
    print(f"median epoch: plain {a:.3f} s, monitored {b:.3f} s, ratio {b / a:.3f} "
          f"(added {100 * (b / a - 1):+.1f} %; target < +10 %)")
    m = statistics.median(watched.measure_times)
    print(f"median measurement: {m:.3f} s = {100 * m / a:.1f} % of a plain epoch "
          f"(the added time itself, free of the noise between epochs; {len(monitor.history)} records)")


if __name__ == "__main__":
    main()
