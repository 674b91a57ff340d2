"""Child process of test_option_ranges.py: drives the C entry points over extreme arguments
(``relusv_relu_sv_options``, ``relusv_conv_options`` and the scalar arguments of the other entries).

Each case is printed (and flushed) before it runs, so that a crash names it;
each call must return a status of relusv.h (with a message) or a valid result.
Prints ``DONE <count>`` at the end.
"""
from __future__ import annotations

import ctypes
import math
import random
import sys

import numpy as np
from relusv import _native

lib = _native.lib

DOUBLES = [0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 5e-21, 1e-9, 0.5, 1.0, 1e300, 1.7976931348623157e308,
           math.inf, -math.inf, math.nan, -0.0, -1.0, -1e-300]
SIZES = [0, 1, 2, 3, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]
INT32S = [0, 1, -1, 2**31 - 1, -2**31]

DOUBLE_FIELDS = ["leaky_slope", "time_budget", "learning_rate"]
SIZE_FIELDS = ["seed", "sphere_points", "max_steps", "threads", "fit_stride", "batch_size", "group_size",
               "fit_points"]
INT32_FIELDS = ["refine", "keep_factors"]
VALUES = {**{f: DOUBLES for f in DOUBLE_FIELDS}, **{f: SIZES for f in SIZE_FIELDS},
          **{f: INT32S for f in INT32_FIELDS}}


def matrix(a: np.ndarray) -> _native.Matrix:
    dtype = _native.FLOAT32 if a.dtype == np.float32 else _native.FLOAT64
    return _native.Matrix(a.ctypes.data, dtype, a.shape[0], a.shape[1], 0)


def status_ok(status: int) -> None:
    assert status in _native.STATUS_NAMES, f"unknown status {status}"
    assert _native.STATUS_NAMES[status] != "RELUSV_ERROR_INTERNAL", lib.relusv_last_error()
    if status:
        assert lib.relusv_last_error(), "a failure without a message"


def relu_sv(fields: dict, use_x: bool) -> str:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    x = rng.normal(size=(12, 3))
    options = _native.ReluSVOptions()
    lib.relusv_relu_sv_options_init(ctypes.byref(options), ctypes.sizeof(options))
    options.max_steps, options.threads, options.sphere_points = 20, 1, 16
    for name, value in fields.items():
        setattr(options, name, value)
    wm, xm = matrix(w), matrix(x)
    handle = ctypes.c_void_p()
    status = lib.relusv_relu_singular_values(ctypes.byref(wm), None, ctypes.byref(xm) if use_x else None, None, 0,
                                             ctypes.byref(options), ctypes.byref(handle), _native.NO_PROGRESS, None)
    status_ok(status)
    if status:
        return _native.STATUS_NAMES[status]
    try:
        info = _native.ReluSpectrumInfo()
        assert lib.relusv_relu_spectrum_info_get(handle, ctypes.byref(info)) == 0
        entries = (_native.ReluSVEntry * info.count)()
        assert lib.relusv_relu_spectrum_entries(handle, entries) == 0
        bounds = [e.bound for e in entries]
        assert all(math.isfinite(b) and b >= 0 for b in bounds), bounds
        assert all(a >= b for a, b in zip(bounds, bounds[1:])), bounds
    finally:
        lib.relusv_relu_spectrum_free(handle)
    return "OK"


CONV_FIELDS = ["groups", "stride", "top", "threads"]


