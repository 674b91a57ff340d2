"""The build step of the relusv package (its metadata is in pyproject.toml).

``build_py`` runs the Swift release build (``pkg/native.py``) and puts
``libReluSVKit.so`` and the specification ``MATH.md`` into the package; in an
editable install (``make install``) the library goes to ``python/relusv``
itself, and ``RELUSV_SKIP_SWIFT_BUILD=1`` reuses one already there. The wheel
is tagged ``py3-none-<platform>``: it holds a native library but no Python
extension, so any Python 3 can load it.
"""
import os
import shutil
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "pkg"))
import native  # noqa: E402


class BuildPyWithNative(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            package = ROOT / "python" / "relusv"
            if not (os.environ.get("RELUSV_SKIP_SWIFT_BUILD") and (package / native.LIBRARY).is_file()):
                native.build_into(package)
            return
        package = Path(self.build_lib) / "relusv"
        native.build_into(package)
        shutil.copyfile(ROOT / "docs" / "MATH.md", package / "MATH.md")


class NativeDistribution(Distribution):
    """Holds a native library: installed as platform-specific (platlib), never pure."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])


setup(version=native.version(), distclass=NativeDistribution,
      cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel})
