"""TorchScript archives read as data: tensors and declared layer types, never the archive's code.

A TorchScript archive (``torch.jit.save``) is a zip file holding

- ``<root>/data.pkl``: a pickle of the module tree, each module an object of
  a class ``__torch__.<qualified name>`` (e.g. ``torch.nn.modules.linear.Linear``)
  with a dict of attributes (tensors, submodules, numbers);
- ``<root>/data/<key>``: the raw bytes of the tensors' storages;
- ``<root>/code/__torch__/...py``: the TorchScript source of every class,
  including the constants (``Final`` class attributes: a convolution's stride,
  a batch norm's eps, ...).

``torch.jit.load`` compiles and runs that code (a scripted class's
``__setstate__`` runs while loading, and can write files). This module never
calls it: ``data.pkl`` is read by an unpickler that knows only the tensor
rebuild functions, storages and ``OrderedDict``; every ``__torch__`` class
becomes an inert record of its attributes. The model is then rebuilt from an
allow list of standard layer types (``LAYERS``): a record whose qualified name
is not on the list, that holds an object of any other class, or whose class
defines ``__setstate__`` / ``__getstate__`` is refused. The constants of a
layer are read from its class source with ``ast.literal_eval`` (parsed, not
run). The rebuilt model is what the archive declares: standard layers with the
archive's tensors; the archive's own ``forward`` code is neither run nor trusted.

Every storage's size is checked against its zip member and the memory limit,
and every tensor's size (``numel``, however its strides share or repeat
storage) against the memory limit, before anything is materialised.
"""
from __future__ import annotations

import ast
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, List

from .. import _validation, memory
from ..errors import UserInputError
from .errors import ReportInputError

TRUST_FLAG = "--trust-model-code"
"""The command-line opt-in that lets ``torch.jit.load`` run an archive's code (``trust_model_code=True``)."""

_MANGLE = re.compile(r"\.___torch_mangle_\d+")
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
_PLAIN = (bool, int, float, str, type(None))


class ScriptRecord:
    """An inert stand-in for an object of a ``__torch__`` class: its qualified name and attributes."""

    qualified_name = ""

    def __setstate__(self, state: Any) -> None:  # BUILD: keep the state, run nothing
        self.state = state


def _record_class(module: str, name: str) -> type:
    qualified = _MANGLE.sub("", f"{module}.{name}")[len("__torch__."):]
    return type(name, (ScriptRecord,), {"qualified_name": qualified, "code_path": module.replace(".", "/")})


