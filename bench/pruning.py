"""Harmonic pruning as the paper runs it (MATH.md section 8, paper section V-C, Fig. 5), on scikit-learn's digits.

Per seed (data split 50 / 30 / 20 % into training, validation and test; ``harmonic_prune`` splits the
validation set into the selection set (a quarter), which chooses the cuts, and the stopping set (the rest)):

1. **Start**: an MLP 64-100-100-100-10 whose hidden layers are double layers (``DoubleLinear``, inner rank
   ``min(in, out)``, double-p-product initialisation), trained with Adam (``START_STEPS`` steps of batches of
   ``BATCH``, lr ``LR``, constant). Every retraining (of every method) is ``RETRAIN`` Adam steps of batches of
   ``BATCH``, the learning rate annealed from ``LR`` to 0 on a cosine over the steps, as ``harmonic_prune``'s
   own loader retraining does. Stored in its cheaper form the start has the parameters of the dense network,
   27,710.
2. **Harmonic path** (Fig. 5): ``relusv.torch.harmonic_prune(schedule="single", tolerance=1.0)`` with
   ``RETRAIN`` Adam steps after every cut, one rank per cut until every layer has rank 1 (collapse). Ranks and
   accuracies per iteration; the *chosen point* is the last one whose stopping-set accuracy is within 1 pt of
   the start (decided without the test set); its test accuracy is reported.
3. **Default** ``harmonic_prune`` (bisection schedule, tolerance 1 pt on the stopping set, patience 4, final
   retraining of 10 rounds, the same retraining): its parameter count ``P``, test drop and number of
   retraining rounds; their steps (retries and final rounds included) are the budget ``B`` of the baselines.
4. Baselines at ``P`` with the same training budget:

   - *dense from scratch*: a 64-h-h-h-10 MLP with the largest ``h`` fitting in ``P`` (the paper's comparison),
     trained for the start's steps plus ``B``;
   - *magnitude, L1 unstructured* (``torch.nn.utils.prune.global_unstructured``) of the dense start, iterated
     (up to 20 rounds) with ``B`` retraining steps in all to ``P`` stored numbers (non-zero weights plus biases;
     the indices a sparse format needs are not counted, in its favour);
   - *magnitude, L1 structured* (``prune.ln_structured`` on whole neurons, their biases masked too) iterated to
     the width ``h`` of the dense baseline (at most ``P`` once the dead neurons are removed);
   - *plain SVD truncation*: the same double layers cut by the global order of normalised singular values
     ``sigma_k / sigma_0`` (no data in the choice), iterated with ``B`` retraining steps to ``P``.

Parameters are counted by ``relusv.params`` (each layer in the cheaper of dense and factored form). Prints one
row per method with the mean and standard deviation over seeds, and saves ``bench/figures/pruning.png``
(ranks and accuracy along the harmonic path of the first seed, and test accuracy against parameters).

Run: ``.venv/bin/python bench/pruning.py`` (``--seeds 2`` for a quicker run).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from relusv.params import model_counts, store_cheaper
from relusv.torch import DoubleLinear, harmonic_prune
from torch import nn
from torch.nn.utils import prune

WIDTH, RETRAIN, BATCH, LR, START_STEPS = 100, 50, 256, 1e-3, 600
SPLIT = (0.5, 0.3)        # training and validation fractions; the test set is the rest (20 %)
FIGURES = Path(__file__).resolve().parent / "figures"


def digits(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    a, b = int(SPLIT[0] * len(x)), int((SPLIT[0] + SPLIT[1]) * len(x))
    return [(x[order[i:j]], y[order[i:j]]) for i, j in ((0, a), (a, b), (b, len(x)))]


class Trainer:
    """Adam steps on seeded mini-batches of the training data (a fresh optimiser per call, as in retraining);
    with ``anneal`` (every retraining) the learning rate goes from ``lr`` to 0 on a cosine over the call's steps,
    as in ``harmonic_prune``'s own loader retraining."""

    def __init__(self, x, y, seed: int, lr: float = LR, anneal: bool = True):
        self.x, self.y, self.lr, self.anneal = x, y, lr, anneal
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def __call__(self, model: nn.Module, steps: int = RETRAIN) -> None:
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=self.lr)
        annealing = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if self.anneal else None
        model.train()
        for _ in range(steps):
            batch = torch.randint(len(self.x), (BATCH,), generator=self.generator)
            opt.zero_grad()
            nn.functional.cross_entropy(model(self.x[batch]), self.y[batch]).backward()
            opt.step()
            if annealing is not None:
                annealing.step()
        model.eval()
        self.steps += steps


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def mlp(width: int, double: bool, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    sizes = [64, width, width, width]
    layers = []
    for i, (n, m) in enumerate(zip(sizes, sizes[1:])):
        layers += [DoubleLinear(n, m, min(n, m), seed=seed + i) if double else nn.Linear(n, m), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def stored(model) -> int:
    return model_counts(model).cheaper.parameters


def widest_fitting(parameters: int) -> int:
    """The largest h with 64-h-h-h-10 at most ``parameters`` (2 h^2 + 77 h + 10)."""
    return int((-77 + math.sqrt(77 ** 2 - 8 * (10 - parameters))) / 4)


# -- the methods -----------------------------------------------------------------------------------------------

def harmonic_path(start, val, test, trainer):
    result = harmonic_prune(start, *val, retrain=trainer, schedule="single", tolerance=1.0, test_data=test,
                            final_retrainings=0, progress=False)
    history = result.accepted
    floor = history[0]["accuracy"] - 0.01
    chosen = max(i for i, r in enumerate(history) if r["accuracy"] >= floor - 1e-12)
    return history, chosen


def harmonic_default(start, val, test, trainer):
    result = harmonic_prune(start, *val, retrain=trainer, test_data=test, progress=False)
    return result, accuracy(result.model, *test)


def dense_scratch(width, steps, train, test, seed):
    model = mlp(width, False, seed + 100)
    Trainer(*train, seed + 100, anneal=False)(model, steps)
    return stored(model), accuracy(model, *test)


def _rounds(budget: int):
    rounds = max(1, min(20, budget // RETRAIN))
    return rounds, budget // rounds


def magnitude_unstructured(dense, target, budget, trainer, test):
    linears = [m for m in dense if isinstance(m, nn.Linear)]
    biases = sum(m.bias.numel() for m in linears)
    weights = sum(m.weight.numel() for m in linears)
    rounds, steps = _rounds(budget)
    kept = weights
    for i in range(1, rounds + 1):
        goal = round(weights * ((target - biases) / weights) ** (i / rounds))
        prune.global_unstructured([(m, "weight") for m in linears], pruning_method=prune.L1Unstructured,
                                  amount=kept - goal)
        kept = goal
        trainer(dense, steps)
    nonzero = sum(int((m.weight != 0).sum()) for m in linears) + biases
    return nonzero, accuracy(dense, *test)


def magnitude_structured(dense, width, budget, trainer, test):
    hidden = [m for m in dense if isinstance(m, nn.Linear)][:-1]
    rounds, steps = _rounds(budget)
    alive = WIDTH
    for i in range(1, rounds + 1):
        goal = round(WIDTH * (width / WIDTH) ** (i / rounds))
        for m in hidden:
            prune.ln_structured(m, "weight", amount=alive - goal, n=1, dim=0)
            prune.custom_from_mask(m, "bias", m.weight_mask[:, 0].clone())
        alive = goal
        trainer(dense, steps)
    widths = [int((m.weight.abs().sum(1) != 0).sum()) for m in hidden]
    sizes = [64, *widths, 10]
    count = sum(a * b + a for b, a in zip(sizes, sizes[1:]))      # the network with its dead neurons removed
    return count, accuracy(dense, *test)


def svd_truncation(start, target, budget, trainer, test):
    """Cut by the global order of sigma_k / sigma_0 (no data), ranks shrinking geometrically to the target."""
    model = start
    names = [str(i) for i in (0, 2, 4)]
    rounds, steps = _rounds(budget)
    full = stored(model)
    for i in range(1, rounds + 1):
        goal = full * (target / full) ** (i / rounds)
        svds = {n: model.get_submodule(n).svd() for n in names}
        ranks = _spectral_ranks(model, svds, names, goal)
        for n in names:
            layer = model.get_submodule(n)
            model[int(n)] = DoubleLinear.from_linear(layer, ranks[n], svds[n]).float()
        trainer(model, steps)
    return stored(model), accuracy(model, *test)


def _spectral_ranks(model, svds, names, goal):
    """Ranks keeping the globally largest normalised singular values while the model fits in ``goal``."""
    order = sorted((float(svds[n][1][k] / svds[n][1][0]), n) for n in names for k in range(len(svds[n][1])))
    ranks = {n: len(svds[n][1]) for n in names}
    fixed = stored(model) - sum(_cost(model.get_submodule(n), ranks[n]) for n in names)
    for _, n in order:                           # each layer's values come smallest first: cut from its tail
        if fixed + sum(_cost(model.get_submodule(k), ranks[k]) for k in names) <= goal:
            break
        ranks[n] = max(ranks[n] - 1, 1)
    return ranks


def _cost(layer, rank):
    m, n = layer.out_features, layer.in_features
    return min(rank * (m + n), m * n) + m


# -- one seed --------------------------------------------------------------------------------------------------

def run_seed(seed: int, path: bool) -> dict:
    train, val, test = digits(seed)
    start = mlp(WIDTH, True, seed)
    start_steps = START_STEPS
    Trainer(*train, seed, anneal=False)(start, start_steps)
    row = {"start": (stored(start), accuracy(start, *test))}
    if path:
        t = time.perf_counter()
        history, chosen = harmonic_path(start, val, test, Trainer(*train, seed + 1))
        row["path"], row["chosen"] = history, chosen
        row["harmonic_path"] = (history[chosen]["parameters"], history[chosen]["test_accuracy"])
        row["path_seconds"] = time.perf_counter() - t
    result, acc = harmonic_default(start, val, test, Trainer(*train, seed + 2))
    assert result.parameters == sum(p.numel() for p in result.model.parameters())
    target, budget = result.parameters, result.retrainings * RETRAIN
    row["harmonic"], row["retrainings"], row["ranks"] = (target, acc), result.retrainings, result.accepted[-1]["ranks"]
    width = widest_fitting(target)
    row["dense_scratch"] = dense_scratch(width, start_steps + budget, train, test, seed)
    row["l1_unstructured"] = magnitude_unstructured(store_cheaper(_copy(start)), target, budget,
                                                    Trainer(*train, seed + 3), test)
    row["l1_structured"] = magnitude_structured(store_cheaper(_copy(start)), width, budget,
                                                Trainer(*train, seed + 4), test)
    row["svd"] = svd_truncation(_copy(start), target, budget, Trainer(*train, seed + 5), test)
    row["width"], row["budget"] = width, budget
    return row


def _copy(model):
    import copy

    return copy.deepcopy(model)


METHODS = [("start", "start: double-layer MLP 64-100-100-100-10 (stored dense)"),
           ("harmonic_path", "harmonic path (single cuts + retraining): last point within 1 pt on stopping set"),
           ("harmonic", "harmonic_prune default (bisection, 1 pt, patience, retraining): P, its budget B"),
           ("dense_scratch", "dense 64-h-h-h-10 from scratch within P (start's steps + B)"),
           ("l1_unstructured", "magnitude L1 unstructured, iterated with retraining B, to P"),
           ("l1_structured", "magnitude L1 structured (neurons), iterated with retraining B, to width h"),
           ("svd", "plain SVD truncation (global sigma_k / sigma_0), iterated with retraining B, to P")]


def report(rows) -> None:
    print(f"\n{len(rows)} seeds; mean ± sd over seeds; parameters stored (each layer in its cheaper form; "
          f"non-zeros for unstructured); test drop against the start")
    print(f"{'method':<92} {'parameters':>17} {'test acc %':>14} {'drop pt':>14}")
    for key, label in METHODS:
        have = [r for r in rows if key in r]
        if not have:
            continue
        params = [r[key][0] for r in have]
        accs = [100 * r[key][1] for r in have]
        drops = [100 * r["start"][1] - a for r, a in zip(have, accs)]
        print(f"{label + f' [{len(have)}]':<92} {_pm(params, '.0f'):>17} {_pm(accs, '.2f'):>14} "
              f"{_pm(drops, '.2f'):>14}")
    print("\ntest accuracy of each method minus harmonic_prune default's, paired by seed (pt; > 0: the method "
          "is better): " + "; ".join(f"{key} {_signed([100 * (r[key][1] - r['harmonic'][1]) for r in rows])}"
                                     for key, _ in METHODS[3:]))
    ratio = [r["start"][0] / r["harmonic"][0] for r in rows]
    print(f"\nharmonic_prune default: {statistics.mean(ratio):.2f}x fewer parameters than the start (min "
          f"{min(ratio):.2f}x); ranks " + ", ".join(str(tuple(r["ranks"])) for r in rows)
          + "; retrainings " + ", ".join(str(r["retrainings"]) for r in rows))
    paths = [r for r in rows if "path" in r]
    if paths:
        print("harmonic path: chosen ranks " + ", ".join(str(tuple(r["path"][r["chosen"]]["ranks"])) for r in paths)
              + f"; {statistics.mean(r['start'][0] / r['harmonic_path'][0] for r in paths):.2f}x fewer; "
              + "seconds " + ", ".join(f"{r['path_seconds']:.0f}" for r in paths))
    print("dense-from-scratch width h: " + ", ".join(str(r["width"]) for r in rows)
          + "; retraining budget B (steps): " + ", ".join(str(r["budget"]) for r in rows))


def _signed(values):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


def _pm(values, fmt):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} ± {sd:{fmt}}"


def figure(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    first = next(((r["path"], r["chosen"]) for r in rows if "path" in r), None)
    if first is not None:
        history, chosen = first
        it = [r["iteration"] for r in history]
        for j, name in enumerate(("layer 1", "layer 2", "layer 3")):
            axes[0].plot(it, [r["ranks"][j] for r in history], label=name)
        axes[0].set(xlabel="iteration", ylabel="rank", title="ranks along the harmonic path (first seed)")
        axes[0].legend()
        axes[1].plot(it, [100 * r["test_accuracy"] for r in history], label="test")
        axes[1].plot(it, [100 * r["accuracy"] for r in history], label="stopping set", alpha=0.7)
        axes[1].axvline(it[chosen], color="k", ls=":", label="last within 1 pt")
        axes[1].set(xlabel="iteration", ylabel="accuracy (%)", title="accuracy along the path (retrained)")
        axes[1].legend()
    for k, (key, _) in enumerate(METHODS):
        have = [r for r in rows if key in r]
        axes[2].scatter([r[key][0] for r in have], [100 * r[key][1] for r in have], label=key, s=18,
                        color=f"C{k}")
    axes[2].set_xscale("log")
    axes[2].set(xlabel="stored parameters", ylabel="test accuracy (%)", title="methods at equal parameters")
    axes[2].legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--path-seeds", type=int, default=None,
                        help="run the harmonic path until collapse (Fig. 5) on the first this many seeds (default all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    paths = args.seeds if args.path_seeds is None else args.path_seeds
    for seed in range(args.seeds):
        t = time.perf_counter()
        rows.append(run_seed(seed, seed < paths))
        print(f"seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    report(rows)
    figure(rows, FIGURES / "pruning.png")


if __name__ == "__main__":
    main()
