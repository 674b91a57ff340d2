"""The model a report is about, as a torch module: from a .npz, a checkpoint, or the user's own code.

Forms of ``--model``:

- ``FILE.npz`` with ``W0, b0, W1, b1, ...``: an MLP with a ReLU after every
  layer but the last, built as ``nn.Sequential`` with layers named ``fc0``,
  ``fc1``, ... after ``W0``, ``W1``, ... (float64);
- a PyTorch checkpoint (``torch.save``) of a module made of standard layers
  (``Sequential``, ``Linear``, ``DoubleLinear``, ``Conv2d``, ``BatchNorm``,
  activations, pooling, ``Flatten``, ``Dropout``), read with
  ``torch.load(weights_only=True)``; or of a ``state_dict`` of such an MLP
  (activations are not recorded in a state dict: a ReLU between consecutive
  layers is assumed, and the report says so);
- a TorchScript archive (``torch.jit.save``) of an ``nn.Sequential`` of such
  layers: read as data (``torchscript``: its tensors, and the layer types and
  constants it declares, checked against an allow list) and rebuilt as eager
  modules; the archive's code never runs. Only ``trust_model_code=True``
  (``--trust-model-code``) loads it with ``torch.jit.load``, which runs it;
- ``package.module:callable`` (the user's own architecture): the callable
  (a function or an ``nn.Module`` class) is imported from the user's code and
  called without arguments; ``--weights FILE`` then loads a ``state_dict``
  with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``.

No pickled object from a file is ever executed: the only code that runs is
the user's own module named on the command line.
"""
from __future__ import annotations

import importlib
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from .errors import ReportInputError, missing_dependency
from .model import LAYER_NAME, Network, load_npz_network, network_from_module, network_from_state_dict
from .torchscript import is_torchscript


@dataclass
class ModelSource:
    """The model (``module``), the same model as a NumPy chain where it is one (``network``), and notes."""

    module: object
    network: Optional[Network]
    source: str
    notes: List[str] = field(default_factory=list)


def _torch():
    try:
        import torch
    except ImportError:
        raise missing_dependency("torch", "this model", extra="torch") from None
    return torch


