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


def _compile_and_run(tmp_path, name: str, body: str) -> str:
    source = tmp_path / f"{name}.c"
    source.write_text('#include <stdio.h>\n#include "relusv.h"\nint main(void) {\n' + body + "\n    return 0;\n}\n")
    binary = tmp_path / name
    subprocess.run([shutil.which("cc") or "cc", "-std=c11", f"-I{HEADER_DIR}", str(source), "-o", str(binary)],
                   check=True, capture_output=True, text=True)
    return subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout


def test_version_macros_match_the_library_and_the_package(tmp_path):
    from importlib.metadata import version

    import relusv

    out = _compile_and_run(tmp_path, "version", 'printf("%d %d %d %d %s\\n", RELUSV_VERSION_MAJOR, '
                           "RELUSV_VERSION_MINOR, RELUSV_VERSION_PATCH, RELUSV_VERSION_NUMBER, RELUSV_VERSION_STRING);")
    major, minor, patch, number, string = out.split()
    assert int(number) == int(major) * 10000 + int(minor) * 100 + int(patch)
    assert string == f"{major}.{minor}.{patch}"
    assert _native.lib.relusv_version_number() == int(number)
    assert relusv.__version__ == string == version("relusv")


def test_only_the_declared_functions_are_exported():
    nm = shutil.which("nm")
    assert nm, "nm (binutils) is needed"
    out = subprocess.run([nm, "-D", "--defined-only", "--extern-only", str(_native.library_path())], check=True,
                         capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    header = (HEADER_DIR / "relusv.h").read_text()
    declared = set(re.findall(r"\b(relusv_\w+)\s*\(", header)) - {"relusv_progress_fn"}
    assert exported == declared, (sorted(exported - declared)[:20], sorted(declared - exported))


def test_the_library_has_a_versioned_soname():
    out = subprocess.run(["readelf", "-d", str(_native.library_path())], check=True, capture_output=True,
                         text=True).stdout
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.+)\]", out)
    assert soname and soname.group(1) == f"libReluSVKit.so.{_native.VERSION.split('.')[0]}", out


# relusv_relu_sv_options as relusv 0.1.0 published it: callers built then must keep working.
OPTIONS_V1 = [("struct_size", ctypes.c_size_t), ("leaky_slope", ctypes.c_double), ("seed", ctypes.c_uint64),
              ("sphere_points", ctypes.c_uint64), ("max_steps", ctypes.c_uint64), ("time_budget", ctypes.c_double),
              ("threads", ctypes.c_uint64), ("refine", ctypes.c_int32), ("keep_factors", ctypes.c_int32),
              ("fit_stride", ctypes.c_uint64), ("learning_rate", ctypes.c_double), ("batch_size", ctypes.c_uint64)]


class OptionsV1(ctypes.Structure):
    _fields_ = OPTIONS_V1


def test_options_keep_the_first_version_as_their_prefix():
    assert _native.ReluSVOptions._fields_[:len(OPTIONS_V1)] == OPTIONS_V1
    for field, _ in OPTIONS_V1:
        assert getattr(_native.ReluSVOptions, field).offset == getattr(OptionsV1, field).offset


def _relu_sv(options, w):
    matrix = _native.Matrix(w.ctypes.data, _native.FLOAT64, w.shape[0], w.shape[1], 0)
    handle = _native._handle()
    status = _native.lib.relusv_relu_singular_values(
        ctypes.byref(matrix), None, None, None, 0, ctypes.cast(ctypes.pointer(options), ctypes.POINTER(
            _native.ReluSVOptions)), ctypes.byref(handle), _native.NO_PROGRESS, None)
    if status == 0:
        info = _native.ReluSpectrumInfo()
        _native.check(_native.lib.relusv_relu_spectrum_info_get(handle, ctypes.byref(info)))
        _native.lib.relusv_relu_spectrum_free(handle)
        return status, info
    return status, _native.lib.relusv_last_error().decode()


def test_init_writes_only_the_size_it_is_given():
    size = ctypes.sizeof(OptionsV1) - 16
    buffer = (ctypes.c_ubyte * (size + 16))(*([0xAB] * (size + 16)))
    _native.lib.relusv_relu_sv_options_init(ctypes.cast(buffer, ctypes.POINTER(_native.ReluSVOptions)), size)
    assert ctypes.c_size_t.from_buffer(buffer).value == size
    assert list(buffer[size:]) == [0xAB] * 16


def test_an_options_struct_of_the_first_version_is_read_with_defaults_beyond():
    import numpy as np

    w = np.random.default_rng(0).normal(size=(6, 5))
    old = OptionsV1()
    _native.lib.relusv_relu_sv_options_init(ctypes.cast(ctypes.pointer(old), ctypes.POINTER(_native.ReluSVOptions)),
                                            ctypes.sizeof(old))
    assert old.struct_size == ctypes.sizeof(OptionsV1)
    old.max_steps, old.sphere_points, old.threads, old.keep_factors = 5, 64, 1, 1
    status, info = _relu_sv(old, w)
    assert status == 0, info
    assert info.points == 64 + 2 * 5 and info.has_factors == 1  # sphere sample plus +-v_j: the caller's fields


@pytest.mark.parametrize("size, message", [(0, "fill it with its init function"),
                                           (8, "fill it with its init function"),
                                           (ctypes.sizeof(_native.ReluSVOptions) + 8, "newer relusv.h")])
def test_an_options_struct_of_unknown_size_is_refused(size, message):
    import numpy as np

    options = _native.ReluSVOptions()
    _native.lib.relusv_relu_sv_options_init(ctypes.byref(options), ctypes.sizeof(options))
    options.struct_size = size
    status, error = _relu_sv(options, np.eye(3))
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_INVALID_ARGUMENT" and message in error, error


