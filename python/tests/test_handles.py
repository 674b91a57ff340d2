"""Handles: a close racing with running calls, handles of the wrong kind, freed handles."""
from __future__ import annotations

import ctypes
import subprocess
import textwrap

import numpy as np
import pytest
import relusv
from relusv import _native

# In a child process, so that a crash shows as a failed test, not a lost run.
RACE = textwrap.dedent("""
    import threading
    import numpy as np
    import relusv

    x = np.random.default_rng(0).normal(size=(64, 8))
    outcomes = {"closed": 0, "finished": 0}
    for i in range({iterations}):
        acc = relusv.GMWAccumulator(8, samples=16, seed=i)
        go = threading.Event()

        def work():
            go.set()
            try:
                while True:
                    acc.update(x)
                    _ = acc.points, acc.extremes, acc.estimate(), acc.to_bytes()
            except relusv.InvalidInputError as error:
                assert "closed" in str(error), error
                outcomes["closed"] += 1

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        go.wait()
        acc.close()
        for t in threads:
            t.join()
    print(outcomes["closed"])
""")


def test_close_while_other_threads_call_survives_thousands_of_iterations(python, subprocess_env):
    iterations = 2000
    out = subprocess.run([python, "-c", RACE.replace("{iterations}", str(iterations))], env=subprocess_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) == 2 * iterations  # every worker ended by the "closed" error


def _status_name(status: int) -> str:
    return _native.STATUS_NAMES[status]


def test_handle_of_the_wrong_kind_is_an_error(rng):
    lib = _native.lib
    spectrum = ctypes.c_void_p()
    w = np.ascontiguousarray(rng.normal(size=(4, 3)))
    m = _native.Matrix(w.ctypes.data, _native.FLOAT64, 4, 3, 3)
    x = np.ascontiguousarray(rng.normal(size=(10, 3)))
    xm = _native.Matrix(x.ctypes.data, _native.FLOAT64, 10, 3, 3)
    assert lib.relusv_relu_singular_values(ctypes.byref(m), None, ctypes.byref(xm), None, 0, None,
                                           ctypes.byref(spectrum), _native.NO_PROGRESS, None) == 0
    info = _native.AccumulatorInfo()
    status = lib.relusv_gmw_accumulator_info_get(spectrum, ctypes.byref(info))
    assert _status_name(status) == "RELUSV_ERROR_INVALID_HANDLE"
    assert b"relusv_relu_spectrum handle, not a relusv_gmw_accumulator" in lib.relusv_last_error()
    acc = ctypes.c_void_p()
    assert lib.relusv_gmw_accumulator_create(3, 5, 0, _native.FLOAT64, ctypes.byref(acc)) == 0
    spectrum_info = _native.ReluSpectrumInfo()
    assert _status_name(lib.relusv_relu_spectrum_info_get(acc, ctypes.byref(spectrum_info))) == \
        "RELUSV_ERROR_INVALID_HANDLE"
    assert _status_name(lib.relusv_gmw_accumulator_merge(acc, spectrum)) == "RELUSV_ERROR_INVALID_HANDLE"
    lib.relusv_relu_spectrum_free(acc)  # the wrong free function: ignored, acc stays live
    assert lib.relusv_gmw_accumulator_info_get(acc, ctypes.byref(info)) == 0 and info.samples == 5
    lib.relusv_relu_spectrum_free(spectrum)
    lib.relusv_gmw_accumulator_free(acc)


def test_freed_and_made_up_handles_are_errors_not_crashes():
    lib = _native.lib
    acc = ctypes.c_void_p()
    assert lib.relusv_gmw_accumulator_create(3, 5, 0, _native.FLOAT64, ctypes.byref(acc)) == 0
    lib.relusv_gmw_accumulator_free(acc)
    lib.relusv_gmw_accumulator_free(acc)  # double free: nothing happens
    info = _native.AccumulatorInfo()
    for handle in (acc, ctypes.c_void_p(0x1234), ctypes.c_void_p(id(info))):
        status = lib.relusv_gmw_accumulator_info_get(handle, ctypes.byref(info))
        assert _status_name(status) == "RELUSV_ERROR_INVALID_HANDLE"
        assert b"not a live relusv_gmw_accumulator handle" in lib.relusv_last_error()


def test_closed_accumulator_refuses_calls_and_merges():
    a = relusv.GMWAccumulator(3, samples=5)
    b = relusv.GMWAccumulator(3, samples=5)
    b.close()
    assert b.closed and not a.closed
    with pytest.raises(relusv.InvalidInputError, match="closed"):
        a.merge(b)
    with pytest.raises(relusv.InvalidInputError, match="closed"):
        b.update(np.zeros((1, 3)))
