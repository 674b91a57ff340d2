"""Input-sized allocations are checked before they happen (issue: hardening, item 1).

Each case asks for far more memory than the process may use. Under an
address-space limit (``RLIMIT_AS``) an allocation that was not checked first
would abort the child ("Fatal error: failed to allocate"); a checked one
gives ``MemoryLimitError`` (status ``RELUSV_ERROR_OUT_OF_MEMORY``), and the
child goes on to compute a small result. The child's peak resident memory
shows that nothing large was touched.
"""
from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pytest
import relusv

CHILD = textwrap.dedent("""
    import json, resource
    import numpy as np
    import relusv

    def in_use():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    # 1 GiB of address space beyond what the interpreter, NumPy and OpenBLAS already map.
    limit = in_use() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rng = np.random.default_rng(0)
    cases = {
        # operator_gmw on a linear map: S x m directions and S x n products (2^20 x 1000 doubles = 8 GiB)
        "operator_gmw": lambda: relusv.operator_gmw(rng.normal(size=(500, 500)), samples=2**20),
        # the fit gradient: scratch N (2k + m) with N = 100,000, k = 10, m = 2,000 (1.6 GB) and phi(X)
        "relu_fit_gradient": lambda: relusv.relu_fit_gradient(
            rng.normal(size=(2000, 10)), None, rng.normal(size=(100000, 10)),
            rng.normal(size=(2000, 10)), rng.normal(size=(10, 10))),
        # kept factors: sum_k k (m + n) = 499,500 x 2,000 values for a 1,000 x 1,000 layer
        "return_factors": lambda: relusv.relu_singular_values(
            rng.normal(size=(1000, 1000)), X=rng.normal(size=(8, 1000)), max_steps=0, return_factors=True),
        # an accumulator whose directions alone are 2^14 x 2^14 doubles (2 GiB)
        "accumulator": lambda: relusv.GMWAccumulator(2**14, samples=2**14),
        # the one-shot width with huge S: directions 2^22 x 1,000 floats
        "gmw": lambda: relusv.gmw(rng.normal(size=(10, 1000)), samples=2**22),
    }
    report = {"limit_gib": relusv.memory_limit() / 2**30}
    for name, case in cases.items():
        try:
            case()
            report[name] = "no error"
        except relusv.MemoryLimitError as error:
            report[name] = error.status_name
    report["after"] = relusv.gmw(rng.normal(size=(100, 5)), samples=50)
    # VmHWM: the high-water mark of this process's own address space. (ru_maxrss is not
    # used: across exec it keeps the parent's high-water mark, e.g. a large pytest process.)
    with open("/proc/self/status") as f:
        hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    report["peak_rss_mib"] = hwm_kib / 1024
    print(json.dumps(report))
""")


def test_refusals_happen_before_allocating_under_an_address_space_limit(python, subprocess_env):
    out = subprocess.run([python, "-c", CHILD], env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["limit_gib"] <= 1.01  # the RLIMIT_AS headroom lowers the limit
    for name in ("operator_gmw", "relu_fit_gradient", "return_factors", "accumulator", "gmw"):
        assert report[name] == "RELUSV_ERROR_OUT_OF_MEMORY", (name, report)
    assert report["after"] > 0  # the process survives and computes
    assert report["peak_rss_mib"] < 1024, report


def test_limit_is_overridable_and_refusal_is_distinct():
    x = np.random.default_rng(1).normal(size=(50, 20))
    default = relusv.memory_limit()
    try:
        relusv.set_memory_limit(16 << 20)
        assert relusv.memory_limit() == 16 << 20
        with pytest.raises(relusv.MemoryLimitError, match="memory limit of 16.0 MiB") as info:
            relusv.gmw(x, samples=1_000_000)
        assert info.value.status_name == "RELUSV_ERROR_OUT_OF_MEMORY"
        assert isinstance(info.value, MemoryError) and isinstance(info.value, relusv.UserInputError)
        assert relusv.gmw(x, samples=100) > 0  # small work still fits
    finally:
        relusv.set_memory_limit(None)
    assert relusv.memory_limit() == default


def test_environment_variable_sets_the_limit(python, subprocess_env):
    env = dict(subprocess_env, RELUSV_MEMORY_LIMIT="64M")
    script = textwrap.dedent("""
        import numpy as np, relusv
        print(relusv.memory_limit())
        try:
            relusv.GMWAccumulator(4096, samples=4096)  # 128 MiB of directions
        except relusv.MemoryLimitError as error:
            print(error.status_name)
    """)
    out = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == [str(64 << 20), "RELUSV_ERROR_OUT_OF_MEMORY"], out.stderr


def test_gmw_scratch_with_huge_samples_is_bounded(rng):
    # 2^20 directions: the block scratch is S x 1 row (8 MiB), not S x 64 rows; the
    # result agrees with the closed form of a segment's width.
    a = rng.normal(size=3)
    x = np.stack([-a, a])
    w = relusv.gmw(x, samples=2**20, trim=0)
    assert w == pytest.approx(2 * np.linalg.norm(a) * np.sqrt(2 / np.pi), rel=0.01)
