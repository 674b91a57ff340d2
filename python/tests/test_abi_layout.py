"""The ctypes mirror of relusv.h agrees with the header, as a C compiler lays it out.

Every ``ctypes.Structure`` in ``relusv._native`` names its C type first in its
docstring; a C program generated from those declarations prints ``sizeof``
and every field's ``offsetof``, and the prototypes are checked to exist in
the header. A field added on one side only, reordered, or of another width
fails here instead of corrupting memory at run time.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

from pathlib import Path

import pytest

from relusv import _native

REPO = Path(__file__).resolve().parents[2]

HEADER_DIR = REPO / "Sources" / "CReluSV" / "include"


def mirrored_structs():
    for value in vars(_native).values():
        if isinstance(value, type) and issubclass(value, ctypes.Structure) and value is not ctypes.Structure:
            c_name = re.match(r"\s*``(\w+)``", value.__doc__ or "")
            assert c_name, f"{value.__name__} does not name its C type first in its docstring"
            yield c_name.group(1), value


def c_layout(tmp_path):
    structs = list(mirrored_structs())
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "relusv.h"', "int main(void) {"]
    for c_name, cls in structs:
        lines.append(f'    printf("{c_name} sizeof %zu\\n", sizeof({c_name}));')
        for field, _ in cls._fields_:
            lines.append(f'    printf("{c_name} {field} %zu\\n", offsetof({c_name}, {field}));')
    lines += ["    return 0;", "}"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    binary = tmp_path / "layout"
    subprocess.run([shutil.which("cc") or "cc", "-std=c11", f"-I{HEADER_DIR}", str(source), "-o", str(binary)],
                   check=True, capture_output=True, text=True)
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return {tuple(line.split()[:2]): int(line.split()[2]) for line in output.splitlines()}, structs


def test_struct_layouts_match_the_header(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    layout, structs = c_layout(tmp_path)
    assert len(structs) >= 5
    for c_name, cls in structs:
        assert ctypes.sizeof(cls) == layout[(c_name, "sizeof")], c_name
        for field, _ in cls._fields_:
            assert getattr(cls, field).offset == layout[(c_name, field)], (c_name, field)


def test_every_prototype_is_declared_in_the_header():
    header = (HEADER_DIR / "relusv.h").read_text()
    for name in _native.PROTOTYPES:
        assert re.search(rf"\b{name}\s*\(", header), f"{name} is bound in _native.py but not declared in relusv.h"
    declared = set(re.findall(r"\b(relusv_\w+)\s*\(", header))
    assert declared <= set(_native.PROTOTYPES) | {"relusv_progress_fn"}, declared - set(_native.PROTOTYPES)
