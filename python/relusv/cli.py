"""The ``relusv`` command line.

Every subcommand lives in its own function that receives parsed arguments.
User mistakes (missing files, wrong shapes, bad values) exit with status 2
and a one-line reason on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ._npyfile import check_npy_file, check_npz_member
from .errors import ReluSVError, UserInputError
from .report.errors import ReportInputError
from .width import DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_TRIM

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """A user mistake: reported in one line, exit status 2."""


def _load_points(path: str) -> np.ndarray:
    """The array in a .npy file, or the array ``X`` of a .npz file, read completely.

    Every way the file can be unreadable (missing, not NumPy, truncated, a
    bad CRC or deflate stream inside a .npz, object arrays that would need
    pickle) is a ``UsageError`` naming the file; a declared size beyond what
    the file holds or the memory limit allows is refused before it is read.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such file: {path}")
    check_npy_file(p, path)
    try:
        data = np.load(p, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            return _real_array(data, path)
        with data:
            if "X" not in data.files:
                raise UsageError(f"{path} has no array named 'X' (found: {', '.join(data.files) or 'none'})")
            check_npz_member(data, "X", f"{path}: X")
            return _real_array(data["X"], f"{path}: X")
    except (UsageError, UserInputError):
        raise
    except Exception as error:  # numpy, zipfile and zlib raise many types for unreadable files
        raise UsageError(f"cannot read {path} as a NumPy .npy/.npz file: {_one_line(error)}") from None


def _real_array(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise UsageError(f"{name} has dtype {a.dtype}; expected real numbers")
    return a


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def command_gmw(args: argparse.Namespace) -> int:
    from .width import gmw

    x = _load_points(args.file)
    r = gmw(x, samples=args.samples, seed=args.seed, trim=args.trim, spherical=args.spherical,
            return_details=True)
    kind = "spherical" if args.spherical else "Gaussian"
    if args.json:
        print(json.dumps({"file": args.file, "kind": kind, "estimate": r.estimate, "std_error": r.std_error,
                          "mean": r.mean, "mean_std_error": r.mean_std_error, "samples": r.samples,
                          "points": r.points, "dimension": int(np.prod(x.shape[1:])), "trim": r.trim,
                          "seed": r.seed}))
    else:
        print(f"{kind} mean width of {r.points} points in dimension {int(np.prod(x.shape[1:]))}: "
              f"{r.estimate:.6g} ± {r.std_error:.2g} (S = {r.samples}, trim = {r.trim}, seed = {r.seed})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relusv",
        description="ReLU singular values and Gaussian mean widths of ReLU networks.",
        epilog="examples:\n  relusv gmw activations.npy\n  relusv gmw data.npz --samples 1000 --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ._native import VERSION

    parser.add_argument("--version", action="version", version=f"relusv {VERSION}")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("gmw", help="Gaussian mean width of the rows of a .npy file (or X in a .npz)",
                       description="Estimate the Gaussian mean width of the points (rows) stored in FILE.")
    p.add_argument("file", help=".npy array of shape (N, ...) or .npz with an array X")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"number of Gaussian directions (default {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the directions (default {DEFAULT_SEED})")
    p.add_argument("--trim", type=float, default=DEFAULT_TRIM,
                   help=f"fraction trimmed at each end, in [0, 0.5) (default {DEFAULT_TRIM})")
    p.add_argument("--spherical", action="store_true", help="spherical instead of Gaussian directions")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=command_gmw)

    from .report.command import add_parser as add_report_parser

    add_report_parser(sub)
    return parser


DEFAULT_COMMAND = ["report"]  # the built-in digits report with default settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or DEFAULT_COMMAND)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (UsageError, ReportInputError, UserInputError) as error:
        print(f"relusv: error: {_one_line(error)}", file=sys.stderr)  # a user mistake: one line, no traceback
        return EXIT_USAGE
    except ReluSVError as error:  # a numerical failure reported by the library
        print(f"relusv: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("relusv: interrupted", file=sys.stderr)
        return 130
