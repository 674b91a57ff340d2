"""The distributions `make wheel` writes to dist/: what the wheel and the sdist hold.

Run by pkg/test_package.sh, which passes the files in environment variables:
RELUSV_WHEEL (the repaired wheel), RELUSV_RAW_WHEEL (the same before auditwheel, built
from the sdist), RELUSV_TREE_WHEEL (built straight from the working tree), RELUSV_SDIST.
The expected contents come from the source tree (git's file list when there is one),
not from the build.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "pkg"))
import native  # noqa: E402

VERSION = native.version()
# Libraries a manylinux wheel may take from the system (the manylinux policies' list, the part relevant here).
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2",
                    "librt.so.1", "ld-linux-x86-64.so.2"}
# The files the build step adds to the package.
BUILT = {f"relusv/{native.LIBRARY}", "relusv/MATH.md"}


def _path(variable: str) -> Path:
    value = os.environ.get(variable)
    assert value, f"{variable} is not set (run pkg/test_package.sh)"
    return Path(value)


def tracked(prefix: str) -> list[str]:
    """Files under ``prefix`` (relative to the root) that belong to the source: git's list, or the tree."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", prefix], cwd=ROOT, check=True, capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line]
    return [str(p.relative_to(ROOT)) for p in (ROOT / prefix).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".so" not in p.suffixes]


def package_files() -> set[str]:
    """What the wheel's relusv package must hold: every file of python/relusv (a data file the
    code reads but pyproject.toml's package-data misses fails here), and the built files."""
    return {f[len("python/"):] for f in tracked("python/relusv")} | BUILT


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {name: z.read(name) for name in z.namelist() if not name.endswith("/")}


def readelf(path: Path) -> str:
    return subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True, text=True).stdout


def needed(path: Path) -> set[str]:
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", readelf(path)))


def test_the_wheel_is_tagged_for_the_platform():
    wheel = _path("RELUSV_WHEEL")
    assert re.fullmatch(rf"relusv-{re.escape(VERSION)}-py3-none-manylinux_\d+_\d+_x86_64(\.manylinux\w+)*\.whl",
                        wheel.name), wheel.name
    meta = wheel_files(wheel)[f"relusv-{VERSION}.dist-info/WHEEL"].decode()
    assert "Root-Is-Purelib: false" in meta and "Tag: py3-none-manylinux" in meta, meta


def test_the_wheel_holds_every_package_file_and_the_data_the_code_reads():
    files = wheel_files(_path("RELUSV_WHEEL"))
    package = {name for name in files if name.startswith("relusv/")}
    expected = package_files()
    assert package == expected, (sorted(package - expected), sorted(expected - package))
    for name in expected - BUILT:
        assert files[name] == (ROOT / "python" / name).read_bytes(), name
    assert files["relusv/MATH.md"] == (ROOT / "docs" / "MATH.md").read_bytes()
    for name in ("relusv/report/schema.json", "relusv/data/digits_mlp.npz", "relusv/py.typed"):
        assert name in files, name


def test_the_wheel_bundles_openblas_lapacke_and_their_runtime(tmp_path):
    with zipfile.ZipFile(_path("RELUSV_WHEEL")) as z:
        z.extractall(tmp_path)
    bundled = {p.name for p in (tmp_path / "relusv.libs").iterdir()}
    for stem in ("libopenblas", "liblapacke", "libgfortran"):
        assert any(name.startswith(stem) for name in bundled), (stem, sorted(bundled))
    library = tmp_path / "relusv" / native.LIBRARY
    dynamic = readelf(library)
    assert "$ORIGIN/../relusv.libs" in dynamic, dynamic
    assert f"Library soname: [{native.LIBRARY}.{VERSION.split('.')[0]}]" in dynamic, dynamic
    for path in [library, *(tmp_path / "relusv.libs").iterdir()]:
        outside = needed(path) - bundled - SYSTEM_LIBRARIES
        assert not outside, (path.name, outside)


def test_the_metadata_is_complete():
    files = wheel_files(_path("RELUSV_WHEEL"))
    info = f"relusv-{VERSION}.dist-info"
    meta = Parser().parsestr(files[f"{info}/METADATA"].decode())
    assert meta["Name"] == "relusv" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "MIT" and meta["Requires-Python"] == ">=3.9"
    assert "the relusv authors" in meta["Author"]
    assert files[f"{info}/licenses/LICENSE"] == (ROOT / "LICENSE").read_bytes()
    assert "Operating System :: POSIX :: Linux" in meta.get_all("Classifier")
    assert set(meta.get_all("Provides-Extra")) >= {"torch", "report", "all"}
    requires = meta.get_all("Requires-Dist")

    def extra(name):
        return {re.split(r"[<>=;\[ ]", r)[0] for r in requires if f'extra == "{name}"' in r}

    assert {"matplotlib", "scikit-learn", "threadpoolctl", "tqdm"} <= extra("report"), requires
    assert {"torch", "pandas", "threadpoolctl", "tqdm"} <= extra("torch"), requires
    assert "relusv" in extra("all"), requires
    assert any(r.startswith("numpy") and "extra" not in r for r in requires), requires
    assert "relusv = relusv.__main__:main" in files[f"{info}/entry_points.txt"].decode()


def test_the_sdist_holds_everything_the_build_needs():
    sdist = _path("RELUSV_SDIST")
    top = f"relusv-{VERSION}/"
    with tarfile.open(sdist) as t:
        names = {m.name[len(top):] for m in t.getmembers() if m.isfile()}
    required = {"Package.swift", "pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md",
                "pkg/native.py", "pkg/relusv.map", "docs/MATH.md"}
    required |= set(tracked("Sources")) | set(tracked("Tests")) | {f for f in tracked("python/relusv")}
    assert required <= names, sorted(required - names)
    assert not [n for n in names if n.endswith(".so") or "__pycache__" in n or n.startswith(".build")]


def test_the_sdist_builds_the_same_wheel_as_the_tree(tmp_path):
    from_sdist, from_tree = wheel_files(_path("RELUSV_RAW_WHEEL")), wheel_files(_path("RELUSV_TREE_WHEEL"))
    assert set(from_sdist) == set(from_tree), set(from_sdist) ^ set(from_tree)
    record = f"relusv-{VERSION}.dist-info/RECORD"
    library = f"relusv/{native.LIBRARY}"
    differ = [n for n in from_sdist if n not in (record, library)
              and hashlib.sha256(from_sdist[n]).digest() != hashlib.sha256(from_tree[n]).digest()]
    assert not differ, differ
    # The library: built in another directory (paths differ), the same interface.
    symbols = []
    for origin, files in (("sdist", from_sdist), ("tree", from_tree)):
        copy = tmp_path / f"{origin}.so"
        copy.write_bytes(files[library])
        out = subprocess.run(["nm", "-D", "--defined-only", "--extern-only", str(copy)], check=True, capture_output=True, text=True)
        symbols.append(sorted(line.split()[-1] for line in out.stdout.splitlines()))
    assert symbols[0] == symbols[1] and len(symbols[0]) > 20


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