def network_module(network: Network):
    """``network`` as a float64 ``nn.Sequential`` (``LAYER_NAME``, ``relu<i>``; ``DoubleLinear`` for double layers)."""
    torch = _torch()
    from torch import nn

    from ..torch import DoubleLinear

    modules = OrderedDict()
    for i, layer in enumerate(network.layers):
        m, n = layer.shape
        if layer.factors is not None:
            linear = DoubleLinear(n, m, layer.factors[0].shape[1], seed=0, dtype=torch.float64)
            with torch.no_grad():
                linear.weight1.copy_(torch.from_numpy(layer.factors[0]))
                linear.weight2.copy_(torch.from_numpy(layer.factors[1]))
                linear.bias.copy_(torch.from_numpy(layer.bias))
        else:
            linear = nn.Linear(n, m, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight))
                linear.bias.copy_(torch.from_numpy(layer.bias))
        modules[LAYER_NAME.format(i)] = linear
        if layer.relu:
            modules[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(modules)


def from_network(network: Network, source: str, notes: Optional[List[str]] = None) -> ModelSource:
    """A NumPy MLP as a model: with torch, also as a module (analysed by ``relusv.torch.analyze``); without
    torch, ``module`` is None and the report analyses the NumPy forward pass with the same table code."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return ModelSource(None, network, source, list(notes or []))
    return ModelSource(network_module(network), network, source, list(notes or []))


def _safe_classes(torch) -> list:
    nn = torch.nn
    classes = [nn.Sequential, nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.GELU,
               nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Softplus, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d,
               nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d]
    from ..torch import DoubleLinear

    classes.append(DoubleLinear)
    return classes


def _plain(error: Exception) -> str:
    """The error's message without the terminal colours torch puts in part of its messages."""
    return re.sub(r"\x1b\[[0-9;]*m", "", str(error))


def _first_line(error: Exception) -> str:
    text = _plain(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _all_lines(error: Exception, limit: int = 400) -> str:
    """The error's lines joined into one (torch's list of missing and unexpected keys), at most ``limit``
    characters."""
    text = " ".join(line.strip() for line in _plain(error).splitlines() if line.strip()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_zip_sizes(path: str) -> None:
    """Refuses a zip archive whose members (as their sizes are declared, compressed or not) exceed the memory
    limit, and a file that is not a zip archive (PyTorch's legacy format allocates the storage sizes its
    pickle declares before reading them)."""
    import zipfile

    from .. import memory

    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        raise ReportInputError(f"cannot read {path} as a PyTorch checkpoint: not a zip archive (saved in "
                               "PyTorch's legacy format, or not by torch.save); re-save it with torch.save") from None
    memory.within_memory_limit(total, f"{path}: the members of the archive")


def _load(path: str, what: str, safe: bool = True,
          refused: str = "give your architecture as --model package.module:build with --weights"):
    """``torch.load(path, weights_only=True)`` with relusv's user errors for every way a file can be bad;
    ``refused`` says what to do with a file holding objects relusv does not load."""
    torch = _torch()
    p = Path(path)
    if not p.is_file():
        raise ReportInputError(f"no such {what} file: {path}")
    _check_zip_sizes(path)
    if is_torchscript(path):   # torch.load would warn, then advise weights_only=False
        raise ReportInputError(f"cannot read {path} as a PyTorch checkpoint: it is a TorchScript archive "
                               "(torch.jit.save); give it as --model, or save a state_dict with "
                               "torch.save(model.state_dict(), path)")
    try:
        with torch.serialization.safe_globals(_safe_classes(torch) if safe else []):
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as error:
        unsupported = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(error))
        reason = (f"it contains {unsupported.group(1)}, which relusv does not load from a file ({refused})") \
            if unsupported else _first_line(error)
        raise ReportInputError(f"cannot read {path} as a PyTorch checkpoint: {reason}") from None


def _check_tensors(state: dict, path: str) -> None:
    """Refuse what a report cannot analyse: non-tensors, meta / sparse / quantised tensors, complex values;
    and tensors whose float64 copies together exceed the memory limit (a view that repeats its storage
    with stride 0, or several views of one storage, is checked by its element count), before any of
    them is read."""
    torch = _torch()
    from .. import memory

    total = sum(int(v.numel()) for v in state.values() if torch.is_tensor(v)) * 8
    memory.within_memory_limit(total, f"{path}: the tensors (as float64)")
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        if value.is_meta:
            raise ReportInputError(f"{path}: entry {key} is a meta tensor (no values)")
        if value.layout != torch.strided:
            raise ReportInputError(f"{path}: entry {key} is a {value.layout} tensor; save dense tensors")
        if value.is_complex():
            raise ReportInputError(f"{path}: entry {key} is complex; relusv analyses real weights")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ReportInputError(f"{path}: entry {key} contains NaN or infinity")


def _unwrap_state(obj, path: str):
    torch = _torch()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return obj[key]
    return obj


def _eager_builders(nn) -> dict:
    """Eager constructors of the layers a TorchScript ``Sequential`` may hold, from the scripted module's
    constants (its parameters and buffers are loaded afterwards); used only with ``trust_model_code``."""
    from ..torch import DoubleLinear

    def batchnorm(cls):
        return lambda c: cls(c.running_mean.shape[0], eps=c.eps, momentum=c.momentum, affine=c.affine,
                             track_running_stats=c.track_running_stats)

    return {
        "Linear": lambda c: nn.Linear(c.weight.shape[1], c.weight.shape[0], bias=c.bias is not None),
        "DoubleLinear": lambda c: DoubleLinear(c.weight2.shape[1], c.weight1.shape[0], c.weight1.shape[1],
                                               bias=c.bias is not None, seed=0),
        "Conv2d": lambda c: nn.Conv2d(c.weight.shape[1] * c.groups, c.weight.shape[0], c.kernel_size, c.stride,
                                      c.padding, c.dilation, c.groups, c.bias is not None, c.padding_mode),
        "BatchNorm1d": batchnorm(nn.BatchNorm1d), "BatchNorm2d": batchnorm(nn.BatchNorm2d),
        "ReLU": lambda c: nn.ReLU(), "LeakyReLU": lambda c: nn.LeakyReLU(c.negative_slope),
        "GELU": lambda c: nn.GELU(c.approximate), "Tanh": lambda c: nn.Tanh(), "Sigmoid": lambda c: nn.Sigmoid(),
        "Identity": lambda c: nn.Identity(), "Dropout": lambda c: nn.Dropout(c.p),
        "Flatten": lambda c: nn.Flatten(c.start_dim, c.end_dim),
        "MaxPool2d": lambda c: nn.MaxPool2d(c.kernel_size, c.stride, c.padding, c.dilation, ceil_mode=c.ceil_mode),
        "AvgPool2d": lambda c: nn.AvgPool2d(c.kernel_size, c.stride, c.padding, c.ceil_mode, c.count_include_pad),
    }


def _eager(scripted, path: str, builders: dict, name: str = ""):
    from torch import nn

    kind = getattr(scripted, "original_name", type(scripted).__name__)
    if kind == "Sequential":
        return nn.Sequential(OrderedDict((child, _eager(m, path, builders, f"{name}.{child}".lstrip(".")))
                                         for child, m in scripted.named_children()))
    if kind not in builders:
        raise ReportInputError(f"{path}: TorchScript module {name or '(top level)'} is a {kind}; relusv rebuilds "
                               "TorchScript Sequentials of standard layers only (give your architecture as --model "
                               "package.module:build with --weights)")
    try:
        module = builders[kind](scripted)
        module.load_state_dict(scripted.state_dict(), strict=True)
    except ReportInputError:
        raise
    except Exception as error:
        raise ReportInputError(f"{path}: cannot rebuild TorchScript module {name} ({kind}): "
                               f"{_first_line(error)}") from None
    return module


def _jit_load(path: str):
    """``torch.jit.load``: compiles and RUNS the archive's code; only with ``trust_model_code``."""
    torch = _torch()
    import warnings

    _check_zip_sizes(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)   # torch.jit is deprecated in recent versions
            scripted = torch.jit.load(path, map_location="cpu")
    except Exception as error:
        raise ReportInputError(f"cannot read {path} as a TorchScript archive: {_first_line(error)}") from None
    return _eager(scripted, path, _eager_builders(torch.nn))


def load_torchscript(path: str, trust_model_code: bool = False) -> ModelSource:
    """An eager copy of a TorchScript ``Sequential`` of standard layers.

    By default the archive is read as data (``torchscript.load_module``): its tensors and the declared
    types of its layers, none of its code runs. ``trust_model_code=True`` (``--trust-model-code``) loads
    it with ``torch.jit.load`` instead, which runs the archive's code (e.g. a scripted class's
    ``__setstate__``): only for archives from a trusted source.
    """
    from .torchscript import load_module

    if trust_model_code:
        module = _jit_load(path)
        note = "loaded with torch.jit.load (--trust-model-code: the archive's code ran) and rebuilt as eager modules"
    else:
        module = load_module(path)
        note = ("rebuilt from a TorchScript archive as eager modules of the same types and weights, without "
                "running the archive's code")
    _check_tensors(module.state_dict(), path)
    return ModelSource(module, network_from_module(module, path), path, [note])


def load_checkpoint(path: str) -> ModelSource:
    """A model from a checkpoint file: a saved module, or the state dict of an MLP."""
    torch = _torch()
    obj = _unwrap_state(_load(path, "model"), path)
    if isinstance(obj, torch.nn.Module):
        _check_tensors(obj.state_dict(), path)
        return ModelSource(obj, network_from_module(obj, path), path)
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if torch.is_tensor(v)}
        if not tensors:
            raise ReportInputError(f"{path}: the checkpoint dict holds no tensors (keys: "
                                   f"{', '.join(map(str, obj)) or 'none'})")
        _check_tensors(tensors, path)
        foreign = [k for k in tensors if str(k).rpartition(".")[2] not in ("weight", "bias", "weight1", "weight2")]
        if foreign:
            raise ReportInputError(f"{path}: a state_dict with entry {foreign[0]} is not a plain MLP; give the "
                                   "architecture as --model package.module:build with --weights FILE")
        network = network_from_state_dict(tensors, path)
        return from_network(network, path, ["a state_dict does not record activations: a ReLU is assumed between "
                                            "consecutive layers and none after the last (give --model "
                                            "package.module:build --weights FILE for other architectures)"])
    raise ReportInputError(f"{path}: expected a torch module or a state_dict, found {type(obj).__name__}")


def load_user_model(spec: str, weights: Optional[str], seed: int = 0) -> ModelSource:
    """``package.module:callable`` from the user's code (the current directory is importable), then ``--weights``.
    The callable runs with torch's CPU generator seeded by ``seed`` (the caller's CPU generator state is
    restored), so the weights it draws on the CPU are the same for the same seed."""
    torch = _torch()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ReportInputError(f"--model {spec}: expected package.module:callable")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as error:
        raise ReportInputError(f"--model {spec}: cannot import it: {_first_line(error)}") from None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = target()
    except Exception as error:
        raise ReportInputError(f"--model {spec}: calling it failed: {_first_line(error)}") from None
    if not isinstance(model, torch.nn.Module):
        raise ReportInputError(f"--model {spec} returned a {type(model).__name__}, not a torch.nn.Module")
    notes = []
    if weights is not None:
        state = _unwrap_state(_load(weights, "weights", safe=False, refused=(
            "--weights takes a state_dict: torch.save(model.state_dict(), PATH); a whole saved module goes to "
            "--model PATH alone")), weights)
        if not isinstance(state, dict):
            raise ReportInputError(f"--weights {weights}: expected a state_dict, found {type(state).__name__}")
        _check_tensors(state, weights)
        try:
            model.load_state_dict(state, strict=True)
        except Exception as error:
            raise ReportInputError(f"--weights {weights} do not fit --model {spec}: {_all_lines(error)}") from None
        source = f"{spec} with weights {weights}"
    else:
        notes.append(f"no --weights given: the weights {spec} creates (torch seeded with --seed {seed})")
        source = spec
    return ModelSource(model, network_from_module(model, source), source, notes)


def load_model(spec: str, weights: Optional[str] = None, trust_model_code: bool = False,
               seed: int = 0) -> ModelSource:
    """The model of ``--model spec [--weights FILE]``.

    Parameters
    ----------
    spec, weights
        As ``relusv report --model`` and ``--weights`` take them (module docstring).
    trust_model_code
        Allow ``torch.jit.load`` on a TorchScript archive, which runs the archive's code
        (``--trust-model-code``). Off by default: archives are read as data.
    seed
        Seeds torch's generator while a ``package.module:callable`` builds the model (``--seed``).

    Raises
    ------
    ReportInputError
        Any problem with the files, naming it.
    MemoryLimitError
        A file declares or implies more memory than the memory limit (nothing was materialised).
    """
    p = Path(spec)
    if weights is not None or (":" in spec and not p.exists()):
        if weights is not None and ":" not in spec:
            raise ReportInputError("--weights goes with --model package.module:callable (your architecture)")
        return load_user_model(spec, weights, seed)
    if not p.is_file():
        raise ReportInputError(f"{spec} is a directory, not a model file" if p.is_dir() else
                               f"no such model file: {spec}")
    if p.suffix.lower() == ".npz":
        return from_network(load_npz_network(p), spec)
    if is_torchscript(spec):
        return load_torchscript(spec, trust_model_code)
    return load_checkpoint(spec)
