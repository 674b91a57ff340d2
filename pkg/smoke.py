"""Smoke test of an installed relusv, run by pkg/test_package.sh in a fresh virtual environment
outside the repository (with the system OpenBLAS/LAPACKE hidden from the loader).

Checks against independent values: the Gaussian mean width of the cube {-1, 1}^n (exactly
2 n sqrt(2 / pi)), the singular values of W (NumPy), the exact k = 0 ReLU singular value
max ||ReLU(W x + b) - ReLU(b)|| (MATH.md section 2), and `relusv report --quick` end to end.
"""
import itertools
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import relusv


def check_gmw() -> None:
    n = 6
    cube = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    r = relusv.gmw(cube, samples=20000, seed=1, trim=0, return_details=True)
    exact = 2 * n * math.sqrt(2 / math.pi)
    assert abs(r.estimate - exact) < 4 * r.std_error, (r.estimate, exact, r.std_error)
    print(f"gmw(cube {n}) = {r.estimate:.4f} +- {r.std_error:.4f}, exact {exact:.4f}")


def check_relu_singular_values() -> None:
    rng = np.random.default_rng(0)
    w, b, x = rng.normal(size=(8, 6)), 0.1 * rng.normal(size=8), rng.normal(size=(200, 6))
    s = relusv.relu_singular_values(w, b, x, max_steps=30, seed=0)
    exact0 = float(np.linalg.norm(np.maximum(x @ w.T + b, 0) - np.maximum(b, 0), axis=1).max())
    assert abs(s.bound[0] - exact0) <= 1e-10 * exact0, (s.bound[0], exact0)
    assert np.allclose(s.sigma, np.linalg.svd(w, compute_uv=False), rtol=1e-12, atol=1e-12)
    assert np.all(s.bound <= s.truncation_bound) and np.all(np.diff(s.bound) <= 0), s.bound
    print(f"relu_singular_values: bounds {np.round(s.bound, 4).tolist()}")


def check_report() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        command = [str(Path(sys.executable).with_name("relusv")), "report", "--quick", "--no-progress", "--json",
                   "--out", str(out)]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp, timeout=900)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        report = json.loads((out / "report.json").read_text())
        schema = json.loads((out / "schema.json").read_text())
        assert set(schema["required"]) <= set(report), set(schema["required"]) - set(report)
        for name in ("index.html", "spectra.png", "gmw.png", "subsets.npz"):
            assert (out / name).stat().st_size > 0, name
        assert report["relusv_version"] == relusv.__version__
        print(f"relusv report --quick: {summary['data']['points']} points, {summary['elapsed_seconds']:.1f} s")


def main() -> int:
    package = Path(relusv.__file__).resolve().parent
    print(f"relusv {relusv.__version__} from {package}")
    assert "site-packages" in package.parts, package
    check_gmw()
    check_relu_singular_values()
    check_report()
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
