"""Builds libReluSVKit.so with the Swift package manager and ships it inside the package.

``pip install ./python`` (or ``make install``) runs ``swift build -c release``
in the repository root with the Swift standard library linked statically,
so the shared library depends only on libc and OpenBLAS/LAPACKE, and copies
it to ``relusv/libReluSVKit.so``. Set ``RELUSV_SKIP_SWIFT_BUILD=1`` to reuse a
library already copied there.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBRARY = "libReluSVKit.so"


def library_version() -> str:
    """The version written once, in the C ABI's Version.swift."""
    text = (ROOT / "Sources" / "CABI" / "Version.swift").read_text()
    return re.search(r'static let string: StaticString = "([0-9.]+)"', text).group(1)


def build_native_library() -> None:
    target = HERE / "relusv" / LIBRARY
    if os.environ.get("RELUSV_SKIP_SWIFT_BUILD") and target.is_file():
        return
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    command = [swift, "build", "-c", "release", "--product", "ReluSVKit", "-Xswiftc", "-static-stdlib",
               "--package-path", str(ROOT)]
    subprocess.run(command, check=True)
    built = subprocess.run(command + ["--show-bin-path"], check=True, capture_output=True, text=True).stdout.strip()
    # Copied beside the target and renamed over it: processes that have the
    # old library mapped keep their (unlinked) file instead of crashing.
    staged = target.with_name(f".{LIBRARY}.{os.getpid()}")
    shutil.copy2(Path(built) / LIBRARY, staged)
    # Debug info is not needed at run time, and valgrind cannot read Swift's.
    subprocess.run(["strip", "--strip-debug", str(staged)], check=True)
    os.replace(staged, target)


class BuildNative(Command):
    """``python setup.py build_native``: only build and copy the Swift library."""

    description = "build libReluSVKit.so with the Swift package manager"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        build_native_library()


class BuildPyWithSwift(build_py):
    def run(self):
        build_native_library()
        super().run()


setup(
    name="relusv",
    version=library_version(),
    description="ReLU singular values and Gaussian mean widths for looking inside ReLU networks",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").is_file() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["relusv", "relusv.*"]),
    package_data={"relusv": [LIBRARY, "py.typed", "data/*"]},
    python_requires=">=3.9",
    install_requires=["numpy>=1.22"],
    extras_require={
        "torch": ["torch>=2.0", "pandas>=1.5"],
        "plot": ["matplotlib>=3.5"],
        "progress": ["tqdm"],
        "test": ["pytest", "scipy", "scikit-learn", "matplotlib", "tqdm", "jsonschema", "mpmath"],
    },
    entry_points={"console_scripts": ["relusv=relusv.__main__:main"]},
    cmdclass={"build_py": BuildPyWithSwift, "build_native": BuildNative},
    zip_safe=False,
)
