"""``relusv report``: the command-line glue (arguments, headline output, exit codes).

Bad inputs raise ``ReportInputError`` (a ``ValueError``); ``relusv.cli.main``
prints its one-line message and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

from .errors import ReportInputError

DESCRIPTION = """\
Write a layer-by-layer spectral report of a trained ReLU network: every Linear / Conv2d layer found
in the model (torch.fx tracing, BatchNorm folded, named by its qualified module name), its linear
singular values, ReLU singular-value bounds over correctly and incorrectly classified data, the
Gaussian mean width (GMW) of both sets on equal-size subsets with a calibrated test (MATH.md section 11), the effective
dimension, and one-shot harmonic pruning of MLPs. Without --model and --data: the built-in digits
network."""

EPILOG = """\
examples:
  relusv report                                   # built-in digits MLP, writes ./relusv-report
  relusv report --example cnn                     # built-in digits CNN (conv layers, BatchNorm folded)
  relusv report --quick --out /tmp/r --json       # smaller settings, summary as JSON
  relusv report --model mlp.npz --data test.npz   # W0,b0,W1,b1,... and X,y
  relusv report --model mlp.pt --data X.npy y.npy # torch.save(module) or an MLP's state_dict
  relusv report --model net.pt --data test.npz    # torch.jit.save of a Sequential: read as data, never run
  relusv report --model my_pkg.nets:build --weights state_dict.pt --data test.npz   # your architecture
  relusv report --model mlp.pt --data test.npz --train-data train.npz --retrain