def conv(fields: dict) -> str:
    """relusv_conv_spectrum of a 4 x (2 2 2) kernel on 4 x 4 inputs under extreme options: first the
    check-only call (values = NULL), then, when it passes, the computation into a buffer of the size
    the options imply."""
    kernel = np.random.default_rng(2).normal(size=(4, 8))
    km = matrix(kernel)
    options = _native.ConvOptions()
    lib.relusv_conv_options_init(ctypes.byref(options), ctypes.sizeof(options))
    options.threads = 1
    for name, value in fields.items():
        setattr(options, name, value)
    scratch = ctypes.c_size_t()
    status = lib.relusv_conv_spectrum(ctypes.byref(km), 2, 2, 2, 4, 4, ctypes.byref(options), None,
                                      ctypes.byref(scratch), _native.NO_PROGRESS, None)
    status_ok(status)
    if status:
        return _native.STATUS_NAMES[status]
    g, s = options.groups, options.stride
    total = (4 // s) ** 2 * g * min(4 // g, 2 * s * s)
    count = min(options.top, total) if options.top else total
    values = (ctypes.c_double * count)()
    status = lib.relusv_conv_spectrum(ctypes.byref(km), 2, 2, 2, 4, 4, ctypes.byref(options), values, None,
                                      _native.NO_PROGRESS, None)
    status_ok(status)
    if status:
        return _native.STATUS_NAMES[status]
    assert all(math.isfinite(v) and v >= 0 for v in values), list(values)
    assert all(a >= b for a, b in zip(values, values[1:]))
    return "OK"


def scalar_entries(value: float, size: int) -> list:
    """The scalar arguments of the other entries at one extreme double and one extreme size."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    w = rng.normal(size=(4, 3))
    xm, wm = matrix(x), matrix(w)
    result = _native.WidthResult()
    ow = _native.OperatorWidthResult()
    factor = ctypes.c_double()
    small = size if size < 1000 else size  # sizes are checked before anything is sized by them
    out = []

    def finite(status: int, *values: float) -> None:
        # A success returns finite values (overflow is RELUSV_ERROR_NONFINITE, never inf or NaN).
        out.append(status)
        if status == 0:
            assert all(math.isfinite(v) for v in values), (len(out), values)

    def width_ok(status: int) -> None:
        finite(status, result.estimate, result.std_error, result.mean, result.mean_std_error)

    def operator_ok(status: int) -> None:
        finite(status, ow.estimate, ow.std_error, ow.upper, ow.norm)

    width_ok(lib.relusv_gmw(ctypes.byref(xm), small, 0, value, 0, None, ctypes.byref(result),
                            _native.NO_PROGRESS, None))
    width_ok(lib.relusv_gmw(ctypes.byref(xm), 8, size, value, 1, None, ctypes.byref(result),
                            _native.NO_PROGRESS, None))
    status = lib.relusv_gaussian_to_spherical_factor(size, ctypes.byref(factor))
    finite(status, factor.value)
    operator_ok(lib.relusv_operator_gmw(ctypes.byref(wm), None, None, 0, value, small, 0, 0, value, ctypes.byref(ow),
                                        _native.NO_PROGRESS, None))
    operator_ok(lib.relusv_operator_gmw(ctypes.byref(wm), None, None, 1, value, 8, small, 0, 0.1, ctypes.byref(ow),
                                        _native.NO_PROGRESS, None))
    operator_ok(lib.relusv_operator_gmw(ctypes.byref(wm), None, ctypes.byref(xm), 1, 0.0, small, 0, size, value,
                                        ctypes.byref(ow), _native.NO_PROGRESS, None))
    u, s, vt = (ctypes.c_double * 12)(), (ctypes.c_double * 3)(), (ctypes.c_double * 9)()
    out.append(lib.relusv_truncated_svd(ctypes.byref(wm), size, u, s, vt))
    handle = ctypes.c_void_p()
    status = lib.relusv_gmw_accumulator_create(size, small, size, _native.FLOAT64, ctypes.byref(handle))
    out.append(status)
    if status == 0:
        lib.relusv_gmw_accumulator_free(handle)
    status = lib.relusv_gmw_accumulator_create(3, 8, size, _native.FLOAT64, ctypes.byref(handle))
    out.append(status)
    if status == 0:
        out.append(lib.relusv_gmw_accumulator_update(handle, ctypes.byref(xm), _native.NO_PROGRESS, None))
        width_ok(lib.relusv_gmw_accumulator_estimate(handle, value, 0, None, ctypes.byref(result)))
        maxima, minima = (ctypes.c_double * 8)(*([value] * 8)), (ctypes.c_double * 8)(*([-value] * 8))
        out.append(lib.relusv_gmw_accumulator_merge_extremes(handle, maxima, minima, size))
        width_ok(lib.relusv_gmw_accumulator_estimate(handle, 0.1, 0, None, ctypes.byref(result)))
        lib.relusv_gmw_accumulator_free(handle)
    grads = (ctypes.c_double * 12)(), (ctypes.c_double * 3)()
    loss = ctypes.c_double()
    u1, v1 = matrix(np.ones((4, 1))), matrix(np.ones((1, 3)))
    finite(lib.relusv_relu_fit_gradient(ctypes.byref(wm), None, ctypes.byref(xm), ctypes.byref(u1),
                                        ctypes.byref(v1), value, ctypes.byref(loss), grads[0], grads[1]),
           loss.value, *grads[0], *grads[1])
    lib.relusv_set_memory_limit(size)  # any size_t: a limit, never a trap
    assert lib.relusv_memory_limit() > 0
    lib.relusv_set_memory_limit(0)  # back to the default (RELUSV_MEMORY_LIMIT)
    for status in out:
        status_ok(status)
    return out


def cases(count: int, seed: int):
    """Every value of every field alone, then `count` random combinations of extremes."""
    for use_x in (True, False):
        for name, values in VALUES.items():
            for value in values:
                yield "relu_sv", {name: value}, use_x
    rng = random.Random(seed)
    for _ in range(count):
        fields = {name: rng.choice(values) for name, values in VALUES.items() if rng.random() < 0.5}
        yield "relu_sv", fields, rng.random() < 0.5
    for name in CONV_FIELDS:
        for value in SIZES:
            yield "conv", {name: value}
    for _ in range(count):
        yield "conv", {name: rng.choice(SIZES + [4, 2]) for name in CONV_FIELDS if rng.random() < 0.5}
    for value in DOUBLES:
        for size in SIZES:
            yield "scalars", value, size


def main() -> None:
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    done = 0
    for case in cases(count, seed):
        print("CASE", repr(case), flush=True)
        if case[0] == "relu_sv":
            outcome = relu_sv(case[1], case[2])
        elif case[0] == "conv":
            outcome = conv(case[1])
        else:
            outcome = scalar_entries(case[1], case[2])
        print("RESULT", outcome, flush=True)
        done += 1
    print("DONE", done, flush=True)


if __name__ == "__main__":
    main()
