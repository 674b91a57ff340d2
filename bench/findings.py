"""Calibration of the two-set comparison (MATH.md section 11) on the built-in digits MLP and CNN.

For each network (the shipped ``digits_mlp.npz`` 64-100-100-100-10 and
``digits_cnn.npz``, on their held-out digits):

1. **Route check**: the comparison family of ``relusv.torch.analyze`` (GMW at
   every layer's input and output, exact ``s_0`` of every ReLU layer) is
   recomputed here from activations captured once, with the same functions
   (``relusv.analysis.compare``); the p-values and verdicts must equal the
   table's (so the runs below measure the procedure ``analyze`` applies).
2. **Null runs** (at least 200): the misclassified set is replaced by a random
   subset of the correctly classified points of the same size (labels
   independent of the model's errors), and the whole family is tested with a
   fresh design seed per run. The family-wise false-verdict rate (runs with
   any verdict) must be at most ``alpha`` = 5 %, and its Clopper-Pearson 95 %
   upper limit at most 8 %. The directions stay those of the analysis seed:
   the permutation test is exact given the directions, which do not depend on
   the labels.
3. **Power**: on null splits, the points of the smaller group scaled by
   ``l`` at every site (its widths and ``s_0`` scale by ``l`` exactly:
   ``w(lK) = l w(K)``), the fraction of runs with verdict ``incorrect larger``
   (Holm over the family), per ``l``: the power curve; and how often the
   effect's 95 % interval holds the planted effect ``-2 (l - 1) / (l + 1)``.
4. **Findings**: the real split, stated with the procedure (verdict, Holm-adjusted p,
   effect and its 95 % interval).
5. **Time**: ``analyze`` with the new procedure against the revision before
   it (``--old-ref``, extracted with ``git archive``), interleaved runs,
   medians and their ratio (target: at most 2x).

    PYTHONPATH=python .venv/bin/python bench/findings.py [--networks mlp cnn] [--null-runs 400]
        [--power-runs 40] [--parts route null power timing]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from relusv.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_PERMUTATIONS,
    DEFAULT_REPEATS,
    adjust,
    compare,
    describe,
    design,
    gmw_functional,
    maximum_functional,
)
from relusv.analysis.directions import gaussian_directions
from relusv.layer_table import top_values
from relusv.torch import analyze, discover
from relusv.torch.analysis import layer_input
from relusv.width import DEFAULT_SAMPLES, DEFAULT_TRIM
from scipy.stats import beta

REPO = Path(__file__).resolve().parents[1]
OLD_REF = "1207e62"   # the last revision comparing by the spread heuristic


def network(name: str):
    if name == "mlp":
        from relusv.report.default import default_inputs as inputs
    else:
        from relusv.report.example_cnn import cnn_inputs as inputs
    source, data, _ = inputs()
    return source.module, data.x, data.y


def capture(model, x, y) -> Tuple[np.ndarray, List[Tuple[str, str, np.ndarray]]]:
    """The classification and the per-point values of every member of analyze's family, for every point:
    ``(label, kind, values)`` with ``values`` the projections on the directions of seed 0 (GMW) or the
    norms ``||phi(x) - phi_0||`` (``s_0``)."""
    found = discover(model)
    store: Dict[tuple, np.ndarray] = {}
    handles = []
    for layer in found.layers:
        def hook(_m, inputs, output, layer=layer):
            if layer.weighted:
                store[(layer.name, "input")] = inputs[0].detach().flatten(1).numpy().copy()
                store[(layer.name, "input_shape")] = tuple(inputs[0].shape[1:])
            store[(layer.name, "output")] = layer.activate(output).detach().flatten(1).numpy().copy()
        handles.append(layer.module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(x), dtype=next(model.parameters()).dtype))
    for h in handles:
        h.remove()
    correct = (logits.argmax(1).numpy() == np.asarray(y))
    members = []
    for layer in found.layers:
        for site in (("input", "output") if layer.weighted else ("output",)):
            a = store[(layer.name, site)]
            members.append((f"{layer.name} {site} GMW", "gmw",
                            a.astype(np.float64) @ gaussian_directions(a.shape[1], DEFAULT_SAMPLES, 0).T))
        if layer.weighted and layer.relu:
            table_layer = layer_input(layer, store.get((layer.name, "input_shape")))
            members.append((f"{layer.name} s_0", "s0", top_values(table_layer, store[(layer.name, "output")])[:, None]))
    return correct, members


def run_family(members, mask, seed: int, permutations: int, bootstrap: int, scale: float = 1.0):
    """The family of comparisons on the points where ``mask`` says correct/incorrect (all members)."""
    plan = design(mask, repeats=DEFAULT_REPEATS, permutations=permutations, bootstrap=bootstrap,
                  max_group_size=DEFAULT_MAX_GROUP_SIZE, seed=seed)
    factor = np.where(plan.labels, 1.0, scale)[:, None]
    out = []
    for _, kind, values in members:
        v = values[plan.pool] * factor
        f = gmw_functional(None, DEFAULT_SAMPLES, DEFAULT_TRIM, 0, projected=v) if kind == "gmw" else \
            maximum_functional(v)
        out.append(compare(plan, f))
    adjust(out, DEFAULT_ALPHA)
    return out


def route_check(model, x, y, correct, members) -> None:
    table = analyze(model, x, y, seed=0, progress=False)
    ours = run_family(members, correct, 0, DEFAULT_PERMUTATIONS, DEFAULT_BOOTSTRAP)
    theirs = []
    for row in table.to_dict("records"):
        for prefix in ("input_gmw", "gmw"):
            if np.isfinite(row[f"{prefix}_p_value"]):
                theirs.append((row[f"{prefix}_p_value"], row[f"{prefix}_verdict"], row[f"{prefix}_difference"]))
        if np.isfinite(row["s0_p_value"]):
            theirs.append((row["s0_p_value"], row["s0_verdict"], row["s0_difference"]))
    # analyze orders a layer's sites input, output, s_0 as members() does
    p_gap = max(abs(a.p_value - b[0]) for a, b in zip(ours, theirs))
    same = len(ours) == len(theirs) and all(a.verdict == b[1] for a, b in zip(ours, theirs))
    d_gap = max(abs(a.difference - b[2]) / max(abs(b[2]), 1e-300) for a, b in zip(ours, theirs))
    print(f"  route check against analyze: {len(ours)} members, verdicts identical: {same}, "
          f"largest |p difference| {p_gap:.2g}, largest relative D difference {d_gap:.1e}")
    print("  findings on the real split (MATH.md section 11, Holm over the family):")
    for (label, _, _), c in zip(members, ours):
        print(f"    {label:<26} correct {c.correct:9.4g}  incorrect {c.incorrect:9.4g}  {describe(c, 0.95)}")


def clopper_pearson(k: int, n: int, level: float = 0.95) -> Tuple[float, float]:
    a = 1 - level
    low = beta.ppf(a / 2, k, n - k + 1) if k else 0.0
    high = beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def null_mask(rng: np.random.Generator, correct: np.ndarray) -> np.ndarray:
    """Over the correctly classified points: a random subset of the size of the misclassified set flagged
    'incorrect' (labels independent of the model's errors)."""
    n_correct, n_incorrect = int(correct.sum()), int((~correct).sum())
    mask = np.ones(n_correct, dtype=bool)
    mask[rng.choice(n_correct, n_incorrect, replace=False)] = False
    return mask


def null_runs(correct, members, runs: int, seed: int, permutations: int) -> None:
    keep = [(label, kind, values[correct]) for label, kind, values in members]
    children = np.random.SeedSequence([seed, 1]).spawn(runs)
    any_false, per_member = 0, np.zeros(len(members), dtype=int)
    start = time.perf_counter()
    for child in children:
        rng = np.random.default_rng(child)
        verdicts = [c.verdict for c in run_family(keep, null_mask(rng, correct), int(rng.integers(2**63)),
                                                  permutations, 1)]
        false = np.array([v != "no difference shown" for v in verdicts])
        per_member += false
        any_false += bool(false.any())
    rate = any_false / runs
    low, high = clopper_pearson(any_false, runs)
    verdict = "PASS" if rate <= DEFAULT_ALPHA and high <= 0.08 else "FAIL"
    print(f"  null runs: {runs} ({time.perf_counter() - start:.0f} s), family of {len(members)}: runs with any "
          f"verdict {any_false} = {100 * rate:.1f} % (95 % Clopper-Pearson [{100 * low:.1f} %, {100 * high:.1f} %]); "
          f"criterion rate <= 5 % and upper limit <= 8 %: {verdict}")
    print(f"    false verdicts per member (of {runs}): " +
          ", ".join(f"{label}: {k}" for (label, _, _), k in zip(members, per_member)))


def power_curve(correct, members, runs: int, seed: int, permutations: int, scales: List[float]) -> None:
    keep = [(label, kind, values[correct]) for label, kind, values in members]
    print(f"  power on planted effects ({runs} null splits per scale; the smaller group's points scaled by l at "
          "every site; effect 2(l-1)/(l+1) = D / mean(f) of the population):")
    print("    l       effect   any member   mean over members   smallest member   largest member   "
          "interval coverage")
    for scale in scales:
        children = np.random.SeedSequence([seed, 2, int(round(scale * 1e6))]).spawn(runs)
        hits = np.zeros(len(members))
        any_hit, covered = 0, 0
        truth = -2 * (scale - 1) / (scale + 1)   # the smaller ('incorrect') group scaled: D < 0
        for child in children:
            rng = np.random.default_rng(child)
            results = run_family(keep, null_mask(rng, correct), int(rng.integers(2**63)), permutations,
                                 DEFAULT_BOOTSTRAP, scale)
            verdicts = [c.verdict for c in results]
            covered += sum(c.effect_low <= truth <= c.effect_high for c in results)
            detected = np.array([v == "incorrect larger" for v in verdicts])
            hits += detected
            any_hit += bool(detected.any())
        power = hits / runs
        print(f"    {scale:<6.3f}  {2 * (scale - 1) / (scale + 1):+6.3f}   {any_hit / runs:9.2f}    "
              f"{power.mean():15.2f}   {power.min():15.2f}   {power.max():14.2f}   "
              f"{covered / (runs * len(members)):14.3f}")


TIMING = """
import json, time, torch
torch.set_num_threads(1)
from relusv.torch import analyze
if {name!r} == "mlp":
    from relusv.report.default import default_inputs as inputs
else:
    from relusv.report.example_cnn import cnn_inputs as inputs
source, data, _ = inputs()
model, x, y = source.module, data.x, data.y
analyze(model, x, y, progress=False)
start = time.perf_counter()
analyze(model, x, y, progress=False)
print(json.dumps(time.perf_counter() - start))
"""


def timing(name: str, runs: int, old_ref: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", old_ref, "python/relusv"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {"old": str(Path(tmp) / "python"), "new": str(REPO / "python")}
        times: Dict[str, List[float]] = {"old": [], "new": []}
        for _ in range(runs):
            for which, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": tree}
                out = subprocess.run([sys.executable, "-c", TIMING.format(name=name)],
                                     capture_output=True, text=True, env=env, check=True).stdout
                times[which].append(json.loads(out.strip().splitlines()[-1]))
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"  analyze time (defaults, 1 torch thread, median of {runs}): before ({old_ref}) {old:.2f} s, "
          f"now {new:.2f} s, ratio {new / old:.2f} (target <= 2); runs old "
          f"{[round(t, 2) for t in times['old']]}, new {[round(t, 2) for t in times['new']]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--null-runs", type=int, default=400)
    parser.add_argument("--power-runs", type=int, default=40)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.03, 1.06, 1.1, 1.15, 1.25])
    parser.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS)
    parser.add_argument("--timing-runs", type=int, default=3, help="0 skips the timing")
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", nargs="+", default=["route", "null", "power", "timing"],
                        choices=["route", "null", "power", "timing"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.networks:
        model, x, y = network(name)
        correct, members = capture(model, x, y)
        print(f"{name}: {len(y)} held-out points, {int((~correct).sum())} misclassified; family of "
              f"{len(members)} comparisons; {DEFAULT_REPEATS} repeats, {args.permutations} permutations, "
              f"alpha {DEFAULT_ALPHA}")
        if "route" in args.parts:
            route_check(model, x, y, correct, members)
        if "null" in args.parts:
            null_runs(correct, members, args.null_runs, args.seed, args.permutations)
        if "power" in args.parts:
            power_curve(correct, members, args.power_runs, args.seed, args.permutations, args.scales)
        if "timing" in args.parts and args.timing_runs:
            timing(name, args.timing_runs, args.old_ref)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