class _Storage:
    """One storage's elements as a flat tensor (shared by every view of it)."""

    def __init__(self, dtype, data: bytes):
        import torch

        self.flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl``: storages from the archive's members, ``__torch__`` objects as records."""

    def __init__(self, file, archive: zipfile.ZipFile, root: str, path: str, budget: List[int]):
        super().__init__(file)
        self.archive, self.root, self.path, self.budget = archive, root, path, budget
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        import torch

        if module.startswith("__torch__.") or module == "__torch__":
            return _record_class(module, name)
        if module == "torch" and name in _STORAGE_DTYPES:
            return getattr(torch, _STORAGE_DTYPES[name])
        allowed: Dict[tuple, Callable] = {
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor,
            ("collections", "OrderedDict"): OrderedDict,
            ("torch.jit._pickle", "build_intlist"): list,
            ("torch.jit._pickle", "build_doublelist"): list,
            ("torch.jit._pickle", "build_boollist"): list,
        }
        if (module, name) not in allowed:
            raise ReportInputError(f"{self.path}: the TorchScript archive refers to {module}.{name}: refused "
                                   f"without {TRUST_FLAG} (which loads it with torch.jit.load, running the "
                                   "archive's code)")
        return allowed[(module, name)]

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ReportInputError(f"{self.path}: unexpected persistent record in the TorchScript archive")
        _, dtype, key, _location, numel = pid
        if key not in self.storages:
            self.storages[key] = self._storage(dtype, str(key), numel)
        return self.storages[key]

    def _storage(self, dtype, key: str, numel: Any) -> _Storage:
        import torch

        if not isinstance(dtype, torch.dtype) or not isinstance(numel, int) or numel < 0:
            raise ReportInputError(f"{self.path}: malformed storage record {key!r} in the TorchScript archive")
        member = f"{self.root}/data/{key}"
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise ReportInputError(f"{self.path}: the TorchScript archive lacks the tensor data {member}") from None
        nbytes = numel * dtype.itemsize
        if info.file_size != nbytes:
            raise ReportInputError(f"{self.path}: tensor data {member} holds {info.file_size} bytes, its record "
                                   f"declares {nbytes}")
        self.budget[0] += nbytes
        memory.within_memory_limit(self.budget[0], f"{self.path}: the tensors of the TorchScript archive")
        return _Storage(dtype, self.archive.read(member))

    def _rebuild_tensor(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise ReportInputError(f"{self.path}: a tensor of the TorchScript archive has no storage")
        size, stride = tuple(size), tuple(stride)
        numel = _validation.checked_tensor_extent(size, stride, offset, storage.flat.numel(), f"{self.path}: a tensor")
        self.budget[0] += numel * 8   # what its float64 copy takes
        memory.within_memory_limit(self.budget[0], f"{self.path}: the tensors of the TorchScript archive")
        return storage.flat.as_strided(size, stride, offset).clone()


def _root(archive: zipfile.ZipFile, path: str) -> str:
    roots = [n[: -len("/data.pkl")] for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(roots) != 1:
        raise ReportInputError(f"{path}: not a TorchScript archive (no single <name>/data.pkl)")
    return roots[0]


MAX_SOURCE_BYTES = 1 << 24
"""Largest ``data.pkl`` or class source read from an archive (16 MiB; a module tree's pickle and the
source of a layer class are a few kB)."""


def _read_member(archive: zipfile.ZipFile, member: str, path: str) -> bytes:
    """The bytes of ``member``, refused when its declared (uncompressed) size exceeds ``MAX_SOURCE_BYTES``
    or the memory limit; reading stops at the declared size, so a deflate bomb inflates no further."""
    info = archive.getinfo(member)
    if info.file_size > MAX_SOURCE_BYTES:
        raise ReportInputError(f"{path}: archive member {member} declares {info.file_size:,} bytes; relusv reads "
                               f"at most {MAX_SOURCE_BYTES:,} of a module description")
    memory.within_memory_limit(info.file_size, f"{path}: {member}")
    return archive.read(info)


def read_records(path: str) -> tuple:
    """``(root record, archive, root name)``: ``data.pkl`` of the archive at ``path`` unpickled into records."""
    import io

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ReportInputError(f"cannot read {path} as a TorchScript archive: {error}") from None
    root = _root(archive, path)
    if f"{root}/byteorder" in archive.namelist() and _read_member(archive, f"{root}/byteorder", path) != b"little":
        raise ReportInputError(f"{path}: the TorchScript archive is not little-endian; re-save it on this machine")
    try:
        data = _read_member(archive, f"{root}/data.pkl", path)
        obj = _ArchiveUnpickler(io.BytesIO(data), archive, root, path, [0]).load()
    except (ReportInputError, UserInputError):
        raise
    except Exception as error:  # zlib, struct, pickle and torch raise many types for corrupt archives
        raise ReportInputError(f"cannot read {path} as a TorchScript archive: {error}") from None
    return obj, archive, root


class _ClassSource:
    """Constants and methods of one archive class, from its TorchScript source parsed with ``ast``."""

    def __init__(self, archive: zipfile.ZipFile, root: str, record: ScriptRecord, path: str):
        self.constants: Dict[str, Any] = {}
        self.methods: List[str] = []
        member = f"{root}/code/{record.code_path}.py"
        name = type(record).__name__
        if member not in archive.namelist():
            raise ReportInputError(f"{path}: the TorchScript archive has no source for {record.qualified_name}")
        text = _read_member(archive, member, path)
        try:
            tree = ast.parse(text.decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
            raise ReportInputError(f"{path}: the TorchScript archive has no readable source for "
                                   f"{record.qualified_name}") from None
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
        if len(classes) != 1:
            raise ReportInputError(f"{path}: the TorchScript archive does not define {record.qualified_name}")
        for node in classes[0].body:
            if isinstance(node, ast.FunctionDef):
                self.methods.append(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                try:
                    self.constants[node.target.id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue   # not a literal (e.g. a dict with a list key): the constant stays unknown


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _layers(nn) -> Dict[str, Callable[[Dict[str, Any], Dict[str, Any]], Any]]:
    """Qualified name -> ``build(attributes, constants)`` of every layer type rebuilt from an archive."""
    from ..torch import DoubleLinear

    def batchnorm(cls):
        return lambda a, c: cls(c["num_features"], eps=c["eps"], momentum=c["momentum"], affine=c["affine"],
                                track_running_stats=c["track_running_stats"])

    m = "torch.nn.modules."
    return {
        m + "linear.Linear": lambda a, c: nn.Linear(a["weight"].shape[1], a["weight"].shape[0],
                                                    bias=a.get("bias") is not None),
        "relusv.torch.double_linear.DoubleLinear": lambda a, c: DoubleLinear(
            a["weight2"].shape[1], a["weight1"].shape[0], a["weight1"].shape[1], bias=a.get("bias") is not None,
            seed=0),
        m + "conv.Conv2d": lambda a, c: nn.Conv2d(
            c["in_channels"], c["out_channels"], _pair(c["kernel_size"]), _pair(c["stride"]), _pair(c["padding"]),
            _pair(c["dilation"]), c["groups"], a.get("bias") is not None, c["padding_mode"]),
        m + "batchnorm.BatchNorm1d": batchnorm(nn.BatchNorm1d), m + "batchnorm.BatchNorm2d": batchnorm(nn.BatchNorm2d),
        m + "activation.ReLU": lambda a, c: nn.ReLU(),
        m + "activation.LeakyReLU": lambda a, c: nn.LeakyReLU(c["negative_slope"]),
        m + "activation.GELU": lambda a, c: nn.GELU(c.get("approximate", "none")),
        m + "activation.Tanh": lambda a, c: nn.Tanh(), m + "activation.Sigmoid": lambda a, c: nn.Sigmoid(),
        m + "linear.Identity": lambda a, c: nn.Identity(), m + "dropout.Dropout": lambda a, c: nn.Dropout(c["p"]),
        m + "flatten.Flatten": lambda a, c: nn.Flatten(c["start_dim"], c["end_dim"]),
        m + "pooling.MaxPool2d": lambda a, c: nn.MaxPool2d(
            _pair(c["kernel_size"]), _pair(c["stride"]), _pair(c["padding"]), _pair(c["dilation"]),
            ceil_mode=c["ceil_mode"]),
        m + "pooling.AvgPool2d": lambda a, c: nn.AvgPool2d(
            _pair(c["kernel_size"]), _pair(c["stride"]), _pair(c["padding"]), c["ceil_mode"],
            c["count_include_pad"], c.get("divisor_override")),
    }


SEQUENTIAL = "torch.nn.modules.container.Sequential"
SIZED_BY_CONSTANTS = ("torch.nn.modules.conv.Conv2d", "torch.nn.modules.batchnorm.BatchNorm1d",
                      "torch.nn.modules.batchnorm.BatchNorm2d")
"""Layers whose parameter sizes come from the class constants rather than from the archive's tensors."""
FORBIDDEN_METHODS = ("__setstate__", "__getstate__")


class _Rebuilder:
    def __init__(self, archive: zipfile.ZipFile, root: str, path: str):
        import torch

        self.torch, self.archive, self.root, self.path = torch, archive, root, path
        self.layers = _layers(torch.nn)

    def refuse(self, name: str, reason: str) -> ReportInputError:
        return ReportInputError(f"{self.path}: TorchScript module {name or '(top level)'} {reason}: refused "
                                f"without {TRUST_FLAG} (which runs the archive's code); relusv reads Sequentials of "
                                "standard layers as data, other architectures as --model package.module:build "
                                "--weights FILE")

    def attributes(self, record: Any, name: str) -> Dict[str, Any]:
        if not isinstance(record, ScriptRecord):
            raise self.refuse(name, f"is a {type(record).__name__}, not a module")
        state = getattr(record, "state", None)
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise self.refuse(name, f"is a {record.qualified_name} with a custom saved state")
        return state

    def build(self, record: Any, name: str = ""):
        state = self.attributes(record, name)
        kind = record.qualified_name
        if kind != SEQUENTIAL and kind not in self.layers:
            raise self.refuse(name, f"is a {type(record).__name__} (class __torch__.{kind}), not a standard layer")
        source = _ClassSource(self.archive, self.root, record, self.path)
        custom = [m for m in FORBIDDEN_METHODS if m in source.methods]
        if custom:
            raise self.refuse(name, f"is a {kind} that defines {custom[0]}")
        if kind == SEQUENTIAL:
            return self.sequential(state, name)
        return self.layer(kind, state, source.constants, name)

    def sequential(self, state: Dict[str, Any], name: str):
        children = OrderedDict()
        for key, value in state.items():
            if isinstance(value, ScriptRecord):
                children[key] = self.build(value, f"{name}.{key}".lstrip("."))
            elif not isinstance(value, _PLAIN):
                raise self.refuse(name, f"holds attribute {key} of type {type(value).__name__}")
        module = self.torch.nn.Sequential(children)
        module.train(bool(state.get("training", True)))
        return module

    def layer(self, kind: str, state: Dict[str, Any], constants: Dict[str, Any], name: str):
        torch = self.torch
        tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
        for key, value in state.items():
            if not (torch.is_tensor(value) or isinstance(value, _PLAIN) or
                    (isinstance(value, list) and all(isinstance(v, _PLAIN) for v in value))):
                raise self.refuse(name, f"holds attribute {key} of type {type(value).__name__}")
        try:
            if kind in SIZED_BY_CONSTANTS:
                # built without storage and given the archive's tensors: sizes the constants declare (channels,
                # kernel, features) are checked against the tensors, never allocated
                with torch.device("meta"):
                    module = self.layers[kind](state, constants)
                module.load_state_dict(tensors, strict=True, assign=True)
            else:
                module = self.layers[kind](state, constants)
                module.load_state_dict(tensors, strict=True)
        except ReportInputError:
            raise
        except Exception as error:
            text = (f"its class source gives no literal value for the constant {error.args[0]!r}"
                    if isinstance(error, KeyError) else
                    " ".join(line.strip() for line in str(error).splitlines() if line.strip()))
            text = text if len(text) <= 400 else text[:397] + "..."
            raise ReportInputError(f"{self.path}: cannot rebuild TorchScript module {name} ({kind}): "
                                   f"{text or type(error).__name__}") from None
        module.train(bool(state.get("training", True)))
        return module


def load_module(path: str):
    """The eager ``nn.Module`` an archive declares, rebuilt without running any of its code.

    Raises
    ------
    ReportInputError
        Not a TorchScript archive, a class outside the allow list, an object of an unknown class, a
        malformed storage record.
    MemoryLimitError
        The archive's tensors (their float64 copies) exceed the memory limit; nothing was materialised.
    """
    record, archive, root = read_records(path)
    with archive:
        try:
            return _Rebuilder(archive, root, path).build(record)
        except RecursionError:
            raise ReportInputError(f"{path}: the TorchScript module tree is nested too deeply") from None


def is_torchscript(path: str) -> bool:
    """Whether ``path`` is a zip archive laid out as ``torch.jit.save`` writes it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or (n.count("/") >= 2 and n.split("/")[1] == "code") for n in names)
