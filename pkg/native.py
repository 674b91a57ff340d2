"""The native library: version, Swift build, and the C install.

One owner for the three build facts every packaging path needs (the Python
build backend in ``setup.py``, the Makefile, CI):

- the version, read from the ``RELUSV_VERSION_*`` macros of ``relusv.h``;
- the release build of ``libReluSVKit.so`` (Swift standard library linked
  statically, so the library needs only libc, libstdc++ and OpenBLAS/LAPACKE);
- the C install: ``PREFIX/lib/libReluSVKit.so.X.Y.Z`` with the links
  ``.so.X`` (the soname) and ``.so``, ``PREFIX/include/relusv.h`` and
  ``PREFIX/lib/pkgconfig/relusv.pc``.

Standard library only, so it runs with any Python 3:

    python3 pkg/native.py version
    python3 pkg/native.py build --dest python/relusv   # and the link libReluSVKit.so.MAJOR
    python3 pkg/native.py install --prefix /usr/local
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "Sources" / "CReluSV" / "include" / "relusv.h"
LIBRARY = "libReluSVKit.so"

PKG_CONFIG = """\
prefix={prefix}
exec_prefix=${{prefix}}
libdir={libdir}
includedir={includedir}

Name: relusv
Description: ReLU singular values and Gaussian mean widths (Swift over OpenBLAS/LAPACKE)
Version: {version}
Libs: -L${{libdir}} -lReluSVKit
Cflags: -I${{includedir}}
"""


def version() -> str:
    """``MAJOR.MINOR.PATCH`` from the ``RELUSV_VERSION_*`` macros of relusv.h."""
    text = HEADER.read_text()
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"^#define RELUSV_VERSION_{part} (\d+)$", text, re.MULTILINE)
        if match is None:
            raise SystemExit(f"{HEADER} does not define RELUSV_VERSION_{part}")
        parts.append(match.group(1))
    return ".".join(parts)


def swift() -> str:
    found = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    if not Path(found).exists():
        raise SystemExit("relusv: the build needs Swift 6 on PATH (or at /opt/swift); see https://www.swift.org/install/")
    return found


def build() -> Path:
    """Runs the release build and returns the path of the built library."""
    command = [swift(), "build", "-c", "release", "--product", "ReluSVKit", "-Xswiftc", "-static-stdlib",
               "--package-path", str(ROOT)]
    subprocess.run(command, check=True)
    bin_path = subprocess.run(command + ["--show-bin-path"], check=True, capture_output=True, text=True).stdout
    return Path(bin_path.strip()) / LIBRARY


def copy_stripped(source: Path, target: Path) -> None:
    """Copies beside ``target`` and renames over it: processes that have the old
    library mapped keep their (unlinked) file instead of crashing. Debug info
    is dropped: not needed at run time, and valgrind cannot read Swift's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.copy2(source, staged)
    subprocess.run(["strip", "--strip-debug", str(staged)], check=True)
    os.replace(staged, target)


def soname() -> str:
    """``libReluSVKit.so.MAJOR``: what programs linked with the library load (Package.swift sets it)."""
    return f"{LIBRARY}.{version().split('.')[0]}"


def link(path: Path, target: str) -> None:
    """``path`` becomes a symbolic link to ``target``, replacing what was there."""
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def build_into(directory: Path, soname_link: bool = False) -> Path:
    """Builds the library and places it at ``directory/libReluSVKit.so``; with ``soname_link``
    also the link ``libReluSVKit.so.MAJOR`` beside it, for C programs linked in the tree."""
    target = directory / LIBRARY
    copy_stripped(build(), target)
    if soname_link:
        link(directory / soname(), LIBRARY)
    return target


def install(prefix: Path, libdir: Path | None = None, includedir: Path | None = None) -> None:
    """The C install into ``prefix`` (see the module docstring)."""
    prefix = prefix.resolve()
    libdir = (libdir or prefix / "lib").resolve()
    includedir = (includedir or prefix / "include").resolve()
    full = version()
    real = libdir / f"{LIBRARY}.{full}"
    copy_stripped(build(), real)
    link(libdir / soname(), real.name)
    link(libdir / LIBRARY, soname())
    includedir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HEADER, includedir / HEADER.name)
    pc = libdir / "pkgconfig" / "relusv.pc"
    pc.parent.mkdir(parents=True, exist_ok=True)
    pc.write_text(PKG_CONFIG.format(prefix=prefix, libdir=libdir, includedir=includedir, version=full))
    for path in (real, libdir / soname(), libdir / LIBRARY, includedir / HEADER.name, pc):
        print(f"installed {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pkg/native.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version written in relusv.h")
    p = sub.add_parser("build", help="release build of libReluSVKit.so, copied into --dest (with the soname link)")
    p.add_argument("--dest", type=Path, required=True)
    p = sub.add_parser("install", help="install the C library, header and relusv.pc")
    p.add_argument("--prefix", type=Path, required=True)
    p.add_argument("--libdir", type=Path)
    p.add_argument("--includedir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "version":
        print(version())
    elif args.command == "build":
        build_into(args.dest, soname_link=True)
    else:
        install(args.prefix, args.libdir, args.includedir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