# relusv_relu_sv_options as relusv 0.2.0 published it (group_size and fit_points appended).
OPTIONS_V2 = OPTIONS_V1 + [("group_size", ctypes.c_uint64), ("fit_points", ctypes.c_uint64)]


class OptionsV2(ctypes.Structure):
    _fields_ = OPTIONS_V2


def header_version() -> tuple:
    text = (HEADER_DIR / "relusv.h").read_text()
    return tuple(int(re.search(rf"^#define RELUSV_VERSION_{part} (\d+)$", text, re.MULTILINE).group(1))
                 for part in ("MAJOR", "MINOR", "PATCH"))


def test_the_bindings_mirror_the_header_version_and_its_published_layouts():
    assert _native.HEADER_VERSION == header_version()
    assert _native.ReluSVOptions._fields_[:len(OPTIONS_V2)] == OPTIONS_V2
    assert ctypes.sizeof(_native.ReluSVOptions) >= ctypes.sizeof(OptionsV2)


def test_every_version_is_recorded_in_the_header_history():
    # The rule of relusv.h: every addition bumps the minor version and is listed under "Versions".
    text = (HEADER_DIR / "relusv.h").read_text()
    history = re.findall(r"^ \*   (\d+)\.(\d+)\.(\d+)  ", text, re.MULTILINE)
    assert history, "relusv.h lists no versions"
    listed = [tuple(map(int, v)) for v in history]
    assert listed == sorted(listed)
    assert listed[-1][:2] == header_version()[:2], (listed[-1], header_version())
    for since in re.findall(r"since (\d+)\.(\d+)\.(\d+)", text):
        assert tuple(map(int, since)) in listed, since


@pytest.mark.parametrize("fields", [OPTIONS_V1, OPTIONS_V1 + OPTIONS_V2[len(OPTIONS_V1):-1], OPTIONS_V2])
def test_every_published_options_layout_is_read(fields):
    import numpy as np

    layout = type("Options", (ctypes.Structure,), {"_fields_": fields})
    options = layout()
    _native.lib.relusv_relu_sv_options_init(ctypes.cast(ctypes.pointer(options),
                                                        ctypes.POINTER(_native.ReluSVOptions)), ctypes.sizeof(options))
    assert options.struct_size == ctypes.sizeof(layout)
    options.max_steps, options.sphere_points, options.threads = 0, 32, 1
    status, info = _relu_sv(options, np.random.default_rng(1).normal(size=(5, 4)))
    assert status == 0, info
    assert info.points == 32 + 2 * 4


def _compiles(tmp_path, body: str, *flags: str) -> subprocess.CompletedProcess:
    source = tmp_path / "use.c"
    source.write_text(f'{body}\nint main(void) {{ return (int)(size_t)&relusv_relu_fit_gradient; }}\n')
    return subprocess.run([shutil.which("cc") or "cc", "-std=c11", "-Werror=implicit-function-declaration",
                           *flags, f"-I{HEADER_DIR}", "-c", str(source), "-o", str(tmp_path / "use.o")],
                          capture_output=True, text=True)


def test_the_experimental_section_is_declared_only_on_request(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    assert _compiles(tmp_path, '#include "relusv.h"').returncode != 0
    done = _compiles(tmp_path, '#define RELUSV_EXPERIMENTAL\n#include "relusv.h"')
    assert done.returncode == 0, done.stderr
    # Included twice (with and without the macro) the header still compiles.
    done = _compiles(tmp_path, '#include "relusv.h"\n#define RELUSV_EXPERIMENTAL\n#include "relusv.h"\n'
                     '#include "relusv.h"')
    assert done.returncode == 0, done.stderr
    header = (HEADER_DIR / "relusv.h").read_text()
    stable, experimental = header.split("#endif /* RELUSV_H */")
    assert not re.search(r"\brelusv_relu_fit_gradient\s*\(", stable)
    assert re.search(r"\brelusv_relu_fit_gradient\s*\(", experimental)


@pytest.mark.parametrize("number, accepted", [(600, True), (601, True), (699, True), (900, True),
                                              (500, False), (599, False), (10600, False), (0, False)])
def test_the_version_rule_of_the_bindings(number, accepted):
    assert _native.HEADER_VERSION[:2] == (0, 6)  # the table below is written for 0.6
    assert (_native.incompatibility(Path("lib.so"), number) is None) == accepted


FAKE_LIBRARY = """
#include <stdint.h>
uint32_t relusv_version_number(void) { return VERSION; }
const char *relusv_version_string(void) { return "fake"; }
"""


def _fake_library(tmp_path, version) -> Path:
    source = tmp_path / "fake.c"
    source.write_text(FAKE_LIBRARY if version is not None else "int not_relusv(void) { return 0; }\n")
    library = tmp_path / f"libfake{version}.so"
    flags = [f"-DVERSION={version}"] if version is not None else []
    subprocess.run([shutil.which("cc") or "cc", "-shared", "-fPIC", *flags, str(source), "-o", str(library)],
                   check=True, capture_output=True, text=True)
    return library


@pytest.mark.parametrize("version, shown", [(100, "is version 0.1.0"), (10200, "is version 1.2.0"),
                                            (None, "has no relusv_version_number()")])
def test_an_incompatible_library_is_refused_at_import_with_one_message(tmp_path, version, shown):
    import os
    import sys

    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    library = _fake_library(tmp_path, version)
    env = dict(os.environ, RELUSV_LIBRARY=str(library))
    done = subprocess.run([sys.executable, "-c", "import relusv"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: relusv: the native library"), message
    needed = "{}.{}".format(*_native.HEADER_VERSION[:2])
    assert shown in message and needed in message and f"RELUSV_LIBRARY={library}" in message, message
