"""How long ``relusv.torch.harmonic_prune`` takes on a torchvision ResNet-18 (MATH.md sections 8-9).

A ``torchvision.models.resnet18(num_classes=10)`` trained briefly on scikit-learn's digits, each 8 x 8 image
upsampled to 32 x 32 (bilinear) on three equal channels; split 50 / 30 / 20 % into training, validation and
test. The start: ``--train-steps`` Adam steps at lr ``LR``. ``harmonic_prune`` with its defaults (bisection
schedule, 1 pt tolerance on the stopping set, patience, final retraining) and a short retraining of
``--retrain-batches`` Adam steps after every cut, lr ``RETRAIN_LR`` cosine-annealed (a fresh Adam at lr 1e-3
moves this network's test accuracy by 5 pt in 3 steps, so every cut would be refused). The layers pruned are ``harmonic_prune``'s default, the hidden ones: the stem convolution, every
block's two convolutions (the second reaches the block's ReLU through the residual sum, MATH.md section 10)
and the three downsample convolutions (their ``K_mat``, MATH.md section 9); not the classifier. Prints the
wall time (total and per trial), the ranks, the stored parameters before and after, and the result's
guarantee. One thread (``torch.set_num_threads(1)``).

Run: ``.venv/bin/python bench/pruning_resnet.py`` (``--retrain-batches 3 --val-points 200`` for a quicker run).
"""
from __future__ import annotations

import argparse
import time

import torch
from relusv.params import model_counts
from relusv.torch import harmonic_prune
from torch import nn

BATCH, LR, RETRAIN_LR = 64, 1e-3, 1e-4


def digits_32(seed: int):
    """Digits as 3 x 32 x 32 images in [0, 1], split 50 / 30 / 20 % (seeded)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    x = nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    y = torch.tensor(d.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    a, b = len(x) // 2, (8 * len(x)) // 10
    return [(x[order[i:j]], y[order[i:j]]) for i, j in ((0, a), (a, b), (b, len(x)))]


class Retraining:
    """``steps`` Adam steps on seeded mini-batches, the learning rate cosine-annealed from ``lr`` to 0."""

    def __init__(self, x, y, seed: int, steps: int, lr: float):
        self.x, self.y, self.steps, self.lr = x, y, steps, lr
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model: nn.Module) -> None:
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=self.lr)
        annealing = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.steps)
        model.train()
        for _ in range(self.steps):
            batch = torch.randint(len(self.x), (BATCH,), generator=self.generator)
            opt.zero_grad()
            nn.functional.cross_entropy(model(self.x[batch]), self.y[batch]).backward()
            opt.step()
            annealing.step()
        model.eval()


def accuracy(model: nn.Module, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main() -> None:
    import torchvision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=300, help="Adam steps training the start")
    parser.add_argument("--retrain-batches", type=int, default=5, help="Adam steps after every cut")
    parser.add_argument("--val-points", type=int, default=None, help="use only this many validation points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, val, test = digits_32(args.seed)
    if args.val_points is not None:
        val = (val[0][:args.val_points], val[1][:args.val_points])
    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=10)
    t = time.perf_counter()
    Retraining(*train, args.seed, args.train_steps, LR)(model)
    print(f"start: {args.train_steps} Adam steps in {time.perf_counter() - t:.0f} s; test accuracy "
          f"{100 * accuracy(model, *test):.2f}%; {model_counts(model).stored.parameters:,} stored parameters")
    t = time.perf_counter()
    result = harmonic_prune(model, *val, retrain=Retraining(*train, args.seed + 1, args.retrain_batches, RETRAIN_LR),
                            test_data=test, progress=False)
    seconds = time.perf_counter() - t
    trials = sum(r["layer"] is not None for r in result.history[1:])
    first, last = result.accepted[0], result.accepted[-1]
    print(f"harmonic_prune: {seconds:.0f} s ({seconds / 60:.1f} min) for {trials} trial cuts and "
          f"{result.retrainings} retrainings of {args.retrain_batches} steps ({seconds / max(trials, 1):.1f} s per "
          f"trial); stopped by {result.stop_reason!r}")
    print(f"layers {len(result.layers)}: " + ", ".join(f"{n} {a} -> {b}" for n, a, b in
                                                       zip(result.layers, first["ranks"], last["ranks"])))
    print(f"stored parameters {first['parameters']:,} -> {last['parameters']:,} "
          f"({first['parameters'] / last['parameters']:.2f}x); {result.guarantee()}")


if __name__ == "__main__":
    main()