The report directory holds index.html (open it in a browser), report.json (schema.json),
CSV tables and PNG figures; it is written beside --out and swapped in whole, replacing an earlier
report there (a folder holding other files is refused). Exit status: 0 on success, 2 on bad input."""

DEFAULT_OUT = "relusv-report"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="layer-by-layer spectral report of a ReLU network: MLP, CNN, ResNet... "
                                         "(default: the built-in digits MLP)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", metavar="FILE|MODULE:CALLABLE",
                   help=".npz with W0, b0, W1, b1, ...; a PyTorch checkpoint (a saved module of standard layers, or "
                        "an MLP's state_dict); a TorchScript Sequential; or package.module:callable returning your "
                        "nn.Module")
    p.add_argument("--weights", metavar="FILE",
                   help="state_dict for --model package.module:callable (read with torch.load(weights_only=True))")
    p.add_argument("--trust-model-code", action="store_true",
                   help="load a TorchScript --model with torch.jit.load, which RUNS code stored in the archive (only "
                        "for archives from a trusted source); by default archives are read as data, and only "
                        "Sequentials of standard layers are accepted")
    p.add_argument("--data", metavar="FILE", nargs="+",
                   help=".npz with X (points as rows) and y (labels), or two .npy files: points, labels")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output directory (default ./{DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller settings (fewer repeats and ranks; for CI)")
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="harmonic pruning keeps accuracy within this many percentage points (default 1)")
    p.add_argument("--retrain", action="store_true",
                   help="also run harmonic pruning with retraining (needs torch; training data: --train-data; "
                        "the built-in digits network is always also pruned with retraining, on its own training "
                        "split)")
    p.add_argument("--train-data", metavar="FILE", nargs="+",
                   help="training data for --retrain, in the same forms as --data")
    p.add_argument("--example", choices=("mlp", "cnn"), default=None,
                   help="the built-in example without --model and --data: the digits MLP (default) or the digits "
                        "CNN (convolutions with channel-rank bounds, needs torch)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def _inputs(args):
    """``(model, data, train)``: a ``ModelSource`` and validated data."""
    from .data import load_data, model_outputs, validate
    from .default import default_inputs
    from .example_cnn import cnn_inputs
    from .source import load_model

    if args.model is None and args.data is None:
        if args.train_data is not None or args.weights is not None:
            raise ReportInputError("--train-data and --weights go with --model and --data; the built-in network "
                                   "brings its own")
        return cnn_inputs() if args.example == "cnn" else default_inputs()
    if args.example is not None:
        raise ReportInputError("--example is the built-in network: give it without --model and --data")
    if args.model is None:
        raise ReportInputError("--data needs --model (or give neither for the built-in default)")
    if args.data is None:
        raise ReportInputError("--model needs --data: a .npz with X and y, or two .npy files")
    model = load_model(args.model, args.weights, trust_model_code=args.trust_model_code, seed=args.seed)
    for note in model.notes:   # what the report's page states about its model, said at once too
        print(f"relusv report: {note}", file=sys.stderr)

    def checked(paths):
        x, y, source = load_data(paths)
        if model.network is not None:
            return validate(x, y, model.network.input_dimension, model.network.classes, source)
        points = validate(x, y, None, None, source)
        return validate(points.x, points.y, None, model_outputs(model.module, points.x, source), source)

    data = checked(args.data)
    train = None
    if args.train_data is not None:
        train = checked(args.train_data)
    elif args.retrain:
        raise ReportInputError("--retrain with your own model needs --train-data (the data to retrain on)")
    return model, data, train


def summary(report: dict, out: Path) -> dict:
    """The headline numbers (what ``--json`` prints)."""
    f = report["findings"]

    def pruning(p):
        if p is None:
            return None
        return {"method": p["method"], "tolerance": p["tolerance"], "initial_ranks": p["initial_ranks"],
                "chosen": p["chosen"], "baseline": p["baseline"], "parameters_before": p["parameters_before"],
                "guarantee": p["guarantee"], "stop_reason": p.get("stop_reason"), "trials": p.get("trials")}

    return {
        "report": str((out / "index.html").resolve()),
        "json": str((out / "report.json").resolve()),
        "model": report["model"]["source"],
        "data": report["data"],
        "elapsed_seconds": report["elapsed_seconds"],
        "gmw_by_layer": f["gmw_by_layer"],
        "gmw_correct_larger_all_layers": f["gmw_correct_larger_all_layers"],
        "gmw_grows_with_depth": f["gmw_grows_with_depth"],
        "relu_bounds": f["relu_bounds"],
        "top_bound_correct_larger": f["top_bound_correct_larger"],
        "layers": [layer["name"] for layer in report["layers"]],
        "pruning": pruning(report["pruning"]),
        "pruning_retrained": pruning(report["pruning_retrained"]),
    }


def _yes(flag) -> str:
    return {True: "yes", False: "no", None: "n/a"}[flag]


def _number(value, spec: str) -> str:
    """``value`` formatted by ``spec``; ``n/a`` for None (a ratio over points of radius 0, a bound not computed)."""
    return "n/a" if value is None else format(value, spec)


def print_headline(s: dict) -> None:
    from .html import ratio_text

    d = s["data"]
    print(f"relusv report: {s['model']}")
    print(f"  data: {d['source']}: {d['points']} points, accuracy {100 * d['accuracy']:.2f}% "
          f"({d['correct']} correct, {d['incorrect']} incorrect)")
    if s["gmw_by_layer"]:
        print(f"  GMW of correctly vs incorrectly classified points ({d['group_size']} each, mean ± sd over repeats):")
        for r in s["gmw_by_layer"]:
            print(f"    {r['name']:<16} correct {r['correct_mean']:8.3f} ± {r['correct_spread']:.3f}   "
                  f"incorrect {r['incorrect_mean']:8.3f} ± {r['incorrect_spread']:.3f}   "
                  f"ratio {ratio_text(r['correct_mean'], r['incorrect_mean'])}: {r['statement']}")
        g = s["gmw_grows_with_depth"]
        print(f"  correct larger (Holm-adjusted p < alpha) at every hidden layer: "
              f"{_yes(s['gmw_correct_larger_all_layers'])}; grows with depth beyond the spreads: "
              f"correct {_yes(g['correct'])}, incorrect {_yes(g['incorrect'])}")
    else:
        print(f"  too few correctly or incorrectly classified points to compare the groups: "
              f"{d['comparison']}")
    if s["relu_bounds"]:
        print("  ReLU singular-value bounds vs linear sigma_k: s_0, and median over k of bound_k / (sigma_k * radius)")
        for r in s["relu_bounds"]:
            name = "sphere sample" if r["group"] == "unit_sphere" else r["group"]
            print(f"    {r['name']} {name:<9}  s_0 {_number(r['top_bound'], '7.3f')}   sigma_0 {r['sigma_0']:.3f}   "
                  f"radius {r['radius']:6.3f}   median ratio {_number(r['ratio_to_scaled_sigma_median'], '.3f')}   "
                  f"max ratio {_number(r['ratio_to_scaled_sigma_max'], '.3f')}")
    for p in (s["pruning"], s["pruning_retrained"]):
        if p is None:
            continue
        c = p["chosen"]
        kept = (" (a layer cut to rank r stays dense while r (m + n) >= m n: no parameter saved)"
                if c["parameters"] == p["parameters_before"] and tuple(c["ranks"]) != tuple(p["initial_ranks"])
                else "")
        capped = (f" (stopped after {p['trials']} trial cuts, the quick settings' limit)"
                  if p.get("stop_reason") == "max_iterations" else "")
        print(f"  harmonic pruning ({p['method']}): ranks {tuple(p['initial_ranks'])} -> {tuple(c['ranks'])}, "
              f"parameters {p['parameters_before']:,} -> {c['parameters']:,}{kept}{capped}; {p['guarantee']}")
    print(f"  report: {s['report']}  ({s['elapsed_seconds']:.1f} s)")


def run(args: argparse.Namespace) -> int:
    from .atomic import check_out, staged
    from .build import compute, write
    from .errors import missing_dependency
    from .settings import ReportSettings

    write = staged(write)
    try:
        import matplotlib  # noqa: F401  (the figures; checked before any work)
    except ImportError:
        raise missing_dependency("matplotlib", "the report") from None

    if not 0 <= args.tolerance <= 100:
        raise ReportInputError(f"--tolerance must lie in [0, 100] percentage points, got {args.tolerance}")
    if args.seed < 0:
        raise ReportInputError(f"--seed must be non-negative, got {args.seed}")
    out = Path(args.out)
    check_out(out, args.out)   # before any work: the folder must be replaceable as a whole
    started = time.perf_counter()
    model, data, train = _inputs(args)
    from .retrain import available as retrain_available

    if args.retrain:
        if not retrain_available():
            raise missing_dependency("torch", "--retrain", extra="torch")
    settings = ReportSettings.default(seed=args.seed, quick=args.quick, tolerance=args.tolerance / 100)
    show: Optional[bool] = False if args.no_progress else None
    builtin_mlp = args.model is None and args.example is None and retrain_available()   # has a training split
    report, attrs = compute(model, data, settings, show_progress=show,
                            train=train if args.retrain or builtin_mlp else None)
    try:
        write(report, attrs, out)
    except OSError as error:
        raise ReportInputError(f"cannot write the report to {args.out}: {error.strerror or error}") from None
    s = summary(report, out)
    s["elapsed_seconds"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        print_headline(s)
    return 0
